/* TLS contexts: protocol settings, the default certificate, and the
 * per-connection certificate choice (SPEC §4.4, §6). */
#include "tls/tls_internal.h"

#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SPEC §6: AEAD suites with forward secrecy only. wolfSSL's build contains
 * others (DHE, CBC); naming every suite keeps them out. wolfSSL decides
 * what a connection can sign with from flags it only ever turns on (an RSA
 * certificate loaded over an ECDSA default leaves ECDHE-ECDSA enabled), so
 * each list names the TLS 1.2 suites of one key type: together they are the
 * SPEC's list, and a connection gets the half its certificate can serve. */
#define TF_TLS13_SUITES                                                                            \
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
static const char k_suites_ec[] = TF_TLS13_SUITES "ECDHE-ECDSA-AES128-GCM-SHA256:"
                                                  "ECDHE-ECDSA-AES256-GCM-SHA384:"
                                                  "ECDHE-ECDSA-CHACHA20-POLY1305";
static const char k_suites_rsa[] = TF_TLS13_SUITES "ECDHE-RSA-AES128-GCM-SHA256:"
                                                   "ECDHE-RSA-AES256-GCM-SHA384:"
                                                   "ECDHE-RSA-CHACHA20-POLY1305";

static const char *suites_for(const tf_cs_bundle_t *b)
{
    return tf_cs_bundle_key_type(b) == TF_CS_KEY_RSA ? k_suites_rsa : k_suites_ec;
}

/* Chains up to this size are concatenated on the stack. */
enum { CHAIN_STACK_MAX = 8192 };

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Loads a bundle's chain (DER, leaf first, concatenated) and key into either
 * the context or the connection. */
static int load_bundle(WOLFSSL_CTX *wctx, WOLFSSL *ssl, const tf_cs_bundle_t *b)
{
    uint8_t stackbuf[CHAIN_STACK_MAX];
    size_t total = 0, n = tf_cs_bundle_chain_len(b);
    for (size_t i = 0; i < n; i++)
        total += tf_cs_bundle_chain_at(b, i).len;
    tf_cs_der_t key = tf_cs_bundle_key_der(b);
    if (n == 0 || total > INT32_MAX || key.len == 0 || key.len > INT32_MAX)
        return TF_ENOCERT;
    uint8_t *chain = total <= sizeof stackbuf ? stackbuf : malloc(total);
    if (chain == NULL)
        return TF_ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        tf_cs_der_t d = tf_cs_bundle_chain_at(b, i);
        memcpy(chain + off, d.der, d.len);
        off += d.len;
    }
    int ok;
    if (ssl != NULL)
        ok = wolfSSL_use_certificate_chain_buffer_format(ssl, chain, (long)total,
                                                         WOLFSSL_FILETYPE_ASN1) == 1 &&
             wolfSSL_use_PrivateKey_buffer(ssl, key.der, (long)key.len, WOLFSSL_FILETYPE_ASN1) == 1;
    else
        ok = wolfSSL_CTX_use_certificate_chain_buffer_format(wctx, chain, (long)total,
                                                             WOLFSSL_FILETYPE_ASN1) == 1 &&
             wolfSSL_CTX_use_PrivateKey_buffer(wctx, key.der, (long)key.len,
                                               WOLFSSL_FILETYPE_ASN1) == 1;
    if (chain != stackbuf)
        free(chain);
    return ok ? 0 : TF_ECERT;
}

/* Every setting of a context but its certificate: the default context and
 * each tenant context get exactly these, because a connection switched to a
 * tenant context keeps what wolfSSL_new copied from the default one (groups,
 * ticket counts) and reads the rest from the context it is on (ticket
 * callback, method, I/O callbacks, suites for the key type of b). */
static int configure(const tf_tls_ctx_t *c, WOLFSSL_CTX *w, const tf_cs_bundle_t *b, char *err,
                     size_t errlen)
{
    if (!c->tls13_only && wolfSSL_CTX_SetMinVersion(w, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
        set_err(err, errlen, "tls: cannot set the minimum version to TLS 1.2");
        return TF_ETLS;
    }
#ifdef WOLFSSL_HAVE_CTX_SHARED_RNG
    /* A connection takes its generator when it is created, on the
     * default context; tenant contexts get it too, alike in all. */
    if (c->rng != NULL && wolfSSL_CTX_SetSharedRng(w, c->rng) != WOLFSSL_SUCCESS) {
        set_err(err, errlen, "tls: cannot share the random number generator");
        return TF_ETLS;
    }
#endif
    if (wolfSSL_CTX_set_cipher_list(w, suites_for(b)) != WOLFSSL_SUCCESS) {
        set_err(err, errlen, "tls: cannot set the cipher suites");
        return TF_ETLS;
    }
    /* set_groups orders the TLS 1.3 key shares and refuses other groups.
     * For TLS 1.2 ECDHE, wolfSSL's native API has no server-side limit (a
     * server's UseSupportedCurve list is merged with the client's, and the
     * compatibility layer's curves list is not built in): wolfSSL prefers a
     * 256-bit curve, then the next larger one the client offers, so only a
     * client offering none of ours could get P-521, and hello.c refuses
     * that ClientHello. No FFDHE group is named, and no DHE suite is
     * enabled, so finite-field DH is never chosen. */
    int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1};
    if (wolfSSL_CTX_set_groups(w, groups, 3) != WOLFSSL_SUCCESS) {
        set_err(err, errlen, "tls: cannot set the key exchange groups");
        return TF_ETLS;
    }
    /* Resumption is by ticket only: no server-side session cache. */
    wolfSSL_CTX_set_session_cache_mode(w, WOLFSSL_SESS_CACHE_OFF);
    tf_tls__install_io(w);
    if (c->tickets != NULL) {
        if (tf_tls__tickets_install(c->tickets, w) != 0) {
            set_err(err, errlen, "tls: cannot install the session-ticket callback");
            return TF_ETLS;
        }
    } else {
        /* All three: with WOLFSSL_TLS13_TICKET_BEFORE_FINISHED wolfSSL sends
         * a TLS 1.3 ticket with its own default key whatever num_tickets
         * says, unless no_ticket_TLSv13 is set. */
        wolfSSL_CTX_NoTicketTLSv12(w);
        wolfSSL_CTX_set_num_tickets(w, 0);
        if (wolfSSL_CTX_no_ticket_TLSv13(w) != 0) { /* 0 on success, unlike the others */
            set_err(err, errlen, "tls: cannot turn TLS 1.3 tickets off");
            return TF_ETLS;
        }
    }
    return 0;
}

/* A wolfSSL context with c's settings and bundle b as its certificate, in
 * *out (the caller's reference). */
static int new_wctx(const tf_tls_ctx_t *c, const tf_cs_bundle_t *b, WOLFSSL_CTX **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    WOLFSSL_CTX *w =
        wolfSSL_CTX_new(c->tls13_only ? wolfTLSv1_3_server_method() : wolfSSLv23_server_method());
    if (w == NULL) {
        set_err(err, errlen, "tls: cannot create a wolfSSL context");
        return TF_ETLS;
    }
    int rc = configure(c, w, b, err, errlen);
    /* Only the default's failure has a reader (tf_tls_ctx_new); a tenant's
     * falls back to loading into the connection, which fails in words. */
    if (rc == 0 && (rc = load_bundle(w, NULL, b)) != 0)
        set_err(err, errlen, "%s: wolfSSL refuses the default certificate: check the bundle",
                tf_cs_bundle_name(b));
    if (rc != 0) {
        wolfSSL_CTX_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

#ifdef WOLFSSL_HAVE_SWITCHCTX
/* Moves the session's WOLFSSL, before its handshake, to the cached context
 * for b, building it on a miss the cache admits. 0 when switched.
 * Otherwise -1, with s->error set when the connection must fail, unset
 * when the caller may load the bundle into the connection instead. */
static int switch_ctx(tf_tls_session_t *s, const tf_cs_bundle_t *b)
{
    tf_tls_ctx_t *c = s->ctx;
    WOLFSSL_CTX *w = tf_tls__cache_get(&c->cache, b), *built = NULL;
    if (w == NULL) {
        if (!tf_tls__cache_admit(&c->cache, b))
            return -1;
        if (new_wctx(c, b, &built, NULL, 0) != 0)
            return -1;
        c->cache.stats.builds++;
        w = built;
    }
    /* The connection takes its own reference to w, so that an eviction
     * (below, or by a later handshake) leaves w to the connections on it. */
    int ret = wolfSSL_SwitchCTX(s->ssl, w);
    if (built != NULL && tf_tls__cache_put(&c->cache, b, built) != 0)
        wolfSSL_CTX_free(built);
    if (ret != WOLFSSL_SUCCESS) {
        s->error = "cannot switch to the selected certificate";
        return -1;
    }
    return 0;
}
#endif

int tf_tls__select(tf_tls_session_t *s, const char *sni, size_t len)
{
    s->selected = true;
    /* A NUL inside the name would make the copy below (used for routing and
     * the log) differ from what is looked up: such a name is simply invalid,
     * an SNI that matches nothing. */
    if (sni != NULL && memchr(sni, '\0', len) != NULL) {
        sni = "";
        len = 0;
    }
    /* Kept for the log: wolfSSL forgets it when it resets after a shutdown,
     * and never sees it when the name is rejected. A few dozen bytes. */
    if (sni != NULL && len > 0 && s->sni == NULL && (s->sni = strndup(sni, len)) == NULL) {
        s->error = "out of memory";
        return -1;
    }
    const tf_cs_bundle_t *b = tf_cs_snapshot_select(s->snap, sni, len, &s->how);
    if (b == NULL) {
        s->error = "no certificate to serve";
        return -1;
    }
    if (s->how == TF_CS_SEL_DEFAULT && s->ctx->reject_unknown_sni) {
        s->rejected = true;
        s->error = "unknown SNI rejected: unrecognized_name";
        return -1;
    }
    s->served = b;
    /* The context already holds its default certificate. */
    if (b == s->ctx->def_bundle)
        return 0;
#ifdef WOLFSSL_HAVE_SWITCHCTX
    if (switch_ctx(s, b) == 0)
        return 0;
    if (s->error != NULL)
        return -1;
    s->ctx->cache.stats.fallbacks++;
#endif
    /* No tenant context (the bundle's first handshake lately, wolfSSL
     * without our patch, or it could not be built): the bundle goes into
     * the connection, and wolfSSL frees that
     * copy when the handshake ends. This includes a newer default after a
     * reload. The suites (and TLS 1.3 signature algorithms) follow the key
     * type; the context's already fit a key of the default's type. */
    if (load_bundle(NULL, s->ssl, b) != 0 ||
        (tf_cs_bundle_key_type(b) != tf_cs_bundle_key_type(s->ctx->def_bundle) &&
         wolfSSL_set_cipher_list(s->ssl, suites_for(b)) != WOLFSSL_SUCCESS)) {
        s->error = "cannot load the selected certificate";
        return -1;
    }
    return 0;
}

/* Frees what an acme provider handed over, wiping the key. */
static void acme_cert_dispose(tf_tls_acme_cert_t *ac)
{
    if (ac->key != NULL)
        explicit_bzero(ac->key, ac->key_len);
    free(ac->key);
    free(ac->cert);
    *ac = (tf_tls_acme_cert_t){0};
}

int tf_tls__select_acme(tf_tls_session_t *s, const char *sni, size_t len)
{
    tf_tls_acme_cert_t ac = {0};
    if (!s->ctx->acme_fn(s->ctx->acme_ud, sni, len, &ac))
        return 0;
    s->selected = true;
    s->acme = true;
    s->how = TF_CS_SEL_EXACT;
    /* Loaded into this connection only: a validation certificate serves a
     * handful of handshakes in its life, so no context is worth building.
     * The key is ECDSA (tls.h): over an RSA default, the suites follow. */
    bool ok = ac.cert_len <= INT32_MAX && ac.key_len <= INT32_MAX &&
              (s->sni = strndup(sni, len)) != NULL &&
              wolfSSL_use_certificate_buffer(s->ssl, ac.cert, (long)ac.cert_len,
                                             WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS &&
              wolfSSL_use_PrivateKey_buffer(s->ssl, ac.key, (long)ac.key_len,
                                            WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS &&
              (tf_cs_bundle_key_type(s->ctx->def_bundle) != TF_CS_KEY_RSA ||
               wolfSSL_set_cipher_list(s->ssl, k_suites_ec) == WOLFSSL_SUCCESS);
    acme_cert_dispose(&ac);
    if (!ok) {
        s->error = "cannot load the tls-alpn-01 validation certificate";
        return -1;
    }
    return 1;
}

/* The shared generator, seeded from getrandom(2) (WOLFSSL_GETRANDOM in
 * scripts/build-wolfssl.sh): its periodic reseeds need no descriptor, so
 * running out of them cannot leave it failed for every later connection. */
static int new_rng(tf_tls_ctx_t *c, char *err, size_t errlen)
{
#ifdef WOLFSSL_HAVE_CTX_SHARED_RNG
    c->rng = calloc(1, sizeof *c->rng);
    if (c->rng == NULL)
        return TF_ENOMEM;
    if (wc_InitRng(c->rng) != 0) {
        free(c->rng);
        c->rng = NULL;
        set_err(err, errlen, "tls: cannot seed the random number generator");
        return TF_ETLS;
    }
#else
    (void)c;
    (void)err;
    (void)errlen;
#endif
    return 0;
}

void tf_tls__rng_check(tf_tls_ctx_t *ctx)
{
    byte b;
    if (ctx->rng != NULL && !ctx->rng_failed && wc_RNG_GenerateBlock(ctx->rng, &b, 1) != 0)
        ctx->rng_failed = true;
}

void tf_tls__rng_recover(tf_tls_ctx_t *ctx)
{
    if (!ctx->rng_failed || ctx->rng == NULL)
        return;
    wc_FreeRng(ctx->rng);
    /* On failure it stays unusable and failed: the next session tries
     * again, and handshakes meanwhile fail as they would have. */
    if (wc_InitRng(ctx->rng) == 0)
        ctx->rng_failed = false;
}

int tf_tls_ctx_new(const tf_tls_ctx_opts_t *opts, const tf_cs_snapshot_t *snap, tf_tls_ctx_t **out,
                   char *err, size_t errlen)
{
    *out = NULL;
    const tf_cs_bundle_t *def = tf_cs_snapshot_default(snap);
    if (def == NULL) {
        set_err(err, errlen, "tls: no default certificate: set tls.default_cert");
        return TF_ENOCERT;
    }
    tf_tls_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TF_ENOMEM;
    c->reject_unknown_sni = opts->reject_unknown_sni;
    c->tls13_only = opts->tls13_only;
    c->acme_fn = opts->acme;
    c->acme_ud = opts->acme_ud;
    c->tickets = opts->tickets != NULL ? tf_tls_tickets_ref(opts->tickets) : NULL;
    tf_tls__cache_init(&c->cache, opts->ctx_cache, opts->ctx_cache_eager);
    int rc = new_rng(c, err, errlen);
    if (rc == 0)
        rc = new_wctx(c, def, &c->wctx, err, errlen);
    if (rc != 0) {
        tf_tls_ctx_free(c);
        return rc;
    }
    c->def_bundle = tf_cs_bundle_ref((tf_cs_bundle_t *)def);
    *out = c;
    return 0;
}

void tf_tls_ctx_free(tf_tls_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    tf_tls__cache_dispose(&ctx->cache);
    wolfSSL_CTX_free(ctx->wctx);
    if (ctx->rng != NULL) {
        wc_FreeRng(ctx->rng);
        free(ctx->rng);
    }
    if (ctx->def_bundle != NULL)
        tf_cs_bundle_unref((tf_cs_bundle_t *)ctx->def_bundle);
    if (ctx->tickets != NULL)
        tf_tls_tickets_unref(ctx->tickets);
    free(ctx);
}
