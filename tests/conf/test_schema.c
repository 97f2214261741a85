/* Every key of SPEC §3: its default when absent and the exact value stored
 * when set; the object's lifetime. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <string.h>

Test(defaults, every_key_has_its_default)
{
    tf_conf_t *c = t_load(T_MINIMAL);
    cr_expect_str_eq(tf_conf_source(c), T_NAME);
    cr_expect_eq(tf_conf_workers(c), 1);
    cr_expect_null(tf_conf_user(c));

    const tf_conf_log_t *log = tf_conf_log(c);
    cr_expect_eq(log->level, TF_CONF_LOG_INFO);
    cr_expect_eq(log->format, TF_CONF_LOG_TEXT);
    cr_expect_eq(log->access, TF_CONF_ACCESS_STDOUT);
    cr_expect_null(log->access_path);

    cr_expect_eq(tf_conf_listen_http(c)->count, 0);

    const tf_conf_admin_t *admin = tf_conf_admin(c);
    cr_expect_not(admin->enabled);
    cr_expect_str_eq(admin->listen.text, "127.0.0.1:9443");
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

    cr_expect(tf_conf_http2(c)->enabled);
    cr_expect_eq(tf_conf_http2(c)->max_concurrent_streams, TF_CONF_H2_STREAMS_DEFAULT);
    cr_expect_eq(tf_conf_http2(c)->max_concurrent_streams, 100);

    cr_assert_eq(tf_conf_tenant_count(c), 1);
    const tf_conf_tenant_t *tn = tf_conf_tenant(c, 0);
    cr_expect_str_eq(tn->name, "t");
    cr_expect_eq(tn->mode, TF_CONF_MODE_HTTP);
    cr_expect_not(tn->routes[0].health.enabled);
    cr_expect_str_eq(tn->routes[0].health.path, "/health");
    cr_expect_eq(tn->routes[0].health.interval_ms, 5000);
    tf_conf_unref(c);
}

Test(defaults, empty_sections_mean_defaults)
{
    tf_conf_t *c = t_load("log:\ntimeouts:\nlimits: {}\ntls: {}\nacme:\nhttp2:\n" T_MINIMAL);
    cr_expect_eq(tf_conf_log(c)->level, TF_CONF_LOG_INFO);
    cr_expect(tf_conf_http2(c)->enabled);
    cr_expect_eq(tf_conf_http2(c)->max_concurrent_streams, 100);
    cr_expect_eq(tf_conf_timeouts(c)->idle_ms, 60000);
    cr_expect_eq(tf_conf_limits(c)->max_connections, 10000);
    cr_expect_str_eq(tf_conf_acme_webroot(c), "/var/lib/tlsfront/acme");
    tf_conf_unref(c);
}

Test(keys, workers)
{
    tf_conf_t *c = t_load("workers: auto\n" T_MINIMAL);
    cr_expect_eq(tf_conf_workers(c), 0);
    tf_conf_unref(c);
    c = t_load("workers: 256\n" T_MINIMAL);
    cr_expect_eq(tf_conf_workers(c), 256);
    tf_conf_unref(c);
    c = t_load("workers: \"4\"\n" T_MINIMAL);
    cr_expect_eq(tf_conf_workers(c), 4);
    tf_conf_unref(c);
}

Test(keys, user)
{
    tf_conf_t *c = t_load("user: tlsfront\n" T_MINIMAL);
    cr_expect_str_eq(tf_conf_user(c), "tlsfront");
    tf_conf_unref(c);
    c = t_load("user: ~\n" T_MINIMAL);
    cr_expect_null(tf_conf_user(c));
    tf_conf_unref(c);
    c = t_load("user: null\n" T_MINIMAL);
    cr_expect_null(tf_conf_user(c));
    tf_conf_unref(c);
    c = t_load("user:\n" T_MINIMAL);
    cr_expect_null(tf_conf_user(c));
    tf_conf_unref(c);
    c = t_load("user: \"null\"\n" T_MINIMAL); /* quoted: a user called null */
    cr_expect_str_eq(tf_conf_user(c), "null");
    tf_conf_unref(c);
}

Test(keys, log)
{
    tf_conf_t *c = t_load("log: {level: debug, access: /var/log/tlsfront/access.log, "
                          "format: json}\n" T_MINIMAL);
    const tf_conf_log_t *log = tf_conf_log(c);
    cr_expect_eq(log->level, TF_CONF_LOG_DEBUG);
    cr_expect_eq(log->format, TF_CONF_LOG_JSON);
    cr_expect_eq(log->access, TF_CONF_ACCESS_FILE);
    cr_expect_str_eq(log->access_path, "/var/log/tlsfront/access.log");
    tf_conf_unref(c);
    c = t_load("log: {level: error, access: off}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_log(c)->level, TF_CONF_LOG_ERROR);
    cr_expect_eq(tf_conf_log(c)->access, TF_CONF_ACCESS_OFF);
    cr_expect_null(tf_conf_log(c)->access_path);
    tf_conf_unref(c);
    c = t_load("log: {level: warn, access: stdout}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_log(c)->level, TF_CONF_LOG_WARN);
    cr_expect_eq(tf_conf_log(c)->access, TF_CONF_ACCESS_STDOUT);
    tf_conf_unref(c);
}

Test(keys, listen_ipv6_and_http)
{
    tf_conf_t *c = t_load("listen:\n  https: [\"[::]:443\", \"0.0.0.0:443\", \"localhost:8443\"]\n"
                          "  http: [\"[::1]:80\"]\n" T_TENANT);
    const tf_conf_addr_list_t *l = tf_conf_listen_https(c);
    cr_assert_eq(l->count, 3);
    cr_expect_eq(l->items[0].family, TF_CONF_ADDR_IPV6);
    cr_expect_str_eq(l->items[0].host, "::");
    cr_expect_eq(l->items[0].port, 443);
    cr_expect_str_eq(l->items[0].text, "[::]:443");
    cr_expect_eq(l->items[1].family, TF_CONF_ADDR_IPV4);
    cr_expect_str_eq(l->items[1].host, "0.0.0.0");
    cr_expect_eq(l->items[2].family, TF_CONF_ADDR_NAME);
    cr_expect_str_eq(l->items[2].host, "localhost");
    cr_expect_eq(l->items[2].port, 8443);
    l = tf_conf_listen_http(c);
    cr_assert_eq(l->count, 1);
    cr_expect_eq(l->items[0].family, TF_CONF_ADDR_IPV6);
    cr_expect_str_eq(l->items[0].host, "::1");
    cr_expect_eq(l->items[0].port, 80);
    tf_conf_unref(c);
}

Test(keys, listen_http_null_or_empty_means_none)
{
    tf_conf_t *c = t_load("listen:\n  https: [\"127.0.0.1:443\"]\n  http: []\n" T_TENANT);
    cr_expect_eq(tf_conf_listen_http(c)->count, 0);
    tf_conf_unref(c);
    c = t_load("listen:\n  https: [\"127.0.0.1:443\"]\n  http: ~\n" T_TENANT);
    cr_expect_eq(tf_conf_listen_http(c)->count, 0);
    tf_conf_unref(c);
}

Test(keys, admin)
{
    tf_conf_t *c = t_load("admin: {}\n" T_MINIMAL);
    cr_expect(tf_conf_admin(c)->enabled);
    cr_expect_str_eq(tf_conf_admin(c)->listen.host, "127.0.0.1");
    cr_expect_eq(tf_conf_admin(c)->listen.port, 9443);
    cr_expect_null(tf_conf_admin(c)->token_file);
    tf_conf_unref(c);
    c = t_load(
        "admin:\n  listen: \"[::1]:9000\"\n  token_file: /etc/tlsfront/admin.token\n" T_MINIMAL);
    const tf_conf_admin_t *a = tf_conf_admin(c);
    cr_expect(a->enabled);
    cr_expect_eq(a->listen.family, TF_CONF_ADDR_IPV6);
    cr_expect_eq(a->listen.port, 9000);
    cr_expect_str_eq(a->token_file, "/etc/tlsfront/admin.token");
    tf_conf_unref(c);
    c = t_load("admin: ~\n" T_MINIMAL); /* null: as if absent */
    cr_expect_not(tf_conf_admin(c)->enabled);
    tf_conf_unref(c);
}

Test(keys, acme)
{
    tf_conf_t *c = t_load("acme: {webroot: /srv/acme}\n" T_MINIMAL);
    cr_expect_str_eq(tf_conf_acme_webroot(c), "/srv/acme");
    tf_conf_unref(c);
    c = t_load("acme: {webroot: null}\n" T_MINIMAL);
    cr_expect_null(tf_conf_acme_webroot(c));
    tf_conf_unref(c);
}

Test(keys, tls)
{
    tf_conf_t *c = t_load("tls:\n  certs: [/a, /b/c.pem]\n  default_cert: /a/sys.pem\n"
                          "  unknown_sni: reject\n  min_version: 1.3\n"
                          "  ticket_keys_file: /etc/tlsfront/ticket.keys\n" T_MINIMAL);
    const tf_conf_tls_t *t = tf_conf_tls(c);
    cr_assert_eq(t->certs.count, 2);
    cr_expect_str_eq(t->certs.items[0], "/a");
    cr_expect_str_eq(t->certs.items[1], "/b/c.pem");
    cr_expect_str_eq(t->default_cert, "/a/sys.pem");
    cr_expect_eq(t->unknown_sni, TF_CONF_SNI_REJECT);
    cr_expect_eq(t->min_version, TF_CONF_TLS_1_3);
    cr_expect_str_eq(t->ticket_keys_file, "/etc/tlsfront/ticket.keys");
    tf_conf_unref(c);
    c = t_load("tls: {certs: [], min_version: \"1.2\", unknown_sni: default}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_tls(c)->certs.count, 0);
    cr_expect_eq(tf_conf_tls(c)->min_version, TF_CONF_TLS_1_2);
    tf_conf_unref(c);
}

Test(keys, timeouts)
{
    tf_conf_t *c =
        t_load("timeouts:\n  handshake: 500ms\n  request_header: 2s\n  idle: 5m\n"
               "  connect: 1s\n  response: 2m\n  tunnel: 168h\n  drain: 1ms\n" T_MINIMAL);
    const tf_conf_timeouts_t *t = tf_conf_timeouts(c);
    cr_expect_eq(t->handshake_ms, 500);
    cr_expect_eq(t->request_header_ms, 2000);
    cr_expect_eq(t->idle_ms, 300000);
    cr_expect_eq(t->connect_ms, 1000);
    cr_expect_eq(t->response_ms, 120000);
    cr_expect_eq(t->tunnel_ms, TF_CONF_TIMEOUT_MAX_MS);
    cr_expect_eq(t->drain_ms, 1);
    tf_conf_unref(c);
}

Test(keys, limits_bounds_are_inclusive)
{
    tf_conf_t *c = t_load("limits: {max_connections: 1, max_header_bytes: 1024}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_limits(c)->max_connections, 1);
    cr_expect_eq(tf_conf_limits(c)->max_header_bytes, 1024);
    tf_conf_unref(c);
    c = t_load("limits: {max_connections: 1000000, max_header_bytes: 1048576}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_limits(c)->max_connections, 1000000);
    cr_expect_eq(tf_conf_limits(c)->max_header_bytes, 1048576);
    tf_conf_unref(c);
    c = t_load("limits: {max_header_fields: 8}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_limits(c)->max_header_fields, 8);
    tf_conf_unref(c);
    c = t_load("limits: {max_header_fields: 1000}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_limits(c)->max_header_fields, 1000);
    tf_conf_unref(c);
}

Test(keys, http2)
{
    tf_conf_t *c = t_load("http2:\n  enabled: false\n  max_concurrent_streams: 1\n" T_MINIMAL);
    cr_expect_not(tf_conf_http2(c)->enabled);
    cr_expect_eq(tf_conf_http2(c)->max_concurrent_streams, 1);
    tf_conf_unref(c);
    c = t_load("http2: {enabled: true, max_concurrent_streams: 1000}\n" T_MINIMAL);
    cr_expect(tf_conf_http2(c)->enabled);
    cr_expect_eq(tf_conf_http2(c)->max_concurrent_streams, TF_CONF_H2_STREAMS_MAX);
    tf_conf_unref(c);
    /* Each key alone keeps the other's default. */
    c = t_load("http2: {enabled: false}\n" T_MINIMAL);
    cr_expect_not(tf_conf_http2(c)->enabled);
    cr_expect_eq(tf_conf_http2(c)->max_concurrent_streams, 100);
    tf_conf_unref(c);
    c = t_load("http2: {max_concurrent_streams: 250}\n" T_MINIMAL);
    cr_expect(tf_conf_http2(c)->enabled);
    cr_expect_eq(tf_conf_http2(c)->max_concurrent_streams, 250);
    tf_conf_unref(c);
}

Test(keys, tenant_fields)
{
    tf_conf_t *c = t_load(T_LISTEN "tenants:\n"
                                   "  sip:\n"
                                   "    hosts: [\"SIP.Example.\", \"*.voice.example\"]\n"
                                   "    backends: [\"pbx.internal:5060\", \"[fd00::5]:5060\"]\n"
                                   "    mode: tcp\n"
                                   "    health: {interval: 100ms}\n"
                                   "  web:\n"
                                   "    hosts: [\"*\"]\n"
                                   "    backends: [\"127.0.0.1:8080\"]\n"
                                   "    health: {path: /status?full=1}\n");
    cr_assert_eq(tf_conf_tenant_count(c), 2);
    const tf_conf_tenant_t *t = tf_conf_tenant(c, 0);
    cr_expect_str_eq(t->name, "sip");
    cr_expect_eq(t->line, 4);
    cr_expect_eq(t->column, 3);
    cr_assert_eq(t->hosts.count, 2);
    cr_expect_str_eq(t->hosts.items[0], "sip.example");
    cr_expect_str_eq(t->hosts.items[1], "*.voice.example");
    cr_assert_eq(t->routes[0].backends.count, 2);
    cr_expect_eq(t->routes[0].backends.items[0].addr.family, TF_CONF_ADDR_NAME);
    cr_expect_str_eq(t->routes[0].backends.items[0].addr.host, "pbx.internal");
    cr_expect_eq(t->routes[0].backends.items[0].addr.port, 5060);
    cr_expect_eq(t->routes[0].backends.items[1].addr.family, TF_CONF_ADDR_IPV6);
    cr_expect_str_eq(t->routes[0].backends.items[1].addr.host, "fd00::5");
    cr_expect_eq(t->mode, TF_CONF_MODE_TCP);
    cr_expect(t->routes[0].health.enabled);
    cr_expect_str_eq(t->routes[0].health.path, "/health");
    cr_expect_eq(t->routes[0].health.interval_ms, 100);

    t = tf_conf_tenant(c, 1);
    cr_expect_str_eq(t->name, "web");
    cr_expect_eq(t->line, 9);
    cr_expect_str_eq(t->hosts.items[0], "*");
    cr_expect_eq(t->mode, TF_CONF_MODE_HTTP);
    cr_expect(t->routes[0].health.enabled);
    cr_expect_str_eq(t->routes[0].health.path, "/status?full=1");
    cr_expect_eq(t->routes[0].health.interval_ms, 5000);

    cr_expect_eq(tf_conf_tenant_find(c, "web"), t);
    cr_expect_null(tf_conf_tenant_find(c, "nope"));
    tf_conf_unref(c);
}

Test(lifetime, refcount_keeps_values_alive)
{
    tf_conf_t *c = t_load(T_MINIMAL);
    cr_expect_eq(tf_conf_ref(c), c);
    const tf_conf_tenant_t *t = tf_conf_tenant(c, 0);
    tf_conf_unref(c);
    /* One reference left: everything is still readable (ASan would say). */
    cr_expect_str_eq(t->name, "t");
    cr_expect_str_eq(t->hosts.items[0], "a.example");
    tf_conf_unref(c);
    cr_expect_null(tf_conf_ref(NULL));
    tf_conf_unref(NULL);
}

Test(lifetime, aliases_and_anchors_are_followed)
{
    tf_conf_t *c = t_load(T_LISTEN "tenants:\n"
                                   "  a:\n"
                                   "    hosts: [a.example]\n"
                                   "    backends: &be [\"10.0.0.1:80\", \"10.0.0.2:80\"]\n"
                                   "  b:\n"
                                   "    hosts: [b.example]\n"
                                   "    backends: *be\n");
    cr_expect_eq(tf_conf_tenant(c, 1)->routes[0].backends.count, 2);
    cr_expect_eq(tf_conf_tenant(c, 1)->routes[0].backends.items[1].addr.port, 80);
    tf_conf_unref(c);
}

/* listen.proxy_protocol (SPEC §14): off by default; on, it needs `from`. */
Test(schema, listen_proxy_protocol)
{
    tf_conf_t *c = t_load(T_MINIMAL);
    cr_expect_not(tf_conf_proxy_protocol(c)->enabled);
    cr_expect_eq(tf_conf_proxy_protocol(c)->from.count, 0u);
    tf_conf_unref(c);
    c = t_load("listen:\n  https: [\"127.0.0.1:8443\"]\n"
               "  proxy_protocol: {enabled: true, from: [\"10.0.0.0/8\", \"192.0.2.7\"]}\n" T_TENANT);
    const tf_conf_proxy_protocol_t *pp = tf_conf_proxy_protocol(c);
    cr_expect(pp->enabled);
    cr_assert_eq(pp->from.count, 2u);
    cr_expect_eq(pp->from.items[0].bits, 8);
    cr_expect_eq(pp->from.items[1].bits, 32);
    tf_conf_unref(c);
    t_expect_error("listen:\n  https: [\"127.0.0.1:8443\"]\n"
                   "  proxy_protocol:\n    enabled: true\n" T_TENANT,
                   4, 14, "listen.proxy_protocol.from: required when enabled");
    t_expect_error("listen:\n  https: [\"127.0.0.1:8443\"]\n"
                   "  proxy_protocol: {enabled: true, from: [\"10.0.0.0/33\"]}\n" T_TENANT,
                   3, 42, "listen.proxy_protocol.from");
}

/* A tenant's send_proxy (SPEC §14): false by default, v1 or v2. */
Test(schema, tenant_send_proxy)
{
    tf_conf_t *c = t_load(T_LISTEN "tenants:\n  t:\n    hosts: [\"a.example\"]\n"
                                   "    backends: [\"127.0.0.1:8080\"]\n"
                                   "  u:\n    hosts: [\"b.example\"]\n"
                                   "    backends: [\"127.0.0.1:8080\"]\n    send_proxy: v2\n"
                                   "  w:\n    hosts: [\"c.example\"]\n    mode: tcp\n"
                                   "    backends: [\"127.0.0.1:5060\"]\n    send_proxy: v1\n");
    cr_assert_eq(tf_conf_tenant_count(c), 3u);
    cr_expect_eq(tf_conf_tenant(c, 0)->send_proxy, TF_CONF_SEND_PROXY_OFF);
    cr_expect_eq(tf_conf_tenant(c, 1)->send_proxy, TF_CONF_SEND_PROXY_V2);
    cr_expect_eq(tf_conf_tenant(c, 2)->send_proxy, TF_CONF_SEND_PROXY_V1);
    tf_conf_unref(c);
    t_expect_error(T_LISTEN "tenants:\n  t:\n    hosts: [\"a.example\"]\n"
                            "    backends: [\"127.0.0.1:8080\"]\n    send_proxy: v3\n",
                   7, 17, "send_proxy");
}
