/* Request and response heads, strict framing and bodies (SPEC §7); the
 * heads sent on are in rewrite.c. See http.h. */
#include "proxy/http/http_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- the byte-level scan http-parser is lenient about ------------------------ */

/* Byte classes: a token character (RFC 9110 §5.6.2: letters, digits and
 * !#$%&'*+-.^_`|~), a byte allowed in a header value (no control byte but
 * HTAB), a byte allowed in a start line (no control byte at all). */
enum { B_TCHAR = 1, B_VALUE = 2, B_LINE = 4 };

static const unsigned char byte_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, /* */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* */
    6, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, /*  !"#$%&'()*+,-./ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, /* 0-9 :;<=>? */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* @A-O */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7, /* P-Z [\]^_ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* `a-o */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, /* p-z {|}~ DEL */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0x80-0xff: obs-text */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
};

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* ---- the head scan: resumable, every line checked, field lines split ------------ */

/* What the next byte of a head may be. A scan stops at the end of what has
 * arrived in any of these states and resumes there with the next bytes
 * (picohttpparser's `last_len`, taken to the byte): no byte is checked
 * twice however the head is split across reads, and field lines that ended
 * in earlier reads are split once more when the head is complete. */
enum {
    HS_START,      /* the start line's first byte */
    HS_START_LINE, /* the rest of the start line: no control byte at all */
    HS_START_LF,   /* the LF after the start line's CR */
    HS_FIELD,      /* a field line's first byte, or the CR of the empty line */
    HS_NAME,       /* a field name (a token), up to its colon */
    HS_VALUE,      /* a field value: no control byte but HTAB */
    HS_FIELD_LF,   /* the LF after a field line's CR */
    HS_END_LF,     /* the LF of the empty line that ends the head */
    HS_DONE,       /* the head ended: it is pos bytes */
    HS_BAD,        /* the head is malformed */
    HS_MANY,       /* the head has more field lines than allowed */
};

/* What a scan found. */
enum { SCAN_MORE, SCAN_DONE, SCAN_BAD, SCAN_MANY };

/* The first index from i on (below end) whose byte is not of class cls.
 * Four bytes a step while they last: most of a head is runs of one class,
 * and one test of four classes combined costs less than four tests. */
static inline size_t skip_class(const unsigned char *b, size_t i, size_t end, unsigned cls)
{
    while (end - i >= 4 && (byte_class[b[i]] & byte_class[b[i + 1]] & byte_class[b[i + 2]] &
                            byte_class[b[i + 3]] & cls))
        i += 4;
    while (i < end && (byte_class[b[i]] & cls))
        i++;
    return i;
}

bool tf_http__is_token(const char *s, size_t n)
{
    return n > 0 && skip_class((const unsigned char *)s, 0, n, B_TCHAR) == n;
}

bool tf_http__is_value(const char *s, size_t n)
{
    return skip_class((const unsigned char *)s, 0, n, B_VALUE) == n;
}

bool tf_http__known_method(const char *m, size_t n)
{
    /* http-parser's list: what it accepts on an HTTP/1.1 request line. */
    for (int i = 0;; i++) {
        const char *name = http_method_str((enum http_method)i);
        if (name[0] == '<') /* "<unknown>": past the last */
            return false;
        if (strlen(name) == n && memcmp(name, m, n) == 0)
            return true;
    }
}

/* The state after c, the byte just read (*i is past it), ended a line's
 * content: lf_state, which reads the line's LF, after a CR; lf_state at
 * once for an LF without CR where that is allowed (s->lenient), with *i
 * back on the LF so that it is read there; else malformed. */
static inline int line_end(const tf_http_scan_t *s, unsigned char c, int lf_state, size_t *i)
{
    if (c == '\r')
        return lf_state;
    if (c != '\n' || !s->lenient)
        return HS_BAD;
    (*i)--;
    return lf_state;
}

/* A field line [s, e) (without its line end) with its colon at colon: the
 * name, and the value without the whitespace around it (RFC 9110 §5.5). */
static tf_http_header_t field_at(const unsigned char *b, size_t s, size_t colon, size_t e)
{
    size_t v = colon + 1;
    while (v < e && is_ows(b[v]))
        v++;
    while (e > v && is_ows(b[e - 1]))
        e--;
    return (tf_http_header_t){.name = (const char *)b + s,
                              .name_len = colon - s,
                              .value = (const char *)b + v,
                              .value_len = e - v};
}

/* The field line that started at s->line ended with the LF at lf: kept in
 * fields, unless fields is NULL (trailers are checked, not kept). False
 * when fields is full: more header lines than the head may have. */
static bool field_end(tf_http_scan_t *s, const unsigned char *b, size_t lf,
                      tf_http_header_t *fields)
{
    if (fields != NULL) {
        if (s->nfields >= s->max_fields)
            return false;
        fields[s->nfields++] = field_at(b, s->line, s->colon, lf - (b[lf - 1] == '\r'));
    }
    s->line = (uint32_t)(lf + 1);
    return true;
}

/* Scans b[s->pos, end): every LF must follow a CR and every CR precede an
 * LF (s->lenient: a line may end with LF alone; a backend's line ends are
 * harmless), no field line may start with whitespace (obsolete folding), a
 * field name is a token with the colon right after it (whitespace before a
 * colon is how requests get smuggled past lenient parsers), and no control
 * byte but HTAB is in a value, none at all in the start line. Field lines
 * go to fields as they end. Returns SCAN_DONE when the empty line has
 * ended the head (s->pos bytes), SCAN_BAD, SCAN_MANY (more field lines than
 * s->max_fields) or SCAN_MORE. */
static int scan(tf_http_scan_t *s, const unsigned char *b, size_t end, tf_http_header_t *fields)
{
    size_t i = s->pos;
    int st = s->state;
    while (i < end && st < HS_DONE) {
        unsigned char c = b[i++];
        switch (st) {
        case HS_START:
            st = byte_class[c] & B_LINE ? HS_START_LINE : HS_BAD;
            break;
        case HS_START_LINE:
            if (byte_class[c] & B_LINE) {
                i = skip_class(b, i, end, B_LINE);
                break;
            }
            st = line_end(s, c, HS_START_LF, &i);
            break;
        case HS_START_LF:
            st = c == '\n' ? HS_FIELD : HS_BAD;
            s->start_len = s->line = (uint32_t)i;
            break;
        case HS_FIELD:
            if (byte_class[c] & B_TCHAR) {
                st = HS_NAME;
                i = skip_class(b, i, end, B_TCHAR);
                break;
            }
            st = line_end(s, c, HS_END_LF, &i);
            break;
        case HS_END_LF:
            st = c == '\n' ? HS_DONE : HS_BAD;
            break;
        case HS_NAME:
            if (byte_class[c] & B_TCHAR) {
                i = skip_class(b, i, end, B_TCHAR);
                break;
            }
            if (c != ':') {
                st = HS_BAD;
                break;
            }
            st = HS_VALUE;
            s->colon = (uint32_t)(i - 1);
            i = skip_class(b, i, end, B_VALUE);
            break;
        case HS_VALUE:
            if (byte_class[c] & B_VALUE) {
                i = skip_class(b, i, end, B_VALUE);
                break;
            }
            st = line_end(s, c, HS_FIELD_LF, &i);
            break;
        case HS_FIELD_LF:
            if (c != '\n')
                st = HS_BAD;
            else
                st = field_end(s, b, i - 1, fields) ? HS_FIELD : HS_MANY;
            break;
        }
    }
    s->pos = (uint32_t)i;
    s->state = (uint8_t)st;
    if (st == HS_DONE || st == HS_BAD || st == HS_MANY)
        return st == HS_DONE ? SCAN_DONE : st == HS_BAD ? SCAN_BAD : SCAN_MANY;
    return SCAN_MORE;
}

/* Splits again the field lines [s->start_len, to) that ended in earlier
 * calls, into fields from the first: their bytes were checked as they
 * arrived, and the buffer that held them may have moved since. */
static void split_fields(tf_http_scan_t *s, const unsigned char *b, size_t to,
                         tf_http_header_t *fields)
{
    s->examined += (uint32_t)(to - s->start_len);
    for (size_t line = s->start_len, k = 0; line < to; k++) {
        size_t lf = (size_t)((const unsigned char *)memchr(b + line, '\n', to - line) - b);
        size_t colon = (size_t)((const unsigned char *)memchr(b + line, ':', lf - line) - b);
        fields[k] = field_at(b, line, colon, lf - (b[lf - 1] == '\r'));
        line = lf + 1;
    }
}

/* Scans what has arrived of a head (len bytes at buf, of which at most max
 * may be head) from where the previous call stopped. Once the head is
 * complete, fields holds all its field lines: those of this call were kept
 * as they ended, the earlier ones are split again here, once. */
static int scan_head(tf_http_scan_t *s, const char *buf, size_t len, size_t max,
                     tf_http_header_t *fields)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t end = len < max ? len : max;
    size_t from = s->pos, earlier = s->line;
    bool resumed = s->nfields > 0;
    int rc = scan(s, b, end < UINT32_MAX ? end : UINT32_MAX, fields);
    s->examined += (uint32_t)(s->pos - from);
    if (rc == SCAN_DONE && resumed)
        split_fields(s, b, earlier, fields);
    return rc;
}

const char *tf_http_reason(unsigned status)
{
    switch (status) {
    case 200:
        return "OK";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 421:
        return "Misdirected Request";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "Error";
}

/* ---- http-parser callbacks -------------------------------------------------------- */

/* http-parser reads every request line (method, target, version), and
 * the whole head only of a response whose body it then follows (chunked or
 * close-delimited). Header fields and status lines are the scan's. */

/* The parser that embeds hp: hp->data stays free for tf_http_body_payload()'s
 * output, so that both body followers share these callbacks. */
static tf_http_parser_t *owner(http_parser *hp)
{
    return (tf_http_parser_t *)(void *)((char *)hp - offsetof(tf_http_parser_t, parser));
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    tf_http_parser_t *p = owner(hp);
    if (p->target != NULL) {
        *p->target = at;
        *p->target_len = len;
    }
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    tf_http_parser_t *p = owner(hp);
    http_parser_pause(hp, 1);
    /* 1: no body follows whatever the headers say (a response to HEAD). */
    return p->skip_body ? 1 : 0;
}

static int on_message_complete(http_parser *hp)
{
    tf_http_parser_t *p = owner(hp);
    p->done = true;
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

void tf_http_parser_init(tf_http_parser_t *p)
{
    memset(p, 0, sizeof *p);
    http_parser_init(&p->parser, HTTP_REQUEST);
    p->scan.max_fields = TF_HTTP_HEADERS_DEFAULT;
}

void tf_http_parser_set_max_fields(tf_http_parser_t *p, unsigned n)
{
    p->scan.max_fields = (uint16_t)(n < 1 ? 1 : n > TF_HTTP_HEADERS_MAX ? TF_HTTP_HEADERS_MAX : n);
}

bool tf_http_too_many_fields(const tf_http_parser_t *p)
{
    return p->scan.state == HS_MANY;
}

void tf_http_parser_init_response(tf_http_parser_t *p, bool head_request)
{
    memset(p, 0, sizeof *p);
    http_parser_init(&p->parser, HTTP_RESPONSE);
    p->skip_body = head_request;
    p->scan.lenient = true;
    p->scan.max_fields = TF_HTTP_HEADERS_DEFAULT;
}

/* The request line (line bytes, its line end included) through
 * http-parser: true when it took all of it as HTTP/1.0 or 1.1. The parser
 * then waits for header lines that it is never given. */
static bool parse_request_line(tf_http_parser_t *p, const char *buf, size_t line)
{
    size_t n = http_parser_execute(&p->parser, &settings, buf, line);
    return n == line && HTTP_PARSER_ERRNO(&p->parser) == HPE_OK && p->parser.http_major == 1 &&
           p->parser.http_minor <= 1;
}

/* A response's status line, "HTTP/1.x DDD[ reason]" (RFC 9112 §4), its
 * bytes already checked by the scan (line: its length with its line end).
 * Read here rather than by http-parser, which cost most of a keep-alive
 * response head's parsing on this one line; http-parser still reads the
 * whole head of a response whose body it follows. */
static bool parse_status_line(const char *s, size_t line, tf_http_response_t *r)
{
    size_t len = line - 1 - (line >= 2 && s[line - 2] == '\r');
    if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return false;
    unsigned status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        status = status * 10 + (unsigned)(s[i] - '0');
    }
    if ((len > 12 && s[12] != ' ') || status < 100)
        return false;
    r->version_minor = (unsigned)(s[7] - '0');
    r->status = status;
    return true;
}

/* A chunked or close-delimited response body is followed by http-parser:
 * it reads the whole head from the start, so that it stands where the body
 * begins with its own view of the framing. Returns 0 or -1. */
static int parser_to_body(tf_http_parser_t *p, const char *buf, size_t head)
{
    http_parser_init(&p->parser, HTTP_RESPONSE);
    size_t n = http_parser_execute(&p->parser, &settings, buf, head);
    if (HTTP_PARSER_ERRNO(&p->parser) != HPE_PAUSED)
        return -1;
    /* http-parser stops just before the head's last LF: feed it. */
    http_parser_pause(&p->parser, 0);
    if (n < head) {
        http_parser_execute(&p->parser, &settings, buf + n, head - n);
        enum http_errno e = HTTP_PARSER_ERRNO(&p->parser);
        if (e != HPE_OK && e != HPE_PAUSED)
            return -1;
    }
    return 0;
}

/* ---- what the headers say -------------------------------------------------------- */

/* Calls fn for each comma-separated token of a header value, trimmed of
 * optional whitespace; stops and returns true when fn does. */
bool tf_http__each_token(const char *v, size_t len, bool (*fn)(const char *, size_t, void *),
                         void *ud)
{
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        size_t s = i, e = j;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && fn(v + s, e - s, ud))
            return true;
        i = j + 1;
    }
    return false;
}

/* want: a lower-case string. */
static bool token_eq(const char *t, size_t n, void *want)
{
    return n == strlen(want) && lower_eq(t, want, n);
}

typedef struct {
    size_t count;
    bool last_chunked;
} te_scan_t;

static bool te_token(const char *t, size_t n, void *ud)
{
    te_scan_t *s = ud;
    s->count++;
    s->last_chunked = token_eq(t, n, "chunked");
    return false;
}

/* What Connection (and Proxy-Connection, which clients still send and
 * http-parser reads as Connection) says about the connection. */
typedef struct {
    bool close, keep_alive, upgrade;
} conn_tokens_t;

static bool conn_token(const char *t, size_t n, void *ud)
{
    conn_tokens_t *c = ud;
    c->close |= token_eq(t, n, "close");
    c->keep_alive |= token_eq(t, n, "keep-alive");
    c->upgrade |= token_eq(t, n, "upgrade");
    return false;
}

/* Persistence (RFC 9112 §9.3): HTTP/1.1 unless "close", HTTP/1.0 only with
 * "keep-alive"; "close" wins when both are there. */
static bool persistent(const conn_tokens_t *c, unsigned version_minor)
{
    return !c->close && (version_minor == 1 || c->keep_alive);
}

/* Content-Length: digits only, once. */
static bool parse_length(const tf_http_header_t *h, uint64_t *out)
{
    uint64_t v = 0;
    if (h->value_len == 0 || h->value_len > 18)
        return false;
    for (size_t i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(h->value[i] - '0');
    }
    *out = v;
    return true;
}

/* An absolute-form target ("GET https://a.example/x") names its own
 * authority, which a backend may prefer to Host: it must be the Host that
 * routing and the 421 check looked at. */
static bool authority_matches_host(const tf_http_request_t *r)
{
    const char *t = r->target;
    size_t n = r->target_len;
    if (n == 0 || t[0] == '/' || (n == 1 && t[0] == '*'))
        return true;
    const char *sep = memchr(t, ':', n);
    if (sep == NULL || (size_t)(sep - t) + 3 > n || sep[1] != '/' || sep[2] != '/')
        return false;
    const char *a = sep + 3, *end = t + n;
    const char *e = a;
    while (e < end && *e != '/' && *e != '?' && *e != '#')
        e++;
    return r->host != NULL && (size_t)(e - a) == r->host_len &&
           strncasecmp(a, r->host, r->host_len) == 0;
}

/* The framing rules of RFC 9112 §6, without any of its leniencies. Inlined
 * in both callers: a call costs the HTTP/1.1 head's parse measurably
 * (bench/load/callgrind.sh). */
__attribute__((always_inline)) static inline int check_framing(tf_http_request_t *r)
{
    size_t lengths = 0, tes = 0, hosts = 0;
    te_scan_t te = {0};
    conn_tokens_t conn = {0};
    bool has_upgrade = false, websocket = false;
    for (size_t i = 0; i < r->nheaders; i++) {
        const tf_http_header_t *h = &r->headers[i];
        if (name_is(h, "content-length")) {
            if (++lengths > 1 || !parse_length(h, &r->content_length))
                return 400;
        } else if (name_is(h, "transfer-encoding")) {
            /* The value "chunked" alone: a list with empty elements
             * (",chunked") is read differently by different parsers. */
            tes++;
            tf_http__each_token(h->value, h->value_len, te_token, &te);
            te.last_chunked &= token_eq(h->value, h->value_len, "chunked");
        } else if (name_is(h, "host")) {
            hosts++;
            r->host = h->value;
            r->host_len = h->value_len;
        } else if (name_is(h, "connection") || name_is(h, "proxy-connection")) {
            tf_http__each_token(h->value, h->value_len, conn_token, &conn);
        } else if (name_is(h, "upgrade")) {
            /* h2c is cleartext HTTP/2: meaningless inside TLS, and a tunnel
             * would carry requests past per-request routing. */
            has_upgrade = !tf_http__each_token(h->value, h->value_len, token_eq, "h2c");
            websocket |= tf_http__each_token(h->value, h->value_len, token_eq, "websocket");
        } else if (name_is(h, "expect")) {
            r->expect_continue = h->value_len == 12 && !strncasecmp(h->value, "100-continue", 12);
        }
    }
    if (tes > 0 && (lengths > 0 || !te.last_chunked || te.count != 1 || r->version_minor == 0))
        return 400;
    if (hosts > 1 || (hosts == 0 && r->version_minor == 1))
        return 400;
    if (!authority_matches_host(r))
        return 400;
    r->body =
        tes > 0 ? TF_HTTP_BODY_CHUNKED
                : (lengths > 0 && r->content_length > 0 ? TF_HTTP_BODY_LENGTH : TF_HTTP_BODY_NONE);
    r->upgrade = conn.upgrade && has_upgrade;
    r->websocket = r->upgrade && websocket;
    r->keep_alive = persistent(&conn, r->version_minor);
    return 0;
}

/* ---- parsing ------------------------------------------------------------------- */

static inline int framing_to_body(tf_http_parser_t *p, tf_http_request_t *req);

int tf_http_parse_head(tf_http_parser_t *p, const char *buf, size_t len, size_t max_head,
                       tf_http_request_t *req)
{
    /* The header array is only read up to nheaders: not cleared. */
    memset(req, 0, offsetof(tf_http_request_t, headers));
    memset(&req->nheaders, 0, sizeof *req - offsetof(tf_http_request_t, nheaders));
    int scanned = scan_head(&p->scan, buf, len, max_head, req->headers);
    if (scanned == SCAN_BAD)
        return 400;
    if (scanned == SCAN_MANY)
        return 431;
    if (scanned == SCAN_MORE)
        return len >= max_head ? 431 : TF_HTTP_MORE;
    size_t head = p->scan.pos;
    req->nheaders = p->scan.nfields;
    p->target = &req->target;
    p->target_len = &req->target_len;
    if (!parse_request_line(p, buf, p->scan.start_len))
        return 400;
    req->method = buf;
    req->method_len = strcspn(buf, " ");
    req->version_minor = p->parser.http_minor;
    req->head_len = head;
    return framing_to_body(p, req);
}

/* The framing of a complete head, and p readied for its body: 0 or the
 * status to answer. */
__attribute__((always_inline)) static inline int framing_to_body(tf_http_parser_t *p,
                                                                 tf_http_request_t *req)
{
    int status = check_framing(req);
    if (status != 0)
        return status;
    /* Request bodies are followed here, never by http-parser: a message
     * without one is complete with its head. */
    if (req->body == TF_HTTP_BODY_NONE)
        p->done = true;
    p->strict_chunked = req->body == TF_HTTP_BODY_CHUNKED;
    p->by_length = req->body == TF_HTTP_BODY_LENGTH;
    p->length_left = req->content_length;
    return 0;
}

int tf_http_request_ready(tf_http_parser_t *p, tf_http_request_t *req, size_t max_head)
{
    if (req->nheaders > p->scan.max_fields) {
        p->scan.state = HS_MANY; /* for tf_http_too_many_fields() */
        return 431;
    }
    if (req->head_len > max_head)
        return 431;
    /* What the request line's parse refuses in text (http-parser reads
     * the methods it knows, case-sensitive). */
    if (!tf_http__known_method(req->method, req->method_len))
        return 400;
    return framing_to_body(p, req);
}

/* ---- chunked request bodies, strictly (RFC 9112 §7.1) ---------------------------- */

enum {
    CH_SIZE,    /* hex digits of a chunk size */
    CH_SIZE_WS, /* whitespace after the size, before ';' or CR */
    CH_EXT,     /* a chunk extension, up to CR */
    CH_SIZE_LF, /* the LF ending a size line */
    CH_DATA,    /* chunk_left bytes of data */
    CH_DATA_CR, /* the CRLF after the data */
    CH_DATA_LF,
    CH_TRAILERS, /* trailer lines and the final CRLF: the head's field scan */
    CH_DONE,
};

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One byte of framing (not chunk data). Returns false when it is invalid. */
static bool chunk_step(tf_http_parser_t *p, unsigned char c)
{
    switch (p->chunk_state) {
    case CH_SIZE:
        if (hexval(c) >= 0) {
            if (++p->chunk_digits > 15)
                return false; /* sizes past 2^60 are not bodies, they are attacks */
            p->chunk_left = p->chunk_left * 16 + (uint64_t)hexval(c);
            return true;
        }
        if (p->chunk_digits == 0)
            return false;
        if (c == ' ' || c == '\t') {
            p->chunk_state = CH_SIZE_WS;
            return true;
        }
        /* ';' or CR right after the digits: as after whitespace */
        __attribute__((fallthrough));
    case CH_SIZE_WS:
        if (c == ' ' || c == '\t')
            return true;
        if (c == ';') {
            p->chunk_state = CH_EXT;
            return true;
        }
        if (c == '\r') {
            p->chunk_state = CH_SIZE_LF;
            return true;
        }
        return false;
    case CH_EXT:
        if (c == '\r')
            p->chunk_state = CH_SIZE_LF;
        return c == '\r' || (byte_class[c] & B_VALUE);
    case CH_SIZE_LF:
        if (c != '\n')
            return false;
        p->chunk_digits = 0;
        p->chunk_state = p->chunk_left > 0 ? CH_DATA : CH_TRAILERS;
        /* Trailer lines are field lines, strictly: the same rules. */
        p->scan = (tf_http_scan_t){.state = HS_FIELD};
        return true;
    case CH_DATA_CR:
        p->chunk_state = CH_DATA_LF;
        return c == '\r';
    case CH_DATA_LF:
        p->chunk_state = CH_SIZE;
        return c == '\n';
    }
    return false;
}

/* Scans trailer bytes (len at buf): *i advances by what the scan took.
 * Returns SCAN_MORE, SCAN_DONE (the body ended) or SCAN_BAD. */
static int trailers(tf_http_parser_t *p, const char *buf, size_t len, size_t *i)
{
    /* Offsets count from this read's bytes: trailer lines are not kept. */
    p->scan.pos = 0;
    int rc = scan(&p->scan, (const unsigned char *)buf, len < UINT32_MAX ? len : UINT32_MAX, NULL);
    *i += p->scan.pos;
    if (rc == SCAN_DONE)
        p->chunk_state = CH_DONE;
    return rc;
}

static int chunked_body(tf_http_parser_t *p, const char *buf, size_t len, size_t *used, bool *done)
{
    size_t i = 0;
    while (i < len && p->chunk_state != CH_DONE) {
        if (p->chunk_state == CH_DATA) {
            size_t take = len - i;
            if (take > p->chunk_left)
                take = (size_t)p->chunk_left;
            i += take;
            p->chunk_left -= take;
            if (p->chunk_left == 0)
                p->chunk_state = CH_DATA_CR;
            continue;
        }
        if (p->chunk_state == CH_TRAILERS) {
            if (trailers(p, buf + i, len - i, &i) == SCAN_BAD)
                return 400;
            continue;
        }
        if (!chunk_step(p, (unsigned char)buf[i]))
            return 400;
        i++;
    }
    *used = i;
    p->done = p->chunk_state == CH_DONE;
    *done = p->done;
    return 0;
}

/* Where a body ends, for both followers: tf_http_body() passes its bytes on
 * as they are, tf_http_body_payload() hands out what they carry. One rule,
 * so that the two never disagree on *used and *done: hs are http-parser's
 * callbacks, which read the bytes without changing where it stops, and out
 * (NULL for tf_http_body()) receives a Content-Length body's bytes and is
 * hs's hp->data. Returns 0, or -1 for a body that cannot be followed. */
static int follow_body(tf_http_parser_t *p, const char *buf, size_t len, size_t *used, bool *done,
                       const http_parser_settings *hs, tf_http_payload_t *out)
{
    *used = 0;
    *done = p->done;
    if (p->strict_chunked && !p->done)
        return len == 0 ? 0 : (chunked_body(p, buf, len, used, done) != 0 ? -1 : 0);
    if (p->done || len == 0)
        return 0;
    if (p->by_length) {
        size_t n = len < p->length_left ? len : (size_t)p->length_left;
        p->length_left -= n;
        p->done = p->length_left == 0;
        if (out != NULL)
            out->data(out->ud, buf, n);
        *used = n;
        *done = p->done;
        return 0;
    }
    http_parser_pause(&p->parser, 0);
    p->parser.data = out;
    size_t n = http_parser_execute(&p->parser, hs, buf, len);
    p->parser.data = NULL;
    enum http_errno e = HTTP_PARSER_ERRNO(&p->parser);
    if (e != HPE_OK && e != HPE_PAUSED)
        return -1;
    *used = n;
    *done = p->done;
    return 0;
}

int tf_http_body(tf_http_parser_t *p, const char *buf, size_t len, size_t *used, bool *done)
{
    return follow_body(p, buf, len, used, done, &settings, NULL) == 0 ? 0 : 400;
}

/* ---- a response body's payload (for HTTP/2) ------------------------------------------ */

/* http-parser hands a chunked body's trailer fields to on_header_field and
 * on_header_value, in pieces when a field spans reads: a field is gathered
 * in the caller's scratch, its name first, then its value from
 * p->trailer_name on, and handed out once the next field or the end of the
 * body shows that it is complete. */

static bool gather(tf_http_payload_t *out, const char *at, size_t len)
{
    if (out->scratch_cap - out->scratch_len < len)
        return false;
    memcpy(out->scratch + out->scratch_len, at, len);
    out->scratch_len += len;
    return true;
}

/* Hands out the field gathered, if any, its value without the whitespace
 * around it (which RFC 9113 §8.2.1 does not allow in a field value). */
static void trailer_out(tf_http_parser_t *p, tf_http_payload_t *out)
{
    if (out->scratch_len == 0)
        return;
    const unsigned char *b = (const unsigned char *)out->scratch;
    size_t colon = p->trailer_name > 0 ? p->trailer_name : out->scratch_len;
    tf_http_header_t f = {.name = out->scratch, .name_len = colon};
    size_t v = colon, e = out->scratch_len;
    while (v < e && is_ows(b[v]))
        v++;
    while (e > v && is_ows(b[e - 1]))
        e--;
    f.value = out->scratch + v;
    f.value_len = e - v;
    out->trailer(out->ud, &f);
    out->scratch_len = 0;
    p->trailer_name = 0;
}

static int payload_on_body(http_parser *hp, const char *at, size_t len)
{
    tf_http_payload_t *out = hp->data;
    out->data(out->ud, at, len);
    return 0;
}

static int payload_on_field(http_parser *hp, const char *at, size_t len)
{
    tf_http_parser_t *p = owner(hp);
    tf_http_payload_t *out = hp->data;
    if (p->trailer_name > 0) /* a value was being read: that field is complete */
        trailer_out(p, out);
    return gather(out, at, len) ? 0 : -1;
}

static int payload_on_value(http_parser *hp, const char *at, size_t len)
{
    tf_http_parser_t *p = owner(hp);
    tf_http_payload_t *out = hp->data;
    if (p->trailer_name == 0) {
        if (out->scratch_len == 0 || out->scratch_len > UINT32_MAX)
            return -1; /* a value without a name: http-parser never does that */
        p->trailer_name = (uint32_t)out->scratch_len;
    }
    return gather(out, at, len) ? 0 : -1;
}

static int payload_on_complete(http_parser *hp)
{
    trailer_out(owner(hp), hp->data);
    return on_message_complete(hp);
}

static const http_parser_settings payload_settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = payload_on_body,
    .on_header_field = payload_on_field,
    .on_header_value = payload_on_value,
    .on_message_complete = payload_on_complete,
};

int tf_http_body_payload(tf_http_parser_t *p, const char *buf, size_t len, size_t *used, bool *done,
                         tf_http_payload_t *out)
{
    /* A chunked request body is followed by chunked_body(), which keeps its
     * framing: no payload to hand out. Only responses come here. */
    if (p->strict_chunked) {
        *used = 0;
        *done = p->done;
        return 502;
    }
    return follow_body(p, buf, len, used, done, &payload_settings, out) == 0 ? 0 : 502;
}

/* ---- responses -------------------------------------------------------------------- */

/* Framing of a response (RFC 9112 §6.3): anything ambiguous is refused,
 * a second Content-Length too, even an identical one. */
static int response_framing(tf_http_parser_t *p, tf_http_response_t *r, conn_tokens_t *conn)
{
    size_t lengths = 0, tes = 0;
    te_scan_t te = {0};
    for (size_t i = 0; i < r->nheaders; i++) {
        const tf_http_header_t *h = &r->headers[i];
        if (name_is(h, "content-length")) {
            if (++lengths > 1 || !parse_length(h, &r->content_length))
                return 502;
        } else if (name_is(h, "transfer-encoding")) {
            tes++;
            tf_http__each_token(h->value, h->value_len, te_token, &te);
        } else if (name_is(h, "connection") || name_is(h, "proxy-connection")) {
            tf_http__each_token(h->value, h->value_len, conn_token, conn);
        }
    }
    if (tes > 0 && lengths > 0)
        return 502;
    unsigned st = r->status;
    if (p->skip_body || st / 100 == 1 || st == 204 || st == 304)
        r->body = TF_HTTP_RESP_NONE;
    else if (tes > 0)
        r->body = te.last_chunked ? TF_HTTP_RESP_CHUNKED : TF_HTTP_RESP_CLOSE;
    else if (lengths > 0)
        r->body = r->content_length > 0 ? TF_HTTP_RESP_LENGTH : TF_HTTP_RESP_NONE;
    else
        r->body = TF_HTTP_RESP_CLOSE;
    return 0;
}

int tf_http_parse_response_head(tf_http_parser_t *p, const char *buf, size_t len, size_t max_head,
                                tf_http_response_t *resp)
{
    memset(resp, 0, offsetof(tf_http_response_t, headers));
    memset(&resp->nheaders, 0, sizeof *resp - offsetof(tf_http_response_t, nheaders));
    int scanned = scan_head(&p->scan, buf, len, max_head, resp->headers);
    if (scanned == SCAN_BAD || scanned == SCAN_MANY)
        return 502;
    if (scanned == SCAN_MORE)
        return len >= max_head ? 502 : TF_HTTP_MORE;
    size_t head = p->scan.pos;
    resp->nheaders = p->scan.nfields;
    resp->start = buf;
    if (!parse_status_line(buf, p->scan.start_len, resp))
        return 502;
    resp->head_len = head;
    resp->upgrade = resp->status == 101;
    conn_tokens_t conn = {0};
    int status = response_framing(p, resp, &conn);
    if (status != 0)
        return status;
    if (resp->body == TF_HTTP_RESP_CHUNKED || resp->body == TF_HTTP_RESP_CLOSE) {
        /* http-parser follows the body: a framing it reads otherwise
         * (",chunked") would leave the two views of the body apart. */
        if (parser_to_body(p, buf, head) != 0 ||
            !(p->parser.flags & F_CHUNKED) != (resp->body != TF_HTTP_RESP_CHUNKED))
            return 502;
    }
    resp->keep_alive = persistent(&conn, resp->version_minor) && resp->body != TF_HTTP_RESP_CLOSE;
    if (resp->body == TF_HTTP_RESP_NONE)
        p->done = true;
    p->by_length = resp->body == TF_HTTP_RESP_LENGTH;
    p->length_left = resp->content_length;
    return 0;
}

int tf_http_parser_follow(tf_http_parser_t *p, const tf_http_response_t *resp, bool head_request)
{
    tf_http_parser_init_response(p, head_request);
    /* http-parser must read a head before a body it follows: the smallest
     * one with the same framing (the status does not matter once the body
     * kind is known). */
    static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    static const char close_delimited[] = "HTTP/1.1 200 OK\r\n\r\n";
    switch (resp->body) {
    case TF_HTTP_RESP_NONE:
        p->done = true;
        return 0;
    case TF_HTTP_RESP_LENGTH:
        p->by_length = true;
        p->length_left = resp->content_length;
        return 0;
    case TF_HTTP_RESP_CHUNKED:
        return parser_to_body(p, chunked, sizeof chunked - 1) == 0 ? 0 : 502;
    case TF_HTTP_RESP_CLOSE:
        return parser_to_body(p, close_delimited, sizeof close_delimited - 1) == 0 ? 0 : 502;
    }
    return 502;
}
