/* The router's policies decided on snapshots, with no process running: thresholds, hysteresis,
 * --min-dwell (before a return only), restart safety, clean-up of own queues, the fair
 * policy's settings, and snapshots of 0, 1 and 10,000 groups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "policy.h"
#include "policy_snap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The policies that give heavy groups an own queue. */
static const char *const own_queue_policies[] = { "threshold", "fair" };

static void
test_unknown_policy_and_bad_thresholds_are_refused(void **state)
{
    struct policy *p = NULL;
    struct policy_cfg c = cfg_default;
    (void)state;
    assert_int_equal(policy_new(&p, "nope", &c), SL_ENOTFOUND);
    assert_null(p);
    c.low = 101;
    assert_int_equal(policy_new(&p, "threshold", &c), SL_EBADREQ);
    assert_null(p);
    c.low = c.high; /* equal is allowed: nothing between them */
    p = mk("threshold", &c);
    assert_string_equal(policy_name(p), "threshold");
    policy_free(p);
    policy_free(NULL);
    /* weights: a heavy weight the broker takes, and below 1 (else it would be the default
     * one); the other policies do not read it. */
    const double bad[] = { 0, 0.009, 1, 2, -0.25, NAN };
    p = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.heavy_weight = bad[i];
        assert_int_equal(policy_new(&p, "weights", &c), SL_EBADREQ);
        assert_null(p);
    }
    p = mk("threshold", &c);
    policy_free(p);
    c.heavy_weight = 0.01;
    policy_free(mk("weights", &c));
    c.heavy_weight = 0.999;
    policy_free(mk("weights", &c));
}

static void
test_no_groups_no_actions(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    action_list_init(&out);
    for (size_t i = 0; policy_table[i] != NULL; i++) {
        struct policy *p = mk(policy_table[i]->name, &cfg_default);
        snap_init(&x, 1000);
        decide(p, &x, &out);
        assert_int_equal(out.n, 0);
        policy_free(p);
    }
    action_list_fini(&out);
}

static void
test_threshold_routes_a_group_above_high(void **state)
{
    struct policy_cfg c = cfg_default;
    struct action_list out;
    struct snap x;
    (void)state;
    c.max_inflight = 4;
    struct policy *p = mk("threshold", &c);
    action_list_init(&out);
    snap_init(&x, 1000);
    group(&x, "bob", NULL, 1530);
    group(&x, "alice", NULL, 20);
    decide(p, &x, &out);
    assert_int_equal(out.n, 2);
    check(&out.v[0], ACT_QUEUE_CREATE, "bob", "group.bob");
    assert_int_equal(out.v[0].set.priority, 100);
    assert_int_equal(out.v[0].set.weight, 1);
    assert_int_equal(out.v[0].set.max_inflight, 4);
    check(&out.v[1], ACT_ROUTE_SET, "bob", "group.bob");
    assert_int_equal(out.v[1].count, 1530);
    assert_string_equal(out.v[1].reason, "count 1530 > high 100");
    /* Made only if bob is still where the snapshot shows it: in default. */
    assert_string_equal(out.v[1].expect, "");
    struct wire_msg req;
    action_request(&out.v[1], 7, &req);
    assert_true(WIRE_HAS(&req, WK_EXPECT));
    assert_int_equal(req.v[WK_EXPECT].s.n, 0);
    action_list_fini(&out);
    policy_free(p);
}

static void
test_threshold_is_strictly_above_high(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    struct policy *p = mk("threshold", &cfg_default);
    action_list_init(&out);
    snap_init(&x, 1000);
    group(&x, "bob", NULL, 100);
    decide(p, &x, &out);
    assert_int_equal(out.n, 0);
    snap_init(&x, 2000);
    group(&x, "bob", NULL, 101);
    decide(p, &x, &out);
    assert_int_equal(out.n, 2);
    action_list_fini(&out);
    policy_free(p);
}

/* Between low and high nothing changes, whichever side the group is on. */
static void
test_hysteresis_between_low_and_high(void **state)
{
    struct policy_cfg c = cfg_default;
    struct action_list out;
    struct snap x;
    (void)state;
    c.min_dwell_ms = 0; /* the thresholds alone hold the groups */
    struct policy *p = mk("threshold", &c);
    action_list_init(&out);
    for (uint64_t count = 10; count <= 100; count += 15) {
        snap_init(&x, 100000 + count);
        group(&x, "bob", "group.bob", count);
        group(&x, "carol", NULL, count);
        queue(&x, "group.bob", 100, count);
        decide(p, &x, &out);
        assert_int_equal(out.n, 0);
    }
    /* Below low, with the dwell over: back to default; the queue stays until it is empty and
     * nobody routes to it. */
    snap_init(&x, 200000);
    group(&x, "bob", "group.bob", 9);
    queue(&x, "group.bob", 100, 9);
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    check(&out.v[0], ACT_ROUTE_UNSET, "bob", "");
    assert_string_equal(out.v[0].reason, "count 9 < low 10");
    /* Made only if bob is still in its own queue. */
    assert_string_equal(out.v[0].expect, "group.bob");
    struct wire_msg req;
    action_request(&out.v[0], 0, &req);
    assert_true(sl_str_eq(req.v[WK_EXPECT].s, "group.bob"));
    action_list_fini(&out);
    policy_free(p);
}

/* A group stays in its own queue at least min_dwell before it returns, measured from the
 * snapshot that first shows it routed; back in default, it may be moved again at once. */
static void
test_min_dwell_before_a_return(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    struct policy *p = mk("threshold", &cfg_default);
    action_list_init(&out);
    snap_init(&x, 10000);
    group(&x, "bob", NULL, 500);
    decide(p, &x, &out);
    assert_int_equal(out.n, 2); /* create, route: a group never switched may move at once */

    /* Routed (seen at 11000), and drained at once: held until 16000. */
    for (uint64_t t = 11000; t < 16000; t += 1000) {
        snap_init(&x, t);
        group(&x, "bob", "group.bob", 0);
        queue(&x, "group.bob", 100, 0);
        decide(p, &x, &out);
        assert_int_equal(out.n, 0);
        assert_true(policy_dwell_left(p, S("bob"), t) > 0);
    }
    snap_init(&x, 16000);
    group(&x, "bob", "group.bob", 0);
    queue(&x, "group.bob", 100, 0);
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    check(&out.v[0], ACT_ROUTE_UNSET, "bob", "");

    /* Back in default (seen at 17000) and quiet: the empty queue nobody routes to is
     * destroyed. */
    snap_init(&x, 17000);
    group(&x, "bob", NULL, 5);
    queue(&x, "group.bob", 100, 0);
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    check(&out.v[0], ACT_QUEUE_DESTROY, "", "group.bob");
    assert_false(out.v[0].force);
    /* A new flood a moment after the return: moved again at once, to a new own queue. */
    assert_true(would_move(p, S("bob"), 900, 17001));
    snap_init(&x, 17500);
    group(&x, "bob", NULL, 900);
    decide(p, &x, &out);
    assert_int_equal(out.n, 2);
    check(&out.v[0], ACT_QUEUE_CREATE, "bob", "group.bob");
    check(&out.v[1], ACT_ROUTE_SET, "bob", "group.bob");
    action_list_fini(&out);
    policy_free(p);
}

/* A router restarted mid-run (a new policy object) on the broker's state: no queue created
 * twice, no route flipped; a group found in its own queue is held there for a whole dwell. */
static void
test_restart_flips_nothing(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    action_list_init(&out);
    for (size_t i = 0; i < 2; i++) {
        const char *name = own_queue_policies[i];
        struct policy *p = mk(name, &cfg_default);
        snap_init(&x, 50000);
        group(&x, "bob", "group.bob", 700);  /* isolated, still heavy */
        group(&x, "dave", "group.dave", 3);  /* isolated, nearly drained */
        group(&x, "carol", NULL, 50);        /* between the thresholds */
        group(&x, "alice", NULL, 2);
        queue(&x, "group.bob", 100, 700);
        queue(&x, "group.dave", 100, 3);
        if (strcmp(name, "fair") == 0) {
            x.q[1].priority = x.q[2].priority = 10;
        }
        decide(p, &x, &out);
        assert_int_equal(out.n, 0);
        assert_false(would_move(p, S("bob"), 700, 50000));
        snap_init(&x, 54999);
        group(&x, "dave", "group.dave", 3);
        queue(&x, "group.dave", strcmp(name, "fair") == 0 ? 10 : 100, 3);
        decide(p, &x, &out);
        assert_int_equal(out.n, 0);
        snap_init(&x, 55000);
        group(&x, "dave", "group.dave", 3);
        queue(&x, "group.dave", strcmp(name, "fair") == 0 ? 10 : 100, 3);
        decide(p, &x, &out);
        assert_int_equal(out.n, 1);
        check(&out.v[0], ACT_ROUTE_UNSET, "dave", "");
        policy_free(p);
    }
    action_list_fini(&out);
}

/* A router that died between creating a queue and routing to it: the next one routes to the
 * queue that exists. policy_reset behaves as a restart. */
static void
test_existing_own_queue_is_not_created_again(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    struct policy *p = mk("threshold", &cfg_default);
    action_list_init(&out);
    snap_init(&x, 1000);
    group(&x, "bob", NULL, 400);
    queue(&x, "group.bob", 100, 0);
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    check(&out.v[0], ACT_ROUTE_SET, "bob", "group.bob");
    policy_reset(p);
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    check(&out.v[0], ACT_ROUTE_SET, "bob", "group.bob");
    action_list_fini(&out);
    policy_free(p);
}

static void
test_own_queue_cleanup(void **state)
{
    struct action_list out;
    struct snap x;
    struct snap_queue *q;
    (void)state;
    struct policy *p = mk("threshold", &cfg_default);
    action_list_init(&out);

    snap_init(&x, 1000);
    q = queue(&x, "group.bob", 100, 0);
    q->reserved = 2; /* jobs still running from it: wait */
    queue(&x, "group.eve", 100, 0);
    x.q[2].delayed = 1;
    queue(&x, "special", 100, 0);       /* not the router's: never touched */
    q = queue(&x, "group.carol", 100, 0);
    q->dead = 3;                        /* only dead jobs: destroyed, they move to default */
    queue(&x, "group.dan", 100, 0);     /* a person routes erin there: kept */
    group(&x, "erin", "group.dan", 400);
    queue(&x, "group.zed", 100, 0);     /* empty, unrouted: destroyed */
    decide(p, &x, &out);
    assert_int_equal(out.n, 2);
    check(&out.v[0], ACT_QUEUE_DESTROY, "", "group.carol");
    assert_true(out.v[0].force);
    check(&out.v[1], ACT_QUEUE_DESTROY, "", "group.zed");
    assert_false(out.v[1].force);
    assert_string_equal(out.v[1].reason, "empty and no longer routed to");
    action_list_fini(&out);
    policy_free(p);
}

/* --min-dwell guards only the return: a group that returned to default a moment ago and
 * floods again is moved back at once, by a snapshot and by a reaction, in threshold and in
 * fair alike, so its new burst does not land in default whole. */
static void
test_redemoted_at_once_after_a_return(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    action_list_init(&out);
    for (size_t i = 0; i < 2; i++) {
        const char *name = i == 0 ? "threshold" : "fair";
        uint64_t prio = i == 0 ? 100 : 10;
        struct policy *p = mk(name, &cfg_default);
        snap_init(&x, 1000);
        group(&x, "bob", NULL, 500);
        decide(p, &x, &out);
        assert_int_equal(out.n, 2);
        struct action r = out.v[1];
        assert_int_equal(policy_note(p, &r, 1000), 0);
        /* Drained, and back in default once the dwell is over (the router's own change). */
        snap_init(&x, 6000);
        group(&x, "bob", "group.bob", 0);
        queue(&x, "group.bob", prio, 0);
        decide(p, &x, &out);
        assert_int_equal(out.n, 1);
        check(&out.v[0], ACT_ROUTE_UNSET, "bob", "");
        struct action u = out.v[0];
        assert_int_equal(policy_note(p, &u, 6000), 0);
        /* A burst a moment later: the reaction and the next snapshot move it again at once,
         * to the own queue that still exists. */
        assert_true(would_move(p, S("bob"), 900, 6001));
        snap_init(&x, 6100);
        group(&x, "bob", NULL, 900);
        queue(&x, "group.bob", prio, 0);
        decide(p, &x, &out);
        assert_int_equal(out.n, 1);
        check(&out.v[0], ACT_ROUTE_SET, "bob", "group.bob");
        assert_string_equal(out.v[0].reason, "count 900 > high 100");
        assert_string_equal(out.v[0].expect, "");
        /* Back in its own queue, it is held there a whole dwell again. */
        assert_int_equal(policy_note(p, &out.v[0], 6100), 0);
        snap_init(&x, 11099);
        group(&x, "bob", "group.bob", 0);
        queue(&x, "group.bob", prio, 0);
        decide(p, &x, &out);
        assert_int_equal(out.n, 0);
        snap_init(&x, 11100);
        group(&x, "bob", "group.bob", 0);
        queue(&x, "group.bob", prio, 0);
        decide(p, &x, &out);
        assert_int_equal(out.n, 1);
        check(&out.v[0], ACT_ROUTE_UNSET, "bob", "");
        policy_free(p);
    }
    action_list_fini(&out);
}

/* Routes a person set to another queue are left alone, however heavy the group. */
static void
test_routes_of_people_are_left_alone(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    struct policy *p = mk("threshold", &cfg_default);
    action_list_init(&out);
    snap_init(&x, 1000);
    group(&x, "bob", "special", 5000);
    group(&x, "carol", "group.bob", 1); /* someone else's own queue */
    queue(&x, "special", 10, 5000);
    queue(&x, "group.bob", 100, 1);
    decide(p, &x, &out);
    assert_int_equal(out.n, 0);
    assert_int_equal(policy_seen_route(p, S("bob")), 2 /* SW_OTHER */);
    assert_false(would_move(p, S("bob"), 5000, 1000));
    action_list_fini(&out);
    policy_free(p);
}

/* "group." + a 123-byte name exceeds the 128 bytes of a queue name: such a group stays. */
static void
test_group_too_long_for_an_own_queue_stays(void **state)
{
    char name[WIRE_NAME_MAX + 1], own[WIRE_NAME_MAX + 1];
    struct action_list out;
    struct snap x;
    (void)state;
    memset(name, 'a', sizeof(name));
    name[123] = '\0';
    assert_false(policy_own_queue(S(name), own));
    name[122] = '\0';
    assert_true(policy_own_queue(S(name), own));
    assert_int_equal(strlen(own), 128);
    name[122] = 'a';
    struct policy *p = mk("threshold", &cfg_default);
    action_list_init(&out);
    snap_init(&x, 1000);
    group(&x, name, NULL, 100000);
    decide(p, &x, &out);
    assert_int_equal(out.n, 0);
    assert_false(would_move(p, S(name), 100000, 1000));
    action_list_fini(&out);
    policy_free(p);
}

/* An own queue in use whose settings drifted (changed by hand, or an earlier router ran with
 * other options) is brought back in line. */
static void
test_threshold_keeps_own_queue_settings(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    struct policy *p = mk("threshold", &cfg_default);
    action_list_init(&out);
    snap_init(&x, 1000);
    group(&x, "bob", "group.bob", 500);
    queue(&x, "group.bob", 50, 500)->max_inflight = 3;
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    check(&out.v[0], ACT_QUEUE_UPDATE, "bob", "group.bob");
    assert_int_equal(out.v[0].set.priority, 100);
    assert_int_equal(out.v[0].set.max_inflight, 0);
    assert_string_equal(out.v[0].reason,
                        "priority 50 -> 100, max_inflight 3 -> 0 (threshold)");
    action_list_fini(&out);
    policy_free(p);
}

/* Fair: own queues at default's priority and weight, whatever --priority says, and following
 * default when it changes; so default and each heavy group get equal turns. */
static void
test_fair_gives_equal_shares(void **state)
{
    struct policy_cfg c = cfg_default;
    struct action_list out;
    struct snap x;
    (void)state;
    c.priority = 500; /* not used by fair */
    struct policy *p = mk("fair", &c);
    action_list_init(&out);
    snap_init(&x, 1000);
    group(&x, "bob", NULL, 50000);
    group(&x, "carol", NULL, 300);
    group(&x, "alice", NULL, 3);
    decide(p, &x, &out);
    assert_int_equal(out.n, 4);
    check(&out.v[0], ACT_QUEUE_CREATE, "bob", "group.bob");
    check(&out.v[2], ACT_QUEUE_CREATE, "carol", "group.carol");
    for (size_t i = 0; i < 4; i += 2) {
        assert_int_equal(out.v[i].set.priority, 10);
        assert_int_equal(out.v[i].set.weight, 1);
    }
    /* Shares among queues of one priority follow the weights: 1:1:1 for default, bob, carol. */

    /* Default's weight raised to 3 and priority to 20: the own queues follow. */
    snap_init(&x, 2000);
    x.q[0].priority = 20;
    x.q[0].weight = 3;
    group(&x, "bob", "group.bob", 49000);
    group(&x, "carol", "group.carol", 250);
    queue(&x, "group.bob", 10, 49000);
    queue(&x, "group.carol", 10, 250);
    decide(p, &x, &out);
    assert_int_equal(out.n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(out.v[i].kind, ACT_QUEUE_UPDATE);
        assert_int_equal(out.v[i].set.priority, 20);
        assert_int_equal(out.v[i].set.weight, 3);
    }
    assert_string_equal(out.v[0].reason, "priority 10 -> 20, weight 1 -> 3 "
                                         "(fair: equal share with default)");
    action_list_fini(&out);
    policy_free(p);
}

/* A group that leaves the snapshot (flush forgot it) is forgotten: when it comes back it is a
 * new group with no dwell. */
static void
test_forgotten_groups_are_forgotten(void **state)
{
    struct action_list out;
    struct snap x;
    (void)state;
    struct policy *p = mk("threshold", &cfg_default);
    action_list_init(&out);
    snap_init(&x, 1000);
    group(&x, "bob", "group.bob", 50);
    queue(&x, "group.bob", 100, 50);
    decide(p, &x, &out);
    assert_int_equal(policy_seen_route(p, S("bob")), 1 /* SW_OWN */);
    snap_init(&x, 2000);
    decide(p, &x, &out);
    assert_int_equal(policy_seen_route(p, S("bob")), -1);
    assert_true(would_move(p, S("bob"), 101, 2000));
    assert_false(would_move(p, S("bob"), 100, 2000));
    action_list_fini(&out);
    policy_free(p);
}

/* 10,000 groups, every other one heavy: 5,000 creates and routes, in order; then, with the
 * broker's state as the actions left it, nothing more; then all drained: 5,000 unroutes
 * (after the dwell) and, once empty, 5,000 destroys. */
static void
test_ten_thousand_groups(void **state)
{
    enum { N = 10000 };
    struct snap_group *g = calloc(N, sizeof(*g));
    struct snap_queue *q = calloc(N + 1, sizeof(*q));
    char(*names)[16] = calloc(N, sizeof(*names));
    char(*qnames)[24] = calloc(N, sizeof(*qnames));
    struct action_list out;
    struct snapshot s;
    (void)state;
    assert_non_null(g);
    assert_non_null(q);
    assert_non_null(names);
    assert_non_null(qnames);
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "g%05zu", i);
        snprintf(qnames[i], sizeof(qnames[i]), "group.g%05zu", i);
        g[i] = (struct snap_group){ S(names[i]), S(""), i % 2 == 0 ? 1000 + i : 50, 1.0, 0, 0 };
    }
    q[0] = (struct snap_queue){ .name = S("default"), .priority = 10, .weight = 1 };
    s = (struct snapshot){ g, N, q, 1, 1000 };
    action_list_init(&out);
    for (size_t k = 0; k < 2; k++) {
        const char *name = own_queue_policies[k];
        struct policy *p = mk(name, &cfg_default);
        s.nqueues = 1;
        s.now_ms = 1000;
        for (size_t i = 0; i < N; i++) {
            g[i].route = S("");
        }
        double t0 = seconds();
        assert_int_equal(policy_decide(p, &s, &out), 0);
        double dt = seconds() - t0;
        assert_int_equal(out.n, N);
        for (size_t i = 0; i < N / 2; i++) {
            check(&out.v[2 * i], ACT_QUEUE_CREATE, names[2 * i], qnames[2 * i]);
            check(&out.v[2 * i + 1], ACT_ROUTE_SET, names[2 * i], qnames[2 * i]);
        }
        print_message("# %s: 10,000 groups decided in %.1f ms\n", policy_name(p), dt * 1e3);
        assert_true(dt < 1.0);

        /* The broker after those actions. */
        for (size_t i = 0; i < N; i += 2) {
            g[i].route = S(qnames[i]);
            q[s.nqueues++] = (struct snap_queue){ .name = S(qnames[i]), .priority = 100,
                                                  .weight = 1, .ready = g[i].count };
            if (strcmp(name, "fair") == 0) {
                q[s.nqueues - 1].priority = 10;
            }
        }
        s.now_ms = 2000;
        assert_int_equal(policy_decide(p, &s, &out), 0);
        assert_int_equal(out.n, 0);

        /* All drained; after the dwell every group returns. */
        for (size_t i = 0; i < N; i++) {
            g[i].count = 0;
        }
        for (size_t i = 1; i < s.nqueues; i++) {
            q[i].ready = 0;
        }
        s.now_ms = 6999;
        assert_int_equal(policy_decide(p, &s, &out), 0);
        assert_int_equal(out.n, 0);
        s.now_ms = 7000;
        assert_int_equal(policy_decide(p, &s, &out), 0);
        assert_int_equal(out.n, N / 2);
        assert_int_equal(out.v[N / 2 - 1].kind, ACT_ROUTE_UNSET);
        for (size_t i = 0; i < N; i += 2) {
            g[i].route = S("");
        }
        s.now_ms = 8000;
        assert_int_equal(policy_decide(p, &s, &out), 0);
        assert_int_equal(out.n, N / 2);
        assert_int_equal(out.v[0].kind, ACT_QUEUE_DESTROY);
        assert_string_equal(out.v[0].queue, "group.g00000");
        policy_free(p);
        for (size_t i = 0; i < N; i++) {
            g[i].count = i % 2 == 0 ? 1000 + i : 50;
        }
    }
    action_list_fini(&out);
    free(qnames);
    free(names);
    free(q);
    free(g);
}

/* A crossing reported by the broker, decided without a snapshot: the own queue (with the
 * policy's settings; fair's from default as last seen) and the route; nothing for a group
 * already moved or at high exactly; at once for one that has just returned. */
static void
test_react_to_a_crossing(void **state)
{
    struct policy_cfg c = cfg_default;
    struct action_list out;
    struct snap x;
    (void)state;
    c.max_inflight = 2;
    action_list_init(&out);
    struct policy *p = mk("threshold", &c);
    assert_int_equal(policy_react(p, S("bob"), 101, 1000, &out), 0);
    assert_int_equal(out.n, 2);
    check(&out.v[0], ACT_QUEUE_CREATE, "bob", "group.bob");
    assert_int_equal(out.v[0].set.priority, 100);
    assert_int_equal(out.v[0].set.max_inflight, 2);
    check(&out.v[1], ACT_ROUTE_SET, "bob", "group.bob");
    assert_string_equal(out.v[1].reason, "count 101 > high 100");
    assert_string_equal(out.v[1].expect, ""); /* never seen: believed in default */
    assert_int_equal(policy_react(p, S("bob"), 100, 1000, &out), 0);
    assert_int_equal(out.n, 0);
    /* The router applied the route: a second report a moment later does nothing, and the
     * dwell runs from the route's application, not from the next snapshot. */
    struct action a = { .kind = ACT_ROUTE_SET, .group = "bob", .queue = "group.bob" };
    assert_int_equal(policy_note(p, &a, 1000), 0);
    assert_int_equal(policy_react(p, S("bob"), 5000, 1001, &out), 0);
    assert_int_equal(out.n, 0);
    snap_init(&x, 1500);
    group(&x, "bob", "group.bob", 0);
    queue(&x, "group.bob", 100, 0)->max_inflight = 2;
    decide(p, &x, &out);
    assert_int_equal(out.n, 0);
    assert_int_equal(policy_dwell_left(p, S("bob"), 1500), 4500);
    snap_init(&x, 6000);
    group(&x, "bob", "group.bob", 0);
    queue(&x, "group.bob", 100, 0)->max_inflight = 2;
    decide(p, &x, &out);
    assert_int_equal(out.n, 1);
    check(&out.v[0], ACT_ROUTE_UNSET, "bob", "");
    /* Back in default by the router's hand at 6000: a new flood is reacted to at once. */
    struct action u = { .kind = ACT_ROUTE_UNSET, .group = "bob" };
    assert_int_equal(policy_note(p, &u, 6000), 0);
    assert_false(would_move(p, S("bob"), 100, 6001));
    assert_true(would_move(p, S("bob"), 700, 6001));
    policy_free(p);

    p = mk("fair", &c);
    assert_int_equal(policy_react(p, S("bob"), 500, 1000, &out), 0);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.v[0].set.priority, 10); /* default's, before any snapshot */
    assert_int_equal(out.v[0].set.weight, 1);
    snap_init(&x, 2000);
    x.q[0].priority = 7;
    x.q[0].weight = 4;
    decide(p, &x, &out);
    assert_int_equal(policy_react(p, S("carol"), 500, 2000, &out), 0);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.v[0].set.priority, 7);
    assert_int_equal(out.v[0].set.weight, 4);
    assert_int_equal(out.v[0].set.max_inflight, 2);
    policy_free(p);
    action_list_fini(&out);
}

static void
test_action_verbs(void **state)
{
    (void)state;
    assert_string_equal(action_verb(ACT_QUEUE_CREATE), "create");
    assert_string_equal(action_verb(ACT_QUEUE_UPDATE), "update");
    assert_string_equal(action_verb(ACT_ROUTE_SET), "route");
    assert_string_equal(action_verb(ACT_ROUTE_UNSET), "unroute");
    assert_string_equal(action_verb(ACT_QUEUE_DESTROY), "destroy");
    assert_string_equal(action_verb(ACT_GROUP_WEIGHT), "weight");
    assert_true(policy_is_own_queue(S("group.x")));
    assert_false(policy_is_own_queue(S("group.")));
    assert_false(policy_is_own_queue(S("default")));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_policy_and_bad_thresholds_are_refused),
        cmocka_unit_test(test_no_groups_no_actions),
        cmocka_unit_test(test_threshold_routes_a_group_above_high),
        cmocka_unit_test(test_threshold_is_strictly_above_high),
        cmocka_unit_test(test_hysteresis_between_low_and_high),
        cmocka_unit_test(test_min_dwell_before_a_return),
        cmocka_unit_test(test_redemoted_at_once_after_a_return),
        cmocka_unit_test(test_restart_flips_nothing),
        cmocka_unit_test(test_existing_own_queue_is_not_created_again),
        cmocka_unit_test(test_own_queue_cleanup),
        cmocka_unit_test(test_routes_of_people_are_left_alone),
        cmocka_unit_test(test_group_too_long_for_an_own_queue_stays),
        cmocka_unit_test(test_threshold_keeps_own_queue_settings),
        cmocka_unit_test(test_fair_gives_equal_shares),
        cmocka_unit_test(test_forgotten_groups_are_forgotten),
        cmocka_unit_test(test_ten_thousand_groups),
        cmocka_unit_test(test_react_to_a_crossing),
        cmocka_unit_test(test_action_verbs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
