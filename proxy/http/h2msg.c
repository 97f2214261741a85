/* HTTP/2 messages as HTTP/1.1 (SPEC §12, RFC 9113 §8, RFC 8441): the head
 * the exchange reads for a stream's request, and the HTTP/2 fields of the
 * response head it writes back. See h2msg.h. */
#include "proxy/http/http_internal.h"

#include <string.h>
#include <strings.h>

typedef tf_http__out_t out_t;

/* ---- checks ---------------------------------------------------------------------- */

/* RFC 9113 §8.2.1: a field carrying CR, LF or NUL is malformed; here it
 * would also end a line of the HTTP/1.1 text early. */
static bool clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return false;
    }
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* What separates the parts of a request line: not allowed in them. */
static bool no_space(const tf_h2_field_t *f)
{
    return memchr(f->value, ' ', f->value_len) == NULL &&
           memchr(f->value, '\t', f->value_len) == NULL;
}

/* name: a lower-case literal; HTTP/2 names are lower case, but a name that
 * is not must not slip past the rules keyed on it. */
static inline bool is(const tf_h2_field_t *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && lower_eq(f->name, name, n);
}

static bool value_is(const tf_h2_field_t *f, const char *lower)
{
    size_t n = strlen(lower);
    return f->value_len == n && lower_eq(f->value, lower, n);
}

/* Methods are case-sensitive (RFC 9110 §9.1). */
static bool method_is(const tf_h2_field_t *f, const char *method)
{
    size_t n = strlen(method);
    return f->value_len == n && memcmp(f->value, method, n) == 0;
}

static bool same_value(const tf_h2_field_t *a, const tf_h2_field_t *b)
{
    return a->value_len == b->value_len && strncasecmp(a->value, b->value, a->value_len) == 0;
}

/* Connection-specific fields (RFC 9113 §8.2.2): libnghttp2 refuses them
 * first; refused here too because as HTTP/1.1 text they would change the
 * message's framing or turn it into an upgrade. */
static bool connection_specific(const tf_h2_field_t *f)
{
    return is(f, "connection") || is(f, "keep-alive") || is(f, "proxy-connection") ||
           is(f, "transfer-encoding") || is(f, "upgrade");
}

/* ---- the request head -------------------------------------------------------------- */

/* A request's fields sorted out: the pseudo-header fields and what the
 * head's other lines depend on. */
typedef struct {
    const tf_h2_field_t *method, *scheme, *authority, *path, *protocol;
    const tf_h2_field_t *host; /* the first host field */
    bool length, ws_version;   /* content-length, sec-websocket-version sent */
} req_t;

/* The slot of the pseudo-header field f, or NULL when it is unknown. */
static const tf_h2_field_t **pseudo_slot(req_t *r, const tf_h2_field_t *f)
{
    if (is(f, ":method"))
        return &r->method;
    if (is(f, ":scheme"))
        return &r->scheme;
    if (is(f, ":authority"))
        return &r->authority;
    if (is(f, ":path"))
        return &r->path;
    if (is(f, ":protocol"))
        return &r->protocol;
    return NULL;
}

/* One field of the request. Returns false when it is malformed. */
static bool sort_field(req_t *r, const tf_h2_field_t *f)
{
    /* The value as the head scan would take it from text: no control byte
     * but HTAB (CR, LF and NUL among them). A name is one of the
     * pseudo-header fields' or a token: neither has CR, LF or NUL. */
    if (!tf_http__is_value(f->value, f->value_len))
        return false;
    /* RFC 9113 §8.2.1: no whitespace around a value (text would lose it). */
    if (f->value_len > 0 && (is_ows(f->value[0]) || is_ows(f->value[f->value_len - 1])))
        return false;
    if (f->name_len > 0 && f->name[0] == ':') {
        const tf_h2_field_t **slot = pseudo_slot(r, f);
        if (slot == NULL || *slot != NULL)
            return false;
        *slot = f;
        return true;
    }
    /* A name that is not a token ("a: b") would read as another field. */
    if (!tf_http__is_token(f->name, f->name_len) || connection_specific(f))
        return false;
    if (is(f, "host") && r->host == NULL)
        r->host = f;
    r->length |= is(f, "content-length");
    r->ws_version |= is(f, "sec-websocket-version");
    return true;
}

/* The request line's parts and Host hold together (RFC 9113 §8.3.1, §8.5,
 * RFC 8441 §4); every host field names the authority. Returns false when
 * they do not. */
static bool check_request(const req_t *r, const tf_h2_field_t *fields, size_t nfields)
{
    if (r->method == NULL || r->method->value_len == 0 || !no_space(r->method))
        return false;
    bool connect = method_is(r->method, "CONNECT");
    if (r->protocol != NULL && (!connect || !value_is(r->protocol, "websocket")))
        return false;
    if (connect && r->protocol == NULL) {
        /* CONNECT names its authority and nothing else. */
        if (r->authority == NULL || r->authority->value_len == 0 || r->path != NULL ||
            r->scheme != NULL)
            return false;
    } else if (r->path == NULL || r->path->value_len == 0) {
        return false;
    }
    if ((r->path != NULL && !no_space(r->path)) ||
        (r->authority != NULL && !no_space(r->authority)))
        return false;
    /* RFC 9113 §8.3.1: an origin-form path, or "*" for OPTIONS. nghttp2
     * refuses others first; said here too, so that the head handed on
     * parsed never carries a target the text path would refuse. */
    if (r->path != NULL && r->path->value[0] != '/' &&
        !(value_is(r->path, "*") && method_is(r->method, "OPTIONS")))
        return false;
    /* Host is :authority, or the first host field without it: any other
     * host field must say the same, or routing and the backend could read
     * different names. */
    const tf_h2_field_t *auth = r->authority != NULL ? r->authority : r->host;
    for (size_t i = 0; i < nfields; i++) {
        if (is(&fields[i], "host") && !same_value(&fields[i], auth))
            return false;
    }
    return true;
}

/* The head's fields being written: out[n..cap), cookie values joined in
 * scratch[used..scap). */
typedef struct {
    tf_http_header_t *out;
    size_t n, cap;
    char *scratch;
    size_t used, scap;
    size_t text; /* the fields' bytes as HTTP/1.1 lines */
    bool overflow;
} head_out_t;

static void add(head_out_t *o, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (o->n == o->cap) {
        o->overflow = true;
        return;
    }
    o->out[o->n++] =
        (tf_http_header_t){.name = name, .name_len = nlen, .value = value, .value_len = vlen};
    o->text += nlen + vlen + 4;
}

static void add_str(head_out_t *o, const char *name, const char *value)
{
    add(o, name, strlen(name), value, strlen(value));
}

static void join(head_out_t *o, const char *s, size_t n)
{
    if (o->scap - o->used < n) {
        o->overflow = true;
        return;
    }
    memcpy(o->scratch + o->used, s, n);
    o->used += n;
}

/* Every cookie field from the first (at fields[first]) as one field: the
 * crumbs an HTTP/2 client may split (RFC 9113 §8.2.3) joined again, since
 * HTTP/1.1 allows one Cookie field. */
static void add_cookies(head_out_t *o, const tf_h2_field_t *fields, size_t nfields, size_t first)
{
    size_t start = o->used;
    join(o, fields[first].value, fields[first].value_len);
    for (size_t i = first + 1; i < nfields; i++) {
        if (!is(&fields[i], "cookie"))
            continue;
        join(o, "; ", 2);
        join(o, fields[i].value, fields[i].value_len);
    }
    /* An empty last crumb leaves "; ": trimmed, as a field line's value is. */
    while (o->used > start && is_ows(o->scratch[o->used - 1]))
        o->used--;
    if (!o->overflow)
        add(o, fields[first].name, fields[first].name_len, o->scratch + start, o->used - start);
}

/* The request's regular fields in order: host gone (Host is the
 * authority's), cookies joined at the first one's place; for websocket,
 * no sec-websocket-key but the one added after them. */
static void add_fields(head_out_t *o, const tf_h2_field_t *fields, size_t nfields, bool websocket)
{
    bool cookies = false;
    for (size_t i = 0; i < nfields; i++) {
        const tf_h2_field_t *f = &fields[i];
        if ((f->name_len > 0 && f->name[0] == ':') || is(f, "host") ||
            (websocket && is(f, "sec-websocket-key")))
            continue;
        if (is(f, "cookie")) {
            if (!cookies)
                add_cookies(o, fields, nfields, i);
            cookies = true;
            continue;
        }
        add(o, f->name, f->name_len, f->value, f->value_len);
    }
}

long tf_h2_request_fields(const tf_h2_field_t *fields, size_t nfields, bool end_stream,
                          const char *ws_key, tf_http_header_t *out, size_t outcap, char *scratch,
                          size_t scratch_cap, tf_h2_head_t *head, tf_h2_request_info_t *info)
{
    req_t r = {0};
    for (size_t i = 0; i < nfields; i++) {
        if (!sort_field(&r, &fields[i]))
            return TF_H2_MALFORMED;
    }
    if (!check_request(&r, fields, nfields))
        return TF_H2_MALFORMED;
    bool websocket = r.protocol != NULL;
    bool connect = !websocket && method_is(r.method, "CONNECT");
    *info = (tf_h2_request_info_t){
        .head = method_is(r.method, "HEAD"),
        /* A tunnel's bytes are not a body: never chunked. */
        .chunked = !end_stream && !r.length && !websocket && !connect,
        .websocket = websocket,
    };
    const tf_h2_field_t *target = connect ? r.authority : r.path;
    *head = (tf_h2_head_t){
        .method = websocket ? "GET" : r.method->value,
        .method_len = websocket ? 3 : r.method->value_len,
        .target = target->value,
        .target_len = target->value_len,
    };
    head_out_t o = {.out = out, .cap = outcap, .scratch = scratch, .scap = scratch_cap};
    const tf_h2_field_t *host = r.authority != NULL ? r.authority : r.host;
    if (host != NULL)
        add(&o, "Host", 4, host->value, host->value_len);
    add_fields(&o, fields, nfields, websocket);
    if (websocket) {
        add_str(&o, "upgrade", "websocket");
        add_str(&o, "connection", "upgrade");
        add_str(&o, "sec-websocket-key", ws_key != NULL ? ws_key : "");
        if (!r.ws_version)
            add_str(&o, "sec-websocket-version", "13");
    }
    if (info->chunked)
        add_str(&o, "transfer-encoding", "chunked");
    head->nfields = o.n;
    /* "METHOD TARGET HTTP/1.1\r\n", the fields' lines, the empty line. */
    head->text_len = head->method_len + 1 + head->target_len + 11 + o.text + 2;
    return o.overflow ? -1 : 0;
}

long tf_h2_request_head(const tf_h2_field_t *fields, size_t nfields, bool end_stream,
                        const char *ws_key, char *out, size_t outlen, tf_h2_request_info_t *info)
{
    tf_http_header_t hs[TF_H2_TEXT_FIELDS];
    char scratch[TF_H2_TEXT_COOKIES];
    tf_h2_head_t h;
    long rc = tf_h2_request_fields(fields, nfields, end_stream, ws_key, hs, TF_H2_TEXT_FIELDS,
                                   scratch, sizeof scratch, &h, info);
    if (rc != 0)
        return rc;
    out_t o = {.out = out, .cap = outlen};
    tf_http__put(&o, h.method, h.method_len);
    tf_http__put(&o, " ", 1);
    tf_http__put(&o, h.target, h.target_len);
    tf_http__put_str(&o, " HTTP/1.1\r\n");
    for (size_t i = 0; i < h.nfields; i++)
        tf_http__put_header_n(&o, hs[i].name, hs[i].name_len, hs[i].value, hs[i].value_len);
    tf_http__put(&o, "\r\n", 2);
    return o.overflow ? -1 : (long)o.len;
}

/* ---- a chunked request body ----------------------------------------------------------- */

long tf_h2_request_trailers(const tf_h2_field_t *fields, size_t nfields, char *out, size_t outlen)
{
    for (size_t i = 0; i < nfields; i++) {
        const tf_h2_field_t *f = &fields[i];
        if (!clean(f->value, f->value_len) || !tf_http__is_token(f->name, f->name_len))
            return TF_H2_MALFORMED; /* pseudo-header fields are not tokens */
    }
    out_t o = {.out = out, .cap = outlen};
    tf_http__put(&o, "0\r\n", 3);
    for (size_t i = 0; i < nfields; i++)
        tf_http__put_header_n(&o, fields[i].name, fields[i].name_len, fields[i].value,
                              fields[i].value_len);
    tf_http__put(&o, "\r\n", 2);
    return o.overflow ? -1 : (long)o.len;
}

size_t tf_h2_chunk_prefix(size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char digits[2 * sizeof len];
    size_t n = 0;
    do {
        digits[n++] = hex[len & 15];
        len >>= 4;
    } while (len > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n] = '\r';
    out[n + 1] = '\n';
    return n + 2;
}

/* ---- the response's fields ------------------------------------------------------------ */

/* Fields an HTTP/2 response must not carry (RFC 9113 §8.2.2) beyond the
 * hop-by-hop ones no client gets (tf_http__resp_passes_on), and the
 * handshake's answer of an upgrade that HTTP/2 replaced (RFC 8441 §5). */
static bool dropped(const tf_http_header_t *h, bool websocket)
{
    return name_is(h, "transfer-encoding") || name_is(h, "upgrade") ||
           (websocket && name_is(h, "sec-websocket-accept"));
}

/* name (n bytes) in lower case into out. */
static void lower_copy(const char *name, size_t n, char *out)
{
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)name[k];
        out[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
}

/* Fields a trailer section must not carry (RFC 9110 §6.5.1): framing,
 * routing, and how the content is to be read. An HTTP/2 client treats a
 * content-length among trailers as a malformed stream. */
static bool trailer_forbidden(const tf_http_header_t *h)
{
    static const char *const names[] = {
        "content-length", "host", "trailer", "content-type", "content-encoding", "content-range"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (name_is(h, names[i]))
            return true;
    }
    return false;
}

bool tf_h2_trailer_field(const tf_http_header_t *h, char *lower)
{
    if (dropped(h, false) || name_is(h, "connection") || name_is(h, "keep-alive") ||
        name_is(h, "proxy-connection") || name_is(h, "te") || trailer_forbidden(h))
        return false;
    lower_copy(h->name, h->name_len, lower);
    return true;
}

/* The response fields being written: out[n..outcap), names lower-cased
 * into lower[used..lowercap). */
typedef struct {
    tf_h2_field_t *out;
    size_t n, cap;
    char *lower;
    size_t used, lowercap;
    bool overflow;
} fields_out_t;

static void add_field(fields_out_t *o, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    if (o->n == o->cap || o->lowercap - o->used < nlen) {
        o->overflow = true;
        return;
    }
    char *lower = o->lower + o->used;
    lower_copy(name, nlen, lower);
    o->used += nlen;
    o->out[o->n++] =
        (tf_h2_field_t){.name = lower, .name_len = nlen, .value = value, .value_len = vlen};
}

/* HOW's extra lines ("Name: value\r\n" each, written by the proxy) as
 * fields. */
static void add_extra(fields_out_t *o, const char *s, size_t len)
{
    const char *end = s + len;
    while (s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        const char *colon = memchr(s, ':', (size_t)(end - s));
        if (eol == NULL || colon == NULL || colon > eol)
            return;
        const char *v = colon + 1, *e = eol;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        add_field(o, s, (size_t)(colon - s), v, (size_t)(e - v));
        s = eol + 1;
    }
}

size_t tf_h2_response_fields_cap(const tf_http_response_t *resp, const tf_http_resp_rewrite_t *how,
                                 size_t *lowercap)
{
    size_t n = 1 + resp->nheaders, lower = resp->head_len;
    if (how != NULL && how->rules != NULL) {
        n += how->rules->nset;
        for (size_t i = 0; i < how->rules->nset; i++)
            lower += strlen(how->rules->set[i].name);
    }
    if (how != NULL && how->extra != NULL) {
        for (size_t i = 0; i < how->extra_len; i++)
            n += how->extra[i] == '\n';
        lower += how->extra_len;
    }
    *lowercap = lower;
    return n;
}

long tf_h2_response_fields(const tf_http_response_t *resp, const tf_http_resp_rewrite_t *how,
                           bool websocket, char status[4], tf_h2_field_t *out, size_t outcap,
                           char *lower, size_t lowercap)
{
    if (outcap == 0)
        return -1;
    /* RFC 8441 §5: the extended CONNECT's success is a 2xx, not a 101. */
    unsigned st = websocket && resp->status == 101 ? 200 : resp->status % 1000;
    status[0] = (char)('0' + st / 100);
    status[1] = (char)('0' + st / 10 % 10);
    status[2] = (char)('0' + st % 10);
    status[3] = '\0';
    out[0] = (tf_h2_field_t){.name = ":status", .name_len = 7, .value = status, .value_len = 3};
    fields_out_t o = {.out = out, .n = 1, .cap = outcap, .lower = lower, .lowercap = lowercap};
    const tf_conf_header_rules_t *rules = how != NULL ? how->rules : NULL;
    bool conn = tf_http__has_connection(resp->headers, resp->nheaders);
    for (size_t i = 0; i < resp->nheaders; i++) {
        const tf_http_header_t *h = &resp->headers[i];
        if (tf_http__resp_passes_on(resp, conn, rules, h) && !dropped(h, websocket))
            add_field(&o, h->name, h->name_len, h->value, h->value_len);
    }
    for (size_t i = 0; rules != NULL && i < rules->nset; i++)
        add_field(&o, rules->set[i].name, strlen(rules->set[i].name), rules->set[i].value,
                  strlen(rules->set[i].value));
    if (how != NULL && how->extra != NULL)
        add_extra(&o, how->extra, how->extra_len);
    return o.overflow ? -1 : (long)o.n;
}
