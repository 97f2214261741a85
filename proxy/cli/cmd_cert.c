/* tlsfront cert [--json] FILE...: what the store would make of each bundle
 * (SPEC §4.3). Exit 0 when every bundle is usable (OK or WARN), 1 when one is
 * rejected, 2 for usage errors. */
#include "proxy/cli/cli.h"
#include "proxy/ops/ops.h"

#include "certstore/certstore.h"
#include "tls/tls.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void format_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (t == 0 || gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
}

static const char *severity_word(tf_cs_severity_t sev)
{
    return sev == TF_CS_FATAL ? "error" : sev == TF_CS_WARNING ? "warning" : "note";
}

static void print_text(FILE *out, const tf_cs_bundle_t *b, time_t now)
{
    char nb[32], na[32];
    fprintf(out, "%s: %s\n", tf_cs_bundle_name(b), tf_cs_status_name(tf_cs_bundle_status(b)));
    if (tf_cs_bundle_chain_len(b) > 0) {
        fprintf(out, "  subject:   %s\n", tf_cs_bundle_subject(b));
        fprintf(out, "  names:    ");
        for (size_t i = 0; i < tf_cs_bundle_name_count(b); i++)
            fprintf(out, "%s %s", i ? "," : "", tf_cs_bundle_name_at(b, i));
        fputc('\n', out);
        fprintf(out, "  chain:     (as served, leaf first)\n");
        for (size_t i = 0; i < tf_cs_bundle_chain_len(b); i++)
            fprintf(out, "    %zu. %s\n", i + 1, tf_cs_bundle_chain_subject(b, i));
        fprintf(out, "  issuer:    %s\n", tf_cs_bundle_issuer(b));
        fprintf(out, "  serial:    %s\n", tf_cs_bundle_serial(b));
        fprintf(out, "  key:       %s\n", tf_cs_bundle_key_desc(b));
        fprintf(out, "  signature: %s\n", tf_cs_bundle_sig_alg(b));
        format_time(tf_cs_bundle_not_before(b), nb, sizeof nb);
        format_time(tf_cs_bundle_not_after(b), na, sizeof na);
        fprintf(out, "  valid:     %s to %s (%ld days left)\n", nb, na,
                tf_cs_bundle_days_left(b, now));
    }
    for (size_t i = 0; i < tf_cs_bundle_diag_count(b); i++) {
        const tf_cs_diag_t *d = tf_cs_bundle_diag_at(b, i);
        fprintf(out, "  %s: %s\n", severity_word(d->severity), d->message);
    }
}

/* One bundle's object, in the order SPEC §4.3 lists its parts. */
static json_t *bundle_json(const tf_cs_bundle_t *b, time_t now)
{
    bool has = tf_cs_bundle_chain_len(b) > 0;
    json_t *o = json_object();
    int rc = json_object_set_new(o, "file", tf_json_text(tf_cs_bundle_name(b)));
    rc |= json_object_set_new(o, "status", tf_json_text(tf_cs_status_name(tf_cs_bundle_status(b))));
    rc |= json_object_set_new(o, "subject", tf_json_text(tf_cs_bundle_subject(b)));
    rc |= json_object_set_new(o, "issuer", tf_json_text(tf_cs_bundle_issuer(b)));
    rc |= json_object_set_new(o, "serial", tf_json_text(tf_cs_bundle_serial(b)));
    rc |= json_object_set_new(o, "names",
                              tf_json_strings(b, tf_cs_bundle_name_count(b), tf_cs_bundle_name_at));
    rc |= json_object_set_new(
        o, "invalid_names",
        tf_json_strings(b, tf_cs_bundle_bad_name_count(b), tf_cs_bundle_bad_name_at));
    rc |= json_object_set_new(
        o, "chain", tf_json_strings(b, tf_cs_bundle_chain_len(b), tf_cs_bundle_chain_subject));
    rc |= json_object_set_new(o, "key", tf_json_key_info(b));
    rc |= json_object_set_new(o, "signature", tf_json_text(tf_cs_bundle_sig_alg(b)));
    rc |= json_object_set_new(o, "not_before",
                              has ? tf_json_time(tf_cs_bundle_not_before(b)) : json_null());
    rc |= json_object_set_new(o, "not_after",
                              has ? tf_json_time(tf_cs_bundle_not_after(b)) : json_null());
    rc |= json_object_set_new(o, "days_left",
                              has ? json_integer(tf_cs_bundle_days_left(b, now)) : json_null());
    rc |= json_object_set_new(o, "warnings", tf_json_diags(b, TF_CS_WARNING));
    rc |= json_object_set_new(o, "errors", tf_json_diags(b, TF_CS_FATAL));
    rc |= json_object_set_new(o, "notes", tf_json_diags(b, TF_CS_INFO));
    return tf_json_checked(o, rc);
}

static int parse_args(int argc, char **argv, bool *json, int *first)
{
    *json = false;
    *first = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            *json = true;
        } else if (strcmp(argv[i], "--") == 0) {
            *first = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "tlsfront cert: unknown option '%s'; see 'tlsfront --help'\n",
                    argv[i]);
            return TF_EXIT_USAGE;
        } else {
            *first = i;
            break;
        }
    }
    if (*first >= argc) {
        fputs("tlsfront cert: name at least one bundle: tlsfront cert [--json] FILE...\n",
              stderr);
        return TF_EXIT_USAGE;
    }
    return 0;
}

/* The array of bundles as one JSON document (takes list; NULL: out of
 * memory). */
static int print_json(json_t *list, int status)
{
    size_t len = 0;
    char *text = tf_json_dump(list, &len);
    if (text == NULL) {
        fputs("tlsfront cert: out of memory\n", stderr);
        return TF_EXIT_PROBLEMS;
    }
    fwrite(text, 1, len, stdout);
    free(text);
    return status;
}

/* Each bundle's text as it loads, or with json one array of them at the
 * end (NULL list: out of memory, reported once). */
static int print_bundles(int argc, char **argv, int first, bool json, const tf_cs_trust_t *trust)
{
    time_t now = time(NULL);
    tf_cs_load_opts_t opts = {.trust = trust, .now = now};
    int status = TF_EXIT_OK;
    size_t printed = 0;
    json_t *list = json ? json_array() : NULL;
    for (int i = first; i < argc; i++) {
        tf_cs_bundle_t *b = NULL;
        int lrc = tf_cs_bundle_load_file(argv[i], &opts, &b);
        if (b == NULL) {
            fprintf(stderr, "%s: %s\n", argv[i], tf_strerror(lrc));
            status = TF_EXIT_PROBLEMS;
            continue;
        }
        if (tf_cs_bundle_status(b) == TF_CS_ERROR)
            status = TF_EXIT_PROBLEMS;
        if (!json) {
            if (printed++ > 0)
                fputc('\n', stdout);
            print_text(stdout, b, now);
        } else if (json_array_append_new(list, bundle_json(b, now)) != 0) {
            json_decref(list);
            list = NULL;
        }
        tf_cs_bundle_unref(b);
    }
    if (json)
        status = print_json(list, status);
    return status;
}

int tf_cmd_cert(int argc, char **argv)
{
    bool json;
    int first;
    int rc = parse_args(argc, argv, &json, &first);
    if (rc != 0)
        return rc;
    if (tf_tls_global_init() != 0) {
        fputs("tlsfront cert: cannot initialise wolfSSL\n", stderr);
        return TF_EXIT_PROBLEMS;
    }
    /* Without the system roots bundles still load; only telling a missing
     * intermediate from a root gets coarser. */
    bool have_ca = access(TF_CS_SYSTEM_CA_FILE, R_OK) == 0;
    bool have_psl = access(TF_CS_SYSTEM_PSL_FILE, R_OK) == 0;
    if (!have_ca)
        fprintf(stderr, "tlsfront cert: %s: the system trust store is missing: 'missing "
                        "intermediate' warnings cannot tell roots apart; install "
                        "ca-certificates\n",
                TF_CS_SYSTEM_CA_FILE);
    tf_cs_trust_t *trust = NULL;
    rc = tf_cs_trust_load(have_ca ? TF_CS_SYSTEM_CA_FILE : NULL,
                          have_psl ? TF_CS_SYSTEM_PSL_FILE : NULL, &trust);
    if (rc != 0) {
        fprintf(stderr, "tlsfront cert: cannot read %s or %s: %s\n", TF_CS_SYSTEM_CA_FILE,
                TF_CS_SYSTEM_PSL_FILE, tf_strerror(rc));
        rc = TF_EXIT_PROBLEMS;
    } else {
        rc = print_bundles(argc, argv, first, json, trust);
    }
    tf_cs_trust_free(trust);
    tf_tls_global_cleanup();
    return rc;
}
