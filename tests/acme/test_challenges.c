/* The challenge table (acme/challenges.c): puts, replaces, removes, copies
 * that outlive the entry, and one writer racing readers on two threads
 * (run under the ASan build, this is what catches a pointer escaping the
 * lock). */
#include "acme/acme.h"

#include "common/err.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

TestSuite(challenges, .timeout = 60);

static tf_acme_challenges_t *table(void)
{
    tf_acme_challenges_t *t = NULL;
    cr_assert_eq(tf_acme_challenges_new(&t), 0);
    return t;
}

Test(challenges, http01_put_get_replace_remove)
{
    tf_acme_challenges_t *t = table();
    char *ka = NULL;
    size_t len = 7;
    cr_expect_eq(tf_acme_http01_get(t, "tok", &ka, &len), TF_ENOTFOUND);
    cr_expect_null(ka);
    cr_expect_eq(len, 0);
    cr_assert_eq(tf_acme_http01_put(t, "tok", "tok.thumb"), 0);
    cr_assert_eq(tf_acme_http01_put(t, "other", "other.thumb"), 0);
    cr_assert_eq(tf_acme_http01_get(t, "tok", &ka, &len), 0);
    cr_expect_str_eq(ka, "tok.thumb");
    cr_expect_eq(len, 9);
    /* The copy stays the caller's after the entry goes. */
    cr_assert_eq(tf_acme_http01_put(t, "tok", "tok.newer"), 0);
    tf_acme_http01_remove(t, "tok");
    cr_expect_str_eq(ka, "tok.thumb");
    free(ka);
    cr_expect_eq(tf_acme_http01_get(t, "tok", &ka, &len), TF_ENOTFOUND);
    /* Tokens are case-sensitive (base64url). */
    cr_expect_eq(tf_acme_http01_get(t, "OTHER", &ka, &len), TF_ENOTFOUND);
    cr_expect_eq(tf_acme_http01_count(t), 1);
    tf_acme_http01_remove(t, "missing");
    cr_expect_eq(tf_acme_http01_put(t, "", "x"), TF_EINVAL);
    cr_expect_eq(tf_acme_http01_put(t, "x", ""), TF_EINVAL);
    tf_acme_challenges_free(t);
}

Test(challenges, replacing_keeps_one_entry)
{
    tf_acme_challenges_t *t = table();
    for (int i = 0; i < 5; i++) {
        char ka[32];
        snprintf(ka, sizeof ka, "tok.%d", i);
        cr_assert_eq(tf_acme_http01_put(t, "tok", ka), 0);
    }
    cr_expect_eq(tf_acme_http01_count(t), 1);
    char *ka;
    size_t len;
    cr_assert_eq(tf_acme_http01_get(t, "tok", &ka, &len), 0);
    cr_expect_str_eq(ka, "tok.4");
    free(ka);
    tf_acme_challenges_free(t);
}

Test(challenges, alpn01_by_host_without_case)
{
    tf_acme_challenges_t *t = table();
    static const uint8_t cert[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    static const uint8_t key[] = {0x30, 0x03, 0x02, 0x01, 0x02, 0x00};
    cr_assert_eq(tf_acme_alpn01_put(t, "Portal.Acme.Example", cert, sizeof cert, key, sizeof key),
                 0);
    uint8_t *c, *k;
    size_t cl, kl;
    /* An SNI as received: not NUL-terminated, any case. */
    const char *sni = "portal.acme.exampleXYZ";
    cr_assert_eq(tf_acme_alpn01_get(t, sni, 19, &c, &cl, &k, &kl), 0);
    cr_expect_eq(cl, sizeof cert);
    cr_expect_eq(kl, sizeof key);
    cr_expect_eq(memcmp(c, cert, cl), 0);
    cr_expect_eq(memcmp(k, key, kl), 0);
    free(c);
    free(k);
    cr_expect_eq(tf_acme_alpn01_get(t, sni, 18, &c, &cl, &k, &kl), TF_ENOTFOUND);
    cr_expect_null(c);
    cr_expect_null(k);
    cr_expect_eq(tf_acme_alpn01_get(t, "portal.acme.example\0x", 21, &c, &cl, &k, &kl),
                 TF_ENOTFOUND);
    /* http-01 and tls-alpn-01 are separate namespaces. */
    char *ka;
    size_t len;
    cr_expect_eq(tf_acme_http01_get(t, "Portal.Acme.Example", &ka, &len), TF_ENOTFOUND);
    tf_acme_alpn01_remove(t, "PORTAL.acme.example");
    cr_expect_eq(tf_acme_alpn01_count(t), 0);
    cr_expect_eq(tf_acme_alpn01_put(t, "h", cert, 0, key, sizeof key), TF_EINVAL);
    cr_expect_eq(tf_acme_alpn01_put(t, "h", cert, sizeof cert, NULL, 0), TF_EINVAL);
    tf_acme_challenges_free(t);
}

/* ---- one writer, two readers -------------------------------------------- */

enum { ROUNDS = 20000, TOKENS = 8 };

typedef struct {
    tf_acme_challenges_t *t;
    atomic_bool stop;
    atomic_long seen, bad;
} race_t;

/* The writer puts and removes tokens whose answers carry their own name, so
 * a reader can tell a torn or foreign copy from a right one. */
static void *writer(void *arg)
{
    race_t *r = arg;
    static const uint8_t key[32] = {1};
    for (int i = 0; i < ROUNDS; i++) {
        char tok[16], ka[64], host[32];
        snprintf(tok, sizeof tok, "t%d", i % TOKENS);
        snprintf(ka, sizeof ka, "%s.thumbprint-%d", tok, i);
        snprintf(host, sizeof host, "h%d.example", i % TOKENS);
        if (tf_acme_http01_put(r->t, tok, ka) != 0 ||
            tf_acme_alpn01_put(r->t, host, (const uint8_t *)host, strlen(host), key, sizeof key) !=
                0)
            atomic_fetch_add(&r->bad, 1);
        if (i % 3 == 0) {
            tf_acme_http01_remove(r->t, tok);
            tf_acme_alpn01_remove(r->t, host);
        }
    }
    atomic_store(&r->stop, true);
    return NULL;
}

static void *reader(void *arg)
{
    race_t *r = arg;
    for (unsigned i = 0; !atomic_load(&r->stop); i++) {
        char tok[16], host[32];
        snprintf(tok, sizeof tok, "t%u", i % TOKENS);
        snprintf(host, sizeof host, "h%u.example", i % TOKENS);
        char *ka;
        size_t len;
        if (tf_acme_http01_get(r->t, tok, &ka, &len) == 0) {
            if (strncmp(ka, tok, strlen(tok)) != 0 || ka[strlen(tok)] != '.' || strlen(ka) != len)
                atomic_fetch_add(&r->bad, 1);
            atomic_fetch_add(&r->seen, 1);
            free(ka);
        }
        uint8_t *c, *k;
        size_t cl, kl;
        if (tf_acme_alpn01_get(r->t, host, strlen(host), &c, &cl, &k, &kl) == 0) {
            if (cl != strlen(host) || memcmp(c, host, cl) != 0 || kl != 32 || k[0] != 1)
                atomic_fetch_add(&r->bad, 1);
            free(c);
            free(k);
        }
    }
    return NULL;
}

Test(challenges, a_writer_and_readers_on_threads)
{
    race_t r = {.t = table()};
    pthread_t w, rd[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&rd[i], NULL, reader, &r), 0);
    cr_assert_eq(pthread_create(&w, NULL, writer, &r), 0);
    pthread_join(w, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(rd[i], NULL);
    cr_expect_eq(atomic_load(&r.bad), 0);
    cr_expect_gt(atomic_load(&r.seen), 0, "the readers never saw an entry");
    tf_acme_challenges_free(r.t);
}

/* ---- answers shared through acme.storage (acme/shared.c) ---------------------- */

/* A thumbprint's shape: 43 base64url characters (RFC 7638, SHA-256). */
#define THUMB "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO-_"

static void shared_dir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/tf-acme-shared-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void shared_rm(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(challenges, http01_answers_shared_through_storage)
{
    char dir[64], path[160];
    shared_dir(dir, sizeof dir);
    char *ka = NULL;
    size_t len = 0;
    cr_expect_eq(tf_acme_http01_shared_get(dir, "tok", &ka, &len), TF_ENOTFOUND);
    cr_expect_eq(tf_acme_http01_shared_get(NULL, "tok", &ka, &len), TF_ENOTFOUND);
    cr_assert_eq(tf_acme_http01_share(dir, "tok", "tok." THUMB), 0);
    cr_assert_eq(tf_acme_http01_shared_get(dir, "tok", &ka, &len), 0);
    cr_expect_str_eq(ka, "tok." THUMB);
    cr_expect_eq(len, 47);
    free(ka);
    struct stat st;
    snprintf(path, sizeof path, "%s/challenges/http-01", dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/challenges/http-01/tok", dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    /* Tokens that are no base64url name no file. */
    cr_expect_eq(tf_acme_http01_share(dir, "../x", "../x." THUMB), TF_EINVAL);
    cr_expect_eq(tf_acme_http01_share(dir, "", "x"), TF_EINVAL);
    cr_expect_eq(tf_acme_http01_shared_get(dir, "a.b", &ka, &len), TF_ENOTFOUND);
    tf_acme_http01_unshare(dir, "tok");
    cr_expect_eq(stat(path, &st), -1);
    cr_expect_eq(tf_acme_http01_shared_get(dir, "tok", &ka, &len), TF_ENOTFOUND);
    cr_expect_null(ka);
    shared_rm(dir);
}

/* Only a regular file that answers this very token is served. */
Test(challenges, a_shared_answer_must_be_a_file_for_its_token)
{
    char dir[64], path[160], cmd[400];
    shared_dir(dir, sizeof dir);
    char *ka = NULL;
    size_t len = 0;
    cr_assert_eq(tf_acme_http01_share(dir, "tok", "other." THUMB), 0);
    cr_expect_eq(tf_acme_http01_shared_get(dir, "tok", &ka, &len), TF_ENOTFOUND);
    /* Exactly TOKEN "." thumbprint: these bytes go to whoever asks. A NUL
     * inside, a byte outside base64url, a short or long thumbprint, a
     * trailing newline: not served. */
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"tok." THUMB, 46},      /* NUL in place of the last character (below) */
        {"tok.!" THUMB, 47},     /* 47 bytes, a '!' inside */
        {"tok." THUMB, 46},      /* short */
        {"tok." THUMB "=", 48},  /* long */
        {"tok." THUMB "\n", 48}, /* a newline */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char bytes[64];
        memcpy(bytes, bad[i].bytes, bad[i].len);
        size_t len_i = bad[i].len;
        if (i == 0) {
            bytes[46] = '\0';
            len_i = 47;
        }
        snprintf(path, sizeof path, "%s/challenges/http-01/tok", dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(bytes, 1, len_i, f), len_i);
        cr_assert_eq(fclose(f), 0);
        cr_expect_eq(tf_acme_http01_shared_get(dir, "tok", &ka, &len), TF_ENOTFOUND, "case %zu", i);
        cr_expect_null(ka);
    }
    snprintf(cmd, sizeof cmd,
             "cd '%s/challenges/http-01' && printf 'sec.%s' > ../../secret && "
             "ln -s ../../secret sec && mkfifo fifo",
             dir, THUMB);
    cr_assert_eq(system(cmd), 0);
    cr_expect_eq(tf_acme_http01_shared_get(dir, "sec", &ka, &len), TF_ENOTFOUND);
    cr_expect_eq(tf_acme_http01_shared_get(dir, "fifo", &ka, &len), TF_ENOTFOUND);
    /* A symlinked directory below storage is not followed either. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p elsewhere/http-01 && printf 'lnk.%s' > elsewhere/http-01/lnk && "
             "rm -rf challenges && ln -s elsewhere challenges",
             dir, THUMB);
    cr_assert_eq(system(cmd), 0);
    cr_expect_eq(tf_acme_http01_shared_get(dir, "lnk", &ka, &len), TF_ENOTFOUND);
    cr_expect_null(ka);
    snprintf(path, sizeof path, "%s", dir);
    shared_rm(path);
}
