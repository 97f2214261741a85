/* GET /backends and POST /backends/TENANT/ADDRESS (SPEC §8): the
 * configuration in service's routes and, for each backend, its
 * process-wide state from the registry (proxy/net/backends.h). */
#include "proxy/ops/admin_internal.h"

#include <ctype.h>

/* Percent-decodes the N bytes at S into OUT (CAP bytes, NUL-terminated);
 * false on a bad escape, an escaped NUL or no room. An address such as
 * "unix:/run/app.sock" has to be sent with its slashes as %2F. */
static bool decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o + 1 >= cap)
            return false;
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
            !isxdigit((unsigned char)s[i + 2]))
            return false;
        char hex[3] = {s[i + 1], s[i + 2], '\0'};
        char ch = (char)strtol(hex, NULL, 16);
        if (ch == '\0')
            return false;
        out[o++] = ch;
        i += 2;
    }
    out[o] = '\0';
    return true;
}

/* ---- GET /backends --------------------------------------------------------- */

static json_t *requests_json(const uint64_t requests[5])
{
    json_t *o = json_object();
    int rc = 0;
    char key[4] = "1xx";
    for (unsigned c = 0; c < 5; c++) {
        key[0] = (char)('1' + c);
        rc |= json_object_set_new(o, key, json_integer((json_int_t)requests[c]));
    }
    return tf_json_checked(o, rc);
}

static json_t *check_json(const tf_bstate_view_t *v)
{
    if (!v->checked)
        return json_null();
    json_t *o = json_object();
    int rc = json_object_set_new(o, "ok", json_boolean(v->check_ok));
    rc |= json_object_set_new(o, "detail", tf_json_text(v->check_detail));
    rc |= json_object_set_new(o, "time", tf_json_time((time_t)(v->check_wall_ms / 1000)));
    return tf_json_checked(o, rc);
}

/* One registry entry's state, kept in a map under "TENANT ADDRESS" (a
 * space cannot be in either) until the routes are walked. */
static void view_json(const tf_bstate_view_t *v, void *arg)
{
    json_t *map = arg;
    char key[600];
    if (snprintf(key, sizeof key, "%s %s", v->tenant, v->address) >= (int)sizeof key)
        return;
    json_t *o = json_object();
    int rc = json_object_set_new(o, "state", json_string(tf_bstate_state_name(v->state)));
    rc |= json_object_set_new(o, "active_requests", json_integer((json_int_t)v->active_requests));
    rc |= json_object_set_new(o, "active_tunnels", json_integer((json_int_t)v->active_tunnels));
    rc |= json_object_set_new(o, "requests", requests_json(v->requests));
    rc |= json_object_set_new(o, "failures", json_integer((json_int_t)v->failures));
    rc |= json_object_set_new(o, "last_check", check_json(v));
    json_object_set_new(map, key, tf_json_checked(o, rc));
}

static json_t *backend_json(const char *tenant, const tf_conf_backend_t *b, json_t *states)
{
    char key[600];
    snprintf(key, sizeof key, "%s %s", tenant, b->addr.text);
    json_t *o = json_object();
    int rc = json_object_set_new(o, "address", json_string(b->addr.text));
    rc |= json_object_set_new(o, "weight", json_integer(b->weight));
    rc |= json_object_set_new(o, "backup", json_boolean(b->backup));
    rc |= json_object_set_new(o, "max_conns", json_integer(b->max_conns));
    json_t *st = json_object_get(states, key);
    if (st != NULL)
        rc |= json_object_update(o, st);
    else
        rc |= json_object_set_new(o, "state", json_string("unknown"));
    return tf_json_checked(o, rc);
}

static json_t *route_json(const tf_conf_tenant_t *t, const tf_conf_route_t *rt, json_t *states)
{
    json_t *o = json_object(), *list = json_array();
    int rc = json_object_set_new(o, "tenant", json_string(t->name));
    rc |= json_object_set_new(o, "route", json_string(rt->path));
    rc |= json_object_set_new(o, "balance", json_string(tf_conf_balance_name(rt->balance)));
    for (size_t i = 0; i < rt->backends.count; i++)
        rc |= json_array_append_new(list, backend_json(t->name, &rt->backends.items[i], states));
    rc |= json_object_set_new(o, "backends", list);
    return tf_json_checked(o, rc);
}

json_t *tf_admin__backends_json(const tf_conf_t *conf, tf_backends_t *reg)
{
    json_t *states = json_object(), *list = json_array();
    if (states == NULL || list == NULL) {
        json_decref(states);
        json_decref(list);
        return NULL;
    }
    tf_backends_each(reg, view_json, states);
    int rc = 0;
    for (size_t i = 0; i < tf_conf_tenant_count(conf); i++) {
        const tf_conf_tenant_t *t = tf_conf_tenant(conf, i);
        for (size_t r = 0; r < t->nroutes; r++) {
            if (t->routes[r].kind == TF_CONF_ROUTE_BACKENDS)
                rc |= json_array_append_new(list, route_json(t, &t->routes[r], states));
        }
    }
    json_decref(states);
    return tf_json_checked(list, rc);
}

/* ---- POST /backends/TENANT/ADDRESS ----------------------------------------- */

/* Whether the configuration in service names ADDRESS among TENANT's
 * backends (any route). */
static bool configured(const tf_conf_t *conf, const char *tenant, const char *address)
{
    const tf_conf_tenant_t *t = tf_conf_tenant_find(conf, tenant);
    if (t == NULL)
        return false;
    for (size_t r = 0; r < t->nroutes; r++) {
        const tf_conf_backend_list_t *l = &t->routes[r].backends;
        for (size_t i = 0; i < l->count; i++) {
            if (strcmp(l->items[i].addr.text, address) == 0)
                return true;
        }
    }
    return false;
}

/* The body's {"state": ...}: 0 with *out set, or -1. */
static int parse_state(const char *body, size_t len, tf_badmin_t *out)
{
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *s = json_is_object(doc) ? json_string_value(json_object_get(doc, "state")) : NULL;
    int rc = -1;
    if (s != NULL && json_object_size(doc) == 1) {
        rc = 0;
        if (strcmp(s, "drain") == 0)
            *out = TF_BADMIN_DRAIN;
        else if (strcmp(s, "maint") == 0)
            *out = TF_BADMIN_MAINT;
        else if (strcmp(s, "ready") == 0)
            *out = TF_BADMIN_READY;
        else
            rc = -1;
    }
    json_decref(doc);
    return rc;
}

void tf_admin__post_backend(admin_conn_t *c)
{
    tf_admin_t *a = c->admin;
    const char *rest = c->target + strlen("/backends/");
    const char *slash = strchr(rest, '/');
    char tenant[256], address[300];
    if (slash == NULL || !decode(rest, (size_t)(slash - rest), tenant, sizeof tenant) ||
        !decode(slash + 1, strlen(slash + 1), address, sizeof address)) {
        tf_admin__respond_text(c, 404, NULL, "expected /backends/TENANT/ADDRESS\n");
        return;
    }
    tf_badmin_t want;
    if (parse_state(c->buf + c->head_len, c->body_len, &want) != 0) {
        tf_admin__respond_text(c, 400, NULL,
                               "expected a JSON body {\"state\": \"drain\" | \"maint\" | "
                               "\"ready\"}\n");
        return;
    }
    tf_bstate_state_t now;
    if (!configured(tf_reload_conf(a->reload), tenant, address) ||
        tf_backends_set_admin(tf_reload_backends(a->reload), tenant, address, want, &now) != 0) {
        tf_admin__respond_text(c, 404, NULL, "no such backend in the configuration in service\n");
        return;
    }
    TF_LOG(TF_LOG_INFO, "admin: tenant '%s' backend %s set to %s (now %s)", tenant, address,
           want == TF_BADMIN_DRAIN ? "drain" : want == TF_BADMIN_MAINT ? "maint" : "ready",
           tf_bstate_state_name(now));
    json_t *o = json_object();
    int rc = json_object_set_new(o, "tenant", tf_json_text(tenant));
    rc |= json_object_set_new(o, "address", tf_json_text(address));
    rc |= json_object_set_new(o, "state", json_string(tf_bstate_state_name(now)));
    tf_admin__respond_json(c, 200, tf_json_checked(o, rc));
}
