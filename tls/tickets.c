/* Session-ticket keys (SPEC §6) and wolfSSL's ticket callback.
 *
 * Tickets are sealed with ChaCha20-Poly1305 (wolfCrypt): a random 96-bit
 * nonce per ticket in the first 12 bytes of wolfSSL's 16-byte IV field, the
 * 16-byte tag in the first half of its 32-byte MAC field, and the key name
 * and IV as additional data. Format of the keys file: docs/TLS.md.
 */
#include "tls/tls_internal.h"

#include "common/err.h"

#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/random.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    TK_NAME_SZ = 16,
    TK_KEY_SZ = CHACHA20_POLY1305_AEAD_KEYSIZE, /* 32 */
    TK_NONCE_SZ = CHACHA20_POLY1305_AEAD_IV_SIZE,
    TK_TAG_SZ = CHACHA20_POLY1305_AEAD_AUTHTAG_SIZE,
    TK_RECORD_SZ = 80, /* one keys-file record, as haproxy's tls-ticket-keys */
    TK_MAX_KEYS = 16,
};

typedef struct {
    uint8_t name[TK_NAME_SZ];
    uint8_t key[TK_KEY_SZ];
    time_t created;
} ticket_key_t;

struct tf_tls_tickets {
    atomic_uint refs;
    pthread_mutex_t mu; /* guards everything below */
    WC_RNG rng;
    char *file; /* NULL: keys generated in memory */
    unsigned rotate_s;
    ticket_key_t keys[TK_MAX_KEYS]; /* oldest first */
    size_t nkeys;
    size_t enc; /* index of the encrypting key */
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n-- > 0)
        *v++ = 0;
}

/* Under t->mu. */
static int add_random_key(tf_tls_tickets_t *t, time_t now)
{
    if (t->nkeys == TK_MAX_KEYS) {
        memmove(&t->keys[0], &t->keys[1], sizeof t->keys[0] * (TK_MAX_KEYS - 1));
        t->nkeys--;
    }
    ticket_key_t *k = &t->keys[t->nkeys];
    if (wc_RNG_GenerateBlock(&t->rng, k->name, TK_NAME_SZ) != 0 ||
        wc_RNG_GenerateBlock(&t->rng, k->key, TK_KEY_SZ) != 0)
        return TF_ETLS;
    k->created = now;
    t->enc = t->nkeys++;
    return 0;
}

/* Under t->mu: memory keys only. A new key every rotate_s seconds; each
 * decrypts for 2 * rotate_s after its creation. */
static int rotate_locked(tf_tls_tickets_t *t, time_t now)
{
    if (t->file != NULL)
        return 0;
    int rc = 0;
    if (t->nkeys == 0 || t->keys[t->nkeys - 1].created + (time_t)t->rotate_s <= now)
        rc = add_random_key(t, now);
    if (t->nkeys == 0)
        return rc;
    size_t drop = 0;
    while (drop < t->nkeys - 1 && t->keys[drop].created + 2 * (time_t)t->rotate_s <= now)
        drop++;
    if (drop > 0) {
        wipe(&t->keys[0], sizeof t->keys[0] * drop);
        memmove(&t->keys[0], &t->keys[drop], sizeof t->keys[0] * (t->nkeys - drop));
        t->nkeys -= drop;
        wipe(&t->keys[t->nkeys], sizeof t->keys[0] * drop);
        t->enc = t->nkeys - 1;
    }
    return rc;
}

/* Reads the keys file into keys[]; returns how many, or a negative code. */
static int read_keys_file(const char *path, ticket_key_t *keys, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int e = errno;
        set_err(err, errlen, "%s: %s: check tls.ticket_keys_file", path, strerror(e));
        return -e;
    }
    char line[256];
    int n = 0, lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        uint8_t rec[TK_RECORD_SZ + 4];
        word32 outlen = sizeof rec;
        if (Base64_Decode((const byte *)line, (word32)len, rec, &outlen) != 0 ||
            outlen != TK_RECORD_SZ) {
            set_err(err, errlen,
                    "%s:%d: not an 80-byte base64 key: generate one with "
                    "`openssl rand 80 | openssl base64 -A`",
                    path, lineno);
            rc = TF_ECONF;
            wipe(rec, sizeof rec);
            break;
        }
        if (n == TK_MAX_KEYS) {
            memmove(&keys[0], &keys[1], sizeof keys[0] * (TK_MAX_KEYS - 1));
            n--;
        }
        memcpy(keys[n].name, rec, TK_NAME_SZ);
        memcpy(keys[n].key, rec + TK_NAME_SZ, TK_KEY_SZ);
        keys[n].created = 0;
        n++;
        wipe(rec, sizeof rec);
    }
    fclose(f);
    wipe(line, sizeof line);
    if (rc == 0 && n == 0) {
        set_err(err, errlen,
                "%s: no key: add at least one line of `openssl rand 80 | openssl base64 -A`", path);
        rc = TF_ECONF;
    }
    return rc != 0 ? rc : n;
}

int tf_tls_tickets_new(const char *keys_file, unsigned rotate_s, tf_tls_tickets_t **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    tf_tls_tickets_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return TF_ENOMEM;
    atomic_init(&t->refs, 1);
    t->rotate_s = rotate_s > 0 ? rotate_s : 3600;
    if (wc_InitRng(&t->rng) != 0) {
        free(t);
        set_err(err, errlen, "tls: cannot initialise the random generator");
        return TF_ETLS;
    }
    pthread_mutex_init(&t->mu, NULL);
    int rc = 0;
    if (keys_file != NULL) {
        t->file = strdup(keys_file);
        rc = t->file == NULL ? TF_ENOMEM : tf_tls_tickets_reload(t, err, errlen);
    } else {
        rc = add_random_key(t, time(NULL));
        if (rc != 0)
            set_err(err, errlen, "tls: cannot generate a ticket key");
    }
    if (rc != 0) {
        tf_tls_tickets_unref(t);
        return rc;
    }
    *out = t;
    return 0;
}

int tf_tls_tickets_reload(tf_tls_tickets_t *t, char *err, size_t errlen)
{
    if (t->file == NULL)
        return 0;
    ticket_key_t keys[TK_MAX_KEYS];
    int n = read_keys_file(t->file, keys, err, errlen);
    if (n > 0) {
        pthread_mutex_lock(&t->mu);
        wipe(t->keys, sizeof t->keys);
        memcpy(t->keys, keys, sizeof keys[0] * (size_t)n);
        t->nkeys = (size_t)n;
        /* The penultimate key encrypts, as haproxy does: append a new key to
         * the file on every instance, reload, and no instance encrypts with
         * it before all of them can decrypt it. */
        t->enc = n >= 2 ? (size_t)n - 2 : 0;
        pthread_mutex_unlock(&t->mu);
    }
    wipe(keys, sizeof keys);
    return n > 0 ? 0 : n;
}

int tf_tls_tickets_rotate(tf_tls_tickets_t *t, time_t now)
{
    pthread_mutex_lock(&t->mu);
    int rc = rotate_locked(t, now);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

unsigned tf_tls_tickets_lifetime(const tf_tls_tickets_t *t)
{
    return t->rotate_s;
}

tf_tls_tickets_t *tf_tls_tickets_ref(tf_tls_tickets_t *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void tf_tls_tickets_unref(tf_tls_tickets_t *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_destroy(&t->mu);
    wc_FreeRng(&t->rng);
    wipe(t->keys, sizeof t->keys);
    free(t->file);
    free(t);
}

size_t tf_tls__tickets_current(tf_tls_tickets_t *t, uint8_t name[16])
{
    pthread_mutex_lock(&t->mu);
    memcpy(name, t->keys[t->enc].name, TK_NAME_SZ);
    size_t n = t->nkeys;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static int seal(tf_tls_tickets_t *t, uint8_t name[TK_NAME_SZ], uint8_t iv[16], uint8_t mac[32],
                uint8_t *data, int len, int *outlen)
{
    ticket_key_t k = {0};
    pthread_mutex_lock(&t->mu);
    int rc = rotate_locked(t, time(NULL));
    if (rc == 0)
        k = t->keys[t->enc];
    memset(iv, 0, 16);
    if (rc == 0)
        rc = wc_RNG_GenerateBlock(&t->rng, iv, TK_NONCE_SZ);
    pthread_mutex_unlock(&t->mu);
    if (rc != 0)
        return WOLFSSL_TICKET_RET_FATAL;
    memcpy(name, k.name, TK_NAME_SZ);
    uint8_t aad[TK_NAME_SZ + 16];
    memcpy(aad, name, TK_NAME_SZ);
    memcpy(aad + TK_NAME_SZ, iv, 16);
    memset(mac, 0, 32);
    rc = wc_ChaCha20Poly1305_Encrypt(k.key, iv, aad, sizeof aad, data, (word32)len, data, mac);
    wipe(&k, sizeof k);
    *outlen = len;
    return rc == 0 ? WOLFSSL_TICKET_RET_OK : WOLFSSL_TICKET_RET_FATAL;
}

static int open_ticket(tf_tls_tickets_t *t, const uint8_t name[TK_NAME_SZ], const uint8_t iv[16],
                       const uint8_t mac[32], uint8_t *data, int len, int *outlen)
{
    ticket_key_t k = {0};
    bool found = false, current = false;
    pthread_mutex_lock(&t->mu);
    if (t->file == NULL)
        (void)rotate_locked(t, time(NULL));
    for (size_t i = t->nkeys; i-- > 0 && !found;) {
        if (memcmp(t->keys[i].name, name, TK_NAME_SZ) == 0) {
            k = t->keys[i];
            found = true;
            current = i == t->enc;
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (!found)
        return WOLFSSL_TICKET_RET_REJECT; /* an expired key: full handshake */
    uint8_t aad[TK_NAME_SZ + 16];
    memcpy(aad, name, TK_NAME_SZ);
    memcpy(aad + TK_NAME_SZ, iv, 16);
    int rc = wc_ChaCha20Poly1305_Decrypt(k.key, iv, aad, sizeof aad, data, (word32)len, mac, data);
    wipe(&k, sizeof k);
    if (rc != 0)
        return WOLFSSL_TICKET_RET_REJECT;
    *outlen = len;
    /* Ask for a fresh ticket under the current key. */
    return current ? WOLFSSL_TICKET_RET_OK : WOLFSSL_TICKET_RET_CREATE;
}

static int on_ticket(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
                     unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                     unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc, unsigned char *data,
                     int len, int *outlen, void *arg)
{
    if (len <= 0)
        return WOLFSSL_TICKET_RET_REJECT;
    if (enc)
        return seal(arg, name, iv, mac, data, len, outlen);
    int rc = open_ticket(arg, name, iv, mac, data, len, outlen);
    /* A TLS 1.3 server sends a new ticket after every handshake, resumed or
     * not, so there a ticket under an older key that still opens needs no
     * CREATE; and wolfSSL 5.7 (unlike 5.5.4) does not resume a TLS 1.3
     * ticket answered with CREATE: every key rotation would turn the
     * outstanding tickets into full handshakes. */
    if (rc == WOLFSSL_TICKET_RET_CREATE && wolfSSL_GetVersion(ssl) == WOLFSSL_TLSV1_3)
        rc = WOLFSSL_TICKET_RET_OK;
    return rc;
}

int tf_tls__tickets_install(tf_tls_tickets_t *t, WOLFSSL_CTX *wctx)
{
    /* A ticket outlives neither its key's encrypting period plus its
     * decrypting grace (rotate_s each), nor a week (RFC 8446 §4.6.1). */
    unsigned life = t->rotate_s < 604800 ? t->rotate_s : 604800;
    if (wolfSSL_CTX_set_TicketEncCb(wctx, on_ticket) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_TicketEncCtx(wctx, t) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_TicketHint(wctx, (int)life) != WOLFSSL_SUCCESS)
        return TF_ETLS;
    /* One TLS 1.3 ticket per connection is enough for a browser or a load
     * balancer to resume; each costs a record on the wire. */
    (void)wolfSSL_CTX_set_num_tickets(wctx, 1);
    return 0;
}
