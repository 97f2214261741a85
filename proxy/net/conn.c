/* See conn.h. Callbacks are named <side>_on_<event> and appear in lifecycle
 * order: accept, handshake, backend connect, tunnel, timer, close. The pump
 * (pump.c) moves the bytes of the TUNNEL phase. */
#include "proxy/net/conn.h"

#include "common/err.h"
#include "proxy/obs/obs.h"
#include "proxy/net/backends.h"
#include "proxy/net/exchange.h"
#include "proxy/net/h2.h"
#include "proxy/net/limits.h"
#include "proxy/net/pool.h"
#include "proxy/net/proxyproto.h"
#include "common/util.h"
#include "proxy/net/upstream.h"
#include "proxy/net/worker.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void conn_on_handle_closed(uv_handle_t *h);

/* ---- accept ----------------------------------------------------------- */

static const tf_sink_t handshake_sink;

/* The close reason of a connection refused by limits.per_client: not a
 * failed handshake, none was tried. */
static const char per_client_refused[] = "limits.per_client.connections";

/* Counts the connection against its client's limits.per_client.connections,
 * or closes it when the client already holds that many: before any TLS
 * work, which is what a client opening connections in a loop would cost. */
static void client_limit(tf_conn_t *c)
{
    tf_limits_t *l = c->worker->server->shared->limits;
    const tf_conf_limits_t *lim = tf_conf_limits(c->gen->conf);
    if (l == NULL || lim->per_client_connections == 0)
        return;
    if (tf_limits_conn_open(l, lim, &c->peer.sa)) {
        c->per_client = true;
        return;
    }
    TF_CONN_LOG(TF_LOG_INFO, c, "refused: the client holds limits.per_client.connections (%u)",
                (unsigned)lim->per_client_connections);
    tf_conn_close(c, TF_LOG_DEBUG, per_client_refused);
}

/* listen.proxy_protocol (SPEC §14): the balancer's header, before TLS. The
 * address it carries is the client's from here on (X-Forwarded-For,
 * `allow`, limits.per_client, the access log); LOCAL (a health check)
 * keeps the connection's own. Anything else closes the connection without
 * a byte sent. */
static int proxy_preface(tf_stream_t *s, const char *data, size_t len)
{
    tf_conn_t *c = s->owner;
    tf_pp_header_t h;
    int rc = tf_pp_parse((const uint8_t *)data, len, &h);
    if (rc == TF_PP_MORE)
        return 0;
    if (rc != 0) {
        TF_CONN_LOG(TF_LOG_INFO, c, "PROXY protocol: no valid header from the balancer");
        tf_conn_close(c, TF_LOG_INFO, "bad PROXY header");
        return rc;
    }
    if (!h.local && h.src.ss_family == AF_INET)
        memcpy(&c->peer.in4, &h.src, sizeof c->peer.in4);
    else if (!h.local)
        memcpy(&c->peer.in6, &h.src, sizeof c->peer.in6);
    TF_CONN_LOG(TF_LOG_DEBUG, c, "PROXY protocol v%u header%s", (unsigned)h.version,
                h.local ? " (LOCAL: the balancer's own check)" : "");
    client_limit(c);
    return tf_conn_closing(c) ? TF_EINVAL : (int)h.len;
}

/* Whether the connection must start with a PROXY header: then it comes
 * from a balancer listed in `from`, or it is closed at once. */
static int expect_proxy_header(tf_conn_t *c, bool *expected)
{
    const tf_conf_proxy_protocol_t *pp = tf_conf_proxy_protocol(c->gen->conf);
    *expected = pp->enabled;
    if (!pp->enabled)
        return 0;
    if (!tf_http_allowed(&pp->from, &c->peer.sa)) {
        TF_CONN_LOG(TF_LOG_INFO, c, "PROXY protocol: not from listen.proxy_protocol.from");
        tf_conn_close(c, TF_LOG_INFO, "not from a balancer");
        return 0;
    }
    return tf_stream_tls_expect_preface(&c->client, proxy_preface, TF_PP_V2_MAX);
}

/* ALPN (SPEC §12): h2 unless turned off or the SNI names a mode tcp
 * tenant, whose clients get no protocol they did not ask for. */
static bool conn_h2_allowed(void *ud, const char *sni)
{
    tf_conn_t *c = ud;
    if (!tf_conf_http2(c->gen->conf)->enabled)
        return false;
    uint32_t t = tf_upstream_route(c->gen->upstream, sni);
    return t == TF_UPSTREAM_NONE ||
           tf_upstream_tenant_conf(c->gen->upstream, t)->mode != TF_CONF_MODE_TCP;
}

static int client_accept(tf_conn_t *c, uv_stream_t *server)
{
    tf_worker_t *w = c->worker;
    int rc = tf_stream_tcp_init(&c->client, &w->loop);
    if (rc != 0)
        return rc;
    c->handles++;
    tf_stream_set_sink(&c->client, &handshake_sink, c);
    rc = uv_accept(server, (uv_stream_t *)&c->client.tcp);
    if (rc != 0)
        return rc;
    int len = sizeof c->peer;
    if (uv_tcp_getpeername(&c->client.tcp, &c->peer.sa, &len) != 0)
        c->peer.sa.sa_family = AF_UNSPEC;
    bool proxied = false;
    rc = expect_proxy_header(c, &proxied);
    if (rc != 0)
        return rc;
    if (!proxied) /* else once the header names the client */
        client_limit(c);
    if (tf_conn_closing(c))
        return 0;
    uv_tcp_nodelay(&c->client.tcp, 1);
    /* Fails when memory or descriptors (wolfSSL's random source) run out. */
    tf_tls_session_t *tls = tf_tls_session_new(c->gen->tls, c->gen->snap);
    if (tls == NULL)
        return TF_ETLS;
    tf_tls_session_set_h2(tls, conn_h2_allowed, c);
    tf_stream_tls_accept(&c->client, tls);
    return c->client.ops->read_start(&c->client);
}

int tf_conn_accept(tf_worker_t *w, uv_stream_t *server, uint16_t local_port)
{
    tf_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TF_ENOMEM;
    c->worker = w;
    c->gen = tf_worker_gen_acquire(w);
    c->id = (uint64_t)w->index + (uint64_t)w->server->nworkers * w->accepted++;
    c->started_ms = c->traffic.active_ms = uv_now(&w->loop);
    c->tenant = c->backend_ix = TF_CONN_NO_INDEX;
    c->local_port = local_port;
    c->phase = TF_CONN_HANDSHAKE;
    tf_stream_init(&c->client, &tf_stream_tls_ops, &w->bufs);
    uv_timer_init(&w->loop, &c->timer);
    c->handles++;
    tf_worker_conn_added(w, c);
    int rc = client_accept(c, server);
    if (rc != 0) {
        TF_CONN_LOG(TF_LOG_WARN, c, "cannot set the connection up: %s",
                    rc == TF_ETLS ? "no TLS session (out of memory or file descriptors)"
                                  : tf_strerror(rc));
        tf_conn_close(c, TF_LOG_WARN, "no resources");
        return rc == TF_ENOMEM ? TF_ETLS : rc;
    }
    if (tf_conn_closing(c))
        return 0; /* refused by client_limit() */
    TF_CONN_LOG(TF_LOG_DEBUG, c, "accepted");
    tf_conn_arm_timer(c);
    return 0;
}

void tf_conn_init_child(tf_conn_t *child, size_t size, tf_conn_t *parent,
                        const tf_stream_ops_t *ops, void *transport)
{
    tf_worker_t *w = parent->worker;
    child->worker = w;
    child->parent = parent;
    child->child_size = size;
    child->gen = parent->gen;
    tf_worker_gen_hold(child->gen);
    child->id = parent->id;
    child->started_ms = child->traffic.active_ms = uv_now(&w->loop);
    child->tenant = child->backend_ix = TF_CONN_NO_INDEX;
    child->local_port = parent->local_port;
    child->peer = parent->peer;
    child->phase = TF_CONN_HTTP;
    tf_stream_init(&child->client, ops, &w->bufs);
    child->client.transport = transport;
    child->client.tls = parent->client.tls;
    child->client.flags |= TF_STREAM_OPEN | TF_STREAM_WRITABLE | TF_STREAM_TLS_BORROWED;
    uv_timer_init(&w->loop, &child->timer);
    child->handles = 2; /* the timer and the stream */
    if (++w->nchildren > w->children_peak)
        w->children_peak = w->nchildren;
}

/* ---- handshake done: route and connect -------------------------------- */

static const tf_conn_backend_user_t tcp_user;
static const tf_sink_t connecting_sink;

static void handshake_on_ready(tf_stream_t *s)
{
    tf_conn_t *c = s->owner;
    tf_worker_t *w = c->worker;
    const char *sni = tf_tls_session_sni(c->client.tls);
    TF_CONN_LOG(TF_LOG_DEBUG, c, "handshake done: %s %s%s", tf_tls_session_version(c->client.tls),
                tf_tls_session_cipher(c->client.tls),
                tf_tls_session_resumed(c->client.tls) ? " resumed" : "");
    tf_metrics_handshake(w->metrics, true, NULL);
    if (tf_tls_session_acme(c->client.tls)) {
        /* RFC 8737 §3: the ACME server only looks at the certificate; the
         * connection carries no application data. */
        tf_conn_close_politely(c, TF_LOG_INFO, "tls-alpn-01 validation certificate served");
        return;
    }
    uint32_t t = tf_upstream_route(c->gen->upstream, sni);
    if (t != TF_UPSTREAM_NONE &&
        tf_upstream_tenant_conf(c->gen->upstream, t)->mode == TF_CONF_MODE_TCP) {
        c->tenant = t;
        c->phase = TF_CONN_CONNECTING;
        /* Bytes that arrived with the handshake wait for the backend in its
         * queue; the client is read again once the tunnel runs. */
        tf_stream_set_sink(&c->client, &connecting_sink, c);
        c->client.ops->read_stop(&c->client);
        tf_conn_connect_backend(c, &tcp_user);
        return;
    }
    /* Mode http: every request is routed by its own Host, on HTTP/1.1 or
     * on each HTTP/2 stream. */
    const char *alpn = tf_tls_session_alpn(c->client.tls);
    int rc = alpn != NULL && strcmp(alpn, "h2") == 0 ? tf_h2_start(c) : tf_hx_start(c);
    if (rc != 0)
        tf_conn_fail(c, rc, "HTTP");
}

static void conn_on_stream_error(tf_stream_t *s, int err, const char *what)
{
    tf_conn_fail(s->owner, err, what);
}

/* A FIN in the middle of the handshake: it failed. */
static void handshake_on_eof(tf_stream_t *s)
{
    tf_conn_fail(s->owner, UV_EOF, "client read");
}

/* Before the handshake's end no plaintext is read, and what the handshake
 * writes needs no answer. */
static void conn_ignore_data(tf_stream_t *s, const char *data, size_t len)
{
}

static void conn_ignore(tf_stream_t *s)
{
}

static const tf_sink_t handshake_sink = {
    .data = conn_ignore_data,
    .eof = handshake_on_eof,
    .written = conn_ignore,
    .shut = conn_ignore,
    .error = conn_on_stream_error,
    .ready = handshake_on_ready,
};

static void log_ended(tf_conn_t *c, bool client)
{
    TF_CONN_LOG(TF_LOG_DEBUG, c, "%s ended its output", client ? "client" : "backend");
}

/* Mode tcp, the backend still connecting: what the client sent with its
 * handshake waits in the backend stream's queue, as does its end. */
static void connecting_on_data(tf_stream_t *s, const char *data, size_t len)
{
    tf_conn_t *c = s->owner;
    c->traffic.up += len;
    int rc = c->backend->ops->write(c->backend, data, len);
    if (rc < 0)
        tf_conn_fail(c, rc, "write");
}

static void connecting_on_eof(tf_stream_t *s)
{
    tf_conn_t *c = s->owner;
    s->ops->read_stop(s);
    log_ended(c, true);
    if (c->backend->ops->shutdown(c->backend) < 0)
        tf_conn_fail(c, UV_EIO, "write");
}

static const tf_sink_t connecting_sink = {
    .data = connecting_on_data,
    .eof = connecting_on_eof,
    .written = conn_ignore,
    .shut = conn_ignore,
    .error = conn_on_stream_error,
    .ready = conn_ignore,
};

static void tcp_on_backend_ready(tf_conn_t *c, bool reused)
{
    /* A client that ended while the backend connected left its end in the
     * backend's queue (connecting_on_eof). */
    tf_conn_start_tunnel(c, (c->backend->flags & TF_STREAM_SHUT_WANTED) != 0);
}

static void tcp_on_backend_failed(tf_conn_t *c)
{
    tf_conn_close(c, TF_LOG_WARN, "no backend available");
}

static void tcp_on_local_error(tf_conn_t *c)
{
    tf_conn_close(c, TF_LOG_WARN, "no descriptor for the backend connection");
}

static const tf_conn_backend_user_t tcp_user = {
    .sink = &connecting_sink,
    .ready = tcp_on_backend_ready,
    .failed = tcp_on_backend_failed,
    .local_error = tcp_on_local_error,
    .pool_allowed = NULL,
};

static void backend_on_connect(uv_connect_t *req, int status);

/* The attempt failed (refused, unreachable, timed out): mark the backend
 * down and try the next one on a new stream, which inherits what the
 * client already sent. */
static void backend_retry(tf_conn_t *c, int err);

/* Gives back the in-flight count the connection holds, if any, through
 * the table that took it (least_conn's order follows). */
static void in_flight_end(tf_conn_t *c)
{
    tf_bstate_t *b = c->in_flight;
    if (b == NULL)
        return;
    c->in_flight = NULL;
    tf_upstream_t *u = c->gen->upstream;
    if (c->tenant != TF_CONN_NO_INDEX && c->backend_ix != TF_CONN_NO_INDEX &&
        c->backend_ix < tf_upstream_backend_count(u, c->tenant, c->route) &&
        tf_upstream_backend(u, c->tenant, c->route, c->backend_ix)->state == b) {
        tf_upstream_end(u, c->tenant, c->route, c->backend_ix, c->in_flight_tunnel);
    } else if (c->in_flight_tunnel) {
        tf_bstate_tunnel_end(b);
    } else {
        tf_bstate_end(b);
    }
    c->in_flight_tunnel = false;
}

void tf_conn_backend_done(tf_conn_t *c, unsigned status)
{
    if (c->in_flight == NULL || c->in_flight_tunnel)
        return;
    if (status != 0)
        tf_bstate_count(c->in_flight, status);
    else
        tf_bstate_failed(c->in_flight, false, uv_now(&c->worker->loop));
    in_flight_end(c);
}

bool tf_conn_backend_private(const tf_conn_t *c)
{
    return c->tenant != TF_CONN_NO_INDEX &&
           tf_upstream_tenant_conf(c->gen->upstream, c->tenant)->send_proxy !=
               TF_CONF_SEND_PROXY_OFF;
}

/* A parked private backend that closes or speaks out of turn is dropped. */
static void parked_on_data(tf_stream_t *s, const char *data, size_t len)
{
    tf_conn_t *c = s->owner;
    c->backend_parked = false;
    tf_bstream_release(c->backend);
    c->backend = NULL;
}

static void parked_on_eof(tf_stream_t *s)
{
    parked_on_data(s, NULL, 0);
}

static void parked_on_error(tf_stream_t *s, int err, const char *what)
{
    parked_on_data(s, NULL, 0);
}

static void parked_ignore(tf_stream_t *s)
{
}

static const tf_sink_t parked_sink = {
    .data = parked_on_data,
    .eof = parked_on_eof,
    .written = parked_ignore,
    .shut = parked_ignore,
    .error = parked_on_error,
    .ready = parked_ignore,
};

void tf_conn_park_backend(tf_conn_t *c)
{
    tf_stream_set_sink(c->backend, &parked_sink, c);
    c->backend_parked = true;
    c->parked_tenant = c->tenant;
    c->parked_route = c->route;
    c->parked_ix = c->backend_ix;
    if (c->backend->ops->read_start(c->backend) != 0)
        parked_on_data(c->backend, NULL, 0);
}

/* The parked backend, when the pick chose the backend it goes to: taken
 * back for this exchange (true); otherwise dropped. */
static bool unpark(tf_conn_t *c, uint32_t picked, const tf_conn_backend_user_t *user)
{
    if (!c->backend_parked)
        return false;
    c->backend_parked = false;
    if (c->backend != NULL && picked == c->parked_ix && c->tenant == c->parked_tenant &&
        c->route == c->parked_route) {
        tf_stream_set_sink(c->backend, user->sink, c);
        return true;
    }
    if (c->backend != NULL)
        tf_bstream_release(c->backend);
    c->backend = NULL;
    return false;
}

/* The tenant's `send_proxy` (SPEC §14): the header first on the new
 * backend connection, naming the client (the address a balancer's header
 * gave, if any) and the listener it reached. 0, or the write's failure
 * (the connection is then failed). */
static int send_proxy_header(tf_conn_t *c, tf_stream_t *b)
{
    tf_conf_send_proxy_t v = tf_upstream_tenant_conf(c->gen->upstream, c->tenant)->send_proxy;
    if (v == TF_CONF_SEND_PROXY_OFF)
        return 0;
    const tf_conn_t *front = c->parent != NULL ? c->parent : c; /* an HTTP/2 stream's socket */
    struct sockaddr_storage dst = {.ss_family = AF_UNSPEC};
    int len = sizeof dst;
    if (uv_tcp_getsockname(&front->client.tcp, (struct sockaddr *)&dst, &len) != 0)
        dst.ss_family = AF_UNSPEC;
    uint8_t hdr[TF_PP_WRITE_MAX];
    size_t n = tf_pp_write(v == TF_CONF_SEND_PROXY_V1 ? 1 : 2, &c->peer.sa, (struct sockaddr *)&dst,
                           hdr, sizeof hdr);
    int rc = b->ops->write(b, hdr, n);
    if (rc < 0)
        tf_conn_fail(c, rc, "backend write");
    /* Ahead of a TLS backend's ClientHello, as haproxy sends it. */
    tf_bstream_of(b)->raw_head = (uint32_t)n;
    return rc < 0 ? rc : 0;
}

void tf_conn_connect_backend(tf_conn_t *c, const tf_conn_backend_user_t *user)
{
    tf_worker_t *w = c->worker;
    uint64_t now = uv_now(&w->loop);
    /* A failed attempt's count goes back before the next pick, so that the
     * balancers see the backend as it is. */
    in_flight_end(c);
    tf_pick_t pick = {.backend = TF_UPSTREAM_NONE};
    c->buser = user;
    if (c->attempts < tf_upstream_backend_count(c->gen->upstream, c->tenant, c->route)) {
        size_t slen = strnlen(c->sticky, sizeof c->sticky);
        tf_pick_hint_t hint = {
            .client = c->peer.sa.sa_family != AF_UNSPEC ? &c->peer.sa : NULL,
            .cookie = slen > 0 ? c->sticky : NULL,
            .cookie_len = slen,
        };
        pick = tf_upstream_pick(c->gen->upstream, c->tenant, c->route, &hint, now);
    }
    uint32_t b = pick.backend;
    c->backends_full = b == TF_UPSTREAM_FULL;
    if (b == TF_UPSTREAM_NONE || b == TF_UPSTREAM_FULL) {
        user->failed(c);
        return;
    }
    c->attempts++;
    c->backend_ix = b;
    const tf_backend_t *be = tf_upstream_backend(c->gen->upstream, c->tenant, c->route, b);
    c->in_flight = be->state;
    c->in_flight_tunnel = false;
    if (unpark(c, b, user)) {
        user->ready(c, true);
        return;
    }
    if (user->pool_allowed != NULL && user->pool_allowed(c)) {
        tf_stream_t *pooled = tf_pool_take(w->pool, &be->addr.sa, be->flavour, user->sink, c);
        if (pooled != NULL) {
            /* A failed attempt's stream goes (its connect may still be in
             * flight); nothing waits in it, as the exchange writes only
             * once a backend is ready. */
            if (c->backend != NULL)
                tf_bstream_release(c->backend);
            c->backend = pooled;
            user->ready(c, true);
            return;
        }
    }
    tf_stream_t *s = tf_bstream_new(&w->loop, &w->bufs, &be->addr.sa, user->sink, c);
    if (s == NULL) {
        tf_conn_fail(c, TF_ENOMEM, "backend connect");
        return;
    }
    if (c->backend != NULL) {
        /* A retry: what waited for the failed attempt (its PROXY header
         * first, with send_proxy) goes to the new one in order. */
        tf_bstream_move_queue(s, c->backend);
        tf_bstream_release(c->backend);
        c->backend = s;
    } else {
        c->backend = s;
        /* Queued before anything the client sends while it connects (mode
         * tcp): the header is always the backend's first bytes. */
        if (send_proxy_header(c, s) != 0)
            return;
    }
    c->phase = TF_CONN_CONNECTING;
    int rc = tf_bstream_connect(s, &be->addr.sa, backend_on_connect);
    if (rc != 0) {
        /* Refused at once (unreachable, no address, no socket): like a
         * failed connect, the next backend gets its turn. */
        backend_retry(c, rc);
        return;
    }
    tf_conn_arm_timer(c);
}

/* Out of descriptors or memory here: no fault of the backend's, so it is not
 * marked down and no other backend is tried (they would fail alike). */
static bool local_error(int err)
{
    return err == UV_EMFILE || err == UV_ENFILE || err == UV_ENOBUFS || err == UV_ENOMEM;
}

static void backend_retry(tf_conn_t *c, int err)
{
    const tf_backend_t *be =
        tf_upstream_backend(c->gen->upstream, c->tenant, c->route, c->backend_ix);
    if (err == UV_EAGAIN && be->addr.sa.sa_family == AF_UNIX) {
        /* A unix socket whose accept backlog is full refuses at once where
         * TCP would queue the SYN: the backend is busy, not down; the next
         * one gets its turn, this one stays in service. */
        TF_CONN_LOG(TF_LOG_WARN, c, "backend %s: its socket's backlog is full", be->text);
        tf_conn__attempt_again(c);
        return;
    }
    if (local_error(err)) {
        in_flight_end(c);
        TF_CONN_LOG(TF_LOG_WARN, c,
                    "backend %s: cannot open a connection: %s (a limit of "
                    "tlsfront's, not the backend's)",
                    be->text, uv_strerror(err));
        uv_timer_stop(&c->timer);
        c->timer_due_ms = 0;
        c->buser->local_error(c);
        return;
    }
    tf_conn__backend_down(c, "connect failed", uv_strerror(err));
}

/* The attempt's backend failed (WHAT: REASON): marked down, the next one
 * tried. */
void tf_conn__backend_down(tf_conn_t *c, const char *what, const char *reason)
{
    tf_worker_t *w = c->worker;
    const tf_backend_t *be =
        tf_upstream_backend(c->gen->upstream, c->tenant, c->route, c->backend_ix);
    TF_CONN_LOG(TF_LOG_WARN, c, "backend %s: %s: %s; marked down for %us", be->text, what, reason,
                TF_BSTATE_DOWN_MS / 1000);
    tf_bstate_failed(be->state, true, uv_now(&w->loop));
    tf_conn__attempt_again(c);
}

void tf_conn__attempt_again(tf_conn_t *c)
{
    uv_timer_stop(&c->timer); /* re-armed by the next attempt */
    c->timer_due_ms = 0;
    tf_conn_connect_backend(c, c->buser);
}

static void backend_on_connect(uv_connect_t *req, int status)
{
    tf_bstream_t *b = tf_container_of(req, tf_bstream_t, req.connect);
    /* A released stream (the connection closed or moved on) has no sink. */
    if (b->s.sink == NULL || status == UV_ECANCELED)
        return;
    tf_conn_t *c = b->s.owner;
    if (tf_conn_closing(c))
        return;
    if (status < 0) {
        backend_retry(c, status);
        return;
    }
    if (tf_stream_is_tcp(&b->s))
        uv_tcp_nodelay(&b->s.tcp, 1);
    const tf_backend_t *be =
        tf_upstream_backend(c->gen->upstream, c->tenant, c->route, c->backend_ix);
    TF_CONN_LOG(TF_LOG_DEBUG, c, "backend %s connected", be->text);
    if (be->tls != NULL) {
        tf_conn__backend_tls_start(c, &b->s);
        return;
    }
    c->traffic.active_ms = uv_now(&c->worker->loop);
    c->buser->ready(c, false);
}

/* ---- tunnel ------------------------------------------------------------ */

static void tunnel_close(tf_pump_t *p, tf_log_level_t level, const char *reason)
{
    tf_conn_close(p->owner, level, reason);
}

static void tunnel_fail(tf_pump_t *p, int err, const char *what)
{
    tf_conn_fail(p->owner, err, what);
}

static void tunnel_ended(tf_pump_t *p, bool client)
{
    log_ended(p->owner, client);
}

static const tf_pump_owner_t tunnel_owner = {
    .close = tunnel_close,
    .fail = tunnel_fail,
    .ended = tunnel_ended,
};

void tf_conn_start_tunnel(tf_conn_t *c, bool client_ended)
{
    c->phase = TF_CONN_TUNNEL;
    /* A 101 answered the request: counted, and the backend now holds a
     * tunnel (mode tcp: from the connect to the close). */
    if (c->in_flight != NULL && !c->in_flight_tunnel) {
        if (c->mode != NULL)
            tf_bstate_count(c->in_flight, 101);
        tf_bstate_to_tunnel(c->in_flight);
        c->in_flight_tunnel = true;
    }
    tf_pump_start(&c->pump, &c->worker->loop, &c->client, c->backend, client_ended, &c->traffic,
                  &tunnel_owner, c);
    if (!tf_conn_closing(c))
        tf_conn_arm_timer(c);
}

/* ---- the one timer ---------------------------------------------------- */

static uint64_t phase_timeout(const tf_conn_t *c)
{
    const tf_conf_timeouts_t *t = tf_conf_timeouts(c->gen->conf);
    /* Once the route is known, its own timeouts (route, then tenant, then
     * global: resolved at load, SPEC §11). */
    const tf_conf_route_timeouts_t *rt =
        c->tenant != TF_CONN_NO_INDEX
            ? &tf_upstream_route_conf(c->gen->upstream, c->tenant, c->route)->timeouts
            : NULL;
    switch ((tf_conn_phase_t)c->phase) {
    case TF_CONN_HANDSHAKE:
        return t->handshake_ms;
    case TF_CONN_CONNECTING:
        return rt != NULL ? rt->connect_ms : t->connect_ms;
    case TF_CONN_TUNNEL:
        /* mode tcp and upgraded HTTP (WebSocket) alike: long-lived by
         * nature, as haproxy's `timeout tunnel`. */
        return rt != NULL ? rt->tunnel_ms : t->tunnel_ms;
    case TF_CONN_HTTP:
    case TF_CONN_CLOSING:
        break;
    }
    return t->idle_ms;
}

static void conn_on_timer(uv_timer_t *timer);

static void timer_start(tf_conn_t *c, uint64_t ms)
{
    c->timer_due_ms = uv_now(&c->worker->loop) + ms;
    uv_timer_start(&c->timer, conn_on_timer, ms, 0);
}

/* Handshake and connect deadlines run from the phase's start; the idle
 * deadline from the last movement of bytes, which the pump records without
 * touching the timer: when the timer fires early, it re-arms for the rest.
 * The HTTP phase's deadlines work the same way: a timer already due before
 * the new deadline stays as it is (a keep-alive connection's steady state:
 * the header deadline of a request is later than the one armed for an
 * earlier request, the response and idle deadlines later still). */
void tf_conn_arm_timer(tf_conn_t *c)
{
    if (tf_conn_closing(c))
        return;
    if (c->phase == TF_CONN_HTTP) {
        uint64_t ms = c->mode->timeout_ms(c);
        if (c->timer_due_ms != 0 && c->timer_due_ms <= uv_now(&c->worker->loop) + ms)
            return;
        timer_start(c, ms);
        return;
    }
    uint64_t ms = phase_timeout(c);
    if (c->phase == TF_CONN_TUNNEL) {
        uint64_t idle = uv_now(&c->worker->loop) - c->traffic.active_ms;
        ms = idle < ms ? ms - idle : 0;
    }
    timer_start(c, ms);
}

static void conn_on_timer(uv_timer_t *timer)
{
    tf_conn_t *c = tf_container_of(timer, tf_conn_t, timer);
    uint64_t now = uv_now(&c->worker->loop);
    c->timer_due_ms = 0; /* a one-shot timer: no longer armed */
    switch ((tf_conn_phase_t)c->phase) {
    case TF_CONN_HANDSHAKE:
        tf_conn_close(c, TF_LOG_INFO, "handshake timeout");
        return;
    case TF_CONN_CONNECTING:
        /* Not closing the connection: the next backend may answer. Closing
         * the handle cancels the connect (its callback sees UV_ECANCELED). */
        backend_retry(c, UV_ETIMEDOUT);
        return;
    case TF_CONN_HTTP:
        c->mode->on_timer(c);
        return;
    case TF_CONN_TUNNEL:
        if (now - c->traffic.active_ms >= phase_timeout(c)) {
            tf_conn_close_politely(c, TF_LOG_INFO, "tunnel timeout");
            return;
        }
        tf_conn_arm_timer(c);
        return;
    case TF_CONN_CLOSING:
        return;
    }
}

/* ---- close ------------------------------------------------------------ */

void tf_conn_peer_addr(const tf_conn_t *c, char *out, size_t len)
{
    /* An HTTP/2 stream's connection has its parent's text: inet_ntop
     * through sprintf was 4% of an HTTP/2 request's instructions. */
    if (c->peer_text != NULL) {
        size_t n = strnlen(c->peer_text, len - 1);
        memcpy(out, c->peer_text, n);
        out[n] = '\0';
    } else if (c->peer.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &c->peer.in4.sin_addr, out, (socklen_t)len);
    } else if (c->peer.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, out, (socklen_t)len);
    } else {
        snprintf(out, len, "unknown");
    }
}

/* "host:port" ("[host]:port" for IPv6), or "-": the log lines' peer. */
static const char *peer_text(const tf_conn_t *c, char *buf, size_t len)
{
    sa_family_t family = c->peer.sa.sa_family;
    if (family != AF_INET && family != AF_INET6) {
        snprintf(buf, len, "-");
        return buf;
    }
    char host[INET6_ADDRSTRLEN];
    tf_conn_peer_addr(c, host, sizeof host);
    snprintf(buf, len, family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
             ntohs(family == AF_INET6 ? c->peer.in6.sin6_port : c->peer.in4.sin_port));
    return buf;
}

tf_log_conn_t tf_conn_log_prefix(const tf_conn_t *c, char *peerbuf, size_t len)
{
    tf_log_conn_t p = {
        .id = c->id,
        .peer = peer_text(c, peerbuf, len),
        .sni = c->client.tls != NULL ? tf_tls_session_sni(c->client.tls) : NULL,
    };
    return p;
}

static void conn_log_summary(tf_conn_t *c, tf_log_level_t level)
{
    tf_upstream_t *u = c->gen->upstream;
    const char *tenant =
        c->tenant != TF_CONN_NO_INDEX ? tf_upstream_tenant_name(u, c->tenant) : NULL;
    const char *backend = c->backend_ix != TF_CONN_NO_INDEX
                              ? tf_upstream_backend(u, c->tenant, c->route, c->backend_ix)->text
                              : NULL;
    /* An HTTP/2 connection has no tenant of its own: its streams have. */
    bool done = c->tenant != TF_CONN_NO_INDEX || c->h2 != NULL;
    const char *version = done ? tf_tls_session_version(c->client.tls) : NULL;
    TF_CONN_LOG(level, c,
                "closed: %s; in=%llu out=%llu duration_ms=%llu tenant=%s backend=%s tls=%s "
                "resumed=%s",
                c->reason, (unsigned long long)c->traffic.up, (unsigned long long)c->traffic.down,
                (unsigned long long)(uv_now(&c->worker->loop) - c->started_ms),
                tenant ? tenant : "-", backend ? backend : "-", version ? version : "-",
                done && tf_tls_session_resumed(c->client.tls) ? "yes" : "no");
}

/* mode tcp: one access log line per connection, without a request. */
static void conn_access_log(tf_conn_t *c)
{
    tf_access_log_t *log = c->worker->server->shared->access;
    if (c->mode != NULL || c->tenant == TF_CONN_NO_INDEX || log == NULL || !tf_access_enabled(log))
        return;
    char addr[INET6_ADDRSTRLEN];
    tf_conn_peer_addr(c, addr, sizeof addr);
    tf_upstream_t *u = c->gen->upstream;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = uv_now(&c->worker->loop) - c->started_ms;
    tf_access_entry_t e = {
        .time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - (int64_t)ms,
        .client = c->peer.sa.sa_family != AF_UNSPEC ? addr : NULL,
        .sni = tf_tls_session_sni(c->client.tls),
        .tenant = tf_upstream_tenant_name(u, c->tenant),
        .bytes_in = c->traffic.up,
        .bytes_out = c->traffic.down,
        .duration_ms = ms,
        .backend = c->backend_ix != TF_CONN_NO_INDEX
                       ? tf_upstream_backend(u, c->tenant, c->route, c->backend_ix)->text
                       : NULL,
    };
    tf_access_write(log, &e);
}

static void conn_on_handle_closed(uv_handle_t *h)
{
    /* Every embedded handle's data points back at the connection. */
    tf_conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    tf_stream_dispose(&c->client);
    if (c->per_client)
        tf_limits_conn_close(c->worker->server->shared->limits, &c->peer.sa);
    tf_worker_t *w = c->worker;
    tf_worker_gen_release(w, c->gen);
    if (c->parent == NULL) {
        tf_worker_conn_removed(w, c);
        free(c);
    } else {
        w->nchildren--;
        tf_wcache_free(&w->cache, c, c->child_size);
    }
}

/* The tlsfront_handshake_failures_total reason of a connection closed
 * during its handshake. */
static const char *handshake_failure(const tf_conn_t *c, const char *reason)
{
    if (strcmp(reason, "handshake timeout") == 0)
        return "timeout";
    if (strcmp(reason, "peer closed") == 0 || strcmp(reason, "peer reset") == 0)
        return "closed";
    if (strcmp(reason, "TLS error") != 0)
        return "other";
    const char *why = c->client.tls != NULL ? tf_tls_session_error(c->client.tls) : "";
    return strncmp(why, "unknown SNI", 11) == 0 ? "unknown_sni" : "protocol";
}

void tf_conn_close(tf_conn_t *c, tf_log_level_t level, const char *reason)
{
    if (tf_conn_closing(c))
        return;
    c->reason = reason;
    in_flight_end(c);
    if (c->phase == TF_CONN_HANDSHAKE && reason != per_client_refused)
        tf_metrics_handshake(c->worker->metrics, false, handshake_failure(c, reason));
    /* An HTTP/2 stream's requests have their access lines; the summary is
     * the connection's. */
    conn_log_summary(c, c->parent != NULL ? TF_LOG_DEBUG : level);
    conn_access_log(c);
    c->phase = TF_CONN_CLOSING;
    c->client.tcp.data = c->timer.data = c;
    c->client.ops->close(&c->client, conn_on_handle_closed);
    if (c->backend != NULL) {
        tf_bstream_release(c->backend);
        c->backend = NULL;
    }
    if (c->mode != NULL)
        c->mode->free(c);
    uv_close((uv_handle_t *)&c->timer, conn_on_handle_closed);
}

void tf_conn_close_politely(tf_conn_t *c, tf_log_level_t level, const char *reason)
{
    if (tf_conn_closing(c))
        return;
    if (c->mode == NULL || c->mode->goodbye_ok(c))
        tf_stream_goodbye(&c->client);
    tf_conn_close(c, level, reason);
}

void tf_conn_fail(tf_conn_t *c, int err, const char *what)
{
    if (tf_conn_closing(c))
        return;
    /* Resets, timeouts and clients going away are part of normal life. */
    bool benign = err == UV_EOF || err == UV_ECONNRESET || err == UV_EPIPE || err == UV_ETIMEDOUT ||
                  err == UV_ECANCELED;
    if (err == TF_ETLS) {
        TF_CONN_LOG(TF_LOG_INFO, c, "TLS: %s", what ? what : "error");
        tf_conn_close(c, TF_LOG_INFO, "TLS error");
        return;
    }
    TF_CONN_LOG(benign ? TF_LOG_DEBUG : TF_LOG_WARN, c, "%s: %s", what, tf_strerror(err));
    tf_conn_close(c, benign ? TF_LOG_INFO : TF_LOG_WARN,
                  err == UV_EOF ? "peer closed"
                  : benign      ? "peer reset"
                                : "I/O error");
}

void tf_conn_drain(tf_conn_t *c)
{
    if (c->mode != NULL && !tf_conn_closing(c) && c->phase != TF_CONN_TUNNEL)
        c->mode->drain(c);
}
