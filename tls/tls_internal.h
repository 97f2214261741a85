/* tls/ internals shared by the module's files and its tests. Not part of the
 * public API (tls/tls.h). */
#ifndef TF_TLS_TLS_INTERNAL_H
#define TF_TLS_TLS_INTERNAL_H

#include "tls/tls.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* cache.c: wolfSSL contexts for tenant certificates, one per bundle, so
 * that a handshake selecting one switches its WOLFSSL to a ready context
 * (wolfSSL_SwitchCTX, scripts/wolfssl-patches/<suite>/set-ssl-ctx-native.patch)
 * instead of parsing and copying the chain and key into the connection.
 * At most `cap` contexts, least recently used out first; each slot holds a
 * reference to its bundle (the key: a reload cannot free it and give its
 * address to another bundle) and one to its context (a connection switched
 * to it holds its own, so an eviction never pulls it from under a
 * handshake). Belongs to one tf_tls_ctx_t, used by one thread at a time as
 * the context is: no lock. */
typedef struct {
    const tf_cs_bundle_t *bundle; /* a reference; NULL: free slot */
    WOLFSSL_CTX *wctx;            /* a reference */
    uint32_t prev, next;          /* recency list, most recent first */
    uint32_t chain;               /* next slot in the same hash bucket */
} tf_tls__slot_t;

typedef struct {
    uint64_t hits;         /* handshakes that found their context ready */
    uint64_t builds;       /* contexts built for a tenant certificate */
    uint64_t evictions;    /* contexts dropped to make room */
    uint64_t fallbacks;    /* handshakes that loaded the bundle into the connection */
    uint64_t first_sights; /* of those, bundles not seen recently (no context built) */
    unsigned size, cap;    /* contexts held, and the bound */
} tf_tls__cache_stats_t;

typedef struct {
    tf_tls__slot_t *slots; /* cap slots, allocated on the first insertion */
    uint32_t *buckets;     /* nbuckets (a power of two) chain heads */
    /* Bundles seen once lately, by address, direct-mapped: ndoor (a power
     * of two, 2 * cap) entries, allocated with the slots. The addresses
     * are only compared, never followed: a freed bundle's address reused
     * by another only admits that one a handshake early. */
    const void **door;
    uint32_t ndoor;
    bool eager; /* admit at the first handshake */
    uint32_t cap, used, nbuckets, head, tail;
    tf_tls__cache_stats_t stats; /* size and cap filled by tf_tls__cache_stats */
} tf_tls__cache_t;

enum { TF_TLS_CTX_CACHE_MAX = 1u << 20 };

void tf_tls__cache_init(tf_tls__cache_t *c, unsigned cap, bool eager);
/* Whether b (absent from the cache) should get a context now: true when
 * eager or when b was seen lately; otherwise remembers b and returns
 * false. */
bool tf_tls__cache_admit(tf_tls__cache_t *c, const tf_cs_bundle_t *b);
/* The context for bundle b (borrowed: valid until the next put or
 * dispose), made the most recent; NULL when absent. */
WOLFSSL_CTX *tf_tls__cache_get(tf_tls__cache_t *c, const tf_cs_bundle_t *b);
/* Adds b (not present) with wctx, whose reference the cache takes over,
 * evicting the least recently used context when full. 0, or TF_ENOMEM
 * (the caller keeps its reference). */
int tf_tls__cache_put(tf_tls__cache_t *c, const tf_cs_bundle_t *b, WOLFSSL_CTX *wctx);
void tf_tls__cache_dispose(tf_tls__cache_t *c);

struct tf_tls_ctx {
    WOLFSSL_CTX *wctx;
    tf_tls_tickets_t *tickets;        /* a reference, or NULL */
    const tf_cs_bundle_t *def_bundle; /* a reference: the certificate the CTX holds */
    bool reject_unknown_sni;
    bool tls13_only;
    tf_tls_acme_fn acme_fn; /* tls-alpn-01 answers; NULL: none */
    void *acme_ud;
    tf_tls__cache_t cache; /* tenant contexts, configured as wctx */
    /* The random number generator of every connection on this context
     * (wolfSSL_CTX_SetSharedRng, scripts/wolfssl-patches/<suite>/shared-rng.patch),
     * instead of a Hash_DRBG instantiated per connection. The context is
     * used by one worker thread at a time, and freed after its last
     * connection; NULL without the patch (system wolfSSL). */
    WC_RNG *rng;
    bool rng_failed; /* a handshake saw it fail: instantiated again before the next */
};

/* ctx.c: after a failed handshake, whether the shared generator failed (a
 * reseed that could not be seeded: wolfSSL keeps it failed, and reports
 * the handshake's failure under other codes); then, before the next
 * session, instantiates it again. Both on the context's worker thread. */
void tf_tls__rng_check(tf_tls_ctx_t *ctx);
void tf_tls__rng_recover(tf_tls_ctx_t *ctx);

/* The cache's counters, for tests. */
void tf_tls__cache_stats(const tf_tls_ctx_t *ctx, tf_tls__cache_stats_t *out);

/* A growable byte queue: bytes [off, len) are pending. Freed when empty. */
typedef struct {
    uint8_t *buf;
    size_t off, len, cap;
} tf_tls__buf_t;

/* What only a client session has (client.c), apart so that server sessions,
 * one per client connection, do not carry it. */
typedef struct {
    tf_tls_client_ctx_t *ctx; /* a reference */
    bool resume;              /* kept for resumption under resume_id */
    bool offered;             /* the handshake offers the session kept under it */
    unsigned char resume_id[32];
} tf_tls__client_t;

struct tf_tls_session {
    WOLFSSL *ssl;
    union {
        tf_tls_ctx_t *ctx;    /* a server session's */
        tf_tls__client_t *cl; /* a client session's (client is true) */
    };
    tf_cs_snapshot_t *snap;       /* a reference */
    const tf_cs_bundle_t *served; /* valid while snap is held */
    tf_cs_selection_t how;
    bool selected; /* the certificate was chosen (and loaded) */
    bool rejected; /* unknown SNI refused */
    bool established;
    bool closed;       /* close_notify received */
    bool failed;       /* a fatal error ended the session */
    bool shut;         /* tf_tls_session_shutdown was called */
    bool hello_opaque; /* hello.c could not read the ClientHello */
    /* The SNI had a NUL byte: looked up as no name, while wolfSSL (and so
     * tf_tls_session_sni) would report its first part; h2 is not offered. */
    bool sni_unclear;
    bool alpn_set;              /* the ALPN list was given to wolfSSL */
    bool acme;                  /* a tls-alpn-01 validation certificate is served */
    bool client;                /* a client session (client.c): ctx and snap are NULL */
    tf_tls_h2_allowed_fn h2_fn; /* NULL: http/1.1 only */
    void *h2_ud;
    const char *error; /* static string, why the last call failed */
    char *sni;         /* a copy of the client's SNI as sent, or NULL */
    tf_tls__buf_t in;  /* ciphertext from the client */
    tf_tls__buf_t out; /* ciphertext for the client */
};

/* client.c: keeps an established client session's state (its ticket by
 * now, if any) for the next session with the same resume ID. */
void tf_tls__client_keep_session(tf_tls_session_t *s);

/* client.c: the reason (static) for a client's handshake failure E when it
 * is the peer's certificate ("certificate verify failed: ..."); NULL for
 * other failures. */
const char *tf_tls__client_error(int e);

/* Installs tls/alloc.c's allocators into wolfSSL (before wolfSSL_Init):
 * 0, or -1 when wolfSSL refuses them. */
int tf_tls__alloc_install(void);

/* Frees the calling thread's cached record buffers and stops caching. */
void tf_tls__alloc_thread_cleanup(void);

/* Blocks the calling thread keeps (for tests). */
unsigned tf_tls__alloc_kept(void);

/* ctx.c: chooses the certificate for the SNI (`sni` of `len` bytes as
 * received, NULL: none) and, unless the context's own certificate is the
 * one, switches the session's WOLFSSL to the tenant context for it (built
 * and cached at the bundle's second handshake) or, before that or failing
 * that, loads it into the WOLFSSL.
 * Returns 0, or -1 to refuse: s->rejected is set for an unknown SNI under
 * `unknown_sni: reject`; s->error says why. */
int tf_tls__select(tf_tls_session_t *s, const char *sni, size_t len);

/* ctx.c: for a ClientHello offering "acme-tls/1" with an SNI (`len` bytes,
 * no NUL): asks the context's provider for a validation certificate and,
 * when it has one, loads it and its key into the connection (s->acme,
 * s->selected set). Returns 1 when served, 0 when the provider has none
 * (the normal selection follows), or -1 with s->error set. */
int tf_tls__select_acme(tf_tls_session_t *s, const char *sni, size_t len);

/* hello.c: the server_name in the ClientHello at the start of `in`
 * (ciphertext as received, possibly several records). On TF_TLS__HELLO_OK
 * *name points into `in` or into *scratch, which the caller frees after
 * using *name (NULL when the ClientHello fits one record); *name is NULL
 * when there is no server_name. On other results *scratch is NULL.
 * TF_TLS__HELLO_NOGROUP: the client's supported_groups names none of
 * X25519, P-256, P-384 (SPEC §6), so no handshake can follow. */
enum {
    TF_TLS__HELLO_OK = 0,
    TF_TLS__HELLO_MORE = 1, /* incomplete: feed more */
    TF_TLS__HELLO_BAD = 2,  /* not a ClientHello we can read: leave it to wolfSSL */
    TF_TLS__HELLO_NOMEM = 3,
    TF_TLS__HELLO_NOGROUP = 4, /* no allowed key-exchange group offered */
};
int tf_tls__hello_sni(const uint8_t *in, size_t inlen, const char **name, size_t *len,
                      void **scratch);

/* The same, with what else the session reads from the ClientHello: whether
 * its ALPN list offers "acme-tls/1" (RFC 8737). Fields as above; all zero
 * unless TF_TLS__HELLO_OK. */
typedef struct {
    const char *name;
    size_t len;
    void *scratch;
    bool acme_tls;
} tf_tls__hello_t;
int tf_tls__hello_parse(const uint8_t *in, size_t inlen, tf_tls__hello_t *h);

/* tickets.c: installs the ticket callback and lifetime on a context. */
int tf_tls__tickets_install(tf_tls_tickets_t *t, WOLFSSL_CTX *wctx);

/* tickets.c: the key material, for tests. Encrypting key's name into
 * name[16]; returns the number of keys held. */
size_t tf_tls__tickets_current(tf_tls_tickets_t *t, uint8_t name[16]);

/* session.c: the session a WOLFSSL belongs to. */
tf_tls_session_t *tf_tls__session_of(WOLFSSL *ssl);

/* session.c: installs the memory-buffer I/O callbacks on a context. */
void tf_tls__install_io(WOLFSSL_CTX *wctx);

#endif
