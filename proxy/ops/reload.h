/* proxy/ reloads (SPEC §4.5, §5): the certificate store and the
 * configuration, rebuilt while the proxy runs, on the main thread's loop.
 *
 * Every trigger goes through one path, tf_reload_request(): SIGHUP and
 * POST /reload (certificates and configuration), a change in a watched
 * certificate directory (inotify through uv_fs_event, debounced 100 ms), a
 * slow periodic re-check (for editors and rename patterns that events miss),
 * and the next date at which a certificate becomes valid, enters its last
 * 30 days or expires (tf_cs_snapshot_next_change). The rebuild runs on
 * libuv's thread pool: an incremental store build from the last snapshot
 * (only changed files are parsed; a file that now fails keeps its last good
 * version in service), the configuration re-read and validated when asked,
 * and a TLS context and an upstream table per worker. Back on the loop the
 * result is published to every worker (tf_worker_publish) or, on any error,
 * dropped whole while the running state stays. One rebuild runs at a time;
 * requests that arrive meanwhile are merged into the next one.
 */
#ifndef TF_PROXY_RELOAD_H
#define TF_PROXY_RELOAD_H

/* Internal to proxy/ops (and its tests): other libraries include
 * proxy/ops/ops.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 4 && !defined(TF_PROXY_OPS_PUBLIC)
#error "internal to proxy/ops: include proxy/ops/ops.h"
#endif

#include "certstore/store.h"
#include "conf/conf.h"
#include "proxy/obs/obs.h"
#include "proxy/net/net.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct tf_reload tf_reload_t;

/* What one reload did, for the log, POST /reload and PUT/DELETE /certs. */
typedef struct {
    int rc;            /* 0: applied (possibly with rejected files); else nothing applied */
    const char *error; /* why nothing was applied (rc != 0), else NULL */
    bool stopping;     /* rc != 0 because tlsfront is stopping (nothing else failed) */
    size_t added, replaced, removed;
    /* Files not served from their current content, changed by this reload
     * or not: rejected now, or kept while their source cannot be read. */
    size_t failed;
    const char *failures;    /* their "FILE: reason: what to do", then each source that
                              * cannot be read, one per line, or NULL */
    const char *warnings;    /* of the bundles added or replaced, one per line, or NULL */
    bool conf_requested;     /* the configuration was re-read */
    bool conf_applied;       /* ... and is now in service */
    const char *conf_errors; /* every "file:line:column: message", one per line, or NULL */
    const char *restart;     /* settings that changed but need a restart, one per line, or NULL */
} tf_reload_result_t;

/* Called on the loop thread when the reload that includes the request ends;
 * res and its strings live only during the call. Its added, replaced and
 * removed also count what a reload already running when the request came
 * applied: that one may be the one that saw the requester's change (a watch
 * event on the file can start it first). */
typedef void (*tf_reload_cb)(void *arg, const tf_reload_result_t *res);

typedef struct {
    uv_loop_t *loop;
    const char *conf_path; /* re-read on configuration reloads; copied */
    tf_conf_t *conf;       /* in service; a reference is taken */
    tf_shared_t *shared;
} tf_reload_opts_t;

/* Builds the certificate store from conf (blocking, at start-up), logs its
 * notes and the certificates within 30 days of expiry. Fails (TF_ENOCERT,
 * logged) without a usable default certificate. */
int tf_reload_new(const tf_reload_opts_t *opts, tf_reload_t **out)
    __attribute__((warn_unused_result));

/* The workers to publish to (set once they exist), then starts watching the
 * certificate sources and the timers. */
void tf_reload_start(tf_reload_t *r, tf_worker_t *const *workers, unsigned nworkers);

/* In service now (main thread): borrowed until the next reload completes. */
tf_conf_t *tf_reload_conf(const tf_reload_t *r);
tf_cs_snapshot_t *tf_reload_snapshot(const tf_reload_t *r);

/* The snapshot in service, for any thread (the ACME manager's): a new
 * reference (tf_cs_snapshot_unref), valid until tf_reload_free(). */
tf_cs_snapshot_t *tf_reload_snapshot_ref(tf_reload_t *r);

/* Asks for a reload (main thread). with_conf: re-read the configuration
 * too. why: for the log ("SIGHUP", "POST /reload"). cb (may be NULL) is
 * called once it is done, or at once with an error when stopping. */
void tf_reload_request(tf_reload_t *r, bool with_conf, const char *why, tf_reload_cb cb, void *arg);

/* Called on the loop thread whenever a new configuration goes into service
 * (the admin API re-reads its token file). One listener. */
void tf_reload_on_conf(tf_reload_t *r, void (*cb)(void *arg, const tf_conf_t *conf), void *arg);

/* Called on the loop thread around configuration reloads (with_conf: SIGHUP,
 * POST /reload), for a supervisor's view (sd_notify RELOADING=1/READY=1):
 * with res NULL when one is asked for and none is outstanding, then with
 * the result of the rebuild that answers the last request outstanding
 * (requests made while one runs are merged into the next). Not called for
 * the rebuild in flight when tlsfront starts stopping. One listener. */
typedef void (*tf_reload_cycle_cb)(void *arg, const tf_reload_result_t *res);
void tf_reload_on_cycle(tf_reload_t *r, tf_reload_cycle_cb cb, void *arg);

/* Figures for GET /metrics. */
void tf_reload_metrics(const tf_reload_t *r, tf_metrics_main_t *m);
/* The process-wide backend registry (proxy/net/backends.h). */
tf_backends_t *tf_reload_backends(const tf_reload_t *r);

/* Stops watching and refuses new requests; a rebuild in flight completes
 * and is dropped. The loop then ends once its handles closed. */
void tf_reload_close(tf_reload_t *r);

/* Frees everything, after the loop has ended. */
void tf_reload_free(tf_reload_t *r);

#endif
