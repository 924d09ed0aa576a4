/* The router's lease: one holder at a time, numbers that only grow, and changes carrying a
 * stale lease refused by the dispatcher. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "err.h"
#include "lease.h"
#include "log.h"
#include "ops.h"
#include "support.h"

#include <nng/nng.h>
#include <string.h>

static void
test_one_holder_at_a_time(void **state)
{
    struct lease l = { 0 };
    uint64_t n1, n2, n3;
    (void)state;
    assert_int_equal(lease_acquire(&l, S("r1"), 1000, 0, 5000, &n1), 0);
    assert_int_equal(n1, 5000); /* starts from the wall clock */
    assert_int_equal(lease_acquire(&l, S("r2"), 1000, 500 * MS, 5500, &n2), SL_ENOTLEADER);
    /* The holder re-acquiring keeps its number. */
    assert_int_equal(lease_acquire(&l, S("r1"), 1000, 600 * MS, 5600, &n2), 0);
    assert_int_equal(n2, n1);
    assert_true(lease_valid(&l, n1, 1500 * MS));
    assert_false(lease_valid(&l, n1, 1600 * MS)); /* lapsed */
    assert_int_equal(lease_acquire(&l, S("r2"), 1000, 1600 * MS, 5000, &n3), 0);
    assert_true(n3 > n1); /* grows even if the wall clock went back */
    assert_int_equal(lease_renew(&l, S("r1"), n1, 1000, 1700 * MS), SL_ENOTLEADER);
    assert_int_equal(lease_renew(&l, S("r2"), n3, 1000, 1700 * MS), 0);
    assert_true(lease_valid(&l, n3, 2600 * MS));
    assert_int_equal(lease_release(&l, S("r1"), n3), SL_ENOTLEADER);
    assert_int_equal(lease_release(&l, S("r2"), n3), 0);
    assert_false(lease_held(&l, 1800 * MS));
    uint64_t n4;
    assert_int_equal(lease_acquire(&l, S("r1"), 1000, 1800 * MS, 5000, &n4), 0);
    assert_true(n4 > n3);
}

static uint64_t
acquire(struct broker *b, const char *who, int want)
{
    struct wire_msg req, rep;
    nng_msg *keep;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "lease.acquire");
    wire_set_cstr(&req, WK_NAME, who);
    wire_set_u64(&req, WK_TTL_MS, 1000);
    assert_int_equal(request(b, &req, &rep, &keep), want);
    uint64_t n = want == 0 ? rep.v[WK_LEASE].u : 0;
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return n;
}

static int
route_with_lease(struct broker *b, uint64_t lease, bool with)
{
    struct wire_msg req, rep;
    nng_msg *keep;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "route.set");
    wire_set_cstr(&req, WK_GROUP, "bob");
    wire_set_cstr(&req, WK_QUEUE, "default");
    if (with) {
        wire_set_u64(&req, WK_LEASE, lease);
    }
    int rv = request(b, &req, &rep, &keep);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return rv;
}

static void
test_changes_with_a_stale_lease_are_refused(void **state)
{
    struct broker_cfg cfg;
    struct broker *b;
    (void)state;
    broker_cfg_default(&cfg);
    b = fake_broker(&cfg, 1000000 * MS);

    uint64_t l1 = acquire(b, "r1", 0);
    acquire(b, "r2", SL_ENOTLEADER);
    assert_int_equal(route_with_lease(b, l1, true), 0);
    assert_int_equal(route_with_lease(b, l1 + 1, true), SL_ENOTLEADER);
    assert_int_equal(route_with_lease(b, 0, false), 0); /* people with ctl need no lease */
    fake_now += 1001 * MS;                               /* r1 dies: its lease lapses */
    assert_int_equal(route_with_lease(b, l1, true), SL_ENOTLEADER);
    uint64_t l2 = acquire(b, "r2", 0);
    assert_true(l2 > l1);
    assert_int_equal(route_with_lease(b, l2, true), 0);
    assert_int_equal(route_with_lease(b, l1, true), SL_ENOTLEADER);
    broker_free(b);
}

int
main(void)
{
    log_level = LOG_OFF;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_holder_at_a_time),
        cmocka_unit_test(test_changes_with_a_stale_lease_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
