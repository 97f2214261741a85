/* See pump.h. Directions: up = client → backend, down = backend → client.
 * Nothing here knows which stream is TLS: both are driven through their
 * tf_stream_ops_t. */
#include "proxy/pump.h"

#include "proxy/exchange.h"
#include "proxy/worker.h"

static tf_stream_t *peer_of(tf_stream_t *s)
{
    tf_conn_t *c = s->conn;
    return s == &c->client ? c->backend : &c->client;
}

/* Mode http hands everything to the exchange until a 101 makes a tunnel. */
static bool http_owns(const tf_conn_t *c)
{
    return c->hx != NULL && c->phase != TF_CONN_TUNNEL;
}

/* The state of the direction that reads from `src`. */
static uint8_t *flow_from(tf_stream_t *src)
{
    tf_conn_t *c = src->conn;
    return src == &c->client ? &c->up : &c->down;
}

static void touch(tf_conn_t *c)
{
    c->active_ms = uv_now(&c->worker->loop);
}

void tf_pump_on_data(tf_stream_t *src, const char *data, size_t len)
{
    tf_conn_t *c = src->conn;
    if (http_owns(c)) {
        tf_hx_on_data(src, data, len);
        return;
    }
    tf_stream_t *dst = peer_of(src);
    if (src == &c->client)
        c->bytes_up += len;
    else
        c->bytes_down += len;
    touch(c);
    int rc = dst->ops->write(dst, data, len);
    if (rc < 0) {
        tf_conn_fail(c, rc, "write");
        return;
    }
    tf_pump_balance(c);
}

void tf_pump_on_eof(tf_stream_t *src)
{
    tf_conn_t *c = src->conn;
    if (http_owns(c)) {
        tf_hx_on_eof(src);
        return;
    }
    uint8_t *flow = flow_from(src);
    src->ops->read_stop(src);
    if (*flow != TF_FLOW_OPEN)
        return;
    *flow = TF_FLOW_ENDING;
    TF_CONN_LOG(TF_LOG_DEBUG, c, "%s ended its output", src == &c->client ? "client" : "backend");
    /* Passed on once what is queued has been written (at once if the
     * backend is still connecting: its shutdown waits for the connect). */
    tf_stream_t *dst = peer_of(src);
    int rc = dst->ops->shutdown(dst);
    if (rc < 0 || tf_conn_closing(c))
        return;
    tf_pump_balance(c);
}

void tf_pump_on_written(tf_stream_t *dst)
{
    if (http_owns(dst->conn)) {
        tf_hx_on_written(dst);
        return;
    }
    touch(dst->conn);
    tf_pump_balance(dst->conn);
}

void tf_pump_on_shut(tf_stream_t *dst)
{
    tf_conn_t *c = dst->conn;
    if (http_owns(c)) {
        tf_hx_on_shut(dst);
        return;
    }
    if (dst == &c->client) {
        /* The backend ended and the client has its close_notify; the client
         * may still be sending (TLS 1.3 half-close): the connection ends
         * when both directions have (tf_pump_balance), or at the idle
         * timeout. */
        c->down = TF_FLOW_ENDED;
        tf_pump_balance(c);
        return;
    }
    c->up = TF_FLOW_ENDED;
    tf_pump_balance(c);
}

void tf_pump_start(tf_conn_t *c)
{
    tf_stream_set_writable(c->backend);
    if (tf_conn_closing(c))
        return;
    if (c->up == TF_FLOW_OPEN && c->client.ops->read_start(&c->client) != 0)
        goto fail;
    if (c->down == TF_FLOW_OPEN && c->backend->ops->read_start(c->backend) != 0)
        goto fail;
    tf_conn_arm_timer(c);
    tf_pump_balance(c);
    return;
fail:
    tf_conn_close(c, TF_LOG_WARN, "cannot read");
}

/* One direction: src is read while dst's pending bytes stay low. Returns
 * false when the connection was closed. */
static bool balance_one(tf_conn_t *c, tf_stream_t *src, tf_stream_t *dst, uint8_t flow)
{
    size_t pending = dst->ops->pending(dst);
    if (pending > TF_PUMP_HARD_CAP) {
        tf_conn_close(c, TF_LOG_WARN, "peer does not read");
        return false;
    }
    if (flow != TF_FLOW_OPEN || pending >= TF_PUMP_HIGH_WATER) {
        src->ops->read_stop(src);
    } else if (pending <= TF_PUMP_LOW_WATER && !(src->flags & TF_STREAM_READING)) {
        if (src->ops->read_start(src) != 0) {
            tf_conn_close(c, TF_LOG_WARN, "cannot read");
            return false;
        }
    }
    return true;
}

void tf_pump_balance(tf_conn_t *c)
{
    switch ((tf_conn_phase_t)c->phase) {
    case TF_CONN_HANDSHAKE:
    case TF_CONN_CLOSING:
        return;
    case TF_CONN_HTTP:
        tf_hx_balance(c);
        return;
    case TF_CONN_CONNECTING:
        if (c->hx != NULL) {
            tf_hx_balance(c);
            return;
        }
        /* Bytes that arrived with the handshake wait for the backend. */
        c->client.ops->read_stop(&c->client);
        if (c->backend != NULL && c->backend->ops->pending(c->backend) > TF_PUMP_HARD_CAP)
            tf_conn_close(c, TF_LOG_WARN, "peer does not read");
        return;
    case TF_CONN_TUNNEL:
        break;
    }
    if (!balance_one(c, &c->client, c->backend, c->up))
        return;
    if (!balance_one(c, c->backend, &c->client, c->down))
        return;
    if (c->up == TF_FLOW_ENDED && c->down == TF_FLOW_ENDED)
        tf_conn_close(c, TF_LOG_INFO, "done");
}
