/* GET /metrics' exposition without a network (SPEC §8): every request is
 * counted in tlsfront_requests_total, also past the per-worker table of
 * tenant names, and the text passes Prometheus' own promtool. */
#include "proxy/obs/metrics.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(metrics, .timeout = 60);

#define NWORKERS 2

typedef struct {
    tf_metrics_worker_t *m[NWORKERS];
} fixture_t;

static void fixture_init(fixture_t *f)
{
    for (unsigned i = 0; i < NWORKERS; i++) {
        f->m[i] = tf_metrics_worker_new();
    }
}

static void fixture_dispose(fixture_t *f)
{
    for (unsigned i = 0; i < NWORKERS; i++) {
        tf_metrics_worker_free(f->m[i]);
    }
}

/* The exposition as a malloc'd string. */
static char *render(fixture_t *f)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    tf_metrics_main_t main_figures = {.reloads_ok = 1};
    tf_metrics_render(out, f->m, NWORKERS, &main_figures);
    cr_assert_eq(fclose(out), 0);
    return text;
}

/* The sum of every tlsfront_requests_total sample, and how many of them
 * carry `tenant`. */
static unsigned long long requests_sum(const char *text, const char *tenant, unsigned *rows)
{
    unsigned long long total = 0;
    char want[128];
    snprintf(want, sizeof want, "tlsfront_requests_total{tenant=\"%s\",", tenant ? tenant : "");
    *rows = 0;
    for (const char *p = text; (p = strstr(p, "\ntlsfront_requests_total{")) != NULL; p++) {
        if (tenant != NULL && strncmp(p + 1, want, strlen(want)) == 0)
            (*rows)++;
        const char *v = strchr(p, '}');
        cr_assert_not_null(v);
        total += strtoull(v + 2, NULL, 10);
    }
    return total;
}

static void promtool_check(const char *text)
{
    char path[] = "/tmp/tf-metrics-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' 2>&1", path);
    int rc = system(cmd);
    unlink(path);
    cr_expect_eq(rc, 0, "promtool rejects:\n%s", text);
}

Test(metrics, a_table_that_never_fills_has_no_overflow_row)
{
    fixture_t f;
    fixture_init(&f);
    tf_metrics_request(f.m[0], "acme", 200, 3);
    tf_metrics_request(f.m[1], "acme", 502, 30);
    tf_metrics_request(f.m[1], NULL, 404, 1);
    char *text = render(&f);
    unsigned rows = 0;
    cr_expect_eq(requests_sum(text, TF_METRICS_OTHER_TENANT, &rows), 3, "%s", text);
    cr_expect_eq(rows, 0, "%s", text);
    cr_expect_not_null(strstr(text, "tlsfront_requests_total{tenant=\"acme\",class=\"2xx\"} 1\n"));
    cr_expect_not_null(strstr(text, "tlsfront_requests_total{tenant=\"acme\",class=\"5xx\"} 1\n"));
    cr_expect_not_null(strstr(text, "tlsfront_requests_total{tenant=\"-\",class=\"4xx\"} 1\n"));
    promtool_check(text);
    free(text);
    fixture_dispose(&f);
}

/* More tenants than a worker's table holds: those that find it full are
 * counted in the overflow row, and the sum over every row is every request. */
Test(metrics, tenants_past_the_table_are_counted_in_the_overflow_row)
{
    fixture_t f;
    fixture_init(&f);
    const unsigned ntenants = TF_METRICS_TENANTS + 44;
    unsigned long long sent = 0;
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned t = 0; t < ntenants; t++) {
            char name[32];
            snprintf(name, sizeof name, "tenant-%u", t);
            unsigned status = round == 2 ? 503 : 200;
            tf_metrics_request(f.m[t % NWORKERS], name, status, 2);
            tf_metrics_request(f.m[(t + 1) % NWORKERS], name, status, 2);
            sent += 2;
        }
    }
    char *text = render(&f);
    unsigned rows = 0;
    unsigned long long counted = requests_sum(text, TF_METRICS_OTHER_TENANT, &rows);
    cr_expect_eq(counted, sent, "counted %llu of %llu requests", counted, sent);
    cr_expect_eq(rows, 5, "one overflow row per class:\n%s", text);
    cr_expect_not_null(strstr(text, "tlsfront_request_duration_seconds_count 1800\n"));
    /* Each worker saw every tenant: 44 names per worker did not fit, 6
     * requests each (3 rounds, 2 workers), 2 of the 6 in round 2 (5xx). */
    char want[128];
    snprintf(want, sizeof want, "tlsfront_requests_total{tenant=\"%s\",class=\"2xx\"} %u\n",
             TF_METRICS_OTHER_TENANT, 44 * 4);
    cr_expect_not_null(strstr(text, want), "%s missing", want);
    snprintf(want, sizeof want, "tlsfront_requests_total{tenant=\"%s\",class=\"5xx\"} %u\n",
             TF_METRICS_OTHER_TENANT, 44 * 2);
    cr_expect_not_null(strstr(text, want), "%s missing", want);
    promtool_check(text);
    free(text);
    fixture_dispose(&f);
}

/* 403 and 429 are counted per tenant besides the answers' classes, summed
 * over the workers; other statuses are not denials. */
Test(metrics, denied_requests_by_tenant_and_status)
{
    fixture_t f;
    fixture_init(&f);
    tf_metrics_denied(f.m[0], "acme", 403);
    tf_metrics_denied(f.m[1], "acme", 403);
    tf_metrics_denied(f.m[1], "acme", 429);
    tf_metrics_denied(f.m[0], "acme", 404);
    tf_metrics_request(f.m[0], "other", 200, 1);
    char *text = render(&f);
    cr_expect_not_null(
        strstr(text, "tlsfront_requests_denied_total{tenant=\"acme\",status=\"403\"} 2\n"), "%s",
        text);
    cr_expect_not_null(
        strstr(text, "tlsfront_requests_denied_total{tenant=\"acme\",status=\"429\"} 1\n"), "%s",
        text);
    cr_expect_not_null(
        strstr(text, "tlsfront_requests_denied_total{tenant=\"other\",status=\"403\"} 0\n"), "%s",
        text);
    promtool_check(text);
    free(text);
    fixture_dispose(&f);
}
