/* acme/ internals shared by the module's files and its tests. Not part of
 * the public API (acme/acme.h). */
#ifndef TF_ACME_ACME_INTERNAL_H
#define TF_ACME_ACME_INTERNAL_H

#include "acme/acme.h"

#include <stddef.h>

/* http.c: a URL split into its parts (pointers into one malloc'd copy). */
typedef struct {
    char *buf;        /* the copy; free with tf_acme__url_dispose */
    bool tls;         /* https */
    const char *host; /* without brackets for an IPv6 literal */
    const char *port; /* "443" or "80" by default */
    const char *path; /* "/..." with the query; "/" when empty */
    bool host_v6;     /* the host was a bracketed literal */
} tf_acme__url_t;

/* Splits url; returns 0 or TF_EINVAL (err says why). */
int tf_acme__url_parse(const char *url, tf_acme__url_t *out, char *err, size_t errlen);
void tf_acme__url_dispose(tf_acme__url_t *u);

#endif
