/* proxy/ HTTP exchanges (internal): mode http on a client connection
 * (SPEC §7). One request at a time is relayed to a backend connection and
 * its response back; pipelined requests wait in order, in the connection's
 * input buffer, until the response before them is complete.
 *
 * Per exchange, the request side moves IDLE → HEAD → BODY → DONE and the
 * response side NONE → WAIT → BODY → DONE:
 *   IDLE   keep-alive: nothing of the next request yet (timeouts.idle)
 *   HEAD   its head is arriving (timeouts.request_header from the first
 *          byte: 408)
 *   BODY   the head went to the backend, the body follows as it arrives
 *   WAIT   the request is sent, the response head is awaited
 *          (timeouts.response: 504)
 * Bodies stream with backpressure and their inactivity is limited by
 * timeouts.idle, never their total duration. A 101 turns the connection
 * into a tunnel (pump.c, timeouts.tunnel). Errors before any byte of a
 * response reached the client are answered (400, 404, 408, 421, 431, 502,
 * 503, 504) with Connection: close; after that the connection is closed.
 * The backend connection goes back to the worker's pool after a complete
 * response that leaves it reusable.
 */
#ifndef TF_PROXY_EXCHANGE_H
#define TF_PROXY_EXCHANGE_H

#include "proxy/conn.h"

#include <stdbool.h>
#include <stdint.h>

/* Starts mode http on a connection whose handshake completed. 0 or a
 * negative code (out of memory). */
int tf_hx_start(tf_conn_t *c);
void tf_hx_free(tf_hx_t *hx);

/* The pump's events while the exchange owns the connection. */
void tf_hx_on_data(tf_stream_t *src, const char *data, size_t len);
void tf_hx_on_eof(tf_stream_t *src);
void tf_hx_on_written(tf_stream_t *dst);
void tf_hx_on_shut(tf_stream_t *dst);
void tf_hx_balance(tf_conn_t *c);

/* c->backend is connected (reused: it came from the pool). */
void tf_hx_on_backend_ready(tf_conn_t *c, bool reused);
/* Whether a pooled backend connection may serve the request (not after a
 * pooled one failed it). */
bool tf_hx_pool_allowed(const tf_conn_t *c);
/* Every backend of the tenant failed to connect. */
void tf_hx_on_backend_failed(tf_conn_t *c);
/* No backend connection could be opened for want of descriptors or memory
 * here: 503, the backends are not to blame. */
void tf_hx_on_local_error(tf_conn_t *c);
/* The backend stream failed (read or write error). */
void tf_hx_on_backend_error(tf_conn_t *c, int err);

/* Milliseconds until the exchange's current deadline, and what happens
 * when it passes. */
uint64_t tf_hx_timeout_ms(const tf_conn_t *c);
void tf_hx_on_timer(tf_conn_t *c);

/* The worker drains: close when idle, else after the current response. */
void tf_hx_drain(tf_conn_t *c);

#endif
