/* The acme keys of SPEC §13 that need more than a schema row: the directory
 * URL and contact checks, the challenges list, and the checks that span keys
 * (the EAB pair, and `acme: true` on a tenant when no client is configured).
 * Nothing here reads a file: `tlsfront check` looks at storage, ca_file and
 * the EAB key (proxy/cli/cmd_check.c). */
#include "conf/conf_internal.h"

#include "common/err.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t len, const char *fmt, ...)
{
    if (len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return TF_EINVAL;
}

/* 127.0.0.0/8, ::1 or localhost: where a plain-HTTP ACME server (a local
 * pebble) cannot be impersonated by anyone off the machine. */
static bool loopback_host(const char *host)
{
    unsigned char a[16];
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    static const unsigned char one[16] = {[15] = 1};
    return inet_pton(AF_INET6, host, a) == 1 && memcmp(a, one, 16) == 0;
}

/* Splits AUTH (LEN bytes, "host", "host:port", "[v6]" or "[v6]:port") and
 * checks both parts; the host, without brackets, goes to HOST (256 bytes). */
static int url_authority(const char *url, const char *auth, size_t n, char *host, char *why,
                         size_t len)
{
    const char *port = NULL;
    size_t hlen = n;
    if (n > 0 && auth[0] == '[') {
        const char *end = memchr(auth, ']', n);
        hlen = end ? (size_t)(end - auth - 1) : 0;
        if (end == NULL || hlen == 0 || hlen >= INET6_ADDRSTRLEN ||
            (end + 1 < auth + n && end[1] != ':'))
            return fail(why, len, "'%s' has an invalid [IPv6] host, e.g. https://[::1]:14000/dir",
                        url);
        memcpy(host, auth + 1, hlen);
        port = end + 1 < auth + n ? end + 2 : NULL;
    } else {
        const char *colon = memchr(auth, ':', n);
        hlen = colon ? (size_t)(colon - auth) : n;
        if (hlen == 0 || hlen > 253)
            return fail(why, len, "'%s' has no host; write e.g. https://acme.example/directory",
                        url);
        memcpy(host, auth, hlen);
        port = colon ? colon + 1 : NULL;
    }
    host[hlen] = '\0';
    unsigned char a[16];
    bool ok = auth[0] == '['
                  ? inet_pton(AF_INET6, host, a) == 1
                  : inet_pton(AF_INET, host, a) == 1 || tf_conf__dns_name_ok(host, NULL, 0);
    if (!ok)
        return fail(why, len, "'%s' has an invalid host '%s'", url, host);
    if (port == NULL)
        return 0;
    size_t plen = (size_t)(auth + n - port), v = 0;
    for (size_t i = 0; i < plen && i < 6; i++)
        v = port[i] >= '0' && port[i] <= '9' ? v * 10 + (size_t)(port[i] - '0') : 100000;
    if (plen == 0 || plen > 5 || v == 0 || v > 65535)
        return fail(why, len, "'%s' has an invalid port; use 1 to 65535", url);
    return 0;
}

int tf_conf__check_acme_directory(const char *s, char *why, size_t len)
{
    bool https = strncasecmp(s, "https://", 8) == 0;
    bool http = !https && strncasecmp(s, "http://", 7) == 0;
    if (!https && !http)
        return fail(why, len,
                    "'%s' is not an https:// URL; write the ACME server's directory URL, e.g. "
                    "https://acme-v02.api.letsencrypt.org/directory",
                    s);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f)
            return fail(why, len,
                        "'%s' contains a space, control or non-ASCII byte; percent-encode it", s);
    }
    const char *auth = s + (https ? 8 : 7);
    size_t n = strcspn(auth, "/?#");
    if (memchr(auth, '@', n) != NULL)
        return fail(why, len, "'%s' holds credentials before '@'; ACME needs none: remove them", s);
    char host[256];
    int rc = url_authority(s, auth, n, host, why, len);
    if (rc != 0)
        return rc;
    if (http && !loopback_host(host))
        return fail(why, len,
                    "'%s': http:// is accepted only for an ACME server on this machine "
                    "(127.0.0.0/8, ::1, localhost), such as a test pebble; write https://",
                    s);
    return 0;
}

int tf_conf__check_email(const char *s, char *why, size_t len)
{
    if (strncasecmp(s, "mailto:", 7) == 0)
        return fail(why, len,
                    "'%s': write the address alone, e.g. admin@example.com; "
                    "tlsfront adds mailto:",
                    s);
    const char *at = strchr(s, '@');
    bool bad = at == NULL || at == s || strchr(at + 1, '@') != NULL || strlen(s) > 254;
    for (const unsigned char *p = (const unsigned char *)s; !bad && *p; p++)
        bad = *p <= 0x20 || *p >= 0x7f || strchr("<>(),;:\"[]\\", *p) != NULL;
    if (bad || !tf_conf__dns_name_ok(at + 1, NULL, 0))
        return fail(why, len, "'%s' is not an e-mail address; write e.g. admin@example.com", s);
    return 0;
}

/* ---- challenges -------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} challenge_types[] = {
    {"http-01", TF_CONF_ACME_HTTP01},
    {"tls-alpn-01", TF_CONF_ACME_TLSALPN01},
};

static void challenge_item(tf_conf__ctx_t *ctx, unsigned *mask, const yaml_node_t *item,
                           const char *path)
{
    const char *v = tf_conf__scalar_text(ctx, item, path, "a challenge type such as http-01");
    if (v == NULL)
        return;
    for (size_t i = 0; i < sizeof challenge_types / sizeof challenge_types[0]; i++) {
        if (strcmp(v, challenge_types[i].name) != 0)
            continue;
        if (*mask & challenge_types[i].bit)
            tf_conf__error(ctx, item->start_mark, "%s: '%s' is listed twice; remove one", path, v);
        *mask |= challenge_types[i].bit;
        return;
    }
    if (strcmp(v, "dns-01") == 0)
        tf_conf__error(ctx, item->start_mark,
                       "%s: dns-01 is not supported (it needs your DNS provider); use http-01 "
                       "or tls-alpn-01 (wildcard hosts are then reported as not managed)",
                       path);
    else
        tf_conf__error(ctx, item->start_mark,
                       "%s: '%s' is not a challenge type; use http-01, tls-alpn-01 or both", path,
                       v);
}

void tf_conf__load_challenges(tf_conf__ctx_t *ctx, unsigned *dst, yaml_node_t *n, const char *path)
{
    bool null = tf_conf__is_null(n);
    if (n->type != YAML_SEQUENCE_NODE && !null) {
        tf_conf__error(ctx, n->start_mark,
                       "%s: expected a list like [http-01, tls-alpn-01], got %s", path,
                       tf_conf__node_kind(n));
        return;
    }
    size_t count = null ? 0 : (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) {
        tf_conf__error(ctx, n->start_mark,
                       "%s: is empty; list at least one of http-01, tls-alpn-01 (or remove the "
                       "key for both)",
                       path);
        return;
    }
    unsigned mask = 0;
    for (size_t i = 0; i < count; i++)
        challenge_item(ctx, &mask,
                       yaml_document_get_node(ctx->doc, n->data.sequence.items.start[i]), path);
    *dst = mask;
}

/* ---- checks across keys ------------------------------------------------ */

static void check_eab(tf_conf__ctx_t *ctx)
{
    const tf_conf_acme_eab_t *e = &ctx->conf->acme.eab;
    if ((e->kid == NULL) == (e->hmac_key_file == NULL))
        return;
    bool kid = e->kid != NULL;
    const tf_conf__seen_t *set = &ctx->conf->eab_seen[kid ? 0 : 1];
    tf_conf__error(ctx, set->key,
                   "acme.eab.%s is set but acme.eab.%s is not; external account binding needs "
                   "both (the CA gives a key id and a MAC key together), or neither",
                   kid ? "kid" : "hmac_key_file", kid ? "hmac_key_file" : "kid");
}

static void check_tenants(tf_conf__ctx_t *ctx)
{
    if (ctx->conf->acme.directory != NULL || ctx->tenant_src == NULL)
        return;
    for (size_t i = 0; i < ctx->conf->ntenants; i++) {
        const tf_conf__src_t *s = ctx->tenant_src[i];
        if (s == NULL || !s->acme)
            continue;
        tf_conf__error(ctx, s->seen[TF_CONF__RK_ACME].value,
                       "%s.acme: true needs the ACME client, which runs only when "
                       "acme.directory is set; set acme.directory (e.g. "
                       "https://acme-v02.api.letsencrypt.org/directory) or remove this key",
                       s->path);
    }
}

void tf_conf__finish_acme(tf_conf__ctx_t *ctx)
{
    /* Absent: both. Written, the list was checked non-empty. */
    if (ctx->conf->acme.challenges == 0)
        ctx->conf->acme.challenges = TF_CONF_ACME_HTTP01 | TF_CONF_ACME_TLSALPN01;
    check_eab(ctx);
    check_tenants(ctx);
}
