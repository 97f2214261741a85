/* libFuzzer target for the request path: head parsing with its strict
 * framing checks, body framing over the rest of the input in pieces, and
 * the backend head. Invariants: a parsed head lies within the input and
 * reads as http-parser reads it (tests/proxy/http_oracle.h), a body never
 * claims more bytes than it was given, and the rewrite never overflows its
 * buffer. */
#include "proxy/http/http.h"
#include "tests/proxy/http_oracle.h"

#include <stdint.h>
#include <stdlib.h>

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
