/* Loading a bundle: reading the files, walking their PEM blocks into a
 * draft, and running the checks. frozen.c turns the draft into the
 * immutable tf_cs_bundle_t.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certstore/certstore_internal.h"

static const struct {
    const char *slug;
    tf_cs_severity_t severity;
} diag_info[] = {
#define TF_CS_DIAG_INFO(code, slug, sev) {slug, sev},
    TF_CS_DIAG_MAP(TF_CS_DIAG_INFO)
#undef TF_CS_DIAG_INFO
};

/* ---- draft helpers ------------------------------------------------------------ */

void tf_cs__diag(tf_cs__draft_t *d, tf_cs_diag_code_t code, int err, const char *fmt, ...)
{
    va_list ap;
    char *msg;
    int n;

    if (d->n_diags == d->cap_diags) {
        size_t cap = d->cap_diags ? d->cap_diags * 2 : 8;
        tf_cs__diag_t *p = realloc(d->diags, cap * sizeof *p);

        if (!p) {
            d->oom = true;
            return;
        }
        d->diags = p;
        d->cap_diags = cap;
    }
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!msg) {
        d->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    d->diags[d->n_diags++] = (tf_cs__diag_t){
        .severity = diag_info[code].severity,
        .code = code,
        .err = diag_info[code].severity == TF_CS_FATAL ? (err ? err : TF_ECERT) : 0,
        .message = msg,
    };
}

bool tf_cs__strlist_add(char ***list, size_t *n, const char *name, size_t len)
{
    char **p = realloc(*list, (*n + 1) * sizeof *p);
    char *s;

    if (!p)
        return false;
    *list = p;
    s = malloc(len + 1);
    if (!s)
        return false;
    memcpy(s, name, len);
    s[len] = '\0';
    p[(*n)++] = s;
    return true;
}

static void strlist_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void draft_dispose(tf_cs__draft_t *d)
{
    for (size_t i = 0; i < d->n_certs; i++)
        tf_cs__cert_dispose(&d->certs[i]);
    tf_cs__key_dispose(&d->key);
    strlist_free(d->names, d->n_names);
    strlist_free(d->bad_names, d->n_bad_names);
    for (size_t i = 0; i < d->n_diags; i++)
        free(d->diags[i].message);
    free(d->diags);
}

/* ---- PEM blocks ----------------------------------------------------------------- */

/* Length of the outer DER SEQUENCE: a TRUSTED CERTIFICATE carries OpenSSL's
 * trust settings after it, which must not go on the wire. */
static size_t der_seq_len(const unsigned char *p, size_t len)
{
    size_t n = 0, hdr = 2;

    if (len < 2 || p[0] != 0x30)
        return len;
    if (p[1] < 0x80) {
        n = p[1];
    } else {
        unsigned k = p[1] & 0x7f;

        if (k == 0 || k > 3 || len < 2 + k)
            return len;
        for (unsigned i = 0; i < k; i++)
            n = (n << 8) | p[2 + i];
        hdr += k;
    }
    return hdr + n <= len ? hdr + n : len;
}

static void malformed_block(tf_cs__draft_t *d, const char *file, const tf_cs__pem_block_t *blk,
                            const char *why)
{
    tf_cs__diag(d, TF_CS_D_MALFORMED, TF_ECERT,
                "%s: line %d: malformed %.*s block (%s): copy it again from its source; a "
                "block is '-----BEGIN %.*s-----', base64 lines, '-----END %.*s-----'",
                file, blk->line, (int)blk->label_len, blk->label, why, (int)blk->label_len,
                blk->label, (int)blk->label_len, blk->label);
}

static void add_cert(tf_cs__draft_t *d, const tf_cs__pem_block_t *blk)
{
    tf_cs__cert_t *c;
    unsigned char *der;
    size_t len;
    int rc;

    if (d->n_certs == TF_CS__MAX_CERTS) {
        if (d->bad_certs++ == 0)
            tf_cs__diag(d, TF_CS_D_TOO_BIG, TF_ETOOBIG,
                        "%s: more than %d certificates: a bundle is one certificate and its "
                        "chain; split the file",
                        d->name, TF_CS__MAX_CERTS);
        return;
    }
    rc = tf_cs__pem_decode(blk, &der, &len);
    if (rc != 0) {
        d->oom |= rc == TF_ENOMEM;
        d->bad_certs++;
        if (rc == TF_ECERT)
            malformed_block(d, d->name, blk, "invalid base64");
        return;
    }
    if (blk->trusted)
        len = der_seq_len(der, len);
    c = &d->certs[d->n_certs];
    c->line = blk->line;
    c->index = (int)(d->n_certs + (size_t)d->bad_certs);
    if (tf_cs__cert_parse(d, c, der, len) == 0) {
        d->n_certs++;
    } else {
        tf_cs__cert_dispose(c);
        d->bad_certs++;
    }
}

static void add_key(tf_cs__draft_t *d, const tf_cs__pem_block_t *blk, bool sibling)
{
    unsigned char *der;
    size_t len;
    int rc;

    if (d->n_keys < TF_CS__MAX_KEYS)
        d->key_lines[d->n_keys] = blk->line;
    if (d->n_keys++ > 0)
        return; /* reported as "more than one key" once all blocks are read */
    if (blk->kind == TF_CS__PEM_KEY_ENCRYPTED) {
        tf_cs__diag(d, TF_CS_D_KEY_ENCRYPTED, TF_EKEYENCRYPTED,
                    "%s: line %d: the private key is encrypted (%.*s%s): tlsfront cannot ask "
                    "for a passphrase; decrypt it with `openssl pkey -in key.pem -out "
                    "key.dec.pem` (or `openssl rsa -in key.pem -out key.dec.pem` for an RSA "
                    "key), then use the decrypted key and keep the file mode 0600",
                    d->key_name, blk->line, (int)blk->label_len, blk->label,
                    blk->label_len == 21 ? "" : ", Proc-Type: 4,ENCRYPTED");
        return;
    }
    if (blk->kind == TF_CS__PEM_KEY_OTHER) {
        tf_cs__diag(d, TF_CS_D_UNSUPPORTED_KEY, TF_EUNSUPPORTED,
                    "%s: line %d: unsupported private key type (%.*s): tlsfront serves RSA "
                    "(2048 bits or more) and ECDSA (P-256, P-384) certificates; get a certificate "
                    "for such a key (a PEM key starts with BEGIN PRIVATE KEY, BEGIN RSA PRIVATE "
                    "KEY or BEGIN EC PRIVATE KEY)",
                    d->key_name, blk->line, (int)blk->label_len, blk->label);
        return;
    }
    rc = tf_cs__pem_decode(blk, &der, &len);
    if (rc != 0) {
        d->oom |= rc == TF_ENOMEM;
        if (rc == TF_ECERT)
            malformed_block(d, d->key_name, blk, "invalid base64");
        return;
    }
    d->key.kind = blk->kind;
    d->key.line = blk->line;
    d->key.from_sibling = sibling;
    if (tf_cs__key_parse(d, &d->key, der, len) != 0)
        tf_cs__key_dispose(&d->key);
}

static void no_pem(tf_cs__draft_t *d, const char *file, const char *data, size_t len)
{
    const char *what = len == 0 ? "the file is empty"
                       : (unsigned char)data[0] == 0x30
                           ? "it looks like binary DER or PKCS#12 (.pfx/.p12), not PEM"
                           : "no '-----BEGIN ...-----' block found";

    d->no_pem = true;
    tf_cs__diag(d, TF_CS_D_MALFORMED, TF_ECERT,
                "%s: not a PEM bundle: %s; convert it: `openssl x509 -inform DER -in cert.der "
                "-out cert.pem` for a DER certificate, `openssl pkcs12 -in file.pfx -nodes -out "
                "bundle.pem` for PKCS#12",
                file, what);
}

static void process(tf_cs__draft_t *d, const char *file, const char *data, size_t len, bool sibling)
{
    size_t pos = 0, blocks = 0;
    int line = 1;
    tf_cs__pem_block_t blk;

    while (!d->oom && tf_cs__pem_next(data, len, &pos, &line, &blk)) {
        blocks++;
        if (blk.unterminated) {
            tf_cs__diag(d, TF_CS_D_MALFORMED, TF_ECERT,
                        "%s: line %d: '-----BEGIN %.*s-----' has no matching END line: the "
                        "file is truncated or was pasted incompletely; copy it again",
                        file, blk.line, (int)blk.label_len, blk.label);
            /* Not counted as a key: the error above already rejects the
             * file, and a complete key after it must not read as a second. */
            d->bad_certs += blk.kind == TF_CS__PEM_CERT;
            continue;
        }
        if (blk.kind == TF_CS__PEM_CERT && !sibling) {
            add_cert(d, &blk);
        } else if (blk.kind >= TF_CS__PEM_KEY_PKCS1 && blk.kind <= TF_CS__PEM_KEY_OTHER) {
            add_key(d, &blk, sibling);
        } else if (blk.kind != TF_CS__PEM_EC_PARAMS) {
            tf_cs__diag(d, TF_CS_D_IGNORED_BLOCK, 0,
                        "%s: line %d: %.*s block ignored: a bundle holds certificates and one "
                        "private key",
                        file, blk.line, (int)blk.label_len, blk.label);
        }
    }
    if (blocks == 0)
        no_pem(d, file, data, len);
}

/* ---- whole-bundle checks ----------------------------------------------------------- */

static void check_keys(tf_cs__draft_t *d)
{
    char lines[128];
    size_t n = 0;

    if (d->n_keys <= 1)
        return;
    lines[0] = '\0';
    for (int i = 0; i < d->n_keys && i < TF_CS__MAX_KEYS && n < sizeof lines; i++)
        n += (size_t)snprintf(lines + n, sizeof lines - n, "%s%d", i ? ", " : "", d->key_lines[i]);
    tf_cs__diag(d, TF_CS_D_MULTIPLE_KEYS, TF_EKEYMULTIPLE,
                "%s: %d private keys (lines %s): a bundle holds exactly one, the certificate's; "
                "keep it and delete the others (find it by comparing `openssl x509 -noout "
                "-pubkey -in leaf.pem | sha256sum` with `openssl pkey -pubout -in key.pem | "
                "sha256sum`)",
                d->key_name, d->n_keys, lines);
    /* Which key is the right one is for the operator to say. */
    tf_cs__key_dispose(&d->key);
}

static void check_presence(tf_cs__draft_t *d, const char *sibling_hint)
{
    if (d->no_pem)
        return;
    if (d->n_certs == 0 && d->bad_certs == 0)
        tf_cs__diag(d, TF_CS_D_NO_CERT, TF_ENOCERT,
                    "%s: no certificate: the file must hold the server certificate "
                    "('-----BEGIN CERTIFICATE-----'), then its intermediates, then the key",
                    d->name);
    if (d->n_keys == 0 && (d->n_certs > 0 || d->bad_certs > 0))
        tf_cs__diag(d, TF_CS_D_NO_KEY, TF_ENOKEY,
                    "%s: no private key: append the certificate's key to the file (cat leaf.crt "
                    "intermediate.crt leaf.key > bundle.pem)%s%s",
                    d->name, sibling_hint ? " or put it in " : "",
                    sibling_hint ? sibling_hint : "");
}

static void check_mode(tf_cs__draft_t *d, const char *file, long mode)
{
    if (mode < 0 || (mode & 077) == 0 || d->n_keys == 0)
        return;
    tf_cs__diag(d, TF_CS_D_KEY_FILE_MODE, 0,
                "%s: the private key file is readable by group or others (mode %04lo): "
                "restrict it with chmod 600 %s",
                file, (unsigned long)mode & 07777, file);
}

/* ---- loading ------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *data;
    size_t len;
    long mode; /* st_mode permission bits, -1 when not from a file */
} input_t;

static int load(const input_t *in, const input_t *key_in, const char *sibling_hint, int sibling_err,
                const tf_cs_load_opts_t *opts, tf_cs_bundle_t **out)
{
    static const tf_cs_load_opts_t no_opts;
    tf_cs__draft_t *d = calloc(1, sizeof *d);
    const input_t *key_src = in;
    int rc;

    if (!d)
        return TF_ENOMEM;
    d->opts = opts ? opts : &no_opts;
    d->now = d->opts->now ? d->opts->now : time(NULL);
    d->name = d->key_name = in->name;
    d->leaf = -1;
    if (in->data)
        process(d, in->name, in->data, in->len, false);
    if (d->n_keys == 0 && key_in && key_in->data) {
        key_src = key_in;
        d->key_name = key_in->name;
        process(d, key_in->name, key_in->data, key_in->len, true);
    }
    if (sibling_err != 0 && d->n_keys == 0)
        tf_cs__diag(d, TF_CS_D_UNREADABLE, sibling_err,
                    "%s: cannot read the key file: %s: check that tlsfront's user may read it",
                    sibling_hint, tf_strerror(sibling_err));
    if (!d->oom && in->data) {
        check_keys(d);
        check_presence(d, sibling_hint);
        tf_cs__chain_build(d);
        tf_cs__validate(d);
        check_mode(d, key_src->name, key_src->mode);
    }
    rc = d->oom ? TF_ENOMEM : tf_cs__freeze(d, d->opts->intern, out);
    draft_dispose(d);
    free(d);
    return rc ? rc : tf_cs_bundle_error(*out);
}

int tf_cs_bundle_load_mem(const char *name, const void *data, size_t len, const void *key,
                          size_t keylen, const tf_cs_load_opts_t *opts, tf_cs_bundle_t **out)
{
    input_t in = {name ? name : "(bundle)", data ? data : "", len, -1};
    input_t key_in = {in.name, key, keylen, -1};

    if (!out)
        return TF_EINVAL;
    *out = NULL;
    return load(&in, key ? &key_in : NULL, NULL, 0, opts, out);
}

/* Reads a whole regular file. Returns 0, -errno, or TF_ETOOBIG. */
static int read_file(const char *path, char **data, size_t *len, long *mode)
{
    struct stat st;
    ssize_t got = 0;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

    *data = NULL;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EISDIR;
        goto out;
    }
    if (st.st_size > TF_CS__MAX_FILE) {
        rc = TF_ETOOBIG;
        goto out;
    }
    *mode = (long)(st.st_mode & 07777);
    *data = malloc((size_t)st.st_size + 1);
    if (!*data) {
        rc = TF_ENOMEM;
        goto out;
    }
    while (n < (size_t)st.st_size && (got = read(fd, *data + n, (size_t)st.st_size - n)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            goto out;
        }
        n += (size_t)got;
    }
    *len = n;
out:
    close(fd);
    if (rc != 0) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

char *tf_cs__sibling_key_path(const char *path)
{
    size_t n = strlen(path);
    char *s;

    if (n < 5 || (strcasecmp(path + n - 4, ".pem") != 0 && strcasecmp(path + n - 4, ".crt") != 0 &&
                  strcasecmp(path + n - 4, ".cer") != 0))
        return NULL;
    s = malloc(n + 1);
    if (s) {
        memcpy(s, path, n - 4);
        memcpy(s + n - 4, ".key", 5);
    }
    return s;
}

/* A bundle for a file that could not be read: only the one diagnostic. */
static int unreadable(const char *path, int err, const tf_cs_load_opts_t *opts,
                      tf_cs_bundle_t **out)
{
    tf_cs__draft_t *d = calloc(1, sizeof *d);
    int rc;

    if (!d)
        return TF_ENOMEM;
    d->name = d->key_name = path;
    d->leaf = -1;
    if (err == TF_ETOOBIG)
        tf_cs__diag(d, TF_CS_D_TOO_BIG, TF_ETOOBIG,
                    "%s: larger than %d bytes: not a certificate bundle; check the path", path,
                    TF_CS__MAX_FILE);
    else
        tf_cs__diag(d, TF_CS_D_UNREADABLE, err,
                    "%s: cannot read: %s: check the path and that tlsfront's user may read it",
                    path, tf_strerror(err));
    rc = d->oom ? TF_ENOMEM : tf_cs__freeze(d, opts ? opts->intern : NULL, out);
    draft_dispose(d);
    free(d);
    return rc ? rc : tf_cs_bundle_error(*out);
}

int tf_cs_bundle_load_file(const char *path, const tf_cs_load_opts_t *opts, tf_cs_bundle_t **out)
{
    input_t in = {path, NULL, 0, -1}, key_in = {NULL, NULL, 0, -1};
    char *data = NULL, *key = NULL, *sib = NULL;
    int rc, sib_err = 0;

    if (!out || !path)
        return TF_EINVAL;
    *out = NULL;
    rc = read_file(path, &data, &in.len, &in.mode);
    if (rc == TF_ENOMEM)
        return rc;
    if (rc != 0)
        return unreadable(path, rc, opts, out);
    in.data = data;
    sib = tf_cs__sibling_key_path(path);
    if (sib && !tf_cs__pem_has_key(data, in.len)) {
        key_in.name = sib;
        rc = read_file(sib, &key, &key_in.len, &key_in.mode);
        if (rc == TF_ENOMEM)
            goto out;
        /* An absent sibling is the common case: "no private key" says what to do. */
        sib_err = rc == -ENOENT ? 0 : rc;
        key_in.data = key;
    }
    rc = load(&in, &key_in, sib, sib_err, opts, out);
out:
    if (key) {
        tf_cs__wipe(key, key_in.len);
        free(key);
    }
    tf_cs__wipe(data, in.len);
    free(data);
    free(sib);
    return rc;
}

const char *tf_cs_diag_slug(tf_cs_diag_code_t code)
{
    return (unsigned)code < TF_CS_D_COUNT ? diag_info[code].slug : "unknown";
}
