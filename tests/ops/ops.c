/* See ops.h. */
#include "ops.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    tf_px_sh_ok("copy certs", out, st);
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
                "listen:\n  https: [\"127.0.0.1:0\"]\n"
                "admin:\n  listen: \"127.0.0.1:0\"\n",
                t->workers ? t->workers : 1);
        if (t->token[0] != '\0')
            fprintf(f, "  token_file: %s/token\n", px->tmp);
        fprintf(f,
                "tls:\n  certs: [\"%s\"%s%s%s]\n  default_cert: %s/system.pem\n"
                "timeouts:\n  handshake: 20s\n  connect: 2s\n  drain: 20s\n"
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

void tf_ops_start(tf_ops_t *t, unsigned workers, const char *token, const char *extra)
{
    memset(t, 0, sizeof *t);
    tf_px_init(&t->px, "tf-ops-test");
    tf_ops_start_on(t, workers, token, extra);
}

void tf_ops_start_on(tf_ops_t *t, unsigned workers, const char *token, const char *extra)
{
    tf_px_t *px = &t->px;
    snprintf(t->config, sizeof t->config, "%s/tlsfront.yaml", px->tmp);
    make_pki(t);
    tf_px_start_backend(px);
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
    tf_px_launch(px, t->config, 0);
}

void tf_ops_restart(tf_ops_t *t)
{
    tf_px_launch(&t->px, t->config, 0);
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
    char *serial =
        tf_px_sh(&st, "DAYS=%u bash '%s/tests/ops/issue.sh' '%s' '%s' '%s' %s",
                 t->days ? t->days : 90, tf_px_env("TF_SOURCE_DIR"), t->pki, out, mode, names);
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

/* The bound of a wait: what the caller asked, at least the harness's own
 * (a wait ends as soon as its condition holds, so a generous bound costs a
 * quiet machine nothing and spares a busy one a false failure). */
static int bound_ms(int seconds)
{
    return seconds * 1000 > TF_PX_WAIT_MS ? seconds * 1000 : TF_PX_WAIT_MS;
}

/* A new certificate is served once a worker swapped in the generation that
 * holds it, which it logs ("configuration N in service", debug): the
 * handshake is tried again after each such line, not on a clock. */
bool tf_ops_wait_serial(tf_ops_t *t, const char *sni, const char *serial, int seconds)
{
    long long deadline = tf_px_now_ms() + bound_ms(seconds);
    for (;;) {
        char *log = tf_px_log(&t->px);
        unsigned swaps = tf_px_count(log, "in service");
        free(log);
        char *s = tf_ops_serial(t, sni);
        bool same = strcmp(s, serial) == 0;
        free(s);
        if (same)
            return true;
        long long left = deadline - tf_px_now_ms();
        if (left <= 0 || !tf_px_wait_count(t->px.log, "in service", swaps + 1, (int)left))
            return false;
    }
}

bool tf_ops_wait_log(tf_ops_t *t, const char *needle, unsigned count, int seconds)
{
    return tf_px_wait_count(t->px.log, needle, count, bound_ms(seconds));
}

bool tf_ops_echo(tf_ops_t *t, const char *sni)
{
    return tf_px_echo(&t->px, sni, "echo-check");
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
                 method, auth, body, t->px.admin_port, path);
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
    snprintf(script, sizeof script, "%s/tests/ops/load.py", tf_px_env("TF_SOURCE_DIR"));
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
    char *out = tf_px_wait_file(t->load_out, "started", "fail=");
    bool started = strstr(out, "started") != NULL || strstr(out, "fail=") != NULL;
    cr_assert(started, "the background load did not start: %s", out);
    free(out);
}

char *tf_ops_load_stop(tf_ops_t *t)
{
    FILE *f = fopen(t->load_stop, "w");
    if (f != NULL)
        fclose(f);
    tf_px_wait_exit(t->load_pid, TF_PX_WAIT_MS);
    t->load_pid = 0;
    return tf_px_read(t->load_out);
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
