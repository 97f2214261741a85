/* `tlsfront check`: whether the `user:` of a configuration can read the certificate sources
 * and the other files tlsfront reads again after it switches to that user (check_user.c).
 * Internal to proxy/cli. */
#ifndef TF_PROXY_CLI_CHECK_USER_H
#define TF_PROXY_CLI_CHECK_USER_H

#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER < 5
#error "proxy/cli is above this library (obs < http < net < ops < cli)"
#endif

#include "conf/conf.h"

#include <stddef.h>

/* With `user:` set, prints a warning to stderr for each of tls.certs (a directory: itself
 * and each bundle or key file in it), tls.default_cert, tls.ticket_keys_file,
 * admin.token_file and acme.storage (when the ACME client is on) that exists and that user
 * could not read (or write, for acme.storage), saying what to do; and an error, counted in
 * *errors, when the user does not exist. Returns the number of warnings. */
size_t tf_cli_check_user(const tf_conf_t *conf, size_t *errors);

#endif
