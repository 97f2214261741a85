/* The data path in process: two plain TCP streams over socketpairs and the
 * pump between them, no listener and no proxy. The test holds the far end
 * of each pair ("client" behind stream A, "backend" behind stream B) as a
 * non-blocking descriptor and runs the loop without blocking in between, so
 * every step waits on descriptors or a bounded deadline, never on a sleep.
 *
 *   far_a <-> A ==pump== B <-> far_b
 */
#include "proxy/net/pump.h"
#include "proxy/net/stream.h"
#include "tests/harness/harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    uv_loop_t loop;
    tf_stream_bufs_t bufs;
    tf_stream_t *a, *b;
    int far_a, far_b;
    tf_pump_t pump;
    tf_traffic_t traffic;
    /* What the owner was told. */
    const char *closed;
    int failed;
    int ended_client, ended_backend;
    /* A sink that is not the pump's: what it saw. */
    char seen[256];
    size_t seen_len;
    int events_after_close;
    bool closed_by_sink;
} fixture_t;

static fixture_t *fx;

static void nonblocking(int fd)
{
    cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* A stream on the near end of a new socketpair; *far gets the other end. */
static tf_stream_t *stream_pair(int *far, const tf_sink_t *sink, void *owner)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* A TCP handle (uv_tcp_open takes any stream socket). */
    const struct sockaddr tcp = {.sa_family = AF_INET};
    tf_stream_t *s = tf_bstream_new(&fx->loop, &fx->bufs, &tcp, sink, owner);
    cr_assert_not_null(s);
    cr_assert_eq(uv_tcp_open(&s->tcp, sv[0]), 0);
    nonblocking(sv[1]);
    *far = sv[1];
    return s;
}

/* The owner's side of the pump: it closes both streams, as a connection
 * does. */
static void close_streams(void)
{
    if (fx->a != NULL)
        tf_bstream_release(fx->a);
    if (fx->b != NULL)
        tf_bstream_release(fx->b);
    fx->a = fx->b = NULL;
}

static void owner_close(tf_pump_t *p, tf_log_level_t level, const char *reason)
{
    fx->closed = reason;
    close_streams();
}

static void owner_fail(tf_pump_t *p, int err, const char *what)
{
    fx->failed = err;
    close_streams();
}

static void owner_ended(tf_pump_t *p, bool client)
{
    if (client)
        fx->ended_client++;
    else
        fx->ended_backend++;
}

static const tf_pump_owner_t owner = {
    .close = owner_close,
    .fail = owner_fail,
    .ended = owner_ended,
};

static void setup(void)
{
    /* Writes to a closed peer fail with EPIPE, as in the proxy. */
    signal(SIGPIPE, SIG_IGN);
    fx = calloc(1, sizeof *fx);
    cr_assert_not_null(fx);
    cr_assert_eq(uv_loop_init(&fx->loop), 0);
    fx->far_a = fx->far_b = -1;
}

/* The loop ends with no handle left: every stream was closed and freed. */
static void teardown(void)
{
    close_streams();
    cr_expect_eq(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    cr_expect_eq(uv_loop_close(&fx->loop), 0, "a handle outlived its stream");
    if (fx->far_a >= 0)
        close(fx->far_a);
    if (fx->far_b >= 0)
        close(fx->far_b);
    free(fx);
}

TestSuite(stream, .init = setup, .fini = teardown, .timeout = 120);

/* Runs the loop until cond() holds; between turns, waits for the far ends
 * (at most a few ms) instead of sleeping. False at the deadline. */
static bool run_until(bool (*cond)(void *), void *arg)
{
    long long end = tf_px_now_ms() + TF_PX_WAIT_MS;
    while (tf_px_now_ms() < end) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        if (cond(arg))
            return true;
        struct pollfd p[2] = {{.fd = fx->far_a, .events = POLLIN},
                              {.fd = fx->far_b, .events = POLLIN}};
        (void)poll(p, 2, 5);
    }
    return false;
}

static void start_pump(void)
{
    fx->a = stream_pair(&fx->far_a, NULL, NULL);
    fx->b = stream_pair(&fx->far_b, NULL, NULL);
    cr_assert_eq(tf_stream_set_writable(fx->a), 0);
    tf_pump_start(&fx->pump, &fx->loop, fx->a, fx->b, false, &fx->traffic, &owner, fx);
}

/* Writes all of buf to a non-blocking far end, running the loop while the
 * socket is full. */
static void far_write(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    long long end = tf_px_now_ms() + TF_PX_WAIT_MS;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        cr_assert(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "write: %s", strerror(errno));
        cr_assert(tf_px_now_ms() < end, "the far end never drained");
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    }
}

typedef struct {
    int fd;
    char *buf;
    size_t want, got;
    bool eof;
} reader_t;

/* Reads what is there; true once `want` bytes (or the end) arrived. */
static bool far_read_some(void *arg)
{
    reader_t *r = arg;
    for (;;) {
        char tmp[65536];
        size_t room = r->want - r->got;
        ssize_t n = read(r->fd, room > 0 ? r->buf + r->got : tmp, room > 0 ? room : sizeof tmp);
        if (n > 0) {
            if (room == 0)
                cr_assert_fail("%zd bytes more than expected", n);
            r->got += (size_t)n;
            continue;
        }
        if (n == 0)
            r->eof = true;
        break;
    }
    return r->got == r->want || r->eof;
}

static bool far_eof(void *arg)
{
    reader_t *r = arg;
    (void)far_read_some(r);
    return r->eof;
}

static void expect_read(int fd, const char *want)
{
    char got[256] = "";
    reader_t r = {.fd = fd, .buf = got, .want = strlen(want)};
    cr_assert(run_until(far_read_some, &r), "read %zu of %zu bytes", r.got, r.want);
    cr_expect_eq(r.got, strlen(want));
    cr_expect(memcmp(got, want, r.got) == 0, "got '%.*s', want '%s'", (int)r.got, got, want);
}

static void fill_pattern(char *buf, size_t len, size_t offset)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)((offset + i) * 131u >> 3);
}

static bool a_stopped(void *arg)
{
    size_t *max_pending = arg;
    size_t p = fx->b->ops->pending(fx->b);
    if (p > *max_pending)
        *max_pending = p;
    return !(fx->a->flags & TF_STREAM_READING);
}

/* A backend that does not read: the client stops being read once the
 * backend's queue passes the high-water mark, which bounds the memory
 * held; reading resumes once it drains, and every byte arrives in order. */
Test(stream, backpressure_stops_and_resumes_reading_intact)
{
    start_pump();
    const size_t total = 4u * 1024u * 1024u;
    char *out = malloc(total), *in = malloc(total);
    cr_assert(out != NULL && in != NULL);
    fill_pattern(out, total, 0);

    /* Fill until the pump stops reading A: the socketpair holds some, the
     * rest waits in B's queue. */
    size_t sent = 0, max_pending = 0;
    long long end = tf_px_now_ms() + TF_PX_WAIT_MS;
    while (!a_stopped(&max_pending) && sent < total && tf_px_now_ms() < end) {
        ssize_t n = write(fx->far_a, out + sent, total - sent < 65536 ? total - sent : 65536);
        if (n > 0)
            sent += (size_t)n;
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    }
    cr_assert(!(fx->a->flags & TF_STREAM_READING), "A still read after %zu bytes", sent);
    size_t pending = fx->b->ops->pending(fx->b);
    cr_expect_geq(pending, TF_PUMP_HIGH_WATER, "stopped below the high-water mark: %zu", pending);
    cr_expect_leq(max_pending, TF_PUMP_HIGH_WATER + TF_STREAM_BUF,
                  "held %zu bytes: more than one read past the mark", max_pending);

    /* More input stays in the kernel: the queue does not grow. */
    for (int i = 0; i < 50; i++) {
        ssize_t n = write(fx->far_a, out + sent, total - sent < 65536 ? total - sent : 65536);
        if (n > 0)
            sent += (size_t)n;
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    }
    cr_expect_leq(fx->b->ops->pending(fx->b), TF_PUMP_HIGH_WATER + TF_STREAM_BUF);

    /* The backend reads: everything flows, in order. */
    reader_t r = {.fd = fx->far_b, .buf = in, .want = total};
    end = tf_px_now_ms() + TF_PX_WAIT_MS;
    while (r.got < total && tf_px_now_ms() < end) {
        if (sent < total) {
            ssize_t n = write(fx->far_a, out + sent, total - sent < 65536 ? total - sent : 65536);
            if (n > 0)
                sent += (size_t)n;
        }
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        (void)far_read_some(&r);
    }
    cr_assert_eq(r.got, total, "received %zu of %zu", r.got, total);
    cr_expect(memcmp(in, out, total) == 0, "bytes changed on the way");
    cr_expect_eq(fx->traffic.up, total);
    cr_expect(fx->a->flags & TF_STREAM_READING, "A not read again after the drain");
    free(out);
    free(in);
}

/* Each side ends on its own: the client's end reaches the backend as a FIN
 * while the backend still answers, and the tunnel is done once both ended. */
Test(stream, half_close_both_ways)
{
    start_pump();
    far_write(fx->far_a, "ping", 4);
    cr_assert_eq(shutdown(fx->far_a, SHUT_WR), 0);
    expect_read(fx->far_b, "ping");
    reader_t r = {.fd = fx->far_b};
    cr_assert(run_until(far_eof, &r), "the client's end did not reach the backend");
    cr_expect_eq(fx->ended_client, 1);
    cr_expect_null(fx->closed, "closed after one side: %s", fx->closed);

    far_write(fx->far_b, "pong", 4);
    expect_read(fx->far_a, "pong");
    cr_assert_eq(shutdown(fx->far_b, SHUT_WR), 0);
    reader_t ra = {.fd = fx->far_a};
    cr_assert(run_until(far_eof, &ra), "the backend's end did not reach the client");
    cr_expect_eq(fx->ended_backend, 1);
    cr_expect_str_eq(fx->closed != NULL ? fx->closed : "(not closed)", "done");
    cr_expect_eq(fx->traffic.up, 4);
    cr_expect_eq(fx->traffic.down, 4);
}

/* ---- a sink of the test's own: an "HTTP" side that upgrades ------------ */

static void upgrade_on_data(tf_stream_t *s, const char *data, size_t len)
{
    const char *mark = "UPGRADE\n";
    if (fx->closed_by_sink) {
        fx->events_after_close++;
        return;
    }
    cr_assert_lt(fx->seen_len + len, sizeof fx->seen - 1);
    memcpy(fx->seen + fx->seen_len, data, len);
    fx->seen_len += len;
    fx->seen[fx->seen_len] = '\0';
    const char *end = strstr(fx->seen, mark);
    if (end == NULL)
        return;
    /* The swap, as a 101 does it: what followed the head in this read is
     * the tunnel's, written first; the pump reads on. */
    size_t head = (size_t)(end - fx->seen) + strlen(mark);
    fx->b = stream_pair(&fx->far_b, NULL, NULL);
    cr_assert_eq(fx->b->ops->write(fx->b, fx->seen + head, fx->seen_len - head), 0);
    tf_pump_start(&fx->pump, &fx->loop, s, fx->b, false, &fx->traffic, &owner, fx);
}

static void test_sink_eof(tf_stream_t *s)
{
    if (fx->closed_by_sink)
        fx->events_after_close++;
}

static void test_sink_error(tf_stream_t *s, int err, const char *what)
{
    cr_assert_fail("stream error %d (%s)", err, what);
}

static void test_sink_nothing(tf_stream_t *s)
{
}

static const tf_sink_t upgrade_sink = {
    .data = upgrade_on_data,
    .eof = test_sink_eof,
    .written = test_sink_nothing,
    .shut = test_sink_nothing,
    .error = test_sink_error,
    .ready = test_sink_nothing,
};

static bool saw_bytes(void *arg)
{
    return fx->seen_len >= *(size_t *)arg;
}

/* An Upgrade is a sink swap: the bytes after the upgrading head, in the
 * same read, and everything after go through the tunnel both ways. */
Test(stream, upgrade_swaps_the_sink_in_the_middle_of_a_read)
{
    fx->a = stream_pair(&fx->far_a, &upgrade_sink, fx);
    cr_assert_eq(tf_stream_set_writable(fx->a), 0);
    cr_assert_eq(fx->a->ops->read_start(fx->a), 0);
    far_write(fx->far_a, "GET / HTTP/1.1\nUPGRADE\nhello ", 29);
    size_t want = 29;
    cr_assert(run_until(saw_bytes, &want), "the first sink saw %zu bytes", fx->seen_len);
    cr_assert_not_null(fx->b, "no swap");
    cr_expect_eq(fx->a->owner, &fx->pump, "the client stream does not report to the pump");
    cr_expect_eq(fx->b->owner, &fx->pump);
    far_write(fx->far_a, "world", 5);
    expect_read(fx->far_b, "hello world");
    far_write(fx->far_b, "back", 4);
    expect_read(fx->far_a, "back");
    cr_expect_eq(fx->seen_len, 29, "the old sink got bytes after the swap");
}

/* ---- a sink that ends everything from inside its callback -------------- */

static void closing_on_data(tf_stream_t *s, const char *data, size_t len)
{
    if (fx->closed_by_sink) {
        fx->events_after_close++;
        return;
    }
    fx->seen_len += len;
    fx->closed_by_sink = true;
    close_streams();
}

static const tf_sink_t closing_sink = {
    .data = closing_on_data,
    .eof = test_sink_eof,
    .written = test_sink_nothing,
    .shut = test_sink_nothing,
    .error = test_sink_error,
    .ready = test_sink_nothing,
};

/* Drops what arrives (the output written before the close) until the end. */
static bool far_a_closed(void *arg)
{
    char tmp[65536];
    ssize_t n;
    while ((n = read(fx->far_a, tmp, sizeof tmp)) > 0)
        ;
    return n == 0;
}

/* The owner closes the stream in the middle of its data callback, with more
 * input and the peer's end already waiting: the stream reports nothing
 * more, frees itself once libuv has closed it (ASan watches), and the loop
 * ends with no handle left (teardown). */
Test(stream, a_sink_may_close_from_inside_its_callback)
{
    fx->a = stream_pair(&fx->far_a, &closing_sink, fx);
    cr_assert_eq(tf_stream_set_writable(fx->a), 0);
    cr_assert_eq(fx->a->ops->read_start(fx->a), 0);
    /* Queued output too: the close drops it without a write callback. */
    char big[200000];
    memset(big, 'x', sizeof big);
    cr_assert_eq(fx->a->ops->write(fx->a, big, sizeof big), 0);
    far_write(fx->far_a, "first", 5);
    cr_assert_eq(shutdown(fx->far_a, SHUT_WR), 0);
    cr_assert(run_until(far_a_closed, NULL), "the stream was not closed");
    cr_expect(fx->closed_by_sink);
    cr_expect_eq(fx->seen_len, 5);
    cr_expect_eq(fx->events_after_close, 0, "%d events after the close", fx->events_after_close);
}

/* The same inside the pump: the backend goes away while the client's bytes
 * are being written to it; the owner is told once and closes both. */
Test(stream, the_pump_reports_a_vanished_backend_once)
{
    start_pump();
    close(fx->far_b);
    fx->far_b = -1;
    char buf[65536];
    memset(buf, 'y', sizeof buf);
    long long end = tf_px_now_ms() + TF_PX_WAIT_MS;
    while (fx->a != NULL && tf_px_now_ms() < end) {
        (void)write(fx->far_a, buf, sizeof buf);
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    }
    cr_assert_null(fx->a, "the tunnel outlived its backend");
    cr_expect(fx->failed != 0 || fx->closed != NULL);
}
