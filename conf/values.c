/* Pure parsers for configuration values: durations, integers, addresses,
 * host patterns and the small string checks the schema refers to. None of
 * them allocates; each returns 0 or TF_EINVAL with a reason that says what
 * to write instead. */
#include "conf/conf_internal.h"

#include "common/err.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#define UNITS_HINT "ms, s, m or h (e.g. 500ms, 10s, 5m, 1h)"
#define HOST_HINT "host names use letters, digits, '-' and '.'"

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

static size_t count_digits(const char *s)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

/* Digits only, no sign; fails on overflow of uint64_t. */
static bool digits_value(const char *s, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

int tf_conf__parse_uint(const char *s, uint64_t *v, char *why, size_t len)
{
    size_t n = count_digits(s);
    if (n == 0 || s[n] != '\0')
        return fail(why, len, "'%s' is not a whole number; write digits only, e.g. 10000", s);
    if (!digits_value(s, n, v))
        return fail(why, len, "'%s' is too large", s);
    return 0;
}

static uint64_t unit_ms(const char *u)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(u, units[i].name) == 0)
            return units[i].ms;
    }
    return 0;
}

int tf_conf__parse_duration(const char *s, uint64_t *ms, char *why, size_t len)
{
    size_t n = count_digits(s);
    if (n == 0)
        return fail(why, len, "'%s' is not a duration; write a number and a unit: " UNITS_HINT, s);
    if (s[n] == '\0')
        return fail(why, len, "'%s' has no unit; durations need one of " UNITS_HINT, s);
    uint64_t mult = unit_ms(s + n);
    if (mult == 0 && (s[n] == ' ' || s[n] == '\t'))
        return fail(why, len,
                    "'%s' is not a duration; write the number and the unit with no space, one "
                    "of " UNITS_HINT,
                    s);
    if (mult == 0)
        return fail(why, len,
                    "'%s' has an unknown unit '%s'; write the number and one of " UNITS_HINT
                    " with no space",
                    s, s + n);
    uint64_t v;
    if (!digits_value(s, n, &v) || v > UINT64_MAX / mult)
        return fail(why, len, "'%s' is too large", s);
    *ms = v * mult;
    return 0;
}

static bool label_char_ok(char c, bool lax)
{
    return isalnum((unsigned char)c) || c == '-' || (lax && c == '_');
}

/* One label of LEN bytes at S. */
static bool label_ok(const char *s, size_t n, bool lax, const char *whole, char *why, size_t len)
{
    if (n == 0)
        return fail(why, len, "'%s' has an empty label (two dots in a row, or a leading dot)",
                    whole) == 0;
    if (n > 63)
        return fail(why, len, "'%s' has a label longer than 63 characters", whole) == 0;
    for (size_t i = 0; i < n; i++) {
        if (!label_char_ok(s[i], lax)) {
            unsigned char c = (unsigned char)s[i];
            if (isprint(c))
                return fail(why, len, "invalid character '%c' in '%s'; " HOST_HINT, c, whole) == 0;
            return fail(why, len, "invalid byte 0x%02x in '%s'; " HOST_HINT, c, whole) == 0;
        }
    }
    if (s[0] == '-' || s[n - 1] == '-')
        return fail(why, len, "a label of '%s' starts or ends with '-'; " HOST_HINT, whole) == 0;
    return true;
}

static bool dns_name_check(const char *s, bool lax, const char *whole, char *why, size_t len)
{
    size_t total = strlen(s);
    if (total == 0)
        return fail(why, len, "empty host name") == 0;
    if (total > 253)
        return fail(why, len, "'%.64s...' is longer than 253 characters", whole) == 0;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!label_ok(p, n, lax, whole, why, len))
            return false;
        if (dot == NULL)
            return true;
        p = dot + 1;
    }
}

bool tf_conf__dns_name_ok(const char *s, char *why, size_t len)
{
    return dns_name_check(s, false, s, why, len);
}

static bool all_digits_and_dots(const char *s)
{
    return *s != '\0' && strspn(s, "0123456789.") == strlen(s);
}

/* Port 0 asks the kernel for a free port: meaningful for a listener (tests
 * and supervisors read the port tlsfront reports), never for a backend. */
static int parse_port(const char *p, const char *whole, bool listener, uint16_t *port, char *why,
                      size_t len)
{
    uint64_t v = 0;
    size_t n = count_digits(p);
    if (n == 0 && *p == '\0')
        return fail(why, len, "'%s' has no port; write HOST:PORT, e.g. 0.0.0.0:443", whole);
    uint64_t lowest = listener ? 0 : 1;
    if (n == 0 || p[n] != '\0' || n > 5 || !digits_value(p, n, &v) || v < lowest || v > 65535)
        return fail(why, len, "'%s' has an invalid port '%s'; use a number from 1 to 65535%s",
                    whole, p, listener ? ", or 0 for a free port the kernel chooses" : "");
    *port = (uint16_t)v;
    return 0;
}

static int parse_bracketed(const char *s, bool listener, tf_conf_addr_t *out, char *host,
                           size_t hostlen, char *why, size_t len)
{
    const char *end = strchr(s, ']');
    size_t n = end ? (size_t)(end - s - 1) : 0;
    if (end == NULL || n == 0 || n >= hostlen || n >= INET6_ADDRSTRLEN)
        return fail(why, len, "'%s' is not a valid [IPv6]:PORT address, e.g. [::]:443", s);
    memcpy(host, s + 1, n);
    host[n] = '\0';
    unsigned char buf[16];
    if (inet_pton(AF_INET6, host, buf) != 1)
        return fail(why, len, "'%s' is not a valid IPv6 address, e.g. [::1]:443", s);
    if (end[1] != ':')
        return fail(why, len, "'%s' has no port; write [ADDRESS]:PORT, e.g. [::]:443", s);
    out->family = TF_CONF_ADDR_IPV6;
    return parse_port(end + 2, s, listener, &out->port, why, len);
}

static int check_host_part(const char *s, const char *host, bool listener, tf_conf_addr_t *out,
                           char *why, size_t len)
{
    unsigned char buf[4];
    if (*host == '\0' || strcmp(host, "*") == 0)
        return fail(why, len,
                    "'%s' has no host; write 0.0.0.0:PORT for every IPv4 address or [::]:PORT "
                    "for IPv6",
                    s);
    if (all_digits_and_dots(host)) {
        if (inet_pton(AF_INET, host, buf) != 1)
            return fail(why, len, "'%s' is not a valid IPv4 address", s);
        out->family = TF_CONF_ADDR_IPV4;
        return 0;
    }
    out->family = TF_CONF_ADDR_NAME;
    if (!dns_name_check(host, true, s, why, len))
        return TF_EINVAL;
    if (listener && strcmp(host, "localhost") != 0)
        return fail(why, len,
                    "'%s': listen addresses must be IP literals or localhost (names are not "
                    "resolved for listeners); write e.g. 0.0.0.0:443 or [::]:443",
                    s);
    return 0;
}

int tf_conf__parse_addr(const char *s, bool listener, tf_conf_addr_t *out, char *host,
                        size_t hostlen, char *why, size_t len)
{
    memset(out, 0, sizeof *out);
    if (s[0] == '[')
        return parse_bracketed(s, listener, out, host, hostlen, why, len);
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return fail(why, len, "'%s' has no port; write HOST:PORT, e.g. 0.0.0.0:443", s);
    if (memchr(s, ':', (size_t)(colon - s)) != NULL)
        return fail(why, len, "'%s': IPv6 addresses need brackets, e.g. [::1]:443", s);
    size_t n = (size_t)(colon - s);
    if (n >= hostlen || n > 253)
        return fail(why, len, "'%.64s...' has a host longer than 253 characters", s);
    memcpy(host, s, n);
    host[n] = '\0';
    int rc = check_host_part(s, host, listener, out, why, len);
    if (rc != 0)
        return rc;
    return parse_port(colon + 1, s, listener, &out->port, why, len);
}

int tf_conf__parse_unix(const char *s, tf_conf_addr_t *out, char *path, size_t pathlen, char *why,
                        size_t len)
{
    const char *p = s + 5; /* after "unix:" */
    size_t n = strlen(p);
    memset(out, 0, sizeof *out);
    if (n == 0)
        return fail(why, len, "'%s' has no path; write unix:/run/app.sock", s);
    if (p[0] != '/')
        return fail(why, len,
                    "'%s' is not an absolute path; write it starting with '/', e.g. "
                    "unix:/run/app.sock",
                    s);
    size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;
    if (n > max || n >= pathlen)
        return fail(why, len,
                    "'%.64s...': a unix socket path holds at most %zu bytes, this one has %zu; "
                    "use a shorter path",
                    s, max, n);
    memcpy(path, p, n + 1);
    out->family = TF_CONF_ADDR_UNIX;
    return 0;
}

/* Rejects every misplaced '*' with a reason naming the rule broken. */
static int wildcard_check(const char *p, char *why, size_t len)
{
    const char *rest = strncmp(p, "*.", 2) == 0 ? p + 2 : p;
    const char *star = strchr(rest, '*');
    if (star == NULL)
        return 0;
    if (rest != p && strncmp(rest, "*.", 2) == 0)
        return fail(why, len,
                    "'%s' has more than one wildcard label; only the left-most label may be "
                    "'*', e.g. *.example.com",
                    p);
    bool whole_label = (star == rest || star[-1] == '.') && (star[1] == '.' || star[1] == '\0');
    if (whole_label)
        return fail(why, len,
                    "'%s' has a wildcard that is not the left-most label; write it as "
                    "*.example.com",
                    p);
    return fail(why, len,
                "'%s' has a partial-label wildcard, which matches nothing; a wildcard must be the "
                "whole left-most label, e.g. *.example.com",
                p);
}

int tf_conf__host_normalize(const char *pattern, char *out, size_t outlen, char *why, size_t len)
{
    size_t n = strlen(pattern);
    if (n == 0)
        return fail(why, len,
                    "empty host; write a name such as app.example.com, *.example.com or \"*\"");
    if (n > 1 && pattern[n - 1] == '.')
        n--; /* one trailing dot: the absolute form of the same name */
    if (n > 253 || n >= outlen)
        return fail(why, len, "'%.64s...' is longer than 253 characters", pattern);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)pattern[i]);
    out[n] = '\0';
    if (strcmp(out, "*") == 0)
        return 0;
    int rc = wildcard_check(out, why, len);
    if (rc != 0)
        return rc;
    const char *name = strncmp(out, "*.", 2) == 0 ? out + 2 : out;
    return dns_name_check(name, false, pattern, why, len) ? 0 : TF_EINVAL;
}

int tf_conf_host_pattern_check(const char *pattern, char *why, size_t len)
{
    char buf[256];
    if (len > 0)
        why[0] = '\0';
    return tf_conf__host_normalize(pattern, buf, sizeof buf, why, len);
}

int tf_conf__check_abs_path(const char *s, char *why, size_t len)
{
    if (s[0] != '/')
        return fail(why, len, "'%s' is not an absolute path; write it starting with '/'", s);
    return 0;
}

int tf_conf__check_access_log(const char *s, char *why, size_t len)
{
    if (strcmp(s, "stdout") == 0 || strcmp(s, "off") == 0 || s[0] == '/')
        return 0;
    return fail(why, len,
                "'%s' is not valid; write stdout, off or an absolute path such as "
                "/var/log/tlsfront/access.log",
                s);
}

int tf_conf__check_url_path(const char *s, char *why, size_t len)
{
    if (s[0] != '/')
        return fail(why, len, "'%s' must start with '/', e.g. /health", s);
    /* A check's request is built in a fixed buffer (proxy/net/health.c). */
    if (strlen(s) > 256)
        return fail(why, len, "'%.64s...' is longer than 256 characters", s);
    for (const char *p = s; *p; p++) {
        if (!isgraph((unsigned char)*p))
            return fail(why, len, "'%s' contains a space or control character; percent-encode it",
                        s);
    }
    return 0;
}

int tf_conf__check_tenant_name(const char *s, char *why, size_t len)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789_.-") != n)
        return fail(why, len,
                    "tenant name '%.64s' is invalid; use 1 to 64 letters, digits, '_', '.' or '-'",
                    s);
    return 0;
}

int tf_conf__check_nonempty(const char *s, char *why, size_t len)
{
    if (s[0] == '\0')
        return fail(why, len, "empty string; write a value, or null where the key allows it");
    return 0;
}
