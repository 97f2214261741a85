/* What the system knows that validation needs, loaded once per store build:
 * the subjects of the trusted roots (to tell "the issuer is a root clients
 * have" from "an intermediate is missing") and the ICANN public suffixes (to
 * reject *.co.uk). Immutable after load, so loader threads share it freely.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certstore/certstore_internal.h"

struct tf_cs_trust {
    unsigned char (*roots)[TF_CS__HASH_LEN]; /* sorted subject-name hashes */
    size_t n_roots;
    char *psl;       /* the list's text, rules NUL-terminated in place */
    char **suffixes; /* sorted pointers into psl: "com", "co.uk", "*.ck", "!www.ck" */
    size_t n_suffixes;
};

static int read_all(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;

    *out = NULL;
    if (!f)
        return -errno;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *p = realloc(buf, cap = cap ? cap * 2 : 256 * 1024);

            if (!p) {
                rc = TF_ENOMEM;
                goto out;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);

        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        rc = TF_EIO;
out:
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, TF_CS__HASH_LEN);
}

static int add_root(tf_cs_trust_t *t, size_t *cap, const unsigned char *der, size_t len)
{
    DecodedCert dc;

    wc_InitDecodedCert(&dc, der, (word32)len, NULL);
    /* A root wolfSSL cannot parse cannot be the issuer we look for either. */
    if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0) {
        if (t->n_roots == *cap) {
            size_t ncap = *cap ? *cap * 2 : 256;
            void *p = realloc(t->roots, ncap * TF_CS__HASH_LEN);

            if (!p) {
                wc_FreeDecodedCert(&dc);
                return TF_ENOMEM;
            }
            t->roots = p;
            *cap = ncap;
        }
        memset(t->roots[t->n_roots], 0, TF_CS__HASH_LEN);
        memcpy(t->roots[t->n_roots++], dc.subjectHash, KEYID_SIZE);
    }
    wc_FreeDecodedCert(&dc);
    return 0;
}

static int load_roots(tf_cs_trust_t *t, const char *path)
{
    char *data = NULL;
    size_t len = 0, pos = 0, cap = 0;
    int line = 1, rc;
    tf_cs__pem_block_t blk;

    rc = read_all(path, &data, &len);
    while (rc == 0 && tf_cs__pem_next(data, len, &pos, &line, &blk)) {
        unsigned char *der;
        size_t der_len;

        if (blk.kind != TF_CS__PEM_CERT || blk.unterminated)
            continue;
        rc = tf_cs__pem_decode(&blk, &der, &der_len);
        if (rc == TF_ECERT) {
            rc = 0;
            continue;
        }
        if (rc == 0) {
            rc = add_root(t, &cap, der, der_len);
            free(der);
        }
    }
    free(data);
    if (rc == 0 && t->n_roots > 1)
        qsort(t->roots, t->n_roots, TF_CS__HASH_LEN, cmp_hash);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keeps the first word of each rule line, up to the end of the ICANN
 * section: private registrations (github.io, ...) may hold legitimate
 * wildcards, so only registry suffixes count. */
static int parse_psl(tf_cs_trust_t *t)
{
    size_t cap = 0;

    for (char *line = t->psl, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strstr(line, "===END ICANN DOMAINS==="))
            break;
        line[strcspn(line, " \t\r")] = '\0';
        if (line[0] == '\0' || (line[0] == '/' && line[1] == '/'))
            continue;
        if (t->n_suffixes == cap) {
            char **p = realloc(t->suffixes, (cap = cap ? cap * 2 : 8192) * sizeof *p);

            if (!p)
                return TF_ENOMEM;
            t->suffixes = p;
        }
        for (char *c = line; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        t->suffixes[t->n_suffixes++] = line;
    }
    if (t->n_suffixes > 1)
        qsort(t->suffixes, t->n_suffixes, sizeof *t->suffixes, cmp_str);
    return 0;
}

int tf_cs_trust_load(const char *ca_file, const char *psl_file, tf_cs_trust_t **out)
{
    tf_cs_trust_t *t;
    size_t len;
    int rc = 0;

    if (!out)
        return TF_EINVAL;
    *out = NULL;
    t = calloc(1, sizeof *t);
    if (!t)
        return TF_ENOMEM;
    if (ca_file)
        rc = load_roots(t, ca_file);
    if (rc == 0 && psl_file) {
        rc = read_all(psl_file, &t->psl, &len);
        if (rc == 0)
            rc = parse_psl(t);
    }
    if (rc != 0) {
        tf_cs_trust_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int tf_cs_trust_load_system(tf_cs_trust_t **out)
{
    int rc = tf_cs_trust_load(TF_CS_SYSTEM_CA_FILE, TF_CS_SYSTEM_PSL_FILE, out);

    if (rc == -ENOENT)
        rc = tf_cs_trust_load(TF_CS_SYSTEM_CA_FILE, NULL, out);
    return rc;
}

void tf_cs_trust_free(tf_cs_trust_t *t)
{
    if (!t)
        return;
    free(t->roots);
    free(t->suffixes);
    free(t->psl);
    free(t);
}

size_t tf_cs_trust_root_count(const tf_cs_trust_t *t)
{
    return t ? t->n_roots : 0;
}

size_t tf_cs_trust_suffix_count(const tf_cs_trust_t *t)
{
    return t ? t->n_suffixes : 0;
}

bool tf_cs__trust_has_root(const tf_cs_trust_t *t, const unsigned char *subject_hash)
{
    return t && t->n_roots &&
           bsearch(subject_hash, t->roots, t->n_roots, TF_CS__HASH_LEN, cmp_hash) != NULL;
}

static bool has_rule(const tf_cs_trust_t *t, const char *rule)
{
    return bsearch(&rule, t->suffixes, t->n_suffixes, sizeof *t->suffixes, cmp_str) != NULL;
}

bool tf_cs__is_public_suffix(const tf_cs_trust_t *t, const char *suffix)
{
    const char *parent = strchr(suffix, '.');
    char buf[260];

    if (!parent)
        return true; /* a top-level domain, with or without the list */
    if (!t || t->n_suffixes == 0 || strlen(suffix) > 250)
        return false;
    if (has_rule(t, suffix))
        return true;
    snprintf(buf, sizeof buf, "!%s", suffix);
    if (has_rule(t, buf))
        return false;
    snprintf(buf, sizeof buf, "*.%s", parent + 1);
    return has_rule(t, buf);
}

int tf_cs_ca_load(struct WOLFSSL_CTX *ctx, const char *ca_file, char *err, size_t errlen)
{
    const char *ca = ca_file != NULL ? ca_file : TF_CS_SYSTEM_CA_FILE;
    if (access(ca, R_OK) != 0) {
        int rc = -errno;
        snprintf(err, errlen, "%s: cannot read the CA file: %s", ca, strerror(errno));
        return rc;
    }
    if (wolfSSL_CTX_load_verify_locations(ctx, ca, NULL) != WOLFSSL_SUCCESS) {
        snprintf(err, errlen, "%s: no usable CA certificate in it: check the file (PEM)", ca);
        return TF_ETLS;
    }
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
    return 0;
}
