/* The admin API (SPEC §8) end to end with curl: the bearer token, every
 * endpoint, uploads that pass and fail validation, and GET /metrics checked
 * by Prometheus' own promtool. */
#include "ops.h"

#include "conf/conf.h"
#include "proxy/ops/admin_certs.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "s3cret-admin-token"

static tf_ops_t ops;

static void setup(void)
{
    tf_ops_start(&ops, 2, TOKEN, NULL);
}

static void teardown(void)
{
    tf_ops_stop(&ops);
}

TestSuite(ops_admin, .init = setup, .fini = teardown, .timeout = 120);

static char *admin(int *st, const char *method, const char *path, const char *data)
{
    return tf_ops_admin(&ops, st, method, path, TOKEN, data);
}

Test(ops_admin, token_required)
{
    int st;
    char *out = tf_ops_admin(&ops, &st, "GET", "/healthz", NULL, NULL);
    cr_expect_eq(st, 401, "%s", out);
    free(out);
    out = tf_ops_admin(&ops, &st, "GET", "/certs", "wrong-token", NULL);
    cr_expect_eq(st, 401, "%s", out);
    free(out);
    int rc;
    out = tf_px_sh(&rc, "curl -s -i http://127.0.0.1:%u/metrics", ops.px.admin_port);
    cr_expect_not_null(strstr(out, "WWW-Authenticate: Bearer"), "%s", out);
    free(out);
    out = admin(&st, "GET", "/healthz", NULL);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_str_eq(out, "ok\n");
    free(out);
}

Test(ops_admin, unknown_paths_and_methods)
{
    int st;
    free(admin(&st, "GET", "/nothing", NULL));
    cr_expect_eq(st, 404);
    free(admin(&st, "POST", "/healthz", NULL));
    cr_expect_eq(st, 405);
    free(admin(&st, "GET", "/reload", NULL));
    cr_expect_eq(st, 405);
    free(admin(&st, "PUT", "/certs/.hidden", NULL));
    cr_expect_eq(st, 404);
}

Test(ops_admin, metrics_pass_promtool)
{
    cr_expect(tf_ops_echo(&ops, "portal.acme.example"));
    int st;
    char *out = admin(&st, "GET", "/metrics", NULL);
    cr_expect_eq(st, 200, "%s", out);
    const char *names[] = {"tlsfront_connections_active",
                           "tlsfront_connections_total ",
                           "tlsfront_handshakes_total{result=\"ok\"}",
                           "tlsfront_handshake_failures_total{reason=\"timeout\"}",
                           "tlsfront_backend_up{tenant=\"acme\"",
                           "tlsfront_certificates_loaded 4",
                           "tlsfront_certificate_expiry_seconds{file=",
                           "tlsfront_reloads_total{result=\"ok\"}",
                           "tlsfront_per_client_refused_total{kind=\"connections\"} 0",
                           "tlsfront_request_duration_seconds_bucket{le=\"+Inf\"}"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect_not_null(strstr(out, names[i]), "%s missing:\n%s", names[i], out);
    char path[1400];
    snprintf(path, sizeof path, "%s/metrics.txt", ops.px.tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(out, f);
    fclose(f);
    free(out);
    int rc;
    out = tf_px_sh(&rc, "promtool check metrics < '%s'", path);
    cr_expect_eq(rc, 0, "promtool: %s", out);
    free(out);
}

Test(ops_admin, certs_lists_every_file_without_keys)
{
    int st;
    char *out = admin(&st, "GET", "/certs", NULL);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_null(strstr(out, "PRIVATE"), "%s", out);
    char path[1400];
    snprintf(path, sizeof path, "%s/certs.json", ops.px.tmp);
    FILE *f = fopen(path, "w");
    fputs(out, f);
    fclose(f);
    free(out);
    int rc;
    out = tf_px_sh(&rc,
                   "python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
                   "assert len(d)==4, d; e=[x for x in d if x['file'].endswith('/acme.pem')][0]; "
                   "assert e['names']==['portal.acme.example','chat.acme.example'], e; "
                   "assert e['status']=='OK' and e['key']=={'type':'ECDSA','bits':256}, e; "
                   "assert e['days_left']>80 and e['issuer'] and e['not_after'], e; "
                   "assert e['warnings']==[], e; print('certs-ok')\" '%s'",
                   path);
    cr_expect_not_null(strstr(out, "certs-ok"), "%s", out);
    free(out);
}

Test(ops_admin, post_reload_answers_json)
{
    int st;
    char *out = admin(&st, "POST", "/reload", NULL);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_not_null(strstr(out, "\"ok\":true"), "%s", out);
    cr_expect_not_null(strstr(out, "\"applied\":true"), "%s", out);
    cr_expect_not_null(strstr(out, "\"added\":0"), "%s", out);
    free(out);
}

Test(ops_admin, put_then_handshake_shows_it_then_delete)
{
    tf_ops_load_start(&ops, "portal.acme.example");
    char bundle[1400];
    snprintf(bundle, sizeof bundle, "%s/upload.pem", ops.px.tmp);
    char *serial = tf_ops_issue(&ops, bundle, "new", "shop.example");
    int st;
    char *out = admin(&st, "PUT", "/certs/shop", bundle);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_not_null(strstr(out, "\"added\":1"), "%s", out);
    cr_expect_null(strstr(out, "PRIVATE"), "%s", out);
    free(out);
    char path[1400];
    snprintf(path, sizeof path, "%s/shop.pem", ops.certs);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0600);
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", serial, 5));
    free(serial);

    /* A renewed certificate without its key takes the existing one. */
    char nokey[1400];
    snprintf(nokey, sizeof nokey, "%s/renewed.pem", ops.px.tmp);
    char keyfile[1500];
    snprintf(keyfile, sizeof keyfile, "%s.key", nokey);
    int rc;
    char *cut = tf_px_sh(&rc, "openssl pkey -in '%s' -out '%s'", bundle, keyfile);
    cr_assert_eq(rc, 0, "%s", cut);
    free(cut);
    char *renewed = tf_ops_issue(&ops, nokey, keyfile, "shop.example");
    cut = tf_px_sh(&rc, "openssl x509 -in '%s' > '%s.crt' && cat '%s.crt' '%s/inter.crt' > '%s'",
                   nokey, nokey, nokey, ops.pki, nokey);
    free(cut);
    out = admin(&st, "PUT", "/certs/shop", nokey);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_not_null(strstr(out, "\"replaced\":1"), "%s", out);
    free(out);
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", renewed, 5));
    free(renewed);

    out = admin(&st, "DELETE", "/certs/shop", NULL);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_not_null(strstr(out, "\"removed\":1"), "%s", out);
    free(out);
    free(admin(&st, "DELETE", "/certs/shop", NULL));
    cr_expect_eq(st, 404);
    char *report = tf_ops_load_stop(&ops);
    cr_expect_eq(tf_ops_report(report, "fail"), 0, "%s", report);
    cr_expect_eq(tf_ops_report(report, "long_fail"), 0, "%s", report);
    free(report);
}

Test(ops_admin, bad_upload_is_422_with_every_reason)
{
    char bundle[1400];
    snprintf(bundle, sizeof bundle, "%s/bad.pem", ops.px.tmp);
    char *serial = tf_ops_issue(&ops, bundle, "nokey", "bad.example");
    free(serial);
    int st;
    char *out = admin(&st, "PUT", "/certs/bad", bundle);
    cr_expect_eq(st, 422, "%s", out);
    cr_expect_not_null(strstr(out, "no_private_key"), "%s", out);
    free(out);
    /* A key that is not the certificate's. */
    int rc;
    char *cmd = tf_px_sh(&rc, "cat '%s/acme.key' >> '%s'", ops.pki, bundle);
    free(cmd);
    out = admin(&st, "PUT", "/certs/bad", bundle);
    cr_expect_eq(st, 422, "%s", out);
    cr_expect_not_null(strstr(out, "key_mismatch"), "%s", out);
    cr_expect_null(strstr(out, "PRIVATE KEY"), "%s", out);
    free(out);
    char path[1400];
    snprintf(path, sizeof path, "%s/bad.pem", ops.certs);
    cr_expect_neq(access(path, F_OK), 0, "a rejected upload must not be written");
}

Test(ops_admin, oversized_upload_is_413)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/big.pem", ops.px.tmp);
    int rc;
    char *out = tf_px_sh(&rc, "head -c 1100000 /dev/zero > '%s'", path);
    free(out);
    int st;
    out = admin(&st, "PUT", "/certs/big", path);
    cr_expect_eq(st, 413, "%s", out);
    free(out);
}

Test(ops_admin, chunked_upload_is_411)
{
    int rc;
    char *out = tf_px_sh(&rc,
                         "printf 'x' | curl -s -o /dev/null -w '%%{http_code}' -X PUT -H "
                         "'Authorization: Bearer %s' -H 'Transfer-Encoding: chunked' "
                         "--data-binary @- http://127.0.0.1:%u/certs/x",
                         TOKEN, ops.px.admin_port);
    cr_expect_str_eq(out, "411");
    free(out);
}

/* A broken configuration: 500 with every error, and the running one stays. */
Test(ops_admin, post_reload_with_a_broken_config_lists_the_errors)
{
    tf_ops_write_config(&ops, NULL, "workers: many\nbogus: 1\n");
    int st;
    char *out = admin(&st, "POST", "/reload", NULL);
    cr_expect_eq(st, 500, "%s", out);
    cr_expect_not_null(strstr(out, "\"applied\":false"), "%s", out);
    cr_expect_not_null(strstr(out, "tlsfront.yaml:1:"), "%s", out);
    cr_expect_not_null(strstr(out, "tlsfront.yaml:2:"), "%s", out);
    free(out);
    cr_expect(tf_ops_echo(&ops, "portal.acme.example"));
}

/* Found by review: a bundle bigger than the first read buffer (4 KiB) was
 * refused with 431/413; comments and a long chain make real bundles that
 * big. */
Test(ops_admin, a_large_bundle_uploads)
{
    char bundle[1400], big[1500];
    snprintf(bundle, sizeof bundle, "%s/big-src.pem", ops.px.tmp);
    snprintf(big, sizeof big, "%s/big.pem", ops.px.tmp);
    char *serial = tf_ops_issue(&ops, bundle, "new", "big.example");
    int rc;
    /* 20 KiB of comment lines before the PEM blocks, as some exports have. */
    char *sh = tf_px_sh(&rc,
                        "(for i in $(seq 300); do echo 'Bag Attributes: padding line %%d'; done; "
                        "cat '%s') > '%s' && stat -c %%s '%s'",
                        bundle, big, big);
    cr_assert_eq(rc, 0, "%s", sh);
    cr_assert_gt(atoi(sh), 8192, "%s", sh);
    free(sh);
    int st;
    char *out = admin(&st, "PUT", "/certs/big", big);
    cr_expect_eq(st, 200, "%s", out);
    free(out);
    cr_expect(tf_ops_wait_serial(&ops, "big.example", serial, 5));
    free(serial);
}

Test(ops_admin, the_default_certificate_cannot_be_deleted_and_head_has_no_body)
{
    int st;
    char *out = admin(&st, "DELETE", "/certs/system", NULL);
    cr_expect_eq(st, 409, "%s", out);
    free(out);
    int rc;
    out = tf_px_sh(&rc, "curl -s -I -H 'Authorization: Bearer %s' http://127.0.0.1:%u/healthz",
                   TOKEN, ops.px.admin_port);
    cr_expect_not_null(strstr(out, "HTTP/1.1 200"), "%s", out);
    cr_expect_null(strstr(out, "\r\n\r\nok"), "%s", out);
    free(out);
}

/* ---- raw requests ---------------------------------------------------------- */

static int admin_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ops.px.admin_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* Reads (10 s at most) until `needle` arrived, or the peer closed when
 * needle is NULL. Returns what was read (static, NUL-terminated). */
static const char *read_until(int fd, const char *needle)
{
    static char buf[65536];
    size_t len = 0;
    buf[0] = '\0';
    long long deadline = tf_px_now_ms() + TF_PX_WAIT_MS;
    while (len < sizeof buf - 1) {
        if (needle != NULL && strstr(buf, needle) != NULL)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = deadline - tf_px_now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            break;
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return buf;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *data = malloc(1 << 20);
    cr_assert_not_null(data);
    *len = fread(data, 1, 1 << 20, f);
    fclose(f);
    return data;
}

/* ---- Expect: 100-continue ------------------------------------------------- */

/* curl sends "Expect: 100-continue" with a body over 1 KiB and waits for the
 * interim answer before sending it; --expect100-timeout makes a missing 100
 * a failure (-m ends the wait first) instead of a one-second delay. */
Test(ops_admin, curl_gets_100_continue_before_it_sends_the_bundle)
{
    char bundle[1400];
    snprintf(bundle, sizeof bundle, "%s/continue.pem", ops.px.tmp);
    char *serial = tf_ops_issue(&ops, bundle, "new", "continue.example");
    struct stat sb;
    cr_assert_eq(stat(bundle, &sb), 0);
    cr_assert_gt(sb.st_size, 1024, "curl sends Expect only for a body over 1 KiB");
    int rc;
    char *out = tf_px_sh(&rc,
                         "curl -sS -v -m 20 --expect100-timeout 60 -o /dev/null "
                         "-w 'status=%%{http_code}\\n' -H 'Authorization: Bearer %s' -T '%s' "
                         "http://127.0.0.1:%u/certs/continue",
                         TOKEN, bundle, ops.px.admin_port);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect_not_null(strstr(out, "> Expect: 100-continue"), "%s", out);
    cr_expect_not_null(strstr(out, "< HTTP/1.1 100 Continue"), "%s", out);
    cr_expect_not_null(strstr(out, "status=200"), "%s", out);
    free(out);
    cr_expect(tf_ops_wait_serial(&ops, "continue.example", serial, 5));
    free(serial);
}

/* What the head already refuses is answered at once, without a 100: curl
 * would otherwise wait for one (60 s, past its -m 20). */
Test(ops_admin, a_refused_upload_is_answered_without_100_continue)
{
    char bundle[1400];
    snprintf(bundle, sizeof bundle, "%s/refused.pem", ops.px.tmp);
    free(tf_ops_issue(&ops, bundle, "new", "refused.example"));
    static const struct {
        const char *token, *path;
        const char *status;
    } cases[] = {
        {"wrong-token", "/certs/refused", "status=401"},
        {TOKEN, "/certs/.refused", "status=404"},
        {TOKEN, "/nowhere", "status=404"},
        {TOKEN, "/reload", "status=405"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        char *out = tf_px_sh(&rc,
                             "curl -sS -v -m 20 --expect100-timeout 60 -o /dev/null "
                             "-w 'status=%%{http_code}\\n' -H 'Authorization: Bearer %s' -T '%s' "
                             "http://127.0.0.1:%u%s",
                             cases[i].token, bundle, ops.px.admin_port, cases[i].path);
        cr_expect_eq(rc, 0, "%s: %s", cases[i].path, out);
        cr_expect_not_null(strstr(out, "> Expect: 100-continue"), "%s", out);
        cr_expect_null(strstr(out, "100 Continue"), "%s", out);
        cr_expect_not_null(strstr(out, cases[i].status), "%s: %s", cases[i].path, out);
        free(out);
    }
    char path[1400];
    snprintf(path, sizeof path, "%s/refused.pem", ops.certs);
    cr_expect_neq(access(path, F_OK), 0, "a refused upload must not be written");
}

/* On the wire: the head alone gets exactly "100 Continue" and nothing
 * more until the body is sent; then the final answer. */
Test(ops_admin, the_100_arrives_before_the_body_is_sent)
{
    char bundle[1400];
    snprintf(bundle, sizeof bundle, "%s/wire.pem", ops.px.tmp);
    char *serial = tf_ops_issue(&ops, bundle, "new", "wire.example");
    size_t blen = 0;
    char *body = slurp(bundle, &blen);
    int fd = admin_connect();
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "PUT /certs/wire HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\n"
                      "Content-Length: %zu\r\nExpect: 100-continue\r\n\r\n",
                      TOKEN, blen);
    send_all(fd, head, (size_t)hl);
    const char *got = read_until(fd, "\r\n\r\n");
    cr_expect_str_eq(got, "HTTP/1.1 100 Continue\r\n\r\n");
    send_all(fd, body, blen);
    got = read_until(fd, NULL);
    cr_expect_eq(strncmp(got, "HTTP/1.1 200 OK\r\n", 17), 0, "%s", got);
    cr_expect_not_null(strstr(got, "\"added\":1"), "%s", got);
    close(fd);
    free(body);
    cr_expect(tf_ops_wait_serial(&ops, "wire.example", serial, 5));
    free(serial);
}

/* A refused head is answered and the connection closed without the body. */
Test(ops_admin, a_refused_head_is_answered_and_closed_before_the_body)
{
    int fd = admin_connect();
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "PUT /certs/.hidden HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\n"
                      "Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
                      TOKEN);
    send_all(fd, head, (size_t)hl);
    const char *got = read_until(fd, NULL);
    cr_expect_eq(strncmp(got, "HTTP/1.1 404 Not Found\r\n", 24), 0, "%s", got);
    cr_expect_null(strstr(got, "100 Continue"), "%s", got);
    cr_expect_not_null(strstr(got, "Connection: close"), "%s", got);
    close(fd);
}

/* ---- file work off the main loop ------------------------------------------ */

/* Waits (TF_PX_WAIT_MS at most) for an inotify event on the watch `in`. */
static bool fifo_event(int in)
{
    struct pollfd p = {.fd = in, .events = POLLIN};
    bool got = poll(&p, 1, TF_PX_WAIT_MS) == 1;
    close(in);
    return got;
}

static int fifo_watch(const char *fifo, uint32_t mask)
{
    int in = inotify_init1(IN_CLOEXEC);
    cr_assert_geq(in, 0, "%s", strerror(errno));
    cr_assert_geq(inotify_add_watch(in, fifo, mask), 0, "%s", strerror(errno));
    return in;
}

/* The slow key's ends and watch (one slow key per test). */
static int slow_ours = -1, slow_writer = -1, slow_opens = -1;

/* A "slow disk": NAME.key as a FIFO (the store lists only .pem, .crt and
 * .cer files, and reads NAME.key only for a NAME.pem without a key).
 * PUT /certs/NAME reads the existing key, so its file work blocks there.
 * Both ends are opened here, before the upload is sent (a read end of ours,
 * closed once the file work has its own, lets the write end open at once),
 * and only then is the FIFO watched: the file work's open then returns at
 * once and is the only one inotify reports. Opened after the upload was
 * sent, the file work could win the race, block in open(2) until the write
 * end came, and report its open before the watch existed. */
static void slow_key(const char *name, char *fifo, size_t len)
{
    snprintf(fifo, len, "%s/%s.key", ops.certs, name);
    cr_assert_eq(mkfifo(fifo, 0600), 0, "%s", strerror(errno));
    slow_ours = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert_geq(slow_ours, 0, "%s", strerror(errno));
    slow_writer = open(fifo, O_WRONLY | O_CLOEXEC);
    cr_assert_geq(slow_writer, 0, "%s", strerror(errno));
    slow_opens = fifo_watch(fifo, IN_OPEN);
}

/* The FIFO's write end, once the file work has opened the read end (its
 * read then waits for data or for this end to close). */
static int slow_key_reached(const char *fifo)
{
    bool reached = fifo_event(slow_opens);
    close(slow_ours);
    cr_assert(reached, "the upload's file work did not reach %s", fifo);
    return slow_writer;
}

/* The upload as a raw request (no Expect: the body follows the head). */
static int put_raw(const char *name, const char *bundle)
{
    size_t blen = 0;
    char *body = slurp(bundle, &blen);
    int fd = admin_connect();
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "PUT /certs/%s HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      name, TOKEN, blen);
    send_all(fd, head, (size_t)hl);
    send_all(fd, body, blen);
    free(body);
    return fd;
}

/* While an upload's file work waits for the disk, the admin API (on the
 * same loop) still answers; the upload is answered once it is durable. */
Test(ops_admin, a_slow_disk_does_not_stall_the_admin_api)
{
    char bundle[1400], fifo[1400];
    snprintf(bundle, sizeof bundle, "%s/slow.pem", ops.px.tmp);
    char *serial = tf_ops_issue(&ops, bundle, "new", "slow.example");
    slow_key("slow", fifo, sizeof fifo);
    int fd = put_raw("slow", bundle);
    int wfd = slow_key_reached(fifo);
    int st;
    char *out = admin(&st, "GET", "/healthz", NULL);
    cr_expect_eq(st, 200, "the main loop waited for the disk: %s", out);
    free(out);
    out = admin(&st, "GET", "/certs", NULL);
    cr_expect_eq(st, 200, "%s", out);
    free(out);
    close(wfd); /* an empty NAME.key: the upload's own key is used */
    const char *got = read_until(fd, NULL);
    cr_expect_eq(strncmp(got, "HTTP/1.1 200 OK\r\n", 17), 0, "%s", got);
    close(fd);
    char path[1400];
    snprintf(path, sizeof path, "%s/slow.pem", ops.certs);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0600);
    cr_expect(tf_ops_wait_serial(&ops, "slow.example", serial, 5));
    free(serial);
}

/* The client leaves while its upload's file work runs: the work completes,
 * the connection goes when its answer cannot be written, nothing leaks (a
 * sanitizer build reports into the log, which teardown checks). */
Test(ops_admin, the_client_leaves_during_the_file_work)
{
    char bundle[1400], fifo[1400];
    snprintf(bundle, sizeof bundle, "%s/gone.pem", ops.px.tmp);
    free(tf_ops_issue(&ops, bundle, "new", "gone.example"));
    slow_key("gone", fifo, sizeof fifo);
    int fd = put_raw("gone", bundle);
    int wfd = slow_key_reached(fifo);
    close(fd);
    close(wfd);
    cr_expect(tf_ops_wait_log(&ops, "PUT /certs/gone: wrote", 1, 10));
    int st;
    char *out = admin(&st, "GET", "/healthz", NULL);
    cr_expect_eq(st, 200, "%s", out);
    free(out);
}

/* SIGTERM while an upload's file work runs: the write completes, the client
 * gets an answer (200, the file named in it, the reload left to the next
 * start), and tlsfront exits cleanly once the work is back. */
Test(ops_admin, shutdown_waits_for_the_file_work)
{
    char bundle[1400], fifo[1400];
    snprintf(bundle, sizeof bundle, "%s/late.pem", ops.px.tmp);
    free(tf_ops_issue(&ops, bundle, "new", "late.example"));
    slow_key("late", fifo, sizeof fifo);
    int fd = put_raw("late", bundle);
    int wfd = slow_key_reached(fifo);
    cr_assert_eq(kill(ops.px.proxy_pid, SIGTERM), 0);
    cr_expect(tf_ops_wait_log(&ops, "stopping", 1, 10));
    close(wfd);
    const char *got = read_until(fd, NULL);
    /* Found by review: the durable write was answered 500 "shutting down",
     * and automation retried it. */
    cr_expect_eq(strncmp(got, "HTTP/1.1 200 ", 13), 0, "%s", got);
    cr_expect_not_null(strstr(got, "late.pem"), "%s", got);
    cr_expect_not_null(strstr(got, "\"reload\":\"at next start\""), "%s", got);
    close(fd);
    char path[1400];
    snprintf(path, sizeof path, "%s/late.pem", ops.certs);
    struct stat sb;
    cr_expect_eq(stat(path, &sb), 0, "the write completes");
    /* Exits by itself: once draining ends its signal handlers are gone, and
     * a SIGTERM from the harness would then kill it, even after "stopped"
     * (the process may still be on its way out). */
    cr_expect(tf_ops_wait_log(&ops, "stopped", 1, 10));
    cr_expect_eq(tf_px_wait_proxy(&ops.px), 0, "tlsfront exits cleanly");
}

/* A new token file is read off the loop on a configuration reload: the new
 * token is accepted (once read), the old one no longer. */
Test(ops_admin, a_reload_reads_the_new_token)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/token", ops.px.tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("a-new-admin-token\n", f);
    fclose(f);
    int st;
    char *out = admin(&st, "POST", "/reload", NULL);
    cr_expect_eq(st, 200, "%s", out);
    free(out);
    /* Read off the loop: in use once the log says so. */
    char read_from[1500];
    snprintf(read_from, sizeof read_from, "admin: token read from %s: in use", path);
    cr_expect(tf_ops_wait_log(&ops, read_from, 1, 10), "the new token was not read");
    out = tf_ops_admin(&ops, &st, "GET", "/healthz", "a-new-admin-token", NULL);
    free(out);
    cr_expect_eq(st, 200, "the new token was not accepted");
    free(admin(&st, "GET", "/healthz", NULL));
    cr_expect_eq(st, 401);
}

/* A new token file that cannot be read: the token in use stays, and the
 * log points at the line of the configuration that names the file. */
Test(ops_admin, an_unreadable_new_token_file_names_its_line)
{
    int st;
    free(tf_px_sh(&st, "sed -i 's|^  token_file: .*|  token_file: /nonexistent/token|' '%s'",
                  ops.config));
    char *out = tf_px_sh(&st, "grep -n -m1 '^  token_file:' '%s' | cut -d: -f1", ops.config);
    unsigned line = (unsigned)strtoul(out, NULL, 10);
    free(out);
    cr_assert_gt(line, 0);
    out = admin(&st, "POST", "/reload", NULL);
    cr_expect_eq(st, 200, "%s", out);
    free(out);
    char want[1600];
    snprintf(want, sizeof want,
             "%s:%u:15: /nonexistent/token: cannot read the admin token (No such file or "
             "directory); the token in use stays",
             ops.config, line);
    cr_expect(tf_ops_wait_log(&ops, want, 1, 10), "no '%s' in the log", want);
    free(admin(&st, "GET", "/healthz", NULL));
    cr_expect_eq(st, 200);
}

/* ---- review findings (s3-admin2) ------------------------------------------ */

/* A raw request without a body, or with the head only (Content-Length set,
 * the body held back). */
static int raw_head(const char *method, const char *path, const char *extra)
{
    int fd = admin_connect();
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\n%s\r\n", method,
                      path, TOKEN, extra ? extra : "");
    send_all(fd, head, (size_t)hl);
    return fd;
}

static bool exists(const char *dir, const char *name)
{
    char path[1500];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Whether nothing arrives on fd within ms. */
static bool silent_for(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 0;
}

/* Finding 1: a PUT and a DELETE of one name ran at once (the DELETE answered
 * while the PUT's file work waited, then the PUT wrote behind it). Now one
 * file job runs at a time: the DELETE waits its turn and removes what the
 * PUT wrote. */
Test(ops_admin, file_work_runs_one_job_at_a_time)
{
    char bundle[1400], fifo[1400];
    snprintf(bundle, sizeof bundle, "%s/twice.pem", ops.px.tmp);
    free(tf_ops_issue(&ops, bundle, "new", "twice.example"));
    slow_key("twice", fifo, sizeof fifo);
    int fd = put_raw("twice", bundle);
    int wfd = slow_key_reached(fifo);
    int dfd = raw_head("DELETE", "/certs/twice", NULL);
    if (!silent_for(dfd, 1000))
        cr_expect_fail("the DELETE ran beside the PUT: %s", read_until(dfd, NULL));
    close(wfd);
    const char *got = read_until(fd, NULL);
    cr_expect_eq(strncmp(got, "HTTP/1.1 200 ", 13), 0, "PUT: %s", got);
    close(fd);
    got = read_until(dfd, NULL);
    cr_expect_eq(strncmp(got, "HTTP/1.1 200 ", 13), 0, "DELETE: %s", got);
    cr_expect_not_null(strstr(got, "twice.pem"), "%s", got);
    close(dfd);
    cr_expect(!exists(ops.certs, "twice.pem"), "the DELETE came second");
    cr_expect(!exists(ops.certs, "twice.key"), "the DELETE came second");
}

/* A queued request whose client leaves is dropped: it never runs, and the
 * admin API goes on (a sanitizer build checks for leaks at teardown). */
Test(ops_admin, a_queued_request_whose_client_leaves_is_dropped)
{
    char bundle[1400], fifo[1400];
    snprintf(bundle, sizeof bundle, "%s/stay.pem", ops.px.tmp);
    free(tf_ops_issue(&ops, bundle, "new", "stay.example"));
    slow_key("stay", fifo, sizeof fifo);
    int fd = put_raw("stay", bundle);
    int wfd = slow_key_reached(fifo);
    int dfd = raw_head("DELETE", "/certs/stay", NULL);
    cr_expect(silent_for(dfd, 500));
    close(dfd);
    cr_expect(tf_ops_wait_log(&ops, "left while queued", 1, 10));
    close(wfd);
    const char *got = read_until(fd, NULL);
    cr_expect_eq(strncmp(got, "HTTP/1.1 200 ", 13), 0, "%s", got);
    close(fd);
    int st;
    char *out = admin(&st, "GET", "/healthz", NULL);
    cr_expect_eq(st, 200, "%s", out);
    free(out);
    cr_expect(exists(ops.certs, "stay.pem"), "the dropped DELETE must not run");
}

/* Finding 2: tls.certs changed (a reload) while a PUT's file work waited:
 * the bundle landed in a directory uploads no longer go to, answered 200. */
Test(ops_admin, a_put_whose_directory_changed_meanwhile_is_409)
{
    char bundle[1400], fifo[1400];
    snprintf(bundle, sizeof bundle, "%s/moved.pem", ops.px.tmp);
    free(tf_ops_issue(&ops, bundle, "new", "moved.example"));
    slow_key("moved", fifo, sizeof fifo);
    int fd = put_raw("moved", bundle);
    int wfd = slow_key_reached(fifo);
    int rc;
    char *sh = tf_px_sh(
        &rc, "mkdir '%s/certs2' && sed -i 's|certs: \\[\"|certs: [\"%s/certs2\", \"|' '%s'",
        ops.px.tmp, ops.px.tmp, ops.config);
    cr_assert_eq(rc, 0, "%s", sh);
    free(sh);
    int st;
    char *out = admin(&st, "POST", "/reload", NULL);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_not_null(strstr(out, "\"applied\":true"), "%s", out);
    free(out);
    close(wfd);
    const char *got = read_until(fd, NULL);
    cr_expect_eq(strncmp(got, "HTTP/1.1 409 ", 13), 0, "%s", got);
    cr_expect_not_null(strstr(got, "moved.pem"), "%s", got);
    close(fd);
}

/* Finding 3: the reload after a PUT rejected the file just written (here its
 * NAME.key, which the store cannot read), and the answer was 200 ok. */
Test(ops_admin, a_put_whose_file_the_reload_rejects_is_422)
{
    char bundle[1400], nokey[1400], keyfile[1500], fifo[1400];
    snprintf(bundle, sizeof bundle, "%s/own-src.pem", ops.px.tmp);
    snprintf(nokey, sizeof nokey, "%s/own.pem", ops.px.tmp);
    snprintf(keyfile, sizeof keyfile, "%s.key", bundle);
    free(tf_ops_issue(&ops, bundle, "new", "own.example"));
    int rc;
    char *sh = tf_px_sh(&rc,
                        "openssl pkey -in '%s' -out '%s' && openssl x509 -in '%s' > '%s.crt' && "
                        "cat '%s.crt' '%s/inter.crt' > '%s'",
                        bundle, keyfile, bundle, nokey, nokey, ops.pki, nokey);
    cr_assert_eq(rc, 0, "%s", sh);
    free(sh);
    size_t klen = 0;
    char *key = slurp(keyfile, &klen);
    slow_key("own", fifo, sizeof fifo);
    int fd = put_raw("own", nokey);
    int wfd = slow_key_reached(fifo); /* the upload reads the key: the right one */
    cr_assert_eq(write(wfd, key, klen), (ssize_t)klen);
    int closed = fifo_watch(fifo, IN_CLOSE_NOWRITE);
    close(wfd);
    free(key);
    /* Once the upload has read its key to the end, a read end held open
     * here (O_RDWR never blocks on a FIFO) lets every later open of the
     * FIFO return at once: each reload that reads it (the watcher's, the
     * PUT's) finds no regular file. */
    cr_assert(fifo_event(closed), "the upload did not finish reading its key");
    int hold = open(fifo, O_RDWR | O_CLOEXEC);
    cr_assert_geq(hold, 0, "%s", strerror(errno));
    const char *got = read_until(fd, NULL);
    cr_expect_eq(strncmp(got, "HTTP/1.1 422 ", 13), 0, "%s", got);
    cr_expect_not_null(strstr(got, "\"ok\":false"), "%s", got);
    cr_expect_not_null(strstr(got, "own.key: cannot read"), "%s", got);
    close(fd);
    /* The FIFO goes while it is held open: no later reader (a re-check)
     * can block on it, and any that opened it meanwhile gets end of file. */
    unlink(fifo);
    close(hold);
}

/* Finding 5: an expectation other than 100-continue was ignored, and both
 * sides waited for the deadline. 417, as nginx answers; 100-continue in
 * any case still gets its 100. */
Test(ops_admin, an_unknown_expectation_is_417)
{
    int fd = raw_head("PUT", "/certs/x", "Content-Length: 5000\r\nExpect: 200-ok\r\n");
    const char *got = read_until(fd, NULL);
    cr_expect_eq(strncmp(got, "HTTP/1.1 417 Expectation Failed\r\n", 33), 0, "%s", got);
    close(fd);
    fd = raw_head("PUT", "/certs/x", "Content-Length: 5000\r\nExpect: 100-Continue\r\n");
    got = read_until(fd, "\r\n\r\n");
    cr_expect_str_eq(got, "HTTP/1.1 100 Continue\r\n\r\n");
    close(fd);
}

/* Finding 6: a 100 was sent although tls.certs lists no directory and the
 * answer would be 409. */
Test(ops_admin, no_100_when_tls_certs_lists_no_directory)
{
    int rc;
    char *sh = tf_px_sh(&rc, "sed -i 's|certs: \\[\"[^]]*\\]|certs: [\"%s/system.pem\"]|' '%s'",
                        ops.certs, ops.config);
    cr_assert_eq(rc, 0, "%s", sh);
    free(sh);
    int st;
    char *out = admin(&st, "POST", "/reload", NULL);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_not_null(strstr(out, "\"applied\":true"), "%s", out);
    free(out);
    char bundle[1400];
    snprintf(bundle, sizeof bundle, "%s/nodir.pem", ops.px.tmp);
    free(tf_ops_issue(&ops, bundle, "new", "nodir.example"));
    out = tf_px_sh(&rc,
                   "curl -sS -v -m 20 --expect100-timeout 60 -o /dev/null "
                   "-w 'status=%%{http_code}\\n' -H 'Authorization: Bearer %s' -T '%s' "
                   "http://127.0.0.1:%u/certs/nodir",
                   TOKEN, bundle, ops.px.admin_port);
    cr_expect_not_null(strstr(out, "> Expect: 100-continue"), "%s", out);
    cr_expect_null(strstr(out, "100 Continue"), "%s", out);
    cr_expect_not_null(strstr(out, "status=409"), "%s", out);
    free(out);
}

/* Finding 7: after a full-bundle PUT, an older NAME.key stayed behind and
 * the next renewal without a key was checked against it (422
 * key_mismatch). The key in NAME.pem is the one the store serves. */
Test(ops_admin, a_renewal_after_a_full_bundle_put_ignores_a_stale_key_file)
{
    int rc;
    char *sh = tf_px_sh(&rc, "cp '%s/acme.key' '%s/stale.key'", ops.pki, ops.certs);
    cr_assert_eq(rc, 0, "%s", sh);
    free(sh);
    char bundle[1400];
    snprintf(bundle, sizeof bundle, "%s/stale.pem", ops.px.tmp);
    free(tf_ops_issue(&ops, bundle, "new", "stale.example"));
    int st;
    char *out = admin(&st, "PUT", "/certs/stale", bundle);
    cr_expect_eq(st, 200, "%s", out);
    free(out);
    char nokey[1400], keyfile[1500];
    snprintf(nokey, sizeof nokey, "%s/stale-renewed.pem", ops.px.tmp);
    snprintf(keyfile, sizeof keyfile, "%s.key", nokey);
    sh = tf_px_sh(&rc, "openssl pkey -in '%s' -out '%s'", bundle, keyfile);
    cr_assert_eq(rc, 0, "%s", sh);
    free(sh);
    char *renewed = tf_ops_issue(&ops, nokey, keyfile, "stale.example");
    sh = tf_px_sh(&rc, "openssl x509 -in '%s' > '%s.crt' && cat '%s.crt' '%s/inter.crt' > '%s'",
                  nokey, nokey, nokey, ops.pki, nokey);
    free(sh);
    out = admin(&st, "PUT", "/certs/stale", nokey);
    cr_expect_eq(st, 200, "%s", out);
    free(out);
    cr_expect(tf_ops_wait_serial(&ops, "stale.example", renewed, 5));
    free(renewed);
}

/* The state (hex, /proc/net/tcp) of the server's side of the connection
 * from local port `peer` to the admin port, or -1 when there is none. */
static int server_side_state(unsigned peer)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    cr_assert_not_null(f);
    char line[512];
    int state = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned lport, rport, st;
        if (sscanf(line, " %*d: %*8s:%x %*8s:%x %x", &lport, &rport, &st) == 3 &&
            lport == ops.px.admin_port && rport == peer)
            state = (int)st;
    }
    fclose(f);
    return state;
}

/* Finding 8: respond() stopped the deadline, so a client that never read a
 * large answer held one of the 32 admin connections for good. */
Test(ops_admin, a_client_that_never_reads_its_answer_is_dropped)
{
    int rc;
    char *sh = tf_px_sh(&rc, "for i in $(seq 800); do cp '%s/acme.pem' '%s'/many$i.pem; done",
                        ops.certs, ops.certs);
    cr_assert_eq(rc, 0, "%s", sh);
    free(sh);
    int st;
    char *out = admin(&st, "POST", "/reload", NULL);
    cr_expect_eq(st, 200, "%s", out);
    free(out);
    out = admin(&st, "GET", "/certs", NULL);
    cr_assert_gt(strlen(out), 200000u, "the answer (%zu bytes) must outgrow the socket buffers",
                 strlen(out));
    free(out);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 1024, mss = 536;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ops.px.admin_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct sockaddr_in me;
    socklen_t mel = sizeof me;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&me, &mel), 0);
    unsigned peer = ntohs(me.sin_port);
    char req[256];
    int n =
        snprintf(req, sizeof req,
                 "GET /certs HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\n\r\n", TOKEN);
    send_all(fd, req, (size_t)n);
    /* The subject is a deadline (TF_ADMIN_TIMEOUT_MS): a second into it the
     * answer must still be in progress, and by its end the connection gone.
     * The server side's TCP state has no event to wait for: it is looked at
     * every 100 ms, 16 s at most. */
    sleep(1);
    cr_assert_eq(server_side_state(peer), 1, "the answer is still being written (ESTABLISHED)");
    int state = 1;
    for (int i = 0; i < 150 && state == 1; i++) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        state = server_side_state(peer);
    }
    cr_expect_neq(state, 1, "the admin API still holds the connection after 16 s");
    close(fd);
}

/* ---- in this process ------------------------------------------------------ */

/* fsync() for the file work run below: it fails for directories while
 * fail_dir_fsync is set (a disk error tests cannot cause otherwise: they
 * run as root). Everything else reaches the system call. */
static volatile bool fail_dir_fsync;

int fsync(int fd)
{
    struct stat st;
    if (fail_dir_fsync && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

/* Finding 8: DELETE logged a failed fsync of the directory and answered
 * 200; the removal is not durable: 500, as a PUT that cannot be made
 * durable. The file work runs here, on the test's configuration. */
Test(ops_admin, a_delete_whose_directory_cannot_be_synced_is_500)
{
    int rc;
    char *sh = tf_px_sh(&rc, "cp '%s/acme.pem' '%s/unsynced.pem'", ops.certs, ops.certs);
    cr_assert_eq(rc, 0, "%s", sh);
    free(sh);
    tf_conf_t *conf = NULL;
    char err[1024];
    cr_assert_eq(tf_conf_load_file(ops.config, &conf, err, sizeof err), 0, "%s", err);
    tf_admin_cert_job_t j = {.put = false, .conf = conf, .name = "unsynced"};
    fail_dir_fsync = true;
    tf_admin_cert_job_run(&j);
    fail_dir_fsync = false;
    cr_expect_eq(j.status, 500, "%d %s", j.status, j.text ? j.text : "");
    cr_expect(!exists(ops.certs, "unsynced.pem"));
    free(j.json);
    free(j.extra);
    tf_conf_unref(conf);
}
