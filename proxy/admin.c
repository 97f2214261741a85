/* See admin.h. One request per connection: read the head (at most
 * TF_ADMIN_MAX_HEAD bytes), check the token, read the body (at most
 * TF_ADMIN_MAX_BODY), answer, close. A connection waiting for a reload stays
 * open until the reload's callback answers it. */
#include "proxy/admin.h"

#include "certstore/certstore.h"
#include "common/err.h"
#include "proxy/http.h"
#include "proxy/json.h"
#include "proxy/log.h"
#include "proxy/proxy_internal.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_MAX 1024
#define NAME_MAX_LEN 128

typedef struct admin_conn admin_conn_t;

struct tf_admin {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    tf_reload_t *reload;
    tf_metrics_worker_t *const *metrics;
    unsigned nworkers;
    tf_cs_trust_t *trust; /* for validating uploads as the store would */
    char token[TOKEN_MAX];
    size_t token_len; /* 0: no token required */
    bool deny_all;    /* a configured token could not be read: nothing is allowed */
    bool loopback;    /* admin.listen is a loopback address */
    bool pending;     /* a connection waits to be taken (cap or memory) */
    admin_conn_t *conns;
    unsigned handles; /* the listener + every connection */
    bool closing;
};

struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    tf_admin_t *admin;
    admin_conn_t *prev, *next;
    tf_http_parser_t parser;
    tf_http_request_t req;
    char *buf; /* head, then body */
    size_t len, cap;
    size_t head_len, body_len; /* known once the head is parsed */
    bool head_done;
    bool waiting; /* for a reload */
    bool answered;
    uint8_t handles;
    char method[16];
    char target[256];
    char *out;   /* the response being written */
    char *extra; /* a PUT/DELETE's own JSON, merged with the reload's */
};

static void conn_close(admin_conn_t *c);

/* ---- responses ----------------------------------------------------------- */

static const struct {
    int status;
    const char *text;
} status_texts[] = {
    {200, "OK"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {422, "Unprocessable Content"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
};

static const char *status_text(int status)
{
    for (size_t i = 0; i < sizeof status_texts / sizeof status_texts[0]; i++) {
        if (status_texts[i].status == status)
            return status_texts[i].text;
    }
    return "Error";
}

static void conn_on_written(uv_write_t *req, int status)
{
    admin_conn_t *c = req->data;
    conn_close(c);
}

/* Sends the whole response and closes the connection after it. `headers`
 * holds extra header lines, each ending in CRLF. */
static void respond(admin_conn_t *c, int status, const char *type, const char *headers,
                    const char *body, size_t len)
{
    if (c->answered)
        return;
    c->answered = true;
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    if (f == NULL) {
        conn_close(c);
        return;
    }
    fprintf(f,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sCache-Control: "
            "no-store\r\nConnection: close\r\n\r\n",
            status, status_text(status), type, len, headers ? headers : "");
    if (strcmp(c->method, "HEAD") != 0)
        fwrite(body, 1, len, f);
    if (fclose(f) != 0) {
        free(out);
        conn_close(c);
        return;
    }
    c->out = out;
    uv_buf_t b = uv_buf_init(out, (unsigned)outlen);
    c->wreq.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_written) != 0)
        conn_close(c);
}

static void respond_text(admin_conn_t *c, int status, const char *headers, const char *text)
{
    respond(c, status, "text/plain; charset=utf-8", headers, text, strlen(text));
}

/* A JSON body written by fn into a memory stream. */
static void respond_json(admin_conn_t *c, int status, void (*fn)(FILE *, void *), void *arg)
{
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (f == NULL) {
        respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    fn(f, arg);
    fputc('\n', f);
    if (fclose(f) != 0) {
        free(body);
        respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    respond(c, status, "application/json", NULL, body, len);
    free(body);
}

/* ---- /certs -------------------------------------------------------------- */

static void format_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (t == 0 || gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
}

static void json_diags(FILE *f, const char *key, const tf_cs_bundle_t *b, tf_cs_severity_t sev)
{
    tf_json_key(f, key);
    fputc('[', f);
    bool first = true;
    for (size_t i = 0; b != NULL && i < tf_cs_bundle_diag_count(b); i++) {
        const tf_cs_diag_t *d = tf_cs_bundle_diag_at(b, i);
        if (d->severity != sev)
            continue;
        fputs(first ? "{" : ",{", f);
        first = false;
        tf_json_key(f, "code");
        tf_json_str(f, tf_cs_diag_slug(d->code));
        fputc(',', f);
        tf_json_key(f, "message");
        tf_json_str(f, d->message);
        fputc('}', f);
    }
    fputc(']', f);
}

/* The description of a bundle: never its key material (type and bits only). */
static void json_bundle_fields(FILE *f, const tf_cs_bundle_t *b)
{
    char nb[32], na[32];
    format_time(tf_cs_bundle_not_before(b), nb, sizeof nb);
    format_time(tf_cs_bundle_not_after(b), na, sizeof na);
    bool has = tf_cs_bundle_chain_len(b) > 0;
    fputs("\"names\":[", f);
    for (size_t i = 0; i < tf_cs_bundle_name_count(b); i++) {
        if (i)
            fputc(',', f);
        tf_json_str(f, tf_cs_bundle_name_at(b, i));
    }
    fputs("],\"subject\":", f);
    tf_json_str(f, has ? tf_cs_bundle_subject(b) : NULL);
    fputs(",\"issuer\":", f);
    tf_json_str(f, has ? tf_cs_bundle_issuer(b) : NULL);
    fputs(",\"serial\":", f);
    tf_json_str(f, has ? tf_cs_bundle_serial(b) : NULL);
    fputs(",\"not_before\":", f);
    tf_json_str(f, has ? nb : NULL);
    fputs(",\"not_after\":", f);
    tf_json_str(f, has ? na : NULL);
    if (has)
        fprintf(f, ",\"days_left\":%ld", tf_cs_bundle_days_left(b, time(NULL)));
    else
        fputs(",\"days_left\":null", f);
    tf_cs_key_type_t kt = tf_cs_bundle_key_type(b);
    fputs(",\"key\":{\"type\":", f);
    tf_json_str(f, kt == TF_CS_KEY_RSA ? "RSA" : kt == TF_CS_KEY_EC ? "ECDSA" : NULL);
    fprintf(f, ",\"bits\":%d}", tf_cs_bundle_key_bits(b));
}

static void json_entry(FILE *f, const tf_cs_entry_t *e)
{
    const tf_cs_bundle_t *served = tf_cs_entry_served(e);
    const tf_cs_bundle_t *failed = tf_cs_entry_failed(e);
    const tf_cs_bundle_t *shown = served != NULL ? served : failed;
    fputc('{', f);
    tf_json_key(f, "file");
    tf_json_str(f, tf_cs_entry_path(e));
    fputc(',', f);
    tf_json_key(f, "status");
    /* "kept": the file now fails, its last good version is still served. */
    tf_json_str(f, served == NULL   ? "ERROR"
                   : failed != NULL ? "kept"
                                    : tf_cs_status_name(tf_cs_bundle_status(served)));
    fputc(',', f);
    if (shown != NULL) {
        json_bundle_fields(f, shown);
        fputc(',', f);
    }
    json_diags(f, "warnings", served, TF_CS_WARNING);
    fputc(',', f);
    json_diags(f, "errors", failed, TF_CS_FATAL);
    fputc('}', f);
}

static void certs_json(FILE *f, void *arg)
{
    const tf_cs_snapshot_t *snap = arg;
    fputc('[', f);
    for (size_t i = 0; i < tf_cs_snapshot_entry_count(snap); i++) {
        if (i)
            fputc(',', f);
        json_entry(f, tf_cs_snapshot_entry_at(snap, i));
    }
    fputc(']', f);
}

/* ---- /metrics ------------------------------------------------------------ */

static void get_metrics(admin_conn_t *c)
{
    tf_admin_t *a = c->admin;
    tf_metrics_main_t m = {0};
    tf_reload_metrics(a->reload, &m);
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (f == NULL) {
        respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    tf_metrics_render(f, a->metrics, a->nworkers, &m);
    if (fclose(f) != 0) {
        free(body);
        respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, body, len);
    free(body);
}

/* ---- /reload ------------------------------------------------------------- */

static void json_lines(FILE *f, const char *key, const char *text)
{
    tf_json_key(f, key);
    fputc('[', f);
    bool first = true;
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char *line = strndup(p, n);
        if (line != NULL && n > 0) {
            fputs(first ? "" : ",", f);
            first = false;
            tf_json_str(f, line);
        }
        free(line);
        p += n + (nl != NULL);
    }
    fputc(']', f);
}

typedef struct {
    const tf_reload_result_t *res;
    const char *extra; /* `"key":value,` pairs of the request's own, or NULL */
} reload_json_t;

static void reload_json(FILE *f, void *arg)
{
    const reload_json_t *rj = arg;
    const tf_reload_result_t *res = rj->res;
    fputc('{', f);
    if (rj->extra != NULL)
        fputs(rj->extra, f);
    fprintf(f, "\"ok\":%s,", res->rc == 0 ? "true" : "false");
    tf_json_key(f, "error");
    tf_json_str(f, res->error);
    fprintf(f, ",\"certificates\":{\"added\":%zu,\"replaced\":%zu,\"removed\":%zu,\"failed\":%zu,",
            res->added, res->replaced, res->removed, res->failed);
    json_lines(f, "failures", res->failures);
    fputc(',', f);
    json_lines(f, "warnings", res->warnings);
    fprintf(f, "},\"config\":{\"requested\":%s,\"applied\":%s,",
            res->conf_requested ? "true" : "false", res->conf_applied ? "true" : "false");
    json_lines(f, "errors", res->conf_errors);
    fputc(',', f);
    json_lines(f, "needs_restart", res->restart);
    fputs("}}", f);
}

static void on_reloaded(void *arg, const tf_reload_result_t *res)
{
    admin_conn_t *c = arg;
    c->waiting = false;
    reload_json_t rj = {.res = res, .extra = c->extra};
    bool failed = res->rc != 0 || (res->conf_requested && !res->conf_applied);
    respond_json(c, failed ? 500 : 200, reload_json, &rj);
    if (!c->answered)
        conn_close(c);
}

static void start_reload(admin_conn_t *c, bool with_conf, const char *why)
{
    c->waiting = true;
    tf_reload_request(c->admin->reload, with_conf, why, on_reloaded, c);
}

/* ---- PUT and DELETE /certs/NAME ----------------------------------------- */

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN || name[0] == '.')
        return false;
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* The first directory in tls.certs: where uploads go. */
static const char *cert_dir(const tf_admin_t *a)
{
    const tf_conf_tls_t *tls = tf_conf_tls(tf_reload_conf(a->reload));
    for (size_t i = 0; i < tls->certs.count; i++) {
        struct stat st;
        if (stat(tls->certs.items[i], &st) == 0 && S_ISDIR(st.st_mode))
            return tls->certs.items[i];
    }
    return NULL;
}

static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *data = malloc(max + 1);
    size_t n = data != NULL ? fread(data, 1, max, f) : 0;
    fclose(f);
    if (data != NULL)
        data[n] = '\0';
    *len = n;
    return data;
}

/* The private key of the existing NAME: its NAME.key, else the key blocks
 * of NAME.pem (kept in memory only to validate and write the new bundle). */
static char *existing_key(const char *dir, const char *name, size_t *len, bool *sibling)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    char *key = read_file(path, TF_ADMIN_MAX_BODY, len);
    *sibling = key != NULL;
    if (key != NULL)
        return key;
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    char *pem = read_file(path, TF_ADMIN_MAX_BODY, len);
    if (pem == NULL)
        return NULL;
    char *begin = strstr(pem, "-----BEGIN ");
    while (begin != NULL && strncmp(strchr(begin, ' ') + 1, "CERTIFICATE-----", 16) == 0)
        begin = strstr(begin + 1, "-----BEGIN ");
    /* The BEGIN line's "PRIVATE KEY-----", then the END line's (any line
     * ending: CRLF bundles are valid, SPEC §4.1). */
    char *end = begin != NULL ? strstr(begin, "PRIVATE KEY-----") : NULL;
    end = end != NULL ? strstr(end + 1, "PRIVATE KEY-----") : NULL;
    if (end == NULL) {
        explicit_bzero(pem, *len);
        free(pem);
        return NULL;
    }
    end += strlen("PRIVATE KEY-----");
    size_t total = *len;
    *len = (size_t)(end - begin);
    memmove(pem, begin, *len);
    pem[(*len)++] = '\n';
    pem[*len] = '\0';
    /* The key's first copy, further in, must not outlive the call. */
    explicit_bzero(pem + *len + 1, total > *len ? total - *len : 0);
    return pem;
}

static void wipe_free(char *p, size_t len)
{
    if (p != NULL)
        explicit_bzero(p, len);
    free(p);
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Temporary dotfile in the same directory (the store and the watcher skip
 * dotfiles), mode 0600, fsync, rename over NAME.pem, fsync the directory:
 * the store sees the old bundle or the new one, never half of one. */
static int write_atomic(const char *dir, const char *name, const char *a, size_t alen,
                        const char *b, size_t blen)
{
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof tmp, "%s/.%s.pem.XXXXXX", dir, name);
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -errno;
    int rc = fchmod(fd, 0600) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = write_all(fd, a, alen);
    if (rc == 0 && blen > 0)
        rc = write_all(fd, "\n", 1);
    if (rc == 0)
        rc = write_all(fd, b, blen);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    if (rc == 0)
        rc = fsync_dir(dir);
    return rc;
}

typedef struct {
    const tf_cs_bundle_t *b;
    const char *file;
} upload_json_t;

static void upload_errors_json(FILE *f, void *arg)
{
    const upload_json_t *u = arg;
    fputc('{', f);
    tf_json_key(f, "file");
    tf_json_str(f, u->file);
    fputc(',', f);
    json_diags(f, "errors", u->b, TF_CS_FATAL);
    fputc(',', f);
    json_diags(f, "warnings", u->b, TF_CS_WARNING);
    fputc('}', f);
}

/* The upload's own part of the answer: `"file":...,"upload":{...},`. */
static char *upload_extra(const char *path, const tf_cs_bundle_t *b)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return NULL;
    tf_json_key(f, "file");
    tf_json_str(f, path);
    fputs(",\"upload\":{\"status\":", f);
    tf_json_str(f, tf_cs_status_name(tf_cs_bundle_status(b)));
    fputc(',', f);
    json_bundle_fields(f, b);
    fputc(',', f);
    json_diags(f, "warnings", b, TF_CS_WARNING);
    fputs("},", f);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static bool contains(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(hay + i, needle, n) == 0)
            return true;
    }
    return false;
}

static void put_cert(admin_conn_t *c, const char *name)
{
    tf_admin_t *a = c->admin;
    const char *dir = cert_dir(a);
    if (dir == NULL) {
        respond_text(c, 409, NULL,
                     "no directory in tls.certs: uploads go into the first certificate "
                     "directory; add one\n");
        return;
    }
    const char *body = c->buf + c->head_len;
    size_t keylen = 0;
    bool sibling = false;
    char *key = existing_key(dir, name, &keylen, &sibling);
    tf_cs_load_opts_t opts = {.trust = a->trust};
    tf_cs_bundle_t *b = NULL;
    char file[4200];
    snprintf(file, sizeof file, "%s/%s.pem", dir, name);
    int rc = tf_cs_bundle_load_mem(file, body, c->body_len, key, keylen, &opts, &b);
    if (b == NULL) {
        wipe_free(key, keylen);
        respond_text(c, 500, NULL, "out of memory\n");
        return;
    }
    if (rc != 0 || tf_cs_bundle_status(b) == TF_CS_ERROR) {
        wipe_free(key, keylen);
        upload_json_t u = {.b = b, .file = file};
        respond_json(c, 422, upload_errors_json, &u);
        tf_cs_bundle_unref(b);
        return;
    }
    /* A certificate without its key takes the existing key: leaf + chain +
     * that key in one file, unless the key lives in NAME.key already. */
    bool body_has_key = contains(body, c->body_len, "PRIVATE KEY-----");
    bool append_key = !body_has_key && !sibling && key != NULL;
    int wrc =
        write_atomic(dir, name, body, c->body_len, append_key ? key : "", append_key ? keylen : 0);
    wipe_free(key, keylen);
    if (wrc != 0) {
        tf_cs_bundle_unref(b);
        TF_LOG(TF_LOG_ERROR, "PUT /certs/%s: cannot write %s: %s", name, file, strerror(-wrc));
        respond_text(c, 500, NULL, "cannot write the bundle; see the log\n");
        return;
    }
    TF_LOG(TF_LOG_INFO, "PUT /certs/%s: wrote %s (serial %s)", name, file, tf_cs_bundle_serial(b));
    c->extra = upload_extra(file, b);
    tf_cs_bundle_unref(b);
    start_reload(c, false, "PUT /certs");
}

/* Whether path is tls.default_cert (the proxy cannot start without it). */
static bool is_default_cert(const tf_admin_t *a, const char *path)
{
    const char *def = tf_conf_tls(tf_reload_conf(a->reload))->default_cert;
    char rp1[PATH_MAX], rp2[PATH_MAX];
    return def != NULL && realpath(path, rp1) != NULL && realpath(def, rp2) != NULL &&
           strcmp(rp1, rp2) == 0;
}

static void delete_cert(admin_conn_t *c, const char *name)
{
    const char *dir = cert_dir(c->admin);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.pem", dir ? dir : ".", name);
    if (dir != NULL && is_default_cert(c->admin, path)) {
        respond_text(c, 409, NULL,
                     "this is tls.default_cert, which tlsfront cannot start without: replace it "
                     "with PUT instead\n");
        return;
    }
    if (dir == NULL || unlink(path) != 0) {
        int err = dir == NULL ? ENOENT : errno;
        if (err != ENOENT)
            TF_LOG(TF_LOG_ERROR, "DELETE /certs/%s: %s: %s", name, path, strerror(err));
        respond_text(c, err == ENOENT ? 404 : 500, NULL,
                     err == ENOENT ? "no such certificate\n"
                                   : "cannot remove the file; see the log\n");
        return;
    }
    char key[4200];
    snprintf(key, sizeof key, "%s/%s.key", dir, name);
    if (unlink(key) != 0 && errno != ENOENT)
        TF_LOG(TF_LOG_WARN, "DELETE /certs/%s: %s: %s", name, key, strerror(errno));
    if (fsync_dir(dir) != 0)
        TF_LOG(TF_LOG_WARN, "DELETE /certs/%s: cannot sync %s", name, dir);
    TF_LOG(TF_LOG_INFO, "DELETE /certs/%s: removed %s", name, path);
    char *extra = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&extra, &len);
    if (f != NULL) {
        tf_json_key(f, "deleted");
        tf_json_str(f, path);
        fputc(',', f);
        if (fclose(f) != 0) {
            free(extra);
            extra = NULL;
        }
    }
    c->extra = extra;
    start_reload(c, false, "DELETE /certs");
}

/* ---- routing --------------------------------------------------------------- */

static bool is(const admin_conn_t *c, const char *method)
{
    return strcmp(c->method, method) == 0;
}

static void route_certs_name(admin_conn_t *c, const char *name)
{
    if (!name_ok(name)) {
        respond_text(c, 404, NULL,
                     "certificate names are 1-128 of A-Z a-z 0-9 . _ - and do not start with "
                     "a dot\n");
        return;
    }
    if (is(c, "PUT"))
        put_cert(c, name);
    else if (is(c, "DELETE"))
        delete_cert(c, name);
    else
        respond_text(c, 405, "Allow: PUT, DELETE\r\n", "method not allowed\n");
}

static void route(admin_conn_t *c)
{
    char *q = strchr(c->target, '?');
    if (q != NULL)
        *q = '\0';
    const char *t = c->target;
    if (strcmp(t, "/healthz") == 0) {
        if (is(c, "GET") || is(c, "HEAD"))
            respond_text(c, 200, NULL, "ok\n");
        else
            respond_text(c, 405, "Allow: GET\r\n", "method not allowed\n");
    } else if (strcmp(t, "/metrics") == 0) {
        if (is(c, "GET"))
            get_metrics(c);
        else
            respond_text(c, 405, "Allow: GET\r\n", "method not allowed\n");
    } else if (strcmp(t, "/certs") == 0) {
        if (is(c, "GET"))
            respond_json(c, 200, certs_json, tf_reload_snapshot(c->admin->reload));
        else
            respond_text(c, 405, "Allow: GET\r\n", "method not allowed\n");
    } else if (strcmp(t, "/reload") == 0) {
        if (is(c, "POST"))
            start_reload(c, true, "POST /reload");
        else
            respond_text(c, 405, "Allow: POST\r\n", "method not allowed\n");
    } else if (strncmp(t, "/certs/", 7) == 0) {
        route_certs_name(c, t + 7);
    } else {
        respond_text(c, 404, NULL, "not found\n");
    }
}

/* ---- reading a request --------------------------------------------------- */

/* Constant time in the token's bytes: a wrong guess learns nothing from how
 * long the comparison took. */
static bool token_ok(const tf_admin_t *a, const tf_http_request_t *req)
{
    if (a->deny_all)
        return false;
    if (a->token_len == 0)
        return true;
    const char *v = NULL;
    size_t vlen = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const tf_http_header_t *h = &req->headers[i];
        if (h->name_len == 13 && strncasecmp(h->name, "authorization", 13) == 0) {
            v = h->value;
            vlen = h->value_len;
        }
    }
    if (v == NULL || vlen < 7 || strncasecmp(v, "Bearer ", 7) != 0)
        return false;
    v += 7;
    vlen -= 7;
    unsigned char diff = vlen != a->token_len;
    for (size_t i = 0; i < a->token_len; i++)
        diff |= (unsigned char)(a->token[i] ^ (i < vlen ? v[i] : 0));
    return diff == 0;
}

static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* The head is complete: check it and learn how much body follows. */
static void on_head(admin_conn_t *c)
{
    tf_http_request_t *req = &c->req;
    c->head_done = true;
    c->head_len = req->head_len;
    copy_field(c->method, sizeof c->method, req->method, req->method_len);
    if (req->target_len >= sizeof c->target) {
        respond_text(c, 404, NULL, "not found\n");
        return;
    }
    copy_field(c->target, sizeof c->target, req->target, req->target_len);
    if (!token_ok(c->admin, req)) {
        TF_LOG(TF_LOG_WARN, "admin: %s request without a valid bearer token refused", c->method);
        respond_text(c, 401, "WWW-Authenticate: Bearer realm=\"tlsfront\"\r\n",
                     "a valid bearer token is required\n");
        return;
    }
    if (req->body == TF_HTTP_BODY_CHUNKED) {
        respond_text(c, 411, NULL, "send a Content-Length\n");
        return;
    }
    if (req->body == TF_HTTP_BODY_LENGTH && req->content_length > TF_ADMIN_MAX_BODY) {
        respond_text(c, 413, NULL, "bundles are at most 1 MiB\n");
        return;
    }
    c->body_len = req->body == TF_HTTP_BODY_LENGTH ? (size_t)req->content_length : 0;
}

static void conn_progress(admin_conn_t *c)
{
    if (!c->head_done) {
        int st = tf_http_parse_head(&c->parser, c->buf, c->len, TF_ADMIN_MAX_HEAD, &c->req);
        if (st == TF_HTTP_MORE)
            return;
        if (st != 0) {
            respond_text(c, st, NULL, st == 431 ? "header too large\n" : "bad request\n");
            return;
        }
        on_head(c);
        if (c->answered)
            return;
    }
    if (c->len >= c->head_len + c->body_len) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        route(c);
    }
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    admin_conn_t *c = h->data;
    size_t limit = TF_ADMIN_MAX_HEAD + TF_ADMIN_MAX_BODY;
    if (c->cap - c->len < 4096 && c->cap < limit) {
        size_t cap = c->cap * 2 < limit ? c->cap * 2 : limit;
        /* Not realloc: an upload may hold a private key, and the old
         * buffer is wiped before it goes back to the allocator. */
        char *p = malloc(cap + 1);
        if (p != NULL) {
            memcpy(p, c->buf, c->len);
            explicit_bzero(c->buf, c->cap + 1);
            free(c->buf);
            c->buf = p;
            c->cap = cap;
        }
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    admin_conn_t *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    conn_progress(c);
    /* A full buffer is only too much once it can grow no more (the head's
     * own limit is the parser's: 431). */
    if (!c->answered && !c->waiting && c->len >= c->cap &&
        c->cap >= TF_ADMIN_MAX_HEAD + TF_ADMIN_MAX_BODY)
        respond_text(c, c->head_done ? 413 : 431, NULL, "request too large\n");
}

static void conn_on_timeout(uv_timer_t *t)
{
    admin_conn_t *c = t->data;
    if (!c->waiting)
        conn_close(c);
}

/* ---- connections ---------------------------------------------------------- */

static void admin_maybe_free(tf_admin_t *a)
{
    if (a->closing && a->handles == 0) {
        tf_cs_trust_free(a->trust);
        explicit_bzero(a->token, sizeof a->token);
        free(a);
    }
}

static void admin_on_connection(uv_stream_t *server, int status);

static void conn_on_closed(uv_handle_t *h)
{
    admin_conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    tf_admin_t *a = c->admin;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    /* An upload's body may hold a private key. */
    explicit_bzero(c->buf, c->cap + 1);
    free(c->buf);
    free(c->out);
    free(c->extra);
    free(c);
    a->handles--;
    /* libuv holds an accepted connection it could not hand over and stops
     * watching the listener until it is taken: take it now. */
    if (a->pending && !a->closing) {
        a->pending = false;
        admin_on_connection((uv_stream_t *)&a->tcp, 0);
    }
    admin_maybe_free(a);
}

static void conn_close(admin_conn_t *c)
{
    if (c->waiting || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
    uv_close((uv_handle_t *)&c->timer, conn_on_closed);
}

/* Admin connections at once: each holds a descriptor, and descriptors are
 * shared with the data path. More wait in the listen backlog. */
#define TF_ADMIN_MAX_CONNS 32u

static void admin_on_connection(uv_stream_t *server, int status)
{
    tf_admin_t *a = server->data;
    if (status < 0 || a->closing)
        return;
    if (a->handles > TF_ADMIN_MAX_CONNS) {
        a->pending = true; /* taken when a connection closes */
        return;
    }
    admin_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL || (c->buf = malloc(4097)) == NULL) {
        free(c);
        a->pending = true;
        return;
    }
    c->cap = 4096;
    c->admin = a;
    uv_tcp_init(a->loop, &c->tcp);
    uv_timer_init(a->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    a->handles++;
    c->next = a->conns;
    if (a->conns != NULL)
        a->conns->prev = c;
    a->conns = c;
    tf_http_parser_init(&c->parser);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, conn_on_timeout, TF_ADMIN_TIMEOUT_MS, 0);
}

/* ---- life --------------------------------------------------------------- */

static int read_token(const char *path, char *out, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char buf[TOKEN_MAX + 2];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n == 0 || n > TOKEN_MAX - 1) {
        explicit_bzero(buf, sizeof buf);
        return TF_EINVAL;
    }
    memcpy(out, buf, n);
    *len = n;
    explicit_bzero(buf, sizeof buf);
    return 0;
}

void tf_admin_reload_token(tf_admin_t *a, const tf_conf_t *conf)
{
    const char *path = tf_conf_admin(conf)->token_file;
    if (path == NULL) {
        if (a->token_len > 0)
            TF_LOG(TF_LOG_WARN, "admin: admin.token_file removed: no token required any more");
        a->token_len = 0;
        a->deny_all = false;
        if (!a->loopback) {
            /* Fail closed: an open admin API off loopback is anyone's. */
            TF_LOG(TF_LOG_ERROR,
                   "admin: admin.listen is not a loopback address and no "
                   "admin.token_file is set: every admin request is refused until one is");
            a->deny_all = true;
        }
        return;
    }
    char token[TOKEN_MAX];
    size_t len = 0;
    int rc = read_token(path, token, &len);
    if (rc != 0) {
        /* Fail closed: a configured token that cannot be read must not
         * leave the API open (start-up refuses the same configuration). */
        TF_LOG(TF_LOG_ERROR, "%s: cannot read the admin token (%s); %s", path,
               rc == TF_EINVAL ? "empty or too long" : strerror(-rc),
               a->token_len > 0 ? "the token in use stays"
                                : "every admin request is refused until it can be read");
        if (a->token_len == 0)
            a->deny_all = true;
        return;
    }
    memcpy(a->token, token, len);
    a->token_len = len;
    a->deny_all = false;
    explicit_bzero(token, sizeof token);
}

static int admin_bind(tf_admin_t *a, const tf_conf_addr_t *addr)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)addr->port);
    int rc = getaddrinfo(addr->host, port, &hints, &res);
    if (rc != 0) {
        TF_LOG(TF_LOG_ERROR, "%s: admin.listen: %s; use an IP address", addr->text,
               gai_strerror(rc));
        return TF_EINVAL;
    }
    const struct sockaddr *sa = res->ai_addr;
    a->loopback =
        sa->sa_family == AF_INET
            ? (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127
            : IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
    if (!a->loopback && a->token_len == 0) {
        freeaddrinfo(res);
        TF_LOG(TF_LOG_ERROR,
               "%s: admin.listen is not a loopback address: set admin.token_file, or listen on "
               "127.0.0.1 (anyone who reaches the admin API can replace certificates)",
               addr->text);
        return TF_EINVAL;
    }
    uv_tcp_init(a->loop, &a->tcp);
    a->tcp.data = a;
    a->handles = 1;
    rc = uv_tcp_bind(&a->tcp, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->tcp, 64, admin_on_connection);
    if (rc != 0)
        TF_LOG(TF_LOG_ERROR, "%s: admin.listen: cannot listen: %s", addr->text, uv_strerror(rc));
    else
        TF_LOG(TF_LOG_INFO, "admin API on http://%s", addr->text);
    return rc;
}

static void admin_on_listener_closed(uv_handle_t *h)
{
    tf_admin_t *a = h->data;
    a->handles--;
    admin_maybe_free(a);
}

int tf_admin_new(const tf_admin_opts_t *o, tf_admin_t **out)
{
    tf_admin_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return TF_ENOMEM;
    a->loop = o->loop;
    a->reload = o->reload;
    a->metrics = o->metrics;
    a->nworkers = o->nworkers;
    const tf_conf_admin_t *ac = tf_conf_admin(o->conf);
    int rc = 0;
    if (ac->token_file != NULL) {
        rc = read_token(ac->token_file, a->token, &a->token_len);
        if (rc != 0)
            TF_LOG(TF_LOG_ERROR,
                   "%s: cannot read admin.token_file: %s; write the token (one "
                   "line) into it",
                   ac->token_file, rc == TF_EINVAL ? "empty or too long" : strerror(-rc));
    }
    /* Uploads are judged as the store judges files; without the system
     * trust data only the missing-intermediate warning gets coarser. */
    if (rc == 0 && tf_cs_trust_load_system(&a->trust) != 0)
        a->trust = NULL;
    if (rc == 0)
        rc = admin_bind(a, &ac->listen);
    if (rc != 0) {
        if (a->handles > 0) {
            /* The listener handle was made: free once libuv is done with it. */
            a->closing = true;
            uv_close((uv_handle_t *)&a->tcp, admin_on_listener_closed);
        } else {
            tf_cs_trust_free(a->trust);
            free(a);
        }
        return rc;
    }
    *out = a;
    return 0;
}

void tf_admin_close(tf_admin_t *a)
{
    if (a->closing)
        return;
    a->closing = true;
    for (admin_conn_t *c = a->conns, *next; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
    }
    uv_close((uv_handle_t *)&a->tcp, admin_on_listener_closed);
}
