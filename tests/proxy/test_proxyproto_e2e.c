/* listen.proxy_protocol end to end (SPEC §14): `tlsfront run` behind a
 * pretend L4 balancer (pp_client.py writes the PROXY header, then speaks
 * TLS): the address the header carries is the client's for the backend
 * (X-Forwarded-For) and the access log; LOCAL is a health check; a
 * connection from outside `from`, without a valid header, or whose header
 * stops coming is closed without a byte sent. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tf_px_t px;
static char access_log[1300];

static void fini(void)
{
    tf_px_stop(&px);
}

/* A mode http tenant on the echo backend, the header required from FROM. */
static void start(const char *from)
{
    tf_px_init(&px, "tf-pp-test");
    tf_px_demo_pki(&px);
    tf_px_start_echo(&px, "pp");
    snprintf(access_log, sizeof access_log, "%s/access.log", px.tmp);
    char config[1200];
    snprintf(config, sizeof config, "%s/tlsfront.yaml", px.tmp);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "log:\n  level: debug\n  access: %s\n"
            "listen:\n  https: [\"127.0.0.1:0\"]\n"
            "  proxy_protocol: {enabled: true, from: [\"%s\"]}\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "timeouts: {handshake: 2s}\n"
            "tenants:\n"
            "  acme:\n    hosts: [\"portal.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n",
            access_log, from, px.demo, px.demo, px.echo_port);
    cr_assert_eq(fclose(f), 0);
    tf_px_launch(&px, config, 0);
}

static char *client(const char *header, const char *src)
{
    int st;
    char *out = tf_px_sh(&st,
                         "timeout 60 python3 '%s/tests/proxy/pp_client.py' %u '%s' "
                         "portal.acme.example %s %s",
                         tf_px_env("TF_SOURCE_DIR"), px.port, px.ca, header, src);
    cr_assert_eq(st, 0, "%s", out);
    return out;
}

static void expect_client_address(const char *header, const char *src, const char *seen)
{
    char *out = client(header, src);
    char want[128];
    snprintf(want, sizeof want, "[\"X-Forwarded-For\", \"%s\"]", seen);
    cr_expect(strstr(out, "HTTP/1.1 200") != NULL, "%s: %s", header, out);
    cr_expect(strstr(out, want) != NULL, "%s: the backend did not see %s: %s", header, seen, out);
    free(out);
}

Test(proxyproto_e2e, the_header_s_address_is_the_client_s, .fini = fini, .timeout = 180)
{
    start("127.0.0.1/32");
    expect_client_address("v1", "203.0.113.7", "203.0.113.7");
    expect_client_address("v2", "198.51.100.9", "198.51.100.9");
    expect_client_address("v2", "2001:db8::7", "2001:db8::7");
    expect_client_address("v1", "2001:db8::8", "2001:db8::8");
    expect_client_address("v1-split", "203.0.113.8", "203.0.113.8");
    /* LOCAL: the balancer's own check keeps the connection's address. */
    expect_client_address("v2-local", "203.0.113.9", "127.0.0.1");
    cr_expect(tf_px_wait_count(access_log, "203.0.113.7", 1, TF_PX_WAIT_MS),
              "the access log does not name the header's client");
    cr_expect(tf_px_wait_count(access_log, "2001:db8::7", 1, TF_PX_WAIT_MS),
              "the access log does not name the header's IPv6 client");
}

Test(proxyproto_e2e, no_valid_header_no_byte_sent, .fini = fini, .timeout = 180)
{
    start("127.0.0.1/32");
    static const char *const kinds[] = {"garbage", "none", "silent"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char *out = client(kinds[i], "203.0.113.7");
        cr_expect(strstr(out, "closed: 0 bytes") != NULL ||
                      strstr(out, "closed: handshake failed") != NULL,
                  "%s: %s", kinds[i], out);
        free(out);
    }
    cr_expect(tf_px_wait_log(&px, "PROXY protocol: no valid header"), "not logged");
    cr_expect(tf_px_wait_log(&px, "handshake timeout"), "a header that stopped was not cut");
    /* Still serving. */
    expect_client_address("v1", "203.0.113.7", "203.0.113.7");
}

Test(proxyproto_e2e, a_connection_from_outside_from_is_closed, .fini = fini, .timeout = 180)
{
    start("10.0.0.0/8");
    char *out = client("v1", "203.0.113.7");
    cr_expect(strstr(out, "closed:") != NULL, "%s", out);
    free(out);
    cr_expect(tf_px_wait_log(&px, "not from listen.proxy_protocol.from"), "not logged");
}

Test(proxyproto_e2e, enabled_without_from_is_a_configuration_error, .timeout = 60)
{
    tf_px_init(&px, "tf-pp-test");
    tf_px_demo_pki(&px);
    char config[1200];
    snprintf(config, sizeof config, "%s/bad.yaml", px.tmp);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "listen:\n  https: [\"127.0.0.1:0\"]\n  proxy_protocol: {enabled: true}\n"
            "tls:\n  certs: [\"%s/certs\"]\n"
            "tenants:\n  acme:\n    hosts: [\"portal.acme.example\"]\n"
            "    backends: [\"127.0.0.1:9\"]\n",
            px.demo);
    cr_assert_eq(fclose(f), 0);
    int st;
    char *out = tf_px_sh(&st, "'%s' check -c '%s' 2>&1", tf_px_env("TF_TLSFRONT"), config);
    cr_expect_neq(st, 0, "%s", out);
    cr_expect(strstr(out, "bad.yaml:3:") != NULL &&
                  strstr(out, "listen.proxy_protocol.from: required when enabled") != NULL,
              "%s", out);
    free(out);
    tf_px_stop(&px);
}

/* ---- send_proxy: the header on backend connections ------------------------ */

static unsigned http_be, echo_be;

/* Tenants on pp_backend.py: portal (mode http, send_proxy v1), chat (mode
 * http, v2), sip (mode tcp, v2). PROXY: whether clients come through a
 * balancer (listen.proxy_protocol from 127.0.0.1). */
static void start_send_proxy(bool proxy)
{
    tf_px_init(&px, "tf-pp-test");
    tf_px_demo_pki(&px);
    http_be = px.echos_port[tf_px_add_script(&px, "proxy/pp_backend.py", "http")];
    echo_be = px.echos_port[tf_px_add_script(&px, "proxy/pp_backend.py", "echo")];
    char config[1600];
    snprintf(config, sizeof config, "%s/tlsfront.yaml", px.tmp);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "log:\n  level: debug\n"
            "listen:\n  https: [\"127.0.0.1:0\"]\n%s"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "tenants:\n"
            "  portal:\n    hosts: [\"portal.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n    send_proxy: v1\n"
            "  chat:\n    hosts: [\"chat.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n    send_proxy: v2\n"
            "  sip:\n    hosts: [\"portal.globex.example\"]\n    mode: tcp\n"
            "    backends: [\"127.0.0.1:%u\"]\n    send_proxy: v2\n",
            proxy ? "  proxy_protocol: {enabled: true, from: [\"127.0.0.1\"]}\n" : "", px.demo,
            px.demo, http_be, http_be, echo_be);
    cr_assert_eq(fclose(f), 0);
    tf_px_launch(&px, config, 0);
}

/* Two requests on one keep-alive connection with curl: both bodies. */
static char *curl_twice(const char *host)
{
    int st;
    char *out = tf_px_sh(&st,
                         "curl -sS --http1.1 --max-time 30 --cacert '%s' --resolve "
                         "%s:%u:127.0.0.1 -w '\\n' https://%s:%u/a https://%s:%u/b",
                         px.ca, host, px.port, host, px.port, host, px.port);
    cr_assert_eq(st, 0, "%s", out);
    return out;
}

Test(proxyproto_e2e, send_proxy_names_the_client_to_each_backend_connection, .fini = fini,
     .timeout = 180)
{
    start_send_proxy(false);
    char want[128];
    char *out = curl_twice("portal.acme.example");
    snprintf(want, sizeof want, "v=1 src=127.0.0.1:");
    cr_expect(tf_px_count(out, want) == 2, "%s", out);
    snprintf(want, sizeof want, "dst=127.0.0.1:%u", px.port);
    cr_expect(tf_px_count(out, want) == 2, "the listener reached: %s", out);
    /* Not handed on through the pool: each request its own connection
     * here, each with its header. */
    cr_expect(strstr(out, "conn=1 ") && strstr(out, "conn=2 "), "%s", out);
    free(out);
    out = curl_twice("chat.acme.example");
    cr_expect(tf_px_count(out, "v=2 src=127.0.0.1:") == 2, "%s", out);
    free(out);
    /* mode tcp: the header, then the client's bytes. */
    int st;
    out = tf_px_sh(&st,
                   "printf 'INVITE sip:x SIP/2.0\\r\\n' | timeout 30 openssl s_client -quiet "
                   "-connect 127.0.0.1:%u -servername portal.globex.example -CAfile '%s' "
                   "2>/dev/null | head -c 200",
                   px.port, px.ca);
    cr_expect(strstr(out, "v=2 src=127.0.0.1:") != NULL, "%s", out);
    cr_expect(strstr(out, "INVITE sip:x") != NULL, "%s", out);
    free(out);
}

Test(proxyproto_e2e, behind_a_balancer_send_proxy_passes_the_balancer_s_client_on, .fini = fini,
     .timeout = 180)
{
    start_send_proxy(true);
    int st;
    char *out = tf_px_sh(&st,
                         "timeout 60 python3 '%s/tests/proxy/pp_client.py' %u '%s' "
                         "portal.acme.example v2 198.51.100.23",
                         tf_px_env("TF_SOURCE_DIR"), px.port, px.ca);
    cr_assert_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "v=1 src=198.51.100.23:40000") != NULL, "%s", out);
    free(out);
}
