/* proxy/ workers (internal): one libuv loop per thread, each with its own
 * listening sockets (SO_REUSEPORT), connections, timers, TLS context and
 * backend state. Nothing on the data path is shared between workers except
 * immutable, reference-counted objects (config, certificate snapshot, ticket
 * keys) and the process-wide connection count.
 */
#ifndef TF_PROXY_WORKER_H
#define TF_PROXY_WORKER_H

#include "certstore/store.h"
#include "conf/conf.h"
#include "tls/tls.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define TF_WORKER_BUF (64u * 1024u)

typedef struct tf_conn tf_conn_t;
typedef struct tf_listener tf_listener_t;
typedef struct tf_pool tf_pool_t;
typedef struct tf_health tf_health_t;
typedef struct tf_redirect tf_redirect_t;
typedef struct tf_access_log tf_access_log_t;
typedef struct tf_upstream tf_upstream_t;
typedef struct tf_worker tf_worker_t;

/* What the main thread builds and every worker reads. Immutable while the
 * workers run, except `active` (atomic). */
typedef struct {
    tf_conf_t *conf;           /* reference held */
    tf_cs_snapshot_t *snap;    /* reference held */
    tf_tls_tickets_t *tickets; /* reference held; NULL: no tickets */
    const int *fds;            /* listening sockets: fds[worker * nlisten + i] */
    size_t nlisten;
    const int *http_fds; /* listen.http sockets: http_fds[worker * nhttp + i] */
    size_t nhttp;
    tf_access_log_t *access; /* the access log (log.access); never NULL */
    unsigned nworkers;
    uint32_t max_connections;
    _Atomic uint32_t active; /* connections open in all workers */
} tf_server_t;

struct tf_worker {
    uv_loop_t loop; /* loop.data points back here */
    uv_async_t stop_async;
    uv_timer_t drain_timer;
    uv_thread_t thread;
    tf_server_t *server;
    unsigned index;
    tf_tls_ctx_t *tls;
    tf_upstream_t *upstream;
    tf_pool_t *pool; /* idle backend connections (mode http) */
    tf_health_t *health; /* active health checks, or NULL */
    tf_listener_t *listeners; /* nlisten of them */
    size_t nlisten;
    tf_redirect_t **redirects; /* port 80 responders, nhttp of them (NULL: closed) */
    size_t nredirects;
    tf_conn_t *conns; /* every open connection, newest first */
    size_t nconns;
    uint64_t accepted; /* connections accepted by this worker */
    bool stopping;
    int exit_status;
    char rbuf[TF_WORKER_BUF]; /* libuv reads land here (alloc_cb) */
    char pbuf[TF_WORKER_BUF]; /* TLS plaintext decrypted here */
};

/* Creates worker `index` (its loop, TLS context, upstream table, listeners on
 * the server's sockets). Errors into err; returns 0 or a negative code. */
int tf_worker_new(tf_server_t *server, unsigned index, tf_worker_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Runs the worker's loop on a new thread. */
int tf_worker_start(tf_worker_t *w) __attribute__((warn_unused_result));

/* Asks the worker to drain (any thread): stop accepting, let connections
 * finish up to timeouts.drain, then close the rest and end the loop. */
void tf_worker_stop(tf_worker_t *w);

/* Waits for the thread and frees the worker. */
void tf_worker_join_free(tf_worker_t *w);

/* Connection bookkeeping, called by conn.c. */
void tf_worker_conn_added(tf_worker_t *w, tf_conn_t *c);
void tf_worker_conn_removed(tf_worker_t *w, tf_conn_t *c);

/* Whether one more connection fits under limits.max_connections; counts it
 * when it does. tf_worker_release() uncounts it (tf_worker_conn_removed()
 * calls it) and lets paused listeners try again. */
bool tf_worker_admit(tf_worker_t *w);
void tf_worker_release(tf_worker_t *w);

#endif
