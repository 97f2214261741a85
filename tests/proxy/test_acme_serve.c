/* The ACME challenges a worker serves (SPEC §13), in process: one worker
 * (tf_worker_new, as `tlsfront run` makes them) on loopback sockets, with
 * the process's challenge table in tf_shared_t, and real clients. What the
 * tls/ and redirect tests cannot show: the worker's wiring of the table to
 * tls/'s provider and to port 80, and the connection closed right after a
 * tls-alpn-01 handshake (RFC 8737 §3). The validation certificate is made
 * with openssl at test time; the snapshot is tests/tls's fixtures. */
#include "../tls/harness.h"
#include "acme/acme.h"
#include "proxy/net/net.h"
#include "tests/harness/harness.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct {
    tf_shared_t shared;
    tf_worker_t *worker;
    tf_worker_t *workers[1];
    tf_metrics_worker_t *metrics;
    tf_acme_challenges_t *table;
    int fds[1], http_fds[1];
    unsigned https_port, http_port;
} t;

static int listen_any(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 64), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* acme.storage, where another instance would publish its http-01 answers. */
static char storage[1200];

static tf_conf_t *config(void)
{
    snprintf(storage, sizeof storage, "%s/acme-state", hx_dir());
    static char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "listen:\n  https: [\"127.0.0.1:0\"]\n  http: [\"127.0.0.1:0\"]\n"
             /* directory: storage is read only where the client is
              * configured (the client itself does not run here). */
             "acme:\n  directory: \"https://acme.invalid/directory\"\n  webroot: null\n"
             "  storage: \"%s\"\nlog:\n  access: \"off\"\n"
             /* Longer than s_client's `timeout`: only the close under test
              * can end it sooner. */
             "timeouts:\n  request_header: 120s\n  idle: 120s\n"
             "tenants:\n  acme:\n    hosts: [\"portal.acme.example\"]\n"
             "    backends: [\"127.0.0.1:9\"]\n",
             storage);
    tf_conf_t *c = NULL;
    char err[1024] = "";
    cr_assert_eq(tf_conf_load_buffer("test.yaml", yaml, strlen(yaml), &c, err, sizeof err), 0, "%s",
                 err);
    return c;
}

/* A self-signed P-256 validation certificate for host (RFC 8737 §3; the
 * acmeIdentifier digest is arbitrary: only the ACME server checks it), put
 * into the table. */
static void put_validation_cert(const char *host)
{
    int st;
    char *out = tf_px_sh(&st,
                         "cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
                         "ec_paramgen_curve:P-256 -nodes -keyout v.key -out v.crt -days 7 "
                         "-subj /CN=acme-validation -addext 'subjectAltName=DNS:%s' "
                         "-addext '1.3.6.1.5.5.7.1.31=critical,DER:0420%064d' 2>&1 && "
                         "openssl x509 -in v.crt -outform DER -out v.der && "
                         "openssl pkey -in v.key -outform DER -out vkey.der",
                         hx_dir(), host, 0);
    tf_px_sh_ok("making a validation certificate", out, st);
    char path[1200];
    snprintf(path, sizeof path, "%s/v.der", hx_dir());
    size_t cert_len = 0;
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    uint8_t cbuf[8192], kbuf[1024];
    cert_len = fread(cbuf, 1, sizeof cbuf, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/vkey.der", hx_dir());
    f = fopen(path, "rb");
    cr_assert_not_null(f);
    size_t key_len = fread(kbuf, 1, sizeof kbuf, f);
    fclose(f);
    cr_assert(cert_len > 0 && key_len > 0);
    cr_assert_eq(tf_acme_alpn01_put(t.table, host, cbuf, cert_len, kbuf, key_len), 0);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    memset(&t, 0, sizeof t);
    hx_setup(false); /* wolfSSL initialised, the snapshot and a scratch directory */
    tf_log_set_level(TF_LOG_ERROR);
    tf_conf_t *conf = config();
    tf_shared_t *s = &t.shared;
    t.fds[0] = listen_any(&t.https_port);
    t.http_fds[0] = listen_any(&t.http_port);
    s->fds = t.fds;
    s->nlisten = 1;
    s->http_fds = t.http_fds;
    s->nhttp = 1;
    s->nworkers = 1;
    s->max_connections = 100;
    char err[1024] = "";
    cr_assert_eq(tf_limits_new(&s->limits), 0);
    cr_assert_eq(tf_backends_new(&s->backends), 0);
    cr_assert_eq(tf_access_open(tf_conf_log(conf), &s->access, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tf_acme_challenges_new(&t.table), 0);
    s->challenges = t.table;
    t.metrics = tf_metrics_worker_new();
    cr_assert_eq(tf_worker_new(s, 0, conf, hx_snap(), t.metrics, &t.worker, err, sizeof err), 0,
                 "%s", err);
    tf_conf_unref(conf);
    t.workers[0] = t.worker;
    s->workers = t.workers;
    cr_assert_eq(tf_worker_start(t.worker), 0);
}

static void teardown(void)
{
    if (t.worker != NULL) {
        tf_worker_stop(t.worker);
        tf_worker_join(t.worker);
        tf_worker_free(t.worker);
    }
    tf_metrics_worker_free(t.metrics);
    tf_backends_free(t.shared.backends);
    tf_access_free(t.shared.access);
    tf_limits_free(t.shared.limits);
    tf_acme_challenges_free(t.table);
    close(t.fds[0]);
    close(t.http_fds[0]);
    hx_teardown();
}

TestSuite(acme_serve, .init = setup, .fini = teardown, .timeout = 120);

/* s_client with no input. With -ign_eof it ends only when the server
 * closes the connection, so a connection left open fails the test at
 * `timeout`; without, it ends after the handshake by itself. */
static char *s_client(int *st, bool ign_eof, const char *args)
{
    return tf_px_sh(st, "timeout 30 openssl s_client -connect 127.0.0.1:%u %s %s </dev/null 2>&1",
                    t.https_port, ign_eof ? "-ign_eof" : "", args);
}

Test(acme_serve, tls_alpn_01_gets_the_validation_certificate_and_the_connection_closes)
{
    put_validation_cert("portal.acme.example");
    int st;
    char *o = s_client(&st, true, "-servername portal.acme.example -alpn acme-tls/1");
    cr_expect_neq(st, 124, "the server left the connection open:\n%s", o);
    cr_expect(strstr(o, "ALPN protocol: acme-tls/1") != NULL, "%s", o);
    cr_expect(strstr(o, "CN = acme-validation") != NULL, "%s", o);
    free(o);
    /* An ordinary client of the same name: its certificate, h2. */
    o = s_client(&st, false, "-servername portal.acme.example -alpn h2,http/1.1");
    cr_expect(strstr(o, "ALPN protocol: h2") != NULL, "%s", o);
    cr_expect(strstr(o, "acme-validation") == NULL, "%s", o);
    free(o);
}

Test(acme_serve, without_an_entry_acme_tls_1_gets_the_normal_certificate)
{
    put_validation_cert("other.example");
    int st;
    char *o = s_client(&st, false, "-servername portal.acme.example -alpn acme-tls/1");
    cr_expect(strstr(o, "No ALPN negotiated") != NULL, "%s", o);
    cr_expect(strstr(o, "acme-validation") == NULL, "%s", o);
    free(o);
    tf_acme_alpn01_remove(t.table, "other.example");
    o = s_client(&st, false, "-servername other.example -alpn acme-tls/1");
    cr_expect(strstr(o, "acme-validation") == NULL, "removed, not served:\n%s", o);
    free(o);
}

Test(acme_serve, http_01_is_answered_on_the_http_listener)
{
    cr_assert_eq(tf_acme_http01_put(t.table, "tOk-en_1", "tOk-en_1.thumbprint"), 0);
    int st;
    char *o = tf_px_sh(&st,
                       "curl -sS --max-time 20 -D - "
                       "'http://127.0.0.1:%u/.well-known/acme-challenge/tOk-en_1'",
                       t.http_port);
    cr_expect(strstr(o, "HTTP/1.1 200 OK\r\n") != NULL, "%s", o);
    cr_expect(strstr(o, "\r\nContent-Type: text/plain\r\n") != NULL, "%s", o);
    const char *body = strstr(o, "\r\n\r\n");
    cr_expect(body != NULL && strcmp(body + 4, "tOk-en_1.thumbprint") == 0, "%s", o);
    free(o);
    o = tf_px_sh(&st,
                 "curl -sS --max-time 20 -o /dev/null -w '%%{http_code}' "
                 "'http://127.0.0.1:%u/.well-known/acme-challenge/unknown'",
                 t.http_port);
    cr_expect_str_eq(o, "404");
    free(o);
}

/* A token this process does not hold is answered from acme.storage, where
 * the instance that orders writes it (several instances behind one
 * balancer); the table comes first. */
Test(acme_serve, http_01_answers_of_another_instance_are_read_from_storage)
{
    /* A key authorization's shape: the token, a dot, 43 base64url characters. */
    cr_assert_eq(tf_acme_http01_share(storage, "sHared-1", "sHared-1.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO-_"), 0);
    cr_assert_eq(tf_acme_http01_share(storage, "both", "both.ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNO01"), 0);
    cr_assert_eq(tf_acme_http01_put(t.table, "both", "both.from-memory"), 0);
    int st;
    char *o = tf_px_sh(&st,
                       "curl -sS --max-time 20 "
                       "'http://127.0.0.1:%u/.well-known/acme-challenge/sHared-1' "
                       "'http://127.0.0.1:%u/.well-known/acme-challenge/both'",
                       t.http_port, t.http_port);
    cr_expect_str_eq(o, "sHared-1.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO-_both.from-memory");
    free(o);
    tf_acme_http01_unshare(storage, "sHared-1");
    o = tf_px_sh(&st,
                 "curl -sS --max-time 20 -o /dev/null -w '%%{http_code}' "
                 "'http://127.0.0.1:%u/.well-known/acme-challenge/sHared-1'",
                 t.http_port);
    cr_expect_str_eq(o, "404");
    free(o);
}
