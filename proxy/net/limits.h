/* proxy/ per-client limits (SPEC §11 `limits.per_client`), process-wide:
 * per client address, the connections open (over `connections` a new one
 * is closed at once) and a token bucket of requests (`requests_per_second`
 * refill, `burst` capacity; an empty bucket answers 429 with Retry-After).
 * One table for all workers, split into shards each under its own mutex,
 * so two workers rarely wait on each other; an address's entry goes when it
 * holds no connection and its bucket has refilled, so memory follows the
 * clients present, not every client ever seen. The settings are read from
 * the configuration at every call (a reload changes them for new
 * connections and requests).
 */
#ifndef TF_PROXY_LIMITS_H
#define TF_PROXY_LIMITS_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "conf/conf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct tf_limits tf_limits_t;

int tf_limits_new(tf_limits_t **out) __attribute__((warn_unused_result));
/* Every connection must have been released. */
void tf_limits_free(tf_limits_t *l);

/* A connection from SA opens: true when it may (counted; release it with
 * tf_limits_conn_close), false when the client is at
 * per_client_connections (not counted: close it at once). Always true when
 * the limit is 0. An IPv4-mapped IPv6 address counts as the IPv4 one. */
bool tf_limits_conn_open(tf_limits_t *l, const tf_conf_limits_t *lim, const struct sockaddr *sa);
void tf_limits_conn_close(tf_limits_t *l, const struct sockaddr *sa);

/* A request from SA at NOW_MS (a monotonic clock, any thread's): 0 when
 * it may go on (a token taken), else the seconds after which one will be
 * there (>= 1, for Retry-After). Always 0 when per_client_rps is 0. */
uint32_t tf_limits_request(tf_limits_t *l, const tf_conf_limits_t *lim,
                           const struct sockaddr *sa, uint64_t now_ms);

/* Counters since start, for metrics. */
uint64_t tf_limits_refused_connections(const tf_limits_t *l);
uint64_t tf_limits_refused_requests(const tf_limits_t *l);

/* Addresses with an entry now (connections open or a bucket refilling). */
size_t tf_limits_clients(tf_limits_t *l);

#endif
