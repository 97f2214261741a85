/* Port 80: redirects to https and ACME http-01 challenges. See redirect.h. */
#include "proxy/net/redirect.h"

#include "acme/acme.h"
#include "common/err.h"
#include "proxy/net/proxyproto.h"
#include "proxy/obs/obs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ACME_PREFIX "/.well-known/acme-challenge/"
#define MAX_TOKEN 255
#define FIRST_BUF 2048     /* most request heads fit in one read of this */
#define RETRY_MS 250       /* a connection left pending (limit, memory) is retried */
#define RESPONSE_ROOM 512  /* status line and headers, besides Location and body */
#define SCRATCH_BYTES 4096 /* bytes read after the head are discarded here */

/* ---- pure parts -------------------------------------------------------------- */

const char *tf_redirect_reason(int status)
{
    return tf_http_reason(status > 0 ? (unsigned)status : 0);
}

static bool is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool method_is(const tf_http_request_t *req, const char *m)
{
    return req->method_len == strlen(m) && memcmp(req->method, m, req->method_len) == 0;
}

/* The challenge token of a target under ACME_PREFIX: the rest of the path
 * up to a query. Only the base64url alphabet ACME uses (RFC 8555 §8.3), so
 * no slash, dot or percent-escape can name anything but a file in the
 * challenge directory. Returns TF_REDIRECT_ACME or 404. */
static int acme_token(const char *t, size_t n, char *out, size_t outlen)
{
    size_t plen = strlen(ACME_PREFIX);
    size_t end = plen;
    while (end < n && t[end] != '?')
        end++;
    size_t len = end - plen;
    if (len == 0 || len > MAX_TOKEN || len >= outlen)
        return 404;
    for (size_t i = plen; i < end; i++) {
        if (!is_token_char((unsigned char)t[i]))
            return 404;
    }
    memcpy(out, t + plen, len);
    out[len] = '\0';
    return TF_REDIRECT_ACME;
}

static bool is_host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

/* An optional ":PORT" after the host: digits only, at most 65535 (empty
 * is allowed by RFC 3986's authority grammar). */
static bool port_ok(const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (p[0] != ':' || n > 6)
        return false;
    unsigned long v = 0;
    for (size_t i = 1; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    return v <= 65535;
}

/* Whether the two bytes a, b occur in a row in s[0, n). */
static bool has_pair(const char *s, size_t n, char a, char b)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == a && s[i + 1] == b)
            return true;
    }
    return false;
}

/* The host part of a Host value without its port: "[v6]" or a name or an
 * IPv4 literal. Returns its length, or 0 when the value is unusable. */
static size_t host_part(const char *h, size_t n)
{
    size_t end = 0;
    if (n > 0 && h[0] == '[') {
        while (end < n && h[end] != ']')
            end++;
        if (end == n || end < 3)
            return 0;
        for (size_t i = 1; i < end; i++) {
            unsigned char c = (unsigned char)h[i];
            if (!(c == ':' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                  (c >= 'A' && c <= 'F')))
                return 0;
        }
        end++;
    } else {
        while (end < n && h[end] != ':') {
            if (!is_host_char((unsigned char)h[end]))
                return 0;
            end++;
        }
        /* No empty label: ".x", "a..b" (one trailing dot is a valid FQDN). */
        if (end == 0 || h[0] == '.' || has_pair(h, end, '.', '.'))
            return 0;
    }
    if (end > TF_REDIRECT_MAX_HOST || !port_ok(h + end, n - end))
        return 0;
    return end;
}

/* Appends the target, percent-encoding bytes outside printable ASCII and
 * the ASCII characters a URI may not hold (RFC 3986 §2), so that the
 * Location is a valid URI and header value whatever the client sent. */
static bool put_target(char *out, size_t outlen, size_t *pos, const char *t, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        bool plain = c > 0x20 && c < 0x7f && strchr("\"<>\\^`{|}", c) == NULL;
        if (*pos + (plain ? 1 : 3) >= outlen)
            return false;
        if (plain) {
            out[(*pos)++] = (char)c;
            continue;
        }
        out[(*pos)++] = '%';
        out[(*pos)++] = hex[c >> 4];
        out[(*pos)++] = hex[c & 15];
    }
    out[*pos] = '\0';
    return true;
}

static int location(const tf_http_request_t *req, char *out, size_t outlen)
{
    const char *h = req->host;
    size_t n = req->host_len;
    while (n > 0 && (*h == ' ' || *h == '\t'))
        h++, n--;
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    size_t hl = h ? host_part(h, n) : 0;
    if (hl == 0 || req->target_len == 0 || req->target[0] != '/')
        return 400;
    size_t pos = strlen("https://");
    if (pos + hl >= outlen)
        return 414;
    memcpy(out, "https://", pos);
    for (size_t i = 0; i < hl; i++) {
        char c = h[i];
        out[pos++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    return put_target(out, outlen, &pos, req->target, req->target_len) ? 301 : 414;
}

int tf_redirect_route(const tf_http_request_t *req, bool acme, char *out, size_t outlen)
{
    size_t plen = strlen(ACME_PREFIX);
    bool under = req->target_len >= plen && memcmp(req->target, ACME_PREFIX, plen) == 0;
    if (under && (method_is(req, "GET") || method_is(req, "HEAD"))) {
        if (!acme)
            return 404;
        return acme_token(req->target, req->target_len, out, outlen);
    }
    return location(req, out, outlen);
}

long tf_redirect_format(char *out, size_t outlen, int status, const char *loc, const char *body,
                        size_t body_len, bool head_only, time_t now)
{
    struct tm tm;
    char date[64];
    gmtime_r(&now, &tm);
    /* RFC 9110 §5.6.7 IMF-fixdate; English names whatever the locale. */
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(date, sizeof date, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    int n = snprintf(out, outlen,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s%sContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, tf_redirect_reason(status), date, loc ? "Location: " : "",
                     loc ? loc : "", loc ? "\r\n" : "", body_len);
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    size_t len = (size_t)n;
    if (!head_only) {
        if (body_len > outlen - len)
            return -1;
        memcpy(out + len, body, body_len);
        len += body_len;
    }
    return (long)len;
}

/* ---- the responder --------------------------------------------------------------- */

typedef enum {
    RD_READING,   /* reading the request head; the timer is timeouts.request_header */
    RD_WRITING,   /* the response is being written; later bytes are discarded */
    RD_LINGERING, /* written and shut down: draining the client until EOF */
    RD_CLOSING,   /* handles closing; freed by the last close callback */
} rd_state_t;

typedef struct rd_conn rd_conn_t;

/* One allocation per connection; the head buffer grows on demand up to
 * limits.max_header_bytes, and the response exists only while written. */
struct rd_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    tf_redirect_t *r;
    rd_conn_t *prev, *next;
    char *buf; /* the request head so far */
    size_t len, cap;
    /* Where the scan of the head stands: it resumes with each read. */
    tf_http_parser_t parser;
    char *out;           /* the response while it is written */
    int64_t start_ms;    /* accepted at, wall clock (the access log's time) */
    uint64_t start_tick; /* accepted at, loop time (durations) */
    uint64_t bytes_in;   /* read from the client before the response */
    char peer[48];       /* the client's address, "" when unknown */
    uint8_t state;
    uint8_t handles; /* open handles; the struct is freed when none is left */
    bool eof;        /* the client ended its side */
    bool pp_pending; /* listen.proxy_protocol: the balancer's header comes first */
};

struct tf_redirect {
    uv_tcp_t tcp;
    uv_timer_t retry;
    uv_loop_t *loop;
    tf_conf_t *conf;
    tf_access_log_t *access;          /* not owned; NULL: no access log */
    tf_acme_challenges_t *challenges; /* not owned; NULL: the webroot only */
    rd_conn_t *conns;
    size_t nconns;
    uint8_t handles; /* tcp and retry while open */
    bool closing;
    void (*done)(void *);
    void *done_arg;
    char scratch[SCRATCH_BYTES];
};

static void rd_take(tf_redirect_t *r);

static void rd_maybe_free(tf_redirect_t *r)
{
    if (!r->closing || r->handles > 0 || r->nconns > 0)
        return;
    void (*done)(void *) = r->done;
    void *arg = r->done_arg;
    tf_conf_unref(r->conf);
    free(r);
    if (done)
        done(arg);
}

static void conn_on_closed(uv_handle_t *h)
{
    rd_conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    tf_redirect_t *r = c->r;
    if (c->prev)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->nconns--;
    free(c->buf);
    free(c->out);
    free(c);
    /* A connection left waiting at the limit takes the slot now rather
     * than at the next retry. */
    if (!r->closing && uv_is_active((uv_handle_t *)&r->retry)) {
        uv_timer_stop(&r->retry);
        rd_take(r);
    }
    rd_maybe_free(r);
}

/* The one way a connection ends. Safe to call more than once. */
static void conn_close(rd_conn_t *c)
{
    if (c->state == RD_CLOSING)
        return;
    c->state = RD_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
    uv_close((uv_handle_t *)&c->timer, conn_on_closed);
}

static void conn_on_timer(uv_timer_t *t);

static void conn_arm(rd_conn_t *c, uint64_t ms)
{
    uv_timer_start(&c->timer, conn_on_timer, ms, 0);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
    rd_conn_t *c = req->data;
    if (c->state == RD_CLOSING)
        return;
    c->state = RD_LINGERING;
    if (status < 0 || c->eof)
        conn_close(c);
}

static void conn_on_written(uv_write_t *req, int status)
{
    rd_conn_t *c = req->data;
    free(c->out);
    c->out = NULL;
    if (c->state == RD_CLOSING)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* FIN first, then keep reading: closing with unread request bytes
     * would send a reset that can destroy the response in flight. */
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_on_shutdown) != 0)
        conn_close(c);
}

/* Takes out (malloc'd, len bytes) and writes it; the connection then
 * lingers. */
static void conn_send(rd_conn_t *c, char *out, size_t len)
{
    c->state = RD_WRITING;
    c->out = out;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    conn_arm(c, TF_REDIRECT_LINGER_MS);
    uv_buf_t b = uv_buf_init(out, (unsigned)len);
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, conn_on_written) != 0) {
        free(c->out);
        c->out = NULL;
        conn_close(c);
    }
}

static bool is_head(const tf_http_request_t *req)
{
    return req != NULL && req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
}

/* One access-log line per request, bad ones included (nginx logs its 400s
 * too); req is NULL when no head was parsed. */
static void conn_log(rd_conn_t *c, const tf_http_request_t *req, int status, size_t out_len)
{
    if (!tf_access_enabled(c->r->access))
        return;
    tf_access_entry_t e = {
        .time_ms = c->start_ms,
        .client = c->peer[0] ? c->peer : NULL,
        .status = status,
        .bytes_in = c->bytes_in,
        .bytes_out = out_len,
        .duration_ms = uv_now(c->r->loop) - c->start_tick,
    };
    if (req != NULL) {
        e.method = req->method;
        e.method_len = req->method_len;
        e.path = req->target;
        e.path_len = req->target_len;
        e.version_minor = req->version_minor;
    }
    tf_access_write(c->r->access, &e);
}

/* Answers the request (req may be NULL: a head that never parsed). */
static void conn_respond(rd_conn_t *c, const tf_http_request_t *req, int status, const char *loc,
                         const char *body, size_t body_len)
{
    size_t cap = RESPONSE_ROOM + (loc ? strlen(loc) : 0) + body_len;
    char *out = malloc(cap);
    long n =
        out ? tf_redirect_format(out, cap, status, loc, body, body_len, is_head(req), time(NULL))
            : -1;
    if (n < 0) {
        free(out);
        conn_close(c);
        return;
    }
    conn_log(c, req, status, (size_t)n);
    conn_send(c, out, (size_t)n);
}

static void conn_error(rd_conn_t *c, const tf_http_request_t *req, int status)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, tf_redirect_reason(status));
    conn_respond(c, req, status, NULL, body, (size_t)n);
}

/* Opens dir/name as a directory without following a symlink. */
static int open_dir_at(int dir, const char *name)
{
    return openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Reads WEBROOT/.well-known/acme-challenge/TOKEN into a new buffer. Every
 * component below the webroot is opened relative to its parent without
 * following symlinks, and only a regular file is read (O_NONBLOCK: a FIFO
 * planted there must not block the loop). Files are tiny and in the page
 * cache, so a plain read(2) on the loop thread costs less than a thread
 * pool round trip. Returns 0, or -errno / TF_ETOOBIG / TF_ENOMEM. */
static int read_challenge(const char *webroot, const char *token, char **body, size_t *len)
{
    int root = -1, wk = -1, ch = -1, fd = -1, rc = 0;
    char *buf = NULL;
    struct stat st;
    root = open(webroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root >= 0)
        wk = open_dir_at(root, ".well-known");
    if (wk >= 0)
        ch = open_dir_at(wk, "acme-challenge");
    if (ch >= 0)
        fd = openat(ch, token, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)TF_REDIRECT_MAX_FILE) {
        rc = S_ISREG(st.st_mode) ? TF_ETOOBIG : -ENOENT;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = TF_ENOMEM;
        goto out;
    }
    size_t got = 0;
    ssize_t n;
    while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
        got += (size_t)n;
    *body = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    if (ch >= 0)
        close(ch);
    if (wk >= 0)
        close(wk);
    if (root >= 0)
        close(root);
    return rc;
}

/* The built-in client's answer: from memory, else from acme.storage, where
 * another instance sharing it publishes the answers of its orders (the CA's
 * validation may reach any instance behind a balancer); only where the
 * client is configured (acme.directory), as only then is storage ours.
 * That file is read synchronously, as the webroot's: a few hundred bytes,
 * only for a token this process does not hold. The cost is that a storage
 * that stalls (a hard-mounted network file system whose server is away)
 * stalls this worker: docs/ACME.md says so.
 * Returns 0 when it answered (or closed the connection), TF_ENOTFOUND to
 * try the webroot. */
static int conn_serve_from_table(rd_conn_t *c, const tf_http_request_t *req, const char *token)
{
    char *ka = NULL;
    size_t len = 0;
    int rc = c->r->challenges != NULL ? tf_acme_http01_get(c->r->challenges, token, &ka, &len)
                                      : TF_ENOTFOUND;
    if (rc == TF_ENOTFOUND && c->r->challenges != NULL &&
        tf_conf_acme(c->r->conf)->directory != NULL) {
        rc = tf_acme_http01_shared_get(tf_conf_acme(c->r->conf)->storage, token, &ka, &len);
        if (rc == 0)
            TF_LOG(TF_LOG_DEBUG, "http: ACME http-01 answer served from acme.storage");
    }
    if (rc == TF_ENOTFOUND)
        return rc;
    if (rc == 0)
        conn_respond(c, req, 200, NULL, ka, len);
    else
        conn_close(c);
    free(ka);
    return 0;
}

/* The table first, then the webroot, which external clients (certbot,
 * lego) keep writing to whether or not the built-in client runs. */
static void conn_serve_challenge(rd_conn_t *c, const tf_http_request_t *req, const char *token)
{
    if (conn_serve_from_table(c, req, token) == 0)
        return;
    const char *webroot = tf_conf_acme_webroot(c->r->conf);
    char *body = NULL;
    size_t len = 0;
    int rc = webroot ? read_challenge(webroot, token, &body, &len) : -ENOENT;
    if (rc == TF_ENOMEM) {
        conn_close(c);
        return;
    }
    if (rc != 0) {
        TF_LOG(TF_LOG_DEBUG, "http: ACME challenge not served: %s", tf_strerror(rc));
        conn_error(c, req, 404);
        return;
    }
    conn_respond(c, req, 200, NULL, body, len);
    free(body);
}

static void conn_answer(rd_conn_t *c, const tf_http_request_t *req)
{
    /* Room for "https://", the host and a target that may triple in size
     * when percent-encoded. */
    size_t cap = 16 + TF_REDIRECT_MAX_HOST + 3 * req->target_len + 1;
    char *loc = malloc(cap);
    if (loc == NULL) {
        conn_close(c);
        return;
    }
    bool acme = c->r->challenges != NULL || tf_conf_acme_webroot(c->r->conf) != NULL;
    int status = tf_redirect_route(req, acme, loc, cap);
    if (status == TF_REDIRECT_ACME) {
        conn_serve_challenge(c, req, loc);
    } else if (status == 301) {
        static const char body[] = "301 Moved Permanently\n";
        conn_respond(c, req, 301, loc, body, sizeof body - 1);
    } else {
        conn_error(c, req, status);
    }
    free(loc);
}

static size_t max_head(const tf_redirect_t *r)
{
    return tf_conf_limits(r->conf)->max_header_bytes;
}

/* What the buffer may hold: the head, and before it a PROXY header. */
static size_t max_buf(const rd_conn_t *c)
{
    return max_head(c->r) + (c->pp_pending ? TF_PP_V2_MAX : 0);
}

/* listen.proxy_protocol (SPEC §14), as on listen.https (conn.c): the
 * header's address is the client's for the access log; anything but a
 * valid header closes the connection without a byte. False when the
 * connection is closed or the header is not whole yet. */
static bool conn_proxy_header(rd_conn_t *c)
{
    tf_pp_header_t h;
    int rc = tf_pp_parse((const uint8_t *)c->buf, c->len, &h);
    if (rc == TF_PP_MORE)
        return false;
    if (rc != 0) {
        conn_close(c);
        return false;
    }
    if (!h.local && h.src.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&h.src, c->peer, sizeof c->peer);
    else if (!h.local)
        uv_ip6_name((struct sockaddr_in6 *)&h.src, c->peer, sizeof c->peer);
    memmove(c->buf, c->buf + h.len, c->len - h.len);
    c->len -= h.len;
    c->bytes_in -= h.len;
    c->pp_pending = false;
    conn_arm(c, tf_conf_timeouts(c->r->conf)->request_header_ms);
    return true;
}

/* Called after each read. The parser resumes where the previous read left
 * it, so a client dribbling a large head byte by byte costs linear time. */
static void conn_check_head(rd_conn_t *c)
{
    tf_http_request_t req;
    int rc = tf_http_parse_head(&c->parser, c->buf, c->len, max_head(c->r), &req);
    if (rc == TF_HTTP_MORE)
        return;
    /* Reading goes on while the response is written: later bytes land in
     * the scratch buffer and an early reset is noticed. */
    if (rc != 0)
        conn_error(c, NULL, rc);
    else
        conn_answer(c, &req);
}

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    rd_conn_t *c = h->data;
    tf_redirect_t *r = c->r;
    if (c->state != RD_READING) {
        *buf = uv_buf_init(r->scratch, sizeof r->scratch);
        return;
    }
    size_t max = max_buf(c);
    if (c->len == c->cap && c->cap < max) {
        size_t cap = c->cap == 0 ? FIRST_BUF : c->cap * 2;
        cap = cap < max ? cap : max;
        char *nb = realloc(c->buf, cap);
        if (nb != NULL) {
            c->buf = nb;
            c->cap = cap;
        }
    }
    /* Zero bytes when growing failed: libuv reports UV_ENOBUFS. */
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    rd_conn_t *c = s->data;
    if (n == 0 || c->state == RD_CLOSING)
        return;
    if (n == UV_EOF && c->state == RD_WRITING) {
        /* Half-closed: the response still goes out. */
        c->eof = true;
        uv_read_stop(s);
        return;
    }
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (c->state != RD_READING)
        return;
    c->len += (size_t)n;
    c->bytes_in += (uint64_t)n;
    if (c->pp_pending && (!conn_proxy_header(c) || c->len == 0))
        return;
    conn_check_head(c);
}

static void conn_on_timer(uv_timer_t *t)
{
    rd_conn_t *c = t->data;
    if (c->state != RD_READING || c->pp_pending) {
        conn_close(c);
        return;
    }
    conn_error(c, NULL, 408);
}

/* Notes when and from where, for the access log; false when the
 * connection must start with a PROXY header and does not come from one of
 * the balancers allowed to send it. */
static bool conn_started(rd_conn_t *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->start_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    c->start_tick = uv_now(c->r->loop);
    const tf_conf_proxy_protocol_t *pp = tf_conf_proxy_protocol(c->r->conf);
    c->pp_pending = pp->enabled;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return !pp->enabled;
    if (pp->enabled && !tf_http_allowed(&pp->from, (struct sockaddr *)&ss))
        return false;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof c->peer);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof c->peer);
    return true;
}

/* Returns 0, or TF_ENOMEM when the connection must stay pending. */
static int conn_accept(tf_redirect_t *r)
{
    rd_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TF_ENOMEM;
    c->r = r;
    tf_http_parser_init(&c->parser);
    tf_http_parser_set_max_fields(&c->parser, tf_conf_limits(r->conf)->max_header_fields);
    uv_tcp_init(r->loop, &c->tcp);
    uv_timer_init(r->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = r->conns;
    if (r->conns)
        r->conns->prev = c;
    r->conns = c;
    r->nconns++;
    if (uv_accept((uv_stream_t *)&r->tcp, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return 0;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (!conn_started(c)) {
        conn_close(c);
        return 0;
    }
    /* The balancer's header is due within timeouts.handshake, as on
     * listen.https; the request head within request_header after it. */
    const tf_conf_timeouts_t *t = tf_conf_timeouts(r->conf);
    conn_arm(c, c->pp_pending ? t->handshake_ms : t->request_header_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read) != 0)
        conn_close(c);
    return 0;
}

/* Takes the pending connection, or leaves it in libuv (which then stops
 * polling the socket) and retries later: at limits.max_connections or out
 * of memory, waiting is better than spinning. */
static void rd_on_retry(uv_timer_t *t);

static void rd_take(tf_redirect_t *r)
{
    if (r->closing)
        return;
    if (r->nconns >= tf_conf_limits(r->conf)->max_connections || conn_accept(r) != 0) {
        if (!uv_is_active((uv_handle_t *)&r->retry))
            uv_timer_start(&r->retry, rd_on_retry, RETRY_MS, 0);
    }
}

static void rd_on_retry(uv_timer_t *t)
{
    rd_take(t->data);
}

static void rd_on_connection(uv_stream_t *server, int status)
{
    tf_redirect_t *r = server->data;
    if (status < 0) {
        TF_LOG(TF_LOG_INFO, "http: accept: %s", uv_strerror(status));
        return;
    }
    if (uv_is_active((uv_handle_t *)&r->retry))
        return;
    rd_take(r);
}

static void rd_on_handle_closed(uv_handle_t *h)
{
    tf_redirect_t *r = h->data;
    r->handles--;
    rd_maybe_free(r);
}

int tf_redirect_start(uv_loop_t *loop, int fd, tf_conf_t *conf, tf_redirect_t **out)
{
    tf_redirect_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        close(fd);
        return TF_ENOMEM;
    }
    r->loop = loop;
    r->conf = tf_conf_ref(conf);
    uv_tcp_init(loop, &r->tcp);
    uv_timer_init(loop, &r->retry);
    r->tcp.data = r->retry.data = r;
    r->handles = 2;
    int rc = uv_tcp_open(&r->tcp, fd);
    if (rc != 0)
        close(fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&r->tcp, 1024, rd_on_connection);
    if (rc != 0) {
        /* The caller gets the error now; the memory goes when libuv has
         * closed the handles. */
        tf_redirect_close(r, NULL, NULL);
        return rc;
    }
    *out = r;
    return 0;
}

void tf_redirect_set_conf(tf_redirect_t *r, tf_conf_t *conf)
{
    tf_conf_t *old = r->conf;
    r->conf = tf_conf_ref(conf);
    tf_conf_unref(old);
}

void tf_redirect_close(tf_redirect_t *r, void (*done)(void *arg), void *arg)
{
    r->closing = true;
    r->done = done;
    r->done_arg = arg;
    uv_close((uv_handle_t *)&r->tcp, rd_on_handle_closed);
    uv_close((uv_handle_t *)&r->retry, rd_on_handle_closed);
    for (rd_conn_t *c = r->conns; c != NULL; c = c->next)
        conn_close(c);
}

void tf_redirect_set_access_log(tf_redirect_t *r, tf_access_log_t *log)
{
    r->access = log;
}

void tf_redirect_set_challenges(tf_redirect_t *r, tf_acme_challenges_t *t)
{
    r->challenges = t;
}

size_t tf_redirect_connections(const tf_redirect_t *r)
{
    return r->nconns;
}
