/* tls/: heap held by an idle established server session (SPEC §10: ≤ 8 KiB
 * per idle TLS keep-alive connection, about 5 KiB of it for TLS).
 *
 * wolfSSL's allocations go through a counting allocator; those made inside
 * the client's calls are told apart (hx_client_side) so only the server's
 * are counted. The numbers are printed for docs/TLS.md; the assertions are
 * loose regression bounds, not the target. */
#include "harness.h"

#include "common/err.h"
#include "tls/tls_internal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t size;
    int client;
    int pad;
} hdr_t;

static bool in_client;
static hdr_t *server_blocks[4096]; /* live server allocations, for HX_MEM_DUMP */

static void track(hdr_t *h, hdr_t *old)
{
    for (size_t i = 0; i < 4096; i++) {
        if (server_blocks[i] == old) {
            server_blocks[i] = h;
            return;
        }
    }
}
static long live[2], peak[2], calls[2];

static void *count_malloc(size_t n)
{
    hdr_t *h = malloc(sizeof *h + n);
    if (h == NULL)
        return NULL;
    h->size = n;
    h->client = in_client;
    live[h->client] += (long)n;
    calls[h->client]++;
    if (!h->client)
        track(h, NULL);
    if (live[h->client] > peak[h->client])
        peak[h->client] = live[h->client];
    return h + 1;
}

static void count_free(void *p)
{
    if (p == NULL)
        return;
    hdr_t *h = (hdr_t *)p - 1;
    live[h->client] -= (long)h->size;
    if (!h->client)
        track(NULL, h);
    free(h);
}

static void *count_realloc(void *p, size_t n)
{
    if (p == NULL)
        return count_malloc(n);
    /* malloc + copy + free keeps the bookkeeping simple. */
    hdr_t *h = (hdr_t *)p - 1;
    void *q = count_malloc(n);
    if (q == NULL)
        return NULL;
    memcpy(q, p, h->size < n ? h->size : n);
    count_free(p);
    return q;
}

static void on_client_side(bool entering)
{
    in_client = entering;
}

static void setup(void)
{
    /* Before wolfSSL allocates anything. */
    cr_assert_eq(wolfSSL_SetAllocators(count_malloc, count_free, count_realloc), 0);
    hx_client_side = on_client_side;
    hx_setup(false);
}

TestSuite(tls_memory, .init = setup, .fini = hx_teardown, .timeout = 60);

/* One handshake with SNI `sni` and one exchange; returns the wolfSSL heap
 * the idle server session holds. The context's tenant cache is warmed
 * first (two handshakes): what a tenant context costs is the cache's, once per certificate,
 * not the connection's. */
static long measure(int version, bool tickets, const char *label, const char *sni)
{
    long start = live[0];
    tf_tls_tickets_t *t = NULL;
    char err[256];
    if (tickets)
        cr_assert_eq(tf_tls_tickets_new(NULL, 3600, &t, err, sizeof err), 0);
    tf_tls_ctx_t *ctx = hx_ctx(false, false, t);
    WOLFSSL_CTX *cc = hx_client_ctx(version, NULL);

    long warm0 = live[0];
    /* Two: a tenant's context is built at its second handshake. */
    for (int i = 0; i < 2; i++) {
        hx_pair_t *w = hx_pair_new(ctx, cc, sni, true);
        cr_assert_eq(hx_handshake(w), TF_TLS_OK);
        hx_pair_free(w);
    }
    long cached = live[0] - warm0;
    tf_tls__cache_stats_t st;
    tf_tls__cache_stats(ctx, &st);

    long base = live[0], calls0 = calls[0];
    static hdr_t *before[4096];
    memcpy(before, server_blocks, sizeof before);
    peak[0] = live[0];
    /* SNI and ALPN. */
    hx_pair_t *p = hx_pair_new(ctx, cc, sni, true);
    long after_new = live[0] - base;
    cr_assert_eq(hx_handshake(p), TF_TLS_OK);
    long after_hs = live[0] - base, hs_peak = peak[0] - base, hs_calls = calls[0] - calls0;
    char req[] = "GET / HTTP/1.1\r\nHost: chat.acme.example\r\n\r\n", buf[2048];
    cr_assert_eq(hx_client_to_server(p, req, sizeof req - 1, buf, sizeof buf), sizeof req - 1);
    static char resp[1024];
    memset(resp, 'x', sizeof resp);
    cr_assert_eq(hx_server_to_client(p, resp, sizeof resp, buf, sizeof buf), sizeof resp);
    long idle = live[0] - base;
    size_t ours = tf_tls_session_memory(p->s);
    fprintf(stderr,
            "tls memory %s, SNI %s: wolfSSL heap after new %ld B, after handshake %ld B, "
            "idle after one exchange %ld B (peak during handshake %ld B, %ld allocations); "
            "tf_tls_session_memory %zu B; tenant contexts cached %u (%ld B)\n",
            label, sni, after_new, after_hs, idle, hs_peak, hs_calls, ours, st.size, cached);
    if (getenv("HX_MEM_DUMP") != NULL) {
        for (size_t i = 0; i < 4096; i++) {
            bool old = false;
            for (size_t j = 0; j < 4096 && server_blocks[i] != NULL && !old; j++)
                old = before[j] == server_blocks[i];
            if (server_blocks[i] != NULL && !old)
                fprintf(stderr, "  live block %zu B\n", server_blocks[i]->size);
        }
    }
    /* Regression bounds: see docs/TLS.md for the measured values. */
    cr_expect_lt(idle, 12 * 1024, "%s: idle server session holds %ld B", label, idle);
    hx_pair_free(p);
    cr_expect_eq(live[0] - base, 0, "%s: %ld B left after free", label, live[0] - base);
    wolfSSL_CTX_free(cc);
    tf_tls_ctx_free(ctx);
    tf_tls_tickets_unref(t);
    cr_expect_eq(live[0], start, "%s: %ld B left after the context was freed", label,
                 live[0] - start);
    return idle;
}

Test(tls_memory, idle_server_session)
{
    measure(13, true, "TLS 1.3 + tickets", "chat.acme.example");
    measure(13, false, "TLS 1.3", "chat.acme.example");
    measure(12, true, "TLS 1.2 + tickets", "chat.acme.example");
}

/* A connection switched to a tenant's cached context keeps nothing more,
 * once idle, than one on the default certificate (SPEC §10 budget). Names
 * of one length: wolfSSL keeps the client's SNI. */
Test(tls_memory, tenant_certificate_costs_an_idle_session_nothing)
{
    int versions[] = {13, 12};
    for (int i = 0; i < 2; i++) {
        long def = measure(versions[i], true, "default", "zzzz.acme.example");
        long tenant = measure(versions[i], true, "tenant", "chat.acme.example");
        cr_expect_eq(tenant, def,
                     "TLS 1.%d: idle %ld B on a tenant certificate, %ld B on the default",
                     versions[i] - 10, tenant, def);
    }
}
