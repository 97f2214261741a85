/* proxy/ streams: the two ends of a connection behind one small table of
 * function pointers, so their users never branch on TLS.
 *
 *   tf_stream_tcp_ops  the backend: plain TCP; bytes that cannot be written
 *                      at once are copied into a queue owned by the stream.
 *   tf_stream_tls_ops  the client: TLS over TCP through a tf_tls_session_t;
 *                      plaintext written is encrypted into the session's
 *                      output, ciphertext read is fed to the session and
 *                      the plaintext handed on.
 *
 * A stream reports to the sink its owner installs (tf_stream_set_sink) and
 * never knows who that is: the TLS handshake, an HTTP/1 exchange, a tunnel
 * and the pool's idle list are sinks; an Upgrade is a sink swap (h2o's
 * shape: a socket calls the callback it was given). Every event names the
 * stream; `s->owner` is the pointer installed with the sink.
 *
 * Any sink callback may end the stream's user: the owner closes or
 * releases the stream, which clears TF_STREAM_OPEN (and, for a released
 * backend stream, the sink). After a callback the stream checks
 * tf_stream_live() and stops when it is false; the memory stays valid until
 * libuv's close callback.
 *
 * At most one uv_write is in flight per stream; its buffer is owned by the
 * stream and freed when it completes.
 */
#ifndef TF_PROXY_STREAM_H
#define TF_PROXY_STREAM_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "proxy/http/http.h"
#include "tls/tls.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tf_stream tf_stream_t;

/* What a stream reports, to the sink installed by its owner. Every member
 * but head is set (a sink with nothing to do for an event says so in a
 * function). */
typedef struct {
    /* Plaintext read (valid during the call only). */
    void (*data)(tf_stream_t *s, const char *data, size_t len);
    /* The peer ended its output: TCP FIN, or TLS close_notify (a FIN
     * without close_notify after the handshake is passed on as such). */
    void (*eof)(tf_stream_t *s);
    /* A write completed: pending() went down. */
    void (*written)(tf_stream_t *s);
    /* The write side is shut: FIN or close_notify sent. */
    void (*shut)(tf_stream_t *s);
    /* Reading or writing failed: err is a UV_* or TF_* code, `what` a
     * static text (TLS: the session's error text). */
    void (*error)(tf_stream_t *s, int err, const char *what);
    /* TLS: the handshake completed (data may follow in the same read, to
     * whatever sink is installed when this returns). */
    void (*ready)(tf_stream_t *s);
    /* A stream that carries messages, not bytes (an HTTP/2 stream): its
     * request's head, parsed (tf_http_request_ready() not applied yet;
     * valid during the call), before any data(), which carries the body in
     * its HTTP/1.1 framing. Only the sink such a stream starts with (the
     * exchange's) hears it; NULL in the others. */
    void (*head)(tf_stream_t *s, tf_http_request_t *req);
} tf_sink_t;

#define TF_STREAM_BUF (64u * 1024u)

/* Per loop thread: where reads land and TLS plaintext is decrypted, so that
 * a connection keeps only the bytes that must wait. Owned by the loop's
 * owner (the worker), shared by every stream of that loop. */
typedef struct {
    char rbuf[TF_STREAM_BUF]; /* libuv reads (alloc_cb) */
    char pbuf[TF_STREAM_BUF]; /* TLS plaintext */
} tf_stream_bufs_t;

typedef struct {
    /* Start or stop reading from the peer. read_start is idempotent. */
    int (*read_start)(tf_stream_t *s);
    void (*read_stop)(tf_stream_t *s);
    /* Queues len bytes of plaintext for the peer: copied (or encrypted)
     * before it returns, written as soon as the stream is writable and no
     * write is in flight. 0, or a negative code (the connection fails). */
    int (*write)(tf_stream_t *s, const void *data, size_t len);
    /* Ends the stream's output after everything queued: TCP FIN, or a TLS
     * close_notify. The sink's shut() reports when it has been sent. */
    int (*shutdown)(tf_stream_t *s);
    /* Closes the handle; `cb` runs once libuv has closed it. */
    void (*close)(tf_stream_t *s, uv_close_cb cb);
    /* Bytes accepted by write() not yet handed to the kernel. */
    size_t (*pending)(const tf_stream_t *s);
    /* Writes what waits now (what tf_stream_uncork() calls). 0 or a code. */
    int (*flush)(tf_stream_t *s);
    /* A stream that carries messages, not bytes (an HTTP/2 stream): takes
     * a backend's response head as parsed (pointers valid during the call)
     * with what the proxy changes in it (HOW), in place of the text
     * tf_http_rewrite_response_head() would write; the body follows through
     * write() in its HTTP/1.1 framing. NULL on byte streams, which are
     * written the text. *TEXT_LEN receives the size of the head as that
     * text (what the access log counts). 0, or a negative code (the
     * connection fails). */
    int (*write_head)(tf_stream_t *s, const tf_http_response_t *resp,
                      const tf_http_resp_rewrite_t *how, size_t *text_len);
} tf_stream_ops_t;

enum {
    TF_STREAM_READING = 1 << 0,      /* uv_read_start is active */
    TF_STREAM_WRITABLE = 1 << 1,     /* connected: queued bytes may be written */
    TF_STREAM_SHUT_WANTED = 1 << 2,  /* shut the write side once drained */
    TF_STREAM_SHUT_SENT = 1 << 3,    /* FIN or close_notify handed to libuv */
    TF_STREAM_OPEN = 1 << 4,         /* the uv_tcp_t is initialised, not closing */
    TF_STREAM_SHUT_DONE = 1 << 5,    /* the sink has been told: shut() ran */
    TF_STREAM_CORKED = 1 << 6,       /* writes wait for tf_stream_uncork() */
    TF_STREAM_HANDSHAKE = 1 << 7,    /* TLS: handshaking; ready() has not run */
    TF_STREAM_TLS_BORROWED = 1 << 8, /* `tls` is another stream's (an HTTP/2
                                        stream's connection): not freed here */
};

struct tf_stream {
    const tf_stream_ops_t *ops;
    const tf_sink_t *sink; /* NULL: released, nothing is reported */
    void *owner;           /* installed with the sink; the stream never reads it */
    tf_stream_bufs_t *bufs;
    tf_tls_session_t *tls; /* the client's session; NULL on plain TCP */
    void *transport;       /* what carries a stream that is not a socket (an
                              HTTP/2 stream's state), or NULL */
    char *wbuf;            /* bytes of the write in flight (malloc'd), or NULL */
    size_t wlen;
    char *qbuf; /* plain TCP: bytes waiting behind the write in flight */
    size_t qlen, qcap;
    struct tf_stream_preface *preface; /* bytes read before TLS, or NULL */
    uint16_t flags;
    uv_write_t wreq;
    /* Both are uv_stream_t: everything but init and connect casts to that.
     * A client is always TCP; a backend is a pipe for a unix: address. */
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    };
};

/* A backend connection: a plain TCP stream allocated on its own, so that it
 * can outlive the client connection that opened it (the pool keeps idle
 * ones with a sink of its own, pool.h). */
typedef struct tf_bstream {
    tf_stream_t s;
    union {
        uv_connect_t connect;
        uv_shutdown_t shutdown;
    } req;                          /* a connect completes before any shutdown */
    struct tf_bstream *prev, *next; /* a pool's idle list */
    void *bucket;                   /* the pool bucket holding it while idle */
    uint64_t idle_since_ms;
    uint32_t uses;     /* requests it has carried */
    uint32_t raw_head; /* queued bytes that precede TLS (a PROXY header), for
                          tf_stream_tls_connect() */
} tf_bstream_t;

extern const tf_stream_ops_t tf_stream_tcp_ops;
extern const tf_stream_ops_t tf_stream_tls_ops;

/* Prepares an embedded stream; tf_stream_tcp_init() then opens its handle. */
void tf_stream_init(tf_stream_t *s, const tf_stream_ops_t *ops, tf_stream_bufs_t *bufs);

/* Initialises the stream's uv_tcp_t on `loop` (for uv_accept, uv_tcp_open
 * or a connect) and marks it open. 0 or a UV_* code. */
int tf_stream_tcp_init(tf_stream_t *s, uv_loop_t *loop);

/* Installs the sink that receives the stream's events from now on, with
 * the owner's pointer (s->owner). The swap takes effect at once, also in
 * the middle of a read: the rest of the bytes go to the new sink. */
void tf_stream_set_sink(tf_stream_t *s, const tf_sink_t *sink, void *owner);

/* Whether the stream still reports: open, with a sink. */
static inline bool tf_stream_live(const tf_stream_t *s)
{
    return s->sink != NULL && (s->flags & TF_STREAM_OPEN);
}

/* TLS: takes `tls` (freed with the stream) and starts the server handshake
 * at the first bytes read; the sink's ready() reports its end. The stream
 * is writable at once (alerts and the handshake's records). */
void tf_stream_tls_accept(tf_stream_t *s, tf_tls_session_t *tls);

/* A backend stream, connected, becomes a TLS client on `tls` (taken; freed
 * with the stream, or here on failure): the first raw_head queued bytes go
 * out as they are, then the ClientHello; what was queued after them, and
 * what is written before the handshake ends, is encrypted once it has. The
 * queue keeps everything (the raw head too) until then, so that a retry
 * after a failed handshake moves all of it to the next backend.
 * The sink's ready() reports the end of the handshake, error() its failure
 * (`what`: the session's reason, "certificate verify failed: ..."). 0 or a
 * negative code (nothing was reported). */
int tf_stream_tls_connect(tf_stream_t *s, tf_tls_session_t *tls);

/* What comes before the TLS bytes on a TLS stream (a PROXY protocol
 * header, SPEC §14): the stream hands fn what it read so far (kept across
 * reads, at most max bytes), fn returns the bytes the preface took once it
 * is whole (> 0; what follows them is TLS), 0 to read more, or a negative
 * code to refuse it (the sink hears error() unless fn closed the
 * connection; nothing is written). Call before read_start(). 0 or
 * TF_ENOMEM. */
typedef int (*tf_stream_preface_fn)(tf_stream_t *s, const char *data, size_t len);
int tf_stream_tls_expect_preface(tf_stream_t *s, tf_stream_preface_fn fn, size_t max);

/* TLS, best effort: a close_notify before a close the owner decides
 * (timeouts, drain), so that the peer can tell it from a truncation; only
 * if the socket takes it at once, as nothing waits for a peer that does not
 * read. Nothing on plain TCP or during the handshake. */
void tf_stream_goodbye(tf_stream_t *s);

/* Frees the queue and the in-flight buffer; call after the handle closed. */
void tf_stream_dispose(tf_stream_t *s);

/* A new backend stream reporting to `sink` (owner), its handle initialised
 * on `loop` for connecting to `sa`: a uv_pipe_t for AF_UNIX, else a
 * uv_tcp_t. NULL when out of memory or handles. */
tf_stream_t *tf_bstream_new(uv_loop_t *loop, tf_stream_bufs_t *bufs, const struct sockaddr *sa,
                            const tf_sink_t *sink, void *owner);

/* Starts connecting to `sa` (the address the stream was made for); `cb`
 * runs with the stream's tf_bstream_t request. */
int tf_bstream_connect(tf_stream_t *s, const struct sockaddr *sa, uv_connect_cb cb);

/* Whether the stream's handle is a TCP socket (not a unix one). */
static inline bool tf_stream_is_tcp(const tf_stream_t *s)
{
    return s->tcp.type == UV_TCP;
}

static inline tf_bstream_t *tf_bstream_of(tf_stream_t *s)
{
    return (tf_bstream_t *)(void *)s;
}

/* Detaches a backend stream from its owner, closes it and frees it once
 * libuv has (pending callbacks see no sink and do nothing). */
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
