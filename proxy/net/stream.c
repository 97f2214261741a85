/* See stream.h. The write path is shared: a stream hands the kernel one
 * buffer at a time, trying uv_try_write() first so that the common case (the
 * socket has room) copies nothing and needs no callback. What the two kinds
 * differ in is where waiting bytes live (the TCP stream's queue, the TLS
 * session's output) and how the write side ends (FIN, close_notify). */
#include "proxy/net/stream.h"

#include "common/err.h"
#include "proxy/obs/obs.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* What differs between the kinds on the write path. */
typedef struct {
    /* Hands over every waiting byte as one malloc'd buffer (NULL, 0: none). */
    /* TAKE_FULL instead of 0: the kind already tried the socket, which
     * took less than all: the rest waits for it to drain. */
    int (*take)(tf_stream_t *s, char **buf, size_t *len);
    /* Starts ending the write side once nothing waits: 1 when a callback
     * will report it shut, 0 when it is shut once its output has drained. */
    int (*end)(tf_stream_t *s);
} kind_t;

enum { TAKE_FULL = 2 };

static const kind_t tcp_kind;
static const kind_t tls_kind;

static const kind_t *kind_of(const tf_stream_t *s)
{
    return s->ops == &tf_stream_tls_ops ? &tls_kind : &tcp_kind;
}

void tf_stream_init(tf_stream_t *s, const tf_stream_ops_t *ops, tf_stream_bufs_t *bufs)
{
    memset(s, 0, offsetof(tf_stream_t, wreq));
    s->ops = ops;
    s->bufs = bufs;
}

int tf_stream_tcp_init(tf_stream_t *s, uv_loop_t *loop)
{
    int rc = uv_tcp_init(loop, &s->tcp);
    if (rc == 0)
        s->flags |= TF_STREAM_OPEN;
    return rc;
}

void tf_stream_set_sink(tf_stream_t *s, const tf_sink_t *sink, void *owner)
{
    s->sink = sink;
    s->owner = owner;
}

/* The error event, for a stream that still reports. */
static void stream_error(tf_stream_t *s, int err, const char *what)
{
    if (tf_stream_live(s))
        s->sink->error(s, err, what);
}

struct tf_stream_preface {
    tf_stream_preface_fn fn;
    char *buf; /* what arrived in earlier reads, or NULL */
    size_t len, max;
};

void tf_stream_dispose(tf_stream_t *s)
{
    free(s->wbuf);
    free(s->qbuf);
    s->wbuf = s->qbuf = NULL;
    s->wlen = s->qlen = s->qcap = 0;
    if (s->preface != NULL) {
        free(s->preface->buf);
        free(s->preface);
        s->preface = NULL;
    }
    if (s->tls != NULL && !(s->flags & TF_STREAM_TLS_BORROWED))
        tf_tls_session_free(s->tls);
    s->tls = NULL;
}

/* ---- shared: reading -------------------------------------------------- */

/* Every read lands in the loop's one buffer: per connection only the
 * bytes that must wait are kept. */
static void stream_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    tf_stream_t *s = tf_container_of(h, tf_stream_t, tcp);
    buf->base = s->bufs->rbuf;
    buf->len = sizeof s->bufs->rbuf;
}

static int stream_read_start(tf_stream_t *s, uv_read_cb cb)
{
    if ((s->flags & TF_STREAM_READING) || !(s->flags & TF_STREAM_OPEN))
        return 0;
    int rc = uv_read_start((uv_stream_t *)&s->tcp, stream_on_alloc, cb);
    if (rc == 0)
        s->flags |= TF_STREAM_READING;
    return rc;
}

static void stream_read_stop(tf_stream_t *s)
{
    if (!(s->flags & TF_STREAM_READING))
        return;
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->flags &= (uint16_t)~TF_STREAM_READING;
}

static void stream_close(tf_stream_t *s, uv_close_cb cb)
{
    if (!(s->flags & TF_STREAM_OPEN))
        return;
    s->flags &= (uint16_t) ~(TF_STREAM_OPEN | TF_STREAM_READING | TF_STREAM_WRITABLE);
    uv_close((uv_handle_t *)&s->tcp, cb);
}

/* ---- shared: writing -------------------------------------------------- */

static void stream_on_write(uv_write_t *req, int status)
{
    tf_stream_t *s = tf_container_of(req, tf_stream_t, wreq);
    free(s->wbuf);
    s->wbuf = NULL;
    s->wlen = 0;
    if (!tf_stream_live(s))
        return;
    if (status < 0) {
        stream_error(s, status, "write");
        return;
    }
    if (tf_stream_flush(s) != 0 || !tf_stream_live(s))
        return;
    s->sink->written(s);
}

/* Writes buf (owned, malloc'd; freed here or when the write completes):
 * synchronously as far as the socket takes it (unless the caller just
 * found it full), the rest with one uv_write. Returns 1 when a write is now
 * in flight, 0 when everything went out, or a negative code. */
static int stream_send(tf_stream_t *s, char *buf, size_t len, bool full)
{
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    int n = full ? UV_EAGAIN : uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    if (n == (int)len) {
        free(buf);
        return 0;
    }
    if (n < 0 && n != UV_EAGAIN) {
        free(buf);
        return n;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    s->wbuf = buf;
    s->wlen = len - done;
    b = uv_buf_init(buf + done, (unsigned)(len - done));
    int rc = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, stream_on_write);
    if (rc < 0) {
        free(buf);
        s->wbuf = NULL;
        s->wlen = 0;
        return rc;
    }
    return 1;
}

/* Output drained: a stream whose end was queued as data (close_notify) is
 * now shut. */
static int stream_check_shut(tf_stream_t *s)
{
    if ((s->flags & (TF_STREAM_SHUT_SENT | TF_STREAM_SHUT_DONE)) == TF_STREAM_SHUT_SENT &&
        s->wbuf == NULL && kind_of(s) == &tls_kind) {
        s->flags |= TF_STREAM_SHUT_DONE;
        if (tf_stream_live(s))
            s->sink->shut(s);
    }
    return 0;
}

void tf_stream_cork(tf_stream_t *s)
{
    s->flags |= TF_STREAM_CORKED;
}

int tf_stream_uncork(tf_stream_t *s)
{
    if (!(s->flags & TF_STREAM_CORKED))
        return 0;
    s->flags &= (uint16_t)~TF_STREAM_CORKED;
    return s->ops->flush(s);
}

int tf_stream_flush(tf_stream_t *s)
{
    const kind_t *k = kind_of(s);
    if (s->flags & TF_STREAM_CORKED)
        return 0;
    while (s->wbuf == NULL && (s->flags & TF_STREAM_WRITABLE)) {
        char *buf = NULL;
        size_t len = 0;
        int rc = k->take(s, &buf, &len);
        bool full = rc == TAKE_FULL;
        if (full)
            rc = 0;
        if (rc == 0 && len > 0)
            rc = stream_send(s, buf, len, full);
        else if (rc == 0 && (s->flags & (TF_STREAM_SHUT_WANTED | TF_STREAM_SHUT_SENT |
                                         TF_STREAM_HANDSHAKE)) == TF_STREAM_SHUT_WANTED)
            rc = k->end(s);
        else if (rc == 0)
            return stream_check_shut(s);
        if (rc < 0) {
            stream_error(s, rc, rc == TF_ETLS ? tf_tls_session_error(s->tls) : "write");
            return rc;
        }
        if (rc == 1 || !tf_stream_live(s))
            return 0;
    }
    return 0;
}

int tf_stream_set_writable(tf_stream_t *s)
{
    s->flags |= TF_STREAM_WRITABLE;
    return tf_stream_flush(s);
}

static int stream_shutdown(tf_stream_t *s)
{
    s->flags |= TF_STREAM_SHUT_WANTED;
    return tf_stream_flush(s);
}

/* ---- plain TCP -------------------------------------------------------- */

static void tcp_on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    tf_stream_t *s = tf_container_of(h, tf_stream_t, tcp);
    if (!tf_stream_live(s))
        return;
    if (n > 0)
        s->sink->data(s, buf->base, (size_t)n);
    else if (n == UV_EOF)
        s->sink->eof(s);
    else if (n < 0)
        s->sink->error(s, (int)n, "read");
}

static int tcp_read_start(tf_stream_t *s)
{
    return stream_read_start(s, tcp_on_read);
}

static int tcp_queue(tf_stream_t *s, const char *data, size_t len)
{
    return tf_bytes_append(&s->qbuf, &s->qlen, &s->qcap, 16384, data, len);
}

/* Nothing waiting: write straight from the caller's buffer (the worker's
 * read buffer) and copy only what the socket did not take. */
static int tcp_write(tf_stream_t *s, const void *data, size_t len)
{
    const char *p = data;
    if (s->wbuf == NULL && s->qlen == 0 &&
        (s->flags & (TF_STREAM_WRITABLE | TF_STREAM_CORKED)) == TF_STREAM_WRITABLE) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN)
            return n;
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    if (len == 0)
        return 0;
    int rc = tcp_queue(s, p, len);
    return rc != 0 ? rc : tf_stream_flush(s);
}

static int tcp_take(tf_stream_t *s, char **buf, size_t *len)
{
    *buf = s->qbuf;
    *len = s->qlen;
    s->qbuf = NULL;
    s->qlen = s->qcap = 0;
    if (*len == 0) {
        free(*buf);
        *buf = NULL;
    }
    return 0;
}

static void tcp_on_shutdown(uv_shutdown_t *req, int status)
{
    tf_bstream_t *b = tf_container_of(req, tf_bstream_t, req.shutdown);
    if (!tf_stream_live(&b->s))
        return;
    b->s.flags |= TF_STREAM_SHUT_DONE;
    /* A peer that already reset makes the shutdown fail: the read side will
     * report that; the write side is over either way. */
    b->s.sink->shut(&b->s);
}

static int tcp_end(tf_stream_t *s)
{
    s->flags |= TF_STREAM_SHUT_SENT;
    int rc = uv_shutdown(&tf_bstream_of(s)->req.shutdown, (uv_stream_t *)&s->tcp, tcp_on_shutdown);
    return rc < 0 ? rc : 1;
}

static size_t tcp_pending(const tf_stream_t *s)
{
    return s->wlen + s->qlen;
}

static const kind_t tcp_kind = {.take = tcp_take, .end = tcp_end};

tf_stream_t *tf_bstream_new(uv_loop_t *loop, tf_stream_bufs_t *bufs, const struct sockaddr *sa,
                            const tf_sink_t *sink, void *owner)
{
    tf_bstream_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    tf_stream_init(&b->s, &tf_stream_tcp_ops, bufs);
    int rc =
        sa->sa_family == AF_UNIX ? uv_pipe_init(loop, &b->s.pipe, 0) : uv_tcp_init(loop, &b->s.tcp);
    if (rc != 0) {
        free(b);
        return NULL;
    }
    b->s.flags |= TF_STREAM_OPEN;
    tf_stream_set_sink(&b->s, sink, owner);
    return &b->s;
}

int tf_bstream_connect(tf_stream_t *s, const struct sockaddr *sa, uv_connect_cb cb)
{
    uv_connect_t *req = &tf_bstream_of(s)->req.connect;
    if (sa->sa_family != AF_UNIX)
        return uv_tcp_connect(req, &s->tcp, sa, cb);
    /* Reports every failure (a missing socket file too) through cb. */
    uv_pipe_connect(req, &s->pipe, ((const struct sockaddr_un *)(const void *)sa)->sun_path, cb);
    return 0;
}

static void bstream_on_closed(uv_handle_t *h)
{
    tf_stream_t *s = tf_container_of(h, tf_stream_t, tcp);
    tf_stream_dispose(s);
    free(tf_bstream_of(s));
}

void tf_bstream_release(tf_stream_t *s)
{
    tf_stream_set_sink(s, NULL, NULL);
    if (s->flags & TF_STREAM_OPEN) {
        tf_stream_goodbye(s); /* TLS: a close_notify, when the socket takes it now */
        stream_close(s, bstream_on_closed);
        return;
    }
    /* Never opened or already closing: the close callback frees it. */
}

void tf_bstream_move_queue(tf_stream_t *to, tf_stream_t *from)
{
    free(to->qbuf);
    to->qbuf = from->qbuf;
    to->qlen = from->qlen;
    to->qcap = from->qcap;
    tf_bstream_of(to)->raw_head = tf_bstream_of(from)->raw_head;
    from->qbuf = NULL;
    from->qlen = from->qcap = 0;
    to->flags |= from->flags & TF_STREAM_SHUT_WANTED;
}

const tf_stream_ops_t tf_stream_tcp_ops = {
    .read_start = tcp_read_start,
    .read_stop = stream_read_stop,
    .write = tcp_write,
    .shutdown = stream_shutdown,
    .close = stream_close,
    .pending = tcp_pending,
    .flush = tf_stream_flush,
};

/* ---- TLS -------------------------------------------------------------- */

static void tls_fail(tf_stream_t *s, int rc)
{
    stream_error(s, rc, tf_tls_session_error(s->tls));
}

/* Decrypts everything complete that the session holds and hands it on: the
 * session then keeps at most a partial record, so stopping the socket read
 * is all backpressure needs. */
#define TLS_READ_WANT 0
#define TLS_READ_CLOSED (-1)

/* Bytes (> 0), TLS_READ_WANT, TLS_READ_CLOSED or a negative TF_* code. */
static ssize_t tls_read(tf_stream_t *s, char *buf, size_t len)
{
    size_t n = 0;
    int rc = tf_tls_session_recv(s->tls, buf, len, &n);
    if (rc == TF_TLS_OK && n > 0)
        return (ssize_t)n;
    if (rc == TF_TLS_CLOSED)
        return TLS_READ_CLOSED;
    return rc < 0 ? rc : TLS_READ_WANT;
}

static void tls_drain(tf_stream_t *s)
{
    char *pbuf = s->bufs->pbuf;
    for (;;) {
        ssize_t n = tls_read(s, pbuf, sizeof s->bufs->pbuf);
        if (n > 0) {
            s->sink->data(s, pbuf, (size_t)n);
            if (!tf_stream_live(s))
                return;
            /* The usual request is one record: one read, not a second
             * that would only say "want more". */
            if (!tf_tls_session_input_empty(s->tls))
                continue;
            n = TLS_READ_WANT;
        }
        /* Reading may queue records (alerts, TLS 1.3 key updates). */
        if (tf_stream_flush(s) != 0 || !tf_stream_live(s))
            return;
        if (n == TLS_READ_CLOSED)
            s->sink->eof(s);
        else if (n < 0)
            tls_fail(s, (int)n);
        return;
    }
}

/* A client session's handshake is over: what its owner wrote meanwhile
 * (mode tcp: the client's first bytes) goes out now, encrypted, after the
 * raw head that already went ahead of the ClientHello. 0, or the stream
 * failed. */
static int tls_write_queued(tf_stream_t *s)
{
    tf_bstream_t *b = tf_bstream_of(s);
    size_t head = b->raw_head < s->qlen ? b->raw_head : s->qlen;
    ssize_t n = 0;
    if (s->qlen > head)
        n = tf_tls_session_write(s->tls, s->qbuf + head, s->qlen - head);
    /* The queue stays until its bytes are out: should the socket fail now,
     * still under the handshake's sink, the retry on the next backend takes
     * the queue, PROXY header and all (tf_bstream_move_queue). */
    if (n < 0) {
        tls_fail(s, (int)n);
        return (int)n;
    }
    int rc = tf_stream_flush(s);
    if (rc != 0)
        return rc;
    free(s->qbuf);
    s->qbuf = NULL;
    s->qlen = s->qcap = 0;
    b->raw_head = 0;
    return tf_stream_live(s) ? 0 : UV_ECANCELED;
}

static void tls_handshake(tf_stream_t *s)
{
    int rc = tf_tls_session_handshake(s->tls);
    /* Alerts are output too: flush before acting on a failure. */
    if (tf_stream_flush(s) != 0 || !tf_stream_live(s))
        return;
    if (rc < 0) {
        tls_fail(s, rc);
        return;
    }
    if (rc == TF_TLS_OK) {
        s->flags &= (uint16_t)~TF_STREAM_HANDSHAKE;
        if (s->qbuf != NULL && tls_write_queued(s) != 0)
            return;
        s->sink->ready(s);
    }
}

int tf_stream_tls_expect_preface(tf_stream_t *s, tf_stream_preface_fn fn, size_t max)
{
    s->preface = calloc(1, sizeof *s->preface);
    if (s->preface == NULL)
        return TF_ENOMEM;
    *s->preface = (struct tf_stream_preface){.fn = fn, .max = max};
    return 0;
}

/* The preface from the bytes just read (after those kept from earlier
 * reads): *data and *n move past it once it is whole. False when nothing
 * is left to do with them (more to read, refused, or the connection
 * closed). */
static bool preface_read(tf_stream_t *s, const char **data, size_t *n)
{
    struct tf_stream_preface *p = s->preface;
    size_t kept = p->len; /* from earlier reads */
    const char *all = *data;
    size_t len = *n;
    if (kept > 0) {
        size_t take = *n < p->max - kept ? *n : p->max - kept;
        char *grown = realloc(p->buf, kept + take);
        if (grown == NULL) {
            s->sink->error(s, TF_ENOMEM, "preface");
            return false;
        }
        memcpy(grown + kept, *data, take);
        p->buf = grown;
        p->len = kept + take;
        all = p->buf;
        len = p->len;
    }
    int rc = p->fn(s, all, len < p->max ? len : p->max);
    if (!tf_stream_live(s))
        return false;
    if (rc < 0 || (rc == 0 && len >= p->max) ||
        (rc > 0 && ((size_t)rc <= kept || (size_t)rc > len))) {
        s->sink->error(s, rc < 0 ? rc : TF_EINVAL, "preface");
        return false;
    }
    if (rc == 0) {
        if (kept == 0) { /* the first piece: kept for the next read */
            p->buf = malloc(*n);
            if (p->buf == NULL) {
                s->sink->error(s, TF_ENOMEM, "preface");
                return false;
            }
            memcpy(p->buf, *data, *n);
            p->len = *n;
        }
        return false;
    }
    /* The preface took the kept bytes and the start of this read; the
     * rest of this read is the start of TLS. */
    size_t used = (size_t)rc - kept;
    *data += used;
    *n -= used;
    free(p->buf);
    free(p);
    s->preface = NULL;
    return *n > 0;
}

static void tls_on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    tf_stream_t *s = tf_container_of(h, tf_stream_t, tcp);
    if (n == 0 || !tf_stream_live(s))
        return;
    if (n < 0) {
        /* A TCP FIN without close_notify: passed on as an end of input
         * once there is a session to end; during the handshake it is a
         * failed handshake. */
        if (n == UV_EOF && !(s->flags & TF_STREAM_HANDSHAKE))
            s->sink->eof(s);
        else
            s->sink->error(s, (int)n, "client read");
        return;
    }
    const char *data = buf->base;
    size_t len = (size_t)n;
    if (s->preface != NULL && !preface_read(s, &data, &len))
        return;
    int rc = tf_tls_session_feed(s->tls, data, len);
    if (rc < 0) {
        tls_fail(s, rc);
        return;
    }
    if (s->flags & TF_STREAM_HANDSHAKE) {
        tls_handshake(s);
        if (!tf_stream_live(s) || (s->flags & TF_STREAM_HANDSHAKE))
            return;
    }
    tls_drain(s);
}

void tf_stream_tls_accept(tf_stream_t *s, tf_tls_session_t *tls)
{
    s->tls = tls;
    s->flags |= TF_STREAM_HANDSHAKE | TF_STREAM_WRITABLE;
}

int tf_stream_tls_connect(tf_stream_t *s, tf_tls_session_t *tls)
{
    /* The raw head stays queued too: a retry on another backend
     * (tf_bstream_move_queue) sends it again. */
    tf_bstream_t *b = tf_bstream_of(s);
    size_t head = b->raw_head < s->qlen ? b->raw_head : s->qlen;
    int rc = tf_tls_session_queue_raw(tls, s->qbuf, head);
    if (rc != 0) {
        tf_tls_session_free(tls);
        return rc;
    }
    s->tls = tls;
    s->ops = &tf_stream_tls_ops;
    s->flags |= TF_STREAM_HANDSHAKE | TF_STREAM_WRITABLE;
    rc = s->ops->read_start(s);
    if (rc == 0)
        tls_handshake(s);
    return rc;
}

void tf_stream_goodbye(tf_stream_t *s)
{
    if (s->tls == NULL || (s->flags & (TF_STREAM_HANDSHAKE | TF_STREAM_TLS_BORROWED)) ||
        s->wbuf != NULL || !(s->flags & TF_STREAM_WRITABLE) || (s->flags & TF_STREAM_SHUT_SENT))
        return;
    s->flags |= TF_STREAM_SHUT_SENT;
    if (tf_tls_session_shutdown(s->tls) < 0)
        return;
    void *buf = NULL;
    size_t len = 0;
    if (tf_tls_session_take_out(s->tls, &buf, &len) != 0 || buf == NULL)
        return;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    (void)uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    free(buf);
}

static int tls_read_start(tf_stream_t *s)
{
    return stream_read_start(s, tls_on_read);
}

static int tls_write(tf_stream_t *s, const void *data, size_t len)
{
    /* A backend's handshake: kept until it ends (tls_write_queued). */
    if (s->flags & TF_STREAM_HANDSHAKE)
        return tcp_queue(s, data, len);
    ssize_t n = tf_tls_session_write(s->tls, data, len);
    if (n < 0)
        return (int)n;
    return tf_stream_flush(s);
}

static int tls_take(tf_stream_t *s, char **buf, size_t *len)
{
    /* Usually the socket takes the whole queue at once: written straight
     * from the session's buffer, which then goes back to the thread's
     * spare (tls/session.c); only what the socket leaves is handed over
     * for an asynchronous write. */
    size_t n = 0;
    bool full = false;
    const void *out = tf_tls_session_out(s->tls, &n);
    if (n > 0) {
        uv_buf_t b = uv_buf_init((char *)out, (unsigned)n);
        int w = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
        if (w < 0 && w != UV_EAGAIN)
            return w;
        if (w > 0)
            tf_tls_session_consume_out(s->tls, (size_t)w);
        full = w != (int)n;
    }
    void *p = NULL;
    int rc = tf_tls_session_take_out(s->tls, &p, len);
    *buf = p;
    if (rc == 0 && *buf == NULL)
        *len = 0;
    return rc == 0 && full && *len > 0 ? TAKE_FULL : rc;
}

/* The close_notify goes out through the normal write path; the stream
 * reports itself shut when that write has completed (tls_check_shut). */
static int tls_end(tf_stream_t *s)
{
    s->flags |= TF_STREAM_SHUT_SENT;
    int rc = tf_tls_session_shutdown(s->tls);
    /* The session may refuse once the client's own close_notify arrived;
     * either way nothing more can be sent, so the stream counts as shut. */
    if (rc < 0)
        TF_LOG(TF_LOG_DEBUG, "no close_notify sent: %s", tf_tls_session_error(s->tls));
    return 0;
}

static size_t tls_pending(const tf_stream_t *s)
{
    size_t out = 0;
    (void)tf_tls_session_out(s->tls, &out);
    return s->wlen + out + s->qlen;
}

static const kind_t tls_kind = {.take = tls_take, .end = tls_end};

const tf_stream_ops_t tf_stream_tls_ops = {
    .read_start = tls_read_start,
    .read_stop = stream_read_stop,
    .write = tls_write,
    .shutdown = stream_shutdown,
    .close = stream_close,
    .pending = tls_pending,
    .flush = tf_stream_flush,
};
