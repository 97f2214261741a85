/* End-to-end tests of the tlsfront command line (SPEC §2): exit codes,
 * usage text and error locations, run against the real binary. */
#include "run.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUN(r, ...)                                                                                \
    do {                                                                                           \
        const char *argv_[] = {"tlsfront", __VA_ARGS__, NULL};                                     \
        cr_assert_eq(tf_run(&(r), argv_), 0, "could not start $TF_TLSFRONT");                      \
    } while (0)

/* The demo PKI and configuration (scripts/demo-pki.sh), generated once into
 * the build tree; returns the directory. */
static const char *demo_dir(void)
{
    static char dir[1024];
    const char *src = getenv("TF_SOURCE_DIR");
    const char *build = getenv("TF_BUILD_DIR");
    cr_assert_not_null(src, "TF_SOURCE_DIR is not set");
    cr_assert_not_null(build, "TF_BUILD_DIR is not set");
    snprintf(dir, sizeof dir, "%s/tests/cli-demo", build);
    /* Tests run in parallel processes: one makes the PKI, the others wait. */
    char cmd[6500];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && flock '%s.lock' sh -c \"[ -f '%s/tlsfront.yaml' ] || "
             "bash '%s/scripts/demo-pki.sh' '%s' >/dev/null\"",
             dir, dir, dir, src, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    return dir;
}

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    cr_assert_not_null(p);
    sprintf(p, "%s/%s", dir, name);
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
    cr_expect_not_null(strstr(r.out, "cert "));
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
    cr_expect_not_null(strstr(r.out, "jansson 2."));
#ifndef TF_EXPECT_SYSTEM_WOLFSSL
    cr_expect_not_null(strstr(r.out, "--enable-intelasm"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "assembly crypto: yes"), "%s", r.out);
#endif
    tf_run_dispose(&r);
}

Test(cli, check_accepts_the_demo_configuration_and_its_certificates)
{
    char *cfg = path_in(demo_dir(), "tlsfront.yaml");
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_not_null(strstr(r.out, "configuration OK; 4 certificate bundles"), "%s", r.out);
    tf_run_dispose(&r);
    free(cfg);
}

/* examples/contact-centre.yaml (issue 14's site: routes, balancing, policy)
 * is accepted by `tlsfront check` once its certificate directory exists:
 * the example and its error pages copied beside the demo PKI's bundles. */
Test(cli, check_accepts_the_contact_centre_example)
{
    const char *demo = demo_dir();
    char dir[] = "/tmp/tf-cli-example-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cp -r '%s/examples/contact-centre.yaml' '%s/examples/errors' '%s/' && "
             "sed -i 's#/etc/tlsfront/certs#%s/certs#g' '%s/contact-centre.yaml'",
             getenv("TF_SOURCE_DIR"), getenv("TF_SOURCE_DIR"), dir, demo, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char *cfg = path_in(dir, "contact-centre.yaml");
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_not_null(strstr(r.out, "configuration OK"), "%s", r.out);
    tf_run_dispose(&r);
    free(cfg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(cli, check_fails_on_a_rejected_bundle_and_warns_for_uncovered_hosts)
{
    const char *demo = demo_dir();
    char text[8192];
    snprintf(text, sizeof text,
             "listen:\n  https: [\"127.0.0.1:8443\"]\n"
             "tls:\n  certs: [\"%s/certs\", \"%s/broken.pem\"]\n"
             "  default_cert: %s/certs/system.pem\n"
             "tenants:\n  shop:\n    hosts: [\"shop.example\", \"*.acme.example\"]\n"
             "    backends: [\"127.0.0.1:8081\"]\n",
             demo, demo, demo);
    char *cfg = tf_run_tempfile("tlsfront.yaml", text);
    char *broken = path_in(demo, "broken.pem");
    FILE *f = fopen(broken, "w");
    cr_assert_not_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", f);
    fclose(f);

    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect_not_null(strstr(r.err, "error: "), "%s", r.err);
    cr_expect_not_null(strstr(r.err, "broken.pem"), "%s", r.err);
    cr_expect_not_null(strstr(r.err, "no certificate covers 'shop.example'"), "%s", r.err);
    cr_expect_not_null(strstr(r.err, "no certificate covers '*.acme.example'"), "%s", r.err);
    cr_expect_not_null(strstr(r.err, "tenant 'shop'"), "%s", r.err);
    cr_expect_null(strstr(r.err, "covers 'portal.acme.example'"), "%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
    free(broken);
}

Test(cli, check_reports_a_missing_certificate_directory)
{
    const char *demo = demo_dir();
    char text[4096];
    snprintf(text, sizeof text,
             "listen:\n  https: [\"127.0.0.1:8443\"]\n"
             "tls:\n  certs: [\"/nonexistent-certs\"]\n"
             "  default_cert: %s/certs/system.pem\n"
             "tenants:\n  all:\n    hosts: [\"*\"]\n    backends: [\"127.0.0.1:8081\"]\n",
             demo);
    char *cfg = tf_run_tempfile("tlsfront.yaml", text);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1);
    cr_expect_not_null(strstr(r.err, "/nonexistent-certs: cannot read"), "%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
}

Test(cli, cert_describes_a_bundle_and_exits_0)
{
    char *pem = path_in(demo_dir(), "certs/acme.pem");
    tf_run_t r;
    RUN(r, "cert", pem);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_not_null(strstr(r.out, ": OK"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "portal.acme.example, chat.acme.example"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "1. /CN=portal.acme.example"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "2. /O=tlsfront demo/CN=tlsfront demo intermediate"));
    cr_expect_not_null(strstr(r.out, "ECDSA P-256"));
    cr_expect_not_null(strstr(r.out, "days left"));
    cr_expect_null(strstr(r.out, "PRIVATE KEY"), "the key must never be printed");
    tf_run_dispose(&r);
    free(pem);
}

Test(cli, cert_json_is_one_array_and_a_rejected_bundle_exits_1)
{
    const char *demo = demo_dir();
    char *good = path_in(demo, "certs/acme.pem");
    /* The certificate alone, with no key beside it: rejected. */
    char *crt = path_in(demo, "pki/acme.crt");
    char *bad = tf_run_tempfile("leaf-only.pem", "");
    char cp[4200];
    snprintf(cp, sizeof cp, "cp '%s' '%s'", crt, bad);
    cr_assert_eq(system(cp), 0);
    free(crt);
    tf_run_t r;
    RUN(r, "cert", "--json", good, bad);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect_eq(r.out[0], '[', "%s", r.out);
    cr_expect_not_null(strstr(r.out, "\"status\":\"OK\""), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "\"status\":\"ERROR\""), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "\"code\":\"no_private_key\""), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "\"days_left\":"), "%s", r.out);
    /* Valid JSON, checked by a real parser. */
    char *json = tf_run_tempfile("out.json", r.out);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "python3 -m json.tool '%s' >/dev/null", json);
    cr_expect_eq(system(cmd), 0, "not valid JSON: %s", r.out);
    tf_run_dispose(&r);
    free(good);
    free(bad);
    free(json);
}

Test(cli, cert_without_files_is_a_usage_error)
{
    tf_run_t r;
    RUN(r, "cert");
    cr_expect_eq(r.status, 2);
    tf_run_dispose(&r);
    RUN(r, "cert", "--frob", "x.pem");
    cr_expect_eq(r.status, 2);
    tf_run_dispose(&r);
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

/* check says what run would refuse: an admin API off loopback without a
 * token (proxy/admin.c). */
Test(cli, check_refuses_an_open_admin_api_off_loopback)
{
    const char *demo = demo_dir();
    char text[8192];
    snprintf(text, sizeof text,
             "listen:\n  https: [\"127.0.0.1:8443\"]\n"
             "admin:\n  listen: \"0.0.0.0:9443\"\n"
             "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
             "tenants:\n  shop:\n    hosts: [\"*\"]\n    backends: [\"127.0.0.1:8081\"]\n",
             demo, demo);
    char *cfg = tf_run_tempfile("tlsfront.yaml", text);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect_not_null(strstr(r.err, "admin.listen 0.0.0.0:9443 is not a loopback address"), "%s",
                       r.err);
    tf_run_dispose(&r);
    free(cfg);
}

/* ---- errors about a path the configuration names (SPEC §2, §3) -------------- */

/* Writes a configuration whose lines are given one per argument (so that
 * the tests can count them), then runs `check` on it. */
static char *config_lines(const char *const *lines)
{
    char text[8192] = "";
    for (size_t i = 0; lines[i] != NULL; i++) {
        strcat(text, lines[i]);
        strcat(text, "\n");
    }
    return tf_run_tempfile("tlsfront.yaml", text);
}

/* Asserts that stderr has the line "error: CFG:LINE:COL: REST...". */
static void expect_located(const tf_run_t *r, const char *cfg, unsigned line, unsigned col,
                           const char *rest)
{
    char want[8192];
    snprintf(want, sizeof want, "error: %s:%u:%u: %s", cfg, line, col, rest);
    cr_expect_not_null(strstr(r->err, want), "want '%s' in:\n%s", want, r->err);
}

Test(cli, check_points_at_a_missing_certificate_source_in_the_file)
{
    const char *demo = demo_dir();
    char certs[1200], def[1200];
    snprintf(certs, sizeof certs, "    - %s/certs", demo);
    snprintf(def, sizeof def, "  default_cert: %s/certs/system.pem", demo);
    const char *lines[] = {
        "listen:",
        "  https: [\"127.0.0.1:8443\"]",
        "tls:",
        "  certs:",
        certs,
        "    - \"/nonexistent-certs\"", /* line 6, column 7: the quote */
        def,
        "tenants:",
        "  all: {hosts: [\"*\"], backends: [\"127.0.0.1:8081\"]}",
        NULL,
    };
    char *cfg = config_lines(lines);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    expect_located(&r, cfg, 6, 7,
                   "/nonexistent-certs: cannot read: No such file or directory: check "
                   "tls.certs\n");
    /* The first source is fine: nothing about it. */
    cr_expect_null(strstr(r.err, ":5:"), "%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
}

Test(cli, check_points_at_each_item_of_a_flow_list)
{
    const char *demo = demo_dir();
    char def[1200];
    snprintf(def, sizeof def, "  default_cert: %s/certs/system.pem", demo);
    const char *lines[] = {
        "tls:",
        "  certs: [\"/nonexistent-a\", /nonexistent-b]", /* line 2, columns 11 and 29 */
        def,
        "listen: {https: [\"127.0.0.1:8443\"]}",
        "tenants: {all: {hosts: [\"*\"], backends: [\"127.0.0.1:8081\"]}}",
        NULL,
    };
    char *cfg = config_lines(lines);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    expect_located(&r, cfg, 2, 11, "/nonexistent-a: cannot read: ");
    expect_located(&r, cfg, 2, 29, "/nonexistent-b: cannot read: ");
    tf_run_dispose(&r);
    free(cfg);
}

Test(cli, check_points_at_a_missing_default_certificate)
{
    const char *demo = demo_dir();
    char certs[1200];
    snprintf(certs, sizeof certs, "  certs: [\"%s/certs\"]", demo);
    const char *lines[] = {
        "listen:",
        "  https: [\"127.0.0.1:8443\"]",
        "tls:",
        certs,
        "  default_cert:   /nonexistent/system.pem", /* line 5, column 19 */
        "tenants:",
        "  all: {hosts: [\"*\"], backends: [\"127.0.0.1:8081\"]}",
        NULL,
    };
    char *cfg = config_lines(lines);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    expect_located(&r, cfg, 5, 19,
                   "/nonexistent/system.pem: no usable default certificate: clients without SNI "
                   "and unknown names cannot be served; fix tls.default_cert (run 'tlsfront cert "
                   "/nonexistent/system.pem')\n");
    cr_expect_not_null(strstr(r.err, "0 rejected; 1 other errors"), "%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
}

/* `run` refuses to start without its ticket keys file and admin token file:
 * check says so too, at the line that names them. */
Test(cli, check_points_at_a_missing_ticket_keys_file_and_token_file)
{
    const char *demo = demo_dir();
    char certs[1200], def[1200];
    snprintf(certs, sizeof certs, "  certs: [\"%s/certs\"]", demo);
    snprintf(def, sizeof def, "  default_cert: %s/certs/system.pem", demo);
    const char *lines[] = {
        "listen:",  "  https: [\"127.0.0.1:8443\"]",
        "admin:",   "  token_file: /nonexistent/token", /* line 4, column 15 */
        "tls:",     certs,
        def,        "  ticket_keys_file: '/nonexistent/tickets'", /* line 8, column 21 */
        "tenants:", "  all: {hosts: [\"*\"], backends: [\"127.0.0.1:8081\"]}",
        NULL,
    };
    char *cfg = config_lines(lines);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    expect_located(&r, cfg, 8, 21,
                   "/nonexistent/tickets: No such file or directory: check "
                   "tls.ticket_keys_file\n");
    expect_located(&r, cfg, 4, 15,
                   "/nonexistent/token: cannot read admin.token_file: No such file or "
                   "directory; write the token (one line) into it\n");
    cr_expect_not_null(strstr(r.err, "0 rejected; 2 other errors"), "%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
}

/* What is wrong inside a file is about that file: its own
 * "file: reason: what to do", no configuration location. */
Test(cli, check_keeps_the_file_form_for_errors_inside_a_file)
{
    const char *demo = demo_dir();
    char *keys = tf_run_tempfile("tickets", "not a key\n");
    char *token = tf_run_tempfile("token", "\n");
    char *broken = tf_run_tempfile(
        "broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    char text[8192];
    snprintf(text, sizeof text,
             "listen:\n  https: [\"127.0.0.1:8443\"]\n"
             "admin:\n  token_file: %s\n"
             "tls:\n  certs: [\"%s/certs\", \"%s\"]\n  default_cert: %s/certs/system.pem\n"
             "  ticket_keys_file: %s\n"
             "tenants:\n  all: {hosts: [\"*\"], backends: [\"127.0.0.1:8081\"]}\n",
             token, demo, broken, demo, keys);
    char *cfg = tf_run_tempfile("tlsfront.yaml", text);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    char want[4200];
    snprintf(want, sizeof want, "error: %s:1: not an 80-byte base64 key", keys);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    snprintf(want, sizeof want, "error: %s: cannot read admin.token_file: empty or too long",
             token);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    snprintf(want, sizeof want, "error: %s: ", broken);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    snprintf(want, sizeof want, "error: %s:", cfg);
    cr_expect_null(strstr(r.err, want), "no configuration location expected in:\n%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
    free(keys);
    free(token);
    free(broken);
}

/* A path left at its default is not written in the file: the message reads
 * as it always did. */
Test(cli, check_reports_a_default_path_without_a_location)
{
    if (access("/etc/tlsfront/certs/system.pem", F_OK) == 0)
        cr_skip_test("/etc/tlsfront/certs/system.pem exists here");
    const char *demo = demo_dir();
    char text[4096];
    snprintf(text, sizeof text,
             "listen:\n  https: [\"127.0.0.1:8443\"]\n"
             "tls:\n  certs: [\"%s/certs\"]\n"
             "tenants:\n  all: {hosts: [\"*\"], backends: [\"127.0.0.1:8081\"]}\n",
             demo);
    char *cfg = tf_run_tempfile("tlsfront.yaml", text);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect_not_null(strstr(r.err, "error: /etc/tlsfront/certs/system.pem: no usable default "
                                     "certificate: "),
                       "%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
}

/* ---- the acme section's files (SPEC §13) ------------------------------------ */

/* A configuration with the demo certificates whose last section is acme:
 * on line 8, with ACME's lines after it (the first on line 9). */
static char *acme_config(const char *const *acme)
{
    const char *demo = demo_dir();
    char certs[1200], def[1200];
    snprintf(certs, sizeof certs, "  certs: [\"%s/certs\"]", demo);
    snprintf(def, sizeof def, "  default_cert: %s/certs/system.pem", demo);
    const char *lines[32] = {
        "listen:",
        "  https: [\"127.0.0.1:8443\"]",
        "tls:",
        certs,
        def,
        "tenants:",
        "  all: {hosts: [\"*\"], backends: [\"127.0.0.1:8081\"]}",
        "acme:",
    };
    size_t n = 8;
    for (size_t i = 0; acme[i] != NULL && n < 31; i++)
        lines[n++] = acme[i];
    lines[n] = NULL;
    return config_lines(lines);
}

/* The ACME client's paths themselves, at the lines that name them: a
 * storage that cannot be a directory, a missing CA file and EAB key. */
Test(cli, check_points_at_unusable_acme_paths)
{
    char *file = tf_run_tempfile("plain", "x\n");
    char storage[1200];
    snprintf(storage, sizeof storage, "  storage: %s/state", file); /* line 11, column 12 */
    const char *acme[] = {
        "  directory: https://acme.example/dir",
        "  ca_file: /nonexistent/ca.pem", /* line 10, column 12 */
        storage,
        "  eab:",
        "    kid: kid-1",
        "    hmac_key_file:   /nonexistent/eab.key", /* line 14, column 22 */
        NULL,
    };
    char *cfg = acme_config(acme);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    expect_located(&r, cfg, 10, 12, "/nonexistent/ca.pem: cannot read: No such file or directory");
    char want[1400];
    snprintf(want, sizeof want, "%s/state: cannot be created: %s is not a directory", file, file);
    expect_located(&r, cfg, 11, 12, want);
    expect_located(&r, cfg, 14, 22,
                   "/nonexistent/eab.key: cannot read acme.eab.hmac_key_file: No such file or "
                   "directory");
    cr_expect_not_null(strstr(r.err, "0 rejected; 3 other errors"), "%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
    free(file);
}

/* What is wrong inside the CA file or the EAB key file is about that file. */
Test(cli, check_reads_the_acme_ca_file_and_eab_key)
{
    char *ca = tf_run_tempfile("ca.pem", "not a certificate\n");
    char *eab = tf_run_tempfile("eab.key", "c2VjcmV0+/==\n");
    char ca_line[1200], eab_line[1200];
    snprintf(ca_line, sizeof ca_line, "  ca_file: %s", ca);
    snprintf(eab_line, sizeof eab_line, "  eab: {kid: kid-1, hmac_key_file: %s}", eab);
    const char *acme[] = {"  directory: https://acme.example/dir", ca_line, eab_line, NULL};
    char *cfg = acme_config(acme);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    char want[1400];
    snprintf(want, sizeof want, "error: %s: holds no CA certificate wolfSSL can load", ca);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    snprintf(want, sizeof want, "error: %s: the EAB key is not base64url", eab);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    snprintf(want, sizeof want, "error: %s:", cfg);
    cr_expect_null(strstr(r.err, want), "no configuration location expected in:\n%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
    free(ca);
    free(eab);
}

/* Good files pass; a storage directory that does not exist yet is fine
 * when it can be created, and check does not create it. */
Test(cli, check_accepts_usable_acme_files)
{
    const char *demo = demo_dir();
    char *eab = tf_run_tempfile("eab.key", "c2VjcmV0LWtleS1mcm9tLXRoZS1jYQ\n");
    char dir[] = "/tmp/tf-cli-acme-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char ca_line[1200], eab_line[1200], storage[1200], state[1100];
    snprintf(ca_line, sizeof ca_line, "  ca_file: %s/pki/root.crt", demo);
    snprintf(eab_line, sizeof eab_line, "  eab: {kid: kid-1, hmac_key_file: %s}", eab);
    snprintf(state, sizeof state, "%s/var/acme-state", dir);
    snprintf(storage, sizeof storage, "  storage: %s", state);
    const char *acme[] = {"  directory: http://127.0.0.1:14000/dir", ca_line, eab_line, storage,
                          NULL};
    char *cfg = acme_config(acme);
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_null(strstr(r.err, "acme"), "%s", r.err);
    cr_expect_neq(access(state, F_OK), 0, "check created %s", state);
    tf_run_dispose(&r);
    free(cfg);

    /* Storage open to others: a warning, still exit 0. */
    snprintf(storage, sizeof storage, "  storage: %s", dir);
    cr_assert_eq(chmod(dir, 0755), 0);
    cfg = acme_config(acme);
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 0, "%s", r.err);
    char want[1400];
    snprintf(want, sizeof want, "warning: %s:12:12: %s: group or others may read", cfg, dir);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    tf_run_dispose(&r);
    free(cfg);

    /* Without acme.directory the client is off: storage is not looked at. */
    char blocked[1300];
    snprintf(blocked, sizeof blocked, "  storage: %s/state", eab); /* under a file */
    const char *off[] = {blocked, NULL};
    cfg = acme_config(off);
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 0, "%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
    free(eab);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* ---- `user:`: files tlsfront reads again after switching users (issue 17) ------------- */

/* A directory others may enter (mkdtemp makes it 0700), with the demo's system bundle as
 * certs/open.pem (0644) and certs/secret.pem (0600), and a ticket keys file (0600). */
static char *user_fixture(void)
{
    const char *demo = demo_dir();
    char *dir = strdup("/tmp/tf-cli-user-XXXXXX");
    cr_assert_not_null(dir);
    cr_assert_not_null(mkdtemp(dir));
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; cd '%s'; chmod 755 .; mkdir -m 755 certs; "
             "cp '%s/certs/system.pem' certs/open.pem; chmod 644 certs/open.pem; "
             "cp '%s/certs/system.pem' certs/secret.pem; chmod 600 certs/secret.pem; "
             "head -c 80 /dev/urandom | base64 -w0 > tickets; chmod 600 tickets",
             dir, demo, demo);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    return dir;
}

/* Removes the fixture and frees its name. */
static void remove_tree(char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
    free(dir);
}

static char *user_config(const char *dir, const char *user)
{
    char certs[1200], def[1200], keys[1200], u[200];
    snprintf(u, sizeof u, "user: %s", user);
    snprintf(certs, sizeof certs, "  certs: [\"%s/certs\"]", dir);
    snprintf(def, sizeof def, "  default_cert: %s/certs/open.pem", dir);
    snprintf(keys, sizeof keys, "  ticket_keys_file: %s/tickets", dir);
    const char *lines[] = {
        u,
        "listen:",
        "  https: [\"127.0.0.1:8443\"]",
        "tls:",
        certs, /* line 5, col 11 */
        def,
        keys, /* line 7, column 21 */
        "tenants:",
        "  all: {hosts: [\"*\"], backends: [\"127.0.0.1:8081\"]}",
        NULL,
    };
    return config_lines(lines);
}

Test(cli, check_warns_about_files_the_user_cannot_read)
{
    char *dir = user_fixture();
    char *cfg = user_config(dir, "nobody");
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 0, "warnings only: %s", r.err);
    char want[4096];
    snprintf(want, sizeof want,
             "warning: %s:5:11: %s/certs/secret.pem: user 'nobody' cannot read it (owner ", cfg,
             dir);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    snprintf(want, sizeof want, "warning: %s:7:21: %s/tickets: user 'nobody' cannot read it", cfg,
             dir);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    cr_expect_not_null(strstr(r.err, "without 'user:'"), "says what to do: %s", r.err);
    /* Readable by everyone: nothing about it. */
    cr_expect_null(strstr(r.err, "open.pem: user"), "%s", r.err);
    tf_run_dispose(&r);
    free(cfg);

    /* A directory on the way that the user cannot enter hides even a 0644 file. */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "chmod 700 '%s/certs'", dir);
    cr_assert_eq(system(cmd), 0);
    cfg = user_config(dir, "nobody");
    RUN(r, "check", "-c", cfg);
    snprintf(want, sizeof want, "%s/certs: user 'nobody' cannot list it (owner ", dir);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    snprintf(want, sizeof want,
             "%s/certs/open.pem: user 'nobody' cannot read it (the directory %s/certs is "
             "closed to it)",
             dir, dir);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    tf_run_dispose(&r);
    free(cfg);
    remove_tree(dir);
}

Test(cli, check_says_nothing_of_readability_without_user)
{
    char *dir = user_fixture();
    char *cfg = user_config(dir, "~");
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_null(strstr(r.err, "cannot read it"), "%s", r.err);
    tf_run_dispose(&r);
    free(cfg);
    remove_tree(dir);
}

Test(cli, check_refuses_a_user_that_does_not_exist)
{
    char *dir = user_fixture();
    char *cfg = user_config(dir, "tf-no-such-user");
    tf_run_t r;
    RUN(r, "check", "-c", cfg);
    cr_expect_eq(r.status, 1, "%s", r.err);
    char want[2048];
    snprintf(want, sizeof want,
             "error: %s:1:7: user 'tf-no-such-user' does not exist: tlsfront run would refuse "
             "to start; create it",
             cfg);
    cr_expect_not_null(strstr(r.err, want), "want '%s' in:\n%s", want, r.err);
    tf_run_dispose(&r);
    free(cfg);
    remove_tree(dir);
}
