/* proxy/ backend connection pool (internal): per worker, idle keep-alive
 * connections to each backend address, reused by later requests of any
 * client of that worker (SPEC §7).
 *
 * A pooled stream reports to the pool's own sink and keeps reading: a
 * backend that closes it, or sends bytes nobody asked for, gets it dropped
 * at once. Taking is LIFO, so the warmest
 * connection serves first and the coldest ones age out: a connection idle
 * longer than the pool's idle limit is closed rather than reused, and the
 * worker sweeps the rest every second.
 */
#ifndef TF_PROXY_POOL_H
#define TF_PROXY_POOL_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "proxy/net/stream.h"

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* The fewest idle connections a backend address may keep: at least 32
 * (SPEC §7 / issue 5: a pool of 2 exhausted ports for Traefik users). */
#define TF_POOL_MAX_IDLE 64u

typedef struct tf_pool tf_pool_t;

/* A pool whose connections are reused while idle for less than idle_ms. */
tf_pool_t *tf_pool_new(uv_loop_t *loop, uint64_t idle_ms);

/* Closes every idle connection (drain) and frees the pool. */
void tf_pool_free(tf_pool_t *p);

/* Closes every idle connection; the pool stays usable. */
void tf_pool_clear(tf_pool_t *p);

/* An idle connection to `addr` spoken to as `flavour` says (0: plain; a TLS
 * backend's tf_backend_t.flavour, so that connections made with other TLS
 * settings are not mixed up), still reading, now reporting to `sink`
 * (owner), or NULL. */
tf_stream_t *tf_pool_take(tf_pool_t *p, const struct sockaddr *addr, uint64_t flavour,
                          const tf_sink_t *sink, void *owner);

/* Keeps `s` (its owner done with it after a complete exchange) for reuse,
 * as one of at most `keep` idle connections to (`addr`, `flavour`) (the oldest goes
 * beyond that; fewer than TF_POOL_MAX_IDLE counts as that many). Releases
 * it instead when memory is short. */
void tf_pool_put(tf_pool_t *p, const struct sockaddr *addr, uint64_t flavour, tf_stream_t *s,
                 size_t keep);

/* Closes connections idle past the limit (call now and then: a backend
 * nobody asks for again would otherwise keep them). */
void tf_pool_sweep(tf_pool_t *p);

/* Idle connections held, over all backends (for metrics and tests). */
size_t tf_pool_idle_count(const tf_pool_t *p);

#endif
