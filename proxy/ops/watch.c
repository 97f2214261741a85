/* See watch.h. Loop thread only. */
#include "proxy/ops/watch.h"

#include "proxy/obs/obs.h"

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define PATH_LEN 4096

enum {
    ROLE_CONTENT = 1, /* a source's directory, or a symlinked bundle's target's */
    ROLE_PARENT = 2,  /* the parent of a source's directory: only that name counts */
};

typedef struct {
    uv_fs_event_t h; /* first: the close callback frees the entry through it */
    dev_t dev;       /* the inode armed: a path that names another is re-armed */
    ino_t ino;
    unsigned roles;
    char *path;
} entry_t;

typedef struct {
    char *path;
    unsigned roles;
    bool armed; /* an entry for it is kept */
} want_t;

typedef struct {
    want_t items[TF_WATCH_MAX];
    size_t n, dropped;
} wants_t;

struct tf_watch {
    uv_loop_t *loop;
    tf_watch_cb cb;
    void *arg;
    entry_t *entries[TF_WATCH_MAX];
    size_t n;
    char **dirs;  /* every source's directory, for the events of their parents */
    char **paths; /* every source's own path (a file, or a directory maybe missing) */
    size_t ndirs; /* entries of both */
};

/* ---- paths -------------------------------------------------------------- */

/* The path without trailing slashes ("/" stays). */
static void trim(const char *in, char *out)
{
    snprintf(out, PATH_LEN, "%s", in);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* The directory part of a trimmed path, "." for a bare name. */
static void parent_of(const char *path, char *out)
{
    snprintf(out, PATH_LEN, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash == out)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    else
        snprintf(out, PATH_LEN, ".");
}

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The names the store reads (and sibling keys), not dotfiles. */
static bool is_bundle_name(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.' || n < 5)
        return false;
    const char *ext = name + n - 4;
    return strcasecmp(ext, ".pem") == 0 || strcasecmp(ext, ".crt") == 0 ||
           strcasecmp(ext, ".cer") == 0 || strcasecmp(ext, ".key") == 0;
}

/* ---- what to watch ------------------------------------------------------ */

static void want(wants_t *ws, const char *path, unsigned roles)
{
    for (size_t i = 0; i < ws->n; i++) {
        if (strcmp(ws->items[i].path, path) == 0) {
            ws->items[i].roles |= roles;
            return;
        }
    }
    char *copy = ws->n < TF_WATCH_MAX ? strdup(path) : NULL;
    if (copy == NULL) {
        ws->dropped++; /* the periodic re-check still sees it */
        return;
    }
    ws->items[ws->n++] = (want_t){.path = copy, .roles = roles};
}

/* A symlink's target lives in a directory of its own (certbot's archive/,
 * Kubernetes' timestamped directory): a file replaced there changes what
 * the link serves without an event beside the link. */
static void want_link_target(wants_t *ws, const char *link)
{
    char real[PATH_MAX], dir[PATH_LEN];
    if (realpath(link, real) == NULL)
        return;
    parent_of(real, dir);
    want(ws, dir, ROLE_CONTENT);
}

static void want_links_in(wants_t *ws, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    char path[PATH_LEN];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!is_bundle_name(e->d_name))
            continue;
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (n < 0 || (size_t)n >= sizeof path)
            continue;
        if (e->d_type == DT_LNK ||
            (e->d_type == DT_UNKNOWN && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)))
            want_link_target(ws, path);
    }
    closedir(d);
}

/* The directory a source's changes show in: itself, or a file's parent (a
 * file replaced by rename gets a new inode that a watch on it would miss).
 * A path that does not exist (yet) counts as a file: its parent then sees it
 * appear. Returns whether the source is a directory. */
static bool source_dir(const char *source, char *path, char *dir)
{
    trim(source, path);
    bool d = is_dir(path);
    if (d)
        snprintf(dir, PATH_LEN, "%s", path);
    else
        parent_of(path, dir);
    return d;
}

static void want_source(wants_t *ws, const char *source)
{
    char path[PATH_LEN], dir[PATH_LEN], parent[PATH_LEN];
    struct stat st;
    bool source_is_dir = source_dir(source, path, dir);
    want(ws, dir, ROLE_CONTENT);
    parent_of(dir, parent);
    if (strcmp(parent, dir) != 0)
        want(ws, parent, ROLE_PARENT);
    if (source_is_dir)
        want_links_in(ws, dir);
    else if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        want_link_target(ws, path);
}

/* ---- events ------------------------------------------------------------- */

/* Whether an entry of a source directory's parent is one of the sources'
 * directories: the directory itself replaced, renamed or created. */
static bool names_a_source_dir(const tf_watch_t *w, const char *parent, const char *name)
{
    char p[PATH_LEN];
    for (size_t i = 0; i < w->ndirs; i++) {
        parent_of(w->dirs[i], p);
        if (strcmp(p, parent) == 0 && strcmp(base_of(w->dirs[i]), name) == 0)
            return true;
    }
    return false;
}

/* Whether an entry of a watched directory is a configured source itself: a
 * bundle named in tls.certs, or a source directory that is missing and
 * appears. */
static bool names_a_source(const tf_watch_t *w, const char *dir, const char *name)
{
    char p[PATH_LEN];
    for (size_t i = 0; i < w->ndirs; i++) {
        parent_of(w->paths[i], p);
        if (strcmp(p, dir) == 0 && strcmp(base_of(w->paths[i]), name) == 0)
            return true;
    }
    return false;
}

/* Only what the store reads counts. Anything else (a log or a ready file
 * beside a certificate directory, whose every write is an event) would
 * otherwise reload for nothing, and at log level debug the event's own log
 * line would be the next event. */
static bool relevant(const tf_watch_t *w, const entry_t *e, const char *name)
{
    if ((e->roles & ROLE_PARENT) && names_a_source_dir(w, e->path, name))
        return true;
    if (!(e->roles & ROLE_CONTENT))
        return false;
    if (name[0] == '\0' || is_bundle_name(name) || names_a_source(w, e->path, name))
        return true;
    if (name[0] != '.')
        return false;
    /* Dotfiles are editors' and uploads' temporary files, which the store
     * skips too; but a dot-named directory (or a link to one) is how
     * Kubernetes swaps a volume's content: `..data` renamed over. */
    char path[PATH_LEN];
    int n = snprintf(path, sizeof path, "%s/%s", e->path, name);
    return n > 0 && (size_t)n < sizeof path && is_dir(path);
}

static void watch_on_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    (void)events;
    entry_t *e = (entry_t *)h;
    tf_watch_t *w = h->data;
    /* No name: the directory itself changed (deleted, moved). */
    const char *what = name != NULL ? name : "";
    if (status < 0 || !relevant(w, e, what))
        return;
    TF_LOG(TF_LOG_DEBUG, "certificate watch: %s: %s changed", e->path, what);
    w->cb(w->arg, e->path, what);
}

/* ---- arming ------------------------------------------------------------- */

static void entry_on_closed(uv_handle_t *h)
{
    entry_t *e = (entry_t *)h;
    free(e->path);
    free(e);
}

static void entry_close(entry_t *e)
{
    uv_close((uv_handle_t *)&e->h, entry_on_closed);
}

/* Stat first, then watch: if the path is replaced in between, the inode
 * recorded is the old one and the next sync re-arms (the other order could
 * record the new inode over a watch on the old one, and keep it). */
static void arm(tf_watch_t *w, const want_t *wt)
{
    struct stat st;
    if (stat(wt->path, &st) != 0 || !S_ISDIR(st.st_mode))
        return; /* not there (yet): its parent's watch sees it appear */
    entry_t *e = calloc(1, sizeof *e);
    if (e == NULL || (e->path = strdup(wt->path)) == NULL) {
        free(e);
        return; /* the periodic re-check still sees changes */
    }
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->roles = wt->roles;
    uv_fs_event_init(w->loop, &e->h);
    e->h.data = w;
    int rc = uv_fs_event_start(&e->h, watch_on_event, wt->path, 0);
    if (rc != 0) {
        TF_LOG(TF_LOG_WARN, "%s: cannot watch: %s; changes are picked up by the periodic check",
               wt->path, uv_strerror(rc));
        entry_close(e);
        return;
    }
    w->entries[w->n++] = e;
    TF_LOG(TF_LOG_DEBUG, "watching %s", wt->path);
}

/* Whether an armed entry still watches what its path names, as wanted. */
static want_t *still_wanted(wants_t *ws, const entry_t *e)
{
    struct stat st;
    for (size_t i = 0; i < ws->n; i++) {
        if (strcmp(ws->items[i].path, e->path) != 0)
            continue;
        bool same = stat(e->path, &st) == 0 && st.st_dev == e->dev && st.st_ino == e->ino;
        return same ? &ws->items[i] : NULL;
    }
    return NULL;
}

static void clear_dirs(tf_watch_t *w)
{
    for (size_t i = 0; i < w->ndirs; i++) {
        free(w->dirs[i]);
        free(w->paths[i]);
    }
    free(w->dirs);
    free(w->paths);
    w->dirs = w->paths = NULL;
    w->ndirs = 0;
}

static void set_dirs(tf_watch_t *w, const tf_conf_t *conf)
{
    clear_dirs(w);
    const tf_conf_tls_t *tls = tf_conf_tls(conf);
    size_t n = tls->certs.count + (tls->default_cert != NULL);
    w->dirs = calloc(n ? n : 1, sizeof *w->dirs);
    w->paths = calloc(n ? n : 1, sizeof *w->paths);
    if (w->dirs == NULL || w->paths == NULL)
        return;
    char path[PATH_LEN], dir[PATH_LEN];
    for (size_t i = 0; i < n; i++) {
        source_dir(i < tls->certs.count ? tls->certs.items[i] : tls->default_cert, path, dir);
        char *d = strdup(dir), *p = strdup(path);
        if (d == NULL || p == NULL) {
            free(d);
            free(p);
            continue;
        }
        w->dirs[w->ndirs] = d;
        w->paths[w->ndirs++] = p;
    }
}

void tf_watch_sync(tf_watch_t *w, const tf_conf_t *conf)
{
    wants_t *ws = calloc(1, sizeof *ws);
    if (ws == NULL)
        return; /* the watches armed stay; the periodic re-check remains */
    const tf_conf_tls_t *tls = tf_conf_tls(conf);
    for (size_t i = 0; i < tls->certs.count; i++)
        want_source(ws, tls->certs.items[i]);
    if (tls->default_cert != NULL)
        want_source(ws, tls->default_cert);
    size_t kept = 0;
    for (size_t i = 0; i < w->n; i++) {
        want_t *wt = still_wanted(ws, w->entries[i]);
        if (wt == NULL) {
            entry_close(w->entries[i]);
            continue;
        }
        wt->armed = true;
        w->entries[i]->roles = wt->roles;
        w->entries[kept++] = w->entries[i];
    }
    w->n = kept;
    for (size_t i = 0; i < ws->n; i++) {
        if (!ws->items[i].armed)
            arm(w, &ws->items[i]);
        free(ws->items[i].path);
    }
    if (ws->dropped > 0)
        TF_LOG(TF_LOG_WARN,
               "%zu directories not watched (more than %d): their changes are picked up by the "
               "periodic check",
               ws->dropped, TF_WATCH_MAX);
    free(ws);
    set_dirs(w, conf);
}

tf_watch_t *tf_watch_new(uv_loop_t *loop, tf_watch_cb cb, void *arg)
{
    tf_watch_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        fprintf(stderr, "tlsfront: out of memory\n");
        abort();
    }
    w->loop = loop;
    w->cb = cb;
    w->arg = arg;
    return w;
}

void tf_watch_free(tf_watch_t *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++)
        entry_close(w->entries[i]);
    clear_dirs(w);
    free(w);
}
