/* Shared by the conf test suites: load YAML text and look for errors. */
#ifndef TF_TESTS_CONF_HELPERS_H
#define TF_TESTS_CONF_HELPERS_H

#include "conf/conf.h"

#include <stdbool.h>
#include <stddef.h>

/* The name every buffer is loaded under, as it appears in messages. */
#define T_NAME "test.yaml"

/* The smallest valid configuration, to which tests prepend or append keys. */
#define T_LISTEN "listen:\n  https: [\"127.0.0.1:8443\"]\n"
#define T_TENANT "tenants:\n  t:\n    hosts: [\"a.example\"]\n    backends: [\"127.0.0.1:8080\"]\n"
#define T_MINIMAL T_LISTEN T_TENANT

/* Loads YAML, asserting success; the caller unrefs. */
tf_conf_t *t_load(const char *yaml);

/* Loads YAML, asserting failure with code RC; the errors go into ERR. */
void t_load_fail(const char *yaml, int rc, char *err, size_t len);

/* True when ERR has a line "test.yaml:LINE:COL: ..." containing SUB. */
bool t_has_error(const char *err, unsigned line, unsigned col, const char *sub);

/* Asserts YAML fails with TF_ECONF and an error at LINE:COL containing SUB. */
void t_expect_error(const char *yaml, unsigned line, unsigned col, const char *sub);

/* Number of lines in ERR. */
size_t t_count_lines(const char *err);

#endif
