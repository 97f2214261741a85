#include "proxy/ops/json.h"

#include "common/utf8.h"

#include <stddef.h>
#include <string.h>

void tf_json_str(FILE *out, const char *str)
{
    if (str == NULL) {
        fputs("null", out);
        return;
    }
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    while (*s != '\0') {
        if (*s == '"' || *s == '\\') {
            fputc('\\', out);
            fputc(*s++, out);
        } else if (*s == '\n') {
            fputs("\\n", out);
            s++;
        } else if (*s < 0x20 || *s == 0x7f) {
            fprintf(out, "\\u%04x", *s++);
        } else if (*s < 0x80) {
            fputc(*s++, out);
        } else {
            size_t n = tf_utf8_len(s, strnlen((const char *)s, 4));
            if (n == 0) {
                fprintf(out, "\\u%04x", *s++);
                continue;
            }
            fwrite(s, 1, n, out);
            s += n;
        }
    }
    fputc('"', out);
}

void tf_json_key(FILE *out, const char *key)
{
    tf_json_str(out, key);
    fputc(':', out);
}
