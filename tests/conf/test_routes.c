/* SPEC §11 as loaded: every default of the new keys, routes[0] as the
 * tenant's own keys, inheritance (whole keys, `allow: []` opening a route,
 * timeouts falling back route, tenant, global), backend forms, error pages
 * read at load and limits.per_client. */
#include "helpers.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Lines 1-5; tenant t's keys follow at line 6, column 5. */
#define HEAD T_LISTEN "tenants:\n  t:\n    hosts: [a.example]\n"

Test(defaults, a_tenant_is_its_own_slash_route_with_every_default)
{
    tf_conf_t *c = t_load(T_MINIMAL);
    const tf_conf_tenant_t *t = tf_conf_tenant(c, 0);
    cr_assert_eq(t->nroutes, 1);
    const tf_conf_route_t *r = &t->routes[0];
    cr_expect_str_eq(r->path, "/");
    cr_expect_eq(r->kind, TF_CONF_ROUTE_BACKENDS);
    cr_assert_eq(r->backends.count, 1);
    cr_expect_str_eq(r->backends.items[0].addr.text, "127.0.0.1:8080");
    cr_expect_eq(r->backends.items[0].addr.port, 8080);
    cr_expect_eq(r->backends.items[0].weight, 1);
    cr_expect_not(r->backends.items[0].backup);
    cr_expect_eq(r->backends.items[0].max_conns, 0);
    cr_expect_eq(r->balance, TF_CONF_BALANCE_ROUND_ROBIN);
    cr_expect_str_eq(r->cookie, "TFSRV");
    cr_expect_not(r->health.enabled);
    cr_expect_str_eq(r->health.path, "/health");
    cr_expect_eq(r->health.interval_ms, 5000);
    cr_expect_eq(r->health.timeout_ms, 2000);
    cr_expect_eq(r->health.rise, 2);
    cr_expect_eq(r->health.fall, 3);
    cr_expect_eq(r->health.status_min, 200);
    cr_expect_eq(r->health.status_max, 399);
    cr_expect_null(r->health.host);
    cr_expect_eq(r->timeouts.connect_ms, 5000);
    cr_expect_eq(r->timeouts.response_ms, 60000);
    cr_expect_eq(r->timeouts.idle_ms, 60000);
    cr_expect_eq(r->timeouts.tunnel_ms, 3600000);
    cr_expect_eq(r->request_headers.nset, 0);
    cr_expect_eq(r->request_headers.remove.count, 0);
    cr_expect_eq(r->response_headers.nset, 0);
    cr_expect_eq(r->response_headers.remove.count, 0);
    cr_expect_eq(r->allow.count, 0);
    cr_expect_eq(r->errors.count, 0);
    cr_expect_not(r->strip_prefix);
    cr_expect_not(r->websocket);
    cr_expect_null(r->redirect);
    cr_expect_eq(r->redirect_status, 308);
    cr_expect_eq(r->respond_status, 200);
    cr_expect_str_eq(r->respond_content_type, "text/plain; charset=utf-8");
    cr_expect_str_eq(r->respond_body, "");
    cr_expect_eq(r->respond_body_len, 0);
    cr_expect_eq(r->line, 4);
    cr_expect_eq(r->column, 3);
    const tf_conf_limits_t *l = tf_conf_limits(c);
    cr_expect_eq(l->per_client_connections, 0);
    cr_expect_eq(l->per_client_rps, 0);
    cr_expect_eq(l->per_client_burst, 0);
    tf_conf_unref(c);
}

Test(defaults, health_keys_and_a_short_interval)
{
    tf_conf_t *c = t_load(HEAD "    backends: [\"a:1\"]\n"
                               "    health: {interval: 500ms}\n");
    const tf_conf_health_t *h = &tf_conf_tenant(c, 0)->routes[0].health;
    cr_expect(h->enabled);
    cr_expect_eq(h->interval_ms, 500);
    cr_expect_eq(h->timeout_ms, 500, "a timeout left out stays within the interval");
    tf_conf_unref(c);

    c = t_load(HEAD "    backends: [\"a:1\"]\n"
                    "    health: {path: /ok, interval: 10s, timeout: 3s, rise: 4, fall: 5,\n"
                    "             status: \"204\", host: portal.example}\n");
    h = &tf_conf_tenant(c, 0)->routes[0].health;
    cr_expect_str_eq(h->path, "/ok");
    cr_expect_eq(h->interval_ms, 10000);
    cr_expect_eq(h->timeout_ms, 3000);
    cr_expect_eq(h->rise, 4);
    cr_expect_eq(h->fall, 5);
    cr_expect_eq(h->status_min, 204);
    cr_expect_eq(h->status_max, 204);
    cr_expect_str_eq(h->host, "portal.example");
    tf_conf_unref(c);

    c = t_load(HEAD "    backends: [\"a:1\"]\n"
                    "    health: {status: 200-299}\n");
    h = &tf_conf_tenant(c, 0)->routes[0].health;
    cr_expect_eq(h->status_min, 200);
    cr_expect_eq(h->status_max, 299);
    tf_conf_unref(c);
}

Test(defaults, backend_maps_and_strings_mix)
{
    tf_conf_t *c =
        t_load(HEAD "    backends:\n"
                    "      - \"10.0.0.5:8080\"\n"
                    "      - {address: \"[fd00::6]:8080\", weight: 256, max_conns: 1000000}\n"
                    "      - address: spare.internal:8080\n"
                    "        backup: true\n");
    const tf_conf_backend_list_t *b = &tf_conf_tenant(c, 0)->routes[0].backends;
    cr_assert_eq(b->count, 3);
    cr_expect_str_eq(b->items[0].addr.host, "10.0.0.5");
    cr_expect_eq(b->items[0].weight, 1);
    cr_expect_eq(b->items[1].addr.family, TF_CONF_ADDR_IPV6);
    cr_expect_str_eq(b->items[1].addr.text, "[fd00::6]:8080");
    cr_expect_eq(b->items[1].weight, 256);
    cr_expect_eq(b->items[1].max_conns, 1000000);
    cr_expect_not(b->items[1].backup);
    cr_expect_str_eq(b->items[2].addr.host, "spare.internal");
    cr_expect(b->items[2].backup);
    cr_expect_eq(b->items[2].weight, 1);
    tf_conf_unref(c);
}

Test(defaults, limits_per_client)
{
    tf_conf_t *c =
        t_load("limits:\n  per_client: {connections: 20, requests_per_second: 50}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_limits(c)->per_client_connections, 20);
    cr_expect_eq(tf_conf_limits(c)->per_client_rps, 50);
    cr_expect_eq(tf_conf_limits(c)->per_client_burst, 50, "burst 0 with a rate is the rate");
    tf_conf_unref(c);
    c = t_load("limits:\n  per_client: {requests_per_second: 1000000, burst: 7}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_limits(c)->per_client_rps, 1000000);
    cr_expect_eq(tf_conf_limits(c)->per_client_burst, 7);
    tf_conf_unref(c);
}

Test(defaults, header_rules_allow_and_kinds)
{
    tf_conf_t *c =
        t_load(HEAD "    redirect: \"https://b.example/new/\"\n"
                    "    redirect_status: 302\n"
                    "    headers:\n"
                    "      request: {set: {X-Tenant: acme, X-Empty: \"\"}, remove: [Cookie2]}\n"
                    "      response:\n"
                    "        set: {Strict-Transport-Security: \"max-age=31536000\"}\n"
                    "        remove: [Server, X-Powered-By]\n"
                    "    allow: [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\", \"::1\"]\n"
                    "    routes:\n"
                    "      - path: /robots.txt\n"
                    "        respond: {status: 404, content_type: text/html, body: \"no\\n\"}\n"
                    "      - path: /app/\n"
                    "        backends: [\"a:1\"]\n");
    const tf_conf_tenant_t *t = tf_conf_tenant(c, 0);
    cr_assert_eq(t->nroutes, 3);
    const tf_conf_route_t *r = &t->routes[0];
    cr_expect_eq(r->kind, TF_CONF_ROUTE_REDIRECT);
    cr_expect_str_eq(r->redirect, "https://b.example/new/");
    cr_expect_eq(r->redirect_status, 302);
    cr_expect_eq(r->backends.count, 0);
    cr_assert_eq(r->request_headers.nset, 2);
    cr_expect_str_eq(r->request_headers.set[0].name, "X-Tenant");
    cr_expect_str_eq(r->request_headers.set[0].value, "acme");
    cr_expect_str_eq(r->request_headers.set[1].value, "");
    cr_assert_eq(r->request_headers.remove.count, 1);
    cr_expect_str_eq(r->request_headers.remove.items[0], "cookie2");
    cr_assert_eq(r->response_headers.nset, 1);
    cr_expect_str_eq(r->response_headers.set[0].name, "Strict-Transport-Security");
    cr_assert_eq(r->response_headers.remove.count, 2);
    cr_expect_str_eq(r->response_headers.remove.items[0], "server");
    cr_expect_str_eq(r->response_headers.remove.items[1], "x-powered-by");
    cr_assert_eq(r->allow.count, 4);
    static const uint8_t ten[16] = {10}, one[16] = {192, 0, 2, 7},
                         db8[16] = {0x20, 0x01, 0x0d, 0xb8}, lo[16] = {[15] = 1};
    cr_expect_eq(r->allow.items[0].family, 4);
    cr_expect_eq(r->allow.items[0].bits, 8);
    cr_expect(memcmp(r->allow.items[0].addr, ten, 16) == 0);
    cr_expect_eq(r->allow.items[1].bits, 32);
    cr_expect(memcmp(r->allow.items[1].addr, one, 16) == 0);
    cr_expect_eq(r->allow.items[2].family, 6);
    cr_expect_eq(r->allow.items[2].bits, 32);
    cr_expect(memcmp(r->allow.items[2].addr, db8, 16) == 0);
    cr_expect_eq(r->allow.items[3].bits, 128);
    cr_expect(memcmp(r->allow.items[3].addr, lo, 16) == 0);

    const tf_conf_route_t *robots = &t->routes[1];
    cr_expect_str_eq(robots->path, "/robots.txt");
    cr_expect_eq(robots->kind, TF_CONF_ROUTE_RESPOND);
    cr_expect_eq(robots->respond_status, 404);
    cr_expect_str_eq(robots->respond_content_type, "text/html");
    cr_expect_str_eq(robots->respond_body, "no\n");
    cr_expect_eq(robots->respond_body_len, 3);
    cr_expect_null(robots->redirect, "redirect is not inherited");
    cr_expect_eq(robots->line, 15);
    cr_expect_eq(robots->column, 15);
    cr_expect_eq(robots->allow.count, 4, "allow is inherited");
    cr_expect_eq(t->routes[2].kind, TF_CONF_ROUTE_BACKENDS);
    tf_conf_unref(c);
}

/* A temporary file holding TEXT; the caller unlinks and frees the path. */
static char *temp_page(const char *text)
{
    char *path = strdup("/tmp/tf-conf-page-XXXXXX");
    cr_assert_not_null(path);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(inherit, every_key_whole_and_timeouts_one_by_one)
{
    char *page = temp_page("<h1>back soon</h1>\n");
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "timeouts: {response: 30s, tunnel: 2h}\n" HEAD
             "    backends: [\"10.0.0.5:8080\", \"10.0.0.6:8080\"]\n"
             "    balance: least_conn\n"
             "    cookie: SESS\n"
             "    health: {path: /h, interval: 10s}\n"
             "    timeouts: {connect: 1s}\n"
             "    headers: {response: {set: {Strict-Transport-Security: max-age=1}, remove: "
             "[Server]}}\n"
             "    allow: [\"10.0.0.0/8\"]\n"
             "    errors: {503: %s}\n"
             "    routes:\n"
             "      - path: /a/\n"
             "      - path: /b/\n"
             "        headers: {request: {set: {X-Route: b}}}\n"
             "        allow: []\n"
             "        timeouts: {response: 5m}\n"
             "      - path: /c\n"
             "        backends: [{address: \"10.0.0.7:9000\", weight: 3}]\n"
             "        balance: source\n"
             "        health: null\n"
             "        errors: {}\n"
             "        timeouts: {connect: 2s, idle: 10s, tunnel: 3h}\n"
             "      - path: /ws/\n"
             "        mode: websocket\n"
             "        strip_prefix: true\n",
             page);
    tf_conf_t *c = t_load(yaml);
    const tf_conf_tenant_t *t = tf_conf_tenant(c, 0);
    cr_assert_eq(t->nroutes, 5);
    const tf_conf_route_t *r0 = &t->routes[0], *a = &t->routes[1], *b = &t->routes[2],
                          *cc = &t->routes[3], *ws = &t->routes[4];
    /* routes[0]: its own timeouts key, then the global section's. */
    cr_expect_eq(r0->timeouts.connect_ms, 1000);
    cr_expect_eq(r0->timeouts.response_ms, 30000);
    cr_expect_eq(r0->timeouts.idle_ms, 60000);
    cr_expect_eq(r0->timeouts.tunnel_ms, 7200000);
    cr_assert_eq(r0->errors.count, 1);
    cr_expect_eq(r0->errors.items[0].status, 503);
    cr_expect_str_eq(r0->errors.items[0].file, page);
    cr_expect_str_eq(r0->errors.items[0].body, "<h1>back soon</h1>\n");
    cr_expect_eq(r0->errors.items[0].len, 19);

    /* /a/ writes nothing but its path: everything is the tenant's. */
    cr_expect_str_eq(a->path, "/a/");
    cr_expect_eq(a->kind, TF_CONF_ROUTE_BACKENDS);
    cr_expect_eq(a->backends.items, r0->backends.items);
    cr_expect_eq(a->backends.count, 2);
    cr_expect_eq(a->balance, TF_CONF_BALANCE_LEAST_CONN);
    cr_expect_str_eq(a->cookie, "SESS");
    cr_expect(a->health.enabled);
    cr_expect_str_eq(a->health.path, "/h");
    cr_expect_eq(a->timeouts.connect_ms, 1000);
    cr_expect_eq(a->timeouts.response_ms, 30000);
    cr_expect_eq(a->response_headers.nset, 1);
    cr_expect_eq(a->response_headers.remove.count, 1);
    cr_expect_eq(a->allow.count, 1);
    cr_expect_eq(a->errors.count, 1);
    cr_expect_not(a->websocket);

    /* /b/: its headers replace the tenant's whole; allow: [] opens it. */
    cr_assert_eq(b->request_headers.nset, 1);
    cr_expect_str_eq(b->request_headers.set[0].name, "X-Route");
    cr_expect_eq(b->response_headers.nset, 0, "no merge with the tenant's response rules");
    cr_expect_eq(b->response_headers.remove.count, 0);
    cr_expect_eq(b->allow.count, 0);
    cr_expect_eq(b->timeouts.connect_ms, 1000, "tenant");
    cr_expect_eq(b->timeouts.response_ms, 300000, "route");
    cr_expect_eq(b->timeouts.idle_ms, 60000, "global default");
    cr_expect_eq(b->timeouts.tunnel_ms, 7200000, "global section");

    /* /c: its own backends, balance, no health, no error pages. */
    cr_assert_eq(cc->backends.count, 1);
    cr_expect_eq(cc->backends.items[0].weight, 3);
    cr_expect_eq(cc->balance, TF_CONF_BALANCE_SOURCE);
    cr_expect_not(cc->health.enabled);
    cr_expect_eq(cc->errors.count, 0);
    cr_expect_eq(cc->timeouts.connect_ms, 2000);
    cr_expect_eq(cc->timeouts.response_ms, 30000);
    cr_expect_eq(cc->timeouts.idle_ms, 10000);
    cr_expect_eq(cc->timeouts.tunnel_ms, 10800000);
    cr_expect_str_eq(cc->cookie, "SESS");

    cr_expect(ws->websocket);
    cr_expect(ws->strip_prefix);
    cr_expect_not(a->strip_prefix, "strip_prefix is per route");
    cr_expect_eq(ws->line, 27);
    cr_expect_eq(ws->column, 15);
    tf_conf_unref(c);
    unlink(page);
    free(page);
}

Test(inherit, a_slash_and_no_slash_prefix_are_two_routes)
{
    tf_conf_t *c =
        t_load(HEAD "    backends: [\"a:1\"]\n"
                    "    routes: [{path: /api}, {path: /api/}, {path: \"/x:y@z;v=1\"}]\n");
    const tf_conf_tenant_t *t = tf_conf_tenant(c, 0);
    cr_assert_eq(t->nroutes, 4);
    cr_expect_str_eq(t->routes[1].path, "/api");
    cr_expect_str_eq(t->routes[2].path, "/api/");
    cr_expect_str_eq(t->routes[3].path, "/x:y@z;v=1");
    tf_conf_unref(c);
}

Test(inherit, tcp_tenant_has_one_route)
{
    tf_conf_t *c = t_load(HEAD "    backends: [\"a:1\"]\n"
                               "    mode: tcp\n"
                               "    balance: least_conn\n"
                               "    timeouts: {tunnel: 4h}\n");
    const tf_conf_tenant_t *t = tf_conf_tenant(c, 0);
    cr_expect_eq(t->mode, TF_CONF_MODE_TCP);
    cr_assert_eq(t->nroutes, 1);
    cr_expect_eq(t->routes[0].balance, TF_CONF_BALANCE_LEAST_CONN);
    cr_expect_eq(t->routes[0].timeouts.tunnel_ms, 4 * 3600000);
    tf_conf_unref(c);
}

Test(files, an_error_page_is_relative_to_the_configuration_file)
{
    char dir[] = "/tmp/tf-conf-dir-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char sub[64], page[96], cfg[96], err[4096];
    snprintf(sub, sizeof sub, "%s/errors", dir);
    snprintf(page, sizeof page, "%s/503.html", sub);
    snprintf(cfg, sizeof cfg, "%s/tlsfront.yaml", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    FILE *f = fopen(page, "w");
    cr_assert_not_null(f);
    fputs("busy", f);
    fclose(f);
    f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fputs(T_MINIMAL "    errors: {503: errors/503.html}\n", f);
    fclose(f);
    /* From another working directory: the file's directory counts. */
    cr_assert_eq(chdir("/"), 0);
    tf_conf_t *c = NULL;
    int rc = tf_conf_load_file(cfg, &c, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    const tf_conf_error_pages_t *e = &tf_conf_tenant(c, 0)->routes[0].errors;
    cr_assert_eq(e->count, 1);
    cr_expect_str_eq(e->items[0].file, "errors/503.html");
    cr_expect_str_eq(e->items[0].body, "busy");
    cr_expect_eq(e->items[0].len, 4);
    tf_conf_unref(c);
    unlink(page);
    rmdir(sub);
    rc = tf_conf_load_file(cfg, &c, err, sizeof err);
    cr_expect_eq(rc, TF_ECONF);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:7:19: tenants.t.errors: cannot read '%s': No such file or directory; check the "
             "path (a relative path is taken from the configuration file's directory)",
             cfg, page);
    cr_expect(strstr(err, want) != NULL, "want %s in:\n%s", want, err);
    unlink(cfg);
    rmdir(dir);
}

Test(files, a_page_named_twice_is_read_once)
{
    char *page = temp_page("<p>busy</p>");
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             T_LISTEN
             "tenants:\n"
             "  a: {hosts: [a.example], backends: [\"a:1\"], errors: {503: %s}}\n"
             "  b: {hosts: [b.example], backends: [\"a:1\"], errors: {502: %s, 504: %s}}\n",
             page, page, page);
    tf_conf_t *c = t_load(yaml);
    const tf_conf_error_pages_t *a = &tf_conf_tenant(c, 0)->routes[0].errors;
    const tf_conf_error_pages_t *b = &tf_conf_tenant(c, 1)->routes[0].errors;
    cr_assert_eq(a->count, 1);
    cr_assert_eq(b->count, 2);
    cr_expect_str_eq(a->items[0].body, "<p>busy</p>");
    cr_expect_eq(b->items[0].body, a->items[0].body, "one copy of the file");
    cr_expect_eq(b->items[1].body, a->items[0].body);
    cr_expect_eq(b->items[1].status, 504);
    tf_conf_unref(c);
    unlink(page);
    free(page);
}
