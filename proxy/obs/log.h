/* proxy/ logging (SPEC §9): errors and events to stderr with a level.
 *
 * TF_LOG() and TF_CLOG() test the level first and do not evaluate their
 * arguments when it is disabled. A line is assembled in a stack buffer and
 * written with one write(2), so lines from several worker threads never
 * interleave. Connection lines carry a fixed prefix (connection id, peer,
 * SNI) written separately from the message: data such as a peer address or
 * an SNI is never spliced into a format string, and the SNI (raw bytes from
 * the client) is escaped so that a line stays one line.
 *
 * The level is process-wide: set once by `tlsfront run` before any thread
 * starts (and, with issue 6, on reload); reads are relaxed atomics.
 */
#ifndef TF_PROXY_LOG_H
#define TF_PROXY_LOG_H

/* Internal to proxy/obs (and its tests): other libraries include
 * proxy/obs/obs.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 1 && !defined(TF_PROXY_OBS_PUBLIC)
#error "internal to proxy/obs: include proxy/obs/obs.h"
#endif

#include <stdatomic.h>
#include <stdint.h>

typedef enum {
    TF_LOG_ERROR = 0,
    TF_LOG_WARN = 1,
    TF_LOG_INFO = 2,
    TF_LOG_DEBUG = 3,
} tf_log_level_t;

/* The fixed prefix of a connection's lines. `peer` and `sni` are plain
 * strings (NULL prints "-"); they are only read during the call. */
typedef struct {
    uint64_t id;
    const char *peer;
    const char *sni;
} tf_log_conn_t;

/* The one piece of mutable process state besides signal flags: written by
 * tf_log_set_level() only. */
extern _Atomic int tf_log__level;

void tf_log_set_level(tf_log_level_t level);

static inline int tf_log_enabled(tf_log_level_t level)
{
    return (int)level <= atomic_load_explicit(&tf_log__level, memory_order_relaxed);
}

void tf_log_write(tf_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tf_log_conn_write(tf_log_level_t level, const tf_log_conn_t *conn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TF_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if (tf_log_enabled(level))                                                                 \
            tf_log_write((level), __VA_ARGS__);                                                    \
    } while (0)

/* PREFIX is an expression yielding `const tf_log_conn_t *`; evaluated only
 * when the level is enabled. */
#define TF_CLOG(level, prefix, ...)                                                                \
    do {                                                                                           \
        if (tf_log_enabled(level))                                                                 \
            tf_log_conn_write((level), (prefix), __VA_ARGS__);                                     \
    } while (0)

#endif
