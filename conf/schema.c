/* The configuration schema (SPEC §3): one table per mapping, each row giving
 * a key's name, type, bounds, default, where it is stored and its extra
 * check. The loader in load.c is driven entirely by these tables; a new key
 * is a new row here plus a field in struct tf_conf. */
#include "conf/conf_internal.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define C(f) offsetof(struct tf_conf, f)

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const unknown_sni[] = {"default", "reject", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL};
static const char *const modes[] = {"http", "tcp", NULL};
/* tf_conf_send_proxy_t's order. */
static const char *const send_proxy_values[] = {"false", "v1", "v2", NULL};

static const tf_conf__key_t log_keys[] = {
    {.name = "level",
     .type = TF_CONF__T_ENUM,
     .offset = C(log.level),
     .enums = log_levels,
     .def = "info"},
    {.name = "access",
     .type = TF_CONF__T_STRING,
     .offset = C(log_access),
     .flags = TF_CONF__F_LOCATED,
     .def = "stdout",
     .check = tf_conf__check_access_log},
    {.name = "format",
     .type = TF_CONF__T_ENUM,
     .offset = C(log.format),
     .enums = log_formats,
     .def = "text"},
    {.name = NULL},
};

static const tf_conf__key_t proxy_protocol_keys[] = {
    {.name = "enabled",
     .type = TF_CONF__T_BOOL,
     .offset = C(proxy_protocol.enabled),
     .flags = TF_CONF__F_SEEN,
     .seen_offset = C(proxy_protocol_seen),
     .def = "false"},
    {.name = "from", .type = TF_CONF__T_CIDR_LIST, .offset = C(proxy_protocol.from)},
    {.name = NULL},
};

static const tf_conf__key_t listen_keys[] = {
    {.name = "https",
     .type = TF_CONF__T_ADDR_LIST,
     .offset = C(listen_https),
     .flags = TF_CONF__F_REQUIRED | TF_CONF__F_LISTENER | TF_CONF__F_NONEMPTY,
     .example = "https: [\"0.0.0.0:443\", \"[::]:443\"]"},
    {.name = "http",
     .type = TF_CONF__T_ADDR_LIST,
     .offset = C(listen_http),
     .flags = TF_CONF__F_LISTENER,
     .example = "http: [\"0.0.0.0:80\"]"},
    {.name = "proxy_protocol", .type = TF_CONF__T_SECTION, .sub = proxy_protocol_keys},
    {.name = NULL},
};

static const tf_conf__key_t admin_keys[] = {
    {.name = "listen",
     .type = TF_CONF__T_ADDR,
     .offset = C(admin.listen),
     .flags = TF_CONF__F_LISTENER,
     .def = "127.0.0.1:9443"},
    {.name = "token_file",
     .type = TF_CONF__T_STRING,
     .offset = C(admin.token_file),
     .flags = TF_CONF__F_NULLABLE | TF_CONF__F_LOCATED,
     .check = tf_conf__check_nonempty},
    {.name = NULL},
};

static const char *const key_types[] = {"ecdsa", "rsa", NULL};

static const tf_conf__key_t eab_keys[] = {
    {.name = "kid",
     .type = TF_CONF__T_STRING,
     .offset = C(acme.eab.kid),
     .flags = TF_CONF__F_NULLABLE | TF_CONF__F_SEEN,
     .seen_offset = C(eab_seen[0]),
     .check = tf_conf__check_nonempty},
    {.name = "hmac_key_file",
     .type = TF_CONF__T_STRING,
     .offset = C(acme.eab.hmac_key_file),
     .flags = TF_CONF__F_NULLABLE | TF_CONF__F_LOCATED | TF_CONF__F_SEEN,
     .seen_offset = C(eab_seen[1]),
     .check = tf_conf__check_nonempty},
    {.name = NULL},
};

/* acme (SPEC §13). challenges has no .def: a list default is one item, so
 * tf_conf__finish_acme() sets both when the key is absent. */
static const tf_conf__key_t acme_keys[] = {
    {.name = "webroot",
     .type = TF_CONF__T_STRING,
     .offset = C(acme.webroot),
     .flags = TF_CONF__F_NULLABLE | TF_CONF__F_LOCATED,
     .def = "/var/lib/tlsfront/acme",
     .check = tf_conf__check_abs_path},
    {.name = "directory",
     .type = TF_CONF__T_STRING,
     .offset = C(acme.directory),
     .flags = TF_CONF__F_NULLABLE,
     .check = tf_conf__check_acme_directory},
    {.name = "email",
     .type = TF_CONF__T_STRING,
     .offset = C(acme.email),
     .flags = TF_CONF__F_NULLABLE,
     .check = tf_conf__check_email},
    {.name = "ca_file",
     .type = TF_CONF__T_STRING,
     .offset = C(acme.ca_file),
     .flags = TF_CONF__F_NULLABLE | TF_CONF__F_LOCATED,
     .check = tf_conf__check_nonempty},
    {.name = "storage",
     .type = TF_CONF__T_STRING,
     .offset = C(acme.storage),
     .flags = TF_CONF__F_LOCATED,
     .def = "/var/lib/tlsfront/acme-state",
     .check = tf_conf__check_abs_path},
    {.name = "key_type",
     .type = TF_CONF__T_ENUM,
     .offset = C(acme.key_type),
     .enums = key_types,
     .def = "ecdsa"},
    {.name = "renew_days",
     .type = TF_CONF__T_UINT,
     .offset = C(acme.renew_days),
     .size = sizeof(uint32_t),
     .min = 1,
     .max = TF_CONF_RENEW_DAYS_MAX,
     .def = "30"},
    {.name = "challenges", .type = TF_CONF__T_CHALLENGES, .offset = C(acme.challenges)},
    {.name = "eab", .type = TF_CONF__T_SECTION, .sub = eab_keys},
    {.name = NULL},
};

static const tf_conf__key_t tls_keys[] = {
    {.name = "certs",
     .type = TF_CONF__T_STR_LIST,
     .offset = C(tls.certs),
     .flags = TF_CONF__F_LOCATED,
     .def = "/etc/tlsfront/certs",
     .check = tf_conf__check_nonempty},
    {.name = "default_cert",
     .type = TF_CONF__T_STRING,
     .offset = C(tls.default_cert),
     .flags = TF_CONF__F_LOCATED,
     .def = "/etc/tlsfront/certs/system.pem",
     .check = tf_conf__check_nonempty},
    {.name = "unknown_sni",
     .type = TF_CONF__T_ENUM,
     .offset = C(tls.unknown_sni),
     .enums = unknown_sni,
     .def = "default"},
    {.name = "min_version",
     .type = TF_CONF__T_ENUM,
     .offset = C(tls.min_version),
     .enums = tls_versions,
     .def = "1.2"},
    {.name = "ticket_keys_file",
     .type = TF_CONF__T_STRING,
     .offset = C(tls.ticket_keys_file),
     .flags = TF_CONF__F_NULLABLE | TF_CONF__F_LOCATED,
     .check = tf_conf__check_nonempty},
    {.name = NULL},
};

#define TIMEOUT(n, d)                                                                              \
    {                                                                                              \
        .name = #n, .type = TF_CONF__T_DURATION, .offset = C(timeouts.n##_ms), .min = 1,           \
        .max = TF_CONF_TIMEOUT_MAX_MS, .def = d                                                    \
    }

static const tf_conf__key_t timeout_keys[] = {
    TIMEOUT(handshake, "10s"), TIMEOUT(request_header, "10s"),
    TIMEOUT(idle, "60s"),      TIMEOUT(connect, "5s"),
    TIMEOUT(response, "60s"),  TIMEOUT(tunnel, "1h"),
    TIMEOUT(drain, "30s"),     {.name = NULL},
};

#define PER_CLIENT(n, f)                                                                           \
    {                                                                                              \
        .name = #n, .type = TF_CONF__T_UINT, .offset = C(limits.per_client_##f),                   \
        .size = sizeof(uint32_t), .min = 0, .max = TF_CONF_PER_CLIENT_MAX, .def = "0"              \
    }

static const tf_conf__key_t per_client_keys[] = {
    PER_CLIENT(connections, connections),
    PER_CLIENT(requests_per_second, rps),
    PER_CLIENT(burst, burst),
    {.name = NULL},
};

static const tf_conf__key_t limit_keys[] = {
    {.name = "max_connections",
     .type = TF_CONF__T_UINT,
     .offset = C(limits.max_connections),
     .size = sizeof(uint32_t),
     .min = 1,
     .max = TF_CONF_MAX_CONNECTIONS_MAX,
     .def = "10000"},
    {.name = "max_header_bytes",
     .type = TF_CONF__T_UINT,
     .offset = C(limits.max_header_bytes),
     .size = sizeof(uint32_t),
     .min = TF_CONF_HEADER_BYTES_MIN,
     .max = TF_CONF_HEADER_BYTES_MAX,
     .def = "32768"},
    {.name = "max_header_fields",
     .type = TF_CONF__T_UINT,
     .offset = C(limits.max_header_fields),
     .size = sizeof(uint32_t),
     .min = TF_CONF_HEADER_FIELDS_MIN,
     .max = TF_CONF_HEADER_FIELDS_MAX,
     .def = "100"},
    {.name = "per_client", .type = TF_CONF__T_SECTION, .sub = per_client_keys},
    {.name = NULL},
};

/* http2 (SPEC §12). */
static const tf_conf__key_t http2_keys[] = {
    {.name = "enabled", .type = TF_CONF__T_BOOL, .offset = C(http2.enabled), .def = "true"},
    {.name = "max_concurrent_streams",
     .type = TF_CONF__T_UINT,
     .offset = C(http2.max_concurrent_streams),
     .size = sizeof(uint32_t),
     .min = 1,
     .max = TF_CONF_H2_STREAMS_MAX,
     .def = "100"},
    {.name = NULL},
};

/* ---- tenants and routes (SPEC §3, §11) ----------------------------------
 * Both walk into a tf_conf__src_t; the rows they share are the ROUTE_KEYS
 * macro, so a tenant's key and a route's key cannot drift apart. */

#define S(f) offsetof(tf_conf__src_t, f)
#define SEEN(rk) .flags = TF_CONF__F_SEEN, .seen_offset = S(seen[TF_CONF__RK_##rk])

static const char *const balances[] = {"round_robin", "least_conn", "source", "cookie", NULL};

const char *tf_conf_balance_name(tf_conf_balance_t b)
{
    return (size_t)b < sizeof balances / sizeof balances[0] - 1 ? balances[b] : "round_robin";
}
static const char *const route_modes[] = {"http", "websocket", NULL};
static const char *const redirect_statuses[] = {"301", "302", "307", "308", NULL};

static const tf_conf__key_t health_keys[] = {
    {.name = "path",
     .type = TF_CONF__T_STRING,
     .offset = S(r.health.path),
     .def = "/health",
     .check = tf_conf__check_url_path},
    {.name = "interval",
     .type = TF_CONF__T_DURATION,
     .offset = S(r.health.interval_ms),
     SEEN(HEALTH_INTERVAL),
     .min = 100,
     .max = 3600 * 1000,
     .def = "5s"},
    {.name = "timeout",
     .type = TF_CONF__T_DURATION,
     .offset = S(r.health.timeout_ms),
     SEEN(HEALTH_TIMEOUT),
     .min = 100,
     .max = 3600 * 1000,
     .def = "2s"},
    {.name = "rise",
     .type = TF_CONF__T_UINT,
     .offset = S(r.health.rise),
     .size = sizeof(uint32_t),
     .min = 1,
     .max = 100,
     .def = "2"},
    {.name = "fall",
     .type = TF_CONF__T_UINT,
     .offset = S(r.health.fall),
     .size = sizeof(uint32_t),
     .min = 1,
     .max = 100,
     .def = "3"},
    {.name = "status", .type = TF_CONF__T_STATUS_RANGE, .offset = S(status), .def = "200-399"},
    {.name = "host",
     .type = TF_CONF__T_STRING,
     .offset = S(r.health.host),
     .flags = TF_CONF__F_NULLABLE,
     .check = tf_conf__check_health_host},
    {.name = NULL},
};

#define ROUTE_TIMEOUT(n, rk)                                                                       \
    {                                                                                              \
        .name = #n, .type = TF_CONF__T_DURATION, .offset = S(r.timeouts.n##_ms), SEEN(rk),         \
        .min = 1, .max = TF_CONF_TIMEOUT_MAX_MS                                                    \
    }

static const tf_conf__key_t route_timeout_keys[] = {
    ROUTE_TIMEOUT(connect, TO_CONNECT),
    ROUTE_TIMEOUT(response, TO_RESPONSE),
    ROUTE_TIMEOUT(idle, TO_IDLE),
    ROUTE_TIMEOUT(tunnel, TO_TUNNEL),
    {.name = NULL},
};

static const tf_conf__key_t request_rule_keys[] = {
    {.name = "set", .type = TF_CONF__T_HEADER_SET, .offset = S(r.request_headers)},
    {.name = "remove", .type = TF_CONF__T_HEADER_NAMES, .offset = S(r.request_headers.remove)},
    {.name = NULL},
};

static const tf_conf__key_t response_rule_keys[] = {
    {.name = "set", .type = TF_CONF__T_HEADER_SET, .offset = S(r.response_headers)},
    {.name = "remove", .type = TF_CONF__T_HEADER_NAMES, .offset = S(r.response_headers.remove)},
    {.name = NULL},
};

static const tf_conf__key_t header_keys[] = {
    {.name = "request", .type = TF_CONF__T_SECTION, .sub = request_rule_keys},
    {.name = "response", .type = TF_CONF__T_SECTION, .sub = response_rule_keys},
    {.name = NULL},
};

static const tf_conf__key_t respond_keys[] = {
    {.name = "status",
     .type = TF_CONF__T_UINT,
     .offset = S(r.respond_status),
     .size = sizeof(uint16_t),
     .min = 200,
     .max = 599,
     .def = "200"},
    {.name = "content_type",
     .type = TF_CONF__T_STRING,
     .offset = S(r.respond_content_type),
     .def = "text/plain; charset=utf-8",
     .check = tf_conf__check_header_value},
    {.name = "body", .type = TF_CONF__T_STRING, .offset = S(r.respond_body), .def = ""},
    {.name = NULL},
};

static const tf_conf__key_t backend_keys[] = {
    {.name = "address",
     .type = TF_CONF__T_ADDR,
     .offset = offsetof(tf_conf_backend_t, addr),
     .flags = TF_CONF__F_REQUIRED | TF_CONF__F_UNIX,
     .example = "address: \"10.0.0.5:8080\""},
    {.name = "weight",
     .type = TF_CONF__T_UINT,
     .offset = offsetof(tf_conf_backend_t, weight),
     .size = sizeof(uint16_t),
     .min = 1,
     .max = TF_CONF_WEIGHT_MAX,
     .def = "1",
     .check = tf_conf__check_weight},
    {.name = "backup", .type = TF_CONF__T_BOOL, .offset = offsetof(tf_conf_backend_t, backup)},
    {.name = "max_conns",
     .type = TF_CONF__T_UINT,
     .offset = offsetof(tf_conf_backend_t, max_conns),
     .size = sizeof(uint32_t),
     .min = 0,
     .max = TF_CONF_MAX_CONNS_MAX,
     .def = "0"},
    /* SPEC §14; policy.c resolves tls_verify and checks the keys together. */
    {.name = "tls", .type = TF_CONF__T_BOOL, .offset = offsetof(tf_conf_backend_t, tls)},
    {.name = "tls_verify",
     .type = TF_CONF__T_STRING,
     .offset = offsetof(tf_conf_backend_t, tls_verify),
     .def = "system",
     .check = tf_conf__check_nonempty,
     .example = "tls_verify: /etc/tlsfront/backend-ca.pem"},
    {.name = "tls_sni",
     .type = TF_CONF__T_STRING,
     .offset = offsetof(tf_conf_backend_t, sni),
     .flags = TF_CONF__F_NULLABLE,
     .check = tf_conf__check_sni,
     .example = "tls_sni: app.internal"},
    {.name = NULL},
};

/* The keys a tenant and a route share (SPEC §11); a route inherits each one
 * it does not write. */
#define ROUTE_KEYS                                                                                 \
    {.name = "backends",                                                                           \
     .type = TF_CONF__T_BACKENDS,                                                                  \
     .offset = S(r.backends),                                                                      \
     SEEN(BACKENDS),                                                                               \
     .sub = backend_keys,                                                                          \
     .example = "backends: [\"10.0.0.5:8080\"]"},                                                  \
        {.name = "balance",                                                                        \
         .type = TF_CONF__T_ENUM,                                                                  \
         .offset = S(r.balance),                                                                   \
         SEEN(BALANCE),                                                                            \
         .enums = balances,                                                                        \
         .def = "round_robin"},                                                                    \
        {.name = "cookie",                                                                         \
         .type = TF_CONF__T_STRING,                                                                \
         .offset = S(r.cookie),                                                                    \
         SEEN(COOKIE),                                                                             \
         .def = "TFSRV",                                                                           \
         .check = tf_conf__check_cookie_name},                                                     \
        {.name = "health",                                                                         \
         .type = TF_CONF__T_SECTION,                                                               \
         .flags = TF_CONF__F_OPTIONAL | TF_CONF__F_SEEN,                                           \
         .seen_offset = S(seen[TF_CONF__RK_HEALTH]),                                               \
         .present_offset = S(r.health.enabled),                                                    \
         .sub = health_keys},                                                                      \
        {.name = "timeouts", .type = TF_CONF__T_SECTION, .sub = route_timeout_keys},               \
        {.name = "headers", .type = TF_CONF__T_SECTION, SEEN(HEADERS), .sub = header_keys},        \
        {.name = "allow", .type = TF_CONF__T_CIDR_LIST, .offset = S(r.allow), SEEN(ALLOW)},        \
        {.name = "errors", .type = TF_CONF__T_ERROR_PAGES, .offset = S(r.errors), SEEN(ERRORS)},   \
        {.name = "redirect",                                                                       \
         .type = TF_CONF__T_STRING,                                                                \
         .offset = S(r.redirect),                                                                  \
         SEEN(REDIRECT),                                                                           \
         .check = tf_conf__check_redirect},                                                        \
        {.name = "redirect_status",                                                                \
         .type = TF_CONF__T_ENUM,                                                                  \
         .offset = S(redirect_status),                                                             \
         SEEN(REDIRECT_STATUS),                                                                    \
         .enums = redirect_statuses,                                                               \
         .def = "308"},                                                                            \
    {                                                                                              \
        .name = "respond", .type = TF_CONF__T_SECTION, SEEN(RESPOND), .sub = respond_keys          \
    }

static const tf_conf__key_t route_keys[] = {
    {.name = "path",
     .type = TF_CONF__T_STRING,
     .offset = S(r.path),
     .flags = TF_CONF__F_REQUIRED | TF_CONF__F_SEEN,
     .seen_offset = S(seen[TF_CONF__RK_PATH]),
     .check = tf_conf__check_route_path,
     .example = "path: /api/"},
    ROUTE_KEYS,
    {.name = "strip_prefix", .type = TF_CONF__T_BOOL, .offset = S(r.strip_prefix)},
    {.name = "mode",
     .type = TF_CONF__T_ENUM,
     .offset = S(mode),
     SEEN(MODE),
     .enums = route_modes,
     .def = "http"},
    {.name = NULL},
};

static const tf_conf__key_t tenant_keys[] = {
    {.name = "hosts",
     .type = TF_CONF__T_HOST_LIST,
     .offset = S(hosts),
     .flags = TF_CONF__F_REQUIRED | TF_CONF__F_NONEMPTY,
     .example = "hosts: [\"app.example.com\"]"},
    {.name = "mode", .type = TF_CONF__T_ENUM, .offset = S(mode), .enums = modes, .def = "http"},
    ROUTE_KEYS,
    {.name = "routes",
     .type = TF_CONF__T_ROUTES,
     .offset = S(routes),
     SEEN(ROUTES),
     .sub = route_keys,
     .example = "routes: [{path: /api/, backends: [\"10.0.0.9:8080\"]}]"},
    {.name = "acme", .type = TF_CONF__T_BOOL, .offset = S(acme), SEEN(ACME)},
    {.name = "send_proxy",
     .type = TF_CONF__T_ENUM,
     .offset = S(send_proxy),
     .enums = send_proxy_values,
     .def = "false"},
    {.name = NULL},
};

static const tf_conf__key_t root_keys[] = {
    {.name = "workers",
     .type = TF_CONF__T_WORKERS,
     .offset = C(workers),
     .size = sizeof(unsigned),
     .min = 1,
     .max = TF_CONF_WORKERS_MAX,
     .def = "1"},
    {.name = "user",
     .type = TF_CONF__T_STRING,
     .offset = C(user),
     .flags = TF_CONF__F_NULLABLE | TF_CONF__F_LOCATED,
     .check = tf_conf__check_nonempty},
    {.name = "log", .type = TF_CONF__T_SECTION, .sub = log_keys},
    {.name = "listen", .type = TF_CONF__T_SECTION, .sub = listen_keys},
    {.name = "admin",
     .type = TF_CONF__T_SECTION,
     .flags = TF_CONF__F_OPTIONAL,
     .present_offset = C(admin.enabled),
     .sub = admin_keys},
    {.name = "acme", .type = TF_CONF__T_SECTION, .sub = acme_keys},
    {.name = "tls", .type = TF_CONF__T_SECTION, .sub = tls_keys},
    {.name = "timeouts", .type = TF_CONF__T_SECTION, .sub = timeout_keys},
    {.name = "limits", .type = TF_CONF__T_SECTION, .sub = limit_keys},
    {.name = "http2", .type = TF_CONF__T_SECTION, .sub = http2_keys},
    {.name = "tenants",
     .type = TF_CONF__T_TENANTS,
     .flags = TF_CONF__F_REQUIRED | TF_CONF__F_NONEMPTY,
     .sub = tenant_keys,
     .example = "tenants: { app: { hosts: [\"app.example.com\"], backends: "
                "[\"127.0.0.1:8080\"] } }"},
    {.name = NULL},
};

const tf_conf__key_t *tf_conf__schema_root(void)
{
    return root_keys;
}

size_t tf_conf__schema_count(const tf_conf__key_t *keys)
{
    size_t n = 0;
    while (keys[n].name != NULL)
        n++;
    return n;
}

const tf_conf__key_t *tf_conf__schema_find(const tf_conf__key_t *keys, const char *name, size_t len)
{
    for (const tf_conf__key_t *k = keys; k->name != NULL; k++) {
        if (strlen(k->name) == len && memcmp(k->name, name, len) == 0)
            return k;
    }
    return NULL;
}

static size_t min3(size_t a, size_t b, size_t c)
{
    size_t m = a < b ? a : b;
    return m < c ? m : c;
}

size_t tf_conf__levenshtein(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    /* Keys are short; anything longer cannot be a near miss of one. */
    if (lb > 63 || la > 63 || (la > lb ? la - lb : lb - la) > cap)
        return cap + 1;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0], best = i;
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            row[j] = min3(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1]));
            diag = up;
            best = best < row[j] ? best : row[j];
        }
        if (best > cap)
            return cap + 1;
    }
    return row[lb];
}

const char *tf_conf__suggest(const tf_conf__key_t *keys, const char *name)
{
    /* Keys are lower case: compare case-insensitively so "TLS" finds "tls". */
    char low[64];
    size_t n = strlen(name);
    if (n >= sizeof low)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    const char *best = NULL;
    size_t dist = 3;
    for (const tf_conf__key_t *k = keys; k->name != NULL; k++) {
        size_t d = tf_conf__levenshtein(low, k->name, 2);
        if (d < dist) {
            dist = d;
            best = k->name;
        }
    }
    return best;
}

/* Searches SUB for NAME and writes "PREFIX.NAME" into OUT when found. */
static bool find_in(const tf_conf__key_t *sub, const char *prefix, const char *name, char *out,
                    size_t len)
{
    if (tf_conf__schema_find(sub, name, strlen(name)) == NULL)
        return false;
    snprintf(out, len, "%s.%s", prefix, name);
    return true;
}

bool tf_conf__schema_home(const char *name, char *out, size_t len)
{
    for (const tf_conf__key_t *k = root_keys; k->name != NULL; k++) {
        if (k->type == TF_CONF__T_SECTION && find_in(k->sub, k->name, name, out, len))
            return true;
        if (k->type == TF_CONF__T_TENANTS && find_in(k->sub, "tenants.NAME", name, out, len))
            return true;
    }
    return false;
}
