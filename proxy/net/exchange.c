/* See exchange.h. Functions appear in the order an exchange meets them:
 * start, request head, backend, request body, response head, response
 * body, completion, errors, timers, backpressure. */
#include "proxy/net/exchange.h"

#include "certstore/certstore.h"
#include "common/err.h"
#include "proxy/obs/obs.h"
#include "proxy/http/http.h"
#include "proxy/net/pool.h"
#include "common/util.h"
#include "proxy/net/upstream.h"
#include "proxy/net/worker.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
    uint64_t linger_until_ms;
    uint8_t version_minor;
    int64_t started_wall_ms; /* the request's first byte, for the access log */
    char client_addr[INET6_ADDRSTRLEN];
    char method[16];
    char *target; /* a copy of the request target (malloc'd), or NULL */
    size_t target_len;
};

/* Parsed heads are only needed while their head is handled: one per thread. */
static _Thread_local tf_http_request_t req_scratch;
static _Thread_local tf_http_response_t resp_scratch;

static void process(tf_conn_t *c);
static void send_error(tf_conn_t *c, unsigned status);
static void hx_balance(tf_conn_t *c);
static void backend_error(tf_conn_t *c, int err);
static const tf_conn_mode_t http_mode;
static const tf_sink_t client_sink, backend_sink;
static const tf_conn_backend_user_t backend_user;
static void response_done(tf_conn_t *c);
static void resp_head(tf_conn_t *c, const char *data, size_t len);

/* ---- buffers ---------------------------------------------------------- */

static int buf_append(buf_t *b, const char *data, size_t len)
{
    return tf_bytes_append(&b->p, &b->len, &b->cap, 4096, data, len);
}

/* Drops the first n bytes; an emptied buffer gives its memory back, so an
 * idle keep-alive connection holds none. */
static void buf_consume(buf_t *b, size_t n)
{
    if (n >= b->len) {
        free(b->p);
        *b = (buf_t){0};
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void buf_free(buf_t *b)
{
    free(b->p);
    *b = (buf_t){0};
}

static void hx_free(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    c->hx = NULL;
    if (hx == NULL)
        return;
    buf_free(&hx->in);
    buf_free(&hx->rin);
    free(hx->bhead);
    free(hx->target);
    free(hx);
}

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ms(const tf_conn_t *c)
{
    return uv_now(&c->worker->loop);
}

static const tf_conf_t *conf_of(const tf_conn_t *c)
{
    return c->gen->conf;
}

static bool backend_ready(const tf_conn_t *c)
{
    return c->backend != NULL && c->phase == TF_CONN_HTTP;
}

/* Writes to the client; a failure closes the connection. */
static int client_write(tf_conn_t *c, const void *data, size_t len)
{
    int rc = c->client.ops->write(&c->client, data, len);
    if (rc < 0 && !tf_conn_closing(c))
        tf_conn_fail(c, rc, "client write");
    return rc;
}

/* Writes to the backend; a failure goes to backend_error() once
 * (the stream may have reported it already). */
static int backend_write(tf_conn_t *c, const void *data, size_t len)
{
    tf_stream_t *b = c->backend;
    int rc = b->ops->write(b, data, len);
    if (rc < 0 && c->backend == b && !tf_conn_closing(c))
        backend_error(c, rc);
    return rc;
}

static void release_backend(tf_conn_t *c)
{
    if (c->backend != NULL) {
        tf_bstream_release(c->backend);
        c->backend = NULL;
    }
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The access log line of one exchange (SPEC §9). */
static void log_exchange(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    tf_upstream_t *u = c->gen->upstream;
    const char *tenant =
        c->tenant != TF_CONN_NO_INDEX ? tf_upstream_tenant_name(u, c->tenant) : NULL;
    const char *backend = c->tenant != TF_CONN_NO_INDEX && c->backend_ix != TF_CONN_NO_INDEX
                              ? tf_upstream_backend(u, c->tenant, c->backend_ix)->text
                              : NULL;
    uint64_t ms = now_ms(c) - hx->started_ms;
    TF_CONN_LOG(TF_LOG_DEBUG, c,
                "%s %.*s %u in=%llu out=%llu duration_ms=%llu tenant=%s backend=%s",
                hx->method[0] ? hx->method : "-",
                (int)(hx->target_len > 200 ? 200 : hx->target_len), hx->target ? hx->target : "-",
                hx->status, (unsigned long long)hx->in_bytes, (unsigned long long)hx->out_bytes,
                (unsigned long long)ms, tenant ? tenant : "-", backend ? backend : "-");
    tf_metrics_request(c->worker->metrics, tenant, hx->status, ms);
    tf_access_log_t *log = c->worker->server->shared->access;
    if (log == NULL || !tf_access_enabled(log))
        return;
    tf_access_entry_t e = {
        .time_ms = hx->started_wall_ms ? hx->started_wall_ms : wall_ms(),
        .client = hx->client_addr,
        .sni = tf_tls_session_sni(c->client.tls),
        .tenant = tenant,
        .method = hx->method,
        .method_len = strlen(hx->method),
        .path = hx->target,
        .path_len = hx->target ? hx->target_len : 0,
        .version_minor = hx->version_minor,
        .status = (int)hx->status,
        .bytes_in = hx->in_bytes,
        .bytes_out = hx->out_bytes,
        .duration_ms = ms,
        .backend = backend,
    };
    tf_access_write(log, &e);
}

/* ---- start -------------------------------------------------------------- */

static void peer_addr_text(const tf_conn_t *c, char *out, size_t len)
{
    if (c->peer.sa.sa_family == AF_INET)
        inet_ntop(AF_INET, &c->peer.in4.sin_addr, out, (socklen_t)len);
    else if (c->peer.sa.sa_family == AF_INET6)
        inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, out, (socklen_t)len);
    else
        snprintf(out, len, "unknown");
}

/* The listener's port where it is known: an accepted socket's local port is
 * the listening socket's, so asking the socket would give the same. */
static uint16_t local_port(tf_conn_t *c)
{
    if (c->local_port != 0)
        return c->local_port;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&c->client.tcp, (struct sockaddr *)&ss, &len) != 0)
        return 443;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int tf_hx_start(tf_conn_t *c)
{
    tf_hx_t *hx = calloc(1, sizeof *hx);
    if (hx == NULL)
        return TF_ENOMEM;
    peer_addr_text(c, hx->client_addr, sizeof hx->client_addr);
    hx->server_port = local_port(c);
    c->hx = hx;
    c->mode = &http_mode;
    c->phase = TF_CONN_HTTP;
    c->traffic.active_ms = now_ms(c);
    tf_stream_set_sink(&c->client, &client_sink, c);
    tf_conn_arm_timer(c);
    hx_balance(c);
    return 0;
}

/* ---- the request head ---------------------------------------------------- */

/* Host without its port, lower case, into out. False when it is not a
 * usable name (empty, too long, a bracket left open). */
static bool host_only(const char *h, size_t len, char *out, size_t outlen)
{
    size_t end = len;
    if (len > 0 && h[0] == '[') {
        const char *rb = memchr(h, ']', len);
        if (rb == NULL)
            return false;
        end = (size_t)(rb - h) + 1;
    } else {
        const char *colon = memchr(h, ':', len);
        if (colon != NULL)
            end = (size_t)(colon - h);
    }
    if (end > 0 && h[end - 1] == '.')
        end--;
    if (end == 0 || end >= outlen)
        return false;
    for (size_t i = 0; i < end; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (ch <= ' ' || ch == '/' || ch == '\\' || ch >= 0x7f)
            return false;
        out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    out[end] = '\0';
    return true;
}

static bool same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 0 && a[la - 1] == '.')
        la--;
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* SPEC §7: with SNI, Host must be that name or one the served certificate
 * covers, or the request is misdirected (no fronting across certificates).
 * Covering is the store's own rule, so that a Host is accepted exactly when
 * it could have selected this certificate as SNI. */
static bool host_allowed(const tf_conn_t *c, const char *host, const char *sni)
{
    if (same_name(host, sni))
        return true;
    const tf_cs_bundle_t *b = tf_tls_session_served(c->client.tls);
    return b != NULL && tf_cs_bundle_covers(b, host);
}

static bool method_is(const tf_http_request_t *r, const char *m)
{
    return r->method_len == strlen(m) && memcmp(r->method, m, r->method_len) == 0;
}

static void copy_clipped(char *out, size_t outlen, const char *s, size_t len)
{
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

/* The tenant for the request (into *tenant), or an HTTP status to answer. */
static unsigned route_host(tf_conn_t *c, const tf_http_request_t *r, const char *sni,
                           uint32_t *tenant)
{
    char host[256];
    const char *name = sni;
    if (r->host != NULL) {
        if (!host_only(r->host, r->host_len, host, sizeof host))
            return 400;
        if (sni != NULL && !host_allowed(c, host, sni))
            return 421;
        name = host;
    }
    tf_upstream_t *u = c->gen->upstream;
    uint32_t t = tf_upstream_route(u, name);
    if (t == TF_UPSTREAM_NONE)
        return 404;
    /* A mode tcp tenant's names get raw TCP on connections of their own. */
    if (tf_upstream_tenant_conf(u, t)->mode == TF_CONF_MODE_TCP)
        return 421;
    *tenant = t;
    return 0;
}

/* The same, setting c->tenant. The answer depends only on the Host's bytes,
 * the connection's SNI and certificate and its generation's tenants, none
 * of which change during the connection: so the usual Host, the SNI byte
 * for byte, is routed once per connection, not at every request. */
static unsigned route(tf_conn_t *c, const tf_http_request_t *r)
{
    tf_hx_t *hx = c->hx;
    const char *sni = tf_tls_session_sni(c->client.tls);
    bool as_sni = sni != NULL && r->host != NULL && strlen(sni) == r->host_len &&
                  memcmp(sni, r->host, r->host_len) == 0;
    if (!as_sni || !hx->sni_routed) {
        uint32_t t = TF_CONN_NO_INDEX;
        unsigned status = route_host(c, r, sni, &t);
        if (!as_sni) {
            if (status == 0)
                c->tenant = t;
            return status;
        }
        hx->sni_routed = true;
        hx->sni_status = (uint16_t)status;
        hx->sni_tenant = t;
    }
    if (hx->sni_status == 0)
        c->tenant = hx->sni_tenant;
    return hx->sni_status;
}

static int rewrite(tf_conn_t *c, const tf_http_request_t *r)
{
    tf_hx_t *hx = c->hx;
    tf_http_forward_t fwd = {.client_addr = hx->client_addr, .server_port = hx->server_port};
    /* Every header may grow by ": " spacing; then the X-Forwarded-* lines. */
    size_t cap = r->head_len + r->host_len + 2 * r->nheaders + 256 + INET6_ADDRSTRLEN;
    free(hx->bhead);
    hx->bhead = malloc(cap);
    if (hx->bhead == NULL)
        return TF_ENOMEM;
    long n = tf_http_rewrite_head(r, &fwd, hx->bhead, cap);
    if (n < 0)
        return TF_ENOMEM;
    hx->bhead_len = (size_t)n;
    return 0;
}

/* A complete head: route it, rewrite it and find a backend connection.
 * `rest` (rest_len bytes) is what followed the head when it was parsed
 * straight from the bytes read, NULL when it was parsed in `in`. */
static void handle_head(tf_conn_t *c, const tf_http_request_t *r, const char *rest, size_t rest_len)
{
    tf_hx_t *hx = c->hx;
    copy_clipped(hx->method, sizeof hx->method, r->method, r->method_len);
    free(hx->target);
    hx->target_len = r->target_len;
    hx->target = malloc(r->target_len + 1);
    if (hx->target != NULL)
        copy_clipped(hx->target, r->target_len + 1, r->target, r->target_len);
    hx->version_minor = (uint8_t)r->version_minor;
    hx->head_method = method_is(r, "HEAD");
    hx->idempotent = hx->head_method || method_is(r, "GET") || method_is(r, "OPTIONS") ||
                     method_is(r, "PUT") || method_is(r, "DELETE") || method_is(r, "TRACE");
    hx->client_keep = r->keep_alive && !c->worker->stopping && !hx->client_eof;
    hx->client_http10 = r->version_minor == 0;
    hx->upgrade = r->upgrade;
    /* A reverse proxy has no business opening tunnels to arbitrary places
     * (nginx answers CONNECT with 400 too). */
    c->tenant = c->backend_ix = TF_CONN_NO_INDEX;
    unsigned status = method_is(r, "CONNECT") ? 400 : route(c, r);
    if (status != 0) {
        send_error(c, status);
        return;
    }
    if (rewrite(c, r) != 0) {
        send_error(c, 431);
        return;
    }
    if (rest == NULL) {
        buf_consume(&hx->in, r->head_len);
    } else if (rest_len > 0 && buf_append(&hx->in, rest, rest_len) != 0) {
        tf_conn_fail(c, TF_ENOMEM, "client read");
        return;
    }
    hx->rq = r->body == TF_HTTP_BODY_NONE ? RQ_DONE : RQ_BODY;
    hx->rs = RS_WAIT;
    tf_http_parser_init_response(&hx->resp, hx->head_method);
    c->attempts = 0;
    c->backend_ix = TF_CONN_NO_INDEX;
    tf_conn_connect_backend(c, &backend_user);
}

/* Reads a request head from `in`, or, when `in` is empty, straight from the
 * bytes just read (data, len; NULL: from `in`), which are kept in `in` only
 * when they are not a whole head: the usual request costs no copy. */
static void read_head(tf_conn_t *c, const char *data, size_t len)
{
    tf_hx_t *hx = c->hx;
    bool direct = data != NULL;
    /* A head starts: nothing of it is kept in `in`, or `in` holds what
     * followed the previous request. */
    bool fresh = direct || hx->rq == RQ_IDLE;
    if (!direct)
        data = hx->in.p, len = hx->in.len;
    if (hx->rq == RQ_IDLE) {
        hx->rq = RQ_HEAD;
        hx->started_ms = now_ms(c);
        tf_access_log_t *log = c->worker->server->shared->access;
        hx->started_wall_ms = log != NULL && tf_access_enabled(log) ? wall_ms() : 0;
        tf_conn_arm_timer(c);
    }
    /* RFC 9112 §2.2: an empty line before a request line is ignored (some
     * clients send one after a body). */
    size_t skip = 0;
    while (skip + 1 < len && skip < 4 && data[skip] == '\r' && data[skip + 1] == '\n')
        skip += 2;
    if (skip > 0 && direct) {
        data += skip;
        len -= skip;
    } else if (skip > 0) {
        buf_consume(&hx->in, skip);
        data = hx->in.p, len = hx->in.len;
    }
    /* The parser resumes where the previous read left it (a head sent byte
     * by byte costs linear time), unless the head starts anew. */
    if (fresh || skip > 0)
        tf_http_parser_init(&hx->req);
    uint32_t max = tf_conf_limits(conf_of(c))->max_header_bytes;
    tf_http_request_t *r = &req_scratch;
    /* A lone CR may begin an empty line that the skip above drops once its
     * LF arrives: the parser would refuse it as a start line. */
    int rc = len == 1 && data[0] == '\r' ? TF_HTTP_MORE
                                         : tf_http_parse_head(&hx->req, data, len, max, r);
    if (rc == TF_HTTP_MORE) {
        if (direct && len > 0 && buf_append(&hx->in, data, len) != 0)
            tf_conn_fail(c, TF_ENOMEM, "client read");
        return;
    }
    if (rc != 0) {
        send_error(c, (unsigned)rc);
        return;
    }
    handle_head(c, r, direct ? data + r->head_len : NULL, len - r->head_len);
}

/* ---- the backend connection ---------------------------------------------- */

static void backend_ready_cb(tf_conn_t *c, bool reused)
{
    tf_hx_t *hx = c->hx;
    tf_stream_t *b = c->backend;
    hx->reused = reused;
    c->phase = TF_CONN_HTTP;
    if (!reused && tf_stream_set_writable(b) != 0)
        return;
    if (tf_conn_closing(c) || c->backend != b)
        return;
    if (backend_write(c, hx->bhead, hx->bhead_len) < 0)
        return;
    /* Only a bodiless idempotent request on a reused connection may be
     * sent again: keep its head until the response begins. */
    if (!(reused && hx->idempotent && !hx->retried && hx->rq == RQ_DONE)) {
        free(hx->bhead);
        hx->bhead = NULL;
    }
    if (b->ops->read_start(b) != 0) {
        backend_error(c, UV_EIO);
        return;
    }
    if (hx->rq == RQ_DONE)
        hx->sent_ms = now_ms(c);
    tf_conn_arm_timer(c);
    process(c);
    if (!tf_conn_closing(c))
        hx_balance(c);
}

static bool pool_allowed(const tf_conn_t *c)
{
    return c->hx != NULL && !c->hx->retried;
}

static void backend_failed(tf_conn_t *c)
{
    c->phase = TF_CONN_HTTP;
    /* Nothing tried: the health checks found no backend healthy. */
    if (c->attempts == 0) {
        TF_CONN_LOG(TF_LOG_WARN, c, "tenant '%s': no healthy backend",
                    tf_upstream_tenant_name(c->gen->upstream, c->tenant));
        send_error(c, 503);
        return;
    }
    send_error(c, 502);
}

static void local_error(tf_conn_t *c)
{
    c->phase = TF_CONN_HTTP;
    send_error(c, 503);
}

static const tf_conn_backend_user_t backend_user = {
    .sink = &backend_sink,
    .ready = backend_ready_cb,
    .failed = backend_failed,
    .local_error = local_error,
    .pool_allowed = pool_allowed,
};

static void backend_error(tf_conn_t *c, int err)
{
    tf_hx_t *hx = c->hx;
    if (c->backend == NULL || tf_conn_closing(c))
        return;
    bool eof = err == UV_EOF;
    release_backend(c);
    if (hx->rs == RS_WAIT && hx->rin.len == 0 && hx->bhead != NULL && hx->reused && !hx->retried) {
        /* A pooled connection the backend had closed: once more, fresh. */
        TF_CONN_LOG(TF_LOG_DEBUG, c, "pooled backend connection %s: retrying on a new one",
                    eof ? "closed" : tf_strerror(err));
        hx->retried = true;
        c->attempts = 0;
        tf_conn_connect_backend(c, &backend_user);
        return;
    }
    if (hx->rs == RS_WAIT) {
        TF_CONN_LOG(TF_LOG_WARN, c, "backend %s before its response%s%s", eof ? "closed" : "failed",
                    eof ? "" : ": ", eof ? "" : tf_strerror(err));
        send_error(c, 502);
        return;
    }
    if (hx->rs == RS_BODY && hx->resp_close && eof) {
        hx->backend_dirty = true;
        response_done(c);
        return;
    }
    if (hx->rs == RS_BODY) {
        TF_CONN_LOG(TF_LOG_WARN, c, "backend %s in the middle of its response%s%s",
                    eof ? "closed" : "failed", eof ? "" : ": ", eof ? "" : tf_strerror(err));
        tf_conn_close(c, TF_LOG_WARN, "backend broke off its response");
    }
}

/* ---- the request body ---------------------------------------------------- */

/* Relays what of data belongs to the request body; returns how much. */
static size_t forward_body(tf_conn_t *c, const char *data, size_t len)
{
    tf_hx_t *hx = c->hx;
    size_t used = 0;
    bool done = false;
    if (tf_http_body(&hx->req, data, len, &used, &done) != 0) {
        TF_CONN_LOG(TF_LOG_INFO, c, "invalid chunked request body");
        send_error(c, 400);
        return len;
    }
    if (used > 0 && backend_write(c, data, used) < 0)
        return len;
    if (done) {
        hx->rq = RQ_DONE;
        hx->sent_ms = now_ms(c);
        tf_conn_arm_timer(c);
    }
    return used;
}

/* Moves the exchange on with what the input buffer holds. */
static void process(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    if (hx->closing || tf_conn_closing(c))
        return;
    switch (hx->rq) {
    case RQ_IDLE:
    case RQ_HEAD:
        /* Pipelined requests wait for the response before them. */
        if (hx->rs == RS_NONE && hx->in.len > 0)
            read_head(c, NULL, 0);
        return;
    case RQ_BODY:
        if (backend_ready(c) && hx->in.len > 0) {
            size_t used = forward_body(c, hx->in.p, hx->in.len);
            if (!tf_conn_closing(c) && !hx->closing)
                buf_consume(&hx->in, used);
        }
        return;
    case RQ_DONE:
        return;
    }
}

static void client_data(tf_conn_t *c, const char *data, size_t len)
{
    tf_hx_t *hx = c->hx;
    hx->in_bytes += len;
    if (hx->closing)
        return;
    if (hx->rq == RQ_BODY && hx->in.len == 0 && backend_ready(c)) {
        size_t used = forward_body(c, data, len);
        if (tf_conn_closing(c) || hx->closing)
            return;
        data += used;
        len -= used;
    }
    if (len > 0 && hx->in.len == 0 && hx->rq <= RQ_HEAD && hx->rs == RS_NONE &&
        !tf_conn_closing(c)) {
        read_head(c, data, len); /* what process() would do, without the copy */
        return;
    }
    if (len > 0 && buf_append(&hx->in, data, len) != 0) {
        tf_conn_fail(c, TF_ENOMEM, "client read");
        return;
    }
    process(c);
}

/* ---- the response --------------------------------------------------------- */

static void start_tunnel(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    TF_CONN_LOG(TF_LOG_DEBUG, c, "upgraded: tunnel");
    log_exchange(c);
    if (hx->rin.len > 0 && client_write(c, hx->rin.p, hx->rin.len) < 0)
        return;
    buf_free(&hx->rin);
    if (hx->in.len > 0 && backend_write(c, hx->in.p, hx->in.len) < 0)
        return;
    buf_free(&hx->in);
    free(hx->bhead);
    hx->bhead = NULL;
    /* The sink swap: both streams report to the pump from now on. */
    tf_conn_start_tunnel(c, hx->client_eof);
}

static void resp_body(tf_conn_t *c, const char *data, size_t len)
{
    tf_hx_t *hx = c->hx;
    size_t used = 0;
    bool done = false;
    if (tf_http_body(&hx->resp, data, len, &used, &done) != 0) {
        TF_CONN_LOG(TF_LOG_WARN, c, "backend sent an invalid chunked body");
        tf_conn_close(c, TF_LOG_WARN, "invalid response body");
        return;
    }
    if (used > 0) {
        hx->out_bytes += used;
        if (client_write(c, data, used) < 0)
            return;
    }
    if (used < len)
        hx->backend_dirty = true; /* bytes after the response: not reusable */
    if (done)
        response_done(c);
}

/* Writes a rewritten response head and then body_len bytes of its body;
 * false when the connection failed. */
static bool send_head(tf_conn_t *c, const tf_http_response_t *r, bool close, const char *body,
                      size_t body_len)
{
    /* Every header may grow by ": " and CRLF; then a Connection line. The
     * usual head is written from a per-thread buffer (the client stream
     * copies what it is given), a large one from the heap. A body start
     * that fits goes in the same buffer: one write, one TLS record, where
     * two would cost a second record's framing and encryption. */
    char *small = c->worker->hbuf;
    size_t cap = r->head_len + 3 * r->nheaders + 64;
    bool gather = body_len > 0 && cap + body_len <= TF_WORKER_HEAD_BUF;
    char *out = cap <= TF_WORKER_HEAD_BUF ? small : malloc(cap);
    if (out == NULL) {
        tf_conn_fail(c, TF_ENOMEM, "response head");
        return false;
    }
    long n = tf_http_rewrite_response_head(r, close, out, cap);
    if (n > 0 && !close && c->hx->client_http10 && !r->upgrade && r->status >= 200) {
        /* An HTTP/1.0 client closes unless told otherwise. */
        const char *ka = "Connection: keep-alive\r\n\r\n";
        if ((size_t)n + strlen(ka) <= cap) {
            memcpy(out + n - 2, ka, strlen(ka));
            n += (long)strlen(ka) - 2;
        }
    }
    if (n > 0 && gather)
        memcpy(out + n, body, body_len);
    int rc = n > 0 ? client_write(c, out, (size_t)n + (gather ? body_len : 0)) : 0;
    if (out != small)
        free(out);
    if (rc >= 0 && n > 0 && !gather && body_len > 0)
        rc = client_write(c, body, body_len);
    if (n <= 0) {
        TF_CONN_LOG(TF_LOG_WARN, c, "backend response head cannot be rewritten");
        send_error(c, 502);
        return false;
    }
    c->hx->out_bytes += (uint64_t)n + body_len;
    return rc >= 0;
}

/* The final response's head, at the start of the len bytes at data (`rin`'s
 * or the bytes just read); what follows it is the start of the body. */
static void final_head(tf_conn_t *c, const tf_http_response_t *r, const char *data, size_t len)
{
    tf_hx_t *hx = c->hx;
    hx->status = r->status;
    hx->resp_close = r->body == TF_HTTP_RESP_CLOSE;
    hx->close_after = !hx->client_keep || hx->resp_close || hx->rq != RQ_DONE ||
                      c->worker->stopping || hx->client_eof;
    /* An HTTP/1.0 request without keep-alive went to the backend as it
     * was: the backend closes after answering, whatever it says. */
    hx->backend_dirty = !r->keep_alive || (hx->client_http10 && !hx->client_keep);
    free(hx->bhead);
    hx->bhead = NULL;
    /* What of the bytes after the head is body leaves with the head (as
     * resp_body() would relay it right after). */
    size_t head = r->head_len, used = 0;
    bool done = hx->resp.done, bad = false;
    if (!done && len > head)
        bad = tf_http_body(&hx->resp, data + head, len - head, &used, &done) != 0;
    if (!send_head(c, r, hx->close_after, data + head, bad ? 0 : used))
        return;
    hx->responded = true;
    if (bad) {
        TF_CONN_LOG(TF_LOG_WARN, c, "backend sent an invalid chunked body");
        tf_conn_close(c, TF_LOG_WARN, "invalid response body");
        return;
    }
    if (len > head + used)
        hx->backend_dirty = true; /* bytes after the response: not reusable */
    buf_free(&hx->rin);           /* data may point into it: no longer used */
    if (done) {
        response_done(c);
        return;
    }
    hx->rs = RS_BODY;
}

/* Drops the n bytes of a head from what resp_head() reads. */
static void resp_skip(tf_hx_t *hx, bool direct, const char **data, size_t *len, size_t n)
{
    if (direct) {
        *data += n;
        *len -= n;
    } else {
        buf_consume(&hx->rin, n);
    }
}

/* Reads response heads from `rin`, or, when `rin` is empty, straight from
 * the bytes just read (data, len; NULL: from `rin`), which are kept in
 * `rin` only when they end in an incomplete head: the usual response costs
 * no copy. */
static void resp_head(tf_conn_t *c, const char *data, size_t len)
{
    tf_hx_t *hx = c->hx;
    bool direct = data != NULL;
    for (;;) {
        if (!direct)
            data = hx->rin.p, len = hx->rin.len;
        if (len == 0 || tf_conn_closing(c) || hx->rs != RS_WAIT)
            return;
        tf_http_response_t *r = &resp_scratch;
        int rc = tf_http_parse_response_head(&hx->resp, data, len, HX_RESP_HEAD_MAX, r);
        if (rc == TF_HTTP_MORE) {
            if (direct && buf_append(&hx->rin, data, len) != 0)
                tf_conn_fail(c, TF_ENOMEM, "backend read");
            return;
        }
        if (rc != 0) {
            TF_CONN_LOG(TF_LOG_WARN, c, "backend sent a response that cannot be relayed safely");
            send_error(c, 502);
            return;
        }
        if (r->status == 101) {
            if (!hx->upgrade) {
                TF_CONN_LOG(TF_LOG_WARN, c, "backend switched protocols unasked");
                send_error(c, 502);
                return;
            }
            hx->status = 101;
            hx->responded = true;
            if (!send_head(c, r, false, NULL, 0))
                return;
            resp_skip(hx, direct, &data, &len, r->head_len);
            /* What followed the 101 is the tunnel's: start_tunnel() sends `rin`. */
            if (direct && len > 0 && buf_append(&hx->rin, data, len) != 0) {
                tf_conn_fail(c, TF_ENOMEM, "backend read");
                return;
            }
            start_tunnel(c);
            return;
        }
        if (r->status / 100 == 1) {
            /* 100 Continue and other interim responses go through (not to
             * HTTP/1.0 clients, RFC 9110 §15.2); the final one follows. The
             * backend has the request: it is never sent again. */
            free(hx->bhead);
            hx->bhead = NULL;
            if (!hx->client_http10 && !send_head(c, r, false, NULL, 0))
                return;
            resp_skip(hx, direct, &data, &len, r->head_len);
            tf_http_parser_init_response(&hx->resp, hx->head_method);
            continue;
        }
        final_head(c, r, data, len);
        return;
    }
}

static void backend_data(tf_conn_t *c, const char *data, size_t len)
{
    tf_hx_t *hx = c->hx;
    if (hx->rs == RS_BODY) {
        resp_body(c, data, len);
        return;
    }
    if (hx->rs != RS_WAIT)
        return;
    if (hx->rin.len == 0) {
        resp_head(c, data, len);
        return;
    }
    if (buf_append(&hx->rin, data, len) != 0) {
        tf_conn_fail(c, TF_ENOMEM, "backend read");
        return;
    }
    resp_head(c, NULL, 0);
}

/* ---- completion ------------------------------------------------------------ */

/* Ends the client connection after what is queued: close_notify, then close. */
static void finish_client(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    hx->closing = true;
    buf_free(&hx->in);
    c->client.ops->read_stop(&c->client);
    if (c->client.ops->shutdown(&c->client) < 0 && !tf_conn_closing(c))
        tf_conn_close(c, TF_LOG_INFO, "done");
    /* A client that does not read its answer is dropped after the idle
     * timeout: a failed connect may have stopped the timer. */
    if (!tf_conn_closing(c))
        tf_conn_arm_timer(c);
}

static void response_done(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    tf_worker_t *w = c->worker;
    hx->rs = RS_DONE;
    log_exchange(c);
    if (c->backend != NULL) {
        bool reusable = !hx->backend_dirty && hx->rq == RQ_DONE && !w->stopping;
        if (reusable) {
            const tf_backend_t *be =
                tf_upstream_backend(c->gen->upstream, c->tenant, c->backend_ix);
            /* As many idle as the worker has clients: each client has at
             * most one request at a backend at a time, so no client ever
             * waits for a connect while others' connections are closed. */
            tf_pool_put(w->pool, &be->addr.sa, c->backend, w->nconns);
            c->backend = NULL;
        } else {
            release_backend(c);
        }
    }
    if (hx->close_after) {
        finish_client(c);
        return;
    }
    hx->requests++;
    hx->rq = RQ_IDLE;
    hx->rs = RS_NONE;
    hx->status = 0;
    hx->in_bytes = hx->out_bytes = 0;
    hx->responded = hx->retried = hx->reused = hx->resp_close = hx->backend_dirty = false;
    hx->method[0] = '\0';
    free(hx->target);
    hx->target = NULL;
    hx->target_len = 0;
    buf_free(&hx->rin);
    c->traffic.active_ms = now_ms(c);
    tf_conn_arm_timer(c);
    process(c);
    if (!tf_conn_closing(c))
        hx_balance(c);
}

/* ---- errors ----------------------------------------------------------------- */

/* Answers the exchange with an error of our own and ends the connection;
 * once a response is under way, only closing is left. */
static void send_error(tf_conn_t *c, unsigned status)
{
    tf_hx_t *hx = c->hx;
    release_backend(c);
    c->phase = TF_CONN_HTTP;
    if (hx->responded || hx->closing) {
        tf_conn_close(c, TF_LOG_INFO, "aborted");
        return;
    }
    const char *reason = tf_http_reason(status);
    char body[96], out[320];
    int blen = snprintf(body, sizeof body, "%u %s\n", status, reason);
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %u %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, reason, blen, body);
    hx->status = status;
    hx->responded = true;
    if (hx->started_ms == 0)
        hx->started_ms = now_ms(c);
    hx->out_bytes += (uint64_t)n;
    log_exchange(c);
    if (client_write(c, out, (size_t)n) < 0)
        return;
    finish_client(c);
}

/* ---- stream events: the client's and the backend's sinks ------------------ */

static void client_on_data(tf_stream_t *s, const char *data, size_t len)
{
    tf_conn_t *c = s->owner;
    c->traffic.active_ms = now_ms(c);
    c->traffic.up += len;
    client_data(c, data, len);
    /* An upgrade may have handed the streams to the pump meanwhile. */
    if (!tf_conn_closing(c) && c->client.sink == &client_sink)
        hx_balance(c);
}

static void backend_on_data(tf_stream_t *s, const char *data, size_t len)
{
    tf_conn_t *c = s->owner;
    c->traffic.active_ms = now_ms(c);
    c->traffic.down += len;
    /* A response head and the body bytes after it: one write. */
    tf_stream_cork(&c->client);
    backend_data(c, data, len);
    if (tf_conn_closing(c) || tf_stream_uncork(&c->client) != 0 || tf_conn_closing(c))
        return;
    if (c->client.sink == &client_sink)
        hx_balance(c);
}

static void client_on_eof(tf_stream_t *s)
{
    tf_conn_t *c = s->owner;
    tf_hx_t *hx = c->hx;
    hx->client_eof = true;
    c->client.ops->read_stop(&c->client);
    if (hx->lingering) {
        tf_conn_close(c, TF_LOG_INFO, "done");
        return;
    }
    if (hx->closing)
        return;
    switch (hx->rq) {
    case RQ_IDLE:
        if (hx->rs == RS_NONE) {
            tf_conn_close(c, TF_LOG_INFO, "client closed");
            return;
        }
        break;
    case RQ_HEAD:
        tf_conn_close(c, TF_LOG_INFO, "client closed in a request head");
        return;
    case RQ_BODY:
        tf_conn_close(c, TF_LOG_INFO, "client closed in a request body");
        return;
    case RQ_DONE:
        break;
    }
    /* The request is complete: its response still goes out, then the end. */
    hx->close_after = true;
}

static void backend_on_eof(tf_stream_t *s)
{
    backend_error(s->owner, UV_EOF);
}

static void hx_on_written(tf_stream_t *s)
{
    tf_conn_t *c = s->owner;
    c->traffic.active_ms = now_ms(c);
    hx_balance(c);
}

static void client_on_error(tf_stream_t *s, int err, const char *what)
{
    tf_conn_fail(s->owner, err, what);
}

static void backend_on_error(tf_stream_t *s, int err, const char *what)
{
    backend_error(s->owner, err);
}

/* The handshake is over before an exchange starts, and the backend's FIN
 * only goes out with a connection that is not pooled. */
static void hx_ignore(tf_stream_t *s)
{
}

/* The close_notify is out. A client still sending (an upload answered
 * early, with 413 or 421) would get a TCP reset for the bytes it sends
 * after close(), and a reset can destroy the answer before it is read: so
 * its input is read and dropped for a moment first, as nginx's lingering
 * close does. */
#define HX_LINGER_MS 2000u

static void client_on_shut(tf_stream_t *s)
{
    tf_conn_t *c = s->owner;
    tf_hx_t *hx = c->hx;
    if (hx->client_eof || hx->lingering) {
        tf_conn_close(c, TF_LOG_INFO, "done");
        return;
    }
    hx->lingering = true;
    hx->linger_until_ms = now_ms(c) + HX_LINGER_MS;
    if (c->client.ops->read_start(&c->client) != 0) {
        tf_conn_close(c, TF_LOG_INFO, "done");
        return;
    }
    tf_conn_arm_timer(c);
}

static const tf_sink_t client_sink = {
    .data = client_on_data,
    .eof = client_on_eof,
    .written = hx_on_written,
    .shut = client_on_shut,
    .error = client_on_error,
    .ready = hx_ignore,
};

static const tf_sink_t backend_sink = {
    .data = backend_on_data,
    .eof = backend_on_eof,
    .written = hx_on_written,
    .shut = hx_ignore,
    .error = backend_on_error,
    .ready = hx_ignore,
};

/* ---- timers ------------------------------------------------------------------- */

typedef enum { DL_IDLE, DL_HEADER, DL_RESPONSE, DL_ACTIVITY, DL_LINGER } deadline_t;

static deadline_t deadline_kind(const tf_hx_t *hx)
{
    if (hx->lingering)
        return DL_LINGER;
    if (hx->closing)
        return DL_ACTIVITY;
    if (hx->rs == RS_NONE && hx->rq == RQ_IDLE)
        return hx->requests == 0 ? DL_HEADER : DL_IDLE;
    if (hx->rs == RS_NONE && hx->rq == RQ_HEAD)
        return DL_HEADER;
    if (hx->rs == RS_WAIT && hx->rq == RQ_DONE && hx->rin.len == 0)
        return DL_RESPONSE;
    return DL_ACTIVITY;
}

static uint64_t deadline_at(const tf_conn_t *c, deadline_t k)
{
    const tf_hx_t *hx = c->hx;
    const tf_conf_timeouts_t *t = tf_conf_timeouts(conf_of(c));
    switch (k) {
    case DL_IDLE:
        return c->traffic.active_ms + t->idle_ms;
    case DL_HEADER:
        /* The first request's head is due from the handshake on. */
        return (hx->rq == RQ_HEAD ? hx->started_ms : c->traffic.active_ms) + t->request_header_ms;
    case DL_RESPONSE:
        return hx->sent_ms + t->response_ms;
    case DL_LINGER:
        return hx->linger_until_ms;
    case DL_ACTIVITY:
        break;
    }
    return c->traffic.active_ms + t->idle_ms;
}

static uint64_t hx_timeout_ms(const tf_conn_t *c)
{
    uint64_t at = deadline_at(c, deadline_kind(c->hx)), now = now_ms(c);
    return at > now ? at - now : 0;
}

static void hx_on_timer(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    deadline_t k = deadline_kind(hx);
    if (deadline_at(c, k) > now_ms(c)) {
        tf_conn_arm_timer(c);
        return;
    }
    switch (k) {
    case DL_IDLE:
        tf_conn_close_politely(c, TF_LOG_INFO, "keep-alive timeout");
        return;
    case DL_HEADER:
        if (hx->rq == RQ_IDLE && hx->requests == 0 && hx->in.len == 0) {
            /* Connected, shook hands, never asked: nothing to answer. */
            tf_conn_close_politely(c, TF_LOG_INFO, "no request");
            return;
        }
        send_error(c, 408);
        return;
    case DL_RESPONSE:
        TF_CONN_LOG(TF_LOG_WARN, c, "backend did not answer within timeouts.response");
        send_error(c, 504);
        return;
    case DL_LINGER:
        tf_conn_close(c, TF_LOG_INFO, "done");
        return;
    case DL_ACTIVITY:
        /* A request body that stopped arriving is the client's doing, one
         * that the backend stopped reading is not. */
        if (!hx->responded && hx->rq == RQ_BODY &&
            !(c->backend != NULL && c->backend->ops->pending(c->backend) >= TF_PUMP_HIGH_WATER))
            send_error(c, 408);
        else
            tf_conn_close_politely(c, TF_LOG_INFO, "idle timeout");
        return;
    }
}

static void hx_drain(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    if (hx->rq == RQ_IDLE && hx->rs == RS_NONE && hx->in.len == 0) {
        tf_conn_close_politely(c, TF_LOG_INFO, "shutting down");
        return;
    }
    hx->client_keep = false;
    hx->close_after = true;
}

static const tf_conn_mode_t http_mode = {
    .timeout_ms = hx_timeout_ms,
    .on_timer = hx_on_timer,
    .drain = hx_drain,
    .free = hx_free,
};

/* ---- backpressure --------------------------------------------------------------- */

static bool want_client(const tf_conn_t *c)
{
    const tf_hx_t *hx = c->hx;
    if (hx->lingering)
        return !hx->client_eof;
    if (hx->closing || hx->client_eof)
        return false;
    switch (hx->rq) {
    case RQ_IDLE:
    case RQ_HEAD:
        if (hx->rs == RS_NONE)
            return hx->in.len <= tf_conf_limits(conf_of(c))->max_header_bytes;
        return hx->in.len < HX_PIPELINE_MAX;
    case RQ_BODY:
        return backend_ready(c) && hx->in.len == 0 &&
               c->backend->ops->pending(c->backend) < TF_PUMP_HIGH_WATER;
    case RQ_DONE:
        return hx->in.len < HX_PIPELINE_MAX;
    }
    return false;
}

static void hx_balance(tf_conn_t *c)
{
    if (tf_conn_closing(c))
        return;
    tf_hx_t *hx = c->hx;
    size_t to_client = c->client.ops->pending(&c->client);
    if (to_client > TF_PUMP_HARD_CAP) {
        tf_conn_close(c, TF_LOG_WARN, "peer does not read");
        return;
    }
    if (want_client(c)) {
        if (c->client.ops->read_start(&c->client) != 0) {
            tf_conn_close(c, TF_LOG_WARN, "cannot read");
            return;
        }
    } else {
        c->client.ops->read_stop(&c->client);
    }
    tf_stream_t *b = c->backend;
    if (b == NULL || !backend_ready(c))
        return;
    bool want = (hx->rs == RS_WAIT || hx->rs == RS_BODY);
    if (!want || to_client >= TF_PUMP_HIGH_WATER) {
        b->ops->read_stop(b);
    } else if (to_client <= TF_PUMP_LOW_WATER && b->ops->read_start(b) != 0) {
        backend_error(c, UV_EIO);
    }
}
