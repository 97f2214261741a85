/* See backends.h. The table is a list sorted by (tenant, address) under one
 * mutex: it is walked at setup, reload, admin and metrics time only; the
 * data path holds entry pointers and touches atomics. */
#include "proxy/net/backends.h"

#include "common/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RELAXED memory_order_relaxed

struct tf_bstate {
    tf_bstate_t *next; /* the registry's sorted list */
    tf_backends_t *reg;
    char *tenant;
    char *address;
    unsigned refs; /* under the registry's lock */
    _Atomic int admin;           /* tf_badmin_t */
    _Atomic bool unhealthy;      /* the health checks' verdict */
    _Atomic bool checks_on;      /* a health check covers this entry */
    _Atomic bool check_now;      /* `ready` asked for a check at once */
    _Atomic bool need_pass;      /* down until a check passes (`ready` with checks) */
    _Atomic uint64_t down_until; /* passive mark, loop time (ms) */
    _Atomic uint32_t requests, tunnels;
    _Atomic uint64_t classes[5];
    _Atomic uint64_t failures;
    /* The checker's thread only. */
    uint32_t ok_run, fail_run;
    /* The last check's result, under the registry's lock. */
    bool checked, check_ok;
    char detail[96];
    int64_t check_wall_ms;
};

struct tf_backends {
    pthread_mutex_t lock;
    tf_bstate_t *head;
    tf_blc_t *lcs; /* least_conn structures, per (tenant, route path, members) */
};

const char *tf_bstate_state_name(tf_bstate_state_t s)
{
    switch (s) {
    case TF_BSTATE_UP:
        return "up";
    case TF_BSTATE_DOWN:
        return "down";
    case TF_BSTATE_DRAIN:
        return "drain";
    case TF_BSTATE_MAINT:
        return "maint";
    }
    return "down";
}

int tf_backends_new(tf_backends_t **out)
{
    tf_backends_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return TF_ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return 0;
}

void tf_backends_free(tf_backends_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static int entry_cmp(const tf_bstate_t *b, const char *tenant, const char *address)
{
    int c = strcmp(b->tenant, tenant);
    return c != 0 ? c : strcmp(b->address, address);
}

tf_bstate_t *tf_backends_acquire(tf_backends_t *r, const char *tenant, const char *address)
{
    pthread_mutex_lock(&r->lock);
    tf_bstate_t **pp = &r->head;
    while (*pp != NULL && entry_cmp(*pp, tenant, address) < 0)
        pp = &(*pp)->next;
    tf_bstate_t *b = *pp;
    if (b == NULL || entry_cmp(b, tenant, address) != 0) {
        b = calloc(1, sizeof *b);
        if (b != NULL) {
            b->tenant = strdup(tenant);
            b->address = strdup(address);
        }
        if (b == NULL || b->tenant == NULL || b->address == NULL) {
            if (b != NULL) {
                free(b->tenant);
                free(b->address);
                free(b);
            }
            pthread_mutex_unlock(&r->lock);
            return NULL;
        }
        b->reg = r;
        b->next = *pp;
        *pp = b;
    }
    b->refs++;
    pthread_mutex_unlock(&r->lock);
    return b;
}

void tf_backends_release(tf_backends_t *r, tf_bstate_t *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    if (--b->refs > 0) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    tf_bstate_t **pp = &r->head;
    while (*pp != b)
        pp = &(*pp)->next;
    *pp = b->next;
    pthread_mutex_unlock(&r->lock);
    free(b->tenant);
    free(b->address);
    free(b);
}

static tf_bstate_t *find_locked(tf_backends_t *r, const char *tenant, const char *address)
{
    for (tf_bstate_t *b = r->head; b != NULL; b = b->next) {
        if (entry_cmp(b, tenant, address) == 0)
            return b;
    }
    return NULL;
}

/* The admin path and metrics read loop time as the monotonic clock: libuv's
 * loop time is the same clock in milliseconds (uv_hrtime based). */
static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int tf_backends_set_admin(tf_backends_t *r, const char *tenant, const char *address,
                          tf_badmin_t admin, tf_bstate_state_t *now)
{
    pthread_mutex_lock(&r->lock);
    tf_bstate_t *b = find_locked(r, tenant, address);
    if (b == NULL) {
        pthread_mutex_unlock(&r->lock);
        return TF_ENOTFOUND;
    }
    int was = atomic_load(&b->admin);
    if (admin == TF_BADMIN_READY && was != TF_BADMIN_READY && atomic_load(&b->checks_on)) {
        /* Back in rotation only once a check says so; one runs at once. */
        atomic_store(&b->need_pass, true);
        atomic_store(&b->check_now, true);
    }
    atomic_store(&b->admin, (int)admin);
    if (now != NULL)
        *now = tf_bstate_state(b, mono_ms());
    pthread_mutex_unlock(&r->lock);
    return 0;
}

void tf_backends_each(tf_backends_t *r, void (*fn)(const tf_bstate_view_t *v, void *arg),
                      void *arg)
{
    uint64_t now = mono_ms();
    pthread_mutex_lock(&r->lock);
    for (tf_bstate_t *b = r->head; b != NULL; b = b->next) {
        tf_bstate_view_t v = {
            .tenant = b->tenant,
            .address = b->address,
            .state = tf_bstate_state(b, now),
            .admin = (tf_badmin_t)atomic_load(&b->admin),
            .active_requests = atomic_load_explicit(&b->requests, RELAXED),
            .active_tunnels = atomic_load_explicit(&b->tunnels, RELAXED),
            .failures = atomic_load_explicit(&b->failures, RELAXED),
            .checked = b->checked,
            .check_ok = b->check_ok,
            .check_wall_ms = b->check_wall_ms,
        };
        for (int i = 0; i < 5; i++)
            v.requests[i] = atomic_load_explicit(&b->classes[i], RELAXED);
        memcpy(v.check_detail, b->detail, sizeof v.check_detail);
        fn(&v, arg);
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- the data path ------------------------------------------------------- */

bool tf_bstate_healthy(const tf_bstate_t *b, uint64_t now_ms)
{
    return !atomic_load_explicit(&b->unhealthy, RELAXED) &&
           !atomic_load_explicit(&b->need_pass, RELAXED) &&
           atomic_load_explicit(&b->down_until, RELAXED) <= now_ms;
}

bool tf_bstate_usable(const tf_bstate_t *b, uint64_t now_ms)
{
    return atomic_load_explicit(&b->admin, RELAXED) == TF_BADMIN_READY &&
           tf_bstate_healthy(b, now_ms);
}

tf_bstate_state_t tf_bstate_state(const tf_bstate_t *b, uint64_t now_ms)
{
    switch ((tf_badmin_t)atomic_load_explicit(&b->admin, RELAXED)) {
    case TF_BADMIN_DRAIN:
        return TF_BSTATE_DRAIN;
    case TF_BADMIN_MAINT:
        return TF_BSTATE_MAINT;
    case TF_BADMIN_READY:
        break;
    }
    return tf_bstate_healthy(b, now_ms) ? TF_BSTATE_UP : TF_BSTATE_DOWN;
}

uint32_t tf_bstate_in_flight(const tf_bstate_t *b)
{
    return atomic_load_explicit(&b->requests, RELAXED) + atomic_load_explicit(&b->tunnels, RELAXED);
}

void tf_bstate_begin(tf_bstate_t *b)
{
    atomic_fetch_add_explicit(&b->requests, 1, RELAXED);
}

void tf_bstate_end(tf_bstate_t *b)
{
    atomic_fetch_sub_explicit(&b->requests, 1, RELAXED);
}

void tf_bstate_to_tunnel(tf_bstate_t *b)
{
    atomic_fetch_add_explicit(&b->tunnels, 1, RELAXED);
    atomic_fetch_sub_explicit(&b->requests, 1, RELAXED);
}

void tf_bstate_tunnel_end(tf_bstate_t *b)
{
    atomic_fetch_sub_explicit(&b->tunnels, 1, RELAXED);
}

void tf_bstate_count(tf_bstate_t *b, unsigned status)
{
    if (status >= 100 && status <= 599)
        atomic_fetch_add_explicit(&b->classes[status / 100 - 1], 1, RELAXED);
}

void tf_bstate_failed(tf_bstate_t *b, bool mark_down, uint64_t now_ms)
{
    atomic_fetch_add_explicit(&b->failures, 1, RELAXED);
    if (mark_down)
        atomic_store_explicit(&b->down_until, now_ms + TF_BSTATE_DOWN_MS, RELAXED);
}

uint64_t tf_bstate_down_until(const tf_bstate_t *b)
{
    return atomic_load_explicit(&b->down_until, RELAXED);
}

/* ---- health checks ------------------------------------------------------- */

bool tf_bstate_check_result(tf_bstate_t *b, bool ok, const char *detail, uint32_t rise,
                            uint32_t fall)
{
    bool was = !atomic_load(&b->unhealthy) && !atomic_load(&b->need_pass);
    bool healthy = was;
    if (ok) {
        b->fail_run = 0;
        b->ok_run++;
        if (atomic_load(&b->need_pass) || (!was && b->ok_run >= rise))
            healthy = true;
    } else {
        b->ok_run = 0;
        b->fail_run++;
        if (was && b->fail_run >= fall)
            healthy = false;
    }
    if (healthy) {
        atomic_store(&b->need_pass, false);
        /* A passing check clears a passive mark: the backend is back. */
        atomic_store(&b->down_until, 0);
    }
    atomic_store(&b->unhealthy, !healthy);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&b->reg->lock);
    b->checked = true;
    b->check_ok = ok;
    snprintf(b->detail, sizeof b->detail, "%s", detail != NULL ? detail : "");
    b->check_wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    pthread_mutex_unlock(&b->reg->lock);
    return healthy != was;
}

bool tf_bstate_checking(const tf_bstate_t *b)
{
    return atomic_load(&b->admin) != TF_BADMIN_MAINT;
}

void tf_bstate_set_checked(tf_bstate_t *b, bool on)
{
    atomic_store(&b->checks_on, on);
    if (!on) {
        /* Nothing will pass a check any more: the verdict goes with them. */
        atomic_store(&b->need_pass, false);
        atomic_store(&b->unhealthy, false);
        b->ok_run = b->fail_run = 0;
    }
}

bool tf_bstate_take_check_now(tf_bstate_t *b)
{
    return atomic_exchange(&b->check_now, false);
}

const char *tf_bstate_tenant(const tf_bstate_t *b)
{
    return b->tenant;
}

const char *tf_bstate_address(const tf_bstate_t *b)
{
    return b->address;
}

/* ---- least_conn, process-wide per route ---------------------------------- */

typedef struct {
    tf_bstate_t *b;
    uint32_t weight, max_conns;
    bool backup;
    uint32_t load; /* the in-flight count the heap was ordered by */
    uint64_t seq;  /* when last picked: ties go to the longest unpicked */
    uint32_t pos;  /* index in heap[] */
} lc_node_t;

struct tf_blc {
    tf_blc_t *next; /* the registry's list */
    tf_backends_t *reg;
    char *tenant, *path;
    unsigned refs; /* under the registry's lock */
    pthread_mutex_t lock;
    uint64_t seq;
    size_t n;
    lc_node_t *nodes;
    uint32_t *heap; /* node indices, a binary min-heap */
    uint64_t rebuilt_ms; /* when every load was last read again (lc_rebuild) */
};

/* Non-backups first, then fewest (in flight + 1) per weight, then round robin. */
static bool lc_less(const tf_blc_t *lc, uint32_t x, uint32_t y)
{
    const lc_node_t *a = &lc->nodes[x], *b = &lc->nodes[y];
    if (a->backup != b->backup)
        return !a->backup;
    uint64_t ka = (uint64_t)(a->load + 1) * b->weight, kb = (uint64_t)(b->load + 1) * a->weight;
    if (ka != kb)
        return ka < kb;
    return a->seq < b->seq;
}

static void lc_swap(tf_blc_t *lc, size_t i, size_t j)
{
    uint32_t t = lc->heap[i];
    lc->heap[i] = lc->heap[j];
    lc->heap[j] = t;
    lc->nodes[lc->heap[i]].pos = (uint32_t)i;
    lc->nodes[lc->heap[j]].pos = (uint32_t)j;
}

static void lc_down(tf_blc_t *lc, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && lc_less(lc, lc->heap[l], lc->heap[m]))
            m = l;
        if (r < n && lc_less(lc, lc->heap[r], lc->heap[m]))
            m = r;
        if (m == i)
            return;
        lc_swap(lc, i, m);
        i = m;
    }
}

static void lc_sift(tf_blc_t *lc, size_t n, size_t i)
{
    while (i > 0 && lc_less(lc, lc->heap[i], lc->heap[(i - 1) / 2])) {
        lc_swap(lc, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    lc_down(lc, n, i);
}

static bool lc_same(const tf_blc_t *lc, const tf_blc_member_t *m, size_t n)
{
    if (lc->n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const lc_node_t *x = &lc->nodes[i];
        if (x->b != m[i].state || x->weight != m[i].weight || x->backup != m[i].backup ||
            x->max_conns != m[i].max_conns)
            return false;
    }
    return true;
}

static void lc_destroy(tf_blc_t *lc)
{
    if (lc == NULL)
        return;
    pthread_mutex_destroy(&lc->lock);
    free(lc->tenant);
    free(lc->path);
    free(lc->nodes);
    free(lc->heap);
    free(lc);
}

static tf_blc_t *lc_create(tf_backends_t *r, const char *tenant, const char *path,
                           const tf_blc_member_t *m, size_t n)
{
    tf_blc_t *lc = calloc(1, sizeof *lc);
    if (lc == NULL)
        return NULL;
    pthread_mutex_init(&lc->lock, NULL);
    lc->reg = r;
    lc->tenant = strdup(tenant);
    lc->path = strdup(path);
    lc->nodes = calloc(n, sizeof *lc->nodes);
    lc->heap = calloc(n, sizeof *lc->heap);
    if (lc->tenant == NULL || lc->path == NULL || lc->nodes == NULL || lc->heap == NULL) {
        lc_destroy(lc);
        return NULL;
    }
    lc->n = n;
    for (size_t i = 0; i < n; i++) {
        lc->nodes[i] = (lc_node_t){.b = m[i].state,
                                   .weight = m[i].weight > 0 ? m[i].weight : 1,
                                   .max_conns = m[i].max_conns,
                                   .backup = m[i].backup,
                                   .load = tf_bstate_in_flight(m[i].state),
                                   .seq = i,
                                   .pos = (uint32_t)i};
        lc->heap[i] = (uint32_t)i;
    }
    lc->seq = n;
    for (size_t i = n / 2 + 1; i-- > 0;)
        lc_sift(lc, n, i);
    return lc;
}

tf_blc_t *tf_backends_lc_acquire(tf_backends_t *r, const char *tenant, const char *path,
                                 const tf_blc_member_t *members, size_t n)
{
    pthread_mutex_lock(&r->lock);
    tf_blc_t *lc = r->lcs;
    while (lc != NULL && !(strcmp(lc->tenant, tenant) == 0 && strcmp(lc->path, path) == 0 &&
                           lc_same(lc, members, n)))
        lc = lc->next;
    if (lc == NULL) {
        lc = lc_create(r, tenant, path, members, n);
        if (lc != NULL) {
            lc->next = r->lcs;
            r->lcs = lc;
        }
    }
    if (lc != NULL)
        lc->refs++;
    pthread_mutex_unlock(&r->lock);
    return lc;
}

void tf_backends_lc_release(tf_backends_t *r, tf_blc_t *lc)
{
    if (lc == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    if (--lc->refs > 0) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    tf_blc_t **pp = &r->lcs;
    while (*pp != lc)
        pp = &(*pp)->next;
    *pp = lc->next;
    pthread_mutex_unlock(&r->lock);
    lc_destroy(lc);
}

/* The node's load may have moved (its backend serves other routes too, or
 * a request ended): reorder it. */
static void lc_refresh(tf_blc_t *lc, uint32_t node)
{
    lc_node_t *x = &lc->nodes[node];
    uint32_t load = tf_bstate_in_flight(x->b);
    if (load != x->load) {
        x->load = load;
        lc_sift(lc, lc->n, x->pos);
    }
}

void tf_blc_refresh(tf_blc_t *lc, uint32_t node)
{
    pthread_mutex_lock(&lc->lock);
    lc_refresh(lc, node);
    pthread_mutex_unlock(&lc->lock);
}

/* Every node's load read again and the heap rebuilt (Floyd, O(n)). A
 * backend this route shares with other routes of the tenant changes load
 * by their requests too; the route hears of its own only, so a load can be
 * stale upwards deep in the heap where the pick's check of the top does
 * not look. Done at most every LC_REBUILD_MS: O(n) per interval, not per
 * pick. */
#define LC_REBUILD_MS 50u
static void lc_rebuild(tf_blc_t *lc, uint64_t now_ms)
{
    lc->rebuilt_ms = now_ms;
    for (size_t i = 0; i < lc->n; i++)
        lc->nodes[i].load = tf_bstate_in_flight(lc->nodes[i].b);
    for (size_t i = lc->n / 2; i-- > 0;)
        lc_down(lc, lc->n, i);
}

/* Visits nodes in heap order: the top is taken out of the heap (shrunk by
 * one) until a verdict; the visited ones go back afterwards. Usually the
 * top is the answer: O(log n). */
uint32_t tf_blc_pick(tf_blc_t *lc, uint64_t now_ms)
{
    pthread_mutex_lock(&lc->lock);
    if (now_ms - lc->rebuilt_ms >= LC_REBUILD_MS || now_ms < lc->rebuilt_ms)
        lc_rebuild(lc, now_ms);
    size_t n = lc->n;
    /* The top's load may be stale upwards (other routes' requests). */
    for (size_t guard = 0; n > 0 && guard < lc->n; guard++) {
        uint32_t top = lc->heap[0];
        if (tf_bstate_in_flight(lc->nodes[top].b) == lc->nodes[top].load)
            break;
        lc_refresh(lc, top);
    }
    uint32_t answer = TF_BLC_NONE;
    bool primary_usable = false, full = false;
    while (n > 0) {
        uint32_t top = lc->heap[0];
        const lc_node_t *x = &lc->nodes[top];
        if (x->backup && primary_usable)
            break; /* every usable non-backup is full */
        if (tf_bstate_usable(x->b, now_ms)) {
            primary_usable |= !x->backup;
            if (x->max_conns == 0 || tf_bstate_in_flight(x->b) < x->max_conns) {
                answer = top;
                break;
            }
            full = true;
        }
        lc_swap(lc, 0, --n);
        lc_sift(lc, n, 0);
    }
    /* Put back what was set aside. */
    for (size_t i = n; i < lc->n; i++)
        lc_sift(lc, i + 1, i);
    if (answer != TF_BLC_NONE) {
        lc_node_t *x = &lc->nodes[answer];
        tf_bstate_begin(x->b);
        x->load = tf_bstate_in_flight(x->b);
        x->seq = ++lc->seq;
        lc_sift(lc, lc->n, x->pos);
    } else if (full) {
        answer = TF_BLC_FULL;
    }
    pthread_mutex_unlock(&lc->lock);
    return answer;
}
