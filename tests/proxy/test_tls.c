/* tlsfront run end to end with real TLS clients (openssl s_client, curl,
 * gnutls-cli): which certificate is served for which name, protocol
 * versions, resumption, and bytes reaching the backend (SPEC §4.4, §6, §7
 * mode: tcp). */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tf_px_t px;

static void setup(void)
{
    tf_px_start(&px, NULL);
}

static void teardown(void)
{
    tf_px_stop(&px);
}

TestSuite(proxy_tls, .init = setup, .fini = teardown, .timeout = 60);

/* s_client's view of a handshake: -showcerts prints every certificate sent. */
static char *s_client(int *st, const char *args)
{
    return tf_px_sh(st,
                    "timeout 20 openssl s_client -connect 127.0.0.1:%u -showcerts -CAfile '%s' "
                    "%s </dev/null",
                    px.port, px.ca, args);
}

static void expect_served(const char *args, const char *subject)
{
    int st;
    char *out = s_client(&st, args);
    cr_expect_not_null(strstr(out, subject), "wanted %s for %s:\n%s", subject, args, out);
    /* Leaf and intermediate, never the root. */
    cr_expect_eq(tf_px_count(out, "-----BEGIN CERTIFICATE-----"), 2, "%s", out);
    cr_expect_not_null(strstr(out, "Verify return code: 0 (ok)"), "%s", out);
    free(out);
}

Test(proxy_tls, exact_name_gets_its_certificate)
{
    expect_served("-servername portal.acme.example", "subject=CN = portal.acme.example");
}

Test(proxy_tls, wildcard_covers_one_label)
{
    expect_served("-servername a.tenants.example", "subject=CN = *.tenants.example");
}

Test(proxy_tls, unknown_name_gets_the_default)
{
    expect_served("-servername nobody.example", "subject=CN = system.tlsfront.example");
}

Test(proxy_tls, no_sni_gets_the_default)
{
    expect_served("-noservername", "subject=CN = system.tlsfront.example");
}

/* Tenants in turn, twice, both versions: each handshake after the first
 * for a name runs on the worker's cached context for its certificate
 * (docs/TLS.md), and must still serve that certificate and its chain. */
Test(proxy_tls, tenants_in_turn_keep_their_certificates)
{
    static const struct {
        const char *args, *subject;
    } cases[] = {
        {"-servername portal.acme.example", "subject=CN = portal.acme.example"},
        {"-servername a.tenants.example", "subject=CN = *.tenants.example"},
        {"-servername chat.acme.example", "subject=CN = portal.acme.example"},
        {"-servername nobody.example", "subject=CN = system.tlsfront.example"},
        {"-servername b.tenants.example", "subject=CN = *.tenants.example"},
        {"-noservername", "subject=CN = system.tlsfront.example"},
    };
    char args[256];
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            snprintf(args, sizeof args, "%s %s", cases[i].args,
                     (round + i) % 2 ? "-tls1_2" : "-tls1_3");
            expect_served(args, cases[i].subject);
        }
    }
    /* A connection's last line is its summary, written once the proxy saw
     * the client go (after s_client exited): once all twelve are there,
     * nothing more of theirs can come. */
    cr_expect(tf_px_wait_count(px.log, "closed: ", 12, TF_PX_WAIT_MS), "every connection closed");
    char *log = tf_px_log(&px);
    cr_expect_null(strstr(log, "cannot"), "%s", log);
    free(log);
}

Test(proxy_tls, tls12_and_tls13_accepted)
{
    int st;
    char *out = s_client(&st, "-servername portal.acme.example -tls1_2");
    cr_expect_not_null(strstr(out, "New, TLSv1.2, Cipher is ECDHE-"), "%s", out);
    free(out);
    out = s_client(&st, "-servername portal.acme.example -tls1_3");
    cr_expect_not_null(strstr(out, "New, TLSv1.3, Cipher is TLS_"), "%s", out);
    free(out);
}

Test(proxy_tls, tls11_refused)
{
    int st;
    /* SECLEVEL=0 so that the client is willing to offer TLS 1.1 at all. */
    char *out = s_client(&st, "-servername portal.acme.example -tls1_1 -cipher DEFAULT@SECLEVEL=0");
    cr_expect_neq(st, 0, "%s", out);
    cr_expect_null(strstr(out, "New, TLSv1.1"), "%s", out);
    cr_expect_not_null(strstr(out, "alert protocol version"), "%s", out);
    free(out);
}

Test(proxy_tls, tls12_session_resumed_with_reconnect)
{
    int st;
    char *out = s_client(&st, "-servername portal.acme.example -tls1_2 -reconnect");
    cr_expect_geq(tf_px_count(out, "Reused, TLSv1.2"), 1, "%s", out);
    free(out);
}

Test(proxy_tls, tls13_ticket_resumes)
{
    int st;
    /* Stay connected until a line came back through the tunnel: TLS 1.3
     * tickets arrive after the handshake, before any data the server sends. */
    char *out = tf_px_s_client(&st, "ticket-please",
                               "-connect 127.0.0.1:%u -servername portal.acme.example -CAfile "
                               "'%s' -sess_out '%s/sess.pem'",
                               px.port, px.ca, px.tmp);
    cr_assert_eq(st, 0, "%s", out);
    free(out);
    out = tf_px_sh(&st,
                   "timeout 20 openssl s_client -connect 127.0.0.1:%u -servername "
                   "portal.acme.example -CAfile '%s' -sess_in '%s/sess.pem' </dev/null",
                   px.port, px.ca, px.tmp);
    cr_expect_not_null(strstr(out, "Reused, TLSv1.3"), "%s", out);
    free(out);
    /* resumed=yes is in the summary line, written at the close, which may
     * come after s_client exited. */
    cr_expect(tf_px_wait_log(&px, "resumed=yes"));
}

Test(proxy_tls, curl_reaches_the_backend)
{
    int st;
    char *out = tf_px_sh(&st,
                         "timeout 20 curl -sS --resolve portal.acme.example:%u:127.0.0.1 "
                         "--cacert '%s' https://portal.acme.example:%u/",
                         px.port, px.ca, px.port);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "hello from echo-backend"), "%s", out);
    free(out);
    /* The access line is written once the proxy has finished the request,
     * which may be after curl has its answer and exits. */
    cr_expect(tf_px_wait_log(&px, "tenant=acme"), "the access log names the tenant");
}

/* gnutls-cli sends close_notify at the end of its input and keeps reading:
 * the proxy passes the half-close to the backend (FIN), whose echo and own
 * end come back as data and a close_notify. No sleep needed. */
Test(proxy_tls, gnutls_cli_half_close_round_trip)
{
    int st;
    char *out = tf_px_sh(&st,
                         "printf 'ping-through-gnutls\\n' | timeout 20 gnutls-cli -p %u "
                         "--sni-hostname chat.acme.example --verify-hostname chat.acme.example "
                         "--x509cafile '%s' 127.0.0.1",
                         px.port, px.ca);
    cr_expect_eq(tf_px_count(out, "ping-through-gnutls"), 1, "%s", out);
    cr_expect_not_null(strstr(out, "Peer has closed the GnuTLS connection"), "%s", out);
    free(out);
    /* gnutls-cli may exit on the close_notify before the proxy logs the close. */
    cr_expect(tf_px_wait_log(&px, "client ended its output"));
    cr_expect(tf_px_wait_log(&px, "closed: done; in=20 out=20"));
}

Test(proxy_tls, openssl_echoes_both_ways)
{
    int st;
    char *out = tf_px_s_client(&st, "ping-through-openssl",
                               "-quiet -no_ign_eof -connect 127.0.0.1:%u -servername "
                               "x.tenants.example -CAfile '%s'",
                               px.port, px.ca);
    cr_expect_not_null(strstr(out, "ping-through-openssl"), "%s", out);
    free(out);
}

/* A separate configuration: unknown names are refused in the handshake. */
static void setup_reject(void)
{
    tf_px_opts_t o = {.unknown_sni = "reject"};
    tf_px_start(&px, &o);
}

TestSuite(proxy_tls_reject, .init = setup_reject, .fini = teardown, .timeout = 60);

Test(proxy_tls_reject, unknown_name_fails_the_handshake)
{
    int st;
    char *out = s_client(&st, "-servername nobody.example");
    cr_expect_neq(st, 0, "%s", out);
    cr_expect_null(strstr(out, "New, TLSv1."), "%s", out);
    free(out);
    out = s_client(&st, "-servername portal.acme.example");
    cr_expect_not_null(strstr(out, "subject=CN = portal.acme.example"), "%s", out);
    free(out);
}
