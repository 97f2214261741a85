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

/* limits.per_client's refusals, from the main figures (proxy/net/limits.c
 * counts them), one sample per kind. */
Test(metrics, per_client_refusals_by_kind)
{
    fixture_t f;
    fixture_init(&f);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    tf_metrics_main_t m = {.per_client_refused_connections = 3, .per_client_refused_requests = 5};
    tf_metrics_render(out, f.m, NWORKERS, &m);
    cr_assert_eq(fclose(out), 0);
    cr_expect_not_null(strstr(text, "# TYPE tlsfront_per_client_refused_total counter\n"), "%s",
                       text);
    cr_expect_not_null(
        strstr(text, "\ntlsfront_per_client_refused_total{kind=\"connections\"} 3\n"), "%s", text);
    cr_expect_not_null(strstr(text, "\ntlsfront_per_client_refused_total{kind=\"requests\"} 5\n"),
                       "%s", text);
    promtool_check(text);
    free(text);
    fixture_dispose(&f);
}

/* Per-backend rows (from the registry, as plain structs): every family
 * for every row, the state as one 1 among four, and promtool's approval. */
Test(metrics, backend_rows_render_requests_failures_in_flight_and_state)
{
    fixture_t f;
    fixture_init(&f);
    tf_metrics_backend_row_t rows[2] = {
        {.tenant = "acme", .address = "10.0.0.1:80", .state = "up",
         .requests = {0, 7, 0, 1, 2}, .failures = 3, .active_requests = 4, .active_tunnels = 1},
        {.tenant = "acme", .address = "10.0.0.2:80", .state = "drain"},
    };
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    tf_metrics_main_t m = {.backends = rows, .nbackends = 2};
    tf_metrics_render(out, f.m, NWORKERS, &m);
    cr_assert_eq(fclose(out), 0);
    const char *want[] = {
        "tlsfront_backend_up{tenant=\"acme\",backend=\"10.0.0.1:80\"} 1\n",
        "tlsfront_backend_up{tenant=\"acme\",backend=\"10.0.0.2:80\"} 0\n",
        "tlsfront_backend_state{tenant=\"acme\",backend=\"10.0.0.2:80\",state=\"drain\"} 1\n",
        "tlsfront_backend_state{tenant=\"acme\",backend=\"10.0.0.2:80\",state=\"up\"} 0\n",
        "tlsfront_backend_requests_total{tenant=\"acme\",backend=\"10.0.0.1:80\",class=\"2xx\"} 7\n",
        "tlsfront_backend_requests_total{tenant=\"acme\",backend=\"10.0.0.1:80\",class=\"5xx\"} 2\n",
        "tlsfront_backend_failures_total{tenant=\"acme\",backend=\"10.0.0.1:80\"} 3\n",
        "tlsfront_backend_in_flight{tenant=\"acme\",backend=\"10.0.0.1:80\",kind=\"request\"} 4\n",
        "tlsfront_backend_in_flight{tenant=\"acme\",backend=\"10.0.0.1:80\",kind=\"tunnel\"} 1\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_not_null(strstr(text, want[i]), "missing %s in:\n%s", want[i], text);
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

/* Before any HTTP/2 traffic every HTTP/2 family and every label value is
 * there at 0 (a rate() has a series from the first scrape), with its HELP
 * and TYPE lines. */
Test(metrics, http2_families_are_present_at_zero)
{
    fixture_t f;
    fixture_init(&f);
    char *text = render(&f);
    const char *want[] = {
        "# HELP tlsfront_http2_connections_total ",
        "# TYPE tlsfront_http2_connections_total counter\n",
        "\ntlsfront_http2_connections_total 0\n",
        "# HELP tlsfront_http2_streams_total ",
        "# TYPE tlsfront_http2_streams_total counter\n",
        "\ntlsfront_http2_streams_total 0\n",
        "# HELP tlsfront_http2_goaway_total ",
        "# TYPE tlsfront_http2_goaway_total counter\n",
        "\ntlsfront_http2_goaway_total{reason=\"drain\"} 0\n",
        "\ntlsfront_http2_goaway_total{reason=\"idle\"} 0\n",
        "\ntlsfront_http2_goaway_total{reason=\"calm\"} 0\n",
        "\ntlsfront_http2_goaway_total{reason=\"protocol\"} 0\n",
        "# HELP tlsfront_requests_protocol_total ",
        "# TYPE tlsfront_requests_protocol_total counter\n",
        "\ntlsfront_requests_protocol_total{protocol=\"HTTP/1.1\"} 0\n",
        "\ntlsfront_requests_protocol_total{protocol=\"HTTP/2\"} 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_not_null(strstr(text, want[i]), "missing %s in:\n%s", want[i], text);
    promtool_check(text);
    free(text);
    fixture_dispose(&f);
}

/* HTTP/2 connections, streams, GOAWAYs by reason and requests by protocol
 * are summed over the workers, each reason and protocol on its own. */
Test(metrics, http2_counters_are_summed_over_workers)
{
    fixture_t f;
    fixture_init(&f);
    tf_metrics_h2_connection(f.m[0]);
    tf_metrics_h2_connection(f.m[1]);
    tf_metrics_h2_connection(f.m[1]);
    for (unsigned i = 0; i < 5; i++)
        tf_metrics_h2_stream(f.m[i % NWORKERS]);
    tf_metrics_h2_goaway(f.m[0], TF_MH2_GOAWAY_DRAIN);
    tf_metrics_h2_goaway(f.m[1], TF_MH2_GOAWAY_DRAIN);
    tf_metrics_h2_goaway(f.m[1], TF_MH2_GOAWAY_CALM);
    tf_metrics_h2_goaway(f.m[0], TF_MH2_GOAWAY_PROTOCOL);
    tf_metrics_h2_goaway(f.m[0], TF_MH2_GOAWAY_PROTOCOL);
    tf_metrics_h2_goaway(f.m[1], TF_MH2_GOAWAY_PROTOCOL);
    tf_metrics_request_protocol(f.m[0], false);
    tf_metrics_request_protocol(f.m[0], true);
    tf_metrics_request_protocol(f.m[1], true);
    tf_metrics_request_protocol(f.m[1], true);
    char *text = render(&f);
    const char *want[] = {
        "\ntlsfront_http2_connections_total 3\n",
        "\ntlsfront_http2_streams_total 5\n",
        "\ntlsfront_http2_goaway_total{reason=\"drain\"} 2\n",
        "\ntlsfront_http2_goaway_total{reason=\"idle\"} 0\n",
        "\ntlsfront_http2_goaway_total{reason=\"calm\"} 1\n",
        "\ntlsfront_http2_goaway_total{reason=\"protocol\"} 3\n",
        "\ntlsfront_requests_protocol_total{protocol=\"HTTP/1.1\"} 1\n",
        "\ntlsfront_requests_protocol_total{protocol=\"HTTP/2\"} 3\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_not_null(strstr(text, want[i]), "missing %s in:\n%s", want[i], text);
    promtool_check(text);
    free(text);
    fixture_dispose(&f);
}

/* The exposition with the given main-thread figures. */
static char *render_main(fixture_t *f, const tf_metrics_main_t *m)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    tf_metrics_render(out, f->m, NWORKERS, m);
    cr_assert_eq(fclose(out), 0);
    return text;
}

Test(metrics, acme_off_renders_no_acme_series)
{
    fixture_t f;
    fixture_init(&f);
    tf_metrics_main_t m = {.reloads_ok = 1};
    char *text = render_main(&f, &m);
    cr_expect_null(strstr(text, "tlsfront_acme_"), "%s", text);
    promtool_check(text);
    free(text);
    fixture_dispose(&f);
}

Test(metrics, acme_orders_by_result_and_the_next_renewal_per_name)
{
    fixture_t f;
    fixture_init(&f);
    tf_metrics_acme_row_t names[] = {{"portal.acme.example", 1790000000},
                                     {"odd\"name\\", 1790000100}};
    tf_metrics_main_t m = {
        .acme = true,
        .acme_orders = {3, 1, 2},
        .acme_names = names,
        .nacme = 2,
    };
    char *text = render_main(&f, &m);
    cr_expect_not_null(strstr(text, "# TYPE tlsfront_acme_orders_total counter\n"), "%s", text);
    cr_expect_not_null(strstr(text, "tlsfront_acme_orders_total{result=\"valid\"} 3\n"));
    cr_expect_not_null(strstr(text, "tlsfront_acme_orders_total{result=\"invalid\"} 1\n"));
    cr_expect_not_null(strstr(text, "tlsfront_acme_orders_total{result=\"error\"} 2\n"));
    cr_expect_not_null(strstr(text, "# TYPE tlsfront_acme_renewal_timestamp_seconds gauge\n"), "%s",
                       text);
    cr_expect_not_null(strstr(text, "tlsfront_acme_renewal_timestamp_seconds{name=\"portal.acme."
                                    "example\"} 1790000000\n"));
    /* Label values escaped. */
    cr_expect_not_null(strstr(
        text, "tlsfront_acme_renewal_timestamp_seconds{name=\"odd\\\"name\\\\\"} 1790000100\n"));
    promtool_check(text);
    free(text);
    fixture_dispose(&f);
}
