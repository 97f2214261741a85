/* JWK (RFC 7517/7518), its thumbprint (RFC 7638), the flattened JWS of every
 * ACME request (RFC 7515 §7.2.2, RFC 8555 §6.2) and the external account
 * binding (RFC 8555 §7.3.4). JSON with jansson, crypto with wolfCrypt. */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/signature.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_MAX 512   /* RSA-4096 */
#define TOKEN_MAX 256 /* RFC 8555 asks for >= 128 bits; pebble and Let's Encrypt send 43 */

const char *tf_acme__alg(const tf_acme_key_t *key)
{
    return key->type == TF_ACME_KEY_EC ? "ES256" : "RS256";
}

/* ES256 (RFC 7518 §3.4): wolfCrypt signs into an ASN.1 ECDSA-Sig-Value;
 * JWS wants r and s as two 32-byte big-endian halves. */
static int sign_es256(ecc_key *ec, const unsigned char hash[WC_SHA256_DIGEST_SIZE],
                      unsigned char *sig, WC_RNG *rng)
{
    unsigned char der[ECC_MAX_SIG_SIZE];
    unsigned char r[TF_ACME__P256_LEN], s[TF_ACME__P256_LEN];
    word32 dlen = sizeof der, rlen = sizeof r, slen = sizeof s;
    if (wc_ecc_sign_hash(hash, WC_SHA256_DIGEST_SIZE, der, &dlen, rng, ec) != 0 ||
        wc_ecc_sig_to_rs(der, dlen, r, &rlen, s, &slen) != 0)
        return TF_ECRYPTO;
    /* Each half without its leading zeros: right-align it. */
    memset(sig, 0, 2 * TF_ACME__P256_LEN);
    memcpy(sig + TF_ACME__P256_LEN - rlen, r, rlen);
    memcpy(sig + 2 * TF_ACME__P256_LEN - slen, s, slen);
    return 0;
}

static int sign_rs256(RsaKey *rsa, const void *data, size_t len, unsigned char *sig, size_t cap,
                      size_t *siglen, WC_RNG *rng)
{
    word32 n = (word32)cap;
#ifdef WC_RSA_BLINDING
    if (wc_RsaSetRNG(rsa, rng) != 0)
        return TF_ECRYPTO;
#endif
    if ((size_t)wc_RsaEncryptSize(rsa) > cap)
        return TF_ETOOBIG;
    /* RSA_W_ENC: PKCS#1 v1.5 over the DigestInfo of SHA-256, as RS256 is. */
    if (wc_SignatureGenerate(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_RSA_W_ENC, data, (word32)len,
                             sig, &n, rsa, sizeof *rsa, rng) != 0)
        return TF_ECRYPTO;
    *siglen = n;
    return 0;
}

int tf_acme__sign(tf_acme_key_t *key, const void *data, size_t len, unsigned char *sig, size_t cap,
                  size_t *siglen)
{
    WC_RNG rng;
    unsigned char hash[WC_SHA256_DIGEST_SIZE];
    int rc;
    if (key->type == TF_ACME_KEY_EC && cap < 2 * TF_ACME__P256_LEN)
        return TF_ETOOBIG;
    if (tf_acme__rng_init(&rng) != 0)
        return TF_ECRYPTO;
    if (key->type == TF_ACME_KEY_EC) {
        rc = wc_Sha256Hash(data, (word32)len, hash) == 0 ? sign_es256(&key->u.ec, hash, sig, &rng)
                                                         : TF_ECRYPTO;
        *siglen = 2 * TF_ACME__P256_LEN;
    } else {
        rc = sign_rs256(&key->u.rsa, data, len, sig, cap, siglen, &rng);
    }
    wc_FreeRng(&rng);
    return rc;
}

/* ---- JWK and thumbprint ------------------------------------------------- */

/* A new JSON string holding base64url of N bytes, or NULL. */
static json_t *b64_string(const unsigned char *p, size_t n)
{
    char *s = tf_acme_b64url_dup(p, n);
    json_t *j = s ? json_string(s) : NULL;
    free(s);
    return j;
}

static json_t *jwk_ec(ecc_key *ec)
{
    unsigned char x[TF_ACME__P256_LEN], y[TF_ACME__P256_LEN];
    word32 xl = sizeof x, yl = sizeof y;
    if (wc_ecc_export_public_raw(ec, x, &xl, y, &yl) != 0 || xl != sizeof x || yl != sizeof y)
        return NULL;
    return json_pack("{s:s, s:s, s:o, s:o}", "crv", "P-256", "kty", "EC", "x", b64_string(x, xl),
                     "y", b64_string(y, yl));
}

static json_t *jwk_rsa(RsaKey *rsa)
{
    unsigned char e[8], n[TF_ACME__RSA_MAX_BITS / 8];
    word32 el = sizeof e, nl = sizeof n;
    /* Big-endian without leading zeros, as RFC 7518 §6.3.1 asks. */
    if (wc_RsaFlattenPublicKey(rsa, e, &el, n, &nl) != 0)
        return NULL;
    return json_pack("{s:o, s:s, s:o}", "e", b64_string(e, el), "kty", "RSA", "n",
                     b64_string(n, nl));
}

json_t *tf_acme_jwk(tf_acme_key_t *key)
{
    return key->type == TF_ACME_KEY_EC ? jwk_ec(&key->u.ec) : jwk_rsa(&key->u.rsa);
}

/* A required member: a non-empty string of base64url characters, or for
 * "crv" of printable ASCII other than '"' and '\', so that the canonical
 * text below needs no JSON escapes. */
static const char *member(const json_t *jwk, const char *name)
{
    const char *v = json_string_value(json_object_get(jwk, name));
    if (v == NULL || *v == '\0')
        return NULL;
    for (const char *p = v; *p; p++) {
        bool ok = strcmp(name, "crv") == 0
                      ? *p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\'
                      : strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                               *p) != NULL;
        if (!ok)
            return NULL;
    }
    return v;
}

/* The RFC 7638 §3.2 form: required members only, sorted, no white space. */
static char *canonical_jwk(const json_t *jwk)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *a, *b, *c;
    if (!json_is_object(jwk) || kty == NULL)
        return NULL;
    bool ec = strcmp(kty, "EC") == 0;
    if (!ec && strcmp(kty, "RSA") != 0)
        return NULL;
    a = member(jwk, ec ? "crv" : "e");
    b = member(jwk, ec ? "x" : "n");
    c = ec ? member(jwk, "y") : NULL;
    if (a == NULL || b == NULL || (ec && c == NULL))
        return NULL;
    size_t len = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 64;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    if (ec)
        snprintf(s, len, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", a, b, c);
    else
        snprintf(s, len, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
    return s;
}

int tf_acme_jwk_thumbprint(const json_t *jwk, char out[TF_ACME_THUMBPRINT_LEN + 1])
{
    unsigned char hash[WC_SHA256_DIGEST_SIZE];
    out[0] = '\0';
    char *text = canonical_jwk(jwk);
    if (text == NULL)
        return TF_EINVAL;
    int rc = wc_Sha256Hash((const byte *)text, (word32)strlen(text), hash) == 0 ? 0 : TF_ECRYPTO;
    free(text);
    return rc == 0 ? tf_acme_b64url_encode(hash, sizeof hash, out, TF_ACME_THUMBPRINT_LEN + 1) : rc;
}

int tf_acme_key_thumbprint(tf_acme_key_t *key, char out[TF_ACME_THUMBPRINT_LEN + 1])
{
    json_t *jwk = tf_acme_jwk(key);
    if (jwk == NULL)
        return TF_ENOMEM;
    int rc = tf_acme_jwk_thumbprint(jwk, out);
    json_decref(jwk);
    return rc;
}

int tf_acme_key_authorization(tf_acme_key_t *key, const char *token, char **out)
{
    char tp[TF_ACME_THUMBPRINT_LEN + 1];
    size_t n = strlen(token);
    /* The token becomes a file name and a URL path segment: nothing else
     * than base64url gets that far. */
    if (n == 0 || n > TOKEN_MAX ||
        strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != n)
        return TF_EINVAL;
    int rc = tf_acme_key_thumbprint(key, tp);
    if (rc != 0)
        return rc;
    char *s = malloc(n + 1 + TF_ACME_THUMBPRINT_LEN + 1);
    if (s == NULL)
        return TF_ENOMEM;
    sprintf(s, "%s.%s", token, tp);
    *out = s;
    return 0;
}

/* ---- flattened JWS ------------------------------------------------------ */

/* Signs "PROTECTED.PAYLOAD" (both base64url) into SIG; the key or the MAC. */
typedef int (*signer_fn)(void *ud, const char *input, size_t len, unsigned char *sig,
                         size_t *siglen);

static int key_signer(void *ud, const char *input, size_t len, unsigned char *sig, size_t *siglen)
{
    return tf_acme__sign(ud, input, len, sig, SIG_MAX, siglen);
}

typedef struct {
    const unsigned char *key;
    size_t len;
} mac_t;

static int hmac_signer(void *ud, const char *input, size_t len, unsigned char *sig, size_t *siglen)
{
    const mac_t *m = ud;
    Hmac h;
    if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
        return TF_ECRYPTO;
    int rc = wc_HmacSetKey(&h, WC_SHA256, m->key, (word32)m->len) == 0 &&
                     wc_HmacUpdate(&h, (const byte *)input, (word32)len) == 0 &&
                     wc_HmacFinal(&h, sig) == 0
                 ? 0
                 : TF_ECRYPTO;
    wc_HmacFree(&h);
    *siglen = WC_SHA256_DIGEST_SIZE;
    return rc;
}

/* {"protected", "payload", "signature"} for header PROT (consumed). */
static int flattened(json_t *prot, const char *payload, signer_fn sign, void *ud, json_t **out)
{
    unsigned char sig[SIG_MAX];
    size_t siglen = 0;
    char *ptext = prot ? json_dumps(prot, JSON_COMPACT) : NULL;
    json_decref(prot);
    char *p64 = ptext ? tf_acme_b64url_dup(ptext, strlen(ptext)) : NULL;
    char *b64 = tf_acme_b64url_dup(payload, strlen(payload));
    size_t len = p64 && b64 ? strlen(p64) + 1 + strlen(b64) : 0;
    char *input = len ? malloc(len + 1) : NULL;
    int rc = input ? 0 : TF_ENOMEM;
    if (rc == 0) {
        sprintf(input, "%s.%s", p64, b64);
        rc = sign(ud, input, len, sig, &siglen);
    }
    json_t *j = rc == 0 ? json_pack("{s:s, s:s, s:o}", "protected", p64, "payload", b64,
                                    "signature", b64_string(sig, siglen))
                        : NULL;
    if (rc == 0 && j == NULL)
        rc = TF_ENOMEM;
    free(input);
    free(b64);
    free(p64);
    free(ptext);
    *out = j;
    return rc;
}

int tf_acme_jws(tf_acme_key_t *key, const char *kid, const char *nonce, const char *url,
                const char *payload, char **out)
{
    if (nonce == NULL || url == NULL || payload == NULL)
        return TF_EINVAL;
    json_t *prot =
        json_pack("{s:s, s:s, s:s}", "alg", tf_acme__alg(key), "nonce", nonce, "url", url);
    json_t *who = kid ? json_string(kid) : tf_acme_jwk(key);
    if (prot == NULL || who == NULL || json_object_set_new(prot, kid ? "kid" : "jwk", who) != 0) {
        json_decref(prot);
        return TF_ENOMEM;
    }
    json_t *jws = NULL;
    int rc = flattened(prot, payload, key_signer, key, &jws);
    char *text = rc == 0 ? json_dumps(jws, JSON_COMPACT) : NULL;
    json_decref(jws);
    if (rc == 0 && text == NULL)
        rc = TF_ENOMEM;
    *out = text;
    return rc;
}

int tf_acme_eab_jws(tf_acme_key_t *account, const char *kid, const unsigned char *mac,
                    size_t maclen, const char *url, json_t **out)
{
    if (kid == NULL || *kid == '\0' || url == NULL || mac == NULL || maclen == 0)
        return TF_EINVAL;
    json_t *jwk = tf_acme_jwk(account);
    char *payload = jwk ? json_dumps(jwk, JSON_COMPACT) : NULL;
    json_decref(jwk);
    json_t *prot = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", kid, "url", url);
    if (payload == NULL || prot == NULL) {
        free(payload);
        json_decref(prot);
        return TF_ENOMEM;
    }
    mac_t m = {.key = mac, .len = maclen};
    int rc = flattened(prot, payload, hmac_signer, &m, out);
    free(payload);
    return rc;
}
