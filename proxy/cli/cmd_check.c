/* tlsfront check [-c FILE]: the configuration, then every certificate source
 * as the store would load it, then whether each tenant host has a
 * certificate, then the files the ACME client would use. Exit 0 when
 * nothing is wrong (warnings are printed but allowed, as with `haproxy -c`),
 * 1 when the configuration has errors, a bundle is rejected, a source or
 * another named file cannot be used or there is no usable default
 * certificate. */
#include "proxy/cli/cli.h"
#include "proxy/cli/check_user.h"

#include "acme/acme.h"
#include "certstore/store.h"
#include "common/err.h"
#include "conf/conf.h"
#include "proxy/ops/ops.h"
#include "tls/tls.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t bundles, warned, rejected, errors;
} tally_t;

static void report_bundle(const tf_cs_entry_t *e, tally_t *t)
{
    const tf_cs_bundle_t *b = tf_cs_entry_latest(e);
    if (b == NULL)
        return;
    t->bundles++;
    t->warned += tf_cs_bundle_status(b) == TF_CS_WARN;
    t->rejected += tf_cs_bundle_status(b) == TF_CS_ERROR;
    for (size_t i = 0; i < tf_cs_bundle_diag_count(b); i++) {
        const tf_cs_diag_t *d = tf_cs_bundle_diag_at(b, i);
        if (d->severity == TF_CS_INFO)
            continue;
        fprintf(stderr, "%s: %s\n", d->severity == TF_CS_FATAL ? "error" : "warning", d->message);
    }
}

/* A source that cannot be read and an unusable default certificate are
 * about the configuration's own values: say where they are written. */
static void report_notes(const tf_conf_t *conf, const tf_cs_snapshot_t *snap, tally_t *t)
{
    char where[TF_WHERE_MAX];
    for (size_t i = 0; i < tf_cs_snapshot_note_count(snap); i++) {
        bool is_error = false;
        const char *msg = tf_cs_snapshot_note_at(snap, i, &is_error);
        fprintf(stderr, "%s: %s%s\n", is_error ? "error" : "note",
                tf_where_note(conf, snap, i, where), msg);
        t->errors += is_error;
    }
}

/* A host no certificate covers gets the default certificate, which browsers
 * reject: worth a warning naming what clients would see. */
static void report_uncovered(const tf_conf_t *conf, const tf_cs_snapshot_t *snap)
{
    const tf_cs_bundle_t *def = tf_cs_snapshot_default(snap);
    for (size_t i = 0; i < tf_conf_tenant_count(conf); i++) {
        const tf_conf_tenant_t *t = tf_conf_tenant(conf, i);
        for (size_t h = 0; h < t->hosts.count; h++) {
            const char *host = t->hosts.items[h];
            if (tf_cs_snapshot_covers(snap, host))
                continue;
            fprintf(stderr,
                    "warning: %s:%u:%u: tenant '%s': no certificate covers '%s': clients "
                    "asking for it get the default certificate %s (%s), which does not "
                    "match it; add a bundle for '%s' to tls.certs\n",
                    tf_conf_source(conf), t->line, t->column, t->name, host,
                    def ? tf_cs_bundle_name(def) : "(none)",
                    def ? tf_cs_bundle_subject(def) : "no default loaded", host);
        }
    }
}

static int check_certs(const tf_conf_t *conf, tally_t *t)
{
    const tf_conf_tls_t *tls = tf_conf_tls(conf);
    tf_cs_store_opts_t opts = {
        .sources = tls->certs.items,
        .nsources = tls->certs.count,
        .default_cert = tls->default_cert,
    };
    tf_cs_store_t *store = NULL;
    tf_cs_snapshot_t *snap = NULL;
    int rc = tf_cs_store_new(&opts, &store);
    if (rc == 0)
        rc = tf_cs_store_build(store, 0, &snap);
    if (rc != 0) {
        fprintf(stderr, "error: cannot load the certificate store: %s\n", tf_strerror(rc));
        tf_cs_store_free(store);
        return rc;
    }
    for (size_t i = 0; i < tf_cs_snapshot_entry_count(snap); i++)
        report_bundle(tf_cs_snapshot_entry_at(snap, i), t);
    report_notes(conf, snap, t);
    report_uncovered(conf, snap);
    tf_cs_snapshot_unref(snap);
    tf_cs_store_free(store);
    return 0;
}

/* The rule `run` enforces when it binds the admin API (proxy/admin.c):
 * off loopback, a token is required. */
static void check_admin(const tf_conf_t *conf, tally_t *t)
{
    const tf_conf_admin_t *a = tf_conf_admin(conf);
    if (!a->enabled || a->token_file != NULL)
        return;
    const char *h = a->listen.host;
    bool loopback = a->listen.family == TF_CONF_ADDR_IPV4   ? strncmp(h, "127.", 4) == 0
                    : a->listen.family == TF_CONF_ADDR_IPV6 ? strcmp(h, "::1") == 0
                                                            : strcmp(h, "localhost") == 0;
    if (loopback)
        return;
    fprintf(stderr,
            "error: admin.listen %s is not a loopback address and admin.token_file is not set: "
            "tlsfront run refuses this (anyone who reaches the admin API could replace "
            "certificates); set admin.token_file or listen on 127.0.0.1\n",
            a->listen.text);
    t->errors++;
}

/* The other files run reads at start-up and refuses to start without: the
 * ticket keys file (proxy/cmd_run.c) and the admin token file
 * (proxy/admin.c), with the same messages. The access log is not opened
 * here: that would create it. */
static void check_files(const tf_conf_t *conf, tally_t *t)
{
    char err[TF_WHERE_MAX + 1024], where[TF_WHERE_MAX];
    const char *keys = tf_conf_tls(conf)->ticket_keys_file;
    if (keys != NULL) {
        tf_tls_tickets_t *tickets = NULL;
        int rc = tf_tls_tickets_new(keys, 0, &tickets, err, sizeof err);
        tf_tls_tickets_unref(tickets);
        if (rc != 0) {
            fprintf(stderr, "error: %s%s\n",
                    tf_where_is_errno(rc) ? tf_where(conf, "tls.ticket_keys_file", 0, where) : "",
                    err);
            t->errors++;
        }
    }
    if (tf_conf_admin(conf)->enabled && tf_admin_check_token(conf, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        t->errors++;
    }
}

/* A TLS backend's CA file (tls_verify: PATH, SPEC §14) holds certificates
 * wolfSSL loads: the loader only saw that it is readable. */
static void check_backend_ca(const tf_conf_t *conf, const tf_conf_backend_t *b, tally_t *t)
{
    if (!b->tls || b->verify != TF_CONF_VERIFY_FILE)
        return;
    char err[1024];
    tf_tls_client_ctx_t *c = NULL;
    tf_tls_client_opts_t o = {.verify = true, .ca_file = b->ca_file};
    if (tf_tls_client_ctx_new(&o, &c, err, sizeof err) == 0) {
        tf_tls_client_ctx_free(c);
        return;
    }
    fprintf(stderr, "error: %s:%u:%u: backend '%s': tls_verify: %s\n", tf_conf_source(conf),
            b->line, b->column, b->addr.text, err);
    t->errors++;
}

static void check_backends(const tf_conf_t *conf, tally_t *t)
{
    for (size_t i = 0; i < tf_conf_tenant_count(conf); i++) {
        const tf_conf_tenant_t *ct = tf_conf_tenant(conf, i);
        for (size_t r = 0; r < ct->nroutes; r++) {
            const tf_conf_backend_list_t *l = &ct->routes[r].backends;
            /* A route that inherits the tenant's list shares its items. */
            if (r > 0 && l->items == ct->routes[0].backends.items)
                continue;
            for (size_t b = 0; b < l->count; b++)
                check_backend_ca(conf, &l->items[b], t);
        }
    }
}

/* An error about a path the acme section names: located when it is about
 * the path itself (-errno, or any storage problem), in the file's own form
 * when it is about what the file holds. */
static void report_acme(const tf_conf_t *conf, const char *key, int rc, bool about_path,
                        const char *err, tally_t *t)
{
    char where[TF_WHERE_MAX];
    if (rc == 0)
        return;
    fprintf(stderr, "error: %s%s\n",
            about_path || tf_where_is_errno(rc) ? tf_where(conf, key, 0, where) : "", err);
    t->errors++;
}

/* What the ACME client (SPEC §13) would trip over at its first order, said
 * now: the EAB key and the CA file whenever they are set, the storage
 * directory when the client is on (its default path is no concern of a
 * configuration without acme.directory). */
static void check_acme(const tf_conf_t *conf, tally_t *t)
{
    const tf_conf_acme_t *a = tf_conf_acme(conf);
    char err[TF_WHERE_MAX + 1024], where[TF_WHERE_MAX];
    if (a->eab.hmac_key_file != NULL) {
        unsigned char key[TF_ACME_EAB_KEY_MAX];
        size_t len = 0;
        int rc = tf_acme_eab_key_read(a->eab.hmac_key_file, key, &len, err, sizeof err);
        explicit_bzero(key, sizeof key);
        report_acme(conf, "acme.eab.hmac_key_file", rc, false, err, t);
    }
    if (a->ca_file != NULL)
        report_acme(conf, "acme.ca_file", tf_acme_check_ca_file(a->ca_file, err, sizeof err), false,
                    err, t);
    if (a->directory == NULL)
        return;
    bool warn = false;
    int rc = tf_acme_check_storage(a->storage, &warn, err, sizeof err);
    report_acme(conf, "acme.storage", rc, true, err, t);
    if (rc == 0 && warn)
        fprintf(stderr, "warning: %s%s\n", tf_where(conf, "acme.storage", 0, where), err);
}

int tf_cmd_check(int argc, char **argv)
{
    const char *path;
    int rc = tf_cli_config_arg(argc, argv, &path);
    if (rc != 0)
        return rc;
    tf_conf_t *conf = NULL;
    if (tf_cli_load_conf(path, &conf) != 0)
        return TF_EXIT_PROBLEMS;

    tally_t t = {0};
    check_admin(conf, &t);
    rc = tf_tls_global_init();
    if (rc == 0) {
        rc = check_certs(conf, &t);
        check_files(conf, &t);
        check_backends(conf, &t);
        check_acme(conf, &t);
        tf_cli_check_user(conf, &t.errors);
        tf_tls_global_cleanup();
    }
    tf_conf_unref(conf);
    if (rc != 0 || t.rejected > 0 || t.errors > 0) {
        fprintf(stderr, "%s: %zu certificate bundles, %zu rejected; %zu other errors\n", path,
                t.bundles, t.rejected, t.errors);
        return TF_EXIT_PROBLEMS;
    }
    printf("%s: configuration OK; %zu certificate bundles (%zu with warnings)\n", path, t.bundles,
           t.warned);
    return TF_EXIT_OK;
}
