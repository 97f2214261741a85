/* PEM block scanner (RFC 7468, leniently).
 *
 * Operators' files are not clean: a UTF-8 BOM, CRLF line endings, the text
 * `openssl x509 -text` prints, `Bag Attributes` from `openssl pkcs12 -nodes`,
 * or a stray comment. The scanner only looks for BEGIN/END lines and ignores
 * everything between blocks; the base64 goes to wolfSSL's decoder.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certstore/certstore_internal.h"

static const char begin_mark[] = "-----BEGIN ";
static const char end_mark[] = "-----END ";
static const char dashes[] = "-----";

void tf_cs__wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n--)
        *v++ = 0;
}

/* memmem is a GNU extension; this is the portable few lines. */
static const char *find(const char *hay, size_t hay_len, const char *needle, size_t n)
{
    if (n == 0 || hay_len < n)
        return NULL;
    for (const char *p = hay, *last = hay + hay_len - n; p <= last; p++) {
        p = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, n) == 0)
            return p;
    }
    return NULL;
}

static int count_lines(const char *p, const char *end)
{
    int n = 0;

    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

static bool label_is(const tf_cs__pem_block_t *b, const char *s)
{
    size_t n = strlen(s);

    return b->label_len == n && memcmp(b->label, s, n) == 0;
}

static bool label_ends(const tf_cs__pem_block_t *b, const char *s)
{
    size_t n = strlen(s);

    return b->label_len >= n && memcmp(b->label + b->label_len - n, s, n) == 0;
}

/* The legacy OpenSSL encryption header, "Proc-Type: 4,ENCRYPTED". */
static bool has_proc_type_encrypted(const tf_cs__pem_block_t *b)
{
    const char *p = find(b->body, b->body_len, "Proc-Type:", 10);

    return p && find(p, b->body_len - (size_t)(p - b->body), "ENCRYPTED", 9);
}

static tf_cs__pem_kind_t classify(const tf_cs__pem_block_t *b)
{
    if (label_is(b, "CERTIFICATE") || label_is(b, "X509 CERTIFICATE") ||
        label_is(b, "TRUSTED CERTIFICATE"))
        return TF_CS__PEM_CERT;
    if (label_is(b, "EC PARAMETERS"))
        return TF_CS__PEM_EC_PARAMS;
    if (!label_ends(b, "PRIVATE KEY"))
        return TF_CS__PEM_OTHER;
    if (label_is(b, "ENCRYPTED PRIVATE KEY") || has_proc_type_encrypted(b))
        return TF_CS__PEM_KEY_ENCRYPTED;
    if (label_is(b, "PRIVATE KEY"))
        return TF_CS__PEM_KEY_PKCS8;
    if (label_is(b, "RSA PRIVATE KEY"))
        return TF_CS__PEM_KEY_PKCS1;
    if (label_is(b, "EC PRIVATE KEY"))
        return TF_CS__PEM_KEY_SEC1;
    return TF_CS__PEM_KEY_OTHER;
}

/* Reads the label after "-----BEGIN " up to the closing dashes on the same
 * line. Returns where the body starts (right after those dashes, so a block
 * pasted onto one line still parses), or NULL when it is not a BEGIN line. */
static const char *parse_label(const char *p, const char *end, tf_cs__pem_block_t *blk)
{
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *close;

    if (!eol)
        eol = end;
    close = find(p, (size_t)(eol - p), dashes, sizeof dashes - 1);
    if (!close || close == p || (size_t)(close - p) > 64)
        return NULL;
    blk->label = p;
    blk->label_len = (size_t)(close - p);
    return close + sizeof dashes - 1;
}

/* Finds the END of the block whose body starts at body. The END must carry
 * the same label and come before the next BEGIN: a block cut short is then
 * reported at its BEGIN, and the blocks after it are still read. Returns
 * where scanning resumes. */
static const char *find_end(tf_cs__pem_block_t *blk, const char *end)
{
    const char *body = blk->body, *e, *next;
    char want[96];
    size_t n;

    snprintf(want, sizeof want, "%s%.*s%s", end_mark, (int)blk->label_len, blk->label, dashes);
    n = strlen(want);
    e = find(body, (size_t)(end - body), want, n);
    next = find(body, (size_t)(end - body), begin_mark, sizeof begin_mark - 1);
    if (e && (!next || e < next)) {
        blk->body_len = (size_t)(e - body);
        return e + n;
    }
    blk->unterminated = true;
    blk->body_len = (size_t)((next ? next : end) - body);
    return next ? next : end;
}

bool tf_cs__pem_next(const char *data, size_t len, size_t *pos, int *line, tf_cs__pem_block_t *blk)
{
    const char *end = data + len;
    const char *p = data + *pos;

    for (;;) {
        const char *b = find(p, (size_t)(end - p), begin_mark, sizeof begin_mark - 1);
        const char *resume;

        if (!b) {
            *pos = len;
            return false;
        }
        *line += count_lines(p, b);
        memset(blk, 0, sizeof *blk);
        blk->body = parse_label(b + sizeof begin_mark - 1, end, blk);
        if (!blk->body) {
            p = b + 1; /* "-----BEGIN " without a closing "-----": not a block */
            continue;
        }
        blk->line = *line;
        resume = find_end(blk, end);
        *line += count_lines(b, resume);
        *pos = (size_t)(resume - data);
        blk->kind = classify(blk);
        blk->trusted = label_is(blk, "TRUSTED CERTIFICATE");
        return true;
    }
}

static bool is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
}

/* Copies the base64 characters of the body to out, skipping whitespace and
 * RFC 1421 header lines ("Name: value"). Returns the count, or -1 when the
 * body holds anything that is not base64. */
static long gather_b64(const char *body, size_t len, char *out)
{
    const char *p = body, *end = body + len;
    long n = 0;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon;

        if (!eol)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && n == 0) {
            p = eol + (eol < end); /* a header line, before any base64 */
            continue;
        }
        for (; p < eol; p++) {
            unsigned char c = (unsigned char)*p;

            if (c == ' ' || c == '\t' || c == '\r')
                continue;
            if (!is_b64(c))
                return -1;
            out[n++] = (char)c;
        }
        p = eol + (eol < end);
    }
    return n;
}

int tf_cs__pem_decode(const tf_cs__pem_block_t *blk, unsigned char **der, size_t *der_len)
{
    char *b64 = NULL;
    unsigned char *out = NULL;
    long n;
    word32 out_len;
    int rc = TF_ECERT;

    *der = NULL;
    *der_len = 0;
    b64 = malloc(blk->body_len + 1);
    if (!b64)
        return TF_ENOMEM;
    n = gather_b64(blk->body, blk->body_len, b64);
    if (n <= 0 || n % 4 != 0)
        goto out;
    out_len = (word32)(n / 4 * 3);
    out = malloc(out_len);
    if (!out) {
        rc = TF_ENOMEM;
        goto out;
    }
    if (Base64_Decode((const byte *)b64, (word32)n, out, &out_len) != 0 || out_len == 0)
        goto out;
    *der = out;
    *der_len = out_len;
    out = NULL;
    rc = 0;
out:
    if (out) {
        tf_cs__wipe(out, (size_t)(n / 4 * 3));
        free(out);
    }
    tf_cs__wipe(b64, blk->body_len + 1);
    free(b64);
    return rc;
}

bool tf_cs__pem_has_key(const char *data, size_t len)
{
    size_t pos = 0;
    int line = 1;
    tf_cs__pem_block_t blk;

    while (tf_cs__pem_next(data, len, &pos, &line, &blk))
        if (blk.kind >= TF_CS__PEM_KEY_PKCS1 && blk.kind <= TF_CS__PEM_KEY_OTHER)
            return true;
    return false;
}
