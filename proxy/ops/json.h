/* The JSON documents of the CLI (`tlsfront cert --json`) and the admin API,
 * built and written with jansson. What jansson cannot know is here: how to
 * show bytes that are not UTF-8, the certificate store's diagnostics, and
 * the one way every document is written.
 *
 * Values are jansson references: each function returning json_t * returns a
 * new reference the caller owns (json_decref), or NULL when out of memory.
 * jansson's setters ending in _new (json_object_set_new, ...) take a NULL
 * value as a failure and free what they were given otherwise, so a document
 * is built with them and checked once.
 *
 * The access log writes its JSON lines itself (proxy/obs/access.c) with the
 * same UTF-8 rule (common/utf8.h).
 */
#ifndef TF_PROXY_JSON_H
#define TF_PROXY_JSON_H

/* Internal to proxy/ops (and its tests): other libraries include
 * proxy/ops/ops.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 4 && !defined(TF_PROXY_OPS_PUBLIC)
#error "internal to proxy/ops: include proxy/ops/ops.h"
#endif

#include "certstore/certstore.h"

#include <jansson.h>
#include <stddef.h>
#include <time.h>

/* doc when rc is 0; else NULL, doc dropped. Ends a build whose setters'
 * results were or-ed into rc: `return tf_json_checked(o, rc);`. */
json_t *tf_json_checked(json_t *doc, int rc);

/* A JSON string of s, or JSON null when s is NULL. jansson takes valid UTF-8
 * only; a byte that is not part of valid UTF-8 (a certificate subject in
 * Latin-1, a file name) is taken as the code point U+00XX, so any bytes make
 * a document and every valid character stays as it is. */
json_t *tf_json_text(const char *s);

/* A time as RFC 3339 UTC ("2026-11-25T06:01:02Z"); "-" for 0 or a time
 * that cannot be shown. */
json_t *tf_json_time(time_t t);

/* `[{"code":SLUG,"message":TEXT},...]`: b's diagnostics of severity sev in
 * their order; b may be NULL (an empty list). */
json_t *tf_json_diags(const tf_cs_bundle_t *b, tf_cs_severity_t sev);

/* `[at(b, 0),...,at(b, n - 1)]`: a list of b's strings (names, chain). */
json_t *tf_json_strings(const tf_cs_bundle_t *b, size_t n,
                        const char *(*at)(const tf_cs_bundle_t *, size_t));

/* `{"type":"RSA"|"ECDSA"|null,"bits":N}`: never key material. */
json_t *tf_json_key_info(const tf_cs_bundle_t *b);

/* doc written compact (no spaces), keys in the order they were set, with a
 * final newline: malloc'd and NUL-terminated (*len bytes without the NUL),
 * or NULL when doc is NULL or out of memory. Takes doc's reference in every
 * case, so tf_json_dump(build(...)) leaks nothing. Any thread. */
char *tf_json_dump(json_t *doc, size_t *len);

#endif
