/* Stands in for client.c (the ACME protocol client) while this tree does not
 * have it: CMake compiles this file only when acme/client.c is absent, so
 * that the manager and `tlsfront run` build and every order fails with a
 * plain reason. Delete it once client.c is in the tree. */
#include "acme/acme.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tf_acme_problem_dispose(tf_acme_problem_t *p)
{
    free(p->subproblems);
    p->subproblems = NULL;
}

void tf_acme_issued_dispose(tf_acme_issued_t *i)
{
    if (i->bundle != NULL)
        tf_acme_free_secret(i->bundle, i->bundle_len);
    free(i->order_url);
    memset(i, 0, sizeof *i);
}

int tf_acme_client_new(const tf_acme_client_conf_t *conf, tf_acme_client_t **out,
                       tf_acme_problem_t *prob)
{
    (void)conf, (void)prob;
    /* Any pointer the stub's functions accept: a client that only fails. */
    static char none;
    *out = (tf_acme_client_t *)(void *)&none;
    return 0;
}

void tf_acme_client_free(tf_acme_client_t *c)
{
    (void)c;
}

void tf_acme_client_cancel(tf_acme_client_t *c)
{
    (void)c;
}

int tf_acme_client_issue(tf_acme_client_t *c, const char *host, const char *resume,
                         void (*on_order)(void *ud, const char *url), void *ud,
                         tf_acme_issued_t *out, tf_acme_problem_t *prob)
{
    (void)c, (void)host, (void)resume, (void)on_order, (void)ud, (void)out;
    snprintf(prob->detail, sizeof prob->detail,
             "this build of tlsfront has no ACME protocol client (acme/client.c)");
    return TF_EUNSUPPORTED;
}

int tf_acme_client_renewal_info(tf_acme_client_t *c, const char *cert_pem, size_t len,
                                int64_t *start, int64_t *end, tf_acme_problem_t *prob)
{
    (void)c, (void)cert_pem, (void)len, (void)start, (void)end, (void)prob;
    return TF_ENOTFOUND;
}

const tf_acme_client_ops_t tf_acme_client_ops_default = {
    .issue = tf_acme_client_issue,
    .renewal_info = tf_acme_client_renewal_info,
};
