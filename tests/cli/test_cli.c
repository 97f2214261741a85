/* End-to-end tests of the tlsfront command line (SPEC §2): exit codes,
 * usage text and error locations, run against the real binary. */
#include "run.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN(r, ...)                                                                            \
    do {                                                                                       \
        const char *argv_[] = {"tlsfront", __VA_ARGS__, NULL};                                 \
        cr_assert_eq(tf_run(&(r), argv_), 0, "could not start $TF_TLSFRONT");                  \
    } while (0)

static char *example_path(void)
{
    const char *src = getenv("TF_SOURCE_DIR");
    cr_assert_not_null(src, "TF_SOURCE_DIR is not set");
    char *p = malloc(strlen(src) + 32);
    cr_assert_not_null(p);
    sprintf(p, "%s/examples/tlsfront.yaml", src);
    return p;
}

Test(cli, no_arguments_prints_usage_and_exits_2)
{
    tf_run_t r;
    const char *argv[] = {"tlsfront", NULL};
    cr_assert_eq(tf_run(&r, argv), 0);
    cr_expect_eq(r.status, 2);
    cr_expect_not_null(strstr(r.err, "usage: tlsfront"));
    tf_run_dispose(&r);
}

Test(cli, help_goes_to_stdout_and_lists_only_working_commands)
{
    tf_run_t r;
    RUN(r, "--help");
    cr_expect_eq(r.status, 0);
    cr_expect_not_null(strstr(r.out, "check"));
    cr_expect_not_null(strstr(r.out, "version"));
    tf_run_dispose(&r);
}

Test(cli, unknown_command_exits_2)
{
    tf_run_t r;
    RUN(r, "frobnicate");
    cr_expect_eq(r.status, 2);
    cr_expect_not_null(strstr(r.err, "unknown command 'frobnicate'"));
    tf_run_dispose(&r);
}

Test(cli, version_names_every_library_and_the_fast_wolfssl)
{
    tf_run_t r;
    RUN(r, "version");
    cr_expect_eq(r.status, 0);
    cr_expect_not_null(strstr(r.out, "tlsfront "));
    cr_expect_not_null(strstr(r.out, "wolfSSL 5."));
    cr_expect_not_null(strstr(r.out, "libuv 1."));
    cr_expect_not_null(strstr(r.out, "http-parser 2."));
    cr_expect_not_null(strstr(r.out, "libyaml 0."));
#ifndef TF_EXPECT_SYSTEM_WOLFSSL
    cr_expect_not_null(strstr(r.out, "--enable-intelasm"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "assembly crypto: yes"), "%s", r.out);
#endif
    tf_run_dispose(&r);
}

Test(cli, check_accepts_the_shipped_example)
{
    char *ex = example_path();
    tf_run_t r;
    RUN(r, "check", "-c", ex);
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_not_null(strstr(r.out, "OK"));
    tf_run_dispose(&r);
    RUN(r, "check", "--config=" "/nonexistent-dir/x.yaml");
    cr_expect_eq(r.status, 1);
    tf_run_dispose(&r);
    free(ex);
}

Test(cli, check_reports_file_line_column_and_exits_1)
{
    char *path = tf_run_tempfile("bad.yaml", "listen:\n"
                                             "  https: [\"127.0.0.1:8443\"]\n"
                                             "timeouts:\n"
                                             "  handshake: 10 seconds\n"
                                             "tenants:\n"
                                             "  t:\n"
                                             "    hosts: [\"a.example\"]\n"
                                             "    backends: [\"127.0.0.1:8080\"]\n");
    tf_run_t r;
    RUN(r, "check", "-c", path);
    cr_expect_eq(r.status, 1);
    char want[4200];
    snprintf(want, sizeof want, "%s:4:14:", path);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in: %s", want, r.err);
    tf_run_dispose(&r);
    free(path);
}

Test(cli, check_names_a_missing_file)
{
    tf_run_t r;
    RUN(r, "check", "-c", "/nonexistent-dir/tlsfront.yaml");
    cr_expect_eq(r.status, 1);
    cr_expect_not_null(strstr(r.err, "/nonexistent-dir/tlsfront.yaml"), "%s", r.err);
    tf_run_dispose(&r);
}

Test(cli, check_rejects_unknown_options_with_exit_2)
{
    tf_run_t r;
    RUN(r, "check", "--bogus");
    cr_expect_eq(r.status, 2);
    cr_expect_not_null(strstr(r.err, "--bogus"));
    tf_run_dispose(&r);
    RUN(r, "check", "-c");
    cr_expect_eq(r.status, 2);
    tf_run_dispose(&r);
}
