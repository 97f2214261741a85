/* The admin API's endpoints (admin_internal.h): GET /certs and /metrics,
 * POST /reload, and PUT and DELETE /certs/NAME with their file jobs on the
 * thread pool, one at a time. */
#include "proxy/ops/admin_internal.h"

/* ---- /certs -------------------------------------------------------------- */

/* The rejection's errors, then why the file's source cannot be read
 * (unread: that source's note, or NULL). */
static json_t *json_errors(const tf_cs_bundle_t *failed, const char *unread)
{
    json_t *list = tf_json_diags(failed, TF_CS_FATAL);
    if (list == NULL || unread == NULL)
        return list;
    json_t *d =
        json_pack("{s:s,s:o}", "code", "source_unreadable", "message", tf_json_text(unread));
    return tf_json_checked(list, json_array_append_new(list, d));
}

static json_t *json_entry(const tf_cs_snapshot_t *snap, size_t i)
{
    const tf_cs_entry_t *e = tf_cs_snapshot_entry_at(snap, i);
    const tf_cs_bundle_t *served = tf_cs_entry_served(e);
    const tf_cs_bundle_t *failed = tf_cs_entry_failed(e);
    const tf_cs_bundle_t *shown = served != NULL ? served : failed;
    const char *unread = tf_cs_snapshot_entry_unread(snap, i);
    /* "kept": the file now fails, or its directory is gone or unreadable,
     * and its last good version is still served from memory. */
    bool kept = failed != NULL || unread != NULL;
    const char *status = served == NULL ? "ERROR"
                         : kept         ? "kept"
                                        : tf_cs_status_name(tf_cs_bundle_status(served));
    json_t *o = json_object();
    int rc = json_object_set_new(o, "file", tf_json_text(tf_cs_entry_path(e)));
    rc |= json_object_set_new(o, "status", tf_json_text(status));
    if (shown != NULL)
        rc |= tf_admin_json_bundle_fields(o, shown);
    rc |= json_object_set_new(o, "warnings", tf_json_diags(served, TF_CS_WARNING));
    rc |= json_object_set_new(o, "errors", json_errors(failed, unread));
    return tf_json_checked(o, rc);
}

json_t *tf_admin__certs_json(const tf_cs_snapshot_t *snap)
{
    json_t *list = json_array();
    int rc = list != NULL ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < tf_cs_snapshot_entry_count(snap); i++)
        rc = json_array_append_new(list, json_entry(snap, i));
    return tf_json_checked(list, rc);
}

/* ---- /metrics ------------------------------------------------------------ */

typedef struct {
    tf_metrics_backend_row_t *rows;
    size_t n, cap;
    bool failed;
} rows_t;

/* Copies one registry entry (its strings live under the registry's lock
 * only). */
static void row_add(const tf_bstate_view_t *v, void *arg)
{
    rows_t *rs = arg;
    if (rs->failed)
        return;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 16;
        tf_metrics_backend_row_t *p = realloc(rs->rows, cap * sizeof *p);
        if (p == NULL) {
            rs->failed = true;
            return;
        }
        rs->rows = p;
        rs->cap = cap;
    }
    tf_metrics_backend_row_t *r = &rs->rows[rs->n];
    *r = (tf_metrics_backend_row_t){
        .tenant = strdup(v->tenant),
        .address = strdup(v->address),
        .state = tf_bstate_state_name(v->state),
        .failures = v->failures,
        .active_requests = v->active_requests,
        .active_tunnels = v->active_tunnels,
    };
    memcpy(r->requests, v->requests, sizeof r->requests);
    rs->n++;
    if (r->tenant == NULL || r->address == NULL)
        rs->failed = true;
}

static void rows_free(rows_t *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free((char *)rs->rows[i].tenant);
        free((char *)rs->rows[i].address);
    }
    free(rs->rows);
}

typedef struct {
    tf_metrics_acme_row_t *rows;
    size_t n, cap;
    bool failed;
} acme_rows_t;

/* Copies one name (the manager's strings live under its lock only). */
static void acme_row_add(void *arg, const char *name, int64_t at)
{
    acme_rows_t *rs = arg;
    if (rs->failed)
        return;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 16;
        tf_metrics_acme_row_t *p = realloc(rs->rows, cap * sizeof *p);
        if (p == NULL) {
            rs->failed = true;
            return;
        }
        rs->rows = p;
        rs->cap = cap;
    }
    rs->rows[rs->n] = (tf_metrics_acme_row_t){.name = strdup(name), .at = at};
    if (rs->rows[rs->n++].name == NULL)
        rs->failed = true;
}

static void acme_rows_free(acme_rows_t *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free((char *)rs->rows[i].name);
    free(rs->rows);
}

/* The ACME manager's figures, when it runs. false when out of memory. */
static bool acme_figures(tf_admin_t *a, tf_metrics_main_t *m, acme_rows_t *rs)
{
    if (a->acme == NULL)
        return true;
    tf_acme_manager_counts_t n = tf_acme_manager_counts(a->acme);
    tf_acme_manager_each_renewal(a->acme, acme_row_add, rs);
    m->acme = true;
    m->acme_orders[0] = n.valid;
    m->acme_orders[1] = n.invalid;
    m->acme_orders[2] = n.error;
    m->acme_names = rs->rows;
    m->nacme = rs->n;
    return !rs->failed;
}

void tf_admin__get_metrics(admin_conn_t *c)
{
    tf_admin_t *a = c->admin;
    tf_metrics_main_t m = {0};
    tf_reload_metrics(a->reload, &m);
    rows_t rs = {0};
    tf_backends_t *reg = tf_reload_backends(a->reload);
    if (reg != NULL)
        tf_backends_each(reg, row_add, &rs);
    acme_rows_t ar = {0};
    if (rs.failed || !acme_figures(a, &m, &ar)) {
        rows_free(&rs);
        acme_rows_free(&ar);
        tf_admin__respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    m.backends = rs.rows;
    m.nbackends = rs.n;
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (f == NULL) {
        rows_free(&rs);
        acme_rows_free(&ar);
        tf_admin__respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    tf_metrics_render(f, a->metrics, a->nworkers, &m);
    rows_free(&rs);
    acme_rows_free(&ar);
    if (fclose(f) != 0) {
        free(body);
        tf_admin__respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    tf_admin__respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, body, len);
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
        if (failed == NULL || !tf_same_path(tf_cs_entry_path(e), c->fj.job.file))
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

static void file_job_release(tf_admin_t *a, admin_conn_t *c, bool start_next);

static void on_reloaded(void *arg, const tf_reload_result_t *res)
{
    admin_conn_t *c = arg;
    tf_admin_t *a = c->admin;
    c->waiting = false;
    if (c->written && res->stopping) {
        /* The write is durable; only the reload is left, and the next start
         * loads the directory anyway. A 500 would make automation retry a
         * change that is done (and a DELETE then gets 404). */
        tf_admin__respond_json(c, 200, at_next_start_json(c->extra));
    } else {
        bool failed = res->rc != 0 || (res->conf_requested && !res->conf_applied);
        /* Written, but the store will not load it (the last good version,
         * if any, stays in service): 422 as for an upload that fails
         * validation, with the store's reason. */
        const char *rejected = !failed && c->written && c->fj.job.put ? own_file_rejected(c) : NULL;
        int status = failed ? 500 : rejected != NULL ? 422 : 200;
        tf_admin__respond_json(c, status, reload_json(res, c->extra, rejected));
    }
    if (!c->answered)
        tf_admin__conn_close(c);
    /* Stopping: the queued ones get their 503 "nothing was changed" from
     * tf_admin_close(), not a file change made during the shutdown. */
    file_job_release(a, c, !res->stopping);
}

void tf_admin__start_reload(admin_conn_t *c, bool with_conf, const char *why)
{
    c->waiting = true;
    tf_reload_request(c->admin->reload, with_conf, why, on_reloaded, c);
}

/* ---- PUT and DELETE /certs/NAME ----------------------------------------- */

bool tf_admin__method_is(const admin_conn_t *c, const char *method);

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

/* A PUT's or DELETE's turn ends once its reload has answered, not when its
 * file work has: a DELETE queued behind a PUT of the same name would
 * otherwise remove the file while the PUT's reload still reads it, and the
 * PUT, done, would be answered 422. No-op for a connection whose turn it is
 * not (POST /reload). */
static void file_job_release(tf_admin_t *a, admin_conn_t *c, bool start_next)
{
    if (a->file_job != c)
        return;
    a->file_job = NULL;
    if (start_next)
        file_job_next(a);
}

/* Takes a queued connection out of the queue. */
void tf_admin__queue_remove(admin_conn_t *c)
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
        tf_admin__respond_text(c, 409, NULL, text);
    } else if (j->status == 0) {
        c->written = true;
        c->extra = j->extra;
        j->extra = NULL;
        tf_admin__start_reload(c, false, j->put ? "PUT /certs" : "DELETE /certs");
    } else if (j->json != NULL) {
        tf_admin__respond_json(c, j->status, j->json);
        j->json = NULL;
    } else {
        tf_admin__respond_text(c, j->status, NULL, j->text);
    }
    json_decref(j->json);
    j->json = NULL;
    json_decref(j->extra);
    j->extra = NULL;
    tf_conf_unref(c->fj.conf);
    c->fj.conf = NULL;
    if (!c->answered && !c->waiting)
        tf_admin__conn_close(c);
    /* A reload under way ends the turn in on_reloaded(). */
    if (!c->waiting)
        file_job_release(a, c, true);
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
        .put = tf_admin__method_is(c, "PUT"),
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
        tf_admin__respond_text(c, 500, NULL, "cannot start the file work; see the log\n");
    }
}

void tf_admin__conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void tf_admin__conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* Runs the file work now, or queues it behind the one running. A queued
 * connection keeps reading (into a sink) only to see its client leave,
 * and waits at most TF_ADMIN_TIMEOUT_MS for its turn (then 503). */
void tf_admin__file_job_enqueue(admin_conn_t *c)
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
    uv_timer_start(&c->timer, tf_admin__conn_on_timeout, TF_ADMIN_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, tf_admin__conn_alloc, tf_admin__conn_on_read) != 0)
        tf_admin__conn_close(c);
}
