/* libFuzzer target: a tf_tls server session fed arbitrary client bytes (SPEC §6) — the
 * ClientHello reader that picks the certificate (tls/hello.c), wolfSSL's handshake and
 * record layer behind it, and the session's buffers.
 *
 * The input is split in two at its first byte: that many bytes (mod the size) are fed and
 * the handshake driven, then the rest, so records cut at arbitrary points are covered. If a
 * handshake ever completes, reads follow. The server certificate is FUZZ-ONLY: a P-256
 * self-signed certificate generated with wolfCrypt in LLVMFuzzerInitialize, written to a
 * temporary directory for the store to load, and deleted at once.
 */
#include "certstore/store.h"
#include "tls/tls.h"
#include "tests/fuzz/fuzz_snapshot.h"
#include "tls/tls_internal.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tf_tls_ctx_t *ctx;
static tf_cs_snapshot_t *snap;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_tls_server: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (tf_tls_global_init() != 0)
        die("wolfSSL_Init failed");
    char dir[] = "/tmp/fuzz-tls-XXXXXX", path[64];
    snap = tf_fuzz_snapshot("fuzz-only.tlsfront.invalid", dir, path, sizeof path);
    char err[256];
    tf_tls_tickets_t *t;
    if (tf_tls_tickets_new(NULL, 3600, &t, err, sizeof err) != 0)
        die(err);
    tf_tls_ctx_opts_t opts = {.tickets = t, .reject_unknown_sni = true};
    if (tf_tls_ctx_new(&opts, snap, &ctx, err, sizeof err) != 0)
        die(err);
    tf_tls_tickets_unref(t);
    return 0;
}

static void drive(tf_tls_session_t *s)
{
    int rc = tf_tls_session_handshake(s);
    if (rc == TF_TLS_OK) {
        static char buf[16384];
        size_t n;
        while (tf_tls_session_recv(s, buf, sizeof buf, &n) == TF_TLS_OK)
            ;
    }
    size_t n;
    (void)tf_tls_session_out(s, &n);
    tf_tls_session_consume_out(s, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The ClientHello reader on its own, with the whole input. */
    const char *name;
    size_t len;
    void *scratch;
    if (tf_tls__hello_sni(data, size, &name, &len, &scratch) == TF_TLS__HELLO_OK && name) {
        volatile char c = len > 0 ? name[len - 1] : 0; /* in bounds */
        (void)c;
    }
    free(scratch);

    tf_tls_session_t *s = tf_tls_session_new(ctx, snap);
    if (s == NULL)
        return 0;
    size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    if (tf_tls_session_feed(s, data, cut) == 0)
        drive(s);
    if (tf_tls_session_feed(s, data + cut, size - cut) == 0)
        drive(s);
    tf_tls_session_free(s);
    return 0;
}
