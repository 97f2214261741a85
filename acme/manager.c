/* The per-name manager (acme.h): its thread, what GET /acme shows, and the
 * decisions for each name (order, renew, wait, leave alone).
 *
 * Threads: the manager's own thread runs the passes and every callback;
 * other threads (the proxy's main loop, the admin API) update the
 * configuration, kick, and read the status and counters. `lock` guards the
 * shared fields (marked below); the thread never holds it while it calls
 * out (the client, the proxy's callbacks, the disk). */
#include "acme/acme_internal.h"
#include "common/util.h"

#include "certstore/certstore.h"
#include "common/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define DAY_S 86400
/* A pass at least this often: coverage changes (a foreign certificate
 * removed, expired) are noticed without an event. */
#define RECHECK_S 3600
/* Another process holds the name's lock (it is ordering): look again. */
#define BUSY_RETRY_S 60
/* A local failure that is no order (no directory to write to, storage
 * unwritable): look again. */
#define LOCAL_RETRY_S 300
/* Backoff: 1 minute doubling to a day; rateLimited without Retry-After
 * waits an hour at least; Retry-After is honoured up to a week. */
#define BACKOFF_MIN_S 60
#define BACKOFF_MAX_S DAY_S
#define RATE_LIMITED_MIN_S 3600
#define RETRY_AFTER_MAX_S (7 * DAY_S)
/* renewalInfo is asked this often per certificate. */
#define ARI_INTERVAL_S (6 * 3600)

typedef enum { ST_PENDING, ST_VALID, ST_RENEWING, ST_FAILED, ST_UNMANAGED } state_t;

static const char *const state_names[] = {
    [ST_PENDING] = "pending", [ST_VALID] = "valid",         [ST_RENEWING] = "renewing",
    [ST_FAILED] = "failed",   [ST_UNMANAGED] = "unmanaged",
};

/* What GET /acme shows for one name. */
typedef struct {
    char *name;
    state_t state;
    char *file;         /* NULL: null */
    int64_t not_after;  /* 0: null */
    int64_t next_at;    /* 0: null */
    json_t *last_error; /* NULL: null */
    char *reason;       /* NULL: null */
} entry_t;

struct tf_acme_manager {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the thread waits on it between passes */
    pthread_cond_t done; /* tf_acme_manager_wait() waits on it */
    pthread_t thread;
    /* Under lock. */
    bool started, stopping, joined, dirty;
    uint64_t asked, completed; /* pass numbers: the last asked for, the last done */
    tf_conf_t *conf;
    const tf_conf_t *entries_of; /* the configuration the entries list */
    entry_t *entries;
    size_t nentries;
    tf_acme_manager_counts_t counts;
    /* Set at creation. */
    char *storage; /* acme.storage as at creation: the client's account is there */
    const tf_acme_client_ops_t *ops;
    tf_acme_client_t *client;
    void (*coverage)(void *arg, const char *name, tf_acme_coverage_t *out);
    void (*written)(void *arg, const char *name, const char *path);
    void (*note)(void *arg, tf_acme_note_level_t level, const char *text);
    int64_t (*now)(void *arg);
    void *arg;
};

/* One name's evaluation on the thread. */
typedef struct {
    tf_acme_manager_t *m;
    const tf_conf_t *conf;
    const char *storage;
    const char *name;
    int64_t now;
    char path[TF_ACME_PATH_MAX]; /* HOST.pem in the first directory of tls.certs */
    tf_acme__record_t rec;
    bool exists;        /* path exists */
    bool ours;          /* ... and the record says we wrote it */
    int64_t not_before; /* of our file's version, when ours */
    int64_t not_after;
    int lock_fd;
    entry_t out;
} eval_t;

/* ---- small helpers ---------------------------------------------------------- */

static int64_t now_of(const tf_acme_manager_t *m)
{
    return m->now != NULL ? m->now(m->arg) : (int64_t)time(NULL);
}

__attribute__((format(printf, 3, 4))) static void
note(tf_acme_manager_t *m, tf_acme_note_level_t level, const char *fmt, ...)
{
    if (m->note == NULL)
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    m->note(m->arg, level, text);
}

/* snprintf into a detail buffer, where a long path may cut the text. */
__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* RFC 3339 UTC into BUF (21 bytes at least), or "-" for 0. */
static const char *rfc3339(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t == 0 || gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
    return buf;
}

static json_t *json_time(int64_t t)
{
    char buf[40];
    return t == 0 ? json_null() : json_string(rfc3339(t, buf, sizeof buf));
}

static json_t *json_str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static void entry_clear(entry_t *e)
{
    free(e->file);
    json_decref(e->last_error);
    free(e->reason);
    e->file = e->reason = NULL;
    e->last_error = NULL;
    e->not_after = e->next_at = 0;
    e->state = ST_PENDING;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* ---- the names ------------------------------------------------------------- */

static void entries_free(entry_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        entry_clear(&list[i]);
        free(list[i].name);
    }
    free(list);
}

static entry_t *entry_find(entry_t *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, name) == 0)
            return &list[i];
    }
    return NULL;
}

static size_t count_names(const tf_conf_t *conf)
{
    size_t n = 0;
    for (size_t i = 0; conf != NULL && i < tf_conf_tenant_count(conf); i++) {
        const tf_conf_tenant_t *t = tf_conf_tenant(conf, i);
        n += tf_conf_tenant_acme(t) ? t->hosts.count : 0;
    }
    return n;
}

/* The entries of m->conf's names, keeping what is known of names that
 * stay. Under lock. Out of memory: the old list stays. */
static void entries_rebuild(tf_acme_manager_t *m)
{
    size_t n = count_names(m->conf), k = 0;
    entry_t *list = calloc(n ? n : 1, sizeof *list);
    if (list == NULL)
        return;
    for (size_t i = 0; i < tf_conf_tenant_count(m->conf); i++) {
        const tf_conf_tenant_t *t = tf_conf_tenant(m->conf, i);
        for (size_t h = 0; tf_conf_tenant_acme(t) && h < t->hosts.count; h++) {
            entry_t *old = entry_find(m->entries, m->nentries, t->hosts.items[h]);
            if (old != NULL) {
                list[k++] = *old;
                old->name = NULL;
                *old = (entry_t){0};
            } else if ((list[k].name = strdup(t->hosts.items[h])) != NULL) {
                k++;
            }
        }
    }
    entries_free(m->entries, m->nentries);
    m->entries = list;
    m->nentries = k;
    m->entries_of = m->conf;
}

/* A copy of the names for a pass (NULL-terminated; free each and it). */
static char **names_copy(tf_acme_manager_t *m)
{
    pthread_mutex_lock(&m->lock);
    if (m->entries_of != m->conf)
        entries_rebuild(m);
    char **names = calloc(m->nentries + 1, sizeof *names);
    for (size_t i = 0; names != NULL && i < m->nentries; i++)
        names[i] = strdup(m->entries[i].name);
    pthread_mutex_unlock(&m->lock);
    return names;
}

/* Replaces NAME's entry with OUT (taken); tells the log when the name
 * becomes unmanaged or changes reason. */
static void publish(tf_acme_manager_t *m, const char *name, entry_t *out)
{
    char *tell = NULL;
    pthread_mutex_lock(&m->lock);
    entry_t *e = entry_find(m->entries, m->nentries, name);
    if (e != NULL) {
        bool same = e->state == ST_UNMANAGED && e->reason != NULL && out->reason != NULL &&
                    strcmp(e->reason, out->reason) == 0;
        if (out->state == ST_UNMANAGED && !same)
            tell = dup_or_null(out->reason);
        entry_clear(e);
        e->state = out->state;
        e->file = out->file;
        e->not_after = out->not_after;
        e->next_at = out->next_at;
        e->last_error = out->last_error;
        e->reason = out->reason;
        *out = (entry_t){0};
    }
    pthread_mutex_unlock(&m->lock);
    if (tell != NULL)
        note(m, TF_ACME_NOTE_INFO, "acme: %s: not managed: %s", name, tell);
    free(tell);
    entry_clear(out);
}

static bool stopping(tf_acme_manager_t *m)
{
    pthread_mutex_lock(&m->lock);
    bool s = m->stopping;
    pthread_mutex_unlock(&m->lock);
    return s;
}

/* ---- problems ---------------------------------------------------------------- */

/* GET /acme's last_error for a failure: the server's problem document, or
 * the local failure's text (type null). */
static json_t *problem_json(int rc, const tf_acme_problem_t *p)
{
    json_t *sub = p->subproblems != NULL ? json_loads(p->subproblems, 0, NULL) : NULL;
    json_t *o = json_object();
    int r = json_object_set_new(o, "type", p->type[0] != '\0' ? json_string(p->type) : json_null());
    r |= json_object_set_new(o, "detail",
                             json_string(p->detail[0] != '\0' ? p->detail : tf_strerror(rc)));
    r |= json_object_set_new(o, "subproblems", sub != NULL ? sub : json_null());
    if (r != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *local_problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *local_problem(const char *fmt, ...)
{
    tf_acme_problem_t p = {0};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p.detail, sizeof p.detail, fmt, ap);
    va_end(ap);
    return problem_json(TF_EINVAL, &p);
}

/* "TYPE: DETAIL" of a problem document for the log. */
static const char *problem_text(const json_t *o, char *buf, size_t len)
{
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *detail = json_string_value(json_object_get(o, "detail"));
    const json_t *sub = json_object_get(o, "subproblems");
    char *subtext = json_is_array(sub) ? json_dumps(sub, JSON_COMPACT) : NULL;
    snprintf(buf, len, "%s%s%s%s%s", type ? type : "", type ? ": " : "", detail ? detail : "",
             subtext ? "; subproblems: " : "", subtext ? subtext : "");
    free(subtext);
    return buf;
}

/* ---- one name: the file, the record, the coverage ------------------------------ */

/* The first directory of tls.certs, where HOST.pem goes (as PUT /certs). */
static const char *cert_dir(const tf_conf_t *conf)
{
    const tf_conf_tls_t *tls = tf_conf_tls(conf);
    for (size_t i = 0; i < tls->certs.count; i++) {
        struct stat st;
        if (stat(tls->certs.items[i], &st) == 0 && S_ISDIR(st.st_mode))
            return tls->certs.items[i];
    }
    return NULL;
}

/* Reads the record and looks at HOST.pem: exists, ours (its SHA-256 is the
 * one recorded, or the one recorded just before a rename), and the
 * notAfter of our version. 0 or the record's read error. */
static int judge(eval_t *e)
{
    tf_acme__record_dispose(&e->rec);
    int rc = tf_acme__record_load(e->storage, e->name, &e->rec);
    if (rc == TF_ENOTFOUND || rc == TF_EINVAL)
        rc = 0;
    char sha[65];
    int frc = tf_acme__file_sha256(e->path, sha);
    e->exists = frc != -ENOENT;
    e->ours = false;
    e->not_before = e->not_after = 0;
    if (frc != 0 || rc != 0 || !tf_same_path(e->rec.path, e->path))
        return rc != 0 ? rc : (frc != 0 && frc != -ENOENT ? frc : 0);
    if (e->rec.sha256[0] != '\0' && strcmp(sha, e->rec.sha256) == 0) {
        e->ours = true;
        e->not_before = e->rec.not_before;
        e->not_after = e->rec.not_after;
    } else if (e->rec.pending_sha256[0] != '\0' && strcmp(sha, e->rec.pending_sha256) == 0) {
        e->ours = true;
        e->not_before = e->rec.pending_not_before;
        e->not_after = e->rec.pending_not_after;
    }
    return 0;
}

static void set_unmanaged(eval_t *e, const char *file, int64_t not_after, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_unmanaged(eval_t *e, const char *file, int64_t not_after, const char *fmt, ...)
{
    char reason[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    e->out.state = ST_UNMANAGED;
    e->out.file = dup_or_null(file);
    e->out.not_after = not_after;
    e->out.reason = strdup(reason);
}

static void set_foreign_file(eval_t *e)
{
    set_unmanaged(e, e->path, 0,
                  "%s was not written by tlsfront (acme.storage has no record of it): it is never "
                  "replaced; remove it to have tlsfront obtain a certificate for %s",
                  e->path, e->name);
}

/* A failure before any order: shown, retried later, not counted. */
static int64_t set_local_failure(eval_t *e, json_t *problem)
{
    e->out.state = ST_FAILED;
    e->out.last_error = problem;
    e->out.next_at = e->now + LOCAL_RETRY_S;
    return e->out.next_at;
}

static int64_t judge_failed(eval_t *e, int rc)
{
    return set_local_failure(e, local_problem("cannot read %s or %s/certs/%s.json: %s", e->path,
                                              e->storage, e->name, tf_strerror(rc)));
}

/* When our certificate is due: renew_days before notAfter (SPEC §13), or
 * a third of its lifetime before when renew_days is its whole lifetime or
 * more (a certificate that short-lived would otherwise be ordered again as
 * soon as it is issued, for ever), or the time picked in renewalInfo's
 * window when earlier. */
static int64_t due_time(const eval_t *e)
{
    int64_t life = e->not_after - e->not_before;
    int64_t ahead = (int64_t)tf_conf_acme(e->conf)->renew_days * DAY_S;
    if (life > 0 && ahead >= life)
        ahead = life / 3;
    int64_t due = e->not_after - ahead;
    int64_t ari = e->rec.ari_at > 0 ? e->rec.ari_at : e->rec.ari_start;
    if (ari > 0 && ari < due)
        due = ari;
    return due;
}

/* A uniformly random time in [START, END) (RFC 9773 §4.2: so that the
 * clients a CA asks to renew early do not all come back at its first
 * second); START when the window is empty or no randomness is at hand. */
static int64_t pick_in_window(int64_t start, int64_t end)
{
    uint64_t r = 0;
    if (end <= start || getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        return start;
    return start + (int64_t)(r % (uint64_t)(end - start));
}

/* ---- renewalInfo (RFC 9773) ------------------------------------------------------ */

/* The certificate blocks at the start of our bundle (the key follows them
 * and is not sent anywhere). */
static char *bundle_certs(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    FILE *mem = open_memstream(&buf, &cap);
    char line[1024];
    bool in_cert = false;
    while (mem != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "-----BEGIN ", 11) == 0 &&
            strncmp(line + 11, "CERTIFICATE-----", 16) != 0)
            break;
        if (strncmp(line, "-----BEGIN CERTIFICATE-----", 27) == 0)
            in_cert = true;
        if (in_cert)
            fputs(line, mem);
        if (strncmp(line, "-----END CERTIFICATE-----", 25) == 0)
            in_cert = false;
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    if (mem == NULL || fclose(mem) != 0) {
        free(buf);
        return NULL;
    }
    n = strlen(buf);
    *len = n;
    return buf;
}

/* Asks renewalInfo for our certificate and records its window. */
static void renewal_info_ask(eval_t *e)
{
    tf_acme_manager_t *m = e->m;
    tf_acme_problem_t prob = {0};
    size_t len = 0;
    char *pem = NULL;
    int64_t start = 0, end = 0;
    int rc = 0;
    if ((pem = bundle_certs(e->path, &len)) == NULL)
        rc = TF_EIO;
    if (rc == 0)
        rc = m->ops->renewal_info(m->client, pem, len, &start, &end, &prob);
    if (rc == 0 || rc == TF_ENOTFOUND) {
        bool same = rc == 0 && start == e->rec.ari_start && end == e->rec.ari_end;
        e->rec.ari_start = rc == 0 ? start : 0;
        e->rec.ari_end = rc == 0 ? end : 0;
        /* Picked once per window: asked again, an unchanged window keeps its time. */
        if (!same)
            e->rec.ari_at = rc == 0 ? pick_in_window(start, end) : 0;
    } else {
        json_t *p = problem_json(rc, &prob);
        char text[1200];
        note(m, TF_ACME_NOTE_WARN, "acme: %s: renewalInfo: %s; asked again in %d hours", e->name,
             p != NULL ? problem_text(p, text, sizeof text) : tf_strerror(rc),
             ARI_INTERVAL_S / 3600);
        json_decref(p);
    }
    e->rec.ari_checked = e->now;
    free(pem);
    tf_acme_problem_dispose(&prob);
}

/* Asks renewalInfo when it was not asked lately, under the name's lock (the
 * record is written); skipped when another process holds it. */
static void renewal_info(eval_t *e)
{
    if (e->now - e->rec.ari_checked < ARI_INTERVAL_S || e->m->ops->renewal_info == NULL)
        return;
    int fd;
    if (tf_acme__lock(e->storage, e->name, &fd) != 0)
        return;
    /* Again under the lock: another process may have asked, or renewed. */
    if (judge(e) == 0 && e->ours && e->not_after > e->now &&
        e->now - e->rec.ari_checked >= ARI_INTERVAL_S) {
        renewal_info_ask(e);
        int rc = tf_acme__record_save(e->storage, e->name, &e->rec);
        if (rc != 0)
            note(e->m, TF_ACME_NOTE_WARN, "acme: %s: cannot update the record in %s: %s", e->name,
                 e->storage, tf_strerror(rc));
    }
    tf_acme__unlock(fd);
}

/* ---- ordering ------------------------------------------------------------------ */

/* What an order's failure is counted as: the CA refused (a 4xx problem
 * document), or anything else. */
typedef enum { RESULT_INVALID, RESULT_ERROR } result_t;

static result_t result_of(int rc, const tf_acme_problem_t *p)
{
    return rc == TF_EACME && p->status >= 400 && p->status < 500 ? RESULT_INVALID : RESULT_ERROR;
}

static int64_t backoff_delay(unsigned failures, const tf_acme_problem_t *p)
{
    int64_t d = BACKOFF_MIN_S;
    for (unsigned i = 1; i < failures && d < BACKOFF_MAX_S; i++)
        d *= 2;
    if (d > BACKOFF_MAX_S)
        d = BACKOFF_MAX_S;
    bool limited = strcmp(p->type, "urn:ietf:params:acme:error:rateLimited") == 0;
    if (limited && p->retry_after_s == 0 && d < RATE_LIMITED_MIN_S)
        d = RATE_LIMITED_MIN_S;
    int64_t ra =
        p->retry_after_s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (int64_t)p->retry_after_s;
    return ra > d ? ra : d;
}

static void on_order(void *ud, const char *url)
{
    eval_t *e = ud;
    char *copy = strdup(url);
    if (copy == NULL)
        return;
    free(e->rec.order_url);
    e->rec.order_url = copy;
    int rc = tf_acme__record_save(e->storage, e->name, &e->rec);
    if (rc != 0)
        note(e->m, TF_ACME_NOTE_WARN,
             "acme: %s: cannot record the order %s in %s: %s (a restart would start a new order)",
             e->name, url, e->storage, tf_strerror(rc));
}

static int64_t order_failed(eval_t *e, int rc, const tf_acme_problem_t *prob)
{
    tf_acme_manager_t *m = e->m;
    result_t result = result_of(rc, prob);
    int64_t now = now_of(m);
    e->rec.failures++;
    e->rec.backoff_until = now + backoff_delay(e->rec.failures, prob);
    json_decref(e->rec.last_problem);
    e->rec.last_problem = problem_json(rc, prob);
    if (result == RESULT_INVALID) {
        /* The CA refused: that order is done for. */
        free(e->rec.order_url);
        e->rec.order_url = NULL;
    }
    int src = tf_acme__record_save(e->storage, e->name, &e->rec);
    pthread_mutex_lock(&m->lock);
    if (result == RESULT_INVALID)
        m->counts.invalid++;
    else
        m->counts.error++;
    pthread_mutex_unlock(&m->lock);
    char text[1200], at[40];
    note(m, TF_ACME_NOTE_WARN, "acme: %s: order failed (%s): %s; next attempt at %s%s", e->name,
         result == RESULT_INVALID ? "invalid" : "error",
         problem_text(e->rec.last_problem, text, sizeof text),
         rfc3339(e->rec.backoff_until, at, sizeof at),
         src != 0 ? " (this process only: the record cannot be written)" : "");
    e->out.state = ST_FAILED;
    e->out.last_error = e->rec.last_problem ? json_incref(e->rec.last_problem) : NULL;
    e->out.next_at = e->rec.backoff_until;
    return e->out.next_at;
}

/* The store would load BUNDLE for NAME: the same validation as an upload. */
static int bundle_check(eval_t *e, const tf_acme_issued_t *is, tf_acme_problem_t *prob,
                        int64_t *not_before, int64_t *not_after)
{
    tf_cs_bundle_t *b = NULL;
    tf_cs_load_opts_t opts = {.now = (time_t)e->now};
    int rc = tf_cs_bundle_load_mem(e->name, is->bundle, is->bundle_len, NULL, 0, &opts, &b);
    bool covers = rc == 0 && tf_cs_bundle_covers(b, e->name);
    /* An expired certificate would be ordered again at once, and again. */
    bool current = rc == 0 && tf_cs_bundle_not_after(b) > (time_t)e->now;
    if (rc == 0 && (!covers || !current))
        rc = TF_ECERT;
    if (rc != 0) {
        const char *why =
            !covers ? "it does not cover the name" : "it has expired (is the clock right?)";
        for (size_t i = 0; b != NULL && i < tf_cs_bundle_diag_count(b); i++) {
            if (tf_cs_bundle_diag_at(b, i)->severity == TF_CS_FATAL) {
                why = tf_cs_bundle_diag_at(b, i)->message;
                break;
            }
        }
        say(prob->detail, sizeof prob->detail, "the issued bundle is not usable: %s", why);
    } else {
        *not_before = tf_cs_bundle_not_before(b);
        *not_after = tf_cs_bundle_not_after(b);
    }
    tf_cs_bundle_unref(b);
    return rc;
}

/* Writes the issued bundle as HOST.pem, recorded before the rename (as
 * pending) and after it. */
static int install(eval_t *e, const tf_acme_issued_t *is, tf_acme_problem_t *prob)
{
    int64_t nb = 0, na = 0;
    char sha[65];
    int rc = bundle_check(e, is, prob, &nb, &na);
    if (rc == 0)
        rc = tf_acme__sha256_hex(is->bundle, is->bundle_len, sha);
    if (rc == 0 && (rc = judge(e)) == 0 && e->exists && !e->ours) {
        say(prob->detail, sizeof prob->detail,
            "%s appeared meanwhile and was not written by tlsfront: not replaced", e->path);
        return TF_EINVAL;
    }
    if (rc != 0)
        return rc;
    memcpy(e->rec.pending_sha256, sha, sizeof sha);
    e->rec.pending_not_before = nb;
    e->rec.pending_not_after = na;
    snprintf(e->rec.path, sizeof e->rec.path, "%s", e->path);
    rc = tf_acme__record_save(e->storage, e->name, &e->rec);
    if (rc != 0) {
        say(prob->detail, sizeof prob->detail, "cannot write the record in %s/certs: %s",
            e->storage, tf_strerror(rc));
        return rc;
    }
    /* A file that was absent must still be: one written meanwhile (a PUT
     * /certs, an operator's copy) is not ours to replace. */
    rc = tf_acme__write_atomic(e->path, is->bundle, is->bundle_len, 0600, !e->exists);
    if (rc == -EEXIST) {
        say(prob->detail, sizeof prob->detail,
            "%s appeared meanwhile and was not written by tlsfront: not replaced", e->path);
        return TF_EINVAL;
    }
    if (rc != 0) {
        say(prob->detail, sizeof prob->detail, "cannot write %s: %s", e->path, tf_strerror(rc));
        return rc;
    }
    memcpy(e->rec.sha256, sha, sizeof sha);
    e->rec.pending_sha256[0] = '\0';
    e->rec.not_before = nb;
    e->rec.not_after = na;
    e->rec.pending_not_before = e->rec.pending_not_after = 0;
    return 0;
}

static int64_t order_succeeded(eval_t *e)
{
    tf_acme_manager_t *m = e->m;
    e->not_before = e->rec.not_before;
    e->not_after = e->rec.not_after;
    e->rec.renew_at = due_time(e);
    free(e->rec.order_url);
    e->rec.order_url = NULL;
    e->rec.failures = 0;
    e->rec.backoff_until = 0;
    json_decref(e->rec.last_problem);
    e->rec.last_problem = NULL;
    e->rec.ari_start = e->rec.ari_end = e->rec.ari_checked = 0;
    int rc = tf_acme__record_save(e->storage, e->name, &e->rec);
    pthread_mutex_lock(&m->lock);
    m->counts.valid++;
    pthread_mutex_unlock(&m->lock);
    char at[40];
    note(m, TF_ACME_NOTE_INFO, "acme: %s: certificate issued, valid until %s, written to %s",
         e->name, rfc3339(e->rec.not_after, at, sizeof at), e->path);
    if (rc != 0)
        note(m, TF_ACME_NOTE_WARN, "acme: %s: cannot update the record in %s: %s", e->name,
             e->storage, tf_strerror(rc));
    if (m->written != NULL)
        m->written(m->arg, e->name, e->path);
    e->out.state = ST_VALID;
    e->out.file = strdup(e->path);
    e->out.not_after = e->rec.not_after;
    e->out.next_at = e->rec.renew_at;
    return e->out.next_at;
}

/* When no order is needed now: the time of the next, else 0. Sets what
 * GET /acme shows in that case. */
static int64_t waiting(eval_t *e)
{
    bool has = e->ours && e->not_after > e->now;
    int64_t due = has ? due_time(e) : e->now;
    int64_t at = due > e->rec.backoff_until ? due : e->rec.backoff_until;
    if (at <= e->now)
        return 0;
    bool failing = e->rec.failures > 0 && e->rec.backoff_until > e->now;
    e->out.state = failing ? ST_FAILED : has ? ST_VALID : ST_PENDING;
    e->out.file = has ? strdup(e->path) : NULL;
    e->out.not_after = has ? e->not_after : 0;
    e->out.next_at = at;
    e->out.last_error = failing && e->rec.last_problem ? json_incref(e->rec.last_problem) : NULL;
    return at;
}

/* Orders under the name's lock. */
static int64_t order(eval_t *e)
{
    tf_acme_manager_t *m = e->m;
    int rc = tf_acme__lock(e->storage, e->name, &e->lock_fd);
    if (rc == -EAGAIN) {
        /* Another process orders it; its file will show up here. */
        e->out.state = e->ours && e->not_after > e->now ? ST_RENEWING : ST_PENDING;
        e->out.next_at = e->now + BUSY_RETRY_S;
        return e->out.next_at;
    }
    if (rc != 0)
        return set_local_failure(
            e, local_problem("cannot take the lock in %s/locks: %s", e->storage, tf_strerror(rc)));
    /* What that other process did before it let go. */
    if ((rc = judge(e)) != 0)
        return judge_failed(e, rc);
    if (e->exists && !e->ours) {
        set_foreign_file(e);
        return 0;
    }
    int64_t at = waiting(e);
    if (at != 0)
        return at;
    entry_t busy = {.state = e->ours && e->not_after > e->now ? ST_RENEWING : ST_PENDING,
                    .file = e->ours ? strdup(e->path) : NULL,
                    .not_after = e->ours ? e->not_after : 0,
                    .next_at = e->now,
                    .last_error = e->rec.last_problem ? json_incref(e->rec.last_problem) : NULL};
    publish(m, e->name, &busy);
    if (e->rec.order_url != NULL)
        note(m, TF_ACME_NOTE_INFO,
             "acme: %s: resuming the order %s (a new one unless the CA still has it)", e->name,
             e->rec.order_url);
    /* A renewal names the certificate it replaces (RFC 9773 `replaces`). */
    size_t certs_len = 0;
    char *certs = e->ours && e->not_after > e->now ? bundle_certs(e->path, &certs_len) : NULL;
    tf_acme_problem_t prob = {0};
    tf_acme_issued_t issued = {0};
    rc = m->ops->issue(m->client, e->name, e->rec.order_url, certs, on_order, e, &issued, &prob);
    free(certs);
    if (rc == 0)
        rc = install(e, &issued, &prob);
    if (rc != 0 && stopping(m)) {
        /* Cancelled: abandoned, resumed at the next start. */
        note(m, TF_ACME_NOTE_INFO, "acme: %s: order abandoned: stopping", e->name);
        at = 0;
    } else {
        at = rc == 0 ? order_succeeded(e) : order_failed(e, rc, &prob);
    }
    tf_acme_issued_dispose(&issued);
    tf_acme_problem_dispose(&prob);
    return at;
}

/* One name: what to do now, and when to look again (0: at the next regular
 * pass). */
static int64_t evaluate(eval_t *e)
{
    if (e->name[0] == '*') {
        set_unmanaged(e, NULL, 0, "wildcard: needs DNS-01");
        return 0;
    }
    if (!tf_acme__host_ok(e->name)) {
        set_unmanaged(e, NULL, 0, "not a DNS name an ACME server issues certificates for");
        return 0;
    }
    const char *dir = cert_dir(e->conf);
    if (dir == NULL)
        return set_local_failure(
            e,
            local_problem("tls.certs names no directory to write %s.pem into: add one", e->name));
    snprintf(e->path, sizeof e->path, "%s/%s.pem", dir, e->name);
    int rc = judge(e);
    if (rc != 0)
        return judge_failed(e, rc);
    if (e->exists && !e->ours) {
        set_foreign_file(e);
        return 0;
    }
    tf_acme_coverage_t cov = {0};
    e->m->coverage(e->m->arg, e->name, &cov);
    if (cov.covered && !tf_same_path(cov.file, e->path)) {
        char until[40];
        set_unmanaged(e, cov.file, cov.not_after,
                      "covered by %s, a certificate tlsfront did not issue, valid until %s",
                      cov.file, rfc3339(cov.not_after, until, sizeof until));
        return 0;
    }
    if (e->ours && e->not_after > e->now)
        renewal_info(e);
    int64_t at = waiting(e);
    return at != 0 ? at : order(e);
}

/* ---- the thread --------------------------------------------------------------- */

/* Every name once; returns when the next pass is due. */
static int64_t pass(tf_acme_manager_t *m, tf_conf_t *conf)
{
    int64_t next = now_of(m) + RECHECK_S;
    char **names = names_copy(m);
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
        if (stopping(m))
            break;
        eval_t e = {.m = m,
                    .conf = conf,
                    .storage = m->storage,
                    .name = names[i],
                    .now = now_of(m),
                    .lock_fd = -1};
        int64_t at = evaluate(&e);
        tf_acme__unlock(e.lock_fd);
        tf_acme__record_dispose(&e.rec);
        publish(m, names[i], &e.out);
        if (at > 0 && at < next)
            next = at;
    }
    for (size_t i = 0; names != NULL && names[i] != NULL; i++)
        free(names[i]);
    free(names);
    /* Never two passes back to back: a time already past waits a second. */
    int64_t now = now_of(m);
    return next > now ? next : now + 1;
}

/* Waits on `wake` until the next pass is due (a second at least, an hour at
 * most: the clock may have been set meanwhile). Under lock. */
static void sleep_until(tf_acme_manager_t *m, int64_t next)
{
    int64_t wait = next - now_of(m);
    if (wait < 1)
        wait = 1;
    if (wait > RECHECK_S)
        wait = RECHECK_S;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)wait;
    while (!m->stopping && !m->dirty) {
        if (pthread_cond_timedwait(&m->wake, &m->lock, &ts) == ETIMEDOUT)
            break;
    }
}

static void *thread_main(void *arg)
{
    tf_acme_manager_t *m = arg;
    pthread_mutex_lock(&m->lock);
    int64_t next = 0;
    while (!m->stopping) {
        if (!m->dirty && next > now_of(m)) {
            sleep_until(m, next);
            if (!m->dirty && next > now_of(m))
                continue;
        }
        m->dirty = false;
        uint64_t number = m->asked;
        tf_conf_t *conf = tf_conf_ref(m->conf);
        pthread_mutex_unlock(&m->lock);
        next = pass(m, conf);
        tf_conf_unref(conf);
        pthread_mutex_lock(&m->lock);
        m->completed = number;
        pthread_cond_broadcast(&m->done);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- the API ------------------------------------------------------------------- */

int tf_acme_manager_new(const tf_acme_manager_conf_t *c, tf_acme_manager_t **out)
{
    tf_acme_manager_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return TF_ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->wake, &ca);
    pthread_cond_init(&m->done, &ca);
    pthread_condattr_destroy(&ca);
    m->ops = c->ops;
    m->coverage = c->coverage;
    m->written = c->written;
    m->note = c->note;
    m->now = c->now;
    m->arg = c->arg;
    m->conf = tf_conf_ref(c->conf);
    m->storage = strdup(tf_conf_acme(c->conf)->storage);
    if (m->storage == NULL) {
        tf_acme_manager_free(m);
        return TF_ENOMEM;
    }
    m->dirty = true;
    m->asked = 1;
    entries_rebuild(m);
    *out = m;
    return 0;
}

int tf_acme_manager_start(tf_acme_manager_t *m, tf_acme_client_t *client)
{
    pthread_mutex_lock(&m->lock);
    if (!m->started)
        m->client = client;
    int rc = m->started ? 0 : -pthread_create(&m->thread, NULL, thread_main, m);
    if (rc == 0)
        m->started = true;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void tf_acme_manager_update(tf_acme_manager_t *m, tf_conf_t *conf)
{
    tf_conf_t *old;
    pthread_mutex_lock(&m->lock);
    old = m->conf;
    m->conf = tf_conf_ref(conf);
    entries_rebuild(m);
    m->dirty = true;
    m->asked++;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    /* A pass under way holds its own reference. */
    tf_conf_unref(old);
}

uint64_t tf_acme_manager_kick(tf_acme_manager_t *m)
{
    pthread_mutex_lock(&m->lock);
    m->dirty = true;
    uint64_t n = ++m->asked;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    return n;
}

int tf_acme_manager_wait(tf_acme_manager_t *m, uint64_t number, unsigned timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    while (rc == 0 && m->completed < number) {
        if (!m->started || m->stopping)
            rc = TF_EINVAL;
        else if (pthread_cond_timedwait(&m->done, &m->lock, &ts) == ETIMEDOUT)
            rc = m->completed < number ? -ETIMEDOUT : 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static json_t *entry_json(const entry_t *e)
{
    json_t *o = json_object();
    int rc = o != NULL ? 0 : -1;
    rc |= json_object_set_new(o, "name", json_string(e->name));
    rc |= json_object_set_new(o, "state", json_string(state_names[e->state]));
    rc |= json_object_set_new(o, "file", json_str_or_null(e->file));
    rc |= json_object_set_new(o, "not_after", json_time(e->not_after));
    rc |= json_object_set_new(o, "next_attempt", json_time(e->next_at));
    rc |= json_object_set_new(o, "last_error",
                              e->last_error != NULL ? json_deep_copy(e->last_error) : json_null());
    rc |= json_object_set_new(o, "reason", json_str_or_null(e->reason));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *tf_acme_manager_status(tf_acme_manager_t *m)
{
    json_t *list = json_array();
    int rc = list != NULL ? 0 : -1;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; rc == 0 && i < m->nentries; i++)
        rc = json_array_append_new(list, entry_json(&m->entries[i]));
    pthread_mutex_unlock(&m->lock);
    if (rc != 0) {
        json_decref(list);
        return NULL;
    }
    return list;
}

tf_acme_manager_counts_t tf_acme_manager_counts(tf_acme_manager_t *m)
{
    pthread_mutex_lock(&m->lock);
    tf_acme_manager_counts_t c = m->counts;
    pthread_mutex_unlock(&m->lock);
    return c;
}

void tf_acme_manager_each_renewal(tf_acme_manager_t *m,
                                  void (*fn)(void *arg, const char *name, int64_t at), void *arg)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nentries; i++) {
        const entry_t *e = &m->entries[i];
        if (e->state != ST_UNMANAGED && e->next_at != 0)
            fn(arg, e->name, e->next_at);
    }
    pthread_mutex_unlock(&m->lock);
}

void tf_acme_manager_cancel(tf_acme_manager_t *m)
{
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_signal(&m->wake);
    pthread_cond_broadcast(&m->done);
    pthread_mutex_unlock(&m->lock);
}

void tf_acme_manager_stop(tf_acme_manager_t *m)
{
    pthread_mutex_lock(&m->lock);
    bool join = m->started && !m->joined;
    m->joined = true;
    m->stopping = true;
    pthread_cond_signal(&m->wake);
    pthread_cond_broadcast(&m->done);
    pthread_mutex_unlock(&m->lock);
    if (join)
        pthread_join(m->thread, NULL);
}

void tf_acme_manager_free(tf_acme_manager_t *m)
{
    if (m == NULL)
        return;
    tf_acme_manager_stop(m);
    entries_free(m->entries, m->nentries);
    tf_conf_unref(m->conf);
    free(m->storage);
    pthread_cond_destroy(&m->wake);
    pthread_cond_destroy(&m->done);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
