/* Small helpers shared by proxy/'s files. */
#ifndef TF_PROXY_INTERNAL_H
#define TF_PROXY_INTERNAL_H

#include <stddef.h>

#define tf_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
