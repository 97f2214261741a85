/* TLS client sessions, for backends that speak TLS (SPEC §14). A context per
 * trust setting; sessions run over the same memory buffers as the server's
 * (session.c), so a backend stream drives one exactly like a client's. */
#include "tls/tls_internal.h"

#include "certstore/certstore.h"
#include "common/err.h"

#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sessions to resume, per peer: a few, replaced oldest first. */
enum { RESUME_SLOTS = 16 };

typedef struct {
    unsigned char id[WC_SHA256_DIGEST_SIZE];
    WOLFSSL_SESSION *sess; /* NULL: empty */
    uint64_t age;
} resume_slot_t;

struct tf_tls_client_ctx {
    WOLFSSL_CTX *wctx;
    bool verify;
    atomic_uint refs; /* the owner's and one per session */
    resume_slot_t slots[RESUME_SLOTS];
    uint64_t clock;
};

int tf_tls_client_ctx_new(const tf_tls_client_opts_t *opts, tf_tls_client_ctx_t **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    tf_tls_client_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TF_ENOMEM;
    c->verify = opts->verify;
    atomic_init(&c->refs, 1);
    c->wctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (c->wctx == NULL) {
        free(c);
        snprintf(err, errlen, "cannot create a TLS client context");
        return TF_ENOMEM;
    }
    wolfSSL_CTX_SetMinVersion(c->wctx, WOLFSSL_TLSV1_2);
    tf_tls__install_io(c->wctx);
    int rc = 0;
    if (opts->verify)
        rc = tf_cs_ca_load(c->wctx, opts->ca_file, err, errlen);
    else
        wolfSSL_CTX_set_verify(c->wctx, WOLFSSL_VERIFY_NONE, NULL);
    if (rc != 0) {
        tf_tls_client_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void tf_tls_client_ctx_free(tf_tls_client_ctx_t *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    for (size_t i = 0; i < RESUME_SLOTS; i++)
        wolfSSL_SESSION_free(c->slots[i].sess);
    wolfSSL_CTX_free(c->wctx);
    free(c);
}

static resume_slot_t *slot_find(tf_tls_client_ctx_t *c, const unsigned char *id)
{
    for (size_t i = 0; i < RESUME_SLOTS; i++) {
        if (c->slots[i].sess != NULL && memcmp(c->slots[i].id, id, sizeof c->slots[i].id) == 0)
            return &c->slots[i];
    }
    return NULL;
}

int tf_tls_session_resume_by(tf_tls_session_t *s, const void *id, size_t len)
{
    if (!s->client || wc_Sha256Hash(id, (word32)len, s->cl->resume_id) != 0)
        return TF_EINVAL;
    s->cl->resume = true;
    resume_slot_t *slot = slot_find(s->cl->ctx, s->cl->resume_id);
    if (slot != NULL && wolfSSL_set_session(s->ssl, slot->sess) != WOLFSSL_SUCCESS)
        return TF_EINVAL; /* a full handshake then */
    s->cl->offered = slot != NULL;
    return 0;
}

bool tf_tls_session_forget_offered(tf_tls_session_t *s)
{
    if (!s->client || !s->cl->offered)
        return false;
    resume_slot_t *slot = slot_find(s->cl->ctx, s->cl->resume_id);
    if (slot != NULL) {
        wolfSSL_SESSION_free(slot->sess);
        slot->sess = NULL;
    }
    s->cl->offered = false;
    s->cl->resume = false;
    return true;
}

void tf_tls__client_keep_session(tf_tls_session_t *s)
{
    tf_tls_client_ctx_t *c = s->cl->ctx;
    if (!s->cl->resume || !s->established || s->failed)
        return;
    WOLFSSL_SESSION *sess = wolfSSL_get1_session(s->ssl);
    if (sess == NULL)
        return;
    resume_slot_t *slot = slot_find(c, s->cl->resume_id);
    for (size_t i = 0; slot == NULL && i < RESUME_SLOTS; i++) {
        if (c->slots[i].sess == NULL)
            slot = &c->slots[i];
    }
    if (slot == NULL) { /* every slot taken: the oldest goes */
        slot = &c->slots[0];
        for (size_t i = 1; i < RESUME_SLOTS; i++) {
            if (c->slots[i].age < slot->age)
                slot = &c->slots[i];
        }
    }
    wolfSSL_SESSION_free(slot->sess);
    memcpy(slot->id, s->cl->resume_id, sizeof slot->id);
    slot->sess = sess;
    slot->age = ++c->clock;
}

/* wolfSSL matches an IPv6 subjectAltName as the text it writes for it:
 * eight groups of four hex digits (asn.c, GenerateDNSEntryIPString, 5.5.4
 * and 5.7.2), compared without case; "::1" or "[::1]" never would. Other
 * names are returned as they are. */
static const char *ip6_as_wolfssl(const char *name, char out[40])
{
    char bare[INET6_ADDRSTRLEN];
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '[' && name[n - 1] == ']' && n - 2 < sizeof bare) {
        memcpy(bare, name + 1, n - 2);
        bare[n - 2] = '\0';
    } else if (n < sizeof bare) {
        memcpy(bare, name, n + 1);
    } else {
        return name;
    }
    unsigned char a[16];
    if (inet_pton(AF_INET6, bare, a) != 1)
        return name;
    for (int i = 0; i < 8; i++)
        snprintf(out + 5 * i, 40 - 5 * (size_t)i, "%02X%02X%s", a[2 * i], a[2 * i + 1],
                 i < 7 ? ":" : "");
    return out;
}

/* SNI and the name the certificate must hold. */
static bool client_names(tf_tls_session_t *s, const tf_tls_client_ctx_t *c, const char *sni,
                         const char *name)
{
    if (sni != NULL && wolfSSL_UseSNI(s->ssl, WOLFSSL_SNI_HOST_NAME, sni,
                                      (unsigned short)strlen(sni)) != WOLFSSL_SUCCESS)
        return false;
    char ip6[40];
    if (c->verify && name != NULL &&
        wolfSSL_check_domain_name(s->ssl, ip6_as_wolfssl(name, ip6)) != WOLFSSL_SUCCESS)
        return false;
    /* The backend speaks HTTP/1.1 (or whatever mode tcp carries): no ALPN. */
    return true;
}

tf_tls_session_t *tf_tls_client_session_new(tf_tls_client_ctx_t *c, const char *sni,
                                            const char *name)
{
    tf_tls_session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->ssl = wolfSSL_new(c->wctx);
    if (s->ssl == NULL) {
        free(s);
        return NULL;
    }
    s->client = true;
    s->cl = calloc(1, sizeof *s->cl);
    if (s->cl == NULL) {
        tf_tls_session_free(s);
        return NULL;
    }
    s->cl->ctx = c;
    atomic_fetch_add(&c->refs, 1);
    wolfSSL_SetIOReadCtx(s->ssl, s);
    wolfSSL_SetIOWriteCtx(s->ssl, s);
    if (!client_names(s, c, sni, name)) {
        tf_tls_session_free(s);
        return NULL;
    }
    return s;
}

/* A verification failure, in words an operator searches for. Static
 * strings: a session keeps no buffer for its reason. */
const char *tf_tls__client_error(int e)
{
    switch (e) {
    case DOMAIN_NAME_MISMATCH:
    case IPADDR_MISMATCH:
        return "certificate verify failed: the certificate does not name the backend (tls_sni or "
               "its address)";
    case ASN_NO_SIGNER_E:
        return "certificate verify failed: no trusted CA signed it (tls_verify)";
    case ASN_SELF_SIGNED_E:
        return "certificate verify failed: self-signed";
    case ASN_AFTER_DATE_E:
        return "certificate verify failed: expired";
    case ASN_BEFORE_DATE_E:
        return "certificate verify failed: not yet valid";
    case ASN_SIG_CONFIRM_E:
        return "certificate verify failed: bad signature";
    default:
        return NULL;
    }
}
