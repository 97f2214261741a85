/* libFuzzer target for port 80 and the access log: the routing of a parsed
 * request (Host and target checks, ACME tokens, the Location built from
 * them), the response around it, and the access-log line of the request in
 * both formats. Invariants: a Location or token is NUL-terminated within
 * its buffer and holds no byte that could end a header line; an ACME token
 * uses the token alphabet only; a log line is one line within its bound. */
#include "proxy/obs/access.h"
#include "proxy/net/redirect.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_location(const char *out, size_t cap, int status)
{
    size_t n = strnlen(out, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c <= 0x20 || c >= 0x7f)
            abort();
        if (status == TF_REDIRECT_ACME && strchr("/.%", c) != NULL)
            abort();
    }
    if (status == 301 && strncmp(out, "https://", 8) != 0)
        abort();
}

static void check_log(const tf_http_request_t *req)
{
    static char line[TF_ACCESS_MAX_LINE];
    tf_access_entry_t e = {.time_ms = 1795586462123LL,
                           .client = "192.0.2.7",
                           .sni = "a.example",
                           .method = req->method,
                           .method_len = req->method_len,
                           .path = req->target,
                           .path_len = req->target_len,
                           .status = 301};
    for (int f = TF_CONF_LOG_TEXT; f <= TF_CONF_LOG_JSON; f++) {
        size_t n = tf_access_format(&e, (tf_conf_log_format_t)f, line, sizeof line);
        if (n == 0 || n > sizeof line || line[n - 1] != '\n' || memchr(line, '\n', n - 1))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tf_http_parser_t p;
    static tf_http_request_t req;
    static char out[1024], resp[2048];
    tf_http_parser_init(&p);
    if (tf_http_parse_head(&p, (const char *)data, size, 4096, &req) != 0)
        return 0;
    int status = tf_redirect_route(&req, true, out, sizeof out);
    if (status == 301 || status == TF_REDIRECT_ACME)
        check_location(out, sizeof out, status);
    else if (status != 400 && status != 404 && status != 414)
        abort();
    if (status == 301 && tf_redirect_format(resp, sizeof resp, 301, out, "x\n", 2, false, 0) < 0)
        abort();
    check_log(&req);
    return 0;
}
