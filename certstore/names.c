/* Host-name normalization and certificate-name matching rules (SPEC §4.4). See names.h. */
#include "certstore/names.h"

#include "common/err.h"

#include <string.h>

static const char reason_empty[] = "empty name";
static const char reason_lone_star[] = "a lone '*' is not a wildcard: use '*.example.com'";
static const char reason_partial[] = "partial-label wildcard: '*' matches only as the whole "
                                     "left-most label ('*.example.com'), so this matches nothing";
static const char reason_star_inside[] = "'*' is allowed only as the whole left-most label "
                                         "('*.example.com'), so this matches nothing";
static const char reason_syntax[] = "not a valid host name: letters, digits and '-' in labels "
                                    "of 1-63 characters, not starting or ending with '-', 253 "
                                    "characters at most";

/* ASCII only, independent of the locale: SNI host names are ASCII by definition (IDNs travel
 * as xn-- A-labels), and tolower() would depend on the process locale. Returns the lower-case
 * LDH character, or 0 for a byte that is not a letter, digit or hyphen ('.' handled apart). */
static char ldh_lower(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
        return (char)c;
    return 0;
}

int tf_cs__sni_normalize(const char *in, size_t len, char *out)
{
    size_t label = 0;

    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > TF_CS_NAME_MAX)
        return TF_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '.') {
            /* An empty label, or one ending in '-'. */
            if (label == 0 || out[i - 1] == '-')
                return TF_EINVAL;
            out[i] = '.';
            label = 0;
            continue;
        }
        c = ldh_lower((unsigned char)c);
        if (c == 0 || (c == '-' && label == 0) || ++label > TF_CS_LABEL_MAX)
            return TF_EINVAL;
        out[i] = c;
    }
    /* The last label: empty ("example.com.." less one dot), or ending in '-'. */
    if (label == 0 || out[len - 1] == '-')
        return TF_EINVAL;
    out[len] = '\0';
    return (int)len;
}

const char *tf_cs__sni_wildcard_base(const char *name, size_t len, size_t *base_len)
{
    const char *dot = memchr(name, '.', len);

    if (dot == NULL)
        return NULL;
    *base_len = len - (size_t)(dot + 1 - name);
    return dot + 1;
}

static tf_cs__pattern_kind_t invalid(const char **reason, const char *why)
{
    if (reason != NULL)
        *reason = why;
    return TF_CS_PATTERN_INVALID;
}

/* "*.rest": the base must itself be a valid name, leave room for the one label a wildcard
 * stands for (the whole pattern is at most 253 characters), and hold no other '*'. */
static tf_cs__pattern_kind_t classify_wildcard(const char *name, size_t len, char *key, int *n,
                                               const char **reason)
{
    if (len == 1 || (len == 2 && name[1] == '.'))
        return invalid(reason, reason_lone_star);
    if (name[1] != '.')
        return invalid(reason, reason_partial);
    if (memchr(name + 2, '*', len - 2) != NULL)
        return invalid(reason, reason_star_inside);
    *n = tf_cs__sni_normalize(name + 2, len - 2, key);
    if (*n < 0 || *n > TF_CS_NAME_MAX - 2)
        return invalid(reason, reason_syntax);
    return TF_CS_PATTERN_WILDCARD;
}

tf_cs__pattern_kind_t tf_cs__pattern_classify(const char *name, size_t len, char *key,
                                              size_t *key_len, const char **reason)
{
    char scratch[TF_CS_NAME_BUF];
    const char *star = memchr(name, '*', len);
    tf_cs__pattern_kind_t kind;
    int n = 0;

    if (key == NULL)
        key = scratch;
    if (len == 0)
        return invalid(reason, reason_empty);
    if (star == name) {
        kind = classify_wildcard(name, len, key, &n, reason);
    } else if (star != NULL) {
        /* "f*.example.com" is a partial label; "a.*.example.com" a star further right. */
        const char *dot = memchr(name, '.', len);
        return invalid(reason, dot == NULL || star < dot ? reason_partial : reason_star_inside);
    } else {
        n = tf_cs__sni_normalize(name, len, key);
        kind = n < 0 ? invalid(reason, reason_syntax) : TF_CS_PATTERN_EXACT;
    }
    if (kind != TF_CS_PATTERN_INVALID && key_len != NULL)
        *key_len = (size_t)n;
    return kind;
}

bool tf_cs__name_covered(const char *host, const char *const *names, size_t n)
{
    char h[TF_CS_NAME_BUF], key[TF_CS_NAME_BUF];
    const char *base;
    size_t base_len = 0, key_len;
    int len = tf_cs__sni_normalize(host, strlen(host), h);

    if (len < 0)
        return false;
    base = tf_cs__sni_wildcard_base(h, (size_t)len, &base_len);
    for (size_t i = 0; i < n; i++) {
        tf_cs__pattern_kind_t kind =
            tf_cs__pattern_classify(names[i], strlen(names[i]), key, &key_len, NULL);
        if (kind == TF_CS_PATTERN_EXACT && key_len == (size_t)len && memcmp(key, h, key_len) == 0)
            return true;
        if (kind == TF_CS_PATTERN_WILDCARD && base != NULL && key_len == base_len &&
            memcmp(key, base, key_len) == 0)
            return true;
    }
    return false;
}
