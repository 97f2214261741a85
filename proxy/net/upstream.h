/* proxy/ upstreams (internal): the tenants of the configuration as a routing
 * table, their routes, and each route's backends and balancer. One table per
 * worker and generation: round-robin positions are the worker's own;
 * backend state (health, down marks, in flight) lives in the process-wide
 * registry (backends.h), as does least_conn's per-route order. Strings
 * point into the configuration, which the table keeps referenced.
 */
#ifndef TF_PROXY_UPSTREAM_H
#define TF_PROXY_UPSTREAM_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "conf/conf.h"
#include "tls/tls.h"

#include <netinet/in.h>
#include <sys/un.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TF_UPSTREAM_NONE UINT32_MAX
/* tf_upstream_pick(): every usable backend is at its max_conns. */
#define TF_UPSTREAM_FULL (UINT32_MAX - 1)

typedef struct tf_upstream tf_upstream_t;
typedef struct tf_backends tf_backends_t;
typedef struct tf_bstate tf_bstate_t;

/* A backend's socket address: IPv4, IPv6 or a unix socket path. */
typedef union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
} tf_backend_addr_t;

typedef struct {
    tf_backend_addr_t addr;
    const char *text;            /* as written in the configuration */
    const tf_conf_backend_t *conf;
    tf_bstate_t *state;          /* process-wide, referenced by the table */
    char cookie_id[17];          /* balance cookie: the opaque ID (16 hex digits) */
    /* tls: true (SPEC §14): the client context for its trust setting (the
     * table's, shared by backends with the same one), and the name its
     * certificate must hold (tls_sni, or an IP literal; NULL: none checked).
     * NULL context: plain. */
    tf_tls_client_ctx_t *tls;
    const char *verify_name;
    uint64_t flavour; /* the pool's key beside the address: 0 plain, else the TLS settings' */
} tf_backend_t;

/* What a balancer may look at besides the backends. */
typedef struct {
    const struct sockaddr *client; /* source: the client address (after PROXY, §14) */
    const char *cookie;            /* cookie: the sticky cookie's value, or NULL */
    size_t cookie_len;
} tf_pick_hint_t;

/* A pick's answer. */
typedef struct {
    uint32_t backend; /* index in the route, or TF_UPSTREAM_NONE / TF_UPSTREAM_FULL */
    bool sticky_hit;  /* balance cookie: the client's cookie named this backend */
} tf_pick_t;

/* Fills OUT from A: a unix: path as is, an IP literal or a name through
 * the system resolver (blocking). 0, or TF_EINVAL with the resolver's
 * reason in *WHY (static text). */
int tf_backend_addr_resolve(const tf_conf_addr_t *a, tf_backend_addr_t *out, const char **why);

/* The name a TLS backend's certificate must hold: tls_sni, else its IP
 * literal; NULL when nothing is verified or no name applies (the chain is
 * still verified unless tls_verify: off). Points into CB. */
const char *tf_backend_verify_name(const tf_conf_backend_t *cb);

/* Builds the table; backend host names are resolved here, once, with the
 * system resolver (blocking: call before the loop runs, or off it). Every
 * backend's state is acquired from REG (which must outlive the table).
 * Errors ("tenant 'x': backend 'h:p': cannot resolve: reason") into err. */
int tf_upstream_new(const tf_conf_t *conf, tf_backends_t *reg, tf_upstream_t **out, char *err,
                    size_t errlen) __attribute__((warn_unused_result));
/* The key of balance: cookie's IDs, derived from the file at PATH (the
 * system certificate's: secret, and the same for instances that share it);
 * call once at start, before any table is built. 0, -errno or TF_EIO. */
int tf_upstream_cookie_key_from_file(const char *path) __attribute__((warn_unused_result));

/* Drops one reference; the last frees the table (and releases its backend
 * states). A certificate-only reload shares the table between generations
 * (tf_upstream_ref). Not thread-safe: one worker's tables are referenced on
 * that worker's thread only. */
void tf_upstream_free(tf_upstream_t *u);
tf_upstream_t *tf_upstream_ref(tf_upstream_t *u);

/* The tenant for a client's SNI or Host (NULL: none sent): exact host, then
 * a wildcard "*.base" covering one label, then the "*" tenant. Returns a
 * tenant index or TF_UPSTREAM_NONE. */
uint32_t tf_upstream_route(const tf_upstream_t *u, const char *sni);

const tf_conf_t *tf_upstream_conf(const tf_upstream_t *u);
const char *tf_upstream_tenant_name(const tf_upstream_t *u, uint32_t tenant);
const tf_conf_tenant_t *tf_upstream_tenant_conf(const tf_upstream_t *u, uint32_t tenant);
size_t tf_upstream_tenant_count(const tf_upstream_t *u);

/* The route of TENANT for normalized path NPATH (proxy/http/route.h); 0 is
 * "/". Not linear in the number of routes. */
uint32_t tf_upstream_route_path(const tf_upstream_t *u, uint32_t tenant, const char *npath,
                                size_t len);
const tf_conf_route_t *tf_upstream_route_conf(const tf_upstream_t *u, uint32_t tenant,
                                              uint32_t route);

/* Picks a backend of (TENANT, ROUTE) by the route's balance, among those
 * usable at NOW_MS (backends.h) and below their max_conns; backups only
 * while no other backend is usable. On success the backend's in-flight
 * count has been taken (tf_bstate_begin): the caller ends it. Not linear
 * in the number of backends for least_conn, source and cookie. */
tf_pick_t tf_upstream_pick(tf_upstream_t *u, uint32_t tenant, uint32_t route,
                           const tf_pick_hint_t *hint, uint64_t now_ms);
/* The in-flight count a pick took for BACKEND is over: ended here (a
 * request, or with TUNNEL a tunnel), and least_conn's order follows. */
void tf_upstream_end(tf_upstream_t *u, uint32_t tenant, uint32_t route, uint32_t backend,
                     bool tunnel);
size_t tf_upstream_backend_count(const tf_upstream_t *u, uint32_t tenant, uint32_t route);
const tf_backend_t *tf_upstream_backend(const tf_upstream_t *u, uint32_t tenant, uint32_t route,
                                        uint32_t backend);

#endif
