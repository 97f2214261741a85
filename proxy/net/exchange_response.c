/* The response side of an HTTP/1 exchange (exchange_internal.h): its head
 * read and rewritten, its body relayed, its completion, and the upgrade
 * that hands both streams to the pump. */
#include "proxy/net/exchange_internal.h"

#include "common/err.h"
#include "proxy/net/pool.h"
#include "proxy/net/upstream.h"

#include <stdio.h>

/* ---- the response --------------------------------------------------------- */

static void start_tunnel(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    TF_CONN_LOG(TF_LOG_DEBUG, c, "upgraded: tunnel");
    tf_hx__log_exchange(c);
    if (hx->rin.len > 0 && tf_hx__client_write(c, hx->rin.p, hx->rin.len) < 0)
        return;
    buf_free(&hx->rin);
    if (hx->in.len > 0 && tf_hx__backend_write(c, hx->in.p, hx->in.len) < 0)
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
        tf_hx__cut(c, "bad_body");
        return;
    }
    if (used > 0) {
        hx->out_bytes += used;
        if (tf_hx__client_write(c, data, used) < 0)
            return;
    }
    if (used < len)
        hx->backend_dirty = true; /* bytes after the response: not reusable */
    if (done)
        tf_hx__response_done(c);
}

/* balance: cookie (SPEC §11): a final response to a client whose cookie
 * did not name the backend that answered sets it, so that the client comes
 * back to that backend. The line into OUT; its length, 0 for none. */
static size_t sticky_cookie(const tf_conn_t *c, const tf_http_response_t *r, char *out, size_t cap)
{
    const tf_hx_t *hx = c->hx;
    if (hx->route == NULL || hx->route->balance != TF_CONF_BALANCE_COOKIE || r->status < 200 ||
        c->backend_ix == TF_CONN_NO_INDEX)
        return 0;
    const tf_backend_t *be =
        tf_upstream_backend(c->gen->upstream, c->tenant, c->route, c->backend_ix);
    if (strcmp(c->sticky, be->cookie_id) == 0)
        return 0;
    int n = snprintf(out, cap, "Set-Cookie: %s=%s; Path=/; HttpOnly; Secure; SameSite=Lax\r\n",
                     hx->route->cookie, be->cookie_id);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* A client stream that carries messages (HTTP/2) takes the head parsed:
 * written as text, it would be read back at once. The access log counts
 * the head as the text it stands for, as for HTTP/1.1. */
static bool send_parsed_head(tf_conn_t *c, const tf_http_response_t *r,
                             const tf_http_resp_rewrite_t *how, const char *body, size_t body_len)
{
    size_t head_len = 0;
    int rc = c->client.ops->write_head(&c->client, r, how, &head_len);
    if (rc < 0) {
        if (!tf_conn_closing(c))
            tf_conn_fail(c, rc, "client write");
        return false;
    }
    if (body_len > 0 && tf_hx__client_write(c, body, body_len) < 0)
        return false;
    c->hx->out_bytes += (uint64_t)head_len + body_len;
    return true;
}

/* Writes a rewritten response head and then body_len bytes of its body;
 * false when the connection failed. */
static bool send_head(tf_conn_t *c, const tf_http_response_t *r, bool close, const char *body,
                      size_t body_len)
{
    char cookie[320];
    tf_http_resp_rewrite_t how = {.close = close, .rules = tf_hx__response_rules(c->hx)};
    how.extra_len = sticky_cookie(c, r, cookie, sizeof cookie);
    how.extra = how.extra_len > 0 ? cookie : NULL;
    if (c->client.ops->write_head != NULL)
        return send_parsed_head(c, r, &how, body, body_len);
    /* Every header may grow by ": " and CRLF; then a Connection line. The
     * usual head is written from a per-thread buffer (the client stream
     * copies what it is given), a large one from the heap. A body start
     * that fits goes in the same buffer: one write, one TLS record, where
     * two would cost a second record's framing and encryption. */
    char *small = c->worker->hbuf;
    size_t cap = r->head_len + 3 * r->nheaders + 64 + tf_hx__rules_size(how.rules) + how.extra_len;
    bool gather = body_len > 0 && cap + body_len <= TF_WORKER_HEAD_BUF;
    char *out = cap <= TF_WORKER_HEAD_BUF ? small : malloc(cap);
    if (out == NULL) {
        tf_conn_fail(c, TF_ENOMEM, "response head");
        return false;
    }
    long n = tf_http_rewrite_response_head(r, &how, out, cap);
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
    int rc = n > 0 ? tf_hx__client_write(c, out, (size_t)n + (gather ? body_len : 0)) : 0;
    if (out != small)
        free(out);
    if (rc >= 0 && n > 0 && !gather && body_len > 0)
        rc = tf_hx__client_write(c, body, body_len);
    if (n <= 0) {
        TF_CONN_LOG(TF_LOG_WARN, c, "backend response head cannot be rewritten");
        tf_hx__send_error(c, 502);
        return false;
    }
    if (rc < 0)
        return false; /* the connection is closed, its exchange state freed */
    c->hx->out_bytes += (uint64_t)n + body_len;
    return true;
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
    bool done = hx->resp.done;
    if (!done && len > head &&
        tf_http_body(&hx->resp, data + head, len - head, &used, &done) != 0) {
        /* Nothing of the response has gone out yet: 502 is still possible,
         * where relaying the head would leave only a cut. */
        TF_CONN_LOG(TF_LOG_WARN, c, "backend sent an invalid chunked body");
        tf_hx__send_error(c, 502);
        return;
    }
    if (!send_head(c, r, hx->close_after, data + head, used))
        return;
    hx->responded = true;
    if (len > head + used)
        hx->backend_dirty = true; /* bytes after the response: not reusable */
    buf_free(&hx->rin);           /* data may point into it: no longer used */
    if (done) {
        tf_hx__response_done(c);
        return;
    }
    hx->rs = RS_BODY;
    /* The body's deadline is inactivity (timeouts.idle), which may be
     * sooner than the response deadline the timer was armed for. */
    tf_conn_arm_timer(c);
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
        tf_http_response_t *r = &c->worker->resp_head;
        int rc = tf_http_parse_response_head(&hx->resp, data, len, HX_RESP_HEAD_MAX, r);
        if (rc == TF_HTTP_MORE) {
            if (direct && buf_append(&hx->rin, data, len) != 0)
                tf_conn_fail(c, TF_ENOMEM, "backend read");
            return;
        }
        if (rc != 0) {
            TF_CONN_LOG(TF_LOG_WARN, c, "backend sent a response that cannot be relayed safely");
            tf_hx__send_error(c, 502);
            return;
        }
        if (r->status == 101) {
            if (!hx->upgrade) {
                TF_CONN_LOG(TF_LOG_WARN, c, "backend switched protocols unasked");
                tf_hx__send_error(c, 502);
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

void tf_hx__backend_data(tf_conn_t *c, const char *data, size_t len)
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
void tf_hx__finish_client(tf_conn_t *c)
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

void tf_hx__response_done(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    tf_worker_t *w = c->worker;
    hx->rs = RS_DONE;
    tf_conn_backend_done(c, hx->status);
    tf_hx__log_exchange(c);
    if (c->backend != NULL) {
        bool reusable = !hx->backend_dirty && hx->rq == RQ_DONE && !w->stopping;
        if (reusable && tf_conn_backend_private(c) && !hx->close_after) {
            /* Its PROXY header names this client (send_proxy): kept for
             * this connection's next request, never handed to another. */
            tf_conn_park_backend(c);
        } else if (reusable && !tf_conn_backend_private(c)) {
            const tf_backend_t *be =
                tf_upstream_backend(c->gen->upstream, c->tenant, c->route, c->backend_ix);
            /* As many idle as the worker has clients (HTTP/1.1
             * connections, HTTP/2 streams recently in flight): each has at
             * most one request at a backend at a time, so no client waits
             * for a connect while others' connections are closed. */
            tf_pool_put(w->pool, &be->addr.sa, be->flavour, c->backend, tf_worker_pool_keep(w));
            c->backend = NULL;
        } else {
            tf_hx__release_backend(c);
        }
    }
    if (hx->close_after) {
        tf_hx__finish_client(c);
        return;
    }
    hx->requests++;
    hx->rq = RQ_IDLE;
    hx->rs = RS_NONE;
    hx->status = 0;
    hx->in_bytes = hx->out_bytes = 0;
    hx->responded = hx->retried = hx->reused = hx->resp_close = hx->backend_dirty = false;
    hx->logged = false;
    hx->cut = NULL;
    hx->method[0] = '\0';
    free(hx->target);
    hx->target = NULL;
    hx->target_len = 0;
    buf_free(&hx->rin);
    c->traffic.active_ms = now_ms(c);
    tf_conn_arm_timer(c);
    tf_hx__process(c);
    if (!tf_conn_closing(c))
        tf_hx__balance(c);
}
