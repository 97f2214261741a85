/* acme/http.c against Debian's pebble (tests/acme/pebble.h): the directory
 * over verified HTTPS, a nonce, a POST answered with a problem document, and
 * the refusals: a CA that did not sign the server, a name the certificate
 * does not hold, http:// to a host that is not loopback. */
#include "pebble.h"

#include "acme/acme.h"
#include "common/err.h"

#include <criterion/criterion.h>

#include <jansson.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tf_pebble_t peb;

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
    tf_pebble_start(&peb, NULL);
}

static void teardown(void)
{
    tf_pebble_stop(&peb);
    wolfSSL_Cleanup();
}

TestSuite(pebble, .init = setup, .fini = teardown, .timeout = 120);

static tf_acme_http_t *client(const char *ca_file)
{
    tf_acme_http_opts_t o = {.ca_file = ca_file, .timeout_ms = 20000};
    tf_acme_http_t *h = NULL;
    char err[512] = "";
    cr_assert_eq(tf_acme_http_new(&o, &h, err, sizeof err), 0, "%s", err);
    return h;
}

static void get_ok(tf_acme_http_t *h, tf_acme_method_t m, const char *url,
                   tf_acme_http_response_t *r)
{
    char err[512] = "";
    int rc = tf_acme_http_request(h, m, url, NULL, 0, r, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %s (%s)", url, err, tf_strerror(rc));
}

/* The directory's URL for key, copied into out. */
static void dir_url(const tf_acme_http_response_t *r, const char *key, char *out, size_t len)
{
    json_error_t je;
    json_t *d = json_loadb(r->body, r->body_len, 0, &je);
    cr_assert_not_null(d, "not JSON: %s: %s", je.text, r->body);
    const char *v = json_string_value(json_object_get(d, key));
    cr_assert_not_null(v, "no %s in %s", key, r->body);
    snprintf(out, len, "%s", v);
    json_decref(d);
}

Test(pebble, the_directory_names_the_acme_resources)
{
    tf_acme_http_t *h = client(peb.ca_file);
    tf_acme_http_response_t r;
    get_ok(h, TF_ACME_GET, peb.directory, &r);
    cr_expect_eq(r.status, 200);
    cr_expect_not_null(r.content_type);
    cr_expect(r.content_type && strstr(r.content_type, "application/json") != NULL);
    cr_expect_eq(strlen(r.body), r.body_len);
    char url[256];
    const char *keys[] = {"newNonce", "newAccount", "newOrder"};
    for (size_t i = 0; i < 3; i++) {
        dir_url(&r, keys[i], url, sizeof url);
        cr_expect_eq(strncmp(url, "https://localhost:", 18), 0, "%s", url);
    }
    tf_acme_http_response_dispose(&r);
    tf_acme_http_free(h);
}

Test(pebble, a_nonce_comes_with_head_and_a_post_gets_a_problem)
{
    tf_acme_http_t *h = client(peb.ca_file);
    tf_acme_http_response_t r;
    get_ok(h, TF_ACME_GET, peb.directory, &r);
    char nonce_url[256], account_url[256];
    dir_url(&r, "newNonce", nonce_url, sizeof nonce_url);
    dir_url(&r, "newAccount", account_url, sizeof account_url);
    tf_acme_http_response_dispose(&r);

    get_ok(h, TF_ACME_HEAD, nonce_url, &r);
    cr_expect(r.status == 200 || r.status == 204, "%d", r.status);
    cr_assert_not_null(r.replay_nonce);
    cr_expect_gt(strlen(r.replay_nonce), 8);
    cr_expect_not_null(r.link);
    cr_expect(r.link && strstr(r.link, "rel=\"index\"") != NULL, "%s", r.link);
    cr_expect_eq(r.body_len, 0);
    char first[128];
    snprintf(first, sizeof first, "%s", r.replay_nonce);
    tf_acme_http_response_dispose(&r);
    get_ok(h, TF_ACME_HEAD, nonce_url, &r);
    cr_expect_str_neq(r.replay_nonce, first, "each nonce is new");
    tf_acme_http_response_dispose(&r);

    /* Not a JWS: pebble answers 400 with a problem document, and a fresh
     * nonce for the retry (RFC 8555 §6.5). */
    static const char junk[] = "{\"protected\": \"x\"}";
    char err[512] = "";
    cr_assert_eq(tf_acme_http_request(h, TF_ACME_POST, account_url, junk, sizeof junk - 1, &r, err,
                                      sizeof err),
                 0, "%s", err);
    cr_expect_eq(r.status, 400);
    cr_expect(r.content_type && strstr(r.content_type, "application/problem+json") != NULL, "%s",
              r.content_type);
    cr_expect(strstr(r.body, "urn:ietf:params:acme:error:malformed") != NULL, "%s", r.body);
    cr_expect_not_null(r.replay_nonce);
    tf_acme_http_response_dispose(&r);
    tf_acme_http_free(h);
}

Test(pebble, loopback_http_is_allowed)
{
    /* pebble-challtestsrv's management API speaks plain HTTP. */
    tf_acme_http_t *h = client(peb.ca_file);
    tf_acme_http_response_t r;
    get_ok(h, TF_ACME_GET, peb.chall_url, &r);
    cr_expect_geq(r.status, 200);
    cr_expect_lt(r.status, 500);
    tf_acme_http_response_dispose(&r);
    tf_acme_http_free(h);
}

Test(pebble, a_server_not_signed_by_the_ca_file_is_refused)
{
    /* The system store does not hold the harness's test CA. */
    tf_acme_http_t *h = client(NULL);
    tf_acme_http_response_t r;
    char err[512] = "";
    cr_expect_eq(tf_acme_http_request(h, TF_ACME_GET, peb.directory, NULL, 0, &r, err, sizeof err),
                 TF_ETLS);
    cr_expect(strstr(err, "localhost") != NULL && strstr(err, "TLS") != NULL, "%s", err);
    cr_expect_null(r.body);
    tf_acme_http_free(h);
    /* Another CA file, a real one: the same. */
    h = client("/etc/ssl/certs/ca-certificates.crt");
    cr_expect_eq(tf_acme_http_request(h, TF_ACME_GET, peb.directory, NULL, 0, &r, err, sizeof err),
                 TF_ETLS);
    tf_acme_http_free(h);
}

Test(pebble, a_name_the_certificate_does_not_hold_is_refused)
{
    /* Right CA, but pebble's certificate names only "localhost". */
    tf_acme_http_t *h = client(peb.ca_file);
    tf_acme_http_response_t r;
    char url[128], err[512] = "";
    snprintf(url, sizeof url, "https://127.0.0.1:%u/dir", peb.port);
    cr_expect_eq(tf_acme_http_request(h, TF_ACME_GET, url, NULL, 0, &r, err, sizeof err), TF_ETLS,
                 "%s", err);
    tf_acme_http_free(h);
}

Test(pebble, http_to_a_host_that_is_not_loopback_is_refused)
{
    tf_acme_http_t *h = client(peb.ca_file);
    tf_acme_http_response_t r;
    char url[128], err[512] = "";
    snprintf(url, sizeof url, "http://example.com:%u/dir", peb.port);
    cr_expect_eq(tf_acme_http_request(h, TF_ACME_GET, url, NULL, 0, &r, err, sizeof err),
                 TF_EINVAL);
    cr_expect(strstr(err, "loopback") != NULL, "%s", err);
    /* Plain HTTP to pebble's TLS port on loopback is allowed but is no
     * HTTP/1.1 answer: a malformed response, not a hang. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/dir", peb.port);
    int rc = tf_acme_http_request(h, TF_ACME_GET, url, NULL, 0, &r, err, sizeof err);
    if (rc == 0) {
        cr_expect_eq(r.status, 400, "Go answers plain HTTP on a TLS port with 400");
        tf_acme_http_response_dispose(&r);
    }
    tf_acme_http_free(h);
}

Test(pebble, a_second_instance_can_require_external_account_binding)
{
    /* Its own ports and directory beside the suite's instance. */
    tf_pebble_opts_t o = {.eab_kid = "kid-1",
                          .eab_hmac =
                              "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"};
    tf_pebble_t second;
    tf_pebble_start(&second, &o);
    cr_expect_neq(second.port, peb.port);
    tf_acme_http_t *h = client(second.ca_file);
    tf_acme_http_response_t r;
    get_ok(h, TF_ACME_GET, second.directory, &r);
    json_t *d = json_loadb(r.body, r.body_len, 0, NULL);
    cr_expect(json_is_true(json_object_get(json_object_get(d, "meta"), "externalAccountRequired")),
              "%s", r.body);
    json_decref(d);
    tf_acme_http_response_dispose(&r);
    tf_acme_http_free(h);
    tf_pebble_stop(&second);
    cr_expect_not(tf_pebble_running(&second));
    cr_expect(tf_pebble_running(&peb));
}
