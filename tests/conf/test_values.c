/* The pure value parsers of conf/values.c and the key-name helpers of
 * conf/schema.c: durations, integers, addresses, host patterns. */
#include "conf/conf_internal.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

static char why[512];

static uint64_t dur_ok(const char *s)
{
    uint64_t ms = 0;
    cr_assert_eq(tf_conf__parse_duration(s, &ms, why, sizeof why), 0, "%s: %s", s, why);
    return ms;
}

static void dur_bad(const char *s, const char *sub)
{
    uint64_t ms = 0;
    cr_assert_eq(tf_conf__parse_duration(s, &ms, why, sizeof why), TF_EINVAL, "%s parsed", s);
    cr_assert_not_null(strstr(why, sub), "'%s' not in: %s", sub, why);
}

Test(duration, every_unit)
{
    cr_expect_eq(dur_ok("500ms"), 500);
    cr_expect_eq(dur_ok("10s"), 10000);
    cr_expect_eq(dur_ok("5m"), 300000);
    cr_expect_eq(dur_ok("1h"), 3600000);
    cr_expect_eq(dur_ok("0s"), 0); /* bounds are the schema's business */
    cr_expect_eq(dur_ok("168h"), 604800000);
}

Test(duration, a_bare_number_names_the_units)
{
    dur_bad("10", "has no unit");
    dur_bad("10", "ms, s, m or h");
}

Test(duration, malformed)
{
    dur_bad("", "not a duration");
    dur_bad("s", "not a duration");
    dur_bad("-1s", "not a duration");
    dur_bad("1.5s", "unknown unit '.5s'");
    dur_bad("10 seconds", "with no space");
    dur_bad("3d", "unknown unit 'd'");
    dur_bad("10S", "unknown unit 'S'");
    dur_bad("99999999999999999999ms", "too large");
    dur_bad("9999999999999999h", "too large");
}

Test(uint, digits_only)
{
    uint64_t v = 0;
    cr_expect_eq(tf_conf__parse_uint("32768", &v, why, sizeof why), 0);
    cr_expect_eq(v, 32768);
    cr_expect_eq(tf_conf__parse_uint("0", &v, why, sizeof why), 0);
    cr_expect_eq(v, 0);
    cr_expect_eq(tf_conf__parse_uint("-1", &v, why, sizeof why), TF_EINVAL);
    cr_expect_not_null(strstr(why, "not a whole number"));
    cr_expect_eq(tf_conf__parse_uint("1e3", &v, why, sizeof why), TF_EINVAL);
    cr_expect_eq(tf_conf__parse_uint("", &v, why, sizeof why), TF_EINVAL);
    cr_expect_eq(tf_conf__parse_uint("18446744073709551616", &v, why, sizeof why), TF_EINVAL);
    cr_expect_not_null(strstr(why, "too large"));
    cr_expect_eq(tf_conf__parse_uint("18446744073709551615", &v, why, sizeof why), 0);
    cr_expect_eq(v, UINT64_MAX);
}

static tf_conf_addr_t addr_ok(const char *s, bool listener, char *host)
{
    tf_conf_addr_t a;
    int rc = tf_conf__parse_addr(s, listener, &a, host, 256, why, sizeof why);
    cr_assert_eq(rc, 0, "%s: %s", s, why);
    return a;
}

static void addr_bad(const char *s, bool listener, const char *sub)
{
    tf_conf_addr_t a;
    char host[256];
    int rc = tf_conf__parse_addr(s, listener, &a, host, sizeof host, why, sizeof why);
    cr_assert_eq(rc, TF_EINVAL, "%s parsed", s);
    cr_assert_not_null(strstr(why, sub), "'%s' not in: %s", sub, why);
}

Test(addr, ipv4_ipv6_and_names)
{
    char host[256];
    tf_conf_addr_t a = addr_ok("0.0.0.0:443", true, host);
    cr_expect_eq(a.family, TF_CONF_ADDR_IPV4);
    cr_expect_str_eq(host, "0.0.0.0");
    cr_expect_eq(a.port, 443);
    a = addr_ok("[::]:443", true, host);
    cr_expect_eq(a.family, TF_CONF_ADDR_IPV6);
    cr_expect_str_eq(host, "::");
    a = addr_ok("[2001:db8::1]:65535", false, host);
    cr_expect_eq(a.family, TF_CONF_ADDR_IPV6);
    cr_expect_str_eq(host, "2001:db8::1");
    cr_expect_eq(a.port, 65535);
    a = addr_ok("localhost:1", true, host);
    cr_expect_eq(a.family, TF_CONF_ADDR_NAME);
    cr_expect_str_eq(host, "localhost");
    cr_expect_eq(a.port, 1);
    a = addr_ok("app-1.internal:8080", false, host);
    cr_expect_eq(a.family, TF_CONF_ADDR_NAME);
    cr_expect_str_eq(host, "app-1.internal");
    a = addr_ok("my_service:8080", false, host); /* docker-compose service names */
    cr_expect_str_eq(host, "my_service");
}

Test(addr, ports)
{
    addr_bad("1.2.3.4:0", false, "invalid port '0'");
    addr_bad("1.2.3.4:65536", false, "1 to 65535");
    addr_bad("1.2.3.4:http", false, "invalid port 'http'");
    addr_bad("1.2.3.4:", false, "has no port");
    addr_bad("1.2.3.4", false, "has no port");
    addr_bad("[::1]", false, "has no port");
    addr_bad("[::1]443", false, "has no port");
    addr_bad("1.2.3.4:0443x", false, "invalid port");
}

/* A listener may ask the kernel for a free port (tests, supervisors that
 * read the ports tlsfront reports); a backend on port 0 means nothing. */
Test(addr, port_zero_only_for_listeners)
{
    char host[256];
    tf_conf_addr_t a = addr_ok("127.0.0.1:0", true, host);
    cr_expect_eq(a.port, 0);
    a = addr_ok("[::1]:0", true, host);
    cr_expect_eq(a.port, 0);
    addr_bad("127.0.0.1:0", false, "invalid port '0'");
    addr_bad("[::1]:0", false, "invalid port '0'");
    addr_bad("0.0.0.0:65536", true, "or 0 for a free port");
}

Test(addr, hosts)
{
    addr_bad("::1:443", false, "need brackets");
    addr_bad(":443", true, "has no host");
    addr_bad("*:443", true, "0.0.0.0:PORT");
    addr_bad("999.1.1.1:80", false, "not a valid IPv4 address");
    addr_bad("1.2.3:80", false, "not a valid IPv4 address");
    addr_bad("[zz::1]:80", false, "not a valid IPv6 address");
    addr_bad("[]:80", false, "[IPv6]:PORT");
    addr_bad("[::1:80", false, "[IPv6]:PORT");
    addr_bad("bad host:80", false, "invalid character ' '");
    addr_bad("-x.internal:80", false, "starts or ends with '-'");
}

Test(addr, listeners_take_literals_and_localhost_only)
{
    addr_bad("example.com:443", true, "must be IP literals or localhost");
    char host[256];
    addr_ok("example.com:443", false, host);
}

static const char *norm_ok(const char *p)
{
    static char out[256];
    int rc = tf_conf__host_normalize(p, out, sizeof out, why, sizeof why);
    cr_assert_eq(rc, 0, "%s: %s", p, why);
    cr_assert_eq(tf_conf_host_pattern_check(p, why, sizeof why), 0);
    return out;
}

static void pattern_bad(const char *p, const char *sub)
{
    cr_assert_eq(tf_conf_host_pattern_check(p, why, sizeof why), TF_EINVAL, "%s accepted", p);
    cr_assert_not_null(strstr(why, sub), "'%s' not in: %s", sub, why);
}

Test(host, valid_patterns_are_normalized)
{
    cr_expect_str_eq(norm_ok("portal.acme.example"), "portal.acme.example");
    cr_expect_str_eq(norm_ok("Portal.ACME.Example"), "portal.acme.example");
    cr_expect_str_eq(norm_ok("*.api.acme.example"), "*.api.acme.example");
    cr_expect_str_eq(norm_ok("*.Example.COM."), "*.example.com");
    cr_expect_str_eq(norm_ok("*"), "*");
    cr_expect_str_eq(norm_ok("localhost"), "localhost");
    cr_expect_str_eq(norm_ok("xn--bcher-kva.example"), "xn--bcher-kva.example");
}

Test(host, wildcard_rules)
{
    pattern_bad("f*.x", "partial-label wildcard");
    pattern_bad("*f.x", "partial-label wildcard");
    pattern_bad("*.*.x", "more than one wildcard label");
    pattern_bad("a.*.x", "not the left-most label");
    pattern_bad("a.*", "not the left-most label");
    pattern_bad("**", "partial-label wildcard");
    pattern_bad("*..x", "empty label");
    cr_expect_str_eq(norm_ok("*."), "*"); /* one trailing dot is the absolute form */
}

Test(host, label_and_length_rules)
{
    char label[80], name[300];
    memset(label, 'a', 64);
    strcpy(label + 64, ".example");
    pattern_bad(label, "longer than 63");
    label[1] = '.'; /* "a." + 62 a's: fine */
    cr_expect_eq(tf_conf_host_pattern_check(label, why, sizeof why), 0, "%s", why);
    for (size_t i = 0; i < 254; i++)
        name[i] = (i % 2) ? '.' : 'a';
    name[253] = 'a';
    name[254] = '\0';
    pattern_bad(name, "longer than 253");
    name[253] = '\0'; /* 253 characters: the limit */
    cr_expect_eq(tf_conf_host_pattern_check(name, why, sizeof why), 0, "%s", why);
    pattern_bad("", "empty host");
    pattern_bad("a..b", "empty label");
    pattern_bad(".a.b", "empty label");
    pattern_bad("a b.example", "invalid character ' '");
    pattern_bad("a_b.example", "invalid character '_'");
    pattern_bad("a\x01.example", "invalid byte 0x01");
    pattern_bad("-a.example", "starts or ends with '-'");
    pattern_bad("a-.example", "starts or ends with '-'");
}

Test(checks, strings)
{
    cr_expect_eq(tf_conf__check_abs_path("/x", why, sizeof why), 0);
    cr_expect_eq(tf_conf__check_abs_path("x", why, sizeof why), TF_EINVAL);
    cr_expect_not_null(strstr(why, "not an absolute path"));
    cr_expect_eq(tf_conf__check_access_log("stdout", why, sizeof why), 0);
    cr_expect_eq(tf_conf__check_access_log("off", why, sizeof why), 0);
    cr_expect_eq(tf_conf__check_access_log("/var/log/a.log", why, sizeof why), 0);
    cr_expect_eq(tf_conf__check_access_log("stderr", why, sizeof why), TF_EINVAL);
    cr_expect_eq(tf_conf__check_url_path("/health", why, sizeof why), 0);
    cr_expect_eq(tf_conf__check_url_path("health", why, sizeof why), TF_EINVAL);
    cr_expect_eq(tf_conf__check_url_path("/a b", why, sizeof why), TF_EINVAL);
    cr_expect_eq(tf_conf__check_tenant_name("acme-1.eu_west", why, sizeof why), 0);
    cr_expect_eq(tf_conf__check_tenant_name("a b", why, sizeof why), TF_EINVAL);
    cr_expect_eq(tf_conf__check_tenant_name("", why, sizeof why), TF_EINVAL);
    cr_expect_eq(tf_conf__check_nonempty("", why, sizeof why), TF_EINVAL);
}

Test(keys, levenshtein)
{
    cr_expect_eq(tf_conf__levenshtein("workers", "workers", 2), 0);
    cr_expect_eq(tf_conf__levenshtein("wokers", "workers", 2), 1);
    cr_expect_eq(tf_conf__levenshtein("wrokers", "workers", 2), 2);
    cr_expect_eq(tf_conf__levenshtein("", "abc", 5), 3);
    cr_expect_eq(tf_conf__levenshtein("kitten", "sitting", 5), 3);
    cr_expect_eq(tf_conf__levenshtein("kitten", "sitting", 2), 3); /* capped: cap + 1 */
}

Test(keys, suggest_only_near_misses)
{
    const tf_conf__key_t *root = tf_conf__schema_root();
    cr_expect_str_eq(tf_conf__suggest(root, "wokers"), "workers");
    cr_expect_str_eq(tf_conf__suggest(root, "tenant"), "tenants");
    cr_expect_str_eq(tf_conf__suggest(root, "TLS"), "tls");
    cr_expect_null(tf_conf__suggest(root, "frobnicate"));
    cr_expect_null(tf_conf__suggest(root, "timeout_handshake"));
}

Test(keys, schema_lookup)
{
    const tf_conf__key_t *root = tf_conf__schema_root();
    cr_expect_eq(tf_conf__schema_count(root), 11);
    const tf_conf__key_t *k = tf_conf__schema_find(root, "tenants", 7);
    cr_assert_not_null(k);
    cr_expect_eq(k->type, TF_CONF__T_TENANTS);
    cr_expect_null(tf_conf__schema_find(root, "tenant", 6));
    cr_expect_null(tf_conf__schema_find(root, "tenantsx", 8));
}
