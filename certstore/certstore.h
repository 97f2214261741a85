/* tlsfront certificate store: bundle loading and validation (SPEC §4.1-§4.3).
 *
 * A pure library: bytes or files in, parsed bundles out. No sockets, no event
 * loop, no logging; detail for an operator goes into each bundle's diagnostics,
 * every message shaped "FILE: reason: what to do".
 *
 * Objects:
 *   tf_cs_trust_t   what the system knows that validation needs: the subjects
 *                   of the roots in the system trust store and the public
 *                   suffix list. Built once per store build, immutable, shared
 *                   read-only by any number of loader threads.
 *   tf_cs_intern_t  a table that de-duplicates intermediate certificates
 *                   across bundles (10,000 tenants behind one CA share one
 *                   copy). Thread-safe; optional.
 *   tf_cs_bundle_t  the parsed material of one bundle: served chain, key,
 *                   names, metadata and diagnostics. Immutable once loaded,
 *                   reference counted, safe to share between threads. It is
 *                   not the store's entry for a file (path, mtime, last good
 *                   version): that belongs to the index built on top of it.
 *
 * Threads: every function may be called from several threads at once on
 * different bundles; trust and intern objects may be shared. wolfSSL_Init()
 * must have been called once by the program before any load.
 */
#ifndef TF_CERTSTORE_CERTSTORE_H
#define TF_CERTSTORE_CERTSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/err.h"

#ifndef TF_CS_MUST_CHECK
#define TF_CS_MUST_CHECK __attribute__((warn_unused_result))
#endif

/* ---- trust: system roots and public suffixes ---------------------------- */

typedef struct tf_cs_trust tf_cs_trust_t;

#define TF_CS_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define TF_CS_SYSTEM_PSL_FILE "/usr/share/publicsuffix/public_suffix_list.dat"

/* Loads the roots of ca_file (a PEM concatenation; NULL: none) and the ICANN
 * section of psl_file (the publicsuffix.org list; NULL: none). Without a list,
 * only single-label wildcards (*.com) count as public. A file that cannot be
 * read is an error (-errno), so a typo is not silently ignored.
 * On success *out is a new object; free it with tf_cs_trust_free() once no
 * load uses it any more. Costs a few milliseconds: build it once per store. */
TF_CS_MUST_CHECK int tf_cs_trust_load(const char *ca_file, const char *psl_file,
                                      tf_cs_trust_t **out);

/* tf_cs_trust_load() with the Debian locations above; a missing public suffix
 * list is tolerated (the single-label check remains). */
TF_CS_MUST_CHECK int tf_cs_trust_load_system(tf_cs_trust_t **out);

void tf_cs_trust_free(tf_cs_trust_t *trust);

/* Makes a wolfSSL context verify its peers against the CA certificates of
 * ca_file (PEM), or of the system store (TF_CS_SYSTEM_CA_FILE) when ca_file
 * is NULL: the one way every TLS client of tlsfront (the ACME client, TLS
 * backends) loads its trust. 0; -errno when the file cannot be read;
 * TF_ETLS when it holds no usable certificate. The reason, naming the file,
 * goes into err. */
struct WOLFSSL_CTX;
TF_CS_MUST_CHECK int tf_cs_ca_load(struct WOLFSSL_CTX *ctx, const char *ca_file, char *err,
                                   size_t errlen);

/* Number of distinct root subjects and public-suffix rules loaded. */
size_t tf_cs_trust_root_count(const tf_cs_trust_t *trust);
size_t tf_cs_trust_suffix_count(const tf_cs_trust_t *trust);

/* ---- intern table for shared intermediates ------------------------------ */

typedef struct tf_cs_intern tf_cs_intern_t;

TF_CS_MUST_CHECK int tf_cs_intern_new(tf_cs_intern_t **out);

/* Drops the table's own references. Bundles keep the blobs they use, so a
 * table may be freed before or after the bundles loaded through it. */
void tf_cs_intern_free(tf_cs_intern_t *table);

/* Forgets certificates no bundle uses any more (call after a reload has
 * released old bundles). Returns how many were freed. */
size_t tf_cs_intern_sweep(tf_cs_intern_t *table);

/* Number of distinct certificates currently held by the table. */
size_t tf_cs_intern_count(tf_cs_intern_t *table);

/* ---- bundles ------------------------------------------------------------- */

typedef struct tf_cs_bundle tf_cs_bundle_t;

typedef enum { TF_CS_OK = 0, TF_CS_WARN = 1, TF_CS_ERROR = 2 } tf_cs_status_t;
typedef enum { TF_CS_INFO = 0, TF_CS_WARNING = 1, TF_CS_FATAL = 2 } tf_cs_severity_t;
typedef enum { TF_CS_KEY_NONE = 0, TF_CS_KEY_RSA, TF_CS_KEY_EC } tf_cs_key_type_t;

/* X(code, slug, severity). The slug is stable: it appears in JSON and tests.
 * Append only. */
#define TF_CS_DIAG_MAP(X)                                                                          \
    X(TF_CS_D_UNREADABLE, "unreadable", TF_CS_FATAL)                                               \
    X(TF_CS_D_TOO_BIG, "too_big", TF_CS_FATAL)                                                     \
    X(TF_CS_D_MALFORMED, "malformed", TF_CS_FATAL)                                                 \
    X(TF_CS_D_NO_CERT, "no_certificate", TF_CS_FATAL)                                              \
    X(TF_CS_D_NO_KEY, "no_private_key", TF_CS_FATAL)                                               \
    X(TF_CS_D_MULTIPLE_KEYS, "multiple_private_keys", TF_CS_FATAL)                                 \
    X(TF_CS_D_KEY_MISMATCH, "key_mismatch", TF_CS_FATAL)                                           \
    X(TF_CS_D_KEY_ENCRYPTED, "key_encrypted", TF_CS_FATAL)                                         \
    X(TF_CS_D_UNSUPPORTED_KEY, "unsupported_key", TF_CS_FATAL)                                     \
    X(TF_CS_D_PUBLIC_WILDCARD, "public_wildcard", TF_CS_FATAL)                                     \
    X(TF_CS_D_CHAIN_ORDER, "chain_order", TF_CS_WARNING)                                           \
    X(TF_CS_D_MISSING_INTERMEDIATE, "missing_intermediate", TF_CS_WARNING)                         \
    X(TF_CS_D_ROOT_INCLUDED, "root_included", TF_CS_WARNING)                                       \
    X(TF_CS_D_UNRELATED_CERT, "unrelated_certificate", TF_CS_WARNING)                              \
    X(TF_CS_D_EXPIRED, "expired", TF_CS_WARNING)                                                   \
    X(TF_CS_D_NOT_YET_VALID, "not_yet_valid", TF_CS_WARNING)                                       \
    X(TF_CS_D_EXPIRING, "expiring", TF_CS_WARNING)                                                 \
    X(TF_CS_D_CHAIN_EXPIRED, "intermediate_expired", TF_CS_WARNING)                                \
    X(TF_CS_D_WEAK_RSA, "weak_rsa_key", TF_CS_WARNING)                                             \
    X(TF_CS_D_WEAK_SIGNATURE, "weak_signature", TF_CS_WARNING)                                     \
    X(TF_CS_D_EKU, "eku_without_server_auth", TF_CS_WARNING)                                       \
    X(TF_CS_D_KEY_FILE_MODE, "key_file_mode", TF_CS_WARNING)                                       \
    X(TF_CS_D_INVALID_NAME, "invalid_name", TF_CS_WARNING)                                         \
    X(TF_CS_D_NO_SAN, "no_subject_alt_name", TF_CS_WARNING)                                        \
    X(TF_CS_D_SELF_SIGNED, "self_signed", TF_CS_INFO)                                              \
    X(TF_CS_D_IGNORED_BLOCK, "ignored_block", TF_CS_INFO)                                          \
    X(TF_CS_D_SIBLING_KEY, "sibling_key", TF_CS_INFO)

typedef enum {
#define TF_CS_DIAG_ENUM(code, slug, sev) code,
    TF_CS_DIAG_MAP(TF_CS_DIAG_ENUM)
#undef TF_CS_DIAG_ENUM
        TF_CS_D_COUNT
} tf_cs_diag_code_t;

typedef struct {
    tf_cs_severity_t severity;
    tf_cs_diag_code_t code;
    int err;             /* TF_E* (or -errno) for TF_CS_FATAL, else 0 */
    const char *message; /* "FILE: reason: what to do", owned by the bundle */
} tf_cs_diag_t;

/* A DER buffer owned by the bundle it came from. */
typedef struct {
    const unsigned char *der;
    size_t len;
} tf_cs_der_t;

typedef struct {
    const tf_cs_trust_t *trust; /* NULL: no system roots, single-label suffix check only */
    tf_cs_intern_t *intern;     /* NULL: intermediates are private to each bundle */
    time_t now;                 /* the time validity is judged at; 0: time(NULL) */
} tf_cs_load_opts_t;

/* Loads and validates the bundle at path (SPEC §4.1, §4.2). When the file has
 * no private key and is named NAME.pem or NAME.crt, NAME.key beside it is
 * read. The file holding the key is checked for group/other permissions.
 *
 * Returns 0 when the bundle is usable (status OK or WARN), or a negative code
 * for a rejected bundle: the TF_E* code (or -errno for an unreadable file) of
 * its first error. In both cases *out receives a new bundle holding every
 * diagnostic; the caller owns one reference and releases it with
 * tf_cs_bundle_unref(). Only TF_ENOMEM and TF_EINVAL leave *out NULL.
 * A rejected bundle must not be served: it has no key and no chain. */
TF_CS_MUST_CHECK int tf_cs_bundle_load_file(const char *path, const tf_cs_load_opts_t *opts,
                                            tf_cs_bundle_t **out);

/* The same from memory, for tests, fuzzing and admin uploads. name is used in
 * messages only. key/keylen: the content of a separate key file (NULL/0 for
 * none), read only when data holds no private key, as a sibling NAME.key
 * is. No file-mode check. data and key are not retained; a key's bytes are
 * not wiped (the caller owns them). */
TF_CS_MUST_CHECK int tf_cs_bundle_load_mem(const char *name, const void *data, size_t len,
                                           const void *key, size_t keylen,
                                           const tf_cs_load_opts_t *opts, tf_cs_bundle_t **out);

/* Reference counting (atomic): _ref returns its argument; _unref frees the
 * bundle, wiping its private key, when the last reference goes. NULL is a
 * no-op. tf_cs_bundle_free() is the same as tf_cs_bundle_unref(). */
tf_cs_bundle_t *tf_cs_bundle_ref(tf_cs_bundle_t *b);
void tf_cs_bundle_unref(tf_cs_bundle_t *b);
void tf_cs_bundle_free(tf_cs_bundle_t *b);

/* Accessors. Every pointer returned stays valid while the caller holds a
 * reference to the bundle; never free one. Strings are NUL-terminated; fields
 * that could not be read (rejected bundle) are "" or 0. */
tf_cs_status_t tf_cs_bundle_status(const tf_cs_bundle_t *b);
int tf_cs_bundle_error(const tf_cs_bundle_t *b);        /* first fatal's err, 0 if none */
const char *tf_cs_bundle_name(const tf_cs_bundle_t *b); /* path or name given */
const char *tf_cs_bundle_subject(const tf_cs_bundle_t *b);
const char *tf_cs_bundle_issuer(const tf_cs_bundle_t *b);
const char *tf_cs_bundle_serial(const tf_cs_bundle_t *b);  /* upper-case hex */
const char *tf_cs_bundle_sig_alg(const tf_cs_bundle_t *b); /* "ecdsa-with-SHA256" */
time_t tf_cs_bundle_not_before(const tf_cs_bundle_t *b);
time_t tf_cs_bundle_not_after(const tf_cs_bundle_t *b);
/* Whole days from now until notAfter, rounded down; negative once expired. */
long tf_cs_bundle_days_left(const tf_cs_bundle_t *b, time_t now);

/* DNS names the certificate serves, lower-cased: the SAN dNSNames, or the CN
 * when there is no SAN. Valid wildcards ("*.example.com") are included. */
size_t tf_cs_bundle_name_count(const tf_cs_bundle_t *b);
const char *tf_cs_bundle_name_at(const tf_cs_bundle_t *b, size_t i);
/* Names that are not valid host names or wildcards ("f*.example.com",
 * "*.*.example.com", "a.*.example.com"): reported, never matched. */
size_t tf_cs_bundle_bad_name_count(const tf_cs_bundle_t *b);
const char *tf_cs_bundle_bad_name_at(const tf_cs_bundle_t *b, size_t i);

/* Whether the certificate's names cover `host` by the rules SNI selection
 * uses (SPEC §4.4 rules 1-3): exactly, or through a wildcard standing for
 * exactly one left-most label ("*.example.com" covers "a.example.com", not
 * "example.com", not "a.b.example.com"). `host` is NUL-terminated, without
 * a port, in any case, with or without one trailing dot. A host that is not
 * a valid host name (letters, digits and '-' in labels of 1-63 characters,
 * 253 characters at most: "a_b.example.com" is not one) is covered by
 * nothing. Pure: no allocation, any thread. The 421 check of an HTTP request
 * whose Host differs from its connection's SNI. */
bool tf_cs_bundle_covers(const tf_cs_bundle_t *b, const char *host);

/* The chain as served: leaf first, then each issuer; never the root.
 * Empty for a rejected bundle. */
size_t tf_cs_bundle_chain_len(const tf_cs_bundle_t *b);
tf_cs_der_t tf_cs_bundle_chain_at(const tf_cs_bundle_t *b, size_t i);
/* Subject of chain element i, for display. */
const char *tf_cs_bundle_chain_subject(const tf_cs_bundle_t *b, size_t i);

/* The private key as DER (PKCS#1, SEC1 or PKCS#8, as in the file: all three
 * are accepted by wolfSSL_CTX_use_PrivateKey_buffer with SSL_FILETYPE_ASN1).
 * Secret: never log or print it. Empty for a rejected bundle. */
tf_cs_der_t tf_cs_bundle_key_der(const tf_cs_bundle_t *b);
tf_cs_key_type_t tf_cs_bundle_key_type(const tf_cs_bundle_t *b);
int tf_cs_bundle_key_bits(const tf_cs_bundle_t *b);
/* "RSA 2048", "ECDSA P-256", or "" when unknown. */
const char *tf_cs_bundle_key_desc(const tf_cs_bundle_t *b);

size_t tf_cs_bundle_diag_count(const tf_cs_bundle_t *b);
const tf_cs_diag_t *tf_cs_bundle_diag_at(const tf_cs_bundle_t *b, size_t i);
/* The first diagnostic with this code, or NULL. */
const tf_cs_diag_t *tf_cs_bundle_find_diag(const tf_cs_bundle_t *b, tf_cs_diag_code_t code);

/* Bytes the bundle itself occupies (its one allocation, not shared
 * intermediates), for memory accounting. */
size_t tf_cs_bundle_mem_size(const tf_cs_bundle_t *b);

/* Stable slug of a diagnostic code ("chain_order"); "unknown" when out of range. */
const char *tf_cs_diag_slug(tf_cs_diag_code_t code);
const char *tf_cs_status_name(tf_cs_status_t status); /* "OK", "WARN", "ERROR" */

#endif
