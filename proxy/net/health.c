/* See health.h. One timer ticks for the whole table; every backend is a
 * target with its next due time, and a target has at most one probe in
 * flight: a probe is a connection, one request, the status line read, then
 * closed. */
#include "proxy/net/health.h"

#include "common/err.h"
#include "proxy/obs/obs.h"
#include "common/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 250u
#define PROBE_REPLY_MAX 512u

typedef struct probe probe_t;

typedef struct {
    uint32_t tenant, backend;
    uint64_t due_ms;
    probe_t *probe; /* in flight, or NULL */
} target_t;

struct tf_health {
    uv_loop_t *loop;
    tf_upstream_t *up;
    const tf_conf_t *conf;
    uv_timer_t tick;
    target_t *targets;
    size_t ntargets;
    unsigned open; /* handles not yet closed: the tick and the probes' */
    bool stopping;
};

struct probe {
    uv_tcp_t tcp;
    uv_timer_t deadline;
    uv_connect_t connect;
    uv_write_t write;
    tf_health_t *h;
    target_t *target;
    char req[512];
    char reply[PROBE_REPLY_MAX];
    size_t len;
    unsigned handles;
    bool done;
};

static void health_release(tf_health_t *h)
{
    if (--h->open > 0)
        return;
    free(h->targets);
    free(h);
}

static void on_tick_closed(uv_handle_t *handle)
{
    health_release(handle->data);
}

static void on_probe_handle_closed(uv_handle_t *handle)
{
    probe_t *p = handle->data;
    if (--p->handles > 0)
        return;
    tf_health_t *h = p->h;
    free(p);
    health_release(h);
}

static const tf_conf_health_t *health_of(const tf_health_t *h, uint32_t tenant)
{
    return &tf_upstream_tenant_conf(h->up, tenant)->health;
}

/* Ends the probe with its verdict (once) and closes its handles. */
static void probe_finish(probe_t *p, bool healthy, const char *why)
{
    if (p->done)
        return;
    p->done = true;
    tf_health_t *h = p->h;
    target_t *t = p->target;
    t->probe = NULL;
    t->due_ms = uv_now(h->loop) + health_of(h, t->tenant)->interval_ms;
    if (!h->stopping && tf_upstream_set_healthy(h->up, t->tenant, t->backend, healthy)) {
        const tf_backend_t *b = tf_upstream_backend(h->up, t->tenant, t->backend);
        const char *tenant = tf_upstream_tenant_name(h->up, t->tenant);
        if (healthy)
            TF_LOG(TF_LOG_INFO, "tenant '%s': backend %s is healthy again", tenant, b->text);
        else
            TF_LOG(TF_LOG_WARN,
                   "tenant '%s': backend %s failed its health check (%s): skipped "
                   "until a check passes",
                   tenant, b->text, why);
    }
    uv_close((uv_handle_t *)&p->tcp, on_probe_handle_closed);
    uv_close((uv_handle_t *)&p->deadline, on_probe_handle_closed);
}

/* "HTTP/1.x NNN": 2xx and 3xx are healthy. */
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
    probe_t *p = handle->data;
    buf->base = p->reply + p->len;
    buf->len = sizeof p->reply - p->len;
}

static void probe_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    probe_t *p = s->data;
    if (n > 0)
        p->len += (size_t)n;
    if (n < 0 || p->len >= 12) {
        int st = reply_status(p->reply, p->len);
        char why[48];
        snprintf(why, sizeof why, st < 0 ? "no HTTP answer" : "status %d", st);
        probe_finish(p, st >= 200 && st < 400, why);
    }
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
        probe_finish(p, false, uv_strerror(status));
        return;
    }
    uv_buf_t b = uv_buf_init(p->req, (unsigned)strlen(p->req));
    p->write.data = p;
    int rc = uv_write(&p->write, (uv_stream_t *)&p->tcp, &b, 1, probe_on_write);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&p->tcp, probe_alloc, probe_on_read);
    if (rc != 0)
        probe_finish(p, false, uv_strerror(rc));
}

static void probe_on_deadline(uv_timer_t *t)
{
    probe_finish(t->data, false, "timed out");
}

static void probe_start(tf_health_t *h, target_t *t)
{
    probe_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return; /* tried again at the next tick */
    const tf_backend_t *b = tf_upstream_backend(h->up, t->tenant, t->backend);
    snprintf(p->req, sizeof p->req,
             "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlsfront-health-check\r\n"
             "Connection: close\r\n\r\n",
             health_of(h, t->tenant)->path, b->text);
    p->h = h;
    p->target = t;
    uv_tcp_init(h->loop, &p->tcp);
    uv_timer_init(h->loop, &p->deadline);
    p->tcp.data = p->deadline.data = p->connect.data = p;
    p->handles = 2;
    h->open++;
    t->probe = p;
    uv_timer_start(&p->deadline, probe_on_deadline, tf_conf_timeouts(h->conf)->connect_ms, 0);
    int rc = uv_tcp_connect(&p->connect, &p->tcp, &b->addr.sa, probe_on_connect);
    if (rc != 0)
        probe_finish(p, false, uv_strerror(rc));
}

static void on_tick(uv_timer_t *timer)
{
    tf_health_t *h = timer->data;
    uint64_t now = uv_now(h->loop);
    for (size_t i = 0; i < h->ntargets; i++) {
        target_t *t = &h->targets[i];
        if (t->probe == NULL && t->due_ms <= now)
            probe_start(h, t);
    }
}

static size_t count_targets(const tf_upstream_t *u)
{
    size_t n = 0;
    for (uint32_t t = 0; t < tf_upstream_tenant_count(u); t++) {
        if (tf_upstream_tenant_conf(u, t)->health.enabled)
            n += tf_upstream_backend_count(u, t);
    }
    return n;
}

int tf_health_start(uv_loop_t *loop, tf_upstream_t *u, const tf_conf_t *conf, tf_health_t **out)
{
    *out = NULL;
    size_t n = count_targets(u);
    if (n == 0)
        return 0;
    tf_health_t *h = calloc(1, sizeof *h);
    target_t *targets = calloc(n, sizeof *targets);
    if (h == NULL || targets == NULL) {
        free(h);
        free(targets);
        return TF_ENOMEM;
    }
    h->loop = loop;
    h->up = u;
    h->conf = conf;
    h->targets = targets;
    for (uint32_t t = 0; t < tf_upstream_tenant_count(u); t++) {
        if (!tf_upstream_tenant_conf(u, t)->health.enabled)
            continue;
        for (uint32_t b = 0; b < tf_upstream_backend_count(u, t); b++)
            h->targets[h->ntargets++] = (target_t){.tenant = t, .backend = b};
    }
    uv_timer_init(loop, &h->tick);
    h->tick.data = h;
    h->open = 1;
    uv_timer_start(&h->tick, on_tick, 0, TICK_MS);
    *out = h;
    return 0;
}

void tf_health_stop(tf_health_t *h)
{
    if (h == NULL || h->stopping)
        return;
    h->stopping = true;
    for (size_t i = 0; i < h->ntargets; i++) {
        if (h->targets[i].probe != NULL)
            probe_finish(h->targets[i].probe, true, "stopping");
    }
    uv_close((uv_handle_t *)&h->tick, on_tick_closed);
}
