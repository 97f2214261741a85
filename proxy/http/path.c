/* The normalized path requests are matched on (SPEC §11). See route.h for
 * the rules and docs/HTTP.md for why: no spelling of a path reaches a
 * backend under a prefix without being matched under it. One pass over the
 * target, the output written as a stack of segments; no allocation. */
#include "proxy/http/http_internal.h"

#include <string.h>

static int hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 3986 §2.3 */
static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool scheme_is(const char *t, size_t len, const char *lower)
{
    size_t n = strlen(lower);
    return len >= n && lower_eq(t, lower, n);
}

/* Where the path of target T starts; false for a form this proxy does not
 * route (authority form, another scheme). "*" has the empty path. An
 * absolute form's authority ends where its path, query or fragment starts;
 * '\\' ends it too, as in browsers' URL parsing, so that no backend reads a
 * path there that was not matched. */
static bool path_start(const char *t, size_t len, size_t *start)
{
    if (len == 1 && t[0] == '*') {
        *start = 1;
        return true;
    }
    if (len > 0 && t[0] == '/') {
        *start = 0;
        return true;
    }
    size_t i;
    if (scheme_is(t, len, "http://"))
        i = 7;
    else if (scheme_is(t, len, "https://"))
        i = 8;
    else
        return false;
    while (i < len && t[i] != '/' && t[i] != '\\' && t[i] != '?' && t[i] != '#')
        i++;
    *start = i;
    return true;
}

typedef struct {
    char *out;
    size_t len, cap;
    size_t seg;      /* where the segment being written starts, after its '/' */
    bool in_seg;     /* a segment is being written */
    bool dot_last;   /* the last segment was "." or "..": the path ends in '/' */
    bool slash_last; /* the last thing read was a separator */
} norm_t;

static bool room(const norm_t *n, size_t k)
{
    return n->cap - n->len > k; /* and one byte for the NUL */
}

/* Ends the segment being written: "." and ".." are resolved here. */
static int end_segment(norm_t *n)
{
    if (!n->in_seg)
        return 0;
    n->in_seg = false;
    size_t sl = n->len - n->seg;
    const char *s = n->out + n->seg;
    bool dot = sl == 1 && s[0] == '.', dotdot = sl == 2 && s[0] == '.' && s[1] == '.';
    n->dot_last = dot || dotdot;
    if (!n->dot_last)
        return 0;
    n->len = n->seg - 1; /* the segment and its '/' */
    if (dotdot) {
        if (n->len == 0)
            return 400; /* above "/" */
        while (n->out[n->len - 1] != '/')
            n->len--;
        n->len--;
    }
    return 0;
}

static int put_byte(norm_t *n, const char *b, size_t k)
{
    if (!n->in_seg) {
        if (!room(n, 1))
            return 400;
        n->out[n->len++] = '/';
        n->seg = n->len;
        n->in_seg = true;
    }
    if (!room(n, k))
        return 400;
    memcpy(n->out + n->len, b, k);
    n->len += k;
    n->slash_last = false;
    return 0;
}

static int separator(norm_t *n)
{
    n->slash_last = true;
    return end_segment(n);
}

/* The escape at T (3 bytes: '%' and two digits, checked): decoded when it
 * is an unreserved character or a separator, else kept upper-cased. */
static int escape(norm_t *n, const char *t)
{
    static const char digits[] = "0123456789ABCDEF";
    int v = hex((unsigned char)t[1]) * 16 + hex((unsigned char)t[2]);
    if (v == 0)
        return 400;
    if (v == '/' || v == '\\')
        return separator(n);
    char c = (char)v;
    if (unreserved((unsigned char)v))
        return put_byte(n, &c, 1);
    char e[3] = {'%', digits[v >> 4], digits[v & 15]};
    return put_byte(n, e, 3);
}

int tf_http_path_normalize(const char *target, size_t len, char *out, size_t cap, size_t *outlen)
{
    size_t i;
    if (cap < 2 || !path_start(target, len, &i))
        return 400;
    norm_t n = {.out = out, .cap = cap};
    int rc = 0;
    for (; rc == 0 && i < len && target[i] != '?' && target[i] != '#'; i++) {
        char c = target[i];
        if (c == '/' || c == '\\') {
            rc = separator(&n);
        } else if (c != '%') {
            rc = put_byte(&n, &c, 1);
        } else if (i + 2 >= len || hex((unsigned char)target[i + 1]) < 0 ||
                   hex((unsigned char)target[i + 2]) < 0) {
            rc = 400;
        } else {
            rc = escape(&n, target + i);
            i += 2;
        }
    }
    if (rc == 0 && n.in_seg) {
        n.slash_last = false;
        rc = end_segment(&n);
    }
    if (rc != 0)
        return rc;
    if (n.len == 0 || n.slash_last || n.dot_last) {
        if (!room(&n, 1))
            return 400; /* only when CAP < LEN + 1 */
        out[n.len++] = '/';
    }
    out[n.len] = '\0';
    *outlen = n.len;
    return 0;
}
