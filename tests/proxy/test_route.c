/* The routing pieces of SPEC §11, pure: the normalized path, the route
 * table, strip_prefix and redirect targets, the sticky cookie, allow lists
 * and our own answers' heads. */
#include "common/err.h"
#include "proxy/http/http_internal.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(route, .timeout = 10);

/* The normalized path of T, or "400". */
static const char *norm(const char *t)
{
    static char out[4096];
    size_t n = 0;
    int rc = tf_http_path_normalize(t, strlen(t), out, strlen(t) + 1, &n);
    if (rc != 0)
        return rc == 400 ? "400" : "?";
    cr_assert_eq(strlen(out), n, "%s: length", t);
    return out;
}

#define NORM(in, want) cr_expect_str_eq(norm(in), want, "%s", in)

Test(route, plain_paths_are_unchanged)
{
    NORM("/", "/");
    NORM("/api", "/api");
    NORM("/api/", "/api/");
    NORM("/api/v1/x", "/api/v1/x");
    NORM("/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;=");
}

Test(route, query_and_fragment_are_cut)
{
    NORM("/api?x=/../..", "/api");
    NORM("/api/?", "/api/");
    NORM("/a#/../..", "/a");
    NORM("/a/b?%zz", "/a/b");
}

Test(route, unreserved_escapes_are_decoded_others_kept_upper_case)
{
    NORM("/%61%70%69/%7e%2D%5f%2e%41%30", "/api/~-_.A0");
    NORM("/a%3ab", "/a%3Ab");
    NORM("/a%3Ab", "/a%3Ab");
    NORM("/%25%32%46", "/%252F"); /* decoded once, never twice */
    NORM("/%c3%a9", "/%C3%A9");
    NORM("/a%20b", "/a%20b");
}

Test(route, bad_and_nul_escapes_are_400)
{
    NORM("/a%", "400");
    NORM("/a%4", "400");
    NORM("/a%4g", "400");
    NORM("/a%g4", "400");
    NORM("/a%4?x", "400");
    NORM("/a%00b", "400");
}

Test(route, every_separator_spelling_is_one_slash)
{
    NORM("//api", "/api");
    NORM("/api//x", "/api/x");
    NORM("/api\\x", "/api/x");
    NORM("/api%2Fx", "/api/x");
    NORM("/api%2fx", "/api/x");
    NORM("/api%5Cx", "/api/x");
    NORM("/api%5c%2F/\\x", "/api/x");
    NORM("/api//", "/api/");
    NORM("/api%2F", "/api/");
}

Test(route, dot_segments_are_resolved)
{
    NORM("/a/./b", "/a/b");
    NORM("/a/../b", "/b");
    NORM("/api/../admin", "/admin");
    NORM("/a/b/..", "/a/");
    NORM("/a/b/.", "/a/b/");
    NORM("/a/.", "/a/");
    NORM("/a/..", "/");
    NORM("/.", "/");
    NORM("/a/%2e%2E/b", "/b");
    NORM("/a/.%2e/b", "/b");
    NORM("/a/%2e/b", "/a/b");
    NORM("/a\\..\\b", "/b");
    NORM("/a%2F..%2Fb", "/b");
    NORM("/a/.../b", "/a/.../b");
    NORM("/a/..b/.c", "/a/..b/.c");
    NORM("/a/b/../../c/./d/", "/c/d/");
}

Test(route, climbing_above_the_root_is_400)
{
    NORM("/..", "400");
    NORM("/../a", "400");
    NORM("/a/../..", "400");
    NORM("/a/../../b", "400");
    NORM("/%2e%2e/admin", "400");
    NORM("\\..", "400"); /* not an origin form either */
}

Test(route, asterisk_and_absolute_forms)
{
    NORM("*", "/");
    NORM("http://portal.acme.example/api/x?y", "/api/x");
    NORM("HTTPS://portal.acme.example:8443/a/../b", "/b");
    NORM("https://portal.acme.example", "/");
    NORM("https://portal.acme.example?x", "/");
    NORM("https://portal.acme.example\\admin", "/admin");
    NORM("http://user@h//x", "/x");
}

Test(route, other_forms_are_400)
{
    NORM("", "400");
    NORM("**", "400");
    NORM("a/b", "400");
    NORM("portal.acme.example:443", "400");
    NORM("ftp://x/y", "400");
    NORM("http:/x", "400");
}

Test(route, a_small_buffer_is_refused_not_overrun)
{
    char out[8];
    memset(out, 'Z', sizeof out);
    size_t n = 0;
    cr_expect_eq(tf_http_path_normalize("/abcdefghij", 11, out, 4, &n), 400);
    cr_expect_eq(out[4], 'Z');
    cr_expect_eq(tf_http_path_normalize("/abc", 4, out, 5, &n), 0, "LEN + 1 suffices");
    cr_expect_str_eq(out, "/abc");
}

/* ---- the route table ---- */

static tf_conf_route_t *routes_of(const char *const *paths, size_t n)
{
    tf_conf_route_t *r = calloc(n, sizeof *r);
    cr_assert_not_null(r);
    for (size_t i = 0; i < n; i++)
        r[i].path = paths[i];
    return r;
}

static const char *match(const tf_http_routes_t *t, const tf_conf_route_t *r, const char *path)
{
    return r[tf_http_routes_match(t, path, strlen(path))].path;
}

#define MATCH(path, want) cr_expect_str_eq(match(t, r, path), want, "%s", path)

Test(route, prefixes_match_whole_segments_as_the_spec_says)
{
    static const char *const paths[] = {"/", "/api/", "/chat", "/old/", "/robots.txt"};
    tf_conf_route_t *r = routes_of(paths, 5);
    tf_http_routes_t *t = NULL;
    cr_assert_eq(tf_http_routes_new(r, 5, &t), 0);
    MATCH("/api/", "/api/");
    MATCH("/api/x", "/api/");
    MATCH("/api/v1/x/y", "/api/");
    MATCH("/api", "/");
    MATCH("/apix", "/");
    MATCH("/apix/y", "/");
    MATCH("/chat", "/chat");
    MATCH("/chat/", "/chat");
    MATCH("/chat/room/1", "/chat");
    MATCH("/chatx", "/");
    MATCH("/robots.txt", "/robots.txt");
    MATCH("/robots.txt/x", "/robots.txt");
    MATCH("/robots.txtx", "/");
    MATCH("/", "/");
    MATCH("/other/deep/path", "/");
    tf_http_routes_free(t);
    free(r);
}

Test(route, the_longest_prefix_wins)
{
    static const char *const paths[] = {"/", "/a", "/a/b/", "/a/b/c", "/a/", "/a/b/c/d/e/"};
    tf_conf_route_t *r = routes_of(paths, 6);
    tf_http_routes_t *t = NULL;
    cr_assert_eq(tf_http_routes_new(r, 6, &t), 0);
    MATCH("/a", "/a");
    MATCH("/a/", "/a/");
    MATCH("/a/x", "/a/");
    MATCH("/a/b", "/a/");
    MATCH("/a/b/", "/a/b/");
    MATCH("/a/b/c", "/a/b/c");
    MATCH("/a/b/c/", "/a/b/c");
    MATCH("/a/b/c/d/e", "/a/b/c");
    MATCH("/a/b/c/d/e/f", "/a/b/c/d/e/");
    MATCH("/a/b/cd", "/a/b/");
    tf_http_routes_free(t);
    free(r);
}

Test(route, a_table_needs_root_first_and_no_prefix_twice)
{
    tf_http_routes_t *t = NULL;
    static const char *const no_root[] = {"/api/", "/"};
    tf_conf_route_t *r = routes_of(no_root, 2);
    cr_expect_eq(tf_http_routes_new(r, 2, &t), TF_EINVAL);
    free(r);
    static const char *const twice[] = {"/", "/api/", "/x", "/api/"};
    r = routes_of(twice, 4);
    cr_expect_eq(tf_http_routes_new(r, 4, &t), TF_EINVAL);
    free(r);
    static const char *const both[] = {"/", "/api/", "/api"};
    r = routes_of(both, 3);
    cr_expect_eq(tf_http_routes_new(r, 3, &t), 0, "/api and /api/ are two prefixes");
    MATCH("/api", "/api");
    MATCH("/api/", "/api/");
    MATCH("/api/x", "/api/");
    tf_http_routes_free(t);
    free(r);
}

/* N routes: "/", a deep one, then "/r2/x", "/r3/", ... */
#define DEEP "/zz/zz/zz/zz/zz/zz/zz/zz/zz/zz/zz/zz/"
static tf_conf_route_t *many(size_t n, char ***names)
{
    char **p = calloc(n, sizeof *p);
    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++) {
        p[i] = malloc(64);
        cr_assert_not_null(p[i]);
        if (i < 2)
            strcpy(p[i], i == 0 ? "/" : DEEP);
        else
            snprintf(p[i], 64, i % 2 ? "/r%zu/" : "/r%zu/x", i);
    }
    *names = p;
    return routes_of((const char *const *)p, n);
}

static void free_many(char **p, size_t n, tf_conf_route_t *r)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
    free(p);
    free(r);
}

Test(route, many_routes_each_found)
{
    char **p;
    size_t n = 5000;
    tf_conf_route_t *r = many(n, &p);
    tf_http_routes_t *t = NULL;
    cr_assert_eq(tf_http_routes_new(r, n, &t), 0);
    char path[96];
    for (size_t i = 2; i < n; i++) {
        snprintf(path, sizeof path, i % 2 ? "%smore?q" : "%s/more?q", p[i]);
        size_t len = strcspn(path, "?");
        cr_assert_eq(tf_http_routes_match(t, path, len), i, "%.*s", (int)len, path);
        snprintf(path, sizeof path, "/r%zu", i);
        cr_assert_eq(tf_http_routes_match(t, path, strlen(path)), 0, "%s", path);
    }
    cr_expect_eq(tf_http_routes_match(t, DEEP "x", strlen(DEEP) + 1), 1);
    tf_http_routes_free(t);
    free_many(p, n, r);
}

/* The cost of matching 400 paths (half of them hits, with 2 to 6
 * boundaries each) against a table of N routes. */
static tf_http__match_stats_t cost_with(size_t n)
{
    char **p;
    tf_conf_route_t *r = many(n, &p);
    tf_http_routes_t *t = NULL;
    cr_assert_eq(tf_http_routes_new(r, n, &t), 0);
    tf_http__match_stats_t st = {0};
    char path[96];
    for (size_t i = 0; i < 400; i++) {
        snprintf(path, sizeof path, i % 2 ? "/r%zu/x/y/z/w" : "/q%zu/a%s", i, i % 4 ? "/" : "");
        (void)tf_http__routes_match_stats(t, path, strlen(path), &st);
    }
    tf_http_routes_free(t);
    free_many(p, n, r);
    return st;
}

/* One lookup per boundary of the path whatever the table's size, and the
 * slots probed per lookup stay a small constant. */
Test(route, lookups_do_not_grow_with_the_number_of_routes)
{
    tf_http__match_stats_t few = cost_with(3);
    cr_assert_gt(few.lookups, 400);
    for (size_t n = 10; n <= 100000; n *= 10) {
        tf_http__match_stats_t st = cost_with(n);
        cr_expect_eq(st.lookups, few.lookups, "%zu routes: %zu lookups, %zu with 3", n, st.lookups,
                     few.lookups);
        cr_expect_leq(st.probes, 3 * st.lookups, "%zu routes: %zu probes for %zu lookups", n,
                      st.probes, st.lookups);
    }
}

/* ---- strip_prefix and redirect targets ---- */

/* The target strip_prefix sends for T routed by PREFIX, or "-1". */
static const char *strip(const char *t, const char *prefix)
{
    static char np[512], out[512];
    size_t nl = 0;
    cr_assert_eq(tf_http_path_normalize(t, strlen(t), np, sizeof np, &nl), 0, "%s", t);
    long n = tf_http_strip_target(t, strlen(t), np, nl, prefix, out, strlen(t) + 2);
    if (n < 0)
        return "-1";
    out[n] = '\0';
    return out;
}

#define STRIP(t, prefix, want, ...)                                                                \
    cr_expect_str_eq(strip(t, prefix), want, "%s under %s", t, prefix)

Test(route, strip_prefix_removes_the_prefix_without_its_slash_and_keeps_the_query)
{
    STRIP("/api/v1/x", "/api/", "/v1/x");
    STRIP("/api/v1/x?q=1&r", "/api/", "/v1/x?q=1&r");
    STRIP("/api/", "/api/", "/");
    STRIP("/api/?q", "/api/", "/?q");
    STRIP("/api", "/api", "/");
    STRIP("/api?q", "/api", "/?q");
    STRIP("/api/x", "/api", "/x");
    STRIP("/x/y", "/", "/x/y");
    STRIP("/x?y", "/", "/x?y");
}

Test(route, strip_prefix_keeps_the_rest_as_sent_when_the_prefix_is_spelled_as_written)
{
    STRIP("/api/a%2Fb%7e?q", "/api/", "/a%2Fb%7e?q");
    STRIP("/api//x", "/api/", "/x", "a leading run of separators is one '/'");
    STRIP("/api/\\/x", "/api/", "/x");
    STRIP("//x/y", "/", "/x/y");
}

Test(route, strip_prefix_uses_the_normalized_rest_for_other_spellings)
{
    STRIP("/%61pi/v1?q", "/api/", "/v1?q");
    STRIP("//api/x", "/api/", "/x");
    STRIP("/api%2Fx", "/api", "/x");
    STRIP("/api\\x\\y?z", "/api/", "/x/y?z");
    STRIP("/other/../api/x", "/api/", "/x");
    STRIP("https://portal.acme.example/api/x?q", "/api/", "/x?q");
    STRIP("*", "/", "/");
    STRIP("/api/x#frag", "/api/", "/x");
}

Test(route, strip_prefix_refuses_a_path_the_prefix_does_not_match_or_a_small_buffer)
{
    STRIP("/apix", "/api", "-1");
    STRIP("/b/x", "/api/", "-1");
    char out[4];
    cr_expect_eq(tf_http_strip_target("/api/xyz", 8, "/api/xyz", 8, "/api/", out, 3), -1);
    cr_expect_eq(tf_http_strip_target("/api/xyz", 8, "/api/xyz", 8, "/api/", out, 4), 4);
}

static const char *location(const char *redirect, const char *t, const char *prefix)
{
    static char np[512], out[512];
    size_t nl = 0;
    cr_assert_eq(tf_http_path_normalize(t, strlen(t), np, sizeof np, &nl), 0, "%s", t);
    long n = tf_http_redirect_location(redirect, t, strlen(t), np, nl, prefix, out, sizeof out);
    if (n < 0)
        return "-1";
    out[n] = '\0';
    return out;
}

#define LOC(r, t, prefix, want)                                                                    \
    cr_expect_str_eq(location(r, t, prefix), want, "%s under %s to %s", t, prefix, r)

Test(route, redirect_keeps_the_rest_of_the_path_and_the_query_with_one_slash_between)
{
    const char *to = "https://portal.acme.example/new/";
    LOC(to, "/old/a?b", "/old/", "https://portal.acme.example/new/a?b");
    LOC(to, "/old/", "/old/", "https://portal.acme.example/new/");
    LOC(to, "/old/?b", "/old/", "https://portal.acme.example/new/?b");
    LOC(to, "/old/a/b/c", "/old/", "https://portal.acme.example/new/a/b/c");
    LOC(to, "/old", "/old", "https://portal.acme.example/new/");
    LOC(to, "/old?b", "/old", "https://portal.acme.example/new/?b");
    const char *bare = "https://portal.acme.example/new";
    LOC(bare, "/old/a?b", "/old/", "https://portal.acme.example/new/a?b");
    LOC(bare, "/old/", "/old/", "https://portal.acme.example/new/");
    LOC(bare, "/old", "/old", "https://portal.acme.example/new");
    LOC(bare, "/old?b", "/old", "https://portal.acme.example/new?b");
    LOC("https://x.example", "/a/b", "/", "https://x.example/a/b");
    LOC("https://x.example/", "/", "/", "https://x.example/");
    LOC(to, "/%6Fld/a?b", "/old/", "https://portal.acme.example/new/a?b");
    LOC(to, "/old//a", "/old/", "https://portal.acme.example/new/a");
    LOC(bare, "/old//a", "/old/", "https://portal.acme.example/new/a");
    char out[8];
    cr_expect_eq(tf_http_redirect_location(to, "/old/a", 6, "/old/a", 6, "/old/", out, sizeof out),
                 -1);
}

/* ---- cookies ---- */

static tf_http_header_t field(const char *name, const char *value)
{
    return (tf_http_header_t){name, strlen(name), value, strlen(value)};
}

static const char *cookie(const tf_http_header_t *h, size_t n, const char *name)
{
    static char v[256];
    const char *p = NULL;
    size_t len = 0;
    if (!tf_http_cookie_find(h, n, name, &p, &len))
        return "(none)";
    memcpy(v, p, len);
    v[len] = '\0';
    return v;
}

Test(route, the_sticky_cookie_is_found_in_any_cookie_field)
{
    tf_http_header_t h[] = {field("Accept", "TFSRV=no"), field("cookie", "a=1; TFSRV=abc; b=2")};
    cr_expect_str_eq(cookie(h, 2, "TFSRV"), "abc");
    cr_expect_str_eq(cookie(h, 2, "a"), "1");
    cr_expect_str_eq(cookie(h, 2, "b"), "2");
    cr_expect_str_eq(cookie(h, 2, "tfsrv"), "(none)", "names are case-sensitive");
    cr_expect_str_eq(cookie(h, 2, "TFSR"), "(none)");
    cr_expect_str_eq(cookie(h, 1, "TFSRV"), "(none)", "only Cookie fields");
    tf_http_header_t two[] = {field("Cookie", "x=1"), field("COOKIE", " TFSRV = \"q1\" ;y=2"),
                              field("Cookie", "TFSRV=later")};
    cr_expect_str_eq(cookie(two, 3, "TFSRV"), "q1", "whitespace and quotes; the first wins");
    tf_http_header_t odd[] = {field("Cookie", ";;flag; TFSRV=; TFSRV=x; =y; z=a=b")};
    cr_expect_str_eq(cookie(odd, 1, "TFSRV"), "");
    cr_expect_str_eq(cookie(odd, 1, "z"), "a=b");
    cr_expect_str_eq(cookie(odd, 1, "flag"), "(none)", "a crumb without '=' has no name");
    tf_http_header_t quote[] = {field("Cookie", "q=\"")};
    cr_expect_str_eq(cookie(quote, 1, "q"), "\"", "one quote is not a quoted value");
}

/* ---- allow ---- */

static bool allowed4(const tf_conf_allow_t *a, const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    cr_assert_eq(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    return tf_http_allowed(a, (const struct sockaddr *)&sa);
}

static bool allowed6(const tf_conf_allow_t *a, const char *ip)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
    cr_assert_eq(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1);
    return tf_http_allowed(a, (const struct sockaddr *)&sa);
}

static tf_conf_cidr_t cidr(uint8_t family, const char *ip, uint8_t bits)
{
    tf_conf_cidr_t c = {.family = family, .bits = bits};
    cr_assert_eq(inet_pton(family == 4 ? AF_INET : AF_INET6, ip, c.addr), 1);
    return c;
}

Test(route, allow_lists_match_addresses_and_cidrs)
{
    tf_conf_allow_t everyone = {0};
    cr_expect(allowed4(&everyone, "203.0.113.9"));
    cr_expect(allowed6(&everyone, "2001:db8::1"));
    tf_conf_cidr_t items[] = {cidr(4, "10.0.0.0", 8), cidr(4, "192.0.2.7", 32),
                              cidr(6, "2001:db8:40::", 42), cidr(4, "172.16.0.0", 12)};
    tf_conf_allow_t a = {items, 4};
    cr_expect(allowed4(&a, "10.1.2.3"));
    cr_expect(allowed4(&a, "10.255.255.255"));
    cr_expect_not(allowed4(&a, "11.0.0.0"));
    cr_expect(allowed4(&a, "192.0.2.7"));
    cr_expect_not(allowed4(&a, "192.0.2.8"));
    cr_expect(allowed4(&a, "172.31.0.1"), "/12 covers 172.16-31");
    cr_expect_not(allowed4(&a, "172.32.0.1"));
    cr_expect(allowed6(&a, "2001:db8:40::1"));
    cr_expect(allowed6(&a, "2001:db8:7f:ffff::1"), "/42 covers 40..7f in the third group");
    cr_expect_not(allowed6(&a, "2001:db8:80::1"));
    cr_expect(allowed6(&a, "::ffff:10.9.8.7"), "an IPv4-mapped address is the IPv4 one");
    cr_expect(allowed6(&a, "::ffff:192.0.2.7"));
    cr_expect_not(allowed6(&a, "::ffff:192.0.2.8"));
    cr_expect_not(allowed6(&a, "::10.9.8.7"), "IPv4-compatible is not IPv4-mapped");
    tf_conf_cidr_t all4[] = {cidr(4, "0.0.0.0", 0)};
    tf_conf_allow_t any4 = {all4, 1};
    cr_expect(allowed4(&any4, "198.51.100.1"));
    cr_expect_not(allowed6(&any4, "2001:db8::1"));
    tf_conf_cidr_t mapped[] = {cidr(6, "::ffff:10.0.0.0", 104)};
    tf_conf_allow_t m = {mapped, 1};
    cr_expect(allowed4(&m, "10.2.3.4"), "an IPv6 rule on mapped addresses covers IPv4 clients");
    cr_expect_not(allowed4(&m, "11.2.3.4"));
}

/* ---- answers ---- */

Test(route, answer_heads_carry_length_extra_lines_close_and_rules)
{
    char out[512];
    long n = tf_http_answer_head(403, "text/html; charset=utf-8", 12, NULL, 0, true, NULL, out,
                                 sizeof out);
    cr_assert_gt(n, 0);
    out[n] = '\0';
    cr_expect_str_eq(out, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html; charset=utf-8\r\n"
                          "Content-Length: 12\r\nConnection: close\r\n\r\n");
    static const tf_conf_header_t set[] = {{"Strict-Transport-Security", "max-age=31536000"},
                                           {"content-type", "text/x-custom"}};
    static const char *remove[] = {"server"};
    tf_conf_header_rules_t rules = {set, 2, {remove, 1}};
    const char *loc = "Location: https://x.example/new/a?b\r\n";
    n = tf_http_answer_head(308, "text/plain", 0, loc, strlen(loc), false, &rules, out, sizeof out);
    cr_assert_gt(n, 0);
    out[n] = '\0';
    cr_expect_str_eq(out, "HTTP/1.1 308 Permanent Redirect\r\nContent-Length: 0\r\n"
                          "Location: https://x.example/new/a?b\r\n"
                          "Strict-Transport-Security: max-age=31536000\r\n"
                          "content-type: text/x-custom\r\n\r\n");
    static const char *rm_ct[] = {"content-type"};
    tf_conf_header_rules_t drop = {NULL, 0, {rm_ct, 1}};
    n = tf_http_answer_head(429, "text/plain", 5, "Retry-After: 3\r\n", 16, true, &drop, out,
                            sizeof out);
    cr_assert_gt(n, 0);
    out[n] = '\0';
    cr_expect_str_eq(out, "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 5\r\n"
                          "Retry-After: 3\r\nConnection: close\r\n\r\n");
    cr_expect_eq(tf_http_answer_head(200, "text/plain", 5, NULL, 0, false, NULL, out, 20), -1);
}
