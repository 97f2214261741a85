/* The tls-alpn-01 validation certificate (RFC 8737 §3): self-signed for the
 * host, with the critical id-pe-acmeIdentifier extension holding
 * SHA-256(key authorization).
 *
 * wolfSSL 5.5.4 adds custom extensions to a certificate only with its ASN.1
 * template code (wc_SetCustomExtension needs WOLFSSL_ASN_TEMPLATE), which
 * would also replace the certificate parser certstore validates every bundle
 * with. So wolfCrypt makes and signs the certificate as usual, and between
 * the two steps this file appends the one extension to the to-be-signed
 * part: a few DER lengths to rewrite, nothing parsed that wolfCrypt did not
 * just write. */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <stdlib.h>
#include <string.h>

#define CERT_MAX 4096
#define DAYS_VALID 7

/* Extension ::= SEQUENCE { extnID 1.3.6.1.5.5.7.1.31, critical TRUE,
 * extnValue OCTET STRING { Authorization ::= OCTET STRING (SIZE (32)) } }. */
static const unsigned char ext_head[] = {
    0x30, 0x31,                                                 /* SEQUENCE, 49 bytes */
    0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f, /* OID */
    0x01, 0x01, 0xff,                                           /* critical */
    0x04, 0x22, 0x04, 0x20,                                     /* OCTET STRING { OCTET STRING */
};
#define EXT_LEN (sizeof ext_head + WC_SHA256_DIGEST_SIZE)

/* Finds the extensions ([3], the last field of a v3 TBSCertificate) in TBS:
 * *AT is where the field starts (LEN when there is none), *OLD where its
 * extensions' contents start and *OLDLEN their length. */
static bool find_extensions(const unsigned char *tbs, size_t len, size_t *at, size_t *old,
                            size_t *oldlen)
{
    size_t pos = 0, body;
    if (!tf_der_header(tbs, len, &pos, 0x30, &body) || pos + body != len)
        return false;
    *at = len;
    *old = len;
    *oldlen = 0;
    while (pos < len) {
        size_t start = pos, clen, inner = 0;
        if (!tf_der_header(tbs, len, &pos, tbs[pos], &clen))
            return false;
        if (tbs[start] == 0xa3) {
            size_t q = pos;
            if (pos + clen != len || !tf_der_header(tbs, len, &q, 0x30, &inner) || q + inner != len)
                return false;
            *at = start;
            *old = q;
            *oldlen = inner;
        }
        pos += clen;
    }
    return true;
}

/* Rewrites the TBSCertificate in BUF (LEN bytes, room for CAP) with EXT
 * appended to its extensions; returns the new length, or 0. */
static size_t add_extension(unsigned char *buf, size_t len, size_t cap, const unsigned char *ext)
{
    size_t at, old, oldlen, hdr = 0;
    unsigned char tmp[CERT_MAX], l2[4], l3[4], l1[4];
    if (!find_extensions(buf, len, &at, &old, &oldlen))
        return 0;
    (void)tf_der_header(buf, len, &hdr, 0x30, &(size_t){0});
    size_t n2 = tf_acme__der_len(oldlen + EXT_LEN, l2);
    size_t n3 = tf_acme__der_len(1 + n2 + oldlen + EXT_LEN, l3);
    size_t fields = at - hdr, body = fields + 1 + n3 + 1 + n2 + oldlen + EXT_LEN;
    size_t n1 = tf_acme__der_len(body, l1);
    if (1 + n1 + body > cap || 1 + n1 + body > sizeof tmp)
        return 0;
    size_t o = 0;
    tmp[o++] = 0x30;
    memcpy(tmp + o, l1, n1), o += n1;
    memcpy(tmp + o, buf + hdr, fields), o += fields;
    tmp[o++] = 0xa3;
    memcpy(tmp + o, l3, n3), o += n3;
    tmp[o++] = 0x30;
    memcpy(tmp + o, l2, n2), o += n2;
    memcpy(tmp + o, buf + old, oldlen), o += oldlen;
    memcpy(tmp + o, ext, EXT_LEN), o += EXT_LEN;
    memcpy(buf, tmp, o);
    return o;
}

/* Makes, extends and signs the certificate for HOST with KEY into BUF. */
static int make_cert(ecc_key *key, const char *host, const unsigned char *ext, unsigned char *buf,
                     size_t *len)
{
    Cert cert;
    WC_RNG rng;
    if (wc_InitCert(&cert) != 0)
        return TF_ECRYPTO;
    int rc = tf_acme__cert_names(&cert, host);
    if (rc != 0)
        return rc;
    cert.sigType = CTC_SHA256wECDSA;
    cert.daysValid = DAYS_VALID;
    if (tf_acme__rng_init(&rng) != 0)
        return TF_ECRYPTO;
    int n = wc_MakeCert_ex(&cert, buf, CERT_MAX, ECC_TYPE, key, &rng);
    size_t tbs = n > 0 ? add_extension(buf, (size_t)n, CERT_MAX, ext) : 0;
    n = tbs > 0 ? wc_SignCert_ex((int)tbs, cert.sigType, buf, CERT_MAX, ECC_TYPE, key, &rng) : -1;
    wc_FreeRng(&rng);
    if (n <= 0)
        return TF_ECRYPTO;
    *len = (size_t)n;
    return 0;
}

int tf_acme_alpn_cert(const char *host, const char *keyauth, unsigned char **cert, size_t *certlen,
                      unsigned char **key, size_t *keylen)
{
    unsigned char ext[EXT_LEN];
    if (!tf_acme__host_ok(host) || keyauth == NULL || *keyauth == '\0')
        return TF_EINVAL;
    memcpy(ext, ext_head, sizeof ext_head);
    if (wc_Sha256Hash((const byte *)keyauth, (word32)strlen(keyauth), ext + sizeof ext_head) != 0)
        return TF_ECRYPTO;
    tf_acme_key_t *k = NULL;
    unsigned char *buf = malloc(CERT_MAX);
    int rc = buf ? tf_acme_key_generate(TF_ACME_KEY_EC, &k) : TF_ENOMEM;
    if (rc == 0)
        rc = make_cert(&k->u.ec, host, ext, buf, certlen);
    if (rc == 0)
        rc = tf_acme_key_to_der(k, key, keylen);
    tf_acme_key_free(k);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *cert = buf;
    return 0;
}
