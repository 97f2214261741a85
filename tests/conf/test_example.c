/* The full example of SPEC §3 and the shipped examples/tlsfront.yaml. */
#include "helpers.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SPEC §3, verbatim. */
static const char spec_example[] =
    "workers: 1                      # event-loop threads, or \"auto\" (one per core)\n"
    "user: tlsfront                  # optional: drop privileges after binding\n"
    "log:\n"
    "  level: info                   # error | warn | info | debug\n"
    "  access: stdout                # stdout | off | /path/to/file\n"
    "  format: text                  # text | json\n"
    "listen:\n"
    "  https: [\"0.0.0.0:443\", \"[::]:443\"]\n"
    "  http: [\"0.0.0.0:80\"]          # optional: redirect to https + ACME http-01 (§7)\n"
    "admin:                          # optional: admin API and metrics (§8)\n"
    "  listen: \"127.0.0.1:9443\"\n"
    "  token_file: null              # optional: bearer token required on every admin request\n"
    "acme:\n"
    "  webroot: /var/lib/tlsfront/acme   # served at /.well-known/acme-challenge/ on listen.http\n"
    "tls:\n"
    "  certs: [\"/etc/tlsfront/certs\"]     # files or directories of PEM bundles, watched (§4)\n"
    "  default_cert: /etc/tlsfront/certs/system.pem   # the system certificate\n"
    "  unknown_sni: default          # default | reject\n"
    "  min_version: \"1.2\"            # \"1.2\" | \"1.3\"\n"
    "  ticket_keys_file: null        # optional: shared session-ticket keys (§6)\n"
    "timeouts:                       # durations: 500ms, 10s, 5m, 1h\n"
    "  handshake: 10s\n"
    "  request_header: 10s\n"
    "  idle: 60s\n"
    "  connect: 5s\n"
    "  response: 60s\n"
    "  tunnel: 1h\n"
    "  drain: 30s\n"
    "limits:\n"
    "  max_connections: 10000\n"
    "  max_header_bytes: 32768\n"
    "tenants:\n"
    "  acme:\n"
    "    hosts: [\"portal.acme.example\", \"chat.acme.example\", \"*.api.acme.example\"]\n"
    "    backends: [\"10.0.0.5:8080\", \"10.0.0.6:8080\"]\n"
    "    health: { path: /health, interval: 5s }    # optional active check\n"
    "    mode: http                  # http (default) | tcp (TLS-terminated raw TCP, e.g. "
    "SIP/XMPP)\n"
    "  fallback:\n"
    "    hosts: [\"*\"]                # catch-all for hosts no other tenant lists\n"
    "    backends: [\"127.0.0.1:8080\"]\n";

Test(spec, full_example_loads_with_every_value)
{
    tf_conf_t *c = t_load(spec_example);
    cr_expect_eq(tf_conf_workers(c), 1);
    cr_expect_str_eq(tf_conf_user(c), "tlsfront");
    cr_expect_eq(tf_conf_log(c)->level, TF_CONF_LOG_INFO);
    cr_expect_eq(tf_conf_log(c)->access, TF_CONF_ACCESS_STDOUT);
    cr_expect_eq(tf_conf_log(c)->format, TF_CONF_LOG_TEXT);

    const tf_conf_addr_list_t *https = tf_conf_listen_https(c);
    cr_assert_eq(https->count, 2);
    cr_expect_str_eq(https->items[0].text, "0.0.0.0:443");
    cr_expect_eq(https->items[0].family, TF_CONF_ADDR_IPV4);
    cr_expect_str_eq(https->items[1].host, "::");
    cr_expect_eq(https->items[1].family, TF_CONF_ADDR_IPV6);
    cr_expect_eq(https->items[1].port, 443);
    cr_assert_eq(tf_conf_listen_http(c)->count, 1);
    cr_expect_eq(tf_conf_listen_http(c)->items[0].port, 80);

    const tf_conf_admin_t *admin = tf_conf_admin(c);
    cr_expect(admin->enabled);
    cr_expect_str_eq(admin->listen.host, "127.0.0.1");
    cr_expect_eq(admin->listen.port, 9443);
    cr_expect_null(admin->token_file);
    cr_expect_str_eq(tf_conf_acme_webroot(c), "/var/lib/tlsfront/acme");

    const tf_conf_tls_t *tls = tf_conf_tls(c);
    cr_assert_eq(tls->certs.count, 1);
    cr_expect_str_eq(tls->certs.items[0], "/etc/tlsfront/certs");
    cr_expect_str_eq(tls->default_cert, "/etc/tlsfront/certs/system.pem");
    cr_expect_eq(tls->unknown_sni, TF_CONF_SNI_DEFAULT);
    cr_expect_eq(tls->min_version, TF_CONF_TLS_1_2);
    cr_expect_null(tls->ticket_keys_file);

    const tf_conf_timeouts_t *t = tf_conf_timeouts(c);
    cr_expect_eq(t->handshake_ms, 10000);
    cr_expect_eq(t->request_header_ms, 10000);
    cr_expect_eq(t->idle_ms, 60000);
    cr_expect_eq(t->connect_ms, 5000);
    cr_expect_eq(t->response_ms, 60000);
    cr_expect_eq(t->tunnel_ms, 3600000);
    cr_expect_eq(t->drain_ms, 30000);
    cr_expect_eq(tf_conf_limits(c)->max_connections, 10000);
    cr_expect_eq(tf_conf_limits(c)->max_header_bytes, 32768);
    cr_expect_eq(tf_conf_limits(c)->max_header_fields, 100);

    cr_assert_eq(tf_conf_tenant_count(c), 2);
    const tf_conf_tenant_t *acme = tf_conf_tenant(c, 0);
    cr_expect_str_eq(acme->name, "acme");
    cr_expect_eq(acme->line, 33);
    cr_expect_eq(acme->column, 3);
    cr_assert_eq(acme->hosts.count, 3);
    cr_expect_str_eq(acme->hosts.items[0], "portal.acme.example");
    cr_expect_str_eq(acme->hosts.items[1], "chat.acme.example");
    cr_expect_str_eq(acme->hosts.items[2], "*.api.acme.example");
    cr_assert_eq(acme->routes[0].backends.count, 2);
    cr_expect_str_eq(acme->routes[0].backends.items[0].addr.host, "10.0.0.5");
    cr_expect_eq(acme->routes[0].backends.items[0].addr.port, 8080);
    cr_expect_str_eq(acme->routes[0].backends.items[1].addr.host, "10.0.0.6");
    cr_expect(acme->routes[0].health.enabled);
    cr_expect_str_eq(acme->routes[0].health.path, "/health");
    cr_expect_eq(acme->routes[0].health.interval_ms, 5000);
    cr_expect_eq(acme->mode, TF_CONF_MODE_HTTP);

    const tf_conf_tenant_t *fb = tf_conf_tenant(c, 1);
    cr_expect_str_eq(fb->name, "fallback");
    cr_expect_eq(fb->line, 38);
    cr_assert_eq(fb->hosts.count, 1);
    cr_expect_str_eq(fb->hosts.items[0], "*");
    cr_expect_str_eq(fb->routes[0].backends.items[0].addr.text, "127.0.0.1:8080");
    cr_expect_not(fb->routes[0].health.enabled);
    tf_conf_unref(c);
}

static char *source_path(const char *rel)
{
    const char *src = getenv("TF_SOURCE_DIR");
    cr_assert_not_null(src, "TF_SOURCE_DIR is not set");
    char *p = malloc(strlen(src) + strlen(rel) + 2);
    cr_assert_not_null(p);
    sprintf(p, "%s/%s", src, rel);
    return p;
}

Test(example, shipped_example_loads_clean)
{
    char *path = source_path("examples/tlsfront.yaml");
    char err[8192];
    tf_conf_t *c = NULL;
    int rc = tf_conf_load_file(path, &c, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %s\n%s", path, tf_err_name(rc), err);
    cr_expect_str_empty(err);
    cr_expect_str_eq(tf_conf_source(c), path);
    cr_expect_geq(tf_conf_tenant_count(c), 2);
    cr_expect_geq(tf_conf_listen_https(c)->count, 1);
    cr_expect(tf_conf_http2(c)->enabled);
    cr_expect_eq(tf_conf_http2(c)->max_concurrent_streams, 100);
    tf_conf_unref(c);
    free(path);
}

Test(example, a_config_outlives_a_reload_that_fails)
{
    /* The reload pattern: the running config keeps working whatever the new
     * file says, and both can be held at once. */
    tf_conf_t *running = t_load(spec_example);
    char err[4096];
    tf_conf_t *next = NULL;
    int rc = tf_conf_load_buffer(T_NAME, "workers: x\n", 11, &next, err, sizeof err);
    cr_expect_eq(rc, TF_ECONF);
    cr_expect_null(next);
    next = t_load(T_MINIMAL);
    tf_conf_t *held = tf_conf_ref(running); /* a connection's reference */
    tf_conf_unref(running);                 /* the swap drops the old one */
    cr_expect_eq(tf_conf_tenant_count(held), 2);
    tf_conf_unref(held);
    tf_conf_unref(next);
}

/* The contact-centre site of issue 14 (examples/contact-centre.yaml): what an
 * operator reads in its comments is what loads. */
Test(example, contact_centre_site_loads_as_commented)
{
    char *path = source_path("examples/contact-centre.yaml");
    char err[8192];
    tf_conf_t *c = NULL;
    int rc = tf_conf_load_file(path, &c, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %s\n%s", path, tf_err_name(rc), err);
    const tf_conf_limits_t *l = tf_conf_limits(c);
    cr_expect_eq(l->per_client_connections, 200);
    cr_expect_eq(l->per_client_rps, 50);
    cr_expect_eq(l->per_client_burst, 100);

    const tf_conf_tenant_t *t = tf_conf_tenant_find(c, "acme");
    cr_assert_not_null(t);
    cr_assert_eq(t->nroutes, 5);
    const tf_conf_route_t *portal = &t->routes[0], *chat = &t->routes[1], *api = &t->routes[2],
                          *login = &t->routes[3], *robots = &t->routes[4];
    cr_expect_eq(portal->balance, TF_CONF_BALANCE_COOKIE);
    cr_expect_str_eq(portal->cookie, "ACMESRV");
    cr_assert_eq(portal->backends.count, 3);
    cr_expect(portal->backends.items[2].backup);
    cr_assert_eq(portal->response_headers.nset, 1);
    cr_expect_str_eq(portal->response_headers.set[0].name, "Strict-Transport-Security");
    cr_assert_eq(portal->errors.count, 1);
    cr_expect_eq(portal->errors.items[0].status, 503);
    cr_expect_not_null(strstr(portal->errors.items[0].body, "right back"),
                       "errors/503.html read from beside the configuration");

    cr_expect_str_eq(chat->path, "/chat/");
    cr_expect_eq(chat->balance, TF_CONF_BALANCE_LEAST_CONN);
    cr_expect_eq(chat->timeouts.tunnel_ms, 8ull * 3600 * 1000);
    cr_expect_eq(chat->timeouts.response_ms, 60000);
    cr_expect_str_eq(chat->health.path, "/healthz");
    cr_expect_eq(chat->response_headers.nset, 1, "HSTS inherited");
    cr_expect_eq(chat->errors.count, 1, "the 503 page inherited");

    cr_expect_str_eq(api->path, "/api/");
    cr_expect(api->strip_prefix);
    cr_expect_eq(api->allow.count, 3);
    cr_expect_eq(api->backends.items[0].weight, 2);
    cr_expect_eq(api->backends.items[0].max_conns, 500);
    cr_expect_eq(api->timeouts.response_ms, 30000);
    cr_expect_eq(portal->allow.count, 0, "the portal is open to everyone");

    cr_expect_eq(login->kind, TF_CONF_ROUTE_REDIRECT);
    cr_expect_eq(login->redirect_status, 301);
    cr_expect_eq(robots->kind, TF_CONF_ROUTE_RESPOND);
    cr_expect_str_eq(robots->respond_body, "User-agent: *\nDisallow: /\n");
    tf_conf_unref(c);
    free(path);
}
