/* See metrics.h. Label values are escaped per the exposition format
 * (backslash, double quote, newline). */
#include "proxy/obs/metrics.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RELAXED memory_order_relaxed

/* tenant_row() masks a hash with the capacity. */
_Static_assert((TF_METRICS_TENANTS & (TF_METRICS_TENANTS - 1)) == 0,
               "TF_METRICS_TENANTS must be a power of two");

/* Upper bounds of the duration buckets, in milliseconds and as printed. */
static const uint64_t bucket_ms[TF_METRICS_BUCKETS] = {5,   10,   25,   50,   100,  250,
                                                       500, 1000, 2500, 5000, 10000};
static const char *const bucket_le[TF_METRICS_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"};

static const char *const hs_slugs[TF_MHS_COUNT] = {
#define TF_MHS_SLUG(code, slug) slug,
    TF_METRICS_HS_REASONS(TF_MHS_SLUG)
#undef TF_MHS_SLUG
};

/* tlsfront_http2_goaway_total's reason label, by tf_metrics_h2_goaway_t. */
static const char *const goaway_slugs[TF_MH2_GOAWAY_COUNT] = {
    [TF_MH2_GOAWAY_DRAIN] = "drain",
    [TF_MH2_GOAWAY_IDLE] = "idle",
    [TF_MH2_GOAWAY_CALM] = "calm",
    [TF_MH2_GOAWAY_PROTOCOL] = "protocol",
};

/* tlsfront_requests_protocol_total's protocol label, by requests_by_protocol's index. */
static const char *const protocol_labels[2] = {"HTTP/1.1", "HTTP/2"};

/* The one writer adds: a relaxed load and store, no locked instruction. */
static inline void bump(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, RELAXED) + n, RELAXED);
}

static inline uint64_t get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit((_Atomic uint64_t *)c, RELAXED);
}

tf_metrics_worker_t *tf_metrics_worker_new(void)
{
    tf_metrics_worker_t *m = aligned_alloc(64, (sizeof *m + 63) / 64 * 64);
    if (m == NULL) {
        fputs("tlsfront: out of memory\n", stderr);
        abort();
    }
    memset(m, 0, sizeof *m);
    return m;
}

void tf_metrics_worker_free(tf_metrics_worker_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < TF_METRICS_TENANTS; i++)
        free((char *)atomic_load_explicit(&m->tenants[i].name, RELAXED));
    free(m);
}

void tf_metrics_conn_opened(tf_metrics_worker_t *m)
{
    bump(&m->conns_total, 1);
    bump(&m->conns_active, 1);
}

void tf_metrics_conn_closed(tf_metrics_worker_t *m)
{
    atomic_store_explicit(&m->conns_active, get(&m->conns_active) - 1, RELAXED);
}

void tf_metrics_handshake(tf_metrics_worker_t *m, bool ok, const char *reason)
{
    if (ok) {
        bump(&m->handshakes_ok, 1);
        return;
    }
    size_t i = 0;
    while (i < TF_MHS_OTHER && (reason == NULL || strcmp(reason, hs_slugs[i]) != 0))
        i++;
    bump(&m->handshake_failures[i], 1);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The worker's row for a tenant name: found by open addressing, created on
 * first use with a copy of the name (published with release order so the
 * admin thread reads a complete string). */
static tf_metrics_tenant_t *tenant_row(tf_metrics_worker_t *m, const char *name)
{
    size_t mask = TF_METRICS_TENANTS - 1;
    size_t i = hash_str(name) & mask;
    for (size_t k = 0; k < TF_METRICS_TENANTS; k++, i = (i + 1) & mask) {
        const char *have = atomic_load_explicit(&m->tenants[i].name, RELAXED);
        if (have != NULL && strcmp(have, name) == 0)
            return &m->tenants[i];
        if (have == NULL) {
            char *copy = strdup(name);
            if (copy == NULL)
                return &m->other;
            atomic_store_explicit(&m->tenants[i].name, copy, memory_order_release);
            return &m->tenants[i];
        }
    }
    return &m->other;
}

void tf_metrics_request(tf_metrics_worker_t *m, const char *tenant, unsigned status,
                        uint64_t duration_ms)
{
    tf_metrics_tenant_t *row = tenant_row(m, tenant != NULL ? tenant : "-");
    unsigned cls = status >= 100 && status < 600 ? status / 100 - 1 : 4;
    bump(&row->classes[cls], 1);
    for (size_t i = 0; i < TF_METRICS_BUCKETS; i++) {
        if (duration_ms <= bucket_ms[i])
            bump(&m->duration_buckets[i], 1);
    }
    bump(&m->duration_count, 1);
    bump(&m->duration_sum_us, duration_ms * 1000);
}

void tf_metrics_denied(tf_metrics_worker_t *m, const char *tenant, unsigned status)
{
    if (status != 403 && status != 429)
        return;
    tf_metrics_tenant_t *row = tenant_row(m, tenant != NULL ? tenant : "-");
    bump(&row->denied[status == 429], 1);
}

void tf_metrics_h2_connection(tf_metrics_worker_t *m)
{
    bump(&m->h2_conns_total, 1);
}

void tf_metrics_h2_stream(tf_metrics_worker_t *m)
{
    bump(&m->h2_streams_total, 1);
}

void tf_metrics_h2_goaway(tf_metrics_worker_t *m, tf_metrics_h2_goaway_t why)
{
    /* An out-of-range reason is a caller's bug: count it as a protocol
     * GOAWAY rather than write past the array. */
    if ((unsigned)why >= TF_MH2_GOAWAY_COUNT)
        why = TF_MH2_GOAWAY_PROTOCOL;
    bump(&m->h2_goaway[why], 1);
}

void tf_metrics_request_protocol(tf_metrics_worker_t *m, bool http2)
{
    bump(&m->requests_by_protocol[http2], 1);
}

/* ---- rendering --------------------------------------------------------- */

static void label(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out);
        if (*s == '\n') {
            fputs("\\n", out);
            continue;
        }
        fputc(*s, out);
    }
    fputc('"', out);
}

static void head(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t sum(tf_metrics_worker_t *const *ws, unsigned n, size_t offset)
{
    uint64_t s = 0;
    for (unsigned i = 0; i < n; i++)
        s += get((const _Atomic uint64_t *)((const char *)ws[i] + offset));
    return s;
}

#define FIELD(f) offsetof(tf_metrics_worker_t, f)

static void render_conns(FILE *out, tf_metrics_worker_t *const *ws, unsigned n)
{
    head(out, "tlsfront_connections_active", "gauge", "Client connections open now.");
    fprintf(out, "tlsfront_connections_active %llu\n",
            (unsigned long long)sum(ws, n, FIELD(conns_active)));
    head(out, "tlsfront_connections_total", "counter", "Client connections accepted.");
    fprintf(out, "tlsfront_connections_total %llu\n",
            (unsigned long long)sum(ws, n, FIELD(conns_total)));
    head(out, "tlsfront_handshakes_total", "counter", "TLS handshakes completed.");
    fprintf(out, "tlsfront_handshakes_total{result=\"ok\"} %llu\n",
            (unsigned long long)sum(ws, n, FIELD(handshakes_ok)));
    head(out, "tlsfront_handshake_failures_total", "counter", "TLS handshakes failed, by reason.");
    for (size_t r = 0; r < TF_MHS_COUNT; r++)
        fprintf(out, "tlsfront_handshake_failures_total{reason=\"%s\"} %llu\n", hs_slugs[r],
                (unsigned long long)sum(ws, n,
                                        FIELD(handshake_failures) + r * sizeof(_Atomic uint64_t)));
}

/* Tenant rows are per worker: the same name may sit in different slots.
 * The sum of one counter (at byte offset OFF in the row) over the rows of
 * NAME. */
static uint64_t tenant_sum(tf_metrics_worker_t *const *ws, unsigned n, const char *name,
                           size_t off)
{
    uint64_t s = 0;
    for (unsigned i = 0; i < n; i++) {
        for (size_t k = 0; k < TF_METRICS_TENANTS; k++) {
            const char *have = atomic_load_explicit(&ws[i]->tenants[k].name, memory_order_acquire);
            if (have != NULL && strcmp(have, name) == 0)
                s += get((_Atomic uint64_t *)((char *)&ws[i]->tenants[k] + off));
        }
    }
    return s;
}

#define TENANT_FIELD(f, i)                                                                        \
    (offsetof(tf_metrics_tenant_t, f) + (size_t)(i) * sizeof(_Atomic uint64_t))

static bool seen_before(tf_metrics_worker_t *const *ws, unsigned wi, size_t slot, const char *name)
{
    for (unsigned i = 0; i <= wi; i++) {
        for (size_t k = 0; k < (i == wi ? slot : TF_METRICS_TENANTS); k++) {
            const char *have = atomic_load_explicit(&ws[i]->tenants[k].name, memory_order_acquire);
            if (have != NULL && strcmp(have, name) == 0)
                return true;
        }
    }
    return false;
}

/* The overflow row, once some worker's table was full for a request: a
 * series that appears late is a counter Prometheus handles, and a table
 * that never fills adds no lines. */
static void render_other(FILE *out, tf_metrics_worker_t *const *ws, unsigned n)
{
    uint64_t counts[5] = {0}, all = 0;
    for (unsigned c = 0; c < 5; c++) {
        for (unsigned i = 0; i < n; i++)
            counts[c] += get(&ws[i]->other.classes[c]);
        all += counts[c];
    }
    if (all == 0)
        return;
    for (unsigned c = 0; c < 5; c++)
        fprintf(out, "tlsfront_requests_total{tenant=\"%s\",class=\"%uxx\"} %llu\n",
                TF_METRICS_OTHER_TENANT, c + 1, (unsigned long long)counts[c]);
}

/* 403 and 429 by tenant (SPEC §11), for every tenant that has had a
 * request; the overflow row's are not told apart. */
static void render_denied(FILE *out, tf_metrics_worker_t *const *ws, unsigned n)
{
    static const unsigned statuses[2] = {403, 429};
    head(out, "tlsfront_requests_denied_total", "counter",
         "Requests refused by a tenant's policy: 403 (allow list), 429 (per-client rate).");
    for (unsigned i = 0; i < n; i++) {
        for (size_t k = 0; k < TF_METRICS_TENANTS; k++) {
            const char *name = atomic_load_explicit(&ws[i]->tenants[k].name, memory_order_acquire);
            if (name == NULL || seen_before(ws, i, k, name))
                continue;
            for (unsigned d = 0; d < 2; d++) {
                fputs("tlsfront_requests_denied_total{tenant=", out);
                label(out, name);
                fprintf(out, ",status=\"%u\"} %llu\n", statuses[d],
                        (unsigned long long)tenant_sum(ws, n, name, TENANT_FIELD(denied, d)));
            }
        }
    }
}

static void render_requests(FILE *out, tf_metrics_worker_t *const *ws, unsigned n)
{
    head(out, "tlsfront_requests_total", "counter", "HTTP requests answered, by tenant and class.");
    for (unsigned i = 0; i < n; i++) {
        for (size_t k = 0; k < TF_METRICS_TENANTS; k++) {
            const char *name = atomic_load_explicit(&ws[i]->tenants[k].name, memory_order_acquire);
            if (name == NULL || seen_before(ws, i, k, name))
                continue;
            for (unsigned c = 0; c < 5; c++) {
                fputs("tlsfront_requests_total{tenant=", out);
                label(out, name);
                fprintf(out, ",class=\"%uxx\"} %llu\n", c + 1,
                        (unsigned long long)tenant_sum(ws, n, name, TENANT_FIELD(classes, c)));
            }
        }
    }
    render_other(out, ws, n);
    render_denied(out, ws, n);
    head(out, "tlsfront_request_duration_seconds", "histogram",
         "Time from a request's first byte to its response's last.");
    for (size_t b = 0; b < TF_METRICS_BUCKETS; b++)
        fprintf(
            out, "tlsfront_request_duration_seconds_bucket{le=\"%s\"} %llu\n", bucket_le[b],
            (unsigned long long)sum(ws, n, FIELD(duration_buckets) + b * sizeof(_Atomic uint64_t)));
    uint64_t count = sum(ws, n, FIELD(duration_count));
    fprintf(out, "tlsfront_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
            (unsigned long long)count);
    fprintf(out, "tlsfront_request_duration_seconds_sum %.6f\n",
            (double)sum(ws, n, FIELD(duration_sum_us)) / 1e6);
    fprintf(out, "tlsfront_request_duration_seconds_count %llu\n", (unsigned long long)count);
}

/* HTTP/2 (SPEC §12) and requests by protocol: every label value is always
 * present, 0 included, so a rate() has a series before the first event. */
static void render_http2(FILE *out, tf_metrics_worker_t *const *ws, unsigned n)
{
    head(out, "tlsfront_http2_connections_total", "counter",
         "Client connections that negotiated HTTP/2.");
    fprintf(out, "tlsfront_http2_connections_total %llu\n",
            (unsigned long long)sum(ws, n, FIELD(h2_conns_total)));
    head(out, "tlsfront_http2_streams_total", "counter", "HTTP/2 streams that carried a request.");
    fprintf(out, "tlsfront_http2_streams_total %llu\n",
            (unsigned long long)sum(ws, n, FIELD(h2_streams_total)));
    head(out, "tlsfront_http2_goaway_total", "counter",
         "HTTP/2 GOAWAY frames sent, by reason: drain, idle, calm (ENHANCE_YOUR_CALM), protocol.");
    for (size_t r = 0; r < TF_MH2_GOAWAY_COUNT; r++)
        fprintf(out, "tlsfront_http2_goaway_total{reason=\"%s\"} %llu\n", goaway_slugs[r],
                (unsigned long long)sum(ws, n, FIELD(h2_goaway) + r * sizeof(_Atomic uint64_t)));
    head(out, "tlsfront_requests_protocol_total", "counter",
         "HTTP requests answered, by the client's protocol.");
    for (size_t p = 0; p < 2; p++) {
        size_t off = FIELD(requests_by_protocol) + p * sizeof(_Atomic uint64_t);
        fprintf(out, "tlsfront_requests_protocol_total{protocol=\"%s\"} %llu\n", protocol_labels[p],
                (unsigned long long)sum(ws, n, off));
    }
}

static void backend_labels(FILE *out, const char *metric, const tf_metrics_backend_row_t *r)
{
    fputs(metric, out);
    fputs("{tenant=", out);
    label(out, r->tenant);
    fputs(",backend=", out);
    label(out, r->address);
}

static void render_backends(FILE *out, const tf_metrics_main_t *m)
{
    static const char *const states[] = {"up", "down", "drain", "maint"};
    head(out, "tlsfront_backend_up", "gauge",
         "1 when the backend takes new requests, 0 while down, drained or in maintenance.");
    for (size_t i = 0; i < m->nbackends; i++) {
        backend_labels(out, "tlsfront_backend_up", &m->backends[i]);
        fprintf(out, "} %d\n", strcmp(m->backends[i].state, "up") == 0);
    }
    head(out, "tlsfront_backend_state", "gauge",
         "1 for the backend's state: up, down (health checks or a failed connect), drain, maint.");
    for (size_t i = 0; i < m->nbackends; i++) {
        for (size_t k = 0; k < 4; k++) {
            backend_labels(out, "tlsfront_backend_state", &m->backends[i]);
            fprintf(out, ",state=\"%s\"} %d\n", states[k],
                    strcmp(m->backends[i].state, states[k]) == 0);
        }
    }
    head(out, "tlsfront_backend_requests_total", "counter",
         "Responses from the backend by status class.");
    for (size_t i = 0; i < m->nbackends; i++) {
        for (int k = 0; k < 5; k++) {
            backend_labels(out, "tlsfront_backend_requests_total", &m->backends[i]);
            fprintf(out, ",class=\"%dxx\"} %llu\n", k + 1,
                    (unsigned long long)m->backends[i].requests[k]);
        }
    }
    head(out, "tlsfront_backend_failures_total", "counter",
         "Connects refused or timed out and broken or missing responses.");
    for (size_t i = 0; i < m->nbackends; i++) {
        backend_labels(out, "tlsfront_backend_failures_total", &m->backends[i]);
        fprintf(out, "} %llu\n", (unsigned long long)m->backends[i].failures);
    }
    head(out, "tlsfront_backend_in_flight", "gauge",
         "Requests and tunnels (WebSocket, mode tcp) at the backend now.");
    for (size_t i = 0; i < m->nbackends; i++) {
        backend_labels(out, "tlsfront_backend_in_flight", &m->backends[i]);
        fprintf(out, ",kind=\"request\"} %llu\n",
                (unsigned long long)m->backends[i].active_requests);
        backend_labels(out, "tlsfront_backend_in_flight", &m->backends[i]);
        fprintf(out, ",kind=\"tunnel\"} %llu\n",
                (unsigned long long)m->backends[i].active_tunnels);
    }
}

static void render_certs(FILE *out, const tf_metrics_main_t *m)
{
    tf_cs_snapshot_stats_t st = tf_cs_snapshot_stats(m->snap);
    head(out, "tlsfront_certificates_loaded", "gauge", "Certificate files in service.");
    fprintf(out, "tlsfront_certificates_loaded %zu\n", st.served);
    head(out, "tlsfront_certificate_expiry_seconds", "gauge",
         "Seconds until the certificate in service expires (negative once expired).");
    time_t now = time(NULL);
    for (size_t i = 0; i < tf_cs_snapshot_entry_count(m->snap); i++) {
        const tf_cs_entry_t *e = tf_cs_snapshot_entry_at(m->snap, i);
        const tf_cs_bundle_t *b = tf_cs_entry_served(e);
        if (b == NULL)
            continue;
        fputs("tlsfront_certificate_expiry_seconds{file=", out);
        label(out, tf_cs_entry_path(e));
        fputs(",name=", out);
        label(out, tf_cs_bundle_name_count(b) > 0 ? tf_cs_bundle_name_at(b, 0) : "");
        fprintf(out, "} %lld\n", (long long)(tf_cs_bundle_not_after(b) - now));
    }
}

static void render_reloads(FILE *out, const tf_metrics_main_t *m)
{
    head(out, "tlsfront_reloads_total", "counter",
         "Reloads by result: ok, partial (some files or the config rejected), failed.");
    fprintf(out, "tlsfront_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)m->reloads_ok);
    fprintf(out, "tlsfront_reloads_total{result=\"partial\"} %llu\n",
            (unsigned long long)m->reloads_partial);
    fprintf(out, "tlsfront_reloads_total{result=\"failed\"} %llu\n",
            (unsigned long long)m->reloads_failed);
}

static void render_limits(FILE *out, const tf_metrics_main_t *m)
{
    head(out, "tlsfront_per_client_refused_total", "counter",
         "Refused by limits.per_client: connections closed at accept, requests answered 429.");
    fprintf(out, "tlsfront_per_client_refused_total{kind=\"connections\"} %llu\n",
            (unsigned long long)m->per_client_refused_connections);
    fprintf(out, "tlsfront_per_client_refused_total{kind=\"requests\"} %llu\n",
            (unsigned long long)m->per_client_refused_requests);
}

static void render_acme(FILE *out, const tf_metrics_main_t *m)
{
    static const char *const results[3] = {"valid", "invalid", "error"};
    head(out, "tlsfront_acme_orders_total", "counter",
         "ACME orders by result: valid (certificate written), invalid (refused by the CA), "
         "error (anything else).");
    for (size_t i = 0; i < 3; i++)
        fprintf(out, "tlsfront_acme_orders_total{result=\"%s\"} %llu\n", results[i],
                (unsigned long long)m->acme_orders[i]);
    head(out, "tlsfront_acme_renewal_timestamp_seconds", "gauge",
         "When the ACME manager next orders a certificate for the name (renewal or retry), "
         "Unix time.");
    for (size_t i = 0; i < m->nacme; i++) {
        fputs("tlsfront_acme_renewal_timestamp_seconds{name=", out);
        label(out, m->acme_names[i].name);
        fprintf(out, "} %lld\n", (long long)m->acme_names[i].at);
    }
}

void tf_metrics_render(FILE *out, tf_metrics_worker_t *const *workers, unsigned nworkers,
                       const tf_metrics_main_t *m)
{
    render_conns(out, workers, nworkers);
    render_requests(out, workers, nworkers);
    render_http2(out, workers, nworkers);
    render_backends(out, m);
    if (m->snap != NULL)
        render_certs(out, m);
    render_reloads(out, m);
    render_limits(out, m);
    if (m->acme)
        render_acme(out, m);
}
