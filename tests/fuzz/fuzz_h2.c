/* libFuzzer target for the HTTP/2 sink (SPEC §12, issue 15): a client's
 * bytes, after the TLS layer, through nghttp2 and our callbacks (h2.c), the
 * streams' child connections and their HTTP/1.1 exchanges (h2_stream.c,
 * exchange*.c), to backends and back. No network but loopback.
 *
 * The fixture, built once: a configuration (from a string), a FUZZ-ONLY
 * self-signed certificate generated with wolfCrypt (as fuzz_tls_server.c;
 * nothing committed), and two workers (tf_worker_new, no listeners) whose
 * loops run on the fuzzer's thread, a few rounds at a time
 * (uv_run(UV_RUN_NOWAIT)), never started as threads: one with the default
 * timeouts, one with timeouts of milliseconds for the inputs that let the
 * timers fire. Tenants:
 *   a.fuzz.example  mode http, a backend inside this process on the same
 *                   loop that answers every request head with the canned
 *                   answer the input chose (a body with a length, chunked
 *                   with trailers, 204, interims, 101, a large body, a
 *                   malformed head, a body cut by a close)
 *   b.fuzz.example  mode http, a backend port nothing listens on (refused)
 *   c.fuzz.example  mode tcp (a request naming it is misdirected: 421)
 *
 * Per input, a connection is set up as tf_conn_accept() does, except that
 * its client stream is a memory stream (below) in place of the TLS stream,
 * and tf_h2_start() runs on it as after an ALPN "h2" handshake. The TLS
 * session it carries is a real one that never handshook; its SNI and served
 * certificate are set in the struct (tls_internal.h), test-only.
 *
 * Input: two control bytes, then the client's bytes.
 *   byte 0  bits 0-1  how the bytes are cut into reads: whole, pieces of
 *                     a fixed size, pieces of sizes taken from the data,
 *                     pieces of 1..32 bytes
 *           bit 2     slow client: what the session writes stays pending
 *                     until the next round (its backpressure, written())
 *           bits 3-4  the end: close, client EOF, drain (GOAWAY) then
 *                     close, read error
 *           bits 5-7  the in-process backend's first answer (the next
 *                     requests get the next ones in turn)
 *   byte 1  bit 0     raw: the input carries its own connection preface
 *           bits 1-5  the piece size (fixed and small cuts); 31: let the
 *                     timers fire before the end (up to 50ms)
 *           bits 6-7  the SNI: none, a., b., or c.fuzz.example
 *
 * Invariants: no sanitizer report; what the session writes is a sequence of
 * whole frames beginning with the server's SETTINGS, with no DATA or HEADERS
 * on a stream the client could not have opened; nothing is written to a
 * closed stream; after the close the connection and every stream's child
 * are freed within a bounded number of loop rounds (and LeakSanitizer sees
 * nothing left).
 *
 * TF_FUZZ_H2_LOG=debug (or info, warn) turns the proxy's log on (stderr).
 */
#include "certstore/store.h"
#include "conf/conf.h"
#include "proxy/net/backends.h"
#include "proxy/net/conn.h"
#include "proxy/net/h2.h"
#include "proxy/net/limits.h"
#include "proxy/net/pool.h"
#include "proxy/net/worker.h"
#include "proxy/obs/obs.h"
#include "tls/tls.h"
#include "tests/fuzz/fuzz_snapshot.h"
#include "tls/tls_internal.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn)) static void die(const char *what)
{
    fprintf(stderr, "fuzz_h2: %s\n", what);
    abort();
}

/* ---- the fixture, once per process ---------------------------------------- */

/* Two workers of one process, both driven here: workers[0] with the
 * default timeouts, which never fire during an input (deterministic);
 * workers[1] with timeouts of milliseconds, for the inputs that let the
 * timers run. `worker` is the current input's. The in-process backend
 * listens on workers[0]'s loop; every round runs both loops. */
#define NWORKERS 2
static tf_worker_t *workers[NWORKERS];
static tf_worker_t *worker;
static tf_shared_t shared;
static tf_tls_session_t *session; /* carried by every connection, never handshook */

static unsigned dead_port(void)
{
    uv_loop_t loop;
    uv_tcp_t t;
    struct sockaddr_in a;
    int len = sizeof a;
    if (uv_loop_init(&loop) != 0 || uv_tcp_init(&loop, &t) != 0)
        die("loop");
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_bind(&t, (const struct sockaddr *)&a, 0) != 0 ||
        uv_tcp_getsockname(&t, (struct sockaddr *)&a, &len) != 0)
        die("cannot bind a loopback port");
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return ntohs(a.sin_port);
}

/* ---- the in-process backend ------------------------------------------------ */

/* The answers (byte 0, bits 5-7). */
enum { ANS_LEN, ANS_CHUNKED, ANS_204, ANS_INTERIM, ANS_WS, ANS_BIG, ANS_BAD, ANS_CLOSE };

#define BIG_BODY (100u * 1024u)

typedef struct be_conn {
    uv_tcp_t tcp;
    uv_write_t wreq;
    struct be_conn *prev, *next;
    char head[8192];
    size_t hlen;
    bool writing;     /* a uv_write in flight (its buffer is static) */
    bool tunnel;      /* after a 101: echo */
    bool close_after; /* close once the answer is written */
} be_conn_t;

static uv_tcp_t be_listener;
static be_conn_t *be_conns;
static size_t be_count;
static unsigned be_answer; /* the next request head's answer */
static char be_big[BIG_BODY + 128];
static size_t be_big_len;

static void be_on_closed(uv_handle_t *h)
{
    be_conn_t *b = h->data;
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        be_conns = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    be_count--;
    free(b);
}

static void be_close(be_conn_t *b)
{
    if (!uv_is_closing((uv_handle_t *)&b->tcp))
        uv_close((uv_handle_t *)&b->tcp, be_on_closed);
}

static void be_on_written(uv_write_t *req, int status)
{
    be_conn_t *b = req->data;
    b->writing = false;
    if (status != 0 || b->close_after)
        be_close(b);
}

static const char *answer_text(unsigned which, size_t *len)
{
    static const char *const canned[] = {
        [ANS_LEN] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n"
                    "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhello",
        [ANS_CHUNKED] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\n"
                        "Connection: keep-alive\r\n\r\n5\r\nhello\r\n3;ext=1\r\n, w\r\n0\r\n"
                        "X-T: v\r\nGrpc-Status: 0\r\nConnection: x\r\n\r\n",
        [ANS_204] = "HTTP/1.1 204 No Content\r\nX-Empty: \r\n\r\n",
        [ANS_INTERIM] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                        "Link: </a.css>; rel=preload\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        [ANS_WS] =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        [ANS_BAD] = "HTTP/1.1 abc Nope\r\n\r\n",
        [ANS_CLOSE] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\ncut",
    };
    if (which == ANS_BIG) {
        *len = be_big_len;
        return be_big;
    }
    *len = strlen(canned[which]);
    return canned[which];
}

static void be_answer_now(be_conn_t *b)
{
    size_t len;
    if (b->writing)
        return; /* one answer at a time: a pipelining client waits */
    /* The input chose the first answer; the next requests get the others
     * in turn, so that the streams of one connection see several. */
    unsigned which = be_answer;
    be_answer = (be_answer + 1) % 8;
    const char *text = answer_text(which, &len);
    uv_buf_t buf = uv_buf_init((char *)text, (unsigned)len);
    b->close_after = which == ANS_CLOSE || which == ANS_BAD;
    b->tunnel = which == ANS_WS;
    b->wreq.data = b;
    if (uv_write(&b->wreq, (uv_stream_t *)&b->tcp, &buf, 1, be_on_written) != 0) {
        be_close(b);
        return;
    }
    b->writing = true;
}

static void be_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char rbuf[65536];
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

/* Every request head (up to its blank line) gets the answer; what follows
 * it (a body) is scanned as if it were the next head, as a careless backend
 * would: the proxy must cope with an answer it did not ask for. */
static void be_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    be_conn_t *b = s->data;
    if (n < 0) {
        be_close(b);
        return;
    }
    if (b->tunnel) {
        uv_buf_t echo = uv_buf_init(buf->base, (unsigned)n);
        (void)uv_try_write(s, &echo, 1); /* best effort */
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (b->hlen < sizeof b->head)
            b->head[b->hlen++] = buf->base[i];
        if (b->hlen >= 4 && memcmp(b->head + b->hlen - 4, "\r\n\r\n", 4) == 0) {
            b->hlen = 0;
            be_answer_now(b);
            if (b->tunnel || b->close_after)
                return;
        }
    }
}

static void be_on_connection(uv_stream_t *server, int status)
{
    if (status != 0)
        return;
    be_conn_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        die("out of memory");
    uv_tcp_init(server->loop, &b->tcp);
    b->tcp.data = b;
    b->next = be_conns;
    if (be_conns != NULL)
        be_conns->prev = b;
    be_conns = b;
    be_count++;
    if (uv_accept(server, (uv_stream_t *)&b->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&b->tcp, be_on_alloc, be_on_read) != 0)
        be_close(b);
}

/* ---- the client's memory stream -------------------------------------------- */

/* What the session wrote, walked frame by frame. One connection at a time. */
static struct {
    bool slow;   /* pending() reports what was written since the last round */
    size_t held; /* ... that much */
    uint8_t hdr[9];
    size_t hlen; /* bytes of the next frame header seen */
    size_t skip; /* payload bytes of the current frame still to come */
    uint64_t frames;
} out;

static void frame_header(void)
{
    uint32_t len = (uint32_t)out.hdr[0] << 16 | (uint32_t)out.hdr[1] << 8 | out.hdr[2];
    uint8_t type = out.hdr[3];
    uint32_t id = ((uint32_t)out.hdr[5] << 24 | (uint32_t)out.hdr[6] << 16 |
                   (uint32_t)out.hdr[7] << 8 | out.hdr[8]) &
                  0x7fffffffu;
    /* The server's connection preface is a SETTINGS frame (RFC 9113 §3.4). */
    if (out.frames == 0 && (type != 0x4 || id != 0))
        die("the first frame is not SETTINGS");
    /* DATA and HEADERS only on a stream a client opened (odd; no push). */
    if ((type == 0x0 || type == 0x1) && (id == 0 || id % 2 == 0))
        die("DATA or HEADERS on a stream the client could not have opened");
    out.frames++;
    out.skip = len;
    out.hlen = 0;
}

static void frames_walk(const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (out.skip > 0) {
            size_t k = n < out.skip ? n : out.skip;
            out.skip -= k;
            p += k;
            n -= k;
            continue;
        }
        out.hdr[out.hlen++] = *p++;
        n--;
        if (out.hlen == sizeof out.hdr)
            frame_header();
    }
}

static int mem_read_start(tf_stream_t *s)
{
    s->flags |= TF_STREAM_READING;
    return 0;
}

static void mem_read_stop(tf_stream_t *s)
{
    s->flags &= (uint16_t)~TF_STREAM_READING;
}

static int mem_write(tf_stream_t *s, const void *data, size_t len)
{
    if (!(s->flags & TF_STREAM_OPEN) || (s->flags & TF_STREAM_SHUT_SENT))
        die("a write on a closed or shut stream");
    frames_walk(data, len);
    if (out.slow)
        out.held += len;
    return 0;
}

static int mem_shutdown(tf_stream_t *s)
{
    s->flags |= TF_STREAM_SHUT_WANTED;
    return 0;
}

/* A real (socketless) uv_tcp_t stands behind the stream, so that the close
 * callback comes from libuv, later, as for a socket. */
static void mem_close(tf_stream_t *s, uv_close_cb cb)
{
    s->flags &= (uint16_t) ~(TF_STREAM_OPEN | TF_STREAM_READING);
    uv_close((uv_handle_t *)&s->tcp, cb);
}

static size_t mem_pending(const tf_stream_t *s)
{
    return out.held;
}

static int mem_flush(tf_stream_t *s)
{
    return 0;
}

static const tf_stream_ops_t mem_ops = {
    .read_start = mem_read_start,
    .read_stop = mem_read_stop,
    .write = mem_write,
    .shutdown = mem_shutdown,
    .close = mem_close,
    .pending = mem_pending,
    .flush = mem_flush,
};

/* ---- one connection ------------------------------------------------------------ */

static const char *const snis[] = {NULL, "a.fuzz.example", "b.fuzz.example", "c.fuzz.example"};

/* As tf_conn_accept() and client_accept(), with the memory stream. */
static tf_conn_t *conn_new(unsigned sni)
{
    tf_worker_t *w = worker;
    if (!tf_worker_admit(w))
        die("limits.max_connections");
    tf_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        die("out of memory");
    c->worker = w;
    c->gen = tf_worker_gen_acquire(w);
    c->id = w->accepted++;
    c->started_ms = c->traffic.active_ms = uv_now(&w->loop);
    c->tenant = c->backend_ix = TF_CONN_NO_INDEX;
    c->local_port = 443;
    c->phase = TF_CONN_HANDSHAKE;
    c->peer.in4.sin_family = AF_INET;
    c->peer.in4.sin_port = htons(40000);
    c->peer.in4.sin_addr.s_addr = htonl(0xC0000201); /* 192.0.2.1 */
    tf_stream_init(&c->client, &mem_ops, &w->bufs);
    uv_timer_init(&w->loop, &c->timer);
    c->handles++;
    tf_worker_conn_added(w, c);
    if (tf_stream_tcp_init(&c->client, &w->loop) != 0)
        die("uv_tcp_init");
    c->handles++;
    /* The session is the fixture's: never freed with the stream. */
    session->sni = (char *)snis[sni];
    session->served = sni != 0 ? tf_cs_snapshot_default(w->gen->snap) : NULL;
    c->client.tls = session;
    c->client.flags |= TF_STREAM_WRITABLE | TF_STREAM_TLS_BORROWED;
    return c;
}

/* Whether the connection still exists (it is the worker's only one). */
static bool conn_alive(void)
{
    return worker->nconns > 0;
}

/* One loop round without waiting, then what a socket would report: the
 * slow client's bytes written, a wanted shutdown done. */
static void round_once(tf_conn_t *c)
{
    for (unsigned i = 0; i < NWORKERS; i++)
        uv_run(&workers[i]->loop, UV_RUN_NOWAIT);
    if (!conn_alive())
        return;
    tf_stream_t *s = &c->client;
    if (out.held > 0) {
        out.held = 0;
        if (tf_stream_live(s))
            s->sink->written(s);
    }
    if (conn_alive() && (s->flags & TF_STREAM_SHUT_WANTED) && !(s->flags & TF_STREAM_SHUT_DONE)) {
        s->flags |= TF_STREAM_SHUT_SENT | TF_STREAM_SHUT_DONE;
        if (tf_stream_live(s))
            s->sink->shut(s);
    }
}

static void rounds(tf_conn_t *c, unsigned n)
{
    for (unsigned i = 0; i < n && conn_alive(); i++)
        round_once(c);
}

/* Hands one read to the session, as the TLS stream does. */
static void feed(tf_conn_t *c, const uint8_t *p, size_t n)
{
    tf_stream_t *s = &c->client;
    if (!conn_alive() || !tf_stream_live(s))
        return;
    /* A session that stopped reading gets the bytes once it reads again. */
    for (unsigned i = 0; i < 8 && conn_alive() && !(s->flags & TF_STREAM_READING); i++)
        round_once(c);
    if (!conn_alive() || !tf_stream_live(s) || !(s->flags & TF_STREAM_READING))
        return;
    s->sink->data(s, (const char *)p, n);
}

/* The next piece's length, by the split mode. */
static size_t piece(unsigned split, unsigned size, const uint8_t *p, size_t left)
{
    size_t n = left;
    switch (split) {
    case 0:
        break;
    case 1:
        n = 16u * (size + 1);
        break;
    case 2:
        n = (size_t)p[0] * 4 + 1; /* the data picks its own cuts */
        break;
    default:
        n = size + 1;
        break;
    }
    return n < left ? n : left;
}

/* Lets the timers run (timeouts.idle is 5ms, request_header and response
 * 20ms): the session's idle GOAWAY, the streams' exchange deadlines. At
 * most about 50ms, so that such inputs stay rare in cost. */
static uv_timer_t wait_timer; /* bounds the wait: the loop never blocks longer */

static void wait_on_timer(uv_timer_t *t)
{
}

static void wait_timers(tf_conn_t *c)
{
    uint64_t until = uv_now(&worker->loop) + 50;
    /* On the quick worker's loop, which UV_RUN_ONCE may block on. */
    uv_timer_start(&wait_timer, wait_on_timer, 50, 0);
    for (unsigned i = 0; i < 64 && conn_alive() && uv_now(&worker->loop) < until; i++) {
        uv_run(&worker->loop, UV_RUN_ONCE);
        if (conn_alive())
            round_once(c);
    }
    uv_timer_stop(&wait_timer);
}

static void end_connection(tf_conn_t *c, unsigned how, bool wait)
{
    if (wait)
        wait_timers(c);
    if (!conn_alive())
        return;
    tf_stream_t *s = &c->client;
    switch (how) {
    case 1:
        if (tf_stream_live(s))
            s->sink->eof(s);
        break;
    case 2:
        tf_conn_drain(c);
        rounds(c, 32);
        break;
    case 3:
        if (tf_stream_live(s))
            s->sink->error(s, UV_ECONNRESET, "client read");
        break;
    default:
        break;
    }
    if (conn_alive())
        tf_conn_close(c, TF_LOG_INFO, "fuzz: end of input");
}

/* Runs the loop until the connection, its streams and the backend's side
 * are gone; a connection that outlives the bound is a leak. */
static void run_all(void)
{
    for (unsigned i = 0; i < NWORKERS; i++)
        uv_run(&workers[i]->loop, UV_RUN_NOWAIT);
}

static void finish(void)
{
    for (unsigned i = 0; i < NWORKERS; i++)
        tf_pool_clear(workers[i]->pool);
    for (be_conn_t *b = be_conns; b != NULL; b = b->next)
        be_close(b);
    for (unsigned i = 0; i < 1000 && (worker->nconns > 0 || worker->nchildren > 0 || be_count > 0);
         i++) {
        run_all();
        for (be_conn_t *b = be_conns; b != NULL; b = b->next)
            be_close(b);
    }
    if (worker->nconns > 0 || worker->nchildren > 0)
        die("the connection or a stream was not freed after the close");
    if (be_count > 0)
        die("the backend's connections did not close");
    /* Pooled backend streams closed by tf_pool_clear(): their callbacks. */
    run_all();
    run_all();
}

/* ---- libFuzzer ----------------------------------------------------------------- */

static void fixture_config(const char *dir, const char *cert, unsigned live, unsigned dead,
                           const char *timeouts, tf_conf_t **conf)
{
    static char yaml[2048];
    int n = snprintf(yaml, sizeof yaml,
                     "log:\n  level: error\n  access: /dev/null\n  format: json\n"
                     "listen:\n  https: [\"127.0.0.1:0\"]\n"
                     "tls:\n  certs: [\"%s\"]\n  default_cert: %s\n"
                     "%s"
                     "limits:\n  max_header_bytes: 4096\n  max_header_fields: 50\n"
                     "http2:\n  max_concurrent_streams: 16\n"
                     "tenants:\n"
                     "  live:\n    hosts: [\"a.fuzz.example\", \"*.live.example\"]\n"
                     "    backends: [\"127.0.0.1:%u\"]\n"
                     "  dead:\n    hosts: [\"b.fuzz.example\"]\n"
                     "    backends: [\"127.0.0.1:%u\"]\n"
                     "  raw:\n    hosts: [\"c.fuzz.example\"]\n"
                     "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n",
                     dir, cert, timeouts, live, dead, dead);
    char err[512];
    if (n <= 0 || (size_t)n >= sizeof yaml ||
        tf_conf_load_buffer("fuzz_h2.yaml", yaml, (size_t)n, conf, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_h2: %s\n", err);
        abort();
    }
}

static tf_log_level_t log_level(void)
{
    const char *v = getenv("TF_FUZZ_H2_LOG");
    if (v == NULL)
        return TF_LOG_ERROR;
    return strcmp(v, "debug") == 0  ? TF_LOG_DEBUG
           : strcmp(v, "info") == 0 ? TF_LOG_INFO
           : strcmp(v, "warn") == 0 ? TF_LOG_WARN
                                    : TF_LOG_ERROR;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tf_log_set_level(log_level());
    if (tf_tls_global_init() != 0)
        die("wolfSSL_Init failed");
    tf_tls_thread_init();
    char dir[] = "/tmp/fuzz-h2-XXXXXX", cert[64];
    tf_cs_snapshot_t *snap = tf_fuzz_snapshot("a.fuzz.example", dir, cert, sizeof cert);
    unsigned dead = dead_port();

    /* The backend's port goes into the configuration, which the worker
     * (and its loop) needs first: the socket is bound here and joins the
     * worker's loop afterwards (uv_tcp_open). */
    uv_os_sock_t fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
        die("cannot bind the backend");
    unsigned live = ntohs(a.sin_port);

    static const char *const timeouts[NWORKERS] = {
        "",
        "timeouts:\n  idle: 5ms\n  request_header: 20ms\n  response: 20ms\n",
    };
    char err[512];
    shared.nworkers = NWORKERS;
    shared.max_connections = 1000;
    if (tf_limits_new(&shared.limits) != 0 || tf_backends_new(&shared.backends) != 0)
        die("cannot set up the shared state");
    for (unsigned i = 0; i < NWORKERS; i++) {
        tf_conf_t *conf;
        fixture_config(dir, cert, live, dead, timeouts[i], &conf);
        if (shared.access == NULL &&
            tf_access_open(tf_conf_log(conf), &shared.access, err, sizeof err) != 0)
            die(err);
        if (tf_worker_new(&shared, i, conf, snap, tf_metrics_worker_new(), &workers[i], err,
                          sizeof err) != 0)
            die(err);
        tf_conf_unref(conf); /* the worker's generation holds it */
    }
    shared.workers = workers;
    tf_cs_snapshot_unref(snap);
    worker = workers[0];

    if (uv_tcp_init(&worker->loop, &be_listener) != 0 || uv_tcp_open(&be_listener, fd) != 0 ||
        uv_listen((uv_stream_t *)&be_listener, 128, be_on_connection) != 0)
        die("cannot listen for the backend");
    int n =
        snprintf(be_big, sizeof be_big, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", BIG_BODY);
    memset(be_big + n, 'x', BIG_BODY);
    be_big_len = (size_t)n + BIG_BODY;

    uv_timer_init(&workers[1]->loop, &wait_timer);
    session = tf_tls_session_new(tf_worker_tls(worker), tf_worker_snap(worker));
    if (session == NULL)
        die("cannot make a TLS session");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (size < 2)
        return 0;
    unsigned split = data[0] & 3, end = data[0] >> 3 & 3, size_bits = data[1] >> 1 & 31;
    bool raw = data[1] & 1;
    memset(&out, 0, sizeof out);
    /* Waiting costs time: only for one piece size in 32. */
    bool wait = size_bits == 31;
    worker = workers[wait ? 1 : 0];
    out.slow = (data[0] & 4) != 0;
    be_answer = data[0] >> 5;
    tf_conn_t *c = conn_new(data[1] >> 6);
    data += 2;
    size -= 2;

    if (tf_h2_start(c) != 0)
        tf_conn_fail(c, TF_ENOMEM, "HTTP");
    rounds(c, 1);
    if (!raw)
        feed(c, preface, sizeof preface - 1);
    while (size > 0 && conn_alive()) {
        size_t n = piece(split, size_bits, data, size);
        feed(c, data, n);
        data += n;
        size -= n;
        rounds(c, 2);
    }
    /* Time for the backends to answer and the answers to go out. */
    rounds(c, 24);
    end_connection(c, end, wait);
    finish();
    if (out.hlen != 0 || out.skip != 0)
        die("the session's output ended inside a frame");
    return 0;
}
