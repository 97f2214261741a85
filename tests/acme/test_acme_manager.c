/* The per-name manager (acme/manager.c, acme/state.c) with a fake client:
 * scripted results, self-signed certificates made at test time, a clock the
 * test sets, and the manager's own pass numbers to wait on (no sleeps).
 * First issuance (HOST.pem 0600, the record, storage 0700), a file tlsfront
 * did not write and a foreign certificate (unmanaged, never overwritten),
 * renewal at renew_days and at renewalInfo's window, backoff doubling to a
 * day, Retry-After and rateLimited, an order resumed by a new manager on the
 * same storage, two managers ordering a name once, wildcards, and GET
 * /acme's fields. */
#include "acme/acme_internal.h"

#include "common/err.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

TestSuite(manager, .timeout = 120);

#define DAY 86400
#define WAIT_MS 30000
#define MAX_CALLS 64

/* The fake's client pointer: the manager passes it through. */
#define FAKE ((tf_acme_client_t *)(void *)&fake)

/* ---- the fake client ------------------------------------------------------- */

typedef struct {
    int rc;             /* 0: a certificate of `days` days */
    int status;         /* the problem's HTTP status */
    const char *type;   /* the problem's type */
    const char *detail; /* its detail */
    const char *subproblems;
    uint64_t retry_after; /* seconds */
    int days;             /* validity of the certificate (0: 90) */
} step_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    step_t script[MAX_CALLS]; /* taken in order; past the end: success, 90 days */
    size_t nscript;
    unsigned calls;
    char hosts[MAX_CALLS][64];
    char resumes[MAX_CALLS][128]; /* "" for none */
    bool renewing[MAX_CALLS];     /* the certificate replaced was passed */
    bool gate;                    /* issue() waits while set */
    bool in_issue;
    unsigned written;
    int64_t clock;
    /* renewalInfo's answer: TF_ENOTFOUND, or a window. */
    int ari_rc;
    int64_t ari_start, ari_end;
    unsigned ari_calls;
    /* What the coverage callback says of cover_name. */
    char cover_name[64];
    tf_acme_coverage_t cover;
} fake = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .ari_rc = TF_ENOTFOUND,
};

/* A self-signed certificate for HOST valid DAYS days (wolfSSL: from a day
 * ago), followed by its key: a bundle the store loads. */
static char *make_bundle(const char *host, int days, size_t *len)
{
    tf_acme_key_t *k = NULL;
    cr_assert_eq(tf_acme_key_generate(TF_ACME_KEY_EC, &k), 0);
    Cert cert;
    WC_RNG rng;
    cr_assert_eq(wc_InitCert(&cert), 0);
    cr_assert_eq(tf_acme__cert_names(&cert, host), 0);
    cert.sigType = CTC_SHA256wECDSA;
    cert.daysValid = days;
    cr_assert_eq(wc_InitRng(&rng), 0);
    static unsigned char der[4096];
    int n = wc_MakeCert_ex(&cert, der, sizeof der, ECC_TYPE, &k->u.ec, &rng);
    cr_assert_gt(n, 0);
    n = wc_SignCert_ex(cert.bodySz, cert.sigType, der, sizeof der, ECC_TYPE, &k->u.ec, &rng);
    cr_assert_gt(n, 0);
    wc_FreeRng(&rng);
    char pem[8192];
    int pl = wc_DerToPem(der, (word32)n, (byte *)pem, sizeof pem, CERT_TYPE);
    cr_assert_gt(pl, 0);
    char *key = NULL;
    size_t kl = 0;
    cr_assert_eq(tf_acme_key_to_pem(k, &key, &kl), 0);
    tf_acme_key_free(k);
    char *out = malloc((size_t)pl + kl + 1);
    memcpy(out, pem, (size_t)pl);
    memcpy(out + pl, key, kl + 1);
    tf_acme_free_secret(key, kl);
    *len = (size_t)pl + kl;
    return out;
}

static int fake_issue(tf_acme_client_t *c, const char *host, const char *resume,
                      const char *renewing, void (*on_order)(void *ud, const char *url), void *ud,
                      tf_acme_issued_t *out, tf_acme_problem_t *prob)
{
    cr_assert_eq(c, FAKE);
    pthread_mutex_lock(&fake.lock);
    unsigned n = fake.calls++;
    cr_assert_lt(n, MAX_CALLS);
    snprintf(fake.hosts[n], sizeof fake.hosts[n], "%s", host);
    snprintf(fake.resumes[n], sizeof fake.resumes[n], "%s", resume ? resume : "");
    fake.renewing[n] = renewing != NULL;
    /* Only the certificates: never the key. */
    cr_assert(renewing == NULL || strstr(renewing, "BEGIN CERTIFICATE") != NULL);
    cr_assert(renewing == NULL || strstr(renewing, "PRIVATE KEY") == NULL);
    fake.in_issue = true;
    pthread_cond_broadcast(&fake.cond);
    while (fake.gate)
        pthread_cond_wait(&fake.cond, &fake.lock);
    step_t s = n < fake.nscript ? fake.script[n] : (step_t){0};
    fake.in_issue = false;
    pthread_mutex_unlock(&fake.lock);
    /* As the real client: the order's URL as soon as it exists. */
    char url[128];
    snprintf(url, sizeof url, "https://acme.test/order/%u", n + 1);
    on_order(ud, resume != NULL ? resume : url);
    if (s.rc != 0) {
        prob->status = s.status;
        snprintf(prob->type, sizeof prob->type, "%s", s.type ? s.type : "");
        snprintf(prob->detail, sizeof prob->detail, "%s", s.detail ? s.detail : "");
        prob->subproblems = s.subproblems ? strdup(s.subproblems) : NULL;
        prob->retry_after_s = s.retry_after;
        return s.rc;
    }
    out->bundle = make_bundle(host, s.days ? s.days : 90, &out->bundle_len);
    out->order_url = strdup(url);
    return 0;
}

static int fake_renewal_info(tf_acme_client_t *c, const char *pem, size_t len, int64_t *start,
                             int64_t *end, tf_acme_problem_t *prob)
{
    (void)prob;
    cr_assert_eq(c, FAKE);
    /* Only the certificates: never the key. */
    cr_assert_eq(strlen(pem), len);
    cr_assert(strstr(pem, "BEGIN CERTIFICATE") != NULL);
    cr_assert(strstr(pem, "PRIVATE KEY") == NULL);
    pthread_mutex_lock(&fake.lock);
    fake.ari_calls++;
    *start = fake.ari_start;
    *end = fake.ari_end;
    int rc = fake.ari_rc;
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

static const tf_acme_client_ops_t fake_ops = {
    .issue = fake_issue,
    .renewal_info = fake_renewal_info,
};

/* ---- the proxy's side ------------------------------------------------------- */

static void on_coverage(void *arg, const char *name, tf_acme_coverage_t *out)
{
    (void)arg;
    pthread_mutex_lock(&fake.lock);
    if (strcmp(name, fake.cover_name) == 0)
        *out = fake.cover;
    pthread_mutex_unlock(&fake.lock);
}

static void on_written(void *arg, const char *name, const char *path)
{
    (void)arg, (void)name;
    cr_assert(strstr(path, ".pem") != NULL);
    pthread_mutex_lock(&fake.lock);
    fake.written++;
    pthread_mutex_unlock(&fake.lock);
}

static void on_note(void *arg, tf_acme_note_level_t level, const char *text)
{
    (void)arg;
    fprintf(stderr, "note %d: %s\n", (int)level, text);
}

static int64_t on_now(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&fake.lock);
    int64_t t = fake.clock;
    pthread_mutex_unlock(&fake.lock);
    return t;
}

static void clock_set(int64_t t)
{
    pthread_mutex_lock(&fake.lock);
    fake.clock = t;
    pthread_mutex_unlock(&fake.lock);
}

static unsigned calls(void)
{
    pthread_mutex_lock(&fake.lock);
    unsigned n = fake.calls;
    pthread_mutex_unlock(&fake.lock);
    return n;
}

static void script(size_t i, step_t s)
{
    pthread_mutex_lock(&fake.lock);
    fake.script[i] = s;
    if (fake.nscript < i + 1)
        fake.nscript = i + 1;
    pthread_mutex_unlock(&fake.lock);
}

/* ---- fixture ----------------------------------------------------------------- */

typedef struct {
    char dir[256];
    char certs[300];
    char storage[300];
    tf_conf_t *conf;
    int64_t t0;
} fx_t;

static void fx_init(fx_t *f, const char *hosts, unsigned renew_days)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tf-acme-manager-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    snprintf(f->certs, sizeof f->certs, "%s/certs", f->dir);
    /* Below a directory that does not exist yet: the manager makes both. */
    snprintf(f->storage, sizeof f->storage, "%s/state/acme", f->dir);
    cr_assert_eq(mkdir(f->certs, 0755), 0);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "listen:\n  https: [\"127.0.0.1:8443\"]\n"
             "tls:\n  certs: [\"%s\"]\n  default_cert: \"%s/system.pem\"\n"
             "acme:\n  directory: https://acme.test/directory\n  storage: \"%s\"\n"
             "  renew_days: %u\n"
             "tenants:\n  t:\n    hosts: %s\n    backends: [\"127.0.0.1:8080\"]\n"
             "    acme: true\n"
             "  plain:\n    hosts: [\"plain.example\"]\n    backends: [\"127.0.0.1:8080\"]\n",
             f->certs, f->dir, f->storage, renew_days, hosts);
    char err[1024] = "";
    cr_assert_eq(tf_conf_load_buffer("test.yaml", yaml, strlen(yaml), &f->conf, err, sizeof err), 0,
                 "%s", err);
    f->t0 = (int64_t)time(NULL);
    clock_set(f->t0);
}

static void fx_dispose(fx_t *f)
{
    tf_conf_unref(f->conf);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    cr_expect_eq(system(cmd), 0);
}

static tf_acme_manager_t *manager(fx_t *f)
{
    tf_acme_manager_conf_t mc = {
        .conf = f->conf,
        .ops = &fake_ops,
        .coverage = on_coverage,
        .written = on_written,
        .note = on_note,
        .now = on_now,
    };
    tf_acme_manager_t *m = NULL;
    cr_assert_eq(tf_acme_manager_new(&mc, &m), 0);
    cr_assert_eq(tf_acme_manager_start(m, FAKE), 0);
    return m;
}

/* A pass that starts after this call, complete. */
static void pass(tf_acme_manager_t *m)
{
    uint64_t n = tf_acme_manager_kick(m);
    cr_assert_eq(tf_acme_manager_wait(m, n, WAIT_MS), 0);
}

/* NAME's object in GET /acme (a new reference). */
static json_t *status_of(tf_acme_manager_t *m, const char *name)
{
    json_t *list = tf_acme_manager_status(m);
    cr_assert(json_is_array(list));
    size_t i;
    json_t *o, *found = NULL;
    json_array_foreach(list, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            found = json_incref(o);
    }
    json_decref(list);
    cr_assert_not_null(found, "%s is not in GET /acme", name);
    return found;
}

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void expect_state(tf_acme_manager_t *m, const char *name, const char *state)
{
    json_t *o = status_of(m, name);
    char *text = json_dumps(o, JSON_COMPACT);
    cr_expect_str_eq(str_of(o, "state"), state, "%s", text);
    free(text);
    json_decref(o);
}

static json_t *record_of(fx_t *f, const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/certs/%s.json", f->storage, name);
    json_error_t jerr;
    json_t *r = json_load_file(path, 0, &jerr);
    cr_assert_not_null(r, "%s: %s", path, jerr.text);
    return r;
}

static int64_t record_int(fx_t *f, const char *name, const char *key)
{
    json_t *r = record_of(f, name);
    int64_t v = (int64_t)json_integer_value(json_object_get(r, key));
    json_decref(r);
    return v;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "%s", path);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strdup(buf);
}

/* ---- tests ------------------------------------------------------------------ */

Test(manager, first_issuance_writes_the_bundle_0600_and_the_record)
{
    fx_t f;
    fx_init(&f, "[\"a.example\", \"b.example\"]", 30);
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_expect_eq(calls(), 2);
    char path[400];
    snprintf(path, sizeof path, "%s/a.example.pem", f.certs);
    cr_expect_eq(mode_of(path), 0600);
    char *pem = slurp(path);
    cr_expect(strstr(pem, "BEGIN CERTIFICATE") != NULL && strstr(pem, "PRIVATE KEY") != NULL);
    /* The record knows the file by its hash. */
    json_t *r = record_of(&f, "a.example");
    char sha[65];
    cr_assert_eq(tf_acme__sha256_hex(pem, strlen(pem), sha), 0);
    cr_expect_str_eq(json_string_value(json_object_get(r, "sha256")), sha);
    cr_expect_str_eq(json_string_value(json_object_get(r, "path")), path);
    cr_expect(json_is_null(json_object_get(r, "order_url")));
    cr_expect_gt(json_integer_value(json_object_get(r, "not_after")), f.t0 + 89 * DAY);
    json_decref(r);
    free(pem);
    snprintf(path, sizeof path, "%s/certs/a.example.json", f.storage);
    cr_expect_eq(mode_of(path), 0600);
    cr_expect_eq(mode_of(f.storage), 0700);
    snprintf(path, sizeof path, "%s/certs", f.storage);
    cr_expect_eq(mode_of(path), 0700);
    expect_state(m, "a.example", "valid");
    expect_state(m, "b.example", "valid");
    cr_expect_eq(fake.written, 2);
    tf_acme_manager_counts_t c = tf_acme_manager_counts(m);
    cr_expect_eq(c.valid, 2);
    cr_expect_eq(c.invalid + c.error, 0);
    /* Nothing is due: another pass orders nothing. */
    pass(m);
    cr_expect_eq(calls(), 2);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

Test(manager, status_fields_are_those_of_spec_8)
{
    fx_t f;
    fx_init(&f, "[\"a.example\", \"*.w.example\"]", 30);
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    static const char *const keys[] = {"name",         "state",      "file",  "not_after",
                                       "next_attempt", "last_error", "reason"};
    json_t *list = tf_acme_manager_status(m);
    cr_assert_eq(json_array_size(list), 2);
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        cr_expect_eq(json_object_size(o), 7);
        for (size_t k = 0; k < 7; k++)
            cr_expect_not_null(json_object_get(o, keys[k]), "%s missing", keys[k]);
    }
    /* Configuration order. */
    json_t *a = json_array_get(list, 0), *w = json_array_get(list, 1);
    cr_expect_str_eq(str_of(a, "name"), "a.example");
    cr_expect_str_eq(str_of(a, "state"), "valid");
    cr_expect(strstr(str_of(a, "file"), "/certs/a.example.pem") != NULL);
    /* RFC 3339, UTC. */
    const char *na = str_of(a, "not_after");
    cr_assert_not_null(na);
    cr_expect_eq(strlen(na), 20);
    cr_expect(na[4] == '-' && na[10] == 'T' && na[19] == 'Z', "%s", na);
    cr_expect_not_null(str_of(a, "next_attempt"));
    cr_expect(json_is_null(json_object_get(a, "last_error")));
    cr_expect(json_is_null(json_object_get(a, "reason")));
    cr_expect_str_eq(str_of(w, "name"), "*.w.example");
    cr_expect_str_eq(str_of(w, "state"), "unmanaged");
    cr_expect_str_eq(str_of(w, "reason"), "wildcard: needs DNS-01");
    cr_expect(json_is_null(json_object_get(w, "file")));
    cr_expect(json_is_null(json_object_get(w, "not_after")));
    cr_expect(json_is_null(json_object_get(w, "next_attempt")));
    json_decref(list);
    /* The wildcard is never ordered; it has no renewal. */
    cr_expect_eq(calls(), 1);
    cr_expect_str_eq(fake.hosts[0], "a.example");
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

Test(manager, a_file_tlsfront_did_not_write_is_never_replaced)
{
    fx_t f;
    fx_init(&f, "[\"a.example\", \"b.example\"]", 30);
    char path[400];
    snprintf(path, sizeof path, "%s/a.example.pem", f.certs);
    FILE *fp = fopen(path, "w");
    fputs("certbot's bundle\n", fp);
    fclose(fp);
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_expect_eq(calls(), 1);
    cr_expect_str_eq(fake.hosts[0], "b.example");
    json_t *o = status_of(m, "a.example");
    cr_expect_str_eq(str_of(o, "state"), "unmanaged");
    cr_expect(strstr(str_of(o, "reason"), "not written by tlsfront") != NULL, "%s",
              str_of(o, "reason"));
    cr_expect_str_eq(str_of(o, "file"), path);
    json_decref(o);
    /* Not even once it is due by every other rule. */
    clock_set(f.t0 + 400 * DAY);
    pass(m);
    char *text = slurp(path);
    cr_expect_str_eq(text, "certbot's bundle\n");
    free(text);
    for (unsigned i = 0; i < calls(); i++)
        cr_expect_str_neq(fake.hosts[i], "a.example");
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

Test(manager, a_name_covered_by_a_foreign_certificate_is_unmanaged_while_it_is_valid)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 30);
    pthread_mutex_lock(&fake.lock);
    snprintf(fake.cover_name, sizeof fake.cover_name, "a.example");
    fake.cover.covered = true;
    fake.cover.not_after = f.t0 + 60 * DAY;
    snprintf(fake.cover.file, sizeof fake.cover.file, "/etc/tlsfront/certs/wild.pem");
    pthread_mutex_unlock(&fake.lock);
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_expect_eq(calls(), 0);
    json_t *o = status_of(m, "a.example");
    cr_expect_str_eq(str_of(o, "state"), "unmanaged");
    cr_expect(strstr(str_of(o, "reason"), "covered by /etc/tlsfront/certs/wild.pem") != NULL);
    cr_expect_str_eq(str_of(o, "file"), "/etc/tlsfront/certs/wild.pem");
    cr_expect_not_null(str_of(o, "not_after"));
    json_decref(o);
    /* It expired (the store no longer counts it): the name is ordered. */
    pthread_mutex_lock(&fake.lock);
    fake.cover.covered = false;
    pthread_mutex_unlock(&fake.lock);
    pass(m);
    cr_expect_eq(calls(), 1);
    expect_state(m, "a.example", "valid");
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

Test(manager, renews_when_fewer_than_renew_days_remain)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 10);
    script(0, (step_t){.days = 40});
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_assert_eq(calls(), 1);
    int64_t na = record_int(&f, "a.example", "not_after");
    /* 11 days left: not yet. */
    clock_set(na - 11 * DAY);
    pass(m);
    cr_expect_eq(calls(), 1);
    expect_state(m, "a.example", "valid");
    /* 9 days left: renewed, replacing our own file, with no resume. */
    clock_set(na - 9 * DAY);
    pass(m);
    cr_expect_eq(calls(), 2);
    cr_expect_str_eq(fake.resumes[1], "");
    /* The certificate it replaces is named (RFC 9773 `replaces`). */
    cr_expect_not(fake.renewing[0]);
    cr_expect(fake.renewing[1]);
    cr_expect_gt(record_int(&f, "a.example", "not_after"), na + 40 * DAY);
    expect_state(m, "a.example", "valid");
    cr_expect_eq(tf_acme_manager_counts(m).valid, 2);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

/* renew_days is taken as written even when it is over a third of the
 * lifetime (60 of 90 days, SPEC §13: "when fewer days remain"). */
Test(manager, renew_days_longer_than_a_third_of_the_lifetime_is_honoured)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 60);
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_assert_eq(calls(), 1);
    int64_t na = record_int(&f, "a.example", "not_after");
    clock_set(na - 61 * DAY);
    pass(m);
    cr_expect_eq(calls(), 1, "61 days left: not yet");
    /* 59 days left of 90: renewed (a third of the lifetime would wait
     * until 30). */
    clock_set(na - 59 * DAY);
    pass(m);
    cr_expect_eq(calls(), 2);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

/* From now on renewalInfo answers [START, END), its calls counted afresh. */
static void ari_window(int64_t start, int64_t end)
{
    pthread_mutex_lock(&fake.lock);
    fake.ari_calls = 0;
    fake.ari_rc = 0;
    fake.ari_start = start;
    fake.ari_end = end;
    pthread_mutex_unlock(&fake.lock);
}

Test(manager, renews_at_a_time_picked_in_the_renewal_info_window)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 30);
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_assert_eq(calls(), 1);
    /* The CA wants it renewed from tomorrow (a revocation, say). Counted
     * from here: whether the manager's own first pass and the kicked one
     * were one pass or two (thread timing), the second may already have
     * asked renewalInfo at t0 and been told there is none. */
    ari_window(f.t0 + DAY, f.t0 + 2 * DAY);
    clock_set(f.t0 + 7 * 3600);
    pass(m);
    cr_expect_eq(fake.ari_calls, 1);
    cr_expect_eq(calls(), 1);
    cr_expect_eq(record_int(&f, "a.example", "renewal_info_start"), f.t0 + DAY);
    int64_t at = record_int(&f, "a.example", "renewal_info_at");
    cr_assert(at >= f.t0 + DAY && at < f.t0 + 2 * DAY, "picked %lld", (long long)(at - f.t0));
    /* Not before the picked time, whatever the window's start says. */
    clock_set(at - 1);
    pass(m);
    cr_expect_eq(calls(), 1);
    clock_set(at);
    pass(m);
    cr_expect_eq(calls(), 2);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

/* RFC 9773 §4.2: each certificate's time is its own random point of the
 * window, not the window's first second for all. Eight names picking the
 * same second of a day-long window: about 1 in 86,400^7. */
Test(manager, renewal_info_times_are_spread_over_the_window)
{
    static const char *names[] = {"a.example", "b.example", "c.example", "d.example",
                                  "e.example", "f.example", "g.example", "h.example"};
    fx_t f;
    fx_init(&f,
            "[\"a.example\", \"b.example\", \"c.example\", \"d.example\", \"e.example\", "
            "\"f.example\", \"g.example\", \"h.example\"]",
            30);
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_assert_eq(calls(), 8);
    ari_window(f.t0 + DAY, f.t0 + 2 * DAY);
    clock_set(f.t0 + 7 * 3600);
    pass(m);
    int64_t first = record_int(&f, names[0], "renewal_info_at");
    bool all_same = true;
    for (size_t i = 0; i < 8; i++) {
        int64_t at = record_int(&f, names[i], "renewal_info_at");
        cr_expect(at >= f.t0 + DAY && at < f.t0 + 2 * DAY, "%s: %lld", names[i],
                  (long long)(at - f.t0));
        all_same = all_same && at == first;
    }
    cr_expect(!all_same, "every name picked the same second");
    /* Asked again with the same window: each keeps its time. */
    clock_set(f.t0 + 14 * 3600);
    pass(m);
    cr_expect_eq(record_int(&f, names[0], "renewal_info_at"), first);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

Test(manager, failures_back_off_doubling_to_a_day)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 30);
    for (size_t i = 0; i < 14; i++)
        script(i, (step_t){.rc = -ECONNREFUSED, .detail = "connection refused"});
    tf_acme_manager_t *m = manager(&f);
    int64_t now = f.t0;
    int64_t want = 60;
    for (unsigned i = 1; i <= 14; i++) {
        pass(m);
        cr_assert_eq(calls(), i);
        int64_t until = record_int(&f, "a.example", "backoff_until");
        cr_expect_eq(until - now, want, "failure %u: waits %lld s", i, (long long)(until - now));
        /* Not before it is over. */
        clock_set(until - 1);
        pass(m);
        cr_expect_eq(calls(), i);
        json_t *o = status_of(m, "a.example");
        cr_expect_str_eq(str_of(o, "state"), "failed");
        json_t *err = json_object_get(o, "last_error");
        cr_expect_str_eq(json_string_value(json_object_get(err, "detail")), "connection refused");
        cr_expect(json_is_null(json_object_get(err, "type")));
        json_decref(o);
        now = until;
        clock_set(now);
        want = want * 2 > DAY ? DAY : want * 2;
    }
    cr_expect_eq(tf_acme_manager_counts(m).error, 14);
    /* Success clears it. */
    pass(m);
    cr_expect_eq(calls(), 15);
    expect_state(m, "a.example", "valid");
    cr_expect_eq(record_int(&f, "a.example", "failures"), 0);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

Test(manager, retry_after_and_rate_limits_are_honoured)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 30);
    script(0, (step_t){.rc = TF_EACME,
                       .status = 429,
                       .type = "urn:ietf:params:acme:error:rateLimited",
                       .detail = "too many certificates",
                       .retry_after = 7200});
    script(1, (step_t){.rc = TF_EACME,
                       .status = 429,
                       .type = "urn:ietf:params:acme:error:rateLimited",
                       .detail = "too many certificates"});
    script(2, (step_t){.rc = TF_EACME,
                       .status = 503,
                       .type = "urn:ietf:params:acme:error:serverInternal",
                       .detail = "down",
                       .retry_after = 30});
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_expect_eq(record_int(&f, "a.example", "backoff_until"), f.t0 + 7200);
    clock_set(f.t0 + 7199);
    pass(m);
    cr_expect_eq(calls(), 1);
    /* rateLimited without Retry-After: an hour at least. */
    clock_set(f.t0 + 7200);
    pass(m);
    cr_expect_eq(calls(), 2);
    cr_expect_eq(record_int(&f, "a.example", "backoff_until"), f.t0 + 7200 + 3600);
    /* A Retry-After shorter than the backoff (third failure: 4 min). */
    clock_set(f.t0 + 7200 + 3600);
    pass(m);
    cr_expect_eq(calls(), 3);
    cr_expect_eq(record_int(&f, "a.example", "backoff_until"), f.t0 + 7200 + 3600 + 240);
    tf_acme_manager_counts_t c = tf_acme_manager_counts(m);
    cr_expect_eq(c.invalid, 2);
    cr_expect_eq(c.error, 1);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

Test(manager, the_servers_problem_document_is_shown)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 30);
    script(0,
           (step_t){.rc = TF_EACME,
                    .status = 403,
                    .type = "urn:ietf:params:acme:error:unauthorized",
                    .detail = "invalid response from http://a.example/.well-known/...",
                    .subproblems = "[{\"type\":\"urn:ietf:params:acme:error:dns\","
                                   "\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"}}]"});
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    json_t *o = status_of(m, "a.example");
    cr_expect_str_eq(str_of(o, "state"), "failed");
    json_t *err = json_object_get(o, "last_error");
    cr_expect_eq(json_object_size(err), 3);
    cr_expect_str_eq(json_string_value(json_object_get(err, "type")),
                     "urn:ietf:params:acme:error:unauthorized");
    cr_expect(strstr(json_string_value(json_object_get(err, "detail")), "invalid response") !=
              NULL);
    json_t *sub = json_object_get(err, "subproblems");
    cr_assert(json_is_array(sub));
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(sub, 0), "type")),
                     "urn:ietf:params:acme:error:dns");
    char at[40];
    struct tm tm;
    time_t t = (time_t)(f.t0 + 60);
    gmtime_r(&t, &tm);
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cr_expect_str_eq(str_of(o, "next_attempt"), at);
    json_decref(o);
    /* An invalid order is not resumed. */
    json_t *r = record_of(&f, "a.example");
    cr_expect(json_is_null(json_object_get(r, "order_url")));
    json_decref(r);
    cr_expect_eq(tf_acme_manager_counts(m).invalid, 1);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

Test(manager, a_pending_order_is_resumed_after_a_restart)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 30);
    /* The order exists, then the connection times out. */
    script(0, (step_t){.rc = -ETIMEDOUT, .detail = "timed out"});
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_assert_eq(calls(), 1);
    cr_expect_str_eq(fake.resumes[0], "");
    tf_acme_manager_free(m);
    json_t *r = record_of(&f, "a.example");
    cr_expect_str_eq(json_string_value(json_object_get(r, "order_url")),
                     "https://acme.test/order/1");
    json_decref(r);
    /* A new process on the same storage, once the backoff is over. */
    clock_set(f.t0 + 60);
    m = manager(&f);
    pass(m);
    cr_assert_eq(calls(), 2);
    cr_expect_str_eq(fake.resumes[1], "https://acme.test/order/1");
    expect_state(m, "a.example", "valid");
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

/* Waits until the fake is inside issue(). */
static void wait_in_issue(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&fake.lock);
    int rc = 0;
    while (!fake.in_issue && rc == 0)
        rc = pthread_cond_timedwait(&fake.cond, &fake.lock, &ts);
    pthread_mutex_unlock(&fake.lock);
    cr_assert_eq(rc, 0, "issue() was not called");
}

static void gate(bool closed)
{
    pthread_mutex_lock(&fake.lock);
    fake.gate = closed;
    pthread_cond_broadcast(&fake.cond);
    pthread_mutex_unlock(&fake.lock);
}

Test(manager, two_managers_on_one_storage_order_a_name_once)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 30);
    gate(true);
    tf_acme_manager_t *m1 = manager(&f);
    wait_in_issue();
    /* m1 holds the lock while it orders: m2 skips the name. */
    tf_acme_manager_t *m2 = manager(&f);
    pass(m2);
    cr_expect_eq(calls(), 1);
    expect_state(m2, "a.example", "pending");
    expect_state(m1, "a.example", "pending");
    gate(false);
    pass(m1);
    expect_state(m1, "a.example", "valid");
    /* m2 finds m1's file and record: nothing to order. */
    pass(m2);
    cr_expect_eq(calls(), 1);
    expect_state(m2, "a.example", "valid");
    tf_acme_manager_free(m1);
    tf_acme_manager_free(m2);
    fx_dispose(&f);
}

Test(manager, update_adds_and_removes_names)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 30);
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_expect_eq(calls(), 1);
    char err[512];
    tf_conf_t *c2 = NULL;
    /* The same storage and certificate directory, another name. */
    char text[2048];
    snprintf(text, sizeof text,
             "listen:\n  https: [\"127.0.0.1:8443\"]\n"
             "tls:\n  certs: [\"%s\"]\n"
             "acme:\n  directory: https://acme.test/directory\n  storage: \"%s\"\n"
             "tenants:\n  t:\n    hosts: [\"c.example\"]\n"
             "    backends: [\"127.0.0.1:8080\"]\n    acme: true\n",
             f.certs, f.storage);
    cr_assert_eq(tf_conf_load_buffer("t2.yaml", text, strlen(text), &c2, err, sizeof err), 0, "%s",
                 err);
    tf_acme_manager_update(m, c2);
    tf_conf_unref(c2);
    pass(m);
    cr_expect_eq(calls(), 2);
    cr_expect_str_eq(fake.hosts[1], "c.example");
    json_t *list = tf_acme_manager_status(m);
    cr_expect_eq(json_array_size(list), 1);
    cr_expect_str_eq(str_of(json_array_get(list, 0), "name"), "c.example");
    json_decref(list);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

static void count_renewal(void *arg, const char *name, int64_t at)
{
    (void)name;
    int64_t *sum = arg;
    sum[0]++;
    sum[1] = at;
}

Test(manager, each_renewal_lists_managed_names_only)
{
    fx_t f;
    fx_init(&f, "[\"a.example\", \"*.w.example\"]", 30);
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    int64_t got[2] = {0, 0};
    tf_acme_manager_each_renewal(m, count_renewal, got);
    cr_expect_eq(got[0], 1);
    int64_t na = record_int(&f, "a.example", "not_after");
    cr_expect_eq(got[1], na - 30 * DAY);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

Test(manager, stop_without_start_and_wait_after_stop)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 30);
    tf_acme_manager_conf_t mc = {.conf = f.conf, .ops = &fake_ops, .coverage = on_coverage};
    tf_acme_manager_t *m = NULL;
    cr_assert_eq(tf_acme_manager_new(&mc, &m), 0);
    /* Before any pass: every name, pending. */
    expect_state(m, "a.example", "pending");
    cr_expect_eq(tf_acme_manager_wait(m, 1, 10), TF_EINVAL);
    tf_acme_manager_stop(m);
    tf_acme_manager_free(m);
    cr_expect_eq(calls(), 0);
    fx_dispose(&f);
}

Test(manager, an_order_cancelled_by_a_stop_is_abandoned_not_counted)
{
    fx_t f;
    fx_init(&f, "[\"a.example\", \"b.example\"]", 30);
    script(0, (step_t){.rc = -ECANCELED, .detail = "acme: cancelled"});
    gate(true);
    tf_acme_manager_t *m = manager(&f);
    wait_in_issue();
    /* As tlsfront stops: the manager, then the client, told to give up. */
    tf_acme_manager_cancel(m);
    gate(false);
    tf_acme_manager_stop(m);
    /* The next name was not started; the cancelled one has no failure. */
    cr_expect_eq(calls(), 1);
    tf_acme_manager_counts_t c = tf_acme_manager_counts(m);
    cr_expect_eq(c.valid + c.invalid + c.error, 0);
    json_t *r = record_of(&f, "a.example");
    cr_expect_eq(json_integer_value(json_object_get(r, "failures")), 0);
    cr_expect_eq(json_integer_value(json_object_get(r, "backoff_until")), 0);
    cr_expect_str_eq(json_string_value(json_object_get(r, "order_url")),
                     "https://acme.test/order/1");
    json_decref(r);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}

Test(manager, an_unusable_bundle_is_not_written_and_backs_off)
{
    fx_t f;
    fx_init(&f, "[\"a.example\"]", 30);
    /* The clock is three days ahead of the CA's: its one-day certificate
     * has expired already. */
    clock_set(f.t0 + 3 * DAY);
    script(0, (step_t){.days = 1});
    tf_acme_manager_t *m = manager(&f);
    pass(m);
    cr_expect_eq(calls(), 1);
    json_t *o = status_of(m, "a.example");
    cr_expect_str_eq(str_of(o, "state"), "failed");
    const char *detail =
        json_string_value(json_object_get(json_object_get(o, "last_error"), "detail"));
    cr_expect(strstr(detail, "the issued bundle is not usable: it has expired") != NULL, "%s",
              detail);
    json_decref(o);
    char path[400];
    snprintf(path, sizeof path, "%s/a.example.pem", f.certs);
    cr_expect_neq(access(path, F_OK), 0);
    cr_expect_eq(tf_acme_manager_counts(m).error, 1);
    cr_expect_eq(record_int(&f, "a.example", "backoff_until"), f.t0 + 3 * DAY + 60);
    /* Not again before the backoff is over. */
    pass(m);
    cr_expect_eq(calls(), 1);
    tf_acme_manager_free(m);
    fx_dispose(&f);
}
