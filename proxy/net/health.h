/* proxy/ active health checks (internal, SPEC §11 `health`), once per
 * process: one checker on its own thread with its own libuv loop, whatever
 * the number of workers. Every backend of a route with a `health` section
 * gets a check every `interval`: mode http tenants `GET <path>` (Host:
 * health.host, else the tenant's first exact host, else the backend's
 * address) answered within `timeout` with a status in the accepted range;
 * mode tcp tenants a TCP connect within `timeout`. `fall` failures in a row
 * take a backend down, `rise` passes bring it back (backends.h keeps the
 * verdict, shared by every worker). A backend named by several routes of a
 * tenant is checked once, with the settings of the first route naming it.
 * A backend in maintenance is not checked; `ready` asks for a check at once.
 */
#ifndef TF_PROXY_HEALTH_H
#define TF_PROXY_HEALTH_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "conf/conf.h"
#include "proxy/net/backends.h"

typedef struct tf_health tf_health_t;

/* Starts the checker's thread (checking nothing until configured). REG
 * must outlive the checker. */
int tf_health_new(tf_backends_t *reg, tf_health_t **out) __attribute__((warn_unused_result));

/* Checks the backends CONF names from now on (reference taken); any
 * thread. Backends kept from the previous configuration keep their state
 * and schedule; names are resolved on the checker's thread (one that does
 * not resolve is not checked, and says so in the log). */
void tf_health_configure(tf_health_t *h, tf_conf_t *conf);

/* Stops every check, ends the thread and frees the checker. NULL: nothing. */
void tf_health_free(tf_health_t *h);

#endif
