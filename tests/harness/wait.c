/* See harness.h: waits on events, each with a deadline. Files are watched
 * through inotify on their directory (so that a file created or renamed
 * into place wakes the wait too); children through a pidfd. */
#include "harness_internal.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct tf_px_watch {
    int fd;
};

long long tf_px_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

tf_px_watch_t *tf_px_watch(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    tf_px_watch_t *w = malloc(sizeof *w);
    cr_assert_not_null(w);
    w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    cr_assert_geq(w->fd, 0, "inotify_init1: %s", strerror(errno));
    uint32_t mask = IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE;
    cr_assert_geq(inotify_add_watch(w->fd, dir, mask), 0, "inotify on %s: %s", dir,
                  strerror(errno));
    return w;
}

/* Returns at the first change after the last wait (every event that
 * arrived meanwhile is taken at once: a burst of writes is one wake). */
bool tf_px_watch_wait(tf_px_watch_t *w, int ms)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    int n = poll(&p, 1, ms < 0 ? 0 : ms);
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(w->fd, buf, sizeof buf) > 0)
        continue;
    return n > 0;
}

void tf_px_watch_free(tf_px_watch_t *w)
{
    if (w == NULL)
        return;
    close(w->fd);
    free(w);
}

/* A file read as it grows: only the bytes appended since the last look are
 * read (a debug log under load grows by the megabyte); a file that shrank or
 * was replaced is read again from the start. */
typedef struct {
    char *buf;
    size_t len, cap;
    ino_t ino;
} tail_t;

static void tail_refresh(tail_t *t, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        t->len = 0;
        return;
    }
    if (st.st_ino != t->ino || (size_t)st.st_size < t->len) {
        t->len = 0;
        t->ino = st.st_ino;
    }
    for (;;) {
        if (t->cap - t->len < 65537) {
            t->cap = t->cap * 2 + 65537;
            t->buf = realloc(t->buf, t->cap);
            cr_assert_not_null(t->buf);
        }
        ssize_t n = pread(fd, t->buf + t->len, t->cap - t->len - 1, (off_t)t->len);
        if (n <= 0)
            break;
        t->len += (size_t)n;
    }
    close(fd);
    t->buf[t->len] = '\0';
}

typedef bool (*until_fn)(const char *text, const void *arg);

/* Waits until done(contents) or ms passed, or (pidfd >= 0) that process
 * exited; returns the last contents (malloc'd) and *ok. */
static char *wait_until(const char *path, until_fn done, const void *arg, int ms, int pidfd,
                        bool *ok)
{
    tf_px_watch_t *w = tf_px_watch(path); /* before the first look: no change is missed */
    tail_t t = {.buf = NULL, .len = 0, .cap = 0, .ino = 0};
    long long deadline = tf_px_now_ms() + ms;
    *ok = false;
    for (;;) {
        tail_refresh(&t, path);
        if (done(t.len > 0 ? t.buf : "", arg)) {
            *ok = true;
            break;
        }
        long long left = deadline - tf_px_now_ms();
        if (left <= 0)
            break;
        struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
        int n = poll(p, pidfd >= 0 ? 2 : 1, (int)left);
        if (n > 0 && pidfd >= 0 && p[1].revents != 0) {
            tail_refresh(&t, path);
            *ok = done(t.len > 0 ? t.buf : "", arg);
            break;
        }
        tf_px_watch_wait(w, 0);
    }
    tf_px_watch_free(w);
    char *out = strdup(t.len > 0 ? t.buf : "");
    free(t.buf);
    return out;
}

typedef struct {
    const char *needle, *needle2;
    unsigned count;
} needles_t;

static bool has_needles(const char *text, const void *arg)
{
    const needles_t *n = arg;
    if (n->needle2 != NULL && strstr(text, n->needle2) != NULL)
        return true;
    return tf_px_count(text, n->needle) >= n->count;
}

char *tf_px_wait_file(const char *path, const char *needle, const char *needle2)
{
    needles_t n = {.needle = needle, .needle2 = needle2, .count = 1};
    bool ok;
    return wait_until(path, has_needles, &n, TF_PX_WAIT_MS, -1, &ok);
}

bool tf_px_wait_count(const char *path, const char *needle, unsigned count, int ms)
{
    needles_t n = {.needle = needle, .needle2 = NULL, .count = count};
    bool ok;
    free(wait_until(path, has_needles, &n, ms, -1, &ok));
    return ok;
}

bool tf_px_wait_log(const tf_px_t *px, const char *needle)
{
    return tf_px_wait_count(px->log, needle, 1, TF_PX_WAIT_MS);
}

static bool non_empty(const char *text, const void *arg)
{
    (void)arg;
    return text[0] != '\0';
}

int tf_px__pidfd(pid_t pid)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    cr_assert(fd >= 0 || errno == ESRCH, "pidfd_open: %s (Linux 5.3 or later)", strerror(errno));
    return fd;
}

bool tf_px__wait_ready(const tf_px_t *px, int pidfd, char **ready)
{
    bool ok;
    long long start = tf_px_now_ms();
    *ready = wait_until(px->ready, non_empty, NULL, TF_PX_WAIT_MS, pidfd, &ok);
    if (!ok)
        return false;
    /* The ready file is written before the workers start (and before a
     * `user:` switch): tests that look at the process itself want it to
     * run. */
    needles_t n = {.needle = "tlsfront running (pid", .needle2 = NULL, .count = 1};
    int left = TF_PX_WAIT_MS - (int)(tf_px_now_ms() - start);
    free(wait_until(px->log, has_needles, &n, left, pidfd, &ok));
    return ok;
}

int tf_px_wait_exit(pid_t pid, int ms)
{
    int fd = tf_px__pidfd(pid);
    if (fd >= 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, ms);
        close(fd);
    }
    int st;
    pid_t got = waitpid(pid, &st, WNOHANG);
    if (got == 0 || (got < 0 && errno != ECHILD)) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return 128 + SIGKILL;
    }
    if (got < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
