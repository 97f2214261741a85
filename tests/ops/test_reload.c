/* Reloads while the proxy runs (SPEC §4.5, §5): certificate files renewed,
 * added, broken and garbage, picked up without a signal; SIGHUP with a new
 * tenant and with a broken configuration. Each runs under a background load
 * of handshakes plus one long-lived connection, which must see no failure. */
#include "ops.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tf_ops_t ops;

static void teardown(void)
{
    tf_ops_stop(&ops);
}

TestSuite(ops_reload, .fini = teardown, .timeout = 120);

static void expect_clean_load(void)
{
    char *report = tf_ops_load_stop(&ops);
    cr_expect_gt(tf_ops_report(report, "ok"), 0, "%s", report);
    cr_expect_eq(tf_ops_report(report, "fail"), 0, "%s", report);
    cr_expect_gt(tf_ops_report(report, "long"), 0, "%s", report);
    cr_expect_eq(tf_ops_report(report, "long_fail"), 0, "%s", report);
    free(report);
}

/* Written beside, then renamed over: how certbot and most tools publish. */
static char *renew(const char *file, const char *names)
{
    char tmp[1400], dst[1400];
    snprintf(tmp, sizeof tmp, "%s/renewed.pem", ops.px.tmp);
    snprintf(dst, sizeof dst, "%s/%s", ops.certs, file);
    char *serial = tf_ops_issue(&ops, tmp, "new", names);
    cr_assert_eq(rename(tmp, dst), 0);
    return serial;
}

Test(ops_reload, renewed_bundle_replaces_the_old_one_without_a_signal)
{
    tf_ops_start(&ops, 2, NULL, NULL);
    char *before = tf_ops_serial(&ops, "portal.acme.example");
    cr_assert_neq(before[0], '\0');
    tf_ops_load_start(&ops, "portal.acme.example");
    char *serial = renew("acme.pem", "portal.acme.example chat.acme.example");
    cr_expect(tf_ops_wait_serial(&ops, "portal.acme.example", serial, 15),
              "new handshakes still show the old serial %s, not %s", before, serial);
    cr_expect(tf_ops_wait_log(&ops, "1 replaced", 1, 10));
    expect_clean_load();
    free(serial);
    free(before);
}

/* One worker, so that its cache of tenant contexts (docs/TLS.md) surely
 * holds the context of the old bundle when the file is replaced: the
 * reload's new generation serves the new certificate to every new
 * handshake, and keeps serving it. */
Test(ops_reload, renewed_tenant_replaces_its_cached_context)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    char *before = tf_ops_serial(&ops, "chat.acme.example");
    cr_assert_neq(before[0], '\0');
    for (int i = 0; i < 3; i++) {
        char *again = tf_ops_serial(&ops, "chat.acme.example");
        cr_expect_str_eq(again, before);
        free(again);
    }
    char *serial = renew("acme.pem", "portal.acme.example chat.acme.example");
    cr_expect(tf_ops_wait_serial(&ops, "chat.acme.example", serial, 15),
              "new handshakes still show the old serial %s, not %s", before, serial);
    for (int i = 0; i < 5; i++) {
        char *now = tf_ops_serial(&ops, i % 2 ? "chat.acme.example" : "portal.acme.example");
        cr_expect_str_eq(now, serial);
        free(now);
    }
    free(serial);
    free(before);
}

Test(ops_reload, new_bundle_is_served)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    tf_ops_load_start(&ops, "portal.acme.example");
    char *serial = renew("shop.pem", "shop.example");
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", serial, 15));
    cr_expect(tf_ops_wait_log(&ops, "1 added", 1, 10));
    expect_clean_load();
    free(serial);
}

Test(ops_reload, garbage_file_is_ignored_and_logged)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    tf_ops_load_start(&ops, "portal.acme.example");
    char path[1400];
    snprintf(path, sizeof path, "%s/junk.pem", ops.certs);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("this is not a certificate\n", f);
    fclose(f);
    cr_expect(tf_ops_wait_log(&ops, "junk.pem: not a PEM bundle", 1, 15));
    cr_expect(tf_ops_echo(&ops, "portal.acme.example"));
    expect_clean_load();
}

Test(ops_reload, good_bundle_overwritten_by_a_broken_one_keeps_being_served)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    char *before = tf_ops_serial(&ops, "portal.acme.example");
    tf_ops_load_start(&ops, "portal.acme.example");
    char path[1400];
    snprintf(path, sizeof path, "%s/acme.pem", ops.certs);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    cr_expect(tf_ops_wait_log(&ops, "acme.pem: ", 1, 15));
    cr_expect(tf_ops_wait_log(&ops, "1 failed", 1, 10));
    char *after = tf_ops_serial(&ops, "portal.acme.example");
    cr_expect_str_eq(after, before, "the last good version must stay in service");
    expect_clean_load();
    free(after);
    free(before);
}

#define SHOP_TENANT                                                                                \
    "  shop:\n    hosts: [\"shop.example\"]\n    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n"

Test(ops_reload, sighup_with_a_new_tenant_routes_to_it)
{
    tf_ops_start(&ops, 2, NULL, NULL);
    cr_expect(!tf_ops_echo(&ops, "shop.example"), "no tenant covers shop.example yet");
    tf_ops_load_start(&ops, "portal.acme.example");
    char extra[256];
    snprintf(extra, sizeof extra, SHOP_TENANT, ops.px.backend_port);
    tf_ops_write_config(&ops, extra, NULL);
    kill(ops.px.proxy_pid, SIGHUP);
    cr_expect(tf_ops_wait_log(&ops, "reload (configuration and certificates)", 1, 15));
    bool routed = false;
    for (int i = 0; i < 50 && !routed; i++)
        routed = tf_ops_echo(&ops, "shop.example");
    cr_expect(routed, "the new tenant is not routed");
    expect_clean_load();
}

Test(ops_reload, broken_config_keeps_the_running_one)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    tf_ops_load_start(&ops, "portal.acme.example");
    tf_ops_write_config(&ops, NULL, "tenants:\n  acme:\n    hosts: [\"a\"]\n    bogus: 1\n");
    kill(ops.px.proxy_pid, SIGHUP);
    cr_expect(tf_ops_wait_log(&ops, "configuration has errors: the running one stays", 1, 15));
    char *log = tf_px_log(&ops.px);
    cr_expect_not_null(strstr(log, "tlsfront.yaml:4:"), "every error with its line: %s", log);
    free(log);
    cr_expect(tf_ops_echo(&ops, "portal.acme.example"));
    expect_clean_load();
}

Test(ops_reload, listener_change_needs_a_restart)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    tf_ops_write_config(&ops, NULL, NULL);
    int st;
    char *out = tf_px_sh(&st, "sed -i 's/^workers: 1/workers: 3/' '%s'", ops.config);
    free(out);
    kill(ops.px.proxy_pid, SIGHUP);
    cr_expect(tf_ops_wait_log(&ops, "workers changed: needs a restart", 1, 15));
    cr_expect(tf_ops_echo(&ops, "portal.acme.example"));
}

/* A second SIGTERM while draining is logged, not fatal; SIGUSR1 does not
 * kill either. */
Test(ops_reload, signals_during_drain)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    kill(ops.px.proxy_pid, SIGUSR1);
    cr_expect(tf_ops_wait_log(&ops, "SIGUSR1", 1, 10));
    cr_expect(tf_ops_echo(&ops, "portal.acme.example"));
    tf_ops_load_start(&ops, "portal.acme.example"); /* holds a connection open */
    cr_expect(tf_ops_wait_log(&ops, "handshake done", 2, 10));
    kill(ops.px.proxy_pid, SIGTERM);
    cr_expect(tf_ops_wait_log(&ops, "stopping", 1, 10));
    kill(ops.px.proxy_pid, SIGTERM);
    cr_expect(tf_ops_wait_log(&ops, "already draining", 1, 10));
    /* Its connections gone, the drain ends and tlsfront exits 0 by itself
     * (a third SIGTERM could meet it past its handlers and kill it). */
    free(tf_ops_load_stop(&ops));
    cr_expect_eq(tf_px_wait_proxy(&ops.px), 0);
}

/* SIGHUP with a new certificate source: a new store is built and watched. */
Test(ops_reload, sighup_with_a_new_certificate_source)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    tf_ops_load_start(&ops, "portal.acme.example");
    snprintf(ops.extra_certs, sizeof ops.extra_certs, "%s/more-certs", ops.px.tmp);
    int st;
    free(tf_px_sh(&st, "mkdir '%s'", ops.extra_certs));
    char path[1400];
    snprintf(path, sizeof path, "%s/shop.pem", ops.extra_certs);
    char *serial = tf_ops_issue(&ops, path, "new", "shop.example");
    tf_ops_write_config(&ops, NULL, NULL);
    kill(ops.px.proxy_pid, SIGHUP);
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", serial, 15));
    free(serial);
    /* The new directory is watched too. */
    snprintf(path, sizeof path, "%s/.next.pem", ops.extra_certs);
    serial = tf_ops_issue(&ops, path, "new", "shop.example");
    char dst[1400];
    snprintf(dst, sizeof dst, "%s/shop.pem", ops.extra_certs);
    cr_assert_eq(rename(path, dst), 0);
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", serial, 15));
    free(serial);
    expect_clean_load();
}

/* Certificates close to expiry are logged at start and when they arrive. */
Test(ops_reload, expiring_certificates_are_logged)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    ops.days = 10;
    char *serial = renew("soon.pem", "soon.example");
    cr_expect(tf_ops_wait_serial(&ops, "soon.example", serial, 15));
    free(serial);
    cr_expect(tf_ops_wait_log(&ops, "reload: ", 1, 5));
    char *log = tf_px_log(&ops.px);
    cr_expect_not_null(strstr(log, "soon.pem: "), "%s", log);
    cr_expect_not_null(strstr(log, "expir"), "%s", log);
    free(log);
    /* At start: restart the proxy on the same files. */
    cr_expect_eq(tf_px_stop_proxy(&ops.px), 0);
    tf_ops_restart(&ops);
    cr_expect(tf_ops_wait_log(&ops, "certificate for soon.example expires in", 1, 5));
}

/* The number of the line of the configuration that starts with PREFIX. */
static unsigned config_line(const char *prefix)
{
    int st;
    char *out = tf_px_sh(&st, "grep -n -m1 '^%s' '%s' | cut -d: -f1", prefix, ops.config);
    unsigned n = (unsigned)strtoul(out, NULL, 10);
    free(out);
    cr_assert_gt(n, 0, "no line starts with '%s' in %s", prefix, ops.config);
    return n;
}

/* A reload refused for a missing default certificate points at the line
 * of the configuration that names it (SPEC §2); the running one stays. */
Test(ops_reload, a_missing_default_certificate_on_reload_names_its_line)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    int st;
    free(tf_px_sh(&st,
                  "sed -i 's|^  default_cert: .*|  default_cert: /nonexistent/system.pem|' '%s'",
                  ops.config));
    char want[1600];
    snprintf(want, sizeof want,
             "reload failed: %s:%u:17: /nonexistent/system.pem: no usable default certificate "
             "with the new sources; fix tls.default_cert",
             ops.config, config_line("  default_cert:"));
    kill(ops.px.proxy_pid, SIGHUP);
    cr_expect(tf_ops_wait_log(&ops, want, 1, 15), "no '%s' in the log", want);
    cr_expect(tf_ops_echo(&ops, "portal.acme.example"));
}

/* A certificate source added by a reload that cannot be read is logged at
 * its item of tls.certs (start-up says the same); the rest still serves. */
Test(ops_reload, an_unreadable_new_source_on_reload_names_its_item)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    snprintf(ops.extra_certs, sizeof ops.extra_certs, "/nonexistent-certs");
    tf_ops_write_config(&ops, NULL, NULL);
    /* `  certs: ["CERTS", "/nonexistent-certs"]`: the second item's quote. */
    unsigned col = (unsigned)(strlen("  certs: [\"") + strlen(ops.certs) + strlen("\", ") + 1);
    char want[1600];
    snprintf(want, sizeof want,
             "%s:%u:%u: /nonexistent-certs: cannot read: No such file or directory: check "
             "tls.certs",
             ops.config, config_line("  certs:"), col);
    kill(ops.px.proxy_pid, SIGHUP);
    cr_expect(tf_ops_wait_log(&ops, want, 1, 15), "no '%s' in the log", want);
    cr_expect(tf_ops_wait_log(&ops, "reload (configuration and certificates)", 1, 15));
    cr_expect(tf_ops_echo(&ops, "portal.acme.example"));
}

/* Issue 13, item 3: "needs a restart" was judged against the file read
 * last. A changed listen.https is reported on every reload while the old
 * address is the one bound, and nothing is once the file is put back. */
Test(ops_reload, needs_a_restart_is_judged_against_the_running_values)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    int st;
    free(tf_px_sh(&st, "sed -i 's|https: \\[\"127.0.0.1:0\"\\]|https: [\"127.0.0.2:0\"]|' '%s'",
                  ops.config));
    cr_assert_eq(st, 0);
    for (int i = 0; i < 2; i++) {
        char *out = tf_ops_admin(&ops, &st, "POST", "/reload", NULL, NULL);
        cr_expect_eq(st, 200, "%s", out);
        cr_expect_not_null(strstr(out, "\"needs_restart\":[\"listen.https changed: needs a "
                                       "restart; the running value stays\"]"),
                           "reload %d: %s", i + 1, out);
        free(out);
    }
    tf_ops_write_config(&ops, NULL, NULL);
    char *out = tf_ops_admin(&ops, &st, "POST", "/reload", NULL, NULL);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_not_null(strstr(out, "\"needs_restart\":[]"), "%s", out);
    free(out);
}

/* The metric line `NAME VALUE` as a number, or -1 when absent. */
static long metric(const char *text, const char *name)
{
    char needle[200];
    snprintf(needle, sizeof needle, "\n%s ", name);
    const char *p = strstr(text, needle);
    return p != NULL ? strtol(p + strlen(needle), NULL, 10) : -1;
}

/* Issue 13, item 8: after a bundle broke, the first reload said so, and
 * every later one "0 failed", result ok, while its last good version was
 * still served instead of the file. */
Test(ops_reload, every_reload_counts_a_file_kept_in_its_last_good_version)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    char path[1400];
    snprintf(path, sizeof path, "%s/acme.pem", ops.certs);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    cr_expect(tf_ops_wait_log(&ops, "0 removed, 1 failed", 1, 15));
    int st;
    for (int i = 0; i < 2; i++) {
        char *out = tf_ops_admin(&ops, &st, "POST", "/reload", NULL, NULL);
        cr_expect_eq(st, 200, "%s", out);
        cr_expect_not_null(strstr(out, "\"failed\":1,\"failures\":[\""), "%s", out);
        cr_expect_not_null(strstr(out, "acme.pem: "), "%s", out);
        free(out);
    }
    kill(ops.px.proxy_pid, SIGHUP);
    cr_expect(tf_ops_wait_log(&ops,
                              "reload (configuration and certificates): certificates: 0 "
                              "added, 0 replaced, 0 removed, 1 failed",
                              3, 15));
    char *m = tf_ops_admin(&ops, &st, "GET", "/metrics", NULL, NULL);
    cr_expect_eq(metric(m, "tlsfront_reloads_total{result=\"ok\"}"), 0, "%s", m);
    /* The watcher's reload, two POSTs, SIGHUP (and maybe a split event). */
    cr_expect_geq(metric(m, "tlsfront_reloads_total{result=\"partial\"}"), 4, "%s", m);
    free(m);
}
