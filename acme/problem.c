/* Problem documents (RFC 7807, RFC 8555 §6.7) and Retry-After (RFC 9110
 * §10.2.3) into tf_acme_problem_t. See acme.h. */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void tf_acme_problem_dispose(tf_acme_problem_t *p)
{
    if (p == NULL)
        return;
    free(p->subproblems);
    memset(p, 0, sizeof *p);
}

void tf_acme__problem_set(tf_acme_problem_t *p, int status, const char *fmt, ...)
{
    if (p == NULL)
        return;
    p->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof p->detail, fmt, ap);
    va_end(ap);
}

/* An IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT": the only date form a
 * server may send now (RFC 9110 §5.6.7). */
static bool http_date(const char *v, int64_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char mon[4] = "";
    struct tm tm = {0};
    int n = 0;
    if (sscanf(v, "%*3s, %2d %3s %4d %2d:%2d:%2d GMT%n", &tm.tm_mday, mon, &tm.tm_year, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n == 0 || strlen(mon) != 3)
        return false;
    const char *m = strstr(months, mon);
    if (m == NULL || (m - months) % 3 != 0)
        return false;
    tm.tm_mon = (int)(m - months) / 3;
    tm.tm_year -= 1900;
    *out = (int64_t)timegm(&tm);
    return true;
}

uint64_t tf_acme__retry_after(const char *value, int64_t now)
{
    if (value == NULL)
        return 0;
    while (isspace((unsigned char)*value))
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(value, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        return errno == 0 && *end == '\0' ? (uint64_t)s : 0;
    }
    int64_t when;
    if (!http_date(value, &when) || when <= now)
        return 0;
    return (uint64_t)(when - now);
}

void tf_acme__problem_from_json(tf_acme_problem_t *p, const json_t *doc, int status)
{
    const char *type = json_string_value(json_object_get(doc, "type"));
    const char *detail = json_string_value(json_object_get(doc, "detail"));
    json_t *st = json_object_get(doc, "status");
    json_t *sub = json_object_get(doc, "subproblems");
    p->status = json_is_integer(st) ? (int)json_integer_value(st) : status;
    snprintf(p->type, sizeof p->type, "%s", type ? type : "");
    snprintf(p->detail, sizeof p->detail, "%s", detail ? detail : "");
    free(p->subproblems);
    p->subproblems = json_is_array(sub) && json_array_size(sub) > 0
                         ? json_dumps(sub, JSON_COMPACT | JSON_ENCODE_ANY)
                         : NULL;
}

/* A short, printable excerpt of a body that is not a problem document. */
static void excerpt(char *out, size_t cap, const char *body, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < cap && i < 200; i++)
        out[n++] = isprint((unsigned char)body[i]) ? body[i] : ' ';
    out[n] = '\0';
}

void tf_acme__problem_parse(tf_acme_problem_t *p, const char *url, int status,
                            const char *content_type, const char *body, size_t len,
                            const char *retry_after)
{
    json_t *doc = NULL;
    bool problem = content_type != NULL && strncasecmp(content_type, "application/problem+json",
                                                       strlen("application/problem+json")) == 0;
    if (problem && body != NULL)
        doc = json_loadb(body, len, 0, NULL);
    if (json_is_object(doc)) {
        tf_acme__problem_from_json(p, doc, status);
        p->status = status; /* the response's, which the server cannot misstate */
    } else {
        char text[201];
        excerpt(text, sizeof text, body ? body : "", body ? len : 0);
        tf_acme__problem_set(p, status, "%s: HTTP %d without a problem document%s%s", url, status,
                             text[0] ? ": " : "", text);
        p->type[0] = '\0';
    }
    json_decref(doc);
    p->retry_after_s = tf_acme__retry_after(retry_after, (int64_t)time(NULL));
}
