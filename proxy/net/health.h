/* proxy/ active health checks (internal, SPEC §7 "optional active health
 * checks"): for every tenant with a `health` section, each backend gets
 * `GET <health.path>` every `health.interval`; a 2xx or 3xx answer within
 * timeouts.connect keeps it healthy, anything else (refused, timed out,
 * another status) makes it unhealthy until a check passes again. Unhealthy
 * backends are skipped by tf_upstream_pick(); a tenant without a healthy
 * backend is answered 503.
 *
 * Each worker checks its own upstream table (down marks are per worker, so
 * nothing is shared); with `workers: N` every backend sees N checks per
 * interval.
 */
#ifndef TF_PROXY_HEALTH_H
#define TF_PROXY_HEALTH_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "conf/conf.h"
#include "proxy/net/upstream.h"

#include <uv.h>

typedef struct tf_health tf_health_t;

/* Starts checking the tenants of `u` that have a health section; *out is
 * NULL when none has. `u` and `conf` must outlive the checker. */
int tf_health_start(uv_loop_t *loop, tf_upstream_t *u, const tf_conf_t *conf, tf_health_t **out)
    __attribute__((warn_unused_result));

/* Stops every check; the memory goes once libuv has closed the handles. */
void tf_health_stop(tf_health_t *h);

#endif
