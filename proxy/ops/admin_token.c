/* admin.token_file (admin_internal.h): read on the thread pool when a
 * reload names it, checked by `tlsfront check`, applied when read; the token
 * in use stays until then. */
#include "proxy/ops/admin_internal.h"

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

/* Reads admin.token_file of CONF (set) as at start-up; on failure says why
 * in WHY, with where the configuration names the file when it cannot be
 * read at all. */
int tf_admin__token_load(const tf_conf_t *conf, char *out, size_t *len, char *why, size_t whylen)
{
    const char *path = tf_conf_admin(conf)->token_file;
    char where[TF_WHERE_MAX];
    int rc = read_token(path, out, len);
    if (rc != 0)
        snprintf(why, whylen,
                 "%s%s: cannot read admin.token_file: %s; write the token (one line) into it",
                 tf_where_is_errno(rc) ? tf_where(conf, "admin.token_file", 0, where) : "", path,
                 rc == TF_EINVAL ? "empty or too long" : strerror(-rc));
    return rc;
}

int tf_admin_check_token(const tf_conf_t *conf, char *why, size_t len)
{
    char token[TOKEN_MAX];
    size_t n = 0;
    int rc = tf_conf_admin(conf)->token_file != NULL
                 ? tf_admin__token_load(conf, token, &n, why, len)
                 : 0;
    explicit_bzero(token, sizeof token);
    return rc;
}

/* The result of reading the token file at `path` (rc, token, len); `where`
 * is the "FILE:LINE:COLUMN: " of admin.token_file, or "". */
static void token_apply(tf_admin_t *a, const char *where, const char *path, int rc,
                        const char *token, size_t len)
{
    if (rc != 0) {
        /* Fail closed: a configured token that cannot be read must not
         * leave the API open (start-up refuses the same configuration). */
        TF_LOG(TF_LOG_ERROR, "%s%s: cannot read the admin token (%s); %s",
               tf_where_is_errno(rc) ? where : "", path,
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
    /* Says when a new token takes effect (it is read off the loop). */
    TF_LOG(TF_LOG_INFO, "admin: token read from %s: in use", path);
}

/* A read of the token file on the thread pool; the admin API is freed only
 * once none is left. */
typedef struct {
    uv_work_t req;
    tf_admin_t *admin;
    uint64_t seq; /* a->token_seq when it was asked for */
    char *path;
    char where[TF_WHERE_MAX]; /* of admin.token_file, for an error */
    int rc;
    size_t len;
    char token[TOKEN_MAX];
} token_job_t;

static void token_work(uv_work_t *req)
{
    token_job_t *j = tf_container_of(req, token_job_t, req);
    j->rc = read_token(j->path, j->token, &j->len);
}

/* Only the latest configuration's read counts: an older one finishing late
 * must not bring back a token that was replaced meanwhile. */
static void token_done(uv_work_t *req, int status)
{
    token_job_t *j = tf_container_of(req, token_job_t, req);
    tf_admin_t *a = j->admin;
    a->jobs--;
    if (j->seq == a->token_seq && !a->closing)
        token_apply(a, j->where, j->path, status != 0 ? status : j->rc, j->token, j->len);
    explicit_bzero(j->token, sizeof j->token);
    free(j->path);
    free(j);
    tf_admin__maybe_free(a);
}

void tf_admin_reload_token(tf_admin_t *a, const tf_conf_t *conf)
{
    if (a->closing)
        return;
    const char *path = tf_conf_admin(conf)->token_file;
    a->token_seq++; /* a read still in flight is for an older configuration */
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
    /* The file may sit on a slow disk: the token in use stays until the
     * read is back. */
    token_job_t *j = calloc(1, sizeof *j);
    char *copy = strdup(path);
    int rc = j != NULL && copy != NULL ? 0 : -ENOMEM;
    if (rc == 0) {
        *j = (token_job_t){.admin = a, .seq = a->token_seq, .path = copy};
        tf_where(conf, "admin.token_file", 0, j->where);
        rc = uv_queue_work(a->loop, &j->req, token_work, token_done);
    }
    if (rc != 0) {
        token_apply(a, "", path, rc, NULL, 0);
        free(copy);
        free(j);
        return;
    }
    a->jobs++;
}
