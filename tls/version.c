#include "tls/tls_internal.h"

#include "common/err.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>

#ifdef HAVE_INTEL_RDRAND
#include <wolfssl/wolfcrypt/random.h>

#include <stdint.h>

/* Built with --enable-intelrand, wolfSSL hands out RDRAND output as is, with
 * no DRBG after it and no check (its Hash_DRBG is used only when the CPU has
 * no RDRAND). CPUs have shipped whose RDRAND returned all ones while
 * reporting success (AMD families 15h/16h after a resume, early Zen 2
 * firmware); an ECDSA nonce from such a source gives the key away. So a
 * process refuses to start when sixteen 64-bit words are not all distinct,
 * or one is all zeros or all ones (a false alarm has odds of about 2^-56). */
static int rng_self_check(void)
{
    WC_RNG rng;
    uint64_t w[16];
    if (wc_InitRng(&rng) != 0)
        return TF_ETLS;
    int rc = wc_RNG_GenerateBlock(&rng, (byte *)w, sizeof w) == 0 ? 0 : TF_ETLS;
    wc_FreeRng(&rng);
    for (size_t i = 0; rc == 0 && i < 16; i++) {
        if (w[i] == 0 || w[i] == UINT64_MAX)
            rc = TF_ETLS;
        for (size_t j = i + 1; rc == 0 && j < 16; j++)
            if (w[i] == w[j])
                rc = TF_ETLS;
    }
    return rc;
}
#endif

int tf_tls_global_init(void)
{
    if (tf_tls__alloc_install() != 0 || wolfSSL_Init() != WOLFSSL_SUCCESS)
        return TF_ETLS;
#ifdef HAVE_INTEL_RDRAND
    if (rng_self_check() != 0) {
        wolfSSL_Cleanup();
        return TF_ETLS;
    }
#endif
    return 0;
}

void tf_tls_global_cleanup(void)
{
    wolfSSL_Cleanup();
}

const char *tf_tls_library_version(void)
{
    /* The runtime answer, not the header's: with TLSFRONT_WOLFSSL=system the
     * shared library may differ from the headers we compiled against. */
    return wolfSSL_lib_version();
}

const char *tf_tls_build_info(void)
{
    return TF_WOLFSSL_BUILD;
}

int tf_tls_has_fast_crypto(void)
{
#if defined(WOLFSSL_AESNI) && defined(WOLFSSL_SP_X86_64_ASM)
    return 1;
#else
    return 0;
#endif
}
