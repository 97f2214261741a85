/* proxy/http internals shared by its files (and its tests):
 *   http.c     request and response heads, strict framing, bodies
 *   rewrite.c  the heads sent on: to the backend, to the client
 *   path.c     the normalized path routes are matched on
 *   routes.c   the route table
 *   target.c   strip_prefix targets and redirect Locations
 *   answer.c   cookies, allow lists, header rules, our own answers' heads
 */
#ifndef TF_PROXY_HTTP_HTTP_INTERNAL_H
#define TF_PROXY_HTTP_HTTP_INTERNAL_H

/* Internal to proxy/http (and its tests): other libraries include
 * proxy/http/http.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 2
#error "internal to proxy/http: include proxy/http/http.h"
#endif

#include "proxy/http/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* s equals `lower` (lower case) but for the case of ASCII letters: what
 * strncasecmp() says in the C locale, inlined, since names are compared
 * with literals many times per message. */
static inline bool lower_eq(const char *s, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)lower[i])
            return false;
    }
    return true;
}

/* name: a lower-case literal. */
static inline bool name_is(const tf_http_header_t *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && lower_eq(h->name, name, n);
}

/* s (n bytes) is a token (RFC 9110 §5.6.2), as a field name must be. */
bool tf_http__is_token(const char *s, size_t n);

/* s (n bytes) may be a field value as the head scan reads one: no control
 * byte but HTAB. */
bool tf_http__is_value(const char *s, size_t n);

/* m (n bytes) is a method http-parser reads on a request line: the methods
 * an HTTP/1.1 request may have here, so a request handed on parsed as
 * well (tf_http_request_ready). */
bool tf_http__known_method(const char *m, size_t n);

/* Whether a Connection field among hs (n fields) names the field h, which
 * makes it hop-by-hop too; never a field that frames or routes the message
 * (Host, Content-Length, Transfer-Encoding). */
bool tf_http__named_by_connection(const tf_http_header_t *hs, size_t n, const tf_http_header_t *h);

/* Whether hs (n fields) has a Connection field. */
bool tf_http__has_connection(const tf_http_header_t *hs, size_t n);

/* Whether the backend's response field h (of resp) goes on to the client:
 * not hop-by-hop (Upgrade kept for a 101), not named by a Connection field
 * (conn: resp has one, tf_http__has_connection()), not removed or replaced
 * by RULES (NULL: none). One rule for the HTTP/1.1 head written as text
 * (tf_http_rewrite_response_head) and the HTTP/2 fields
 * (tf_h2_response_fields). */
bool tf_http__resp_passes_on(const tf_http_response_t *resp, bool conn,
                             const tf_conf_header_rules_t *rules, const tf_http_header_t *h);

/* Calls fn for each comma-separated token of a header value, trimmed of
 * optional whitespace; stops and returns true when fn does. */
bool tf_http__each_token(const char *v, size_t len, bool (*fn)(const char *, size_t, void *),
                         void *ud);

/* A head being written into a caller's buffer: once a piece does not fit,
 * nothing more is written and the result is -1. */
typedef struct {
    char *out;
    size_t len, cap;
    bool overflow;
} tf_http__out_t;

static inline void tf_http__put(tf_http__out_t *o, const char *s, size_t n)
{
    if (o->overflow || o->cap - o->len < n) {
        o->overflow = true;
        return;
    }
    memcpy(o->out + o->len, s, n);
    o->len += n;
}

static inline void tf_http__put_str(tf_http__out_t *o, const char *s)
{
    tf_http__put(o, s, strlen(s));
}

static inline void tf_http__put_header(tf_http__out_t *o, const char *name, const char *value,
                                       size_t vlen)
{
    tf_http__put_str(o, name);
    tf_http__put(o, ": ", 2);
    tf_http__put(o, value, vlen);
    tf_http__put(o, "\r\n", 2);
}

static inline void tf_http__put_header_n(tf_http__out_t *o, const char *name, size_t nlen,
                                         const char *value, size_t vlen)
{
    tf_http__put(o, name, nlen);
    tf_http__put(o, ": ", 2);
    tf_http__put(o, value, vlen);
    tf_http__put(o, "\r\n", 2);
}

/* ---- header rules (SPEC §11 `headers`) ---- */

/* Whether RULES (NULL: none) remove the field NAME (NLEN bytes, any case)
 * or set it, which replaces every field of that name. */
bool tf_http__rules_drop(const tf_conf_header_rules_t *rules, const char *name, size_t nlen);

/* Writes RULES' set lines (NULL: none). */
void tf_http__put_rule_lines(tf_http__out_t *o, const tf_conf_header_rules_t *rules);

/* ---- cookies ---- */

/* Writes the Cookie field H without the crumbs named NAME; writes nothing
 * when no crumb is left. */
void tf_http__put_cookie_without(tf_http__out_t *o, const tf_http_header_t *h, const char *name);

/* ---- routes ---- */

/* What a lookup cost, for the tests that show it does not grow with the
 * number of routes. */
typedef struct {
    size_t lookups; /* hash lookups: one per candidate boundary of the path */
    size_t probes;  /* slots inspected in all */
} tf_http__match_stats_t;

/* tf_http_routes_match() adding its cost to *STATS. */
uint32_t tf_http__routes_match_stats(const tf_http_routes_t *t, const char *npath, size_t len,
                                     tf_http__match_stats_t *stats);

#endif
