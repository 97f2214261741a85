/* proxy/net/balance.c: the balancers over routes built by hand (the
 * loader's routes[] is another change's): distributions, stickiness,
 * backups, max_conns, and least_conn shared by two "workers" (two
 * balancers over one registry). Pure: no network. */
#include "proxy/net/backends.h"
#include "proxy/net/balance.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define NOW 1000u
#define MAXB 8

typedef struct {
    tf_conf_backend_t conf[MAXB];
    tf_backend_t backends[MAXB];
    char text[MAXB][32];
    tf_conf_route_t route;
    tf_balancer_t bal;
    size_t n;
} fixture_t;

static tf_backends_t *reg;

static void setup(void)
{
    cr_assert_eq(tf_backends_new(&reg), 0);
}

static void teardown(void)
{
    tf_backends_free(reg);
    reg = NULL;
}

TestSuite(proxy_balance, .init = setup, .fini = teardown, .timeout = 20);

/* Backends 10.0.0.<ids[i]>:80 with WEIGHTS (NULL: 1 each). */
static void build(fixture_t *f, tf_conf_balance_t balance, const int *ids, const int *weights,
                  size_t n)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(f->text[i], sizeof f->text[i], "10.0.0.%d:80", ids[i]);
        f->conf[i] = (tf_conf_backend_t){.weight = weights ? (uint16_t)weights[i] : 1};
        f->conf[i].addr.text = f->text[i];
        tf_backend_t *b = &f->backends[i];
        b->text = f->text[i];
        b->conf = &f->conf[i];
        b->state = tf_backends_acquire(reg, "acme", f->text[i]);
        cr_assert_not_null(b->state);
    }
    f->route = (tf_conf_route_t){.path = "/app", .kind = TF_CONF_ROUTE_BACKENDS,
                                 .backends = {f->conf, n}, .balance = balance, .cookie = "TFSRV"};
    cr_assert_eq(tf_balancer_init(&f->bal, reg, "acme", &f->route, f->backends, n), 0);
}

static void unbuild(fixture_t *f)
{
    tf_balancer_fini(&f->bal);
    for (size_t i = 0; i < f->n; i++)
        tf_backends_release(reg, f->backends[i].state);
}

/* A pick whose in-flight count is given back at once. */
static uint32_t pick1(fixture_t *f, const tf_pick_hint_t *hint)
{
    tf_pick_t p = tf_balancer_pick(&f->bal, hint, NOW);
    if (p.backend < f->n)
        tf_balancer_end(&f->bal, p.backend, false);
    return p.backend;
}

static const int ids3[] = {1, 2, 3}, ids5[] = {1, 2, 3, 4, 5};

Test(proxy_balance, weights_3_to_1_give_exactly_3_to_1_and_smoothly)
{
    fixture_t f;
    static const int w[] = {3, 1};
    build(&f, TF_CONF_BALANCE_ROUND_ROBIN, ids3, w, 2);
    unsigned count[2] = {0, 0};
    unsigned run = 0, longest = 0;
    uint32_t last = TF_UPSTREAM_NONE;
    for (int i = 0; i < 400; i++) {
        uint32_t b = pick1(&f, NULL);
        cr_assert_lt(b, 2u);
        count[b]++;
        run = b == last ? run + 1 : 1;
        longest = run > longest ? run : longest;
        last = b;
    }
    cr_expect_eq(count[0], 300);
    cr_expect_eq(count[1], 100);
    cr_expect_leq(longest, 3u, "smooth: never more than 3 in a row for weight 3");
    unbuild(&f);
}

Test(proxy_balance, least_conn_prefers_the_emptier_backend_across_two_workers)
{
    fixture_t a, b;
    build(&a, TF_CONF_BALANCE_LEAST_CONN, ids3, NULL, 2);
    build(&b, TF_CONF_BALANCE_LEAST_CONN, ids3, NULL, 2); /* another worker's table */
    cr_expect_eq(a.bal.lc, b.bal.lc, "one structure for the route, process-wide");
    /* Worker A holds three requests at whichever it gets first... */
    tf_pick_t p = tf_balancer_pick(&a.bal, NULL, NOW);
    cr_assert_lt(p.backend, 2u);
    uint32_t busy = p.backend;
    tf_bstate_begin(a.backends[busy].state); /* and two more, by another route */
    tf_bstate_begin(a.backends[busy].state);
    /* ...so worker B's picks go to the other, until it is as busy. */
    tf_pick_t q1 = tf_balancer_pick(&b.bal, NULL, NOW);
    tf_pick_t q2 = tf_balancer_pick(&b.bal, NULL, NOW);
    cr_expect_eq(q1.backend, 1 - busy);
    cr_expect_eq(q2.backend, 1 - busy, "1 in flight there against 3");
    /* A's requests end: B now prefers the emptied one. */
    tf_balancer_end(&a.bal, busy, false);
    tf_bstate_end(a.backends[busy].state);
    tf_bstate_end(a.backends[busy].state);
    tf_pick_t q3 = tf_balancer_pick(&b.bal, NULL, NOW);
    cr_expect_eq(q3.backend, busy, "0 in flight against 2");
    tf_balancer_end(&b.bal, q1.backend, false);
    tf_balancer_end(&b.bal, q2.backend, false);
    tf_balancer_end(&b.bal, q3.backend, false);
    cr_expect_eq(tf_bstate_in_flight(a.backends[0].state) + tf_bstate_in_flight(a.backends[1].state),
                 0);
    unbuild(&a);
    unbuild(&b);
}

/* A backend this route shares with another route of the tenant: the other
 * route's requests ending are not told to this route's heap, whose load
 * for it stays high, deep in the heap; within a moment (LC_REBUILD_MS) the
 * heap is read again and the idle backend is preferred. */
Test(proxy_balance, least_conn_sees_loads_that_other_routes_gave_back)
{
    fixture_t f;
    build(&f, TF_CONF_BALANCE_LEAST_CONN, ids3, NULL, 3);
    tf_bstate_t *a = f.backends[0].state;
    for (int i = 0; i < 10; i++)
        tf_bstate_begin(a); /* another route's requests */
    tf_pick_t p1 = tf_balancer_pick(&f.bal, NULL, NOW);
    tf_pick_t p2 = tf_balancer_pick(&f.bal, NULL, NOW);
    cr_assert_neq(p1.backend, 0);
    cr_assert_neq(p2.backend, 0);
    for (int i = 0; i < 10; i++)
        tf_bstate_end(a); /* ...end, unknown to this route's heap */
    tf_pick_t p3 = tf_balancer_pick(&f.bal, NULL, NOW + 1000);
    cr_expect_eq(p3.backend, 0, "the idle backend, 0 in flight against 1 and 1");
    tf_balancer_end(&f.bal, p1.backend, false);
    tf_balancer_end(&f.bal, p2.backend, false);
    tf_balancer_end(&f.bal, p3.backend, false);
    unbuild(&f);
}

Test(proxy_balance, least_conn_weights_and_ties)
{
    fixture_t f;
    static const int w[] = {1, 2};
    build(&f, TF_CONF_BALANCE_LEAST_CONN, ids3, w, 2);
    /* Held, not ended: (in flight + 1) / weight decides; 6 picks go 2:4. */
    unsigned count[2] = {0, 0};
    for (int i = 0; i < 6; i++)
        count[tf_balancer_pick(&f.bal, NULL, NOW).backend]++;
    cr_expect_eq(count[0], 2);
    cr_expect_eq(count[1], 4);
    for (int i = 0; i < 2; i++)
        tf_balancer_end(&f.bal, 0, false);
    for (int i = 0; i < 4; i++)
        tf_balancer_end(&f.bal, 1, false);
    unbuild(&f);
}

static void client(struct sockaddr_in *sa, unsigned i)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(0xC0A80000u + i); /* 192.168.x.y */
}

Test(proxy_balance, source_removing_one_of_five_moves_only_its_clients)
{
    fixture_t all, four;
    build(&all, TF_CONF_BALANCE_SOURCE, ids5, NULL, 5);
    static const int ids4[] = {1, 2, 4, 5}; /* 10.0.0.3 removed */
    build(&four, TF_CONF_BALANCE_SOURCE, ids4, NULL, 4);
    unsigned on_removed = 0, moved = 0, per[5] = {0};
    for (unsigned i = 0; i < 1000; i++) {
        struct sockaddr_in sa;
        client(&sa, i);
        tf_pick_hint_t h = {.client = (struct sockaddr *)&sa};
        uint32_t before = pick1(&all, &h), after = pick1(&four, &h);
        cr_assert_lt(before, 5u);
        cr_assert_lt(after, 4u);
        per[before]++;
        cr_expect_eq(pick1(&all, &h), before, "the same client, the same backend");
        if (strcmp(all.backends[before].text, "10.0.0.3:80") == 0)
            on_removed++;
        else if (strcmp(all.backends[before].text, four.backends[after].text) != 0)
            moved++;
    }
    cr_expect_eq(moved, 0, "clients of the other backends stay");
    cr_expect_gt(on_removed, 100u, "its share was about a fifth: %u", on_removed);
    for (int b = 0; b < 5; b++)
        cr_expect_gt(per[b], 100u, "backend %d has %u of 1000", b, per[b]);
    /* A backend down: its clients go to the next on the ring, others stay. */
    struct sockaddr_in sa;
    client(&sa, 7);
    tf_pick_hint_t h = {.client = (struct sockaddr *)&sa};
    uint32_t home = pick1(&all, &h);
    tf_bstate_failed(all.backends[home].state, true, NOW);
    uint32_t next = pick1(&all, &h);
    cr_expect_neq(next, home);
    cr_expect_lt(next, 5u);
    unbuild(&all);
    unbuild(&four);
}

/* The ID is keyed: another key, another ID (one who guesses a backend's
 * address cannot check the guess without the key). */
Test(proxy_balance, cookie_ids_depend_on_the_key)
{
    char zero[17], keyed[17];
    tf_balancer_cookie_id("acme", "10.0.0.2:80", zero);
    unsigned char key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)i;
    tf_balancer_set_cookie_key(key);
    tf_balancer_cookie_id("acme", "10.0.0.2:80", keyed);
    /* python3: hmac.new(bytes(range(32)), b"acme\0" b"10.0.0.2:80", "sha256").hexdigest()[:16] */
    cr_expect_str_eq(keyed, "f8ab9d5d9aa1f61b");
    cr_expect_str_neq(keyed, zero);
}

Test(proxy_balance, cookie_sticks_to_a_known_id_and_forged_ones_go_round_robin)
{
    fixture_t f;
    build(&f, TF_CONF_BALANCE_COOKIE, ids3, NULL, 3);
    char id[17];
    tf_balancer_cookie_id("acme", "10.0.0.2:80", id);
    cr_expect_str_eq(id, f.backends[1].cookie_id);
    /* python3: hmac.new(bytes(32), b"acme\0" b"10.0.0.2:80", "sha256").hexdigest()[:16]
     * (the key is all zeroes until `tlsfront run` sets it) */
    cr_expect_str_eq(id, "934b934c3d550e3f", "the same on every instance with the same key");
    cr_expect_eq(strspn(id, "0123456789abcdef"), 16, "16 hex digits");
    cr_expect_null(strstr(id, "10.0.0"), "no address in it");
    tf_pick_hint_t h = {.cookie = id, .cookie_len = 16};
    for (int i = 0; i < 100; i++) {
        tf_pick_t p = tf_balancer_pick(&f.bal, &h, NOW);
        cr_assert_eq(p.backend, 1, "pick %d", i);
        cr_assert(p.sticky_hit);
        tf_balancer_end(&f.bal, p.backend, false);
    }
    tf_bstate_state_t now;
    cr_assert_eq(tf_backends_set_admin(reg, "acme", "10.0.0.2:80", TF_BADMIN_DRAIN, &now), 0);
    tf_pick_t p = tf_balancer_pick(&f.bal, &h, NOW);
    cr_expect_neq(p.backend, 1, "drained: moved");
    cr_expect_not(p.sticky_hit);
    tf_balancer_end(&f.bal, p.backend, false);
    cr_assert_eq(tf_backends_set_admin(reg, "acme", "10.0.0.2:80", TF_BADMIN_READY, &now), 0);
    /* A forged ID: round robin over all three, never a sticky hit. */
    tf_pick_hint_t forged = {.cookie = "0123456789abcdef", .cookie_len = 16};
    unsigned seen[3] = {0, 0, 0};
    for (int i = 0; i < 30; i++) {
        tf_pick_t q = tf_balancer_pick(&f.bal, &forged, NOW);
        cr_assert_lt(q.backend, 3u);
        cr_expect_not(q.sticky_hit);
        seen[q.backend]++;
        tf_balancer_end(&f.bal, q.backend, false);
    }
    cr_expect(seen[0] == 10 && seen[1] == 10 && seen[2] == 10, "%u %u %u", seen[0], seen[1],
              seen[2]);
    unbuild(&f);
}

Test(proxy_balance, backups_serve_only_while_no_other_backend_is_usable)
{
    fixture_t f;
    build(&f, TF_CONF_BALANCE_ROUND_ROBIN, ids3, NULL, 3);
    f.conf[2].backup = true;
    for (int i = 0; i < 10; i++)
        cr_expect_neq(pick1(&f, NULL), 2, "backup unused while others are up");
    tf_bstate_check_result(f.backends[0].state, false, "status 500", 1, 1);
    tf_bstate_check_result(f.backends[1].state, false, "status 500", 1, 1);
    cr_expect_eq(pick1(&f, NULL), 2, "every other is down: the backup");
    tf_bstate_check_result(f.backends[1].state, true, "200", 1, 1);
    cr_expect_eq(pick1(&f, NULL), 1, "one is back: the backup rests");
    unbuild(&f);
}

Test(proxy_balance, max_conns_skips_full_backends_then_answers_full)
{
    fixture_t f;
    build(&f, TF_CONF_BALANCE_ROUND_ROBIN, ids3, NULL, 2);
    f.conf[0].max_conns = 1;
    f.conf[1].max_conns = 2;
    uint32_t got[3];
    for (int i = 0; i < 3; i++)
        got[i] = tf_balancer_pick(&f.bal, NULL, NOW).backend; /* held */
    unsigned on1 = (got[0] == 1) + (got[1] == 1) + (got[2] == 1);
    cr_expect_eq(on1, 2, "0 takes one, 1 takes two");
    cr_expect_eq(tf_balancer_pick(&f.bal, NULL, NOW).backend, TF_UPSTREAM_FULL);
    tf_balancer_end(&f.bal, 0, false);
    cr_expect_eq(tf_balancer_pick(&f.bal, NULL, NOW).backend, 0, "room again");
    tf_balancer_end(&f.bal, 0, false);
    tf_balancer_end(&f.bal, 1, false);
    tf_balancer_end(&f.bal, 1, false);
    unbuild(&f);
}

Test(proxy_balance, health_down_and_maint_are_never_picked_none_is_answered)
{
    fixture_t f;
    build(&f, TF_CONF_BALANCE_LEAST_CONN, ids3, NULL, 2);
    tf_bstate_check_result(f.backends[0].state, false, "timeout", 1, 1);
    tf_bstate_state_t now;
    cr_assert_eq(tf_backends_set_admin(reg, "acme", "10.0.0.2:80", TF_BADMIN_MAINT, &now), 0);
    cr_expect_eq(now, TF_BSTATE_MAINT);
    cr_expect_eq(tf_balancer_pick(&f.bal, NULL, NOW).backend, TF_UPSTREAM_NONE);
    unbuild(&f);
}

Test(proxy_balance, rise_and_fall)
{
    fixture_t f;
    build(&f, TF_CONF_BALANCE_ROUND_ROBIN, ids3, NULL, 1);
    tf_bstate_t *s = f.backends[0].state;
    cr_expect_eq(tf_bstate_state(s, NOW), TF_BSTATE_UP, "starts up");
    cr_expect_not(tf_bstate_check_result(s, false, "status 500", 2, 3));
    cr_expect_not(tf_bstate_check_result(s, false, "status 500", 2, 3));
    cr_expect(tf_bstate_check_result(s, false, "status 500", 2, 3), "down at the third");
    cr_expect_eq(tf_bstate_state(s, NOW), TF_BSTATE_DOWN);
    cr_expect_not(tf_bstate_check_result(s, true, "200", 2, 3));
    cr_expect(tf_bstate_check_result(s, true, "200", 2, 3), "up at the second pass");
    cr_expect_eq(tf_bstate_state(s, NOW), TF_BSTATE_UP);
    unbuild(&f);
}
