/* Snapshots of the certificate store: incremental, parallel builds and the
 * SNI selection that the TLS layer calls (SPEC §4.4, §4.5). See store.h. */
#include "certstore/store_internal.h"

#include "certstore/index.h"
#include "certstore/names.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tf_cs_entry {
    atomic_int refs;
    time_t parsed_at;       /* the build time its latest parse judged dates at */
    tf_cs__file_t file;     /* path owned by the entry */
    tf_cs_bundle_t *served; /* last good version, or NULL */
    tf_cs_bundle_t *failed; /* latest parse when rejected, or NULL */
};

struct tf_cs_snapshot {
    atomic_int refs;
    tf_cs_entry_t **entries; /* sorted by path, one reference each */
    size_t n;
    tf_cs_entry_t *default_entry; /* its own reference, or NULL */
    tf_cs__index_t *index;
    time_t next_change; /* 0: no date ahead can change anything */
    struct note {
        char *text;
        bool error;
        size_t about; /* tf_cs_snapshot_note_source() */
    } *notes;
    size_t nnotes, notes_cap;
    bool unread; /* some source could not be read: its entries were carried over */
    tf_cs_snapshot_stats_t stats;
};

struct tf_cs_store {
    char **sources;
    size_t nsources;
    char *default_cert;
    unsigned threads;
    tf_cs_trust_t *trust;
    tf_cs_intern_t *intern;
    tf_cs_snapshot_t *current; /* base of the next build, or NULL */
    char *trust_note;          /* why validation runs without system roots, or NULL */
    tf_cs_store_stats_t stats;
};

/* ---- entries ---------------------------------------------------------------- */

static tf_cs_entry_t *entry_new(const tf_cs__file_t *file, time_t parsed_at,
                                tf_cs_bundle_t *served, tf_cs_bundle_t *failed)
{
    tf_cs_entry_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->file = *file;
    e->file.path = strdup(file->path);
    if (e->file.path == NULL) {
        free(e);
        return NULL;
    }
    atomic_init(&e->refs, 1);
    e->parsed_at = parsed_at;
    e->served = tf_cs_bundle_ref(served);
    e->failed = tf_cs_bundle_ref(failed);
    return e;
}

static tf_cs_entry_t *entry_ref(tf_cs_entry_t *e)
{
    if (e != NULL)
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

static void entry_unref(tf_cs_entry_t *e)
{
    if (e == NULL || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    tf_cs_bundle_unref(e->served);
    tf_cs_bundle_unref(e->failed);
    free(e->file.path);
    free(e);
}

const char *tf_cs_entry_path(const tf_cs_entry_t *e)
{
    return e->file.path;
}

const tf_cs_bundle_t *tf_cs_entry_served(const tf_cs_entry_t *e)
{
    return e->served;
}

const tf_cs_bundle_t *tf_cs_entry_failed(const tf_cs_entry_t *e)
{
    return e->failed;
}

const tf_cs_bundle_t *tf_cs_entry_latest(const tf_cs_entry_t *e)
{
    return e->failed != NULL ? e->failed : e->served;
}

/* ---- snapshots -------------------------------------------------------------- */

tf_cs_snapshot_t *tf_cs_snapshot_ref(tf_cs_snapshot_t *snap)
{
    if (snap != NULL)
        atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
    return snap;
}

void tf_cs_snapshot_unref(tf_cs_snapshot_t *snap)
{
    if (snap == NULL || atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < snap->n; i++)
        entry_unref(snap->entries[i]);
    free(snap->entries);
    entry_unref(snap->default_entry);
    tf_cs__index_free(snap->index);
    for (size_t i = 0; i < snap->nnotes; i++)
        free(snap->notes[i].text);
    free(snap->notes);
    free(snap);
}

/* Notes are advisory: one that cannot be allocated is dropped, not fatal.
 * ABOUT is what tf_cs_snapshot_note_source() answers for it. */
__attribute__((format(printf, 4, 0))) static void vnote(tf_cs_snapshot_t *snap, bool error,
                                                        size_t about, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    if (snap->nnotes == snap->notes_cap) {
        size_t cap = snap->notes_cap ? snap->notes_cap * 2 : 8;
        struct note *v = realloc(snap->notes, cap * sizeof *v);
        if (v == NULL)
            return;
        snap->notes = v;
        snap->notes_cap = cap;
    }
    char *s = strdup(buf);
    if (s != NULL)
        snap->notes[snap->nnotes++] = (struct note){.text = s, .error = error, .about = about};
    snap->unread |= s != NULL && error && about < TF_CS_NOTE_DEFAULT_CERT;
}

__attribute__((format(printf, 3, 4))) static void note(tf_cs_snapshot_t *snap, bool error,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(snap, error, TF_CS_NOTE_OTHER, fmt, ap);
    va_end(ap);
}

/* An error about a path the caller configured: source SOURCE (an index into
 * the sources, or TF_CS_NOTE_DEFAULT_CERT). */
__attribute__((format(printf, 3, 4))) static void
note_source(tf_cs_snapshot_t *snap, size_t source, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(snap, true, source, fmt, ap);
    va_end(ap);
}

const tf_cs_bundle_t *tf_cs_snapshot_default(const tf_cs_snapshot_t *snap)
{
    return snap->default_entry != NULL ? snap->default_entry->served : NULL;
}

const tf_cs_entry_t *tf_cs_snapshot_default_entry(const tf_cs_snapshot_t *snap)
{
    return snap->default_entry;
}

time_t tf_cs_snapshot_next_change(const tf_cs_snapshot_t *snap)
{
    return snap->next_change;
}

const tf_cs_bundle_t *tf_cs_snapshot_select(const tf_cs_snapshot_t *snap, const char *sni,
                                            size_t len, tf_cs_selection_t *how)
{
    char name[TF_CS_NAME_BUF];
    tf_cs_selection_t sel = TF_CS_SEL_NO_SNI;
    const tf_cs_bundle_t *b = NULL;

    if (sni != NULL) {
        sel = TF_CS_SEL_DEFAULT;
        tf_cs__match_t kind = TF_CS_MATCH_NONE;
        if (len <= TF_CS_NAME_MAX + 1 && tf_cs__sni_normalize(sni, len, name) > 0)
            b = tf_cs__index_lookup(snap->index, name, &kind);
        if (kind == TF_CS_MATCH_EXACT)
            sel = TF_CS_SEL_EXACT;
        else if (kind == TF_CS_MATCH_WILDCARD)
            sel = TF_CS_SEL_WILDCARD;
    }
    if (b == NULL)
        b = tf_cs_snapshot_default(snap);
    if (how != NULL)
        *how = sel;
    return b;
}

static bool bundle_has_name(const tf_cs_bundle_t *b, const char *name)
{
    size_t n = b != NULL ? tf_cs_bundle_name_count(b) : 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tf_cs_bundle_name_at(b, i), name) == 0)
            return true;
    }
    return false;
}

bool tf_cs_snapshot_covers(const tf_cs_snapshot_t *snap, const char *pattern)
{
    char name[TF_CS_NAME_BUF];

    if (strcmp(pattern, "*") == 0)
        return true;
    if (strncmp(pattern, "*.", 2) != 0) {
        int n = tf_cs__sni_normalize(pattern, strlen(pattern), name);
        return n > 0 && tf_cs__index_lookup(snap->index, name, NULL) != NULL;
    }
    /* A wildcard host is covered only by the same wildcard: any one name
     * under it could be covered by an exact certificate, the rest not. This
     * is for `tlsfront check`, so a scan is fine. */
    if (bundle_has_name(tf_cs_snapshot_default(snap), pattern))
        return true;
    for (size_t i = 0; i < snap->n; i++) {
        if (bundle_has_name(snap->entries[i]->served, pattern))
            return true;
    }
    return false;
}

size_t tf_cs_snapshot_entry_count(const tf_cs_snapshot_t *snap)
{
    return snap->n;
}

const tf_cs_entry_t *tf_cs_snapshot_entry_at(const tf_cs_snapshot_t *snap, size_t i)
{
    return i < snap->n ? snap->entries[i] : NULL;
}

size_t tf_cs_snapshot_note_count(const tf_cs_snapshot_t *snap)
{
    return snap->nnotes;
}

size_t tf_cs_snapshot_note_source(const tf_cs_snapshot_t *snap, size_t i)
{
    return i < snap->nnotes ? snap->notes[i].about : TF_CS_NOTE_OTHER;
}

const char *tf_cs_snapshot_note_at(const tf_cs_snapshot_t *snap, size_t i, bool *is_error)
{
    if (i >= snap->nnotes)
        return NULL;
    if (is_error != NULL)
        *is_error = snap->notes[i].error;
    return snap->notes[i].text;
}

const char *tf_cs_snapshot_entry_unread(const tf_cs_snapshot_t *snap, size_t i)
{
    if (!snap->unread || i >= snap->n || snap->entries[i]->file.source == SIZE_MAX)
        return NULL;
    /* Only a source that failed its scan has an error note about it, and
     * scan_all() then carried its entries over. */
    for (size_t k = 0; k < snap->nnotes; k++) {
        if (snap->notes[k].error && snap->notes[k].about == snap->entries[i]->file.source)
            return snap->notes[k].text;
    }
    return NULL;
}

tf_cs_snapshot_stats_t tf_cs_snapshot_stats(const tf_cs_snapshot_t *snap)
{
    return snap->stats;
}

/* ---- the store -------------------------------------------------------------- */

static char *strdup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

int tf_cs_store_new(const tf_cs_store_opts_t *opts, tf_cs_store_t **out)
{
    tf_cs_store_t *s = calloc(1, sizeof *s);
    int rc = TF_ENOMEM;
    if (s == NULL)
        return TF_ENOMEM;
    s->sources = calloc(opts->nsources + 1, sizeof *s->sources);
    if (s->sources == NULL)
        goto out;
    for (size_t i = 0; i < opts->nsources; i++) {
        if ((s->sources[i] = strdup(opts->sources[i])) == NULL)
            goto out;
        s->nsources++;
    }
    s->default_cert = strdup_or_null(opts->default_cert);
    if (opts->default_cert != NULL && s->default_cert == NULL)
        goto out;
    s->threads = opts->threads;
    if (s->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->threads = n > 0 && n < 256 ? (unsigned)n : 1;
    }
    rc = tf_cs_intern_new(&s->intern);
    if (rc != 0)
        goto out;
    /* Without the system roots every bundle still loads; only telling a
     * missing intermediate from a root gets coarser, so say so and go on. */
    const char *ca = opts->ca_file != NULL ? opts->ca_file : TF_CS_SYSTEM_CA_FILE;
    if (opts->ca_file == NULL && access(ca, R_OK) != 0) {
        ca = NULL;
        s->trust_note = strdup(TF_CS_SYSTEM_CA_FILE ": the system trust store is missing: "
                               "'missing intermediate' warnings cannot tell roots apart; "
                               "install ca-certificates");
    }
    const char *psl = opts->psl_file;
    if (psl == NULL && access(TF_CS_SYSTEM_PSL_FILE, R_OK) == 0)
        psl = TF_CS_SYSTEM_PSL_FILE;
    rc = tf_cs_trust_load(ca, psl, &s->trust);
out:
    if (rc != 0) {
        tf_cs_store_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void tf_cs_store_free(tf_cs_store_t *s)
{
    if (s == NULL)
        return;
    tf_cs_snapshot_unref(s->current);
    for (size_t i = 0; i < s->nsources; i++)
        free(s->sources[i]);
    free(s->sources);
    free(s->default_cert);
    free(s->trust_note);
    tf_cs_trust_free(s->trust);
    tf_cs_intern_free(s->intern);
    free(s);
}

tf_cs_store_stats_t tf_cs_store_stats(const tf_cs_store_t *s)
{
    return s->stats;
}

/* ---- building: parse jobs on every core -------------------------------------- */

typedef struct {
    const tf_cs__file_t *file;
    tf_cs_entry_t *old; /* previous entry for the path, or NULL */
    tf_cs_bundle_t *bundle;
    int rc;
} parse_job_t;

typedef struct {
    parse_job_t *jobs;
    size_t n;
    atomic_size_t next;
    tf_cs_load_opts_t opts;
} parse_queue_t;

static void *parse_worker(void *arg)
{
    parse_queue_t *q = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&q->next, 1);
        if (i >= q->n)
            return NULL;
        parse_job_t *j = &q->jobs[i];
        j->rc = tf_cs_bundle_load_file(j->file->path, &q->opts, &j->bundle);
    }
}

/* Parses every job, on up to `threads` threads (the caller's included). */
static void parse_all(parse_queue_t *q, unsigned threads)
{
    pthread_t tid[64];
    unsigned started = 0;

    /* A thread per few files at most: starting one costs more than a parse. */
    size_t want = q->n / 4;
    if (want > threads)
        want = threads;
    if (want > 64)
        want = 64;
    for (unsigned t = 1; t < want; t++) {
        if (pthread_create(&tid[started], NULL, parse_worker, q) != 0)
            break;
        started++;
    }
    parse_worker(q);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
}

static tf_cs_entry_t *find_entry(const tf_cs_snapshot_t *snap, const char *path)
{
    size_t lo = 0, hi = snap != NULL ? snap->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(path, snap->entries[mid]->file.path);
        if (c == 0)
            return snap->entries[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Entries of a source that could not be read are carried over unchanged: a
 * directory that is briefly unreadable must not take certificates away. */
static int carry_over_source(tf_cs__files_t *fs, const tf_cs_snapshot_t *old, size_t source)
{
    for (size_t i = 0; old != NULL && i < old->n; i++) {
        const tf_cs__file_t *f = &old->entries[i]->file;
        if (f->source != source)
            continue;
        if (fs->n == fs->cap) {
            size_t cap = fs->cap ? fs->cap * 2 : 64;
            tf_cs__file_t *v = realloc(fs->v, cap * sizeof *v);
            if (v == NULL)
                return TF_ENOMEM;
            fs->v = v;
            fs->cap = cap;
        }
        fs->v[fs->n] = *f;
        if ((fs->v[fs->n].path = strdup(f->path)) == NULL)
            return TF_ENOMEM;
        fs->n++;
    }
    return 0;
}

static int scan_all(tf_cs_store_t *s, tf_cs__files_t *fs, tf_cs_snapshot_t *snap)
{
    char why[1024];
    for (size_t i = 0; i < s->nsources; i++) {
        int rc = tf_cs__scan_source(fs, s->sources[i], i, why, sizeof why);
        if (rc == TF_ENOMEM)
            return rc;
        if (rc != 0) {
            note_source(snap, i, "%s", why);
            if (carry_over_source(fs, s->current, i) != 0)
                return TF_ENOMEM;
        }
    }
    if (s->default_cert != NULL) {
        int rc = tf_cs__scan_source(fs, s->default_cert, SIZE_MAX, why, sizeof why);
        if (rc == TF_ENOMEM)
            return rc;
        /* A missing default file is reported once, by pick_default(). */
    }
    tf_cs__files_sort_unique(fs);
    return 0;
}

#define EXPIRY_WARNING_S (30 * 86400)

/* The dates at which a bundle's judgement changes: valid from, expiring
 * within 30 days, expired. */
static void bundle_dates(const tf_cs_bundle_t *b, time_t d[3])
{
    d[0] = tf_cs_bundle_not_before(b);
    d[1] = tf_cs_bundle_not_after(b) - EXPIRY_WARNING_S;
    d[2] = tf_cs_bundle_not_after(b) + 1;
}

/* An unchanged file is parsed again when one of its dates passed since its
 * parse, so "expired" and "expiring" appear without a change to the file. */
static bool dates_crossed(const tf_cs_entry_t *e, time_t now)
{
    const tf_cs_bundle_t *b = tf_cs_entry_latest(e);
    time_t d[3];
    if (b == NULL || tf_cs_bundle_chain_len(b) == 0)
        return false;
    bundle_dates(b, d);
    for (int i = 0; i < 3; i++) {
        if (d[i] > e->parsed_at && d[i] <= now)
            return true;
    }
    return false;
}

/* Files unchanged since the last build keep their entry; the others become
 * parse jobs. */
static void reuse_or_queue(tf_cs_store_t *s, const tf_cs__files_t *fs, time_t now,
                           tf_cs_snapshot_t *snap, parse_queue_t *q)
{
    for (size_t i = 0; i < fs->n; i++) {
        tf_cs_entry_t *old = find_entry(s->current, fs->v[i].path);
        if (old != NULL && tf_cs__fp_equal(&old->file, &fs->v[i]) && !dates_crossed(old, now)) {
            snap->entries[i] = entry_ref(old);
            snap->stats.reused++;
            continue;
        }
        q->jobs[q->n++] = (parse_job_t){.file = &fs->v[i], .old = old};
    }
}

/* Turns the scanned files into entries: unchanged ones reused, the rest
 * parsed. A file that fails keeps its last good bundle. */
static int make_entries(tf_cs_store_t *s, const tf_cs__files_t *fs, time_t now,
                        tf_cs_snapshot_t *snap)
{
    parse_queue_t q = {.opts = {.trust = s->trust, .intern = s->intern, .now = now}};
    int rc = 0;

    snap->entries = calloc(fs->n ? fs->n : 1, sizeof *snap->entries);
    q.jobs = calloc(fs->n ? fs->n : 1, sizeof *q.jobs);
    if (snap->entries == NULL || q.jobs == NULL) {
        free(q.jobs);
        return TF_ENOMEM;
    }
    reuse_or_queue(s, fs, now, snap, &q);
    atomic_init(&q.next, 0);
    parse_all(&q, s->threads);
    snap->stats.parsed = q.n;

    size_t j = 0;
    for (size_t i = 0; i < fs->n; i++) {
        if (snap->entries[i] != NULL)
            continue;
        parse_job_t *job = &q.jobs[j++];
        bool ok = job->rc == 0 && job->bundle != NULL;
        /* Out of memory is not the file's fault: fail the build, keep the old. */
        if (job->bundle == NULL && job->rc == TF_ENOMEM)
            rc = TF_ENOMEM;
        tf_cs_bundle_t *served = ok ? job->bundle : (job->old ? job->old->served : NULL);
        snap->entries[i] = entry_new(job->file, now, served, ok ? NULL : job->bundle);
        if (snap->entries[i] == NULL)
            rc = TF_ENOMEM;
    }
    snap->n = fs->n;
    for (size_t i = 0; i < q.n; i++)
        tf_cs_bundle_unref(q.jobs[i].bundle);
    free(q.jobs);
    return rc;
}

static void pick_default(tf_cs_store_t *s, tf_cs_snapshot_t *snap)
{
    if (s->default_cert == NULL)
        return;
    tf_cs_entry_t *e = find_entry(snap, s->default_cert);
    if (e != NULL && e->served != NULL) {
        snap->default_entry = entry_ref(e);
        return;
    }
    tf_cs_entry_t *old = s->current != NULL ? s->current->default_entry : NULL;
    if (old != NULL && old->served != NULL) {
        snap->default_entry = entry_ref(old);
        note_source(snap, TF_CS_NOTE_DEFAULT_CERT,
                    "%s: the default certificate cannot be loaded now; still serving the "
                    "version loaded earlier: restore or fix the file",
                    s->default_cert);
        return;
    }
    note_source(snap, TF_CS_NOTE_DEFAULT_CERT,
                "%s: no usable default certificate: clients without SNI and unknown names "
                "cannot be served; fix tls.default_cert (run 'tlsfront cert %s')",
                s->default_cert, s->default_cert);
}

static const char *conflict_reason(tf_cs__conflict_reason_t r)
{
    switch (r) {
    case TF_CS_CONFLICT_VALID_NOW:
        return "it is valid now and the other is not";
    case TF_CS_CONFLICT_NOT_AFTER:
        return "it expires later";
    default:
        return "both expire together; the first in path order wins";
    }
}

static void on_conflict(const char *name, void *winner, void *loser,
                        tf_cs__conflict_reason_t reason, void *ud)
{
    note(ud, false, "%s: covered by %s and %s; serving %s because %s", name,
         tf_cs_bundle_name(winner), tf_cs_bundle_name(loser), tf_cs_bundle_name(winner),
         conflict_reason(reason));
}

static int add_names(tf_cs__index_builder_t *b, const tf_cs_bundle_t *bundle)
{
    size_t n = tf_cs_bundle_name_count(bundle);
    for (size_t i = 0; i < n; i++) {
        int rc = tf_cs__index_builder_add(b, tf_cs_bundle_name_at(bundle, i), (void *)bundle,
                                          (int64_t)tf_cs_bundle_not_before(bundle),
                                          (int64_t)tf_cs_bundle_not_after(bundle));
        /* Invalid names were reported when the bundle was loaded. */
        if (rc != 0 && rc != TF_EINVAL)
            return rc;
    }
    return 0;
}

static int build_index(tf_cs_snapshot_t *snap, time_t now)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    if (b == NULL)
        return TF_ENOMEM;
    int rc = 0;
    bool default_listed = false;
    for (size_t i = 0; rc == 0 && i < snap->n; i++) {
        if (snap->entries[i]->served == NULL)
            continue;
        default_listed |= snap->entries[i] == snap->default_entry;
        rc = add_names(b, snap->entries[i]->served);
    }
    /* A default kept from an earlier build is not among the entries. */
    if (rc == 0 && snap->default_entry != NULL && !default_listed)
        rc = add_names(b, snap->default_entry->served);
    if (rc != 0) {
        tf_cs__index_builder_free(b);
        return rc;
    }
    rc = tf_cs__index_build(b, (int64_t)now, &snap->index, on_conflict, snap);
    if (rc == 0)
        snap->stats.names =
            tf_cs__index_exact_count(snap->index) + tf_cs__index_wildcard_count(snap->index);
    return rc;
}

/* Counts, the notes every build repeats (so the current snapshot always
 * says why a file is not what is served), and the next date at which a
 * rebuild could select or judge differently. */
static void count_stats(tf_cs_snapshot_t *snap, time_t now)
{
    snap->stats.files = snap->n;
    for (size_t i = 0; i < snap->n; i++) {
        const tf_cs_entry_t *e = snap->entries[i];
        snap->stats.served += e->served != NULL;
        snap->stats.failed += e->failed != NULL;
        snap->stats.kept_last_good += e->failed != NULL && e->served != NULL;
        if (e->failed != NULL && e->served != NULL)
            note(snap, false, "%s: the new version is rejected; still serving the version "
                              "loaded earlier: fix the file, the store picks it up when it "
                              "changes",
                 e->file.path);
        time_t d[3];
        if (e->served == NULL)
            continue;
        bundle_dates(e->served, d);
        for (int k = 0; k < 3; k++) {
            if (d[k] > now && (snap->next_change == 0 || d[k] < snap->next_change))
                snap->next_change = d[k];
        }
    }
}

int tf_cs_store_build(tf_cs_store_t *s, time_t now, tf_cs_snapshot_t **out)
{
    tf_cs__files_t fs = {0};
    tf_cs_snapshot_t *snap = calloc(1, sizeof *snap);
    int rc = TF_ENOMEM;

    if (snap == NULL)
        return TF_ENOMEM;
    atomic_init(&snap->refs, 1);
    if (now == 0)
        now = time(NULL);
    if (s->trust_note != NULL)
        note(snap, false, "%s", s->trust_note);
    rc = scan_all(s, &fs, snap);
    if (rc == 0)
        rc = make_entries(s, &fs, now, snap);
    if (rc == 0)
        pick_default(s, snap);
    if (rc == 0)
        rc = build_index(snap, now);
    tf_cs__files_dispose(&fs);
    if (rc != 0) {
        tf_cs_snapshot_unref(snap);
        return rc;
    }
    count_stats(snap, now);
    s->stats.builds++;
    s->stats.files_parsed += snap->stats.parsed;
    s->stats.files_reused += snap->stats.reused;

    tf_cs_snapshot_unref(s->current);
    s->current = tf_cs_snapshot_ref(snap);
    /* Intermediates that only dropped bundles used go now; bundles still
     * held by older snapshots keep their own references. */
    tf_cs_intern_sweep(s->intern);
    *out = snap;
    return 0;
}
