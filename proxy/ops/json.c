/* See json.h. */
#include "proxy/ops/json.h"

#include "common/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Every byte outside valid UTF-8 becomes the two-byte UTF-8 of U+00XX: what
 * the access log's \u00XX for that byte reads back as. At most twice as
 * long. */
static json_t *text_repaired(const unsigned char *s, size_t n)
{
    char *fixed = malloc(2 * n + 1);
    if (fixed == NULL)
        return NULL;
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        size_t len = s[i] < 0x80 ? 1 : tf_utf8_len(s + i, n - i);
        if (len == 0) {
            fixed[out++] = (char)(0xc0 | s[i] >> 6);
            fixed[out++] = (char)(0x80 | (s[i] & 0x3f));
            i++;
            continue;
        }
        memcpy(fixed + out, s + i, len);
        out += len;
        i += len;
    }
    json_t *v = json_stringn(fixed, out);
    free(fixed);
    return v;
}

json_t *tf_json_checked(json_t *doc, int rc)
{
    if (rc == 0)
        return doc;
    json_decref(doc);
    return NULL;
}

json_t *tf_json_text(const char *s)
{
    if (s == NULL)
        return json_null();
    size_t n = strlen(s);
    /* jansson refuses what is not UTF-8: only then is a copy needed. */
    json_t *v = json_stringn(s, n);
    return v != NULL ? v : text_repaired((const unsigned char *)s, n);
}

json_t *tf_json_time(time_t t)
{
    struct tm tm;
    char buf[32];
    if (t == 0 || gmtime_r(&t, &tm) == NULL ||
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return json_string("-");
    return json_string(buf);
}

/* json_pack's "o" takes the reference it is given, and on any failure (a
 * NULL among them) releases every one: the builders below lean on that. */
static json_t *diag(const tf_cs_diag_t *d)
{
    return json_pack("{s:o,s:o}", "code", tf_json_text(tf_cs_diag_slug(d->code)), "message",
                     tf_json_text(d->message));
}

json_t *tf_json_diags(const tf_cs_bundle_t *b, tf_cs_severity_t sev)
{
    json_t *list = json_array();
    int rc = list != NULL ? 0 : -1;
    for (size_t i = 0; rc == 0 && b != NULL && i < tf_cs_bundle_diag_count(b); i++) {
        const tf_cs_diag_t *d = tf_cs_bundle_diag_at(b, i);
        if (d->severity == sev)
            rc = json_array_append_new(list, diag(d));
    }
    return tf_json_checked(list, rc);
}

json_t *tf_json_strings(const tf_cs_bundle_t *b, size_t n,
                        const char *(*at)(const tf_cs_bundle_t *, size_t))
{
    json_t *list = json_array();
    int rc = list != NULL ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = json_array_append_new(list, tf_json_text(at(b, i)));
    return tf_json_checked(list, rc);
}

json_t *tf_json_key_info(const tf_cs_bundle_t *b)
{
    tf_cs_key_type_t kt = tf_cs_bundle_key_type(b);
    const char *type = kt == TF_CS_KEY_RSA ? "RSA" : kt == TF_CS_KEY_EC ? "ECDSA" : NULL;
    return json_pack("{s:s?,s:i}", "type", type, "bits", tf_cs_bundle_key_bits(b));
}

char *tf_json_dump(json_t *doc, size_t *len)
{
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text == NULL)
        return NULL;
    size_t n = strlen(text);
    char *out = realloc(text, n + 2);
    if (out == NULL) {
        free(text);
        return NULL;
    }
    out[n] = '\n';
    out[n + 1] = '\0';
    *len = n + 1;
    return out;
}
