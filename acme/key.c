/* Account and certificate keys: generated with wolfCrypt, written as the PEM
 * forms certstore reads (SEC1 "EC PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY"),
 * the account key kept once in storage, and the EAB MAC key file. */
#include "acme/acme_internal.h"

#include "common/err.h"
#include "common/file.h"

#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX 16384 /* a PEM RSA-4096 key is about 3.3 KB */
#define DER_MAX 4096
#define EAB_FILE_MAX 4096

__attribute__((format(printf, 3, 4))) static void say(char *err, size_t len, const char *fmt, ...)
{
    if (len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

void tf_acme_free_secret(void *p, size_t len)
{
    if (p == NULL)
        return;
    explicit_bzero(p, len);
    free(p);
}

int tf_acme__rng_init(WC_RNG *rng)
{
    return wc_InitRng(rng) == 0 ? 0 : TF_ECRYPTO;
}

static tf_acme_key_t *key_alloc(tf_acme_key_type_t type)
{
    tf_acme_key_t *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->type = type;
    int rc = type == TF_ACME_KEY_EC ? wc_ecc_init(&k->u.ec) : wc_InitRsaKey(&k->u.rsa, NULL);
    if (rc != 0) {
        free(k);
        return NULL;
    }
    return k;
}

void tf_acme_key_free(tf_acme_key_t *key)
{
    if (key == NULL)
        return;
    if (key->type == TF_ACME_KEY_EC)
        wc_ecc_free(&key->u.ec);
    else
        wc_FreeRsaKey(&key->u.rsa);
    tf_acme_free_secret(key, sizeof *key);
}

tf_acme_key_type_t tf_acme_key_type(const tf_acme_key_t *key)
{
    return key->type;
}

int tf_acme_key_generate(tf_acme_key_type_t type, tf_acme_key_t **out)
{
    WC_RNG rng;
    tf_acme_key_t *k = key_alloc(type);
    if (k == NULL)
        return TF_ENOMEM;
    if (tf_acme__rng_init(&rng) != 0) {
        tf_acme_key_free(k);
        return TF_ECRYPTO;
    }
    int rc = type == TF_ACME_KEY_EC
                 ? wc_ecc_make_key_ex(&rng, TF_ACME__P256_LEN, &k->u.ec, ECC_SECP256R1)
                 : wc_MakeRsaKey(&k->u.rsa, TF_ACME__RSA_BITS, WC_RSA_EXPONENT, &rng);
    wc_FreeRng(&rng);
    if (rc != 0) {
        tf_acme_key_free(k);
        return TF_ECRYPTO;
    }
    *out = k;
    return 0;
}

int tf_acme_key_to_der(tf_acme_key_t *key, unsigned char **der, size_t *len)
{
    unsigned char *buf = malloc(DER_MAX);
    if (buf == NULL)
        return TF_ENOMEM;
    int n = key->type == TF_ACME_KEY_EC ? wc_EccKeyToDer(&key->u.ec, buf, DER_MAX)
                                        : wc_RsaKeyToDer(&key->u.rsa, buf, DER_MAX);
    if (n <= 0) {
        tf_acme_free_secret(buf, DER_MAX);
        return TF_ECRYPTO;
    }
    *der = buf;
    *len = (size_t)n;
    return 0;
}

int tf_acme_key_to_pem(tf_acme_key_t *key, char **pem, size_t *len)
{
    unsigned char *der = NULL;
    size_t dlen = 0;
    int rc = tf_acme_key_to_der(key, &der, &dlen);
    if (rc != 0)
        return rc;
    /* 64 characters a line for every 48 bytes, plus the BEGIN and END lines. */
    size_t cap = (dlen + 47) / 48 * 65 + 128;
    char *buf = malloc(cap);
    int n = buf == NULL
                ? 0
                : wc_DerToPem(der, (word32)dlen, (byte *)buf, (word32)cap - 1,
                              key->type == TF_ACME_KEY_EC ? ECC_PRIVATEKEY_TYPE : PRIVATEKEY_TYPE);
    tf_acme_free_secret(der, DER_MAX);
    if (n <= 0) {
        tf_acme_free_secret(buf, cap);
        return buf == NULL ? TF_ENOMEM : TF_ECRYPTO;
    }
    buf[n] = '\0';
    *pem = buf;
    *len = (size_t)n;
    return 0;
}

/* An EC key must be P-256 (ES256) and hold its public point, which the JWK
 * needs; SEC1 files may leave the point out. */
static int ec_finish(ecc_key *ec)
{
    if (ec->dp == NULL || ec->dp->id != ECC_SECP256R1)
        return TF_EINVAL;
    if (ec->type == ECC_PRIVATEKEY_ONLY) {
        WC_RNG rng;
        if (tf_acme__rng_init(&rng) != 0)
            return TF_ECRYPTO;
        int rc = wc_ecc_make_pub_ex(ec, NULL, &rng);
        wc_FreeRng(&rng);
        if (rc != 0)
            return TF_EINVAL;
        ec->type = ECC_PRIVATEKEY;
    }
    return wc_ecc_check_key(ec) == 0 ? 0 : TF_EINVAL;
}

static int rsa_finish(RsaKey *rsa)
{
    int bits = wc_RsaEncryptSize(rsa) * 8;
    return bits >= TF_ACME__RSA_MIN_BITS && bits <= TF_ACME__RSA_MAX_BITS ? 0 : TF_EINVAL;
}

/* Decodes a traditional (SEC1, PKCS#1) or PKCS#8 private key, DER. */
static int key_from_der(unsigned char *der, size_t len, tf_acme_key_t **out)
{
    word32 start = 0;
    /* PKCS#8 wraps the traditional form: skip to it (an error means it is
     * not PKCS#8, and the whole input is tried as is). */
    if (wc_GetPkcs8TraditionalOffset(der, &start, (word32)len) < 0)
        start = 0;
    for (int t = TF_ACME_KEY_EC; t <= TF_ACME_KEY_RSA; t++) {
        tf_acme_key_t *k = key_alloc((tf_acme_key_type_t)t);
        if (k == NULL)
            return TF_ENOMEM;
        word32 idx = start;
        int rc = t == TF_ACME_KEY_EC ? wc_EccPrivateKeyDecode(der, &idx, &k->u.ec, (word32)len)
                                     : wc_RsaPrivateKeyDecode(der, &idx, &k->u.rsa, (word32)len);
        if (rc == 0)
            rc = t == TF_ACME_KEY_EC ? ec_finish(&k->u.ec) : rsa_finish(&k->u.rsa);
        if (rc == 0) {
            *out = k;
            return 0;
        }
        tf_acme_key_free(k);
    }
    return TF_EINVAL;
}

int tf_acme_key_from_pem(const char *pem, size_t len, tf_acme_key_t **out)
{
    unsigned char *der = malloc(DER_MAX);
    if (der == NULL)
        return TF_ENOMEM;
    int n = len > KEY_FILE_MAX
                ? -1
                : wc_KeyPemToDer((const unsigned char *)pem, (int)len, der, DER_MAX, NULL);
    int rc = n > 0 ? key_from_der(der, (size_t)n, out) : TF_EINVAL;
    tf_acme_free_secret(der, DER_MAX);
    return rc;
}

/* ---- files ------------------------------------------------------------- */

/* Reads a small regular file into BUF (CAP bytes, NUL added); -EFBIG when it
 * does not fit. Symbolic links are followed, as for every path the
 * configuration names. */
static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
    size_t n = 0;
    while (rc == 0 && n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : 0;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (rc == 0 && n == cap)
        rc = -EFBIG;
    if (rc != 0)
        return rc;
    buf[n] = '\0';
    *len = n;
    return 0;
}

/* Why read_small() failed, for a message. */
static const char *read_error(int rc)
{
    return rc == -EINVAL ? "not a regular file" : rc == -EFBIG ? "too large" : tf_strerror(rc);
}

static int load_key_file(const char *path, tf_acme_key_t **out, char *err, size_t errlen)
{
    char *buf = malloc(KEY_FILE_MAX + 1);
    size_t n = 0;
    if (buf == NULL)
        return TF_ENOMEM;
    int rc = read_small(path, buf, KEY_FILE_MAX + 1, &n);
    if (rc == 0)
        rc = tf_acme_key_from_pem(buf, n, out);
    tf_acme_free_secret(buf, KEY_FILE_MAX + 1);
    if (rc == TF_EINVAL)
        say(err, errlen,
            "%s: not a P-256 EC or 2048-4096-bit RSA private key in PEM; move it away to have "
            "a new account key made (a new ACME account)",
            path);
    else if (rc != 0 && rc != -ENOENT)
        say(err, errlen, "%s: cannot read the account key: %s", path, read_error(rc));
    return rc;
}

/* Creates PATH and its missing parents, each mode 0700. */
static int make_dirs(const char *path, char *err, size_t errlen)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof p)
        return -ENAMETOOLONG;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            int rc = -errno;
            say(err, errlen, "%s: cannot create the ACME storage directory: %s", p,
                strerror(errno));
            return rc;
        }
        p[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        say(err, errlen, "%s: not a directory; acme.storage must name a directory", path);
        return -ENOTDIR;
    }
    return 0;
}

/* All of BUF, then fsync. */
static int write_synced(int fd, const char *buf, size_t len)
{
    int rc = tf_write_all(fd, buf, len);
    return rc != 0 ? rc : fsync(fd) == 0 ? 0 : -errno;
}

/* Writes PEM to a private temporary file in DIR and links it to PATH:
 * link() fails with EEXIST when another process made the key first, and
 * readers never see a partial file. */
static int publish_key(const char *dir, const char *path, const char *pem, size_t len, char *err,
                       size_t errlen)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/.account.key.XXXXXX", dir) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        int rc = -errno;
        say(err, errlen, "%s: cannot create the account key: %s", dir, strerror(errno));
        return rc;
    }
    int rc = fchmod(fd, 0600) == 0 ? write_synced(fd, pem, len) : -errno;
    close(fd);
    if (rc == 0 && link(tmp, path) != 0)
        rc = -errno;
    unlink(tmp);
    if (rc != 0 && rc != -EEXIST)
        say(err, errlen, "%s: cannot write the account key: %s", path, tf_strerror(rc));
    return rc;
}

static int create_account_key(const char *dir, const char *path, tf_acme_key_t **out, char *err,
                              size_t errlen)
{
    tf_acme_key_t *k = NULL;
    char *pem = NULL;
    size_t len = 0;
    int rc = tf_acme_key_generate(TF_ACME_KEY_EC, &k);
    if (rc == 0)
        rc = tf_acme_key_to_pem(k, &pem, &len);
    if (rc == 0)
        rc = publish_key(dir, path, pem, len, err, errlen);
    tf_acme_free_secret(pem, len);
    if (rc != 0) {
        tf_acme_key_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

int tf_acme_account_key(const char *storage, tf_acme_key_t **out, bool *created, char *err,
                        size_t errlen)
{
    char path[PATH_MAX];
    bool made = false;
    say(err, errlen, "%s", "");
    if (snprintf(path, sizeof path, "%s/account.key", storage) >= (int)sizeof path)
        return -ENAMETOOLONG;
    int rc = load_key_file(path, out, err, errlen);
    if (rc == -ENOENT) {
        rc = make_dirs(storage, err, errlen);
        if (rc == 0)
            rc = create_account_key(storage, path, out, err, errlen);
        made = rc == 0;
        if (rc == -EEXIST) /* another process was first: use its key */
            rc = load_key_file(path, out, err, errlen);
    }
    if (created != NULL)
        *created = made;
    return rc;
}

/* ---- the EAB MAC key ---------------------------------------------------- */

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int tf_acme_eab_key_read(const char *path, unsigned char *key, size_t *len, char *err,
                         size_t errlen)
{
    char buf[EAB_FILE_MAX + 1];
    size_t n = 0, start = 0;
    int rc = read_small(path, buf, sizeof buf, &n);
    if (rc != 0) {
        say(err, errlen, "%s: cannot read acme.eab.hmac_key_file: %s", path,
            rc == -EFBIG ? "larger than 4 KiB" : read_error(rc));
        return rc == -EFBIG ? TF_EINVAL : rc;
    }
    while (start < n && space(buf[start]))
        start++;
    while (n > start && (space(buf[n - 1]) || buf[n - 1] == '='))
        n--;
    rc = n == start ? TF_EINVAL
                    : tf_acme_b64url_decode(buf + start, n - start, key, TF_ACME_EAB_KEY_MAX, len);
    explicit_bzero(buf, sizeof buf);
    if (n == start)
        say(err, errlen, "%s: the EAB key is empty; write the MAC key your CA gave into it", path);
    else if (rc == TF_ETOOBIG)
        say(err, errlen, "%s: the EAB key is longer than %d bytes; write only the MAC key", path,
            TF_ACME_EAB_KEY_MAX);
    else if (rc != 0)
        say(err, errlen,
            "%s: the EAB key is not base64url (letters, digits, '-' and '_' on one line); write "
            "the MAC key exactly as your CA gave it",
            path);
    return rc == TF_ETOOBIG ? TF_EINVAL : rc;
}
