/* See worker.h. A worker's loop runs until every handle is closed: the
 * listeners, its async signals and timers, and the connections. Stopping
 * closes the listeners at once, lets connections finish, closes what is left
 * when timeouts.drain expires, and closes its own handles once the last
 * connection is gone.
 *
 * Generations and connections: a connection takes a reference to the
 * current generation at accept (tf_worker_gen_acquire) and uses its TLS
 * context, snapshot, configuration and tenant table until it is freed, so a
 * new generation applies to new connections at once and the old one goes
 * with its last connection. w->upstream is the current table. Backend state
 * (health, down marks, in flight) is process-wide, in the registry
 * (backends.h); health checks run once per process (health.h). */
#include "proxy/net/worker.h"

#include "acme/acme.h"
#include "common/err.h"
#include "proxy/net/conn.h"
#include "proxy/net/listener.h"
#include "proxy/obs/obs.h"
#include "proxy/net/pool.h"
#include "proxy/net/redirect.h"
#include "proxy/net/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SAMPLE_MS 1000

static void worker_on_stop(uv_async_t *a);
static void worker_on_gen(uv_async_t *a);
static void worker_on_resume(uv_async_t *a);
static void worker_on_sweep(uv_timer_t *t);

/* ---- generations ------------------------------------------------------- */

static tf_worker_gen_t *gen_new(uint64_t conf_id, tf_conf_t *conf, tf_cs_snapshot_t *snap,
                                tf_tls_ctx_t *tls, tf_upstream_t *upstream)
{
    tf_worker_gen_t *g = calloc(1, sizeof *g);
    if (g == NULL) {
        /* Config time, on the main thread: out of memory is fatal here. */
        fputs("tlsfront: out of memory\n", stderr);
        abort();
    }
    g->refs = 1;
    g->conf_id = conf_id;
    g->conf = tf_conf_ref(conf);
    g->snap = tf_cs_snapshot_ref(snap);
    g->tls = tls;
    g->upstream = upstream;
    return g;
}

static void gen_free(tf_worker_gen_t *g)
{
    if (g == NULL)
        return;
    tf_tls_ctx_free(g->tls);
    tf_upstream_free(g->upstream);
    tf_cs_snapshot_unref(g->snap);
    tf_conf_unref(g->conf);
    free(g);
}

/* Drops one reference; the last one unlinks the generation and frees it.
 * The current generation holds a reference of its own, so it never goes. */
static void gen_unref(tf_worker_t *w, tf_worker_gen_t *g)
{
    if (--g->refs > 0)
        return;
    for (tf_worker_gen_t **p = &w->gen; *p != NULL; p = &(*p)->older) {
        if (*p == g) {
            *p = g->older;
            break;
        }
    }
    TF_LOG(TF_LOG_DEBUG, "worker %u: configuration %llu released", w->index,
           (unsigned long long)g->conf_id);
    gen_free(g);
}

static void route_try_swap(tf_worker_t *w)
{
    if (w->route_gen == w->gen)
        return;
    tf_worker_gen_t *old = w->route_gen;
    w->route_gen = w->gen;
    w->route_gen->refs++;
    w->upstream = w->gen->upstream;
    if (old != NULL)
        gen_unref(w, old);
}

static void gen_make_current(tf_worker_t *w, tf_worker_gen_t *g)
{
    tf_worker_gen_t *old = w->gen;
    /* A certificate-only reload keeps the tenant table (and its round-robin
     * positions) of the generation in service. */
    if (g->upstream == NULL && old != NULL)
        g->upstream = tf_upstream_ref(old->upstream);
    if (g->upstream != NULL && tf_upstream_conf(g->upstream) != g->conf)
        TF_LOG(TF_LOG_WARN,
               "worker %u: tenant tables of another configuration kept in service; "
               "send SIGHUP to rebuild them",
               w->index);
    g->older = old;
    w->gen = g;
    w->tls = g->tls;
    w->view.conf = g->conf;
    w->view.snap = g->snap;
    for (size_t i = 0; i < w->nredirects; i++) {
        if (w->redirects[i] != NULL)
            tf_redirect_set_conf(w->redirects[i], g->conf);
    }
    if (old != NULL)
        gen_unref(w, old); /* its "current" reference */
    route_try_swap(w);
}

static void worker_on_gen(uv_async_t *a)
{
    tf_worker_t *w = a->loop->data;
    uv_mutex_lock(&w->mailbox_lock);
    tf_worker_gen_t *g = w->mailbox;
    w->mailbox = NULL;
    uv_mutex_unlock(&w->mailbox_lock);
    if (g == NULL)
        return;
    if (w->stopping) {
        gen_free(g);
        return;
    }
    gen_make_current(w, g);
    TF_LOG(TF_LOG_DEBUG, "worker %u: configuration %llu in service", w->index,
           (unsigned long long)g->conf_id);
}

void tf_worker_publish(tf_worker_t *w, uint64_t conf_id, tf_conf_t *conf, tf_cs_snapshot_t *snap,
                       tf_tls_ctx_t *tls, tf_upstream_t *upstream)
{
    tf_worker_gen_t *g = gen_new(conf_id, conf, snap, tls, upstream);
    uv_mutex_lock(&w->mailbox_lock);
    tf_worker_gen_t *unused = w->mailbox;
    /* A certificate-only generation (no tables: the worker keeps those in
     * service) replacing one the worker never took that brought new tables
     * for this configuration: those tables are the ones to keep, not the
     * worker's, which point into the previous configuration. */
    if (g->upstream == NULL && unused != NULL && unused->conf == g->conf) {
        g->upstream = unused->upstream;
        unused->upstream = NULL;
    }
    w->mailbox = g;
    uv_mutex_unlock(&w->mailbox_lock);
    /* Never seen by the worker: freeing it here races with nothing. */
    gen_free(unused);
    uv_async_send(&w->gen_async);
}

/* tls/'s tls-alpn-01 provider (tls.h) on the process's challenge table:
 * tls/ stays ignorant of acme/. Copies, so nothing of the table escapes its
 * lock. */
static bool worker_acme_cert(void *ud, const char *host, size_t len, tf_tls_acme_cert_t *out)
{
    return tf_acme_alpn01_get(ud, host, len, &out->cert, &out->cert_len, &out->key,
                              &out->key_len) == 0;
}

int tf_worker_build(const tf_shared_t *shared, const tf_conf_t *conf, const tf_cs_snapshot_t *snap,
                    tf_tls_ctx_t **tls, tf_upstream_t **upstream, char *err, size_t errlen)
{
    const tf_conf_tls_t *t = tf_conf_tls(conf);
    tf_tls_ctx_opts_t opts = {
        .tls13_only = t->min_version == TF_CONF_TLS_1_3,
        .reject_unknown_sni = t->unknown_sni == TF_CONF_SNI_REJECT,
        .tickets = shared->tickets,
        .acme = shared->challenges != NULL ? worker_acme_cert : NULL,
        .acme_ud = shared->challenges,
    };
    *tls = NULL;
    if (upstream != NULL)
        *upstream = NULL;
    int rc = tf_tls_ctx_new(&opts, snap, tls, err, errlen);
    if (rc == 0 && upstream != NULL)
        rc = tf_upstream_new(conf, shared->backends, upstream, err, errlen);
    if (rc != 0) {
        tf_tls_ctx_free(*tls);
        *tls = NULL;
    }
    return rc;
}

tf_conf_t *tf_worker_conf(const tf_worker_t *w)
{
    return w->gen->conf;
}

tf_cs_snapshot_t *tf_worker_snap(const tf_worker_t *w)
{
    return w->gen->snap;
}

tf_tls_ctx_t *tf_worker_tls(const tf_worker_t *w)
{
    return w->gen->tls;
}

tf_upstream_t *tf_worker_upstream(const tf_worker_t *w)
{
    return w->gen->upstream;
}

tf_worker_gen_t *tf_worker_gen_acquire(tf_worker_t *w)
{
    w->gen->refs++;
    return w->gen;
}

void tf_worker_gen_hold(tf_worker_gen_t *g)
{
    g->refs++;
}

void tf_worker_gen_release(tf_worker_t *w, tf_worker_gen_t *g)
{
    if (g != NULL)
        gen_unref(w, g);
}

/* ---- life of the worker ------------------------------------------------ */

static void close_once(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void worker_finish(tf_worker_t *w)
{
    close_once((uv_handle_t *)&w->stop_async);
    close_once((uv_handle_t *)&w->gen_async);
    close_once((uv_handle_t *)&w->resume_async);
    close_once((uv_handle_t *)&w->drain_timer);
    close_once((uv_handle_t *)&w->sample_timer);
    close_once((uv_handle_t *)&w->defer_prepare);
}

static void worker_free_gens(tf_worker_t *w)
{
    while (w->gen != NULL) {
        tf_worker_gen_t *g = w->gen;
        w->gen = g->older;
        gen_free(g);
    }
    gen_free(w->mailbox);
    w->mailbox = NULL;
}

static void worker_dispose(tf_worker_t *w)
{
    /* Runs the loop until the handles closed by stop and finish are gone. */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0)
        TF_LOG(TF_LOG_WARN, "worker %u: loop closed with handles open: %s", w->index,
               uv_strerror(rc));
    /* Every connection is gone: whatever generation is left goes too. */
    worker_free_gens(w);
    uv_mutex_destroy(&w->mailbox_lock);
    tf_pool_free(w->pool);
    if (w->h2_block_free != NULL)
        w->h2_block_free(w->h2_block);
    tf_wcache_dispose(&w->cache);
    free(w->listeners);
    free(w->redirects);
    free(w);
}

static int worker_listen(tf_worker_t *w, char *err, size_t errlen)
{
    const tf_shared_t *s = w->view.shared;
    const tf_conf_addr_list_t *https = tf_conf_listen_https(w->gen->conf);
    w->listeners = calloc(s->nlisten, sizeof *w->listeners);
    if (w->listeners == NULL)
        return TF_ENOMEM;
    for (size_t i = 0; i < s->nlisten; i++) {
        int fd = dup(s->fds[w->index * s->nlisten + i]);
        int rc = UV_EMFILE;
        if (fd >= 0) {
            rc = tf_listener_start(&w->listeners[i], w, &https->items[i], fd);
            w->nlisten = i + 1;
        }
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot listen: %s", https->items[i].text, uv_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* Port 80: one responder per listen.http address on this worker's socket. */
static int worker_redirects(tf_worker_t *w, char *err, size_t errlen)
{
    const tf_shared_t *s = w->server->shared;
    if (s->nhttp == 0)
        return 0;
    const tf_conf_addr_list_t *http = tf_conf_listen_http(w->server->conf);
    w->redirects = calloc(s->nhttp, sizeof *w->redirects);
    if (w->redirects == NULL)
        return TF_ENOMEM;
    for (size_t i = 0; i < s->nhttp; i++) {
        int fd = dup(s->http_fds[w->index * s->nhttp + i]);
        int rc = fd >= 0 ? tf_redirect_start(&w->loop, fd, w->server->conf, &w->redirects[i])
                         : UV_EMFILE;
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot listen: %s", http->items[i].text, tf_strerror(rc));
            return rc;
        }
        w->nredirects = i + 1;
        tf_redirect_set_access_log(w->redirects[i], s->access);
        tf_redirect_set_challenges(w->redirects[i], s->challenges);
    }
    return 0;
}

static void worker_close_redirects(tf_worker_t *w)
{
    for (size_t i = 0; i < w->nredirects; i++) {
        if (w->redirects[i] != NULL)
            tf_redirect_close(w->redirects[i], NULL, NULL);
        w->redirects[i] = NULL;
    }
}

static void worker_init_handles(tf_worker_t *w)
{
    uv_async_init(&w->loop, &w->stop_async, worker_on_stop);
    uv_async_init(&w->loop, &w->gen_async, worker_on_gen);
    uv_async_init(&w->loop, &w->resume_async, worker_on_resume);
    uv_timer_init(&w->loop, &w->drain_timer);
    uv_timer_init(&w->loop, &w->sample_timer);
    w->sample_timer.data = w->drain_timer.data = w;
    uv_timer_start(&w->sample_timer, worker_on_sweep, SAMPLE_MS, SAMPLE_MS);
    uv_prepare_init(&w->loop, &w->defer_prepare);
    w->defer_prepare.data = w;
}

static int worker_first_gen(tf_worker_t *w, tf_conf_t *conf, tf_cs_snapshot_t *snap, char *err,
                            size_t errlen)
{
    tf_tls_ctx_t *tls = NULL;
    tf_upstream_t *upstream = NULL;
    int rc = tf_worker_build(w->view.shared, conf, snap, &tls, &upstream, err, errlen);
    if (rc != 0)
        return rc;
    gen_make_current(w, gen_new(1, conf, snap, tls, upstream));
    return 0;
}

int tf_worker_new(tf_shared_t *shared, unsigned index, tf_conf_t *conf, tf_cs_snapshot_t *snap,
                  tf_metrics_worker_t *metrics, tf_worker_t **out, char *err, size_t errlen)
{
    tf_worker_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return TF_ENOMEM;
    w->view.shared = shared;
    w->view.nworkers = shared->nworkers;
    w->view.max_connections = shared->max_connections;
    w->server = &w->view;
    w->index = index;
    w->metrics = metrics;
    int rc = uv_loop_init(&w->loop);
    if (rc != 0) {
        free(w);
        snprintf(err, errlen, "cannot create an event loop: %s", uv_strerror(rc));
        return rc;
    }
    if (uv_mutex_init(&w->mailbox_lock) != 0)
        abort(); /* start-up time: only fails without memory */
    w->loop.data = w;
    worker_init_handles(w);
    rc = worker_first_gen(w, conf, snap, err, errlen);
    if (rc == 0) {
        w->pool = tf_pool_new(&w->loop, tf_conf_timeouts(conf)->idle_ms);
        rc = w->pool != NULL ? 0 : TF_ENOMEM;
    }
    if (rc == 0)
        rc = worker_listen(w, err, errlen);
    if (rc == 0)
        rc = worker_redirects(w, err, errlen);
    if (rc != 0) {
        for (size_t i = 0; i < w->nlisten; i++)
            tf_listener_stop(&w->listeners[i]);
        worker_close_redirects(w);
        worker_finish(w);
        worker_dispose(w);
        return rc;
    }
    *out = w;
    return 0;
}

static void worker_main(void *arg)
{
    tf_worker_t *w = arg;
    tf_tls_thread_init();
    uv_run(&w->loop, UV_RUN_DEFAULT);
    tf_tls_thread_cleanup();
    atomic_fetch_add(&w->view.shared->finished, 1);
}

int tf_worker_start(tf_worker_t *w)
{
    return uv_thread_create(&w->thread, worker_main, w);
}

void tf_worker_stop(tf_worker_t *w)
{
    uv_async_send(&w->stop_async);
}

void tf_worker_join(tf_worker_t *w)
{
    uv_thread_join(&w->thread);
}

void tf_worker_free(tf_worker_t *w)
{
    worker_dispose(w);
}

static void worker_on_sweep(uv_timer_t *t)
{
    tf_worker_t *w = t->data;
    w->children_peak_prev = w->children_peak;
    w->children_peak = w->nchildren;
    if (w->pool != NULL)
        tf_pool_sweep(w->pool);
}

size_t tf_worker_pool_keep(const tf_worker_t *w)
{
    size_t peak =
        w->children_peak > w->children_peak_prev ? w->children_peak : w->children_peak_prev;
    return w->nconns + (peak > w->nchildren ? peak : w->nchildren);
}

/* ---- deferred work ----------------------------------------------------- */

static void worker_on_prepare(uv_prepare_t *h)
{
    tf_worker_t *w = h->data;
    /* One item at a time off the live queue, so that a run may cancel
     * another item (its connection closed) or queue more (a flush that made
     * a stream writable again), which runs in this same pass. Bounded: a
     * run only queues what has more to move. */
    for (unsigned runs = 0; w->deferred != NULL && runs < 100000; runs++) {
        tf_defer_t *d = w->deferred;
        w->deferred = d->next;
        d->next = NULL;
        d->queued = false;
        d->run(d);
    }
    if (w->deferred == NULL)
        uv_prepare_stop(h);
}

void tf_worker_defer(tf_worker_t *w, tf_defer_t *d)
{
    if (d->queued)
        return;
    d->queued = true;
    d->next = w->deferred;
    w->deferred = d;
    if (!uv_is_active((uv_handle_t *)&w->defer_prepare))
        uv_prepare_start(&w->defer_prepare, worker_on_prepare);
}

void tf_worker_defer_cancel(tf_worker_t *w, tf_defer_t *d)
{
    if (!d->queued)
        return;
    for (tf_defer_t **p = &w->deferred; *p != NULL; p = &(*p)->next) {
        if (*p == d) {
            *p = d->next;
            break;
        }
    }
    d->queued = false;
    d->next = NULL;
}

/* ---- draining ---------------------------------------------------------- */

static void worker_on_drain_timeout(uv_timer_t *t)
{
    tf_worker_t *w = t->data;
    TF_LOG(TF_LOG_INFO, "worker %u: drain timeout: closing %zu connections", w->index, w->nconns);
    for (tf_conn_t *c = w->conns; c != NULL; c = c->next)
        tf_conn_close_politely(c, TF_LOG_INFO, "shutting down");
}

static void worker_on_stop(uv_async_t *a)
{
    tf_worker_t *w = a->loop->data;
    if (w->stopping)
        return;
    w->stopping = true;
    uv_timer_stop(&w->sample_timer);
    for (size_t i = 0; i < w->nlisten; i++)
        tf_listener_stop(&w->listeners[i]);
    worker_close_redirects(w);
    /* Idle keep-alive connections end now, busy ones after their response. */
    tf_pool_clear(w->pool);
    for (tf_conn_t *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        tf_conn_drain(c);
    }
    if (w->nconns == 0) {
        worker_finish(w);
        return;
    }
    TF_LOG(TF_LOG_INFO, "worker %u: draining %zu connections", w->index, w->nconns);
    uv_timer_start(&w->drain_timer, worker_on_drain_timeout,
                   tf_conf_timeouts(w->gen->conf)->drain_ms, 0);
}

/* ---- connection bookkeeping ------------------------------------------- */

bool tf_worker_admit(tf_worker_t *w)
{
    tf_shared_t *s = w->view.shared;
    uint32_t n = atomic_load_explicit(&s->active, memory_order_relaxed);
    do {
        if (n >= s->max_connections)
            return false;
    } while (!atomic_compare_exchange_weak(&s->active, &n, n + 1));
    return true;
}

static void worker_resume_listeners(tf_worker_t *w)
{
    for (size_t i = 0; i < w->nlisten; i++)
        tf_listener_resume(&w->listeners[i]);
}

static void worker_on_resume(uv_async_t *a)
{
    worker_resume_listeners(a->loop->data);
}

/* A slot is free: this worker's listeners try again at once, and so do any
 * other worker's parked at the limit (woken through their async; their
 * retry timer is only the fallback). */
void tf_worker_release(tf_worker_t *w)
{
    tf_shared_t *s = w->view.shared;
    atomic_fetch_sub(&s->active, 1);
    worker_resume_listeners(w);
    if (atomic_load_explicit(&s->parked, memory_order_relaxed) == 0 || s->workers == NULL)
        return;
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (s->workers[i] != w && s->workers[i] != NULL)
            uv_async_send(&s->workers[i]->resume_async);
    }
}

void tf_worker_conn_added(tf_worker_t *w, tf_conn_t *c)
{
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    tf_metrics_conn_opened(w->metrics);
}

void tf_worker_conn_removed(tf_worker_t *w, tf_conn_t *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    tf_metrics_conn_closed(w->metrics);
    tf_worker_release(w);
    if (w->stopping && w->nconns == 0)
        worker_finish(w);
}
