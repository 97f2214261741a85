/* Backends that break their responses (issue 13), end to end: what the
 * client gets (a 502 while no head has gone out; after it, the bytes
 * relayed and a close_notify only where the framing shows the cut), and
 * that every such request has its access log line and is counted.
 * echo_backend.py's misbehaving paths are the subjects; client.py's `get`
 * reports the status, the body bytes and how the TLS connection ended. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tf_px_t px;

static void setup(void)
{
    tf_px_opts_t o = {.http = true};
    tf_px_start(&px, &o);
}

static void teardown(void)
{
    tf_px_stop(&px);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 120);

/* GET target through the proxy: "status=S body=N end=E" (client.py). */
static char *get(const char *target)
{
    int st;
    char *out = tf_px_sh(&st, "timeout 60 python3 '%s/tests/proxy/client.py' get %u %s '%s' '%s'",
                         tf_px_env("TF_SOURCE_DIR"), px.port, "portal.acme.example", px.ca, target);
    cr_assert_eq(st, 0, "%s", out);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '\n')
        out[--n] = '\0';
    return out;
}

/* The access log's line for a path, as "status cut" ("None" for none), once
 * it is there (lines are written when the exchange ends). */
static char *access_line(const char *path)
{
    char log[1300], needle[300];
    snprintf(log, sizeof log, "%s/access.log", px.tmp);
    snprintf(needle, sizeof needle, "\"path\":\"%s\"", path);
    free(tf_px_wait_file(log, needle, NULL));
    int st;
    char *out = tf_px_sh(&st,
                         "python3 -c 'import json,sys; [print(d[\"status\"], d.get(\"cut\")) for d "
                         "in map(json.loads, open(sys.argv[1])) if d[\"path\"] == sys.argv[2]]' "
                         "'%s' '%s'",
                         log, path);
    cr_assert_eq(st, 0, "%s", out);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '\n')
        out[--n] = '\0';
    return out;
}

static void expect_get(const char *target, const char *want)
{
    char *out = get(target);
    if (strcmp(out, want) != 0) {
        char *log = tf_px_log(&px);
        cr_expect_str_eq(out, want, "%s: %s\nthe proxy's log:\n%s", target, out, log);
        free(log);
    }
    free(out);
}

static void expect_logged(const char *path, const char *want)
{
    char *line = access_line(path);
    cr_expect_str_eq(line, want, "%s: %s", path, line);
    free(line);
}

/* The head and an invalid chunk size in one read: nothing has reached the
 * client, so it gets a 502 (it used to get no byte at all). */
Test(faults, a_bad_chunk_with_the_head_is_502)
{
    expect_get("/bad-chunk", "status=502 body=16 end=close_notify");
    expect_logged("/bad-chunk", "502 None");
    cr_expect(tf_px_wait_log(&px, "backend sent an invalid chunked body"));
}

/* A garbage status line was already a 502; it stays one, logged. */
Test(faults, a_garbage_status_line_is_502)
{
    expect_get("/garbage-status", "status=502 body=16 end=close_notify");
    expect_logged("/garbage-status", "502 None");
}

/* After the head: the bytes relayed, then a close_notify (the framing tells
 * the client the body is incomplete), and the access line says the status
 * sent and why the response was cut. */
Test(faults, a_response_cut_after_its_head_is_logged_with_the_reason)
{
    expect_get("/cut-length", "status=200 body=100 end=close_notify");
    expect_logged("/cut-length", "200 backend_closed");
    expect_get("/bad-chunk-later", "status=200 body=10 end=close_notify");
    expect_logged("/bad-chunk-later", "200 bad_body");
}

/* Cut responses are counted, by the class of the status sent, with their
 * duration. */
Test(faults, cut_and_failed_responses_are_counted)
{
    free(get("/cut-length"));
    free(get("/bad-chunk-later"));
    free(get("/bad-chunk"));
    free(access_line("/bad-chunk"));
    int st;
    char *out = tf_px_sh(&st,
                         "curl -sS --max-time 10 http://127.0.0.1:%u/metrics | "
                         "grep -E '^tlsfront_(requests_total|request_duration_seconds_count)'",
                         px.admin_port);
    cr_expect(strstr(out, "tlsfront_requests_total{tenant=\"acme\",class=\"2xx\"} 2") != NULL, "%s",
              out);
    cr_expect(strstr(out, "tlsfront_requests_total{tenant=\"acme\",class=\"5xx\"} 1") != NULL, "%s",
              out);
    cr_expect(strstr(out, "tlsfront_request_duration_seconds_count 3") != NULL, "%s", out);
    free(out);
}

/* A close-delimited body ends where the connection ends: cut by the idle
 * timeout, it must not end with a close_notify, which would make the 100
 * bytes look like the whole response. */
Test(faults, a_close_delimited_response_cut_gets_no_close_notify)
{
    tf_px_stop(&px);
    tf_px_opts_t o = {.http = true, .idle = "1s"};
    tf_px_start(&px, &o);
    expect_get("/stall-close-delimited", "status=200 body=100 end=truncated");
    expect_logged("/stall-close-delimited", "200 timeout");
}

/* The same when the drain's deadline ends it: the connection's close cuts
 * the response, which still gets its line. */
Test(faults, a_close_delimited_response_cut_by_the_drain_gets_no_close_notify)
{
    tf_px_stop(&px);
    tf_px_opts_t o = {.http = true, .drain = "1s"};
    tf_px_start(&px, &o);
    char outf[1300];
    snprintf(outf, sizeof outf, "%s/get.out", px.tmp);
    int st;
    free(tf_px_sh(&st,
                  "timeout 60 python3 '%s/tests/proxy/client.py' get %u portal.acme.example '%s' "
                  "/stall-close-delimited > '%s' 2>&1 &",
                  tf_px_env("TF_SOURCE_DIR"), px.port, px.ca, outf));
    /* Connected, the backend answers at once; the drain waits 1 s for it. */
    cr_assert(tf_px_wait_log(&px, " connected"), "the request reached the backend");
    cr_expect_eq(tf_px_stop_proxy(&px), 0);
    char *out = tf_px_wait_file(outf, "end=", NULL);
    cr_expect(strstr(out, "status=200 body=100 end=truncated") != NULL, "%s", out);
    free(out);
    expect_logged("/stall-close-delimited", "200 shutdown");
}

/* A client that leaves in the middle of its upload got no status, but its
 * request reached a backend: it has its line, with no status and the
 * reason, and is not counted by a status class. */
Test(faults, a_client_leaving_mid_request_is_logged_without_a_status)
{
    int st;
    free(tf_px_sh(&st,
                  "printf 'POST /upload-cut HTTP/1.1\\r\\nHost: portal.acme.example\\r\\n"
                  "Content-Length: 100\\r\\n\\r\\n0123456789' | timeout 20 openssl s_client "
                  "-quiet -no_ign_eof -connect 127.0.0.1:%u -servername portal.acme.example "
                  "-CAfile '%s' >/dev/null 2>&1",
                  px.port, px.ca));
    expect_logged("/upload-cut", "None client_closed");
    char *out = tf_px_sh(&st, "curl -sS --max-time 10 http://127.0.0.1:%u/metrics", px.admin_port);
    cr_expect(strstr(out, "tlsfront_requests_total{tenant=\"acme\"") == NULL, "%s", out);
    free(out);
}
