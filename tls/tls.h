/* tls/ — the wolfSSL wrapper.
 *
 * For now: library initialisation and build introspection for
 * `tlsfront version`. The TLS session layer (contexts, SNI callback, I/O
 * over memory buffers) joins this header with the front-door issue.
 */
#ifndef TF_TLS_TLS_H
#define TF_TLS_TLS_H

/* Initialises wolfSSL once per process; call before any other tf_tls_* or
 * certificate-store function. Returns 0 or TF_ETLS. Not thread-safe: call
 * from main before starting threads. */
int tf_tls_global_init(void) __attribute__((warn_unused_result));

/* Releases wolfSSL's global state at exit. */
void tf_tls_global_cleanup(void);

/* The linked wolfSSL's version, e.g. "5.5.4". Static string. */
const char *tf_tls_library_version(void);

/* How the linked wolfSSL was built: "bundled from Debian source VERSION:
 * FLAGS" or "system libwolfssl (...)". Static string. */
const char *tf_tls_build_info(void);

/* Whether the assembly code paths that make TLS fast (AES-NI, the x86-64
 * single-precision ECC/RSA code) are compiled in. 1 or 0. */
int tf_tls_has_fast_crypto(void);

#endif
