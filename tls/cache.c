/* The per-context cache of tenant wolfSSL contexts (see tls_internal.h):
 * a fixed array of slots, a hash of bundle pointers into it, and a recency
 * list through it; the least recently used slot goes when a new bundle
 * needs one and the array is full. */
#include "tls/tls_internal.h"

#include "common/err.h"

#include <assert.h>
#include <stdlib.h>

enum { NIL = UINT32_MAX };

static uint32_t bucket_of(const tf_tls__cache_t *c, const tf_cs_bundle_t *b)
{
    /* Fibonacci hashing of the address: the high bits are well mixed. */
    uint64_t h = (uint64_t)(uintptr_t)b * UINT64_C(0x9E3779B97F4A7C15);
    return (uint32_t)(h >> 32) & (c->nbuckets - 1);
}

void tf_tls__cache_init(tf_tls__cache_t *c, unsigned cap, bool eager)
{
    *c = (tf_tls__cache_t){
        .cap = cap > 0 ? cap : TF_TLS_CTX_CACHE_DEFAULT, .eager = eager, .head = NIL, .tail = NIL};
    if (c->cap > TF_TLS_CTX_CACHE_MAX)
        c->cap = TF_TLS_CTX_CACHE_MAX;
}

static void list_unlink(tf_tls__cache_t *c, uint32_t i)
{
    tf_tls__slot_t *s = &c->slots[i];
    if (s->prev != NIL)
        c->slots[s->prev].next = s->next;
    else
        c->head = s->next;
    if (s->next != NIL)
        c->slots[s->next].prev = s->prev;
    else
        c->tail = s->prev;
    s->prev = s->next = NIL;
}

static void list_push_front(tf_tls__cache_t *c, uint32_t i)
{
    tf_tls__slot_t *s = &c->slots[i];
    s->prev = NIL;
    s->next = c->head;
    if (c->head != NIL)
        c->slots[c->head].prev = i;
    c->head = i;
    if (c->tail == NIL)
        c->tail = i;
}

WOLFSSL_CTX *tf_tls__cache_get(tf_tls__cache_t *c, const tf_cs_bundle_t *b)
{
    if (c->slots == NULL)
        return NULL;
    for (uint32_t i = c->buckets[bucket_of(c, b)]; i != NIL; i = c->slots[i].chain) {
        if (c->slots[i].bundle == b) {
            if (c->head != i) {
                list_unlink(c, i);
                list_push_front(c, i);
            }
            c->stats.hits++;
            return c->slots[i].wctx;
        }
    }
    return NULL;
}

/* Empties slot i: out of its bucket and the recency list, references
 * dropped. Connections still on the context keep it alive. */
static void slot_clear(tf_tls__cache_t *c, uint32_t i)
{
    tf_tls__slot_t *s = &c->slots[i];
    for (uint32_t *p = &c->buckets[bucket_of(c, s->bundle)]; *p != NIL; p = &c->slots[*p].chain) {
        if (*p == i) {
            *p = s->chain;
            break;
        }
    }
    list_unlink(c, i);
    wolfSSL_CTX_free(s->wctx);
    tf_cs_bundle_unref((tf_cs_bundle_t *)s->bundle);
    *s = (tf_tls__slot_t){.prev = NIL, .next = NIL, .chain = NIL};
    c->used--;
}

/* On first use: a configuration without tenant certificates, or a
 * context that never serves one, costs nothing. */
static int cache_alloc(tf_tls__cache_t *c)
{
    uint32_t n = 1;
    while (n < 2 * c->cap)
        n *= 2;
    c->slots = calloc(c->cap, sizeof *c->slots);
    c->buckets = malloc(n * sizeof *c->buckets);
    c->door = calloc(n, sizeof *c->door);
    if (c->slots == NULL || c->buckets == NULL || c->door == NULL) {
        free(c->slots);
        free(c->buckets);
        free(c->door);
        c->slots = NULL;
        c->buckets = NULL;
        c->door = NULL;
        return TF_ENOMEM;
    }
    c->nbuckets = c->ndoor = n;
    for (uint32_t i = 0; i < n; i++)
        c->buckets[i] = NIL;
    for (uint32_t i = 0; i < c->cap; i++)
        c->slots[i] = (tf_tls__slot_t){.prev = NIL, .next = NIL, .chain = NIL};
    return 0;
}

bool tf_tls__cache_admit(tf_tls__cache_t *c, const tf_cs_bundle_t *b)
{
    if (c->eager)
        return true;
    /* Without memory for the table, admitting is what the cache did
     * before it had one; put will fail the same way and the caller
     * falls back. */
    if (c->slots == NULL && cache_alloc(c) != 0)
        return true;
    const void **d = &c->door[bucket_of(c, b) & (c->ndoor - 1)];
    if (*d == b) {
        *d = NULL;
        return true;
    }
    *d = b;
    c->stats.first_sights++;
    return false;
}

int tf_tls__cache_put(tf_tls__cache_t *c, const tf_cs_bundle_t *b, WOLFSSL_CTX *wctx)
{
    if (c->slots == NULL && cache_alloc(c) != 0)
        return TF_ENOMEM;
    /* Slots fill in order and an eviction reuses its slot at once, so
     * the free ones are those from `used` on. */
    uint32_t i;
    if (c->used < c->cap) {
        i = c->used;
        assert(c->slots[i].bundle == NULL);
    } else {
        i = c->tail;
        slot_clear(c, i);
        c->stats.evictions++;
    }
    tf_tls__slot_t *s = &c->slots[i];
    s->bundle = tf_cs_bundle_ref((tf_cs_bundle_t *)b);
    s->wctx = wctx;
    uint32_t *head = &c->buckets[bucket_of(c, b)];
    s->chain = *head;
    *head = i;
    list_push_front(c, i);
    c->used++;
    return 0;
}

void tf_tls__cache_dispose(tf_tls__cache_t *c)
{
    if (c->slots != NULL) {
        while (c->head != NIL)
            slot_clear(c, c->head);
    }
    free(c->slots);
    free(c->buckets);
    free(c->door);
    c->slots = NULL;
    c->buckets = NULL;
    c->door = NULL;
}

void tf_tls__cache_stats(const tf_tls_ctx_t *ctx, tf_tls__cache_stats_t *out)
{
    *out = ctx->cache.stats;
    out->size = ctx->cache.used;
    out->cap = ctx->cache.cap;
}
