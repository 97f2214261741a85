/* libFuzzer target for the response path: a backend's response head (the
 * first input byte chooses whether the request was HEAD), its rewrite for
 * the client, then the body followed in pieces. Invariants: a parsed head
 * lies within the input and reads as http-parser reads it
 * (tests/proxy/http_oracle.h), the rewrite never overflows, a body never claims
 * more bytes than it was given, and a bodiless response is done at once. */
#include "proxy/http/http.h"
#include "tests/proxy/http_oracle.h"

#include <stdint.h>
#include <stdlib.h>

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
    long n = tf_http_rewrite_response_head(&resp, &(tf_http_resp_rewrite_t){.close = data[0] & 2}, out, sizeof out);
    if (n > (long)sizeof out)
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
