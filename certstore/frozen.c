/* The immutable bundle: freezing a draft into one allocation, reference
 * counting and the accessors.
 *
 * Memory: a bundle is one malloc holding the struct, its arrays, strings,
 * leaf DER and key DER (about 1-3 KiB); intermediates are shared blobs from
 * the intern table. That is what keeps 10,000 bundles within 8 KiB each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certstore/certstore_internal.h"
#include "certstore/names.h"

struct tf_cs_bundle {
    atomic_uint refs;
    tf_cs_status_t status;
    int error;
    tf_cs_key_type_t key_type;
    int key_bits;
    time_t not_before, not_after;
    size_t size;
    const char *name, *subject, *issuer, *serial, *sig_alg, *key_desc;
    tf_cs_der_t key;
    size_t n_chain;
    tf_cs_der_t *chain;
    const char **chain_subjects;
    tf_cs__blob_t **blobs; /* n_chain - 1 shared intermediates */
    size_t n_names, n_bad;
    const char **names, **bad;
    size_t n_diags;
    tf_cs_diag_t *diags;
};

static bool has_fatal(const tf_cs__draft_t *d)
{
    for (size_t i = 0; i < d->n_diags; i++)
        if (d->diags[i].severity == TF_CS_FATAL)
            return true;
    return false;
}

/* ---- freezing -------------------------------------------------------------------------- */

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 1;
}

static const char *put_str(char **p, const char *s)
{
    size_t n = str_size(s);
    char *r = *p;

    memcpy(r, s ? s : "", n);
    *p += n;
    return r;
}

static const unsigned char *put_bytes(char **p, const void *src, size_t n)
{
    unsigned char *r = (unsigned char *)*p;

    memcpy(r, src, n);
    *p += n;
    return r;
}

static void key_desc(const tf_cs__draft_t *d, char *buf, size_t n)
{
    if (d->key.type == TF_CS_KEY_RSA)
        snprintf(buf, n, "RSA %d", d->key.bits);
    else if (d->key.type == TF_CS_KEY_EC)
        snprintf(buf, n, "ECDSA P-%d", d->key.bits);
    else
        buf[0] = '\0';
}

/* Sizes: the arrays (all multiples of the pointer size) come right after
 * the struct, then bytes, so nothing needs padding. */
static size_t frozen_size(const tf_cs__draft_t *d, size_t n_chain, const char *desc)
{
    const tf_cs__cert_t *leaf = d->leaf >= 0 ? &d->certs[d->leaf] : NULL;
    size_t n = sizeof(struct tf_cs_bundle);

    n += n_chain * (sizeof(tf_cs_der_t) + sizeof(char *) + sizeof(tf_cs__blob_t *));
    n += (d->n_names + d->n_bad_names) * sizeof(char *) + d->n_diags * sizeof(tf_cs_diag_t);
    n += str_size(d->name) + str_size(desc) + (n_chain ? d->key.len + leaf->len : 0);
    if (leaf)
        n += str_size(leaf->subject) + str_size(leaf->issuer) + str_size(leaf->serial);
    else
        n += 3;
    for (size_t i = 0; i < n_chain; i++)
        n += str_size(d->certs[d->served[i]].subject);
    for (size_t i = 0; i < d->n_names; i++)
        n += str_size(d->names[i]);
    for (size_t i = 0; i < d->n_bad_names; i++)
        n += str_size(d->bad_names[i]);
    for (size_t i = 0; i < d->n_diags; i++)
        n += str_size(d->diags[i].message);
    return n;
}

static void fill_arrays(tf_cs_bundle_t *b, const tf_cs__draft_t *d, char **p)
{
    b->chain = (tf_cs_der_t *)(void *)*p;
    *p += b->n_chain * sizeof *b->chain;
    b->chain_subjects = (const char **)(void *)*p;
    *p += b->n_chain * sizeof *b->chain_subjects;
    b->blobs = (tf_cs__blob_t **)(void *)*p;
    *p += b->n_chain * sizeof *b->blobs;
    b->names = (const char **)(void *)*p;
    *p += d->n_names * sizeof *b->names;
    b->bad = (const char **)(void *)*p;
    *p += d->n_bad_names * sizeof *b->bad;
    b->diags = (tf_cs_diag_t *)(void *)*p;
    *p += d->n_diags * sizeof *b->diags;
}

/* Diagnostics sorted errors first, then warnings, then notes, each group in
 * the order found: what an operator should read first. */
static void fill_diags(tf_cs_bundle_t *b, const tf_cs__draft_t *d, char **p)
{
    size_t k = 0;

    for (int sev = TF_CS_FATAL; sev >= TF_CS_INFO; sev--) {
        for (size_t i = 0; i < d->n_diags; i++) {
            const tf_cs__diag_t *g = &d->diags[i];

            if ((int)g->severity != sev)
                continue;
            b->diags[k++] = (tf_cs_diag_t){g->severity, g->code, g->err, put_str(p, g->message)};
            if (g->severity == TF_CS_FATAL && b->error == 0)
                b->error = g->err;
            if (b->status < (tf_cs_status_t)g->severity && g->severity != TF_CS_INFO)
                b->status = g->severity == TF_CS_FATAL ? TF_CS_ERROR : TF_CS_WARN;
        }
    }
    b->n_diags = k;
}

static int fill_chain(tf_cs_bundle_t *b, const tf_cs__draft_t *d, tf_cs_intern_t *intern, char **p)
{
    const tf_cs__cert_t *leaf = &d->certs[d->leaf];

    b->chain[0] = (tf_cs_der_t){put_bytes(p, leaf->der, leaf->len), leaf->len};
    b->chain_subjects[0] = put_str(p, leaf->subject);
    b->key = (tf_cs_der_t){put_bytes(p, d->key.der, d->key.len), d->key.len};
    for (size_t i = 1; i < b->n_chain; i++) {
        const tf_cs__cert_t *c = &d->certs[d->served[i]];

        b->blobs[i - 1] = tf_cs__intern(intern, c->der, c->len);
        if (!b->blobs[i - 1]) {
            b->n_chain = i; /* what is filled so far, for the unref */
            return TF_ENOMEM;
        }
        b->chain[i] = (tf_cs_der_t){b->blobs[i - 1]->der, b->blobs[i - 1]->len};
        b->chain_subjects[i] = put_str(p, c->subject);
    }
    return 0;
}

int tf_cs__freeze(const tf_cs__draft_t *d, tf_cs_intern_t *intern, tf_cs_bundle_t **out)
{
    const tf_cs__cert_t *leaf = d->leaf >= 0 ? &d->certs[d->leaf] : NULL;
    bool usable = leaf && !has_fatal(d) && d->key.der;
    size_t n_chain = usable ? d->n_served : 0, size;
    char desc[32], *p;
    tf_cs_bundle_t *b;

    key_desc(d, desc, sizeof desc);
    size = frozen_size(d, n_chain, desc);
    b = calloc(1, size);
    if (!b)
        return TF_ENOMEM;
    atomic_init(&b->refs, 1);
    b->size = size;
    b->n_chain = n_chain;
    b->n_names = d->n_names;
    b->n_bad = d->n_bad_names;
    p = (char *)(b + 1);
    fill_arrays(b, d, &p);
    b->name = put_str(&p, d->name);
    b->key_desc = put_str(&p, desc);
    b->subject = put_str(&p, leaf ? leaf->subject : "");
    b->issuer = put_str(&p, leaf ? leaf->issuer : "");
    b->serial = put_str(&p, leaf ? leaf->serial : "");
    b->sig_alg = leaf ? tf_cs__sig_name(leaf->sig_oid) : "";
    b->not_before = leaf ? leaf->not_before : 0;
    b->not_after = leaf ? leaf->not_after : 0;
    b->key_type = d->key.type;
    b->key_bits = d->key.bits;
    for (size_t i = 0; i < d->n_names; i++)
        b->names[i] = put_str(&p, d->names[i]);
    for (size_t i = 0; i < d->n_bad_names; i++)
        b->bad[i] = put_str(&p, d->bad_names[i]);
    fill_diags(b, d, &p);
    if (n_chain && fill_chain(b, d, intern, &p) != 0) {
        tf_cs_bundle_unref(b);
        return TF_ENOMEM;
    }
    *out = b;
    return 0;
}

/* ---- the bundle object ---------------------------------------------------------------- */

tf_cs_bundle_t *tf_cs_bundle_ref(tf_cs_bundle_t *b)
{
    if (b)
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void tf_cs_bundle_unref(tf_cs_bundle_t *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 1; i < b->n_chain; i++)
        tf_cs__blob_unref(b->blobs[i - 1]);
    tf_cs__wipe((void *)b->key.der, b->key.len);
    free(b);
}

void tf_cs_bundle_free(tf_cs_bundle_t *b)
{
    tf_cs_bundle_unref(b);
}

tf_cs_status_t tf_cs_bundle_status(const tf_cs_bundle_t *b)
{
    return b->status;
}
int tf_cs_bundle_error(const tf_cs_bundle_t *b)
{
    return b->error;
}
const char *tf_cs_bundle_name(const tf_cs_bundle_t *b)
{
    return b->name;
}
const char *tf_cs_bundle_subject(const tf_cs_bundle_t *b)
{
    return b->subject;
}
const char *tf_cs_bundle_issuer(const tf_cs_bundle_t *b)
{
    return b->issuer;
}
const char *tf_cs_bundle_serial(const tf_cs_bundle_t *b)
{
    return b->serial;
}
const char *tf_cs_bundle_sig_alg(const tf_cs_bundle_t *b)
{
    return b->sig_alg;
}
time_t tf_cs_bundle_not_before(const tf_cs_bundle_t *b)
{
    return b->not_before;
}
time_t tf_cs_bundle_not_after(const tf_cs_bundle_t *b)
{
    return b->not_after;
}
size_t tf_cs_bundle_name_count(const tf_cs_bundle_t *b)
{
    return b->n_names;
}
size_t tf_cs_bundle_bad_name_count(const tf_cs_bundle_t *b)
{
    return b->n_bad;
}
size_t tf_cs_bundle_chain_len(const tf_cs_bundle_t *b)
{
    return b->n_chain;
}
tf_cs_der_t tf_cs_bundle_key_der(const tf_cs_bundle_t *b)
{
    return b->key;
}
tf_cs_key_type_t tf_cs_bundle_key_type(const tf_cs_bundle_t *b)
{
    return b->key_type;
}
int tf_cs_bundle_key_bits(const tf_cs_bundle_t *b)
{
    return b->key_bits;
}
const char *tf_cs_bundle_key_desc(const tf_cs_bundle_t *b)
{
    return b->key_desc;
}
size_t tf_cs_bundle_diag_count(const tf_cs_bundle_t *b)
{
    return b->n_diags;
}
size_t tf_cs_bundle_mem_size(const tf_cs_bundle_t *b)
{
    return b->size;
}

long tf_cs_bundle_days_left(const tf_cs_bundle_t *b, time_t now)
{
    double s = difftime(b->not_after, now);
    long days = (long)(s / 86400);

    return s < 0 && (long long)s % 86400 != 0 ? days - 1 : days;
}

const char *tf_cs_bundle_name_at(const tf_cs_bundle_t *b, size_t i)
{
    return i < b->n_names ? b->names[i] : NULL;
}

const char *tf_cs_bundle_bad_name_at(const tf_cs_bundle_t *b, size_t i)
{
    return i < b->n_bad ? b->bad[i] : NULL;
}

bool tf_cs_bundle_covers(const tf_cs_bundle_t *b, const char *host)
{
    return tf_cs__name_covered(host, b->names, b->n_names);
}

tf_cs_der_t tf_cs_bundle_chain_at(const tf_cs_bundle_t *b, size_t i)
{
    return i < b->n_chain ? b->chain[i] : (tf_cs_der_t){NULL, 0};
}

const char *tf_cs_bundle_chain_subject(const tf_cs_bundle_t *b, size_t i)
{
    return i < b->n_chain ? b->chain_subjects[i] : NULL;
}

const tf_cs_diag_t *tf_cs_bundle_diag_at(const tf_cs_bundle_t *b, size_t i)
{
    return i < b->n_diags ? &b->diags[i] : NULL;
}

const tf_cs_diag_t *tf_cs_bundle_find_diag(const tf_cs_bundle_t *b, tf_cs_diag_code_t code)
{
    for (size_t i = 0; i < b->n_diags; i++)
        if (b->diags[i].code == code)
            return &b->diags[i];
    return NULL;
}

const char *tf_cs_status_name(tf_cs_status_t status)
{
    static const char *const names[] = {"OK", "WARN", "ERROR"};

    return (unsigned)status <= TF_CS_ERROR ? names[status] : "unknown";
}
