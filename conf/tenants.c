/* The tenants map (name -> tenant) and the checks that span tenants: a
 * tenant name used twice, and a host listed twice, in one tenant or across
 * two. Duplicates are found by sorting, so a config with many thousands of
 * hosts is checked in O(n log n). */
#include "conf/conf_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHY_MAX 512

void tf_conf__host_seen(tf_conf__ctx_t *ctx, const char *host, yaml_mark_t mark)
{
    if (ctx->nhosts == ctx->caphosts) {
        size_t cap = ctx->caphosts ? ctx->caphosts * 2 : 64;
        tf_conf__host_ref_t *h = realloc(ctx->hosts, cap * sizeof *h);
        if (h == NULL) {
            ctx->nomem = true;
            return;
        }
        ctx->hosts = h;
        ctx->caphosts = cap;
    }
    ctx->hosts[ctx->nhosts] = (tf_conf__host_ref_t){
        .host = host, .tenant = ctx->cur_tenant, .seq = ctx->nhosts, .mark = mark};
    ctx->nhosts++;
}

static int cmp_ref(const void *a, const void *b)
{
    const tf_conf__host_ref_t *x = a, *y = b;
    int c = strcmp(x->host, y->host);
    if (c != 0)
        return c;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static const char *tenant_name(const tf_conf__ctx_t *ctx, size_t i)
{
    return ctx->conf->tenants[i].name;
}

static void report_host(tf_conf__ctx_t *ctx, const tf_conf__host_ref_t *first,
                        const tf_conf__host_ref_t *dup)
{
    const char *a = tenant_name(ctx, first->tenant), *b = tenant_name(ctx, dup->tenant);
    if (first->tenant == dup->tenant) {
        tf_conf__error(ctx, dup->mark,
                       "host '%s' is listed twice in tenant '%s' (first at line %zu, column %zu); "
                       "remove one",
                       dup->host, b, first->mark.line + 1, first->mark.column + 1);
        return;
    }
    tf_conf__error(ctx, dup->mark,
                   "host '%s' of tenant '%s' is already listed by tenant '%s' (line %zu, column "
                   "%zu); a host belongs to one tenant: remove it from one of them",
                   dup->host, b, a, first->mark.line + 1, first->mark.column + 1);
}

void tf_conf__check_duplicate_hosts(tf_conf__ctx_t *ctx)
{
    if (ctx->nhosts < 2)
        return;
    qsort(ctx->hosts, ctx->nhosts, sizeof ctx->hosts[0], cmp_ref);
    const tf_conf__host_ref_t *first = &ctx->hosts[0];
    for (size_t i = 1; i < ctx->nhosts; i++) {
        const tf_conf__host_ref_t *h = &ctx->hosts[i];
        if (strcmp(h->host, first->host) == 0)
            report_host(ctx, first, h);
        else
            first = h;
    }
}

/* Tenant names are few compared with hosts, but a generated config can hold
 * thousands: sort pointers rather than compare every pair. */
static int cmp_tenant(const void *a, const void *b)
{
    const tf_conf_tenant_t *x = *(const tf_conf_tenant_t *const *)a;
    const tf_conf_tenant_t *y = *(const tf_conf_tenant_t *const *)b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x < y ? -1 : (x > y);
}

static void check_duplicate_names(tf_conf__ctx_t *ctx)
{
    size_t n = ctx->conf->ntenants;
    if (n < 2)
        return;
    const tf_conf_tenant_t **v = malloc(n * sizeof *v);
    if (v == NULL) {
        ctx->nomem = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = &ctx->conf->tenants[i];
    qsort(v, n, sizeof *v, cmp_tenant);
    for (size_t i = 1, f = 0; i < n; i++) {
        if (strcmp(v[i]->name, v[f]->name) != 0) {
            f = i;
            continue;
        }
        yaml_mark_t m = {.line = v[i]->line - 1, .column = v[i]->column - 1};
        tf_conf__error(ctx, m,
                       "duplicate tenant '%s' (first at line %u, column %u); rename or merge them",
                       v[i]->name, v[f]->line, v[f]->column);
    }
    free(v);
}

/* The tenant name in key node KN, or NULL with an error recorded. */
static const char *tenant_name_of(tf_conf__ctx_t *ctx, const yaml_node_t *kn)
{
    char why[WHY_MAX];
    if (kn->type != YAML_SCALAR_NODE || tf_conf__is_null(kn)) {
        tf_conf__error(ctx, kn->start_mark, "tenants: a tenant name must be a plain name, got %s",
                       tf_conf__node_kind(kn));
        return NULL;
    }
    const char *name = (const char *)kn->data.scalar.value;
    if (strlen(name) != kn->data.scalar.length)
        snprintf(why, sizeof why, "a tenant name must not contain a NUL character");
    else if (tf_conf__check_tenant_name(name, why, sizeof why) == 0)
        return name;
    tf_conf__error(ctx, kn->start_mark, "tenants: %s", why);
    return NULL;
}

/* Loads one "name: { ... }" pair into the next free tenant slot; its keys
 * go to a tf_conf__src_t that tf_conf__resolve_tenants() turns into routes. */
static void load_one(tf_conf__ctx_t *ctx, const tf_conf__key_t *key, yaml_node_t *kn,
                     yaml_node_t *vn)
{
    char path[96];
    const char *name = tenant_name_of(ctx, kn);
    if (name == NULL)
        return;
    snprintf(path, sizeof path, "tenants.%s", name);
    if (vn->type != YAML_MAPPING_NODE) {
        /* "name:" with nothing after it: blame the name, the null has no place. */
        tf_conf__error(ctx, tf_conf__is_null(vn) ? kn->start_mark : vn->start_mark,
                       "%s: expected a mapping with hosts: and backends:, got %s", path,
                       tf_conf__node_kind(vn));
        return;
    }
    tf_conf_tenant_t *t = &ctx->conf->tenants[ctx->conf->ntenants];
    tf_conf__src_t *src = tf_conf__alloc(&ctx->conf->arena, sizeof *src);
    t->name = tf_conf__strndup(&ctx->conf->arena, name, strlen(name));
    if (src != NULL)
        src->path = tf_conf__strndup(&ctx->conf->arena, path, strlen(path));
    if (t->name == NULL || src == NULL || src->path == NULL) {
        ctx->nomem = true;
        return;
    }
    t->line = (unsigned)kn->start_mark.line + 1;
    t->column = (unsigned)kn->start_mark.column + 1;
    src->where = kn->start_mark;
    ctx->tenant_src[ctx->conf->ntenants] = src;
    ctx->cur_tenant = ctx->conf->ntenants++;
    tf_conf__apply_defaults(ctx, key->sub, src);
    tf_conf__walk_section(ctx, key->sub, src, vn, path, kn->start_mark);
    ctx->cur_tenant = TF_CONF__NO_TENANT;
}

void tf_conf__load_tenants(tf_conf__ctx_t *ctx, const tf_conf__key_t *key, yaml_node_t *map,
                           yaml_mark_t keymark)
{
    if (map->type != YAML_MAPPING_NODE && !tf_conf__is_null(map)) {
        tf_conf__error(ctx, map->start_mark,
                       "tenants: expected a mapping of tenant name to tenant, got %s; write e.g. "
                       "%s",
                       tf_conf__node_kind(map), key->example);
        return;
    }
    size_t n = tf_conf__is_null(map)
                   ? 0
                   : (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (n == 0) {
        yaml_mark_t m = tf_conf__is_null(map) ? keymark : map->start_mark;
        tf_conf__error(ctx, m, "tenants: is empty; add at least one tenant, e.g. %s", key->example);
        return;
    }
    ctx->conf->tenants = tf_conf__alloc(&ctx->conf->arena, n * sizeof(tf_conf_tenant_t));
    ctx->tenant_src = tf_conf__alloc(&ctx->conf->arena, n * sizeof(tf_conf__src_t *));
    if (ctx->conf->tenants == NULL || ctx->tenant_src == NULL) {
        ctx->nomem = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
        load_one(ctx, key, yaml_document_get_node(ctx->doc, p->key),
                 yaml_document_get_node(ctx->doc, p->value));
    }
    check_duplicate_names(ctx);
}
