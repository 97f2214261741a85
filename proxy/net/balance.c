/* See balance.h. */
#include "proxy/net/balance.h"

#include "common/err.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Virtual nodes per unit of weight on the source ring: enough for an even
 * spread over a handful of backends, 256 * 40 points at most per backend. */
#define RING_POINTS_PER_WEIGHT 40u

/* The sticky cookie's key (tf_balancer_set_cookie_key): set once, before
 * any table is built, then only read. */
static unsigned char cookie_key[WC_SHA256_DIGEST_SIZE];

void tf_balancer_set_cookie_key(const unsigned char key[32])
{
    memcpy(cookie_key, key, sizeof cookie_key);
}

int tf_balancer_cookie_key_from_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    wc_Sha256 sha;
    int rc = wc_InitSha256(&sha);
    static const char label[] = "tlsfront sticky cookie key v1";
    if (rc == 0)
        rc = wc_Sha256Update(&sha, (const byte *)label, sizeof label);
    unsigned char buf[4096];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0)
        rc = wc_Sha256Update(&sha, buf, (word32)n);
    bool bad = ferror(f) != 0;
    fclose(f);
    unsigned char key[WC_SHA256_DIGEST_SIZE];
    if (rc == 0)
        rc = wc_Sha256Final(&sha, key);
    wc_Sha256Free(&sha);
    /* The file holds a private key: its hash is as secret as the key. */
    memset(buf, 0, sizeof buf);
    if (rc != 0 || bad)
        return TF_EIO;
    tf_balancer_set_cookie_key(key);
    memset(key, 0, sizeof key);
    return 0;
}

void tf_balancer_cookie_id(const char *tenant, const char *address, char out[17])
{
    unsigned char digest[WC_SHA256_DIGEST_SIZE];
    Hmac hmac;
    int rc = wc_HmacInit(&hmac, NULL, INVALID_DEVID);
    if (rc == 0)
        rc = wc_HmacSetKey(&hmac, WC_SHA256, cookie_key, sizeof cookie_key);
    /* "tenant\0address": the NUL keeps ("a", "bc") apart from ("ab", "c"). */
    if (rc == 0)
        rc = wc_HmacUpdate(&hmac, (const byte *)tenant, (word32)strlen(tenant) + 1);
    if (rc == 0)
        rc = wc_HmacUpdate(&hmac, (const byte *)address, (word32)strlen(address));
    if (rc == 0)
        rc = wc_HmacFinal(&hmac, digest);
    wc_HmacFree(&hmac);
    if (rc != 0)
        memset(digest, 0, sizeof digest); /* cannot happen with software SHA-256 */
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[16] = '\0';
}

/* 64-bit FNV-1a, then a finalizer so nearby inputs spread over the ring. */
static uint64_t hash_bytes(const void *p, size_t len, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

#define HASH_SEED 1469598103934665603ull

static int ring_cmp(const void *a, const void *b)
{
    const tf_ring_point_t *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->backend < y->backend ? -1 : x->backend > y->backend;
}

/* Points are named by the backend's address text, so the others' points
 * stay where they are when one backend comes or goes. Backups are not on
 * the ring: they serve (round robin) only while no other backend can. */
static int ring_build(tf_balancer_t *bl)
{
    size_t total = 0;
    for (size_t i = 0; i < bl->n; i++) {
        if (!bl->backends[i].conf->backup)
            total += (size_t)bl->backends[i].conf->weight * RING_POINTS_PER_WEIGHT;
    }
    if (total == 0)
        return 0;
    bl->ring = calloc(total, sizeof *bl->ring);
    if (bl->ring == NULL)
        return TF_ENOMEM;
    for (uint32_t i = 0; i < bl->n; i++) {
        const tf_backend_t *b = &bl->backends[i];
        if (b->conf->backup)
            continue;
        uint64_t base = hash_bytes(b->text, strlen(b->text), HASH_SEED);
        for (uint32_t k = 0; k < (uint32_t)b->conf->weight * RING_POINTS_PER_WEIGHT; k++)
            bl->ring[bl->nring++] = (tf_ring_point_t){hash_bytes(&k, sizeof k, base), i};
    }
    qsort(bl->ring, bl->nring, sizeof *bl->ring, ring_cmp);
    return 0;
}

static _Thread_local const tf_balancer_t *sort_ctx;

static int cookie_cmp(const void *a, const void *b)
{
    return strcmp(sort_ctx->backends[*(const uint32_t *)a].cookie_id,
                  sort_ctx->backends[*(const uint32_t *)b].cookie_id);
}

int tf_balancer_init(tf_balancer_t *bl, tf_backends_t *reg, const char *tenant,
                     const tf_conf_route_t *rc, tf_backend_t *backends, size_t n)
{
    *bl = (tf_balancer_t){.conf = rc, .backends = backends, .n = n, .reg = reg};
    for (size_t i = 0; i < n; i++)
        tf_balancer_cookie_id(tenant, backends[i].text, backends[i].cookie_id);
    bl->cw = calloc(n > 0 ? n : 1, sizeof *bl->cw);
    bl->by_cookie = calloc(n > 0 ? n : 1, sizeof *bl->by_cookie);
    if (bl->cw == NULL || bl->by_cookie == NULL)
        return TF_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        bl->by_cookie[i] = i;
    sort_ctx = bl; /* qsort has no context argument: this thread's */
    qsort(bl->by_cookie, n, sizeof *bl->by_cookie, cookie_cmp);
    sort_ctx = NULL;
    switch (rc->balance) {
    case TF_CONF_BALANCE_SOURCE:
        return ring_build(bl);
    case TF_CONF_BALANCE_LEAST_CONN: {
        tf_blc_member_t *m = calloc(n > 0 ? n : 1, sizeof *m);
        if (m == NULL)
            return TF_ENOMEM;
        for (size_t i = 0; i < n; i++)
            m[i] = (tf_blc_member_t){backends[i].state, backends[i].conf->weight,
                                     backends[i].conf->max_conns, backends[i].conf->backup};
        bl->lc = tf_backends_lc_acquire(reg, tenant, rc->path, m, n);
        free(m);
        return bl->lc != NULL ? 0 : TF_ENOMEM;
    }
    case TF_CONF_BALANCE_ROUND_ROBIN:
    case TF_CONF_BALANCE_COOKIE:
        break;
    }
    return 0;
}

void tf_balancer_fini(tf_balancer_t *bl)
{
    if (bl->lc != NULL)
        tf_backends_lc_release(bl->reg, bl->lc);
    free(bl->cw);
    free(bl->ring);
    free(bl->by_cookie);
    *bl = (tf_balancer_t){0};
}

/* ---- picking ------------------------------------------------------------- */

typedef enum { CAN_NOT, CAN_FULL, CAN_TAKE } can_t;

static can_t can_take(const tf_backend_t *b, uint64_t now_ms)
{
    if (!tf_bstate_usable(b->state, now_ms))
        return CAN_NOT;
    if (b->conf->max_conns != 0 && tf_bstate_in_flight(b->state) >= b->conf->max_conns)
        return CAN_FULL;
    return CAN_TAKE;
}

/* Whether some non-backup backend is usable (full or not). */
static bool primary_usable(const tf_balancer_t *bl, uint64_t now_ms)
{
    for (size_t i = 0; i < bl->n; i++) {
        if (!bl->backends[i].conf->backup && tf_bstate_usable(bl->backends[i].state, now_ms))
            return true;
    }
    return false;
}

/* Smooth weighted round robin among one tier (backups or not): every
 * candidate gains its weight, the largest wins and pays back the total. */
static uint32_t swrr_tier(tf_balancer_t *bl, bool backup, uint64_t now_ms, bool *usable,
                          bool *full)
{
    int64_t total = 0;
    uint32_t best = TF_UPSTREAM_NONE;
    for (uint32_t i = 0; i < bl->n; i++) {
        const tf_backend_t *b = &bl->backends[i];
        if (b->conf->backup != backup)
            continue;
        can_t can = can_take(b, now_ms);
        *usable |= can != CAN_NOT;
        *full |= can == CAN_FULL;
        if (can != CAN_TAKE)
            continue;
        bl->cw[i] += b->conf->weight;
        total += b->conf->weight;
        if (best == TF_UPSTREAM_NONE || bl->cw[i] > bl->cw[best])
            best = i;
    }
    if (best != TF_UPSTREAM_NONE)
        bl->cw[best] -= total;
    return best;
}

static uint32_t swrr(tf_balancer_t *bl, uint64_t now_ms, bool *full)
{
    bool usable = false;
    uint32_t b = swrr_tier(bl, false, now_ms, &usable, full);
    if (b != TF_UPSTREAM_NONE || usable)
        return b;
    return swrr_tier(bl, true, now_ms, &usable, full);
}

static uint64_t client_hash(const struct sockaddr *sa)
{
    if (sa == NULL)
        return hash_bytes("", 0, HASH_SEED);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return hash_bytes(&in->sin_addr, sizeof in->sin_addr, HASH_SEED);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return hash_bytes(&in6->sin6_addr, sizeof in6->sin6_addr, HASH_SEED);
    }
    return hash_bytes("", 0, HASH_SEED);
}

/* The first point at or after the client's hash, then onwards (wrapping)
 * to the first backend that can take it. */
static uint32_t ring_pick(tf_balancer_t *bl, const tf_pick_hint_t *hint, uint64_t now_ms,
                          bool *full)
{
    if (bl->nring == 0)
        return TF_UPSTREAM_NONE;
    uint64_t h = client_hash(hint != NULL ? hint->client : NULL);
    size_t lo = 0, hi = bl->nring;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bl->ring[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0; k < bl->nring; k++) {
        uint32_t b = bl->ring[(lo + k) % bl->nring].backend;
        can_t can = can_take(&bl->backends[b], now_ms);
        if (can == CAN_TAKE)
            return b;
        *full |= can == CAN_FULL;
    }
    return TF_UPSTREAM_NONE;
}

static uint32_t cookie_lookup(const tf_balancer_t *bl, const tf_pick_hint_t *hint)
{
    if (hint == NULL || hint->cookie == NULL || hint->cookie_len != 16)
        return TF_UPSTREAM_NONE;
    size_t lo = 0, hi = bl->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(bl->backends[bl->by_cookie[mid]].cookie_id, hint->cookie, 16);
        if (c == 0)
            return bl->by_cookie[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return TF_UPSTREAM_NONE;
}

/* Every backend is down: one whose only fault is a passive mark (a failed
 * connect) is tried anyway, the one due back first, so that a restarted
 * backend serves at once (nginx does the same); health-down, drained and
 * maint ones never are. */
static uint32_t due_back_first(const tf_balancer_t *bl, uint64_t now_ms)
{
    uint32_t best = TF_UPSTREAM_NONE;
    for (uint32_t i = 0; i < bl->n; i++) {
        const tf_bstate_t *s = bl->backends[i].state;
        uint64_t until = tf_bstate_down_until(s);
        if (until <= now_ms || tf_bstate_state(s, until) != TF_BSTATE_UP)
            continue;
        if (best == TF_UPSTREAM_NONE || until < tf_bstate_down_until(bl->backends[best].state))
            best = i;
    }
    return best;
}

tf_pick_t tf_balancer_pick(tf_balancer_t *bl, const tf_pick_hint_t *hint, uint64_t now_ms)
{
    tf_pick_t p = {.backend = TF_UPSTREAM_NONE};
    bool full = false;
    switch (bl->conf->balance) {
    case TF_CONF_BALANCE_LEAST_CONN:
        p.backend = tf_blc_pick(bl->lc, now_ms);
        if (p.backend == TF_BLC_FULL)
            p.backend = TF_UPSTREAM_FULL;
        if (p.backend != TF_UPSTREAM_NONE)
            return p; /* taken (or full) under the heap's lock */
        break;
    case TF_CONF_BALANCE_SOURCE:
        p.backend = ring_pick(bl, hint, now_ms, &full);
        if (p.backend == TF_UPSTREAM_NONE && !full && !primary_usable(bl, now_ms))
            p.backend = swrr(bl, now_ms, &full); /* the backups */
        break;
    case TF_CONF_BALANCE_COOKIE: {
        uint32_t b = cookie_lookup(bl, hint);
        /* A backup named by its cookie keeps its client only while it may
         * serve at all: while no other backend is usable. */
        if (b != TF_UPSTREAM_NONE && can_take(&bl->backends[b], now_ms) == CAN_TAKE &&
            (!bl->backends[b].conf->backup || !primary_usable(bl, now_ms))) {
            p.backend = b;
            p.sticky_hit = true;
            break;
        }
        p.backend = swrr(bl, now_ms, &full);
        break;
    }
    case TF_CONF_BALANCE_ROUND_ROBIN:
        p.backend = swrr(bl, now_ms, &full);
        break;
    }
    if (p.backend == TF_UPSTREAM_NONE && full)
        p.backend = TF_UPSTREAM_FULL;
    if (p.backend == TF_UPSTREAM_NONE)
        p.backend = due_back_first(bl, now_ms);
    if (p.backend < bl->n)
        tf_bstate_begin(bl->backends[p.backend].state);
    return p;
}

void tf_balancer_end(tf_balancer_t *bl, uint32_t backend, bool tunnel)
{
    tf_bstate_t *s = bl->backends[backend].state;
    if (tunnel)
        tf_bstate_tunnel_end(s);
    else
        tf_bstate_end(s);
    if (bl->lc != NULL)
        tf_blc_refresh(bl->lc, backend);
}
