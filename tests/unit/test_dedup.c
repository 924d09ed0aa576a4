/* Idempotency keys: seen, stale, per-client, window expiry and the client cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dedup.h"

#include <stdio.h>
#include <string.h>

#define SEC 1000000000LL

static struct sl_str
S(const char *z)
{
    return (struct sl_str){ z, (uint32_t)strlen(z) };
}

static void
test_recorded_key_is_seen_with_first_answer(void **state)
{
    struct dedup *d = dedup_new(600 * SEC, 10);
    uint64_t id = 0;
    uint32_t n = 0;
    (void)state;
    assert_int_equal(dedup_check(d, S("c"), 1, 0, &id, &n), DEDUP_NEW);
    assert_int_equal(dedup_record(d, S("c"), 1, 100, 5, 0), 0);
    assert_int_equal(dedup_check(d, S("c"), 1, SEC, &id, &n), DEDUP_SEEN);
    assert_int_equal(id, 100);
    assert_int_equal(n, 5);
    assert_int_equal(dedup_check(d, S("c"), 2, SEC, &id, &n), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("other"), 1, SEC, &id, &n), DEDUP_NEW);
    dedup_free(d);
}

static void
test_keys_older_than_the_ring_are_stale(void **state)
{
    struct dedup *d = dedup_new(600 * SEC, 10);
    uint64_t id;
    uint32_t n;
    (void)state;
    for (uint64_t s = 1; s <= DEDUP_RING + 10; s++) {
        assert_int_equal(dedup_record(d, S("c"), s, s * 10, 1, 0), 0);
    }
    assert_int_equal(dedup_check(d, S("c"), 1, 0, &id, &n), DEDUP_STALE);
    assert_int_equal(dedup_check(d, S("c"), DEDUP_RING + 10, 0, &id, &n), DEDUP_SEEN);
    assert_int_equal(id, (DEDUP_RING + 10) * 10);
    assert_int_equal(dedup_check(d, S("c"), 11, 0, &id, &n), DEDUP_SEEN);
    assert_int_equal(dedup_check(d, S("c"), DEDUP_RING + 11, 0, &id, &n), DEDUP_NEW);
    dedup_free(d);
}

static void
test_idle_client_is_forgotten_after_window(void **state)
{
    struct dedup *d = dedup_new(10 * SEC, 10);
    uint64_t id;
    uint32_t n;
    (void)state;
    assert_int_equal(dedup_record(d, S("c"), 1, 1, 1, 0), 0);
    assert_int_equal(dedup_check(d, S("c"), 1, 10 * SEC, &id, &n), DEDUP_SEEN);
    assert_int_equal(dedup_check(d, S("c"), 1, 11 * SEC, &id, &n), DEDUP_NEW);
    assert_int_equal(dedup_clients(d), 0);
    dedup_free(d);
}

static void
test_client_cap_forgets_least_recently_used(void **state)
{
    struct dedup *d = dedup_new(600 * SEC, 3);
    uint64_t id;
    uint32_t n;
    (void)state;
    assert_int_equal(dedup_record(d, S("a"), 1, 1, 1, 0), 0);
    assert_int_equal(dedup_record(d, S("b"), 1, 2, 1, 1), 0);
    assert_int_equal(dedup_record(d, S("c"), 1, 3, 1, 2), 0);
    assert_int_equal(dedup_record(d, S("a"), 2, 4, 1, 3), 0); /* a is now the most recent */
    assert_int_equal(dedup_record(d, S("d"), 1, 5, 1, 4), 0); /* evicts b */
    assert_int_equal(dedup_clients(d), 3);
    assert_int_equal(dedup_check(d, S("b"), 1, 5, &id, &n), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("a"), 1, 5, &id, &n), DEDUP_SEEN);
    assert_int_equal(dedup_check(d, S("c"), 1, 5, &id, &n), DEDUP_SEEN);
    dedup_free(d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded_key_is_seen_with_first_answer),
        cmocka_unit_test(test_keys_older_than_the_ring_are_stale),
        cmocka_unit_test(test_idle_client_is_forgotten_after_window),
        cmocka_unit_test(test_client_cap_forgets_least_recently_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
