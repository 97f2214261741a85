/* proxy/ balancers (internal to upstream.c): one per route of an upstream
 * table, picking among the route's backends by its `balance` (SPEC §11):
 *   round_robin  smooth weighted round robin (nginx's), the table's own
 *   least_conn   the registry's per-route heap, process-wide (backends.h)
 *   source       a consistent hash ring of the client address: weight-
 *                proportional virtual nodes, binary search, the next usable
 *                point on the ring; removing a backend moves its clients only
 *   cookie       a known ID names its backend while usable; else round robin
 * Backups are picked only while no other backend is usable; a backend at
 * its max_conns is skipped, and when every usable one is, the answer is
 * TF_UPSTREAM_FULL.
 */
#ifndef TF_PROXY_BALANCE_H
#define TF_PROXY_BALANCE_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "proxy/net/backends.h"
#include "proxy/net/upstream.h"

typedef struct {
    uint64_t hash;
    uint32_t backend;
} tf_ring_point_t;

typedef struct {
    const tf_conf_route_t *conf;
    tf_backend_t *backends; /* states acquired by the caller */
    size_t n;
    tf_backends_t *reg;
    int64_t *cw;           /* round robin: current weights */
    tf_ring_point_t *ring; /* source: sorted by hash */
    size_t nring;
    uint32_t *by_cookie; /* cookie: backend indices sorted by cookie_id */
    tf_blc_t *lc;        /* least_conn */
} tf_balancer_t;

/* Sets up BL for route RC of TENANT over BACKENDS (resolved, states
 * acquired); computes the cookie IDs. 0 or TF_ENOMEM. */
int tf_balancer_init(tf_balancer_t *bl, tf_backends_t *reg, const char *tenant,
                     const tf_conf_route_t *rc, tf_backend_t *backends, size_t n)
    __attribute__((warn_unused_result));
/* Releases what init took (not the backends' states). */
void tf_balancer_fini(tf_balancer_t *bl);

tf_pick_t tf_balancer_pick(tf_balancer_t *bl, const tf_pick_hint_t *hint, uint64_t now_ms);
void tf_balancer_end(tf_balancer_t *bl, uint32_t backend, bool tunnel);

/* The cookie ID of (TENANT, ADDRESS), into out[17]: 16 hex digits of
 * HMAC-SHA-256 over "tenant\0address" with the cookie key. One ID per
 * backend of a tenant, whichever of its routes answered (the cookie's Path
 * is /); keyed, so that an ID reveals no address even to one who guesses
 * the candidates. */
void tf_balancer_cookie_id(const char *tenant, const char *address, char out[17]);

/* The key of every cookie ID (32 bytes), set once at start before any table
 * is built: `tlsfront run` derives it from the system certificate's file
 * (secret: it holds a private key; shared by instances that share it; stable
 * across restarts until that file changes). All zeroes until set. */
void tf_balancer_set_cookie_key(const unsigned char key[32]);
/* The same with a key derived from the file at PATH (SHA-256 of a label and
 * its bytes). 0, -errno or TF_EIO. */
int tf_balancer_cookie_key_from_file(const char *path);

#endif
