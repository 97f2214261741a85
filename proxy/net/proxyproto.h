/* proxy/ PROXY protocol headers (internal; SPEC §14, haproxy's
 * proxy-protocol.txt, versions 1 and 2): the parser for what an L4 balancer
 * in front writes at the start of a connection, and the writer for what a
 * tenant's `send_proxy` puts at the start of a backend connection.
 *
 * Pure functions: no sockets, no allocation. The parser is strict, as SPEC
 * §14 asks: a header that does not match the specification exactly (an
 * octet over 255 or with a leading zero, a port over 65535, a bad
 * signature, version, command or length, a TLV running past the header) is
 * refused, never half-read.
 */
#ifndef TF_PROXY_PROXYPROTO_H
#define TF_PROXY_PROXYPROTO_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 3 && !defined(TF_PROXY_NET_PUBLIC)
#error "internal to proxy/net: include proxy/net/net.h"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest version 1 header, CRLF included (the specification's 107). */
#define TF_PP_V1_MAX 107u
/* The longest version 2 header accepted: the 16-byte fixed part and up to
 * 4 KiB of addresses and TLVs (a cloud balancer's TLVs are tens of bytes;
 * the specification allows 64 KiB, which no sender needs and a receiver
 * would have to buffer). */
#define TF_PP_V2_MAX (16u + 4096u)
/* Room enough for any header tf_pp_write() makes. */
#define TF_PP_WRITE_MAX 108u

/* tf_pp_parse(): the bytes so far are a valid beginning; read more. */
#define TF_PP_MORE 1

typedef struct {
    uint8_t version; /* 1 or 2 */
    /* No address to use: version 2's LOCAL command (a balancer's health
     * check), an UNSPEC or AF_UNIX family, or version 1's UNKNOWN. The
     * connection keeps its own addresses. */
    bool local;
    struct sockaddr_storage src; /* the client, when !local */
    struct sockaddr_storage dst; /* the address it reached, when !local */
    size_t len;                  /* the header's bytes, to drop before TLS */
} tf_pp_header_t;

/* Parses the header at the start of DATA (LEN bytes). Returns 0 with *OUT
 * filled, TF_PP_MORE when the LEN bytes are a valid beginning of one (call
 * again with more), or TF_EINVAL when they cannot begin one. Never reads
 * past LEN. */
int tf_pp_parse(const uint8_t *data, size_t len, tf_pp_header_t *out)
    __attribute__((warn_unused_result));

/* Writes a version 1 or 2 header naming SRC and DST (both AF_INET or both
 * AF_INET6; a mix is written as IPv6, the IPv4 one mapped) into OUT (CAP
 * bytes, at least TF_PP_WRITE_MAX). Addresses of another family (a unix
 * socket, an unknown peer) give "PROXY UNKNOWN" (version 1) or a LOCAL
 * header (version 2), which tell the receiver to use the connection's own.
 * Returns its length, or 0 for another version or too small a CAP. */
size_t tf_pp_write(int version, const struct sockaddr *src, const struct sockaddr *dst,
                   uint8_t *out, size_t cap);

#endif
