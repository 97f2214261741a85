/* proxy/ data pump (internal): a tunnel that moves plaintext both ways
 * between two streams, never knowing which one is TLS nor who owns them. It
 * is the sink of both streams while it runs (mode tcp from the backend's
 * connect on, mode http after a 101); it knows nothing of connections, so
 * it is tested on a stream pair alone.
 *
 * Backpressure lives in tf_pump_balance(), called after every read, write
 * completion and state change: a side stops being read when the other
 * side's pending bytes pass TF_PUMP_HIGH_WATER and is read again below
 * TF_PUMP_LOW_WATER; past TF_PUMP_HARD_CAP (a peer that never drains while
 * bytes keep arriving, e.g. already buffered TLS records) the tunnel gives
 * up. Streams write one buffer at a time.
 */
#ifndef TF_PROXY_PUMP_H
#define TF_PROXY_PUMP_H

/* Internal to proxy/net (and its tests): other libraries include
 * proxy/net/net.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include "proxy/obs/obs.h"
#include "proxy/net/stream.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define TF_PUMP_HIGH_WATER (256u * 1024u)
#define TF_PUMP_LOW_WATER (64u * 1024u)
#define TF_PUMP_HARD_CAP (4u * 1024u * 1024u)

/* What moved on a connection, kept by its owner and updated by whoever
 * relays its bytes (the pump, an HTTP exchange). */
typedef struct {
    uint64_t up;        /* plaintext client → backend */
    uint64_t down;      /* plaintext backend → client */
    uint64_t active_ms; /* uv_now() when bytes last moved */
} tf_traffic_t;

typedef enum {
    TF_FLOW_OPEN,   /* source read, destination written */
    TF_FLOW_ENDING, /* source ended: destination is shut once its queue drains */
    TF_FLOW_ENDED,  /* destination's write side shut (FIN or close_notify sent) */
} tf_flow_t;

typedef struct tf_pump tf_pump_t;

/* How a tunnel ends, told to its owner, who then closes both streams. */
typedef struct {
    /* Both directions ended ("done"), or the pump gave up on a peer
     * ("peer does not read", "cannot read"); `reason` is static. */
    void (*close)(tf_pump_t *p, tf_log_level_t level, const char *reason);
    /* A stream failed: err is a UV_* or TF_* code, `what` static. */
    void (*fail)(tf_pump_t *p, int err, const char *what);
    /* One side ended its output (`client`: the client's), which is passed
     * on: for the owner's log. */
    void (*ended)(tf_pump_t *p, bool client);
} tf_pump_owner_t;

/* Embedded by its owner; every member is the pump's once started. */
struct tf_pump {
    tf_stream_t *client, *backend; /* borrowed: the owner closes them */
    tf_traffic_t *traffic;         /* the owner's, updated per read and write */
    uv_loop_t *loop;
    const tf_pump_owner_t *owner_ops;
    void *owner;
    uint8_t up, down; /* tf_flow_t: up = client → backend, down = back */
};

/* Makes the pump the sink of both streams and starts moving bytes. The
 * backend is connected (writable); `client_ended`: the client already
 * ended its output, which is passed on. What the owner had queued on either
 * stream goes first. */
void tf_pump_start(tf_pump_t *p, uv_loop_t *loop, tf_stream_t *client, tf_stream_t *backend,
                   bool client_ended, tf_traffic_t *traffic, const tf_pump_owner_t *owner_ops,
                   void *owner);

/* Reading and ending decisions for the tunnel's current state. */
void tf_pump_balance(tf_pump_t *p);

#endif
