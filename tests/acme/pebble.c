/* See pebble.h. */
#include "pebble.h"

#include "acme/acme.h"
#include "tests/harness/harness.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    START_TRIES = 3,   /* a port taken between choosing and binding it */
    READY_MS = 30000,  /* generous: a sanitizer build on a busy machine */
    STOP_MS = 10000,   /* SIGTERM, then SIGKILL */
    RETRY_GAP_MS = 50, /* between two readiness probes, unless a child exits */
};

/* A port free now on 127.0.0.1 for `type` (and, for DNS, for the other type
 * too): bound with port 0, then released. */
static unsigned free_port(bool both_types)
{
    for (int tries = 0; tries < 20; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
        cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        bool ok = true;
        if (both_types) {
            int u = socket(AF_INET, SOCK_DGRAM, 0);
            ok = u >= 0 && bind(u, (struct sockaddr *)&a, sizeof a) == 0;
            if (u >= 0)
                close(u);
        }
        close(fd);
        if (ok)
            return ntohs(a.sin_port);
    }
    cr_assert_fail("no free port for both TCP and UDP");
    return 0;
}

static void make_pki(tf_pebble_t *p)
{
    int st;
    char *out = tf_px_sh(
        &st,
        "set -e; cd '%s'; "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
        "-out ca.crt -days 2 -subj '/CN=tlsfront pebble test CA' "
        "-addext 'basicConstraints=critical,CA:true' -addext 'keyUsage=critical,keyCertSign' "
        "2>&1; "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key "
        "-out srv.csr -subj /CN=localhost 2>&1; "
        "printf 'subjectAltName=DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > srv.ext; "
        "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile srv.ext -out srv.crt 2>&1",
        p->dir);
    tf_px_sh_ok("making pebble's test CA", out, st);
    snprintf(p->ca_file, sizeof p->ca_file, "%s/ca.crt", p->dir);
}

static void write_config(tf_pebble_t *p, const tf_pebble_opts_t *o)
{
    char path[256];
    snprintf(path, sizeof path, "%s/pebble.json", p->dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"pebble\": {\"listenAddress\": \"127.0.0.1:%u\", "
            "\"managementListenAddress\": \"127.0.0.1:%u\", "
            "\"certificate\": \"%s/srv.crt\", \"privateKey\": \"%s/srv.key\", "
            "\"httpPort\": %u, \"tlsPort\": %u, \"ocspResponderURL\": \"\", "
            "\"externalAccountBindingRequired\": %s",
            p->port, p->mgmt_port, p->dir, p->dir, p->http_port, p->tls_port,
            o->eab_kid != NULL ? "true" : "false");
    if (o->eab_kid != NULL)
        fprintf(f, ", \"externalAccountMACKeys\": {\"%s\": \"%s\"}", o->eab_kid, o->eab_hmac);
    if (o->validity_s != 0)
        fprintf(f, ", \"certificateValidityPeriod\": %u", o->validity_s);
    fprintf(f, "}}\n");
    cr_assert_eq(fclose(f), 0);
}

/* fork + exec with stdout and stderr into log; the child dies with us. */
static pid_t spawn(const char *log, char *const argv[], unsigned nonce_reject)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid > 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        _exit(127);
    dup2(fd, 1);
    dup2(fd, 2);
    int in = open("/dev/null", O_RDONLY);
    if (in >= 0)
        dup2(in, 0);
    char reject[16];
    snprintf(reject, sizeof reject, "%u", nonce_reject);
    setenv("PEBBLE_VA_NOSLEEP", "1", 1);
    setenv("PEBBLE_WFE_NONCEREJECT", reject, 1);
    setenv("PEBBLE_AUTHZREUSE", "0", 1);
    execvp(argv[0], argv);
    _exit(127);
}

static bool reap(pid_t *pid)
{
    if (*pid <= 0)
        return true;
    int st;
    if (waitpid(*pid, &st, WNOHANG) == *pid) {
        *pid = 0;
        return true;
    }
    return false;
}

bool tf_pebble_running(tf_pebble_t *p)
{
    return !reap(&p->pebble_pid) && !reap(&p->chall_pid);
}

/* One readiness probe: both programs answer HTTP. */
static bool answers(tf_pebble_t *p, tf_acme_http_t *h)
{
    tf_acme_http_response_t r;
    char err[512];
    if (tf_acme_http_request(h, TF_ACME_GET, p->chall_url, NULL, 0, &r, err, sizeof err) != 0)
        return false;
    tf_acme_http_response_dispose(&r);
    if (tf_acme_http_request(h, TF_ACME_GET, p->directory, NULL, 0, &r, err, sizeof err) != 0)
        return false;
    bool ok = r.status == 200;
    tf_acme_http_response_dispose(&r);
    return ok;
}

/* Waits until both answer or one exits; the pause between probes ends
 * early when pebble exits (its pidfd turns readable). */
static bool wait_ready(tf_pebble_t *p)
{
    tf_acme_http_opts_t ho = {.ca_file = p->ca_file, .timeout_ms = 5000};
    tf_acme_http_t *h = NULL;
    char err[512] = "";
    cr_assert_eq(tf_acme_http_new(&ho, &h, err, sizeof err), 0, "%s", err);
    int pidfd = (int)syscall(SYS_pidfd_open, p->pebble_pid, 0);
    long long end = tf_px_now_ms() + READY_MS;
    bool ok = false;
    while (!ok && tf_pebble_running(p) && tf_px_now_ms() < end) {
        ok = answers(p, h);
        if (!ok && pidfd >= 0) {
            struct pollfd pf = {.fd = pidfd, .events = POLLIN};
            poll(&pf, 1, RETRY_GAP_MS);
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    tf_acme_http_free(h);
    return ok;
}

static void stop_children(tf_pebble_t *p)
{
    pid_t *pids[] = {&p->pebble_pid, &p->chall_pid};
    for (size_t i = 0; i < 2; i++) {
        if (*pids[i] > 0 && !reap(pids[i])) {
            kill(*pids[i], SIGTERM);
            tf_px_wait_exit(*pids[i], STOP_MS);
        }
        *pids[i] = 0;
    }
}

/* One attempt with fresh ports: true when both run and answer. */
static bool start_once(tf_pebble_t *p, const tf_pebble_opts_t *o)
{
    p->port = free_port(false);
    p->mgmt_port = free_port(false);
    p->dns_port = free_port(true);
    p->chall_port = free_port(false);
    p->http_port = o->http_port ? o->http_port : free_port(false);
    p->tls_port = o->tls_port ? o->tls_port : free_port(false);
    snprintf(p->directory, sizeof p->directory, "https://localhost:%u/dir", p->port);
    snprintf(p->roots_url, sizeof p->roots_url, "https://localhost:%u/roots/0", p->mgmt_port);
    snprintf(p->chall_url, sizeof p->chall_url, "http://127.0.0.1:%u/", p->chall_port);
    write_config(p, o);
    char dns[32], mgmt[32], cfg[128];
    snprintf(dns, sizeof dns, "127.0.0.1:%u", p->dns_port);
    snprintf(mgmt, sizeof mgmt, "127.0.0.1:%u", p->chall_port);
    snprintf(cfg, sizeof cfg, "%s/pebble.json", p->dir);
    char *chall[] = {"pebble-challtestsrv",
                     "-defaultIPv4",
                     "127.0.0.1",
                     "-defaultIPv6",
                     "",
                     "-dns01",
                     dns,
                     "-http01",
                     "",
                     "-https01",
                     "",
                     "-tlsalpn01",
                     "",
                     "-management",
                     mgmt,
                     NULL};
    char *pebble[] = {"pebble", "-config", cfg, "-dnsserver", dns, NULL};
    p->chall_pid = spawn(p->chall_log, chall, o->nonce_reject);
    p->pebble_pid = spawn(p->pebble_log, pebble, o->nonce_reject);
    if (wait_ready(p))
        return true;
    stop_children(p);
    return false;
}

void tf_pebble_start(tf_pebble_t *p, const tf_pebble_opts_t *opts)
{
    static const tf_pebble_opts_t none = {0};
    const tf_pebble_opts_t *o = opts != NULL ? opts : &none;
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/tf-pebble-XXXXXX");
    cr_assert_not_null(mkdtemp(p->dir));
    snprintf(p->pebble_log, sizeof p->pebble_log, "%s/pebble.log", p->dir);
    snprintf(p->chall_log, sizeof p->chall_log, "%s/challtestsrv.log", p->dir);
    make_pki(p);
    for (int i = 0; i < START_TRIES; i++) {
        if (start_once(p, o))
            return;
    }
    cr_assert_fail("pebble did not start (is the pebble package installed?):\n%s\n%s",
                   tf_px_read(p->pebble_log), tf_px_read(p->chall_log));
}

void tf_pebble_stop(tf_pebble_t *p)
{
    stop_children(p);
    if (p->dir[0] != '\0') {
        int st;
        free(tf_px_sh(&st, "rm -rf '%s'", p->dir));
        p->dir[0] = '\0';
    }
}
