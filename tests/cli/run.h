/* Runs the tlsfront binary (path in $TF_TLSFRONT) as a child process and
 * captures its exit status, stdout and stderr, for end-to-end CLI tests. */
#ifndef TF_TESTS_CLI_RUN_H
#define TF_TESTS_CLI_RUN_H

#include <stddef.h>

typedef struct {
    int status;   /* exit status, or 128+signal */
    char *out;    /* NUL-terminated stdout; freed by tf_run_dispose */
    char *err;    /* NUL-terminated stderr; freed by tf_run_dispose */
} tf_run_t;

/* argv[0] is ignored and replaced with $TF_TLSFRONT; NULL-terminated.
 * Returns 0, or -1 if the child could not be started. */
int tf_run(tf_run_t *r, const char *const *argv);
void tf_run_dispose(tf_run_t *r);

/* Writes `text` to a new file in a fresh temporary directory and returns its
 * path (malloc'd; the caller frees it). Aborts the test on failure. */
char *tf_run_tempfile(const char *name, const char *text);

#endif
