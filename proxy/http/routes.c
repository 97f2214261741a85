/* A tenant's route table (SPEC §11): longest prefix by one hash lookup per
 * candidate boundary of the normalized path, whatever the number of routes.
 *
 * A prefix is stored under its key, the prefix without its trailing slash
 * ("/api/" and "/api" both under "/api", "/" under ""), with the route of
 * each spelling. At every '/' of the path, the path before it is looked up:
 * there "/api/" (it starts the path) and "/api" (it is followed by '/')
 * both match, and the slash one is the longer. The whole path is looked up
 * last, for a prefix without slash that equals it. The longest match is the
 * last found. The hash is computed as the path is read, so the cost is
 * linear in the path's length. */
#include "proxy/http/http_internal.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *key; /* NULL: an empty slot */
    uint32_t klen;
    uint32_t hash;
    int32_t slash; /* the route KEY + "/", or -1 */
    int32_t bare;  /* the route KEY, or -1 */
} slot_t;

struct tf_http_routes {
    slot_t *slots;
    uint32_t mask;
    uint32_t maxlen; /* the longest key: no lookup past it */
};

/* FNV-1a, fed a byte at a time as the path is read. */
#define HASH_START 2166136261u
static inline uint32_t hash_step(uint32_t h, unsigned char c)
{
    return (h ^ c) * 16777619u;
}

static uint32_t hash_of(const char *s, size_t n)
{
    uint32_t h = HASH_START;
    for (size_t i = 0; i < n; i++)
        h = hash_step(h, (unsigned char)s[i]);
    return h;
}

static const slot_t *lookup(const tf_http_routes_t *t, const char *key, size_t klen, uint32_t h,
                            tf_http__match_stats_t *stats)
{
    if (stats != NULL)
        stats->lookups++;
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const slot_t *s = &t->slots[i];
        if (stats != NULL)
            stats->probes++;
        if (s->key == NULL)
            return NULL;
        if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)
            return s;
    }
}

/* The slot of KEY, found or new (the table is never more than half full). */
static slot_t *slot_for(tf_http_routes_t *t, const char *key, size_t klen)
{
    uint32_t h = hash_of(key, klen);
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        slot_t *s = &t->slots[i];
        if (s->key == NULL) {
            *s = (slot_t){.key = key, .klen = (uint32_t)klen, .hash = h, .slash = -1, .bare = -1};
            return s;
        }
        if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)
            return s;
    }
}

int tf_http_routes_new(const tf_conf_route_t *routes, size_t n, tf_http_routes_t **out)
{
    if (n == 0 || n > INT32_MAX / 4 || strcmp(routes[0].path, "/") != 0)
        return TF_EINVAL;
    uint32_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    tf_http_routes_t *t = calloc(1, sizeof *t);
    slot_t *slots = calloc(cap, sizeof *slots);
    if (t == NULL || slots == NULL) {
        free(slots);
        free(t);
        return TF_ENOMEM;
    }
    t->slots = slots;
    t->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        const char *p = routes[i].path;
        size_t len = strlen(p);
        if (len == 0 || p[0] != '/' || len > UINT32_MAX) {
            tf_http_routes_free(t);
            return TF_EINVAL;
        }
        bool slash = p[len - 1] == '/';
        size_t klen = slash ? len - 1 : len;
        slot_t *s = slot_for(t, p, klen);
        int32_t *idx = slash ? &s->slash : &s->bare;
        if (*idx >= 0) {
            tf_http_routes_free(t);
            return TF_EINVAL; /* the same prefix twice */
        }
        *idx = (int32_t)i;
        if (klen > t->maxlen)
            t->maxlen = (uint32_t)klen;
    }
    *out = t;
    return 0;
}

void tf_http_routes_free(tf_http_routes_t *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t);
}

uint32_t tf_http__routes_match_stats(const tf_http_routes_t *t, const char *npath, size_t len,
                                     tf_http__match_stats_t *stats)
{
    uint32_t best = 0; /* "/", under the key "", matches every path */
    uint32_t h = HASH_START;
    size_t i = 0;
    if (len > 0 && npath[0] == '/') {
        h = hash_step(h, '/');
        i = 1;
    }
    for (; i < len && i <= t->maxlen; i++) {
        if (npath[i] == '/') {
            const slot_t *s = lookup(t, npath, i, h, stats);
            if (s != NULL)
                best = (uint32_t)(s->slash >= 0 ? s->slash : s->bare);
        }
        h = hash_step(h, (unsigned char)npath[i]);
    }
    if (len > 1 && len <= t->maxlen && npath[len - 1] != '/') {
        const slot_t *s = lookup(t, npath, len, h, stats);
        if (s != NULL && s->bare >= 0)
            best = (uint32_t)s->bare;
    }
    return best;
}

uint32_t tf_http_routes_match(const tf_http_routes_t *t, const char *npath, size_t len)
{
    return tf_http__routes_match_stats(t, npath, len, NULL);
}
