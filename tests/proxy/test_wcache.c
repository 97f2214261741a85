/* The per-loop block cache (proxy/net/wcache.h): blocks come back by size
 * class, the cache keeps no more than its bound, and the allocator it gives
 * libnghttp2 keeps calloc's and realloc's contracts. */
#include "proxy/net/wcache.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

/* Under AddressSanitizer the cache keeps nothing (wcache.h). */
static void need_caching(void)
{
    if (!TF_WCACHE_ENABLED)
        cr_skip_test("the cache is off under AddressSanitizer");
}

Test(wcache, a_freed_block_serves_the_next_request_of_its_class)
{
    need_caching();
    tf_wcache_t c = {0};
    void *a = tf_wcache_alloc(&c, 100);
    cr_assert_not_null(a);
    memset(a, 0xab, 128); /* the whole class is the block's */
    tf_wcache_free(&c, a, 100);
    cr_expect_eq(c.bytes, 128u);
    void *b = tf_wcache_alloc(&c, 120); /* same class: 65..128 bytes */
    cr_expect_eq(b, a);
    cr_expect_eq(c.bytes, 0u);
    void *d = tf_wcache_alloc(&c, 100); /* the list is empty again: a new block */
    cr_expect_neq(d, a);
    tf_wcache_free(&c, b, 120);
    tf_wcache_free(&c, d, 100);
    tf_wcache_dispose(&c);
    cr_expect_eq(c.bytes, 0u);
}

Test(wcache, calloc_zeroes_a_reused_block)
{
    need_caching();
    tf_wcache_t c = {0};
    uint8_t *a = tf_wcache_alloc(&c, 64);
    memset(a, 0xff, 64);
    tf_wcache_free(&c, a, 64);
    uint8_t *b = tf_wcache_calloc(&c, 64);
    cr_assert_eq(b, a);
    for (size_t i = 0; i < 64; i++)
        cr_assert_eq(b[i], 0, "byte %zu", i);
    tf_wcache_free(&c, b, 64);
    tf_wcache_dispose(&c);
}

Test(wcache, large_blocks_and_blocks_past_the_bound_go_back_to_malloc)
{
    need_caching();
    tf_wcache_t c = {0};
    void *big = tf_wcache_alloc(&c, TF_WCACHE_LARGEST + 1);
    cr_assert_not_null(big);
    tf_wcache_free(&c, big, TF_WCACHE_LARGEST + 1);
    cr_expect_eq(c.bytes, 0u);
    /* Fill the cache to its bound with the largest class, then one more. */
    size_t n = TF_WCACHE_MAX_BYTES / TF_WCACHE_LARGEST + 1;
    void **blocks = calloc(n, sizeof *blocks);
    for (size_t i = 0; i < n; i++)
        blocks[i] = tf_wcache_alloc(&c, TF_WCACHE_LARGEST);
    for (size_t i = 0; i < n; i++)
        tf_wcache_free(&c, blocks[i], TF_WCACHE_LARGEST);
    cr_expect_eq(c.bytes, (size_t)TF_WCACHE_MAX_BYTES);
    free(blocks);
    tf_wcache_dispose(&c);
}

/* Off (AddressSanitizer): a freed block goes back to free() at once, so
 * that a use after free is reported, not absorbed by a cached block. */
Test(wcache, off_it_keeps_nothing)
{
    if (TF_WCACHE_ENABLED)
        cr_skip_test("the cache is on outside AddressSanitizer");
    tf_wcache_t c = {0};
    void *a = tf_wcache_alloc(&c, 200);
    tf_wcache_free(&c, a, 200);
    cr_expect_eq(c.bytes, 0u);
    for (size_t k = 0; k < TF_WCACHE_CLASSES; k++)
        cr_expect_null(c.free[k]);
}

Test(wcache, the_nghttp2_allocator_keeps_calloc_and_realloc_contracts)
{
    tf_wcache_t c = {0};
    nghttp2_mem m = tf_wcache_nghttp2_mem(&c);
    uint8_t *p = m.malloc(40, m.mem_user_data);
    cr_assert_not_null(p);
    cr_expect_eq((uintptr_t)p % 16, 0u, "aligned for any type");
    for (int i = 0; i < 40; i++)
        p[i] = (uint8_t)i;
    /* Growing keeps the bytes, within the class and past it. */
    p = m.realloc(p, 44, m.mem_user_data);
    p = m.realloc(p, 3000, m.mem_user_data);
    cr_assert_not_null(p);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(p[i], (uint8_t)i, "byte %d", i);
    memset(p, 0x5a, 3000);
    /* Shrinking keeps the bytes (a large block stays where it is). */
    p = m.realloc(p, 10, m.mem_user_data);
    cr_assert_eq(p[9], 0x5a);
    m.free(p, m.mem_user_data);
    uint8_t *z = m.calloc(10, 7, m.mem_user_data);
    for (int i = 0; i < 70; i++)
        cr_assert_eq(z[i], 0, "byte %d", i);
    m.free(z, m.mem_user_data);
    /* A large block comes from malloc, with its size kept the same way. */
    uint8_t *f = m.malloc(16408, m.mem_user_data);
    cr_assert_not_null(f);
    memset(f, 1, 16408);
    f = m.realloc(f, 20000, m.mem_user_data);
    cr_assert_not_null(f);
    cr_expect_eq(f[16407], 1);
    m.free(f, m.mem_user_data);
    cr_expect_null(m.realloc(m.malloc(8, m.mem_user_data), 0, m.mem_user_data));
    m.free(NULL, m.mem_user_data);
    tf_wcache_dispose(&c);
}
