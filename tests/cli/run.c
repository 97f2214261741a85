#include "run.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        abort();
    lseek(fd, 0, SEEK_SET);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (buf == NULL)
                abort();
        }
    }
    buf[len] = '\0';
    return buf;
}

/* Output goes to unlinked temporary files rather than pipes, so a chatty
 * child can never block on a full pipe while we wait for it. */
static int temp_fd(void)
{
    char path[] = "/tmp/tf-cli-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

int tf_run(tf_run_t *r, const char *const *argv)
{
    const char *bin = getenv("TF_TLSFRONT");
    if (bin == NULL)
        return -1;
    size_t n = 0;
    while (argv[n] != NULL)
        n++;
    char **args = calloc(n + 1, sizeof *args);
    if (args == NULL)
        return -1;
    args[0] = (char *)bin;
    for (size_t i = 1; i < n; i++)
        args[i] = (char *)argv[i];

    int out = temp_fd(), err = temp_fd();
    pid_t pid = (out < 0 || err < 0) ? -1 : fork();
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execv(bin, args);
        _exit(127);
    }
    free(args);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
        if (out >= 0)
            close(out);
        if (err >= 0)
            close(err);
        return -1;
    }
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r->out = slurp_fd(out);
    r->err = slurp_fd(err);
    close(out);
    close(err);
    return 0;
}

void tf_run_dispose(tf_run_t *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

char *tf_run_tempfile(const char *name, const char *text)
{
    char dir[] = "/tmp/tf-cli-dir-XXXXXX";
    if (mkdtemp(dir) == NULL)
        abort();
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    if (path == NULL)
        abort();
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
    return path;
}
