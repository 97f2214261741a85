/* tls/ against a real peer: `openssl s_client` over loopback TCP, the test
 * moving bytes between the socket and a tf_tls session. Covers what a
 * wolfSSL client built without renegotiation and old versions cannot ask
 * for: a TLS 1.2 renegotiation attempt, and a TLS 1.1-only client. */
#include "harness.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    hx_setup(false);
}

TestSuite(tls_openssl, .init = setup, .fini = hx_teardown, .timeout = 60);

Test(tls_openssl, tls12_renegotiation_is_refused)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    hx_peer_t p;
    hx_peer_start(&p, ctx, NULL, "-servername portal.acme.example -tls1_2");
    cr_assert_eq(hx_peer_handshake(&p), TF_TLS_OK, "%s", tf_tls_session_error(p.s));
    cr_expect_str_eq(tf_tls_session_version(p.s), "TLSv1.2");
    /* s_client's "R" command starts a renegotiation. */
    fputs("R\n", p.client_stdin);
    fflush(p.client_stdin);
    int rc = TF_TLS_WANT_READ;
    while (rc == TF_TLS_WANT_READ && hx_peer_pull(&p, 10000)) {
        char buf[4096];
        size_t n;
        do
            rc = tf_tls_session_recv(p.s, buf, sizeof buf, &n);
        while (rc == TF_TLS_OK);
        hx_peer_flush(&p);
    }
    cr_expect_eq(rc, TF_ETLS, "renegotiation not refused: %d", rc);
    cr_expect_str_neq(tf_tls_session_error(p.s), "no error");
    hx_peer_stop(&p);
    cr_expect(hx_peer_log_has(&p, "RENEGOTIATING"), "s_client did not try to renegotiate");
    tf_tls_ctx_free(ctx);
}

Test(tls_openssl, tls11_client_is_refused)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    hx_peer_t p;
    /* OpenSSL 3 offers TLS 1.1 only at security level 0. */
    hx_peer_start(&p, ctx, NULL,
                  "-servername portal.acme.example -ign_eof -tls1_1 -cipher DEFAULT@SECLEVEL=0");
    cr_expect_eq(hx_peer_handshake(&p), TF_ETLS);
    cr_expect_str_eq(tf_tls_session_error(p.s), "protocol version not supported");
    hx_peer_stop(&p);
    tf_tls_ctx_free(ctx);
}

Test(tls_openssl, tls13_and_alpn_with_openssl)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    hx_peer_t p;
    hx_peer_start(&p, ctx, NULL,
                  "-servername portal.acme.example -ign_eof -tls1_3 -alpn h2,http/1.1");
    cr_assert_eq(hx_peer_handshake(&p), TF_TLS_OK, "%s", tf_tls_session_error(p.s));
    cr_expect_str_eq(tf_tls_session_version(p.s), "TLSv1.3");
    cr_expect_str_eq(tf_tls_session_alpn(p.s), "http/1.1");
    cr_expect_str_eq(tf_tls_session_sni(p.s), "portal.acme.example");
    hx_peer_stop(&p);
    cr_expect(hx_peer_log_has(&p, "ALPN protocol: http/1.1"));
    tf_tls_ctx_free(ctx);
}

/* ALPN h2 (SPEC §12) with a real peer: s_client -alpn, TLS 1.3 and 1.2. */
static void openssl_alpn(const char *args, bool allow, const char *want, const char *want_sni)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    hx_peer_t p;
    hx_peer_start(&p, ctx, NULL, args);
    hx_h2_t h = {.allow = allow};
    tf_tls_session_set_h2(p.s, hx_h2_allowed, &h);
    cr_assert_eq(hx_peer_handshake(&p), TF_TLS_OK, "%s: %s", args, tf_tls_session_error(p.s));
    const char *got = tf_tls_session_alpn(p.s);
    if (want == NULL)
        cr_expect_null(got, "%s: %s", args, got);
    else
        cr_expect(got != NULL && strcmp(got, want) == 0, "%s: %s", args, got ? got : "(none)");
    cr_expect_eq(h.calls, 1, "%s", args);
    if (want_sni == NULL)
        cr_expect(h.sni_null, "%s: %s", args, h.sni);
    else
        cr_expect_str_eq(h.sni, want_sni, "%s", args);
    hx_peer_stop(&p);
    char line[64];
    snprintf(line, sizeof line, "ALPN protocol: %s", want);
    if (want == NULL)
        cr_expect(hx_peer_log_has(&p, "No ALPN negotiated"), "%s", args);
    else
        cr_expect(hx_peer_log_has(&p, line), "%s: s_client did not report %s", args, want);
    tf_tls_ctx_free(ctx);
}

Test(tls_openssl, alpn_h2_with_openssl)
{
    static const char *const versions[] = {"-tls1_3", "-tls1_2"};
    for (int i = 0; i < 2; i++) {
        char args[256];
        snprintf(args, sizeof args, "-servername portal.acme.example -ign_eof %s -alpn h2,http/1.1",
                 versions[i]);
        openssl_alpn(args, true, "h2", "portal.acme.example");
        openssl_alpn(args, false, "http/1.1", "portal.acme.example");
        snprintf(args, sizeof args, "-servername portal.acme.example -ign_eof %s -alpn h2",
                 versions[i]);
        openssl_alpn(args, false, NULL, "portal.acme.example");
        openssl_alpn(args, true, "h2", "portal.acme.example");
        /* The client's order decides. */
        snprintf(args, sizeof args, "-servername portal.acme.example -ign_eof %s -alpn http/1.1,h2",
                 versions[i]);
        openssl_alpn(args, true, "http/1.1", "portal.acme.example");
        /* No SNI: the function is asked with NULL. */
        snprintf(args, sizeof args, "-noservername -ign_eof %s -alpn h2,http/1.1", versions[i]);
        openssl_alpn(args, true, "h2", NULL);
    }
}
