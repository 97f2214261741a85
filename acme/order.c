/* One certificate order, RFC 8555 §7.4-§7.5 and §8: the order (new or
 * resumed), its authorizations answered by http-01 or tls-alpn-01, the
 * finalization with a fresh key and the certificate. See acme.h. */
#include "acme/acme_internal.h"

#include "common/err.h"
#include "conf/conf.h"

#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    POLL_FIRST_MS = 250, /* validation on a test server takes well under a second */
    POLL_CAP_MS = 8000,
};

static const char NO_ACCOUNT[] = "urn:ietf:params:acme:error:accountDoesNotExist";

typedef struct {
    tf_acme_client_t *c;
    const char *host;
    const char *renewing; /* PEM of the certificate this order replaces, or NULL */
    tf_acme_problem_t *prob;
    char *url;     /* the order's */
    json_t *order; /* its last state */
    tf_acme_key_t *key;
    char key_path[4096];
    int share_err; /* the last http-01 answer could not be shared (acme.storage): -errno */
} run_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *status_of(const json_t *j)
{
    const char *s = json_string_value(json_object_get(j, "status"));
    return s ? s : "";
}

/* A signed POST answered with a JSON object (*OUT), re-registering once
 * when the server has forgotten the account (a test server restarted, an
 * account deactivated elsewhere). *RETRY_MS (may be NULL): Retry-After. */
static int post_json(run_t *o, const char *url, const char *payload, json_t **out,
                     uint64_t *retry_ms, char **location)
{
    tf_acme__post_t req = {.url = url, .payload = payload};
    tf_acme_http_response_t r;
    int rc = tf_acme__post(o->c, &req, &r, o->prob);
    if (rc == TF_EACME && strcmp(o->prob->type, NO_ACCOUNT) == 0) {
        tf_acme__account_forget(o->c);
        rc = tf_acme__account(o->c, o->prob);
        if (rc == 0)
            rc = tf_acme__post(o->c, &req, &r, o->prob);
    }
    if (rc != 0)
        return rc;
    if (retry_ms != NULL)
        *retry_ms = tf_acme__retry_after(r.retry_after, (int64_t)time(NULL)) * 1000;
    if (location != NULL)
        *location = r.location ? strdup(r.location) : NULL;
    *out = tf_acme__json(&r, url, o->prob);
    tf_acme_http_response_dispose(&r);
    return *out ? 0 : TF_EIO;
}

/* POST-as-GET URL until its status is none of WAITING (NULL-terminated),
 * pausing as the server asks (Retry-After) or 250 ms doubling to 8 s, for
 * poll_max_s at most. *OUT: the last state. */
static int poll(run_t *o, const char *url, const char *const *waiting, json_t **out)
{
    int64_t end = now_ms() + (int64_t)o->c->poll_max_s * 1000;
    uint64_t gap = POLL_FIRST_MS;
    for (;;) {
        uint64_t retry = 0;
        int rc = post_json(o, url, NULL, out, &retry, NULL);
        if (rc != 0)
            return rc;
        bool wait = false;
        for (size_t i = 0; waiting[i] != NULL; i++)
            wait = wait || strcmp(status_of(*out), waiting[i]) == 0;
        if (!wait)
            return 0;
        json_decref(*out);
        *out = NULL;
        uint64_t ms = retry ? retry : gap;
        gap = gap * 2 > POLL_CAP_MS ? POLL_CAP_MS : gap * 2;
        int64_t left = end - now_ms();
        if (left <= 0) {
            tf_acme__problem_set(o->prob, 0, "%s: still not done after %u s", url,
                                 o->c->poll_max_s);
            return -ETIMEDOUT;
        }
        rc = tf_acme__pause(o->c, ms < (uint64_t)left ? ms : (uint64_t)left);
        if (rc != 0)
            return rc;
    }
}

/* ---- the certificate key, kept while the order may still need it --------- */

static int key_path(run_t *o)
{
    unsigned char h[WC_SHA256_DIGEST_SIZE];
    if (wc_Sha256Hash((const unsigned char *)o->url, (word32)strlen(o->url), h) != 0)
        return TF_ECRYPTO;
    char hex[33];
    for (size_t i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    char dir[4000];
    if (snprintf(dir, sizeof dir, "%s/orders", o->c->storage) >= (int)sizeof dir)
        return -ENAMETOOLONG;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    snprintf(o->key_path, sizeof o->key_path, "%s/%s.key", dir, hex);
    return 0;
}

static int key_save(run_t *o)
{
    char *pem = NULL;
    size_t len = 0;
    int rc = key_path(o);
    if (rc == 0)
        rc = tf_acme_key_to_pem(o->key, &pem, &len);
    if (rc == 0)
        rc = tf_acme__write_file(o->key_path, pem, len);
    tf_acme_free_secret(pem, len);
    if (rc != 0)
        tf_acme__problem_set(o->prob, 0, "%s: cannot keep the certificate key: %s", o->key_path,
                             tf_strerror(rc));
    return rc;
}

/* The key of a finalized order from an earlier run, if kept. */
static bool key_load(run_t *o)
{
    if (key_path(o) != 0)
        return false;
    FILE *f = fopen(o->key_path, "r");
    if (f == NULL)
        return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    bool ok = tf_acme_key_from_pem(buf, n, &o->key) == 0;
    explicit_bzero(buf, sizeof buf);
    return ok;
}

/* ---- the order ------------------------------------------------------------ */

static bool for_host(const json_t *order, const char *host)
{
    const json_t *ids = json_object_get(order, "identifiers");
    const json_t *id = json_array_get(ids, 0);
    const char *v = json_string_value(json_object_get(id, "value"));
    return json_array_size(ids) == 1 && v != NULL && strcmp(v, host) == 0;
}

/* 0 when RESUME is worth continuing (o->order set); 1 when a new order is
 * needed; a code when the server cannot be asked. */
static int resume(run_t *o, const char *url)
{
    o->url = strdup(url);
    if (o->url == NULL)
        return TF_ENOMEM;
    int rc = post_json(o, url, NULL, &o->order, NULL, NULL);
    /* Gone (404), not this account's (403), not an order URL: a new one.
     * A refused nonce or a rate limit says nothing about the order. */
    if (rc == TF_EACME && o->prob->status >= 400 && o->prob->status < 500 &&
        strcmp(o->prob->type, "urn:ietf:params:acme:error:badNonce") != 0 &&
        strcmp(o->prob->type, "urn:ietf:params:acme:error:rateLimited") != 0)
        rc = 1;
    const char *st = status_of(o->order);
    if (rc == 0 && (!for_host(o->order, o->host) ||
                    (strcmp(st, "pending") != 0 && strcmp(st, "ready") != 0 &&
                     strcmp(st, "processing") != 0 && strcmp(st, "valid") != 0)))
        rc = 1;
    /* Finalized with a key of an earlier run: only that key fits. */
    if (rc == 0 && (strcmp(st, "processing") == 0 || strcmp(st, "valid") == 0) && !key_load(o))
        rc = 1;
    if (rc == 1) {
        /* An earlier run's key for this order (finalized, then cut short)
         * fits nothing now: it goes with the order. */
        if (key_path(o) == 0)
            unlink(o->key_path);
        o->key_path[0] = '\0';
        tf_acme_problem_dispose(o->prob);
        json_decref(o->order);
        o->order = NULL;
        free(o->url);
        o->url = NULL;
    }
    return rc;
}

/* RFC 9773 §5: the certID of the certificate a renewal replaces, when the
 * server offers renewalInfo (the sign that it knows `replaces`), so that it
 * may exempt the order from rate limits and retire the old certificate. A
 * new string (free()), or NULL: no such certificate, no renewalInfo, or a
 * certificate without an authority key identifier to name it by. */
static char *replaces_id(run_t *o)
{
    if (o->renewing == NULL)
        return NULL;
    int rc;
    tf_acme_problem_t quiet = {0};
    const char *ari = tf_acme__dir_url(o->c, "renewalInfo", &rc, &quiet);
    tf_acme_problem_dispose(&quiet);
    unsigned char *der = NULL;
    size_t derlen = 0;
    char *id = NULL;
    if (ari != NULL && tf_acme__leaf_der(o->renewing, strlen(o->renewing), &der, &derlen) == 0 &&
        tf_acme__cert_id(der, derlen, &id) != 0)
        id = NULL;
    free(der);
    return id;
}

static int post_new_order(run_t *o, const char *url, const char *replaces)
{
    json_t *p = json_pack("{s:[{s:s, s:s}]}", "identifiers", "type", "dns", "value", o->host);
    int bad = p == NULL;
    if (!bad && replaces != NULL)
        bad = json_object_set_new(p, "replaces", json_string(replaces));
    char *payload = !bad ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (payload == NULL)
        return TF_ENOMEM;
    int rc = post_json(o, url, payload, &o->order, NULL, &o->url);
    free(payload);
    return rc;
}

static int new_order(run_t *o)
{
    int rc;
    const char *url = tf_acme__dir_url(o->c, "newOrder", &rc, o->prob);
    if (url == NULL)
        return rc;
    char *replaces = replaces_id(o);
    rc = post_new_order(o, url, replaces);
    /* The CA refused the order because of `replaces`: replaced already (by
     * another client of the account, or an order that was lost), or a
     * certificate it does not know as this account's (another CA or
     * account since, as Boulder and pebble answer with unauthorized or
     * malformed). The renewal is still wanted, as a plain order: once, and
     * not for the problems a plain order would meet too. */
    if (rc == TF_EACME && replaces != NULL && o->prob->status >= 400 && o->prob->status < 500 &&
        strcmp(o->prob->type, "urn:ietf:params:acme:error:rateLimited") != 0 &&
        strcmp(o->prob->type, "urn:ietf:params:acme:error:badNonce") != 0) {
        tf_acme_problem_dispose(o->prob);
        rc = post_new_order(o, url, NULL);
    }
    free(replaces);
    if (rc == 0 && o->url == NULL) {
        tf_acme__problem_set(o->prob, 0, "%s: no Location for the order", url);
        rc = TF_EIO;
    }
    return rc;
}

/* ---- authorizations (§7.5) ---------------------------------------------- */

const json_t *tf_acme__choose_challenge(const json_t *authz, unsigned allowed)
{
    static const struct {
        unsigned flag;
        const char *type;
    } pref[] = {{TF_CONF_ACME_HTTP01, "http-01"}, {TF_CONF_ACME_TLSALPN01, "tls-alpn-01"}};
    const json_t *all = json_object_get(authz, "challenges");
    for (size_t p = 0; p < sizeof pref / sizeof pref[0]; p++) {
        size_t i;
        const json_t *ch;
        if ((allowed & pref[p].flag) == 0)
            continue;
        json_array_foreach(all, i, ch)
        {
            const char *t = json_string_value(json_object_get(ch, "type"));
            if (t != NULL && strcmp(t, pref[p].type) == 0 &&
                json_string_value(json_object_get(ch, "token")) != NULL &&
                json_string_value(json_object_get(ch, "url")) != NULL)
                return ch;
        }
    }
    return NULL;
}

static bool is_http01(const json_t *ch)
{
    return strcmp(json_string_value(json_object_get(ch, "type")), "http-01") == 0;
}

static int publish(run_t *o, const json_t *ch, const char *name)
{
    const char *token = json_string_value(json_object_get(ch, "token"));
    char *ka = NULL;
    int rc = tf_acme_key_authorization(o->c->account, token, &ka);
    if (rc == 0 && is_http01(ch)) {
        rc = tf_acme_http01_put(o->c->answers, token, ka);
        /* For other instances sharing storage (acme.h). Not fatal: this
         * instance answers from memory; should the CA reach another one
         * and the authorization fail, the problem says why. */
        if (rc == 0)
            o->share_err = tf_acme_http01_share(o->c->storage, token, ka);
    } else if (rc == 0) {
        unsigned char *cert = NULL, *key = NULL;
        size_t certlen = 0, keylen = 0;
        rc = tf_acme_alpn_cert(name, ka, &cert, &certlen, &key, &keylen);
        if (rc == 0)
            rc = tf_acme_alpn01_put(o->c->answers, name, cert, certlen, key, keylen);
        free(cert);
        tf_acme_free_secret(key, keylen);
    }
    free(ka);
    if (rc != 0)
        tf_acme__problem_set(o->prob, 0, "acme: cannot publish the %s answer for %s: %s",
                             json_string_value(json_object_get(ch, "type")), name, tf_strerror(rc));
    return rc;
}

/* DECIDED: the CA has judged the authorization; until then the shared
 * answer stays, for the instance (or the restart of this one) that
 * receives the validation after this process stopped waiting (a SIGTERM
 * during a rolling restart, a timeout). The sweep or the resumed order
 * removes it later. */
static void unpublish(run_t *o, const json_t *ch, const char *name, bool decided)
{
    const char *token = json_string_value(json_object_get(ch, "token"));
    if (is_http01(ch)) {
        tf_acme_http01_remove(o->c->answers, token);
        if (decided)
            tf_acme_http01_unshare(o->c->storage, token);
    } else {
        tf_acme_alpn01_remove(o->c->answers, name);
    }
}

/* The reason an authorization failed: the error of its failed challenge
 * (§7.1.4), else a sentence. */
static int authz_failed(run_t *o, const json_t *authz, const char *url)
{
    size_t i;
    const json_t *ch;
    json_array_foreach(json_object_get(authz, "challenges"), i, ch)
    {
        const json_t *err = json_object_get(ch, "error");
        /* The CA refused (the authorization is invalid): counted as such
         * even when its error names no status (403, as RFC 8555 §6.7
         * suggests for unauthorized). */
        if (json_is_object(err)) {
            tf_acme__problem_from_json(o->prob, err, 403);
            return TF_EACME;
        }
    }
    tf_acme__problem_set(o->prob, 403, "%s: the authorization is %s", url, status_of(authz));
    return TF_EACME;
}

static void offered(const json_t *authz, char *out, size_t cap)
{
    size_t i, n = 0;
    const json_t *ch;
    out[0] = '\0';
    json_array_foreach(json_object_get(authz, "challenges"), i, ch)
    {
        const char *t = json_string_value(json_object_get(ch, "type"));
        int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", t ? t : "?");
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
}

/* The answer of a failed validation was not in acme.storage: should the
 * CA have reached another instance, that is why; the problem says so. */
static void note_unshared(run_t *o)
{
    size_t n = strlen(o->prob->detail);
    snprintf(o->prob->detail + n, sizeof o->prob->detail - n,
             " (the answer could not be shared through acme.storage for other instances: %s)",
             tf_strerror(o->share_err));
}

/* Answers CH of the pending AUTHZ and waits for the verdict. */
static int validate(run_t *o, const json_t *ch, const char *name, const char *url)
{
    static const char *const waiting[] = {"pending", NULL};
    int rc = publish(o, ch, name);
    json_t *res = NULL, *after = NULL;
    /* A challenge already processing (an earlier run answered) is only
     * waited for. */
    if (rc == 0 && strcmp(status_of(ch), "pending") == 0)
        rc = post_json(o, json_string_value(json_object_get(ch, "url")), "{}", &res, NULL, NULL);
    if (rc == 0)
        rc = poll(o, url, waiting, &after);
    bool decided = rc == 0;
    if (rc == 0 && strcmp(status_of(after), "valid") != 0) {
        rc = authz_failed(o, after, url);
        if (o->share_err != 0)
            note_unshared(o);
    }
    unpublish(o, ch, name, decided);
    json_decref(res);
    json_decref(after);
    return rc;
}

static int authorize_one(run_t *o, const char *url)
{
    json_t *authz = NULL;
    int rc = post_json(o, url, NULL, &authz, NULL, NULL);
    if (rc != 0)
        return rc;
    const char *st = status_of(authz);
    const char *name =
        json_string_value(json_object_get(json_object_get(authz, "identifier"), "value"));
    if (strcmp(st, "valid") == 0) {
        rc = 0;
    } else if (strcmp(st, "pending") != 0) {
        rc = authz_failed(o, authz, url);
    } else if (name == NULL || strcasecmp(name, o->host) != 0) {
        /* Never publish an answer for a name we did not order. */
        tf_acme__problem_set(o->prob, 0, "%s: an authorization for %s in an order for %s", url,
                             name ? name : "no name", o->host);
        rc = TF_EIO;
    } else {
        const json_t *ch = tf_acme__choose_challenge(authz, o->c->challenges);
        if (ch == NULL) {
            char list[256];
            offered(authz, list, sizeof list);
            tf_acme__problem_set(o->prob, 0,
                                 "%s: the server offers none of the allowed challenge types "
                                 "(offered: %s)",
                                 url, list);
            rc = TF_EUNSUPPORTED;
        } else {
            /* Our own spelling (lower case, as ordered): the server's may
             * differ in case, which the validation certificate refuses. */
            rc = validate(o, ch, o->host, url);
        }
    }
    json_decref(authz);
    return rc;
}

static int authorize(run_t *o)
{
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(o->order, "authorizations"), i, a)
    {
        const char *url = json_string_value(a);
        int rc = url ? authorize_one(o, url) : TF_EIO;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- finalization and the certificate (§7.4) ----------------------------- */

static int order_failed(run_t *o)
{
    const json_t *err = json_object_get(o->order, "error");
    if (json_is_object(err)) /* a refusal: see authz_failed() */
        tf_acme__problem_from_json(o->prob, err, 403);
    else
        tf_acme__problem_set(o->prob, 403, "%s: the order is %s", o->url, status_of(o->order));
    return TF_EACME;
}

/* Polls the order while it is in one of WAITING; it must end as WANT. */
static int order_wait(run_t *o, const char *const *waiting, const char *want)
{
    json_t *next = NULL;
    int rc = poll(o, o->url, waiting, &next);
    if (rc != 0)
        return rc;
    json_decref(o->order);
    o->order = next;
    return strcmp(status_of(next), want) == 0 ? 0 : order_failed(o);
}

static int finalize(run_t *o)
{
    static const char *const waiting[] = {"processing", "ready", NULL};
    const char *url = json_string_value(json_object_get(o->order, "finalize"));
    unsigned char *csr = NULL;
    size_t csrlen = 0;
    char *b64 = NULL, *payload = NULL;
    json_t *res = NULL, *p = NULL;
    int rc = url ? tf_acme_key_generate(o->c->key_type, &o->key) : TF_EIO;
    if (rc == 0)
        rc = key_save(o);
    if (rc == 0)
        rc = tf_acme_csr(o->key, o->host, &csr, &csrlen);
    if (rc == 0 && ((b64 = tf_acme_b64url_dup(csr, csrlen)) == NULL ||
                    (p = json_pack("{s:s}", "csr", b64)) == NULL ||
                    (payload = json_dumps(p, JSON_COMPACT)) == NULL))
        rc = TF_ENOMEM;
    json_decref(p);
    if (rc == 0)
        rc = post_json(o, url, payload, &res, NULL, NULL);
    if (rc == 0)
        rc = order_wait(o, waiting, "valid");
    if (url == NULL)
        tf_acme__problem_set(o->prob, 0, "%s: the order has no finalize URL", o->url);
    json_decref(res);
    free(csr);
    free(b64);
    free(payload);
    return rc;
}

static int bundle(run_t *o, const tf_acme_http_response_t *r, tf_acme_issued_t *out)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    if (r->body == NULL || strstr(r->body, begin) == NULL) {
        tf_acme__problem_set(o->prob, r->status, "%s: the certificate is not PEM", o->url);
        return TF_EIO;
    }
    unsigned char *der = NULL;
    size_t derlen = 0;
    int rc = tf_acme__leaf_der(r->body, r->body_len, &der, &derlen);
    if (rc == 0)
        rc = tf_acme__cert_dates(der, derlen, &out->not_before, &out->not_after);
    free(der);
    char *pem = NULL;
    size_t pemlen = 0;
    if (rc == 0)
        rc = tf_acme_key_to_pem(o->key, &pem, &pemlen);
    bool nl = r->body_len > 0 && r->body[r->body_len - 1] != '\n';
    out->bundle_len = r->body_len + (nl ? 1 : 0) + pemlen;
    if (rc == 0 && (out->bundle = malloc(out->bundle_len + 1)) == NULL)
        rc = TF_ENOMEM;
    if (rc == 0) {
        memcpy(out->bundle, r->body, r->body_len);
        if (nl)
            out->bundle[r->body_len] = '\n';
        memcpy(out->bundle + r->body_len + (nl ? 1 : 0), pem, pemlen + 1);
    } else if (o->prob->detail[0] == '\0') {
        tf_acme__problem_set(o->prob, 0, "%s: the certificate cannot be read: %s", o->url,
                             tf_strerror(rc));
    }
    tf_acme_free_secret(pem, pemlen);
    return rc;
}

static int download(run_t *o, tf_acme_issued_t *out)
{
    const char *url = json_string_value(json_object_get(o->order, "certificate"));
    if (url == NULL) {
        tf_acme__problem_set(o->prob, 0, "%s: a valid order without a certificate URL", o->url);
        return TF_EIO;
    }
    tf_acme__post_t req = {.url = url};
    tf_acme_http_response_t r;
    int rc = tf_acme__post(o->c, &req, &r, o->prob);
    if (rc != 0)
        return rc;
    rc = bundle(o, &r, out);
    tf_acme_http_response_dispose(&r);
    return rc;
}

/* ---- the whole ------------------------------------------------------------- */

static int start(run_t *o, const char *resume_url, void (*on_order)(void *, const char *), void *ud)
{
    int rc = resume_url ? resume(o, resume_url) : 1;
    if (rc == 1) {
        rc = new_order(o);
        if (rc == 0 && on_order != NULL)
            on_order(ud, o->url);
    }
    return rc;
}

static int proceed(run_t *o, tf_acme_issued_t *out)
{
    static const char *const pending[] = {"pending", NULL};
    const char *st = status_of(o->order);
    int rc = 0;
    if (strcmp(st, "pending") == 0) {
        rc = authorize(o);
        if (rc == 0)
            rc = order_wait(o, pending, "ready");
        st = status_of(o->order);
    }
    if (rc == 0 && strcmp(st, "ready") == 0)
        rc = finalize(o);
    else if (rc == 0 && strcmp(st, "processing") == 0)
        rc = order_wait(o, (const char *const[]){"processing", NULL}, "valid");
    else if (rc == 0 && strcmp(st, "valid") != 0)
        rc = order_failed(o);
    if (rc == 0)
        rc = download(o, out);
    return rc;
}

void tf_acme_issued_dispose(tf_acme_issued_t *i)
{
    if (i == NULL)
        return;
    if (i->bundle != NULL)
        tf_acme_free_secret(i->bundle, i->bundle_len);
    free(i->order_url);
    memset(i, 0, sizeof *i);
}

int tf_acme_client_issue(tf_acme_client_t *c, const char *host, const char *resume_url,
                         const char *renewing, void (*on_order)(void *ud, const char *url),
                         void *ud, tf_acme_issued_t *out, tf_acme_problem_t *prob)
{
    memset(out, 0, sizeof *out);
    memset(prob, 0, sizeof *prob);
    if (host == NULL || !tf_acme__host_ok(host) || c->answers == NULL) {
        tf_acme__problem_set(prob, 0, "acme: cannot order %s: %s", host ? host : "(null)",
                             c->answers ? "not a lower-case DNS name" : "no answers table");
        return TF_EINVAL;
    }
    run_t o = {.c = c, .host = host, .renewing = renewing, .prob = prob};
    /* Orders are weeks apart: the directory is read afresh for each. */
    json_decref(c->dir);
    c->dir = NULL;
    int rc = tf_acme__account(c, prob);
    if (rc == 0)
        rc = start(&o, resume_url, on_order, ud);
    if (rc == 0)
        rc = proceed(&o, out);
    if (rc == 0) {
        out->order_url = o.url;
        o.url = NULL;
        tf_acme_problem_dispose(prob);
    } else {
        tf_acme_issued_dispose(out);
        out->order_url = NULL;
    }
    /* The key is no longer needed once the bundle holds it, nor once the
     * order cannot be resumed with it. */
    if (o.key_path[0] != '\0' && (rc == 0 || strcmp(status_of(o.order), "invalid") == 0))
        unlink(o.key_path);
    tf_acme_key_free(o.key);
    json_decref(o.order);
    free(o.url);
    return rc;
}
