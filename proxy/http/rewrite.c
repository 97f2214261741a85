/* The heads sent on (SPEC §7, §11): the client's request head as the
 * backend gets it, the backend's response head as the client gets it.
 * See http.h. */
#include "proxy/http/http_internal.h"

#include <string.h>
#include <strings.h>

typedef tf_http__out_t out_t;

/* Headers that describe one hop, not the message (RFC 9110 §7.6.1), and
 * what the client claimed about forwarding: never passed on. */
static bool hop_by_hop(const tf_http_header_t *h, bool upgrade)
{
    return name_is(h, "connection") || name_is(h, "keep-alive") || name_is(h, "proxy-connection") ||
           name_is(h, "te") || name_is(h, "trailer") || (name_is(h, "upgrade") && !upgrade);
}

/* What the client claimed about forwarding: replaced, never passed on. */
static bool client_forwarded(const tf_http_header_t *h)
{
    /* Also X_Forwarded_For and the like: CGI, WSGI and PHP map '_' and '-'
     * to the same variable. And RFC 7239's Forwarded, which tlsfront does
     * not set: a client must not speak for the proxy. */
    static const char *const names[] = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                                        "x-forwarded-port"};
    if (name_is(h, "forwarded"))
        return true;
    if (h->name_len < 15 || h->name_len > 17) /* the lengths of the four names */
        return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (h->name_len != strlen(names[i]))
            continue;
        size_t k = 0;
        while (k < h->name_len) {
            char a = (char)(h->name[k] | 0x20), b = names[i][k];
            if (a != b && !(b == '-' && h->name[k] == '_'))
                break;
            k++;
        }
        if (k == h->name_len)
            return true;
    }
    return false;
}

/* Headers that frame or route the message: a Connection header naming them
 * must not make them disappear (that would let a client smuggle a body as
 * a second request). */
static bool framing_header(const tf_http_header_t *h)
{
    return name_is(h, "host") || name_is(h, "content-length") || name_is(h, "transfer-encoding");
}

typedef struct {
    const tf_http_header_t *h;
} listed_t;

static bool names_header(const char *t, size_t n, void *ud)
{
    const tf_http_header_t *h = ((listed_t *)ud)->h;
    return n == h->name_len && strncasecmp(t, h->name, n) == 0;
}

/* A header the Connection header names is hop-by-hop too. */
static bool listed_in_connection(const tf_http_header_t *hs, size_t n, const tf_http_header_t *h)
{
    listed_t l = {.h = h};
    for (size_t i = 0; i < n; i++) {
        if (name_is(&hs[i], "connection") &&
            tf_http__each_token(hs[i].value, hs[i].value_len, names_header, &l))
            return true;
    }
    return false;
}

bool tf_http__named_by_connection(const tf_http_header_t *hs, size_t n, const tf_http_header_t *h)
{
    return !framing_header(h) && listed_in_connection(hs, n, h);
}

bool tf_http__has_connection(const tf_http_header_t *hs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (name_is(&hs[i], "connection"))
            return true;
    }
    return false;
}

/* Whether the client's header field H goes on to the backend. */
static inline bool passes_on(const tf_http_request_t *req, bool conn, const tf_http_header_t *h)
{
    bool upgrade_header = req->upgrade && name_is(h, "upgrade");
    return !(
        hop_by_hop(h, req->upgrade) || client_forwarded(h) ||
        (conn && !upgrade_header && tf_http__named_by_connection(req->headers, req->nheaders, h)));
}

/* The request line with the route's target in place of the client's. */
__attribute__((noinline)) static void put_target_line(out_t *o, const tf_http_request_t *req,
                                                      const tf_http_forward_t *fwd, size_t line)
{
    size_t before = (size_t)(req->target - req->method);
    size_t after = before + req->target_len;
    if (line < after) { /* no line end: nothing to rewrite */
        tf_http__put(o, req->method, line);
        return;
    }
    tf_http__put(o, req->method, before);
    tf_http__put(o, fwd->target, fwd->target_len);
    tf_http__put(o, req->method + after, line - after);
}

/* The request line of a head handed on parsed (HTTP/2), which has no
 * text of its own. */
__attribute__((noinline)) static void put_parts_line(out_t *o, const tf_http_request_t *req,
                                                     const tf_http_forward_t *fwd)
{
    tf_http__put(o, req->method, req->method_len);
    tf_http__put(o, " ", 1);
    if (fwd->target != NULL)
        tf_http__put(o, fwd->target, fwd->target_len);
    else
        tf_http__put(o, req->target, req->target_len);
    tf_http__put_str(o, req->version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
}

/* The fields of a request on a route with header rules or a sticky cookie:
 * after hop-by-hop removal, the rules, then the cookie's crumb dropped. Kept
 * out of line: inlined, it made the usual request's loop slower (callgrind,
 * bench/load/callgrind.sh). */
__attribute__((noinline)) static void put_routed_fields(out_t *o, const tf_http_request_t *req,
                                                        const tf_http_forward_t *fwd, bool conn)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const tf_http_header_t *h = &req->headers[i];
        if (!passes_on(req, conn, h) || tf_http__rules_drop(fwd->rules, h->name, h->name_len))
            continue;
        if (fwd->strip_cookie != NULL && name_is(h, "cookie")) {
            tf_http__put_cookie_without(o, h, fwd->strip_cookie);
            continue;
        }
        tf_http__put(o, h->name, h->name_len);
        tf_http__put(o, ": ", 2);
        tf_http__put(o, h->value, h->value_len);
        tf_http__put(o, "\r\n", 2);
    }
    tf_http__put_rule_lines(o, fwd->rules);
}

long tf_http_rewrite_head(const tf_http_request_t *req, const tf_http_forward_t *fwd, char *out,
                          size_t outlen)
{
    out_t o = {.out = out, .cap = outlen};
    /* The request line as received: the backend sees what the client asked
     * (strip_prefix aside). */
    if (req->parsed) {
        put_parts_line(&o, req, fwd);
    } else {
        const char *eol = memchr(req->method, '\n', req->head_len);
        size_t line = eol != NULL ? (size_t)(eol - req->method) + 1 : 0;
        if (fwd->target == NULL)
            tf_http__put(&o, req->method, line);
        else
            put_target_line(&o, req, fwd, line);
    }
    bool conn = tf_http__has_connection(req->headers, req->nheaders);
    if (fwd->rules != NULL || fwd->strip_cookie != NULL) {
        put_routed_fields(&o, req, fwd, conn);
    } else {
        /* The usual request: no rule to look up per field. */
        for (size_t i = 0; i < req->nheaders; i++) {
            const tf_http_header_t *h = &req->headers[i];
            if (!passes_on(req, conn, h))
                continue;
            tf_http__put(&o, h->name, h->name_len);
            tf_http__put(&o, ": ", 2);
            tf_http__put(&o, h->value, h->value_len);
            tf_http__put(&o, "\r\n", 2);
        }
    }
    if (req->upgrade)
        tf_http__put_str(&o, "Connection: upgrade\r\n");
    char port[16];
    size_t plen = 0;
    for (unsigned v = fwd->server_port; plen == 0 || v > 0; v /= 10)
        port[sizeof port - 1 - plen++] = (char)('0' + v % 10);
    tf_http__put_header(&o, "X-Forwarded-For", fwd->client_addr, strlen(fwd->client_addr));
    tf_http__put_str(&o, "X-Forwarded-Proto: https\r\n");
    if (req->host != NULL)
        tf_http__put_header(&o, "X-Forwarded-Host", req->host, req->host_len);
    tf_http__put_header(&o, "X-Forwarded-Port", port + sizeof port - plen, plen);
    tf_http__put(&o, "\r\n", 2);
    return o.overflow ? -1 : (long)o.len;
}

/* Inlined in the HTTP/1.1 writer below, called from h2msg.c. */
static inline bool resp_passes_on(const tf_http_response_t *resp, bool conn,
                                  const tf_conf_header_rules_t *rules, const tf_http_header_t *h)
{
    bool upgrade_header = resp->upgrade && name_is(h, "upgrade");
    if (!upgrade_header &&
        (hop_by_hop(h, resp->upgrade) ||
         (conn && tf_http__named_by_connection(resp->headers, resp->nheaders, h))))
        return false;
    return rules == NULL || !tf_http__rules_drop(rules, h->name, h->name_len);
}

bool tf_http__resp_passes_on(const tf_http_response_t *resp, bool conn,
                             const tf_conf_header_rules_t *rules, const tf_http_header_t *h)
{
    return resp_passes_on(resp, conn, rules, h);
}

long tf_http_rewrite_response_head(const tf_http_response_t *resp,
                                   const tf_http_resp_rewrite_t *how, char *out, size_t outlen)
{
    out_t o = {.out = out, .cap = outlen};
    const tf_conf_header_rules_t *rules = how->rules; /* read once, not per field */
    const char *eol = memchr(resp->start, '\n', resp->head_len);
    size_t line = eol != NULL ? (size_t)(eol - resp->start) : 0;
    if (line > 0 && resp->start[line - 1] == '\r')
        line--;
    tf_http__put(&o, resp->start, line);
    tf_http__put(&o, "\r\n", 2);
    bool conn = tf_http__has_connection(resp->headers, resp->nheaders);
    for (size_t i = 0; i < resp->nheaders; i++) {
        const tf_http_header_t *h = &resp->headers[i];
        if (!resp_passes_on(resp, conn, rules, h))
            continue;
        tf_http__put(&o, h->name, h->name_len);
        tf_http__put(&o, ": ", 2);
        tf_http__put(&o, h->value, h->value_len);
        tf_http__put(&o, "\r\n", 2);
    }
    if (rules != NULL)
        tf_http__put_rule_lines(&o, rules);
    if (how->extra != NULL)
        tf_http__put(&o, how->extra, how->extra_len);
    if (resp->upgrade)
        tf_http__put_str(&o, "Connection: upgrade\r\n");
    else if (how->close)
        tf_http__put_str(&o, "Connection: close\r\n");
    tf_http__put(&o, "\r\n", 2);
    return o.overflow ? -1 : (long)o.len;
}
