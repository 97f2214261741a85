/* Writing files so that a crash leaves the old bytes or the new ones: the
 * pieces acme/ (its account key, records and certificates) and proxy/ops
 * (uploaded bundles) share. No allocation, errors as -errno. */
#ifndef TF_COMMON_FILE_H
#define TF_COMMON_FILE_H

#include <stddef.h>

/* Writes all LEN bytes of DATA to FD, retrying short writes and EINTR.
 * 0 or -errno. */
int tf_write_all(int fd, const void *data, size_t len) __attribute__((warn_unused_result));

/* fsyncs the directory DIR, so that a rename or link in it is durable.
 * 0 or -errno. */
int tf_fsync_dir(const char *dir) __attribute__((warn_unused_result));

/* tf_fsync_dir() on the directory holding PATH ("." for a bare name).
 * 0, -ENAMETOOLONG or -errno. */
int tf_fsync_parent(const char *path) __attribute__((warn_unused_result));

#endif
