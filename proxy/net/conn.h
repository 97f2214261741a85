/* proxy/ connections (internal to proxy/): one allocation per accepted
 * client, embedding both libuv TCP handles, the one timer, one write request
 * per direction and the backend's connect/shutdown request.
 *
 * Lifecycle (phase):
 *   HANDSHAKE  → TLS handshake with the client (timeouts.handshake)
 *   CONNECTING → connecting a backend (timeouts.connect per attempt; a
 *                failed backend is marked down, the next tried)
 *   HTTP       → mode http: requests and responses relayed one exchange at
 *                a time by exchange.c (its own timeouts); CONNECTING again
 *                whenever a request needs a new backend connection
 *   TUNNEL     → bytes pumped both ways: mode tcp from the first byte
 *                (timeouts.idle while nothing moves), mode http after a
 *                101 Switching Protocols (timeouts.tunnel)
 *   CLOSING    → handles closing; freed by the last close callback
 * The tenant of a mode tcp connection is chosen by SNI; a connection whose
 * SNI names no mode tcp tenant speaks HTTP and routes every request by its
 * Host.
 * The client stream's sink follows the phases: the handshake's (conn.c),
 * then mode tcp's while the backend connects (conn.c) and the pump's
 * (pump.h) once it has, or mode http's exchange (exchange.h), which hands
 * both streams to the pump after a 101.
 *
 * Closing: tf_conn_close() is the one way to end a connection. It logs the
 * summary line, moves to CLOSING and closes every open handle; the memory
 * lives until the last close callback, which libuv never runs synchronously.
 * So a callback may go on touching the struct after a call that can close,
 * but must stop doing work: after any such call it checks
 * tf_conn_closing() and returns at once.
 */
#ifndef TF_PROXY_CONN_H
#define TF_PROXY_CONN_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "proxy/obs/obs.h"
#include "proxy/net/pump.h"
#include "proxy/net/stream.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct tf_conn tf_conn_t;
typedef struct tf_worker tf_worker_t;
typedef struct tf_worker_gen tf_worker_gen_t;

typedef enum {
    TF_CONN_HANDSHAKE,
    TF_CONN_CONNECTING,
    TF_CONN_HTTP,
    TF_CONN_TUNNEL,
    TF_CONN_CLOSING,
} tf_conn_phase_t;

typedef struct tf_hx tf_hx_t;
typedef struct tf_h2 tf_h2_t;
typedef struct tf_bstate tf_bstate_t;

/* What runs an HTTP connection once its handshake is done (mode http's
 * exchanges, exchange.c; HTTP/2 will be another), as conn.c sees it: the
 * deadline its timer serves, what a drain does, and the release of its
 * state. conn.c calls these in the HTTP phase only and never looks inside. */
typedef struct {
    /* Milliseconds until the current deadline; on_timer() when it passed
     * (or the timer fired early: it re-arms). */
    uint64_t (*timeout_ms)(const tf_conn_t *c);
    void (*on_timer)(tf_conn_t *c);
    /* The worker drains: close when idle, else after what is under way. */
    void (*drain)(tf_conn_t *c);
    /* The connection closes: release the mode's state. */
    void (*free)(tf_conn_t *c);
    /* Whether a close the proxy decides may say goodbye with a close_notify:
     * not in the middle of a body whose end only a close_notify marks. */
    bool (*goodbye_ok)(const tf_conn_t *c);
} tf_conn_mode_t;

/* Who asked for a backend connection (tf_conn_connect_backend): the mode
 * tcp tunnel or an HTTP exchange. Told how the connect ended. */
typedef struct {
    /* The new backend stream's sink (owner: the connection) until ready. */
    const tf_sink_t *sink;
    /* c->backend is connected; `reused`: it came from the pool. */
    void (*ready)(tf_conn_t *c, bool reused);
    /* Every backend of the tenant failed to connect, or none was up. */
    void (*failed)(tf_conn_t *c);
    /* No connection could be opened for want of descriptors or memory
     * here: the backends are not to blame. */
    void (*local_error)(tf_conn_t *c);
    /* Whether a pooled connection may serve: NULL never. */
    bool (*pool_allowed)(const tf_conn_t *c);
} tf_conn_backend_user_t;

#define TF_CONN_NO_INDEX UINT32_MAX

struct tf_conn {
    tf_stream_t client;   /* TLS */
    tf_stream_t *backend; /* plain TCP (a tf_bstream_t), or NULL; owned */
    bool backend_parked;  /* backend: idle between exchanges (tf_conn_park_backend) */
    uint32_t parked_tenant, parked_route, parked_ix; /* where the parked backend goes */
    const tf_conn_mode_t *mode;                      /* mode http's (and after a 101), or NULL */
    tf_hx_t *hx; /* mode http's state, or NULL; owned by the mode */
    tf_h2_t *h2; /* HTTP/2's session (h2.h), or NULL; owned by the mode */
    /* An HTTP/2 stream's connection (a child, tf_conn_init_child): the
     * client connection it belongs to, which closes its children before
     * itself; NULL for a connection that was accepted. Compared, never
     * followed, once the child is closing. */
    tf_conn_t *parent;
    size_t child_size; /* a child's block in the worker's cache (tf_wcache_free) */
    /* The peer's address as text when its connection made it once for all
     * its streams (HTTP/2), or NULL: whoever needs it writes it. Valid
     * while the connection is open. */
    const char *peer_text;
    const tf_conn_backend_user_t *buser; /* the last tf_conn_connect_backend()'s */
    tf_pump_t pump;                      /* the tunnel, in the TUNNEL phase */
    uv_timer_t timer;
    tf_worker_t *worker;
    /* The worker's generation at accept (configuration, certificate
     * snapshot, TLS context, tenant table), held until the struct is freed:
     * a reload never changes what a running connection uses. */
    tf_worker_gen_t *gen;
    tf_conn_t *prev, *next; /* the worker's list of connections */
    uint64_t id;
    uint64_t started_ms;   /* uv_now() at accept */
    uint64_t timer_due_ms; /* uv_now() at which the armed timer fires; 0: not armed */
    tf_traffic_t traffic;  /* bytes moved, and when last */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
    const char *reason;  /* why it closed (static string), for the summary */
    uint32_t tenant;     /* index in the worker's upstream table, or TF_CONN_NO_INDEX */
    uint32_t route;      /* the tenant's route (0: "/"), set before connecting a backend */
    uint32_t backend_ix; /* index in the route's backends, or TF_CONN_NO_INDEX */
    /* The backend whose in-flight count this connection holds (a request
     * or a tunnel under way), or NULL: taken by the pick, given back by
     * tf_conn_backend_done(), a failed connect, tf_conn_close(). */
    tf_bstate_t *in_flight;
    bool in_flight_tunnel;
    /* The last pick found every usable backend at its max_conns (the user's
     * failed() then answers 503 with Retry-After). */
    bool backends_full;
    /* balance cookie: the sticky cookie's value as the client sent it (the
     * exchange copies it here before connecting: a retry picks again later),
     * "" when none or too long to be one of ours. */
    char sticky[24];
    uint8_t phase;       /* tf_conn_phase_t */
    uint8_t handles;     /* libuv handles open (not yet closed) */
    uint8_t attempts;    /* backend connects tried */
    bool per_client;     /* holds a limits.per_client slot (limits.h), given back when freed */
    uint16_t local_port; /* the port the client connected to (the listener's); 0: unknown */
};

/* Accepts one connection from `server` into a new tf_conn_t (the listener
 * checked the limits and counted it); `local_port` is the port `server` is
 * bound to, 0 when unknown (the socket is then asked when needed).
 * Returns 0; TF_ENOMEM when the struct could not be allocated (the
 * connection stays pending in libuv and the count is the caller's to undo);
 * any other negative code when the connection was taken but could not be
 * set up (it is closing, and resources are short: the caller should
 * pause). */
int tf_conn_accept(tf_worker_t *w, uv_stream_t *server, uint16_t local_port);

/* HTTP/2 (h2.c): readies CHILD, zeroed memory whose owner's struct starts
 * with it (SIZE bytes from the worker's cache, tf_wcache_alloc(); freed
 * there once closed), as the connection of one stream
 * of PARENT: the parent's worker, generation (held until CHILD is freed),
 * peer, id and port, a timer of its own, and a client stream with OPS
 * carried by TRANSPORT, which shares the parent's TLS session. Not in the
 * worker's list and not counted as a connection: the parent drains and
 * closes its children. The caller then starts the exchange on it
 * (tf_hx_start). OPS' close() must call its callback (it may do so at
 * once: the timer's close comes after it and frees the struct). */
void tf_conn_init_child(tf_conn_t *child, size_t size, tf_conn_t *parent,
                        const tf_stream_ops_t *ops, void *transport);

/* Whether the connection's backend connections name its client (the
 * tenant's send_proxy): they carry this client's requests only, so they
 * are neither taken from nor given to the shared pool. */
bool tf_conn_backend_private(const tf_conn_t *c);

/* Keeps the connection's backend (a private one, after a complete
 * exchange) for its next request: reused when that request goes to the
 * same backend, dropped when it goes elsewhere or when the backend closes
 * or sends anything meanwhile. */
void tf_conn_park_backend(tf_conn_t *c);

/* Ends the connection (see above); `reason` is a static string for the
 * summary line, `level` the level of that line. Idempotent. */
void tf_conn_close(tf_conn_t *c, tf_log_level_t level, const char *reason);

/* The same, after a best-effort close_notify to the client: for closes the
 * proxy decides (timeouts, drain). */
void tf_conn_close_politely(tf_conn_t *c, tf_log_level_t level, const char *reason);

static inline bool tf_conn_closing(const tf_conn_t *c)
{
    return c->phase == TF_CONN_CLOSING;
}

/* The worker is draining: an HTTP connection waiting for a request closes
 * now, one in the middle of an exchange after its response; a tunnel goes
 * on until it ends or timeouts.drain. */
void tf_conn_drain(tf_conn_t *c);

/* Closes on an I/O or TLS error (err: UV_* or TF_* code): resets and
 * timeouts are info, other failures warnings. */
void tf_conn_fail(tf_conn_t *c, int err, const char *what);

/* Connects a backend of c->tenant (round robin, down marks, one retry per
 * backend, a pooled connection first where `user` allows) and tells `user`
 * how it went. */
void tf_conn_connect_backend(tf_conn_t *c, const tf_conn_backend_user_t *user);

/* Steps of a backend attempt shared by conn.c and conn_tls.c. The
 * attempt's backend failed (WHAT: REASON): marked down, the next one tried. */
void tf_conn__backend_down(tf_conn_t *c, const char *what, const char *reason);
/* The attempt's timer stopped, a backend picked again. */
void tf_conn__attempt_again(tf_conn_t *c);
/* TLS to the attempt's backend over its connected stream S (conn_tls.c):
 * the user's ready() at its end, tf_conn__backend_down() on a failure. */
void tf_conn__backend_tls_start(tf_conn_t *c, tf_stream_t *s);

/* The request the connection's in-flight count was for is over: STATUS
 * (100..599) is counted for the backend, 0 counts nothing (the request
 * failed and was counted as a failure). Nothing when none is held. */
void tf_conn_backend_done(tf_conn_t *c, unsigned status);

/* Makes the connection a tunnel between its two streams (the backend
 * connected): mode tcp, or mode http after a 101. `client_ended`: the
 * client already ended its output. */
void tf_conn_start_tunnel(tf_conn_t *c, bool client_ended);

/* Re-arms the connection's one timer for its phase. In the HTTP phase the
 * timer is left alone when it is already due no later than the phase's
 * deadline: it fires early and the mode's on_timer() re-arms it for the rest, so
 * that a keep-alive request does not restart a libuv timer at every step. */
void tf_conn_arm_timer(tf_conn_t *c);

/* The peer's address without its port ("192.0.2.7", "2001:db8::7",
 * "unknown") into out (at least INET6_ADDRSTRLEN bytes). */
void tf_conn_peer_addr(const tf_conn_t *c, char *out, size_t len);

/* The fixed prefix of this connection's log lines; `peerbuf` (>= 64 bytes)
 * receives the peer address text. */
tf_log_conn_t tf_conn_log_prefix(const tf_conn_t *c, char *peerbuf, size_t len);

/* Logs one line with the connection prefix; the level test comes first. */
#define TF_CONN_LOG(level, c, ...)                                                                 \
    do {                                                                                           \
        if (tf_log_enabled(level)) {                                                               \
            char peer_[64];                                                                        \
            tf_log_conn_t p_ = tf_conn_log_prefix((c), peer_, sizeof peer_);                       \
            tf_log_conn_write((level), &p_, __VA_ARGS__);                                          \
        }                                                                                          \
    } while (0)

#endif
