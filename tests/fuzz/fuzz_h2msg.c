/* libFuzzer target for the HTTP/2 ↔ HTTP/1.1 translation (proxy/http/h2msg.h).
 * The first input byte chooses the direction and the sizes:
 *   bit 0 clear: the rest is header fields, each "name\xff value" and
 *     separated by \xfe, turned into a request head (bit 1: end_stream) and
 *     trailers, into a buffer of (byte 1) * 16 bytes. Invariants: the
 *     result fits, every line of it ends with CRLF and holds no other CR or
 *     LF, the strict request parser reads exactly one head of that length
 *     (nothing a field carries starts a second message), and the trailers'
 *     lines are as clean.
 *   bit 0 set: the rest is a backend's response (bit 1: to HEAD) whose
 *     head becomes HTTP/2 fields and whose body is followed in pieces of
 *     (byte 1 % 32) + 1 bytes with tf_http_body_payload() and, on a copy
 *     of the parser, tf_http_body(). Invariants: the fields are lower case
 *     with no CR, LF or NUL and no connection-specific one, used <= len,
 *     the two followers agree on rc, *used and *done, and every trailer
 *     fits the scratch and has no CR or LF. */
#include "proxy/http/http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FIELDS 64
#define CANARY 0x5a

/* Every CR is followed by LF and every LF follows a CR: the text is lines. */
static void check_lines(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
            abort();
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            abort();
    }
    if (n < 2 || s[n - 2] != '\r' || s[n - 1] != '\n')
        abort();
}

static size_t split_fields(const char *p, size_t n, tf_h2_field_t *f)
{
    size_t nf = 0, i = 0;
    while (i < n && nf < MAX_FIELDS) {
        const char *end = memchr(p + i, '\xfe', n - i);
        size_t e = end != NULL ? (size_t)(end - p) : n;
        const char *sep = memchr(p + i, '\xff', e - i);
        size_t s = sep != NULL ? (size_t)(sep - p) : e;
        f[nf++] = (tf_h2_field_t){p + i, s - i, p + (s < e ? s + 1 : e), e - (s < e ? s + 1 : e)};
        i = e + 1;
    }
    return nf;
}

static void request_fields(const tf_h2_field_t *f, size_t nf, uint8_t flags, size_t cap,
                           bool again);

/* The fields again with ":path" "/": the two reads must agree then. */
static void with_plain_target(const tf_h2_field_t *f, size_t nf, uint8_t flags)
{
    static tf_h2_field_t g[MAX_FIELDS];
    bool path = false;
    for (size_t i = 0; i < nf; i++) {
        g[i] = f[i];
        if (f[i].name_len == 5 && memcmp(f[i].name, ":path", 5) == 0) {
            g[i].value = "/";
            g[i].value_len = 1;
            path = true;
        }
    }
    if (path)
        request_fields(g, nf, flags, 4096, true);
}

/* The same head handed on parsed (tf_h2_request_fields, then
 * tf_http_request_ready, as the exchange reads an HTTP/2 stream's) must be
 * read as its text was (tf_http_parse_head gave text_rc and text_req): the
 * same answer, fields, framing and body state. */
static void parsed_as_text(const tf_h2_field_t *f, size_t nf, uint8_t flags, bool again, size_t len,
                           int text_rc, const tf_http_request_t *text_req,
                           const tf_http_parser_t *text_parser)
{
    static tf_http_header_t hs[MAX_FIELDS + 6];
    static char scratch[TF_H2_TEXT_COOKIES];
    static tf_http_request_t req;
    static tf_http_parser_t parser;
    tf_h2_head_t h;
    tf_h2_request_info_t info;
    if (tf_h2_request_fields(f, nf, flags & 2, "dGhlIHNhbXBsZSBub25jZQ==", hs, MAX_FIELDS + 6,
                             scratch, sizeof scratch, &h, &info) != 0)
        abort(); /* its text was written */
    memset(&req, 0, sizeof req);
    req.method = h.method;
    req.method_len = h.method_len;
    req.target = h.target;
    req.target_len = h.target_len;
    req.version_minor = 1;
    memcpy(req.headers, hs, h.nfields * sizeof hs[0]);
    req.nheaders = h.nfields;
    req.head_len = h.text_len;
    req.parsed = true;
    tf_http_parser_init(&parser);
    tf_http_parser_set_max_fields(&parser, TF_HTTP_HEADERS_MAX);
    int rc = tf_http_request_ready(&parser, &req, len + 1);
    if (h.text_len != len)
        abort();
    if ((rc == 0) != (text_rc == 0)) {
        /* http-parser reads the request line's target by rules of its own
         * (the parsed head's are: no whitespace or control byte, Host for an
         * absolute form); everything else must agree. */
        if (again)
            abort();
        with_plain_target(f, nf, flags);
        return;
    }
    if (rc != 0)
        return;
    if (req.nheaders != text_req->nheaders || req.body != text_req->body ||
        req.content_length != text_req->content_length || req.upgrade != text_req->upgrade ||
        req.websocket != text_req->websocket || req.keep_alive != text_req->keep_alive ||
        req.host_len != text_req->host_len || parser.done != text_parser->done ||
        parser.strict_chunked != text_parser->strict_chunked ||
        parser.by_length != text_parser->by_length)
        abort();
    for (size_t i = 0; i < req.nheaders; i++) {
        const tf_http_header_t *a = &req.headers[i], *b = &text_req->headers[i];
        if (a->name_len != b->name_len || memcmp(a->name, b->name, a->name_len) != 0 ||
            a->value_len != b->value_len || memcmp(a->value, b->value, a->value_len) != 0)
            abort();
    }
}

static void request(uint8_t flags, size_t cap, const char *p, size_t n)
{
    static tf_h2_field_t f[MAX_FIELDS];
    size_t nf = split_fields(p, n, f);
    request_fields(f, nf, flags, cap, false);
}

static void request_fields(const tf_h2_field_t *f, size_t nf, uint8_t flags, size_t cap, bool again)
{
    char out[4096 + 1];
    tf_http_parser_t parser;
    static tf_http_request_t reqs[2];
    tf_http_request_t *req = &reqs[again];
    tf_h2_request_info_t info;
    memset(out, CANARY, sizeof out);
    long len = tf_h2_request_head(f, nf, flags & 2, "dGhlIHNhbXBsZSBub25jZQ==", out, cap, &info);
    if (out[cap] != CANARY ||
        (len != -1 && len != TF_H2_MALFORMED && (len <= 0 || len > (long)cap)))
        abort();
    if (len > 0) {
        check_lines(out, (size_t)len);
        if (len < 4 || memcmp(out + len - 4, "\r\n\r\n", 4) != 0)
            abort();
        tf_http_parser_init(&parser);
        tf_http_parser_set_max_fields(&parser, TF_HTTP_HEADERS_MAX);
        int rc = tf_http_parse_head(&parser, out, (size_t)len, (size_t)len + 1, req);
        if (rc == TF_HTTP_MORE || (rc == 0 && req->head_len != (size_t)len))
            abort();
        if (info.websocket && info.chunked)
            abort();
        parsed_as_text(f, nf, flags, again, (size_t)len, rc, req, &parser);
    }
    memset(out, CANARY, sizeof out);
    len = tf_h2_request_trailers(f, nf, out, cap);
    if (out[cap] != CANARY ||
        (len != -1 && len != TF_H2_MALFORMED && (len <= 0 || len > (long)cap)))
        abort();
    if (len > 0)
        check_lines(out, (size_t)len);
}

typedef struct {
    size_t cap;
} sink_t;

static void on_data(void *ud, const char *d, size_t n)
{
    (void)ud;
    (void)d;
    (void)n;
}

static void on_trailer(void *ud, const tf_http_header_t *h)
{
    const sink_t *s = ud;
    if (h->name_len + h->value_len > s->cap || h->name_len == 0 ||
        memchr(h->name, '\r', h->name_len) || memchr(h->name, '\n', h->name_len) ||
        memchr(h->value, '\r', h->value_len) || memchr(h->value, '\n', h->value_len))
        abort();
}

static bool connection_specific(const tf_h2_field_t *f)
{
    static const char *const names[] = {"connection", "keep-alive",        "proxy-connection",
                                        "upgrade",    "transfer-encoding", "te"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (f->name_len == strlen(names[i]) && memcmp(f->name, names[i], f->name_len) == 0)
            return true;
    }
    return false;
}

static void check_fields(const tf_h2_field_t *f, long n)
{
    for (long i = 0; i < n; i++) {
        for (size_t k = 0; k < f[i].name_len; k++) {
            char c = f[i].name[k];
            if ((c >= 'A' && c <= 'Z') || c == '\r' || c == '\n' || c == '\0')
                abort();
        }
        if (memchr(f[i].value, '\r', f[i].value_len) || memchr(f[i].value, '\n', f[i].value_len) ||
            memchr(f[i].value, '\0', f[i].value_len) || (i > 0 && connection_specific(&f[i])))
            abort();
    }
}

/* One piece of the body through a payload follower, unless it failed
 * before: its result must be the body follower's (rc2, used2, done2), but
 * a failure that only a trailer over its scratch explains. */
static void payload_piece(tf_http_parser_t *p, tf_http_payload_t *out, bool *failed, const char *b,
                          size_t len, int rc2, size_t used2, bool done2)
{
    if (*failed)
        return;
    size_t used = 0;
    bool done = false;
    int rc = tf_http_body_payload(p, b, len, &used, &done, out);
    if (rc != 0 && rc != 502)
        abort();
    if (rc != 0 && rc2 == 0 && out->scratch_cap >= 65536)
        abort(); /* a trailer field longer than the input cannot fill it */
    if (rc == 0 && (rc2 != 0 || used > len || used != used2 || done != done2))
        abort();
    *failed = rc != 0;
}

static void response(uint8_t flags, uint8_t piece_byte, const char *buf, size_t size)
{
    static tf_http_parser_t p, q, r;
    static tf_http_response_t resp;
    static tf_h2_field_t f[TF_HTTP_HEADERS_MAX + 1];
    static char lower[4096], small[48], big[65536];
    if (size > sizeof big)
        return;
    tf_http_parser_init_response(&q, flags & 2);
    if (tf_http_parse_response_head(&q, buf, size, 4096, &resp) != 0)
        return;
    char status[4];
    long n = tf_h2_response_fields(&resp, NULL, flags & 4, status, f, sizeof f / sizeof f[0], lower,
                                   sizeof lower);
    if (n < 1 || n > (long)resp.nheaders + 1)
        abort();
    check_fields(f, n);
    p = r = q; /* the same state after the head */
    sink_t s = {.cap = sizeof small}, t = {.cap = sizeof big};
    tf_http_payload_t to_small = {.data = on_data,
                                  .trailer = on_trailer,
                                  .ud = &s,
                                  .scratch = small,
                                  .scratch_cap = sizeof small};
    tf_http_payload_t to_big = {.data = on_data,
                                .trailer = on_trailer,
                                .ud = &t,
                                .scratch = big,
                                .scratch_cap = sizeof big};
    bool small_failed = false, big_failed = false;
    size_t off = resp.head_len, piece = (size_t)(piece_byte % 32) + 1;
    bool done = q.done;
    while (off < size && !done) {
        size_t len = size - off < piece ? size - off : piece, used = 0;
        int rc = tf_http_body(&q, buf + off, len, &used, &done);
        payload_piece(&p, &to_big, &big_failed, buf + off, len, rc, used, done);
        payload_piece(&r, &to_small, &small_failed, buf + off, len, rc, used, done);
        if (rc != 0)
            return;
        if (used > len || (!done && used != len))
            abort();
        off += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *rest = (const char *)data + 2;
    if (data[0] & 1)
        response(data[0], data[1], rest, size - 2);
    else
        request(data[0], (size_t)data[1] * 16 + (data[0] >> 4), rest, size - 2);
    return 0;
}
