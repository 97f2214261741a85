/* Shared by the files of tests/harness only. */
#ifndef TF_TESTS_HARNESS_INTERNAL_H
#define TF_TESTS_HARNESS_INTERNAL_H

#include "harness.h"

/* A pidfd for the child (readable once it exited); fails the test when the
 * kernel has none (Linux < 5.3). */
int tf_px__pidfd(pid_t pid);

/* Waits until the proxy wrote px->ready and logged that it runs, or exited
 * (pidfd readable); *ready receives the file's contents (malloc'd). */
bool tf_px__wait_ready(const tf_px_t *px, int pidfd, char **ready);

#endif
