/* tlsfront configuration (SPEC §3): load a YAML file into an immutable,
 * reference-counted object and read it through accessors.
 *
 * Lifetimes: a loaded tf_conf_t starts with one reference, owned by the
 * caller of tf_conf_load_*(). Every pointer an accessor returns (strings,
 * lists, section structs) points into the config and stays valid exactly as
 * long as the caller holds a reference; never free or modify it. The object is
 * never changed after loading, so any thread may read it without locking;
 * tf_conf_ref()/tf_conf_unref() are atomic.
 *
 * Errors: loaders return 0 or a negative code from common/err.h and write
 * every problem found, one per line, "FILE:LINE:COLUMN: message" (1-based),
 * earliest first, into the caller's buffer (always NUL-terminated when
 * errlen > 0, truncated at a line boundary when too small). This module never
 * logs, never resolves names and never opens a socket.
 */
#ifndef TF_CONF_CONF_H
#define TF_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tf_conf tf_conf_t; /* opaque, immutable, reference counted */

/* At most this many errors are reported per load; the earliest are kept. */
#define TF_CONF_MAX_ERRORS 50

/* Largest configuration file accepted, in bytes. */
#define TF_CONF_MAX_FILE_BYTES (16u * 1024u * 1024u)

/* Bounds enforced by the loader (docs/CONFIG.md lists them all). */
#define TF_CONF_WORKERS_MAX 256
#define TF_CONF_MAX_CONNECTIONS_MAX 1000000
#define TF_CONF_HEADER_BYTES_MIN 1024
#define TF_CONF_HEADER_BYTES_MAX (1024 * 1024)
/* limits.max_header_fields; the maximum is the size of the proxy's parsed
 * head (TF_HTTP_HEADERS_MAX in proxy/http/http.h). */
#define TF_CONF_HEADER_FIELDS_MIN 8
#define TF_CONF_HEADER_FIELDS_MAX 1000
#define TF_CONF_TIMEOUT_MAX_MS (7ull * 24 * 3600 * 1000)

typedef enum {
    TF_CONF_LOG_ERROR,
    TF_CONF_LOG_WARN,
    TF_CONF_LOG_INFO,
    TF_CONF_LOG_DEBUG,
} tf_conf_log_level_t;

typedef enum { TF_CONF_LOG_TEXT, TF_CONF_LOG_JSON } tf_conf_log_format_t;

typedef enum {
    TF_CONF_ACCESS_STDOUT, /* access log to standard output */
    TF_CONF_ACCESS_OFF,    /* no access log */
    TF_CONF_ACCESS_FILE,   /* appended to access_path (an absolute path) */
} tf_conf_access_t;

typedef struct {
    tf_conf_log_level_t level;
    tf_conf_log_format_t format;
    tf_conf_access_t access;
    const char *access_path; /* the path for TF_CONF_ACCESS_FILE, else NULL */
} tf_conf_log_t;

typedef enum {
    TF_CONF_ADDR_IPV4, /* host is a dotted-quad literal */
    TF_CONF_ADDR_IPV6, /* host is an IPv6 literal, without brackets */
    TF_CONF_ADDR_NAME, /* host is a DNS name, resolved by the caller later */
} tf_conf_addr_family_t;

typedef struct {
    tf_conf_addr_family_t family;
    const char *host; /* "0.0.0.0", "::", "localhost", "app.internal" */
    uint16_t port;    /* 1-65535 */
    const char *text; /* as written in the file, e.g. "[::]:443" */
} tf_conf_addr_t;

typedef struct {
    const tf_conf_addr_t *items;
    size_t count;
} tf_conf_addr_list_t;

typedef struct {
    const char *const *items;
    size_t count;
} tf_conf_str_list_t;

typedef struct {
    bool enabled;           /* false when the admin section is absent or null */
    tf_conf_addr_t listen;  /* default 127.0.0.1:9443 */
    const char *token_file; /* NULL: no bearer token required */
} tf_conf_admin_t;

typedef enum { TF_CONF_SNI_DEFAULT, TF_CONF_SNI_REJECT } tf_conf_unknown_sni_t;
typedef enum { TF_CONF_TLS_1_2, TF_CONF_TLS_1_3 } tf_conf_tls_version_t;

typedef struct {
    tf_conf_str_list_t certs; /* files or directories; not checked to exist */
    const char *default_cert; /* the system certificate */
    tf_conf_unknown_sni_t unknown_sni;
    tf_conf_tls_version_t min_version;
    const char *ticket_keys_file; /* NULL: keys generated and rotated in memory */
} tf_conf_tls_t;

/* Every timeout in milliseconds, each > 0 and <= TF_CONF_TIMEOUT_MAX_MS. */
typedef struct {
    uint64_t handshake_ms;
    uint64_t request_header_ms;
    uint64_t idle_ms;
    uint64_t connect_ms;
    uint64_t response_ms;
    uint64_t tunnel_ms;
    uint64_t drain_ms;
} tf_conf_timeouts_t;

typedef struct {
    uint32_t max_connections;  /* 1 .. TF_CONF_MAX_CONNECTIONS_MAX */
    uint32_t max_header_bytes; /* TF_CONF_HEADER_BYTES_MIN .. TF_CONF_HEADER_BYTES_MAX */
    uint32_t max_header_fields; /* TF_CONF_HEADER_FIELDS_MIN .. TF_CONF_HEADER_FIELDS_MAX */
} tf_conf_limits_t;

typedef enum { TF_CONF_MODE_HTTP, TF_CONF_MODE_TCP } tf_conf_mode_t;

typedef struct {
    bool enabled;         /* false when the tenant has no health section */
    const char *path;     /* starts with '/'; default "/health" */
    uint64_t interval_ms; /* default 5000 */
} tf_conf_health_t;

typedef struct {
    const char *name;
    /* Normalized host patterns: lower case, no trailing dot; "name.example",
     * "*.example" (one whole left-most label) or the catch-all "*". No host
     * appears twice in one config. */
    tf_conf_str_list_t hosts;
    tf_conf_addr_list_t backends; /* at least one; names are not resolved */
    tf_conf_health_t health;
    tf_conf_mode_t mode;
    unsigned line; /* 1-based location of the tenant's name in the file */
    unsigned column;
} tf_conf_tenant_t;

/* Reads and parses PATH. On success stores a config holding one reference in
 * *out (release it with tf_conf_unref()) and returns 0; *out is untouched on
 * failure. Returns TF_ECONF (schema errors), TF_EYAML (syntax), TF_ENOMEM,
 * TF_ETOOBIG (file over TF_CONF_MAX_FILE_BYTES), or -errno when the file
 * cannot be read ("PATH: cannot read: reason; what to do" in err). */
__attribute__((warn_unused_result)) int tf_conf_load_file(const char *path, tf_conf_t **out,
                                                          char *err, size_t errlen);

/* Same as tf_conf_load_file() for LEN bytes at DATA (need not be
 * NUL-terminated); NAME (not NULL) is used in messages in place of the file
 * name and copied. Neither is referenced after the call returns. ERR may be
 * NULL when ERRLEN is 0. */
__attribute__((warn_unused_result)) int tf_conf_load_buffer(const char *name, const char *data,
                                                            size_t len, tf_conf_t **out, char *err,
                                                            size_t errlen);

/* Takes another reference and returns C (NULL stays NULL). */
tf_conf_t *tf_conf_ref(tf_conf_t *c);

/* Drops a reference; the last one frees the config and everything the
 * accessors returned. NULL is ignored. */
void tf_conf_unref(tf_conf_t *c);

/* The name given at load time (the file path). */
const char *tf_conf_source(const tf_conf_t *c);

/* Worker threads; 0 means "auto" (one per core, decided by the caller). */
unsigned tf_conf_workers(const tf_conf_t *c);

/* User to switch to after binding, or NULL to keep the current one. */
const char *tf_conf_user(const tf_conf_t *c);

const tf_conf_log_t *tf_conf_log(const tf_conf_t *c);

/* listen.https: never empty. listen.http: empty when absent. */
const tf_conf_addr_list_t *tf_conf_listen_https(const tf_conf_t *c);
const tf_conf_addr_list_t *tf_conf_listen_http(const tf_conf_t *c);

const tf_conf_admin_t *tf_conf_admin(const tf_conf_t *c);

/* acme.webroot, an absolute path; NULL when set to null (no challenges). */
const char *tf_conf_acme_webroot(const tf_conf_t *c);

const tf_conf_tls_t *tf_conf_tls(const tf_conf_t *c);
const tf_conf_timeouts_t *tf_conf_timeouts(const tf_conf_t *c);
const tf_conf_limits_t *tf_conf_limits(const tf_conf_t *c);

/* Tenants in file order; at least one. I must be < tf_conf_tenant_count(). */
size_t tf_conf_tenant_count(const tf_conf_t *c);
const tf_conf_tenant_t *tf_conf_tenant(const tf_conf_t *c, size_t i);

/* The tenant called NAME, or NULL. Linear: for setup code, not per request. */
const tf_conf_tenant_t *tf_conf_tenant_find(const tf_conf_t *c, const char *name);

/* Where a path the configuration names is written, so that a problem found
 * with that path later (a missing certificate directory, an unreadable token
 * file) can be reported like a load error, "FILE:LINE:COLUMN: message".
 * KEY is the dotted name of a path-valued key: "tls.certs" (INDEX: the item,
 * as in tf_conf_tls()->certs), "tls.default_cert", "tls.ticket_keys_file",
 * "admin.token_file", "acme.webroot" or "log.access" (INDEX 0). On success
 * writes "FILE:LINE:COLUMN" (the name given at load time, then the 1-based
 * position where the value's scalar starts, its opening quote if quoted)
 * into BUF and returns 0. Returns TF_ENOTFOUND when the value was not
 * written in the file (a default, or null) or KEY/INDEX names no such value,
 * and TF_ETOOBIG when LEN is too small (TF_CONF_WHERE_MAX always fits a
 * source name shorter than 4096 bytes); BUF then holds "" (when LEN > 0).
 * Linear in the number of such values: for setup and error paths. */
#define TF_CONF_WHERE_MAX (4096 + 24)
int tf_conf_where(const tf_conf_t *c, const char *key, size_t index, char *buf, size_t len);

/* Checks one host pattern as written in tenants.*.hosts (case-insensitive,
 * one trailing dot allowed). Returns 0 when valid, else TF_EINVAL with the
 * reason and what to do in WHY (NUL-terminated when len > 0). Pure. */
int tf_conf_host_pattern_check(const char *pattern, char *why, size_t len);

#endif
