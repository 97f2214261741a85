/* TLS sessions over memory buffers (SPEC §6): wolfSSL reads the ciphertext
 * the proxy fed and writes into an output queue the proxy drains. */
#include "tls/tls_internal.h"

#include "common/err.h"

#include <wolfssl/error-ssl.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* First allocation of the output queue: a handshake flight or a few records. */
enum { OUT_MIN = 4096 };

/* One emptied queue buffer kept per thread for the next queue that needs
 * one: a keep-alive request fills and empties the input queue and then the
 * output queue, each within one callback, so this spares two malloc/free
 * pairs per request while an idle session still holds no buffer. */
enum { SPARE_MAX = 64 * 1024 };
static _Thread_local uint8_t *spare;
static _Thread_local size_t spare_cap;

static void buf_free(tf_tls__buf_t *b)
{
    if (b->buf != NULL && b->cap <= SPARE_MAX && b->cap > spare_cap) {
        free(spare);
        spare = b->buf;
        spare_cap = b->cap;
    } else {
        free(b->buf);
    }
    *b = (tf_tls__buf_t){0};
}

void tf_tls_thread_cleanup(void)
{
    tf_tls__alloc_thread_cleanup();
    free(spare);
    spare = NULL;
    spare_cap = 0;
}

static size_t buf_pending(const tf_tls__buf_t *b)
{
    return b->len - b->off;
}

static int buf_append(tf_tls__buf_t *b, const void *data, size_t n, size_t min_cap)
{
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len < n) {
        if (b->off > 0) { /* slide the pending bytes to the front first */
            memmove(b->buf, b->buf + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->buf == NULL && spare != NULL && spare_cap >= n && spare_cap >= min_cap) {
            b->buf = spare;
            b->cap = spare_cap;
            spare = NULL;
            spare_cap = 0;
        }
        if (b->cap - b->len < n) {
            size_t cap = b->cap > 0 ? b->cap : min_cap;
            while (cap - b->len < n)
                cap *= 2;
            uint8_t *p = realloc(b->buf, cap);
            if (p == NULL)
                return TF_ENOMEM;
            b->buf = p;
            b->cap = cap;
        }
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    return 0;
}

/* Drops the buffer once everything in it has been consumed, so an idle
 * session holds no buffer of ours. */
static void buf_trim(tf_tls__buf_t *b)
{
    if (b->off == b->len)
        buf_free(b);
}

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    (void)ssl;
    tf_tls_session_t *s = arg;
    size_t n = buf_pending(&s->in);
    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if (n > (size_t)sz)
        n = (size_t)sz;
    memcpy(buf, s->in.buf + s->in.off, n);
    s->in.off += n;
    return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    (void)ssl;
    tf_tls_session_t *s = arg;
    if (buf_append(&s->out, buf, (size_t)sz, OUT_MIN) != 0)
        return WOLFSSL_CBIO_ERR_GENERAL;
    return sz;
}

tf_tls_session_t *tf_tls__session_of(WOLFSSL *ssl)
{
    return wolfSSL_GetIOReadCtx(ssl);
}

void tf_tls__install_io(WOLFSSL_CTX *wctx)
{
    wolfSSL_CTX_SetIORecv(wctx, io_recv);
    wolfSSL_CTX_SetIOSend(wctx, io_send);
}

/* The one place that turns wolfSSL's answers into ours. */
static int map_result(tf_tls_session_t *s, int ret)
{
    int e = wolfSSL_get_error(s->ssl, ret);
    switch (e) {
    case WOLFSSL_ERROR_WANT_READ:
        return TF_TLS_WANT_READ;
    case WOLFSSL_ERROR_ZERO_RETURN:
        s->closed = true;
        return TF_TLS_CLOSED;
    case MEMORY_E:
        s->error = "out of memory";
        s->failed = true;
        return TF_ENOMEM;
    default:
        break;
    }
    /* WANT_WRITE cannot happen (the output queue always accepts) and is an
     * error like every other code. Every error is final. A certificate
     * callback's own reason wins. */
    s->failed = true;
    if (s->client) {
        const char *why = tf_tls__client_error(e);
        if (why != NULL) {
            s->error = why;
            return TF_ETLS;
        }
    } else {
        tf_tls__rng_check(s->ctx);
    }
    if (s->selected && s->served == NULL && s->error != NULL)
        return TF_ETLS;
    switch (e) {
    case VERSION_ERROR:
        s->error = "protocol version not supported";
        break;
    case MATCH_SUITE_ERROR:
        s->error = "no shared cipher suite";
        break;
    case FATAL_ERROR:
        s->error = "fatal alert received";
        break;
    default:
        s->error = wolfSSL_ERR_reason_error_string((unsigned long)e);
        break;
    }
    return TF_ETLS;
}

static void trim(tf_tls_session_t *s)
{
    buf_trim(&s->in);
    buf_trim(&s->out);
}

tf_tls_session_t *tf_tls_session_new(tf_tls_ctx_t *ctx, tf_cs_snapshot_t *snap)
{
    tf_tls__rng_recover(ctx);
    tf_tls_session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->ssl = wolfSSL_new(ctx->wctx);
    if (s->ssl == NULL) {
        free(s);
        return NULL;
    }
    s->ctx = ctx;
    s->snap = tf_cs_snapshot_ref(snap);
    wolfSSL_SetIOReadCtx(s->ssl, s);
    wolfSSL_SetIOWriteCtx(s->ssl, s);
    return s;
}

void tf_tls_session_free(tf_tls_session_t *s)
{
    if (s == NULL)
        return;
    if (s->client && s->cl != NULL) {
        tf_tls__client_keep_session(s);
        tf_tls_client_ctx_free(s->cl->ctx);
        free(s->cl);
    }
    wolfSSL_free(s->ssl);
    tf_cs_snapshot_unref(s->snap);
    buf_free(&s->in);
    buf_free(&s->out);
    free(s->sni);
    free(s);
}

int tf_tls_session_queue_raw(tf_tls_session_t *s, const void *data, size_t len)
{
    return len == 0 ? 0 : buf_append(&s->out, data, len, OUT_MIN);
}

int tf_tls_session_feed(tf_tls_session_t *s, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    return buf_append(&s->in, data, len, len);
}

void tf_tls_session_set_h2(tf_tls_session_t *s, tf_tls_h2_allowed_fn fn, void *ud)
{
    s->h2_fn = fn;
    s->h2_ud = ud;
}

/* Gives wolfSSL the session's ALPN list, once, after preselect() learnt the
 * SNI and before wolfSSL reads the ClientHello (so resumed handshakes too).
 * wolfSSL's server walks the client's list in the client's order and takes
 * the first protocol also in ours; CONTINUE_ON_MISMATCH lets a client
 * offering nothing we speak go on without ALPN. The OpenSSL-style select
 * callback would need OPENSSL_ALL, which this build does not have. h2 is
 * offered only when the SNI used for the choice is the one the connection
 * will be routed by (not for a hello hello.c could not read, or a name
 * with a NUL byte). */
static int use_alpn(tf_tls_session_t *s)
{
    s->alpn_set = true;
    if (s->acme) {
        /* RFC 8737 §3: the validation handshake negotiates acme-tls/1. */
        char acme[] = "acme-tls/1";
        if (wolfSSL_UseALPN(s->ssl, acme, sizeof acme - 1, WOLFSSL_ALPN_FAILED_ON_MISMATCH) !=
            WOLFSSL_SUCCESS) {
            s->error = "out of memory";
            return TF_ENOMEM;
        }
        return TF_TLS_OK;
    }
    bool h2 = s->h2_fn != NULL && !s->hello_opaque && !s->sni_unclear && s->h2_fn(s->h2_ud, s->sni);
    char both[] = "h2,http/1.1";
    char http1[] = "http/1.1";
    char *list = h2 ? both : http1;
    size_t len = h2 ? sizeof both - 1 : sizeof http1 - 1;
    if (wolfSSL_UseALPN(s->ssl, list, (unsigned)len, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) !=
        WOLFSSL_SUCCESS) {
        s->error = "out of memory";
        return TF_ENOMEM;
    }
    return TF_TLS_OK;
}

/* Fatal alerts, plaintext: nothing was negotiated yet. */
static const uint8_t k_alert_unrecognized_name[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112};
static const uint8_t k_alert_handshake_failure[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40};

/* Chooses the certificate from the buffered ClientHello before wolfSSL
 * reads it (see hello.c). TF_TLS_OK to go on with wolfSSL, TF_TLS_WANT_READ
 * while the ClientHello is incomplete, or a negative error. */
static int preselect(tf_tls_session_t *s)
{
    tf_tls__hello_t h;
    if (buf_pending(&s->in) == 0)
        return TF_TLS_WANT_READ;
    int r = tf_tls__hello_parse(s->in.buf + s->in.off, buf_pending(&s->in), &h);
    if (r == TF_TLS__HELLO_MORE)
        return TF_TLS_WANT_READ;
    if (r == TF_TLS__HELLO_NOMEM) {
        s->error = "out of memory";
        return TF_ENOMEM;
    }
    if (r == TF_TLS__HELLO_NOGROUP) {
        s->error = "no shared key exchange group";
        if (buf_append(&s->out, k_alert_handshake_failure, sizeof k_alert_handshake_failure,
                       OUT_MIN) != 0)
            return TF_ENOMEM;
        return TF_ETLS;
    }
    if (r == TF_TLS__HELLO_BAD) {
        /* Malformed: wolfSSL refuses it with the right alert. Otherwise (a
         * hello in more records than hello.c reassembles) wolfSSL serves
         * the context's certificate, which is the default's. */
        s->hello_opaque = true;
        return TF_TLS_OK;
    }
    s->sni_unclear = h.name != NULL && memchr(h.name, '\0', h.len) != NULL;
    /* tls-alpn-01 first: the name being validated may have no certificate
     * yet, or one the ACME server must not get. */
    int sel = 0;
    if (h.acme_tls && s->ctx->acme_fn != NULL && h.len > 0 && !s->sni_unclear)
        sel = tf_tls__select_acme(s, h.name, h.len);
    if (sel == 0)
        sel = tf_tls__select(s, h.name, h.len);
    else
        sel = sel > 0 ? 0 : -1;
    free(h.scratch);
    if (sel == 0)
        return TF_TLS_OK;
    if (s->rejected && buf_append(&s->out, k_alert_unrecognized_name,
                                  sizeof k_alert_unrecognized_name, OUT_MIN) != 0)
        return TF_ENOMEM;
    return TF_ETLS;
}

static int accept_step(tf_tls_session_t *s)
{
    int rc = TF_TLS_OK;
    if (!s->selected && !s->hello_opaque)
        rc = preselect(s);
    if (rc == TF_TLS_OK && !s->alpn_set)
        rc = use_alpn(s);
    if (rc == TF_TLS_OK) {
        int ret = wolfSSL_accept(s->ssl);
        rc = ret == WOLFSSL_SUCCESS ? TF_TLS_OK : map_result(s, ret);
    }
    return rc;
}

static int connect_step(tf_tls_session_t *s)
{
    int ret = wolfSSL_connect(s->ssl);
    return ret == WOLFSSL_SUCCESS ? TF_TLS_OK : map_result(s, ret);
}

int tf_tls_session_handshake(tf_tls_session_t *s)
{
    if (s->established)
        return TF_TLS_OK;
    if (s->failed)
        return TF_ETLS;
    int rc = s->client ? connect_step(s) : accept_step(s);
    /* A close_notify before the handshake ends is the end of it. */
    if (rc == TF_TLS_CLOSED) {
        s->error = "closed during the handshake";
        rc = TF_ETLS;
    }
    if (rc == TF_TLS_OK) {
        s->established = true;
        /* TLS 1.2's session is whole now (1.3's ticket is kept at free). */
        if (s->client)
            tf_tls__client_keep_session(s);
    } else if (rc < 0)
        s->failed = true;
    buf_trim(&s->in);
    return rc;
}

int tf_tls_session_recv(tf_tls_session_t *s, void *buf, size_t len, size_t *nread)
{
    *nread = 0;
    if (s->closed)
        return TF_TLS_CLOSED;
    if (s->failed || !s->established) {
        if (s->error == NULL)
            s->error = "read before the handshake";
        return TF_ETLS;
    }
    int ret = wolfSSL_read(s->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    int rc = ret > 0 ? TF_TLS_OK : map_result(s, ret);
    if (ret > 0)
        *nread = (size_t)ret;
    buf_trim(&s->in);
    return rc;
}

bool tf_tls_session_input_empty(const tf_tls_session_t *s)
{
    return buf_pending(&s->in) == 0 && !s->closed && !s->failed && s->established &&
           wolfSSL_has_pending(s->ssl) == 0;
}

ssize_t tf_tls_session_read(tf_tls_session_t *s, void *buf, size_t len)
{
    size_t n;
    int rc = tf_tls_session_recv(s, buf, len, &n);
    return rc == TF_TLS_OK ? (ssize_t)n : rc;
}

ssize_t tf_tls_session_write(tf_tls_session_t *s, const void *buf, size_t len)
{
    if (s->failed || s->shut || !s->established) {
        if (s->error == NULL)
            s->error = s->shut ? "write after shutdown" : "write before the handshake";
        return TF_ETLS;
    }
    const uint8_t *p = buf;
    size_t left = len;
    while (left > 0) {
        int chunk = left > (1u << 30) ? 1 << 30 : (int)left;
        int ret = wolfSSL_write(s->ssl, p, chunk);
        if (ret <= 0) {
            int rc = map_result(s, ret);
            return rc < 0 ? rc : TF_ETLS;
        }
        p += ret;
        left -= (size_t)ret;
    }
    return (ssize_t)len;
}

int tf_tls_session_shutdown(tf_tls_session_t *s)
{
    if (s->shut)
        return 0;
    s->shut = true;
    size_t before = buf_pending(&s->out);
    int ret = wolfSSL_shutdown(s->ssl);
    if (ret == WOLFSSL_SUCCESS || ret == WOLFSSL_SHUTDOWN_NOT_DONE)
        return 0;
    /* After the peer's close_notify, wolfSSL queues ours and then resets the
     * object (wolfSSL_clear), which can fail; the alert is out either way. */
    if (buf_pending(&s->out) > before)
        return 0;
    int rc = map_result(s, ret);
    return rc < 0 ? rc : 0;
}

const void *tf_tls_session_out(tf_tls_session_t *s, size_t *len)
{
    *len = buf_pending(&s->out);
    return *len > 0 ? s->out.buf + s->out.off : NULL;
}

void tf_tls_session_consume_out(tf_tls_session_t *s, size_t n)
{
    size_t pending = buf_pending(&s->out);
    s->out.off += n < pending ? n : pending;
    trim(s);
}

int tf_tls_session_take_out(tf_tls_session_t *s, void **buf, size_t *len)
{
    *buf = NULL;
    *len = buf_pending(&s->out);
    if (*len == 0) {
        buf_free(&s->out);
        return 0;
    }
    if (s->out.off > 0)
        memmove(s->out.buf, s->out.buf + s->out.off, *len);
    *buf = s->out.buf;
    s->out = (tf_tls__buf_t){0};
    return 0;
}

const char *tf_tls_session_sni(const tf_tls_session_t *s)
{
    if (s->sni != NULL)
        return s->sni;
    /* A ClientHello our reader could not parse: wolfSSL may still have one. */
    char *name = NULL;
    unsigned short n = wolfSSL_SNI_GetRequest(s->ssl, WOLFSSL_SNI_HOST_NAME, (void **)&name);
    return n > 0 ? name : NULL; /* wolfSSL stores it NUL-terminated */
}

tf_cs_selection_t tf_tls_session_selection(const tf_tls_session_t *s)
{
    return s->how;
}

const tf_cs_bundle_t *tf_tls_session_served(const tf_tls_session_t *s)
{
    return s->served;
}

const char *tf_tls_session_version(const tf_tls_session_t *s)
{
    return wolfSSL_get_version(s->ssl);
}

const char *tf_tls_session_cipher(const tf_tls_session_t *s)
{
    return wolfSSL_get_cipher_name(s->ssl);
}

bool tf_tls_session_resumed(const tf_tls_session_t *s)
{
    return wolfSSL_session_reused(s->ssl) == 1;
}

const char *tf_tls_session_alpn(const tf_tls_session_t *s)
{
    char *name = NULL;
    unsigned short n = 0;
    if (wolfSSL_ALPN_GetProtocol(s->ssl, &name, &n) != WOLFSSL_SUCCESS)
        return NULL;
    if (n == 2 && memcmp(name, "h2", 2) == 0)
        return "h2";
    if (n == 8 && memcmp(name, "http/1.1", 8) == 0)
        return "http/1.1";
    if (n == 10 && memcmp(name, "acme-tls/1", 10) == 0)
        return "acme-tls/1";
    return NULL;
}

bool tf_tls_session_acme(const tf_tls_session_t *s)
{
    return s->acme;
}

const char *tf_tls_session_error(const tf_tls_session_t *s)
{
    return s->error != NULL ? s->error : "no error";
}

size_t tf_tls_session_memory(const tf_tls_session_t *s)
{
    /* wolfSSL does not count its allocations per connection: its share is
     * the WOLFSSL object itself; docs/TLS.md has the measured total. */
    return sizeof *s + s->in.cap + s->out.cap + (size_t)wolfSSL_GetObjectSize();
}
