/* What the client reads from certificates: the leaf's validity, and its
 * RFC 9773 certID for renewalInfo (ACME Renewal Information). See acme.h. */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <wolfssl/wolfcrypt/asn.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tf_acme__leaf_der(const char *pem, size_t len, unsigned char **der, size_t *derlen)
{
    *der = NULL;
    *derlen = 0;
    if (pem == NULL || len == 0 || len > INT32_MAX)
        return TF_EINVAL;
    unsigned char *buf = malloc(len);
    if (buf == NULL)
        return TF_ENOMEM;
    /* wolfSSL converts the first CERTIFICATE block: the leaf (RFC 8555
     * §9.1 puts it first). */
    int n = wc_CertPemToDer((const unsigned char *)pem, (int)len, buf, (int)len, CERT_TYPE);
    if (n <= 0) {
        free(buf);
        return TF_EINVAL;
    }
    *der = buf;
    *derlen = (size_t)n;
    return 0;
}

static bool asn_date(const byte *p, int len, int64_t *out)
{
    const byte *date = NULL;
    byte format = 0;
    int dlen = 0;
    struct tm tm;
    if (p == NULL || wc_GetDateInfo(p, len, &date, &format, &dlen) != 0 ||
        wc_GetDateAsCalendarTime(date, dlen, format, &tm) != 0)
        return false;
    *out = (int64_t)timegm(&tm);
    return true;
}

int tf_acme__cert_dates(const unsigned char *der, size_t len, int64_t *not_before,
                        int64_t *not_after)
{
    DecodedCert dc;
    wc_InitDecodedCert(&dc, der, (word32)len, NULL);
    int rc = wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0 &&
                     asn_date(dc.beforeDate, dc.beforeDateLen, not_before) &&
                     asn_date(dc.afterDate, dc.afterDateLen, not_after)
                 ? 0
                 : TF_EINVAL;
    wc_FreeDecodedCert(&dc);
    return rc;
}

/* ---- certID (RFC 9773 §4.1) ------------------------------------------- */

/* Any element at *POS: its tag and content length, *POS at the contents. */
static bool element(const unsigned char *p, size_t len, size_t *pos, unsigned char *tag,
                    size_t *clen)
{
    if (*pos >= len)
        return false;
    *tag = p[*pos];
    return tf_der_header(p, len, pos, *tag, clen);
}

/* The keyIdentifier ([0] IMPLICIT OCTET STRING) of an
 * AuthorityKeyIdentifier extension's value (an OCTET STRING wrapping a
 * SEQUENCE). */
static bool aki_key_id(const unsigned char *p, size_t len, const unsigned char **id, size_t *idlen)
{
    size_t pos = 0, n, end;
    unsigned char tag;
    if (!tf_der_header(p, len, &pos, 0x04, &n) || !tf_der_header(p, len, &pos, 0x30, &n))
        return false;
    end = pos + n;
    while (pos < end && element(p, end, &pos, &tag, &n)) {
        if (tag == 0x80 && n > 0) {
            *id = p + pos;
            *idlen = n;
            return true;
        }
        pos += n;
    }
    return false;
}

/* Finds the AKI in the extensions ([3] EXPLICIT SEQUENCE OF Extension). */
static bool find_aki(const unsigned char *p, size_t len, const unsigned char **id, size_t *idlen)
{
    static const unsigned char oid[] = {0x06, 0x03, 0x55, 0x1d, 0x23};
    size_t pos = 0, n;
    if (!tf_der_header(p, len, &pos, 0x30, &n))
        return false;
    size_t end = pos + n;
    while (pos < end) {
        size_t ext;
        if (!tf_der_header(p, end, &pos, 0x30, &ext))
            return false;
        size_t next = pos + ext, q = pos;
        if (ext > sizeof oid && memcmp(p + q, oid, sizeof oid) == 0) {
            q += sizeof oid;
            unsigned char tag;
            size_t bl;
            if (q < next && p[q] == 0x01) { /* critical */
                if (!element(p, next, &q, &tag, &bl))
                    return false;
                q += bl;
            }
            return aki_key_id(p + q, next - q, id, idlen);
        }
        pos = next;
    }
    return false;
}

/* The serial's content octets and the AKI keyIdentifier of a certificate. */
static bool cert_id_parts(const unsigned char *der, size_t len, const unsigned char **serial,
                          size_t *serial_len, const unsigned char **aki, size_t *aki_len)
{
    size_t pos = 0, n, tbs_end;
    unsigned char tag;
    if (!tf_der_header(der, len, &pos, 0x30, &n) || !tf_der_header(der, len, &pos, 0x30, &n))
        return false;
    tbs_end = pos + n;
    if (pos < tbs_end && der[pos] == 0xa0) { /* version */
        if (!element(der, tbs_end, &pos, &tag, &n))
            return false;
        pos += n;
    }
    if (!tf_der_header(der, tbs_end, &pos, 0x02, serial_len) || *serial_len == 0)
        return false;
    *serial = der + pos;
    pos += *serial_len;
    while (pos < tbs_end) {
        if (!element(der, tbs_end, &pos, &tag, &n))
            return false;
        if (tag == 0xa3)
            return find_aki(der + pos, n, aki, aki_len);
        pos += n;
    }
    return false;
}

int tf_acme__cert_id(const unsigned char *der, size_t len, char **out)
{
    const unsigned char *serial, *aki;
    size_t serial_len, aki_len;
    *out = NULL;
    if (!cert_id_parts(der, len, &serial, &serial_len, &aki, &aki_len))
        return TF_EINVAL;
    size_t a = tf_acme_b64url_len(aki_len), s = tf_acme_b64url_len(serial_len);
    char *id = malloc(a + 1 + s + 1);
    if (id == NULL)
        return TF_ENOMEM;
    tf_acme_b64url_encode(aki, aki_len, id, a + 1);
    id[a] = '.';
    tf_acme_b64url_encode(serial, serial_len, id + a + 1, s + 1);
    *out = id;
    return 0;
}

/* ---- RFC 3339 ------------------------------------------------------------ */

bool tf_acme__rfc3339(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int n = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 ||
        n != 10 || (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
        return false;
    const char *t = s + 11;
    if (sscanf(t, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 3 || n != 8)
        return false;
    t += 8;
    if (*t == '.')
        for (t++; isdigit((unsigned char)*t); t++)
            ;
    long off = 0;
    if (*t == 'Z' || *t == 'z') {
        t++;
    } else if (*t == '+' || *t == '-') {
        int oh, om;
        if (sscanf(t + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
            return false;
        off = (*t == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
        t += 6;
    } else {
        return false;
    }
    if (*t != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm) - off;
    return true;
}

/* ---- renewalInfo -------------------------------------------------------- */

static int window(const tf_acme_http_response_t *r, const char *url, int64_t *start, int64_t *end,
                  tf_acme_problem_t *prob)
{
    json_t *j = tf_acme__json(r, url, prob);
    if (j == NULL)
        return TF_EIO;
    json_t *w = json_object_get(j, "suggestedWindow");
    bool ok = tf_acme__rfc3339(json_string_value(json_object_get(w, "start")), start) &&
              tf_acme__rfc3339(json_string_value(json_object_get(w, "end")), end) && *end >= *start;
    json_decref(j);
    if (!ok)
        tf_acme__problem_set(prob, r->status, "%s: no valid suggestedWindow", url);
    return ok ? 0 : TF_EIO;
}

int tf_acme_client_renewal_info(tf_acme_client_t *c, const char *cert_pem, size_t len,
                                int64_t *start, int64_t *end, tf_acme_problem_t *prob)
{
    memset(prob, 0, sizeof *prob);
    int rc;
    const char *base = tf_acme__dir_url(c, "renewalInfo", &rc, prob);
    if (base == NULL)
        return rc;
    unsigned char *der = NULL;
    size_t derlen = 0;
    char *id = NULL, *url = NULL;
    rc = tf_acme__leaf_der(cert_pem, len, &der, &derlen);
    if (rc == 0)
        rc = tf_acme__cert_id(der, derlen, &id);
    free(der);
    if (rc != 0) {
        tf_acme__problem_set(prob, 0,
                             "acme: renewalInfo needs a certificate with an authority "
                             "key identifier");
        return rc;
    }
    size_t bl = strlen(base);
    bool slash = bl > 0 && base[bl - 1] == '/';
    size_t ulen = bl + 1 + strlen(id) + 1;
    if ((url = malloc(ulen)) == NULL) {
        free(id);
        return TF_ENOMEM;
    }
    snprintf(url, ulen, "%s%s%s", base, slash ? "" : "/", id);
    free(id);
    tf_acme_http_response_t r;
    rc = tf_acme__get(c, url, &r, prob);
    if (rc == 0) {
        rc = window(&r, url, start, end, prob);
        tf_acme_http_response_dispose(&r);
    }
    free(url);
    return rc;
}
