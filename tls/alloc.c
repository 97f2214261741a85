/* wolfSSL's allocations, with a small per-thread cache for record buffers.
 *
 * wolfSSL grows a session's output buffer for each record it builds that
 * does not fit its few static bytes, and frees it once the record is sent:
 * a keep-alive response of 1 KiB costs one malloc and one free of about
 * 1.2 KB. That is over the largest size glibc's per-thread cache keeps
 * (1,032 bytes), so each took malloc's slow path: about 630 instructions
 * per request, 4.5% of the proxy's user-space work (callgrind). Worker
 * threads keep up to two freed blocks per power-of-two size class from
 * 1 to 32 KiB and hand them back out; every other thread, and every other
 * size, goes straight to malloc. */
#include "tls/tls_internal.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/memory.h>

#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>

/* Size classes by the power of two at or below a size, from past glibc's
 * own per-thread cache (1,032 bytes) to 32 KiB; two blocks kept in each. */
enum { CLASSES = 5, KEEP = 2 };
static const size_t class_floor[CLASSES + 1] = {1033, 2048, 4096, 8192, 16384, 32769};

typedef struct {
    void *block[KEEP];
    unsigned n;
} bin_t;

static _Thread_local bool caching;
static _Thread_local bin_t bins[CLASSES];

/* The class of n bytes, or CLASSES: small blocks are glibc's cache's
 * business, large ones too rare to keep. */
static unsigned class_of(size_t n)
{
    if (n < class_floor[0] || n >= class_floor[CLASSES])
        return CLASSES;
    unsigned c = 0;
    while (n >= class_floor[c + 1])
        c++;
    return c;
}

/* Sizes are not rounded up: a block that lives long (a session's own
 * state) costs what it asked for. A kept block serves a request of its
 * class that it is large enough for, which a record of the same size as
 * the last always is. */
static void *cached_malloc(size_t n)
{
    unsigned c = caching ? class_of(n) : CLASSES;
    if (c != CLASSES) {
        bin_t *b = &bins[c];
        for (unsigned i = b->n; i-- > 0;) {
            void *p = b->block[i];
            if (malloc_usable_size(p) >= n) {
                b->block[i] = b->block[--b->n];
                return p;
            }
        }
    }
    return malloc(n);
}

static void cached_free(void *p)
{
    if (p == NULL)
        return;
    unsigned c = caching ? class_of(malloc_usable_size(p)) : CLASSES;
    if (c == CLASSES || bins[c].n == KEEP) {
        free(p);
        return;
    }
    bins[c].block[bins[c].n++] = p;
}

int tf_tls__alloc_install(void)
{
    return wolfSSL_SetAllocators(cached_malloc, cached_free, realloc) == 0 ? 0 : -1;
}

void tf_tls_thread_init(void)
{
    caching = true;
}

unsigned tf_tls__alloc_kept(void)
{
    unsigned n = 0;
    for (unsigned c = 0; c < CLASSES; c++)
        n += bins[c].n;
    return n;
}

void tf_tls__alloc_thread_cleanup(void)
{
    caching = false;
    for (unsigned c = 0; c < CLASSES; c++) {
        while (bins[c].n > 0)
            free(bins[c].block[--bins[c].n]);
    }
}
