#include "cronexpr.h"

#include "opt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MINUTE_MS 60000LL
#define DAY_MIN 1440LL
/* How far a search looks: a 29 February comes back within 8 years (2096 -> 2104). */
#define SEARCH_DAYS (9LL * 366)
/* 9999-12-31, the last day searched, in days since the epoch. */
#define LAST_DAY 2932896LL

static const struct field {
    const char *what;
    unsigned min, max;
    const char *const *names; /* names[i] is value min + i; NULL: numbers only */
} fields[5] = {
    { "minute", 0, 59, NULL },
    { "hour", 0, 23, NULL },
    { "day-of-month", 1, 31, NULL },
    { "month", 1, 12,
      (const char *const[]){ "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                             "oct", "nov", "dec", NULL } },
    { "day-of-week", 0, 7,
      (const char *const[]){ "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL } },
};

static const struct {
    const char *name;
    const char *fields;
} macros[] = {
    { "@hourly", "0 * * * *" },  { "@daily", "0 0 * * *" },   { "@midnight", "0 0 * * *" },
    { "@weekly", "0 0 * * 0" },  { "@monthly", "0 0 1 * *" }, { "@yearly", "0 0 1 1 *" },
    { "@annually", "0 0 1 1 *" },
};

/* A value of f: a number or one of its names, the whole of s[0..n). Returns 0 or -1. */
static int
value(const struct field *f, const char *s, size_t n, unsigned *out, char *why, size_t cap)
{
    unsigned v = 0;
    size_t i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        v = v < 1000 ? v * 10 + (unsigned)(s[i] - '0') : v; /* beyond every range: stays so */
        i++;
    }
    if (i == n && n > 0) {
        if (v < f->min || v > f->max) {
            snprintf(why, cap, "%s: %.*s is out of range %u-%u", f->what, (int)n, s, f->min,
                     f->max);
            return -1;
        }
        *out = v;
        return 0;
    }
    for (unsigned k = 0; f->names != NULL && f->names[k] != NULL; k++) {
        if (n == 3 && strncasecmp(s, f->names[k], 3) == 0) {
            *out = f->min + k;
            return 0;
        }
    }
    snprintf(why, cap, "%s: '%.*s' is not a number%s", f->what, (int)n, s,
             f->names == NULL ? "" : f->names == fields[3].names ? " or a month name"
                                                                  : " or a weekday name");
    return -1;
}

/* One item of a list (`*`, `a`, `a-b`, each with an optional /step) into *bits. */
static int
item(const struct field *f, const char *s, size_t n, uint64_t *bits, char *why, size_t cap)
{
    const char *slash = memchr(s, '/', n);
    size_t bn = slash != NULL ? (size_t)(slash - s) : n;
    unsigned lo = f->min, hi = f->max, step = 1;

    if (slash != NULL) {
        const char *p = slash + 1;
        size_t pn = n - bn - 1;
        step = 0;
        for (size_t i = 0; i < pn; i++) {
            if (p[i] < '0' || p[i] > '9' || step > 1000) {
                step = 0;
                break;
            }
            step = step * 10 + (unsigned)(p[i] - '0');
        }
        if (step == 0 || step > f->max) {
            snprintf(why, cap, "%s: step '%.*s' must be a number 1-%u", f->what, (int)pn, p,
                     f->max);
            return -1;
        }
    }
    if (!(bn == 1 && s[0] == '*')) {
        const char *dash = memchr(s, '-', bn);
        size_t an = dash != NULL ? (size_t)(dash - s) : bn;
        if (value(f, s, an, &lo, why, cap) != 0) {
            return -1;
        }
        if (dash != NULL) {
            if (value(f, dash + 1, bn - an - 1, &hi, why, cap) != 0) {
                return -1;
            }
            if (hi < lo) {
                snprintf(why, cap, "%s: range '%.*s' ends before it starts", f->what, (int)bn,
                         s);
                return -1;
            }
        } else if (slash == NULL) {
            hi = lo;
        }
    }
    for (unsigned v = lo; v <= hi; v += step) {
        *bits |= UINT64_C(1) << v;
    }
    return 0;
}

/* Field f, the whole of s[0..n): a comma-separated list. */
static int
field(const struct field *f, const char *s, size_t n, uint64_t *bits, char *why, size_t cap)
{
    *bits = 0;
    for (size_t i = 0; i <= n;) {
        const char *comma = memchr(s + i, ',', n - i);
        size_t end = comma != NULL ? (size_t)(comma - s) : n;
        if (end == i) {
            snprintf(why, cap, "%s: '%.*s' has an empty list item", f->what, (int)n, s);
            return -1;
        }
        if (item(f, s + i, end - i, bits, why, cap) != 0) {
            return -1;
        }
        i = end + 1;
    }
    return 0;
}

static int
parse_every(struct cronexpr *ce, const char *s, size_t n, char *why, size_t cap)
{
    char d[32];
    uint64_t ms;
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    if (n == 0 || n >= sizeof(d)) {
        snprintf(why, cap, "@every: needs a duration, e.g. @every 30s");
        return -1;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    int rv = opt_duration(d, &ms);
    if (rv == OPT_DUR_BAD) {
        snprintf(why, cap, "@every: '%s' is not a duration (e.g. 30s, 5m, 2h, 7d)", d);
        return -1;
    }
    if (rv != 0 || ms < CRONEXPR_EVERY_MIN_MS || ms > CRONEXPR_EVERY_MAX_MS) {
        snprintf(why, cap, "@every: '%s' is out of range 1s-3650d", d);
        return -1;
    }
    memset(ce, 0, sizeof(*ce));
    ce->every_ms = ms;
    return 0;
}

/* The five fields of s[0..n) into c. */
static int
parse_fields(struct cronexpr *c, const char *s, size_t n, char *why, size_t cap)
{
    const char *start[6];
    size_t len[6];
    unsigned nf = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == ' ' || s[i] == '\t') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && s[j] != ' ' && s[j] != '\t') {
            j++;
        }
        if (nf < 6) {
            start[nf] = s + i;
            len[nf] = j - i;
        }
        nf++;
        i = j;
    }
    if (nf != 5) {
        snprintf(why, cap, "expected 5 fields (minute hour day-of-month month day-of-week) or "
                           "@every D, @hourly, @daily, @weekly, @monthly, @yearly; got %u field%s",
                 nf, nf == 1 ? "" : "s");
        return -1;
    }
    uint64_t bits[5];
    for (unsigned k = 0; k < 5; k++) {
        if (field(&fields[k], start[k], len[k], &bits[k], why, cap) != 0) {
            return -1;
        }
    }
    memset(c, 0, sizeof(*c));
    c->minutes = bits[0];
    c->hours = (uint32_t)bits[1];
    c->mdays = (uint32_t)bits[2];
    c->months = (uint16_t)bits[3];
    c->wdays = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f); /* 7 is Sunday too */
    c->mday_any = start[2][0] == '*';
    c->wday_any = start[4][0] == '*';
    return 0;
}

int
cronexpr_parse(struct cronexpr *ce, const char *text, size_t n, char *why, size_t cap)
{
    struct cronexpr c;
    if (n == 0 || n > CRONEXPR_TEXT_MAX) {
        snprintf(why, cap, "a schedule is 1-%d bytes", CRONEXPR_TEXT_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)text[i] < 0x20 && text[i] != '\t') {
            snprintf(why, cap, "a schedule holds no control characters");
            return -1;
        }
    }
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t')) {
        n--;
    }
    while (n > 0 && (text[0] == ' ' || text[0] == '\t')) {
        text++;
        n--;
    }
    if (n >= 6 && strncmp(text, "@every", 6) == 0 &&
        (n == 6 || text[6] == ' ' || text[6] == '\t')) {
        if (parse_every(&c, text + 6, n - 6, why, cap) != 0) {
            return -1;
        }
        *ce = c;
        return 0;
    }
    const char *s = text;
    size_t sn = n;
    if (n > 0 && text[0] == '@') {
        s = NULL;
        for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
            if (strlen(macros[i].name) == n && strncmp(text, macros[i].name, n) == 0) {
                s = macros[i].fields;
                sn = strlen(s);
            }
        }
        if (s == NULL) {
            snprintf(why, cap, "unknown schedule '%.*s' (@every D, @hourly, @daily, @weekly, "
                               "@monthly, @yearly)", (int)n, text);
            return -1;
        }
    }
    if (parse_fields(&c, s, sn, why, cap) != 0) {
        return -1;
    }
    if (cronexpr_next(&c, 0) < 0) {
        snprintf(why, cap, "day-of-month: no month of the schedule has such a day, so it "
                           "never fires");
        return -1;
    }
    *ce = c;
    return 0;
}

/* Whether day (days since the epoch) is one of ce's days. */
static bool
day_ok(const struct cronexpr *ce, int64_t day)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (!(ce->months >> (tm.tm_mon + 1) & 1)) {
        return false;
    }
    bool md = ce->mdays >> tm.tm_mday & 1, wd = ce->wdays >> tm.tm_wday & 1;
    if (!ce->mday_any && !ce->wday_any) {
        return md || wd;
    }
    return md && wd;
}

/* The first minute of the day at or after from (0-1439) that ce names, or -1. */
static int64_t
first_in_day(const struct cronexpr *ce, int64_t from)
{
    for (int64_t m = from; m < DAY_MIN; m++) {
        if ((ce->hours >> (m / 60) & 1) && (ce->minutes >> (m % 60) & 1)) {
            return m;
        }
    }
    return -1;
}

/* The last minute of the day at or before to (0-1439) that ce names, or -1. */
static int64_t
last_in_day(const struct cronexpr *ce, int64_t to)
{
    for (int64_t m = to; m >= 0; m--) {
        if ((ce->hours >> (m / 60) & 1) && (ce->minutes >> (m % 60) & 1)) {
            return m;
        }
    }
    return -1;
}

int64_t
cronexpr_next(const struct cronexpr *ce, int64_t after_ms)
{
    if (after_ms < 0) {
        after_ms = -1;
    }
    if (ce->every_ms > 0) {
        int64_t e = (int64_t)ce->every_ms;
        return (after_ms / e + 1) * e;
    }
    int64_t minute = after_ms / MINUTE_MS + 1;
    int64_t day = minute / DAY_MIN, from = minute % DAY_MIN;
    for (int64_t d = day; d <= day + SEARCH_DAYS && d <= LAST_DAY; d++, from = 0) {
        int64_t m;
        if (day_ok(ce, d) && (m = first_in_day(ce, from)) >= 0) {
            return (d * DAY_MIN + m) * MINUTE_MS;
        }
    }
    return -1;
}

int64_t
cronexpr_last(const struct cronexpr *ce, int64_t after_ms, int64_t at_ms)
{
    if (at_ms <= after_ms || at_ms < 0) {
        return -1;
    }
    int64_t t;
    if (ce->every_ms > 0) {
        t = at_ms / (int64_t)ce->every_ms * (int64_t)ce->every_ms;
        return t > after_ms ? t : -1;
    }
    int64_t minute = at_ms / MINUTE_MS;
    int64_t day = minute / DAY_MIN, to = minute % DAY_MIN;
    int64_t stop = after_ms < 0 ? 0 : after_ms / MINUTE_MS / DAY_MIN;
    if (stop < day - SEARCH_DAYS) {
        stop = day - SEARCH_DAYS;
    }
    for (int64_t d = day; d >= stop; d--, to = DAY_MIN - 1) {
        int64_t m;
        if (day_ok(ce, d) && (m = last_in_day(ce, to)) >= 0) {
            t = (d * DAY_MIN + m) * MINUTE_MS;
            return t > after_ms ? t : -1;
        }
    }
    return -1;
}
