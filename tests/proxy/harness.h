/* tests/proxy harness: the proxy suites' configuration (tenants on the test
 * backends, the demo PKI) over the shared harness (tests/harness), which
 * starts and stops every process. */
#ifndef TF_TESTS_PROXY_HARNESS_H
#define TF_TESTS_PROXY_HARNESS_H

#include "tests/harness/harness.h"

#include <stdbool.h>

/* Timeouts default to values no busy machine reaches (a sanitizer build with
 * both cores taken): a test about a timeout sets that one short. */
typedef struct {
    const char *unknown_sni;    /* "default" (NULL) or "reject" */
    unsigned workers;           /* 0: 1 */
    unsigned max_connections;   /* 0: 1000 */
    unsigned nofile;            /* 0: inherited; else RLIMIT_NOFILE of the proxy */
    const char *idle;           /* timeouts.idle; NULL: 60s */
    const char *user;           /* `user:`; NULL: none */
    bool dual_stack;            /* listen on "0.0.0.0:0" and "[::]:0" instead of 127.0.0.1:0 */
    bool http;                  /* mode http tenants on echo_backend.py (see harness.c) */
    const char *response;       /* timeouts.response; NULL: 60s */
    const char *tunnel;         /* timeouts.tunnel; NULL: 1h */
    const char *handshake;      /* timeouts.handshake; NULL: 20s */
    const char *request_header; /* timeouts.request_header; NULL: 20s */
    const char *drain;          /* timeouts.drain; NULL: 10s */
} tf_px_opts_t;

/* Makes (once, under a lock) the demo PKI, starts the backends and the proxy
 * with a generated configuration (every listener on port 0), and waits until
 * the proxy reported its ports. */
void tf_px_start(tf_px_t *px, const tf_px_opts_t *opts);

#endif
