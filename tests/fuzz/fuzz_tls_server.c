/* libFuzzer target: a tf_tls server session fed arbitrary client bytes (SPEC §6) — the
 * ClientHello reader that picks the certificate (tls/hello.c), wolfSSL's handshake and
 * record layer behind it, and the session's buffers.
 *
 * The input is split in two at its first byte: that many bytes (mod the size) are fed and
 * the handshake driven, then the rest, so records cut at arbitrary points are covered. If a
 * handshake ever completes, reads follow. The server certificate is FUZZ-ONLY: a P-256
 * self-signed certificate generated with wolfCrypt in LLVMFuzzerInitialize, written to a
 * temporary directory for the store to load, and deleted at once.
 */
#include "certstore/store.h"
#include "tls/tls.h"
#include "tls/tls_internal.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tf_tls_ctx_t *ctx;
static tf_cs_snapshot_t *snap;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_tls_server: %s\n", what);
    abort();
}

/* A fuzz-only self-signed P-256 bundle (certificate + key, PEM) in *pem. */
static size_t make_bundle(char *pem, size_t cap)
{
    WC_RNG rng;
    ecc_key key;
    Cert cert;
    static byte der[4096], kder[512];
    if (wc_InitRng(&rng) != 0 || wc_ecc_init(&key) != 0 || wc_ecc_make_key(&rng, 32, &key) != 0 ||
        wc_InitCert(&cert) != 0)
        die("cannot make a key");
    snprintf(cert.subject.commonName, CTC_NAME_SIZE, "fuzz-only.tlsfront.invalid");
    cert.sigType = CTC_SHA256wECDSA;
    cert.daysValid = 3650;
    int n = wc_MakeCert_ex(&cert, der, sizeof der, ECC_TYPE, &key, &rng);
    if (n > 0)
        n = wc_SignCert_ex(cert.bodySz, cert.sigType, der, sizeof der, ECC_TYPE, &key, &rng);
    int kn = wc_EccKeyToDer(&key, kder, sizeof kder);
    if (n <= 0 || kn <= 0)
        die("cannot make the certificate");
    int p1 = wc_DerToPem(der, (word32)n, (byte *)pem, (word32)cap, CERT_TYPE);
    if (p1 <= 0)
        die("cannot encode the certificate");
    int p2 = wc_DerToPem(kder, (word32)kn, (byte *)pem + p1, (word32)(cap - (size_t)p1),
                         ECC_PRIVATEKEY_TYPE);
    if (p2 <= 0)
        die("cannot encode the key");
    wc_ecc_free(&key);
    wc_FreeRng(&rng);
    return (size_t)p1 + (size_t)p2;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (tf_tls_global_init() != 0)
        die("wolfSSL_Init failed");
    static char pem[8192];
    size_t len = make_bundle(pem, sizeof pem);
    char dir[] = "/tmp/fuzz-tls-XXXXXX", path[64];
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    snprintf(path, sizeof path, "%s/fuzz-only.pem", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(pem, 1, len, f) != len || fclose(f) != 0)
        die("cannot write the bundle");
    const char *sources[] = {dir};
    tf_cs_store_opts_t o = {.sources = sources, .nsources = 1, .default_cert = path, .threads = 1};
    tf_cs_store_t *store;
    if (tf_cs_store_new(&o, &store) != 0 || tf_cs_store_build(store, 0, &snap) != 0 ||
        tf_cs_snapshot_default(snap) == NULL)
        die("cannot build the snapshot");
    tf_cs_store_free(store);
    unlink(path);
    rmdir(dir);
    char err[256];
    tf_tls_tickets_t *t;
    if (tf_tls_tickets_new(NULL, 3600, &t, err, sizeof err) != 0)
        die(err);
    tf_tls_ctx_opts_t opts = {.tickets = t, .reject_unknown_sni = true};
    if (tf_tls_ctx_new(&opts, snap, &ctx, err, sizeof err) != 0)
        die(err);
    tf_tls_tickets_unref(t);
    return 0;
}

static void drive(tf_tls_session_t *s)
{
    int rc = tf_tls_session_handshake(s);
    if (rc == TF_TLS_OK) {
        static char buf[16384];
        size_t n;
        while (tf_tls_session_recv(s, buf, sizeof buf, &n) == TF_TLS_OK)
            ;
    }
    size_t n;
    (void)tf_tls_session_out(s, &n);
    tf_tls_session_consume_out(s, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The ClientHello reader on its own, with the whole input. */
    const char *name;
    size_t len;
    void *scratch;
    if (tf_tls__hello_sni(data, size, &name, &len, &scratch) == TF_TLS__HELLO_OK && name) {
        volatile char c = len > 0 ? name[len - 1] : 0; /* in bounds */
        (void)c;
    }
    free(scratch);

    tf_tls_session_t *s = tf_tls_session_new(ctx, snap);
    if (s == NULL)
        return 0;
    size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    if (tf_tls_session_feed(s, data, cut) == 0)
        drive(s);
    if (tf_tls_session_feed(s, data + cut, size - cut) == 0)
        drive(s);
    tf_tls_session_free(s);
    return 0;
}
