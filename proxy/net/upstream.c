/* See upstream.h. Hosts live in one open-addressing hash table (at most half
 * full) keyed by the pattern as the configuration normalized it, so a lookup
 * is two probes (exact, then "*.rest") whatever the number of tenants. Each
 * route has its backends (resolved, their registry states referenced) and
 * its balancer (balance.c). */
#include "proxy/net/upstream.h"

#include "proxy/net/backends.h"
#include "proxy/net/balance.h"

#include "common/err.h"
#include "proxy/http/http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_MAX 256

typedef struct {
    tf_backend_t *backends;
    size_t nbackends;
    tf_balancer_t bal;
} route_t;

typedef struct {
    const tf_conf_tenant_t *conf;
    route_t *routes; /* as conf->routes; routes[0] is "/" */
    size_t nroutes;
    tf_http_routes_t *table; /* the path routes' table; NULL with "/" alone */
} tenant_t;

typedef struct {
    const char *host; /* NULL: empty slot */
    uint32_t tenant;
} slot_t;

struct tf_upstream {
    tenant_t *tenants;
    size_t ntenants;
    slot_t *slots;
    size_t mask; /* slot count - 1; a power of two */
    uint32_t catch_all;
    unsigned refs; /* generations sharing the table (one worker's thread only) */
    tf_backends_t *reg;
    /* The configuration the table was built from: tenant names and settings
     * point into it, so it lives as long as the table does. */
    tf_conf_t *conf;
    /* TLS backends' client contexts, one per trust setting (the first
     * backend's settings that made each). */
    tf_tls_client_ctx_t **tls;
    const tf_conf_backend_t **tls_made_for;
    size_t ntls;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void index_put(tf_upstream_t *u, const char *host, uint32_t tenant)
{
    size_t i = hash_str(host) & u->mask;
    while (u->slots[i].host != NULL)
        i = (i + 1) & u->mask;
    u->slots[i].host = host;
    u->slots[i].tenant = tenant;
}

static uint32_t index_get(const tf_upstream_t *u, const char *host)
{
    for (size_t i = hash_str(host) & u->mask; u->slots[i].host != NULL; i = (i + 1) & u->mask) {
        if (strcmp(u->slots[i].host, host) == 0)
            return u->slots[i].tenant;
    }
    return TF_UPSTREAM_NONE;
}

int tf_backend_addr_resolve(const tf_conf_addr_t *a, tf_backend_addr_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (a->family == TF_CONF_ADDR_UNIX) {
        /* The loader checked that the path fits. */
        out->un.sun_family = AF_UNIX;
        snprintf(out->un.sun_path, sizeof out->un.sun_path, "%s", a->host);
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)a->port);
    if (a->family != TF_CONF_ADDR_NAME)
        hints.ai_flags |= AI_NUMERICHOST;
    int rc = getaddrinfo(a->host, port, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof *out) {
        *why = rc != 0 ? gai_strerror(rc) : "no address";
        if (res != NULL)
            freeaddrinfo(res);
        return TF_EINVAL;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static int resolve(const tf_conf_addr_t *a, tf_backend_t *b, char *err, size_t errlen,
                   const char *tenant)
{
    const char *why = NULL;
    if (tf_backend_addr_resolve(a, &b->addr, &why) != 0) {
        snprintf(err, errlen,
                 "tenant '%s': backend '%s': cannot resolve: %s; fix the name or use an "
                 "address",
                 tenant, a->text, why);
        return TF_EINVAL;
    }
    b->text = a->text;
    return 0;
}

static bool same_trust(const tf_conf_backend_t *a, const tf_conf_backend_t *b)
{
    return a->verify == b->verify &&
           (a->verify != TF_CONF_VERIFY_FILE || strcmp(a->ca_file, b->ca_file) == 0);
}

/* The context for CB's trust setting: made once per table (loading the
 * system store takes milliseconds), shared by the backends that use it. */
static int tls_ctx_for(tf_upstream_t *u, const tf_conf_backend_t *cb, tf_tls_client_ctx_t **out,
                       char *err, size_t errlen)
{
    for (size_t i = 0; i < u->ntls; i++) {
        if (same_trust(u->tls_made_for[i], cb)) {
            *out = u->tls[i];
            return 0;
        }
    }
    tf_tls_client_ctx_t **nt = realloc(u->tls, (u->ntls + 1) * sizeof *nt);
    if (nt != NULL)
        u->tls = nt;
    const tf_conf_backend_t **nm = realloc(u->tls_made_for, (u->ntls + 1) * sizeof *nm);
    if (nm != NULL)
        u->tls_made_for = nm;
    if (nt == NULL || nm == NULL)
        return TF_ENOMEM;
    tf_tls_client_opts_t o = {.verify = cb->verify != TF_CONF_VERIFY_OFF, .ca_file = cb->ca_file};
    int rc = tf_tls_client_ctx_new(&o, &u->tls[u->ntls], err, errlen);
    if (rc != 0)
        return rc;
    u->tls_made_for[u->ntls] = cb;
    *out = u->tls[u->ntls++];
    return 0;
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; s != NULL && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull; /* a separator: "ab","c" is not "a","bc" */
}

const char *tf_backend_verify_name(const tf_conf_backend_t *cb)
{
    bool ip = cb->addr.family == TF_CONF_ADDR_IPV4 || cb->addr.family == TF_CONF_ADDR_IPV6;
    if (!cb->tls || cb->verify == TF_CONF_VERIFY_OFF)
        return NULL;
    return cb->sni != NULL ? cb->sni : ip ? cb->addr.host : NULL;
}

static int backend_tls(tf_upstream_t *u, tf_backend_t *b, const tf_conf_backend_t *cb,
                       const char *tenant, char *err, size_t errlen)
{
    if (!cb->tls)
        return 0;
    char why[1024];
    int rc = tls_ctx_for(u, cb, &b->tls, why, sizeof why);
    if (rc != 0) {
        snprintf(err, errlen, "tenant '%s': backend '%s': %s", tenant, cb->addr.text,
                 rc == TF_ENOMEM ? "out of memory" : why);
        return rc;
    }
    b->verify_name = tf_backend_verify_name(cb);
    char v[2] = {(char)('0' + cb->verify), '\0'};
    b->flavour = fnv(fnv(fnv(1469598103934665603ull, v), cb->ca_file), cb->sni) | 1;
    return 0;
}

static int route_init(tf_upstream_t *u, tenant_t *t, route_t *r, const tf_conf_route_t *cr,
                      char *err, size_t errlen)
{
    size_t n = cr->kind == TF_CONF_ROUTE_BACKENDS ? cr->backends.count : 0;
    r->backends = calloc(n > 0 ? n : 1, sizeof *r->backends);
    if (r->backends == NULL)
        return TF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        tf_backend_t *b = &r->backends[i];
        int rc = resolve(&cr->backends.items[i].addr, b, err, errlen, t->conf->name);
        if (rc != 0)
            return rc;
        b->conf = &cr->backends.items[i];
        rc = backend_tls(u, b, b->conf, t->conf->name, err, errlen);
        if (rc != 0)
            return rc;
        b->state = tf_backends_acquire(u->reg, t->conf->name, b->text);
        if (b->state == NULL)
            return TF_ENOMEM;
        r->nbackends = i + 1;
    }
    return tf_balancer_init(&r->bal, u->reg, t->conf->name, cr, r->backends, n);
}

static int tenant_init(tf_upstream_t *u, tenant_t *t, const tf_conf_tenant_t *ct, char *err,
                       size_t errlen)
{
    t->conf = ct;
    t->routes = calloc(ct->nroutes, sizeof *t->routes);
    if (t->routes == NULL)
        return TF_ENOMEM;
    t->nroutes = ct->nroutes;
    for (size_t i = 0; i < t->nroutes; i++) {
        int rc = route_init(u, t, &t->routes[i], &ct->routes[i], err, errlen);
        if (rc != 0)
            return rc;
    }
    /* A tenant without path routes never matches paths (every request is
     * its "/" route's): no table to build, nothing to look up. */
    if (t->nroutes > 1 && tf_http_routes_new(ct->routes, ct->nroutes, &t->table) != 0)
        return TF_ENOMEM;
    return 0;
}

static void tenant_fini(tf_upstream_t *u, tenant_t *t)
{
    for (size_t i = 0; t->routes != NULL && i < t->nroutes; i++) {
        route_t *r = &t->routes[i];
        tf_balancer_fini(&r->bal);
        for (size_t k = 0; k < r->nbackends; k++)
            tf_backends_release(u->reg, r->backends[k].state);
        free(r->backends);
    }
    free(t->routes);
    tf_http_routes_free(t->table);
}

static int index_build(tf_upstream_t *u)
{
    size_t nhosts = 0;
    for (size_t i = 0; i < u->ntenants; i++)
        nhosts += u->tenants[i].conf->hosts.count;
    size_t n = 16;
    while (n < 2 * nhosts)
        n *= 2;
    u->slots = calloc(n, sizeof *u->slots);
    if (u->slots == NULL)
        return TF_ENOMEM;
    u->mask = n - 1;
    for (uint32_t t = 0; t < u->ntenants; t++) {
        const tf_conf_str_list_t *h = &u->tenants[t].conf->hosts;
        for (size_t i = 0; i < h->count; i++) {
            if (strcmp(h->items[i], "*") == 0)
                u->catch_all = t;
            else
                index_put(u, h->items[i], t);
        }
    }
    return 0;
}

int tf_upstream_new(const tf_conf_t *conf, tf_backends_t *reg, tf_upstream_t **out, char *err,
                    size_t errlen)
{
    int rc = TF_ENOMEM;
    tf_upstream_t *u = calloc(1, sizeof *u);
    if (u == NULL)
        goto out;
    u->catch_all = TF_UPSTREAM_NONE;
    u->refs = 1;
    u->reg = reg;
    u->conf = tf_conf_ref((tf_conf_t *)conf);
    u->ntenants = tf_conf_tenant_count(conf);
    u->tenants = calloc(u->ntenants, sizeof *u->tenants);
    if (u->tenants == NULL)
        goto out;
    for (size_t i = 0; i < u->ntenants; i++) {
        rc = tenant_init(u, &u->tenants[i], tf_conf_tenant(conf, i), err, errlen);
        if (rc != 0)
            goto out;
    }
    rc = index_build(u);
out:
    if (rc == TF_ENOMEM)
        snprintf(err, errlen, "out of memory building the tenant table");
    if (rc != 0) {
        tf_upstream_free(u);
        return rc;
    }
    *out = u;
    return 0;
}

int tf_upstream_cookie_key_from_file(const char *path)
{
    return tf_balancer_cookie_key_from_file(path);
}

tf_upstream_t *tf_upstream_ref(tf_upstream_t *u)
{
    u->refs++;
    return u;
}

void tf_upstream_free(tf_upstream_t *u)
{
    if (u == NULL || --u->refs > 0)
        return;
    for (size_t i = 0; u->tenants != NULL && i < u->ntenants; i++)
        tenant_fini(u, &u->tenants[i]);
    free(u->tenants);
    free(u->slots);
    for (size_t i = 0; i < u->ntls; i++)
        tf_tls_client_ctx_free(u->tls[i]);
    free(u->tls);
    free(u->tls_made_for);
    tf_conf_unref(u->conf);
    free(u);
}

/* Lower case, one trailing dot removed; 0 when it cannot be a host name. */
static size_t normalize(const char *sni, char *buf)
{
    size_t n = strlen(sni);
    if (n > 0 && sni[n - 1] == '.')
        n--;
    if (n == 0 || n >= HOST_MAX - 1)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = sni[i];
        buf[i + 1] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    buf[n + 1] = '\0';
    return n;
}

uint32_t tf_upstream_route(const tf_upstream_t *u, const char *sni)
{
    /* buf[0] is kept free so "*.rest" can be formed in place. */
    char buf[HOST_MAX + 1];
    if (sni == NULL || normalize(sni, buf) == 0)
        return u->catch_all;
    char *host = buf + 1;
    uint32_t t = index_get(u, host);
    if (t != TF_UPSTREAM_NONE)
        return t;
    char *dot = strchr(host, '.');
    if (dot != NULL && dot != host && dot[1] != '\0') {
        dot[-1] = '*';
        t = index_get(u, dot - 1);
        if (t != TF_UPSTREAM_NONE)
            return t;
    }
    return u->catch_all;
}

const tf_conf_t *tf_upstream_conf(const tf_upstream_t *u)
{
    return u->conf;
}

const char *tf_upstream_tenant_name(const tf_upstream_t *u, uint32_t tenant)
{
    return tenant < u->ntenants ? u->tenants[tenant].conf->name : NULL;
}

const tf_conf_tenant_t *tf_upstream_tenant_conf(const tf_upstream_t *u, uint32_t tenant)
{
    return u->tenants[tenant].conf;
}

size_t tf_upstream_tenant_count(const tf_upstream_t *u)
{
    return u->ntenants;
}

uint32_t tf_upstream_route_path(const tf_upstream_t *u, uint32_t tenant, const char *npath,
                                size_t len)
{
    const tenant_t *t = &u->tenants[tenant];
    return t->table != NULL ? tf_http_routes_match(t->table, npath, len) : 0;
}

const tf_conf_route_t *tf_upstream_route_conf(const tf_upstream_t *u, uint32_t tenant,
                                              uint32_t route)
{
    return &u->tenants[tenant].conf->routes[route];
}

tf_pick_t tf_upstream_pick(tf_upstream_t *u, uint32_t tenant, uint32_t route,
                           const tf_pick_hint_t *hint, uint64_t now_ms)
{
    return tf_balancer_pick(&u->tenants[tenant].routes[route].bal, hint, now_ms);
}

void tf_upstream_end(tf_upstream_t *u, uint32_t tenant, uint32_t route, uint32_t backend,
                     bool tunnel)
{
    tf_balancer_end(&u->tenants[tenant].routes[route].bal, backend, tunnel);
}

size_t tf_upstream_backend_count(const tf_upstream_t *u, uint32_t tenant, uint32_t route)
{
    return u->tenants[tenant].routes[route].nbackends;
}

const tf_backend_t *tf_upstream_backend(const tf_upstream_t *u, uint32_t tenant, uint32_t route,
                                        uint32_t backend)
{
    return &u->tenants[tenant].routes[route].backends[backend];
}
