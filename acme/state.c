/* The manager's files (acme_internal.h): each name's record in
 * STORAGE/certs/HOST.json, the lock files in STORAGE/locks, and the atomic
 * writes of both the records and the certificates. Several processes may
 * share STORAGE: every file is replaced by a rename, so a reader sees the
 * old or the new one, never a mix. */
#include "acme/acme_internal.h"

#include "common/err.h"
#include "common/file.h"

#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Records are small; a larger file is not one. Certificates too. */
#define RECORD_MAX (64 * 1024)
#define FILE_HASH_MAX (1024 * 1024)

/* ---- directories and files ------------------------------------------------ */

int tf_acme__mkdirs(const char *dir, mode_t mode)
{
    char path[TF_ACME_PATH_MAX];
    if (dir[0] == '\0')
        return -EINVAL;
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, mode) != 0 && errno != EEXIST)
            return -errno;
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int tf_acme__write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          bool noreplace)
{
    char tmp[TF_ACME_PATH_MAX + 32];
    if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    /* O_EXCL with the mode given: the bytes are never readable by others,
     * not even before a chmod. */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = fchmod(fd, mode) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = tf_write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && noreplace && link(tmp, path) != 0)
        rc = -errno;
    else if (rc == 0 && !noreplace && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0 || noreplace)
        unlink(tmp);
    return rc != 0 ? rc : tf_fsync_parent(path);
}

static char *read_small(const char *path, size_t max, size_t *len, int *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = 0;
    *err = buf != NULL ? 0 : TF_ENOMEM;
    while (*err == 0) {
        ssize_t got = read(fd, buf + n, max + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            *err = -errno;
        else if (got == 0)
            break;
        else if ((n += (size_t)got) > max)
            *err = TF_ETOOBIG;
    }
    close(fd);
    if (*err != 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int tf_acme__sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char h[WC_SHA256_DIGEST_SIZE];
    if (wc_Sha256Hash(data, (word32)len, h) != 0)
        return TF_ECRYPTO;
    for (size_t i = 0; i < sizeof h; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    return 0;
}

int tf_acme__file_sha256(const char *path, char hex[65])
{
    size_t len = 0;
    int rc;
    char *data = read_small(path, FILE_HASH_MAX, &len, &rc);
    if (data == NULL)
        return rc;
    rc = tf_acme__sha256_hex(data, len, hex);
    /* The file holds a private key. */
    tf_acme_free_secret(data, len);
    return rc;
}

/* ---- locks ----------------------------------------------------------------- */

int tf_acme__lock(const char *storage, const char *host, int *fd)
{
    char path[TF_ACME_PATH_MAX];
    *fd = -1;
    if (snprintf(path, sizeof path, "%s/locks", storage) >= (int)sizeof path)
        return -ENAMETOOLONG;
    int rc = tf_acme__mkdirs(path, 0700);
    if (rc != 0)
        return rc;
    if (snprintf(path, sizeof path, "%s/locks/%s.lock", storage, host) >= (int)sizeof path)
        return -ENAMETOOLONG;
    /* The file stays: removing it would let a process that opened the old
     * one and another that creates a new one both hold "the" lock. */
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0)
        return -errno;
    /* flock locks belong to the open file description: two managers in one
     * process exclude each other as two processes do. */
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? -EAGAIN : -errno;
        close(f);
        return rc;
    }
    *fd = f;
    return 0;
}

void tf_acme__unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* ---- records --------------------------------------------------------------- */

static int record_path(const char *storage, const char *host, char *path, size_t len)
{
    return snprintf(path, len, "%s/certs/%s.json", storage, host) >= (int)len ? -ENAMETOOLONG : 0;
}

static int64_t get_int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static void get_str(const json_t *o, const char *key, char *out, size_t len)
{
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(out, len, "%s", v != NULL ? v : "");
}

static int record_from_json(const json_t *o, tf_acme__record_t *r)
{
    if (!json_is_object(o))
        return TF_EINVAL;
    get_str(o, "path", r->path, sizeof r->path);
    get_str(o, "sha256", r->sha256, sizeof r->sha256);
    r->not_before = get_int(o, "not_before");
    r->not_after = get_int(o, "not_after");
    get_str(o, "pending_sha256", r->pending_sha256, sizeof r->pending_sha256);
    r->pending_not_before = get_int(o, "pending_not_before");
    r->pending_not_after = get_int(o, "pending_not_after");
    const char *url = json_string_value(json_object_get(o, "order_url"));
    if (url != NULL && (r->order_url = strdup(url)) == NULL)
        return TF_ENOMEM;
    r->renew_at = get_int(o, "renew_at");
    r->ari_start = get_int(o, "renewal_info_start");
    r->ari_end = get_int(o, "renewal_info_end");
    r->ari_at = get_int(o, "renewal_info_at");
    r->ari_checked = get_int(o, "renewal_info_checked");
    int64_t failures = get_int(o, "failures");
    r->failures = failures > 0 && failures < 1000 ? (unsigned)failures : 0;
    r->backoff_until = get_int(o, "backoff_until");
    json_t *p = json_object_get(o, "last_problem");
    if (json_is_object(p))
        r->last_problem = json_incref(p);
    return 0;
}

int tf_acme__record_load(const char *storage, const char *host, tf_acme__record_t *r)
{
    memset(r, 0, sizeof *r);
    char path[TF_ACME_PATH_MAX];
    int rc = record_path(storage, host, path, sizeof path);
    size_t len = 0;
    char *text = rc == 0 ? read_small(path, RECORD_MAX, &len, &rc) : NULL;
    if (text == NULL)
        return rc == -ENOENT ? TF_ENOTFOUND : rc;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    rc = record_from_json(doc, r);
    json_decref(doc);
    if (rc != 0) {
        tf_acme__record_dispose(r);
        memset(r, 0, sizeof *r);
    }
    return rc;
}

static json_t *record_to_json(const tf_acme__record_t *r)
{
    json_t *o = json_object();
    int rc = o != NULL ? 0 : -1;
    rc |= json_object_set_new(o, "path", json_string(r->path));
    rc |= json_object_set_new(o, "sha256", json_string(r->sha256));
    rc |= json_object_set_new(o, "not_before", json_integer(r->not_before));
    rc |= json_object_set_new(o, "not_after", json_integer(r->not_after));
    rc |= json_object_set_new(o, "pending_sha256", json_string(r->pending_sha256));
    rc |= json_object_set_new(o, "pending_not_before", json_integer(r->pending_not_before));
    rc |= json_object_set_new(o, "pending_not_after", json_integer(r->pending_not_after));
    rc |= json_object_set_new(o, "order_url",
                              r->order_url != NULL ? json_string(r->order_url) : json_null());
    rc |= json_object_set_new(o, "renew_at", json_integer(r->renew_at));
    rc |= json_object_set_new(o, "renewal_info_start", json_integer(r->ari_start));
    rc |= json_object_set_new(o, "renewal_info_end", json_integer(r->ari_end));
    rc |= json_object_set_new(o, "renewal_info_at", json_integer(r->ari_at));
    rc |= json_object_set_new(o, "renewal_info_checked", json_integer(r->ari_checked));
    rc |= json_object_set_new(o, "failures", json_integer(r->failures));
    rc |= json_object_set_new(o, "backoff_until", json_integer(r->backoff_until));
    rc |= json_object_set_new(o, "last_problem",
                              r->last_problem != NULL ? json_incref(r->last_problem) : json_null());
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int tf_acme__record_save(const char *storage, const char *host, const tf_acme__record_t *r)
{
    char path[TF_ACME_PATH_MAX];
    int rc =
        snprintf(path, sizeof path, "%s/certs", storage) >= (int)sizeof path ? -ENAMETOOLONG : 0;
    if (rc == 0)
        rc = tf_acme__mkdirs(path, 0700);
    if (rc == 0)
        rc = record_path(storage, host, path, sizeof path);
    if (rc != 0)
        return rc;
    json_t *doc = record_to_json(r);
    char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text == NULL)
        return TF_ENOMEM;
    rc = tf_acme__write_atomic(path, text, strlen(text), 0600, false);
    free(text);
    return rc;
}

void tf_acme__record_dispose(tf_acme__record_t *r)
{
    free(r->order_url);
    r->order_url = NULL;
    json_decref(r->last_problem);
    r->last_problem = NULL;
}
