/* tests/acme harness: Debian's pebble ACME test server and
 * pebble-challtestsrv as its DNS, on loopback, started and stopped by the
 * suite (SPEC §13).
 *
 * pebble's HTTPS certificate is made at start by a CA of the harness's own
 * (openssl; `ca_file`), for the name "localhost" only, so a client checks
 * both the chain and the name. pebble-challtestsrv answers every A query
 * with 127.0.0.1 (no AAAA) and runs none of its own challenge servers:
 * pebble's validation authority connects to 127.0.0.1:http_port for
 * http-01 and 127.0.0.1:tls_port for tls-alpn-01, the proxy's ports in the
 * end-to-end tests. Ports are found free by binding port 0 and releasing
 * it; if either program then fails to start (another process took the
 * port), the start is retried with new ports. Readiness is polled with
 * acme/http.c (the directory over verified HTTPS, challtestsrv's
 * management API over loopback http) against a deadline, waking early when
 * a child exits. PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0 (unless
 * nonce_reject), PEBBLE_AUTHZREUSE=0 (every order validates afresh).
 *
 * Every function fails the running Criterion test on a broken
 * environment. tf_pebble_stop() stops both processes (SIGTERM, then
 * SIGKILL after a bound) and removes the scratch directory; call it from
 * the suite's fini so that a failing test leaves nothing behind. The
 * children also get SIGKILL if the test process dies (PR_SET_PDEATHSIG).
 * Call wolfSSL_Init() (or tf_tls_global_init()) before tf_pebble_start(). */
#ifndef TF_TESTS_ACME_PEBBLE_H
#define TF_TESTS_ACME_PEBBLE_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    unsigned http_port;    /* http-01 validations go to 127.0.0.1:PORT; 0: a free port */
    unsigned tls_port;     /* tls-alpn-01 validations; 0: a free port */
    unsigned nonce_reject; /* PEBBLE_WFE_NONCEREJECT, percent of good nonces refused */
    /* externalAccountBindingRequired with one key: eab_kid -> eab_hmac
     * (base64url, as pebble's config wants it). NULL: no EAB. */
    const char *eab_kid;
    const char *eab_hmac;
    /* certificateValidityPeriod (pebble 2.4's config, seconds; the
     * certificate's notBefore is the time of issuance): 0, pebble's default
     * of five years. */
    unsigned validity_s;
} tf_pebble_opts_t;

typedef struct {
    char dir[64];         /* scratch directory */
    char ca_file[128];    /* the CA that signs pebble's HTTPS certificate (PEM) */
    char directory[96];   /* "https://localhost:PORT/dir" */
    char roots_url[96];   /* the root that signs issued certificates (management API) */
    char chall_url[96];   /* pebble-challtestsrv's management API, http://127.0.0.1:PORT */
    char pebble_log[128]; /* stdout + stderr of each program */
    char chall_log[128];
    unsigned port, mgmt_port, dns_port, chall_port, http_port, tls_port;
    pid_t pebble_pid, chall_pid;
} tf_pebble_t;

/* Starts both programs (opts may be NULL) and returns once the directory
 * answers; fails the test otherwise. */
void tf_pebble_start(tf_pebble_t *p, const tf_pebble_opts_t *opts);

/* Stops both (idempotent; also after a failed or no start) and removes the
 * scratch directory. */
void tf_pebble_stop(tf_pebble_t *p);

/* Whether both programs are still running (not reaped). */
bool tf_pebble_running(tf_pebble_t *p);

#endif
