/* http-01 answers shared through acme.storage. See acme.h.
 *
 * Several instances behind one L4 balancer share acme.storage; the CA's
 * validation request may reach any of them, but only the ordering one holds
 * the answer in memory. The answer is therefore also written as a file that
 * every instance's listen.http reads when its own table has nothing (as
 * Caddy keeps challenge answers in its shared storage). */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHARED_DIR "challenges/http-01"
/* A key authorization is the token, a dot and a 43-character thumbprint. */
#define TOKEN_MAX 256
#define ANSWER_MAX (TOKEN_MAX + 1 + TF_ACME_THUMBPRINT_LEN)
/* Answers left behind by a process that died during an order: no
 * authorization stays pending for this long. */
#define STALE_S (7 * 86400)

static bool b64url_chars(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

static bool token_ok(const char *token)
{
    size_t n = strlen(token);
    return n > 0 && n <= TOKEN_MAX && b64url_chars(token, n);
}

static int answer_path(const char *storage, const char *token, char *out, size_t len)
{
    if (!token_ok(token))
        return TF_EINVAL;
    int n = snprintf(out, len, "%s/" SHARED_DIR "/%s", storage, token);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Removes answers older than STALE_S (best effort). */
static void sweep(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    time_t limit = time(NULL) - STALE_S;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode) && st.st_mtime < limit)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

int tf_acme_http01_share(const char *storage, const char *token, const char *key_auth)
{
    char path[TF_ACME_PATH_MAX];
    int rc = answer_path(storage, token, path, sizeof path);
    if (rc != 0)
        return rc;
    size_t len = strlen(key_auth);
    if (len == 0 || len > ANSWER_MAX)
        return TF_EINVAL;
    char *slash = strrchr(path, '/');
    *slash = '\0';
    rc = tf_acme__mkdirs(path, 0700);
    if (rc == 0)
        sweep(path);
    *slash = '/';
    return rc != 0 ? rc : tf_acme__write_atomic(path, key_auth, len, 0600, false);
}

void tf_acme_http01_unshare(const char *storage, const char *token)
{
    char path[TF_ACME_PATH_MAX];
    if (answer_path(storage, token, path, sizeof path) == 0)
        unlink(path);
}

/* Opens STORAGE/challenges/http-01/TOKEN, each component below STORAGE
 * without following a symlink, the file without blocking (a FIFO planted
 * there must not hold the caller's loop). An fd or -errno. */
static int open_answer(const char *storage, const char *token)
{
    int fd = -1, dir = open(storage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char *const parts[] = {"challenges", "http-01"};
    for (size_t i = 0; dir >= 0 && i < 2; i++) {
        int next = openat(dir, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(dir);
        dir = next;
    }
    if (dir >= 0) {
        fd = openat(dir, token, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        close(dir);
    }
    return fd >= 0 ? fd : -errno;
}

int tf_acme_http01_shared_get(const char *storage, const char *token, char **key_auth, size_t *len)
{
    *key_auth = NULL;
    if (storage == NULL || !token_ok(token))
        return TF_ENOTFOUND;
    int fd = open_answer(storage, token);
    if (fd < 0)
        return fd == -ENOMEM ? TF_ENOMEM : TF_ENOTFOUND;
    char buf[ANSWER_MAX + 1];
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= ANSWER_MAX)
        n = read(fd, buf, sizeof buf - 1);
    close(fd);
    size_t tlen = strlen(token), want = tlen + 1 + TF_ACME_THUMBPRINT_LEN;
    /* Only the answer to this token, exactly: TOKEN "." thumbprint, nothing
     * else (these bytes go to whoever asks). */
    if (n != (ssize_t)want || memcmp(buf, token, tlen) != 0 || buf[tlen] != '.' ||
        !b64url_chars(buf + tlen + 1, TF_ACME_THUMBPRINT_LEN))
        return TF_ENOTFOUND;
    if ((*key_auth = malloc(want + 1)) == NULL)
        return TF_ENOMEM;
    memcpy(*key_auth, buf, want);
    (*key_auth)[want] = '\0';
    *len = want;
    return 0;
}
