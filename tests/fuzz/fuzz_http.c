/* libFuzzer target for the request path: head parsing with its strict
 * framing checks, body framing over the rest of the input in pieces, and
 * the backend head. Invariants: a parsed head lies within the input and
 * reads as http-parser reads it (tests/proxy/http_oracle.h), a body never
 * claims more bytes than it was given, and the rewrite never overflows its
 * buffer. A route's changes cost nothing when they change nothing: a sticky
 * cookie the request lacks, rules naming no field it has, its own target
 * given back leave the head byte for byte as without them; the routed head
 * (strip_prefix target, rules, cookie removed) never overflows either. */
#include "proxy/http/http.h"
#include "tests/proxy/http_oracle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool has_field(const tf_http_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (req->headers[i].name_len == strlen(name) &&
            strncasecmp(req->headers[i].name, name, strlen(name)) == 0)
            return true;
    }
    return false;
}

/* The head with the route's changes: the same as OUT (N bytes) when they
 * change nothing, and never an overflow. */
static void routed(const tf_http_request_t *req, const tf_http_forward_t *plain, const char *out,
                   long n)
{
    static char again[8192], npath[4200], target[4200];
    static const tf_conf_header_t set[] = {{"X-Route", "api"}};
    static const char *const remove[] = {"x-zz-none"};
    static const tf_conf_header_rules_t no_op = {NULL, 0, {remove, 1}};
    static const tf_conf_header_rules_t rules = {set, 1, {remove, 1}};
    tf_http_forward_t f = *plain;
    const char *v;
    size_t vlen;
    f.strip_cookie = "TFSRV";
    f.target = req->target;
    f.target_len = req->target_len;
    if (!has_field(req, "x-zz-none"))
        f.rules = &no_op;
    bool same = !tf_http_cookie_find(req->headers, req->nheaders, "TFSRV", &v, &vlen);
    long m = tf_http_rewrite_head(req, &f, again, sizeof again);
    if (same && (m != n || (n > 0 && memcmp(out, again, (size_t)n) != 0)))
        abort();
    size_t nl = 0;
    if (req->target_len + 2 > sizeof target ||
        tf_http_path_normalize(req->target, req->target_len, npath, sizeof npath, &nl) != 0)
        return;
    long tl = tf_http_strip_target(req->target, req->target_len, npath, nl, "/", target,
                                   req->target_len + 2);
    if (tl < 1 || target[0] != '/')
        abort();
    f.target = target;
    f.target_len = (size_t)tl;
    f.rules = &rules;
    m = tf_http_rewrite_head(req, &f, again, sizeof again);
    if (m > (long)sizeof again)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tf_http_parser_t p;
    static tf_http_request_t req;
    static char out[8192];
    const char *buf = (const char *)data;

    tf_http_parser_init(&p);
    if (tf_http_parse_head(&p, buf, size, 4096, &req) != 0)
        return 0;
    if (req.head_len > size || tf_http_oracle_request(buf, &req) != NULL)
        abort();
    tf_http_forward_t fwd = {.client_addr = "2001:db8::7", .server_port = 443};
    long n = tf_http_rewrite_head(&req, &fwd, out, sizeof out);
    if (n > (long)sizeof out)
        abort();
    routed(&req, &fwd, out, n);
    /* The body in pieces of 7 bytes, as reads deliver it. */
    size_t off = req.head_len;
    bool done = false;
    while (off < size && !done) {
        size_t piece = size - off < 7 ? size - off : 7, used = 0;
        if (tf_http_body(&p, buf + off, piece, &used, &done) != 0)
            return 0;
        if (used > piece || (!done && used != piece))
            abort();
        off += used;
    }
    return 0;
}
