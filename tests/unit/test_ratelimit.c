/* The token bucket's arithmetic (ratelimit.h): full at start, exact refill at any rate with
 * no token lost to rounding, the burst cap, a clock going back, when the next token is due,
 * the default burst; and the rate text of ctl and the router (ratespec.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ratelimit.h"
#include "ratespec.h"

#define SEC 1000000000LL

static void
test_bucket_starts_full_and_takes_at_most_what_it_holds(void **state)
{
    (void)state;
    struct rate_bucket rb;
    rate_bucket_init(&rb, 20000, 5, 100);
    assert_int_equal(rate_bucket_tokens(&rb, 100), 5);
    assert_int_equal(rate_bucket_take(&rb, 100, 3), 3);
    assert_int_equal(rate_bucket_take(&rb, 100, 10), 2); /* n asked, the rest held */
    assert_int_equal(rate_bucket_take(&rb, 100, 1), 0);
    assert_int_equal(rate_bucket_tokens(&rb, 100), 0);
}

static void
test_refill_is_exact_at_20_per_second(void **state)
{
    (void)state;
    struct rate_bucket rb;
    rate_bucket_init(&rb, 20000, 5, 0);
    assert_int_equal(rate_bucket_take(&rb, 0, 5), 5);
    /* 20/s: one token per 50 ms, not a nanosecond earlier. */
    assert_int_equal(rate_bucket_due_ns(&rb), 50 * 1000000LL);
    assert_int_equal(rate_bucket_take(&rb, 50 * 1000000LL - 1, 1), 0);
    assert_int_equal(rate_bucket_due_ns(&rb), 50 * 1000000LL);
    assert_int_equal(rate_bucket_take(&rb, 50 * 1000000LL, 1), 1);
    /* Taken one at a time, as due, for 10 s: exactly 200 more, none lost to rounding. */
    uint64_t n = 0;
    for (int64_t t = 50 * 1000000LL; t <= 10 * SEC + 50 * 1000000LL; t += 1000000LL) {
        n += rate_bucket_take(&rb, t, 1);
    }
    assert_int_equal(n, 200);
}

static void
test_refill_is_exact_at_a_third_of_a_job_per_second(void **state)
{
    (void)state;
    struct rate_bucket rb;
    /* 0.333/s with steps of 7 ms, which never divide a token evenly. */
    rate_bucket_init(&rb, 333, 1, 0);
    assert_int_equal(rate_bucket_take(&rb, 0, 1), 1);
    uint64_t n = 0;
    int64_t t = 0;
    for (; t <= 3000 * SEC / 333 * 10; t += 7000000LL) {
        n += rate_bucket_take(&rb, t, 1);
    }
    /* Tokens accrued by t: floor(t * 0.333 / 1 s). */
    t -= 7000000LL;
    assert_int_equal(n, (uint64_t)((__int128)t * 333 / 1000 / SEC));
    assert_true(n >= 9);
}

static void
test_refill_stops_at_the_burst(void **state)
{
    (void)state;
    struct rate_bucket rb;
    rate_bucket_init(&rb, 1000, 3, 0);
    assert_int_equal(rate_bucket_take(&rb, 0, 3), 3);
    assert_int_equal(rate_bucket_tokens(&rb, 3600 * SEC), 3);  /* an hour: still 3 */
    assert_int_equal(rate_bucket_take(&rb, 3600 * SEC, 5), 3);
    /* The largest values do not overflow: a million a second, a million burst, a year. */
    rate_bucket_init(&rb, RATE_MILLI_MAX, RATE_BURST_MAX, 0);
    assert_int_equal(rate_bucket_take(&rb, 0, RATE_BURST_MAX), RATE_BURST_MAX);
    assert_int_equal(rate_bucket_tokens(&rb, SEC / 2), RATE_BURST_MAX / 2);
    assert_int_equal(rate_bucket_tokens(&rb, 365 * 86400 * SEC), RATE_BURST_MAX);
    rate_bucket_init(&rb, RATE_MILLI_MIN, 1, 0);
    assert_int_equal(rate_bucket_take(&rb, 0, 1), 1);
    assert_int_equal(rate_bucket_due_ns(&rb), 1000 * SEC); /* 0.001/s: one in 1000 s */
    assert_int_equal(rate_bucket_tokens(&rb, 1000 * SEC - 1), 0);
    assert_int_equal(rate_bucket_tokens(&rb, 1000 * SEC), 1);
}

static void
test_a_clock_going_back_adds_nothing(void **state)
{
    (void)state;
    struct rate_bucket rb;
    rate_bucket_init(&rb, 10000, 2, 5 * SEC);
    assert_int_equal(rate_bucket_take(&rb, 5 * SEC, 2), 2);
    assert_int_equal(rate_bucket_take(&rb, 4 * SEC, 1), 0);
    assert_int_equal(rate_bucket_due_ns(&rb), 5 * SEC + SEC / 10);
}

static void
test_default_burst_is_one_second_at_least_one(void **state)
{
    (void)state;
    assert_int_equal(rate_burst_default(500), 1);
    assert_int_equal(rate_burst_default(1), 1);
    assert_int_equal(rate_burst_default(1999), 1);
    assert_int_equal(rate_burst_default(50000), 50);
    assert_int_equal(rate_burst_default(RATE_MILLI_MAX), RATE_BURST_MAX);
}

static void
test_ratespec_parses_units_and_rounds_to_thousandths(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t milli;
    } good[] = {
        { "50/s", 50000 }, { "50", 50000 }, { "600/m", 10000 }, { "3600/h", 1000 },
        { "0.5/s", 500 }, { "0", 0 }, { "0/s", 0 }, { "1/m", 17 }, { "0.001", 1 },
        { "1000000/s", 1000000000 }, { "2/h", 1 },
    };
    static const char *const bad[] = {
        "", "/s", "5/d", "5/sec", "-1", "+1", "1e3", ".5", "5.", " 5", "5 ", "0x10",
        "0.0004", "1/h", "1000001", "60000001/m",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t m = 99;
        assert_int_equal(ratespec_parse(good[i].s, &m), 0);
        assert_int_equal(m, good[i].milli);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t m = 99;
        assert_int_equal(ratespec_parse(bad[i], &m), -1);
        assert_int_equal(m, 99);
    }
}

static void
test_ratespec_formats_without_trailing_zeros(void **state)
{
    (void)state;
    char buf[32];
    ratespec_format(20000, buf, sizeof(buf));
    assert_string_equal(buf, "20/s");
    ratespec_format(500, buf, sizeof(buf));
    assert_string_equal(buf, "0.5/s");
    ratespec_format(1, buf, sizeof(buf));
    assert_string_equal(buf, "0.001/s");
    ratespec_format(1250, buf, sizeof(buf));
    assert_string_equal(buf, "1.25/s");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_starts_full_and_takes_at_most_what_it_holds),
        cmocka_unit_test(test_refill_is_exact_at_20_per_second),
        cmocka_unit_test(test_refill_is_exact_at_a_third_of_a_job_per_second),
        cmocka_unit_test(test_refill_stops_at_the_burst),
        cmocka_unit_test(test_a_clock_going_back_adds_nothing),
        cmocka_unit_test(test_default_burst_is_one_second_at_least_one),
        cmocka_unit_test(test_ratespec_parses_units_and_rounds_to_thousandths),
        cmocka_unit_test(test_ratespec_formats_without_trailing_zeros),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
