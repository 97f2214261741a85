/* tls-alpn-01 (RFC 8737) with a real peer: `openssl s_client -alpn
 * acme-tls/1` gets the validation certificate the provider holds for its
 * SNI, and the acme-tls/1 protocol; without an entry, or without
 * acme-tls/1 in the offer, the normal certificate and never acme-tls/1.
 * The validation certificate is made with openssl at test time. */
#include "harness.h"

#include "common/err.h"

#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *host; /* the one host with a validation pending */
    uint8_t *cert, *key;
    size_t cert_len, key_len;
    int calls;
} provider_t;

static provider_t prov;

static bool provide(void *ud, const char *host, size_t len, tf_tls_acme_cert_t *out)
{
    provider_t *p = ud;
    p->calls++;
    if (strlen(p->host) != len || strncasecmp(p->host, host, len) != 0)
        return false;
    out->cert = malloc(p->cert_len);
    out->key = malloc(p->key_len);
    cr_assert(out->cert != NULL && out->key != NULL);
    memcpy(out->cert, p->cert, p->cert_len);
    memcpy(out->key, p->key, p->key_len);
    out->cert_len = p->cert_len;
    out->key_len = p->key_len;
    return true;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    uint8_t *buf = malloc(65536);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    cr_assert_gt(*len, 0);
    return buf;
}

/* A self-signed P-256 certificate with the host as its SAN and the
 * critical id-pe-acmeIdentifier extension (RFC 8737 §3; the digest is
 * arbitrary here: only the ACME server checks it). */
static void make_validation_cert(const char *host)
{
    char cmd[2048];
    const char *d = hx_dir();
    snprintf(cmd, sizeof cmd,
             "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout v.key -out v.crt -days 7 -subj /CN=acme-validation "
             "-addext 'subjectAltName=DNS:%s' "
             "-addext '1.3.6.1.5.5.7.1.31=critical,DER:0420%064d' 2>/dev/null && "
             "openssl x509 -in v.crt -outform DER -out v.der && "
             "openssl pkey -in v.key -outform DER -out vkey.der",
             d, host, 0);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char path[1200];
    snprintf(path, sizeof path, "%s/v.der", d);
    prov.cert = slurp(path, &prov.cert_len);
    snprintf(path, sizeof path, "%s/vkey.der", d);
    prov.key = slurp(path, &prov.key_len);
    prov.host = host;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    hx_setup(false);
    memset(&prov, 0, sizeof prov);
    /* A host the store has a certificate for: the ACME server must get the
     * validation certificate anyway. */
    make_validation_cert("portal.acme.example");
}

static void teardown(void)
{
    free(prov.cert);
    free(prov.key);
    hx_teardown();
}

TestSuite(tls_acme_alpn, .init = setup, .fini = teardown, .timeout = 60);

static tf_tls_ctx_t *acme_ctx(bool reject_unknown)
{
    tf_tls_ctx_opts_t o = {.reject_unknown_sni = reject_unknown, .acme = provide, .acme_ud = &prov};
    return hx_ctx_on(&o, hx_snap());
}

/* One handshake with s_client ARGS; returns the server's result and leaves
 * s_client's output in the log (checked by the caller). */
static int run_peer(tf_tls_ctx_t *ctx, const char *args, bool *acme, char *alpn, size_t alpnlen,
                    bool *served)
{
    hx_peer_t p;
    hx_peer_start(&p, ctx, NULL, args);
    int rc = hx_peer_handshake(&p);
    *acme = tf_tls_session_acme(p.s);
    const char *a = rc == TF_TLS_OK ? tf_tls_session_alpn(p.s) : NULL;
    snprintf(alpn, alpnlen, "%s", a ? a : "(none)");
    *served = tf_tls_session_served(p.s) != NULL;
    hx_peer_stop(&p);
    return rc;
}

static const char *output(void)
{
    static char buf[65536];
    char path[1200];
    snprintf(path, sizeof path, "%s/s_client.log", hx_dir());
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(tls_acme_alpn, acme_tls_1_gets_the_validation_certificate)
{
    tf_tls_ctx_t *ctx = acme_ctx(false);
    const char *versions[] = {"-tls1_3", "-tls1_2"};
    for (size_t i = 0; i < 2; i++) {
        char args[256], alpn[32];
        bool acme, served;
        snprintf(args, sizeof args, "-servername portal.acme.example -alpn acme-tls/1 %s",
                 versions[i]);
        int calls = prov.calls;
        cr_assert_eq(run_peer(ctx, args, &acme, alpn, sizeof alpn, &served), TF_TLS_OK, "%s",
                     output());
        cr_expect(acme, "%s", versions[i]);
        cr_expect_not(served);
        cr_expect_str_eq(alpn, "acme-tls/1");
        cr_expect_eq(prov.calls, calls + 1);
        const char *o = output();
        cr_expect(strstr(o, "ALPN protocol: acme-tls/1") != NULL, "%s", o);
        cr_expect(strstr(o, "CN = acme-validation") != NULL, "%s", o);
    }
    tf_tls_ctx_free(ctx);
}

Test(tls_acme_alpn, no_entry_means_the_normal_certificate_and_no_acme_tls_1)
{
    tf_tls_ctx_t *ctx = acme_ctx(false);
    char alpn[32];
    bool acme, served;
    cr_assert_eq(run_peer(ctx, "-servername chat.acme.example -alpn acme-tls/1", &acme, alpn,
                          sizeof alpn, &served),
                 TF_TLS_OK);
    cr_expect_not(acme);
    cr_expect(served);
    cr_expect_str_eq(alpn, "(none)");
    const char *o = output();
    cr_expect(strstr(o, "No ALPN negotiated") != NULL, "%s", o);
    cr_expect(strstr(o, "acme-validation") == NULL, "%s", o);
    cr_expect(strstr(o, "acme.example") != NULL, "%s", o);
    /* acme-tls/1 among other protocols with no entry: never chosen. */
    cr_assert_eq(run_peer(ctx, "-servername chat.acme.example -alpn acme-tls/1,http/1.1", &acme,
                          alpn, sizeof alpn, &served),
                 TF_TLS_OK);
    cr_expect_str_eq(alpn, "http/1.1");
    tf_tls_ctx_free(ctx);
}

Test(tls_acme_alpn, ordinary_clients_are_unaffected_and_never_ask_the_provider)
{
    tf_tls_ctx_t *ctx = acme_ctx(false);
    char alpn[32];
    bool acme, served;
    cr_assert_eq(run_peer(ctx, "-servername portal.acme.example -alpn h2,http/1.1", &acme, alpn,
                          sizeof alpn, &served),
                 TF_TLS_OK);
    cr_expect_not(acme);
    cr_expect(served);
    cr_expect_str_eq(alpn, "http/1.1");
    cr_assert_eq(
        run_peer(ctx, "-servername portal.acme.example", &acme, alpn, sizeof alpn, &served),
        TF_TLS_OK);
    cr_expect_not(acme);
    cr_expect_eq(prov.calls, 0, "the provider is asked only for an acme-tls/1 offer");
    const char *o = output();
    cr_expect(strstr(o, "acme-validation") == NULL, "%s", o);
    tf_tls_ctx_free(ctx);
}

Test(tls_acme_alpn, a_name_without_a_certificate_is_validated_under_reject)
{
    free(prov.cert);
    free(prov.key);
    make_validation_cert("new.example");
    tf_tls_ctx_t *ctx = acme_ctx(true);
    char alpn[32];
    bool acme, served;
    cr_assert_eq(run_peer(ctx, "-servername new.example -alpn acme-tls/1", &acme, alpn, sizeof alpn,
                          &served),
                 TF_TLS_OK, "%s", output());
    cr_expect(acme);
    cr_expect_str_eq(alpn, "acme-tls/1");
    /* The same name for an ordinary client: still unknown, refused. */
    cr_expect_eq(
        run_peer(ctx, "-servername new.example -alpn http/1.1", &acme, alpn, sizeof alpn, &served),
        TF_ETLS);
    tf_tls_ctx_free(ctx);
}

Test(tls_acme_alpn, without_a_provider_acme_tls_1_is_never_negotiated)
{
    tf_tls_ctx_t *ctx = hx_ctx(false, false, NULL);
    char alpn[32];
    bool acme, served;
    cr_assert_eq(run_peer(ctx, "-servername portal.acme.example -alpn acme-tls/1", &acme, alpn,
                          sizeof alpn, &served),
                 TF_TLS_OK);
    cr_expect_not(acme);
    cr_expect_str_eq(alpn, "(none)");
    tf_tls_ctx_free(ctx);
}
