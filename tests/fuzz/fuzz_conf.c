/* libFuzzer target for the configuration loader: any bytes must give either
 * a config or errors, never a crash, a leak or undefined behaviour; and the
 * error text must keep its one-line-per-error shape. */
#include "conf/conf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    char err[8192];
    tf_conf_t *c = NULL;
    int rc = tf_conf_load_buffer("fuzz.yaml", (const char *)d, n, &c, err, sizeof err);
    if (rc == 0) {
        /* Touch what the accessors promise, so ASan checks it. */
        for (size_t i = 0; i < tf_conf_tenant_count(c); i++) {
            const tf_conf_tenant_t *t = tf_conf_tenant(c, i);
            if (t->hosts.count == 0 || t->nroutes == 0 || strlen(t->name) == 0 ||
                strcmp(t->routes[0].path, "/") != 0)
                abort();
            /* Every route holds what its kind needs (SPEC §11). */
            for (size_t r = 0; r < t->nroutes; r++) {
                const tf_conf_route_t *rt = &t->routes[r];
                if ((rt->kind == TF_CONF_ROUTE_BACKENDS && rt->backends.count == 0) ||
                    (rt->kind == TF_CONF_ROUTE_REDIRECT && rt->redirect == NULL) ||
                    rt->path[0] != '/' || rt->cookie == NULL)
                    abort();
            }
        }
        if (tf_conf_listen_https(c)->count == 0 || err[0] != '\0')
            abort();
        tf_conf_unref(tf_conf_ref(c));
        tf_conf_unref(c);
    } else if (err[0] == '\0' || err[strlen(err) - 1] != '\n') {
        abort();
    }
    return 0;
}
