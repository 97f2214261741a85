/* proxy/ upstreams (internal): the tenants of the configuration as a routing
 * table, and their backends with round-robin and down marks. One table per
 * worker (the down marks and round-robin positions are the worker's own, so
 * nothing here is locked). Strings point into the configuration, which the
 * caller keeps referenced for the table's life.
 */
#ifndef TF_PROXY_UPSTREAM_H
#define TF_PROXY_UPSTREAM_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "conf/conf.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TF_UPSTREAM_NONE UINT32_MAX
/* How long a backend that refused or timed out a connect is skipped. */
#define TF_UPSTREAM_DOWN_MS 10000u

typedef struct tf_upstream tf_upstream_t;

typedef struct {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    const char *text;       /* as written in the configuration */
    uint64_t down_until_ms; /* skipped until then (loop time) */
    bool unhealthy;         /* the tenant's active health check failed */
} tf_backend_t;

/* Builds the table; backend host names are resolved here, once, with the
 * system resolver (blocking: call before the loop runs). Errors ("tenant
 * 'x': backend 'h:p': cannot resolve: reason") into err. */
int tf_upstream_new(const tf_conf_t *conf, tf_upstream_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Drops one reference; the last frees the table. A certificate-only reload
 * shares the table between generations (tf_upstream_ref): its down marks,
 * health and round-robin positions carry on. Not thread-safe: one worker's
 * tables are referenced on that worker's thread only. */
void tf_upstream_free(tf_upstream_t *u);
tf_upstream_t *tf_upstream_ref(tf_upstream_t *u);

/* The tenant for a client's SNI (NULL: none sent): exact host, then a
 * wildcard "*.base" covering one label, then the "*" tenant. The SNI is
 * normalized (lower case, one trailing dot removed) into a stack buffer.
 * Returns a tenant index or TF_UPSTREAM_NONE. */
uint32_t tf_upstream_route(const tf_upstream_t *u, const char *sni);

/* The configuration the table was built from (referenced by it). */
const tf_conf_t *tf_upstream_conf(const tf_upstream_t *u);
const char *tf_upstream_tenant_name(const tf_upstream_t *u, uint32_t tenant);
/* The tenant's configuration (mode, health). */
const tf_conf_tenant_t *tf_upstream_tenant_conf(const tf_upstream_t *u, uint32_t tenant);

/* The next backend of `tenant`, round robin, skipping those marked down at
 * `now_ms` and those the active health check found unhealthy; when every
 * healthy one is marked down, the one due back first (a restarted backend
 * serves at once). TF_UPSTREAM_NONE when no backend is healthy. */
uint32_t tf_upstream_pick(tf_upstream_t *u, uint32_t tenant, uint64_t now_ms);
size_t tf_upstream_backend_count(const tf_upstream_t *u, uint32_t tenant);
const tf_backend_t *tf_upstream_backend(const tf_upstream_t *u, uint32_t tenant, uint32_t backend);
size_t tf_upstream_tenant_count(const tf_upstream_t *u);

/* Sets a backend's health (active checks); returns whether it changed. */
bool tf_upstream_set_healthy(tf_upstream_t *u, uint32_t tenant, uint32_t backend, bool healthy);

void tf_upstream_mark_down(tf_upstream_t *u, uint32_t tenant, uint32_t backend, uint64_t now_ms);

#endif
