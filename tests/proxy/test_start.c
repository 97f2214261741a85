/* tlsfront run refuses to start, with a message and exit status 1, when it
 * cannot serve: configuration errors, no default certificate, a listener
 * that cannot be bound (SPEC §2). */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tf_px_t px;

static void setup(void)
{
    tf_px_start(&px, NULL);
}

static void teardown(void)
{
    tf_px_stop(&px);
}

TestSuite(proxy_start, .init = setup, .fini = teardown, .timeout = 60);

/* Writes the running proxy's configuration with one line replaced. */
static char *variant(const char *from, const char *to)
{
    static char path[1300];
    snprintf(path, sizeof path, "%s/variant.yaml", px.tmp);
    int st;
    char *out = tf_px_sh(&st, "sed 's|%s|%s|' '%s/tlsfront.yaml' > '%s'", from, to, px.tmp, path);
    cr_assert_eq(st, 0, "%s", out);
    free(out);
    return path;
}

static char *run(int *st, const char *config)
{
    return tf_px_sh(st, "timeout 20 '%s' run -c '%s'", getenv("TF_TLSFRONT"), config);
}

/* The 1-based number of the first line of PATH that starts with PREFIX. */
static unsigned line_of(const char *path, const char *prefix)
{
    int st;
    char *out = tf_px_sh(&st, "grep -n -m1 '^%s' '%s' | cut -d: -f1", prefix, path);
    unsigned n = (unsigned)strtoul(out, NULL, 10);
    free(out);
    cr_assert_gt(n, 0, "no line starts with '%s' in %s", prefix, path);
    return n;
}

/* Asserts OUT has "PATH:LINE:COL: REST", LINE that of the line starting
 * with PREFIX: errors about a path the configuration names point at it. */
static void expect_at(const char *out, const char *path, const char *prefix, unsigned col,
                      const char *rest)
{
    char want[4096];
    snprintf(want, sizeof want, "%s:%u:%u: %s", path, line_of(path, prefix), col, rest);
    cr_expect_not_null(strstr(out, want), "want '%s' in:\n%s", want, out);
}

Test(proxy_start, no_default_certificate_refuses_to_start)
{
    int st;
    char *path = variant("default_cert: .*", "default_cert: /nonexistent/system.pem");
    char *out = run(&st, path);
    cr_expect_eq(st, 1, "%s", out);
    cr_expect_not_null(strstr(out, "no usable default certificate"), "%s", out);
    expect_at(out, path, "  default_cert:", 17,
              "/nonexistent/system.pem: no usable default certificate: tlsfront needs one");
    free(out);
}

Test(proxy_start, a_missing_ticket_keys_file_names_its_line)
{
    int st;
    char *path = variant("^  unknown_sni: .*",
                         "  unknown_sni: default\\n  ticket_keys_file: /nonexistent/tickets");
    char *out = run(&st, path);
    cr_expect_eq(st, 1, "%s", out);
    expect_at(out, path, "  ticket_keys_file:", 21,
              "/nonexistent/tickets: No such file or directory: check tls.ticket_keys_file\n");
    free(out);
}

Test(proxy_start, an_access_log_that_cannot_be_opened_names_its_line)
{
    int st;
    char *path =
        variant("^  level: debug", "  level: debug\\n  access: \"/nonexistent/dir/access.log\"");
    char *out = run(&st, path);
    cr_expect_eq(st, 1, "%s", out);
    expect_at(out, path, "  access:", 11,
              "/nonexistent/dir/access.log: cannot open: No such file or directory; check "
              "log.access and its directory\n");
    free(out);
}

Test(proxy_start, an_unreadable_admin_token_file_names_its_line)
{
    int st;
    char *path = variant("^workers: .*", "admin:\\n  listen: \"127.0.0.1:1\"\\n"
                                         "  token_file: /nonexistent/token\\nworkers: 1");
    char *out = run(&st, path);
    cr_expect_eq(st, 1, "%s", out);
    expect_at(out, path, "  token_file:", 15,
              "/nonexistent/token: cannot read admin.token_file: No such file or directory; "
              "write the token (one line) into it\n");
    free(out);
}

Test(proxy_start, configuration_errors_as_check_prints_them)
{
    int st;
    char *out = run(&st, variant("max_connections: .*", "max_connections: lots"));
    cr_expect_eq(st, 1, "%s", out);
    cr_expect_not_null(strstr(out, "variant.yaml:"), "%s", out);
    cr_expect_not_null(strstr(out, "configuration has errors"), "%s", out);
    free(out);
}

Test(proxy_start, address_in_use_refuses_to_start)
{
    int st;
    /* The backend's port is held by a socket without SO_REUSEPORT. */
    char listen[64];
    snprintf(listen, sizeof listen, "https: [\"127.0.0.1:%u\"]", px.backend_port);
    char *out = run(&st, variant("https: .*", listen));
    cr_expect_eq(st, 1, "%s", out);
    cr_expect_not_null(strstr(out, "cannot listen"), "%s", out);
    free(out);
}

/* A ready file that cannot be written stops the start: a supervisor waiting
 * for it must not wait for ever on a proxy that runs. */
Test(proxy_start, an_unwritable_ready_file_refuses_to_start)
{
    int st;
    char *out = tf_px_sh(&st,
                         "TLSFRONT_READY_FILE=/nonexistent/dir/ready timeout 20 '%s' run -c "
                         "'%s/tlsfront.yaml'",
                         getenv("TF_TLSFRONT"), px.tmp);
    cr_expect_eq(st, 1, "%s", out);
    cr_expect_not_null(strstr(out, "TLSFRONT_READY_FILE: cannot write /nonexistent/dir/ready: "),
                       "%s", out);
    free(out);
}

Test(proxy_start, help_lists_run)
{
    int st;
    char *out = tf_px_sh(&st, "'%s' --help", getenv("TF_TLSFRONT"));
    cr_expect_not_null(strstr(out, "  run "), "%s", out);
    free(out);
}

/* An admin API off loopback without a token would let anyone replace
 * certificates: refused (found by review). */
Test(proxy_start, admin_off_loopback_without_a_token_refuses_to_start)
{
    int st;
    char *path = variant("^workers: .*", "admin: {listen: \"0.0.0.0:1\"}\\nworkers: 1");
    char *out = run(&st, path);
    cr_expect_eq(st, 1, "%s", out);
    cr_expect_not_null(strstr(out, "admin.listen is not a loopback address"), "%s", out);
    free(out);
}

/* A second instance on the address the first one listens on: every
 * listener sets SO_REUSEPORT (one socket per worker), so it used to start
 * and take half of the clients. Refused, naming the address and the first
 * instance; the first keeps serving (issue 13, item 5). */
Test(proxy_start, a_second_instance_on_the_same_address_refuses_to_start)
{
    int st;
    char listen[64], addr[32], who[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", px.port);
    snprintf(listen, sizeof listen, "https: [\"%s\"]", addr);
    char *out = run(&st, variant("https: .*", listen));
    cr_expect_eq(st, 1, "%s", out);
    cr_expect_not_null(strstr(out, addr), "%s", out);
    cr_expect_not_null(strstr(out, "another process already listens on this address"), "%s", out);
    snprintf(who, sizeof who, "(pid %ld, tlsfront)", (long)px.proxy_pid);
    cr_expect_not_null(strstr(out, who), "want '%s' in:\n%s", who, out);
    cr_expect_null(strstr(out, "listening on"), "%s", out);
    free(out);
    cr_expect(tf_px_echo(&px, "portal.acme.example", "still-the-first"));
}

/* The same for listen.http, whose sockets are made the same way. */
Test(proxy_start, a_second_instance_on_an_http_address_in_use_refuses_to_start)
{
    int st;
    char listen[128], addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", px.port);
    snprintf(listen, sizeof listen, "https: [\"127.0.0.1:0\"]\\n  http: [\"%s\"]", addr);
    char *out = run(&st, variant("https: .*", listen));
    cr_expect_eq(st, 1, "%s", out);
    cr_expect_not_null(strstr(out, addr), "%s", out);
    cr_expect_not_null(strstr(out, "another process already listens on this address"), "%s", out);
    cr_expect_null(strstr(out, "listening on"), "%s", out);
    free(out);
    cr_expect(tf_px_echo(&px, "portal.acme.example", "still-the-first"));
}

/* The admin listener is bound (and fails) before any listener is
 * announced: no "listening on" line for a proxy that does not run. */
Test(proxy_start, an_admin_address_in_use_refuses_to_start_before_announcing)
{
    int st;
    char admin[128];
    snprintf(admin, sizeof admin, "admin: {listen: \"127.0.0.1:%u\"}\\nworkers: 1", px.port);
    char *out = run(&st, variant("^workers: .*", admin));
    cr_expect_eq(st, 1, "%s", out);
    cr_expect_not_null(strstr(out, "admin.listen: cannot listen"), "%s", out);
    cr_expect_null(strstr(out, "listening on"), "%s", out);
    free(out);
}

/* IPv6 too: "[::]:P" beside a proxy on "[::]:P" is refused, and so is
 * "[::1]:P", which its wildcard covers (issue 13, item 5). */
Test(proxy_start, a_second_instance_on_an_ipv6_address_in_use_refuses_to_start)
{
    tf_px_stop(&px);
    tf_px_opts_t o = {.dual_stack = true};
    tf_px_start(&px, &o);
    cr_assert_eq(px.nhttps, 2);
    const char *hosts[] = {"[::]", "[::1]"};
    for (size_t i = 0; i < 2; i++) {
        int st;
        char listen[64], addr[32], who[64];
        snprintf(addr, sizeof addr, "%s:%u", hosts[i], px.https_ports[1]);
        snprintf(listen, sizeof listen, "https: [\"%s\"]", addr);
        char *out = run(&st, variant("https: .*", listen));
        cr_expect_eq(st, 1, "%s", out);
        cr_expect_not_null(strstr(out, addr), "%s", out);
        snprintf(who, sizeof who, "(pid %ld, tlsfront)", (long)px.proxy_pid);
        cr_expect_not_null(strstr(out, who), "want '%s' in:\n%s", who, out);
        free(out);
    }
}
