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

Test(proxy_start, no_default_certificate_refuses_to_start)
{
    int st;
    char *out = run(&st, variant("default_cert: .*", "default_cert: /nonexistent/system.pem"));
    cr_expect_eq(st, 1, "%s", out);
    cr_expect_not_null(strstr(out, "no usable default certificate"), "%s", out);
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
