/* Request heads, strict framing and the backend's head (SPEC §7), pure:
 * no network. Every smuggling vector the SPEC names is refused with 400. */
#include "proxy/http/http.h"
#include "tests/proxy/http_oracle.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tf_http_parser_t parser;
static tf_http_request_t req;

static int parse(const char *head)
{
    tf_http_parser_init(&parser);
    return tf_http_parse_head(&parser, head, strlen(head), 32768, &req);
}

static void init(void)
{
    memset(&req, 0, sizeof req);
}

TestSuite(http, .init = init, .timeout = 10);

Test(http, a_plain_get)
{
    const char *h = "GET /a?b=c HTTP/1.1\r\nHost: portal.acme.example:8443\r\nAccept: */*\r\n\r\n";
    cr_assert_eq(parse(h), 0);
    cr_expect_eq(req.method_len, 3);
    cr_expect_eq(strncmp(req.method, "GET", 3), 0);
    cr_expect_eq(req.target_len, 6);
    cr_expect_eq(strncmp(req.target, "/a?b=c", 6), 0);
    cr_expect_eq(req.version_minor, 1);
    cr_expect_eq(req.nheaders, 2);
    cr_expect_eq(strncmp(req.host, "portal.acme.example:8443", req.host_len), 0);
    cr_expect_eq(req.body, TF_HTTP_BODY_NONE);
    cr_expect(req.keep_alive);
    cr_expect_not(req.upgrade);
    cr_expect_eq(req.head_len, strlen(h));
    cr_expect(parser.done);
}

Test(http, an_incomplete_head_wants_more_and_a_huge_one_is_431)
{
    cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n"), TF_HTTP_MORE);
    cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n\r"), TF_HTTP_MORE);
    char big[5000];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    tf_http_parser_init(&parser);
    cr_expect_eq(tf_http_parse_head(&parser, big, sizeof big, 4096, &req), 431);
}

/* Each of these is a way to make two parsers disagree on where a request
 * ends. All are 400. */
static const char *const smuggling[] = {
    /* duplicate and conflicting Content-Length */
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
    /* Content-Length with Transfer-Encoding */
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    /* Transfer-Encoding other than a final chunked */
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
    "chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n",
    "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    /* obsolete line folding */
    "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
    /* whitespace before the colon */
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n",
    /* bare LF and bare CR */
    "GET / HTTP/1.1\nHost: a\n\n",
    "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n",
    /* NUL and control bytes in headers */
    "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n",
    /* a field name that is not a token, a line without a colon */
    "GET / HTTP/1.1\r\nHost: a\r\nX Y: z\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
    /* no Host, or two, in HTTP/1.1 */
    "GET / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    /* not HTTP/1.x */
    "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "GET /\r\n\r\n",
    "\r\n",
};

Test(http, every_smuggling_vector_is_400)
{
    for (size_t i = 0; i < sizeof smuggling / sizeof smuggling[0]; i++)
        cr_expect_eq(parse(smuggling[i]), 400, "case %zu: %s", i, smuggling[i]);
}

Test(http, a_nul_byte_in_a_header_is_400)
{
    static const char h[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    tf_http_parser_init(&parser);
    cr_expect_eq(tf_http_parse_head(&parser, h, sizeof h - 1, 32768, &req), 400);
}

Test(http, content_length_body_is_followed_to_its_end)
{
    const char *h = "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
    cr_assert_eq(parse(h), 0);
    cr_expect_eq(req.body, TF_HTTP_BODY_LENGTH);
    cr_expect_eq(req.content_length, 10);
    size_t used;
    bool done;
    cr_assert_eq(tf_http_body(&parser, "01234", 5, &used, &done), 0);
    cr_expect_eq(used, 5);
    cr_expect_not(done);
    /* The rest of the body, then a pipelined request that is not ours. */
    cr_assert_eq(tf_http_body(&parser, "56789GET / HTTP/1.1\r\n", 21, &used, &done), 0);
    cr_expect_eq(used, 5);
    cr_expect(done);
}

Test(http, chunked_body_with_trailers_is_followed_to_its_end)
{
    const char *h = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    cr_assert_eq(parse(h), 0);
    cr_expect_eq(req.body, TF_HTTP_BODY_CHUNKED);
    const char *body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    const char *next = "GET /next HTTP/1.1\r\n";
    char all[256];
    snprintf(all, sizeof all, "%s%s", body, next);
    size_t used, total = 0;
    bool done = false;
    /* In small pieces, as reads deliver them. */
    for (size_t off = 0; off < strlen(all) && !done; off += used) {
        size_t n = strlen(all) - off < 7 ? strlen(all) - off : 7;
        cr_assert_eq(tf_http_body(&parser, all + off, n, &used, &done), 0);
        total += used;
        if (!done)
            cr_assert_eq(used, n);
    }
    cr_expect(done);
    cr_expect_eq(total, strlen(body));
}

/* The last ones are what a lenient chunk parser accepts and a backend
 * may read differently: stray bytes for the CRLF after data, a bare LF
 * in an extension or a size line, bare-LF trailers, a control byte in
 * an extension (found by review; each is a way to smuggle). */
static const char *const bad_chunks[] = {"zz\r\nhello\r\n0\r\n\r\n",
                                         "ffffffffffffffffff\r\n",
                                         "-5\r\nhello\r\n",
                                         "5\r\nhelloXY0\r\n\r\n",
                                         "5;\nfoo\r\nhello\r\n0\r\n\r\n",
                                         "5\rXhello\r\n0\r\n\r\n",
                                         "5\nhello\r\n0\r\n\r\n",
                                         "0\r\nX: y\n\n",
                                         "0\r\nX : y\r\n\r\n",
                                         "5;a\001b\r\nhello\r\n0\r\n\r\n",
                                         "\r\n",
                                         "5\r\nhello\r\n0\r\n\n"};

Test(http, invalid_chunk_sizes_are_400)
{
    for (size_t i = 0; i < sizeof bad_chunks / sizeof bad_chunks[0]; i++) {
        cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
        size_t used;
        bool done;
        cr_expect_eq(tf_http_body(&parser, bad_chunks[i], strlen(bad_chunks[i]), &used, &done), 400,
                     "case %zu", i);
    }
}

Test(http, connection_flags)
{
    cr_assert_eq(parse("GET / HTTP/1.0\r\n\r\n"), 0);
    cr_expect_not(req.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), 0);
    cr_expect_not(req.keep_alive);
    cr_assert_eq(parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                       "Upgrade: websocket\r\n\r\n"),
                 0);
    cr_expect(req.upgrade);
    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                       "Expect: 100-continue\r\n\r\n"),
                 0);
    cr_expect(req.expect_continue);
}

static char out[4096];

static const char *rewrite(const char *head)
{
    cr_assert_eq(parse(head), 0, "%s", head);
    tf_http_forward_t fwd = {.client_addr = "192.0.2.7", .server_port = 8443};
    long n = tf_http_rewrite_head(&req, &fwd, out, sizeof out - 1);
    cr_assert_gt(n, 0);
    out[n] = '\0';
    return out;
}

Test(http, the_backend_head_keeps_the_request_and_says_who_asked)
{
    const char *o = rewrite("GET /a?b HTTP/1.1\r\nHost: Portal.Acme.Example:8443\r\n"
                            "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: http\r\n"
                            "Accept: */*\r\n\r\n");
    cr_expect_str_eq(o, "GET /a?b HTTP/1.1\r\n"
                        "Host: Portal.Acme.Example:8443\r\n"
                        "Accept: */*\r\n"
                        "X-Forwarded-For: 192.0.2.7\r\n"
                        "X-Forwarded-Proto: https\r\n"
                        "X-Forwarded-Host: Portal.Acme.Example:8443\r\n"
                        "X-Forwarded-Port: 8443\r\n"
                        "\r\n");
}

Test(http, hop_by_hop_headers_are_removed)
{
    const char *o = rewrite("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\n"
                            "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
                            "TE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Secret: 1\r\n"
                            "X-Kept: 2\r\n\r\n");
    cr_expect_null(strstr(o, "Connection:"), "%s", o);
    cr_expect_null(strstr(o, "Keep-Alive"), "%s", o);
    cr_expect_null(strstr(o, "TE:"), "%s", o);
    cr_expect_null(strstr(o, "Trailer"), "%s", o);
    cr_expect_null(strstr(o, "Upgrade"), "%s", o);
    cr_expect_null(strstr(o, "X-Secret"), "%s", o);
    cr_expect_not_null(strstr(o, "X-Kept: 2\r\n"), "%s", o);
}

Test(http, an_upgrade_keeps_upgrade_and_connection)
{
    const char *o = rewrite("GET /chat HTTP/1.1\r\nHost: chat.acme.example\r\n"
                            "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n");
    cr_expect_not_null(strstr(o, "Upgrade: websocket\r\n"), "%s", o);
    cr_expect_not_null(strstr(o, "Connection: upgrade\r\n"), "%s", o);
    cr_expect_not_null(strstr(o, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), "%s", o);
}

Test(http, a_chunked_request_keeps_its_transfer_encoding)
{
    const char *o = rewrite("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    cr_expect_not_null(strstr(o, "Transfer-Encoding: chunked\r\n"), "%s", o);
}

Test(http, a_small_output_buffer_is_refused)
{
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    tf_http_forward_t fwd = {.client_addr = "192.0.2.7", .server_port = 443};
    char small[20];
    cr_expect_eq(tf_http_rewrite_head(&req, &fwd, small, sizeof small), -1);
}

/* ---- responses ---------------------------------------------------------- */

static tf_http_response_t resp;

static int parse_resp(const char *head, bool head_request)
{
    tf_http_parser_init_response(&parser, head_request);
    return tf_http_parse_response_head(&parser, head, strlen(head), 32768, &resp);
}

Test(http, response_bodies_are_framed_by_length_chunks_or_close)
{
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false), 0);
    cr_expect_eq(resp.body, TF_HTTP_RESP_LENGTH);
    cr_expect_eq(resp.content_length, 5);
    cr_expect(resp.keep_alive);
    size_t used = 0;
    bool done = false;
    cr_assert_eq(tf_http_body(&parser, "helloHTTP", 9, &used, &done), 0);
    cr_expect_eq(used, 5);
    cr_expect(done);

    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false), 0);
    cr_expect_eq(resp.body, TF_HTTP_RESP_CHUNKED);
    const char *chunks = "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\nrest";
    cr_assert_eq(tf_http_body(&parser, chunks, strlen(chunks), &used, &done), 0);
    cr_expect_eq(used, strlen(chunks) - 4);
    cr_expect(done);

    cr_assert_eq(parse_resp("HTTP/1.0 200 OK\r\n\r\n", false), 0);
    cr_expect_eq(resp.body, TF_HTTP_RESP_CLOSE);
    cr_expect_not(resp.keep_alive, "only the close ends it");
    cr_assert_eq(tf_http_body(&parser, "abc", 3, &used, &done), 0);
    cr_expect_eq(used, 3);
    cr_expect_not(done);
}

Test(http, head_1xx_204_and_304_responses_have_no_body)
{
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", true), 0);
    cr_expect_eq(resp.body, TF_HTTP_RESP_NONE);
    cr_expect(parser.done);
    cr_assert_eq(parse_resp("HTTP/1.1 204 No Content\r\n\r\n", false), 0);
    cr_expect_eq(resp.body, TF_HTTP_RESP_NONE);
    cr_assert_eq(parse_resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false), 0);
    cr_expect_eq(resp.body, TF_HTTP_RESP_NONE);
    cr_assert_eq(parse_resp("HTTP/1.1 100 Continue\r\n\r\n", false), 0);
    cr_expect_eq(resp.status, 100);
    cr_expect_eq(resp.body, TF_HTTP_RESP_NONE);
    cr_assert_eq(parse_resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\n\r\n",
                            false),
                 0);
    cr_expect(resp.upgrade);
}

Test(http, ambiguous_responses_are_502)
{
    cr_expect_eq(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: "
                            "chunked\r\n\r\n",
                            false),
                 502);
    cr_expect_eq(
        parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false),
        502);
    cr_expect_eq(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding :chunked\r\n\r\n", false), 502);
    cr_expect_eq(parse_resp("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", false), 502);
    cr_expect_eq(parse_resp("garbage\r\n\r\n", false), 502);
    cr_expect_eq(
        parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", false), 502,
        "a second Content-Length, even an identical one");
    cr_expect_eq(parse_resp("HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false), 0, "bare LF");
    cr_expect_eq(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chunked\r\n\r\n", false), 502,
                 "http-parser, which follows the body, would not read it as chunked");
}

Test(http, response_heads_lose_hop_by_hop_headers)
{
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
                            "Keep-Alive: timerout=5\r\nContent-Length: 0\r\nX-Kept: 1\r\n\r\n",
                            false),
                 0);
    char rout[512];
    long n = tf_http_rewrite_response_head(&resp, &(tf_http_resp_rewrite_t){.close = true}, rout, sizeof rout);
    cr_assert_gt(n, 0);
    rout[n] = '\0';
    cr_expect_str_eq(rout, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Kept: 1\r\n"
                           "Connection: close\r\n\r\n");
    n = tf_http_rewrite_response_head(&resp, &(tf_http_resp_rewrite_t){0}, rout, sizeof rout);
    rout[n] = '\0';
    cr_expect_str_eq(rout, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Kept: 1\r\n\r\n");
    cr_expect_eq(tf_http_rewrite_response_head(&resp, &(tf_http_resp_rewrite_t){0}, rout, 10), -1);
}

Test(http, connection_cannot_remove_framing_or_routing_headers)
{
    const char *o = rewrite("POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length, host, "
                            "transfer-encoding, x-drop\r\nContent-Length: 3\r\nX-Drop: 1\r\n\r\n");
    cr_expect(strstr(o, "Content-Length: 3\r\n") != NULL, "%s", o);
    cr_expect(strstr(o, "Host: a\r\n") != NULL, "%s", o);
    cr_expect(strstr(o, "X-Drop") == NULL, "%s", o);
}

Test(http, forwarded_lookalikes_are_replaced_too)
{
    const char *o = rewrite("GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\n"
                            "x-forwarded_proto: http\r\nForwarded: for=6.6.6.6\r\n"
                            "X-Forwarded-Foo: kept\r\n\r\n");
    cr_expect(strstr(o, "6.6.6.6") == NULL, "%s", o);
    cr_expect(strstr(o, ": http\r\n") == NULL, "%s", o);
    cr_expect(strstr(o, "X-Forwarded-Foo: kept") != NULL, "%s", o);
}

Test(http, an_absolute_target_must_name_the_host)
{
    cr_expect_eq(parse("GET https://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n"), 0);
    cr_expect_eq(parse("GET https://A.example:443/x HTTP/1.1\r\nHost: a.example:443\r\n\r\n"), 0);
    cr_expect_eq(parse("GET https://internal.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n"), 400);
    cr_expect_eq(parse("GET http://a.example HTTP/1.1\r\nHost: b.example\r\n\r\n"), 400);
}

/* A route in `mode: websocket` takes WebSocket upgrades only (SPEC §11). */
Test(http, a_websocket_upgrade_is_told_apart)
{
    cr_assert_eq(parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                       "Upgrade: WebSocket\r\n\r\n"),
                 0);
    cr_expect(req.websocket);
    cr_assert_eq(parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                       "Upgrade: foo/2, websocket\r\n\r\n"),
                 0);
    cr_expect(req.websocket);
    cr_assert_eq(parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                       "Upgrade: irc\r\n\r\n"),
                 0);
    cr_expect(req.upgrade);
    cr_expect_not(req.websocket);
    /* Upgrade without Connection: upgrade is no upgrade at all. */
    cr_assert_eq(parse("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"), 0);
    cr_expect_not(req.websocket);
}

Test(http, h2c_is_not_an_upgrade_inside_tls)
{
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                       "Upgrade: h2c\r\nHTTP2-Settings: AAA\r\n\r\n"),
                 0);
    cr_expect_not(req.upgrade);
    const char *o = rewrite("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                            "Upgrade: h2c\r\n\r\n");
    cr_expect(strstr(o, "h2c") == NULL, "%s", o);
}

/* ---- the head scan against http-parser ---------------------------------------- */

/* A small deterministic generator (xorshift), so a failure repeats. */
static uint32_t rnd_state = 2463534242u;

static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state % n;
}

static const char *pick(const char *const *list, size_t n)
{
    return list[rnd((uint32_t)n)];
}

#define PICK(list) pick(list, sizeof list / sizeof list[0])

static const char *const names[] = {
    "Host",
    "host",
    "HOST",
    "Content-Length",
    "content-length",
    "Transfer-Encoding",
    "Connection",
    "connection",
    "Proxy-Connection",
    "Keep-Alive",
    "Upgrade",
    "Expect",
    "X-Forwarded-For",
    "Accept",
    "User-Agent",
    "Cookie",
    "X-A_b",
    "TE",
    "Trailer",
    "X",
};
static const char *const values[] = {
    "a.example",
    "a.example:8443",
    "0",
    "5",
    "12",
    "chunked",
    "gzip, chunked",
    "close",
    "keep-alive",
    "Keep-Alive",
    "keep-alive, close",
    "Upgrade",
    "upgrade, close",
    "websocket",
    "100-continue",
    "",
    "a  b",
    "x,y ,  z",
    "\xc3\xa9t\xc3\xa9",
    "*/*",
    "closed",
    "xclose, close",
};
static const char *const ows[] = {"", "", "", " ", "  ", "\t", " \t "};

/* A head that is mostly well-formed, with the variations that matter to
 * field splitting: whitespace around values, empty values, case, repeated
 * and listed Connection tokens, obs-text. */
static size_t random_head(char *buf, size_t cap, bool response)
{
    static const char *const req_lines[] = {
        "GET / HTTP/1.1",     "POST /up?x=1 HTTP/1.1",          "HEAD /h HTTP/1.0",
        "OPTIONS * HTTP/1.1", "GET http://a.example/ HTTP/1.1", "DELETE /r HTTP/1.0",
        "PUT /p HTTP/1.1"};
    static const char *const resp_lines[] = {"HTTP/1.1 200 OK",
                                             "HTTP/1.0 200 OK",
                                             "HTTP/1.1 204 No Content",
                                             "HTTP/1.1 304 Not Modified",
                                             "HTTP/1.1 101 Switching Protocols",
                                             "HTTP/1.1 404",
                                             "HTTP/1.1 500 Internal Server Error"};
    size_t n = (size_t)snprintf(buf, cap, "%s\r\n", response ? PICK(resp_lines) : PICK(req_lines));
    size_t lines = rnd(8);
    for (size_t i = 0; i < lines && n + 200 < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s:%s%s%s\r\n", PICK(names), PICK(ows),
                              PICK(values), PICK(ows));
    if (!response && rnd(4) != 0 && n + 40 < cap)
        n += (size_t)snprintf(buf + n, cap - n, "Host: a.example\r\n");
    n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    return n;
}

Test(http, header_fields_are_what_http_parser_reads)
{
    char buf[4096];
    size_t accepted_req = 0, accepted_resp = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = random_head(buf, sizeof buf, false);
        tf_http_parser_init(&parser);
        if (tf_http_parse_head(&parser, buf, n, sizeof buf, &req) == 0) {
            accepted_req++;
            const char *why = tf_http_oracle_request(buf, &req);
            cr_assert_null(why, "%s in: %.*s", why, (int)n, buf);
        }
        n = random_head(buf, sizeof buf, true);
        bool head = rnd(2);
        static tf_http_response_t r;
        tf_http_parser_init_response(&parser, head);
        if (tf_http_parse_response_head(&parser, buf, n, sizeof buf, &r) == 0) {
            accepted_resp++;
            const char *why = tf_http_oracle_response(buf, head, &r);
            cr_assert_null(why, "%s in: %.*s", why, (int)n, buf);
        }
    }
    /* The generator must reach the comparison, not only the refusals. */
    cr_expect_gt(accepted_req, 4000);
    cr_expect_gt(accepted_resp, 4000);
}

Test(http, whitespace_around_a_value_is_not_part_of_it)
{
    const char *h = "POST /u HTTP/1.1\r\nHost:  a.example \t\r\nContent-Length: 5 \r\n"
                    "X-Empty:   \r\n\r\n";
    cr_assert_eq(parse(h), 0);
    cr_expect_eq(req.host_len, 9);
    cr_expect_eq(strncmp(req.host, "a.example", 9), 0);
    cr_expect_eq(req.body, TF_HTTP_BODY_LENGTH);
    cr_expect_eq(req.content_length, 5);
    cr_expect_eq(req.nheaders, 3);
    cr_expect_eq(req.headers[2].value_len, 0);
}

Test(http, close_wins_over_keep_alive)
{
    cr_assert_eq(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), 0);
    cr_expect_not(req.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 0);
    cr_expect(req.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: close\r\n\r\n"), 0);
    cr_expect_not(req.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"), 0);
    cr_expect(req.keep_alive);
}

/* A head of `fields` header lines (Host and X-N: v), in a static buffer. */
static const char *head_of_fields(int fields)
{
    static char h[16384];
    size_t n = (size_t)snprintf(h, sizeof h, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < fields; i++)
        n += (size_t)snprintf(h + n, sizeof h - n, "X-%d: v\r\n", i);
    snprintf(h + n, sizeof h - n, "\r\n");
    return h;
}

/* Too many header lines is a size limit (RFC 6585 §5), not a syntax
 * error: 431, and the parser says which limit it was. */
Test(http, more_header_lines_than_allowed_is_431)
{
    cr_expect_eq(parse(head_of_fields(TF_HTTP_HEADERS_DEFAULT)), 0);
    cr_expect_eq(req.nheaders, TF_HTTP_HEADERS_DEFAULT);
    cr_expect_not(tf_http_too_many_fields(&parser));
    cr_expect_eq(parse(head_of_fields(TF_HTTP_HEADERS_DEFAULT + 1)), 431);
    cr_expect(tf_http_too_many_fields(&parser));
    /* The byte limit is the other 431. */
    char big[5000];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    tf_http_parser_init(&parser);
    cr_expect_eq(tf_http_parse_head(&parser, big, sizeof big, 4096, &req), 431);
    cr_expect_not(tf_http_too_many_fields(&parser));
}

static int parse_allowing(const char *head, unsigned fields)
{
    tf_http_parser_init(&parser);
    tf_http_parser_set_max_fields(&parser, fields);
    return tf_http_parse_head(&parser, head, strlen(head), 32768, &req);
}

/* limits.max_header_fields: the array holds the most the limit allows. */
Test(http, the_header_line_limit_is_the_callers)
{
    cr_expect_eq(parse_allowing(head_of_fields(8), 8), 0);
    cr_expect_eq(parse_allowing(head_of_fields(9), 8), 431);
    cr_expect_eq(parse_allowing(head_of_fields(TF_HTTP_HEADERS_MAX), TF_HTTP_HEADERS_MAX), 0);
    cr_expect_eq(req.nheaders, TF_HTTP_HEADERS_MAX);
    cr_expect_eq(strncmp(req.headers[TF_HTTP_HEADERS_MAX - 1].name, "X-999", 5), 0);
    cr_expect_eq(parse_allowing(head_of_fields(TF_HTTP_HEADERS_MAX + 1), TF_HTTP_HEADERS_MAX), 431);
    /* Beyond the array's size is clamped to it. */
    cr_expect_eq(parse_allowing(head_of_fields(TF_HTTP_HEADERS_MAX + 1), 5000), 431);
    /* Split across reads, the count carries over. */
    const char *h = head_of_fields(9);
    tf_http_parser_init(&parser);
    tf_http_parser_set_max_fields(&parser, 8);
    cr_expect_eq(tf_http_parse_head(&parser, h, 40, 32768, &req), TF_HTTP_MORE);
    cr_expect_eq(tf_http_parse_head(&parser, h, strlen(h), 32768, &req), 431);
}

/* A backend's head with too many lines cannot be relayed: 502, as before. */
Test(http, a_response_with_too_many_header_lines_is_502)
{
    static char h[8192];
    static tf_http_response_t r;
    size_t n = (size_t)snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= TF_HTTP_HEADERS_DEFAULT; i++)
        n += (size_t)snprintf(h + n, sizeof h - n, "X-%d: v\r\n", i);
    snprintf(h + n, sizeof h - n, "\r\n");
    tf_http_parser_t p;
    tf_http_parser_init_response(&p, false);
    cr_expect_eq(tf_http_parse_response_head(&p, h, strlen(h), 32768, &r), 502);
}

Test(http, a_start_line_http_parser_refuses_is_400)
{
    cr_expect_eq(parse("BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    cr_expect_eq(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 400);
    cr_expect_eq(parse("GET /\r\nHost: a\r\n\r\n"), 400);
    cr_expect_eq(parse("GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n"), 400);
}

Test(http, status_lines)
{
    static tf_http_response_t r;
    const char *ok[] = {"HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 204\r\n\r\n",
                        "HTTP/1.0 404 Not Found\n\n", "HTTP/1.1 599 \r\n\r\n"};
    const unsigned status[] = {200, 204, 404, 599}, minor[] = {1, 1, 0, 1};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        tf_http_parser_init_response(&parser, false);
        cr_expect_eq(tf_http_parse_response_head(&parser, ok[i], strlen(ok[i]), 4096, &r), 0, "%s",
                     ok[i]);
        cr_expect_eq(r.status, status[i], "%s", ok[i]);
        cr_expect_eq(r.version_minor, minor[i], "%s", ok[i]);
    }
    const char *bad[] = {
        "HTTP/1.1 2\r\n\r\n",      "HTTP/1.1 20x OK\r\n\r\n",  "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.2 200 OK\r\n\r\n", "http/1.1 200 OK\r\n\r\n",  "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",   "HTTP/1.1 099 Odd\r\n\r\n", "HTTP/1.1 200\tOK\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tf_http_parser_init_response(&parser, false);
        cr_expect_eq(tf_http_parse_response_head(&parser, bad[i], strlen(bad[i]), 4096, &r), 502,
                     "%s", bad[i]);
    }
}

/* ---- a head fed as reads deliver it ---------------------------------------------- */

/* One message to parse: its bytes (a head, maybe a body after it), the
 * head's limit, and whether it is a response (to a HEAD request or not). */
typedef struct {
    const char *in;
    size_t n, max;
    bool response, head_request;
} msg_t;

/* One parse of a message and of the body after its head. */
typedef struct {
    tf_http_parser_t p;
    tf_http_request_t req;
    tf_http_response_t resp;
    const char *base; /* the buffer the head was last parsed in */
    int rc, body_rc;
    size_t body_used;
    bool body_done;
} run_t;

static run_t whole, pieces;

#define MSG_MAX (64 * 1024)

static int parse_in(run_t *r, const msg_t *m, const char *buf, size_t len)
{
    r->base = buf;
    return m->response ? tf_http_parse_response_head(&r->p, buf, len, m->max, &r->resp)
                       : tf_http_parse_head(&r->p, buf, len, m->max, &r->req);
}

/* Follows the body after the head, step bytes a call at most. */
static void follow_body(run_t *r, const msg_t *m, size_t step)
{
    size_t off = m->response ? r->resp.head_len : r->req.head_len;
    r->body_rc = 0;
    r->body_used = 0;
    r->body_done = r->p.done;
    while (off < m->n && !r->body_done && r->body_rc == 0) {
        size_t piece = m->n - off < step ? m->n - off : step, used = 0;
        r->body_rc = tf_http_body(&r->p, m->in + off, piece, &used, &r->body_done);
        cr_assert_leq(used, piece);
        r->body_used += used;
        off += used;
        if (used == 0)
            break;
    }
}

static void start(run_t *r, const msg_t *m)
{
    if (m->response)
        tf_http_parser_init_response(&r->p, m->head_request);
    else
        tf_http_parser_init(&r->p);
}

static void parse_whole(run_t *r, const msg_t *m)
{
    start(r, m);
    r->rc = parse_in(r, m, m->in, m->n);
    if (r->rc == 0)
        follow_body(r, m, SIZE_MAX);
}

/* The message in reads ending at each of cuts[] (ascending, below m->n),
 * then the rest, until the parser answers. Each call gets all the bytes so
 * far, in one of two buffers in turn, as a connection's input buffer grows
 * and moves: the parser keeps offsets, never pointers. The body follows in
 * pieces of step bytes. */
static void parse_in_pieces(run_t *r, const msg_t *m, const size_t *cuts, size_t ncuts, size_t step)
{
    static char bufs[2][MSG_MAX];
    size_t filled[2] = {0, 0};
    cr_assert_leq(m->n, MSG_MAX);
    start(r, m);
    r->rc = TF_HTTP_MORE;
    for (size_t k = 0; k <= ncuts && r->rc == TF_HTTP_MORE; k++) {
        size_t upto = k < ncuts ? cuts[k] : m->n, *f = &filled[k & 1];
        memcpy(bufs[k & 1] + *f, m->in + *f, upto - *f);
        *f = upto;
        r->rc = parse_in(r, m, bufs[k & 1], upto);
    }
    if (r->rc == 0)
        follow_body(r, m, step);
}

/* Where p lies in r's buffer (-1: NULL), so that two parses compare. */
static ptrdiff_t at(const run_t *r, const char *p)
{
    return p == NULL ? -1 : p - r->base;
}

static void expect_same_fields(const tf_http_header_t *a, const tf_http_header_t *b, size_t n,
                               const char *what)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert(at(&whole, a[i].name) == at(&pieces, b[i].name) &&
                      a[i].name_len == b[i].name_len &&
                      at(&whole, a[i].value) == at(&pieces, b[i].value) &&
                      a[i].value_len == b[i].value_len,
                  "%s: field %zu", what, i);
    }
}

/* a's and b's field f are equal (SAME_AT: point to the same offset). */
#define SAME(f) (a->f == b->f)
#define SAME_AT(f) (at(&whole, a->f) == at(&pieces, b->f))

static void expect_same_request(const char *what)
{
    const tf_http_request_t *a = &whole.req, *b = &pieces.req;
    cr_assert(SAME_AT(method) && SAME(method_len) && SAME_AT(target) && SAME(target_len) &&
                  SAME(version_minor) && SAME_AT(host) && SAME(host_len) && SAME(body) &&
                  SAME(content_length) && SAME(keep_alive) && SAME(upgrade) &&
                  SAME(expect_continue) && SAME(head_len) && SAME(nheaders),
              "%s", what);
    expect_same_fields(a->headers, b->headers, a->nheaders, what);
}

static void expect_same_response(const char *what)
{
    const tf_http_response_t *a = &whole.resp, *b = &pieces.resp;
    cr_assert(SAME_AT(start) && SAME(status) && SAME(version_minor) && SAME(body) &&
                  SAME(content_length) && SAME(keep_alive) && SAME(upgrade) && SAME(head_len) &&
                  SAME(nheaders),
              "%s", what);
    expect_same_fields(a->headers, b->headers, a->nheaders, what);
}

static void expect_same(const msg_t *m, const char *what)
{
    cr_assert_eq(whole.rc, pieces.rc, "%s: %d whole, %d in pieces", what, whole.rc, pieces.rc);
    if (whole.rc != 0)
        return;
    if (m->response)
        expect_same_response(what);
    else
        expect_same_request(what);
    /* After a refusal, what was used is not said. */
    cr_assert(whole.body_rc == pieces.body_rc &&
                  (whole.body_rc != 0 ||
                   (whole.body_used == pieces.body_used && whole.body_done == pieces.body_done)),
              "%s: the body: %d %zu %d whole, %d %zu %d in pieces", what, whole.body_rc,
              whole.body_used, whole.body_done, pieces.body_rc, pieces.body_used, pieces.body_done);
}

/* m fed whole, byte by byte and in random reads gives the same answer,
 * head and body; with its own limit and a small one (431 and 502 at the
 * limit whatever the reads). */
static void expect_split_invariant(msg_t m, const char *name)
{
    static size_t cuts[MSG_MAX];
    char what[160];
    for (int limit = 0; limit < 2; limit++, m.max = 40) {
        parse_whole(&whole, &m);
        for (size_t i = 0; i + 1 < m.n; i++)
            cuts[i] = i + 1;
        snprintf(what, sizeof what, "%s, max %zu, byte by byte", name, m.max);
        parse_in_pieces(&pieces, &m, cuts, m.n > 0 ? m.n - 1 : 0, 1);
        expect_same(&m, what);
        for (int round = 0; round < 8; round++) {
            size_t ncuts = 0;
            for (size_t at_ = 1 + rnd(12); at_ < m.n; at_ += 1 + rnd(m.n / 3 + 1))
                cuts[ncuts++] = at_;
            snprintf(what, sizeof what, "%s, max %zu, %zu random reads", name, m.max, ncuts + 1);
            parse_in_pieces(&pieces, &m, cuts, ncuts, 1 + rnd(9));
            expect_same(&m, what);
        }
    }
}

static void expect_corpus_split_invariant(const char *dir, bool response)
{
    const char *src = getenv("TF_SOURCE_DIR");
    cr_assert_not_null(src, "TF_SOURCE_DIR names the source tree (ctest sets it)");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/%s", src, dir);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "%s", path);
    static char data[MSG_MAX];
    size_t files = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/%s/%s", src, dir, e->d_name);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        size_t n = fread(data, 1, sizeof data, f);
        fclose(f);
        /* As the fuzz targets read them: a response's first byte says
         * whether the request was HEAD. */
        msg_t m = {.in = data, .n = n, .max = 4096, .response = response};
        if (response && n > 0) {
            m = (msg_t){.in = data + 1,
                        .n = n - 1,
                        .max = 4096,
                        .response = true,
                        .head_request = data[0] & 1};
        }
        expect_split_invariant(m, path);
        files++;
    }
    closedir(d);
    cr_expect_gt(files, 0, "%s", dir);
}

Test(http, a_head_in_pieces_reads_as_the_whole)
{
    for (size_t i = 0; i < sizeof smuggling / sizeof smuggling[0]; i++) {
        msg_t m = {.in = smuggling[i], .n = strlen(smuggling[i]), .max = 32768};
        expect_split_invariant(m, smuggling[i]);
    }
    static char buf[4096];
    for (size_t i = 0; i < sizeof bad_chunks / sizeof bad_chunks[0]; i++) {
        int n = snprintf(buf, sizeof buf,
                         "POST / HTTP/1.1\r\nHost: a\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n%s",
                         bad_chunks[i]);
        expect_split_invariant((msg_t){.in = buf, .n = (size_t)n, .max = 32768}, buf);
    }
    for (int i = 0; i < 300; i++) {
        bool response = i % 2;
        size_t n = random_head(buf, sizeof buf, response);
        expect_split_invariant(
            (msg_t){.in = buf, .n = n, .max = 4096, .response = response, .head_request = rnd(2)},
            buf);
    }
    expect_corpus_split_invariant("http", false);
    expect_corpus_split_invariant("redirect", false);
    expect_corpus_split_invariant("http_response", true);
}

/* A 32 KiB head sent one byte per read: every byte is looked at a bounded
 * number of times (scanned once, split once more at the end), where
 * scanning again from the start would look at half a billion. */
Test(http, a_head_fed_byte_by_byte_is_scanned_in_linear_time)
{
    static char head[32768 + 64];
    for (int shape = 0; shape < 4; shape++) {
        bool response = shape >= 2;
        size_t n = (size_t)snprintf(head, sizeof head, "%s\r\n",
                                    response ? "HTTP/1.1 200 OK" : "GET / HTTP/1.1\r\nHost: a");
        /* One long field, or as many lines as a head may have. */
        size_t lines = shape % 2 == 0 ? 1 : TF_HTTP_HEADERS_DEFAULT - 1;
        size_t line = (32768 - n - 2) / lines;
        for (size_t i = 0; i < lines; i++) {
            n += (size_t)snprintf(head + n, sizeof head - n, "X-%zu: ", i);
            memset(head + n, 'v', line - 9);
            n += line - 9;
            n += (size_t)snprintf(head + n, sizeof head - n, "\r\n");
        }
        n += (size_t)snprintf(head + n, sizeof head - n, "\r\n");
        cr_assert_leq(n, 32768);
        msg_t m = {.in = head, .n = n, .max = 32768, .response = response};
        static size_t cuts[32768];
        for (size_t i = 0; i + 1 < n; i++)
            cuts[i] = i + 1;
        parse_in_pieces(&pieces, &m, cuts, n - 1, 1);
        cr_assert_eq(pieces.rc, 0, "shape %d", shape);
        cr_expect_leq(pieces.p.scan.examined, 2 * n, "shape %d: %u bytes looked at for %zu", shape,
                      pieces.p.scan.examined, n);
        parse_whole(&whole, &m);
        expect_same(&m, "32 KiB byte by byte");
    }
}

/* ---- what a route changes (SPEC §11) ---- */

static const char *rewrite_with(const char *head, const tf_http_forward_t *how)
{
    cr_assert_eq(parse(head), 0, "%s", head);
    long n = tf_http_rewrite_head(&req, how, out, sizeof out - 1);
    cr_assert_gt(n, 0);
    out[n] = '\0';
    return out;
}

static const tf_conf_header_t req_set[] = {{"X-Tenant", "acme"}, {"accept", "text/html"}};
static const char *const req_remove[] = {"x-debug", "cookie2"};
static const tf_conf_header_rules_t req_rules = {req_set, 2, {req_remove, 2}};

Test(http, request_rules_set_and_remove_after_hop_by_hop_and_before_forwarded)
{
    tf_http_forward_t fwd = {.client_addr = "192.0.2.7", .server_port = 443, .rules = &req_rules};
    const char *o = rewrite_with("GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Debug: 1\r\n"
                                 "Connection: x-tenant\r\nACCEPT: a/b\r\nx-debug: 2\r\n"
                                 "X-Kept: k\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
                                 &fwd);
    cr_expect_str_eq(o, "GET /a HTTP/1.1\r\n"
                        "Host: h\r\n"
                        "X-Kept: k\r\n"
                        "X-Tenant: acme\r\n"
                        "accept: text/html\r\n"
                        "X-Forwarded-For: 192.0.2.7\r\n"
                        "X-Forwarded-Proto: https\r\n"
                        "X-Forwarded-Host: h\r\n"
                        "X-Forwarded-Port: 443\r\n"
                        "\r\n");
}

Test(http, strip_prefix_target_replaces_the_target_only)
{
    tf_http_forward_t fwd = {.client_addr = "192.0.2.7", .server_port = 443, .target = "/v1/x?q",
                             .target_len = 7};
    const char *o = rewrite_with("POST /api/v1/x?q HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
                                 &fwd);
    cr_expect(strncmp(o, "POST /v1/x?q HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n", 51) == 0,
              "%s", o);
}

Test(http, the_sticky_cookie_is_removed_from_every_cookie_field)
{
    tf_http_forward_t fwd = {.client_addr = "192.0.2.7", .server_port = 443,
                             .strip_cookie = "TFSRV"};
    const char *o = rewrite_with("GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; TFSRV=abc; b=2\r\n"
                                 "Cookie: TFSRV=\"x\"\r\nCookie: c=3\r\nCookie: TFSRVX=1;TFSRV=2\r\n"
                                 "Cookie: tfsrv=lower\r\ncookie: TFSRV,1\r\n\r\n",
                                 &fwd);
    cr_expect(strstr(o, "Host: h\r\nCookie: a=1; b=2\r\nCookie: c=3\r\nCookie: TFSRVX=1\r\n"
                        "Cookie: tfsrv=lower\r\ncookie: TFSRV,1\r\nX-Forwarded-For") != NULL,
              "%s", o);
    cr_expect(strstr(o, "TFSRV=") == NULL, "%s", o);
    o = rewrite_with("GET / HTTP/1.1\r\nHost: h\r\ncOOkie: TFSRV=1; z=9\r\n\r\n", &fwd);
    cr_expect(strstr(o, "\r\ncOOkie: z=9\r\n") != NULL, "the field's name as sent: %s", o);
}

Test(http, without_route_changes_the_head_is_as_before)
{
    const char *head = "GET /a HTTP/1.1\r\nHost: h\r\nCookie: TFSRV=1\r\nX-Debug: 1\r\n\r\n";
    tf_http_forward_t plain = {.client_addr = "192.0.2.7", .server_port = 443};
    char before[1024];
    strcpy(before, rewrite_with(head, &plain));
    static const tf_conf_header_rules_t none = {0};
    tf_http_forward_t empty_rules = {.client_addr = "192.0.2.7", .server_port = 443,
                                     .rules = &none};
    cr_expect_str_eq(rewrite_with(head, &empty_rules), before);
    cr_expect(strstr(before, "Cookie: TFSRV=1\r\nX-Debug: 1\r\n") != NULL, "%s", before);
}

Test(http, response_rules_and_extra_lines)
{
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nServer: x/1\r\nContent-Length: 0\r\n"
                            "strict-transport-security: max-age=1\r\nSERVER: again\r\n"
                            "X-Kept: 1\r\n\r\n",
                            false),
                 0);
    static const tf_conf_header_t set[] = {{"Strict-Transport-Security", "max-age=31536000"}};
    static const char *const remove[] = {"server"};
    static const tf_conf_header_rules_t rules = {set, 1, {remove, 1}};
    const char *cookie = "Set-Cookie: TFSRV=0123456789abcdef; Path=/; HttpOnly; Secure; "
                         "SameSite=Lax\r\n";
    tf_http_resp_rewrite_t how = {.close = true, .rules = &rules, .extra = cookie,
                                  .extra_len = strlen(cookie)};
    char rout[512];
    long n = tf_http_rewrite_response_head(&resp, &how, rout, sizeof rout);
    cr_assert_gt(n, 0);
    rout[n] = '\0';
    cr_expect_str_eq(rout, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Kept: 1\r\n"
                           "Strict-Transport-Security: max-age=31536000\r\n"
                           "Set-Cookie: TFSRV=0123456789abcdef; Path=/; HttpOnly; Secure; "
                           "SameSite=Lax\r\n"
                           "Connection: close\r\n\r\n");
    cr_expect_eq(tf_http_rewrite_response_head(&resp, &how, rout, (size_t)n - 1), -1);
}
