/* tests/proxy harness: the demo PKI, a Python test backend and the tlsfront
 * binary as child processes on ephemeral ports, and shell commands run with
 * their output captured. Every child is stopped by tf_px_stop(), which the
 * suites call from their fini so that a failing test leaves nothing behind.
 */
#ifndef TF_TESTS_PROXY_HARNESS_H
#define TF_TESTS_PROXY_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    const char *unknown_sni;  /* "default" (NULL) or "reject" */
    unsigned workers;         /* 0: 1 */
    unsigned max_connections; /* 0: 1000 */
    unsigned nofile;          /* 0: inherited; else RLIMIT_NOFILE of the proxy */
    const char *idle;         /* timeouts.idle; NULL: 60s */
    const char *user;         /* `user:`; NULL: none */
    bool dual_stack;          /* listen on "0.0.0.0:P" and "[::]:P" instead of 127.0.0.1 */
    bool http;                /* mode http tenants on echo_backend.py (see harness.c) */
    const char *response;     /* timeouts.response; NULL: 5s */
    const char *tunnel;       /* timeouts.tunnel; NULL: 1h */
} tf_px_opts_t;

typedef struct {
    char demo[1024]; /* the demo PKI directory (certs/, pki/root.crt) */
    char tmp[1024];  /* this test's scratch directory */
    char ca[1200];   /* root CA file */
    char log[1200];  /* the proxy's stderr */
    pid_t backend_pid;
    int backend_stdin; /* closing it stops the backend */
    unsigned backend_port;
    unsigned dead_port; /* a port nothing listens on */
    unsigned hole_port; /* a port whose connects never complete */
    pid_t echo_pid;     /* echo_backend.py (opts.http) */
    int echo_stdin;
    unsigned echo_port;
    pid_t proxy_pid;
    unsigned port;       /* the proxy's listener */
    unsigned http_port;  /* listen.http (opts.http only) */
    unsigned admin_port; /* admin.listen (opts.http only) */
} tf_px_t;

/* Makes (once, under a lock) the demo PKI, starts the backend and the proxy
 * with a generated configuration, and waits until the proxy accepts. */
void tf_px_start(tf_px_t *px, const tf_px_opts_t *opts);

/* SIGTERM to the proxy; returns its exit status (128+signal if killed after
 * a bounded wait), or -1 if it was not running. */
int tf_px_stop_proxy(tf_px_t *px);

/* Pieces of tf_px_start() for suites that assemble their own (tests/ops):
 * the demo PKI (made once under a lock) into px->demo and px->ca; a free
 * loopback port; the test backend (backend.py) into px->backend_*. */
void tf_px_demo_pki(tf_px_t *px);
unsigned tf_px_free_port(void);
void tf_px_start_backend(tf_px_t *px);

/* Stops everything still running and removes the scratch directory. */
void tf_px_stop(tf_px_t *px);

/* Runs `sh -c cmd` and returns its stdout+stderr (malloc'd, NUL-terminated);
 * *status receives the exit status. */
char *tf_px_sh(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Counts occurrences of needle in hay. */
unsigned tf_px_count(const char *hay, const char *needle);

/* The proxy's log so far (malloc'd). */
char *tf_px_log(const tf_px_t *px);

/* Polls (every 50 ms, 10 s at most) until the file at path contains one of
 * the needles (the second may be NULL); returns its last contents
 * (malloc'd, "" when it does not exist). */
char *tf_px_wait_file(const char *path, const char *needle, const char *needle2);

/* The same for the proxy's log; true when the needle showed. */
bool tf_px_wait_log(const tf_px_t *px, const char *needle);

#endif
