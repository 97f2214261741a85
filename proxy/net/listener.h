/* proxy/ listeners (internal): the `listen.https` sockets.
 *
 * The main thread binds every socket before any worker starts
 * (tf_listener_bind: errors reach the operator and the exit status), one per
 * address and worker with SO_REUSEPORT so the kernel spreads connections over
 * the workers; each worker then listens on its own with tf_listener_start.
 *
 * Accepting pauses instead of spinning: at limits.max_connections the
 * pending connection is left in libuv, which then stops polling the socket,
 * and is taken when a connection closes in any worker (the closing worker
 * wakes the others' parked listeners; TF_LISTENER_RETRY_MS remains as a
 * fallback); on EMFILE/ENFILE the handle is
 * closed (the socket stays open through a duplicate) and reopened when a
 * connection closes or after TF_LISTENER_RETRY_MS.
 */
#ifndef TF_PROXY_LISTENER_H
#define TF_PROXY_LISTENER_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "conf/conf.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define TF_LISTENER_RETRY_MS 250
#define TF_LISTENER_BACKLOG 1024

typedef struct tf_worker tf_worker_t;
typedef struct tf_listener tf_listener_t;

typedef enum {
    TF_LISTENER_IDLE,    /* not listening yet, or stopped */
    TF_LISTENER_ACTIVE,  /* accepting */
    TF_LISTENER_PARKED,  /* at the connection limit: one connection waits in libuv */
    TF_LISTENER_PAUSED,  /* out of file descriptors: handle closed, retry timer armed */
    TF_LISTENER_CLOSING, /* handle closing (pause or stop) */
} tf_listener_state_t;

struct tf_listener {
    uv_tcp_t tcp;
    uv_timer_t retry;
    tf_worker_t *worker;
    const tf_conf_addr_t *addr;
    int fd;        /* the bound socket; owned here, closed by tf_listener_dispose */
    uint16_t port; /* the bound port: every accepted connection's local port */
    uint8_t state; /* tf_listener_state_t */
    bool stopping; /* the worker is draining: never resume */
};

/* Creates, configures (SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY for IPv6),
 * binds and listens on a socket for addr, on `port` instead of addr's when
 * not 0 (an address with port 0 gets a port from the kernel for its first
 * socket; the other workers' sockets bind that port). Returns the fd or a
 * negative code with "ADDR: cannot listen: reason; what to do" in err. */
int tf_listener_bind(const tf_conf_addr_t *addr, uint16_t port, char *err, size_t errlen);

/* Refuses to share addr with another process: SO_REUSEPORT lets a second
 * instance bind the same address and the kernel would then split clients
 * between the two. Binds a probe socket as tf_listener_bind would, without
 * SO_REUSEPORT, and closes it. Returns 0 when nobody listens there (and for
 * port 0, where every instance gets its own port), UV_EADDRINUSE with
 * "ADDR: cannot listen: another process already listens on this address
 * (pid N, NAME); ..." in err otherwise (the pid when /proc shows it). Other
 * errors are left to tf_listener_bind, which says what they mean. Call it for
 * every address before binding any, so that the process's own sockets are not
 * taken for another's. */
int tf_listener_probe(const tf_conf_addr_t *addr, char *err, size_t errlen);

/* Who listens on the TCP address sa (listener_owner.c): " (pid N, NAME)" into
 * out, from /proc/net/tcp{,6} (the socket's inode) and /proc/PID/fd; "" when
 * it cannot be found (another user's process, without root). */
void tf_listener_owner(const struct sockaddr *sa, char *out, size_t outlen);

/* Writes the address a bound socket has ("127.0.0.1:40123", "[::1]:40123")
 * into out; returns its port, or a negative code. */
int tf_listener_name(int fd, char *out, size_t outlen);

/* The same for a socket address (IPv4 or IPv6). */
int tf_listener_format(const struct sockaddr *sa, char *out, size_t outlen);

/* Starts accepting on `fd` in the worker's loop; the listener takes the fd. */
int tf_listener_start(tf_listener_t *l, tf_worker_t *w, const tf_conf_addr_t *addr, int fd)
    __attribute__((warn_unused_result));

/* A connection closed (in this worker or another): a parked or paused
 * listener tries again. Worker thread. */
void tf_listener_resume(tf_listener_t *l);

/* Stops accepting for good and closes the handles (the fd too). */
void tf_listener_stop(tf_listener_t *l);

#endif
