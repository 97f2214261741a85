/* Finding the bundle files of the store's sources and fingerprinting them, so a
 * rebuild re-reads only what changed (SPEC §4.5). See store_internal.h. */
#include "certstore/store_internal.h"

#include "certstore/certstore_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Only these are bundles in a directory; keys, CSRs, OCSP responses, editor
 * backups and dotfiles (Kubernetes' ..data links, vim's .swp) are not. */
static bool is_bundle_name(const char *name)
{
    static const char *const exts[] = {".pem", ".crt", ".cer"};
    size_t len = strlen(name);

    if (name[0] == '.')
        return false;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t el = strlen(exts[i]);
        if (len > el && strcasecmp(name + len - el, exts[i]) == 0)
            return true;
    }
    return false;
}

static void fp_from_stat(tf_cs__fp_t *fp, const struct stat *st)
{
    fp->dev = (uint64_t)st->st_dev;
    fp->ino = (uint64_t)st->st_ino;
    fp->size = (int64_t)st->st_size;
    fp->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    fp->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* NAME.key beside the bundle is part of the file's identity: replacing only
 * the key must trigger a re-parse. */
static void fingerprint_sibling_key(const char *path, tf_cs__fp_t *key_fp)
{
    struct stat st;
    char *key = tf_cs__sibling_key_path(path);

    memset(key_fp, 0, sizeof *key_fp);
    if (key != NULL && stat(key, &st) == 0)
        fp_from_stat(key_fp, &st);
    free(key);
}

bool tf_cs__fp_equal(const tf_cs__file_t *a, const tf_cs__file_t *b)
{
    return memcmp(&a->fp, &b->fp, sizeof a->fp) == 0 &&
           memcmp(&a->key_fp, &b->key_fp, sizeof a->key_fp) == 0;
}

static int files_push(tf_cs__files_t *fs, const char *path, const struct stat *st,
                      size_t source)
{
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 64;
        tf_cs__file_t *v = realloc(fs->v, cap * sizeof *v);
        if (v == NULL)
            return TF_ENOMEM;
        fs->v = v;
        fs->cap = cap;
    }
    tf_cs__file_t *f = &fs->v[fs->n];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (f->path == NULL)
        return TF_ENOMEM;
    f->source = source;
    fp_from_stat(&f->fp, st);
    fingerprint_sibling_key(path, &f->key_fp);
    fs->n++;
    return 0;
}

static int scan_dir(tf_cs__files_t *fs, const char *dir, size_t source, char *why, size_t len)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        int err = -errno;
        snprintf(why, len, "%s: cannot read the directory: %s: check tls.certs and permissions",
                 dir, strerror(-err));
        return err;
    }
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    int rc = 0;
    struct dirent *de;
    char path[4096];
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;
        if (!is_bundle_name(de->d_name))
            continue;
        int n = snprintf(path, sizeof path, "%.*s/%s", (int)dl, dir, de->d_name);
        /* stat, not lstat: symlinks (certbot's live/, Kubernetes secrets)
         * are followed; their target's identity is what changes. */
        if (n <= 0 || (size_t)n >= sizeof path || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        rc = files_push(fs, path, &st, source);
    }
    closedir(d);
    return rc;
}

int tf_cs__scan_source(tf_cs__files_t *fs, const char *src, size_t source, char *why,
                       size_t len)
{
    struct stat st;
    if (stat(src, &st) != 0) {
        int err = -errno;
        snprintf(why, len, "%s: cannot read: %s: check tls.certs", src, strerror(-err));
        return err;
    }
    if (S_ISDIR(st.st_mode))
        return scan_dir(fs, src, source, why, len);
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, len, "%s: not a file or a directory: list bundle files or directories",
                 src);
        return TF_EINVAL;
    }
    return files_push(fs, src, &st, source);
}

/* By path, then source: a file found both in a directory and as
 * tls.default_cert keeps the directory as its source. */
static int cmp_file(const void *a, const void *b)
{
    const tf_cs__file_t *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c != 0)
        return c;
    return x->source < y->source ? -1 : x->source > y->source;
}

void tf_cs__files_sort_unique(tf_cs__files_t *fs)
{
    if (fs->n == 0)
        return;
    qsort(fs->v, fs->n, sizeof *fs->v, cmp_file);
    size_t w = 1;
    for (size_t r = 1; r < fs->n; r++) {
        if (strcmp(fs->v[r].path, fs->v[w - 1].path) == 0) {
            free(fs->v[r].path);
            continue;
        }
        fs->v[w++] = fs->v[r];
    }
    fs->n = w;
}

void tf_cs__files_dispose(tf_cs__files_t *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        free(fs->v[i].path);
    free(fs->v);
    memset(fs, 0, sizeof *fs);
}
