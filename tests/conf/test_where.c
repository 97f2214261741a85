/* tf_conf_where(): the location of each path-valued value, so that problems
 * found with those paths after loading point at the file like load errors. */
#include "helpers.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

/* Line numbers are 1-based; columns count from 1 at the start of the line.
 * The comment on each line gives the column where the value starts. */
static const char yaml[] = T_LISTEN               /* lines 1-2 */
    "log:\n"                                      /* 3 */
    "  access: /var/log/tlsfront/access.log\n"    /* 4: col 11 */
    "admin:\n"                                    /* 5 */
    "  token_file: '/etc/tlsfront/token'\n"       /* 6: col 15, the quote */
    "acme:\n"                                     /* 7 */
    "  webroot:   /srv/acme\n"                    /* 8: col 14 */
    "tls:\n"                                      /* 9 */
    "  certs:\n"                                  /* 10 */
    "    - /etc/tlsfront/certs\n"                 /* 11: col 7 */
    "    - \"/nonexistent/dir\"\n"                /* 12: col 7 */
    "  default_cert: /nonexistent/system.pem\n"   /* 13: col 17 */
    "  ticket_keys_file: /etc/tlsfront/tickets\n" /* 14: col 21 */
    T_TENANT;

static void expect_where(const tf_conf_t *c, const char *key, size_t i, const char *want)
{
    char buf[TF_CONF_WHERE_MAX];
    int rc = tf_conf_where(c, key, i, buf, sizeof buf);
    cr_expect_eq(rc, 0, "%s[%zu]: %d", key, i, rc);
    cr_expect_str_eq(buf, want, "%s[%zu]", key, i);
}

static void expect_nowhere(const tf_conf_t *c, const char *key, size_t i)
{
    char buf[TF_CONF_WHERE_MAX] = "garbage";
    cr_expect_eq(tf_conf_where(c, key, i, buf, sizeof buf), TF_ENOTFOUND, "%s[%zu]", key, i);
    cr_expect_str_eq(buf, "", "%s[%zu]", key, i);
}

Test(where, every_path_valued_key_has_its_value_location)
{
    tf_conf_t *c = t_load(yaml);
    expect_where(c, "log.access", 0, T_NAME ":4:11");
    expect_where(c, "admin.token_file", 0, T_NAME ":6:15");
    expect_where(c, "acme.webroot", 0, T_NAME ":8:14");
    expect_where(c, "tls.certs", 0, T_NAME ":11:7");
    expect_where(c, "tls.certs", 1, T_NAME ":12:7");
    expect_where(c, "tls.default_cert", 0, T_NAME ":13:17");
    expect_where(c, "tls.ticket_keys_file", 0, T_NAME ":14:21");
    tf_conf_unref(c);
}

Test(where, flow_list_items_each_have_their_own_column)
{
    tf_conf_t *c = t_load(T_MINIMAL "tls:\n  certs: [\"/tmp/certs\", \"/nonexistent/dir\"]\n");
    /* T_MINIMAL is 6 lines. */
    expect_where(c, "tls.certs", 0, T_NAME ":8:11");
    expect_where(c, "tls.certs", 1, T_NAME ":8:25");
    expect_nowhere(c, "tls.certs", 2);
    tf_conf_unref(c);
}

Test(where, defaults_and_nulls_have_no_location)
{
    tf_conf_t *c = t_load(T_MINIMAL "admin:\n  token_file: null\n");
    expect_nowhere(c, "tls.certs", 0);
    expect_nowhere(c, "tls.default_cert", 0);
    expect_nowhere(c, "log.access", 0);
    expect_nowhere(c, "acme.webroot", 0);
    expect_nowhere(c, "admin.token_file", 0);
    expect_nowhere(c, "tls.ticket_keys_file", 0);
    tf_conf_unref(c);
}

Test(where, only_path_valued_keys_are_kept)
{
    tf_conf_t *c = t_load(yaml);
    expect_nowhere(c, "listen.https", 0);
    expect_nowhere(c, "tls.default_cert", 1);
    expect_nowhere(c, "tls", 0);
    expect_nowhere(c, "no.such.key", 0);
    tf_conf_unref(c);
}

Test(where, a_buffer_too_small_gets_nothing_rather_than_a_wrong_line)
{
    tf_conf_t *c = t_load(yaml);
    char buf[sizeof T_NAME ":13:1"]; /* one byte short of "test.yaml:13:17" */
    cr_expect_eq(tf_conf_where(c, "tls.default_cert", 0, buf, sizeof buf), TF_ETOOBIG);
    cr_expect_str_eq(buf, "");
    cr_expect_eq(tf_conf_where(c, "tls.default_cert", 0, NULL, 0), TF_ETOOBIG);
    tf_conf_unref(c);
}

Test(where, the_name_is_the_one_given_at_load_time)
{
    const char text[] = T_MINIMAL "tls:\n  default_cert: /x.pem\n";
    tf_conf_t *c = NULL;
    char err[256];
    cr_assert_eq(
        tf_conf_load_buffer("/etc/tlsfront/tlsfront.yaml", text, strlen(text), &c, err, sizeof err),
        0, "%s", err);
    expect_where(c, "tls.default_cert", 0, "/etc/tlsfront/tlsfront.yaml:8:17");
    tf_conf_unref(c);
}
