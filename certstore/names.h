/* Host-name rules of the certificate store (SPEC §4.4 rules 1-3). Internal to certstore/.
 *
 * Pure functions: no allocation, no I/O, no locale, no global state; safe from any thread
 * and from the TLS SNI callback. Every output goes into a caller's buffer of
 * TF_CS_NAME_BUF bytes, which a stack array can hold.
 *
 * What a valid host name is, for SNI and for certificate names alike:
 * - ASCII letters, digits and '-' only (LDH, RFC 1123 / RFC 5890). An underscore is
 *   rejected: SNI carries host names, not the service labels of SRV or DKIM records, and
 *   a certificate name with one could never be matched by a valid SNI anyway.
 * - labels of 1 to 63 characters that neither start nor end with '-'; no empty label
 *   ("a..b", ".a");
 * - at most 253 characters once one trailing dot is removed ("example.com." is valid,
 *   "example.com.." is not, "." is not);
 * - upper case is folded to lower case (ASCII only; IDNs arrive as xn-- A-labels).
 * Numeric labels are allowed ("1.2.3.4" is syntactically a host name; it simply matches
 * no certificate name unless one equals it).
 */
#ifndef TF_CERTSTORE_NAMES_H
#define TF_CERTSTORE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* Longest normalized host name, and the buffer size that holds it with its NUL. */
#define TF_CS_NAME_MAX 253
#define TF_CS_NAME_BUF (TF_CS_NAME_MAX + 1)
/* Longest label. */
#define TF_CS_LABEL_MAX 63

/* Normalizes a host name received as SNI (SPEC §4.4 rule 1): `len` bytes at `in`, not
 * necessarily NUL-terminated, possibly containing any byte. On success writes the lower-case
 * name without its trailing dot and a NUL into `out` (TF_CS_NAME_BUF bytes; `out` may be
 * `in` itself) and returns its length, 1..253. An invalid name returns TF_EINVAL, and the
 * content of `out` is then unspecified: such a name matches no certificate. */
int tf_cs__sni_normalize(const char *in, size_t len, char *out);

/* For a normalized host name, the key to look up among wildcard bases (SPEC §4.4 rule 3):
 * the name without its left-most label, so "a.example.com" gives "example.com", which is
 * where "*.example.com" is filed. Returns a pointer into `name` and its length in
 * *base_len, or NULL for a single-label name (nothing can cover it by wildcard). This is
 * exactly what makes "*.example.com" miss "example.com" (whose base is "com") and
 * "a.b.example.com" (whose base is "b.example.com"). */
const char *tf_cs__sni_wildcard_base(const char *name, size_t len, size_t *base_len);

typedef enum tf_cs__pattern_kind {
    TF_CS_PATTERN_INVALID = 0, /* matches nothing; *reason says why */
    TF_CS_PATTERN_EXACT,       /* "www.example.com": key is the normalized name */
    TF_CS_PATTERN_WILDCARD,    /* "*.example.com": key is the normalized base "example.com" */
} tf_cs__pattern_kind_t;

/* Classifies a name taken from a certificate (a SAN DNS name, or the CN when there is no
 * SAN): `len` bytes at `name`. Writes its lookup key and a NUL into `key`
 * (TF_CS_NAME_BUF bytes) and the key length into *key_len (either may be NULL when only
 * the kind matters). A wildcard is valid only as the whole left-most label followed by a
 * valid host name ("*.example.com"); "f*.example.com", "*.*.example.com",
 * "a.*.example.com", "*" and "*." are INVALID, and *reason (if non-NULL) then points at a
 * static sentence for the operator, suitable after "name 'X': ". The same normalization as
 * SNI applies (case, one trailing dot). A wildcard over a single label ("*.com") is
 * classified WILDCARD here: refusing public suffixes is the loader's decision (SPEC §4.2);
 * it can test for a key without a dot. */
tf_cs__pattern_kind_t tf_cs__pattern_classify(const char *name, size_t len, char *key,
                                              size_t *key_len, const char **reason);

/* Does a certificate with these names cover `host` by the rules above (exact, or a
 * one-label wildcard)? `host` is a NUL-terminated host name without a port, in any case,
 * with or without one trailing dot (it is normalized here); `names` are the certificate's
 * raw names as tf_cs__pattern_classify takes them, NUL-terminated. An invalid host or an
 * invalid pattern covers nothing. O(n); allocation-free. tf_cs_bundle_covers() (certstore.h)
 * applies it to a bundle's names for the 421 check of proxy/. */
bool tf_cs__name_covered(const char *host, const char *const *names, size_t n);

#endif
