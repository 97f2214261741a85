/* HTTP/2 to clients end to end (SPEC §12): real clients (curl --http2,
 * nghttp, openssl s_client for ALPN) and the frame-level client
 * tests/proxy/h2_client.py, which also plays the attacks of §12: rapid reset
 * (CVE-2023-44487), CONTINUATION, SETTINGS, PING, PRIORITY, WINDOW_UPDATE and
 * empty DATA floods, an HPACK bomb, zero-window stalls, streams over the
 * advertised limit, oversized and malformed header blocks. After every attack
 * a well-behaved client on a new connection is served: the proxy keeps
 * serving the others.
 *
 * The backends are tests/proxy/echo_backend.py instances; a request whose
 * query has log=FILE is recorded there by the backend, which is how a test
 * knows that a request did (or never did) reach a backend. */
#include "harness.h"

#include <criterion/criterion.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

TestSuite(h2, .timeout = 300);

enum { ECHO_H2, ECHO_WS };

typedef struct {
    const char *idle;     /* timeouts.idle; NULL: 60s */
    unsigned max_streams; /* http2.max_concurrent_streams; 0: the key left out */
    bool disabled;        /* http2: {enabled: false} */
    const char *other;    /* timeouts.handshake, request_header and response; NULL: 20s, 20s, 60s */
    bool sink;            /* a route /sink/ to tests/proxy/sink_backend.py (never reads) */
    unsigned max_fields;  /* limits.max_header_fields; 0: the default */
} h2_opts_t;

typedef struct {
    tf_px_t px;
    char config[1200];
    char access[1300]; /* the access log */
    char seen[1300];   /* the file the backend records log=... requests in */
} site_t;

/* Tenants: acme (portal and chat.acme.example, one certificate) on the echo
 * backend "h2" with a websocket route /ws/ on the echo backend "ws"; globex
 * (its own certificate) on "h2"; a mode tcp tenant under the wildcard
 * certificate; a catch-all for clients that can only name localhost
 * (nghttp has no --resolve). */
static void site_start(site_t *s, const h2_opts_t *o)
{
    tf_px_t *px = &s->px;
    tf_px_init(px, "tf-h2-test");
    tf_px_demo_pki(px);
    tf_px_start_backend(px);
    tf_px_add_echo(px, "h2");
    tf_px_add_echo(px, "ws");
    snprintf(s->access, sizeof s->access, "%s/access.log", px->tmp);
    snprintf(s->seen, sizeof s->seen, "%s/seen.log", px->tmp);
    char sink[160] = "";
    if (o && o->sink) {
        size_t i = tf_px_add_script(px, "proxy/sink_backend.py", "sink");
        snprintf(sink, sizeof sink, "      - path: /sink/\n        backends: [\"127.0.0.1:%u\"]\n",
                 px->echos_port[i]);
    }
    char fields[64] = "";
    if (o && o->max_fields)
        snprintf(fields, sizeof fields, "  max_header_fields: %u\n", o->max_fields);
    char streams[64] = "";
    if (o && o->max_streams)
        snprintf(streams, sizeof streams, "  max_concurrent_streams: %u\n", o->max_streams);
    snprintf(s->config, sizeof s->config, "%s/tlsfront.yaml", px->tmp);
    FILE *f = fopen(s->config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "log:\n  level: debug\n  access: %s\n"
            "listen:\n  https: [\"127.0.0.1:0\"]\n"
            "admin:\n  listen: \"127.0.0.1:0\"\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "timeouts:\n  handshake: %s\n  connect: 2s\n  drain: 20s\n  idle: %s\n"
            "  request_header: %s\n  response: %s\n"
            "limits:\n  max_header_bytes: 8192\n%s"
            "http2:\n  enabled: %s\n%s"
            "tenants:\n"
            "  acme:\n"
            "    hosts: [\"portal.acme.example\", \"chat.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "    routes:\n"
            "      - path: /ws/\n"
            "        backends: [\"127.0.0.1:%u\"]\n"
            "        mode: websocket\n%s"
            "  globex:\n    hosts: [\"portal.globex.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "  raw:\n    hosts: [\"raw.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  any:\n    hosts: [\"*\"]\n    backends: [\"127.0.0.1:%u\"]\n",
            s->access, px->demo, px->demo, o && o->other ? o->other : "20s",
            o && o->idle ? o->idle : "60s", o && o->other ? o->other : "20s",
            o && o->other ? o->other : "60s", fields, o && o->disabled ? "false" : "true", streams,
            px->echos_port[ECHO_H2], px->echos_port[ECHO_WS], sink, px->echos_port[ECHO_H2],
            px->backend_port, px->echos_port[ECHO_H2]);
    fclose(f);
    tf_px_launch(px, s->config, 0);
}

static bool has(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* h2_client.py as SNI portal.acme.example (verified against the demo CA),
 * ARGS appended: its one JSON line (malloc'd) and its exit status. COMMON
 * goes before the subcommand (--authority, --sni, --timeout). */
static char *h2c_as(const site_t *s, int *st, const char *common, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static char *h2c_as(const site_t *s, int *st, const char *common, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return tf_px_sh(st,
                    "timeout 280 /usr/bin/python3 '%s/tests/proxy/h2_client.py' --port %u "
                    "--sni portal.acme.example --cafile '%s' %s %s",
                    tf_px_env("TF_SOURCE_DIR"), s->px.port, s->px.ca, common, args);
}

#define H2C(s, st, ...) h2c_as((s), (st), "", __VA_ARGS__)

/* h2_client.py must have seen what it expects: status 0 and "ok": true. */
static void expect_ok(const char *what, const char *out, int st)
{
    if (getenv("TF_H2_VERBOSE") != NULL) /* what each attack observed, passing or not */
        fprintf(stderr, "h2_client: %s: %s\n", what, out);
    cr_expect(st == 0 && has(out, "\"ok\": true"), "%s: %s", what, out);
}

/* curl --http2 GET of PATH on portal.acme.example: the body, then a line
 * with the HTTP version curl used. */
static char *curl_h2(const site_t *s, int *st, const char *path, const char *extra)
{
    return tf_px_sh(st,
                    "curl -sS --http2 --max-time 60 --cacert '%s' --resolve "
                    "portal.acme.example:%u:127.0.0.1 -w '\\nversion=%%{http_version}' %s "
                    "'https://portal.acme.example:%u%s'",
                    s->px.ca, s->px.port, extra ? extra : "", s->px.port, path);
}

/* The well-behaved client on a new connection gets its answer over h2. */
static void expect_served(const site_t *s, const char *after)
{
    int st;
    char *out = curl_h2(s, &st, "/served", NULL);
    cr_expect(st == 0 && has(out, "\"backend\": \"h2\"") && has(out, "\nversion=2"),
              "after %s, a new client was not served over h2: %s", after, out);
    free(out);
}

/* Lines of the backend's record (requests that reached it) holding needle. */
static unsigned seen_count(const site_t *s, const char *needle)
{
    char *log = tf_px_read(s->seen);
    unsigned n = tf_px_count(log, needle);
    free(log);
    return n;
}

/* The proxy's peak resident memory so far (VmHWM) in KiB: read before and
 * after an attack, it catches what the proxy held at any moment of it, even
 * if it was freed at the end. */
static long peak_kb(const site_t *s)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->px.proxy_pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    cr_assert_geq(kb, 0);
    return kb;
}

/* The proxy's peak memory during an attack is within BOUND_MB of its peak
 * before: it held nothing in proportion to what the attacker sent. Not a
 * timing: a size. */
static void expect_bounded(const site_t *s, long before_kb, long bound_mb, const char *what)
{
    long after_kb = peak_kb(s);
    if (getenv("TF_H2_VERBOSE") != NULL)
        fprintf(stderr, "memory: %s: peak %ld -> %ld KiB\n", what, before_kb, after_kb);
    cr_expect_lt(after_kb - before_kb, bound_mb * 1024,
                 "%s: the proxy's peak grew from %ld to %ld KiB", what, before_kb, after_kb);
}

/* Sum of the values of a metric's samples (every label set) on /metrics. */
static double metric(const site_t *s, const char *name)
{
    int st;
    char *m = tf_px_sh(&st, "curl -s -m 10 http://127.0.0.1:%u/metrics", s->px.admin_port);
    cr_assert_eq(st, 0, "%s", m);
    double sum = 0;
    size_t n = strlen(name);
    for (const char *line = m; *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (strncmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '{')) {
            const char *sp = strchr(line, ' ');
            if (sp != NULL && (end == NULL || sp < end))
                sum += strtod(sp + 1, NULL);
        }
        if (end == NULL)
            break;
        line = end + 1;
    }
    free(m);
    return sum;
}

/* ---- real clients ---------------------------------------------------- */

Test(h2, peers_speak_h2)
{
    int st;
    char *out = tf_px_sh(&st, "nghttp --version && curl --version | grep -i http2 && "
                              "/usr/bin/python3 -c 'import h2, hyperframe, hpack; "
                              "print(\"h2\", h2.__version__)'");
    cr_assert_eq(st, 0, "the test peers lack HTTP/2: %s", out);
    cr_expect(has(out, "nghttp2/") && has(out, "HTTP2") && has(out, "h2 4."), "%s", out);
    free(out);
}

Test(h2, curl_gets_h2_and_the_backend_http11_with_forwarded_headers)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    char *out = curl_h2(&s, &st, "/path?q=1", "-H 'X-Forwarded-For: 6.6.6.6'");
    cr_assert_eq(st, 0, "%s", out);
    cr_expect(has(out, "\nversion=2"), "curl did not use h2: %s", out);
    cr_expect(has(out, "\"backend\": \"h2\"") && has(out, "\"target\": \"/path?q=1\"") &&
                  has(out, "\"version\": \"HTTP/1.1\""),
              "%s", out);
    /* Header names as the proxy wrote them; compared without case. */
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    char want[256];
    snprintf(want, sizeof want, "[\"host\", \"portal.acme.example:%u\"]", s.px.port);
    cr_expect(has(out, want), "Host is not the :authority: %s", out);
    cr_expect(has(out, "[\"x-forwarded-for\", \"127.0.0.1\"]"), "%s", out);
    cr_expect(has(out, "[\"x-forwarded-proto\", \"https\"]"), "%s", out);
    snprintf(want, sizeof want, "[\"x-forwarded-host\", \"portal.acme.example:%u\"]", s.px.port);
    cr_expect(has(out, want), "%s", out);
    cr_expect(!has(out, "6.6.6.6"), "the client's X-Forwarded-For was kept: %s", out);
    cr_expect(!has(out, "\":authority\"") && !has(out, "\":path\""),
              "pseudo-headers reached the backend: %s", out);
    free(out);
    tf_px_stop(&s.px);
}

/* A response goes to an HTTP/2 client as to an HTTP/1.1 one, the route's
 * response rules and the sticky cookie included (the exchange hands the
 * stream the parsed head with what it changes), with no field HTTP/2 does
 * not carry; bodies of every framing arrive whole. */
Test(h2, responses_get_the_route_rules_and_the_sticky_cookie)
{
    site_t s;
    site_start(&s, NULL);
    tf_px_stop_proxy(&s.px);
    FILE *f = fopen(s.config, "a");
    cr_assert_not_null(f);
    fprintf(f,
            "  sticky:\n"
            "    hosts: [\"sticky.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\", \"127.0.0.1:%u\"]\n"
            "    balance: cookie\n"
            "    headers:\n"
            "      response: {set: {X-Frame-Options: DENY}, remove: [Content-Type]}\n",
            s.px.echos_port[ECHO_H2], s.px.echos_port[ECHO_WS]);
    fclose(f);
    tf_px_launch(&s.px, s.config, 0);
    static const char *const paths[] = {"/plain", "/chunked", "/close-delimited", "/interim",
                                        "/split-head"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int st;
        char *out = tf_px_sh(&st,
                             "curl -sS -i --http2 --max-time 60 --cacert '%s' --resolve "
                             "sticky.tenants.example:%u:127.0.0.1 "
                             "'https://sticky.tenants.example:%u%s'",
                             s.px.ca, s.px.port, s.px.port, paths[i]);
        cr_assert_eq(st, 0, "%s: %s", paths[i], out);
        cr_expect(has(out, "HTTP/2 200 \r\n"), "%s: %s", paths[i], out);
        cr_expect(has(out, "\r\nx-frame-options: DENY\r\n"), "%s: %s", paths[i], out);
        cr_expect(has(out, "\r\nset-cookie: TFSRV="), "%s: no sticky cookie: %s", paths[i], out);
        cr_expect(!has(out, "content-type:") && !has(out, "connection:"), "%s: %s", paths[i], out);
        cr_expect(has(out, "\"target\": \"") && has(out, paths[i]) && has(out, "}"),
                  "%s: body not whole: %s", paths[i], out);
        free(out);
    }
    /* The access log counts the head the client got, as the HTTP/1.1 text it
     * stands for (the backend's "HTTP/1.1 200 OK" line, the fields as curl
     * shows them, the empty line), not the backend's own head: the rule's
     * field and the cookie count, the removed Content-Type does not. */
    int st;
    char *out = tf_px_sh(&st,
                         "curl -sS -i --http2 --max-time 60 --cacert '%s' --resolve "
                         "sticky.tenants.example:%u:127.0.0.1 "
                         "'https://sticky.tenants.example:%u/plain?counted'",
                         s.px.ca, s.px.port, s.px.port);
    cr_assert_eq(st, 0, "%s", out);
    const char *end = strstr(out, "\r\n\r\n");
    cr_assert_not_null(end, "%s", out);
    size_t head = (size_t)(end + 4 - out), body = strlen(end + 4);
    size_t want = strlen("HTTP/1.1 200 OK\r\n") + head - strlen("HTTP/2 200 \r\n") + body;
    char *log = tf_px_wait_file(s.access, "/plain?counted", NULL);
    const char *line = strstr(log, "/plain?counted");
    const char *o = line != NULL ? strstr(line, " out=") : NULL;
    cr_assert_not_null(o, "%s", log);
    cr_expect_eq(strtoul(o + 5, NULL, 10), want, "out= against the head and body curl got: %s%s",
                 out, line);
    free(log);
    free(out);
    tf_px_stop(&s.px);
}

Test(h2, split_cookie_fields_are_joined)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    char *out = H2C(&s, &st,
                    "get --header 'cookie: a=1' --header 'x-mid: m' "
                    "--header 'cookie: b=2' --header 'cookie: c=3'");
    expect_ok("cookie crumbs", out, st);
    cr_expect(has(out, "[\"Cookie\", \"a=1; b=2; c=3\"]") ||
                  has(out, "[\"cookie\", \"a=1; b=2; c=3\"]"),
              "cookies not joined with \"; \": %s", out);
    cr_expect_eq(tf_px_count(out, "a=1"), 1, "%s", out);
    free(out);
    tf_px_stop(&s.px);
}

Test(h2, many_concurrent_streams_on_one_connection)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    /* nghttp: 50 concurrent requests; each response's :status printed by -v. */
    char *out =
        tf_px_sh(&st, "timeout 120 nghttp -nv -m 50 https://localhost:%u/many 2>&1", s.px.port);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_eq(tf_px_count(out, ":status: 200"), 50, "nghttp: %.4000s", out);
    free(out);
    /* And our client: 3 paths x 40 streams, every body complete. */
    out = H2C(&s, &st, "get --count 40 --path /a --path '/slow?ms=200' --path /chunked --show 0");
    expect_ok("120 streams", out, st);
    cr_expect(has(out, "\"streams\": 120") && has(out, "\"statuses\": [\"200\"]"), "%s", out);
    free(out);
    tf_px_stop(&s.px);
}

Test(h2, post_bodies_of_megabytes_arrive_whole)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    /* h2_client compares the backend's digest of the body with its own. */
    char *out = H2C(&s, &st, "get --method POST --body-bytes 6000000 --show 1");
    expect_ok("6 MB POST", out, st);
    cr_expect(has(out, "\"body_len\": 6000000"), "%s", out);
    free(out);
    out = H2C(&s, &st, "get --method POST --body-bytes 3000000 --count 4 --show 0");
    expect_ok("4 x 3 MB POST at once", out, st);
    free(out);
    /* curl uploading a file over h2. */
    out =
        tf_px_sh(&st,
                 "head -c 4000000 /dev/urandom > '%s/up.bin' && sha256sum '%s/up.bin' | cut -c1-64 "
                 "&& curl -sS --http2 --max-time 60 --cacert '%s' --resolve "
                 "portal.acme.example:%u:127.0.0.1 --data-binary @'%s/up.bin' "
                 "https://portal.acme.example:%u/upload",
                 s.px.tmp, s.px.tmp, s.px.ca, s.px.port, s.px.tmp, s.px.port);
    cr_assert_eq(st, 0, "%s", out);
    char sum[65] = "";
    sscanf(out, "%64s", sum);
    char want[128];
    snprintf(want, sizeof want, "\"body_sha256\": \"%s\"", sum);
    cr_expect(has(out, want) && has(out, "\"body_len\": 4000000"), "%s", out);
    free(out);
    /* A large response, read through flow control. */
    out = H2C(&s, &st, "get --path '/big?bytes=20000000' --show 0");
    expect_ok("20 MB GET", out, st);
    cr_expect(has(out, "\"body_len\": 20000000"), "%s", out);
    free(out);
    tf_px_stop(&s.px);
}

/* Expect: 100-continue over h2: the interim 100 reaches the client as a
 * HEADERS frame before the body is sent (curl waits for it up to 60 s, so
 * a missing 100 would show as its absence in the verbose output). */
Test(h2, expect_100_continue_gets_an_interim_100)
{
    site_t s;
    site_start(&s, NULL);
    char body[1300];
    snprintf(body, sizeof body, "%s/expect.bin", s.px.tmp);
    int st;
    free(tf_px_sh(&st, "head -c 5000 /dev/zero > '%s'", body));
    char extra[1500];
    snprintf(extra, sizeof extra,
             "-v --expect100-timeout 60 -H 'Expect: 100-continue' --data-binary @'%s' 2>&1", body);
    char *out = curl_h2(&s, &st, "/up", extra);
    cr_expect(st == 0 && has(out, "< HTTP/2 100") && has(out, "< HTTP/2 200") &&
                  has(out, "\"body_len\": 5000"),
              "Expect: 100-continue over h2: %s", out);
    free(out);
    tf_px_stop(&s.px);
}

Test(h2, head_and_trailers)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    char *out = H2C(&s, &st, "get --method HEAD --path /headers-only-head");
    expect_ok("HEAD", out, st);
    cr_expect(has(out, "[\"content-length\", \"1000\"]") && has(out, "\"body_len\": 0"), "%s", out);
    free(out);
    out = curl_h2(&s, &st, "/x", "-I");
    cr_expect(st == 0 && has(out, "HTTP/2 200") && has(out, "\nversion=2"), "%s", out);
    free(out);
    /* The backend's chunked response ends with a trailer: an h2 trailer block. */
    out = H2C(&s, &st, "get --path /chunked");
    expect_ok("chunked response", out, st);
    cr_expect(has(out, "\"trailers\": [[\"x-trailer\", \"done\"]]"),
              "the response trailer did not arrive as h2 trailers: %s", out);
    free(out);
    /* Request trailers reach the backend (as a chunked body's). */
    out = H2C(&s, &st, "get --method POST --body-bytes 1000 --trailer 'x-req-trailer: yes'");
    expect_ok("request trailers", out, st);
    cr_expect(has(out, "\"trailers\": [[\"x-req-trailer\", \"yes\"]]") ||
                  has(out, "\"trailers\": [[\"X-Req-Trailer\", \"yes\"]]"),
              "the request trailer did not reach the backend: %s", out);
    free(out);
    /* 1xx: the 103 before the response. */
    out = H2C(&s, &st, "get --path /interim");
    expect_ok("103", out, st);
    cr_expect(has(out, "\"informational\"") && has(out, "103"), "%s", out);
    free(out);
    tf_px_stop(&s.px);
}

Test(h2, disabled_means_http11)
{
    site_t s;
    h2_opts_t o = {.disabled = true};
    site_start(&s, &o);
    int st;
    char *out = curl_h2(&s, &st, "/", NULL);
    cr_expect(st == 0 && has(out, "\nversion=1.1") && has(out, "\"backend\": \"h2\""), "%s", out);
    free(out);
    out = h2c_as(&s, &st, "--alpn h2,http/1.1", "get");
    cr_expect(st != 0 && has(out, "not h2"), "h2 selected though disabled: %s", out);
    free(out);
    tf_px_stop(&s.px);
}

Test(h2, a_tcp_tenant_never_negotiates_h2)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    char *out = tf_px_sh(&st,
                         "timeout 30 openssl s_client -connect 127.0.0.1:%u -servername "
                         "portal.acme.example -alpn h2,http/1.1 </dev/null 2>&1",
                         s.px.port);
    cr_expect(has(out, "ALPN protocol: h2"), "no h2 for an http tenant: %s", out);
    free(out);
    out = tf_px_sh(&st,
                   "timeout 30 openssl s_client -connect 127.0.0.1:%u -servername "
                   "raw.tenants.example -alpn h2 </dev/null 2>&1",
                   s.px.port);
    cr_expect(has(out, "No ALPN negotiated") && !has(out, "ALPN protocol: h2"),
              "a mode tcp tenant negotiated h2: %s", out);
    free(out);
    out = tf_px_sh(&st,
                   "timeout 30 openssl s_client -connect 127.0.0.1:%u -servername "
                   "raw.tenants.example -alpn h2,http/1.1 </dev/null 2>&1",
                   s.px.port);
    cr_expect(!has(out, "ALPN protocol: h2"), "a mode tcp tenant negotiated h2: %s", out);
    free(out);
    /* The tcp tenant still pipes (the test backend echoes lines). */
    cr_expect(tf_px_echo(&s.px, "raw.tenants.example", "still a pipe"));
    tf_px_stop(&s.px);
}

Test(h2, authority_another_certificate_covers_is_421)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    char *out = h2c_as(&s, &st, "--authority portal.globex.example",
                       "get --expect-status 421 --path '/x?log=%s'", s.seen);
    expect_ok("fronting across certificates", out, st);
    free(out);
    cr_expect_eq(seen_count(&s, "/x"), 0, "a misdirected request reached a backend");
    /* The same certificate covers chat.acme.example: coalescing works. */
    out = h2c_as(&s, &st, "--authority chat.acme.example", "get");
    expect_ok("coalescing under one certificate", out, st);
    free(out);
    tf_px_stop(&s.px);
}

Test(h2, access_log_and_metrics_name_http2)
{
    site_t s;
    site_start(&s, NULL);
    double before = metric(&s, "tlsfront_http2_streams_total");
    int st;
    char *out = H2C(&s, &st, "get --count 3 --path /logged-h2");
    expect_ok("3 streams", out, st);
    free(out);
    expect_served(&s, "the streams");
    char *log = tf_px_wait_file(s.access, "/logged-h2", NULL);
    cr_expect(has(log, "GET /logged-h2 HTTP/2\""), "the access log does not say HTTP/2: %s", log);
    free(log);
    double after = metric(&s, "tlsfront_http2_streams_total");
    cr_expect_geq(after, before + 4, "tlsfront_http2_streams_total %g -> %g", before, after);
    cr_expect_geq(metric(&s, "tlsfront_http2_connections_total"), 2);
    tf_px_stop(&s.px);
}

/* Runs h2_client.py COMMAND (with --pause READY GO) in the background,
 * sends the proxy SIGHUP once the client holds its connection open, lets
 * the client go on after the reload applied, and returns its JSON line
 * (malloc'd). */
static char *across_a_reload(site_t *s, const char *name, const char *command)
{
    char outf[1300], ready[1300], go[1300];
    snprintf(outf, sizeof outf, "%s/%s.out", s->px.tmp, name);
    snprintf(ready, sizeof ready, "%s/%s.ready", s->px.tmp, name);
    snprintf(go, sizeof go, "%s/%s.go", s->px.tmp, name);
    int st;
    free(tf_px_sh(&st,
                  "timeout 120 /usr/bin/python3 '%s/tests/proxy/h2_client.py' --port %u "
                  "--sni portal.acme.example --cafile '%s' --timeout 60 %s --pause '%s' '%s' "
                  "> '%s' 2>&1 &",
                  tf_px_env("TF_SOURCE_DIR"), s->px.port, s->px.ca, command, ready, go, outf));
    free(tf_px_wait_file(ready, "ready", NULL));
    free(tf_px_sh(&st, "kill -HUP %d", (int)s->px.proxy_pid));
    cr_assert(
        tf_px_wait_count(s->px.log, "reload (configuration and certificates)", 1, TF_PX_WAIT_MS));
    FILE *f = fopen(go, "w");
    cr_assert_not_null(f);
    fclose(f);
    return tf_px_wait_file(outf, "\"ok\"", NULL);
}

Test(h2, a_reload_keeps_an_open_connection_serving)
{
    site_t s;
    site_start(&s, NULL);
    char *out = across_a_reload(&s, "reload", "get --count 2");
    cr_expect(has(out, "\"ok\": true") && has(out, "\"streams\": 4"),
              "the connection opened before the reload: %s", out);
    free(out);
    expect_served(&s, "a reload");
    tf_px_stop(&s.px);
}

/* A WebSocket over HTTP/2 survives a reload like an HTTP/1.1 tunnel: the
 * stream keeps the generation it started with and goes on echoing. */
Test(h2, a_websocket_over_h2_survives_a_reload)
{
    site_t s;
    site_start(&s, NULL);
    char *out =
        across_a_reload(&s, "wsreload", "websocket --path /ws/echo --messages 4 --size 100");
    cr_expect(has(out, "\"ok\": true") && has(out, "\"echoed\": 4"),
              "the tunnel opened before the reload: %s", out);
    free(out);
    expect_served(&s, "a reload during a WebSocket over HTTP/2");
    tf_px_stop(&s.px);
}

Test(h2, websocket_over_extended_connect)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    char *out = H2C(&s, &st, "websocket --path /ws/echo --messages 5 --size 3000");
    expect_ok("RFC 8441 WebSocket", out, st);
    cr_expect(has(out, "\"echoed\": 5"), "%s", out);
    free(out);
    /* A websocket route takes upgrades only: a plain GET over h2 is 400. */
    out = H2C(&s, &st, "get --path /ws/echo --expect-status 400");
    expect_ok("GET on a websocket route", out, st);
    free(out);
    expect_served(&s, "a WebSocket");
    tf_px_stop(&s.px);
}

Test(h2, drain_sends_goaway_and_finishes_the_stream_in_flight)
{
    site_t s;
    site_start(&s, NULL);
    char outf[1300];
    snprintf(outf, sizeof outf, "%s/drain.out", s.px.tmp);
    int st;
    char *r = tf_px_sh(&st,
                       "timeout 120 /usr/bin/python3 '%s/tests/proxy/h2_client.py' --port %u "
                       "--sni portal.acme.example --cafile '%s' --timeout 60 drain "
                       "--path '/slow?ms=2000&log=%s' > '%s' 2>&1 &",
                       tf_px_env("TF_SOURCE_DIR"), s.px.port, s.px.ca, s.seen, outf);
    free(r);
    /* SIGTERM once the backend holds the request. */
    free(tf_px_wait_file(s.seen, "/slow", NULL));
    cr_assert(kill(s.px.proxy_pid, SIGTERM) == 0);
    char *out = tf_px_wait_file(outf, "\"ok\"", NULL);
    cr_expect(has(out, "\"ok\": true"), "drain: %s", out);
    free(out);
    cr_expect_eq(tf_px_wait_proxy(&s.px), 0);
    tf_px_stop(&s.px);
}

/* An h2 connection without streams closes after timeouts.idle, politely. */
Test(h2, an_idle_connection_gets_goaway_no_error_then_closes)
{
    site_t s;
    h2_opts_t o = {.idle = "2s"};
    site_start(&s, &o);
    int st;
    char *out = h2c_as(&s, &st, "--timeout 60", "idle --wait 60");
    expect_ok("idle connection", out, st);
    free(out);
    expect_served(&s, "an idle connection");
    tf_px_stop(&s.px);
}

/* The same with timeouts.idle shorter than request_header: the idle
 * deadline passes while the block is pending and must not be the timer's
 * (it used to be re-armed for that past deadline and run again at once,
 * spinning the worker: no GOAWAY ever came). */
Test(h2, a_header_block_pending_past_the_idle_deadline_is_closed_by_request_header)
{
    site_t s;
    h2_opts_t o = {.idle = "1s", .other = "3s"};
    site_start(&s, &o);
    int st;
    char *out = h2c_as(&s, &st, "--timeout 120", "slow-headers --accept 0");
    expect_ok("slow header block past idle", out, st);
    free(out);
    cr_expect(tf_px_wait_count(s.px.log, "request header timeout", 1, TF_PX_WAIT_MS),
              "the connection was not closed for its header block");
    expect_served(&s, "a header block past the idle deadline");
    tf_px_stop(&s.px);
}

/* A stream answered 431 whose client never ends its side is no request in
 * flight: the connection still closes after timeouts.idle. (The timer used
 * to be re-armed for the idle deadline already past while such a stream was
 * open, and libuv ran it again at once, for ever: the worker spun. The
 * fuzzer found it.) */
Test(h2, a_stalled_stream_answered_locally_does_not_keep_the_connection)
{
    site_t s;
    h2_opts_t o = {.idle = "2s"};
    site_start(&s, &o);
    int st;
    char *out = h2c_as(&s, &st, "--timeout 60", "stalled-431 --bytes 12000 --wait 60");
    expect_ok("stalled 431", out, st);
    free(out);
    expect_served(&s, "a stalled 431");
    tf_px_stop(&s.px);
}

/* ---- attacks ------------------------------------------------------------ */

Test(h2, rapid_reset_is_cut_with_enhance_your_calm)
{
    site_t s;
    site_start(&s, NULL);
    expect_served(&s, "nothing");
    long before = peak_kb(&s);
    int st;
    char *out = H2C(&s, &st, "rapid-reset --streams 20000");
    expect_ok("rapid reset", out, st);
    free(out);
    expect_bounded(&s, before, 16, "rapid reset");
    expect_served(&s, "rapid reset");
    tf_px_stop(&s.px);
}

/* Uploads cancelled while their backend was not reading give the
 * connection's window back: a later upload on the same connection goes
 * through (before the fix, six such rounds left it at 0). */
Test(h2, cancelled_uploads_give_the_connection_window_back)
{
    site_t s;
    h2_opts_t o = {.sink = true};
    site_start(&s, &o);
    int st;
    char *out = h2c_as(&s, &st, "--timeout 60",
                       "upload-reset --stall-path /sink/up --path /up --rounds 6 --bytes 2000000");
    expect_ok("cancelled uploads, then one more", out, st);
    free(out);
    expect_served(&s, "cancelled uploads");
    tf_px_stop(&s.px);
}

/* A header block that never ends holds nothing open: it is due whole
 * within timeouts.request_header (3 s here, every other timeout 5 min). */
Test(h2, an_unfinished_header_block_is_closed_by_request_header)
{
    site_t s;
    h2_opts_t o = {.idle = "5m", .other = "3s"};
    site_start(&s, &o);
    int st;
    char *out = h2c_as(&s, &st, "--timeout 120", "slow-headers --accept 0");
    expect_ok("slow header block", out, st);
    free(out);
    cr_expect(tf_px_wait_count(s.px.log, "request header timeout", 1, TF_PX_WAIT_MS),
              "the connection was not closed for its header block");
    expect_served(&s, "a slow header block");
    tf_px_stop(&s.px);
}

/* CVE-2025-8671: streams that libnghttp2 resets itself (DATA over the
 * content-length) spend the same budget as the client's resets. */
Test(h2, made_you_reset_is_cut_with_enhance_your_calm)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    char *out = H2C(&s, &st, "made-you-reset --streams 20000");
    expect_ok("MadeYouReset", out, st);
    free(out);
    expect_served(&s, "MadeYouReset");
    tf_px_stop(&s.px);
}

static void continuation_flood(const char *size, long bound_mb)
{
    site_t s;
    site_start(&s, NULL);
    expect_served(&s, "nothing");
    long before = peak_kb(&s);
    int st;
    char *out = H2C(&s, &st, "continuation --size %s --path '/cont?log=%s'", size, s.seen);
    expect_ok("CONTINUATION flood", out, st);
    free(out);
    expect_bounded(&s, before, bound_mb, size);
    cr_expect_eq(seen_count(&s, "/cont"), 0, "an endless header block reached a backend");
    expect_served(&s, "a CONTINUATION flood");
    tf_px_stop(&s.px);
}

Test(h2, continuation_flood_of_tiny_frames)
{
    continuation_flood("tiny", 16);
}

/* Up to 64 MB of header block: the proxy must cut it long before, or at
 * least hold none of it. */
Test(h2, continuation_flood_of_large_frames_holds_no_memory)
{
    continuation_flood("large", 16);
}

Test(h2, continuation_flood_of_empty_frames)
{
    continuation_flood("empty", 16);
}

Test(h2, hpack_bomb_never_reaches_a_backend)
{
    site_t s;
    site_start(&s, NULL);
    expect_served(&s, "nothing");
    long before = peak_kb(&s);
    int st;
    /* 4000 bytes in the dynamic table referenced 4000 times: 16 MB decoded
     * from an 8 KB block, against max_header_bytes 8192. */
    char *out = H2C(&s, &st, "hpack-bomb --path '/bomb?log=%s'", s.seen);
    expect_ok("HPACK bomb", out, st);
    free(out);
    expect_bounded(&s, before, 16, "HPACK bomb");
    cr_expect_eq(seen_count(&s, "/bomb"), 0, "the bomb reached a backend");
    expect_served(&s, "an HPACK bomb");
    tf_px_stop(&s.px);
}

static void flood(const char *kind, const char *extra)
{
    site_t s;
    site_start(&s, NULL);
    expect_served(&s, "nothing");
    int st;
    char *out =
        H2C(&s, &st, "flood --kind %s --path '/flood?log=%s' %s", kind, s.seen, extra ? extra : "");
    expect_ok(kind, out, st);
    free(out);
    expect_served(&s, kind);
    tf_px_stop(&s.px);
}

Test(h2, settings_flood)
{
    flood("settings", NULL);
}

/* The attacker who never reads: the proxy's acknowledgements pile up. */
Test(h2, settings_flood_without_reading)
{
    flood("settings", "--no-read");
}

Test(h2, ping_flood)
{
    flood("ping", NULL);
}

Test(h2, ping_flood_without_reading)
{
    flood("ping", "--no-read");
}

Test(h2, empty_data_flood)
{
    flood("data", NULL);
}

Test(h2, priority_flood)
{
    flood("priority", NULL);
}

Test(h2, window_update_flood)
{
    flood("window-update", NULL);
}

Test(h2, zero_window_stall_ends_by_the_idle_timeout_with_bounded_memory)
{
    site_t s;
    /* Every other timeout far beyond the client's wait: only timeouts.idle
     * can end the stall in time. */
    h2_opts_t o = {.idle = "2s", .other = "5m"};
    site_start(&s, &o);
    expect_served(&s, "nothing");
    long before = peak_kb(&s);
    int st;
    /* 64 MB asked for, none of it let through by the client's window. */
    char *out =
        h2c_as(&s, &st, "--timeout 90", "zero-window --path '/big?bytes=67108864' --wait 90");
    expect_ok("zero window", out, st);
    cr_expect(has(out, "\"data_bytes\": 0"), "%s", out);
    free(out);
    expect_bounded(&s, before, 16, "a zero-window stall");
    expect_served(&s, "a zero-window stall");
    tf_px_stop(&s.px);
}

/* A finished answer stuck behind a closed window is reset after
 * timeouts.idle also while another stream's exchange runs beside it (its
 * memory would otherwise be held for as long as that stream lives). */
Test(h2, a_stuck_answer_is_reset_while_another_stream_runs)
{
    site_t s;
    h2_opts_t o = {.idle = "2s", .other = "5m"};
    site_start(&s, &o);
    int st;
    char *out =
        h2c_as(&s, &st, "--timeout 60", "zero-window --path '/' --beside '/upload' --wait 30");
    expect_ok("a stuck answer beside an upload", out, st);
    cr_expect(has(out, "\"data_bytes\": 0"), "%s", out);
    cr_expect(has(out, "\"reset\": "), "%s", out);
    free(out);
    expect_served(&s, "a stuck answer beside an upload");
    tf_px_stop(&s.px);
}

/* A slow stream never stalls the others: stream 1's 64 MB response waits on
 * a window the client never opens, stream 3's 5 MB flows beside it. */
Test(h2, a_stalled_stream_does_not_stall_the_others)
{
    site_t s;
    site_start(&s, NULL);
    expect_served(&s, "nothing");
    long before = peak_kb(&s);
    int st;
    char *out = H2C(&s, &st,
                    "starve --stalled-path '/big?bytes=67108864' "
                    "--path '/big?bytes=5000000'");
    expect_ok("a stalled stream beside a flowing one", out, st);
    cr_expect(has(out, "\"stream3_bytes\": 5000000"), "%s", out);
    free(out);
    expect_bounded(&s, before, 16, "a stalled stream beside a flowing one");
    tf_px_stop(&s.px);
}

Test(h2, streams_over_the_limit_are_refused_and_never_reach_a_backend)
{
    site_t s;
    h2_opts_t o = {.max_streams = 5};
    site_start(&s, &o);
    int st;
    char *out =
        H2C(&s, &st, "max-streams --open 12 --expect-max 5 --path '/slow?ms=1500&log=%s'", s.seen);
    expect_ok("12 streams against 5", out, st);
    free(out);
    /* Whatever was in flight has been answered or cut by now (the client
     * waited for every stream); the backend saw no more than 5. */
    cr_expect_leq(seen_count(&s, "/slow"), 5, "refused streams reached the backend");
    /* Within the limit, a client is served (5 at once, twice). */
    out = H2C(&s, &st, "get --count 5 --path /a --show 0");
    expect_ok("5 streams against 5", out, st);
    free(out);
    expect_served(&s, "too many streams");
    tf_px_stop(&s.px);
}

Test(h2, a_header_block_over_max_header_bytes_is_431_and_the_connection_serves_on)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    char *out = H2C(&s, &st, "big-header --bytes 12000 --path '/big-head?log=%s'", s.seen);
    expect_ok("12000 bytes of header against 8192", out, st);
    cr_expect(has(out, "\"status\": 431"), "not 431 (a stream reset is allowed, 431 better): %s",
              out);
    free(out);
    cr_expect_eq(seen_count(&s, "/big-head"), 0);
    expect_served(&s, "a large header block");
    tf_px_stop(&s.px);
}

/* limits.max_header_fields counts the fields of the request handed on (Host
 * and the regular ones), as over HTTP/1.1: at its largest (1,000), 999
 * regular fields and Host pass, one more is 431. The four pseudo-header
 * fields do not count against it. */
Test(h2, max_header_fields_counts_the_request_handed_on)
{
    site_t s;
    h2_opts_t o = {.max_fields = 1000};
    site_start(&s, &o);
    int st;
    char *out = H2C(&s, &st, "get --path /many --fields 999 --show 0");
    expect_ok("999 fields and Host against 1000", out, st);
    free(out);
    out = H2C(&s, &st, "get --path /many --fields 1000 --expect-status 431 --show 0");
    expect_ok("1000 fields and Host against 1000", out, st);
    free(out);
    expect_served(&s, "many fields");
    tf_px_stop(&s.px);
}

/* Browsers send a cookie field per cookie (RFC 9113 §8.2.3): they are
 * joined into one line and count as one field, as over HTTP/1.1. At the
 * default 100: 90 fields, 30 crumbs and Host pass. */
Test(h2, cookie_crumbs_count_as_the_one_field_they_become)
{
    site_t s;
    site_start(&s, NULL);
    int st;
    char *out = H2C(&s, &st, "get --path /crumbs --fields 90 --crumbs 30 --show 0");
    expect_ok("90 fields, 30 crumbs and Host against 100", out, st);
    free(out);
    out = H2C(&s, &st, "get --path /crumbs --fields 100 --crumbs 30 --expect-status 431 --show 0");
    expect_ok("100 fields, 30 crumbs and Host against 100", out, st);
    free(out);
    expect_served(&s, "cookie crumbs");
    tf_px_stop(&s.px);
}

Test(h2, malformed_requests_are_stream_errors_only)
{
    site_t s;
    site_start(&s, NULL);
    static const char *kinds[] = {"connection",          "keep-alive", "upgrade",
                                  "transfer-encoding",   "te",         "content-length",
                                  "content-length-over", "uppercase"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        int st;
        char *out = H2C(&s, &st, "malformed --kind %s --path '/bad-%s?log=%s' --good-path /good",
                        kinds[i], kinds[i], s.seen);
        expect_ok(kinds[i], out, st);
        free(out);
    }
    cr_expect_eq(seen_count(&s, "/bad-"), 0, "a malformed request reached a backend");
    /* te: trailers is the one te allowed. */
    int st;
    char *out = H2C(&s, &st, "get --header 'te: trailers'");
    expect_ok("te: trailers", out, st);
    free(out);
    expect_served(&s, "malformed requests");
    tf_px_stop(&s.px);
}
