/* HTTP/1.1 requests for the proxy (SPEC §7): the request head parsed and
 * checked strictly, the head rewritten for the backend, and the body's
 * framing followed so that its bytes can be streamed as they are.
 *
 * http-parser stays behind this header: it reads request lines and follows
 * chunked and close-delimited response bodies; header lines are split by
 * the same strict, incremental scan that checks them, which also checks a
 * chunked request body's trailer lines. Everything here is pure: no I/O, no
 * libuv, no allocation; the caller owns every buffer, and a parsed request
 * points into the caller's head buffer, which must outlive it.
 */
#ifndef TF_PROXY_HTTP_H
#define TF_PROXY_HTTP_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER < 2
#error "proxy/http is above this library (obs < http < net < ops < cli)"
#endif

#include "conf/conf.h"

#include <http_parser.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Header fields a head may have: TF_HTTP_HEADERS_DEFAULT unless the parser
 * is told otherwise (limits.max_header_fields), never more than
 * TF_HTTP_HEADERS_MAX, the size of a parsed head's array: a head is parsed
 * into a caller's struct (one per worker), so a larger limit costs no
 * allocation per request. */
#define TF_HTTP_HEADERS_DEFAULT 100
#define TF_HTTP_HEADERS_MAX 1000

/* tf_http_parse_head(): the head is not complete yet; read more. */
#define TF_HTTP_MORE 1

typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} tf_http_header_t;

typedef enum {
    TF_HTTP_BODY_NONE,    /* no body: the message ends with its head */
    TF_HTTP_BODY_LENGTH,  /* Content-Length bytes follow */
    TF_HTTP_BODY_CHUNKED, /* chunked, with optional trailers */
} tf_http_body_kind_t;

typedef struct {
    const char *method;
    size_t method_len;
    const char *target; /* the request target exactly as sent */
    size_t target_len;
    unsigned version_minor; /* HTTP/1.0 or HTTP/1.1 */
    tf_http_header_t headers[TF_HTTP_HEADERS_MAX];
    size_t nheaders;
    const char *host; /* the Host header's value (port included), or NULL */
    size_t host_len;
    tf_http_body_kind_t body;
    uint64_t content_length;
    bool keep_alive;      /* the client wants the connection kept */
    bool upgrade;         /* Connection: upgrade with an Upgrade header */
    bool websocket;       /* an upgrade whose Upgrade header lists "websocket" */
    bool expect_continue; /* Expect: 100-continue */
    bool parsed;          /* handed on parsed (an HTTP/2 stream's): no text, the
                             method and target are not a request line */
    size_t head_len;      /* bytes of the head, up to and including its empty line
                             (parsed: the bytes it would be as text) */
} tf_http_request_t;

/* How a response's body ends. */
typedef enum {
    TF_HTTP_RESP_NONE,    /* HEAD, 1xx, 204, 304, or Content-Length: 0 */
    TF_HTTP_RESP_LENGTH,  /* Content-Length bytes */
    TF_HTTP_RESP_CHUNKED, /* chunked, with optional trailers */
    TF_HTTP_RESP_CLOSE,   /* everything until the backend closes */
} tf_http_resp_body_t;

/* A backend's response head. Pointers into the caller's buffer. */
typedef struct {
    const char *start; /* the status line */
    unsigned status;
    unsigned version_minor;
    tf_http_header_t headers[TF_HTTP_HEADERS_MAX];
    size_t nheaders;
    tf_http_resp_body_t body;
    uint64_t content_length;
    bool keep_alive; /* the backend will keep the connection open after it */
    bool upgrade;    /* 101 Switching Protocols */
    size_t head_len;
} tf_http_response_t;

/* Where the scan of a head stands between reads: offsets into the head,
 * not pointers, so that the caller may move its buffer between calls. */
typedef struct {
    uint32_t pos;        /* bytes scanned: the next call starts here */
    uint32_t line;       /* where the line being scanned starts */
    uint32_t colon;      /* that line's colon, once scanned */
    uint32_t start_len;  /* the start line with its line end */
    uint32_t examined;   /* bytes looked at in all: linear in the head's length */
    uint16_t nfields;    /* field lines complete */
    uint16_t max_fields; /* more field lines than this: too many */
    uint8_t state;
    bool lenient; /* a bare LF ends a line (responses) */
} tf_http_scan_t;

/* One message's parser (a request or a response). Embed it in the
 * connection; no allocation. */
typedef struct {
    tf_http_scan_t scan; /* the head, then a chunked request body's trailers */
    http_parser parser;  /* request lines; the heads and bodies of chunked
                            and close-delimited responses */
    const char **target;
    size_t *target_len;
    bool skip_body; /* a response to HEAD */
    bool done;
    /* A chunked request body is followed by tf_http_body()'s own strict
     * state machine (http-parser accepts stray bytes in chunk framing). */
    bool strict_chunked;
    /* A Content-Length body is counted here, not parsed. */
    bool by_length;
    uint64_t length_left;
    uint8_t chunk_state;
    uint8_t chunk_digits;
    uint64_t chunk_left;
    /* tf_http_body_payload(): the length of the name of the trailer field
     * gathered in the caller's scratch once its value has begun; 0 while
     * its name is read. */
    uint32_t trailer_name;
} tf_http_parser_t;

/* Readies the parser for the next request on the connection, allowing
 * TF_HTTP_HEADERS_DEFAULT header fields. */
void tf_http_parser_init(tf_http_parser_t *p);

/* Allows a request head up to n header fields (clamped to
 * 1..TF_HTTP_HEADERS_MAX); call after tf_http_parser_init(), before the
 * first parse. */
void tf_http_parser_set_max_fields(tf_http_parser_t *p, unsigned n);

/* After tf_http_parse_head() returned 431: true when the head had more
 * header fields than allowed, false when it outgrew max_head bytes. */
bool tf_http_too_many_fields(const tf_http_parser_t *p);

/* Readies the parser for a backend's response; head_request: the request
 * was HEAD (the response has no body whatever its headers say). */
void tf_http_parser_init_response(tf_http_parser_t *p, bool head_request);

/* Parses the request head at the start of buf (len bytes read so far).
 * Incremental: after TF_HTTP_MORE, call again with the same parser and the
 * head's bytes so far, the previous ones unchanged at the start of buf
 * (which may have moved); the scan resumes where the previous call
 * stopped, so a head costs time linear in its length however it is split.
 * Returns 0 with *req filled (pointers into buf) when the head is complete,
 * TF_HTTP_MORE when it is not yet, or the HTTP status to answer before
 * closing: 400 for any framing or syntax problem (bare LF, obsolete line
 * folding, control bytes or NUL in a header, whitespace before a colon,
 * duplicate or conflicting Content-Length, Content-Length with
 * Transfer-Encoding, Transfer-Encoding other than a final chunked, a
 * request line that is not HTTP/1.x), 431 when the head exceeds max_head
 * bytes without ending or has more header fields than allowed (see
 * tf_http_too_many_fields()). Request smuggling has no way through: whatever is
 * ambiguous is refused. A malformed line is refused as soon as its bad
 * byte arrives, without waiting for the head to end. */
int tf_http_parse_head(tf_http_parser_t *p, const char *buf, size_t len, size_t max_head,
                       tf_http_request_t *req);

/* A request head whose fields a caller split itself (an HTTP/2 stream's,
 * handed on parsed: method, target, version_minor, headers, nheaders,
 * head_len as the text's length, parsed set, the rest zero): what
 * tf_http_parse_head() checks once a head is complete — the fields'
 * count against tf_http_parser_set_max_fields(), head_len against
 * max_head, a method http-parser knows, the framing and Host — with the
 * same answers (431, 400), and
 * p (tf_http_parser_init()) readied for the body as tf_http_parse_head()
 * leaves it. 0 or the status. */
int tf_http_request_ready(tf_http_parser_t *p, tf_http_request_t *req, size_t max_head);

/* Follows the body of the request whose head was parsed: len bytes that
 * arrived after the head (or after the previous call). *used receives how
 * many belong to this message (forward them as they are, chunk framing
 * included); *done becomes true when the message is complete — the rest of
 * buf is the next pipelined request. Returns 0, or 400 for a malformed
 * chunked body (invalid chunk size, bad framing). */
int tf_http_body(tf_http_parser_t *p, const char *buf, size_t len, size_t *used, bool *done);

/* Parses a backend's response head at the start of buf, incrementally as
 * tf_http_parse_head() does. Returns 0 with
 * *resp filled, TF_HTTP_MORE, or 502 for a response that cannot be relayed
 * safely (syntax, conflicting or duplicate Content-Length, Content-Length
 * with Transfer-Encoding, a head over max_head bytes or with more than
 * TF_HTTP_HEADERS_DEFAULT header fields). Lenient where that
 * is harmless (bare LF line ends): backends are configured, not hostile,
 * but their framing must never be ambiguous. Bodies are then followed with
 * tf_http_body(); a TF_HTTP_RESP_CLOSE body is never done before EOF. */
int tf_http_parse_response_head(tf_http_parser_t *p, const char *buf, size_t len, size_t max_head,
                                tf_http_response_t *resp);

/* Readies p to follow the body of the response resp, whose head another
 * parser read (a head handed on parsed, to an HTTP/2 stream), as
 * tf_http_parse_response_head() would have after reading it: then
 * tf_http_body() or tf_http_body_payload() on the bytes after the head.
 * head_request as tf_http_parser_init_response(). 0, or 502. */
int tf_http_parser_follow(tf_http_parser_t *p, const tf_http_response_t *resp, bool head_request);

/* What tlsfront changes in a backend's response head besides hop-by-hop
 * fields. Zero-initialized: nothing but "Connection: close" when CLOSE. */
typedef struct {
    bool close;                          /* add "Connection: close" */
    const tf_conf_header_rules_t *rules; /* the route's response rules, or NULL */
    const char *extra;                   /* whole lines ending in CRLF (Set-Cookie), or NULL */
    size_t extra_len;
} tf_http_resp_rewrite_t;

/* Writes the head to send the client: the status line and headers as
 * received without the hop-by-hop ones (Connection and the headers it
 * names, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade unless
 * upgrading) and without those HOW's rules remove or set; then the rules'
 * set lines, HOW's extra lines, and "Connection: close" when HOW says so,
 * or "Connection: upgrade" for a 101. Returns the length or -1 (out too
 * small). */
long tf_http_rewrite_response_head(const tf_http_response_t *resp,
                                   const tf_http_resp_rewrite_t *how, char *out, size_t outlen);

/* The reason phrase of a status tlsfront answers itself ("Error" for others). */
const char *tf_http_reason(unsigned status);

/* What the backend is told about the client (SPEC §7), and what the route
 * changes (SPEC §11). Zero-initialized fields change nothing, and cost
 * nothing: the usual request is rewritten as fast as without routes. */
typedef struct {
    const char *client_addr; /* "192.0.2.7" or "2001:db8::7", no port */
    unsigned server_port;    /* the port the client connected to */
    /* The request target to send in place of the one received (strip_prefix),
     * or NULL. */
    const char *target;
    size_t target_len;
    /* The route's request header rules (set, remove), or NULL. Applied after
     * hop-by-hop removal and before the X-Forwarded-* lines, which no rule
     * can touch. */
    const tf_conf_header_rules_t *rules;
    /* The sticky cookie's name (balance: cookie), or NULL: its crumb is
     * removed from every Cookie field; a field left empty is dropped. */
    const char *strip_cookie;
} tf_http_forward_t;

/* Writes the head to send the backend into out (outlen bytes): the request
 * line and Host exactly as received, hop-by-hop headers removed
 * (Connection and the headers it names, Keep-Alive, Proxy-Connection, TE,
 * Trailer, and Upgrade unless upgrading), client-sent X-Forwarded-*
 * replaced by X-Forwarded-For, -Proto (https), -Host and -Port, and
 * "Connection: upgrade" kept for upgrades. Returns the length written, or -1
 * when out is too small. */
long tf_http_rewrite_head(const tf_http_request_t *req, const tf_http_forward_t *fwd, char *out,
                          size_t outlen);

/* Routing pieces (SPEC §11): paths, route tables, targets, cookies,
 * allow lists, answers; HTTP/2 messages as HTTP/1.1 (SPEC §12). */
#define TF_PROXY_HTTP_PUBLIC
#include "proxy/http/route.h"
#include "proxy/http/h2msg.h"
#undef TF_PROXY_HTTP_PUBLIC

#endif
