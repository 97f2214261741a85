/* Certificate parsing and the checks of SPEC §4.2 that concern the leaf and
 * the served chain: names, validity dates, algorithms, key size and usage.
 * Chain order, roots and missing intermediates are in chain.c.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certstore/certstore_internal.h"
#include "certstore/names.h"

_Static_assert(KEYID_SIZE <= TF_CS__HASH_LEN, "wolfSSL name hashes must fit");

#define DAY 86400
#define EXPIRY_WARN_DAYS 30

/* ---- parsing ----------------------------------------------------------------- */

static const struct {
    unsigned oid;
    const char *name;
    bool weak;
} sig_names[] = {
    {CTC_MD5wRSA, "md5WithRSAEncryption", true},
    {CTC_SHAwRSA, "sha1WithRSAEncryption", true},
    {CTC_SHAwECDSA, "ecdsa-with-SHA1", true},
    {CTC_SHA224wRSA, "sha224WithRSAEncryption", false},
    {CTC_SHA256wRSA, "sha256WithRSAEncryption", false},
    {CTC_SHA384wRSA, "sha384WithRSAEncryption", false},
    {CTC_SHA512wRSA, "sha512WithRSAEncryption", false},
    {CTC_SHA224wECDSA, "ecdsa-with-SHA224", false},
    {CTC_SHA256wECDSA, "ecdsa-with-SHA256", false},
    {CTC_SHA384wECDSA, "ecdsa-with-SHA384", false},
    {CTC_SHA512wECDSA, "ecdsa-with-SHA512", false},
    {CTC_RSASSAPSS, "rsassaPss", false},
    {CTC_ED25519, "ED25519", false},
};

static int sig_index(unsigned oid)
{
    for (size_t i = 0; i < sizeof sig_names / sizeof sig_names[0]; i++)
        if (sig_names[i].oid == oid)
            return (int)i;
    return -1;
}

const char *tf_cs__sig_name(unsigned sig_oid)
{
    int i = sig_index(sig_oid);

    return i < 0 ? "unknown" : sig_names[i].name;
}

static int digits(const unsigned char *p, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit(p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * algorithm): timegm() is not in C11 or POSIX. */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    long era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

bool tf_cs__asn_time(const unsigned char *p, int len, time_t *out)
{
    int n, yl, year, mon, day, h, mi, s;
    const unsigned char *t;

    if (!p || len < 2)
        return false;
    n = p[1];
    t = p + 2;
    if (n + 2 > len)
        return false;
    yl = p[0] == 0x17 ? 2 : 4; /* UTCTime or GeneralizedTime */
    if ((p[0] != 0x17 && p[0] != 0x18) || n != yl + 11 || t[n - 1] != 'Z')
        return false;
    year = digits(t, yl);
    if (yl == 2 && year >= 0)
        year += year < 50 ? 2000 : 1900; /* RFC 5280 4.1.2.5.1 */
    mon = digits(t + yl, 2);
    day = digits(t + yl + 2, 2);
    h = digits(t + yl + 4, 2);
    mi = digits(t + yl + 6, 2);
    s = digits(t + yl + 8, 2);
    if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > 31 || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || s < 0 || s > 60)
        return false;
    *out = (time_t)(days_from_civil(year, (unsigned)mon, (unsigned)day) * DAY + h * 3600 + mi * 60 +
                    s);
    return true;
}

static char *dup_n(const char *s, size_t n)
{
    char *r = malloc(n + 1);

    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

static bool copy_names(tf_cs__cert_t *c, const DecodedCert *dc)
{
    size_t total = 0;
    char *p;

    for (const DNS_entry *e = dc->altNames; e; e = e->next)
        if (e->type == ASN_DNS_TYPE && e->len > 0)
            total += (size_t)e->len + 1;
    /* Set for any subjectAltName, even one with no DNS name (IP-only). */
    c->has_san = dc->extSubjAltNameSet || dc->altNames != NULL;
    if (total == 0)
        return true;
    c->names = p = malloc(total);
    if (!p)
        return false;
    /* Names are kept in file order (tests/certstore check it). wolfSSL
     * appends each subjectAltName entry to its list only with its
     * compatibility layer (OPENSSL_EXTRA, unless WOLFSSL_ALT_NAMES_NO_REV);
     * otherwise it prepends, and the list is filled from the end. */
#if defined(OPENSSL_EXTRA) && !defined(WOLFSSL_ALT_NAMES_NO_REV)
    const bool reversed = false;
#else
    const bool reversed = true;
#endif
    char *end = p + total;
    for (const DNS_entry *e = dc->altNames; e; e = e->next) {
        if (e->type != ASN_DNS_TYPE || e->len <= 0)
            continue;
        char *dst = reversed ? end - (e->len + 1) : p;
        memcpy(dst, e->name, (size_t)e->len);
        dst[e->len] = '\0';
        if (reversed)
            end = dst;
        else
            p += e->len + 1;
    }
    c->names_len = total;
    return true;
}

static void copy_ids(tf_cs__cert_t *c, const DecodedCert *dc)
{
    static const char hex[] = "0123456789ABCDEF";
    int n = dc->serialSz < 32 ? dc->serialSz : 32;

    memcpy(c->subject_hash, dc->subjectHash, KEYID_SIZE);
    memcpy(c->issuer_hash, dc->issuerHash, KEYID_SIZE);
    c->has_skid = dc->extSubjKeyIdSet;
    c->has_akid = dc->extAuthKeyIdSet;
    memcpy(c->skid, dc->extSubjKeyId, KEYID_SIZE);
    memcpy(c->akid, dc->extAuthKeyId, KEYID_SIZE);
    for (int i = 0; i < n; i++) {
        c->serial[2 * i] = hex[dc->serial[i] >> 4];
        c->serial[2 * i + 1] = hex[dc->serial[i] & 15];
    }
    c->serial[2 * n] = '\0';
}

static bool copy_fields(tf_cs__cert_t *c, const DecodedCert *dc)
{
    copy_ids(c, dc);
    c->self_signed = dc->selfSigned;
    c->is_ca = dc->isCA;
    c->eku_set = dc->extExtKeyUsageSet;
    c->eku_server = (dc->extExtKeyUsage & (EXTKEYUSE_SERVER_AUTH | EXTKEYUSE_ANY)) != 0;
    c->key_oid = dc->keyOID;
    c->sig_oid = dc->signatureOID;
    c->curve_oid = dc->pkCurveOID;
    /* wolfSSL may keep the key inside the source or in its own copy. */
    if (dc->publicKey && dc->pubKeySize > 0) {
        c->spki = malloc(dc->pubKeySize);
        if (!c->spki)
            return false;
        memcpy(c->spki, dc->publicKey, dc->pubKeySize);
        c->spki_len = dc->pubKeySize;
    }
    if (!tf_cs__asn_time(dc->beforeDate, dc->beforeDateLen, &c->not_before) ||
        !tf_cs__asn_time(dc->afterDate, dc->afterDateLen, &c->not_after))
        c->not_before = c->not_after = 0;
    c->subject = dup_n(dc->subject, strlen(dc->subject));
    c->issuer = dup_n(dc->issuer, strlen(dc->issuer));
    c->cn = dup_n(dc->subjectCN ? dc->subjectCN : "", dc->subjectCN ? (size_t)dc->subjectCNLen : 0);
    return c->subject && c->issuer && c->cn && copy_names(c, dc);
}

static const char *key_oid_name(unsigned oid)
{
    switch (oid) {
    case ED25519k:
        return "Ed25519";
    case ED448k:
        return "Ed448";
    case DSAk:
        return "DSA";
    case RSAPSSk:
        return "RSA-PSS";
    default:
        return NULL;
    }
}

int tf_cs__cert_parse(tf_cs__draft_t *d, tf_cs__cert_t *c, unsigned char *der, size_t len)
{
    DecodedCert dc;
    int rc;

    c->der = der;
    c->len = len;
    wc_InitDecodedCert(&dc, der, (word32)len, NULL);
    rc = wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL);
    if (rc != 0 && key_oid_name(dc.keyOID)) {
        tf_cs__diag(d, TF_CS_D_UNSUPPORTED_KEY, TF_EUNSUPPORTED,
                    "%s: line %d: certificate with an unsupported %s key: tlsfront serves RSA "
                    "(2048 bits or more) and ECDSA (P-256, P-384) certificates; get one of those",
                    d->name, c->line, key_oid_name(dc.keyOID));
        rc = TF_EUNSUPPORTED;
    } else if (rc != 0) {
        tf_cs__diag(d, TF_CS_D_MALFORMED, TF_ECERT,
                    "%s: line %d: malformed certificate (%s): export it again from its source, "
                    "e.g. openssl x509 -in cert.crt -out cert.pem",
                    d->name, c->line, wc_GetErrorString(rc));
        rc = TF_ECERT;
    } else if (!copy_fields(c, &dc)) {
        d->oom = true;
        rc = TF_ENOMEM;
    }
    wc_FreeDecodedCert(&dc);
    return rc;
}

void tf_cs__cert_dispose(tf_cs__cert_t *c)
{
    free(c->der);
    free(c->subject);
    free(c->issuer);
    free(c->cn);
    free(c->names);
    free(c->spki);
    memset(c, 0, sizeof *c);
}

/* ---- names ------------------------------------------------------------------- */

/* One definition of name syntax for the loader and the index (names.c), so a
 * name listed as served is one the index can match. */
int tf_cs__name_kind(const char *name, size_t len, const char **reason)
{
    switch (tf_cs__pattern_classify(name, len, NULL, NULL, reason)) {
    case TF_CS_PATTERN_WILDCARD:
        return 2;
    case TF_CS_PATTERN_EXACT:
        return 1;
    default:
        return 0;
    }
}

static void add_name(tf_cs__draft_t *d, const char *raw, bool from_cn)
{
    size_t len = strlen(raw);
    char buf[256];
    const char *why = "not a valid host name";
    int kind;

    if (len >= sizeof buf)
        len = sizeof buf - 1;
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)tolower((unsigned char)raw[i]);
    buf[len] = '\0';
    kind = tf_cs__name_kind(buf, len, &why);
    if (kind == 2 && tf_cs__is_public_suffix(d->opts->trust, buf + 2)) {
        tf_cs__diag(d, TF_CS_D_PUBLIC_WILDCARD, TF_EPUBLICWILDCARD,
                    "%s: wildcard %s covers the public suffix %s: no client accepts it and no CA "
                    "may issue it; get a wildcard under your own domain, e.g. *.example.%s",
                    d->name, buf, buf + 2, buf + 2);
        return;
    }
    if (kind == 0) {
        if (!tf_cs__strlist_add(&d->bad_names, &d->n_bad_names, buf, len))
            d->oom = true;
        tf_cs__diag(d, TF_CS_D_INVALID_NAME, 0,
                    "%s: %s '%s': %s; no client can ask for it by SNI, so it is never "
                    "matched: reissue the certificate without it",
                    d->name, from_cn ? "common name" : "name", buf, why);
        return;
    }
    if (!tf_cs__strlist_add(&d->names, &d->n_names, buf, len))
        d->oom = true;
}

static void check_names(tf_cs__draft_t *d, const tf_cs__cert_t *leaf)
{
    /* With a subjectAltName the CN is never used (RFC 6125), even when the
     * SAN holds only IP addresses or e-mail names. */
    if (leaf->has_san) {
        for (const char *p = leaf->names; p && p < leaf->names + leaf->names_len;
             p += strlen(p) + 1)
            add_name(d, p, false);
        if (leaf->names == NULL)
            tf_cs__diag(d, TF_CS_D_INVALID_NAME, 0,
                        "%s: the subjectAltName holds no DNS name, so the certificate covers "
                        "no host name (its common name is not used when a subjectAltName is "
                        "present): reissue it with subjectAltName = DNS:<name>",
                        d->name);
        return;
    }
    if (leaf->cn[0] == '\0')
        return;
    add_name(d, leaf->cn, true);
    tf_cs__diag(d, TF_CS_D_NO_SAN, 0,
                "%s: certificate has no subjectAltName, so its common name %s is used; current "
                "browsers ignore the common name and will reject it: reissue it with "
                "subjectAltName = DNS:%s",
                d->name, leaf->cn, leaf->cn);
}

/* ---- dates, algorithms, usage -------------------------------------------------- */

static void fmt_date(time_t t, char *buf, size_t n)
{
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, n, "%lld", (long long)t);
}

static long days_between(time_t from, time_t to)
{
    double s = difftime(to, from);

    return (long)(s / DAY) - (s < 0 && (long long)s % DAY != 0);
}

static void check_dates(tf_cs__draft_t *d, const tf_cs__cert_t *c)
{
    char date[40];

    if (c->not_after == 0)
        return;
    if (d->now < c->not_before) {
        fmt_date(c->not_before, date, sizeof date);
        tf_cs__diag(d, TF_CS_D_NOT_YET_VALID, 0,
                    "%s: certificate not valid until %s (in %ld days): clients reject it until "
                    "then; check this machine's clock or keep the current certificate until then",
                    d->name, date, days_between(d->now, c->not_before) + 1);
    }
    fmt_date(c->not_after, date, sizeof date);
    if (d->now > c->not_after)
        tf_cs__diag(d, TF_CS_D_EXPIRED, 0,
                    "%s: certificate expired %ld days ago (%s): clients reject it; renew it",
                    d->name, days_between(c->not_after, d->now), date);
    else if (days_between(d->now, c->not_after) < EXPIRY_WARN_DAYS)
        tf_cs__diag(d, TF_CS_D_EXPIRING, 0,
                    "%s: certificate expires in %ld days (%s): renew it now", d->name,
                    days_between(d->now, c->not_after), date);
}

static void check_intermediate(tf_cs__draft_t *d, const tf_cs__cert_t *c)
{
    char date[40];

    if (c->not_after != 0 && d->now > c->not_after) {
        fmt_date(c->not_after, date, sizeof date);
        tf_cs__diag(d, TF_CS_D_CHAIN_EXPIRED, 0,
                    "%s: line %d: intermediate certificate %s expired on %s: clients reject the "
                    "chain; download the current intermediate from your CA and replace it",
                    d->name, c->line, c->subject, date);
    }
}

static void check_signature(tf_cs__draft_t *d, const tf_cs__cert_t *c, bool leaf)
{
    int i = sig_index(c->sig_oid);

    if (i < 0 || !sig_names[i].weak)
        return;
    tf_cs__diag(d, TF_CS_D_WEAK_SIGNATURE, 0,
                "%s: line %d: %s %s is signed with %s: browsers reject SHA-1 and MD5 "
                "signatures; have it reissued with SHA-256",
                d->name, c->line, leaf ? "certificate" : "intermediate", c->subject,
                sig_names[i].name);
}

static void check_key_and_usage(tf_cs__draft_t *d, const tf_cs__cert_t *leaf)
{
    if (d->key.type == TF_CS_KEY_RSA && d->key.bits > 0 && d->key.bits < 2048)
        tf_cs__diag(d, TF_CS_D_WEAK_RSA, 0,
                    "%s: RSA key of %d bits: clients reject keys under 2048 bits; make a new key "
                    "(openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048) and have "
                    "the certificate reissued for it",
                    d->name, d->key.bits);
    if (leaf->eku_set && !leaf->eku_server)
        tf_cs__diag(d, TF_CS_D_EKU, 0,
                    "%s: certificate's extended key usage does not include serverAuth (TLS web "
                    "server authentication): clients refuse it for a server; have it reissued "
                    "with extendedKeyUsage = serverAuth",
                    d->name);
    if (leaf->self_signed)
        tf_cs__diag(d, TF_CS_D_SELF_SIGNED, 0,
                    "%s: self-signed certificate: only clients told to trust it will connect; "
                    "use a certificate from a CA for public names",
                    d->name);
}

void tf_cs__validate(tf_cs__draft_t *d)
{
    const tf_cs__cert_t *leaf;

    if (d->leaf < 0)
        return;
    leaf = &d->certs[d->leaf];
    check_names(d, leaf);
    check_dates(d, leaf);
    check_signature(d, leaf, true);
    for (size_t i = 1; i < d->n_served; i++) {
        check_intermediate(d, &d->certs[d->served[i]]);
        check_signature(d, &d->certs[d->served[i]], false);
    }
    check_key_and_usage(d, leaf);
}
