/* See admin.h. One request per connection: read the head (at most
 * TF_ADMIN_MAX_HEAD bytes), check the token, read the body (at most
 * TF_ADMIN_MAX_BODY), answer, close. A head with "Expect: 100-continue" is
 * answered "100 Continue" before its body when the request line and headers
 * are acceptable, and refused at once otherwise.
 *
 * The main loop never waits for the disk: PUT and DELETE /certs/NAME do
 * their file work (stat, read, validate, write, fsync, rename, unlink) on
 * libuv's thread pool, and so does reading the token file on a reload. A
 * connection waiting for its file work or for a reload stays open until the
 * callback answers it: closing it (timeout, shutdown) waits for that. File
 * jobs run one at a time (tf_admin_t's queue): a queued connection can be
 * closed at any time, as its work has not started. */
#include "proxy/ops/admin_internal.h"

/* ---- responses ----------------------------------------------------------- */

static const struct {
    int status;
    const char *text;
} status_texts[] = {
    {200, "OK"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {503, "Service Unavailable"},
};

static const char *status_text(int status)
{
    for (size_t i = 0; i < sizeof status_texts / sizeof status_texts[0]; i++) {
        if (status_texts[i].status == status)
            return status_texts[i].text;
    }
    return "Error";
}

static void conn_on_written(uv_write_t *req, int status)
{
    admin_conn_t *c = req->data;
    tf_admin__conn_close(c);
}

/* Sends the whole response and closes the connection after it, or after
 * TF_ADMIN_TIMEOUT_MS when the client does not take it. `headers` holds
 * extra header lines, each ending in CRLF. */
void tf_admin__respond(admin_conn_t *c, int status, const char *type, const char *headers,
                       const char *body, size_t len)
{
    if (c->answered)
        return;
    c->answered = true;
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    if (f == NULL) {
        tf_admin__conn_close(c);
        return;
    }
    fprintf(f,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sCache-Control: "
            "no-store\r\nConnection: close\r\n\r\n",
            status, status_text(status), type, len, headers ? headers : "");
    if (strcmp(c->method, "HEAD") != 0)
        fwrite(body, 1, len, f);
    if (fclose(f) != 0) {
        free(out);
        tf_admin__conn_close(c);
        return;
    }
    c->out = out;
    uv_buf_t b = uv_buf_init(out, (unsigned)outlen);
    c->wreq.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* A client that never reads its answer must not hold a connection
     * slot: the write gets its own deadline. */
    uv_timer_start(&c->timer, tf_admin__conn_on_timeout, TF_ADMIN_TIMEOUT_MS, 0);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_written) != 0)
        tf_admin__conn_close(c);
}

void tf_admin__respond_text(admin_conn_t *c, int status, const char *headers, const char *text)
{
    tf_admin__respond(c, status, "text/plain; charset=utf-8", headers, text, strlen(text));
}

/* Answers with doc, whose reference it takes (NULL: out of memory). */
void tf_admin__respond_json(admin_conn_t *c, int status, json_t *doc)
{
    size_t len = 0;
    char *body = tf_json_dump(doc, &len);
    if (body == NULL) {
        tf_admin__respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    tf_admin__respond(c, status, "application/json", NULL, body, len);
    free(body);
}

/* ---- routing --------------------------------------------------------------- */

bool tf_admin__method_is(const admin_conn_t *c, const char *method)
{
    return strcmp(c->method, method) == 0;
}

typedef enum {
    EP_REFUSED,
    EP_HEALTHZ,
    EP_METRICS,
    EP_CERTS,
    EP_RELOAD,
    EP_PUT_CERT,
    EP_DELETE_CERT,
    EP_BACKENDS,
    EP_POST_BACKEND,
    EP_ACME,
} endpoint_t;

/* What the request line alone refuses: the answer to send. */
typedef struct {
    int status;
    const char *headers;
    const char *text;
} refusal_t;

static endpoint_t refuse(refusal_t *r, int status, const char *headers, const char *text)
{
    *r = (refusal_t){.status = status, .headers = headers, .text = text};
    return EP_REFUSED;
}

/* The endpoint for the method and target, or EP_REFUSED with *r set (404,
 * 405). Decided from the head alone, so that a request that expects 100
 * Continue is refused before its body is sent. Strips the query. */
static endpoint_t resolve(admin_conn_t *c, refusal_t *r)
{
    static const char not_allowed[] = "method not allowed\n";
    char *q = strchr(c->target, '?');
    if (q != NULL)
        *q = '\0';
    const char *t = c->target;
    if (strcmp(t, "/healthz") == 0)
        return tf_admin__method_is(c, "GET") || tf_admin__method_is(c, "HEAD")
                   ? EP_HEALTHZ
                   : refuse(r, 405, "Allow: GET\r\n", not_allowed);
    if (strcmp(t, "/metrics") == 0)
        return tf_admin__method_is(c, "GET") ? EP_METRICS
                                             : refuse(r, 405, "Allow: GET\r\n", not_allowed);
    if (strcmp(t, "/certs") == 0)
        return tf_admin__method_is(c, "GET") ? EP_CERTS
                                             : refuse(r, 405, "Allow: GET\r\n", not_allowed);
    if (strcmp(t, "/reload") == 0)
        return tf_admin__method_is(c, "POST") ? EP_RELOAD
                                              : refuse(r, 405, "Allow: POST\r\n", not_allowed);
    if (strcmp(t, "/backends") == 0)
        return tf_admin__method_is(c, "GET") ? EP_BACKENDS
                                             : refuse(r, 405, "Allow: GET\r\n", not_allowed);
    if (strcmp(t, "/acme") == 0)
        return tf_admin__method_is(c, "GET") ? EP_ACME
                                             : refuse(r, 405, "Allow: GET\r\n", not_allowed);
    if (strncmp(t, "/backends/", 10) == 0)
        return tf_admin__method_is(c, "POST") ? EP_POST_BACKEND
                                              : refuse(r, 405, "Allow: POST\r\n", not_allowed);
    if (strncmp(t, "/certs/", 7) != 0)
        return refuse(r, 404, NULL, "not found\n");
    if (!tf_admin_cert_name_ok(t + 7))
        return refuse(r, 404, NULL,
                      "certificate names are 1-128 of A-Z a-z 0-9 . _ - and do not start with "
                      "a dot\n");
    if (tf_admin__method_is(c, "PUT"))
        return EP_PUT_CERT;
    if (tf_admin__method_is(c, "DELETE"))
        return EP_DELETE_CERT;
    return refuse(r, 405, "Allow: PUT, DELETE\r\n", not_allowed);
}

/* The whole request is in: answer it. */
static void route(admin_conn_t *c)
{
    refusal_t r = {0};
    switch (resolve(c, &r)) {
    case EP_REFUSED:
        tf_admin__respond_text(c, r.status, r.headers, r.text);
        break;
    case EP_HEALTHZ:
        tf_admin__respond_text(c, 200, NULL, "ok\n");
        break;
    case EP_METRICS:
        tf_admin__get_metrics(c);
        break;
    case EP_CERTS:
        tf_admin__respond_json(c, 200, tf_admin__certs_json(tf_reload_snapshot(c->admin->reload)));
        break;
    case EP_RELOAD:
        tf_admin__start_reload(c, true, "POST /reload");
        break;
    case EP_PUT_CERT:
    case EP_DELETE_CERT:
        tf_admin__file_job_enqueue(c);
        break;
    case EP_BACKENDS:
        tf_admin__respond_json(
            c, 200, tf_admin__backends_json(tf_reload_conf(c->admin->reload),
                                       tf_reload_backends(c->admin->reload)));
        break;
    case EP_POST_BACKEND:
        tf_admin__post_backend(c);
        break;
    case EP_ACME:
        /* ACME off: no name is managed. */
        tf_admin__respond_json(
            c, 200, c->admin->acme != NULL ? tf_acme_manager_status(c->admin->acme) : json_array());
        break;
    }
}

/* ---- reading a request --------------------------------------------------- */

/* Constant time in the token's bytes: a wrong guess learns nothing from how
 * long the comparison took. */
static bool token_ok(const tf_admin_t *a, const tf_http_request_t *req)
{
    if (a->deny_all)
        return false;
    if (a->token_len == 0)
        return true;
    const char *v = NULL;
    size_t vlen = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const tf_http_header_t *h = &req->headers[i];
        if (h->name_len == 13 && strncasecmp(h->name, "authorization", 13) == 0) {
            v = h->value;
            vlen = h->value_len;
        }
    }
    if (v == NULL || vlen < 7 || strncasecmp(v, "Bearer ", 7) != 0)
        return false;
    v += 7;
    vlen -= 7;
    unsigned char diff = vlen != a->token_len;
    for (size_t i = 0; i < a->token_len; i++)
        diff |= (unsigned char)(a->token[i] ^ (i < vlen ? v[i] : 0));
    return diff == 0;
}

static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* "Expect: 100-continue" (RFC 9110 §10.1.1): the client holds its body back
 * until an interim answer. A request the head already refuses (401, 411 and
 * 413 above; 404 and 405 here) gets its final answer at once and the
 * connection closes, as nginx does; anything else gets "100 Continue" and
 * is answered once its body is in (422 and 500 are known only then; 409
 * too, but for a tls.certs without any directory).
 * HTTP/1.0, a request without a body, or one whose body is arriving anyway
 * is read and answered as any other. */
static void expect_continue(admin_conn_t *c)
{
    if (c->req.version_minor == 0 || c->body_len == 0 || c->len > c->head_len)
        return;
    refusal_t r;
    endpoint_t ep = resolve(c, &r);
    if (ep == EP_REFUSED) {
        tf_admin__respond_text(c, r.status, r.headers, r.text);
        return;
    }
    /* Without a directory in tls.certs the upload is 409 (500 when the
     * configured one is missing) whatever its body (a stat of the
     * configured paths, as the reload's watcher makes on this loop); the
     * file work checks again. */
    const tf_conf_t *conf = tf_reload_conf(c->admin->reload);
    if (ep == EP_PUT_CERT && tf_admin_cert_dir(conf) == NULL) {
        char text[4400];
        int status = tf_admin_no_cert_dir(conf, text, sizeof text);
        tf_admin__respond_text(c, status, NULL, text);
        return;
    }
    /* A string literal: it outlives the write, which libuv only reads. No
     * callback: creq lives in the connection, which outlasts it (a close
     * cancels it first). The final answer queues behind it. */
    uv_buf_t b = uv_buf_init(CONTINUE_100, sizeof CONTINUE_100 - 1);
    if (uv_write(&c->creq, (uv_stream_t *)&c->tcp, &b, 1, NULL) != 0)
        tf_admin__conn_close(c);
}

/* Whether every Expect of an HTTP/1.1 request is 100-continue (in any
 * case): another expectation is refused with 417 (RFC 9110 §10.1.1), as
 * nginx does, rather than ignored while the client waits for an answer.
 * HTTP/1.0 has no expectations: its Expect is ignored. */
static bool expectation_ok(const tf_http_request_t *req)
{
    if (req->version_minor == 0)
        return true;
    for (size_t i = 0; i < req->nheaders; i++) {
        const tf_http_header_t *h = &req->headers[i];
        if (h->name_len == 6 && strncasecmp(h->name, "expect", 6) == 0 &&
            !(h->value_len == 12 && strncasecmp(h->value, "100-continue", 12) == 0))
            return false;
    }
    return true;
}

/* The head is complete: check it and learn how much body follows. */
static void on_head(admin_conn_t *c)
{
    tf_http_request_t *req = &c->req;
    c->head_done = true;
    c->head_len = req->head_len;
    copy_field(c->method, sizeof c->method, req->method, req->method_len);
    if (req->target_len >= sizeof c->target) {
        tf_admin__respond_text(c, 404, NULL, "not found\n");
        return;
    }
    copy_field(c->target, sizeof c->target, req->target, req->target_len);
    if (!token_ok(c->admin, req)) {
        TF_LOG(TF_LOG_WARN, "admin: %s request without a valid bearer token refused", c->method);
        tf_admin__respond_text(c, 401, "WWW-Authenticate: Bearer realm=\"tlsfront\"\r\n",
                               "a valid bearer token is required\n");
        return;
    }
    if (!expectation_ok(req)) {
        tf_admin__respond_text(c, 417, NULL, "the only expectation understood is 100-continue\n");
        return;
    }
    if (req->body == TF_HTTP_BODY_CHUNKED) {
        tf_admin__respond_text(c, 411, NULL, "send a Content-Length\n");
        return;
    }
    if (req->body == TF_HTTP_BODY_LENGTH && req->content_length > TF_ADMIN_MAX_BODY) {
        tf_admin__respond_text(c, 413, NULL, "bundles are at most 1 MiB\n");
        return;
    }
    c->body_len = req->body == TF_HTTP_BODY_LENGTH ? (size_t)req->content_length : 0;
    if (req->expect_continue)
        expect_continue(c);
}

static void conn_progress(admin_conn_t *c)
{
    if (!c->head_done) {
        int st = tf_http_parse_head(&c->parser, c->buf, c->len, TF_ADMIN_MAX_HEAD, &c->req);
        if (st == TF_HTTP_MORE)
            return;
        if (st != 0) {
            tf_admin__respond_text(c, st, NULL, st == 431 ? "header too large\n" : "bad request\n");
            return;
        }
        on_head(c);
        if (c->answered)
            return;
    }
    if (c->len >= c->head_len + c->body_len) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        route(c);
    }
}

void tf_admin__conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    admin_conn_t *c = h->data;
    if (c->queued) {
        *buf = uv_buf_init(c->sink, sizeof c->sink);
        return;
    }
    size_t limit = TF_ADMIN_MAX_HEAD + TF_ADMIN_MAX_BODY;
    if (c->cap - c->len < 4096 && c->cap < limit) {
        size_t cap = c->cap * 2 < limit ? c->cap * 2 : limit;
        /* Not realloc: an upload may hold a private key, and the old
         * buffer is wiped before it goes back to the allocator. */
        char *p = malloc(cap + 1);
        if (p != NULL) {
            memcpy(p, c->buf, c->len);
            explicit_bzero(c->buf, c->cap + 1);
            free(c->buf);
            c->buf = p;
            c->cap = cap;
        }
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

void tf_admin__conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    admin_conn_t *c = s->data;
    if (c->queued) {
        /* Nothing more is read from a request that is in (one per
         * connection); only its end matters. */
        if (n < 0) {
            TF_LOG(TF_LOG_INFO, "admin: %s %s: the client left while queued; dropped", c->method,
                   c->target);
            tf_admin__conn_close(c);
        }
        return;
    }
    if (n < 0) {
        tf_admin__conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    conn_progress(c);
    /* A full buffer is only too much once it can grow no more (the head's
     * own limit is the parser's: 431). */
    if (!c->answered && !c->waiting && c->len >= c->cap &&
        c->cap >= TF_ADMIN_MAX_HEAD + TF_ADMIN_MAX_BODY)
        tf_admin__respond_text(c, c->head_done ? 413 : 431, NULL, "request too large\n");
}

void tf_admin__conn_on_timeout(uv_timer_t *t)
{
    admin_conn_t *c = t->data;
    if (c->queued) {
        tf_admin__queue_remove(c);
        tf_admin__respond_text(
            c, 503, "Retry-After: 10\r\n",
            "another certificate change is still running; nothing was changed: send "
            "the request again\n");
        return;
    }
    if (!c->waiting)
        tf_admin__conn_close(c);
}

/* ---- connections ---------------------------------------------------------- */

void tf_admin__maybe_free(tf_admin_t *a)
{
    if (a->closing && a->handles == 0 && a->jobs == 0) {
        tf_cs_trust_free(a->trust);
        explicit_bzero(a->token, sizeof a->token);
        free(a);
    }
}

static void admin_on_connection(uv_stream_t *server, int status);

static void conn_on_closed(uv_handle_t *h)
{
    admin_conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    tf_admin_t *a = c->admin;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    /* An upload's body may hold a private key. */
    explicit_bzero(c->buf, c->cap + 1);
    free(c->buf);
    free(c->out);
    json_decref(c->extra);
    free(c);
    a->handles--;
    /* libuv holds an accepted connection it could not hand over and stops
     * watching the listener until it is taken: take it now. */
    if (a->pending && !a->closing) {
        a->pending = false;
        admin_on_connection((uv_stream_t *)&a->tcp, 0);
    }
    tf_admin__maybe_free(a);
}

void tf_admin__conn_close(admin_conn_t *c)
{
    if (c->waiting || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->queued)
        tf_admin__queue_remove(c);
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
    uv_close((uv_handle_t *)&c->timer, conn_on_closed);
}

/* Admin connections at once: each holds a descriptor, and descriptors are
 * shared with the data path. More wait in the listen backlog. */
#define TF_ADMIN_MAX_CONNS 32u

static void admin_on_connection(uv_stream_t *server, int status)
{
    tf_admin_t *a = server->data;
    if (status < 0 || a->closing)
        return;
    if (a->handles > TF_ADMIN_MAX_CONNS) {
        a->pending = true; /* taken when a connection closes */
        return;
    }
    admin_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL || (c->buf = malloc(4097)) == NULL) {
        free(c);
        a->pending = true;
        return;
    }
    c->cap = 4096;
    c->admin = a;
    uv_tcp_init(a->loop, &c->tcp);
    uv_timer_init(a->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    a->handles++;
    c->next = a->conns;
    if (a->conns != NULL)
        a->conns->prev = c;
    a->conns = c;
    tf_http_parser_init(&c->parser);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, tf_admin__conn_alloc, tf_admin__conn_on_read) != 0) {
        tf_admin__conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, tf_admin__conn_on_timeout, TF_ADMIN_TIMEOUT_MS, 0);
}

/* ---- life --------------------------------------------------------------- */

static int admin_bind(tf_admin_t *a, const tf_conf_addr_t *addr)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)addr->port);
    int rc = getaddrinfo(addr->host, port, &hints, &res);
    if (rc != 0) {
        TF_LOG(TF_LOG_ERROR, "%s: admin.listen: %s; use an IP address", addr->text,
               gai_strerror(rc));
        return TF_EINVAL;
    }
    const struct sockaddr *sa = res->ai_addr;
    a->loopback =
        sa->sa_family == AF_INET
            ? (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127
            : IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
    if (!a->loopback && a->token_len == 0) {
        freeaddrinfo(res);
        TF_LOG(TF_LOG_ERROR,
               "%s: admin.listen is not a loopback address: set admin.token_file, or listen on "
               "127.0.0.1 (anyone who reaches the admin API can replace certificates)",
               addr->text);
        return TF_EINVAL;
    }
    uv_tcp_init(a->loop, &a->tcp);
    a->tcp.data = a;
    a->handles = 1;
    rc = uv_tcp_bind(&a->tcp, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->tcp, 64, admin_on_connection);
    /* Announced with the other listeners once all are bound (cmd_run.c). */
    if (rc != 0)
        TF_LOG(TF_LOG_ERROR, "%s: admin.listen: cannot listen: %s", addr->text, uv_strerror(rc));
    return rc;
}

int tf_admin_name(const tf_admin_t *a, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int rc = uv_tcp_getsockname(&a->tcp, (struct sockaddr *)&ss, &len);
    return rc != 0 ? rc : tf_listener_format((const struct sockaddr *)&ss, out, outlen);
}

static void admin_on_listener_closed(uv_handle_t *h)
{
    tf_admin_t *a = h->data;
    a->handles--;
    tf_admin__maybe_free(a);
}

int tf_admin_new(const tf_admin_opts_t *o, tf_admin_t **out)
{
    tf_admin_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return TF_ENOMEM;
    a->loop = o->loop;
    a->reload = o->reload;
    a->metrics = o->metrics;
    a->nworkers = o->nworkers;
    a->acme = o->acme;
    const tf_conf_admin_t *ac = tf_conf_admin(o->conf);
    int rc = 0;
    if (ac->token_file != NULL) {
        char why[TF_WHERE_MAX + 1024];
        rc = tf_admin__token_load(o->conf, a->token, &a->token_len, why, sizeof why);
        if (rc != 0)
            TF_LOG(TF_LOG_ERROR, "%s", why);
    }
    /* Uploads are judged as the store judges files; without the system
     * trust data only the missing-intermediate warning gets coarser. */
    if (rc == 0 && tf_cs_trust_load_system(&a->trust) != 0)
        a->trust = NULL;
    if (rc == 0)
        rc = admin_bind(a, &ac->listen);
    if (rc != 0) {
        if (a->handles > 0) {
            /* The listener handle was made: free once libuv is done with it. */
            a->closing = true;
            uv_close((uv_handle_t *)&a->tcp, admin_on_listener_closed);
        } else {
            tf_cs_trust_free(a->trust);
            free(a);
        }
        return rc;
    }
    *out = a;
    return 0;
}

void tf_admin_close(tf_admin_t *a)
{
    if (a->closing)
        return;
    a->closing = true;
    for (admin_conn_t *c = a->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->queued) {
            /* Its file work has not started: nothing changed, say so. */
            tf_admin__queue_remove(c);
            tf_admin__respond_text(
                c, 503, NULL,
                "tlsfront is stopping; nothing was changed: send the request again\n");
            continue;
        }
        tf_admin__conn_close(c);
    }
    uv_close((uv_handle_t *)&a->tcp, admin_on_listener_closed);
}
