/* A request's route and the tenant's policy (SPEC §11), between the choice
 * of its tenant and the choice of its backend (exchange_internal.h): the
 * path normalized and matched, `allow`, `mode: websocket`, the per-client
 * rate, the answers a route gives itself (`redirect`, `respond`), and what
 * the backend's copy of the head changes (strip_prefix, header rules, the
 * sticky cookie). Every refusal comes before any backend is touched. */
#include "proxy/net/exchange_internal.h"

#include "common/err.h"
#include "proxy/net/limits.h"
#include "proxy/net/upstream.h"

#include <stdio.h>

/* The route's response rules, or NULL when it has none (the usual route:
 * the rewrite then takes its fast path). */
const tf_conf_header_rules_t *tf_hx__response_rules(const tf_hx_t *hx)
{
    const tf_conf_route_t *rt = hx->route;
    if (rt == NULL || (rt->response_headers.nset == 0 && rt->response_headers.remove.count == 0))
        return NULL;
    return &rt->response_headers;
}

/* The route for the request's normalized path; 400 when the path cannot be
 * routed (a bad escape, a climb above "/"). */
static unsigned match_path(tf_conn_t *c, const tf_http_request_t *r, char *npath, size_t *nlen)
{
    tf_hx_t *hx = c->hx;
    tf_upstream_t *u = c->gen->upstream;
    const tf_conf_tenant_t *t = tf_upstream_tenant_conf(u, c->tenant);
    /* Without routes every path is "/"'s: nothing to normalize for the
     * usual tenant. A bad path is still the backend's to refuse. */
    if (t->nroutes <= 1) {
        c->route = 0;
        hx->route = tf_upstream_route_conf(u, c->tenant, 0);
        *nlen = 0;
        return 0;
    }
    hx->route = tf_upstream_route_conf(u, c->tenant, 0); /* its error pages, until matched */
    if (tf_http_path_normalize(r->target, r->target_len, npath, r->target_len + 2, nlen) != 0) {
        TF_CONN_LOG(TF_LOG_INFO, c, "400: the path cannot be routed (a bad escape, or above /)");
        return 400;
    }
    c->route = tf_upstream_route_path(u, c->tenant, npath, *nlen);
    hx->route = tf_upstream_route_conf(u, c->tenant, c->route);
    return 0;
}

/* allow, mode: websocket, then the per-client rate: 0 or the status. */
static unsigned admit(tf_conn_t *c, const tf_http_request_t *r)
{
    tf_hx_t *hx = c->hx;
    const tf_conf_route_t *rt = hx->route;
    if (!tf_http_allowed(&rt->allow, &c->peer.sa)) {
        TF_CONN_LOG(TF_LOG_INFO, c, "403: %s is not in the allow list of route %s",
                    hx->client_addr, rt->path);
        return 403;
    }
    if (rt->websocket && !r->websocket) {
        TF_CONN_LOG(TF_LOG_INFO, c, "400: route %s takes WebSocket upgrades only", rt->path);
        return 400;
    }
    const tf_conf_limits_t *lim = tf_conf_limits(conf_of(c));
    if (lim->per_client_rps == 0)
        return 0;
    uint32_t wait = tf_limits_request(c->worker->server->shared->limits, lim, &c->peer.sa,
                                      now_ms(c));
    if (wait == 0)
        return 0;
    hx->retry_after = wait;
    TF_CONN_LOG(TF_LOG_INFO, c, "429: %s is over limits.per_client (%u requests per second)",
                hx->client_addr, lim->per_client_rps);
    return 429;
}

/* What the backend's head changes for the route: the target
 * (strip_prefix, into TARGET), the request rules, the sticky cookie
 * (copied into c->sticky for the balancer, removed from the head). */
static void forward_for_route(tf_conn_t *c, const tf_http_request_t *r, const char *npath,
                              size_t nlen, char *target, tf_http_forward_t *fwd)
{
    const tf_conf_route_t *rt = c->hx->route;
    if (rt->strip_prefix) {
        long n = tf_http_strip_target(r->target, r->target_len, npath, nlen, rt->path, target,
                                      r->target_len + 2);
        if (n > 0) {
            fwd->target = target;
            fwd->target_len = (size_t)n;
        }
    }
    if (rt->request_headers.nset > 0 || rt->request_headers.remove.count > 0)
        fwd->rules = &rt->request_headers;
    c->sticky[0] = '\0';
    if (rt->balance != TF_CONF_BALANCE_COOKIE)
        return;
    fwd->strip_cookie = rt->cookie;
    const char *v;
    size_t vlen;
    if (tf_http_cookie_find(r->headers, r->nheaders, rt->cookie, &v, &vlen) &&
        vlen < sizeof c->sticky) {
        memcpy(c->sticky, v, vlen);
        c->sticky[vlen] = '\0';
    }
}

unsigned tf_hx__route_request(tf_conn_t *c, const tf_http_request_t *r, tf_http_forward_t *fwd,
                              char **scratch)
{
    /* One buffer for the normalized path and the stripped target, each at
     * most the target's length + 2. */
    size_t need = 2 * (r->target_len + 2);
    char *buf = *scratch;
    if (need > TF_HX_SCRATCH) {
        buf = malloc(need);
        if (buf == NULL)
            return 503;
        *scratch = buf;
    }
    size_t nlen = 0;
    unsigned status = match_path(c, r, buf, &nlen);
    if (status == 0)
        status = admit(c, r);
    if (status == 0 && c->hx->route->kind == TF_CONF_ROUTE_BACKENDS)
        forward_for_route(c, r, buf, nlen, buf + r->target_len + 2, fwd);
    return status;
}

/* ---- answers of our own ------------------------------------------------------ */

/* The route's page for STATUS, or NULL. */
static const tf_conf_error_page_t *error_page(const tf_hx_t *hx, unsigned status)
{
    if (hx->route == NULL)
        return NULL;
    const tf_conf_error_pages_t *p = &hx->route->errors;
    for (size_t i = 0; i < p->count; i++) {
        if (p->items[i].status == status)
            return &p->items[i];
    }
    return NULL;
}

int tf_hx__error_response(const tf_conn_t *c, unsigned status, char **out, size_t *len)
{
    const tf_hx_t *hx = c->hx;
    const char *reason = tf_http_reason(status);
    char text[96], extra[48];
    const char *ctype = "text/plain", *body = text;
    size_t blen;
    const tf_conf_error_page_t *page = error_page(hx, status);
    if (page != NULL) {
        ctype = "text/html; charset=utf-8";
        body = page->body;
        blen = page->len;
    } else {
        blen = (size_t)snprintf(text, sizeof text, "%u %s\n", status, reason);
    }
    size_t elen = 0;
    if (hx->retry_after != 0 && (status == 429 || status == 503))
        elen = (size_t)snprintf(extra, sizeof extra, "Retry-After: %u\r\n", hx->retry_after);
    const tf_conf_header_rules_t *rules = tf_hx__response_rules(hx);
    size_t cap = 256 + elen + tf_hx__rules_size(rules) + blen;
    char *o = malloc(cap);
    if (o == NULL)
        return TF_ENOMEM;
    long n = tf_http_answer_head(status, ctype, blen, elen ? extra : NULL, elen, true, rules, o,
                                 cap - blen);
    if (n < 0) {
        free(o);
        return TF_ENOMEM;
    }
    memcpy(o + n, body, blen);
    *out = o;
    *len = (size_t)n + blen;
    return 0;
}

size_t tf_hx__rules_size(const tf_conf_header_rules_t *rules)
{
    if (rules == NULL)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < rules->nset; i++)
        n += strlen(rules->set[i].name) + strlen(rules->set[i].value) + 4;
    return n;
}

/* A redirect route's Location line into EXTRA (CAP bytes), built from the
 * target as received (kept in hx->target) and its normalized path, as for
 * routing. Returns the length or -1. */
static long location_line(const tf_hx_t *hx, char *extra, size_t cap)
{
    const tf_conf_route_t *rt = hx->route;
    char *npath = malloc(hx->target_len + 2);
    size_t nlen = 0;
    long n = -1;
    if (npath != NULL && cap > 16 &&
        tf_http_path_normalize(hx->target, hx->target_len, npath, hx->target_len + 2, &nlen) ==
            0) {
        memcpy(extra, "Location: ", 10);
        n = tf_http_redirect_location(rt->redirect, hx->target, hx->target_len, npath, nlen,
                                      rt->path, extra + 10, cap - 12);
    }
    free(npath);
    if (n < 0)
        return -1;
    memcpy(extra + 10 + n, "\r\n", 2);
    return 10 + n + 2;
}

/* The answer of a `redirect` or `respond` route into a malloc'd buffer. */
static int route_answer(const tf_conn_t *c, bool close, char **out, size_t *len)
{
    const tf_hx_t *hx = c->hx;
    const tf_conf_route_t *rt = hx->route;
    const tf_conf_header_rules_t *rules = tf_hx__response_rules(hx);
    bool respond = rt->kind == TF_CONF_ROUTE_RESPOND;
    size_t body_len = respond ? rt->respond_body_len : 0;
    size_t sent = hx->head_method ? 0 : body_len;
    size_t ecap = 64 + (respond ? 0 : strlen(rt->redirect) + 2 * hx->target_len);
    const char *ctype = respond ? rt->respond_content_type : "text/plain";
    size_t cap = 256 + strlen(ctype != NULL ? ctype : "") + tf_hx__rules_size(rules) + ecap + sent;
    char *o = malloc(cap), *extra = malloc(ecap);
    if (o == NULL || extra == NULL) {
        free(o);
        free(extra);
        return TF_ENOMEM;
    }
    long elen = respond ? 0 : location_line(hx, extra, ecap - 32);
    /* An HTTP/1.0 client closes unless told otherwise. */
    if (elen >= 0 && !close && hx->client_http10)
        elen += snprintf(extra + elen, ecap - (size_t)elen, "Connection: keep-alive\r\n");
    long n = elen < 0 ? -1
                      : tf_http_answer_head(respond ? rt->respond_status : rt->redirect_status,
                                            ctype,
                                            body_len, extra, (size_t)elen, close, rules, o,
                                            cap - sent);
    free(extra);
    if (n < 0) {
        free(o);
        return elen < 0 ? TF_EINVAL : TF_ENOMEM;
    }
    if (sent > 0)
        memcpy(o + n, rt->respond_body, sent);
    *out = o;
    *len = (size_t)n + sent;
    return 0;
}

void tf_hx__answer_route(tf_conn_t *c, bool body_follows)
{
    tf_hx_t *hx = c->hx;
    /* A request body is not read: the connection ends after the answer. */
    hx->close_after = !hx->client_keep || body_follows || c->worker->stopping || hx->client_eof;
    hx->rq = body_follows ? RQ_BODY : RQ_DONE;
    char *out = NULL;
    size_t len = 0;
    int rc = route_answer(c, hx->close_after, &out, &len);
    if (rc != 0) {
        TF_CONN_LOG(TF_LOG_WARN, c, "route %s: cannot build its answer: %s", hx->route->path,
                    tf_strerror(rc));
        tf_hx__send_error(c, 503);
        return;
    }
    hx->status = hx->route->kind == TF_CONF_ROUTE_RESPOND ? hx->route->respond_status
                                                          : hx->route->redirect_status;
    hx->responded = true;
    hx->out_bytes += len;
    rc = tf_hx__client_write(c, out, len);
    free(out);
    if (rc < 0)
        return;
    hx->rq = RQ_DONE;
    tf_hx__response_done(c);
}
