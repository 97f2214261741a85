/* proxy/ locations in the configuration for messages about the paths it
 * names (SPEC §2: every error names the file, and for the config the line
 * and column). The certificate sources, the default certificate, the ticket
 * keys file, the admin token file and the access log are only opened after
 * the configuration loaded; an error about one of those paths themselves
 * (missing, unreadable, not a file or a directory, no usable default
 * certificate) starts with where the configuration names it, in the form of
 * the loader's own errors: "FILE:LINE:COLUMN: message". Errors inside such a
 * file (a bad PEM block, a bad ticket key line) keep their own
 * "file: reason: what to do" form. */
#ifndef TF_PROXY_WHERE_H
#define TF_PROXY_WHERE_H

/* Internal to proxy/ops (and its tests): other libraries include
 * proxy/ops/ops.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 4 && !defined(TF_PROXY_OPS_PUBLIC)
#error "internal to proxy/ops: include proxy/ops/ops.h"
#endif

#include "certstore/store.h"
#include "conf/conf.h"

#include <stdbool.h>
#include <stddef.h>

/* Room for any prefix: "FILE:LINE:COLUMN: ". */
#define TF_WHERE_MAX (TF_CONF_WHERE_MAX + 2)

/* Writes "FILE:LINE:COLUMN: " for the INDEX-th value of KEY in CONF (see
 * tf_conf_where() for the keys) into BUF, TF_WHERE_MAX bytes, and returns
 * BUF: put it before a message about that path. Writes "" when the value is
 * not written in the file (a default), so the message reads as before. */
const char *tf_where(const tf_conf_t *conf, const char *key, size_t index, char *buf);

/* The same for note I of SNAP, a snapshot of a store built from CONF's
 * tls.certs and tls.default_cert (tf_cs_snapshot_note_source()); "" for a
 * note about no configured path. */
const char *tf_where_note(const tf_conf_t *conf, const tf_cs_snapshot_t *snap, size_t i, char *buf);

/* True when RC is a negative errno (a path could not be opened or read),
 * not one of the project's own codes, which start at -10000 (common/err.h). */
bool tf_where_is_errno(int rc);

#endif
