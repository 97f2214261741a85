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
    TF_CONF_ADDR_UNIX, /* backends only: "unix:/path"; host is the absolute path
                          (shorter than sockaddr_un's sun_path), port 0 */
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
    /* limits.per_client (SPEC §11), per client address, process-wide; 0: off. */
    uint32_t per_client_connections;   /* 0 .. TF_CONF_MAX_CONNECTIONS_MAX */
    uint32_t per_client_rps;           /* requests_per_second, 0 .. 1000000 */
    uint32_t per_client_burst;         /* 0 .. 1000000; 0 with rps set: burst = rps */
} tf_conf_limits_t;

/* http2 (SPEC §12): HTTP/2 to clients. */
#define TF_CONF_H2_STREAMS_DEFAULT 100u
#define TF_CONF_H2_STREAMS_MAX 1000u
typedef struct {
    bool enabled;                    /* offer h2 in ALPN on listen.https (default true) */
    uint32_t max_concurrent_streams; /* 1 .. TF_CONF_H2_STREAMS_MAX, default 100 */
} tf_conf_http2_t;

/* acme (SPEC §13): the webroot for external clients and the built-in ACME
 * client's keys. The client runs when `directory` is set. */
#define TF_CONF_ACME_HTTP01 (1u << 0)    /* challenges: http-01 on listen.http */
#define TF_CONF_ACME_TLSALPN01 (1u << 1) /* challenges: tls-alpn-01 on listen.https */
#define TF_CONF_RENEW_DAYS_MAX 365u

typedef enum {
    TF_CONF_KEY_ECDSA, /* P-256 */
    TF_CONF_KEY_RSA,   /* 2048 bits */
} tf_conf_key_type_t;

/* External account binding (RFC 8555 §7.3.4): both set or both NULL. */
typedef struct {
    const char *kid;           /* the key identifier the CA gave; NULL: no binding */
    const char *hmac_key_file; /* file holding the CA's base64url MAC key (read by
                                  the client and `tlsfront check`, not by the loader) */
} tf_conf_acme_eab_t;

typedef struct {
    const char *webroot;         /* absolute; NULL when set to null (no webroot challenges) */
    const char *directory;       /* the ACME server's directory URL: https://, or http:// on a
                                    loopback host; NULL (the default): the client is off */
    const char *email;           /* account contact, "name@domain" without mailto:; NULL: none */
    const char *ca_file;         /* CA file for the ACME server's TLS certificate; NULL: the
                                    system store */
    const char *storage;         /* absolute; default /var/lib/tlsfront/acme-state */
    tf_conf_key_type_t key_type; /* of certificate keys; default ECDSA */
    uint32_t renew_days;         /* 1 .. TF_CONF_RENEW_DAYS_MAX, default 30 */
    unsigned challenges;         /* non-empty mask of TF_CONF_ACME_*; default both */
    tf_conf_acme_eab_t eab;
} tf_conf_acme_t;

typedef enum { TF_CONF_MODE_HTTP, TF_CONF_MODE_TCP } tf_conf_mode_t;

/* A tenant's `send_proxy` (SPEC §14): a PROXY header first on each of its
 * backend connections, naming the client. */
typedef enum {
    TF_CONF_SEND_PROXY_OFF,
    TF_CONF_SEND_PROXY_V1,
    TF_CONF_SEND_PROXY_V2
} tf_conf_send_proxy_t;

/* ---- routes, balancing and policy (SPEC §11) ----------------------------
 * A tenant's own keys are its "/" route, routes[0]; each route in `routes:`
 * follows in file order. Inheritance is resolved at load: every route holds
 * every value, its own where it set the key, else the tenant's (whole: a
 * route's `headers` replaces the tenant's; `allow: []` on a route opens it),
 * and the tenant's `timeouts` keys fall back to the global ones one by one. */

typedef enum {
    TF_CONF_BALANCE_ROUND_ROBIN, /* smooth weighted round robin */
    TF_CONF_BALANCE_LEAST_CONN,  /* fewest in flight, process-wide, weighted */
    TF_CONF_BALANCE_SOURCE,      /* consistent hash of the client address */
    TF_CONF_BALANCE_COOKIE,      /* round robin, then sticky by cookie */
} tf_conf_balance_t;

/* "round_robin", "least_conn", "source", "cookie": the name as written. */
const char *tf_conf_balance_name(tf_conf_balance_t b);

#define TF_CONF_WEIGHT_MAX 256
#define TF_CONF_MAX_CONNS_MAX 1000000
#define TF_CONF_PER_CLIENT_MAX 1000000
/* Largest `errors` page file, in bytes. */
#define TF_CONF_ERROR_PAGE_MAX (1024u * 1024u)

/* How a `tls: true` backend's certificate is checked (SPEC §14). */
typedef enum {
    TF_CONF_VERIFY_SYSTEM, /* against the system store (the default) */
    TF_CONF_VERIFY_FILE,   /* against the CA certificates in ca_file */
    TF_CONF_VERIFY_OFF,    /* not at all (a load warning, tf_conf_warning()) */
} tf_conf_verify_t;

typedef struct {
    tf_conf_addr_t addr;     /* HOST:PORT (names are not resolved) or unix:/path */
    uint16_t weight;         /* 1 .. TF_CONF_WEIGHT_MAX, default 1 */
    bool backup;             /* used only while no other backend of the route is up */
    uint32_t max_conns;      /* requests and tunnels in flight at once; 0: no limit */
    bool tls;                /* re-encrypt to the backend (also over unix:) */
    tf_conf_verify_t verify; /* tls only; SYSTEM when tls is false */
    const char *ca_file;     /* VERIFY_FILE: the CA file, readable at load; a relative
                                path is taken from the configuration file's directory
                                (this is the joined path); else NULL */
    const char *sni;         /* tls: the SNI sent and the name verified: tls_sni, else
                                the address's host name; NULL for an IP literal or a
                                unix: address (the IP is verified, nothing sent) */
    const char *tls_verify;  /* as written ("system", "off" or the path); loader use */
    unsigned line, column;   /* 1-based location of the backend in the file */
} tf_conf_backend_t;

typedef struct {
    const tf_conf_backend_t *items;
    size_t count;
} tf_conf_backend_list_t;

typedef struct {
    bool enabled;         /* false when no health section applies */
    const char *path;     /* starts with '/'; default "/health" */
    uint64_t interval_ms; /* default 5000 */
    uint64_t timeout_ms;  /* default 2000 (the interval when shorter); <= interval */
    uint32_t rise;        /* passing checks that bring a backend up, 1..100, default 2 */
    uint32_t fall;        /* failing checks that take it down, 1..100, default 3 */
    uint16_t status_min;  /* accepted status range, "200-399" by default; "200" alone */
    uint16_t status_max;  /*   gives min == max */
    const char *host;     /* the Host sent; NULL: the tenant's first exact host (or
                             the backend's address when it has none) */
} tf_conf_health_t;

/* A tenant's or route's timeouts, resolved: route, then tenant, then the
 * global timeouts section. Milliseconds, each > 0. */
typedef struct {
    uint64_t connect_ms;
    uint64_t response_ms;
    uint64_t idle_ms;
    uint64_t tunnel_ms;
} tf_conf_route_timeouts_t;

typedef struct {
    const char *name;  /* a token (RFC 9110), as written */
    const char *value; /* no CR, LF or NUL; may be empty */
} tf_conf_header_t;

/* One direction's rules. Names are compared case-insensitively; no rule
 * names X-Forwarded-For/-Proto/-Host/-Port, Host, Content-Length,
 * Transfer-Encoding, Connection or another hop-by-hop field (config
 * errors). */
typedef struct {
    const tf_conf_header_t *set; /* replace or add, in file order */
    size_t nset;
    tf_conf_str_list_t remove; /* names, lower case */
} tf_conf_header_rules_t;

typedef struct {
    uint8_t family;   /* 4 or 6 */
    uint8_t bits;     /* prefix length: 0..32 or 0..128; an address alone is /32 or /128 */
    uint8_t addr[16]; /* network order, host bits zero; IPv4 in the first 4 bytes */
} tf_conf_cidr_t;

/* count 0: everyone is allowed. */
typedef struct {
    const tf_conf_cidr_t *items;
    size_t count;
} tf_conf_allow_t;

/* listen.proxy_protocol (SPEC §14): a PROXY v1 or v2 header first on every
 * connection to listen.https and listen.http, from the balancers in `from`
 * only (required when enabled). */
typedef struct {
    bool enabled;
    tf_conf_allow_t from;
} tf_conf_proxy_protocol_t;

/* `errors`: a page per status among 403 404 421 429 502 503 504, read at
 * load (a missing or unreadable file is a config error). */
typedef struct {
    uint16_t status;
    const char *file; /* as written */
    const char *body; /* the file's bytes (NUL added, not counted) */
    size_t len;
} tf_conf_error_page_t;

typedef struct {
    const tf_conf_error_page_t *items;
    size_t count;
} tf_conf_error_pages_t;

typedef enum {
    TF_CONF_ROUTE_BACKENDS, /* forwarded to `backends` */
    TF_CONF_ROUTE_REDIRECT, /* answered with a redirect */
    TF_CONF_ROUTE_RESPOND,  /* answered with a fixed response */
} tf_conf_route_kind_t;

typedef struct {
    const char *path; /* "/" for routes[0]; else starts with '/' and holds only
                         unreserved characters, sub-delims, ':', '@' and '/', no
                         "//" and no "." or ".." segment (so it is already in
                         the normalized form requests are matched in) */
    tf_conf_route_kind_t kind;
    tf_conf_backend_list_t backends; /* kind BACKENDS: at least one */
    tf_conf_balance_t balance;       /* default round_robin */
    const char *cookie;              /* default "TFSRV"; a cookie-name token */
    tf_conf_health_t health;
    tf_conf_route_timeouts_t timeouts;
    tf_conf_header_rules_t request_headers;
    tf_conf_header_rules_t response_headers;
    tf_conf_allow_t allow;
    tf_conf_error_pages_t errors;
    bool strip_prefix; /* the prefix, without its trailing slash, is removed */
    bool websocket;    /* `mode: websocket`: only Upgrade: websocket requests */
    const char *redirect;     /* kind REDIRECT: the target the rest of the path is appended to */
    uint16_t redirect_status; /* 301, 302, 307 or 308 (default) */
    uint16_t respond_status;  /* kind RESPOND: 200..599, default 200 */
    const char *respond_content_type; /* default "text/plain; charset=utf-8" */
    const char *respond_body;         /* default "" */
    size_t respond_body_len;
    unsigned line; /* 1-based location of the route's path (routes[0]: the tenant's name) */
    unsigned column;
} tf_conf_route_t;

typedef struct {
    const char *name;
    /* Normalized host patterns: lower case, no trailing dot; "name.example",
     * "*.example" (one whole left-most label) or the catch-all "*". No host
     * appears twice in one config. */
    tf_conf_str_list_t hosts;
    tf_conf_mode_t mode;
    const tf_conf_route_t *routes; /* routes[0] is "/"; no path twice */
    size_t nroutes;                /* >= 1; a mode tcp tenant has exactly 1 */
    bool acme;                     /* `acme: true`: the ACME client manages its exact hosts
                                      (only with acme.directory set) */
    tf_conf_send_proxy_t send_proxy;
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

/* acme.webroot, an absolute path; NULL when set to null (no challenges).
 * The same as tf_conf_acme(c)->webroot. */
const char *tf_conf_acme_webroot(const tf_conf_t *c);

/* The acme section, every key resolved (defaults applied). */
const tf_conf_acme_t *tf_conf_acme(const tf_conf_t *c);

const tf_conf_tls_t *tf_conf_tls(const tf_conf_t *c);
const tf_conf_timeouts_t *tf_conf_timeouts(const tf_conf_t *c);
const tf_conf_limits_t *tf_conf_limits(const tf_conf_t *c);
const tf_conf_http2_t *tf_conf_http2(const tf_conf_t *c);
const tf_conf_proxy_protocol_t *tf_conf_proxy_protocol(const tf_conf_t *c);

/* Tenants in file order; at least one. I must be < tf_conf_tenant_count(). */
size_t tf_conf_tenant_count(const tf_conf_t *c);
const tf_conf_tenant_t *tf_conf_tenant(const tf_conf_t *c, size_t i);

/* The tenant called NAME, or NULL. Linear: for setup code, not per request. */
const tf_conf_tenant_t *tf_conf_tenant_find(const tf_conf_t *c, const char *name);

/* True when tenant T has `acme: true` (the loader refuses it without
 * acme.directory, so the client is configured whenever this is true). */
bool tf_conf_tenant_acme(const tf_conf_tenant_t *t);

/* Where a path the configuration names is written, so that a problem found
 * with that path later (a missing certificate directory, an unreadable token
 * file) can be reported like a load error, "FILE:LINE:COLUMN: message".
 * KEY is the dotted name of a path-valued key: "tls.certs" (INDEX: the item,
 * as in tf_conf_tls()->certs), "tls.default_cert", "tls.ticket_keys_file",
 * "admin.token_file", "acme.webroot", "acme.storage", "acme.ca_file",
 * "acme.eab.hmac_key_file", "log.access" or "user" (INDEX 0). On success
 * writes "FILE:LINE:COLUMN" (the name given at load time, then the 1-based
 * position where the value's scalar starts, its opening quote if quoted)
 * into BUF and returns 0. Returns TF_ENOTFOUND when the value was not
 * written in the file (a default, or null) or KEY/INDEX names no such value,
 * and TF_ETOOBIG when LEN is too small (TF_CONF_WHERE_MAX always fits a
 * source name shorter than 4096 bytes); BUF then holds "" (when LEN > 0).
 * Linear in the number of such values: for setup and error paths. */
#define TF_CONF_WHERE_MAX (4096 + 24)
int tf_conf_where(const tf_conf_t *c, const char *key, size_t index, char *buf, size_t len);

/* Load warnings: things that work but that an operator should know about
 * (a backend with tls_verify: off). Each is one line, "FILE:LINE:COLUMN:
 * message", valid as long as the configuration. In file order. */
size_t tf_conf_warning_count(const tf_conf_t *c);
const char *tf_conf_warning(const tf_conf_t *c, size_t i);

/* Checks one host pattern as written in tenants.*.hosts (case-insensitive,
 * one trailing dot allowed). Returns 0 when valid, else TF_EINVAL with the
 * reason and what to do in WHY (NUL-terminated when len > 0). Pure. */
int tf_conf_host_pattern_check(const char *pattern, char *why, size_t len);

#endif
