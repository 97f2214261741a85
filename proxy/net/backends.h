/* proxy/ backend state, process-wide (SPEC §8, §11): one entry per
 * (tenant name, backend address as written), shared by every worker, every
 * route naming that address, and every configuration generation that keeps
 * it. What lives here is what must hold across workers and reloads:
 *   - the operator's state (ready, drain, maint: POST /backends);
 *   - the health checks' verdict (rise/fall), checked once per process;
 *   - a failed connect's passive down mark;
 *   - requests and tunnels in flight (least_conn, max_conns, GET /backends);
 *   - counters for metrics: requests by status class, failures.
 * Everything a request touches is an atomic; the table itself (lookup by
 * name, reload) takes a mutex and is for setup, admin and health paths.
 *
 * An entry lives while a configuration generation (an upstream table)
 * references it; a reload that keeps (tenant, address) keeps the entry, so
 * its state and counters carry on; one that drops it drops the state.
 */
#ifndef TF_PROXY_BACKENDS_H
#define TF_PROXY_BACKENDS_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tf_backends tf_backends_t; /* the registry, one per process */
typedef struct tf_bstate tf_bstate_t;     /* one (tenant, address) */

/* The operator's say (POST /backends). */
typedef enum {
    TF_BADMIN_READY, /* in rotation when healthy */
    TF_BADMIN_DRAIN, /* no new requests or tunnels (sticky clients included); in-flight
                        ones finish; health checks go on */
    TF_BADMIN_MAINT, /* as drain, and health checks stop */
} tf_badmin_t;

/* What GET /backends and the metrics call `state`. */
typedef enum {
    TF_BSTATE_UP,
    TF_BSTATE_DOWN, /* health checks failed `fall` times, or not yet passed after
                       `ready`, or a connect failed a moment ago */
    TF_BSTATE_DRAIN,
    TF_BSTATE_MAINT,
} tf_bstate_state_t;

/* "up", "down", "drain", "maint". */
const char *tf_bstate_state_name(tf_bstate_state_t s);

/* A consistent copy of one entry, for admin and metrics. */
typedef struct {
    const char *tenant;  /* valid while the registry lock is held (tf_backends_each) */
    const char *address; /* as written in the configuration */
    tf_bstate_state_t state;
    tf_badmin_t admin;
    uint64_t active_requests; /* in flight now */
    uint64_t active_tunnels;
    uint64_t requests[5];     /* answered since start, by class: 1xx..5xx */
    uint64_t failures;        /* connects refused or timed out, broken responses */
    bool checked;             /* a health check has run */
    bool check_ok;            /* the last check passed */
    char check_detail[96];    /* "200", "status 500", "connect refused", "timeout"... */
    int64_t check_wall_ms;    /* when the last check ended (Unix ms), 0: never */
} tf_bstate_view_t;

int tf_backends_new(tf_backends_t **out) __attribute__((warn_unused_result));
/* Every entry must have been released. */
void tf_backends_free(tf_backends_t *r);

/* The entry for (TENANT, ADDRESS), created when absent, with one more
 * reference; NULL when out of memory. Any thread. */
tf_bstate_t *tf_backends_acquire(tf_backends_t *r, const char *tenant, const char *address);
void tf_backends_release(tf_backends_t *r, tf_bstate_t *b);

/* Sets the operator's state of (TENANT, ADDRESS); *now receives the state
 * as reported afterwards. 0, or TF_ENOTFOUND when no live configuration
 * names that backend. `ready` with health checks on leaves the backend
 * down until its next check passes (one is run at once). */
int tf_backends_set_admin(tf_backends_t *r, const char *tenant, const char *address,
                          tf_badmin_t admin, tf_bstate_state_t *now);

/* Calls FN for every entry (sorted by tenant, then address) under the
 * registry's lock: FN must not call back into the registry. */
void tf_backends_each(tf_backends_t *r, void (*fn)(const tf_bstate_view_t *v, void *arg),
                      void *arg);

/* ---- the data path (any worker, lock-free) ------------------------------- */

/* Whether the entry may take a new request or tunnel at NOW_MS (loop
 * time): ready (not drained, not in maintenance), healthy, not marked down
 * by a failed connect. Below max_conns is the balancer's to check. */
bool tf_bstate_usable(const tf_bstate_t *b, uint64_t now_ms);
bool tf_bstate_healthy(const tf_bstate_t *b, uint64_t now_ms); /* ignoring admin state */
tf_bstate_state_t tf_bstate_state(const tf_bstate_t *b, uint64_t now_ms);

/* In-flight accounting: begin when a request or tunnel is given the
 * backend, end when it is over (the response complete, the connection
 * closed, the tunnel ended). A request that becomes a tunnel (101) moves. */
uint32_t tf_bstate_in_flight(const tf_bstate_t *b); /* requests + tunnels */
void tf_bstate_begin(tf_bstate_t *b);
void tf_bstate_end(tf_bstate_t *b);
void tf_bstate_to_tunnel(tf_bstate_t *b);
void tf_bstate_tunnel_end(tf_bstate_t *b);

/* A response's status (100..599) counted by class; a failure (a connect
 * refused or timed out, a broken response) counted, and with MARK_DOWN the
 * passive down mark set until NOW_MS + TF_BSTATE_DOWN_MS. */
#define TF_BSTATE_DOWN_MS 10000u
void tf_bstate_count(tf_bstate_t *b, unsigned status);
void tf_bstate_failed(tf_bstate_t *b, bool mark_down, uint64_t now_ms);
uint64_t tf_bstate_down_until(const tf_bstate_t *b);

/* ---- least_conn: one structure per route, process-wide ------------------
 * Shared by every upstream table (every worker, every generation) whose
 * route has the same (tenant, path) and the same members; a heap under a
 * mutex ordered by (in flight + 1) / weight, ties round robin. */
typedef struct tf_blc tf_blc_t;
typedef struct {
    tf_bstate_t *state;
    uint32_t weight, max_conns;
    bool backup;
} tf_blc_member_t;
#define TF_BLC_NONE UINT32_MAX
#define TF_BLC_FULL (UINT32_MAX - 1)
/* NULL when out of memory. The members' states stay referenced by the caller. */
tf_blc_t *tf_backends_lc_acquire(tf_backends_t *r, const char *tenant, const char *path,
                                 const tf_blc_member_t *members, size_t n);
void tf_backends_lc_release(tf_backends_t *r, tf_blc_t *lc);
/* A member index (its in-flight count taken), TF_BLC_NONE or TF_BLC_FULL;
 * backups only while no other member is usable. */
uint32_t tf_blc_pick(tf_blc_t *lc, uint64_t now_ms);
/* Member NODE's in-flight count went down: reorder it. */
void tf_blc_refresh(tf_blc_t *lc, uint32_t node);

/* ---- health checks (the checker's thread) -------------------------------- */

/* One check's result: rise/fall applied; returns whether the health state
 * changed. DETAIL is copied (clipped). */
bool tf_bstate_check_result(tf_bstate_t *b, bool ok, const char *detail, uint32_t rise,
                            uint32_t fall);
/* Whether checks are to run (not in maintenance). */
bool tf_bstate_checking(const tf_bstate_t *b);
/* Whether a health check covers the entry now (the checker says so on every
 * configuration); off also forgets the checks' verdict. */
void tf_bstate_set_checked(tf_bstate_t *b, bool on);
/* Whether `ready` asked for a check at once since the last call. */
bool tf_bstate_take_check_now(tf_bstate_t *b);
/* The entry's key, for logs. */
const char *tf_bstate_tenant(const tf_bstate_t *b);
const char *tf_bstate_address(const tf_bstate_t *b);

#endif
