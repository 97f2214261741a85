/* The YAML walk: checks each mapping against its schema table (schema.c),
 * converts values with the parsers in values.c and stores them at the
 * table's offsets. Nothing here knows a key by name. */
#include "conf/conf_internal.h"

#include "common/err.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define WHY_MAX 512
#define PATH_MAX_LEN 160
#define MAX_KEYS 20

/* A scalar being converted: its text, where it is, and the key's full name. */
typedef struct {
    const char *text;
    yaml_mark_t mark;
    const char *path;
    bool in_file; /* false for a schema default, which has no location */
} scalar_t;

static void *field(void *base, const tf_conf__key_t *k)
{
    return (char *)base + k->offset;
}

static void join_path(char *out, size_t len, const char *path, const char *name)
{
    snprintf(out, len, "%s%s%.100s", path, path[0] ? "." : "", name);
}

static char *copy(tf_conf__ctx_t *ctx, const char *s)
{
    char *c = tf_conf__strndup(&ctx->conf->arena, s, strlen(s));
    if (c == NULL)
        ctx->nomem = true;
    return c;
}

static void *alloc(tf_conf__ctx_t *ctx, size_t size)
{
    void *p = tf_conf__alloc(&ctx->conf->arena, size);
    if (p == NULL)
        ctx->nomem = true;
    return p;
}

/* Remembers where the INDEX-th value of a located key was written, for
 * messages about that path once it is checked (tf_conf_where). */
static void locate(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, const scalar_t *s, size_t index)
{
    if (!(k->flags & TF_CONF__F_LOCATED) || !s->in_file)
        return;
    tf_conf__where_t *w = alloc(ctx, sizeof *w);
    const char *key = w != NULL ? copy(ctx, s->path) : NULL;
    if (key == NULL)
        return;
    *w = (tf_conf__where_t){.next = ctx->conf->where,
                            .key = key,
                            .index = index,
                            .line = (unsigned)s->mark.line + 1,
                            .column = (unsigned)s->mark.column + 1};
    ctx->conf->where = w;
}

/* Durations in messages, in the largest unit that divides them. */
void tf_conf__fmt_ms(char *out, size_t len, uint64_t ms)
{
    if (ms % 3600000 == 0)
        snprintf(out, len, "%" PRIu64 "h", ms / 3600000);
    else if (ms % 60000 == 0)
        snprintf(out, len, "%" PRIu64 "m", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(out, len, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(out, len, "%" PRIu64 "ms", ms);
}

static void store_uint(void *dst, size_t size, uint64_t v)
{
    if (size == sizeof(uint64_t)) {
        *(uint64_t *)dst = v;
    } else if (size == sizeof(uint16_t)) {
        *(uint16_t *)dst = (uint16_t)v;
    } else {
        assert(size == sizeof(uint32_t));
        *(uint32_t *)dst = (uint32_t)v;
    }
}

static bool checked(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, const scalar_t *s);

static void set_uint(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, const scalar_t *s)
{
    char why[WHY_MAX];
    uint64_t v;
    if (k->type == TF_CONF__T_WORKERS && strcmp(s->text, "auto") == 0) {
        store_uint(dst, k->size, 0);
        return;
    }
    /* A value with a message of its own ("weight 0: ...") before the range's. */
    if (!checked(ctx, k, s))
        return;
    const char *alt = k->type == TF_CONF__T_WORKERS ? " or \"auto\"" : "";
    if (tf_conf__parse_uint(s->text, &v, why, sizeof why) != 0) {
        tf_conf__error(ctx, s->mark, "%s: %s%s", s->path, why, alt);
        return;
    }
    if (v < k->min || v > k->max) {
        tf_conf__error(ctx, s->mark, "%s: %s is out of range; use %" PRIu64 " to %" PRIu64 "%s",
                       s->path, s->text, k->min, k->max, alt);
        return;
    }
    store_uint(dst, k->size, v);
}

static void set_duration(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, const scalar_t *s)
{
    char why[WHY_MAX], lim[32];
    uint64_t ms;
    if (tf_conf__parse_duration(s->text, &ms, why, sizeof why) != 0) {
        tf_conf__error(ctx, s->mark, "%s: %s", s->path, why);
        return;
    }
    if (ms < k->min) {
        tf_conf__fmt_ms(lim, sizeof lim, k->min);
        tf_conf__error(ctx, s->mark, "%s: %s is too short; use at least %s", s->path, s->text, lim);
        return;
    }
    if (ms > k->max) {
        tf_conf__fmt_ms(lim, sizeof lim, k->max);
        tf_conf__error(ctx, s->mark, "%s: %s is too long; use at most %s", s->path, s->text, lim);
        return;
    }
    *(uint64_t *)dst = ms;
}

/* Runs the key's extra check; false (with an error recorded) on failure. */
static bool checked(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, const scalar_t *s)
{
    char why[WHY_MAX];
    if (k->check == NULL || k->check(s->text, why, sizeof why) == 0)
        return true;
    tf_conf__error(ctx, s->mark, "%s: %s", s->path, why);
    return false;
}

static void set_string(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, const scalar_t *s)
{
    if (!checked(ctx, k, s))
        return;
    *(const char **)dst = copy(ctx, s->text);
    locate(ctx, k, s, 0);
}

static void enum_list(char *out, size_t len, const char *const *names)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; names[i] != NULL && used < len; i++) {
        int n = snprintf(out + used, len - used, "%s%s", i ? ", " : "", names[i]);
        used += n > 0 ? (size_t)n : 0;
    }
}

static void set_enum(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, const scalar_t *s)
{
    for (int i = 0; k->enums[i] != NULL; i++) {
        if (strcmp(k->enums[i], s->text) == 0) {
            *(int *)dst = i;
            return;
        }
    }
    char names[128];
    enum_list(names, sizeof names, k->enums);
    tf_conf__error(ctx, s->mark, "%s: '%s' is not a valid value; use one of: %s", s->path, s->text,
                   names);
}

static void set_bool(tf_conf__ctx_t *ctx, void *dst, const scalar_t *s)
{
    char why[WHY_MAX];
    if (tf_conf__parse_bool(s->text, (bool *)dst, why, sizeof why) != 0)
        tf_conf__error(ctx, s->mark, "%s: %s", s->path, why);
}

static void set_status_range(tf_conf__ctx_t *ctx, void *dst, const scalar_t *s)
{
    char why[WHY_MAX];
    if (tf_conf__parse_status_range(s->text, (tf_conf__status_t *)dst, why, sizeof why) != 0)
        tf_conf__error(ctx, s->mark, "%s: %s", s->path, why);
}

/* Parses one address into A; false (with an error recorded) on failure. */
static bool parse_addr(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, tf_conf_addr_t *a,
                       const scalar_t *s)
{
    char why[WHY_MAX], host[256];
    bool listener = (k->flags & TF_CONF__F_LISTENER) != 0;
    bool unix_ok = (k->flags & TF_CONF__F_UNIX) && strncmp(s->text, "unix:", 5) == 0;
    int rc = unix_ok
                 ? tf_conf__parse_unix(s->text, a, host, sizeof host, why, sizeof why)
                 : tf_conf__parse_addr(s->text, listener, a, host, sizeof host, why, sizeof why);
    if (rc != 0) {
        tf_conf__error(ctx, s->mark, "%s: %s", s->path, why);
        return false;
    }
    a->host = copy(ctx, host);
    a->text = copy(ctx, s->text);
    return true;
}

static void set_addr(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, const scalar_t *s)
{
    tf_conf_addr_t a;
    if (parse_addr(ctx, k, &a, s))
        *(tf_conf_addr_t *)dst = a;
}

/* Adds one item to a list whose array has room for it. */
static void add_item(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, const scalar_t *s)
{
    char why[WHY_MAX], host[256];
    if (k->type == TF_CONF__T_ADDR_LIST) {
        tf_conf_addr_list_t *l = dst;
        if (parse_addr(ctx, k, (tf_conf_addr_t *)&l->items[l->count], s))
            l->count++;
        return;
    }
    tf_conf_str_list_t *l = dst;
    const char *v = s->text;
    if (k->type == TF_CONF__T_HOST_LIST) {
        if (tf_conf__host_normalize(s->text, host, sizeof host, why, sizeof why) != 0) {
            tf_conf__error(ctx, s->mark, "%s: %s", s->path, why);
            return;
        }
        v = host;
    } else if (!checked(ctx, k, s)) {
        return;
    }
    char *c = copy(ctx, v);
    if (c == NULL)
        return;
    locate(ctx, k, s, l->count);
    ((const char **)l->items)[l->count++] = c;
    if (k->type == TF_CONF__T_HOST_LIST)
        tf_conf__host_seen(ctx, c, s->mark);
}

/* Replaces the list at DST by an empty one with room for N items. */
static bool list_reset(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, size_t n)
{
    size_t isz = k->type == TF_CONF__T_ADDR_LIST ? sizeof(tf_conf_addr_t) : sizeof(char *);
    void *items = n ? alloc(ctx, n * isz) : NULL;
    if (n && items == NULL)
        return false;
    if (k->type == TF_CONF__T_ADDR_LIST)
        *(tf_conf_addr_list_t *)dst = (tf_conf_addr_list_t){.items = items};
    else
        *(tf_conf_str_list_t *)dst = (tf_conf_str_list_t){.items = items};
    return true;
}

static bool is_list(const tf_conf__key_t *k)
{
    return k->type == TF_CONF__T_ADDR_LIST || k->type == TF_CONF__T_STR_LIST ||
           k->type == TF_CONF__T_HOST_LIST;
}

/* Converts one scalar for key K (list types add it as an item). */
static void set_scalar(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, const scalar_t *s)
{
    switch (k->type) {
    case TF_CONF__T_UINT:
    case TF_CONF__T_WORKERS:
        set_uint(ctx, k, dst, s);
        break;
    case TF_CONF__T_DURATION:
        set_duration(ctx, k, dst, s);
        break;
    case TF_CONF__T_STRING:
        set_string(ctx, k, dst, s);
        break;
    case TF_CONF__T_ENUM:
        set_enum(ctx, k, dst, s);
        break;
    case TF_CONF__T_ADDR:
        set_addr(ctx, k, dst, s);
        break;
    case TF_CONF__T_BOOL:
        set_bool(ctx, dst, s);
        break;
    case TF_CONF__T_STATUS_RANGE:
        set_status_range(ctx, dst, s);
        break;
    default:
        assert(is_list(k));
        add_item(ctx, k, dst, s);
        break;
    }
}

void tf_conf__apply_defaults(tf_conf__ctx_t *ctx, const tf_conf__key_t *keys, void *base)
{
    for (const tf_conf__key_t *k = keys; k->name != NULL; k++) {
        if (k->type == TF_CONF__T_SECTION) {
            tf_conf__apply_defaults(ctx, k->sub, base);
            continue;
        }
        if (k->def == NULL)
            continue;
        scalar_t s = {.text = k->def, .path = k->name};
        if (is_list(k) && !list_reset(ctx, k, field(base, k), 1))
            continue;
        set_scalar(ctx, k, field(base, k), &s);
    }
}

const char *tf_conf__scalar_text(tf_conf__ctx_t *ctx, const yaml_node_t *n, const char *path,
                                 const char *what)
{
    if (n->type != YAML_SCALAR_NODE || tf_conf__is_null(n)) {
        tf_conf__error(ctx, n->start_mark, "%s: expected %s, got %s", path, what,
                       tf_conf__node_kind(n));
        return NULL;
    }
    const char *v = (const char *)n->data.scalar.value;
    if (memchr(v, '\0', n->data.scalar.length) != NULL) {
        tf_conf__error(ctx, n->start_mark, "%s: contains a NUL character; remove it", path);
        return NULL;
    }
    return v;
}

static const char *type_what(const tf_conf__key_t *k)
{
    switch (k->type) {
    case TF_CONF__T_UINT:
        return "a whole number";
    case TF_CONF__T_WORKERS:
        return "a number of workers or \"auto\"";
    case TF_CONF__T_DURATION:
        return "a duration such as 10s";
    case TF_CONF__T_ADDR:
    case TF_CONF__T_ADDR_LIST:
        return "an address such as \"127.0.0.1:8080\"";
    case TF_CONF__T_HOST_LIST:
        return "a host name such as \"app.example.com\"";
    case TF_CONF__T_ENUM:
        return "one of the values listed in docs/CONFIG.md";
    case TF_CONF__T_BOOL:
        return "true or false";
    case TF_CONF__T_STATUS_RANGE:
        return "a status or a range such as \"200-399\"";
    default:
        return "a string";
    }
}

static void set_list(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, yaml_node_t *n,
                     const char *path)
{
    bool null = tf_conf__is_null(n);
    if (n->type != YAML_SEQUENCE_NODE && !null) {
        tf_conf__error(ctx, n->start_mark, "%s: expected a list like [%s], got %s", path,
                       k->type == TF_CONF__T_HOST_LIST ? "\"app.example.com\"" : "\"...\"",
                       tf_conf__node_kind(n));
        return;
    }
    size_t count = null ? 0 : (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (!list_reset(ctx, k, dst, count))
        return;
    if (count == 0 && (k->flags & TF_CONF__F_NONEMPTY)) {
        tf_conf__error(ctx, n->start_mark, "%s: is empty; add at least one entry, e.g. %s", path,
                       k->example ? k->example : "[\"...\"]");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, n->data.sequence.items.start[i]);
        scalar_t s = {.mark = item->start_mark, .path = path, .in_file = true};
        s.text = tf_conf__scalar_text(ctx, item, path, type_what(k));
        if (s.text != NULL)
            add_item(ctx, k, dst, &s);
    }
}

static void set_section(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *base, yaml_node_t *n,
                        const char *path, yaml_mark_t keymark)
{
    if (tf_conf__is_null(n)) {
        /* "log:" with nothing under it: every default, as if absent. */
        if (!(k->flags & TF_CONF__F_OPTIONAL))
            tf_conf__walk_section(ctx, k->sub, base, NULL, path, keymark);
        return;
    }
    if (n->type != YAML_MAPPING_NODE) {
        tf_conf__error(ctx, n->start_mark, "%s: expected a mapping of keys, got %s", path,
                       tf_conf__node_kind(n));
        return;
    }
    if (k->flags & TF_CONF__F_OPTIONAL)
        *(bool *)((char *)base + k->present_offset) = true;
    tf_conf__walk_section(ctx, k->sub, base, n, path, keymark);
}

static bool is_policy(const tf_conf__key_t *k)
{
    return k->type >= TF_CONF__T_BACKENDS;
}

void tf_conf__set_value(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *base, yaml_node_t *n,
                        const char *path, yaml_mark_t keymark)
{
    if (is_policy(k)) {
        tf_conf__set_policy(ctx, k, field(base, k), n, path);
    } else if (k->type == TF_CONF__T_SECTION) {
        set_section(ctx, k, base, n, path, keymark);
    } else if (k->type == TF_CONF__T_TENANTS) {
        tf_conf__load_tenants(ctx, k, n, keymark);
    } else if (is_list(k)) {
        set_list(ctx, k, field(base, k), n, path);
    } else if ((k->flags & TF_CONF__F_NULLABLE) && tf_conf__is_null(n)) {
        *(const char **)field(base, k) = NULL;
    } else {
        scalar_t s = {.mark = n->start_mark, .path = path, .in_file = true};
        s.text = tf_conf__scalar_text(ctx, n, path, type_what(k));
        if (s.text != NULL)
            set_scalar(ctx, k, field(base, k), &s);
    }
}

static void valid_keys(char *out, size_t len, const tf_conf__key_t *keys)
{
    size_t used = 0;
    out[0] = '\0';
    for (const tf_conf__key_t *k = keys; k->name != NULL && used < len; k++) {
        int n = snprintf(out + used, len - used, "%s%s", k == keys ? "" : ", ", k->name);
        used += n > 0 ? (size_t)n : 0;
    }
}

static void unknown_key(tf_conf__ctx_t *ctx, const tf_conf__key_t *keys, const yaml_node_t *kn,
                        const char *path)
{
    const char *name = (const char *)kn->data.scalar.value;
    char where[PATH_MAX_LEN + 16];
    if (path[0])
        snprintf(where, sizeof where, "in '%s'", path);
    else
        snprintf(where, sizeof where, "at the top level");
    char home[PATH_MAX_LEN];
    if (strcmp(name, "<<") == 0) {
        tf_conf__error(ctx, kn->start_mark,
                       "YAML merge keys (<<) are not supported; repeat the keys, or use an "
                       "alias (*name) for a whole value");
        return;
    }
    const char *near = tf_conf__suggest(keys, name);
    if (near == NULL && path[0] == '\0' && tf_conf__schema_home(name, home, sizeof home)) {
        tf_conf__error(ctx, kn->start_mark,
                       "unknown key '%s' at the top level; it belongs under its section: '%s'",
                       name, home);
        return;
    }
    if (near != NULL) {
        tf_conf__error(ctx, kn->start_mark, "unknown key '%.100s' %s; did you mean '%s'?", name,
                       where, near);
        return;
    }
    char list[256];
    valid_keys(list, sizeof list, keys);
    tf_conf__error(ctx, kn->start_mark, "unknown key '%.100s' %s; valid keys are: %s", name, where,
                   list);
}

/* The schema entry for one key node, or NULL (with an error recorded). */
static const tf_conf__key_t *lookup(tf_conf__ctx_t *ctx, const tf_conf__key_t *keys,
                                    const yaml_node_t *kn, const char *path)
{
    if (kn->type != YAML_SCALAR_NODE) {
        tf_conf__error(ctx, kn->start_mark, "%s%skeys must be plain names, got %s", path,
                       path[0] ? ": " : "", tf_conf__node_kind(kn));
        return NULL;
    }
    const tf_conf__key_t *k =
        tf_conf__schema_find(keys, (const char *)kn->data.scalar.value, kn->data.scalar.length);
    if (k == NULL)
        unknown_key(ctx, keys, kn, path);
    return k;
}

static void missing(tf_conf__ctx_t *ctx, const tf_conf__key_t *keys, const bool *seen, void *base,
                    const char *path, yaml_mark_t where)
{
    char sub[PATH_MAX_LEN];
    for (size_t i = 0; keys[i].name != NULL; i++) {
        const tf_conf__key_t *k = &keys[i];
        if (seen[i])
            continue;
        join_path(sub, sizeof sub, path, k->name);
        if (k->flags & TF_CONF__F_REQUIRED)
            tf_conf__error(ctx, where, "%s: missing required key '%s'; add it, e.g. %s",
                           path[0] ? path : "configuration", k->name, k->example);
        else if (k->type == TF_CONF__T_SECTION && !(k->flags & TF_CONF__F_OPTIONAL))
            tf_conf__walk_section(ctx, k->sub, base, NULL, sub, where);
    }
}

void tf_conf__walk_section(tf_conf__ctx_t *ctx, const tf_conf__key_t *keys, void *base,
                           yaml_node_t *map, const char *path, yaml_mark_t where)
{
    bool seen[MAX_KEYS] = {false};
    yaml_mark_t first[MAX_KEYS];
    char sub[PATH_MAX_LEN];
    assert(tf_conf__schema_count(keys) <= MAX_KEYS);
    for (yaml_node_pair_t *p = map ? map->data.mapping.pairs.start : NULL;
         map && p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);
        const tf_conf__key_t *k = lookup(ctx, keys, kn, path);
        if (k == NULL)
            continue;
        size_t i = (size_t)(k - keys);
        if (seen[i]) {
            tf_conf__error(ctx, kn->start_mark,
                           "duplicate key '%s' (first at line %zu, column %zu); remove one",
                           k->name, first[i].line + 1, first[i].column + 1);
            continue;
        }
        seen[i] = true;
        first[i] = kn->start_mark;
        join_path(sub, sizeof sub, path, k->name);
        yaml_node_t *vn = yaml_document_get_node(ctx->doc, p->value);
        if (k->flags & TF_CONF__F_SEEN)
            *(tf_conf__seen_t *)((char *)base + k->seen_offset) =
                (tf_conf__seen_t){.set = true, .key = kn->start_mark, .value = vn->start_mark};
        tf_conf__set_value(ctx, k, base, vn, sub, kn->start_mark);
    }
    missing(ctx, keys, seen, base, path, where);
}

static void finish_log(tf_conf_t *c)
{
    const char *a = c->log_access;
    c->log.access_path = NULL;
    if (a == NULL || strcmp(a, "stdout") == 0) {
        c->log.access = TF_CONF_ACCESS_STDOUT;
    } else if (strcmp(a, "off") == 0) {
        c->log.access = TF_CONF_ACCESS_OFF;
    } else {
        c->log.access = TF_CONF_ACCESS_FILE;
        c->log.access_path = a;
    }
}

/* A bucket as deep as one second of its rate unless told otherwise. */
static void finish_limits(tf_conf_limits_t *l)
{
    if (l->per_client_rps > 0 && l->per_client_burst == 0)
        l->per_client_burst = l->per_client_rps;
}

void tf_conf__load_document(tf_conf__ctx_t *ctx)
{
    const tf_conf__key_t *root = tf_conf__schema_root();
    size_t before = ctx->nerr;
    tf_conf__apply_defaults(ctx, root, ctx->conf);
    /* A default that does not parse is a bug in schema.c, not in the file. */
    assert(ctx->nerr == before);
    (void)before;

    yaml_node_t *top = yaml_document_get_root_node(ctx->doc);
    yaml_mark_t origin = {0};
    if (top == NULL || tf_conf__is_null(top)) {
        tf_conf__error(ctx, origin,
                       "the configuration is empty; it needs at least listen.https and one "
                       "tenant (see examples/tlsfront.yaml)");
        return;
    }
    if (top->type != YAML_MAPPING_NODE) {
        tf_conf__error(ctx, top->start_mark,
                       "the configuration must be a mapping of keys such as listen: and "
                       "tenants:, got %s",
                       tf_conf__node_kind(top));
        return;
    }
    tf_conf__walk_section(ctx, root, ctx->conf, top, "", top->start_mark);
    tf_conf__check_duplicate_hosts(ctx);
    tf_conf__resolve_tenants(ctx);
    tf_conf__finish_acme(ctx);
    tf_conf__check_proxy_protocol(ctx);
    finish_log(ctx->conf);
    finish_limits(&ctx->conf->limits);
}
