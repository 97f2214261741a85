/* See h2.h and h2_internal.h: one HTTP/2 stream as the client stream of a
 * child connection. Functions appear in the order a stream meets them: its
 * header fields, the request handed to the exchange, the response read back,
 * the stream operations, the end. */
#include "proxy/net/h2_internal.h"

#include "common/err.h"
#include "proxy/net/exchange.h"
#include "proxy/obs/obs.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* A response head split across writes may grow to this (as a backend's,
 * exchange_internal.h). */
#define H2_RESP_HEAD_MAX (64u * 1024u)
/* A response's trailer fields, in all. */
#define H2_TRAILERS_MAX (16u * 1024u)

/* ---- header fields ---------------------------------------------------- */

void tf_h2__fields_clear(tf_h2_fields_t *f)
{
    free(f->text);
    free(f->at);
    *f = (tf_h2_fields_t){0};
}

static void block_free(void *block)
{
    tf_h2__fields_clear(block);
    free(block);
}

/* The loop's header block, made at the first use; NULL without memory. */
static tf_h2_fields_t *block_of(tf_worker_t *w)
{
    if (w->h2_block == NULL) {
        w->h2_block = calloc(1, sizeof(tf_h2_fields_t));
        w->h2_block_free = block_free;
    }
    return w->h2_block;
}

void tf_h2__block_begin(tf_worker_t *w)
{
    tf_h2_fields_t *f = block_of(w);
    if (f != NULL)
        f->len = f->n = f->bytes = f->cookies = 0;
}

/* Appends name: value (copied) to f. 0 or TF_ENOMEM. */
static int fields_add(tf_h2_fields_t *f, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    if (f->n == f->ncap) {
        size_t ncap = f->ncap ? 2 * f->ncap : 16;
        tf_h2_field_at_t *at = realloc(f->at, ncap * sizeof *at);
        if (at == NULL)
            return TF_ENOMEM;
        f->at = at;
        f->ncap = ncap;
    }
    size_t at_name = f->len;
    if (tf_bytes_append(&f->text, &f->len, &f->cap, 1024, name, nlen) != 0 ||
        tf_bytes_append(&f->text, &f->len, &f->cap, 1024, value, vlen) != 0)
        return TF_ENOMEM;
    f->at[f->n++] = (tf_h2_field_at_t){
        .name = (uint32_t)at_name,
        .name_len = (uint32_t)nlen,
        .value = (uint32_t)(at_name + nlen),
        .value_len = (uint32_t)vlen,
    };
    return 0;
}

/* The fields as tf_h2_field_t (pointers into f->text) into out (f->n). */
static void fields_view(const tf_h2_fields_t *f, tf_h2_field_t *out)
{
    for (size_t i = 0; i < f->n; i++) {
        const tf_h2_field_at_t *a = &f->at[i];
        out[i] = (tf_h2_field_t){f->text + a->name, a->name_len, f->text + a->value, a->value_len};
    }
}

bool tf_h2__field(tf_h2_t *h2, tf_h2s_t *st, const uint8_t *name, size_t nlen, const uint8_t *value,
                  size_t vlen)
{
    const tf_conf_limits_t *lim = tf_conf_limits(h2->c->gen->conf);
    tf_h2_fields_t *f = block_of(h2->c->worker);
    if (f == NULL) {
        st->too_big = true;
        return true;
    }
    /* Counted as the HTTP/1.1 line it becomes: "name: value\r\n"; a cookie
     * crumb after the first as the "; value" it adds to that line, and not
     * as a field (browsers send one crumb per cookie, RFC 9113 §8.2.3). */
    bool cookie = nlen == 6 && memcmp(name, "cookie", 6) == 0; /* lower-case: nghttp2 checks */
    f->bytes += cookie && f->cookies > 0 ? vlen + 2 : nlen + vlen + 4;
    if (f->bytes > (size_t)lim->max_header_bytes * H2_HPACK_ABUSE)
        return false;
    if (st->too_big)
        return true;
    size_t fields = f->n - (f->cookies > 1 ? f->cookies - 1 : 0); /* as handed on */
    if (f->bytes > lim->max_header_bytes || fields >= (size_t)lim->max_header_fields + 8 ||
        fields_add(f, (const char *)name, nlen, (const char *)value, vlen) != 0)
        st->too_big = true;
    else
        f->cookies += cookie;
    return true;
}

/* ---- the request ------------------------------------------------------- */

/* An answer of the session's own, for a request that never reaches an
 * exchange (a header block over limits.max_header_bytes: 431). */
static void answer_local(tf_h2_t *h2, tf_h2s_t *st, unsigned status)
{
    char code[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), '\0'};
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-length", (uint8_t *)"0", 14, 1, NGHTTP2_NV_FLAG_NONE},
    };
    TF_CONN_LOG(TF_LOG_INFO, h2->c, "HTTP/2 stream %d: header block over limits: %u", (int)st->id,
                status);
    tf_metrics_request(h2->c->worker->metrics, NULL, status, 0);
    tf_metrics_request_protocol(h2->c->worker->metrics, true);
    if (nghttp2_submit_response(h2->ng, st->id, nv, 2, NULL) != 0)
        nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    tf_h2__wake(h2);
}

/* A nonce for the backend's WebSocket handshake: the client's own key is
 * not sent over HTTP/2 (RFC 8441 §5), and the accept value is checked by
 * nobody, so it needs to be unique, not secret. */
static void ws_key(const tf_h2s_t *st, char out[25])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint64_t a = st->conn.id * 0x9E3779B97F4A7C15ull ^ (uint64_t)st->id;
    uint64_t b = (uint64_t)(uintptr_t)st ^ uv_hrtime();
    uint8_t raw[16];
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    size_t o = 0;
    for (size_t i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    out[o++] = b64[raw[15] >> 2];
    out[o++] = b64[(raw[15] & 3) << 4];
    out[o++] = '=';
    out[o++] = '=';
    out[o] = '\0';
}

/* Whether the fields have :protocol (extended CONNECT, RFC 8441): only
 * then does the head need a WebSocket key. Pseudo-header fields come
 * first. */
static bool has_protocol(const tf_h2_field_t *v, size_t n)
{
    for (size_t i = 0; i < n && v[i].name_len > 0 && v[i].name[0] == ':'; i++) {
        if (v[i].name_len == 9 && memcmp(v[i].name, ":protocol", 9) == 0)
            return true;
    }
    return false;
}

/* The stream's request head, checked, into a block of its own (the loop's
 * header block is reused by the next HEADERS before the exchange reads
 * it): the fields for the exchange, the decoded text they point to, the
 * joined cookies and the WebSocket key. 0, or the tf_h2_request_fields()
 * failure (TF_H2_MALFORMED, -1: too many fields). */
static long request_head(tf_h2s_t *st, bool end_stream)
{
    tf_h2_fields_t *f = block_of(st->h2->c->worker);
    /* Room for the fields handed on (pseudo-headers and cookie crumbs
     * fold, Host and up to five added fields come in); past
     * TF_HTTP_HEADERS_MAX, tf_h2_request_fields() says -1 when the fields
     * it writes do not fit. */
    size_t cap = f->n + 6 < TF_HTTP_HEADERS_MAX ? f->n + 6 : TF_HTTP_HEADERS_MAX;
    size_t scap = f->len + 2 * f->n;
    tf_http_header_t *mem = malloc(cap * sizeof *mem + f->len + scap + 25);
    tf_h2_field_t stackv[32];
    tf_h2_field_t *v = f->n <= 32 ? stackv : malloc(f->n * sizeof *v);
    long rc = -1;
    if (mem != NULL && v != NULL) {
        char *text = (char *)(mem + cap), *scratch = text + f->len, *key = scratch + scap;
        key[0] = '\0'; /* no :protocol, no key */
        if (f->len > 0)
            memcpy(text, f->text, f->len);
        fields_view(&(tf_h2_fields_t){.text = text, .at = f->at, .n = f->n}, v);
        if (has_protocol(v, f->n))
            ws_key(st, key);
        rc = tf_h2_request_fields(v, f->n, end_stream, key, mem, cap, scratch, scap, &st->head,
                                  &st->info);
    }
    if (v != stackv)
        free(v);
    if (rc != 0) {
        free(mem);
        return rc;
    }
    st->head_mem = mem;
    return 0;
}

/* Hands the request head to the exchange, parsed, and lets go of it. */
static void hand_head(tf_h2s_t *st, tf_stream_t *s)
{
    tf_http_request_t *r = &st->conn.worker->req_head;
    /* The header array is only read up to nheaders: not cleared. */
    memset(r, 0, offsetof(tf_http_request_t, headers));
    memset(&r->nheaders, 0, sizeof *r - offsetof(tf_http_request_t, nheaders));
    tf_http_header_t *mem = st->head_mem;
    st->head_mem = NULL;
    r->method = st->head.method;
    r->method_len = st->head.method_len;
    r->target = st->head.target;
    r->target_len = st->head.target_len;
    r->version_minor = 1;
    memcpy(r->headers, mem, st->head.nfields * sizeof *mem);
    r->nheaders = st->head.nfields;
    r->head_len = st->head.text_len;
    r->parsed = true;
    assert(s->sink->head != NULL); /* an HTTP/2 stream starts with its exchange */
    s->sink->head(s, r);
    free(mem);
}

void tf_h2__request(tf_h2_t *h2, tf_h2s_t *st, bool end_stream)
{
    st->req_ended = end_stream;
    if (st->too_big || block_of(h2->c->worker) == NULL) {
        answer_local(h2, st, 431);
        return;
    }
    long rc = request_head(st, end_stream);
    if (rc != 0) {
        if (rc == -1) {
            answer_local(h2, st, 431);
            return;
        }
        TF_CONN_LOG(TF_LOG_INFO, h2->c, "HTTP/2 stream %d: malformed request: RST_STREAM",
                    (int)st->id);
        nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
        tf_h2__wake(h2);
        return;
    }
    tf_conn_init_child(&st->conn, sizeof *st, h2->c, &tf_stream_h2_ops, st);
    st->conn.peer_text = h2->peer_text;
    st->started = true;
    tf_metrics_h2_stream(h2->c->worker->metrics);
    tf_http_parser_init_response(&st->rp, st->info.head);
    st->active = true;
    h2->nactive++;
    int err = tf_hx_start(&st->conn);
    if (err != 0)
        tf_conn_close(&st->conn, TF_LOG_WARN, "out of memory");
    tf_h2__wake(h2);
}

void tf_h2__request_trailers(tf_h2_t *h2, tf_h2s_t *st)
{
    st->req_ended = true;
    if (st->started && st->h2 != NULL && st->info.chunked) {
        /* Trailers over the limits are dropped: the body still ends. */
        tf_h2_fields_t *f = st->too_big ? NULL : block_of(h2->c->worker);
        size_t n = f != NULL ? f->n : 0;
        tf_h2_field_t stackv[16];
        tf_h2_field_t *v = n <= 16 ? stackv : malloc(n * sizeof *v);
        size_t cap = (f != NULL ? f->len : 0) + 4 * n + 8;
        char *text = malloc(cap);
        long len = -1;
        if (v != NULL && text != NULL) {
            if (f != NULL)
                fields_view(f, v);
            len = tf_h2_request_trailers(v, n, text, cap);
            /* Trailers that cannot be relayed are dropped, the body ends. */
            if (len < 0)
                len = tf_h2_request_trailers(NULL, 0, text, cap);
        }
        if (len < 0 || tf_h2__buf_append(&st->in, text, (size_t)len) != 0)
            tf_conn_close(&st->conn, TF_LOG_WARN, "out of memory");
        if (v != stackv)
            free(v);
        free(text);
    }
    st->too_big = false;
    tf_h2__wake(h2);
}

int tf_h2__request_data(tf_h2s_t *st, const uint8_t *data, size_t len)
{
    if (st->info.chunked) {
        char prefix[24];
        size_t n = tf_h2_chunk_prefix(len, prefix);
        if (tf_h2__buf_append(&st->in, prefix, n) != 0 ||
            tf_h2__buf_append(&st->in, data, len) != 0 ||
            tf_h2__buf_append(&st->in, "\r\n", 2) != 0)
            return TF_ENOMEM;
    } else if (tf_h2__buf_append(&st->in, data, len) != 0) {
        return TF_ENOMEM;
    }
    st->unconsumed += len;
    tf_h2__wake(st->h2);
    return 0;
}

void tf_h2__request_end(tf_h2s_t *st)
{
    st->req_ended = true;
    if (!st->started || st->h2 == NULL)
        return;
    if (st->info.chunked && tf_h2__buf_append(&st->in, "0\r\n\r\n", 5) != 0) {
        tf_conn_close(&st->conn, TF_LOG_WARN, "out of memory");
        return;
    }
    tf_h2__wake(st->h2);
}

void tf_h2__deliver(tf_h2s_t *st)
{
    if (!st->started)
        return;
    if (st->close_cb != NULL) {
        if (st->end_sent || st->closed)
            tf_h2__stream_finish(st);
        return;
    }
    tf_h2_t *h2 = st->h2;
    tf_stream_t *s = &st->conn.client;
    if (st->tell_reset) {
        st->tell_reset = st->tell_shut = st->tell_written = false;
        if (tf_stream_live(s))
            s->sink->error(s, UV_ECONNRESET, "HTTP/2 stream reset");
        return;
    }
    if (st->tell_shut && (s->flags & TF_STREAM_SHUT_WANTED)) {
        st->tell_shut = false;
        s->flags |= TF_STREAM_SHUT_SENT | TF_STREAM_SHUT_DONE;
        if (tf_stream_live(s))
            s->sink->shut(s);
    }
    if (st->tell_written) {
        st->tell_written = false;
        if (tf_stream_live(s))
            s->sink->written(s);
    }
    if (tf_stream_live(s) && (s->flags & TF_STREAM_READING) && st->head_mem != NULL)
        hand_head(st, s);
    if (tf_stream_live(s) && (s->flags & TF_STREAM_READING) && st->in.len > 0) {
        tf_h2_buf_t in = st->in;
        size_t consumed = st->unconsumed;
        st->in = (tf_h2_buf_t){0};
        st->unconsumed = 0;
        s->sink->data(s, tf_h2__buf_data(&in), in.len);
        tf_h2__buf_free(&in);
        /* The stream's window reopens for what its exchange took; the
         * connection's too, even when the stream has just been reset. */
        if (consumed > 0)
            nghttp2_session_consume(h2->ng, st->id, consumed);
    }
    if (tf_stream_live(s) && (s->flags & TF_STREAM_READING) && st->head_mem == NULL &&
        st->in.len == 0 && st->req_ended && !st->eof_told) {
        st->eof_told = true;
        s->sink->eof(s);
    }
}

/* ---- the response, read back from what the exchange writes ------------- */

static void resume(tf_h2s_t *st)
{
    if (st->deferred && st->h2 != NULL && (st->out.len > 0 || st->out_ended)) {
        st->deferred = false;
        nghttp2_session_resume_data(st->h2->ng, st->id);
    }
    tf_h2__wake(st->h2);
}

int tf_h2__out_append(tf_h2s_t *st, const void *data, size_t len)
{
    int rc = tf_h2__buf_append(&st->out, data, len);
    if (rc == 0 && st->h2 != NULL)
        st->h2->out_total += len;
    return rc;
}

void tf_h2__out_consume(tf_h2s_t *st, size_t n)
{
    if (n > st->out.len)
        n = st->out.len;
    if (st->h2 != NULL)
        st->h2->out_total -= n;
    tf_h2__buf_consume(&st->out, n);
}

static void payload_data(void *ud, const char *p, size_t n)
{
    tf_h2s_t *st = ud;
    if (tf_h2__out_append(st, p, n) != 0)
        st->rstate = H2R_DONE; /* noticed by response_body */
}

static void payload_trailer(void *ud, const tf_http_header_t *h)
{
    tf_h2s_t *st = ud;
    char lower[256];
    if (h->name_len > sizeof lower ||
        st->trailers.len + h->name_len + h->value_len > H2_TRAILERS_MAX ||
        !tf_h2_trailer_field(h, lower))
        return;
    (void)fields_add(&st->trailers, lower, h->name_len, h->value, h->value_len);
}

static nghttp2_data_provider body_provider(tf_h2s_t *st)
{
    return (nghttp2_data_provider){.source.ptr = st, .read_callback = tf_h2__read_body};
}

/* The response's HTTP/2 fields for HOW (NULL: the head as it is) into nv
 * (outcap fields), names lower-cased into lower (lowercap bytes). The
 * number of fields, or -1. */
static long head_fields(const tf_h2s_t *st, const tf_http_response_t *r,
                        const tf_http_resp_rewrite_t *how, char status[4], nghttp2_nv *nv,
                        tf_h2_field_t *f, size_t outcap, char *lower, size_t lowercap)
{
    long n = tf_h2_response_fields(r, how, st->info.websocket, status, f, outcap, lower, lowercap);
    for (long i = 0; i < n; i++)
        nv[i] = (nghttp2_nv){(uint8_t *)f[i].name, (uint8_t *)f[i].value, f[i].name_len,
                             f[i].value_len, NGHTTP2_NV_FLAG_NONE};
    return n;
}

/* Submits the HEADERS (nv, n fields) for a response head: interim (1xx),
 * final with a body to follow, final alone, or the 200 that opens a
 * WebSocket tunnel. The body, if any, follows in st->rp's view of it. */
static int submit_fields(tf_h2s_t *st, const tf_http_response_t *r, const nghttp2_nv *nv, long n)
{
    nghttp2_session *ng = st->h2->ng;
    bool tunnel = st->info.websocket && r->status == 101;
    /* Any 2xx to an extended CONNECT opens the tunnel for the client (RFC
     * 8441 §5): a backend that answered the upgrade with a plain 200 has
     * opened none, so the stream is reset. */
    if (n < 0 || (st->info.websocket && r->status / 100 == 2))
        return UV_EPROTO;
    if (r->status / 100 == 1 && !tunnel) {
        /* Interim (100, 103): the final head follows. A 101 for anything
         * but a WebSocket cannot be carried over HTTP/2. */
        tf_http_parser_init_response(&st->rp, st->info.head);
        if (r->status == 101 ||
            nghttp2_submit_headers(ng, NGHTTP2_FLAG_NONE, st->id, NULL, nv, (size_t)n, NULL) != 0)
            return UV_EPROTO;
        return 0;
    }
    bool body = tunnel || r->body != TF_HTTP_RESP_NONE;
    nghttp2_data_provider prd = body_provider(st);
    if (nghttp2_submit_response(ng, st->id, nv, (size_t)n, body ? &prd : NULL) != 0)
        return TF_ENOMEM;
    st->submitted = true;
    st->close_delimited = r->body == TF_HTTP_RESP_CLOSE;
    st->rstate = tunnel ? H2R_TUNNEL : body ? H2R_BODY : H2R_DONE;
    st->out_ended = !body;
    return 0;
}

/* Submits the HEADERS for a response head, changed as HOW says (NULL:
 * nothing). */
/* The size of the head the fields stand for, as HTTP/1.1 text: the
 * backend's status line, a "name: value\r\n" per field after :status, the
 * empty line. */
static size_t head_text_len(const tf_http_response_t *r, const nghttp2_nv *nv, long n)
{
    const char *eol = memchr(r->start, '\n', r->head_len);
    size_t len = (eol != NULL ? (size_t)(eol - r->start) + 1 : 0) + 2;
    for (long i = 1; i < n; i++)
        len += nv[i].namelen + nv[i].valuelen + 4;
    return len;
}

static int submit_head(tf_h2s_t *st, const tf_http_response_t *r, const tf_http_resp_rewrite_t *how,
                       size_t *text_len)
{
    size_t lowercap, outcap = tf_h2_response_fields_cap(r, how, &lowercap);
    tf_h2_field_t f_stack[TF_HTTP_HEADERS_DEFAULT + 1];
    nghttp2_nv nv_stack[TF_HTTP_HEADERS_DEFAULT + 1];
    char lower_stack[4096];
    bool small = outcap <= TF_HTTP_HEADERS_DEFAULT + 1;
    tf_h2_field_t *f = small ? f_stack : malloc(outcap * sizeof *f);
    nghttp2_nv *nv = small ? nv_stack : malloc(outcap * sizeof *nv);
    char *lower = lowercap <= sizeof lower_stack ? lower_stack : malloc(lowercap);
    int rc = TF_ENOMEM;
    if (f != NULL && nv != NULL && lower != NULL) {
        char status[4];
        long n = head_fields(st, r, how, status, nv, f, outcap, lower,
                             lowercap > sizeof lower_stack ? lowercap : sizeof lower_stack);
        rc = submit_fields(st, r, nv, n);
        *text_len = head_text_len(r, nv, n);
    }
    if (!small) {
        free(f);
        free(nv);
    }
    if (lower != lower_stack)
        free(lower);
    return rc;
}

static int response_bytes(tf_h2s_t *st, const char *data, size_t len);

/* The response head, from data (len bytes) and what waited in rhead:
 * *used receives the bytes of data taken (all of them when the head is not
 * complete yet). */
static int response_head(tf_h2s_t *st, const char *data, size_t len, size_t *used)
{
    tf_http_response_t *r = &st->conn.worker->h2_resp_head;
    bool buffered = st->rhead.len > 0;
    if (buffered && tf_h2__buf_append(&st->rhead, data, len) != 0)
        return TF_ENOMEM;
    const char *buf = buffered ? tf_h2__buf_data(&st->rhead) : data;
    size_t blen = buffered ? st->rhead.len : len;
    int rc = tf_http_parse_response_head(&st->rp, buf, blen, H2_RESP_HEAD_MAX, r);
    if (rc == TF_HTTP_MORE) {
        *used = len;
        return buffered ? 0 : tf_h2__buf_append(&st->rhead, data, len);
    }
    if (rc != 0)
        return UV_EPROTO;
    size_t text_len; /* the text is what the exchange counted */
    rc = submit_head(st, r, NULL, &text_len);
    if (rc != 0)
        return rc;
    if (!buffered) {
        *used = r->head_len;
        return 0;
    }
    /* What followed the head in rhead is the start of the body (or of the
     * next head after a 1xx). */
    tf_h2_buf_t held = st->rhead;
    st->rhead = (tf_h2_buf_t){0};
    *used = len;
    rc = response_bytes(st, tf_h2__buf_data(&held) + r->head_len, held.len - r->head_len);
    tf_h2__buf_free(&held);
    return rc;
}

static int response_body(tf_h2s_t *st, const char *data, size_t len, size_t *used)
{
    bool done = false;
    tf_http_payload_t pl = {
        .data = payload_data,
        .trailer = payload_trailer,
        .ud = st,
        .scratch = st->conn.worker->h2_out, /* free between frames out */
        .scratch_cap = 8192,
    };
    int rc = tf_http_body_payload(&st->rp, data, len, used, &done, &pl);
    if (rc != 0 || st->rstate == H2R_DONE)
        return UV_EPROTO; /* a body the exchange relayed cannot fail to parse */
    if (done) {
        st->rstate = H2R_DONE;
        st->out_ended = true;
    } else if (*used == 0) {
        return UV_EPROTO;
    }
    return 0;
}

static int response_bytes(tf_h2s_t *st, const char *data, size_t len)
{
    while (len > 0) {
        size_t used = len;
        int rc = 0;
        switch (st->rstate) {
        case H2R_HEAD:
            rc = response_head(st, data, len, &used);
            break;
        case H2R_BODY:
            rc = response_body(st, data, len, &used);
            break;
        case H2R_TUNNEL:
            rc = tf_h2__out_append(st, data, len);
            break;
        case H2R_DONE:
            break; /* nothing follows a complete response */
        }
        if (rc != 0)
            return rc;
        data += used;
        len -= used;
    }
    return 0;
}

ssize_t tf_h2__read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    tf_h2s_t *st = nghttp2_session_get_stream_user_data(ng, id);
    if (st == NULL)
        return NGHTTP2_ERR_DEFERRED; /* detached: its RST_STREAM is queued */
    size_t n = st->out.len < length ? st->out.len : length;
    if (n > 0)
        memcpy(buf, tf_h2__buf_data(&st->out), n); /* out.p may be NULL */
    tf_h2__out_consume(st, n);
    if (n > 0) {
        st->tell_written = true;
        st->progress_ms = uv_now(&st->conn.worker->loop);
        tf_h2__wake(st->h2);
    }
    if (st->out.len > 0)
        return (ssize_t)n;
    if (!st->out_ended) {
        if (n > 0)
            return (ssize_t)n;
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->trailers.n > 0) {
        tf_h2_field_t v[64];
        nghttp2_nv nv[64];
        size_t k = st->trailers.n < 64 ? st->trailers.n : 64;
        fields_view(&(tf_h2_fields_t){.text = st->trailers.text, .at = st->trailers.at, .n = k}, v);
        for (size_t i = 0; i < k; i++)
            nv[i] = (nghttp2_nv){(uint8_t *)v[i].name, (uint8_t *)v[i].value, v[i].name_len,
                                 v[i].value_len, NGHTTP2_NV_FLAG_NONE};
        if (nghttp2_submit_trailer(ng, id, nv, k) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        tf_h2__fields_clear(&st->trailers);
    }
    return (ssize_t)n;
}

/* ---- the stream operations --------------------------------------------- */

static int h2s_read_start(tf_stream_t *s)
{
    tf_h2s_t *st = s->transport;
    s->flags |= TF_STREAM_READING;
    if (st->h2 != NULL &&
        (st->head_mem != NULL || st->in.len > 0 || (st->req_ended && !st->eof_told)))
        tf_h2__wake(st->h2);
    return 0;
}

static void h2s_read_stop(tf_stream_t *s)
{
    s->flags &= (uint16_t)~TF_STREAM_READING;
}

/* After the exchange's bytes or head went into the stream: RC says whether
 * they could be relayed (logged when not); the stream resumes sending. */
static int relayed(tf_h2s_t *st, int rc)
{
    if (rc != 0) {
        TF_CONN_LOG(TF_LOG_WARN, &st->conn, "HTTP/2 stream %d: response not relayable: %s",
                    (int)st->id, tf_strerror(rc));
        return rc;
    }
    resume(st);
    return 0;
}

static int h2s_write(tf_stream_t *s, const void *data, size_t len)
{
    tf_h2s_t *st = s->transport;
    /* A reset stream takes no more; its exchange hears of the reset. */
    if (st->h2 == NULL || st->end_sent)
        return 0;
    int rc = response_bytes(st, data, len);
    return relayed(st, rc);
}

/* The exchange's parsed response head: its fields go to HEADERS as they
 * are, with no HTTP/1.1 text written and read back; the body's framing,
 * which the exchange writes on, is followed from what the head says. */
static int h2s_write_head(tf_stream_t *s, const tf_http_response_t *r,
                          const tf_http_resp_rewrite_t *how, size_t *text_len)
{
    tf_h2s_t *st = s->transport;
    *text_len = 0;
    if (st->h2 == NULL || st->end_sent)
        return 0;
    int rc =
        st->rstate != H2R_HEAD || st->rhead.len > 0 ? UV_EPROTO : submit_head(st, r, how, text_len);
    if (rc == 0 && st->rstate == H2R_BODY && tf_http_parser_follow(&st->rp, r, st->info.head) != 0)
        rc = UV_EPROTO;
    return relayed(st, rc);
}

static int h2s_shutdown(tf_stream_t *s)
{
    tf_h2s_t *st = s->transport;
    s->flags |= TF_STREAM_SHUT_WANTED;
    if (st->h2 == NULL)
        return 0;
    if (st->end_sent) {
        st->tell_shut = true;
    } else if (!st->submitted || (st->rstate == H2R_BODY && !st->close_delimited)) {
        /* Ended without an answer, or in the middle of a body whose framing
         * says more was due (the exchange cut it): END_STREAM would present
         * it as complete, so the stream is reset. */
        nghttp2_submit_rst_stream(st->h2->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        st->end_sent = st->tell_shut = true;
    } else {
        st->out_ended = true;
    }
    resume(st);
    return 0;
}

/* Detaches the stream from its session: nghttp2 forgets it, and a stream
 * whose answer did not end is reset (the connection's window gets back
 * what was never handed on). */
static void detach(tf_h2s_t *st)
{
    tf_h2_t *h2 = st->h2;
    if (h2 == NULL)
        return;
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        h2->streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
    tf_h2__out_consume(st, st->out.len);
    st->h2 = NULL;
    h2->nstreams--;
    /* What the exchange never took goes back to the connection's window,
     * also when the stream is already closed (reset by the client while its
     * exchange was not reading): libnghttp2 credits the connection then. */
    if (st->unconsumed > 0)
        nghttp2_session_consume(h2->ng, st->id, st->unconsumed);
    st->unconsumed = 0;
    if (!st->closed) {
        nghttp2_session_set_stream_user_data(h2->ng, st->id, NULL);
        if (!st->end_sent)
            nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    }
    tf_h2__wake(h2);
}

/* The stream's exchange ends: the connection keeps time again when it was
 * the last one running, idle counted from now. */
static void deactivate(tf_h2s_t *st)
{
    tf_h2_t *h2 = st->h2;
    if (!st->active || h2 == NULL)
        return;
    st->active = false;
    if (--h2->nactive == 0) {
        h2->c->traffic.active_ms = uv_now(&h2->c->worker->loop);
        tf_conn_arm_timer(h2->c);
    }
}

static void stream_release(tf_h2s_t *st)
{
    free(st->head_mem);
    st->head_mem = NULL;
    tf_h2__fields_clear(&st->trailers);
    tf_h2__buf_free(&st->in);
    tf_h2__buf_free(&st->out);
    tf_h2__buf_free(&st->rhead);
}

void tf_h2__stream_free(tf_worker_t *w, tf_h2s_t *st)
{
    detach(st);
    stream_release(st);
    tf_wcache_free(&w->cache, st, sizeof *st);
}

/* The child connection closes: the struct itself is freed with it, once
 * the callback has run. An answer complete but still leaving keeps it
 * until its END_STREAM is out (tf_h2__stream_finish): an exchange that
 * answered at once and then saw the client's end closes at once. */
static void h2s_close(tf_stream_t *s, uv_close_cb cb)
{
    tf_h2s_t *st = s->transport;
    s->flags &= (uint16_t) ~(TF_STREAM_OPEN | TF_STREAM_READING);
    deactivate(st);
    if (st->h2 != NULL && !st->closed && !st->end_sent && st->submitted && st->out_ended) {
        st->close_cb = cb;
        st->h2->nlinger++;
        st->progress_ms = uv_now(&st->conn.worker->loop);
        resume(st);
        return;
    }
    detach(st);
    stream_release(st);
    cb((uv_handle_t *)&s->tcp);
}

uint64_t tf_h2__expire_lingering(tf_h2_t *h2, uint64_t now, uint64_t idle_ms)
{
    uint64_t next = UINT64_MAX;
    for (tf_h2s_t *st = h2->streams, *after; st != NULL; st = after) {
        after = st->next;
        if (st->close_cb == NULL)
            continue;
        if (now >= st->progress_ms + idle_ms) {
            TF_CONN_LOG(TF_LOG_INFO, h2->c,
                        "HTTP/2 stream %d: the client took nothing of its answer for "
                        "timeouts.idle: RST_STREAM",
                        (int)st->id);
            tf_h2__stream_finish(st); /* not ended: detach resets it */
        } else if (st->progress_ms + idle_ms < next) {
            next = st->progress_ms + idle_ms;
        }
    }
    return next;
}

void tf_h2__stream_finish(tf_h2s_t *st)
{
    uv_close_cb cb = st->close_cb;
    st->close_cb = NULL;
    if (st->h2 != NULL)
        st->h2->nlinger--;
    detach(st);
    stream_release(st);
    cb((uv_handle_t *)&st->conn.client.tcp);
}

/* A stream's own bytes; or, while the connection holds more than
 * H2_CONN_OUT_MAX for a client that does not take them, the exchange's
 * high water mark for any stream with bytes waiting: every backend of the
 * connection stops, not only those of streams past their own mark. */
static size_t h2s_pending(const tf_stream_t *s)
{
    const tf_h2s_t *st = s->transport;
    if (st->out.len > 0 && st->h2 != NULL && st->h2->out_total > H2_CONN_OUT_MAX &&
        st->out.len < TF_PUMP_HIGH_WATER)
        return TF_PUMP_HIGH_WATER;
    return st->out.len;
}

/* Frames leave once per loop round (tf_worker_defer): nothing to flush. */
static int h2s_flush(tf_stream_t *s)
{
    return 0;
}

const tf_stream_ops_t tf_stream_h2_ops = {
    .read_start = h2s_read_start,
    .read_stop = h2s_read_stop,
    .write = h2s_write,
    .shutdown = h2s_shutdown,
    .close = h2s_close,
    .pending = h2s_pending,
    .flush = h2s_flush,
    .write_head = h2s_write_head,
};
