/* HTTP/2 messages as HTTP/1.1 (SPEC §12, RFC 9113 §8, RFC 8441), pure: the
 * request head and trailers written for an HTTP/2 stream, the response
 * fields read back, and a response body's payload with its trailers, which
 * must end where tf_http_body() says the body ends for every input. */
#include "proxy/http/http.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

TestSuite(h2msg, .timeout = 30);

/* ---- request heads ---------------------------------------------------------------- */

#define F(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof n - 1, v, sizeof v - 1                                                           \
    }
#define NF(a) (sizeof(a) / sizeof(a)[0])

static char head[4096];
static tf_h2_request_info_t info;

/* The head for FIELDS, or "" with the result in *rc when there is none. */
static const char *req_head(const tf_h2_field_t *fields, size_t n, bool end_stream, long *rc)
{
    memset(&info, 0xa5, sizeof info);
    long r = tf_h2_request_head(fields, n, end_stream, "dGhlIHNhbXBsZSBub25jZQ==", head,
                                sizeof head - 1, &info);
    if (rc != NULL)
        *rc = r;
    if (r < 0)
        return "";
    head[r] = '\0';
    return head;
}

#define HEAD_IS(fields, end_stream, want)                                                          \
    cr_expect_str_eq(req_head(fields, NF(fields), end_stream, NULL), want)

#define MALFORMED(fields)                                                                          \
    do {                                                                                           \
        long rc_ = 0;                                                                              \
        req_head(fields, NF(fields), true, &rc_);                                                  \
        cr_expect_eq(rc_, TF_H2_MALFORMED, "line %d", __LINE__);                                   \
    } while (0)

Test(h2msg, a_get_becomes_a_request_line_and_host)
{
    tf_h2_field_t f[] = {F(":method", "GET"),  F(":scheme", "https"), F(":authority", "a.example"),
                         F(":path", "/x?y=1"), F("accept", "*/*"),    F("user-agent", "t/1")};
    HEAD_IS(f, true,
            "GET /x?y=1 HTTP/1.1\r\nHost: a.example\r\naccept: */*\r\nuser-agent: t/1\r\n\r\n");
    cr_expect_not(info.head);
    cr_expect_not(info.chunked);
    cr_expect_not(info.websocket);
}

Test(h2msg, authority_is_host_and_a_matching_host_field_is_dropped)
{
    tf_h2_field_t f[] = {F(":method", "GET"), F(":authority", "a.example:8443"), F(":path", "/"),
                         F("x", "1"),         F("host", "A.Example:8443"),       F("y", "2")};
    HEAD_IS(f, true, "GET / HTTP/1.1\r\nHost: a.example:8443\r\nx: 1\r\ny: 2\r\n\r\n");
}

Test(h2msg, a_host_field_differing_from_authority_is_malformed)
{
    tf_h2_field_t f[] = {F(":method", "GET"), F(":authority", "a.example"), F(":path", "/"),
                         F("host", "b.example")};
    MALFORMED(f);
    tf_h2_field_t port[] = {F(":method", "GET"), F(":authority", "a.example"), F(":path", "/"),
                            F("host", "a.example:443")};
    MALFORMED(port);
    tf_h2_field_t second[] = {F(":method", "GET"), F(":path", "/"), F("host", "a.example"),
                              F("host", "b.example")};
    MALFORMED(second);
}

/* RFC 9113 §8.3.1: :path is origin-form, or "*" for OPTIONS; anything
 * else (an absolute or scheme-like target, a fragment-only one) is
 * malformed here, whatever nghttp2 let through before. */
Test(h2msg, a_path_not_in_origin_form_is_malformed)
{
    tf_h2_field_t abs[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "http://a/x")};
    MALFORMED(abs);
    tf_h2_field_t scheme[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "1x://a/x")};
    MALFORMED(scheme);
    tf_h2_field_t frag[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "#frag")};
    MALFORMED(frag);
    tf_h2_field_t star[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "*")};
    MALFORMED(star);
    tf_h2_field_t options[] = {F(":method", "OPTIONS"), F(":authority", "a"), F(":path", "*")};
    HEAD_IS(options, true, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
}

Test(h2msg, without_authority_the_host_field_is_host)
{
    tf_h2_field_t f[] = {F(":method", "GET"), F(":scheme", "https"), F(":path", "/p"), F("x", "1"),
                         F("host", "h.example")};
    HEAD_IS(f, true, "GET /p HTTP/1.1\r\nHost: h.example\r\nx: 1\r\n\r\n");
    tf_h2_field_t none[] = {F(":method", "GET"), F(":path", "/p"), F("x", "1")};
    HEAD_IS(none, true, "GET /p HTTP/1.1\r\nx: 1\r\n\r\n");
}

Test(h2msg, cookie_crumbs_are_joined_at_the_first_ones_place)
{
    tf_h2_field_t f[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/"),
                         F("accept", "*/*"),  F("cookie", "a=1"),   F("x", "y"),
                         F("cookie", "b=2"),  F("cookie", "c=3")};
    HEAD_IS(f, true,
            "GET / HTTP/1.1\r\nHost: a\r\naccept: */*\r\ncookie: a=1; b=2; c=3\r\nx: y\r\n\r\n");
    tf_h2_field_t one[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/"),
                           F("cookie", "a=1; b=2")};
    HEAD_IS(one, true, "GET / HTTP/1.1\r\nHost: a\r\ncookie: a=1; b=2\r\n\r\n");
}

Test(h2msg, a_body_without_length_is_chunked)
{
    tf_h2_field_t f[] = {F(":method", "POST"), F(":authority", "a"), F(":path", "/up")};
    HEAD_IS(f, false, "POST /up HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\n\r\n");
    cr_expect(info.chunked);
    HEAD_IS(f, true, "POST /up HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_expect_not(info.chunked);
    tf_h2_field_t len[] = {F(":method", "POST"), F(":authority", "a"), F(":path", "/up"),
                           F("content-length", "5")};
    HEAD_IS(len, false, "POST /up HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\n\r\n");
    cr_expect_not(info.chunked);
}

Test(h2msg, head_is_reported)
{
    tf_h2_field_t f[] = {F(":method", "HEAD"), F(":authority", "a"), F(":path", "/")};
    HEAD_IS(f, true, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_expect(info.head);
    tf_h2_field_t lower[] = {F(":method", "head"), F(":authority", "a"), F(":path", "/")};
    HEAD_IS(lower, true, "head / HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_expect_not(info.head, "methods are case-sensitive");
}

Test(h2msg, extended_connect_websocket_is_a_get_with_upgrade)
{
    tf_h2_field_t f[] = {F(":method", "CONNECT"),
                         F(":protocol", "websocket"),
                         F(":scheme", "https"),
                         F(":path", "/chat"),
                         F(":authority", "a.example"),
                         F("sec-websocket-version", "13"),
                         F("sec-websocket-protocol", "chat"),
                         F("sec-websocket-key", "client-sent")};
    HEAD_IS(f, false,
            "GET /chat HTTP/1.1\r\nHost: a.example\r\nsec-websocket-version: 13\r\n"
            "sec-websocket-protocol: chat\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    cr_expect(info.websocket);
    cr_expect_not(info.chunked, "the tunnel's bytes are not a chunked body");
    cr_expect_not(info.head);
    tf_h2_field_t nover[] = {F(":method", "CONNECT"), F(":protocol", "websocket"),
                             F(":scheme", "https"), F(":path", "/"), F(":authority", "a")};
    HEAD_IS(nover, false,
            "GET / HTTP/1.1\r\nHost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n");
}

Test(h2msg, connect_without_protocol_is_an_http1_connect)
{
    tf_h2_field_t f[] = {F(":method", "CONNECT"), F(":authority", "b.example:443"),
                         F("user-agent", "t")};
    HEAD_IS(f, false,
            "CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\nuser-agent: t\r\n\r\n");
    cr_expect_not(info.chunked);
    cr_expect_not(info.websocket);
    tf_h2_field_t noauth[] = {F(":method", "CONNECT")};
    MALFORMED(noauth);
    tf_h2_field_t path[] = {F(":method", "CONNECT"), F(":authority", "b:443"), F(":path", "/")};
    MALFORMED(path);
}

Test(h2msg, pseudo_header_mistakes_are_malformed)
{
    tf_h2_field_t nomethod[] = {F(":authority", "a"), F(":path", "/")};
    MALFORMED(nomethod);
    tf_h2_field_t nopath[] = {F(":method", "GET"), F(":authority", "a")};
    MALFORMED(nopath);
    tf_h2_field_t emptypath[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "")};
    MALFORMED(emptypath);
    tf_h2_field_t proto[] = {F(":method", "CONNECT"), F(":protocol", "h2c"), F(":path", "/"),
                             F(":authority", "a")};
    MALFORMED(proto);
    tf_h2_field_t protoget[] = {F(":method", "GET"), F(":protocol", "websocket"), F(":path", "/"),
                                F(":authority", "a")};
    MALFORMED(protoget);
    tf_h2_field_t wsnopath[] = {F(":method", "CONNECT"), F(":protocol", "websocket"),
                                F(":authority", "a")};
    MALFORMED(wsnopath);
    tf_h2_field_t unknown[] = {F(":method", "GET"), F(":path", "/"), F(":status", "200")};
    MALFORMED(unknown);
    tf_h2_field_t twice[] = {F(":method", "GET"), F(":path", "/"), F(":path", "/admin")};
    MALFORMED(twice);
    tf_h2_field_t space[] = {F(":method", "GET"), F(":path", "/ HTTP/1.1\tx"),
                             F(":authority", "a")};
    MALFORMED(space);
    tf_h2_field_t mspace[] = {F(":method", "GET /x"), F(":path", "/"), F(":authority", "a")};
    MALFORMED(mspace);
    tf_h2_field_t aspace[] = {F(":method", "GET"), F(":path", "/"), F(":authority", "a b")};
    MALFORMED(aspace);
}

Test(h2msg, names_that_are_not_tokens_and_connection_fields_are_malformed)
{
    tf_h2_field_t colon[] = {F(":method", "GET"), F(":path", "/"), F("a: b", "c")};
    MALFORMED(colon);
    tf_h2_field_t empty[] = {F(":method", "GET"), F(":path", "/"), F("", "c")};
    MALFORMED(empty);
    const char *conn[] = {"connection",        "keep-alive", "proxy-connection",
                          "transfer-encoding", "upgrade",    "Transfer-Encoding"};
    for (size_t i = 0; i < NF(conn); i++) {
        tf_h2_field_t f[] = {
            F(":method", "GET"), F(":path", "/"), {conn[i], strlen(conn[i]), "x", 1}};
        MALFORMED(f);
    }
}

/* CR, LF or NUL at any place of any name or value is malformed. */
Test(h2msg, cr_lf_and_nul_anywhere_are_malformed)
{
    static const char bad[] = {'\r', '\n', '\0'};
    char name[] = "x-field", value[] = "value", method[] = "GET", path[] = "/p";
    char *parts[] = {name, value, method, path};
    for (size_t part = 0; part < NF(parts); part++) {
        size_t len = strlen(parts[part]);
        for (size_t at = 0; at < len; at++) {
            for (size_t b = 0; b < NF(bad); b++) {
                char keep = parts[part][at];
                parts[part][at] = bad[b];
                tf_h2_field_t f[] = {
                    {":method", 7, method, 3}, {":path", 5, path, 2}, {name, 7, value, 5}};
                long rc = 0;
                req_head(f, NF(f), true, &rc);
                cr_expect_eq(rc, TF_H2_MALFORMED, "part %zu at %zu byte %d", part, at, bad[b]);
                rc = tf_h2_request_trailers(&f[2], 1, head, sizeof head);
                if (part < 2)
                    cr_expect_eq(rc, TF_H2_MALFORMED, "trailer part %zu at %zu", part, at);
                parts[part][at] = keep;
            }
        }
    }
}

Test(h2msg, a_small_buffer_is_minus_one_at_every_size)
{
    tf_h2_field_t f[] = {F(":method", "CONNECT"), F(":protocol", "websocket"), F(":path", "/c"),
                         F(":authority", "a"),    F("cookie", "a=1"),          F("cookie", "b=2")};
    long n = tf_h2_request_head(f, NF(f), false, "k", head, sizeof head, &info);
    cr_assert_gt(n, 0);
    char small[4096];
    for (long cap = 0; cap < n; cap++) {
        memset(small, '#', sizeof small);
        cr_expect_eq(tf_h2_request_head(f, NF(f), false, "k", small, (size_t)cap, &info), -1);
        cr_expect_eq(small[cap], '#', "nothing past %ld", cap);
    }
    cr_expect_eq(tf_h2_request_head(f, NF(f), false, "k", small, (size_t)n, &info), n);
    cr_expect_eq(memcmp(small, head, (size_t)n), 0);
}

/* A response's trailer fields: names lower-cased, connection-specific ones
 * dropped, as in the response head, and the fields no trailer may hold. */
Test(h2msg, response_trailer_fields_are_lower_cased_or_dropped)
{
    char lower[32];
    tf_http_header_t keep = {"X-Checksum", 10, "abc", 3};
    cr_assert(tf_h2_trailer_field(&keep, lower));
    cr_expect_eq(memcmp(lower, "x-checksum", 10), 0);
    /* And what a trailer section must not carry (RFC 9110 §6.5.1): a
     * content-length among an HTTP/2 response's trailers fails the
     * client's stream. */
    const char *drop[] = {"Connection", "keep-alive",   "Proxy-Connection", "Transfer-Encoding",
                          "Upgrade",    "TE",           "Content-Length",   "Host",
                          "Trailer",    "Content-Type", "Content-Encoding", "Content-Range"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) {
        tf_http_header_t h = {drop[i], strlen(drop[i]), "x", 1};
        cr_expect_not(tf_h2_trailer_field(&h, lower), "%s kept", drop[i]);
    }
}

/* ---- chunked request bodies ------------------------------------------------------ */

Test(h2msg, trailers_end_a_chunked_body)
{
    tf_h2_field_t t[] = {F("grpc-status", "0"), F("x-sum", "abc")};
    long n = tf_h2_request_trailers(t, NF(t), head, sizeof head);
    cr_assert_gt(n, 0);
    cr_expect_eq(n, (long)strlen("0\r\ngrpc-status: 0\r\nx-sum: abc\r\n\r\n"));
    cr_expect_eq(memcmp(head, "0\r\ngrpc-status: 0\r\nx-sum: abc\r\n\r\n", (size_t)n), 0);
    cr_expect_eq(tf_h2_request_trailers(NULL, 0, head, sizeof head), 5);
    cr_expect_eq(memcmp(head, "0\r\n\r\n", 5), 0);
    tf_h2_field_t pseudo[] = {F(":path", "/")};
    cr_expect_eq(tf_h2_request_trailers(pseudo, 1, head, sizeof head), TF_H2_MALFORMED);
    for (size_t cap = 0; cap < 5; cap++)
        cr_expect_eq(tf_h2_request_trailers(NULL, 0, head, cap), -1);
}

Test(h2msg, chunk_prefixes_are_hex_sizes)
{
    char p[20];
    cr_expect_eq(tf_h2_chunk_prefix(1, p), 3);
    cr_expect_eq(memcmp(p, "1\r\n", 3), 0);
    cr_expect_eq(tf_h2_chunk_prefix(255, p), 4);
    cr_expect_eq(memcmp(p, "ff\r\n", 4), 0);
    cr_expect_eq(tf_h2_chunk_prefix(16384, p), 6);
    cr_expect_eq(memcmp(p, "4000\r\n", 6), 0);
    cr_expect_eq(tf_h2_chunk_prefix(SIZE_MAX, p), 18);
    cr_expect_eq(memcmp(p, "ffffffffffffffff\r\n", 18), 0);
}

/* ---- request heads handed on parsed -------------------------------------------------- */

/* The exchange reads a stream's head parsed (tf_h2_request_fields, then
 * tf_http_request_ready) as it would read the same head's text
 * (tf_h2_request_head, then tf_http_parse_head): the same answer, and for a
 * head it takes, the same fields and framing. */
static void same_as_text(const tf_h2_field_t *fields, size_t n, bool end_stream,
                         unsigned max_fields, int want)
{
    static tf_http_request_t text_req, parsed_req;
    static tf_http_parser_t tp, pp;
    char text[4096];
    long len = tf_h2_request_head(fields, n, end_stream, "k", text, sizeof text, &info);
    cr_assert_gt(len, 0);
    tf_http_parser_init(&tp);
    tf_http_parser_set_max_fields(&tp, max_fields);
    int text_rc = tf_http_parse_head(&tp, text, (size_t)len, 8192, &text_req);

    tf_http_header_t hs[64];
    char scratch[512];
    tf_h2_head_t h;
    cr_assert_eq(tf_h2_request_fields(fields, n, end_stream, "k", hs, 64, scratch, sizeof scratch,
                                      &h, &info),
                 0);
    memset(&parsed_req, 0, sizeof parsed_req);
    parsed_req.method = h.method;
    parsed_req.method_len = h.method_len;
    parsed_req.target = h.target;
    parsed_req.target_len = h.target_len;
    parsed_req.version_minor = 1;
    memcpy(parsed_req.headers, hs, h.nfields * sizeof hs[0]);
    parsed_req.nheaders = h.nfields;
    parsed_req.head_len = h.text_len;
    parsed_req.parsed = true;
    tf_http_parser_init(&pp);
    tf_http_parser_set_max_fields(&pp, max_fields);
    int parsed_rc = tf_http_request_ready(&pp, &parsed_req, 8192);
    cr_expect_eq(text_rc, want, "text: %s", text);
    cr_expect_eq(parsed_rc, want, "parsed: %s", text);
    if (text_rc != 0 || parsed_rc != 0)
        return;
    cr_expect_eq(h.text_len, (size_t)len, "%s", text);
    cr_expect_eq(parsed_req.nheaders, text_req.nheaders, "%s", text);
    for (size_t i = 0; i < text_req.nheaders && i < parsed_req.nheaders; i++) {
        const tf_http_header_t *a = &text_req.headers[i], *b = &parsed_req.headers[i];
        cr_expect(a->name_len == b->name_len && !memcmp(a->name, b->name, a->name_len) &&
                      a->value_len == b->value_len && !memcmp(a->value, b->value, a->value_len),
                  "field %zu of %s", i, text);
    }
    cr_expect_eq(parsed_req.body, text_req.body, "%s", text);
    cr_expect_eq(parsed_req.content_length, text_req.content_length, "%s", text);
    cr_expect_eq(parsed_req.keep_alive, text_req.keep_alive, "%s", text);
    cr_expect_eq(parsed_req.upgrade, text_req.upgrade, "%s", text);
    cr_expect_eq(parsed_req.websocket, text_req.websocket, "%s", text);
    cr_expect_eq(parsed_req.expect_continue, text_req.expect_continue, "%s", text);
    cr_expect(parsed_req.host_len == text_req.host_len &&
                  !memcmp(parsed_req.host, text_req.host, text_req.host_len),
              "%s", text);
    cr_expect_eq(pp.done, tp.done, "%s", text);
    cr_expect_eq(pp.strict_chunked, tp.strict_chunked, "%s", text);
    cr_expect_eq(pp.by_length, tp.by_length, "%s", text);
}

Test(h2msg, a_head_handed_on_parsed_is_read_as_its_text)
{
    tf_h2_field_t get[] = {F(":method", "GET"),       F(":scheme", "https"),
                           F(":authority", "a:8443"), F(":path", "/x?y=1"),
                           F("cookie", "a=1"),        F("accept", "*/*"),
                           F("cookie", "b=2"),        F("expect", "100-continue")};
    same_as_text(get, NF(get), true, 100, 0);
    same_as_text(get, NF(get), true, 3, 431); /* limits.max_header_fields */
    tf_h2_field_t post[] = {F(":method", "POST"), F(":authority", "a"), F(":path", "/up")};
    same_as_text(post, NF(post), false, 100, 0); /* chunked */
    tf_h2_field_t len[] = {F(":method", "PUT"), F(":authority", "a"), F(":path", "/up"),
                           F("content-length", "12")};
    same_as_text(len, NF(len), false, 100, 0);
    tf_h2_field_t ws[] = {F(":method", "CONNECT"), F(":protocol", "websocket"),
                          F(":scheme", "https"),   F(":authority", "a"),
                          F(":path", "/chat"),     F("sec-websocket-version", "13")};
    same_as_text(ws, NF(ws), false, 100, 0);
    tf_h2_field_t lower[] = {F(":method", "head"), F(":authority", "a"), F(":path", "/")};
    same_as_text(lower, NF(lower), true, 100, 400); /* http-parser's methods */
    tf_h2_field_t connect[] = {F(":method", "CONNECT"), F(":authority", "a:443")};
    same_as_text(connect, NF(connect), false, 100, 400);
    tf_h2_field_t nohost[] = {F(":method", "GET"), F(":path", "/")};
    same_as_text(nohost, NF(nohost), true, 100, 400);
    /* An absolute :path never gets this far: malformed
     * (a_path_not_in_origin_form_is_malformed). */
    tf_h2_field_t badlen[] = {F(":method", "POST"), F(":authority", "a"), F(":path", "/"),
                              F("content-length", "1x")};
    same_as_text(badlen, NF(badlen), true, 100, 400);
}

Test(h2msg, a_control_byte_in_a_value_is_malformed)
{
    tf_h2_field_t f[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/"),
                         F("x-a", "b\x01c")};
    MALFORMED(f);
    tf_h2_field_t tab[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/"),
                           F("x-a", "b\tc")};
    HEAD_IS(tab, true, "GET / HTTP/1.1\r\nHost: a\r\nx-a: b\tc\r\n\r\n");
}

/* ---- responses ---------------------------------------------------------------------- */

static tf_http_parser_t parser;
static tf_http_response_t resp;

static void parse_resp(const char *h, bool head_request)
{
    tf_http_parser_init_response(&parser, head_request);
    cr_assert_eq(tf_http_parse_response_head(&parser, h, strlen(h), 32768, &resp), 0, "%s", h);
}

/* The fields as "name=value|..." */
static const char *fields_text(bool websocket)
{
    static char text[4096], status[4], lower[1024];
    tf_h2_field_t out[64];
    long n =
        tf_h2_response_fields(&resp, NULL, websocket, status, out, NF(out), lower, sizeof lower);
    if (n < 0)
        return "-1";
    size_t len = 0;
    for (long i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%.*s=%.*s|", (int)out[i].name_len,
                                out[i].name, (int)out[i].value_len, out[i].value);
    return text;
}

Test(h2msg, response_fields_lose_connection_specific_ones_and_are_lower_case)
{
    parse_resp("HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nContent-Type: text/plain\r\n"
               "Keep-Alive: timeout=5\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\n"
               "Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTE: trailers\r\n"
               "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nTrailer: X-Sum\r\n\r\n",
               false);
    /* Trailer goes as it goes for an HTTP/1.1 client: one rule for both. */
    cr_expect_str_eq(fields_text(false),
                     ":status=200|content-type=text/plain|set-cookie=a=1|set-cookie=b=2|");
    /* Connection cannot make the message's framing disappear. */
    parse_resp("HTTP/1.1 404 Not Found\r\nConnection: content-length\r\nContent-Length: 0\r\n\r\n",
               false);
    cr_expect_str_eq(fields_text(false), ":status=404|content-length=0|");
}

Test(h2msg, a_websocket_101_becomes_200)
{
    const char *h = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                    "Sec-WebSocket-Protocol: chat\r\n\r\n";
    parse_resp(h, false);
    cr_expect_str_eq(fields_text(true), ":status=200|sec-websocket-protocol=chat|");
    cr_expect_str_eq(fields_text(false),
                     ":status=101|sec-websocket-accept=s3pPLMBiTxaQ9kYGzzhZRbK+xOo=|"
                     "sec-websocket-protocol=chat|");
    parse_resp("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", false);
    cr_expect_str_eq(fields_text(true), ":status=403|content-length=0|");
}

/* What the proxy changes in a head (the route's response rules, the sticky
 * cookie's line) reaches an HTTP/2 client as it reaches an HTTP/1.1 one:
 * the same fields, names lower case, no Connection line. */
Test(h2msg, response_fields_follow_the_rewrite_of_http1)
{
    parse_resp("HTTP/1.1 200 OK\r\nServer: x\r\nX-Powered-By: php\r\nCache-Control: a\r\n"
               "Content-Length: 5\r\n\r\n",
               false);
    static const tf_conf_header_t set[] = {{.name = "Cache-Control", .value = "no-store"},
                                           {.name = "X-Frame-Options", .value = "DENY"}};
    static const char *const rm[] = {"x-powered-by"};
    tf_conf_header_rules_t rules = {.set = set, .nset = 2, .remove = {.items = rm, .count = 1}};
    const char extra[] = "Set-Cookie: TFSRV=b1; Path=/; HttpOnly\r\n";
    tf_http_resp_rewrite_t how = {
        .close = true, .rules = &rules, .extra = extra, .extra_len = sizeof extra - 1};
    char text[1024];
    long tn = tf_http_rewrite_response_head(&resp, &how, text, sizeof text - 1);
    cr_assert_gt(tn, 0);
    text[tn] = '\0';
    size_t lowercap, cap = tf_h2_response_fields_cap(&resp, &how, &lowercap);
    cr_assert_geq(cap, 7);
    char status[4], lower[256];
    tf_h2_field_t out[16];
    cr_assert_leq(lowercap, sizeof lower);
    long n = tf_h2_response_fields(&resp, &how, false, status, out, cap, lower, lowercap);
    cr_assert_eq(n, 6);
    char got[1024];
    size_t len = 0;
    for (long i = 0; i < n; i++)
        len += (size_t)snprintf(got + len, sizeof got - len, "%.*s=%.*s|", (int)out[i].name_len,
                                out[i].name, (int)out[i].value_len, out[i].value);
    cr_expect_str_eq(got, ":status=200|server=x|content-length=5|cache-control=no-store|"
                          "x-frame-options=DENY|set-cookie=TFSRV=b1; Path=/; HttpOnly|");
    /* The text has the same fields, in the same order, and a Connection line. */
    cr_expect_str_eq(text + strlen("HTTP/1.1 200 OK\r\n"),
                     "Server: x\r\nContent-Length: 5\r\nCache-Control: no-store\r\n"
                     "X-Frame-Options: DENY\r\nSet-Cookie: TFSRV=b1; Path=/; HttpOnly\r\n"
                     "Connection: close\r\n\r\n");
    cr_expect_eq(tf_h2_response_fields(&resp, &how, false, status, out, 5, lower, lowercap), -1);
}

/* A body followed from a head another parser read (tf_http_parser_follow)
 * ends where it ends for the parser that read the head. */
static void follow_both(const char *text, const char *body, bool head_request)
{
    tf_http_parser_init_response(&parser, head_request);
    cr_assert_eq(tf_http_parse_response_head(&parser, text, strlen(text), 32768, &resp), 0);
    tf_http_parser_t other;
    cr_assert_eq(tf_http_parser_follow(&other, &resp, head_request), 0);
    size_t used1 = 0, used2 = 0;
    bool done1 = false, done2 = false;
    cr_assert_eq(tf_http_body(&parser, body, strlen(body), &used1, &done1), 0);
    cr_assert_eq(tf_http_body(&other, body, strlen(body), &used2, &done2), 0);
    cr_expect_eq(used1, used2, "%s", text);
    cr_expect_eq(done1, done2, "%s", text);
}

Test(h2msg, a_body_is_followed_from_a_parsed_head)
{
    follow_both("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "abcdef", false);
    follow_both("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\nrest", false);
    follow_both("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "3\r\nab", false);
    follow_both("HTTP/1.1 200 OK\r\n\r\n", "until the close", false);
    follow_both("HTTP/1.1 204 No Content\r\n\r\n", "next", false);
    follow_both("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "next", true);
}

Test(h2msg, response_fields_that_do_not_fit_are_minus_one)
{
    parse_resp("HTTP/1.1 200 OK\r\nAb: 1\r\nCd: 2\r\n\r\n", false);
    char status[4], lower[8];
    tf_h2_field_t out[3];
    cr_expect_eq(tf_h2_response_fields(&resp, NULL, false, status, out, 3, lower, 4), 3);
    cr_expect_eq(memcmp(lower, "abcd", 4), 0);
    cr_expect_eq(tf_h2_response_fields(&resp, NULL, false, status, out, 2, lower, 4), -1);
    cr_expect_eq(tf_h2_response_fields(&resp, NULL, false, status, out, 3, lower, 3), -1);
    cr_expect_eq(tf_h2_response_fields(&resp, NULL, false, status, out, 0, lower, 4), -1);
}

/* ---- response payloads -------------------------------------------------------------- */

typedef struct {
    char data[8192];
    size_t data_len;
    char trailers[4096]; /* "name=value|..." */
    size_t trailers_len;
    bool data_after_trailer;
} sink_t;

static void on_data(void *ud, const char *p, size_t n)
{
    sink_t *s = ud;
    cr_assert_leq(s->data_len + n, sizeof s->data);
    memcpy(s->data + s->data_len, p, n);
    s->data_len += n;
    s->data_after_trailer |= n > 0 && s->trailers_len > 0;
}

static void on_trailer(void *ud, const tf_http_header_t *f)
{
    sink_t *s = ud;
    s->trailers_len +=
        (size_t)snprintf(s->trailers + s->trailers_len, sizeof s->trailers - s->trailers_len,
                         "%.*s=%.*s|", (int)f->name_len, f->name, (int)f->value_len, f->value);
}

typedef struct {
    int rc;
    size_t used; /* of all the body bytes given */
    bool done;
} fed_t;

/* Feeds MSG's body (after its head) in pieces: cut[] are the offsets into
 * the body where a read ends (ascending), then the rest. */
static fed_t feed(const char *msg, size_t len, bool head_request, const size_t *cuts, size_t ncuts,
                  sink_t *s, size_t scratch_cap)
{
    static char scratch[4096];
    memset(s, 0, sizeof *s);
    tf_http_parser_init_response(&parser, head_request);
    cr_assert_eq(tf_http_parse_response_head(&parser, msg, len, 32768, &resp), 0);
    tf_http_payload_t out = {.data = on_data,
                             .trailer = on_trailer,
                             .ud = s,
                             .scratch = scratch,
                             .scratch_cap = scratch_cap};
    const char *body = msg + resp.head_len;
    size_t blen = len - resp.head_len, off = 0;
    fed_t r = {0};
    for (size_t k = 0; k <= ncuts && !r.done; k++) {
        size_t end = k < ncuts ? cuts[k] : blen;
        if (end < off)
            continue;
        size_t used = 0;
        r.rc = tf_http_body_payload(&parser, body + off, end - off, &used, &r.done, &out);
        if (r.rc != 0)
            return r;
        cr_assert_leq(used, end - off);
        off += used;
        if (!r.done)
            cr_assert_eq(off, end, "all of a read is taken until the body ends");
    }
    r.used = off;
    return r;
}

static const char chunked_msg[] =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n1;ext=1\r\n \r\n10\r\n0123456789abcdef\r\n"
    "0\r\nX-Sum: abc \r\nGrpc-Status:0\r\nEmpty:\r\nLong-Name-Of-A-Trailer: some longer value\r\n"
    "\r\nHTTP/1.1 200 OK\r\n";

Test(h2msg, a_chunked_body_gives_its_payload_and_trailers)
{
    sink_t s;
    fed_t r = feed(chunked_msg, sizeof chunked_msg - 1, false, NULL, 0, &s, 64);
    cr_assert_eq(r.rc, 0);
    cr_expect(r.done);
    cr_expect_eq(r.used, sizeof chunked_msg - 1 - resp.head_len - strlen("HTTP/1.1 200 OK\r\n"));
    cr_expect_eq(s.data_len, 22);
    cr_expect_eq(memcmp(s.data, "hello 0123456789abcdef", 22), 0);
    s.trailers[s.trailers_len] = '\0';
    cr_expect_str_eq(s.trailers,
                     "X-Sum=abc|Grpc-Status=0|Empty=|Long-Name-Of-A-Trailer=some longer value|");
    cr_expect_not(s.data_after_trailer);
}

/* Split at every byte boundary, and a byte at a time: the same payload, the
 * same trailers, the same end. */
Test(h2msg, a_chunked_body_split_anywhere_gives_the_same_result)
{
    sink_t whole, part;
    fed_t w = feed(chunked_msg, sizeof chunked_msg - 1, false, NULL, 0, &whole, 64);
    cr_assert_eq(w.rc, 0);
    size_t blen = sizeof chunked_msg - 1 - resp.head_len;
    for (size_t cut = 0; cut <= blen; cut++) {
        fed_t r = feed(chunked_msg, sizeof chunked_msg - 1, false, &cut, 1, &part, 64);
        cr_assert_eq(r.rc, 0, "cut %zu", cut);
        cr_expect(r.done, "cut %zu", cut);
        cr_expect_eq(r.used, w.used, "cut %zu", cut);
        cr_expect_eq(part.data_len, whole.data_len, "cut %zu", cut);
        cr_expect_eq(memcmp(part.data, whole.data, whole.data_len), 0, "cut %zu", cut);
        cr_expect_eq(part.trailers_len, whole.trailers_len, "cut %zu", cut);
        cr_expect_eq(memcmp(part.trailers, whole.trailers, whole.trailers_len), 0, "cut %zu", cut);
    }
    static size_t every[sizeof chunked_msg];
    for (size_t i = 0; i < blen; i++)
        every[i] = i + 1;
    fed_t r = feed(chunked_msg, sizeof chunked_msg - 1, false, every, blen, &part, 64);
    cr_assert_eq(r.rc, 0);
    cr_expect_eq(r.used, w.used);
    cr_expect_eq(part.data_len, whole.data_len);
    cr_expect_eq(memcmp(part.data, whole.data, whole.data_len), 0);
    cr_expect_eq(part.trailers_len, whole.trailers_len);
    cr_expect_eq(memcmp(part.trailers, whole.trailers, whole.trailers_len), 0);
}

Test(h2msg, a_trailer_over_scratch_is_502)
{
    /* "Long-Name-Of-A-Trailer" and "some longer value": 39 bytes. */
    sink_t s;
    fed_t r = feed(chunked_msg, sizeof chunked_msg - 1, false, NULL, 0, &s, 39);
    cr_expect_eq(r.rc, 0);
    r = feed(chunked_msg, sizeof chunked_msg - 1, false, NULL, 0, &s, 38);
    cr_expect_eq(r.rc, 502);
    size_t blen = sizeof chunked_msg - 1 - resp.head_len;
    for (size_t cut = 0; cut <= blen; cut++) {
        r = feed(chunked_msg, sizeof chunked_msg - 1, false, &cut, 1, &s, 38);
        cr_expect_eq(r.rc, 502, "cut %zu", cut);
    }
}

Test(h2msg, a_length_body_goes_through_as_it_is)
{
    const char m[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n5\r\nhello\r\n0\r\nHTTP/1.1";
    sink_t s;
    size_t cuts[] = {0, 3, 4, 11};
    fed_t r = feed(m, sizeof m - 1, false, cuts, NF(cuts), &s, 64);
    cr_assert_eq(r.rc, 0);
    cr_expect(r.done);
    cr_expect_eq(r.used, 12);
    cr_expect_eq(s.data_len, 12);
    cr_expect_eq(memcmp(s.data, "5\r\nhello\r\n0\r", 12), 0);
    cr_expect_eq(s.trailers_len, 0);
}

Test(h2msg, a_close_body_never_ends_and_is_all_payload)
{
    const char m[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n0\r\n\r\nanything";
    sink_t s;
    size_t cuts[] = {1, 2, 5};
    fed_t r = feed(m, sizeof m - 1, false, cuts, NF(cuts), &s, 64);
    cr_assert_eq(r.rc, 0);
    cr_expect_not(r.done);
    cr_expect_eq(r.used, 13);
    cr_expect_eq(s.data_len, 13);
    cr_expect_eq(memcmp(s.data, "0\r\n\r\nanything", 13), 0);
}

Test(h2msg, a_head_response_has_no_payload)
{
    const char m[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    sink_t s;
    fed_t r = feed(m, sizeof m - 1, true, NULL, 0, &s, 64);
    cr_assert_eq(r.rc, 0);
    cr_expect(r.done);
    cr_expect_eq(r.used, 0);
    cr_expect_eq(s.data_len, 0);
    const char l[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    r = feed(l, sizeof l - 1, true, NULL, 0, &s, 64);
    cr_expect(r.done);
    cr_expect_eq(r.used, 0);
}

Test(h2msg, a_broken_chunked_body_is_502)
{
    const char m[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n";
    sink_t s;
    cr_expect_eq(feed(m, sizeof m - 1, false, NULL, 0, &s, 64).rc, 502);
}

/* ---- one body-following rule ---------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* A response head and a body built at random, most of them valid, some
 * mangled by a byte. */
static size_t random_message(char *m, size_t cap, bool *head_request)
{
    static const char *const heads[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
        "HTTP/1.0 200 OK\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    };
    size_t n = (size_t)snprintf(m, cap, "%s", heads[rnd(NF(heads))]);
    *head_request = rnd(8) == 0;
    size_t chunks = rnd(4);
    for (size_t c = 0; c < chunks; c++) {
        size_t sz = 1 + rnd(20);
        n += (size_t)snprintf(m + n, cap - n, "%zx%s\r\n", sz, rnd(4) == 0 ? ";e=v" : "");
        for (size_t i = 0; i < sz; i++)
            m[n++] = (char)('a' + rnd(26));
        n += (size_t)snprintf(m + n, cap - n, "\r\n");
    }
    n += (size_t)snprintf(m + n, cap - n, "0\r\n");
    size_t trailers = rnd(3);
    for (size_t t = 0; t < trailers; t++)
        n += (size_t)snprintf(m + n, cap - n, "X-T%zu: %u\r\n", t, rnd(100000));
    n += (size_t)snprintf(m + n, cap - n, "\r\nHTTP/1.1 200 OK\r\n\r\n");
    if (rnd(4) == 0) {
        size_t body = (size_t)(strstr(m, "\r\n\r\n") + 4 - m);
        m[body + rnd((uint32_t)(n - body))] = (char)rnd(256);
    }
    return n;
}

Test(h2msg, body_and_payload_end_at_the_same_place_for_any_input)
{
    static char m[2048], scratch[32];
    tf_http_parser_t a, b;
    tf_http_response_t ra;
    for (int round = 0; round < 20000; round++) {
        bool head_request;
        size_t len = random_message(m, sizeof m, &head_request);
        tf_http_parser_init_response(&a, head_request);
        if (tf_http_parse_response_head(&a, m, len, 32768, &ra) != 0)
            continue;
        b = a; /* the same state after the head */
        sink_t s = {0};
        tf_http_payload_t out = {.data = on_data,
                                 .trailer = on_trailer,
                                 .ud = &s,
                                 .scratch = scratch,
                                 .scratch_cap = sizeof scratch};
        size_t off = ra.head_len;
        for (int step = 0; step < 4096 && off < len; step++) {
            size_t piece = 1 + rnd((uint32_t)(len - off < 16 ? len - off : 16));
            size_t ua = 0, ub = 0;
            bool da = false, db = false;
            int rca = tf_http_body(&a, m + off, piece, &ua, &da);
            int rcb = tf_http_body_payload(&b, m + off, piece, &ub, &db, &out);
            cr_assert_eq(rca != 0, rcb != 0, "round %d: %.*s", round, (int)len, m);
            if (rca != 0)
                break;
            cr_assert_eq(ua, ub, "round %d at %zu: %.*s", round, off, (int)len, m);
            cr_assert_eq(da, db, "round %d at %zu", round, off);
            off += ua;
            if (da)
                break;
        }
    }
}
