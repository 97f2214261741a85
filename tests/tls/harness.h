/* In-memory TLS test harness: a certificate snapshot built from the store
 * fixtures, and a wolfSSL client talking to a tf_tls server session through
 * byte queues in the same process. */
#ifndef TF_TESTS_TLS_HARNESS_H
#define TF_TESTS_TLS_HARNESS_H

#include "tls/tls.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} hx_bytes_t;

/* Fixtures: acme.pem (portal/chat.acme.example), wild.pem
 * (*.tenants.example), system.pem (default, system.example) and, with
 * extra_rsa, rsa.pem (rsa.example, RSA-2048). */
void hx_setup(bool extra_rsa);
void hx_teardown(void);
tf_cs_snapshot_t *hx_snap(void);
const char *hx_dir(void); /* a scratch directory removed by hx_teardown */

/* A server context; tickets may be NULL. */
tf_tls_ctx_t *hx_ctx(bool tls13_only, bool reject_unknown, tf_tls_tickets_t *tickets);
/* The same with every option, on another snapshot's default. */
tf_tls_ctx_t *hx_ctx_on(const tf_tls_ctx_opts_t *o, const tf_cs_snapshot_t *on);

/* version: 0 (1.2 or 1.3), 12 or 13. ciphers NULL: wolfSSL's default.
 * The client trusts no CA and accepts any certificate; hx_peer_subject
 * tells which one it received. */
WOLFSSL_CTX *hx_client_ctx(int version, const char *ciphers);

typedef struct {
    tf_tls_session_t *s;
    WOLFSSL *c;
    hx_bytes_t c2s, s2c;   /* in flight */
    hx_bytes_t server_log; /* everything the server ever emitted */
    hx_bytes_t peer_leaf;  /* DER of the leaf certificate the client received */
    size_t piece;          /* feed the server this many bytes at a time (0: all) */
    int server_rc, client_err;
} hx_pair_t;

/* sni NULL: none. alpn: offer http/1.1. The server session reads
 * certificates from hx_snap(), or from `on`. */
hx_pair_t *hx_pair_new(tf_tls_ctx_t *ctx, WOLFSSL_CTX *cctx, const char *sni, bool alpn);
/* A full handshake with a session ticket asked for (on snapshot `on`, NULL:
 * the harness's), one exchange (so a TLS 1.3 client reads the
 * NewSessionTicket), and the client's session for resumption. */
WOLFSSL_SESSION *hx_first_visit(tf_tls_ctx_t *ctx, tf_cs_snapshot_t *on, WOLFSSL_CTX *cctx,
                                const char *sni);
hx_pair_t *hx_pair_new_on(tf_tls_ctx_t *ctx, tf_cs_snapshot_t *on, WOLFSSL_CTX *cctx,
                          const char *sni, bool alpn);
void hx_pair_free(hx_pair_t *p);

/* Runs both handshakes to completion or failure. Returns the server's last
 * status (TF_TLS_OK when it completed). */
int hx_handshake(hx_pair_t *p);

/* Moves client→server and server→client bytes once. */
void hx_pump(hx_pair_t *p);

/* Client writes, server reads all of it back; returns bytes read. */
size_t hx_client_to_server(hx_pair_t *p, const void *data, size_t len, void *out, size_t cap);
/* Server writes, client reads all of it; returns bytes the client read. */
size_t hx_server_to_client(hx_pair_t *p, const void *data, size_t len, void *out, size_t cap);

/* The subject of the certificate the client was served ("/CN=..."), read
 * from the DER the client received (not from the server's own account). */
void hx_peer_subject(hx_pair_t *p, char *buf, size_t len);

/* Called with true before and false after each call into the client's
 * wolfSSL (test_memory.c tells allocations apart with it). */
extern void (*hx_client_side)(bool entering);

/* A real peer: `openssl s_client -connect 127.0.0.1:PORT ARGS` against a
 * loopback listener, the test moving bytes between the accepted socket and
 * a tf_tls session on ctx (certificates from `on`, or hx_snap() when NULL).
 * s_client's output goes to hx_dir()/s_client.log; it ends when its input
 * closes (hx_peer_stop), unless ARGS say -ign_eof. */
typedef struct {
    int fd;
    FILE *client_stdin;
    char log[1200];
    tf_tls_session_t *s;
} hx_peer_t;

void hx_peer_start(hx_peer_t *p, tf_tls_ctx_t *ctx, tf_cs_snapshot_t *on, const char *args);
void hx_peer_flush(hx_peer_t *p);
/* Reads from the socket into the session; false on EOF or timeout. */
bool hx_peer_pull(hx_peer_t *p, int timeout_ms);
int hx_peer_handshake(hx_peer_t *p);
/* Frees the session, closes the socket and waits for s_client. */
void hx_peer_stop(hx_peer_t *p);
/* s_client's output so far (a static buffer, valid until the next call). */
const char *hx_peer_output(const hx_peer_t *p);
bool hx_peer_log_has(const hx_peer_t *p, const char *needle);

/* A tf_tls_h2_allowed_fn that answers `allow` and records its calls and
 * the last SNI it was given (sni_null: it was NULL). */
typedef struct {
    bool allow;
    int calls;
    bool sni_null;
    char sni[256];
} hx_h2_t;
bool hx_h2_allowed(void *ud, const char *sni);

void hx_bytes_append(hx_bytes_t *b, const void *data, size_t n);
void hx_bytes_free(hx_bytes_t *b);

#endif
