#include "proxy/net/conn.h"

#include "common/err.h"
#include "proxy/net/upstream.h"
#include "proxy/net/worker.h"

#include <stdio.h>

/* TLS to the backend (SPEC §14), a step of conn.c's backend attempt.
 * Between the TCP connect and the user's ready(): the backend stream
 * reports here while its handshake runs, under the connect deadline. A
 * handshake that fails (a certificate that does not verify among others) is
 * a failed backend, like a refused connect. */

static void backend_tls_on_ready(tf_stream_t *s)
{
    tf_conn_t *c = s->owner;
    TF_CONN_LOG(TF_LOG_DEBUG, c, "backend %s: TLS established: %s %s%s",
                tf_upstream_backend(c->gen->upstream, c->tenant, c->route, c->backend_ix)->text,
                tf_tls_session_version(s->tls), tf_tls_session_cipher(s->tls),
                tf_tls_session_resumed(s->tls) ? " resumed" : "");
    tf_stream_set_sink(s, c->buser->sink, c);
    c->traffic.active_ms = uv_now(&c->worker->loop);
    c->buser->ready(c, false);
}

/* A handshake that offered a session kept from an earlier one failed: the
 * backend may have changed since (another TLS version, a restart with new
 * keys), so the session is forgotten and the backend tried again in full
 * before it is blamed. True when that retry is under way. */
static bool backend_tls_retry_in_full(tf_conn_t *c, tf_stream_t *s, const char *reason)
{
    if (s->tls == NULL || !tf_tls_session_forget_offered(s->tls))
        return false;
    TF_CONN_LOG(TF_LOG_INFO, c, "backend %s: resumed TLS handshake failed: %s; trying in full",
                tf_upstream_backend(c->gen->upstream, c->tenant, c->route, c->backend_ix)->text,
                reason);
    c->attempts--; /* the same attempt, made again */
    tf_conn__attempt_again(c);
    return true;
}

static void backend_tls_on_error(tf_stream_t *s, int err, const char *what)
{
    tf_conn_t *c = s->owner;
    /* The stream's what is the session's reason for a TLS failure, the
     * operation ("read") for a socket error. */
    const char *reason = err == UV_EOF    ? "connection closed"
                         : err == TF_ETLS ? what
                                          : uv_strerror(err);
    if (!backend_tls_retry_in_full(c, s, reason))
        tf_conn__backend_down(c, "TLS handshake failed", reason);
}

static void backend_tls_on_eof(tf_stream_t *s)
{
    if (!backend_tls_retry_in_full(s->owner, s, "connection closed"))
        tf_conn__backend_down(s->owner, "TLS handshake failed", "connection closed");
}

static void backend_tls_ignore_data(tf_stream_t *s, const char *data, size_t len)
{
}

static void backend_tls_ignore(tf_stream_t *s)
{
}

static const tf_sink_t backend_tls_sink = {
    .data = backend_tls_ignore_data,
    .eof = backend_tls_on_eof,
    .written = backend_tls_ignore,
    .shut = backend_tls_ignore,
    .error = backend_tls_on_error,
    .ready = backend_tls_on_ready,
};

void tf_conn__backend_tls_start(tf_conn_t *c, tf_stream_t *s)
{
    const tf_backend_t *be =
        tf_upstream_backend(c->gen->upstream, c->tenant, c->route, c->backend_ix);
    tf_tls_session_t *tls = tf_tls_client_session_new(be->tls, be->conf->sni, be->verify_name);
    if (tls == NULL) {
        tf_conn_fail(c, TF_ENOMEM, "backend TLS");
        return;
    }
    /* Resumed where the last handshake with this backend (and SNI) left a
     * session; the context is the worker's and fixes the trust. */
    char id[320];
    int n = snprintf(id, sizeof id, "%s|%s", be->text, be->conf->sni ? be->conf->sni : "");
    if (n > 0 && (size_t)n < sizeof id)
        (void)tf_tls_session_resume_by(tls, id, (size_t)n);
    tf_stream_set_sink(s, &backend_tls_sink, c);
    int rc = tf_stream_tls_connect(s, tls);
    if (rc == TF_ENOMEM) /* tlsfront's limit, not the backend's fault */
        tf_conn_fail(c, rc, "backend TLS");
    else if (rc != 0)
        tf_conn__backend_down(c, "TLS handshake failed", tf_strerror(rc));
}
