/* PROXY protocol headers (proxy/net/proxyproto.h, SPEC §14): the examples
 * of haproxy's proxy-protocol.txt, every field a strict reader refuses,
 * headers cut anywhere (more to read, never a wrong answer), and what the
 * writer makes read back the same. */
#include "proxy/net/proxyproto.h"

#include "common/err.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

static int parse_text(const char *s, tf_pp_header_t *h)
{
    return tf_pp_parse((const uint8_t *)s, strlen(s), h);
}

static void expect_v4(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    char text[INET_ADDRSTRLEN];
    cr_assert_eq(a->sin_family, AF_INET);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    cr_expect_str_eq(text, addr);
    cr_expect_eq(ntohs(a->sin_port), port);
}

static void expect_v6(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    char text[INET6_ADDRSTRLEN];
    cr_assert_eq(a->sin6_family, AF_INET6);
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    cr_expect_str_eq(text, addr);
    cr_expect_eq(ntohs(a->sin6_port), port);
}

Test(proxyproto, v1_tcp4_and_tcp6_give_the_client_and_the_address_it_reached)
{
    tf_pp_header_t h;
    const char *s = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
    cr_assert_eq(parse_text(s, &h), 0);
    cr_expect_eq(h.version, 1);
    cr_expect_not(h.local);
    cr_expect_eq(h.len, strlen("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"));
    expect_v4(&h.src, "192.168.0.1", 56324);
    expect_v4(&h.dst, "192.168.0.11", 443);
    cr_assert_eq(parse_text("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n", &h), 0);
    expect_v6(&h.src, "2001:db8::1", 65535);
    expect_v6(&h.dst, "::1", 0);
}

Test(proxyproto, v1_unknown_keeps_the_connection_s_own_addresses)
{
    tf_pp_header_t h;
    cr_assert_eq(parse_text("PROXY UNKNOWN\r\n", &h), 0);
    cr_expect(h.local);
    cr_expect_eq(h.len, 15u);
    cr_assert_eq(parse_text("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", &h), 0);
    cr_expect(h.local);
}

Test(proxyproto, v1_headers_off_the_specification_are_refused)
{
    static const char *const bad[] = {
        "PROXY TCP4 256.1.1.1 1.1.1.1 1 2\r\n",   /* an octet over 255 */
        "PROXY TCP4 01.1.1.1 1.1.1.1 1 2\r\n",    /* a leading zero */
        "PROXY TCP4 1.1.1.1 1.1.1.1 65536 2\r\n", /* a port over 65535 */
        "PROXY TCP4 1.1.1.1 1.1.1.1 01 2\r\n",    /* a port with a leading zero */
        "PROXY TCP4 1.1.1.1 1.1.1.1 -1 2\r\n",
        "PROXY TCP4 1.1.1.1  1.1.1.1 1 2\r\n", /* two spaces */
        "PROXY TCP4 1.1.1.1 1.1.1.1 1 2 \r\n", /* a trailing space */
        "PROXY TCP4 1.1.1.1 1.1.1.1 1\r\n",    /* a field missing */
        "PROXY TCP4 ::1 ::1 1 2\r\n",          /* IPv6 under TCP4 */
        "PROXY TCP6 1.1.1.1 1.1.1.1 1 2\r\n",  /* IPv4 under TCP6 */
        "PROXY UDP4 1.1.1.1 1.1.1.1 1 2\r\n",
        "PROXY TCP4 1.1.1.1 1.1.1.1 1 2\n",  /* LF without CR */
        "PROXY TCP4 1.1.1.1 1.1.1.1 1 2\rX", /* CR without LF */
        "proxy TCP4 1.1.1.1 1.1.1.1 1 2\r\n",
        "GET / HTTP/1.1\r\n",   /* no header at all */
        "\x16\x03\x01\x02\x00", /* a ClientHello */
        "PROXY UNKNOWNX\r\n",
    };
    /* A NUL inside an address (inet_pton would stop at it). */
    static const char nul[] = "PROXY TCP4 1.2.3.4\0junk 5.6.7.8 1 2\r\n";
    tf_pp_header_t hn;
    cr_expect_eq(tf_pp_parse((const uint8_t *)nul, sizeof nul - 1, &hn), TF_EINVAL);
    /* 108 bytes with the CRLF: one over the specification's 107. */
    char over[109];
    memset(over, 'x', sizeof over);
    memcpy(over, "PROXY UNKNOWN ", 14);
    memcpy(over + 106, "\r\n", 2);
    cr_expect_eq(tf_pp_parse((const uint8_t *)over, 108, &hn), TF_EINVAL);
    memcpy(over + 105, "\r\n", 2); /* 107: the longest there is */
    cr_expect_eq(tf_pp_parse((const uint8_t *)over, 107, &hn), 0);
    cr_expect_eq(hn.len, 107u);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tf_pp_header_t h;
        cr_expect_eq(parse_text(bad[i], &h), TF_EINVAL, "accepted: %s", bad[i]);
    }
    /* No CRLF within the specification's 107 bytes. */
    char longer[200];
    memset(longer, 'x', sizeof longer);
    memcpy(longer, "PROXY UNKNOWN ", 14);
    tf_pp_header_t h;
    cr_expect_eq(tf_pp_parse((const uint8_t *)longer, sizeof longer, &h), TF_EINVAL);
    /* 105 bytes without CR may still end at 107; 106 cannot. */
    cr_expect_eq(tf_pp_parse((const uint8_t *)longer, 105, &h), TF_PP_MORE);
    cr_expect_eq(tf_pp_parse((const uint8_t *)longer, 106, &h), TF_EINVAL);
}

/* A version 2 header: the signature, version 2 and COMMAND, FAMILY, the
 * block (LEN bytes at BLOCK). */
static size_t v2(uint8_t *out, uint8_t command, uint8_t family, const uint8_t *block, size_t len)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    memcpy(out, sig, 12);
    out[12] = (uint8_t)(0x20 | command);
    out[13] = family;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (len > 0) /* memcpy's source may not be NULL, even for 0 bytes */
        memcpy(out + 16, block, len);
    return 16 + len;
}

Test(proxyproto, v2_proxy_tcp4_tcp6_with_tlvs_and_local)
{
    uint8_t buf[512];
    tf_pp_header_t h;
    /* 10.0.0.1:1234 -> 10.0.0.2:443, then an AWS-like TLV (0xEA) and a NOOP. */
    uint8_t b4[] = {10,   0,    0,    1,    10,  0,   0,   2,   0x04, 0xd2, 0x01,
                    0xbb, 0xEA, 0x00, 0x04, 'v', 'p', 'c', 'e', 0x04, 0x00, 0x00};
    size_t n = v2(buf, 1, 0x11, b4, sizeof b4);
    buf[n] = 0x16; /* the ClientHello that follows is not the header's */
    cr_assert_eq(tf_pp_parse(buf, n + 1, &h), 0);
    cr_expect_eq(h.version, 2);
    cr_expect_eq(h.len, n);
    cr_expect_not(h.local);
    expect_v4(&h.src, "10.0.0.1", 1234);
    expect_v4(&h.dst, "10.0.0.2", 443);
    uint8_t b6[36] = {0x20, 0x01, 0x0d, 0xb8};
    b6[15] = 1;
    b6[31] = 2;
    b6[32] = 0x30;
    b6[33] = 0x39;
    b6[35] = 80;
    n = v2(buf, 1, 0x21, b6, sizeof b6);
    cr_assert_eq(tf_pp_parse(buf, n, &h), 0);
    expect_v6(&h.src, "2001:db8::1", 12345);
    expect_v6(&h.dst, "::2", 80);
    /* LOCAL: a balancer's health check, addresses (if any) discarded. */
    n = v2(buf, 0, 0x00, NULL, 0);
    cr_assert_eq(tf_pp_parse(buf, n, &h), 0);
    cr_expect(h.local);
    cr_expect_eq(h.len, 16u);
    /* PROXY with UNSPEC, and with AF_UNIX addresses: nothing usable. */
    n = v2(buf, 1, 0x00, NULL, 0);
    cr_assert_eq(tf_pp_parse(buf, n, &h), 0);
    cr_expect(h.local);
    uint8_t bu[216] = {0};
    n = v2(buf, 1, 0x31, bu, sizeof bu);
    cr_assert_eq(tf_pp_parse(buf, n, &h), 0);
    cr_expect(h.local);
}

Test(proxyproto, v2_headers_off_the_specification_are_refused)
{
    uint8_t buf[512];
    tf_pp_header_t h;
    uint8_t b4[12] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2};
    size_t n = v2(buf, 1, 0x11, b4, sizeof b4);
    buf[0] = 0x0E; /* signature */
    cr_expect_eq(tf_pp_parse(buf, n, &h), TF_EINVAL);
    n = v2(buf, 1, 0x11, b4, sizeof b4);
    buf[12] = 0x11; /* version 1 in a binary header */
    cr_expect_eq(tf_pp_parse(buf, n, &h), TF_EINVAL);
    n = v2(buf, 2, 0x11, b4, sizeof b4); /* command 2 */
    cr_expect_eq(tf_pp_parse(buf, n, &h), TF_EINVAL);
    n = v2(buf, 1, 0x12, b4, sizeof b4); /* UDP: not a stream */
    cr_expect_eq(tf_pp_parse(buf, n, &h), TF_EINVAL);
    n = v2(buf, 1, 0x41, b4, sizeof b4); /* family 4 */
    cr_expect_eq(tf_pp_parse(buf, n, &h), TF_EINVAL);
    cr_expect_eq(tf_pp_parse(buf, 14, &h), TF_EINVAL, "refused as soon as its byte arrives");
    n = v2(buf, 1, 0x21, b4, sizeof b4); /* 12 bytes for IPv6's 36 */
    cr_expect_eq(tf_pp_parse(buf, n, &h), TF_EINVAL);
    uint8_t tlv[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0x01, 0x00, 0x09, 'x'};
    n = v2(buf, 1, 0x11, tlv, sizeof tlv); /* a TLV running past the header */
    cr_expect_eq(tf_pp_parse(buf, n, &h), TF_EINVAL);
    uint8_t tlv2[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0x01, 0x00};
    n = v2(buf, 1, 0x11, tlv2, sizeof tlv2); /* a TLV cut in its length */
    cr_expect_eq(tf_pp_parse(buf, n, &h), TF_EINVAL);
    /* Longer than this reader takes. */
    n = v2(buf, 1, 0x11, b4, sizeof b4);
    buf[14] = 0x20;
    cr_expect_eq(tf_pp_parse(buf, n, &h), TF_EINVAL);
}

Test(proxyproto, a_header_cut_anywhere_asks_for_more_then_reads_whole)
{
    const char *s = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    uint8_t bin[64];
    uint8_t b4[12] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2};
    size_t bn = v2(bin, 1, 0x11, b4, sizeof b4);
    tf_pp_header_t h;
    for (size_t k = 0; k < strlen(s); k++)
        cr_expect_eq(tf_pp_parse((const uint8_t *)s, k, &h), TF_PP_MORE, "v1 cut at %zu", k);
    for (size_t k = 0; k < bn; k++)
        cr_expect_eq(tf_pp_parse(bin, k, &h), TF_PP_MORE, "v2 cut at %zu", k);
    cr_expect_eq(parse_text(s, &h), 0);
    cr_expect_eq(tf_pp_parse(bin, bn, &h), 0);
}

Test(proxyproto, what_the_writer_makes_reads_back_the_same)
{
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(40000)};
    struct sockaddr_in d4 = {.sin_family = AF_INET, .sin_port = htons(443)};
    inet_pton(AF_INET, "203.0.113.7", &s4.sin_addr);
    inet_pton(AF_INET, "10.1.2.3", &d4.sin_addr);
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(5060)};
    inet_pton(AF_INET6, "2001:db8::42", &s6.sin6_addr);
    uint8_t out[TF_PP_WRITE_MAX];
    tf_pp_header_t h;
    for (int version = 1; version <= 2; version++) {
        size_t n =
            tf_pp_write(version, (struct sockaddr *)&s4, (struct sockaddr *)&d4, out, sizeof out);
        cr_assert_gt(n, 0u);
        cr_assert_eq(tf_pp_parse(out, n, &h), 0, "version %d", version);
        cr_expect_eq(h.len, n);
        expect_v4(&h.src, "203.0.113.7", 40000);
        expect_v4(&h.dst, "10.1.2.3", 443);
        /* An IPv6 client that reached an IPv4 listener: both as IPv6. */
        n = tf_pp_write(version, (struct sockaddr *)&s6, (struct sockaddr *)&d4, out, sizeof out);
        cr_assert_gt(n, 0u);
        cr_assert_eq(tf_pp_parse(out, n, &h), 0, "version %d", version);
        expect_v6(&h.src, "2001:db8::42", 5060);
        expect_v6(&h.dst, "::ffff:10.1.2.3", 443);
    }
    cr_expect_eq(tf_pp_write(3, (struct sockaddr *)&s4, (struct sockaddr *)&d4, out, sizeof out),
                 0u);
    cr_expect_eq(tf_pp_write(1, (struct sockaddr *)&s4, (struct sockaddr *)&d4, out, 10), 0u);
    /* A client of no IP family: UNKNOWN / LOCAL, read back as such. */
    struct sockaddr none = {.sa_family = AF_UNSPEC};
    for (int version = 1; version <= 2; version++) {
        size_t k = tf_pp_write(version, &none, (struct sockaddr *)&d4, out, sizeof out);
        cr_assert_gt(k, 0u);
        cr_assert_eq(tf_pp_parse(out, k, &h), 0);
        cr_expect(h.local, "version %d", version);
        cr_expect_eq(h.len, k);
    }
    const char *v1 = "PROXY TCP4 203.0.113.7 10.1.2.3 40000 443\r\n";
    size_t n = tf_pp_write(1, (struct sockaddr *)&s4, (struct sockaddr *)&d4, out, sizeof out);
    cr_expect_eq(n, strlen(v1));
    cr_expect_eq(memcmp(out, v1, n), 0);
}
