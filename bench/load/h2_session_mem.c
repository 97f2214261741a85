/* What libnghttp2's server session allocates, counted through a
 * nghttp2_mem of our own (docs/PERFORMANCE.md, idle HTTP/2 memory): with
 * the proxy's options and SETTINGS (proxy/net/h2.c), the bytes held after
 * the session is made, and after one GET (a browser's usual fields) and its
 * answer. No network: two sessions in memory, a client's and the server's.
 *
 *   bench_h2_session_mem [-v]     (prints "after_new=N after_one_stream=M
 *                                  allocations=K", usable sizes in bytes;
 *                                  -v: each allocation's size as it is made)
 */
#include <nghttp2/nghttp2.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

static long live, allocations;
static int verbose;

static void count(void *p, long sign)
{
    if (verbose && p != NULL && sign > 0)
        fprintf(stderr, "%zu\n", malloc_usable_size(p));
    if (p != NULL)
        live += sign * (long)malloc_usable_size(p);
}

static void *m_malloc(size_t n, void *ud)
{
    void *p = malloc(n);
    count(p, 1);
    allocations += p != NULL;
    return p;
}

static void m_free(void *p, void *ud)
{
    count(p, -1);
    free(p);
}

static void *m_calloc(size_t a, size_t b, void *ud)
{
    void *p = calloc(a, b);
    count(p, 1);
    allocations += p != NULL;
    return p;
}

static void *m_realloc(void *p, size_t n, void *ud)
{
    count(p, -1);
    void *q = realloc(p, n);
    count(q != NULL ? q : p, 1);
    return q;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE         \
    }

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type == NGHTTP2_HEADERS && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "text/html"),
                           NV("content-length", "0"), NV("date", "Mon, 07 Dec 2026 20:44:27 GMT")};
        nghttp2_submit_response(s, f->hd.stream_id, nv, sizeof nv / sizeof nv[0], NULL);
    }
    return 0;
}

/* Everything each side has to send, to the other, until both are quiet. */
static void exchange(nghttp2_session *a, nghttp2_session *b)
{
    for (int round = 0; round < 10; round++) {
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(a, &p)) > 0)
            nghttp2_session_mem_recv(b, p, (size_t)n);
        while ((n = nghttp2_session_mem_send(b, &p)) > 0)
            nghttp2_session_mem_recv(a, p, (size_t)n);
    }
}

int main(int argc, char **argv)
{
    verbose = argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v';
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_session *client, *server;
    nghttp2_mem mem = {NULL, m_malloc, m_free, m_calloc, m_realloc};
    if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        return 1;
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    /* The proxy's options (h2.c: h2_init_once). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_stream_reset_rate_limit(opt, 100000, 100000);
    nghttp2_option_set_no_closed_streams(opt, 1);
    if (nghttp2_session_client_new(&client, cb, NULL) != 0)
        return 1;
    nghttp2_submit_settings(client, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_nv req[] = {
        NV(":method", "GET"),
        NV(":path", "/"),
        NV(":scheme", "https"),
        NV(":authority", "tenant0.bench.example:8443"),
        NV("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
                         "Gecko) Chrome/120.0 Safari/537.36"),
        NV("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        NV("accept-language", "en-US,en;q=0.9"),
    };
    nghttp2_submit_request(client, NULL, req, sizeof req / sizeof req[0], NULL, NULL);
    if (nghttp2_session_server_new3(&server, cb, NULL, opt, &mem) != 0)
        return 1;
    /* The proxy's SETTINGS and connection window (h2.c: tf_h2_start). */
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 256 * 1024},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16384},
    };
    nghttp2_submit_settings(server, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(server, NGHTTP2_FLAG_NONE, 0, 1024 * 1024);
    long after_new = live;
    exchange(client, server);
    printf("after_new=%ld after_one_stream=%ld allocations=%ld\n", after_new, live, allocations);
    nghttp2_session_del(server);
    nghttp2_session_del(client);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    return 0;
}
