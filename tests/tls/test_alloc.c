/* tls/alloc.c: the per-thread cache of wolfSSL's record buffers. A block
 * freed by a caching thread serves the next request of its class; other
 * sizes and other threads go straight to malloc; cleanup frees what is
 * kept (the sanitizer build's leak check holds it to that). */
#include "tls/tls.h"

#include <criterion/criterion.h>
#include <malloc.h>
#include <wolfssl/options.h>
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

Test(tls_alloc, a_freed_record_buffer_serves_the_next_of_its_class)
{
    tf_tls_thread_init();
    void *p = wolfSSL_Malloc(1500);
    cr_assert_not_null(p);
    cr_expect_geq(malloc_usable_size(p), 2048, "allocated at its class's size");
    wolfSSL_Free(p);
    void *q = wolfSSL_Malloc(1900);
    cr_expect_eq(q, p, "the same class: the kept block");
    void *r = wolfSSL_Malloc(1100);
    cr_expect_neq(r, p);
    wolfSSL_Free(q);
    wolfSSL_Free(r);
}

Test(tls_alloc, classes_are_powers_of_two_from_2_to_32_kib)
{
    tf_tls_thread_init();
    void *p = wolfSSL_Malloc(20000);
    cr_expect_geq(malloc_usable_size(p), 32768);
    wolfSSL_Free(p);
    cr_expect_eq(wolfSSL_Malloc(16385), p);
    wolfSSL_Free(p);
    /* A smaller class is not served from a larger one's blocks... */
    void *s = wolfSSL_Malloc(3000);
    cr_expect_neq(s, p);
    cr_expect_geq(malloc_usable_size(s), 4096);
    wolfSSL_Free(s);
}

Test(tls_alloc, small_and_large_blocks_are_plain_malloc)
{
    tf_tls_thread_init();
    void *small = wolfSSL_Malloc(1000), *large = wolfSSL_Malloc(40000);
    cr_expect_lt(malloc_usable_size(small), 2048);
    cr_expect_lt(malloc_usable_size(large), 65536);
    wolfSSL_Free(small);
    wolfSSL_Free(large);
}

Test(tls_alloc, at_most_two_blocks_are_kept_per_class)
{
    tf_tls_thread_init();
    void *b[3];
    for (int i = 0; i < 3; i++)
        b[i] = wolfSSL_Malloc(3000);
    for (int i = 0; i < 3; i++)
        wolfSSL_Free(b[i]);
    /* Kept: the first two freed, handed out last in, first out. */
    cr_expect_eq(wolfSSL_Malloc(3000), b[1]);
    cr_expect_eq(wolfSSL_Malloc(3000), b[0]);
    wolfSSL_Free(b[0]);
    wolfSSL_Free(b[1]);
}

Test(tls_alloc, a_thread_that_does_not_cache_gets_malloc_sizes)
{
    void *p = wolfSSL_Malloc(1500);
    cr_expect_lt(malloc_usable_size(p), 2048);
    wolfSSL_Free(p);
    tf_tls_thread_init();
    p = wolfSSL_Malloc(1500);
    wolfSSL_Free(p);
    tf_tls_thread_cleanup(); /* frees the kept block and stops caching */
    void *q = wolfSSL_Malloc(1500);
    cr_expect_lt(malloc_usable_size(q), 2048);
    wolfSSL_Free(q);
}
