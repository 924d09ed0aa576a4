/* worker/pool_cfg: worker-pool's command line: defaults, every option's checks (usage errors
 * are 2 and say why), the environment, and the extra worker arguments after "--". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log.h"
#include "pool.h"
#include "pool_cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct args {
    int argc;
    char *argv[40];
    char store[4096];
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
        assert_true(used + n <= sizeof(a->store) && a->argc < 39);
        memcpy(a->store + used, w, n);
        a->argv[a->argc++] = a->store + used;
        used += n;
    }
    va_end(ap);
    a->argv[a->argc] = NULL;
    return a;
}

#define END ((const char *)NULL) /* ends mkargs lists */

static char captured[8192];

/* pool_cfg_parse with stderr and stdout captured into `captured`. */
static int
parse(struct args *a, struct pool_cfg *cfg, bool *done)
{
    fflush(stderr);
    fflush(stdout);
    FILE *f = tmpfile();
    assert_non_null(f);
    int e = dup(2), o = dup(1);
    dup2(fileno(f), 2);
    dup2(fileno(f), 1);
    int rv = pool_cfg_parse(cfg, a->argc, a->argv, 4, done);
    fflush(stderr);
    fflush(stdout);
    dup2(e, 2);
    dup2(o, 1);
    close(e);
    close(o);
    rewind(f);
    size_t n = fread(captured, 1, sizeof(captured) - 1, f);
    captured[n] = '\0';
    fclose(f);
    return rv;
}

static int
setup(void **state)
{
    (void)state;
    log_prog = "worker-pool";
    log_level = LOG_INFO;
    unsetenv("SLUICE_POOL_URL");
    unsetenv("SLUICE_URL");
    unsetenv("SLUICE_DIR");
    unsetenv("SLUICE_LOG_LEVEL");
    return 0;
}

/* Expects a usage error whose message contains what. */
static void
expect_usage(struct args *a, const char *what)
{
    struct pool_cfg cfg;
    bool done;
    assert_int_equal(parse(a, &cfg, &done), 2);
    if (strstr(captured, what) == NULL) {
        fail_msg("message '%s' lacks '%s'", captured, what);
    }
}

static void
test_defaults(void **state)
{
    (void)state;
    struct args a;
    struct pool_cfg cfg;
    bool done = true;
    assert_int_equal(parse(mkargs(&a, "worker-pool", END), &cfg, &done), 0);
    assert_false(done);
    assert_int_equal(cfg.n, 4); /* the CPUs given */
    assert_false(cfg.n_given);
    assert_null(cfg.worker);
    assert_string_equal(cfg.handler, POOL_HANDLER_DEFAULT);
    assert_string_equal(cfg.handler, "sleep:100-3000");
    assert_true(cfg.handler_default);
    assert_null(cfg.prefetch);
    assert_null(cfg.queues);
    assert_null(cfg.max_jobs);
    assert_int_equal(cfg.max_jobs_n, 0);
    assert_int_equal(cfg.max_memory_bytes, 0);
    assert_int_equal(cfg.job_timeout_ms, 0);
    assert_int_equal(cfg.drain_timeout_ms, 30000);
    assert_null(cfg.control_url);
    assert_null(cfg.broker_url);
    assert_null(cfg.dir);
    assert_int_equal(cfg.nextra, 0);
}

static void
test_every_option(void **state)
{
    (void)state;
    struct args a;
    struct pool_cfg cfg;
    bool done;
    mkargs(&a, "worker-pool", "-n", "8", "--worker", "/opt/w", "--handler", "noop",
           "--prefetch", "256", "--queues", "a,b.c", "--max-jobs", "1000", "--max-memory", "256M",
           "--job-timeout", "5m", "--drain-timeout", "10s", "--control-url", "tcp://127.0.0.1:7451",
           "--url", "tcp://127.0.0.1:7450", "--dir", "/tmp/x", END);
    assert_int_equal(parse(&a, &cfg, &done), 0);
    assert_int_equal(cfg.n, 8);
    assert_true(cfg.n_given);
    assert_string_equal(cfg.worker, "/opt/w");
    assert_string_equal(cfg.handler, "noop");
    assert_false(cfg.handler_default);
    assert_string_equal(cfg.prefetch, "256");
    assert_string_equal(cfg.queues, "a,b.c");
    assert_string_equal(cfg.max_jobs, "1000");
    assert_int_equal(cfg.max_jobs_n, 1000);
    assert_int_equal(cfg.max_memory_bytes, 256ULL << 20);
    assert_int_equal(cfg.job_timeout_ms, 300000);
    assert_int_equal(cfg.drain_timeout_ms, 10000);
    assert_string_equal(cfg.control_url, "tcp://127.0.0.1:7451");
    assert_string_equal(cfg.broker_url, "tcp://127.0.0.1:7450");
    assert_string_equal(cfg.dir, "/tmp/x");
}

static void
test_n_range(void **state)
{
    (void)state;
    struct args a;
    struct pool_cfg cfg;
    bool done;
    assert_int_equal(parse(mkargs(&a, "worker-pool", "-n", "0", END), &cfg, &done), 0);
    assert_int_equal(cfg.n, 0);
    assert_int_equal(parse(mkargs(&a, "worker-pool", "--workers", "1024", END), &cfg, &done), 0);
    assert_int_equal(cfg.n, POOL_N_MAX);
    expect_usage(mkargs(&a, "worker-pool", "-n", "1025", END), "out of range");
    expect_usage(mkargs(&a, "worker-pool", "-n", "-1", END), "--workers");
    expect_usage(mkargs(&a, "worker-pool", "-n", "eight", END), "not a whole number");
}

static void
test_bad_values_are_usage_errors_naming_the_option(void **state)
{
    (void)state;
    struct args a;
    expect_usage(mkargs(&a, "worker-pool", "--prefetch", "0", END), "--prefetch");
    expect_usage(mkargs(&a, "worker-pool", "--prefetch", "10001", END), "--prefetch");
    expect_usage(mkargs(&a, "worker-pool", "--max-jobs", "0", END), "--max-jobs");
    expect_usage(mkargs(&a, "worker-pool", "--max-memory", "12Q", END), "--max-memory");
    expect_usage(mkargs(&a, "worker-pool", "--max-memory", "1k", END), "--max-memory");
    expect_usage(mkargs(&a, "worker-pool", "--job-timeout", "5 min", END), "--job-timeout");
    expect_usage(mkargs(&a, "worker-pool", "--job-timeout", "10ms", END), "--job-timeout");
    expect_usage(mkargs(&a, "worker-pool", "--drain-timeout", "2d", END), "--drain-timeout");
    expect_usage(mkargs(&a, "worker-pool", "--handler", "", END), "--handler");
    expect_usage(mkargs(&a, "worker-pool", "--worker", "", END), "--worker");
    expect_usage(mkargs(&a, "worker-pool", "--nope", END), "unknown option");
    expect_usage(mkargs(&a, "worker-pool", "-n", END), "needs an argument");
}

static void
test_queues_are_checked(void **state)
{
    (void)state;
    struct args a;
    struct pool_cfg cfg;
    bool done;
    assert_int_equal(parse(mkargs(&a, "worker-pool", "--queues", "default", END), &cfg, &done),
                     0);
    expect_usage(mkargs(&a, "worker-pool", "--queues", "a,,b", END), "--queues");
    expect_usage(mkargs(&a, "worker-pool", "--queues", "a,", END), "--queues");
    expect_usage(mkargs(&a, "worker-pool", "--queues", "a b", END), "--queues");
    expect_usage(mkargs(&a, "worker-pool", "--queues",
                        "q1,q2,q3,q4,q5,q6,q7,q8,q9,q10,q11,q12,q13,q14,q15,q16,q17", END),
                 "at most 16");
    assert_int_equal(parse(mkargs(&a, "worker-pool", "--queues",
                                  "q1,q2,q3,q4,q5,q6,q7,q8,q9,q10,q11,q12,q13,q14,q15,q16", END),
                           &cfg, &done),
                     0);
}

static void
test_extra_worker_arguments_follow_double_dash(void **state)
{
    (void)state;
    struct args a;
    struct pool_cfg cfg;
    bool done;
    assert_int_equal(parse(mkargs(&a, "worker-pool", "-n", "2", "--", "--foo", "bar", "-n", "9",
                                  END),
                           &cfg, &done),
                     0);
    assert_int_equal(cfg.n, 2);
    assert_int_equal(cfg.nextra, 4);
    assert_string_equal(cfg.extra[0], "--foo");
    assert_string_equal(cfg.extra[1], "bar");
    assert_string_equal(cfg.extra[2], "-n");
    assert_string_equal(cfg.extra[3], "9");
    assert_true(cfg.handler_default);
}

static void
test_arguments_before_double_dash_are_refused(void **state)
{
    (void)state;
    struct args a;
    expect_usage(mkargs(&a, "worker-pool", "-n", "2", "noop", END), "'noop'");
    expect_usage(mkargs(&a, "worker-pool", "stray", "--", "--foo", END), "'stray'");
}

static void
test_handler_given_to_the_worker_directly_replaces_the_default(void **state)
{
    (void)state;
    struct args a;
    struct pool_cfg cfg;
    bool done;
    assert_int_equal(parse(mkargs(&a, "worker-pool", "--", "--handler", "exec:cat", END), &cfg,
                           &done),
                     0);
    assert_null(cfg.handler);
    assert_false(cfg.handler_default);
    assert_int_equal(parse(mkargs(&a, "worker-pool", "--", "--handler=noop", END), &cfg, &done),
                     0);
    assert_null(cfg.handler);
}

static void
test_environment_gives_control_url_dir_and_broker_url(void **state)
{
    (void)state;
    struct args a;
    struct pool_cfg cfg;
    bool done;
    setenv("SLUICE_POOL_URL", "ipc:///tmp/p.ipc", 1);
    setenv("SLUICE_URL", "ipc:///tmp/b.ipc", 1);
    setenv("SLUICE_DIR", "/tmp/d", 1);
    assert_int_equal(parse(mkargs(&a, "worker-pool", END), &cfg, &done), 0);
    assert_string_equal(cfg.control_url, "ipc:///tmp/p.ipc");
    assert_string_equal(cfg.broker_url, "ipc:///tmp/b.ipc");
    assert_string_equal(cfg.dir, "/tmp/d");
    assert_int_equal(parse(mkargs(&a, "worker-pool", "--control-url", "ipc:///tmp/q.ipc", END),
                           &cfg, &done),
                     0);
    assert_string_equal(cfg.control_url, "ipc:///tmp/q.ipc");
}

static void
test_help_prints_every_option_and_is_done(void **state)
{
    (void)state;
    struct args a;
    struct pool_cfg cfg;
    bool done = false;
    assert_int_equal(parse(mkargs(&a, "worker-pool", "--help", END), &cfg, &done), 0);
    assert_true(done);
    const char *const opts[] = { "--workers", "--worker", "--handler", "--prefetch", "--queues",
                                 "--max-jobs", "--max-memory", "--job-timeout", "--drain-timeout",
                                 "--control-url", "--url", "--dir", "SLUICE_POOL_URL" };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        if (strstr(captured, opts[i]) == NULL) {
            fail_msg("--help lacks %s", opts[i]);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_every_option, setup),
        cmocka_unit_test_setup(test_n_range, setup),
        cmocka_unit_test_setup(test_bad_values_are_usage_errors_naming_the_option, setup),
        cmocka_unit_test_setup(test_queues_are_checked, setup),
        cmocka_unit_test_setup(test_extra_worker_arguments_follow_double_dash, setup),
        cmocka_unit_test_setup(test_arguments_before_double_dash_are_refused, setup),
        cmocka_unit_test_setup(test_handler_given_to_the_worker_directly_replaces_the_default,
                               setup),
        cmocka_unit_test_setup(test_environment_gives_control_url_dir_and_broker_url, setup),
        cmocka_unit_test_setup(test_help_prints_every_option_and_is_done, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
