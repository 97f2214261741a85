/* tls/: session tickets (SPEC §6): resumption for TLS 1.3 and 1.2, key
 * rotation, and keys shared through a keys file. */
#define _GNU_SOURCE /* memmem */
#include "harness.h"

#include "common/err.h"
#include "tls/tls_internal.h"

#include <criterion/criterion.h>
#include <wolfssl/error-ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void setup(void)
{
    hx_setup(false);
}

TestSuite(tls_tickets, .init = setup, .fini = hx_teardown, .timeout = 60);

/* A second handshake offering sess; returns whether the server resumed. */
static bool revisit(tf_tls_ctx_t *ctx, WOLFSSL_CTX *cc, const char *sni, WOLFSSL_SESSION *sess,
                    const char *subject)
{
    hx_pair_t *p = hx_pair_new(ctx, cc, sni, true);
    cr_assert_eq(wolfSSL_UseSessionTicket(p->c), WOLFSSL_SUCCESS);
    /* A TLS 1.3 session without a ticket is refused by the client itself. */
    (void)wolfSSL_set_session(p->c, sess);
    int rc = hx_handshake(p);
    if (rc != TF_TLS_OK && p->client_err == OUT_OF_ORDER_E &&
        strcmp(tf_tls_session_version(p->s), "TLSv1.2") == 0) {
        /* wolfSSL 5.5.4's TLS 1.2 client takes any ServerHello as accepting
         * its ticket (DSH_CheckSessionId) and aborts when the server falls
         * back to a full handshake; OpenSSL clients do not. What matters
         * here is the server's side: it did not resume and sent a
         * certificate. */
        cr_expect_not(tf_tls_session_resumed(p->s));
        const char *cn = subject != NULL ? strchr(subject, '=') + 1 : "";
        cr_expect_not_null(memmem(p->server_log.buf, p->server_log.len, cn, strlen(cn)),
                           "no certificate %s sent", cn);
        hx_pair_free(p);
        return false;
    }
    cr_assert_eq(rc, TF_TLS_OK, "%s (client %d)", tf_tls_session_error(p->s), p->client_err);
    bool resumed = tf_tls_session_resumed(p->s);
    cr_expect_eq(resumed, wolfSSL_session_reused(p->c) == 1);
    char buf[64];
    cr_assert_eq(hx_client_to_server(p, "ping", 4, buf, sizeof buf), 4);
    if (!resumed && subject != NULL) {
        char got[256];
        hx_peer_subject(p, got, sizeof got);
        cr_expect_str_eq(got, subject);
    }
    hx_pair_free(p);
    return resumed;
}

static tf_tls_tickets_t *memory_keys(unsigned rotate_s)
{
    tf_tls_tickets_t *t = NULL;
    char err[256] = "";
    cr_assert_eq(tf_tls_tickets_new(NULL, rotate_s, &t, err, sizeof err), 0, "%s", err);
    return t;
}

Test(tls_tickets, resumes_tls13_and_tls12)
{
    tf_tls_tickets_t *t = memory_keys(3600);
    tf_tls_ctx_t *ctx = hx_ctx(false, false, t);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        WOLFSSL_CTX *cc = hx_client_ctx(versions[i], NULL);
        WOLFSSL_SESSION *sess = hx_first_visit(ctx, NULL, cc, "portal.acme.example");
        cr_expect(revisit(ctx, cc, "portal.acme.example", sess, NULL), "TLS 1.%d",
                  versions[i] - 10);
        wolfSSL_SESSION_free(sess);
        wolfSSL_CTX_free(cc);
    }
    tf_tls_ctx_free(ctx);
    tf_tls_tickets_unref(t);
}

/* ALPN h2 and tickets: a handshake offering `offer`, resuming sess (NULL:
 * none), h2 allowed or not; one exchange (so a TLS 1.3 client reads its
 * ticket). Returns the negotiated protocol ("(none)" for none); *resumed
 * says whether the server resumed, *next (if not NULL) gets the client's
 * session for the next visit. */
static const char *alpn_visit(tf_tls_ctx_t *ctx, WOLFSSL_CTX *cc, WOLFSSL_SESSION *sess,
                              const char *offer, bool allow, bool *resumed, WOLFSSL_SESSION **next)
{
    hx_pair_t *p = hx_pair_new(ctx, cc, "portal.acme.example", false);
    char list[64];
    snprintf(list, sizeof list, "%s", offer);
    cr_assert_eq(
        wolfSSL_UseALPN(p->c, list, (unsigned)strlen(list), WOLFSSL_ALPN_CONTINUE_ON_MISMATCH),
        WOLFSSL_SUCCESS);
    cr_assert_eq(wolfSSL_UseSessionTicket(p->c), WOLFSSL_SUCCESS);
    if (sess != NULL)
        cr_assert_eq(wolfSSL_set_session(p->c, sess), WOLFSSL_SUCCESS);
    hx_h2_t h = {.allow = allow};
    tf_tls_session_set_h2(p->s, hx_h2_allowed, &h);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK, "%s (client %d)", tf_tls_session_error(p->s),
                 p->client_err);
    cr_expect_eq(h.calls, 1);
    *resumed = tf_tls_session_resumed(p->s);
    char buf[64];
    cr_assert_eq(hx_client_to_server(p, "ping", 4, buf, sizeof buf), 4);
    cr_assert_eq(hx_server_to_client(p, "pong", 4, buf, sizeof buf), 4);
    const char *got = tf_tls_session_alpn(p->s);
    char *name = NULL;
    unsigned short n = 0;
    if (got != NULL) {
        cr_expect_eq(wolfSSL_ALPN_GetProtocol(p->c, &name, &n), WOLFSSL_SUCCESS);
        cr_expect(n == strlen(got) && memcmp(name, got, n) == 0, "client has %.*s", (int)n,
                  name != NULL ? name : "");
    }
    if (next != NULL) {
        *next = wolfSSL_get1_session(p->c);
        cr_assert_not_null(*next);
    }
    hx_pair_free(p);
    return got != NULL ? got : "(none)";
}

Test(tls_tickets, resumed_sessions_negotiate_alpn_afresh)
{
    tf_tls_tickets_t *t = memory_keys(3600);
    tf_tls_ctx_t *ctx = hx_ctx(false, false, t);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        int v = versions[i];
        WOLFSSL_CTX *cc = hx_client_ctx(v, NULL);
        bool resumed = true;
        /* A full handshake that got h2, resumed where h2 is refused, and
         * the other way round. */
        WOLFSSL_SESSION *h2sess = NULL, *h1sess = NULL;
        cr_expect_str_eq(alpn_visit(ctx, cc, NULL, "h2,http/1.1", true, &resumed, &h2sess), "h2",
                         "TLS %d", v);
        cr_expect_not(resumed);
        cr_expect_str_eq(alpn_visit(ctx, cc, h2sess, "h2,http/1.1", false, &resumed, NULL),
                         "http/1.1", "TLS %d", v);
        cr_expect(resumed, "TLS %d: not resumed", v);
        cr_expect_str_eq(alpn_visit(ctx, cc, NULL, "h2,http/1.1", false, &resumed, &h1sess),
                         "http/1.1", "TLS %d", v);
        cr_expect_str_eq(alpn_visit(ctx, cc, h1sess, "h2,http/1.1", true, &resumed, NULL), "h2",
                         "TLS %d", v);
        cr_expect(resumed, "TLS %d: not resumed", v);
        /* Resumed offering only h2, refused: no protocol, still resumed. */
        cr_expect_str_eq(alpn_visit(ctx, cc, h2sess, "h2", false, &resumed, NULL), "(none)",
                         "TLS %d", v);
        cr_expect(resumed, "TLS %d: not resumed", v);
        wolfSSL_SESSION_free(h2sess);
        wolfSSL_SESSION_free(h1sess);
        wolfSSL_CTX_free(cc);
    }
    tf_tls_ctx_free(ctx);
    tf_tls_tickets_unref(t);
}

/* Every TLS 1.3 suite, full and resumed, with a tenant certificate and
 * the default: the bundled wolfSSL hashes the transcript with the suite's
 * hash alone once the ServerHello is out (transcript-one-hash.patch), so a
 * SHA-384 suite, or a hash chosen wrongly, would break the Finished
 * messages or the resumption secret here. */
Test(tls_tickets, every_tls13_suite_full_and_resumed)
{
    static const char *const suites[] = {
        "TLS13-AES128-GCM-SHA256",
        "TLS13-AES256-GCM-SHA384",
        "TLS13-CHACHA20-POLY1305-SHA256",
    };
    static const char *const names[] = {"portal.acme.example", "nobody.example"};
    tf_tls_tickets_t *t = memory_keys(3600);
    tf_tls_ctx_t *ctx = hx_ctx(false, false, t);
    for (size_t i = 0; i < 3; i++) {
        WOLFSSL_CTX *cc = hx_client_ctx(13, suites[i]);
        for (size_t n = 0; n < 2; n++) {
            hx_pair_t *p = hx_pair_new(ctx, cc, names[n], true);
            cr_assert_eq(hx_handshake(p), TF_TLS_OK, "%s: %s", suites[i],
                         tf_tls_session_error(p->s));
            cr_expect_str_eq(tf_tls_session_cipher(p->s), suites[i]);
            hx_pair_free(p);
            WOLFSSL_SESSION *sess = hx_first_visit(ctx, NULL, cc, names[n]);
            cr_expect(revisit(ctx, cc, names[n], sess, NULL), "%s, %s: not resumed", suites[i],
                      names[n]);
            wolfSSL_SESSION_free(sess);
        }
        wolfSSL_CTX_free(cc);
    }
    tf_tls_ctx_free(ctx);
    tf_tls_tickets_unref(t);
}

Test(tls_tickets, no_tickets_no_resumption)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    WOLFSSL_SESSION *sess = hx_first_visit(ctx, NULL, cc, "portal.acme.example");
    cr_expect_not(revisit(ctx, cc, "portal.acme.example", sess, "/CN=portal.acme.example"));
    wolfSSL_SESSION_free(sess);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
}

Test(tls_tickets, rotated_out_key_falls_back_to_full_handshake)
{
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        tf_tls_tickets_t *t = memory_keys(100);
        tf_tls_ctx_t *ctx = hx_ctx(false, false, t);
        WOLFSSL_CTX *cc = hx_client_ctx(versions[i], NULL);
        time_t now = time(NULL);
        WOLFSSL_SESSION *old = hx_first_visit(ctx, NULL, cc, "x.tenants.example");
        /* One rotation: the old key still decrypts. */
        cr_assert_eq(tf_tls_tickets_rotate(t, now + 100), 0);
        uint8_t name[16];
        cr_expect_eq(tf_tls__tickets_current(t, name), 2);
        cr_expect(revisit(ctx, cc, "x.tenants.example", old, NULL), "TLS 1.%d", versions[i] - 10);
        /* Two more: the key that sealed `old` is gone. */
        cr_assert_eq(tf_tls_tickets_rotate(t, now + 201), 0);
        cr_assert_eq(tf_tls_tickets_rotate(t, now + 302), 0);
        cr_expect_not(revisit(ctx, cc, "x.tenants.example", old, "/CN=*.tenants.example"),
                      "TLS 1.%d", versions[i] - 10);
        wolfSSL_SESSION_free(old);
        wolfSSL_CTX_free(cc);
        tf_tls_ctx_free(ctx);
        tf_tls_tickets_unref(t);
    }
}

static void write_keys(const char *path, int nkeys, unsigned seed)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("# test keys\n", f);
    for (int k = 0; k < nkeys; k++) {
        uint8_t rec[80];
        for (size_t i = 0; i < sizeof rec; i++)
            rec[i] = (uint8_t)(seed * 131 + (unsigned)k * 17 + i * 7);
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char line[120];
        size_t o = 0;
        for (size_t i = 0; i + 2 < sizeof rec + 2; i += 3) {
            uint32_t v = (uint32_t)rec[i] << 16;
            if (i + 1 < sizeof rec)
                v |= (uint32_t)rec[i + 1] << 8;
            if (i + 2 < sizeof rec)
                v |= rec[i + 2];
            line[o++] = b64[(v >> 18) & 63];
            line[o++] = b64[(v >> 12) & 63];
            line[o++] = i + 1 < sizeof rec ? b64[(v >> 6) & 63] : '=';
            line[o++] = i + 2 < sizeof rec ? b64[v & 63] : '=';
        }
        line[o] = '\0';
        fprintf(f, "%s\n", line);
    }
    fclose(f);
}

Test(tls_tickets, keys_file_resumes_across_contexts)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/ticket.keys", hx_dir());
    write_keys(path, 3, 1);
    tf_tls_tickets_t *t1 = NULL, *t2 = NULL;
    char err[512] = "";
    cr_assert_eq(tf_tls_tickets_new(path, 3600, &t1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tf_tls_tickets_new(path, 3600, &t2, err, sizeof err), 0, "%s", err);
    tf_tls_ctx_t *a = hx_ctx(false, false, t1);
    tf_tls_ctx_t *b = hx_ctx(false, false, t2);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        WOLFSSL_CTX *cc = hx_client_ctx(versions[i], NULL);
        WOLFSSL_SESSION *sess = hx_first_visit(a, NULL, cc, "chat.acme.example");
        cr_expect(revisit(b, cc, "chat.acme.example", sess, NULL), "TLS 1.%d", versions[i] - 10);
        wolfSSL_SESSION_free(sess);

        /* Memory keys of another instance cannot open it. */
        sess = hx_first_visit(a, NULL, cc, "chat.acme.example");
        tf_tls_tickets_t *other = memory_keys(3600);
        tf_tls_ctx_t *c = hx_ctx(false, false, other);
        cr_expect_not(revisit(c, cc, "chat.acme.example", sess, "/CN=portal.acme.example"));
        tf_tls_ctx_free(c);
        tf_tls_tickets_unref(other);
        wolfSSL_SESSION_free(sess);
        wolfSSL_CTX_free(cc);
    }
    /* A new key appended: the old encrypting key still decrypts. */
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    WOLFSSL_SESSION *sess = hx_first_visit(a, NULL, cc, "chat.acme.example");
    write_keys(path, 4, 1);
    cr_assert_eq(tf_tls_tickets_reload(t2, err, sizeof err), 0, "%s", err);
    cr_expect(revisit(b, cc, "chat.acme.example", sess, NULL));
    wolfSSL_SESSION_free(sess);
    /* Different keys: full handshake. */
    sess = hx_first_visit(a, NULL, cc, "chat.acme.example");
    write_keys(path, 2, 9);
    cr_assert_eq(tf_tls_tickets_reload(t2, err, sizeof err), 0, "%s", err);
    cr_expect_not(revisit(b, cc, "chat.acme.example", sess, "/CN=portal.acme.example"));
    wolfSSL_SESSION_free(sess);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(a);
    tf_tls_ctx_free(b);
    tf_tls_tickets_unref(t1);
    tf_tls_tickets_unref(t2);
}

Test(tls_tickets, keys_file_errors)
{
    char path[1200], err[512];
    tf_tls_tickets_t *t = NULL;
    snprintf(path, sizeof path, "%s/missing.keys", hx_dir());
    cr_expect_lt(tf_tls_tickets_new(path, 3600, &t, err, sizeof err), 0);
    cr_expect_null(t);
    cr_expect(strstr(err, "missing.keys") != NULL, "%s", err);

    snprintf(path, sizeof path, "%s/bad.keys", hx_dir());
    FILE *f = fopen(path, "w");
    fputs("c2hvcnQ=\n", f);
    fclose(f);
    cr_expect_eq(tf_tls_tickets_new(path, 3600, &t, err, sizeof err), TF_ECONF);
    cr_expect(strstr(err, "bad.keys:1: not an 80-byte base64 key") != NULL, "%s", err);

    f = fopen(path, "w");
    fputs("# nothing\n\n", f);
    fclose(f);
    cr_expect_eq(tf_tls_tickets_new(path, 3600, &t, err, sizeof err), TF_ECONF);
    cr_expect(strstr(err, "no key") != NULL, "%s", err);

    /* A reload that fails keeps the keys in use. */
    write_keys(path, 2, 3);
    cr_assert_eq(tf_tls_tickets_new(path, 3600, &t, err, sizeof err), 0, "%s", err);
    f = fopen(path, "w");
    fputs("!!!\n", f);
    fclose(f);
    cr_expect_eq(tf_tls_tickets_reload(t, err, sizeof err), TF_ECONF);
    uint8_t name[16];
    cr_expect_eq(tf_tls__tickets_current(t, name), 2);
    tf_tls_tickets_unref(t);
}

Test(tls_tickets, memory_keys_rotate_and_expire)
{
    tf_tls_tickets_t *t = memory_keys(60);
    time_t now = time(NULL);
    uint8_t a[16], b[16];
    cr_expect_eq(tf_tls__tickets_current(t, a), 1);
    cr_assert_eq(tf_tls_tickets_rotate(t, now + 30), 0);
    cr_expect_eq(tf_tls__tickets_current(t, b), 1);
    cr_expect_arr_eq(a, b, 16);
    cr_assert_eq(tf_tls_tickets_rotate(t, now + 60), 0);
    cr_expect_eq(tf_tls__tickets_current(t, b), 2);
    cr_expect_arr_neq(a, b, 16);
    cr_assert_eq(tf_tls_tickets_rotate(t, now + 120), 0);
    cr_expect_eq(tf_tls__tickets_current(t, b), 2); /* the first expired */
    cr_expect_eq(tf_tls_tickets_lifetime(t), 60);
    tf_tls_tickets_unref(t);
}

Test(tls_tickets, keys_file_made_by_openssl)
{
    char path[1200], cmd[2600], err[512] = "";
    snprintf(path, sizeof path, "%s/openssl.keys", hx_dir());
    snprintf(cmd, sizeof cmd,
             "for i in 1 2 3; do openssl rand 80 | openssl base64 -A; echo; done > '%s'", path);
    cr_assert_eq(system(cmd), 0);
    tf_tls_tickets_t *t = NULL;
    cr_assert_eq(tf_tls_tickets_new(path, 3600, &t, err, sizeof err), 0, "%s", err);
    uint8_t name[16];
    cr_expect_eq(tf_tls__tickets_current(t, name), 3);
    tf_tls_ctx_t *ctx = hx_ctx(false, false, t);
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    WOLFSSL_SESSION *sess = hx_first_visit(ctx, NULL, cc, "portal.acme.example");
    cr_expect(revisit(ctx, cc, "portal.acme.example", sess, NULL));
    wolfSSL_SESSION_free(sess);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
    tf_tls_tickets_unref(t);
}
