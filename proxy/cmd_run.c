/* tlsfront run [-c FILE] (SPEC §2): load the configuration and the
 * certificate store, bind every listener, start the workers, then wait for
 * signals on the main thread's own loop.
 *
 * SIGTERM, SIGINT: drain (stop accepting, let connections finish up to
 * timeouts.drain, close the rest) and exit 0. SIGHUP: reload, which arrives
 * with issue 6. */
#include "proxy/cli.h"

#include "certstore/store.h"
#include "common/err.h"
#include "conf/conf.h"
#include "proxy/access.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/worker.h"
#include "tls/tls.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Memory ticket keys: a new key every hour, each valid for two. */
#define TICKET_ROTATE_S 3600u
#define TICKET_TIMER_MS 60000u

typedef struct {
    tf_server_t server;
    tf_worker_t **workers;
    unsigned started;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint, sighup, sigusr1;
    uv_timer_t tickets_timer;
    int *fds;
    int *http_fds;
    bool loop_ready;
    bool stopping;
} run_t;

/* Builds the certificate store once; refuses to start without a default. */
static int run_load_certs(const tf_conf_t *conf, tf_cs_snapshot_t **snap)
{
    const tf_conf_tls_t *tls = tf_conf_tls(conf);
    tf_cs_store_opts_t opts = {
        .sources = tls->certs.items,
        .nsources = tls->certs.count,
        .default_cert = tls->default_cert,
    };
    tf_cs_store_t *store = NULL;
    int rc = tf_cs_store_new(&opts, &store);
    if (rc == 0)
        rc = tf_cs_store_build(store, 0, snap);
    tf_cs_store_free(store);
    if (rc != 0) {
        TF_LOG(TF_LOG_ERROR, "cannot load the certificate store: %s", tf_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < tf_cs_snapshot_note_count(*snap); i++) {
        bool is_error = false;
        const char *note = tf_cs_snapshot_note_at(*snap, i, &is_error);
        TF_LOG(is_error ? TF_LOG_WARN : TF_LOG_INFO, "%s", note);
    }
    if (tf_cs_snapshot_default(*snap) == NULL) {
        TF_LOG(TF_LOG_ERROR,
               "%s: no usable default certificate: tlsfront needs one to answer clients "
               "without a matching name; fix the bundle (see 'tlsfront check') or point "
               "tls.default_cert at a valid one",
               tls->default_cert);
        tf_cs_snapshot_unref(*snap);
        *snap = NULL;
        return TF_ENOCERT;
    }
    tf_cs_snapshot_stats_t st = tf_cs_snapshot_stats(*snap);
    TF_LOG(TF_LOG_INFO, "certificates: %zu files, %zu served, %zu rejected", st.files, st.served,
           st.failed);
    return 0;
}

static unsigned run_worker_count(const tf_conf_t *conf)
{
    unsigned n = tf_conf_workers(conf);
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (unsigned)cores : 1;
    }
    return n;
}

/* Binds n sockets per worker (SO_REUSEPORT) for the addresses in `list`
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
        fds[i] = tf_listener_bind(&list->items[i % list->count], err, sizeof err);
        if (fds[i] < 0) {
            TF_LOG(TF_LOG_ERROR, "%s", err);
            return fds[i];
        }
    }
    return 0;
}

/* One socket per listener and worker (SO_REUSEPORT), https and http, all
 * bound before any worker starts so that every error reaches the exit
 * status. */
static int run_bind(run_t *r)
{
    tf_server_t *s = &r->server;
    const tf_conf_addr_list_t *https = tf_conf_listen_https(s->conf);
    const tf_conf_addr_list_t *http = tf_conf_listen_http(s->conf);
    int rc = bind_all(https, s->nworkers, &r->fds);
    s->fds = r->fds;
    if (rc == 0)
        rc = bind_all(http, s->nworkers, &r->http_fds);
    s->http_fds = r->http_fds;
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < s->nlisten; i++)
        TF_LOG(TF_LOG_INFO, "listening on %s (%u workers)", https->items[i].text, s->nworkers);
    for (size_t i = 0; i < s->nhttp; i++)
        TF_LOG(TF_LOG_INFO, "listening on %s for plain HTTP: redirects to https%s",
               http->items[i].text,
               tf_conf_acme_webroot(s->conf) != NULL ? " and ACME http-01 challenges" : "");
    return 0;
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
    close_fds(&r->fds, (size_t)r->server.nworkers * r->server.nlisten);
    close_fds(&r->http_fds, (size_t)r->server.nworkers * r->server.nhttp);
}

static int run_start_workers(run_t *r)
{
    r->workers = calloc(r->server.nworkers, sizeof *r->workers);
    if (r->workers == NULL)
        return TF_ENOMEM;
    char err[1024];
    for (unsigned i = 0; i < r->server.nworkers; i++) {
        int rc = tf_worker_new(&r->server, i, &r->workers[i], err, sizeof err);
        if (rc == 0) {
            rc = tf_worker_start(r->workers[i]);
            if (rc != 0)
                snprintf(err, sizeof err, "cannot start a worker thread: %s", uv_strerror(rc));
        }
        if (rc != 0) {
            TF_LOG(TF_LOG_ERROR, "worker %u: %s", i, err);
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

/* ---- signals ---------------------------------------------------------- */

static void run_stop(run_t *r, const char *why)
{
    if (r->stopping)
        return;
    r->stopping = true;
    TF_LOG(TF_LOG_INFO, "%s: stopping: no new connections; draining for up to %llu ms", why,
           (unsigned long long)tf_conf_timeouts(r->server.conf)->drain_ms);
    for (unsigned i = 0; i < r->started; i++)
        tf_worker_stop(r->workers[i]);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sighup, NULL);
    uv_close((uv_handle_t *)&r->sigusr1, NULL);
    uv_close((uv_handle_t *)&r->tickets_timer, NULL);
}

static void run_on_signal(uv_signal_t *h, int signum)
{
    run_t *r = h->data;
    if (signum == SIGHUP) {
        TF_LOG(TF_LOG_WARN, "SIGHUP: reload not implemented yet (issue 6)");
        return;
    }
    if (signum == SIGUSR1) {
        /* logrotate moved the access log: continue in a new file. */
        int rc = tf_access_reopen(r->server.access);
        if (rc != 0)
            TF_LOG(TF_LOG_WARN, "SIGUSR1: cannot reopen the access log: %s; still writing to "
                   "the old file", tf_strerror(rc));
        else
            TF_LOG(TF_LOG_INFO, "SIGUSR1: access log reopened");
        return;
    }
    run_stop(r, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void run_on_tickets_timer(uv_timer_t *t)
{
    run_t *r = t->data;
    if (tf_tls_tickets_rotate(r->server.tickets, time(NULL)) != 0)
        TF_LOG(TF_LOG_WARN, "session tickets: cannot make a new key; the current one stays");
}

static int run_signals(run_t *r)
{
    int rc = uv_loop_init(&r->loop);
    if (rc != 0)
        return rc;
    r->loop_ready = true;
    uv_signal_t *sigs[] = {&r->sigterm, &r->sigint, &r->sighup, &r->sigusr1};
    int nums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        uv_signal_init(&r->loop, sigs[i]);
        sigs[i]->data = r;
        rc = uv_signal_start(sigs[i], run_on_signal, nums[i]);
        if (rc != 0)
            return rc;
    }
    uv_timer_init(&r->loop, &r->tickets_timer);
    r->tickets_timer.data = r;
    if (r->server.tickets != NULL)
        uv_timer_start(&r->tickets_timer, run_on_tickets_timer, TICKET_TIMER_MS, TICKET_TIMER_MS);
    return 0;
}

/* ---- the command ------------------------------------------------------ */

static void run_close_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int run_setup(run_t *r)
{
    tf_server_t *s = &r->server;
    const tf_conf_log_t *log = tf_conf_log(s->conf);
    tf_log_set_level((tf_log_level_t)log->level);
    int rc = run_load_certs(s->conf, &s->snap);
    if (rc != 0)
        return rc;
    char err[1024];
    const tf_conf_tls_t *tls = tf_conf_tls(s->conf);
    rc = tf_tls_tickets_new(tls->ticket_keys_file, TICKET_ROTATE_S, &s->tickets, err, sizeof err);
    if (rc != 0) {
        TF_LOG(TF_LOG_ERROR, "%s", err);
        return rc;
    }
    s->nworkers = run_worker_count(s->conf);
    s->nlisten = tf_conf_listen_https(s->conf)->count;
    s->nhttp = tf_conf_listen_http(s->conf)->count;
    /* Opened before privileges are dropped, like the listening sockets. */
    rc = tf_access_open(log, &s->access, err, sizeof err);
    if (rc != 0) {
        TF_LOG(TF_LOG_ERROR, "%s", err);
        return rc;
    }
    s->max_connections = tf_conf_limits(s->conf)->max_connections;
    atomic_init(&s->active, 0);
    rc = run_bind(r);
    if (rc == 0)
        rc = run_drop_privileges(tf_conf_user(s->conf));
    if (rc == 0)
        rc = run_signals(r);
    if (rc == 0)
        rc = run_start_workers(r);
    return rc;
}

static void run_teardown(run_t *r)
{
    for (unsigned i = 0; i < r->started; i++)
        tf_worker_join_free(r->workers[i]);
    free(r->workers);
    run_close_fds(r);
    if (r->loop_ready)
        uv_loop_close(&r->loop);
    tf_tls_tickets_unref(r->server.tickets);
    tf_access_free(r->server.access);
    tf_cs_snapshot_unref(r->server.snap);
    tf_conf_unref(r->server.conf);
}

int tf_cmd_run(int argc, char **argv)
{
    const char *path;
    int rc = tf_cli_config_arg(argc, argv, &path);
    if (rc != 0)
        return rc;
    run_t r;
    memset(&r, 0, sizeof r);
    if (tf_cli_load_conf(path, &r.server.conf) != 0)
        return TF_EXIT_PROBLEMS;
    /* A client that goes away mid-write must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    rc = tf_tls_global_init();
    if (rc != 0) {
        TF_LOG(TF_LOG_ERROR, "cannot initialise the TLS library: %s", tf_strerror(rc));
        tf_conf_unref(r.server.conf);
        return TF_EXIT_PROBLEMS;
    }
    rc = run_setup(&r);
    if (rc == 0) {
        TF_LOG(TF_LOG_INFO, "tlsfront running (pid %ld)", (long)getpid());
        run_close_fds(&r); /* each worker holds its own duplicates now */
        uv_run(&r.loop, UV_RUN_DEFAULT);
    } else {
        for (unsigned i = 0; i < r.started; i++)
            tf_worker_stop(r.workers[i]);
        if (r.loop_ready) {
            uv_walk(&r.loop, run_close_handle, NULL);
            uv_run(&r.loop, UV_RUN_DEFAULT);
        }
    }
    run_teardown(&r);
    tf_tls_global_cleanup();
    if (rc == 0)
        TF_LOG(TF_LOG_INFO, "stopped");
    return rc == 0 ? TF_EXIT_OK : TF_EXIT_PROBLEMS;
}
