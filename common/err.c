#include "common/err.h"

#include <errno.h>
#include <string.h>

const char *tf_strerror(int err)
{
    switch (err) {
#define TF_ERR_MSG(name, value, msg)                                                           \
    case name:                                                                                 \
        return msg;
        TF_ERRNO_MAP(TF_ERR_MSG)
#undef TF_ERR_MSG
    default:
        break;
    }
    /* libuv's UV_EOF (its own code, not an errno; common/ does not include
     * uv.h): the peer closed. */
    if (err == -4095)
        return "end of file";
    /* Anything else is a negative errno (libuv's UV_E* codes are the same values). */
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

const char *tf_err_name(int err)
{
    switch (err) {
#define TF_ERR_NAME(name, value, msg)                                                          \
    case name:                                                                                 \
        return #name;
        TF_ERRNO_MAP(TF_ERR_NAME)
#undef TF_ERR_NAME
    case -ENOENT:
        return "ENOENT";
    case -EACCES:
        return "EACCES";
    case -ENOMEM:
        return "ENOMEM";
    case -EINVAL:
        return "EINVAL";
    default:
        return "UNKNOWN";
    }
}
