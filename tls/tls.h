/* tls/ — the wolfSSL wrapper (SPEC §6).
 *
 * wolfSSL never touches a socket: it reads ciphertext from, and writes
 * ciphertext to, memory buffers owned by the session; the proxy moves those
 * bytes with libuv. This module knows nothing of libuv either.
 *
 * Objects:
 *   tf_tls_ctx_t      per worker thread: one WOLFSSL_CTX holding the default
 *                     certificate, the protocol settings (versions, suites,
 *                     groups, ALPN) and the session-ticket keys, and a
 *                     bounded cache of WOLFSSL_CTXs configured the same way
 *                     for tenant certificates, filled by handshakes. Created
 *                     at start and on every reload; used by one thread at a
 *                     time (handshakes change its cache).
 *   tf_tls_session_t  one per client connection: a WOLFSSL plus its input and
 *                     output buffers, the certificate snapshot it took at
 *                     creation (held until it is freed), and what the
 *                     handshake selected.
 *
 * Certificate selection: once the whole ClientHello is buffered, and before
 * wolfSSL reads it, the session takes its SNI and looks it up in its
 * snapshot (tf_cs_snapshot_select). The default certificate is the
 * context's own; for another one the connection moves to the context's
 * cached WOLFSSL_CTX for that bundle (built at the bundle's second
 * handshake, see ctx_cache_eager: at most opts.ctx_cache of them, least
 * recently used out first); before that, or if that context cannot be
 * built, the chain and key are loaded into the connection (wolfSSL frees
 * that copy when the handshake ends). With `unknown_sni:
 * reject`, an SNI that no certificate covers gets a fatal unrecognized_name
 * alert (15 03 03 00 02 02 70) and TF_ETLS; no SNI at all always gets the
 * default.
 * docs/TLS.md explains why and gives the measured costs.
 */
#ifndef TF_TLS_TLS_H
#define TF_TLS_TLS_H

#include "certstore/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* ---- process-wide ------------------------------------------------------ */

/* Initialises wolfSSL once per process; call before any other tf_tls_* or
 * certificate-store function. Returns 0 or TF_ETLS (also when wolfSSL uses
 * RDRAND as its random source and the CPU's output looks broken: see
 * docs/TLS.md). Not thread-safe: call from main before starting threads. */
int tf_tls_global_init(void) __attribute__((warn_unused_result));

/* Releases wolfSSL's global state at exit. */
void tf_tls_global_cleanup(void);
/* Lets the calling thread keep a few freed wolfSSL record buffers for its
 * next records (tls/alloc.c: up to two per power of two from 1 to 32 KiB).
 * For threads that run many sessions (the workers); every such thread
 * calls tf_tls_thread_cleanup() before it ends. */
void tf_tls_thread_init(void);

/* Frees what the calling thread keeps for its sessions (a spare queue
 * buffer, cached record buffers); a thread that ran sessions calls it
 * before it ends. */
void tf_tls_thread_cleanup(void);

/* The linked wolfSSL's version, e.g. "5.5.4". Static string. */
const char *tf_tls_library_version(void);

/* How the linked wolfSSL was built: "bundled from Debian source VERSION:
 * FLAGS" or "system libwolfssl (...)". Static string. */
const char *tf_tls_build_info(void);

/* Whether the assembly code paths that make TLS fast (AES-NI, the x86-64
 * single-precision ECC/RSA code) are compiled in. 1 or 0. */
int tf_tls_has_fast_crypto(void);

/* ---- session-ticket keys ------------------------------------------------- */

/* Ticket keys: the newest encrypts, every key decrypts until it ages out.
 * Shared by the worker contexts of one process (reference counted, internally
 * locked: rotation happens on one thread while others read). */
typedef struct tf_tls_tickets tf_tls_tickets_t;

/* Keys generated in memory and rotated every `rotate_s` seconds (each key
 * decrypts for 2 * rotate_s; 0 means 3600). With `keys_file`
 * (tls.ticket_keys_file: 80-byte records as haproxy's tls-ticket-keys,
 * base64, one per line, newest last, '#' comments; see docs/TLS.md) the keys
 * come from the file instead, so several instances resume each other's
 * sessions: the penultimate key encrypts (the only one if there is one),
 * every key decrypts. Tickets are sealed with ChaCha20-Poly1305 and carry a
 * lifetime hint of rotate_s (at most 7 days) in both modes. On error writes
 * "FILE: reason: what to do" into err; returns 0, TF_ENOMEM, TF_ECONF (bad
 * file), -errno (unreadable file) or TF_ETLS. Free with tf_tls_tickets_unref(). */
int tf_tls_tickets_new(const char *keys_file, unsigned rotate_s, tf_tls_tickets_t **out, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

/* Re-reads the keys file (no-op for memory keys). On error the keys in use
 * stay and err says why; returns 0 or the codes of tf_tls_tickets_new(). */
int tf_tls_tickets_reload(tf_tls_tickets_t *t, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Memory keys: adds a key when the newest is rotate_s old at `now` and drops
 * keys older than 2 * rotate_s. Also done lazily when a ticket is issued or
 * opened, so calling it from a timer is optional. No-op for file keys.
 * Returns 0 or TF_ETLS (random generator failure). Thread-safe. */
int tf_tls_tickets_rotate(tf_tls_tickets_t *t, time_t now);

/* The ticket lifetime hint in seconds (rotate_s). */
unsigned tf_tls_tickets_lifetime(const tf_tls_tickets_t *t);

tf_tls_tickets_t *tf_tls_tickets_ref(tf_tls_tickets_t *t);
void tf_tls_tickets_unref(tf_tls_tickets_t *t);

/* ---- contexts ------------------------------------------------------------- */

typedef struct tf_tls_ctx tf_tls_ctx_t;

/* tls-alpn-01 (RFC 8737, SPEC §13): the validation certificate an ACME
 * server must get when it connects with ALPN "acme-tls/1" and the SNI of
 * the name it validates. Both buffers are malloc'd by the provider and freed
 * by the session (the key wiped first). The key is ECDSA (P-256), as RFC
 * 8737 validation certificates are made (acme/alpncert.c), DER (PKCS#8 or
 * SEC1). */
typedef struct {
    uint8_t *cert;
    size_t cert_len;
    uint8_t *key;
    size_t key_len;
} tf_tls_acme_cert_t;

/* Asked on the handshake's thread, only for a ClientHello that offers
 * "acme-tls/1" and has an SNI (host: len bytes as received, no NUL among
 * them, not NUL-terminated): true with copies in *out, or false when there
 * is no validation pending for host. Must not block; ud is the caller's
 * and must outlive the context. tls/ knows nothing of who keeps the
 * answers (the proxy wires this to acme/'s challenge table). */
typedef bool (*tf_tls_acme_fn)(void *ud, const char *host, size_t len, tf_tls_acme_cert_t *out);

/* Tenant contexts a context keeps by default (ctx_cache 0). */
enum { TF_TLS_CTX_CACHE_DEFAULT = 256 };

typedef struct {
    bool tls13_only;           /* tls.min_version "1.3" */
    bool reject_unknown_sni;   /* tls.unknown_sni: reject */
    tf_tls_tickets_t *tickets; /* referenced by the context; NULL: no tickets */
    unsigned ctx_cache;        /* tenant contexts kept; 0: TF_TLS_CTX_CACHE_DEFAULT */
    /* false (the default): a tenant's context is built at its second
     * handshake while its first is still remembered, the first loading
     * the bundle into the connection, so that handshakes spread over many
     * more tenants than the cache holds do not each build a context that
     * is evicted before its next use. true: at the first (tests). */
    bool ctx_cache_eager;
    /* tls-alpn-01: when a ClientHello offers "acme-tls/1" and acme(ud,
     * SNI) has a validation certificate, the handshake serves it (before
     * the normal SNI selection, `unknown_sni: reject` included), and
     * "acme-tls/1" is the only protocol offered, so it is negotiated; see
     * tf_tls_session_acme(). In every other case "acme-tls/1" is never
     * negotiated, and a ClientHello without it costs nothing more. NULL:
     * no tls-alpn-01. */
    tf_tls_acme_fn acme;
    void *acme_ud;
} tf_tls_ctx_opts_t;

/* A context whose default certificate is the snapshot's default (the
 * snapshot must have one). Versions TLS 1.2 and 1.3 (or 1.3 only); TLS 1.3
 * suites AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305; TLS 1.2 ECDHE with
 * AES-GCM or CHACHA20-POLY1305 only; groups X25519, P-256, P-384; ALPN
 * http/1.1, and h2 per session (tf_tls_session_set_h2); renegotiation
 * refused. Errors into err. Free with
 * tf_tls_ctx_free() after every session made from it is freed. */
int tf_tls_ctx_new(const tf_tls_ctx_opts_t *opts, const tf_cs_snapshot_t *snap, tf_tls_ctx_t **out,
                   char *err, size_t errlen) __attribute__((warn_unused_result));
void tf_tls_ctx_free(tf_tls_ctx_t *ctx);

/* ---- sessions ------------------------------------------------------------- */

typedef struct tf_tls_session tf_tls_session_t;

/* What a call asks the caller to do next. */
typedef enum {
    TF_TLS_OK = 0,        /* progress made (handshake done, bytes read/written) */
    TF_TLS_WANT_READ = 1, /* feed more ciphertext, then call again */
    TF_TLS_CLOSED = 2,    /* the peer sent close_notify: no more plaintext */
} tf_tls_status_t;
/* Failures are negative: TF_ETLS (protocol error, alert sent or received),
 * TF_ENOMEM. tf_tls_session_error() says why in words. */

/* A server session on ctx, reading certificates from snap (a reference is
 * taken and held until tf_tls_session_free). NULL when out of memory. */
tf_tls_session_t *tf_tls_session_new(tf_tls_ctx_t *ctx, tf_cs_snapshot_t *snap);
void tf_tls_session_free(tf_tls_session_t *s);

/* Ciphertext that arrived from the client. The session copies it and frees
 * the copy once wolfSSL has consumed it: after handshake/recv answered
 * TF_TLS_WANT_READ at most one partial record (< 16.7 KiB) stays buffered.
 * Returns 0 or TF_ENOMEM. */
int tf_tls_session_feed(tf_tls_session_t *s, const void *data, size_t len);

/* Drives the handshake. TF_TLS_OK once it is complete (then the accessors
 * below answer), TF_TLS_WANT_READ, or a negative error. Output may be
 * pending afterwards in every case (alerts included): always flush. */
int tf_tls_session_handshake(tf_tls_session_t *s);

/* Decrypts into buf (len > 0). Returns TF_TLS_OK with *nread > 0 bytes
 * (call again: more may be buffered), TF_TLS_WANT_READ (no complete record
 * buffered; *nread = 0), TF_TLS_CLOSED (close_notify received; every later
 * call says so too; *nread = 0), or a negative error. Output may be pending
 * afterwards (alerts, TLS 1.3 key-update replies): flush. */
int tf_tls_session_recv(tf_tls_session_t *s, void *buf, size_t len, size_t *nread);

/* True when the session holds no input at all (no ciphertext fed and not
 * yet decrypted, no decrypted bytes not yet read): the next recv could
 * only say TF_TLS_WANT_READ, so a caller may skip it. */
bool tf_tls_session_input_empty(const tf_tls_session_t *s);

/* The same as a byte count: bytes (> 0), TF_TLS_WANT_READ, TF_TLS_CLOSED,
 * or a negative error. A status leaves buf untouched, but a 1- or 2-byte
 * read and a status look alike: prefer tf_tls_session_recv(). Kept for
 * callers written against the first version of this header. */
ssize_t tf_tls_session_read(tf_tls_session_t *s, void *buf, size_t len);

/* Encrypts len bytes (all of them; records of up to 16 KiB) into the
 * output buffer. Returns len or a negative error. */
ssize_t tf_tls_session_write(tf_tls_session_t *s, const void *buf, size_t len);

/* Queues a close_notify alert (once; later calls do nothing). Reading may
 * go on until the peer's close_notify (TF_TLS_CLOSED); writing fails with
 * TF_ETLS. Returns 0 or a negative error. */
int tf_tls_session_shutdown(tf_tls_session_t *s);

/* Ciphertext waiting to be sent: a pointer to `*len` bytes, valid until the
 * next call on the session. Mark what was handed to the network as sent with
 * tf_tls_session_consume_out(). */
const void *tf_tls_session_out(tf_tls_session_t *s, size_t *len);
void tf_tls_session_consume_out(tf_tls_session_t *s, size_t n);

/* Hands the whole pending output over: *buf receives a malloc'd buffer the
 * caller frees (after uv_write completes), *len its length; the session's
 * output becomes empty. Lets a write be in flight while the session keeps
 * encrypting. Returns 0, or TF_ENOMEM. *buf is NULL when nothing is pending. */
int tf_tls_session_take_out(tf_tls_session_t *s, void **buf, size_t *len);

/* After the handshake: the SNI as sent (NULL if none; raw bytes up to the
 * first NUL, so escape it before logging), how the certificate was chosen,
 * the bundle served, the negotiated version ("TLSv1.3"), cipher suite name,
 * whether the session was resumed, and ALPN ("h2", "http/1.1", "acme-tls/1"
 * or NULL). After an unknown-SNI rejection the SNI and selection answer
 * too, for the log. */
const char *tf_tls_session_sni(const tf_tls_session_t *s);
tf_cs_selection_t tf_tls_session_selection(const tf_tls_session_t *s);
const tf_cs_bundle_t *tf_tls_session_served(const tf_tls_session_t *s);
const char *tf_tls_session_version(const tf_tls_session_t *s);
const char *tf_tls_session_cipher(const tf_tls_session_t *s);
bool tf_tls_session_resumed(const tf_tls_session_t *s);
const char *tf_tls_session_alpn(const tf_tls_session_t *s);

/* ALPN h2 (SPEC §12): before the handshake, a function the session asks,
 * once the ClientHello's SNI is known (NULL: none) and before wolfSSL reads
 * the ClientHello, whether this client may get "h2"; ud is the caller's and
 * must outlive the handshake. Without one (the default) only "http/1.1" is
 * ever selected. When it answers true the session's ALPN list is
 * "h2,http/1.1" (the client's order decides, as RFC 7301 lets the server
 * choose and browsers list h2 first); when false "http/1.1" only, so a
 * client offering only h2 gets no protocol. tf_tls_session_alpn() then
 * answers "h2", "http/1.1" or NULL. The function is not called, and h2 not
 * offered, when the session cannot be sure of the SNI it will report (a
 * ClientHello tls/hello.c cannot read, a name with a NUL byte). Resumed
 * sessions choose the same way: ALPN is negotiated afresh each handshake.
 * Call it before the first tf_tls_session_handshake(). */
typedef bool (*tf_tls_h2_allowed_fn)(void *ud, const char *sni);
void tf_tls_session_set_h2(tf_tls_session_t *s, tf_tls_h2_allowed_fn fn, void *ud);

/* After the handshake: whether it served a tls-alpn-01 validation
 * certificate (ALPN "acme-tls/1", tf_tls_session_alpn() says so too). RFC
 * 8737 §3: such a connection carries no application data; the caller
 * closes it. tf_tls_session_served() is NULL then. */
bool tf_tls_session_acme(const tf_tls_session_t *s);

/* ---- client sessions: TLS to backends (SPEC §14) ------------------------
 * A context per trust setting, shared by the sessions made on it (by any
 * thread: wolfSSL reference-counts it); freed after its last session. */
typedef struct tf_tls_client_ctx tf_tls_client_ctx_t;

typedef struct {
    bool verify;         /* false: tls_verify: off, any certificate is taken */
    const char *ca_file; /* with verify: PEM roots; NULL: the system store */
} tf_tls_client_opts_t;

/* 0, or a negative code with the reason, naming the CA file, in err. */
int tf_tls_client_ctx_new(const tf_tls_client_opts_t *opts, tf_tls_client_ctx_t **out, char *err,
                          size_t errlen) __attribute__((warn_unused_result));
void tf_tls_client_ctx_free(tf_tls_client_ctx_t *c);

/* A client session on c: SNI sent (NULL: none), and, when c verifies, the
 * name (a DNS name, or an IP address matched against IP SANs) the
 * certificate must hold (NULL: the chain only). Copies both. NULL when out
 * of memory. tf_tls_session_handshake() starts with the ClientHello (call it
 * once with nothing fed); everything else is as for a server session. A
 * failed verification's tf_tls_session_error() reads "certificate verify
 * failed: REASON". */
tf_tls_session_t *tf_tls_client_session_new(tf_tls_client_ctx_t *c, const char *sni,
                                            const char *name);

/* A client session, before its handshake: offer the session last kept
 * under the same ID on the same context (resumption, tickets included),
 * and keep this one under it (after the handshake, and at free with the
 * ticket that came later). The ID names the peer and its settings (the
 * context already fixes the trust). A context keeps 16 at most, oldest
 * out first; each session holds a reference to its context, which may be
 * freed first. 0, or TF_EINVAL (then a full handshake). */
int tf_tls_session_resume_by(tf_tls_session_t *s, const void *id, size_t len);

/* A client session whose handshake failed: when it offered a kept session,
 * forgets that one (the peer may have changed: another TLS version, new
 * keys; wolfSSL would offer it again with the version it fixes) and says
 * true, so that the caller can try again in full before blaming the peer.
 * False when nothing was offered. */
bool tf_tls_session_forget_offered(tf_tls_session_t *s);

/* Bytes that go out before the session's first record (a PROXY protocol
 * header ahead of a ClientHello): call before the first handshake call.
 * 0 or TF_ENOMEM. */
int tf_tls_session_queue_raw(tf_tls_session_t *s, const void *data, size_t len);

/* Why the last call failed, for the log ("unknown SNI rejected:
 * unrecognized_name", "protocol version not supported", "no shared cipher
 * suite", "fatal alert received", or wolfSSL's own words); "no error" if
 * none. Static string. */
const char *tf_tls_session_error(const tf_tls_session_t *s);

/* Heap bytes held by the session now, for the memory budget: the session
 * struct, its buffers, and the WOLFSSL object. wolfSSL does not count its
 * other allocations per connection (about 3.7 KB more on an idle TLS 1.3
 * session with this build; docs/TLS.md has the measured totals). */
size_t tf_tls_session_memory(const tf_tls_session_t *s);

#endif
