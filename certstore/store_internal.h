/* Internals of the store (store.c, scan.c) shared with their tests. */
#ifndef TF_CERTSTORE_STORE_INTERNAL_H
#define TF_CERTSTORE_STORE_INTERNAL_H

#include "certstore/store.h"

#include <stdbool.h>
#include <stdint.h>

/* A file's identity: device, inode, size, mtime, and ctime (which also moves
 * on chmod, so fixing a key file's mode re-checks it). All zero: absent. */
typedef struct {
    uint64_t dev;
    uint64_t ino;
    int64_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
} tf_cs__fp_t;

typedef struct {
    char *path;          /* owned */
    size_t source;       /* index into the store's sources; SIZE_MAX: the default cert */
    tf_cs__fp_t fp;
    tf_cs__fp_t key_fp;  /* of the sibling NAME.key, zero when there is none */
} tf_cs__file_t;

typedef struct {
    tf_cs__file_t *v;
    size_t n, cap;
} tf_cs__files_t;

/* Appends the bundle files of one source (a file, or a directory's *.pem,
 * *.crt and *.cer files, symlinks followed, dotfiles skipped). On failure
 * writes "PATH: reason: what to do" into why and returns -errno/TF_E*; files
 * found so far stay. */
int tf_cs__scan_source(tf_cs__files_t *fs, const char *src, size_t source, char *why,
                       size_t len);

/* Sorts by path and drops duplicates (a file listed twice, or the default
 * certificate inside a source directory). */
void tf_cs__files_sort_unique(tf_cs__files_t *fs);
void tf_cs__files_dispose(tf_cs__files_t *fs);

bool tf_cs__fp_equal(const tf_cs__file_t *a, const tf_cs__file_t *b);

#endif
