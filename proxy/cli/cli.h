/* The tlsfront command line (SPEC §2): one function per subcommand.
 * Each returns the process exit status: 0 ok, 1 problems found, 2 usage. */
#ifndef TF_PROXY_CLI_H
#define TF_PROXY_CLI_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER < 5
#error "proxy/cli is above this library (obs < http < net < ops < cli)"
#endif

#include <stdio.h>

#define TF_EXIT_OK 0
#define TF_EXIT_PROBLEMS 1
#define TF_EXIT_USAGE 2

#define TF_DEFAULT_CONFIG "/etc/tlsfront/tlsfront.yaml"

int tf_cli_main(int argc, char **argv);
int tf_cmd_check(int argc, char **argv);
int tf_cmd_version(int argc, char **argv);
int tf_cmd_cert(int argc, char **argv);
int tf_cmd_run(int argc, char **argv);

/* Prints the usage text to `out`. */
void tf_cli_usage(FILE *out);

/* Parses `-c FILE`, `--config FILE` and `--config=FILE` from argv[1..].
 * Sets *path (pointing into argv, or the default). Returns 0, or
 * TF_EXIT_USAGE after printing what was wrong. */
int tf_cli_config_arg(int argc, char **argv, const char **path);

/* Loads the configuration at `path`; on failure prints every error
 * ("file:line:column: message") and a summary line to stderr. Returns 0 with
 * *conf holding a reference the caller drops with tf_conf_unref(), or the
 * loader's negative code. */
typedef struct tf_conf tf_conf_t;
int tf_cli_load_conf(const char *path, tf_conf_t **conf);

#endif
