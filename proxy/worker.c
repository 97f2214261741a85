/* See worker.h. A worker's loop runs until every handle is closed: the
 * listeners, the stop signal, the drain timer and the connections. Stopping
 * closes the listeners at once, lets connections finish, closes what is left
 * when timeouts.drain expires, and closes its own handles once the last
 * connection is gone. */
#include "proxy/worker.h"

#include "common/err.h"
#include "proxy/conn.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/health.h"
#include "proxy/pool.h"
#include "proxy/redirect.h"
#include "proxy/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void worker_on_stop(uv_async_t *a);

static void worker_finish(tf_worker_t *w)
{
    if (!uv_is_closing((uv_handle_t *)&w->stop_async))
        uv_close((uv_handle_t *)&w->stop_async, NULL);
    if (!uv_is_closing((uv_handle_t *)&w->drain_timer))
        uv_close((uv_handle_t *)&w->drain_timer, NULL);
}

static void worker_dispose(tf_worker_t *w)
{
    /* Runs the loop until the handles closed by stop and finish are gone. */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0)
        TF_LOG(TF_LOG_WARN, "worker %u: loop closed with handles open: %s", w->index,
               uv_strerror(rc));
    tf_tls_ctx_free(w->tls);
    tf_upstream_free(w->upstream);
    tf_pool_free(w->pool);
    free(w->listeners);
    free(w->redirects);
    free(w);
}

static int worker_listen(tf_worker_t *w, char *err, size_t errlen)
{
    const tf_server_t *s = w->server;
    const tf_conf_addr_list_t *https = tf_conf_listen_https(s->conf);
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
    const tf_server_t *s = w->server;
    if (s->nhttp == 0)
        return 0;
    const tf_conf_addr_list_t *http = tf_conf_listen_http(s->conf);
    w->redirects = calloc(s->nhttp, sizeof *w->redirects);
    if (w->redirects == NULL)
        return TF_ENOMEM;
    for (size_t i = 0; i < s->nhttp; i++) {
        int fd = dup(s->http_fds[w->index * s->nhttp + i]);
        int rc = fd >= 0 ? tf_redirect_start(&w->loop, fd, s->conf, &w->redirects[i]) : UV_EMFILE;
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot listen: %s", http->items[i].text, tf_strerror(rc));
            return rc;
        }
        w->nredirects = i + 1;
        tf_redirect_set_access_log(w->redirects[i], s->access);
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

static int worker_tls(tf_worker_t *w, char *err, size_t errlen)
{
    const tf_conf_tls_t *tls = tf_conf_tls(w->server->conf);
    tf_tls_ctx_opts_t opts = {
        .tls13_only = tls->min_version == TF_CONF_TLS_1_3,
        .reject_unknown_sni = tls->unknown_sni == TF_CONF_SNI_REJECT,
        .tickets = w->server->tickets,
    };
    return tf_tls_ctx_new(&opts, w->server->snap, &w->tls, err, errlen);
}

int tf_worker_new(tf_server_t *server, unsigned index, tf_worker_t **out, char *err, size_t errlen)
{
    tf_worker_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return TF_ENOMEM;
    w->server = server;
    w->index = index;
    int rc = uv_loop_init(&w->loop);
    if (rc != 0) {
        free(w);
        snprintf(err, errlen, "cannot create an event loop: %s", uv_strerror(rc));
        return rc;
    }
    w->loop.data = w;
    uv_async_init(&w->loop, &w->stop_async, worker_on_stop);
    uv_timer_init(&w->loop, &w->drain_timer);
    w->pool = tf_pool_new(&w->loop, tf_conf_timeouts(server->conf)->idle_ms);
    rc = w->pool != NULL ? worker_tls(w, err, errlen) : TF_ENOMEM;
    if (rc == 0)
        rc = tf_upstream_new(server->conf, &w->upstream, err, errlen);
    if (rc == 0 && (rc = tf_health_start(&w->loop, w->upstream, server->conf, &w->health)) != 0)
        snprintf(err, errlen, "cannot start health checks: %s", tf_strerror(rc));
    if (rc == 0)
        rc = worker_listen(w, err, errlen);
    if (rc == 0)
        rc = worker_redirects(w, err, errlen);
    if (rc != 0) {
        for (size_t i = 0; i < w->nlisten; i++)
            tf_listener_stop(&w->listeners[i]);
        worker_close_redirects(w);
        tf_health_stop(w->health);
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
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

int tf_worker_start(tf_worker_t *w)
{
    return uv_thread_create(&w->thread, worker_main, w);
}

void tf_worker_stop(tf_worker_t *w)
{
    uv_async_send(&w->stop_async);
}

void tf_worker_join_free(tf_worker_t *w)
{
    uv_thread_join(&w->thread);
    worker_dispose(w);
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
    for (size_t i = 0; i < w->nlisten; i++)
        tf_listener_stop(&w->listeners[i]);
    tf_health_stop(w->health);
    w->health = NULL;
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
    w->drain_timer.data = w;
    uv_timer_start(&w->drain_timer, worker_on_drain_timeout,
                   tf_conf_timeouts(w->server->conf)->drain_ms, 0);
}

/* ---- connection bookkeeping ------------------------------------------- */

bool tf_worker_admit(tf_worker_t *w)
{
    tf_server_t *s = w->server;
    uint32_t n = atomic_load_explicit(&s->active, memory_order_relaxed);
    do {
        if (n >= s->max_connections)
            return false;
    } while (!atomic_compare_exchange_weak(&s->active, &n, n + 1));
    return true;
}

void tf_worker_release(tf_worker_t *w)
{
    atomic_fetch_sub(&w->server->active, 1);
    for (size_t i = 0; i < w->nlisten; i++)
        tf_listener_resume(&w->listeners[i]);
}

void tf_worker_conn_added(tf_worker_t *w, tf_conn_t *c)
{
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
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
    tf_worker_release(w);
    if (w->stopping && w->nconns == 0)
        worker_finish(w);
}
