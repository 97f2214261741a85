/* See harness.h: child processes and shell commands. */
#include "harness_internal.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tf_px_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert_not_null(v, "%s is not set", name);
    return v;
}

void tf_px_init(tf_px_t *px, const char *prefix)
{
    memset(px, 0, sizeof *px);
    px->backend_stdin = px->echo_stdin = -1;
    snprintf(px->tmp, sizeof px->tmp, "/tmp/%s-XXXXXX", prefix);
    cr_assert_not_null(mkdtemp(px->tmp));
    snprintf(px->log, sizeof px->log, "%s/tlsfront.log", px->tmp);
    snprintf(px->ready, sizeof px->ready, "%s/tlsfront.ready", px->tmp);
}

void tf_px_demo_pki(tf_px_t *px)
{
    snprintf(px->demo, sizeof px->demo, "%s/tests/proxy-demo", tf_px_env("TF_BUILD_DIR"));
    char cmd[5000];
    /* Parallel test processes: one makes the PKI, the others wait. */
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && flock '%s.lock' sh -c \"[ -f '%s/tlsfront.yaml' ] || "
             "bash '%s/scripts/demo-pki.sh' '%s' >/dev/null\"",
             px->demo, px->demo, px->demo, tf_px_env("TF_SOURCE_DIR"), px->demo);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(px->ca, sizeof px->ca, "%s/pki/root.crt", px->demo);
}

/* Starts `python3 tests/SCRIPT NAME` with pipes on stdin and stdout;
 * returns its pid, the write end of its stdin and its first line of output
 * (the ports it bound), read with a deadline. */
static pid_t spawn_script(const char *script, const char *name, int *stdin_fd, char *line,
                          size_t linelen)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/tests/%s", tf_px_env("TF_SOURCE_DIR"), script);
    int in[2], out[2];
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execlp("python3", "python3", path, name, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    /* Only this process may hold the write end: a backend, proxy or shell
     * started later would inherit it, and the backend would then outlive a
     * test killed by its timeout (it stops when its stdin reaches EOF). */
    cr_assert_eq(fcntl(in[1], F_SETFD, FD_CLOEXEC), 0);
    *stdin_fd = in[1];
    memset(line, 0, linelen);
    size_t n = 0;
    long long deadline = tf_px_now_ms() + TF_PX_WAIT_MS;
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    while (n < linelen - 1 && poll(&p, 1, (int)(deadline - tf_px_now_ms())) > 0 &&
           read(out[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = '\0';
    close(out[0]);
    return pid;
}

void tf_px_start_backend(tf_px_t *px)
{
    char line[96];
    px->backend_pid =
        spawn_script("proxy/backend.py", "echo-backend", &px->backend_stdin, line, sizeof line);
    cr_assert_eq(sscanf(line, "%u %u %u", &px->backend_port, &px->hole_port, &px->dead_port), 3,
                 "the test backend did not start: '%s'", line);
}

void tf_px_start_echo(tf_px_t *px, const char *name)
{
    char line[64];
    px->echo_pid = spawn_script("proxy/echo_backend.py", name, &px->echo_stdin, line, sizeof line);
    cr_assert_eq(sscanf(line, "%u", &px->echo_port), 1, "the HTTP test backend did not start: '%s'",
                 line);
}

/* The ready file: "KIND ADDRESS" per line, the port after the last ':'. */
static void read_ports(tf_px_t *px, const char *ready)
{
    px->nhttps = 0;
    px->http_port = px->admin_port = 0;
    for (const char *l = ready; *l != '\0';) {
        const char *nl = strchr(l, '\n');
        size_t n = nl != NULL ? (size_t)(nl - l) : strlen(l);
        char line[128];
        snprintf(line, sizeof line, "%.*s", (int)n, l);
        char *colon = strrchr(line, ':');
        unsigned port = colon != NULL ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
        cr_assert_gt(port, 0, "a line of the ready file without a port: '%s'", line);
        if (strncmp(line, "https ", 6) == 0 && px->nhttps < TF_PX_MAX_HTTPS)
            px->https_ports[px->nhttps++] = port;
        else if (strncmp(line, "http ", 5) == 0 && px->http_port == 0)
            px->http_port = port;
        else if (strncmp(line, "admin ", 6) == 0)
            px->admin_port = port;
        l += n + (nl != NULL);
    }
    cr_assert_gt(px->nhttps, 0, "no https listener in the ready file:\n%s", ready);
    px->port = px->https_ports[0];
}

void tf_px_launch(tf_px_t *px, const char *config, unsigned nofile)
{
    unlink(px->ready); /* a restart must not read the last run's ports */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (nofile > 0) {
            struct rlimit rl = {.rlim_cur = nofile, .rlim_max = nofile};
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        int fd = open(px->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        dup2(fd, 1);
        setenv("TLSFRONT_READY_FILE", px->ready, 1);
        execl(tf_px_env("TF_TLSFRONT"), "tlsfront", "run", "-c", config, (char *)NULL);
        _exit(127);
    }
    px->proxy_pid = pid;
    int pidfd = tf_px__pidfd(pid);
    char *ready = NULL;
    bool ok = tf_px__wait_ready(px, pidfd, &ready);
    close(pidfd);
    if (!ok) {
        int st;
        bool exited = waitpid(pid, &st, WNOHANG) == pid;
        if (exited)
            px->proxy_pid = 0;
        char *log = tf_px_log(px);
        cr_assert_fail("tlsfront %s:\n%s", exited ? "exited at start" : "did not start in time",
                       log);
    }
    read_ports(px, ready);
    free(ready);
}

int tf_px_stop_proxy(tf_px_t *px)
{
    if (px->proxy_pid <= 0)
        return -1;
    kill(px->proxy_pid, SIGTERM);
    int st = tf_px_wait_exit(px->proxy_pid, TF_PX_WAIT_MS);
    px->proxy_pid = 0;
    return st;
}

int tf_px_wait_proxy(tf_px_t *px)
{
    if (px->proxy_pid <= 0)
        return -1;
    int st = tf_px_wait_exit(px->proxy_pid, TF_PX_WAIT_MS);
    px->proxy_pid = 0;
    return st;
}

/* A sanitizer build of tlsfront reports into its log: copy any report to
 * the test's stderr, where CTest's FAIL_REGULAR_EXPRESSION sees it. */
static void report_sanitizer(const tf_px_t *px)
{
    if (px->log[0] == '\0')
        return;
    char *log = tf_px_log(px);
    if (strstr(log, "Sanitizer") != NULL || strstr(log, "runtime error:") != NULL)
        fprintf(stderr, "tlsfront log with a sanitizer report:\n%s\n", log);
    free(log);
}

static void stop_script(pid_t *pid, int *stdin_fd)
{
    if (*pid <= 0)
        return;
    close(*stdin_fd);
    *stdin_fd = -1;
    kill(*pid, SIGTERM);
    tf_px_wait_exit(*pid, 5000);
    *pid = 0;
}

size_t tf_px_add_script(tf_px_t *px, const char *script, const char *name)
{
    cr_assert_lt(px->nechos, TF_PX_MAX_ECHOS, "too many echo backends");
    size_t i = px->nechos;
    char line[64];
    px->echos_pid[i] = spawn_script(script, name, &px->echos_stdin[i], line, sizeof line);
    cr_assert_eq(sscanf(line, "%u", &px->echos_port[i]), 1,
                 "the test backend %s (%s) did not start: '%s'", name, script, line);
    px->nechos++;
    return i;
}

size_t tf_px_add_echo(tf_px_t *px, const char *name)
{
    return tf_px_add_script(px, "proxy/echo_backend.py", name);
}

void tf_px_stop_echo(tf_px_t *px, size_t i)
{
    stop_script(&px->echos_pid[i], &px->echos_stdin[i]);
}

void tf_px_stop(tf_px_t *px)
{
    tf_px_stop_proxy(px);
    report_sanitizer(px);
    stop_script(&px->backend_pid, &px->backend_stdin);
    stop_script(&px->echo_pid, &px->echo_stdin);
    for (size_t i = 0; i < px->nechos; i++)
        stop_script(&px->echos_pid[i], &px->echos_stdin[i]);
    if (px->tmp[0] != '\0' && getenv("TF_KEEP_TMP") == NULL) {
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", px->tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", px->tmp);
    }
}

static char *sh_run(int *status, const char *cmd)
{
    char full[4200];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p);
    size_t cap = 8192, len = 0;
    char *out = malloc(cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 4096) {
            cap *= 2;
            out = realloc(out, cap);
        }
    }
    out[len] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return out;
}

char *tf_px_sh(int *status, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return sh_run(status, cmd);
}

void tf_px_sh_ok(const char *what, char *out, int st)
{
    cr_assert_eq(st, 0, "%s: %s", what, out);
    free(out);
}

char *tf_px_s_client(int *status, const char *text, const char *args_fmt, ...)
{
    char args[3000];
    va_list ap;
    va_start(ap, args_fmt);
    vsnprintf(args, sizeof args, args_fmt, ap);
    va_end(ap);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "python3 '%s/tests/harness/s_client_echo.py' '%s' 30 -- openssl s_client %s",
             tf_px_env("TF_SOURCE_DIR"), text, args);
    return sh_run(status, cmd);
}

bool tf_px_echo(const tf_px_t *px, const char *sni, const char *text)
{
    int st;
    char *out = tf_px_s_client(&st, text,
                               "-quiet -no_ign_eof -connect 127.0.0.1:%u -servername '%s' "
                               "-CAfile '%s'",
                               px->port, sni, px->ca);
    bool ok = strstr(out, text) != NULL;
    free(out);
    return ok;
}

unsigned tf_px_count(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

char *tf_px_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

char *tf_px_log(const tf_px_t *px)
{
    return tf_px_read(px->log);
}
