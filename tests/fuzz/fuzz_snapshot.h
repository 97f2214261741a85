/* Fuzz targets that need a certificate (fuzz_tls_server, fuzz_h2): one
 * FUZZ-ONLY self-signed P-256 bundle for NAME, generated with wolfCrypt,
 * written to DIR (a mkdtemp template, filled in) as PATH for the store to
 * load, then deleted; its snapshot is returned. DIR and PATH stay as names
 * (a configuration must name the certificates; nothing reads them again).
 * Aborts on any failure: a target without its fixture cannot run. */
#ifndef TF_TESTS_FUZZ_SNAPSHOT_H
#define TF_TESTS_FUZZ_SNAPSHOT_H

#include "certstore/store.h"

#include <stddef.h>

tf_cs_snapshot_t *tf_fuzz_snapshot(const char *name, char *dir, char *path, size_t pathlen);

#endif
