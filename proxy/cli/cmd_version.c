#include "proxy/cli/cli.h"
#include "tls/tls.h"

#include <http_parser.h>
#include <jansson.h>
#include <uv.h>
#include <yaml.h>

#ifndef TF_VERSION
#define TF_VERSION "unknown"
#endif

int tf_cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "tlsfront version: takes no arguments\n");
        return TF_EXIT_USAGE;
    }
    unsigned long hp = http_parser_version();
    printf("tlsfront %s\n", TF_VERSION);
    printf("wolfSSL %s (%s)\n", tf_tls_library_version(), tf_tls_build_info());
    printf("wolfSSL assembly crypto: %s\n",
           tf_tls_has_fast_crypto() ? "yes (AES-NI, x86-64 SP math)"
                                    : "NO: generic C build, TLS will be slow");
    printf("libuv %s\n", uv_version_string());
    printf("http-parser %lu.%lu.%lu\n", (hp >> 16) & 255, (hp >> 8) & 255, hp & 255);
    printf("libyaml %s\n", yaml_get_version_string());
    printf("jansson %s\n", jansson_version_str());
    return TF_EXIT_OK;
}
