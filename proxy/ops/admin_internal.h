/* proxy/ops admin API, internal to admin*.c: the admin's and a connection's
 * state, and the functions its files share.
 *   admin.c            responses, routing, reading requests, connections,
 *                      the listener
 *   admin_endpoints.c  /certs, /metrics, /reload, PUT and DELETE /certs/NAME
 *   admin_token.c      admin.token_file: read, checked, applied
 *   admin_backends.c   GET /backends, POST /backends/TENANT/ADDRESS
 * (GET /acme is the ACME manager's own document, answered in admin.c.)
 */
#ifndef TF_PROXY_OPS_ADMIN_INTERNAL_H
#define TF_PROXY_OPS_ADMIN_INTERNAL_H

/* Internal to proxy/ops (and its tests): other libraries include
 * proxy/ops/ops.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 4 && !defined(TF_PROXY_OPS_PUBLIC)
#error "internal to proxy/ops: include proxy/ops/ops.h"
#endif

#include "proxy/ops/admin.h"

#include "certstore/certstore.h"
#include "proxy/ops/admin_certs.h"
#include "common/err.h"
#include "common/util.h"
#include "proxy/http/http.h"
#include "proxy/net/net.h"
#include "proxy/obs/obs.h"
#include "proxy/ops/json.h"
#include "proxy/ops/where.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define CONTINUE_100 "HTTP/1.1 100 Continue\r\n\r\n"
#define TOKEN_MAX 1024

typedef struct admin_conn admin_conn_t;

struct tf_admin {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    tf_reload_t *reload;
    tf_metrics_worker_t *const *metrics;
    unsigned nworkers;
    tf_acme_manager_t *acme; /* NULL: ACME is off */
    tf_cs_trust_t *trust;    /* for validating uploads as the store would */
    char token[TOKEN_MAX];
    size_t token_len; /* 0: no token required */
    bool deny_all;    /* a configured token could not be read: nothing is allowed */
    bool loopback;    /* admin.listen is a loopback address */
    bool pending;     /* a connection waits to be taken (cap or memory) */
    admin_conn_t *conns;
    /* PUT and DELETE /certs/NAME: one file job at a time, so that two
     * requests never change one name at once, and admin traffic holds at
     * most one of the pool's threads (shared with reloads). Others wait in
     * a queue, oldest first. */
    admin_conn_t *file_job; /* whose turn it is (its file work, then its reload), or NULL */
    admin_conn_t *queue_head, *queue_tail;
    unsigned handles;   /* the listener + every connection */
    unsigned jobs;      /* token file reads on the thread pool */
    uint64_t token_seq; /* the latest token request; older reads are dropped */
    bool closing;
};

/* PUT or DELETE /certs/NAME's file work on the thread pool. The loop fills
 * the request and then touches neither it nor the connection's buffer and
 * target (which it points into) until the after-work callback. */
typedef struct {
    uv_work_t req;
    tf_conf_t *conf; /* a reference: a reload may replace the one in service meanwhile */
    tf_admin_cert_job_t job;
} file_job_t;

struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_write_t creq; /* "100 Continue" */
    tf_admin_t *admin;
    admin_conn_t *prev, *next;
    tf_http_parser_t parser;
    tf_http_request_t req;
    char *buf; /* head, then body */
    size_t len, cap;
    size_t head_len, body_len; /* known once the head is parsed */
    bool head_done;
    bool waiting; /* for file work or a reload: closing waits for the answer */
    bool queued;  /* a PUT or DELETE waiting in the admin's queue */
    bool written; /* its file work changed the files: the answer says so */
    bool answered;
    uint8_t handles;
    char method[16];
    char target[256];
    char *out;     /* the response being written */
    json_t *extra; /* a PUT/DELETE's own members, leading the reload's answer */
    admin_conn_t *qnext;
    char sink[64]; /* reads while queued, only to see the client leave */
    file_job_t fj;
};

/* admin.c */

/* Writes a response (`type`, extra header lines, body) and closes the
 * connection once it is out; _text and _json (which takes `doc`) build the
 * body. */
void tf_admin__respond(admin_conn_t *c, int status, const char *type, const char *headers,
                       const char *body, size_t len);
void tf_admin__respond_text(admin_conn_t *c, int status, const char *headers, const char *text);
void tf_admin__respond_json(admin_conn_t *c, int status, json_t *doc);
/* Whether the request's method is `method`. */
bool tf_admin__method_is(const admin_conn_t *c, const char *method);
/* A connection's reads (libuv callbacks: a queued connection reads only to
 * see its client leave), its timer, and its close (which waits for an
 * answer it is waiting on). */
void tf_admin__conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void tf_admin__conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
void tf_admin__conn_on_timeout(uv_timer_t *t);
void tf_admin__conn_close(admin_conn_t *c);
/* Frees the admin once it is closing and its last handle and job are gone. */
void tf_admin__maybe_free(tf_admin_t *a);

/* admin_backends.c */

/* GET /backends's document: one object per route to backends of the
 * configuration CONF, each backend with its state in REG. */
json_t *tf_admin__backends_json(const tf_conf_t *conf, tf_backends_t *reg);
/* POST /backends/TENANT/ADDRESS: answers at once. */
void tf_admin__post_backend(admin_conn_t *c);

/* admin_endpoints.c */

/* GET /certs's document for a snapshot. */
json_t *tf_admin__certs_json(const tf_cs_snapshot_t *snap);
/* GET /metrics: answers at once. */
void tf_admin__get_metrics(admin_conn_t *c);
/* POST /reload (and after an upload): answers when the reload is done. */
void tf_admin__start_reload(admin_conn_t *c, bool with_conf, const char *why);
/* PUT and DELETE /certs/NAME: queued, their file work run one at a time;
 * a queued connection leaves the queue when it closes. */
void tf_admin__file_job_enqueue(admin_conn_t *c);
void tf_admin__queue_remove(admin_conn_t *c);

/* admin_token.c */

/* Reads admin.token_file of `conf` into out (*len bytes; 0: no token
 * configured). 0, or a code with the reason in why. */
int tf_admin__token_load(const tf_conf_t *conf, char *out, size_t *len, char *why, size_t whylen);

#endif
