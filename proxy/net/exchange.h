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
 * into a tunnel (the pump, timeouts.tunnel): the streams' sinks are swapped
 * from the exchange's to the pump's. Errors before any byte of a
 * response reached the client are answered (400, 404, 408, 421, 431, 502,
 * 503, 504) with Connection: close; after that the connection is closed.
 * The backend connection goes back to the worker's pool after a complete
 * response that leaves it reusable.
 */
#ifndef TF_PROXY_EXCHANGE_H
#define TF_PROXY_EXCHANGE_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "proxy/net/conn.h"

#include <stdbool.h>
#include <stdint.h>

/* Starts mode http on a connection whose handshake completed: the
 * exchange becomes the client stream's sink and the connection's mode
 * (conn.h). 0 or a negative code (out of memory). */
int tf_hx_start(tf_conn_t *c);

#endif
