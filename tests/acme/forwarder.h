/* tests/acme: a TCP forwarder on 127.0.0.1 for the end-to-end scenarios, put
 * between pebble's validation authority and tlsfront's listen.http so that a
 * test decides when, and to which instance, a validation request goes.
 *
 * It listens on port 0 and runs on a thread of its own. Until a target is
 * set it holds every connection it accepts (the peer's bytes wait in the
 * socket); once tf_fwd_target() names a port, held and new connections are
 * each connected to 127.0.0.1:PORT and the bytes pumped both ways until
 * either side ends. Counts are kept per target port. Every wait has a bound;
 * tf_fwd_stop() closes everything and joins the thread (idempotent, also on
 * a zeroed or half-started forwarder), for the suite's fini. Failures of
 * the environment fail the running Criterion test. */
#ifndef TF_TESTS_ACME_FORWARDER_H
#define TF_TESTS_ACME_FORWARDER_H

#include <stdbool.h>

typedef struct tf_fwd tf_fwd_t;

/* A forwarder holding its connections; *PORT: where it listens. */
tf_fwd_t *tf_fwd_start(unsigned *port);

/* Forwards to 127.0.0.1:PORT from now on (held connections first); 0 holds
 * again. */
void tf_fwd_target(tf_fwd_t *f, unsigned port);

/* Waits up to MS until at least N connections were accepted in all. */
bool tf_fwd_wait_accepted(tf_fwd_t *f, unsigned n, int ms);

/* Connections accepted, and connections forwarded to PORT, so far. */
unsigned tf_fwd_accepted(tf_fwd_t *f);
unsigned tf_fwd_forwarded(tf_fwd_t *f, unsigned port);

/* Stops and frees F (NULL is ignored). */
void tf_fwd_stop(tf_fwd_t *f);

#endif
