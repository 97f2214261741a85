/* See fuzz_snapshot.h. */
#include "tests/fuzz/fuzz_snapshot.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noreturn)) static void die(const char *what)
{
    fprintf(stderr, "fuzz fixture: %s\n", what);
    abort();
}

/* The bundle (certificate + key, PEM) into pem; its length. */
static size_t make_bundle(const char *name, char *pem, size_t cap)
{
    WC_RNG rng;
    ecc_key key;
    Cert cert;
    static byte der[4096], kder[512];
    if (wc_InitRng(&rng) != 0 || wc_ecc_init(&key) != 0 || wc_ecc_make_key(&rng, 32, &key) != 0 ||
        wc_InitCert(&cert) != 0)
        die("cannot make a key");
    snprintf(cert.subject.commonName, CTC_NAME_SIZE, "%s", name);
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

tf_cs_snapshot_t *tf_fuzz_snapshot(const char *name, char *dir, char *path, size_t pathlen)
{
    static char pem[8192];
    size_t len = make_bundle(name, pem, sizeof pem);
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    snprintf(path, pathlen, "%s/fuzz-only.pem", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(pem, 1, len, f) != len || fclose(f) != 0)
        die("cannot write the bundle");
    const char *sources[] = {dir};
    tf_cs_store_opts_t o = {.sources = sources, .nsources = 1, .default_cert = path, .threads = 1};
    tf_cs_store_t *store;
    tf_cs_snapshot_t *snap;
    if (tf_cs_store_new(&o, &store) != 0 || tf_cs_store_build(store, 0, &snap) != 0 ||
        tf_cs_snapshot_default(snap) == NULL)
        die("cannot build the snapshot");
    tf_cs_store_free(store);
    unlink(path);
    rmdir(dir);
    return snap;
}

/* A loopback port nothing listens on: bound, then closed. */
