/* common/opt: table-driven option parsing (flag > environment > default), usage errors (2),
 * and the number, size and duration parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log.h"
#include "opt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { T_COUNT = OPT_COMMON_END, T_FORCE, T_QUEUE };

static const struct opt topts[] = {
    { T_COUNT, "count", 's', "N", "SLT_COUNT", "how many" },
    { T_FORCE, "force", 'f', NULL, "SLT_FORCE", "even if not empty" },
    { T_QUEUE, "queue", 'q', "Q", NULL, "target queue" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

static const struct opt *const tables[] = { opt_common, topts, NULL };

/* --- helpers ----------------------------------------------------------------------------- */

/* A modifiable argv (opt_parse reorders it), built from a NULL-terminated list. */
struct args {
    int argc;
    char *argv[32];
    char store[2048];
};

static struct args *
mkargs(struct args *a, ...)
{
    va_list ap;
    size_t used = 0;
    const char *w;

    a->argc = 0;
    va_start(ap, a);
    while ((w = va_arg(ap, const char *)) != NULL) {
        size_t n = strlen(w) + 1;
        assert_true(used + n <= sizeof(a->store) && a->argc < 31);
        memcpy(a->store + used, w, n);
        a->argv[a->argc++] = a->store + used;
        used += n;
    }
    va_end(ap);
    a->argv[a->argc] = NULL;
    return a;
}

/* Captures what is written to fd (1 or 2) between capture_start and capture_end. */
static int saved_fd = -1;
static FILE *cap_file;
static char captured[8192];

static void
capture_start(int fd)
{
    fflush(fd == 1 ? stdout : stderr);
    cap_file = tmpfile();
    assert_non_null(cap_file);
    saved_fd = dup(fd);
    assert_true(saved_fd >= 0);
    assert_true(dup2(fileno(cap_file), fd) >= 0);
}

static const char *
capture_end(int fd)
{
    fflush(fd == 1 ? stdout : stderr);
    dup2(saved_fd, fd);
    close(saved_fd);
    saved_fd = -1;
    rewind(cap_file);
    size_t n = fread(captured, 1, sizeof(captured) - 1, cap_file);
    captured[n] = '\0';
    fclose(cap_file);
    return captured;
}

/* opt_parse with stderr captured into `captured`. */
static int
parse(struct args *a, bool in_order, struct opt_vals *v, int *argi)
{
    capture_start(2);
    int rv = opt_parse(a->argc, a->argv, tables, in_order, v, argi);
    capture_end(2);
    return rv;
}

static void
expect_args(struct args *a, int argi, int n, const char *const *want)
{
    assert_int_equal(a->argc - argi, n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(a->argv[argi + i], want[i]);
    }
}

static int
setup(void **state)
{
    (void)state;
    log_prog = "t";
    unsetenv("SLT_COUNT");
    unsetenv("SLT_FORCE");
    unsetenv("SLUICE_URL");
    unsetenv("SLUICE_LOG_LEVEL");
    log_level = LOG_INFO;
    return 0;
}

/* --- opt_parse ----------------------------------------------------------------------------- */

static void
test_parse_mixes_options_and_arguments_keeping_argument_order(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "push", "-s", "10", "bob", "--queue=q1", "hello", "-f", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_string_equal(v.v[T_COUNT], "10");
    assert_string_equal(v.v[T_QUEUE], "q1");
    assert_string_equal(v.v[T_FORCE], "1");
    assert_false(v.from_env[T_COUNT]);
    assert_null(v.v[OPT_URL]);
    expect_args(&a, argi, 3, (const char *[]){ "push", "bob", "hello" });
}

static void
test_parse_long_option_with_separate_argument(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "--queue", "q2", "--count", "3", "x", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_string_equal(v.v[T_QUEUE], "q2");
    assert_string_equal(v.v[T_COUNT], "3");
    expect_args(&a, argi, 1, (const char *[]){ "x" });
}

/* An option given more than once keeps every value in order (the broker's --listen); v
 * holds the last; past OPT_REPEAT_MAX the count goes on, the values are not kept. */
static void
test_parse_keeps_every_value_of_a_repeated_option(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "-q", "a", "x", "--queue", "b", "--queue=c", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_int_equal(v.n[T_QUEUE], 3);
    assert_string_equal(v.all[T_QUEUE][0], "a");
    assert_string_equal(v.all[T_QUEUE][1], "b");
    assert_string_equal(v.all[T_QUEUE][2], "c");
    assert_string_equal(v.v[T_QUEUE], "c");
    assert_int_equal(v.n[T_COUNT], 0);
    expect_args(&a, argi, 1, (const char *[]){ "x" });

    mkargs(&a, "prog", "-q1", "-q2", "-q3", "-q4", "-q5", "-q6", "-q7", "-q8", "-q9", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_int_equal(v.n[T_QUEUE], 9);
    assert_string_equal(v.all[T_QUEUE][OPT_REPEAT_MAX - 1], "8");
    assert_string_equal(v.v[T_QUEUE], "9");

    setenv("SLT_COUNT", "7", 1);
    mkargs(&a, "prog", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_int_equal(v.n[T_COUNT], 1);
    assert_string_equal(v.all[T_COUNT][0], "7");
    unsetenv("SLT_COUNT");
}

static void
test_parse_in_order_stops_at_the_first_argument(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "-s", "5", "push", "-f", "--queue", "x", "bob", NULL);
    assert_int_equal(parse(&a, true, &v, &argi), 0);
    assert_string_equal(v.v[T_COUNT], "5");
    assert_null(v.v[T_FORCE]);
    assert_null(v.v[T_QUEUE]);
    expect_args(&a, argi, 5, (const char *[]){ "push", "-f", "--queue", "x", "bob" });
}

static void
test_double_dash_ends_options(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "-s", "1", "--", "-f", "--queue", "x", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_string_equal(v.v[T_COUNT], "1");
    assert_null(v.v[T_FORCE]);
    assert_null(v.v[T_QUEUE]);
    expect_args(&a, argi, 3, (const char *[]){ "-f", "--queue", "x" });

    /* Arguments before "--" stay first. */
    mkargs(&a, "prog", "a", "--", "-f", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_null(v.v[T_FORCE]);
    expect_args(&a, argi, 2, (const char *[]){ "a", "-f" });
}

static void
test_lone_dash_is_an_argument(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "push", "-", "--queue", "-", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_string_equal(v.v[T_QUEUE], "-");
    expect_args(&a, argi, 2, (const char *[]){ "push", "-" });
}

static void
test_short_options_cluster(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "-fs3", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_string_equal(v.v[T_FORCE], "1");
    assert_string_equal(v.v[T_COUNT], "3");
    assert_int_equal(argi, a.argc);
}

static void
test_repeated_option_keeps_the_last_value(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "-s", "1", "--count=2", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_string_equal(v.v[T_COUNT], "2");
}

static void
test_no_arguments_leaves_argi_at_argc(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_int_equal(argi, 1);
    for (int i = 0; i < OPT_MAX; i++) {
        assert_null(v.v[i]);
    }
}

static void
test_unknown_long_option_is_usage_error(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "push", "--nope", "x", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 2);
    assert_non_null(strstr(captured, "t: "));
    assert_non_null(strstr(captured, "unknown option"));
    assert_non_null(strstr(captured, "--nope"));
    assert_int_equal(argi, -1); /* not written on failure */
}

static void
test_unknown_short_option_is_usage_error(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "-z", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 2);
    assert_non_null(strstr(captured, "unknown option"));
    assert_non_null(strstr(captured, "-z"));
}

static void
test_missing_argument_is_usage_error(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "x", "--queue", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 2);
    assert_non_null(strstr(captured, "needs an argument"));
    assert_non_null(strstr(captured, "--queue"));

    mkargs(&a, "prog", "-s", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 2);
    assert_non_null(strstr(captured, "needs an argument"));
    assert_non_null(strstr(captured, "-s"));
}

static void
test_flag_given_an_argument_is_usage_error(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "--force=yes", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 2);
    assert_true(strlen(captured) > 0);
}

static void
test_env_fills_an_absent_option(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    setenv("SLT_COUNT", "7", 1);
    setenv("SLT_FORCE", "1", 1);
    setenv("SLUICE_URL", "tcp://127.0.0.1:7450", 1);
    mkargs(&a, "prog", "x", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_string_equal(v.v[T_COUNT], "7");
    assert_true(v.from_env[T_COUNT]);
    assert_string_equal(v.v[T_FORCE], "1");
    assert_true(v.from_env[T_FORCE]);
    assert_string_equal(v.v[OPT_URL], "tcp://127.0.0.1:7450");
    assert_true(v.from_env[OPT_URL]);
    /* No env variable for --queue: stays absent. */
    assert_null(v.v[T_QUEUE]);
    assert_false(v.from_env[T_QUEUE]);
    unsetenv("SLT_COUNT");
    unsetenv("SLT_FORCE");
    unsetenv("SLUICE_URL");
}

static void
test_flag_beats_env(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    setenv("SLT_COUNT", "7", 1);
    setenv("SLUICE_URL", "ipc:///env", 1);
    mkargs(&a, "prog", "-s", "9", "--url", "ipc:///flag", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_string_equal(v.v[T_COUNT], "9");
    assert_false(v.from_env[T_COUNT]);
    assert_string_equal(v.v[OPT_URL], "ipc:///flag");
    assert_false(v.from_env[OPT_URL]);
    unsetenv("SLT_COUNT");
    unsetenv("SLUICE_URL");
}

static void
test_empty_env_counts_as_absent(void **state)
{
    (void)state;
    struct args a;
    struct opt_vals v;
    int argi = -1;
    setenv("SLT_COUNT", "", 1);
    mkargs(&a, "prog", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    assert_null(v.v[T_COUNT]);
    assert_false(v.from_env[T_COUNT]);
    unsetenv("SLT_COUNT");
}

static void
test_parse_twice_starts_afresh(void **state)
{
    (void)state;
    /* ctl parses its global options, then the command's: getopt state must not carry over. */
    struct args a, b;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "-s", "1", "-f", "x", "y", NULL);
    assert_int_equal(parse(&a, false, &v, &argi), 0);
    mkargs(&b, "cmd", "--queue", "q", "z", NULL);
    assert_int_equal(parse(&b, false, &v, &argi), 0);
    assert_null(v.v[T_COUNT]);
    assert_null(v.v[T_FORCE]);
    assert_string_equal(v.v[T_QUEUE], "q");
    expect_args(&b, argi, 1, (const char *[]){ "z" });
}

static void
test_option_id_out_of_range_is_refused(void **state)
{
    (void)state;
    static const struct opt bad[] = {
        { OPT_MAX, "big", 0, NULL, NULL, "id too large" },
        { 0, NULL, 0, NULL, NULL, NULL },
    };
    const struct opt *const t[] = { bad, NULL };
    struct args a;
    struct opt_vals v;
    int argi = -1;
    mkargs(&a, "prog", "--big", NULL);
    assert_int_equal(opt_parse(a.argc, a.argv, t, false, &v, &argi), 2);
}

/* --- numbers ------------------------------------------------------------------------------- */

#define SENTINEL UINT64_C(0x5a5a5a5a5a5a5a5a)

typedef int num_fn(const char *, const char *, uint64_t, uint64_t, uint64_t *);

static void
num_ok_at(num_fn *fn, const char *arg, uint64_t min, uint64_t max, uint64_t want,
          const char *file, int line)
{
    uint64_t out = SENTINEL;
    capture_start(2);
    int rv = fn("count", arg, min, max, &out);
    capture_end(2);
    if (rv != 0 || out != want) {
        fail_msg("%s:%d: '%s' in [%llu, %llu]: rv %d out %llu, want 0 and %llu (%s)", file, line,
                 arg, (unsigned long long)min, (unsigned long long)max, rv,
                 (unsigned long long)out, (unsigned long long)want, captured);
    }
    if (captured[0] != '\0') {
        fail_msg("%s:%d: '%s' accepted but printed \"%s\"", file, line, arg, captured);
    }
}

static void
num_bad_at(num_fn *fn, const char *arg, uint64_t min, uint64_t max, const char *file, int line)
{
    uint64_t out = SENTINEL;
    capture_start(2);
    int rv = fn("count", arg, min, max, &out);
    capture_end(2);
    if (rv != 2) {
        fail_msg("%s:%d: '%s' in [%llu, %llu]: rv %d (out %llu), want 2", file, line,
                 arg ? arg : "(null)", (unsigned long long)min, (unsigned long long)max, rv,
                 (unsigned long long)out);
    }
    if (out != SENTINEL) {
        fail_msg("%s:%d: '%s': *out was written on failure", file, line, arg ? arg : "(null)");
    }
    if (strstr(captured, "--count") == NULL) {
        fail_msg("%s:%d: '%s': the message \"%s\" does not name --count", file, line,
                 arg ? arg : "(null)", captured);
    }
}

#define NUM_OK(fn, arg, min, max, want) num_ok_at((fn), (arg), (min), (max), (want), __FILE__, __LINE__)
#define NUM_BAD(fn, arg, min, max) num_bad_at((fn), (arg), (min), (max), __FILE__, __LINE__)

static void
test_u64_accepts_whole_numbers_in_range(void **state)
{
    (void)state;
    NUM_OK(opt_u64, "0", 0, 10, 0);
    NUM_OK(opt_u64, "10", 0, 10, 10);
    NUM_OK(opt_u64, "1", 1, 10, 1);
    NUM_OK(opt_u64, "007", 0, 10, 7);
    NUM_OK(opt_u64, "18446744073709551615", 0, UINT64_MAX, UINT64_MAX);
}

static void
test_u64_rejects_out_of_range(void **state)
{
    (void)state;
    NUM_BAD(opt_u64, "0", 1, 10);
    NUM_BAD(opt_u64, "11", 1, 10);
    assert_non_null(strstr(captured, "out of range"));
    NUM_BAD(opt_u64, "18446744073709551616", 0, UINT64_MAX); /* 2^64 */
    NUM_BAD(opt_u64, "99999999999999999999999", 0, UINT64_MAX);
}

static void
test_u64_rejects_garbage(void **state)
{
    (void)state;
    const char *const bad[] = { "", "x", "1x", "x1", "-1", "+1", "0x10", "1.5", "1e3", "1k",
                                "1 ", " 1", "1,000", "--1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        NUM_BAD(opt_u64, bad[i], 0, UINT64_MAX);
    }
    NUM_BAD(opt_u64, NULL, 0, UINT64_MAX);
}

static void
test_u64_rejects_leading_whitespace_of_any_kind(void **state)
{
    (void)state;
    /* "Parses a whole decimal number": strtoull would skip these. */
    NUM_BAD(opt_u64, "\t5", 0, 10);
    NUM_BAD(opt_u64, "\n5", 0, 10);
    NUM_BAD(opt_u64, "\v5", 0, 10);
}

static void
test_size_accepts_suffixes_in_powers_of_1024(void **state)
{
    (void)state;
    NUM_OK(opt_size, "0", 0, UINT64_MAX, 0);
    NUM_OK(opt_size, "512", 0, UINT64_MAX, 512);
    NUM_OK(opt_size, "1k", 0, UINT64_MAX, 1024);
    NUM_OK(opt_size, "1K", 0, UINT64_MAX, 1024);
    NUM_OK(opt_size, "2M", 0, UINT64_MAX, UINT64_C(2) << 20);
    NUM_OK(opt_size, "64m", 0, UINT64_MAX, UINT64_C(64) << 20);
    NUM_OK(opt_size, "3G", 0, UINT64_MAX, UINT64_C(3) << 30);
    NUM_OK(opt_size, "64MB", 0, UINT64_MAX, UINT64_C(64) << 20);
    NUM_OK(opt_size, "1kb", 0, UINT64_MAX, 1024);
    NUM_OK(opt_size, "1M", 1, UINT64_C(1) << 20, UINT64_C(1) << 20);
}

static void
test_size_rejects_bad_suffixes_and_overflow(void **state)
{
    (void)state;
    const char *const bad[] = { "1T", "1x", "k", "M", "1kk", "1kbb", "1 k", "1.5M", "-1k",
                                "1Mi", "" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        NUM_BAD(opt_size, bad[i], 0, UINT64_MAX);
    }
    NUM_BAD(opt_size, "17179869184G", 0, UINT64_MAX); /* 2^34 G = 2^64 */
    NUM_BAD(opt_size, "1M", 0, (UINT64_C(1) << 20) - 1);
    NUM_BAD(opt_size, "1k", 1025, UINT64_MAX);
}

static void
test_ms_accepts_units(void **state)
{
    (void)state;
    NUM_OK(opt_ms, "0", 0, UINT64_MAX, 0);
    NUM_OK(opt_ms, "500", 0, UINT64_MAX, 500);
    NUM_OK(opt_ms, "500ms", 0, UINT64_MAX, 500);
    NUM_OK(opt_ms, "2s", 0, UINT64_MAX, 2000);
    NUM_OK(opt_ms, "3m", 0, UINT64_MAX, 180000);
    NUM_OK(opt_ms, "1h", 0, UINT64_MAX, 3600000);
    NUM_OK(opt_ms, "24h", 1, 86400000, 86400000);
    NUM_OK(opt_ms, "7d", 0, UINT64_MAX, 604800000);
}

static void
test_time_accepts_rfc3339_in_any_zone(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(opt_time("at", "2026-12-24T18:00:00Z", &ms), 0);
    assert_int_equal(ms, 1798135200000LL);
    assert_int_equal(opt_time("at", "2026-12-24t19:00:00+01:00", &ms), 0);
    assert_int_equal(ms, 1798135200000LL);
    assert_int_equal(opt_time("at", "2026-12-24 12:30:00-05:30", &ms), 0);
    assert_int_equal(ms, 1798135200000LL);
    assert_int_equal(opt_time("at", "2026-12-24T18:00:00.123456z", &ms), 0);
    assert_int_equal(ms, 1798135200123LL);
    assert_int_equal(opt_time("at", "2026-12-24T18:00:00.5Z", &ms), 0);
    assert_int_equal(ms, 1798135200500LL);
    assert_int_equal(opt_time("at", "2028-02-29T00:00:00Z", &ms), 0); /* a leap day */
    assert_int_equal(opt_time("at", "1970-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 0);
}

static void
test_time_rejects_what_is_not_a_time(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "tomorrow", "2026-12-24", "2026-12-24T18:00:00", "2026-12-24T18:00Z",
        "2026-12-24T18:00:00ZZ", "2026-12-24T18:00:00+1:00", "2026-12-24T18:00:00+01",
        "2026-12-24T18:00:00+24:00", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-24T24:00:00Z",
        "2026-12-24T18:60:00Z", "2026-12-24T18:00:60Z", "1969-12-31T23:59:59Z",
        "2026-12-24T18:00:00.Z", "2026-12-24X18:00:00Z", " 2026-12-24T18:00:00Z",
        "2026-12-24T18:00:00Z ", "+026-12-24T18:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        if (opt_time("at", bad[i], &ms) != 2) {
            fail_msg("'%s' was accepted", bad[i]);
        }
        assert_int_equal(ms, 42);
    }
    int64_t ms = 42;
    assert_int_equal(opt_time("at", NULL, &ms), 2);
}

static void
test_ms_rejects_garbage_and_out_of_range(void **state)
{
    (void)state;
    const char *const bad[] = { "", "s", "ms", "1.5s", "5 s", " 5", "5sec", "-1", "+1", "5S",
                                "1w", "5msx", "0x5" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        NUM_BAD(opt_ms, bad[i], 0, UINT64_MAX);
    }
    NUM_BAD(opt_ms, NULL, 0, UINT64_MAX);
    NUM_BAD(opt_ms, "0", 1, 1000);
    NUM_BAD(opt_ms, "2s", 1, 1000);
    NUM_BAD(opt_ms, "1001ms", 1, 1000);
    NUM_BAD(opt_ms, "99999999999999999999", 0, UINT64_MAX);      /* over 2^64 */
    NUM_BAD(opt_ms, "5124095576030432h", 0, UINT64_MAX);         /* x 3600000 overflows */
    NUM_BAD(opt_ms, "000000000000000000000000000000001", 0, 10); /* too many digits */
}

/* --- opt_common_apply, opt_usage ------------------------------------------------------------ */

static void
test_help_prints_usage_from_the_tables_and_is_done(void **state)
{
    (void)state;
    struct opt_vals v;
    bool done = false;
    memset(&v, 0, sizeof(v));
    v.v[OPT_HELP] = "1";
    capture_start(1);
    int rv = opt_common_apply(&v, "prog push GROUP PAYLOAD", tables, &done);
    capture_end(1);
    assert_int_equal(rv, 0);
    assert_true(done);
    assert_non_null(strstr(captured, "usage: prog push GROUP PAYLOAD"));
    assert_non_null(strstr(captured, "-u, --url URL"));
    assert_non_null(strstr(captured, "[$SLUICE_URL]"));
    assert_non_null(strstr(captured, "-s, --count N"));
    assert_non_null(strstr(captured, "how many [$SLT_COUNT]"));
    assert_non_null(strstr(captured, "--queue Q"));
}

static void
test_version_prints_program_version_and_build_and_is_done(void **state)
{
    (void)state;
    struct opt_vals v;
    bool done = false;
    memset(&v, 0, sizeof(v));
    v.v[OPT_VERSION] = "1";
    capture_start(1);
    int rv = opt_common_apply(&v, "prog", tables, &done);
    capture_end(1);
    assert_int_equal(rv, 0);
    assert_true(done);
    /* The first line is "PROG VERSION", as scripts parse it; then the build, one line each. */
    assert_int_equal(strncmp(captured, "t " SLUICE_VERSION "\n", strlen("t " SLUICE_VERSION "\n")), 0);
    static const char *const lines[] = {
        "\ncompiler: ", "\ncflags: ", "\nsanitizers: ", "\nnng: 1.", "(built against 1.",
        "\nmsgpack-c: ", "\nmariadb-client: ", "MariaDB Connector/C ", "\njournal: --fsync always",
        "\nruntime directory: $SLUICE_DIR, else $XDG_RUNTIME_DIR/sluice, else /tmp/sluice-$UID",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (strstr(captured, lines[i]) == NULL) {
            fail_msg("--version lacks '%s' in:\n%s", lines[i], captured);
        }
    }
}

static void
test_log_level_is_applied_and_checked(void **state)
{
    (void)state;
    struct opt_vals v;
    bool done = true;
    memset(&v, 0, sizeof(v));
    v.v[OPT_LOG_LEVEL] = "debug";
    assert_int_equal(opt_common_apply(&v, "prog", tables, &done), 0);
    assert_false(done);
    assert_int_equal(log_level, LOG_DEBUG);

    v.v[OPT_LOG_LEVEL] = "loud";
    capture_start(2);
    int rv = opt_common_apply(&v, "prog", tables, &done);
    capture_end(2);
    assert_int_equal(rv, 2);
    assert_int_equal(log_level, LOG_DEBUG); /* unchanged */
    assert_non_null(strstr(captured, "--log-level"));
    log_level = LOG_INFO;
}

static void
test_common_apply_without_common_options_does_nothing(void **state)
{
    (void)state;
    struct opt_vals v;
    bool done = true;
    memset(&v, 0, sizeof(v));
    v.v[T_COUNT] = "3";
    capture_start(1);
    int rv = opt_common_apply(&v, "prog", tables, &done);
    capture_end(1);
    assert_int_equal(rv, 0);
    assert_false(done);
    assert_string_equal(captured, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_parse_mixes_options_and_arguments_keeping_argument_order, setup),
        cmocka_unit_test_setup(test_parse_long_option_with_separate_argument, setup),
        cmocka_unit_test_setup(test_parse_keeps_every_value_of_a_repeated_option, setup),
        cmocka_unit_test_setup(test_parse_in_order_stops_at_the_first_argument, setup),
        cmocka_unit_test_setup(test_double_dash_ends_options, setup),
        cmocka_unit_test_setup(test_lone_dash_is_an_argument, setup),
        cmocka_unit_test_setup(test_short_options_cluster, setup),
        cmocka_unit_test_setup(test_repeated_option_keeps_the_last_value, setup),
        cmocka_unit_test_setup(test_no_arguments_leaves_argi_at_argc, setup),
        cmocka_unit_test_setup(test_unknown_long_option_is_usage_error, setup),
        cmocka_unit_test_setup(test_unknown_short_option_is_usage_error, setup),
        cmocka_unit_test_setup(test_missing_argument_is_usage_error, setup),
        cmocka_unit_test_setup(test_flag_given_an_argument_is_usage_error, setup),
        cmocka_unit_test_setup(test_env_fills_an_absent_option, setup),
        cmocka_unit_test_setup(test_flag_beats_env, setup),
        cmocka_unit_test_setup(test_empty_env_counts_as_absent, setup),
        cmocka_unit_test_setup(test_parse_twice_starts_afresh, setup),
        cmocka_unit_test_setup(test_option_id_out_of_range_is_refused, setup),
        cmocka_unit_test_setup(test_u64_accepts_whole_numbers_in_range, setup),
        cmocka_unit_test_setup(test_u64_rejects_out_of_range, setup),
        cmocka_unit_test_setup(test_u64_rejects_garbage, setup),
        cmocka_unit_test_setup(test_u64_rejects_leading_whitespace_of_any_kind, setup),
        cmocka_unit_test_setup(test_size_accepts_suffixes_in_powers_of_1024, setup),
        cmocka_unit_test_setup(test_size_rejects_bad_suffixes_and_overflow, setup),
        cmocka_unit_test_setup(test_ms_accepts_units, setup),
        cmocka_unit_test_setup(test_ms_rejects_garbage_and_out_of_range, setup),
        cmocka_unit_test_setup(test_time_accepts_rfc3339_in_any_zone, setup),
        cmocka_unit_test_setup(test_time_rejects_what_is_not_a_time, setup),
        cmocka_unit_test_setup(test_help_prints_usage_from_the_tables_and_is_done, setup),
        cmocka_unit_test_setup(test_version_prints_program_version_and_build_and_is_done, setup),
        cmocka_unit_test_setup(test_log_level_is_applied_and_checked, setup),
        cmocka_unit_test_setup(test_common_apply_without_common_options_does_nothing, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
