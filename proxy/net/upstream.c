/* See upstream.h. Hosts live in one open-addressing hash table (at most half
 * full) keyed by the pattern as the configuration normalized it, so a lookup
 * is two probes (exact, then "*.rest") whatever the number of tenants. */
#include "proxy/net/upstream.h"

#include "common/err.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_MAX 256

typedef struct {
    const tf_conf_tenant_t *conf;
    tf_backend_t *backends;
    size_t nbackends;
    size_t next; /* round-robin position */
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
    /* The configuration the table was built from: tenant names and settings
     * point into it, so it lives as long as the table does. */
    tf_conf_t *conf;
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

static int resolve(const tf_conf_addr_t *a, tf_backend_t *b, char *err, size_t errlen,
                   const char *tenant)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)a->port);
    if (a->family != TF_CONF_ADDR_NAME)
        hints.ai_flags |= AI_NUMERICHOST;
    int rc = getaddrinfo(a->host, port, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof b->addr) {
        snprintf(err, errlen,
                 "tenant '%s': backend '%s': cannot resolve: %s; fix the name or use an "
                 "address",
                 tenant, a->text, rc != 0 ? gai_strerror(rc) : "no address");
        if (res != NULL)
            freeaddrinfo(res);
        return TF_EINVAL;
    }
    memcpy(&b->addr, res->ai_addr, res->ai_addrlen);
    b->text = a->text;
    b->down_until_ms = 0;
    freeaddrinfo(res);
    return 0;
}

static int tenant_init(tenant_t *t, const tf_conf_tenant_t *ct, char *err, size_t errlen)
{
    t->conf = ct;
    t->backends = calloc(ct->backends.count, sizeof *t->backends);
    if (t->backends == NULL)
        return TF_ENOMEM;
    t->nbackends = ct->backends.count;
    for (size_t i = 0; i < t->nbackends; i++) {
        int rc = resolve(&ct->backends.items[i], &t->backends[i], err, errlen, ct->name);
        if (rc != 0)
            return rc;
    }
    return 0;
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

int tf_upstream_new(const tf_conf_t *conf, tf_upstream_t **out, char *err, size_t errlen)
{
    int rc = TF_ENOMEM;
    tf_upstream_t *u = calloc(1, sizeof *u);
    if (u == NULL)
        goto out;
    u->catch_all = TF_UPSTREAM_NONE;
    u->refs = 1;
    u->conf = tf_conf_ref((tf_conf_t *)conf);
    u->ntenants = tf_conf_tenant_count(conf);
    u->tenants = calloc(u->ntenants, sizeof *u->tenants);
    if (u->tenants == NULL)
        goto out;
    for (size_t i = 0; i < u->ntenants; i++) {
        rc = tenant_init(&u->tenants[i], tf_conf_tenant(conf, i), err, errlen);
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
        free(u->tenants[i].backends);
    free(u->tenants);
    free(u->slots);
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

uint32_t tf_upstream_pick(tf_upstream_t *u, uint32_t tenant, uint64_t now_ms)
{
    tenant_t *t = &u->tenants[tenant];
    size_t soonest = SIZE_MAX;
    for (size_t k = 0; k < t->nbackends; k++) {
        size_t i = (t->next + k) % t->nbackends;
        const tf_backend_t *b = &t->backends[i];
        if (b->unhealthy)
            continue;
        if (b->down_until_ms <= now_ms) {
            t->next = (i + 1) % t->nbackends;
            return (uint32_t)i;
        }
        if (soonest == SIZE_MAX || b->down_until_ms < t->backends[soonest].down_until_ms)
            soonest = i;
    }
    /* Every healthy backend is marked down: try the one due back first
     * rather than refuse everyone for the rest of the period, so a backend
     * that restarted serves at once (nginx does the same). A connection
     * tries each backend once at most, so a dead tenant still fails fast. */
    return soonest != SIZE_MAX ? (uint32_t)soonest : TF_UPSTREAM_NONE;
}

size_t tf_upstream_tenant_count(const tf_upstream_t *u)
{
    return u->ntenants;
}

bool tf_upstream_set_healthy(tf_upstream_t *u, uint32_t tenant, uint32_t backend, bool healthy)
{
    tf_backend_t *b = &u->tenants[tenant].backends[backend];
    bool changed = b->unhealthy == healthy;
    b->unhealthy = !healthy;
    if (healthy && changed)
        b->down_until_ms = 0;
    return changed;
}

size_t tf_upstream_backend_count(const tf_upstream_t *u, uint32_t tenant)
{
    return u->tenants[tenant].nbackends;
}

const tf_backend_t *tf_upstream_backend(const tf_upstream_t *u, uint32_t tenant, uint32_t backend)
{
    return &u->tenants[tenant].backends[backend];
}

void tf_upstream_mark_down(tf_upstream_t *u, uint32_t tenant, uint32_t backend, uint64_t now_ms)
{
    u->tenants[tenant].backends[backend].down_until_ms = now_ms + TF_UPSTREAM_DOWN_MS;
}

const tf_conf_tenant_t *tf_upstream_tenant_conf(const tf_upstream_t *u, uint32_t tenant)
{
    return u->tenants[tenant].conf;
}
