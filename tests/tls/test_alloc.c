/* tls/alloc.c: the per-thread cache of wolfSSL's record buffers. A block
 * freed by a caching thread serves the next request of its size class that
 * it is large enough for; sizes are never rounded up; other sizes and
 * other threads go straight to malloc; cleanup frees what is kept (the
 * sanitizer build's leak check holds it to that). */
#include "tls/tls_internal.h"

#include <criterion/criterion.h>
#include <malloc.h>
#include <wolfssl/wolfcrypt/memory.h>

static void setup(void)
{
    cr_assert_eq(tf_tls_global_init(), 0);
}

static void teardown(void)
{
    tf_tls_thread_cleanup();
    tf_tls_global_cleanup();
}

TestSuite(tls_alloc, .init = setup, .fini = teardown, .timeout = 10);

Test(tls_alloc, a_freed_record_buffer_serves_the_next_of_its_size)
{
    tf_tls_thread_init();
    void *p = wolfSSL_Malloc(1500);
    cr_assert_not_null(p);
    wolfSSL_Free(p);
    cr_expect_eq(tf_tls__alloc_kept(), 1);
    cr_expect_eq(wolfSSL_Malloc(1500), p, "the kept block");
    cr_expect_eq(tf_tls__alloc_kept(), 0);
    wolfSSL_Free(p);
}

Test(tls_alloc, a_kept_block_too_small_for_a_request_stays_kept)
{
    tf_tls_thread_init();
    void *p = wolfSSL_Malloc(1100);
    wolfSSL_Free(p);
    void *q = wolfSSL_Malloc(2000); /* the same class, more than p holds */
    cr_expect_neq(q, p);
    cr_expect_geq(malloc_usable_size(q), 2000);
    cr_expect_eq(tf_tls__alloc_kept(), 1);
    cr_expect_eq(wolfSSL_Malloc(1100), p);
    wolfSSL_Free(p);
    wolfSSL_Free(q);
}

Test(tls_alloc, sizes_are_not_rounded_up)
{
    tf_tls_thread_init();
    /* A session's own state lives as long as the connection: it must cost
     * what it asks for, not the next power of two. */
    void *p = wolfSSL_Malloc(3071);
    cr_expect_lt(malloc_usable_size(p), 3071 + 32);
    wolfSSL_Free(p);
}

Test(tls_alloc, small_and_large_blocks_are_not_kept)
{
    tf_tls_thread_init();
    wolfSSL_Free(wolfSSL_Malloc(1000));
    wolfSSL_Free(wolfSSL_Malloc(40000));
    cr_expect_eq(tf_tls__alloc_kept(), 0);
    wolfSSL_Free(wolfSSL_Malloc(30000));
    cr_expect_eq(tf_tls__alloc_kept(), 1, "up to 32 KiB: kept");
}

Test(tls_alloc, at_most_two_blocks_are_kept_per_class)
{
    tf_tls_thread_init();
    void *b[3];
    for (int i = 0; i < 3; i++)
        b[i] = wolfSSL_Malloc(3000);
    for (int i = 0; i < 3; i++)
        wolfSSL_Free(b[i]);
    cr_expect_eq(tf_tls__alloc_kept(), 2);
    void *x = wolfSSL_Malloc(3000), *y = wolfSSL_Malloc(3000);
    cr_expect((x == b[0] || x == b[1]) && (y == b[0] || y == b[1]) && x != y);
    wolfSSL_Free(x);
    wolfSSL_Free(y);
}

Test(tls_alloc, only_a_thread_that_asked_keeps_blocks)
{
    wolfSSL_Free(wolfSSL_Malloc(1500));
    cr_expect_eq(tf_tls__alloc_kept(), 0);
    tf_tls_thread_init();
    wolfSSL_Free(wolfSSL_Malloc(1500));
    cr_expect_eq(tf_tls__alloc_kept(), 1);
    tf_tls_thread_cleanup(); /* frees what is kept and stops keeping */
    cr_expect_eq(tf_tls__alloc_kept(), 0);
    wolfSSL_Free(wolfSSL_Malloc(1500));
    cr_expect_eq(tf_tls__alloc_kept(), 0);
}
