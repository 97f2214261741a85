/* See log.h. One line = "TIME LEVEL [conn N PEER SNI] message\n", at most
 * LINE_MAX_BYTES (longer messages are cut, the newline kept). */
#include "proxy/obs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048

_Atomic int tf_log__level = TF_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void tf_log_set_level(tf_log_level_t level)
{
    atomic_store_explicit(&tf_log__level, (int)level, memory_order_relaxed);
}

typedef struct {
    char buf[LINE_MAX_BYTES];
    size_t len;
} line_t;

/* Appends a string verbatim (never interpreted as a format). */
static void put(line_t *l, const char *s)
{
    size_t room = sizeof l->buf - 1 - l->len;
    size_t n = strlen(s);
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Appends data from the network (an SNI is raw bytes) with every byte
 * outside printable ASCII, and the backslash, written as \xNN: a line
 * stays one line. */
static void put_escaped(line_t *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s != '\0' && l->len + 4 < sizeof l->buf - 1; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            l->buf[l->len++] = (char)ch;
            continue;
        }
        l->buf[l->len++] = '\\';
        l->buf[l->len++] = 'x';
        l->buf[l->len++] = hex[ch >> 4];
        l->buf[l->len++] = hex[ch & 15];
    }
}

static void put_head(line_t *l, tf_log_level_t level)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    l->len = strftime(l->buf, sizeof l->buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char frac[32];
    snprintf(frac, sizeof frac, ".%03ldZ ", (long)(ts.tv_nsec / 1000000));
    put(l, frac);
    put(l, level_names[level]);
    put(l, " ");
}

__attribute__((format(printf, 2, 0))) static void put_message(line_t *l, const char *fmt,
                                                              va_list ap)
{
    size_t room = sizeof l->buf - 1 - l->len;
    int n = vsnprintf(l->buf + l->len, room + 1, fmt, ap);
    if (n > 0)
        l->len += (size_t)n < room ? (size_t)n : room;
    l->buf[l->len++] = '\n';
}

static void emit(const line_t *l)
{
    /* Best effort: nothing sensible to do when stderr is gone. */
    ssize_t rc = write(STDERR_FILENO, l->buf, l->len);
    (void)rc;
}

void tf_log_write(tf_log_level_t level, const char *fmt, ...)
{
    line_t l;
    put_head(&l, level);
    va_list ap;
    va_start(ap, fmt);
    put_message(&l, fmt, ap);
    va_end(ap);
    emit(&l);
}

void tf_log_conn_write(tf_log_level_t level, const tf_log_conn_t *conn, const char *fmt, ...)
{
    line_t l;
    char id[32];
    put_head(&l, level);
    snprintf(id, sizeof id, "[conn %llu ", (unsigned long long)conn->id);
    put(&l, id);
    put(&l, conn->peer ? conn->peer : "-");
    put(&l, " ");
    put_escaped(&l, conn->sni ? conn->sni : "-");
    put(&l, "] ");
    va_list ap;
    va_start(ap, fmt);
    put_message(&l, fmt, ap);
    va_end(ap);
    emit(&l);
}
