/* bench_loadgen --connect HOST:PORT [options]
 *
 * TLS load generator for the proxy benchmarks (bench/load/run.sh), built on
 * the project's assembly wolfSSL so that the client side of a handshake costs
 * a fraction of what an OpenSSL or GnuTLS client costs on the same core.
 * One thread, one epoll loop, C connections in flight at once.
 *
 *   --full          (default) each connection: TCP connect, full TLS
 *                   handshake, one `GET / HTTP/1.1` request, read the whole
 *                   response (Content-Length, or EOF after `Connection:
 *                   close`, or --bytes N), close_notify, close.
 *   --resume        the same, but each connection slot keeps the session
 *                   (TLS 1.3 ticket / TLS 1.2 ticket or ID) of its previous
 *                   connection and resumes it; the first one per slot is full.
 *   --idle N        open N connections (C at a time), complete the
 *                   handshakes, keep them open and idle, print the result
 *                   line and "ready", then wait for SIGTERM/SIGINT or for
 *                   stdin to close (when stdin is a pipe or a terminal).
 *                   --idle-request also sends one request on each first.
 *   --tls12         TLS 1.2 instead of TLS 1.3.
 *   --group G       x25519 (default) or p256: the only key-exchange group
 *                   offered, and the TLS 1.3 key share (TLS 1.2 also offers
 *                   P-256 after it, which ECDSA P-256 certificates need).
 *   --sni NAME      server name (default: no SNI), also the Host header.
 *   --sni-spread N  names tenant0..N-1.bench.example (bench_cs_gen), round
 *                   robin over connections.
 *   --ca FILE       verify the server's chain (and the SNI name) against
 *                   FILE; default: no verification (benchmark).
 *   --conns C       connections in flight (default 50).
 *   --path PATH     the request target (default "/"; under 200 bytes).
 *   --duration S    seconds to run (--full/--resume; default 10).
 *   --requests R    requests per connection, one after the other on the
 *                   keep-alive connection (default 1; 0: as many as the run
 *                   lasts) — the keep-alive and bulk cases.
 *   --bytes N       a response is complete after N bytes (headers included)
 *                   instead of by parsing it.
 *   --timeout S     a connection that has not finished after S seconds is
 *                   counted as an error and dropped (default 10).
 *   --rate R        (--full/--resume) open-loop: offer R new connections a
 *                   second on a fixed schedule (the k-th at k/R s), at most
 *                   --conns in flight; a connection due while every slot is
 *                   busy is not opened and counted in missed= (the offered
 *                   rate was not met: raise --conns or lower R). Without
 *                   it, closed-loop: --conns always in flight (saturation).
 *   --h2            HTTP/2 instead of HTTP/1.1 (ALPN "h2" only; a server
 *                   that does not choose it fails the connection): the
 *                   request is the connection preface, an empty SETTINGS and
 *                   a GET on stream 1 (HPACK literals, no Huffman); the
 *                   server's SETTINGS are acknowledged; the response is
 *                   complete at the first frame on stream 1 with END_STREAM.
 *                   One request per connection (--requests 1): for the idle
 *                   memory of an HTTP/2 connection after one finished stream
 *                   (--idle N --idle-request --h2); throughput is h2load's.
 *
 * Prints one line: handshakes= (connections completed: handshake and, unless
 * --idle without --idle-request, the first response), resumed=, errors=
 * (failed or timed out; connections still in flight at the end count as
 * neither), seconds=, rate= (handshakes per wall second), requests= and
 * bytes= (responses and their bytes, headers included), req_rate=, p50_ms=
 * and p99_ms= (latency of a request: from the TCP connect for the first on a
 * connection, from writing it for the next), cpu=, cpu_user=, cpu_sys= (this
 * process's CPU seconds), cpu_us_per_hs=, and with --rate offered= (the rate
 * asked for) and missed=. Certificates may be ECDSA or
 * RSA: the client offers both signature algorithms.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_FULL, MODE_RESUME, MODE_IDLE };
enum state { ST_FREE, ST_CONNECT, ST_HANDSHAKE, ST_WRITE, ST_READ, ST_IDLE };

typedef struct {
    enum mode mode;
    const char *host, *port;
    int tls12, group, conns, idle, idle_request, sni_spread, requests, h2;
    const char *sni, *ca, *path;
    double duration, timeout;
    double rate; /* --rate: new connections per second offered; 0: closed loop */
    long bytes;
} opts_t;

typedef struct {
    int fd, slot;
    enum state state;
    WOLFSSL *ssl;
    WOLFSSL_SESSION *session; /* --resume: the slot's last session */
    char name[256];
    char req[1024];
    int req_len, req_off;
    char hdr[8192]; /* response head, until parsed */
    size_t hdr_len;
    long need; /* bytes still expected; -1: until EOF; -2: head not parsed */
    long got;
    int done;       /* responses completed on this connection */
    int last;       /* the response says Connection: close */
    double started; /* TCP connect, then each request after the first */
    /* --h2: the frame being read (its 9-byte header, then its payload) */
    unsigned char fh[9];
    int fh_len;
    long payload_left;
} conn_t;

typedef struct {
    long handshakes, resumed, errors, idle_dropped, requests, bytes;
    long missed; /* --rate: connections due while every slot was busy */
    long next_name;
} stats_t;

/* Request latencies, a uniform sample of at most LAT_MAX (reservoir). */
enum { LAT_MAX = 1 << 20 };
static float *lat;
static long lat_seen;

static opts_t opt = {
    .mode = MODE_FULL,
    .group = WOLFSSL_ECC_X25519,
    .conns = 50,
    .duration = 10,
    .timeout = 10,
    .bytes = -1,
    .requests = 1,
    .path = "/",
};
static stats_t st;
static WOLFSSL_CTX *ctx;
static struct sockaddr_storage peer;
static socklen_t peer_len;
static int ep;
static volatile sig_atomic_t stop;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This process's CPU seconds: user, or system when sys is set. */
static double cpu_s(int sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct timeval *t = sys ? &ru.ru_stime : &ru.ru_utime;
    return (double)t->tv_sec + (double)t->tv_usec / 1e6;
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_loadgen --connect HOST:PORT [--full|--resume|--idle N [--idle-request]]\n"
            "       [--tls12] [--group x25519|p256] [--sni NAME | --sni-spread N] [--ca FILE]\n"
            "       [--conns C] [--duration S] [--requests R] [--bytes N] [--timeout S]\n"
            "       [--path PATH] [--h2] [--rate R]\n");
    exit(2);
}

static void parse_connect(char *arg)
{
    char *colon = strrchr(arg, ':');
    if (colon == NULL)
        usage();
    *colon = '\0';
    opt.host = arg;
    opt.port = colon + 1;
    if (opt.host[0] == '[') { /* [::1]:443 */
        opt.host++;
        arg[strlen(arg) - 1] = '\0';
    }
}

static void parse_group(const char *g)
{
    if (strcmp(g, "x25519") == 0)
        opt.group = WOLFSSL_ECC_X25519;
    else if (strcmp(g, "p256") == 0)
        opt.group = WOLFSSL_ECC_SECP256R1;
    else
        usage();
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "--full") == 0)
            opt.mode = MODE_FULL, takes = 0;
        else if (strcmp(a, "--resume") == 0)
            opt.mode = MODE_RESUME, takes = 0;
        else if (strcmp(a, "--tls12") == 0)
            opt.tls12 = 1, takes = 0;
        else if (strcmp(a, "--idle-request") == 0)
            opt.idle_request = 1, takes = 0;
        else if (strcmp(a, "--h2") == 0)
            opt.h2 = 1, takes = 0;
        else if (v == NULL)
            usage();
        else if (strcmp(a, "--connect") == 0)
            parse_connect(v);
        else if (strcmp(a, "--idle") == 0)
            opt.mode = MODE_IDLE, opt.idle = atoi(v);
        else if (strcmp(a, "--group") == 0)
            parse_group(v);
        else if (strcmp(a, "--sni") == 0)
            opt.sni = v;
        else if (strcmp(a, "--sni-spread") == 0)
            opt.sni_spread = atoi(v);
        else if (strcmp(a, "--ca") == 0)
            opt.ca = v;
        else if (strcmp(a, "--conns") == 0)
            opt.conns = atoi(v);
        else if (strcmp(a, "--duration") == 0)
            opt.duration = atof(v);
        else if (strcmp(a, "--requests") == 0)
            opt.requests = atoi(v);
        else if (strcmp(a, "--bytes") == 0)
            opt.bytes = atol(v);
        else if (strcmp(a, "--timeout") == 0)
            opt.timeout = atof(v);
        else if (strcmp(a, "--path") == 0)
            opt.path = v;
        else if (strcmp(a, "--rate") == 0)
            opt.rate = atof(v);
        else
            usage();
        i += takes;
    }
    if (opt.host == NULL || opt.conns < 1 || opt.requests < 0 || strlen(opt.path) >= 200 ||
        (opt.mode == MODE_IDLE && opt.idle < 1) || (opt.h2 && (opt.requests != 1 || opt.tls12)) ||
        opt.rate < 0 || (opt.rate > 0 && opt.mode == MODE_IDLE))
        usage();
}

static void resolve_peer(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(opt.host, opt.port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "bench_loadgen: %s:%s: %s\n", opt.host, opt.port, gai_strerror(rc));
        exit(1);
    }
    memcpy(&peer, res->ai_addr, res->ai_addrlen);
    peer_len = res->ai_addrlen;
    freeaddrinfo(res);
}

static void setup_ctx(void)
{
    ctx = wolfSSL_CTX_new(opt.tls12 ? wolfTLSv1_2_client_method() : wolfTLSv1_3_client_method());
    if (ctx == NULL)
        exit(1);
    int group = opt.group;
    int ok = opt.tls12 ? wolfSSL_CTX_UseSupportedCurve(ctx, (word16)group)
                       : wolfSSL_CTX_set_groups(ctx, &group, 1);
    if (ok != WOLFSSL_SUCCESS) {
        fprintf(stderr, "bench_loadgen: this wolfSSL cannot offer that group\n");
        exit(1);
    }
    if (opt.tls12) {
        /* In TLS 1.2 the groups also limit the server's ECDSA certificate
         * curves: P-256 must stay on offer for a P-256 certificate. */
        wolfSSL_CTX_UseSupportedCurve(ctx, WOLFSSL_ECC_SECP256R1);
        wolfSSL_CTX_UseSessionTicket(ctx);
    }
    if (opt.ca != NULL) {
        if (wolfSSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != WOLFSSL_SUCCESS) {
            fprintf(stderr, "bench_loadgen: cannot load CA file %s\n", opt.ca);
            exit(1);
        }
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
    } else {
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    }
}

/* Name for the next connection: the fixed SNI, one of the spread, or none. */
static void pick_name(conn_t *c)
{
    if (opt.sni_spread > 0)
        snprintf(c->name, sizeof c->name, "tenant%ld.bench.example",
                 st.next_name++ % opt.sni_spread);
    else
        snprintf(c->name, sizeof c->name, "%s", opt.sni != NULL ? opt.sni : "");
}

static void conn_close(conn_t *c, int graceful)
{
    if (c->ssl != NULL) {
        if (graceful)
            wolfSSL_shutdown(c->ssl); /* sends close_notify; does not wait for the peer's */
        wolfSSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
    c->state = ST_FREE;
}

static int new_ssl(conn_t *c)
{
    c->ssl = wolfSSL_new(ctx);
    if (c->ssl == NULL || wolfSSL_set_fd(c->ssl, c->fd) != WOLFSSL_SUCCESS)
        return -1;
    wolfSSL_set_using_nonblock(c->ssl, 1);
    if (opt.h2) {
        char alpn[] = "h2";
        if (wolfSSL_UseALPN(c->ssl, alpn, sizeof alpn - 1, WOLFSSL_ALPN_FAILED_ON_MISMATCH) !=
            WOLFSSL_SUCCESS)
            return -1;
    } else {
        char alpn[] = "http/1.1";
        wolfSSL_UseALPN(c->ssl, alpn, sizeof alpn - 1, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    }
    if (c->name[0] != '\0') {
        if (wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, c->name,
                           (unsigned short)strlen(c->name)) != WOLFSSL_SUCCESS)
            return -1;
        if (opt.ca != NULL)
            wolfSSL_check_domain_name(c->ssl, c->name);
    }
    if (c->session != NULL)
        wolfSSL_set_session(c->ssl, c->session);
    return 0;
}

/* HPACK (RFC 7541 §5.1): an integer with an N-bit prefix after `first`'s
 * high bits. Returns the bytes written (at most 6 for an int). */
static int hpack_int(unsigned char *out, unsigned first, int prefix, size_t v)
{
    size_t max = (1u << prefix) - 1;
    if (v < max) {
        out[0] = (unsigned char)(first | v);
        return 1;
    }
    int n = 0;
    out[n++] = (unsigned char)(first | max);
    for (v -= max; v >= 128; v >>= 7)
        out[n++] = (unsigned char)(0x80 | (v & 0x7f));
    out[n++] = (unsigned char)v;
    return n;
}

/* A literal header field without indexing, its name from the static table
 * (RFC 7541 §6.2.2), the value without Huffman coding. */
static int hpack_literal(unsigned char *out, unsigned name_index, const char *value)
{
    size_t len = strlen(value);
    int n = hpack_int(out, 0x00, 4, name_index);
    n += hpack_int(out + n, 0x00, 7, len);
    memcpy(out + n, value, len);
    return n + (int)len;
}

static int h2_frame_head(unsigned char *out, size_t len, int type, int flags, unsigned stream)
{
    out[0] = (unsigned char)(len >> 16), out[1] = (unsigned char)(len >> 8);
    out[2] = (unsigned char)len, out[3] = (unsigned char)type, out[4] = (unsigned char)flags;
    out[5] = (unsigned char)(stream >> 24), out[6] = (unsigned char)(stream >> 16);
    out[7] = (unsigned char)(stream >> 8), out[8] = (unsigned char)stream;
    return 9;
}

/* The preface, an empty SETTINGS and `GET path` on stream 1 (HEADERS with
 * END_STREAM and END_HEADERS) into c->req. */
static void h2_request(conn_t *c, const char *authority)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    unsigned char *out = (unsigned char *)c->req, block[600]; /* path < 200, name < 256 */
    int n = 0, b = 0;
    memcpy(out, preface, sizeof preface - 1);
    n += (int)sizeof preface - 1;
    n += h2_frame_head(out + n, 0, 4, 0, 0);     /* SETTINGS, defaults */
    block[b++] = 0x82;                           /* :method GET (static index 2) */
    block[b++] = 0x87;                           /* :scheme https (7) */
    b += hpack_literal(block + b, 4, opt.path);  /* :path */
    b += hpack_literal(block + b, 1, authority); /* :authority */
    n += h2_frame_head(out + n, (size_t)b, 1, 0x5, 1);
    memcpy(out + n, block, (size_t)b);
    c->req_len = n + b;
}

static void reset_request(conn_t *c)
{
    c->fh_len = 0;
    c->payload_left = 0;
    c->hdr_len = 0;
    c->got = 0;
    c->need = opt.bytes >= 0 ? opt.bytes : -2;
    c->req_off = 0;
    c->last = 0;
}

static int conn_start(conn_t *c)
{
    pick_name(c);
    c->fd = socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = ST_CONNECT;
    c->started = now_s();
    c->done = 0;
    reset_request(c);
    const char *authority = c->name[0] != '\0' ? c->name : opt.host;
    if (opt.h2)
        h2_request(c, authority);
    else
        c->req_len = snprintf(c->req, sizeof c->req, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                              opt.path, authority);
    if (new_ssl(c) != 0)
        return -1;
    if (connect(c->fd, (struct sockaddr *)&peer, peer_len) != 0 && errno != EINPROGRESS)
        return -1;
    /* Edge-triggered: every step below runs until the socket would block. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u32 = (uint32_t)c->slot};
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Case-insensitive search for a header line in the response head. */
static const char *head_find(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0)
            return p + 2 + n;
    return NULL;
}

/* Parses the head once it is complete: sets c->need to the bytes of the
 * whole response still to come, or -1 to read until EOF. */
static void parse_head(conn_t *c)
{
    c->hdr[c->hdr_len < sizeof c->hdr ? c->hdr_len : sizeof c->hdr - 1] = '\0';
    char *end = strstr(c->hdr, "\r\n\r\n");
    if (end == NULL)
        return;
    long head = (long)(end + 4 - c->hdr);
    const char *conn = head_find(c->hdr, "connection:");
    c->last = conn != NULL && strncasecmp(conn + strspn(conn, " \t"), "close", 5) == 0;
    const char *cl = head_find(c->hdr, "content-length:");
    if (cl == NULL) {
        c->need = -1; /* Connection: close, or a body delimited by EOF */
        return;
    }
    long total = head + strtol(cl, NULL, 10);
    c->need = total > c->got ? total - c->got : 0;
}

static void account_read(conn_t *c, const char *buf, int n)
{
    if (c->need == -2) {
        size_t room = sizeof c->hdr - 1 - c->hdr_len;
        size_t k = (size_t)n < room ? (size_t)n : room;
        memcpy(c->hdr + c->hdr_len, buf, k);
        c->hdr_len += k;
        c->got += n;
        parse_head(c);
        return;
    }
    c->got += n;
    if (c->need > 0)
        c->need = c->need > n ? c->need - n : 0;
}

/* --h2: the server's SETTINGS get their ACK (a 9-byte write, which a fresh
 * socket takes whole). Returns -1 when it cannot be sent. */
static int h2_settings_ack(conn_t *c)
{
    unsigned char ack[9];
    h2_frame_head(ack, 0, 4, 0x1, 0);
    return wolfSSL_write(c->ssl, ack, sizeof ack) == (int)sizeof ack ? 0 : -1;
}

/* --h2: reads frames; returns 1 once a frame on stream 1 carried END_STREAM,
 * 0 for more, -1 on RST_STREAM, GOAWAY or a failed ACK. */
static int h2_account(conn_t *c, const unsigned char *buf, int n)
{
    c->got += n;
    for (int i = 0; i < n;) {
        if (c->payload_left > 0) {
            long k = n - i < c->payload_left ? n - i : c->payload_left;
            c->payload_left -= k;
            i += (int)k;
            continue;
        }
        c->fh[c->fh_len++] = buf[i++];
        if (c->fh_len < 9)
            continue;
        c->fh_len = 0;
        long len = (long)c->fh[0] << 16 | (long)c->fh[1] << 8 | c->fh[2];
        int type = c->fh[3], flags = c->fh[4];
        unsigned stream = ((unsigned)c->fh[5] & 0x7f) << 24 | (unsigned)c->fh[6] << 16 |
                          (unsigned)c->fh[7] << 8 | c->fh[8];
        c->payload_left = len;
        if (type == 4 && !(flags & 0x1) && h2_settings_ack(c) != 0)
            return -1;
        if (type == 3 || type == 7) /* RST_STREAM, GOAWAY */
            return -1;
        if (stream == 1 && (type == 0 || type == 1) && (flags & 0x1)) {
            /* The rest of this read (the frame's payload) is consumed by
             * the idle reads that follow. */
            return 1;
        }
    }
    return 0;
}

static int want(conn_t *c, int rc)
{
    int err = wolfSSL_get_error(c->ssl, rc);
    return err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE ? 0 : -1;
}

static void record_latency(double ms)
{
    long i = lat_seen++;
    if (i >= LAT_MAX)
        i = (long)((double)rand() / ((double)RAND_MAX + 1) * (double)lat_seen);
    if (i < LAT_MAX)
        lat[i] = (float)ms;
}

static void count_handshake(conn_t *c)
{
    st.handshakes++;
    if (wolfSSL_session_reused(c->ssl))
        st.resumed++;
    if (opt.mode == MODE_RESUME) {
        /* The TLS 1.3 tickets arrived before the response: keep the newest. */
        WOLFSSL_SESSION *s = wolfSSL_get1_session(c->ssl);
        if (s != NULL) {
            if (c->session != NULL)
                wolfSSL_SESSION_free(c->session);
            c->session = s;
        }
    }
}

/* A step completed: the handshake (--idle without a request) or a response.
 * Returns 1 when the connection goes on with its next request. */
static int complete(conn_t *c)
{
    if (c->state == ST_HANDSHAKE) {
        count_handshake(c);
        c->state = ST_IDLE;
        return 0;
    }
    double t = now_s();
    record_latency((t - c->started) * 1e3);
    st.requests++;
    st.bytes += c->got;
    if (c->done++ == 0)
        count_handshake(c);
    if (opt.mode == MODE_IDLE) {
        c->state = ST_IDLE;
        return 0;
    }
    /* A server may end a keep-alive connection (nginx after 1,000 requests):
     * the next request goes on a new connection, as a browser's would. */
    if (!c->last && (opt.requests == 0 || c->done < opt.requests)) {
        reset_request(c);
        c->started = t;
        c->state = ST_WRITE;
        return 1;
    }
    conn_close(c, 1);
    return 0;
}

/* Reads the response; returns 1 when it is complete, 0 to wait, -1 on error. */
static int read_response(conn_t *c)
{
    char buf[16384];
    for (;;) {
        if (c->need == 0)
            return 1;
        int n = wolfSSL_read(c->ssl, buf, sizeof buf);
        if (n > 0 && opt.h2) {
            int done = h2_account(c, (const unsigned char *)buf, n);
            if (done != 0)
                return done;
            continue;
        }
        if (n > 0) {
            account_read(c, buf, n);
            continue;
        }
        int err = wolfSSL_get_error(c->ssl, n);
        if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
            return 0;
        /* EOF or close_notify: the end of a response delimited by EOF. */
        return c->need == -1 && c->got > 0 ? 1 : -1;
    }
}

/* Drives one connection as far as it goes without blocking. Returns -1 on
 * error, 1 when the connection is done, 0 to wait for the socket. */
static int step(conn_t *c)
{
    int rc;
    switch (c->state) {
    case ST_CONNECT:
    case ST_HANDSHAKE:
        c->state = ST_HANDSHAKE;
        rc = wolfSSL_connect(c->ssl);
        if (rc != WOLFSSL_SUCCESS)
            return want(c, rc);
        if (opt.mode == MODE_IDLE && !opt.idle_request)
            return 1;
        c->state = ST_WRITE;
        /* fall through */
    case ST_WRITE:
        while (c->req_off < c->req_len) {
            rc = wolfSSL_write(c->ssl, c->req + c->req_off, c->req_len - c->req_off);
            if (rc <= 0)
                return want(c, rc);
            c->req_off += rc;
        }
        c->state = ST_READ;
        /* fall through */
    case ST_READ:
        return read_response(c);
    case ST_IDLE: {
        /* Session tickets, or the peer closing: consume without blocking. */
        char buf[4096];
        rc = wolfSSL_read(c->ssl, buf, sizeof buf);
        return rc > 0 || want(c, rc) == 0 ? 0 : -1;
    }
    default:
        return 0;
    }
}

static void on_event(conn_t *c)
{
    for (;;) {
        enum state before = c->state;
        int rc = step(c);
        if (rc == 0)
            return;
        if (rc < 0) {
            if (before == ST_IDLE)
                st.idle_dropped++;
            else
                st.errors++;
            conn_close(c, 0);
            return;
        }
        if (!complete(c))
            return;
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of the sampled latencies, in ms (sorts the sample). */
static double quantile(double q)
{
    long n = lat_seen < LAT_MAX ? lat_seen : LAT_MAX;
    if (n == 0)
        return 0;
    qsort(lat, (size_t)n, sizeof *lat, cmp_float);
    long i = (long)(q * (double)n);
    return lat[i < n ? i : n - 1];
}

/* The result line; user and sys are the CPU seconds at the start. */
static void print_result(double t0, double user, double sys)
{
    double seconds = now_s() - t0;
    user = cpu_s(0) - user;
    sys = cpu_s(1) - sys;
    double cpu = user + sys;
    double p50 = quantile(0.50), p99 = quantile(0.99);
    printf("handshakes=%ld resumed=%ld errors=%ld seconds=%.3f rate=%.1f requests=%ld bytes=%ld "
           "req_rate=%.1f p50_ms=%.3f p99_ms=%.3f cpu=%.3f cpu_user=%.3f cpu_sys=%.3f "
           "cpu_us_per_hs=%.1f",
           st.handshakes, st.resumed, st.errors, seconds,
           seconds > 0 ? (double)st.handshakes / seconds : 0.0, st.requests, st.bytes,
           seconds > 0 ? (double)st.requests / seconds : 0.0, p50, p99, cpu, user, sys,
           st.handshakes > 0 ? cpu * 1e6 / (double)st.handshakes : 0.0);
    if (opt.rate > 0)
        printf(" offered=%.1f missed=%ld", opt.rate, st.missed);
    printf("\n");
    fflush(stdout);
}

/* Opens connections into free slots while the run wants more. */
static void refill(conn_t *v, int n, long *to_open)
{
    for (int i = 0; i < n && *to_open != 0; i++) {
        if (v[i].state != ST_FREE)
            continue;
        if (conn_start(&v[i]) != 0) {
            st.errors++;
            conn_close(&v[i], 0);
            if (st.errors > 1000 && st.handshakes == 0) {
                fprintf(stderr, "bench_loadgen: cannot connect: %s\n", strerror(errno));
                exit(1);
            }
            continue;
        }
        if (*to_open > 0)
            (*to_open)--;
    }
}

static void expire(conn_t *v, int n, double t)
{
    for (int i = 0; i < n; i++)
        if (v[i].state != ST_FREE && v[i].state != ST_IDLE && t - v[i].started > opt.timeout) {
            st.errors++;
            conn_close(&v[i], 0);
        }
}

static int count_state(const conn_t *v, int n, enum state s)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += v[i].state == s;
    return k;
}

static void poll_once(conn_t *v, int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    for (int i = 0; i < n; i++) {
        conn_t *c = &v[evs[i].data.u32];
        if (c->fd >= 0)
            on_event(c);
    }
}

/* --rate: opens the connections the schedule says are due by T (the k-th
 * at t0 + k/R); those with no free slot are missed, not deferred, so that a
 * slow server cannot turn the open loop into a closed one. Returns the
 * milliseconds until the next one is due (at least 1). */
static int open_due(conn_t *v, double t0, double t, long *opened)
{
    long due = (long)((t - t0) * opt.rate) + 1;
    long behind = due - *opened;
    if (behind > 0) {
        long free_slots = count_state(v, opt.conns, ST_FREE);
        long take = behind < free_slots ? behind : free_slots;
        st.missed += behind - take;
        refill(v, opt.conns, &take);
        *opened = due;
    }
    double next = t0 + (double)*opened / opt.rate;
    int ms = (int)((next - now_s()) * 1e3);
    return ms < 1 ? 1 : ms;
}

/* --full / --resume: a fixed number of connections in flight for the
 * duration, or with --rate a fixed number of new ones a second. */
static void run_load(conn_t *v)
{
    long unlimited = -1, opened = 0;
    double t0 = now_s(), u0 = cpu_s(0), s0 = cpu_s(1), end = t0 + opt.duration, t;
    while (!stop && (t = now_s()) < end) {
        int wait_ms = 50;
        if (opt.rate > 0) {
            int due_ms = open_due(v, t0, t, &opened);
            wait_ms = due_ms < wait_ms ? due_ms : wait_ms;
        } else {
            refill(v, opt.conns, &unlimited);
        }
        poll_once(v, wait_ms);
        expire(v, opt.conns, now_s());
    }
    print_result(t0, u0, s0);
}

/* Holds until SIGTERM/SIGINT, or until stdin (a pipe or terminal) closes. */
static void hold(conn_t *v, int n)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLHUP, .data.u32 = (uint32_t)n};
    int watch_stdin = epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) == 0;
    while (!stop) {
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, 1000);
        for (int i = 0; i < k; i++) {
            if (watch_stdin && evs[i].data.u32 == (uint32_t)n) {
                char b[256];
                if (read(0, b, sizeof b) <= 0)
                    stop = 1;
            } else if (v[evs[i].data.u32].fd >= 0) {
                on_event(&v[evs[i].data.u32]);
            }
        }
    }
    fprintf(stderr, "bench_loadgen: %ld idle connections dropped by the peer\n", st.idle_dropped);
}

/* --idle N: N established connections, opened C at a time; a slot whose
 * connection failed is free again and retried. */
static void run_idle(conn_t *v)
{
    double t0 = now_s(), u0 = cpu_s(0), s0 = cpu_s(1);
    for (;;) {
        int idle = count_state(v, opt.idle, ST_IDLE);
        int busy = opt.idle - idle - count_state(v, opt.idle, ST_FREE);
        if (stop || idle == opt.idle || st.errors > opt.idle)
            break;
        long batch = opt.conns - busy;
        if (batch > 0)
            refill(v, opt.idle, &batch);
        poll_once(v, 50);
        expire(v, opt.idle, now_s());
    }
    print_result(t0, u0, s0);
    printf("ready\n");
    fflush(stdout);
    hold(v, opt.idle);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    resolve_peer();
    wolfSSL_Init();
    setup_ctx();
    ep = epoll_create1(EPOLL_CLOEXEC);
    int n = opt.mode == MODE_IDLE ? opt.idle : opt.conns;
    conn_t *v = calloc((size_t)n, sizeof *v);
    lat = malloc(LAT_MAX * sizeof *lat);
    if (v == NULL || lat == NULL || ep < 0)
        return 1;
    for (int i = 0; i < n; i++)
        v[i] = (conn_t){.fd = -1, .slot = i};
    if (opt.mode == MODE_IDLE)
        run_idle(v);
    else
        run_load(v);
    for (int i = 0; i < n; i++) {
        conn_close(&v[i], 0);
        if (v[i].session != NULL)
            wolfSSL_SESSION_free(v[i].session);
    }
    free(v);
    free(lat);
    wolfSSL_CTX_free(ctx);
    wolfSSL_Cleanup();
    return st.handshakes > 0 ? 0 : 1;
}
