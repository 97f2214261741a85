/* Backend addresses and TLS keys (SPEC §11, §14; issue 17 item 3): unix:
 * paths, tls, tls_verify, tls_sni, each accepted form and each refused one
 * at its FILE:LINE:COLUMN. */
#include "helpers.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Lines 1-5; tenant t's keys follow at line 6, column 5. */
#define HEAD T_LISTEN "tenants:\n  t:\n    hosts: [a.example]\n"

static const tf_conf_backend_t *first(const tf_conf_t *c)
{
    return &tf_conf_tenant(c, 0)->routes[0].backends.items[0];
}

Test(unix, a_string_and_a_map_are_accepted)
{
    tf_conf_t *c = t_load(HEAD "    backends: [\"unix:/run/app.sock\", {address: "
                               "\"unix:/run/b.sock\", weight: 2}]\n");
    const tf_conf_backend_list_t *l = &tf_conf_tenant(c, 0)->routes[0].backends;
    cr_assert_eq(l->count, 2);
    cr_expect_eq(l->items[0].addr.family, TF_CONF_ADDR_UNIX);
    cr_expect_str_eq(l->items[0].addr.host, "/run/app.sock");
    cr_expect_str_eq(l->items[0].addr.text, "unix:/run/app.sock");
    cr_expect_eq(l->items[0].addr.port, 0);
    cr_expect_not(l->items[0].tls);
    cr_expect_null(l->items[0].sni);
    cr_expect_str_eq(l->items[1].addr.host, "/run/b.sock");
    cr_expect_eq(l->items[1].weight, 2);
    tf_conf_unref(c);
}

Test(unix, mode_tcp_accepts_it)
{
    tf_conf_t *c = t_load(HEAD "    mode: tcp\n    backends: [\"unix:/run/x.sock\"]\n");
    cr_expect_eq(first(c)->addr.family, TF_CONF_ADDR_UNIX);
    tf_conf_unref(c);
}

Test(unix, refused_forms)
{
    t_expect_error(HEAD "    backends: [\"unix:\"]\n", 6, 16,
                   "tenants.t.backends: 'unix:' has no path; write unix:/run/app.sock");
    t_expect_error(HEAD "    backends: [\"unix:run/app.sock\"]\n", 6, 16,
                   "'unix:run/app.sock' is not an absolute path");
    t_expect_error(HEAD "    backends: [{address: \"unix:app.sock\"}]\n", 6, 26,
                   "'unix:app.sock' is not an absolute path");
    char y[1024], path[200];
    size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;
    memset(path, 'a', sizeof path);
    path[0] = '/';
    path[max + 1] = '\0'; /* one byte too many */
    snprintf(y, sizeof y, HEAD "    backends: [\"unix:%s\"]\n", path);
    t_expect_error(y, 6, 16, "a unix socket path holds at most 107 bytes, this one has 108");
    path[max] = '\0'; /* the longest that fits */
    snprintf(y, sizeof y, HEAD "    backends: [\"unix:%s\"]\n", path);
    tf_conf_t *c = t_load(y);
    cr_expect_eq(strlen(first(c)->addr.host), max);
    tf_conf_unref(c);
}

Test(unix, listeners_refuse_it)
{
    char err[4096];
    t_load_fail("listen:\n  https: [\"unix:/run/x.sock\"]\n" T_TENANT, TF_ECONF, err, sizeof err);
    cr_expect(strstr(err, "test.yaml:2:11:") != NULL, "%s", err);
}

Test(tls, defaults_and_sni_from_the_host)
{
    tf_conf_t *c = t_load(HEAD "    backends: [\"app.internal:8443\", {address: "
                               "\"app.internal:9443\", tls: true, weight: 2}]\n");
    const tf_conf_backend_list_t *l = &tf_conf_tenant(c, 0)->routes[0].backends;
    cr_expect_not(l->items[0].tls);
    cr_expect_null(l->items[0].sni);
    cr_expect(l->items[1].tls);
    cr_expect_eq(l->items[1].verify, TF_CONF_VERIFY_SYSTEM);
    cr_expect_null(l->items[1].ca_file);
    cr_expect_str_eq(l->items[1].sni, "app.internal");
    cr_expect_eq(l->items[1].line, 6);
    cr_expect_eq(l->items[1].column, 37);
    cr_expect_eq(tf_conf_warning_count(c), 0);
    tf_conf_unref(c);
}

Test(tls, an_ip_literal_sends_no_sni_unless_told)
{
    tf_conf_t *c = t_load(HEAD "    backends: [{address: \"10.0.0.9:8443\", tls: true}, "
                               "{address: \"[::1]:8443\", tls: true, tls_sni: b.test}]\n");
    const tf_conf_backend_list_t *l = &tf_conf_tenant(c, 0)->routes[0].backends;
    cr_expect_null(l->items[0].sni);
    cr_expect_str_eq(l->items[1].sni, "b.test");
    tf_conf_unref(c);
}

Test(tls, verify_off_is_a_warning)
{
    tf_conf_t *c = t_load(HEAD "    backends: [{address: \"10.0.0.9:8443\", tls: true, "
                               "tls_verify: off}]\n");
    cr_expect_eq(first(c)->verify, TF_CONF_VERIFY_OFF);
    cr_assert_eq(tf_conf_warning_count(c), 1);
    cr_expect_str_eq(tf_conf_warning(c, 0),
                     "test.yaml:6:66: tenants.t.backends: '10.0.0.9:8443': tls_verify: off: the "
                     "backend's certificate is not checked, so anyone on the path to it can "
                     "read and change the traffic");
    tf_conf_unref(c);
}

Test(tls, a_ca_file_is_read_at_load)
{
    char dir[] = "/tmp/tf-conf-be-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char ca[96], cfg[96], y[1024], err[4096];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cfg, sizeof cfg, "%s/tlsfront.yaml", dir);
    FILE *f = fopen(ca, "w");
    cr_assert_not_null(f);
    fputs("-----BEGIN CERTIFICATE-----\n", f);
    fclose(f);
    snprintf(y, sizeof y,
             HEAD "    backends: [{address: \"a.test:1\", tls: true, tls_verify: %s}]\n", ca);
    tf_conf_t *c = t_load(y);
    cr_expect_eq(first(c)->verify, TF_CONF_VERIFY_FILE);
    cr_expect_str_eq(first(c)->ca_file, ca);
    tf_conf_unref(c);
    /* Relative: from the configuration file's directory, whatever the cwd. */
    f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fputs(HEAD "    backends: [{address: \"a.test:1\", tls: true, tls_verify: ca.pem}]\n", f);
    fclose(f);
    cr_assert_eq(chdir("/"), 0);
    c = NULL;
    int rc = tf_conf_load_file(cfg, &c, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_str_eq(first(c)->ca_file, ca);
    tf_conf_unref(c);
    unlink(ca);
    rc = tf_conf_load_file(cfg, &c, err, sizeof err);
    cr_expect_eq(rc, TF_ECONF);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:6:61: tenants.t.backends: tls_verify: cannot read the CA file '%s': No such file "
             "or directory",
             cfg, ca);
    cr_expect(strstr(err, want) != NULL, "want %s in:\n%s", want, err);
    unlink(cfg);
    rmdir(dir);
}

Test(tls, refused_forms)
{
    t_expect_error(HEAD "    backends: [{address: \"a.test:1\", tls_sni: b.test}]\n", 6, 47,
                   "tenants.t.backends: 'a.test:1': tls_sni applies to TLS backends only; add "
                   "tls: true or remove it");
    t_expect_error(HEAD "    backends: [{address: \"a.test:1\", tls_verify: off}]\n", 6, 50,
                   "'a.test:1': tls_verify applies to TLS backends only");
    t_expect_error(HEAD "    backends: [{address: \"a.test:1\", tls: true, tls_sni: 10.0.0.1}]\n",
                   6, 58, "'10.0.0.1' is an IP address, which TLS does not send as SNI");
    t_expect_error(HEAD "    backends: [{address: \"a.test:1\", tls: true, tls_sni: \"a b\"}]\n", 6,
                   58, "tenants.t.backends.tls_sni:");
    t_expect_error(HEAD "    backends: [{address: \"a.test:1\", tls: true, tls_verify: \"\"}]\n", 6,
                   61, "tenants.t.backends.tls_verify:");
    t_expect_error(HEAD "    backends: [{address: \"a.test:1\", tls: true, tls_verify: "
                        "/nonexistent/ca.pem}]\n",
                   6, 61, "cannot read the CA file '/nonexistent/ca.pem'");
    t_expect_error(HEAD "    backends: [{address: \"a.test:1\", tls: yes}]\n", 6, 43,
                   "'yes' is not a boolean");
}

Test(tls, over_unix_needs_a_name_or_verify_off)
{
    t_expect_error(HEAD "    backends: [{address: \"unix:/run/a.sock\", tls: true}]\n", 6, 16,
                   "'unix:/run/a.sock': a unix: backend has no host name to verify its "
                   "certificate against; set tls_sni");
    tf_conf_t *c = t_load(HEAD "    backends: [{address: \"unix:/run/a.sock\", tls: true, "
                               "tls_sni: app.test}]\n");
    cr_expect(first(c)->tls);
    cr_expect_str_eq(first(c)->sni, "app.test");
    tf_conf_unref(c);
    c = t_load(HEAD
               "    backends: [{address: \"unix:/run/a.sock\", tls: true, tls_verify: off}]\n");
    cr_expect_null(first(c)->sni);
    cr_expect_eq(tf_conf_warning_count(c), 1);
    tf_conf_unref(c);
}

/* One address is one backend with one health state (GET and POST
 * /backends name it): two TLS settings for it in one tenant are refused at
 * the second; the same settings in several routes, or the same address in
 * another tenant with other settings, are fine. */
Test(tls, one_address_has_one_tls_setting_per_tenant)
{
    t_expect_error(HEAD "    backends: [{address: \"a.test:1\", tls: true, tls_sni: x.test}]\n"
                        "    routes:\n"
                        "      - {path: /b/, backends: [{address: \"a.test:1\", tls: true, "
                        "tls_sni: y.test}]}\n",
                   8, 32,
                   "tenants.t: backend 'a.test:1' has other TLS settings (tls, tls_verify, "
                   "tls_sni) than at line 6, column 16");
    t_expect_error(HEAD "    backends: [{address: \"a.test:1\", tls: true}]\n"
                        "    routes:\n      - {path: /b/, backends: [\"a.test:1\"]}\n",
                   8, 32, "backend 'a.test:1' has other TLS settings");
    tf_conf_t *c = t_load(HEAD "    backends: [{address: \"a.test:1\", tls: true}]\n"
                               "    routes:\n"
                               "      - {path: /b/, backends: [{address: \"a.test:1\", tls: "
                               "true}]}\n"
                               "      - {path: /c/, strip_prefix: true}\n"
                               "  u:\n    hosts: [b.example]\n"
                               "    backends: [{address: \"a.test:1\", tls: true, tls_sni: "
                               "z.test}]\n");
    tf_conf_unref(c);
}
