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
#include "proxy/ops/admin.h"

#include "certstore/certstore.h"
#include "proxy/ops/admin_certs.h"
#include "common/err.h"
#include "common/util.h"
#include "proxy/http/http.h"
#include "proxy/net/net.h"
#include "proxy/obs/obs.h"
#include "proxy/ops/json.h"
#include "proxy/ops/where.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define CONTINUE_100 "HTTP/1.1 100 Continue\r\n\r\n"
#define TOKEN_MAX 1024

typedef struct admin_conn admin_conn_t;

struct tf_admin {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    tf_reload_t *reload;
    tf_metrics_worker_t *const *metrics;
    unsigned nworkers;
    tf_cs_trust_t *trust; /* for validating uploads as the store would */
    char token[TOKEN_MAX];
    size_t token_len; /* 0: no token required */
    bool deny_all;    /* a configured token could not be read: nothing is allowed */
    bool loopback;    /* admin.listen is a loopback address */
    bool pending;     /* a connection waits to be taken (cap or memory) */
    admin_conn_t *conns;
    /* PUT and DELETE /certs/NAME: one file job at a time, so that two
     * requests never change one name at once, and admin traffic holds at
     * most one of the pool's threads (shared with reloads). Others wait in
     * a queue, oldest first. */
    admin_conn_t *file_job; /* whose file work runs, or NULL */
    admin_conn_t *queue_head, *queue_tail;
    unsigned handles;   /* the listener + every connection */
    unsigned jobs;      /* token file reads on the thread pool */
    uint64_t token_seq; /* the latest token request; older reads are dropped */
    bool closing;
};

/* PUT or DELETE /certs/NAME's file work on the thread pool. The loop fills
 * the request and then touches neither it nor the connection's buffer and
 * target (which it points into) until the after-work callback. */
typedef struct {
    uv_work_t req;
    tf_conf_t *conf; /* a reference: a reload may replace the one in service meanwhile */
    tf_admin_cert_job_t job;
} file_job_t;

struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_write_t creq; /* "100 Continue" */
    tf_admin_t *admin;
    admin_conn_t *prev, *next;
    tf_http_parser_t parser;
    tf_http_request_t req;
    char *buf; /* head, then body */
    size_t len, cap;
    size_t head_len, body_len; /* known once the head is parsed */
    bool head_done;
    bool waiting; /* for file work or a reload: closing waits for the answer */
    bool queued;  /* a PUT or DELETE waiting in the admin's queue */
    bool written; /* its file work changed the files: the answer says so */
    bool answered;
    uint8_t handles;
    char method[16];
    char target[256];
    char *out;   /* the response being written */
    json_t *extra; /* a PUT/DELETE's own members, leading the reload's answer */
    admin_conn_t *qnext;
    char sink[64]; /* reads while queued, only to see the client leave */
    file_job_t fj;
};

static void conn_close(admin_conn_t *c);
static void conn_on_timeout(uv_timer_t *t);

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
    conn_close(c);
}

/* Sends the whole response and closes the connection after it, or after
 * TF_ADMIN_TIMEOUT_MS when the client does not take it. `headers` holds
 * extra header lines, each ending in CRLF. */
static void respond(admin_conn_t *c, int status, const char *type, const char *headers,
                    const char *body, size_t len)
{
    if (c->answered)
        return;
    c->answered = true;
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    if (f == NULL) {
        conn_close(c);
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
        conn_close(c);
        return;
    }
    c->out = out;
    uv_buf_t b = uv_buf_init(out, (unsigned)outlen);
    c->wreq.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* A client that never reads its answer must not hold a connection
     * slot: the write gets its own deadline. */
    uv_timer_start(&c->timer, conn_on_timeout, TF_ADMIN_TIMEOUT_MS, 0);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_written) != 0)
        conn_close(c);
}

static void respond_text(admin_conn_t *c, int status, const char *headers, const char *text)
{
    respond(c, status, "text/plain; charset=utf-8", headers, text, strlen(text));
}

/* Answers with doc, whose reference it takes (NULL: out of memory). */
static void respond_json(admin_conn_t *c, int status, json_t *doc)
{
    size_t len = 0;
    char *body = tf_json_dump(doc, &len);
    if (body == NULL) {
        respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    respond(c, status, "application/json", NULL, body, len);
    free(body);
}

/* ---- /certs -------------------------------------------------------------- */

static json_t *json_entry(const tf_cs_entry_t *e)
{
    const tf_cs_bundle_t *served = tf_cs_entry_served(e);
    const tf_cs_bundle_t *failed = tf_cs_entry_failed(e);
    const tf_cs_bundle_t *shown = served != NULL ? served : failed;
    /* "kept": the file now fails, its last good version is still served. */
    const char *status = served == NULL   ? "ERROR"
                         : failed != NULL ? "kept"
                                          : tf_cs_status_name(tf_cs_bundle_status(served));
    json_t *o = json_object();
    int rc = json_object_set_new(o, "file", tf_json_text(tf_cs_entry_path(e)));
    rc |= json_object_set_new(o, "status", tf_json_text(status));
    if (shown != NULL)
        rc |= tf_admin_json_bundle_fields(o, shown);
    rc |= json_object_set_new(o, "warnings", tf_json_diags(served, TF_CS_WARNING));
    rc |= json_object_set_new(o, "errors", tf_json_diags(failed, TF_CS_FATAL));
    return tf_json_checked(o, rc);
}

static json_t *certs_json(const tf_cs_snapshot_t *snap)
{
    json_t *list = json_array();
    int rc = list != NULL ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < tf_cs_snapshot_entry_count(snap); i++)
        rc = json_array_append_new(list, json_entry(tf_cs_snapshot_entry_at(snap, i)));
    return tf_json_checked(list, rc);
}

/* ---- /metrics ------------------------------------------------------------ */

static void get_metrics(admin_conn_t *c)
{
    tf_admin_t *a = c->admin;
    tf_metrics_main_t m = {0};
    tf_reload_metrics(a->reload, &m);
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (f == NULL) {
        respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    tf_metrics_render(f, a->metrics, a->nworkers, &m);
    if (fclose(f) != 0) {
        free(body);
        respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, body, len);
    free(body);
}

/* ---- /reload ------------------------------------------------------------- */

/* The non-empty lines of text (NULL: none) as a list of strings. */
static json_t *json_lines(const char *text)
{
    json_t *list = json_array();
    int rc = list != NULL ? 0 : -1;
    for (const char *p = text; rc == 0 && p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > 0) {
            char *line = strndup(p, n);
            rc = line != NULL ? json_array_append_new(list, tf_json_text(line)) : -1;
            free(line);
        }
        p += n + (nl != NULL);
    }
    return tf_json_checked(list, rc);
}

/* A copy of the request's own members (extra, may be NULL), the start of
 * its answer. */
static json_t *answer_start(json_t *extra)
{
    json_t *o = json_object();
    return tf_json_checked(o, extra != NULL ? json_object_update(o, extra) : 0);
}

/* The reload's result, after the request's own members (extra, may be
 * NULL); rejected: why the store rejects the request's own file, or NULL. */
static json_t *reload_json(const tf_reload_result_t *res, json_t *extra, const char *rejected)
{
    json_t *o = answer_start(extra);
    int rc = json_object_set_new(o, "ok", json_boolean(res->rc == 0 && rejected == NULL));
    rc |= json_object_set_new(o, "error", tf_json_text(rejected != NULL ? rejected : res->error));
    rc |= json_object_set_new(
        o, "certificates",
        json_pack("{s:I,s:I,s:I,s:I,s:o,s:o}", "added", (json_int_t)res->added, "replaced",
                  (json_int_t)res->replaced, "removed", (json_int_t)res->removed, "failed",
                  (json_int_t)res->failed, "failures", json_lines(res->failures), "warnings",
                  json_lines(res->warnings)));
    rc |= json_object_set_new(o, "config",
                              json_pack("{s:b,s:b,s:o,s:o}", "requested", res->conf_requested,
                                        "applied", res->conf_applied, "errors",
                                        json_lines(res->conf_errors), "needs_restart",
                                        json_lines(res->restart)));
    return tf_json_checked(o, rc);
}

/* Whether two paths name the same file, a run of slashes counting as one
 * ("certs/" + "/a.pem" as the store joins them). */
static bool same_path(const char *a, const char *b)
{
    while (*a != '\0' && *b != '\0') {
        if (*a != *b)
            return false;
        bool slash = *a == '/';
        a++;
        b++;
        while (slash && *a == '/')
            a++;
        while (slash && *b == '/')
            b++;
    }
    return *a == *b;
}

/* Why the store in service rejects the file this PUT wrote (its first
 * fatal diagnostic), or NULL when it loads it. Looked up in the snapshot
 * rather than the reload's failures: a reload that the watcher started
 * first may have reported the file already. */
static const char *own_file_rejected(const admin_conn_t *c)
{
    const tf_cs_snapshot_t *snap = tf_reload_snapshot(c->admin->reload);
    for (size_t i = 0; snap != NULL && i < tf_cs_snapshot_entry_count(snap); i++) {
        const tf_cs_entry_t *e = tf_cs_snapshot_entry_at(snap, i);
        const tf_cs_bundle_t *failed = tf_cs_entry_failed(e);
        if (failed == NULL || !same_path(tf_cs_entry_path(e), c->fj.job.file))
            continue;
        for (size_t k = 0; k < tf_cs_bundle_diag_count(failed); k++) {
            const tf_cs_diag_t *d = tf_cs_bundle_diag_at(failed, k);
            if (d->severity == TF_CS_FATAL)
                return d->message;
        }
        return "the certificate store rejects the file";
    }
    return NULL;
}

static json_t *at_next_start_json(json_t *extra)
{
    json_t *o = answer_start(extra);
    int rc = json_object_set_new(o, "ok", json_true());
    rc |= json_object_set_new(o, "reload", json_string("at next start"));
    return tf_json_checked(o, rc);
}

static void on_reloaded(void *arg, const tf_reload_result_t *res)
{
    admin_conn_t *c = arg;
    c->waiting = false;
    if (c->written && res->stopping) {
        /* The write is durable; only the reload is left, and the next start
         * loads the directory anyway. A 500 would make automation retry a
         * change that is done (and a DELETE then gets 404). */
        respond_json(c, 200, at_next_start_json(c->extra));
    } else {
        bool failed = res->rc != 0 || (res->conf_requested && !res->conf_applied);
        /* Written, but the store will not load it (the last good version,
         * if any, stays in service): 422 as for an upload that fails
         * validation, with the store's reason. */
        const char *rejected = !failed && c->written && c->fj.job.put ? own_file_rejected(c) : NULL;
        int status = failed ? 500 : rejected != NULL ? 422 : 200;
        respond_json(c, status, reload_json(res, c->extra, rejected));
    }
    if (!c->answered)
        conn_close(c);
}

static void start_reload(admin_conn_t *c, bool with_conf, const char *why)
{
    c->waiting = true;
    tf_reload_request(c->admin->reload, with_conf, why, on_reloaded, c);
}

/* ---- PUT and DELETE /certs/NAME ----------------------------------------- */

static bool is(const admin_conn_t *c, const char *method);

static void file_job_work(uv_work_t *req)
{
    file_job_t *fj = tf_container_of(req, file_job_t, req);
    tf_admin_cert_job_run(&fj->job);
}

/* Whether uploads still go to `dir` under the configuration in service:
 * tls.certs is the same up to `dir` (those before it were no directories
 * when the file work ran). Decided without the disk. */
static bool same_upload_dir(const tf_conf_t *then, const tf_conf_t *now, const char *dir)
{
    if (then == now || dir == NULL)
        return true;
    const tf_conf_str_list_t *a = &tf_conf_tls(then)->certs, *b = &tf_conf_tls(now)->certs;
    for (size_t i = 0; i < a->count; i++) {
        if (i >= b->count || strcmp(a->items[i], b->items[i]) != 0)
            return false;
        if (a->items[i] == dir)
            return true;
    }
    return false;
}

static void file_job_start(admin_conn_t *c);

/* The next queued PUT or DELETE, once none runs. */
static void file_job_next(tf_admin_t *a)
{
    while (a->file_job == NULL && a->queue_head != NULL && !a->closing) {
        admin_conn_t *c = a->queue_head;
        a->queue_head = c->qnext;
        if (a->queue_head == NULL)
            a->queue_tail = NULL;
        c->qnext = NULL;
        c->queued = false;
        uv_read_stop((uv_stream_t *)&c->tcp);
        file_job_start(c);
    }
}

/* Takes a queued connection out of the queue. */
static void queue_remove(admin_conn_t *c)
{
    tf_admin_t *a = c->admin;
    admin_conn_t *prev = NULL;
    for (admin_conn_t *q = a->queue_head; q != NULL; prev = q, q = q->qnext) {
        if (q != c)
            continue;
        if (prev != NULL)
            prev->qnext = c->qnext;
        else
            a->queue_head = c->qnext;
        if (a->queue_tail == c)
            a->queue_tail = prev;
        break;
    }
    c->qnext = NULL;
    c->queued = false;
}

/* Back on the loop. The connection is still open: conn_close() waits while
 * c->waiting is set, whether the client left (nothing reads it meanwhile),
 * its deadline passed or the admin API is closing (then the reload below
 * answers at once). */
static void file_job_done(uv_work_t *req, int status)
{
    admin_conn_t *c = tf_container_of(req, admin_conn_t, fj.req);
    tf_admin_t *a = c->admin;
    tf_admin_cert_job_t *j = &c->fj.job;
    a->file_job = NULL;
    c->waiting = false;
    if (status != 0 && j->status == 0) {
        j->status = 500;
        j->text = "the request was cancelled\n";
    }
    if (j->status == 0 && !same_upload_dir(c->fj.conf, tf_reload_conf(a->reload), j->dir)) {
        /* A configuration reload moved tls.certs while the work ran. */
        TF_LOG(TF_LOG_WARN, "admin: %s /certs/%s: tls.certs changed meanwhile: %s %s", c->method,
               j->name, j->put ? "wrote" : "removed", j->file);
        char text[4400];
        snprintf(text, sizeof text,
                 "tls.certs changed while this request ran: %s was %s, but that directory is no "
                 "longer the first one of tls.certs; send the request again\n",
                 j->file, j->put ? "written" : "removed");
        respond_text(c, 409, NULL, text);
    } else if (j->status == 0) {
        c->written = true;
        c->extra = j->extra;
        j->extra = NULL;
        start_reload(c, false, j->put ? "PUT /certs" : "DELETE /certs");
    } else if (j->json != NULL) {
        respond_json(c, j->status, j->json);
        j->json = NULL;
    } else {
        respond_text(c, j->status, NULL, j->text);
    }
    json_decref(j->json);
    j->json = NULL;
    json_decref(j->extra);
    j->extra = NULL;
    tf_conf_unref(c->fj.conf);
    c->fj.conf = NULL;
    if (!c->answered && !c->waiting)
        conn_close(c);
    file_job_next(a);
}

/* PUT or DELETE /certs/NAME: the file work goes to the thread pool, with
 * the configuration in service now; the connection neither reads nor
 * changes its buffer until it is back. */
static void file_job_start(admin_conn_t *c)
{
    tf_admin_t *a = c->admin;
    const char *name = c->target + 7;
    file_job_t *fj = &c->fj;
    fj->conf = tf_conf_ref(tf_reload_conf(a->reload));
    fj->job = (tf_admin_cert_job_t){
        .put = is(c, "PUT"),
        .conf = fj->conf,
        .trust = a->trust,
        .name = name,
        .body = c->buf + c->head_len,
        .body_len = c->body_len,
    };
    c->waiting = true;
    a->file_job = c;
    int rc = uv_queue_work(a->loop, &fj->req, file_job_work, file_job_done);
    if (rc != 0) {
        tf_conf_unref(fj->conf);
        fj->conf = NULL;
        c->waiting = false;
        a->file_job = NULL;
        TF_LOG(TF_LOG_ERROR, "admin: %s /certs/%s: %s", c->method, name, uv_strerror(rc));
        respond_text(c, 500, NULL, "cannot start the file work; see the log\n");
    }
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* Runs the file work now, or queues it behind the one running. A queued
 * connection keeps reading (into a sink) only to see its client leave,
 * and waits at most TF_ADMIN_TIMEOUT_MS for its turn (then 503). */
static void file_job_enqueue(admin_conn_t *c)
{
    tf_admin_t *a = c->admin;
    if (a->file_job == NULL) {
        file_job_start(c);
        return;
    }
    c->queued = true;
    c->qnext = NULL;
    if (a->queue_tail != NULL)
        a->queue_tail->qnext = c;
    else
        a->queue_head = c;
    a->queue_tail = c;
    uv_timer_start(&c->timer, conn_on_timeout, TF_ADMIN_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) != 0)
        conn_close(c);
}

/* ---- routing --------------------------------------------------------------- */

static bool is(const admin_conn_t *c, const char *method)
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
        return is(c, "GET") || is(c, "HEAD") ? EP_HEALTHZ
                                             : refuse(r, 405, "Allow: GET\r\n", not_allowed);
    if (strcmp(t, "/metrics") == 0)
        return is(c, "GET") ? EP_METRICS : refuse(r, 405, "Allow: GET\r\n", not_allowed);
    if (strcmp(t, "/certs") == 0)
        return is(c, "GET") ? EP_CERTS : refuse(r, 405, "Allow: GET\r\n", not_allowed);
    if (strcmp(t, "/reload") == 0)
        return is(c, "POST") ? EP_RELOAD : refuse(r, 405, "Allow: POST\r\n", not_allowed);
    if (strncmp(t, "/certs/", 7) != 0)
        return refuse(r, 404, NULL, "not found\n");
    if (!tf_admin_cert_name_ok(t + 7))
        return refuse(r, 404, NULL,
                      "certificate names are 1-128 of A-Z a-z 0-9 . _ - and do not start with "
                      "a dot\n");
    if (is(c, "PUT"))
        return EP_PUT_CERT;
    if (is(c, "DELETE"))
        return EP_DELETE_CERT;
    return refuse(r, 405, "Allow: PUT, DELETE\r\n", not_allowed);
}

/* The whole request is in: answer it. */
static void route(admin_conn_t *c)
{
    refusal_t r = {0};
    switch (resolve(c, &r)) {
    case EP_REFUSED:
        respond_text(c, r.status, r.headers, r.text);
        break;
    case EP_HEALTHZ:
        respond_text(c, 200, NULL, "ok\n");
        break;
    case EP_METRICS:
        get_metrics(c);
        break;
    case EP_CERTS:
        respond_json(c, 200, certs_json(tf_reload_snapshot(c->admin->reload)));
        break;
    case EP_RELOAD:
        start_reload(c, true, "POST /reload");
        break;
    case EP_PUT_CERT:
    case EP_DELETE_CERT:
        file_job_enqueue(c);
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
        respond_text(c, r.status, r.headers, r.text);
        return;
    }
    /* Without a directory in tls.certs the upload is 409 whatever its body
     * (a stat of the configured paths, as the reload's watcher makes on
     * this loop); the file work checks again. */
    if (ep == EP_PUT_CERT && tf_admin_cert_dir(tf_reload_conf(c->admin->reload)) == NULL) {
        respond_text(c, 409, NULL, TF_ADMIN_NO_CERT_DIR);
        return;
    }
    /* A string literal: it outlives the write, which libuv only reads. No
     * callback: creq lives in the connection, which outlasts it (a close
     * cancels it first). The final answer queues behind it. */
    uv_buf_t b = uv_buf_init(CONTINUE_100, sizeof CONTINUE_100 - 1);
    if (uv_write(&c->creq, (uv_stream_t *)&c->tcp, &b, 1, NULL) != 0)
        conn_close(c);
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
        respond_text(c, 404, NULL, "not found\n");
        return;
    }
    copy_field(c->target, sizeof c->target, req->target, req->target_len);
    if (!token_ok(c->admin, req)) {
        TF_LOG(TF_LOG_WARN, "admin: %s request without a valid bearer token refused", c->method);
        respond_text(c, 401, "WWW-Authenticate: Bearer realm=\"tlsfront\"\r\n",
                     "a valid bearer token is required\n");
        return;
    }
    if (!expectation_ok(req)) {
        respond_text(c, 417, NULL, "the only expectation understood is 100-continue\n");
        return;
    }
    if (req->body == TF_HTTP_BODY_CHUNKED) {
        respond_text(c, 411, NULL, "send a Content-Length\n");
        return;
    }
    if (req->body == TF_HTTP_BODY_LENGTH && req->content_length > TF_ADMIN_MAX_BODY) {
        respond_text(c, 413, NULL, "bundles are at most 1 MiB\n");
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
            respond_text(c, st, NULL, st == 431 ? "header too large\n" : "bad request\n");
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

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
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

static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    admin_conn_t *c = s->data;
    if (c->queued) {
        /* Nothing more is read from a request that is in (one per
         * connection); only its end matters. */
        if (n < 0) {
            TF_LOG(TF_LOG_INFO, "admin: %s %s: the client left while queued; dropped", c->method,
                   c->target);
            conn_close(c);
        }
        return;
    }
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    conn_progress(c);
    /* A full buffer is only too much once it can grow no more (the head's
     * own limit is the parser's: 431). */
    if (!c->answered && !c->waiting && c->len >= c->cap &&
        c->cap >= TF_ADMIN_MAX_HEAD + TF_ADMIN_MAX_BODY)
        respond_text(c, c->head_done ? 413 : 431, NULL, "request too large\n");
}

static void conn_on_timeout(uv_timer_t *t)
{
    admin_conn_t *c = t->data;
    if (c->queued) {
        queue_remove(c);
        respond_text(c, 503, "Retry-After: 10\r\n",
                     "another certificate change is still running; nothing was changed: send "
                     "the request again\n");
        return;
    }
    if (!c->waiting)
        conn_close(c);
}

/* ---- connections ---------------------------------------------------------- */

static void admin_maybe_free(tf_admin_t *a)
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
    admin_maybe_free(a);
}

static void conn_close(admin_conn_t *c)
{
    if (c->waiting || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->queued)
        queue_remove(c);
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
        uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, conn_on_timeout, TF_ADMIN_TIMEOUT_MS, 0);
}

/* ---- life --------------------------------------------------------------- */

static int read_token(const char *path, char *out, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char buf[TOKEN_MAX + 2];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n == 0 || n > TOKEN_MAX - 1) {
        explicit_bzero(buf, sizeof buf);
        return TF_EINVAL;
    }
    memcpy(out, buf, n);
    *len = n;
    explicit_bzero(buf, sizeof buf);
    return 0;
}

/* Reads admin.token_file of CONF (set) as at start-up; on failure says why
 * in WHY, with where the configuration names the file when it cannot be
 * read at all. */
static int token_load(const tf_conf_t *conf, char *out, size_t *len, char *why, size_t whylen)
{
    const char *path = tf_conf_admin(conf)->token_file;
    char where[TF_WHERE_MAX];
    int rc = read_token(path, out, len);
    if (rc != 0)
        snprintf(why, whylen,
                 "%s%s: cannot read admin.token_file: %s; write the token (one line) into it",
                 tf_where_is_errno(rc) ? tf_where(conf, "admin.token_file", 0, where) : "", path,
                 rc == TF_EINVAL ? "empty or too long" : strerror(-rc));
    return rc;
}

int tf_admin_check_token(const tf_conf_t *conf, char *why, size_t len)
{
    char token[TOKEN_MAX];
    size_t n = 0;
    int rc = tf_conf_admin(conf)->token_file != NULL ? token_load(conf, token, &n, why, len) : 0;
    explicit_bzero(token, sizeof token);
    return rc;
}

/* The result of reading the token file at `path` (rc, token, len); `where`
 * is the "FILE:LINE:COLUMN: " of admin.token_file, or "". */
static void token_apply(tf_admin_t *a, const char *where, const char *path, int rc,
                        const char *token, size_t len)
{
    if (rc != 0) {
        /* Fail closed: a configured token that cannot be read must not
         * leave the API open (start-up refuses the same configuration). */
        TF_LOG(TF_LOG_ERROR, "%s%s: cannot read the admin token (%s); %s",
               tf_where_is_errno(rc) ? where : "", path,
               rc == TF_EINVAL ? "empty or too long" : strerror(-rc),
               a->token_len > 0 ? "the token in use stays"
                                : "every admin request is refused until it can be read");
        if (a->token_len == 0)
            a->deny_all = true;
        return;
    }
    memcpy(a->token, token, len);
    a->token_len = len;
    a->deny_all = false;
    /* Says when a new token takes effect (it is read off the loop). */
    TF_LOG(TF_LOG_INFO, "admin: token read from %s: in use", path);
}

/* A read of the token file on the thread pool; the admin API is freed only
 * once none is left. */
typedef struct {
    uv_work_t req;
    tf_admin_t *admin;
    uint64_t seq; /* a->token_seq when it was asked for */
    char *path;
    char where[TF_WHERE_MAX]; /* of admin.token_file, for an error */
    int rc;
    size_t len;
    char token[TOKEN_MAX];
} token_job_t;

static void token_work(uv_work_t *req)
{
    token_job_t *j = tf_container_of(req, token_job_t, req);
    j->rc = read_token(j->path, j->token, &j->len);
}

/* Only the latest configuration's read counts: an older one finishing late
 * must not bring back a token that was replaced meanwhile. */
static void token_done(uv_work_t *req, int status)
{
    token_job_t *j = tf_container_of(req, token_job_t, req);
    tf_admin_t *a = j->admin;
    a->jobs--;
    if (j->seq == a->token_seq && !a->closing)
        token_apply(a, j->where, j->path, status != 0 ? status : j->rc, j->token, j->len);
    explicit_bzero(j->token, sizeof j->token);
    free(j->path);
    free(j);
    admin_maybe_free(a);
}

void tf_admin_reload_token(tf_admin_t *a, const tf_conf_t *conf)
{
    if (a->closing)
        return;
    const char *path = tf_conf_admin(conf)->token_file;
    a->token_seq++; /* a read still in flight is for an older configuration */
    if (path == NULL) {
        if (a->token_len > 0)
            TF_LOG(TF_LOG_WARN, "admin: admin.token_file removed: no token required any more");
        a->token_len = 0;
        a->deny_all = false;
        if (!a->loopback) {
            /* Fail closed: an open admin API off loopback is anyone's. */
            TF_LOG(TF_LOG_ERROR,
                   "admin: admin.listen is not a loopback address and no "
                   "admin.token_file is set: every admin request is refused until one is");
            a->deny_all = true;
        }
        return;
    }
    /* The file may sit on a slow disk: the token in use stays until the
     * read is back. */
    token_job_t *j = calloc(1, sizeof *j);
    char *copy = strdup(path);
    int rc = j != NULL && copy != NULL ? 0 : -ENOMEM;
    if (rc == 0) {
        *j = (token_job_t){.admin = a, .seq = a->token_seq, .path = copy};
        tf_where(conf, "admin.token_file", 0, j->where);
        rc = uv_queue_work(a->loop, &j->req, token_work, token_done);
    }
    if (rc != 0) {
        token_apply(a, "", path, rc, NULL, 0);
        free(copy);
        free(j);
        return;
    }
    a->jobs++;
}

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
    admin_maybe_free(a);
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
    const tf_conf_admin_t *ac = tf_conf_admin(o->conf);
    int rc = 0;
    if (ac->token_file != NULL) {
        char why[TF_WHERE_MAX + 1024];
        rc = token_load(o->conf, a->token, &a->token_len, why, sizeof why);
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
            queue_remove(c);
            respond_text(c, 503, NULL,
                         "tlsfront is stopping; nothing was changed: send the request again\n");
            continue;
        }
        conn_close(c);
    }
    uv_close((uv_handle_t *)&a->tcp, admin_on_listener_closed);
}
