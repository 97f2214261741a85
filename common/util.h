/* Small helpers shared by proxy/'s files. */
#ifndef TF_PROXY_INTERNAL_H
#define TF_PROXY_INTERNAL_H

#include "common/err.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define tf_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Appends len bytes to a growable byte queue (*buf of *used, *cap bytes,
 * all malloc'd by it): capacity starts at `first` and doubles. 0 or
 * TF_ENOMEM (nothing appended). */
static inline int tf_bytes_append(char **buf, size_t *used, size_t *cap, size_t first,
                                  const char *data, size_t len)
{
    if (*used + len > *cap) {
        size_t n = *cap ? *cap : first;
        while (n < *used + len)
            n *= 2;
        char *p = realloc(*buf, n);
        if (p == NULL)
            return TF_ENOMEM;
        *buf = p;
        *cap = n;
    }
    memcpy(*buf + *used, data, len);
    *used += len;
    return 0;
}

#endif
