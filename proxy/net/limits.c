/* See limits.h. An address is keyed as 16 bytes, an IPv4 one in its
 * IPv4-mapped IPv6 form, so that a dual-stack listener's ::ffff:a.b.c.d and
 * a plain a.b.c.d are one client. The hash is keyed by a random seed drawn
 * at creation: clients choose their addresses (a whole IPv6 /64), and a
 * fixed hash would let them pile every entry into one chain.
 *
 * A bucket is kept as its deficit, the tokens taken and not yet refilled,
 * in thousandths of a token: at `rps` tokens a second one millisecond
 * refills exactly `rps` thousandths, so the refill is integer arithmetic
 * with no rounding drift, and "full" is deficit 0 whatever `burst` is (a
 * reload changing it needs no rescaling). An entry goes when it holds no
 * connection and its deficit is 0: at once when its last connection closes
 * on a full bucket, else when a later request on its shard sweeps it.
 */
#include "proxy/net/limits.h"

#include "common/err.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uv.h>

#define SHARDS 64u            /* a power of two */
#define SHARD_BUCKETS_MIN 16u /* a power of two */
#define SWEEP_BUCKETS 2u      /* chains a request sweeps on its shard */
#define MILLI 1000u           /* a token, in the bucket's units */

typedef struct entry {
    struct entry *next;
    uint8_t key[16];
    uint32_t conns;   /* connections open */
    uint64_t deficit; /* thousandths of a token taken and not refilled */
    uint64_t last_ms; /* when the deficit was last refilled */
} entry_t;

/* Padded to a cache line each: workers on different shards do not share
 * one through their locks. */
typedef struct {
    uv_mutex_t lock;
    entry_t **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    size_t sweep; /* the next chain a request sweeps */
} __attribute__((aligned(64))) shard_t;

struct tf_limits {
    shard_t shards[SHARDS];
    uint64_t seed[2];
    _Atomic uint64_t refused_conns;
    _Atomic uint64_t refused_reqs;
};

/* ---- keys and hashing -------------------------------------------------- */

/* The address's key; false for a family that has no address (AF_UNIX, a
 * getpeername that failed): such a client is never limited. */
static bool key_of(const struct sockaddr *sa, uint8_t key[16])
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &in4->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

static uint64_t mix(uint64_t x)
{
    /* splitmix64's finalizer: every input bit moves every output bit. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t key_hash(const tf_limits_t *l, const uint8_t key[16])
{
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    return mix(mix(a ^ l->seed[0]) ^ b ^ l->seed[1]);
}

/* ---- shards ------------------------------------------------------------ */

static shard_t *shard_of(tf_limits_t *l, uint64_t h)
{
    return &l->shards[(h >> 58) & (SHARDS - 1)];
}

static entry_t **chain_of(const shard_t *s, uint64_t h)
{
    return &s->buckets[h & (s->nbuckets - 1)];
}

/* The entry's link in its chain, or the chain's end when there is none. */
static entry_t **shard_find(shard_t *s, const uint8_t key[16], uint64_t h)
{
    entry_t **p = chain_of(s, h);
    while (*p != NULL && memcmp((*p)->key, key, 16) != 0)
        p = &(*p)->next;
    return p;
}

/* Doubles the chains when they average over two entries; keeps the old
 * ones when memory is short (longer chains, still correct). */
static void shard_grow(tf_limits_t *l, shard_t *s)
{
    if (s->count <= 2 * s->nbuckets)
        return;
    size_t n = s->nbuckets * 2;
    entry_t **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry_t *e = s->buckets[i];
        while (e != NULL) {
            entry_t *next = e->next;
            entry_t **to = &b[key_hash(l, e->key) & (n - 1)];
            e->next = *to;
            *to = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
    s->sweep = 0;
}

/* The entry for key, made (full bucket, no connection) when there is none;
 * NULL when memory is short. */
static entry_t *shard_get(tf_limits_t *l, shard_t *s, const uint8_t key[16], uint64_t h,
                          uint64_t now_ms)
{
    entry_t **p = shard_find(s, key, h);
    if (*p != NULL)
        return *p;
    entry_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    memcpy(e->key, key, 16);
    e->last_ms = now_ms;
    *p = e;
    s->count++;
    shard_grow(l, s);
    return e;
}

static void shard_unlink(shard_t *s, entry_t **p)
{
    entry_t *e = *p;
    *p = e->next;
    s->count--;
    free(e);
}

/* ---- buckets ----------------------------------------------------------- */

static uint64_t bucket_capacity(const tf_conf_limits_t *lim)
{
    uint32_t burst = lim->per_client_burst != 0 ? lim->per_client_burst : lim->per_client_rps;
    return (uint64_t)burst * MILLI;
}

/* Gives back what elapsed since the entry's last refill at `rps`. A clock
 * that went backwards (two threads' readings) refills nothing. */
static void bucket_refill(entry_t *e, uint32_t rps, uint64_t now_ms)
{
    if (rps == 0) {
        e->deficit = 0; /* no bucket now: nothing is owed */
    } else if (now_ms > e->last_ms) {
        uint64_t dt = now_ms - e->last_ms;
        /* dt * rps overflows past ~1.8e13 ms at the largest rps: any dt
         * that long has refilled any bucket. */
        if (dt >= e->deficit / rps + 1)
            e->deficit = 0;
        else
            e->deficit -= dt * rps;
    }
    if (now_ms > e->last_ms)
        e->last_ms = now_ms;
}

/* Refills and frees the entries of the next SWEEP_BUCKETS chains that are
 * done with: a bounded cost per request reclaims the buckets of clients
 * that went away without another request. */
static void shard_sweep(shard_t *s, uint32_t rps, uint64_t now_ms)
{
    for (unsigned k = 0; k < SWEEP_BUCKETS; k++) {
        entry_t **p = &s->buckets[s->sweep];
        s->sweep = (s->sweep + 1) & (s->nbuckets - 1);
        while (*p != NULL) {
            bucket_refill(*p, rps, now_ms);
            if ((*p)->conns == 0 && (*p)->deficit == 0)
                shard_unlink(s, p);
            else
                p = &(*p)->next;
        }
    }
}

/* ---- API --------------------------------------------------------------- */

int tf_limits_new(tf_limits_t **out)
{
    tf_limits_t *l = aligned_alloc(64, sizeof *l);
    if (l == NULL)
        return TF_ENOMEM;
    memset(l, 0, sizeof *l);
    if (getrandom(l->seed, sizeof l->seed, 0) != (ssize_t)sizeof l->seed) {
        /* No entropy source: a weaker seed still varies per process. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        l->seed[0] = mix((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)l);
        l->seed[1] = mix((uint64_t)ts.tv_sec ^ l->seed[0]);
    }
    size_t made = 0;
    int rc = 0;
    for (; made < SHARDS; made++) {
        shard_t *s = &l->shards[made];
        s->nbuckets = SHARD_BUCKETS_MIN;
        s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
        if (s->buckets == NULL || (rc = uv_mutex_init(&s->lock)) != 0) {
            free(s->buckets);
            break;
        }
    }
    if (made < SHARDS) {
        while (made-- > 0) {
            uv_mutex_destroy(&l->shards[made].lock);
            free(l->shards[made].buckets);
        }
        free(l);
        return rc != 0 ? rc : TF_ENOMEM;
    }
    atomic_init(&l->refused_conns, 0);
    atomic_init(&l->refused_reqs, 0);
    *out = l;
    return 0;
}

void tf_limits_free(tf_limits_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < SHARDS; i++) {
        shard_t *s = &l->shards[i];
        for (size_t b = 0; b < s->nbuckets; b++) {
            while (s->buckets[b] != NULL)
                shard_unlink(s, &s->buckets[b]);
        }
        free(s->buckets);
        uv_mutex_destroy(&s->lock);
    }
    free(l);
}

bool tf_limits_conn_open(tf_limits_t *l, const tf_conf_limits_t *lim, const struct sockaddr *sa)
{
    uint8_t key[16];
    if (lim->per_client_connections == 0 || !key_of(sa, key))
        return true;
    uint64_t h = key_hash(l, key);
    shard_t *s = shard_of(l, h);
    bool ok = true;
    uv_mutex_lock(&s->lock);
    /* A new entry's clock starts at its first request: connections alone
     * never read it. */
    entry_t *e = shard_get(l, s, key, h, 0);
    if (e != NULL && e->conns >= lim->per_client_connections)
        ok = false;
    else if (e != NULL)
        e->conns++;
    /* With no memory for an entry the connection goes uncounted (its
     * release finds nothing): refusing clients for our shortage would be
     * worse than a limit briefly loose. */
    uv_mutex_unlock(&s->lock);
    if (!ok)
        atomic_fetch_add_explicit(&l->refused_conns, 1, memory_order_relaxed);
    return ok;
}

void tf_limits_conn_close(tf_limits_t *l, const struct sockaddr *sa)
{
    uint8_t key[16];
    if (!key_of(sa, key))
        return;
    uint64_t h = key_hash(l, key);
    shard_t *s = shard_of(l, h);
    uv_mutex_lock(&s->lock);
    entry_t **p = shard_find(s, key, h);
    if (*p != NULL && (*p)->conns > 0 && --(*p)->conns == 0 && (*p)->deficit == 0)
        shard_unlink(s, p);
    uv_mutex_unlock(&s->lock);
}

/* Milliseconds until the entry holds one token, at rps (> 0). */
static uint64_t bucket_wait_ms(const entry_t *e, uint64_t cap, uint32_t rps)
{
    uint64_t short_by = e->deficit + MILLI - cap; /* > 0: the caller checked */
    return (short_by + rps - 1) / rps;
}

uint32_t tf_limits_request(tf_limits_t *l, const tf_conf_limits_t *lim, const struct sockaddr *sa,
                           uint64_t now_ms)
{
    uint8_t key[16];
    uint32_t rps = lim->per_client_rps;
    if (rps == 0 || !key_of(sa, key))
        return 0;
    uint64_t cap = bucket_capacity(lim);
    uint64_t h = key_hash(l, key);
    shard_t *s = shard_of(l, h);
    uint64_t wait_ms = 0;
    uv_mutex_lock(&s->lock);
    shard_sweep(s, rps, now_ms);
    entry_t *e = shard_get(l, s, key, h, now_ms);
    if (e != NULL) {
        bucket_refill(e, rps, now_ms);
        if (e->deficit > cap)
            e->deficit = cap; /* burst lowered by a reload */
        if (e->deficit + MILLI <= cap)
            e->deficit += MILLI;
        else
            wait_ms = bucket_wait_ms(e, cap, rps);
    }
    uv_mutex_unlock(&s->lock);
    if (wait_ms == 0)
        return 0;
    atomic_fetch_add_explicit(&l->refused_reqs, 1, memory_order_relaxed);
    uint64_t secs = (wait_ms + 999) / 1000;
    return secs > UINT32_MAX ? UINT32_MAX : (uint32_t)secs;
}

uint64_t tf_limits_refused_connections(const tf_limits_t *l)
{
    return atomic_load_explicit(&l->refused_conns, memory_order_relaxed);
}

uint64_t tf_limits_refused_requests(const tf_limits_t *l)
{
    return atomic_load_explicit(&l->refused_reqs, memory_order_relaxed);
}

size_t tf_limits_clients(tf_limits_t *l)
{
    size_t n = 0;
    for (size_t i = 0; i < SHARDS; i++) {
        uv_mutex_lock(&l->shards[i].lock);
        n += l->shards[i].count;
        uv_mutex_unlock(&l->shards[i].lock);
    }
    return n;
}
