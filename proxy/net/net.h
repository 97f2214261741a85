/* proxy/ network: the workers and their loops, listeners, connections, streams
 * and their sinks, the pump, the backend pool, routing tables, health checks,
 * HTTP/1 exchanges and the port 80 responder. What the layers above use:
 */
#ifndef TF_PROXY_NET_H
#define TF_PROXY_NET_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER < 3
#error "proxy/net is above this library (obs < http < net < ops < cli)"
#endif

/* The headers below are this library's internals; this one lets them in. */
#define TF_PROXY_NET_PUBLIC
#include "proxy/net/worker.h"
#include "proxy/net/listener.h"
#include "proxy/net/upstream.h"
#include "proxy/net/backends.h"
#undef TF_PROXY_NET_PUBLIC

#endif
