/* acme/client.c, order.c, problem.c, renewal.c: the protocol client.
 *
 * Against Debian's pebble (tests/acme/pebble.h), whose validation
 * authority fetches http-01 answers from a responder thread of the test
 * (responder.h) serving the very challenge table the client publishes
 * into: issuance (the bundle loads in the certificate store and verifies
 * against pebble's root), one account per key across clients sharing
 * storage, external account binding, badNonce, a failed validation, resumed
 * orders, renewalInfo absent. Against scripted servers: a 500, a problem
 * document with Retry-After, renewalInfo offered. Unit tests: problem
 * documents, Retry-After, RFC 3339, certID (RFC 9773's own example),
 * challenge choice. */
#include "pebble.h"
#include "responder.h"

#include "acme/acme_internal.h"
#include "certstore/certstore.h"
#include "common/err.h"
#include "conf/conf.h"
#include "tests/harness/harness.h"

#include <criterion/criterion.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static tf_pebble_t peb;
static tf_resp_t resp, alpn;
static tf_acme_challenges_t *table;
static char storage[64];

static const char EAB_KID[] = "kid-1";
static const char EAB_HMAC[] = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

static void common_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
    cr_assert_eq(tf_acme_challenges_new(&table), 0);
    snprintf(storage, sizeof storage, "/tmp/tf-acme-client-XXXXXX");
    cr_assert_not_null(mkdtemp(storage));
}

/* A pebble whose http-01 validations come to the responder. */
static void with_pebble(const tf_pebble_opts_t *base)
{
    common_init();
    tf_resp_start(&resp, tf_resp_http01, table);
    tf_pebble_opts_t o = base ? *base : (tf_pebble_opts_t){0};
    o.http_port = resp.port;
    tf_pebble_start(&peb, &o);
}

static void setup(void)
{
    with_pebble(NULL);
}

static void setup_eab(void)
{
    tf_pebble_opts_t o = {.eab_kid = EAB_KID, .eab_hmac = EAB_HMAC};
    with_pebble(&o);
}

static void setup_nonce(void)
{
    tf_pebble_opts_t o = {.nonce_reject = 30};
    with_pebble(&o);
}

/* tls-alpn-01 validations go to a TLS responder serving alpn.example.com. */
static void setup_alpn(void)
{
    common_init();
    tf_resp_start(&resp, tf_resp_http01, table);
    tf_resp_start_alpn(&alpn, table, "alpn.example.com");
    tf_pebble_opts_t o = {.http_port = resp.port, .tls_port = alpn.port};
    tf_pebble_start(&peb, &o);
}

static void teardown(void)
{
    tf_pebble_stop(&peb);
    tf_resp_stop(&resp);
    tf_resp_stop(&alpn);
    tf_acme_challenges_free(table);
    if (storage[0] != '\0') {
        int st;
        free(tf_px_sh(&st, "rm -rf '%s'", storage));
    }
    wolfSSL_Cleanup();
}

/* One suite (Criterion's parallel runner leaks a little per extra suite
 * under LeakSanitizer); each test names the servers it needs. */
TestSuite(acme_client, .timeout = 180);

static tf_acme_client_conf_t conf_for(const char *directory)
{
    return (tf_acme_client_conf_t){
        .directory = directory,
        .ca_file = peb.ca_file[0] ? peb.ca_file : NULL,
        .email = "admin@example.com",
        .storage = storage,
        .key_type = TF_ACME_KEY_EC,
        .challenges = TF_CONF_ACME_HTTP01 | TF_CONF_ACME_TLSALPN01,
        .answers = table,
        .timeout_ms = 20000,
        .poll_max_s = 60,
    };
}

static tf_acme_client_t *client_with(const tf_acme_client_conf_t *conf)
{
    tf_acme_client_t *c = NULL;
    tf_acme_problem_t prob;
    int rc = tf_acme_client_new(conf, &c, &prob);
    cr_assert_eq(rc, 0, "%s: %s", tf_strerror(rc), prob.detail);
    tf_acme_problem_dispose(&prob);
    return c;
}

static tf_acme_client_t *client(void)
{
    tf_acme_client_conf_t conf = conf_for(peb.directory);
    return client_with(&conf);
}

static void issue_ok(tf_acme_client_t *c, const char *host, const char *resume,
                     tf_acme_issued_t *out)
{
    tf_acme_problem_t prob;
    int rc = tf_acme_client_issue(c, host, resume, NULL, NULL, NULL, out, &prob);
    cr_assert_eq(rc, 0, "%s: %s (%s) %s\n%s", host, tf_err_name(rc), prob.type, prob.detail,
                 tf_px_read(peb.pebble_log));
    tf_acme_problem_dispose(&prob);
}

/* ---- issuance --------------------------------------------------------------- */

/* The root that signs pebble's certificates, from its management API. */
static void fetch_root(const char *path)
{
    tf_acme_http_opts_t o = {.ca_file = peb.ca_file, .timeout_ms = 20000};
    tf_acme_http_t *h = NULL;
    char err[256] = "";
    cr_assert_eq(tf_acme_http_new(&o, &h, err, sizeof err), 0, "%s", err);
    tf_acme_http_response_t r;
    cr_assert_eq(tf_acme_http_request(h, TF_ACME_GET, peb.roots_url, NULL, 0, &r, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(r.status, 200);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fwrite(r.body, 1, r.body_len, f);
    fclose(f);
    tf_acme_http_response_dispose(&r);
    tf_acme_http_free(h);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* The store takes the bundle as it takes an uploaded one, and openssl
 * verifies the chain up to pebble's root. */
static void check_bundle(const tf_acme_issued_t *is, const char *host)
{
    tf_cs_bundle_t *b = NULL;
    int rc = tf_cs_bundle_load_mem(host, is->bundle, is->bundle_len, NULL, 0,
                                   &(tf_cs_load_opts_t){0}, &b);
    cr_assert_eq(rc, 0, "%s", tf_strerror(rc));
    cr_expect_neq(tf_cs_bundle_status(b), TF_CS_ERROR);
    cr_expect_eq(tf_cs_bundle_key_type(b), TF_CS_KEY_EC);
    bool named = false;
    for (size_t i = 0; i < tf_cs_bundle_name_count(b); i++)
        named = named || strcmp(tf_cs_bundle_name_at(b, i), host) == 0;
    cr_expect(named, "the certificate names %s", host);
    cr_expect_eq((int64_t)tf_cs_bundle_not_after(b), is->not_after);
    tf_cs_bundle_unref(b);

    char root[128], pem[128];
    snprintf(root, sizeof root, "%s/root.pem", peb.dir);
    snprintf(pem, sizeof pem, "%s/bundle.pem", peb.dir);
    fetch_root(root);
    write_file(pem, is->bundle, is->bundle_len);
    int st;
    char *out =
        tf_px_sh(&st, "openssl verify -CAfile '%s' -untrusted '%s' '%s' 2>&1", root, pem, pem);
    cr_expect_eq(st, 0, "%s", out);
    free(out);
}

static void saw_order(void *ud, const char *url)
{
    snprintf(ud, 256, "%s", url);
}

Test(acme_client, issues_by_http01_and_the_bundle_is_served_as_uploaded, .init = setup,
     .fini = teardown)
{
    tf_acme_client_t *c = client();
    tf_acme_issued_t is;
    tf_acme_problem_t prob;
    char seen[256] = "";
    int rc = tf_acme_client_issue(c, "a.example.com", NULL, NULL, saw_order, seen, &is, &prob);
    cr_assert_eq(rc, 0, "%s: %s", tf_err_name(rc), prob.detail);
    cr_expect_not_null(is.order_url);
    cr_expect_str_eq(seen, is.order_url, "on_order had the URL before the end");
    cr_expect_gt(atomic_load(&resp.hits), 0, "pebble fetched the answer from the table");
    cr_expect_eq(tf_acme_http01_count(table), 0, "the answer is removed after");
    time_t now = time(NULL);
    cr_expect_leq(is.not_before, now + 60);
    cr_expect_gt(is.not_after, now + 86400);
    cr_expect(strstr(is.bundle, "-----BEGIN CERTIFICATE-----") == is.bundle);
    cr_expect(strstr(is.bundle, "-----BEGIN EC PRIVATE KEY-----") != NULL);
    cr_expect_eq(strlen(is.bundle), is.bundle_len);
    check_bundle(&is, "a.example.com");

    char path[128];
    struct stat sb;
    snprintf(path, sizeof path, "%s/account.json", storage);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0600);
    int st;
    char *left = tf_px_sh(&st, "ls '%s/orders'", storage);
    cr_expect_str_eq(left, "", "the certificate key is not kept after the download");
    free(left);
    tf_acme_issued_dispose(&is);
    tf_acme_client_free(c);
}

Test(acme_client, an_rsa_key_type_gives_an_rsa_certificate, .init = setup, .fini = teardown)
{
    tf_acme_client_conf_t conf = conf_for(peb.directory);
    conf.key_type = TF_ACME_KEY_RSA;
    tf_acme_client_t *c = client_with(&conf);
    tf_acme_issued_t is;
    issue_ok(c, "rsa.example.com", NULL, &is);
    cr_expect(strstr(is.bundle, "-----BEGIN RSA PRIVATE KEY-----") != NULL);
    tf_cs_bundle_t *b = NULL;
    cr_assert_eq(tf_cs_bundle_load_mem("rsa", is.bundle, is.bundle_len, NULL, 0,
                                       &(tf_cs_load_opts_t){0}, &b),
                 0);
    cr_expect_eq(tf_cs_bundle_key_type(b), TF_CS_KEY_RSA);
    tf_cs_bundle_unref(b);
    tf_acme_issued_dispose(&is);
    tf_acme_client_free(c);
}

Test(acme_client, issues_by_tls_alpn01_when_http01_is_not_allowed, .init = setup_alpn,
     .fini = teardown)
{
    tf_acme_client_conf_t conf = conf_for(peb.directory);
    conf.challenges = TF_CONF_ACME_TLSALPN01;
    tf_acme_client_t *c = client_with(&conf);
    tf_acme_issued_t is;
    issue_ok(c, "alpn.example.com", NULL, &is);
    cr_expect_gt(atomic_load(&alpn.hits), 0, "pebble shook hands with the validation certificate");
    cr_expect_eq(atomic_load(&resp.hits), 0, "no http-01 answer was fetched");
    cr_expect_eq(tf_acme_alpn01_count(table), 0, "the certificate is removed after");
    check_bundle(&is, "alpn.example.com");
    tf_acme_issued_dispose(&is);
    tf_acme_client_free(c);
}

/* ---- the account ------------------------------------------------------------ */

static char *read_text(const char *path)
{
    int st;
    char *t = tf_px_sh(&st, "cat '%s'", path);
    cr_assert_eq(st, 0, "%s", t);
    return t;
}

Test(acme_client, clients_sharing_storage_share_one_account, .init = setup, .fini = teardown)
{
    tf_acme_client_t *a = client();
    tf_acme_issued_t is;
    issue_ok(a, "one.example.com", NULL, &is);
    tf_acme_issued_dispose(&is);
    cr_assert_not_null(tf_acme_client_account_url(a));
    char first[256];
    snprintf(first, sizeof first, "%s", tf_acme_client_account_url(a));
    char path[128];
    snprintf(path, sizeof path, "%s/account.json", storage);
    char *stored = read_text(path);
    cr_expect(strstr(stored, first) != NULL, "%s", stored);

    /* A second client (a restart, another instance) uses the stored URL. */
    tf_acme_client_t *b = client();
    issue_ok(b, "two.example.com", NULL, &is);
    tf_acme_issued_dispose(&is);
    cr_expect_str_eq(tf_acme_client_account_url(b), first);
    char *again = read_text(path);
    cr_expect_str_eq(again, stored, "the account file is not rewritten");

    /* Without the file, newAccount with the same key finds the same
     * account (RFC 8555 §7.3.1): never a second one. */
    cr_assert_eq(unlink(path), 0);
    tf_acme_client_t *c = client();
    issue_ok(c, "three.example.com", NULL, &is);
    tf_acme_issued_dispose(&is);
    cr_expect_str_eq(tf_acme_client_account_url(c), first);
    free(stored);
    free(again);
    tf_acme_client_free(a);
    tf_acme_client_free(b);
    tf_acme_client_free(c);
}

Test(acme_client, binds_the_account_when_the_server_requires_it, .init = setup_eab,
     .fini = teardown)
{
    unsigned char mac[TF_ACME_EAB_KEY_MAX];
    size_t maclen = 0;
    cr_assert_eq(tf_acme_b64url_decode(EAB_HMAC, strlen(EAB_HMAC), mac, sizeof mac, &maclen), 0);

    /* Without the binding: the server's problem, as is. */
    tf_acme_client_t *c = client();
    tf_acme_issued_t is;
    tf_acme_problem_t prob;
    int rc = tf_acme_client_issue(c, "eab.example.com", NULL, NULL, NULL, NULL, &is, &prob);
    cr_expect_eq(rc, TF_EACME, "%s", tf_err_name(rc));
    cr_expect_str_eq(prob.type, "urn:ietf:params:acme:error:externalAccountRequired", "%s",
                     prob.detail);
    cr_expect_eq(prob.status, 403);
    cr_expect_null(tf_acme_client_account_url(c));
    tf_acme_problem_dispose(&prob);
    tf_acme_client_free(c);

    /* A wrong MAC key is refused. */
    tf_acme_client_conf_t conf = conf_for(peb.directory);
    unsigned char bad[32] = {1, 2, 3};
    conf.eab_kid = EAB_KID;
    conf.eab_mac = bad;
    conf.eab_mac_len = sizeof bad;
    c = client_with(&conf);
    rc = tf_acme_client_issue(c, "eab.example.com", NULL, NULL, NULL, NULL, &is, &prob);
    cr_expect_eq(rc, TF_EACME, "%s", tf_err_name(rc));
    cr_expect_str_eq(prob.type, "urn:ietf:params:acme:error:unauthorized", "%s", prob.detail);
    tf_acme_problem_dispose(&prob);
    tf_acme_client_free(c);

    conf.eab_mac = mac;
    conf.eab_mac_len = maclen;
    c = client_with(&conf);
    issue_ok(c, "eab.example.com", NULL, &is);
    cr_expect_not_null(tf_acme_client_account_url(c));
    tf_acme_issued_dispose(&is);
    tf_acme_client_free(c);
}

/* ---- faults ------------------------------------------------------------------ */

/* As the manager does after a failure, resumes the order up to 5 times. */
static void issue_despite_bad_nonces(tf_acme_client_t *c, const char *host)
{
    char url[256] = "";
    int rc = -1;
    tf_acme_issued_t is;
    for (int i = 0; i < 5 && rc != 0; i++) {
        tf_acme_problem_t prob;
        rc = tf_acme_client_issue(c, host, url[0] ? url : NULL, NULL, saw_order, url, &is, &prob);
        cr_expect(rc == 0 || strcmp(prob.type, "urn:ietf:params:acme:error:badNonce") == 0,
                  "%s: %s %s", tf_err_name(rc), prob.type, prob.detail);
        tf_acme_problem_dispose(&prob);
    }
    cr_assert_eq(rc, 0);
    check_bundle(&is, host);
    tf_acme_issued_dispose(&is);
}

Test(acme_client, bad_nonces_are_retried_with_the_fresh_nonce, .init = setup_nonce,
     .fini = teardown)
{
    /* pebble refuses 30% of good nonces. Each request is retried up to 3
     * times (all four refused: under 1%, but an issuance makes about ten
     * requests, hence the resumption above). Two issuances make some 20
     * requests: all accepted the first time is a chance of 0.08%. */
    tf_acme_client_t *c = client();
    issue_despite_bad_nonces(c, "nonce.example.com");
    issue_despite_bad_nonces(c, "nonce2.example.com");
    cr_expect_gt(tf_acme_client_nonce_retries(c), 0);
    tf_acme_client_free(c);
}

Test(acme_client, a_wrong_answer_gives_the_servers_problem, .init = setup, .fini = teardown)
{
    atomic_store(&resp.wrong, true);
    tf_acme_client_t *c = client();
    tf_acme_issued_t is;
    tf_acme_problem_t prob;
    char url[256] = "";
    int rc = tf_acme_client_issue(c, "bad.example.com", NULL, NULL, saw_order, url, &is, &prob);
    cr_assert_eq(rc, TF_EACME, "%s: %s", tf_err_name(rc), prob.detail);
    cr_expect(strcmp(prob.type, "urn:ietf:params:acme:error:unauthorized") == 0 ||
                  strcmp(prob.type, "urn:ietf:params:acme:error:incorrectResponse") == 0,
              "%s", prob.type);
    cr_expect_neq(prob.detail[0], '\0');
    cr_expect_gt(atomic_load(&resp.hits), 0);
    cr_expect_eq(tf_acme_http01_count(table), 0, "the answer is removed after a failure too");
    cr_expect_null(is.bundle);
    tf_acme_problem_dispose(&prob);

    /* The failed order is not resumed: a new one, which now validates. */
    atomic_store(&resp.wrong, false);
    issue_ok(c, "bad.example.com", url, &is);
    cr_expect_str_neq(is.order_url, url);
    tf_acme_issued_dispose(&is);
    tf_acme_client_free(c);
}

Test(acme_client, a_pending_order_is_resumed, .init = setup, .fini = teardown)
{
    /* No allowed challenge type: the order exists, pending, when the call
     * gives up (as a restart in the middle would leave it). */
    tf_acme_client_conf_t conf = conf_for(peb.directory);
    conf.challenges = 0;
    tf_acme_client_t *c = client_with(&conf);
    tf_acme_issued_t is;
    tf_acme_problem_t prob;
    char url[256] = "";
    int rc = tf_acme_client_issue(c, "resume.example.com", NULL, NULL, saw_order, url, &is, &prob);
    cr_assert_eq(rc, TF_EUNSUPPORTED, "%s: %s", tf_err_name(rc), prob.detail);
    cr_expect(strstr(prob.detail, "http-01") != NULL, "%s", prob.detail);
    cr_assert_neq(url[0], '\0');
    tf_acme_problem_dispose(&prob);
    tf_acme_client_free(c);

    /* A new client (the restart) continues that very order. */
    c = client();
    char again[256] = "";
    rc = tf_acme_client_issue(c, "resume.example.com", url, NULL, saw_order, again, &is, &prob);
    cr_assert_eq(rc, 0, "%s: %s", tf_err_name(rc), prob.detail);
    cr_expect_str_eq(is.order_url, url);
    cr_expect_str_eq(again, "", "no new order was made");
    tf_acme_issued_dispose(&is);

    /* A valid order resumes only with its key, which is gone after the
     * download: a new order. So is an order for another name, and one the
     * server does not know. */
    issue_ok(c, "resume.example.com", url, &is);
    cr_expect_str_neq(is.order_url, url);
    tf_acme_issued_dispose(&is);
    issue_ok(c, "other.example.com", url, &is);
    cr_expect_str_neq(is.order_url, url);
    tf_acme_issued_dispose(&is);
    char gone[300];
    snprintf(gone, sizeof gone, "%s-gone", url);
    issue_ok(c, "other.example.com", gone, &is);
    tf_acme_issued_dispose(&is);
    tf_acme_client_free(c);
}

/* Where the client keeps an order's certificate key (acme.h: storage/orders/,
 * named by the first 16 bytes of SHA-256(order URL) in hex). */
static void order_key_path(const char *url, char *out, size_t cap)
{
    unsigned char h[WC_SHA256_DIGEST_SIZE];
    cr_assert_eq(wc_Sha256Hash((const unsigned char *)url, (word32)strlen(url), h), 0);
    int n = snprintf(out, cap, "%s/orders/", storage);
    for (size_t i = 0; i < 16; i++)
        n += snprintf(out + n, cap - (size_t)n, "%02x", h[i]);
    snprintf(out + n, cap - (size_t)n, ".key");
}

Test(acme_client, a_finalized_order_resumes_with_its_kept_key, .init = setup, .fini = teardown)
{
    /* As if the download had failed after finalization: the order is valid
     * and its key is still in storage. */
    tf_acme_client_t *c = client();
    tf_acme_issued_t first, again;
    issue_ok(c, "kept.example.com", NULL, &first);
    const char *key = strstr(first.bundle, "-----BEGIN EC PRIVATE KEY-----");
    cr_assert_not_null(key);
    char path[512];
    order_key_path(first.order_url, path, sizeof path);
    write_file(path, key, strlen(key));

    tf_acme_client_t *d = client();
    char seen[256] = "";
    tf_acme_problem_t prob;
    int rc = tf_acme_client_issue(d, "kept.example.com", first.order_url, NULL, saw_order, seen,
                                  &again, &prob);
    cr_assert_eq(rc, 0, "%s: %s", tf_err_name(rc), prob.detail);
    cr_expect_str_eq(again.order_url, first.order_url);
    cr_expect_str_eq(seen, "", "no new order");
    cr_expect_eq(again.bundle_len, first.bundle_len);
    cr_expect_eq(memcmp(again.bundle, first.bundle, first.bundle_len), 0,
                 "the same certificate, with the kept key");
    cr_expect_neq(access(path, F_OK), 0, "the key file is gone once used");
    tf_acme_issued_dispose(&first);
    tf_acme_issued_dispose(&again);
    tf_acme_client_free(c);
    tf_acme_client_free(d);
}

Test(acme_client, names_that_cannot_be_ordered_are_refused_locally, .init = setup, .fini = teardown)
{
    tf_acme_client_t *c = client();
    tf_acme_issued_t is;
    tf_acme_problem_t prob;
    const char *bad[] = {"*.example.com", "Upper.example.com", "", "a..b"};
    for (size_t i = 0; i < 4; i++) {
        cr_expect_eq(tf_acme_client_issue(c, bad[i], NULL, NULL, NULL, NULL, &is, &prob), TF_EINVAL,
                     "%s", bad[i]);
        cr_expect_eq(prob.status, 0);
        tf_acme_problem_dispose(&prob);
    }
    tf_acme_client_free(c);
}

Test(acme_client, pebble_offers_no_renewal_info, .init = setup, .fini = teardown)
{
    tf_acme_client_t *c = client();
    tf_acme_issued_t is;
    issue_ok(c, "ari.example.com", NULL, &is);
    int64_t s = 0, e = 0;
    tf_acme_problem_t prob;
    /* pebble 2.4 (Debian 12) predates RFC 9773. */
    int rc = tf_acme_client_renewal_info(c, is.bundle, is.bundle_len, &s, &e, &prob);
    cr_expect_eq(rc, TF_ENOTFOUND, "%s", tf_err_name(rc));
    cr_expect(strstr(prob.detail, "renewalInfo") != NULL, "%s", prob.detail);
    tf_acme_problem_dispose(&prob);
    tf_acme_issued_dispose(&is);
    tf_acme_client_free(c);
}

Test(acme_client, cancel_stops_the_next_request, .init = setup, .fini = teardown)
{
    tf_acme_client_t *c = client();
    tf_acme_client_cancel(c);
    tf_acme_issued_t is;
    tf_acme_problem_t prob;
    cr_expect_eq(tf_acme_client_issue(c, "x.example.com", NULL, NULL, NULL, NULL, &is, &prob),
                 -ECANCELED);
    tf_acme_problem_dispose(&prob);
    tf_acme_client_free(c);
}

/* ---- scripted servers ------------------------------------------------------ */

static void answer_500(tf_resp_t *r, const char *method, const char *path, tf_resp_answer_t *a)
{
    a->status = 500;
    a->ctype = "text/html";
    a->body = strdup("<h1>Internal Server Error</h1>");
}

Test(acme_client, a_server_error_is_a_clean_error, .init = common_init, .fini = teardown)
{
    tf_resp_start(&resp, answer_500, NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/dir", resp.base);
    tf_acme_client_conf_t conf = conf_for(dir);
    tf_acme_client_t *c = client_with(&conf);
    tf_acme_issued_t is;
    tf_acme_problem_t prob;
    int rc = tf_acme_client_issue(c, "x.example.com", NULL, NULL, NULL, NULL, &is, &prob);
    cr_expect_eq(rc, TF_EACME, "%s", tf_err_name(rc));
    cr_expect_eq(prob.status, 500);
    cr_expect_str_eq(prob.type, "");
    cr_expect(strstr(prob.detail, "500") != NULL && strstr(prob.detail, "Internal") != NULL, "%s",
              prob.detail);
    cr_expect_null(is.bundle);
    tf_acme_problem_dispose(&prob);
    tf_acme_client_free(c);
}

static void answer_junk(tf_resp_t *r, const char *method, const char *path, tf_resp_answer_t *a)
{
    a->status = 200;
    a->ctype = "application/json";
    a->body = strdup("{\"newNonce\": ");
}

Test(acme_client, a_malformed_directory_is_a_clean_error, .init = common_init, .fini = teardown)
{
    tf_resp_start(&resp, answer_junk, NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/dir", resp.base);
    tf_acme_client_conf_t conf = conf_for(dir);
    tf_acme_client_t *c = client_with(&conf);
    tf_acme_issued_t is;
    tf_acme_problem_t prob;
    int rc = tf_acme_client_issue(c, "x.example.com", NULL, NULL, NULL, NULL, &is, &prob);
    cr_expect_eq(rc, TF_EIO, "%s", tf_err_name(rc));
    cr_expect(strstr(prob.detail, "not a JSON object") != NULL, "%s", prob.detail);
    tf_acme_problem_dispose(&prob);
    tf_acme_client_free(c);
}

/* A directory whose newAccount is down, saying so with a problem document. */
static void answer_down(tf_resp_t *r, const char *method, const char *path, tf_resp_answer_t *a)
{
    if (strcmp(path, "/dir") == 0) {
        a->status = 200;
        a->ctype = "application/json";
        a->body = malloc(512);
        snprintf(a->body, 512,
                 "{\"newNonce\": \"%s/nonce\", \"newAccount\": \"%s/acct\", \"newOrder\": "
                 "\"%s/order\"}",
                 r->base, r->base, r->base);
        return;
    }
    if (strcmp(method, "HEAD") == 0) {
        a->status = 200;
        snprintf(a->headers, sizeof a->headers, "Replay-Nonce: n1\r\n");
        return;
    }
    a->status = 503;
    a->ctype = "application/problem+json";
    a->body = strdup("{\"type\": \"urn:ietf:params:acme:error:serverInternal\", \"detail\": "
                     "\"down for maintenance\"}");
    snprintf(a->headers, sizeof a->headers, "Retry-After: 120\r\nReplay-Nonce: abc\r\n");
}

Test(acme_client, a_problem_document_and_retry_after_are_passed_on, .init = common_init,
     .fini = teardown)
{
    tf_resp_start(&resp, answer_down, NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/dir", resp.base);
    tf_acme_client_conf_t conf = conf_for(dir);
    tf_acme_client_t *c = client_with(&conf);
    tf_acme_issued_t is;
    tf_acme_problem_t prob;
    int rc = tf_acme_client_issue(c, "x.example.com", NULL, NULL, NULL, NULL, &is, &prob);
    cr_expect_eq(rc, TF_EACME, "%s", tf_err_name(rc));
    cr_expect_eq(prob.status, 503);
    cr_expect_str_eq(prob.type, "urn:ietf:params:acme:error:serverInternal");
    cr_expect_str_eq(prob.detail, "down for maintenance");
    cr_expect_eq(prob.retry_after_s, 120);
    tf_acme_problem_dispose(&prob);
    tf_acme_client_free(c);
}

Test(acme_client, a_refused_connection_is_the_transports_code, .init = common_init,
     .fini = teardown)
{
    tf_resp_start(&resp, answer_500, NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "http://127.0.0.1:%u/dir", resp.port);
    tf_resp_stop(&resp); /* nothing listens there now */
    tf_acme_client_conf_t conf = conf_for(dir);
    tf_acme_client_t *c = client_with(&conf);
    tf_acme_issued_t is;
    tf_acme_problem_t prob;
    int rc = tf_acme_client_issue(c, "x.example.com", NULL, NULL, NULL, NULL, &is, &prob);
    cr_expect_eq(rc, -ECONNREFUSED, "%s", tf_err_name(rc));
    cr_expect_eq(prob.status, 0);
    cr_expect_neq(prob.detail[0], '\0');
    tf_acme_problem_dispose(&prob);
    tf_acme_client_free(c);
}

/* RFC 9773 §4.1's example: keyIdentifier 69:88:5B:..., serial 0x87654321,
 * certID "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE". */
static const char RFC_ID[] = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";

static char *rfc_example_cert(const char *dir)
{
    int st;
    char *out = tf_px_sh(
        &st,
        "set -e; cd '%s'; "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
        "-out ca.crt -days 2 -subj /CN=ari-ca "
        "-addext subjectKeyIdentifier=69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4 "
        "-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign 2>&1; "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key "
        "-out leaf.csr -subj /CN=ari.example 2>&1; "
        "printf 'authorityKeyIdentifier=keyid\\nsubjectAltName=DNS:ari.example\\n' > leaf.ext; "
        "openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -set_serial 0x87654321 -days 1 "
        "-extfile leaf.ext -out leaf.crt 2>&1",
        dir);
    tf_px_sh_ok("making the RFC 9773 example certificate", out, st);
    char path[128];
    snprintf(path, sizeof path, "%s/leaf.crt", dir);
    return read_text(path);
}

static void answer_ari(tf_resp_t *r, const char *method, const char *path, tf_resp_answer_t *a)
{
    a->status = 200;
    a->ctype = "application/json";
    if (strcmp(path, "/dir") == 0) {
        a->body = malloc(512);
        snprintf(a->body, 512, "{\"newNonce\": \"%s/nonce\", \"renewalInfo\": \"%s/ari\"}", r->base,
                 r->base);
    } else if (strncmp(path, "/ari/", 5) == 0) {
        a->body = strdup("{\"suggestedWindow\": {\"start\": \"2030-01-02T03:04:05Z\", "
                         "\"end\": \"2030-01-03T04:04:05.25+01:00\"}, "
                         "\"explanationURL\": \"https://example.com/why\"}");
    } else {
        a->status = 404;
    }
}

Test(acme_client, renewal_info_is_asked_by_cert_id_and_read, .init = common_init, .fini = teardown)
{
    char *pem = rfc_example_cert(storage);
    tf_resp_start(&resp, answer_ari, NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/dir", resp.base);
    tf_acme_client_conf_t conf = conf_for(dir);
    tf_acme_client_t *c = client_with(&conf);
    int64_t s = 0, e = 0;
    tf_acme_problem_t prob;
    int rc = tf_acme_client_renewal_info(c, pem, strlen(pem), &s, &e, &prob);
    cr_assert_eq(rc, 0, "%s: %s", tf_err_name(rc), prob.detail);
    char path[512];
    tf_resp_last_path(&resp, path, sizeof path);
    char want[128];
    snprintf(want, sizeof want, "/ari/%s", RFC_ID);
    cr_expect_str_eq(path, want);
    cr_expect_eq(s, 1893553445);         /* 2030-01-02T03:04:05Z */
    cr_expect_eq(e, 1893553445 + 86400); /* a day later, written at +01:00 */
    rc = tf_acme_client_renewal_info(c, "junk", 4, &s, &e, &prob);
    cr_expect_eq(rc, TF_EINVAL);
    tf_acme_problem_dispose(&prob);
    tf_acme_client_free(c);
    free(pem);
}

/* A scripted server for newOrder's `replaces` (RFC 9773 §5): an account,
 * renewalInfo in the directory unless ari_off, and newOrder refusing an
 * order that names a certificate (alreadyReplaced), then any other
 * (rejectedIdentifier: the test stops there). The certIDs newOrder was
 * sent, "-" for none, are kept in order. */
static atomic_bool ari_off;
/* What an order naming a certificate gets: alreadyReplaced unless set (the
 * status and problem type the CA answers with). */
static int refuse_status;
static const char *refuse_type;
static char order_ids[4][128];
static atomic_int norders;

/* The JWS payload of a POST body, as JSON (NULL when not one). */
static json_t *jws_payload(const char *body)
{
    json_t *jws = json_loads(body, 0, NULL);
    const char *b64 = json_string_value(json_object_get(jws, "payload"));
    unsigned char raw[2048];
    size_t n = 0;
    json_t *p = NULL;
    if (b64 != NULL && tf_acme_b64url_decode(b64, strlen(b64), raw, sizeof raw - 1, &n) == 0)
        p = json_loadb((const char *)raw, n, 0, NULL);
    json_decref(jws);
    return p;
}

static void answer_replaces(tf_resp_t *r, const char *method, const char *path, tf_resp_answer_t *a)
{
    a->status = 200;
    a->ctype = "application/json";
    if (strcmp(path, "/dir") == 0) {
        a->body = malloc(512);
        snprintf(a->body, 512,
                 "{\"newNonce\": \"%s/nonce\", \"newAccount\": \"%s/acct\", "
                 "\"newOrder\": \"%s/order\"%s%s%s}",
                 r->base, r->base, r->base, ari_off ? "" : ", \"renewalInfo\": \"",
                 ari_off ? "" : r->base, ari_off ? "" : "/ari\"");
        return;
    }
    snprintf(a->headers, sizeof a->headers, "Replay-Nonce: n%d\r\n", atomic_load(&norders));
    if (strcmp(method, "HEAD") == 0)
        return;
    if (strcmp(path, "/acct") == 0) {
        a->status = 201;
        snprintf(a->headers + strlen(a->headers), sizeof a->headers - strlen(a->headers),
                 "Location: %s/acct/1\r\n", r->base);
        a->body = strdup("{\"status\": \"valid\"}");
        return;
    }
    json_t *p = jws_payload(r->last_body);
    const char *id = json_string_value(json_object_get(p, "replaces"));
    int n = atomic_fetch_add(&norders, 1);
    if (n < 4)
        snprintf(order_ids[n], sizeof order_ids[n], "%s", id ? id : "-");
    json_decref(p);
    a->ctype = "application/problem+json";
    if (id != NULL && refuse_type != NULL) {
        a->status = refuse_status;
        a->body = malloc(256);
        snprintf(a->body, 256, "{\"type\": \"urn:ietf:params:acme:error:%s\"}", refuse_type);
        return;
    }
    a->status = id != NULL ? 409 : 400;
    a->body = strdup(id != NULL ? "{\"type\": \"urn:ietf:params:acme:error:alreadyReplaced\"}"
                                : "{\"type\": \"urn:ietf:params:acme:error:rejectedIdentifier\"}");
}

static int order_replacing(const char *pem, tf_acme_problem_t *prob)
{
    atomic_store(&norders, 0);
    memset(order_ids, 0, sizeof order_ids);
    tf_resp_start(&resp, answer_replaces, NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/dir", resp.base);
    tf_acme_client_conf_t conf = conf_for(dir);
    tf_acme_client_t *c = client_with(&conf);
    tf_acme_issued_t is;
    int rc = tf_acme_client_issue(c, "ari.example", NULL, pem, NULL, NULL, &is, prob);
    tf_acme_client_free(c);
    tf_resp_stop(&resp);
    return rc;
}

Test(acme_client, a_renewal_names_the_certificate_it_replaces, .init = common_init,
     .fini = teardown)
{
    char *pem = rfc_example_cert(storage);
    tf_acme_problem_t prob;
    int rc = order_replacing(pem, &prob);
    cr_expect_eq(rc, TF_EACME, "%s: %s", tf_err_name(rc), prob.detail);
    cr_expect_str_eq(prob.type, "urn:ietf:params:acme:error:rejectedIdentifier");
    /* Named by its certID; refused as replaced already, placed again
     * without it. */
    cr_expect_eq(atomic_load(&norders), 2);
    cr_expect_str_eq(order_ids[0], RFC_ID);
    cr_expect_str_eq(order_ids[1], "-");
    tf_acme_problem_dispose(&prob);
    /* No renewalInfo in the directory: the server may not know the field. */
    atomic_store(&ari_off, true);
    rc = order_replacing(pem, &prob);
    cr_expect_eq(rc, TF_EACME);
    cr_expect_eq(atomic_load(&norders), 1);
    cr_expect_str_eq(order_ids[0], "-");
    tf_acme_problem_dispose(&prob);
    /* A first order names nothing. */
    atomic_store(&ari_off, false);
    rc = order_replacing(NULL, &prob);
    cr_expect_eq(rc, TF_EACME);
    cr_expect_eq(atomic_load(&norders), 1);
    cr_expect_str_eq(order_ids[0], "-");
    tf_acme_problem_dispose(&prob);
    free(pem);
}

/* A CA that does not know the certificate as this account's (another CA or
 * account since: Boulder answers unauthorized, pebble and Let's Encrypt
 * malformed) refuses `replaces`; the renewal goes on as a plain order. Not
 * for rateLimited: a plain order would be limited the same. */
Test(acme_client, a_refused_replaces_falls_back_to_a_plain_order, .init = common_init,
     .fini = teardown)
{
    char *pem = rfc_example_cert(storage);
    static const struct {
        int status;
        const char *type;
        int orders;
    } cases[] = {{403, "unauthorized", 2}, {400, "malformed", 2}, {429, "rateLimited", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        refuse_status = cases[i].status;
        refuse_type = cases[i].type;
        tf_acme_problem_t prob;
        int rc = order_replacing(pem, &prob);
        cr_expect_eq(rc, TF_EACME, "%s", cases[i].type);
        cr_expect_eq(atomic_load(&norders), cases[i].orders, "%s", cases[i].type);
        cr_expect_str_eq(order_ids[0], RFC_ID);
        if (cases[i].orders == 2)
            cr_expect_str_eq(order_ids[1], "-", "%s", cases[i].type);
        tf_acme_problem_dispose(&prob);
    }
    refuse_type = NULL;
    free(pem);
}

/* ---- units ---------------------------------------------------------------- */

Test(acme_client, cert_id_is_rfc_9773s_example_and_dates_are_the_leafs)
{
    char dir[] = "/tmp/tf-acme-certid-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char *pem = rfc_example_cert(dir);
    unsigned char *der = NULL;
    size_t len = 0;
    cr_assert_eq(tf_acme__leaf_der(pem, strlen(pem), &der, &len), 0);
    char *id = NULL;
    cr_assert_eq(tf_acme__cert_id(der, len, &id), 0);
    cr_expect_str_eq(id, RFC_ID);
    int64_t nb = 0, na = 0;
    cr_assert_eq(tf_acme__cert_dates(der, len, &nb, &na), 0);
    cr_expect_eq(na - nb, 86400, "-days 1");
    cr_expect_lt(llabs((long long)(nb - (int64_t)time(NULL))), 300);
    free(id);
    /* Truncated anywhere: refused, never read past the end. */
    for (size_t cut = 0; cut < len; cut += 7) {
        unsigned char *part = malloc(cut + 1);
        memcpy(part, der, cut);
        cr_expect_eq(tf_acme__cert_id(part, cut, &id), TF_EINVAL, "cut at %zu", cut);
        free(part);
    }
    free(der);
    free(pem);
    int st;
    free(tf_px_sh(&st, "rm -rf '%s'", dir));
}

Test(acme_client, a_problem_document_is_read_whole)
{
    static const char body[] =
        "{\"type\": \"urn:ietf:params:acme:error:rejectedIdentifier\", \"detail\": \"no\", "
        "\"status\": 400, \"subproblems\": [{\"type\": \"urn:ietf:params:acme:error:caa\", "
        "\"identifier\": {\"type\": \"dns\", \"value\": \"a.example\"}}]}";
    tf_acme_problem_t p = {0};
    tf_acme__problem_parse(&p, "https://ca/x", 403, "application/problem+json; charset=utf-8", body,
                           sizeof body - 1, "30");
    cr_expect_eq(p.status, 403, "the response's status wins");
    cr_expect_str_eq(p.type, "urn:ietf:params:acme:error:rejectedIdentifier");
    cr_expect_str_eq(p.detail, "no");
    cr_assert_not_null(p.subproblems);
    json_t *sub = json_loads(p.subproblems, 0, NULL);
    cr_expect(json_is_array(sub) && json_array_size(sub) == 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(sub, 0), "type")),
                     "urn:ietf:params:acme:error:caa");
    json_decref(sub);
    cr_expect_eq(p.retry_after_s, 30);
    tf_acme_problem_dispose(&p);
    cr_expect_null(p.subproblems);

    /* Not a problem document: the status and an excerpt. */
    tf_acme__problem_parse(&p, "https://ca/x", 502, "text/html", "<b>bad\ngateway</b>", 18, NULL);
    cr_expect_eq(p.status, 502);
    cr_expect_str_eq(p.type, "");
    cr_expect(strstr(p.detail, "https://ca/x") && strstr(p.detail, "502") &&
                  strstr(p.detail, "<b>bad gateway</b>"),
              "%s", p.detail);
    cr_expect_null(p.subproblems);
    /* Said to be one but is not JSON. */
    tf_acme__problem_parse(&p, "u", 400, "application/problem+json", "{oops", 5, NULL);
    cr_expect_eq(p.status, 400);
    cr_expect_str_eq(p.type, "");
    tf_acme_problem_dispose(&p);
}

Test(acme_client, retry_after_takes_seconds_and_dates)
{
    int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    cr_expect_eq(tf_acme__retry_after(NULL, now), 0);
    cr_expect_eq(tf_acme__retry_after("120", now), 120);
    cr_expect_eq(tf_acme__retry_after(" 7 ", now), 7);
    cr_expect_eq(tf_acme__retry_after("12x", now), 0);
    cr_expect_eq(tf_acme__retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), 60);
    cr_expect_eq(tf_acme__retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 0, "now: no wait");
    cr_expect_eq(tf_acme__retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now), 0, "past");
    cr_expect_eq(tf_acme__retry_after("Sun, 06 Foo 1994 08:50:37 GMT", now), 0);
    cr_expect_eq(tf_acme__retry_after("soon", now), 0);
}

Test(acme_client, rfc3339_dates)
{
    int64_t t = 0;
    cr_expect(tf_acme__rfc3339("1970-01-01T00:00:00Z", &t) && t == 0);
    cr_expect(tf_acme__rfc3339("2030-01-02T03:04:05Z", &t) && t == 1893553445);
    cr_expect(tf_acme__rfc3339("2030-01-02t03:04:05.999z", &t) && t == 1893553445);
    cr_expect(tf_acme__rfc3339("2030-01-02T04:04:05+01:00", &t) && t == 1893553445);
    cr_expect(tf_acme__rfc3339("2030-01-01T23:34:05-03:30", &t) && t == 1893553445);
    cr_expect_not(tf_acme__rfc3339("2030-01-02T03:04:05", &t), "no offset");
    cr_expect_not(tf_acme__rfc3339("2030-13-02T03:04:05Z", &t));
    cr_expect_not(tf_acme__rfc3339("2030-01-02T03:04:05Zjunk", &t));
    cr_expect_not(tf_acme__rfc3339("", &t));
    cr_expect_not(tf_acme__rfc3339(NULL, &t));
}

Test(acme_client, challenges_are_chosen_by_preference_and_permission)
{
    json_t *authz = json_loads("{\"challenges\": ["
                               "{\"type\": \"dns-01\", \"url\": \"u1\", \"token\": \"t1\"},"
                               "{\"type\": \"tls-alpn-01\", \"url\": \"u2\", \"token\": \"t2\"},"
                               "{\"type\": \"http-01\", \"url\": \"u3\", \"token\": \"t3\"}]}",
                               0, NULL);
    cr_assert_not_null(authz);
    const json_t *ch =
        tf_acme__choose_challenge(authz, TF_CONF_ACME_HTTP01 | TF_CONF_ACME_TLSALPN01);
    cr_expect_str_eq(json_string_value(json_object_get(ch, "url")), "u3", "http-01 first");
    ch = tf_acme__choose_challenge(authz, TF_CONF_ACME_TLSALPN01);
    cr_expect_str_eq(json_string_value(json_object_get(ch, "url")), "u2");
    cr_expect_null(tf_acme__choose_challenge(authz, 0));
    json_array_remove(json_object_get(authz, "challenges"), 2);
    ch = tf_acme__choose_challenge(authz, TF_CONF_ACME_HTTP01 | TF_CONF_ACME_TLSALPN01);
    cr_expect_str_eq(json_string_value(json_object_get(ch, "url")), "u2", "else tls-alpn-01");
    cr_expect_null(tf_acme__choose_challenge(authz, TF_CONF_ACME_HTTP01));
    json_decref(authz);
}
