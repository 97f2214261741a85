/* Bundle loading and validation (SPEC §4.1-§4.3): every variant of the
 * haproxy.pem layout, every error and every warning, with the PKI that
 * tests/pki/make-pki.sh generates at test time. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certstore/certstore.h"
#include "certstore/certstore_internal.h"

static char pki[4096];
static time_t pki_now;
static tf_cs_trust_t *trust;
static tf_cs_load_opts_t opts;

/* ---- fixtures ---------------------------------------------------------------- */

static void make_pki(void)
{
    const char *script = getenv("TF_PKI_SCRIPT"), *build = getenv("TF_BUILD_DIR");
    char cmd[8192], path[4200];
    FILE *f;
    long long t = 0;

    cr_assert(script && build, "run under ctest: TF_PKI_SCRIPT and TF_BUILD_DIR are unset");
    snprintf(pki, sizeof pki, "%s/test-pki", build);
    snprintf(cmd, sizeof cmd, "bash '%s' '%s'", script, pki);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    snprintf(path, sizeof path, "%s/DONE", pki);
    f = fopen(path, "r");
    cr_assert(f && fscanf(f, "%lld", &t) == 1, "no timestamp in %s", path);
    fclose(f);
    /* Judge validity a minute after the PKI was made, whatever the tree's age. */
    pki_now = (time_t)t + 60;
}

static void setup(void)
{
    char ca[4200];

    wolfSSL_Init();
    make_pki();
    snprintf(ca, sizeof ca, "%s/trust-root.pem", pki);
    cr_assert_eq(
        tf_cs_trust_load(
            ca, access(TF_CS_SYSTEM_PSL_FILE, R_OK) == 0 ? TF_CS_SYSTEM_PSL_FILE : NULL, &trust),
        0);
    opts = (tf_cs_load_opts_t){.trust = trust, .intern = NULL, .now = pki_now};
}

static void teardown(void)
{
    tf_cs_trust_free(trust);
    trust = NULL;
    wolfSSL_Cleanup();
}

TestSuite(bundle, .init = setup, .fini = teardown);

static const char *path_of(const char *rel)
{
    static char buf[2][4300];
    static int k;

    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", pki, rel);
    return buf[k];
}

static tf_cs_bundle_t *load_rc(const char *rel, int want_rc)
{
    tf_cs_bundle_t *b = NULL;
    int rc = tf_cs_bundle_load_file(path_of(rel), &opts, &b);

    cr_assert_not_null(b, "%s: no bundle (rc %d)", rel, rc);
    cr_assert_eq(rc, want_rc, "%s: rc %s, want %s (first diag: %s)", rel, tf_err_name(rc),
                 tf_err_name(want_rc),
                 tf_cs_bundle_diag_count(b) ? tf_cs_bundle_diag_at(b, 0)->message : "none");
    return b;
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(1 << 20);
    size_t n;

    cr_assert(f && buf, "cannot read %s", path);
    n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Asserts a diagnostic with this code exists, has the expected severity and
 * contains the substring; every message names the file first. */
static void expect_diag(const tf_cs_bundle_t *b, tf_cs_diag_code_t code, const char *substr)
{
    const tf_cs_diag_t *d = tf_cs_bundle_find_diag(b, code);
    const char *name = tf_cs_bundle_name(b);

    cr_assert_not_null(d, "%s: no %s diagnostic", name, tf_cs_diag_slug(code));
    cr_expect(strstr(d->message, substr), "%s: %s message lacks '%s': %s", name,
              tf_cs_diag_slug(code), substr, d->message);
    cr_expect(d->severity == TF_CS_FATAL ? d->err < 0 : d->err == 0, "%s: err %d for %s", name,
              d->err, tf_cs_diag_slug(code));
}

static void expect_no_diag(const tf_cs_bundle_t *b, tf_cs_diag_code_t code)
{
    const tf_cs_diag_t *d = tf_cs_bundle_find_diag(b, code);

    cr_expect_null(d, "%s: unexpected %s: %s", tf_cs_bundle_name(b), tf_cs_diag_slug(code),
                   d ? d->message : "");
}

static void expect_chain(const tf_cs_bundle_t *b, size_t n, const char *leaf_cn)
{
    cr_assert_eq(tf_cs_bundle_chain_len(b), n, "%s: chain of %zu, want %zu", tf_cs_bundle_name(b),
                 tf_cs_bundle_chain_len(b), n);
    if (n == 0)
        return;
    cr_expect(strstr(tf_cs_bundle_chain_subject(b, 0), leaf_cn), "%s: leaf is %s",
              tf_cs_bundle_name(b), tf_cs_bundle_chain_subject(b, 0));
    for (size_t i = 1; i < n; i++)
        cr_expect(strstr(tf_cs_bundle_chain_subject(b, i), "Intermediate CA"),
                  "%s: chain[%zu] is %s", tf_cs_bundle_name(b), i,
                  tf_cs_bundle_chain_subject(b, i));
}

/* ---- variants that load cleanly ---------------------------------------------------- */

static const struct {
    const char *file, *cn;
    tf_cs_key_type_t type;
    int bits;
} clean[] = {
    {"bundles/ec-pkcs8.pem", "www.example.com", TF_CS_KEY_EC, 256},
    {"bundles/ec-sec1.pem", "www.example.com", TF_CS_KEY_EC, 256},
    {"bundles/ec-ecparam.pem", "www.example.com", TF_CS_KEY_EC, 256},
    {"bundles/p384.pem", "p384.example.com", TF_CS_KEY_EC, 384},
    {"bundles/rsa-pkcs1.pem", "rsa.example.com", TF_CS_KEY_RSA, 2048},
    {"bundles/rsa-pkcs8.pem", "rsa.example.com", TF_CS_KEY_RSA, 2048},
    {"bundles/crlf.pem", "www.example.com", TF_CS_KEY_EC, 256},
    {"bundles/bom.pem", "rsa.example.com", TF_CS_KEY_RSA, 2048},
    {"bundles/text.pem", "www.example.com", TF_CS_KEY_EC, 256},
    {"bundles/p12.pem", "www.example.com", TF_CS_KEY_EC, 256},
    {"bundles/p12-keyfirst.pem", "www.example.com", TF_CS_KEY_EC, 256},
    {"bundles/sib.pem", "www.example.com", TF_CS_KEY_EC, 256},
    {"bundles/sibcrt.crt", "rsa.example.com", TF_CS_KEY_RSA, 2048},
    {"bundles/sibupper.CER", "www.example.com", TF_CS_KEY_EC, 256},
    {"bundles/wild.pem", "*.example.com", TF_CS_KEY_EC, 256},
};

Test(bundle, clean_variants_load_ok)
{
    for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++) {
        tf_cs_bundle_t *b = load_rc(clean[i].file, 0);

        cr_expect_eq(tf_cs_bundle_status(b), TF_CS_OK, "%s: status %s, diag: %s", clean[i].file,
                     tf_cs_status_name(tf_cs_bundle_status(b)),
                     tf_cs_bundle_diag_count(b) ? tf_cs_bundle_diag_at(b, 0)->message : "");
        expect_chain(b, 2, clean[i].cn);
        cr_expect_eq(tf_cs_bundle_key_type(b), clean[i].type, "%s: key type", clean[i].file);
        cr_expect_eq(tf_cs_bundle_key_bits(b), clean[i].bits, "%s: %d bits", clean[i].file,
                     tf_cs_bundle_key_bits(b));
        cr_expect_gt(tf_cs_bundle_key_der(b).len, 0);
        cr_expect_eq(tf_cs_bundle_error(b), 0);
        tf_cs_bundle_unref(b);
    }
}

/* What the loader hands over is what wolfSSL serves: chain and key load into a
 * server context and the key checks against the certificate. */
Test(bundle, output_loads_into_wolfssl)
{
    for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++) {
        tf_cs_bundle_t *b = load_rc(clean[i].file, 0);
        WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLS_server_method());
        tf_cs_der_t leaf = tf_cs_bundle_chain_at(b, 0), key = tf_cs_bundle_key_der(b);

        cr_assert_not_null(ctx);
        cr_expect_eq(wolfSSL_CTX_use_certificate_buffer(ctx, leaf.der, (long)leaf.len,
                                                        WOLFSSL_FILETYPE_ASN1),
                     WOLFSSL_SUCCESS, "%s: certificate", clean[i].file);
        cr_expect_eq(
            wolfSSL_CTX_use_PrivateKey_buffer(ctx, key.der, (long)key.len, WOLFSSL_FILETYPE_ASN1),
            WOLFSSL_SUCCESS, "%s: key", clean[i].file);
        cr_expect_eq(wolfSSL_CTX_check_private_key(ctx), WOLFSSL_SUCCESS, "%s: key check",
                     clean[i].file);
        wolfSSL_CTX_free(ctx);
        tf_cs_bundle_unref(b);
    }
}

Test(bundle, metadata)
{
    tf_cs_bundle_t *b = load_rc("bundles/ec-pkcs8.pem", 0);
    long days = tf_cs_bundle_days_left(b, pki_now);

    cr_expect(strstr(tf_cs_bundle_subject(b), "CN=www.example.com"), "%s", tf_cs_bundle_subject(b));
    cr_expect(strstr(tf_cs_bundle_issuer(b), "CN=tlsfront Test Intermediate CA"), "%s",
              tf_cs_bundle_issuer(b));
    cr_expect_str_eq(tf_cs_bundle_sig_alg(b), "ecdsa-with-SHA256");
    cr_expect_str_eq(tf_cs_bundle_key_desc(b), "ECDSA P-256");
    cr_expect_eq(strlen(tf_cs_bundle_serial(b)), 16, "serial %s", tf_cs_bundle_serial(b));
    cr_expect_eq(tf_cs_bundle_not_after(b) - tf_cs_bundle_not_before(b), 365 * 86400);
    cr_expect(llabs((long long)(tf_cs_bundle_not_before(b) - pki_now)) < 600);
    cr_expect(days == 364 || days == 365, "days left %ld", days);
    cr_expect_lt(tf_cs_bundle_mem_size(b), 8192, "bundle takes %zu bytes",
                 tf_cs_bundle_mem_size(b));
    tf_cs_bundle_unref(b);

    b = load_rc("bundles/rsa-pkcs1.pem", 0);
    cr_expect_str_eq(tf_cs_bundle_key_desc(b), "RSA 2048");
    tf_cs_bundle_unref(b);
}

Test(bundle, serial_matches_openssl)
{
    char cmd[4400], out[256] = "";
    FILE *p;
    tf_cs_bundle_t *b = load_rc("bundles/ec-pkcs8.pem", 0);

    snprintf(cmd, sizeof cmd, "openssl x509 -noout -serial -in '%s'", path_of("ec.crt"));
    p = popen(cmd, "r");
    cr_assert(p && fgets(out, sizeof out, p));
    pclose(p);
    out[strcspn(out, "\n")] = '\0';
    cr_expect_str_eq(out + strlen("serial="), tf_cs_bundle_serial(b));
    tf_cs_bundle_unref(b);
}

/* ---- names ------------------------------------------------------------------------- */

static void expect_names(const char *file, const char *const *want, size_t n)
{
    tf_cs_bundle_t *b = NULL;
    int rc = tf_cs_bundle_load_file(path_of(file), &opts, &b);

    cr_assert_not_null(b, "%s: rc %d", file, rc);
    cr_assert_eq(tf_cs_bundle_name_count(b), n, "%s: %zu names", file, tf_cs_bundle_name_count(b));
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(tf_cs_bundle_name_at(b, i), want[i], "%s: name %zu", file, i);
    tf_cs_bundle_unref(b);
}

Test(bundle, names_san_lowercased)
{
    static const char *const ec[] = {"www.example.com", "example.com"};
    static const char *const wild[] = {"*.example.com", "example.com"};

    expect_names("bundles/ec-pkcs8.pem", ec, 2);
    expect_names("bundles/wild.pem", wild, 2);
}

/* The public face of the store's matcher: what the 421 check of proxy/ asks. */
Test(bundle, covers_by_the_selection_rules)
{
    tf_cs_bundle_t *wild = load_rc("bundles/wild.pem", 0), *bad = load_rc("bundles/badwild.pem", 0);

    cr_expect(tf_cs_bundle_covers(wild, "a.example.com"));
    cr_expect(tf_cs_bundle_covers(wild, "A-B.Example.COM."), "case and one trailing dot");
    cr_expect(tf_cs_bundle_covers(wild, "example.com"), "listed as a name of its own");
    cr_expect_not(tf_cs_bundle_covers(wild, "a_b.example.com"), "an underscore is no host name");
    cr_expect_not(tf_cs_bundle_covers(wild, "a.b.example.com"), "two labels");
    cr_expect_not(tf_cs_bundle_covers(wild, ".example.com"), "an empty label");
    cr_expect_not(tf_cs_bundle_covers(wild, "a.example.com.."));
    cr_expect_not(tf_cs_bundle_covers(wild, "a.example.org"));
    cr_expect(tf_cs_bundle_covers(bad, "good.example.com"));
    cr_expect_not(tf_cs_bundle_covers(bad, "foo.example.com"),
                  "a partial wildcard matches nothing");
    cr_expect_not(tf_cs_bundle_covers(bad, "a.b.example.com"), "neither does *.*");
    tf_cs_bundle_unref(wild);
    tf_cs_bundle_unref(bad);
}

Test(bundle, names_cn_only_when_no_san)
{
    static const char *const cn[] = {"cnonly.example.com"};
    tf_cs_bundle_t *b = load_rc("bundles/cnonly.pem", 0);

    expect_names("bundles/cnonly.pem", cn, 1);
    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_WARN);
    expect_diag(b, TF_CS_D_NO_SAN, "subjectAltName");
    tf_cs_bundle_unref(b);
}

Test(bundle, invalid_wildcards_reported_not_matched)
{
    static const char *const bad[] = {"f*.example.com", "*.*.example.com", "a.*.example.com"};
    tf_cs_bundle_t *b = load_rc("bundles/badwild.pem", 0);

    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_WARN);
    cr_assert_eq(tf_cs_bundle_name_count(b), 1);
    cr_expect_str_eq(tf_cs_bundle_name_at(b, 0), "good.example.com");
    cr_assert_eq(tf_cs_bundle_bad_name_count(b), 3);
    for (size_t i = 0; i < 3; i++)
        cr_expect_str_eq(tf_cs_bundle_bad_name_at(b, i), bad[i]);
    expect_diag(b, TF_CS_D_INVALID_NAME, "f*.example.com");
    expect_diag(b, TF_CS_D_INVALID_NAME, "never matched");
    tf_cs_bundle_unref(b);
}

Test(bundle, underscore_names_are_reported_not_served)
{
    tf_cs_bundle_t *b = load_rc("bundles/under.pem", 0);

    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_WARN);
    cr_assert_eq(tf_cs_bundle_name_count(b), 1);
    cr_expect_str_eq(tf_cs_bundle_name_at(b, 0), "under.example.com");
    cr_assert_eq(tf_cs_bundle_bad_name_count(b), 1);
    cr_expect_str_eq(tf_cs_bundle_bad_name_at(b, 0), "my_host.example.com");
    expect_diag(b, TF_CS_D_INVALID_NAME, "'my_host.example.com'");
    tf_cs_bundle_unref(b);
}

Test(bundle, a_san_without_dns_names_does_not_fall_back_to_the_cn)
{
    tf_cs_bundle_t *b = load_rc("bundles/ipsan.pem", 0);

    cr_expect_eq(tf_cs_bundle_name_count(b), 0);
    cr_expect_null(tf_cs_bundle_find_diag(b, TF_CS_D_NO_SAN));
    expect_diag(b, TF_CS_D_INVALID_NAME, "holds no DNS name");
    tf_cs_bundle_unref(b);
}

Test(bundle, a_truncated_key_before_a_good_one_is_malformed_not_two_keys)
{
    tf_cs_bundle_t *b = load_rc("bundles/trunc-key.pem", TF_ECERT);

    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_ERROR);
    expect_diag(b, TF_CS_D_MALFORMED, "no matching END line");
    cr_expect_null(tf_cs_bundle_find_diag(b, TF_CS_D_MULTIPLE_KEYS));
    tf_cs_bundle_unref(b);
}

/* The loader classifies names exactly as the index matches them (names.c):
 * whatever it lists as served can be selected by some SNI. */
Test(bundle, name_syntax)
{
    const char *why = NULL;
    cr_expect_eq(tf_cs__name_kind("a.example.com", 13, NULL), 1);
    cr_expect_eq(tf_cs__name_kind("*.example.com", 13, NULL), 2);
    cr_expect_eq(tf_cs__name_kind("f*.example.com", 14, &why), 0);
    cr_expect_not_null(strstr(why, "partial-label wildcard"), "%s", why);
    cr_expect_eq(tf_cs__name_kind("*.*.example.com", 15, NULL), 0);
    cr_expect_eq(tf_cs__name_kind("a.*.example.com", 15, NULL), 0);
    cr_expect_eq(tf_cs__name_kind("-a.example.com", 14, NULL), 0);
    cr_expect_eq(tf_cs__name_kind("a..example.com", 14, NULL), 0);
    /* SNI never carries '_', so such a name could never be selected. */
    cr_expect_eq(tf_cs__name_kind("my_host.example.com", 19, NULL), 0);
    /* One trailing dot is normalized away, as for SNI. */
    cr_expect_eq(tf_cs__name_kind("example.com.", 12, NULL), 1);
    cr_expect_eq(tf_cs__name_kind("example.com..", 13, NULL), 0);
    cr_expect_eq(tf_cs__name_kind("", 0, NULL), 0);
}

Test(bundle, public_suffixes)
{
    cr_expect(tf_cs__is_public_suffix(NULL, "com"));
    cr_expect_not(tf_cs__is_public_suffix(NULL, "example.com"));
    if (tf_cs_trust_suffix_count(trust) == 0)
        cr_skip_test("no public suffix list at %s", TF_CS_SYSTEM_PSL_FILE);
    cr_expect(tf_cs__is_public_suffix(trust, "co.uk"));
    cr_expect(tf_cs__is_public_suffix(trust, "com.au"));
    cr_expect_not(tf_cs__is_public_suffix(trust, "example.co.uk"));
    cr_expect_not(tf_cs__is_public_suffix(trust, "github.io"), "private section ignored");
}

/* ---- warnings ------------------------------------------------------------------------ */

static tf_cs_bundle_t *load_warn(const char *file)
{
    tf_cs_bundle_t *b = load_rc(file, 0);

    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_WARN, "%s: status %s", file,
                 tf_cs_status_name(tf_cs_bundle_status(b)));
    return b;
}

Test(bundle, chain_out_of_order_served_right)
{
    tf_cs_bundle_t *b = load_warn("bundles/reversed.pem");

    expect_chain(b, 2, "www.example.com");
    expect_diag(b, TF_CS_D_CHAIN_ORDER, "out of order");
    expect_diag(b, TF_CS_D_CHAIN_ORDER, "cat leaf.crt intermediate.crt");
    tf_cs_bundle_unref(b);
}

Test(bundle, root_included_not_served)
{
    tf_cs_bundle_t *b = load_warn("bundles/with-root.pem");

    expect_chain(b, 2, "www.example.com");
    expect_diag(b, TF_CS_D_ROOT_INCLUDED, "not sent");
    expect_no_diag(b, TF_CS_D_CHAIN_ORDER);
    tf_cs_bundle_unref(b);

    b = load_warn("bundles/root-first.pem");
    expect_chain(b, 2, "www.example.com");
    expect_diag(b, TF_CS_D_ROOT_INCLUDED, "Test Root CA");
    expect_diag(b, TF_CS_D_CHAIN_ORDER, "out of order");
    tf_cs_bundle_unref(b);
}

Test(bundle, missing_intermediate)
{
    tf_cs_bundle_t *b = load_warn("bundles/no-int.pem");
    tf_cs_trust_t *int_as_root = NULL;

    expect_chain(b, 1, "www.example.com");
    expect_diag(b, TF_CS_D_MISSING_INTERMEDIATE, "such as Android, will fail");
    expect_diag(b, TF_CS_D_MISSING_INTERMEDIATE, "append the intermediate");
    tf_cs_bundle_unref(b);

    /* An issuer in the trust store is no missing intermediate. */
    cr_assert_eq(tf_cs_trust_load(path_of("int.crt"), NULL, &int_as_root), 0);
    cr_expect_eq(tf_cs_trust_root_count(int_as_root), 1);
    opts.trust = int_as_root;
    b = load_rc("bundles/no-int.pem", 0);
    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_OK);
    expect_no_diag(b, TF_CS_D_MISSING_INTERMEDIATE);
    tf_cs_bundle_unref(b);
    tf_cs_trust_free(int_as_root);
    opts.trust = trust;
}

/* Two intermediates: the whole chain is served in order. Leaving out the
 * upper one is not flagged: only the leaf's issuer is checked (SPEC §4.2),
 * because above it a private CA's chain looks the same (its root is not in
 * the system store). */
Test(bundle, two_intermediates)
{
    tf_cs_bundle_t *b = load_rc("bundles/deep-full.pem", 0);
    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_OK, "%s",
                 tf_cs_bundle_diag_count(b) ? tf_cs_bundle_diag_at(b, 0)->message : "");
    expect_chain(b, 3, "deep.example.com");
    tf_cs_bundle_unref(b);

    b = load_rc("bundles/deep-missing.pem", 0);
    expect_chain(b, 2, "deep.example.com");
    expect_no_diag(b, TF_CS_D_MISSING_INTERMEDIATE);
    tf_cs_bundle_unref(b);
}

Test(bundle, unrelated_certificate_not_served)
{
    tf_cs_bundle_t *b = load_warn("bundles/unrelated.pem");

    expect_chain(b, 2, "www.example.com");
    expect_diag(b, TF_CS_D_UNRELATED_CERT, "Unrelated CA");
    expect_diag(b, TF_CS_D_UNRELATED_CERT, "not sent");
    tf_cs_bundle_unref(b);
}

Test(bundle, validity_dates)
{
    tf_cs_bundle_t *b = load_warn("bundles/expired.pem");

    expect_diag(b, TF_CS_D_EXPIRED, "expired 2 days ago");
    expect_diag(b, TF_CS_D_EXPIRED, "renew");
    cr_expect_lt(tf_cs_bundle_days_left(b, pki_now), 0);
    tf_cs_bundle_unref(b);

    b = load_warn("bundles/notyet.pem");
    expect_diag(b, TF_CS_D_NOT_YET_VALID, "in 5 days");
    tf_cs_bundle_unref(b);

    b = load_warn("bundles/expiring.pem");
    expect_diag(b, TF_CS_D_EXPIRING, "expires in 9 days");
    tf_cs_bundle_unref(b);

    b = load_rc("bundles/ec-pkcs8.pem", 0);
    expect_no_diag(b, TF_CS_D_EXPIRING);
    tf_cs_bundle_unref(b);
}

Test(bundle, weak_rsa_key)
{
    tf_cs_bundle_t *b = load_warn("bundles/rsa1024.pem");

    cr_expect_eq(tf_cs_bundle_key_bits(b), 1024);
    expect_diag(b, TF_CS_D_WEAK_RSA, "1024 bits");
    expect_diag(b, TF_CS_D_WEAK_RSA, "rsa_keygen_bits:2048");
    tf_cs_bundle_unref(b);
}

Test(bundle, sha1_signature)
{
    tf_cs_bundle_t *b = load_warn("bundles/sha1.pem");

    cr_expect_str_eq(tf_cs_bundle_sig_alg(b), "ecdsa-with-SHA1");
    expect_diag(b, TF_CS_D_WEAK_SIGNATURE, "SHA-1");
    tf_cs_bundle_unref(b);
}

Test(bundle, eku_without_server_auth)
{
    tf_cs_bundle_t *b = load_warn("bundles/client.pem");

    expect_diag(b, TF_CS_D_EKU, "serverAuth");
    tf_cs_bundle_unref(b);
}

Test(bundle, self_signed_is_a_note)
{
    tf_cs_bundle_t *b = load_rc("bundles/selfsigned.pem", 0);

    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_OK);
    cr_expect_eq(tf_cs_bundle_chain_len(b), 1);
    expect_diag(b, TF_CS_D_SELF_SIGNED, "self-signed");
    expect_no_diag(b, TF_CS_D_MISSING_INTERMEDIATE);
    tf_cs_bundle_unref(b);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    size_t len;
    char *data = read_text(from, &len);
    FILE *f = fopen(to, "wb");

    cr_assert_not_null(f, "%s", to);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    cr_assert_eq(chmod(to, mode), 0);
    free(data);
}

Test(bundle, key_file_mode)
{
    char dir[] = "/tmp/tf-cs-mode.XXXXXX", pem[64], key[64];
    tf_cs_bundle_t *b = NULL;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(pem, sizeof pem, "%s/site.pem", dir);
    snprintf(key, sizeof key, "%s/site.key", dir);

    copy_file(path_of("bundles/ec-pkcs8.pem"), pem, 0644);
    cr_assert_eq(tf_cs_bundle_load_file(pem, &opts, &b), 0);
    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_WARN);
    expect_diag(b, TF_CS_D_KEY_FILE_MODE, "chmod 600");
    expect_diag(b, TF_CS_D_KEY_FILE_MODE, "0644");
    tf_cs_bundle_unref(b);

    /* With the key beside it, the key file is the one that counts. */
    copy_file(path_of("bundles/sib.pem"), pem, 0644);
    copy_file(path_of("bundles/sib.key"), key, 0640);
    cr_assert_eq(tf_cs_bundle_load_file(pem, &opts, &b), 0);
    expect_diag(b, TF_CS_D_KEY_FILE_MODE, "site.key");
    tf_cs_bundle_unref(b);

    cr_assert_eq(chmod(key, 0600), 0);
    cr_assert_eq(tf_cs_bundle_load_file(pem, &opts, &b), 0);
    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_OK);
    tf_cs_bundle_unref(b);

    unlink(pem);
    unlink(key);
    rmdir(dir);
}

/* ---- errors ---------------------------------------------------------------------- */

static const struct {
    const char *file;
    int rc;
    tf_cs_diag_code_t code;
    const char *substr;
} errors[] = {
    {"bundles/no-cert.pem", TF_ENOCERT, TF_CS_D_NO_CERT, "no certificate"},
    {"bundles/no-key.pem", TF_ENOKEY, TF_CS_D_NO_KEY, "no-key.key"},
    {"bundles/two-keys.pem", TF_EKEYMULTIPLE, TF_CS_D_MULTIPLE_KEYS, "2 private keys"},
    {"bundles/mismatch.pem", TF_EKEYMISMATCH, TF_CS_D_KEY_MISMATCH,
     "openssl x509 -noout -pubkey -in leaf.pem | sha256sum"},
    {"bundles/enc-pkcs8.pem", TF_EKEYENCRYPTED, TF_CS_D_KEY_ENCRYPTED,
     "openssl pkey -in key.pem -out key.dec.pem"},
    {"bundles/enc-legacy.pem", TF_EKEYENCRYPTED, TF_CS_D_KEY_ENCRYPTED,
     "openssl rsa -in key.pem -out key.dec.pem"},
    {"bundles/garbage.pem", TF_ECERT, TF_CS_D_MALFORMED, "not a PEM bundle"},
    {"bundles/bad-base64.pem", TF_ECERT, TF_CS_D_MALFORMED, "invalid base64"},
    {"bundles/truncated.pem", TF_ECERT, TF_CS_D_MALFORMED, "no matching END"},
    {"bundles/bad-der.pem", TF_ECERT, TF_CS_D_MALFORMED, "malformed certificate"},
    {"bundles/ed25519.pem", TF_EUNSUPPORTED, TF_CS_D_UNSUPPORTED_KEY, "Ed25519"},
    {"bundles/pubtld.pem", TF_EPUBLICWILDCARD, TF_CS_D_PUBLIC_WILDCARD, "*.com"},
    {"bundles/no-such-file.pem", -ENOENT, TF_CS_D_UNREADABLE, "cannot read"},
};

Test(bundle, errors_rejected_with_reason)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        tf_cs_bundle_t *b = load_rc(errors[i].file, errors[i].rc);

        cr_expect_eq(tf_cs_bundle_status(b), TF_CS_ERROR, "%s", errors[i].file);
        cr_expect_eq(tf_cs_bundle_error(b), errors[i].rc, "%s", errors[i].file);
        cr_expect_eq(tf_cs_bundle_diag_at(b, 0)->severity, TF_CS_FATAL, "errors come first");
        expect_diag(b, errors[i].code, errors[i].substr);
        /* A rejected bundle cannot be served by mistake. */
        cr_expect_eq(tf_cs_bundle_chain_len(b), 0, "%s", errors[i].file);
        cr_expect_eq(tf_cs_bundle_key_der(b).len, 0, "%s", errors[i].file);
        tf_cs_bundle_unref(b);
    }
}

Test(bundle, wildcard_on_public_suffix)
{
    tf_cs_bundle_t *b;
    const tf_cs_trust_t *with_list = opts.trust;

    /* Without the list only a single label is known to be public. */
    opts.trust = NULL;
    b = load_rc("bundles/pubtld.pem", TF_EPUBLICWILDCARD);
    expect_diag(b, TF_CS_D_PUBLIC_WILDCARD, "*.com");
    tf_cs_bundle_unref(b);
    opts.trust = with_list;

    if (tf_cs_trust_suffix_count(trust) == 0)
        cr_skip_test("no public suffix list at %s", TF_CS_SYSTEM_PSL_FILE);
    b = load_rc("bundles/pubsfx.pem", TF_EPUBLICWILDCARD);
    expect_diag(b, TF_CS_D_PUBLIC_WILDCARD, "*.co.uk");
    tf_cs_bundle_unref(b);
}

Test(bundle, every_message_names_the_file)
{
    const char *files[] = {"bundles/reversed.pem", "bundles/badwild.pem", "bundles/mismatch.pem",
                           "bundles/expired.pem",  "bundles/garbage.pem", "bundles/sha1.pem"};

    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        tf_cs_bundle_t *b = NULL;
        const char *path = path_of(files[i]);
        int rc = tf_cs_bundle_load_file(path, &opts, &b);

        cr_assert_not_null(b, "%s: rc %d", path, rc);
        cr_expect_gt(tf_cs_bundle_diag_count(b), 0, "%s", files[i]);
        for (size_t j = 0; j < tf_cs_bundle_diag_count(b); j++) {
            const char *m = tf_cs_bundle_diag_at(b, j)->message;

            cr_expect(strncmp(m, path, strlen(path)) == 0 && m[strlen(path)] == ':', "%s", m);
        }
        tf_cs_bundle_unref(b);
    }
}

/* ---- memory API, sharing, threads ------------------------------------------------------ */

Test(bundle, load_mem_with_separate_key)
{
    size_t clen, klen, blen;
    char *cert = read_text(path_of("bundles/sib.pem"), &clen);
    char *key = read_text(path_of("bundles/sib.key"), &klen);
    char *full = read_text(path_of("bundles/ec-pkcs8.pem"), &blen);
    tf_cs_bundle_t *b = NULL;

    cr_expect_eq(tf_cs_bundle_load_mem("upload", cert, clen, key, klen, &opts, &b), 0);
    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_OK);
    cr_expect_str_eq(tf_cs_bundle_name(b), "upload");
    tf_cs_bundle_unref(b);

    /* The separate key is only used when the bundle has none. */
    cr_expect_eq(tf_cs_bundle_load_mem("upload", full, blen, key, klen, &opts, &b), 0);
    tf_cs_bundle_unref(b);

    cr_expect_eq(tf_cs_bundle_load_mem("upload", cert, clen, NULL, 0, &opts, &b), TF_ENOKEY);
    tf_cs_bundle_unref(b);
    cr_expect_eq(tf_cs_bundle_load_mem("empty", "", 0, NULL, 0, &opts, &b), TF_ECERT);
    tf_cs_bundle_unref(b);
    cr_expect_eq(tf_cs_bundle_load_mem("x", "", 0, NULL, 0, &opts, NULL), TF_EINVAL);
    free(cert);
    free(key);
    free(full);
}

Test(bundle, intermediates_shared_through_intern_table)
{
    tf_cs_intern_t *in = NULL;
    tf_cs_bundle_t *a, *b;

    cr_assert_eq(tf_cs_intern_new(&in), 0);
    opts.intern = in;
    a = load_rc("bundles/ec-pkcs8.pem", 0);
    b = load_rc("bundles/rsa-pkcs1.pem", 0);
    cr_expect_eq(tf_cs_bundle_chain_at(a, 1).der, tf_cs_bundle_chain_at(b, 1).der,
                 "one copy of the intermediate");
    cr_expect_eq(tf_cs_intern_count(in), 1);
    cr_expect_eq(tf_cs_intern_sweep(in), 0, "in use");
    tf_cs_bundle_ref(a);
    tf_cs_bundle_unref(a);
    tf_cs_bundle_unref(a);
    cr_expect_eq(tf_cs_intern_sweep(in), 0, "still used by b");
    /* The table may go before the bundles that use its blobs. */
    tf_cs_intern_free(in);
    opts.intern = NULL;
    cr_expect_eq(tf_cs_bundle_chain_at(b, 1).len, tf_cs_bundle_chain_at(b, 1).len);
    tf_cs_bundle_unref(b);

    cr_assert_eq(tf_cs_intern_new(&in), 0);
    opts.intern = in;
    a = load_rc("bundles/ec-pkcs8.pem", 0);
    tf_cs_bundle_unref(a);
    cr_expect_eq(tf_cs_intern_sweep(in), 1);
    cr_expect_eq(tf_cs_intern_count(in), 0);
    tf_cs_intern_free(in);
}

static void *load_many(void *arg)
{
    const char *const *files = arg;
    long bad = 0;

    for (int round = 0; round < 10; round++) {
        for (size_t i = 0; files[i]; i++) {
            tf_cs_bundle_t *b = NULL;

            bad += tf_cs_bundle_load_file(files[i], &opts, &b) != 0;
            bad += b == NULL || tf_cs_bundle_chain_len(b) != 2;
            tf_cs_bundle_unref(b);
        }
    }
    return (void *)bad;
}

Test(bundle, concurrent_loads)
{
    static char paths[4][4300];
    const char *sets[4][3];
    const char *rel[4] = {"bundles/ec-pkcs8.pem", "bundles/rsa-pkcs1.pem", "bundles/p384.pem",
                          "bundles/p12.pem"};
    pthread_t t[4];
    tf_cs_intern_t *in = NULL;

    cr_assert_eq(tf_cs_intern_new(&in), 0);
    opts.intern = in;
    for (int i = 0; i < 4; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/%s", pki, rel[i]);
        sets[i][0] = paths[i];
        sets[i][1] = paths[(i + 1) % 4];
        sets[i][2] = NULL;
    }
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, load_many, (void *)sets[i]), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;

        pthread_join(t[i], &bad);
        cr_expect_eq((long)bad, 0, "thread %d", i);
    }
    cr_expect_eq(tf_cs_intern_sweep(in), 1);
    tf_cs_intern_free(in);
}

Test(bundle, system_trust_store)
{
    tf_cs_trust_t *sys = NULL;

    if (access(TF_CS_SYSTEM_CA_FILE, R_OK) != 0)
        cr_skip_test("no %s", TF_CS_SYSTEM_CA_FILE);
    cr_assert_eq(tf_cs_trust_load_system(&sys), 0);
    cr_expect_gt(tf_cs_trust_root_count(sys), 50);
    tf_cs_trust_free(sys);
    cr_expect_eq(tf_cs_trust_load("/nonexistent/ca.pem", NULL, &sys), -ENOENT);
    cr_expect_null(sys);
}

/* ---- PEM leniency ------------------------------------------------------------------------ */

static char *replace_all(const char *s, char from, char to)
{
    char *r = strdup(s);

    for (char *p = r; *p; p++)
        if (*p == from)
            *p = to;
    return r;
}

Test(bundle, pem_pasted_on_one_line)
{
    size_t len;
    char *pem = read_text(path_of("bundles/ec-pkcs8.pem"), &len);
    char *one = replace_all(pem, '\n', ' ');
    tf_cs_bundle_t *b = NULL;

    cr_expect_eq(tf_cs_bundle_load_mem("one-line", one, len, NULL, 0, &opts, &b), 0);
    expect_chain(b, 2, "www.example.com");
    tf_cs_bundle_unref(b);
    free(one);
    free(pem);
}

Test(bundle, truncated_block_does_not_hide_the_next)
{
    tf_cs_bundle_t *b = load_rc("bundles/truncated.pem", TF_ECERT);

    expect_diag(b, TF_CS_D_MALFORMED, "line 1:");
    expect_no_diag(b, TF_CS_D_NO_KEY);
    cr_expect_eq(tf_cs_bundle_key_type(b), TF_CS_KEY_EC, "the key after it was read");
    tf_cs_bundle_unref(b);
}

Test(bundle, other_blocks_ignored_with_a_note)
{
    static const char csr[] = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                              "-----END CERTIFICATE REQUEST-----\n";
    size_t len;
    char *pem = read_text(path_of("bundles/ec-pkcs8.pem"), &len);
    char *both = malloc(sizeof csr + len);
    tf_cs_bundle_t *b = NULL;

    memcpy(both, csr, sizeof csr - 1);
    memcpy(both + sizeof csr - 1, pem, len);
    cr_expect_eq(tf_cs_bundle_load_mem("csr", both, sizeof csr - 1 + len, NULL, 0, &opts, &b), 0);
    cr_expect_eq(tf_cs_bundle_status(b), TF_CS_OK, "a note does not make a warning");
    expect_diag(b, TF_CS_D_IGNORED_BLOCK, "CERTIFICATE REQUEST");
    tf_cs_bundle_unref(b);
    free(both);
    free(pem);
}

Test(bundle, file_too_large)
{
    char path[] = "/tmp/tf-cs-big.XXXXXX";
    int fd = mkstemp(path);
    tf_cs_bundle_t *b = NULL;

    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 2 << 20), 0);
    close(fd);
    cr_expect_eq(tf_cs_bundle_load_file(path, &opts, &b), TF_ETOOBIG);
    expect_diag(b, TF_CS_D_TOO_BIG, "larger than");
    tf_cs_bundle_unref(b);
    unlink(path);
}
