/* Internals of acme/, shared by its files and its tests. Not a public API. */
#ifndef TF_ACME_ACME_INTERNAL_H
#define TF_ACME_ACME_INTERNAL_H

#include "acme/acme.h"
#include "common/util.h"

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

/* ---- the protocol client (client.c, order.c, problem.c, renewal.c) ----- */

#include <pthread.h>

struct tf_acme_client {
    char *directory, *ca_file, *email, *storage, *eab_kid;
    unsigned char *eab_mac;
    size_t eab_mac_len;
    tf_acme_key_type_t key_type;
    unsigned challenges;
    tf_acme_challenges_t *answers;
    unsigned poll_max_s;
    tf_acme_http_t *http;
    tf_acme_key_t *account;
    char thumbprint[TF_ACME_THUMBPRINT_LEN + 1];
    char *kid;   /* the account URL, NULL until known */
    json_t *dir; /* the directory object, NULL until fetched */
    char *nonce; /* the last Replay-Nonce, NULL when used */
    unsigned nonce_retries;
    pthread_mutex_t lock; /* guards cancelled, for the timed waits */
    pthread_cond_t wake;
    bool cancelled;
};

/* POST-as-GET when PAYLOAD is NULL. */
typedef struct {
    const char *url;
    const char *payload;
    bool jwk; /* sign with the JWK (newAccount), not the kid */
} tf_acme__post_t;

/* problem.c. Sets P's status and detail (printf); type left as is. */
void tf_acme__problem_set(tf_acme_problem_t *p, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* P from a problem object (an error response's body, a challenge's or an
 * order's "error"): type, detail, subproblems (compact JSON), and the
 * object's status member, else STATUS. */
void tf_acme__problem_from_json(tf_acme_problem_t *p, const json_t *doc, int status);
/* P from an error response: its problem document when the content type
 * says application/problem+json, else a detail naming URL, the status and
 * an excerpt of the body. retry_after_s from RETRY_AFTER (may be NULL). */
void tf_acme__problem_parse(tf_acme_problem_t *p, const char *url, int status,
                            const char *content_type, const char *body, size_t len,
                            const char *retry_after);
/* Seconds to wait from a Retry-After value (delta-seconds or an
 * IMF-fixdate, relative to NOW); 0 when absent, past or malformed. */
uint64_t tf_acme__retry_after(const char *value, int64_t now);

/* client.c. The directory's URL for NAME ("newOrder", "renewalInfo"), or
 * NULL (fetching the directory first; *RC then says why: TF_ENOTFOUND when
 * the directory has no such member). */
const char *tf_acme__dir_url(tf_acme_client_t *c, const char *name, int *rc,
                             tf_acme_problem_t *prob);
/* One signed POST, with a nonce (HEAD newNonce when none is kept) and
 * badNonce retried. 0 with *RESP a 2xx answer (dispose it); TF_EACME with
 * PROB for an error status; a transport code; -ECANCELED. */
int tf_acme__post(tf_acme_client_t *c, const tf_acme__post_t *req, tf_acme_http_response_t *resp,
                  tf_acme_problem_t *prob);
/* An unsigned GET (renewalInfo), same returns. */
int tf_acme__get(tf_acme_client_t *c, const char *url, tf_acme_http_response_t *resp,
                 tf_acme_problem_t *prob);
/* The account: from storage/account.json, else newAccount. 0 or as
 * tf_acme__post(). */
int tf_acme__account(tf_acme_client_t *c, tf_acme_problem_t *prob);
/* Forgets the account URL (the server no longer knows it). */
void tf_acme__account_forget(tf_acme_client_t *c);
/* Waits MS milliseconds unless cancelled: 0 or -ECANCELED. */
int tf_acme__pause(tf_acme_client_t *c, uint64_t ms);
/* A JSON object from a response body, or NULL (PROB says why: TF_EIO). */
json_t *tf_acme__json(const tf_acme_http_response_t *r, const char *url, tf_acme_problem_t *prob);
/* Writes LEN bytes to PATH atomically, mode 0600 (a temporary file in the
 * same directory, fsync, rename). 0 or -errno. */
int tf_acme__write_file(const char *path, const void *data, size_t len);

/* order.c: the challenge of AUTHZ to answer, by ALLOWED
 * (TF_CONF_ACME_*): http-01 first; NULL when none is offered. */
const json_t *tf_acme__choose_challenge(const json_t *authz, unsigned allowed);

/* renewal.c. The DER of the first certificate in PEM (free()). 0 or
 * TF_EINVAL / TF_ENOMEM. */
int tf_acme__leaf_der(const char *pem, size_t len, unsigned char **der, size_t *derlen);
/* The validity of a certificate (DER), Unix seconds. 0 or TF_EINVAL. */
int tf_acme__cert_dates(const unsigned char *der, size_t len, int64_t *not_before,
                        int64_t *not_after);
/* RFC 9773 §4.1 certID: base64url(AKI keyIdentifier) "." base64url(the
 * serial's DER content octets) (free()). 0, TF_EINVAL (malformed, no AKI
 * keyIdentifier), TF_ENOMEM. */
int tf_acme__cert_id(const unsigned char *der, size_t len, char **out);
/* An RFC 3339 date-time into Unix seconds (fractions dropped, offsets
 * applied). */
bool tf_acme__rfc3339(const char *s, int64_t *out);

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
    int64_t ari_at;        /* the time picked in that window (RFC 9773 §4.2) */
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
 * same directory, fsync, rename over PATH (with NOREPLACE, a link that
 * fails with -EEXIST when PATH exists meanwhile), fsync of the directory.
 * 0 or -errno (the temporary file is removed). */
int tf_acme__write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          bool noreplace);

#endif
