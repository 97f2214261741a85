/* proxy/ admin API: the certificate files behind PUT and DELETE /certs/NAME
 * (SPEC §8), and the JSON descriptions of bundles that GET /certs shares.
 *
 * tf_admin_cert_job_run() does the blocking part — stat, read, validate,
 * write, fsync, rename, unlink — and is meant for libuv's thread pool: it
 * reads only its job and the configuration the job points to, touches no
 * loop and may log. The loop answers with the result afterwards. Private
 * keys read or uploaded are wiped once used and never appear in a result.
 */
#ifndef TF_PROXY_ADMIN_CERTS_H
#define TF_PROXY_ADMIN_CERTS_H

/* Internal to proxy/ops (and its tests): other libraries include
 * proxy/ops/ops.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 4 && !defined(TF_PROXY_OPS_PUBLIC)
#error "internal to proxy/ops: include proxy/ops/ops.h"
#endif

#include "certstore/certstore.h"
#include "conf/conf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The first directory in tls.certs (stat: it reads the disk's metadata),
 * where uploads go, or NULL. Points into conf. */
const char *tf_admin_cert_dir(const tf_conf_t *conf);

/* The 409 text of a PUT without a directory in tls.certs. */
#define TF_ADMIN_NO_CERT_DIR                                                                       \
    "no directory in tls.certs: uploads go into the first certificate directory; add one\n"

/* The answer to a PUT when tf_admin_cert_dir() finds no directory: 500 with
 * a text naming the first item of tls.certs that does not exist on disk (a
 * configured directory gone missing: create it), else 409 with
 * TF_ADMIN_NO_CERT_DIR. The text goes into buf (len bytes). Reads the
 * disk's metadata, as tf_admin_cert_dir() does. */
int tf_admin_no_cert_dir(const tf_conf_t *conf, char *buf, size_t len);

/* Whether NAME may name a certificate: 1-128 of A-Z a-z 0-9 . _ -, not
 * starting with a dot. */
bool tf_admin_cert_name_ok(const char *name);

typedef struct {
    /* request: borrowed, and must stay valid and unchanged during the run */
    bool put;                   /* PUT: validate and write `body`; else DELETE */
    const tf_conf_t *conf;      /* tls.certs and tls.default_cert */
    const tf_cs_trust_t *trust; /* NULL: the coarser missing-intermediate check */
    const char *name;           /* NAME, checked by tf_admin_cert_name_ok() */
    const char *body;           /* PUT: the bundle as uploaded */
    size_t body_len;
    /* result */
    int status;       /* 0: written (durable) or removed: reload; else the answer's status */
    const char *text; /* the answer's text (static, or `why`) when `json` is NULL */
    json_t *json;     /* the answer's JSON document, or NULL */
    json_t *extra;    /* status 0: an object whose members lead the reload's answer, or NULL */
    const char *dir;  /* the directory used (in conf's tls.certs), or NULL: none found */
    char file[4200];  /* with dir: DIR/NAME.pem */
    char why[4400];   /* a text built for this answer */
} tf_admin_cert_job_t;

/* PUT: 409 without a directory in tls.certs (500 when it is missing on
 * disk: tf_admin_no_cert_dir()), 422 with every reason (json)
 * when the bundle is not usable, 500 when it cannot be written; else it is
 * written as NAME.pem (a dotfile, mode 0600, fsync, rename, fsync of the
 * directory), a bundle without a key with the existing NAME's key.
 * DELETE: 409 for tls.default_cert, 404 when absent, 500 when it cannot be
 * removed or the directory synced; else NAME.pem and NAME.key are gone and
 * the directory synced. The existing key is looked up as the store does:
 * the key in NAME.pem, else NAME.key.
 * Any thread. The caller drops `json` and `extra` (json_decref). */
void tf_admin_cert_job_run(tf_admin_cert_job_t *j);

/* Sets a bundle's description into the object obj, in this order: names,
 * subject, issuer, serial, not_before, not_after, days_left, key (type and
 * bits only: never key material). 0, or -1 when out of memory (obj then
 * holds part of it). */
int tf_admin_json_bundle_fields(json_t *obj, const tf_cs_bundle_t *b);

#endif
