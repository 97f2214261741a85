/* The X25519 key share of every full handshake: the bundled wolfSSL
 * computes public keys from the fixed base (scripts/wolfssl-patches/<suite>/
 * x25519-fixed-base.patch). Checked against RFC 7748's vector and against
 * wolfSSL's own generic ladder on random keys, so a build that gets the
 * point conversion wrong cannot pass. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/random.h>

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static void from_hex(const char *h, unsigned char out[32])
{
    for (int i = 0; i < 32; i++)
        cr_assert_eq(sscanf(h + 2 * i, "%2hhx", &out[i]), 1);
}

static void clamp(unsigned char k[32])
{
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
}

Test(x25519, rfc7748_public_keys)
{
    /* RFC 7748 §6.1: Alice's and Bob's keys. */
    static const char *const vec[][2] = {
        {"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
         "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"},
        {"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
         "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"},
    };
    for (size_t i = 0; i < 2; i++) {
        unsigned char k[32], want[32], pub[32];
        from_hex(vec[i][0], k);
        from_hex(vec[i][1], want);
        clamp(k);
        cr_assert_eq(wc_curve25519_make_pub(32, pub, 32, k), 0);
        cr_expect_eq(memcmp(pub, want, 32), 0, "vector %zu", i);
    }
}

Test(x25519, public_keys_match_the_generic_ladder)
{
    WC_RNG rng;
    cr_assert_eq(wc_InitRng(&rng), 0);
    const unsigned char nine[32] = {9};
    for (int i = 0; i < 500; i++) {
        unsigned char k[32], a[32], b[32];
        cr_assert_eq(wc_RNG_GenerateBlock(&rng, k, sizeof k), 0);
        clamp(k);
        cr_assert_eq(wc_curve25519_make_pub(32, a, 32, k), 0);
        cr_assert_eq(wc_curve25519_generic(32, b, 32, k, 32, nine), 0);
        cr_assert_eq(memcmp(a, b, 32), 0, "key %d", i);
    }
    wc_FreeRng(&rng);
}
