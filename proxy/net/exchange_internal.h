/* proxy/net HTTP/1 exchanges, internal to exchange*.c: the state of one
 * client connection's exchange and the functions its three files share.
 *   exchange.c           start, request head, backend, request body, errors,
 *                        the streams' sinks, backpressure
 *   exchange_response.c  response head and body, completion, the upgrade
 *   exchange_timers.c    deadlines, drain, the connection mode (conn.h)
 */
#ifndef TF_PROXY_NET_EXCHANGE_INTERNAL_H
#define TF_PROXY_NET_EXCHANGE_INTERNAL_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "common/util.h"
#include "proxy/http/http.h"
#include "proxy/net/exchange.h"
#include "proxy/net/worker.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { RQ_IDLE, RQ_HEAD, RQ_BODY, RQ_DONE };
enum { RS_NONE, RS_WAIT, RS_BODY, RS_DONE };

/* A backend's response head may not exceed this. */
#define HX_RESP_HEAD_MAX (64u * 1024u)
/* Pipelined bytes read ahead while a response is relayed. */
#define HX_PIPELINE_MAX (64u * 1024u)

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

struct tf_hx {
    buf_t in;    /* client bytes not yet relayed: a head being read, pipelined requests */
    buf_t rin;   /* backend bytes of a response head being read */
    char *bhead; /* the request head as sent to the backend, kept for one retry */
    size_t bhead_len;
    tf_http_parser_t req, resp;
    uint64_t started_ms; /* the request's first byte */
    uint64_t sent_ms;    /* the request completely sent */
    uint64_t in_bytes, out_bytes;
    unsigned status;
    unsigned requests; /* completed on this connection */
    uint16_t server_port;
    uint16_t sni_status; /* route()'s answer for a Host equal to the SNI, once sni_routed */
    uint32_t sni_tenant;
    bool sni_routed;
    uint8_t rq, rs;
    bool head_method;   /* HEAD: the response has no body */
    bool client_keep;   /* the client may send another request */
    bool client_http10; /* keep-alive must be said explicitly */
    bool upgrade;       /* the client asked for an Upgrade */
    bool idempotent;
    bool reused;        /* the backend connection came from the pool */
    bool retried;       /* the request was sent again on a new connection */
    bool resp_close;    /* the response body ends when the backend closes */
    bool close_after;   /* the client connection ends after this response */
    bool responded;     /* bytes of the final response reached the client */
    bool backend_dirty; /* the backend connection cannot be reused */
    bool client_eof;
    bool closing;   /* the client is being told goodbye */
    bool lingering; /* close_notify sent: the client's input is drained, then closed */
    bool cutting;   /* a close-delimited response was cut: closed, without close_notify,
                       once what was relayed of it has gone out */
    bool logged;    /* the request's access line is written */
    const char *cut; /* why the response was cut short (access log), or NULL */
    /* The request's route (SPEC §11): its policy, pages, rules and
     * timeouts; NULL before the tenant is known. Points into the
     * connection's generation's configuration. */
    const tf_conf_route_t *route;
    uint32_t retry_after; /* seconds, for a 429 or a 503 with every backend full; 0: none */
    uint64_t linger_until_ms;
    uint8_t version_minor;
    int64_t started_wall_ms; /* the request's first byte, for the access log */
    char client_addr[INET6_ADDRSTRLEN];
    char method[16];
    char *target; /* a copy of the request target (malloc'd), or NULL */
    size_t target_len;
};

/* ---- buffers and small helpers ------------------------------------------ */

static inline int buf_append(buf_t *b, const char *data, size_t len)
{
    return tf_bytes_append(&b->p, &b->len, &b->cap, 4096, data, len);
}

/* Drops the first n bytes; an emptied buffer gives its memory back, so an
 * idle keep-alive connection holds none. */
static inline void buf_consume(buf_t *b, size_t n)
{
    if (n >= b->len) {
        free(b->p);
        *b = (buf_t){0};
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static inline void buf_free(buf_t *b)
{
    free(b->p);
    *b = (buf_t){0};
}

static inline uint64_t now_ms(const tf_conn_t *c)
{
    return uv_now(&c->worker->loop);
}

static inline const tf_conf_t *conf_of(const tf_conn_t *c)
{
    return c->gen->conf;
}

/* ---- shared between the exchange's files --------------------------------- */

/* exchange.c */

/* Releases the exchange's state (the mode's free()). */
void tf_hx__free(tf_conn_t *c);
/* Writes to the client; a failure closes the connection. 0 or the code. */
int tf_hx__client_write(tf_conn_t *c, const void *data, size_t len);
/* Writes to the backend; a failure is handled as the backend's (retry or
 * 502) once. 0 or the code. */
int tf_hx__backend_write(tf_conn_t *c, const void *data, size_t len);
/* Lets go of the backend connection (closed, not pooled). */
void tf_hx__release_backend(tf_conn_t *c);
/* The exchange's access log line and metrics, once per request (later
 * calls for the same request do nothing). */
void tf_hx__log_exchange(tf_conn_t *c);
/* Moves the exchange on with what the client's input buffer holds. */
void tf_hx__process(tf_conn_t *c);
/* Answers with an error of our own and ends the connection; once a
 * response is under way, only cutting it is left (tf_hx__cut). */
void tf_hx__send_error(tf_conn_t *c, unsigned status);
/* The response whose head went to the client cannot go on (`why`, a static
 * slug for the access log: backend_closed, bad_body...): logs the request
 * as cut and ends the connection after the bytes already relayed, with a
 * close_notify only when the response's framing (Content-Length, chunked)
 * lets the client see that it is incomplete. */
void tf_hx__cut(tf_conn_t *c, const char *why);
/* Reading decisions for both streams after any change (backpressure). */
void tf_hx__balance(tf_conn_t *c);

/* exchange_response.c */

/* Bytes read from the backend: the response's head or body. */
void tf_hx__backend_data(tf_conn_t *c, const char *data, size_t len);
/* The response is complete: the backend goes back to the pool when it can,
 * and the connection waits for the next request or ends. */
void tf_hx__response_done(tf_conn_t *c);
/* Ends the client connection after what is queued: close_notify, close. */
void tf_hx__finish_client(tf_conn_t *c);

/* exchange_route.c */

/* The route of a request whose tenant is chosen (c->tenant), and its
 * policy: sets hx->route and c->route, and for a route to backends fills
 * FWD's target (strip_prefix), rules and sticky cookie (c->sticky).
 * *SCRATCH is a caller's buffer of TF_HX_SCRATCH bytes, replaced by a
 * malloc'd one (the caller frees it when it changed) for a long target;
 * FWD's target points into it. Returns 0, or the status to answer: 400 (a
 * path that cannot be routed, a non-WebSocket request on a websocket
 * route), 403 (allow), 429 (rate; hx->retry_after set), 503 (memory). */
#define TF_HX_SCRATCH 2048
unsigned tf_hx__route_request(tf_conn_t *c, const tf_http_request_t *r, tf_http_forward_t *fwd,
                              char **scratch);
/* Answers a request whose route is a `redirect` or a `respond` (its head
 * consumed from the input), keeping the connection when it can. */
void tf_hx__answer_route(tf_conn_t *c, bool body_follows);
/* An error response of our own for STATUS into a malloc'd *OUT: the route's
 * page (`errors`) or a short text, Retry-After, Connection: close, the
 * route's response rules. 0 or TF_ENOMEM. */
int tf_hx__error_response(const tf_conn_t *c, unsigned status, char **out, size_t *len);
/* The request's route's response header rules, or NULL when none. */
const tf_conf_header_rules_t *tf_hx__response_rules(const tf_hx_t *hx);
/* Bytes the `set` rules may add to a head. */
size_t tf_hx__rules_size(const tf_conf_header_rules_t *rules);

/* exchange_timers.c: the connection mode of every HTTP/1 connection. */
extern const tf_conn_mode_t tf_hx__mode;

#endif
