/* tlsfront run: the data path and connection lifecycle (SPEC §7 mode: tcp):
 * bulk transfers both ways, many connections at once, deadlines, backends
 * that are down, and draining on SIGTERM. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tf_px_t px;

static void setup(void)
{
    tf_px_start(&px, NULL);
}

static void teardown(void)
{
    tf_px_stop(&px);
}

TestSuite(proxy_flow, .init = setup, .fini = teardown, .timeout = 120);

/* A test about one timeout: the suite's proxy again with that one short
 * (the others stay generous for a busy machine). */
static void restart_with(tf_px_opts_t o)
{
    tf_px_stop(&px);
    tf_px_start(&px, &o);
}

static char *client(int *st, const char *args)
{
    char script[1100];
    snprintf(script, sizeof script, "%s/tests/proxy/client.py", getenv("TF_SOURCE_DIR"));
    return tf_px_sh(st, "timeout 100 python3 '%s' %s", script, args);
}

Test(proxy_flow, sixteen_mib_both_ways_intact)
{
    int st;
    char args[1400];
    snprintf(args, sizeof args, "bulk %u portal.acme.example '%s' 16", px.port, px.ca);
    char *out = client(&st, args);
    cr_assert_eq(st, 0, "%s", out);
    char sent[65] = "", got[65] = "";
    unsigned long n = 0;
    cr_assert_eq(sscanf(out, "sent=%64s received=%64s bytes=%lu", sent, got, &n), 3, "%s", out);
    cr_expect_eq(n, 16ul * 1024 * 1024, "%s", out);
    cr_expect_str_eq(sent, got);
    free(out);
}

Test(proxy_flow, two_hundred_concurrent_connections)
{
    int st;
    char args[1400];
    snprintf(args, sizeof args, "concurrent %u a.tenants.example '%s' 200", px.port, px.ca);
    char *out = client(&st, args);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "ok=200 of 200"), "%s", out);
    free(out);
}

Test(proxy_flow, silent_client_closed_after_handshake_timeout)
{
    restart_with((tf_px_opts_t){.handshake = "1s"});
    int st;
    char args[64];
    /* timeouts.handshake is 1s; 15 s is only an upper bound. */
    snprintf(args, sizeof args, "raw-idle %u 15", px.port);
    char *out = client(&st, args);
    cr_expect_not_null(strstr(out, "closed"), "%s", out);
    free(out);
    char *log = tf_px_log(&px);
    cr_expect_not_null(strstr(log, "handshake timeout"), "%s", log);
    free(log);
}

Test(proxy_flow, backend_down_closes_the_client_quickly)
{
    int st;
    char args[1400];
    /* portal.globex.example's only backend listens nowhere. */
    snprintf(args, sizeof args, "wait-close %u portal.globex.example '%s' 15", px.port, px.ca);
    char *out = client(&st, args);
    cr_expect_not_null(strstr(out, "closed"), "%s", out);
    free(out);
    char *log = tf_px_log(&px);
    cr_expect_not_null(strstr(log, "marked down"), "%s", log);
    cr_expect_not_null(strstr(log, "no backend available"), "%s", log);
    free(log);
}

Test(proxy_flow, failed_backend_skipped_for_the_next)
{
    int st;
    /* *.tenants.example: a dead backend first, then the live one. */
    char *out = tf_px_s_client(&st, "via-second-backend",
                               "-quiet -no_ign_eof -connect 127.0.0.1:%u -servername "
                               "b.tenants.example -CAfile '%s'",
                               px.port, px.ca);
    cr_expect_not_null(strstr(out, "via-second-backend"), "%s", out);
    free(out);
}

Test(proxy_flow, connect_timeout_moves_to_the_next_backend)
{
    int st;
    /* slow.tenants.example: a backend that never answers the connect (the
     * 2 s timeouts.connect), then the live one. */
    char *out = tf_px_s_client(&st, "after-connect-timeout",
                               "-quiet -no_ign_eof -connect 127.0.0.1:%u -servername "
                               "slow.tenants.example -CAfile '%s'",
                               px.port, px.ca);
    cr_expect_not_null(strstr(out, "after-connect-timeout"), "%s", out);
    free(out);
    char *log = tf_px_log(&px);
    cr_expect_not_null(strstr(log, "connect failed: connection timed out; marked down"), "%s", log);
    free(log);
}

Test(proxy_flow, client_that_does_not_read_stops_the_backend)
{
    int st;
    char args[1400];
    snprintf(args, sizeof args, "stall %u portal.acme.example '%s' %d", px.port, px.ca,
             (int)px.proxy_pid);
    char *out = client(&st, args);
    long rss = -1, received = -1;
    cr_assert_eq(sscanf(out, "rss_kib=%ld received=%ld", &rss, &received), 2, "%s", out);
    /* Without backpressure the proxy would hold what the backend sent in
     * 2 s (hundreds of MiB); with it, a few hundred KiB per direction. */
    cr_expect_lt(rss, 48 * 1024, "%s", out);
    cr_expect_gt(received, 0, "%s", out);
    free(out);
    /* The connection's summary is its last line: once it is there, a late
     * "peer does not read" cannot follow. */
    cr_expect(tf_px_wait_log(&px, "closed: "), "the connection closed");
    char *log = tf_px_log(&px);
    cr_expect_null(strstr(log, "peer does not read"), "%s", log);
    free(log);
}

Test(proxy_flow, sigterm_drains_and_exits_zero)
{
    int st;
    char *out = tf_px_sh(&st,
                         "echo x | timeout 20 openssl s_client -connect 127.0.0.1:%u "
                         "-servername portal.acme.example -CAfile '%s'",
                         px.port, px.ca);
    free(out);
    cr_expect_eq(tf_px_stop_proxy(&px), 0);
    char *log = tf_px_log(&px);
    cr_expect_not_null(strstr(log, "SIGTERM: stopping"), "%s", log);
    cr_expect_not_null(strstr(log, "closed: "), "one summary line per connection:\n%s", log);
    cr_expect_null(strstr(log, "handles open"), "%s", log);
    free(log);
}

/* SIGTERM drains: an open tunnel keeps working until timeouts.drain (2 s
 * here), then gets a close_notify, and the proxy exits 0. */
Test(proxy_flow, drain_keeps_an_open_tunnel_then_says_close_notify)
{
    restart_with((tf_px_opts_t){.drain = "2s"});
    char fifo[1300], outf[1300];
    snprintf(fifo, sizeof fifo, "%s/ready", px.tmp);
    snprintf(outf, sizeof outf, "%s/hold.out", px.tmp);
    int st;
    char *r = tf_px_sh(&st,
                       "timeout 60 python3 '%s/tests/proxy/client.py' hold %u portal.acme.example "
                       "'%s' 30 > '%s' 2>&1 &",
                       getenv("TF_SOURCE_DIR"), px.port, px.ca, outf);
    free(r);
    r = tf_px_wait_file(outf, "ready", NULL);
    cr_assert(strstr(r, "ready") != NULL, "the tunnel did not open: %s", r);
    free(r);
    cr_expect_eq(tf_px_stop_proxy(&px), 0, "drained and exited 0");
    char *out = tf_px_wait_file(outf, "echoes=", NULL);
    cr_expect(strstr(out, " close_notify") != NULL, "%s", out);
    unsigned echoes = 0;
    const char *e = strstr(out, "echoes=");
    cr_assert_not_null(e, "%s", out);
    sscanf(e, "echoes=%u", &echoes);
    cr_expect_geq(echoes, 5, "the tunnel worked during the drain: %s", out);
    free(out);
    char *log = tf_px_log(&px);
    cr_expect(strstr(log, "closed: shutting down") != NULL, "%s", log);
    free(log);
}
