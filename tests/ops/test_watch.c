/* The certificate watch through replaced directories and symlinks (issue 13,
 * item 4): a directory swapped whole, a Kubernetes secret volume's `..data`
 * swap, certbot's live/ -> archive/ links, a link into another directory,
 * and SIGHUP re-arming a watch whose directory moved away.
 *
 * A change is shown to come through the watch, not the periodic re-check
 * (every 10 s, which would serve it too, only later): the proxy logs each
 * change its watch sees ("certificate watch: DIR: NAME changed", debug), and
 * the test waits for that line with a bound, never for a time. */
#include "ops.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tf_ops_t ops;

static void teardown(void)
{
    tf_ops_stop(&ops);
}

TestSuite(ops_watch, .fini = teardown, .timeout = 180);

/* Runs a shell command (set -e) made from the format; fails the test if it
 * fails. */
static void sh(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sh(const char *what, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st;
    char *out = tf_px_sh(&st, "set -e; %s", cmd);
    tf_px_sh_ok(what, out, st);
}

/* Waits for the watch's line about NAME in DIR (as the configuration names
 * it; a link's target directory as realpath() resolves it). */
static bool watch_saw(const char *dir, const char *name, unsigned count)
{
    char needle[PATH_MAX + 300];
    snprintf(needle, sizeof needle, "certificate watch: %s: %s changed", dir, name);
    return tf_ops_wait_log(&ops, needle, count, 15);
}

/* Waits until DIR has been (re-)armed COUNT times: a change made after that
 * is surely seen by the watch. */
static bool watching(const char *dir, unsigned count)
{
    char needle[PATH_MAX + 300];
    snprintf(needle, sizeof needle, "watching %s\n", dir);
    return tf_ops_wait_log(&ops, needle, count, 15);
}

/* The serial the default certificate shows (what a name no bundle covers
 * gets). */
static char *default_serial(void)
{
    char *s = tf_ops_serial(&ops, "nobody.example");
    cr_assert_neq(s[0], '\0');
    return s;
}

/* Adds DIR to tls.certs and reloads with SIGHUP; waits until SNI serves
 * SERIAL. */
static void add_source(const char *dir, const char *sni, const char *serial)
{
    snprintf(ops.extra_certs, sizeof ops.extra_certs, "%s", dir);
    tf_ops_write_config(&ops, NULL, NULL);
    kill(ops.px.proxy_pid, SIGHUP);
    cr_assert(tf_ops_wait_serial(&ops, sni, serial, 15), "%s does not serve %s", sni, serial);
    cr_assert(watching(dir, 1), "%s is not watched", dir);
}

/* `cp -a certs certs.new; rm -rf certs; mv certs.new certs`: the watch on
 * the old directory is gone with it; the parent's watch sees the new one
 * arrive and the watch follows it, so a bundle added or removed later is
 * seen at once. */
Test(ops_watch, a_replaced_directory_stays_watched)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    char *fallback = default_serial();
    sh("replace certs", "cd '%s' && cp -a certs certs.new && rm -rf certs && mv certs.new certs",
       ops.px.tmp);
    cr_assert(watch_saw(ops.px.tmp, "certs", 1), "the replacement was not seen");
    cr_assert(watching(ops.certs, 2), "the new directory is not watched");
    /* A new bundle in the new directory. */
    char tmp[1400], dst[1400];
    snprintf(tmp, sizeof tmp, "%s/shop.pem", ops.px.tmp);
    snprintf(dst, sizeof dst, "%s/shop.pem", ops.certs);
    char *serial = tf_ops_issue(&ops, tmp, "new", "shop.example");
    cr_assert_eq(rename(tmp, dst), 0);
    cr_expect(watch_saw(ops.certs, "shop.pem", 1), "the new directory is not watched");
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", serial, 15));
    /* Removed: no longer served. */
    cr_assert_eq(unlink(dst), 0);
    cr_expect(watch_saw(ops.certs, "shop.pem", 2));
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", fallback, 15),
              "a removed bundle is still served");
    free(serial);
    free(fallback);
}

/* A Kubernetes secret volume: the files are links through `..data`, a link
 * to a timestamped directory; an update writes a new directory, points
 * `..data_tmp` at it and renames that over `..data`, then removes the old
 * directory. Every name involved starts with a dot. */
Test(ops_watch, a_kubernetes_data_swap_is_seen)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    char *fallback = default_serial();
    char vol[1400], path[1500];
    snprintf(vol, sizeof vol, "%s/k8s", ops.px.tmp);
    snprintf(path, sizeof path, "%s/..2026_12_07_a", vol);
    sh("make volume", "mkdir -p '%s'", path);
    snprintf(path, sizeof path, "%s/..2026_12_07_a/shop.pem", vol);
    char *first = tf_ops_issue(&ops, path, "new", "shop.example");
    sh("link volume", "cd '%s' && ln -s ..2026_12_07_a ..data && ln -s ..data/shop.pem shop.pem",
       vol);
    add_source(vol, "shop.example", first);
    /* The update. */
    snprintf(path, sizeof path, "%s/..2026_12_07_b", vol);
    sh("new data", "mkdir '%s'", path);
    snprintf(path, sizeof path, "%s/..2026_12_07_b/shop.pem", vol);
    char *second = tf_ops_issue(&ops, path, "new", "shop.example");
    sh("swap",
       "cd '%s' && ln -s ..2026_12_07_b ..data_tmp && mv -T ..data_tmp ..data && rm -rf "
       "..2026_12_07_a",
       vol);
    cr_expect(watch_saw(vol, "..data", 1), "the ..data swap was not seen");
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", second, 15));
    /* The key removed from the secret: a new directory without it, and its
     * link removed. */
    snprintf(path, sizeof path, "%s/..2026_12_07_c", vol);
    sh("empty data", "mkdir '%s'", path);
    sh("swap",
       "cd '%s' && ln -s ..2026_12_07_c ..data_tmp && mv -T ..data_tmp ..data && rm "
       "shop.pem && rm -rf ..2026_12_07_b",
       vol);
    cr_expect(watch_saw(vol, "..data", 2));
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", fallback, 15),
              "a removed bundle is still served");
    free(first);
    free(second);
    free(fallback);
}

/* certbot: live/NAME/FILE links to ../../archive/NAME/FILEN.pem; a renewal
 * writes the next archive file and points the link at it (unlink, then
 * symlink). The bundle here is a whole haproxy-style file, as a deploy hook
 * would write it. */
Test(ops_watch, a_certbot_live_link_repointed_is_seen)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    char le[1400], live[1500], path[1600];
    snprintf(le, sizeof le, "%s/letsencrypt", ops.px.tmp);
    snprintf(live, sizeof live, "%s/live/shop", le);
    sh("make dirs", "mkdir -p '%s/archive/shop' '%s'", le, live);
    snprintf(path, sizeof path, "%s/archive/shop/bundle1.pem", le);
    char *first = tf_ops_issue(&ops, path, "new", "shop.example");
    sh("link", "ln -s ../../archive/shop/bundle1.pem '%s/bundle.pem'", live);
    add_source(live, "shop.example", first);
    snprintf(path, sizeof path, "%s/archive/shop/bundle2.pem", le);
    char *second = tf_ops_issue(&ops, path, "new", "shop.example");
    sh("repoint", "cd '%s' && rm bundle.pem && ln -s ../../archive/shop/bundle2.pem bundle.pem",
       live);
    cr_expect(watch_saw(live, "bundle.pem", 1), "the renewal was not seen");
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", second, 15));
    free(first);
    free(second);
}

/* A bundle that is a link into another directory, where the file is
 * replaced (renamed over): nothing changes beside the link, so the target's
 * directory is watched too. */
Test(ops_watch, a_link_target_replaced_in_its_own_directory_is_seen)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    char ext[1400], path[1500], tmp[1500];
    snprintf(ext, sizeof ext, "%s/ext", ops.px.tmp);
    sh("make dir", "mkdir '%s'", ext);
    snprintf(path, sizeof path, "%s/shop.pem", ext);
    char *first = tf_ops_issue(&ops, path, "new", "shop.example");
    sh("link", "ln -s '%s' '%s/shop.pem'", path, ops.certs);
    cr_assert(tf_ops_wait_serial(&ops, "shop.example", first, 15));
    char real[PATH_MAX];
    cr_assert_not_null(realpath(ext, real));
    cr_assert(watching(real, 1), "the link's target directory is not watched");
    snprintf(tmp, sizeof tmp, "%s/shop.pem.new", ops.px.tmp);
    char *second = tf_ops_issue(&ops, tmp, "new", "shop.example");
    cr_assert_eq(rename(tmp, path), 0);
    cr_expect(watch_saw(real, "shop.pem", 1), "the change in the target's directory was not seen");
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", second, 15));
    free(first);
    free(second);
}

/* A watched directory moved away with its parent (renames leave no event
 * in it): SIGHUP re-arms the watch on what the path names now. */
Test(ops_watch, sighup_rearms_a_watch_whose_directory_moved)
{
    tf_ops_start(&ops, 1, NULL, NULL);
    char vol[1400], dir[1500], path[1600];
    snprintf(vol, sizeof vol, "%s/vol", ops.px.tmp);
    snprintf(dir, sizeof dir, "%s/certs", vol);
    sh("make dir", "mkdir -p '%s'", dir);
    snprintf(path, sizeof path, "%s/shop.pem", dir);
    char *first = tf_ops_issue(&ops, path, "new", "shop.example");
    add_source(dir, "shop.example", first);
    sh("move away", "cd '%s' && cp -a vol vol.new && mv vol vol.old && mv vol.new vol", ops.px.tmp);
    kill(ops.px.proxy_pid, SIGHUP);
    cr_assert(watching(dir, 2), "SIGHUP did not re-arm the watch");
    char tmp[1500];
    snprintf(tmp, sizeof tmp, "%s/next.pem", ops.px.tmp);
    char *second = tf_ops_issue(&ops, tmp, "new", "shop.example");
    cr_assert_eq(rename(tmp, path), 0);
    cr_expect(watch_saw(dir, "shop.pem", 1), "SIGHUP did not re-arm the watch");
    cr_expect(tf_ops_wait_serial(&ops, "shop.example", second, 15));
    free(first);
    free(second);
}
