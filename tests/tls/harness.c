#include "harness.h"

#include "certstore/store.h"

#include <wolfssl/wolfcrypt/asn.h>

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void (*hx_client_side)(bool entering);

static void side(bool client)
{
    if (hx_client_side != NULL)
        hx_client_side(client);
}

static char fixtures[1024];
static char dir[1024];
static tf_cs_store_t *store;
static tf_cs_snapshot_t *snap;

__attribute__((format(printf, 1, 2))) static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

/* An RSA-2048 self-signed bundle, made once per build tree. */
static void make_rsa(const char *build)
{
    char out[1100];
    snprintf(out, sizeof out, "%s/tests/tls-fixtures/rsa.pem", build);
    if (access(out, R_OK) == 0)
        return;
    sh("set -e; d='%s/tests/tls-fixtures'; mkdir -p \"$d\"; t=$(mktemp -d \"$d/tmp.XXXXXX\"); "
       "openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj /CN=rsa.example "
       "-addext subjectAltName=DNS:rsa.example -keyout \"$t/k\" -out \"$t/c\" 2>/dev/null; "
       "cat \"$t/c\" \"$t/k\" > \"$t/rsa.pem\"; mv \"$t/rsa.pem\" \"$d/rsa.pem\"; rm -rf \"$t\"",
       build);
}

void hx_setup(bool extra_rsa)
{
    const char *build = getenv("TF_BUILD_DIR");
    const char *src = getenv("TF_SOURCE_DIR");
    cr_assert_not_null(build);
    cr_assert_not_null(src);
    snprintf(fixtures, sizeof fixtures, "%s/tests/store-fixtures", build);
    sh("bash '%s/tests/certstore/store-fixtures.sh' '%s'", src, fixtures);
    snprintf(dir, sizeof dir, "/tmp/tf-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(tf_tls_global_init(), 0);
    if (getenv("HX_WOLFSSL_DEBUG") != NULL) /* only with a --enable-debug wolfSSL */
        (void)wolfSSL_Debugging_ON();
    sh("mkdir '%s/certs' && cp '%s/acme.pem' '%s/wild.pem' '%s/system.pem' '%s/certs/' && "
       "chmod 600 '%s/certs/'*",
       dir, fixtures, fixtures, fixtures, dir, dir);
    if (extra_rsa) {
        make_rsa(build);
        sh("cp '%s/tests/tls-fixtures/rsa.pem' '%s/certs/' && chmod 600 '%s/certs/rsa.pem'", build,
           dir, dir);
    }
    char certs[1100], def[1200];
    snprintf(certs, sizeof certs, "%s/certs", dir);
    snprintf(def, sizeof def, "%s/system.pem", certs);
    const char *sources[] = {certs};
    tf_cs_store_opts_t opts = {
        .sources = sources, .nsources = 1, .default_cert = def, .threads = 1};
    cr_assert_eq(tf_cs_store_new(&opts, &store), 0);
    cr_assert_eq(tf_cs_store_build(store, 0, &snap), 0);
    cr_assert_not_null(tf_cs_snapshot_default(snap));
}

void hx_teardown(void)
{
    tf_cs_snapshot_unref(snap);
    snap = NULL;
    tf_cs_store_free(store);
    store = NULL;
    if (dir[0] != '\0')
        sh("rm -rf '%s'", dir);
    tf_tls_global_cleanup();
}

tf_cs_snapshot_t *hx_snap(void)
{
    return snap;
}

const char *hx_dir(void)
{
    return dir;
}

tf_tls_ctx_t *hx_ctx(bool tls13_only, bool reject_unknown, tf_tls_tickets_t *tickets)
{
    tf_tls_ctx_opts_t o = {
        .tls13_only = tls13_only, .reject_unknown_sni = reject_unknown, .tickets = tickets};
    return hx_ctx_on(&o, snap);
}

tf_tls_ctx_t *hx_ctx_on(const tf_tls_ctx_opts_t *o, const tf_cs_snapshot_t *on)
{
    tf_tls_ctx_t *ctx = NULL;
    char err[512] = "";
    int rc = tf_tls_ctx_new(o, on, &ctx, err, sizeof err);
    cr_assert_eq(rc, 0, "tf_tls_ctx_new: %d %s", rc, err);
    return ctx;
}

/* wolfSSL's verify callback. The client loads no CA, so the top of every
 * served chain fails to verify and wolfSSL calls this with the whole chain
 * as received (leaf first); keep the leaf and accept. Native API: the
 * compatibility layer's wolfSSL_get_peer_certificate needs KEEP_PEER_CERT,
 * which costs every server connection 3.5 KB (docs/TLS.md). */
static int c_verify(int preverify, WOLFSSL_X509_STORE_CTX *vs)
{
    (void)preverify;
    hx_pair_t *p = vs->userCtx;
    if (p != NULL && p->peer_leaf.len == 0 && vs->certs != NULL && vs->totalCerts > 0)
        hx_bytes_append(&p->peer_leaf, vs->certs[0].buffer, vs->certs[0].length);
    return 1;
}

WOLFSSL_CTX *hx_client_ctx(int version, const char *ciphers)
{
    WOLFSSL_METHOD *m = version == 12   ? wolfTLSv1_2_client_method()
                        : version == 13 ? wolfTLSv1_3_client_method()
                                        : wolfSSLv23_client_method();
    WOLFSSL_CTX *c = wolfSSL_CTX_new(m);
    cr_assert_not_null(c);
    wolfSSL_CTX_set_verify(c, WOLFSSL_VERIFY_PEER, c_verify);
    if (ciphers != NULL)
        cr_assert_eq(wolfSSL_CTX_set_cipher_list(c, ciphers), WOLFSSL_SUCCESS);
    return c;
}

void hx_bytes_append(hx_bytes_t *b, const void *data, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n)
            cap *= 2;
        b->buf = realloc(b->buf, cap);
        cr_assert_not_null(b->buf);
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
}

void hx_bytes_free(hx_bytes_t *b)
{
    free(b->buf);
    *b = (hx_bytes_t){0};
}

static int c_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    (void)ssl;
    hx_pair_t *p = arg;
    if (p->s2c.len == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = p->s2c.len < (size_t)sz ? p->s2c.len : (size_t)sz;
    memcpy(buf, p->s2c.buf, n);
    memmove(p->s2c.buf, p->s2c.buf + n, p->s2c.len - n);
    p->s2c.len -= n;
    return (int)n;
}

static int c_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    (void)ssl;
    hx_pair_t *p = arg;
    hx_bytes_append(&p->c2s, buf, (size_t)sz);
    return sz;
}

hx_pair_t *hx_pair_new(tf_tls_ctx_t *ctx, WOLFSSL_CTX *cctx, const char *sni, bool alpn)
{
    return hx_pair_new_on(ctx, snap, cctx, sni, alpn);
}

WOLFSSL_SESSION *hx_first_visit(tf_tls_ctx_t *ctx, tf_cs_snapshot_t *on, WOLFSSL_CTX *cctx,
                                const char *sni)
{
    hx_pair_t *p = hx_pair_new_on(ctx, on != NULL ? on : snap, cctx, sni, true);
    cr_assert_eq(wolfSSL_UseSessionTicket(p->c), WOLFSSL_SUCCESS);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK, "%s", tf_tls_session_error(p->s));
    cr_expect_not(tf_tls_session_resumed(p->s));
    char buf[64];
    cr_assert_eq(hx_client_to_server(p, "ping", 4, buf, sizeof buf), 4);
    cr_assert_eq(hx_server_to_client(p, "pong", 4, buf, sizeof buf), 4);
    WOLFSSL_SESSION *sess = wolfSSL_get1_session(p->c);
    cr_assert_not_null(sess);
    hx_pair_free(p);
    return sess;
}

hx_pair_t *hx_pair_new_on(tf_tls_ctx_t *ctx, tf_cs_snapshot_t *on, WOLFSSL_CTX *cctx,
                          const char *sni, bool alpn)
{
    hx_pair_t *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    p->s = tf_tls_session_new(ctx, on);
    cr_assert_not_null(p->s);
    wolfSSL_CTX_SetIORecv(cctx, c_recv);
    wolfSSL_CTX_SetIOSend(cctx, c_send);
    side(true);
    p->c = wolfSSL_new(cctx);
    side(false);
    cr_assert_not_null(p->c);
    wolfSSL_SetIOReadCtx(p->c, p);
    wolfSSL_SetIOWriteCtx(p->c, p);
    wolfSSL_SetCertCbCtx(p->c, p);
    if (sni != NULL)
        cr_assert_eq(wolfSSL_UseSNI(p->c, WOLFSSL_SNI_HOST_NAME, sni, (unsigned short)strlen(sni)),
                     WOLFSSL_SUCCESS);
    if (alpn) {
        char proto[] = "http/1.1";
        cr_assert_eq(wolfSSL_UseALPN(p->c, proto, 8, WOLFSSL_ALPN_FAILED_ON_MISMATCH),
                     WOLFSSL_SUCCESS);
    }
    return p;
}

void hx_pair_free(hx_pair_t *p)
{
    if (p == NULL)
        return;
    side(true);
    wolfSSL_free(p->c);
    side(false);
    tf_tls_session_free(p->s);
    hx_bytes_free(&p->c2s);
    hx_bytes_free(&p->s2c);
    hx_bytes_free(&p->server_log);
    hx_bytes_free(&p->peer_leaf);
    free(p);
}

static void drain_server(hx_pair_t *p)
{
    size_t n;
    const void *o = tf_tls_session_out(p->s, &n);
    if (n > 0) {
        hx_bytes_append(&p->s2c, o, n);
        hx_bytes_append(&p->server_log, o, n);
        tf_tls_session_consume_out(p->s, n);
    }
}

/* Feeds the client's bytes to the server (in pieces if asked) and calls
 * step after each piece. */
static void feed_server(hx_pair_t *p, void (*step)(hx_pair_t *))
{
    size_t off = 0;
    while (off < p->c2s.len) {
        size_t n = p->piece ? p->piece : p->c2s.len - off;
        if (n > p->c2s.len - off)
            n = p->c2s.len - off;
        cr_assert_eq(tf_tls_session_feed(p->s, p->c2s.buf + off, n), 0);
        off += n;
        if (step != NULL)
            step(p);
    }
    p->c2s.len = 0;
}

static void server_step(hx_pair_t *p)
{
    if (p->server_rc == TF_TLS_WANT_READ)
        p->server_rc = tf_tls_session_handshake(p->s);
    drain_server(p);
}

void hx_pump(hx_pair_t *p)
{
    feed_server(p, NULL);
    drain_server(p);
}

int hx_handshake(hx_pair_t *p)
{
    bool cdone = false;
    p->server_rc = TF_TLS_WANT_READ;
    for (int i = 0; i < 50; i++) {
        if (!cdone && p->client_err == 0) {
            side(true);
            int r = wolfSSL_connect(p->c);
            side(false);
            if (r == WOLFSSL_SUCCESS)
                cdone = true;
            else if (wolfSSL_get_error(p->c, r) != WOLFSSL_ERROR_WANT_READ)
                p->client_err = wolfSSL_get_error(p->c, r);
        }
        feed_server(p, server_step);
        if (p->server_rc == TF_TLS_WANT_READ && p->c2s.len == 0)
            server_step(p);
        if ((cdone || p->client_err != 0) && p->server_rc != TF_TLS_WANT_READ)
            break;
        if (p->client_err != 0 && p->s2c.len == 0 && p->c2s.len == 0)
            break;
    }
    return p->server_rc;
}

size_t hx_client_to_server(hx_pair_t *p, const void *data, size_t len, void *out, size_t cap)
{
    side(true);
    int w = wolfSSL_write(p->c, data, (int)len);
    side(false);
    cr_assert_eq(w, (int)len);
    size_t got = 0;
    feed_server(p, NULL);
    while (got < cap) {
        size_t n;
        int rc = tf_tls_session_recv(p->s, (char *)out + got, cap - got, &n);
        drain_server(p);
        if (rc != TF_TLS_OK)
            break;
        got += n;
    }
    return got;
}

size_t hx_server_to_client(hx_pair_t *p, const void *data, size_t len, void *out, size_t cap)
{
    cr_assert_eq(tf_tls_session_write(p->s, data, len), (ssize_t)len);
    drain_server(p);
    size_t got = 0;
    while (got < cap) {
        side(true);
        int n = wolfSSL_read(p->c, (char *)out + got, (int)(cap - got));
        side(false);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

void hx_peer_subject(hx_pair_t *p, char *buf, size_t len)
{
    cr_assert_gt(p->peer_leaf.len, 0, "the client received no certificate");
    DecodedCert d;
    wc_InitDecodedCert(&d, p->peer_leaf.buf, (word32)p->peer_leaf.len, NULL);
    int rc = wc_ParseCert(&d, CERT_TYPE, NO_VERIFY, NULL);
    if (rc == 0)
        snprintf(buf, len, "%s", d.subject);
    wc_FreeDecodedCert(&d);
    cr_assert_eq(rc, 0, "the served leaf does not parse: %d", rc);
}

/* ---- openssl s_client over loopback ---------------------------------- */

void hx_peer_start(hx_peer_t *p, tf_tls_ctx_t *ctx, tf_cs_snapshot_t *on, const char *args)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(l, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    snprintf(p->log, sizeof p->log, "%s/s_client.log", dir);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec openssl s_client -connect 127.0.0.1:%d %s >'%s' 2>&1",
             ntohs(a.sin_port), args, p->log);
    p->client_stdin = popen(cmd, "w");
    cr_assert_not_null(p->client_stdin);
    struct pollfd pf = {.fd = l, .events = POLLIN};
    cr_assert_eq(poll(&pf, 1, 10000), 1, "s_client did not connect");
    p->fd = accept(l, NULL, NULL);
    cr_assert_geq(p->fd, 0);
    close(l);
    p->s = tf_tls_session_new(ctx, on != NULL ? on : snap);
    cr_assert_not_null(p->s);
}

void hx_peer_flush(hx_peer_t *p)
{
    size_t n;
    const void *o = tf_tls_session_out(p->s, &n);
    if (n > 0) {
        cr_assert_eq(send(p->fd, o, n, 0), (ssize_t)n);
        tf_tls_session_consume_out(p->s, n);
    }
}

bool hx_peer_pull(hx_peer_t *p, int timeout_ms)
{
    struct pollfd pf = {.fd = p->fd, .events = POLLIN};
    if (poll(&pf, 1, timeout_ms) != 1)
        return false;
    char buf[16384];
    ssize_t n = recv(p->fd, buf, sizeof buf, 0);
    if (n <= 0)
        return false;
    cr_assert_eq(tf_tls_session_feed(p->s, buf, (size_t)n), 0);
    return true;
}

int hx_peer_handshake(hx_peer_t *p)
{
    int rc = TF_TLS_WANT_READ;
    while (rc == TF_TLS_WANT_READ && hx_peer_pull(p, 10000)) {
        rc = tf_tls_session_handshake(p->s);
        hx_peer_flush(p);
    }
    return rc;
}

void hx_peer_stop(hx_peer_t *p)
{
    tf_tls_session_free(p->s);
    p->s = NULL;
    close(p->fd);
    pclose(p->client_stdin);
}

const char *hx_peer_output(const hx_peer_t *p)
{
    static char text[65536];
    text[0] = '\0';
    FILE *f = fopen(p->log, "r");
    if (f == NULL)
        return text;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

bool hx_peer_log_has(const hx_peer_t *p, const char *needle)
{
    return strstr(hx_peer_output(p), needle) != NULL;
}

bool hx_h2_allowed(void *ud, const char *sni)
{
    hx_h2_t *h = ud;
    h->calls++;
    h->sni_null = sni == NULL;
    snprintf(h->sni, sizeof h->sni, "%s", sni != NULL ? sni : "");
    return h->allow;
}
