#include "proxy/cli.h"

#include "common/err.h"
#include "conf/conf.h"

#include <stdlib.h>
#include <string.h>

/* Room for every error the loader collects, one per line. */
#define CHECK_ERRBUF 16384

int tf_cmd_check(int argc, char **argv)
{
    const char *path;
    int rc = tf_cli_config_arg(argc, argv, &path);
    if (rc != 0)
        return rc;

    char *err = malloc(CHECK_ERRBUF);
    if (err == NULL) {
        fputs("tlsfront check: out of memory\n", stderr);
        return TF_EXIT_PROBLEMS;
    }
    err[0] = '\0';
    tf_conf_t *conf = NULL;
    rc = tf_conf_load_file(path, &conf, err, CHECK_ERRBUF);
    if (rc != 0) {
        fputs(err, stderr);
        if (err[0] == '\0' || err[strlen(err) - 1] != '\n')
            fputc('\n', stderr);
        fprintf(stderr, "%s: configuration has errors\n", path);
        free(err);
        return TF_EXIT_PROBLEMS;
    }
    printf("%s: configuration OK\n", path);
    tf_conf_unref(conf);
    free(err);
    return TF_EXIT_OK;
}
