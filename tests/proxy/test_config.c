/* tlsfront run under particular configurations (SPEC §3): several
 * workers, limits.max_connections, running out of file descriptors, IPv4 and
 * IPv6 listeners side by side, timeouts.tunnel. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tf_px_t px;

static void teardown(void)
{
    tf_px_stop(&px);
}

/* One suite (Criterion 2.4 leaks in its runner past three suites under
 * LeakSanitizer): each test starts the proxy with its own options. */
TestSuite(proxy_config, .fini = teardown, .timeout = 120);

static char *client(int *st, const char *args)
{
    char script[1100];
    snprintf(script, sizeof script, "%s/tests/proxy/client.py", getenv("TF_SOURCE_DIR"));
    return tf_px_sh(st, "timeout 100 python3 '%s' %s", script, args);
}

/* Two workers: both listen (SO_REUSEPORT) and serve. */
Test(proxy_config, two_workers_serve_connections)
{
    tf_px_opts_t o = {.workers = 2};
    tf_px_start(&px, &o);
    int st;
    char args[1400];
    snprintf(args, sizeof args, "concurrent %u portal.acme.example '%s' 50", px.port, px.ca);
    char *out = client(&st, args);
    cr_expect_not_null(strstr(out, "ok=50 of 50"), "%s", out);
    free(out);
    cr_expect_eq(tf_px_stop_proxy(&px), 0);
}

/* limits.max_connections: the next connection waits, it is not refused. */
Test(proxy_config, connection_over_the_limit_waits_for_a_slot)
{
    tf_px_opts_t o = {.max_connections = 3};
    tf_px_start(&px, &o);
    int st;
    char args[1400];
    snprintf(args, sizeof args, "limit %u portal.acme.example '%s' 3", px.port, px.ca);
    char *out = client(&st, args);
    cr_expect_not_null(strstr(out, "waited-then-served"), "%s", out);
    free(out);
    char *log = tf_px_log(&px);
    cr_expect_not_null(strstr(log, "limits.max_connections (3) reached"), "%s", log);
    free(log);
}

/* Out of file descriptors: accepting pauses, then resumes. */
Test(proxy_config, accepting_pauses_and_resumes)
{
    tf_px_opts_t o = {.nofile = 40};
    tf_px_start(&px, &o);
    int st;
    char args[1400];
    snprintf(args, sizeof args, "flood %u 100 '%s' 'pausing accepts'", px.port, px.log);
    char *out = client(&st, args);
    cr_expect_not_null(strstr(out, "flooded"), "%s", out);
    free(out);
    /* Served again once descriptors are free (bounded retries, no timing). */
    bool served = false;
    for (int i = 0; i < 20 && !served; i++) {
        out = tf_px_s_client(&st, "after-emfile",
                             "-quiet -no_ign_eof -connect 127.0.0.1:%u -servername "
                             "portal.acme.example -CAfile '%s'",
                             px.port, px.ca);
        served = strstr(out, "after-emfile") != NULL;
        free(out);
    }
    cr_expect(served, "not served after running out of descriptors");
    char *log = tf_px_log(&px);
    cr_expect_not_null(strstr(log, "pausing accepts"), "%s", log);
    cr_expect_not_null(strstr(log, "accepting again"), "%s", log);
    free(log);
    cr_expect_eq(tf_px_stop_proxy(&px), 0);
}

/* Descriptors run out with connections held open, then every one of them
 * sends a request: those that cannot get a backend connection are answered
 * 503 (a limit of tlsfront's), never 502, and the backend is not marked
 * down for it, so the others and later clients are still served. */
Test(proxy_config, out_of_descriptors_blames_no_backend)
{
    tf_px_opts_t o = {.nofile = 48, .http = true};
    tf_px_start(&px, &o);
    int st;
    char args[1400];
    snprintf(args, sizeof args, "crowd %u portal.acme.example '%s' 60", px.port, px.ca);
    char *out = client(&st, args);
    cr_log_info("crowd: %s", out);
    cr_expect_not_null(strstr(out, "200="), "%s", out);
    cr_expect_null(strstr(out, "502="), "%s", out);
    cr_expect_null(strstr(out, "none="), "%s", out);
    free(out);
    char *log = tf_px_log(&px);
    cr_expect_not_null(strstr(log, "pausing accepts"), "%s", log);
    cr_expect_null(strstr(log, "marked down"), "%s", log);
    free(log);
    /* Served again once the crowd has gone (bounded retries, no timing). */
    bool served = false;
    for (int i = 0; i < 20 && !served; i++) {
        out = tf_px_sh(&st,
                       "timeout 10 curl -sS -o /dev/null -w '%%{http_code}' --cacert '%s' "
                       "--resolve portal.acme.example:%u:127.0.0.1 "
                       "https://portal.acme.example:%u/",
                       px.ca, px.port, px.port);
        served = strstr(out, "200") != NULL;
        free(out);
    }
    cr_expect(served, "not served after the crowd left");
    cr_expect_eq(tf_px_stop_proxy(&px), 0);
}

/* "0.0.0.0:0" and "[::]:0" side by side (IPV6_V6ONLY), both served: each
 * gets a port of its own, as the ready file says. */
Test(proxy_config, ipv4_and_ipv6_listeners_coexist)
{
    tf_px_opts_t o = {.dual_stack = true};
    tf_px_start(&px, &o);
    const char *hosts[] = {"127.0.0.1", "[::1]"};
    cr_assert_eq(px.nhttps, 2);
    for (size_t i = 0; i < 2; i++) {
        int st;
        char want[16];
        snprintf(want, sizeof want, "via-%zu", i);
        char *out = tf_px_s_client(&st, want,
                                   "-quiet -no_ign_eof -connect %s:%u -servername "
                                   "portal.acme.example -CAfile '%s'",
                                   hosts[i], px.https_ports[i], px.ca);
        cr_expect_not_null(strstr(out, want), "%s: %s", hosts[i], out);
        free(out);
    }
    char *log = tf_px_log(&px);
    cr_expect_not_null(strstr(log, "[::1]:"), "%s", log);
    free(log);
    cr_expect_eq(tf_px_stop_proxy(&px), 0);
}

/* timeouts.tunnel: a mode tcp tunnel where nothing moves is closed (like
 * haproxy's `timeout tunnel`; timeouts.idle is for HTTP keep-alive). */
Test(proxy_config, silent_tunnel_closed_after_tunnel_timeout)
{
    tf_px_opts_t o = {.tunnel = "1s"};
    tf_px_start(&px, &o);
    int st;
    char args[1400];
    snprintf(args, sizeof args, "wait-close %u portal.acme.example '%s' 15", px.port, px.ca);
    char *out = client(&st, args);
    cr_expect_not_null(strstr(out, "closed"), "%s", out);
    free(out);
    /* The close_notify leaves before the summary line is written: the
     * client may have seen the close and exited first. */
    cr_expect(tf_px_wait_log(&px, "closed: tunnel timeout"));
}

/* `user:`: privileges dropped after binding and loading the keys. */
Test(proxy_config, runs_as_the_configured_user)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to switch users");
    tf_px_opts_t o = {.user = "nobody"};
    tf_px_start(&px, &o);
    int st;
    char *out = tf_px_sh(&st, "grep '^Uid:' /proc/%d/status", (int)px.proxy_pid);
    cr_expect_not_null(strstr(out, "65534"), "%s", out);
    free(out);
    out = tf_px_s_client(&st, "as-nobody",
                         "-quiet -no_ign_eof -connect 127.0.0.1:%u -servername "
                         "portal.acme.example -CAfile '%s'",
                         px.port, px.ca);
    cr_expect_not_null(strstr(out, "as-nobody"), "%s", out);
    free(out);
    cr_expect_eq(tf_px_stop_proxy(&px), 0);
}

/* Port 0 everywhere: tlsfront logs and writes into TLSFRONT_READY_FILE the
 * address every listener got, and with two workers both sockets of an
 * address share the one port the kernel gave the first. */
Test(proxy_config, port_zero_is_reported_and_shared_by_every_worker)
{
    tf_px_opts_t o = {.workers = 2, .http = true};
    tf_px_start(&px, &o);
    char *ready = tf_px_read(px.ready);
    char want[256];
    snprintf(want, sizeof want, "https 127.0.0.1:%u\nhttp 127.0.0.1:%u\nadmin 127.0.0.1:%u\n",
             px.port, px.http_port, px.admin_port);
    cr_expect_str_eq(ready, want);
    free(ready);
    char *log = tf_px_log(&px);
    unsigned ports[] = {px.port, px.http_port, px.admin_port};
    const char *kinds[] = {"https", "http", "admin"};
    const char *rests[] = {" (2 workers)", ": plain HTTP", ": admin API"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(want, sizeof want, "listening on %s 127.0.0.1:%u%s", kinds[i], ports[i], rests[i]);
        cr_expect_not_null(strstr(log, want), "no '%s' in:\n%s", want, log);
    }
    free(log);
    for (size_t i = 0; i < 2; i++) {
        int st;
        char *out = tf_px_sh(&st, "ss -Hltn 'sport = :%u' | wc -l", ports[i]);
        cr_expect_eq(atoi(out), 2, "listening sockets on %u: %s", ports[i], out);
        free(out);
    }
    cr_expect_eq(tf_px_stop_proxy(&px), 0);
}
