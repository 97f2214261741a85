/* proxy/upstream.c: routing a client's SNI to a tenant (exact, one-label
 * wildcard, catch-all) and picking backends (round robin, down marks). Pure:
 * no network. */
#include "proxy/net/upstream.h"

#include "conf/conf.h"

#include <criterion/criterion.h>
#include <string.h>

static tf_conf_t *conf;
static tf_upstream_t *up;

static void load(const char *yaml)
{
    char err[2048] = "";
    cr_assert_eq(tf_conf_load_buffer("test.yaml", yaml, strlen(yaml), &conf, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(tf_upstream_new(conf, &up, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    tf_upstream_free(up);
    tf_conf_unref(conf);
    up = NULL;
    conf = NULL;
}

TestSuite(proxy_upstream, .fini = teardown, .timeout = 10);

static const char *const with_catch_all =
    "listen:\n  https: [\"127.0.0.1:8443\"]\n"
    "tls:\n  certs: []\n  default_cert: /x.pem\n"
    "tenants:\n"
    "  acme:\n    hosts: [\"portal.acme.example\", \"*.api.acme.example\"]\n"
    "    backends: [\"10.0.0.1:80\", \"10.0.0.2:80\", \"[::1]:80\"]\n"
    "  fallback:\n    hosts: [\"*\"]\n    backends: [\"127.0.0.1:8080\"]\n";

static const char *route(const char *sni)
{
    uint32_t t = tf_upstream_route(up, sni);
    return t == TF_UPSTREAM_NONE ? "(none)" : tf_upstream_tenant_name(up, t);
}

Test(proxy_upstream, exact_then_wildcard_then_catch_all)
{
    load(with_catch_all);
    cr_expect_str_eq(route("portal.acme.example"), "acme");
    cr_expect_str_eq(route("PORTAL.Acme.Example."), "acme", "case and one trailing dot");
    cr_expect_str_eq(route("v1.api.acme.example"), "acme");
    cr_expect_str_eq(route("a.v1.api.acme.example"), "fallback", "a wildcard covers one label");
    cr_expect_str_eq(route("api.acme.example"), "fallback", "not the wildcard's base");
    cr_expect_str_eq(route("other.example"), "fallback");
    cr_expect_str_eq(route(NULL), "fallback", "no SNI");
    cr_expect_str_eq(route(""), "fallback");
    cr_expect_str_eq(route(".api.acme.example"), "fallback", "empty first label");
}

Test(proxy_upstream, no_catch_all_means_no_tenant)
{
    load("listen:\n  https: [\"127.0.0.1:8443\"]\n"
         "tls:\n  certs: []\n  default_cert: /x.pem\n"
         "tenants:\n  one:\n    hosts: [\"a.example\"]\n    backends: [\"127.0.0.1:1\"]\n");
    cr_expect_str_eq(route("a.example"), "one");
    cr_expect_str_eq(route("b.example"), "(none)");
    cr_expect_str_eq(route(NULL), "(none)");
}

Test(proxy_upstream, round_robin_skips_backends_marked_down)
{
    load(with_catch_all);
    uint32_t t = tf_upstream_route(up, "portal.acme.example");
    cr_assert_eq(tf_upstream_backend_count(up, t), 3);
    cr_expect_eq(tf_upstream_pick(up, t, 1000), 0);
    cr_expect_eq(tf_upstream_pick(up, t, 1000), 1);
    cr_expect_eq(tf_upstream_pick(up, t, 1000), 2);
    cr_expect_eq(tf_upstream_pick(up, t, 1000), 0);
    tf_upstream_mark_down(up, t, 1, 1000);
    cr_expect_eq(tf_upstream_pick(up, t, 1000), 2, "1 is down");
    cr_expect_eq(tf_upstream_pick(up, t, 1000), 0);
    tf_upstream_mark_down(up, t, 0, 1100);
    tf_upstream_mark_down(up, t, 2, 1200);
    cr_expect_eq(tf_upstream_pick(up, t, 2000), 1, "all down: the one due back first");
    cr_expect_neq(tf_upstream_pick(up, t, 1000 + TF_UPSTREAM_DOWN_MS), TF_UPSTREAM_NONE,
                  "back after the down period");
    const tf_backend_t *b = tf_upstream_backend(up, t, 2);
    cr_expect_str_eq(b->text, "[::1]:80");
    cr_expect_eq(b->addr.sa.sa_family, AF_INET6);
}

Test(proxy_upstream, unhealthy_backends_are_skipped_and_none_healthy_is_none)
{
    load(with_catch_all);
    uint32_t t = tf_upstream_route(up, "portal.acme.example");
    cr_expect(tf_upstream_set_healthy(up, t, 0, false), "a change");
    cr_expect_not(tf_upstream_set_healthy(up, t, 0, false), "no change");
    for (int i = 0; i < 4; i++)
        cr_expect_neq(tf_upstream_pick(up, t, 1000), 0, "0 is unhealthy");
    tf_upstream_mark_down(up, t, 1, 1000);
    tf_upstream_mark_down(up, t, 2, 1000);
    cr_expect_neq(tf_upstream_pick(up, t, 2000), 0, "marked down still beats unhealthy");
    tf_upstream_set_healthy(up, t, 1, false);
    tf_upstream_set_healthy(up, t, 2, false);
    cr_expect_eq(tf_upstream_pick(up, t, 2000), TF_UPSTREAM_NONE, "none healthy");
    cr_expect(tf_upstream_set_healthy(up, t, 2, true));
    cr_expect_eq(tf_upstream_pick(up, t, 2000), 2, "healthy again, down mark cleared");
}
