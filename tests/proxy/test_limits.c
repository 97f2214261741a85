/* limits.per_client (proxy/net/limits.h): the table on its own with a fake
 * clock, two threads on it at once, and end to end the connection cap at
 * accept (a real proxy, Python's ssl module as the client). */
#include "harness.h"

#include "conf/conf.h"
#include "proxy/net/limits.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- addresses ---------------------------------------------------------- */

typedef union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
} addr_t;

static addr_t v4(const char *text)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    a.in4.sin_family = AF_INET;
    a.in4.sin_port = htons(40000);
    cr_assert_eq(inet_pton(AF_INET, text, &a.in4.sin_addr), 1, "%s", text);
    return a;
}

static addr_t v6(const char *text)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    a.in6.sin6_family = AF_INET6;
    a.in6.sin6_port = htons(40001);
    cr_assert_eq(inet_pton(AF_INET6, text, &a.in6.sin6_addr), 1, "%s", text);
    return a;
}

/* The i-th of many distinct IPv4 addresses (10.x.y.z). */
static addr_t v4_nth(unsigned i)
{
    char text[32];
    snprintf(text, sizeof text, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    return v4(text);
}

static tf_limits_t *table(void)
{
    tf_limits_t *l = NULL;
    cr_assert_eq(tf_limits_new(&l), 0);
    cr_assert_not_null(l);
    return l;
}

static tf_conf_limits_t lim(uint32_t conns, uint32_t rps, uint32_t burst)
{
    tf_conf_limits_t c = {.max_connections = 1000,
                          .per_client_connections = conns,
                          .per_client_rps = rps,
                          .per_client_burst = burst};
    return c;
}

/* ---- connections -------------------------------------------------------- */

Test(limits_conn, cap_then_refused_then_released)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(2, 0, 0);
    addr_t a = v4("192.0.2.7");
    cr_assert(tf_limits_conn_open(l, &c, &a.sa));
    cr_assert(tf_limits_conn_open(l, &c, &a.sa));
    cr_assert_not(tf_limits_conn_open(l, &c, &a.sa), "the third is over the cap");
    cr_assert_not(tf_limits_conn_open(l, &c, &a.sa));
    cr_assert_eq(tf_limits_refused_connections(l), 2);
    cr_assert_eq(tf_limits_refused_requests(l), 0);
    tf_limits_conn_close(l, &a.sa);
    cr_assert(tf_limits_conn_open(l, &c, &a.sa), "a slot was given back");
    cr_assert_not(tf_limits_conn_open(l, &c, &a.sa), "a refused one took no slot");
    tf_limits_conn_close(l, &a.sa);
    tf_limits_conn_close(l, &a.sa);
    cr_assert_eq(tf_limits_clients(l), 0, "no connection, full bucket: no entry");
    tf_limits_free(l);
}

Test(limits_conn, off_touches_nothing)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(0, 0, 0);
    addr_t a = v4("192.0.2.7");
    for (int i = 0; i < 100; i++)
        cr_assert(tf_limits_conn_open(l, &c, &a.sa));
    cr_assert_eq(tf_limits_clients(l), 0);
    cr_assert_eq(tf_limits_request(l, &c, &a.sa, 0), 0);
    cr_assert_eq(tf_limits_clients(l), 0);
    tf_limits_free(l);
}

Test(limits_conn, addresses_are_independent)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(1, 0, 0);
    addr_t a = v4("192.0.2.7"), b = v4("192.0.2.8"), x = v6("2001:db8::7"), y = v6("2001:db8::8");
    cr_assert(tf_limits_conn_open(l, &c, &a.sa));
    cr_assert(tf_limits_conn_open(l, &c, &b.sa));
    cr_assert(tf_limits_conn_open(l, &c, &x.sa));
    cr_assert(tf_limits_conn_open(l, &c, &y.sa));
    cr_assert_not(tf_limits_conn_open(l, &c, &a.sa));
    cr_assert_not(tf_limits_conn_open(l, &c, &x.sa));
    cr_assert_eq(tf_limits_clients(l), 4);
    tf_limits_conn_close(l, &a.sa);
    tf_limits_conn_close(l, &b.sa);
    tf_limits_conn_close(l, &x.sa);
    tf_limits_conn_close(l, &y.sa);
    cr_assert_eq(tf_limits_clients(l), 0);
    tf_limits_free(l);
}

Test(limits_conn, ipv4_mapped_is_the_ipv4_client)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(2, 0, 0);
    addr_t a = v4("198.51.100.9"), m = v6("::ffff:198.51.100.9");
    cr_assert(tf_limits_conn_open(l, &c, &a.sa));
    cr_assert(tf_limits_conn_open(l, &c, &m.sa));
    cr_assert_not(tf_limits_conn_open(l, &c, &a.sa));
    cr_assert_not(tf_limits_conn_open(l, &c, &m.sa));
    cr_assert_eq(tf_limits_clients(l), 1);
    tf_limits_conn_close(l, &a.sa); /* released under the other spelling */
    tf_limits_conn_close(l, &a.sa);
    cr_assert_eq(tf_limits_clients(l), 0);
    tf_limits_free(l);
}

Test(limits_conn, no_address_is_never_limited)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(1, 1, 1);
    struct sockaddr none = {.sa_family = AF_UNSPEC};
    cr_assert(tf_limits_conn_open(l, &c, &none));
    cr_assert(tf_limits_conn_open(l, &c, &none));
    cr_assert_eq(tf_limits_request(l, &c, &none, 0), 0);
    cr_assert_eq(tf_limits_request(l, &c, &none, 0), 0);
    tf_limits_conn_close(l, &none);
    cr_assert_eq(tf_limits_clients(l), 0);
    tf_limits_free(l);
}

/* ---- requests ----------------------------------------------------------- */

Test(limits_req, burst_then_refused)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(0, 10, 5);
    addr_t a = v4("192.0.2.7");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(tf_limits_request(l, &c, &a.sa, 1000), 0, "request %d of the burst", i);
    cr_assert_eq(tf_limits_request(l, &c, &a.sa, 1000), 1);
    cr_assert_eq(tf_limits_request(l, &c, &a.sa, 1000), 1);
    cr_assert_eq(tf_limits_refused_requests(l), 2);
    cr_assert_eq(tf_limits_refused_connections(l), 0);
    tf_limits_free(l);
}

Test(limits_req, burst_zero_is_rps)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(0, 3, 0);
    addr_t a = v4("192.0.2.7");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tf_limits_request(l, &c, &a.sa, 50), 0);
    cr_assert_neq(tf_limits_request(l, &c, &a.sa, 50), 0);
    tf_limits_free(l);
}

Test(limits_req, refills_at_the_rate)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(0, 10, 5); /* a token every 100 ms */
    addr_t a = v4("192.0.2.7");
    uint64_t t = 5000;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(tf_limits_request(l, &c, &a.sa, t), 0);
    cr_assert_neq(tf_limits_request(l, &c, &a.sa, t + 99), 0, "0.99 of a token");
    cr_assert_eq(tf_limits_request(l, &c, &a.sa, t + 100), 0, "one token after 100 ms");
    cr_assert_neq(tf_limits_request(l, &c, &a.sa, t + 100), 0);
    /* 250 ms more: 2.5 tokens, two requests. */
    cr_assert_eq(tf_limits_request(l, &c, &a.sa, t + 350), 0);
    cr_assert_eq(tf_limits_request(l, &c, &a.sa, t + 350), 0);
    cr_assert_neq(tf_limits_request(l, &c, &a.sa, t + 350), 0);
    /* The half token kept: 50 ms more make one. */
    cr_assert_eq(tf_limits_request(l, &c, &a.sa, t + 400), 0);
    /* A long pause refills up to the burst, no further. */
    for (int i = 0; i < 5; i++)
        cr_assert_eq(tf_limits_request(l, &c, &a.sa, t + 3600000), 0);
    cr_assert_neq(tf_limits_request(l, &c, &a.sa, t + 3600000), 0);
    /* A reading from another thread's clock that is behind refills nothing. */
    cr_assert_neq(tf_limits_request(l, &c, &a.sa, t), 0);
    tf_limits_free(l);
}

Test(limits_req, retry_after_is_the_wait_for_a_token_in_whole_seconds)
{
    tf_limits_t *l = table();
    tf_conf_limits_t slow = lim(0, 1, 1); /* a token a second */
    addr_t a = v4("192.0.2.7");
    cr_assert_eq(tf_limits_request(l, &slow, &a.sa, 0), 0);
    cr_assert_eq(tf_limits_request(l, &slow, &a.sa, 0), 1, "1000 ms to wait: 1 s");
    cr_assert_eq(tf_limits_request(l, &slow, &a.sa, 1), 1, "999 ms: rounded up");
    cr_assert_eq(tf_limits_request(l, &slow, &a.sa, 999), 1, "1 ms: at least 1 s");
    cr_assert_eq(tf_limits_request(l, &slow, &a.sa, 1000), 0);
    /* A fast rate: a token is milliseconds away, still 1 s (never 0). */
    tf_conf_limits_t fast = lim(0, 1000000, 1);
    addr_t b = v4("192.0.2.8");
    cr_assert_eq(tf_limits_request(l, &fast, &b.sa, 0), 0);
    cr_assert_eq(tf_limits_request(l, &fast, &b.sa, 0), 1);
    tf_limits_free(l);
}

Test(limits_req, addresses_are_independent)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(0, 1, 2);
    addr_t a = v4("192.0.2.7"), b = v4("192.0.2.8"), x = v6("2001:db8::7");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(tf_limits_request(l, &c, &a.sa, 0), 0);
        cr_assert_eq(tf_limits_request(l, &c, &b.sa, 0), 0);
        cr_assert_eq(tf_limits_request(l, &c, &x.sa, 0), 0);
    }
    cr_assert_neq(tf_limits_request(l, &c, &a.sa, 0), 0);
    cr_assert_neq(tf_limits_request(l, &c, &b.sa, 0), 0);
    cr_assert_neq(tf_limits_request(l, &c, &x.sa, 0), 0);
    addr_t fresh = v6("2001:db8::8");
    cr_assert_eq(tf_limits_request(l, &c, &fresh.sa, 0), 0);
    tf_limits_free(l);
}

Test(limits_req, ipv4_mapped_is_the_ipv4_client)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(0, 1, 2);
    addr_t a = v4("198.51.100.9"), m = v6("::ffff:198.51.100.9");
    cr_assert_eq(tf_limits_request(l, &c, &m.sa, 0), 0);
    cr_assert_eq(tf_limits_request(l, &c, &a.sa, 0), 0);
    cr_assert_neq(tf_limits_request(l, &c, &a.sa, 0), 0);
    cr_assert_neq(tf_limits_request(l, &c, &m.sa, 0), 0);
    cr_assert_eq(tf_limits_clients(l), 1);
    tf_limits_free(l);
}

/* Clients that went away are reclaimed by later requests' sweeps, so the
 * table holds the clients present: a first wave of clients, then (their
 * buckets long full) a second wave of others, several requests each. */
Test(limits_req, entries_reclaimed_once_refilled_without_connections)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(4, 10, 20);
    enum { WAVE = 1000 };
    for (unsigned i = 0; i < WAVE; i++) {
        addr_t a = v4_nth(i);
        cr_assert_eq(tf_limits_request(l, &c, &a.sa, 0), 0);
    }
    addr_t held = v4_nth(0);
    cr_assert(tf_limits_conn_open(l, &c, &held.sa));
    cr_assert_eq(tf_limits_clients(l), WAVE);
    for (unsigned r = 0; r < 8; r++) {
        for (unsigned i = WAVE; i < 2 * WAVE; i++) {
            addr_t a = v4_nth(i);
            cr_assert_eq(tf_limits_request(l, &c, &a.sa, 60000), 0);
        }
    }
    /* The second wave, and the one first-wave client still connected. */
    cr_assert_eq(tf_limits_clients(l), WAVE + 1);
    tf_limits_conn_close(l, &held.sa);
    cr_assert_eq(tf_limits_clients(l), WAVE, "its bucket was full: gone at its close");
    tf_limits_free(l);
}

/* An entry whose bucket is not full stays after its last connection (its
 * client would otherwise get a fresh burst by reconnecting). */
Test(limits_req, a_closed_client_keeps_its_empty_bucket)
{
    tf_limits_t *l = table();
    tf_conf_limits_t c = lim(1, 1, 1);
    addr_t a = v4("192.0.2.7");
    cr_assert(tf_limits_conn_open(l, &c, &a.sa));
    cr_assert_eq(tf_limits_request(l, &c, &a.sa, 0), 0);
    tf_limits_conn_close(l, &a.sa);
    cr_assert_eq(tf_limits_clients(l), 1);
    cr_assert(tf_limits_conn_open(l, &c, &a.sa));
    cr_assert_eq(tf_limits_request(l, &c, &a.sa, 10), 1);
    tf_limits_conn_close(l, &a.sa);
    tf_limits_free(l);
}

/* ---- threads ------------------------------------------------------------ */

typedef struct {
    tf_limits_t *l;
    unsigned first; /* the first of the addresses this thread uses */
    unsigned refused;
    unsigned allowed; /* requests let through (the shared-bucket test) */
} hammer_t;

#define HAMMER_ADDRS 24
#define HAMMER_ROUNDS 20000

/* Opens and closes connections on addresses the other thread uses too
 * (half of them shared), at a cap of 2 so that some are refused; closes
 * only what it was let open. */
static void *hammer_conns(void *arg)
{
    hammer_t *h = arg;
    tf_conf_limits_t c = lim(2, 0, 0);
    unsigned open[HAMMER_ADDRS] = {0};
    for (unsigned r = 0; r < HAMMER_ROUNDS; r++) {
        unsigned k = (r * 7 + h->first) % HAMMER_ADDRS;
        addr_t a = v4_nth(h->first + k);
        if (tf_limits_conn_open(h->l, &c, &a.sa))
            open[k]++;
        else
            h->refused++;
        if (open[k] > 0 && r % 3 != 0) {
            tf_limits_conn_close(h->l, &a.sa);
            open[k]--;
        }
    }
    for (unsigned k = 0; k < HAMMER_ADDRS; k++) {
        addr_t a = v4_nth(h->first + k);
        for (; open[k] > 0; open[k]--)
            tf_limits_conn_close(h->l, &a.sa);
    }
    return NULL;
}

static void run_two(void *(*fn)(void *), hammer_t h[2])
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, fn, &h[i]), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_join(t[i], NULL), 0);
}

Test(limits_threads, conn_open_close_end_with_no_entry)
{
    tf_limits_t *l = table();
    hammer_t h[2] = {{.l = l, .first = 0}, {.l = l, .first = HAMMER_ADDRS / 2}};
    run_two(hammer_conns, h);
    cr_assert_eq(tf_limits_refused_connections(l), h[0].refused + h[1].refused);
    cr_assert_eq(tf_limits_clients(l), 0);
    tf_limits_free(l);
}

#define SHARED_BURST 5000u

/* Requests from one address at one instant: the bucket holds SHARED_BURST. */
static void *hammer_requests(void *arg)
{
    hammer_t *h = arg;
    tf_conf_limits_t c = lim(0, 1, SHARED_BURST);
    addr_t a = v6("2001:db8::1");
    for (unsigned r = 0; r < SHARED_BURST; r++) {
        if (tf_limits_request(h->l, &c, &a.sa, 7) == 0)
            h->allowed++;
        else
            h->refused++;
    }
    return NULL;
}

Test(limits_threads, one_bucket_two_threads_gives_the_burst_exactly)
{
    tf_limits_t *l = table();
    hammer_t h[2] = {{.l = l}, {.l = l}};
    run_two(hammer_requests, h);
    cr_assert_eq(h[0].allowed + h[1].allowed, SHARED_BURST);
    cr_assert_eq(tf_limits_refused_requests(l), SHARED_BURST);
    tf_limits_free(l);
}

/* ---- end to end: the connection cap at accept --------------------------- */

static tf_px_t px;

static void e2e_fini(void)
{
    tf_px_stop(&px);
}

/* One mode tcp tenant on the echo backend, limits.per_client.connections 2. */
static void write_e2e_config(char *path, size_t len)
{
    snprintf(path, len, "%s/tlsfront.yaml", px.tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "workers: 2\n"
            "log:\n  level: debug\n"
            "listen:\n  https: [\"127.0.0.1:0\"]\n"
            "admin:\n  listen: \"127.0.0.1:0\"\n"
            "tls:\n  certs: [\"%s/certs\"]\n  default_cert: %s/certs/system.pem\n"
            "limits:\n  per_client: {connections: 2}\n"
            "tenants:\n"
            "  acme:\n    hosts: [\"portal.acme.example\"]\n"
            "    backends: [\"127.0.0.1:%u\"]\n    mode: tcp\n",
            px.demo, px.demo, px.backend_port);
    cr_assert_eq(fclose(f), 0);
}

/* The configuration the test wrote sets limits.per_client.connections to 2:
 * anything else (a loader that lost the key) fails the test here. */
static void expect_conf_loads_per_client(const char *path)
{
    char err[2048] = "";
    tf_conf_t *conf = NULL;
    int rc = tf_conf_load_file(path, &conf, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    uint32_t n = tf_conf_limits(conf)->per_client_connections;
    tf_conf_unref(conf);
    cr_assert_eq(n, 2);
}

static unsigned long long refused_metric(void)
{
    int st;
    char *out = tf_px_sh(&st,
                         "curl -sS --max-time 10 http://127.0.0.1:%u/metrics | "
                         "sed -n 's/^tlsfront_per_client_refused_total{kind=\"connections\"} //p'",
                         px.admin_port);
    cr_assert_eq(st, 0, "%s", out);
    char *end = NULL;
    unsigned long long n = strtoull(out, &end, 10);
    cr_assert(end != out, "no tlsfront_per_client_refused_total{kind=\"connections\"}: %s", out);
    free(out);
    return n;
}

Test(limits_e2e, third_connection_closed_before_its_handshake, .fini = e2e_fini, .timeout = 120)
{
    tf_px_init(&px, "tf-limits-test");
    tf_px_demo_pki(&px);
    tf_px_start_backend(&px);
    char config[1200];
    write_e2e_config(config, sizeof config);
    expect_conf_loads_per_client(config);
    tf_px_launch(&px, config, 0);
    cr_assert_eq(refused_metric(), 0);

    char script[1100];
    snprintf(script, sizeof script, "%s/tests/proxy/limits_client.py", tf_px_env("TF_SOURCE_DIR"));
    int st;
    char *out = tf_px_sh(&st, "timeout 100 python3 '%s' %u '%s' portal.acme.example 2", script,
                         px.port, px.ca);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strstr(out, "conn0: echo ok") && strstr(out, "conn1: echo ok"), "%s", out);
    cr_assert(strstr(out, "over the limit: closed before the handshake"), "%s", out);
    cr_assert(strstr(out, "after a close: echo ok"), "%s", out);
    free(out);

    /* Refused before any TLS: logged with the address and the limit,
     * counted, and not a failed handshake. */
    cr_assert(tf_px_wait_log(&px, "127.0.0.1"), "no refusal logged");
    char *log = tf_px_log(&px);
    cr_assert(strstr(log, "refused: the client holds limits.per_client.connections (2)"), "%s",
              log);
    free(log);
    cr_assert_geq(refused_metric(), 1);
    out = tf_px_sh(&st, "curl -sS --max-time 10 http://127.0.0.1:%u/metrics", px.admin_port);
    cr_assert_eq(st, 0);
    cr_assert(strstr(out, "tlsfront_handshake_failures_total{reason=\"other\"} 0"), "%s", out);
    free(out);
}
