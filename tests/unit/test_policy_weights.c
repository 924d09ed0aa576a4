/* The router's policy "weights" decided on snapshots, with no process running: heavy groups
 * lowered to --heavy-weight in place and raised back below --low, hysteresis, --min-dwell
 * (before a return only), restart safety, people's weights left alone, the reaction to a
 * crossing, and 10,000 groups costing one request per group that changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "policy.h"
#include "policy_snap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
check_weight(const struct action *a, const char *group, double weight, const char *reason)
{
    assert_int_equal(a->kind, ACT_GROUP_WEIGHT);
    assert_string_equal(a->group, group);
    assert_true(a->weight == weight);
    assert_string_equal(a->reason, reason);
}

/* A heavy group at weight 1 is lowered to --heavy-weight in place (no queue, no route); the
 * change is group.weight with the lease and the reason; below --low, once the dwell is over,
 * back to 1. A weight above 1 is a person's: left alone however heavy the group. */
static void
test_weights_lowers_heavy_groups_and_raises_them_back(void **state)
{
    struct action_list out;
    struct snap x;
    char line[512];
    (void)state;
    struct policy *p = mk("weights", &cfg_default);
    action_list_init(&out);
    snap_init(&x, 1000);
    wgroup(&x, "bob", 1530, 1);
    wgroup(&x, "alice", 20, 1);
    wgroup(&x, "carol", 5000, 4);   /* raised by a person */
    group(&x, "dave", "special", 800); /* routed by a person: its weight is still the router's */
    decide(p, &x, &out);
    assert_int_equal(out.n, 2);
    check_weight(&out.v[0], "bob", 0.25, "count 1530 > high 100");
    assert_int_equal(out.v[0].count, 1530);
    check_weight(&out.v[1], "dave", 0.25, "count 800 > high 100");
    action_describe(&out.v[0], line, sizeof(line));
    assert_string_equal(line, "action=weight group=bob count=1530 weight=0.25 "
                              "reason=\"count 1530 > high 100\"");

    struct wire_msg req;
    action_request(&out.v[0], 7, &req);
    assert_true(sl_str_eq(req.v[WK_OP].s, "group.weight"));
    assert_true(sl_str_eq(req.v[WK_GROUP].s, "bob"));
    assert_true(WIRE_HAS(&req, WK_WEIGHT));
    assert_true(req.v[WK_WEIGHT].d == 0.25);
    assert_int_equal(req.v[WK_LEASE].u, 7);
    assert_true(sl_str_eq(req.v[WK_REASON].s, "count 1530 > high 100"));
    assert_true(sl_str_eq(req.v[WK_EXPECT].s, "1.000")); /* the weight it decided on */
    assert_false(WIRE_HAS(&req, WK_QUEUE));
    assert_int_equal(policy_note(p, &out.v[0], 1000), 0);
    assert_int_equal(policy_seen_weight(p, S("bob")), PW_LOWERED);

    /* Lowered and drained at once: held until 6000, then back to 1. */
    snap_init(&x, 5999);
    wgroup(&x, "bob", 5, 0.25);
    decide(p, &x, &out);
    assert_int_equal(out.n, 0);
    assert_int_equal(policy_weight_dwell_left(p, S("bob"), 5999), 1);
    snap_init(&x, 6000);
    wgroup(&x, "bob", 5, 0.25);
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    check_weight(&out.v[0], "bob", 1, "count 5 < low 10");
    action_describe(&out.v[0], line, sizeof(line));
    assert_string_equal(line, "action=weight group=bob count=5 weight=1 "
                              "reason=\"count 5 < low 10\"");
    action_request(&out.v[0], 0, &req);
    assert_true(req.v[WK_WEIGHT].d == 1);
    assert_false(WIRE_HAS(&req, WK_LEASE));
    action_list_fini(&out);
    policy_free(p);
}

/* Between --low and --high nothing changes, at weight 1 or lowered. */
static void
test_weights_hysteresis_between_low_and_high(void **state)
{
    struct policy_cfg c = cfg_default;
    struct action_list out;
    struct snap x;
    (void)state;
    c.min_dwell_ms = 0; /* the thresholds alone hold the groups */
    struct policy *p = mk("weights", &c);
    action_list_init(&out);
    for (uint64_t count = 10; count <= 100; count += 15) {
        snap_init(&x, 100000 + count);
        wgroup(&x, "bob", count, 0.25);
        wgroup(&x, "carol", count, 1);
        decide(p, &x, &out);
        assert_int_equal(out.n, 0);
        assert_false(would_move(p, S("carol"), count, 100000 + count));
    }
    snap_init(&x, 200000);
    wgroup(&x, "bob", 9, 0.25);
    wgroup(&x, "carol", 101, 1);
    decide(p, &x, &out);
    assert_int_equal(out.n, 2);
    check_weight(&out.v[0], "bob", 1, "count 9 < low 10");
    check_weight(&out.v[1], "carol", 0.25, "count 101 > high 100");
    action_list_fini(&out);
    policy_free(p);
}

/* --min-dwell holds a lowered weight before it returns, measured from the router's change
 * (or the snapshot that first shows it); a group back at 1 that floods again is lowered at
 * once, by the reaction and by the next snapshot. */
static void
test_weights_dwell_guards_only_the_return(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    struct policy *p = mk("weights", &cfg_default);
    action_list_init(&out);
    /* Lowered by a router whose change is seen first at 11000 (not noted). */
    snap_init(&x, 10000);
    wgroup(&x, "bob", 500, 1);
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    for (uint64_t t = 11000; t < 16000; t += 1000) {
        snap_init(&x, t);
        wgroup(&x, "bob", 0, 0.25);
        decide(p, &x, &out);
        assert_int_equal(out.n, 0);
    }
    snap_init(&x, 16000);
    wgroup(&x, "bob", 0, 0.25);
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    check_weight(&out.v[0], "bob", 1, "count 0 < low 10");
    assert_int_equal(policy_note(p, &out.v[0], 16000), 0);
    assert_int_equal(policy_seen_weight(p, S("bob")), PW_DEFAULT);
    /* A new flood a moment after the return. */
    assert_true(would_move(p, S("bob"), 900, 16001));
    snap_init(&x, 16100);
    wgroup(&x, "bob", 900, 1);
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    check_weight(&out.v[0], "bob", 0.25, "count 900 > high 100");
    /* Lowered again: held a whole dwell from this change. */
    assert_int_equal(policy_note(p, &out.v[0], 16100), 0);
    assert_false(would_move(p, S("bob"), 900, 16200));
    snap_init(&x, 21099);
    wgroup(&x, "bob", 0, 0.25);
    decide(p, &x, &out);
    assert_int_equal(out.n, 0);
    snap_init(&x, 21100);
    wgroup(&x, "bob", 0, 0.25);
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    action_list_fini(&out);
    policy_free(p);
}

/* A router restarted (or taking over) on the broker's weights: a group found lowered is held
 * a whole dwell; one lowered to another weight (an earlier --heavy-weight) is brought in line;
 * weights above 1 and groups at 1 between the thresholds are left. policy_reset behaves as a
 * restart. */
static void
test_weights_restart_flips_nothing(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    struct policy *p = mk("weights", &cfg_default);
    action_list_init(&out);
    for (int round = 0; round < 2; round++) {
        snap_init(&x, 50000);
        wgroup(&x, "bob", 700, 0.25);  /* lowered, still heavy */
        wgroup(&x, "dave", 3, 0.25);   /* lowered, nearly drained */
        wgroup(&x, "erin", 700, 0.5);  /* lowered by a router with --heavy-weight 0.5 */
        wgroup(&x, "carol", 50, 1);
        wgroup(&x, "zed", 3, 2.5);     /* raised by a person */
        decide(p, &x, &out);
        assert_int_equal(out.n, 1);
        check_weight(&out.v[0], "erin", 0.25, "weight 0.5 -> 0.25 (weights)");
        assert_false(would_move(p, S("bob"), 700, 50000));
        assert_false(would_move(p, S("zed"), 700, 50000));
        snap_init(&x, 54999);
        wgroup(&x, "dave", 3, 0.25);
        decide(p, &x, &out);
        assert_int_equal(out.n, 0);
        snap_init(&x, 55000);
        wgroup(&x, "dave", 3, 0.25);
        wgroup(&x, "zed", 3, 2.5);
        decide(p, &x, &out);
        assert_int_equal(out.n, 1);
        check_weight(&out.v[0], "dave", 1, "count 3 < low 10");
        policy_reset(p);
    }
    /* The broker's thousandths read back as a double are the weight asked for. */
    snap_init(&x, 60000);
    wgroup(&x, "bob", 700, 250 / 1000.0);
    decide(p, &x, &out);
    assert_int_equal(out.n, 0);
    action_list_fini(&out);
    policy_free(p);
}

/* A dry run carries nothing out and notes nothing: the next snapshot, unchanged, gets the
 * same decision again (logged again, with dry_run=1, by the router). */
static void
test_weights_decide_again_on_an_unchanged_snapshot(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    struct policy *p = mk("weights", &cfg_default);
    action_list_init(&out);
    for (uint64_t t = 1000; t <= 3000; t += 1000) {
        snap_init(&x, t);
        wgroup(&x, "bob", 1000, 1);
        decide(p, &x, &out);
        assert_int_equal(out.n, 1);
        check_weight(&out.v[0], "bob", 0.25, "count 1000 > high 100");
        assert_true(would_move(p, S("bob"), 1000, t));
    }
    action_list_fini(&out);
    policy_free(p);
}

/* The reaction to a crossing: a group at 1 (or never seen) is lowered at once; one lowered or
 * raised already, or at --high exactly, is not. */
static void
test_weights_react_to_a_crossing(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    struct policy *p = mk("weights", &cfg_default);
    action_list_init(&out);
    assert_int_equal(policy_react(p, S("bob"), 101, 1000, &out), 0);
    assert_int_equal(out.n, 1);
    check_weight(&out.v[0], "bob", 0.25, "count 101 > high 100");
    assert_false(would_move(p, S("bob"), 100, 1000));
    assert_int_equal(policy_note(p, &out.v[0], 1000), 0);
    assert_false(would_move(p, S("bob"), 5000, 1001));
    snap_init(&x, 2000);
    wgroup(&x, "carol", 50, 1);
    wgroup(&x, "zed", 50, 3);
    decide(p, &x, &out);
    assert_int_equal(out.n, 0);
    assert_true(would_move(p, S("carol"), 101, 2001));
    assert_false(would_move(p, S("zed"), 5000, 2001));
    action_list_fini(&out);
    policy_free(p);
}

/* 10,000 groups, one in a hundred heavy: 100 requests; with the broker's weights as they left
 * it, none, round after round; then one group drains: one request. Each round costs a
 * request per group that changes, not per group. */
static void
test_weights_ten_thousand_groups_cost_what_changes(void **state)
{
    enum { N = 10000 };
    struct snap_group *g = calloc(N, sizeof(*g));
    char(*names)[16] = calloc(N, sizeof(*names));
    struct snap_queue q = { .name = S("default"), .priority = 10, .weight = 1 };
    struct action_list out;
    (void)state;
    assert_non_null(g);
    assert_non_null(names);
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "g%05zu", i);
        g[i] = (struct snap_group){ S(names[i]), S(""), i % 100 == 0 ? 1000 + i : 50, 1.0, 0, 0 };
    }
    struct snapshot s = { g, N, &q, 1, 1000 };
    struct policy *p = mk("weights", &cfg_default);
    action_list_init(&out);
    double t0 = seconds();
    assert_int_equal(policy_decide(p, &s, &out), 0);
    double dt = seconds() - t0;
    print_message("# weights: 10,000 groups decided in %.1f ms\n", dt * 1e3);
    assert_true(dt < 1.0);
    assert_int_equal(out.n, N / 100);
    for (size_t i = 0; i < out.n; i++) {
        assert_string_equal(out.v[i].group, names[i * 100]);
        assert_true(out.v[i].weight == 0.25);
        g[i * 100].weight = 0.25;
    }
    for (uint64_t t = 2000; t <= 10000; t += 1000) {
        s.now_ms = t;
        assert_int_equal(policy_decide(p, &s, &out), 0);
        assert_int_equal(out.n, 0);
    }
    g[500].count = 2;
    s.now_ms = 11000;
    assert_int_equal(policy_decide(p, &s, &out), 0);
    assert_int_equal(out.n, 1);
    check_weight(&out.v[0], names[500], 1, "count 2 < low 10");
    action_list_fini(&out);
    policy_free(p);
    free(names);
    free(g);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_lowers_heavy_groups_and_raises_them_back),
        cmocka_unit_test(test_weights_hysteresis_between_low_and_high),
        cmocka_unit_test(test_weights_dwell_guards_only_the_return),
        cmocka_unit_test(test_weights_restart_flips_nothing),
        cmocka_unit_test(test_weights_decide_again_on_an_unchanged_snapshot),
        cmocka_unit_test(test_weights_react_to_a_crossing),
        cmocka_unit_test(test_weights_ten_thousand_groups_cost_what_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
