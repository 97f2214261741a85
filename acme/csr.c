/* The certificate signing request an order is finalized with (RFC 8555
 * §7.4): PKCS#10 made by wolfCrypt (WOLFSSL_CERT_REQ), one host as CN and
 * subjectAltName, signed with SHA-256 by the certificate's fresh key. Also
 * the DER and host helpers the validation certificate shares. */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <wolfssl/wolfcrypt/asn_public.h>

#include <stdlib.h>
#include <string.h>

#define CSR_MAX 4096

size_t tf_acme__der_len(size_t n, unsigned char *out)
{
    if (n < 0x80) {
        out[0] = (unsigned char)n;
        return 1;
    }
    size_t k = n > 0xffff ? 3 : n > 0xff ? 2 : 1;
    out[0] = (unsigned char)(0x80 | k);
    for (size_t i = 0; i < k; i++)
        out[1 + i] = (unsigned char)(n >> (8 * (k - 1 - i)));
    return 1 + k;
}

bool tf_acme__host_ok(const char *host)
{
    size_t n = strlen(host), label = 0;
    if (n == 0 || n > 253 || host[n - 1] == '.')
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = host[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || host[i - 1] == '-' || host[i - label] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
        label++;
    }
    return true;
}

size_t tf_acme__san_der(const char *host, unsigned char *out, size_t cap)
{
    unsigned char name[8], seq[8];
    size_t n = strlen(host);
    /* GeneralNames ::= SEQUENCE OF GeneralName; dNSName is [2] IA5String. */
    size_t nl = tf_acme__der_len(n, name);
    size_t inner = 1 + nl + n;
    size_t sl = tf_acme__der_len(inner, seq);
    if (1 + sl + inner > cap)
        return 0;
    size_t o = 0;
    out[o++] = 0x30;
    memcpy(out + o, seq, sl), o += sl;
    out[o++] = 0x82;
    memcpy(out + o, name, nl), o += nl;
    memcpy(out + o, host, n), o += n;
    return o;
}

/* The subject and SAN of a certificate or request for HOST. X.520 allows a
 * CN of 64 characters at most; a longer host is named by the SAN alone,
 * which is what ACME servers read anyway. */
int tf_acme__cert_names(Cert *cert, const char *host)
{
    if (!tf_acme__host_ok(host))
        return TF_EINVAL;
    if (strlen(host) < CTC_NAME_SIZE)
        memcpy(cert->subject.commonName, host, strlen(host) + 1);
    size_t n = tf_acme__san_der(host, cert->altNames, sizeof cert->altNames);
    if (n == 0)
        return TF_EINVAL;
    cert->altNamesSz = (int)n;
    return 0;
}

int tf_acme_csr(tf_acme_key_t *key, const char *host, unsigned char **der, size_t *len)
{
    Cert *cert = calloc(1, sizeof *cert);
    unsigned char *buf = malloc(CSR_MAX);
    WC_RNG rng;
    int rc = cert && buf ? 0 : TF_ENOMEM;
    if (rc == 0 && wc_InitCert(cert) != 0)
        rc = TF_ECRYPTO;
    if (rc == 0)
        rc = tf_acme__cert_names(cert, host);
    if (rc == 0 && tf_acme__rng_init(&rng) != 0)
        rc = TF_ECRYPTO;
    if (rc == 0) {
        bool ec = key->type == TF_ACME_KEY_EC;
        int type = ec ? ECC_TYPE : RSA_TYPE;
        void *k = ec ? (void *)&key->u.ec : (void *)&key->u.rsa;
        cert->version = 0; /* PKCS#10 v1 */
        cert->sigType = ec ? CTC_SHA256wECDSA : CTC_SHA256wRSA;
        int n = wc_MakeCertReq_ex(cert, buf, CSR_MAX, type, k);
        if (n > 0)
            n = wc_SignCert_ex(cert->bodySz, cert->sigType, buf, CSR_MAX, type, k, &rng);
        wc_FreeRng(&rng);
        rc = n > 0 ? 0 : TF_ECRYPTO;
        *len = n > 0 ? (size_t)n : 0;
    }
    free(cert);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *der = buf;
    return 0;
}
