/* The built-in ACME client end to end (SPEC §13, issue 16 item 5): `tlsfront
 * run` orders a certificate from Debian's pebble (tests/acme/pebble.h), whose
 * validation authority connects to the proxy's own listen.http (http-01,
 * answered from memory) or listen.https (tls-alpn-01, the validation
 * certificate chosen before the SNI selection); the issued bundle lands in
 * the certificate directory, mode 0600, the store reloads it, and the name
 * switches from the system certificate to it (the store's reload keeps
 * every connection, tests/ops/test_reload.c). A restarted instance orders
 * nothing new. */
#include "ops.h"

#include "tests/acme/pebble.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NAME "shop.pebble.test"

static tf_pebble_t peb;
static tf_ops_t t;

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
    memset(&t, 0, sizeof t);
}

static void teardown(void)
{
    tf_ops_stop(&t);
    tf_pebble_stop(&peb);
    wolfSSL_Cleanup();
}

TestSuite(acme_pebble, .init = setup, .fini = teardown, .timeout = 300);

/* The proxy on pebble's validation ports, ordering NAME with CHALLENGES;
 * with ASTRAY, listen.http is on another port than the one pebble
 * validates http-01 on (where nothing answers). */
static void start_acme_on(const char *challenges, bool astray)
{
    tf_pebble_start(&peb, NULL);
    unsigned http_port = peb.http_port;
    if (astray) {
        int st;
        char *port = tf_px_sh(&st, "python3 -c 'import socket; s=socket.socket(); "
                                   "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'");
        cr_assert_eq(st, 0);
        http_port = (unsigned)strtoul(port, NULL, 10);
        free(port);
    }
    tf_px_init(&t.px, "tf-acme-e2e");
    tf_ops_start_on(&t, 2, NULL, NULL); /* the PKI, the backend, a first config */
    static char raw[4096];
    snprintf(raw, sizeof raw,
             "workers: 2\n"
             "log:\n  level: debug\n"
             "listen:\n  https: [\"127.0.0.1:%u\"]\n  http: [\"127.0.0.1:%u\"]\n"
             "admin:\n  listen: \"127.0.0.1:0\"\n"
             "tls:\n  certs: [\"%s\"]\n  default_cert: %s/system.pem\n"
             "acme:\n  directory: \"%s\"\n  ca_file: %s\n  storage: %s/acme-state\n"
             "  challenges: [%s]\n"
             "tenants:\n"
             "  shop:\n    hosts: [\"" NAME "\"]\n"
             "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n    acme: true\n",
             peb.tls_port, http_port, t.certs, t.certs, peb.directory, peb.ca_file, t.px.tmp,
             challenges, t.px.backend_port);
    cr_assert_eq(tf_px_stop_proxy(&t.px), 0);
    tf_ops_write_config(&t, NULL, raw);
    tf_ops_restart(&t);
}

static void start_acme(const char *challenges)
{
    start_acme_on(challenges, false);
}

/* NAME's entry in GET /acme (a new reference), waiting up to SECONDS for
 * its state to be WANT. */
static json_t *wait_state(const char *want, int seconds)
{
    json_t *e = NULL;
    for (int i = 0; i < seconds * 5; i++) {
        int st;
        char *out = tf_ops_admin(&t, &st, "GET", "/acme", NULL, NULL);
        json_t *list = st == 200 ? json_loads(out, 0, NULL) : NULL;
        free(out);
        size_t k;
        json_t *o;
        json_decref(e);
        e = NULL;
        json_array_foreach(list, k, o)
        {
            if (strcmp(json_string_value(json_object_get(o, "name")), NAME) == 0)
                e = json_incref(o);
        }
        json_decref(list);
        const char *s = e != NULL ? json_string_value(json_object_get(e, "state")) : NULL;
        if (s != NULL && strcmp(s, want) == 0)
            return e;
        usleep(200 * 1000); /* polling a state another process reaches */
    }
    char *dump = e != NULL ? json_dumps(e, 0) : NULL;
    cr_assert_fail("%s never became %s: %s", NAME, want, dump ? dump : "(absent)");
    return NULL;
}

/* The issuer of the certificate served for NAME. */
static char *served_issuer(unsigned port)
{
    int st;
    char *out = tf_px_sh(&st,
                         "echo | timeout 20 openssl s_client -connect 127.0.0.1:%u "
                         "-servername " NAME " 2>/dev/null | openssl x509 -noout -issuer",
                         port);
    cr_assert_eq(st, 0, "%s", out);
    return out;
}

static void expect_issued(void)
{
    json_t *e = wait_state("valid", 180);
    char path[1300];
    snprintf(path, sizeof path, "%s/" NAME ".pem", t.certs);
    cr_expect_str_eq(json_string_value(json_object_get(e, "file")), path);
    cr_expect(json_is_string(json_object_get(e, "not_after")));
    json_decref(e);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "%s was not written", path);
    cr_expect_eq(sb.st_mode & 0777, 0600);
    /* The store picked it up: the name is served the issued certificate. */
    char *issuer = NULL;
    for (int i = 0; i < 100; i++) {
        free(issuer);
        issuer = served_issuer(t.px.port);
        if (strstr(issuer, "Pebble") != NULL)
            break;
        usleep(100 * 1000);
    }
    cr_expect(strstr(issuer, "Pebble") != NULL, "still served: %s", issuer);
    free(issuer);
}

Test(acme_pebble, http01_issues_and_the_name_switches_to_the_issued_certificate)
{
    start_acme("http-01");
    /* Until then the name gets the system certificate (the demo CA's). */
    char *before = served_issuer(t.px.port);
    cr_expect(strstr(before, "Pebble") == NULL, "%s", before);
    free(before);
    expect_issued();
    int st;
    char *m = tf_ops_admin(&t, &st, "GET", "/metrics", NULL, NULL);
    cr_expect(strstr(m, "tlsfront_acme_orders_total{result=\"valid\"} 1") != NULL, "%s", m);
    cr_expect(strstr(m, "tlsfront_acme_renewal_timestamp_seconds{name=\"" NAME "\"}") != NULL, "%s",
              m);
    free(m);
}

Test(acme_pebble, tls_alpn01_issues_through_the_https_listener)
{
    start_acme("tls-alpn-01");
    expect_issued();
    cr_expect(tf_ops_wait_log(&t, "tls-alpn-01 validation certificate served", 1, 10),
              "pebble's validation did not come through listen.https");
}

Test(acme_pebble, a_restart_orders_nothing_new)
{
    start_acme("http-01");
    expect_issued();
    cr_assert_eq(tf_px_stop_proxy(&t.px), 0);
    tf_ops_restart(&t);
    json_t *e = wait_state("valid", 60);
    json_decref(e);
    int st;
    char *m = tf_ops_admin(&t, &st, "GET", "/metrics", NULL, NULL);
    cr_expect(strstr(m, "tlsfront_acme_orders_total{result=\"valid\"} 0") != NULL,
              "the restarted instance ordered again: %s", m);
    free(m);
}

/* pebble's validation finds nobody on its http-01 port: the order is
 * invalid, the server's problem document is shown, the name backs off, and
 * the proxy serves on with the system certificate. */
Test(acme_pebble, a_failing_challenge_is_shown_and_backed_off)
{
    start_acme_on("http-01", true);
    json_t *e = wait_state("failed", 180);
    json_t *err = json_object_get(e, "last_error");
    cr_assert(json_is_object(err));
    cr_expect(strstr(json_string_value(json_object_get(err, "type")),
                     "urn:ietf:params:acme:error:") != NULL);
    cr_expect_gt(strlen(json_string_value(json_object_get(err, "detail"))), 0);
    cr_expect(json_is_string(json_object_get(e, "next_attempt")), "no backoff");
    json_decref(e);
    int st;
    char *m = tf_ops_admin(&t, &st, "GET", "/metrics", NULL, NULL);
    cr_expect(strstr(m, "tlsfront_acme_orders_total{result=\"invalid\"} 1") != NULL, "%s", m);
    free(m);
    char *issuer = served_issuer(t.px.port);
    cr_expect(strstr(issuer, "Pebble") == NULL, "%s", issuer);
    free(issuer);
    char path[1300];
    snprintf(path, sizeof path, "%s/" NAME ".pem", t.certs);
    struct stat sb;
    cr_expect_neq(stat(path, &sb), 0, "a failed order wrote %s", path);
}
