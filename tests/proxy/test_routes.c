/* Path routes and per-tenant policy end to end (SPEC §11), with curl as the
 * client and named echo backends (tests/proxy/echo_backend.py answers with
 * its name, the target and the headers it received): longest-prefix routes,
 * strip_prefix, redirect, respond, allow lists that no spelling bypasses,
 * websocket routes, header rules (on error responses too), error pages, the
 * per-client rate, cookie stickiness and weights.
 * curl speaks HTTP/1.1 here on purpose (--http1.1): these check the
 * HTTP/1.1 heads; test_h2.c runs the same routing over HTTP/2. */
#include "harness.h"

#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(routes, .timeout = 300);

enum { PORTAL, API, CHAT, SPARE };

typedef struct {
    tf_px_t px;
    char config[1200];
} site_t;

/* The contact-centre site of issue 14 on echo backends named portal, api,
 * chat and spare; TENANT_EXTRA is more keys of tenant acme, EXTRA more
 * top-level sections. */
static void site_start(site_t *s, const char *tenant_extra, const char *extra)
{
    tf_px_t *px = &s->px;
    tf_px_init(px, "tf-routes-test");
    tf_px_demo_pki(px);
    tf_px_start_backend(px);
    tf_px_add_echo(px, "portal");
    tf_px_add_echo(px, "api");
    tf_px_add_echo(px, "chat");
    tf_px_add_echo(px, "spare");
    char page[1300];
    snprintf(page, sizeof page, "%s/502.html", px->tmp);
    FILE *f = fopen(page, "w");
    cr_assert_not_null(f);
    fputs("<h1>We will be right back</h1>\n", f);
    fclose(f);
    snprintf(s->config, sizeof s->config, "%s/tlsfront.yaml", px->tmp);
    f = fopen(s->config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "log:\n  level: debug\n  access: %s/access.log\n"
            "listen:\n  https: [\"127.0.0.1:0\"]\n"
            "admin:\n  listen: \"127.0.0.1:0\"\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "timeouts:\n  handshake: 20s\n  connect: 2s\n  drain: 10s\n"
            "%s"
            "tenants:\n"
            "  acme:\n"
            "    hosts: [\"portal.acme.example\", \"chat.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "    headers:\n"
            "      request: {set: {X-Tenant: acme}, remove: [X-Debug]}\n"
            "      response: {set: {Strict-Transport-Security: \"max-age=31536000\"}, "
            "remove: [X-Backend-Secret]}\n"
            "    errors: {502: %s}\n"
            "%s"
            "    routes:\n"
            "      - path: /api/\n"
            "        backends: [\"127.0.0.1:%u\"]\n"
            "        strip_prefix: true\n"
            "      - path: /chat/\n"
            "        backends: [\"127.0.0.1:%u\"]\n"
            "        mode: websocket\n"
            "      - path: /admin/\n"
            "        backends: [\"127.0.0.1:%u\"]\n"
            "        allow: [\"10.0.0.0/8\", \"192.0.2.7\"]\n"
            "      - path: /local/\n"
            "        backends: [\"127.0.0.1:%u\"]\n"
            "        allow: [\"127.0.0.0/8\"]\n"
            "      - path: /old/\n"
            "        redirect: \"https://portal.acme.example/new/\"\n"
            "      - path: /robots.txt\n"
            "        respond: {status: 200, content_type: text/plain, "
            "body: \"User-agent: *\\nDisallow: /\\n\"}\n"
            "      - path: /broken/\n"
            "        backends: [\"127.0.0.1:%u\"]\n",
            px->tmp, px->demo, px->demo, extra ? extra : "", px->echos_port[PORTAL], page,
            tenant_extra ? tenant_extra : "", px->echos_port[API], px->echos_port[CHAT],
            px->echos_port[SPARE], px->echos_port[SPARE], px->dead_port);
    fclose(f);
    tf_px_launch(px, s->config, 0);
}

/* curl through the proxy to portal.acme.example: the response with its
 * head (-i), ARGS appended (more URLs, headers...). The path is sent as is. */
static char *curl(const site_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *curl(const site_t *s, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int st;
    char *out = tf_px_sh(&st,
                         "curl --http1.1 -sS -i --path-as-is --max-time 60 --cacert '%s' --resolve "
                         "portal.acme.example:%u:127.0.0.1 %s",
                         s->px.ca, s->px.port, args);
    cr_assert_eq(st, 0, "curl failed: %s", out);
    return out;
}

static char *get(const site_t *s, const char *path)
{
    char url[1200];
    snprintf(url, sizeof url, "'https://portal.acme.example:%u%s'", s->px.port, path);
    return curl(s, "%s", url);
}

static void expect_status(const char *resp, unsigned status)
{
    char want[32];
    snprintf(want, sizeof want, "HTTP/1.1 %u ", status);
    cr_expect(strncmp(resp, want, strlen(want)) == 0, "expected %u:\n%s", status, resp);
}

static bool has(const char *resp, const char *needle)
{
    return strstr(resp, needle) != NULL;
}

Test(routes, the_longest_prefix_wins_and_strip_prefix_keeps_the_query)
{
    site_t s;
    site_start(&s, NULL, NULL);
    char *r = get(&s, "/x/y?q=1");
    expect_status(r, 200);
    cr_expect(has(r, "\"backend\": \"portal\"") && has(r, "\"target\": \"/x/y?q=1\""), "%s", r);
    free(r);
    r = get(&s, "/api/v1/items?page=2");
    cr_expect(has(r, "\"backend\": \"api\"") && has(r, "\"target\": \"/v1/items?page=2\""), "%s",
              r);
    free(r);
    r = get(&s, "/api/");
    cr_expect(has(r, "\"backend\": \"api\"") && has(r, "\"target\": \"/\""), "%s", r);
    free(r);
    /* "/api/" matches whole segments: /api and /apix are the tenant's own. */
    r = get(&s, "/api");
    cr_expect(has(r, "\"backend\": \"portal\"") && has(r, "\"target\": \"/api\""), "%s", r);
    free(r);
    r = get(&s, "/apix/1");
    cr_expect(has(r, "\"backend\": \"portal\""), "%s", r);
    free(r);
    /* Matching is on the normalized path; what is sent is the target as
     * received (strip_prefix aside). */
    r = get(&s, "/x/../api/v2");
    cr_expect(has(r, "\"backend\": \"api\"") && has(r, "\"target\": \"/v2\""), "%s", r);
    free(r);
    r = get(&s, "/%61pi/v3");
    cr_expect(has(r, "\"backend\": \"api\""), "%s", r);
    free(r);
    r = get(&s, "/..");
    expect_status(r, 400);
    free(r);
    /* The access log names the route of a tenant with routes. */
    char log[1300];
    snprintf(log, sizeof log, "%s/access.log", s.px.tmp);
    char *lines = tf_px_wait_file(log, " route=/api/\n", NULL);
    cr_expect(has(lines, "\"GET /api/v1/items?page=2 HTTP/1.1\" 200 "), "%s", lines);
    cr_expect(has(lines, " route=/api/\n"), "no access line names route /api/:\n%s", lines);
    cr_expect(has(lines, " route=/\n"), "no access line names route /:\n%s", lines);
    free(lines);
    tf_px_stop(&s.px);
}

Test(routes, redirect_and_respond_answer_without_a_backend_and_keep_the_connection)
{
    site_t s;
    site_start(&s, NULL, NULL);
    char *r = get(&s, "/old/a/b?c=d");
    expect_status(r, 308);
    cr_expect(has(r, "Location: https://portal.acme.example/new/a/b?c=d\r\n"), "%s", r);
    cr_expect(has(r, "Strict-Transport-Security: max-age=31536000\r\n"), "%s", r);
    free(r);
    char url[1200];
    snprintf(url, sizeof url,
             "'https://portal.acme.example:%u/robots.txt' 'https://portal.acme.example:%u/x' -v",
             s.px.port, s.px.port);
    r = curl(&s, "%s", url);
    /* -v: curl's account of the connection comes first. */
    cr_expect(has(r, "\nHTTP/1.1 200 OK\r\n"), "%s", r);
    cr_expect(has(r, "Content-Type: text/plain\r\n"), "%s", r);
    cr_expect(has(r, "\r\n\r\nUser-agent: *\nDisallow: /\n"), "%s", r);
    cr_expect(!has(r, "Connection: close"), "%s", r);
    /* The second request went over the same connection. */
    cr_expect(has(r, "Re-using existing connection") || has(r, "Reusing existing"), "%s", r);
    cr_expect(has(r, "\"backend\": \"portal\""), "%s", r);
    free(r);
    tf_px_stop(&s.px);
}

/* 403 before any backend is touched (the /admin/ backend is a live one:
 * had the request reached it, the answer would be its 200), whatever the
 * spelling of the path; an allowed address gets through. */
Test(routes, an_allow_list_cannot_be_bypassed_by_spelling)
{
    site_t s;
    site_start(&s, NULL, NULL);
    const char *spellings[] = {"/admin/",         "/admin/x",       "/x/../admin/x",
                               "/%61dmin/x",      "//admin/x",      "/admin%2Fx",
                               "/./admin/./x",    "/ADMIN/../admin/x", "/x%2F..%2Fadmin/x",
                               "/x%5C..%5Cadmin/", "/admin"};
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        char *r = get(&s, spellings[i]);
        if (strcmp(spellings[i], "/admin") == 0) {
            /* No slash: not under "/admin/", the tenant's own route. */
            cr_expect(has(r, "\"backend\": \"portal\""), "%s: %s", spellings[i], r);
        } else {
            expect_status(r, 403);
            cr_expect(!has(r, "\"backend\""), "%s reached a backend: %s", spellings[i], r);
            cr_expect(has(r, "Strict-Transport-Security: max-age=31536000\r\n"), "%s", r);
        }
        free(r);
    }
    char *r = get(&s, "/local/x");
    cr_expect(has(r, "\"backend\": \"spare\""), "%s", r);
    free(r);
    /* A WebSocket upgrade misses the list like any request. */
    char url[1200];
    snprintf(url, sizeof url,
             "-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' "
             "-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "
             "'https://portal.acme.example:%u/admin/ws'",
             s.px.port);
    r = curl(&s, "%s", url);
    expect_status(r, 403);
    free(r);
    /* Ten refusals and the upgrade's: counted per tenant. */
    int st;
    char *m = tf_px_sh(&st, "curl -s -m 10 http://127.0.0.1:%u/metrics", s.px.admin_port);
    cr_expect(has(m, "tlsfront_requests_denied_total{tenant=\"acme\",status=\"403\"} 11\n"),
              "%s", m);
    free(m);
    tf_px_stop(&s.px);
}

Test(routes, a_websocket_route_takes_upgrades_only)
{
    site_t s;
    site_start(&s, NULL, NULL);
    char *r = get(&s, "/chat/room");
    expect_status(r, 400);
    free(r);
    int st;
    r = tf_px_sh(&st, "python3 '%s/tests/proxy/ws_client.py' 127.0.0.1 %u portal.acme.example '%s' "
                      "/chat/room 3",
                 tf_px_env("TF_SOURCE_DIR"), s.px.port, s.px.ca);
    cr_expect_eq(st, 0, "%s", r);
    cr_expect(has(r, "ok 3"), "%s", r);
    free(r);
    tf_px_stop(&s.px);
}

Test(routes, header_rules_apply_both_ways_and_to_error_pages)
{
    site_t s;
    site_start(&s, NULL, NULL);
    char url[1200];
    snprintf(url, sizeof url, "-H 'X-Debug: 1' -H 'X-Other: 2' 'https://portal.acme.example:%u/h'",
             s.px.port);
    char *r = curl(&s, "%s", url);
    expect_status(r, 200);
    cr_expect(has(r, "[\"X-Tenant\", \"acme\"]"), "%s", r);
    cr_expect(!has(r, "X-Debug"), "%s", r);
    cr_expect(has(r, "[\"X-Other\", \"2\"]"), "%s", r);
    cr_expect(has(r, "Strict-Transport-Security: max-age=31536000\r\n"), "%s", r);
    free(r);
    /* The tenant's 502 page, with its rules, for a route that inherits it. */
    r = get(&s, "/broken/x");
    expect_status(r, 502);
    cr_expect(has(r, "Content-Type: text/html; charset=utf-8\r\n"), "%s", r);
    cr_expect(has(r, "<h1>We will be right back</h1>"), "%s", r);
    cr_expect(has(r, "Strict-Transport-Security: max-age=31536000\r\n"), "%s", r);
    free(r);
    tf_px_stop(&s.px);
}

/* A burst of 3 and 1 request per second: 30 requests in one connection get
 * at most 3 + (seconds taken) answers, and each refusal says when to retry. */
Test(routes, over_the_per_client_rate_is_429_with_retry_after)
{
    site_t s;
    site_start(&s, NULL, "limits:\n  per_client: {requests_per_second: 1, burst: 3}\n");
    char urls[30 * 64] = "";
    for (int i = 0; i < 30; i++) {
        char u[64];
        snprintf(u, sizeof u, " 'https://portal.acme.example:%u/r%d'", s.px.port, i);
        strcat(urls, u);
    }
    long long t0 = tf_px_now_ms();
    char *r = curl(&s, "%s", urls);
    long long secs = (tf_px_now_ms() - t0) / 1000 + 1;
    unsigned ok = tf_px_count(r, "HTTP/1.1 200 "), limited = tf_px_count(r, "HTTP/1.1 429 ");
    cr_expect_geq(ok, 3, "%s", r);
    cr_expect_leq(ok, 3 + (unsigned)secs, "ok=%u in %lld s", ok, secs);
    cr_expect_geq(limited, 1, "%s", r);
    cr_expect(has(r, "Retry-After: 1\r\n"), "%s", r);
    free(r);
    tf_px_stop(&s.px);
}

/* The backend a cookie names, out of 3 (SPEC §11 balance: cookie). */
static const char *backend_of(const char *resp)
{
    if (has(resp, "\"backend\": \"portal\""))
        return "portal";
    if (has(resp, "\"backend\": \"api\""))
        return "api";
    if (has(resp, "\"backend\": \"spare\""))
        return "spare";
    return "?";
}

Test(routes, a_sticky_client_stays_on_its_backend_and_moves_when_it_leaves)
{
    site_t s;
    site_start(&s, NULL, NULL);
    /* A tenant of its own on three backends, cookie stickiness. */
    tf_px_stop_proxy(&s.px);
    FILE *f = fopen(s.config, "a");
    cr_assert_not_null(f);
    fprintf(f,
            "  sticky:\n"
            "    hosts: [\"sticky.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\", \"127.0.0.1:%u\", \"127.0.0.1:%u\"]\n"
            "    balance: cookie\n",
            s.px.echos_port[PORTAL], s.px.echos_port[API], s.px.echos_port[SPARE]);
    fclose(f);
    tf_px_launch(&s.px, s.config, 0);
    char jar[1300];
    snprintf(jar, sizeof jar, "%s/jar", s.px.tmp);
    int st;
    char *r = tf_px_sh(&st,
                       "curl --http1.1 -sS -i --max-time 60 --cacert '%s' --resolve "
                       "sticky.tenants.example:%u:127.0.0.1 -c '%s' "
                       "'https://sticky.tenants.example:%u/first'",
                       s.px.ca, s.px.port, jar, s.px.port);
    cr_assert_eq(st, 0, "%s", r);
    cr_expect(has(r, "Set-Cookie: TFSRV="), "%s", r);
    cr_expect(has(r, "; Path=/; HttpOnly; Secure; SameSite=Lax\r\n"), "%s", r);
    char *sc = strstr(r, "Set-Cookie: TFSRV=");
    cr_assert_not_null(sc);
    char id[64] = "";
    sscanf(sc + strlen("Set-Cookie: TFSRV="), "%63[^;]", id);
    cr_expect_eq(strlen(id), 16, "an opaque ID of 16 hex digits: %s", id);
    cr_expect(!has(id, "127") && !has(id, ":"), "the ID reveals no address: %s", id);
    const char *first = backend_of(r);
    free(r);
    /* 100 more requests with the cookie (and another one) go to it, are not
     * told again, and the backend never sees the stickiness cookie. */
    /* The URLs in a curl config file: 100 of them are longer than a
     * command line tf_px_sh() takes. */
    char urls[1300];
    snprintf(urls, sizeof urls, "%s/urls", s.px.tmp);
    f = fopen(urls, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 100; i++)
        fprintf(f, "url = \"https://sticky.tenants.example:%u/n%d\"\n", s.px.port, i);
    fclose(f);
    r = tf_px_sh(&st,
                 "curl --http1.1 -sS -i --max-time 120 --cacert '%s' --resolve "
                 "sticky.tenants.example:%u:127.0.0.1 -b '%s' -H 'Cookie: theme=dark' -K '%s'",
                 s.px.ca, s.px.port, jar, urls);
    cr_assert_eq(st, 0, "%s", r);
    char want[64];
    snprintf(want, sizeof want, "\"backend\": \"%s\"", first);
    cr_expect_eq(tf_px_count(r, want), 100, "all on %s", first);
    cr_expect_eq(tf_px_count(r, "Set-Cookie"), 0);
    cr_expect_eq(tf_px_count(r, "TFSRV"), 0, "the cookie reached the backend");
    cr_expect_eq(tf_px_count(r, "theme=dark"), 100);
    free(r);
    /* A forged ID is no cookie: a backend by round robin, and a new cookie. */
    r = tf_px_sh(&st,
                 "curl --http1.1 -sS -i --max-time 60 --cacert '%s' --resolve "
                 "sticky.tenants.example:%u:127.0.0.1 -H 'Cookie: TFSRV=0123456789abcdef' "
                 "'https://sticky.tenants.example:%u/forged'",
                 s.px.ca, s.px.port, s.px.port);
    cr_expect(has(r, "Set-Cookie: TFSRV="), "%s", r);
    free(r);
    /* Its backend goes away: the client moves, and is told its new one. */
    size_t gone = strcmp(first, "portal") == 0 ? PORTAL : strcmp(first, "api") == 0 ? API : SPARE;
    tf_px_stop_echo(&s.px, gone);
    r = tf_px_sh(&st,
                 "curl --http1.1 -sS -i --max-time 60 --cacert '%s' --resolve "
                 "sticky.tenants.example:%u:127.0.0.1 -b '%s' "
                 "'https://sticky.tenants.example:%u/moved'",
                 s.px.ca, s.px.port, jar, s.px.port);
    expect_status(r, 200);
    cr_expect(strcmp(backend_of(r), first) != 0, "still on %s: %s", first, r);
    cr_expect(has(r, "Set-Cookie: TFSRV="), "%s", r);
    free(r);
    tf_px_stop(&s.px);
}

Test(routes, weights_three_to_one_give_three_to_one)
{
    site_t s;
    site_start(&s, NULL, NULL);
    tf_px_stop_proxy(&s.px);
    FILE *f = fopen(s.config, "a");
    cr_assert_not_null(f);
    fprintf(f,
            "  weighted:\n"
            "    hosts: [\"weighted.tenants.example\"]\n"
            "    backends: [{address: \"127.0.0.1:%u\", weight: 3}, \"127.0.0.1:%u\"]\n",
            s.px.echos_port[PORTAL], s.px.echos_port[API]);
    fclose(f);
    tf_px_launch(&s.px, s.config, 0);
    char urls[40 * 64] = "";
    for (int i = 0; i < 40; i++) {
        char u[64];
        snprintf(u, sizeof u, " 'https://weighted.tenants.example:%u/w%d'", s.px.port, i);
        strcat(urls, u);
    }
    int st;
    char *r = tf_px_sh(&st,
                       "curl --http1.1 -sS -i --max-time 120 --cacert '%s' --resolve "
                       "weighted.tenants.example:%u:127.0.0.1 %s",
                       s.px.ca, s.px.port, urls);
    cr_assert_eq(st, 0, "%s", r);
    cr_expect_eq(tf_px_count(r, "\"backend\": \"portal\""), 30);
    cr_expect_eq(tf_px_count(r, "\"backend\": \"api\""), 10);
    free(r);
    tf_px_stop(&s.px);
}

/* A tenant of its own appended to the site's configuration, the proxy
 * started again on it. */
static void site_add_tenant(site_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void site_add_tenant(site_t *s, const char *fmt, ...)
{
    tf_px_stop_proxy(&s->px);
    FILE *f = fopen(s->config, "a");
    cr_assert_not_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    tf_px_launch(&s->px, s->config, 0);
}

/* Waits until GET /backends shows NEEDLE (a request in flight). */
static bool wait_backends(const site_t *s, const char *needle)
{
    long long deadline = tf_px_now_ms() + TF_PX_WAIT_MS;
    while (tf_px_now_ms() < deadline) {
        int st;
        char *doc = tf_px_sh(&st, "curl -s -m 10 http://127.0.0.1:%u/backends", s->px.admin_port);
        bool seen = strstr(doc, needle) != NULL;
        free(doc);
        if (seen)
            return true;
        /* Each try is a process and an admin request: bounded by the deadline. */
    }
    return false;
}

/* max_conns: with the one backend's only slot taken by a slow request, the
 * next is 503 with Retry-After: 1, and the backend never sees it. */
Test(routes, every_backend_full_is_503_with_retry_after)
{
    site_t s;
    site_start(&s, NULL, NULL);
    site_add_tenant(&s,
                    "  full:\n"
                    "    hosts: [\"full.tenants.example\"]\n"
                    "    backends: [{address: \"127.0.0.1:%u\", max_conns: 1}]\n",
                    s.px.echos_port[SPARE]);
    int st;
    char *bg = tf_px_sh(&st,
                        "curl --http1.1 -sS -o /dev/null --max-time 60 --cacert '%s' --resolve "
                        "full.tenants.example:%u:127.0.0.1 "
                        "'https://full.tenants.example:%u/slow?ms=20000' >/dev/null 2>&1 &",
                        s.px.ca, s.px.port, s.px.port);
    free(bg);
    cr_assert(wait_backends(&s, "\"tenant\":\"full\",\"route\":\"/\",\"balance\":\"round_robin\","
                                "\"backends\":[{\"address\":"),
              "no /backends");
    char needle[200];
    snprintf(needle, sizeof needle,
             "\"address\":\"127.0.0.1:%u\",\"weight\":1,\"backup\":false,\"max_conns\":1,"
             "\"state\":\"up\",\"active_requests\":1",
             s.px.echos_port[SPARE]);
    cr_assert(wait_backends(&s, needle), "the slow request never got in flight");
    char *r = tf_px_sh(&st,
                       "curl --http1.1 -sS -i --max-time 60 --cacert '%s' --resolve "
                       "full.tenants.example:%u:127.0.0.1 'https://full.tenants.example:%u/next'",
                       s.px.ca, s.px.port, s.px.port);
    expect_status(r, 503);
    cr_expect(has(r, "Retry-After: 1\r\n"), "%s", r);
    cr_expect(!has(r, "\"backend\""), "%s", r);
    free(r);
    tf_px_stop(&s.px);
}

/* A route's own response timeout: 504 there, while the tenant's other
 * routes keep the global 60 s. */
Test(routes, a_route_has_timeouts_of_its_own)
{
    site_t s;
    site_start(&s, NULL, NULL);
    site_add_tenant(&s,
                    "  timed:\n"
                    "    hosts: [\"timed.tenants.example\"]\n"
                    "    backends: [\"127.0.0.1:%u\"]\n"
                    "    routes:\n"
                    "      - path: /quick/\n"
                    "        backends: [\"127.0.0.1:%u\"]\n"
                    "        strip_prefix: true\n"
                    "        timeouts: {response: 300ms}\n",
                    s.px.echos_port[PORTAL], s.px.echos_port[API]);
    int st;
    char *r = tf_px_sh(&st,
                       "curl --http1.1 -sS -i --max-time 60 --cacert '%s' --resolve "
                       "timed.tenants.example:%u:127.0.0.1 "
                       "'https://timed.tenants.example:%u/quick/slow?ms=3000' "
                       "'https://timed.tenants.example:%u/slow?ms=1000'",
                       s.px.ca, s.px.port, s.px.port, s.px.port);
    cr_expect(has(r, "HTTP/1.1 504 "), "%s", r);
    cr_expect(has(r, "\"backend\": \"portal\""), "the / route waited its 60 s: %s", r);
    free(r);
    tf_px_stop(&s.px);
}
