/* GET /backends and POST /backends/TENANT/ADDRESS end to end (SPEC §8,
 * §11): the state of each backend, drain and maint taking a backend out of
 * rotation (sticky clients included), ready bringing it back, the state
 * kept across a reload, and the answers to bad requests. */
#include "ops.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(backends, .timeout = 300);

/* Tenant pool: two named echo backends, cookie stickiness. */
static void start(tf_ops_t *t, size_t *a, size_t *b)
{
    memset(t, 0, sizeof *t);
    static char extra[600];
    /* The backends' ports are known only once they run: start them on the
     * tf_px_t that tf_ops_start() then keeps (it clears only what it sets). */
    tf_px_t *px = &t->px;
    tf_px_init(px, "tf-backends-test");
    *a = tf_px_add_echo(px, "one");
    *b = tf_px_add_echo(px, "two");
    snprintf(extra, sizeof extra,
             "  pool:\n"
             "    hosts: [\"pool.tenants.example\"]\n"
             "    backends: [\"127.0.0.1:%u\", \"127.0.0.1:%u\"]\n"
             "    balance: cookie\n",
             px->echos_port[*a], px->echos_port[*b]);
    tf_ops_start_on(t, 1, NULL, extra);
}

/* N requests to the pool tenant in one curl (one connection), with the
 * cookie jar JAR read (and written when WRITE); the output. */
static char *requests(tf_ops_t *t, unsigned n, const char *jar, bool write)
{
    char urls[64 * 80] = "";
    for (unsigned i = 0; i < n && i < 64; i++) {
        char u[80];
        snprintf(u, sizeof u, " 'https://pool.tenants.example:%u/r%u'", t->px.port, i);
        strcat(urls, u);
    }
    int st;
    char *out = tf_px_sh(&st,
                         "curl --http1.1 -sS -i --max-time 60 --cacert '%s' --resolve "
                         "pool.tenants.example:%u:127.0.0.1 %s '%s' %s",
                         t->px.ca, t->px.port, write ? "-c" : "-b", jar, urls);
    cr_assert_eq(st, 0, "curl: %s", out);
    return out;
}

static char *post(tf_ops_t *t, int *status, const char *path, const char *json)
{
    char file[1300];
    snprintf(file, sizeof file, "%s/body.json", t->px.tmp);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs(json, f);
    fclose(f);
    return tf_ops_admin(t, status, "POST", path, NULL, file);
}

Test(backends, drain_moves_sticky_clients_and_ready_brings_the_backend_back)
{
    tf_ops_t t;
    size_t a, b;
    start(&t, &a, &b);
    char jar[1300];
    snprintf(jar, sizeof jar, "%s/jar", t.px.tmp);
    char *out = requests(&t, 1, jar, true);
    const char *mine = strstr(out, "\"backend\": \"one\"") ? "one" : "two";
    unsigned port = t.px.echos_port[strcmp(mine, "one") == 0 ? a : b];
    free(out);

    int st;
    char *doc = tf_ops_admin(&t, &st, "GET", "/backends", NULL, NULL);
    cr_expect_eq(st, 200, "%s", doc);
    /* The pool tenant's route comes last (file order). */
    const char *pool = strstr(doc, "\"tenant\":\"pool\",\"route\":\"/\",\"balance\":\"cookie\"");
    cr_assert_not_null(pool, "%s", doc);
    cr_expect_eq(tf_px_count(pool, "\"state\":\"up\""), 2, "%s", doc);
    cr_expect(strstr(pool, "\"requests\":{\"1xx\":0,\"2xx\":1,") != NULL, "%s", doc);
    free(doc);

    /* Drain the sticky client's backend: it moves, with a new cookie. */
    char path[200];
    snprintf(path, sizeof path, "/backends/pool/127.0.0.1:%u", port);
    char *ans = post(&t, &st, path, "{\"state\": \"drain\"}");
    cr_expect_eq(st, 200, "%s", ans);
    cr_expect(strstr(ans, "\"state\":\"drain\"") != NULL, "%s", ans);
    free(ans);
    out = requests(&t, 20, jar, false);
    char want[64];
    snprintf(want, sizeof want, "\"backend\": \"%s\"", mine);
    cr_expect_eq(tf_px_count(out, want), 0, "a drained backend got requests:\n%s", out);
    cr_expect_geq(tf_px_count(out, "Set-Cookie: TFSRV="), 1, "%s", out);
    free(out);

    /* The state survives a reload of an unchanged configuration. */
    ans = tf_ops_admin(&t, &st, "POST", "/reload", NULL, NULL);
    cr_expect_eq(st, 200, "%s", ans);
    free(ans);
    doc = tf_ops_admin(&t, &st, "GET", "/backends", NULL, NULL);
    cr_expect_eq(tf_px_count(doc, "\"state\":\"drain\""), 1, "%s", doc);
    cr_expect_eq(tf_px_count(doc, "\"state\":\"drain\",\"active_requests\":0"), 1, "%s", doc);
    free(doc);

    /* Back in rotation: round robin reaches it again. */
    ans = post(&t, &st, path, "{\"state\": \"ready\"}");
    cr_expect_eq(st, 200, "%s", ans);
    cr_expect(strstr(ans, "\"state\":\"up\"") != NULL, "%s", ans);
    free(ans);
    out = requests(&t, 10, "/dev/null", false);
    cr_expect_geq(tf_px_count(out, want), 1, "%s", out);
    free(out);
    tf_ops_stop(&t);
}

Test(backends, bad_requests_get_404_400_and_405)
{
    tf_ops_t t;
    size_t a, b;
    start(&t, &a, &b);
    int st;
    char path[200];
    snprintf(path, sizeof path, "/backends/pool/127.0.0.1:%u", t.px.echos_port[a]);
    free(post(&t, &st, "/backends/nobody/127.0.0.1:1", "{\"state\": \"drain\"}"));
    cr_expect_eq(st, 404);
    free(post(&t, &st, "/backends/pool/127.0.0.1:1", "{\"state\": \"drain\"}"));
    cr_expect_eq(st, 404);
    free(post(&t, &st, path, "{\"state\": \"asleep\"}"));
    cr_expect_eq(st, 400);
    free(post(&t, &st, path, "not json"));
    cr_expect_eq(st, 400);
    free(tf_ops_admin(&t, &st, "GET", path, NULL, NULL));
    cr_expect_eq(st, 405);
    free(tf_ops_admin(&t, &st, "DELETE", "/backends", NULL, NULL));
    cr_expect_eq(st, 405);
    /* maint: out of rotation, every request to the other. */
    char *ans = post(&t, &st, path, "{\"state\": \"maint\"}");
    cr_expect_eq(st, 200, "%s", ans);
    cr_expect(strstr(ans, "\"state\":\"maint\"") != NULL, "%s", ans);
    free(ans);
    char *out = requests(&t, 10, "/dev/null", false);
    cr_expect_eq(tf_px_count(out, "\"backend\": \"one\""), 0, "%s", out);
    cr_expect_eq(tf_px_count(out, "\"backend\": \"two\""), 10, "%s", out);
    free(out);
    tf_ops_stop(&t);
}
