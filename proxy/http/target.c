/* What follows a route's prefix: the target sent under strip_prefix and a
 * redirect route's Location (SPEC §11). See route.h. */
#include "proxy/http/http_internal.h"

#include <string.h>

/* The rest of a target after the prefix: its path (empty, or starting with
 * '/') and its query (empty, or starting with '?'; the fragment cut). */
typedef struct {
    const char *path, *query;
    size_t plen, qlen;
} rest_t;

static bool rest_after(const char *target, size_t len, const char *npath, size_t nlen,
                       const char *prefix, rest_t *r)
{
    size_t pl = strlen(prefix);
    if (pl > 0 && prefix[pl - 1] == '/')
        pl--; /* the prefix goes without its trailing slash */
    const char *hash = memchr(target, '#', len);
    size_t end = hash != NULL ? (size_t)(hash - target) : len;
    const char *q = memchr(target, '?', end);
    size_t pathend = q != NULL ? (size_t)(q - target) : end;
    r->query = q != NULL ? q : target + end;
    r->qlen = end - pathend;
    /* The target spells the prefix as the configuration does: the rest as
     * sent (an escaped '/' in it stays escaped for the backend). */
    if (len > 0 && target[0] == '/' && pathend >= pl && memcmp(target, prefix, pl) == 0 &&
        (pathend == pl || target[pl] == '/')) {
        r->path = target + pl;
        r->plen = pathend - pl;
        return true;
    }
    if (nlen < pl || memcmp(npath, prefix, pl) != 0 || (nlen > pl && npath[pl] != '/'))
        return false; /* not a path this prefix matched */
    r->path = npath + pl;
    r->plen = nlen - pl;
    return true;
}

/* The rest of a target as its own path: SLASH, then PATH. A leading run of
 * separators is one '/', since "//x" at the start of a target reads as an
 * authority to many URL parsers, and "https://x/new/" and "//a" must not
 * make "new//a". */
typedef struct {
    rest_t r;
    bool slash;
} own_t;

static bool rest_of(const char *target, size_t len, const char *npath, size_t nlen,
                    const char *prefix, own_t *o)
{
    if (!rest_after(target, len, npath, nlen, prefix, &o->r))
        return false;
    o->slash = false;
    while (o->r.plen > 0 && (o->r.path[0] == '/' || o->r.path[0] == '\\')) {
        o->slash = true;
        o->r.path++;
        o->r.plen--;
    }
    return true;
}

static long finish(tf_http__out_t *o)
{
    return o->overflow ? -1 : (long)o->len;
}

long tf_http_strip_target(const char *target, size_t len, const char *npath, size_t nlen,
                          const char *prefix, char *out, size_t cap)
{
    own_t r;
    if (!rest_of(target, len, npath, nlen, prefix, &r))
        return -1;
    tf_http__out_t o = {.out = out, .cap = cap};
    tf_http__put(&o, "/", 1); /* the rest's own, or the root's when it is empty */
    tf_http__put(&o, r.r.path, r.r.plen);
    tf_http__put(&o, r.r.query, r.r.qlen);
    return finish(&o);
}

long tf_http_redirect_location(const char *redirect, const char *target, size_t len,
                               const char *npath, size_t nlen, const char *prefix, char *out,
                               size_t cap)
{
    own_t r;
    if (!rest_of(target, len, npath, nlen, prefix, &r))
        return -1;
    size_t rl = strlen(redirect);
    /* One '/' between them: "https://x/new/" and "/a" make "https://x/new/a". */
    if (r.slash && rl > 0 && redirect[rl - 1] == '/')
        rl--;
    tf_http__out_t o = {.out = out, .cap = cap};
    tf_http__put(&o, redirect, rl);
    if (r.slash)
        tf_http__put(&o, "/", 1);
    tf_http__put(&o, r.r.path, r.r.plen);
    tf_http__put(&o, r.r.query, r.r.qlen);
    return finish(&o);
}
