#include "proxy/cli/cli.h"

#include "common/err.h"
#include "conf/conf.h"

#include <stdlib.h>

#include <string.h>

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
};

/* Only subcommands that work are listed (and dispatched). */
static const struct command commands[] = {
    {.name = "run", .fn = tf_cmd_run},
    {.name = "check", .fn = tf_cmd_check},
    {.name = "cert", .fn = tf_cmd_cert},
    {.name = "version", .fn = tf_cmd_version},
};

void tf_cli_usage(FILE *out)
{
    fputs("usage: tlsfront <command> [options]\n"
          "\n"
          "commands:\n"
          "  run     [-c FILE]   run in the foreground: accept TLS on listen.https and\n"
          "                      forward to the tenants' backends; SIGTERM/SIGINT drain\n"
          "                      and exit\n"
          "  check   [-c FILE]   validate the configuration and every certificate;\n"
          "                      exit 0 ok, 1 problems\n"
          "  cert    [--json] FILE...\n"
          "                      inspect certificate bundles: status, names, chain as\n"
          "                      served, key, validity, every warning and error;\n"
          "                      exit 0 ok, 1 a bundle is rejected\n"
          "  version             print the version of tlsfront and its libraries\n"
          "\n"
          "  -c, --config FILE   configuration file (default " TF_DEFAULT_CONFIG ")\n"
          "  -h, --help          this text\n",
          out);
}

int tf_cli_config_arg(int argc, char **argv, const char **path)
{
    *path = TF_DEFAULT_CONFIG;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tlsfront %s: %s needs a file name\n", argv[0], a);
                return TF_EXIT_USAGE;
            }
            *path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            *path = a + 9;
        } else {
            fprintf(stderr, "tlsfront %s: unknown option '%s'; see 'tlsfront --help'\n",
                    argv[0], a);
            return TF_EXIT_USAGE;
        }
    }
    return 0;
}

int tf_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        tf_cli_usage(stderr);
        return TF_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        tf_cli_usage(stdout);
        return TF_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
        return tf_cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "tlsfront: unknown command '%s'\n\n", cmd);
    tf_cli_usage(stderr);
    return TF_EXIT_USAGE;
}

/* Room for every error the loader collects, one per line. */
#define CONF_ERRBUF 16384

int tf_cli_load_conf(const char *path, tf_conf_t **conf)
{
    char *err = malloc(CONF_ERRBUF);
    if (err == NULL) {
        fputs("tlsfront: out of memory\n", stderr);
        return TF_ENOMEM;
    }
    err[0] = '\0';
    int rc = tf_conf_load_file(path, conf, err, CONF_ERRBUF);
    if (rc != 0) {
        fputs(err, stderr);
        if (err[0] == '\0' || err[strlen(err) - 1] != '\n')
            fputc('\n', stderr);
        fprintf(stderr, "%s: configuration has errors\n", path);
    } else {
        for (size_t i = 0; i < tf_conf_warning_count(*conf); i++)
            fprintf(stderr, "warning: %s\n", tf_conf_warning(*conf, i));
    }
    free(err);
    return rc;
}
