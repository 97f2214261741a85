/* proxy/ operations: reloads, the admin API and certificate uploads, and the
 * configuration locations their messages name. What the command line uses:
 */
#ifndef TF_PROXY_OPS_H
#define TF_PROXY_OPS_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER < 4
#error "proxy/ops is above this library (obs < http < net < ops < cli)"
#endif

/* The headers below are this library's internals; this one lets them in. */
#define TF_PROXY_OPS_PUBLIC
#include "proxy/ops/reload.h"
#include "proxy/ops/admin.h"
#include "proxy/ops/where.h"
#include "proxy/ops/json.h"
#undef TF_PROXY_OPS_PUBLIC

#endif
