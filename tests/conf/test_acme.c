/* The acme keys of SPEC §13 and the tenant key `acme: true`: each default,
 * each value stored, the bounds, and every load-time error at its
 * FILE:LINE:COLUMN. */
#include "helpers.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define T_DIR "acme:\n  directory: https://acme.example/dir\n"

Test(acme, defaults)
{
    tf_conf_t *c = t_load(T_MINIMAL);
    const tf_conf_acme_t *a = tf_conf_acme(c);
    cr_expect_str_eq(a->webroot, "/var/lib/tlsfront/acme");
    cr_expect_eq(tf_conf_acme_webroot(c), a->webroot);
    cr_expect_null(a->directory);
    cr_expect_null(a->email);
    cr_expect_null(a->ca_file);
    cr_expect_str_eq(a->storage, "/var/lib/tlsfront/acme-state");
    cr_expect_eq(a->key_type, TF_CONF_KEY_ECDSA);
    cr_expect_eq(a->renew_days, 30);
    cr_expect_eq(a->challenges, TF_CONF_ACME_HTTP01 | TF_CONF_ACME_TLSALPN01);
    cr_expect_null(a->eab.kid);
    cr_expect_null(a->eab.hmac_key_file);
    cr_expect_not(tf_conf_tenant_acme(tf_conf_tenant(c, 0)));
    tf_conf_unref(c);
}

Test(acme, empty_section_and_empty_eab_mean_defaults)
{
    tf_conf_t *c = t_load("acme:\n  eab:\n" T_MINIMAL);
    const tf_conf_acme_t *a = tf_conf_acme(c);
    cr_expect_str_eq(a->storage, "/var/lib/tlsfront/acme-state");
    cr_expect_eq(a->challenges, TF_CONF_ACME_HTTP01 | TF_CONF_ACME_TLSALPN01);
    cr_expect_null(a->eab.kid);
    tf_conf_unref(c);
}

Test(acme, every_key_set)
{
    tf_conf_t *c =
        t_load("acme:\n"
               "  webroot: null\n"
               "  directory: https://acme-staging-v02.api.letsencrypt.org/directory\n"
               "  email: ops@acme.example\n"
               "  ca_file: /etc/tlsfront/test-ca.pem\n"
               "  storage: /srv/acme-state\n"
               "  key_type: rsa\n"
               "  renew_days: 365\n"
               "  challenges: [tls-alpn-01]\n"
               "  eab: {kid: kid-1, hmac_key_file: /etc/tlsfront/eab.key}\n" T_LISTEN "tenants:\n"
               "  t:\n    hosts: [a.example]\n    backends: [\"127.0.0.1:8080\"]\n"
               "    acme: true\n"
               "  u:\n    hosts: [b.example]\n    backends: [\"127.0.0.1:8080\"]\n"
               "    acme: false\n");
    const tf_conf_acme_t *a = tf_conf_acme(c);
    cr_expect_null(a->webroot);
    cr_expect_str_eq(a->directory, "https://acme-staging-v02.api.letsencrypt.org/directory");
    cr_expect_str_eq(a->email, "ops@acme.example");
    cr_expect_str_eq(a->ca_file, "/etc/tlsfront/test-ca.pem");
    cr_expect_str_eq(a->storage, "/srv/acme-state");
    cr_expect_eq(a->key_type, TF_CONF_KEY_RSA);
    cr_expect_eq(a->renew_days, 365);
    cr_expect_eq(a->challenges, TF_CONF_ACME_TLSALPN01);
    cr_expect_str_eq(a->eab.kid, "kid-1");
    cr_expect_str_eq(a->eab.hmac_key_file, "/etc/tlsfront/eab.key");
    cr_expect(tf_conf_tenant_acme(tf_conf_tenant(c, 0)));
    cr_expect_not(tf_conf_tenant_acme(tf_conf_tenant(c, 1)));
    tf_conf_unref(c);
}

Test(acme, challenges_one_or_both_in_any_order)
{
    tf_conf_t *c = t_load("acme: {challenges: [http-01]}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_acme(c)->challenges, TF_CONF_ACME_HTTP01);
    tf_conf_unref(c);
    c = t_load("acme:\n  challenges:\n    - tls-alpn-01\n    - http-01\n" T_MINIMAL);
    cr_expect_eq(tf_conf_acme(c)->challenges, TF_CONF_ACME_HTTP01 | TF_CONF_ACME_TLSALPN01);
    tf_conf_unref(c);
}

Test(acme, renew_days_bounds_are_inclusive)
{
    tf_conf_t *c = t_load("acme: {renew_days: 1}\n" T_MINIMAL);
    cr_expect_eq(tf_conf_acme(c)->renew_days, 1);
    tf_conf_unref(c);
    t_expect_error("acme:\n  renew_days: 0\n" T_MINIMAL, 2, 15,
                   "acme.renew_days: 0 is out of range; use 1 to 365");
    t_expect_error("acme:\n  renew_days: 366\n" T_MINIMAL, 2, 15, "out of range; use 1 to 365");
    t_expect_error("acme:\n  renew_days: 30d\n" T_MINIMAL, 2, 15, "is not a whole number");
}

Test(acme, key_type_is_ecdsa_or_rsa)
{
    t_expect_error("acme:\n  key_type: ed25519\n" T_MINIMAL, 2, 13,
                   "acme.key_type: 'ed25519' is not a valid value; use one of: ecdsa, rsa");
}

Test(acme, directory_urls_accepted)
{
    static const char *const ok[] = {
        "https://acme-v02.api.letsencrypt.org/directory",
        "HTTPS://ca.example:8443/acme/directory?x=1",
        "https://[2001:db8::1]:14000/dir",
        "https://192.0.2.10/dir",
        "https://ca.example",
        "http://127.0.0.1:14000/dir",
        "http://127.8.9.10/dir",
        "http://localhost:14000/dir",
        "http://[::1]:14000/dir",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "acme: {directory: \"%s\"}\n" T_MINIMAL, ok[i]);
        tf_conf_t *c = t_load(yaml);
        cr_expect_str_eq(tf_conf_acme(c)->directory, ok[i]);
        tf_conf_unref(c);
    }
}

Test(acme, directory_urls_refused)
{
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"ftp://ca.example/dir", "is not an https:// URL"},
        {"ca.example/dir", "is not an https:// URL"},
        {"http://ca.example/dir", "http:// is accepted only for an ACME server on this machine"},
        {"http://192.0.2.1/dir", "(127.0.0.0/8, ::1, localhost)"},
        {"http://[::2]/dir", "http:// is accepted only"},
        {"http://128.0.0.1/dir", "http:// is accepted only"},
        {"https:///dir", "has no host"},
        {"https://user:pw@ca.example/dir", "holds credentials"},
        {"https://ca.example:0/dir", "invalid port"},
        {"https://ca.example:65536/dir", "invalid port"},
        {"https://ca.example:/dir", "invalid port"},
        {"https://ca.example:x/dir", "invalid port"},
        {"https://[::1/dir", "invalid [IPv6] host"},
        {"https://[ca.example]/dir", "invalid host"},
        {"https://ca_x.example/dir", "invalid host"},
        {"https://ca.example/a dir", "contains a space"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[512], want[256];
        snprintf(yaml, sizeof yaml, "acme:\n  directory: \"%s\"\n" T_MINIMAL, bad[i].url);
        snprintf(want, sizeof want, "acme.directory: ");
        t_expect_error(yaml, 2, 14, want);
        t_expect_error(yaml, 2, 14, bad[i].why);
    }
}

Test(acme, email)
{
    tf_conf_t *c = t_load("acme: {email: \"a.b+tls@mail.acme.example\"}\n" T_MINIMAL);
    cr_expect_str_eq(tf_conf_acme(c)->email, "a.b+tls@mail.acme.example");
    tf_conf_unref(c);
    t_expect_error("acme:\n  email: mailto:ops@acme.example\n" T_MINIMAL, 2, 10,
                   "write the address alone");
    t_expect_error("acme:\n  email: ops\n" T_MINIMAL, 2, 10,
                   "acme.email: 'ops' is not an e-mail address");
    t_expect_error("acme:\n  email: \"@acme.example\"\n" T_MINIMAL, 2, 10, "not an e-mail");
    t_expect_error("acme:\n  email: \"a@b@acme.example\"\n" T_MINIMAL, 2, 10, "not an e-mail");
    t_expect_error("acme:\n  email: \"a b@acme.example\"\n" T_MINIMAL, 2, 10, "not an e-mail");
    t_expect_error("acme:\n  email: \"ops@acme..example\"\n" T_MINIMAL, 2, 10, "not an e-mail");
}

Test(acme, paths)
{
    t_expect_error("acme:\n  storage: acme-state\n" T_MINIMAL, 2, 12,
                   "acme.storage: 'acme-state' is not an absolute path");
    t_expect_error("acme:\n  storage: null\n" T_MINIMAL, 2, 12, "acme.storage: expected a string");
    t_expect_error("acme:\n  ca_file: \"\"\n" T_MINIMAL, 2, 12, "acme.ca_file: empty string");
    t_expect_error("acme:\n  eab: {kid: a, hmac_key_file: \"\"}\n" T_MINIMAL, 2, 32,
                   "acme.eab.hmac_key_file: empty string");
}

Test(acme, challenges_errors)
{
    t_expect_error("acme:\n  challenges: []\n" T_MINIMAL, 2, 15,
                   "acme.challenges: is empty; list at least one of http-01, tls-alpn-01");
    t_expect_error("acme:\n  challenges:\n" T_MINIMAL, 2, 14, "acme.challenges: is empty");
    t_expect_error("acme:\n  challenges: http-01\n" T_MINIMAL, 2, 15,
                   "acme.challenges: expected a list like [http-01, tls-alpn-01], got a single "
                   "value");
    t_expect_error("acme:\n  challenges: [http-01, dns-01]\n" T_MINIMAL, 2, 25,
                   "acme.challenges: dns-01 is not supported");
    t_expect_error("acme:\n  challenges: [http-01, tls-sni-01]\n" T_MINIMAL, 2, 25,
                   "acme.challenges: 'tls-sni-01' is not a challenge type");
    t_expect_error("acme:\n  challenges: [http-01, HTTP-01]\n" T_MINIMAL, 2, 25,
                   "is not a challenge type");
    t_expect_error("acme:\n  challenges: [http-01, tls-alpn-01, http-01]\n" T_MINIMAL, 2, 38,
                   "acme.challenges: 'http-01' is listed twice; remove one");
    t_expect_error("acme:\n  challenges: [[http-01]]\n" T_MINIMAL, 2, 16,
                   "acme.challenges: expected a challenge type such as http-01, got a list");
}

Test(acme, eab_needs_both_or_neither)
{
    t_expect_error("acme:\n  eab:\n    kid: kid-1\n" T_MINIMAL, 3, 5,
                   "acme.eab.kid is set but acme.eab.hmac_key_file is not; external account "
                   "binding needs both");
    t_expect_error("acme:\n  eab:\n    kid: null\n    hmac_key_file: /k\n" T_MINIMAL, 4, 5,
                   "acme.eab.hmac_key_file is set but acme.eab.kid is not");
    t_expect_error("acme:\n  eab: {kidd: x}\n" T_MINIMAL, 2, 9,
                   "unknown key 'kidd' in 'acme.eab'; did you mean 'kid'?");
    t_expect_error("acme:\n  eab: kid-1\n" T_MINIMAL, 2, 8, "acme.eab: expected a mapping of keys");
}

Test(acme, tenant_acme_needs_a_directory)
{
    const char *yaml = T_LISTEN "tenants:\n"
                                "  t:\n"
                                "    hosts: [a.example]\n"
                                "    backends: [\"127.0.0.1:8080\"]\n"
                                "    acme: true\n"; /* line 7, column 11 */
    t_expect_error(yaml, 7, 11,
                   "tenants.t.acme: true needs the ACME client, which runs only when "
                   "acme.directory is set");
    /* false, and true once a directory is set, are fine. */
    tf_conf_t *c = t_load(T_LISTEN "tenants:\n  t: {hosts: [a.example], backends: "
                                   "[\"127.0.0.1:8080\"], acme: false}\n");
    cr_expect_not(tf_conf_tenant_acme(tf_conf_tenant(c, 0)));
    tf_conf_unref(c);
    c = t_load(T_DIR T_LISTEN "tenants:\n  t: {hosts: [a.example], backends: "
                              "[\"127.0.0.1:8080\"], mode: tcp, acme: true}\n");
    cr_expect(tf_conf_tenant_acme(tf_conf_tenant(c, 0)));
    tf_conf_unref(c);
}

Test(acme, tenant_acme_is_a_boolean_and_not_a_route_key)
{
    t_expect_error(T_DIR T_LISTEN "tenants:\n  t:\n    hosts: [a.example]\n"
                                  "    backends: [\"127.0.0.1:8080\"]\n    acme: yes\n",
                   9, 11, "tenants.t.acme: 'yes' is not a boolean; write true or false");
    t_expect_error(T_DIR T_LISTEN "tenants:\n  t:\n    hosts: [a.example]\n"
                                  "    backends: [\"127.0.0.1:8080\"]\n"
                                  "    routes: [{path: /api/, acme: true}]\n",
                   9, 28, "unknown key 'acme' in 'tenants.t.routes[0]'");
}

Test(acme, unknown_key_suggests)
{
    t_expect_error("acme:\n  renewdays: 3\n" T_MINIMAL, 2, 3,
                   "unknown key 'renewdays' in 'acme'; did you mean 'renew_days'?");
    t_expect_error("renew_days: 3\n" T_MINIMAL, 1, 1,
                   "unknown key 'renew_days' at the top level; it belongs under its section: "
                   "'acme.renew_days'");
}

Test(acme, paths_are_located)
{
    tf_conf_t *c = t_load("acme:\n"
                          "  storage: /srv/state\n"       /* 2:12 */
                          "  ca_file:  \"/etc/ca.pem\"\n" /* 3:13 */
                          "  eab:\n"
                          "    kid: k\n"
                          "    hmac_key_file: /etc/eab\n" /* 6:20 */ T_MINIMAL);
    char buf[TF_CONF_WHERE_MAX];
    cr_expect_eq(tf_conf_where(c, "acme.storage", 0, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, T_NAME ":2:12");
    cr_expect_eq(tf_conf_where(c, "acme.ca_file", 0, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, T_NAME ":3:13");
    cr_expect_eq(tf_conf_where(c, "acme.eab.hmac_key_file", 0, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, T_NAME ":6:20");
    tf_conf_unref(c);
    c = t_load(T_MINIMAL);
    cr_expect_eq(tf_conf_where(c, "acme.storage", 0, buf, sizeof buf), TF_ENOTFOUND);
    tf_conf_unref(c);
}
