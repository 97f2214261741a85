/* libFuzzer target for the matching path (SPEC §11, route.h), differential:
 * tf_http_path_normalize() against a reference written the slow, obvious
 * way below (the path cut out, escapes decoded into a string, separators
 * made '/' and merged, then RFC 3986 §5.2.4 remove_dot_segments literally,
 * on strings). Both must give the same verdict and the same path.
 * Invariants on every accepted path: it starts with '/', has no "//" and
 * no "." or ".." segment, and normalizing it again changes nothing. The
 * route table must pick the prefix a linear scan picks, and no other
 * spelling of the path (separators, escapes, dot segments, built from the
 * input's bytes) may normalize to anything else or match another route:
 * an allow rule cannot be bypassed by spelling. strip_prefix and redirect
 * targets fit the room route.h promises. */
#include "proxy/http/http_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX 4096

/* ---- the reference ---------------------------------------------------------- */

static bool ref_unreserved(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~", c) != NULL;
}

static int ref_hex(int c)
{
    const char *d = "0123456789abcdef";
    const char *p = c != 0 ? strchr(d, c >= 'A' && c <= 'F' ? c + 32 : c) : NULL;
    return p != NULL ? (int)(p - d) : -1;
}

/* Inputs hold no NUL byte (the caller skips those: the request line's
 * parser refuses control bytes before any path is normalized), so the
 * reference works on C strings. */

/* Copies the path of T (origin, absolute or "*"), query and fragment cut,
 * into P; false for any other form. */
static bool ref_path(const char *t, size_t len, char *p)
{
    const char *s;
    size_t n;
    if (len == 1 && t[0] == '*') {
        s = "";
        n = 0;
    } else if (len >= 1 && t[0] == '/') {
        s = t;
        n = len;
    } else {
        size_t skip;
        if (len >= 7 && strncasecmp(t, "http://", 7) == 0)
            skip = 7;
        else if (len >= 8 && strncasecmp(t, "https://", 8) == 0)
            skip = 8;
        else
            return false;
        s = t + skip;
        n = len - skip;
        while (n > 0 && strchr("/\\?#", *s) == NULL) {
            s++;
            n--;
        }
    }
    size_t k = 0;
    while (k < n && s[k] != '?' && s[k] != '#')
        k++;
    memcpy(p, s, k);
    p[k] = '\0';
    return true;
}

/* Decodes P: separators become '/', unreserved escapes their character,
 * other escapes "%XX"; false for a bad or NUL escape. P has no NUL (the
 * caller checks). */
static bool ref_decode(const char *p, char *d)
{
    size_t k = 0;
    for (size_t i = 0; p[i] != '\0'; i++) {
        if (p[i] == '\\') {
            d[k++] = '/';
        } else if (p[i] != '%') {
            d[k++] = p[i];
        } else {
            int hi = ref_hex((unsigned char)p[i + 1]);
            int lo = hi < 0 ? -1 : ref_hex((unsigned char)p[i + 2]);
            if (lo < 0)
                return false;
            int v = hi * 16 + lo;
            i += 2;
            if (v == 0)
                return false;
            else if (v == '/' || v == '\\')
                d[k++] = '/';
            else if (ref_unreserved(v))
                d[k++] = (char)v;
            else
                k += (size_t)sprintf(d + k, "%%%02X", v);
        }
    }
    d[k] = '\0';
    return true;
}

static bool starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* RFC 3986 §5.2.4, step by step on strings; false when ".." would remove a
 * segment from an empty output (a climb above "/"). */
static bool ref_remove_dot_segments(const char *in, char *outb)
{
    char input[MAX * 3 + 8];
    snprintf(input, sizeof input, "%s", in);
    outb[0] = '\0';
    while (input[0] != '\0') {
        if (starts(input, "../")) { /* A */
            memmove(input, input + 3, strlen(input + 3) + 1);
        } else if (starts(input, "./")) {
            memmove(input, input + 2, strlen(input + 2) + 1);
        } else if (starts(input, "/./")) { /* B */
            memmove(input, input + 2, strlen(input + 2) + 1);
        } else if (strcmp(input, "/.") == 0) {
            strcpy(input, "/");
        } else if (starts(input, "/../") || strcmp(input, "/..") == 0) { /* C */
            if (input[3] == '/')
                memmove(input, input + 3, strlen(input + 3) + 1);
            else
                strcpy(input, "/");
            if (outb[0] == '\0')
                return false;
            char *last = strrchr(outb, '/');
            *last = '\0';
        } else if (strcmp(input, ".") == 0 || strcmp(input, "..") == 0) { /* D */
            input[0] = '\0';
        } else { /* E */
            size_t seg = input[0] == '/' ? 1 : 0;
            while (input[seg] != '\0' && input[seg] != '/')
                seg++;
            strncat(outb, input, seg);
            memmove(input, input + seg, strlen(input + seg) + 1);
        }
    }
    return true;
}

static int reference(const char *t, size_t len, char *out)
{
    static char p[MAX + 1], d[MAX * 3 + 8], merged[MAX * 3 + 8];
    if (!ref_path(t, len, p))
        return 400;
    if (!ref_decode(p, d))
        return 400;
    /* '/' first (the path of "*" or "http://h" is empty), then runs merged */
    size_t k = 0;
    merged[k++] = '/';
    for (size_t i = 0; d[i] != '\0'; i++) {
        if (!(d[i] == '/' && merged[k - 1] == '/'))
            merged[k++] = d[i];
    }
    merged[k] = '\0';
    if (!ref_remove_dot_segments(merged, out))
        return 400;
    if (out[0] == '\0')
        strcpy(out, "/");
    return 0;
}

/* ---- routes ------------------------------------------------------------------- */

static const char *const prefixes[] = {"/",     "/api/",  "/api",    "/admin",
                                       "/a/b/", "/a/b/c", "/~user/", "/.well-known/acme-challenge/",
                                       "/A/",   "/a-b_c/"};
#define NPREFIXES (sizeof prefixes / sizeof prefixes[0])

static const tf_http_routes_t *table(void)
{
    static tf_http_routes_t *t;
    static tf_conf_route_t routes[NPREFIXES];
    if (t == NULL) {
        for (size_t i = 0; i < NPREFIXES; i++)
            routes[i].path = prefixes[i];
        if (tf_http_routes_new(routes, NPREFIXES, &t) != 0)
            abort();
    }
    return t;
}

/* SPEC §11 read literally: the longest prefix that matches. */
static uint32_t ref_match(const char *path)
{
    uint32_t best = 0;
    size_t best_len = 0;
    for (uint32_t i = 0; i < NPREFIXES; i++) {
        const char *p = prefixes[i];
        size_t n = strlen(p);
        bool m = p[n - 1] == '/' ? strncmp(path, p, n) == 0
                                 : strncmp(path, p, n) == 0 && (path[n] == '\0' || path[n] == '/');
        if (m && n > best_len) {
            best = i;
            best_len = n;
        }
    }
    return best;
}

/* ---- other spellings ------------------------------------------------------------- */

/* Another spelling of normalized path N, each choice taken from SEED's
 * bytes in turn: a '/' as '\\', %2F, %5c, "//", "/./" or "/x/../"; an
 * unreserved character escaped; a kept escape's hex in lower case. */
static size_t respell(const char *n, const uint8_t *seed, size_t nseed, char *out)
{
    static const char *const seps[] = {"/", "\\", "%2F", "%5c", "//", "/./", "/x/../", "%2f.%2F"};
    size_t k = 0, s = 0;
    for (size_t i = 0; n[i] != '\0'; i++) {
        uint8_t c = nseed > 0 ? seed[s++ % nseed] : 0;
        if (i == 0) { /* an origin form starts with '/' */
            static const uint8_t first[] = {0, 4, 5, 6};
            k += (size_t)sprintf(out + k, "%s", seps[first[c % 4]]);
        } else if (n[i] == '/') {
            k += (size_t)sprintf(out + k, "%s", seps[c % 8]);
        } else if (n[i] == '%') { /* a kept escape: its hex in either case */
            for (int d = 0; d < 3; d++)
                out[k++] = (char)(d > 0 && (c & 1) && n[i + d] >= 'A' ? n[i + d] + 32 : n[i + d]);
            i += 2;
        } else if (ref_unreserved((unsigned char)n[i]) && (c & 1)) {
            k += (size_t)sprintf(out + k, c & 2 ? "%%%02X" : "%%%02x", (unsigned char)n[i]);
        } else {
            out[k++] = n[i];
        }
    }
    if (nseed > 0 && seed[0] & 0x80)
        k += (size_t)sprintf(out + k, "?q=/../..#f"); /* query and fragment are cut */
    out[k] = '\0';
    return k;
}

/* ---- the target ------------------------------------------------------------------ */

static void check_targets(const char *t, size_t len, const char *np, size_t nl, uint32_t route)
{
    static char out[MAX + 8];
    long n = tf_http_strip_target(t, len, np, nl, prefixes[route], out, len + 2);
    if (n < 0 || (size_t)n > len + 1 || out[0] != '/')
        abort(); /* route.h: CAP >= LEN + 2 suffices, and the result is an origin form */
    const char *to = "https://x.example/new/";
    n = tf_http_redirect_location(to, t, len, np, nl, prefixes[route], out, sizeof out);
    if (n < 0 || strncmp(out, "https://x.example/new", 21) != 0 ||
        (n > 22 && out[21] == '/' && out[22] == '/'))
        abort(); /* one '/' between the redirect target and the rest */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char got[MAX + 2], want[MAX * 3 + 8], again[MAX + 2], alt[MAX * 8 + 32],
        altn[MAX * 8 + 32];
    if (size > MAX)
        return 0;
    const char *t = (const char *)data;
    size_t n = 0;
    int rc = tf_http_path_normalize(t, size, got, size + 1, &n);
    if (rc != 0 && rc != 400)
        abort();
    if (memchr(data, '\0', size) != NULL)
        return 0; /* see the reference's note on NUL */
    int ref = reference(t, size, want);
    if (rc != ref || (rc == 0 && strcmp(got, want) != 0)) {
        fprintf(stderr, "input %.*s: got %d %s, reference %d %s\n", (int)size, t, rc,
                rc == 0 ? got : "", ref, ref == 0 ? want : "");
        abort();
    }
    if (rc != 0)
        return 0;
    if (strlen(got) != n || got[0] != '/' || strstr(got, "//") != NULL ||
        strstr(got, "/./") != NULL || strstr(got, "/../") != NULL ||
        (n >= 2 && strcmp(got + n - 2, "/.") == 0) || (n >= 3 && strcmp(got + n - 3, "/..") == 0))
        abort();
    size_t n2 = 0;
    if (tf_http_path_normalize(got, n, again, n + 1, &n2) != 0 || n2 != n ||
        memcmp(got, again, n) != 0)
        abort(); /* idempotent */
    uint32_t route = tf_http_routes_match(table(), got, n);
    if (route != ref_match(got))
        abort();
    check_targets(t, size, got, n, route);
    /* Every other spelling: the same path, the same route. */
    size_t alen = respell(got, data, size, alt);
    size_t an = 0;
    if (tf_http_path_normalize(alt, alen, altn, alen + 1, &an) != 0 || an != n ||
        memcmp(altn, got, n) != 0 || tf_http_routes_match(table(), altn, an) != route) {
        fprintf(stderr, "%s respelled %s: %s\n", got, alt, altn);
        abort();
    }
    return 0;
}
