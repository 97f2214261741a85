/* See wcache.h. */
#include "proxy/net/wcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The class of a cacheable size (1 .. TF_WCACHE_LARGEST). */
static size_t class_of(size_t size)
{
    return (size - 1) / TF_WCACHE_STEP;
}

static size_t class_size(size_t k)
{
    return (k + 1) * TF_WCACHE_STEP;
}

void *tf_wcache_alloc(tf_wcache_t *c, size_t size)
{
    if (!TF_WCACHE_ENABLED || size == 0 || size > TF_WCACHE_LARGEST)
        return malloc(size > 0 ? size : 1);
    size_t k = class_of(size);
    void *p = c->free[k];
    if (p == NULL)
        return malloc(class_size(k)); /* the whole class: any block serves it later */
    memcpy(&c->free[k], p, sizeof(void *));
    c->bytes -= class_size(k);
    return p;
}

void *tf_wcache_calloc(tf_wcache_t *c, size_t size)
{
    void *p = tf_wcache_alloc(c, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

void tf_wcache_free(tf_wcache_t *c, void *p, size_t size)
{
    if (p == NULL)
        return;
    if (!TF_WCACHE_ENABLED || size == 0 || size > TF_WCACHE_LARGEST ||
        c->bytes + class_size(class_of(size)) > TF_WCACHE_MAX_BYTES) {
        free(p);
        return;
    }
    size_t k = class_of(size);
    memcpy(p, &c->free[k], sizeof(void *));
    c->free[k] = p;
    c->bytes += class_size(k);
}

void tf_wcache_dispose(tf_wcache_t *c)
{
    for (size_t k = 0; k < TF_WCACHE_CLASSES; k++) {
        void *p = c->free[k];
        while (p != NULL) {
            void *next;
            memcpy(&next, p, sizeof next);
            free(p);
            p = next;
        }
        c->free[k] = NULL;
    }
    c->bytes = 0;
}

/* ---- libnghttp2's allocator ---------------------------------------------- */

/* The prefix keeps max_align_t's alignment for what follows it. */
#define PREFIX 16u

static void *ng_malloc(size_t size, void *ud)
{
    if (size > SIZE_MAX - PREFIX)
        return NULL;
    size_t total = size + PREFIX;
    uint8_t *b = tf_wcache_alloc(ud, total);
    if (b == NULL)
        return NULL;
    memcpy(b, &total, sizeof total);
    return b + PREFIX;
}

static void ng_free(void *p, void *ud)
{
    if (p == NULL)
        return;
    uint8_t *b = (uint8_t *)p - PREFIX;
    size_t total;
    memcpy(&total, b, sizeof total);
    tf_wcache_free(ud, b, total);
}

static void *ng_calloc(size_t n, size_t size, void *ud)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = ng_malloc(n * size, ud);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

static void *ng_realloc(void *p, size_t size, void *ud)
{
    if (p == NULL)
        return ng_malloc(size, ud);
    if (size == 0) {
        ng_free(p, ud);
        return NULL;
    }
    size_t total;
    memcpy(&total, (uint8_t *)p - PREFIX, sizeof total);
    size_t old = total - PREFIX;
    if (size <= old && (total > TF_WCACHE_LARGEST || class_of(size + PREFIX) == class_of(total)))
        return p;
    void *q = ng_malloc(size, ud);
    if (q == NULL)
        return NULL;
    memcpy(q, p, old < size ? old : size);
    ng_free(p, ud);
    return q;
}

nghttp2_mem tf_wcache_nghttp2_mem(tf_wcache_t *c)
{
    return (nghttp2_mem){c, ng_malloc, ng_free, ng_calloc, ng_realloc};
}
