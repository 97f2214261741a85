/* Private keys: type, size, and whether a certificate belongs to them.
 *
 * The match is computed from the private half (the RSA modulus and exponent,
 * or the EC point derived from the private scalar), not from the public key a
 * SEC1 or PKCS#8 file may carry alongside, so a key file that was edited or
 * assembled from pieces cannot pass for the certificate's key.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include <stdlib.h>
#include <string.h>

#include "certstore/certstore_internal.h"
#include "common/util.h"

#define MAX_PUB 1200 /* RSA-8192 modulus and exponent, or a P-521 point */

/* Algorithm OIDs (DER contents) of PKCS#8 keys we recognise. */
static const struct {
    const char *name;
    tf_cs_key_type_t type;
    unsigned char len;
    unsigned char oid[9];
} algs[] = {
    {"RSA", TF_CS_KEY_RSA, 9, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01}},
    {"EC", TF_CS_KEY_EC, 7, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}},
    {"RSA-PSS", TF_CS_KEY_NONE, 9, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a}},
    {"DSA", TF_CS_KEY_NONE, 7, {0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01}},
    {"Ed25519", TF_CS_KEY_NONE, 3, {0x2b, 0x65, 0x70}},
    {"Ed448", TF_CS_KEY_NONE, 3, {0x2b, 0x65, 0x71}},
    {"X25519", TF_CS_KEY_NONE, 3, {0x2b, 0x65, 0x6e}},
    {"X448", TF_CS_KEY_NONE, 3, {0x2b, 0x65, 0x6f}},
};

/* PKCS#8: SEQUENCE { INTEGER version, SEQUENCE { OID algorithm, ... }, ... }.
 * Returns the algs[] index, -1 for an unknown OID, -2 when not PKCS#8. */
static int pkcs8_alg(const unsigned char *der, size_t len)
{
    size_t pos = 0, n;

    if (!tf_der_header(der, len, &pos, 0x30, &n) || !tf_der_header(der, len, &pos, 0x02, &n))
        return -2;
    pos += n;
    if (!tf_der_header(der, len, &pos, 0x30, &n) || !tf_der_header(der, len, &pos, 0x06, &n))
        return -2;
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (n == algs[i].len && memcmp(der + pos, algs[i].oid, n) == 0)
            return (int)i;
    return -1;
}

/* Flattens an RSA public key as len(n) (2 bytes) || n || e. */
static int rsa_pub(RsaKey *rsa, unsigned char *out, size_t *out_len)
{
    word32 n_len = MAX_PUB - 2, e_len;
    unsigned char e[16];

    e_len = sizeof e;
    if (wc_RsaFlattenPublicKey(rsa, e, &e_len, out + 2, &n_len) != 0 || n_len + e_len + 2 > MAX_PUB)
        return -1;
    out[0] = (unsigned char)(n_len >> 8);
    out[1] = (unsigned char)n_len;
    memcpy(out + 2 + n_len, e, e_len);
    *out_len = 2 + n_len + e_len;
    return 0;
}

static int ecc_bits(int curve_id)
{
    switch (curve_id) {
    case ECC_SECP256R1:
        return 256;
    case ECC_SECP384R1:
        return 384;
    case ECC_SECP521R1:
        return 521;
    default:
        return 0;
    }
}

static int parse_rsa(tf_cs__key_t *key, unsigned char *pub, size_t *pub_len)
{
    RsaKey rsa;
    word32 idx = 0;
    int rc = -1;

    if (wc_InitRsaKey(&rsa, NULL) != 0)
        return -1;
    if (key->kind == TF_CS__PEM_KEY_PKCS8 &&
        wc_GetPkcs8TraditionalOffset(key->der, &idx, (word32)key->len) < 0)
        goto out;
    if (wc_RsaPrivateKeyDecode(key->der, &idx, &rsa, (word32)key->len) != 0)
        goto out;
    key->bits = wc_RsaEncryptSize(&rsa) * 8;
    rc = rsa_pub(&rsa, pub, pub_len);
out:
    wc_FreeRsaKey(&rsa);
    return rc;
}

/* Returns 0, -1 for a malformed key, -2 for an unsupported curve. */
static int parse_ec(tf_cs__key_t *key, unsigned char *pub, size_t *pub_len)
{
    ecc_key ecc;
    word32 idx = 0, n = MAX_PUB;
    int rc = -1;

    if (wc_ecc_init(&ecc) != 0)
        return -1;
    if (wc_EccPrivateKeyDecode(key->der, &idx, &ecc, (word32)key->len) != 0)
        goto out;
    key->curve_id = wc_ecc_get_curve_id(ecc.idx);
    key->bits = ecc_bits(key->curve_id);
    if (key->bits == 0) {
        rc = -2;
        goto out;
    }
    /* The public point from the private scalar, not the one stored beside it. */
    if (wc_ecc_make_pub(&ecc, NULL) != 0 || wc_ecc_export_x963(&ecc, pub, &n) != 0)
        goto out;
    *pub_len = n;
    rc = 0;
out:
    wc_ecc_free(&ecc);
    return rc;
}

static void unsupported(tf_cs__draft_t *d, const tf_cs__key_t *key, const char *what)
{
    tf_cs__diag(d, TF_CS_D_UNSUPPORTED_KEY, TF_EUNSUPPORTED,
                "%s: line %d: unsupported private key type %s: tlsfront serves RSA (2048 bits "
                "or more) and ECDSA (P-256, P-384) certificates; get a certificate for such a key",
                d->key_name, key->line, what);
}

static tf_cs_key_type_t key_type_of(tf_cs__draft_t *d, tf_cs__key_t *key)
{
    int alg;

    if (key->kind == TF_CS__PEM_KEY_PKCS1)
        return TF_CS_KEY_RSA;
    if (key->kind == TF_CS__PEM_KEY_SEC1)
        return TF_CS_KEY_EC;
    alg = pkcs8_alg(key->der, key->len);
    if (alg == -2) {
        tf_cs__diag(d, TF_CS_D_MALFORMED, TF_ECERT,
                    "%s: line %d: malformed PRIVATE KEY block (not PKCS#8): export the key "
                    "again, e.g. openssl pkey -in key.pem -out key.fixed.pem",
                    d->key_name, key->line);
        return TF_CS_KEY_NONE;
    }
    if (alg < 0 || algs[alg].type == TF_CS_KEY_NONE)
        unsupported(d, key, alg < 0 ? "(unknown algorithm)" : algs[alg].name);
    return alg < 0 ? TF_CS_KEY_NONE : algs[alg].type;
}

int tf_cs__key_parse(tf_cs__draft_t *d, tf_cs__key_t *key, unsigned char *der, size_t len)
{
    unsigned char pub[MAX_PUB];
    size_t pub_len = 0;
    int rc;

    key->der = der;
    key->len = len;
    key->type = key_type_of(d, key);
    if (key->type == TF_CS_KEY_NONE)
        return TF_EUNSUPPORTED;
    rc = key->type == TF_CS_KEY_RSA ? parse_rsa(key, pub, &pub_len) : parse_ec(key, pub, &pub_len);
    if (rc == -2) {
        unsupported(d, key, "ECDSA on a curve other than P-256, P-384 or P-521");
        return TF_EUNSUPPORTED;
    }
    if (rc != 0) {
        tf_cs__diag(d, TF_CS_D_MALFORMED, TF_ECERT,
                    "%s: line %d: malformed %s private key: export it again, e.g. openssl pkey "
                    "-in key.pem -out key.fixed.pem",
                    d->key_name, key->line, key->type == TF_CS_KEY_RSA ? "RSA" : "EC");
        return TF_ECERT;
    }
    key->pub = malloc(pub_len);
    if (!key->pub) {
        d->oom = true;
        return TF_ENOMEM;
    }
    memcpy(key->pub, pub, pub_len);
    key->pub_len = pub_len;
    return 0;
}

static bool cert_pub(const tf_cs__cert_t *c, tf_cs_key_type_t type, int curve_id,
                     unsigned char *pub, size_t *pub_len)
{
    const unsigned char *spki = c->spki;
    word32 idx = 0, n = MAX_PUB;
    bool ok = false;

    if (type == TF_CS_KEY_RSA) {
        RsaKey rsa;

        if (wc_InitRsaKey(&rsa, NULL) != 0)
            return false;
        ok = wc_RsaPublicKeyDecode(spki, &idx, &rsa, (word32)c->spki_len) == 0 &&
             rsa_pub(&rsa, pub, pub_len) == 0;
        wc_FreeRsaKey(&rsa);
    } else {
        ecc_key ecc;

        if (wc_ecc_init(&ecc) != 0)
            return false;
        ok = wc_EccPublicKeyDecode(spki, &idx, &ecc, (word32)c->spki_len) == 0 &&
             wc_ecc_get_curve_id(ecc.idx) == curve_id && wc_ecc_export_x963(&ecc, pub, &n) == 0;
        *pub_len = n;
        wc_ecc_free(&ecc);
    }
    return ok;
}

bool tf_cs__key_matches(const tf_cs__key_t *key, const tf_cs__cert_t *cert)
{
    unsigned char pub[MAX_PUB];
    size_t pub_len = 0;

    if (!key->pub || cert->spki_len == 0)
        return false;
    if ((key->type == TF_CS_KEY_RSA) != (cert->key_oid == RSAk))
        return false;
    if (key->type == TF_CS_KEY_EC && cert->key_oid != ECDSAk)
        return false;
    if (!cert_pub(cert, key->type, key->curve_id, pub, &pub_len))
        return false;
    return pub_len == key->pub_len && memcmp(pub, key->pub, pub_len) == 0;
}

void tf_cs__key_dispose(tf_cs__key_t *key)
{
    if (key->der) {
        tf_cs__wipe(key->der, key->len);
        free(key->der);
    }
    free(key->pub);
    memset(key, 0, sizeof *key);
}
