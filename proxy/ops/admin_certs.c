/* See admin_certs.h. Runs on libuv's thread pool: nothing here touches a
 * loop or state shared with one. */
#include "proxy/ops/admin_certs.h"

#include "common/err.h"
#include "common/file.h"
#include "proxy/ops/admin.h"
#include "proxy/ops/json.h"
#include "proxy/obs/obs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NAME_MAX_LEN 128

/* ---- JSON ----------------------------------------------------------------- */

int tf_admin_json_bundle_fields(json_t *obj, const tf_cs_bundle_t *b)
{
    bool has = tf_cs_bundle_chain_len(b) > 0;
    int rc = json_object_set_new(
        obj, "names", tf_json_strings(b, tf_cs_bundle_name_count(b), tf_cs_bundle_name_at));
    rc |= json_object_set_new(obj, "subject", tf_json_text(has ? tf_cs_bundle_subject(b) : NULL));
    rc |= json_object_set_new(obj, "issuer", tf_json_text(has ? tf_cs_bundle_issuer(b) : NULL));
    rc |= json_object_set_new(obj, "serial", tf_json_text(has ? tf_cs_bundle_serial(b) : NULL));
    rc |= json_object_set_new(obj, "not_before",
                              has ? tf_json_time(tf_cs_bundle_not_before(b)) : json_null());
    rc |= json_object_set_new(obj, "not_after",
                              has ? tf_json_time(tf_cs_bundle_not_after(b)) : json_null());
    rc |= json_object_set_new(
        obj, "days_left", has ? json_integer(tf_cs_bundle_days_left(b, time(NULL))) : json_null());
    rc |= json_object_set_new(obj, "key", tf_json_key_info(b));
    return rc != 0 ? -1 : 0;
}

/* ---- PUT and DELETE /certs/NAME ----------------------------------------- */

bool tf_admin_cert_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN || name[0] == '.')
        return false;
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

const char *tf_admin_cert_dir(const tf_conf_t *conf)
{
    const tf_conf_tls_t *tls = tf_conf_tls(conf);
    for (size_t i = 0; i < tls->certs.count; i++) {
        struct stat st;
        if (stat(tls->certs.items[i], &st) == 0 && S_ISDIR(st.st_mode))
            return tls->certs.items[i];
    }
    return NULL;
}

int tf_admin_no_cert_dir(const tf_conf_t *conf, char *buf, size_t len)
{
    const tf_conf_tls_t *tls = tf_conf_tls(conf);
    for (size_t i = 0; i < tls->certs.count; i++) {
        struct stat st;
        if (stat(tls->certs.items[i], &st) == 0 || (errno != ENOENT && errno != ENOTDIR))
            continue;
        /* Configured but gone (deleted, an unmounted volume): the server's
         * state is wrong, not the request, and "no directory" would send
         * the operator to a configuration that is right. */
        snprintf(buf, len,
                 "tls.certs names %s, which does not exist: create that directory (uploads go "
                 "into the first directory of tls.certs; the certificates loaded from it are "
                 "still served from memory), then send the request again\n",
                 tls->certs.items[i]);
        return 500;
    }
    snprintf(buf, len, "%s", TF_ADMIN_NO_CERT_DIR);
    return 409;
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

/* The key blocks of NAME.pem (malloc'd, *len bytes), or NULL. */
static char *pem_key(const char *dir, const char *name, size_t *len)
{
    char path[4200];
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

/* The private key of the existing NAME, looked up as the store does
 * (certstore/bundle.c): the key blocks of NAME.pem, else NAME.key
 * (*sibling). So a NAME.key left behind by an older bundle is ignored once
 * NAME.pem carries its own key, as the store ignores it. Kept in memory
 * only to validate and write the new bundle. */
static char *existing_key(const char *dir, const char *name, size_t *len, bool *sibling)
{
    *sibling = false;
    char *key = pem_key(dir, name, len);
    if (key != NULL)
        return key;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    key = read_file(path, TF_ADMIN_MAX_BODY, len);
    *sibling = key != NULL;
    return key;
}

static void wipe_free(char *p, size_t len)
{
    if (p != NULL)
        explicit_bzero(p, len);
    free(p);
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
        rc = tf_write_all(fd, a, alen);
    if (rc == 0 && blen > 0)
        rc = tf_write_all(fd, "\n", 1);
    if (rc == 0)
        rc = tf_write_all(fd, b, blen);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    if (rc == 0)
        rc = tf_fsync_dir(dir);
    return rc;
}

/* The 422 answer. json_pack's "o" takes the reference it is given, and on
 * any failure (a NULL among them) releases every one. */
static json_t *upload_errors_json(const char *file, const tf_cs_bundle_t *b)
{
    return json_pack("{s:o,s:o,s:o}", "file", tf_json_text(file), "errors",
                     tf_json_diags(b, TF_CS_FATAL), "warnings", tf_json_diags(b, TF_CS_WARNING));
}

/* The upload's own members of the answer: `"file":...,"upload":{...}`. */
static json_t *upload_extra(const char *path, const tf_cs_bundle_t *b)
{
    json_t *up =
        json_pack("{s:o}", "status", tf_json_text(tf_cs_status_name(tf_cs_bundle_status(b))));
    int rc = tf_admin_json_bundle_fields(up, b);
    rc |= json_object_set_new(up, "warnings", tf_json_diags(b, TF_CS_WARNING));
    return json_pack("{s:o,s:o}", "file", tf_json_text(path), "upload", tf_json_checked(up, rc));
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

static void job_fail(tf_admin_cert_job_t *j, int status, const char *text)
{
    j->status = status;
    j->text = text;
}

/* Validates the upload as the store would, then writes it: 409 without a
 * certificate directory (500 when the one configured is missing), 422 with
 * every reason when it is not usable, 500 when it cannot be written; status
 * 0 once it is durable. */
static void put_work(tf_admin_cert_job_t *j)
{
    const char *dir = tf_admin_cert_dir(j->conf);
    if (dir == NULL) {
        int status = tf_admin_no_cert_dir(j->conf, j->why, sizeof j->why);
        job_fail(j, status, j->why);
        return;
    }
    j->dir = dir;
    size_t keylen = 0;
    bool sibling = false;
    char *key = existing_key(dir, j->name, &keylen, &sibling);
    tf_cs_load_opts_t opts = {.trust = j->trust};
    tf_cs_bundle_t *b = NULL;
    char *file = j->file;
    snprintf(j->file, sizeof j->file, "%s/%s.pem", dir, j->name);
    int rc = tf_cs_bundle_load_mem(file, j->body, j->body_len, key, keylen, &opts, &b);
    if (b == NULL) {
        wipe_free(key, keylen);
        job_fail(j, 500, "out of memory\n");
        return;
    }
    if (rc != 0 || tf_cs_bundle_status(b) == TF_CS_ERROR) {
        wipe_free(key, keylen);
        j->json = upload_errors_json(file, b);
        if (j->json != NULL)
            j->status = 422;
        else
            job_fail(j, 500, "out of memory\n");
        tf_cs_bundle_unref(b);
        return;
    }
    /* A certificate without its key takes the existing key: leaf + chain +
     * that key in one file, unless the key lives in NAME.key already. */
    bool body_has_key = contains(j->body, j->body_len, "PRIVATE KEY-----");
    bool append_key = !body_has_key && !sibling && key != NULL;
    int wrc = write_atomic(dir, j->name, j->body, j->body_len, append_key ? key : "",
                           append_key ? keylen : 0);
    wipe_free(key, keylen);
    if (wrc != 0) {
        tf_cs_bundle_unref(b);
        TF_LOG(TF_LOG_ERROR, "PUT /certs/%s: cannot write %s: %s", j->name, file, strerror(-wrc));
        job_fail(j, 500, "cannot write the bundle; see the log\n");
        return;
    }
    TF_LOG(TF_LOG_INFO, "PUT /certs/%s: wrote %s (serial %s)", j->name, file,
           tf_cs_bundle_serial(b));
    j->extra = upload_extra(file, b);
    tf_cs_bundle_unref(b);
}

/* Whether path is tls.default_cert (the proxy cannot start without it). */
static bool is_default_cert(const tf_conf_t *conf, const char *path)
{
    const char *def = tf_conf_tls(conf)->default_cert;
    char rp1[PATH_MAX], rp2[PATH_MAX];
    return def != NULL && realpath(path, rp1) != NULL && realpath(def, rp2) != NULL &&
           strcmp(rp1, rp2) == 0;
}

/* Removes NAME.pem (then NAME.key) and syncs the directory: 409 for
 * tls.default_cert, 404 when absent, 500 when it cannot be removed or the
 * directory cannot be synced. */
static void delete_work(tf_admin_cert_job_t *j)
{
    const char *dir = tf_admin_cert_dir(j->conf);
    j->dir = dir;
    char *path = j->file;
    snprintf(j->file, sizeof j->file, "%s/%s.pem", dir ? dir : ".", j->name);
    if (dir != NULL && is_default_cert(j->conf, path)) {
        job_fail(j, 409,
                 "this is tls.default_cert, which tlsfront cannot start without: replace it "
                 "with PUT instead\n");
        return;
    }
    if (dir == NULL || unlink(path) != 0) {
        int err = dir == NULL ? ENOENT : errno;
        if (err != ENOENT)
            TF_LOG(TF_LOG_ERROR, "DELETE /certs/%s: %s: %s", j->name, path, strerror(err));
        job_fail(j, err == ENOENT ? 404 : 500,
                 err == ENOENT ? "no such certificate\n" : "cannot remove the file; see the log\n");
        return;
    }
    char key[4200];
    snprintf(key, sizeof key, "%s/%s.key", dir, j->name);
    if (unlink(key) != 0 && errno != ENOENT)
        TF_LOG(TF_LOG_WARN, "DELETE /certs/%s: %s: %s", j->name, key, strerror(errno));
    int rc = tf_fsync_dir(dir);
    if (rc != 0) {
        /* Not durable: a crash may bring the file back. Answered as a PUT
         * whose write cannot be made durable. */
        TF_LOG(TF_LOG_ERROR, "DELETE /certs/%s: removed %s but cannot sync %s: %s", j->name, path,
               dir, strerror(-rc));
        job_fail(j, 500, "removed, but the directory cannot be synced; see the log\n");
        return;
    }
    TF_LOG(TF_LOG_INFO, "DELETE /certs/%s: removed %s", j->name, path);
    j->extra = json_pack("{s:o}", "deleted", tf_json_text(path));
}

void tf_admin_cert_job_run(tf_admin_cert_job_t *j)
{
    if (j->put)
        put_work(j);
    else
        delete_work(j);
}
