/* The ACME protocol client: the object, the directory, nonces, signed
 * requests and the account (RFC 8555 §7.1-§7.3). The order is in order.c,
 * renewalInfo in renewal.c. See acme.h. */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    DEFAULT_POLL_MAX_S = 120,
    BAD_NONCE_RETRIES = 3,
    ACCOUNT_JSON_MAX = 4096,
};

static const char BAD_NONCE[] = "urn:ietf:params:acme:error:badNonce";

/* ---- the object ---------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    *ok = *ok && d != NULL;
    return d;
}

static int copy_conf(tf_acme_client_t *c, const tf_acme_client_conf_t *conf)
{
    bool ok = true;
    c->directory = dup_or_null(conf->directory, &ok);
    c->ca_file = dup_or_null(conf->ca_file, &ok);
    c->email = dup_or_null(conf->email, &ok);
    c->storage = dup_or_null(conf->storage, &ok);
    c->eab_kid = dup_or_null(conf->eab_kid, &ok);
    if (conf->eab_mac != NULL && conf->eab_mac_len > 0) {
        c->eab_mac = malloc(conf->eab_mac_len);
        ok = ok && c->eab_mac != NULL;
        if (c->eab_mac != NULL) {
            memcpy(c->eab_mac, conf->eab_mac, conf->eab_mac_len);
            c->eab_mac_len = conf->eab_mac_len;
        }
    }
    c->key_type = conf->key_type;
    c->challenges = conf->challenges;
    c->answers = conf->answers;
    c->poll_max_s = conf->poll_max_s ? conf->poll_max_s : DEFAULT_POLL_MAX_S;
    return ok ? 0 : TF_ENOMEM;
}

int tf_acme_client_new(const tf_acme_client_conf_t *conf, tf_acme_client_t **out,
                       tf_acme_problem_t *prob)
{
    *out = NULL;
    memset(prob, 0, sizeof *prob);
    if (conf->directory == NULL || conf->storage == NULL) {
        tf_acme__problem_set(prob, 0, "acme: the client needs a directory URL and a storage");
        return TF_EINVAL;
    }
    tf_acme_client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TF_ENOMEM;
    /* Waits on the server are measured on the monotonic clock: a clock
     * step must not stretch or cut them. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = copy_conf(c, conf);
    if (rc == 0) {
        tf_acme_http_opts_t ho = {.ca_file = c->ca_file, .timeout_ms = conf->timeout_ms};
        rc = tf_acme_http_new(&ho, &c->http, prob->detail, sizeof prob->detail);
    }
    if (rc == 0)
        rc = tf_acme_account_key(c->storage, &c->account, NULL, prob->detail, sizeof prob->detail);
    if (rc == 0)
        rc = tf_acme_key_thumbprint(c->account, c->thumbprint);
    if (rc != 0) {
        tf_acme_client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void tf_acme_client_free(tf_acme_client_t *c)
{
    if (c == NULL)
        return;
    tf_acme_http_free(c->http);
    tf_acme_key_free(c->account);
    json_decref(c->dir);
    if (c->eab_mac != NULL)
        tf_acme_free_secret(c->eab_mac, c->eab_mac_len);
    free(c->directory);
    free(c->ca_file);
    free(c->email);
    free(c->storage);
    free(c->eab_kid);
    free(c->kid);
    free(c->nonce);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void tf_acme_client_cancel(tf_acme_client_t *c)
{
    pthread_mutex_lock(&c->lock);
    c->cancelled = true;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->lock);
    if (c->http != NULL)
        tf_acme_http_cancel(c->http);
}

const char *tf_acme_client_account_url(const tf_acme_client_t *c)
{
    return c->kid;
}

unsigned tf_acme_client_nonce_retries(const tf_acme_client_t *c)
{
    return c->nonce_retries;
}

static bool cancelled(tf_acme_client_t *c)
{
    pthread_mutex_lock(&c->lock);
    bool v = c->cancelled;
    pthread_mutex_unlock(&c->lock);
    return v;
}

int tf_acme__pause(tf_acme_client_t *c, uint64_t ms)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)(ms / 1000);
    end.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    while (!c->cancelled && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&c->wake, &c->lock, &end);
    bool stop = c->cancelled;
    pthread_mutex_unlock(&c->lock);
    return stop ? -ECANCELED : 0;
}

/* ---- requests -------------------------------------------------------------- */

/* Keeps the response's nonce: every ACME response carries a fresh one
 * (RFC 8555 §6.5), which saves a HEAD newNonce before the next POST. */
static void keep_nonce(tf_acme_client_t *c, const tf_acme_http_response_t *r)
{
    if (r->replay_nonce == NULL || r->replay_nonce[0] == '\0')
        return;
    char *n = strdup(r->replay_nonce);
    if (n == NULL)
        return;
    free(c->nonce);
    c->nonce = n;
}

/* One request; a 4xx/5xx answer becomes TF_EACME with PROB. */
static int request(tf_acme_client_t *c, tf_acme_method_t m, const char *url, const char *body,
                   tf_acme_http_response_t *r, tf_acme_problem_t *prob)
{
    if (cancelled(c)) {
        tf_acme__problem_set(prob, 0, "acme: cancelled");
        return -ECANCELED;
    }
    char err[256] = "";
    int rc =
        tf_acme_http_request(c->http, m, url, body, body ? strlen(body) : 0, r, err, sizeof err);
    if (rc != 0) {
        tf_acme__problem_set(prob, 0, "%s", err);
        return rc;
    }
    keep_nonce(c, r);
    if (r->status >= 200 && r->status < 300)
        return 0;
    tf_acme__problem_parse(prob, url, r->status, r->content_type, r->body, r->body_len,
                           r->retry_after);
    tf_acme_http_response_dispose(r);
    return TF_EACME;
}

json_t *tf_acme__json(const tf_acme_http_response_t *r, const char *url, tf_acme_problem_t *prob)
{
    json_error_t je;
    json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, &je);
    if (json_is_object(j))
        return j;
    json_decref(j);
    tf_acme__problem_set(prob, r->status, "%s: the answer is not a JSON object (%s)", url, je.text);
    return NULL;
}

static int fetch_directory(tf_acme_client_t *c, tf_acme_problem_t *prob)
{
    tf_acme_http_response_t r;
    int rc = request(c, TF_ACME_GET, c->directory, NULL, &r, prob);
    if (rc != 0)
        return rc;
    c->dir = tf_acme__json(&r, c->directory, prob);
    tf_acme_http_response_dispose(&r);
    return c->dir ? 0 : TF_EIO;
}

const char *tf_acme__dir_url(tf_acme_client_t *c, const char *name, int *rc,
                             tf_acme_problem_t *prob)
{
    *rc = c->dir ? 0 : fetch_directory(c, prob);
    if (*rc != 0)
        return NULL;
    const char *url = json_string_value(json_object_get(c->dir, name));
    if (url == NULL) {
        *rc = TF_ENOTFOUND;
        tf_acme__problem_set(prob, 0, "%s: the directory has no %s", c->directory, name);
    }
    return url;
}

static int new_nonce(tf_acme_client_t *c, tf_acme_problem_t *prob)
{
    int rc;
    const char *url = tf_acme__dir_url(c, "newNonce", &rc, prob);
    if (url == NULL)
        return rc;
    tf_acme_http_response_t r;
    rc = request(c, TF_ACME_HEAD, url, NULL, &r, prob);
    if (rc != 0)
        return rc;
    tf_acme_http_response_dispose(&r);
    if (c->nonce != NULL)
        return 0;
    tf_acme__problem_set(prob, 0, "%s: no Replay-Nonce in the answer", url);
    return TF_EIO;
}

/* One signed attempt; consumes the nonce kept. */
static int post_once(tf_acme_client_t *c, const tf_acme__post_t *req, tf_acme_http_response_t *resp,
                     tf_acme_problem_t *prob)
{
    int rc = c->nonce ? 0 : new_nonce(c, prob);
    if (rc != 0)
        return rc;
    char *jws = NULL, *nonce = c->nonce;
    c->nonce = NULL;
    rc = tf_acme_jws(c->account, req->jwk ? NULL : c->kid, nonce, req->url,
                     req->payload ? req->payload : "", &jws);
    free(nonce);
    if (rc != 0) {
        tf_acme__problem_set(prob, 0, "acme: cannot sign the request to %s: %s", req->url,
                             tf_strerror(rc));
        return rc;
    }
    rc = request(c, TF_ACME_POST, req->url, jws, resp, prob);
    free(jws);
    return rc;
}

int tf_acme__post(tf_acme_client_t *c, const tf_acme__post_t *req, tf_acme_http_response_t *resp,
                  tf_acme_problem_t *prob)
{
    for (int attempt = 0;; attempt++) {
        tf_acme_problem_dispose(prob);
        int rc = post_once(c, req, resp, prob);
        if (rc != TF_EACME || strcmp(prob->type, BAD_NONCE) != 0 || attempt == BAD_NONCE_RETRIES)
            return rc;
        c->nonce_retries++;
    }
}

int tf_acme__get(tf_acme_client_t *c, const char *url, tf_acme_http_response_t *resp,
                 tf_acme_problem_t *prob)
{
    return request(c, TF_ACME_GET, url, NULL, resp, prob);
}

/* ---- storage ------------------------------------------------------------- */

int tf_acme__write_file(const char *path, const void *data, size_t len)
{
    return tf_acme__write_atomic(path, data, len, 0600, false);
}

static void account_path(const tf_acme_client_t *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s/account.json", c->storage);
}

/* The stored URL, when it was made on this directory for this key: a new
 * directory (staging to production) or a replaced key needs its own. */
static void account_load(tf_acme_client_t *c)
{
    char path[4096];
    account_path(c, path, sizeof path);
    json_t *j = json_load_file(path, 0, NULL);
    const char *url = json_string_value(json_object_get(j, "url"));
    const char *dir = json_string_value(json_object_get(j, "directory"));
    const char *tp = json_string_value(json_object_get(j, "thumbprint"));
    if (url != NULL && dir != NULL && tp != NULL && strcmp(dir, c->directory) == 0 &&
        strcmp(tp, c->thumbprint) == 0)
        c->kid = strdup(url);
    json_decref(j);
}

static int account_save(tf_acme_client_t *c, tf_acme_problem_t *prob)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "url", c->kid, "directory", c->directory, "thumbprint",
                          c->thumbprint);
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (text == NULL)
        return TF_ENOMEM;
    char path[4096];
    account_path(c, path, sizeof path);
    int rc = tf_acme__write_file(path, text, strlen(text));
    free(text);
    if (rc != 0)
        tf_acme__problem_set(prob, 0, "%s: cannot write: %s", path, strerror(-rc));
    return rc;
}

void tf_acme__account_forget(tf_acme_client_t *c)
{
    free(c->kid);
    c->kid = NULL;
}

/* ---- the account (RFC 8555 §7.3) ---------------------------------------- */

static json_t *account_payload(tf_acme_client_t *c, const char *url, tf_acme_problem_t *prob)
{
    json_t *p = json_pack("{s:b}", "termsOfServiceAgreed", 1);
    if (p != NULL && c->email != NULL && c->email[0] != '\0') {
        char mailto[512];
        snprintf(mailto, sizeof mailto, "mailto:%s", c->email);
        json_object_set_new(p, "contact", json_pack("[s]", mailto));
    }
    if (p != NULL && c->eab_kid != NULL) {
        json_t *eab = NULL;
        int rc = tf_acme_eab_jws(c->account, c->eab_kid, c->eab_mac, c->eab_mac_len, url, &eab);
        if (rc != 0) {
            tf_acme__problem_set(prob, 0, "acme: cannot sign the external account binding: %s",
                                 tf_strerror(rc));
            json_decref(p);
            return NULL;
        }
        json_object_set_new(p, "externalAccountBinding", eab);
    }
    return p;
}

static int new_account(tf_acme_client_t *c, tf_acme_problem_t *prob)
{
    int rc;
    const char *url = tf_acme__dir_url(c, "newAccount", &rc, prob);
    if (url == NULL)
        return rc;
    json_t *p = account_payload(c, url, prob);
    char *payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (payload == NULL)
        return prob->detail[0] ? TF_ECRYPTO : TF_ENOMEM;
    tf_acme__post_t req = {.url = url, .payload = payload, .jwk = true};
    tf_acme_http_response_t r;
    rc = tf_acme__post(c, &req, &r, prob);
    free(payload);
    if (rc != 0)
        return rc;
    /* 201 for a new account, 200 for this key's existing one (§7.3.1). */
    if (r.location != NULL)
        c->kid = strdup(r.location);
    tf_acme_http_response_dispose(&r);
    if (c->kid == NULL) {
        tf_acme__problem_set(prob, 0, "%s: no Location for the account", url);
        return TF_EIO;
    }
    return account_save(c, prob);
}

int tf_acme__account(tf_acme_client_t *c, tf_acme_problem_t *prob)
{
    if (c->kid == NULL)
        account_load(c);
    return c->kid ? 0 : new_account(c, prob);
}

const tf_acme_client_ops_t tf_acme_client_ops_default = {
    .issue = tf_acme_client_issue,
    .renewal_info = tf_acme_client_renewal_info,
};
