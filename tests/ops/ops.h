/* tests/ops harness: tlsfront run with the admin API, a certificate
 * directory of its own (a copy of the demo PKI's bundles that the tests
 * change while the proxy runs), the Python echo backend, and a background
 * load of handshakes. Built on the shared harness (tests/harness): every
 * listener on port 0, every wait on an event with a bound. */
#ifndef TF_TESTS_OPS_H
#define TF_TESTS_OPS_H

#include "tests/harness/harness.h"

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    tf_px_t px;        /* px.port: https, px.admin_port: the admin API */
    char certs[1200];  /* the watched certificate directory */
    char pki[1200];    /* the demo PKI (inter.crt, inter.key) */
    char config[1200]; /* the configuration file */
    char token[64];    /* "" when no token is configured */
    unsigned workers;
    const char *extra;      /* the extra tenants of the configuration in use */
    unsigned days;          /* validity of certificates tf_ops_issue() makes; 0: 90 */
    char extra_certs[1200]; /* a second tls.certs source, or "" */
    pid_t load_pid;
    char load_out[1200];
    char load_stop[1200];
} tf_ops_t;

/* Starts the backend and the proxy (one worker unless `workers`), admin API
 * on, token required when `token` is not NULL. Tenants: acme (exact names),
 * "*.tenants.example", no catch-all; `extra` is appended to the tenants. */
void tf_ops_start(tf_ops_t *t, unsigned workers, const char *token, const char *extra);

/* The same on t->px already initialized (tf_px_init) by the caller, who may
 * have started backends of its own on it (tf_px_add_echo) for `extra`. */
void tf_ops_start_on(tf_ops_t *t, unsigned workers, const char *token, const char *extra);
/* Starts the proxy again (after tf_px_stop_proxy) on the same files; it
 * gets new ports (px.port, px.admin_port). */
void tf_ops_restart(tf_ops_t *t);

/* Rewrites the configuration file with other `extra` tenants (or the
 * literal text `raw` when not NULL, for broken configurations). */
void tf_ops_write_config(tf_ops_t *t, const char *extra, const char *raw);

/* Stops the load (if any), then everything (tf_px_stop). */
void tf_ops_stop(tf_ops_t *t);

/* Issues a certificate (tests/ops/issue.sh) into OUT; mode "new", "nokey"
 * or a key file. Returns the serial (malloc'd, upper-case hex). */
char *tf_ops_issue(tf_ops_t *t, const char *out, const char *mode, const char *names);

/* The serial of the certificate a fresh handshake with this SNI gets, or
 * "" (malloc'd). */
char *tf_ops_serial(tf_ops_t *t, const char *sni);

/* Waits until a handshake shows `serial`: tried again each time a worker
 * puts a new generation in service. `seconds` is a floor of the bound
 * (TF_PX_WAIT_MS at least), as for tf_ops_wait_log. */
bool tf_ops_wait_serial(tf_ops_t *t, const char *sni, const char *serial, int seconds);

/* Waits for `needle` to appear at least `count` times in the proxy's log. */
bool tf_ops_wait_log(tf_ops_t *t, const char *needle, unsigned count, int seconds);

/* Sends a line through the proxy with this SNI; true when it came back. */
bool tf_ops_echo(tf_ops_t *t, const char *sni);

/* curl against the admin API: returns the body (malloc'd), *status the HTTP
 * status. token: NULL for none. data: a file to send as the body, or NULL. */
char *tf_ops_admin(tf_ops_t *t, int *status, const char *method, const char *path,
                   const char *token, const char *data);

/* Background load (tests/ops/load.py) on `sni`: start, then stop and get
 * its report "ok=N fail=M long=K long_fail=L ..." (malloc'd). */
void tf_ops_load_start(tf_ops_t *t, const char *sni);
char *tf_ops_load_stop(tf_ops_t *t);

/* Counts from a load report. */
unsigned tf_ops_report(const char *report, const char *key);

#endif
