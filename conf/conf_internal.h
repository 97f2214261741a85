/* Internals of conf/, shared by its files and its tests. Not a public API. */
#ifndef TF_CONF_CONF_INTERNAL_H
#define TF_CONF_CONF_INTERNAL_H

#include "conf/conf.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

/* ---- arena: every string and array of one config lives in it ---------- */

typedef struct tf_conf__chunk tf_conf__chunk_t;

typedef struct {
    tf_conf__chunk_t *head;
} tf_conf__arena_t;

/* Zeroed memory freed with the arena, or NULL when out of memory. */
void *tf_conf__alloc(tf_conf__arena_t *a, size_t size);
/* Copies LEN bytes and adds a NUL; NULL when out of memory. */
char *tf_conf__strndup(tf_conf__arena_t *a, const char *s, size_t len);
void tf_conf__arena_free(tf_conf__arena_t *a);

/* ---- the config object ------------------------------------------------- */

/* Where a key marked TF_CONF__F_SEEN was written. */
typedef struct {
    bool set;
    yaml_mark_t key, value;
} tf_conf__seen_t;

/* Where one value of a key marked TF_CONF__F_LOCATED was written. */
typedef struct tf_conf__where tf_conf__where_t;
struct tf_conf__where {
    const tf_conf__where_t *next;
    const char *key;       /* dotted name, "tls.certs" */
    size_t index;          /* list item; 0 for a single value */
    unsigned line, column; /* 1-based, the start of the scalar */
};

struct tf_conf {
    atomic_uint refs;
    tf_conf__arena_t arena;
    const char *source;
    unsigned workers; /* 0 = auto */
    const char *user;
    tf_conf_log_t log;
    const char *log_access; /* as written: "stdout", "off" or a path */
    tf_conf_addr_list_t listen_https;
    tf_conf_addr_list_t listen_http;
    tf_conf_proxy_protocol_t proxy_protocol;
    tf_conf__seen_t proxy_protocol_seen; /* where listen.proxy_protocol.enabled was written */
    tf_conf_admin_t admin;
    tf_conf_acme_t acme;
    /* Where acme.eab.kid and acme.eab.hmac_key_file were written (both or
     * neither must be set). */
    tf_conf__seen_t eab_seen[2];
    tf_conf_tls_t tls;
    tf_conf_timeouts_t timeouts;
    tf_conf_limits_t limits;
    tf_conf_http2_t http2;
    tf_conf_tenant_t *tenants;
    size_t ntenants;
    const tf_conf__where_t *where;                    /* in the arena, most recent first */
    struct tf_conf__warning *warnings, *last_warning; /* in the arena, in file order */
    size_t nwarnings;
};

/* One load warning (tf_conf_warning()). */
struct tf_conf__warning {
    struct tf_conf__warning *next;
    const char *msg; /* "FILE:LINE:COLUMN: message" */
};

/* ---- schema ------------------------------------------------------------ */

typedef enum {
    TF_CONF__T_SECTION,      /* mapping described by .sub */
    TF_CONF__T_UINT,         /* unsigned, stored in the width given by .size */
    TF_CONF__T_WORKERS,      /* UINT or "auto" (stored as 0) */
    TF_CONF__T_DURATION,     /* uint64_t milliseconds */
    TF_CONF__T_STRING,       /* const char * */
    TF_CONF__T_ENUM,         /* int, index into .enums */
    TF_CONF__T_ADDR,         /* tf_conf_addr_t */
    TF_CONF__T_ADDR_LIST,    /* tf_conf_addr_list_t */
    TF_CONF__T_STR_LIST,     /* tf_conf_str_list_t */
    TF_CONF__T_HOST_LIST,    /* tf_conf_str_list_t of normalized host patterns */
    TF_CONF__T_TENANTS,      /* map name -> tenant described by .sub */
    TF_CONF__T_BOOL,         /* bool: true or false */
    TF_CONF__T_STATUS_RANGE, /* tf_conf__status_t: "200-399" or "200" (100..599) */
    /* Node-valued types, loaded by tf_conf__set_policy() (policy.c, routes.c): */
    TF_CONF__T_BACKENDS,     /* tf_conf_backend_list_t: "HOST:PORT" or maps per .sub */
    TF_CONF__T_HEADER_SET,   /* tf_conf_header_rules_t .set/.nset: map name -> value */
    TF_CONF__T_HEADER_NAMES, /* tf_conf_str_list_t of header names, lower case */
    TF_CONF__T_CIDR_LIST,    /* tf_conf_allow_t */
    TF_CONF__T_ERROR_PAGES,  /* tf_conf_error_pages_t: map status -> file, read at load */
    TF_CONF__T_ROUTES,       /* tf_conf__src_list_t: list of maps per .sub */
    TF_CONF__T_CHALLENGES,   /* unsigned mask of TF_CONF_ACME_*: a non-empty list (acme.c) */
} tf_conf__type_t;

enum {
    TF_CONF__F_REQUIRED = 1 << 0, /* an error when absent */
    TF_CONF__F_NULLABLE = 1 << 1, /* null, ~ and an empty value store NULL */
    TF_CONF__F_LISTENER = 1 << 2, /* addresses: IP literals or localhost only */
    TF_CONF__F_NONEMPTY = 1 << 3, /* lists and maps: at least one entry */
    TF_CONF__F_OPTIONAL = 1 << 4, /* sections: absent or null = disabled */
    TF_CONF__F_LOCATED = 1 << 5,  /* strings, string lists: keep each value's location for
                                     tf_conf_where() (paths checked after loading) */
    TF_CONF__F_UNIX = 1 << 7,     /* addresses: "unix:/path" accepted (backends) */
    TF_CONF__F_SEEN = 1 << 6,     /* record where the key was written in the
                                     tf_conf__seen_t at .seen_offset (inheritance and
                                     checks that span keys) */
};

/* Extra check on a string value after type parsing: 0 or TF_EINVAL with
 * the reason in WHY. */
typedef int (*tf_conf__check_fn)(const char *s, char *why, size_t len);

typedef struct tf_conf__key tf_conf__key_t;
struct tf_conf__key {
    const char *name;
    tf_conf__type_t type;
    unsigned flags;
    size_t offset;             /* of the value in the record (config or tenant) */
    size_t size;               /* UINT: sizeof the field */
    uint64_t min, max;         /* UINT, WORKERS, DURATION bounds */
    const char *def;           /* default as text (lists: one item), NULL = none */
    const char *const *enums;  /* ENUM: NULL-terminated value names */
    const tf_conf__key_t *sub; /* SECTION, TENANTS: keys, ended by a NULL name */
    size_t present_offset;     /* OPTIONAL SECTION: bool set when present */
    size_t seen_offset;        /* F_SEEN: tf_conf__seen_t in the record */
    tf_conf__check_fn check;   /* STRING, STR_LIST items, UINT (before parsing): extra
                                  validation */
    const char *example;       /* what to write, for messages */
};

/* The top-level keys, ended by an entry with a NULL name. */
const tf_conf__key_t *tf_conf__schema_root(void);

/* Number of entries in a key table. */
size_t tf_conf__schema_count(const tf_conf__key_t *keys);

/* The entry called NAME (LEN bytes) in KEYS, or NULL. */
const tf_conf__key_t *tf_conf__schema_find(const tf_conf__key_t *keys, const char *name,
                                           size_t len);

/* The valid key nearest to NAME (Levenshtein distance <= 2), or NULL. */
const char *tf_conf__suggest(const tf_conf__key_t *keys, const char *name);

/* For a key unknown at the top level: true, with its full path
 * ("timeouts.idle", "tenants.NAME.hosts") in OUT, when NAME belongs in a
 * section. */
bool tf_conf__schema_home(const char *name, char *out, size_t len);

/* Edit distance, capped: returns CAP + 1 as soon as it must exceed CAP. */
size_t tf_conf__levenshtein(const char *a, const char *b, size_t cap);

/* String checks used by the schema. */
int tf_conf__check_abs_path(const char *s, char *why, size_t len);
int tf_conf__check_access_log(const char *s, char *why, size_t len);
int tf_conf__check_url_path(const char *s, char *why, size_t len);
int tf_conf__check_tenant_name(const char *s, char *why, size_t len);
int tf_conf__check_nonempty(const char *s, char *why, size_t len);
int tf_conf__check_route_path(const char *s, char *why, size_t len);
int tf_conf__check_cookie_name(const char *s, char *why, size_t len);
int tf_conf__check_header_value(const char *s, char *why, size_t len);
int tf_conf__check_health_host(const char *s, char *why, size_t len);
int tf_conf__check_redirect(const char *s, char *why, size_t len);
int tf_conf__check_weight(const char *s, char *why, size_t len);
int tf_conf__check_acme_directory(const char *s, char *why, size_t len);
int tf_conf__check_email(const char *s, char *why, size_t len);
int tf_conf__check_sni(const char *s, char *why, size_t len);

/* ---- values: pure parsers, each 0 or TF_EINVAL with the reason --------- */

int tf_conf__parse_duration(const char *s, uint64_t *ms, char *why, size_t len);
int tf_conf__parse_uint(const char *s, uint64_t *v, char *why, size_t len);

/* Parses "a.b.c.d:port", "[v6]:port" or "name:port". HOST receives the host
 * without brackets (HOSTLEN >= 256 is always enough). With LISTENER, names
 * other than localhost are refused and port 0 (the kernel chooses) is
 * accepted. */
int tf_conf__parse_addr(const char *s, bool listener, tf_conf_addr_t *out, char *host,
                        size_t hostlen, char *why, size_t len);

/* Parses "unix:/abs/path" (S starts with "unix:") into OUT (family UNIX,
 * port 0); the path, copied into PATH (PATHLEN >= 108), must be absolute and
 * fit sockaddr_un's sun_path. */
int tf_conf__parse_unix(const char *s, tf_conf_addr_t *out, char *path, size_t pathlen, char *why,
                        size_t len);

/* Lower-cases PATTERN and strips one trailing dot into OUT (>= 256 bytes);
 * returns 0, or TF_EINVAL with the reason when the pattern is invalid. */
int tf_conf__host_normalize(const char *pattern, char *out, size_t outlen, char *why, size_t len);

/* A duration in the largest unit that divides it ("90s", "2m"), for messages. */
void tf_conf__fmt_ms(char *out, size_t len, uint64_t ms);

int tf_conf__parse_bool(const char *s, bool *v, char *why, size_t len);

/* An accepted status range: "200-399" or "200", within 100..599. */
typedef struct {
    uint16_t min, max;
} tf_conf__status_t;
int tf_conf__parse_status_range(const char *s, tf_conf__status_t *r, char *why, size_t len);

/* "10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"; host bits must be zero. */
int tf_conf__parse_cidr(const char *s, tf_conf_cidr_t *out, char *why, size_t len);

/* Checks a header field name for a rule: a token (RFC 9110) that is not one
 * the proxy owns (X-Forwarded-*, Host, framing, hop-by-hop). */
int tf_conf__check_header_name(const char *s, char *why, size_t len);

/* True when S is a valid DNS host name (LDH labels, <= 253 chars). */
bool tf_conf__dns_name_ok(const char *s, char *why, size_t len);

/* ---- tenants and routes as written (routes.c resolves them) ------------ */

/* The keys whose presence matters after the walk: inheritance, the kind of a
 * route, keys refused on mode tcp, and cross-key checks. */
enum {
    TF_CONF__RK_PATH,
    TF_CONF__RK_BACKENDS,
    TF_CONF__RK_BALANCE,
    TF_CONF__RK_COOKIE,
    TF_CONF__RK_HEALTH,
    TF_CONF__RK_HEALTH_INTERVAL,
    TF_CONF__RK_HEALTH_TIMEOUT,
    TF_CONF__RK_TO_CONNECT,
    TF_CONF__RK_TO_RESPONSE,
    TF_CONF__RK_TO_IDLE,
    TF_CONF__RK_TO_TUNNEL,
    TF_CONF__RK_HEADERS,
    TF_CONF__RK_ALLOW,
    TF_CONF__RK_ERRORS,
    TF_CONF__RK_MODE,
    TF_CONF__RK_REDIRECT,
    TF_CONF__RK_REDIRECT_STATUS,
    TF_CONF__RK_RESPOND,
    TF_CONF__RK_ROUTES,
    TF_CONF__RK_ACME,
    TF_CONF__RK_COUNT
};

typedef struct tf_conf__src tf_conf__src_t;

typedef struct {
    tf_conf__src_t *items;
    size_t count;
} tf_conf__src_list_t;

/* One tenant or one item of its routes: list, as written (schema defaults
 * applied, nothing inherited yet). Tenants and routes share the struct so
 * that their common keys share their schema rows. */
struct tf_conf__src {
    tf_conf_route_t r;          /* the route's own values */
    tf_conf_str_list_t hosts;   /* tenant only */
    int mode;                   /* tenant: tf_conf_mode_t; route: 0 http, 1 websocket */
    int redirect_status;        /* index into 301, 302, 307, 308 */
    tf_conf__status_t status;   /* health.status */
    tf_conf__src_list_t routes; /* tenant only */
    bool acme;                  /* tenant only */
    int send_proxy;             /* tenant only: tf_conf_send_proxy_t */
    tf_conf__seen_t seen[TF_CONF__RK_COUNT];
    const char *path;  /* dotted name for messages: "tenants.t.routes[0]" */
    yaml_mark_t where; /* tenant name, or the start of the route's mapping */
};

/* ---- loading ----------------------------------------------------------- */

typedef struct {
    unsigned line, column; /* 0-based, as libyaml counts */
    size_t seq;            /* order found, to keep sorting stable */
    char *msg;
} tf_conf__err_t;

/* Where a host was listed, for duplicate detection across tenants. */
typedef struct {
    const char *host;
    size_t tenant;
    size_t seq; /* order of appearance */
    yaml_mark_t mark;
} tf_conf__host_ref_t;

typedef struct {
    const char *name;
    yaml_document_t *doc;
    tf_conf_t *conf;
    tf_conf__err_t errs[TF_CONF_MAX_ERRORS];
    size_t nerr;
    size_t dropped;
    size_t seq;
    bool nomem;
    tf_conf__host_ref_t *hosts;
    size_t nhosts, caphosts;
    size_t cur_tenant;           /* tenant being loaded, TF_CONF__NO_TENANT outside */
    tf_conf__src_t **tenant_src; /* per tenant, as written; NULL when it failed to load */
    const char *dir;             /* the configuration file's directory, for relative paths; NULL:
                                    the current directory */
    struct tf_conf__page *pages; /* error page files read so far (policy.c), in the arena */
} tf_conf__ctx_t;

/* Records an error at MARK (0-based). Keeps the TF_CONF_MAX_ERRORS earliest. */
void tf_conf__error(tf_conf__ctx_t *ctx, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a load warning at MARK (0-based); the configuration keeps it. */
void tf_conf__warn(tf_conf__ctx_t *ctx, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sorts the errors by position and writes them, one per line, into ERR. */
void tf_conf__errors_format(tf_conf__ctx_t *ctx, char *err, size_t errlen);
void tf_conf__errors_free(tf_conf__ctx_t *ctx);

/* Walks the document into ctx->conf; errors go to ctx. */
void tf_conf__load_document(tf_conf__ctx_t *ctx);

/* Walks one mapping (or NULL when absent) against KEYS into the record at
 * BASE; PATH is the dotted name of the mapping ("" at the top), WHERE the
 * location blamed for missing required keys. */
void tf_conf__walk_section(tf_conf__ctx_t *ctx, const tf_conf__key_t *keys, void *base,
                           yaml_node_t *map, const char *path, yaml_mark_t where);

/* Loads one value node N for key K into the record at BASE (any type). */
void tf_conf__set_value(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *base, yaml_node_t *n,
                        const char *path, yaml_mark_t keymark);

/* Loads a node-valued key (TF_CONF__T_BACKENDS and after) into DST. */
void tf_conf__set_policy(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, void *dst, yaml_node_t *n,
                         const char *path);

/* Loads a routes: list into the tf_conf__src_list_t at DST (routes.c). */
void tf_conf__load_routes(tf_conf__ctx_t *ctx, const tf_conf__key_t *k, tf_conf__src_list_t *dst,
                          yaml_node_t *n, const char *path);

/* Builds every tenant's routes from what was written, resolving inheritance
 * and the checks that span keys (routes.c). After the whole document, as
 * routes fall back to the global timeouts. */
void tf_conf__resolve_tenants(tf_conf__ctx_t *ctx);

/* Loads an acme.challenges list into the mask at DST (acme.c). */
void tf_conf__load_challenges(tf_conf__ctx_t *ctx, unsigned *dst, yaml_node_t *n, const char *path);

/* The acme checks that span keys, after the whole document (acme.c): the
 * default challenges, the EAB pair, and `acme: true` without a directory. */
void tf_conf__finish_acme(tf_conf__ctx_t *ctx);

/* Sets every default of KEYS into the record at BASE (recursively). */
void tf_conf__apply_defaults(tf_conf__ctx_t *ctx, const tf_conf__key_t *keys, void *base);

/* Parses the tenants mapping (TENANTS key). */
void tf_conf__load_tenants(tf_conf__ctx_t *ctx, const tf_conf__key_t *key, yaml_node_t *map,
                           yaml_mark_t keymark);

/* Reports hosts listed more than once across all tenants. */
void tf_conf__check_duplicate_hosts(tf_conf__ctx_t *ctx);

/* Remembers HOST of ctx->cur_tenant at MARK for tf_conf__check_duplicate_hosts(). */
void tf_conf__host_seen(tf_conf__ctx_t *ctx, const char *host, yaml_mark_t mark);

/* The text of a scalar node, or NULL with an error at the node ("PATH:
 * expected WHAT, got a list"; a NUL in the text is refused too). */
const char *tf_conf__scalar_text(tf_conf__ctx_t *ctx, const yaml_node_t *n, const char *path,
                                 const char *what);

/* Human name of a node's kind for type errors: "a list", "a mapping"... */
const char *tf_conf__node_kind(const yaml_node_t *n);

/* True for a plain null, ~ or empty plain scalar. */
bool tf_conf__is_null(const yaml_node_t *n);

/* Index of the tenant being loaded (for host_seen). */
#define TF_CONF__NO_TENANT ((size_t)-1)

/* listen.proxy_protocol: `from` is required when enabled (checks.c). */
void tf_conf__check_proxy_protocol(tf_conf__ctx_t *ctx);

#endif
