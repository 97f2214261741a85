/* `tlsfront check` with `user:` set: can that user still read what tlsfront reads after it
 * switches users? `run` reads the certificates, the ticket keys and the token file at start,
 * as the user that started it (root, to bind port 443), then drops to `user:`; from then on
 * every reload, watched change, upload and renewal reads them as that user. A key file only
 * root may read (certbot's live/ and archive/ are 0700) then loads at start and is never
 * reloaded: the renewed certificate stays unserved until a restart. This says so at check
 * time. It compares the owner, group and mode bits with the user's uid and groups, as the
 * kernel would without ACLs or capabilities, along every directory of the path too. */
#include "proxy/cli/check_user.h"

#include "proxy/ops/ops.h"

#include <dirent.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_GROUPS 256

typedef struct {
    const tf_conf_t *conf;
    const char *name;
    uid_t uid;
    gid_t groups[MAX_GROUPS];
    int ngroups;
    size_t warned;
} who_t;

enum { MAY_X = 1, MAY_W = 2, MAY_R = 4 };

/* The kernel looks at one class only: the owner's bits when the user owns the file, else
 * the group's when one of its groups does, else the others'. */
static bool who_may(const who_t *w, const struct stat *st, int want)
{
    int shift = 0;
    if (st->st_uid == w->uid) {
        shift = 6;
    } else {
        for (int i = 0; i < w->ngroups; i++) {
            if (w->groups[i] == st->st_gid) {
                shift = 3;
                break;
            }
        }
    }
    return (((unsigned)st->st_mode >> shift) & (unsigned)want) == (unsigned)want;
}

/* The first directory on the way to PATH (an absolute path) that the user cannot search,
 * copied into BUF; false when every one can be. */
static bool blocked_dir(const who_t *w, const char *path, char *buf, size_t len)
{
    if (path[0] != '/' || strlen(path) >= len)
        return false;
    strcpy(buf, path);
    for (char *slash = strchr(buf + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        struct stat st;
        bool blocked = stat(buf, &st) == 0 && S_ISDIR(st.st_mode) && !who_may(w, &st, MAY_X);
        if (blocked)
            return true;
        *slash = '/';
    }
    return false;
}

static const char *verb_of(int want)
{
    return want == (MAY_R | MAY_W | MAY_X) ? "write into"
           : want == (MAY_R | MAY_X)       ? "list"
                                           : "read";
}

static void warn(who_t *w, const char *where, const char *path, int want, const char *why)
{
    fprintf(stderr,
            "warning: %s%s: user '%s' cannot %s it (%s): tlsfront opens it as '%s' once it has "
            "switched users (reloads, renewals, uploads), so a new version would not be served "
            "until a restart; let '%s' %s it (e.g. chgrp %s and chmod g+r%s, and g+x on the "
            "directories above), or start tlsfront as '%s' without 'user:' (the Debian "
            "package's unit does)\n",
            where, path, w->name, verb_of(want), why, w->name, w->name, verb_of(want), w->name,
            (want & MAY_W)   ? "wx"
            : (want & MAY_X) ? "x"
                             : "",
            w->name);
    w->warned++;
}

/* Whether the user may WANT path (stat()ed as ST), along the path as written and along
 * the one its symbolic links resolve to. */
static void check_path(who_t *w, const char *where, const char *path, const struct stat *st,
                       int want)
{
    char dir[PATH_MAX], real[PATH_MAX], why[PATH_MAX + 128];
    struct passwd *pw = getpwuid(st->st_uid);
    struct group *gr = getgrgid(st->st_gid);
    bool blocked = blocked_dir(w, path, dir, sizeof dir) ||
                   (realpath(path, real) != NULL && blocked_dir(w, real, dir, sizeof dir));
    if (blocked)
        snprintf(why, sizeof why, "the directory %s is closed to it", dir);
    else if (!who_may(w, st, want))
        snprintf(why, sizeof why, "owner %s:%s, mode %04o", pw ? pw->pw_name : "?",
                 gr ? gr->gr_name : "?", (unsigned)st->st_mode & 07777);
    else
        return;
    warn(w, where, path, want, why);
}

static bool is_bundle_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot != NULL &&
           (strcasecmp(dot, ".pem") == 0 || strcasecmp(dot, ".crt") == 0 ||
            strcasecmp(dot, ".cer") == 0 || strcasecmp(dot, ".key") == 0);
}

/* A directory source: the directory itself, then each file the store would read from it
 * (bundles and their sibling keys). */
static void check_dir(who_t *w, const char *where, const char *dir, const struct stat *st)
{
    check_path(w, where, dir, st, MAY_R | MAY_X);
    DIR *d = opendir(dir);
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        char path[PATH_MAX];
        struct stat fst;
        if (!is_bundle_name(e->d_name) ||
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            stat(path, &fst) != 0 || !S_ISREG(fst.st_mode))
            continue;
        check_path(w, where, path, &fst, MAY_R);
    }
    if (d != NULL)
        closedir(d);
}

/* KEY's INDEX-th value, PATH: files are read, directories listed (tls.certs) or written
 * into (acme.storage). A path that does not exist is for the other checks. */
static void check_key(who_t *w, const char *key, size_t index, const char *path, bool writes)
{
    char where[TF_WHERE_MAX];
    struct stat st;
    if (path == NULL || stat(path, &st) != 0)
        return;
    tf_where(w->conf, key, index, where);
    if (writes && S_ISDIR(st.st_mode))
        check_path(w, where, path, &st, MAY_R | MAY_W | MAY_X);
    else if (S_ISDIR(st.st_mode))
        check_dir(w, where, path, &st);
    else
        check_path(w, where, path, &st, MAY_R);
}

/* The default certificate usually lies in a tls.certs directory, whose files were
 * checked already. */
static bool in_a_source_dir(const tf_conf_tls_t *tls, const char *file)
{
    const char *slash = file != NULL ? strrchr(file, '/') : NULL;
    for (size_t i = 0; slash != NULL && i < tls->certs.count; i++) {
        const char *dir = tls->certs.items[i];
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
            n--;
        if ((size_t)(slash - file) == n && strncmp(dir, file, n) == 0)
            return true;
    }
    return false;
}

static void check_sources(who_t *w)
{
    const tf_conf_t *conf = w->conf;
    const tf_conf_tls_t *tls = tf_conf_tls(conf);
    for (size_t i = 0; i < tls->certs.count; i++)
        check_key(w, "tls.certs", i, tls->certs.items[i], false);
    if (!in_a_source_dir(tls, tls->default_cert))
        check_key(w, "tls.default_cert", 0, tls->default_cert, false);
    check_key(w, "tls.ticket_keys_file", 0, tls->ticket_keys_file, false);
    if (tf_conf_admin(conf)->enabled)
        check_key(w, "admin.token_file", 0, tf_conf_admin(conf)->token_file, false);
    const tf_conf_acme_t *acme = tf_conf_acme(conf);
    if (acme->directory != NULL)
        check_key(w, "acme.storage", 0, acme->storage, true);
}

size_t tf_cli_check_user(const tf_conf_t *conf, size_t *errors)
{
    const char *user = tf_conf_user(conf);
    if (user == NULL)
        return 0;
    char where[TF_WHERE_MAX];
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        fprintf(stderr,
                "error: %suser '%s' does not exist: tlsfront run would refuse to start; "
                "create it (adduser --system --group %s) or remove 'user:'\n",
                tf_where(conf, "user", 0, where), user, user);
        (*errors)++;
        return 0;
    }
    who_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return 0;
    w->conf = conf;
    w->name = user;
    w->uid = pw->pw_uid;
    w->ngroups = MAX_GROUPS;
    /* Root may read anything: nothing to say. */
    if (pw->pw_uid != 0 && getgrouplist(user, pw->pw_gid, w->groups, &w->ngroups) >= 0)
        check_sources(w);
    size_t warned = w->warned;
    free(w);
    return warned;
}
