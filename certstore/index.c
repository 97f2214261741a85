/* The SNI index: two immutable open-addressing hash tables over one string arena. See index.h.
 *
 * Building happens in three passes over the names added, in insertion order: file every name
 * in a build-time table that remembers, per distinct name, the best record and the runner-up
 * (SPEC §4.4 rule 5); report conflicts in the order names were first added; copy the winners
 * into the final tables and a compact arena that holds each distinct name once.
 */
#include "certstore/index.h"

#include "certstore/names.h"
#include "common/err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One name added to the builder. The name lives in the builder's arena. */
struct record {
    void *entry;
    int64_t not_before;
    int64_t not_after;
    uint32_t name_off;
    uint16_t name_len;
    uint8_t wildcard;
};

struct tf_cs__index_builder {
    struct record *recs;
    size_t nrecs, cap_recs;
    char *arena;
    size_t arena_len, arena_cap;
};

/* A final slot; empty when entry is NULL (a NULL entry is refused at add time). The name is
 * at arena + name_off, NUL-terminated; 16 bytes on LP64. */
struct slot {
    uint32_t hash;
    uint32_t name_off;
    void *entry;
};

struct table {
    struct slot *slots;
    size_t mask; /* capacity - 1; capacity is a power of two, at least twice the count */
    size_t count;
};

struct tf_cs__index {
    struct table exact;
    struct table wild;
    char *arena;
    size_t arena_len;
};

/* A build-time slot: record indexes plus one (0: none). */
struct bslot {
    uint32_t hash;
    uint32_t win;
    uint32_t run;
    uint32_t reported;
};

struct btable {
    struct bslot *slots;
    size_t mask;
    size_t count;
};

/* ---- hashing -------------------------------------------------------------------------------- */

/* FNV-1a over the bytes, then a 64-bit finalizer (MurmurHash3 fmix64) so that the low bits
 * used for the slot index depend on every byte. The table's content comes from the
 * operator's certificates, not from clients, so a keyed hash buys nothing here: a client
 * chooses only what to look up, not how the table is laid out. */
static uint32_t hash_name(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* The smallest power of two holding `count` names at most half full; 0 for no names. */
static size_t table_capacity(size_t count)
{
    size_t cap = 8;

    if (count == 0)
        return 0;
    while (cap < count * 2)
        cap *= 2;
    return cap;
}

/* ---- builder -------------------------------------------------------------------------------- */

tf_cs__index_builder_t *tf_cs__index_builder_new(void)
{
    return calloc(1, sizeof(tf_cs__index_builder_t));
}

void tf_cs__index_builder_free(tf_cs__index_builder_t *b)
{
    if (b == NULL)
        return;
    free(b->recs);
    free(b->arena);
    free(b);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
    size_t n = *cap ? *cap : first;
    void *q;

    while (n < need)
        n *= 2;
    if (n == *cap)
        return 0;
    q = realloc(*p, n * elem);
    if (q == NULL)
        return TF_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

/* Copies `len` bytes and a NUL to the end of the arena; the offset goes to *off. */
static int arena_append(char **arena, size_t *len, size_t *cap, const char *s, size_t n,
                        uint32_t *off)
{
    if (*len + n + 1 > UINT32_MAX)
        return TF_ETOOBIG;
    if (grow((void **)arena, cap, *len + n + 1, 1, 4096) != 0)
        return TF_ENOMEM;
    memcpy(*arena + *len, s, n);
    (*arena)[*len + n] = '\0';
    *off = (uint32_t)*len;
    *len += n + 1;
    return 0;
}

int tf_cs__index_builder_add(tf_cs__index_builder_t *b, const char *name, void *entry,
                             int64_t not_before, int64_t not_after)
{
    char key[TF_CS_NAME_BUF];
    size_t key_len = 0;
    tf_cs__pattern_kind_t kind;
    struct record *r;
    uint32_t off;
    int err;

    if (entry == NULL || name == NULL)
        return TF_EINVAL;
    kind = tf_cs__pattern_classify(name, strlen(name), key, &key_len, NULL);
    if (kind == TF_CS_PATTERN_INVALID)
        return TF_EINVAL;
    /* Record indexes travel as uint32_t plus one. */
    if (b->nrecs >= UINT32_MAX - 1)
        return TF_ETOOBIG;
    if (grow((void **)&b->recs, &b->cap_recs, b->nrecs + 1, sizeof(*b->recs), 64) != 0)
        return TF_ENOMEM;
    err = arena_append(&b->arena, &b->arena_len, &b->arena_cap, key, key_len, &off);
    if (err != 0)
        return err;
    r = &b->recs[b->nrecs++];
    *r = (struct record){.entry = entry,
                         .not_before = not_before,
                         .not_after = not_after,
                         .name_off = off,
                         .name_len = (uint16_t)key_len,
                         .wildcard = kind == TF_CS_PATTERN_WILDCARD};
    return 0;
}

/* ---- ranking (SPEC §4.4 rule 5) ------------------------------------------------------------- */

static bool valid_at(const struct record *r, int64_t now)
{
    return r->not_before <= now && now <= r->not_after;
}

/* Does `later` (added after `earlier`) outrank it? Equal ranks keep the earlier. */
static bool outranks(const struct record *later, const struct record *earlier, int64_t now)
{
    bool lv = valid_at(later, now), ev = valid_at(earlier, now);

    if (lv != ev)
        return lv;
    return later->not_after > earlier->not_after;
}

static tf_cs__conflict_reason_t conflict_reason(const struct record *w, const struct record *l,
                                                int64_t now)
{
    if (valid_at(w, now) != valid_at(l, now))
        return TF_CS_CONFLICT_VALID_NOW;
    if (w->not_after != l->not_after)
        return TF_CS_CONFLICT_NOT_AFTER;
    return TF_CS_CONFLICT_FIRST_ADDED;
}

/* Record i joins the slot of its name: it becomes the winner, the runner-up, or neither. An
 * entry that lists a name twice changes nothing the second time. */
static void rank_into(struct bslot *s, const struct record *recs, uint32_t i, int64_t now)
{
    const struct record *r = &recs[i];

    if (recs[s->win - 1].entry == r->entry || (s->run != 0 && recs[s->run - 1].entry == r->entry))
        return;
    if (outranks(r, &recs[s->win - 1], now)) {
        s->run = s->win;
        s->win = i + 1;
    } else if (s->run == 0 || outranks(r, &recs[s->run - 1], now)) {
        s->run = i + 1;
    }
}

/* ---- build ---------------------------------------------------------------------------------- */

/* The slot for record i's name in a build-time table: the existing one, or a fresh one that
 * record i now owns (win == i + 1). */
static struct bslot *bslot_for(struct btable *t, const tf_cs__index_builder_t *b, uint32_t i)
{
    const struct record *r = &b->recs[i];
    const char *name = b->arena + r->name_off;
    uint32_t h = hash_name(name, r->name_len);

    for (size_t j = h & t->mask;; j = (j + 1) & t->mask) {
        struct bslot *s = &t->slots[j];
        if (s->win == 0) {
            *s = (struct bslot){.hash = h, .win = i + 1};
            t->count++;
            return s;
        }
        const struct record *o = &b->recs[s->win - 1];
        if (s->hash == h && o->name_len == r->name_len &&
            memcmp(b->arena + o->name_off, name, r->name_len) == 0)
            return s;
    }
}

static void report_conflicts(struct btable tabs[2], const tf_cs__index_builder_t *b, int64_t now,
                             tf_cs__conflict_cb cb, void *ud)
{
    char name[TF_CS_NAME_BUF + 2];

    for (uint32_t i = 0; i < b->nrecs; i++) {
        const struct record *r = &b->recs[i];
        struct bslot *s = bslot_for(&tabs[r->wildcard], b, i);
        if (s->run == 0 || s->reported)
            continue;
        s->reported = 1;
        /* An operator wrote "*.example.com", not the base it is filed under. */
        size_t pre = r->wildcard ? 2 : 0;
        memcpy(name, "*.", pre);
        memcpy(name + pre, b->arena + r->name_off, r->name_len + 1u);
        const struct record *w = &b->recs[s->win - 1], *l = &b->recs[s->run - 1];
        cb(name, w->entry, l->entry, conflict_reason(w, l, now), ud);
    }
}

/* Copies the winners of a build-time table into a final one, their names into the arena. */
static void finish_table(struct table *t, const struct btable *bt, const tf_cs__index_builder_t *b,
                         char *arena, size_t *arena_len)
{
    for (size_t j = 0; bt->slots != NULL && j <= bt->mask; j++) {
        const struct bslot *s = &bt->slots[j];
        if (s->win == 0)
            continue;
        const struct record *w = &b->recs[s->win - 1];
        memcpy(arena + *arena_len, b->arena + w->name_off, w->name_len + 1u);
        t->slots[j] =
            (struct slot){.hash = s->hash, .name_off = (uint32_t)*arena_len, .entry = w->entry};
        *arena_len += w->name_len + 1u;
    }
    t->count = bt->count;
}

static size_t winners_arena_size(const struct btable *bt, const tf_cs__index_builder_t *b)
{
    size_t n = 0;

    for (size_t j = 0; bt->slots != NULL && j <= bt->mask; j++)
        if (bt->slots[j].win != 0)
            n += b->recs[bt->slots[j].win - 1].name_len + 1u;
    return n;
}

/* Sizes both kinds of tables for the names of each kind, counting duplicates: a table is
 * then at most half full whatever the duplicates. */
static int alloc_tables(struct btable bt[2], struct table t[2], const tf_cs__index_builder_t *b)
{
    size_t count[2] = {0, 0};

    for (size_t i = 0; i < b->nrecs; i++)
        count[b->recs[i].wildcard]++;
    for (int k = 0; k < 2; k++) {
        size_t cap = table_capacity(count[k]);
        if (cap == 0)
            continue;
        bt[k].slots = calloc(cap, sizeof(struct bslot));
        t[k].slots = calloc(cap, sizeof(struct slot));
        if (bt[k].slots == NULL || t[k].slots == NULL)
            return TF_ENOMEM;
        bt[k].mask = t[k].mask = cap - 1;
    }
    return 0;
}

int tf_cs__index_build(tf_cs__index_builder_t *b, int64_t now, tf_cs__index_t **out,
                       tf_cs__conflict_cb conflict_cb, void *ud)
{
    struct btable bt[2] = {{0}};
    struct table t[2] = {{0}};
    tf_cs__index_t *idx = NULL;
    int err = TF_ENOMEM;

    if (b == NULL || out == NULL) {
        tf_cs__index_builder_free(b);
        return TF_EINVAL;
    }
    if (alloc_tables(bt, t, b) != 0)
        goto out;
    for (uint32_t i = 0; i < b->nrecs; i++) {
        struct bslot *s = bslot_for(&bt[b->recs[i].wildcard], b, i);
        if (s->win != i + 1)
            rank_into(s, b->recs, i, now);
    }
    if (conflict_cb != NULL)
        report_conflicts(bt, b, now, conflict_cb, ud);
    idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        goto out;
    /* One byte at least, so that an empty index still has an arena to point into. */
    idx->arena = malloc(winners_arena_size(&bt[0], b) + winners_arena_size(&bt[1], b) + 1);
    if (idx->arena == NULL)
        goto out;
    idx->exact = t[0];
    idx->wild = t[1];
    t[0].slots = t[1].slots = NULL;
    finish_table(&idx->exact, &bt[0], b, idx->arena, &idx->arena_len);
    finish_table(&idx->wild, &bt[1], b, idx->arena, &idx->arena_len);
    *out = idx;
    idx = NULL;
    err = 0;
out:
    tf_cs__index_free(idx);
    free(t[1].slots);
    free(t[0].slots);
    free(bt[1].slots);
    free(bt[0].slots);
    tf_cs__index_builder_free(b);
    return err;
}

/* ---- lookup --------------------------------------------------------------------------------- */

static void *table_find(const struct table *t, const char *arena, const char *key, size_t len)
{
    uint32_t h;

    if (t->count == 0)
        return NULL;
    h = hash_name(key, len);
    /* The table is never more than half full, so an empty slot ends every probe. strncmp
     * stops at the stored name's NUL, so a shorter stored name is never read past. */
    for (size_t j = h & t->mask;; j = (j + 1) & t->mask) {
        const struct slot *s = &t->slots[j];
        if (s->entry == NULL)
            return NULL;
        if (s->hash == h && strncmp(arena + s->name_off, key, len) == 0 &&
            arena[s->name_off + len] == '\0')
            return s->entry;
    }
}

void *tf_cs__index_lookup(const tf_cs__index_t *index, const char *sni_normalized,
                          tf_cs__match_t *kind)
{
    size_t len = strnlen(sni_normalized, TF_CS_NAME_BUF), base_len = 0;
    const char *base;
    void *e = NULL;
    tf_cs__match_t k = TF_CS_MATCH_NONE;

    if (len == 0 || len > TF_CS_NAME_MAX)
        goto out;
    e = table_find(&index->exact, index->arena, sni_normalized, len);
    if (e != NULL) {
        k = TF_CS_MATCH_EXACT;
        goto out;
    }
    base = tf_cs__sni_wildcard_base(sni_normalized, len, &base_len);
    if (base != NULL)
        e = table_find(&index->wild, index->arena, base, base_len);
    if (e != NULL)
        k = TF_CS_MATCH_WILDCARD;
out:
    if (kind != NULL)
        *kind = k;
    return e;
}

size_t tf_cs__index_exact_count(const tf_cs__index_t *index)
{
    return index->exact.count;
}

size_t tf_cs__index_wildcard_count(const tf_cs__index_t *index)
{
    return index->wild.count;
}

static size_t table_bytes(const struct table *t)
{
    return t->slots != NULL ? (t->mask + 1) * sizeof(struct slot) : 0;
}

size_t tf_cs__index_memory(const tf_cs__index_t *index)
{
    return sizeof(*index) + table_bytes(&index->exact) + table_bytes(&index->wild) +
           index->arena_len + 1;
}

void tf_cs__index_free(tf_cs__index_t *index)
{
    if (index == NULL)
        return;
    free(index->exact.slots);
    free(index->wild.slots);
    free(index->arena);
    free(index);
}
