/* tlsfront run [-c FILE] (SPEC §2): load the configuration and the
 * certificate store, bind every listener (and the admin API), start the
 * workers, then serve signals, reloads and the admin API on the main
 * thread's own loop.
 *
 * SIGTERM, SIGINT: drain (stop accepting, let connections finish up to
 * timeouts.drain, close the rest) and exit 0; a second one while draining is
 * logged and changes nothing (the drain deadline already bounds the wait;
 * SIGKILL remains for an operator in a hurry). SIGHUP: reload the
 * configuration and the certificates (proxy/reload.c). SIGUSR1: reopen log
 * files. */
#include "proxy/cli/cli.h"
#include "proxy/cli/notify.h"

#include "acme/acme.h"
#include "certstore/store.h"
#include "common/err.h"
#include "conf/conf.h"
#include "proxy/obs/obs.h"
#include "proxy/ops/ops.h"
#include "proxy/net/net.h"
#include "tls/tls.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Memory ticket keys: a new key every hour, each valid for two. */
#define TICKET_ROTATE_S 3600u
#define TICKET_TIMER_MS 60000u
/* How often the main thread looks whether draining workers are done. */
#define DRAIN_POLL_MS 50u
/* The ACME client's bounds: per HTTP request, and for a wait on the server. */
#define ACME_TIMEOUT_MS 30000u
#define ACME_POLL_MAX_S 120u

#define NSIGNALS 5

typedef struct {
    tf_shared_t shared;
    tf_conf_t *conf; /* as loaded at start; the reloader holds the current one */
    const char *conf_path;
    tf_reload_t *reload;
    tf_admin_t *admin;
    tf_metrics_worker_t **metrics;
    tf_worker_t **workers;
    unsigned created, started;
    uv_loop_t loop;
    uv_signal_t sigs[NSIGNALS];
    uv_timer_t tickets_timer;
    uv_timer_t drain_poll;
    int *fds;
    int *http_fds;
    bool loop_ready;
    bool stopping;
    /* ACME (SPEC §13), when acme.directory is set: the manager's thread
     * asks the main loop for a certificate reload through acme_async, open
     * while acme_async_open (under acme_lock: the thread may outlive the
     * loop's handles during shutdown). */
    tf_acme_manager_t *acme;
    tf_acme_client_t *acme_client;
    uv_async_t acme_async;
    pthread_mutex_t acme_lock;
    bool acme_async_open;
    unsigned char eab[TF_ACME_EAB_KEY_MAX];
    size_t eab_len;
} run_t;

static const int signums[NSIGNALS] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

static unsigned run_worker_count(const tf_conf_t *conf)
{
    unsigned n = tf_conf_workers(conf);
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (unsigned)cores : 1;
    }
    return n;
}

/* Binds one socket per worker (SO_REUSEPORT) for each address in `list`
 * into a new array; -1 marks those not bound. */
static int bind_all(const tf_conf_addr_list_t *list, unsigned nworkers, int **out)
{
    size_t n = (size_t)nworkers * list->count;
    int *fds = malloc((n ? n : 1) * sizeof *fds);
    if (fds == NULL)
        return TF_ENOMEM;
    for (size_t i = 0; i < n; i++)
        fds[i] = -1;
    *out = fds;
    char err[512];
    for (size_t i = 0; i < n; i++) {
        /* Port 0: the first worker's socket gets a port from the kernel,
         * the others bind that one (SO_REUSEPORT). */
        int port = 0;
        if (list->items[i % list->count].port == 0 && i >= list->count)
            port = tf_listener_name(fds[i % list->count], err, sizeof err);
        if (port < 0)
            return port;
        fds[i] = tf_listener_bind(&list->items[i % list->count], (uint16_t)port, err, sizeof err);
        if (fds[i] < 0) {
            TF_LOG(TF_LOG_ERROR, "%s", err);
            return fds[i];
        }
    }
    return 0;
}

/* SO_REUSEPORT shares an address with any process of the same user: a
 * second instance started by mistake would take half the clients. So every
 * address is checked before this process binds any (its own sockets would
 * look like another's). */
static int probe_all(const tf_conf_addr_list_t *list)
{
    char err[512];
    for (size_t i = 0; i < list->count; i++) {
        int rc = tf_listener_probe(&list->items[i], err, sizeof err);
        if (rc != 0) {
            TF_LOG(TF_LOG_ERROR, "%s", err);
            return rc;
        }
    }
    return 0;
}

/* One socket per listener and worker (SO_REUSEPORT), https and http, all
 * bound before any worker starts so that every error reaches the exit
 * status. */
static int run_bind(run_t *r)
{
    tf_shared_t *s = &r->shared;
    int rc = probe_all(tf_conf_listen_https(r->conf));
    if (rc == 0)
        rc = probe_all(tf_conf_listen_http(r->conf));
    if (rc != 0)
        return rc;
    rc = bind_all(tf_conf_listen_https(r->conf), s->nworkers, &r->fds);
    s->fds = r->fds;
    if (rc == 0)
        rc = bind_all(tf_conf_listen_http(r->conf), s->nworkers, &r->http_fds);
    s->http_fds = r->http_fds;
    return rc;
}

/* ---- announcing the listeners ----------------------------------------- */

/* One listener: an info line with the address it got, and its line in the
 * ready file (if any). */
static void run_announce_one(FILE *ready, const char *kind, const char *name, const char *what)
{
    TF_LOG(TF_LOG_INFO, "listening on %s %s%s", kind, name, what);
    if (ready != NULL)
        fprintf(ready, "%s %s\n", kind, name);
}

static int run_announce_fds(FILE *ready, const char *kind, const int *fds, size_t n,
                            const char *what)
{
    char name[64];
    for (size_t i = 0; i < n; i++) {
        /* Worker 0's sockets: the other workers' have the same addresses. */
        int rc = tf_listener_name(fds[i], name, sizeof name);
        if (rc < 0)
            return rc;
        run_announce_one(ready, kind, name, what);
    }
    return 0;
}

static int run_announce_all(const run_t *r, FILE *ready)
{
    const tf_shared_t *s = &r->shared;
    char what[96], name[64];
    snprintf(what, sizeof what, " (%u workers)", s->nworkers);
    int rc = run_announce_fds(ready, "https", r->fds, s->nlisten, what);
    snprintf(what, sizeof what, ": plain HTTP, redirects to https%s",
             tf_conf_acme_webroot(r->conf) != NULL ? " and ACME http-01 challenges" : "");
    if (rc == 0)
        rc = run_announce_fds(ready, "http", r->http_fds, s->nhttp, what);
    if (rc == 0 && r->admin != NULL && (rc = tf_admin_name(r->admin, name, sizeof name)) > 0)
        run_announce_one(ready, "admin", name, ": admin API and metrics");
    return rc < 0 ? rc : 0;
}

/* Every listener is bound (the admin API's too): log the addresses they got
 * and, when TLSFRONT_READY_FILE names a file, write them there, into a
 * temporary file renamed over it so that a reader sees all or nothing. This
 * runs before privileges are dropped (the file may be where only the
 * starting user can write); connections from then on wait in the listen
 * backlog until the workers take them. */
static int run_announce(const run_t *r)
{
    const char *path = getenv("TLSFRONT_READY_FILE");
    if (path == NULL || *path == '\0')
        return run_announce_all(r, NULL);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = f != NULL ? run_announce_all(r, f) : -errno;
    if (f != NULL && fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        TF_LOG(TF_LOG_ERROR, "TLSFRONT_READY_FILE: cannot write %s: %s; check its directory", path,
               tf_strerror(rc));
        if (f != NULL)
            unlink(tmp);
    }
    return rc;
}

static void close_fds(int **fds, size_t n)
{
    for (size_t i = 0; *fds != NULL && i < n; i++) {
        if ((*fds)[i] >= 0)
            close((*fds)[i]);
    }
    free(*fds);
    *fds = NULL;
}

static void run_close_fds(run_t *r)
{
    close_fds(&r->fds, (size_t)r->shared.nworkers * r->shared.nlisten);
    close_fds(&r->http_fds, (size_t)r->shared.nworkers * r->shared.nhttp);
}

/* Every worker is created before any starts, so that the list the workers
 * use to wake each other (shared.workers) is complete and never changes. */
static int run_start_workers(run_t *r)
{
    unsigned n = r->shared.nworkers;
    r->workers = calloc(n, sizeof *r->workers);
    if (r->workers == NULL)
        return TF_ENOMEM;
    char err[1024];
    for (unsigned i = 0; i < n; i++) {
        int rc =
            tf_worker_new(&r->shared, i, tf_reload_conf(r->reload), tf_reload_snapshot(r->reload),
                          r->metrics[i], &r->workers[i], err, sizeof err);
        if (rc != 0) {
            TF_LOG(TF_LOG_ERROR, "worker %u: %s", i, err);
            return rc;
        }
        r->created++;
    }
    r->shared.workers = r->workers;
    for (unsigned i = 0; i < n; i++) {
        int rc = tf_worker_start(r->workers[i]);
        if (rc != 0) {
            TF_LOG(TF_LOG_ERROR, "worker %u: cannot start a worker thread: %s", i, uv_strerror(rc));
            return rc;
        }
        r->started++;
    }
    return 0;
}

/* `user:`: switch to that user once the sockets are bound and the keys read,
 * before any connection is accepted. */
static int run_drop_privileges(const char *user)
{
    if (user == NULL)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        TF_LOG(TF_LOG_ERROR, "user '%s' does not exist; create it or remove 'user:'", user);
        return TF_EINVAL;
    }
    if (geteuid() == pw->pw_uid)
        return 0;
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        TF_LOG(TF_LOG_ERROR,
               "cannot switch to user '%s': %s; start tlsfront as root or remove "
               "'user:'",
               user, strerror(errno));
        return TF_EINVAL;
    }
    TF_LOG(TF_LOG_INFO, "running as user '%s'", user);
    return 0;
}

/* ---- ACME (SPEC §13) ---------------------------------------------------- */

/* The manager's thread: what the certificate store in service says of
 * NAME. A reference to the snapshot is held for the lookup. */
static void run_acme_coverage(void *arg, const char *name, tf_acme_coverage_t *out)
{
    run_t *r = arg;
    tf_cs_snapshot_t *snap = tf_reload_snapshot_ref(r->reload);
    tf_cs_selection_t how = TF_CS_SEL_NO_SNI;
    const tf_cs_bundle_t *b =
        snap != NULL ? tf_cs_snapshot_select(snap, name, strlen(name), &how) : NULL;
    /* The default certificate counts when its own names cover NAME. */
    if (b != NULL &&
        (how == TF_CS_SEL_EXACT || how == TF_CS_SEL_WILDCARD || tf_cs_bundle_covers(b, name))) {
        time_t now = time(NULL);
        out->covered = tf_cs_bundle_not_before(b) <= now && now < tf_cs_bundle_not_after(b);
        out->not_after = tf_cs_bundle_not_after(b);
        snprintf(out->file, sizeof out->file, "%s", tf_cs_bundle_name(b));
    }
    tf_cs_snapshot_unref(snap);
}

/* The manager's thread: HOST.pem was written; the main loop reloads. */
static void run_acme_written(void *arg, const char *name, const char *path)
{
    run_t *r = arg;
    (void)name, (void)path;
    pthread_mutex_lock(&r->acme_lock);
    if (r->acme_async_open)
        uv_async_send(&r->acme_async);
    pthread_mutex_unlock(&r->acme_lock);
}

static void run_acme_note(void *arg, tf_acme_note_level_t level, const char *text)
{
    (void)arg;
    tf_log_level_t l = level == TF_ACME_NOTE_ERROR  ? TF_LOG_ERROR
                       : level == TF_ACME_NOTE_WARN ? TF_LOG_WARN
                                                    : TF_LOG_INFO;
    TF_LOG(l, "%s", text);
}

static void run_on_acme_async(uv_async_t *h)
{
    run_t *r = h->data;
    if (!r->stopping)
        tf_reload_request(r->reload, false, "ACME certificate written", NULL, NULL);
}

static void run_acme_close_async(run_t *r)
{
    pthread_mutex_lock(&r->acme_lock);
    bool open = r->acme_async_open;
    r->acme_async_open = false;
    pthread_mutex_unlock(&r->acme_lock);
    if (open && !uv_is_closing((uv_handle_t *)&r->acme_async))
        uv_close((uv_handle_t *)&r->acme_async, NULL);
}

/* Before privileges are dropped: the EAB key (its file may be readable by
 * the starting user only) and the manager, stopped (GET /acme lists its
 * names from now on). */
static int run_acme_new(run_t *r)
{
    const tf_conf_acme_t *a = tf_conf_acme(r->conf);
    if (a->directory == NULL)
        return 0;
    char err[1024], where[TF_WHERE_MAX];
    if (a->eab.hmac_key_file != NULL) {
        int rc = tf_acme_eab_key_read(a->eab.hmac_key_file, r->eab, &r->eab_len, err, sizeof err);
        if (rc != 0) {
            TF_LOG(TF_LOG_ERROR, "%s%s", tf_where(r->conf, "acme.eab.hmac_key_file", 0, where),
                   err);
            return rc;
        }
    }
    int rc = uv_async_init(&r->loop, &r->acme_async, run_on_acme_async);
    if (rc != 0)
        return rc;
    r->acme_async.data = r;
    r->acme_async_open = true;
    tf_acme_manager_conf_t mc = {
        .conf = r->conf,
        .ops = &tf_acme_client_ops_default,
        .coverage = run_acme_coverage,
        .written = run_acme_written,
        .note = run_acme_note,
        .arg = r,
    };
    return tf_acme_manager_new(&mc, &r->acme);
}

/* Once privileges are dropped (the client creates the account key in
 * acme.storage, which must belong to the user tlsfront runs as): the client
 * and the manager's thread. A failure here is logged and leaves serving
 * alone: no certificate is ordered until a restart. */
static void run_acme_start(run_t *r)
{
    if (r->acme == NULL)
        return;
    const tf_conf_acme_t *a = tf_conf_acme(r->conf);
    tf_acme_client_conf_t cc = {
        .directory = a->directory,
        .ca_file = a->ca_file,
        .email = a->email,
        .storage = a->storage,
        .key_type = a->key_type == TF_CONF_KEY_RSA ? TF_ACME_KEY_RSA : TF_ACME_KEY_EC,
        .challenges = a->challenges,
        .eab_kid = a->eab.kid,
        .eab_mac = r->eab_len > 0 ? r->eab : NULL,
        .eab_mac_len = r->eab_len,
        .answers = r->shared.challenges,
        .timeout_ms = ACME_TIMEOUT_MS,
        .poll_max_s = ACME_POLL_MAX_S,
    };
    tf_acme_problem_t prob = {0};
    int rc = tf_acme_client_new(&cc, &r->acme_client, &prob);
    /* The client keeps its own copy of the key. */
    explicit_bzero(r->eab, sizeof r->eab);
    if (rc == 0 && (rc = tf_acme_manager_start(r->acme, r->acme_client)) != 0)
        snprintf(prob.detail, sizeof prob.detail, "cannot start its thread: %s", tf_strerror(rc));
    if (rc != 0)
        TF_LOG(TF_LOG_ERROR,
               "acme: the ACME client cannot start: %s; no certificate is ordered or renewed "
               "until tlsfront restarts (serving goes on)",
               prob.detail[0] != '\0' ? prob.detail : tf_strerror(rc));
    else
        TF_LOG(TF_LOG_INFO, "acme: client started for %s, state in %s", a->directory, a->storage);
    tf_acme_problem_dispose(&prob);
}

/* SIGTERM: an order in flight is abandoned (resumed at the next start). */
static void run_acme_cancel(run_t *r)
{
    if (r->acme != NULL)
        tf_acme_manager_cancel(r->acme);
    if (r->acme_client != NULL)
        tf_acme_client_cancel(r->acme_client);
}

/* After the loop: the thread first (it reads the certificate store and
 * publishes challenge answers), then the client. */
static void run_acme_free(run_t *r)
{
    if (r->acme != NULL)
        tf_acme_manager_stop(r->acme);
    tf_acme_client_free(r->acme_client);
    tf_acme_manager_free(r->acme);
    r->acme = NULL;
    r->acme_client = NULL;
    explicit_bzero(r->eab, sizeof r->eab);
}

/* ---- signals ---------------------------------------------------------- */

static void run_close_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Draining: the main loop keeps its signal handlers (a second SIGTERM must
 * not meet the default action) until every worker's loop has ended. */
static void run_on_drain_poll(uv_timer_t *t)
{
    run_t *r = t->data;
    if (atomic_load(&r->shared.finished) < r->started)
        return;
    /* Only this file's handles: the admin API and the reloader close their
     * own (an admin request may still wait for a reload's answer). */
    for (size_t i = 0; i < NSIGNALS; i++)
        run_close_handle((uv_handle_t *)&r->sigs[i], NULL);
    run_close_handle((uv_handle_t *)&r->tickets_timer, NULL);
    run_close_handle((uv_handle_t *)&r->drain_poll, NULL);
    run_acme_close_async(r);
}

static void run_stop(run_t *r, const char *why)
{
    if (r->stopping) {
        TF_LOG(TF_LOG_INFO, "%s: already draining (up to timeouts.drain, then the rest is closed)",
               why);
        return;
    }
    r->stopping = true;
    tf_notify_stopping();
    TF_LOG(TF_LOG_INFO, "%s: stopping: no new connections; draining for up to %llu ms", why,
           (unsigned long long)tf_conf_timeouts(tf_reload_conf(r->reload))->drain_ms);
    tf_reload_close(r->reload);
    if (r->admin != NULL)
        tf_admin_close(r->admin);
    r->admin = NULL;
    for (unsigned i = 0; i < r->started; i++)
        tf_worker_stop(r->workers[i]);
    run_acme_cancel(r);
    uv_timer_stop(&r->tickets_timer);
    uv_timer_start(&r->drain_poll, run_on_drain_poll, 0, DRAIN_POLL_MS);
}

/* Where the keys file in use is named: in the configuration in service if
 * it still names the same file (it was likely edited since start-up), else
 * in the one loaded at start (a new path needs a restart). */
static const char *run_tickets_where(const run_t *r, char *buf)
{
    const tf_conf_t *now = tf_reload_conf(r->reload);
    const char *a = tf_conf_tls(now)->ticket_keys_file, *b = tf_conf_tls(r->conf)->ticket_keys_file;
    bool same = a != NULL && b != NULL && strcmp(a, b) == 0;
    return tf_where(same ? now : r->conf, "tls.ticket_keys_file", 0, buf);
}

static void run_reload_tickets(run_t *r)
{
    char err[512], where[TF_WHERE_MAX];
    if (r->shared.tickets == NULL)
        return;
    int rc = tf_tls_tickets_reload(r->shared.tickets, err, sizeof err);
    if (rc != 0)
        TF_LOG(TF_LOG_WARN, "%ssession tickets: %s; the keys in use stay",
               tf_where_is_errno(rc) ? run_tickets_where(r, where) : "", err);
}

static void run_on_signal(uv_signal_t *h, int signum)
{
    run_t *r = h->data;
    switch (signum) {
    case SIGHUP:
        if (r->stopping) {
            TF_LOG(TF_LOG_INFO, "SIGHUP: draining: no reload");
            return;
        }
        run_reload_tickets(r);
        tf_reload_request(r->reload, true, "SIGHUP", NULL, NULL);
        return;
    case SIGUSR1: {
        /* logrotate moved the access log: continue in a new file. Errors
         * and events go to stderr, which the service manager owns. */
        int rc = tf_access_reopen(r->shared.access);
        if (rc != 0)
            TF_LOG(TF_LOG_WARN,
                   "SIGUSR1: cannot reopen the access log: %s; still writing to the old file",
                   tf_strerror(rc));
        else
            TF_LOG(TF_LOG_INFO, "SIGUSR1: access log reopened");
        return;
    }
    case SIGUSR2:
        TF_LOG(TF_LOG_INFO, "SIGUSR2: ignored");
        return;
    default:
        run_stop(r, signum == SIGTERM ? "SIGTERM" : "SIGINT");
    }
}

static void run_on_tickets_timer(uv_timer_t *t)
{
    run_t *r = t->data;
    if (tf_tls_tickets_rotate(r->shared.tickets, time(NULL)) != 0)
        TF_LOG(TF_LOG_WARN, "session tickets: cannot make a new key; the current one stays");
}

static int run_signals(run_t *r)
{
    for (size_t i = 0; i < NSIGNALS; i++) {
        uv_signal_init(&r->loop, &r->sigs[i]);
        r->sigs[i].data = r;
        int rc = uv_signal_start(&r->sigs[i], run_on_signal, signums[i]);
        if (rc != 0)
            return rc;
    }
    uv_timer_init(&r->loop, &r->tickets_timer);
    uv_timer_init(&r->loop, &r->drain_poll);
    r->tickets_timer.data = r->drain_poll.data = r;
    if (r->shared.tickets != NULL)
        uv_timer_start(&r->tickets_timer, run_on_tickets_timer, TICKET_TIMER_MS, TICKET_TIMER_MS);
    return 0;
}

/* ---- the command ------------------------------------------------------ */

static void run_on_conf(void *arg, const tf_conf_t *conf)
{
    run_t *r = arg;
    if (r->admin != NULL)
        tf_admin_reload_token(r->admin, conf);
    if (r->acme != NULL)
        tf_acme_manager_update(r->acme, tf_reload_conf(r->reload));
}

static int run_admin(run_t *r)
{
    if (!tf_conf_admin(r->conf)->enabled)
        return 0;
    tf_admin_opts_t o = {
        .loop = &r->loop,
        .conf = r->conf,
        .reload = r->reload,
        .metrics = r->metrics,
        .nworkers = r->shared.nworkers,
        .acme = r->acme,
    };
    return tf_admin_new(&o, &r->admin);
}

static int run_setup(run_t *r)
{
    tf_shared_t *s = &r->shared;
    tf_log_set_level((tf_log_level_t)tf_conf_log(r->conf)->level);
    int rc = uv_loop_init(&r->loop);
    if (rc != 0)
        return rc;
    r->loop_ready = true;
    tf_reload_opts_t ro = {
        .loop = &r->loop, .conf_path = r->conf_path, .conf = r->conf, .shared = s};
    rc = tf_reload_new(&ro, &r->reload);
    if (rc != 0)
        return rc;
    char err[1024], where[TF_WHERE_MAX];
    const tf_conf_tls_t *tls = tf_conf_tls(r->conf);
    rc = tf_tls_tickets_new(tls->ticket_keys_file, TICKET_ROTATE_S, &s->tickets, err, sizeof err);
    if (rc != 0) {
        /* A keys file that cannot be opened is the configuration's error; a
         * bad line in it names the file and line itself. */
        TF_LOG(TF_LOG_ERROR, "%s%s",
               tf_where_is_errno(rc) ? tf_where(r->conf, "tls.ticket_keys_file", 0, where) : "",
               err);
        return rc;
    }
    s->nworkers = run_worker_count(r->conf);
    s->nlisten = tf_conf_listen_https(r->conf)->count;
    s->nhttp = tf_conf_listen_http(r->conf)->count;
    s->max_connections = tf_conf_limits(r->conf)->max_connections;
    rc = tf_limits_new(&s->limits);
    if (rc != 0)
        return rc;
    /* The ACME client's challenge answers, read by every worker (http-01 on
     * listen.http, tls-alpn-01 on the https listeners). Empty until the
     * client puts an answer: an empty table costs a lookup only for a
     * challenge request or an acme-tls/1 ClientHello. */
    rc = tf_acme_challenges_new(&s->challenges);
    if (rc != 0)
        return rc;
    /* Opened before privileges are dropped, like the listening sockets. */
    rc = tf_access_open(tf_conf_log(r->conf), &s->access, err, sizeof err);
    if (rc != 0) {
        TF_LOG(TF_LOG_ERROR, "%s%s",
               tf_where_is_errno(rc) ? tf_where(r->conf, "log.access", 0, where) : "", err);
        return rc;
    }
    rc = run_bind(r);
    if (rc == 0)
        rc = run_signals(r);
    /* Backend state and its health checks, once per process, before the
     * workers' tables reference it. */
    if (rc == 0 && (rc = tf_upstream_cookie_key_from_file(tf_conf_tls(r->conf)->default_cert)) != 0)
        TF_LOG(TF_LOG_ERROR, "%s: cannot read it for the sticky cookie key: %s",
               tf_conf_tls(r->conf)->default_cert, tf_strerror(rc));
    if (rc == 0)
        rc = tf_backends_new(&s->backends);
    if (rc == 0 && (rc = tf_health_new(s->backends, &s->health)) == 0)
        tf_health_configure(s->health, r->conf);
    if (rc == 0 && (r->metrics = calloc(s->nworkers, sizeof *r->metrics)) == NULL)
        rc = TF_ENOMEM;
    for (unsigned i = 0; rc == 0 && i < s->nworkers; i++)
        r->metrics[i] = tf_metrics_worker_new();
    if (rc == 0)
        rc = run_acme_new(r);
    if (rc == 0)
        rc = run_admin(r);
    if (rc == 0)
        rc = run_announce(r);
    if (rc == 0)
        rc = run_drop_privileges(tf_conf_user(r->conf));
    if (rc == 0)
        rc = run_start_workers(r);
    if (rc == 0) {
        tf_reload_on_conf(r->reload, run_on_conf, r);
        tf_reload_start(r->reload, r->workers, s->nworkers);
        run_acme_start(r);
    }
    return rc;
}

static void run_teardown(run_t *r)
{
    /* Every thread first: a worker may still wake another while it drains. */
    run_acme_free(r);
    for (unsigned i = 0; i < r->started; i++)
        tf_worker_join(r->workers[i]);
    for (unsigned i = 0; i < r->created; i++) {
        if (i >= r->started)
            tf_worker_stop(r->workers[i]);
        tf_worker_free(r->workers[i]);
    }
    free(r->workers);
    tf_health_free(r->shared.health);
    for (unsigned i = 0; r->metrics != NULL && i < r->shared.nworkers; i++)
        tf_metrics_worker_free(r->metrics[i]);
    free(r->metrics);
    run_close_fds(r);
    if (r->loop_ready)
        uv_loop_close(&r->loop);
    tf_reload_free(r->reload);
    /* Last: the tables of the workers and of a reload referenced it. */
    tf_backends_free(r->shared.backends);
    tf_tls_tickets_unref(r->shared.tickets);
    tf_access_free(r->shared.access);
    tf_limits_free(r->shared.limits);
    tf_acme_challenges_free(r->shared.challenges);
    tf_conf_unref(r->conf);
}

int tf_cmd_run(int argc, char **argv)
{
    run_t r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.acme_lock, NULL);
    int rc = tf_cli_config_arg(argc, argv, &r.conf_path);
    if (rc != 0)
        return rc;
    if (tf_cli_load_conf(r.conf_path, &r.conf) != 0)
        return TF_EXIT_PROBLEMS;
    /* A client that goes away mid-write must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    /* glibc gives a worker's heap top back to the kernel past 128 KiB free
     * and takes it again at the next burst: with HTTP/2 streams coming and
     * going by the hundred, that was 12% of the proxy's CPU under h2load
     * (`perf record -g -p PID`: sysmalloc and madvise). Freed memory stays
     * for reuse instead, up to this much per arena. */
    mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
    rc = tf_tls_global_init();
    if (rc != 0) {
        TF_LOG(TF_LOG_ERROR, "cannot initialise the TLS library: %s", tf_strerror(rc));
        tf_conf_unref(r.conf);
        return TF_EXIT_PROBLEMS;
    }
    rc = run_setup(&r);
    if (rc == 0) {
        TF_LOG(TF_LOG_INFO, "tlsfront running (pid %ld)", (long)getpid());
        run_close_fds(&r); /* each worker holds its own duplicates now */
        tf_notify_watch_reloads(r.reload);
        tf_notify_ready(r.shared.nlisten, r.shared.nhttp, r.shared.nworkers);
        uv_run(&r.loop, UV_RUN_DEFAULT);
    } else {
        for (unsigned i = 0; i < r.started; i++)
            tf_worker_stop(r.workers[i]);
        run_acme_cancel(&r);
        run_acme_close_async(&r);
        if (r.reload != NULL)
            tf_reload_close(r.reload);
        if (r.admin != NULL)
            tf_admin_close(r.admin);
        if (r.loop_ready) {
            uv_walk(&r.loop, run_close_handle, NULL);
            uv_run(&r.loop, UV_RUN_DEFAULT);
        }
    }
    run_teardown(&r);
    pthread_mutex_destroy(&r.acme_lock);
    tf_tls_global_cleanup();
    if (rc == 0)
        TF_LOG(TF_LOG_INFO, "stopped");
    return rc == 0 ? TF_EXIT_OK : TF_EXIT_PROBLEMS;
}
