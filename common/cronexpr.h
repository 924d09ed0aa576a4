/* Recurring schedules (README "Recurring jobs"): the five-field cron syntax and @every, and
 * the instants they name. Pure: no clock, no allocation, no global state; every time is in
 * milliseconds since the epoch and every calendar is UTC.
 *
 * Five fields, minute hour day-of-month month day-of-week, separated by blanks; each a list
 * (a,b) of `*`, a value, a range a-b, or any of those with a step /n (`*` / `a-b` / `a`: from
 * a to the field's end). Months and weekdays take names (jan..dec, sun..sat, any case); a
 * weekday is 0-7, 0 and 7 both Sunday. When day-of-month and day-of-week are both restricted
 * (neither starts with `*`), a day matching either one fires; otherwise both must match.
 * Instants are whole minutes.
 *
 * `@every D` (D as ctl's durations: 500ms, 30s, 5m, 2h, 7d; at least 1 s, at most 3650 d)
 * names every multiple of D since the epoch, so `@every 1s` fires at each whole second and
 * `@every 1h` on the hour. `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`,
 * `@yearly` (`@annually`) are `0 * * * *`, `0 0 * * *`, `0 0 * * 0`, `0 0 1 * *`,
 * `0 0 1 1 *`. */
#ifndef SLUICE_CRONEXPR_H
#define SLUICE_CRONEXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRONEXPR_TEXT_MAX 256                 /* a schedule's text, bytes */
#define CRONEXPR_EVERY_MIN_MS 1000ull         /* @every: 1 s */
#define CRONEXPR_EVERY_MAX_MS 315360000000ull /* @every: 3650 days */

struct cronexpr {
    uint64_t every_ms;  /* > 0: @every; the fields below are unused */
    uint64_t minutes;   /* bit m: minute m, 0-59 */
    uint32_t hours;     /* bit h: hour h, 0-23 */
    uint32_t mdays;     /* bit d: day of month d, 1-31 */
    uint16_t months;    /* bit m: month m, 1-12 */
    uint8_t wdays;      /* bit d: weekday d, 0 (Sunday) - 6 */
    bool mday_any;      /* the day-of-month field starts with `*` */
    bool wday_any;      /* the day-of-week field starts with `*` */
};

/* Parses the schedule text[0..n) into *ce. Returns 0, or -1 with why naming the field that is
 * wrong and why (e.g. "hour: 24 is out of range 0-23"); *ce is written only on success. A
 * schedule that names no instant at all (`0 0 30 2 *`) is refused too. */
int cronexpr_parse(struct cronexpr *ce, const char *text, size_t n, char *why, size_t cap);

/* The first instant of ce strictly after after_ms (ms since the epoch, >= 0), or -1 when
 * there is none before the year 9999. */
int64_t cronexpr_next(const struct cronexpr *ce, int64_t after_ms);

/* The last instant of ce at or before at_ms that is strictly after after_ms, or -1 when none
 * is: what a missed run catches up on. */
int64_t cronexpr_last(const struct cronexpr *ce, int64_t after_ms, int64_t at_ms);

#endif
