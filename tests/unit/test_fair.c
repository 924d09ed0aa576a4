/* The order inside a queue: groups served in turn by weight (deficit round robin), or arrival
 * order across groups (fifo); FIFO within a group either way; the invariants of lanes, the
 * turn and the heap under random changes. On a broker with a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "err.h"
#include "flow.h"
#include "grate.h"
#include "log.h"
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
setup(void **state)
{
    struct broker_cfg cfg;
    broker_cfg_default(&cfg);
    *state = fake_broker(&cfg, 1000 * MS);
    return 0;
}

static int
teardown(void **state)
{
    broker_free(*state);
    return 0;
}

/* Pushes n jobs of group g (payload: the group's name) to queue q (NULL: its route). */
static void
put(struct broker *b, const char *g, const char *q, uint32_t n)
{
    static struct sl_str pl[4096];
    struct wire_list l = { n, NULL, pl, NULL };
    struct sl_str qs;
    struct push_req req = { .group = S(g), .payloads = &l };
    struct push_res r;
    assert_true(n <= 4096);
    for (uint32_t i = 0; i < n; i++) {
        pl[i] = S(g);
    }
    if (q != NULL) {
        qs = S(q);
        req.queue = &qs;
    }
    assert_int_equal(broker_push(b, &req, &r), 0);
}

/* Reserves and acks one job at a time, n times; writes each job's group initial into seq. */
static void
take(struct broker *b, uint32_t n, char *seq)
{
    struct worker *w = flow_worker(b, S("w1"), 7);
    for (uint32_t i = 0; i < n; i++) {
        struct job *j;
        uint32_t got = 0;
        assert_int_equal(flow_reserve(b, w, 1, NULL, &j, &got), 0);
        assert_int_equal(got, 1);
        seq[i] = j->group->name[0];
        struct wire_list l = { 1, NULL, NULL, &j->id };
        uint64_t done, missing;
        assert_int_equal(flow_settle(b, FLOW_ACK, w, &l, NULL, 0, &done, &missing), 0);
        assert_int_equal(done, 1);
    }
    seq[n] = '\0';
}

static void
set_order(struct broker *b, const char *q, enum queue_order order)
{
    struct queue_settings s = { .has_order = true, .order = order };
    assert_int_equal(broker_queue_update(b, S(q), &s), 0);
}

static void
check(struct broker *b)
{
    for (uint32_t i = 0; i < b->nqueues; i++) {
        const char *why = queue_check(b->qorder[i]);
        if (why != NULL) {
            fail_msg("queue %s: %s", b->qorder[i]->name, why);
        }
    }
}

static size_t
count(const char *s, char c)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += *s == c;
    }
    return n;
}

static void
test_new_queues_and_default_serve_groups_in_turn(void **state)
{
    struct broker *b = *state;
    struct queue_settings none = { 0 };
    assert_int_equal(broker_queue_create(b, S("q1"), &none), 0);
    assert_int_equal(broker_queue_find(b, S("q1"))->order, QUEUE_ORDER_GROUPS);
    assert_int_equal(b->dflt->order, QUEUE_ORDER_GROUPS);
    /* A flood first, then two light groups: each light job waits one turn, not the flood. */
    put(b, "flood", NULL, 1000);
    put(b, "amy", NULL, 1);
    put(b, "bob", NULL, 2);
    char seq[16];
    take(b, 6, seq);
    assert_string_equal(seq, "fabfbf");
    check(b);
}

static void
test_fifo_order_is_arrival_order_across_groups(void **state)
{
    struct broker *b = *state;
    set_order(b, "default", QUEUE_ORDER_FIFO);
    put(b, "flood", NULL, 3);
    put(b, "amy", NULL, 1);
    put(b, "bob", NULL, 2);
    put(b, "amy", NULL, 1);
    char seq[16];
    take(b, 7, seq);
    assert_string_equal(seq, "fffabba");
    check(b);
}

static void
test_weights_give_turns_in_proportion(void **state)
{
    struct broker *b = *state;
    char seq[1001];
    put(b, "heavy", NULL, 2000);
    put(b, "light", NULL, 2000);
    put(b, "paid", NULL, 2000);
    assert_int_equal(broker_group_weight(b, S("paid"), 4 * GROUP_WEIGHT_ONE), 0);
    assert_int_equal(broker_group_weight(b, S("heavy"), GROUP_WEIGHT_ONE / 4), 0);
    take(b, 1000, seq);
    /* Shares 4 : 1 : 0.25 of 5.25 turns, within a turn's jobs. */
    size_t p = count(seq, 'p'), l = count(seq, 'l'), h = count(seq, 'h');
    assert_true(p >= 755 && p <= 770);
    assert_true(l >= 185 && l <= 195);
    assert_true(h >= 44 && h <= 52);
    assert_int_equal(p + l + h, 1000);
    check(b);
    /* A weight below the minimum or above the maximum is refused. */
    assert_int_equal(broker_group_weight(b, S("paid"), GROUP_WEIGHT_MIN - 1), SL_EBADREQ);
    assert_int_equal(broker_group_weight(b, S("paid"), GROUP_WEIGHT_MAX + 1), SL_EBADREQ);
}

/* A job's wait is bounded by one turn of the busy groups, whatever they hold. */
static void
test_a_light_job_waits_one_turn_of_the_busy_groups(void **state)
{
    struct broker *b = *state;
    char names[50][16];
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof(names[i]), "h%d", i);
        put(b, names[i], NULL, 200);
    }
    char seq[64];
    take(b, 10, seq);
    put(b, "late", NULL, 1);
    take(b, 51, seq);
    assert_non_null(strchr(seq, 'l'));
    check(b);
}

static void
test_each_group_keeps_its_own_order_and_a_handed_back_job_goes_first(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w1"), 7);
    put(b, "amy", NULL, 3);
    put(b, "bob", NULL, 3);
    struct job *j[2];
    uint32_t got = 0;
    assert_int_equal(flow_reserve(b, w, 2, NULL, j, &got), 0);
    assert_int_equal(got, 2);
    assert_int_equal(j[0]->id, 1); /* amy's first, then bob's first */
    assert_int_equal(j[1]->id, 4);
    uint64_t ids[2] = { j[0]->id, j[1]->id }, done, missing;
    struct wire_list l = { 2, NULL, NULL, ids };
    assert_int_equal(flow_settle(b, FLOW_RELEASE, w, &l, NULL, 0, &done, &missing), 0);
    check(b);
    uint64_t want[] = { 1, 4, 2, 5, 3, 6 };
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(flow_reserve(b, w, 1, NULL, j, &got), 0);
        assert_int_equal(j[0]->id, want[i]);
    }
    check(b);
}

static void
test_changing_order_keeps_each_groups_jobs_in_order(void **state)
{
    struct broker *b = *state;
    put(b, "amy", NULL, 2);
    put(b, "bob", NULL, 2);
    put(b, "amy", NULL, 1);
    set_order(b, "default", QUEUE_ORDER_FIFO);
    check(b);
    char seq[8];
    take(b, 2, seq);
    assert_string_equal(seq, "aa");
    set_order(b, "default", QUEUE_ORDER_GROUPS);
    check(b);
    take(b, 3, seq);
    assert_int_equal(count(seq, 'a'), 1);
    assert_int_equal(count(seq, 'b'), 2);
    check(b);
}

/* Random pushes, reserves, settles, route changes, order changes and purges: the lanes, the
 * turn and the heap stay consistent, and counts stay exact. */
static void
test_invariants_hold_under_random_changes(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w1"), 7);
    struct queue_settings none = { 0 };
    assert_int_equal(broker_queue_create(b, S("q1"), &none), 0);
    unsigned seed = 12345;
    static const char *const groups[] = { "a", "b", "c", "d", "e" };
    for (int round = 0; round < 4000; round++) {
        int op = rand_r(&seed) % 9;
        const char *g = groups[rand_r(&seed) % 5];
        struct sl_str q1 = S("q1");
        uint64_t moved, done, missing;
        struct job *j[8];
        uint32_t got = 0;
        if (op <= 2) {
            put(b, g, rand_r(&seed) % 3 == 0 ? "q1" : NULL, 1 + rand_r(&seed) % 5);
        } else if (op <= 4) {
            assert_int_equal(flow_reserve(b, w, 1 + rand_r(&seed) % 8, NULL, j, &got), 0);
            if (got > 0) {
                struct wire_list l = { 1, NULL, NULL, &j[0]->id };
                assert_int_equal(flow_settle(b, rand_r(&seed) % 2 ? FLOW_ACK : FLOW_RELEASE, w,
                                             &l, NULL, 0, &done, &missing), 0);
            }
        } else if (op == 5) {
            assert_int_equal(broker_route_set(b, S(g), rand_r(&seed) % 2 ? &q1 : NULL, &moved),
                             0);
        } else if (op == 6) {
            set_order(b, rand_r(&seed) % 2 ? "q1" : "default",
                      rand_r(&seed) % 2 ? QUEUE_ORDER_FIFO : QUEUE_ORDER_GROUPS);
        } else if (op == 7) {
            assert_int_equal(broker_group_weight(b, S(g), 10 + rand_r(&seed) % 5000), 0);
        } else if (rand_r(&seed) % 10 == 0) {
            struct sl_str gs = S(g);
            assert_int_equal(broker_purge(b, NULL, &gs, &moved), 0);
        }
        check(b);
    }
    uint64_t held = 0;
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        held += group_jobs(g);
    }
    assert_int_equal(held, b->jobs);
}

/* Reserves up to max jobs at once; writes their group initials into seq. Returns how many. */
static uint32_t
take_many(struct broker *b, uint32_t max, char *seq)
{
    static struct job *jobs[64];
    struct worker *w = flow_worker(b, S("w1"), 7);
    uint32_t got = 0;
    assert_true(max <= 64);
    assert_int_equal(flow_reserve(b, w, max, NULL, jobs, &got), 0);
    for (uint32_t i = 0; i < got; i++) {
        seq[i] = jobs[i]->group->name[0];
    }
    seq[got] = '\0';
    return got;
}

/* A group whose start rate is spent is passed by, its lane out of the turn (or the heap),
 * without holding up the others; it is back when its next token is due. */
static void
held_group_is_skipped_and_rejoins(struct broker *b, enum queue_order order)
{
    set_order(b, "default", order);
    put(b, "lim", NULL, 100);
    put(b, "amy", NULL, 10);
    assert_int_equal(grate_set(b, S("lim"), 2000, 2), 0); /* 2/s, burst 2 */
    char seq[65];
    assert_int_equal(take_many(b, 12, seq), 12);
    if (order == QUEUE_ORDER_GROUPS) {
        assert_string_equal(seq, "lalaaaaaaaaa");
    } else {
        assert_string_equal(seq, "llaaaaaaaaaa"); /* arrival order, lim first */
    }
    struct group *lim = broker_group_find(b, S("lim"));
    assert_true(lim->held);
    assert_int_equal(b->dflt->nactive, 0);
    assert_int_equal(queue_n(b->dflt, JOB_READY), 98); /* held, still ready and counted */
    check(b);
    /* Nothing to hand out until the next token: 500 ms at 2/s. */
    assert_int_equal(take_many(b, 5, seq), 0);
    fake_now += 499 * MS;
    assert_int_equal(grate_tick(b, fake_now), fake_now + 1 * MS);
    assert_true(lim->held);
    fake_now += 1 * MS;
    assert_int_equal(grate_tick(b, fake_now), INT64_MAX);
    assert_false(lim->held);
    check(b);
    /* A reserve of 5 takes the one token there is. */
    assert_int_equal(take_many(b, 5, seq), 1);
    assert_string_equal(seq, "l");
    assert_int_equal(lim->rate->holds, 2);
    assert_int_equal(lim->rate->started, 3);
    /* Two seconds on: the burst, 2, not 4. */
    fake_now += 2000 * MS;
    grate_tick(b, fake_now);
    assert_int_equal(take_many(b, 5, seq), 2);
    /* Removing the limit lets it back at once, with all it has. */
    assert_int_equal(grate_set(b, S("lim"), 0, 0), 0);
    assert_null(lim->rate);
    assert_false(lim->held);
    assert_int_equal(take_many(b, 64, seq), 64);
    check(b);
}

static void
test_a_held_group_is_skipped_in_the_turn_and_rejoins(void **state)
{
    held_group_is_skipped_and_rejoins(*state, QUEUE_ORDER_GROUPS);
}

static void
test_a_held_group_is_skipped_in_fifo_order_and_rejoins(void **state)
{
    held_group_is_skipped_and_rejoins(*state, QUEUE_ORDER_FIFO);
}

/* The limit holds for a group's jobs in every queue together; pushes to a held group stay out
 * of the turn; flush and bad values. */
static void
test_a_limit_counts_every_queue_and_flush_removes_it(void **state)
{
    struct broker *b = *state;
    struct queue_settings none = { 0 };
    assert_int_equal(broker_queue_create(b, S("q1"), &none), 0);
    assert_int_equal(grate_set(b, S("lim"), 1000, 3), 0);
    assert_int_equal(grate_set(b, S("lim"), 0, 3), SL_EBADREQ);
    assert_int_equal(grate_set(b, S("lim"), RATE_MILLI_MAX + 1, 0), SL_EBADREQ);
    assert_int_equal(grate_set(b, S("lim"), 1000, RATE_BURST_MAX + 1), SL_EBADREQ);
    assert_int_equal(grate_set(b, S("nobody"), 0, 0), 0);
    assert_null(broker_group_find(b, S("nobody"))); /* no limit to remove: nothing made */
    put(b, "lim", NULL, 2);
    put(b, "lim", "q1", 2);
    char seq[65];
    assert_int_equal(take_many(b, 10, seq), 3);
    struct group *lim = broker_group_find(b, S("lim"));
    assert_true(lim->held);
    put(b, "lim", "q1", 5); /* joins nothing while held */
    assert_int_equal(broker_queue_find(b, S("q1"))->nactive, 0);
    check(b);
    /* A queue destroyed while a group in it is held: its jobs move all the same. */
    uint64_t moved, resets;
    assert_int_equal(broker_queue_destroy(b, S("q1"), true, &moved, &resets), 0);
    assert_int_equal(moved, 7); /* 6 ready, 1 reserved */
    assert_int_equal(queue_n(b->dflt, JOB_READY), 6);
    assert_int_equal(b->dflt->nactive, 0);
    check(b);
    uint64_t routes, reset;
    broker_flush(b, &routes, &reset);
    assert_null(lim->rate);
    assert_false(lim->held);
    assert_null(b->rate_held);
    assert_int_equal(take_many(b, 10, seq), 6);
    check(b);
}

int
main(void)
{
    log_level = LOG_OFF;
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_new_queues_and_default_serve_groups_in_turn),
        T(test_fifo_order_is_arrival_order_across_groups),
        T(test_weights_give_turns_in_proportion),
        T(test_a_light_job_waits_one_turn_of_the_busy_groups),
        T(test_each_group_keeps_its_own_order_and_a_handed_back_job_goes_first),
        T(test_changing_order_keeps_each_groups_jobs_in_order),
        T(test_invariants_hold_under_random_changes),
        T(test_a_held_group_is_skipped_in_the_turn_and_rejoins),
        T(test_a_held_group_is_skipped_in_fifo_order_and_rejoins),
        T(test_a_limit_counts_every_queue_and_flush_removes_it),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
