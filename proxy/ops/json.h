/* Minimal JSON output for the CLI and the admin API: strings escaped per
 * RFC 8259, written to a stdio stream. Only what tlsfront emits; no parser. */
#ifndef TF_PROXY_JSON_H
#define TF_PROXY_JSON_H

/* Internal to proxy/ops (and its tests): other libraries include
 * proxy/ops/ops.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 4 && !defined(TF_PROXY_OPS_PUBLIC)
#error "internal to proxy/ops: include proxy/ops/ops.h"
#endif

#include <stdio.h>

/* Writes s as a quoted JSON string (NULL as null). Control characters and
 * bytes that are not valid UTF-8 are escaped as \u00XX, so the output is
 * always valid JSON whatever a certificate subject contains. */
void tf_json_str(FILE *out, const char *s);

/* Writes `"key":` with key escaped. */
void tf_json_key(FILE *out, const char *key);

#endif
