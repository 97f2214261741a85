/* The built-in ACME client's harder cases end to end (issue 16 item 5),
 * through `tlsfront run` against Debian's pebble (tests/acme/pebble.h):
 * the switch from the system certificate to the issued one under a client
 * load, renewal of a short-lived certificate, a SIGKILL in the middle of an
 * order, and two instances sharing acme.storage and the certificate
 * directory.
 *
 * pebble's validation authority reaches listen.http through a forwarder of
 * the test's own (tests/acme/forwarder.h): it holds the validation request
 * until the test lets it through, and sends it to the instance the test
 * names. That is what makes "during the order" a moment the test chooses
 * rather than a race. pebble times a validation out after 15 s, so what
 * the test does while it holds one stays well within that. */
#include "ops.h"

#include "tests/acme/forwarder.h"
#include "tests/acme/pebble.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME "shop.pebble.test"
#define WAIT_S 180 /* an order: seconds on a quiet machine, far more under ASan on a busy one */
#define HOLD_MS 60000

static tf_pebble_t peb;
static tf_ops_t t, t2;
static tf_fwd_t *fwd;
static unsigned fwd_port;
static pid_t load_pid;
static char load_out[1300], load_stop[1300];

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
    memset(&t, 0, sizeof t);
    memset(&t2, 0, sizeof t2);
    fwd = NULL;
    load_pid = 0;
}

static void teardown(void)
{
    if (load_pid > 0) {
        kill(load_pid, SIGTERM);
        tf_px_wait_exit(load_pid, 10000);
    }
    tf_ops_stop(&t2);
    tf_ops_stop(&t);
    tf_fwd_stop(fwd);
    tf_pebble_stop(&peb);
    wolfSSL_Cleanup();
}

TestSuite(acme_scenarios, .init = setup, .fini = teardown, .timeout = 400);

/* ---- set-up ----------------------------------------------------------------- */

/* X's configuration: NAME ordered by http-01, listen.http on HTTP_PORT (0:
 * any), the certificate directory and acme.storage of the first instance
 * (t), whoever X is. */
static void write_acme_config(tf_ops_t *x, unsigned http_port)
{
    static char raw[4096];
    snprintf(raw, sizeof raw,
             "workers: 2\n"
             "log:\n  level: debug\n"
             "listen:\n  https: [\"127.0.0.1:0\"]\n  http: [\"127.0.0.1:%u\"]\n"
             "admin:\n  listen: \"127.0.0.1:0\"\n"
             "tls:\n  certs: [\"%s\"]\n  default_cert: %s/system.pem\n"
             "acme:\n  directory: \"%s\"\n  ca_file: %s\n  storage: %s/acme-state\n"
             "  renew_days: 30\n  challenges: [http-01]\n"
             "tenants:\n"
             "  shop:\n    hosts: [\"" NAME "\"]\n"
             "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n    acme: true\n",
             http_port, t.certs, t.certs, peb.directory, peb.ca_file, t.px.tmp, t.px.backend_port);
    tf_ops_write_config(x, NULL, raw);
}

/* pebble (OPTS may be NULL) validating http-01 through the forwarder, and
 * the first instance ordering NAME; the forwarder holds until told. */
static void start_first(const tf_pebble_opts_t *opts)
{
    fwd = tf_fwd_start(&fwd_port);
    tf_pebble_opts_t o = opts != NULL ? *opts : (tf_pebble_opts_t){0};
    o.http_port = fwd_port;
    tf_pebble_start(&peb, &o);
    tf_px_init(&t.px, "tf-acme-sc");
    tf_ops_start_on(&t, 2, NULL, NULL); /* the PKI, the backend, a first config */
    cr_assert_eq(tf_px_stop_proxy(&t.px), 0);
    write_acme_config(&t, 0);
    tf_ops_restart(&t);
    cr_assert_gt(t.px.http_port, 0);
}

/* A second instance on the first one's certificate directory and storage. */
static void start_second(void)
{
    tf_px_init(&t2.px, "tf-acme-sc2");
    snprintf(t2.config, sizeof t2.config, "%s/tlsfront.yaml", t2.px.tmp);
    snprintf(t2.certs, sizeof t2.certs, "%s", t.certs);
    write_acme_config(&t2, 0);
    tf_px_launch(&t2.px, t2.config, 0);
    cr_assert_gt(t2.px.http_port, 0);
}

/* ---- what the instances and pebble say ----------------------------------------- */

/* NAME's entry in X's GET /acme (a new reference), or NULL. */
static json_t *acme_entry(tf_ops_t *x)
{
    int st;
    char *out = tf_ops_admin(x, &st, "GET", "/acme", NULL, NULL);
    json_t *list = st == 200 ? json_loads(out, 0, NULL) : NULL;
    free(out);
    json_t *e = NULL, *o;
    size_t k;
    json_array_foreach(list, k, o)
    {
        const char *n = json_string_value(json_object_get(o, "name"));
        if (n != NULL && strcmp(n, NAME) == 0)
            e = json_incref(o);
    }
    json_decref(list);
    return e;
}

/* Waits up to SECONDS for NAME's state in X to be WANT; returns the entry. */
static json_t *wait_state(tf_ops_t *x, const char *want, int seconds)
{
    json_t *e = NULL;
    long long end = tf_px_now_ms() + seconds * 1000LL;
    do {
        json_decref(e);
        e = acme_entry(x);
        const char *s = e != NULL ? json_string_value(json_object_get(e, "state")) : NULL;
        if (s != NULL && strcmp(s, want) == 0)
            return e;
        usleep(200 * 1000); /* polling a state another process reaches */
    } while (tf_px_now_ms() < end);
    char *dump = e != NULL ? json_dumps(e, 0) : NULL;
    cr_assert_fail("%s never became %s: %s", NAME, want, dump ? dump : "(absent)");
    return NULL;
}

/* tlsfront_acme_orders_total{result=RESULT} of X, or -1 when absent. */
static long orders(tf_ops_t *x, const char *result)
{
    int st;
    char *m = tf_ops_admin(x, &st, "GET", "/metrics", NULL, NULL);
    char needle[96];
    snprintf(needle, sizeof needle, "tlsfront_acme_orders_total{result=\"%s\"} ", result);
    const char *p = strstr(m, needle);
    long n = p != NULL ? strtol(p + strlen(needle), NULL, 10) : -1;
    free(m);
    return n;
}

static long all_orders(tf_ops_t *x)
{
    return orders(x, "valid") + orders(x, "invalid") + orders(x, "error");
}

/* Waits up to SECONDS until X counts at least N valid orders. */
static bool wait_valid_orders(tf_ops_t *x, long n, int seconds)
{
    long long end = tf_px_now_ms() + seconds * 1000LL;
    while (orders(x, "valid") < n) {
        if (tf_px_now_ms() >= end)
            return false;
        usleep(200 * 1000); /* as wait_state() */
    }
    return true;
}

/* How many times pebble's log has NEEDLE. */
static unsigned pebble_says(const char *needle)
{
    char *log = tf_px_read(peb.pebble_log);
    unsigned n = tf_px_count(log, needle);
    free(log);
    return n;
}

static char *cert_path(void)
{
    static char path[1300];
    snprintf(path, sizeof path, "%s/" NAME ".pem", t.certs);
    return path;
}

/* openssl on the first certificate (or key, with "pkey") of FILE: the
 * output of `openssl CMD -in FILE ARGS`, trimmed (malloc'd). */
static char *openssl_on(const char *cmd, const char *file, const char *args)
{
    int st;
    char *out = tf_px_sh(&st, "openssl %s -in '%s' %s", cmd, file, args);
    cr_assert_eq(st, 0, "openssl %s %s: %s", cmd, args, out);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

/* The SHA-256 of the DER of FILE's first certificate, lower-case hex. */
static char *cert_sha256(const char *file)
{
    int st;
    char *out = tf_px_sh(&st, "openssl x509 -in '%s' -outform DER | sha256sum", file);
    cr_assert_eq(st, 0, "%s", out);
    out[strcspn(out, " ")] = '\0';
    return out;
}

/* ---- the client load ------------------------------------------------------------ */

static void load_start(void)
{
    snprintf(load_out, sizeof load_out, "%s/switch.out", t.px.tmp);
    snprintf(load_stop, sizeof load_stop, "%s/switch.stop", t.px.tmp);
    char script[1100], port[16];
    snprintf(script, sizeof script, "%s/tests/ops/acme_switch.py", tf_px_env("TF_SOURCE_DIR"));
    snprintf(port, sizeof port, "%u", t.px.port);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(load_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("python3", "python3", script, port, NAME, load_stop, "300", (char *)NULL);
        _exit(127);
    }
    load_pid = pid;
    char *out = tf_px_wait_file(load_out, "started", "ok=");
    cr_assert(strstr(out, "started") != NULL, "the client load did not start: %s", out);
    free(out);
}

static char *load_stop_report(void)
{
    FILE *f = fopen(load_stop, "w");
    if (f != NULL)
        fclose(f);
    tf_px_wait_exit(load_pid, TF_PX_WAIT_MS);
    load_pid = 0;
    return tf_px_read(load_out);
}

/* ---- A: the switch ------------------------------------------------------------- */

/* While NAME is ordered, a client keeps making handshakes and requests: not
 * one fails, and the certificate it is served changes once, from the
 * system certificate to the issued one. The validation is held until the
 * client has been served the system certificate, so the switch happens
 * under its load, not before it starts. */
Test(acme_scenarios, the_name_switches_to_the_issued_certificate_without_a_failed_connection)
{
    start_first(NULL);
    load_start();
    cr_assert(tf_fwd_wait_accepted(fwd, 1, HOLD_MS), "pebble never validated");
    tf_fwd_target(fwd, t.px.http_port);
    json_decref(wait_state(&t, "valid", WAIT_S));
    char *issued = cert_sha256(cert_path());
    char sys[1300];
    snprintf(sys, sizeof sys, "%s/system.pem", t.certs);
    char *system = cert_sha256(sys);
    char needle[200];
    snprintf(needle, sizeof needle, "cert %s", issued);
    char *out = tf_px_wait_file(load_out, needle, "ok=");
    free(out);
    char *report = load_stop_report();
    cr_assert(strstr(report, "ok=") != NULL, "%s", report);
    cr_expect_eq(tf_ops_report(report, "fail"), 0, "connections failed:\n%s", report);
    cr_expect_gt(tf_ops_report(report, "ok"), 1, "%s", report);
    /* The certificates served, in order: the system one, then the issued
     * one, and nothing else. */
    char first[200], second[200];
    snprintf(first, sizeof first, "cert %s at 1\n", system);
    snprintf(second, sizeof second, "cert %s at ", issued);
    const char *at2 = strstr(report, second);
    cr_expect(strncmp(report, first, strlen(first)) == 0, "first served:\n%s", report);
    cr_expect(at2 != NULL, "the issued certificate was never served:\n%s", report);
    cr_expect_eq(tf_px_count(report, "cert "), 2, "%s", report);
    cr_expect_gt(at2 != NULL ? strtoul(at2 + strlen(second), NULL, 10) : 0, 1, "%s", report);
    cr_expect_eq(tf_fwd_forwarded(fwd, t.px.http_port), tf_fwd_accepted(fwd));
    free(report);
    free(issued);
    free(system);
}

/* ---- B: renewal ------------------------------------------------------------------ */

/* pebble issues certificates valid for a minute; with renew_days: 30 (more
 * than the whole lifetime) tlsfront renews a third of the lifetime before
 * the end (manager.c, due_time()): about 40 s after issuance, at the time
 * the manager computed, with no check interval to wait for. */
#define LIFE_S 60

Test(acme_scenarios, a_certificate_inside_renew_days_is_renewed_with_a_new_key)
{
    tf_pebble_opts_t o = {.validity_s = LIFE_S};
    start_first(&o);
    tf_fwd_target(fwd, t.px.http_port);
    json_decref(wait_state(&t, "valid", WAIT_S));
    cr_assert(wait_valid_orders(&t, 1, 10));
    long long issued_ms = tf_px_now_ms();
    const char *path = cert_path();
    struct stat first_st;
    cr_assert_eq(stat(path, &first_st), 0);
    char *serial1 = openssl_on("x509", path, "-noout -serial");
    char *start1 = openssl_on("x509", path, "-noout -startdate");
    char *key1 = openssl_on("pkey", path, "-pubout | sha256sum");
    cr_assert(tf_ops_wait_serial(&t, NAME, serial1 + strlen("serial="), 30));

    /* The second order. */
    cr_assert(wait_valid_orders(&t, 2, WAIT_S), "not renewed; orders: %ld valid, %ld in all",
              orders(&t, "valid"), all_orders(&t));
    long long renewed_ms = tf_px_now_ms();
    struct stat second_st;
    cr_assert_eq(stat(path, &second_st), 0);
    char *serial2 = openssl_on("x509", path, "-noout -serial");
    char *start2 = openssl_on("x509", path, "-noout -startdate");
    char *key2 = openssl_on("pkey", path, "-pubout | sha256sum");
    cr_expect_str_neq(serial2, serial1);
    cr_expect_str_neq(key2, key1, "the renewal reused the first certificate's key");
    /* Replaced by a rename (a new inode), not rewritten in place. */
    cr_expect_neq(second_st.st_ino, first_st.st_ino);
    cr_expect_eq(second_st.st_mode & 0777, 0600);
    cr_expect(tf_ops_wait_serial(&t, NAME, serial2 + strlen("serial="), 30),
              "the renewed certificate is not served");
    cr_expect_eq(pebble_says("There are now 2 orders in the db"), 1);
    cr_expect_eq(pebble_says("accounts in memory"), 1, "a second account was created");

    /* Not early: the second certificate begins when the first was due
     * (notBefore is when pebble issued it), and renewal does not loop. */
    int st;
    char *gap = tf_px_sh(&st, "echo $(( $(date -d \"%s\" +%%s) - $(date -d \"%s\" +%%s) ))",
                         start2 + strlen("notBefore="), start1 + strlen("notBefore="));
    cr_assert_eq(st, 0, "%s", gap);
    cr_expect_geq(atol(gap), LIFE_S * 2 / 3 - 2, "renewed %s s after issuance", gap);
    long elapsed_s = (long)((renewed_ms - issued_ms) / 1000);
    cr_expect_leq(orders(&t, "valid"), 2 + elapsed_s / (LIFE_S * 2 / 3 - 2), "renewal loops");
    cr_expect_eq(orders(&t, "invalid") + orders(&t, "error"), 0);
    free(gap);
    free(serial1);
    free(serial2);
    free(start1);
    free(start2);
    free(key1);
    free(key2);
}

/* ---- C: a restart in the middle of an order ----------------------------------------- */

static char *read_storage(const char *file)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/acme-state/%s", t.px.tmp, file);
    return tf_px_read(path);
}

/* SIGKILL while pebble is validating (the forwarder holds its request), a
 * restart on the same storage: the recorded order is resumed, the held
 * request is answered by the new process, no second account is made, and
 * the certificate is issued. */
Test(acme_scenarios, an_order_cut_by_sigkill_is_resumed_after_a_restart)
{
    start_first(NULL);
    cr_assert(tf_fwd_wait_accepted(fwd, 1, HOLD_MS), "pebble never validated");
    /* The order is recorded before its challenge is answered. */
    char *record = read_storage("certs/" NAME ".json");
    json_t *rec = json_loads(record, 0, NULL);
    const char *url = json_string_value(json_object_get(rec, "order_url"));
    cr_assert_not_null(url, "no order recorded: %s", record);
    char *order_url = strdup(url);
    json_decref(rec);
    free(record);
    char *account = read_storage("account.json");
    char *account_key = read_storage("account.key");
    cr_assert_gt(strlen(account), 0);

    cr_assert_eq(kill(t.px.proxy_pid, SIGKILL), 0);
    cr_expect_eq(tf_px_wait_proxy(&t.px), 128 + SIGKILL);
    tf_ops_restart(&t);
    tf_fwd_target(fwd, t.px.http_port);

    json_decref(wait_state(&t, "valid", WAIT_S));
    char needle[1200];
    snprintf(needle, sizeof needle, "resuming the order %s", order_url);
    cr_expect(tf_ops_wait_log(&t, needle, 1, 1), "not resumed");
    cr_expect_eq(orders(&t, "valid"), 1);
    cr_expect_eq(pebble_says("There are now 1 orders in the db"), 1);
    cr_expect_eq(pebble_says("There are now 2 orders in the db"), 0, "a second order was placed");
    cr_expect_eq(pebble_says("accounts in memory"), 1, "a second account was created");
    char *account2 = read_storage("account.json");
    char *account_key2 = read_storage("account.key");
    cr_expect_str_eq(account2, account);
    cr_expect_str_eq(account_key2, account_key);
    /* The held request was answered by the restarted process. */
    cr_expect_eq(tf_fwd_forwarded(fwd, t.px.http_port), tf_fwd_accepted(fwd), "%u of %u",
                 tf_fwd_forwarded(fwd, t.px.http_port), tf_fwd_accepted(fwd));
    free(account);
    free(account2);
    free(account_key);
    free(account_key2);
    free(order_url);
}

/* ---- D: two instances sharing storage ----------------------------------------------- */

/* The first instance orders (it started alone and recorded the order);
 * pebble's validation goes to the second, which answers from acme.storage.
 * One order in all, and both serve the certificate. */
Test(acme_scenarios, two_instances_order_once_and_the_other_one_answers_the_validation)
{
    start_first(NULL);
    cr_assert(tf_fwd_wait_accepted(fwd, 1, HOLD_MS), "pebble never validated");
    start_second();
    tf_fwd_target(fwd, t2.px.http_port);

    json_decref(wait_state(&t, "valid", WAIT_S));
    cr_expect(tf_ops_wait_log(&t2, "http-01 answer served from acme.storage", 1, 10),
              "the second instance did not answer from storage");
    cr_expect_eq(tf_fwd_forwarded(fwd, t2.px.http_port), tf_fwd_accepted(fwd));
    cr_expect_eq(tf_fwd_forwarded(fwd, t.px.http_port), 0);
    char *log1 = tf_px_log(&t.px);
    cr_expect_eq(tf_px_count(log1, "answer served from acme.storage"), 0);
    free(log1);

    /* Both serve it: the second through its certificate watch. */
    const char *path = cert_path();
    char *serial = openssl_on("x509", path, "-noout -serial");
    cr_expect(tf_ops_wait_serial(&t, NAME, serial + strlen("serial="), 30));
    cr_expect(tf_ops_wait_serial(&t2, NAME, serial + strlen("serial="), 30),
              "the second instance does not serve the issued certificate");
    free(serial);

    /* One order in all: the second found the name's lock held. */
    cr_expect_eq(orders(&t, "valid"), 1);
    cr_expect_eq(all_orders(&t2), 0, "the second instance ordered too");
    cr_expect_eq(pebble_says("orders in the db"), 1);
    cr_expect_eq(pebble_says("accounts in memory"), 1);
    json_t *e2 = acme_entry(&t2);
    const char *s2 = json_string_value(json_object_get(e2, "state"));
    cr_expect(s2 != NULL && (strcmp(s2, "pending") == 0 || strcmp(s2, "valid") == 0), "%s", s2);
    json_decref(e2);
    /* The shared answer is gone once the authorization is decided. */
    int st;
    char *left = tf_px_sh(&st, "ls -A '%s/acme-state/challenges/http-01'", t.px.tmp);
    cr_expect_eq(st, 0, "%s", left);
    cr_expect_str_eq(left, "");
    free(left);
}

/* A rolling restart: the ordering instance is stopped (SIGTERM) while the
 * CA's validation is in flight. Its shared answer stays in acme.storage, so
 * the instance the validation reaches still answers it and the
 * authorization is valid, not spent. */
Test(acme_scenarios, the_shared_answer_outlives_a_sigterm_of_the_ordering_instance)
{
    start_first(NULL);
    cr_assert(tf_fwd_wait_accepted(fwd, 1, HOLD_MS), "pebble never validated");
    start_second();
    int st;
    cr_expect_eq(tf_px_stop_proxy(&t.px), 0, "the ordering instance did not stop cleanly");
    char *left = tf_px_sh(&st, "ls -A '%s/acme-state/challenges/http-01'", t.px.tmp);
    cr_expect_neq(left[0], '\0', "the shared answer went with the stopped instance");
    free(left);
    tf_fwd_target(fwd, t2.px.http_port);
    cr_expect(tf_ops_wait_log(&t2, "http-01 answer served from acme.storage", 1, 60),
              "the second instance did not answer from storage");
    long long end = tf_px_now_ms() + 120000;
    while (pebble_says("set VALID") == 0 && pebble_says("set INVALID") == 0 && tf_px_now_ms() < end)
        usleep(200 * 1000); /* pebble's log, polled as wait_state() polls */
    cr_expect_eq(pebble_says("set INVALID"), 0, "the authorization was spent");
    cr_expect_gt(pebble_says("set VALID"), 0, "the authorization never became valid");
}
