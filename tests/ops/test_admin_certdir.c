/* The admin API when the certificate directory configured in tls.certs is
 * missing on disk (issue 13, item 6): each answer says what is true. The
 * certificates loaded from it are still served from memory. */
#include "ops.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "s3cret-admin-token"

static tf_ops_t ops;
static char away[1300]; /* where the directory went */

static void setup(void)
{
    tf_ops_start(&ops, 1, TOKEN, NULL);
    snprintf(away, sizeof away, "%s.away", ops.certs);
    cr_assert_eq(rename(ops.certs, away), 0);
}

static void teardown(void)
{
    tf_ops_stop(&ops);
}

TestSuite(ops_certdir, .init = setup, .fini = teardown, .timeout = 120);

static char *admin(int *st, const char *method, const char *path, const char *data)
{
    return tf_ops_admin(&ops, st, method, path, TOKEN, data);
}

/* Was 409 "no directory in tls.certs", though one is configured. */
Test(ops_certdir, an_upload_says_the_configured_directory_is_missing)
{
    char bundle[1400];
    snprintf(bundle, sizeof bundle, "%s/shop.pem", ops.px.tmp);
    free(tf_ops_issue(&ops, bundle, "new", "shop.example"));
    int st;
    char *out = admin(&st, "PUT", "/certs/shop", bundle);
    char want[1400];
    snprintf(want, sizeof want, "tls.certs names %s, which does not exist: create that directory",
             ops.certs);
    cr_expect_eq(st, 500, "%s", out);
    cr_expect_not_null(strstr(out, want), "%s", out);
    free(out);
}

/* Was "ok" with no warning. */
Test(ops_certdir, a_reload_warns_and_counts_the_files_it_keeps)
{
    int st;
    char *out = admin(&st, "POST", "/reload", NULL);
    char want[1400];
    snprintf(want, sizeof want, "%s: cannot read: No such file or directory", ops.certs);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_not_null(strstr(out, want), "%s", out);
    cr_expect_not_null(strstr(out, "\"failed\":4,"), "%s", out);
    free(out);
    out = admin(&st, "GET", "/certs", NULL);
    cr_expect_eq(tf_px_count(out, "\"status\":\"kept\""), 4, "%s", out);
    free(out);
    out = admin(&st, "GET", "/metrics", NULL);
    cr_expect_not_null(strstr(out, "tlsfront_reloads_total{result=\"ok\"} 0\n"), "%s", out);
    free(out);
    cr_expect(tf_ops_echo(&ops, "portal.acme.example"), "still served from memory");
}

/* Were listed as OK. The watcher's reload finds nothing changed to
 * publish, and GET /certs still says what it found. */
Test(ops_certdir, the_vanished_files_are_listed_as_kept)
{
    cr_assert(tf_ops_wait_log(&ops, "reload (certificates)", 1, 15));
    int st;
    char *out = admin(&st, "GET", "/certs", NULL);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect_eq(tf_px_count(out, "\"status\":\"kept\""), 4, "%s", out);
    cr_expect_null(strstr(out, "\"status\":\"OK\""), "%s", out);
    cr_expect_eq(tf_px_count(out, "\"code\":\"source_unreadable\""), 4, "%s", out);
    free(out);
    /* Back in place: read from disk again. */
    cr_assert_eq(rename(away, ops.certs), 0);
    out = admin(&st, "POST", "/reload", NULL);
    cr_expect_not_null(strstr(out, "\"failed\":0,"), "%s", out);
    free(out);
    out = admin(&st, "GET", "/certs", NULL);
    cr_expect_eq(tf_px_count(out, "\"status\":\"kept\""), 0, "%s", out);
    free(out);
}
