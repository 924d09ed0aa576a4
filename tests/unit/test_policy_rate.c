/* The router's start-rate rule (--heavy-rate, router/heavyrate.h) beside every policy: a group
 * above --high without a limit gets the heavy rate; below --low with exactly that limit it
 * loses it; other limits (a person's, a plan's) and counts between the thresholds are left
 * alone; each change carries the limit seen as `expect`; and the request it makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "heavyrate.h"
#include "policy.h"
#include "policy_snap.h"

#include <stdio.h>
#include <string.h>

/* A group in default with a start rate (0: none) and burst. */
static void
lgroup(struct snap *x, const char *name, uint64_t count, uint64_t rate_milli, uint64_t burst)
{
    x->g[x->s.ngroups++] = (struct snap_group){ S(name), S(""), count, 1.0, rate_milli, burst };
}

/* The limit actions of out, in order, as "group:rate:burst:expect" joined by spaces. */
static void
limits_of(const struct action_list *out, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < out->n; i++) {
        const struct action *a = &out->v[i];
        if (a->kind == ACT_GROUP_LIMIT && off < cap) {
            off += (size_t)snprintf(buf + off, cap - off, "%s%s:%llu:%llu:%s", off ? " " : "",
                                    a->group, (unsigned long long)a->rate_milli,
                                    (unsigned long long)a->burst, a->expect);
        }
    }
}

static void
test_heavy_rate_limits_heavy_groups_in_every_policy(void **state)
{
    (void)state;
    struct policy_cfg c = cfg_default;
    c.heavy_rate_milli = 20000; /* 20/s, burst one second's worth: 20 */
    for (size_t i = 0; policy_table[i] != NULL; i++) {
        struct policy *p = mk(policy_table[i]->name, &c);
        struct action_list out;
        struct snap x;
        char got[512];
        action_list_init(&out);
        snap_init(&x, 1000);
        lgroup(&x, "flood", 150, 0, 0);        /* above high, no limit: limited */
        lgroup(&x, "calm", 5, 20000, 20);      /* below low, the rule's limit: removed */
        lgroup(&x, "plan", 150, 5000, 3);      /* a plan's limit: left alone */
        lgroup(&x, "kept", 5, 20000, 7);       /* another burst: not the rule's, left */
        lgroup(&x, "mid", 50, 20000, 20);      /* between the thresholds: nothing */
        lgroup(&x, "light", 3, 0, 0);          /* light, no limit: nothing */
        decide(p, &x, &out);
        limits_of(&out, got, sizeof(got));
        assert_string_equal(got, "flood:20000:20:none calm:0:0:20.000:20");
        action_list_fini(&out);
        policy_free(p);
    }
}

static void
test_no_heavy_rate_no_limits_and_bursts(void **state)
{
    (void)state;
    struct policy_cfg c = cfg_default;
    struct policy *p = mk("threshold", &c);
    struct action_list out;
    struct snap x;
    char got[256];
    action_list_init(&out);
    snap_init(&x, 1000);
    lgroup(&x, "flood", 150, 0, 0);
    decide(p, &x, &out);
    limits_of(&out, got, sizeof(got));
    assert_string_equal(got, "");
    action_list_fini(&out);
    policy_free(p);
    c.heavy_rate_milli = 500;
    assert_int_equal(heavyrate_burst(&c), 1);
    c.heavy_rate_milli = 2500000;
    assert_int_equal(heavyrate_burst(&c), 2500);
    c.heavy_burst = 9;
    assert_int_equal(heavyrate_burst(&c), 9);
}

static void
test_a_limit_action_makes_group_limit_with_expect(void **state)
{
    (void)state;
    struct action a = { .kind = ACT_GROUP_LIMIT, .group = "flood", .count = 150,
                        .rate_milli = 500, .burst = 1, .reason = "count 150 > high 100",
                        .expect = "none" };
    struct wire_msg req;
    action_request(&a, 7, &req);
    assert_true(sl_str_eq(req.v[WK_OP].s, "group.limit"));
    assert_true(sl_str_eq(req.v[WK_GROUP].s, "flood"));
    assert_true(req.v[WK_RATE].d == 0.5);
    assert_int_equal(req.v[WK_BURST].u, 1);
    assert_true(sl_str_eq(req.v[WK_EXPECT].s, "none"));
    assert_int_equal(req.v[WK_LEASE].u, 7);
    char line[256];
    action_describe(&a, line, sizeof(line));
    assert_string_equal(line, "action=limit group=flood count=150 rate=0.5/s burst=1 "
                              "reason=\"count 150 > high 100\"");
    a.rate_milli = 0;
    a.burst = 0;
    action_request(&a, 0, &req);
    assert_true(req.v[WK_RATE].d == 0);
    assert_false(WIRE_HAS(&req, WK_BURST));
    action_describe(&a, line, sizeof(line));
    assert_string_equal(line, "action=limit group=flood count=150 rate=none burst=0 "
                              "reason=\"count 150 > high 100\"");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heavy_rate_limits_heavy_groups_in_every_policy),
        cmocka_unit_test(test_no_heavy_rate_no_limits_and_bursts),
        cmocka_unit_test(test_a_limit_action_makes_group_limit_with_expect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
