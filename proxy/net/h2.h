/* proxy/ HTTP/2 to clients (SPEC §12), internal to proxy/net.
 *
 * A connection whose TLS handshake selected ALPN "h2" runs an HTTP/2
 * session instead of the HTTP/1.1 exchange: libnghttp2 frames and
 * compresses through memory buffers on the connection's own loop (the
 * session is the TLS stream's sink and the connection's mode, conn.h).
 *
 * Each stream that carries a request becomes a child connection
 * (tf_conn_init_child) whose client stream is one HTTP/2 stream
 * (tf_stream_h2_ops): the HTTP/1.1 exchange runs on it unchanged. It reads
 * the request as HTTP/1.1 text built by tf_h2_request_head() and writes an
 * HTTP/1.1 response, which the stream reads back into HEADERS, DATA and
 * trailers. Routing, 421, forwarding, policy, balancing, pooling, retries,
 * error answers, timeouts and the access log thus have one implementation
 * for both protocols; what is HTTP/2's own lives here: flow control, stream
 * limits, the attack budgets, GOAWAY.
 *
 * Flow control follows the exchange's backpressure: request DATA is handed
 * on only while the exchange reads, and the stream's window reopens only
 * for what was handed on; response bytes wait in the stream until
 * nghttp2 sends them within the client's windows, and the exchange stops
 * reading its backend while they pile up (pending()). A slow stream stalls
 * only itself.
 *
 * Frames queued by any stream leave in one TLS write per loop round
 * (tf_worker_defer).
 */
#ifndef TF_PROXY_H2_H
#define TF_PROXY_H2_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "proxy/net/conn.h"

/* Starts HTTP/2 on a connection whose handshake selected h2: the session
 * becomes the client stream's sink and the connection's mode, and sends its
 * SETTINGS. 0 or a negative code (out of memory). */
int tf_h2_start(tf_conn_t *c);

/* One HTTP/2 stream as a client stream for the exchange and the pump. */
extern const tf_stream_ops_t tf_stream_h2_ops;

#endif
