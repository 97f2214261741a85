/* See forwarder.h. One thread, one poll(2) over the listener, a wake pipe
 * and every connection; writes are blocking (a validation request and its
 * answer are a few hundred bytes each way, on loopback). */
#define _GNU_SOURCE /* accept4, pipe2: no descriptor leaks into the children the test forks */
#include "forwarder.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_CONNS = 32, MAX_PORTS = 8 };

typedef struct {
    int cfd, ufd; /* the accepted side; the target side, -1 while held */
} pair_t;

struct tf_fwd {
    int lfd, wake[2];
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    /* Under lock. */
    bool stopping;
    unsigned target, accepted;
    unsigned ports[MAX_PORTS], counts[MAX_PORTS];
    /* The thread's own. */
    pair_t conns[MAX_CONNS];
    size_t nconns;
};

static void poke(tf_fwd_t *f)
{
    char b = 1;
    ssize_t n = write(f->wake[1], &b, 1);
    (void)n;
}

static int connect_to(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void count_forward(tf_fwd_t *f, unsigned port)
{
    for (size_t i = 0; i < MAX_PORTS; i++) {
        if (f->ports[i] == port || f->ports[i] == 0) {
            f->ports[i] = port;
            f->counts[i]++;
            return;
        }
    }
}

static void drop(tf_fwd_t *f, size_t i)
{
    close(f->conns[i].cfd);
    if (f->conns[i].ufd >= 0)
        close(f->conns[i].ufd);
    f->conns[i] = f->conns[--f->nconns];
}

/* Connects the held connections when a target is set. */
static void release_held(tf_fwd_t *f)
{
    pthread_mutex_lock(&f->lock);
    unsigned target = f->target;
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; target != 0 && i < f->nconns; i++) {
        if (f->conns[i].ufd >= 0)
            continue;
        f->conns[i].ufd = connect_to(target);
        pthread_mutex_lock(&f->lock);
        if (f->conns[i].ufd >= 0)
            count_forward(f, target);
        pthread_mutex_unlock(&f->lock);
        if (f->conns[i].ufd < 0)
            drop(f, i--);
    }
}

static void accept_one(tf_fwd_t *f)
{
    int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (f->nconns == MAX_CONNS) {
        close(fd);
        return;
    }
    f->conns[f->nconns++] = (pair_t){.cfd = fd, .ufd = -1};
    pthread_mutex_lock(&f->lock);
    f->accepted++;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Moves what FROM has to TO; false when the pair is done. */
static bool pump(int from, int to)
{
    char buf[16384];
    ssize_t n = read(from, buf, sizeof buf);
    return n > 0 && write_all(to, buf, (size_t)n);
}

static void *fwd_main(void *arg)
{
    tf_fwd_t *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        bool stop = f->stopping;
        pthread_mutex_unlock(&f->lock);
        if (stop)
            break;
        release_held(f);
        struct pollfd pf[2 + 2 * MAX_CONNS];
        size_t n = 0;
        pf[n++] = (struct pollfd){.fd = f->wake[0], .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = f->lfd, .events = POLLIN};
        for (size_t i = 0; i < f->nconns; i++) {
            /* A held connection is not read: its bytes wait for the target. */
            bool live = f->conns[i].ufd >= 0;
            pf[n++] = (struct pollfd){.fd = live ? f->conns[i].cfd : -1, .events = POLLIN};
            pf[n++] = (struct pollfd){.fd = f->conns[i].ufd, .events = POLLIN};
        }
        if (poll(pf, n, -1) < 0 && errno != EINTR)
            break;
        if (pf[0].revents) {
            char b[64];
            ssize_t r = read(f->wake[0], b, sizeof b);
            (void)r;
        }
        for (size_t i = f->nconns; i-- > 0;) {
            short cr = pf[2 + 2 * i].revents, ur = pf[3 + 2 * i].revents;
            bool ok = true;
            if (cr)
                ok = pump(f->conns[i].cfd, f->conns[i].ufd);
            if (ok && ur)
                ok = pump(f->conns[i].ufd, f->conns[i].cfd);
            if (!ok)
                drop(f, i);
        }
        if (pf[1].revents)
            accept_one(f);
    }
    while (f->nconns > 0)
        drop(f, 0);
    return NULL;
}

tf_fwd_t *tf_fwd_start(unsigned *port)
{
    tf_fwd_t *f = calloc(1, sizeof *f);
    cr_assert_not_null(f);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(f->lfd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(f->lfd, 64), 0);
    cr_assert_eq(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    cr_assert_eq(pipe2(f->wake, O_CLOEXEC | O_NONBLOCK), 0);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->changed, NULL);
    cr_assert_eq(pthread_create(&f->thread, NULL, fwd_main, f), 0);
    f->started = true;
    return f;
}

void tf_fwd_target(tf_fwd_t *f, unsigned port)
{
    pthread_mutex_lock(&f->lock);
    f->target = port;
    pthread_mutex_unlock(&f->lock);
    poke(f);
}

bool tf_fwd_wait_accepted(tf_fwd_t *f, unsigned n, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->lock);
    int rc = 0;
    while (f->accepted < n && rc == 0)
        rc = pthread_cond_timedwait(&f->changed, &f->lock, &ts);
    bool ok = f->accepted >= n;
    pthread_mutex_unlock(&f->lock);
    return ok;
}

unsigned tf_fwd_accepted(tf_fwd_t *f)
{
    pthread_mutex_lock(&f->lock);
    unsigned n = f->accepted;
    pthread_mutex_unlock(&f->lock);
    return n;
}

unsigned tf_fwd_forwarded(tf_fwd_t *f, unsigned port)
{
    unsigned n = 0;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < MAX_PORTS; i++) {
        if (f->ports[i] == port)
            n = f->counts[i];
    }
    pthread_mutex_unlock(&f->lock);
    return n;
}

void tf_fwd_stop(tf_fwd_t *f)
{
    if (f == NULL)
        return;
    if (f->started) {
        pthread_mutex_lock(&f->lock);
        f->stopping = true;
        pthread_mutex_unlock(&f->lock);
        poke(f);
        pthread_join(f->thread, NULL);
        close(f->wake[0]);
        close(f->wake[1]);
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->changed);
    }
    if (f->lfd >= 0)
        close(f->lfd);
    free(f);
}
