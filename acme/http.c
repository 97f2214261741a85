/* The ACME thread's HTTPS client. See acme.h.
 *
 * Blocking on purpose: it runs on its own thread, a request every few
 * seconds at most, so a socket set non-blocking and poll(2) against one
 * deadline give bounded waits without an event loop. wolfSSL reads and
 * writes the socket itself (its default I/O callbacks), unlike tls/, whose
 * sessions are fed by libuv. Every wait on the socket also watches an
 * eventfd that tf_acme_http_cancel() signals, so a stopping process does
 * not wait out a request to a server that never answers. Name resolution
 * is getaddrinfo(3), which neither the deadline nor the cancel can
 * interrupt; the resolver's own timeouts bound it (resolv.conf: 5 s per
 * try), and a cancel is seen right after it. */
#include "acme/acme_internal.h"

#include "certstore/certstore.h"
#include "common/err.h"

#include <wolfssl/options.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>

#include <http_parser.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    DEFAULT_TIMEOUT_MS = 30000,
    DEFAULT_MAX_BODY = 1024 * 1024,
    MAX_HEADER_VALUE = 8192, /* a Link or Location longer than this is malformed */
    READ_CHUNK = 16384,
};

struct tf_acme_http {
    WOLFSSL_CTX *wctx;
    int cancel_fd; /* an eventfd, readable once cancelled */
    unsigned timeout_ms;
    size_t max_body;
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- the client object ------------------------------------------------- */

int tf_acme_http_new(const tf_acme_http_opts_t *opts, tf_acme_http_t **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    tf_acme_http_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return TF_ENOMEM;
    h->timeout_ms = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    h->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
    h->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->cancel_fd < 0) {
        int rc = -errno;
        free(h);
        set_err(err, errlen, "acme: eventfd: %s", strerror(-rc));
        return rc;
    }
    h->wctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (h->wctx == NULL) {
        close(h->cancel_fd);
        free(h);
        set_err(err, errlen, "acme: cannot create a TLS client context");
        return TF_ETLS;
    }
    wolfSSL_CTX_SetMinVersion(h->wctx, WOLFSSL_TLSV1_2);
    char why[1024];
    int rc = tf_cs_ca_load(h->wctx, opts->ca_file, why, sizeof why);
    if (rc != 0) {
        set_err(err, errlen, "%s", why);
        tf_acme_http_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void tf_acme_http_free(tf_acme_http_t *h)
{
    if (h == NULL)
        return;
    wolfSSL_CTX_free(h->wctx);
    close(h->cancel_fd);
    free(h);
}

void tf_acme_http_cancel(tf_acme_http_t *h)
{
    uint64_t one = 1;
    ssize_t n = write(h->cancel_fd, &one, sizeof one);
    (void)n; /* only fails when the counter would overflow: cancelled then */
}

static bool is_cancelled(const tf_acme_http_t *h)
{
    struct pollfd p = {.fd = h->cancel_fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

void tf_acme_http_response_dispose(tf_acme_http_response_t *r)
{
    free(r->replay_nonce);
    free(r->location);
    free(r->retry_after);
    free(r->link);
    free(r->content_type);
    free(r->body);
    *r = (tf_acme_http_response_t){0};
}

/* ---- URLs ---------------------------------------------------------------- */

bool tf_acme_host_is_loopback(const char *host, size_t len)
{
    char buf[64];
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (strcasecmp(buf, "localhost") == 0 || strcasecmp(buf, "localhost.") == 0)
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

void tf_acme__url_dispose(tf_acme__url_t *u)
{
    free(u->buf);
    *u = (tf_acme__url_t){0};
}

static bool port_ok(const char *p)
{
    if (*p == '\0' || strlen(p) > 5)
        return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    long v = strtol(p, NULL, 10);
    return v > 0 && v <= 65535;
}

/* Splits the authority (NUL-terminated in place) into host and port. */
static int split_authority(char *auth, tf_acme__url_t *u, char *err, size_t errlen)
{
    if (strchr(auth, '@') != NULL) {
        set_err(err, errlen, "user information in the URL is not supported");
        return TF_EINVAL;
    }
    char *port = NULL;
    if (auth[0] == '[') {
        char *end = strchr(auth, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            set_err(err, errlen, "a bad IPv6 literal in the URL");
            return TF_EINVAL;
        }
        *end = '\0';
        u->host = auth + 1;
        u->host_v6 = true;
        port = end[1] == ':' ? end + 2 : NULL;
    } else {
        port = strchr(auth, ':');
        if (port != NULL)
            *port++ = '\0';
        u->host = auth;
    }
    if (*u->host == '\0' || (port != NULL && !port_ok(port))) {
        set_err(err, errlen, "no host, or a bad port, in the URL");
        return TF_EINVAL;
    }
    u->port = port != NULL ? port : u->tls ? "443" : "80";
    return 0;
}

int tf_acme__url_parse(const char *url, tf_acme__url_t *u, char *err, size_t errlen)
{
    *u = (tf_acme__url_t){0};
    size_t skip;
    if (strncasecmp(url, "https://", 8) == 0) {
        u->tls = true;
        skip = 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        skip = 7;
    } else {
        set_err(err, errlen, "not an http or https URL");
        return TF_EINVAL;
    }
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            set_err(err, errlen, "a space or control character in the URL");
            return TF_EINVAL;
        }
    }
    const char *auth = url + skip;
    size_t alen = strcspn(auth, "/?#");
    const char *path = auth + alen;
    size_t plen = strcspn(path, "#");
    /* One buffer: authority NUL path NUL ("/" for an empty path). */
    u->buf = malloc(alen + 1 + plen + 2);
    if (u->buf == NULL)
        return TF_ENOMEM;
    memcpy(u->buf, auth, alen);
    u->buf[alen] = '\0';
    char *pbuf = u->buf + alen + 1;
    if (plen == 0 || path[0] != '/')
        *pbuf++ = '/';
    memcpy(pbuf, path, plen);
    pbuf[plen] = '\0';
    u->path = u->buf + alen + 1;
    int rc = split_authority(u->buf, u, err, errlen);
    if (rc == 0 && !u->tls && !tf_acme_host_is_loopback(u->host, strlen(u->host))) {
        set_err(err, errlen, "http:// is only allowed to a loopback host; use https://");
        rc = TF_EINVAL;
    }
    if (rc != 0)
        tf_acme__url_dispose(u);
    return rc;
}

/* ---- one connection --------------------------------------------------------- */

typedef struct {
    tf_acme_http_t *h;
    struct timespec deadline;
    int fd;
    WOLFSSL *ssl;
    char *err;
    size_t errlen;
} link_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(const link_t *l)
{
    int64_t d = (int64_t)l->deadline.tv_sec * 1000 + l->deadline.tv_nsec / 1000000 - now_ms();
    return d > 0 ? (int)d : 0;
}

/* Waits for fd to be ready for events; 0, -ETIMEDOUT, -ECANCELED or
 * -errno. */
static int wait_fd(link_t *l, short events)
{
    for (;;) {
        int ms = left_ms(l);
        if (ms == 0)
            return -ETIMEDOUT;
        struct pollfd p[2] = {{.fd = l->fd, .events = events},
                              {.fd = l->h->cancel_fd, .events = POLLIN}};
        int n = poll(p, 2, ms);
        if (n > 0 && p[1].revents != 0)
            return -ECANCELED;
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* One non-blocking connect, waited for until the deadline. */
static int connect_one(link_t *l, const struct addrinfo *ai)
{
    l->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (l->fd < 0)
        return -errno;
    if (connect(l->fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -errno;
    int rc = wait_fd(l, POLLOUT);
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (rc == 0 && getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        rc = -errno;
    return rc != 0 ? rc : -soerr;
}

static int link_connect(link_t *l, const tf_acme__url_t *u)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG}, *res = NULL;
    if (is_cancelled(l->h)) {
        set_err(l->err, l->errlen, "%s: cancelled", u->host);
        return -ECANCELED;
    }
    int g = getaddrinfo(u->host, u->port, &hints, &res);
    if (g != 0) {
        set_err(l->err, l->errlen, "%s: cannot resolve: %s", u->host, gai_strerror(g));
        return TF_ENOTFOUND;
    }
    int rc = -ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = connect_one(l, ai);
        if (rc == 0 || rc == -ETIMEDOUT || rc == -ECANCELED || is_cancelled(l->h))
            break;
        close(l->fd);
        l->fd = -1;
    }
    freeaddrinfo(res);
    if (rc != 0 && is_cancelled(l->h)) {
        set_err(l->err, l->errlen, "%s: cancelled", u->host);
        return -ECANCELED;
    }
    if (rc != 0)
        set_err(l->err, l->errlen, "%s port %s: cannot connect: %s", u->host, u->port,
                strerror(-rc));
    return rc;
}

/* After a wolfSSL call that returned ret: waits for the socket when wolfSSL
 * wants it. 0 to call again, or the error. */
static int tls_wait(link_t *l, int ret)
{
    int e = wolfSSL_get_error(l->ssl, ret);
    if (e == WOLFSSL_ERROR_WANT_READ)
        return wait_fd(l, POLLIN);
    if (e == WOLFSSL_ERROR_WANT_WRITE)
        return wait_fd(l, POLLOUT);
    return TF_ETLS;
}

static int tls_start(link_t *l, const tf_acme__url_t *u)
{
    l->ssl = wolfSSL_new(l->h->wctx);
    if (l->ssl == NULL)
        return TF_ENOMEM;
    wolfSSL_set_fd(l->ssl, l->fd);
    wolfSSL_set_using_nonblock(l->ssl, 1);
    /* RFC 6066 §3: no SNI for an IP literal. The name check covers both. */
    struct in_addr a4;
    if (!u->host_v6 && inet_pton(AF_INET, u->host, &a4) != 1 &&
        wolfSSL_UseSNI(l->ssl, WOLFSSL_SNI_HOST_NAME, u->host, (unsigned short)strlen(u->host)) !=
            WOLFSSL_SUCCESS)
        return TF_ENOMEM;
    if (wolfSSL_check_domain_name(l->ssl, u->host) != WOLFSSL_SUCCESS)
        return TF_ENOMEM;
    for (;;) {
        int ret = wolfSSL_connect(l->ssl);
        if (ret == WOLFSSL_SUCCESS)
            return 0;
        int rc = tls_wait(l, ret);
        if (rc == -ETIMEDOUT)
            set_err(l->err, l->errlen, "%s: TLS handshake timed out", u->host);
        if (rc == -ECANCELED)
            set_err(l->err, l->errlen, "%s: cancelled", u->host);
        if (rc == TF_ETLS) {
            char why[WOLFSSL_MAX_ERROR_SZ];
            wolfSSL_ERR_error_string_n((unsigned long)wolfSSL_get_error(l->ssl, ret), why,
                                       sizeof why);
            set_err(l->err, l->errlen, "%s: TLS handshake failed: %s", u->host, why);
        }
        if (rc != 0)
            return rc;
    }
}

static int link_write(link_t *l, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (l->ssl != NULL) {
            int ret = wolfSSL_write(l->ssl, p, n > 65536 ? 65536 : (int)n);
            if (ret <= 0) {
                int rc = tls_wait(l, ret);
                if (rc != 0)
                    return rc;
                continue;
            }
            w = ret;
        } else {
            w = send(l->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                int rc = errno == EAGAIN ? wait_fd(l, POLLOUT) : 0;
                if (rc != 0)
                    return rc;
                continue;
            }
            if (w < 0)
                return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads what is there (waiting for it): bytes > 0, 0 at the end, or an
 * error. */
static long link_read(link_t *l, char *buf, size_t cap)
{
    for (;;) {
        if (l->ssl != NULL) {
            int ret = wolfSSL_read(l->ssl, buf, (int)cap);
            if (ret > 0)
                return ret;
            int e = wolfSSL_get_error(l->ssl, ret);
            if (e == WOLFSSL_ERROR_ZERO_RETURN || e == SOCKET_PEER_CLOSED_E)
                return 0;
            int rc = tls_wait(l, ret);
            if (rc != 0)
                return rc;
            continue;
        }
        ssize_t n = recv(l->fd, buf, cap, 0);
        if (n >= 0)
            return n;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = errno == EAGAIN ? wait_fd(l, POLLIN) : 0;
        if (rc != 0)
            return rc;
    }
}

static void link_close(link_t *l)
{
    if (l->ssl != NULL)
        wolfSSL_free(l->ssl);
    if (l->fd >= 0)
        close(l->fd);
    l->ssl = NULL;
    l->fd = -1;
}

/* ---- the response --------------------------------------------------------- */

typedef enum { H_OTHER, H_NONCE, H_LOCATION, H_RETRY, H_LINK, H_CTYPE } hdr_t;

typedef struct {
    tf_acme_http_response_t *resp;
    size_t max_body;
    size_t body_cap;
    char field[32]; /* the header name being read (longer names are not ours) */
    size_t field_len;
    bool in_value;
    hdr_t cur;
    char *value; /* the value being read */
    size_t value_len;
    bool head_only;
    bool complete;
    int error; /* TF_ETOOBIG, TF_ENOMEM, TF_EIO */
} reader_t;

static hdr_t hdr_of(const reader_t *r)
{
    static const struct {
        const char *name;
        hdr_t h;
    } known[] = {{"replay-nonce", H_NONCE},
                 {"location", H_LOCATION},
                 {"retry-after", H_RETRY},
                 {"link", H_LINK},
                 {"content-type", H_CTYPE}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (r->field_len == strlen(known[i].name) &&
            strncasecmp(r->field, known[i].name, r->field_len) == 0)
            return known[i].h;
    return H_OTHER;
}

static char **slot_of(tf_acme_http_response_t *resp, hdr_t h)
{
    switch (h) {
    case H_NONCE:
        return &resp->replay_nonce;
    case H_LOCATION:
        return &resp->location;
    case H_RETRY:
        return &resp->retry_after;
    case H_LINK:
        return &resp->link;
    case H_CTYPE:
        return &resp->content_type;
    default:
        return NULL;
    }
}

/* Stores the value just read: the first of each header, every Link joined. */
static int value_done(reader_t *r)
{
    char **slot = slot_of(r->resp, r->cur);
    char *v = r->value;
    r->value = NULL;
    if (slot == NULL || v == NULL) {
        free(v);
        return 0;
    }
    if (*slot == NULL) {
        *slot = v;
        return 0;
    }
    if (r->cur != H_LINK) {
        free(v);
        return 0;
    }
    size_t a = strlen(*slot), b = strlen(v);
    char *j = realloc(*slot, a + 2 + b + 1);
    if (j == NULL) {
        free(v);
        r->error = TF_ENOMEM;
        return -1;
    }
    memcpy(j + a, ", ", 2);
    memcpy(j + a + 2, v, b + 1);
    *slot = j;
    free(v);
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    reader_t *r = p->data;
    if (r->in_value) {
        if (value_done(r) != 0)
            return -1;
        r->in_value = false;
        r->field_len = 0;
    }
    size_t room = r->field_len < sizeof r->field ? sizeof r->field - r->field_len : 0;
    size_t take = n < room ? n : room;
    memcpy(r->field + r->field_len, at, take);
    r->field_len += n; /* past the buffer: a name that is none of ours */
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    reader_t *r = p->data;
    if (!r->in_value) {
        r->in_value = true;
        r->cur = r->field_len <= sizeof r->field ? hdr_of(r) : H_OTHER;
        r->value_len = 0;
    }
    if (r->cur == H_OTHER)
        return 0;
    if (r->value_len + n > MAX_HEADER_VALUE) {
        r->error = TF_EIO;
        return -1;
    }
    char *v = realloc(r->value, r->value_len + n + 1);
    if (v == NULL) {
        r->error = TF_ENOMEM;
        return -1;
    }
    memcpy(v + r->value_len, at, n);
    r->value_len += n;
    v[r->value_len] = '\0';
    r->value = v;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    reader_t *r = p->data;
    if (r->in_value && value_done(r) != 0)
        return -1;
    r->in_value = false;
    r->resp->status = (int)p->status_code;
    return r->head_only ? 1 : 0; /* 1: a HEAD response has no body */
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    reader_t *r = p->data;
    tf_acme_http_response_t *resp = r->resp;
    if (resp->body_len + n > r->max_body) {
        r->error = TF_ETOOBIG;
        return -1;
    }
    if (resp->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < resp->body_len + n + 1)
            cap *= 2;
        char *b = realloc(resp->body, cap);
        if (b == NULL) {
            r->error = TF_ENOMEM;
            return -1;
        }
        resp->body = b;
        r->body_cap = cap;
    }
    memcpy(resp->body + resp->body_len, at, n);
    resp->body_len += n;
    resp->body[resp->body_len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    ((reader_t *)p->data)->complete = true;
    return 0;
}

static const http_parser_settings k_settings = {
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* Reads and parses until the message is complete or the server closes. */
static int read_response(link_t *l, reader_t *r)
{
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = r;
    char *buf = malloc(READ_CHUNK);
    if (buf == NULL)
        return TF_ENOMEM;
    int rc = 0;
    while (!r->complete) {
        long n = link_read(l, buf, READ_CHUNK);
        if (n < 0) {
            rc = (int)n;
            set_err(l->err, l->errlen, "reading the response: %s",
                    rc == -ETIMEDOUT ? "timed out" : tf_strerror(rc));
            break;
        }
        size_t used = http_parser_execute(&p, &k_settings, buf, (size_t)n);
        /* At the end of input the parser either completes a body read to
         * the close or reports the message cut short. */
        if (n == 0 && !r->complete && r->error == 0) {
            rc = TF_EIO;
            set_err(l->err, l->errlen, "the server closed before the response ended");
            break;
        }
        if (r->error != 0 || p.http_errno != HPE_OK || used != (size_t)n) {
            rc = r->error != 0 ? r->error : TF_EIO;
            set_err(l->err, l->errlen, "a malformed or oversized response: %s",
                    r->error != 0 ? tf_strerror(r->error) : http_errno_description(p.http_errno));
            break;
        }
    }
    free(buf);
    free(r->value);
    r->value = NULL;
    return rc;
}

/* ---- the request ------------------------------------------------------------ */

static const char *method_name(tf_acme_method_t m)
{
    return m == TF_ACME_POST ? "POST" : m == TF_ACME_HEAD ? "HEAD" : "GET";
}

/* The request head in a malloc'd buffer. */
static char *request_head(tf_acme_method_t m, const tf_acme__url_t *u, size_t body_len)
{
    bool default_port = strcmp(u->port, u->tls ? "443" : "80") == 0;
    char host[320];
    snprintf(host, sizeof host, "%s%s%s%s%s", u->host_v6 ? "[" : "", u->host, u->host_v6 ? "]" : "",
             default_port ? "" : ":", default_port ? "" : u->port);
    char extra[128] = "";
    if (m == TF_ACME_POST)
        snprintf(extra, sizeof extra,
                 "Content-Type: application/jose+json\r\nContent-Length: %zu\r\n", body_len);
#define TF_ACME_HEAD_FMT                                                                           \
    "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlsfront-acme\r\nAccept: */*\r\n"                   \
    "Accept-Encoding: identity\r\nConnection: close\r\n%s\r\n"
    int n = snprintf(NULL, 0, TF_ACME_HEAD_FMT, method_name(m), u->path, host, extra);
    char *out = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (out != NULL)
        snprintf(out, (size_t)n + 1, TF_ACME_HEAD_FMT, method_name(m), u->path, host, extra);
#undef TF_ACME_HEAD_FMT
    return out;
}

static int exchange(link_t *l, tf_acme_method_t m, const tf_acme__url_t *u, const void *body,
                    size_t body_len, tf_acme_http_response_t *resp)
{
    int rc = link_connect(l, u);
    if (rc == 0 && u->tls)
        rc = tls_start(l, u);
    if (rc != 0)
        return rc;
    char *head = request_head(m, u, body_len);
    if (head == NULL)
        return TF_ENOMEM;
    rc = link_write(l, head, strlen(head));
    free(head);
    if (rc == 0 && m == TF_ACME_POST && body_len > 0)
        rc = link_write(l, body, body_len);
    if (rc != 0) {
        set_err(l->err, l->errlen, "sending the request: %s",
                rc == -ETIMEDOUT ? "timed out" : tf_strerror(rc));
        return rc;
    }
    reader_t r = {.resp = resp, .max_body = l->h->max_body, .head_only = m == TF_ACME_HEAD};
    return read_response(l, &r);
}

int tf_acme_http_request(tf_acme_http_t *h, tf_acme_method_t method, const char *url,
                         const void *body, size_t body_len, tf_acme_http_response_t *resp,
                         char *err, size_t errlen)
{
    *resp = (tf_acme_http_response_t){0};
    tf_acme__url_t u;
    int rc = tf_acme__url_parse(url, &u, err, errlen);
    if (rc != 0)
        return rc;
    link_t l = {.h = h, .fd = -1, .err = err, .errlen = errlen};
    int64_t end = now_ms() + h->timeout_ms;
    l.deadline = (struct timespec){.tv_sec = end / 1000, .tv_nsec = (end % 1000) * 1000000};
    rc = exchange(&l, method, &u, body, body_len, resp);
    link_close(&l);
    tf_acme__url_dispose(&u);
    if (rc != 0)
        tf_acme_http_response_dispose(resp);
    return rc;
}
