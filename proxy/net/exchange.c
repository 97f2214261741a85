/* See exchange.h and exchange_internal.h. Functions appear in the order an
 * exchange meets them: start, request head, backend, request body, errors,
 * the streams' events, backpressure; the response and the timers have files
 * of their own. */
#include "proxy/net/exchange_internal.h"

#include "certstore/certstore.h"
#include "common/err.h"
#include "proxy/obs/obs.h"
#include "proxy/net/pool.h"
#include "proxy/net/upstream.h"

#include <stdio.h>
#include <strings.h>
#include <time.h>

_Static_assert(TF_CONF_HEADER_FIELDS_MAX <= TF_HTTP_HEADERS_MAX,
               "limits.max_header_fields must fit the parsed head's array");

static void backend_error(tf_conn_t *c, int err);
static const tf_sink_t client_sink, backend_sink;
static const tf_conn_backend_user_t backend_user;

/* ---- state ------------------------------------------------------------ */

/* The access log's cut reason for a response that the connection's close
 * (c->reason, tf_conn_close) broke off: the client went away, did not
 * read, the drain ran out of time. */
static const char *close_cut(const tf_conn_t *c)
{
    const char *r = c->reason != NULL ? c->reason : "";
    if (strcmp(r, "peer closed") == 0 || strcmp(r, "peer reset") == 0 ||
        strcmp(r, "TLS error") == 0 || strncmp(r, "client closed", 13) == 0)
        return "client_closed";
    if (strcmp(r, "peer does not read") == 0)
        return "client_slow";
    if (strcmp(r, "shutting down") == 0)
        return "shutdown";
    if (strcmp(r, "idle timeout") == 0)
        return "timeout";
    return "error";
}

void tf_hx__free(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    if (hx != NULL && !hx->logged && (hx->rs == RS_WAIT || hx->rs == RS_BODY)) {
        /* A request routed to a backend whose exchange the connection's
         * close cut short still gets its access line. */
        hx->cut = close_cut(c);
        tf_hx__log_exchange(c);
    }
    c->hx = NULL;
    if (hx == NULL)
        return;
    buf_free(&hx->in);
    buf_free(&hx->rin);
    free(hx->bhead);
    free(hx->target);
    tf_wcache_free(&c->worker->cache, hx, sizeof *hx);
}

/* ---- small helpers ---------------------------------------------------- */

static bool backend_ready(const tf_conn_t *c)
{
    return c->backend != NULL && c->phase == TF_CONN_HTTP;
}

/* Writes to the client; a failure closes the connection. */
int tf_hx__client_write(tf_conn_t *c, const void *data, size_t len)
{
    int rc = c->client.ops->write(&c->client, data, len);
    if (rc < 0 && !tf_conn_closing(c))
        tf_conn_fail(c, rc, "client write");
    return rc;
}

/* Writes to the backend; a failure goes to backend_error() once
 * (the stream may have reported it already). */
int tf_hx__backend_write(tf_conn_t *c, const void *data, size_t len)
{
    tf_stream_t *b = c->backend;
    int rc = b->ops->write(b, data, len);
    if (rc < 0 && c->backend == b && !tf_conn_closing(c))
        backend_error(c, rc);
    return rc;
}

void tf_hx__release_backend(tf_conn_t *c)
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
void tf_hx__log_exchange(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    if (hx->logged)
        return;
    hx->logged = true;
    tf_upstream_t *u = c->gen->upstream;
    const char *tenant =
        c->tenant != TF_CONN_NO_INDEX ? tf_upstream_tenant_name(u, c->tenant) : NULL;
    const char *backend = c->tenant != TF_CONN_NO_INDEX && c->backend_ix != TF_CONN_NO_INDEX
                              ? tf_upstream_backend(u, c->tenant, c->route, c->backend_ix)->text
                              : NULL;
    /* The route is named where the tenant has routes of its own. */
    const char *route = hx->route != NULL && tf_upstream_tenant_conf(u, c->tenant)->nroutes > 1
                            ? hx->route->path
                            : NULL;
    uint64_t ms = now_ms(c) - hx->started_ms;
    TF_CONN_LOG(
        TF_LOG_DEBUG, c, "%s %.*s %u in=%llu out=%llu duration_ms=%llu tenant=%s backend=%s cut=%s",
        hx->method[0] ? hx->method : "-", (int)(hx->target_len > 200 ? 200 : hx->target_len),
        hx->target ? hx->target : "-", hx->status, (unsigned long long)hx->in_bytes,
        (unsigned long long)hx->out_bytes, (unsigned long long)ms, tenant ? tenant : "-",
        backend ? backend : "-", hx->cut ? hx->cut : "-");
    /* Requests are counted by the class of the status sent: a client that
     * left before any was sent has none, and is only in the access log. */
    if (hx->status != 0) {
        tf_metrics_request(c->worker->metrics, tenant, hx->status, ms);
        tf_metrics_request_protocol(c->worker->metrics, c->parent != NULL);
    }
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
        .http2 = c->parent != NULL,
        .status = (int)hx->status,
        .bytes_in = hx->in_bytes,
        .bytes_out = hx->out_bytes,
        .duration_ms = ms,
        .backend = backend,
        .route = route,
        .cut = hx->cut,
    };
    tf_access_write(log, &e);
}

/* ---- start -------------------------------------------------------------- */

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
    tf_hx_t *hx = tf_wcache_calloc(&c->worker->cache, sizeof *hx);
    if (hx == NULL)
        return TF_ENOMEM;
    tf_conn_peer_addr(c, hx->client_addr, sizeof hx->client_addr);
    hx->server_port = local_port(c);
    c->hx = hx;
    c->mode = &tf_hx__mode;
    c->phase = TF_CONN_HTTP;
    c->traffic.active_ms = now_ms(c);
    tf_stream_set_sink(&c->client, &client_sink, c);
    tf_conn_arm_timer(c);
    tf_hx__balance(c);
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

static int rewrite(tf_conn_t *c, const tf_http_request_t *r, tf_http_forward_t *fwd)
{
    tf_hx_t *hx = c->hx;
    fwd->client_addr = hx->client_addr;
    fwd->server_port = hx->server_port;
    /* Every header may grow by ": " spacing; then the X-Forwarded-* lines,
     * the rules' fields and a replaced target. */
    size_t cap = r->head_len + r->host_len + 2 * r->nheaders + 256 + INET6_ADDRSTRLEN +
                 tf_hx__rules_size(fwd->rules) + fwd->target_len;
    /* Removing the sticky crumb rejoins the others with "; ": at most one
     * more byte per byte of a Cookie value. */
    if (fwd->strip_cookie != NULL) {
        for (size_t i = 0; i < r->nheaders; i++) {
            if (r->headers[i].name_len == 6 && strncasecmp(r->headers[i].name, "cookie", 6) == 0)
                cap += r->headers[i].value_len;
        }
    }
    free(hx->bhead);
    hx->bhead = malloc(cap);
    if (hx->bhead == NULL)
        return TF_ENOMEM;
    long n = tf_http_rewrite_head(r, fwd, hx->bhead, cap);
    if (n < 0)
        return TF_ENOMEM;
    hx->bhead_len = (size_t)n;
    return 0;
}

/* The head is consumed from the input: `rest` (rest_len bytes) is what
 * followed it in the bytes just read, NULL when it was parsed in `in`.
 * -1 when the connection failed. */
static int take_head(tf_conn_t *c, const tf_http_request_t *r, const char *rest, size_t rest_len)
{
    tf_hx_t *hx = c->hx;
    if (rest == NULL) {
        buf_consume(&hx->in, r->head_len);
    } else if (rest_len > 0 && buf_append(&hx->in, rest, rest_len) != 0) {
        tf_conn_fail(c, TF_ENOMEM, "client read");
        return -1;
    }
    return 0;
}

/* The tenant (by Host), then the route (by path) and its policy: 0, or
 * the status to answer. */
static unsigned route_request(tf_conn_t *c, const tf_http_request_t *r, tf_http_forward_t *fwd,
                              char **scratch)
{
    /* A reverse proxy has no business opening tunnels to arbitrary places
     * (nginx answers CONNECT with 400 too). */
    if (method_is(r, "CONNECT"))
        return 400;
    unsigned status = route(c, r);
    if (status == 0)
        status = tf_hx__route_request(c, r, fwd, scratch);
    return status;
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
    if (hx->target == NULL) {
        hx->target_len = 0;
        tf_hx__send_error(c, 503);
        return;
    }
    copy_clipped(hx->target, r->target_len + 1, r->target, r->target_len);
    hx->version_minor = (uint8_t)r->version_minor;
    hx->head_method = method_is(r, "HEAD");
    hx->idempotent = hx->head_method || method_is(r, "GET") || method_is(r, "OPTIONS") ||
                     method_is(r, "PUT") || method_is(r, "DELETE") || method_is(r, "TRACE");
    hx->client_keep = r->keep_alive && !c->worker->stopping && !hx->client_eof;
    hx->client_http10 = r->version_minor == 0;
    hx->upgrade = r->upgrade;
    hx->route = NULL;
    hx->retry_after = 0;
    c->tenant = c->backend_ix = TF_CONN_NO_INDEX;
    c->route = 0;
    char stack[TF_HX_SCRATCH], *scratch = stack;
    tf_http_forward_t fwd = {0};
    unsigned status = route_request(c, r, &fwd, &scratch);
    bool local = status == 0 && hx->route->kind != TF_CONF_ROUTE_BACKENDS;
    if (status == 0 && !local && rewrite(c, r, &fwd) != 0)
        status = 503; /* out of memory: the buffer is sized for any head */
    if (scratch != stack)
        free(scratch);
    if (status != 0) {
        tf_hx__send_error(c, status);
        return;
    }
    if (take_head(c, r, rest, rest_len) != 0)
        return;
    if (local) {
        tf_hx__answer_route(c, r->body != TF_HTTP_BODY_NONE);
        return;
    }
    hx->rq = r->body == TF_HTTP_BODY_NONE ? RQ_DONE : RQ_BODY;
    hx->rs = RS_WAIT;
    tf_http_parser_init_response(&hx->resp, hx->head_method);
    c->attempts = 0;
    c->backend_ix = TF_CONN_NO_INDEX;
    tf_conn_connect_backend(c, &backend_user);
}

/* A 431 says which limit the head passed; the client is told only the
 * status, so the operator learns which limit to raise here. */
static void head_too_large(tf_conn_t *c, const tf_conf_limits_t *lim)
{
    if (tf_http_too_many_fields(&c->hx->req))
        TF_CONN_LOG(TF_LOG_INFO, c,
                    "431: request head has more than %u header fields "
                    "(limits.max_header_fields)",
                    lim->max_header_fields);
    else
        TF_CONN_LOG(TF_LOG_INFO, c, "431: request head over %u bytes (limits.max_header_bytes)",
                    lim->max_header_bytes);
}

/* A request's first bytes: its clocks start. */
static void begin_request(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    if (hx->rq != RQ_IDLE)
        return;
    hx->rq = RQ_HEAD;
    hx->started_ms = now_ms(c);
    tf_access_log_t *log = c->worker->server->shared->access;
    hx->started_wall_ms = log != NULL && tf_access_enabled(log) ? wall_ms() : 0;
    tf_conn_arm_timer(c);
}

/* A request head handed on parsed by a stream that carries messages (an
 * HTTP/2 stream, one request each): held to the limits and framing rules
 * of a head read from text (tf_http_request_ready), then handled as one. */
static void read_parsed_head(tf_conn_t *c, tf_http_request_t *r)
{
    tf_hx_t *hx = c->hx;
    hx->in_bytes += r->head_len;
    if (hx->closing)
        return;
    if (hx->rq != RQ_IDLE || hx->rs != RS_NONE || hx->in.len > 0) {
        tf_hx__send_error(c, 400); /* a second head: no such stream */
        return;
    }
    begin_request(c);
    const tf_conf_limits_t *lim = tf_conf_limits(conf_of(c));
    tf_http_parser_init(&hx->req);
    tf_http_parser_set_max_fields(&hx->req, lim->max_header_fields);
    int rc = tf_http_request_ready(&hx->req, r, lim->max_header_bytes);
    if (rc == 431)
        head_too_large(c, lim);
    if (rc != 0) {
        tf_hx__send_error(c, (unsigned)rc);
        return;
    }
    handle_head(c, r, "", 0);
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
    begin_request(c);
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
    const tf_conf_limits_t *lim = tf_conf_limits(conf_of(c));
    if (fresh || skip > 0) {
        tf_http_parser_init(&hx->req);
        tf_http_parser_set_max_fields(&hx->req, lim->max_header_fields);
    }
    uint32_t max = lim->max_header_bytes;
    tf_http_request_t *r = &c->worker->req_head;
    /* A lone CR may begin an empty line that the skip above drops once its
     * LF arrives: the parser would refuse it as a start line. */
    int rc = len == 1 && data[0] == '\r' ? TF_HTTP_MORE
                                         : tf_http_parse_head(&hx->req, data, len, max, r);
    if (rc == TF_HTTP_MORE) {
        if (direct && len > 0 && buf_append(&hx->in, data, len) != 0)
            tf_conn_fail(c, TF_ENOMEM, "client read");
        return;
    }
    if (rc == 431)
        head_too_large(c, lim);
    if (rc != 0) {
        tf_hx__send_error(c, (unsigned)rc);
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
    if (tf_hx__backend_write(c, hx->bhead, hx->bhead_len) < 0)
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
    tf_hx__process(c);
    if (!tf_conn_closing(c))
        tf_hx__balance(c);
}

static bool pool_allowed(const tf_conn_t *c)
{
    return c->hx != NULL && !c->hx->retried && !tf_conn_backend_private(c);
}

static void backend_failed(tf_conn_t *c)
{
    c->phase = TF_CONN_HTTP;
    if (c->backends_full) {
        TF_CONN_LOG(TF_LOG_WARN, c, "tenant '%s' route %s: every backend is at its max_conns",
                    tf_upstream_tenant_name(c->gen->upstream, c->tenant), c->hx->route->path);
        c->hx->retry_after = 1;
        tf_hx__send_error(c, 503);
        return;
    }
    /* Nothing tried: the health checks found no backend healthy. */
    if (c->attempts == 0) {
        TF_CONN_LOG(TF_LOG_WARN, c, "tenant '%s': no healthy backend",
                    tf_upstream_tenant_name(c->gen->upstream, c->tenant));
        tf_hx__send_error(c, 503);
        return;
    }
    tf_hx__send_error(c, 502);
}

static void local_error(tf_conn_t *c)
{
    c->phase = TF_CONN_HTTP;
    tf_hx__send_error(c, 503);
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
    tf_hx__release_backend(c);
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
        tf_conn_backend_done(c, 0);
        TF_CONN_LOG(TF_LOG_WARN, c, "backend %s before its response%s%s", eof ? "closed" : "failed",
                    eof ? "" : ": ", eof ? "" : tf_strerror(err));
        tf_hx__send_error(c, 502);
        return;
    }
    if (hx->rs == RS_BODY && hx->resp_close && eof) {
        hx->backend_dirty = true;
        tf_hx__response_done(c);
        return;
    }
    if (hx->rs == RS_BODY) {
        tf_conn_backend_done(c, 0);
        TF_CONN_LOG(TF_LOG_WARN, c, "backend %s in the middle of its response%s%s",
                    eof ? "closed" : "failed", eof ? "" : ": ", eof ? "" : tf_strerror(err));
        tf_hx__cut(c, eof ? "backend_closed" : "backend_error");
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
        tf_hx__send_error(c, 400);
        return len;
    }
    if (used > 0 && tf_hx__backend_write(c, data, used) < 0)
        return len;
    if (done) {
        hx->rq = RQ_DONE;
        hx->sent_ms = now_ms(c);
        tf_conn_arm_timer(c);
    }
    return used;
}

/* Moves the exchange on with what the input buffer holds. */
void tf_hx__process(tf_conn_t *c)
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
        read_head(c, data, len); /* what tf_hx__process() would do, without the copy */
        return;
    }
    if (len > 0 && buf_append(&hx->in, data, len) != 0) {
        tf_conn_fail(c, TF_ENOMEM, "client read");
        return;
    }
    tf_hx__process(c);
}

/* ---- errors ----------------------------------------------------------------- */

/* Answers the exchange with an error of our own and ends the connection;
 * once a response is under way, only closing is left. */
void tf_hx__send_error(tf_conn_t *c, unsigned status)
{
    tf_hx_t *hx = c->hx;
    /* A backend still held for this request is done with: a 5xx of ours
     * is its failure (a broken response head, a bad body, no answer). */
    tf_conn_backend_done(c, status >= 500 ? 0 : status);
    tf_hx__release_backend(c);
    c->phase = TF_CONN_HTTP;
    if (hx->responded && !hx->closing) {
        /* A response is under way (the request body went bad meanwhile). */
        tf_hx__cut(c, status < 500 ? "bad_request" : "error");
        return;
    }
    if (hx->closing) {
        tf_conn_close(c, TF_LOG_INFO, "aborted");
        return;
    }
    char *out = NULL;
    size_t n = 0;
    if (tf_hx__error_response(c, status, &out, &n) != 0) {
        tf_conn_close(c, TF_LOG_WARN, "out of memory");
        return;
    }
    hx->status = status;
    hx->responded = true;
    if (hx->started_ms == 0)
        hx->started_ms = now_ms(c);
    hx->out_bytes += (uint64_t)n;
    if ((status == 403 || status == 429) && c->tenant != TF_CONN_NO_INDEX)
        tf_metrics_denied(c->worker->metrics, tf_upstream_tenant_name(c->gen->upstream, c->tenant),
                          status);
    tf_hx__log_exchange(c);
    int rc = tf_hx__client_write(c, out, n);
    free(out);
    if (rc < 0)
        return;
    tf_hx__finish_client(c);
}

void tf_hx__cut(tf_conn_t *c, const char *why)
{
    tf_hx_t *hx = c->hx;
    if (hx->cut == NULL)
        hx->cut = why;
    tf_hx__log_exchange(c);
    /* The backend's own fault (it closed or broke its body) is its failure;
     * a cut for the client's sake counts the status that was relayed. */
    bool backend_fault = strncmp(why, "backend", 7) == 0 || strcmp(why, "bad_body") == 0;
    tf_conn_backend_done(c, backend_fault ? 0 : hx->status);
    tf_hx__release_backend(c);
    hx->rs = RS_DONE;
    if (!hx->resp_close) {
        /* The client sees from the framing that the body is incomplete. */
        tf_hx__finish_client(c);
        return;
    }
    /* A close-delimited body ends at a close_notify, so one would present
     * the truncated body as complete: its bytes go out, then the TCP
     * connection closes without one (the client sees an unexpected EOF). */
    hx->closing = hx->cutting = true;
    buf_free(&hx->in);
    c->client.ops->read_stop(&c->client);
    if (tf_stream_uncork(&c->client) != 0 || tf_conn_closing(c))
        return;
    if (c->client.ops->pending(&c->client) == 0)
        tf_conn_close(c, TF_LOG_WARN, "response cut");
    else
        tf_conn_arm_timer(c);
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
        tf_hx__balance(c);
}

static void client_on_head(tf_stream_t *s, tf_http_request_t *req)
{
    tf_conn_t *c = s->owner;
    c->traffic.active_ms = now_ms(c);
    c->traffic.up += req->head_len;
    read_parsed_head(c, req);
    if (!tf_conn_closing(c) && c->client.sink == &client_sink)
        tf_hx__balance(c);
}

static void backend_on_data(tf_stream_t *s, const char *data, size_t len)
{
    tf_conn_t *c = s->owner;
    c->traffic.active_ms = now_ms(c);
    c->traffic.down += len;
    /* A response head and the body bytes after it: one write. */
    tf_stream_cork(&c->client);
    tf_hx__backend_data(c, data, len);
    if (tf_conn_closing(c) || tf_stream_uncork(&c->client) != 0 || tf_conn_closing(c))
        return;
    if (c->client.sink == &client_sink)
        tf_hx__balance(c);
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
    if (c->hx->cutting && c->client.ops->pending(&c->client) == 0) {
        tf_conn_close(c, TF_LOG_WARN, "response cut");
        return;
    }
    tf_hx__balance(c);
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
    .head = client_on_head,
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

void tf_hx__balance(tf_conn_t *c)
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
    if (b == NULL || c->backend_parked || !backend_ready(c))
        return; /* a parked backend keeps reading: it is dropped if it speaks */
    bool want = (hx->rs == RS_WAIT || hx->rs == RS_BODY);
    if (!want || to_client >= TF_PUMP_HIGH_WATER) {
        b->ops->read_stop(b);
    } else if (to_client <= TF_PUMP_LOW_WATER && b->ops->read_start(b) != 0) {
        backend_error(c, UV_EIO);
    }
}
