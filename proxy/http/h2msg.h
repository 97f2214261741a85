/* HTTP/2 messages as HTTP/1.1 (SPEC §12, RFC 9113 §8, RFC 8441): pure
 * translation between an HTTP/2 stream's header fields and the HTTP/1.1
 * messages the exchange (proxy/net) reads and writes. Every HTTP/2 stream
 * is relayed by the same HTTP/1.1 exchange as a request on its own
 * connection, so routing, 421, policy and forwarding have one
 * implementation; the h2 session (proxy/net/h2*.c) hands the exchange the
 * head built here as parsed fields (tf_http_request_ready() checks them as
 * it checks a head read from text), takes the exchange's response head
 * parsed (tf_h2_response_fields()) or, for the answers the proxy writes
 * itself, reads it back with tf_http_parse_response_head(); bodies keep
 * their HTTP/1.1 framing (tf_http_body_payload()).
 *
 * libnghttp2 has already checked what RFC 9113 §8 makes a stream error
 * before these are called (its HTTP messaging checks stay on): pseudo-header
 * fields known, present once and first; names lower case; no
 * connection-specific fields; `te` only "trailers"; content-length against
 * the DATA received. What is checked here is what HTTP/1.1 would need: no
 * CR, LF or NUL anywhere, no other control byte in a value, and Host
 * against :authority.
 *
 * Included by http.h; no I/O, no allocation.
 */
#ifndef TF_PROXY_HTTP_H2MSG_H
#define TF_PROXY_HTTP_H2MSG_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 2 && !defined(TF_PROXY_HTTP_PUBLIC)
#error "internal to proxy/http: include proxy/http/http.h"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One header field as HPACK decoded it (or as it will be encoded). */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} tf_h2_field_t;

/* What tf_h2_request_head() found out about the request. */
typedef struct {
    bool head;      /* :method HEAD: the response has no body */
    bool chunked;   /* the body is sent as chunked (DATA follows and no
                       content-length was given); the trailers, if any,
                       end it (tf_h2_request_trailers) */
    bool websocket; /* extended CONNECT with :protocol websocket: sent as a
                       GET with Upgrade; a 101 answer becomes :status 200 */
} tf_h2_request_info_t;

/* tf_h2_request_head(): the fields are not a request that can be relayed
 * (stream error PROTOCOL_ERROR): CR, LF or NUL in a name, a control byte
 * other than HTAB in a value or whitespace around it, no :method, no :path (except CONNECT), Host
 * differing from :authority, :protocol other than "websocket", or :protocol without CONNECT. Also
 * what libnghttp2 refuses first but the text would misread: a pseudo-header field unknown or
 * repeated, a name that is not a token, a connection-specific field (connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade), whitespace or emptiness in :method, :path or
 * :authority, and a CONNECT without :authority or with :path or :scheme. */
#define TF_H2_MALFORMED (-2)

/* A request's head for the exchange, from its HTTP/2 fields: pointers into
 * the fields' storage, the caller's array and its scratch. */
typedef struct {
    const char *method, *target;
    size_t method_len, target_len;
    size_t nfields;  /* the fields written into the caller's array */
    size_t text_len; /* the head's length as HTTP/1.1 text (limits count it) */
} tf_h2_head_t;

/* The HTTP/1.1 request head for a request's header fields (in the order
 * received), as fields the exchange takes parsed (tf_http_request_ready):
 * the method and target of "METHOD PATH HTTP/1.1" (":path" as sent;
 * extended CONNECT becomes "GET PATH", CONNECT "CONNECT AUTHORITY") in
 * *head; into out (outcap entries; nfields + 6 always do), "Host" from
 * :authority (or the first host field when there is no :authority; none
 * when neither), every other field in order with `cookie` crumbs joined
 * into one "cookie: a; b" field (RFC 9113 §8.2.3, the value written into
 * scratch, scratch_cap bytes: the cookie values' total and 2 per crumb
 * do) at the first crumb's place, host fields dropped (each must equal
 * Host, case aside), for websocket a client's sec-websocket-key dropped;
 * then, for websocket, "upgrade: websocket", "connection: upgrade",
 * "sec-websocket-key: WS_KEY" and "sec-websocket-version: 13" unless the
 * client sent it; then, when end_stream is false, no content-length was
 * given and the request is no CONNECT (a tunnel's bytes are no body),
 * "transfer-encoding: chunked" (info->chunked). ws_key: 24 base64
 * characters the caller generated (used for websocket only; NULL
 * otherwise). Returns 0, -1 when out or scratch is too small, or
 * TF_H2_MALFORMED. */
long tf_h2_request_fields(const tf_h2_field_t *fields, size_t nfields, bool end_stream,
                          const char *ws_key, tf_http_header_t *out, size_t outcap, char *scratch,
                          size_t scratch_cap, tf_h2_head_t *head, tf_h2_request_info_t *info);

/* The same head as HTTP/1.1 text into out (outlen bytes), what the
 * exchange would read if it were sent one: the request line, a line per
 * field, the empty line; at most TF_H2_TEXT_FIELDS fields and
 * TF_H2_TEXT_COOKIES bytes of joined cookies. For tests and the fuzz
 * target, which read the translation in it. Returns the head's length, -1
 * when it does not fit, or TF_H2_MALFORMED. */
#define TF_H2_TEXT_FIELDS 256
#define TF_H2_TEXT_COOKIES 8192
long tf_h2_request_head(const tf_h2_field_t *fields, size_t nfields, bool end_stream,
                        const char *ws_key, char *out, size_t outlen, tf_h2_request_info_t *info);

/* The end of a chunked request body with its trailer fields (the last
 * HEADERS of the stream, possibly none): "0\r\n", "name: value\r\n" each,
 * "\r\n". Returns the length, -1 when out is too small, or TF_H2_MALFORMED
 * (CR, LF or NUL, or a name that is not a token: a pseudo-header field). */
long tf_h2_request_trailers(const tf_h2_field_t *fields, size_t nfields, char *out, size_t outlen);

/* Chunk framing around len bytes of DATA for a chunked request body:
 * "HEX\r\n" (lower-case hex) into out (at least 20 bytes); the caller
 * sends the data, then "\r\n". len > 0: a chunk of size 0 ends the body
 * (DATA without bytes is no chunk). Returns the prefix's length. */
size_t tf_h2_chunk_prefix(size_t len, char *out);

/* The fields of the HTTP/2 response for a response head: the status as
 * ":status" (out[0], its value in status[4]; a 101 answering a websocket
 * request becomes "200"), then every field the client gets as
 * tf_http_rewrite_response_head() would write it with HOW (NULL: nothing
 * changed; the same hop-by-hop removal, HOW's rules removing, replacing
 * and setting fields, HOW's extra lines) except the fields HTTP/2 does not
 * carry (Transfer-Encoding, Upgrade, and for websocket
 * Sec-WebSocket-Accept) and the Connection line, names lower-cased into
 * `lower` (lowercap bytes). HOW's `close` means nothing here: an HTTP/2
 * stream does not end its connection. Returns the number of fields written
 * (at most outcap), or -1 when out or lower is too small. */
long tf_h2_response_fields(const tf_http_response_t *resp, const tf_http_resp_rewrite_t *how,
                           bool websocket, char status[4], tf_h2_field_t *out, size_t outcap,
                           char *lower, size_t lowercap);

/* What tf_h2_response_fields() needs for resp and HOW: returns the fields'
 * count (outcap), and the bytes of their names in *lowercap. */
size_t tf_h2_response_fields_cap(const tf_http_response_t *resp, const tf_http_resp_rewrite_t *how,
                                 size_t *lowercap);

/* One trailer field of a response for HTTP/2: false when it is one the
 * message must not carry (the connection-specific fields, as for
 * tf_h2_response_fields()); otherwise its name lower-cased into lower
 * (field->name_len bytes). */
bool tf_h2_trailer_field(const tf_http_header_t *field, char *lower);

/* A body's payload as it is decoded, for tf_http_body_payload(). */
typedef struct {
    /* Payload bytes (chunk framing removed), valid during the call. */
    void (*data)(void *ud, const char *p, size_t n);
    /* One complete trailer field of a chunked body (name as sent, value
     * without the whitespace around it), after the last data; valid
     * during the call. */
    void (*trailer)(void *ud, const tf_http_header_t *field);
    void *ud;
    /* The caller's buffer for a trailer field split across calls; a field
     * longer than scratch_cap is an error. */
    char *scratch;
    size_t scratch_cap;
    size_t scratch_len; /* bytes of it in use; 0 at the start of a body */
} tf_http_payload_t;

/* Follows a response body as tf_http_body() does (same parser, same
 * framing, after tf_http_parse_response_head()), handing its payload and
 * trailers to out instead of leaving the framing in. *used and *done as
 * tf_http_body(). Returns 0, or 502 for a body that cannot be followed or
 * a trailer field over scratch_cap. */
int tf_http_body_payload(tf_http_parser_t *p, const char *buf, size_t len, size_t *used, bool *done,
                         tf_http_payload_t *out);

#endif
