/* An HTTP/1 exchange's deadlines and drain (exchange_internal.h), and the
 * mode through which conn.c's one timer reaches them. */
#include "proxy/net/exchange_internal.h"

/* ---- timers ------------------------------------------------------------------- */

typedef enum { DL_IDLE, DL_HEADER, DL_RESPONSE, DL_ACTIVITY, DL_LINGER } deadline_t;

static deadline_t deadline_kind(const tf_hx_t *hx)
{
    if (hx->lingering)
        return DL_LINGER;
    if (hx->closing)
        return DL_ACTIVITY;
    if (hx->rs == RS_NONE && hx->rq == RQ_IDLE)
        return hx->requests == 0 ? DL_HEADER : DL_IDLE;
    if (hx->rs == RS_NONE && hx->rq == RQ_HEAD)
        return DL_HEADER;
    if (hx->rs == RS_WAIT && hx->rq == RQ_DONE && hx->rin.len == 0)
        return DL_RESPONSE;
    return DL_ACTIVITY;
}

static uint64_t deadline_at(const tf_conn_t *c, deadline_t k)
{
    const tf_hx_t *hx = c->hx;
    const tf_conf_timeouts_t *t = tf_conf_timeouts(conf_of(c));
    /* A route's own timeouts (SPEC §11: route, then tenant, then global,
     * resolved at load) from its first request on; the global ones before. */
    uint64_t idle_ms = hx->route != NULL ? hx->route->timeouts.idle_ms : t->idle_ms;
    switch (k) {
    case DL_IDLE:
        return c->traffic.active_ms + idle_ms;
    case DL_HEADER:
        /* The first request's head is due from the handshake on. */
        return (hx->rq == RQ_HEAD ? hx->started_ms : c->traffic.active_ms) + t->request_header_ms;
    case DL_RESPONSE:
        return hx->sent_ms + (hx->route != NULL ? hx->route->timeouts.response_ms : t->response_ms);
    case DL_LINGER:
        return hx->linger_until_ms;
    case DL_ACTIVITY:
        break;
    }
    return c->traffic.active_ms + idle_ms;
}

static uint64_t hx_timeout_ms(const tf_conn_t *c)
{
    uint64_t at = deadline_at(c, deadline_kind(c->hx)), now = now_ms(c);
    return at > now ? at - now : 0;
}

static void hx_on_timer(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    deadline_t k = deadline_kind(hx);
    if (deadline_at(c, k) > now_ms(c)) {
        tf_conn_arm_timer(c);
        return;
    }
    switch (k) {
    case DL_IDLE:
        tf_conn_close_politely(c, TF_LOG_INFO, "keep-alive timeout");
        return;
    case DL_HEADER:
        if (hx->rq == RQ_IDLE && hx->requests == 0 && hx->in.len == 0) {
            /* Connected, shook hands, never asked: nothing to answer. */
            tf_conn_close_politely(c, TF_LOG_INFO, "no request");
            return;
        }
        tf_hx__send_error(c, 408);
        return;
    case DL_RESPONSE:
        TF_CONN_LOG(TF_LOG_WARN, c, "backend did not answer within timeouts.response");
        tf_conn_backend_done(c, 0);
        tf_hx__send_error(c, 504);
        return;
    case DL_LINGER:
        tf_conn_close(c, TF_LOG_INFO, "done");
        return;
    case DL_ACTIVITY:
        /* A request body that stopped arriving is the client's doing, one
         * that the backend stopped reading is not. */
        if (!hx->responded && hx->rq == RQ_BODY &&
            !(c->backend != NULL && c->backend->ops->pending(c->backend) >= TF_PUMP_HIGH_WATER))
            tf_hx__send_error(c, 408);
        else if (hx->rs == RS_BODY && !hx->closing)
            tf_hx__cut(c, "timeout"); /* a response that stopped arriving */
        else
            tf_conn_close_politely(c, TF_LOG_INFO, "idle timeout");
        return;
    }
}

static void hx_drain(tf_conn_t *c)
{
    tf_hx_t *hx = c->hx;
    if (hx->rq == RQ_IDLE && hx->rs == RS_NONE && hx->in.len == 0) {
        tf_conn_close_politely(c, TF_LOG_INFO, "shutting down");
        return;
    }
    hx->client_keep = false;
    hx->close_after = true;
}

/* A close-delimited body ends where the connection does: a close_notify
 * in the middle of one would make what was relayed look complete. */
static bool hx_goodbye_ok(const tf_conn_t *c)
{
    const tf_hx_t *hx = c->hx;
    return !hx->cutting && !(hx->rs == RS_BODY && hx->resp_close);
}

const tf_conn_mode_t tf_hx__mode = {
    .timeout_ms = hx_timeout_ms,
    .on_timer = hx_on_timer,
    .drain = hx_drain,
    .free = tf_hx__free,
    .goodbye_ok = hx_goodbye_ok,
};
