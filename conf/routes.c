/* Routes (SPEC §11): loading a tenant's routes: list, then, once the whole
 * document is read, turning each tenant and its routes as written into the
 * resolved tf_conf_route_t array: the tenant's own keys are routes[0] ("/"),
 * every route inherits each key it does not write, whole, from routes[0],
 * and timeouts fall back key by key to the tenant's and then the global
 * ones. The checks that span keys live here too: exactly one of backends,
 * redirect and respond; health.timeout within health.interval; keys a mode
 * tcp tenant cannot use; a prefix listed twice. */
#include "conf/conf_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 160

enum { KIND_NONE = -1, KIND_TWO = -2 };

static const uint16_t redirect_codes[] = {301, 302, 307, 308};

static const struct {
    int rk;
    const char *name;
    tf_conf_route_kind_t kind;
} kinds[] = {
    {TF_CONF__RK_BACKENDS, "backends", TF_CONF_ROUTE_BACKENDS},
    {TF_CONF__RK_REDIRECT, "redirect", TF_CONF_ROUTE_REDIRECT},
    {TF_CONF__RK_RESPOND, "respond", TF_CONF_ROUTE_RESPOND},
};

#define NKINDS (sizeof kinds / sizeof kinds[0])

static bool before(yaml_mark_t a, yaml_mark_t b)
{
    return a.line < b.line || (a.line == b.line && a.column < b.column);
}

/* ---- loading --------------------------------------------------------------- */

static bool load_one(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, tf_conf__src_t *s,
                     yaml_node_t *n, const char *path, size_t i)
{
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%s[%zu]", path, i);
    if (n->type != YAML_MAPPING_NODE) {
        tf_conf__error(ctx, n->start_mark,
                       "%s: expected a mapping with path: and backends:, redirect: or respond:, "
                       "got %s",
                       name, tf_conf__node_kind(n));
        return false;
    }
    s->path = tf_conf__strndup(&ctx->conf->arena, name, strlen(name));
    if (s->path == NULL) {
        ctx->nomem = true;
        return false;
    }
    s->where = n->start_mark;
    tf_conf__apply_defaults(ctx, k->sub, s);
    tf_conf__walk_section(ctx, k->sub, s, n, name, n->start_mark);
    return true;
}

void tf_conf__load_routes(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, tf_conf__src_list_t *dst,
                          yaml_node_t *n, const char *path)
{
    *dst = (tf_conf__src_list_t){0};
    if (tf_conf__is_null(n))
        return;
    if (n->type != YAML_SEQUENCE_NODE) {
        tf_conf__error(ctx, n->start_mark, "%s: expected a list of routes like %s, got %s", path,
                       k->example, tf_conf__node_kind(n));
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return;
    dst->items = tf_conf__alloc(&ctx->conf->arena, count * sizeof *dst->items);
    if (dst->items == NULL) {
        ctx->nomem = true;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *it = yaml_document_get_node(ctx->doc, n->data.sequence.items.start[i]);
        if (load_one(ctx, k, &dst->items[dst->count], it, path, i))
            dst->count++;
    }
}

/* ---- resolving ------------------------------------------------------------- */

/* Which of backends/redirect/respond S writes: an index into kinds,
 * KIND_NONE, or KIND_TWO (error recorded at the later of the first two). */
static int own_kind(tf_conf__ctx_t *ctx, const tf_conf__src_t *s)
{
    int first = KIND_NONE;
    for (int i = 0; i < (int)NKINDS; i++) {
        if (!s->seen[kinds[i].rk].set)
            continue;
        if (first == KIND_NONE) {
            first = i;
            continue;
        }
        const tf_conf__seen_t *a = &s->seen[kinds[first].rk], *b = &s->seen[kinds[i].rk];
        bool a_first = before(a->key, b->key);
        const tf_conf__seen_t *later = a_first ? b : a;
        tf_conf__error(ctx, later->key,
                       "%s: both %s and %s are set; a route forwards to backends, redirects or "
                       "responds: keep one of them",
                       s->path, kinds[a_first ? first : i].name, kinds[a_first ? i : first].name);
        return KIND_TWO;
    }
    return first;
}

/* Sets R's kind from what S writes, inheriting the backends of P (routes[0])
 * when S writes none; false with an error recorded when it has none. */
static bool set_kind(tf_conf__ctx_t *ctx, const tf_conf__src_t *s, const tf_conf_route_t *p,
                     tf_conf_route_t *r)
{
    int k = own_kind(ctx, s);
    if (k == KIND_TWO)
        return false;
    if (k == KIND_NONE && p == NULL) {
        tf_conf__error(ctx, s->where,
                       "%s: missing required key 'backends'; add it, e.g. backends: "
                       "[\"10.0.0.5:8080\"], or answer every request with redirect: or respond:",
                       s->path);
        return false;
    }
    if (k == KIND_NONE && p->kind != TF_CONF_ROUTE_BACKENDS) {
        tf_conf__error(ctx, s->where,
                       "%s: needs backends, redirect or respond: the tenant's own keys (the / "
                       "route) have no backends to inherit; add one of them",
                       s->path);
        return false;
    }
    r->kind = k == KIND_NONE ? TF_CONF_ROUTE_BACKENDS : kinds[k].kind;
    if (k == KIND_NONE)
        r->backends = p->backends;
    if (r->kind != TF_CONF_ROUTE_BACKENDS)
        r->backends = (tf_conf_backend_list_t){0};
    if (r->kind != TF_CONF_ROUTE_REDIRECT && s->seen[TF_CONF__RK_REDIRECT_STATUS].set)
        tf_conf__error(ctx, s->seen[TF_CONF__RK_REDIRECT_STATUS].key,
                       "%s.redirect_status: applies to a redirect; add redirect: or remove it",
                       s->path);
    if (r->websocket && r->kind != TF_CONF_ROUTE_BACKENDS)
        tf_conf__error(ctx, s->seen[TF_CONF__RK_MODE].value,
                       "%s.mode: websocket needs backends to forward the upgrade to; remove "
                       "mode: websocket or use backends:",
                       s->path);
    return true;
}

/* A check must end before the next one starts: a timeout left out is 2s or
 * the interval when that is shorter (a 200ms interval stays valid); one
 * written longer than the interval is an error. */
static void check_health(tf_conf__ctx_t *ctx, const tf_conf__src_t *s, tf_conf_health_t *h)
{
    char iv[32], to[32];
    const tf_conf__seen_t *t = &s->seen[TF_CONF__RK_HEALTH_TIMEOUT];
    if (!h->enabled || h->timeout_ms <= h->interval_ms)
        return;
    if (!t->set) {
        h->timeout_ms = h->interval_ms;
        return;
    }
    tf_conf__fmt_ms(iv, sizeof iv, h->interval_ms);
    tf_conf__fmt_ms(to, sizeof to, h->timeout_ms);
    tf_conf__error(ctx, t->value,
                   "%s.health.timeout: %s is longer than health.interval (%s); a check must end "
                   "before the next one starts: shorten it",
                   s->path, to, iv);
}

/* Each timeout key the route does not write comes from FALLBACK. */
static void inherit_timeouts(const tf_conf__src_t *s, tf_conf_route_timeouts_t *t,
                             const tf_conf_route_timeouts_t *fallback)
{
    if (!s->seen[TF_CONF__RK_TO_CONNECT].set)
        t->connect_ms = fallback->connect_ms;
    if (!s->seen[TF_CONF__RK_TO_RESPONSE].set)
        t->response_ms = fallback->response_ms;
    if (!s->seen[TF_CONF__RK_TO_IDLE].set)
        t->idle_ms = fallback->idle_ms;
    if (!s->seen[TF_CONF__RK_TO_TUNNEL].set)
        t->tunnel_ms = fallback->tunnel_ms;
}

/* Each key S does not write, whole, from P (routes[0]). */
static void inherit(const tf_conf__src_t *s, const tf_conf_route_t *p, tf_conf_route_t *r)
{
    if (!s->seen[TF_CONF__RK_BALANCE].set)
        r->balance = p->balance;
    if (!s->seen[TF_CONF__RK_COOKIE].set)
        r->cookie = p->cookie;
    if (!s->seen[TF_CONF__RK_HEALTH].set)
        r->health = p->health;
    if (!s->seen[TF_CONF__RK_HEADERS].set) {
        r->request_headers = p->request_headers;
        r->response_headers = p->response_headers;
    }
    if (!s->seen[TF_CONF__RK_ALLOW].set)
        r->allow = p->allow;
    if (!s->seen[TF_CONF__RK_ERRORS].set)
        r->errors = p->errors;
    inherit_timeouts(s, &r->timeouts, &p->timeouts);
}

/* Resolves S into R: routes[0] when P is NULL (timeouts from the global
 * section), else a route under routes[0] P. */
static void resolve_route(tf_conf__ctx_t *ctx, const tf_conf__src_t *s, const tf_conf_route_t *p,
                          tf_conf_route_t *r)
{
    *r = s->r;
    r->health.status_min = s->status.min;
    r->health.status_max = s->status.max;
    r->redirect_status = redirect_codes[s->redirect_status];
    r->websocket = p != NULL && s->mode == 1;
    r->respond_body_len = r->respond_body != NULL ? strlen(r->respond_body) : 0;
    if (p == NULL || s->seen[TF_CONF__RK_HEALTH].set)
        check_health(ctx, s, &r->health);
    if (p != NULL) {
        inherit(s, p, r);
        r->line = (unsigned)s->seen[TF_CONF__RK_PATH].value.line + 1;
        r->column = (unsigned)s->seen[TF_CONF__RK_PATH].value.column + 1;
    } else {
        const tf_conf_timeouts_t *g = &ctx->conf->timeouts;
        tf_conf_route_timeouts_t global = {.connect_ms = g->connect_ms,
                                           .response_ms = g->response_ms,
                                           .idle_ms = g->idle_ms,
                                           .tunnel_ms = g->tunnel_ms};
        inherit_timeouts(s, &r->timeouts, &global);
        r->path = "/";
        r->line = (unsigned)s->where.line + 1;
        r->column = (unsigned)s->where.column + 1;
    }
    if (!set_kind(ctx, s, p, r))
        r->kind = TF_CONF_ROUTE_BACKENDS;
}

/* ---- mode tcp ----------------------------------------------------------------- */

static void check_tcp(tf_conf__ctx_t *ctx, const tf_conf__src_t *s)
{
    static const struct {
        int rk;
        const char *name;
    } http_only[] = {
        {TF_CONF__RK_ROUTES, "routes"},
        {TF_CONF__RK_COOKIE, "cookie"},
        {TF_CONF__RK_HEADERS, "headers"},
        {TF_CONF__RK_ALLOW, "allow"},
        {TF_CONF__RK_ERRORS, "errors"},
        {TF_CONF__RK_REDIRECT, "redirect"},
        {TF_CONF__RK_REDIRECT_STATUS, "redirect_status"},
        {TF_CONF__RK_RESPOND, "respond"},
    };
    for (size_t i = 0; i < sizeof http_only / sizeof http_only[0]; i++) {
        const tf_conf__seen_t *k = &s->seen[http_only[i].rk];
        if (k->set)
            tf_conf__error(ctx, k->key,
                           "%s.%s: applies to mode http tenants; this tenant is mode tcp: "
                           "remove it",
                           s->path, http_only[i].name);
    }
    if (s->r.balance == TF_CONF_BALANCE_COOKIE)
        tf_conf__error(ctx, s->seen[TF_CONF__RK_BALANCE].value,
                       "%s.balance: cookie needs mode http (a tcp stream carries no cookies); use "
                       "round_robin, least_conn or source",
                       s->path);
}

/* ---- duplicate prefixes ---------------------------------------------------------- */

static int cmp_route(const void *a, const void *b)
{
    const tf_conf_route_t *x = *(const tf_conf_route_t *const *)a;
    const tf_conf_route_t *y = *(const tf_conf_route_t *const *)b;
    int c = strcmp(x->path, y->path);
    return c != 0 ? c : (x < y ? -1 : (x > y));
}

/* Sorting keeps a tenant with thousands of routes O(n log n). */
static void check_duplicates(tf_conf__ctx_t *ctx, const tf_conf_tenant_t *t)
{
    size_t n = 0;
    const tf_conf_route_t **v = malloc(t->nroutes * sizeof *v);
    if (v == NULL) {
        ctx->nomem = true;
        return;
    }
    for (size_t i = 1; i < t->nroutes; i++) {
        if (t->routes[i].path != NULL)
            v[n++] = &t->routes[i];
    }
    qsort(v, n, sizeof *v, cmp_route);
    for (size_t i = 1, f = 0; i < n; i++) {
        if (strcmp(v[i]->path, v[f]->path) != 0) {
            f = i;
            continue;
        }
        yaml_mark_t m = {.line = v[i]->line - 1, .column = v[i]->column - 1};
        tf_conf__error(ctx, m,
                       "tenants.%s: route '%s' is listed twice (first at line %u, column %u); "
                       "each prefix once: merge them or remove one",
                       t->name, v[i]->path, v[f]->line, v[f]->column);
    }
    free(v);
}

/* ---- one address, one TLS setting -------------------------------------------------- */

static bool same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_tls(const tf_conf_backend_t *a, const tf_conf_backend_t *b)
{
    return a->tls == b->tls && a->verify == b->verify && same_str(a->ca_file, b->ca_file) &&
           same_str(a->sni, b->sni);
}

/* A tenant's backend is one per address: its health, down marks and drain
 * (GET and POST /backends) are the address's. Two TLS settings for one
 * address in one tenant would share them, and a check made with one
 * setting would decide for the other: refused. Quadratic in the tenant's
 * backends, which are few, and only for those that set TLS. */
static bool any_tls(const tf_conf_tenant_t *t)
{
    for (size_t r = 0; r < t->nroutes; r++) {
        for (size_t i = 0; i < t->routes[r].backends.count; i++) {
            if (t->routes[r].backends.items[i].tls)
                return true;
        }
    }
    return false;
}

/* The first backend of T with ADDRESS, in file order: routes before R, then
 * route R's items before I; NULL when none comes before. */
static const tf_conf_backend_t *first_with(const tf_conf_tenant_t *t, size_t r, size_t i,
                                           const char *address)
{
    for (size_t r2 = 0; r2 <= r; r2++) {
        const tf_conf_backend_list_t *l = &t->routes[r2].backends;
        size_t end = r2 == r ? i : l->count;
        for (size_t j = 0; j < end; j++) {
            if (strcmp(l->items[j].addr.text, address) == 0)
                return &l->items[j];
        }
    }
    return NULL;
}

static void check_tls_per_address(tf_conf__ctx_t *ctx, const tf_conf_tenant_t *t)
{
    if (!any_tls(t))
        return;
    for (size_t r = 0; r < t->nroutes; r++) {
        const tf_conf_backend_list_t *l = &t->routes[r].backends;
        for (size_t i = 0; i < l->count; i++) {
            const tf_conf_backend_t *b = &l->items[i];
            const tf_conf_backend_t *a = first_with(t, r, i, b->addr.text);
            if (a == NULL || same_tls(a, b))
                continue;
            yaml_mark_t m = {.line = b->line - 1, .column = b->column - 1};
            tf_conf__error(ctx, m,
                           "tenants.%s: backend '%s' has other TLS settings (tls, tls_verify, "
                           "tls_sni) than at line %u, column %u; one address is one backend, "
                           "with one health state: give each setting its own address (another "
                           "port or name)",
                           t->name, b->addr.text, a->line, a->column);
        }
    }
}

/* ---- tenants ------------------------------------------------------------------- */

static void resolve_tenant(tf_conf__ctx_t *ctx, tf_conf_tenant_t *t, const tf_conf__src_t *s)
{
    t->hosts = s->hosts;
    t->mode = (tf_conf_mode_t)s->mode;
    t->acme = s->acme;
    t->send_proxy = (tf_conf_send_proxy_t)s->send_proxy;
    bool tcp = t->mode == TF_CONF_MODE_TCP;
    if (tcp)
        check_tcp(ctx, s);
    size_t n = 1 + (tcp ? 0 : s->routes.count);
    tf_conf_route_t *routes = tf_conf__alloc(&ctx->conf->arena, n * sizeof *routes);
    if (routes == NULL) {
        ctx->nomem = true;
        return;
    }
    resolve_route(ctx, s, NULL, &routes[0]);
    for (size_t i = 1; i < n; i++)
        resolve_route(ctx, &s->routes.items[i - 1], &routes[0], &routes[i]);
    t->routes = routes;
    t->nroutes = n;
    check_duplicates(ctx, t);
    check_tls_per_address(ctx, t);
}

void tf_conf__resolve_tenants(tf_conf__ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->conf->ntenants; i++) {
        if (ctx->tenant_src[i] != NULL)
            resolve_tenant(ctx, &ctx->conf->tenants[i], ctx->tenant_src[i]);
    }
}
