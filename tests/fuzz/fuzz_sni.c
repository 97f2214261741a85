/* libFuzzer target: SNI normalization and index lookup (SPEC §4.4), the code that runs on
 * every client's server_name before anything else is known about the client.
 *
 * The input is the raw server_name bytes, any length, any byte. A small fixed index (built
 * once) is searched for the normalized name, and the result is checked against the rules
 * independently: a normalized name is short, lower-case LDH, and a lookup that finds
 * something is confirmed by tf_cs__name_covered(). The first byte of the input is also used
 * to classify the rest as a certificate name pattern.
 */
#include "certstore/index.h"
#include "certstore/names.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int cert_exact, cert_wild, cert_eu, cert_apex, cert_renewed;

static const char *const names_exact[] = {"www.example.com", "example.com"};
static const char *const names_wild[] = {"*.example.com"};
static const char *const names_eu[] = {"*.eu.example.com", "paris.eu.example.com"};
static const char *const names_apex[] = {"example.org", "*.example.org"};
static const char *const names_renewed[] = {"www.example.com", "*.example.org"};

static const char *const *names_of(const void *entry, size_t *n)
{
    static const struct {
        const void *entry;
        const char *const *names;
        size_t n;
    } table[] = {
        {&cert_exact, names_exact, 2}, {&cert_wild, names_wild, 1},       {&cert_eu, names_eu, 2},
        {&cert_apex, names_apex, 2},   {&cert_renewed, names_renewed, 2},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].entry == entry) {
            *n = table[i].n;
            return table[i].names;
        }
    }
    abort();
}

static void add_all(tf_cs__index_builder_t *b, void *entry, int64_t not_after)
{
    size_t n;
    const char *const *names = names_of(entry, &n);

    for (size_t i = 0; i < n; i++)
        if (tf_cs__index_builder_add(b, names[i], entry, 0, not_after) != 0)
            abort();
}

static const tf_cs__index_t *fixed_index(void)
{
    static tf_cs__index_t *idx;
    tf_cs__index_builder_t *b;

    if (idx != NULL)
        return idx;
    b = tf_cs__index_builder_new();
    if (b == NULL)
        abort();
    add_all(b, &cert_exact, 1000);
    add_all(b, &cert_wild, 1000);
    add_all(b, &cert_eu, 1000);
    add_all(b, &cert_apex, 1000);
    add_all(b, &cert_renewed, 2000);
    if (tf_cs__index_build(b, 500, &idx, NULL, NULL) != 0)
        abort();
    return idx;
}

static void check_normalized(const char *name, int len)
{
    if (len < 1 || len > TF_CS_NAME_MAX || (size_t)len != strlen(name))
        abort();
    for (int i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            abort();
    }
    if (name[0] == '.' || name[len - 1] == '.' || strstr(name, "..") != NULL)
        abort();
}

static void check_lookup(const char *name)
{
    tf_cs__match_t kind;
    void *e = tf_cs__index_lookup(fixed_index(), name, &kind);
    size_t n;

    if ((e == NULL) != (kind == TF_CS_MATCH_NONE))
        abort();
    if (e != NULL && !tf_cs__name_covered(name, names_of(e, &n), n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[TF_CS_NAME_BUF], key[TF_CS_NAME_BUF];
    size_t key_len;
    const char *reason;
    int len = tf_cs__sni_normalize((const char *)data, size, out);

    if (len >= 0) {
        check_normalized(out, len);
        check_lookup(out);
        /* Normalizing twice changes nothing. */
        if (tf_cs__sni_normalize(out, (size_t)len, key) != len || strcmp(out, key) != 0)
            abort();
    }
    if (tf_cs__pattern_classify((const char *)data, size, key, &key_len, &reason) !=
            TF_CS_PATTERN_INVALID &&
        key_len != strlen(key))
        abort();
    return 0;
}
