/* proxy/ per-loop block cache (internal): recently freed blocks of the
 * data path's per-stream objects, kept by size class for the next stream
 * on the same loop.
 *
 * Why not malloc alone: glibc's per-thread cache keeps 7 blocks per size
 * and none above 1,032 bytes or from calloc, and an HTTP/2 connection's
 * wave of streams frees and allocates hundreds of blocks of the same few
 * sizes at once (the stream with its child connection, the exchange,
 * libnghttp2's stream and outbound items): the rest went through
 * _int_malloc and _int_free, 2,000 instructions of an HTTP/2 request's
 * 34,600 (bench/load/callgrind.sh with H2=1; docs/PERFORMANCE.md).
 *
 * Single-threaded: a cache belongs to one loop. Bounded: it keeps at most
 * TF_WCACHE_MAX_BYTES; what does not fit goes back to free(). Under
 * AddressSanitizer it keeps nothing (TF_WCACHE_ENABLED is 0): a block used
 * after its free must stay a report, not a recycled block.
 */
#ifndef TF_PROXY_WCACHE_H
#define TF_PROXY_WCACHE_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include <nghttp2/nghttp2.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define TF_WCACHE_ENABLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TF_WCACHE_ENABLED 0
#endif
#endif
#ifndef TF_WCACHE_ENABLED
#define TF_WCACHE_ENABLED 1
#endif

/* Blocks up to this size are cached, in classes of TF_WCACHE_STEP bytes. */
#define TF_WCACHE_STEP 64u
#define TF_WCACHE_LARGEST 2048u
#define TF_WCACHE_CLASSES (TF_WCACHE_LARGEST / TF_WCACHE_STEP)
/* What one loop's cache may hold: a wave of 1,000 streams' blocks. */
#define TF_WCACHE_MAX_BYTES (2u * 1024u * 1024u)

typedef struct tf_wcache {
    void *free[TF_WCACHE_CLASSES]; /* singly linked through each block's first word */
    size_t bytes;                  /* held in the lists */
} tf_wcache_t;

/* A block of size bytes (uninitialised) or NULL; free it with
 * tf_wcache_free() and the same size. */
void *tf_wcache_alloc(tf_wcache_t *c, size_t size);

/* As tf_wcache_alloc(), zeroed. */
void *tf_wcache_calloc(tf_wcache_t *c, size_t size);

/* Takes back a block from tf_wcache_alloc(c, size) (NULL: nothing). */
void tf_wcache_free(tf_wcache_t *c, void *p, size_t size);

/* Frees every cached block; the cache stays usable. */
void tf_wcache_dispose(tf_wcache_t *c);

/* An allocator for libnghttp2 (nghttp2_session_server_new3) drawing on c,
 * which must outlive every session made with it. Its blocks carry their
 * size in a 16-byte prefix, as nghttp2's free passes none. */
nghttp2_mem tf_wcache_nghttp2_mem(tf_wcache_t *c);

#endif
