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

TestSuite(unix_backend, .fini = fini, .timeout = 240);

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
    tf_px_stop_echo(&px, pp_be);
    cr_assert_eq(unlink(pp_sock), 0);
    cr_expect(tf_px_wait_log(&px, "failed its health checks"), "not taken down");
    char *log = tf_px_log(&px);
    cr_expect(strstr(log, "no such file or directory") != NULL, "the reason: %s", log);
    free(log);
    unsigned code = status_of("chat.acme.example", "/down");
    cr_expect(code == 502 || code == 503, "got %u", code);
    /* The other tenants go on. */
    cr_expect_eq(status_of("portal.acme.example", "/still"), 200);
}
