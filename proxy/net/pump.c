/* See pump.h. Directions: up = client → backend, down = backend → client.
 * Nothing here knows which stream is TLS: both are driven through their
 * tf_stream_ops_t, and reached through the sink's owner pointer. */
#include "proxy/net/pump.h"

static tf_stream_t *peer_of(tf_pump_t *p, tf_stream_t *s)
{
    return s == p->client ? p->backend : p->client;
}

/* The state of the direction that reads from `src`. */
static uint8_t *flow_from(tf_pump_t *p, tf_stream_t *src)
{
    return src == p->client ? &p->up : &p->down;
}

static void touch(tf_pump_t *p)
{
    p->traffic->active_ms = uv_now(p->loop);
}

static void pump_on_data(tf_stream_t *src, const char *data, size_t len)
{
    tf_pump_t *p = src->owner;
    tf_stream_t *dst = peer_of(p, src);
    if (src == p->client)
        p->traffic->up += len;
    else
        p->traffic->down += len;
    touch(p);
    int rc = dst->ops->write(dst, data, len);
    if (rc < 0) {
        p->owner_ops->fail(p, rc, "write");
        return;
    }
    tf_pump_balance(p);
}

static void pump_on_eof(tf_stream_t *src)
{
    tf_pump_t *p = src->owner;
    uint8_t *flow = flow_from(p, src);
    src->ops->read_stop(src);
    if (*flow != TF_FLOW_OPEN)
        return;
    *flow = TF_FLOW_ENDING;
    p->owner_ops->ended(p, src == p->client);
    /* Passed on once what is queued has been written. */
    tf_stream_t *dst = peer_of(p, src);
    if (dst->ops->shutdown(dst) < 0 || !tf_stream_live(src))
        return;
    tf_pump_balance(p);
}

static void pump_on_written(tf_stream_t *dst)
{
    tf_pump_t *p = dst->owner;
    touch(p);
    tf_pump_balance(p);
}

static void pump_on_shut(tf_stream_t *dst)
{
    tf_pump_t *p = dst->owner;
    /* The client may still be sending after its close_notify went out (TLS
     * 1.3 half-close): the tunnel ends when both directions have, or at
     * the owner's idle timeout. */
    if (dst == p->client)
        p->down = TF_FLOW_ENDED;
    else
        p->up = TF_FLOW_ENDED;
    tf_pump_balance(p);
}

static void pump_on_error(tf_stream_t *s, int err, const char *what)
{
    tf_pump_t *p = s->owner;
    p->owner_ops->fail(p, err, what);
}

/* The handshake is over long before a tunnel starts. */
static void pump_on_ready(tf_stream_t *s)
{
}

static const tf_sink_t pump_sink = {
    .data = pump_on_data,
    .eof = pump_on_eof,
    .written = pump_on_written,
    .shut = pump_on_shut,
    .error = pump_on_error,
    .ready = pump_on_ready,
};

void tf_pump_start(tf_pump_t *p, uv_loop_t *loop, tf_stream_t *client, tf_stream_t *backend,
                   bool client_ended, tf_traffic_t *traffic, const tf_pump_owner_t *owner_ops,
                   void *owner)
{
    *p = (tf_pump_t){
        .client = client,
        .backend = backend,
        .traffic = traffic,
        .loop = loop,
        .owner_ops = owner_ops,
        .owner = owner,
        .up = client_ended ? TF_FLOW_ENDING : TF_FLOW_OPEN,
        .down = TF_FLOW_OPEN,
    };
    tf_stream_set_sink(client, &pump_sink, p);
    tf_stream_set_sink(backend, &pump_sink, p);
    touch(p);
    if (client_ended && backend->ops->shutdown(backend) < 0)
        return;
    if (tf_stream_set_writable(backend) != 0 || !tf_stream_live(backend))
        return;
    tf_pump_balance(p);
}

/* One direction: src is read while dst's pending bytes stay low. Returns
 * false when the tunnel was given up. */
static bool balance_one(tf_pump_t *p, tf_stream_t *src, tf_stream_t *dst, uint8_t flow)
{
    size_t pending = dst->ops->pending(dst);
    if (pending > TF_PUMP_HARD_CAP) {
        p->owner_ops->close(p, TF_LOG_WARN, "peer does not read");
        return false;
    }
    if (flow != TF_FLOW_OPEN || pending >= TF_PUMP_HIGH_WATER) {
        src->ops->read_stop(src);
    } else if (pending <= TF_PUMP_LOW_WATER && !(src->flags & TF_STREAM_READING)) {
        if (src->ops->read_start(src) != 0) {
            p->owner_ops->close(p, TF_LOG_WARN, "cannot read");
            return false;
        }
    }
    return true;
}

void tf_pump_balance(tf_pump_t *p)
{
    if (!tf_stream_live(p->client) || !tf_stream_live(p->backend))
        return;
    if (!balance_one(p, p->client, p->backend, p->up))
        return;
    if (!balance_one(p, p->backend, p->client, p->down))
        return;
    if (p->up == TF_FLOW_ENDED && p->down == TF_FLOW_ENDED)
        p->owner_ops->close(p, TF_LOG_INFO, "done");
}
