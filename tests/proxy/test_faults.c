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
    cr_expect_str_eq(out, want, "%s: %s", target, out);
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
