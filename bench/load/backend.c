/* bench_backend [--listen HOST:PORT] [--size N] [--port-file FILE]
 *
 * The HTTP/1.1 backend for the proxy benchmarks (bench/load/run.sh): one
 * thread, one epoll loop, answers every request with the same response —
 * 200, `Content-Length: N`, N bytes of body (default 16), keep-alive — so it
 * is never the bottleneck. A request is whatever ends with an empty line
 * (GET without a body); pipelined requests are answered in order. For the
 * bulk case the same tool serves a 1 MiB body (--size 1048576).
 *
 * --listen defaults to 127.0.0.1:0; the port actually bound is printed on
 * stdout ("port=N") and written to --port-file if given, so a script can
 * start it without racing for a free port. On SIGTERM or SIGINT it prints
 * "connections=N requests=M" (how many connections the proxy opened to it:
 * does the proxy reuse them?) and exits.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int fd;
    int tail;     /* bytes of "\r\n\r\n" matched at the end of what was read */
    long pending; /* responses owed, the first one partly sent */
    size_t sent;  /* bytes of the current response already written */
} client_t;

static char *response;
static size_t response_len;
static int ep;
static long accepted, requests;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void build_response(long size)
{
    char head[256];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %ld\r\n\r\n",
                     size);
    response_len = (size_t)h + (size_t)size;
    response = malloc(response_len);
    if (response == NULL)
        die("malloc");
    memcpy(response, head, (size_t)h);
    memset(response + h, 'x', (size_t)size);
}

static int listen_on(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bench_backend: %s is not an IPv4 address\n", host);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0)
        die("bench_backend: listen");
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        die("getsockname");
    return ntohs(sa.sin_port);
}

static void drop(client_t *c)
{
    close(c->fd);
    free(c);
}

/* Counts the requests that end in buf: each "\r\n\r\n", even across reads. */
static void count_requests(client_t *c, const char *buf, ssize_t n)
{
    static const char end[] = "\r\n\r\n";
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == end[c->tail]) {
            if (++c->tail == 4) {
                c->pending++;
                requests++;
                c->tail = 0;
            }
        } else {
            c->tail = buf[i] == '\r' ? 1 : 0;
        }
    }
}

/* Writes owed responses until done or the socket is full; -1 on error. */
static int flush_responses(client_t *c)
{
    while (c->pending > 0) {
        ssize_t w = write(c->fd, response + c->sent, response_len - c->sent);
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->sent += (size_t)w;
        if (c->sent == response_len) {
            c->sent = 0;
            c->pending--;
        }
    }
    return 0;
}

static void on_client(client_t *c, uint32_t events)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n > 0) {
            count_requests(c, buf, n);
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            drop(c);
            return;
        }
        break;
    }
    if (flush_responses(c) != 0 || (events & (EPOLLHUP | EPOLLERR)))
        drop(c);
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        client_t *c = calloc(1, sizeof *c);
        if (c == NULL)
            die("calloc");
        c->fd = fd;
        accepted++;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            drop(c);
    }
}

static void parse_listen(char *arg, const char **host, int *port)
{
    char *colon = strrchr(arg, ':');
    if (colon == NULL) {
        fprintf(stderr, "bench_backend: --listen HOST:PORT\n");
        exit(2);
    }
    *colon = '\0';
    *host = arg;
    *port = atoi(colon + 1);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port_file = NULL;
    int port = 0;
    long size = 16;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0)
            parse_listen(argv[i + 1], &host, &port);
        else if (strcmp(argv[i], "--size") == 0)
            size = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
    }
    if (argc % 2 == 0 || size < 0) {
        fprintf(stderr, "usage: bench_backend [--listen HOST:PORT] [--size N] [--port-file F]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    build_response(size);
    int lfd = listen_on(host, port);
    port = bound_port(lfd);
    printf("port=%d\n", port);
    fflush(stdout);
    if (port_file != NULL) {
        FILE *f = fopen(port_file, "w");
        if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0)
            die(port_file);
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0)
        die("epoll");
    while (!stop) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                on_accept(lfd);
            else
                on_client(evs[i].data.ptr, evs[i].events);
        }
    }
    printf("connections=%ld requests=%ld\n", accepted, requests);
    return 0;
}
