/* The certificate store proper: the files of `tls.certs` and `tls.default_cert`
 * turned into immutable, reference-counted snapshots with an SNI index
 * (SPEC §4.4, §4.5). Part of certstore/'s public API.
 *
 * Objects:
 *   tf_cs_store_t     the builder: sources, the system trust data, the table of
 *                     shared intermediates, and the last snapshot it built (the
 *                     base of the next, incremental, build). One thread at a
 *                     time may build; building never touches a published
 *                     snapshot.
 *   tf_cs_snapshot_t  what the TLS layer reads: every file's entry, the SNI
 *                     index, the default certificate. Immutable; any number of
 *                     threads may read it at once without locks while holding
 *                     a reference.
 *   tf_cs_entry_t     one file: its identity (device, inode, size, mtime, and
 *                     those of a sibling NAME.key), the bundle it serves (its
 *                     last good version) and the latest parse if that failed.
 *                     Shared between snapshots while the file is unchanged.
 */
#ifndef TF_CERTSTORE_STORE_H
#define TF_CERTSTORE_STORE_H

#include "certstore/certstore.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct tf_cs_store tf_cs_store_t;
typedef struct tf_cs_snapshot tf_cs_snapshot_t;
typedef struct tf_cs_entry tf_cs_entry_t;

typedef struct {
    const char *const *sources; /* files or directories of bundles (tls.certs) */
    size_t nsources;
    const char *default_cert;   /* the system certificate; may lie inside a source */
    unsigned threads;           /* parser threads per build; 0: one per core */
    const char *ca_file;        /* trust roots; NULL: TF_CS_SYSTEM_CA_FILE */
    const char *psl_file;       /* public suffixes; NULL: TF_CS_SYSTEM_PSL_FILE if present */
} tf_cs_store_opts_t;

/* Creates a store; copies what it needs from opts. Loads the system trust
 * data once; when the system CA file is missing (and none was named) it goes
 * on without roots and every snapshot notes it. *out is freed with
 * tf_cs_store_free(). Returns 0, TF_ENOMEM, or -errno when a named ca_file or
 * psl_file cannot be read. Builds nothing yet. */
TF_CS_MUST_CHECK int tf_cs_store_new(const tf_cs_store_opts_t *opts, tf_cs_store_t **out);

/* Frees the store and its reference to the last snapshot; snapshots handed
 * out keep living until their last reference goes. */
void tf_cs_store_free(tf_cs_store_t *store);

/* Scans the sources and builds a new snapshot at time `now` (0: time(NULL)).
 * Files whose identity has not changed since the last build keep their entry
 * without being read, unless one of their dates (valid from, 30 days before
 * expiry, expiry) passed since; changed and new files are parsed on
 * `threads` threads.
 * A file that now fails keeps its last good bundle in service. A build that
 * would leave no usable default certificate keeps the previous one.
 * On success *out holds one reference for the caller (the store keeps its
 * own) and 0 is returned, even when some files failed: the snapshot says
 * which. TF_ENOMEM is the only failure. */
TF_CS_MUST_CHECK int tf_cs_store_build(tf_cs_store_t *store, time_t now,
                                       tf_cs_snapshot_t **out);

/* Totals over the store's life, for metrics and tests. */
typedef struct {
    unsigned long builds;
    unsigned long files_parsed;   /* bundle loads performed */
    unsigned long files_reused;   /* unchanged files not re-read */
} tf_cs_store_stats_t;
tf_cs_store_stats_t tf_cs_store_stats(const tf_cs_store_t *store);

/* ---- snapshots ----------------------------------------------------------- */

tf_cs_snapshot_t *tf_cs_snapshot_ref(tf_cs_snapshot_t *snap);
void tf_cs_snapshot_unref(tf_cs_snapshot_t *snap);

typedef enum {
    TF_CS_SEL_EXACT = 1,    /* a certificate name equals the SNI */
    TF_CS_SEL_WILDCARD,     /* a one-label wildcard covers the SNI */
    TF_CS_SEL_DEFAULT,      /* SNI given, nothing covers it: the default certificate */
    TF_CS_SEL_NO_SNI,       /* no SNI at all: the default certificate */
} tf_cs_selection_t;

/* The bundle to serve for a client's SNI (`sni` of `len` bytes as received,
 * or NULL for no SNI), and how it was chosen. Normalizes into a stack buffer;
 * no allocation, no lock, no I/O: safe in the TLS SNI callback. Returns the
 * default certificate for TF_CS_SEL_DEFAULT and TF_CS_SEL_NO_SNI (whether to
 * reject an unknown name instead is the caller's policy), or NULL when the
 * snapshot has no default. Valid while the caller holds the snapshot. */
const tf_cs_bundle_t *tf_cs_snapshot_select(const tf_cs_snapshot_t *snap, const char *sni,
                                            size_t len, tf_cs_selection_t *how);

/* The default certificate's bundle, or NULL when there is none (only when no
 * build ever loaded it). */
const tf_cs_bundle_t *tf_cs_snapshot_default(const tf_cs_snapshot_t *snap);

/* The earliest time after the build at which a certificate in service
 * becomes valid, enters its last 30 days, or expires: a rebuild then (files
 * unchanged or not) may select differently (SPEC §4.4 rule 5) and re-judges
 * those bundles. 0 when no such date lies ahead. The caller schedules it. */
time_t tf_cs_snapshot_next_change(const tf_cs_snapshot_t *snap);

/* The default certificate's entry (possibly kept from an earlier build after
 * its file vanished, so not always among the entries), or NULL. */
const tf_cs_entry_t *tf_cs_snapshot_default_entry(const tf_cs_snapshot_t *snap);

/* Does some certificate of the snapshot (the default included) cover this
 * host pattern as written in a tenant's hosts: an exact name, or "*.base"
 * meaning a certificate carries that same wildcard. "*" is always covered. */
bool tf_cs_snapshot_covers(const tf_cs_snapshot_t *snap, const char *host_pattern);

/* Entries, sorted by path. */
size_t tf_cs_snapshot_entry_count(const tf_cs_snapshot_t *snap);
const tf_cs_entry_t *tf_cs_snapshot_entry_at(const tf_cs_snapshot_t *snap, size_t i);

/* Store-level notes in build order, "PATH: reason: what to do": errors (a
 * source that cannot be read, no usable default certificate, a default kept
 * from an earlier build because its file is gone) and information (names
 * claimed by several certificates and which one wins, a rejected new version
 * while the last good one stays in service). *is_error (may be NULL) says
 * which. The string lives as long as the snapshot. */
size_t tf_cs_snapshot_note_count(const tf_cs_snapshot_t *snap);
const char *tf_cs_snapshot_note_at(const tf_cs_snapshot_t *snap, size_t i, bool *is_error);

/* Which configured path note I is about, so that the caller can say where it
 * configured it (certstore knows nothing of where sources come from): the
 * index into opts.sources of a source that cannot be read (missing,
 * unreadable, not a file or a directory), TF_CS_NOTE_DEFAULT_CERT for
 * opts.default_cert when it gives no usable default certificate, else
 * TF_CS_NOTE_OTHER (a file found in a source, names, the trust store; and
 * any I out of range). The text does not change. */
#define TF_CS_NOTE_OTHER ((size_t)-1)
#define TF_CS_NOTE_DEFAULT_CERT ((size_t)-2)
size_t tf_cs_snapshot_note_source(const tf_cs_snapshot_t *snap, size_t i);

/* Whether entry I was carried over from the previous build because its
 * source could not be read now (a directory gone or unreadable): its file
 * may no longer exist, and what is served is the version loaded earlier.
 * Returns that source's note ("PATH: reason: what to do", living as long as
 * the snapshot), or NULL for an entry read from its source by this build
 * (or I out of range). */
const char *tf_cs_snapshot_entry_unread(const tf_cs_snapshot_t *snap, size_t i);

typedef struct {
    size_t files;          /* entries in the snapshot */
    size_t parsed;         /* read and parsed by this build */
    size_t reused;         /* unchanged since the previous build, not read */
    size_t failed;         /* whose latest version is rejected */
    size_t kept_last_good; /* failed but still serving an earlier version */
    size_t served;         /* entries with a bundle in service */
    size_t names;          /* distinct exact names + wildcard bases indexed */
} tf_cs_snapshot_stats_t;
tf_cs_snapshot_stats_t tf_cs_snapshot_stats(const tf_cs_snapshot_t *snap);

/* ---- entries ------------------------------------------------------------- */

const char *tf_cs_entry_path(const tf_cs_entry_t *e);
/* The bundle in service for this file, or NULL if it never loaded. */
const tf_cs_bundle_t *tf_cs_entry_served(const tf_cs_entry_t *e);
/* The latest parse when it was rejected (its diagnostics say why), else NULL. */
const tf_cs_bundle_t *tf_cs_entry_failed(const tf_cs_entry_t *e);
/* The bundle whose diagnostics describe the file as it is now: the failed
 * parse if any, else the served one. */
const tf_cs_bundle_t *tf_cs_entry_latest(const tf_cs_entry_t *e);

#endif
