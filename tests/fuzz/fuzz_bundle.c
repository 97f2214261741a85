/* libFuzzer target for the bundle parser: untrusted bytes from admin uploads
 * (PUT /certs/NAME) and from whatever operators drop into the certificate
 * directories. A leading NUL byte splits the input into a bundle and a
 * separate key file, so that path is fuzzed too.
 *
 * Seeds (corpus/bundle/): structure seeds (truncated, garbled, mislabelled
 * blocks), public certificates, and bundles whose keys were generated for
 * the corpus alone (files named fuzz-only-*): no test or deployment uses
 * those keys. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certstore/certstore.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tf_cs_trust_t *trust;
static tf_cs_intern_t *intern;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    wolfSSL_Init();
    /* The public suffix list only: system roots would not change what is reached. */
    if (tf_cs_trust_load(NULL,
                         access(TF_CS_SYSTEM_PSL_FILE, R_OK) == 0 ? TF_CS_SYSTEM_PSL_FILE : NULL,
                         &trust) != 0 ||
        tf_cs_intern_new(&intern) != 0)
        abort();
    return 0;
}

/* Touches everything a caller reads, so a bad pointer shows up here. */
static size_t walk(const tf_cs_bundle_t *b)
{
    size_t n = strlen(tf_cs_bundle_subject(b)) + strlen(tf_cs_bundle_issuer(b)) +
               strlen(tf_cs_bundle_serial(b)) + strlen(tf_cs_bundle_sig_alg(b)) +
               strlen(tf_cs_bundle_key_desc(b)) + tf_cs_bundle_key_der(b).len;

    for (size_t i = 0; i < tf_cs_bundle_name_count(b); i++)
        n += strlen(tf_cs_bundle_name_at(b, i));
    for (size_t i = 0; i < tf_cs_bundle_bad_name_count(b); i++)
        n += strlen(tf_cs_bundle_bad_name_at(b, i));
    for (size_t i = 0; i < tf_cs_bundle_chain_len(b); i++) {
        tf_cs_der_t c = tf_cs_bundle_chain_at(b, i);

        n += c.len ? c.der[c.len - 1] : 0;
        n += strlen(tf_cs_bundle_chain_subject(b, i));
    }
    for (size_t i = 0; i < tf_cs_bundle_diag_count(b); i++)
        n += strlen(tf_cs_bundle_diag_at(b, i)->message);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_cs_load_opts_t opts = {.trust = trust, .intern = intern, .now = 1767225600};
    tf_cs_bundle_t *b = NULL;
    size_t split = size;
    int rc;

    /* A leading NUL selects "bundle NUL key-file"; anything else is one
     * bundle, so plain PEM files serve as seeds as they are. */
    if (size > 0 && data[0] == 0) {
        const uint8_t *nul = memchr(data + 1, '\0', size - 1);

        data++;
        size--;
        split = nul ? (size_t)(nul - data) : size;
    }
    rc = tf_cs_bundle_load_mem("fuzz.pem", data, split, split < size ? data + split + 1 : NULL,
                               split < size ? size - split - 1 : 0, &opts, &b);
    if (b) {
        volatile size_t sink = walk(b);

        (void)sink;
        if ((rc == 0) != (tf_cs_bundle_status(b) != TF_CS_ERROR))
            abort();
        if (rc == 0 && (tf_cs_bundle_chain_len(b) == 0 || tf_cs_bundle_key_der(b).len == 0))
            abort();
    } else if (rc != TF_ENOMEM) {
        abort();
    }
    tf_cs_bundle_unref(b);
    tf_cs_intern_sweep(intern);
    return 0;
}
