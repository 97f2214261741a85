/* Mode http end to end (SPEC §7): curl, raw requests over TLS (openssl
 * s_client), a WebSocket client, and echo_backend.py, which answers with
 * what it received so that forwarded heads and bodies are asserted exactly.
 * curl speaks HTTP/1.1 here on purpose (--http1.1); HTTP/2 is test_h2.c's. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tf_px_t px;

static void setup(void)
{
    tf_px_opts_t o = {.http = true};
    tf_px_start(&px, &o);
}

/* A test about one timeout: the suite's proxy again with that one short
 * (the others stay generous for a busy machine). */
static void restart_with(tf_px_opts_t o)
{
    tf_px_stop(&px);
    o.http = true;
    tf_px_start(&px, &o);
}

static void teardown(void)
{
    tf_px_stop(&px);
}

TestSuite(httpmode, .init = setup, .fini = teardown, .timeout = 120);

/* curl to https://NAME:PORT with NAME resolved to loopback; extra: more
 * curl arguments. Output: body (and what -w adds). */
#define CURL(st, name, extra, ...)                                                                 \
    tf_px_sh(st, "curl --http1.1 -sS --max-time 20 --cacert '%s' --resolve '%s:%u:127.0.0.1' " extra, px.ca, \
             name, px.port, __VA_ARGS__)

/* Sends the bytes printf(1) makes of `req` over TLS with SNI `sni` and
 * prints everything the proxy answers until it closes. */
static char *raw(const char *sni, const char *req)
{
    int st;
    return tf_px_sh(&st,
                    "printf '%s' | timeout 20 openssl s_client -quiet -ign_eof -connect "
                    "127.0.0.1:%u -servername %s -CAfile '%s' 2>/dev/null",
                    req, px.port, sni, px.ca);
}

/* A field of the JSON the echo backend answered, printed by Python. */
static char *json_field(const char *json, const char *expr)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/resp.json", px.tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(json, f);
    fclose(f);
    int st;
    char *out = tf_px_sh(&st,
                         "python3 -c 'import json,sys; d=[json.loads(l) for l in open(sys.argv[1]) "
                         "if l.startswith(\"{\")]; print(%s)' '%s'",
                         expr, path);
    cr_assert_eq(st, 0, "%s\non: %s", out, json);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '\n')
        out[--n] = '\0';
    return out;
}

Test(httpmode, forwarded_headers_replace_the_clients_and_hop_by_hop_ones_go)
{
    int st;
    char *out = CURL(&st, "portal.acme.example",
                     "-H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-Proto: http' "
                     "-H 'Connection: keep-alive, X-Secret' -H 'X-Secret: s' -H 'Keep-Alive: 5' "
                     "-H 'TE: trailers' -H 'Proxy-Connection: keep-alive' -H 'X-Kept: yes' "
                     "https://portal.acme.example:%u/path?q=1",
                     px.port);
    cr_assert_eq(st, 0, "%s", out);
    char *h = json_field(out, "[(k.lower(),v) for k,v in d[0][\"headers\"]]");
    char want[256];
    snprintf(want, sizeof want, "('host', 'portal.acme.example:%u')", px.port);
    cr_expect(strstr(h, want) != NULL, "%s", h);
    cr_expect(strstr(h, "('x-forwarded-for', '127.0.0.1')") != NULL, "%s", h);
    cr_expect(strstr(h, "('x-forwarded-proto', 'https')") != NULL, "%s", h);
    snprintf(want, sizeof want, "('x-forwarded-port', '%u')", px.port);
    cr_expect(strstr(h, want) != NULL, "%s", h);
    snprintf(want, sizeof want, "('x-forwarded-host', 'portal.acme.example:%u')", px.port);
    cr_expect(strstr(h, want) != NULL, "%s", h);
    cr_expect(strstr(h, "('x-kept', 'yes')") != NULL, "%s", h);
    cr_expect_eq(tf_px_count(h, "x-forwarded-for"), 1, "%s", h);
    cr_expect_eq(tf_px_count(h, "x-forwarded-proto"), 1, "%s", h);
    cr_expect(strstr(h, "6.6.6.6") == NULL, "%s", h);
    cr_expect(strstr(h, "x-secret") == NULL, "%s", h);
    cr_expect(strstr(h, "keep-alive") == NULL, "%s", h);
    cr_expect(strstr(h, "'te'") == NULL, "%s", h);
    cr_expect(strstr(h, "proxy-connection") == NULL, "%s", h);
    char *t = json_field(out, "d[0][\"target\"]");
    cr_expect_str_eq(t, "/path?q=1");
    free(t);
    free(h);
    free(out);
}

Test(httpmode, keep_alive_on_both_sides_reuses_the_backend_connection)
{
    int st;
    /* Two requests on one client connection, then a second client. */
    char *a =
        CURL(&st, "portal.acme.example",
             "https://portal.acme.example:%u/a https://portal.acme.example:%u/b", px.port, px.port);
    cr_assert_eq(st, 0, "%s", a);
    char *b = CURL(&st, "portal.acme.example", "https://portal.acme.example:%u/c", px.port);
    cr_assert_eq(st, 0, "%s", b);
    char *conns = json_field(a, "[r[\"conn\"] for r in d]");
    char *reqs = json_field(a, "[r[\"req_on_conn\"] for r in d]");
    cr_expect_str_eq(reqs, "[1, 2]", "one backend connection carries both: %s", a);
    char *c2 = json_field(b, "d[0][\"req_on_conn\"]");
    cr_expect_str_eq(c2, "3", "the next client reuses the pooled connection: %s", b);
    char *log = tf_px_log(&px);
    cr_expect_eq(tf_px_count(log, " connected\n"), 1, "one backend connect for three requests:\n%s",
                 log);
    free(log);
    free(conns);
    free(reqs);
    free(c2);
    free(a);
    free(b);
}

Test(httpmode, host_routing_421_and_404)
{
    int st;
    /* Host differs from SNI but the served certificate covers it. */
    char *out = CURL(&st, "portal.acme.example",
                     "-H 'Host: chat.acme.example' -o /dev/null -w '%%{http_code}' "
                     "https://portal.acme.example:%u/",
                     px.port);
    cr_expect_str_eq(out, "200");
    free(out);
    /* The wildcard certificate covers a sibling name. */
    out = CURL(&st, "a.tenants.example",
               "-H 'Host: b.tenants.example' -w ' %%{http_code}' https://a.tenants.example:%u/",
               px.port);
    cr_expect(strstr(out, "\"target\": \"/\"") != NULL && strstr(out, " 200") != NULL, "%s", out);
    free(out);
    /* Another tenant's name on this certificate's connection: misdirected. */
    out = CURL(&st, "portal.acme.example",
               "-H 'Host: portal.globex.example' -D - https://portal.acme.example:%u/", px.port);
    cr_expect(strstr(out, "HTTP/1.1 421 Misdirected Request") != NULL, "%s", out);
    cr_expect(strstr(out, "Connection: close") != NULL, "%s", out);
    free(out);
    /* Without SNI, a Host no tenant lists: 404. */
    out = tf_px_sh(&st,
                   "curl --http1.1 -sS -k --max-time 20 -H 'Host: nobody.example' -o /dev/null -w "
                   "'%%{http_code}' https://127.0.0.1:%u/",
                   px.port);
    cr_expect_str_eq(out, "404");
    free(out);
    /* A mode tcp tenant's name is not served as HTTP on another connection. */
    out = tf_px_sh(&st,
                   "curl --http1.1 -sS -k --max-time 20 -H 'Host: portal.globex.example' -o /dev/null -w "
                   "'%%{http_code}' https://127.0.0.1:%u/",
                   px.port);
    cr_expect_str_eq(out, "421");
    free(out);
}

/* The 421 check covers a Host exactly as SNI selection would (SPEC §4.4):
 * an underscore is no host-name character, so "*.tenants.example" covers
 * "a-b.tenants.example" but not "a_b.tenants.example". */
Test(httpmode, host_coverage_follows_the_certificate_stores_rules)
{
    int st;
    char *out = CURL(&st, "a.tenants.example",
                     "-H 'Host: a-b.tenants.example' -o /dev/null -w '%%{http_code}' "
                     "https://a.tenants.example:%u/",
                     px.port);
    cr_expect_str_eq(out, "200");
    free(out);
    out = CURL(&st, "a.tenants.example",
               "-H 'Host: a_b.tenants.example' -o /dev/null -w '%%{http_code}' "
               "https://a.tenants.example:%u/",
               px.port);
    cr_expect_str_eq(out, "421");
    free(out);
}

Test(httpmode, mode_tcp_tenants_are_still_piped)
{
    int st;
    char *out = tf_px_sh(&st,
                         "printf 'hello tcp\\n' | timeout 10 openssl s_client -quiet -connect "
                         "127.0.0.1:%u -servername portal.globex.example -CAfile '%s' 2>/dev/null",
                         px.port, px.ca);
    cr_expect(strstr(out, "hello tcp") != NULL, "%s", out);
    free(out);
}

static const char *const bad_requests[] = {
    /* Content-Length with Transfer-Encoding, then a smuggled request. */
    "POST / HTTP/1.1\\r\\nHost: portal.acme.example\\r\\nContent-Length: 5\\r\\n"
    "Transfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET /smuggled HTTP/1.1\\r\\n"
    "Host: portal.acme.example\\r\\n\\r\\n",
    /* duplicate Content-Length */
    "POST / HTTP/1.1\\r\\nHost: portal.acme.example\\r\\nContent-Length: 3\\r\\n"
    "Content-Length: 3\\r\\n\\r\\nabcGET /smuggled HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
    /* Transfer-Encoding not ending in chunked */
    "POST / HTTP/1.1\\r\\nHost: portal.acme.example\\r\\nTransfer-Encoding: chunked, gzip\\r\\n"
    "\\r\\n",
    /* obsolete line folding */
    "GET / HTTP/1.1\\r\\nHost: portal.acme.example\\r\\nX-A: 1\\r\\n  folded\\r\\n\\r\\n",
    /* whitespace before the colon */
    "GET / HTTP/1.1\\r\\nHost: portal.acme.example\\r\\nContent-Length : 0\\r\\n\\r\\n",
    /* bare LF */
    "GET / HTTP/1.1\\nHost: portal.acme.example\\n\\n",
    /* a control byte in a header value */
    "GET / HTTP/1.1\\r\\nHost: portal.acme.example\\r\\nX-A: a\\001b\\r\\n\\r\\n",
    /* CONNECT: not a forward proxy */
    "CONNECT portal.acme.example:443 HTTP/1.1\\r\\nHost: portal.acme.example:443\\r\\n\\r\\n",
    /* an invalid chunk size */
    "POST / HTTP/1.1\\r\\nHost: portal.acme.example\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n"
    "zz\\r\\nabc\\r\\n0\\r\\n\\r\\n",
};

Test(httpmode, ambiguous_framing_is_400_and_the_connection_closes)
{
    for (size_t i = 0; i < sizeof bad_requests / sizeof bad_requests[0]; i++) {
        char *out = raw("portal.acme.example", bad_requests[i]);
        cr_expect(strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "request %zu: %s", i, out);
        cr_expect_eq(tf_px_count(out, "HTTP/1."), 1, "request %zu: one answer only: %s", i, out);
        cr_expect(strstr(out, "Connection: close") != NULL, "request %zu: %s", i, out);
        free(out);
    }
    /* Each connection's summary is its last line, and may be written after
     * the client saw the end of the answer: once all are there, nothing of
     * theirs can follow. */
    unsigned n = (unsigned)(sizeof bad_requests / sizeof bad_requests[0]);
    cr_expect(tf_px_wait_count(px.log, "closed: ", n, TF_PX_WAIT_MS), "every connection closed");
    char *log = tf_px_log(&px);
    cr_expect(strstr(log, "/smuggled") == NULL, "nothing smuggled reached a backend:\n%s", log);
    free(log);
}

Test(httpmode, oversized_heads_are_431)
{
    int st;
    char *out = tf_px_sh(&st,
                         "(printf 'GET / HTTP/1.1\\r\\nHost: portal.acme.example\\r\\nX-Big: '; "
                         "head -c 9000 /dev/zero | tr '\\0' a; printf '\\r\\n\\r\\n') | "
                         "timeout 20 openssl s_client -quiet -ign_eof -connect 127.0.0.1:%u "
                         "-servername portal.acme.example -CAfile '%s' 2>/dev/null",
                         px.port, px.ca);
    cr_expect(strncmp(out, "HTTP/1.1 431 ", 13) == 0, "%s", out);
    free(out);
    cr_expect(tf_px_wait_log(&px, "over 8192 bytes (limits.max_header_bytes)"));
}

/* A request of `fields` header lines (Host, Connection: close and X-N: v)
 * over TLS: what the proxy answers. */
static char *request_of_fields(unsigned fields)
{
    int st;
    return tf_px_sh(&st,
                    "(printf 'GET / HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n"
                    "Connection: close\\r\\n'; seq 3 %u | awk '{printf \"X-%%d: v\\r\\n\", $1}'; "
                    "printf '\\r\\n') | "
                    "timeout 20 openssl s_client -quiet -ign_eof -connect 127.0.0.1:%u "
                    "-servername portal.acme.example -CAfile '%s' 2>/dev/null",
                    fields, px.port, px.ca);
}

/* limits.max_header_fields (100 by default): more header lines are a size
 * limit, 431, and the log says which limit to raise; 10,000 lines (over
 * 110 KB) stop at the count. */
Test(httpmode, too_many_header_lines_are_431_and_the_reason_is_logged)
{
    char *out = request_of_fields(100);
    cr_expect(strncmp(out, "HTTP/1.1 200 ", 13) == 0, "%s", out);
    free(out);
    out = request_of_fields(101);
    cr_expect(strncmp(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0, "%s", out);
    free(out);
    cr_expect(tf_px_wait_log(&px, "more than 100 header fields (limits.max_header_fields)"));
    out = request_of_fields(10000);
    cr_expect(strncmp(out, "HTTP/1.1 431 ", 13) == 0, "%s", out);
    free(out);
    char *log = tf_px_log(&px);
    cr_expect_eq(tf_px_count(log, "(limits.max_header_fields)"), 2, "%s", log);
    free(log);
}

Test(httpmode, a_slow_head_gets_408)
{
    restart_with((tf_px_opts_t){.request_header = "1s"});
    int st;
    /* The head never ends: -ign_eof keeps the connection open after the
     * bytes until the proxy answers and closes (no guess at how long). */
    char *out = tf_px_sh(&st,
                         "printf 'GET / HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n' | "
                         "timeout 20 openssl s_client -quiet -ign_eof -connect 127.0.0.1:%u "
                         "-servername portal.acme.example -CAfile '%s' 2>/dev/null",
                         px.port, px.ca);
    cr_expect(strncmp(out, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0, "%s", out);
    free(out);
}

Test(httpmode, pipelined_requests_are_answered_in_order)
{
    char *out =
        raw("portal.acme.example",
            "GET /1 HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n\\r\\n"
            "HEAD /headers-only-head HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n\\r\\n"
            "GET /status/204 HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n\\r\\n"
            "GET /status/304 HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n\\r\\n"
            "POST /5 HTTP/1.1\\r\\nHost: portal.acme.example\\r\\nContent-Length: 3\\r\\n"
            "\\r\\nabc"
            "GET /6 HTTP/1.1\\r\\nHost: portal.acme.example\\r\\nConnection: close\\r\\n\\r\\n");
    const char *p1 = strstr(out, "\"target\": \"/1\"");
    const char *p2 = strstr(out, "X-Head: 1");
    const char *p3 = strstr(out, "HTTP/1.1 204");
    const char *p4 = strstr(out, "HTTP/1.1 304");
    const char *p5 = strstr(out, "\"target\": \"/5\"");
    const char *p6 = strstr(out, "\"target\": \"/6\"");
    cr_assert(p1 && p2 && p3 && p4 && p5 && p6, "%s", out);
    cr_expect(p1 < p2 && p2 < p3 && p3 < p4 && p4 < p5 && p5 < p6, "in order: %s", out);
    /* HEAD's Content-Length: 1000 announced no body bytes. */
    cr_expect(strstr(out, "hhhh") == NULL, "%s", out);
    cr_expect(strstr(out, "\"body_len\": 3") != NULL, "%s", out);
    cr_expect_eq(tf_px_count(out, "HTTP/1.1 "), 6, "%s", out);
    free(out);
}

Test(httpmode, response_heads_in_pieces_and_interim_responses_in_one_read)
{
    char *out = raw("portal.acme.example",
                    "GET /split-head HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n\\r\\n"
                    "GET /interim HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n\\r\\n"
                    "GET /split-head HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n"
                    "Connection: close\\r\\n\\r\\n");
    const char *p1 = strstr(out, "\"target\": \"/split-head\"");
    const char *p2 = strstr(out, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                                 "HTTP/1.1 200 OK\r\n");
    const char *p3 = strstr(out, "\"target\": \"/interim\"");
    const char *p4 = p3 != NULL ? strstr(p3, "\"target\": \"/split-head\"") : NULL;
    cr_assert(p1 && p2 && p3 && p4, "%s", out);
    cr_expect(p1 < p2 && p2 < p3, "in order: %s", out);
    cr_expect_eq(tf_px_count(out, "HTTP/1.1 200 OK\r\nX-Backend: "), 3, "%s", out);
    cr_expect_eq(tf_px_count(out, "Content-Type: application/json\r\nContent-Length: "), 3, "%s",
                 out);
    free(out);
}

Test(httpmode, bodies_stream_both_ways_intact)
{
    int st;
    char *out = tf_px_sh(&st,
                         "head -c 5000000 /dev/urandom > '%s/up.bin' && sha256sum '%s/up.bin' | "
                         "cut -d' ' -f1",
                         px.tmp, px.tmp);
    cr_assert_eq(st, 0);
    out[64] = '\0';
    char sum[65];
    memcpy(sum, out, 65);
    free(out);
    /* Content-Length upload, chunked upload with 100-continue. */
    char up[1300];
    snprintf(up, sizeof up, "%s/up.bin", px.tmp);
    out = CURL(&st, "portal.acme.example", "--data-binary @'%s' https://portal.acme.example:%u/up",
               up, px.port);
    char *got = json_field(out, "d[0][\"body_sha256\"], d[0][\"body_len\"]");
    char want[128];
    snprintf(want, sizeof want, "%s 5000000", sum);
    cr_expect_str_eq(got, want);
    free(got);
    free(out);
    out = CURL(&st, "portal.acme.example",
               "-H 'Transfer-Encoding: chunked' -H 'Expect: 100-continue' --data-binary @'%s' "
               "https://portal.acme.example:%u/up",
               up, px.port);
    got = json_field(out, "d[0][\"body_sha256\"], d[0][\"body_len\"]");
    cr_expect_str_eq(got, want);
    free(got);
    free(out);
    /* A 20 MB download with Content-Length, checked against the pattern. */
    out = CURL(&st, "portal.acme.example",
               "https://portal.acme.example:%u/big?bytes=20000000 | python3 -c 'import sys; "
               "d=sys.stdin.buffer.read(); print(len(d), all(d[i]==i%%251 for i in "
               "range(0,len(d),997)))'",
               px.port);
    cr_expect(strstr(out, "20000000 True") != NULL, "%s", out);
    free(out);
    /* Chunked and close-delimited responses. */
    out = CURL(&st, "portal.acme.example", "--raw -D - https://portal.acme.example:%u/chunked",
               px.port);
    cr_expect(strstr(out, "Transfer-Encoding: chunked") != NULL, "%s", out);
    cr_expect(strstr(out, "X-Trailer: done") != NULL, "%s", out);
    free(out);
    out = CURL(&st, "portal.acme.example", "-D - https://portal.acme.example:%u/close-delimited",
               px.port);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "\"target\": \"/close-delimited\"") != NULL, "%s", out);
    cr_expect(strstr(out, "Connection: close") != NULL, "%s", out);
    free(out);
}

Test(httpmode, websocket_upgrades_to_a_tunnel)
{
    int st;
    char *out = tf_px_sh(&st,
                         "timeout 30 python3 '%s/tests/proxy/ws_client.py' 127.0.0.1 %u "
                         "portal.acme.example '%s' /ws 20",
                         getenv("TF_SOURCE_DIR"), px.port, px.ca);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "ok 20") != NULL, "%s", out);
    free(out);
}

Test(httpmode, backend_errors_are_502_and_504)
{
    restart_with((tf_px_opts_t){.response = "1s"});
    int st;
    char *out = CURL(&st, "down.tenants.example", "-D - https://down.tenants.example:%u/", px.port);
    cr_expect(strstr(out, "HTTP/1.1 502 Bad Gateway") != NULL, "%s", out);
    free(out);
    /* timeouts.response is 1s here. */
    out = CURL(&st, "portal.acme.example",
               "-o /dev/null -w '%%{http_code}' "
               "https://portal.acme.example:%u/slow?ms=4000",
               px.port);
    cr_expect_str_eq(out, "504");
    free(out);
}

Test(httpmode, a_pooled_connection_the_backend_closed_is_retried)
{
    int st;
    /* Each /close-after leaves a pooled connection the backend then closes;
     * the GET right after may meet it and must be retried, never 502. */
    char *out = tf_px_sh(&st,
                         "for i in $(seq 20); do curl --http1.1 -sS --max-time 20 --cacert '%s' "
                         "--resolve 'portal.acme.example:%u:127.0.0.1' -o /dev/null -w "
                         "'%%{http_code} ' https://portal.acme.example:%u/close-after "
                         "https://portal.acme.example:%u/after; done",
                         px.ca, px.port, px.port, px.port);
    cr_expect_eq(tf_px_count(out, "200 "), 40, "%s", out);
    free(out);
}

Test(httpmode, http10_without_host_is_routed_by_sni)
{
    char *out = raw("portal.acme.example", "GET /ten HTTP/1.0\\r\\n\\r\\n");
    cr_expect(strstr(out, "\"target\": \"/ten\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"version\": \"HTTP/1.0\"") != NULL, "%s", out);
    free(out);
}

static bool log_shows(const char *needle)
{
    return tf_px_wait_log(&px, needle);
}

Test(httpmode, health_checks_skip_failing_backends_and_503_when_none_is_healthy)
{
    char want[128];
    snprintf(want, sizeof want, "backend 127.0.0.1:%u failed its health check", px.dead_port);
    cr_assert(log_shows(want), "the dead backend is found out");
    cr_assert(log_shows("tenant 'sick': backend"), "the sick backend is found out");
    int st;
    char *out = tf_px_sh(&st,
                         "for i in $(seq 6); do curl --http1.1 -sS --max-time 20 --cacert '%s' "
                         "--resolve 'checked.tenants.example:%u:127.0.0.1' -o /dev/null -w "
                         "'%%{http_code} ' https://checked.tenants.example:%u/; done",
                         px.ca, px.port, px.port);
    cr_expect_str_eq(out, "200 200 200 200 200 200 ", "only the healthy backend serves");
    free(out);
    char *log = tf_px_log(&px);
    snprintf(want, sizeof want, "backend 127.0.0.1:%u: connect failed", px.dead_port);
    cr_expect(strstr(log, want) == NULL || strstr(log, "tenant 'checked'") == NULL,
              "no request tried the unhealthy backend");
    free(log);
    out = CURL(&st, "sick.tenants.example", "-D - https://sick.tenants.example:%u/", px.port);
    cr_expect(strstr(out, "HTTP/1.1 503 Service Unavailable") != NULL, "%s", out);
    free(out);
}

Test(httpmode, access_log_lines_port_80_and_sigusr1)
{
    int st;
    char *out = CURL(&st, "portal.acme.example",
                     "-o /dev/null https://portal.acme.example:%u/logged?x=1", px.port);
    free(out);
    char path[1300];
    snprintf(path, sizeof path, "%s/access.log", px.tmp);
    /* One JSON object per request, written once the exchange is done: the
     * last bytes of the response may reach curl first. */
    cr_expect(tf_px_wait_count(path, "\"path\":\"/logged?x=1\"", 1, TF_PX_WAIT_MS));
    out = tf_px_sh(&st,
                   "python3 -c 'import json,sys; [print(d[\"method\"], d[\"path\"], d[\"status\"], "
                   "d[\"tenant\"], d[\"sni\"], d[\"client\"], d[\"backend\"] is not None) for d in "
                   "map(json.loads, open(sys.argv[1]))]' '%s'",
                   path);
    cr_expect(strstr(out, "GET /logged?x=1 200 acme portal.acme.example 127.0.0.1 True") != NULL,
              "%s", out);
    free(out);
    /* Port 80: a redirect, and an ACME challenge served from the webroot. */
    out = tf_px_sh(&st,
                   "curl -sS --max-time 10 -o /dev/null -w '%%{http_code} %%{redirect_url}' -H "
                   "'Host: portal.acme.example:80' 'http://127.0.0.1:%u/a/b?c=d'",
                   px.http_port);
    cr_expect_str_eq(out, "301 https://portal.acme.example/a/b?c=d");
    free(out);
    out =
        tf_px_sh(&st,
                 "mkdir -p '%s/acme/.well-known/acme-challenge' && printf tok.thumb > "
                 "'%s/acme/.well-known/acme-challenge/tok_1' && curl -sS --max-time 10 -H "
                 "'Host: portal.acme.example' http://127.0.0.1:%u/.well-known/acme-challenge/tok_1",
                 px.tmp, px.tmp, px.http_port);
    cr_expect_str_eq(out, "tok.thumb");
    free(out);
    /* logrotate: move the file, SIGUSR1, the next line goes to a new file. */
    out = tf_px_sh(&st, "mv '%s' '%s.1' && kill -USR1 %d", path, path, (int)px.proxy_pid);
    free(out);
    cr_assert(tf_px_wait_log(&px, "access log reopened"));
    out = CURL(&st, "portal.acme.example", "-o /dev/null https://portal.acme.example:%u/after",
               px.port);
    free(out);
    cr_expect(tf_px_wait_count(path, "\"/after\"", 1, TF_PX_WAIT_MS));
    out = tf_px_sh(&st, "grep -c '\"/after\"' '%s'; grep -c '\"/logged' '%s.1'", path, path);
    cr_expect_str_eq(out, "1\n1\n");
    free(out);
}

/* More clients at once than the pool's floor of 64: their backend
 * connections all go back to the pool between requests and serve the next
 * round; a pool that kept only 64 would close the rest and connect again
 * for every round (the port exhaustion Traefik users met). */
Test(httpmode, the_pool_keeps_a_backend_connection_for_every_client)
{
    int st;
    char *out = tf_px_sh(&st,
                         "timeout 90 python3 '%s/tests/proxy/client.py' rounds %u "
                         "portal.acme.example '%s' 100 3",
                         getenv("TF_SOURCE_DIR"), px.port, px.ca);
    int ok = -1, distinct = -1;
    cr_assert_eq(sscanf(out, "ok=%d distinct=%d", &ok, &distinct), 2, "%s", out);
    cr_expect_eq(ok, 300, "%s", out);
    cr_expect_leq(distinct, 100, "no backend connection beyond one per client: %s", out);
    cr_expect_geq(distinct, 64, "the requests of a round were all in flight at once: %s", out);
    free(out);
}

/* A client that reads nothing of a huge response: the proxy stops reading
 * the backend instead of buffering (SPEC §7: never buffered whole). */
Test(httpmode, a_client_that_does_not_read_holds_back_the_backend)
{
    int st;
    char *out = tf_px_sh(&st,
                         "timeout 60 python3 '%s/tests/proxy/client.py' stall-http %u "
                         "portal.acme.example '%s' %d",
                         getenv("TF_SOURCE_DIR"), px.port, px.ca, (int)px.proxy_pid);
    long rss = -1, received = -1;
    cr_assert_eq(sscanf(out, "rss_kib=%ld received=%ld", &rss, &received), 2, "%s", out);
    cr_expect_lt(rss, 48 * 1024, "%s", out);
    cr_expect_gt(received, 0, "%s", out);
    free(out);
}

/* A backend the kernel refuses at once (connect(2) fails without waiting:
 * a broadcast address) is marked down like a refused one, and the next
 * backend serves. */
Test(httpmode, a_connect_that_fails_at_once_tries_the_next_backend)
{
    int st;
    char *out =
        CURL(&st, "refused.tenants.example",
             "-o /dev/null -w '%%{http_code}' https://refused.tenants.example:%u/", px.port);
    cr_expect_str_eq(out, "200");
    free(out);
    char *log = tf_px_log(&px);
    cr_expect(strstr(log, "backend 255.255.255.255:80: connect failed") != NULL, "%s", log);
    free(log);
}

/* The proxy's open descriptors, counted in /proc. */
static unsigned proxy_fds(void)
{
    int st;
    char *out = tf_px_sh(&st, "ls /proc/%d/fd | wc -l", (int)px.proxy_pid);
    unsigned n = (unsigned)strtoul(out, NULL, 10);
    free(out);
    return n;
}

/* The proxy's descriptors when nothing transient is open: the least of a
 * few samples, as the certificate directories' periodic check opens one on
 * the thread pool for a moment (a machine under load once caught it). */
static unsigned quiet_fds(void)
{
    unsigned least = proxy_fds();
    for (int i = 0; i < 3; i++) {
        unsigned n = proxy_fds();
        if (n < least)
            least = n;
    }
    return least;
}

/* Whether the proxy's descriptors come back to `want` (or fewer) within
 * TF_PX_WAIT_MS: a transient one closes, a leaked one stays. */
static bool fds_back_to(unsigned want)
{
    long long deadline = tf_px_now_ms() + TF_PX_WAIT_MS;
    do {
        if (proxy_fds() <= want)
            return true;
    } while (tf_px_now_ms() < deadline);
    return false;
}

/* Waits until no client connection is open: the gauge drops when a
 * connection's last handle has closed, so its descriptors are gone too (its
 * summary line is logged when it starts closing, a loop turn earlier). */
static bool wait_no_connection(void)
{
    long long deadline = tf_px_now_ms() + TF_PX_WAIT_MS;
    while (tf_px_now_ms() < deadline) {
        int st;
        char *m = tf_px_sh(&st, "curl -s -m 10 http://127.0.0.1:%u/metrics", px.admin_port);
        bool none = strstr(m, "\ntlsfront_connections_active 0\n") != NULL;
        free(m);
        if (none)
            return true;
    }
    return false;
}

/* A retry that finds a pooled connection to the next backend takes it and
 * lets the failed attempt's socket go. The first request leaves a pooled
 * connection to the echo backend (round robin starts there); the second
 * picks the unreachable one, fails at once and is retried on the pool.
 * Each client connection is waited for until the proxy freed it, so the
 * descriptors counted are the listeners, the log and the pool. */
Test(httpmode, a_retry_on_a_pooled_connection_drops_the_failed_attempt)
{
    int st;
    unsigned before = 0;
    /* The summary line of a closed connection (an exchange's line ends in
     * cut=, not tls=). */
    char closed[128];
    snprintf(closed, sizeof closed, "tenant=pooled backend=127.0.0.1:%u tls=", px.echo_port);
    for (unsigned i = 1; i <= 2; i++) {
        char *out =
            CURL(&st, "pooled.tenants.example",
                 "-o /dev/null -w '%%{http_code}' https://pooled.tenants.example:%u/", px.port);
        cr_assert_str_eq(out, "200");
        free(out);
        cr_assert(tf_px_wait_count(px.log, closed, i, TF_PX_WAIT_MS), "connection %u not closed",
                  i);
        cr_assert(wait_no_connection(), "connection %u still open", i);
        if (i == 1)
            before = quiet_fds();
    }
    char *log = tf_px_log(&px);
    cr_assert(strstr(log, "backend 255.255.255.255:80: connect failed") != NULL, "%s", log);
    free(log);
    cr_expect_gt(before, 0);
    cr_expect(fds_back_to(before), "a descriptor leaked with the failed attempt");
}

/* The HTTP layer feeds the metrics: handshakes, requests by tenant and
 * class, durations; the exposition passes promtool. */
Test(httpmode, requests_are_counted_in_the_metrics)
{
    int st;
    char *out = CURL(&st, "portal.acme.example",
                     "-o /dev/null https://portal.acme.example:%u/a -o /dev/null "
                     "https://portal.acme.example:%u/status/404",
                     px.port, px.port);
    free(out);
    char path[1300];
    snprintf(path, sizeof path, "%s/metrics.txt", px.tmp);
    out = tf_px_sh(&st,
                   "curl -sS --max-time 10 http://127.0.0.1:%u/metrics > '%s' && "
                   "grep -E '^tlsfront_(requests_total|handshakes_total|"
                   "request_duration_seconds_count)' '%s'; promtool check metrics < '%s'",
                   px.admin_port, path, path, path);
    cr_expect(strstr(out, "tlsfront_requests_total{tenant=\"acme\",class=\"2xx\"} 1") != NULL, "%s",
              out);
    cr_expect(strstr(out, "tlsfront_requests_total{tenant=\"acme\",class=\"4xx\"} 1") != NULL, "%s",
              out);
    cr_expect(strstr(out, "tlsfront_request_duration_seconds_count 2") != NULL, "%s", out);
    cr_expect(strstr(out, "tlsfront_handshakes_total{result=\"ok\"} 1") != NULL, "%s", out);
    cr_expect_eq(st, 0, "promtool: %s", out);
    free(out);
}

/* An open WebSocket keeps echoing across reloads of the configuration and
 * the certificates (SIGHUP twice while it holds). */
Test(httpmode, websocket_survives_reloads)
{
    char outf[1300];
    snprintf(outf, sizeof outf, "%s/ws.out", px.tmp);
    int st;
    char *r = tf_px_sh(&st,
                       "timeout 60 python3 '%s/tests/proxy/ws_client.py' 127.0.0.1 %u "
                       "portal.acme.example '%s' /ws 3 --hold 3 > '%s' 2>&1 &",
                       getenv("TF_SOURCE_DIR"), px.port, px.ca, outf);
    free(r);
    cr_assert(log_shows("upgraded: tunnel"), "the WebSocket is up");
    /* One reload at a time: the next SIGHUP once the last one is done. */
    for (unsigned i = 0; i < 2; i++) {
        r = tf_px_sh(&st, "kill -HUP %d", (int)px.proxy_pid);
        free(r);
        cr_assert(tf_px_wait_count(px.log, "reload (configuration and certificates)", i + 1,
                                   TF_PX_WAIT_MS),
                  "reload %u is done", i + 1);
    }
    char *out = tf_px_wait_file(outf, "ok ", "error");
    cr_expect(strstr(out, "ok ") != NULL, "%s", out);
    free(out);
    char *log = tf_px_log(&px);
    cr_expect_geq(tf_px_count(log, "reload"), 2, "%s", log);
    free(log);
}

/* Found by review: "Connection: content-length" must not strip the length
 * the proxy frames the body by, or the body reaches the backend as a second
 * request. */
Test(httpmode, connection_cannot_hide_the_body_length)
{
    char *out = raw("portal.acme.example",
                    "POST /innocent HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n"
                    "Connection: content-length, close\\r\\nContent-Length: 53\\r\\n\\r\\n"
                    "GET /smuggled HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n\\r\\n");
    cr_expect(strstr(out, "\"body_len\": 53") != NULL, "%s", out);
    cr_expect(strstr(out, "/smuggled\"") == NULL, "%s", out);
    cr_expect_eq(tf_px_count(out, "HTTP/1.1 "), 1, "%s", out);
    free(out);
    /* Stray bytes where a chunk's CRLF belongs: 400, nothing forwarded. */
    out = raw("portal.acme.example",
              "POST /chunks HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n"
              "Transfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhelloXY0\\r\\n\\r\\n");
    cr_expect(strncmp(out, "HTTP/1.1 400 ", 13) == 0, "%s", out);
    free(out);
}

/* An upload answered before its body is read (421 here) still shows the
 * client its answer: the proxy drains what the client goes on sending
 * rather than closing into it (a TCP reset would destroy the answer). */
Test(httpmode, an_early_answer_to_an_upload_reaches_the_client)
{
    int st;
    char *out = tf_px_sh(&st, "head -c 20000000 /dev/zero > '%s/zero.bin'", px.tmp);
    free(out);
    out = CURL(&st, "portal.acme.example",
               "-H 'Expect:' -H 'Host: portal.globex.example' --data-binary @'%s/zero.bin' "
               "-o /dev/null -w '%%{http_code}' https://portal.acme.example:%u/upload",
               px.tmp, px.port);
    cr_expect_str_eq(out, "421");
    free(out);
}

/* SIGTERM while a request is in flight: the request completes (with
 * Connection: close), then the proxy exits 0. */
Test(httpmode, an_in_flight_request_completes_across_sigterm)
{
    char outf[1300];
    snprintf(outf, sizeof outf, "%s/slow.out", px.tmp);
    int st;
    char *r = tf_px_sh(&st,
                       "curl --http1.1 -sS --max-time 20 --cacert '%s' --resolve "
                       "'portal.acme.example:%u:127.0.0.1' -D - "
                       "'https://portal.acme.example:%u/slow?ms=800' > '%s' 2>&1 &",
                       px.ca, px.port, px.port, outf);
    free(r);
    char needle[64];
    snprintf(needle, sizeof needle, "backend 127.0.0.1:%u connected", px.echo_port);
    cr_assert(log_shows(needle), "the request reached the backend");
    cr_expect_eq(tf_px_stop_proxy(&px), 0, "drained and exited 0");
    char *out = tf_px_wait_file(outf, "}", "curl:");
    cr_expect(strstr(out, "HTTP/1.1 200") != NULL, "%s", out);
    cr_expect(strstr(out, "Connection: close") != NULL, "%s", out);
    cr_expect(strstr(out, "\"target\": \"/slow?ms=800\"") != NULL, "%s", out);
    free(out);
}
