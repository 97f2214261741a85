/* libFuzzer target for PROXY protocol headers (proxy/net/proxyproto.h,
 * SPEC §14): bytes a balancer (or anyone who can reach a listener
 * configured for it from an allowed address) sends first.
 *
 * Invariants: the parser never reads past the input (ASan); a header it
 * accepts is self-delimiting (its own bytes alone parse the same); a cut
 * of it asks for more; the addresses it gives are IPv4 or IPv6, and the
 * header the writer makes from them parses back to the same addresses. */
#include "proxy/net/proxyproto.h"

#include "common/err.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static void same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    size_t n = a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (a->ss_family != b->ss_family || memcmp(a, b, n) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_pp_header_t h;
    int rc = tf_pp_parse(data, size, &h);
    if (rc != 0) {
        if (rc != TF_PP_MORE && rc != TF_EINVAL)
            abort();
        return 0;
    }
    if (h.len == 0 || h.len > size || (h.version != 1 && h.version != 2))
        abort();
    tf_pp_header_t again;
    if (tf_pp_parse(data, h.len, &again) != 0 || again.len != h.len || again.local != h.local)
        abort();
    /* Every cut asks for more (the first 64, and the last). */
    for (size_t k = 0; k < h.len && k < 64; k++)
        if (tf_pp_parse(data, k, &again) != TF_PP_MORE)
            abort();
    if (tf_pp_parse(data, h.len - 1, &again) != TF_PP_MORE)
        abort();
    if (h.local)
        return 0;
    if ((h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6) ||
        h.src.ss_family != h.dst.ss_family)
        abort();
    uint8_t out[TF_PP_WRITE_MAX];
    size_t n = tf_pp_write(h.version, (struct sockaddr *)&h.src, (struct sockaddr *)&h.dst, out,
                           sizeof out);
    if (n == 0 || tf_pp_parse(out, n, &again) != 0)
        abort();
    same(&h.src, &again.src);
    same(&h.dst, &again.dst);
    return 0;
}
