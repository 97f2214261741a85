/* What `tlsfront check` asks of the acme keys' paths before the client ever
 * runs: a storage directory it can create or write, and a CA file wolfSSL
 * loads. (The EAB key file is read by tf_acme_eab_key_read(), key.c.) */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <wolfssl/ssl.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((format(printf, 3, 4))) static void say(char *err, size_t len, const char *fmt, ...)
{
    if (len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* A missing storage directory is created by the client (mode 0700, with
 * its missing parents): the nearest ancestor that exists must let it. */
static int check_creatable(const char *path, char *err, size_t errlen)
{
    char p[PATH_MAX];
    struct stat st;
    if (strlen(path) >= sizeof p)
        return -ENAMETOOLONG;
    strcpy(p, path);
    for (;;) {
        char *slash = strrchr(p, '/');
        if (slash == NULL)
            return -ENOENT;
        slash[slash == p] = '\0'; /* "/a" leaves "/" */
        if (stat(p, &st) == 0)
            break;
        if (errno != ENOENT && errno != ENOTDIR) {
            int rc = -errno;
            say(err, errlen, "%s: cannot be created: %s: %s", path, p, strerror(errno));
            return rc;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        say(err, errlen, "%s: cannot be created: %s is not a directory; fix acme.storage", path, p);
        return -ENOTDIR;
    }
    if (access(p, W_OK | X_OK) != 0) {
        int rc = -errno;
        say(err, errlen,
            "%s: cannot be created: %s is not writable here (%s); create the directory (mode "
            "0700) for the user tlsfront runs as, or point acme.storage elsewhere",
            path, p, strerror(errno));
        return rc;
    }
    return 0;
}

int tf_acme_check_storage(const char *path, bool *warn, char *err, size_t errlen)
{
    struct stat st;
    say(err, errlen, "%s", "");
    if (warn != NULL)
        *warn = false;
    if (stat(path, &st) != 0) {
        int rc = -errno;
        /* ENOTDIR: a file where a parent should be, which check_creatable
         * finds and names. */
        if (rc == -ENOENT || rc == -ENOTDIR)
            return check_creatable(path, err, errlen);
        say(err, errlen, "%s: cannot be used: %s; fix acme.storage", path, strerror(-rc));
        return rc;
    }
    if (!S_ISDIR(st.st_mode)) {
        say(err, errlen,
            "%s: not a directory; acme.storage names the directory the ACME client keeps its "
            "account key and order state in",
            path);
        return -ENOTDIR;
    }
    if (access(path, R_OK | W_OK | X_OK) != 0) {
        int rc = -errno;
        say(err, errlen,
            "%s: not writable here (%s); make it writable (mode 0700) by the user tlsfront runs "
            "as",
            path, strerror(errno));
        return rc;
    }
    if ((st.st_mode & 077) && warn != NULL) {
        *warn = true;
        say(err, errlen,
            "%s: group or others may read the ACME storage directory (mode %03o); chmod 700 "
            "it",
            path, (unsigned)(st.st_mode & 0777));
    }
    return 0;
}

int tf_acme_check_ca_file(const char *path, char *err, size_t errlen)
{
    say(err, errlen, "%s", "");
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int rc = -errno;
        say(err, errlen, "%s: cannot read: %s; check acme.ca_file", path, strerror(errno));
        return rc;
    }
    fclose(f);
    WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();
    if (cm == NULL)
        return TF_ENOMEM;
    int ok = wolfSSL_CertManagerLoadCA(cm, path, NULL);
    wolfSSL_CertManagerFree(cm);
    if (ok != WOLFSSL_SUCCESS) {
        say(err, errlen,
            "%s: holds no CA certificate wolfSSL can load (%d); write the PEM certificate "
            "(-----BEGIN CERTIFICATE-----) of the CA that signs the ACME server's TLS "
            "certificate",
            path, ok);
        return TF_EINVAL;
    }
    return 0;
}
