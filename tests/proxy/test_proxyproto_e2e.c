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

static tf_px_t px_b;
static char haproxy_pid[1300];

/* Everything a test may have started (each step is idempotent). */
static void fini(void)
{
    int st;
    if (haproxy_pid[0] != '\0')
        free(tf_px_sh(&st, "[ -s '%s' ] && kill $(cat '%s') 2>/dev/null; true", haproxy_pid,
                      haproxy_pid));
    tf_px_stop(&px_b);
    tf_px_stop(&px);
}

TestSuite(proxyproto_e2e, .fini = fini, .timeout = 240);

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

Test(proxyproto_e2e, the_header_s_address_is_the_client_s)
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

Test(proxyproto_e2e, no_valid_header_no_byte_sent)
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

Test(proxyproto_e2e, a_connection_from_outside_from_is_closed)
{
    start("10.0.0.0/8");
    char *out = client("v1", "203.0.113.7");
    cr_expect(strstr(out, "closed:") != NULL, "%s", out);
    free(out);
    cr_expect(tf_px_wait_log(&px, "not from listen.proxy_protocol.from"), "not logged");
}

Test(proxyproto_e2e, enabled_without_from_is_a_configuration_error)
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

Test(proxyproto_e2e, send_proxy_names_the_client_to_each_backend_connection)
{
    start_send_proxy(false);
    char want[128];
    char *out = curl_twice("portal.acme.example");
    snprintf(want, sizeof want, "v=1 src=127.0.0.1:");
    cr_expect(tf_px_count(out, want) == 2, "%s", out);
    snprintf(want, sizeof want, "dst=127.0.0.1:%u", px.port);
    cr_expect(tf_px_count(out, want) == 2, "the listener reached: %s", out);
    /* Both requests of the client's keep-alive connection on one backend
     * connection, with one header: kept for this client, not pooled. */
    cr_expect_eq(tf_px_count(out, "conn=1 "), 2, "%s", out);
    free(out);
    /* Another client connection gets a connection of its own. */
    out = curl_twice("chat.acme.example");
    cr_expect(tf_px_count(out, "v=2 src=127.0.0.1:") == 2, "%s", out);
    cr_expect_eq(tf_px_count(out, "conn=2 "), 2, "%s", out);
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

Test(proxyproto_e2e, behind_a_balancer_send_proxy_passes_the_balancer_s_client_on)
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

/* ---- scale-out: haproxy in TCP mode in front of two instances ----------- */

/* Instance P (scratch in P) serving the demo certificates of `px` and its
 * echo backend, clients only through the balancer, ticket keys from KEYS. */
static void start_instance(tf_px_t *p, const char *keys)
{
    char config[1600];
    snprintf(config, sizeof config, "%s/tlsfront.yaml", p->tmp);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "log:\n  level: debug\n"
            "listen:\n  https: [\"127.0.0.1:0\"]\n"
            "  proxy_protocol: {enabled: true, from: [\"127.0.0.1\"]}\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "  ticket_keys_file: %s\n"
            "tenants:\n"
            "  acme:\n    hosts: [\"portal.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n",
            px.demo, px.demo, keys, px.echo_port);
    cr_assert_eq(fclose(f), 0);
    tf_px_launch(p, config, 0);
}

/* haproxy on a port found free, with the configuration above; false when
 * another process took the port meanwhile (the caller tries another). */
static bool try_haproxy(unsigned *hp)
{
    int st;
    char *port = tf_px_sh(&st, "python3 -c 'import socket; s=socket.socket(); "
                               "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'");
    cr_assert_eq(st, 0);
    *hp = (unsigned)strtoul(port, NULL, 10);
    free(port);
    snprintf(haproxy_pid, sizeof haproxy_pid, "%s/haproxy.pid", px.tmp);
    char cfg[1300];
    snprintf(cfg, sizeof cfg, "%s/haproxy.cfg", px.tmp);
    FILE *f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "global\n  maxconn 100\n"
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n"
            "  timeout server 30s\n"
            "frontend fe\n  bind 127.0.0.1:%u\n  default_backend be\n"
            "backend be\n  balance roundrobin\n"
            "  server a 127.0.0.1:%u send-proxy-v2\n  server b 127.0.0.1:%u send-proxy-v2\n",
            *hp, px.port, px_b.port);
    cr_assert_eq(fclose(f), 0);
    char *out = tf_px_sh(&st, "haproxy -D -p '%s' -f '%s' 2>&1", haproxy_pid, cfg);
    bool taken = st != 0 && strstr(out, "Address already in use") != NULL;
    cr_assert(st == 0 || taken, "haproxy did not start: %s", out);
    free(out);
    return st == 0;
}

/* haproxy 2.6, mode tcp, round robin over the two with send-proxy-v2, on
 * a port found free; returns it once haproxy accepts connections. */
static unsigned start_haproxy(void)
{
    unsigned hp = 0;
    bool up = false;
    for (int i = 0; i < 5 && !up; i++)
        up = try_haproxy(&hp);
    cr_assert(up, "no free port for haproxy in 5 tries");
    int st;
    char *out;
    /* Bounded: until the bind answers. */
    out = tf_px_sh(&st,
                   "python3 -c 'import socket,sys,time\n"
                   "for i in range(200):\n"
                   "    try:\n"
                   "        socket.create_connection((\"127.0.0.1\", %u), 1).close(); sys.exit(0)\n"
                   "    except OSError: time.sleep(0.05)\n"
                   "sys.exit(1)'",
                   hp);
    cr_assert_eq(st, 0, "haproxy does not accept on %u", hp);
    free(out);
    return hp;
}

Test(proxyproto_e2e, two_instances_behind_haproxy_see_the_client_and_share_tickets)
{
    tf_px_init(&px, "tf-pp-test");
    tf_px_demo_pki(&px);
    tf_px_start_echo(&px, "pp");
    tf_px_init(&px_b, "tf-pp-test-b");
    char keys[1300];
    snprintf(keys, sizeof keys, "%s/ticket.keys", px.tmp);
    int st;
    free(tf_px_sh(&st, "head -c 80 /dev/urandom | base64 -w0 > '%s' && echo >> '%s'", keys, keys));
    cr_assert_eq(st, 0);
    start_instance(&px, keys);
    start_instance(&px_b, keys);
    unsigned hp = start_haproxy();
    /* A session from one instance resumes on the other: round robin sends
     * the second connection to the other one. */
    char sess[1300];
    snprintf(sess, sizeof sess, "%s/session.pem", px.tmp);
    char *out = tf_px_sh(&st,
                         "echo | timeout 30 openssl s_client -connect 127.0.0.1:%u -servername "
                         "portal.acme.example -CAfile '%s' -sess_out '%s' 2>&1 >/dev/null; "
                         "echo | timeout 30 openssl s_client -connect 127.0.0.1:%u -servername "
                         "portal.acme.example -CAfile '%s' -sess_in '%s' 2>/dev/null",
                         hp, px.ca, sess, hp, px.ca, sess);
    cr_expect(strstr(out, "Reused, TLSv1.3") != NULL, "no resumption: %s", out);
    free(out);
    /* "handshake done: ... resumed" (debug): no request was made, so the
     * summary line names no TLS details. */
    bool a = tf_px_wait_log(&px, " resumed\n"), b = tf_px_wait_log(&px_b, " resumed\n");
    if (a == b) {
        char *la = tf_px_log(&px), *lb = tf_px_log(&px_b);
        cr_expect(a != b,
                  "exactly one instance resumes the other's session (a: %d, b: %d)\n"
                  "A:\n%s\nB:\n%s",
                  a, b, la, lb);
        free(la);
        free(lb);
    }
    /* The client binds 127.0.0.2; haproxy reaches the instances from
     * 127.0.0.1: the backend sees the client's address. */
    out = tf_px_sh(&st,
                   "curl -sS --max-time 30 --interface 127.0.0.2 --cacert '%s' --resolve "
                   "portal.acme.example:%u:127.0.0.1 https://portal.acme.example:%u/",
                   px.ca, hp, hp);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "[\"X-Forwarded-For\", \"127.0.0.2\"]") != NULL, "%s", out);
    free(out);
}
