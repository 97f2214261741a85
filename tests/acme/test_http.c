/* acme/http.c without an ACME server: URL rules, loopback hosts, and a
 * scripted plain-HTTP peer on loopback (a thread of the test) for the
 * response parser: headers in any case, several Link headers, chunked and
 * close-delimited bodies, HEAD, the body bound, and a peer that never
 * answers (the deadline). TLS is covered against pebble (test_pebble.c). */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <criterion/criterion.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
}

static void teardown(void)
{
    wolfSSL_Cleanup();
}

TestSuite(acme_http, .init = setup, .fini = teardown, .timeout = 60);

Test(acme_http, urls_are_split_and_checked)
{
    tf_acme__url_t u;
    char err[256];
    cr_assert_eq(tf_acme__url_parse("https://acme.example/dir?x=1#frag", &u, err, sizeof err), 0);
    cr_expect(u.tls);
    cr_expect_str_eq(u.host, "acme.example");
    cr_expect_str_eq(u.port, "443");
    cr_expect_str_eq(u.path, "/dir?x=1");
    tf_acme__url_dispose(&u);
    cr_assert_eq(tf_acme__url_parse("HTTPS://[2001:db8::1]:8443", &u, err, sizeof err), 0);
    cr_expect_str_eq(u.host, "2001:db8::1");
    cr_expect(u.host_v6);
    cr_expect_str_eq(u.port, "8443");
    cr_expect_str_eq(u.path, "/");
    tf_acme__url_dispose(&u);
    cr_assert_eq(tf_acme__url_parse("http://127.0.0.1:14000/dir", &u, err, sizeof err), 0);
    cr_expect_not(u.tls);
    tf_acme__url_dispose(&u);
    cr_assert_eq(tf_acme__url_parse("http://[::1]/dir", &u, err, sizeof err), 0);
    tf_acme__url_dispose(&u);
    static const char *const bad[] = {
        "ftp://a/",         "https://",          "https://:443/",    "https://a:0/",
        "https://a:99999/", "https://a:8x/",     "https://u@a/",     "https://a /",
        "https://[::1/",    "http://a.example/", "http://10.0.0.1/", "acme.example/dir",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_expect_eq(tf_acme__url_parse(bad[i], &u, err, sizeof err), TF_EINVAL, "%s", bad[i]);
        cr_expect_neq(err[0], '\0', "%s: no reason given", bad[i]);
    }
}

Test(acme_http, loopback_hosts)
{
    const char *yes[] = {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LocalHost"};
    const char *no[] = {"128.0.0.1", "10.0.0.1", "::2",     "localhost.example",
                        "",          "[]",       "0.0.0.0", "example.com"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        cr_expect(tf_acme_host_is_loopback(yes[i], strlen(yes[i])), "%s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        cr_expect_not(tf_acme_host_is_loopback(no[i], strlen(no[i])), "%s", no[i]);
}

/* ---- a scripted peer ------------------------------------------------------- */

typedef struct {
    int listen_fd;
    unsigned port;
    const char *answer; /* written after the request head; NULL: never answer */
    size_t answer_len;
    char request[4096]; /* what the client sent */
    _Atomic bool got_request;
    pthread_t thread;
} peer_t;

static void *peer_main(void *arg)
{
    peer_t *p = arg;
    int fd = accept(p->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t n = 0;
    while (n < sizeof p->request - 1 && strstr(p->request, "\r\n\r\n") == NULL) {
        ssize_t r = recv(fd, p->request + n, sizeof p->request - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        p->request[n] = '\0';
    }
    p->got_request = true;
    if (p->answer != NULL) {
        send(fd, p->answer, p->answer_len, MSG_NOSIGNAL);
    } else {
        char c;
        recv(fd, &c, 1, 0); /* until the client gives up */
    }
    close(fd);
    return NULL;
}

static void peer_start(peer_t *p, const char *answer)
{
    memset(p, 0, sizeof *p);
    p->answer = answer;
    p->answer_len = answer ? strlen(answer) : 0;
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(p->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(p->listen_fd, 1), 0);
    cr_assert_eq(getsockname(p->listen_fd, (struct sockaddr *)&a, &len), 0);
    p->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static void peer_join(peer_t *p)
{
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
}

static tf_acme_http_t *client(unsigned timeout_ms, size_t max_body)
{
    tf_acme_http_opts_t o = {.timeout_ms = timeout_ms, .max_body = max_body};
    tf_acme_http_t *h = NULL;
    char err[256] = "";
    cr_assert_eq(tf_acme_http_new(&o, &h, err, sizeof err), 0, "%s", err);
    return h;
}

static int ask(peer_t *p, tf_acme_http_t *h, tf_acme_method_t m, const char *path, const char *body,
               tf_acme_http_response_t *r, char *err, size_t errlen)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", p->port, path);
    return tf_acme_http_request(h, m, url, body, body ? strlen(body) : 0, r, err, errlen);
}

Test(acme_http, headers_and_a_chunked_body)
{
    peer_t p;
    peer_start(&p, "HTTP/1.1 201 Created\r\nREPLAY-NONCE: abc\r\nlocation: https://a/acct/1\r\n"
                   "Link: <https://a/dir>;rel=\"index\"\r\nRetry-After: 30\r\n"
                   "Link: <https://a/alt>;rel=\"alternate\"\r\n"
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n");
    tf_acme_http_t *h = client(10000, 0);
    tf_acme_http_response_t r;
    char err[256] = "";
    cr_assert_eq(ask(&p, h, TF_ACME_POST, "/new-acct", "{\"jws\":1}", &r, err, sizeof err), 0, "%s",
                 err);
    peer_join(&p);
    cr_expect_eq(r.status, 201);
    cr_expect_str_eq(r.replay_nonce, "abc");
    cr_expect_str_eq(r.location, "https://a/acct/1");
    cr_expect_str_eq(r.retry_after, "30");
    cr_expect_str_eq(r.link, "<https://a/dir>;rel=\"index\", <https://a/alt>;rel=\"alternate\"");
    cr_expect_str_eq(r.content_type, "application/json");
    cr_expect_str_eq(r.body, "{\"a\": 1}");
    cr_expect_eq(r.body_len, 8);
    /* What went out: one POST with the JOSE type and its length. */
    cr_expect(strncmp(p.request, "POST /new-acct HTTP/1.1\r\n", 25) == 0, "%s", p.request);
    cr_expect(strstr(p.request, "\r\nHost: 127.0.0.1:") != NULL, "%s", p.request);
    cr_expect(strstr(p.request, "\r\nContent-Type: application/jose+json\r\n") != NULL);
    cr_expect(strstr(p.request, "\r\nContent-Length: 9\r\n") != NULL);
    tf_acme_http_response_dispose(&r);
    tf_acme_http_free(h);
}

Test(acme_http, a_body_to_the_close_and_a_head_without_one)
{
    peer_t p;
    peer_start(&p, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
    tf_acme_http_t *h = client(10000, 0);
    tf_acme_http_response_t r;
    char err[256] = "";
    cr_assert_eq(ask(&p, h, TF_ACME_GET, "/x", NULL, &r, err, sizeof err), 0, "%s", err);
    peer_join(&p);
    cr_expect_str_eq(r.body, "until the end");
    cr_expect_null(r.replay_nonce);
    tf_acme_http_response_dispose(&r);
    peer_start(&p, "HTTP/1.1 200 OK\r\nReplay-Nonce: n1\r\nContent-Length: 1234\r\n\r\n");
    cr_assert_eq(ask(&p, h, TF_ACME_HEAD, "/nonce", NULL, &r, err, sizeof err), 0, "%s", err);
    peer_join(&p);
    cr_expect(strncmp(p.request, "HEAD /nonce HTTP/1.1\r\n", 22) == 0, "%s", p.request);
    cr_expect_str_eq(r.replay_nonce, "n1");
    cr_expect_eq(r.body_len, 0);
    tf_acme_http_response_dispose(&r);
    tf_acme_http_free(h);
}

Test(acme_http, bounds_and_broken_answers)
{
    peer_t p;
    peer_start(&p, "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234567890123456789");
    tf_acme_http_t *h = client(10000, 16);
    tf_acme_http_response_t r;
    char err[256] = "";
    cr_expect_eq(ask(&p, h, TF_ACME_GET, "/", NULL, &r, err, sizeof err), TF_ETOOBIG);
    peer_join(&p);
    cr_expect_null(r.body);
    peer_start(&p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
    cr_expect_eq(ask(&p, h, TF_ACME_GET, "/", NULL, &r, err, sizeof err), TF_EIO);
    peer_join(&p);
    cr_expect(strstr(err, "closed") != NULL, "%s", err);
    peer_start(&p, "SSH-2.0-OpenSSH\r\n");
    cr_expect_eq(ask(&p, h, TF_ACME_GET, "/", NULL, &r, err, sizeof err), TF_EIO);
    peer_join(&p);
    tf_acme_http_free(h);
}

Test(acme_http, a_silent_server_meets_the_deadline)
{
    peer_t p;
    peer_start(&p, NULL);
    tf_acme_http_t *h = client(300, 0);
    tf_acme_http_response_t r;
    char err[256] = "";
    cr_expect_eq(ask(&p, h, TF_ACME_GET, "/", NULL, &r, err, sizeof err), -ETIMEDOUT);
    cr_expect(strstr(err, "timed out") != NULL, "%s", err);
    peer_join(&p);
    tf_acme_http_free(h);
}

typedef struct {
    peer_t *p;
    tf_acme_http_t *h;
} cancel_t;

/* Cancels once the peer holds the request: the client is then waiting for
 * the answer. */
static void *cancel_main(void *arg)
{
    cancel_t *c = arg;
    for (int i = 0; i < 3000 && !c->p->got_request; i++)
        usleep(10 * 1000); /* polling another thread's flag, bounded */
    tf_acme_http_cancel(c->h);
    return NULL;
}

Test(acme_http, a_cancel_ends_a_request_to_a_silent_server_at_once)
{
    peer_t p;
    peer_start(&p, NULL);
    tf_acme_http_t *h = client(60000, 0);
    cancel_t c = {.p = &p, .h = h};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, cancel_main, &c), 0);
    tf_acme_http_response_t r;
    char err[256] = "";
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_expect_eq(ask(&p, h, TF_ACME_GET, "/", NULL, &r, err, sizeof err), -ECANCELED, "%s", err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(th, NULL);
    cr_expect(p.got_request, "the request never reached the peer");
    cr_expect_lt(b.tv_sec - a.tv_sec, 30, "the cancel did not end the wait");
    /* And every request after it. */
    cr_expect_eq(ask(&p, h, TF_ACME_GET, "/", NULL, &r, err, sizeof err), -ECANCELED, "%s", err);
    peer_join(&p);
    tf_acme_http_free(h);
}

Test(acme_http, refused_connections_and_a_missing_ca_file)
{
    peer_t p;
    peer_start(&p, "HTTP/1.1 204 No Content\r\n\r\n");
    unsigned port = p.port;
    tf_acme_http_t *h = client(5000, 0);
    tf_acme_http_response_t r;
    char err[256] = "";
    cr_assert_eq(ask(&p, h, TF_ACME_GET, "/", NULL, &r, err, sizeof err), 0, "%s", err);
    cr_expect_eq(r.status, 204);
    tf_acme_http_response_dispose(&r);
    peer_join(&p);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", port);
    cr_expect_eq(tf_acme_http_request(h, TF_ACME_GET, url, NULL, 0, &r, err, sizeof err),
                 -ECONNREFUSED, "%s", err);
    tf_acme_http_free(h);
    tf_acme_http_opts_t o = {.ca_file = "/nonexistent/ca.pem"};
    cr_expect_eq(tf_acme_http_new(&o, &h, err, sizeof err), -ENOENT);
    cr_expect(strstr(err, "/nonexistent/ca.pem") != NULL, "%s", err);
    cr_expect_null(h);
}
