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
    tf_conf_admin_t admin;
    const char *acme_webroot;
    tf_conf_tls_t tls;
    tf_conf_timeouts_t timeouts;
    tf_conf_limits_t limits;
    tf_conf_tenant_t *tenants;
    size_t ntenants;
    const tf_conf__where_t *where; /* in the arena, most recent first */
};

/* ---- schema ------------------------------------------------------------ */

typedef enum {
    TF_CONF__T_SECTION,   /* mapping described by .sub */
    TF_CONF__T_UINT,      /* unsigned, stored in the width given by .size */
    TF_CONF__T_WORKERS,   /* UINT or "auto" (stored as 0) */
    TF_CONF__T_DURATION,  /* uint64_t milliseconds */
    TF_CONF__T_STRING,    /* const char * */
    TF_CONF__T_ENUM,      /* int, index into .enums */
    TF_CONF__T_ADDR,      /* tf_conf_addr_t */
    TF_CONF__T_ADDR_LIST, /* tf_conf_addr_list_t */
    TF_CONF__T_STR_LIST,  /* tf_conf_str_list_t */
    TF_CONF__T_HOST_LIST, /* tf_conf_str_list_t of normalized host patterns */
    TF_CONF__T_TENANTS,   /* map name -> tenant described by .sub */
} tf_conf__type_t;

enum {
    TF_CONF__F_REQUIRED = 1 << 0, /* an error when absent */
    TF_CONF__F_NULLABLE = 1 << 1, /* null, ~ and an empty value store NULL */
    TF_CONF__F_LISTENER = 1 << 2, /* addresses: IP literals or localhost only */
    TF_CONF__F_NONEMPTY = 1 << 3, /* lists and maps: at least one entry */
    TF_CONF__F_OPTIONAL = 1 << 4, /* sections: absent or null = disabled */
    TF_CONF__F_LOCATED = 1 << 5,  /* strings, string lists: keep each value's location for
                                     tf_conf_where() (paths checked after loading) */
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
    tf_conf__check_fn check;   /* STRING, STR_LIST items: extra validation */
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

/* ---- values: pure parsers, each 0 or TF_EINVAL with the reason --------- */

int tf_conf__parse_duration(const char *s, uint64_t *ms, char *why, size_t len);
int tf_conf__parse_uint(const char *s, uint64_t *v, char *why, size_t len);

/* Parses "a.b.c.d:port", "[v6]:port" or "name:port". HOST receives the host
 * without brackets (HOSTLEN >= 256 is always enough). With LISTENER, names
 * other than localhost are refused and port 0 (the kernel chooses) is
 * accepted. */
int tf_conf__parse_addr(const char *s, bool listener, tf_conf_addr_t *out, char *host,
                        size_t hostlen, char *why, size_t len);

/* Lower-cases PATTERN and strips one trailing dot into OUT (>= 256 bytes);
 * returns 0, or TF_EINVAL with the reason when the pattern is invalid. */
int tf_conf__host_normalize(const char *pattern, char *out, size_t outlen, char *why, size_t len);

/* True when S is a valid DNS host name (LDH labels, <= 253 chars). */
bool tf_conf__dns_name_ok(const char *s, char *why, size_t len);

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
    size_t cur_tenant; /* tenant being loaded, TF_CONF__NO_TENANT outside */
} tf_conf__ctx_t;

/* Records an error at MARK (0-based). Keeps the TF_CONF_MAX_ERRORS earliest. */
void tf_conf__error(tf_conf__ctx_t *ctx, yaml_mark_t mark, const char *fmt, ...)
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

/* Sets every default of KEYS into the record at BASE (recursively). */
void tf_conf__apply_defaults(tf_conf__ctx_t *ctx, const tf_conf__key_t *keys, void *base);

/* Parses the tenants mapping (TENANTS key). */
void tf_conf__load_tenants(tf_conf__ctx_t *ctx, const tf_conf__key_t *key, yaml_node_t *map,
                           yaml_mark_t keymark);

/* Reports hosts listed more than once across all tenants. */
void tf_conf__check_duplicate_hosts(tf_conf__ctx_t *ctx);

/* Remembers HOST of ctx->cur_tenant at MARK for tf_conf__check_duplicate_hosts(). */
void tf_conf__host_seen(tf_conf__ctx_t *ctx, const char *host, yaml_mark_t mark);

/* Human name of a node's kind for type errors: "a list", "a mapping"... */
const char *tf_conf__node_kind(const yaml_node_t *n);

/* True for a plain null, ~ or empty plain scalar. */
bool tf_conf__is_null(const yaml_node_t *n);

/* Index of the tenant being loaded (for host_seen). */
#define TF_CONF__NO_TENANT ((size_t)-1)

#endif
