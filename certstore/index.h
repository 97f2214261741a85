/* The SNI index: certificate names to entries (SPEC §4.4 rules 2, 3 and 5). Internal to
 * certstore/.
 *
 * Built once by one thread from a builder, then immutable: any number of threads may call
 * tf_cs__index_lookup() on it at the same time without locks. Publishing a new index to other
 * threads (an atomic pointer swap with release/acquire ordering) and keeping it alive while
 * they use it (reference counting) belong to the caller.
 *
 * Two open-addressing hash tables, one for exact names and one for wildcard bases
 * ("*.example.com" is filed under "example.com"), hold an entry pointer and the offset of the
 * name in one string arena. A lookup hashes the SNI once or twice and probes a table kept at
 * most half full: its cost does not depend on the number of entries. Memory: 16 bytes per
 * slot, 2-4 slots per distinct name, plus each name once with its NUL; about 60-90 bytes per
 * name with typical lengths (tf_cs__index_memory() tells).
 *
 * Entries are opaque `void *` the index never dereferences nor frees; they must outlive the
 * index.
 */
#ifndef TF_CERTSTORE_INDEX_H
#define TF_CERTSTORE_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct tf_cs__index tf_cs__index_t;
typedef struct tf_cs__index_builder tf_cs__index_builder_t;

typedef enum tf_cs__match {
    TF_CS_MATCH_NONE = 0, /* no certificate name covers the SNI: the caller's default applies */
    TF_CS_MATCH_EXACT,
    TF_CS_MATCH_WILDCARD,
} tf_cs__match_t;

/* Why the winner of a name beat the runner-up (SPEC §4.4 rule 5, in that order). */
typedef enum tf_cs__conflict_reason {
    TF_CS_CONFLICT_VALID_NOW = 1, /* the winner is valid now, the other is not */
    TF_CS_CONFLICT_NOT_AFTER,     /* both valid now (or both not): the winner expires later */
    TF_CS_CONFLICT_FIRST_ADDED,   /* same validity and notAfter: the one added first wins */
} tf_cs__conflict_reason_t;

/* Called by tf_cs__index_build() once per name that more than one entry covers at the same
 * rank (two exact names, or two wildcards; an exact name beside a wildcard is no conflict).
 * `name` is the certificate name as an operator wrote it ("www.example.com",
 * "*.example.com"), valid during the call only. `loser` is the runner-up: when three or more
 * entries share a name the others are not reported separately. An entry that lists the same
 * name twice does not conflict with itself. Calls come in the order the names were first
 * added, on the building thread. */
typedef void (*tf_cs__conflict_cb)(const char *name, void *winner, void *loser,
                                   tf_cs__conflict_reason_t reason, void *ud);

/* A new, empty builder; NULL when out of memory. Freed by tf_cs__index_build() or
 * tf_cs__index_builder_free(). */
tf_cs__index_builder_t *tf_cs__index_builder_new(void);

/* Files `entry` under one certificate name `name` (NUL-terminated, raw: it is classified and
 * normalized by tf_cs__pattern_classify(), so "WWW.Example.com" and "*.example.com" are fine),
 * with the certificate's validity in seconds since the epoch (notBefore, notAfter, both
 * inclusive). Call once per name of each certificate. Returns 0; TF_EINVAL for a NULL
 * entry or an invalid name (nothing is added: the caller has reported it when it
 * classified the certificate's names); TF_ENOMEM; TF_ETOOBIG past 2^32 bytes of names. */
__attribute__((warn_unused_result)) int tf_cs__index_builder_add(tf_cs__index_builder_t *b,
                                                                 const char *name, void *entry,
                                                                 int64_t not_before,
                                                                 int64_t not_after);

/* Discards a builder that will not be built. NULL is fine. */
void tf_cs__index_builder_free(tf_cs__index_builder_t *b);

/* Builds the index and consumes the builder, which is freed whether or not this succeeds.
 * For every name, the winner among entries of the same rank is the one valid at `now`, then
 * the one with the latest notAfter, then the one added first (SPEC §4.4 rule 5); each name
 * with more than one entry is reported once through `conflict_cb` (may be NULL) before this
 * returns. On success *out is the new index, freed with tf_cs__index_free(), and 0 is
 * returned; TF_ENOMEM (or TF_EINVAL for a NULL argument) otherwise, *out untouched. An
 * empty builder makes a valid, empty index. */
__attribute__((warn_unused_result)) int tf_cs__index_build(tf_cs__index_builder_t *b, int64_t now,
                                                           tf_cs__index_t **out,
                                                           tf_cs__conflict_cb conflict_cb,
                                                           void *ud);

/* The entry for a normalized SNI (the output of tf_cs__sni_normalize(), NUL-terminated):
 * the exact name's entry, else the wildcard entry for its base, else NULL. *kind (may be
 * NULL) says which. No allocation, no lock, no write to shared memory. A name that is not
 * normalized simply finds nothing. */
void *tf_cs__index_lookup(const tf_cs__index_t *index, const char *sni_normalized,
                          tf_cs__match_t *kind);

/* Distinct exact names and wildcard bases held. */
size_t tf_cs__index_exact_count(const tf_cs__index_t *index);
size_t tf_cs__index_wildcard_count(const tf_cs__index_t *index);

/* Heap bytes the index holds (tables, arena, header), for the memory budget (SPEC §10). */
size_t tf_cs__index_memory(const tf_cs__index_t *index);

/* Frees the index; the entries are the caller's. NULL is fine. */
void tf_cs__index_free(tf_cs__index_t *index);

#endif
