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
#include <sys/types.h>

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

/* ---- the manager's storage (state.c) ------------------------------------ */

/* What the manager knows of one name, kept as STORAGE/certs/HOST.json
 * (mode 0600) so that a restart, and other processes sharing STORAGE, see
 * it. */
typedef struct {
    char path[TF_ACME_PATH_MAX]; /* the HOST.pem written; "" when none */
    char sha256[65];             /* lower-case hex of the bytes written */
    int64_t not_before, not_after;
    /* A file about to replace PATH: recorded before the rename, so that a
     * crash (or another process looking) between the two still knows it as
     * ours. Promoted to the fields above once renamed. */
    char pending_sha256[65];
    int64_t pending_not_before, pending_not_after;
    char *order_url;   /* an order under way (resumed after a restart), or NULL */
    int64_t renew_at;  /* when the certificate written is due for renewal */
    int64_t ari_start; /* renewalInfo's suggested window, 0: none known */
    int64_t ari_end;
    int64_t ari_checked;   /* when renewalInfo was last asked */
    unsigned failures;     /* in a row */
    int64_t backoff_until; /* no order before this */
    json_t *last_problem;  /* {"type", "detail", "subproblems"} of the last failure, or NULL */
} tf_acme__record_t;

/* Reads the record of HOST into *R (zeroed first, also on failure).
 * Returns 0, TF_ENOTFOUND (none yet), -errno, or TF_EINVAL (not a record:
 * it is then ignored as if absent). */
int tf_acme__record_load(const char *storage, const char *host, tf_acme__record_t *r);

/* Writes R as HOST's record, atomically (temp file, fsync, rename), mode
 * 0600, creating STORAGE/certs (0700) when missing. 0, TF_ENOMEM or -errno. */
int tf_acme__record_save(const char *storage, const char *host, const tf_acme__record_t *r);

void tf_acme__record_dispose(tf_acme__record_t *r);

/* Creates DIR (and missing parents) with MODE when missing. 0 or -errno. */
int tf_acme__mkdirs(const char *dir, mode_t mode);

/* Takes STORAGE/locks/HOST.lock (flock, exclusive, without waiting) into
 * *FD. 0; -EAGAIN when another process (or another manager) holds it; or
 * -errno. Release with tf_acme__unlock(). */
int tf_acme__lock(const char *storage, const char *host, int *fd);
void tf_acme__unlock(int fd);

/* SHA-256 of the file at PATH as lower-case hex into HEX. 0, -errno
 * (-ENOENT: no such file), TF_ETOOBIG (over 1 MiB) or TF_ECRYPTO. */
int tf_acme__file_sha256(const char *path, char hex[65]);

/* SHA-256 of LEN bytes as lower-case hex. 0 or TF_ECRYPTO. */
int tf_acme__sha256_hex(const void *data, size_t len, char hex[65]);

/* Writes LEN bytes as PATH with MODE atomically: a temporary file in the
 * same directory, fsync, rename over PATH, fsync of the directory. 0 or
 * -errno (the temporary file is removed). */
int tf_acme__write_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
