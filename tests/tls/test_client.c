/* TLS client sessions (tls/client.c, SPEC §14): a tf_tls client against a
 * tf_tls server session in memory, on the store fixtures' CA and leaves.
 * Verification by CA file, by name, refused by the system store, and off;
 * the CA loader's errors; raw bytes ahead of the ClientHello. */
#include "harness.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tf_tls_ctx_t *server_ctx;
static char ca_file[1200];

static void setup(void)
{
    hx_setup(false);
    server_ctx = hx_ctx(false, false, NULL);
    snprintf(ca_file, sizeof ca_file, "%s/tests/store-fixtures/ca.crt", getenv("TF_BUILD_DIR"));
}

static void teardown(void)
{
    tf_tls_ctx_free(server_ctx);
    hx_teardown();
}

TestSuite(client, .init = setup, .fini = teardown, .timeout = 60);

static tf_tls_client_ctx_t *client_ctx(bool verify, const char *ca)
{
    tf_tls_client_ctx_t *c = NULL;
    char err[512];
    tf_tls_client_opts_t o = {.verify = verify, .ca_file = ca};
    int rc = tf_tls_client_ctx_new(&o, &c, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    return c;
}

/* Moves what FROM has for its peer into TO. */
static void move(tf_tls_session_t *from, tf_tls_session_t *to)
{
    void *buf = NULL;
    size_t len = 0;
    cr_assert_eq(tf_tls_session_take_out(from, &buf, &len), 0);
    if (buf != NULL)
        cr_assert_eq(tf_tls_session_feed(to, buf, len), 0);
    free(buf);
}

/* Runs both handshakes; the client's last status. */
static int handshake(tf_tls_session_t *c, tf_tls_session_t *s)
{
    int crc = TF_TLS_WANT_READ, src = TF_TLS_WANT_READ;
    for (int i = 0; i < 10 && (crc == TF_TLS_WANT_READ || src == TF_TLS_WANT_READ); i++) {
        if (crc == TF_TLS_WANT_READ)
            crc = tf_tls_session_handshake(c);
        move(c, s);
        if (src == TF_TLS_WANT_READ)
            src = tf_tls_session_handshake(s);
        move(s, c);
        if (crc < 0 || src < 0)
            break;
    }
    return crc;
}

Test(client, verified_with_a_ca_file_and_the_name_both_ways)
{
    tf_tls_client_ctx_t *cc = client_ctx(true, ca_file);
    tf_tls_session_t *c = tf_tls_client_session_new(cc, "chat.acme.example", "chat.acme.example");
    tf_tls_session_t *s = tf_tls_session_new(server_ctx, hx_snap());
    cr_assert_not_null(c);
    cr_assert_eq(handshake(c, s), TF_TLS_OK, "%s", tf_tls_session_error(c));
    cr_expect_str_eq(tf_tls_session_sni(s), "chat.acme.example", "the SNI sent");
    cr_expect_eq(tf_tls_session_write(c, "ping", 4), 4);
    move(c, s);
    char buf[16];
    size_t n = 0;
    cr_expect_eq(tf_tls_session_recv(s, buf, sizeof buf, &n), TF_TLS_OK);
    cr_expect(n == 4 && memcmp(buf, "ping", 4) == 0);
    cr_expect_eq(tf_tls_session_write(s, "pong", 4), 4);
    move(s, c);
    cr_expect_eq(tf_tls_session_recv(c, buf, sizeof buf, &n), TF_TLS_OK);
    cr_expect(n == 4 && memcmp(buf, "pong", 4) == 0);
    tf_tls_session_free(c);
    tf_tls_session_free(s);
    tf_tls_client_ctx_free(cc);
}

static void expect_refused(tf_tls_client_ctx_t *cc, const char *sni, const char *name,
                           const char *why)
{
    tf_tls_session_t *c = tf_tls_client_session_new(cc, sni, name);
    tf_tls_session_t *s = tf_tls_session_new(server_ctx, hx_snap());
    cr_expect_eq(handshake(c, s), TF_ETLS);
    cr_expect_str_eq(tf_tls_session_error(c), why);
    tf_tls_session_free(c);
    tf_tls_session_free(s);
}

Test(client, a_name_the_certificate_does_not_hold)
{
    tf_tls_client_ctx_t *cc = client_ctx(true, ca_file);
    /* The SNI picks acme.pem; the name checked is another. */
    expect_refused(cc, "portal.acme.example", "other.example",
                   "certificate verify failed: the certificate does not name the backend "
                   "(tls_sni or its address)");
    tf_tls_client_ctx_free(cc);
}

Test(client, the_system_store_does_not_know_the_test_ca)
{
    tf_tls_client_ctx_t *cc = client_ctx(true, NULL);
    expect_refused(cc, "portal.acme.example", "portal.acme.example",
                   "certificate verify failed: no trusted CA signed it (tls_verify)");
    tf_tls_client_ctx_free(cc);
}

Test(client, verify_off_takes_any_certificate)
{
    tf_tls_client_ctx_t *cc = client_ctx(false, NULL);
    tf_tls_session_t *c = tf_tls_client_session_new(cc, NULL, "ignored.example");
    tf_tls_session_t *s = tf_tls_session_new(server_ctx, hx_snap());
    cr_expect_eq(handshake(c, s), TF_TLS_OK, "%s", tf_tls_session_error(c));
    cr_expect_null(tf_tls_session_sni(s), "no SNI was asked for");
    tf_tls_session_free(c);
    tf_tls_session_free(s);
    tf_tls_client_ctx_free(cc);
}

Test(client, raw_bytes_go_ahead_of_the_client_hello)
{
    tf_tls_client_ctx_t *cc = client_ctx(false, NULL);
    tf_tls_session_t *c = tf_tls_client_session_new(cc, "portal.acme.example", NULL);
    cr_assert_eq(tf_tls_session_queue_raw(c, "PROXY UNKNOWN\r\n", 15), 0);
    cr_expect_eq(tf_tls_session_handshake(c), TF_TLS_WANT_READ);
    size_t len = 0;
    const char *out = tf_tls_session_out(c, &len);
    cr_assert_gt(len, 20u);
    cr_expect(memcmp(out, "PROXY UNKNOWN\r\n", 15) == 0);
    cr_expect_eq((unsigned char)out[15], 0x16, "a handshake record follows");
    tf_tls_session_free(c);
    tf_tls_client_ctx_free(cc);
}

Test(client, the_ca_loader_names_the_file)
{
    tf_tls_client_ctx_t *cc = NULL;
    char err[512];
    tf_tls_client_opts_t o = {.verify = true, .ca_file = "/nonexistent/ca.pem"};
    cr_expect_lt(tf_tls_client_ctx_new(&o, &cc, err, sizeof err), 0);
    cr_expect_str_eq(err,
                     "/nonexistent/ca.pem: cannot read the CA file: No such file or directory");
    cr_expect_null(cc);
    char empty[1200];
    snprintf(empty, sizeof empty, "%s/empty.pem", hx_dir());
    FILE *f = fopen(empty, "w");
    cr_assert_not_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    o.ca_file = empty;
    cr_expect_eq(tf_tls_client_ctx_new(&o, &cc, err, sizeof err), TF_ETLS);
    cr_expect(strstr(err, "no usable CA certificate in it") != NULL, "%s", err);
}

/* The session a first handshake left under an ID is offered by the next
 * one filed under the same ID (tf_tls_session_resume_by), not by another;
 * the context may go before its sessions. */
Test(client, a_second_session_under_the_same_id_resumes)
{
    char err[256];
    tf_tls_tickets_t *t = NULL;
    cr_assert_eq(tf_tls_tickets_new(NULL, 3600, &t, err, sizeof err), 0, "%s", err);
    tf_tls_ctx_t *sctx = hx_ctx(false, false, t);
    tf_tls_client_ctx_t *cc = client_ctx(true, ca_file);
    bool resumed[3];
    const char *ids[3] = {"be-a", "be-a", "be-b"};
    tf_tls_session_t *last = NULL;
    for (int i = 0; i < 3; i++) {
        tf_tls_session_t *c =
            tf_tls_client_session_new(cc, "chat.acme.example", "chat.acme.example");
        cr_assert_eq(tf_tls_session_resume_by(c, ids[i], strlen(ids[i])), 0);
        tf_tls_session_t *s = tf_tls_session_new(sctx, hx_snap());
        cr_assert_eq(handshake(c, s), TF_TLS_OK, "%s", tf_tls_session_error(c));
        /* One exchange: the client reads the server's NewSessionTicket. */
        cr_expect_eq(tf_tls_session_write(s, "x", 1), 1);
        move(s, c);
        char buf[8];
        size_t n = 0;
        cr_expect_eq(tf_tls_session_recv(c, buf, sizeof buf, &n), TF_TLS_OK);
        resumed[i] = tf_tls_session_resumed(c);
        tf_tls_session_free(s);
        if (i < 2)
            tf_tls_session_free(c);
        else
            last = c;
    }
    cr_expect_not(resumed[0]);
    cr_expect(resumed[1], "the second handshake under be-a was not resumed");
    cr_expect_not(resumed[2], "a session crossed to another ID");
    tf_tls_client_ctx_free(cc); /* the last session still holds it */
    tf_tls_session_free(last);
    tf_tls_ctx_free(sctx);
    tf_tls_tickets_unref(t);
}

/* One handshake under ID against SCTX, with one record read so that a TLS
 * 1.3 ticket arrives; whether it resumed. The session is kept (at free). */
static bool cycle(tf_tls_ctx_t *sctx, tf_tls_client_ctx_t *cc, const char *id)
{
    tf_tls_session_t *c = tf_tls_client_session_new(cc, "chat.acme.example", "chat.acme.example");
    cr_assert_eq(tf_tls_session_resume_by(c, id, strlen(id)), 0);
    tf_tls_session_t *s = tf_tls_session_new(sctx, hx_snap());
    cr_assert_eq(handshake(c, s), TF_TLS_OK, "%s: %s", id, tf_tls_session_error(c));
    cr_expect_eq(tf_tls_session_write(s, "x", 1), 1);
    move(s, c);
    char buf[8];
    size_t n = 0;
    cr_expect_eq(tf_tls_session_recv(c, buf, sizeof buf, &n), TF_TLS_OK);
    bool resumed = tf_tls_session_resumed(c);
    tf_tls_session_free(s);
    tf_tls_session_free(c);
    return resumed;
}

static tf_tls_ctx_t *ticket_server(tf_tls_tickets_t **t)
{
    char err[256];
    cr_assert_eq(tf_tls_tickets_new(NULL, 3600, t, err, sizeof err), 0, "%s", err);
    return hx_ctx(false, false, *t);
}

/* A context keeps 16 sessions; the 17th and 18th IDs push out the two
 * oldest, not whatever sits in the first slot. */
Test(client, the_oldest_kept_session_goes_first)
{
    tf_tls_tickets_t *t = NULL;
    tf_tls_ctx_t *sctx = ticket_server(&t);
    tf_tls_client_ctx_t *cc = client_ctx(true, ca_file);
    char id[16];
    for (int i = 0; i < 18; i++) {
        snprintf(id, sizeof id, "be-%d", i);
        cr_expect_not(cycle(sctx, cc, id), "%s resumed at its first handshake", id);
    }
    cr_expect(cycle(sctx, cc, "be-17"), "the newest was pushed out");
    cr_expect(cycle(sctx, cc, "be-2"), "the third oldest was pushed out");
    cr_expect_not(cycle(sctx, cc, "be-1"), "the second oldest is still kept");
    tf_tls_client_ctx_free(cc);
    tf_tls_ctx_free(sctx);
    tf_tls_tickets_unref(t);
}

/* A handshake that offered a kept session failed (the backend changed):
 * the session is forgotten, so the next handshake is a full one, not the
 * same offer refused again. A session that offered nothing says so. */
Test(client, a_failed_resumption_forgets_the_session)
{
    tf_tls_tickets_t *t = NULL;
    tf_tls_ctx_t *sctx = ticket_server(&t);
    tf_tls_client_ctx_t *cc = client_ctx(true, ca_file);
    cr_expect_not(cycle(sctx, cc, "be-a"));
    tf_tls_session_t *c = tf_tls_client_session_new(cc, "chat.acme.example", "chat.acme.example");
    cr_assert_eq(tf_tls_session_resume_by(c, "be-a", 4), 0);
    cr_assert_eq(tf_tls_session_handshake(c), TF_TLS_WANT_READ);
    /* Not a server's answer: the handshake fails. */
    static const char junk[] = "\x15\x03\x03\x00\x02\x02\x28";
    cr_assert_eq(tf_tls_session_feed(c, junk, sizeof junk - 1), 0);
    cr_expect_lt(tf_tls_session_handshake(c), 0);
    cr_expect(tf_tls_session_forget_offered(c), "it offered the kept session");
    cr_expect_not(tf_tls_session_forget_offered(c), "forgotten once");
    tf_tls_session_free(c);
    cr_expect_not(cycle(sctx, cc, "be-a"), "the forgotten session was offered again");
    tf_tls_session_t *fresh =
        tf_tls_client_session_new(cc, "chat.acme.example", "chat.acme.example");
    cr_expect_not(tf_tls_session_forget_offered(fresh), "nothing was offered");
    tf_tls_session_free(fresh);
    tf_tls_client_ctx_free(cc);
    tf_tls_ctx_free(sctx);
    tf_tls_tickets_unref(t);
}
