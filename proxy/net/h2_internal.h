/* proxy/net HTTP/2, internal to h2*.c: the session's and the streams'
 * state and what the two files share.
 *   h2.c         the session: nghttp2's callbacks, the TLS stream's sink,
 *                the connection mode (timer, drain, free), the budgets
 *   h2_stream.c  one stream as a client stream (tf_stream_h2_ops): the
 *                request handed to the exchange, its response read back
 */
#ifndef TF_PROXY_NET_H2_INTERNAL_H
#define TF_PROXY_NET_H2_INTERNAL_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "common/util.h"
#include "proxy/http/http.h"
#include "proxy/net/h2.h"
#include "proxy/net/worker.h"

#include <nghttp2/nghttp2.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Response bytes a connection's streams may hold for a client that does
 * not take them (zero windows) before every stream with bytes waiting
 * reports itself full to its exchange, which stops reading its backend. */
#define H2_CONN_OUT_MAX (1024u * 1024u)

/* A header block decoding to more than this many times
 * limits.max_header_bytes ends the connection (HPACK abuse); over once, the
 * stream is answered 431. */
#define H2_HPACK_ABUSE 8u

/* Bytes waiting, consumed from the front. */
typedef struct {
    char *p;
    size_t off, len, cap; /* live bytes are p[off .. off+len) */
} tf_h2_buf_t;

int tf_h2__buf_append(tf_h2_buf_t *b, const void *data, size_t len);
void tf_h2__buf_consume(tf_h2_buf_t *b, size_t n);
void tf_h2__buf_free(tf_h2_buf_t *b);
/* An empty buffer may have no memory: NULL then, never NULL + 0 (UB). */
static inline const char *tf_h2__buf_data(const tf_h2_buf_t *b)
{
    return b->p != NULL ? b->p + b->off : NULL;
}

/* A request's header fields as they arrive: names and values copied into
 * `text`, located by offsets (the text moves as it grows). */
typedef struct {
    uint32_t name, name_len, value, value_len;
} tf_h2_field_at_t;

typedef struct {
    char *text;
    size_t len, cap;
    tf_h2_field_at_t *at;
    size_t n, ncap;
    size_t bytes;   /* decoded size, as HTTP/1.1 would count it */
    size_t cookies; /* cookie fields among them: joined into one when handed on */
} tf_h2_fields_t;

/* Where a stream's response stands (what the exchange wrote). */
enum { H2R_HEAD, H2R_BODY, H2R_TUNNEL, H2R_DONE };

typedef struct tf_h2s tf_h2s_t;

/* One stream. `conn` comes first: once the stream has a child connection,
 * conn.c frees the whole struct with it. */
struct tf_h2s {
    tf_conn_t conn;
    tf_h2_t *h2;           /* NULL once detached (child closed, session gone) */
    tf_h2s_t *prev, *next; /* the session's streams */
    int32_t id;
    /* ---- the request ---- */
    tf_h2_head_t head;          /* its head for the exchange, until handed on */
    tf_http_header_t *head_mem; /* head's fields, then the bytes they point to
                                   (one block); NULL once handed on */
    tf_h2_buf_t in;             /* HTTP/1.1 body bytes for the exchange, not handed on yet */
    size_t unconsumed;          /* DATA bytes in `in` whose window is not reopened */
    tf_h2_request_info_t info;
    /* ---- the response ---- */
    tf_http_parser_t rp;
    tf_h2_buf_t rhead; /* a response head split across writes */
    tf_h2_buf_t out;   /* DATA payload waiting for nghttp2 */
    tf_h2_fields_t trailers;
    uint8_t rstate; /* H2R_* */
    /* ---- flags ---- */
    bool started;         /* the child connection exists */
    bool too_big;         /* the header block went over limits: 431 */
    bool req_ended;       /* the client's END_STREAM arrived */
    bool eof_told;        /* the exchange was told (eof) */
    bool submitted;       /* response HEADERS submitted */
    bool out_ended;       /* no more DATA: END_STREAM once `out` is sent */
    bool deferred;        /* nghttp2 waits for resume_data */
    bool end_sent;        /* END_STREAM (or a reset) went out */
    bool closed;          /* nghttp2 closed the stream */
    bool client_reset;    /* ... because the client sent RST_STREAM */
    bool tell_shut;       /* the exchange wants to hear shut() */
    bool tell_reset;      /* the exchange is to hear error() */
    bool tell_written;    /* the exchange is to hear written() */
    bool close_delimited; /* the response's body ends where the backend closed */
    bool active;          /* counted in nactive */
    uint64_t progress_ms; /* lingering: when its answer last moved */
    /* The child closed with its answer complete but not all sent (a
     * redirect answered at once, then the client's end): the stream keeps
     * the struct (conn.c waits for this callback) until END_STREAM is out. */
    uv_close_cb close_cb;
};

/* The session: c->h2 of its connection. */
struct tf_h2 {
    tf_conn_t *c;
    nghttp2_session *ng;
    tf_defer_t defer;
    tf_h2s_t *streams; /* every stream with state here */
    size_t nstreams;
    size_t out_total;   /* response bytes waiting in the streams' `out` */
    size_t nlinger;     /* streams whose child closed, their answer still leaving */
    size_t nactive;     /* streams whose exchange runs (they keep their own time) */
    uint64_t block_ms;  /* a request's header block began then and is not done; 0: none */
    int32_t block_id;   /* the stream that block belongs to */
    char peer_text[64]; /* the client's address, once for every stream */
    /* Budgets (token buckets, refilled with time): streams the client reset
     * before their answer; frames that carry no request or progress. */
    double resets, junk;
    uint64_t budget_ms;
    uint32_t fatal; /* the GOAWAY code a callback asked for, or 0 */
    unsigned busy;  /* nested runs: the struct is freed after the outermost */
    bool dead;      /* the connection closed during a run */
    bool draining;  /* GOAWAY sent for a drain */
    bool goaway;    /* any GOAWAY queued */
};

/* h2.c */
/* Queues the session's run (deliveries, then frames out) for this round. */
void tf_h2__wake(tf_h2_t *h2);

/* h2_stream.c */
/* The stream for a request whose HEADERS arrived whole: a child connection
 * with its exchange, the request head waiting in `head`; or a 431 / a
 * reset for a request that cannot be relayed. */
void tf_h2__request(tf_h2_t *h2, tf_h2s_t *st, bool end_stream);
/* The client's trailers (the last HEADERS) ended a request. */
void tf_h2__request_trailers(tf_h2_t *h2, tf_h2s_t *st);
/* DATA payload for the request; *consume_now: nobody will take it, so the
 * caller reopens the window at once. */
int tf_h2__request_data(tf_h2s_t *st, const uint8_t *data, size_t len);
/* The client's END_STREAM on DATA. */
void tf_h2__request_end(tf_h2s_t *st);
/* Tells the stream's exchange what happened since the last run: bytes to
 * read, the end of the request, a reset, its response sent. */
void tf_h2__deliver(tf_h2s_t *st);
/* nghttp2's data source for a response body. */
ssize_t tf_h2__read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud);
/* Collects one decoded header field; false when the block must end the
 * connection (far over limits.max_header_bytes: HPACK abuse). */
bool tf_h2__field(tf_h2_t *h2, tf_h2s_t *st, const uint8_t *name, size_t nlen, const uint8_t *value,
                  size_t vlen);
/* Ends a stream whose child closed while its answer was leaving (close_cb):
 * detached, its buffers freed, then conn.c's callback, which may free it. */
void tf_h2__stream_finish(tf_h2s_t *st);
/* Lingering streams whose answer has not moved for timeouts.idle are reset
 * (a client that keeps the connection busy but never opens the window);
 * returns the earliest deadline of the others, or UINT64_MAX. */
uint64_t tf_h2__expire_lingering(tf_h2_t *h2, uint64_t now, uint64_t idle_ms);
/* Frees a stream that never got a child connection into W's cache. */
void tf_h2__stream_free(tf_worker_t *w, tf_h2s_t *st);
/* Response bytes into / out of a stream's `out`, counted for the session. */
int tf_h2__out_append(tf_h2s_t *st, const void *data, size_t len);
void tf_h2__out_consume(tf_h2s_t *st, size_t n);
void tf_h2__fields_clear(tf_h2_fields_t *f);
/* The loop's header block (tf_worker_t.h2_block), emptied: a HEADERS
 * frame begins. */
void tf_h2__block_begin(tf_worker_t *w);

#endif
