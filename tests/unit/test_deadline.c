/* common/deadline: a process that does not exit by the deadline is ended with the code given,
 * the listed files removed; arming again moves the deadline, earlier or later. Each case runs
 * in a child process (the deadline ends the process it is armed in). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clock.h"
#include "deadline.h"
#include "log.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Waits up to ms for child; returns its wait status, or -1 (and kills it) if it is still
 * running then. */
static int
reap_within(pid_t child, unsigned ms)
{
    uint64_t end = clock_mono_ms() + ms;
    int st;
    for (;;) {
        pid_t r = waitpid(child, &st, WNOHANG);
        if (r == child) {
            return st;
        }
        if (clock_mono_ms() >= end) {
            kill(child, SIGKILL);
            waitpid(child, &st, 0);
            return -1;
        }
        struct timespec ts = { 0, 5 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* A child that arms first_ms, then second_ms (0: not again) with code 7, then hangs. */
static pid_t
hang_with(unsigned first_ms, unsigned second_ms, const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        const char *paths[] = { path, NULL };
        log_level = LOG_ERROR; /* no stop.forced line in the test's output */
        if (exit_deadline(first_ms, 3, paths) != 0) {
            _exit(90);
        }
        if (second_ms != 0 && exit_deadline(second_ms, 7, paths) != 0) {
            _exit(91);
        }
        for (;;) {
            pause();
        }
    }
    return pid;
}

static void
test_ends_a_hung_process_with_the_code(void **state)
{
    (void)state;
    char path[] = "/tmp/sl-deadline.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pid_t pid = hang_with(100, 0, path);
    assert_true(pid > 0);
    int st = reap_within(pid, 5000);
    assert_true(st != -1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3);
    assert_int_equal(access(path, F_OK), -1); /* removed */
}

/* A daemon's forced stop has a status of its own: no clean stop, usage error or failed start
 * (0, 1, 2, 3) can be mistaken for it. */
static void
test_a_forced_daemon_exits_70(void **state)
{
    (void)state;
    assert_int_equal(DEADLINE_EXIT_FORCED, 70);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        log_level = LOG_ERROR;
        if (exit_deadline(50, DEADLINE_EXIT_FORCED, NULL) != 0) {
            _exit(90);
        }
        for (;;) {
            pause();
        }
    }
    int st = reap_within(pid, 5000);
    assert_true(st != -1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), DEADLINE_EXIT_FORCED);
}

static void
test_arming_again_brings_it_forward(void **state)
{
    (void)state;
    uint64_t t0 = clock_mono_ms();
    pid_t pid = hang_with(60000, 100, NULL);
    assert_true(pid > 0);
    int st = reap_within(pid, 10000); /* far less than the first 60 s */
    assert_true(st != -1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 7); /* the second arming's code */
    assert_true(clock_mono_ms() - t0 < 10000);
}

static void
test_arming_again_puts_it_off(void **state)
{
    (void)state;
    pid_t pid = hang_with(100, 60000, NULL);
    assert_true(pid > 0);
    /* The first deadline (100 ms) is gone: the child is still there well after it. */
    int st = reap_within(pid, 1500);
    assert_int_equal(st, -1); /* still running (now killed) */
}

/* A program that restarts itself (the broker as a standby) has the deadline execute it
 * anew: the child here is this test program again, which exits 42 when started so. The
 * forced restart is logged with the step the program was in. */
static void
test_a_restart_executes_anew_with_the_step_logged(void **state)
{
    (void)state;
    char path[] = "/tmp/sl-deadline-log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static char *const argv[] = { "test_deadline", "--exec-probe", NULL };
        dup2(fd, STDERR_FILENO);
        log_level = LOG_WARN;
        exit_deadline_step("closing the probe");
        exit_deadline_exec(argv);
        if (exit_deadline(50, DEADLINE_EXIT_FORCED, NULL) != 0) {
            _exit(90);
        }
        for (;;) {
            pause();
        }
    }
    int st = reap_within(pid, 5000);
    assert_true(st != -1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 42);
    char buf[1024] = { 0 };
    assert_true(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
    close(fd);
    unlink(path);
    assert_non_null(strstr(buf, "event=restart.forced"));
    assert_non_null(strstr(buf, "at=\"closing the probe\""));
}

int
main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--exec-probe") == 0) {
        return 42;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ends_a_hung_process_with_the_code),
        cmocka_unit_test(test_a_forced_daemon_exits_70),
        cmocka_unit_test(test_arming_again_brings_it_forward),
        cmocka_unit_test(test_arming_again_puts_it_off),
        cmocka_unit_test(test_a_restart_executes_anew_with_the_step_logged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
