/* bench_cs CERTDIR [LOOKUPS]
 *
 * Measures the certificate store on a directory of bundles made by
 * bench_cs_gen (DIR/certs: tenantNNNNNN.pem, system.pem): the initial load on every
 * core (wall time, resident memory per bundle), SNI lookups (one hot name and
 * names spread over every certificate), a rebuild with nothing changed, and a
 * rebuild with one file changed. Prints one line of key=value pairs per
 * figure, for bench/certstore/run.sh to tabulate. Not a test: no assertion.
 */
#include "certstore/store.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size in KiB, from /proc/self/statm. */
static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static tf_cs_snapshot_t *build(tf_cs_store_t *store, double *secs)
{
    tf_cs_snapshot_t *snap = NULL;
    double t0 = now_s();
    if (tf_cs_store_build(store, 0, &snap) != 0) {
        fprintf(stderr, "bench_cs: build failed\n");
        exit(1);
    }
    *secs = now_s() - t0;
    return snap;
}

/* Lookups of `count` names drawn from tenant0..tenant(spread-1), pre-formatted
 * so that only the lookup is timed. Returns ns per lookup; *hits counts
 * lookups that found a tenant certificate rather than the default. */
static double time_lookups(const tf_cs_snapshot_t *snap, size_t count, size_t spread,
                           size_t *hits)
{
    enum { NAMES = 4096 };
    static char names[NAMES][64];
    static size_t lens[NAMES];
    unsigned seed = 12345;
    for (size_t i = 0; i < NAMES; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t k = spread > 1 ? (seed >> 8) % spread : 0;
        lens[i] = (size_t)snprintf(names[i], sizeof names[i], "Tenant%zu.Bench.Example", k);
    }
    const tf_cs_bundle_t *def = tf_cs_snapshot_default(snap);
    *hits = 0;
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) {
        size_t j = i & (NAMES - 1);
        *hits += tf_cs_snapshot_select(snap, names[j], lens[j], NULL) != def;
    }
    return (now_s() - t0) * 1e9 / (double)count;
}

/* Rewrites one bundle through a temporary file and rename, as deploy tools
 * do: same content, new inode. */
static void touch_one(const char *dir)
{
    char src[4096], tmp[4200], buf[16384];
    snprintf(src, sizeof src, "%s/tenant000000.pem", dir);
    snprintf(tmp, sizeof tmp, "%s/.tenant000000.pem.new", dir);
    FILE *in = fopen(src, "rb"), *out = fopen(tmp, "wb");
    size_t n = in != NULL ? fread(buf, 1, sizeof buf, in) : 0;
    if (in == NULL || out == NULL || n == 0 || fwrite(buf, 1, n, out) != n ||
        fclose(out) != 0 || chmod(tmp, 0600) != 0 || rename(tmp, src) != 0) {
        fprintf(stderr, "bench_cs: cannot rewrite %s\n", src);
        exit(1);
    }
    fclose(in);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_cs DIR [LOOKUPS]\n");
        return 2;
    }
    const char *dir = argv[1];
    size_t lookups = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000000;
    char def[4096];
    snprintf(def, sizeof def, "%s/system.pem", dir);
    const char *sources[] = {dir};
    tf_cs_store_opts_t opts = {.sources = sources, .nsources = 1, .default_cert = def};

    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        return 1;
    tf_cs_store_t *store = NULL;
    if (tf_cs_store_new(&opts, &store) != 0) {
        fprintf(stderr, "bench_cs: cannot create the store\n");
        return 1;
    }
    long rss0 = rss_kib();
    double t_load, t_same, t_one;
    tf_cs_snapshot_t *s1 = build(store, &t_load);
    /* Hand the parser threads' scratch memory back first: what stays is what
     * the store holds (the proxy trims after every build too). */
    malloc_trim(0);
    long rss1 = rss_kib();
    tf_cs_snapshot_stats_t st = tf_cs_snapshot_stats(s1);
    size_t n = st.files;
    printf("load files=%zu served=%zu failed=%zu names=%zu seconds=%.3f rss_kib=%ld "
           "kib_per_bundle=%.2f\n",
           n, st.served, st.failed, st.names, t_load, rss1 - rss0,
           n ? (double)(rss1 - rss0) / (double)n : 0.0);

    size_t hits1, hitsn;
    double ns1 = time_lookups(s1, lookups, 1, &hits1);
    double nsn = time_lookups(s1, lookups, n > 1 ? n - 1 : 1, &hitsn);
    printf("lookup one_name_ns=%.1f spread_ns=%.1f spread_over=%zu hits=%zu/%zu\n", ns1, nsn,
           n > 1 ? n - 1 : 1, hitsn, lookups);

    tf_cs_snapshot_t *s2 = build(store, &t_same);
    tf_cs_snapshot_stats_t st2 = tf_cs_snapshot_stats(s2);
    printf("rebuild_unchanged seconds=%.4f parsed=%zu reused=%zu\n", t_same, st2.parsed,
           st2.reused);
    tf_cs_snapshot_unref(s1);

    touch_one(dir);
    tf_cs_snapshot_t *s3 = build(store, &t_one);
    tf_cs_snapshot_stats_t st3 = tf_cs_snapshot_stats(s3);
    printf("rebuild_one_changed seconds=%.4f parsed=%zu reused=%zu\n", t_one, st3.parsed,
           st3.reused);
    tf_cs_snapshot_unref(s2);
    tf_cs_snapshot_unref(s3);
    tf_cs_store_free(store);
    wolfSSL_Cleanup();
    return 0;
}
