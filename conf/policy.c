/* The node-valued keys of SPEC §11: backend lists (strings or maps), header
 * rules, allow lists and error pages. Each loads one YAML node into its
 * field, with an error at the item that is wrong; routes: lists are in
 * routes.c. */
#include "conf/conf_internal.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define WHY_MAX 512

static size_t seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static size_t map_len(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

static void *alloc(tf_conf__ctx_t *ctx, size_t size)
{
    void *p = tf_conf__alloc(&ctx->conf->arena, size);
    if (p == NULL)
        ctx->nomem = true;
    return p;
}

static char *copy(tf_conf__ctx_t *ctx, const char *s, size_t n)
{
    char *c = tf_conf__strndup(&ctx->conf->arena, s, n);
    if (c == NULL)
        ctx->nomem = true;
    return c;
}

/* A list node (null is an empty list) or false with an error. */
static bool list_node(tf_conf__ctx_t *ctx, const yaml_node_t *n, const char *path,
                      const char *example, size_t *count)
{
    if (tf_conf__is_null(n)) {
        *count = 0;
        return true;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        tf_conf__error(ctx, n->start_mark, "%s: expected a list like %s, got %s", path, example,
                       tf_conf__node_kind(n));
        return false;
    }
    *count = seq_len(n);
    return true;
}

static bool map_node(tf_conf__ctx_t *ctx, const yaml_node_t *n, const char *path,
                     const char *example, size_t *count)
{
    if (tf_conf__is_null(n)) {
        *count = 0;
        return true;
    }
    if (n->type != YAML_MAPPING_NODE) {
        tf_conf__error(ctx, n->start_mark, "%s: expected a mapping like %s, got %s", path, example,
                       tf_conf__node_kind(n));
        return false;
    }
    *count = map_len(n);
    return true;
}

static yaml_node_t *item(tf_conf__ctx_t *ctx, const yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(ctx->doc, seq->data.sequence.items.start[i]);
}

/* ---- backends ------------------------------------------------------------ */

/* The value node of KEY in mapping N, or NULL. */
static const yaml_node_t *map_value(tf_conf__ctx_t *ctx, const yaml_node_t *n, const char *key)
{
    if (n->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(ctx->doc, p->value);
    }
    return NULL;
}

/* tls_verify as a CA file: a relative path is taken from the configuration
 * file's directory, like errors pages, and must be readable now. */
static void backend_ca_file(tf_conf__ctx_t *ctx, tf_conf_backend_t *b, const yaml_node_t *vn,
                            const char *path)
{
    const char *file = b->tls_verify;
    char full[4096 + 256];
    bool rel = file[0] != '/' && ctx->dir != NULL;
    snprintf(full, sizeof full, "%s%s%s", rel ? ctx->dir : "", rel ? "/" : "", file);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tf_conf__error(ctx, vn->start_mark,
                       "%s: tls_verify: cannot read the CA file '%s': %s; write system, off or "
                       "the path of a PEM file%s",
                       path, full, strerror(errno),
                       file[0] == '/' ? ""
                                      : " (a relative path is taken from the configuration "
                                        "file's directory)");
        return;
    }
    close(fd);
    b->verify = TF_CONF_VERIFY_FILE;
    b->ca_file = copy(ctx, full, strlen(full));
}

/* Resolves and checks the TLS keys of one backend (SPEC §14). */
static void backend_tls(tf_conf__ctx_t *ctx, tf_conf_backend_t *b, const yaml_node_t *n,
                        const char *path)
{
    const yaml_node_t *vn = map_value(ctx, n, "tls_verify");
    const yaml_node_t *sn = map_value(ctx, n, "tls_sni");
    if (!b->tls) {
        const yaml_node_t *bad = sn != NULL && b->sni != NULL ? sn : vn;
        if (bad != NULL)
            tf_conf__error(ctx, bad->start_mark,
                           "%s: '%s': %s applies to TLS backends only; add tls: true or remove "
                           "it",
                           path, b->addr.text, bad == sn ? "tls_sni" : "tls_verify");
        b->sni = NULL;
        return;
    }
    if (strcmp(b->tls_verify, "off") == 0) {
        b->verify = TF_CONF_VERIFY_OFF;
        tf_conf__warn(ctx, vn->start_mark,
                      "%s: '%s': tls_verify: off: the backend's certificate is not checked, so "
                      "anyone on the path to it can read and change the traffic",
                      path, b->addr.text);
    } else if (strcmp(b->tls_verify, "system") != 0) {
        backend_ca_file(ctx, b, vn, path);
    }
    if (b->sni == NULL && b->addr.family == TF_CONF_ADDR_NAME)
        b->sni = b->addr.host;
    if (b->sni == NULL && b->addr.family == TF_CONF_ADDR_UNIX && b->verify != TF_CONF_VERIFY_OFF)
        tf_conf__error(ctx, n->start_mark,
                       "%s: '%s': a unix: backend has no host name to verify its certificate "
                       "against; set tls_sni to the name in its certificate, or tls_verify: off",
                       path, b->addr.text);
}

/* One item: "HOST:PORT" (weight 1) or a map walked against K->sub. */
static bool load_backend(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, tf_conf_backend_t *b,
                         yaml_node_t *n, const char *path)
{
    const tf_conf__key_t *addr = tf_conf__schema_find(k->sub, "address", 7);
    size_t before = ctx->nerr + ctx->dropped;
    tf_conf__apply_defaults(ctx, k->sub, b);
    if (n->type == YAML_MAPPING_NODE)
        tf_conf__walk_section(ctx, k->sub, b, n, path, n->start_mark);
    else if (n->type == YAML_SCALAR_NODE && !tf_conf__is_null(n))
        tf_conf__set_value(ctx, addr, b, n, path, n->start_mark);
    else
        tf_conf__error(
            ctx, n->start_mark,
            "%s: expected an address such as \"10.0.0.5:8080\" or \"unix:/run/app.sock\", or "
            "a mapping such as "
            "{address: \"10.0.0.5:8080\", weight: 2}, got %s",
            path, tf_conf__node_kind(n));
    b->line = (unsigned)n->start_mark.line + 1;
    b->column = (unsigned)n->start_mark.column + 1;
    if (ctx->nerr + ctx->dropped == before && b->addr.text != NULL)
        backend_tls(ctx, b, n, path);
    return ctx->nerr + ctx->dropped == before && b->addr.text != NULL;
}

/* A backend named twice in one list would get two shares of one state. */
static void check_twice(tf_conf__ctx_t *ctx, const tf_conf_backend_list_t *l, const yaml_mark_t *m,
                        const char *path)
{
    const tf_conf_backend_t *last = &l->items[l->count - 1];
    for (size_t i = 0; i + 1 < l->count; i++) {
        if (strcmp(l->items[i].addr.text, last->addr.text) != 0)
            continue;
        tf_conf__error(ctx, m[l->count - 1],
                       "%s: '%s' is listed twice (first at line %zu, column %zu); remove one, "
                       "or give it a weight",
                       path, last->addr.text, m[i].line + 1, m[i].column + 1);
        return;
    }
}

static void load_backends(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, tf_conf_backend_list_t *l,
                          yaml_node_t *n, const char *path)
{
    size_t count;
    *l = (tf_conf_backend_list_t){0};
    if (!list_node(ctx, n, path, "[\"10.0.0.5:8080\"]", &count))
        return;
    if (count == 0) {
        tf_conf__error(ctx, n->start_mark, "%s: is empty; add at least one backend, e.g. %s", path,
                       k->example);
        return;
    }
    tf_conf_backend_t *items = alloc(ctx, count * sizeof *items);
    yaml_mark_t *marks = alloc(ctx, count * sizeof *marks);
    if (items == NULL || marks == NULL)
        return;
    l->items = items;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *it = item(ctx, n, i);
        if (!load_backend(ctx, k, &items[l->count], it, path))
            continue;
        marks[l->count++] = it->start_mark;
        check_twice(ctx, l, marks, path);
    }
}

/* ---- header rules ---------------------------------------------------------- */

static bool header_name(tf_conf__ctx_t *ctx, const yaml_node_t *n, const char *path,
                        const char **out)
{
    char why[WHY_MAX];
    const char *s = tf_conf__scalar_text(ctx, n, path, "a header name");
    if (s == NULL)
        return false;
    if (tf_conf__check_header_name(s, why, sizeof why) != 0) {
        tf_conf__error(ctx, n->start_mark, "%s: %s", path, why);
        return false;
    }
    *out = s;
    return true;
}

static void load_header_set(tf_conf__ctx_t *ctx, tf_conf_header_rules_t *r, yaml_node_t *n,
                            const char *path)
{
    char why[WHY_MAX];
    size_t count;
    r->set = NULL;
    r->nset = 0;
    if (!map_node(ctx, n, path, "{Strict-Transport-Security: \"max-age=31536000\"}", &count) ||
        count == 0)
        return;
    tf_conf_header_t *set = alloc(ctx, count * sizeof *set);
    if (set == NULL)
        return;
    r->set = set;
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ctx->doc, p->value);
        const char *name, *value;
        if (!header_name(ctx, kn, path, &name))
            continue;
        value = tf_conf__scalar_text(ctx, vn, path, "a header value (write \"\" for an empty one)");
        if (value == NULL)
            continue;
        if (tf_conf__check_header_value(value, why, sizeof why) != 0) {
            tf_conf__error(ctx, vn->start_mark, "%s: %s: %s", path, name, why);
            continue;
        }
        size_t j = 0;
        while (j < r->nset && strcasecmp(set[j].name, name) != 0)
            j++;
        if (j < r->nset) {
            tf_conf__error(ctx, kn->start_mark,
                           "%s: '%s' is set twice (names are case-insensitive); keep one", path,
                           name);
            continue;
        }
        set[r->nset].name = copy(ctx, name, strlen(name));
        set[r->nset].value = copy(ctx, value, strlen(value));
        r->nset++;
    }
}

static void load_header_names(tf_conf__ctx_t *ctx, tf_conf_str_list_t *l, yaml_node_t *n,
                              const char *path)
{
    size_t count;
    *l = (tf_conf_str_list_t){0};
    if (!list_node(ctx, n, path, "[Server, X-Powered-By]", &count) || count == 0)
        return;
    const char **items = alloc(ctx, count * sizeof *items);
    if (items == NULL)
        return;
    l->items = items;
    for (size_t i = 0; i < count; i++) {
        const char *name;
        if (!header_name(ctx, item(ctx, n, i), path, &name))
            continue;
        char *low = copy(ctx, name, strlen(name));
        if (low == NULL)
            return;
        for (char *c = low; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        items[l->count++] = low;
    }
}

/* ---- allow ------------------------------------------------------------------ */

static void load_allow(tf_conf__ctx_t *ctx, tf_conf_allow_t *a, yaml_node_t *n, const char *path)
{
    char why[WHY_MAX];
    size_t count;
    *a = (tf_conf_allow_t){0};
    if (!list_node(ctx, n, path, "[\"10.0.0.0/8\", \"192.0.2.7\"]", &count) || count == 0)
        return;
    tf_conf_cidr_t *items = alloc(ctx, count * sizeof *items);
    if (items == NULL)
        return;
    a->items = items;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *it = item(ctx, n, i);
        const char *s = tf_conf__scalar_text(ctx, it, path, "an address or network such as \"10.0.0.0/8\"");
        if (s == NULL)
            continue;
        if (tf_conf__parse_cidr(s, &items[a->count], why, sizeof why) != 0) {
            tf_conf__error(ctx, it->start_mark, "%s: %s", path, why);
            continue;
        }
        a->count++;
    }
}

/* ---- error pages -------------------------------------------------------------- */

static const uint16_t page_statuses[] = {403, 404, 421, 429, 502, 503, 504};

static bool page_status(tf_conf__ctx_t *ctx, const yaml_node_t *kn, const char *path,
                        uint16_t *status)
{
    const char *s = tf_conf__scalar_text(ctx, kn, path, "a status such as 503");
    if (s == NULL)
        return false;
    for (size_t i = 0; i < sizeof page_statuses / sizeof page_statuses[0]; i++) {
        char t[8];
        snprintf(t, sizeof t, "%u", page_statuses[i]);
        if (strcmp(s, t) == 0) {
            *status = page_statuses[i];
            return true;
        }
    }
    tf_conf__error(ctx, kn->start_mark,
                   "%s: '%s' is not a status tlsfront answers with a page; use 403, 404, 421, "
                   "429, 502, 503 or 504",
                   path, s);
    return false;
}

/* A file read once per load, however many tenants (or YAML aliases) name it:
 * a page shared by a thousand tenants costs one copy, and an alias cannot
 * multiply a large page. */
struct tf_conf__page {
    struct tf_conf__page *next;
    const char *full;
    const char *body;
    size_t len;
};

static const struct tf_conf__page *page_cached(const tf_conf__ctx_t *ctx, const char *full)
{
    for (const struct tf_conf__page *p = ctx->pages; p != NULL; p = p->next) {
        if (strcmp(p->full, full) == 0)
            return p;
    }
    return NULL;
}

static void page_remember(tf_conf__ctx_t *ctx, const char *full, const tf_conf_error_page_t *pg)
{
    struct tf_conf__page *p = alloc(ctx, sizeof *p);
    if (p == NULL || (p->full = copy(ctx, full, strlen(full))) == NULL)
        return;
    p->body = pg->body;
    p->len = pg->len;
    p->next = ctx->pages;
    ctx->pages = p;
}

/* Reads at most TF_CONF_ERROR_PAGE_MAX bytes of the regular file at FULL. */
static int read_page(tf_conf__ctx_t *ctx, const char *full, tf_conf_error_page_t *pg)
{
    const struct tf_conf__page *cached = page_cached(ctx, full);
    if (cached != NULL) {
        pg->body = cached->body;
        pg->len = cached->len;
        return 0;
    }
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = TF_EINVAL;
    else if (st.st_size > (off_t)TF_CONF_ERROR_PAGE_MAX)
        rc = TF_ETOOBIG;
    char *body = rc == 0 ? alloc(ctx, (size_t)st.st_size + 1) : NULL;
    size_t n = 0;
    if (rc == 0 && body == NULL)
        rc = TF_ENOMEM;
    while (rc == 0 && n < (size_t)st.st_size) {
        ssize_t r = read(fd, body + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : 0;
            break; /* shrank while read: keep what is there */
        }
        n += (size_t)r;
    }
    close(fd);
    if (rc == 0) {
        body[n] = '\0';
        pg->body = body;
        pg->len = n;
        page_remember(ctx, full, pg);
    }
    return rc;
}

static void page_error(tf_conf__ctx_t *ctx, const yaml_node_t *vn, const char *path,
                       const char *file, const char *full, int rc)
{
    char reason[256];
    if (rc == TF_EINVAL)
        snprintf(reason, sizeof reason, "not a regular file");
    else if (rc == TF_ETOOBIG)
        snprintf(reason, sizeof reason, "larger than %u KiB", TF_CONF_ERROR_PAGE_MAX >> 10);
    else
        snprintf(reason, sizeof reason, "%s", strerror(-rc));
    const char *rel = file[0] == '/' ? ""
                      : ctx->dir != NULL
                          ? " (a relative path is taken from the configuration file's directory)"
                          : " (a relative path is taken from the current directory)";
    tf_conf__error(ctx, vn->start_mark, "%s: cannot read '%s': %s; check the path%s", path, full,
                   reason, rel);
}

static void load_page(tf_conf__ctx_t *ctx, tf_conf_error_pages_t *e, yaml_node_pair_t *p,
                      const char *path)
{
    yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(ctx->doc, p->value);
    tf_conf_error_page_t *pg = (tf_conf_error_page_t *)&e->items[e->count];
    if (!page_status(ctx, kn, path, &pg->status))
        return;
    for (size_t i = 0; i < e->count; i++) {
        if (e->items[i].status == pg->status) {
            tf_conf__error(ctx, kn->start_mark, "%s: %u has two pages; keep one", path, pg->status);
            return;
        }
    }
    const char *file = tf_conf__scalar_text(ctx, vn, path, "the path of an HTML file");
    if (file == NULL)
        return;
    if (file[0] == '\0') {
        tf_conf__error(ctx, vn->start_mark, "%s: empty path; write the page's file", path);
        return;
    }
    char full[4096 + 256];
    bool rel = file[0] != '/' && ctx->dir != NULL;
    snprintf(full, sizeof full, "%s%s%s", rel ? ctx->dir : "", rel ? "/" : "", file);
    int rc = read_page(ctx, full, pg);
    if (rc != 0) {
        if (rc == TF_ENOMEM)
            ctx->nomem = true;
        else
            page_error(ctx, vn, path, file, full, rc);
        return;
    }
    pg->file = copy(ctx, file, strlen(file));
    e->count++;
}

static void load_errors(tf_conf__ctx_t *ctx, tf_conf_error_pages_t *e, yaml_node_t *n,
                        const char *path)
{
    size_t count;
    *e = (tf_conf_error_pages_t){0};
    if (!map_node(ctx, n, path, "{503: errors/503.html}", &count) || count == 0)
        return;
    e->items = alloc(ctx, count * sizeof *e->items);
    if (e->items == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        load_page(ctx, e, &n->data.mapping.pairs.start[i], path);
}

void tf_conf__set_policy(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, yaml_node_t *n,
                         const char *path)
{
    switch (k->type) {
    case TF_CONF__T_BACKENDS:
        load_backends(ctx, k, dst, n, path);
        break;
    case TF_CONF__T_HEADER_SET:
        load_header_set(ctx, dst, n, path);
        break;
    case TF_CONF__T_HEADER_NAMES:
        load_header_names(ctx, dst, n, path);
        break;
    case TF_CONF__T_CIDR_LIST:
        load_allow(ctx, dst, n, path);
        break;
    case TF_CONF__T_ERROR_PAGES:
        load_errors(ctx, dst, n, path);
        break;
    case TF_CONF__T_CHALLENGES:
        tf_conf__load_challenges(ctx, dst, n, path);
        break;
    default:
        tf_conf__load_routes(ctx, k, dst, n, path);
        break;
    }
}
