/* tls/: the cache of tenant contexts (tls_internal.h, docs/TLS.md). More
 * tenants than the cache holds, each served its own certificate and chain
 * (leaf and intermediate, never the root: checked by openssl s_client);
 * RSA and ECDSA tenants over a default of the other type; session tickets
 * on tenant contexts, across an eviction; a bundle replaced on disk while
 * the cache holds the old one. Fixtures: cache-fixtures.sh. */
#include "harness.h"

#include "common/err.h"
#include "tls/tls_internal.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NTENANTS = 12 };

/* Without our wolfSSL patch (TLSFRONT_WOLFSSL=system) there is no cache:
 * every tenant handshake loads its bundle into the connection, and only the
 * certificates served are checked. */
#ifdef WOLFSSL_HAVE_SWITCHCTX
static const bool k_cached = true;
#else
static const bool k_cached = false;
#endif
#define CACHE_EQ(...)                                                                              \
    do {                                                                                           \
        if (k_cached)                                                                              \
            cr_expect_eq(__VA_ARGS__);                                                             \
    } while (0)

static char fx[1024];    /* the fixtures */
static char certs[1200]; /* a copy of fx/ecdsa that tests may change */

static void sh(const char *cmd)
{
    cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    hx_setup(false);
    const char *build = getenv("TF_BUILD_DIR");
    const char *src = getenv("TF_SOURCE_DIR");
    snprintf(fx, sizeof fx, "%s/tests/tls-fixtures/cache", build);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "bash '%s/tests/tls/cache-fixtures.sh' '%s'", src, fx);
    sh(cmd);
    snprintf(certs, sizeof certs, "%s/cache-certs", hx_dir());
    snprintf(cmd, sizeof cmd, "cp -r '%s/ecdsa' '%s' && chmod 600 '%s'/*", fx, certs, certs);
    sh(cmd);
}

TestSuite(tls_ctxcache, .init = setup, .fini = hx_teardown, .timeout = 120);

typedef struct {
    tf_cs_store_t *store;
    tf_cs_snapshot_t *snap;
} store_t;

/* A store over `dir` (bundles) with `def` as the default certificate. */
static void store_open(store_t *st, const char *dir, const char *def)
{
    const char *sources[] = {dir};
    tf_cs_store_opts_t o = {.sources = sources, .nsources = 1, .default_cert = def, .threads = 1};
    cr_assert_eq(tf_cs_store_new(&o, &st->store), 0);
    cr_assert_eq(tf_cs_store_build(st->store, 0, &st->snap), 0);
    cr_assert_not_null(tf_cs_snapshot_default(st->snap));
}

static void store_close(store_t *st)
{
    tf_cs_snapshot_unref(st->snap);
    tf_cs_store_free(st->store);
}

static void ecdsa_store(store_t *st)
{
    char def[1300];
    snprintf(def, sizeof def, "%s/default.pem", certs);
    store_open(st, certs, def);
}

/* Eager: every miss builds a context, so the counts below follow the
 * cache alone; the admission rule has its own test. */
static tf_tls_ctx_t *ctx_with(const store_t *st, unsigned cap, tf_tls_tickets_t *tickets)
{
    tf_tls_ctx_opts_t o = {.ctx_cache = cap, .tickets = tickets, .ctx_cache_eager = true};
    return hx_ctx_on(&o, st->snap);
}

static tf_tls__cache_stats_t stats(const tf_tls_ctx_t *ctx)
{
    tf_tls__cache_stats_t s;
    tf_tls__cache_stats(ctx, &s);
    return s;
}

/* One in-memory handshake (wolfSSL client, `version` 12 or 13, `ciphers`
 * NULL for its default); the served subject into subject (when it
 * succeeded) and the suite into cipher. Returns the server's status. */
static int visit(tf_tls_ctx_t *ctx, const store_t *st, int version, const char *ciphers,
                 const char *sni, char *subject, size_t len, char *cipher, size_t clen)
{
    WOLFSSL_CTX *cc = hx_client_ctx(version, ciphers);
    hx_pair_t *p = hx_pair_new_on(ctx, st->snap, cc, sni, true);
    int rc = hx_handshake(p);
    subject[0] = '\0';
    if (rc == TF_TLS_OK) {
        cr_assert_eq(p->client_err, 0);
        hx_peer_subject(p, subject, len);
        if (cipher != NULL)
            snprintf(cipher, clen, "%s", tf_tls_session_cipher(p->s));
    }
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    return rc;
}

static void expect_subject(tf_tls_ctx_t *ctx, const store_t *st, int version, const char *sni,
                           const char *subject)
{
    char got[256];
    int rc = visit(ctx, st, version, NULL, sni, got, sizeof got, NULL, 0);
    cr_assert_eq(rc, TF_TLS_OK, "TLS 1.%d, SNI %s", version - 10, sni);
    cr_expect_str_eq(got, subject, "TLS 1.%d, SNI %s", version - 10, sni);
}

Test(tls_ctxcache, more_tenants_than_the_cache_each_get_their_own_certificate)
{
    store_t st;
    ecdsa_store(&st);
    tf_tls_ctx_t *ctx = ctx_with(&st, 4, NULL);
    tf_tls__cache_stats_t s = stats(ctx);
    CACHE_EQ(s.cap, 4);
    CACHE_EQ(s.size, 0);

    /* Three rounds over 12 tenants through a cache of 4, alternating
     * versions: with least-recently-used eviction, a cyclic scan larger
     * than the cache misses every time. */
    char sni[64], subject[64];
    unsigned n = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < NTENANTS; i++, n++) {
            snprintf(sni, sizeof sni, "t%d.cache.example", i);
            snprintf(subject, sizeof subject, "/CN=t%d.cache.example", i);
            expect_subject(ctx, &st, n % 2 ? 12 : 13, sni, subject);
        }
    }
    s = stats(ctx);
    CACHE_EQ(s.builds, n);
    CACHE_EQ(s.hits, 0);
    CACHE_EQ(s.evictions, n - 4);
    CACHE_EQ(s.size, 4);
    CACHE_EQ(s.fallbacks, 0);

    /* t8..t11 are in, t8 the least recently used. The default, an unknown
     * name and no SNI need no tenant context. */
    expect_subject(ctx, &st, 13, "default.cache.example", "/CN=default.cache.example");
    expect_subject(ctx, &st, 12, "nobody.example", "/CN=default.cache.example");
    expect_subject(ctx, &st, 13, NULL, "/CN=default.cache.example");
    CACHE_EQ(stats(ctx).builds, n);
    /* A hit makes t8 the most recent: the RSA tenant then evicts t9, not
     * t8 (first in, first out would). */
    expect_subject(ctx, &st, 13, "t8.cache.example", "/CN=t8.cache.example");
    expect_subject(ctx, &st, 12, "rsa.cache.example", "/CN=rsa.cache.example");
    expect_subject(ctx, &st, 13, "t8.cache.example", "/CN=t8.cache.example");
    expect_subject(ctx, &st, 12, "t10.cache.example", "/CN=t10.cache.example");
    s = stats(ctx);
    CACHE_EQ(s.hits, 3, "t8, t8, t10");
    CACHE_EQ(s.builds, n + 1, "rsa");
    expect_subject(ctx, &st, 13, "t9.cache.example", "/CN=t9.cache.example");
    s = stats(ctx);
    CACHE_EQ(s.builds, n + 2, "t9 went for rsa");
    CACHE_EQ(s.size, 4);
    CACHE_EQ(s.evictions, n - 4 + 2);
    tf_tls_ctx_free(ctx);
    store_close(&st);
}

/* What a real client sees, tenant after tenant through a cache of 3:
 * its own leaf, then the intermediate, no root; the chain verifies. */
Test(tls_ctxcache, openssl_gets_leaf_and_intermediate_of_each_tenant)
{
    store_t st;
    ecdsa_store(&st);
    tf_tls_ctx_t *ctx = ctx_with(&st, 3, NULL);
    char args[2048], want[128], issuer[128];
    const char *names[] = {"t0", "t1", "t2", "t3", "rsa", "t4", "t0", "rsa", "t1", "default"};
    size_t nnames = sizeof names / sizeof names[0];
    for (size_t i = 0; i < nnames; i++) {
        const char *version = i % 2 ? "-tls1_2" : "-tls1_3";
        snprintf(args, sizeof args,
                 "-servername %s.cache.example -verify_hostname %s.cache.example %s "
                 "-showcerts -CAfile '%s/root.crt'",
                 names[i], names[i], version, fx);
        hx_peer_t p;
        hx_peer_start(&p, ctx, st.snap, args);
        int rc = hx_peer_handshake(&p);
        cr_expect_eq(rc, TF_TLS_OK, "%s %s: %s", names[i], version, tf_tls_session_error(p.s));
        hx_peer_stop(&p);
        const char *out = hx_peer_output(&p);
        snprintf(want, sizeof want, "subject=CN = %s.cache.example", names[i]);
        snprintf(issuer, sizeof issuer, "s:CN = %s.cache.example", names[i]);
        cr_expect_not_null(strstr(out, want), "%s %s:\n%s", names[i], version, out);
        cr_expect_not_null(strstr(out, issuer), "%s %s:\n%s", names[i], version, out);
        cr_expect_not_null(strstr(out, "s:CN = tlsfront cache test intermediate"), "%s", out);
        cr_expect_eq(strstr(out, "s:CN = tlsfront cache test root"), NULL, "root sent:\n%s", out);
        unsigned certs_seen = 0;
        for (const char *q = out; (q = strstr(q, "-----BEGIN CERTIFICATE-----")) != NULL; q++)
            certs_seen++;
        cr_expect_eq(certs_seen, 2, "%s %s:\n%s", names[i], version, out);
        cr_expect_not_null(strstr(out, "Verify return code: 0 (ok)"), "%s", out);
        cr_expect_not_null(strstr(out, i % 2 ? "TLSv1.2" : "TLSv1.3"), "%s", out);
    }
    tf_tls__cache_stats_t s = stats(ctx);
    CACHE_EQ(s.builds, 8, "t0 t1 t2 t3 rsa t4 t0 rsa(hit) t1");
    CACHE_EQ(s.hits, 1);
    CACHE_EQ(s.evictions, 5);
    tf_tls_ctx_free(ctx);
    store_close(&st);
}

/* TLS 1.2 suites follow the key type of the certificate served, whichever
 * the default's type: a client offering only ECDHE-RSA suites gets the RSA
 * tenant and is refused by an ECDSA one, and the other way round. */
static void key_types(const store_t *st, const char *rsa_sni, const char *ec_sni)
{
    tf_tls_ctx_t *ctx = ctx_with(st, 0, NULL);
    char subject[128], cipher[128];
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(
            visit(ctx, st, 12, NULL, rsa_sni, subject, sizeof subject, cipher, sizeof cipher),
            TF_TLS_OK);
        cr_expect_eq(strncmp(cipher, "ECDHE-RSA-", 10), 0, "%s: %s", rsa_sni, cipher);
        cr_assert_eq(
            visit(ctx, st, 12, NULL, ec_sni, subject, sizeof subject, cipher, sizeof cipher),
            TF_TLS_OK);
        cr_expect_eq(strncmp(cipher, "ECDHE-ECDSA-", 12), 0, "%s: %s", ec_sni, cipher);
        cr_expect_eq(visit(ctx, st, 12, "ECDHE-RSA-AES128-GCM-SHA256", rsa_sni, subject,
                           sizeof subject, NULL, 0),
                     TF_TLS_OK);
        cr_expect_neq(visit(ctx, st, 12, "ECDHE-RSA-AES128-GCM-SHA256", ec_sni, subject,
                            sizeof subject, NULL, 0),
                      TF_TLS_OK, "%s served to an RSA-only client", ec_sni);
        cr_expect_eq(visit(ctx, st, 12, "ECDHE-ECDSA-AES128-GCM-SHA256", ec_sni, subject,
                           sizeof subject, NULL, 0),
                     TF_TLS_OK);
        cr_expect_neq(visit(ctx, st, 12, "ECDHE-ECDSA-AES128-GCM-SHA256", rsa_sni, subject,
                            sizeof subject, NULL, 0),
                      TF_TLS_OK, "%s served to an ECDSA-only client", rsa_sni);
        /* TLS 1.3: the signature algorithm follows the key. */
        char want[128];
        snprintf(want, sizeof want, "/CN=%s", rsa_sni);
        expect_subject(ctx, st, 13, rsa_sni, want);
        snprintf(want, sizeof want, "/CN=%s", ec_sni);
        expect_subject(ctx, st, 13, ec_sni, want);
    }
    CACHE_EQ(stats(ctx).fallbacks, 0);
    tf_tls_ctx_free(ctx);
}

Test(tls_ctxcache, rsa_tenant_over_ecdsa_default)
{
    store_t st;
    ecdsa_store(&st);
    key_types(&st, "rsa.cache.example", "t1.cache.example");
    store_close(&st);
}

Test(tls_ctxcache, ecdsa_tenants_over_rsa_default)
{
    char def[1300];
    snprintf(def, sizeof def, "%s/rsa-default.pem", fx);
    store_t st;
    store_open(&st, certs, def);
    cr_assert_eq(tf_cs_bundle_key_type(tf_cs_snapshot_default(st.snap)), TF_CS_KEY_RSA);
    /* The default itself (RSA, the context's own) and an ECDSA tenant. */
    key_types(&st, "rsadefault.cache.example", "t2.cache.example");
    /* And an RSA tenant over the RSA default. */
    key_types(&st, "rsa.cache.example", "t3.cache.example");
    store_close(&st);
}

/* A handshake offering sess on st's snapshot: whether it resumed. */
static bool resumes(tf_tls_ctx_t *ctx, const store_t *st, WOLFSSL_CTX *cc, const char *sni,
                    WOLFSSL_SESSION *sess)
{
    hx_pair_t *p = hx_pair_new_on(ctx, st->snap, cc, sni, true);
    cr_assert_eq(wolfSSL_UseSessionTicket(p->c), WOLFSSL_SUCCESS);
    cr_assert_eq(wolfSSL_set_session(p->c, sess), WOLFSSL_SUCCESS);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK, "%s (client %d)", tf_tls_session_error(p->s),
                 p->client_err);
    bool r = tf_tls_session_resumed(p->s);
    cr_expect_eq(r, wolfSSL_session_reused(p->c) == 1);
    char buf[64];
    cr_assert_eq(hx_client_to_server(p, "ping", 4, buf, sizeof buf), 4);
    hx_pair_free(p);
    return r;
}

/* Full handshake on a tenant context, then resumption from its ticket: on
 * the same cached context, and on a new one after an eviction. */
Test(tls_ctxcache, tickets_resume_on_tenant_contexts)
{
    store_t st;
    ecdsa_store(&st);
    tf_tls_tickets_t *t = NULL;
    char err[256] = "";
    cr_assert_eq(tf_tls_tickets_new(NULL, 3600, &t, err, sizeof err), 0, "%s", err);
    tf_tls_ctx_t *ctx = ctx_with(&st, 2, t);
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        WOLFSSL_CTX *cc = hx_client_ctx(versions[i], NULL);
        WOLFSSL_SESSION *sess = hx_first_visit(ctx, st.snap, cc, "t5.cache.example");
        cr_expect(resumes(ctx, &st, cc, "t5.cache.example", sess), "TLS 1.%d, cached context",
                  versions[i] - 10);
        WOLFSSL_SESSION *rsa = hx_first_visit(ctx, st.snap, cc, "rsa.cache.example");
        cr_expect(resumes(ctx, &st, cc, "rsa.cache.example", rsa), "TLS 1.%d, RSA tenant",
                  versions[i] - 10);
        /* Two others push t5's context out; its ticket still opens. */
        expect_subject(ctx, &st, versions[i], "t6.cache.example", "/CN=t6.cache.example");
        expect_subject(ctx, &st, versions[i], "t7.cache.example", "/CN=t7.cache.example");
        uint64_t builds = stats(ctx).builds;
        cr_expect(resumes(ctx, &st, cc, "t5.cache.example", sess), "TLS 1.%d, rebuilt context",
                  versions[i] - 10);
        CACHE_EQ(stats(ctx).builds, builds + 1, "t5's context was not rebuilt");
        wolfSSL_SESSION_free(sess);
        wolfSSL_SESSION_free(rsa);
        wolfSSL_CTX_free(cc);
    }
    CACHE_EQ(stats(ctx).fallbacks, 0);
    tf_tls_ctx_free(ctx);
    tf_tls_tickets_unref(t);
    store_close(&st);
}

/* A reload replaces t0's bundle while a context still caches the old one:
 * sessions on the new snapshot get the new certificate, sessions still on
 * the old snapshot the old one (the cache is keyed by bundle, not name). */
Test(tls_ctxcache, replaced_bundle_is_served_though_the_old_one_is_cached)
{
    store_t st;
    ecdsa_store(&st);
    tf_tls_ctx_t *ctx = ctx_with(&st, 0, NULL);
    expect_subject(ctx, &st, 13, "t0.cache.example", "/CN=t0.cache.example");
    expect_subject(ctx, &st, 12, "t0.cache.example", "/CN=t0.cache.example");
    CACHE_EQ(stats(ctx).builds, 1);

    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cp '%s/t0-renewed.pem' '%s/.t0.new' && chmod 600 '%s/.t0.new' && "
             "mv '%s/.t0.new' '%s/t0.pem'",
             fx, certs, certs, certs, certs);
    sh(cmd);
    store_t next = {.store = st.store};
    cr_assert_eq(tf_cs_store_build(st.store, 0, &next.snap), 0);
    cr_assert_neq(next.snap, st.snap);

    for (int v = 12; v <= 13; v++) {
        expect_subject(ctx, &next, v, "t0.cache.example", "/CN=t0 renewed");
        expect_subject(ctx, &st, v, "t0.cache.example", "/CN=t0.cache.example");
        expect_subject(ctx, &next, v, "t1.cache.example", "/CN=t1.cache.example");
    }
    tf_tls__cache_stats_t s = stats(ctx);
    CACHE_EQ(s.size, 3, "old t0, new t0, t1 (the same bundle in both snapshots)");
    CACHE_EQ(s.builds, 3);
    tf_tls_ctx_free(ctx);
    tf_cs_snapshot_unref(next.snap);
    store_close(&st);
}

#ifdef WOLFSSL_HAVE_SWITCHCTX
/* wolfSSL_SwitchCTX (scripts/wolfssl-patches/<suite>/set-ssl-ctx-native.patch) on
 * its own: what the connection owned is freed (the sanitizer build would
 * report a leak), the new context is referenced (freed by the cache first,
 * it lives on with the connection), and a handshake under way refuses. */
static WOLFSSL_CTX *server_ctx(const char *pem)
{
    WOLFSSL_CTX *w = wolfSSL_CTX_new(wolfSSLv23_server_method());
    cr_assert_not_null(w);
    cr_assert_eq(wolfSSL_CTX_use_certificate_chain_file(w, pem), WOLFSSL_SUCCESS, "%s", pem);
    cr_assert_eq(wolfSSL_CTX_use_PrivateKey_file(w, pem, WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS,
                 "%s", pem);
    return w;
}

Test(tls_ctxcache, switch_ctx_frees_what_the_connection_owned)
{
    char a[1300], b[1300], c[1300];
    snprintf(a, sizeof a, "%s/default.pem", certs);
    snprintf(b, sizeof b, "%s/t4.pem", certs);
    snprintf(c, sizeof c, "%s/rsa.pem", certs);
    WOLFSSL_CTX *wa = server_ctx(a), *wb = server_ctx(b);
    WOLFSSL *ssl = wolfSSL_new(wa);
    cr_assert_not_null(ssl);
    /* The per-connection load of before: the WOLFSSL owns these copies. */
    cr_assert_eq(wolfSSL_use_certificate_chain_file(ssl, c), WOLFSSL_SUCCESS);
    cr_assert_eq(wolfSSL_use_PrivateKey_file(ssl, c, WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
    cr_assert_eq(wolfSSL_SwitchCTX(ssl, wb), WOLFSSL_SUCCESS);
    cr_assert_eq(wolfSSL_SwitchCTX(ssl, wb), WOLFSSL_SUCCESS, "the same context again");
    cr_assert_eq(wolfSSL_SwitchCTX(NULL, wb), BAD_FUNC_ARG);
    /* Both contexts go first, as an eviction and a reload would do. */
    wolfSSL_CTX_free(wb);
    wolfSSL_CTX_free(wa);
    wolfSSL_free(ssl);
}

Test(tls_ctxcache, switch_ctx_refuses_once_the_handshake_started)
{
    store_t st;
    ecdsa_store(&st);
    tf_tls_ctx_t *ctx = ctx_with(&st, 0, NULL);
    char pem[1300];
    snprintf(pem, sizeof pem, "%s/t4.pem", certs);
    WOLFSSL_CTX *other = server_ctx(pem);
    WOLFSSL_CTX *cc = hx_client_ctx(13, NULL);
    hx_pair_t *p = hx_pair_new_on(ctx, st.snap, cc, "t3.cache.example", false);
    cr_assert_eq(hx_handshake(p), TF_TLS_OK);
    cr_expect_eq(wolfSSL_SwitchCTX(p->s->ssl, other), BAD_STATE_E);
    char got[128];
    hx_peer_subject(p, got, sizeof got);
    cr_expect_str_eq(got, "/CN=t3.cache.example");
    hx_pair_free(p);
    wolfSSL_CTX_free(cc);
    wolfSSL_CTX_free(other);
    tf_tls_ctx_free(ctx);
    store_close(&st);
}
#endif

Test(tls_ctxcache, a_context_is_built_at_a_tenants_second_handshake)
{
    store_t st;
    ecdsa_store(&st);
    tf_tls_ctx_opts_t o = {.ctx_cache = 4};
    tf_tls_ctx_t *ctx = hx_ctx_on(&o, st.snap);

    /* First sight: served from the connection, remembered, nothing built. */
    expect_subject(ctx, &st, 13, "t1.cache.example", "/CN=t1.cache.example");
    tf_tls__cache_stats_t s = stats(ctx);
    CACHE_EQ(s.builds, 0);
    CACHE_EQ(s.first_sights, 1);
    CACHE_EQ(s.fallbacks, 1);
    CACHE_EQ(s.size, 0);
    /* Second: built and switched to; third: a hit. */
    expect_subject(ctx, &st, 12, "t1.cache.example", "/CN=t1.cache.example");
    expect_subject(ctx, &st, 13, "t1.cache.example", "/CN=t1.cache.example");
    s = stats(ctx);
    CACHE_EQ(s.builds, 1);
    CACHE_EQ(s.hits, 1);
    CACHE_EQ(s.fallbacks, 1);
    CACHE_EQ(s.size, 1);

    /* Two rounds over 12 tenants through a cache of 4 (eager, this cyclic
     * scan would build at all 24 handshakes). A build forgets the tenant's
     * first sight, so a tenant evicted before its next visit starts over:
     * at most one build per tenant here, however the 8-entry table of
     * first sights collides. Every handshake is a hit, a build or a first
     * sight. */
    char sni[64], subject[64];
    unsigned n = 3;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < NTENANTS; i++, n++) {
            snprintf(sni, sizeof sni, "t%d.cache.example", i);
            snprintf(subject, sizeof subject, "/CN=t%d.cache.example", i);
            expect_subject(ctx, &st, 13, sni, subject);
        }
    }
    s = stats(ctx);
    CACHE_EQ(s.hits + s.builds + s.first_sights, n);
    CACHE_EQ(s.fallbacks, s.first_sights, "only first sights load the bundle");
    cr_expect_leq(s.builds, NTENANTS, "a scan larger than the cache built %llu contexts",
                  (unsigned long long)s.builds);
    tf_tls_ctx_free(ctx);
    store_close(&st);
}

#ifdef WOLFSSL_HAVE_CTX_SHARED_RNG
/* The worker's shared generator failing (wolfSSL then keeps it failed)
 * costs the handshake that saw it, not every later one: the next session
 * instantiates it again. A failed Hash_DRBG is status 2 (DRBG_FAILED in
 * wolfcrypt/src/random.c). */
Test(tls_ctxcache, a_failed_shared_generator_is_started_again)
{
    store_t st;
    ecdsa_store(&st);
    tf_tls_ctx_t *ctx = ctx_with(&st, 4, NULL);
    char got[256];
    cr_assert_not_null(ctx->rng);
    ctx->rng->status = 2;
    /* TLS 1.2: the first random bytes are the ServerHello's. (In TLS 1.3
     * they are the key share's, where wolfSSL 5.5.4 leaks the half-made
     * entry when generation fails.) */
    int rc = visit(ctx, &st, 12, NULL, "default.cache.example", got, sizeof got, NULL, 0);
    cr_expect_neq(rc, TF_TLS_OK, "a failed generator served a handshake");
    cr_expect(ctx->rng_failed);
    expect_subject(ctx, &st, 13, "default.cache.example", "/CN=default.cache.example");
    expect_subject(ctx, &st, 12, "t1.cache.example", "/CN=t1.cache.example");
    cr_expect_not(ctx->rng_failed);
    tf_tls_ctx_free(ctx);
    store_close(&st);
}
#endif
