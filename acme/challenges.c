/* The challenge answers the workers serve while an order is pending. See
 * acme.h. A handful of entries at a time (one per name being validated), so
 * a list scanned under a read-write lock is all it takes: the ACME thread
 * writes a few times per order, the loops read once per validation request. */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct entry entry_t;

struct entry {
    entry_t *next;
    char *name;     /* the token (http-01) or the host (tls-alpn-01) */
    uint8_t *value; /* key authorization (NUL-terminated) or certificate DER */
    size_t value_len;
    uint8_t *key; /* tls-alpn-01: the private key DER */
    size_t key_len;
};

struct tf_acme_challenges {
    pthread_rwlock_t lock;
    entry_t *http01;
    entry_t *alpn01;
};

static void entry_free(entry_t *e)
{
    if (e == NULL)
        return;
    free(e->name);
    free(e->value);
    if (e->key != NULL) {
        explicit_bzero(e->key, e->key_len);
        free(e->key);
    }
    free(e);
}

static void list_free(entry_t *e)
{
    while (e != NULL) {
        entry_t *next = e->next;
        entry_free(e);
        e = next;
    }
}

int tf_acme_challenges_new(tf_acme_challenges_t **out)
{
    *out = NULL;
    tf_acme_challenges_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return TF_ENOMEM;
    if (pthread_rwlock_init(&t->lock, NULL) != 0) {
        free(t);
        return TF_ENOMEM;
    }
    *out = t;
    return 0;
}

void tf_acme_challenges_free(tf_acme_challenges_t *t)
{
    if (t == NULL)
        return;
    list_free(t->http01);
    list_free(t->alpn01);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

static void *dup_bytes(const void *p, size_t n, bool nul)
{
    uint8_t *d = malloc(n + (nul ? 1 : 0));
    if (d == NULL)
        return NULL;
    memcpy(d, p, n);
    if (nul)
        d[n] = '\0';
    return d;
}

/* A new entry, built outside the lock so the loops never wait on malloc. */
static entry_t *entry_new(const char *name, const void *value, size_t value_len, bool nul,
                          const void *key, size_t key_len)
{
    entry_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->name = strdup(name);
    e->value = dup_bytes(value, value_len, nul);
    e->value_len = value_len;
    if (key != NULL) {
        e->key = dup_bytes(key, key_len, false);
        e->key_len = key_len;
    }
    if (e->name == NULL || e->value == NULL || (key != NULL && e->key == NULL)) {
        entry_free(e);
        return NULL;
    }
    return e;
}

static bool name_eq(const char *a, const char *b, size_t blen, bool fold)
{
    if (strlen(a) != blen)
        return false;
    return fold ? strncasecmp(a, b, blen) == 0 : memcmp(a, b, blen) == 0;
}

/* Unlinks the entry named name (blen bytes) from *head and returns it. */
static entry_t *unlink_name(entry_t **head, const char *name, size_t blen, bool fold)
{
    for (entry_t **p = head; *p != NULL; p = &(*p)->next) {
        if (name_eq((*p)->name, name, blen, fold)) {
            entry_t *e = *p;
            *p = e->next;
            return e;
        }
    }
    return NULL;
}

static void put_entry(tf_acme_challenges_t *t, entry_t **head, entry_t *e, bool fold)
{
    pthread_rwlock_wrlock(&t->lock);
    entry_t *old = unlink_name(head, e->name, strlen(e->name), fold);
    e->next = *head;
    *head = e;
    pthread_rwlock_unlock(&t->lock);
    entry_free(old);
}

static void remove_entry(tf_acme_challenges_t *t, entry_t **head, const char *name, bool fold)
{
    pthread_rwlock_wrlock(&t->lock);
    entry_t *old = unlink_name(head, name, strlen(name), fold);
    pthread_rwlock_unlock(&t->lock);
    entry_free(old);
}

int tf_acme_http01_put(tf_acme_challenges_t *t, const char *token, const char *key_auth)
{
    if (token == NULL || key_auth == NULL || *token == '\0' || *key_auth == '\0')
        return TF_EINVAL;
    entry_t *e = entry_new(token, key_auth, strlen(key_auth), true, NULL, 0);
    if (e == NULL)
        return TF_ENOMEM;
    put_entry(t, &t->http01, e, false);
    return 0;
}

void tf_acme_http01_remove(tf_acme_challenges_t *t, const char *token)
{
    remove_entry(t, &t->http01, token, false);
}

/* Finds name under the read lock and copies what the caller asked for. */
static int get_entry(tf_acme_challenges_t *t, entry_t *const *head, const char *name, size_t len,
                     bool fold, uint8_t **value, size_t *value_len, uint8_t **key, size_t *key_len)
{
    int rc = TF_ENOTFOUND;
    pthread_rwlock_rdlock(&t->lock);
    for (const entry_t *e = *head; e != NULL; e = e->next) {
        if (!name_eq(e->name, name, len, fold))
            continue;
        *value = dup_bytes(e->value, e->value_len, true);
        *value_len = e->value_len;
        if (key != NULL) {
            *key = dup_bytes(e->key, e->key_len, false);
            *key_len = e->key_len;
        }
        rc = *value == NULL || (key != NULL && *key == NULL) ? TF_ENOMEM : 0;
        break;
    }
    pthread_rwlock_unlock(&t->lock);
    if (rc == TF_ENOMEM) {
        free(*value);
        *value = NULL;
        if (key != NULL) {
            free(*key);
            *key = NULL;
        }
    }
    return rc;
}

int tf_acme_http01_get(tf_acme_challenges_t *t, const char *token, char **key_auth, size_t *len)
{
    *key_auth = NULL;
    *len = 0;
    return get_entry(t, &t->http01, token, strlen(token), false, (uint8_t **)key_auth, len, NULL,
                     NULL);
}

int tf_acme_alpn01_put(tf_acme_challenges_t *t, const char *host, const uint8_t *cert,
                       size_t cert_len, const uint8_t *key, size_t key_len)
{
    if (host == NULL || *host == '\0' || cert == NULL || cert_len == 0 || key == NULL ||
        key_len == 0)
        return TF_EINVAL;
    entry_t *e = entry_new(host, cert, cert_len, false, key, key_len);
    if (e == NULL)
        return TF_ENOMEM;
    put_entry(t, &t->alpn01, e, true);
    return 0;
}

void tf_acme_alpn01_remove(tf_acme_challenges_t *t, const char *host)
{
    remove_entry(t, &t->alpn01, host, true);
}

int tf_acme_alpn01_get(tf_acme_challenges_t *t, const char *host, size_t host_len, uint8_t **cert,
                       size_t *cert_len, uint8_t **key, size_t *key_len)
{
    *cert = *key = NULL;
    *cert_len = *key_len = 0;
    return get_entry(t, &t->alpn01, host, host_len, true, cert, cert_len, key, key_len);
}

static size_t count(tf_acme_challenges_t *t, entry_t *const *head)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (const entry_t *e = *head; e != NULL; e = e->next)
        n++;
    pthread_rwlock_unlock(&t->lock);
    return n;
}

size_t tf_acme_http01_count(tf_acme_challenges_t *t)
{
    return count(t, &t->http01);
}

size_t tf_acme_alpn01_count(tf_acme_challenges_t *t)
{
    return count(t, &t->alpn01);
}
