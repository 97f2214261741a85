/* The ACME crypto core (acme/b64.c, key.c, jws.c, csr.c, alpncert.c,
 * check.c): base64url vectors, the RFC 7638 thumbprint example, JWS
 * signatures checked by wolfCrypt and by the openssl command, the EAB MAC
 * recomputed, the CSR and the tls-alpn-01 certificate read back by openssl,
 * and the account key kept once in storage with its modes. */
#include "acme/acme_internal.h"
#include "certstore/certstore.h"
#include "common/err.h"

#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

/* A fresh directory under the build tree, removed by rm_dir(). */
static char *make_dir(void)
{
    const char *build = getenv("TF_BUILD_DIR");
    char *d = malloc(4096);
    cr_assert_not_null(d);
    if (build != NULL)
        snprintf(d, 4096, "%s/tests/acme-XXXXXX", build);
    else
        snprintf(d, 4096, "/tmp/tf-acme-XXXXXX");
    cr_assert_not_null(mkdtemp(d), "mkdtemp %s: %s", d, strerror(errno));
    return d;
}

static void rm_dir(char *d)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    cr_expect_eq(system(cmd), 0);
    free(d);
}

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    cr_assert_not_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* Runs CMD with sh and returns its standard output (malloc'd); *STATUS gets
 * the exit status. */
static char *run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    size_t cap = 65536, n = 0;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    for (size_t r; (r = fread(out + n, 1, cap - 1 - n, p)) > 0;) {
        n += r;
        if (n == cap - 1) {
            cap *= 2;
            out = realloc(out, cap);
            cr_assert_not_null(out);
        }
    }
    out[n] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return out;
}

/* Decodes base64url S into a new buffer. */
static unsigned char *b64d(const char *s, size_t *len)
{
    unsigned char *buf = malloc(strlen(s) + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(tf_acme_b64url_decode(s, strlen(s), buf, strlen(s) + 1, len), 0, "'%s'", s);
    return buf;
}

static char *hex(const unsigned char *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++)
        sprintf(s + 2 * i, "%02x", p[i]);
    s[2 * n] = '\0';
    return s;
}

static tf_acme_key_t *new_key(tf_acme_key_type_t type)
{
    tf_acme_key_t *k = NULL;
    cr_assert_eq(tf_acme_key_generate(type, &k), 0);
    cr_assert_not_null(k);
    return k;
}

/* Writes KEY as PEM into DIR/NAME; returns the path. */
static char *write_key(tf_acme_key_t *key, const char *dir, const char *name)
{
    char *pem = NULL;
    size_t len = 0;
    cr_assert_eq(tf_acme_key_to_pem(key, &pem, &len), 0);
    char *path = path_in(dir, name);
    write_file(path, pem, len);
    tf_acme_free_secret(pem, len);
    return path;
}

/* ---- base64url --------------------------------------------------------- */

static const struct {
    const char *bytes;
    size_t len;
    const char *text;
} vectors[] = {
    /* RFC 4648 §10, without the padding. */
    {"", 0, ""},
    {"f", 1, "Zg"},
    {"fo", 2, "Zm8"},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg"},
    {"fooba", 5, "Zm9vYmE"},
    {"foobar", 6, "Zm9vYmFy"},
    /* The two characters that differ from base64: '+' and '/' become '-' and '_'. */
    {"\xfb\xff\xbf", 3, "-_-_"},
    {"\x00\x00", 2, "AAA"},
    /* RFC 7515 §3.3's JOSE header, CR LF and all. */
    {"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}", 30, "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"},
};

Test(b64url, vectors_both_ways)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char out[128];
        unsigned char back[128];
        size_t n = 99;
        cr_expect_eq(tf_acme_b64url_len(vectors[i].len), strlen(vectors[i].text));
        cr_assert_eq(tf_acme_b64url_encode(vectors[i].bytes, vectors[i].len, out, sizeof out), 0);
        cr_expect_str_eq(out, vectors[i].text);
        cr_assert_eq(
            tf_acme_b64url_decode(vectors[i].text, strlen(vectors[i].text), back, sizeof back, &n),
            0, "%s", vectors[i].text);
        cr_expect_eq(n, vectors[i].len);
        cr_expect_eq(memcmp(back, vectors[i].bytes, n), 0, "%s", vectors[i].text);
    }
}

Test(b64url, every_length_round_trips)
{
    unsigned char in[70], back[70];
    char text[100];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t m = 0;
        cr_assert_eq(tf_acme_b64url_encode(in, n, text, sizeof text), 0);
        cr_assert_eq(
            strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            strlen(text));
        cr_assert_eq(tf_acme_b64url_decode(text, strlen(text), back, sizeof back, &m), 0);
        cr_assert_eq(m, n);
        cr_assert_eq(memcmp(in, back, n), 0);
    }
}

Test(b64url, strict_decoder)
{
    static const char *const bad[] = {
        "Zg==",     /* padding */
        "Zm9v=",    /* padding after a whole group */
        "Z",        /* 1 mod 4 characters */
        "Zm9vY",    /* the same after a group */
        "Zh",       /* unused bits set: "Zg" is the one text for "f" */
        "Zm9",      /* unused bits set: "Zm8" is the one for "fo" */
        "Zm9v+g",   /* standard base64's '+' */
        "Zm9v/g",   /* and '/' */
        "Zm 9v",    /* white space */
        "Zm9v\n",   /* a newline */
        "Zm9v\x80", /* a byte outside ASCII */
    };
    unsigned char out[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = 0;
        cr_expect_eq(tf_acme_b64url_decode(bad[i], strlen(bad[i]), out, sizeof out, &n), TF_EINVAL,
                     "'%s' should be refused", bad[i]);
    }
    size_t n = 0;
    cr_expect_eq(tf_acme_b64url_decode("Zm9vYmFy", 8, out, 5, &n), TF_ETOOBIG);
    cr_expect_eq(tf_acme_b64url_decode("Zm9vYmFy", 8, out, 6, &n), 0);
    char text[16];
    cr_expect_eq(tf_acme_b64url_encode("foobar", 6, text, 8), TF_ETOOBIG);
    cr_expect_str_empty(text);
    cr_expect_eq(tf_acme_b64url_encode("foobar", 6, text, 9), 0);
    cr_expect_str_eq(text, "Zm9vYmFy");
}

/* ---- JWK thumbprint (RFC 7638) ----------------------------------------- */

/* RFC 7638 §3.1: the RSA key of RFC 7517 appendix A.1 and its thumbprint. */
static const char rfc7638_jwk[] =
    "{\"kty\": \"RSA\","
    " \"n\": \"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
    "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65Y"
    "GjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bF"
    "TWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\","
    " \"e\": \"AQAB\", \"alg\": \"RS256\", \"kid\": \"2011-04-29\"}";

Test(thumbprint, rfc7638_example)
{
    json_t *jwk = json_loads(rfc7638_jwk, 0, NULL);
    cr_assert_not_null(jwk);
    char tp[TF_ACME_THUMBPRINT_LEN + 1];
    cr_assert_eq(tf_acme_jwk_thumbprint(jwk, tp), 0);
    cr_expect_str_eq(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    /* Members in another order, the optional ones gone: the same. */
    json_object_del(jwk, "alg");
    json_object_del(jwk, "kid");
    json_t *e = json_incref(json_object_get(jwk, "e"));
    json_object_del(jwk, "e");
    json_object_set_new(jwk, "e", e);
    cr_assert_eq(tf_acme_jwk_thumbprint(jwk, tp), 0);
    cr_expect_str_eq(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    /* One changed character: another thumbprint. */
    json_object_set_new(jwk, "e", json_string("AQAC"));
    cr_assert_eq(tf_acme_jwk_thumbprint(jwk, tp), 0);
    cr_expect_str_neq(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    json_decref(jwk);
}

Test(thumbprint, strict_about_the_jwk)
{
    static const char *const bad[] = {
        "[]",
        "\"RSA\"",
        "{}",
        "{\"kty\": \"oct\", \"k\": \"AQAB\"}",
        "{\"kty\": 1, \"e\": \"AQAB\", \"n\": \"AQAB\"}",
        "{\"kty\": \"RSA\", \"e\": \"AQAB\"}",
        "{\"kty\": \"RSA\", \"e\": \"AQAB\", \"n\": 5}",
        "{\"kty\": \"RSA\", \"e\": \"\", \"n\": \"AQAB\"}",
        "{\"kty\": \"RSA\", \"e\": \"AQ+B\", \"n\": \"AQAB\"}",
        "{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"AQAB\"}",
        "{\"kty\": \"EC\", \"crv\": \"P\\\"256\", \"x\": \"AQAB\", \"y\": \"AQAB\"}",
        "{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"AQAB\", \"y\": null}",
        "{\"kty\": \"ec\", \"crv\": \"P-256\", \"x\": \"AQAB\", \"y\": \"AQAB\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        cr_assert_not_null(j, "%s", bad[i]);
        char tp[TF_ACME_THUMBPRINT_LEN + 1] = "x";
        cr_expect_eq(tf_acme_jwk_thumbprint(j, tp), TF_EINVAL, "%s", bad[i]);
        cr_expect_str_empty(tp);
        json_decref(j);
    }
}

/* An EC key's thumbprint against one computed without this code: openssl
 * gives the public point, python the JSON, SHA-256 and base64url. */
Test(thumbprint, ec_key_matches_openssl_and_python)
{
    char *dir = make_dir();
    tf_acme_key_t *k = new_key(TF_ACME_KEY_EC);
    char *pem = write_key(k, dir, "k.pem");
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "openssl pkey -in '%s' -pubout -outform DER | tail -c 64 | python3 -c '"
             "import sys,json,hashlib,base64\n"
             "b=sys.stdin.buffer.read(); assert len(b)==64\n"
             "e=lambda v: base64.urlsafe_b64encode(v).rstrip(b\"=\").decode()\n"
             "j=json.dumps({\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":e(b[:32]),\"y\":e(b[32:])},"
             "sort_keys=True,separators=(\",\",\":\"))\n"
             "print(e(hashlib.sha256(j.encode()).digest()))'",
             pem);
    int st;
    char *out = run(cmd, &st);
    cr_assert_eq(st, 0, "%s", cmd);
    out[strcspn(out, "\n")] = '\0';
    char tp[TF_ACME_THUMBPRINT_LEN + 1];
    cr_assert_eq(tf_acme_key_thumbprint(k, tp), 0);
    cr_expect_eq(strlen(tp), TF_ACME_THUMBPRINT_LEN);
    cr_expect_str_eq(tp, out);
    free(out);
    free(pem);
    tf_acme_key_free(k);
    rm_dir(dir);
}

Test(thumbprint, key_authorization)
{
    tf_acme_key_t *k = new_key(TF_ACME_KEY_EC);
    char tp[TF_ACME_THUMBPRINT_LEN + 1], want[512], *ka = NULL;
    cr_assert_eq(tf_acme_key_thumbprint(k, tp), 0);
    cr_assert_eq(tf_acme_key_authorization(k, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", &ka),
                 0);
    snprintf(want, sizeof want, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.%s", tp);
    cr_expect_str_eq(ka, want);
    free(ka);
    char longtok[258];
    memset(longtok, 'a', 257);
    longtok[257] = '\0';
    static const char *const bad[] = {"", "a/b", "a.b", "../x", "a b", "tok=", "t%2e"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(tf_acme_key_authorization(k, bad[i], &ka), TF_EINVAL, "'%s'", bad[i]);
    cr_expect_eq(tf_acme_key_authorization(k, longtok, &ka), TF_EINVAL);
    longtok[256] = '\0';
    cr_expect_eq(tf_acme_key_authorization(k, longtok, &ka), 0);
    free(ka);
    tf_acme_key_free(k);
}

/* ---- JWS ---------------------------------------------------------------- */

typedef struct {
    json_t *header;     /* decoded protected header */
    char *payload;      /* decoded payload, NUL added */
    unsigned char *sig; /* decoded signature */
    size_t siglen;
    char *input; /* the signing input, PROTECTED.PAYLOAD as sent */
} jws_t;

static jws_t parse_jws(const char *text)
{
    jws_t j = {0};
    json_error_t e;
    json_t *root = json_loads(text, 0, &e);
    cr_assert_not_null(root, "%s: %s", e.text, text);
    cr_assert_eq(json_object_size(root), 3, "%s", text);
    const char *p = json_string_value(json_object_get(root, "protected"));
    const char *pl = json_string_value(json_object_get(root, "payload"));
    const char *s = json_string_value(json_object_get(root, "signature"));
    cr_assert(p && pl && s, "%s", text);
    size_t n;
    unsigned char *hdr = b64d(p, &n);
    j.header = json_loadb((const char *)hdr, n, 0, &e);
    cr_assert_not_null(j.header, "%s", e.text);
    free(hdr);
    unsigned char *body = b64d(pl, &n);
    j.payload = malloc(n + 1);
    memcpy(j.payload, body, n);
    j.payload[n] = '\0';
    free(body);
    j.sig = b64d(s, &j.siglen);
    j.input = malloc(strlen(p) + strlen(pl) + 2);
    sprintf(j.input, "%s.%s", p, pl);
    json_decref(root);
    return j;
}

static void jws_dispose(jws_t *j)
{
    json_decref(j->header);
    free(j->payload);
    free(j->sig);
    free(j->input);
}

/* Verifies an ES256 signature (r||s) over INPUT with the EC JWK, by wolfCrypt. */
static bool es256_ok(const json_t *jwk, const char *input, const unsigned char *sig)
{
    size_t xl, yl;
    unsigned char *x = b64d(json_string_value(json_object_get(jwk, "x")), &xl);
    unsigned char *y = b64d(json_string_value(json_object_get(jwk, "y")), &yl);
    ecc_key pub;
    unsigned char der[80], hash[WC_SHA256_DIGEST_SIZE];
    word32 dl = sizeof der;
    int res = 0;
    cr_assert_eq(wc_ecc_init(&pub), 0);
    cr_assert_eq(wc_ecc_import_unsigned(&pub, x, y, NULL, ECC_SECP256R1), 0);
    cr_assert_eq(wc_ecc_rs_raw_to_sig(sig, 32, sig + 32, 32, der, &dl), 0);
    cr_assert_eq(wc_Sha256Hash((const byte *)input, (word32)strlen(input), hash), 0);
    cr_assert_eq(wc_ecc_verify_hash(der, dl, hash, sizeof hash, &res, &pub), 0);
    wc_ecc_free(&pub);
    free(x);
    free(y);
    return res == 1;
}

Test(jws, es256_with_jwk_verified_by_wolfcrypt)
{
    tf_acme_key_t *k = new_key(TF_ACME_KEY_EC);
    char tp[TF_ACME_THUMBPRINT_LEN + 1], tp2[TF_ACME_THUMBPRINT_LEN + 1];
    cr_assert_eq(tf_acme_key_thumbprint(k, tp), 0);
    /* Enough signatures that some r or s has a leading zero byte (each
     * half has one with probability 1/256): the halves stay 32 bytes. */
    for (int i = 0; i < 64; i++) {
        char *text = NULL;
        cr_assert_eq(tf_acme_jws(k, NULL, "nonce-abc", "https://ca.example/new-acct",
                                 "{\"termsOfServiceAgreed\":true}", &text),
                     0);
        jws_t j = parse_jws(text);
        cr_expect_str_eq(json_string_value(json_object_get(j.header, "alg")), "ES256");
        cr_expect_str_eq(json_string_value(json_object_get(j.header, "nonce")), "nonce-abc");
        cr_expect_str_eq(json_string_value(json_object_get(j.header, "url")),
                         "https://ca.example/new-acct");
        cr_expect_null(json_object_get(j.header, "kid"));
        cr_expect_eq(json_object_size(j.header), 4);
        json_t *jwk = json_object_get(j.header, "jwk");
        cr_assert_eq(tf_acme_jwk_thumbprint(jwk, tp2), 0);
        cr_expect_str_eq(tp, tp2);
        cr_expect_str_eq(j.payload, "{\"termsOfServiceAgreed\":true}");
        cr_assert_eq(j.siglen, 64, "ES256 is r||s, not DER");
        cr_expect(es256_ok(jwk, j.input, j.sig));
        j.input[0] ^= 1; /* and the check can fail */
        cr_expect_not(es256_ok(jwk, j.input, j.sig));
        jws_dispose(&j);
        free(text);
    }
    tf_acme_key_free(k);
}

Test(jws, kid_and_post_as_get)
{
    tf_acme_key_t *k = new_key(TF_ACME_KEY_EC);
    char *text = NULL;
    cr_assert_eq(
        tf_acme_jws(k, "https://ca.example/acct/7", "n2", "https://ca.example/order/1", "", &text),
        0);
    cr_expect_not_null(strstr(text, "\"payload\":\"\""), "POST-as-GET: %s", text);
    jws_t j = parse_jws(text);
    cr_expect_str_eq(json_string_value(json_object_get(j.header, "kid")),
                     "https://ca.example/acct/7");
    cr_expect_null(json_object_get(j.header, "jwk"));
    cr_expect_str_empty(j.payload);
    json_t *jwk = tf_acme_jwk(k);
    cr_expect(es256_ok(jwk, j.input, j.sig));
    json_decref(jwk);
    jws_dispose(&j);
    free(text);
    cr_expect_eq(tf_acme_jws(k, NULL, NULL, "https://ca.example/x", "", &text), TF_EINVAL);
    cr_expect_eq(tf_acme_jws(k, NULL, "n", NULL, "", &text), TF_EINVAL);
    tf_acme_key_free(k);
}

/* The signature checked by openssl: r||s turned into DER, the public key
 * exported by openssl itself from the PEM this code wrote. */
static void openssl_verifies(tf_acme_key_t *k, const char *digest_args)
{
    char *dir = make_dir();
    char *pem = write_key(k, dir, "k.pem");
    char *text = NULL;
    cr_assert_eq(tf_acme_jws(k, NULL, "n-1", "https://ca.example/new-order",
                             "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}]}",
                             &text),
                 0);
    jws_t j = parse_jws(text);
    unsigned char sig[600];
    word32 sl = sizeof sig;
    if (tf_acme_key_type(k) == TF_ACME_KEY_EC)
        cr_assert_eq(wc_ecc_rs_raw_to_sig(j.sig, 32, j.sig + 32, 32, sig, &sl), 0);
    else
        memcpy(sig, j.sig, sl = (word32)j.siglen);
    char *in = path_in(dir, "input"), *sg = path_in(dir, "sig"), *pub = path_in(dir, "pub.pem");
    write_file(in, j.input, strlen(j.input));
    write_file(sg, sig, sl);
    char cmd[8192];
    int st;
    snprintf(cmd, sizeof cmd,
             "openssl pkey -in '%s' -pubout -out '%s' && openssl dgst %s -verify '%s' "
             "-signature '%s' '%s' 2>&1",
             pem, pub, digest_args, pub, sg, in);
    char *out = run(cmd, &st);
    cr_expect_eq(st, 0, "%s\n%s", cmd, out);
    cr_expect_not_null(strstr(out, "Verified OK"), "%s", out);
    free(out);
    /* A changed payload fails. */
    j.input[strlen(j.input) - 1] ^= 1;
    write_file(in, j.input, strlen(j.input));
    out = run(cmd, &st);
    cr_expect_neq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "Verification failure"), "%s", out);
    free(out);
    jws_dispose(&j);
    free(text);
    free(in);
    free(sg);
    free(pub);
    free(pem);
    rm_dir(dir);
}

Test(jws, es256_verified_by_openssl)
{
    tf_acme_key_t *k = new_key(TF_ACME_KEY_EC);
    openssl_verifies(k, "-sha256");
    tf_acme_key_free(k);
}

Test(jws, rs256_verified_by_openssl, .timeout = 60)
{
    tf_acme_key_t *k = new_key(TF_ACME_KEY_RSA);
    char *text = NULL;
    cr_assert_eq(tf_acme_jws(k, NULL, "n", "https://ca.example/x", "{}", &text), 0);
    jws_t j = parse_jws(text);
    cr_expect_str_eq(json_string_value(json_object_get(j.header, "alg")), "RS256");
    json_t *jwk = json_object_get(j.header, "jwk");
    cr_expect_str_eq(json_string_value(json_object_get(jwk, "kty")), "RSA");
    cr_expect_str_eq(json_string_value(json_object_get(jwk, "e")), "AQAB");
    size_t nl;
    unsigned char *n = b64d(json_string_value(json_object_get(jwk, "n")), &nl);
    cr_expect_eq(nl, 256);
    cr_expect_neq(n[0], 0, "n without leading zeros (RFC 7518 §6.3.1.1)");
    cr_expect_eq(j.siglen, 256);
    free(n);
    jws_dispose(&j);
    free(text);
    openssl_verifies(k, "-sha256");
    tf_acme_key_free(k);
}

/* ---- external account binding -------------------------------------------- */

Test(eab, hs256_over_the_account_jwk)
{
    tf_acme_key_t *k = new_key(TF_ACME_KEY_EC);
    unsigned char mac[32];
    for (size_t i = 0; i < sizeof mac; i++)
        mac[i] = (unsigned char)(0xa5 ^ i * 7);
    json_t *eab = NULL;
    cr_assert_eq(tf_acme_eab_jws(k, "kid-1", mac, sizeof mac, "https://ca.example/new-acct", &eab),
                 0);
    char *text = json_dumps(eab, JSON_COMPACT);
    jws_t j = parse_jws(text);
    cr_expect_str_eq(json_string_value(json_object_get(j.header, "alg")), "HS256");
    cr_expect_str_eq(json_string_value(json_object_get(j.header, "kid")), "kid-1");
    cr_expect_str_eq(json_string_value(json_object_get(j.header, "url")),
                     "https://ca.example/new-acct");
    cr_expect_eq(json_object_size(j.header), 3, "no nonce in the inner JWS (RFC 8555 §7.3.4)");
    json_t *payload = json_loads(j.payload, 0, NULL), *jwk = tf_acme_jwk(k);
    cr_expect(json_equal(payload, jwk), "payload is the account JWK: %s", j.payload);

    /* The MAC recomputed by wolfCrypt... */
    Hmac h;
    unsigned char want[WC_SHA256_DIGEST_SIZE];
    cr_assert_eq(wc_HmacInit(&h, NULL, INVALID_DEVID), 0);
    cr_assert_eq(wc_HmacSetKey(&h, WC_SHA256, mac, sizeof mac), 0);
    cr_assert_eq(wc_HmacUpdate(&h, (const byte *)j.input, (word32)strlen(j.input)), 0);
    cr_assert_eq(wc_HmacFinal(&h, want), 0);
    wc_HmacFree(&h);
    cr_assert_eq(j.siglen, sizeof want);
    cr_expect_eq(memcmp(j.sig, want, sizeof want), 0);

    /* ...and by openssl. */
    char *dir = make_dir(), *in = path_in(dir, "input"), *key = hex(mac, sizeof mac);
    char *got = hex(j.sig, j.siglen), cmd[8192];
    write_file(in, j.input, strlen(j.input));
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -mac HMAC -macopt hexkey:%s -r '%s'", key, in);
    int st;
    char *out = run(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_eq(strncmp(out, got, 64), 0, "openssl %s, ours %s", out, got);
    free(out);
    free(got);
    free(key);
    free(in);
    rm_dir(dir);

    json_decref(payload);
    json_decref(jwk);
    jws_dispose(&j);
    free(text);
    json_decref(eab);
    cr_expect_eq(tf_acme_eab_jws(k, "", mac, sizeof mac, "u", &eab), TF_EINVAL);
    cr_expect_eq(tf_acme_eab_jws(k, "kid", mac, 0, "u", &eab), TF_EINVAL);
    tf_acme_key_free(k);
}

Test(eab, key_file)
{
    char *dir = make_dir(), *f = path_in(dir, "eab.key"), err[512];
    unsigned char key[TF_ACME_EAB_KEY_MAX];
    size_t len = 0;
    write_file(f, "  Zm9vYmFy\n", 11);
    cr_assert_eq(tf_acme_eab_key_read(f, key, &len, err, sizeof err), 0, "%s", err);
    cr_expect_eq(len, 6);
    cr_expect_eq(memcmp(key, "foobar", 6), 0);
    write_file(f, "Zm9vYmE=\r\n", 10); /* padding tolerated */
    cr_assert_eq(tf_acme_eab_key_read(f, key, &len, err, sizeof err), 0, "%s", err);
    cr_expect_eq(len, 5);
    write_file(f, " \n", 2);
    cr_expect_eq(tf_acme_eab_key_read(f, key, &len, err, sizeof err), TF_EINVAL);
    cr_expect_not_null(strstr(err, "the EAB key is empty"), "%s", err);
    write_file(f, "Zm9v+mFy\n", 9);
    cr_expect_eq(tf_acme_eab_key_read(f, key, &len, err, sizeof err), TF_EINVAL);
    cr_expect_not_null(strstr(err, "is not base64url"), "%s", err);
    write_file(f, "Zm9v\nYmFy\n", 10);
    cr_expect_eq(tf_acme_eab_key_read(f, key, &len, err, sizeof err), TF_EINVAL);
    char big[400];
    memset(big, 'A', sizeof big);
    write_file(f, big, sizeof big);
    cr_expect_eq(tf_acme_eab_key_read(f, key, &len, err, sizeof err), TF_EINVAL);
    cr_expect_not_null(strstr(err, "longer than 256 bytes"), "%s", err);
    char *missing = path_in(dir, "nope");
    cr_expect_eq(tf_acme_eab_key_read(missing, key, &len, err, sizeof err), -ENOENT);
    cr_expect_not_null(strstr(err, "cannot read acme.eab.hmac_key_file: No such file"), "%s", err);
    free(missing);
    free(f);
    rm_dir(dir);
}

/* ---- CSR ---------------------------------------------------------------------- */

static char *openssl_on_der(const unsigned char *der, size_t len, const char *what,
                            const char *args, int *st)
{
    char *dir = make_dir(), *f = path_in(dir, what), cmd[8192];
    write_file(f, der, len);
    snprintf(cmd, sizeof cmd, "openssl %s -inform DER -in '%s' %s 2>&1", what, f, args);
    char *out = run(cmd, st);
    free(f);
    rm_dir(dir);
    return out;
}

static void check_csr(tf_acme_key_type_t type, const char *host, bool cn)
{
    tf_acme_key_t *k = new_key(type);
    unsigned char *der = NULL;
    size_t len = 0;
    cr_assert_eq(tf_acme_csr(k, host, &der, &len), 0);
    int st;
    char *out = openssl_on_der(der, len, "req", "-verify -noout -text", &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "verify OK"), "%s", out);
    char want[512];
    snprintf(want, sizeof want, "DNS:%s\n", host);
    cr_expect_not_null(strstr(out, want), "%s", out);
    snprintf(want, sizeof want, "Subject: CN = %s\n", host);
    if (cn)
        cr_expect_not_null(strstr(out, want), "%s", out);
    else
        cr_expect_null(strstr(out, "CN ="), "%s", out);
    cr_expect_not_null(
        strstr(out, type == TF_ACME_KEY_EC ? "ecdsa-with-SHA256" : "sha256WithRSAEncryption"), "%s",
        out);
    free(out);
    free(der);
    tf_acme_key_free(k);
}

Test(csr, ecdsa_verified_by_openssl)
{
    check_csr(TF_ACME_KEY_EC, "portal.acme.example", true);
}

Test(csr, rsa_verified_by_openssl, .timeout = 60)
{
    check_csr(TF_ACME_KEY_RSA, "chat.acme.example", true);
}

Test(csr, long_host_has_no_cn)
{
    char host[200];
    snprintf(host, sizeof host, "%s.%s.acme.example",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    check_csr(TF_ACME_KEY_EC, host, false);
}

Test(csr, refuses_what_is_not_one_host)
{
    tf_acme_key_t *k = new_key(TF_ACME_KEY_EC);
    static const char *const bad[] = {"",           "*.acme.example", "Portal.acme.example",
                                      "a..example", "-a.example",     "a-.example",
                                      "a.example.", "a b.example",    "a_b.example"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *der = NULL;
        size_t len = 0;
        cr_expect_eq(tf_acme_csr(k, bad[i], &der, &len), TF_EINVAL, "'%s'", bad[i]);
    }
    tf_acme_key_free(k);
}

/* ---- tls-alpn-01 certificate ------------------------------------------------ */

Test(alpn, certificate_carries_the_critical_acme_identifier)
{
    const char *ka =
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9"
        "fm21mqTI";
    unsigned char *cert = NULL, *key = NULL;
    size_t certlen = 0, keylen = 0;
    cr_assert_eq(tf_acme_alpn_cert("www.acme.example", ka, &cert, &certlen, &key, &keylen), 0);

    int st;
    char *text = openssl_on_der(cert, certlen, "x509", "-noout -text", &st);
    cr_expect_eq(st, 0, "%s", text);
    cr_expect_not_null(strstr(text, "DNS:www.acme.example\n"), "%s", text);
    cr_expect_not_null(strstr(text, "1.3.6.1.5.5.7.1.31: critical\n"), "%s", text);
    cr_expect_not_null(strstr(text, "Subject: CN = www.acme.example\n"), "%s", text);
    cr_expect_not_null(strstr(text, "Issuer: CN = www.acme.example\n"), "self-signed: %s", text);
    free(text);

    /* The extension's value: OCTET STRING { SHA-256(key authorization) },
     * the hash computed by openssl. */
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "printf '%%s' '%s' | openssl dgst -sha256 -r", ka);
    char *sha = run(cmd, &st);
    cr_assert_eq(st, 0);
    sha[64] = '\0';
    char *dump = openssl_on_der(cert, certlen, "asn1parse", "", &st);
    cr_expect_eq(st, 0, "%s", dump);
    const char *oid = strstr(dump, ":1.3.6.1.5.5.7.1.31\n");
    cr_assert_not_null(oid, "%s", dump);
    const char *crit = strstr(oid, "BOOLEAN");
    const char *value = strstr(oid, "[HEX DUMP]:");
    cr_assert(crit && value && crit < value, "%s", oid);
    cr_expect_eq(strncmp(crit, "BOOLEAN           :255", 22), 0, "critical: %.40s", crit);
    char want[80];
    snprintf(want, sizeof want, "[HEX DUMP]:0420%s\n", sha);
    cr_expect_eq(strncasecmp(value, want, strlen(want)), 0, "want %s, got %.80s", want, value);
    free(dump);
    free(sha);

    /* wolfSSL takes both as the TLS side will load them. (Not
     * wolfSSL_CTX_check_private_key(): it re-parses the certificate and
     * fails on any critical extension it does not know; serving does not.
     * That the key is the certificate's is checked with openssl below.) */
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_2_server_method());
    cr_assert_not_null(ctx);
    cr_expect_eq(wolfSSL_CTX_use_PrivateKey_buffer(ctx, key, (long)keylen, WOLFSSL_FILETYPE_ASN1),
                 WOLFSSL_SUCCESS);
    cr_expect_eq(
        wolfSSL_CTX_use_certificate_buffer(ctx, cert, (long)certlen, WOLFSSL_FILETYPE_ASN1),
        WOLFSSL_SUCCESS);
    wolfSSL_CTX_free(ctx);

    char *dir = make_dir(), *cf = path_in(dir, "c.der"), *kf = path_in(dir, "k.der");
    write_file(cf, cert, certlen);
    write_file(kf, key, keylen);
    snprintf(cmd, sizeof cmd,
             "openssl x509 -inform DER -in '%s' -out '%s.pem' && "
             "openssl verify -ignore_critical -check_ss_sig -CAfile '%s.pem' '%s.pem' 2>&1 && "
             "openssl x509 -in '%s.pem' -noout -pubkey > '%s.pub1' && "
             "openssl pkey -inform DER -in '%s' -pubout > '%s.pub2' && cmp '%s.pub1' '%s.pub2'",
             cf, cf, cf, cf, cf, cf, kf, cf, cf, cf);
    char *out = run(cmd, &st);
    cr_expect_eq(st, 0, "%s\n%s", cmd, out);
    free(out);
    free(cf);
    free(kf);
    rm_dir(dir);
    free(cert);
    tf_acme_free_secret(key, keylen);
}

Test(alpn, each_certificate_has_a_fresh_key_and_bad_input_is_refused)
{
    unsigned char *c1, *c2, *k1, *k2;
    size_t cl1, cl2, kl1, kl2;
    cr_assert_eq(tf_acme_alpn_cert("a.example", "t.x", &c1, &cl1, &k1, &kl1), 0);
    cr_assert_eq(tf_acme_alpn_cert("a.example", "t.x", &c2, &cl2, &k2, &kl2), 0);
    cr_expect(kl1 != kl2 || memcmp(k1, k2, kl1) != 0);
    free(c1);
    free(c2);
    tf_acme_free_secret(k1, kl1);
    tf_acme_free_secret(k2, kl2);
    cr_expect_eq(tf_acme_alpn_cert("*.a.example", "t.x", &c1, &cl1, &k1, &kl1), TF_EINVAL);
    cr_expect_eq(tf_acme_alpn_cert("a.example", "", &c1, &cl1, &k1, &kl1), TF_EINVAL);
}

/* ---- keys -------------------------------------------------------------------- */

/* A certificate for KEY made by openssl, then the bundle "certificate + our
 * PEM" through the certificate store's own validation. */
static void store_loads(tf_acme_key_t *k, tf_cs_key_type_t want)
{
    char *dir = make_dir(), *kf = write_key(k, dir, "k.pem"), *cf = path_in(dir, "c.pem");
    char cmd[8192];
    int st;
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -new -key '%s' -subj /CN=x.acme.example -addext "
             "subjectAltName=DNS:x.acme.example -days 30 -out '%s' 2>&1",
             kf, cf);
    char *out = run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cat '%s' '%s'", cf, kf);
    char *bundle = run(cmd, &st);
    cr_assert_eq(st, 0);
    tf_cs_bundle_t *b = NULL;
    int rc = tf_cs_bundle_load_mem("x.acme.example.pem", bundle, strlen(bundle), NULL, 0, NULL, &b);
    cr_expect_eq(rc, 0, "%s",
                 b && tf_cs_bundle_diag_count(b) ? tf_cs_bundle_diag_at(b, 0)->message
                                                 : tf_err_name(rc));
    cr_expect_eq(tf_cs_bundle_key_type(b), want);
    cr_expect(tf_cs_bundle_covers(b, "x.acme.example"));
    tf_cs_bundle_unref(b);
    free(bundle);
    free(kf);
    free(cf);
    rm_dir(dir);
}

Test(keys, ec_pem_is_sec1_and_loads_in_the_store)
{
    tf_acme_key_t *k = new_key(TF_ACME_KEY_EC);
    char *pem = NULL;
    size_t len = 0;
    cr_assert_eq(tf_acme_key_to_pem(k, &pem, &len), 0);
    cr_expect_eq(strncmp(pem, "-----BEGIN EC PRIVATE KEY-----\n", 31), 0, "%s", pem);
    cr_expect_eq(strlen(pem), len);
    /* And back: the same key. */
    tf_acme_key_t *k2 = NULL;
    char a[TF_ACME_THUMBPRINT_LEN + 1], b[TF_ACME_THUMBPRINT_LEN + 1];
    cr_assert_eq(tf_acme_key_from_pem(pem, len, &k2), 0);
    cr_assert_eq(tf_acme_key_thumbprint(k, a), 0);
    cr_assert_eq(tf_acme_key_thumbprint(k2, b), 0);
    cr_expect_str_eq(a, b);
    tf_acme_free_secret(pem, len);
    tf_acme_key_free(k2);
    store_loads(k, TF_CS_KEY_EC);
    tf_acme_key_free(k);
}

Test(keys, rsa_pem_is_pkcs1_and_loads_in_the_store, .timeout = 60)
{
    tf_acme_key_t *k = new_key(TF_ACME_KEY_RSA);
    char *pem = NULL;
    size_t len = 0;
    cr_assert_eq(tf_acme_key_to_pem(k, &pem, &len), 0);
    cr_expect_eq(strncmp(pem, "-----BEGIN RSA PRIVATE KEY-----\n", 32), 0, "%s", pem);
    tf_acme_free_secret(pem, len);
    store_loads(k, TF_CS_KEY_RSA);
    tf_acme_key_free(k);
}

/* Keys openssl wrote, in each PEM form; and what is refused. */
static int load_openssl_key(const char *gen, tf_acme_key_t **k)
{
    int st;
    char *pem = run(gen, &st);
    cr_assert_eq(st, 0, "%s", gen);
    int rc = tf_acme_key_from_pem(pem, strlen(pem), k);
    free(pem);
    return rc;
}

Test(keys, pem_forms_openssl_writes, .timeout = 60)
{
    static const struct {
        const char *cmd;
        int rc;
        tf_acme_key_type_t type;
    } cases[] = {
        {"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null", 0,
         TF_ACME_KEY_EC},
        {"openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null", 0, TF_ACME_KEY_EC},
        {"openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null", 0,
         TF_ACME_KEY_RSA},
        {"openssl genrsa -traditional 3072 2>/dev/null", 0, TF_ACME_KEY_RSA},
        {"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 2>/dev/null", TF_EINVAL,
         TF_ACME_KEY_EC},
        {"openssl genpkey -algorithm ED25519 2>/dev/null", TF_EINVAL, TF_ACME_KEY_EC},
        {"openssl genrsa 1024 2>/dev/null", TF_EINVAL, TF_ACME_KEY_EC},
        {"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | "
         "openssl pkcs8 -topk8 -passout pass:x -v2 aes-256-cbc 2>/dev/null",
         TF_EINVAL, TF_ACME_KEY_EC},
        {"printf -- '-----BEGIN EC PRIVATE KEY-----\\nAAAA\\n-----END EC PRIVATE KEY-----\\n'",
         TF_EINVAL, TF_ACME_KEY_EC},
        {"echo hello", TF_EINVAL, TF_ACME_KEY_EC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tf_acme_key_t *k = NULL;
        cr_expect_eq(load_openssl_key(cases[i].cmd, &k), cases[i].rc, "%s", cases[i].cmd);
        if (k == NULL)
            continue;
        cr_expect_eq(tf_acme_key_type(k), cases[i].type, "%s", cases[i].cmd);
        char tp[TF_ACME_THUMBPRINT_LEN + 1];
        cr_expect_eq(tf_acme_key_thumbprint(k, tp), 0);
        tf_acme_key_free(k);
    }
}

/* ---- the account key in storage -------------------------------------------------- */

static mode_t mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

Test(account, created_once_with_private_modes_then_loaded)
{
    char *dir = make_dir(), *storage = path_in(dir, "var/acme-state"), err[512];
    char *parent = path_in(dir, "var"), *file = path_in(storage, "account.key");
    tf_acme_key_t *k1 = NULL, *k2 = NULL;
    bool created = false;
    mode_t old = umask(0); /* the modes must not depend on the caller's umask */
    cr_assert_eq(tf_acme_account_key(storage, &k1, &created, err, sizeof err), 0, "%s", err);
    umask(old);
    cr_expect(created);
    cr_expect_eq(mode_of(storage), 0700, "%o", mode_of(storage));
    cr_expect_eq(mode_of(parent), 0700, "%o", mode_of(parent));
    cr_expect_eq(mode_of(file), 0600, "%o", mode_of(file));
    cr_expect_eq(tf_acme_key_type(k1), TF_ACME_KEY_EC);
    cr_assert_eq(tf_acme_account_key(storage, &k2, &created, err, sizeof err), 0, "%s", err);
    cr_expect_not(created);
    char a[TF_ACME_THUMBPRINT_LEN + 1], b[TF_ACME_THUMBPRINT_LEN + 1];
    cr_assert_eq(tf_acme_key_thumbprint(k1, a), 0);
    cr_assert_eq(tf_acme_key_thumbprint(k2, b), 0);
    cr_expect_str_eq(a, b);
    /* Only the key file is left: the temporary one was removed. */
    int st;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -A '%s'", storage);
    char *ls = run(cmd, &st);
    cr_expect_str_eq(ls, "account.key\n");
    free(ls);
    tf_acme_key_free(k1);
    tf_acme_key_free(k2);
    free(file);
    free(parent);
    free(storage);
    rm_dir(dir);
}

Test(account, processes_sharing_storage_agree_on_one_key)
{
    char *dir = make_dir(), *storage = path_in(dir, "state");
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    enum { N = 4 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        cr_assert_neq(pids[i], -1);
        if (pids[i] == 0) {
            tf_acme_key_t *k = NULL;
            char tp[TF_ACME_THUMBPRINT_LEN + 2] = "";
            char err[512];
            if (tf_acme_account_key(storage, &k, NULL, err, sizeof err) == 0 &&
                tf_acme_key_thumbprint(k, tp) == 0)
                tp[TF_ACME_THUMBPRINT_LEN] = '\n';
            else
                memset(tp, '?', TF_ACME_THUMBPRINT_LEN + 1);
            _exit(write(fds[1], tp, TF_ACME_THUMBPRINT_LEN + 1) == TF_ACME_THUMBPRINT_LEN + 1 ? 0
                                                                                              : 1);
        }
    }
    close(fds[1]);
    char got[N][TF_ACME_THUMBPRINT_LEN + 1];
    for (int i = 0; i < N; i++) {
        int st;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    for (int i = 0; i < N; i++) {
        size_t n = 0;
        while (n < sizeof got[i]) {
            ssize_t r = read(fds[0], got[i] + n, sizeof got[i] - n);
            cr_assert_gt(r, 0);
            n += (size_t)r;
        }
        cr_expect_neq(got[i][0], '?');
        cr_expect_eq(memcmp(got[i], got[0], sizeof got[i]), 0, "%.43s vs %.43s", got[i], got[0]);
    }
    close(fds[0]);
    free(storage);
    rm_dir(dir);
}

Test(account, unusable_key_file_and_storage_are_reported)
{
    char *dir = make_dir(), *storage = path_in(dir, "s"), *file = path_in(storage, "account.key");
    char err[512];
    tf_acme_key_t *k = NULL;
    cr_assert_eq(mkdir(storage, 0700), 0);
    write_file(file, "not a key\n", 10);
    cr_expect_eq(tf_acme_account_key(storage, &k, NULL, err, sizeof err), TF_EINVAL);
    cr_expect_not_null(strstr(err, "account.key: not a P-256 EC or 2048-4096-bit RSA private key"),
                       "%s", err);
    char *blocked = path_in(file, "x"); /* a file where a directory must be */
    cr_expect_eq(tf_acme_account_key(blocked, &k, NULL, err, sizeof err), -ENOTDIR, "%s", err);
    cr_expect_null(k);
    free(blocked);
    free(file);
    free(storage);
    rm_dir(dir);
}

/* ---- checks for `tlsfront check` ---------------------------------------------------- */

Test(check, storage)
{
    char *dir = make_dir(), err[1024];
    bool warn = true;
    char *missing = path_in(dir, "a/b/c");
    cr_expect_eq(tf_acme_check_storage(missing, &warn, err, sizeof err), 0, "%s", err);
    cr_expect_not(warn);
    cr_assert_eq(chmod(dir, 0755), 0);
    cr_expect_eq(tf_acme_check_storage(dir, &warn, err, sizeof err), 0, "%s", err);
    cr_expect(warn);
    cr_expect_not_null(strstr(err, "group or others may read"), "%s", err);
    cr_assert_eq(chmod(dir, 0700), 0);
    cr_expect_eq(tf_acme_check_storage(dir, &warn, err, sizeof err), 0, "%s", err);
    cr_expect_not(warn);
    char *f = path_in(dir, "file");
    write_file(f, "x", 1);
    cr_expect_eq(tf_acme_check_storage(f, &warn, err, sizeof err), -ENOTDIR);
    cr_expect_not_null(strstr(err, "not a directory"), "%s", err);
    char *under = path_in(f, "state");
    cr_expect_eq(tf_acme_check_storage(under, &warn, err, sizeof err), -ENOTDIR, "%s", err);
    free(under);
    free(f);
    free(missing);
    rm_dir(dir);
}

Test(check, ca_file)
{
    char *dir = make_dir(), err[1024], cmd[8192];
    char *ca = path_in(dir, "ca.pem"), *key = path_in(dir, "ca.key"), *junk = path_in(dir, "j");
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout '%s' -subj /CN=test-ca -days 2 -out '%s' 2>&1",
             key, ca);
    int st;
    char *out = run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    free(out);
    cr_expect_eq(tf_acme_check_ca_file(ca, err, sizeof err), 0, "%s", err);
    write_file(junk, "hello\n", 6);
    cr_expect_eq(tf_acme_check_ca_file(junk, err, sizeof err), TF_EINVAL);
    cr_expect_not_null(strstr(err, "holds no CA certificate wolfSSL can load"), "%s", err);
    char *missing = path_in(dir, "nope.pem");
    cr_expect_eq(tf_acme_check_ca_file(missing, err, sizeof err), -ENOENT);
    cr_expect_not_null(strstr(err, "cannot read: No such file or directory"), "%s", err);
    free(missing);
    free(ca);
    free(key);
    free(junk);
    rm_dir(dir);
}
