/* tls/: contexts and sessions in memory (SPEC §4.4, §6): certificate
 * selection by SNI, versions and suites, ALPN, close_notify, bad input,
 * large transfers and piecewise input. The client is wolfSSL itself. */
#include "harness.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* Sessions run as on a worker thread: with wolfSSL's record buffers
 * cached (tls/alloc.c). */
static void setup(void)
{
    hx_setup(true);
    tf_tls_thread_init();
}

static void teardown(void)
{
    tf_tls_thread_cleanup();
    hx_teardown();
}

TestSuite(tls_session, .init = setup, .fini = teardown, .timeout = 60);

/* One handshake with SNI `sni`; the served subject goes into subject. */
static int connect_sni(tf_tls_ctx_t *ctx, int version, const char *sni, char *subject, size_t len,
                       tf_cs_selection_t *how)
{
    WOLFSSL_CTX *cc = hx_client_ctx(version, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, sni, false);
    int rc = hx_handshake(p);
    if (rc != TF_TLS_OK)
        cr_log_info("SNI %s: server %d %s, client %d", sni ? sni : "-", rc,
                    tf_tls_session_error(p->s), p->client_err);
    if (rc == TF_TLS_OK) {
        cr_assert_eq(p->client_err, 0);
        hx_peer_subject(p, subject, len);
        *how = tf_tls_session_selection(p->s);
        const char *got = tf_tls_session_sni(p->s);
        if (sni == NULL)
            cr_expect_null(got);
        else
            cr_expect_str_eq(got, sni);
    }
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    return rc;
}

static void expect_served(tf_tls_ctx_t *ctx, int version, const char *sni, const char *subject,
                          tf_cs_selection_t how)
{
    char got[256] = "";
    tf_cs_selection_t h = 0;
    cr_assert_eq(connect_sni(ctx, version, sni, got, sizeof got, &h), TF_TLS_OK, "SNI %s",
                 sni ? sni : "(none)");
    cr_expect_str_eq(got, subject, "SNI %s", sni ? sni : "(none)");
    cr_expect_eq(h, how, "SNI %s", sni ? sni : "(none)");
}

Test(tls_session, selects_exact_wildcard_default_no_sni_tls13_and_tls12)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        int v = versions[i];
        expect_served(ctx, v, "portal.acme.example", "/CN=portal.acme.example", TF_CS_SEL_EXACT);
        expect_served(ctx, v, "chat.acme.example", "/CN=portal.acme.example", TF_CS_SEL_EXACT);
        expect_served(ctx, v, "x.tenants.example", "/CN=*.tenants.example", TF_CS_SEL_WILDCARD);
        expect_served(ctx, v, "nobody.example", "/CN=system.example", TF_CS_SEL_DEFAULT);
        expect_served(ctx, v, NULL, "/CN=system.example", TF_CS_SEL_NO_SNI);
        expect_served(ctx, v, "system.example", "/CN=system.example", TF_CS_SEL_EXACT);
        /* An RSA certificate behind an ECDSA default: the signature
         * algorithm follows the certificate chosen. */
        expect_served(ctx, v, "rsa.example", "/CN=rsa.example", TF_CS_SEL_EXACT);
    }
    tf_tls_ctx_free(ctx);
}

Test(tls_session, reports_version_cipher_alpn)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(0, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", true);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK);
    cr_expect_str_eq(tf_tls_session_version(p->s), "TLSv1.3");
    const char *cipher = tf_tls_session_cipher(p->s);
    cr_expect(strstr(cipher, "TLS13-") == cipher || strstr(cipher, "TLS_") == cipher, "%s", cipher);
    cr_expect_str_eq(tf_tls_session_alpn(p->s), "http/1.1");
    cr_expect_not(tf_tls_session_resumed(p->s));
    cr_expect_not_null(tf_tls_session_served(p->s));
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);

    cc = hx_client_ctx(12, NULL);
    p = hx_pair_new(ctx, cc, "portal.acme.example", false);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK);
    cr_expect_str_eq(tf_tls_session_version(p->s), "TLSv1.2");
    cipher = tf_tls_session_cipher(p->s);
    cr_expect(strstr(cipher, "ECDHE-ECDSA-") != NULL &&
                  (strstr(cipher, "GCM") != NULL || strstr(cipher, "CHACHA20") != NULL),
              "%s", cipher);
    cr_expect_null(tf_tls_session_alpn(p->s));
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

static const uint8_t k_alert_112[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70};

Test(tls_session, unknown_sni_reject_sends_unrecognized_name)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, true, NULL);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        WOLFSSL_CTX *cc = hx_client_ctx(versions[i], NULL);
        hx_pair_t *p = hx_pair_new(ctx, cc, "nobody.example", false);
        cr_expect_eq(hx_handshake(p), TF_ETLS);
        cr_expect_str_eq(tf_tls_session_error(p->s), "unknown SNI rejected: unrecognized_name");
        cr_expect_str_eq(tf_tls_session_sni(p->s), "nobody.example");
        cr_assert_eq(p->server_log.len, sizeof k_alert_112, "server sent %zu bytes",
                     p->server_log.len);
        cr_expect_arr_eq(p->server_log.buf, k_alert_112, sizeof k_alert_112);
        cr_expect_neq(p->client_err, 0);
        hx_pair_free(p);
        wolfSSL_CTX_free(cc);
    }
    /* Known names and no SNI at all still work. */
    expect_served(ctx, 13, "x.tenants.example", "/CN=*.tenants.example", TF_CS_SEL_WILDCARD);
    expect_served(ctx, 12, NULL, "/CN=system.example", TF_CS_SEL_NO_SNI);
    tf_tls_ctx_free(ctx);
}

Test(tls_session, tls13_only_refuses_tls12)
{
    tf_tls_ctx_t *ctx = hx_ctx(true, false, NULL);
    expect_served(ctx, 13, "portal.acme.example", "/CN=portal.acme.example", TF_CS_SEL_EXACT);
    char subject[256];
    tf_cs_selection_t how;
    cr_expect_lt(connect_sni(ctx, 12, "portal.acme.example", subject, sizeof subject, &how), 0);
    tf_tls_ctx_free(ctx);
}

Test(tls_session, refuses_cbc_only_tls12_client)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    WOLFSSL_CTX *cc = wolfSSL_CTX_new(wolfTLSv1_2_client_method());
    cr_assert_not_null(cc);
    wolfSSL_CTX_set_verify(cc, WOLFSSL_VERIFY_NONE, NULL);
    /* Whatever CBC suites this wolfSSL build can offer. */
    if (wolfSSL_CTX_set_cipher_list(cc, "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:"
                                        "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA256:"
                                        "DHE-RSA-AES128-SHA256:AES128-SHA256:AES128-SHA") !=
        WOLFSSL_SUCCESS) {
        wolfSSL_CTX_free(cc);
        tf_tls_ctx_free(ctx);
        cr_skip_test("this wolfSSL build has no CBC suite to offer");
    }
    hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", false);
    cr_expect_eq(hx_handshake(p), TF_ETLS);
    cr_expect_str_eq(tf_tls_session_error(p->s), "no shared cipher suite");
    /* A fatal handshake_failure alert. */
    cr_assert_geq(p->server_log.len, 7);
    cr_expect_eq(p->server_log.buf[0], 0x15);
    cr_expect_eq(p->server_log.buf[5], 0x02);
    cr_expect_eq(p->server_log.buf[6], 40);
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

/* wolfSSL is built without TLS 1.0/1.1, so no wolfSSL client can ask for
 * them: take a real TLS 1.2 ClientHello and lower its client_version to
 * TLS 1.1 (0x0302). The record layer says 0x0301 already. */
Test(tls_session, refuses_tls11_client_hello)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(12, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", false);
    cr_assert_eq(wolfSSL_connect(p->c), WOLFSSL_FATAL_ERROR);
    cr_assert_gt(p->c2s.len, 11);
    cr_assert_eq(p->c2s.buf[0], 0x16);
    cr_assert_eq(p->c2s.buf[5], 0x01); /* ClientHello */
    cr_assert_eq(p->c2s.buf[9], 0x03);
    cr_assert_eq(p->c2s.buf[10], 0x03);
    p->c2s.buf[10] = 0x02;
    cr_assert_eq(tf_tls_session_feed(p->s, p->c2s.buf, p->c2s.len), 0);
    p->c2s.len = 0;
    cr_expect_eq(tf_tls_session_handshake(p->s), TF_ETLS);
    cr_expect_str_eq(tf_tls_session_error(p->s), "protocol version not supported");
    size_t n;
    const uint8_t *o = tf_tls_session_out(p->s, &n);
    cr_assert_eq(n, 7);
    cr_expect_eq(o[0], 0x15);
    cr_expect_eq(o[5], 0x02);
    cr_expect_eq(o[6], 70); /* protocol_version */
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

Test(tls_session, alpn_other_protocol_is_ignored)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", false);
    char h2[] = "h2";
    cr_assert_eq(wolfSSL_UseALPN(p->c, h2, 2, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH), WOLFSSL_SUCCESS);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK);
    cr_expect_null(tf_tls_session_alpn(p->s));
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

/* ALPN h2 (SPEC §12): a handshake whose client offers `offer` (a
 * comma-separated list, NULL: no ALPN) with the session asking h (NULL: no
 * function). Returns what the server negotiated, as a static string. */
static const char *alpn_with(tf_tls_ctx_t *ctx, int version, const char *sni, const char *offer,
                             hx_h2_t *h)
{
    WOLFSSL_CTX *cc = hx_client_ctx(version, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, sni, false);
    if (offer != NULL) {
        char list[64];
        snprintf(list, sizeof list, "%s", offer);
        cr_assert_eq(
            wolfSSL_UseALPN(p->c, list, (unsigned)strlen(list), WOLFSSL_ALPN_CONTINUE_ON_MISMATCH),
            WOLFSSL_SUCCESS);
    }
    if (h != NULL)
        tf_tls_session_set_h2(p->s, hx_h2_allowed, h);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK, "%s", tf_tls_session_error(p->s));
    cr_assert_eq(p->client_err, 0);
    const char *got = tf_tls_session_alpn(p->s);
    /* The client agrees. */
    char *name = NULL;
    unsigned short n = 0;
    if (got == NULL)
        cr_expect_neq(wolfSSL_ALPN_GetProtocol(p->c, &name, &n), WOLFSSL_SUCCESS);
    else {
        cr_expect_eq(wolfSSL_ALPN_GetProtocol(p->c, &name, &n), WOLFSSL_SUCCESS);
        cr_expect(n == strlen(got) && memcmp(name, got, n) == 0, "client has %.*s", (int)n,
                  name != NULL ? name : "");
    }
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    return got;
}

Test(tls_session, alpn_h2_when_allowed)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        hx_h2_t h = {.allow = true};
        const char *got = alpn_with(ctx, versions[i], "portal.acme.example", "h2,http/1.1", &h);
        cr_expect(got != NULL && strcmp(got, "h2") == 0, "TLS %d: %s", versions[i],
                  got ? got : "(none)");
        cr_expect_eq(h.calls, 1);
        cr_expect_not(h.sni_null);
        cr_expect_str_eq(h.sni, "portal.acme.example");
        /* Only h2 offered. */
        h = (hx_h2_t){.allow = true};
        got = alpn_with(ctx, versions[i], "portal.acme.example", "h2", &h);
        cr_expect(got != NULL && strcmp(got, "h2") == 0, "TLS %d: %s", versions[i],
                  got ? got : "(none)");
        /* Only http/1.1 offered. */
        h = (hx_h2_t){.allow = true};
        got = alpn_with(ctx, versions[i], "portal.acme.example", "http/1.1", &h);
        cr_expect(got != NULL && strcmp(got, "http/1.1") == 0, "TLS %d: %s", versions[i],
                  got ? got : "(none)");
        /* No ALPN at all: asked anyway, nothing negotiated. */
        h = (hx_h2_t){.allow = true};
        cr_expect_null(alpn_with(ctx, versions[i], "portal.acme.example", NULL, &h));
        /* Another protocol only. */
        h = (hx_h2_t){.allow = true};
        cr_expect_null(alpn_with(ctx, versions[i], "portal.acme.example", "spdy/3.1", &h));
    }
    tf_tls_ctx_free(ctx);
}

Test(tls_session, alpn_h2_follows_the_client_order)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    hx_h2_t h = {.allow = true};
    const char *got = alpn_with(ctx, 13, "portal.acme.example", "http/1.1,h2", &h);
    cr_expect(got != NULL && strcmp(got, "http/1.1") == 0, "%s", got ? got : "(none)");
    h = (hx_h2_t){.allow = true};
    got = alpn_with(ctx, 13, "portal.acme.example", "spdy/3.1,h2,http/1.1", &h);
    cr_expect(got != NULL && strcmp(got, "h2") == 0, "%s", got ? got : "(none)");
    tf_tls_ctx_free(ctx);
}

Test(tls_session, alpn_h2_refused_gives_http11_or_nothing)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        hx_h2_t h = {.allow = false};
        const char *got = alpn_with(ctx, versions[i], "x.tenants.example", "h2,http/1.1", &h);
        cr_expect(got != NULL && strcmp(got, "http/1.1") == 0, "TLS %d: %s", versions[i],
                  got ? got : "(none)");
        cr_expect_eq(h.calls, 1);
        cr_expect_str_eq(h.sni, "x.tenants.example");
        /* A client offering only h2 still connects, without ALPN. */
        h = (hx_h2_t){.allow = false};
        cr_expect_null(alpn_with(ctx, versions[i], "x.tenants.example", "h2", &h));
        cr_expect_eq(h.calls, 1);
    }
    tf_tls_ctx_free(ctx);
}

Test(tls_session, alpn_without_h2_function_is_http11_only)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    const char *got = alpn_with(ctx, 13, "portal.acme.example", "h2,http/1.1", NULL);
    cr_expect(got != NULL && strcmp(got, "http/1.1") == 0, "%s", got ? got : "(none)");
    cr_expect_null(alpn_with(ctx, 13, "portal.acme.example", "h2", NULL));
    tf_tls_ctx_free(ctx);
}

Test(tls_session, alpn_h2_function_gets_the_sni)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    /* No SNI: NULL. */
    hx_h2_t h = {.allow = true, .sni = "stale"};
    const char *got = alpn_with(ctx, 13, NULL, "h2,http/1.1", &h);
    cr_expect(got != NULL && strcmp(got, "h2") == 0, "%s", got ? got : "(none)");
    cr_expect_eq(h.calls, 1);
    cr_expect(h.sni_null);
    /* An unknown name, served the default certificate: as sent. */
    h = (hx_h2_t){.allow = true};
    got = alpn_with(ctx, 12, "Nobody.Example", "h2,http/1.1", &h);
    cr_expect(got != NULL && strcmp(got, "h2") == 0, "%s", got ? got : "(none)");
    cr_expect_str_eq(h.sni, "Nobody.Example");
    /* Delivered in pieces: asked once, when the ClientHello is whole. */
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "chat.acme.example", false);
    p->piece = 7;
    char list[] = "h2,http/1.1";
    cr_assert_eq(wolfSSL_UseALPN(p->c, list, sizeof list - 1, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH),
                 WOLFSSL_SUCCESS);
    h = (hx_h2_t){.allow = true};
    tf_tls_session_set_h2(p->s, hx_h2_allowed, &h);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK, "%s", tf_tls_session_error(p->s));
    cr_expect_str_eq(tf_tls_session_alpn(p->s), "h2");
    cr_expect_eq(h.calls, 1);
    cr_expect_str_eq(h.sni, "chat.acme.example");
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

Test(tls_session, alpn_h2_not_asked_for_a_rejected_sni)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, true, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "nobody.example", false);
    hx_h2_t h = {.allow = true};
    tf_tls_session_set_h2(p->s, hx_h2_allowed, &h);
    cr_expect_eq(hx_handshake(p), TF_ETLS);
    cr_expect_eq(h.calls, 0);
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

Test(tls_session, close_notify_gives_closed)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        WOLFSSL_CTX *cc = hx_client_ctx(versions[i], NULL);
        hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", true);
        cr_assert_eq(hx_handshake(p), TF_TLS_OK);
        char buf[64];
        cr_assert_eq(hx_client_to_server(p, "ping", 4, buf, sizeof buf), 4);
        cr_expect_arr_eq(buf, "ping", 4);
        wolfSSL_shutdown(p->c);
        hx_pump(p);
        size_t n;
        cr_expect_eq(tf_tls_session_recv(p->s, buf, sizeof buf, &n), TF_TLS_CLOSED);
        cr_expect_eq(tf_tls_session_recv(p->s, buf, sizeof buf, &n), TF_TLS_CLOSED);
        /* Our close_notify in reply. */
        cr_expect_eq(tf_tls_session_shutdown(p->s), 0);
        cr_expect_not_null(tf_tls_session_out(p->s, &n));
        cr_expect_gt(n, 0);
        /* wolfSSL resets itself after the exchange; the log still needs the name. */
        cr_expect_str_eq(tf_tls_session_sni(p->s), "portal.acme.example");
        hx_pair_free(p);
        wolfSSL_CTX_free(cc);
    }
    tf_tls_ctx_free(ctx);
}

Test(tls_session, input_empty_says_when_another_read_would_only_want_more)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        WOLFSSL_CTX *cc = hx_client_ctx(versions[i], NULL);
        hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", true);
        cr_assert_eq(hx_handshake(p), TF_TLS_OK);
        char buf[64];
        size_t n;
        cr_expect(tf_tls_session_input_empty(p->s));
        /* Two records in one feed: the first read leaves the second. */
        cr_assert_eq(wolfSSL_write(p->c, "one", 3), 3);
        cr_assert_eq(wolfSSL_write(p->c, "two", 3), 3);
        hx_pump(p);
        cr_expect_not(tf_tls_session_input_empty(p->s));
        cr_assert_eq(tf_tls_session_recv(p->s, buf, sizeof buf, &n), TF_TLS_OK);
        cr_expect_eq(n, 3);
        cr_expect_not(tf_tls_session_input_empty(p->s), "the second record is still there");
        cr_assert_eq(tf_tls_session_recv(p->s, buf, sizeof buf, &n), TF_TLS_OK);
        cr_expect_arr_eq(buf, "two", 3);
        cr_expect(tf_tls_session_input_empty(p->s));
        cr_expect_eq(tf_tls_session_recv(p->s, buf, sizeof buf, &n), TF_TLS_WANT_READ);
        /* Half a record is input too. */
        cr_assert_eq(wolfSSL_write(p->c, "three", 5), 5);
        p->piece = 7;
        hx_pump(p);
        cr_expect_not(tf_tls_session_input_empty(p->s));
        hx_pair_free(p);
        wolfSSL_CTX_free(cc);
    }
    tf_tls_ctx_free(ctx);
}

Test(tls_session, server_shutdown_reaches_client)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", true);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK);
    cr_assert_eq(tf_tls_session_shutdown(p->s), 0);
    hx_pump(p);
    char buf[16];
    int r = wolfSSL_read(p->c, buf, sizeof buf);
    cr_expect_eq(r, 0);
    cr_expect_eq(wolfSSL_get_error(p->c, r), WOLFSSL_ERROR_ZERO_RETURN);
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

Test(tls_session, garbage_is_an_error_not_a_crash)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    const char *inputs[] = {"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                            "\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
                            "\x16\x03\x01\xff\xff\x01\x00\xff\xfb\x03\x03",
                            "\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10"};
    size_t lens[] = {strlen(inputs[0]), 10, 11, 11};
    for (size_t i = 0; i < 4; i++) {
        tf_tls_session_t *s = tf_tls_session_new(ctx, hx_snap());
        cr_assert_not_null(s);
        cr_assert_eq(tf_tls_session_feed(s, inputs[i], lens[i]), 0);
        int rc = tf_tls_session_handshake(s);
        cr_expect(rc == TF_ETLS || rc == TF_TLS_WANT_READ, "input %zu: %d", i, rc);
        if (rc == TF_ETLS)
            cr_expect_str_neq(tf_tls_session_error(s), "no error");
        tf_tls_session_free(s);
    }
    /* Random bytes after an established handshake. */
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", false);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK);
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    junk[0] = 0x17, junk[1] = 0x03, junk[2] = 0x03, junk[3] = 0x01, junk[4] = 0x00;
    cr_assert_eq(tf_tls_session_feed(p->s, junk, sizeof junk), 0);
    char buf[512];
    size_t n;
    cr_expect_eq(tf_tls_session_recv(p->s, buf, sizeof buf, &n), TF_ETLS);
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

static void roundtrip_1mib(int version, size_t piece)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(version, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "chat.acme.example", true);
    p->piece = piece;
    cr_assert_eq(hx_handshake(p), TF_TLS_OK);
    size_t len = 1 << 20;
    uint8_t *data = malloc(len), *back = malloc(len + 1);
    cr_assert(data != NULL && back != NULL);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i ^ (i >> 8) ^ (i >> 16));
    /* server -> client: one call, many records */
    cr_expect_eq(hx_server_to_client(p, data, len, back, len + 1), len);
    cr_expect_arr_eq(back, data, len);
    /* client -> server */
    size_t sent = 0, got = 0;
    while (sent < len) {
        int n = wolfSSL_write(p->c, data + sent, (int)(len - sent < 65536 ? len - sent : 65536));
        cr_assert_gt(n, 0);
        sent += (size_t)n;
        size_t off = 0;
        while (off < p->c2s.len) {
            size_t k = piece && piece < p->c2s.len - off ? piece : p->c2s.len - off;
            cr_assert_eq(tf_tls_session_feed(p->s, p->c2s.buf + off, k), 0);
            off += k;
            for (;;) {
                size_t r;
                int rc = tf_tls_session_recv(p->s, back + got, len + 1 - got, &r);
                if (rc == TF_TLS_WANT_READ)
                    break;
                cr_assert_eq(rc, TF_TLS_OK, "read: %d %s", rc, tf_tls_session_error(p->s));
                got += r;
            }
        }
        p->c2s.len = 0;
        hx_pump(p);
    }
    cr_expect_eq(got, len);
    cr_expect_arr_eq(back, data, len);
    free(data);
    free(back);
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

Test(tls_session, one_mib_round_trips)
{
    roundtrip_1mib(13, 0);
    roundtrip_1mib(12, 0);
}

Test(tls_session, one_mib_in_odd_pieces)
{
    roundtrip_1mib(13, 1000);
}

Test(tls_session, feed_one_byte_at_a_time)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        WOLFSSL_CTX *cc = hx_client_ctx(versions[i], NULL);
        hx_pair_t *p = hx_pair_new(ctx, cc, "x.tenants.example", true);
        p->piece = 1;
        cr_assert_eq(hx_handshake(p), TF_TLS_OK);
        char subject[256];
        hx_peer_subject(p, subject, sizeof subject);
        cr_expect_str_eq(subject, "/CN=*.tenants.example");
        const char msg[] = "GET / HTTP/1.1\r\nHost: x.tenants.example\r\n\r\n";
        cr_assert_eq(wolfSSL_write(p->c, msg, sizeof msg - 1), (int)sizeof msg - 1);
        char buf[256];
        size_t got = 0;
        for (size_t off = 0; off < p->c2s.len; off++) {
            cr_assert_eq(tf_tls_session_feed(p->s, p->c2s.buf + off, 1), 0);
            size_t r;
            int rc = tf_tls_session_recv(p->s, buf + got, sizeof buf - got, &r);
            if (rc == TF_TLS_OK)
                got += r;
            else
                cr_assert_eq(rc, TF_TLS_WANT_READ, "%d %s", rc, tf_tls_session_error(p->s));
        }
        p->c2s.len = 0;
        cr_expect_eq(got, sizeof msg - 1);
        cr_expect_arr_eq(buf, msg, sizeof msg - 1);
        hx_pair_free(p);
        wolfSSL_CTX_free(cc);
    }
    tf_tls_ctx_free(ctx);
}

Test(tls_session, take_out_hands_over_the_buffer)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", false);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK);
    void *buf;
    size_t len;
    cr_assert_eq(tf_tls_session_take_out(p->s, &buf, &len), 0);
    cr_expect_null(buf);
    cr_expect_eq(len, 0);
    cr_assert_eq(tf_tls_session_write(p->s, "hello", 5), 5);
    size_t n;
    tf_tls_session_out(p->s, &n);
    tf_tls_session_consume_out(p->s, 3); /* part was "sent" */
    cr_assert_eq(tf_tls_session_take_out(p->s, &buf, &len), 0);
    cr_assert_not_null(buf);
    cr_expect_eq(len, n - 3);
    cr_expect_null(tf_tls_session_out(p->s, &n));
    cr_expect_eq(n, 0);
    free(buf);
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

Test(tls_session, ctx_keeps_its_tickets_reference)
{
    tf_tls_tickets_t *t = NULL;
    char err[256];
    cr_assert_eq(tf_tls_tickets_new(NULL, 60, &t, err, sizeof err), 0);
    tf_tls_ctx_t *ctx = hx_ctx(false, false, t);
    tf_tls_tickets_unref(t); /* the context keeps its reference */
    expect_served(ctx, 13, "portal.acme.example", "/CN=portal.acme.example", TF_CS_SEL_EXACT);
    tf_tls_ctx_free(ctx);
}

/* SPEC §6: X25519, P-256 and P-384 only; FFDHE is compiled into wolfSSL
 * but must never be chosen. */
static int handshake_with_groups(tf_tls_ctx_t *ctx, int version, int *groups, int n)
{
    WOLFSSL_CTX *cc = hx_client_ctx(version, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", false);
    if (version == 13)
        cr_assert_eq(wolfSSL_set_groups(p->c, groups, n), WOLFSSL_SUCCESS);
    else
        for (int i = 0; i < n; i++)
            cr_assert_eq(wolfSSL_UseSupportedCurve(p->c, (word16)groups[i]), WOLFSSL_SUCCESS);
    int rc = hx_handshake(p);
    if (rc == TF_TLS_OK) {
        const char *curve = wolfSSL_get_curve_name(p->c);
        cr_expect(curve != NULL &&
                      (strcmp(curve, "X25519") == 0 || strcmp(curve, "SECP256R1") == 0 ||
                       strcmp(curve, "SECP384R1") == 0),
                  "TLS 1.%d negotiated %s", version - 10, curve ? curve : "(none)");
    }
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    return rc;
}

Test(tls_session, key_exchange_groups)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    int x25519[] = {WOLFSSL_ECC_X25519}, p384[] = {WOLFSSL_ECC_SECP384R1},
        ffdhe[] = {WOLFSSL_FFDHE_2048}, p521[] = {WOLFSSL_ECC_SECP521R1};
    cr_expect_eq(handshake_with_groups(ctx, 13, x25519, 1), TF_TLS_OK);
    cr_expect_eq(handshake_with_groups(ctx, 13, p384, 1), TF_TLS_OK);
    cr_expect_eq(handshake_with_groups(ctx, 12, p384, 1), TF_TLS_OK);
    cr_expect_lt(handshake_with_groups(ctx, 13, ffdhe, 1), 0);
    cr_expect_lt(handshake_with_groups(ctx, 13, p521, 1), 0);
    /* A P-521 key share first: a HelloRetryRequest asks for X25519, and the
     * second ClientHello keeps the certificate chosen from the first. */
    int p521_then_x25519[] = {WOLFSSL_ECC_SECP521R1, WOLFSSL_ECC_X25519};
    cr_expect_eq(handshake_with_groups(ctx, 13, p521_then_x25519, 2), TF_TLS_OK);
    /* TLS 1.2: wolfSSL's server would pick P-521 for a client offering only
     * that (nothing limits TLS 1.2 curves without the compatibility layer);
     * hello.c refuses it. With P-384 beside it, P-384 is chosen (checked in
     * handshake_with_groups). */
    cr_expect_lt(handshake_with_groups(ctx, 12, p521, 1), 0);
    int p521_p384[] = {WOLFSSL_ECC_SECP521R1, WOLFSSL_ECC_SECP384R1};
    cr_expect_eq(handshake_with_groups(ctx, 12, p521_p384, 2), TF_TLS_OK);
    tf_tls_ctx_free(ctx);
}

/* A ClientHello cut into two handshake records (large post-quantum key
 * shares do that): the certificate is still chosen from its SNI. */
/* The client's pending ClientHello record re-cut into two records, followed
 * by `extra` (len bytes). *out_len receives the total; the caller frees. */
static uint8_t *split_hello(hx_pair_t *p, const uint8_t *extra, size_t len, size_t *out_len)
{
    size_t body = p->c2s.len - 5, half = body / 2;
    uint8_t *b = malloc(p->c2s.len + 5 + len);
    cr_assert_not_null(b);
    memcpy(b, p->c2s.buf, 5);
    b[3] = (uint8_t)(half >> 8), b[4] = (uint8_t)half;
    memcpy(b + 5, p->c2s.buf + 5, half);
    memcpy(b + 5 + half, p->c2s.buf, 5);
    b[5 + half + 3] = (uint8_t)((body - half) >> 8), b[5 + half + 4] = (uint8_t)(body - half);
    memcpy(b + 10 + half, p->c2s.buf + 5 + half, body - half);
    if (len > 0)
        memcpy(b + 10 + body, extra, len);
    *out_len = 10 + body + len;
    p->c2s.len = 0;
    return b;
}

Test(tls_session, client_hello_over_two_records)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, true, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "x.tenants.example", false);
    cr_assert_eq(wolfSSL_connect(p->c), WOLFSSL_FATAL_ERROR); /* wants the ServerHello */
    size_t half = (p->c2s.len - 5) / 2, total;
    uint8_t *b = split_hello(p, NULL, 0, &total);
    /* The first record alone is not enough to choose. */
    cr_assert_eq(tf_tls_session_feed(p->s, b, 5 + half), 0);
    cr_expect_eq(tf_tls_session_handshake(p->s), TF_TLS_WANT_READ);
    cr_assert_eq(tf_tls_session_feed(p->s, b + 5 + half, total - 5 - half), 0);
    free(b);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK, "%s", tf_tls_session_error(p->s));
    cr_expect_eq(tf_tls_session_selection(p->s), TF_CS_SEL_WILDCARD);
    char subject[256];
    hx_peer_subject(p, subject, sizeof subject);
    cr_expect_str_eq(subject, "/CN=*.tenants.example");
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

/* A ClientHello split over two records and followed, in the same read, by
 * a change_cipher_spec record (as middlebox-compatible clients send) is
 * still read by us before wolfSSL: an unknown name gets the plaintext
 * alert, not a ServerHello. */
Test(tls_session, split_client_hello_followed_by_ccs_is_still_preselected)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, true, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "nobody.example", false);
    cr_assert_eq(wolfSSL_connect(p->c), WOLFSSL_FATAL_ERROR);
    static const uint8_t ccs[] = {0x14, 0x03, 0x03, 0x00, 0x01, 0x01};
    size_t total;
    uint8_t *b = split_hello(p, ccs, sizeof ccs, &total);
    cr_assert_eq(tf_tls_session_feed(p->s, b, total), 0);
    free(b);
    cr_expect_eq(tf_tls_session_handshake(p->s), TF_ETLS);
    size_t n;
    const void *out = tf_tls_session_out(p->s, &n);
    cr_assert_eq(n, sizeof k_alert_112, "server sent %zu bytes", n);
    cr_expect_arr_eq(out, k_alert_112, sizeof k_alert_112);
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

/* A ClientHello in hundreds of tiny records is not reassembled by us (each
 * read would re-scan them all): wolfSSL gets it as it is. */
Test(tls_session, a_hello_in_tiny_records_is_not_reassembled)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    hx_pair_t *p = hx_pair_new(ctx, cc, "x.tenants.example", false);
    cr_assert_eq(wolfSSL_connect(p->c), WOLFSSL_FATAL_ERROR);
    size_t body = p->c2s.len - 5;
    uint8_t *b = malloc(body * 6);
    cr_assert_not_null(b);
    for (size_t i = 0; i < body; i++) {
        memcpy(b + 6 * i, p->c2s.buf, 3);
        b[6 * i + 3] = 0, b[6 * i + 4] = 1, b[6 * i + 5] = p->c2s.buf[5 + i];
    }
    cr_assert_eq(tf_tls_session_feed(p->s, b, body * 6), 0);
    free(b);
    p->c2s.len = 0;
    /* Whatever wolfSSL makes of it, the session neither crashes nor hangs. */
    int rc = tf_tls_session_handshake(p->s);
    cr_expect(rc == TF_TLS_WANT_READ || rc == TF_TLS_OK || rc == TF_ETLS, "rc %d", rc);
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}
