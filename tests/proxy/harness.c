/* See harness.h. */
#include "harness.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *env(const char *name)
{
    const char *v = getenv(name);
    cr_assert_not_null(v, "%s is not set", name);
    return v;
}

void tf_px_demo_pki(tf_px_t *px)
{
    snprintf(px->demo, sizeof px->demo, "%s/tests/proxy-demo", env("TF_BUILD_DIR"));
    char cmd[5000];
    /* Parallel test processes: one makes the PKI, the others wait. */
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && flock '%s.lock' sh -c \"[ -f '%s/tlsfront.yaml' ] || "
             "bash '%s/scripts/demo-pki.sh' '%s' >/dev/null\"",
             px->demo, px->demo, px->demo, env("TF_SOURCE_DIR"), px->demo);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(px->ca, sizeof px->ca, "%s/pki/root.crt", px->demo);
}

/* A port the kernel just gave and took back can come again at the next
 * call: a test's listeners (https, http, admin, backends) would then
 * collide. Ports already handed out in this test process are asked for
 * again (Criterion runs each test in a process of its own). */
unsigned tf_px_free_port(void)
{
    static unsigned given[64];
    static size_t ngiven;
    for (int attempt = 0; attempt < 50; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
        cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        close(fd);
        unsigned port = ntohs(a.sin_port);
        bool seen = false;
        for (size_t i = 0; i < ngiven && !seen; i++)
            seen = given[i] == port;
        if (seen)
            continue;
        if (ngiven < sizeof given / sizeof given[0])
            given[ngiven++] = port;
        return port;
    }
    cr_assert_fail("no new free port in 50 attempts");
    return 0;
}

/* Starts `python3 SCRIPT NAME` with pipes on stdin and stdout; returns its
 * pid, the write end of its stdin and its first line of output. */
static pid_t spawn_script(const char *script, const char *name, int *stdin_fd, char *line,
                          size_t linelen)
{
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
        execlp("python3", "python3", script, name, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    *stdin_fd = in[1];
    memset(line, 0, linelen);
    size_t n = 0;
    while (n < linelen - 1 && read(out[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = '\0';
    close(out[0]);
    return pid;
}

void tf_px_start_backend(tf_px_t *px)
{
    char script[1100], line[64];
    snprintf(script, sizeof script, "%s/tests/proxy/backend.py", env("TF_SOURCE_DIR"));
    px->backend_pid = spawn_script(script, "echo-backend", &px->backend_stdin, line, sizeof line);
    cr_assert_eq(sscanf(line, "%u %u", &px->backend_port, &px->hole_port), 2,
                 "the test backend did not start: '%s'", line);
    cr_assert_gt(px->backend_port, 0, "the test backend did not start");
}

static void start_echo(tf_px_t *px)
{
    char script[1100], line[64];
    snprintf(script, sizeof script, "%s/tests/proxy/echo_backend.py", env("TF_SOURCE_DIR"));
    px->echo_pid = spawn_script(script, "echo1", &px->echo_stdin, line, sizeof line);
    cr_assert_eq(sscanf(line, "%u", &px->echo_port), 1, "the HTTP test backend did not start: '%s'",
                 line);
}

/* Mode http tenants on the HTTP test backend, one mode tcp tenant, no
 * catch-all (so that an unknown Host is 404). */
static void write_http_tenants(FILE *f, const tf_px_t *px)
{
    fprintf(f,
            "tenants:\n"
            "  acme:\n    hosts: [\"portal.acme.example\", \"chat.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "  raw:\n    hosts: [\"portal.globex.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  others:\n    hosts: [\"*.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "  down:\n    hosts: [\"down.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "  slow:\n    hosts: [\"slow.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "  checked:\n    hosts: [\"checked.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\", \"127.0.0.1:%u\"]\n"
            "    health: { path: /status/204, interval: 200ms }\n"
            "  refused:\n    hosts: [\"refused.tenants.example\"]\n"
            "    backends: [\"255.255.255.255:80\", \"127.0.0.1:%u\"]\n"
            "  sick:\n    hosts: [\"sick.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "    health: { path: /status/500, interval: 200ms }\n",
            px->echo_port, px->backend_port, px->echo_port, px->dead_port, px->hole_port,
            px->dead_port, px->echo_port, px->echo_port, px->echo_port);
}

static void write_config(tf_px_t *px, const tf_px_opts_t *o, char *path, size_t len)
{
    char listen[96];
    if (o && o->dual_stack)
        snprintf(listen, sizeof listen, "\"0.0.0.0:%u\", \"[::]:%u\"", px->port, px->port);
    else
        snprintf(listen, sizeof listen, "\"127.0.0.1:%u\"", px->port);
    snprintf(path, len, "%s/tlsfront.yaml", px->tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "%s%s%s"
            "workers: %u\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "  unknown_sni: %s\n"
            "timeouts:\n  handshake: 1s\n  connect: 2s\n  drain: 2s\n  idle: %s\n"
            "  request_header: 1s\n  response: %s\n  tunnel: %s\n"
            "limits:\n  max_connections: %u\n  max_header_bytes: 8192\n",
            o && o->user ? "user: " : "", o && o->user ? o->user : "", o && o->user ? "\n" : "",
            o && o->workers ? o->workers : 1, px->demo, px->demo,
            o && o->unknown_sni ? o->unknown_sni : "default", o && o->idle ? o->idle : "60s",
            o && o->response ? o->response : "5s", o && o->tunnel ? o->tunnel : "1h",
            o && o->max_connections ? o->max_connections : 1000);
    if (o && o->http) {
        /* Port 80, an ACME webroot and a JSON access log beside. */
        fprintf(f,
                "listen:\n  https: [%s]\n  http: [\"127.0.0.1:%u\"]\n"
                "acme:\n  webroot: %s/acme\n"
                "admin:\n  listen: \"127.0.0.1:%u\"\n"
                "log:\n  level: debug\n  access: %s/access.log\n  format: json\n",
                listen, px->http_port, px->tmp, px->admin_port, px->tmp);
        write_http_tenants(f, px);
        fclose(f);
        return;
    }
    fprintf(f, "log:\n  level: debug\nlisten:\n  https: [%s]\n", listen);
    fprintf(f,
            "tenants:\n"
            "  acme:\n    hosts: [\"portal.acme.example\", \"chat.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  down:\n    hosts: [\"portal.globex.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  others:\n    hosts: [\"*.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\", \"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  slow:\n    hosts: [\"slow.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\", \"127.0.0.1:%u\"]\n    mode: tcp\n"
            "  fallback:\n    hosts: [\"*\"]\n    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n",
            px->backend_port, px->dead_port, px->dead_port, px->backend_port, px->hole_port,
            px->backend_port, px->backend_port);
    fclose(f);
}

static bool can_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void start_proxy(tf_px_t *px, const char *config, unsigned nofile)
{
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
        execl(env("TF_TLSFRONT"), "tlsfront", "run", "-c", config, (char *)NULL);
        _exit(127);
    }
    px->proxy_pid = pid;
    /* Bounded readiness poll: at most 20 s. */
    for (int i = 0; i < 400; i++) {
        if (can_connect(px->port))
            return;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            px->proxy_pid = 0;
            char *log = tf_px_log(px);
            cr_assert_fail("tlsfront exited at start:\n%s", log);
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("tlsfront did not accept connections within 20 s");
}

void tf_px_start(tf_px_t *px, const tf_px_opts_t *opts)
{
    memset(px, 0, sizeof *px);
    px->backend_stdin = -1;
    tf_px_demo_pki(px);
    snprintf(px->tmp, sizeof px->tmp, "/tmp/tf-proxy-test-XXXXXX");
    cr_assert_not_null(mkdtemp(px->tmp));
    snprintf(px->log, sizeof px->log, "%s/tlsfront.log", px->tmp);
    px->echo_stdin = -1;
    tf_px_start_backend(px);
    if (opts != NULL && opts->http)
        start_echo(px);
    px->dead_port = tf_px_free_port();
    px->port = tf_px_free_port();
    px->http_port = tf_px_free_port();
    px->admin_port = tf_px_free_port();
    char config[1200];
    write_config(px, opts, config, sizeof config);
    start_proxy(px, config, opts ? opts->nofile : 0);
}

static int wait_bounded(pid_t pid, int ms)
{
    for (int i = 0; i < ms / 20; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 128 + SIGKILL;
}

int tf_px_stop_proxy(tf_px_t *px)
{
    if (px->proxy_pid <= 0)
        return -1;
    kill(px->proxy_pid, SIGTERM);
    int st = wait_bounded(px->proxy_pid, 15000);
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

void tf_px_stop(tf_px_t *px)
{
    tf_px_stop_proxy(px);
    report_sanitizer(px);
    if (px->backend_pid > 0) {
        close(px->backend_stdin);
        kill(px->backend_pid, SIGTERM);
        wait_bounded(px->backend_pid, 5000);
        px->backend_pid = 0;
    }
    if (px->echo_pid > 0) {
        close(px->echo_stdin);
        kill(px->echo_pid, SIGTERM);
        wait_bounded(px->echo_pid, 5000);
        px->echo_pid = 0;
    }
    if (px->tmp[0] != '\0' && getenv("TF_KEEP_TMP") == NULL) {
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", px->tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", px->tmp);
    }
}

char *tf_px_sh(int *status, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
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

unsigned tf_px_count(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

char *tf_px_log(const tf_px_t *px)
{
    int st;
    return tf_px_sh(&st, "cat '%s'", px->log);
}

static char *read_all(const char *path)
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

char *tf_px_wait_file(const char *path, const char *needle, const char *needle2)
{
    char *out = NULL;
    for (int i = 0; i < 200; i++) {
        free(out);
        out = read_all(path);
        if (strstr(out, needle) != NULL || (needle2 != NULL && strstr(out, needle2) != NULL))
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return out;
}

bool tf_px_wait_log(const tf_px_t *px, const char *needle)
{
    char *log = tf_px_wait_file(px->log, needle, NULL);
    bool found = strstr(log, needle) != NULL;
    free(log);
    return found;
}
