/* SHA-256 of the bundled wolfSSL, which runs the x86 SHA extensions where
 * the CPU has them (its own code since 5.7.0; on bookworm's 5.5.4,
 * scripts/wolfssl-patches/bookworm/sha256-shani.patch) and its AVX2 code
 * otherwise. Every TLS handshake's transcript, key schedule and random
 * numbers go through it, so it is checked against FIPS 180-4's examples,
 * RFC 4231's HMAC, and a plain C reference on random messages fed in random
 * pieces. ctest runs this twice: as the CPU allows, and with
 * TLSFRONT_SHA256_NO_SHANI=1 (the AVX2 path). */
#include <wolfssl/options.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/cpuid.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a reference: FIPS 180-4 §6.2, one block at a time, nothing clever ---- */

static const uint32_t k_ref[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void ref_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 =
            hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + k_ref[t] + w[t];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

static void ref_sha256(const uint8_t *m, size_t n, uint8_t out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        ref_block(h, m + i);
    uint8_t last[128] = {0};
    size_t r = n - i;
    memcpy(last, m + i, r);
    last[r] = 0x80;
    size_t blocks = r < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)n * 8;
    for (int j = 0; j < 8; j++)
        last[blocks * 64 - 1 - (size_t)j] = (uint8_t)(bits >> (8 * j));
    for (size_t j = 0; j < blocks; j++)
        ref_block(h, last + 64 * j);
    for (int j = 0; j < 8; j++) {
        out[4 * j] = (uint8_t)(h[j] >> 24);
        out[4 * j + 1] = (uint8_t)(h[j] >> 16);
        out[4 * j + 2] = (uint8_t)(h[j] >> 8);
        out[4 * j + 3] = (uint8_t)h[j];
    }
}

/* ---- helpers --------------------------------------------------------------- */

static void to_hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void wolf_sha256(const uint8_t *m, size_t n, uint8_t out[32])
{
    wc_Sha256 s;
    cr_assert_eq(wc_InitSha256(&s), 0);
    cr_assert_eq(wc_Sha256Update(&s, m, (word32)n), 0);
    cr_assert_eq(wc_Sha256Final(&s, out), 0);
    wc_Sha256Free(&s);
}

static void expect_digest(const uint8_t *m, size_t n, const char *want)
{
    uint8_t d[32];
    char hex[65];
    wolf_sha256(m, n, d);
    to_hex(d, 32, hex);
    cr_expect_str_eq(hex, want, "SHA-256 of %zu bytes", n);
}

/* ---- tests ----------------------------------------------------------------- */

/* TLSFRONT_SHA256_NO_SHANI switches the 5.5.4 patch's path only; wolfSSL's
 * own SHA-NI code (5.7.0 on) follows its CPUID flags, so hide the extension
 * from them before the first hash picks the path. */
static void pick_path(void)
{
#if defined(CPUID_SHA) && LIBWOLFSSL_VERSION_HEX >= 0x05007000
    if (getenv("TLSFRONT_SHA256_NO_SHANI") != NULL) {
        (void)cpuid_get_flags();
        cpuid_clear_flag(CPUID_SHA);
    }
#endif
}

TestSuite(sha256, .init = pick_path);

Test(sha256, fips_180_examples)
{
    expect_digest((const uint8_t *)"", 0,
                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_digest((const uint8_t *)"abc", 3,
                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect_digest((const uint8_t *)two, strlen(two),
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    size_t n = 1000000;
    uint8_t *a = malloc(n);
    cr_assert_not_null(a);
    memset(a, 'a', n);
    expect_digest(a, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

Test(sha256, hmac_rfc4231)
{
    /* RFC 4231 test case 2: what TLS 1.3's HKDF is made of. */
    Hmac h;
    uint8_t mac[32];
    char hex[65];
    const char *msg = "what do ya want for nothing?";
    cr_assert_eq(wc_HmacInit(&h, NULL, INVALID_DEVID), 0);
    cr_assert_eq(wc_HmacSetKey(&h, WC_SHA256, (const byte *)"Jefe", 4), 0);
    cr_assert_eq(wc_HmacUpdate(&h, (const byte *)msg, (word32)strlen(msg)), 0);
    cr_assert_eq(wc_HmacFinal(&h, mac), 0);
    wc_HmacFree(&h);
    to_hex(mac, 32, hex);
    cr_expect_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

Test(sha256, random_messages_in_random_pieces)
{
    /* Lengths around every block boundary and pieces of every size, so
     * both the one-block and the many-block entry points, and the
     * buffering between them, are compared with the reference. */
    enum { MAXLEN = 4500, ROUNDS = 3000 };
    uint8_t *m = malloc(MAXLEN);
    cr_assert_not_null(m);
    srand(20261125);
    int bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        size_t n = r < 200 ? (size_t)r : (size_t)rand() % MAXLEN;
        for (size_t i = 0; i < n; i++)
            m[i] = (uint8_t)rand();
        uint8_t want[32], got[32];
        ref_sha256(m, n, want);
        wc_Sha256 s;
        cr_assert_eq(wc_InitSha256(&s), 0);
        size_t off = 0;
        while (off < n) {
            size_t piece = (size_t)rand() % (r % 3 == 0 ? 8 : r % 3 == 1 ? 100 : 1500) + 1;
            if (piece > n - off)
                piece = n - off;
            cr_assert_eq(wc_Sha256Update(&s, m + off, (word32)piece), 0);
            off += piece;
        }
        /* GetHash leaves the state running, as the TLS transcript uses it. */
        uint8_t mid[32];
        cr_assert_eq(wc_Sha256GetHash(&s, mid), 0);
        cr_assert_eq(wc_Sha256Final(&s, got), 0);
        wc_Sha256Free(&s);
        if (memcmp(want, got, 32) != 0 || memcmp(want, mid, 32) != 0) {
            if (bad++ < 5)
                cr_log_error("length %zu: digest differs from the reference", n);
        }
    }
    free(m);
    cr_expect_eq(bad, 0, "%d of %d digests differ", bad, ROUNDS);
}
