/* proxy/ HTTP routing pieces (SPEC §11), pure: no sockets, no loop, no
 * allocation on the per-request path except where said.
 *
 *   path     the normalized path requests are matched on
 *   routes   a tenant's longest-prefix route table
 *   targets  the target sent to a backend under strip_prefix, and a
 *            redirect route's Location
 *   cookies  the sticky cookie's value in a request
 *   allow    a client address against an allow list
 *   answers  the heads of responses tlsfront writes itself (errors,
 *            `respond`, redirects), with the response header rules applied
 *
 * How requests are matched (docs/HTTP.md says the same to operators): the
 * path of the target (origin form; the path of an absolute form, whose
 * authority ends at '/', '\\', '?' or '#'; "*" is "/") up to '?' or '#', with
 *   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) decoded,
 *     every other escape kept, its hex upper-cased; a bad escape is 400;
 *   - '/', '\\', %2F and %5C all separators, and a run of them one '/':
 *     a backend that splits on any of them, or merges slashes, cannot be
 *     reached on a path that a route with an allow rule would have matched;
 *   - "." and ".." segments resolved (RFC 3986 §5.2.4), including those
 *     spelled %2E; climbing above "/" is 400;
 *   - a trailing separator kept ("/api/" stays "/api/").
 * The request goes to the backend with its target as sent; only
 * strip_prefix changes it.
 */
#ifndef TF_PROXY_HTTP_ROUTE_H
#define TF_PROXY_HTTP_ROUTE_H

/* Internal to proxy/http (and its tests): other libraries include
 * proxy/http/http.h, which includes this. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 2 && !defined(TF_PROXY_HTTP_PUBLIC)
#error "internal to proxy/http: include proxy/http/http.h"
#endif

#include "conf/conf.h"
#include "proxy/http/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- path ------------------------------------------------------------------ */

/* The normalized path is never longer than the target it comes from. */

/* Normalizes the path of TARGET (LEN bytes) into OUT (CAP >= LEN + 1 always
 * suffices; NUL-terminated), its length into *OUTLEN. Returns 0, or 400 when
 * the target is not a path this proxy routes: a bad escape, an escaped NUL,
 * a climb above "/", or a form other than origin, absolute or "*". */
int tf_http_path_normalize(const char *target, size_t len, char *out, size_t cap, size_t *outlen);

/* ---- routes ------------------------------------------------------------------ */

typedef struct tf_http_routes tf_http_routes_t;

/* Builds the table of a tenant's ROUTES (N >= 1, routes[0] "/"); the
 * prefixes are borrowed from the configuration, which must outlive the
 * table. 0, TF_ENOMEM or TF_EINVAL (routes[0] is not "/", a prefix twice). */
int tf_http_routes_new(const tf_conf_route_t *routes, size_t n, tf_http_routes_t **out)
    __attribute__((warn_unused_result));
void tf_http_routes_free(tf_http_routes_t *t);

/* The index of the route whose prefix is the longest that matches the
 * normalized path NPATH (LEN bytes): a prefix ending in '/' matches paths
 * that start with it; one without matches itself and itself followed by
 * '/'. Always a route: routes[0] matches every path. Costs one hash lookup
 * per segment of the path, whatever the number of routes. */
uint32_t tf_http_routes_match(const tf_http_routes_t *t, const char *npath, size_t len);

/* ---- targets ------------------------------------------------------------------ */

/* strip_prefix: the target to send for TARGET (as received, LEN bytes)
 * routed by PREFIX on normalized path NPATH: the prefix without its trailing
 * slash removed, the query kept ("/api/v1/x?q" → "/v1/x?q", "/api/" → "/",
 * "/api" → "/"). When the target spells the prefix as written, its own bytes
 * after it are kept as sent; otherwise the normalized path's rest is used.
 * Either way a leading run of separators in the rest is one '/' ("//x"
 * reads as an authority to many URL parsers), and the fragment is cut.
 * Writes into OUT (CAP >= LEN + 2 suffices); returns the length, or -1 when
 * CAP is too small or NPATH is not under PREFIX. */
long tf_http_strip_target(const char *target, size_t len, const char *npath, size_t nlen,
                          const char *prefix, char *out, size_t cap);

/* A redirect route's Location: REDIRECT followed by the rest of the path
 * after PREFIX and the query, by the same rule as tf_http_strip_target
 * ("/old/a?b" under prefix "/old/" and "https://x/new/" → "https://x/new/a?b"),
 * with exactly one '/' between REDIRECT and a rest that has a path.
 * Returns the length or -1 when CAP is too small. */
long tf_http_redirect_location(const char *redirect, const char *target, size_t len,
                               const char *npath, size_t nlen, const char *prefix, char *out,
                               size_t cap);

/* ---- cookies ------------------------------------------------------------------ */

/* The value of cookie NAME (case-sensitive, RFC 6265) in the request's
 * Cookie header fields, without quotes: true with *VAL and *VLEN pointing into
 * the head, false when absent. The first occurrence wins. */
bool tf_http_cookie_find(const tf_http_header_t *headers, size_t nheaders, const char *name,
                         const char **val, size_t *vlen);

/* ---- allow ------------------------------------------------------------------ */

/* Whether the client address SA (AF_INET or AF_INET6; an IPv4-mapped IPv6
 * address counts as the IPv4 one) matches ALLOW; an empty list allows
 * everyone. Linear in the list (lists are short). */
bool tf_http_allowed(const tf_conf_allow_t *allow, const struct sockaddr *sa);

/* ---- answers ------------------------------------------------------------------ */

/* The head of a response tlsfront writes itself: status line, Content-Type,
 * Content-Length (BODY_LEN), EXTRA (whole lines ending in CRLF, or NULL:
 * Location, Retry-After), "Connection: close" when CLOSE, then RULES (the
 * route's response header rules: set replaces or adds, remove deletes,
 * including Content-Type; never Content-Length or Connection, which conf
 * refuses; EXTRA is tlsfront's own and not subject to them) and the blank
 * line. CONTENT_TYPE may be NULL (no Content-Type line). Returns the length written into OUT, or -1
 * when CAP is too small. */
long tf_http_answer_head(unsigned status, const char *content_type, size_t body_len,
                         const char *extra, size_t extra_len, bool close,
                         const tf_conf_header_rules_t *rules, char *out, size_t cap);

#endif
