/* tests/harness: one library for the end-to-end suites (tests/proxy,
 * tests/ops): the demo PKI, the Python test backends and the tlsfront binary
 * as child processes, shell commands with their output captured, and waits.
 *
 * Nothing here picks a port: tlsfront listens on 127.0.0.1:0 and reports what
 * it bound in TLSFRONT_READY_FILE (docs/OPERATIONS.md), the backends bind
 * port 0 and print theirs. Nothing sleeps to synchronise: every wait is on an
 * event (a file's directory through inotify, a child's exit through a pidfd,
 * a pipe) and has a deadline. Every child is stopped by tf_px_stop(), which
 * the suites call from their fini so that a failing test leaves nothing
 * behind. Each function fails the running Criterion test on a broken
 * environment (a missing variable, fork failing). */
#ifndef TF_TESTS_HARNESS_H
#define TF_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The bound of the harness's own waits (a proxy starting, a log line, a
 * file): generous, for a sanitizer build on a machine whose cores are busy. */
#define TF_PX_WAIT_MS 30000

#define TF_PX_MAX_HTTPS 4
#define TF_PX_MAX_ECHOS 16

typedef struct {
    char demo[1024];  /* the demo PKI directory (certs/, pki/root.crt) */
    char tmp[1024];   /* this test's scratch directory */
    char ca[1200];    /* root CA file */
    char log[1200];   /* the proxy's stderr */
    char ready[1200]; /* the proxy's TLSFRONT_READY_FILE */
    pid_t backend_pid;
    int backend_stdin; /* closing it stops the backend */
    unsigned backend_port;
    unsigned dead_port; /* a port bound by the backend, never listening: refused */
    unsigned hole_port; /* a port whose connects never complete */
    pid_t echo_pid;     /* echo_backend.py */
    int echo_stdin;
    unsigned echo_port;
    /* More echo backends (tf_px_add_echo), each with a name of its own. */
    pid_t echos_pid[TF_PX_MAX_ECHOS];
    int echos_stdin[TF_PX_MAX_ECHOS];
    unsigned echos_port[TF_PX_MAX_ECHOS];
    size_t nechos;
    pid_t proxy_pid;
    unsigned port;                         /* the proxy's first https listener */
    unsigned https_ports[TF_PX_MAX_HTTPS]; /* every https listener, as listed */
    size_t nhttps;
    unsigned http_port;  /* the first listen.http, or 0 */
    unsigned admin_port; /* admin.listen, or 0 */
} tf_px_t;

/* The environment variable (set by CTest: TF_SOURCE_DIR, TF_BUILD_DIR,
 * TF_TLSFRONT); fails the test when it is not set. */
const char *tf_px_env(const char *name);

/* Clears px and makes its scratch directory /tmp/PREFIX-XXXXXX (px->tmp,
 * px->log, px->ready inside it). */
void tf_px_init(tf_px_t *px, const char *prefix);

/* The demo PKI (made once under a lock, shared by every suite) into
 * px->demo and px->ca. */
void tf_px_demo_pki(tf_px_t *px);

/* The test backend (tests/proxy/backend.py) into px->backend_*, dead_port
 * and hole_port; the HTTP test backend (echo_backend.py NAME) into
 * px->echo_*. Each prints its ports once bound: nothing is pre-picked. */
void tf_px_start_backend(tf_px_t *px);
void tf_px_start_echo(tf_px_t *px, const char *name);
/* Starts one more echo_backend.py answering as NAME; returns its index in
 * px->echos_port. tf_px_stop_echo() stops it (a backend that goes away);
 * tf_px_stop() stops every one left. */
size_t tf_px_add_echo(tf_px_t *px, const char *name);
void tf_px_stop_echo(tf_px_t *px, size_t i);
/* The same for another backend script, tests/SCRIPT NAME (a path under
 * tests/), which prints its port alone on its first line and stops when its
 * stdin closes or on SIGTERM (tests/browser/portal_backend.py). */
size_t tf_px_add_script(tf_px_t *px, const char *script, const char *name);

/* Starts `tlsfront run -c config` (stdout and stderr into px->log; with
 * RLIMIT_NOFILE `nofile` unless 0), waits until it wrote px->ready and logged
 * that it runs, and reads the ports it bound into px. Fails the test when it
 * exits first or does not get there within TF_PX_WAIT_MS. */
void tf_px_launch(tf_px_t *px, const char *config, unsigned nofile);

/* SIGTERM to the proxy; returns its exit status (128+signal if killed after
 * a bounded wait), or -1 if it was not running. */
int tf_px_stop_proxy(tf_px_t *px);

/* Waits (TF_PX_WAIT_MS at most, then SIGKILL) for a proxy that stops by
 * itself; returns its exit status as tf_px_stop_proxy() does. */
int tf_px_wait_proxy(tf_px_t *px);

/* Stops everything still running and removes the scratch directory. */
void tf_px_stop(tf_px_t *px);

/* Waits up to ms for a child to exit; SIGKILL after that. Returns its exit
 * status, or 128+signal. */
int tf_px_wait_exit(pid_t pid, int ms);

/* Runs `sh -c cmd` and returns its stdout+stderr (malloc'd, NUL-terminated);
 * *status receives the exit status. */
char *tf_px_sh(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fails the test with `what` and the output unless st is 0; frees out. */
void tf_px_sh_ok(const char *what, char *out, int st);

/* `openssl s_client ARGS` fed TEXT and a newline, its stdin held open until
 * TEXT comes back in its output (at most 30 s) instead of for a guessed
 * time; returns everything it printed (malloc'd) and *status 0 when TEXT
 * came back. tests/harness/s_client_echo.py. */
char *tf_px_s_client(int *status, const char *text, const char *args_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A line through the proxy's https listener with this SNI, echoed by the
 * backend: true when it came back. */
bool tf_px_echo(const tf_px_t *px, const char *sni, const char *text);

/* Counts occurrences of needle in hay. */
unsigned tf_px_count(const char *hay, const char *needle);

/* The whole file (malloc'd; "" when it does not exist). */
char *tf_px_read(const char *path);

/* The proxy's log so far (malloc'd). */
char *tf_px_log(const tf_px_t *px);

/* Waits (inotify on the file's directory, TF_PX_WAIT_MS at most) until the
 * file contains one of the needles (the second may be NULL); returns its
 * last contents (malloc'd, "" when it does not exist). */
char *tf_px_wait_file(const char *path, const char *needle, const char *needle2);

/* Waits up to ms until the file holds needle at least count times. */
bool tf_px_wait_count(const char *path, const char *needle, unsigned count, int ms);

/* tf_px_wait_count on the proxy's log, once, TF_PX_WAIT_MS. */
bool tf_px_wait_log(const tf_px_t *px, const char *needle);

/* Waits up to ms for the next change in the directory of path (a write, a
 * file created or renamed there): for conditions that only a command can
 * test, re-tested after every change of the file that records them. */
typedef struct tf_px_watch tf_px_watch_t;
tf_px_watch_t *tf_px_watch(const char *path);
bool tf_px_watch_wait(tf_px_watch_t *w, int ms);
void tf_px_watch_free(tf_px_watch_t *w);

/* Milliseconds on the monotonic clock. */
long long tf_px_now_ms(void);

#endif
