/* proxy/ the certificate watch (internal to reload.c): inotify through
 * uv_fs_event on the directories a change to the certificate sources can
 * show in, kept pointed at what the paths name now.
 *
 * A watch follows an inode, not a path, and sources are replaced in ways
 * that leave an old inode behind: a directory swapped whole (`rm -rf certs;
 * mv certs.new certs`), a Kubernetes secret volume (files are symlinks
 * through `..data`, a symlink renamed over to a new timestamped directory), a
 * symlink into another directory whose file is replaced (certbot's
 * live/ -> archive/). So the watch covers, for each source:
 *   - its directory (a file source's parent): every entry but plain dotfiles,
 *     which are temporary files; a dot-named directory or link to one is a
 *     `..data`-style swap and counts;
 *   - the parent of that directory, for entries of the directory's own name
 *     (replaced, renamed, created later);
 *   - the directory of each symlinked bundle's target.
 * tf_watch_sync() recomputes that set and re-arms every watch whose path now
 * names another inode; reload.c calls it around every rebuild (so SIGHUP and
 * each change re-arm it), which is what makes the watch survive
 * replacements. */
#ifndef TF_PROXY_WATCH_H
#define TF_PROXY_WATCH_H

/* Internal to proxy/ops (and its tests): other libraries include
 * proxy/ops/ops.h. */
#if defined(TF_PROXY_LAYER) && TF_PROXY_LAYER != 4 && !defined(TF_PROXY_OPS_PUBLIC)
#error "internal to proxy/ops: include proxy/ops/ops.h"
#endif

#include "conf/conf.h"

#include <uv.h>

/* At most this many directories are watched; the periodic re-check covers
 * the rest (logged once per sync that drops some). */
#define TF_WATCH_MAX 128

typedef struct tf_watch tf_watch_t;

/* A change that may concern a source: `dir` is the watched directory, `name`
 * the entry that changed (both valid during the call). Loop thread. */
typedef void (*tf_watch_cb)(void *arg, const char *dir, const char *name);

/* A watch with nothing armed yet; aborts on out of memory (start-up). */
tf_watch_t *tf_watch_new(uv_loop_t *loop, tf_watch_cb cb, void *arg);

/* Arms the watches for conf's tls.certs and tls.default_cert: keeps those
 * whose directory is still the same inode, re-arms the others, closes those
 * no longer needed. Stats each source and reads each source directory (for
 * its symlinks): cheap next to the rebuild it accompanies. */
void tf_watch_sync(tf_watch_t *w, const tf_conf_t *conf);

/* Closes every watch and frees w (the handles after their close callbacks);
 * NULL is a no-op. */
void tf_watch_free(tf_watch_t *w);

#endif
