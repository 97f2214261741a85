/* Pure parsers and checks for the routing and policy keys (SPEC §11):
 * booleans, status ranges, CIDRs, route prefixes, header names and values,
 * cookie names, redirect targets. Like values.c, none allocates; each
 * returns 0 or TF_EINVAL with a reason that says what to write instead. */
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

int tf_conf__parse_bool(const char *s, bool *v, char *why, size_t len)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *v = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    /* YAML 1.1's yes/no/on/off are not booleans here: say so rather than guess. */
    return fail(why, len, "'%s' is not a boolean; write true or false", s);
}

/* A status of three digits, 100..599, at S; the length read in *N. */
static bool status_at(const char *s, uint16_t *v, size_t *n)
{
    size_t i = 0;
    unsigned x = 0;
    while (s[i] >= '0' && s[i] <= '9' && i < 4)
        x = x * 10 + (unsigned)(s[i++] - '0');
    *n = i;
    if (i != 3 || x < 100 || x > 599)
        return false;
    *v = (uint16_t)x;
    return true;
}

int tf_conf__parse_status_range(const char *s, tf_conf__status_t *r, char *why, size_t len)
{
    size_t n, m = 0;
    tf_conf__status_t v;
    if (!status_at(s, &v.min, &n))
        goto bad;
    v.max = v.min;
    if (s[n] == '-' && !status_at(s + n + 1, &v.max, &m))
        goto bad;
    if (s[n] != '\0' && (s[n] != '-' || s[n + 1 + m] != '\0'))
        goto bad;
    if (v.min > v.max)
        return fail(why, len,
                    "'%s' ends before it starts; write the lower status first, e.g. "
                    "\"200-399\"",
                    s);
    *r = v;
    return 0;
bad:
    return fail(why, len,
                "'%s' is not a status range; write one status or LOW-HIGH, within 100-599, "
                "e.g. \"200\" or \"200-399\"",
                s);
}

/* Writes ADDR/BITS with the host bits cleared into OUT, for "did you mean". */
static void masked_text(const tf_conf_cidr_t *c, char *out, size_t len)
{
    char a[INET6_ADDRSTRLEN];
    inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a, sizeof a);
    snprintf(out, len, "%s/%u", a, c->bits);
}

int tf_conf__parse_cidr(const char *s, tf_conf_cidr_t *out, char *why, size_t len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    tf_conf_cidr_t c = {0};
    if (n == 0 || n >= sizeof host)
        goto bad;
    memcpy(host, s, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, c.addr) == 1)
        c.family = 4;
    else if (inet_pton(AF_INET6, host, c.addr) == 1)
        c.family = 6;
    else
        goto bad;
    unsigned max = c.family == 4 ? 32 : 128, bits = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        size_t d = strspn(p, "0123456789");
        bits = 0;
        for (size_t i = 0; i < d && i < 4; i++)
            bits = bits * 10 + (unsigned)(p[i] - '0');
        if (d == 0 || d > 3 || p[d] != '\0' || bits > max)
            return fail(why, len, "'%s' has an invalid prefix length; use /0 to /%u for IPv%u", s,
                        max, c.family);
    }
    c.bits = (uint8_t)bits;
    tf_conf_cidr_t m = c;
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits > i * 8 ? bits - i * 8 : 0;
        m.addr[i] &= keep >= 8 ? 0xff : (uint8_t)(0xff00u >> keep);
    }
    if (memcmp(m.addr, c.addr, sizeof c.addr) != 0) {
        char t[INET6_ADDRSTRLEN + 8];
        masked_text(&m, t, sizeof t);
        return fail(why, len,
                    "'%s' has bits set after the /%u prefix, so it is not a network; did you "
                    "mean %s?",
                    s, bits, t);
    }
    *out = c;
    return 0;
bad:
    return fail(why, len,
                "'%s' is not an address or network; write an IPv4 or IPv6 address, with an "
                "optional /prefix: \"192.0.2.7\", \"10.0.0.0/8\", \"2001:db8::/32\"",
                s);
}

/* RFC 3986 pchar without pct-encoded: unreserved, sub-delims, ':' and '@'. */
static bool path_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

static int route_path_char(const char *s, char c, char *why, size_t len)
{
    if (c == '%')
        return fail(why, len,
                    "'%s' contains '%%': requests are matched on their decoded path, so write "
                    "the character itself (a prefix holds only unreserved characters, "
                    "sub-delims, ':', '@' and '/')",
                    s);
    if (c == '?' || c == '#')
        return fail(why, len,
                    "'%s' contains '%c'; a route is a path prefix, without query or fragment", s,
                    c);
    if (c > 0x20 && c < 0x7f)
        return fail(why, len,
                    "'%s' contains '%c'; a prefix holds only letters, digits, '-._~', "
                    "\"!$&'()*+,;=\", ':', '@' and '/'",
                    s, c);
    return fail(why, len,
                "'%s' contains a space, control or non-ASCII byte; a prefix holds "
                "only letters, digits, '-._~', \"!$&'()*+,;=\", ':', '@' and '/'",
                s);
}

int tf_conf__check_route_path(const char *s, char *why, size_t len)
{
    if (s[0] != '/')
        return fail(why, len, "'%s' must start with '/', e.g. /api/", s);
    if (strcmp(s, "/") == 0)
        return fail(why, len,
                    "'/' is not a route: the tenant's own keys are the / route; set them on the "
                    "tenant");
    for (const char *p = s; *p; p++) {
        if (!path_char(*p))
            return route_path_char(s, *p, why, len);
    }
    if (strstr(s, "//") != NULL)
        return fail(why, len,
                    "'%s' contains '//'; requests are matched with runs of '/' merged, so write "
                    "one '/'",
                    s);
    for (const char *seg = s + 1; *seg;) {
        size_t n = strcspn(seg, "/");
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return fail(why, len,
                        "'%s' has a '.' or '..' segment; requests are matched with dot segments "
                        "resolved, so write the path they resolve to",
                        s);
        seg += n + (seg[n] == '/');
    }
    return 0;
}

/* tchar of RFC 9110 §5.6.2. */
static bool tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        if (!tchar(*s))
            return false;
    }
    return true;
}

int tf_conf__check_cookie_name(const char *s, char *why, size_t len)
{
    if (strlen(s) > 64)
        return fail(why, len, "'%.64s...' is too long for a cookie name; use at most 64 characters",
                    s);
    if (!is_token(s))
        return fail(why, len,
                    "'%s' is not a cookie name; use letters, digits and !#$%%&'*+-.^_`|~, e.g. "
                    "TFSRV",
                    s);
    return 0;
}

/* Fields the proxy writes or that frame the message: a rule on them would
 * forge the client's address or break the framing (SPEC §7, §11). */
static const char *const owned[] = {
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "forwarded",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
};

int tf_conf__check_header_name(const char *s, char *why, size_t len)
{
    if (!is_token(s))
        return fail(why, len,
                    "'%s' is not a header name; use letters, digits and !#$%%&'*+-.^_`|~, e.g. "
                    "Strict-Transport-Security",
                    s);
    /* X_Forwarded_For too: CGI, WSGI and PHP read '_' and '-' alike, and
     * the proxy drops such fields from clients for that reason. */
    char dashed[32];
    size_t n = strlen(s);
    for (size_t i = 0; i < n && i < sizeof dashed - 1; i++)
        dashed[i] = s[i] == '_' ? '-' : s[i];
    dashed[n < sizeof dashed - 1 ? n : sizeof dashed - 1] = '\0';
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
        if (n >= sizeof dashed || strcasecmp(dashed, owned[i]) != 0)
            continue;
        if (strncasecmp(dashed, "x-forwarded-", 12) == 0 || strcasecmp(dashed, "forwarded") == 0)
            return fail(why, len,
                        "'%s' is written by the proxy itself (SPEC §7) and cannot be set or "
                        "removed by a rule; remove this rule",
                        s);
        return fail(why, len,
                    "'%s' frames the message or belongs to one connection, so the proxy manages "
                    "it; remove this rule",
                    s);
    }
    return 0;
}

int tf_conf__check_header_value(const char *s, char *why, size_t len)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return fail(why, len,
                        "the value contains a control character (byte 0x%02x); header values "
                        "may not hold line breaks or control characters other than tab",
                        *p);
    }
    size_t n = strlen(s);
    if (n > 0 && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        return fail(why, len, "'%s' starts or ends with white space, which HTTP drops; remove it",
                    s);
    return 0;
}

int tf_conf__check_health_host(const char *s, char *why, size_t len)
{
    if (*s == '\0' || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789-._:[]") != strlen(s))
        return fail(why, len,
                    "'%s' is not a host; write a name or address with an optional port, e.g. "
                    "portal.acme.example, or null for the tenant's first host",
                    s);
    return 0;
}

/* SNI carries a DNS name only (RFC 6066 §3): an IP literal is verified
 * against the certificate's IP SANs without one. */
int tf_conf__check_sni(const char *s, char *why, size_t len)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
        return fail(why, len,
                    "'%s' is an IP address, which TLS does not send as SNI; remove tls_sni (the "
                    "address is verified against the certificate's IP names)",
                    s);
    return tf_conf__dns_name_ok(s, why, len) ? 0 : TF_EINVAL;
}

int tf_conf__check_redirect(const char *s, char *why, size_t len)
{
    bool url = strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
    const char *host = url ? strstr(s, "//") + 2 : NULL;
    if (!url && s[0] != '/')
        return fail(why, len,
                    "'%s' is not a redirect target; write an absolute URL such as "
                    "https://portal.acme.example/new/ or a path starting with '/'",
                    s);
    if (url && (*host == '\0' || *host == '/'))
        return fail(why, len, "'%s' has no host; write e.g. https://portal.acme.example/new/", s);
    if (!url && s[1] == '/')
        return fail(why, len,
                    "'%s' starts with '//', which a browser reads as another host; write "
                    "https://HOST/... for that, or one '/'",
                    s);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '#')
            return fail(why, len,
                        "'%s' contains a space, '#', control or non-ASCII byte; percent-encode "
                        "it",
                        s);
    }
    return 0;
}

int tf_conf__check_weight(const char *s, char *why, size_t len)
{
    if (strcmp(s, "0") == 0)
        return fail(why, len, "weight 0: use backup: true, or remove the backend");
    return 0;
}

void tf_conf__check_proxy_protocol(tf_conf__ctx_t *ctx)
{
    const tf_conf_proxy_protocol_t *pp = &ctx->conf->proxy_protocol;
    if (!pp->enabled || pp->from.count > 0)
        return;
    /* Without it any client could claim any address: the header is only
     * as trustworthy as the balancer that writes it. */
    tf_conf__error(ctx, ctx->conf->proxy_protocol_seen.value,
                   "listen.proxy_protocol.from: required when enabled; list the balancers that "
                   "send the header, e.g. from: [\"10.0.0.0/8\"]");
}
