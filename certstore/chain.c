/* The served chain: which certificate is the leaf, and in which order its
 * issuers go on the wire.
 *
 * The file's order is not trusted: operators paste certificates in any order
 * (a pkcs12 export puts the key first, some CAs mail the chain root first).
 * The leaf is the certificate the private key belongs to; each next element
 * is the certificate whose subject is the previous one's issuer. That is what
 * clients need, so a misordered file is served correctly and only warned
 * about, since other servers reading the same file would not fix it.
 */
#include <stdio.h>
#include <string.h>

#include "certstore/certstore_internal.h"

/* Display name of a certificate for messages: its subject, or its line. */
static const char *who(const tf_cs__cert_t *c)
{
    return c->subject && c->subject[0] ? c->subject : "(no subject)";
}

/* Without a usable key, the leaf is the first certificate that issued no
 * other in the file and is not a CA: what the operator most likely meant. */
static int guess_leaf(const tf_cs__draft_t *d)
{
    for (size_t i = 0; i < d->n_certs; i++) {
        bool issuer = false;

        for (size_t j = 0; j < d->n_certs && !issuer; j++)
            issuer =
                j != i && !d->certs[j].self_signed &&
                memcmp(d->certs[j].issuer_hash, d->certs[i].subject_hash, TF_CS__HASH_LEN) == 0;
        if (!issuer && !d->certs[i].is_ca)
            return (int)i;
    }
    return d->n_certs ? 0 : -1;
}

static void key_mismatch(tf_cs__draft_t *d, int leaf)
{
    const tf_cs__cert_t *c = &d->certs[leaf];

    tf_cs__diag(d, TF_CS_D_KEY_MISMATCH, TF_EKEYMISMATCH,
                "%s: the private key (%s line %d) does not belong to the certificate %s "
                "(line %d) nor to any other certificate in the file: compare "
                "`openssl x509 -noout -pubkey -in leaf.pem | sha256sum` with "
                "`openssl pkey -pubout -in key.pem | sha256sum` and use the key the "
                "certificate was issued for",
                d->name, d->key_name, d->key.line, who(c), c->line);
}

static int pick_leaf(tf_cs__draft_t *d)
{
    int first = -1;

    if (!d->key.pub)
        return guess_leaf(d);
    for (size_t i = 0; i < d->n_certs; i++) {
        if (!tf_cs__key_matches(&d->key, &d->certs[i]))
            continue;
        /* A CA's key in an operator's bundle would be odd; prefer an end entity. */
        if (!d->certs[i].is_ca)
            return (int)i;
        if (first < 0)
            first = (int)i;
    }
    if (first >= 0)
        return first;
    first = guess_leaf(d);
    key_mismatch(d, first);
    return first;
}

static bool issued_by(const tf_cs__cert_t *child, const tf_cs__cert_t *parent)
{
    if (memcmp(child->issuer_hash, parent->subject_hash, TF_CS__HASH_LEN) != 0)
        return false;
    /* Same name, different key (a re-keyed CA): the key identifiers decide. */
    if (child->has_akid && parent->has_skid)
        return memcmp(child->akid, parent->skid, TF_CS__HASH_LEN) == 0;
    return true;
}

static int find_issuer(const tf_cs__draft_t *d, const tf_cs__cert_t *child, const bool *used)
{
    for (size_t i = 0; i < d->n_certs; i++)
        if (!used[i] && issued_by(child, &d->certs[i]))
            return (int)i;
    return -1;
}

static void missing_intermediate(tf_cs__draft_t *d, const tf_cs__cert_t *leaf)
{
    tf_cs__diag(d, TF_CS_D_MISSING_INTERMEDIATE, 0,
                "%s: missing intermediate certificate: the issuer of %s (%s) is neither in the "
                "file nor a root of the system trust store; browsers may cope, but clients "
                "without it, such as Android, will fail: append the intermediate certificate "
                "from your CA after the certificate",
                d->name, who(leaf), leaf->issuer);
}

static void root_included(tf_cs__draft_t *d, const tf_cs__cert_t *root)
{
    tf_cs__diag(d, TF_CS_D_ROOT_INCLUDED, 0,
                "%s: line %d: root certificate %s is included: it is not sent (clients have "
                "their own copy and would ignore it); remove it from the file",
                d->name, root->line, who(root));
}

/* Follows issuer -> subject from the leaf; marks what it uses. */
static void follow(tf_cs__draft_t *d, bool *used)
{
    const tf_cs__cert_t *cur = &d->certs[d->leaf];

    d->served[0] = d->leaf;
    d->n_served = 1;
    used[d->leaf] = true;
    while (!cur->self_signed) {
        int next = find_issuer(d, cur, used);

        if (next < 0) {
            /* Only the leaf's own issuer is checked (SPEC §4.2). Higher up, a
             * chain that stops short of a system root is what every private
             * CA looks like (its root is not in the system store), so a
             * warning there would be noise for them. */
            if (cur == &d->certs[d->leaf] &&
                !tf_cs__trust_has_root(d->opts->trust, cur->issuer_hash))
                missing_intermediate(d, cur);
            return;
        }
        used[next] = true;
        cur = &d->certs[next];
        if (cur->self_signed) {
            root_included(d, cur);
            return;
        }
        d->served[d->n_served++] = next;
    }
}

static void check_order(tf_cs__draft_t *d)
{
    char order[512];
    size_t n = 0;
    bool ok = true;

    for (size_t i = 1; i < d->n_served; i++)
        ok = ok && d->certs[d->served[i]].index > d->certs[d->served[i - 1]].index;
    /* The leaf must come first of all certificates, as other servers expect. */
    ok = ok && d->certs[d->leaf].index == 0;
    if (ok)
        return;
    order[0] = '\0';
    for (size_t i = 0; i < d->n_served && n < sizeof order; i++)
        n += (size_t)snprintf(order + n, sizeof order - n, "%sline %d", i ? ", then " : "",
                              d->certs[d->served[i]].line);
    tf_cs__diag(d, TF_CS_D_CHAIN_ORDER, 0,
                "%s: certificates out of order: tlsfront serves them right (%s), but other "
                "servers send the file's order; fix the file: the certificate first, then each "
                "issuer, then the key (cat leaf.crt intermediate.crt leaf.key > bundle.pem)",
                d->name, order);
}

static void report_unrelated(tf_cs__draft_t *d, const bool *used)
{
    const tf_cs__cert_t *leaf = &d->certs[d->leaf];

    for (size_t i = 0; i < d->n_certs; i++) {
        if (used[i])
            continue;
        tf_cs__diag(d, TF_CS_D_UNRELATED_CERT, 0,
                    "%s: line %d: certificate %s is not part of the chain of %s: it is not "
                    "sent; remove it from the file",
                    d->name, d->certs[i].line, who(&d->certs[i]), who(leaf));
    }
}

void tf_cs__chain_build(tf_cs__draft_t *d)
{
    bool used[TF_CS__MAX_CERTS] = {false};

    d->n_served = 0;
    d->leaf = d->n_certs ? pick_leaf(d) : -1;
    if (d->leaf < 0)
        return;
    follow(d, used);
    check_order(d);
    report_unrelated(d, used);
}
