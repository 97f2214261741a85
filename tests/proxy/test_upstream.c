/* proxy/upstream.c: routing a client's SNI to a tenant (exact, one-label
 * wildcard, catch-all), picking backends (round robin, passive down marks,
 * health state from the registry), and the registry across tables
 * (reloads). Pure: no network. */
#include "proxy/net/backends.h"
#include "proxy/net/upstream.h"

#include "conf/conf.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

static tf_conf_t *conf;
static tf_upstream_t *up;
static tf_backends_t *reg;

static void load(const char *yaml)
{
    char err[2048] = "";
    cr_assert_eq(tf_conf_load_buffer("test.yaml", yaml, strlen(yaml), &conf, err, sizeof err), 0,
                 "%s", err);
    if (reg == NULL)
        cr_assert_eq(tf_backends_new(&reg), 0);
    cr_assert_eq(tf_upstream_new(conf, reg, &up, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    tf_upstream_free(up);
    tf_conf_unref(conf);
    tf_backends_free(reg);
    up = NULL;
    conf = NULL;
    reg = NULL;
}

/* A pick, its in-flight count given back at once. */
static uint32_t pick(uint32_t t, uint64_t now)
{
    tf_pick_t p = tf_upstream_pick(up, t, 0, NULL, now);
    if (p.backend < tf_upstream_backend_count(up, t, 0))
        tf_upstream_end(up, t, 0, p.backend, false);
    return p.backend;
}

static tf_bstate_t *state(uint32_t t, uint32_t b)
{
    return tf_upstream_backend(up, t, 0, b)->state;
}

/* Health checks with rise 1, fall 1: one result decides. */
static void set_healthy(uint32_t t, uint32_t b, bool ok)
{
    tf_bstate_check_result(state(t, b), ok, ok ? "200" : "status 500", 1, 1);
}

TestSuite(proxy_upstream, .fini = teardown, .timeout = 10);

static void each_acme(const tf_bstate_view_t *v, void *arg)
{
    uint64_t *seen = arg;
    if (strcmp(v->tenant, "acme") == 0 && strcmp(v->address, "10.0.0.2:80") == 0) {
        seen[0] = v->requests[1];
        seen[1] = v->failures;
    }
}

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
    cr_assert_eq(tf_upstream_backend_count(up, t, 0), 3);
    cr_expect_eq(pick(t, 1000), 0);
    cr_expect_eq(pick(t, 1000), 1);
    cr_expect_eq(pick(t, 1000), 2);
    cr_expect_eq(pick(t, 1000), 0);
    tf_bstate_failed(state(t, 1), true, 1000);
    for (int i = 0; i < 4; i++)
        cr_expect_neq(pick(t, 1000), 1, "1 is down");
    tf_bstate_failed(state(t, 0), true, 1100);
    tf_bstate_failed(state(t, 2), true, 1200);
    cr_expect_eq(pick(t, 2000), 1, "all down: the one due back first");
    cr_expect_neq(pick(t, 1000 + TF_BSTATE_DOWN_MS), TF_UPSTREAM_NONE,
                  "back after the down period");
    const tf_backend_t *b = tf_upstream_backend(up, t, 0, 2);
    cr_expect_str_eq(b->text, "[::1]:80");
    cr_expect_eq(b->addr.sa.sa_family, AF_INET6);
}

Test(proxy_upstream, unhealthy_backends_are_skipped_and_none_healthy_is_none)
{
    load(with_catch_all);
    uint32_t t = tf_upstream_route(up, "portal.acme.example");
    set_healthy(t, 0, false);
    cr_expect_eq(tf_bstate_state(state(t, 0), 1000), TF_BSTATE_DOWN);
    for (int i = 0; i < 4; i++)
        cr_expect_neq(pick(t, 1000), 0, "0 is unhealthy");
    tf_bstate_failed(state(t, 1), true, 1000);
    tf_bstate_failed(state(t, 2), true, 1000);
    cr_expect_neq(pick(t, 2000), 0, "marked down still beats unhealthy");
    set_healthy(t, 1, false);
    set_healthy(t, 2, false);
    cr_expect_eq(pick(t, 2000), TF_UPSTREAM_NONE, "none healthy");
    set_healthy(t, 2, true);
    cr_expect_eq(pick(t, 2000), 2, "healthy again, down mark cleared");
}

Test(proxy_upstream, drained_backends_are_never_picked)
{
    load(with_catch_all);
    uint32_t t = tf_upstream_route(up, "portal.acme.example");
    tf_bstate_state_t now;
    for (uint32_t b = 0; b < 3; b++)
        cr_assert_eq(tf_backends_set_admin(reg, "acme", tf_upstream_backend(up, t, 0, b)->text,
                                           b == 0 ? TF_BADMIN_MAINT : TF_BADMIN_DRAIN, &now),
                     0);
    cr_expect_eq(now, TF_BSTATE_DRAIN);
    cr_expect_eq(pick(t, 1000), TF_UPSTREAM_NONE);
    cr_expect_eq(tf_backends_set_admin(reg, "acme", "10.9.9.9:80", TF_BADMIN_READY, &now),
                 TF_ENOTFOUND);
}

static const char *const acme_v2 =
    "listen:\n  https: [\"127.0.0.1:8443\"]\n"
    "tls:\n  certs: []\n  default_cert: /x.pem\n"
    "tenants:\n"
    "  acme:\n    hosts: [\"portal.acme.example\"]\n"
    "    backends: [\"10.0.0.2:80\", \"10.0.0.3:80\"]\n";

/* A reload builds a new table from a new configuration while the old one
 * still serves: what both name keeps its state, what only the old one named
 * goes with it. */
Test(proxy_upstream, registry_state_survives_a_reload_that_keeps_the_backend)
{
    load(with_catch_all);
    uint32_t t = tf_upstream_route(up, "portal.acme.example");
    tf_bstate_failed(state(t, 0), true, 1000); /* 10.0.0.1, removed below */
    tf_bstate_failed(state(t, 1), true, 1000); /* 10.0.0.2, kept */
    tf_bstate_count(state(t, 1), 204);
    tf_upstream_t *old = up;
    tf_conf_t *old_conf = conf;
    load(acme_v2);
    uint32_t t2 = tf_upstream_route(up, "portal.acme.example");
    cr_assert_str_eq(tf_upstream_backend(up, t2, 0, 0)->text, "10.0.0.2:80");
    cr_expect_eq(tf_upstream_backend(up, t2, 0, 0)->state, tf_upstream_backend(old, t, 0, 1)->state,
                 "one entry for (acme, 10.0.0.2:80)");
    tf_upstream_free(old);
    tf_conf_unref(old_conf);
    cr_expect_eq(tf_bstate_state(state(t2, 0), 2000), TF_BSTATE_DOWN, "the down mark carried on");
    cr_expect_eq(tf_bstate_state(state(t2, 1), 2000), TF_BSTATE_UP, "new: up");
    tf_bstate_state_t now;
    cr_expect_eq(tf_backends_set_admin(reg, "acme", "10.0.0.1:80", TF_BADMIN_DRAIN, &now),
                 TF_ENOTFOUND, "removed: its state is gone");
    uint64_t seen[2] = {0, 0};
    tf_backends_each(reg, each_acme, seen);
    cr_expect_eq(seen[0], 1, "10.0.0.2:80's 2xx count kept");
    cr_expect_eq(seen[1], 1, "and its failure");
}
