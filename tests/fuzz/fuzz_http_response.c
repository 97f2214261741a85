/* libFuzzer target for the response path: a backend's response head (the
 * first input byte chooses whether the request was HEAD), its rewrite for
 * the client, then the body followed in pieces. Invariants: a parsed head
 * lies within the input and reads as http-parser reads it
 * (tests/proxy/http_oracle.h), the rewrite never overflows (with the route's
 * header rules and a Set-Cookie line when the first byte says so), and
 * with no rules it says what the plain rewrite says, a body never claims
 * more bytes than it was given, and a bodiless response is done at once. */
#include "proxy/http/http.h"
#include "tests/proxy/http_oracle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tf_http_parser_t p;
    static tf_http_response_t resp;
    static char out[8192];
    if (size < 1)
        return 0;
    bool head_request = data[0] & 1;
    const char *buf = (const char *)data + 1;
    size--;

    tf_http_parser_init_response(&p, head_request);
    if (tf_http_parse_response_head(&p, buf, size, 4096, &resp) != 0)
        return 0;
    if (resp.head_len > size || resp.start != buf ||
        tf_http_oracle_response(buf, head_request, &resp) != NULL)
        abort();
    if (resp.body == TF_HTTP_RESP_NONE && !p.done)
        abort();
    static char again[8192];
    static const tf_conf_header_t set[] = {{"Strict-Transport-Security", "max-age=31536000"}};
    static const char *const remove[] = {"server"};
    static const tf_conf_header_rules_t rules = {set, 1, {remove, 1}};
    static const char cookie[] = "Set-Cookie: TFSRV=0123456789abcdef; Path=/\r\n";
    tf_http_resp_rewrite_t plain = {.close = data[0] & 2};
    long n = tf_http_rewrite_response_head(&resp, &plain, out, sizeof out);
    if (n > (long)sizeof out)
        abort();
    static const tf_conf_header_rules_t empty = {0};
    tf_http_resp_rewrite_t how = plain;
    how.rules = &empty; /* no rule: no change */
    if (data[0] & 4) {
        how.rules = &rules;
        how.extra = cookie;
        how.extra_len = sizeof cookie - 1;
    }
    long m = tf_http_rewrite_response_head(&resp, &how, again, sizeof again);
    if (m > (long)sizeof again ||
        (!(data[0] & 4) && (m != n || (n > 0 && memcmp(out, again, (size_t)n) != 0))))
        abort();
    size_t off = resp.head_len;
    bool done = p.done;
    while (off < size && !done) {
        size_t piece = size - off < 7 ? size - off : 7, used = 0;
        if (tf_http_body(&p, buf + off, piece, &used, &done) != 0)
            return 0;
        if (used > piece || (!done && used != piece))
            abort();
        if (resp.body == TF_HTTP_RESP_CLOSE && done)
            abort(); /* only the backend's close ends such a body */
        off += used;
    }
    return 0;
}
