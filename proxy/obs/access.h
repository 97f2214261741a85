/* proxy/ access log (SPEC §9): one line per request — time, client address,
 * SNI, tenant, method, path, status, bytes in/out, duration, backend — in
 * `text` or `json` (log.format), to log.access (stdout | off | a file).
 *
 * Formatting is pure (tf_access_format): unit-tested and fuzzed. Every
 * field a client controls (SNI, method, path) and every other string is
 * escaped, so a line can be neither split nor forged:
 *   text  bytes below 0x21, DEL, '"', '\\', C1 controls, U+2028/U+2029 and
 *         bytes that are not valid UTF-8 become \xHH; a value that is
 *         exactly "-" becomes \x2d (a bare "-" means "none").
 *   json  RFC 8259 strings; a byte that is not valid UTF-8 (common/utf8.h)
 *         becomes \u00XX, which reads back as the string the admin API's
 *         JSON (proxy/ops/json.c, jansson) shows for it; missing values are
 *         null.
 * Each field has an output budget; a longer value is cut at a character
 * boundary and marked: text ends it with `\...` (a raw backslash never
 * appears otherwise), json ends it with "..." and adds "truncated":true.
 * A whole line never exceeds TF_ACCESS_MAX_LINE (PIPE_BUF on Linux), so
 * that one write(2) to a pipe is atomic.
 *
 * Text, one line (fields separated by one space, never containing one):
 *   TIME CLIENT sni=SNI tenant=TENANT "METHOD PATH PROTOCOL" STATUS in=N out=N ms=N backend=ADDR
 * (PROTOCOL: HTTP/1.0, HTTP/1.1, or HTTP/2 for a request on an HTTP/2 stream)
 * then, only when the tenant has path routes (SPEC §11), route=PREFIX (the
 * route that served the request, "/" for the tenant's own), and, only for a
 * response cut short, one more field: cut=REASON
 * e.g.
 *   2026-11-25T06:01:02.123Z 192.0.2.7 sni=portal.acme.example tenant=acme "GET /x HTTP/1.1" 200
 *   in=123 out=456 ms=7 backend=10.0.0.5:8080          (one line in the file)
 * with "-" for a missing value and `"-"` for a connection without an HTTP
 * request (mode: tcp).
 * JSON, one object per line, keys in this order:
 *   {"time":..,"client":..,"sni":..,"tenant":..,"method":..,"path":..,
 *    "version":"HTTP/1.1" (or "HTTP/1.0", "HTTP/2"),"status":200,"bytes_in":..,"bytes_out":..,
 *    "duration_ms":..,"backend":..}
 * then "route":PREFIX when the tenant has path routes, and, only for a
 * response cut short, "cut":"REASON".
 */
#ifndef TF_PROXY_ACCESS_H
#define TF_PROXY_ACCESS_H

/* Internal to proxy/obs (and its tests): other libraries include
 * proxy/obs/obs.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 1 && !defined(TF_PROXY_OBS_PUBLIC)
#error "internal to proxy/obs: include proxy/obs/obs.h"
#endif

#include "conf/conf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest line tf_access_format() writes, newline included. */
#define TF_ACCESS_MAX_LINE 4096

/* Output budgets per field (escaped bytes, before the marker). */
#define TF_ACCESS_MAX_PATH 2048
#define TF_ACCESS_MAX_SNI 300
#define TF_ACCESS_MAX_SHORT 100 /* client, tenant, method */
#define TF_ACCESS_MAX_BACKEND 300

/* One request. Strings are only read during the call. NULL (or a zero
 * length for method and path) means "none". */
typedef struct {
    int64_t time_ms;    /* when the request arrived, ms since the Unix epoch (UTC) */
    const char *client; /* "192.0.2.7" or "2001:db8::7" */
    const char *sni;    /* as the client sent it: raw bytes */
    const char *tenant; /* tenant name */
    const char *method; /* from the request head, not NUL-terminated */
    size_t method_len;
    const char *path; /* the request target as sent, not NUL-terminated */
    size_t path_len;
    unsigned version_minor; /* HTTP/1.0 or HTTP/1.1 */
    bool http2;             /* the request came on an HTTP/2 stream ("HTTP/2";
                               version_minor is then ignored) */
    int status;             /* 0: none (a tcp connection) */
    uint64_t bytes_in;      /* from the client */
    uint64_t bytes_out;     /* to the client */
    uint64_t duration_ms;
    const char *backend; /* "10.0.0.5:8080" */
    const char *route;   /* the route's prefix ("/api/") when the tenant has path
                            routes, NULL otherwise */
    const char *cut;     /* the response was cut short, and why (a slug such as
                            "backend_closed"); NULL: complete */
} tf_access_entry_t;

/* Writes one line, '\n' included, into out (outlen >= TF_ACCESS_MAX_LINE)
 * and returns its length; no NUL is added. Returns 0 when outlen is too
 * small. */
size_t tf_access_format(const tf_access_entry_t *e, tf_conf_log_format_t format, char *out,
                        size_t outlen);

/* ---- the writer ------------------------------------------------------------- */

typedef struct tf_access_log tf_access_log_t;

/* Opens log.access: stdout, off (lines are dropped, nothing is formatted)
 * or a file (O_WRONLY|O_APPEND|O_CREAT, mode 0640). The format is fixed
 * for the object's life: a reload that changes log.* opens a new one and
 * swaps pointers. Returns 0 with *out set (free with tf_access_free), or
 * -errno / TF_ENOMEM with "PATH: cannot open: reason; what to do" in err. */
int tf_access_open(const tf_conf_log_t *conf, tf_access_log_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Whether lines are written at all (false for off): callers can skip
 * gathering an entry. */
bool tf_access_enabled(const tf_access_log_t *log);

/* Formats and appends one line with a single write(2). Any thread, without
 * a lock: O_APPEND makes each line land whole at the end of the file, and a
 * line under PIPE_BUF is atomic on a pipe. A failed write drops the line
 * and counts it (a full disk must not stop the proxy). */
void tf_access_write(tf_access_log_t *log, const tf_access_entry_t *e);

/* Lines dropped so far because a write failed. */
uint64_t tf_access_dropped(const tf_access_log_t *log);

/* SIGUSR1, after logrotate moved the file: opens the path again and puts
 * the new file behind the same descriptor (dup2, atomic), so writers on
 * other threads never see a closed descriptor. Nothing to do for stdout or
 * off. Returns 0 or -errno (the old file stays in use). Any thread. */
int tf_access_reopen(tf_access_log_t *log) __attribute__((warn_unused_result));

/* Closes the file (never stdout). No writer may be running. NULL is ignored. */
void tf_access_free(tf_access_log_t *log);

#endif
