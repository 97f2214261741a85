/* Internals of acme/, shared by its files and its tests. Not a public API. */
#ifndef TF_ACME_ACME_INTERNAL_H
#define TF_ACME_ACME_INTERNAL_H

#include "acme/acme.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* P-256 coordinates and an ES256 signature half, in bytes. */
#define TF_ACME__P256_LEN 32
#define TF_ACME__RSA_BITS 2048
#define TF_ACME__RSA_MIN_BITS 2048
#define TF_ACME__RSA_MAX_BITS 4096

struct tf_acme_key {
    tf_acme_key_type_t type;
    union {
        ecc_key ec;
        RsaKey rsa;
    } u;
};

/* A new generator seeded from the system (one per operation: the ACME thread
 * signs a few requests a minute, and a generator of its own per call keeps
 * every function free to run on any thread). 0 or TF_ECRYPTO. */
int tf_acme__rng_init(WC_RNG *rng);

/* Signs the JWS signing input DATA (LEN bytes) with KEY: ES256 r||s (64
 * bytes) or RS256 (the modulus' size). SIG has room for CAP bytes; *SIGLEN
 * receives the length. 0, TF_ETOOBIG or TF_ECRYPTO. */
int tf_acme__sign(tf_acme_key_t *key, const void *data, size_t len, unsigned char *sig, size_t cap,
                  size_t *siglen);

/* The JWS "alg" for KEY: "ES256" or "RS256". */
const char *tf_acme__alg(const tf_acme_key_t *key);

/* Encodes a DER length at OUT (room for 4 bytes); returns the bytes used.
 * Lengths up to 16 MiB. */
size_t tf_acme__der_len(size_t n, unsigned char *out);

/* Reads the tag at P[*POS] (must be TAG) and its definite length into *CLEN,
 * leaving *POS at the contents; false when malformed or past LEN. */
bool tf_acme__der_header(const unsigned char *p, size_t len, size_t *pos, unsigned char tag,
                         size_t *clen);

/* A lower-case DNS name of LDH labels, 1-253 characters: what the ACME
 * client orders (wildcards and the rest are refused before). */
bool tf_acme__host_ok(const char *host);

/* Sets CERT's subject CN (when HOST fits X.520's 64 characters) and its
 * subjectAltName to the dNSName HOST. 0, or TF_EINVAL when HOST is not
 * tf_acme__host_ok(). */
int tf_acme__cert_names(Cert *cert, const char *host);

/* Writes the subjectAltName GeneralNames (a SEQUENCE of one dNSName HOST)
 * into OUT (CAP bytes); returns its length, or 0 when it does not fit. */
size_t tf_acme__san_der(const char *host, unsigned char *out, size_t cap);

/* http.c: a URL split into its parts (pointers into one malloc'd copy). */
typedef struct {
    char *buf;        /* the copy; free with tf_acme__url_dispose */
    bool tls;         /* https */
    const char *host; /* without brackets for an IPv6 literal */
    const char *port; /* "443" or "80" by default */
    const char *path; /* "/..." with the query; "/" when empty */
    bool host_v6;     /* the host was a bracketed literal */
} tf_acme__url_t;

/* Splits url; returns 0 or TF_EINVAL (err says why). */
int tf_acme__url_parse(const char *url, tf_acme__url_t *out, char *err, size_t errlen);
void tf_acme__url_dispose(tf_acme__url_t *u);

#endif
