/* SPEC §11 configuration errors (issue 14 item 6 and the rules around it):
 * each at its exact FILE:LINE:COLUMN with the gist of what to do. */
#include "helpers.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Lines 1-5; tenant t's keys follow at line 6, column 5. */
#define HEAD T_LISTEN "tenants:\n  t:\n    hosts: [a.example]\n"
#define BACKENDS "    backends: [\"a:1\"]\n"
/* A route list whose first path value is at line 8, column 15. */
#define ROUTE(p) HEAD BACKENDS "    routes:\n      - path: " p "\n"

/* Every line of ERR is one of the N expected ones: nothing else reported. */
static void expect_only(const char *yaml, size_t n)
{
    char err[8192];
    t_load_fail(yaml, TF_ECONF, err, sizeof err);
    cr_expect_eq(t_count_lines(err), n, "%s", err);
}

Test(routes, duplicate_prefixes_point_at_both)
{
    const char *y = HEAD BACKENDS "    routes:\n"
                                  "      - path: /api/\n"
                                  "      - path: /chat/\n"
                                  "      - path: /api/\n";
    t_expect_error(y, 10, 15,
                   "tenants.t: route '/api/' is listed twice (first at line 8, column 15); each "
                   "prefix once");
    expect_only(y, 1);
}

Test(routes, path_rules)
{
    t_expect_error(ROUTE("/"), 8, 15,
                   "tenants.t.routes[0].path: '/' is not a route: the tenant's own keys are the / "
                   "route");
    t_expect_error(ROUTE("api/"), 8, 15, "'api/' must start with '/'");
    t_expect_error(ROUTE("/a//b"), 8, 15, "'/a//b' contains '//'");
    t_expect_error(ROUTE("/a/./b"), 8, 15, "has a '.' or '..' segment");
    t_expect_error(ROUTE("/a/.."), 8, 15, "has a '.' or '..' segment");
    t_expect_error(ROUTE("/a%2Fb"), 8, 15, "'/a%2Fb' contains '%'");
    t_expect_error(ROUTE("/a?b"), 8, 15, "contains '?'; a route is a path prefix");
    t_expect_error(ROUTE("\"/a#b\""), 8, 15, "contains '#'");
    t_expect_error(ROUTE("\"/a b\""), 8, 15, "contains a space, control or non-ASCII byte");
    t_expect_error(ROUTE("/a\"b"), 8, 15, "contains '\"'");
    tf_conf_unref(t_load(ROUTE("/.well-known/..x/~a-b_c.d/")));
}

Test(routes, route_shape)
{
    t_expect_error(HEAD BACKENDS "    routes:\n      - /api/\n", 8, 9,
                   "tenants.t.routes[0]: expected a mapping with path:");
    t_expect_error(HEAD BACKENDS "    routes:\n      - backends: [\"b:1\"]\n", 8, 9,
                   "tenants.t.routes[0]: missing required key 'path'");
    t_expect_error(HEAD BACKENDS "    routes: {path: /a/}\n", 7, 13,
                   "tenants.t.routes: expected a list of routes");
    t_expect_error(HEAD BACKENDS "    routes:\n      - {path: /a/, strip_prefx: true}\n", 8, 21,
                   "unknown key 'strip_prefx' in 'tenants.t.routes[0]'; did you mean "
                   "'strip_prefix'?");
    t_expect_error(HEAD BACKENDS "    routes:\n      - {path: /a/, mode: tcp}\n", 8, 27,
                   "tenants.t.routes[0].mode: 'tcp' is not a valid value; use one of: http, "
                   "websocket");
    t_expect_error(HEAD BACKENDS "    strip_prefix: true\n", 7, 5,
                   "unknown key 'strip_prefix' in 'tenants.t'");
    t_expect_error("routes: []\n" T_MINIMAL, 1, 1,
                   "it belongs under its section: "
                   "'tenants.NAME.routes'");
}

Test(kinds, two_of_backends_redirect_respond)
{
    t_expect_error(HEAD BACKENDS "    respond: {body: hi}\n", 7, 5,
                   "tenants.t: both backends and respond are set; a route forwards to backends, "
                   "redirects or responds: keep one of them");
    t_expect_error(HEAD "    respond: {}\n" BACKENDS, 7, 5,
                   "tenants.t: both respond and backends are set");
    t_expect_error(HEAD BACKENDS "    routes:\n"
                                 "      - path: /old/\n"
                                 "        redirect: https://b.example/\n"
                                 "        respond: {}\n",
                   10, 9, "tenants.t.routes[0]: both redirect and respond are set");
}

Test(kinds, none_is_an_error)
{
    t_expect_error(HEAD "    balance: source\n", 4, 3,
                   "tenants.t: missing required key 'backends'; add it, e.g. backends: "
                   "[\"10.0.0.5:8080\"], or answer every request with redirect: or respond:");
    t_expect_error(HEAD "    redirect: https://b.example/\n"
                        "    routes:\n"
                        "      - path: /x/\n"
                        "        allow: []\n",
                   8, 9,
                   "tenants.t.routes[0]: needs backends, redirect or respond: the tenant's own "
                   "keys (the / route) have no backends to inherit");
}

Test(kinds, redirect_and_respond_values)
{
    t_expect_error(HEAD BACKENDS "    redirect_status: 301\n", 7, 5,
                   "tenants.t.redirect_status: applies to a redirect; add redirect: or remove it");
    t_expect_error(HEAD "    redirect: /new/\n    redirect_status: 303\n", 7, 22,
                   "tenants.t.redirect_status: '303' is not a valid value; use one of: 301, 302, "
                   "307, 308");
    t_expect_error(HEAD "    redirect: ftp://x/\n", 6, 15,
                   "tenants.t.redirect: 'ftp://x/' is not a redirect target");
    t_expect_error(HEAD "    redirect: \"https:///x\"\n", 6, 15, "has no host");
    t_expect_error(HEAD "    redirect: //evil.example/\n", 6, 15, "starts with '//'");
    t_expect_error(HEAD "    respond: {status: 700}\n", 6, 23,
                   "tenants.t.respond.status: 700 is out of range; use 200 to 599");
    t_expect_error(HEAD "    respond: {content_type: \"a\\nb\"}\n", 6, 29,
                   "tenants.t.respond.content_type: the value contains a control character");
    t_expect_error(HEAD BACKENDS
                   "    routes:\n      - {path: /ws/, mode: websocket, redirect: /x/}\n",
                   8, 28, "tenants.t.routes[0].mode: websocket needs backends");
}

Test(balance, unknown_policy_and_cookie_name)
{
    t_expect_error(HEAD BACKENDS "    balance: fastest\n", 7, 14,
                   "tenants.t.balance: 'fastest' is not a valid value; use one of: round_robin, "
                   "least_conn, source, cookie");
    t_expect_error(HEAD BACKENDS "    cookie: \"TF;SRV\"\n", 7, 13,
                   "tenants.t.cookie: 'TF;SRV' is not a cookie name");
}

Test(backends, weight_zero_and_bounds)
{
    t_expect_error(HEAD "    backends: [{address: \"a:1\", weight: 0}]\n", 6, 41,
                   "tenants.t.backends.weight: weight 0: use backup: true, or remove the backend");
    t_expect_error(HEAD "    backends: [{address: \"a:1\", weight: 257}]\n", 6, 41,
                   "tenants.t.backends.weight: 257 is out of range; use 1 to 256");
}

Test(backends, item_errors)
{
    const char *y = HEAD "    backends:\n"
                         "      - {address: \"a:1\", weight: 2}\n"
                         "      - {weight: 2}\n"
                         "      - {address: \"b:1\", max_conns: 1000001, backup: yes}\n"
                         "      - \"a:1\"\n"
                         "      - [x]\n"
                         "      - {address: \"c:1\", wieght: 2}\n"
                         "      - \"d\"\n";
    t_expect_error(y, 8, 9, "tenants.t.backends: missing required key 'address'");
    t_expect_error(y, 9, 37,
                   "tenants.t.backends.max_conns: 1000001 is out of range; use 0 to "
                   "1000000");
    t_expect_error(y, 9, 54,
                   "tenants.t.backends.backup: 'yes' is not a boolean; write true or "
                   "false");
    t_expect_error(y, 10, 9,
                   "tenants.t.backends: 'a:1' is listed twice (first at line 7, column 9)");
    t_expect_error(y, 11, 9, "tenants.t.backends: expected an address such as");
    t_expect_error(y, 12, 26,
                   "unknown key 'wieght' in 'tenants.t.backends'; did you mean 'weight'?");
    t_expect_error(y, 13, 9, "tenants.t.backends: 'd' has no port");
    expect_only(y, 7);
    t_expect_error(HEAD "    backends: []\n", 6, 15, "tenants.t.backends: is empty");
}

Test(allow, bad_cidrs_at_their_item)
{
    const char *y = HEAD BACKENDS "    allow:\n"
                                  "      - \"10.0.0.1/8\"\n"
                                  "      - \"300.1.1.1\"\n"
                                  "      - \"10.0.0.0/33\"\n"
                                  "      - \"2001:db8::1/32\"\n"
                                  "      - \"::1/129\"\n"
                                  "      - \"10.0.0.0/8x\"\n"
                                  "      - {a: 1}\n";
    t_expect_error(y, 8, 9,
                   "tenants.t.allow: '10.0.0.1/8' has bits set after the /8 prefix, so it is not "
                   "a network; did you mean 10.0.0.0/8?");
    t_expect_error(y, 9, 9, "tenants.t.allow: '300.1.1.1' is not an address or network");
    t_expect_error(y, 10, 9, "'10.0.0.0/33' has an invalid prefix length; use /0 to /32 for IPv4");
    t_expect_error(y, 11, 9, "did you mean 2001:db8::/32?");
    t_expect_error(y, 12, 9, "use /0 to /128 for IPv6");
    t_expect_error(y, 13, 9, "'10.0.0.0/8x' has an invalid prefix length");
    t_expect_error(y, 14, 9, "tenants.t.allow: expected an address or network");
    expect_only(y, 7);
}

Test(errors_pages, missing_file_and_statuses)
{
    t_expect_error(HEAD BACKENDS "    errors: {503: /nonexistent/503.html}\n", 7, 19,
                   "tenants.t.errors: cannot read '/nonexistent/503.html': No such file or "
                   "directory; check the path");
    t_expect_error(HEAD BACKENDS "    errors: {404: /tmp}\n", 7, 19,
                   "cannot read '/tmp': not a regular file");
    t_expect_error(HEAD BACKENDS "    errors: {500: /tmp/x.html}\n", 7, 14,
                   "tenants.t.errors: '500' is not a status tlsfront answers with a page; use "
                   "403, 404, 421, 429, 502, 503 or 504");
    t_expect_error(HEAD BACKENDS "    errors: {503: relative-missing.html}\n", 7, 19,
                   "(a relative path is taken from the current directory)");
    t_expect_error(HEAD BACKENDS "    errors: [/tmp/x.html]\n", 7, 13,
                   "tenants.t.errors: expected a mapping like {503: errors/503.html}");
}

Test(headers, forbidden_names_in_set_and_remove)
{
    static const char *const names[] = {
        "X-Forwarded-For",
        "x-forwarded-proto",
        "X-FORWARDED-HOST",
        "X-Forwarded-Port",
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Upgrade",
        "Forwarded",
        "X_Forwarded_For",
        "x_forwarded-host",
    };
    char y[1024];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        bool ours = strncasecmp(names[i], "x", 1) == 0 || strcasecmp(names[i], "forwarded") == 0;
        const char *why = ours
                              ? "is written by the proxy itself (SPEC §7) and cannot be set or "
                                "removed by a rule"
                              : "frames the message or belongs to one connection";
        snprintf(y, sizeof y, HEAD BACKENDS "    headers: {request: {remove: [%s]}}\n", names[i]);
        t_expect_error(y, 7, 34, why);
        snprintf(y, sizeof y, HEAD BACKENDS "    headers: {response: {set: {%s: x}}}\n", names[i]);
        t_expect_error(y, 7, 32, why);
    }
}

Test(balance, a_cookie_name_is_at_most_64_characters)
{
    char y[1024];
    snprintf(y, sizeof y, HEAD BACKENDS "    balance: cookie\n    cookie: %065d\n", 0);
    t_expect_error(y, 8, 13, "is too long for a cookie name; use at most 64 characters");
    snprintf(y, sizeof y, HEAD BACKENDS "    balance: cookie\n    cookie: A%063d\n", 0);
    tf_conf_unref(t_load(y));
}

Test(headers, names_and_values)
{
    const char *y =
        HEAD BACKENDS "    headers:\n"
                      "      request:\n"
                      "        set: {X-Forwarded-For: 1.2.3.4}\n"
                      "        remove: [Host, \"Bad Name\", Content-Length]\n"
                      "      response:\n"
                      "        set: {X-Ok: \"a\\rb\", X-Ctl: \"a\\u0001b\", X-Sp: \" x\"}\n";
    t_expect_error(y, 9, 15,
                   "tenants.t.headers.request.set: 'X-Forwarded-For' is written by the proxy "
                   "itself");
    t_expect_error(y, 10, 18, "tenants.t.headers.request.remove: 'Host' frames the message");
    t_expect_error(y, 10, 24, "'Bad Name' is not a header name");
    t_expect_error(y, 10, 36, "'Content-Length' frames the message");
    t_expect_error(y, 12, 21,
                   "tenants.t.headers.response.set: X-Ok: the value contains a control character "
                   "(byte 0x0d)");
    t_expect_error(y, 12, 36, "X-Ctl: the value contains a control character (byte 0x01)");
    t_expect_error(y, 12, 54, "X-Sp: ' x' starts or ends with white space");
    expect_only(y, 7);
    t_expect_error(HEAD BACKENDS "    headers: {response: {set: {X-A: 1, x-a: 2}}}\n", 7, 40,
                   "'x-a' is set twice (names are case-insensitive); keep one");
    t_expect_error(HEAD BACKENDS "    headers: {request: {add: {}}}\n", 7, 25,
                   "unknown key 'add' in 'tenants.t.headers.request'");
}

Test(health, values_and_timeout_within_interval)
{
    t_expect_error(HEAD BACKENDS "    health: {status: \"600\"}\n", 7, 22,
                   "tenants.t.health.status: '600' is not a status range");
    t_expect_error(HEAD BACKENDS "    health: {status: 300-200}\n", 7, 22,
                   "'300-200' ends before it starts");
    t_expect_error(HEAD BACKENDS "    health: {status: 2xx}\n", 7, 22, "is not a status range");
    t_expect_error(HEAD BACKENDS "    health: {interval: 1s, timeout: 2s}\n", 7, 37,
                   "tenants.t.health.timeout: 2s is longer than health.interval (1s); a check "
                   "must end before the next one starts");
    t_expect_error(HEAD BACKENDS "    routes:\n      - {path: /a/, health: {timeout: 6s}}\n", 8, 39,
                   "tenants.t.routes[0].health.timeout: 6s is longer than health.interval "
                   "(5s)");
    t_expect_error(HEAD BACKENDS "    health: {rise: 0}\n", 7, 20,
                   "tenants.t.health.rise: 0 is out of range; use 1 to 100");
    t_expect_error(HEAD BACKENDS "    health: {fall: 101}\n", 7, 20, "use 1 to 100");
    t_expect_error(HEAD BACKENDS "    health: {host: \"a b\"}\n", 7, 20,
                   "tenants.t.health.host: 'a b' is not a host");
}

Test(tcp, http_only_keys_are_named)
{
    const char *y = HEAD BACKENDS "    mode: tcp\n"
                                  "    routes: [{path: /a/}]\n"
                                  "    allow: [\"10.0.0.0/8\"]\n"
                                  "    headers: {}\n"
                                  "    errors: {}\n"
                                  "    balance: cookie\n"
                                  "    cookie: S\n"
                                  "    redirect: /x/\n";
    t_expect_error(y, 8, 5,
                   "tenants.t.routes: applies to mode http tenants; this tenant is mode tcp: "
                   "remove it");
    t_expect_error(y, 9, 5, "tenants.t.allow: applies to mode http tenants");
    t_expect_error(y, 10, 5, "tenants.t.headers: applies to mode http tenants");
    t_expect_error(y, 11, 5, "tenants.t.errors: applies to mode http tenants");
    t_expect_error(y, 12, 14, "tenants.t.balance: cookie needs mode http");
    t_expect_error(y, 13, 5, "tenants.t.cookie: applies to mode http tenants");
    t_expect_error(y, 14, 5, "tenants.t.redirect: applies to mode http tenants");
    t_expect_error(y, 14, 5, "both backends and redirect are set");
    expect_only(y, 8);
    t_expect_error(HEAD BACKENDS "    mode: websocket\n", 7, 11,
                   "tenants.t.mode: 'websocket' is not a valid value; use one of: http, tcp");
}

Test(limits, per_client_bounds)
{
    t_expect_error("limits:\n  per_client: {connections: 1000001}\n" T_MINIMAL, 2, 29,
                   "limits.per_client.connections: 1000001 is out of range; use 0 to 1000000");
    t_expect_error("limits:\n  per_client: {requests_per_second: -1}\n" T_MINIMAL, 2, 37,
                   "limits.per_client.requests_per_second: '-1' is not a whole number");
    t_expect_error("limits:\n  per_client: {burst: x, rate: 1}\n" T_MINIMAL, 2, 26,
                   "unknown key 'rate' in 'limits.per_client'");
}
