/* base64url without padding (RFC 4648 §5), as JOSE and ACME use it
 * (RFC 7515 §2). wolfCrypt's Base64 is the padded standard alphabet with
 * line breaks; translating in and out of it would cost more code than this. */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t tf_acme_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int tf_acme_b64url_encode(const void *in, size_t n, char *out, size_t outlen)
{
    const unsigned char *p = in;
    size_t need = tf_acme_b64url_len(n) + 1, o = 0;
    if (outlen < need) {
        if (outlen > 0)
            out[0] = '\0';
        return TF_ETOOBIG;
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t left = n - i;
        if (left > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (left > 2)
            v |= p[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        if (left > 1)
            out[o++] = alphabet[(v >> 6) & 63];
        if (left > 2)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
    return 0;
}

char *tf_acme_b64url_dup(const void *in, size_t n)
{
    size_t len = tf_acme_b64url_len(n) + 1;
    char *s = malloc(len);
    if (s != NULL)
        (void)tf_acme_b64url_encode(in, n, s, len);
    return s;
}

static int value_of(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int tf_acme_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                          size_t *outlen)
{
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0), o = 0;
    uint32_t acc = 0;
    if (len % 4 == 1)
        return TF_EINVAL;
    if (need > cap)
        return TF_ETOOBIG;
    for (size_t i = 0; i < len; i++) {
        int v = value_of(in[i]);
        if (v < 0)
            return TF_EINVAL;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    /* A short last group: its bits past the last whole byte must be zero,
     * or two texts would decode to the same bytes. */
    if (len % 4 == 2) {
        if (acc & 0xf)
            return TF_EINVAL;
        out[o++] = (unsigned char)(acc >> 4);
    } else if (len % 4 == 3) {
        if (acc & 0x3)
            return TF_EINVAL;
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    *outlen = o;
    return 0;
}
