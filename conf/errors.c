/* Error collection for the loader: every problem is recorded with its
 * position, the earliest TF_CONF_MAX_ERRORS are kept, and they are written
 * sorted by position so the first line is always the earliest problem. */
#include "conf/conf_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 600

static bool before(unsigned l1, unsigned c1, unsigned l2, unsigned c2)
{
    return l1 < l2 || (l1 == l2 && c1 < c2);
}

/* Messages quote what the file says; a newline or control byte in a quoted
 * value must not break the one-error-per-line format. */
static void sanitize(char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
    }
}

/* The slot a new error at (line, col) goes into, or NULL to drop it. */
static tf_conf__err_t *slot_for(tf_conf__ctx_t *ctx, unsigned line, unsigned col)
{
    if (ctx->nerr < TF_CONF_MAX_ERRORS)
        return &ctx->errs[ctx->nerr++];
    ctx->dropped++;
    tf_conf__err_t *last = &ctx->errs[0];
    for (size_t i = 1; i < ctx->nerr; i++) {
        if (before(last->line, last->column, ctx->errs[i].line, ctx->errs[i].column))
            last = &ctx->errs[i];
    }
    if (!before(line, col, last->line, last->column))
        return NULL;
    free(last->msg);
    last->msg = NULL;
    return last;
}

/* The message as the operator reads it: formatted, made printable. */
__attribute__((format(printf, 2, 0))) static void format_msg(char buf[MSG_MAX], const char *fmt,
                                                             va_list ap)
{
    vsnprintf(buf, MSG_MAX, fmt, ap);
    sanitize(buf);
}

void tf_conf__error(tf_conf__ctx_t *ctx, yaml_mark_t mark, const char *fmt, ...)
{
    char buf[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    format_msg(buf, fmt, ap);
    va_end(ap);

    unsigned line = (unsigned)mark.line, col = (unsigned)mark.column;
    tf_conf__err_t *e = slot_for(ctx, line, col);
    if (e == NULL)
        return;
    e->line = line;
    e->column = col;
    e->seq = ctx->seq++;
    e->msg = strdup(buf);
    if (e->msg == NULL)
        ctx->nomem = true;
}

void tf_conf__warn(tf_conf__ctx_t *ctx, yaml_mark_t mark, const char *fmt, ...)
{
    char buf[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    format_msg(buf, fmt, ap);
    va_end(ap);
    tf_conf_t *c = ctx->conf;
    struct tf_conf__warning *w = tf_conf__alloc(&c->arena, sizeof *w);
    size_t n = strlen(ctx->name) + strlen(buf) + 48;
    char *msg = w != NULL ? tf_conf__alloc(&c->arena, n) : NULL;
    if (msg == NULL) {
        ctx->nomem = true;
        return;
    }
    snprintf(msg, n, "%s:%u:%u: %s", ctx->name, (unsigned)mark.line + 1, (unsigned)mark.column + 1,
             buf);
    w->msg = msg;
    if (c->last_warning != NULL)
        c->last_warning->next = w;
    else
        c->warnings = w;
    c->last_warning = w;
    c->nwarnings++;
}

static int cmp_err(const void *a, const void *b)
{
    const tf_conf__err_t *x = a, *y = b;
    if (before(x->line, x->column, y->line, y->column))
        return -1;
    if (before(y->line, y->column, x->line, x->column))
        return 1;
    /* Same position: keep the order found, which qsort does not promise. */
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Appends LINE to ERR unless it does not fit whole. */
static bool append(char *err, size_t errlen, size_t *used, const char *line)
{
    size_t n = strlen(line);
    if (*used + n + 1 > errlen)
        return false;
    memcpy(err + *used, line, n + 1);
    *used += n;
    return true;
}

void tf_conf__errors_format(tf_conf__ctx_t *ctx, char *err, size_t errlen)
{
    if (errlen == 0)
        return;
    err[0] = '\0';
    qsort(ctx->errs, ctx->nerr, sizeof ctx->errs[0], cmp_err);
    size_t used = 0;
    char line[MSG_MAX + 1200];
    for (size_t i = 0; i < ctx->nerr; i++) {
        const tf_conf__err_t *e = &ctx->errs[i];
        snprintf(line, sizeof line, "%.1024s:%u:%u: %s\n", ctx->name, e->line + 1, e->column + 1,
                 e->msg ? e->msg : "(out of memory)");
        if (!append(err, errlen, &used, line))
            return;
    }
    if (ctx->dropped > 0) {
        snprintf(line, sizeof line,
                 "%.1024s: %zu more errors not shown; fix the ones above first\n", ctx->name,
                 ctx->dropped);
        append(err, errlen, &used, line);
    }
}

void tf_conf__errors_free(tf_conf__ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->nerr; i++)
        free(ctx->errs[i].msg);
    ctx->nerr = 0;
}

const char *tf_conf__node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return tf_conf__is_null(n) ? "null" : "a single value";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

bool tf_conf__is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (len == 0)
        return true;
    static const char *const nulls[] = {"null", "Null", "NULL", "~"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
        if (len == strlen(nulls[i]) && memcmp(v, nulls[i], len) == 0)
            return true;
    }
    return false;
}
