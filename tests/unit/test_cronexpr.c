/* Recurring schedules (cronexpr.h): each field's syntax good and bad, with the field named in
 * the error; the next and the last instant across month and year ends, leap years, the
 * day-of-month / day-of-week rule, steps, names, the macros and @every. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cronexpr.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ms since the epoch of a UTC time "YYYY-MM-DD HH:MM[:SS]". */
static int64_t
at(const char *s)
{
    struct tm tm = { 0 };
    int sec = 0;
    int n = sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &sec);
    assert_true(n >= 5);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm) * 1000;
}

static struct cronexpr
parse_ok(const char *s)
{
    struct cronexpr ce;
    char why[256] = "";
    if (cronexpr_parse(&ce, s, strlen(s), why, sizeof(why)) != 0) {
        fail_msg("'%s' refused: %s", s, why);
    }
    return ce;
}

/* The instant after after (a time string) as a time string. */
static void
next_is(const char *sched, const char *after, const char *want)
{
    struct cronexpr ce = parse_ok(sched);
    int64_t got = cronexpr_next(&ce, at(after));
    if (got != at(want)) {
        time_t t = (time_t)(got / 1000);
        char buf[64];
        strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", gmtime(&t));
        fail_msg("'%s' after %s: got %s, want %s", sched, after, buf, want);
    }
}

static void
test_good_schedules_parse(void **state)
{
    static const char *const good[] = {
        "* * * * *",        "0 0 1 1 *",        "*/15 * * * *",   "0-59/5 0-23/2 * * *",
        "5,10,15 1 * * *",  "0 9 * * mon-fri",  "0 9 * * MON-FRI", "0 0 * jan,JUL *",
        "0 0 * * 7",        "0 0 * * 0-7",      "30 4 1,15 * 5",  "  0 0 * * *  ",
        "0\t0\t*\t*\t*",    "10/20 * * * *",    "@hourly",        "@daily",
        "@midnight",        "@weekly",          "@monthly",       "@yearly",
        "@annually",        "@every 1s",        "@every 30s",     "@every 5m",
        "@every 2h",        "@every 7d",        "@every 1000ms",  "0 0 29 2 *",
    };
    (void)state;
    for (size_t i = 0; i < COUNT(good); i++) {
        parse_ok(good[i]);
    }
}

static void
test_bad_schedules_name_the_field(void **state)
{
    static const struct {
        const char *sched, *msg;
    } bad[] = {
        { "60 * * * *", "minute: 60 is out of range 0-59" },
        { "* 24 * * *", "hour: 24 is out of range 0-23" },
        { "* * 0 * *", "day-of-month: 0 is out of range 1-31" },
        { "* * 32 * *", "day-of-month: 32 is out of range 1-31" },
        { "* * * 13 *", "month: 13 is out of range 1-12" },
        { "* * * foo *", "month: 'foo' is not a number or a month name" },
        { "* * * * 8", "day-of-week: 8 is out of range 0-7" },
        { "* * * * funday", "day-of-week: 'funday' is not a number or a weekday name" },
        { "* * * * fri-mon", "day-of-week: range 'fri-mon' ends before it starts" },
        { "*/0 * * * *", "minute: step '0' must be a number 1-59" },
        { "*/x * * * *", "minute: step 'x' must be a number 1-59" },
        { "1,,2 * * * *", "minute: '1,,2' has an empty list item" },
        { "a * * * *", "minute: 'a' is not a number" },
        { "-5 * * * *", "minute: '' is not a number" },
        { "99999 * * * *", "minute: 99999 is out of range 0-59" },
        { "* * * *", "expected 5 fields" },
        { "* * * * * *", "got 6 fields" },
        { "0 0 30 2 *", "never fires" },
        { "0 0 31 4,6,9,11 *", "never fires" },
        { "@often", "unknown schedule '@often'" },
        { "@every", "@every: needs a duration" },
        { "@every 500ms", "@every: '500ms' is out of range 1s-3650d" },
        { "@every 0s", "out of range" },
        { "@every 3651d", "out of range" },
        { "@every soon", "@every: 'soon' is not a duration" },
        { "", "a schedule is 1-256 bytes" },
        { "0 0 * * *\n", "no control characters" },
    };
    (void)state;
    for (size_t i = 0; i < COUNT(bad); i++) {
        struct cronexpr ce;
        char why[256] = "";
        memset(&ce, 0x5a, sizeof(ce));
        struct cronexpr before = ce;
        if (cronexpr_parse(&ce, bad[i].sched, strlen(bad[i].sched), why, sizeof(why)) == 0) {
            fail_msg("'%s' accepted", bad[i].sched);
        }
        if (strstr(why, bad[i].msg) == NULL) {
            fail_msg("'%s': got \"%s\", want \"%s\"", bad[i].sched, why, bad[i].msg);
        }
        assert_memory_equal(&ce, &before, sizeof(ce)); /* written only on success */
    }
    char big[CRONEXPR_TEXT_MAX + 2];
    memset(big, ' ', sizeof(big));
    memcpy(big, "* * * * *", 9);
    struct cronexpr ce;
    char why[256];
    assert_int_equal(cronexpr_parse(&ce, big, sizeof(big), why, sizeof(why)), -1);
}

static void
test_next_steps_lists_and_ranges(void **state)
{
    (void)state;
    next_is("* * * * *", "2026-03-01 10:00:30", "2026-03-01 10:01");
    next_is("* * * * *", "2026-03-01 10:00", "2026-03-01 10:01"); /* strictly after */
    next_is("*/15 * * * *", "2026-03-01 10:16", "2026-03-01 10:30");
    next_is("*/15 * * * *", "2026-03-01 10:45", "2026-03-01 11:00");
    next_is("10/20 * * * *", "2026-03-01 10:31", "2026-03-01 10:50");
    next_is("0-30/10 9-17/4 * * *", "2026-03-01 13:30", "2026-03-01 17:00");
    next_is("5,10 1 * * *", "2026-03-01 01:07", "2026-03-01 01:10");
    next_is("5,10 1 * * *", "2026-03-01 01:10", "2026-03-02 01:05");
    next_is("0 0 * * *", "2026-12-31 23:59:59", "2027-01-01 00:00");
}

static void
test_next_across_month_ends_and_leap_years(void **state)
{
    (void)state;
    next_is("0 0 31 * *", "2026-04-01 00:00", "2026-05-31 00:00"); /* April has 30 days */
    next_is("0 0 1 * *", "2026-01-31 12:00", "2026-02-01 00:00");
    next_is("0 12 29 2 *", "2026-01-01 00:00", "2028-02-29 12:00");
    next_is("0 12 29 2 *", "2028-02-29 12:00", "2032-02-29 12:00");
    next_is("0 0 29 2 *", "2096-03-01 00:00", "2104-02-29 00:00"); /* 2100 is no leap year */
    next_is("0 0 28 2 *", "2028-02-28 00:00", "2029-02-28 00:00");
    next_is("0 0 * feb *", "2027-02-28 00:00", "2028-02-01 00:00");
}

static void
test_day_rule_either_when_both_restricted(void **state)
{
    (void)state;
    /* 2026-03-01 is a Sunday. */
    next_is("0 0 15 * mon", "2026-03-01 00:00", "2026-03-02 00:00"); /* a Monday */
    next_is("0 0 15 * mon", "2026-03-13 00:00", "2026-03-15 00:00"); /* the 15th, a Sunday */
    /* One side starting with `*`: both must match. */
    next_is("0 0 * * mon", "2026-03-01 00:00", "2026-03-02 00:00");
    next_is("0 0 13 * *", "2026-03-01 00:00", "2026-03-13 00:00");
    next_is("0 0 */2 * fri", "2026-03-01 00:00", "2026-03-13 00:00"); /* odd day, Friday */
    next_is("0 0 13 * */1", "2026-03-01 00:00", "2026-03-13 00:00");
    next_is("0 0 * * 7", "2026-03-01 00:00", "2026-03-08 00:00"); /* 7: Sunday */
    next_is("0 0 * * 0", "2026-03-01 00:00", "2026-03-08 00:00");
    next_is("0 0 * * 5-7", "2026-03-02 00:00", "2026-03-06 00:00");
    next_is("0 9 * * mon-fri", "2026-03-06 09:00", "2026-03-09 09:00"); /* Fri -> Mon */
}

static void
test_macros(void **state)
{
    (void)state;
    next_is("@hourly", "2026-03-01 10:00", "2026-03-01 11:00");
    next_is("@daily", "2026-03-01 10:00", "2026-03-02 00:00");
    next_is("@weekly", "2026-03-02 10:00", "2026-03-08 00:00");
    next_is("@monthly", "2026-03-02 10:00", "2026-04-01 00:00");
    next_is("@yearly", "2026-03-02 10:00", "2027-01-01 00:00");
}

static void
test_every_is_aligned_to_the_epoch(void **state)
{
    struct cronexpr ce = parse_ok("@every 30s");
    (void)state;
    assert_int_equal(ce.every_ms, 30000);
    assert_int_equal(cronexpr_next(&ce, 0), 30000);
    assert_int_equal(cronexpr_next(&ce, 29999), 30000);
    assert_int_equal(cronexpr_next(&ce, 30000), 60000);
    ce = parse_ok("@every 1s");
    assert_int_equal(cronexpr_next(&ce, 1700000000500), 1700000001000);
    ce = parse_ok("@every 1h");
    next_is("@every 1h", "2026-03-01 10:20", "2026-03-01 11:00");
    assert_int_equal(cronexpr_last(&ce, at("2026-03-01 08:30"), at("2026-03-01 10:20")),
                     at("2026-03-01 10:00"));
    assert_int_equal(cronexpr_last(&ce, at("2026-03-01 10:00"), at("2026-03-01 10:20")), -1);
}

static void
test_last_instant_catches_up_once(void **state)
{
    struct cronexpr ce = parse_ok("*/15 * * * *");
    (void)state;
    /* Down from 10:07 to 11:20: the instants 10:15 .. 11:15 were missed; the last is 11:15. */
    assert_int_equal(cronexpr_last(&ce, at("2026-03-01 10:07"), at("2026-03-01 11:20")),
                     at("2026-03-01 11:15"));
    assert_int_equal(cronexpr_last(&ce, at("2026-03-01 10:00"), at("2026-03-01 10:14")), -1);
    assert_int_equal(cronexpr_last(&ce, at("2026-03-01 10:00"), at("2026-03-01 10:15")),
                     at("2026-03-01 10:15"));
    ce = parse_ok("0 0 1 * *");
    assert_int_equal(cronexpr_last(&ce, at("2026-01-15 00:00"), at("2026-03-20 00:00")),
                     at("2026-03-01 00:00"));
    ce = parse_ok("0 0 29 2 *");
    assert_int_equal(cronexpr_last(&ce, at("2027-01-01 00:00"), at("2029-01-01 00:00")),
                     at("2028-02-29 00:00"));
    assert_int_equal(cronexpr_last(&ce, at("2028-03-01 00:00"), at("2029-01-01 00:00")), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_schedules_parse),
        cmocka_unit_test(test_bad_schedules_name_the_field),
        cmocka_unit_test(test_next_steps_lists_and_ranges),
        cmocka_unit_test(test_next_across_month_ends_and_leap_years),
        cmocka_unit_test(test_day_rule_either_when_both_restricted),
        cmocka_unit_test(test_macros),
        cmocka_unit_test(test_every_is_aligned_to_the_epoch),
        cmocka_unit_test(test_last_instant_catches_up_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
