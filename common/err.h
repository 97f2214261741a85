/* tlsfront error codes shared by every module.
 *
 * Convention: functions return int, 0 on success, a negative code on failure.
 * I/O failures use libuv's UV_E* codes (negative errno values); the project's
 * own codes below start at -10000 so the two never collide. Detail meant for
 * an operator goes into a caller-supplied buffer, not into the code.
 */
#ifndef TF_COMMON_ERR_H
#define TF_COMMON_ERR_H

/* X(name, value, message). Append only: the values are part of test output. */
#define TF_ERRNO_MAP(X)                                                                        \
    X(TF_ENOMEM, -10001, "out of memory")                                                      \
    X(TF_EINVAL, -10002, "invalid argument")                                                   \
    X(TF_ECONF, -10003, "invalid configuration")                                               \
    X(TF_EYAML, -10004, "YAML syntax error")                                                   \
    X(TF_EIO, -10005, "cannot read file")                                                      \
    X(TF_ECERT, -10006, "invalid certificate bundle")                                          \
    X(TF_ENOCERT, -10007, "no certificate")                                                    \
    X(TF_ENOKEY, -10008, "no private key")                                                     \
    X(TF_EKEYMISMATCH, -10009, "private key does not match the certificate")                  \
    X(TF_EKEYENCRYPTED, -10010, "private key is encrypted")                                    \
    X(TF_EUNSUPPORTED, -10011, "unsupported")                                                  \
    X(TF_ENOTFOUND, -10012, "not found")                                                       \
    X(TF_ETOOBIG, -10013, "too large")                                                         \
    X(TF_ETLS, -10014, "TLS error")                                                            \
    X(TF_EKEYMULTIPLE, -10015, "more than one private key")                                    \
    X(TF_EPUBLICWILDCARD, -10016, "wildcard on a public suffix")                               \
    X(TF_ECRYPTO, -10017, "cryptographic operation failed")                                    \
    X(TF_EACME, -10018, "the ACME server refused the request")

enum tf_err {
#define TF_ERR_ENUM(name, value, msg) name = (value),
    TF_ERRNO_MAP(TF_ERR_ENUM)
#undef TF_ERR_ENUM
};

/* Human-readable message for a project code or a negative errno/UV code.
 * The returned string is static; never free it. */
const char *tf_strerror(int err);

/* Symbolic name ("TF_ECONF", "ENOENT", ...) for logs and tests; static string. */
const char *tf_err_name(int err);

#endif
