/* What counts as valid UTF-8 (RFC 3629), in one place: the access log's
 * escapers and the JSON the CLI and the admin API write agree on it, so a
 * value reads the same in a log line and in an API answer.
 */
#ifndef TF_COMMON_UTF8_H
#define TF_COMMON_UTF8_H

#include <stddef.h>

/* Length (2-4) of the valid multi-byte UTF-8 sequence at s[0, n), or 0 when
 * it is not one: an ASCII byte, a stray continuation byte, a truncated
 * sequence, an overlong form, a UTF-16 surrogate or a code point past
 * U+10FFFF. n >= 1; s need not be NUL-terminated. Pure, any thread. */
size_t tf_utf8_len(const unsigned char *s, size_t n);

#endif
