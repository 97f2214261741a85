/* wolfSSL's allocations, with a small per-thread cache for record buffers.
 *
 * wolfSSL grows a session's output buffer for each record it builds that
 * does not fit its few static bytes, and frees it once the record is sent:
 * a keep-alive response of 1 KiB costs one malloc and one free of about
 * 1.2 KB. That is over the largest size glibc's per-thread cache keeps
 * (1,032 bytes), so each took malloc's slow path: about 630 instructions
 * per request, 4.5% of the proxy's user-space work (callgrind). Worker
 * threads keep up to two freed blocks per power-of-two class from 2 to
 * 32 KiB and hand them back out; every other thread, and every other size,
 * goes straight to malloc. */
#include "tls/tls_internal.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/memory.h>

#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>

enum { CLASS_MIN_SHIFT = 11, CLASSES = 5, KEEP = 2 }; /* 2, 4, 8, 16, 32 KiB; two each */

typedef struct {
    void *block[KEEP];
    unsigned n;
} bin_t;

static _Thread_local bool caching;
static _Thread_local bin_t bins[CLASSES];

static size_t class_size(unsigned c)
{
    return (size_t)1 << (CLASS_MIN_SHIFT + c);
}

/* The class that serves n bytes, or CLASSES when none does: small blocks
 * are glibc's own cache's business, large ones too rare to keep. */
static unsigned class_for_request(size_t n)
{
    if (n <= 1032 || n > class_size(CLASSES - 1))
        return CLASSES;
    unsigned c = 0;
    while (class_size(c) < n)
        c++;
    return c;
}

/* The largest class a block of `usable` bytes can serve, or CLASSES. */
static unsigned class_for_block(size_t usable)
{
    if (usable < class_size(0) || usable >= 2 * class_size(CLASSES - 1))
        return CLASSES;
    unsigned c = CLASSES - 1;
    while (class_size(c) > usable)
        c--;
    return c;
}

static void *cached_malloc(size_t n)
{
    unsigned c = caching ? class_for_request(n) : CLASSES;
    if (c == CLASSES)
        return malloc(n);
    if (bins[c].n > 0)
        return bins[c].block[--bins[c].n];
    return malloc(class_size(c));
}

static void cached_free(void *p)
{
    if (p == NULL)
        return;
    unsigned c = caching ? class_for_block(malloc_usable_size(p)) : CLASSES;
    if (c == CLASSES || bins[c].n == KEEP) {
        free(p);
        return;
    }
    bins[c].block[bins[c].n++] = p;
}

static void *plain_realloc(void *p, size_t n)
{
    return realloc(p, n);
}

int tf_tls__alloc_install(void)
{
    return wolfSSL_SetAllocators(cached_malloc, cached_free, plain_realloc) == 0 ? 0 : -1;
}

void tf_tls_thread_init(void)
{
    caching = true;
}

void tf_tls__alloc_thread_cleanup(void)
{
    caching = false;
    for (unsigned c = 0; c < CLASSES; c++) {
        while (bins[c].n > 0)
            free(bins[c].block[--bins[c].n]);
    }
}
