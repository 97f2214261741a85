/* See health.h. One timer ticks for every target; a target is one
 * (tenant, address) with its settings and next due time, and has at most one
 * probe in flight: a connection, then for HTTP one request and the status
 * line read, then closed. A reconfiguration builds a new target list; a
 * probe of the old list finishes on its own (it holds what it needs) and
 * the kept target waits an interval from it, so a reload never doubles the
 * checks. */
#include "proxy/net/health.h"

#include "common/err.h"
#include "proxy/net/upstream.h"
#include "proxy/obs/obs.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define TICK_MS 100u
#define PROBE_REPLY_MAX 512u

typedef struct probe probe_t;

typedef struct {
    tf_bstate_t *state; /* referenced */
    tf_backend_addr_t addr;
    tf_conf_health_t hc; /* strings point into the checker's configuration */
    const char *host;    /* the Host sent */
    bool tcp;                   /* a connect check (mode tcp) */
    /* tls: true: every check starts with a verified handshake (haproxy's
     * `check-ssl`); the target's own context, NULL for a plain backend. */
    tf_tls_client_ctx_t *tls;
    const char *sni, *verify_name; /* into the configuration */
    uint64_t due_ms;
    probe_t *probe; /* in flight, or NULL */
} target_t;

struct tf_health {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    uv_timer_t tick;
    uv_mutex_t lock;     /* pending, stop */
    tf_conf_t *pending;  /* the next configuration, referenced */
    bool stop;
    tf_backends_t *reg;
    tf_conf_t *conf; /* the configuration targets point into, referenced */
    target_t *targets;
    size_t ntargets;
};

struct probe {
    union {
        uv_tcp_t tcp;   /* an IP backend */
        uv_pipe_t pipe; /* a unix: backend */
        uv_handle_t handle;
    };
    uv_timer_t deadline;
    uv_connect_t connect;
    uv_write_t write;
    tf_health_t *h;
    target_t *target;   /* NULL once the target list was replaced */
    tf_bstate_t *state; /* referenced */
    tf_conf_t *conf;    /* referenced: hc's strings point into it */
    tf_conf_health_t hc;
    bool connect_only; /* a TCP check: connected is healthy */
    tf_tls_session_t *tls; /* a TLS backend's, or NULL */
    bool established;      /* tls: the handshake is over */
    char why[160];         /* a verdict's detail that is not a static string */
    char raw[4096];        /* tls: ciphertext read */
    char req[768];
    char reply[PROBE_REPLY_MAX];
    size_t len;
    unsigned handles;
    bool done;
};

static void on_probe_handle_closed(uv_handle_t *handle)
{
    probe_t *p = handle->data;
    if (--p->handles > 0)
        return;
    tf_backends_release(p->h->reg, p->state);
    tf_conf_unref(p->conf);
    tf_tls_session_free(p->tls);
    free(p);
}

/* Ends the probe with its verdict (once) and closes its handles. */
static void probe_finish(probe_t *p, bool ok, const char *detail)
{
    if (p->done)
        return;
    p->done = true;
    tf_health_t *h = p->h;
    if (p->target != NULL) {
        p->target->probe = NULL;
        p->target->due_ms = uv_now(&h->loop) + p->hc.interval_ms;
    }
    if (!h->stop && tf_bstate_checking(p->state) &&
        tf_bstate_check_result(p->state, ok, detail, p->hc.rise, p->hc.fall)) {
        const char *tenant = tf_bstate_tenant(p->state), *addr = tf_bstate_address(p->state);
        if (ok)
            TF_LOG(TF_LOG_INFO, "tenant '%s': backend %s is healthy again", tenant, addr);
        else
            TF_LOG(TF_LOG_WARN,
                   "tenant '%s': backend %s failed its health checks (%s): skipped until "
                   "they pass",
                   tenant, addr, detail);
    }
    uv_close(&p->handle, on_probe_handle_closed);
    uv_close((uv_handle_t *)&p->deadline, on_probe_handle_closed);
}

/* "HTTP/1.x NNN": the status, or -1. */
static int reply_status(const char *s, size_t len)
{
    if (len < 12 || strncmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ')
        return -1;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        st = st * 10 + (s[i] - '0');
    }
    return st;
}

static void probe_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    probe_t *p = handle->data;
    buf->base = p->reply + p->len;
    buf->len = sizeof p->reply - p->len;
}

/* The status line is in (or the answer ended without one): the verdict. */
static void probe_verdict(probe_t *p, bool ended)
{
    if (!ended && p->len < 12)
        return;
    int st = reply_status(p->reply, p->len);
    char detail[48];
    if (st < 0)
        snprintf(detail, sizeof detail, "no HTTP answer");
    else
        snprintf(detail, sizeof detail, "status %d", st);
    bool ok = st >= p->hc.status_min && st <= p->hc.status_max;
    probe_finish(p, ok, ok ? detail + 7 : detail); /* "200", "status 500" */
}

static void probe_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    probe_t *p = s->data;
    if (n > 0)
        p->len += (size_t)n;
    if (n < 0 || p->len >= 12)
        probe_verdict(p, n < 0);
}

/* ---- TLS backends: the handshake first, then the same request ---------- */

typedef struct {
    uv_write_t req;
    probe_t *p;
    void *buf;
} probe_write_t;

static void probe_on_tls_write(uv_write_t *req, int status)
{
    probe_write_t *w = (probe_write_t *)req;
    probe_t *p = w->p;
    free(w->buf);
    free(w);
    if (status < 0)
        probe_finish(p, false, uv_strerror(status));
}

/* Sends what the session has for the backend. 0 or a code. */
static int probe_tls_flush(probe_t *p)
{
    void *buf = NULL;
    size_t len = 0;
    if (tf_tls_session_take_out(p->tls, &buf, &len) != 0)
        return TF_ENOMEM;
    if (buf == NULL)
        return 0;
    probe_write_t *w = malloc(sizeof *w);
    if (w == NULL) {
        free(buf);
        return TF_ENOMEM;
    }
    *w = (probe_write_t){.p = p, .buf = buf};
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&p->handle, &b, 1, probe_on_tls_write);
    if (rc != 0) {
        free(buf);
        free(w);
    }
    return rc;
}

static void probe_tls_failed(probe_t *p, const char *reason)
{
    snprintf(p->why, sizeof p->why, "TLS handshake failed: %s", reason);
    probe_finish(p, false, p->why);
}

/* False when the probe is over (failed, or a connect check passed). */
static bool probe_tls_handshake(probe_t *p)
{
    int rc = tf_tls_session_handshake(p->tls);
    if (probe_tls_flush(p) != 0 && rc >= 0)
        rc = TF_ENOMEM;
    if (rc < 0) {
        probe_tls_failed(p, tf_tls_session_error(p->tls));
        return false;
    }
    if (rc != TF_TLS_OK)
        return true;
    p->established = true;
    if (p->connect_only) {
        probe_finish(p, true, "TLS handshake");
        return false;
    }
    if (tf_tls_session_write(p->tls, p->req, strlen(p->req)) < 0 || probe_tls_flush(p) != 0) {
        probe_finish(p, false, "cannot send the request");
        return false;
    }
    return true;
}

static void probe_tls_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    probe_t *p = handle->data;
    buf->base = p->raw;
    buf->len = sizeof p->raw;
}

static void probe_tls_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    probe_t *p = s->data;
    if (p->done || n == 0)
        return;
    if (n < 0) {
        if (!p->established)
            probe_tls_failed(p, n == UV_EOF ? "connection closed" : uv_strerror((int)n));
        else
            probe_verdict(p, true);
        return;
    }
    if (tf_tls_session_feed(p->tls, buf->base, (size_t)n) != 0) {
        probe_finish(p, false, "out of memory");
        return;
    }
    if (!p->established && (!probe_tls_handshake(p) || !p->established))
        return;
    int rc = TF_TLS_OK;
    size_t got = 1;
    while (rc == TF_TLS_OK && got > 0 && p->len < sizeof p->reply) {
        rc = tf_tls_session_recv(p->tls, p->reply + p->len, sizeof p->reply - p->len, &got);
        p->len += got;
    }
    probe_verdict(p, rc != TF_TLS_OK && rc != TF_TLS_WANT_READ);
}

static void probe_tls_start(probe_t *p)
{
    int rc = uv_read_start((uv_stream_t *)&p->handle, probe_tls_alloc, probe_tls_on_read);
    if (rc != 0) {
        probe_finish(p, false, uv_strerror(rc));
        return;
    }
    probe_tls_handshake(p);
}

static void probe_on_write(uv_write_t *req, int status)
{
    probe_t *p = req->data;
    if (status < 0)
        probe_finish(p, false, uv_strerror(status));
}

static void probe_on_connect(uv_connect_t *req, int status)
{
    probe_t *p = req->data;
    if (p->done)
        return;
    if (status < 0) {
        probe_finish(p, false, status == UV_ECONNREFUSED ? "connect refused" : uv_strerror(status));
        return;
    }
    if (p->tls != NULL) {
        probe_tls_start(p);
        return;
    }
    if (p->connect_only) {
        probe_finish(p, true, "connected");
        return;
    }
    uv_buf_t b = uv_buf_init(p->req, (unsigned)strlen(p->req));
    p->write.data = p;
    int rc = uv_write(&p->write, (uv_stream_t *)&p->handle, &b, 1, probe_on_write);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&p->handle, probe_alloc, probe_on_read);
    if (rc != 0)
        probe_finish(p, false, uv_strerror(rc));
}

static void probe_on_deadline(uv_timer_t *t)
{
    probe_finish(t->data, false, "timeout");
}

static void probe_start(tf_health_t *h, target_t *t)
{
    probe_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return; /* tried again at the next tick */
    snprintf(p->req, sizeof p->req,
             "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlsfront-health-check\r\n"
             "Connection: close\r\n\r\n",
             t->hc.path, t->host);
    p->h = h;
    p->target = t;
    p->hc = t->hc;
    p->connect_only = t->tcp;
    p->conf = tf_conf_ref(h->conf);
    p->state = tf_backends_acquire(h->reg, tf_bstate_tenant(t->state),
                                   tf_bstate_address(t->state));
    bool unix_path = t->addr.sa.sa_family == AF_UNIX;
    if (unix_path)
        uv_pipe_init(&h->loop, &p->pipe, 0);
    else
        uv_tcp_init(&h->loop, &p->tcp);
    uv_timer_init(&h->loop, &p->deadline);
    p->handle.data = p->deadline.data = p->connect.data = p;
    p->handles = 2;
    t->probe = p;
    /* Made now: the target (and its context) may be replaced meanwhile. */
    if (t->tls != NULL)
        p->tls = tf_tls_client_session_new(t->tls, t->sni, t->verify_name);
    if (p->state == NULL || (t->tls != NULL && p->tls == NULL)) {
        probe_finish(p, false, "out of memory");
        return;
    }
    uv_timer_start(&p->deadline, probe_on_deadline, t->hc.timeout_ms, 0);
    int rc = 0;
    if (unix_path)
        uv_pipe_connect(&p->connect, &p->pipe, t->addr.un.sun_path, probe_on_connect);
    else
        rc = uv_tcp_connect(&p->connect, &p->tcp, &t->addr.sa, probe_on_connect);
    if (rc != 0)
        probe_finish(p, false, uv_strerror(rc));
}

static void on_tick(uv_timer_t *timer)
{
    tf_health_t *h = timer->data;
    uint64_t now = uv_now(&h->loop);
    for (size_t i = 0; i < h->ntargets; i++) {
        target_t *t = &h->targets[i];
        bool asked = tf_bstate_take_check_now(t->state);
        if (t->probe != NULL || !tf_bstate_checking(t->state))
            continue;
        if (asked || t->due_ms <= now)
            probe_start(h, t);
    }
}

/* ---- configuration (the checker's thread) -------------------------------- */

static const char *health_host(const tf_conf_tenant_t *ct, const tf_conf_health_t *hc,
                               const char *address)
{
    if (hc->host != NULL)
        return hc->host;
    for (size_t i = 0; i < ct->hosts.count; i++) {
        if (strchr(ct->hosts.items[i], '*') == NULL)
            return ct->hosts.items[i];
    }
    /* "unix:/run/app.sock" is no Host value. */
    return strncmp(address, "unix:", 5) == 0 ? "localhost" : address;
}

static target_t *find_target(target_t *ts, size_t n, const tf_bstate_t *s)
{
    for (size_t i = 0; i < n; i++) {
        if (ts[i].state == s)
            return &ts[i];
    }
    return NULL;
}

static void target_dispose(tf_health_t *h, target_t *t)
{
    tf_tls_client_ctx_free(t->tls); /* probes in flight hold their own reference */
    t->tls = NULL;
    tf_backends_release(h->reg, t->state);
}

/* A TLS backend's checks verify as its connections do (upstream.c). */
static bool target_tls(target_t *t, const tf_conf_tenant_t *ct, const tf_conf_backend_t *cb)
{
    if (!cb->tls)
        return true;
    char err[1024];
    tf_tls_client_opts_t o = {.verify = cb->verify != TF_CONF_VERIFY_OFF, .ca_file = cb->ca_file};
    if (tf_tls_client_ctx_new(&o, &t->tls, err, sizeof err) != 0) {
        TF_LOG(TF_LOG_WARN, "tenant '%s': backend %s: %s: not health-checked", ct->name,
               cb->addr.text, err);
        return false;
    }
    t->sni = cb->sni;
    t->verify_name = tf_backend_verify_name(cb);
    return true;
}

static void add_target(tf_health_t *h, target_t *ts, size_t *n, const tf_conf_t *conf,
                       const tf_conf_tenant_t *ct, const tf_conf_health_t *hc,
                       const tf_conf_backend_t *cb)
{
    const tf_conf_addr_t *a = &cb->addr;
    tf_bstate_t *s = tf_backends_acquire(h->reg, ct->name, a->text);
    if (s == NULL)
        return;
    if (find_target(ts, *n, s) != NULL) {
        /* Named by an earlier route: its settings apply. */
        tf_backends_release(h->reg, s);
        return;
    }
    target_t *t = &ts[*n];
    *t = (target_t){
        .state = s, .hc = *hc, .tcp = ct->mode == TF_CONF_MODE_TCP};
    const char *why = NULL;
    if (tf_backend_addr_resolve(a, &t->addr, &why) != 0) {
        TF_LOG(TF_LOG_WARN, "tenant '%s': backend %s: cannot resolve: not health-checked",
               ct->name, a->text);
        tf_backends_release(h->reg, s);
        return;
    }
    if (!target_tls(t, ct, cb)) {
        tf_backends_release(h->reg, s);
        return;
    }
    t->host = health_host(ct, hc, a->text);
    (*n)++;
}

static size_t count_addresses(const tf_conf_t *conf)
{
    size_t n = 0;
    for (size_t i = 0; i < tf_conf_tenant_count(conf); i++) {
        const tf_conf_tenant_t *ct = tf_conf_tenant(conf, i);
        for (size_t r = 0; r < ct->nroutes; r++)
            n += ct->routes[r].backends.count;
    }
    return n;
}

static void apply(tf_health_t *h, tf_conf_t *conf)
{
    size_t cap = count_addresses(conf);
    target_t *ts = calloc(cap > 0 ? cap : 1, sizeof *ts);
    if (ts == NULL) {
        TF_LOG(TF_LOG_WARN, "health checks: out of memory: the previous ones go on");
        tf_conf_unref(conf);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < tf_conf_tenant_count(conf); i++) {
        const tf_conf_tenant_t *ct = tf_conf_tenant(conf, i);
        for (size_t r = 0; r < ct->nroutes; r++) {
            const tf_conf_route_t *cr = &ct->routes[r];
            for (size_t b = 0; cr->health.enabled && b < cr->backends.count; b++)
                add_target(h, ts, &n, conf, ct, &cr->health, &cr->backends.items[b]);
        }
    }
    uint64_t now = uv_now(&h->loop);
    for (size_t i = 0; i < n; i++) {
        target_t *old = find_target(h->targets, h->ntargets, ts[i].state);
        tf_bstate_set_checked(ts[i].state, true);
        /* Kept: its schedule goes on (a probe in flight counts as done now). */
        ts[i].due_ms = old == NULL ? now : old->probe != NULL ? now + ts[i].hc.interval_ms
                                                              : old->due_ms;
    }
    for (size_t i = 0; i < h->ntargets; i++) {
        target_t *old = &h->targets[i];
        if (old->probe != NULL)
            old->probe->target = NULL;
        if (find_target(ts, n, old->state) == NULL)
            tf_bstate_set_checked(old->state, false);
        target_dispose(h, old);
    }
    free(h->targets);
    tf_conf_unref(h->conf);
    h->targets = ts;
    h->ntargets = n;
    h->conf = conf;
    on_tick(&h->tick);
}

static void close_all(tf_health_t *h)
{
    for (size_t i = 0; i < h->ntargets; i++) {
        if (h->targets[i].probe != NULL)
            probe_finish(h->targets[i].probe, true, "stopping");
    }
    uv_close((uv_handle_t *)&h->tick, NULL);
    uv_close((uv_handle_t *)&h->wake, NULL);
}

static void on_wake(uv_async_t *a)
{
    tf_health_t *h = a->data;
    uv_mutex_lock(&h->lock);
    tf_conf_t *conf = h->pending;
    h->pending = NULL;
    bool stop = h->stop;
    uv_mutex_unlock(&h->lock);
    if (stop) {
        tf_conf_unref(conf);
        close_all(h);
        return;
    }
    if (conf != NULL)
        apply(h, conf);
}

static void health_main(void *arg)
{
    tf_health_t *h = arg;
    uv_run(&h->loop, UV_RUN_DEFAULT);
    /* TLS backends' checks ran sessions here (a spare queue buffer). */
    tf_tls_thread_cleanup();
}

int tf_health_new(tf_backends_t *reg, tf_health_t **out)
{
    tf_health_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return TF_ENOMEM;
    h->reg = reg;
    int rc = uv_loop_init(&h->loop);
    if (rc != 0) {
        free(h);
        return rc;
    }
    if (uv_mutex_init(&h->lock) != 0)
        abort(); /* start-up time: only fails without memory */
    uv_async_init(&h->loop, &h->wake, on_wake);
    h->wake.data = h;
    uv_timer_init(&h->loop, &h->tick);
    h->tick.data = h;
    uv_timer_start(&h->tick, on_tick, TICK_MS, TICK_MS);
    rc = uv_thread_create(&h->thread, health_main, h);
    if (rc != 0) {
        uv_close((uv_handle_t *)&h->tick, NULL);
        uv_close((uv_handle_t *)&h->wake, NULL);
        uv_run(&h->loop, UV_RUN_DEFAULT);
        uv_loop_close(&h->loop);
        uv_mutex_destroy(&h->lock);
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void tf_health_configure(tf_health_t *h, tf_conf_t *conf)
{
    if (h == NULL)
        return;
    tf_conf_ref(conf);
    uv_mutex_lock(&h->lock);
    tf_conf_t *was = h->pending;
    h->pending = conf;
    uv_mutex_unlock(&h->lock);
    tf_conf_unref(was);
    uv_async_send(&h->wake);
}

void tf_health_free(tf_health_t *h)
{
    if (h == NULL)
        return;
    uv_mutex_lock(&h->lock);
    h->stop = true;
    uv_mutex_unlock(&h->lock);
    uv_async_send(&h->wake);
    uv_thread_join(&h->thread);
    for (size_t i = 0; i < h->ntargets; i++) {
        tf_bstate_set_checked(h->targets[i].state, false);
        target_dispose(h, &h->targets[i]);
    }
    free(h->targets);
    tf_conf_unref(h->conf);
    tf_conf_unref(h->pending);
    uv_loop_close(&h->loop);
    uv_mutex_destroy(&h->lock);
    free(h);
}
