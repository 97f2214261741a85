/* bench_crypto: the raw crypto speed of the linked wolfSSL, beside `openssl speed`.
 *
 * Each wolfSSL operation runs single-threaded for a fixed wall time; then, in the same
 * invocation, `openssl speed -mr` runs as a child process for the same operations, and a
 * table (or, with --json, one JSON object) compares the two. This is the first thing to
 * run when handshake or bulk figures look wrong: a generic C build of wolfSSL is 10-100x
 * slower than the assembly build the project links by default (SPEC §1, §10).
 *
 * Usage: bench_crypto [--seconds N] [--json] [--no-openssl] [--openssl PATH]
 * Pin it to one core (bench/crypto/run.sh uses taskset -c 1); the child inherits that. The
 * RSA key is made by wolfSSL when built with --enable-keygen, else by `openssl genrsa` into a
 * temporary file that is deleted at once: no private key is ever committed.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef TF_WOLFSSL_BUILD
#define TF_WOLFSSL_BUILD "unknown"
#endif

#define AES_BUF_SIZE (16 * 1024)

enum bench_op {
    OP_AES_GCM,
    OP_ECDSA_SIGN,
    OP_ECDH_P256,
    OP_ECDH_X25519,
    OP_X25519_KEYGEN,
    OP_RSA_SIGN,
    OP_SHA256,
    OP_COUNT
};

static const struct {
    const char *name;
    const char *unit;
} op_info[OP_COUNT] = {
    [OP_AES_GCM] = {"AES-128-GCM encrypt (16 KiB)", "MiB/s"},
    [OP_ECDSA_SIGN] = {"ECDSA P-256 sign", "sign/s"},
    [OP_ECDH_P256] = {"ECDH P-256 shared secret", "op/s"},
    [OP_ECDH_X25519] = {"X25519 shared secret", "op/s"},
    [OP_X25519_KEYGEN] = {"X25519 key pair (key share)", "op/s"},
    [OP_RSA_SIGN] = {"RSA-2048 sign (PKCS#1 v1.5)", "sign/s"},
    [OP_SHA256] = {"SHA-256 (1 KiB messages)", "MiB/s"},
};

struct options {
    double seconds;
    int json;
    int run_openssl;
    const char *openssl;
};

/* A figure below zero means "not measured" (n/a). */
struct results {
    double wolf[OP_COUNT];
    double ossl[OP_COUNT];
};

/* ---- timing --------------------------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs op(ctx) until `seconds` of wall time have passed; returns operations per second or
 * a negative value if op failed. The clock is read after every call: at 20-30 ns through
 * the vDSO it is noise even beside a 5 µs AES-GCM call on 16 KiB. */
static double run_timed(int (*op)(void *), void *ctx, double seconds)
{
    double start = now_seconds(), elapsed;
    unsigned long count = 0;

    do {
        if (op(ctx) != 0)
            return -1.0;
        count++;
        elapsed = now_seconds() - start;
    } while (elapsed < seconds);
    return (double)count / elapsed;
}

/* ---- AES-128-GCM ---------------------------------------------------------------------------- */

struct aes_ctx {
    Aes aes;
    byte iv[GCM_NONCE_MID_SZ];
    byte tag[AES_BLOCK_SIZE];
    byte aad[13];
    byte *in;
    byte *out;
};

static int aes_op(void *p)
{
    struct aes_ctx *c = p;

    return wc_AesGcmEncrypt(&c->aes, c->out, c->in, AES_BUF_SIZE, c->iv, sizeof(c->iv), c->tag,
                            sizeof(c->tag), c->aad, sizeof(c->aad));
}

static double bench_aes_gcm(double seconds)
{
    static const byte key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    struct aes_ctx c = {0};
    double rate = -1.0;

    c.in = calloc(1, AES_BUF_SIZE);
    c.out = malloc(AES_BUF_SIZE);
    if (c.in == NULL || c.out == NULL)
        goto out;
    if (wc_AesInit(&c.aes, NULL, INVALID_DEVID) != 0)
        goto out;
    if (wc_AesGcmSetKey(&c.aes, key, sizeof(key)) == 0)
        rate = run_timed(aes_op, &c, seconds);
    wc_AesFree(&c.aes);
    if (rate > 0)
        rate = rate * AES_BUF_SIZE / (1024.0 * 1024.0);
out:
    free(c.out);
    free(c.in);
    return rate;
}

/* ---- SHA-256: the TLS transcript, HKDF and the Hash_DRBG ----------------------------------- */

enum { SHA_MSG_SIZE = 1024 };

struct sha_ctx {
    byte msg[SHA_MSG_SIZE];
    byte digest[WC_SHA256_DIGEST_SIZE];
};

static int sha256_op(void *p)
{
    struct sha_ctx *c = p;
    wc_Sha256 s;
    int rc = wc_InitSha256(&s);
    if (rc == 0)
        rc = wc_Sha256Update(&s, c->msg, sizeof(c->msg));
    if (rc == 0)
        rc = wc_Sha256Final(&s, c->digest);
    wc_Sha256Free(&s);
    return rc;
}

/* SHA-NI where the CPU has it: wolfSSL's own since 5.7.0; on bookworm's 5.5.4,
 * scripts/wolfssl-patches/bookworm/sha256-shani.patch, where
 * TLSFRONT_SHA256_NO_SHANI=1 in the environment measures the AVX2 path. */
static double bench_sha256(double seconds)
{
    struct sha_ctx c;
    memset(&c, 0x5a, sizeof(c));
    double rate = run_timed(sha256_op, &c, seconds);
    return rate > 0 ? rate * SHA_MSG_SIZE / (1024.0 * 1024.0) : rate;
}

/* ---- ECDSA and ECDH on P-256 ---------------------------------------------------------------- */

struct ecc_ctx {
    WC_RNG *rng;
    ecc_key priv;
    ecc_key peer;
    byte hash[32];
    byte out[ECC_MAX_SIG_SIZE];
};

static int ecdsa_op(void *p)
{
    struct ecc_ctx *c = p;
    word32 len = sizeof(c->out);

    return wc_ecc_sign_hash(c->hash, sizeof(c->hash), c->out, &len, c->rng, &c->priv);
}

static int ecdh_op(void *p)
{
    struct ecc_ctx *c = p;
    word32 len = sizeof(c->out);

    return wc_ecc_shared_secret(&c->priv, &c->peer, c->out, &len);
}

/* Both keys are generated outside the timed loop: like `openssl speed ecdh`, the figure is
 * the shared-secret computation alone. */
static double bench_ecc(WC_RNG *rng, int (*op)(void *), double seconds)
{
    struct ecc_ctx c = {.rng = rng};
    double rate = -1.0;
    int inited = 0;

    memset(c.hash, 0x5a, sizeof(c.hash));
    if (wc_ecc_init(&c.priv) != 0)
        return -1.0;
    if (wc_ecc_init(&c.peer) != 0)
        goto out;
    inited = 1;
    if (wc_ecc_make_key_ex(rng, 32, &c.priv, ECC_SECP256R1) != 0 ||
        wc_ecc_make_key_ex(rng, 32, &c.peer, ECC_SECP256R1) != 0)
        goto out;
    /* ECC_TIMING_RESISTANT (--enable-harden) needs an RNG on the private key for ECDH. */
    if (wc_ecc_set_rng(&c.priv, rng) != 0)
        goto out;
    rate = run_timed(op, &c, seconds);
out:
    if (inited)
        wc_ecc_free(&c.peer);
    wc_ecc_free(&c.priv);
    return rate;
}

/* ---- X25519 --------------------------------------------------------------------------------- */

struct x25519_ctx {
    curve25519_key priv;
    curve25519_key peer;
    byte out[CURVE25519_KEYSIZE];
};

static int x25519_op(void *p)
{
    struct x25519_ctx *c = p;
    word32 len = sizeof(c->out);

    return wc_curve25519_shared_secret(&c->priv, &c->peer, c->out, &len);
}

static double bench_x25519(WC_RNG *rng, double seconds)
{
    struct x25519_ctx c;
    double rate = -1.0;

    if (wc_curve25519_init(&c.priv) != 0)
        return -1.0;
    if (wc_curve25519_init(&c.peer) != 0) {
        wc_curve25519_free(&c.priv);
        return -1.0;
    }
    if (wc_curve25519_make_key(rng, CURVE25519_KEYSIZE, &c.priv) == 0 &&
        wc_curve25519_make_key(rng, CURVE25519_KEYSIZE, &c.peer) == 0)
        rate = run_timed(x25519_op, &c, seconds);
    wc_curve25519_free(&c.peer);
    wc_curve25519_free(&c.priv);
    return rate;
}

/* A new key pair, as the server makes for every full TLS 1.3 handshake:
 * the public key comes from the fixed base (x25519-fixed-base.patch). */
struct x25519_keygen_ctx {
    curve25519_key key;
    WC_RNG *rng;
};

static int x25519_make_key_op(void *p)
{
    struct x25519_keygen_ctx *c = p;
    return wc_curve25519_make_key(c->rng, CURVE25519_KEYSIZE, &c->key);
}

static double bench_x25519_keygen(WC_RNG *rng, double seconds)
{
    struct x25519_keygen_ctx c = {.rng = rng};
    if (wc_curve25519_init(&c.key) != 0)
        return -1.0;
    double rate = run_timed(x25519_make_key_op, &c, seconds);
    wc_curve25519_free(&c.key);
    return rate;
}

/* ---- RSA-2048 ------------------------------------------------------------------------------- */

struct rsa_ctx {
    RsaKey key;
    WC_RNG *rng;
    byte digest_info[51]; /* the size of a SHA-256 DigestInfo, as a TLS signature signs */
    byte out[256];
};

static int rsa_op(void *p)
{
    struct rsa_ctx *c = p;
    int ret = wc_RsaSSL_Sign(c->digest_info, sizeof(c->digest_info), c->out, sizeof(c->out),
                             &c->key, c->rng);

    return ret == (int)sizeof(c->out) ? 0 : -1;
}

#ifndef WOLFSSL_KEY_GEN
/* Reads a whole small file into a malloc'd, NUL-terminated buffer; the caller frees it. */
static char *read_small_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;

    if (f == NULL)
        return NULL;
    buf = malloc(16384);
    if (buf != NULL) {
        n = fread(buf, 1, 16383, f);
        buf[n] = '\0';
        *len = n;
    }
    fclose(f);
    return buf;
}

/* Without --enable-keygen wolfSSL cannot make an RSA key, and no private key is ever
 * committed, so the key is generated now by the openssl command line into a private
 * temporary file. Returns a DER length, or -1 (no openssl, or an unreadable key). */
static int generate_rsa_der(const char *openssl, byte *der, word32 der_size)
{
    char path[] = "/tmp/tf-bench-rsa-XXXXXX", cmd[512];
    char *pem = NULL;
    size_t pem_len = 0;
    int fd = mkstemp(path), ret = -1;

    if (fd < 0)
        return -1;
    close(fd);
    snprintf(cmd, sizeof(cmd), "'%s' genrsa -out '%s' 2048 2>/dev/null", openssl, path);
    if (system(cmd) == 0)
        pem = read_small_file(path, &pem_len);
    unlink(path);
    if (pem != NULL)
        ret = wc_KeyPemToDer((const byte *)pem, (int)pem_len, der, der_size, NULL);
    if (pem != NULL)
        memset(pem, 0, pem_len);
    free(pem);
    return ret > 0 ? ret : -1;
}
#endif

/* Fills an initialised key with a fresh RSA-2048 private key; 0 or -1. */
static int make_rsa_key(RsaKey *key, WC_RNG *rng, const char *openssl)
{
#ifdef WOLFSSL_KEY_GEN
    (void)openssl;
    return wc_MakeRsaKey(key, 2048, WC_RSA_EXPONENT, rng) == 0 ? 0 : -1;
#else
    byte der[4096];
    word32 idx = 0;
    int der_len = generate_rsa_der(openssl, der, sizeof(der)), ret = -1;

    if (der_len > 0 && wc_RsaPrivateKeyDecode(der, &idx, key, (word32)der_len) == 0)
        ret = 0;
    memset(der, 0, sizeof(der));
    return ret;
#endif
}

static double bench_rsa(WC_RNG *rng, const char *openssl, double seconds)
{
    struct rsa_ctx c = {.rng = rng};
    double rate = -1.0;

    memset(c.digest_info, 0x3c, sizeof(c.digest_info));
    if (wc_InitRsaKey(&c.key, NULL) != 0)
        return -1.0;
    /* WC_RSA_BLINDING (--enable-harden) needs an RNG on the key. */
    if (make_rsa_key(&c.key, rng, openssl) == 0 && wc_RsaSetRNG(&c.key, rng) == 0 &&
        wc_RsaEncryptSize(&c.key) == (int)sizeof(c.out))
        rate = run_timed(rsa_op, &c, seconds);
    wc_FreeRsaKey(&c.key);
    return rate;
}

/* ---- openssl speed -------------------------------------------------------------------------- */

/* `openssl speed -mr` lines: "+F:n:AES-128-GCM:<bytes/s per size...>", "+F2:n:2048:sign:verify"
 * (RSA), "+F4:n:256:sign:verify" (ECDSA), "+F5:n:bits:op[:time]" (ECDH; 253 bits is X25519).
 * OpenSSL 3 prints operations per second there, 1.1 seconds per operation: a value below 1
 * can only be the latter. */
static double per_second(double v)
{
    return v > 0 && v < 1.0 ? 1.0 / v : v;
}

static void parse_openssl_line(const char *line, struct results *r)
{
    double a, b, c, d, e, f;
    int idx, bits;

    if (sscanf(line, "+F:%d:AES-128-GCM:%lf:%lf:%lf:%lf:%lf:%lf", &idx, &a, &b, &c, &d, &e, &f) ==
        7)
        r->ossl[OP_AES_GCM] = f / (1024.0 * 1024.0);
    else if (sscanf(line, "+F:%d:sha256:%lf:%lf:%lf:%lf:%lf:%lf", &idx, &a, &b, &c, &d, &e, &f) ==
             7)
        r->ossl[OP_SHA256] = d / (1024.0 * 1024.0);
    else if (sscanf(line, "+F2:%d:%d:%lf:%lf", &idx, &bits, &a, &b) == 4 && bits == 2048)
        r->ossl[OP_RSA_SIGN] = per_second(a);
    else if (sscanf(line, "+F4:%d:%d:%lf:%lf", &idx, &bits, &a, &b) == 4 && bits == 256)
        r->ossl[OP_ECDSA_SIGN] = per_second(a);
    else if (sscanf(line, "+F5:%d:%d:%lf", &idx, &bits, &a) == 3 && bits == 256)
        r->ossl[OP_ECDH_P256] = per_second(a);
    else if (sscanf(line, "+F5:%d:%d:%lf", &idx, &bits, &a) == 3 && bits == 253)
        r->ossl[OP_ECDH_X25519] = per_second(a);
}

static void run_openssl_speed(const struct options *o, struct results *r)
{
    static const char *const args[] = {
        "-evp aes-128-gcm",
        "-evp sha256",
        "ecdsap256 ecdhp256 ecdhx25519 rsa2048",
    };
    char cmd[512], line[1024];
    int secs = o->seconds < 1.0 ? 1 : (int)(o->seconds + 0.5);

    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
        snprintf(cmd, sizeof(cmd), "'%s' speed -mr -seconds %d %s 2>/dev/null", o->openssl, secs,
                 args[i]);
        FILE *p = popen(cmd, "r");
        if (p == NULL)
            return;
        while (fgets(line, sizeof(line), p) != NULL)
            parse_openssl_line(line, r);
        pclose(p);
    }
}

/* ---- output --------------------------------------------------------------------------------- */

static int compiled_aesni(void)
{
#ifdef WOLFSSL_AESNI
    return 1;
#else
    return 0;
#endif
}

static int compiled_intel_speedup(void)
{
#ifdef USE_INTEL_SPEEDUP
    return 1;
#else
    return 0;
#endif
}

static int compiled_sp_asm(void)
{
#ifdef WOLFSSL_SP_X86_64_ASM
    return 1;
#else
    return 0;
#endif
}

static const char *yes_no(int v)
{
    return v ? "yes" : "no";
}

static const char *format_number(char *buf, size_t size, double v)
{
    if (v < 0)
        return "n/a";
    snprintf(buf, size, "%.1f", v);
    return buf;
}

static void print_table(const struct options *o, const struct results *r)
{
    char w[32], s[32], q[32];

    printf("wolfSSL %s (headers %s), %s\n", wolfSSL_lib_version(), LIBWOLFSSL_VERSION_STRING,
           TF_WOLFSSL_BUILD);
    printf("compiled in: WOLFSSL_AESNI=%s USE_INTEL_SPEEDUP=%s WOLFSSL_SP_X86_64_ASM=%s\n",
           yes_no(compiled_aesni()), yes_no(compiled_intel_speedup()), yes_no(compiled_sp_asm()));
    printf("%.1f s per operation, one thread\n\n", o->seconds);
    printf("%-30s %-7s %14s %14s %7s\n", "operation", "unit", "wolfSSL", "OpenSSL", "ratio");
    for (int i = 0; i < OP_COUNT; i++) {
        const char *ratio = "n/a";
        if (r->wolf[i] > 0 && r->ossl[i] > 0) {
            snprintf(q, sizeof(q), "%.2f", r->wolf[i] / r->ossl[i]);
            ratio = q;
        }
        printf("%-30s %-7s %14s %14s %7s\n", op_info[i].name, op_info[i].unit,
               format_number(w, sizeof(w), r->wolf[i]), format_number(s, sizeof(s), r->ossl[i]),
               ratio);
    }
}

static void print_json_number(double v)
{
    if (v >= 0)
        printf("%.1f", v);
    else
        printf("null");
}

static void print_json(const struct options *o, const struct results *r)
{
    printf("{\"wolfssl_version\":\"%s\",\"aesni\":%s,\"intel_speedup\":%s,\"sp_x86_64_asm\":%s,"
           "\"seconds\":%.1f,\"results\":[",
           wolfSSL_lib_version(), compiled_aesni() ? "true" : "false",
           compiled_intel_speedup() ? "true" : "false", compiled_sp_asm() ? "true" : "false",
           o->seconds);
    for (int i = 0; i < OP_COUNT; i++) {
        printf("%s{\"op\":\"%s\",\"unit\":\"%s\",\"wolfssl\":", i ? "," : "", op_info[i].name,
               op_info[i].unit);
        print_json_number(r->wolf[i]);
        printf(",\"openssl\":");
        print_json_number(r->ossl[i]);
        printf(",\"ratio\":");
        if (r->wolf[i] > 0 && r->ossl[i] > 0)
            printf("%.3f", r->wolf[i] / r->ossl[i]);
        else
            printf("null");
        printf("}");
    }
    printf("]}\n");
}

/* ---- main ----------------------------------------------------------------------------------- */

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--seconds N] [--json] [--no-openssl] [--openssl PATH]\n", argv0);
    return 2;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
        } else if (strcmp(argv[i], "--no-openssl") == 0) {
            o->run_openssl = 0;
        } else if (strcmp(argv[i], "--openssl") == 0 && i + 1 < argc) {
            o->openssl = argv[++i];
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            errno = 0;
            o->seconds = strtod(argv[++i], &end);
            if (errno != 0 || *end != '\0' || !(o->seconds > 0 && o->seconds <= 600))
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

static int run_wolfssl(const struct options *o, struct results *r)
{
    WC_RNG rng;

    if (wc_InitRng(&rng) != 0)
        return -1;
    r->wolf[OP_AES_GCM] = bench_aes_gcm(o->seconds);
    r->wolf[OP_ECDSA_SIGN] = bench_ecc(&rng, ecdsa_op, o->seconds);
    r->wolf[OP_ECDH_P256] = bench_ecc(&rng, ecdh_op, o->seconds);
    r->wolf[OP_ECDH_X25519] = bench_x25519(&rng, o->seconds);
    r->wolf[OP_X25519_KEYGEN] = bench_x25519_keygen(&rng, o->seconds);
    r->wolf[OP_RSA_SIGN] = bench_rsa(&rng, o->openssl, o->seconds);
    r->wolf[OP_SHA256] = bench_sha256(o->seconds);
    wc_FreeRng(&rng);
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {.seconds = 1.0, .run_openssl = 1, .openssl = "openssl"};
    struct results r;

    if (parse_args(argc, argv, &o) != 0 || strchr(o.openssl, '\'') != NULL)
        return usage(argv[0]);
    for (int i = 0; i < OP_COUNT; i++)
        r.wolf[i] = r.ossl[i] = -1.0;
    if (wolfCrypt_Init() != 0 || run_wolfssl(&o, &r) != 0) {
        fprintf(stderr, "bench_crypto: wolfCrypt initialisation failed\n");
        return 1;
    }
    /* After wolfSSL, not in parallel: both must have the pinned core to themselves. */
    if (o.run_openssl)
        run_openssl_speed(&o, &r);
    if (o.json)
        print_json(&o, &r);
    else
        print_table(&o, &r);
    wolfCrypt_Cleanup();
    return 0;
}
