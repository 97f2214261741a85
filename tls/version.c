#include "tls/tls.h"

#include "common/err.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>

int tf_tls_global_init(void)
{
    return wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : TF_ETLS;
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
