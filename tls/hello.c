/* The server_name of a ClientHello, read before wolfSSL sees the bytes.
 *
 * Why: this wolfSSL build offers no public hook that runs between the
 * ClientHello and the ServerHello for both TLS 1.2 and 1.3 (its SNI callback
 * setter needs OPENSSL_ALL or HAVE_STUNNEL; its certificate callback runs
 * after the ServerHello in TLS 1.3). Reading the name first lets the session
 * load the chosen certificate before wolfSSL picks the signature algorithm,
 * and refuse an unknown name with a plaintext unrecognized_name alert
 * before any handshake state exists. Malformed input is left to wolfSSL,
 * which rejects it with the proper alert.
 *
 * The supported_groups extension is read too: without wolfSSL's
 * compatibility layer nothing limits the curve of a TLS 1.2 ECDHE exchange
 * to the ones the server names (wolfSSL takes the union of both lists), so a
 * client that offers only P-521 would get it. Such a ClientHello is refused
 * here with handshake_failure, as TLS 1.3 refuses it in wolfSSL.
 *
 * And whether the ALPN extension offers `acme-tls/1` (RFC 8737): an ACME
 * server validating a name must get the validation certificate, which is
 * chosen here, before the normal SNI selection. */
#include "tls/tls_internal.h"

#include <stdlib.h>
#include <string.h>

enum {
    REC_HDR = 5,
    HS_HDR = 4,
    MAX_HELLO = 16384,         /* larger ClientHellos are refused as malformed */
    MAX_HELLO_RECORDS = 64,    /* a hello in more pieces is left to wolfSSL, not reassembled */
    MAX_RECORD = 16384 + 2048, /* TLSCiphertext limit, RFC 8446 §5.2 */
};

typedef struct {
    const uint8_t *p;
    size_t len;
} span_t;

static bool take(span_t *s, size_t n, span_t *out)
{
    if (s->len < n)
        return false;
    if (out != NULL)
        *out = (span_t){s->p, n};
    s->p += n;
    s->len -= n;
    return true;
}

static bool take_u8(span_t *s, size_t *v)
{
    if (s->len < 1)
        return false;
    *v = s->p[0];
    return take(s, 1, NULL);
}

static bool take_u16(span_t *s, size_t *v)
{
    if (s->len < 2)
        return false;
    *v = (size_t)s->p[0] << 8 | s->p[1];
    return take(s, 2, NULL);
}

/* A length-prefixed vector (1 or 2 length bytes). */
static bool take_vec(span_t *s, int lenbytes, span_t *out)
{
    size_t n;
    if (!(lenbytes == 1 ? take_u8(s, &n) : take_u16(s, &n)))
        return false;
    return take(s, n, out);
}

/* The first host_name in a server_name extension body. */
static int parse_sni_ext(span_t ext, const char **name, size_t *len)
{
    span_t list, entry;
    if (!take_vec(&ext, 2, &list) || ext.len != 0)
        return TF_TLS__HELLO_BAD;
    while (list.len > 0) {
        size_t type;
        if (!take_u8(&list, &type) || !take_vec(&list, 2, &entry))
            return TF_TLS__HELLO_BAD;
        if (type == 0) {
            *name = (const char *)entry.p;
            *len = entry.len;
            return TF_TLS__HELLO_OK;
        }
    }
    return TF_TLS__HELLO_OK;
}

/* Whether a supported_groups extension body names X25519, P-256 or P-384
 * (an empty list is left to wolfSSL). */
static int parse_groups_ext(span_t ext)
{
    span_t list;
    size_t g;
    if (!take_vec(&ext, 2, &list) || ext.len != 0 || list.len % 2 != 0)
        return TF_TLS__HELLO_BAD;
    if (list.len == 0)
        return TF_TLS__HELLO_OK;
    while (take_u16(&list, &g))
        if (g == 0x001d || g == 0x0017 || g == 0x0018)
            return TF_TLS__HELLO_OK;
    return TF_TLS__HELLO_NOGROUP;
}

/* Whether an application_layer_protocol_negotiation extension body lists
 * "acme-tls/1". A malformed list is wolfSSL's to refuse, as before this
 * reader looked at ALPN: it only means no acme-tls/1 here. */
static bool parse_alpn_ext(span_t ext)
{
    static const char k_acme[] = "acme-tls/1";
    span_t list, proto;
    if (!take_vec(&ext, 2, &list) || ext.len != 0)
        return false;
    bool acme = false;
    while (list.len > 0) {
        if (!take_vec(&list, 1, &proto))
            return false;
        if (proto.len == sizeof k_acme - 1 && memcmp(proto.p, k_acme, proto.len) == 0)
            acme = true;
    }
    return acme;
}

/* A complete ClientHello body (after the 4-byte handshake header). */
static int parse_body(span_t b, tf_tls__hello_t *h)
{
    span_t exts, ext;
    size_t type;
    if (!take(&b, 2 + 32, NULL) || !take_vec(&b, 1, NULL) || !take_vec(&b, 2, NULL) ||
        !take_vec(&b, 1, NULL))
        return TF_TLS__HELLO_BAD;
    if (b.len == 0)
        return TF_TLS__HELLO_OK; /* no extensions at all */
    if (!take_vec(&b, 2, &exts) || b.len != 0)
        return TF_TLS__HELLO_BAD;
    int groups = TF_TLS__HELLO_OK;
    bool sni_seen = false;
    while (exts.len > 0) {
        if (!take_u16(&exts, &type) || !take_vec(&exts, 2, &ext))
            return TF_TLS__HELLO_BAD;
        int r = TF_TLS__HELLO_OK;
        if (type == 0 && !sni_seen) {
            sni_seen = true;
            r = parse_sni_ext(ext, &h->name, &h->len);
        } else if (type == 10) {
            r = groups = parse_groups_ext(ext);
        } else if (type == 16) {
            h->acme_tls = parse_alpn_ext(ext);
        }
        if (r == TF_TLS__HELLO_BAD)
            return r;
    }
    return groups;
}

/* Copies the handshake bytes of consecutive handshake records into dst
 * (NULL: only count them). Returns the bytes available, or -1 when a record
 * is not a handshake record. */
static long gather(const uint8_t *in, size_t inlen, uint8_t *dst, size_t want)
{
    size_t have = 0, records = 0;
    while (have < want && inlen >= REC_HDR) {
        size_t rlen = (size_t)in[3] << 8 | in[4];
        /* Each read re-scans the buffered records: bounding their number
         * keeps a hello sent in 1-byte records from costing quadratic time. */
        if (in[0] != 0x16 || in[1] != 0x03 || rlen == 0 || rlen > MAX_RECORD ||
            ++records > MAX_HELLO_RECORDS)
            return -1;
        if (inlen < REC_HDR + rlen)
            break;
        size_t n = rlen < want - have ? rlen : want - have;
        if (dst != NULL)
            memcpy(dst + have, in + REC_HDR, n);
        have += n;
        in += REC_HDR + rlen;
        inlen -= REC_HDR + rlen;
    }
    return (long)have;
}

int tf_tls__hello_parse(const uint8_t *in, size_t inlen, tf_tls__hello_t *h)
{
    *h = (tf_tls__hello_t){0};
    if (inlen < REC_HDR)
        return TF_TLS__HELLO_MORE;
    if (in[0] != 0x16 || in[1] != 0x03)
        return TF_TLS__HELLO_BAD;
    size_t rlen = (size_t)in[3] << 8 | in[4];
    if (rlen > MAX_RECORD)
        return TF_TLS__HELLO_BAD;
    if (rlen >= HS_HDR && inlen >= REC_HDR + HS_HDR) {
        const uint8_t *p = in + REC_HDR;
        size_t blen = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (p[0] != 0x01 || blen > MAX_HELLO)
            return TF_TLS__HELLO_BAD;
        if (rlen >= HS_HDR + blen) { /* the usual case: one record */
            if (inlen < REC_HDR + HS_HDR + blen)
                return TF_TLS__HELLO_MORE;
            return parse_body((span_t){p + HS_HDR, blen}, h);
        }
    }
    /* The ClientHello spans records: reassemble it. Count only up to its own
     * end, so a record after it (a change_cipher_spec in the same read) is
     * never looked at. */
    uint8_t hdr[HS_HDR];
    long have = gather(in, inlen, hdr, HS_HDR);
    if (have < 0)
        return TF_TLS__HELLO_BAD;
    if (have < HS_HDR)
        return TF_TLS__HELLO_MORE;
    size_t blen = (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
    if (hdr[0] != 0x01 || blen > MAX_HELLO)
        return TF_TLS__HELLO_BAD;
    have = gather(in, inlen, NULL, HS_HDR + blen);
    if (have < 0)
        return TF_TLS__HELLO_BAD;
    if ((size_t)have < HS_HDR + blen)
        return TF_TLS__HELLO_MORE;
    uint8_t *msg = malloc(HS_HDR + blen);
    if (msg == NULL)
        return TF_TLS__HELLO_NOMEM;
    gather(in, inlen, msg, HS_HDR + blen);
    int r = parse_body((span_t){msg + HS_HDR, blen}, h);
    if (r != TF_TLS__HELLO_OK) {
        *h = (tf_tls__hello_t){0};
        free(msg);
        return r;
    }
    h->scratch = msg;
    return r;
}

int tf_tls__hello_sni(const uint8_t *in, size_t inlen, const char **name, size_t *len,
                      void **scratch)
{
    tf_tls__hello_t h;
    int r = tf_tls__hello_parse(in, inlen, &h);
    *name = h.name;
    *len = h.len;
    *scratch = h.scratch;
    return r;
}
