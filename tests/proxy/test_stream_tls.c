/* The TLS stream in process: a tf_tls server session behind a stream on one
 * end of a socketpair, a wolfSSL client (non-blocking) on the other, the
 * loop run without blocking in between. What the TCP stream tests
 * (test_stream.c) cannot show: the handshake's end reported by ready(), the
 * sink installed there taking the data that came with the last handshake
 * flight, a close_notify as eof, and a sink that closes the stream while the
 * stream is still decrypting records it read at once. */
#include "../tls/harness.h"
#include "proxy/net/stream.h"
#include "tests/harness/harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    uv_loop_t loop;
    tf_stream_bufs_t bufs;
    tf_stream_t s; /* the server's TLS stream */
    bool open, closed;
    int far;
    tf_tls_ctx_t *ctx;
    WOLFSSL_CTX *cctx;
    WOLFSSL *client;
    /* What the sinks saw. */
    int ready, data_before_ready, eofs, errors, after_close;
    char got[256];
    size_t got_len;
    size_t records_seen;
    bool close_in_data;
} fixture_t;

static fixture_t *fx;

static void on_closed(uv_handle_t *h)
{
    tf_stream_dispose(&fx->s);
    fx->closed = true;
}

static void close_stream(void)
{
    if (!fx->open)
        return;
    fx->open = false;
    fx->s.ops->close(&fx->s, on_closed);
}

/* ---- the sinks -------------------------------------------------------- */

static void nothing(tf_stream_t *s)
{
}

static void app_on_data(tf_stream_t *s, const char *data, size_t len)
{
    if (!fx->open) {
        fx->after_close++;
        return;
    }
    cr_assert_lt(fx->got_len + len, sizeof fx->got);
    memcpy(fx->got + fx->got_len, data, len);
    fx->got_len += len;
    fx->records_seen++;
    if (fx->close_in_data)
        close_stream();
}

static void app_on_eof(tf_stream_t *s)
{
    if (!fx->open)
        fx->after_close++;
    fx->eofs++;
}

static void on_error(tf_stream_t *s, int err, const char *what)
{
    fx->errors++;
    close_stream();
}

static const tf_sink_t app_sink = {
    .data = app_on_data,
    .eof = app_on_eof,
    .written = nothing,
    .shut = nothing,
    .error = on_error,
    .ready = nothing,
};

static void hs_on_data(tf_stream_t *s, const char *data, size_t len)
{
    fx->data_before_ready++;
}

/* The handshake's sink hands the stream over, as conn.c does. */
static void hs_on_ready(tf_stream_t *s)
{
    fx->ready++;
    tf_stream_set_sink(s, &app_sink, fx);
}

static const tf_sink_t handshake_sink = {
    .data = hs_on_data,
    .eof = nothing,
    .written = nothing,
    .shut = nothing,
    .error = on_error,
    .ready = hs_on_ready,
};

/* ---- set-up ------------------------------------------------------------ */

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    hx_setup(false);
    fx = calloc(1, sizeof *fx);
    cr_assert_not_null(fx);
    cr_assert_eq(uv_loop_init(&fx->loop), 0);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK), 0);
    fx->far = sv[1];

    fx->ctx = hx_ctx(false, false, NULL);
    tf_stream_init(&fx->s, &tf_stream_tls_ops, &fx->bufs);
    cr_assert_eq(tf_stream_tcp_init(&fx->s, &fx->loop), 0);
    cr_assert_eq(uv_tcp_open(&fx->s.tcp, sv[0]), 0);
    fx->open = true;
    tf_tls_session_t *tls = tf_tls_session_new(fx->ctx, hx_snap());
    cr_assert_not_null(tls);
    tf_stream_tls_accept(&fx->s, tls);
    tf_stream_set_sink(&fx->s, &handshake_sink, fx);
    cr_assert_eq(fx->s.ops->read_start(&fx->s), 0);

    fx->cctx = hx_client_ctx(13, NULL);
    fx->client = wolfSSL_new(fx->cctx);
    cr_assert_not_null(fx->client);
    cr_assert_eq(wolfSSL_set_fd(fx->client, fx->far), WOLFSSL_SUCCESS);
    wolfSSL_UseSNI(fx->client, WOLFSSL_SNI_HOST_NAME, "portal.acme.example",
                   (unsigned short)strlen("portal.acme.example"));
}

/* The stream is closed and freed, and the loop ends with no handle left. */
static void teardown(void)
{
    close_stream();
    cr_expect_eq(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    cr_expect(fx->closed);
    cr_expect_eq(uv_loop_close(&fx->loop), 0, "a handle outlived the stream");
    wolfSSL_free(fx->client);
    wolfSSL_CTX_free(fx->cctx);
    close(fx->far);
    tf_tls_ctx_free(fx->ctx);
    free(fx);
    hx_teardown();
}

TestSuite(stream_tls, .init = setup, .fini = teardown, .timeout = 120);

/* One turn: the loop, then a short wait on the far end. */
static void turn(void)
{
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    struct pollfd p = {.fd = fx->far, .events = POLLIN};
    (void)poll(&p, 1, 2);
}

/* Drives the client's handshake, turning the loop meanwhile, to its end. */
static void client_handshake(void)
{
    long long end = tf_px_now_ms() + TF_PX_WAIT_MS;
    for (;;) {
        int rc = wolfSSL_connect(fx->client);
        if (rc == WOLFSSL_SUCCESS)
            return;
        int err = wolfSSL_get_error(fx->client, rc);
        cr_assert(err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE,
                  "client handshake failed: %d", err);
        cr_assert(tf_px_now_ms() < end, "the handshake did not end");
        turn();
    }
}

static void client_write(const char *text)
{
    int n = wolfSSL_write(fx->client, text, (int)strlen(text));
    cr_assert_eq(n, (int)strlen(text), "client write: %d", wolfSSL_get_error(fx->client, n));
}

static void run_until(bool (*cond)(void))
{
    long long end = tf_px_now_ms() + TF_PX_WAIT_MS;
    while (!cond() && tf_px_now_ms() < end)
        turn();
}

static bool got_hello(void)
{
    return fx->got_len >= 5;
}

static bool got_eof(void)
{
    return fx->eofs > 0;
}

static bool stream_closed(void)
{
    return fx->closed;
}

/* The client's Finished and its first bytes leave together; the server
 * reads them at once: ready() swaps the sink and the bytes decrypted after
 * it go to the new sink, none to the handshake's. */
Test(stream_tls, ready_hands_the_same_read_to_the_new_sink)
{
    client_handshake();
    client_write("hello");
    run_until(got_hello);
    cr_assert_eq(fx->ready, 1);
    cr_expect_eq(fx->data_before_ready, 0, "the handshake's sink got plaintext");
    cr_assert_eq(fx->got_len, 5, "the new sink got %zu bytes", fx->got_len);
    cr_expect(memcmp(fx->got, "hello", 5) == 0);
    cr_expect_eq(fx->errors, 0);
}

/* A close_notify is the end of the client's output. */
Test(stream_tls, close_notify_is_eof)
{
    client_handshake();
    client_write("bye!!");
    (void)wolfSSL_shutdown(fx->client);
    run_until(got_eof);
    cr_expect_eq(fx->got_len, 5);
    cr_expect_eq(fx->eofs, 1);
    cr_expect_eq(fx->errors, 0);
}

/* Three records in one read: the sink closes the stream at the first, and
 * the stream decrypts and reports nothing more. */
Test(stream_tls, a_sink_closes_while_records_wait)
{
    client_handshake();
    fx->close_in_data = true;
    client_write("one");
    client_write("two");
    client_write("three");
    (void)wolfSSL_shutdown(fx->client);
    run_until(stream_closed);
    cr_assert(fx->closed, "the stream was not closed");
    cr_expect_eq(fx->records_seen, 1, "%zu records after the close", fx->records_seen);
    cr_expect_eq(fx->after_close, 0);
    cr_expect_eq(fx->eofs, 0);
}
