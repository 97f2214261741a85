/* bench_cs_gen DIR COUNT [THREADS]
 *
 * Writes COUNT haproxy-style bundles (leaf, intermediate, ECDSA P-256 key)
 * named tenantNNNNNN.pem into DIR/certs, all issued by one intermediate under
 * one root, each for "tenantN.bench.example" and "*.tenantN.bench.example".
 * Also writes DIR/certs/system.pem (the default certificate) and DIR/root.crt
 * (the CA, for clients). Signing with wolfCrypt on every core: 100,000 bundles take
 * seconds where the openssl CLI takes an hour.
 *
 * Benchmark fixtures only: the keys are throwaway and never committed.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DER_MAX 4096
#define PEM_MAX 8192

typedef struct {
    unsigned char der[DER_MAX];
    int der_len;
    ecc_key key;
} issuer_t;

typedef struct {
    const char *dir;
    int count;
    atomic_int next;
    const issuer_t *root;
    const issuer_t *inter;
    char inter_pem[PEM_MAX];
    int inter_pem_len;
} job_t;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_cs_gen: %s failed: %d\n", what, rc);
    exit(1);
}

/* subjectAltName GeneralNames with dNSName entries, DER by hand: wolfSSL's
 * Cert takes the encoded extension value. Names are short, so one-byte lengths. */
static int encode_san(unsigned char *out, const char *const *names, int n)
{
    int body = 0;
    for (int i = 0; i < n; i++)
        body += 2 + (int)strlen(names[i]);
    int o = 0;
    out[o++] = 0x30;
    out[o++] = (unsigned char)body;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        out[o++] = 0x82; /* [2] IMPLICIT IA5String: dNSName */
        out[o++] = (unsigned char)len;
        memcpy(out + o, names[i], len);
        o += (int)len;
    }
    return o;
}

static void set_subject(Cert *c, const char *cn)
{
    strncpy(c->subject.country, "US", CTC_NAME_SIZE - 1);
    strncpy(c->subject.org, "tlsfront bench", CTC_NAME_SIZE - 1);
    strncpy(c->subject.commonName, cn, CTC_NAME_SIZE - 1);
}

/* Makes a certificate for `key` named `cn`, signed by `issuer` (NULL: self). */
static int make_cert(WC_RNG *rng, ecc_key *key, const char *cn, const issuer_t *issuer,
                     int is_ca, const char *const *san, int nsan, unsigned char *der)
{
    Cert c;
    int rc = wc_InitCert(&c);
    if (rc != 0)
        return rc;
    set_subject(&c, cn);
    c.sigType = CTC_SHA256wECDSA;
    c.daysValid = 365;
    c.isCA = is_ca;
    if (is_ca)
        rc = wc_SetKeyUsage(&c, "keyCertSign,cRLSign");
    else
        rc = wc_SetKeyUsage(&c, "digitalSignature");
    if (rc == 0 && !is_ca)
        rc = wc_SetExtKeyUsage(&c, "serverAuth");
    if (rc == 0 && nsan > 0)
        c.altNamesSz = encode_san(c.altNames, san, nsan);
    if (rc == 0)
        rc = wc_SetSubjectKeyIdFromPublicKey_ex(&c, ECC_TYPE, key);
    if (rc == 0 && issuer != NULL)
        rc = wc_SetIssuerBuffer(&c, issuer->der, issuer->der_len);
    if (rc == 0)
        rc = wc_SetAuthKeyIdFromPublicKey_ex(&c, ECC_TYPE,
                                             issuer ? (ecc_key *)&issuer->key : key);
    if (rc != 0)
        return rc;
    rc = wc_MakeCert_ex(&c, der, DER_MAX, ECC_TYPE, key, rng);
    if (rc < 0)
        return rc;
    return wc_SignCert_ex(c.bodySz, c.sigType, der, DER_MAX, ECC_TYPE,
                          issuer ? (ecc_key *)&issuer->key : key, rng);
}

static void make_issuer(WC_RNG *rng, issuer_t *is, const char *cn, const issuer_t *parent)
{
    int rc = wc_ecc_init(&is->key);
    if (rc == 0)
        rc = wc_ecc_make_key_ex(rng, 32, &is->key, ECC_SECP256R1);
    if (rc != 0)
        die("CA key", rc);
    is->der_len = make_cert(rng, &is->key, cn, parent, 1, NULL, 0, is->der);
    if (is->der_len < 0)
        die("CA certificate", is->der_len);
}

static int to_pem(const unsigned char *der, int len, char *pem, int type)
{
    int n = wc_DerToPem(der, (word32)len, (unsigned char *)pem, PEM_MAX, type);
    if (n < 0)
        die("PEM encoding", n);
    return n;
}

static void write_file(const char *path, const char *a, int alen, const char *b, int blen,
                       const char *c, int clen)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(a, 1, (size_t)alen, f) != (size_t)alen ||
        (blen > 0 && fwrite(b, 1, (size_t)blen, f) != (size_t)blen) ||
        (clen > 0 && fwrite(c, 1, (size_t)clen, f) != (size_t)clen) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    chmod(path, 0600);
}

/* One bundle: key, leaf for the two names, then cat leaf inter key. */
static void make_bundle(job_t *job, WC_RNG *rng, const char *file, const char *host)
{
    ecc_key key;
    unsigned char der[DER_MAX], kder[512];
    char leaf_pem[PEM_MAX], key_pem[PEM_MAX], wild[300], path[4096];
    snprintf(wild, sizeof wild, "*.%s", host);
    const char *san[2] = {host, wild};

    int rc = wc_ecc_init(&key);
    if (rc == 0)
        rc = wc_ecc_make_key_ex(rng, 32, &key, ECC_SECP256R1);
    if (rc != 0)
        die("leaf key", rc);
    int der_len = make_cert(rng, &key, host, job->inter, 0, san, 2, der);
    if (der_len < 0)
        die("leaf certificate", der_len);
    int kder_len = wc_EccKeyToDer(&key, kder, sizeof kder);
    if (kder_len < 0)
        die("key encoding", kder_len);
    int leaf_len = to_pem(der, der_len, leaf_pem, CERT_TYPE);
    int key_len = to_pem(kder, kder_len, key_pem, ECC_PRIVATEKEY_TYPE);
    snprintf(path, sizeof path, "%s/%s", job->dir, file);
    write_file(path, leaf_pem, leaf_len, job->inter_pem, job->inter_pem_len, key_pem, key_len);
    wc_ecc_free(&key);
}

static void *worker(void *arg)
{
    job_t *job = arg;
    WC_RNG rng;
    if (wc_InitRng(&rng) != 0)
        die("RNG", -1);
    char file[64], host[64];
    for (;;) {
        int i = atomic_fetch_add(&job->next, 1);
        if (i >= job->count)
            break;
        snprintf(file, sizeof file, "tenant%06d.pem", i);
        snprintf(host, sizeof host, "tenant%d.bench.example", i);
        make_bundle(job, &rng, file, host);
    }
    wc_FreeRng(&rng);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_cs_gen DIR COUNT [THREADS]\n");
        return 2;
    }
    int threads = argc > 3 ? atoi(argv[3]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1 || threads > 64)
        threads = 1;
    static issuer_t root, inter;
    static job_t job;
    static char certs[4096];
    snprintf(certs, sizeof certs, "%s/certs", argv[1]);
    job.dir = certs;
    job.count = atoi(argv[2]);
    mkdir(argv[1], 0700);
    mkdir(certs, 0700);

    wolfCrypt_Init();
    WC_RNG rng;
    if (wc_InitRng(&rng) != 0)
        die("RNG", -1);
    make_issuer(&rng, &root, "tlsfront bench root", NULL);
    make_issuer(&rng, &inter, "tlsfront bench intermediate", &root);
    job.root = &root;
    job.inter = &inter;
    job.inter_pem_len = to_pem(inter.der, inter.der_len, job.inter_pem, CERT_TYPE);

    char pem[PEM_MAX], path[4096];
    int n = to_pem(root.der, root.der_len, pem, CERT_TYPE);
    snprintf(path, sizeof path, "%s/root.crt", argv[1]);
    write_file(path, pem, n, NULL, 0, NULL, 0);
    make_bundle(&job, &rng, "system.pem", "system.bench.example");

    pthread_t tid[64];
    for (int t = 0; t < threads; t++)
        pthread_create(&tid[t], NULL, worker, &job);
    for (int t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    wc_FreeRng(&rng);
    printf("%d bundles in %s (root CA in %s/root.crt)\n", job.count, certs, argv[1]);
    return 0;
}
