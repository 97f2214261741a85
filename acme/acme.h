/* acme/ — the built-in ACME client's pieces (SPEC §13, RFC 8555).
 *
 * Threads: the ACME work (http.c's HTTPS client) runs on a thread of its
 * own and blocks; the event loops only read the challenge table. Nothing
 * here includes uv.h or logs: functions return codes and put words into
 * caller buffers.
 */
#ifndef TF_ACME_ACME_H
#define TF_ACME_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the challenge answers (challenges.c) ------------------------------ */

/* What the proxy answers to the ACME server's validation while an order is
 * pending: http-01 (RFC 8555 §8.3) token -> key authorization, served on
 * listen.http; tls-alpn-01 (RFC 8737) host -> validation certificate and its
 * key, served on listen.https to a ClientHello offering `acme-tls/1`.
 *
 * Thread-safe: the ACME thread puts and removes, the workers' loops read
 * (a read-write lock; readers never wait for each other). Readers get
 * malloc'd copies: no pointer into the table outlives the lock. Created by
 * `tlsfront run` and freed after every worker has stopped. */
typedef struct tf_acme_challenges tf_acme_challenges_t;

/* Returns 0 with *out set, or TF_ENOMEM. Free with
 * tf_acme_challenges_free(). */
int tf_acme_challenges_new(tf_acme_challenges_t **out) __attribute__((warn_unused_result));
void tf_acme_challenges_free(tf_acme_challenges_t *t);

/* http-01: the answer to GET /.well-known/acme-challenge/TOKEN. A token
 * already present gets the new key authorization. Both strings are copied.
 * Returns 0, TF_EINVAL (empty token or key authorization) or TF_ENOMEM. */
int tf_acme_http01_put(tf_acme_challenges_t *t, const char *token, const char *key_auth)
    __attribute__((warn_unused_result));
/* Removes the token's answer (nothing when absent). */
void tf_acme_http01_remove(tf_acme_challenges_t *t, const char *token);
/* A copy of the token's key authorization into *key_auth (malloc'd,
 * NUL-terminated, the caller frees) and its length into *len. Returns 0,
 * TF_ENOTFOUND or TF_ENOMEM; *key_auth is NULL unless 0. */
int tf_acme_http01_get(tf_acme_challenges_t *t, const char *token, char **key_auth, size_t *len)
    __attribute__((warn_unused_result));

/* tls-alpn-01: the validation certificate (DER) and its private key (DER:
 * PKCS#8, or SEC1 for an EC key) for host, matched without regard to case.
 * A host already present gets the new pair. Copied. Returns 0, TF_EINVAL
 * (empty host, certificate or key) or TF_ENOMEM. */
int tf_acme_alpn01_put(tf_acme_challenges_t *t, const char *host, const uint8_t *cert,
                       size_t cert_len, const uint8_t *key, size_t key_len)
    __attribute__((warn_unused_result));
void tf_acme_alpn01_remove(tf_acme_challenges_t *t, const char *host);
/* Copies of host's certificate and key (malloc'd each; the caller frees
 * both, wiping the key). host is len bytes, not necessarily NUL-terminated
 * (an SNI as received). Returns 0, TF_ENOTFOUND or TF_ENOMEM; the pointers
 * are NULL unless 0. */
int tf_acme_alpn01_get(tf_acme_challenges_t *t, const char *host, size_t host_len, uint8_t **cert,
                       size_t *cert_len, uint8_t **key, size_t *key_len)
    __attribute__((warn_unused_result));

/* Entries of each kind now (for GET /acme and tests). */
size_t tf_acme_http01_count(tf_acme_challenges_t *t);
size_t tf_acme_alpn01_count(tf_acme_challenges_t *t);

/* ---- the HTTPS client (http.c) ----------------------------------------- */

/* A blocking HTTP/1.1 client for the ACME thread: one request per
 * connection (`Connection: close`; an ACME exchange is a handful of
 * requests minutes apart). https:// is verified against the client's CA
 * file or the system store, with SNI and the host name checked against the
 * certificate; http:// is refused unless the host is loopback (127.0.0.0/8,
 * ::1, localhost), which is what test servers use. Every phase (resolve,
 * connect, TLS handshake, write, read) runs under one deadline per request. */
typedef struct tf_acme_http tf_acme_http_t;

/* The system's CA bundle (Debian's ca-certificates). */
#define TF_ACME_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

typedef struct {
    const char *ca_file; /* PEM roots that sign the server's certificate; NULL: the system store */
    unsigned timeout_ms; /* per request, all phases; 0: 30000 */
    size_t max_body;     /* bytes of response body kept; 0: 1 MiB; more is an error */
} tf_acme_http_opts_t;

/* Returns 0 with *out set, TF_ENOMEM, or TF_ETLS / -errno when the CA file
 * cannot be loaded (err says which and why). Free with
 * tf_acme_http_free(). Call tf_tls_global_init() (or wolfSSL_Init) first. */
int tf_acme_http_new(const tf_acme_http_opts_t *opts, tf_acme_http_t **out, char *err,
                     size_t errlen) __attribute__((warn_unused_result));
void tf_acme_http_free(tf_acme_http_t *h);

/* A response. Header values are NUL-terminated copies (NULL when absent);
 * `link` holds every Link header joined with ", " (RFC 9110 §5.3); body is
 * NUL-terminated too (body_len excludes the NUL). Release with
 * tf_acme_http_response_dispose(). */
typedef struct {
    int status;
    char *replay_nonce;
    char *location;
    char *retry_after;
    char *link;
    char *content_type;
    char *body;
    size_t body_len;
} tf_acme_http_response_t;

void tf_acme_http_response_dispose(tf_acme_http_response_t *r);

typedef enum {
    TF_ACME_GET,
    TF_ACME_HEAD,
    TF_ACME_POST, /* body sent as application/jose+json */
} tf_acme_method_t;

/* Sends one request to url and reads the whole response into *resp (any
 * status: 4xx and 5xx are answers, not errors). body/body_len for POST.
 * Returns 0, or: TF_EINVAL (a URL this client does not take: not http(s),
 * http:// to a host that is not loopback, userinfo, a bad port),
 * TF_ENOTFOUND (the name does not resolve), -ETIMEDOUT (the deadline
 * passed), -errno (connect, read, write), TF_ETLS (handshake
 * or certificate verification; err says which), TF_ETOOBIG (body above
 * max_body), TF_EIO (a malformed response). err receives a sentence on
 * every failure. */
int tf_acme_http_request(tf_acme_http_t *h, tf_acme_method_t method, const char *url,
                         const void *body, size_t body_len, tf_acme_http_response_t *resp,
                         char *err, size_t errlen) __attribute__((warn_unused_result));

/* Whether the host of an http:// URL may be used: 127.0.0.0/8, ::1 (with
 * or without brackets) and localhost. host is len bytes. */
bool tf_acme_host_is_loopback(const char *host, size_t len);

#endif
