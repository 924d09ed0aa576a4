/* worker/pool_spawn: the worker's command line and environment, finding the worker program,
 * and real fork + exec: the child gets its status page as descriptor 3 and the environment
 * built for it; a program that cannot be executed is a spawn failure, not a child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "log.h"
#include "pool_spawn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct pool_cfg
base_cfg(void)
{
    struct pool_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.n = 1;
    cfg.handler = "noop";
    cfg.drain_timeout_ms = 30000;
    return cfg;
}

/* argv joined with spaces, from index 1. */
static void
joined(const struct pool_spawn *sp, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 1; sp->argv[i] != NULL; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i > 1 ? " " : "", sp->argv[i]);
        assert_true(n < cap);
    }
}

static void
test_argv_carries_the_pool_options_then_the_extra_arguments(void **state)
{
    (void)state;
    struct pool_spawn sp;
    struct pool_cfg cfg = base_cfg();
    char *extra[] = { "--foo", "bar" };
    char *env[] = { "A=1", NULL };
    char line[512];

    cfg.broker_url = "tcp://127.0.0.1:7450";
    cfg.queues = "a,b";
    cfg.prefetch = "64";
    cfg.max_jobs = "1000";
    cfg.drain_timeout_ms = 5000;
    cfg.extra = extra;
    cfg.nextra = 2;
    assert_int_equal(pool_spawn_init(&sp, &cfg, "/x/worker", "/run/d", env), 0);
    assert_string_equal(sp.argv[0], "/x/worker");
    sp.argv[sp.name_at] = "h:1:0";
    joined(&sp, line, sizeof(line));
    assert_string_equal(line, "--name h:1:0 --url tcp://127.0.0.1:7450 --handler noop --queues a,b "
                              "--prefetch 64 --max-jobs 1000 --drain-timeout 5000ms --foo bar");
    assert_int_equal(sp.argc, 17);
    pool_spawn_fini(&sp);

    cfg = base_cfg();
    cfg.handler = NULL; /* the extra arguments name it */
    assert_int_equal(pool_spawn_init(&sp, &cfg, "w", "/d", env), 0);
    sp.argv[sp.name_at] = "n";
    joined(&sp, line, sizeof(line));
    assert_string_equal(line, "--name n --drain-timeout 30000ms");
    pool_spawn_fini(&sp);
}

static void
test_environment_replaces_status_fd_and_dir(void **state)
{
    (void)state;
    struct pool_spawn sp;
    struct pool_cfg cfg = base_cfg();
    char *env[] = { "A=1", "SLUICE_STATUS_FD=9", "SLUICE_DIR=/old", "B=2", NULL };

    assert_int_equal(pool_spawn_init(&sp, &cfg, "w", "/new", env), 0);
    const char *want[] = { "A=1", "B=2", "SLUICE_STATUS_FD=3", "SLUICE_DIR=/new" };
    for (size_t i = 0; i < 4; i++) {
        assert_non_null(sp.envp[i]);
        assert_string_equal(sp.envp[i], want[i]);
    }
    assert_null(sp.envp[4]);
    pool_spawn_fini(&sp);
    assert_int_equal(pool_spawn_init(&sp, &cfg, "w", "/new", NULL), 0);
    assert_string_equal(sp.envp[0], "SLUICE_STATUS_FD=3");
    pool_spawn_fini(&sp);
}

/* A temporary directory with an executable file "worker" when exec is true. */
static void
make_dir(char *dir, bool with_worker, bool exec)
{
    assert_non_null(mkdtemp(dir));
    if (with_worker) {
        char path[256];
        snprintf(path, sizeof(path), "%s/worker", dir);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs("#!/bin/sh\n", f);
        fclose(f);
        chmod(path, exec ? 0700 : 0600);
    }
}

static void
remove_dir(const char *dir)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/worker", dir);
    unlink(path);
    rmdir(dir);
}

static void
test_find_worker_next_to_the_pool_then_on_path(void **state)
{
    (void)state;
    char self[] = "/tmp/slpw.XXXXXX", p1[] = "/tmp/slpw.XXXXXX", p2[] = "/tmp/slpw.XXXXXX";
    char exe[128], path[512], out[256];

    make_dir(self, true, true);
    make_dir(p1, true, false); /* not executable: skipped */
    make_dir(p2, true, true);
    snprintf(exe, sizeof(exe), "%s/worker-pool", self);
    snprintf(path, sizeof(path), "/nonexistent:%s:%s", p1, p2);

    assert_int_equal(pool_spawn_find_worker(out, sizeof(out), exe, path), 0);
    snprintf(exe, sizeof(exe), "%s/worker", self);
    assert_string_equal(out, exe);
    assert_int_equal(pool_spawn_find_worker(out, sizeof(out), "/nonexistent/worker-pool", path),
                     0);
    snprintf(exe, sizeof(exe), "%s/worker", p2);
    assert_string_equal(out, exe);
    assert_int_equal(pool_spawn_find_worker(out, sizeof(out), NULL, path), 0);
    assert_string_equal(out, exe);
    assert_int_equal(pool_spawn_find_worker(out, sizeof(out), NULL, "/nonexistent"),
                     SL_ENOTFOUND);
    assert_int_equal(pool_spawn_find_worker(out, sizeof(out), NULL, NULL), SL_ENOTFOUND);
    remove_dir(self);
    remove_dir(p1);
    remove_dir(p2);
}

static int
wait_exit(int pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* The child sees its status page on descriptor 3, its environment and its arguments. */
static void
test_spawn_execs_with_the_status_page_on_fd_3(void **state)
{
    (void)state;
    char dir[] = "/tmp/slpw.XXXXXX", script[256], outpath[256], line[512];
    struct pool_spawn sp;
    struct pool_ops ops;
    struct pool_cfg cfg = base_cfg();
    struct pool_slot s;
    char *env[] = { "PATH=/usr/bin:/bin", NULL };

    assert_non_null(mkdtemp(dir));
    snprintf(script, sizeof(script), "%s/w.sh", dir);
    snprintf(outpath, sizeof(outpath), "%s/out", dir);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n"
               "echo \"$SLUICE_STATUS_FD $SLUICE_DIR $(readlink /proc/$$/fd/3) $*\" > %s\n",
            outpath);
    fclose(f);
    chmod(script, 0700);

    assert_int_equal(pool_spawn_init(&sp, &cfg, script, dir, env), 0);
    pool_spawn_ops(&sp, &ops);
    memset(&s, 0, sizeof(s));
    assert_int_equal(ops.spawn(ops.arg, &s, "h:9:0"), 0);
    assert_true(s.pid > 0);
    assert_non_null(s.page);
    assert_int_equal(s.page->magic, WORKER_STATUS_MAGIC);
    assert_int_equal(wait_exit(s.pid), 0);
    f = fopen(outpath, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    char want[512];
    snprintf(want, sizeof(want),
             "3 %s /memfd:sluice-worker-status (deleted) --name h:9:0 --handler noop "
             "--drain-timeout 30000ms\n", dir);
    assert_string_equal(line, want);
    ops.release(ops.arg, &s);
    assert_null(s.page);
    unlink(outpath);
    unlink(script);
    rmdir(dir);
    pool_spawn_fini(&sp);
}

static void
test_spawn_of_a_missing_program_fails_without_a_child(void **state)
{
    (void)state;
    struct pool_spawn sp;
    struct pool_ops ops;
    struct pool_cfg cfg = base_cfg();
    struct pool_slot s;

    assert_int_equal(pool_spawn_init(&sp, &cfg, "/nonexistent/worker", "/tmp", NULL), 0);
    pool_spawn_ops(&sp, &ops);
    memset(&s, 0, sizeof(s));
    assert_int_equal(ops.spawn(ops.arg, &s, "h:9:0"), SL_EIO);
    assert_int_equal(s.pid, 0);
    assert_null(s.page);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* reaped already: no child left */
    pool_spawn_fini(&sp);
}

static void
test_rss_reads_statm(void **state)
{
    (void)state;
    struct pool_spawn sp;
    struct pool_ops ops;
    struct pool_cfg cfg = base_cfg();

    assert_int_equal(pool_spawn_init(&sp, &cfg, "w", "/tmp", NULL), 0);
    pool_spawn_ops(&sp, &ops);
    uint64_t rss = ops.rss(ops.arg, (int)getpid());
    assert_true(rss > 100 * 1024 && rss < (UINT64_C(1) << 40));
    assert_int_equal(ops.rss(ops.arg, 999999999), 0);
    pool_spawn_fini(&sp);
}

int
main(void)
{
    log_level = LOG_OFF;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_carries_the_pool_options_then_the_extra_arguments),
        cmocka_unit_test(test_environment_replaces_status_fd_and_dir),
        cmocka_unit_test(test_find_worker_next_to_the_pool_then_on_path),
        cmocka_unit_test(test_spawn_execs_with_the_status_page_on_fd_3),
        cmocka_unit_test(test_spawn_of_a_missing_program_fails_without_a_child),
        cmocka_unit_test(test_rss_reads_statm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
