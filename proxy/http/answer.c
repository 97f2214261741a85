/* Header rules, the sticky cookie, allow lists and the heads of the
 * responses tlsfront writes itself (SPEC §11). See route.h. */
#include "proxy/http/http_internal.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- header rules ------------------------------------------------------------ */

bool tf_http__rules_drop(const tf_conf_header_rules_t *rules, const char *name, size_t nlen)
{
    if (rules == NULL)
        return false;
    for (size_t i = 0; i < rules->remove.count; i++) {
        const char *r = rules->remove.items[i];
        if (strlen(r) == nlen && strncasecmp(r, name, nlen) == 0)
            return true;
    }
    for (size_t i = 0; i < rules->nset; i++) {
        const char *s = rules->set[i].name;
        if (strlen(s) == nlen && strncasecmp(s, name, nlen) == 0)
            return true;
    }
    return false;
}

void tf_http__put_rule_lines(tf_http__out_t *o, const tf_conf_header_rules_t *rules)
{
    if (rules == NULL)
        return;
    for (size_t i = 0; i < rules->nset; i++)
        tf_http__put_header(o, rules->set[i].name, rules->set[i].value,
                            strlen(rules->set[i].value));
}

/* ---- cookies (RFC 6265 §4.2.1, §5.4) ------------------------------------------ */

typedef struct {
    const char *name, *value; /* value without its quotes */
    size_t name_len, value_len;
    const char *start; /* the crumb, trimmed */
    size_t len;
} crumb_t;

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The crumb of V (LEN bytes) that starts at *POS, which moves past it and
 * its ';'. False when V is done. A crumb without '=' has an empty name. */
static bool next_crumb(const char *v, size_t len, size_t *pos, crumb_t *c)
{
    if (*pos > len)
        return false;
    size_t s = *pos, e = s;
    while (e < len && v[e] != ';')
        e++;
    *pos = e + 1;
    while (s < e && is_ows(v[s]))
        s++;
    while (e > s && is_ows(v[e - 1]))
        e--;
    const char *eq = memchr(v + s, '=', e - s);
    c->start = v + s;
    c->len = e - s;
    if (eq == NULL) {
        c->name = v + s;
        c->name_len = 0;
        c->value = v + e;
        c->value_len = 0;
        return true;
    }
    size_t ne = (size_t)(eq - v), vs = ne + 1;
    while (ne > s && is_ows(v[ne - 1]))
        ne--;
    while (vs < e && is_ows(v[vs]))
        vs++;
    c->name = v + s;
    c->name_len = ne - s;
    c->value = v + vs;
    c->value_len = e - vs;
    if (c->value_len >= 2 && c->value[0] == '"' && c->value[c->value_len - 1] == '"') {
        c->value++;
        c->value_len -= 2;
    }
    return true;
}

static bool crumb_is(const crumb_t *c, const char *name, size_t nlen)
{
    return c->name_len == nlen && nlen > 0 && memcmp(c->name, name, nlen) == 0;
}

bool tf_http_cookie_find(const tf_http_header_t *headers, size_t nheaders, const char *name,
                         const char **val, size_t *vlen)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < nheaders; i++) {
        if (!name_is(&headers[i], "cookie"))
            continue;
        size_t pos = 0;
        crumb_t c;
        while (next_crumb(headers[i].value, headers[i].value_len, &pos, &c)) {
            if (crumb_is(&c, name, nlen)) {
                *val = c.value;
                *vlen = c.value_len;
                return true;
            }
        }
    }
    return false;
}

void tf_http__put_cookie_without(tf_http__out_t *o, const tf_http_header_t *h, const char *name)
{
    size_t nlen = strlen(name), pos = 0, kept = 0;
    bool found = false;
    crumb_t c;
    while (!found && next_crumb(h->value, h->value_len, &pos, &c))
        found = crumb_is(&c, name, nlen);
    if (!found) { /* as sent */
        tf_http__put(o, h->name, h->name_len);
        tf_http__put(o, ": ", 2);
        tf_http__put(o, h->value, h->value_len);
        tf_http__put(o, "\r\n", 2);
        return;
    }
    pos = 0;
    while (next_crumb(h->value, h->value_len, &pos, &c)) {
        if (c.len == 0 || crumb_is(&c, name, nlen))
            continue;
        if (kept++ == 0) {
            tf_http__put(o, h->name, h->name_len);
            tf_http__put(o, ": ", 2);
        } else {
            tf_http__put(o, "; ", 2);
        }
        tf_http__put(o, c.start, c.len);
    }
    if (kept > 0)
        tf_http__put(o, "\r\n", 2);
}

/* ---- allow --------------------------------------------------------------------- */

static bool in_cidr(const tf_conf_cidr_t *c, const uint8_t *addr, unsigned family)
{
    if (c->family != family)
        return false;
    size_t full = c->bits / 8;
    unsigned rest = c->bits % 8;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

bool tf_http_allowed(const tf_conf_allow_t *allow, const struct sockaddr *sa)
{
    if (allow->count == 0)
        return true;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t v4[4], v6[16];
    bool has4 = false;
    if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        has4 = true;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(v6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        if (memcmp(v6, mapped, 12) == 0) {
            memcpy(v4, v6 + 12, 4);
            has4 = true;
        }
    } else {
        return false;
    }
    /* An IPv4 client is also its mapped IPv6 address: a ::ffff:0:0/96
     * rule written in IPv6 covers it too. */
    if (sa->sa_family == AF_INET) {
        memcpy(v6, mapped, 12);
        memcpy(v6 + 12, v4, 4);
    }
    for (size_t i = 0; i < allow->count; i++) {
        if ((has4 && in_cidr(&allow->items[i], v4, 4)) || in_cidr(&allow->items[i], v6, 6))
            return true;
    }
    return false;
}

/* ---- answers ------------------------------------------------------------------- */

long tf_http_answer_head(unsigned status, const char *content_type, size_t body_len,
                         const char *extra, size_t extra_len, bool close,
                         const tf_conf_header_rules_t *rules, char *out, size_t cap)
{
    tf_http__out_t o = {.out = out, .cap = cap};
    char line[64];
    int n = snprintf(line, sizeof line, "HTTP/1.1 %u %s\r\n", status, tf_http_reason(status));
    tf_http__put(&o, line, (size_t)n);
    if (content_type != NULL && !tf_http__rules_drop(rules, "Content-Type", 12))
        tf_http__put_header(&o, "Content-Type", content_type, strlen(content_type));
    n = snprintf(line, sizeof line, "Content-Length: %zu\r\n", body_len);
    tf_http__put(&o, line, (size_t)n);
    if (extra != NULL)
        tf_http__put(&o, extra, extra_len);
    if (close)
        tf_http__put_str(&o, "Connection: close\r\n");
    tf_http__put_rule_lines(&o, rules);
    tf_http__put(&o, "\r\n", 2);
    return o.overflow ? -1 : (long)o.len;
}
