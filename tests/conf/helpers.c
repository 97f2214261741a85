#include "helpers.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

tf_conf_t *t_load(const char *yaml)
{
    char err[8192];
    tf_conf_t *c = NULL;
    int rc = tf_conf_load_buffer(T_NAME, yaml, strlen(yaml), &c, err, sizeof err);
    cr_assert_eq(rc, 0, "load failed (%s):\n%s\n--- input:\n%s", tf_err_name(rc), err, yaml);
    cr_assert_not_null(c);
    cr_assert_str_empty(err);
    return c;
}

void t_load_fail(const char *yaml, int rc, char *err, size_t len)
{
    tf_conf_t *c = NULL;
    int got = tf_conf_load_buffer(T_NAME, yaml, strlen(yaml), &c, err, len);
    cr_assert_eq(got, rc, "want %s, got %s:\n%s\n--- input:\n%s", tf_err_name(rc), tf_err_name(got),
                 err, yaml);
    cr_assert_null(c);
}

bool t_has_error(const char *err, unsigned line, unsigned col, const char *sub)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, T_NAME ":%u:%u: ", line, col);
    for (const char *p = err; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            const char *hit = strstr(p, sub);
            if (hit != NULL && hit + strlen(sub) <= p + n)
                return true;
        }
        p = nl ? nl + 1 : NULL;
    }
    return false;
}

void t_expect_error(const char *yaml, unsigned line, unsigned col, const char *sub)
{
    char err[8192];
    t_load_fail(yaml, TF_ECONF, err, sizeof err);
    cr_assert(t_has_error(err, line, col, sub), "want %u:%u '%s' in:\n%s\n--- input:\n%s", line,
              col, sub, err, yaml);
}

size_t t_count_lines(const char *err)
{
    size_t n = 0;
    for (; *err; err++)
        n += *err == '\n';
    return n;
}
