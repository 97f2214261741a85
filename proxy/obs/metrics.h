/* proxy/ metrics (SPEC §8): counters for GET /metrics in the Prometheus text
 * exposition format 0.0.4.
 *
 * Each worker owns one tf_metrics_worker_t, aligned to a cache line, and is
 * its only writer: an increment is a relaxed atomic load and store (a plain
 * add on x86-64: no locked instruction, no cache line bouncing between
 * workers). The admin thread sums the workers' structs with relaxed atomic
 * loads; a scrape may see one worker's counters a few increments behind
 * another's, which Prometheus counters tolerate. Nothing here holds key
 * material: labels are tenant names, file paths and certificate names.
 *
 * The data path feeds it through the tf_metrics_* calls below (worker
 * thread only); the admin API renders it with tf_metrics_render().
 */
#ifndef TF_PROXY_METRICS_H
#define TF_PROXY_METRICS_H

/* Internal to proxy/obs (and its tests): other libraries include
 * proxy/obs/obs.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 1 && !defined(TF_PROXY_OBS_PUBLIC)
#error "internal to proxy/obs: include proxy/obs/obs.h"
#endif

#include "certstore/store.h"
#include "conf/conf.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Request duration buckets, in seconds (upper bounds; +Inf implied). */
#define TF_METRICS_BUCKETS 11
/* Distinct tenant names counted per worker (a power of two). Requests of a
 * tenant that finds the table full are counted in the overflow row, rendered
 * as tenant="(other)": parentheses are not allowed in a tenant's name, so
 * the row cannot be mistaken for one. */
#define TF_METRICS_TENANTS 256
#define TF_METRICS_OTHER_TENANT "(other)"

/* Handshake failure reasons: the label values of
 * tlsfront_handshake_failures_total{reason}. */
#define TF_METRICS_HS_REASONS(X)                                                                   \
    X(TF_MHS_TIMEOUT, "timeout")                                                                   \
    X(TF_MHS_UNKNOWN_SNI, "unknown_sni")                                                           \
    X(TF_MHS_PROTOCOL, "protocol")                                                                 \
    X(TF_MHS_CLOSED, "closed")                                                                     \
    X(TF_MHS_OTHER, "other")

typedef enum {
#define TF_MHS_ENUM(code, slug) code,
    TF_METRICS_HS_REASONS(TF_MHS_ENUM)
#undef TF_MHS_ENUM
        TF_MHS_COUNT
} tf_metrics_hs_reason_t;

typedef struct {
    _Atomic(const char *) name;  /* set once by the worker; NULL: free */
    _Atomic uint64_t classes[5]; /* 1xx .. 5xx */
    _Atomic uint64_t denied[2];  /* 403 (allow), 429 (per-client rate) */
} tf_metrics_tenant_t;

/* Why the proxy sent an HTTP/2 GOAWAY (tlsfront_http2_goaway_total's
 * reason label): drain, idle, calm (ENHANCE_YOUR_CALM: floods, rapid
 * reset, HPACK abuse), protocol (the client broke the protocol). */
typedef enum {
    TF_MH2_GOAWAY_DRAIN,
    TF_MH2_GOAWAY_IDLE,
    TF_MH2_GOAWAY_CALM,
    TF_MH2_GOAWAY_PROTOCOL,
    TF_MH2_GOAWAY_COUNT
} tf_metrics_h2_goaway_t;

typedef struct {
    alignas(64) _Atomic uint64_t conns_total;
    _Atomic uint64_t conns_active;
    _Atomic uint64_t handshakes_ok;
    _Atomic uint64_t handshake_failures[TF_MHS_COUNT];
    _Atomic uint64_t duration_buckets[TF_METRICS_BUCKETS];
    _Atomic uint64_t duration_count;
    _Atomic uint64_t duration_sum_us;
    /* HTTP/2 (SPEC §12) and requests by protocol. */
    _Atomic uint64_t h2_conns_total;
    _Atomic uint64_t h2_streams_total;
    _Atomic uint64_t h2_goaway[TF_MH2_GOAWAY_COUNT];
    _Atomic uint64_t requests_by_protocol[2]; /* HTTP/1.x, HTTP/2 */
    tf_metrics_tenant_t tenants[TF_METRICS_TENANTS];
    tf_metrics_tenant_t other; /* tenants past the table's capacity */
} tf_metrics_worker_t;

/* A zeroed, aligned struct (aborts when out of memory: start-up time), and
 * its release (tenant names included). */
tf_metrics_worker_t *tf_metrics_worker_new(void);
void tf_metrics_worker_free(tf_metrics_worker_t *m);

/* ---- fed by the data path (worker thread) ------------------------------ */

/* A TLS handshake ended: ok, or failed for `reason` ("timeout",
 * "unknown_sni", "protocol", "closed"; anything else counts as "other"). */
void tf_metrics_handshake(tf_metrics_worker_t *m, bool ok, const char *reason);

/* A request was answered: tenant name (NULL: none matched), HTTP status,
 * time from the first byte of the request to the last of the response. */
void tf_metrics_request(tf_metrics_worker_t *m, const char *tenant, unsigned status,
                        uint64_t duration_ms);

/* A request of `tenant` refused by its policy (SPEC §11): STATUS 403 (not
 * in `allow`) or 429 (over limits.per_client's rate); others are ignored.
 * Counted besides tf_metrics_request(), which counts every answer. */
void tf_metrics_denied(tf_metrics_worker_t *m, const char *tenant, unsigned status);

/* HTTP/2: a connection negotiated h2 (tlsfront_http2_connections_total), a
 * stream carried a request (tlsfront_http2_streams_total), a GOAWAY was
 * sent (tlsfront_http2_goaway_total{reason}). */
void tf_metrics_h2_connection(tf_metrics_worker_t *m);
void tf_metrics_h2_stream(tf_metrics_worker_t *m);
void tf_metrics_h2_goaway(tf_metrics_worker_t *m, tf_metrics_h2_goaway_t why);

/* A request was answered over HTTP/1.x or HTTP/2
 * (tlsfront_requests_protocol_total{protocol="HTTP/1.1"|"HTTP/2"}), besides
 * tf_metrics_request(). */
void tf_metrics_request_protocol(tf_metrics_worker_t *m, bool http2);

/* Connections accepted and closed (worker.c calls these). */
void tf_metrics_conn_opened(tf_metrics_worker_t *m);
void tf_metrics_conn_closed(tf_metrics_worker_t *m);


/* ---- rendering (admin thread) ------------------------------------------ */

/* One backend as the process-wide registry reports it (proxy/net fills
 * these: obs knows nothing of the registry). */
typedef struct {
    const char *tenant;
    const char *address;
    const char *state; /* "up", "down", "drain", "maint" */
    uint64_t requests[5]; /* by class, 1xx..5xx */
    uint64_t failures;
    uint64_t active_requests;
    uint64_t active_tunnels;
} tf_metrics_backend_row_t;

/* One name the ACME manager manages and when it renews it next (proxy/ops
 * fills these from the manager: obs knows nothing of acme/). */
typedef struct {
    const char *name;
    int64_t at; /* Unix seconds */
} tf_metrics_acme_row_t;

/* Main-thread figures: reloads by result, the certificates in service,
 * limits.per_client's refusals (process-wide counters), the backends and
 * the ACME manager's orders and renewals. */
typedef struct {
    uint64_t reloads_ok;
    uint64_t reloads_partial; /* applied, but some files or the config failed */
    uint64_t reloads_failed;
    const tf_cs_snapshot_t *snap;
    const tf_conf_t *conf; /* the configuration in service */
    uint64_t conf_id;      /* its number */
    /* limits.per_client: connections closed at accept, requests answered 429. */
    uint64_t per_client_refused_connections;
    uint64_t per_client_refused_requests;
    const tf_metrics_backend_row_t *backends; /* sorted by tenant, then address */
    size_t nbackends;
    bool acme;               /* the ACME manager runs: the figures below are rendered */
    uint64_t acme_orders[3]; /* by result: valid, invalid, error */
    const tf_metrics_acme_row_t *acme_names; /* in configuration order */
    size_t nacme;
} tf_metrics_main_t;

/* Writes the whole exposition to out. */
void tf_metrics_render(FILE *out, tf_metrics_worker_t *const *workers, unsigned nworkers,
                       const tf_metrics_main_t *main_figures);

#endif
