/* See proxyproto.h. Written by hand: the header is a few dozen bytes of
 * fixed layout, libuv and libc offer no parser for it, and the strictness
 * SPEC §14 asks for (every field checked, nothing skipped over) is what a
 * small parser of our own can show in its tests and its fuzz target. */
#include "proxy/net/proxyproto.h"

#include "common/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char v1_prefix[] = "PROXY ";

/* ---- version 1: "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" ---------------- */

/* The next space-separated token of LINE (LEN bytes, no CRLF) from *POS,
 * which moves past it and one space. Exactly one space between tokens:
 * an empty token (two spaces, a trailing space) is refused. */
static bool v1_token(const char *line, size_t len, size_t *pos, const char **tok, size_t *tlen,
                     bool last)
{
    size_t start = *pos, end = start;
    while (end < len && line[end] != ' ')
        end++;
    if (end == start || (last ? end != len : end == len))
        return false;
    *tok = line + start;
    *tlen = end - start;
    *pos = last ? end : end + 1;
    return true;
}

/* A port: 1-5 digits, no leading zero (but "0"), at most 65535. */
static bool v1_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* An address of FAMILY in its text form; inet_pton refuses octets over 255
 * and leading zeros in IPv4. */
static bool v1_addr(int family, const char *s, size_t n, uint16_t port,
                    struct sockaddr_storage *out)
{
    char text[INET6_ADDRSTRLEN];
    if (n >= sizeof text || memchr(s, '\0', n) != NULL) /* inet_pton would stop there */
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    memset(out, 0, sizeof *out);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)out;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        return inet_pton(AF_INET, text, &a->sin_addr) == 1;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    return inet_pton(AF_INET6, text, &a->sin6_addr) == 1;
}

/* The line between "PROXY " and CRLF. */
static int v1_line(const char *line, size_t len, tf_pp_header_t *out)
{
    const char *proto, *src, *dst, *sport, *dport;
    size_t plen, slen, dlen, splen, dplen, pos = 0;
    if (len >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (len == 7 || line[7] == ' ')) {
        out->local = true; /* what follows UNKNOWN is ignored, as specified */
        return 0;
    }
    if (!v1_token(line, len, &pos, &proto, &plen, false) || plen != 4 ||
        (memcmp(proto, "TCP4", 4) != 0 && memcmp(proto, "TCP6", 4) != 0))
        return TF_EINVAL;
    int family = proto[3] == '4' ? AF_INET : AF_INET6;
    uint16_t sp, dp;
    if (!v1_token(line, len, &pos, &src, &slen, false) ||
        !v1_token(line, len, &pos, &dst, &dlen, false) ||
        !v1_token(line, len, &pos, &sport, &splen, false) ||
        !v1_token(line, len, &pos, &dport, &dplen, true) || !v1_port(sport, splen, &sp) ||
        !v1_port(dport, dplen, &dp) || !v1_addr(family, src, slen, sp, &out->src) ||
        !v1_addr(family, dst, dlen, dp, &out->dst))
        return TF_EINVAL;
    return 0;
}

static int v1_parse(const uint8_t *data, size_t len, tf_pp_header_t *out)
{
    /* The CR of the 107 bytes' CRLF is at index 105 at the latest. */
    const size_t last_cr = TF_PP_V1_MAX - 2;
    size_t n = len < last_cr + 1 ? len : last_cr + 1;
    const size_t plen = sizeof v1_prefix - 1;
    if (memcmp(data, v1_prefix, n < plen ? n : plen) != 0)
        return TF_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n')
            return TF_EINVAL; /* a line feed not after CR */
        if (data[i] != '\r')
            continue;
        if (i + 1 == len)
            return TF_PP_MORE;
        if (data[i + 1] != '\n' || i < plen)
            return TF_EINVAL;
        *out = (tf_pp_header_t){.version = 1, .len = i + 2};
        return v1_line((const char *)data + plen, i - plen, out);
    }
    return len <= last_cr ? TF_PP_MORE : TF_EINVAL;
}

/* ---- version 2: the binary header -------------------------------------------- */

enum { V2_LOCAL = 0, V2_PROXY = 1 };
enum { V2_UNSPEC = 0, V2_INET = 1, V2_INET6 = 2, V2_UNIX = 3 };
enum { V2_STREAM = 1, V2_DGRAM = 2 };

/* The address block's size for a family, or 0 for one without addresses. */
static size_t v2_addr_size(unsigned family)
{
    return family == V2_INET ? 12 : family == V2_INET6 ? 36 : family == V2_UNIX ? 216 : 0;
}

/* TLVs (type, 16-bit length, value) fill [p, end) exactly. */
static bool v2_tlvs(const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        if (end - p < 3)
            return false;
        size_t n = (size_t)p[1] << 8 | p[2];
        if ((size_t)(end - p) - 3 < n)
            return false;
        p += 3 + n;
    }
    return true;
}

static void v2_addrs(unsigned family, const uint8_t *a, tf_pp_header_t *out)
{
    memset(&out->src, 0, sizeof out->src);
    memset(&out->dst, 0, sizeof out->dst);
    if (family == V2_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
        return;
    }
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
    struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
    s->sin6_family = d->sin6_family = AF_INET6;
    memcpy(&s->sin6_addr, a, 16);
    memcpy(&d->sin6_addr, a + 16, 16);
    memcpy(&s->sin6_port, a + 32, 2);
    memcpy(&d->sin6_port, a + 34, 2);
}

static int v2_parse(const uint8_t *data, size_t len, tf_pp_header_t *out)
{
    if (memcmp(data, v2_sig, len < sizeof v2_sig ? len : sizeof v2_sig) != 0)
        return TF_EINVAL;
    if (len >= 13 && (data[12] >> 4 != 2 || (data[12] & 15) > V2_PROXY))
        return TF_EINVAL;
    if (len >= 14 && (data[13] >> 4 > V2_UNIX || (data[13] & 15) > V2_DGRAM))
        return TF_EINVAL; /* a family or protocol that does not exist */
    if (len < 16)
        return TF_PP_MORE;
    unsigned command = data[12] & 15, family = data[13] >> 4, proto = data[13] & 15;
    size_t body = (size_t)data[14] << 8 | data[15];
    if (16 + body > TF_PP_V2_MAX || family > V2_UNIX || proto > V2_DGRAM)
        return TF_EINVAL;
    if (len < 16 + body)
        return TF_PP_MORE;
    *out = (tf_pp_header_t){.version = 2, .len = 16 + body, .local = true};
    if (command == V2_LOCAL)
        return 0; /* a health check: the block is discarded whole, as specified */
    size_t asize = v2_addr_size(family);
    if (body < asize || (family != V2_UNSPEC && proto != V2_STREAM) ||
        (family == V2_UNSPEC && proto != 0) || !v2_tlvs(data + 16 + asize, data + 16 + body))
        return TF_EINVAL;
    if (family == V2_INET || family == V2_INET6) {
        out->local = false;
        v2_addrs(family, data + 16, out);
    }
    return 0;
}

int tf_pp_parse(const uint8_t *data, size_t len, tf_pp_header_t *out)
{
    if (len == 0)
        return TF_PP_MORE;
    if (data[0] == v2_sig[0])
        return v2_parse(data, len, out);
    return v1_parse(data, len, out);
}

/* ---- writing -------------------------------------------------------------------- */

/* SA as IPv6 (an IPv4 address mapped), with its port. */
static void as_v6(const struct sockaddr *sa, struct in6_addr *addr, uint16_t *port)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        *addr = a->sin6_addr;
        *port = a->sin6_port;
        return;
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    memset(addr, 0, sizeof *addr);
    addr->s6_addr[10] = addr->s6_addr[11] = 0xff;
    memcpy(&addr->s6_addr[12], &a->sin_addr, 4);
    *port = a->sin_port;
}

static size_t write_v1(bool v4, const struct sockaddr *src, const struct sockaddr *dst,
                       uint8_t *out, size_t cap)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    unsigned sp, dp;
    if (v4) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)src;
        const struct sockaddr_in *b = (const struct sockaddr_in *)dst;
        inet_ntop(AF_INET, &a->sin_addr, s, sizeof s);
        inet_ntop(AF_INET, &b->sin_addr, d, sizeof d);
        sp = ntohs(a->sin_port);
        dp = ntohs(b->sin_port);
    } else {
        struct in6_addr a, b;
        uint16_t ap, bp;
        as_v6(src, &a, &ap);
        as_v6(dst, &b, &bp);
        inet_ntop(AF_INET6, &a, s, sizeof s);
        inet_ntop(AF_INET6, &b, d, sizeof d);
        sp = ntohs(ap);
        dp = ntohs(bp);
    }
    int n =
        snprintf((char *)out, cap, "PROXY %s %s %s %u %u\r\n", v4 ? "TCP4" : "TCP6", s, d, sp, dp);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static size_t write_v2(bool v4, const struct sockaddr *src, const struct sockaddr *dst,
                       uint8_t *out, size_t cap)
{
    size_t asize = v4 ? 12 : 36;
    if (cap < 16 + asize)
        return 0;
    memcpy(out, v2_sig, sizeof v2_sig);
    out[12] = 0x20 | V2_PROXY;
    out[13] = (uint8_t)((v4 ? V2_INET : V2_INET6) << 4 | V2_STREAM);
    out[14] = 0;
    out[15] = (uint8_t)asize;
    uint8_t *a = out + 16;
    if (v4) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)src;
        const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
        memcpy(a, &s->sin_addr, 4);
        memcpy(a + 4, &d->sin_addr, 4);
        memcpy(a + 8, &s->sin_port, 2);
        memcpy(a + 10, &d->sin_port, 2);
    } else {
        struct in6_addr s, d;
        uint16_t sp, dp;
        as_v6(src, &s, &sp);
        as_v6(dst, &d, &dp);
        memcpy(a, &s, 16);
        memcpy(a + 16, &d, 16);
        memcpy(a + 32, &sp, 2);
        memcpy(a + 34, &dp, 2);
    }
    return 16 + asize;
}

size_t tf_pp_write(int version, const struct sockaddr *src, const struct sockaddr *dst,
                   uint8_t *out, size_t cap)
{
    bool ok = (src->sa_family == AF_INET || src->sa_family == AF_INET6) &&
              (dst->sa_family == AF_INET || dst->sa_family == AF_INET6);
    if ((version != 1 && version != 2) || cap < TF_PP_WRITE_MAX)
        return 0;
    if (!ok && version == 1) {
        memcpy(out, "PROXY UNKNOWN\r\n", 15);
        return 15;
    }
    if (!ok) {
        memcpy(out, v2_sig, sizeof v2_sig);
        out[12] = 0x20 | V2_LOCAL;
        out[13] = out[14] = out[15] = 0;
        return 16;
    }
    bool v4 = src->sa_family == AF_INET && dst->sa_family == AF_INET;
    return version == 1 ? write_v1(v4, src, dst, out, cap) : write_v2(v4, src, dst, out, cap);
}
