/* See reload.h. Who touches what: the loop thread owns tf_reload_t; the
 * thread-pool job reads r->store, r->conf and r->snap (never changed while a
 * job runs: only the job's completion, on the loop, replaces them) and writes
 * only its own job_t. */
#include "proxy/ops/reload.h"

#include "common/err.h"
#include "proxy/obs/obs.h"
#include "proxy/net/net.h"
#include "proxy/ops/watch.h"
#include "proxy/ops/where.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEBOUNCE_MS 100
/* A file written without pause for longer than this is reloaded anyway. */
#define DEBOUNCE_MAX_MS 2000
/* Catches what inotify misses (a source directory created later, network
 * file systems, some editors' rename dances); cheap: unchanged files are only
 * stat'ed. */
#define RESCAN_MS 10000
#define DAY_MS (24ull * 3600 * 1000)
#define EXPIRY_WARN_DAYS 30
#define CONF_ERRBUF 16384

typedef struct waiter {
    tf_reload_cb cb;
    void *arg;
    struct waiter *next;
    /* What the reload already running when the request came applied: that
     * one may have been the one to see the requester's change (a file
     * watch event can start it first), so the answer includes it. */
    size_t added, replaced, removed;
} waiter_t;

typedef struct {
    char *data;
    size_t len;
} text_t;

typedef struct {
    uv_work_t req;
    tf_reload_t *r;
    bool with_conf;
    bool quiet;          /* a periodic check: log only when something changed */
    bool unchanged;      /* certificates only, and no file changed: nothing to publish */
    size_t changes;      /* files added, replaced, removed or newly rejected */
    uint64_t started_ns; /* uv_hrtime() when queued */
    waiter_t *waiters;
    tf_conf_t *conf;        /* the new configuration, or NULL */
    tf_cs_store_t *store;   /* a new store (sources changed), or NULL */
    tf_cs_snapshot_t *snap; /* the new snapshot */
    tf_tls_ctx_t **tls;
    tf_upstream_t **ups;
    int rc;
    char error[1024];
    char *conf_err;
    text_t failures;
    text_t warnings;
    text_t restart;
    text_t notes; /* the new snapshot's errors about configured paths, located */
    tf_reload_result_t res;
} job_t;

struct tf_reload {
    uv_loop_t *loop;
    char *conf_path;
    tf_shared_t *shared;
    tf_worker_t *const *workers;
    unsigned nworkers;
    tf_conf_t *conf;
    /* The configuration the process started with: what runs for the
     * settings only a restart applies (listeners, workers, limits...). */
    tf_conf_t *boot;
    uint64_t conf_id;
    tf_cs_store_t *store;
    /* Replaced on the loop thread under snap_lock, which other threads take
     * to get a reference (tf_reload_snapshot_ref). */
    tf_cs_snapshot_t *snap;
    pthread_mutex_t snap_lock;
    job_t *running;
    bool pending, pending_conf, pending_quiet, closed;
    waiter_t *pending_waiters;
    tf_watch_t *watch; /* NULL once closed */
    uv_timer_t debounce, rescan, next_change, daily;
    uint64_t ok, partial, failed;
    uint64_t burst_start; /* loop time of the first event not yet acted on; 0: none */
    void (*on_conf)(void *arg, const tf_conf_t *conf);
    void *on_conf_arg;
    tf_reload_cycle_cb on_cycle;
    void *on_cycle_arg;
    bool cycling; /* on_cycle was told a configuration reload began */
};

static void job_start(tf_reload_t *r);

/* ---- text accumulation -------------------------------------------------- */

static void text_add(text_t *t, const char *line)
{
    size_t n = strlen(line);
    char *p = realloc(t->data, t->len + n + 2);
    if (p == NULL)
        return; /* the result is for information: a shorter list will do */
    memcpy(p + t->len, line, n);
    p[t->len + n] = '\n';
    p[t->len + n + 1] = '\0';
    t->data = p;
    t->len += n + 1;
}

/* Appends the lines of text (NULL: none) to t. */
static void text_add_lines(text_t *t, const char *text)
{
    char line[TF_WHERE_MAX + 1024];
    for (const char *p = text; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        if (n > 0)
            text_add(t, line);
        p += n + (p[n] == '\n');
    }
}

/* ---- the store ---------------------------------------------------------- */

static int store_new(const tf_conf_t *conf, tf_cs_store_t **out)
{
    const tf_conf_tls_t *tls = tf_conf_tls(conf);
    tf_cs_store_opts_t opts = {
        .sources = tls->certs.items,
        .nsources = tls->certs.count,
        .default_cert = tls->default_cert,
    };
    return tf_cs_store_new(&opts, out);
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_sources(const tf_conf_t *a, const tf_conf_t *b)
{
    const tf_conf_tls_t *x = tf_conf_tls(a), *y = tf_conf_tls(b);
    if (!same_str(x->default_cert, y->default_cert) || x->certs.count != y->certs.count)
        return false;
    for (size_t i = 0; i < x->certs.count; i++) {
        if (strcmp(x->certs.items[i], y->certs.items[i]) != 0)
            return false;
    }
    return true;
}

/* Notes about a source or the default certificate start with where the
 * configuration names it. */
static void log_notes(const tf_conf_t *conf, const tf_cs_snapshot_t *snap)
{
    char where[TF_WHERE_MAX];
    for (size_t i = 0; i < tf_cs_snapshot_note_count(snap); i++) {
        bool is_error = false;
        const char *note = tf_cs_snapshot_note_at(snap, i, &is_error);
        TF_LOG(is_error ? TF_LOG_WARN : TF_LOG_INFO, "%s%s", tf_where_note(conf, snap, i, where),
               note);
    }
}

/* Certificates in service within 30 days of expiry (or past it): at start
 * and daily, so that an operator's log says it before clients do. */
static void log_expiry(const tf_cs_snapshot_t *snap)
{
    time_t now = time(NULL);
    for (size_t i = 0; i < tf_cs_snapshot_entry_count(snap); i++) {
        const tf_cs_entry_t *e = tf_cs_snapshot_entry_at(snap, i);
        const tf_cs_bundle_t *b = tf_cs_entry_served(e);
        if (b == NULL)
            continue;
        long days = tf_cs_bundle_days_left(b, now);
        if (days > EXPIRY_WARN_DAYS)
            continue;
        const char *name = tf_cs_bundle_name_count(b) ? tf_cs_bundle_name_at(b, 0) : "-";
        if (days < 0)
            TF_LOG(TF_LOG_WARN, "%s: certificate for %s expired %ld days ago: renew it",
                   tf_cs_entry_path(e), name, -days);
        else
            TF_LOG(TF_LOG_WARN, "%s: certificate for %s expires in %ld days: renew it",
                   tf_cs_entry_path(e), name, days);
    }
}

/* ---- the job (thread pool) --------------------------------------------- */

static void failure_lines(job_t *j, const tf_cs_entry_t *e)
{
    const tf_cs_bundle_t *b = tf_cs_entry_failed(e);
    for (size_t i = 0; b != NULL && i < tf_cs_bundle_diag_count(b); i++) {
        const tf_cs_diag_t *d = tf_cs_bundle_diag_at(b, i);
        if (d->severity == TF_CS_FATAL)
            text_add(&j->failures, d->message);
    }
}

/* Warnings of a bundle going into service (missing intermediate, expiring,
 * weak key...): the operator who just dropped it in should hear of them. */
static void warning_lines(job_t *j, const tf_cs_entry_t *e)
{
    const tf_cs_bundle_t *b = tf_cs_entry_served(e);
    for (size_t i = 0; b != NULL && i < tf_cs_bundle_diag_count(b); i++) {
        const tf_cs_diag_t *d = tf_cs_bundle_diag_at(b, i);
        if (d->severity == TF_CS_WARNING)
            text_add(&j->warnings, d->message);
    }
}

static void diff_new(job_t *j, const tf_cs_entry_t *e)
{
    j->changes++;
    if (tf_cs_entry_failed(e) == NULL) {
        j->res.added++;
        warning_lines(j, e);
    }
}

static void diff_changed(job_t *j, const tf_cs_entry_t *old, const tf_cs_entry_t *e)
{
    if (old == e)
        return;
    if (tf_cs_entry_failed(e) != NULL) {
        /* The store keeps serving the last good version, if there was one;
         * job_standing() counts the file. */
        if (tf_cs_entry_failed(old) != tf_cs_entry_failed(e))
            j->changes++;
    } else if (tf_cs_entry_served(e) != tf_cs_entry_served(old)) {
        j->res.replaced++;
        j->changes++;
        warning_lines(j, e);
    }
}

/* Entries are sorted by path in both snapshots: one merge walk. */
static void job_diff(job_t *j, const tf_cs_snapshot_t *a, const tf_cs_snapshot_t *b)
{
    size_t na = tf_cs_snapshot_entry_count(a), nb = tf_cs_snapshot_entry_count(b);
    size_t i = 0, k = 0;
    while (i < na || k < nb) {
        const tf_cs_entry_t *ea = i < na ? tf_cs_snapshot_entry_at(a, i) : NULL;
        const tf_cs_entry_t *eb = k < nb ? tf_cs_snapshot_entry_at(b, k) : NULL;
        int cmp = ea == NULL   ? 1
                  : eb == NULL ? -1
                               : strcmp(tf_cs_entry_path(ea), tf_cs_entry_path(eb));
        if (cmp < 0) {
            j->res.removed++;
            j->changes++;
            i++;
        } else if (cmp > 0) {
            diff_new(j, eb);
            k++;
        } else {
            diff_changed(j, ea, eb);
            i++;
            k++;
        }
    }
}

/* Whether the snapshot's default certificate is one kept from an earlier
 * build while its file (outside the sources) cannot be loaded now. */
static bool default_kept_apart(const tf_cs_snapshot_t *snap)
{
    const tf_cs_entry_t *def = tf_cs_snapshot_default_entry(snap);
    for (size_t i = 0; def != NULL && i < tf_cs_snapshot_entry_count(snap); i++) {
        if (tf_cs_snapshot_entry_at(snap, i) == def)
            return false;
    }
    return def != NULL;
}

/* Every file not served from its current content, whether or not this
 * reload changed it: rejected now (its last good version, if any, serves),
 * or kept from an earlier build because its source cannot be read. A
 * reload says so for as long as it lasts, not only the first time. */
static void job_standing(job_t *j)
{
    const tf_cs_snapshot_t *snap = j->snap;
    for (size_t i = 0; i < tf_cs_snapshot_entry_count(snap); i++) {
        const tf_cs_entry_t *e = tf_cs_snapshot_entry_at(snap, i);
        if (tf_cs_entry_failed(e) != NULL) {
            j->res.failed++;
            failure_lines(j, e);
        } else if (tf_cs_snapshot_entry_unread(snap, i) != NULL) {
            j->res.failed++; /* its source's note says why (job_notes) */
        }
    }
    j->res.failed += default_kept_apart(snap);
}

static int job_load_conf(job_t *j)
{
    char *err = calloc(1, CONF_ERRBUF);
    if (err == NULL)
        return TF_ENOMEM;
    int rc = tf_conf_load_file(j->r->conf_path, &j->conf, err, CONF_ERRBUF);
    if (rc != 0) {
        j->conf = NULL;
        j->conf_err = err;
        return rc;
    }
    free(err);
    /* Said at every reload, as at start-up: the risk stays while it does. */
    for (size_t i = 0; i < tf_conf_warning_count(j->conf); i++)
        text_add(&j->warnings, tf_conf_warning(j->conf, i));
    return 0;
}

/* A source that cannot be read, a default certificate that cannot be
 * loaded: said at start-up, and after a reload too, at the line of CONF
 * (the configuration the store's sources come from) that names the path. */
static void job_notes(job_t *j, const tf_conf_t *conf)
{
    char where[TF_WHERE_MAX], line[TF_WHERE_MAX + 1024];
    for (size_t i = 0; i < tf_cs_snapshot_note_count(j->snap); i++) {
        bool is_error = false;
        const char *note = tf_cs_snapshot_note_at(j->snap, i, &is_error);
        if (!is_error)
            continue;
        snprintf(line, sizeof line, "%s%s", tf_where_note(conf, j->snap, i, where), note);
        text_add(&j->notes, line);
    }
}

static int job_build_store(job_t *j, const tf_conf_t *conf)
{
    tf_reload_t *r = j->r;
    tf_cs_store_t *store = r->store;
    if (!same_sources(conf, r->conf)) {
        int rc = store_new(conf, &j->store);
        if (rc != 0) {
            snprintf(j->error, sizeof j->error, "cannot create the certificate store: %s",
                     tf_strerror(rc));
            return rc;
        }
        store = j->store;
    }
    int rc = tf_cs_store_build(store, 0, &j->snap);
    if (rc != 0) {
        snprintf(j->error, sizeof j->error, "certificate store: %s", tf_strerror(rc));
        return rc;
    }
    job_notes(j, conf);
    if (tf_cs_snapshot_default(j->snap) == NULL) {
        char where[TF_WHERE_MAX];
        snprintf(j->error, sizeof j->error,
                 "%s%s: no usable default certificate with the new sources; fix tls.default_cert",
                 tf_where(conf, "tls.default_cert", 0, where), tf_conf_tls(conf)->default_cert);
        return TF_ENOCERT;
    }
    return 0;
}

/* TLS contexts for the new snapshot; tenant tables only with a new
 * configuration (a certificate change keeps the workers' tables, their
 * down marks and health, and resolves no backend name again). */
static int job_build_workers(job_t *j, const tf_conf_t *conf)
{
    unsigned n = j->r->nworkers;
    bool tables = j->conf != NULL;
    j->tls = calloc(n ? n : 1, sizeof *j->tls);
    j->ups = calloc(n ? n : 1, sizeof *j->ups);
    if (j->tls == NULL || j->ups == NULL)
        return TF_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        int rc = tf_worker_build(j->r->shared, conf, j->snap, &j->tls[i],
                                 tables ? &j->ups[i] : NULL, j->error, sizeof j->error);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void job_work(uv_work_t *req)
{
    job_t *j = req->data;
    tf_reload_t *r = j->r;
    if (j->with_conf && job_load_conf(j) != 0 && j->conf_err == NULL) {
        j->rc = TF_ENOMEM;
        snprintf(j->error, sizeof j->error, "out of memory reading the configuration");
        return;
    }
    const tf_conf_t *conf = j->conf != NULL ? j->conf : r->conf;
    j->rc = job_build_store(j, conf);
    if (j->rc != 0)
        return;
    job_diff(j, r->snap, j->snap);
    job_standing(j);
    /* Every change to a file shows in the count (a re-parse after a date
     * passed included), so zero means the same selection: the periodic
     * check then costs the workers nothing. */
    if (!j->with_conf && j->store == NULL && j->changes == 0) {
        j->unchanged = true;
        return;
    }
    j->rc = job_build_workers(j, conf);
}

/* ---- completion (loop thread) ------------------------------------------ */

static void job_free(job_t *j)
{
    for (unsigned i = 0; i < j->r->nworkers; i++) {
        if (j->tls != NULL)
            tf_tls_ctx_free(j->tls[i]);
        if (j->ups != NULL)
            tf_upstream_free(j->ups[i]);
    }
    free(j->tls);
    free(j->ups);
    tf_conf_unref(j->conf);
    tf_cs_snapshot_unref(j->snap);
    tf_cs_store_free(j->store);
    free(j->conf_err);
    free(j->failures.data);
    free(j->warnings.data);
    free(j->restart.data);
    free(j->notes.data);
    while (j->waiters != NULL) {
        waiter_t *w = j->waiters;
        j->waiters = w->next;
        free(w);
    }
    free(j);
}

static void restart_check(job_t *j, bool same, const char *what)
{
    if (!same) {
        char line[256];
        snprintf(line, sizeof line, "%s changed: needs a restart; the running value stays", what);
        text_add(&j->restart, line);
    }
}

static bool same_addrs(const tf_conf_addr_list_t *a, const tf_conf_addr_list_t *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++) {
        if (strcmp(a->items[i].text, b->items[i].text) != 0)
            return false;
    }
    return true;
}

/* Settings fixed for the run: sockets, threads, privileges, limits. OLD is
 * the configuration they were applied from at start. */
static void job_restart_items(job_t *j, const tf_conf_t *old, const tf_conf_t *neu)
{
    const tf_conf_admin_t *a = tf_conf_admin(old), *b = tf_conf_admin(neu);
    restart_check(j, same_addrs(tf_conf_listen_https(old), tf_conf_listen_https(neu)),
                  "listen.https");
    restart_check(j, same_addrs(tf_conf_listen_http(old), tf_conf_listen_http(neu)), "listen.http");
    restart_check(
        j, a->enabled == b->enabled && (!a->enabled || strcmp(a->listen.text, b->listen.text) == 0),
        "admin.listen");
    restart_check(j, tf_conf_workers(old) == tf_conf_workers(neu), "workers");
    restart_check(j, same_str(tf_conf_user(old), tf_conf_user(neu)), "user");
    restart_check(j, tf_conf_limits(old)->max_connections == tf_conf_limits(neu)->max_connections,
                  "limits.max_connections");
    restart_check(j,
                  same_str(tf_conf_tls(old)->ticket_keys_file, tf_conf_tls(neu)->ticket_keys_file),
                  "tls.ticket_keys_file");
    /* The ACME client is made once, with its account in acme.storage. */
    const tf_conf_acme_t *ao = tf_conf_acme(old), *an = tf_conf_acme(neu);
    restart_check(j,
                  same_str(ao->directory, an->directory) && same_str(ao->email, an->email) &&
                      same_str(ao->ca_file, an->ca_file) && same_str(ao->storage, an->storage) &&
                      ao->key_type == an->key_type && ao->challenges == an->challenges &&
                      same_str(ao->eab.kid, an->eab.kid) &&
                      same_str(ao->eab.hmac_key_file, an->eab.hmac_key_file),
                  "acme (directory, email, ca_file, storage, key_type, challenges, eab)");
    /* The access log is opened once, before privileges are dropped. */
    const tf_conf_log_t *lo = tf_conf_log(old), *ln = tf_conf_log(neu);
    restart_check(j,
                  lo->access == ln->access && lo->format == ln->format &&
                      same_str(lo->access_path, ln->access_path),
                  "log.access, log.format");
}

static void log_lines(tf_log_level_t level, const char *prefix, const char *text)
{
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        int n = (int)(nl ? nl - p : (long)strlen(p));
        if (n > 0)
            TF_LOG(level, "%s%.*s", prefix, n, p);
        p = nl ? nl + 1 : p + n;
    }
}

static void job_log(const job_t *j, const char *why)
{
    const tf_reload_result_t *res = &j->res;
    tf_cs_snapshot_stats_t st = tf_cs_snapshot_stats(j->r->snap);
    /* A periodic check repeats standing failures every few seconds: only
     * when something changed. */
    if (j->quiet && j->changes == 0)
        return;
    TF_LOG(TF_LOG_INFO,
           "reload (%s): certificates: %zu added, %zu replaced, %zu removed, %zu failed; "
           "%zu files, %zu served; %.1f ms",
           why, res->added, res->replaced, res->removed, res->failed, st.files, st.served,
           (double)(uv_hrtime() - j->started_ns) / 1e6);
    log_lines(TF_LOG_WARN, "reload: ", j->warnings.data);
    for (const char *p = j->failures.data; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        int n = (int)(nl ? nl - p : (long)strlen(p));
        TF_LOG(TF_LOG_WARN,
               "reload: %.*s (rejected: a file that loaded before keeps serving its "
               "last good version)",
               n, p);
        p = nl ? nl + 1 : p + n;
    }
}

/* Puts SNAP (its reference taken) in service for the admin API, the
 * metrics and other threads. */
static void snap_replace(tf_reload_t *r, tf_cs_snapshot_t *snap)
{
    pthread_mutex_lock(&r->snap_lock);
    tf_cs_snapshot_t *old = r->snap;
    r->snap = snap;
    pthread_mutex_unlock(&r->snap_lock);
    tf_cs_snapshot_unref(old);
}

static void job_publish(job_t *j)
{
    tf_reload_t *r = j->r;
    if (j->conf != NULL) {
        /* Against what runs, not the file read last: a setting changed and
         * SIGHUP'ed is still reported on the next reload, and one put back
         * to its running value is not. */
        job_restart_items(j, r->boot, j->conf);
        log_lines(TF_LOG_WARN, "reload: ", j->restart.data);
        tf_log_set_level((tf_log_level_t)tf_conf_log(j->conf)->level);
        tf_conf_unref(r->conf);
        r->conf = j->conf;
        j->conf = NULL;
        r->conf_id++;
        j->res.conf_applied = true;
        /* Backends kept keep their health state: it is in the registry. */
        tf_health_configure(r->shared->health, r->conf);
        if (r->on_conf != NULL)
            r->on_conf(r->on_conf_arg, r->conf);
    }
    for (unsigned i = 0; i < r->nworkers; i++) {
        tf_worker_publish(r->workers[i], r->conf_id, r->conf, j->snap, j->tls[i], j->ups[i]);
        j->tls[i] = NULL;
        j->ups[i] = NULL;
    }
    snap_replace(r, j->snap);
    j->snap = NULL;
    if (j->store != NULL) {
        tf_cs_store_free(r->store);
        r->store = j->store;
        j->store = NULL;
    }
}

static void reload_watch(tf_reload_t *r);
static void reload_schedule_next_change(tf_reload_t *r);

static void job_finish_result(job_t *j)
{
    tf_reload_t *r = j->r;
    /* The result's failures name the sources that cannot be read too (a
     * missing certificate directory, whose files are kept): job_log() has
     * logged them apart, without the per-file suffix. */
    text_add_lines(&j->failures, j->notes.data);
    j->res.rc = j->rc;
    j->res.error = j->rc != 0 ? j->error : NULL;
    j->res.conf_requested = j->with_conf;
    j->res.conf_errors = j->conf_err;
    j->res.failures = j->failures.data;
    j->res.warnings = j->warnings.data;
    j->res.restart = j->restart.data;
    /* A periodic check that found nothing to do is not a reload. */
    if (j->quiet && j->unchanged && j->rc == 0)
        return;
    if (j->rc != 0)
        r->failed++;
    else if (j->conf_err != NULL || j->res.failed > 0)
        r->partial++;
    else
        r->ok++;
}

/* A configuration reload is outstanding until a rebuild that re-read the
 * configuration ends with no other such request waiting. Stopping ends it
 * silently: the supervisor has been told tlsfront stops. */
static void cycle_end(tf_reload_t *r, const job_t *j)
{
    if (!r->cycling || !j->with_conf || (r->pending && r->pending_conf && !r->closed))
        return;
    r->cycling = false;
    if (!r->closed)
        r->on_cycle(r->on_cycle_arg, &j->res);
}

static void job_after(uv_work_t *req, int status)
{
    job_t *j = req->data;
    tf_reload_t *r = j->r;
    r->running = NULL;
    const char *why = j->quiet       ? "periodic check"
                      : j->with_conf ? "configuration and certificates"
                                     : "certificates";
    if (j->conf_err != NULL) {
        log_lines(TF_LOG_ERROR, "", j->conf_err);
        TF_LOG(TF_LOG_ERROR, "%s: configuration has errors: the running one stays", r->conf_path);
    }
    /* A periodic check repeats them every few seconds: only on demand. */
    if (!j->quiet)
        log_lines(TF_LOG_WARN, "", j->notes.data);
    if (status != 0 && j->rc == 0) {
        j->rc = status;
        snprintf(j->error, sizeof j->error, "reload cancelled");
    }
    if (r->closed && j->rc == 0) {
        j->rc = TF_EINVAL;
        j->res.stopping = true;
        snprintf(j->error, sizeof j->error, "shutting down: not applied");
    }
    if (j->rc == 0 && j->unchanged) {
        /* Nothing to publish: the workers' snapshot holds the same entries.
         * The new one still replaces the one the admin API and the metrics
         * read, so that they say what this scan found (a source that can no
         * longer be read, whose files are kept). */
        snap_replace(r, j->snap);
        j->snap = NULL;
        job_log(j, why);
        /* The next-change timer is one-shot and capped at a day: a firing
         * that changed nothing arms it again for a date still ahead (one
         * already passed that changed nothing is not retried every second). */
        if (!r->closed && tf_cs_snapshot_next_change(r->snap) > time(NULL))
            reload_schedule_next_change(r);
    } else if (j->rc == 0) {
        job_publish(j);
        job_log(j, why);
        reload_schedule_next_change(r);
    } else if (j->rc != 0) {
        TF_LOG(TF_LOG_ERROR, "reload failed: %s; the running configuration and certificates stay",
               j->error);
    }
    reload_watch(r);
    job_finish_result(j);
    for (waiter_t *w = r->pending_waiters; w != NULL; w = w->next) {
        w->added += j->res.added;
        w->replaced += j->res.replaced;
        w->removed += j->res.removed;
    }
    for (waiter_t *w = j->waiters; w != NULL; w = w->next) {
        tf_reload_result_t res = j->res;
        res.added += w->added;
        res.replaced += w->replaced;
        res.removed += w->removed;
        w->cb(w->arg, &res);
    }
    cycle_end(r, j);
    job_free(j);
    if (r->pending && !r->closed)
        job_start(r);
}

static void job_start(tf_reload_t *r)
{
    job_t *j = calloc(1, sizeof *j);
    if (j == NULL) {
        TF_LOG(TF_LOG_ERROR, "reload: out of memory; will retry on the next trigger");
        return;
    }
    j->r = r;
    j->with_conf = r->pending_conf;
    j->quiet = r->pending_quiet;
    j->waiters = r->pending_waiters;
    j->req.data = j;
    j->started_ns = uv_hrtime();
    r->pending = r->pending_conf = false;
    r->pending_waiters = NULL;
    reload_watch(r);
    int rc = uv_queue_work(r->loop, &j->req, job_work, job_after);
    if (rc != 0) {
        j->rc = rc;
        snprintf(j->error, sizeof j->error, "cannot queue the rebuild: %s", uv_strerror(rc));
        job_after(&j->req, 0);
        return;
    }
    r->running = j;
}

static void request(tf_reload_t *r, bool with_conf, bool quiet, tf_reload_cb cb, void *arg)
{
    if (r->closed) {
        if (cb != NULL) {
            tf_reload_result_t res = {.rc = TF_EINVAL, .error = "shutting down", .stopping = true};
            cb(arg, &res);
        }
        return;
    }
    if (cb != NULL) {
        waiter_t *w = calloc(1, sizeof *w);
        if (w == NULL) {
            tf_reload_result_t res = {.rc = TF_ENOMEM, .error = "out of memory"};
            cb(arg, &res);
            return;
        }
        w->cb = cb;
        w->arg = arg;
        w->next = r->pending_waiters;
        r->pending_waiters = w;
    }
    if (with_conf && r->on_cycle != NULL && !r->cycling) {
        r->cycling = true;
        r->on_cycle(r->on_cycle_arg, NULL);
    }
    /* A quiet request joining a loud one stays loud, and vice versa. */
    r->pending_quiet = r->pending ? r->pending_quiet && quiet : quiet;
    r->pending = true;
    r->pending_conf = r->pending_conf || with_conf;
    if (r->running == NULL)
        job_start(r);
}

void tf_reload_request(tf_reload_t *r, bool with_conf, const char *why, tf_reload_cb cb, void *arg)
{
    TF_LOG(TF_LOG_INFO, "%s: reloading %s", why,
           with_conf ? "the configuration and certificates" : "certificates");
    request(r, with_conf, false, cb, arg);
}

/* ---- watching ---------------------------------------------------------- */

static void on_debounce(uv_timer_t *t)
{
    tf_reload_t *r = t->data;
    r->burst_start = 0;
    request(r, false, false, NULL, NULL);
}

static void on_fs_event(void *arg, const char *dir, const char *name)
{
    tf_reload_t *r = arg;
    (void)dir;
    (void)name;
    /* Each event restarts the quiet period, but a burst never postpones
     * the reload past DEBOUNCE_MAX_MS. */
    uint64_t now = uv_now(r->loop);
    if (r->burst_start == 0)
        r->burst_start = now;
    if (now - r->burst_start < DEBOUNCE_MAX_MS)
        uv_timer_start(&r->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static void on_rescan(uv_timer_t *t)
{
    request(t->data, false, true, NULL, NULL);
}

static void on_daily(uv_timer_t *t)
{
    tf_reload_t *r = t->data;
    log_expiry(r->snap);
}

static void on_next_change(uv_timer_t *t)
{
    tf_reload_t *r = t->data;
    request(r, false, false, NULL, NULL);
}

static void reload_schedule_next_change(tf_reload_t *r)
{
    time_t at = tf_cs_snapshot_next_change(r->snap);
    uv_timer_stop(&r->next_change);
    if (at == 0 || r->closed)
        return;
    time_t now = time(NULL);
    uint64_t ms = at > now ? (uint64_t)(at - now) * 1000 + 1000 : 1000;
    /* Re-planned at least daily, so a clock change cannot push it away. */
    uv_timer_start(&r->next_change, on_next_change, ms < DAY_MS ? ms : DAY_MS, 0);
}

/* (Re)arms the watches for the configuration in service (watch.h): at start,
 * before every rebuild (so that a change made while it scans shows in an
 * event) and after it (new sources, replaced directories). */
static void reload_watch(tf_reload_t *r)
{
    if (r->watch != NULL)
        tf_watch_sync(r->watch, r->conf);
}

/* ---- life --------------------------------------------------------------- */

int tf_reload_new(const tf_reload_opts_t *o, tf_reload_t **out)
{
    tf_reload_t *r = calloc(1, sizeof *r);
    if (r == NULL || (r->conf_path = strdup(o->conf_path)) == NULL) {
        free(r);
        return TF_ENOMEM;
    }
    pthread_mutex_init(&r->snap_lock, NULL);
    r->loop = o->loop;
    r->shared = o->shared;
    r->conf = tf_conf_ref(o->conf);
    r->boot = tf_conf_ref(o->conf);
    r->conf_id = 1;
    int rc = store_new(r->conf, &r->store);
    if (rc == 0)
        rc = tf_cs_store_build(r->store, 0, &r->snap);
    if (rc != 0) {
        TF_LOG(TF_LOG_ERROR, "cannot load the certificate store: %s", tf_strerror(rc));
        tf_reload_free(r);
        return rc;
    }
    log_notes(r->conf, r->snap);
    if (tf_cs_snapshot_default(r->snap) == NULL) {
        char where[TF_WHERE_MAX];
        TF_LOG(TF_LOG_ERROR,
               "%s%s: no usable default certificate: tlsfront needs one to answer clients "
               "without a matching name; fix the bundle (see 'tlsfront check') or point "
               "tls.default_cert at a valid one",
               tf_where(r->conf, "tls.default_cert", 0, where), tf_conf_tls(r->conf)->default_cert);
        tf_reload_free(r);
        return TF_ENOCERT;
    }
    tf_cs_snapshot_stats_t st = tf_cs_snapshot_stats(r->snap);
    TF_LOG(TF_LOG_INFO, "certificates: %zu files, %zu served, %zu rejected", st.files, st.served,
           st.failed);
    log_expiry(r->snap);
    uv_timer_t *timers[] = {&r->debounce, &r->rescan, &r->next_change, &r->daily};
    for (size_t i = 0; i < 4; i++) {
        uv_timer_init(r->loop, timers[i]);
        timers[i]->data = r;
    }
    r->watch = tf_watch_new(r->loop, on_fs_event, r);
    *out = r;
    return 0;
}

void tf_reload_start(tf_reload_t *r, tf_worker_t *const *workers, unsigned nworkers)
{
    r->workers = workers;
    r->nworkers = nworkers;
    reload_watch(r);
    uv_timer_start(&r->rescan, on_rescan, RESCAN_MS, RESCAN_MS);
    uv_timer_start(&r->daily, on_daily, DAY_MS, DAY_MS);
    reload_schedule_next_change(r);
}

tf_conf_t *tf_reload_conf(const tf_reload_t *r)
{
    return r->conf;
}

tf_cs_snapshot_t *tf_reload_snapshot(const tf_reload_t *r)
{
    return r->snap;
}

tf_cs_snapshot_t *tf_reload_snapshot_ref(tf_reload_t *r)
{
    pthread_mutex_lock(&r->snap_lock);
    tf_cs_snapshot_t *snap = tf_cs_snapshot_ref(r->snap);
    pthread_mutex_unlock(&r->snap_lock);
    return snap;
}

void tf_reload_on_conf(tf_reload_t *r, void (*cb)(void *arg, const tf_conf_t *conf), void *arg)
{
    r->on_conf = cb;
    r->on_conf_arg = arg;
}

void tf_reload_on_cycle(tf_reload_t *r, tf_reload_cycle_cb cb, void *arg)
{
    r->on_cycle = cb;
    r->on_cycle_arg = arg;
}

void tf_reload_metrics(const tf_reload_t *r, tf_metrics_main_t *m)
{
    m->reloads_ok = r->ok;
    m->reloads_partial = r->partial;
    m->reloads_failed = r->failed;
    m->snap = r->snap;
    m->conf = r->conf;
    m->conf_id = r->conf_id;
    if (r->shared->limits != NULL) {
        m->per_client_refused_connections = tf_limits_refused_connections(r->shared->limits);
        m->per_client_refused_requests = tf_limits_refused_requests(r->shared->limits);
    }
}

tf_backends_t *tf_reload_backends(const tf_reload_t *r)
{
    return r->shared->backends;
}

void tf_reload_close(tf_reload_t *r)
{
    if (r->closed)
        return;
    r->closed = true;
    tf_watch_free(r->watch);
    r->watch = NULL;
    uv_timer_t *timers[] = {&r->debounce, &r->rescan, &r->next_change, &r->daily};
    for (size_t i = 0; i < 4; i++)
        uv_close((uv_handle_t *)timers[i], NULL);
    /* Requests merged into a next rebuild that will not run. */
    tf_reload_result_t res = {.rc = TF_EINVAL, .error = "shutting down", .stopping = true};
    while (r->pending_waiters != NULL) {
        waiter_t *w = r->pending_waiters;
        r->pending_waiters = w->next;
        w->cb(w->arg, &res);
        free(w);
    }
    r->pending = false;
}

void tf_reload_free(tf_reload_t *r)
{
    if (r == NULL)
        return;
    tf_watch_free(r->watch);
    tf_cs_snapshot_unref(r->snap);
    tf_cs_store_free(r->store);
    tf_conf_unref(r->conf);
    tf_conf_unref(r->boot);
    free(r->conf_path);
    pthread_mutex_destroy(&r->snap_lock);
    free(r);
}
