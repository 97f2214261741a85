/* proxy/ admin API (SPEC §8): plain HTTP/1.1 on admin.listen, served by the
 * main thread's loop, one request per connection (answered with
 * "Connection: close"). With admin.token_file, every request must carry
 * "Authorization: Bearer TOKEN" (compared in constant time); otherwise 401
 * with "WWW-Authenticate: Bearer".
 *
 *   GET    /healthz      200 "ok"
 *   GET    /metrics      Prometheus text format 0.0.4
 *   GET    /certs        JSON array: every certificate file and its state
 *   POST   /reload       certificates and configuration; JSON result
 *   PUT    /certs/NAME   a PEM bundle (at most 1 MiB): validated, written as
 *                        NAME.pem (mode 0600, atomically) into the first
 *                        directory of tls.certs, then reloaded; 422 with
 *                        every reason when it is not usable, or when the
 *                        reload rejects the file written
 *   DELETE /certs/NAME   removes NAME.pem (and NAME.key) and reloads; 404 if absent
 *   GET    /backends     JSON: every route's backends and their state
 *   POST   /backends/TENANT/ADDRESS  {"state": "drain" | "maint" | "ready"}
 *   GET    /acme         JSON array: each name of the `acme: true` tenants and
 *                        what the ACME manager knows of it ([] when ACME is off)
 *
 * A request with "Expect: 100-continue" gets "HTTP/1.1 100 Continue" before
 * its body when its head is acceptable (token, method, path, size, and a
 * directory in tls.certs for PUT), and its final answer at once, without
 * the 100, when not (401, 404, 405, 409, 411, 413, 417). Any other
 * expectation of an HTTP/1.1 request is 417.
 *
 * The loop never waits for the disk: PUT and DELETE do their file work on
 * libuv's thread pool (proxy/admin_certs.h) and answer once it is durable,
 * and a new admin.token_file is read there too (the token in use stays until
 * it is read). One file job runs at a time, until its reload has answered;
 * PUT and DELETE requests wait in a queue (503 after TF_ADMIN_TIMEOUT_MS,
 * dropped when their client leaves).
 * A durable change whose reload is refused because tlsfront is stopping is
 * 200 with "reload":"at next start"; one made under a tls.certs that a
 * reload changed meanwhile is 409.
 *
 * Private keys never appear in a response or a log line: bundles are
 * described through the certificate store's accessors, which expose none.
 */
#ifndef TF_PROXY_ADMIN_H
#define TF_PROXY_ADMIN_H

/* Internal to proxy/ops (and its tests): other libraries include
 * proxy/ops/ops.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 4 && !defined(TF_PROXY_OPS_PUBLIC)
#error "internal to proxy/ops: include proxy/ops/ops.h"
#endif

#include "acme/acme.h"
#include "conf/conf.h"
#include "proxy/obs/obs.h"
#include "proxy/ops/reload.h"

#include <uv.h>

/* Request head and body limits. */
#define TF_ADMIN_MAX_HEAD 16384
#define TF_ADMIN_MAX_BODY (1024u * 1024u)
/* Deadline for a whole request to arrive, for a queued PUT or DELETE to
 * start, and for an answer to be taken. */
#define TF_ADMIN_TIMEOUT_MS 10000

typedef struct tf_admin tf_admin_t;

typedef struct {
    uv_loop_t *loop;
    const tf_conf_t *conf; /* admin.listen and admin.token_file are read now */
    tf_reload_t *reload;
    tf_metrics_worker_t *const *metrics; /* one per worker */
    unsigned nworkers;
    tf_acme_manager_t *acme; /* GET /acme and its metrics; NULL: ACME is off */
} tf_admin_opts_t;

/* Binds admin.listen and reads the token file (at start, before privileges
 * are dropped). Logs and returns a negative code on failure. */
int tf_admin_new(const tf_admin_opts_t *opts, tf_admin_t **out) __attribute__((warn_unused_result));

/* Writes the address the admin API is bound to ("127.0.0.1:9443": the port
 * the kernel chose when admin.listen asks for port 0) into out; returns the
 * port, or a negative code. */
int tf_admin_name(const tf_admin_t *a, char *out, size_t outlen);

/* Reads admin.token_file of conf as tf_admin_new() does, for tlsfront check;
 * the token is not kept. Returns 0 (also without a token file), or a
 * negative code with the message tf_admin_new() would log in why
 * ("[FILE:LINE:COLUMN: ]PATH: cannot read admin.token_file: ...").
 * Blocking: not for the loop thread. */
int tf_admin_check_token(const tf_conf_t *conf, char *why, size_t len);

/* Re-reads admin.token_file from conf (after a configuration reload) on the
 * thread pool; the token in use stays until the read is back, and on
 * failure (logged). */
void tf_admin_reload_token(tf_admin_t *a, const tf_conf_t *conf);

/* Stops listening and closes idle connections; a request waiting for a
 * reload is answered first. Frees itself once every handle has closed. */
void tf_admin_close(tf_admin_t *a);

#endif
