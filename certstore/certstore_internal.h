/* certstore internals shared by bundle.c, frozen.c, pem.c, key.c, chain.c,
 * trust.c, intern.c and the module's tests. Not a public API.
 *
 * Loading works on a draft (tf_cs__draft_t): scratch allocations that the
 * loader fills step by step (PEM blocks -> parsed certificates and key ->
 * chain -> checks). frozen.c then freezes the draft into one allocation, the
 * immutable tf_cs_bundle_t, and frees the draft.
 */
#ifndef TF_CERTSTORE_CERTSTORE_INTERNAL_H
#define TF_CERTSTORE_CERTSTORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "certstore/certstore.h"

#define TF_CS__FORMAT(a, b) __attribute__((format(printf, a, b)))

/* Limits on untrusted input: far above any real bundle. */
#define TF_CS__MAX_FILE (1024 * 1024)
#define TF_CS__MAX_CERTS 32
#define TF_CS__MAX_KEYS 8
#define TF_CS__HASH_LEN 32 /* room for wolfSSL's KEYID_SIZE name/key-id hashes */

/* ---- pem.c ---------------------------------------------------------------- */

typedef enum {
    TF_CS__PEM_CERT,          /* CERTIFICATE, X509 CERTIFICATE, TRUSTED CERTIFICATE */
    TF_CS__PEM_KEY_PKCS1,     /* RSA PRIVATE KEY */
    TF_CS__PEM_KEY_PKCS8,     /* PRIVATE KEY */
    TF_CS__PEM_KEY_SEC1,      /* EC PRIVATE KEY */
    TF_CS__PEM_KEY_ENCRYPTED, /* ENCRYPTED PRIVATE KEY, or any key with Proc-Type ENCRYPTED */
    TF_CS__PEM_KEY_OTHER,     /* DSA/OPENSSH/... PRIVATE KEY: not supported */
    TF_CS__PEM_EC_PARAMS,     /* EC PARAMETERS, written by openssl ecparam -genkey */
    TF_CS__PEM_OTHER          /* anything else (CSR, CRL, PUBLIC KEY): ignored */
} tf_cs__pem_kind_t;

typedef struct {
    tf_cs__pem_kind_t kind;
    const char *label; /* points into the input; not NUL-terminated */
    size_t label_len;
    const char *body; /* between the BEGIN and END lines, headers included */
    size_t body_len;
    int line;          /* 1-based line of the BEGIN line */
    bool trusted;      /* TRUSTED CERTIFICATE: DER has trailing OpenSSL aux data */
    bool unterminated; /* BEGIN without a matching END (body runs to the end) */
} tf_cs__pem_block_t;

/* Finds the next "-----BEGIN X-----" at or after *pos in data[0..len),
 * tolerating CRLF, a BOM, NULs and any text between blocks. Returns true and
 * fills *blk (advancing *pos past its END line), false when none is left.
 * *line tracks the current line number across calls (start it at 1). */
bool tf_cs__pem_next(const char *data, size_t len, size_t *pos, int *line, tf_cs__pem_block_t *blk);

/* Decodes a block's base64 (RFC 7468 headers skipped). On success *der is a
 * new malloc'd buffer (free it; wipe it first when it held a key).
 * Returns 0, TF_ECERT for invalid base64, TF_ENOMEM. */
int tf_cs__pem_decode(const tf_cs__pem_block_t *blk, unsigned char **der, size_t *der_len);

/* True when data holds a private-key block of any kind (encrypted too). */
bool tf_cs__pem_has_key(const char *data, size_t len);

/* Zeroes memory in a way the compiler may not elide. */
void tf_cs__wipe(void *p, size_t n);

/* ---- parsed material ------------------------------------------------------- */

typedef struct {
    unsigned char *der; /* owned */
    size_t len;
    int line;  /* line of the BEGIN in the file, for messages */
    int index; /* position among the file's certificates, 0-based */
    unsigned char subject_hash[TF_CS__HASH_LEN];
    unsigned char issuer_hash[TF_CS__HASH_LEN];
    unsigned char skid[TF_CS__HASH_LEN];
    unsigned char akid[TF_CS__HASH_LEN];
    bool has_skid, has_akid, self_signed, is_ca, eku_set, eku_server;
    bool has_san;
    unsigned key_oid, sig_oid, curve_oid;
    unsigned char *spki; /* owned copy of the SubjectPublicKeyInfo */
    size_t spki_len;
    char *subject, *issuer, *cn; /* owned strings */
    char *names;                 /* owned: SAN dNSNames, each NUL-terminated, packed */
    size_t names_len;
    time_t not_before, not_after;
    char serial[2 * 32 + 1];
} tf_cs__cert_t;

typedef struct {
    unsigned char *der; /* owned; wiped on free */
    size_t len;
    tf_cs__pem_kind_t kind;
    tf_cs_key_type_t type;
    int bits;
    int curve_id;       /* wolfSSL ECC curve id, EC only */
    unsigned char *pub; /* owned: RSA modulus||exponent, or EC x963 point */
    size_t pub_len;
    int line;
    bool from_sibling;
} tf_cs__key_t;

typedef struct {
    tf_cs_severity_t severity;
    tf_cs_diag_code_t code;
    int err;
    char *message; /* owned */
} tf_cs__diag_t;

typedef struct {
    const char *name;     /* borrowed: the path or name given to the loader */
    const char *key_name; /* where the key came from (name or sibling path) */
    const tf_cs_load_opts_t *opts;
    time_t now;

    tf_cs__cert_t certs[TF_CS__MAX_CERTS];
    size_t n_certs;
    tf_cs__key_t key; /* the one usable key, if any */
    int n_keys;       /* key blocks seen, usable or not */

    int leaf; /* index into certs, -1 when none */
    int served[TF_CS__MAX_CERTS];
    size_t n_served;

    char **names; /* owned, lower-cased; valid names and wildcards */
    size_t n_names;
    char **bad_names;
    size_t n_bad_names;

    tf_cs__diag_t *diags;
    size_t n_diags, cap_diags;
    int key_lines[TF_CS__MAX_KEYS]; /* lines of the first key blocks, for messages */
    int bad_certs;                  /* certificate blocks that could not be parsed */
    bool no_pem;                    /* reported: the input has no PEM block at all */
    bool oom;
} tf_cs__draft_t;

/* ---- bundle.c --------------------------------------------------------------- */

/* Records a diagnostic (severity from TF_CS_DIAG_MAP); err is the TF_E* or
 * -errno code for a fatal one, ignored otherwise. An allocation failure sets
 * d->oom and is reported by the loader. */
void tf_cs__diag(tf_cs__draft_t *d, tf_cs_diag_code_t code, int err, const char *fmt, ...)
    TF_CS__FORMAT(4, 5);

/* Appends a copy of name to a string list; false on out of memory. */
bool tf_cs__strlist_add(char ***list, size_t *n, const char *name, size_t len);

/* ---- frozen.c --------------------------------------------------------------- */

/* Copies a finished draft into one new allocation (taking references on
 * shared intermediates from intern, which may be NULL). The draft is left
 * as it was; the caller disposes of it. A draft with a fatal diagnostic
 * gets no chain and no key. Returns 0 or TF_ENOMEM. */
int tf_cs__freeze(const tf_cs__draft_t *d, tf_cs_intern_t *intern, tf_cs_bundle_t **out);

/* ---- key.c ------------------------------------------------------------------ */

/* Parses a decoded private key of the given PEM kind into *key (taking
 * ownership of der). Records fatal diagnostics for unsupported or malformed
 * keys itself; returns 0 when the key is usable. */
int tf_cs__key_parse(tf_cs__draft_t *d, tf_cs__key_t *key, unsigned char *der, size_t len);

/* True when cert's public key is the public half of key. */
bool tf_cs__key_matches(const tf_cs__key_t *key, const tf_cs__cert_t *cert);

void tf_cs__key_dispose(tf_cs__key_t *key);

/* ---- cert parsing (validate.c) ---------------------------------------------- */

/* Parses DER into *c (taking ownership of der). Returns 0, or records a
 * fatal diagnostic and returns its code. */
int tf_cs__cert_parse(tf_cs__draft_t *d, tf_cs__cert_t *c, unsigned char *der, size_t len);
void tf_cs__cert_dispose(tf_cs__cert_t *c);

/* "ecdsa-with-SHA256" for a wolfSSL signature OID sum; "unknown" if unknown. */
const char *tf_cs__sig_name(unsigned sig_oid);

/* Converts an ASN.1 UTCTime/GeneralizedTime (tag, length, digits) to time_t. */
bool tf_cs__asn_time(const unsigned char *p, int len, time_t *out);

/* ---- chain.c ---------------------------------------------------------------- */

/* Picks the leaf (the certificate the key belongs to), orders the served
 * chain by issuer -> subject, and records chain diagnostics. */
void tf_cs__chain_build(tf_cs__draft_t *d);

/* ---- bundle.c ---------------------------------------------------------------- */

/* NAME.key beside NAME.pem, NAME.crt or NAME.cer (extension in any case), as a
 * malloc'd path the caller frees; NULL for other names or out of memory. The
 * loader reads it and the store fingerprints it: one rule for both. */
char *tf_cs__sibling_key_path(const char *path);

/* ---- validate.c ------------------------------------------------------------- */

/* Names, dates, algorithms, key size and usage checks on the chosen leaf. */
void tf_cs__validate(tf_cs__draft_t *d);

/* Host-name syntax: 1 valid name, 2 valid wildcard ("*.example.com"), 0
 * invalid. name is lower-case ASCII. */
int tf_cs__name_kind(const char *name, size_t len, const char **reason);

/* ---- trust.c ---------------------------------------------------------------- */

bool tf_cs__trust_has_root(const tf_cs_trust_t *t, const unsigned char *subject_hash);

/* True when suffix (lower-case, no leading "*.") is a public suffix: one
 * label, or an ICANN rule of the public suffix list. t may be NULL. */
bool tf_cs__is_public_suffix(const tf_cs_trust_t *t, const char *suffix);

/* ---- intern.c --------------------------------------------------------------- */

/* A shared, immutable DER blob (an intermediate certificate). */
typedef struct tf_cs__blob {
    atomic_uint refs;
    uint64_t hash;
    struct tf_cs__blob *next; /* intern table chain; guarded by the table lock */
    size_t len;
    unsigned char der[];
} tf_cs__blob_t;

/* Returns a blob holding a copy of der with one reference for the caller:
 * the table's existing copy when it has one. table may be NULL (a private
 * blob). NULL on out of memory. */
tf_cs__blob_t *tf_cs__intern(tf_cs_intern_t *table, const unsigned char *der, size_t len);
void tf_cs__blob_unref(tf_cs__blob_t *blob);

#endif
