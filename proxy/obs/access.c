/* The access log: pure line formatting and a lock-free appender. See
 * access.h for the formats. */
#include "proxy/obs/access.h"

#include "common/err.h"
#include "common/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- a bounded output buffer ------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool truncated; /* some field was cut */
} out_t;

/* Every field has a budget and their sum stays under TF_ACCESS_MAX_LINE,
 * so the clamp here never cuts in practice; it keeps a future field that
 * forgot its budget from writing past the buffer. */
static void put(out_t *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        n = o->cap - o->len;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(out_t *o, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    put(o, num, (size_t)n);
}

/* ---- escaping --------------------------------------------------------------------- */

/* Characters that some viewers take as line breaks although they are
 * valid UTF-8: C1 controls (NEL is U+0085) and U+2028/U+2029. */
static bool text_breaks(const unsigned char *s, size_t len)
{
    return (len == 2 && s[0] == 0xc2 && s[1] < 0xa0) ||
           (len == 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9));
}

static const char hex[] = "0123456789abcdef";

/* Escapes the character at s (at most n bytes) into esc; returns how many
 * input bytes it took and sets *esc_len. */
static size_t esc_text(const unsigned char *s, size_t n, char *esc, size_t *esc_len)
{
    size_t len = s[0] < 0x80 ? 1 : tf_utf8_len(s, n);
    bool plain = len > 1 ? !text_breaks(s, len)
                         : (len == 1 && s[0] > 0x20 && s[0] != 0x7f && s[0] != '"' && s[0] != '\\');
    if (len == 0)
        len = 1;
    if (plain) {
        memcpy(esc, s, len);
        *esc_len = len;
        return len;
    }
    for (size_t i = 0; i < len; i++) {
        char *e = esc + 4 * i;
        e[0] = '\\';
        e[1] = 'x';
        e[2] = hex[s[i] >> 4];
        e[3] = hex[s[i] & 15];
    }
    *esc_len = 4 * len;
    return len;
}

/* The product's one hand-written JSON string escaper; everything else
 * that writes JSON (the admin API, `tlsfront cert --json`) goes through
 * jansson. Not here: a line is written per request, and building it with
 * json_pack() and json_dumpb() takes 37 mallocs and about four times as
 * long per line (measured for issue 12 on a busy 2-core Xeon: 7 µs against
 * 1.8 µs for this code, a typical line); jansson can neither cut a value at
 * a character boundary within a byte budget nor take the values here, which
 * are not NUL-terminated. A byte that is not valid UTF-8 becomes \u00XX:
 * read back, the same string as proxy/ops/json.c's tf_json_text() makes of
 * it (tests/proxy/test_access.c checks both against jansson's reading). */
static size_t esc_json(const unsigned char *s, size_t n, char *esc, size_t *esc_len)
{
    unsigned char c = s[0];
    size_t len = c < 0x80 ? 1 : tf_utf8_len(s, n);
    if (c == '"' || c == '\\') {
        esc[0] = '\\';
        esc[1] = (char)c;
        *esc_len = 2;
    } else if (c == '\n') {
        memcpy(esc, "\\n", 2);
        *esc_len = 2;
    } else if (c < 0x20 || c == 0x7f || len == 0) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        *esc_len = 6;
        return 1;
    } else {
        memcpy(esc, s, len);
        *esc_len = len;
    }
    return len;
}

typedef size_t (*esc_fn)(const unsigned char *, size_t, char *, size_t *);

/* Appends s[0, n) escaped, at most budget output bytes; a longer value is
 * cut at a character boundary and marked. */
static void put_escaped(out_t *o, const char *s, size_t n, size_t budget, esc_fn esc,
                        const char *marker)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t used = 0;
    char e[16];
    while (n > 0) {
        size_t elen;
        size_t took = esc(p, n, e, &elen);
        if (used + elen > budget) {
            puts_(o, marker);
            o->truncated = true;
            return;
        }
        put(o, e, elen);
        used += elen;
        p += took;
        n -= took;
    }
}

/* ---- the two formats ---------------------------------------------------------------- */

static void put_time(out_t *o, int64_t ms)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    char t[40];
    gmtime_r(&sec, &tm);
    size_t n = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(t + n, sizeof t - n, ".%03dZ", (int)(ms % 1000));
    puts_(o, t);
}

/* A text value: "-" when missing, \x2d when it is literally "-". */
static void text_value(out_t *o, const char *s, size_t n, size_t budget)
{
    if (s == NULL || n == 0)
        puts_(o, "-");
    else if (n == 1 && s[0] == '-')
        puts_(o, "\\x2d");
    else
        put_escaped(o, s, n, budget, esc_text, "\\...");
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

/* The request's protocol as the log prints it (both formats). */
static const char *protocol(const tf_access_entry_t *e)
{
    if (e->http2)
        return "HTTP/2";
    return e->version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

static void text_request(out_t *o, const tf_access_entry_t *e)
{
    put(o, "\"", 1);
    if (e->method_len == 0 && e->path_len == 0) {
        put(o, "-\"", 2);
        return;
    }
    text_value(o, e->method, e->method_len, TF_ACCESS_MAX_SHORT);
    put(o, " ", 1);
    text_value(o, e->path, e->path_len, TF_ACCESS_MAX_PATH);
    put(o, " ", 1);
    puts_(o, protocol(e));
    put(o, "\"", 1);
}

static void format_text(out_t *o, const tf_access_entry_t *e)
{
    put_time(o, e->time_ms);
    put(o, " ", 1);
    text_value(o, e->client, slen(e->client), TF_ACCESS_MAX_SHORT);
    puts_(o, " sni=");
    text_value(o, e->sni, slen(e->sni), TF_ACCESS_MAX_SNI);
    puts_(o, " tenant=");
    text_value(o, e->tenant, slen(e->tenant), TF_ACCESS_MAX_SHORT);
    put(o, " ", 1);
    text_request(o, e);
    put(o, " ", 1);
    if (e->status > 0)
        put_u64(o, (uint64_t)e->status);
    else
        put(o, "-", 1);
    puts_(o, " in=");
    put_u64(o, e->bytes_in);
    puts_(o, " out=");
    put_u64(o, e->bytes_out);
    puts_(o, " ms=");
    put_u64(o, e->duration_ms);
    puts_(o, " backend=");
    text_value(o, e->backend, slen(e->backend), TF_ACCESS_MAX_BACKEND);
    if (e->route != NULL) {
        puts_(o, " route=");
        text_value(o, e->route, strlen(e->route), TF_ACCESS_MAX_PATH);
    }
    if (e->cut != NULL) {
        puts_(o, " cut=");
        text_value(o, e->cut, strlen(e->cut), TF_ACCESS_MAX_SHORT);
    }
}

/* ,"key":"value" or ,"key":null */
static void json_str(out_t *o, const char *key, const char *s, size_t n, size_t budget)
{
    puts_(o, key);
    if (s == NULL || n == 0) {
        puts_(o, "null");
        return;
    }
    put(o, "\"", 1);
    put_escaped(o, s, n, budget, esc_json, "...");
    put(o, "\"", 1);
}

static void json_u64(out_t *o, const char *key, uint64_t v)
{
    puts_(o, key);
    put_u64(o, v);
}

static void format_json(out_t *o, const tf_access_entry_t *e)
{
    puts_(o, "{\"time\":\"");
    put_time(o, e->time_ms);
    put(o, "\"", 1);
    json_str(o, ",\"client\":", e->client, slen(e->client), TF_ACCESS_MAX_SHORT);
    json_str(o, ",\"sni\":", e->sni, slen(e->sni), TF_ACCESS_MAX_SNI);
    json_str(o, ",\"tenant\":", e->tenant, slen(e->tenant), TF_ACCESS_MAX_SHORT);
    json_str(o, ",\"method\":", e->method, e->method_len, TF_ACCESS_MAX_SHORT);
    json_str(o, ",\"path\":", e->path, e->path_len, TF_ACCESS_MAX_PATH);
    bool http = e->method_len > 0 || e->path_len > 0;
    puts_(o, ",\"version\":");
    if (http) {
        put(o, "\"", 1);
        puts_(o, protocol(e));
        put(o, "\"", 1);
    } else {
        puts_(o, "null");
    }
    if (e->status > 0)
        json_u64(o, ",\"status\":", (uint64_t)e->status);
    else
        puts_(o, ",\"status\":null");
    json_u64(o, ",\"bytes_in\":", e->bytes_in);
    json_u64(o, ",\"bytes_out\":", e->bytes_out);
    json_u64(o, ",\"duration_ms\":", e->duration_ms);
    json_str(o, ",\"backend\":", e->backend, slen(e->backend), TF_ACCESS_MAX_BACKEND);
    if (e->route != NULL)
        json_str(o, ",\"route\":", e->route, strlen(e->route), TF_ACCESS_MAX_PATH);
    if (e->cut != NULL)
        json_str(o, ",\"cut\":", e->cut, strlen(e->cut), TF_ACCESS_MAX_SHORT);
    if (o->truncated)
        puts_(o, ",\"truncated\":true");
    put(o, "}", 1);
}

size_t tf_access_format(const tf_access_entry_t *e, tf_conf_log_format_t format, char *out,
                        size_t outlen)
{
    if (outlen < TF_ACCESS_MAX_LINE)
        return 0;
    /* One byte kept for the newline, whatever happens. */
    out_t o = {.buf = out, .cap = TF_ACCESS_MAX_LINE - 1};
    if (format == TF_CONF_LOG_JSON)
        format_json(&o, e);
    else
        format_text(&o, e);
    out[o.len++] = '\n';
    return o.len;
}

/* ---- the writer --------------------------------------------------------------------- */

struct tf_access_log {
    int fd; /* -1: off; never changes, reopen swaps the file behind it */
    bool owned;
    tf_conf_log_format_t format;
    char *path;
    _Atomic uint64_t dropped;
};

static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    return fd < 0 ? -errno : fd;
}

int tf_access_open(const tf_conf_log_t *conf, tf_access_log_t **out, char *err, size_t errlen)
{
    tf_access_log_t *log = calloc(1, sizeof *log);
    if (log == NULL)
        return TF_ENOMEM;
    log->format = conf->format;
    log->fd = conf->access == TF_CONF_ACCESS_STDOUT ? STDOUT_FILENO : -1;
    if (conf->access == TF_CONF_ACCESS_FILE) {
        log->path = strdup(conf->access_path);
        int fd = log->path ? open_file(log->path) : TF_ENOMEM;
        if (fd < 0) {
            snprintf(err, errlen, "%s: cannot open: %s; check log.access and its directory",
                     conf->access_path, tf_strerror(fd));
            free(log->path);
            free(log);
            return fd;
        }
        log->fd = fd;
        log->owned = true;
    }
    *out = log;
    return 0;
}

bool tf_access_enabled(const tf_access_log_t *log)
{
    return log != NULL && log->fd >= 0;
}

void tf_access_write(tf_access_log_t *log, const tf_access_entry_t *e)
{
    if (!tf_access_enabled(log))
        return;
    char line[TF_ACCESS_MAX_LINE];
    size_t len = tf_access_format(e, log->format, line, sizeof line);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(log->fd, line + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            atomic_fetch_add_explicit(&log->dropped, 1, memory_order_relaxed);
            return;
        }
        off += (size_t)n;
    }
}

uint64_t tf_access_dropped(const tf_access_log_t *log)
{
    return atomic_load_explicit(&log->dropped, memory_order_relaxed);
}

int tf_access_reopen(tf_access_log_t *log)
{
    if (log == NULL || !log->owned)
        return 0;
    int fd = open_file(log->path);
    if (fd < 0)
        return fd;
    int rc = dup2(fd, log->fd) < 0 ? -errno : 0;
    /* dup2 clears close-on-exec on the target; put it back. */
    if (rc == 0)
        fcntl(log->fd, F_SETFD, FD_CLOEXEC);
    close(fd);
    return rc;
}

void tf_access_free(tf_access_log_t *log)
{
    if (log == NULL)
        return;
    if (log->owned)
        close(log->fd);
    free(log->path);
    free(log);
}
