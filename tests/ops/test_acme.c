/* GET /acme and the ACME metrics end to end (SPEC §8, §13), without an ACME
 * server: with ACME off, an empty list and no acme series; with ACME on and
 * a directory URL nothing answers (a loopback port that refuses), the name
 * fails and backs off, the wildcard and a name the store's certificates
 * already cover are unmanaged, the order is counted as an error, the token rules apply, and
 * tlsfront still serves and stops cleanly; with a server that never
 * answers, SIGTERM does not wait for the request's timeout; with a server
 * error (500 and a problem document), the problem is shown and backed off.
 * Issuance against a real server is the pebble suite's. */
#include "ops.h"

#include <criterion/criterion.h>
#include <jansson.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(ops_acme, .timeout = 300);

#define TOKEN "acme-admin-token"

Test(ops_acme, off_lists_nothing_and_renders_no_acme_series)
{
    tf_ops_t t;
    tf_ops_start(&t, 1, NULL, NULL);
    int st;
    char *out = tf_ops_admin(&t, &st, "GET", "/acme", NULL, NULL);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_str_eq(out, "[]\n");
    free(out);
    out = tf_ops_admin(&t, &st, "POST", "/acme", NULL, NULL);
    cr_expect_eq(st, 405, "%s", out);
    free(out);
    out = tf_ops_admin(&t, &st, "GET", "/metrics", NULL, NULL);
    cr_expect_eq(st, 200);
    cr_expect_null(strstr(out, "tlsfront_acme_"), "%s", out);
    free(out);
    cr_expect_eq(tf_px_stop_proxy(&t.px), 0);
    tf_ops_stop(&t);
}

static json_t *entry(json_t *list, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            return o;
    }
    cr_assert_fail("%s is not in GET /acme", name);
    return NULL;
}

Test(ops_acme, on_with_an_unreachable_server_fails_backs_off_and_serves_on)
{
    tf_ops_t t;
    memset(&t, 0, sizeof t);
    tf_px_init(&t.px, "tf-ops-acme");
    static char extra[1600];
    /* Port 1 on loopback refuses: every order fails at once. (The tenant's
     * backend is never reached.) */
    snprintf(extra, sizeof extra,
             "  site:\n    hosts: [\"site.example\", \"*.wild.example\", "
             "\"covered.tenants.example\"]\n"
             "    backends: [\"127.0.0.1:9\"]\n    mode: tcp\n    acme: true\n"
             "acme:\n  directory: \"http://127.0.0.1:1/directory\"\n"
             "  storage: \"%s/acme-state\"\n",
             t.px.tmp);
    tf_ops_start_on(&t, 1, TOKEN, extra);
    cr_assert(tf_ops_wait_log(&t, "acme: site.example: order failed (error)", 1, 30),
              "no failed order in the log");

    int st;
    char *out = tf_ops_admin(&t, &st, "GET", "/acme", NULL, NULL);
    cr_expect_eq(st, 401, "the token applies to /acme: %s", out);
    free(out);
    /* The log line comes before the manager publishes its pass: poll
     * until every name has its state (bounded). */
    json_t *list = NULL;
    for (int i = 0; i < 300; i++) {
        out = tf_ops_admin(&t, &st, "GET", "/acme", TOKEN, NULL);
        cr_expect_eq(st, 200, "%s", out);
        json_decref(list);
        list = json_loads(out, 0, NULL);
        bool settled = json_array_size(list) == 3;
        size_t k;
        json_t *o;
        json_array_foreach(list, k, o)
        {
            settled = settled && strcmp(json_string_value(json_object_get(o, "state")), "pending");
        }
        if (settled)
            break;
        free(out);
        out = NULL;
        usleep(100 * 1000); /* another process's state, polled */
    }
    if (out == NULL)
        out = json_dumps(list, 0);
    cr_assert(json_is_array(list), "%s", out);
    cr_expect_eq(json_array_size(list), 3, "%s", out);
    json_t *site = entry(list, "site.example");
    cr_expect_str_eq(json_string_value(json_object_get(site, "state")), "failed", "%s", out);
    json_t *err = json_object_get(site, "last_error");
    cr_expect(json_is_object(err), "%s", out);
    cr_expect_gt(strlen(json_string_value(json_object_get(err, "detail"))), 0);
    cr_expect(json_is_string(json_object_get(site, "next_attempt")), "%s", out);
    cr_expect(json_is_null(json_object_get(site, "reason")), "%s", out);
    json_t *wild = entry(list, "*.wild.example");
    cr_expect_str_eq(json_string_value(json_object_get(wild, "state")), "unmanaged");
    cr_expect_str_eq(json_string_value(json_object_get(wild, "reason")), "wildcard: needs DNS-01");
    /* The store in service covers it with the demo's wildcard certificate,
     * which tlsfront did not issue. */
    json_t *cov = entry(list, "covered.tenants.example");
    char want[1300];
    snprintf(want, sizeof want, "%s/wildcard.pem", t.certs);
    cr_expect_str_eq(json_string_value(json_object_get(cov, "state")), "unmanaged", "%s", out);
    cr_expect_str_eq(json_string_value(json_object_get(cov, "file")), want, "%s", out);
    cr_expect(strstr(json_string_value(json_object_get(cov, "reason")),
                     "a certificate tlsfront did not issue") != NULL,
              "%s", out);
    cr_expect(json_is_string(json_object_get(cov, "not_after")), "%s", out);
    json_decref(list);
    free(out);

    out = tf_ops_admin(&t, &st, "GET", "/metrics", TOKEN, NULL);
    cr_expect_eq(st, 200);
    cr_expect_not_null(strstr(out, "tlsfront_acme_orders_total{result=\"valid\"} 0\n"), "%s", out);
    cr_expect_not_null(strstr(out, "tlsfront_acme_orders_total{result=\"error\"} 1\n"), "%s", out);
    cr_expect_not_null(
        strstr(out, "tlsfront_acme_renewal_timestamp_seconds{name=\"site.example\"} "), "%s", out);
    cr_expect_null(strstr(out, "wild.example"), "%s", out);
    free(out);

    /* The failure is recorded in storage (0700), for the next start. */
    char path[1300];
    snprintf(path, sizeof path, "%s/acme-state", t.px.tmp);
    struct stat sb;
    cr_expect_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/acme-state/certs/site.example.json", t.px.tmp);
    char *rec = tf_px_read(path);
    cr_expect_not_null(strstr(rec, "\"failures\": 1"), "%s", rec);
    free(rec);
    /* Nothing was written into the certificate directory. */
    snprintf(path, sizeof path, "%s/site.example.pem", t.certs);
    cr_expect_neq(stat(path, &sb), 0);

    /* Serving is unaffected. */
    cr_expect(tf_ops_echo(&t, "portal.acme.example"));
    cr_expect_eq(tf_px_stop_proxy(&t.px), 0);
    tf_ops_stop(&t);
}

/* A listening socket on loopback, port 0; its port in *PORT. */
static int loopback_listener(unsigned *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(lfd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(lfd, 16), 0);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return lfd;
}

/* tlsfront with one acme: true tenant, site.example, and the ACME server's
 * directory at http://127.0.0.1:PORT/directory. */
static void start_site(tf_ops_t *t, unsigned port, const char *token)
{
    memset(t, 0, sizeof *t);
    tf_px_init(&t->px, "tf-ops-acme");
    static char extra[1600];
    snprintf(extra, sizeof extra,
             "  site:\n    hosts: [\"site.example\"]\n"
             "    backends: [\"127.0.0.1:9\"]\n    mode: tcp\n    acme: true\n"
             "acme:\n  directory: \"http://127.0.0.1:%u/directory\"\n"
             "  storage: \"%s/acme-state\"\n",
             port, t->px.tmp);
    tf_ops_start_on(t, 1, token, extra);
}

/* A server that accepts and never answers: the manager's thread is inside
 * an HTTP request (30 s timeout) when SIGTERM comes; the client's wait wakes
 * on the cancel, so tlsfront stops in seconds, not after the timeout. The
 * listener here never calls accept(): the kernel completes the connection
 * and keeps the request, and nothing is ever sent back. */
Test(ops_acme, sigterm_does_not_wait_for_a_server_that_never_answers)
{
    unsigned port;
    int lfd = loopback_listener(&port);
    tf_ops_t t;
    start_site(&t, port, NULL);
    /* The manager's first request is waiting for its answer. */
    struct pollfd pf = {.fd = lfd, .events = POLLIN};
    cr_assert_eq(poll(&pf, 1, TF_PX_WAIT_MS), 1, "the ACME client never connected");
    long long start = tf_px_now_ms();
    int st = tf_px_stop_proxy(&t.px);
    long long took = tf_px_now_ms() - start;
    cr_expect_eq(st, 0, "tlsfront exited with %d", st);
    /* Far below the 30 s request timeout, and generous for a busy machine. */
    cr_expect_lt(took, 10000, "SIGTERM took %lld ms", took);
    tf_ops_stop(&t);
    close(lfd);
}

/* ---- a server error (issue 16 item 5) --------------------------------------- */

/* An ACME server that answers everything with a 500 and a problem
 * document, on its own thread until told to stop; counts the requests. */
typedef struct {
    int lfd;
    atomic_bool stop;
    atomic_int requests;
    pthread_t thread;
} err_server_t;

static void *err_server_run(void *arg)
{
    err_server_t *s = arg;
    static const char body[] = "{\"type\":\"urn:ietf:params:acme:error:serverInternal\","
                               "\"detail\":\"the database is away\"}";
    char answer[512];
    int alen = snprintf(answer, sizeof answer,
                        "HTTP/1.1 500 Internal Server Error\r\n"
                        "Content-Type: application/problem+json\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n%s",
                        sizeof body - 1, body);
    while (!atomic_load(&s->stop)) {
        struct pollfd pf = {.fd = s->lfd, .events = POLLIN};
        if (poll(&pf, 1, 100) != 1)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        char buf[4096];
        struct pollfd rf = {.fd = fd, .events = POLLIN};
        /* The request head (small, one read is enough on loopback). */
        if (poll(&rf, 1, 10000) == 1 && read(fd, buf, sizeof buf) > 0) {
            atomic_fetch_add(&s->requests, 1);
            ssize_t n = write(fd, answer, (size_t)alen);
            (void)n; /* the client may be gone: nothing to do */
        }
        close(fd);
    }
    return NULL;
}

static unsigned err_server_start(err_server_t *s)
{
    unsigned port;
    s->lfd = loopback_listener(&port);
    atomic_store(&s->stop, false);
    atomic_store(&s->requests, 0);
    cr_assert_eq(pthread_create(&s->thread, NULL, err_server_run, s), 0);
    return port;
}

static void err_server_stop(err_server_t *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

/* The CA's server fails (500 with a problem document): the name's order
 * fails with the server's problem in GET /acme, is counted as an error,
 * backs off a minute, and everyone else is served meanwhile. */
Test(ops_acme, a_server_error_is_shown_and_backed_off_and_serving_goes_on)
{
    err_server_t srv;
    unsigned port = err_server_start(&srv);
    tf_ops_t t;
    start_site(&t, port, TOKEN);
    cr_assert(tf_ops_wait_log(&t, "acme: site.example: order failed (error)", 1, 60),
              "no failed order in the log");
    char *log = tf_px_log(&t.px);
    cr_expect_not_null(strstr(log, "the database is away"), "the problem's detail is logged: %s",
                       log);
    free(log);
    int st;
    json_t *site = NULL;
    char *out = NULL;
    for (int i = 0; i < 300; i++) { /* the manager publishes its pass after the log line */
        free(out);
        out = tf_ops_admin(&t, &st, "GET", "/acme", TOKEN, NULL);
        json_decref(site);
        site = json_loads(out, 0, NULL);
        json_t *o = json_array_get(site, 0);
        if (o != NULL && strcmp(json_string_value(json_object_get(o, "state")), "failed") == 0)
            break;
        usleep(100 * 1000); /* another process's state, polled */
    }
    json_t *o = json_array_get(site, 0);
    cr_assert_not_null(o, "%s", out);
    cr_expect_str_eq(json_string_value(json_object_get(o, "state")), "failed", "%s", out);
    json_t *err = json_object_get(o, "last_error");
    cr_expect_str_eq(json_string_value(json_object_get(err, "type")),
                     "urn:ietf:params:acme:error:serverInternal", "%s", out);
    cr_expect_str_eq(json_string_value(json_object_get(err, "detail")), "the database is away",
                     "%s", out);
    cr_expect(json_is_string(json_object_get(o, "next_attempt")), "%s", out);
    json_decref(site);
    free(out);
    /* Backed off: the record says a minute from the failure. */
    char path[1300];
    snprintf(path, sizeof path, "%s/acme-state/certs/site.example.json", t.px.tmp);
    json_t *rec = json_load_file(path, 0, NULL);
    cr_assert_not_null(rec, "%s", path);
    long long until = json_integer_value(json_object_get(rec, "backoff_until"));
    cr_expect_gt(until, 0);
    cr_expect_eq(json_integer_value(json_object_get(rec, "failures")), 1);
    json_decref(rec);
    out = tf_ops_admin(&t, &st, "GET", "/metrics", TOKEN, NULL);
    cr_expect_not_null(strstr(out, "tlsfront_acme_orders_total{result=\"error\"} 1\n"), "%s", out);
    free(out);
    /* Serving is unaffected, and no second attempt came inside the backoff. */
    int before = atomic_load(&srv.requests);
    cr_expect(tf_ops_echo(&t, "portal.acme.example"));
    cr_expect_eq(atomic_load(&srv.requests), before);
    cr_expect_eq(tf_px_stop_proxy(&t.px), 0);
    tf_ops_stop(&t);
    err_server_stop(&srv);
}
