/* Small helpers shared by proxy/'s files. */
#ifndef TF_PROXY_INTERNAL_H
#define TF_PROXY_INTERNAL_H

#include "common/err.h"

#include <stdbool.h>
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

/* Whether two paths name the same file, runs of slashes counting as one
 * ("certs/" + "/a.pem" as the store joins them). */
static inline bool tf_same_path(const char *a, const char *b)
{
    while (*a != '\0' && *b != '\0') {
        if (*a != *b)
            return false;
        bool slash = *a == '/';
        a++;
        b++;
        while (slash && *a == '/')
            a++;
        while (slash && *b == '/')
            b++;
    }
    return *a == *b;
}

/* Reads one DER tag (must be TAG) and its definite length (at most 3
 * length bytes) at P[*POS], leaving *POS at the contents and the length in
 * *CLEN; false when malformed or past LEN. */
static inline bool tf_der_header(const unsigned char *p, size_t len, size_t *pos, unsigned char tag,
                                 size_t *clen)
{
    size_t i = *pos, n = 0;
    if (i + 2 > len || p[i] != tag)
        return false;
    i++;
    if (p[i] < 0x80) {
        n = p[i++];
    } else {
        unsigned k = p[i++] & 0x7f;
        if (k == 0 || k > 3 || i + k > len)
            return false;
        while (k--)
            n = (n << 8) | p[i++];
    }
    if (n > len - i)
        return false;
    *pos = i;
    *clen = n;
    return true;
}

#endif
