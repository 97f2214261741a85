/* proxy/ workers (internal): one libuv loop per thread, each with its own
 * listening sockets (SO_REUSEPORT), connections, timers, TLS context and
 * backend state. Nothing on the data path is shared between workers except
 * immutable, reference-counted objects (config, certificate snapshot, ticket
 * keys) and the process-wide connection count.
 *
 * Reloads (issue 6): what a worker serves new connections with — the
 * configuration, the certificate snapshot, the TLS context and the upstream
 * table — is one "generation" (tf_worker_gen_t). The main thread builds a
 * new one and posts it (tf_worker_publish: a mutex-protected mailbox and a
 * uv_async); the worker swaps its current pointer on its own thread, so the
 * data path reads it without a lock. A generation is reference counted by
 * the worker's connections (worker-local count, no atomics): a connection
 * keeps the one it was accepted under until it is freed, and the old
 * generation is freed with its last connection.
 */
#ifndef TF_PROXY_WORKER_H
#define TF_PROXY_WORKER_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "certstore/store.h"
#include "conf/conf.h"
#include "proxy/obs/obs.h"
#include "proxy/http/http.h"
#include "proxy/net/stream.h"
#include "proxy/net/wcache.h"
#include "tls/tls.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* A rewritten response head that fits is built here (exchange.c): the
 * client stream copies what it is given, so one buffer serves the loop. */
#define TF_WORKER_HEAD_BUF 16384u

typedef struct tf_conn tf_conn_t;
typedef struct tf_defer tf_defer_t;
typedef struct tf_listener tf_listener_t;
typedef struct tf_pool tf_pool_t;
typedef struct tf_health tf_health_t;
typedef struct tf_redirect tf_redirect_t;
typedef struct tf_access_log tf_access_log_t;
typedef struct tf_upstream tf_upstream_t;
typedef struct tf_backends tf_backends_t;
typedef struct tf_limits tf_limits_t;
typedef struct tf_worker tf_worker_t;
typedef struct tf_worker_gen tf_worker_gen_t;
typedef struct tf_acme_challenges tf_acme_challenges_t;

/* Process-wide and fixed for the run (listen addresses, workers and limits
 * need a restart), except `active` (atomic). Owned by the main thread. */
typedef struct {
    tf_tls_tickets_t *tickets; /* reference held; NULL: no tickets */
    const int *fds;            /* listening sockets: fds[worker * nlisten + i] */
    size_t nlisten;
    const int *http_fds; /* listen.http sockets: http_fds[worker * nhttp + i] */
    size_t nhttp;
    tf_access_log_t *access; /* the access log (log.access); never NULL */
    tf_backends_t *backends; /* backend state, process-wide (backends.h) */
    tf_health_t *health;     /* the health checker, process-wide (health.h); NULL: none */
    tf_limits_t *limits;     /* limits.per_client, process-wide (limits.h) */
    /* The built-in ACME client's challenge answers (acme/acme.h): http-01
     * on listen.http, tls-alpn-01 on the https listeners. NULL: none. */
    tf_acme_challenges_t *challenges;
    unsigned nworkers;
    uint32_t max_connections;
    _Atomic uint32_t active;     /* connections open in all workers */
    _Atomic uint32_t parked;     /* listeners waiting at max_connections, all workers */
    tf_worker_t *const *workers; /* every worker, set before any starts */
    _Atomic unsigned finished;   /* workers whose loop has ended */
} tf_shared_t;

/* The worker's current view: `conf` and `snap` are the current generation's
 * and change on the worker's thread only (a connection reads its own
 * generation instead, c->gen); `shared` is process-wide. */
typedef struct {
    tf_conf_t *conf;        /* borrowed from the current generation */
    tf_cs_snapshot_t *snap; /* borrowed from the current generation */
    unsigned nworkers;
    uint32_t max_connections;
    tf_shared_t *shared;
} tf_server_t;

/* One generation (see above). Every pointer is held by the generation. */
struct tf_worker_gen {
    unsigned refs;    /* the worker's "current" + connections accepted under it */
    uint64_t conf_id; /* the configuration's number (1 at start, +1 per applied reload) */
    tf_conf_t *conf;
    tf_cs_snapshot_t *snap;
    tf_tls_ctx_t *tls;
    tf_upstream_t *upstream;
    tf_worker_gen_t *older; /* the worker's list: current first */
};

/* Work a connection wants done once the loop's callbacks of this round have
 * run, before it waits again (tf_worker_defer): an HTTP/2 session flushes the frames its streams
 * queued in one write, not one per stream. Embedded in its owner. */
struct tf_defer {
    void (*run)(tf_defer_t *d);
    tf_defer_t *next;
    bool queued;
};

/* Per loop, for HTTP/2 sessions (h2.c): the frames of one flush are
 * gathered here before they are encrypted, and a response head is parsed
 * here (the exchange's resp_head may be in use while it writes). */
#define TF_WORKER_H2_OUT 16384u

struct tf_worker {
    uv_loop_t loop;             /* loop.data points back here */
    uv_prepare_t defer_prepare; /* runs `deferred` before the loop next waits */
    tf_defer_t *deferred;       /* queued tf_defer_t, run once each */
    uv_async_t stop_async;
    uv_async_t gen_async;    /* a new generation waits in `mailbox` */
    uv_async_t resume_async; /* another worker freed a connection slot */
    uv_timer_t drain_timer;
    uv_timer_t sample_timer; /* sweeps the pool's idle connections */
    uv_thread_t thread;
    uv_mutex_t mailbox_lock;
    tf_worker_gen_t *mailbox; /* posted by the main thread, taken by the worker */
    tf_server_t view;         /* `server` points here */
    tf_server_t *server;
    unsigned index;
    tf_worker_gen_t *gen;       /* current; never NULL once created */
    tf_tls_ctx_t *tls;          /* the current generation's (read by conn.c) */
    tf_upstream_t *upstream;    /* the routing table in use (see worker.c) */
    tf_worker_gen_t *route_gen; /* the generation `upstream` belongs to, referenced */
    tf_pool_t *pool;            /* idle backend connections (mode http) */
    tf_listener_t *listeners;   /* nlisten of them */
    size_t nlisten;
    tf_redirect_t **redirects; /* port 80 responders, nhttp of them (NULL: closed) */
    size_t nredirects;
    tf_conn_t *conns; /* every open connection, newest first */
    size_t nconns;
    size_t nchildren; /* HTTP/2 streams' connections (conn.h), not in `conns` */
    /* The most children alive at once since the last sweep, and in the
     * sweep period before: how many backend connections HTTP/2 recently
     * needed at once (tf_worker_pool_keep). */
    size_t children_peak, children_peak_prev;
    uint64_t accepted; /* connections accepted by this worker */
    bool stopping;
    int exit_status;
    tf_metrics_worker_t *metrics;  /* this worker's counters (cache-line aligned) */
    tf_stream_bufs_t bufs;         /* every stream's reads and TLS plaintext */
    char hbuf[TF_WORKER_HEAD_BUF]; /* response heads (exchange.c) */
    /* A parsed head is only needed while it is handled: one of each per
     * loop (exchange*.c). */
    tf_http_request_t req_head;
    tf_http_response_t resp_head;
    tf_http_response_t h2_resp_head;
    char h2_out[TF_WORKER_H2_OUT];
    /* The HTTP/2 header block being decoded (h2_stream.c): one at a time on
     * a loop, as a block's frames never interleave with others (RFC 9113
     * §4.3); kept between blocks, freed with the worker by its function. */
    void *h2_block;
    void (*h2_block_free)(void *block);
    /* Per-stream blocks (HTTP/2 streams, exchanges, libnghttp2's). */
    tf_wcache_t cache;
};

/* Creates worker `index`: its loop, listeners on the shared sockets, and a
 * first generation from conf and snap (references taken; a TLS context and
 * an upstream table are built here). Errors into err; returns 0 or a
 * negative code. */
int tf_worker_new(tf_shared_t *shared, unsigned index, tf_conf_t *conf, tf_cs_snapshot_t *snap,
                  tf_metrics_worker_t *metrics, tf_worker_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Runs the worker's loop on a new thread. */
int tf_worker_start(tf_worker_t *w) __attribute__((warn_unused_result));

/* Asks the worker to drain (any thread): stop accepting, let connections
 * finish up to timeouts.drain, then close the rest and end the loop. */
void tf_worker_stop(tf_worker_t *w);

/* Waits for the worker's thread to end (after tf_worker_stop). */
void tf_worker_join(tf_worker_t *w);

/* Frees the worker once its thread has ended (or never started: its loop
 * is then run here until the handles closed by tf_worker_stop are gone).
 * Join every worker before freeing any: a draining worker may still wake
 * the others' listeners. */
void tf_worker_free(tf_worker_t *w);

/* Builds a TLS context and an upstream table for conf + snap (blocking: the
 * upstream resolves backend names; call off the event loop or at start).
 * On success *tls and *upstream are new objects for tf_worker_publish().
 * upstream NULL: the TLS context only; the published generation then shares
 * the worker's current tenant table. */
int tf_worker_build(const tf_shared_t *shared, const tf_conf_t *conf, const tf_cs_snapshot_t *snap,
                    tf_tls_ctx_t **tls, tf_upstream_t **upstream, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Main thread, while the worker runs: makes conf + snap (references taken)
 * + tls + upstream (ownership taken) the worker's next generation. The
 * worker swaps it in at its next loop iteration; a generation posted before
 * and not yet taken is replaced (and freed). Never fails. */
void tf_worker_publish(tf_worker_t *w, uint64_t conf_id, tf_conf_t *conf, tf_cs_snapshot_t *snap,
                       tf_tls_ctx_t *tls, tf_upstream_t *upstream);

/* ---- for connections (worker thread only) ------------------------------ */

/* The current generation's objects: what a connection accepted now uses.
 * Borrowed: valid until the worker swaps generations (its next loop
 * iteration); a connection that keeps one past its callback takes the
 * generation with tf_worker_gen_acquire(). */
tf_conf_t *tf_worker_conf(const tf_worker_t *w);
tf_cs_snapshot_t *tf_worker_snap(const tf_worker_t *w);
tf_tls_ctx_t *tf_worker_tls(const tf_worker_t *w);
tf_upstream_t *tf_worker_upstream(const tf_worker_t *w);

/* A connection's hold on the current generation, taken at accept and
 * released when the connection is freed; the objects above stay valid for
 * it meanwhile (tf_worker_gen_conf(g) etc.). */
tf_worker_gen_t *tf_worker_gen_acquire(tf_worker_t *w);
/* One more hold on a generation a connection already holds (HTTP/2: a
 * stream keeps its connection's). */
void tf_worker_gen_hold(tf_worker_gen_t *g);
void tf_worker_gen_release(tf_worker_t *w, tf_worker_gen_t *g);

/* Queues d to run once before the loop next waits for events (a
 * uv_prepare: whatever callback queued it, timers included, nothing waits
 * for the next event); queuing a queued d again does nothing.
 * tf_worker_defer_cancel() takes it off the queue (its owner is freed). */
void tf_worker_defer(tf_worker_t *w, tf_defer_t *d);
void tf_worker_defer_cancel(tf_worker_t *w, tf_defer_t *d);

/* How many idle backend connections the pool may keep: one per client
 * that may send a request at once — the HTTP/1.1 connections, and the
 * HTTP/2 streams as many as were recently in flight at once (their
 * requests come in waves: counting only those alive when a response ends
 * closed most of the connections the next wave needed). */
size_t tf_worker_pool_keep(const tf_worker_t *w);

/* Connection bookkeeping, called by conn.c. */
void tf_worker_conn_added(tf_worker_t *w, tf_conn_t *c);
void tf_worker_conn_removed(tf_worker_t *w, tf_conn_t *c);

/* Whether one more connection fits under limits.max_connections; counts it
 * when it does. tf_worker_release() uncounts it (tf_worker_conn_removed()
 * calls it) and wakes the paused listeners of every worker. */
bool tf_worker_admit(tf_worker_t *w);
void tf_worker_release(tf_worker_t *w);

#endif
