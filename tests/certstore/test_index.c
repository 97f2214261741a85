/* SPEC §4.4 rules 2, 3 and 5: the SNI index, its ranking of competing certificates and its
 * conflict reports. Entries are plain ints here: the index never looks inside them. */
#include "certstore/index.h"

#include "certstore/names.h"
#include "common/err.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY 86400
#define NOW ((int64_t)1800000000) /* 2027-01-15 */

static int cert_a, cert_b, cert_c, cert_d;

/* Conflicts seen by the callback, kept in order. */
struct conflict {
    char name[TF_CS_NAME_BUF + 2];
    void *winner;
    void *loser;
    tf_cs__conflict_reason_t reason;
};

struct conflicts {
    struct conflict list[16];
    size_t n;
};

static void on_conflict(const char *name, void *winner, void *loser,
                        tf_cs__conflict_reason_t reason, void *ud)
{
    struct conflicts *c = ud;

    cr_assert_lt(c->n, 16);
    snprintf(c->list[c->n].name, sizeof(c->list[c->n].name), "%s", name);
    c->list[c->n].winner = winner;
    c->list[c->n].loser = loser;
    c->list[c->n].reason = reason;
    c->n++;
}

/* A certificate valid from a year ago for `days_left` more days. */
static void add_valid(tf_cs__index_builder_t *b, const char *name, void *entry, int days_left)
{
    cr_assert_eq(tf_cs__index_builder_add(b, name, entry, NOW - 365 * DAY, NOW + days_left * DAY),
                 0, "add '%s'", name);
}

static tf_cs__index_t *build(tf_cs__index_builder_t *b, struct conflicts *c)
{
    tf_cs__index_t *idx = NULL;

    cr_assert_eq(tf_cs__index_build(b, NOW, &idx, c ? on_conflict : NULL, c), 0);
    cr_assert_not_null(idx);
    return idx;
}

/* Normalizes like the SNI callback, then looks up. */
static void *select_cert(const tf_cs__index_t *idx, const char *sni, tf_cs__match_t *kind)
{
    char norm[TF_CS_NAME_BUF];

    *kind = TF_CS_MATCH_NONE;
    if (tf_cs__sni_normalize(sni, strlen(sni), norm) < 0)
        return NULL;
    return tf_cs__index_lookup(idx, norm, kind);
}

static void expect_select(const tf_cs__index_t *idx, const char *sni, void *want,
                          tf_cs__match_t want_kind)
{
    tf_cs__match_t kind;
    void *got = select_cert(idx, sni, &kind);

    cr_assert_eq(got, want, "'%s': got %p, want %p", sni, got, want);
    cr_assert_eq(kind, want_kind, "'%s': match kind %d, want %d", sni, kind, want_kind);
}

/* a: www.example.com + example.com; b: *.example.com; c: *.eu.example.com */
static tf_cs__index_t *tenant_index(void)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();

    cr_assert_not_null(b);
    add_valid(b, "www.example.com", &cert_a, 90);
    add_valid(b, "example.com", &cert_a, 90);
    add_valid(b, "*.example.com", &cert_b, 90);
    add_valid(b, "*.eu.example.com", &cert_c, 90);
    return build(b, NULL);
}

Test(index, exact_match)
{
    tf_cs__index_t *idx = tenant_index();

    expect_select(idx, "www.example.com", &cert_a, TF_CS_MATCH_EXACT);
    expect_select(idx, "example.com", &cert_a, TF_CS_MATCH_EXACT);
    cr_assert_eq(tf_cs__index_exact_count(idx), 2);
    cr_assert_eq(tf_cs__index_wildcard_count(idx), 2);
    tf_cs__index_free(idx);
}

Test(index, one_label_wildcard)
{
    tf_cs__index_t *idx = tenant_index();

    expect_select(idx, "shop.example.com", &cert_b, TF_CS_MATCH_WILDCARD);
    expect_select(idx, "paris.eu.example.com", &cert_c, TF_CS_MATCH_WILDCARD);
    tf_cs__index_free(idx);
}

Test(index, exact_beats_wildcard)
{
    tf_cs__index_t *idx = tenant_index();

    /* www.example.com is covered by *.example.com too, but the exact name wins (rule 2). */
    expect_select(idx, "www.example.com", &cert_a, TF_CS_MATCH_EXACT);
    /* eu.example.com: only *.example.com; *.eu.example.com does not cover its own apex. */
    expect_select(idx, "eu.example.com", &cert_b, TF_CS_MATCH_WILDCARD);
    tf_cs__index_free(idx);
}

Test(index, wildcard_misses_apex_and_two_labels)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    tf_cs__index_t *idx;

    add_valid(b, "*.example.com", &cert_b, 90);
    idx = build(b, NULL);
    expect_select(idx, "example.com", NULL, TF_CS_MATCH_NONE);
    expect_select(idx, "a.b.example.com", NULL, TF_CS_MATCH_NONE);
    expect_select(idx, "a.example.com", &cert_b, TF_CS_MATCH_WILDCARD);
    expect_select(idx, "com", NULL, TF_CS_MATCH_NONE);
    tf_cs__index_free(idx);
}

Test(index, case_and_trailing_dot)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    tf_cs__index_t *idx;

    add_valid(b, "WWW.Example.COM", &cert_a, 90);
    add_valid(b, "*.Example.Com.", &cert_b, 90);
    idx = build(b, NULL);
    expect_select(idx, "www.example.com", &cert_a, TF_CS_MATCH_EXACT);
    expect_select(idx, "WWW.EXAMPLE.COM", &cert_a, TF_CS_MATCH_EXACT);
    expect_select(idx, "www.example.com.", &cert_a, TF_CS_MATCH_EXACT);
    expect_select(idx, "Mail.Example.Com.", &cert_b, TF_CS_MATCH_WILDCARD);
    expect_select(idx, "www.example.com..", NULL, TF_CS_MATCH_NONE);
    tf_cs__index_free(idx);
}

Test(index, lookup_wants_normalized_names)
{
    tf_cs__index_t *idx = tenant_index();
    tf_cs__match_t kind = TF_CS_MATCH_EXACT;
    char long_name[300];

    /* The SNI callback normalizes first; anything else simply finds nothing. */
    cr_assert_null(tf_cs__index_lookup(idx, "WWW.EXAMPLE.COM", &kind));
    cr_assert_eq(kind, TF_CS_MATCH_NONE);
    cr_assert_null(tf_cs__index_lookup(idx, "", &kind));
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    cr_assert_null(tf_cs__index_lookup(idx, long_name, NULL));
    tf_cs__index_free(idx);
}

Test(index, invalid_names_and_entries_refused)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    tf_cs__index_t *idx;
    static const char *const bad[] = {
        "f*.example.com",      "*.*.example.com", "a.*.example.com", "*", "",
        "my_host.example.com", "a..example.com",  "example.com.."};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(tf_cs__index_builder_add(b, bad[i], &cert_a, 0, NOW + DAY), TF_EINVAL, "'%s'",
                     bad[i]);
    cr_assert_eq(tf_cs__index_builder_add(b, "ok.example.com", NULL, 0, NOW + DAY), TF_EINVAL);
    idx = build(b, NULL);
    /* A partial wildcard matches nothing: "foo.example.com" is unknown. */
    expect_select(idx, "foo.example.com", NULL, TF_CS_MATCH_NONE);
    expect_select(idx, "ok.example.com", NULL, TF_CS_MATCH_NONE);
    cr_assert_eq(tf_cs__index_exact_count(idx) + tf_cs__index_wildcard_count(idx), 0);
    tf_cs__index_free(idx);
}

Test(index, empty_index)
{
    tf_cs__index_t *idx = build(tf_cs__index_builder_new(), NULL);

    expect_select(idx, "www.example.com", NULL, TF_CS_MATCH_NONE);
    cr_assert_gt(tf_cs__index_memory(idx), 0);
    tf_cs__index_free(idx);
}

Test(index, builder_free_without_build)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();

    add_valid(b, "www.example.com", &cert_a, 90);
    tf_cs__index_builder_free(b);
    tf_cs__index_builder_free(NULL);
    tf_cs__index_free(NULL);
}

/* A renewal dropped beside the old file wins at once, whichever was added first. */
Test(ranking, renewed_pair_later_not_after_wins)
{
    for (int order = 0; order < 2; order++) {
        tf_cs__index_builder_t *b = tf_cs__index_builder_new();
        struct conflicts c = {.n = 0};
        tf_cs__index_t *idx;

        add_valid(b, "www.example.com", order ? &cert_b : &cert_a, order ? 455 : 10);
        add_valid(b, "www.example.com", order ? &cert_a : &cert_b, order ? 10 : 455);
        idx = build(b, &c);
        expect_select(idx, "www.example.com", &cert_b, TF_CS_MATCH_EXACT);
        cr_assert_eq(c.n, 1);
        cr_assert_str_eq(c.list[0].name, "www.example.com");
        cr_assert_eq(c.list[0].winner, &cert_b);
        cr_assert_eq(c.list[0].loser, &cert_a);
        cr_assert_eq(c.list[0].reason, TF_CS_CONFLICT_NOT_AFTER);
        tf_cs__index_free(idx);
    }
}

/* Valid now beats a later notAfter: a certificate issued ahead of time, not yet valid, does
 * not displace the one in service; nor does an expired one displace a valid one. */
Test(ranking, valid_now_beats_later_not_after)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    struct conflicts c = {.n = 0};
    tf_cs__index_t *idx;

    cr_assert_eq(tf_cs__index_builder_add(b, "a.example.com", &cert_b, NOW + DAY, NOW + 400 * DAY),
                 0);
    add_valid(b, "a.example.com", &cert_a, 5);
    idx = build(b, &c);
    expect_select(idx, "a.example.com", &cert_a, TF_CS_MATCH_EXACT);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.list[0].winner, &cert_a);
    cr_assert_eq(c.list[0].loser, &cert_b);
    cr_assert_eq(c.list[0].reason, TF_CS_CONFLICT_VALID_NOW);
    tf_cs__index_free(idx);
}

Test(ranking, expired_loses_to_valid)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    struct conflicts c = {.n = 0};
    tf_cs__index_t *idx;

    add_valid(b, "*.example.com", &cert_a, 3);
    cr_assert_eq(tf_cs__index_builder_add(b, "*.example.com", &cert_b, 0, NOW - DAY), 0);
    idx = build(b, &c);
    expect_select(idx, "x.example.com", &cert_a, TF_CS_MATCH_WILDCARD);
    cr_assert_eq(c.n, 1);
    cr_assert_str_eq(c.list[0].name, "*.example.com", "reported as the operator wrote it");
    cr_assert_eq(c.list[0].reason, TF_CS_CONFLICT_VALID_NOW);
    tf_cs__index_free(idx);
}

/* Neither valid: the latest notAfter still wins, so something is served. */
Test(ranking, both_expired_latest_not_after_wins)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    tf_cs__index_t *idx;

    cr_assert_eq(tf_cs__index_builder_add(b, "old.example.com", &cert_a, 0, NOW - 9 * DAY), 0);
    cr_assert_eq(tf_cs__index_builder_add(b, "old.example.com", &cert_b, 0, NOW - 2 * DAY), 0);
    cr_assert_eq(tf_cs__index_builder_add(b, "old.example.com", &cert_c, 0, NOW - 5 * DAY), 0);
    idx = build(b, NULL);
    expect_select(idx, "old.example.com", &cert_b, TF_CS_MATCH_EXACT);
    tf_cs__index_free(idx);
}

Test(ranking, tie_keeps_first_added)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    struct conflicts c = {.n = 0};
    tf_cs__index_t *idx;

    add_valid(b, "t.example.com", &cert_c, 30);
    add_valid(b, "t.example.com", &cert_a, 30);
    add_valid(b, "t.example.com", &cert_b, 30);
    idx = build(b, &c);
    expect_select(idx, "t.example.com", &cert_c, TF_CS_MATCH_EXACT);
    cr_assert_eq(c.n, 1, "three entries, one name: one report");
    cr_assert_eq(c.list[0].winner, &cert_c);
    cr_assert_eq(c.list[0].loser, &cert_a, "the runner-up is reported");
    cr_assert_eq(c.list[0].reason, TF_CS_CONFLICT_FIRST_ADDED);
    tf_cs__index_free(idx);
}

Test(conflicts, once_per_name_in_order)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    struct conflicts c = {.n = 0};
    tf_cs__index_t *idx;

    add_valid(b, "y.example.com", &cert_a, 30);
    add_valid(b, "x.example.com", &cert_a, 30);
    add_valid(b, "unique.example.com", &cert_a, 30);
    add_valid(b, "x.example.com", &cert_b, 60);
    add_valid(b, "y.example.com", &cert_b, 60);
    add_valid(b, "x.example.com", &cert_c, 45);
    add_valid(b, "*.example.com", &cert_c, 45);
    add_valid(b, "*.example.com", &cert_d, 45);
    idx = build(b, &c);
    cr_assert_eq(c.n, 3);
    cr_assert_str_eq(c.list[0].name, "y.example.com");
    cr_assert_str_eq(c.list[1].name, "x.example.com");
    cr_assert_str_eq(c.list[2].name, "*.example.com");
    cr_assert_eq(c.list[1].winner, &cert_b);
    cr_assert_eq(c.list[1].loser, &cert_c, "runner-up by notAfter");
    cr_assert_eq(c.list[2].winner, &cert_c);
    cr_assert_eq(c.list[2].loser, &cert_d);
    expect_select(idx, "x.example.com", &cert_b, TF_CS_MATCH_EXACT);
    expect_select(idx, "unique.example.com", &cert_a, TF_CS_MATCH_EXACT);
    expect_select(idx, "z.example.com", &cert_c, TF_CS_MATCH_WILDCARD);
    tf_cs__index_free(idx);
}

Test(conflicts, none_for_distinct_ranks_or_repeated_names)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    struct conflicts c = {.n = 0};
    tf_cs__index_t *idx;

    /* An exact name beside a wildcard that covers it: different ranks, no conflict. */
    add_valid(b, "www.example.com", &cert_a, 30);
    add_valid(b, "*.example.com", &cert_b, 30);
    /* A certificate listing one name twice (CN and SAN, or in two cases). */
    add_valid(b, "api.example.org", &cert_c, 30);
    add_valid(b, "API.example.org", &cert_c, 30);
    idx = build(b, &c);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(tf_cs__index_exact_count(idx), 2);
    expect_select(idx, "api.example.org", &cert_c, TF_CS_MATCH_EXACT);
    tf_cs__index_free(idx);
}

/* ---- 100,000 certificates ------------------------------------------------------------------- */

#define MANY 100000

/* Certificate i: "tenant<i>.example.net" and, for every tenth, "*.t<i>.example.org". */
static tf_cs__index_t *many_index(int *entries)
{
    tf_cs__index_builder_t *b = tf_cs__index_builder_new();
    char name[64];

    for (int i = 0; i < MANY; i++) {
        snprintf(name, sizeof(name), "tenant%d.example.net", i);
        cr_assert_eq(tf_cs__index_builder_add(b, name, &entries[i], 0, NOW + DAY), 0);
        if (i % 10 == 0) {
            snprintf(name, sizeof(name), "*.t%d.example.org", i);
            cr_assert_eq(tf_cs__index_builder_add(b, name, &entries[i], 0, NOW + DAY), 0);
        }
    }
    return build(b, NULL);
}

Test(many, lookups_and_memory)
{
    int *entries = calloc(MANY, sizeof(int));
    tf_cs__index_t *idx = many_index(entries);
    char sni[64];
    tf_cs__match_t kind;

    cr_assert_eq(tf_cs__index_exact_count(idx), MANY);
    cr_assert_eq(tf_cs__index_wildcard_count(idx), MANY / 10);
    for (int i = 0; i < MANY; i++) {
        snprintf(sni, sizeof(sni), "tenant%d.example.net", i);
        cr_assert_eq(tf_cs__index_lookup(idx, sni, &kind), &entries[i], "%s", sni);
        cr_assert_eq(kind, TF_CS_MATCH_EXACT);
        snprintf(sni, sizeof(sni), "tenant%d.example.net", MANY + i);
        cr_assert_null(tf_cs__index_lookup(idx, sni, &kind), "%s", sni);
        snprintf(sni, sizeof(sni), "www.t%d.example.org", i);
        cr_assert_eq(tf_cs__index_lookup(idx, sni, &kind), i % 10 == 0 ? &entries[i] : NULL, "%s",
                     sni);
    }
    /* SPEC §10: ≤ 8 KiB per bundle in all; the index's share must be a small part of it. */
    size_t per_cert = tf_cs__index_memory(idx) / MANY;
    cr_log_info("index: %zu bytes per certificate at %d certificates", per_cert, MANY);
    cr_assert_lt(per_cert, 256, "index uses %zu bytes per certificate", per_cert);
    tf_cs__index_free(idx);
    free(entries);
}

/* Readers share the index without locks; under the sanitizers this also checks that a
 * lookup writes nothing. */
struct reader {
    const tf_cs__index_t *idx;
    int *entries;
    int start;
    int failures;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    char sni[64];

    for (int n = 0; n < MANY; n++) {
        int i = (r->start + n * 7919) % MANY;
        snprintf(sni, sizeof(sni), "tenant%d.example.net", i);
        if (tf_cs__index_lookup(r->idx, sni, NULL) != &r->entries[i])
            r->failures++;
    }
    return NULL;
}

Test(many, concurrent_readers)
{
    int *entries = calloc(MANY, sizeof(int));
    tf_cs__index_t *idx = many_index(entries);
    struct reader readers[4];
    pthread_t threads[4];

    for (int t = 0; t < 4; t++) {
        readers[t] = (struct reader){.idx = idx, .entries = entries, .start = t * 1000};
        cr_assert_eq(pthread_create(&threads[t], NULL, reader_main, &readers[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        cr_assert_eq(pthread_join(threads[t], NULL), 0);
        cr_assert_eq(readers[t].failures, 0);
    }
    tf_cs__index_free(idx);
    free(entries);
}
