/* See ops.h. */
#include "ops.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void sh_ok(const char *what, char *out, int st)
{
    cr_assert_eq(st, 0, "%s: %s", what, out);
    free(out);
}

/* The demo PKI (shared with tests/proxy, made once under a lock) and a
 * private copy of its bundles. */
static void make_pki(tf_ops_t *t)
{
    tf_px_t *px = &t->px;
    tf_px_demo_pki(px);
    int st;
    char *out;
    snprintf(t->pki, sizeof t->pki, "%s/pki", px->demo);
    snprintf(t->certs, sizeof t->certs, "%s/certs", px->tmp);
    out = tf_px_sh(&st, "mkdir '%s' && cp -p '%s'/certs/*.pem '%s'/", t->certs, px->demo, t->certs);
    sh_ok("copy certs", out, st);
}

void tf_ops_write_config(tf_ops_t *t, const char *extra, const char *raw)
{
    tf_px_t *px = &t->px;
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.new", t->config);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    if (raw != NULL) {
        fputs(raw, f);
    } else {
        fprintf(f,
                "workers: %u\n"
                "log:\n  level: debug\n"
                "listen:\n  https: [\"127.0.0.1:%u\"]\n"
                "admin:\n  listen: \"127.0.0.1:%u\"\n",
                t->workers ? t->workers : 1, px->port, t->admin_port);
        if (t->token[0] != '\0')
            fprintf(f, "  token_file: %s/token\n", px->tmp);
        fprintf(f,
                "tls:\n  certs: [\"%s\"%s%s%s]\n  default_cert: %s/system.pem\n"
                "timeouts:\n  handshake: 5s\n  connect: 2s\n  drain: 2s\n"
                "tenants:\n"
                "  acme:\n    hosts: [\"portal.acme.example\", \"chat.acme.example\"]\n"
                "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n"
                "  others:\n    hosts: [\"*.tenants.example\"]\n"
                "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n"
                "%s",
                t->certs, t->extra_certs[0] ? ", \"" : "", t->extra_certs,
                t->extra_certs[0] ? "\"" : "", t->certs, px->backend_port, px->backend_port,
                extra ? extra : "");
    }
    fclose(f);
    cr_assert_eq(rename(tmp, t->config), 0);
}

/* Ready once the proxy logged that it runs (every socket bound), which a
 * connect alone cannot tell: on a busy machine another process may hold the
 * port that was free a moment ago. Returns false when the proxy exited
 * because a port was taken (the caller picks others), fails otherwise. */
static bool start_proxy_once(tf_ops_t *t)
{
    tf_px_t *px = &t->px;
    char wconf[1300];
    snprintf(wconf, sizeof wconf, "%s", t->config);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(px->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        dup2(fd, 1);
        execl(env("TF_TLSFRONT"), "tlsfront", "run", "-c", wconf, (char *)NULL);
        _exit(127);
    }
    px->proxy_pid = pid;
    for (int i = 0; i < 400; i++) {
        char *log = tf_px_log(px);
        bool running = strstr(log, "tlsfront running (pid") != NULL;
        bool taken = strstr(log, "Address already in use") != NULL ||
                     strstr(log, "address already in use") != NULL;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            px->proxy_pid = 0;
            if (taken) {
                free(log);
                return false;
            }
            cr_assert_fail("tlsfront exited at start:\n%s", log);
        }
        free(log);
        if (running)
            return true;
        nap_ms(50);
    }
    cr_assert_fail("tlsfront did not start within 20 s");
    return false;
}

static void start_proxy(tf_ops_t *t)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        if (start_proxy_once(t))
            return;
        t->px.port = tf_px_free_port();
        t->admin_port = tf_px_free_port();
        tf_ops_write_config(t, t->extra, NULL);
    }
    cr_assert_fail("no free ports for tlsfront after 5 attempts");
}

void tf_ops_start(tf_ops_t *t, unsigned workers, const char *token, const char *extra)
{
    memset(t, 0, sizeof *t);
    tf_px_t *px = &t->px;
    px->backend_stdin = -1;
    snprintf(px->tmp, sizeof px->tmp, "/tmp/tf-ops-test-XXXXXX");
    cr_assert_not_null(mkdtemp(px->tmp));
    snprintf(px->log, sizeof px->log, "%s/tlsfront.log", px->tmp);
    snprintf(t->config, sizeof t->config, "%s/tlsfront.yaml", px->tmp);
    make_pki(t);
    tf_px_start_backend(px);
    px->port = tf_px_free_port();
    t->admin_port = tf_px_free_port();
    if (token != NULL) {
        snprintf(t->token, sizeof t->token, "%s", token);
        char path[1300];
        snprintf(path, sizeof path, "%s/token", px->tmp);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f, "%s\n", token);
        fclose(f);
    }
    t->workers = workers;
    t->extra = extra;
    tf_ops_write_config(t, extra, NULL);
    start_proxy(t);
}

void tf_ops_restart(tf_ops_t *t)
{
    start_proxy(t);
}

void tf_ops_stop(tf_ops_t *t)
{
    if (t->load_pid > 0)
        free(tf_ops_load_stop(t));
    tf_px_stop(&t->px);
}

char *tf_ops_issue(tf_ops_t *t, const char *out, const char *mode, const char *names)
{
    int st;
    char *serial = tf_px_sh(&st, "DAYS=%u bash '%s/tests/ops/issue.sh' '%s' '%s' '%s' %s",
                            t->days ? t->days : 90, env("TF_SOURCE_DIR"), t->pki, out, mode, names);
    cr_assert_eq(st, 0, "issue: %s", serial);
    serial[strcspn(serial, "\n")] = '\0';
    return serial;
}

char *tf_ops_serial(tf_ops_t *t, const char *sni)
{
    int st;
    char *out = tf_px_sh(&st,
                         "timeout 10 openssl s_client -connect 127.0.0.1:%u -servername '%s' "
                         "</dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null",
                         t->px.port, sni);
    char *s = strstr(out, "serial=");
    char *serial = strdup(s != NULL ? s + 7 : "");
    serial[strcspn(serial, "\n")] = '\0';
    free(out);
    return serial;
}

bool tf_ops_wait_serial(tf_ops_t *t, const char *sni, const char *serial, int seconds)
{
    for (int i = 0; i < seconds * 10; i++) {
        char *s = tf_ops_serial(t, sni);
        bool same = strcmp(s, serial) == 0;
        free(s);
        if (same)
            return true;
        nap_ms(100);
    }
    return false;
}

bool tf_ops_wait_log(tf_ops_t *t, const char *needle, unsigned count, int seconds)
{
    for (int i = 0; i < seconds * 10; i++) {
        char *log = tf_px_log(&t->px);
        bool found = tf_px_count(log, needle) >= count;
        free(log);
        if (found)
            return true;
        nap_ms(100);
    }
    return false;
}

bool tf_ops_echo(tf_ops_t *t, const char *sni)
{
    int st;
    char *out = tf_px_sh(&st,
                         "(echo echo-check; sleep 0.3) | timeout 10 openssl s_client -quiet "
                         "-no_ign_eof -connect 127.0.0.1:%u -servername '%s' -CAfile '%s'",
                         t->px.port, sni, t->px.ca);
    bool ok = strstr(out, "echo-check") != NULL;
    free(out);
    return ok;
}

char *tf_ops_admin(tf_ops_t *t, int *status, const char *method, const char *path,
                   const char *token, const char *data)
{
    char auth[200] = "";
    if (token != NULL)
        snprintf(auth, sizeof auth, "-H 'Authorization: Bearer %s'", token);
    char body[1400] = "";
    if (data != NULL)
        snprintf(body, sizeof body, "--data-binary @'%s'", data);
    int st;
    char *out =
        tf_px_sh(&st, "curl -s -m 20 -X %s %s %s -w '\\n%%{http_code}' http://127.0.0.1:%u%s",
                 method, auth, body, t->admin_port, path);
    char *nl = strrchr(out, '\n');
    *status = nl != NULL ? atoi(nl + 1) : 0;
    if (nl != NULL)
        *nl = '\0';
    return out;
}

void tf_ops_load_start(tf_ops_t *t, const char *sni)
{
    snprintf(t->load_out, sizeof t->load_out, "%s/load.out", t->px.tmp);
    snprintf(t->load_stop, sizeof t->load_stop, "%s/load.stop", t->px.tmp);
    unlink(t->load_stop);
    char script[1100];
    snprintf(script, sizeof script, "%s/tests/ops/load.py", env("TF_SOURCE_DIR"));
    char port[16];
    snprintf(port, sizeof port, "%u", t->px.port);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(t->load_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("python3", "python3", script, port, sni, t->px.ca, t->load_stop, (char *)NULL);
        _exit(127);
    }
    t->load_pid = pid;
    /* Reloads must happen while the load runs: wait until it has worked. */
    for (int i = 0; i < 200; i++) {
        int st;
        char *out = tf_px_sh(&st, "cat '%s' 2>/dev/null", t->load_out);
        bool started = strstr(out, "started") != NULL || strstr(out, "fail=") != NULL;
        free(out);
        if (started)
            return;
        nap_ms(50);
    }
    cr_assert_fail("the background load did not start within 10 s");
}

char *tf_ops_load_stop(tf_ops_t *t)
{
    FILE *f = fopen(t->load_stop, "w");
    if (f != NULL)
        fclose(f);
    for (int i = 0; i < 300; i++) {
        int st;
        if (waitpid(t->load_pid, &st, WNOHANG) == t->load_pid)
            break;
        if (i == 299) {
            kill(t->load_pid, SIGKILL);
            waitpid(t->load_pid, NULL, 0);
        }
        nap_ms(100);
    }
    t->load_pid = 0;
    int st;
    return tf_px_sh(&st, "cat '%s'", t->load_out);
}

unsigned tf_ops_report(const char *report, const char *key)
{
    char needle[64];
    snprintf(needle, sizeof needle, "%s=", key);
    const char *p = report;
    while ((p = strstr(p, needle)) != NULL) {
        if (p == report || p[-1] == ' ' || p[-1] == '\n')
            return (unsigned)strtoul(p + strlen(needle), NULL, 10);
        p++;
    }
    return 0;
}
