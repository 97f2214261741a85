/* See http_oracle.h. */
#include "tests/proxy/http_oracle.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    tf_http_header_t headers[TF_HTTP_HEADERS_DEFAULT + 1];
    size_t n;
    const char *url;
    size_t url_len;
    bool close, keep_alive; /* both Connection tokens seen */
} ref_t;

static int on_url(http_parser *hp, const char *at, size_t len)
{
    ref_t *r = hp->data;
    r->url = at;
    r->url_len = len;
    return 0;
}

/* The whole head is given in one buffer: each field and value arrives in
 * one piece. */
static int on_field(http_parser *hp, const char *at, size_t len)
{
    ref_t *r = hp->data;
    if (r->n == TF_HTTP_HEADERS_DEFAULT + 1)
        return -1;
    r->headers[r->n++] = (tf_http_header_t){.name = at, .name_len = len, .value = at + len};
    return 0;
}

static int on_value(http_parser *hp, const char *at, size_t len)
{
    ref_t *r = hp->data;
    if (r->n == 0)
        return -1;
    /* http-parser keeps the whitespace after a value; RFC 9110 §5.5 (and
     * the proxy) do not. */
    while (len > 0 && (at[len - 1] == ' ' || at[len - 1] == '\t'))
        len--;
    r->headers[r->n - 1].value = at;
    r->headers[r->n - 1].value_len = len;
    return 0;
}

static int on_complete(http_parser *hp)
{
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_complete,
};

static bool lower_is(const char *s, size_t n, const char *lit)
{
    if (n != strlen(lit))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
        if (c != lit[i])
            return false;
    }
    return true;
}

/* Connection's tokens, read as RFC 9110 §7.6.1 lists them. http-parser's
 * own reading is not the reference here: it misses a "close" after an
 * unexpected byte in the list ("ke@, close"), and says keep-alive for an
 * HTTP/1.0 message with both "keep-alive" and "close"; the proxy closes in
 * both cases. */
static void note_tokens(ref_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const tf_http_header_t *h = &r->headers[i];
        if (!lower_is(h->name, h->name_len, "connection") &&
            !lower_is(h->name, h->name_len, "proxy-connection"))
            continue;
        const char *v = h->value, *end = v + h->value_len;
        while (v < end) {
            const char *c = memchr(v, ',', (size_t)(end - v));
            const char *e = c != NULL ? c : end, *s = v;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            const char *t = e;
            while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            r->close |= lower_is(s, (size_t)(t - s), "close");
            r->keep_alive |= lower_is(s, (size_t)(t - s), "keep-alive");
            v = c != NULL ? c + 1 : end;
        }
    }
}

/* A header name that only begins with "Transfer-Encoding" is taken for it
 * by http-parser 2.9, which then refuses a Content-Length beside it. */
static void rename_te_lookalikes(char *copy, const ref_t *r, const char *buf)
{
    for (size_t i = 0; i < r->n; i++) {
        const tf_http_header_t *h = &r->headers[i];
        if (h->name_len > 17 && lower_is(h->name, 17, "transfer-encoding"))
            copy[h->name - buf] = 'X';
    }
}

/* http-parser reads a copy of the head in which every HTAB is a space:
 * it refuses a tab after a Content-Length's digits, which RFC 9110 allows
 * as whitespace (and which the proxy drops: it sends the value alone).
 * Fields are then mapped back into buf by their offsets. */
static const char *parse(http_parser *hp, enum http_parser_type type, ref_t *r, const char *buf,
                         size_t head_len, const tf_http_header_t *ours, size_t nours)
{
    char *copy = malloc(head_len);
    if (copy == NULL)
        return "out of memory";
    for (size_t i = 0; i < head_len; i++)
        copy[i] = buf[i] == '\t' ? ' ' : buf[i];
    ref_t mine = {.n = nours};
    memcpy(mine.headers, ours, nours * sizeof *ours);
    rename_te_lookalikes(copy, &mine, buf);
    memset(r, 0, sizeof *r);
    http_parser_init(hp, type);
    hp->data = r;
    http_parser_execute(hp, &settings, copy, head_len);
    bool ok = HTTP_PARSER_ERRNO(hp) == HPE_PAUSED;
    if (r->url != NULL)
        r->url = buf + (r->url - copy);
    for (size_t i = 0; i < r->n; i++) {
        r->headers[i].name = buf + (r->headers[i].name - copy);
        r->headers[i].value = buf + (r->headers[i].value - copy);
    }
    free(copy);
    if (!ok)
        return "http-parser refuses a head the scan accepted";
    note_tokens(r);
    return NULL;
}

static const char *same_fields(const ref_t *r, const tf_http_header_t *h, size_t n)
{
    if (r->n != n)
        return "a different number of header fields";
    for (size_t i = 0; i < n; i++) {
        if (r->headers[i].name != h[i].name || r->headers[i].name_len != h[i].name_len)
            return "a different header name";
        if (r->headers[i].value_len != h[i].value_len ||
            (h[i].value_len > 0 && r->headers[i].value != h[i].value))
            return "a different header value";
    }
    return NULL;
}

/* Exported by libhttp_parser 2.9 and used by http_should_keep_alive(),
 * but left out of its header. */
int http_message_needs_eof(const http_parser *parser);

/* RFC 9112 §9.3 on the tokens, and http-parser on whether the body ends
 * with the connection. */
static bool reference_keep_alive(const http_parser *hp, const ref_t *r)
{
    bool wants = !r->close && (hp->http_minor == 1 || r->keep_alive);
    return wants && !http_message_needs_eof(hp);
}

const char *tf_http_oracle_request(const char *buf, const tf_http_request_t *req)
{
    http_parser hp;
    ref_t r;
    const char *why = parse(&hp, HTTP_REQUEST, &r, buf, req->head_len, req->headers, req->nheaders);
    if (why != NULL)
        return why;
    if (req->method != buf || req->method_len != strlen(http_method_str(hp.method)) ||
        memcmp(req->method, http_method_str(hp.method), req->method_len) != 0)
        return "a different method";
    if (r.url != req->target || r.url_len != req->target_len)
        return "a different target";
    if (hp.http_major != 1 || hp.http_minor != req->version_minor)
        return "a different version";
    why = same_fields(&r, req->headers, req->nheaders);
    if (why != NULL)
        return why;
    if (reference_keep_alive(&hp, &r) != req->keep_alive)
        return "a different persistence";
    return NULL;
}

const char *tf_http_oracle_response(const char *buf, bool head_request,
                                    const tf_http_response_t *resp)
{
    http_parser hp;
    ref_t r;
    const char *why =
        parse(&hp, HTTP_RESPONSE, &r, buf, resp->head_len, resp->headers, resp->nheaders);
    if (why != NULL)
        return why;
    if (hp.status_code != resp->status)
        return "a different status";
    if (hp.http_major != 1 || hp.http_minor != resp->version_minor)
        return "a different version";
    why = same_fields(&r, resp->headers, resp->nheaders);
    if (why != NULL)
        return why;
    /* http-parser's persistence of a response also depends on whether its
     * body ends with the connection; HEAD's never does. */
    if (head_request)
        hp.flags |= F_SKIPBODY;
    if (reference_keep_alive(&hp, &r) != resp->keep_alive)
        return "a different persistence";
    return NULL;
}
