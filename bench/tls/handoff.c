/* bench_handoff BUNDLE.pem [HANDSHAKES]
 *
 * How should the certificate chosen by SNI reach wolfSSL? Two candidates,
 * measured on in-memory TLS 1.3 handshakes (client and server in one
 * process, X25519 and P-256 only, no sockets):
 *
 *   ctx  one WOLFSSL_CTX per certificate, holding its chain and key; the
 *        handshake uses it as is (what switching contexts per SNI would cost
 *        per handshake: nothing extra). Memory: one context per certificate.
 *   load one WOLFSSL_CTX holding the default certificate; the selected chain
 *        and key (DER) are loaded into the connection before wolfSSL_accept
 *        (what tls/ does once hello.c has read the SNI), and wolfSSL frees
 *        them when the handshake ends. Memory: the store's DER only.
 *
 * Prints the heap bytes one loaded WOLFSSL_CTX costs, and the wall time per
 * handshake pair for each mode. For instruction counts independent of machine
 * noise, run under `valgrind --tool=callgrind` with a few hundred handshakes
 * and `--mode ctx` / `--mode load` (see docs/PERFORMANCE.md).
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    unsigned char b[65536];
    int r, w;
} mem_pipe_t;

static unsigned char chain[8192], key[4096];
static int chain_len, key_len;

static int pipe_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    mem_pipe_t *p = ctx;
    int n = p->w - p->r;
    (void)ssl;
    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if (n > sz)
        n = sz;
    memcpy(buf, p->b + p->r, (size_t)n);
    p->r += n;
    if (p->r == p->w)
        p->r = p->w = 0;
    return n;
}

static int pipe_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    mem_pipe_t *p = ctx;
    (void)ssl;
    if (p->w + sz > (int)sizeof p->b)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    memcpy(p->b + p->w, buf, (size_t)sz);
    p->w += sz;
    return sz;
}

/* The per-connection load, as tls/ctx.c does it. */
static int load_into(WOLFSSL *ssl)
{
    if (wolfSSL_use_certificate_chain_buffer_format(ssl, chain, chain_len,
                                                    WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
        return 0;
    if (wolfSSL_use_PrivateKey_buffer(ssl, key, key_len, WOLFSSL_FILETYPE_ASN1) !=
        WOLFSSL_SUCCESS)
        return 0;
    return 1;
}

/* Certificates (in file order: leaf, then issuers) and the key of a bundle
 * as DER. Benchmark input only: no validation beyond what wolfSSL does. */
static int read_bundle(const char *path)
{
    static char pem[32768];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t n = fread(pem, 1, sizeof pem - 1, f);
    fclose(f);
    pem[n] = '\0';
    char *p = pem;
    char *b;
    while ((b = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL) {
        char *e = strstr(b, "-----END CERTIFICATE-----");
        if (e == NULL)
            return -1;
        e += strlen("-----END CERTIFICATE-----");
        int l = wc_CertPemToDer((unsigned char *)b, (int)(e - b), chain + chain_len,
                                (int)sizeof chain - chain_len, CERT_TYPE);
        if (l <= 0)
            return -1;
        chain_len += l;
        p = e;
    }
    b = strstr(pem, "PRIVATE KEY-----");
    while (b != NULL && b > pem && strncmp(b, "-----BEGIN", 10) != 0)
        b--;
    if (b == NULL)
        return -1;
    key_len = wc_KeyPemToDer((unsigned char *)b, (int)(n - (size_t)(b - pem)), key,
                             (int)sizeof key, NULL);
    return chain_len > 0 && key_len > 0 ? 0 : -1;
}

static WOLFSSL_CTX *ctx_with_cert(WOLFSSL_METHOD *method)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(method);
    if (ctx == NULL ||
        wolfSSL_CTX_use_certificate_chain_buffer_format(ctx, chain, chain_len,
                                                        WOLFSSL_FILETYPE_ASN1) != 1 ||
        wolfSSL_CTX_use_PrivateKey_buffer(ctx, key, key_len, WOLFSSL_FILETYPE_ASN1) != 1) {
        fprintf(stderr, "bench_handoff: cannot load the bundle into a context\n");
        exit(1);
    }
    return ctx;
}

static size_t ctx_bytes(void)
{
    enum { N = 200 };
    static WOLFSSL_CTX *v[N];
    struct mallinfo2 a = mallinfo2();
    for (int i = 0; i < N; i++)
        v[i] = ctx_with_cert(wolfTLS_server_method());
    struct mallinfo2 b = mallinfo2();
    for (int i = 0; i < N; i++)
        wolfSSL_CTX_free(v[i]);
    return (b.uordblks - a.uordblks) / N;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int handshake(WOLFSSL_CTX *sctx, WOLFSSL_CTX *cctx, int load_mode)
{
    static mem_pipe_t c2s, s2c;
    WOLFSSL *s = wolfSSL_new(sctx), *c = wolfSSL_new(cctx);
    int ok = 0;
    if (s != NULL && c != NULL && (!load_mode || load_into(s))) {
        wolfSSL_SetIOReadCtx(s, &c2s);
        wolfSSL_SetIOWriteCtx(s, &s2c);
        wolfSSL_SetIOReadCtx(c, &s2c);
        wolfSSL_SetIOWriteCtx(c, &c2s);
        int cr = 0, sr = 0;
        for (int k = 0; k < 20 && (cr != 1 || sr != 1); k++) {
            if (cr != 1)
                cr = wolfSSL_connect(c);
            if (sr != 1)
                sr = wolfSSL_accept(s);
        }
        ok = cr == 1 && sr == 1;
    }
    wolfSSL_free(c);
    wolfSSL_free(s);
    c2s.r = c2s.w = s2c.r = s2c.w = 0;
    return ok;
}

static double run(int load_mode, int n)
{
    int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1};
    WOLFSSL_CTX *sctx = ctx_with_cert(wolfTLSv1_3_server_method());
    WOLFSSL_CTX *cctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    if (cctx == NULL)
        exit(1);
    wolfSSL_CTX_set_verify(cctx, WOLFSSL_VERIFY_NONE, NULL);
    wolfSSL_CTX_set_groups(cctx, groups, 2);
    wolfSSL_CTX_set_groups(sctx, groups, 2);
    wolfSSL_SetIORecv(sctx, pipe_recv);
    wolfSSL_SetIOSend(sctx, pipe_send);
    wolfSSL_SetIORecv(cctx, pipe_recv);
    wolfSSL_SetIOSend(cctx, pipe_send);
    int ok = 0;
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        ok += handshake(sctx, cctx, load_mode);
    double us = (now_s() - t0) * 1e6 / n;
    if (ok != n) {
        fprintf(stderr, "bench_handoff: %d of %d handshakes failed\n", n - ok, n);
        exit(1);
    }
    wolfSSL_CTX_free(sctx);
    wolfSSL_CTX_free(cctx);
    return us;
}

int main(int argc, char **argv)
{
    const char *mode = NULL;
    int n = 2000;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            mode = argv[++i];
        else if (path == NULL)
            path = argv[i];
        else
            n = atoi(argv[i]);
    }
    if (path == NULL || n < 1) {
        fprintf(stderr, "usage: bench_handoff BUNDLE.pem [HANDSHAKES] [--mode ctx|load]\n");
        return 2;
    }
    wolfSSL_Init();
    if (read_bundle(path) != 0) {
        fprintf(stderr, "bench_handoff: cannot read %s\n", path);
        return 1;
    }
    printf("bundle: %d bytes of chain DER, %d bytes of key DER\n", chain_len, key_len);
    printf("one WOLFSSL_CTX with this certificate: %zu heap bytes\n", ctx_bytes());
    if (mode == NULL || strcmp(mode, "ctx") == 0)
        printf("ctx:  %.1f us per handshake pair (client + server)\n", run(0, n));
    if (mode == NULL || strcmp(mode, "load") == 0)
        printf("load: %.1f us per handshake pair (client + server)\n", run(1, n));
    wolfSSL_Cleanup();
    return 0;
}
