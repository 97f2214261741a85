/* proxy/ data pump (internal): moves plaintext between a connection's two
 * streams through their tf_stream_ops_t, never knowing which one is TLS.
 *
 * Backpressure lives in tf_pump_balance(), called after every read, write
 * completion and state change: a side stops being read when the other
 * side's pending bytes pass TF_PUMP_HIGH_WATER and is read again below
 * TF_PUMP_LOW_WATER; past TF_PUMP_HARD_CAP (a peer that never drains while
 * bytes keep arriving, e.g. already buffered TLS records) the connection is
 * closed. Streams write one buffer at a time.
 */
#ifndef TF_PROXY_PUMP_H
#define TF_PROXY_PUMP_H

#include "proxy/conn.h"

#define TF_PUMP_HIGH_WATER (256u * 1024u)
#define TF_PUMP_LOW_WATER (64u * 1024u)
#define TF_PUMP_HARD_CAP (4u * 1024u * 1024u)

/* Plaintext read from `src` (valid during the call only). */
void tf_pump_on_data(tf_stream_t *src, const char *data, size_t len);

/* `src` reached the end of its input (FIN, or the client's close_notify). */
void tf_pump_on_eof(tf_stream_t *src);

/* A write of `dst` completed. */
void tf_pump_on_written(tf_stream_t *dst);

/* `dst`'s write side is shut: FIN or close_notify sent. */
void tf_pump_on_shut(tf_stream_t *dst);

/* Starts the tunnel once the backend is connected. */
void tf_pump_start(tf_conn_t *c);

/* Reading and closing decisions for the connection's current state. */
void tf_pump_balance(tf_conn_t *c);

#endif
