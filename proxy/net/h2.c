/* See h2.h and h2_internal.h: the session. Functions appear in the order a
 * connection meets them: start, bytes in (nghttp2's callbacks), the run
 * (deliveries and frames out), the connection mode (timer, drain, free). */
#include "proxy/net/h2_internal.h"

#include "common/err.h"
#include "proxy/obs/obs.h"

#include <stdlib.h>
#include <string.h>

/* The windows the client may fill before the proxy has handed its bytes on:
 * per stream (SETTINGS_INITIAL_WINDOW_SIZE) and per connection. A stream's
 * bytes wait in it only while its exchange is not reading, so these bound
 * what a connection can make the proxy hold. */
#define H2_STREAM_WINDOW (256u * 1024u)
#define H2_CONN_WINDOW (1024u * 1024u)

/* Frames out stop while this much waits in the TLS stream: the rest stays
 * in nghttp2 and in the streams, under flow control, until it drains. */
#define H2_SEND_HIGH (64u * 1024u)

/* Budgets (SPEC §12 attacks). Rapid reset: a client may reset as many
 * streams as it may open, twice over, and that many again every second;
 * beyond, GOAWAY ENHANCE_YOUR_CALM. Frames that move nothing forward
 * (SETTINGS, PING, PRIORITY, WINDOW_UPDATE, RST_STREAM, empty DATA): 1,000
 * at once, 100 more a second, and one more per frame of a request or a
 * response, so that a long download's WINDOW_UPDATEs pay for themselves. */
#define H2_JUNK_BURST 1000.0
#define H2_JUNK_RATE 100.0

static const tf_conn_mode_t h2_mode;
static const tf_sink_t h2_sink;

/* ---- small helpers ------------------------------------------------------ */

int tf_h2__buf_append(tf_h2_buf_t *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (b->off > 0 && b->off + b->len + len > b->cap) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
    size_t used = b->off + b->len;
    int rc = tf_bytes_append(&b->p, &used, &b->cap, 4096, data, len);
    if (rc == 0)
        b->len += len;
    return rc;
}

void tf_h2__buf_consume(tf_h2_buf_t *b, size_t n)
{
    if (n >= b->len) {
        tf_h2__buf_free(b);
        return;
    }
    b->off += n;
    b->len -= n;
}

void tf_h2__buf_free(tf_h2_buf_t *b)
{
    free(b->p);
    *b = (tf_h2_buf_t){0};
}

static uint64_t now_ms(const tf_h2_t *h2)
{
    return uv_now(&h2->c->worker->loop);
}

static void budgets_refill(tf_h2_t *h2)
{
    uint64_t now = now_ms(h2);
    double secs = (double)(now - h2->budget_ms) / 1000.0;
    if (secs <= 0)
        return;
    h2->budget_ms = now;
    double streams = tf_conf_http2(h2->c->gen->conf)->max_concurrent_streams;
    h2->resets += secs * streams;
    if (h2->resets > 2 * streams)
        h2->resets = 2 * streams;
    h2->junk += secs * H2_JUNK_RATE;
    if (h2->junk > H2_JUNK_BURST)
        h2->junk = H2_JUNK_BURST;
}

/* Spends one token of a budget; false (and the session asks for GOAWAY
 * ENHANCE_YOUR_CALM) when it is spent. */
static bool spend(tf_h2_t *h2, double *budget, const char *what)
{
    budgets_refill(h2);
    if (*budget >= 1.0) {
        *budget -= 1.0;
        return true;
    }
    if (h2->fatal == 0)
        TF_CONN_LOG(TF_LOG_INFO, h2->c, "HTTP/2: %s: GOAWAY ENHANCE_YOUR_CALM", what);
    h2->fatal = NGHTTP2_ENHANCE_YOUR_CALM;
    return false;
}

static void earn_junk(tf_h2_t *h2)
{
    if (h2->junk < H2_JUNK_BURST)
        h2->junk += 1.0;
}

/* ---- nghttp2's callbacks ------------------------------------------------ */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    tf_h2_t *h2 = ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    tf_h2__block_begin(h2->c->worker);
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        tf_h2s_t *trailing = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
        if (trailing != NULL)
            trailing->too_big = false;
        return 0;
    }
    tf_h2s_t *st = tf_wcache_calloc(&h2->c->worker->cache, sizeof *st);
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    /* A header block is due whole within timeouts.request_header. */
    h2->block_ms = now_ms(h2);
    h2->block_id = frame->hd.stream_id;
    tf_conn_arm_timer(h2->c);
    st->id = frame->hd.stream_id;
    st->h2 = h2;
    st->next = h2->streams;
    if (h2->streams != NULL)
        h2->streams->prev = st;
    h2->streams = st;
    h2->nstreams++;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    tf_h2_t *h2 = ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    tf_h2s_t *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    if (!tf_h2__field(h2, st, name, nlen, value, vlen)) {
        TF_CONN_LOG(TF_LOG_INFO, h2->c,
                    "HTTP/2: a header block far over limits.max_header_bytes: GOAWAY "
                    "ENHANCE_YOUR_CALM");
        h2->fatal = NGHTTP2_ENHANCE_YOUR_CALM;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    tf_h2_t *h2 = ud;
    tf_h2s_t *st = frame->hd.stream_id != 0
                       ? nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id)
                       : NULL;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    bool ok = true;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        earn_junk(h2);
        h2->block_ms = 0;
        /* Requests, not PINGs, keep an idle connection open. */
        h2->c->traffic.active_ms = now_ms(h2);
        if (st == NULL)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            tf_h2__request(h2, st, end);
        else
            tf_h2__request_trailers(h2, st);
        break;
    case NGHTTP2_DATA:
        if (frame->hd.length == 0 && !end) {
            ok = spend(h2, &h2->junk, "empty DATA flood");
        } else {
            earn_junk(h2);
            h2->c->traffic.active_ms = now_ms(h2);
        }
        if (st != NULL && end)
            tf_h2__request_end(st);
        break;
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            ok = spend(h2, &h2->junk,
                       frame->hd.type == NGHTTP2_PING ? "PING flood" : "SETTINGS flood");
        break;
    case NGHTTP2_PRIORITY:
        ok = spend(h2, &h2->junk, "PRIORITY flood");
        break;
    case NGHTTP2_WINDOW_UPDATE:
        ok = spend(h2, &h2->junk, "WINDOW_UPDATE flood");
        break;
    case NGHTTP2_RST_STREAM:
        if (st != NULL)
            st->client_reset = true;
        else
            ok = spend(h2, &h2->junk, "RST_STREAM flood");
        break;
    default:
        break;
    }
    return ok ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    tf_h2s_t *st = nghttp2_session_get_stream_user_data(ng, id);
    /* Nobody takes it (the stream's exchange is gone, or never was): the
     * window reopens at once. */
    if (st == NULL || !st->started || st->h2 == NULL || st->close_cb != NULL ||
        tf_h2__request_data(st, data, len) != 0)
        nghttp2_session_consume(ng, id, len);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    tf_h2_t *h2 = ud;
    tf_h2s_t *st = nghttp2_session_get_stream_user_data(ng, id);
    if (st == NULL)
        return 0;
    st->closed = true;
    /* Rapid reset (CVE-2023-44487): a stream reset before its answer is
     * complete still cost a request, maybe a backend connection, whoever
     * reset it: the client (RST_STREAM), or libnghttp2 for a malformed
     * stream the client sent on purpose (CVE-2025-8671, "MadeYouReset").
     * The GOAWAY follows this receive (h2->fatal). */
    if ((st->client_reset || code != NGHTTP2_NO_ERROR) && !st->end_sent)
        (void)spend(h2, &h2->resets,
                    st->client_reset ? "rapid reset" : "streams reset by the proxy");
    /* A stream reset in the middle of its header block (a malformed field)
     * ends the block: no deadline is left for it. */
    if (h2->block_ms != 0 && h2->block_id == id)
        h2->block_ms = 0;
    if (!st->started) {
        tf_h2__stream_free(h2->c->worker, st);
        return 0;
    }
    if (!st->end_sent || (!st->req_ended && !st->eof_told))
        st->tell_reset = true;
    st->end_sent = true;
    tf_h2__wake(h2);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    tf_h2_t *h2 = ud;
    if (frame->hd.type == NGHTTP2_DATA) {
        /* A client may answer each DATA frame with a WINDOW_UPDATE for the
         * stream and one for the connection: both are paid. */
        earn_junk(h2);
        earn_junk(h2);
        h2->c->traffic.active_ms = now_ms(h2);
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        tf_metrics_h2_goaway(h2->c->worker->metrics,
                             h2->draining                                   ? TF_MH2_GOAWAY_DRAIN
                             : frame->goaway.error_code == NGHTTP2_NO_ERROR ? TF_MH2_GOAWAY_IDLE
                             : frame->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM
                                 ? TF_MH2_GOAWAY_CALM
                                 : TF_MH2_GOAWAY_PROTOCOL);
        return 0;
    }
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    tf_h2s_t *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    st->end_sent = true;
    st->tell_shut = true;
    /* The answer is complete while the client still sends: it may stop
     * (RFC 9113 §8.1). */
    if (!st->req_ended)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    tf_h2__wake(h2);
    return 0;
}

static int on_error(nghttp2_session *ng, int code, const char *msg, size_t len, void *ud)
{
    tf_h2_t *h2 = ud;
    TF_CONN_LOG(TF_LOG_DEBUG, h2->c, "HTTP/2: %.*s", (int)len, msg);
    return 0;
}

static nghttp2_session_callbacks *h2_callbacks;
static nghttp2_option *h2_options;
static uv_once_t h2_once = UV_ONCE_INIT;

/* The callbacks and options are the same for every session: made once. */
static void h2_init_once(void)
{
    if (nghttp2_session_callbacks_new(&h2_callbacks) != 0 || nghttp2_option_new(&h2_options) != 0)
        return;
    nghttp2_session_callbacks *cb = h2_callbacks;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    /* Windows reopen when the exchange took the bytes, not on receipt. */
    nghttp2_option_set_no_auto_window_update(h2_options, 1);
    /* Rapid reset is the proxy's to judge (budgets above, ENHANCE_YOUR_CALM);
     * libnghttp2's own limit would answer INTERNAL_ERROR first. */
    nghttp2_option_set_stream_reset_rate_limit(h2_options, 100000, 100000);
    /* Closed streams are kept only for the priority tree, which RFC 9113
     * deprecates: freed at once, an idle connection holds none. */
    nghttp2_option_set_no_closed_streams(h2_options, 1);
    /* Response fields are encoded from the static table and as literals,
     * never indexed (as haproxy's encoder does): no dynamic table is kept
     * per connection, nor searched per field; a response costs a few bytes
     * more (bench_h2 idle: 18.3 to 18.0 KiB per connection). */
    nghttp2_option_set_max_deflate_dynamic_table_size(h2_options, 0);
}

/* ---- start -------------------------------------------------------------- */

static void h2_run(tf_defer_t *d);

int tf_h2_start(tf_conn_t *c)
{
    uv_once(&h2_once, h2_init_once);
    if (h2_callbacks == NULL || h2_options == NULL)
        return TF_ENOMEM;
    tf_h2_t *h2 = calloc(1, sizeof *h2);
    if (h2 == NULL)
        return TF_ENOMEM;
    h2->c = c;
    h2->defer.run = h2_run;
    tf_conn_peer_addr(c, h2->peer_text, sizeof h2->peer_text);
    h2->budget_ms = uv_now(&c->worker->loop);
    uint32_t streams = tf_conf_http2(c->gen->conf)->max_concurrent_streams;
    h2->resets = 2.0 * streams;
    h2->junk = H2_JUNK_BURST;
    nghttp2_mem mem = tf_wcache_nghttp2_mem(&c->worker->cache);
    if (nghttp2_session_server_new3(&h2->ng, h2_callbacks, h2, h2_options, &mem) != 0) {
        free(h2);
        return TF_ENOMEM;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, tf_conf_limits(c->gen->conf)->max_header_bytes},
    };
    if (nghttp2_submit_settings(h2->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(h2->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0) {
        nghttp2_session_del(h2->ng);
        free(h2);
        return TF_ENOMEM;
    }
    c->h2 = h2;
    c->mode = &h2_mode;
    c->phase = TF_CONN_HTTP;
    c->traffic.active_ms = now_ms(h2);
    tf_metrics_h2_connection(c->worker->metrics);
    tf_stream_set_sink(&c->client, &h2_sink, c);
    int rc = c->client.ops->read_start(&c->client);
    if (rc != 0)
        return rc;
    tf_conn_arm_timer(c);
    tf_h2__wake(h2);
    return 0;
}

/* ---- the run: deliveries, frames out, the end ---------------------------- */

void tf_h2__wake(tf_h2_t *h2)
{
    if (h2 != NULL && !h2->dead)
        tf_worker_defer(h2->c->worker, &h2->defer);
}

static void h2_destroy(tf_h2_t *h2)
{
    nghttp2_session_del(h2->ng);
    free(h2);
}

static int tls_write(tf_h2_t *h2, const void *data, size_t len)
{
    tf_conn_t *c = h2->c;
    c->traffic.down += len;
    int rc = c->client.ops->write(&c->client, data, len);
    if (rc < 0 && !tf_conn_closing(c))
        tf_conn_fail(c, rc, "client write");
    return rc;
}

/* Frames out, gathered into the loop's buffer so that what every stream
 * queued this round is encrypted and written at once. */
static void h2_send(tf_h2_t *h2)
{
    tf_conn_t *c = h2->c;
    char *out = c->worker->h2_out;
    size_t n = 0;
    while (!tf_conn_closing(c) && c->client.ops->pending(&c->client) < H2_SEND_HIGH) {
        const uint8_t *p = NULL;
        ssize_t k = nghttp2_session_mem_send(h2->ng, &p);
        if (k < 0) {
            TF_CONN_LOG(TF_LOG_WARN, c, "HTTP/2: %s", nghttp2_strerror((int)k));
            tf_conn_close(c, TF_LOG_WARN, "HTTP/2 error");
            return;
        }
        if (k == 0)
            break;
        if (n + (size_t)k > TF_WORKER_H2_OUT) {
            if (tls_write(h2, out, n) < 0)
                return;
            n = 0;
        }
        if ((size_t)k >= TF_WORKER_H2_OUT) {
            if (tls_write(h2, p, (size_t)k) < 0)
                return;
            continue;
        }
        memcpy(out + n, p, (size_t)k);
        n += (size_t)k;
    }
    if (n > 0 && !tf_conn_closing(c))
        (void)tls_write(h2, out, n);
}

/* After a fatal receive: GOAWAY with the code a callback chose, or the one
 * libnghttp2's error stands for. */
static void h2_fail(tf_h2_t *h2, int err)
{
    uint32_t code = h2->fatal != 0 ? h2->fatal
                    : err == NGHTTP2_ERR_FLOODED || err == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                        ? NGHTTP2_ENHANCE_YOUR_CALM
                    : err == NGHTTP2_ERR_NOMEM ? NGHTTP2_INTERNAL_ERROR
                                               : NGHTTP2_PROTOCOL_ERROR;
    if (h2->fatal == 0)
        TF_CONN_LOG(TF_LOG_INFO, h2->c, "HTTP/2: %s: GOAWAY", nghttp2_strerror(err));
    h2->fatal = code;
    h2->goaway = true;
    nghttp2_session_terminate_session(h2->ng, code);
}

static bool h2_finished(const tf_h2_t *h2)
{
    if (nghttp2_session_want_write(h2->ng))
        return false;
    if (!nghttp2_session_want_read(h2->ng))
        return true;
    return h2->draining && h2->nstreams == 0;
}

static void h2_run_now(tf_h2_t *h2)
{
    tf_conn_t *c = h2->c;
    h2->busy++;
    for (tf_h2s_t *st = h2->streams, *next; st != NULL && !tf_conn_closing(c); st = next) {
        next = st->next;
        tf_h2__deliver(st);
    }
    if (!tf_conn_closing(c))
        h2_send(h2);
    if (!tf_conn_closing(c) && h2_finished(h2)) {
        tf_conn_close_politely(c, TF_LOG_INFO,
                               h2->fatal == NGHTTP2_ENHANCE_YOUR_CALM ? "HTTP/2 abuse"
                               : h2->fatal != 0                       ? "HTTP/2 protocol error"
                                                                      : "done");
    }
    if (--h2->busy == 0 && h2->dead)
        h2_destroy(h2);
}

static void h2_run(tf_defer_t *d)
{
    h2_run_now(tf_container_of(d, tf_h2_t, defer));
}

/* ---- the TLS stream's sink ---------------------------------------------- */

static void h2_on_data(tf_stream_t *s, const char *data, size_t len)
{
    tf_conn_t *c = s->owner;
    tf_h2_t *h2 = c->h2;
    c->traffic.up += len;
    if (h2->goaway && h2->fatal != 0)
        return; /* cut: nothing more is read */
    h2->busy++;
    ssize_t n = nghttp2_session_mem_recv(h2->ng, (const uint8_t *)data, len);
    if (n < 0 && !h2->dead)
        h2_fail(h2, (int)n);
    else if (h2->fatal != 0 && !h2->goaway && !h2->dead)
        h2_fail(h2, NGHTTP2_ERR_CALLBACK_FAILURE);
    h2->busy--;
    if (h2->dead) {
        if (h2->busy == 0)
            h2_destroy(h2);
        return;
    }
    h2_run_now(h2);
}

static void h2_on_eof(tf_stream_t *s)
{
    tf_conn_close(s->owner, TF_LOG_INFO, "peer closed");
}

static void h2_on_written(tf_stream_t *s)
{
    tf_conn_t *c = s->owner;
    h2_run_now(c->h2);
}

static void h2_on_shut(tf_stream_t *s)
{
    tf_conn_close(s->owner, TF_LOG_INFO, "done");
}

static void h2_on_error(tf_stream_t *s, int err, const char *what)
{
    tf_conn_fail(s->owner, err, what);
}

static void h2_ignore(tf_stream_t *s)
{
}

static const tf_sink_t h2_sink = {
    .data = h2_on_data,
    .eof = h2_on_eof,
    .written = h2_on_written,
    .shut = h2_on_shut,
    .error = h2_on_error,
    .ready = h2_ignore,
};

/* ---- the connection mode ------------------------------------------------- */

/* The connection's own idle deadline counts: no exchange running, no
 * header block under way, no answer lingering (a stream answered by the
 * session itself whose client never ends its side does not keep it). */
static bool h2_idle_applies(const tf_h2_t *h2)
{
    return h2->nactive == 0 && h2->block_ms == 0 && h2->nlinger == 0;
}

/* Deadlines of an HTTP/2 connection: a header block due within
 * timeouts.request_header of its first frame, whatever else runs. While
 * none of its streams has an exchange running (those keep their own time):
 * answers waiting for the client's window reset after timeouts.idle
 * without progress, and, with neither of those pending, the connection
 * closed after timeouts.idle without a request or a response moving
 * (PINGs and SETTINGS do not keep it). Every deadline returned is one
 * h2_on_timer() acts on: one it would not act on, already past, had the
 * timer re-armed for now and run again at once, for ever. */
static uint64_t h2_due(const tf_conn_t *c, bool expire)
{
    tf_h2_t *h2 = c->h2;
    const tf_conf_timeouts_t *t = tf_conf_timeouts(c->gen->conf);
    uint64_t now = uv_now(&c->worker->loop);
    uint64_t block = h2->block_ms != 0 ? h2->block_ms + t->request_header_ms : UINT64_MAX;
    /* Answers stuck behind a closed window are reset on their own time,
     * also while other streams run: they hold their memory until then. */
    uint64_t linger = UINT64_MAX;
    if (h2->nlinger > 0 && expire)
        linger = tf_h2__expire_lingering(h2, now, t->idle_ms);
    else if (h2->nlinger > 0) {
        for (const tf_h2s_t *st = h2->streams; st != NULL; st = st->next)
            if (st->close_cb != NULL && st->progress_ms + t->idle_ms < linger)
                linger = st->progress_ms + t->idle_ms;
    }
    uint64_t due = linger < block ? linger : block;
    if (h2->nactive > 0 && now + t->idle_ms < due)
        due = now + t->idle_ms; /* the running streams keep their own time */
    if (h2_idle_applies(h2) && c->traffic.active_ms + t->idle_ms < due)
        due = c->traffic.active_ms + t->idle_ms;
    return due;
}

static uint64_t h2_timeout_ms(const tf_conn_t *c)
{
    uint64_t due = h2_due(c, false), now = uv_now(&c->worker->loop);
    /* At least 1 ms: a timer re-armed for "now" from its own callback runs
     * again before the loop moves on (libuv 1.44), so a deadline missed by
     * a rule here would spin the worker; this bounds it to a poll. */
    return due > now ? due - now : 1;
}

static void h2_close_quietly(tf_h2_t *h2, const char *reason)
{
    if (!h2->goaway) {
        h2->goaway = true;
        nghttp2_submit_goaway(h2->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(h2->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
        h2_send(h2);
    }
    tf_conn_close_politely(h2->c, TF_LOG_INFO, reason);
}

static void h2_on_timer(tf_conn_t *c)
{
    tf_h2_t *h2 = c->h2;
    const tf_conf_timeouts_t *t = tf_conf_timeouts(c->gen->conf);
    uint64_t now = uv_now(&c->worker->loop);
    if (h2->block_ms != 0 && now >= h2->block_ms + t->request_header_ms) {
        TF_CONN_LOG(TF_LOG_INFO, c,
                    "HTTP/2: a header block did not end within "
                    "timeouts.request_header");
        h2_close_quietly(h2, "request header timeout");
        return;
    }
    (void)h2_due(c, true); /* resets the lingering streams past due */
    if (tf_conn_closing(c))
        return;
    if (h2_idle_applies(h2) && now >= c->traffic.active_ms + t->idle_ms) {
        h2_close_quietly(h2, "idle timeout");
        return;
    }
    tf_h2__wake(h2); /* the resets go out */
    tf_conn_arm_timer(c);
}

/* GOAWAY with the last stream taken; those under way finish, then the
 * connection ends (h2_finished). */
static void h2_drain(tf_conn_t *c)
{
    tf_h2_t *h2 = c->h2;
    if (h2->draining)
        return;
    h2->draining = h2->goaway = true;
    nghttp2_submit_goaway(h2->ng, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h2->ng), NGHTTP2_NO_ERROR, NULL,
                          0);
    for (tf_h2s_t *st = h2->streams, *next; st != NULL; st = next) {
        next = st->next;
        if (st->started && !tf_conn_closing(&st->conn))
            tf_conn_drain(&st->conn);
    }
    tf_h2__wake(h2);
}

/* The connection closes: every stream's exchange with it, for the same
 * reason (their access lines say why their answers were cut). */
static void h2_free(tf_conn_t *c)
{
    tf_h2_t *h2 = c->h2;
    c->h2 = NULL;
    /* Detached first (st->h2 = NULL): a stream closing now neither touches
     * nghttp2 nor wakes the session. */
    while (h2->streams != NULL) {
        tf_h2s_t *st = h2->streams;
        h2->streams = st->next;
        st->h2 = NULL;
        st->prev = st->next = NULL;
        if (!st->started) {
            tf_h2__stream_free(c->worker, st);
            continue;
        }
        st->closed = true;
        if (st->close_cb != NULL)
            tf_h2__stream_finish(st);
        else
            tf_conn_close(&st->conn, TF_LOG_DEBUG, c->reason);
    }
    h2->nstreams = h2->nlinger = h2->nactive = 0;
    tf_worker_defer_cancel(c->worker, &h2->defer);
    h2->dead = true;
    if (h2->busy == 0)
        h2_destroy(h2);
}

static bool h2_goodbye_ok(const tf_conn_t *c)
{
    return true;
}

static const tf_conn_mode_t h2_mode = {
    .timeout_ms = h2_timeout_ms,
    .on_timer = h2_on_timer,
    .drain = h2_drain,
    .free = h2_free,
    .goodbye_ok = h2_goodbye_ok,
};
