/* Entry points: reading the file, running libyaml, the config's lifetime
 * (arena and reference count) and the accessors. */
#include "conf/conf_internal.h"

#include "common/err.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- arena ------------------------------------------------------------- */

#define CHUNK_MIN 16384

struct tf_conf__chunk {
    tf_conf__chunk_t *next;
    size_t used, cap;
    max_align_t data[];
};

static void *arena_get(tf_conf__arena_t *a, size_t size, size_t align)
{
    tf_conf__chunk_t *c = a->head;
    size_t at = c ? (c->used + align - 1) / align * align : 0;
    if (c == NULL || at + size > c->cap) {
        size_t cap = size > CHUNK_MIN ? size : CHUNK_MIN;
        c = calloc(1, sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
        at = 0;
    }
    c->used = at + size;
    return (char *)c->data + at;
}

void *tf_conf__alloc(tf_conf__arena_t *a, size_t size)
{
    return arena_get(a, size ? size : 1, _Alignof(max_align_t));
}

char *tf_conf__strndup(tf_conf__arena_t *a, const char *s, size_t len)
{
    char *d = arena_get(a, len + 1, 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

void tf_conf__arena_free(tf_conf__arena_t *a)
{
    while (a->head != NULL) {
        tf_conf__chunk_t *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ---- lifetime ---------------------------------------------------------- */

static tf_conf_t *conf_new(const char *name)
{
    tf_conf_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    atomic_init(&c->refs, 1);
    c->source = tf_conf__strndup(&c->arena, name, strlen(name));
    if (c->source == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

tf_conf_t *tf_conf_ref(tf_conf_t *c)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void tf_conf_unref(tf_conf_t *c)
{
    if (c == NULL)
        return;
    /* acq_rel: the last owner must see every other owner's reads finished. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    tf_conf__arena_free(&c->arena);
    free(c);
}

/* ---- loading ----------------------------------------------------------- */

/* libyaml reports reader errors (bad UTF-8, control characters) by byte
 * offset only; turn it into a line and column. */
static yaml_mark_t offset_mark(const char *data, size_t len, size_t off)
{
    yaml_mark_t m = {0};
    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n') {
            m.line++;
            m.column = 0;
        } else {
            m.column++;
        }
    }
    return m;
}

static void syntax_error(tf_conf__ctx_t *ctx, const yaml_parser_t *p, const char *data, size_t len)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_READER_ERROR) {
        tf_conf__error(ctx, offset_mark(data, len, p->problem_offset),
                       "YAML syntax error: %s (byte 0x%02x); the file must be UTF-8 text without "
                       "control characters",
                       problem, (unsigned)(p->problem_value & 0xff));
        return;
    }
    char context[160] = "";
    if (p->context != NULL)
        snprintf(context, sizeof context, " (%s at line %zu, column %zu)", p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    tf_conf__error(ctx, p->problem_mark,
                   "YAML syntax error: %s%s; check the indentation, quotes and brackets here",
                   problem, context);
}

/* Parses DATA and walks it; returns 0 or the code for what went wrong. */
static int parse_and_walk(tf_conf__ctx_t *ctx, const char *data, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    int rc = 0;
    if (!yaml_parser_initialize(&parser))
        return TF_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = parser.error == YAML_MEMORY_ERROR ? TF_ENOMEM : TF_EYAML;
        syntax_error(ctx, &parser, data, len);
        goto out;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        rc = parser.error == YAML_MEMORY_ERROR ? TF_ENOMEM : TF_EYAML;
        syntax_error(ctx, &parser, data, len);
        goto out_doc;
    }
    yaml_node_t *second = yaml_document_get_root_node(&extra);
    if (second != NULL)
        tf_conf__error(ctx, extra.start_mark,
                       "a second YAML document; the configuration is one document: remove "
                       "this '---' and what follows, or merge it into the first");
    yaml_document_delete(&extra);
    ctx->doc = &doc;
    tf_conf__load_document(ctx);
    ctx->doc = NULL;
out_doc:
    yaml_document_delete(&doc);
out:
    yaml_parser_delete(&parser);
    return rc;
}

/* Loads DATA; relative paths the file names (errors pages) are taken from
 * DIR, or the current directory when DIR is NULL. */
static int load_in(const char *name, const char *dir, const char *data, size_t len, tf_conf_t **out,
                   char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    tf_conf__ctx_t *ctx = calloc(1, sizeof *ctx);
    tf_conf_t *c = conf_new(name);
    int rc = TF_ENOMEM;
    if (ctx == NULL || c == NULL)
        goto out;
    ctx->name = name;
    ctx->dir = dir;
    ctx->conf = c;
    ctx->cur_tenant = TF_CONF__NO_TENANT;
    rc = parse_and_walk(ctx, data, len);
    if (ctx->nomem)
        rc = TF_ENOMEM;
    else if (rc == 0 && ctx->nerr > 0)
        rc = TF_ECONF;
    if (rc == TF_ENOMEM)
        snprintf(err, errlen, "%s: out of memory while loading the configuration\n", name);
    else
        tf_conf__errors_format(ctx, err, errlen);
    if (rc == 0) {
        *out = c;
        c = NULL;
    }
out:
    if (ctx != NULL) {
        tf_conf__errors_free(ctx);
        free(ctx->hosts);
    }
    free(ctx);
    tf_conf_unref(c);
    return rc;
}

int tf_conf_load_buffer(const char *name, const char *data, size_t len, tf_conf_t **out, char *err,
                        size_t errlen)
{
    return load_in(name, NULL, data, len, out, err, errlen);
}

/* Reads the whole file at PATH into *buf (malloc'd, caller frees). */
static int read_all(const char *path, char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 8192, n = 0;
    char *b = NULL;
    int rc = 0;
    for (;;) {
        if (n == cap || b == NULL) {
            cap = b == NULL ? cap : cap * 2;
            char *nb = realloc(b, cap);
            if (nb == NULL) {
                rc = TF_ENOMEM;
                break;
            }
            b = nb;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > TF_CONF_MAX_FILE_BYTES) {
            rc = TF_ETOOBIG;
            break;
        }
    }
    close(fd);
    if (rc != 0) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = n;
    return 0;
}

int tf_conf_load_file(const char *path, tf_conf_t **out, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    int rc = read_all(path, &data, &len);
    if (rc == TF_ETOOBIG) {
        snprintf(err, errlen,
                 "%s: larger than %u MiB, which no configuration needs; check the "
                 "path\n",
                 path, TF_CONF_MAX_FILE_BYTES >> 20);
    } else if (rc == TF_ENOMEM) {
        snprintf(err, errlen, "%s: out of memory while reading the configuration\n", path);
    } else if (rc < 0) {
        snprintf(err, errlen,
                 "%s: cannot read: %s; check that the file exists and is readable by this user, "
                 "or pass another one with -c FILE\n",
                 path, strerror(-rc));
    }
    if (rc != 0)
        return rc;
    /* "errors/503.html" beside tlsfront.yaml, wherever tlsfront runs from. */
    const char *slash = strrchr(path, '/');
    char *dir =
        slash == NULL ? strdup(".") : strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (dir == NULL) {
        free(data);
        snprintf(err, errlen, "%s: out of memory while reading the configuration\n", path);
        return TF_ENOMEM;
    }
    rc = load_in(path, dir, data, len, out, err, errlen);
    free(dir);
    free(data);
    return rc;
}

/* ---- accessors --------------------------------------------------------- */

const char *tf_conf_source(const tf_conf_t *c)
{
    return c->source;
}

unsigned tf_conf_workers(const tf_conf_t *c)
{
    return c->workers;
}

const char *tf_conf_user(const tf_conf_t *c)
{
    return c->user;
}

const tf_conf_log_t *tf_conf_log(const tf_conf_t *c)
{
    return &c->log;
}

const tf_conf_addr_list_t *tf_conf_listen_https(const tf_conf_t *c)
{
    return &c->listen_https;
}

const tf_conf_addr_list_t *tf_conf_listen_http(const tf_conf_t *c)
{
    return &c->listen_http;
}

const tf_conf_admin_t *tf_conf_admin(const tf_conf_t *c)
{
    return &c->admin;
}

const char *tf_conf_acme_webroot(const tf_conf_t *c)
{
    return c->acme.webroot;
}

const tf_conf_acme_t *tf_conf_acme(const tf_conf_t *c)
{
    return &c->acme;
}

const tf_conf_tls_t *tf_conf_tls(const tf_conf_t *c)
{
    return &c->tls;
}

const tf_conf_timeouts_t *tf_conf_timeouts(const tf_conf_t *c)
{
    return &c->timeouts;
}

const tf_conf_limits_t *tf_conf_limits(const tf_conf_t *c)
{
    return &c->limits;
}

const tf_conf_proxy_protocol_t *tf_conf_proxy_protocol(const tf_conf_t *c)
{
    return &c->proxy_protocol;
}

const tf_conf_http2_t *tf_conf_http2(const tf_conf_t *c)
{
    return &c->http2;
}

size_t tf_conf_tenant_count(const tf_conf_t *c)
{
    return c->ntenants;
}

const tf_conf_tenant_t *tf_conf_tenant(const tf_conf_t *c, size_t i)
{
    assert(i < c->ntenants);
    return &c->tenants[i];
}

const tf_conf_tenant_t *tf_conf_tenant_find(const tf_conf_t *c, const char *name)
{
    for (size_t i = 0; i < c->ntenants; i++) {
        if (strcmp(c->tenants[i].name, name) == 0)
            return &c->tenants[i];
    }
    return NULL;
}

bool tf_conf_tenant_acme(const tf_conf_tenant_t *t)
{
    return t->acme;
}

size_t tf_conf_warning_count(const tf_conf_t *c)
{
    return c->nwarnings;
}

const char *tf_conf_warning(const tf_conf_t *c, size_t i)
{
    assert(i < c->nwarnings);
    const struct tf_conf__warning *w = c->warnings;
    while (i-- > 0)
        w = w->next;
    return w->msg;
}

int tf_conf_where(const tf_conf_t *c, const char *key, size_t index, char *buf, size_t len)
{
    if (len > 0)
        buf[0] = '\0';
    for (const tf_conf__where_t *w = c->where; w != NULL; w = w->next) {
        if (w->index != index || strcmp(w->key, key) != 0)
            continue;
        int n = snprintf(buf, len, "%s:%u:%u", c->source, w->line, w->column);
        if (n < 0 || (size_t)n >= len) {
            if (len > 0)
                buf[0] = '\0';
            return TF_ETOOBIG;
        }
        return 0;
    }
    return TF_ENOTFOUND;
}
