/* tests/acme: a small HTTP/1.1 server on a thread of the test, on
 * 127.0.0.1:0, one connection at a time, `Connection: close`. What it
 * answers is a function of the test: the http-01 answers from a challenge
 * table (what pebble's validation authority fetches), or a scripted ACME
 * server (errors, renewalInfo). Fails the running test on a broken
 * environment. */
#ifndef TF_TESTS_ACME_RESPONDER_H
#define TF_TESTS_ACME_RESPONDER_H

#include "acme/acme.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct tf_resp tf_resp_t;

/* One answer: STATUS, CTYPE (static), BODY (malloc'd or NULL), HEADERS
 * (extra header lines, each ending "\r\n", into a buffer of HCAP bytes). */
typedef struct {
    int status;
    const char *ctype;
    char *body;
    char headers[512];
} tf_resp_answer_t;

typedef void (*tf_resp_fn)(tf_resp_t *r, const char *method, const char *path, tf_resp_answer_t *a);

struct tf_resp {
    int fd;
    int stop[2];
    pthread_t thread;
    bool running;
    unsigned port;
    char base[64]; /* "http://127.0.0.1:PORT" */
    tf_resp_fn fn;
    tf_acme_challenges_t *table; /* for tf_resp_http01 */
    atomic_bool wrong;           /* tf_resp_http01 answers a wrong key authorization */
    atomic_int hits;             /* requests answered with 200 */
    pthread_mutex_t lock;
    char last_path[512];  /* under lock */
    char last_body[8192]; /* under lock; the answer function may read it unlocked */
    /* tls-alpn-01 (tf_resp_start_alpn): the name whose validation
     * certificate is served, and a server context of the test's. */
    const char *alpn_host;
    void *wctx; /* WOLFSSL_CTX */
};

/* Binds 127.0.0.1:0 and starts the thread. */
void tf_resp_start(tf_resp_t *r, tf_resp_fn fn, tf_acme_challenges_t *table);
/* tls-alpn-01 (RFC 8737): a TLS server that answers a ClientHello with
 * ALPN acme-tls/1 using HOST's validation certificate from TABLE (refusing
 * other protocols), counting completed handshakes in hits. */
void tf_resp_start_alpn(tf_resp_t *r, tf_acme_challenges_t *table, const char *host);
/* Stops the thread and closes the socket (idempotent). */
void tf_resp_stop(tf_resp_t *r);
/* A copy of the last request's path. */
void tf_resp_last_path(tf_resp_t *r, char *out, size_t cap);
/* A copy of the last request's body ("" for none). */
void tf_resp_last_body(tf_resp_t *r, char *out, size_t cap);

/* http-01: GET /.well-known/acme-challenge/TOKEN from r->table. */
void tf_resp_http01(tf_resp_t *r, const char *method, const char *path, tf_resp_answer_t *a);

#endif
