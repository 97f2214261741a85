/* tls/ against a real peer: `openssl s_client` over loopback TCP, the test
 * moving bytes between the socket and a tf_tls session. Covers what a
 * wolfSSL client built without renegotiation and old versions cannot ask
 * for: a TLS 1.2 renegotiation attempt, and a TLS 1.1-only client. */
#include "harness.h"

#include "common/err.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    hx_setup(false);
}

TestSuite(tls_openssl, .init = setup, .fini = hx_teardown, .timeout = 60);

typedef struct {
    int fd;
    FILE *client_stdin;
    char log[1200];
    tf_tls_session_t *s;
} peer_t;

/* Starts s_client with ARGS against a loopback listener and accepts it. */
static void peer_start(peer_t *p, tf_tls_ctx_t *ctx, const char *args)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(l, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    snprintf(p->log, sizeof p->log, "%s/s_client.log", hx_dir());
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "exec openssl s_client -connect 127.0.0.1:%d -servername portal.acme.example "
             "%s >'%s' 2>&1",
             ntohs(a.sin_port), args, p->log);
    p->client_stdin = popen(cmd, "w");
    cr_assert_not_null(p->client_stdin);
    struct pollfd pf = {.fd = l, .events = POLLIN};
    cr_assert_eq(poll(&pf, 1, 10000), 1, "s_client did not connect");
    p->fd = accept(l, NULL, NULL);
    cr_assert_geq(p->fd, 0);
    close(l);
    p->s = tf_tls_session_new(ctx, hx_snap());
    cr_assert_not_null(p->s);
}

static void peer_flush(peer_t *p)
{
    size_t n;
    const void *o = tf_tls_session_out(p->s, &n);
    if (n > 0) {
        cr_assert_eq(send(p->fd, o, n, 0), (ssize_t)n);
        tf_tls_session_consume_out(p->s, n);
    }
}

/* Reads from the socket into the session; false on EOF or timeout. */
static bool peer_pull(peer_t *p, int timeout_ms)
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

static int peer_handshake(peer_t *p)
{
    int rc = TF_TLS_WANT_READ;
    while (rc == TF_TLS_WANT_READ && peer_pull(p, 10000)) {
        rc = tf_tls_session_handshake(p->s);
        peer_flush(p);
    }
    return rc;
}

static void peer_stop(peer_t *p)
{
    tf_tls_session_free(p->s);
    close(p->fd);
    pclose(p->client_stdin);
}

static bool log_has(const peer_t *p, const char *needle)
{
    FILE *f = fopen(p->log, "r");
    if (f == NULL)
        return false;
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return strstr(text, needle) != NULL;
}

Test(tls_openssl, tls12_renegotiation_is_refused)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    peer_t p;
    peer_start(&p, ctx, "-tls1_2");
    cr_assert_eq(peer_handshake(&p), TF_TLS_OK, "%s", tf_tls_session_error(p.s));
    cr_expect_str_eq(tf_tls_session_version(p.s), "TLSv1.2");
    /* s_client's "R" command starts a renegotiation. */
    fputs("R\n", p.client_stdin);
    fflush(p.client_stdin);
    int rc = TF_TLS_WANT_READ;
    while (rc == TF_TLS_WANT_READ && peer_pull(&p, 10000)) {
        char buf[4096];
        size_t n;
        do
            rc = tf_tls_session_recv(p.s, buf, sizeof buf, &n);
        while (rc == TF_TLS_OK);
        peer_flush(&p);
    }
    cr_expect_eq(rc, TF_ETLS, "renegotiation not refused: %d", rc);
    cr_expect_str_neq(tf_tls_session_error(p.s), "no error");
    peer_stop(&p);
    cr_expect(log_has(&p, "RENEGOTIATING"), "s_client did not try to renegotiate");
    tf_tls_ctx_free(ctx);
}

Test(tls_openssl, tls11_client_is_refused)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    peer_t p;
    /* OpenSSL 3 offers TLS 1.1 only at security level 0. */
    peer_start(&p, ctx, "-ign_eof -tls1_1 -cipher DEFAULT@SECLEVEL=0");
    cr_expect_eq(peer_handshake(&p), TF_ETLS);
    cr_expect_str_eq(tf_tls_session_error(p.s), "protocol version not supported");
    peer_stop(&p);
    tf_tls_ctx_free(ctx);
}

Test(tls_openssl, tls13_and_alpn_with_openssl)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    peer_t p;
    peer_start(&p, ctx, "-ign_eof -tls1_3 -alpn h2,http/1.1");
    cr_assert_eq(peer_handshake(&p), TF_TLS_OK, "%s", tf_tls_session_error(p.s));
    cr_expect_str_eq(tf_tls_session_version(p.s), "TLSv1.3");
    cr_expect_str_eq(tf_tls_session_alpn(p.s), "http/1.1");
    cr_expect_str_eq(tf_tls_session_sni(p.s), "portal.acme.example");
    peer_stop(&p);
    cr_expect(log_has(&p, "ALPN protocol: http/1.1"));
    tf_tls_ctx_free(ctx);
}
