/* Backends over unix sockets and TLS end to end (SPEC §11, §14; issue 17
 * item 3): `tlsfront run` in front of tests/proxy/upstream_backend.py, which
 * numbers its connections and says what SNI and PROXY header it got, so that
 * pooling, SNI and send_proxy are seen from the backend's side. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tf_px_t px;

static void fini(void)
{
    tf_px_stop(&px);
}

TestSuite(unix_backend, .fini = fini, .timeout = 300);

static size_t http_be, pp_be, echo_be;
static char http_sock[1200], pp_sock[1200], echo_sock[1200];

static size_t add_backend(const char *spec)
{
    return tf_px_add_script(&px, "proxy/upstream_backend.py", spec);
}

/* portal: mode http on a unix socket; chat: the same with send_proxy v1 and
 * fast health checks (fall 1); globex: mode tcp to a unix echo. */
static void start_unix(void)
{
    tf_px_init(&px, "tf-ub-test");
    tf_px_demo_pki(&px);
    snprintf(http_sock, sizeof http_sock, "%s/http.sock", px.tmp);
    snprintf(pp_sock, sizeof pp_sock, "%s/pp.sock", px.tmp);
    snprintf(echo_sock, sizeof echo_sock, "%s/echo.sock", px.tmp);
    char spec[1300];
    snprintf(spec, sizeof spec, "http,unix=%s", http_sock);
    http_be = add_backend(spec);
    snprintf(spec, sizeof spec, "http,unix=%s", pp_sock);
    pp_be = add_backend(spec);
    snprintf(spec, sizeof spec, "echo,unix=%s", echo_sock);
    echo_be = add_backend(spec);
    char config[1200];
    snprintf(config, sizeof config, "%s/tlsfront.yaml", px.tmp);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "log:\n  level: debug\n"
            "listen:\n  https: [\"127.0.0.1:0\"]\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "tenants:\n"
            "  portal:\n    hosts: [\"portal.acme.example\"]\n"
            "    backends: [\"unix:%s\"]\n"
            "  chat:\n    hosts: [\"chat.acme.example\"]\n"
            "    backends: [{address: \"unix:%s\"}]\n    send_proxy: v1\n"
            "    health: {path: /health, interval: 200ms, timeout: 200ms, rise: 1, fall: 1}\n"
            "  sip:\n    hosts: [\"portal.globex.example\"]\n    mode: tcp\n"
            "    backends: [\"unix:%s\"]\n",
            px.demo, px.demo, http_sock, pp_sock, echo_sock);
    cr_assert_eq(fclose(f), 0);
    tf_px_launch(&px, config, 0);
}

/* Requests for paths A and B on one keep-alive client connection. */
static char *curl_two(const char *host, const char *a, const char *b)
{
    int st;
    char *out = tf_px_sh(&st,
                         "curl -sS --http1.1 --max-time 30 --cacert '%s' --resolve "
                         "%s:%u:127.0.0.1 -w ' status=%%{http_code}\\n' https://%s:%u%s "
                         "https://%s:%u%s",
                         px.ca, host, px.port, host, px.port, a, host, px.port, b);
    cr_assert_eq(st, 0, "%s", out);
    return out;
}

static unsigned status_of(const char *host, const char *path)
{
    int st;
    char *out = tf_px_sh(&st,
                         "curl -s --http1.1 --max-time 30 -o /dev/null -w '%%{http_code}' "
                         "--cacert '%s' --resolve %s:%u:127.0.0.1 https://%s:%u%s",
                         px.ca, host, px.port, host, px.port, path);
    unsigned code = 0;
    if (sscanf(out, "%u", &code) != 1)
        code = 0;
    free(out);
    return code;
}

Test(unix_backend, http_requests_share_one_pooled_connection)
{
    start_unix();
    char *out = curl_two("portal.acme.example", "/a", "/b");
    cr_expect(strstr(out, "conn=1 sni=- pp=- path=/a status=200") != NULL, "%s", out);
    cr_expect(strstr(out, "conn=1 sni=- pp=- path=/b status=200") != NULL,
              "the second request did not reuse the backend connection: %s", out);
    free(out);
    /* A new client connection takes the pooled one too. */
    out = curl_two("portal.acme.example", "/c", "/d");
    cr_expect_eq(tf_px_count(out, "conn=1 "), 2, "%s", out);
    free(out);
}

Test(unix_backend, send_proxy_names_the_client_and_the_listener)
{
    start_unix();
    char *out = curl_two("chat.acme.example", "/a", "/b");
    char want[128];
    snprintf(want, sizeof want, "pp=PROXY_TCP4_127.0.0.1_127.0.0.1_");
    cr_expect_eq(tf_px_count(out, want), 2, "%s", out);
    snprintf(want, sizeof want, "_%u path=/a", px.port);
    cr_expect(strstr(out, want) != NULL, "the listener's port: %s", out);
    free(out);
}

Test(unix_backend, mode_tcp_tunnels_to_a_unix_socket)
{
    start_unix();
    cr_expect(tf_px_echo(&px, "portal.globex.example", "over-a-unix-socket"));
}

Test(unix_backend, a_vanished_socket_is_taken_down_by_its_health_checks)
{
    start_unix();
    cr_expect_eq(status_of("chat.acme.example", "/up"), 200);
    /* The path goes first: a check between the two would otherwise meet a
     * refusing socket file and log that reason instead. */
    cr_assert_eq(unlink(pp_sock), 0);
    tf_px_stop_echo(&px, pp_be);
    cr_expect(tf_px_wait_log(&px, "failed its health checks"), "not taken down");
    cr_expect(tf_px_wait_log(&px, "no such file or directory"), "the reason");
    unsigned code = status_of("chat.acme.example", "/down");
    cr_expect(code == 502 || code == 503, "got %u", code);
    /* The other tenants go on. */
    cr_expect_eq(status_of("portal.acme.example", "/still"), 200);
}

/* ---- TLS backends ---------------------------------------------------------- */

TestSuite(tls_backend, .fini = fini, .timeout = 300);

static char pki[1300];
static unsigned good_be, sys_be, wrong_be, off_be, echo_tls_be, checked_be, hsys_be, ws_be;
static unsigned ip_be, ip6_be, ip2_be; /* 127.0.0.1, ::1 and 127.0.0.2, each by its IP */
static unsigned vers_be;               /* restarted with another TLS version */
static size_t vers_ix;
static size_t checked_ix;
static char checked_log[1400];

/* A CA of the test's own and a leaf for backend.test and 127.0.0.1. */
static void make_backend_pki(void)
{
    snprintf(pki, sizeof pki, "%s/bpki", px.tmp);
    int st;
    char *out = tf_px_sh(
        &st,
        "set -e; mkdir -p '%s'; cd '%s'; "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
        "-out ca.crt -days 2 -subj /CN=tf-backend-test-ca "
        "-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign; "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout be.key -out "
        "be.csr -subj /CN=backend.test; "
        "printf 'subjectAltName=DNS:backend.test,IP:127.0.0.1,IP:::1\\nbasicConstraints=CA:false\\n"
        "extendedKeyUsage=serverAuth\\n' > ext; "
        "openssl x509 -req -in be.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-out be.crt -extfile ext",
        pki, pki);
    tf_px_sh_ok("the backend PKI", out, st);
}

static unsigned add_tls_backend(const char *mode)
{
    char spec[2800];
    snprintf(spec, sizeof spec, "%s,tls=%s/be.crt:%s/be.key", mode, pki, pki);
    return px.echos_port[add_backend(spec)];
}

static unsigned add_tls_backend_on(const char *host)
{
    char spec[2800];
    snprintf(spec, sizeof spec, "http,tls=%s/be.crt:%s/be.key,host=%s", pki, pki, host);
    return px.echos_port[add_backend(spec)];
}

/* portal: "/" verified with the CA file and tls_sni backend.test; /ip/ the
 * same backend by its IP SAN (no SNI); /sys/ against the system store;
 * /wrong/ with a tls_sni the certificate does not hold; /off/ unverified.
 * globex: mode tcp over TLS. Each failing case on a backend of its own, so
 * that its down mark touches nothing else. */
static void start_tls(void)
{
    tf_px_init(&px, "tf-tb-test");
    tf_px_demo_pki(&px);
    make_backend_pki();
    good_be = add_tls_backend("http");
    sys_be = add_tls_backend("http");
    wrong_be = add_tls_backend("http");
    off_be = add_tls_backend("http");
    echo_tls_be = add_tls_backend("echo,pp");
    hsys_be = add_tls_backend("http");
    ip_be = add_tls_backend("http");
    ip6_be = add_tls_backend_on("::1");
    ip2_be = add_tls_backend_on("127.0.0.2");
    char vspec[2800];
    snprintf(vspec, sizeof vspec, "http,tls=%s/be.crt:%s/be.key", pki, pki);
    vers_ix = add_backend(vspec);
    vers_be = px.echos_port[vers_ix];
    char ws[2800];
    snprintf(ws, sizeof ws, "ws,tls=%s/be.crt:%s/be.key", pki, pki);
    ws_be = px.echos_port[tf_px_add_echo(&px, ws)];
    snprintf(checked_log, sizeof checked_log, "%s/checked.log", px.tmp);
    char spec[4300];
    snprintf(spec, sizeof spec, "http,tls=%s/be.crt:%s/be.key,log=%s", pki, pki, checked_log);
    checked_ix = add_backend(spec);
    checked_be = px.echos_port[checked_ix];
    char config[1200], ca[1400];
    snprintf(config, sizeof config, "%s/tlsfront.yaml", px.tmp);
    snprintf(ca, sizeof ca, "%s/ca.crt", pki);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fprintf(
        f,
        "log:\n  level: debug\n"
        "listen:\n  https: [\"127.0.0.1:0\"]\n"
        "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
        "tenants:\n"
        "  portal:\n    hosts: [\"portal.acme.example\"]\n"
        "    backends: [{address: \"127.0.0.1:%u\", tls: true, tls_verify: %s, tls_sni: "
        "backend.test}]\n"
        "    routes:\n"
        "      - {path: /ip/, backends: [{address: \"127.0.0.1:%u\", tls: true, tls_verify: "
        "%s}]}\n"
        "      - {path: /ip6/, backends: [{address: \"[::1]:%u\", tls: true, tls_verify: "
        "%s}]}\n"
        "      - {path: /ip2/, backends: [{address: \"127.0.0.2:%u\", tls: true, tls_verify: "
        "%s}]}\n"
        "      - {path: /vers/, strip_prefix: true, backends: [{address: \"127.0.0.1:%u\", tls: "
        "true, tls_verify: "
        "%s, tls_sni: backend.test}]}\n"
        "      - {path: /sys/, backends: [{address: \"127.0.0.1:%u\", tls: true}]}\n"
        "      - {path: /wrong/, backends: [{address: \"127.0.0.1:%u\", tls: true, tls_verify: "
        "%s, tls_sni: wrong.test}]}\n"
        "      - {path: /off/, backends: [{address: \"127.0.0.1:%u\", tls: true, tls_verify: "
        "off, tls_sni: backend.test}]}\n"
        "      - {path: /hsys/, backends: [{address: \"127.0.0.1:%u\", tls: true}], health: "
        "{interval: 200ms, timeout: 200ms, rise: 1, fall: 1}}\n"
        "      - {path: /ws/, backends: [{address: \"127.0.0.1:%u\", tls: true, tls_verify: "
        "%s, tls_sni: backend.test}]}\n"
        "  chat:\n    hosts: [\"chat.acme.example\"]\n"
        "    backends: [{address: \"127.0.0.1:%u\", tls: true, tls_verify: %s, tls_sni: "
        "backend.test}]\n"
        "    health: {path: /health, interval: 200ms, timeout: 200ms, rise: 1, fall: 1}\n"
        "  sip:\n    hosts: [\"portal.globex.example\"]\n    mode: tcp\n"
        "    send_proxy: v1\n"
        "    backends: [{address: \"127.0.0.1:%u\", tls: true}, {address: \"127.0.0.1:%u\", "
        "tls: true, tls_verify: %s, tls_sni: backend.test}]\n",
        px.demo, px.demo, good_be, ca, ip_be, ca, ip6_be, ca, ip2_be, ca, vers_be, ca, sys_be,
        wrong_be, ca, off_be, hsys_be, ws_be, ca, checked_be, ca, sys_be, echo_tls_be, ca);
    cr_assert_eq(fclose(f), 0);
    tf_px_launch(&px, config, 0);
}

#define PORTAL "portal.acme.example"

Test(tls_backend, verified_with_a_ca_file_sni_sent_and_pooled)
{
    start_tls();
    char *out = curl_two(PORTAL, "/a", "/b");
    cr_expect(strstr(out, "conn=1 sni=backend.test pp=- path=/a status=200") != NULL, "%s", out);
    cr_expect(strstr(out, "conn=1 sni=backend.test pp=- path=/b status=200") != NULL,
              "not one backend TLS connection for both: %s", out);
    free(out);
    /* A later client takes the pooled TLS connection. */
    out = curl_two(PORTAL, "/c", "/d");
    cr_expect_eq(tf_px_count(out, "conn=1 sni=backend.test"), 2, "%s", out);
    free(out);
    cr_expect(tf_px_wait_log(&px, "TLS established: TLSv1.3"), "no handshake logged");
}

/* An IP literal is verified against the certificate's IP names, IPv6 as
 * written in any spelling (wolfSSL matches its own long form); a
 * certificate that does not name that IP is refused. */
Test(tls_backend, an_ip_literal_is_verified_against_its_ip_san_without_sni)
{
    start_tls();
    char *out = curl_two(PORTAL, "/ip/a", "/ip/b");
    cr_expect(strstr(out, "sni=- pp=- path=/ip/a status=200") != NULL, "%s", out);
    free(out);
    out = curl_two(PORTAL, "/ip6/a", "/ip6/b");
    cr_expect(strstr(out, "sni=- pp=- path=/ip6/a status=200") != NULL, "IPv6: %s", out);
    free(out);
    cr_expect_eq(status_of(PORTAL, "/ip2/x"), 502, "127.0.0.2 is not in the certificate");
    char want[256];
    snprintf(want, sizeof want,
             "backend 127.0.0.2:%u: TLS handshake failed: certificate verify failed: the "
             "certificate does not name the backend",
             ip2_be);
    cr_expect(tf_px_wait_log(&px, want), "%s not logged", want);
}

Test(tls_backend, the_system_store_does_not_know_a_private_ca)
{
    start_tls();
    cr_expect_eq(status_of(PORTAL, "/sys/x"), 502);
    char want[256];
    snprintf(want, sizeof want,
             "backend 127.0.0.1:%u: TLS handshake failed: certificate verify failed: no trusted "
             "CA signed it (tls_verify)",
             sys_be);
    cr_expect(tf_px_wait_log(&px, want), "%s not logged", want);
    cr_expect_eq(status_of(PORTAL, "/still"), 200, "the other backends go on");
}

Test(tls_backend, a_name_the_certificate_does_not_hold_is_refused)
{
    start_tls();
    cr_expect_eq(status_of(PORTAL, "/wrong/x"), 502);
    char want[256];
    snprintf(want, sizeof want,
             "backend 127.0.0.1:%u: TLS handshake failed: certificate verify failed: the "
             "certificate does not name the backend",
             wrong_be);
    cr_expect(tf_px_wait_log(&px, want), "%s not logged", want);
}

Test(tls_backend, verify_off_works_and_is_warned_about)
{
    start_tls();
    char *out = curl_two(PORTAL, "/off/a", "/off/b");
    cr_expect(strstr(out, "sni=backend.test pp=- path=/off/a status=200") != NULL, "%s", out);
    free(out);
    cr_expect(tf_px_wait_log(&px, "tls_verify: off: the backend's certificate is not checked"),
              "no warning at start-up");
    int st;
    char config[1200];
    snprintf(config, sizeof config, "%s/tlsfront.yaml", px.tmp);
    out = tf_px_sh(&st, "'%s' check -c '%s' 2>&1", tf_px_env("TF_TLSFRONT"), config);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "warning: ") != NULL &&
                  strstr(out, "tls_verify: off: the backend's certificate is not checked") != NULL,
              "tlsfront check: %s", out);
    free(out);
}

/* The tenant's first backend fails its handshake (the system store): the
 * retry on the second sends the PROXY header again, then TLS. */
Test(tls_backend, mode_tcp_tunnels_over_tls_after_its_proxy_header)
{
    start_tls();
    for (int i = 0; i < 2; i++) {
        int st;
        char *out = tf_px_s_client(&st, "re-encrypted",
                                   "-quiet -no_ign_eof -connect 127.0.0.1:%u -servername "
                                   "portal.globex.example -CAfile '%s'",
                                   px.port, px.ca);
        cr_expect_eq(st, 0, "%s", out);
        cr_expect(strstr(out, "sni=backend.test pp=PROXY_TCP4_127.0.0.1_127.0.0.1_") != NULL,
                  "the header, then TLS with the SNI: %s", out);
        free(out);
    }
    char want[128];
    snprintf(want, sizeof want, "backend 127.0.0.1:%u: TLS handshake failed", sys_be);
    cr_expect(tf_px_wait_log(&px, want), "the first backend was not tried");
}

Test(tls_backend, a_backend_dying_mid_way_fails_that_request_only)
{
    start_tls();
    cr_expect_eq(status_of(PORTAL, "/before"), 200);
    cr_expect_eq(status_of(PORTAL, "/die"), 502);
    cr_expect_eq(status_of(PORTAL, "/after"), 200);
}

Test(tls_backend, health_checks_handshake_and_verify_first)
{
    start_tls();
    /* Checks reach the HTTP layer through a verified handshake, with SNI. */
    cr_expect(tf_px_wait_count(checked_log, "sni=backend.test path=/health", 2, TF_PX_WAIT_MS),
              "no health check over TLS reached the backend");
    char want[256];
    snprintf(want, sizeof want,
             "backend 127.0.0.1:%u failed its health checks (TLS handshake failed: certificate "
             "verify failed: no trusted CA signed it (tls_verify))",
             hsys_be);
    cr_expect(tf_px_wait_log(&px, want), "%s not logged", want);
    char *log = tf_px_log(&px);
    snprintf(want, sizeof want, "backend 127.0.0.1:%u failed", checked_be);
    cr_expect(strstr(log, want) == NULL, "the verified backend was taken down: %s", log);
    free(log);
    cr_expect_eq(status_of("chat.acme.example", "/up"), 200);
    cr_expect_eq(status_of(PORTAL, "/hsys/x"), 503, "a backend failing its checks is not used");
    /* Gone: taken down as a plain backend would be. */
    tf_px_stop_echo(&px, checked_ix);
    snprintf(want, sizeof want, "backend 127.0.0.1:%u failed its health checks", checked_be);
    cr_expect(tf_px_wait_log(&px, want), "%s not logged", want);
    cr_expect_eq(status_of("chat.acme.example", "/down"), 503);
}

Test(tls_backend, a_websocket_tunnel_runs_over_tls)
{
    start_tls();
    int st;
    char *out = tf_px_sh(&st,
                         "timeout 60 python3 '%s/tests/proxy/ws_client.py' 127.0.0.1 %u "
                         "portal.acme.example '%s' /ws/chat 20",
                         tf_px_env("TF_SOURCE_DIR"), px.port, px.ca);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "ok 20") != NULL, "%s", out);
    free(out);
}

Test(tls_backend, check_refuses_a_ca_file_without_certificates)
{
    tf_px_init(&px, "tf-tb-test");
    tf_px_demo_pki(&px);
    char config[1200], bad[1200];
    snprintf(config, sizeof config, "%s/tlsfront.yaml", px.tmp);
    snprintf(bad, sizeof bad, "%s/not-a-ca.pem", px.tmp);
    FILE *f = fopen(bad, "w");
    cr_assert_not_null(f);
    fputs("not a certificate\n", f);
    cr_assert_eq(fclose(f), 0);
    f = fopen(config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "listen:\n  https: [\"127.0.0.1:0\"]\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "tenants:\n"
            "  portal:\n    hosts: [\"portal.acme.example\"]\n"
            "    backends: [{address: \"127.0.0.1:9\", tls: true, tls_verify: not-a-ca.pem}]\n",
            px.demo, px.demo);
    cr_assert_eq(fclose(f), 0);
    int st;
    char *out = tf_px_sh(&st, "'%s' check -c '%s' 2>&1", tf_px_env("TF_TLSFRONT"), config);
    cr_expect_neq(st, 0, "%s", out);
    char want[2600];
    snprintf(want, sizeof want,
             "error: %s:9:16: backend '127.0.0.1:9': tls_verify: %s: no usable CA certificate",
             config, bad);
    cr_expect(strstr(out, want) != NULL, "want %s in: %s", want, out);
    free(out);
}

/* The backend restarts speaking TLS 1.2 only: the TLS 1.3 session kept from
 * before cannot be resumed (wolfSSL would offer 1.3 alone with it). The
 * session is forgotten and the handshake made in full at once: the request
 * is served and the backend is not marked down. */
Test(tls_backend, a_backend_that_changed_its_tls_version_is_not_blamed)
{
    start_tls();
    char *out = curl_two(PORTAL, "/vers/close", "/vers/close");
    cr_expect(strstr(out, "conn=2 resumed=1 status=200") != NULL, "not resumed: %s", out);
    free(out);
    tf_px_stop_echo(&px, vers_ix);
    char spec[2900];
    snprintf(spec, sizeof spec, "http,tls=%s/be.crt:%s/be.key,maxtls=1.2,port=%u", pki, pki,
             vers_be);
    add_backend(spec);
    cr_expect_eq(status_of(PORTAL, "/vers/close"), 200, "the changed backend was not tried again");
    cr_expect(tf_px_wait_log(&px, "resumed TLS handshake failed"), "no retry in full logged");
    char *log = tf_px_log(&px);
    char down[128];
    snprintf(down, sizeof down, "backend 127.0.0.1:%u: TLS handshake failed", vers_be);
    cr_expect_null(strstr(log, down), "marked down: %s", log);
    free(log);
    cr_expect_eq(status_of(PORTAL, "/vers/close"), 200);
}

Test(tls_backend, a_new_backend_connection_resumes_the_last_session)
{
    start_tls();
    /* The backend closes after each answer: every request is a handshake. */
    char *out = curl_two(PORTAL, "/close", "/close");
    cr_expect(strstr(out, "conn=1 resumed=0 status=200") != NULL, "%s", out);
    cr_expect(strstr(out, "conn=2 resumed=1 status=200") != NULL, "not resumed: %s", out);
    free(out);
    cr_expect(tf_px_wait_log(&px, " resumed\n"), "no resumption logged");
}
