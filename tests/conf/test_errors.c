/* Every class of configuration error: exact FILE:LINE:COLUMN and the gist of
 * the message, collection of several errors, and their order. */
#include "helpers.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Test(syntax, location_of_a_yaml_error)
{
    char err[4096];
    t_load_fail("workers: 1\nlisten:\n  https: [\"127.0.0.1:443\"\nfoo: 1\n", TF_EYAML, err,
                sizeof err);
    cr_expect(t_has_error(err, 4, 1, "YAML syntax error: did not find expected ',' or ']'"), "%s",
              err);
    cr_expect(t_has_error(err, 4, 1, "flow sequence at line 3, column 10"), "%s", err);
    cr_expect_eq(t_count_lines(err), 1);
}

Test(syntax, bad_indentation)
{
    char err[4096];
    t_load_fail("listen:\n  https: [\"127.0.0.1:443\"]\n   http: []\n", TF_EYAML, err, sizeof err);
    cr_expect(t_has_error(err, 3, 4, "did not find expected key"), "%s", err);
}

Test(syntax, invalid_utf8_is_located)
{
    char err[4096];
    t_load_fail("workers: 1\nuser: \"a\xff\"\n", TF_EYAML, err, sizeof err);
    cr_expect(t_has_error(err, 2, 9, "UTF-8"), "%s", err);
}

Test(syntax, undefined_alias)
{
    char err[4096];
    t_load_fail("workers: *nope\n", TF_EYAML, err, sizeof err);
    cr_expect(t_has_error(err, 1, 10, "undefined alias"), "%s", err);
}

Test(structure, empty_document)
{
    t_expect_error("", 1, 1, "the configuration is empty");
    t_expect_error("# only a comment\n", 1, 1, "listen.https and one tenant");
}

Test(structure, top_level_must_be_a_mapping)
{
    t_expect_error("- a\n- b\n", 1, 1, "must be a mapping of keys");
}

Test(structure, one_document_only)
{
    t_expect_error(T_MINIMAL "---\nworkers: 2\n", 7, 1, "a second YAML document");
}

Test(keys, unknown_key_did_you_mean)
{
    t_expect_error("wokers: 2\n" T_MINIMAL, 1, 1,
                   "unknown key 'wokers' at the top level; did you mean 'workers'?");
    t_expect_error("timeouts:\n  idel: 5s\n" T_MINIMAL, 2, 3,
                   "unknown key 'idel' in 'timeouts'; did you mean 'idle'?");
    t_expect_error(T_LISTEN "tenants:\n  t:\n    host: [a.example]\n    backends: [\"a:1\"]\n", 5,
                   5, "in 'tenants.t'; did you mean 'hosts'?");
    t_expect_error("listen:\n  htps: [\"0.0.0.0:443\"]\n" T_TENANT, 2, 3, "did you mean");
}

Test(keys, unknown_key_without_near_miss_lists_valid_keys)
{
    t_expect_error("limits:\n  frobnicate: 1\n" T_MINIMAL, 2, 3,
                   "valid keys are: max_connections, max_header_bytes");
}

Test(keys, key_at_the_wrong_level_names_its_section)
{
    t_expect_error("idle: 5s\n" T_MINIMAL, 1, 1,
                   "unknown key 'idle' at the top level; it belongs under its section: "
                   "'timeouts.idle'");
    t_expect_error("hosts: [a.example]\n" T_MINIMAL, 1, 1, "'tenants.NAME.hosts'");
}

Test(keys, merge_keys_are_explained)
{
    t_expect_error(T_LISTEN "tenants:\n  t:\n    <<: {mode: tcp}\n    hosts: [a.example]\n"
                            "    backends: [\"a:1\"]\n",
                   5, 5, "YAML merge keys (<<) are not supported");
}

Test(keys, duplicate_key)
{
    t_expect_error("workers: 1\nworkers: 2\n" T_MINIMAL, 2, 1,
                   "duplicate key 'workers' (first at line 1, column 1)");
    t_expect_error("log: {level: info, level: debug}\n" T_MINIMAL, 1, 20, "duplicate key 'level'");
}

Test(keys, non_scalar_key)
{
    t_expect_error("? [a, b]\n: 1\n" T_MINIMAL, 1, 3, "keys must be plain names, got a list");
}

Test(types, wrong_types)
{
    t_expect_error("workers: [1]\n" T_MINIMAL, 1, 10, "workers: expected a number of workers");
    t_expect_error("log: info\n" T_MINIMAL, 1, 6, "log: expected a mapping of keys, got a single");
    t_expect_error("listen:\n  https: \"0.0.0.0:443\"\n" T_TENANT, 2, 10,
                   "listen.https: expected a list like");
    t_expect_error("listen:\n  https: [[\"0.0.0.0:443\"]]\n" T_TENANT, 2, 11,
                   "expected an address such as");
    t_expect_error("tenants: [a, b]\n" T_LISTEN, 1, 10, "expected a mapping of tenant name");
    t_expect_error(T_LISTEN "tenants:\n  t: [a]\n", 4, 6,
                   "tenants.t: expected a mapping with hosts: and backends:");
    t_expect_error("timeouts:\n  idle: {a: 1}\n" T_MINIMAL, 2, 9, "expected a duration");
    t_expect_error("tls:\n  default_cert: ~\n" T_MINIMAL, 2, 17, "expected a string, got null");
    t_expect_error("admin:\n  listen: ~\n" T_MINIMAL, 2, 11, "got null");
    t_expect_error("user: \"a\\0b\"\n" T_MINIMAL, 1, 7, "NUL character");
}

Test(values, bad_durations)
{
    t_expect_error("timeouts:\n  handshake: 10\n" T_MINIMAL, 2, 14,
                   "timeouts.handshake: '10' has no unit; durations need one of ms, s, m or h");
    t_expect_error("timeouts:\n  handshake: 10 seconds\n" T_MINIMAL, 2, 14, "with no space");
    t_expect_error("timeouts:\n  idle: 2d\n" T_MINIMAL, 2, 9, "unknown unit 'd'");
}

Test(values, out_of_range)
{
    t_expect_error("workers: 0\n" T_MINIMAL, 1, 10,
                   "workers: 0 is out of range; use 1 to 256 or \"auto\"");
    t_expect_error("workers: 257\n" T_MINIMAL, 1, 10, "out of range");
    t_expect_error("workers: many\n" T_MINIMAL, 1, 10, "not a whole number");
    t_expect_error("limits:\n  max_connections: 1000001\n" T_MINIMAL, 2, 20, "use 1 to 1000000");
    t_expect_error("limits:\n  max_header_bytes: 1023\n" T_MINIMAL, 2, 21, "use 1024 to 1048576");
    t_expect_error("limits:\n  max_header_bytes: 1048577\n" T_MINIMAL, 2, 21, "out of range");
    t_expect_error("limits:\n  max_header_fields: 7\n" T_MINIMAL, 2, 22,
                   "max_header_fields: 7 is out of range; use 8 to 1000");
    t_expect_error("limits:\n  max_header_fields: 1001\n" T_MINIMAL, 2, 22, "use 8 to 1000");
    t_expect_error("limits:\n  max_header_fields: many\n" T_MINIMAL, 2, 22, "not a whole number");
    t_expect_error("timeouts:\n  idle: 0s\n" T_MINIMAL, 2, 9, "too short; use at least 1ms");
    t_expect_error("timeouts:\n  tunnel: 169h\n" T_MINIMAL, 2, 11, "too long; use at most 168h");
    t_expect_error(T_LISTEN "tenants:\n  t:\n    hosts: [a.example]\n    backends: [\"a:1\"]\n"
                            "    health: {interval: 50ms}\n",
                   7, 24, "too short; use at least 100ms");
}

Test(values, http2)
{
    t_expect_error("http2:\n  max_concurrent_streams: 0\n" T_MINIMAL, 2, 27,
                   "http2.max_concurrent_streams: 0 is out of range; use 1 to 1000");
    t_expect_error("http2:\n  max_concurrent_streams: 1001\n" T_MINIMAL, 2, 27, "use 1 to 1000");
    t_expect_error("http2:\n  max_concurrent_streams: -1\n" T_MINIMAL, 2, 27,
                   "http2.max_concurrent_streams");
    t_expect_error("http2:\n  max_concurrent_streams: lots\n" T_MINIMAL, 2, 27,
                   "not a whole number");
    t_expect_error("http2:\n  max_concurrent_streams: [1]\n" T_MINIMAL, 2, 27,
                   "expected a whole number");
    t_expect_error("http2:\n  enabled: maybe\n" T_MINIMAL, 2, 12, "http2.enabled");
    t_expect_error("http2:\n  enabled: ~\n" T_MINIMAL, 2, 12, "http2.enabled");
    t_expect_error("http2: on\n" T_MINIMAL, 1, 8, "http2: expected a mapping of keys");
    t_expect_error("http2:\n  enable: false\n" T_MINIMAL, 2, 3,
                   "unknown key 'enable' in 'http2'; did you mean 'enabled'?");
    t_expect_error("http2:\n  streams: 10\n" T_MINIMAL, 2, 3, "unknown key 'streams' in 'http2'");
    t_expect_error("max_concurrent_streams: 10\n" T_MINIMAL, 1, 1,
                   "it belongs under its section: 'http2.max_concurrent_streams'");
}

Test(values, bad_addresses)
{
    t_expect_error("listen:\n  https: [\"0.0.0.0\"]\n" T_TENANT, 2, 11, "has no port");
    t_expect_error("listen:\n  https: [\"::1:443\"]\n" T_TENANT, 2, 11, "need brackets");
    t_expect_error("listen:\n  https: [\"example.com:443\"]\n" T_TENANT, 2, 11,
                   "listen addresses must be IP literals or localhost");
    t_expect_error("listen:\n  https: [\"0.0.0.0:70000\"]\n" T_TENANT, 2, 11,
                   "use a number from 1 to 65535");
    t_expect_error(T_LISTEN
                   "tenants:\n  t:\n    hosts: [a.example]\n    backends: [\"10.0.0.1\"]\n",
                   6, 16, "tenants.t.backends: '10.0.0.1' has no port");
    t_expect_error("admin:\n  listen: \"*:9443\"\n" T_MINIMAL, 2, 11, "has no host");
    t_expect_error(T_LISTEN
                   "tenants:\n  t:\n    hosts: [a.example]\n    backends: [\"10.0.0.1:0\"]\n",
                   6, 16, "invalid port '0'");
}

/* Every listener may ask for a port the kernel chooses (SPEC: tlsfront
 * reports the ports it bound). */
Test(values, listeners_on_port_zero)
{
    tf_conf_t *c =
        t_load("listen:\n  https: [\"127.0.0.1:0\", \"[::1]:0\"]\n"
               "  http: [\"127.0.0.1:0\"]\nadmin:\n  listen: \"127.0.0.1:0\"\n" T_TENANT);
    cr_expect_eq(tf_conf_listen_https(c)->items[0].port, 0);
    cr_expect_eq(tf_conf_listen_https(c)->items[1].port, 0);
    cr_expect_eq(tf_conf_listen_http(c)->items[0].port, 0);
    cr_expect_eq(tf_conf_admin(c)->listen.port, 0);
    tf_conf_unref(c);
}

Test(values, enums)
{
    t_expect_error(
        "log:\n  level: verbose\n" T_MINIMAL, 2, 10,
        "log.level: 'verbose' is not a valid value; use one of: error, warn, info, debug");
    t_expect_error("log:\n  format: xml\n" T_MINIMAL, 2, 11, "use one of: text, json");
    t_expect_error("tls:\n  unknown_sni: drop\n" T_MINIMAL, 2, 16, "use one of: default, reject");
    t_expect_error("tls:\n  min_version: 1.1\n" T_MINIMAL, 2, 16, "use one of: 1.2, 1.3");
    t_expect_error(T_LISTEN "tenants:\n  t:\n    hosts: [a.example]\n    backends: [\"a:1\"]\n"
                            "    mode: udp\n",
                   7, 11, "tenants.t.mode: 'udp' is not a valid value; use one of: http, tcp");
}

Test(values, paths)
{
    t_expect_error("log:\n  access: access.log\n" T_MINIMAL, 2, 11,
                   "write stdout, off or an absolute path");
    t_expect_error("acme:\n  webroot: acme\n" T_MINIMAL, 2, 12, "not an absolute path");
    t_expect_error(T_LISTEN "tenants:\n  t:\n    hosts: [a.example]\n    backends: [\"a:1\"]\n"
                            "    health: {path: health}\n",
                   7, 20, "must start with '/'");
    t_expect_error("tls:\n  certs: [\"\"]\n" T_MINIMAL, 2, 11, "empty string");
}

Test(hosts, invalid_patterns)
{
    const char *pre = T_LISTEN "tenants:\n  t:\n    backends: [\"a:1\"]\n    hosts: ";
    char y[512];
    static const struct {
        const char *pattern;
        const char *sub;
    } cases[] = {
        {"\"f*.x\"", "partial-label wildcard"},   {"\"*.*.x\"", "more than one wildcard label"},
        {"\"a.*.x\"", "not the left-most label"}, {"\"a..x\"", "empty label"},
        {"\"a/b.x\"", "invalid character '/'"},   {"\"\"", "empty host"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(y, sizeof y, "%s[%s]\n", pre, cases[i].pattern);
        t_expect_error(y, 6, 13, cases[i].sub);
    }
}

Test(hosts, duplicate_across_tenants_names_both_and_the_first_location)
{
    t_expect_error(T_LISTEN "tenants:\n"
                            "  acme:\n"
                            "    hosts: [\"portal.acme.example\"]\n"
                            "    backends: [\"a:1\"]\n"
                            "  other:\n"
                            "    hosts: [\"b.example\", \"Portal.ACME.example.\"]\n"
                            "    backends: [\"a:1\"]\n",
                   8, 26,
                   "host 'portal.acme.example' of tenant 'other' is already listed by tenant "
                   "'acme' (line 5, column 13)");
}

Test(hosts, catch_all_twice)
{
    t_expect_error(T_LISTEN "tenants:\n"
                            "  a: {hosts: [\"*\"], backends: [\"a:1\"]}\n"
                            "  b: {hosts: [\"*\"], backends: [\"a:1\"]}\n",
                   5, 15, "host '*' of tenant 'b' is already listed by tenant 'a' (line 4");
}

Test(hosts, duplicate_in_one_tenant)
{
    t_expect_error(T_LISTEN "tenants:\n"
                            "  a: {hosts: [x.example, X.example], backends: [\"a:1\"]}\n",
                   4, 26, "host 'x.example' is listed twice in tenant 'a' (first at line 4");
}

Test(hosts, many_hosts_no_false_duplicates)
{
    size_t n = 3000;
    char *y = malloc(n * 64 + 512);
    cr_assert_not_null(y);
    char *p = y + sprintf(y, T_LISTEN "tenants:\n");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "  t%zu: {hosts: [h%zu.example], backends: [\"a:1\"]}\n", i, i);
    tf_conf_t *c = t_load(y);
    cr_expect_eq(tf_conf_tenant_count(c), n);
    tf_conf_unref(c);
    free(y);
}

Test(required, no_listen_https)
{
    t_expect_error(T_TENANT, 1, 1, "listen: missing required key 'https'");
    t_expect_error("listen:\n  http: [\"0.0.0.0:80\"]\n" T_TENANT, 1, 1,
                   "listen: missing required key 'https'; add it, e.g. https:");
    t_expect_error("workers: 1\nlisten:\n" T_TENANT, 2, 1, "missing required key 'https'");
    t_expect_error("listen:\n  https: []\n" T_TENANT, 2, 10,
                   "listen.https: is empty; add at least one entry");
}

Test(required, tenants)
{
    t_expect_error(T_LISTEN, 1, 1, "configuration: missing required key 'tenants'");
    t_expect_error(T_LISTEN "tenants: {}\n", 3, 10, "tenants: is empty; add at least one tenant");
    t_expect_error(T_LISTEN "tenants:\n", 3, 1, "tenants: is empty");
    t_expect_error(T_LISTEN "tenants:\n  t: {backends: [\"a:1\"]}\n", 4, 3,
                   "tenants.t: missing required key 'hosts'");
    t_expect_error(T_LISTEN "tenants:\n  t: {hosts: [a.example]}\n", 4, 3,
                   "tenants.t: missing required key 'backends'");
    t_expect_error(T_LISTEN "tenants:\n  t: {hosts: [], backends: [\"a:1\"]}\n", 4, 14,
                   "tenants.t.hosts: is empty");
    t_expect_error(T_LISTEN "tenants:\n  t:\n", 4, 3, "tenants.t: expected a mapping");
}

Test(required, tenant_names)
{
    t_expect_error(T_LISTEN "tenants:\n  \"a b\": {hosts: [a.example], backends: [\"a:1\"]}\n", 4,
                   3, "tenant name 'a b' is invalid");
    t_expect_error(T_LISTEN "tenants:\n"
                            "  a: {hosts: [a.example], backends: [\"a:1\"]}\n"
                            "  a: {hosts: [b.example], backends: [\"a:1\"]}\n",
                   5, 3, "duplicate tenant 'a' (first at line 4, column 3)");
}

Test(collect, every_error_earliest_first)
{
    char err[8192];
    t_load_fail("wokers: 3\n"
                "log:\n"
                "  level: verbose\n"
                "timeouts:\n"
                "  idle: 10\n"
                "tenants:\n"
                "  a: {hosts: [\"*\"], backends: [\"x\"]}\n"
                "  b: {hosts: [\"*\"], backends: [\"127.0.0.1:1\"]}\n",
                TF_ECONF, err, sizeof err);
    cr_expect_eq(t_count_lines(err), 6, "%s", err);
    cr_expect_eq(strncmp(err, T_NAME ":1:1: unknown key 'wokers'", 27), 0, "%s", err);
    cr_expect(t_has_error(err, 1, 1, "missing required key 'https'"), "%s", err);
    cr_expect(t_has_error(err, 3, 10, "'verbose'"), "%s", err);
    cr_expect(t_has_error(err, 5, 9, "no unit"), "%s", err);
    cr_expect(t_has_error(err, 7, 32, "has no port"), "%s", err);
    cr_expect(t_has_error(err, 8, 15, "host '*'"), "%s", err);
    /* Sorted by position. */
    cr_expect_lt(strstr(err, ":3:10:"), strstr(err, ":5:9:"));
    cr_expect_lt(strstr(err, ":5:9:"), strstr(err, ":7:32:"));
}

Test(collect, capped_and_the_earliest_kept)
{
    char *y = malloc(100000), *err = malloc(65536);
    cr_assert(y && err);
    /* The tenants come first in the file but are checked last: the cap must
     * still keep the earliest errors, not the first found. */
    char *p = y + sprintf(y, T_LISTEN "tenants:\n  t:\n    backends: [\"a:1\"]\n    hosts:\n");
    for (int i = 0; i < 30; i++)
        p += sprintf(p, "    - \"x*%d.example\"\n", i);
    p += sprintf(p, "timeouts:\n");
    for (int i = 0; i < 40; i++)
        p += sprintf(p, "  bogus%d: 1s\n", i);
    t_load_fail(y, TF_ECONF, err, 65536);
    cr_expect_eq(t_count_lines(err), TF_CONF_MAX_ERRORS + 1, "%s", err);
    cr_expect(t_has_error(err, 7, 7, "partial-label wildcard"), "%s", err);
    cr_expect(t_has_error(err, 36, 7, "partial-label wildcard"), "%s", err);
    cr_expect(t_has_error(err, 57, 3, "bogus19"), "%s", err);
    cr_expect(!t_has_error(err, 58, 3, "bogus20"), "%s", err);
    cr_expect_not_null(strstr(err, T_NAME ": 20 more errors not shown"), "%s", err);
    free(y);
    free(err);
}

Test(collect, small_buffer_truncates_at_a_line)
{
    char err[100];
    memset(err, 'x', sizeof err);
    t_load_fail("wokers: 1\nfoo: 2\n" T_MINIMAL, TF_ECONF, err, sizeof err);
    cr_expect_eq(err[strlen(err) - 1], '\n', "%s", err);
    cr_expect_eq(t_count_lines(err), 1, "%s", err);
    tf_conf_t *c = NULL;
    cr_expect_eq(tf_conf_load_buffer(T_NAME, "x", 1, &c, NULL, 0), TF_ECONF);
    cr_expect_eq(tf_conf_load_buffer(T_NAME, "x", 1, &c, err, 1), TF_ECONF);
    cr_expect_eq(err[0], '\0');
}

Test(collect, control_characters_do_not_break_lines)
{
    char err[4096];
    t_load_fail("\"wo\\nkers\": 1\n" T_MINIMAL, TF_ECONF, err, sizeof err);
    cr_expect_eq(t_count_lines(err), 1, "%s", err);
    cr_expect(t_has_error(err, 1, 1, "unknown key 'wo?kers'"), "%s", err);
}

Test(file, missing_file)
{
    char err[4096];
    tf_conf_t *c = NULL;
    int rc = tf_conf_load_file("/nonexistent-dir/tlsfront.yaml", &c, err, sizeof err);
    cr_expect_eq(rc, -ENOENT);
    cr_expect_null(c);
    cr_expect_not_null(strstr(err, "/nonexistent-dir/tlsfront.yaml: cannot read: No such file or "
                                   "directory; check that the file exists"),
                       "%s", err);
}

Test(file, directory)
{
    char err[4096];
    tf_conf_t *c = NULL;
    int rc = tf_conf_load_file("/", &c, err, sizeof err);
    cr_expect_eq(rc, -EISDIR);
    cr_expect_not_null(strstr(err, "/: cannot read: Is a directory"), "%s", err);
}

Test(file, errors_name_the_file)
{
    char path[] = "/tmp/tf-conf-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *y = "listen:\n  https: [\"0.0.0.0:443\"]\nworkers: 0\n" T_TENANT;
    cr_assert_eq(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    char err[4096], want[128];
    tf_conf_t *c = NULL;
    cr_expect_eq(tf_conf_load_file(path, &c, err, sizeof err), TF_ECONF);
    snprintf(want, sizeof want, "%s:3:10: workers: 0 is out of range", path);
    cr_expect_not_null(strstr(err, want), "%s", err);
    unlink(path);
}

Test(file, too_large)
{
    char path[] = "/tmp/tf-conf-big-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, TF_CONF_MAX_FILE_BYTES + 1), 0);
    close(fd);
    char err[4096];
    tf_conf_t *c = NULL;
    cr_expect_eq(tf_conf_load_file(path, &c, err, sizeof err), TF_ETOOBIG);
    cr_expect_null(c);
    cr_expect_not_null(strstr(err, "larger than 16 MiB"), "%s", err);
    unlink(path);
}

Test(required, tenant_name_with_nul)
{
    t_expect_error(T_LISTEN "tenants:\n  \"a\\0b\": {hosts: [a.example], backends: [\"a:1\"]}\n", 4,
                   3, "must not contain a NUL character");
    t_expect_error(T_LISTEN "tenants:\n  ? [x]\n  : {hosts: [a.example], backends: [\"a:1\"]}\n", 4,
                   5, "a tenant name must be a plain name, got a list");
}
