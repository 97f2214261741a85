/* tlsfront ACME client (SPEC §13, RFC 8555): the crypto core (base64url,
 * account and certificate keys, JWK and its thumbprint, flattened JWS
 * (ES256, RS256) and external account binding, the CSR an order is
 * finalized with, the tls-alpn-01 validation certificate, and the checks
 * `tlsfront check` runs on the acme keys' files), the challenge answers the
 * workers serve, the blocking HTTPS client of the ACME thread, the protocol
 * client (client.c) and the per-name manager that drives it (manager.c,
 * state.c).
 *
 * Threads: the ACME work (the manager, the protocol client, the HTTPS
 * client) runs on a thread of its own and blocks; the event loops only read
 * the challenge table. Nothing here
 * includes uv.h or logs. Functions return 0 or a negative code (TF_E* from
 * common/err.h, -errno for a file or a socket); where a message helps, it
 * goes into a caller buffer ("PATH: reason; what to do", NUL-terminated
 * when len > 0). Every function is safe to call from any thread; a key (the
 * functions take it non-const because wolfCrypt does) by one thread at a
 * time. Buffers returned through a `**out` are malloc'd and owned by the
 * caller (free(); private key material: explicit_bzero() first, or
 * tf_acme_free_secret()).
 */
#ifndef TF_ACME_ACME_H
#define TF_ACME_ACME_H

#include "conf/conf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- base64url (RFC 4648 §5, no padding) --------------------------------- */

/* Characters needed to encode N bytes, without the NUL. */
size_t tf_acme_b64url_len(size_t n);

/* Encodes N bytes at IN into OUT (NUL-terminated). Returns 0, or TF_ETOOBIG
 * when OUTLEN < tf_acme_b64url_len(N) + 1 (OUT then holds ""). */
int tf_acme_b64url_encode(const void *in, size_t n, char *out, size_t outlen);

/* The same into a new string (free()), or NULL when out of memory. */
char *tf_acme_b64url_dup(const void *in, size_t n);

/* Decodes LEN characters at IN. Strict: only the base64url alphabet, no
 * padding, no white space, a length that is not 1 mod 4, and unused bits
 * zero (one text per byte string). Writes *OUTLEN bytes to OUT. Returns 0,
 * TF_EINVAL for text that is not canonical base64url, or TF_ETOOBIG when CAP
 * is too small. */
int tf_acme_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                          size_t *outlen);

/* ---- keys --------------------------------------------------------------- */

typedef enum {
    TF_ACME_KEY_EC,  /* ECDSA P-256: ES256 */
    TF_ACME_KEY_RSA, /* RSA 2048 (generated), 2048-4096 (loaded): RS256 */
} tf_acme_key_type_t;

typedef struct tf_acme_key tf_acme_key_t; /* opaque; tf_acme_key_free() */

/* A new key. Returns 0, TF_ENOMEM or TF_ECRYPTO. */
int tf_acme_key_generate(tf_acme_key_type_t type, tf_acme_key_t **out);

/* Parses a PEM private key: "EC PRIVATE KEY" (SEC1), "RSA PRIVATE KEY"
 * (PKCS#1) or "PRIVATE KEY" (PKCS#8, unencrypted). Only P-256 EC keys and RSA
 * keys of 2048 to 4096 bits. Returns 0, TF_EINVAL (not such a key) or
 * TF_ENOMEM. */
int tf_acme_key_from_pem(const char *pem, size_t len, tf_acme_key_t **out);

/* Writes KEY as PEM, "EC PRIVATE KEY" (SEC1) or "RSA PRIVATE KEY" (PKCS#1):
 * the forms certstore reads, so a certificate chain followed by this text
 * is a bundle the store loads. *PEM is NUL-terminated, *LEN bytes without
 * the NUL; free it with tf_acme_free_secret(). */
int tf_acme_key_to_pem(tf_acme_key_t *key, char **pem, size_t *len);

/* The same as DER (SEC1 or PKCS#1); tf_acme_free_secret(). */
int tf_acme_key_to_der(tf_acme_key_t *key, unsigned char **der, size_t *len);

tf_acme_key_type_t tf_acme_key_type(const tf_acme_key_t *key);

/* Wipes and frees KEY; NULL is ignored. */
void tf_acme_key_free(tf_acme_key_t *key);

/* Wipes LEN bytes at P and frees it; NULL is ignored. */
void tf_acme_free_secret(void *p, size_t len);

/* The account key, STORAGE/account.key. Made once: when missing, STORAGE
 * (and missing parents) is created mode 0700, a new P-256 key is written
 * mode 0600 and linked into place atomically, so of several processes
 * sharing STORAGE exactly one creates it and all use that one. Later calls
 * load it (any key tf_acme_key_from_pem() takes). *CREATED (may be NULL)
 * says which happened. Returns 0, -errno (with "PATH: reason" in ERR), or
 * TF_EINVAL for a file that holds no usable key. */
int tf_acme_account_key(const char *storage, tf_acme_key_t **out, bool *created, char *err,
                        size_t errlen);

/* Largest EAB MAC key accepted, in bytes. */
#define TF_ACME_EAB_KEY_MAX 256

/* Reads the EAB MAC key file (acme.eab.hmac_key_file): base64url, white
 * space around it and '=' padding ignored. Writes the key into KEY
 * (TF_ACME_EAB_KEY_MAX bytes) and its length into *LEN. Returns 0, -errno
 * (cannot read), or TF_EINVAL (empty, too long or not base64url), with
 * "PATH: reason; what to do" in ERR. The caller wipes KEY. */
int tf_acme_eab_key_read(const char *path, unsigned char *key, size_t *len, char *err,
                         size_t errlen);

/* ---- JWK, JWS (RFC 7515, 7517, 7638; RFC 8555 §6.2) ---------------------- */

/* A thumbprint: base64url of a SHA-256, 43 characters. */
#define TF_ACME_THUMBPRINT_LEN 43

/* The public JWK of KEY: {"crv","kty":"EC","x","y"} or {"e","kty":"RSA","n"}
 * (a new reference; json_decref()), or NULL when out of memory. */
json_t *tf_acme_jwk(tf_acme_key_t *key);

/* RFC 7638 thumbprint of a public JWK: the required members of its kty
 * (EC: crv, kty, x, y; RSA: e, kty, n), each a string, in lexicographic
 * order without white space, hashed with SHA-256. Other members are
 * ignored. OUT receives TF_ACME_THUMBPRINT_LEN characters and a NUL.
 * Returns 0, or TF_EINVAL (not an object, an unknown kty, a required member
 * missing or not a non-empty string). */
int tf_acme_jwk_thumbprint(const json_t *jwk, char out[TF_ACME_THUMBPRINT_LEN + 1]);

/* The same for KEY's JWK. */
int tf_acme_key_thumbprint(tf_acme_key_t *key, char out[TF_ACME_THUMBPRINT_LEN + 1]);

/* A challenge's key authorization, TOKEN "." thumbprint (RFC 8555 §8.1),
 * into a new string (free()). TOKEN must be 1 to 256 base64url characters
 * (it names a file and a URL path): else TF_EINVAL. */
int tf_acme_key_authorization(tf_acme_key_t *key, const char *token, char **out);

/* A flattened JWS JSON serialization, as the body of an ACME POST:
 * {"protected": b64(header), "payload": b64(PAYLOAD), "signature": b64(sig)}
 * with header {"alg": "ES256"|"RS256", "nonce": NONCE, "url": URL, and
 * "kid": KID when KID is not NULL, else "jwk": the account's JWK}.
 * PAYLOAD is the JSON text to send, or "" for POST-as-GET. ES256 signatures
 * are r||s, 64 bytes (RFC 7518 §3.4), not DER. *OUT: new compact JSON text
 * (free()). Returns 0, TF_EINVAL (NULL nonce or url), TF_ENOMEM, TF_ECRYPTO. */
int tf_acme_jws(tf_acme_key_t *key, const char *kid, const char *nonce, const char *url,
                const char *payload, char **out);

/* The externalAccountBinding member of a newAccount payload (RFC 8555
 * §7.3.4): a flattened JWS with protected {"alg": "HS256", "kid": KID,
 * "url": URL (the newAccount URL)} over ACCOUNT's JWK, MACed with HMAC-SHA256
 * and MAC (MACLEN bytes, the decoded EAB key). *OUT: a new object
 * (json_decref()). Returns 0, TF_EINVAL, TF_ENOMEM or TF_ECRYPTO. */
int tf_acme_eab_jws(tf_acme_key_t *account, const char *kid, const unsigned char *mac,
                    size_t maclen, const char *url, json_t **out);

/* ---- certificates --------------------------------------------------------- */

/* A PKCS#10 request (DER) for HOST signed by KEY (SHA-256): subject CN=HOST
 * (left empty when HOST is longer than 63 characters, as X.520 allows no
 * more) and a subjectAltName with dNSName HOST. HOST: a lower-case DNS name.
 * *DER: free(). Returns 0, TF_EINVAL (HOST), TF_ENOMEM or TF_ECRYPTO. */
int tf_acme_csr(tf_acme_key_t *key, const char *host, unsigned char **der, size_t *len);

/* The tls-alpn-01 validation certificate (RFC 8737 §3) for HOST and the key
 * authorization KEYAUTH: self-signed by a fresh P-256 key, valid from a day
 * ago until 7 days from now, subjectAltName dNSName HOST, and the critical extension
 * id-pe-acmeIdentifier (1.3.6.1.5.5.7.1.31) holding an OCTET STRING of
 * SHA-256(KEYAUTH). *CERT: the certificate (DER, free()); *KEY: its private
 * key (SEC1 DER, tf_acme_free_secret()), for
 * wolfSSL_use_PrivateKey_buffer(..., WOLFSSL_FILETYPE_ASN1); wolfSSL serves
 * the pair, though wolfSSL_CTX_check_private_key() refuses the certificate
 * for its critical extension, so do not call that on it. Returns 0,
 * TF_EINVAL (HOST or KEYAUTH), TF_ENOMEM or TF_ECRYPTO. */
int tf_acme_alpn_cert(const char *host, const char *keyauth, unsigned char **cert, size_t *certlen,
                      unsigned char **key, size_t *keylen);

/* ---- `tlsfront check` ------------------------------------------------------ */

/* acme.storage: an existing directory the process can write and search, or
 * a path whose nearest existing ancestor is such a directory (so it can be
 * created). Returns 0; -errno or TF_EINVAL with "PATH: reason; what to do"
 * in ERR. *WARN (may be NULL) is set, with a message in ERR, when the
 * directory exists and group or others may read it (the key file is 0600,
 * but order state is there too). */
int tf_acme_check_storage(const char *path, bool *warn, char *err, size_t errlen);

/* acme.ca_file: a PEM file of at least one CA certificate that wolfSSL loads
 * as a trust anchor. Returns 0; -errno or TF_EINVAL with the reason in ERR. */
int tf_acme_check_ca_file(const char *path, char *err, size_t errlen);

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

/* http-01 answers shared through STORAGE (acme.storage; shared.c), for
 * several instances behind one balancer: the CA's validation may reach one
 * that does not hold the order. The ordering instance writes TOKEN's key
 * authorization as STORAGE/challenges/http-01/TOKEN (mode 0600, directories
 * 0700, atomically) before it asks the CA to validate, and removes it once
 * the authorization is decided; answers older than a week (a process that
 * died meanwhile) are swept at the next write. TOKEN: 1 to 256 base64url
 * characters. share: 0, TF_EINVAL or -errno. */
int tf_acme_http01_share(const char *storage, const char *token, const char *key_auth)
    __attribute__((warn_unused_result));
void tf_acme_http01_unshare(const char *storage, const char *token);
/* Reads TOKEN's shared answer, for listen.http after its own table: a
 * synchronous open and read of a file of at most a few hundred bytes (no
 * symlink followed below STORAGE, a FIFO not waited for), only for a
 * well-formed TOKEN, and only a file that holds TOKEN "." and more. As
 * tf_acme_http01_get(): 0 with *key_auth (free()) and *len, TF_ENOTFOUND
 * (also for a NULL STORAGE), TF_ENOMEM. */
int tf_acme_http01_shared_get(const char *storage, const char *token, char **key_auth, size_t *len)
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

/* Ends every wait of H's requests, the one in progress and all later ones,
 * with -ECANCELED (err: "cancelled"): for a process that stops while a
 * server does not answer. Only name resolution is not interrupted (the
 * resolver's own timeouts bound it). Any thread; not undone. */
void tf_acme_http_cancel(tf_acme_http_t *h);

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
 * passed), -ECANCELED (tf_acme_http_cancel()), -errno (connect, read,
 * write), TF_ETLS (handshake
 * or certificate verification; err says which), TF_ETOOBIG (body above
 * max_body), TF_EIO (a malformed response). err receives a sentence on
 * every failure. */
int tf_acme_http_request(tf_acme_http_t *h, tf_acme_method_t method, const char *url,
                         const void *body, size_t body_len, tf_acme_http_response_t *resp,
                         char *err, size_t errlen) __attribute__((warn_unused_result));

/* Whether the host of an http:// URL may be used: 127.0.0.0/8, ::1 (with
 * or without brackets) and localhost. host is len bytes. */
bool tf_acme_host_is_loopback(const char *host, size_t len);

/* ---- the protocol client (client.c, order.c, problem.c, renewal.c) ------ */

/* RFC 8555 end to end on the ACME thread: the directory, nonces, the
 * account, one order per call, its authorization answered with http-01 or
 * tls-alpn-01, finalization and the certificate; RFC 9773 renewalInfo. A
 * client is used by one thread at a time (tf_acme_client_cancel() excepted).
 * Every call blocks: at most conf->timeout_ms per HTTP request, and
 * poll_max_s for each wait on the server (an authorization, an order). */

/* What went wrong, for logs and GET /acme. Set by every client call that
 * fails (cleared first); dispose after each use. */
typedef struct {
    int status;             /* HTTP status of the problem response, 0 for local errors */
    char type[160];         /* e.g. "urn:ietf:params:acme:error:rateLimited", "" if none */
    char detail[512];       /* the server's detail, or ours ("URL: reason") */
    char *subproblems;      /* the subproblems array as compact JSON, or NULL (free()) */
    uint64_t retry_after_s; /* Retry-After in seconds, 0 when absent */
} tf_acme_problem_t;

/* Frees subproblems and clears P; NULL is ignored. */
void tf_acme_problem_dispose(tf_acme_problem_t *p);

typedef struct {
    const char *directory;       /* acme.directory */
    const char *ca_file;         /* NULL: system store */
    const char *email;           /* NULL: no contact */
    const char *storage;         /* account key (tf_acme_account_key), account.json, orders/ */
    tf_acme_key_type_t key_type; /* for the certificate keys */
    unsigned challenges; /* TF_CONF_ACME_HTTP01 | TF_CONF_ACME_TLSALPN01, preference http-01 */
    const char *eab_kid; /* NULL: none */
    const unsigned char *eab_mac;
    size_t eab_mac_len;
    tf_acme_challenges_t *answers; /* where answers are published while validating */
    unsigned timeout_ms;           /* per HTTP request; 0: 30000 */
    unsigned poll_max_s;           /* give up waiting for an authorization/order; 0: 120 */
} tf_acme_client_conf_t;

typedef struct tf_acme_client tf_acme_client_t;

/* Copies CONF (strings and the EAB key; ANSWERS is borrowed and must
 * outlive the client), loads or creates the account key in storage and
 * makes the HTTPS client. No network I/O: the directory is fetched at
 * the start of each order (and once for renewalInfo), the account on
 * first use. Call wolfSSL_Init() (tf_tls_global_init())
 * first. Returns 0; TF_EINVAL (no directory or storage), TF_ENOMEM,
 * -errno / TF_EINVAL (account key) or TF_ETLS (CA file), with prob->detail
 * saying why. Free with tf_acme_client_free() (NULL is ignored). */
int tf_acme_client_new(const tf_acme_client_conf_t *conf, tf_acme_client_t **out,
                       tf_acme_problem_t *prob) __attribute__((warn_unused_result));
void tf_acme_client_free(tf_acme_client_t *c);

/* Makes the call running on C (from any thread) return -ECANCELED at
 * once, also from within an HTTP request (tf_acme_http_cancel()); later
 * calls return it at once. For a manager that stops: a wait on the server
 * would otherwise last up to poll_max_s, a request up to timeout_ms. */
void tf_acme_client_cancel(tf_acme_client_t *c);

/* The account URL ("kid") once known (from storage or the server), else
 * NULL. Valid until the next call on C. */
const char *tf_acme_client_account_url(const tf_acme_client_t *c);

/* How many times a badNonce answer was retried since C was made (tests,
 * GET /acme). */
unsigned tf_acme_client_nonce_retries(const tf_acme_client_t *c);

typedef struct {
    char *bundle; /* leaf + chain PEM as downloaded, then the new key PEM (free(); a secret:
                   * tf_acme_issued_dispose() wipes it) */
    size_t bundle_len;
    int64_t not_before, not_after; /* the leaf's, Unix seconds */
    char *order_url;               /* (free()) */
} tf_acme_issued_t;

/* Wipes and frees the bundle, frees the URL, clears I; NULL is ignored. */
void tf_acme_issued_dispose(tf_acme_issued_t *i);

/* Orders a certificate for HOST (one exact, lower-case name), answers its
 * authorization with the first allowed challenge type the server offers
 * (publishing the answer in conf->answers and removing it after),
 * finalizes with a fresh key of key_type, downloads the chain. RESUME
 * (may be NULL): an order URL from an earlier run, used when it is still
 * pending/ready/processing/valid for HOST; otherwise (invalid, expired,
 * gone, another name) a new order. RENEWING (may be NULL): the PEM
 * (certificates only) of the certificate a renewal replaces; when the
 * server's directory has renewalInfo, a new order names it in `replaces`
 * (RFC 9773 §5; its certID), and is placed again without it when the
 * server answers alreadyReplaced. The certificate key is kept in
 * storage/orders/ (mode 0600) from just before finalization until the
 * certificate is downloaded, so that a processing or valid order resumes
 * with its key; without that file such an order is replaced. ON_ORDER
 * (may be NULL) is called with the order URL as soon as it exists, so the
 * caller can persist it. Creates the account on first use (its URL kept in
 * storage/account.json, mode 0600, with the directory and the key's
 * thumbprint; never a second account for the same key: newAccount for an
 * existing key returns that account). badNonce is retried with the fresh
 * nonce up to 3 times.
 * Returns 0 with *OUT filled (dispose it); TF_EACME with *PROB from the
 * server's problem document (an error response without one: TF_EACME, its
 * status and "" as type; a failed validation: the challenge's error); the
 * transport's code (tf_acme_http_request()) with prob->detail; TF_EINVAL
 * (HOST, no answers table); TF_EUNSUPPORTED (no allowed challenge type
 * offered); -ETIMEDOUT (poll_max_s passed); -ECANCELED. */
int tf_acme_client_issue(tf_acme_client_t *c, const char *host, const char *resume,
                         const char *renewing, void (*on_order)(void *ud, const char *url),
                         void *ud, tf_acme_issued_t *out, tf_acme_problem_t *prob)
    __attribute__((warn_unused_result));

/* RFC 9773 renewalInfo for the leaf (first certificate) of CERT_PEM (LEN
 * bytes): *START and *END the suggested window (Unix seconds). Returns 0;
 * TF_ENOTFOUND when the directory has no renewalInfo; TF_EINVAL (no
 * certificate, or no authority key identifier to name it by); TF_EACME or
 * a transport code as tf_acme_client_issue(); TF_EIO for an answer without
 * a valid window. */
int tf_acme_client_renewal_info(tf_acme_client_t *c, const char *cert_pem, size_t len,
                                int64_t *start, int64_t *end, tf_acme_problem_t *prob)
    __attribute__((warn_unused_result));

/* The client as a table of functions, so that the manager's tests can put
 * a fake in its place. tf_acme_client_ops_default holds the functions
 * above. */
typedef struct {
    int (*issue)(tf_acme_client_t *c, const char *host, const char *resume, const char *renewing,
                 void (*on_order)(void *ud, const char *url), void *ud, tf_acme_issued_t *out,
                 tf_acme_problem_t *prob);
    int (*renewal_info)(tf_acme_client_t *c, const char *cert_pem, size_t len, int64_t *start,
                        int64_t *end, tf_acme_problem_t *prob);
} tf_acme_client_ops_t;

extern const tf_acme_client_ops_t tf_acme_client_ops_default;

/* ---- the manager (manager.c, state.c) ---------------------------------- */

/* Longest path the manager handles (a certificate file, a storage file). */
#define TF_ACME_PATH_MAX 4096

/* Whether a loaded certificate covers a name, as the proxy's certificate
 * store in service says. */
typedef struct {
    bool covered;      /* a certificate valid now covers the name (exactly or by a wildcard) */
    int64_t not_after; /* its notAfter (Unix seconds) */
    char file[TF_ACME_PATH_MAX]; /* the file it was loaded from */
} tf_acme_coverage_t;

typedef enum {
    TF_ACME_NOTE_INFO,
    TF_ACME_NOTE_WARN,
    TF_ACME_NOTE_ERROR,
} tf_acme_note_level_t;

/* What the manager works from. The callbacks run on the manager's thread,
 * never under its lock (they may call tf_acme_manager_status() and the
 * like), one at a time. */
typedef struct {
    tf_conf_t *conf;                 /* in service; a reference is taken */
    const tf_acme_client_ops_t *ops; /* &tf_acme_client_ops_default, or a fake */
    /* Fills *OUT for NAME (zeroed before the call). Required. */
    void (*coverage)(void *arg, const char *name, tf_acme_coverage_t *out);
    /* PATH (HOST.pem) was written for NAME: reload the certificate store.
     * May be NULL. */
    void (*written)(void *arg, const char *name, const char *path);
    /* An event for the log, one line without a newline: certificates
     * issued, failures with the server's problem document. May be NULL. */
    void (*note)(void *arg, tf_acme_note_level_t level, const char *text);
    /* The time, Unix seconds; NULL: time(NULL). Tests set a clock. */
    int64_t (*now)(void *arg);
    void *arg; /* for the callbacks */
} tf_acme_manager_conf_t;

/* The per-name manager (SPEC §13): one thread that, for every exact host of
 * the `acme: true` tenants, orders a certificate when none covers it or
 * fewer than acme.renew_days remain (or renewalInfo's window has begun),
 * writes it as HOST.pem (mode 0600, atomically) into the first directory of
 * tls.certs, and backs off after a failure (1 minute doubling to 24 hours,
 * longer when the server says so). It never replaces a file it did not
 * write: what it wrote is recorded in acme.storage/certs/HOST.json (the
 * SHA-256 of the file). Several processes sharing acme.storage order each
 * name once: acme.storage/locks/HOST.lock is held (flock) during an order.
 * Waits on a condition variable between passes: woken by an update, a
 * kick, a stop or the next due time. */
typedef struct tf_acme_manager tf_acme_manager_t;

/* A stopped manager for CONF's names. Returns 0 or TF_ENOMEM. Free with
 * tf_acme_manager_free(). */
int tf_acme_manager_new(const tf_acme_manager_conf_t *conf, tf_acme_manager_t **out)
    __attribute__((warn_unused_result));

/* Starts the thread (its first pass at once) with CLIENT, ops' first
 * argument: used on the manager's thread only, borrowed until
 * tf_acme_manager_stop(). (The client is made apart, once privileges are
 * dropped: it creates the account key in acme.storage.) 0 or -errno. */
int tf_acme_manager_start(tf_acme_manager_t *m, tf_acme_client_t *client)
    __attribute__((warn_unused_result));

/* A new configuration (a reference is taken; the old one is dropped once
 * no pass uses it): names come and go, renew_days and tls.certs apply, and
 * a pass follows at once. acme.storage stays as at creation, and the client
 * keeps the settings it was made with (a restart applies them). Any
 * thread. */
void tf_acme_manager_update(tf_acme_manager_t *m, tf_conf_t *conf);

/* Asks for a pass now and returns its number, for tf_acme_manager_wait().
 * Any thread. */
uint64_t tf_acme_manager_kick(tf_acme_manager_t *m);

/* Waits up to TIMEOUT_MS until pass PASS has completed. 0, -ETIMEDOUT, or
 * TF_EINVAL when the manager is stopped. Any thread but the manager's. */
int tf_acme_manager_wait(tf_acme_manager_t *m, uint64_t pass, unsigned timeout_ms);

/* GET /acme (SPEC §8): a JSON array, one object per exact or wildcard host
 * of the `acme: true` tenants, in configuration order: name, state
 * ("valid", "pending", "renewing", "failed", "unmanaged"), file, not_after
 * and next_attempt (RFC 3339 or null), last_error (null or {type, detail,
 * subproblems}), reason (why `unmanaged`, else null). A new reference, or
 * NULL when out of memory. Any thread; never waits for an order. */
json_t *tf_acme_manager_status(tf_acme_manager_t *m);

/* Orders by result since start: "valid" (written), "invalid" (the CA
 * refused: a 4xx problem document), "error" (anything else: transport,
 * server errors, an unusable bundle, a local failure). */
typedef struct {
    uint64_t valid, invalid, error;
} tf_acme_manager_counts_t;
tf_acme_manager_counts_t tf_acme_manager_counts(tf_acme_manager_t *m);

/* Calls FN for each managed name (not unmanaged) with the time of its next
 * renewal or attempt (Unix seconds), under the manager's lock: FN must not
 * call the manager. */
void tf_acme_manager_each_renewal(tf_acme_manager_t *m,
                                  void (*fn)(void *arg, const char *name, int64_t at), void *arg);

/* Asks the thread to stop, without waiting: it ends after the name it
 * works on. An order that fails from then on (tf_acme_client_cancel()) is
 * abandoned, not counted nor backed off: its order URL stays recorded for
 * the next start. Any thread. */
void tf_acme_manager_cancel(tf_acme_manager_t *m);

/* Stops the thread and joins it: an order in flight finishes or fails
 * first, within the client's timeouts (tf_acme_client_cancel() before this
 * call makes it fail at once). Idempotent. */
void tf_acme_manager_stop(tf_acme_manager_t *m);

/* Stops it and frees it; NULL is ignored. */
void tf_acme_manager_free(tf_acme_manager_t *m);

#endif
