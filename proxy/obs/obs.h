/* proxy/ observability, the lowest library: logging, the access log and the
 * metrics. It knows nothing of sockets or workers: the layers above feed it.
 */
#ifndef TF_PROXY_OBS_H
#define TF_PROXY_OBS_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER < 1
#error "proxy/obs is above this library (obs < http < net < ops < cli)"
#endif

/* The headers below are this library's internals; this one lets them in. */
#define TF_PROXY_OBS_PUBLIC
#include "proxy/obs/log.h"
#include "proxy/obs/access.h"
#include "proxy/obs/metrics.h"
#undef TF_PROXY_OBS_PUBLIC

#endif
