/* See listener.h. */
#include "proxy/net/listener.h"

#include "common/err.h"
#include "proxy/net/conn.h"
#include "proxy/obs/obs.h"
#include "common/util.h"
#include "proxy/net/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- binding (main thread) -------------------------------------------- */

static int resolve(const tf_conf_addr_t *a, uint16_t port_num, struct sockaddr_storage *ss,
                   socklen_t *len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)port_num);
    if (a->family != TF_CONF_ADDR_NAME)
        hints.ai_flags |= AI_NUMERICHOST;
    int rc = getaddrinfo(a->host, port, &hints, &res);
    if (rc != 0)
        return rc;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int set_opt(int fd, int level, int name)
{
    int one = 1;
    return setsockopt(fd, level, name, &one, sizeof one);
}

int tf_listener_bind(const tf_conf_addr_t *addr, uint16_t port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int rc = resolve(addr, port != 0 ? port : addr->port, &ss, &len);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot listen: %s; use an IP address", addr->text,
                 gai_strerror(rc));
        return TF_EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const char *step = "socket";
    if (fd < 0)
        goto fail;
    step = "setsockopt";
    if (set_opt(fd, SOL_SOCKET, SO_REUSEADDR) != 0 || set_opt(fd, SOL_SOCKET, SO_REUSEPORT) != 0)
        goto fail;
    /* So that "0.0.0.0:443" and "[::]:443" can both be listed. */
    if (ss.ss_family == AF_INET6 && set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY) != 0)
        goto fail;
    step = "bind";
    if (bind(fd, (struct sockaddr *)&ss, len) != 0)
        goto fail;
    step = "listen";
    if (listen(fd, TF_LISTENER_BACKLOG) != 0)
        goto fail;
    return fd;
fail:
    rc = -errno;
    snprintf(err, errlen, "%s: cannot listen (%s): %s; %s", addr->text, step, strerror(errno),
             errno == EADDRINUSE      ? "another process holds this address"
             : errno == EACCES        ? "ports below 1024 need root or CAP_NET_BIND_SERVICE"
             : errno == EADDRNOTAVAIL ? "this address is not on any interface"
                                      : "check the listen section");
    if (fd >= 0)
        close(fd);
    return rc;
}

int tf_listener_probe(const tf_conf_addr_t *addr, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (addr->port == 0 || resolve(addr, addr->port, &ss, &len) != 0)
        return 0;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    /* SO_REUSEADDR as the real socket has it, so that connections of an
     * earlier run in TIME_WAIT do not count; IPV6_V6ONLY likewise, so that
     * "[::]:443" beside another process's "0.0.0.0:443" shares nothing. */
    bool in_use = set_opt(fd, SOL_SOCKET, SO_REUSEADDR) == 0 &&
                  (ss.ss_family != AF_INET6 || set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY) == 0) &&
                  bind(fd, (struct sockaddr *)&ss, len) != 0 && errno == EADDRINUSE;
    close(fd);
    if (!in_use)
        return 0;
    char who[128];
    tf_listener_owner((const struct sockaddr *)&ss, who, sizeof who);
    snprintf(err, errlen,
             "%s: cannot listen: another process already listens on this address%s; stop it or "
             "choose another address",
             addr->text, who);
    return UV_EADDRINUSE;
}

int tf_listener_name(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    return tf_listener_format((const struct sockaddr *)&ss, out, outlen);
}

int tf_listener_format(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];
    bool v6 = sa->sa_family == AF_INET6;
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)(const void *)sa;
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)sa;
    const void *addr = v6 ? (const void *)&a6->sin6_addr : (const void *)&a4->sin_addr;
    if (inet_ntop(sa->sa_family, addr, ip, sizeof ip) == NULL)
        return -errno;
    unsigned port = ntohs(v6 ? a6->sin6_port : a4->sin_port);
    int n = snprintf(out, outlen, v6 ? "[%s]:%u" : "%s:%u", ip, port);
    return n > 0 && (size_t)n < outlen ? (int)port : TF_EINVAL;
}

/* ---- accepting (worker thread) ---------------------------------------- */

static void listener_on_connection(uv_stream_t *server, int status);
static void listener_on_retry(uv_timer_t *t);
static void listener_on_paused(uv_handle_t *h);

/* Whether n more descriptors can be had right now. libuv takes the next
 * pending connection (accept4) before it calls us, and when that fails
 * with EMFILE it closes a spare descriptor, accepts and drops every waiting
 * client to empty the backlog, and calls nobody. So accepting must pause
 * while a descriptor is still free: the clients then wait in the backlog.
 * A dup of the listening socket is the probe (nothing else in the accept
 * path opens a file: wolfSSL seeds from getrandom and shares one generator
 * per worker). */
static bool fd_headroom(const tf_listener_t *l, int n)
{
    int fds[4];
    int got = 0;
    bool ok = true;
    while (got < n && got < 4) {
        int fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            ok = errno != EMFILE && errno != ENFILE;
            break;
        }
        fds[got++] = fd;
    }
    while (got > 0)
        close(fds[--got]);
    return ok;
}

static int listener_open(tf_listener_t *l)
{
    int fd = dup(l->fd);
    if (fd < 0)
        return -errno;
    int rc = uv_tcp_init(&l->worker->loop, &l->tcp);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    l->tcp.data = l;
    rc = uv_tcp_open(&l->tcp, fd);
    if (rc != 0)
        close(fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, TF_LISTENER_BACKLOG, listener_on_connection);
    if (rc != 0) {
        l->state = TF_LISTENER_CLOSING;
        uv_close((uv_handle_t *)&l->tcp, listener_on_paused);
        return rc;
    }
    l->state = TF_LISTENER_ACTIVE;
    return 0;
}

int tf_listener_start(tf_listener_t *l, tf_worker_t *w, const tf_conf_addr_t *addr, int fd)
{
    memset(l, 0, sizeof *l);
    l->worker = w;
    l->addr = addr;
    l->fd = fd;
    l->port = addr->port;
    if (l->port == 0) {
        /* Bound to port 0 (the kernel chose): ask the socket once. */
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
            l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    }
    uv_timer_init(&w->loop, &l->retry);
    l->retry.data = l;
    return listener_open(l);
}

static void listener_arm_retry(tf_listener_t *l)
{
    uv_timer_start(&l->retry, listener_on_retry, TF_LISTENER_RETRY_MS, 0);
}

static void listener_on_paused(uv_handle_t *h)
{
    tf_listener_t *l = h->data;
    l->state = TF_LISTENER_PAUSED;
    if (!l->stopping)
        listener_arm_retry(l);
}

/* Out of descriptors: stop polling the socket by closing our handle on it
 * (the original fd keeps it open and its backlog queued). */
static void listener_pause(tf_listener_t *l, int err)
{
    TF_LOG(TF_LOG_WARN, "%s: cannot accept: %s; pausing accepts", l->addr->text, tf_strerror(err));
    l->state = TF_LISTENER_CLOSING;
    uv_close((uv_handle_t *)&l->tcp, listener_on_paused);
}

/* Every state change in and out of PARKED goes through here, so that the
 * process-wide count of parked listeners (which tells a worker freeing a slot
 * whether to wake the others) stays exact. */
static void listener_set_state(tf_listener_t *l, tf_listener_state_t st)
{
    _Atomic uint32_t *parked = &l->worker->view.shared->parked;
    if (l->state == TF_LISTENER_PARKED && st != TF_LISTENER_PARKED)
        atomic_fetch_sub(parked, 1);
    else if (l->state != TF_LISTENER_PARKED && st == TF_LISTENER_PARKED)
        atomic_fetch_add(parked, 1);
    l->state = (uint8_t)st;
}

/* Takes the pending connection; false when it must wait (limit reached). */
static bool listener_take(tf_listener_t *l)
{
    if (!tf_worker_admit(l->worker)) {
        if (l->state != TF_LISTENER_PARKED)
            TF_LOG(TF_LOG_WARN, "%s: limits.max_connections (%u) reached: new connections wait",
                   l->addr->text, (unsigned)l->worker->view.shared->max_connections);
        listener_set_state(l, TF_LISTENER_PARKED);
        listener_arm_retry(l);
        return false;
    }
    listener_set_state(l, TF_LISTENER_ACTIVE);
    int rc = tf_conn_accept(l->worker, (uv_stream_t *)&l->tcp, l->port);
    if (rc == TF_ENOMEM) {
        /* No memory for the struct: the connection stays pending. */
        tf_worker_release(l->worker);
        listener_set_state(l, TF_LISTENER_PARKED);
        listener_arm_retry(l);
        return false;
    }
    if (rc != 0) {
        listener_pause(l, rc);
        return false;
    }
    /* Room for this connection's backend and the next accept. */
    if (!fd_headroom(l, 2))
        listener_pause(l, UV_EMFILE);
    return true;
}

static void listener_on_connection(uv_stream_t *server, int status)
{
    tf_listener_t *l = server->data;
    if (l->state != TF_LISTENER_ACTIVE)
        return;
    if (status == UV_EMFILE || status == UV_ENFILE || status == UV_ENOBUFS || status == UV_ENOMEM) {
        listener_pause(l, status);
        return;
    }
    if (status < 0) {
        TF_LOG(TF_LOG_INFO, "%s: accept: %s", l->addr->text, uv_strerror(status));
        return;
    }
    listener_take(l);
}

void tf_listener_resume(tf_listener_t *l)
{
    if (l->stopping)
        return;
    if (l->state == TF_LISTENER_PARKED) {
        listener_take(l);
    } else if (l->state == TF_LISTENER_PAUSED) {
        /* The handle's own descriptor, the next accept and its backend. */
        if (!fd_headroom(l, 3)) {
            listener_arm_retry(l);
            return;
        }
        int rc = listener_open(l);
        if (rc == 0)
            TF_LOG(TF_LOG_INFO, "%s: accepting again", l->addr->text);
        else if (l->state != TF_LISTENER_CLOSING)
            listener_arm_retry(l);
    }
}

static void listener_on_retry(uv_timer_t *t)
{
    tf_listener_resume(t->data);
}

static void listener_on_stopped(uv_handle_t *h)
{
    tf_listener_t *l = h->data;
    if (h == (uv_handle_t *)&l->tcp)
        l->state = TF_LISTENER_IDLE;
}

void tf_listener_stop(tf_listener_t *l)
{
    if (l->stopping)
        return;
    l->stopping = true;
    uv_timer_stop(&l->retry);
    uv_close((uv_handle_t *)&l->retry, NULL);
    if (l->state == TF_LISTENER_ACTIVE || l->state == TF_LISTENER_PARKED) {
        listener_set_state(l, TF_LISTENER_CLOSING);
        uv_close((uv_handle_t *)&l->tcp, listener_on_stopped);
    }
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}
