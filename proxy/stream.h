/* proxy/ streams: the two ends of a connection behind one small table of
 * function pointers, so the data pump never branches on TLS.
 *
 *   tf_stream_tcp_ops  the backend: plain TCP; bytes that cannot be written
 *                      at once are copied into a queue owned by the stream.
 *   tf_stream_tls_ops  the client: TLS over TCP through a tf_tls_session_t;
 *                      plaintext written is encrypted into the session's
 *                      output, ciphertext read is fed to the session and
 *                      the plaintext handed on.
 *
 * A stream is embedded in its tf_conn_t and reports to the pump (pump.h):
 * tf_pump_on_data() with plaintext read (valid during the call only),
 * tf_pump_on_eof(), tf_pump_on_written() after a write completes,
 * tf_pump_on_shut() once its write side is shut, tf_conn_fail() on errors.
 * At most one uv_write is in flight per stream; its buffer is owned by the
 * stream and freed when it completes.
 */
#ifndef TF_PROXY_STREAM_H
#define TF_PROXY_STREAM_H

#include "tls/tls.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tf_stream tf_stream_t;
typedef struct tf_conn tf_conn_t;

typedef struct {
    /* Start or stop reading from the peer. read_start is idempotent. */
    int (*read_start)(tf_stream_t *s);
    void (*read_stop)(tf_stream_t *s);
    /* Queues len bytes of plaintext for the peer: copied (or encrypted)
     * before it returns, written as soon as the stream is writable and no
     * write is in flight. 0, or a negative code (the connection fails). */
    int (*write)(tf_stream_t *s, const void *data, size_t len);
    /* Ends the stream's output after everything queued: TCP FIN, or a TLS
     * close_notify. tf_pump_on_shut() reports when it has been sent. */
    int (*shutdown)(tf_stream_t *s);
    /* Closes the handle; `cb` runs once libuv has closed it. */
    void (*close)(tf_stream_t *s, uv_close_cb cb);
    /* Bytes accepted by write() not yet handed to the kernel. */
    size_t (*pending)(const tf_stream_t *s);
} tf_stream_ops_t;

enum {
    TF_STREAM_READING = 1 << 0,     /* uv_read_start is active */
    TF_STREAM_WRITABLE = 1 << 1,    /* connected: queued bytes may be written */
    TF_STREAM_SHUT_WANTED = 1 << 2, /* shut the write side once drained */
    TF_STREAM_SHUT_SENT = 1 << 3,   /* FIN or close_notify handed to libuv */
    TF_STREAM_OPEN = 1 << 4,        /* the uv_tcp_t is initialised, not closing */
    TF_STREAM_SHUT_DONE = 1 << 5,   /* the peer has been told: tf_pump_on_shut() ran */
    TF_STREAM_CORKED = 1 << 6,      /* writes wait for tf_stream_uncork() */
};

struct tf_stream {
    const tf_stream_ops_t *ops;
    tf_conn_t *conn;
    tf_tls_session_t *tls; /* the client's session; NULL on plain TCP */
    char *wbuf;            /* bytes of the write in flight (malloc'd), or NULL */
    size_t wlen;
    char *qbuf; /* plain TCP: bytes waiting behind the write in flight */
    size_t qlen, qcap;
    uint8_t flags;
    uv_write_t wreq;
    uv_tcp_t tcp;
};

/* A backend connection: a plain TCP stream allocated on its own, so that it
 * can outlive the client connection that opened it (the pool keeps idle
 * ones, pool.h). `s.conn` is its current owner, NULL while pooled or after
 * release; every callback checks it. */
typedef struct tf_bstream {
    tf_stream_t s;
    union {
        uv_connect_t connect;
        uv_shutdown_t shutdown;
    } req;                          /* a connect completes before any shutdown */
    struct tf_bstream *prev, *next; /* a pool's idle list */
    void *bucket;                   /* the pool bucket holding it while idle */
    uint64_t idle_since_ms;
    uint32_t uses; /* requests it has carried */
} tf_bstream_t;

extern const tf_stream_ops_t tf_stream_tcp_ops;
extern const tf_stream_ops_t tf_stream_tls_ops;

/* Prepares an embedded stream (the uv_tcp_t is initialised by the caller). */
void tf_stream_init(tf_stream_t *s, const tf_stream_ops_t *ops, tf_conn_t *conn);

/* Frees the queue and the in-flight buffer; call after the handle closed. */
void tf_stream_dispose(tf_stream_t *s);

/* A new backend stream owned by conn, its handle initialised on `loop`.
 * NULL when out of memory or handles. */
tf_stream_t *tf_bstream_new(uv_loop_t *loop, tf_conn_t *conn);

/* Starts connecting; `cb` runs with the stream's tf_bstream_t request. */
int tf_bstream_connect(tf_stream_t *s, const struct sockaddr *sa, uv_connect_cb cb);

static inline tf_bstream_t *tf_bstream_of(tf_stream_t *s)
{
    return (tf_bstream_t *)(void *)s;
}

/* Detaches a backend stream from its owner, closes it and frees it once
 * libuv has (pending callbacks see no owner and do nothing). */
void tf_bstream_release(tf_stream_t *s);

/* Moves what `from` holds for its peer (queued bytes, a wanted shutdown) to
 * `to`: a retried connect keeps what the client already sent. */
void tf_bstream_move_queue(tf_stream_t *to, tf_stream_t *from);

/* Marks the stream connected and writes what was queued meanwhile. */
int tf_stream_set_writable(tf_stream_t *s);

/* Writes pending output now (the TLS handshake's records). */
int tf_stream_flush(tf_stream_t *s);

/* Between cork and uncork, writes only queue (a response head and the
 * start of its body leave in one system call); uncork writes what queued. */
void tf_stream_cork(tf_stream_t *s);
int tf_stream_uncork(tf_stream_t *s);

#endif
