/* Port 80 (SPEC §7): the pure routing decisions, then the responder on its
 * own libuv loop (a thread of the test) on an ephemeral port, driven by curl
 * and by raw sockets. Each test ends by closing the responder and checking
 * that the loop has no handle left. */
#include "proxy/net/redirect.h"

#include "proxy/obs/access.h"

#include "acme/acme.h"

#include "conf/conf.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static void setup(void);
static void teardown(void);

/* Every test runs with the responder up (one suite: Criterion 2.4's
 * runner leaks in its parent when two suites of this file run side by
 * side under --jobs 2, which LeakSanitizer then reports). */
TestSuite(redirect, .init = setup, .fini = teardown, .timeout = 60);

/* ---- pure routing ------------------------------------------------------------ */

static int route(const char *head, char *out, size_t outlen)
{
    tf_http_parser_t p;
    tf_http_request_t req;
    tf_http_parser_init(&p);
    int rc = tf_http_parse_head(&p, head, strlen(head), 32768, &req);
    if (rc != 0)
        return -rc;
    return tf_redirect_route(&req, true, out, outlen);
}

Test(redirect, redirects_keep_target_drop_port_and_lower_the_host)
{
    char out[512];
    cr_expect_eq(
        route("GET /a/b?c=d HTTP/1.1\r\nHost: Portal.Acme.Example:8080\r\n\r\n", out, sizeof out),
        301);
    cr_expect_str_eq(out, "https://portal.acme.example/a/b?c=d");
    cr_expect_eq(route("POST /x HTTP/1.1\r\nHost: [2001:db8::1]:80\r\nContent-Length: 3\r\n\r\n",
                       out, sizeof out),
                 301);
    cr_expect_str_eq(out, "https://[2001:db8::1]/x");
    cr_expect_eq(route("GET /\xc3\xa9 HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n", out, sizeof out), 301);
    cr_expect_str_eq(out, "https://192.0.2.1/%C3%A9");
    cr_expect_eq(route("GET /\"<>\\^`{|}~ HTTP/1.1\r\nHost: a\r\n\r\n", out, sizeof out), 301);
    cr_expect_str_eq(out, "https://a/%22%3C%3E%5C%5E%60%7B%7C%7D~");
    cr_expect_eq(route("GET /x HTTP/1.1\r\nHost: a.example.\r\n\r\n", out, 20), 414);
}

Test(redirect, no_usable_host_or_target_is_400)
{
    static const char *const heads[] = {
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: \r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a..b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: .a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [zz::1]\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    char out[512];
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++)
        cr_expect_eq(route(heads[i], out, sizeof out), 400, "%s", heads[i]);
}

Test(redirect, acme_tokens_only_from_a_strict_alphabet)
{
    char out[512];
    cr_expect_eq(route("GET /.well-known/acme-challenge/Ab-_9?x HTTP/1.1\r\nHost: a\r\n\r\n", out,
                       sizeof out),
                 TF_REDIRECT_ACME);
    cr_expect_str_eq(out, "Ab-_9");
    cr_expect_eq(route("HEAD /.well-known/acme-challenge/t HTTP/1.0\r\n\r\n", out, sizeof out),
                 TF_REDIRECT_ACME);
    static const char *const bad[] = {
        "/", "..", ".", "a.b", "%2e%2e", "..%2fx", "a/b", "/etc/passwd", "a%00", "a\xc3\xa9", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char head[256];
        snprintf(head, sizeof head,
                 "GET /.well-known/acme-challenge/%s HTTP/1.1\r\nHost: a\r\n\r\n", bad[i]);
        cr_expect_eq(route(head, out, sizeof out), 404, "%s", bad[i]);
    }
    /* Other methods are redirected, like everything else. */
    cr_expect_eq(
        route("POST /.well-known/acme-challenge/t HTTP/1.1\r\nHost: a\r\n\r\n", out, sizeof out),
        301);
}

Test(redirect, responses_are_complete_and_closed)
{
    char out[512];
    long n = tf_redirect_format(out, sizeof out, 301, "https://a/x", "hi\n", 3, false, 0);
    cr_assert_gt(n, 0);
    out[n] = '\0';
    cr_expect_str_eq(out, "HTTP/1.1 301 Moved Permanently\r\n"
                          "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
                          "Location: https://a/x\r\nContent-Type: text/plain\r\n"
                          "Content-Length: 3\r\nConnection: close\r\n\r\nhi\n");
    n = tf_redirect_format(out, sizeof out, 404, NULL, "hi\n", 3, true, 0);
    out[n] = '\0';
    cr_expect(strstr(out, "Content-Length: 3\r\nConnection: close\r\n\r\n") != NULL);
    cr_expect_eq(out[n - 1], '\n');
    cr_expect_eq(tf_redirect_format(out, 40, 301, "https://a/x", "", 0, false, 0), -1);
}

/* ---- the responder on a loop ------------------------------------------------- */

static struct {
    char dir[64];
    char webroot[128];
    unsigned port;
    tf_conf_t *conf;
    tf_conf_t *conf2; /* acme.webroot: null */
    tf_conf_t *conf3; /* limits.max_connections: 1 */
    tf_conf_t *pp[2]; /* listen.proxy_protocol from 127.0.0.1, from 10.0.0.0/8 */
    tf_conf_t *next;  /* what the swap installs */
    uv_loop_t loop;
    uv_async_t stop, swap;
    tf_redirect_t *r;
    tf_access_log_t *access;
    tf_acme_challenges_t *challenges; /* the built-in client's answers */
    char access_path[160];
    pthread_t thread;
    int loop_close_rc;
    bool done_called;
} t;

static tf_conf_t *load_conf(const char *webroot, unsigned max_conns)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "listen:\n  https: [\"127.0.0.1:8443\"]\n  http: [\"127.0.0.1:8080\"]\n"
             "acme:\n  webroot: %s\n"
             "timeouts:\n  request_header: 500ms\n"
             "limits:\n  max_header_bytes: 1024\n  max_connections: %u\n"
             "tenants:\n  a:\n    hosts: [\"*\"]\n    backends: [\"127.0.0.1:9\"]\n",
             webroot, max_conns);
    tf_conf_t *c = NULL;
    char err[1024] = "";
    cr_assert_eq(tf_conf_load_buffer("test.yaml", yaml, strlen(yaml), &c, err, sizeof err), 0, "%s",
                 err);
    return c;
}

static int bind_any(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    t.port = ntohs(a.sin_port);
    return fd;
}

static void on_closed(void *arg)
{
    (void)arg;
    t.done_called = true;
}

static void on_stop(uv_async_t *a)
{
    tf_redirect_close(t.r, on_closed, NULL);
    uv_close((uv_handle_t *)&t.stop, NULL);
    uv_close((uv_handle_t *)&t.swap, NULL);
    (void)a;
}

static void on_swap(uv_async_t *a)
{
    (void)a;
    tf_redirect_set_conf(t.r, t.next);
}

static void *loop_main(void *arg)
{
    (void)arg;
    uv_run(&t.loop, UV_RUN_DEFAULT);
    t.loop_close_rc = uv_loop_close(&t.loop);
    return NULL;
}

static void sh_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh_ok(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void setup(void)
{
    memset(&t, 0, sizeof t);
    snprintf(t.dir, sizeof t.dir, "/tmp/tf-redirect-XXXXXX");
    cr_assert_not_null(mkdtemp(t.dir));
    snprintf(t.webroot, sizeof t.webroot, "%s/webroot", t.dir);
    const char *d = t.dir;
    sh_ok("mkdir -p %s/webroot/.well-known/acme-challenge/subdir %s/outside && "
          "printf 'tok.thumbprint' > %s/webroot/.well-known/acme-challenge/Tok_en-1 && "
          "printf 'secret' > %s/outside/secret && printf 'secret' > %s/webroot/secret && "
          "ln -s %s/outside/secret %s/webroot/.well-known/acme-challenge/link && "
          "mkfifo %s/webroot/.well-known/acme-challenge/fifo",
          d, d, d, d, d, d, d, d);
    t.conf = load_conf(t.webroot, 100);
    t.conf2 = load_conf("null", 100);
    t.conf3 = load_conf(t.webroot, 1);
    cr_assert_eq(uv_loop_init(&t.loop), 0);
    uv_async_init(&t.loop, &t.stop, on_stop);
    uv_async_init(&t.loop, &t.swap, on_swap);
    cr_assert_eq(tf_redirect_start(&t.loop, bind_any(), t.conf, &t.r), 0);
    snprintf(t.access_path, sizeof t.access_path, "%s/access.log", t.dir);
    tf_conf_log_t lc = {.access = TF_CONF_ACCESS_FILE, .access_path = t.access_path};
    char err[256];
    cr_assert_eq(tf_access_open(&lc, &t.access, err, sizeof err), 0, "%s", err);
    tf_redirect_set_access_log(t.r, t.access);
    cr_assert_eq(tf_acme_challenges_new(&t.challenges), 0);
    tf_redirect_set_challenges(t.r, t.challenges);
    cr_assert_eq(pthread_create(&t.thread, NULL, loop_main, NULL), 0);
}

static void teardown(void)
{
    uv_async_send(&t.stop);
    pthread_join(t.thread, NULL);
    cr_expect_eq(t.loop_close_rc, 0, "the loop closed with handles left");
    cr_expect(t.done_called);
    tf_access_free(t.access);
    tf_acme_challenges_free(t.challenges);
    tf_conf_unref(t.conf);
    tf_conf_unref(t.conf2);
    tf_conf_unref(t.conf3);
    for (size_t i = 0; i < 2; i++)
        if (t.pp[i] != NULL)
            tf_conf_unref(t.pp[i]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", t.dir);
    cr_expect_eq(system(cmd), 0);
}

/* Runs curl (or any shell command; PORT in it is the responder's) and
 * returns stdout; status in *st. */
static char *run(int *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *run(int *st, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *out = calloc(1, 65536);
    size_t n = fread(out, 1, 65535, p);
    out[n] = '\0';
    int rc = pclose(p);
    if (st)
        *st = rc;
    return out;
}

static size_t tf_px_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void expect_has(const char *hay, const char *needle)
{
    cr_expect(strstr(hay, needle) != NULL, "'%s' not in:\n%s", needle, hay);
}

#define CURL "curl -sS --max-time 10 -D - "

Test(redirect, a_redirect_keeps_path_and_query_and_drops_the_port)
{
    char *o = run(NULL,
                  CURL "-o /dev/null -H 'Host: Portal.Acme.Example:80' "
                       "'http://127.0.0.1:%u/a/b?c=d&e=%%2F'",
                  t.port);
    expect_has(o, "HTTP/1.1 301 Moved Permanently\r\n");
    expect_has(o, "\r\nLocation: https://portal.acme.example/a/b?c=d&e=%2F\r\n");
    expect_has(o, "\r\nConnection: close\r\n");
    expect_has(o, "\r\nContent-Length: 22\r\n");
    expect_has(o, "\r\nDate: ");
    free(o);
    /* A request with a body gets its answer too (the body is drained). */
    o = run(NULL,
            "head -c 20000 /dev/zero | " CURL "-o /dev/null -H 'Host: a.example' "
            "--data-binary @- 'http://127.0.0.1:%u/form'",
            t.port);
    expect_has(o, "HTTP/1.1 301 ");
    expect_has(o, "\r\nLocation: https://a.example/form\r\n");
    free(o);
}

Test(redirect, acme_challenges_are_served_from_the_webroot)
{
    char *o = run(NULL, CURL "'http://127.0.0.1:%u/.well-known/acme-challenge/Tok_en-1'", t.port);
    expect_has(o, "HTTP/1.1 200 OK\r\n");
    expect_has(o, "\r\nContent-Type: text/plain\r\n");
    expect_has(o, "\r\nContent-Length: 14\r\n");
    cr_expect(strstr(o, "\r\n\r\ntok.thumbprint") != NULL, "%s", o);
    free(o);
    o = run(NULL, CURL "-I 'http://127.0.0.1:%u/.well-known/acme-challenge/Tok_en-1'", t.port);
    expect_has(o, "HTTP/1.1 200 OK\r\n");
    expect_has(o, "\r\nContent-Length: 14\r\n");
    cr_expect_eq(strstr(o, "tok.thumbprint"), NULL);
    free(o);
}

/* http-01 from memory (SPEC §13): puts from this thread while the loop
 * serves, as the ACME thread does. */
Test(redirect, acme_challenges_are_served_from_memory_first)
{
    cr_assert_eq(tf_acme_http01_put(t.challenges, "Mem_tok-2", "Mem_tok-2.thumb_print-x"), 0);
    char *o = run(NULL, CURL "'http://127.0.0.1:%u/.well-known/acme-challenge/Mem_tok-2'", t.port);
    expect_has(o, "HTTP/1.1 200 OK\r\n");
    expect_has(o, "\r\nContent-Type: text/plain\r\n");
    expect_has(o, "\r\nContent-Length: 23\r\n");
    const char *body = strstr(o, "\r\n\r\n");
    cr_assert_not_null(body, "%s", o);
    cr_expect_str_eq(body + 4, "Mem_tok-2.thumb_print-x",
                     "the body is exactly the key authorization");
    free(o);
    o = run(NULL, CURL "-I 'http://127.0.0.1:%u/.well-known/acme-challenge/Mem_tok-2'", t.port);
    expect_has(o, "HTTP/1.1 200 OK\r\n");
    expect_has(o, "\r\nContent-Length: 23\r\n");
    cr_expect_eq(strstr(o, "thumb_print"), NULL);
    free(o);
    /* The table wins over the webroot; once the answer is removed, the
     * webroot's file is served again (external clients keep working). */
    cr_assert_eq(tf_acme_http01_put(t.challenges, "Tok_en-1", "from.memory"), 0);
    o = run(NULL, CURL "'http://127.0.0.1:%u/.well-known/acme-challenge/Tok_en-1'", t.port);
    cr_expect(strstr(o, "\r\n\r\nfrom.memory") != NULL, "%s", o);
    free(o);
    tf_acme_http01_remove(t.challenges, "Tok_en-1");
    tf_acme_http01_remove(t.challenges, "Mem_tok-2");
    o = run(NULL, CURL "'http://127.0.0.1:%u/.well-known/acme-challenge/Tok_en-1'", t.port);
    cr_expect(strstr(o, "\r\n\r\ntok.thumbprint") != NULL, "%s", o);
    free(o);
    o = run(NULL, CURL "-o /dev/null 'http://127.0.0.1:%u/.well-known/acme-challenge/Mem_tok-2'",
            t.port);
    expect_has(o, "HTTP/1.1 404 ");
    free(o);
}

Test(redirect, memory_answers_need_no_webroot)
{
    t.next = t.conf2;
    uv_async_send(&t.swap);
    cr_assert_eq(tf_acme_http01_put(t.challenges, "Only_mem", "Only_mem.tp"), 0);
    /* Bounded polling, as the swap may race the first request: with the
     * webroot gone, the webroot's token turns 404 while the table's stays. */
    bool swapped = false;
    for (int i = 0; i < 50 && !swapped; i++) {
        char *o = run(NULL,
                      CURL "-o /dev/null 'http://127.0.0.1:%u/.well-known/acme-challenge/"
                           "Tok_en-1'",
                      t.port);
        swapped = strstr(o, "HTTP/1.1 404 ") != NULL;
        free(o);
    }
    cr_assert(swapped);
    char *o = run(NULL, CURL "'http://127.0.0.1:%u/.well-known/acme-challenge/Only_mem'", t.port);
    expect_has(o, "HTTP/1.1 200 OK\r\n");
    cr_expect(strstr(o, "\r\n\r\nOnly_mem.tp") != NULL, "%s", o);
    free(o);
    /* Everything else is still redirected. */
    o = run(NULL, CURL "-o /dev/null -H 'Host: a.example' 'http://127.0.0.1:%u/x'", t.port);
    expect_has(o, "HTTP/1.1 301 ");
    free(o);
}

Test(redirect, traversal_symlinks_and_odd_files_are_404)
{
    static const char *const paths[] = {
        "../secret",
        "..%%2fsecret",
        "%%2e%%2e/secret",
        "%%2e%%2e%%2fsecret",
        "link",
        "subdir",
        "fifo",
        "missing",
        "",
        "..",
        "/etc/passwd",
        "%%2fetc%%2fpasswd",
        "Tok_en-1/",
        ".Tok_en-1",
        "Tok_en-1%%00",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char *o = run(NULL,
                      CURL "--path-as-is -o /dev/null -w '%%{http_code}' "
                           "'http://127.0.0.1:%u/.well-known/acme-challenge/%s'",
                      t.port, paths[i]);
        cr_expect(strstr(o, "HTTP/1.1 404 Not Found\r\n") != NULL, "%s:\n%s", paths[i], o);
        free(o);
    }
    /* The same token in absolute form is not origin-form: 400. */
    char *o = run(NULL,
                  CURL "-o /dev/null --request-target "
                       "'http://a/.well-known/acme-challenge/Tok_en-1' 'http://127.0.0.1:%u/'",
                  t.port);
    expect_has(o, "HTTP/1.1 400 ");
    free(o);
}

Test(redirect, a_reload_without_webroot_stops_serving_challenges)
{
    t.next = t.conf2;
    uv_async_send(&t.swap);
    /* The swap is queued before our connection is accepted: both run on
     * the loop in order, the async first once its wakeup is processed. A
     * first request may still race it, so poll a bounded number of times. */
    bool gone = false;
    for (int i = 0; i < 50 && !gone; i++) {
        char *o = run(NULL,
                      CURL "-o /dev/null 'http://127.0.0.1:%u/.well-known/acme-challenge/"
                           "Tok_en-1'",
                      t.port);
        gone = strstr(o, "HTTP/1.1 404 ") != NULL;
        free(o);
    }
    cr_expect(gone);
}

Test(redirect, a_missing_or_bad_host_is_400)
{
    char *o = run(NULL, CURL "-o /dev/null -H 'Host:' 'http://127.0.0.1:%u/x'", t.port);
    expect_has(o, "HTTP/1.1 400 Bad Request\r\n");
    expect_has(o, "\r\nConnection: close\r\n");
    free(o);
    o = run(NULL, CURL "-0 -o /dev/null -H 'Host:' 'http://127.0.0.1:%u/x'", t.port);
    expect_has(o, "HTTP/1.1 400 ");
    free(o);
    o = run(NULL, CURL "-o /dev/null -H 'Host: evil.example/x' 'http://127.0.0.1:%u/x'", t.port);
    expect_has(o, "HTTP/1.1 400 ");
    free(o);
}

Test(redirect, an_oversized_head_is_431)
{
    char big[1500];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *o = run(NULL, CURL "-o /dev/null -H 'X-Big: %s' -H 'Host: a' 'http://127.0.0.1:%u/'", big,
                  t.port);
    expect_has(o, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
    free(o);
}

static int connect_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)t.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends what, reads until the responder closes; returns the response. */
static char *exchange(const char *what)
{
    int fd = connect_port();
    cr_assert_eq(send(fd, what, strlen(what), 0), (ssize_t)strlen(what));
    char *buf = calloc(1, 8192);
    size_t n = 0;
    ssize_t r;
    while (n < 8191 && (r = recv(fd, buf + n, 8191 - n, 0)) > 0)
        n += (size_t)r;
    cr_expect_geq(r, 0, "the responder must close cleanly, not time out or reset");
    close(fd);
    return buf;
}

Test(redirect, a_slow_client_gets_408)
{
    char *o = exchange("GET / HTTP/1.1\r\nHost: a\r\n");
    cr_expect(strncmp(o, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0, "%s", o);
    expect_has(o, "\r\nConnection: close\r\n");
    free(o);
    /* Nothing sent at all: the same. */
    o = exchange("");
    cr_expect(strncmp(o, "HTTP/1.1 408 ", 13) == 0, "%s", o);
    free(o);
}

Test(redirect, malformed_heads_are_400)
{
    static const char *const heads[] = {
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        char *o = exchange(heads[i]);
        cr_expect(strncmp(o, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%zu: %s", i, o);
        free(o);
    }
}

Test(redirect, a_head_in_pieces_and_a_pipelined_second_request_get_one_answer)
{
    int fd = connect_port();
    const char *parts[] = {"GET /p", "?q HTTP/1.1\r\nHo", "st: a\r\n", "\r\nGET /2 HTTP/1.1\r\n"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(send(fd, parts[i], strlen(parts[i]), 0), (ssize_t)strlen(parts[i]));
        usleep(20000); /* lets each piece arrive in its own read; not a synchronisation */
    }
    char buf[4096] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = recv(fd, buf + n, sizeof buf - 1 - n, 0)) > 0)
        n += (size_t)r;
    close(fd);
    expect_has(buf, "Location: https://a/p?q\r\n");
    cr_expect_eq(strstr(buf + 10, "HTTP/1.1"), NULL, "one response only:\n%s", buf);
}

Test(redirect, head_answers_have_no_body_and_every_answer_is_logged)
{
    char *o = exchange("HEAD /.well-known/acme-challenge/missing HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_expect(strncmp(o, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%s", o);
    expect_has(o, "\r\nContent-Length: 14\r\n");
    size_t n = strlen(o);
    cr_expect(n > 4 && strcmp(o + n - 4, "\r\n\r\n") == 0, "a body after the head:\n%s", o);
    free(o);
    o = exchange("GET /a\"b?c HTTP/1.1\r\nHost: x.example\r\n\r\n");
    free(o);
    o = exchange("GET / HTTP/1.1\nHost: a\n\n");
    free(o);
    /* The lines are written before the responses, so they are there now. */
    o = run(NULL, "cat %s", t.access_path);
    expect_has(o, " 127.0.0.1 sni=- tenant=- \"HEAD /.well-known/acme-challenge/missing "
                  "HTTP/1.1\" 404 in=");
    expect_has(o, " 127.0.0.1 sni=- tenant=- \"GET /a\\x22b?c HTTP/1.1\" 301 in=40 out=");
    expect_has(o, " \"-\" 400 in=24 out=");
    cr_expect_eq(tf_px_lines(o), 3, "%s", o);
    free(o);
}

/* At limits.max_connections a new connection waits in the backlog (no
 * spinning, no reset) and is served once a slot frees. */
Test(redirect, at_the_limit_new_connections_wait_then_are_served)
{
    t.next = t.conf3;
    uv_async_send(&t.swap);
    /* A full exchange takes several loop turns: the swap, signalled before
     * it, has been applied when it ends. */
    free(run(NULL, CURL "-o /dev/null -H 'Host: a' 'http://127.0.0.1:%u/'", t.port));
    /* The kernel hands connections out in order: a takes the one slot and
     * holds it until its 408. */
    int a = connect_port();
    int b = connect_port();
    const char *req = "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    cr_assert_eq(send(b, req, strlen(req), 0), (ssize_t)strlen(req));
    struct pollfd pb = {.fd = b, .events = POLLIN};
    cr_expect_eq(poll(&pb, 1, 200), 0, "b was served while a held the only slot");
    char buf[2048] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = recv(a, buf + n, sizeof buf - 1 - n, 0)) > 0)
        n += (size_t)r;
    cr_expect(strncmp(buf, "HTTP/1.1 408 ", 13) == 0, "%s", buf);
    close(a);
    memset(buf, 0, sizeof buf);
    n = 0;
    while (n < sizeof buf - 1 && (r = recv(b, buf + n, sizeof buf - 1 - n, 0)) > 0)
        n += (size_t)r;
    close(b);
    expect_has(buf, "HTTP/1.1 301 ");
    expect_has(buf, "Location: https://a/b\r\n");
}

/* A socket libuv cannot listen on: the error comes back at once, the fd is
 * taken, and the responder's memory goes with the loop's next turn. */
Test(redirect, a_failed_start_reports_and_leaves_nothing)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert_geq(fd, 0);
    tf_redirect_t *r = NULL;
    cr_expect_neq(tf_redirect_start(&loop, fd, t.conf, &r), 0);
    cr_expect_null(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
}

/* ---- listen.proxy_protocol (SPEC §14) ------------------------------------ */

static tf_conf_t *load_pp_conf(const char *from)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "listen:\n  https: [\"127.0.0.1:8443\"]\n  http: [\"127.0.0.1:8080\"]\n"
             "  proxy_protocol: {enabled: true, from: [\"%s\"]}\n"
             "timeouts:\n  request_header: 500ms\n  handshake: 500ms\n"
             "tenants:\n  a:\n    hosts: [\"*\"]\n    backends: [\"127.0.0.1:9\"]\n",
             from);
    tf_conf_t *c = NULL;
    char err[1024] = "";
    cr_assert_eq(tf_conf_load_buffer("pp.yaml", yaml, strlen(yaml), &c, err, sizeof err), 0, "%s",
                 err);
    return c;
}

/* Sends LEN bytes, reads until the responder closes; the response. */
static char *exchange_n(const char *what, size_t len)
{
    int fd = connect_port();
    cr_assert_eq(send(fd, what, len, 0), (ssize_t)len);
    char *buf = calloc(1, 8192);
    size_t n = 0;
    ssize_t r;
    while (n < 8191 && (r = recv(fd, buf + n, 8191 - n, 0)) > 0)
        n += (size_t)r;
    close(fd);
    return buf;
}

/* Installs CONF and waits until a request without a PROXY header is
 * closed unanswered (the swap runs on the responder's loop). */
static void swap_to_pp(tf_conf_t *conf)
{
    t.next = conf;
    uv_async_send(&t.swap);
    bool applied = false;
    for (int i = 0; i < 50 && !applied; i++) {
        const char *plain = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        char *o = exchange_n(plain, strlen(plain)); /* a reset is no byte either */
        applied = o[0] == '\0';
        free(o);
    }
    cr_assert(applied, "listen.proxy_protocol was not applied");
}

Test(redirect, behind_a_balancer_the_proxy_header_names_the_client)
{
    t.pp[0] = load_pp_conf("127.0.0.1/32");
    swap_to_pp(t.pp[0]);
    char *o = exchange("PROXY TCP4 203.0.113.7 10.0.0.1 40000 80\r\n"
                       "GET /x?y HTTP/1.1\r\nHost: a.example\r\n\r\n");
    cr_expect(strncmp(o, "HTTP/1.1 301 ", 13) == 0, "%s", o);
    expect_has(o, "\r\nLocation: https://a.example/x?y\r\n");
    free(o);
    /* Version 2 with a TLV, the request in the same segment. */
    static const char v2[] = "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x13"
                             "\xc6\x33\x64\x09\x0a\x00\x00\x01\x9c\x40\x00\x50"
                             "\xea\x00\x04vpce"
                             "GET /v2 HTTP/1.1\r\nHost: a.example\r\n\r\n";
    o = exchange_n(v2, sizeof v2 - 1);
    cr_expect(strncmp(o, "HTTP/1.1 301 ", 13) == 0, "%s", o);
    free(o);
    /* Not a valid header, or one that never ends: closed, nothing sent. */
    const char *bad = "PROXY TCP4 256.0.0.1 10.0.0.1 1 80\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    o = exchange_n(bad, strlen(bad)); /* FIN or reset: no byte either way */
    cr_expect_str_eq(o, "");
    free(o);
    const char *cut = "PROXY TCP4 203.0.113.7";
    o = exchange_n(cut, strlen(cut));
    cr_expect_str_eq(o, "", "a header cut short must be closed, not answered 408");
    free(o);
    o = run(NULL, "cat %s", t.access_path);
    expect_has(o, " 203.0.113.7 sni=- tenant=- \"GET /x?y HTTP/1.1\" 301 in=");
    expect_has(o, " 198.51.100.9 sni=- tenant=- \"GET /v2 HTTP/1.1\" 301 in=");
    free(o);
}

Test(redirect, a_proxy_header_from_outside_from_is_refused)
{
    t.pp[1] = load_pp_conf("10.0.0.0/8");
    swap_to_pp(t.pp[1]);
    const char *req = "PROXY TCP4 203.0.113.7 10.0.0.1 40000 80\r\n"
                      "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n";
    char *o = exchange_n(req, strlen(req)); /* closed unread: a reset */
    cr_expect_str_eq(o, "");
    free(o);
}
