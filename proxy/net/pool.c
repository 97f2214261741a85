/* See pool.h. Buckets are found by a linear scan of the backend addresses:
 * a worker talks to tens of backends, not thousands. */
#include "proxy/net/pool.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

typedef struct {
    struct sockaddr_storage addr;
    uint64_t flavour;          /* how it is spoken to: 0 plain, else the TLS settings' */
    tf_bstream_t *head, *tail; /* most recently used first */
    uint32_t count;
    tf_pool_t *pool;
} bucket_t;

struct tf_pool {
    uv_loop_t *loop;
    uint64_t idle_ms;
    bucket_t **buckets;
    size_t nbuckets, cap;
    size_t idle;
};

/* ---- the idle sink: anything the backend says now (it closed, or sent
 * bytes nobody asked for) makes the connection unusable. ---------------- */

static void drop(bucket_t *b, tf_bstream_t *s);

static void idle_drop(tf_stream_t *stream)
{
    tf_bstream_t *s = stream->owner;
    if (s->bucket == NULL) {
        tf_bstream_release(stream);
        return;
    }
    drop(s->bucket, s);
}

static void idle_on_data(tf_stream_t *s, const char *data, size_t len)
{
    idle_drop(s);
}

static void idle_on_error(tf_stream_t *s, int err, const char *what)
{
    idle_drop(s);
}

/* Nothing is written to an idle connection. */
static void idle_ignore(tf_stream_t *s)
{
}

static const tf_sink_t idle_sink = {
    .data = idle_on_data,
    .eof = idle_drop,
    .written = idle_ignore,
    .shut = idle_ignore,
    .error = idle_on_error,
    .ready = idle_ignore,
};

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return false;
    if (b->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (b->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 &&
               x->sin6_scope_id == y->sin6_scope_id;
    }
    if (b->sa_family == AF_UNIX) {
        const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
        return strncmp(x->sun_path, y->sun_path, sizeof x->sun_path) == 0;
    }
    return false;
}

static size_t addr_len(const struct sockaddr *a)
{
    return a->sa_family == AF_INET6  ? sizeof(struct sockaddr_in6)
           : a->sa_family == AF_UNIX ? sizeof(struct sockaddr_un)
                                     : sizeof(struct sockaddr_in);
}

tf_pool_t *tf_pool_new(uv_loop_t *loop, uint64_t idle_ms)
{
    tf_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->idle_ms = idle_ms;
    return p;
}

static void unlink_stream(bucket_t *b, tf_bstream_t *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        b->head = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    else
        b->tail = s->prev;
    s->prev = s->next = NULL;
    s->bucket = NULL;
    b->count--;
    b->pool->idle--;
}

static void drop(bucket_t *b, tf_bstream_t *s)
{
    unlink_stream(b, s);
    tf_bstream_release(&s->s);
}

void tf_pool_clear(tf_pool_t *p)
{
    for (size_t i = 0; i < p->nbuckets; i++) {
        while (p->buckets[i]->head != NULL)
            drop(p->buckets[i], p->buckets[i]->head);
    }
}

void tf_pool_free(tf_pool_t *p)
{
    if (p == NULL)
        return;
    tf_pool_clear(p);
    for (size_t i = 0; i < p->nbuckets; i++)
        free(p->buckets[i]);
    free(p->buckets);
    free(p);
}

static bucket_t *find(const tf_pool_t *p, const struct sockaddr *addr, uint64_t flavour)
{
    for (size_t i = 0; i < p->nbuckets; i++) {
        if (p->buckets[i]->flavour == flavour && same_addr(&p->buckets[i]->addr, addr))
            return p->buckets[i];
    }
    return NULL;
}

static bucket_t *find_or_add(tf_pool_t *p, const struct sockaddr *addr, uint64_t flavour)
{
    bucket_t *b = find(p, addr, flavour);
    if (b != NULL)
        return b;
    if (p->nbuckets == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        bucket_t **nb = realloc(p->buckets, cap * sizeof *nb);
        if (nb == NULL)
            return NULL;
        p->buckets = nb;
        p->cap = cap;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    memcpy(&b->addr, addr, addr_len(addr));
    b->flavour = flavour;
    b->pool = p;
    p->buckets[p->nbuckets++] = b;
    return b;
}

/* The oldest connections are at the tail: those past the idle limit go. */
static void expire(bucket_t *b, uint64_t now)
{
    while (b->tail != NULL && now - b->tail->idle_since_ms >= b->pool->idle_ms)
        drop(b, b->tail);
}

tf_stream_t *tf_pool_take(tf_pool_t *p, const struct sockaddr *addr, uint64_t flavour,
                          const tf_sink_t *sink, void *owner)
{
    bucket_t *b = find(p, addr, flavour);
    if (b == NULL)
        return NULL;
    expire(b, uv_now(p->loop));
    tf_bstream_t *s = b->head;
    if (s == NULL)
        return NULL;
    /* Still reading: the new owner's sink takes over, with no epoll change
     * in between. */
    unlink_stream(b, s);
    tf_stream_set_sink(&s->s, sink, owner);
    s->uses++;
    return &s->s;
}

void tf_pool_put(tf_pool_t *p, const struct sockaddr *addr, uint64_t flavour, tf_stream_t *stream,
                 size_t keep)
{
    tf_bstream_t *s = tf_bstream_of(stream);
    bucket_t *b = find_or_add(p, addr, flavour);
    tf_stream_set_sink(stream, &idle_sink, s);
    /* Only a connection in its plain state is reusable: nothing queued, no
     * write side shut. */
    bool clean =
        stream->wbuf == NULL && stream->qlen == 0 &&
        !(stream->flags & (TF_STREAM_SHUT_WANTED | TF_STREAM_SHUT_SENT | TF_STREAM_HANDSHAKE)) &&
        (stream->flags & TF_STREAM_OPEN);
    if (b == NULL || !clean) {
        tf_bstream_release(stream);
        return;
    }
    uint64_t now = uv_now(p->loop);
    expire(b, now);
    if (b->count >= (keep > TF_POOL_MAX_IDLE ? keep : TF_POOL_MAX_IDLE))
        drop(b, b->tail);
    if (stream->ops->read_start(stream) != 0) {
        tf_bstream_release(stream);
        return;
    }
    s->idle_since_ms = now;
    s->bucket = b;
    s->prev = NULL;
    s->next = b->head;
    if (b->head != NULL)
        b->head->prev = s;
    else
        b->tail = s;
    b->head = s;
    b->count++;
    p->idle++;
}

size_t tf_pool_idle_count(const tf_pool_t *p)
{
    return p->idle;
}

void tf_pool_sweep(tf_pool_t *p)
{
    uint64_t now = uv_now(p->loop);
    for (size_t i = 0; i < p->nbuckets; i++)
        expire(p->buckets[i], now);
}
