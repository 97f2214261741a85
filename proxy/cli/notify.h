/* systemd's readiness protocol (sd_notify(3), through libsystemd) for
 * `tlsfront run` under a Type=notify unit: READY=1 once the listeners are
 * bound, the certificates loaded and the workers started; RELOADING=1 (with
 * MONOTONIC_USEC=, which systemd 253 and later want) when a configuration
 * reload is asked for (SIGHUP, POST /reload) and READY=1 once it is applied
 * or refused (a refused one leaves the running configuration serving);
 * STOPPING=1 when draining starts. Each message carries a STATUS= line for
 * `systemctl status`. Every call is a no-op when NOTIFY_SOCKET is unset, and
 * a message that cannot be sent is logged at debug and otherwise ignored: a
 * proxy that serves must not stop for its supervisor's sake.
 *
 * Main thread only. Internal to proxy/cli. */
#ifndef TF_PROXY_CLI_NOTIFY_H
#define TF_PROXY_CLI_NOTIFY_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER < 5
#error "proxy/cli is above this library (obs < http < net < ops < cli)"
#endif

#include "proxy/ops/ops.h"

/* READY=1, with a STATUS= line that says what serves (nhttps https and
 * nhttp http listener addresses, nworkers workers). */
void tf_notify_ready(size_t nhttps, size_t nhttp, unsigned nworkers);

/* Sends RELOADING=1 and READY=1 around every configuration reload of r
 * (tf_reload_on_cycle). */
void tf_notify_watch_reloads(tf_reload_t *r);

/* STOPPING=1. */
void tf_notify_stopping(void);

#endif
