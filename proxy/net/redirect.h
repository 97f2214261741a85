/* proxy/ port 80 (SPEC §7, `listen.http`): a small plain-HTTP responder that
 * answers every request with `301 Moved Permanently` to the same host and
 * target on https, except ACME http-01 challenges, which it serves from the
 * built-in client's answers in memory (tf_redirect_set_challenges), then
 * from `acme.webroot` (certbot's and lego's webroot layout:
 * WEBROOT/.well-known/acme-challenge/TOKEN).
 *
 * One responder runs per worker loop on that worker's SO_REUSEPORT socket,
 * like the https listeners. Every connection gets one request: its head is
 * read (limits.max_header_bytes, else 431; timeouts.request_header, else
 * 408; malformed, 400), one response is written with Content-Length, Date
 * and `Connection: close`, then the connection is shut down and closed. A
 * request body is never read: unread bytes are drained for a short while
 * after the response (a "lingering close") so that the client sees the
 * response rather than a reset.
 *
 * Threads: everything but the pure functions runs on the loop's thread,
 * tf_redirect_set_conf() and tf_redirect_close() included.
 */
#ifndef TF_PROXY_REDIRECT_H
#define TF_PROXY_REDIRECT_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "conf/conf.h"
#include "proxy/http/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <uv.h>

/* Challenge files larger than this are not served (404): tokens are
 * about 100 bytes. */
#define TF_REDIRECT_MAX_FILE (64u * 1024u)

/* After the response: how long the connection may take to be written and
 * to drain what the client still sends, in milliseconds. */
#define TF_REDIRECT_LINGER_MS 2000

/* Longest host kept in a Location (a DNS name is at most 253 bytes; an
 * IPv6 literal with brackets fits too). */
#define TF_REDIRECT_MAX_HOST 255

/* tf_redirect_route(): serve the challenge file named in out. */
#define TF_REDIRECT_ACME 200

typedef struct tf_redirect tf_redirect_t;

/* Starts answering on `fd`, a bound TCP socket (listen(2) already called or
 * not: libuv's uv_listen() calls it again, which is harmless). The
 * responder takes the fd in every case, also on failure. It holds a
 * reference to conf until it is replaced or the responder closed. Returns
 * 0 with *out set, TF_ENOMEM, or a UV_E* code. */
int tf_redirect_start(uv_loop_t *loop, int fd, tf_conf_t *conf, tf_redirect_t **out)
    __attribute__((warn_unused_result));

/* A reload: later requests use conf (a reference is taken, the old one
 * dropped). Requests whose head is being read take the new limits and
 * webroot when they complete; their timer keeps the deadline it had. */
void tf_redirect_set_conf(tf_redirect_t *r, tf_conf_t *conf);

/* Stops accepting, closes every connection at once (they are short-lived:
 * nothing is worth draining on port 80) and frees the responder when its
 * last handle has closed; then calls done(arg) if done is not NULL. r must
 * not be used after this call. */
void tf_redirect_close(tf_redirect_t *r, void (*done)(void *arg), void *arg);

/* Writes one line per request (every answer, errors included) to log, which
 * stays the caller's: it must outlive the responder or be replaced first.
 * NULL: no access log. Call on the loop's thread. */
typedef struct tf_access_log tf_access_log_t;
void tf_redirect_set_access_log(tf_redirect_t *r, tf_access_log_t *log);

/* Answers http-01 challenges from t (key authorizations by token, SPEC
 * §13) before looking in the webroot: 200, text/plain, the key
 * authorization as the body. t stays the caller's and must outlive the
 * responder; NULL (the default): the webroot only. With t set, challenge
 * paths are served (not 404) even without acme.webroot. Loop thread. */
typedef struct tf_acme_challenges tf_acme_challenges_t;
void tf_redirect_set_challenges(tf_redirect_t *r, tf_acme_challenges_t *t);

/* Connections open now (for tests and metrics). */
size_t tf_redirect_connections(const tf_redirect_t *r);

/* ---- pure parts, unit-tested and fuzzed ---------------------------------- */

/* What to answer to a parsed request. Returns:
 *  - TF_REDIRECT_ACME: GET or HEAD of /.well-known/acme-challenge/TOKEN
 *    (TOKEN of [A-Za-z0-9_-], at most 255 bytes, query ignored) while
 *    acme is true; out receives the NUL-terminated token;
 *  - 404: any other path under /.well-known/acme-challenge/ with GET or
 *    HEAD (traversal, encoded bytes, dots, slashes, empty), or any such path
 *    while acme is false;
 *  - 301: everything else (every method, as nginx's `return 301` does); out
 *    receives the NUL-terminated Location, "https://HOST" followed by the
 *    target as sent, with the Host's port removed and bytes outside
 *    printable ASCII percent-encoded;
 *  - 400: no usable Host (missing, empty, a bad port, characters a host
 *    name or IP literal cannot have) or a target that is not origin-form
 *    ("/..."), which is all a client sends to an origin server;
 *  - 414: the Location does not fit in outlen bytes.
 * The Location never carries a port: https is assumed on 443, because
 * listen.https addresses are local and a NAT or load balancer in front
 * usually maps 443 to them. */
int tf_redirect_route(const tf_http_request_t *req, bool acme, char *out, size_t outlen);

/* Writes a complete response into out (outlen bytes): the status line,
 * Date (from now), Location when location is not NULL, Content-Type
 * text/plain, Content-Length of body, Connection: close, and the body
 * unless head_only. Returns the length, or -1 when out is too small. */
long tf_redirect_format(char *out, size_t outlen, int status, const char *location,
                        const char *body, size_t body_len, bool head_only, time_t now);

/* The reason phrase of a status this responder sends ("Not Found"). */
const char *tf_redirect_reason(int status);

#endif
