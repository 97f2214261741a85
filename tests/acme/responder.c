/* See responder.h. */
#define _GNU_SOURCE /* strcasestr */
#include "responder.h"

#include <criterion/criterion.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { READ_MS = 5000, HEAD_MAX = 8192 };

/* The request head, NUL-terminated, or false when it did not come. */
static bool read_head(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, READ_MS) <= 0)
            return false;
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k <= 0)
            return false;
        n += (size_t)k;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL)
            return true;
    }
    return false;
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k <= 0)
            return;
        p += k;
        len -= (size_t)k;
    }
}

/* The request body after HEAD (Content-Length bytes, what came with the
 * head first) into BODY, NUL-terminated; "" when there is none. */
static void read_body(int fd, const char *head, char *body, size_t cap)
{
    const char *cl = strcasestr(head, "\r\nContent-Length:");
    const char *end = strstr(head, "\r\n\r\n") + 4;
    size_t want = cl != NULL ? strtoul(cl + 17, NULL, 10) : 0;
    size_t n = strlen(end);
    if (want >= cap)
        want = cap - 1;
    memcpy(body, end, n < want ? n : want);
    while (n < want) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t k = poll(&p, 1, READ_MS) > 0 ? read(fd, body + n, want - n) : -1;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    body[n < want ? n : want] = '\0';
}

static void serve(tf_resp_t *r, int fd)
{
    char head[HEAD_MAX], method[16], path[512], body[sizeof r->last_body];
    if (!read_head(fd, head, sizeof head) || sscanf(head, "%15s %511s HTTP/1.1", method, path) != 2)
        return;
    read_body(fd, head, body, sizeof body);
    pthread_mutex_lock(&r->lock);
    snprintf(r->last_path, sizeof r->last_path, "%s", path);
    snprintf(r->last_body, sizeof r->last_body, "%s", body);
    pthread_mutex_unlock(&r->lock);
    tf_resp_answer_t a = {.status = 404, .ctype = "text/plain"};
    r->fn(r, method, path, &a);
    if (a.status == 200)
        atomic_fetch_add(&r->hits, 1);
    size_t blen = a.body ? strlen(a.body) : 0;
    bool head_only = strcmp(method, "HEAD") == 0;
    char top[1024];
    int n = snprintf(top, sizeof top,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     a.status, a.ctype, head_only ? 0 : blen, a.headers);
    write_all(fd, top, (size_t)n);
    if (!head_only && blen > 0)
        write_all(fd, a.body, blen);
    free(a.body);
}

/* One validation handshake with the certificate the table holds now (put
 * into the thread's own context: wolfSSL makes no server session from a
 * context without one). */
static void serve_alpn(tf_resp_t *r, int fd)
{
    uint8_t *cert = NULL, *key = NULL;
    size_t certlen = 0, keylen = 0;
    if (tf_acme_alpn01_get(r->table, r->alpn_host, strlen(r->alpn_host), &cert, &certlen, &key,
                           &keylen) != 0)
        return;
    WOLFSSL *ssl = NULL;
    char proto[] = "acme-tls/1";
    if (wolfSSL_CTX_use_certificate_buffer(r->wctx, cert, (long)certlen, WOLFSSL_FILETYPE_ASN1) ==
            1 &&
        wolfSSL_CTX_use_PrivateKey_buffer(r->wctx, key, (long)keylen, WOLFSSL_FILETYPE_ASN1) == 1 &&
        (ssl = wolfSSL_new(r->wctx)) != NULL &&
        wolfSSL_UseALPN(ssl, proto, sizeof proto - 1, WOLFSSL_ALPN_FAILED_ON_MISMATCH) == 1 &&
        wolfSSL_set_fd(ssl, fd) == 1 && wolfSSL_accept(ssl) == 1) {
        atomic_fetch_add(&r->hits, 1);
        wolfSSL_shutdown(ssl);
    }
    wolfSSL_free(ssl);
    free(cert);
    tf_acme_free_secret(key, keylen);
}

static void *run(void *arg)
{
    tf_resp_t *r = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = r->fd, .events = POLLIN},
                              {.fd = r->stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents != 0)
            break;
        if (p[0].revents == 0)
            continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        /* The validation authority must not hang the thread. */
        struct timeval tv = {.tv_sec = READ_MS / 1000};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (r->alpn_host != NULL)
            serve_alpn(r, c);
        else
            serve(r, c);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

static void start(tf_resp_t *r, tf_resp_fn fn, tf_acme_challenges_t *table, const char *host,
                  void *wctx)
{
    memset(r, 0, sizeof *r);
    r->fn = fn;
    r->table = table;
    r->alpn_host = host;
    r->wctx = wctx;
    pthread_mutex_init(&r->lock, NULL);
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(r->fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(r->fd, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
    cr_assert_eq(listen(r->fd, 16), 0);
    cr_assert_eq(getsockname(r->fd, (struct sockaddr *)&a, &len), 0);
    r->port = ntohs(a.sin_port);
    snprintf(r->base, sizeof r->base, "http://127.0.0.1:%u", r->port);
    cr_assert_eq(pipe(r->stop), 0);
    cr_assert_eq(pthread_create(&r->thread, NULL, run, r), 0);
    r->running = true;
}

void tf_resp_start(tf_resp_t *r, tf_resp_fn fn, tf_acme_challenges_t *table)
{
    start(r, fn, table, NULL, NULL);
}

void tf_resp_start_alpn(tf_resp_t *r, tf_acme_challenges_t *table, const char *host)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    cr_assert_not_null(ctx);
    start(r, NULL, table, host, ctx);
}

void tf_resp_stop(tf_resp_t *r)
{
    if (!r->running)
        return;
    write_all(r->stop[1], "x", 1);
    pthread_join(r->thread, NULL);
    close(r->stop[0]);
    close(r->stop[1]);
    close(r->fd);
    pthread_mutex_destroy(&r->lock);
    if (r->wctx != NULL)
        wolfSSL_CTX_free(r->wctx);
    r->wctx = NULL;
    r->running = false;
}

void tf_resp_last_path(tf_resp_t *r, char *out, size_t cap)
{
    pthread_mutex_lock(&r->lock);
    snprintf(out, cap, "%s", r->last_path);
    pthread_mutex_unlock(&r->lock);
}

void tf_resp_last_body(tf_resp_t *r, char *out, size_t cap)
{
    pthread_mutex_lock(&r->lock);
    snprintf(out, cap, "%s", r->last_body);
    pthread_mutex_unlock(&r->lock);
}

void tf_resp_http01(tf_resp_t *r, const char *method, const char *path, tf_resp_answer_t *a)
{
    static const char prefix[] = "/.well-known/acme-challenge/";
    if (strcmp(method, "GET") != 0 || strncmp(path, prefix, sizeof prefix - 1) != 0)
        return;
    char *ka = NULL;
    size_t len = 0;
    if (tf_acme_http01_get(r->table, path + sizeof prefix - 1, &ka, &len) != 0)
        return;
    a->status = 200;
    a->ctype = "application/octet-stream";
    if (atomic_load(&r->wrong)) {
        a->body = malloc(len + 8);
        snprintf(a->body, len + 8, "%sx", ka); /* one character too many: never right */
        free(ka);
    } else {
        a->body = ka;
    }
}
