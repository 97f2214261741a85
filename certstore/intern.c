/* De-duplication of intermediate certificates across bundles.
 *
 * Thousands of tenants' bundles carry the same few intermediates (one per CA
 * in use). Each distinct DER is stored once as a reference-counted blob; the
 * table holds one reference on each and hands out more. A blob outlives the
 * table for as long as a bundle uses it, so neither order of teardown is
 * wrong. The lock is held only for the lookup, never during parsing.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "certstore/certstore_internal.h"

struct tf_cs_intern {
    pthread_mutex_t lock;
    tf_cs__blob_t **buckets;
    size_t n_buckets; /* a power of two */
    size_t count;
};

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;

    while (n--) {
        h ^= *p++;
        h *= 1099511628211ULL;
    }
    return h;
}

static tf_cs__blob_t *blob_new(const unsigned char *der, size_t len, uint64_t hash, unsigned refs)
{
    tf_cs__blob_t *b = malloc(sizeof *b + len);

    if (!b)
        return NULL;
    atomic_init(&b->refs, refs);
    b->hash = hash;
    b->next = NULL;
    b->len = len;
    memcpy(b->der, der, len);
    return b;
}

void tf_cs__blob_unref(tf_cs__blob_t *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

int tf_cs_intern_new(tf_cs_intern_t **out)
{
    tf_cs_intern_t *t;

    if (!out)
        return TF_EINVAL;
    *out = NULL;
    t = calloc(1, sizeof *t);
    if (!t)
        return TF_ENOMEM;
    t->n_buckets = 64;
    t->buckets = calloc(t->n_buckets, sizeof *t->buckets);
    if (!t->buckets || pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->buckets);
        free(t);
        return TF_ENOMEM;
    }
    *out = t;
    return 0;
}

void tf_cs_intern_free(tf_cs_intern_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        for (tf_cs__blob_t *b = t->buckets[i], *next; b; b = next) {
            next = b->next;
            tf_cs__blob_unref(b);
        }
    }
    pthread_mutex_destroy(&t->lock);
    free(t->buckets);
    free(t);
}

/* Doubles the bucket array; on allocation failure the table just stays
 * more crowded. Called with the lock held. */
static void grow(tf_cs_intern_t *t)
{
    size_t n = t->n_buckets * 2;
    tf_cs__blob_t **nb = calloc(n, sizeof *nb);

    if (!nb)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        for (tf_cs__blob_t *b = t->buckets[i], *next; b; b = next) {
            next = b->next;
            b->next = nb[b->hash & (n - 1)];
            nb[b->hash & (n - 1)] = b;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->n_buckets = n;
}

tf_cs__blob_t *tf_cs__intern(tf_cs_intern_t *t, const unsigned char *der, size_t len)
{
    uint64_t h = fnv1a(der, len);
    tf_cs__blob_t *b;

    if (!t)
        return blob_new(der, len, h, 1);
    pthread_mutex_lock(&t->lock);
    for (b = t->buckets[h & (t->n_buckets - 1)]; b; b = b->next) {
        if (b->hash == h && b->len == len && memcmp(b->der, der, len) == 0) {
            atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
            break;
        }
    }
    if (!b) {
        b = blob_new(der, len, h, 2); /* the table's reference and the caller's */
        if (b) {
            b->next = t->buckets[h & (t->n_buckets - 1)];
            t->buckets[h & (t->n_buckets - 1)] = b;
            if (++t->count > t->n_buckets)
                grow(t);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return b;
}

size_t tf_cs_intern_sweep(tf_cs_intern_t *t)
{
    size_t freed = 0;

    if (!t)
        return 0;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_buckets; i++) {
        tf_cs__blob_t **link = &t->buckets[i];

        while (*link) {
            tf_cs__blob_t *b = *link;

            /* Only the table holds it; nobody can take a new reference
             * without this lock, so it is safe to drop. */
            if (atomic_load_explicit(&b->refs, memory_order_acquire) == 1) {
                *link = b->next;
                free(b);
                t->count--;
                freed++;
            } else {
                link = &b->next;
            }
        }
    }
    pthread_mutex_unlock(&t->lock);
    return freed;
}

size_t tf_cs_intern_count(tf_cs_intern_t *t)
{
    size_t n;

    if (!t)
        return 0;
    pthread_mutex_lock(&t->lock);
    n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}
