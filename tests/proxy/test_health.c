/* Health checks end to end (SPEC §11 `health`): once per process whatever
 * the number of workers, rise/fall against a backend whose /probe status a
 * test toggles (echo_backend.py counts every probe in a file), and TCP
 * connect checks for mode tcp tenants. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tf_px_t px;
static char probes[1300], tcp_probes[1300];

/* Tenants:
 *   once    the echo backend, checked every hour: one probe at start only
 *   flappy  the echo backend, checked every 100 ms, rise 2 / fall 3 (the
 *           defaults), the status from flappy.status
 *   raw     mode tcp on the echo backend and a refused port */
static char config[1300];

/* EXTRA: one more tenant, so that a reload applies a new configuration. */
static void write_config(bool extra)
{
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "workers: 2\n"
            "log:\n  level: debug\n"
            "listen:\n  https: [\"127.0.0.1:0\"]\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "timeouts:\n  connect: 2s\n"
            "tenants:\n"
            "  once:\n    hosts: [\"portal.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "    health: { path: \"/probe?file=%s\", interval: 1h }\n"
            "  flappy:\n    hosts: [\"checked.tenants.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n"
            "    health: { path: \"/probe?file=%s/flappy.log\", interval: 100ms }\n"
            "  raw:\n    hosts: [\"portal.globex.example\"]\n    mode: tcp\n"
            "    backends: [\"127.0.0.1:%u\", \"127.0.0.1:%u\"]\n"
            "    health: { path: \"/probe?file=%s\", interval: 100ms }\n",
            px.demo, px.demo, px.echo_port, probes, px.echo_port, px.tmp, px.echo_port,
            px.dead_port, tcp_probes);
    if (extra)
        fprintf(f, "  extra:\n    hosts: [\"extra.tenants.example\"]\n"
                   "    backends: [\"127.0.0.1:%u\"]\n",
                px.echo_port);
    fclose(f);
}

static void setup(void)
{
    tf_px_init(&px, "tf-health");
    tf_px_demo_pki(&px);
    tf_px_start_backend(&px);
    tf_px_start_echo(&px, "checked");
    snprintf(probes, sizeof probes, "%s/once.log", px.tmp);
    snprintf(tcp_probes, sizeof tcp_probes, "%s/tcp.log", px.tmp);
    snprintf(config, sizeof config, "%s/tlsfront.yaml", px.tmp);
    write_config(false);
    tf_px_launch(&px, config, 0);
}

static void teardown(void)
{
    tf_px_stop(&px);
}

TestSuite(health, .init = setup, .fini = teardown, .timeout = 120);

static char *get(const char *name)
{
    int st;
    return tf_px_sh(&st,
                    "curl -sS --max-time 20 --cacert '%s' --resolve '%s:%u:127.0.0.1' -o /dev/null "
                    "-w '%%{http_code}' https://%s:%u/",
                    px.ca, name, px.port, name, px.port);
}

Test(health, two_workers_check_a_backend_once_per_interval)
{
    cr_assert(tf_px_wait_count(probes, "probe", 1, TF_PX_WAIT_MS), "the first check runs at once");
    /* Requests through both workers: each has run its loop well past the
     * moment a per-worker checker would have sent its own first probe. */
    for (int i = 0; i < 4; i++) {
        char *code = get("portal.acme.example");
        cr_expect_str_eq(code, "200");
        free(code);
    }
    char *log = tf_px_read(probes);
    cr_expect_eq(tf_px_count(log, "probe"), 1, "one checker for the process:\n%s", log);
    cr_expect_eq(tf_px_count(log, "probe portal.acme.example"), 1,
                 "Host: the tenant's first exact host");
    free(log);
}

Test(health, rise_and_fall_follow_the_backends_answers)
{
    char status[1400], flappy[1400];
    snprintf(flappy, sizeof flappy, "%s/flappy.log", px.tmp);
    snprintf(status, sizeof status, "%s/flappy.log.status", px.tmp);
    cr_assert(tf_px_wait_count(flappy, "probe", 1, TF_PX_WAIT_MS));
    char *code = get("checked.tenants.example");
    cr_expect_str_eq(code, "200", "up from the start");
    free(code);
    FILE *f = fopen(status, "w");
    cr_assert_not_null(f);
    fputs("500\n", f);
    fclose(f);
    char want[256];
    snprintf(want, sizeof want,
             "tenant 'flappy': backend 127.0.0.1:%u failed its health checks (status 500)",
             px.echo_port);
    cr_assert(tf_px_wait_log(&px, want), "down after `fall` failures");
    code = get("checked.tenants.example");
    cr_expect_str_eq(code, "503", "no healthy backend");
    free(code);
    char *log = tf_px_read(flappy);
    unsigned at_down = tf_px_count(log, "probe");
    free(log);
    f = fopen(status, "w");
    cr_assert_not_null(f);
    fputs("200\n", f);
    fclose(f);
    snprintf(want, sizeof want, "tenant 'flappy': backend 127.0.0.1:%u is healthy again",
             px.echo_port);
    cr_assert(tf_px_wait_log(&px, want), "up after `rise` passes");
    log = tf_px_read(flappy);
    cr_expect_geq(tf_px_count(log, "probe"), at_down + 2, "rise 2: two passing checks at least");
    free(log);
    code = get("checked.tenants.example");
    cr_expect_str_eq(code, "200");
    free(code);
}

Test(health, mode_tcp_tenants_get_connect_checks)
{
    char want[256];
    snprintf(want, sizeof want,
             "tenant 'raw': backend 127.0.0.1:%u failed its health checks (connect refused)",
             px.dead_port);
    cr_assert(tf_px_wait_log(&px, want), "the refused port is found out by connecting");
    /* The live one was connected to every 100 ms and never asked for HTTP. */
    cr_expect(tf_px_wait_count(probes, "probe", 1, TF_PX_WAIT_MS));
    char *log = tf_px_log(&px);
    snprintf(want, sizeof want, "tenant 'raw': backend 127.0.0.1:%u failed", px.echo_port);
    cr_expect_null(strstr(log, want), "the live backend passes:\n%s", log);
    free(log);
    char *tcp = tf_px_read(tcp_probes);
    cr_expect(tcp == NULL || tf_px_count(tcp, "probe") == 0, "no HTTP request: %s",
              tcp ? tcp : "");
    free(tcp);
}

/* A reload that keeps the backends keeps their health state (in the
 * registry) and their schedule (no extra check at the reload). */
Test(health, a_reload_keeps_the_kept_backends_state_and_schedule)
{
    char status[1400], flappy[1400], want[256];
    snprintf(flappy, sizeof flappy, "%s/flappy.log", px.tmp);
    snprintf(status, sizeof status, "%s/flappy.log.status", px.tmp);
    cr_assert(tf_px_wait_count(probes, "probe", 1, TF_PX_WAIT_MS));
    FILE *f = fopen(status, "w");
    cr_assert_not_null(f);
    fputs("500\n", f);
    fclose(f);
    snprintf(want, sizeof want, "tenant 'flappy': backend 127.0.0.1:%u failed", px.echo_port);
    cr_assert(tf_px_wait_log(&px, want));
    write_config(true);
    int st;
    char *r = tf_px_sh(&st, "kill -HUP %d", (int)px.proxy_pid);
    free(r);
    cr_assert(tf_px_wait_count(px.log, "reload (configuration and certificates)", 1,
                               TF_PX_WAIT_MS));
    /* The checker has run well past the reload: more failing checks than
     * `fall`. A new state would have started up and been found out again. */
    char *log = tf_px_read(flappy);
    unsigned seen = tf_px_count(log, "probe");
    free(log);
    cr_assert(tf_px_wait_count(flappy, "probe", seen + 4, TF_PX_WAIT_MS));
    log = tf_px_log(&px);
    cr_expect_eq(tf_px_count(log, want), 1, "found out once, its state kept:\n%s", log);
    free(log);
    char *code = get("checked.tenants.example");
    cr_expect_str_eq(code, "503", "still down");
    free(code);
    log = tf_px_read(probes);
    cr_expect_eq(tf_px_count(log, "probe"), 1, "the hourly check was not run again:\n%s", log);
    free(log);
}
