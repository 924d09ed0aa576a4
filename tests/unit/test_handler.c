/* worker/handler*: spec parsing for every variant, and running real jobs: noop, sleep (and
 * its drain deadline), exec (payload on stdin, environment, exit status, signals, the kill at
 * the deadline) and pipe (replies, failures, a child that dies or talks garbage is restarted).
 *
 * The pipe handler's child is this test binary itself, run as `test_handler --pipe-child`: it
 * answers each job frame according to the job's payload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "handler.h"
#include "log.h"
#include "mpr.h"
#include "status.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static struct wsig sig;
static char self[4096];

static struct handler_env
env_of(void)
{
    return (struct handler_env){ &sig, environ };
}

static int
sig_setup(void **state)
{
    (void)state;
    /* Installed, so SIGCHLD wakes the handlers at once as in the worker. */
    return wsig_init(&sig, 100, true);
}

static int
sig_teardown(void **state)
{
    (void)state;
    wsig_fini(&sig);
    wsig_stop_flag = 0;
    return 0;
}

static struct wapi_job
job_of(uint64_t id, const char *payload)
{
    struct wapi_job j;
    memset(&j, 0, sizeof(j));
    j.id = id;
    j.group = SL_STR_LIT("bob");
    j.queue = SL_STR_LIT("default");
    j.payload = payload;
    j.len = (uint32_t)strlen(payload);
    j.attempts = 2;
    j.max_attempts = 3;
    return j;
}

static int
make(const char *spec, struct handler **h, char *err, size_t cap)
{
    struct handler_env env = env_of();
    err[0] = '\0';
    return handler_new(h, spec, &env, err, cap);
}

static struct handler_result
run(struct handler *h, uint64_t id, const char *payload)
{
    struct handler_result res;
    struct wapi_job j = job_of(id, payload);
    handler_run(h, &j, &res);
    return res;
}

/* --- parsing ------------------------------------------------------------------------------- */

static void
test_specs_parse(void **state)
{
    (void)state;
    static const char *const good[] = { "noop", "sleep:0", "sleep:5", "sleep:5-5",
                                        "sleep:10-20", "sleep:0-86400000", "exec:true",
                                        "exec:echo a:b", "pipe:cat" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct handler *h = NULL;
        char err[256];
        assert_int_equal(make(good[i], &h, err, sizeof(err)), 0);
        assert_non_null(h);
        handler_free(h);
    }
}

static void
test_bad_specs_are_usage_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "nop", "noop:x", "noop:", "sleep", "sleep:", "sleep:10-5", "sleep:a", "sleep:-5",
        "sleep:5-", "sleep:1-2x", "sleep:1--2", "sleep: 5", "sleep:86400001",
        "sleep:99999999999999999999999", "exec", "exec:", "pipe", "pipe:", "EXEC:true",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct handler *h = NULL;
        char err[256];
        assert_int_equal(make(bad[i], &h, err, sizeof(err)), SL_EBADREQ);
        assert_null(h);
        assert_true(err[0] != '\0'); /* a reason for the usage message */
    }
    struct handler *h = NULL;
    char err[256];
    assert_int_equal(make("sleep:10-5", &h, err, sizeof(err)), SL_EBADREQ);
    assert_non_null(strstr(err, "MIN 10 is above MAX 5"));
    handler_free(NULL);
}

/* --- noop and sleep ------------------------------------------------------------------------ */

static void
test_noop_acks(void **state)
{
    (void)state;
    struct handler *h;
    char err[64];
    assert_int_equal(make("noop", &h, err, sizeof(err)), 0);
    assert_int_equal(run(h, 1, "x").verdict, HANDLER_ACK);
    handler_free(h);
}

static void
test_sleep_sleeps_within_its_range_and_acks(void **state)
{
    (void)state;
    struct handler *h;
    char err[64];
    assert_int_equal(make("sleep:30-40", &h, err, sizeof(err)), 0);
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = status_now_ms();
        assert_int_equal(run(h, 1, "x").verdict, HANDLER_ACK);
        uint64_t took = status_now_ms() - t0;
        assert_true(took >= 30);
        assert_true(took < 200);
    }
    handler_free(h);
}

static void
test_sleep_past_the_drain_deadline_is_released(void **state)
{
    (void)state;
    struct handler *h;
    char err[64];
    assert_int_equal(make("sleep:5000", &h, err, sizeof(err)), 0);
    wsig_stop(&sig); /* drain deadline: 100 ms from now */
    uint64_t t0 = status_now_ms();
    assert_int_equal(run(h, 1, "x").verdict, HANDLER_RELEASE);
    uint64_t took = status_now_ms() - t0;
    assert_true(took >= 90 && took < 1000);
    handler_free(h);
}

static void
test_sleep_that_ends_before_the_deadline_acks(void **state)
{
    (void)state;
    struct handler *h;
    char err[64];
    assert_int_equal(make("sleep:20", &h, err, sizeof(err)), 0);
    wsig_stop(&sig); /* a stop lets the running job finish */
    assert_int_equal(run(h, 1, "x").verdict, HANDLER_ACK);
    handler_free(h);
}

/* --- exec ---------------------------------------------------------------------------------- */

static enum handler_verdict
exec_verdict(const char *cmd, const char *payload)
{
    struct handler *h;
    char spec[1024], err[256];
    snprintf(spec, sizeof(spec), "exec:%s", cmd);
    assert_int_equal(make(spec, &h, err, sizeof(err)), 0);
    enum handler_verdict v = run(h, 42, payload).verdict;
    handler_free(h);
    return v;
}

static void
test_exec_exit_status_decides(void **state)
{
    (void)state;
    assert_int_equal(exec_verdict("exit 0", ""), HANDLER_ACK);
    assert_int_equal(exec_verdict("exit 3", ""), HANDLER_NACK);
    assert_int_equal(exec_verdict("kill -9 $$", ""), HANDLER_NACK);
    assert_int_equal(exec_verdict("/nonexistent/program", ""), HANDLER_NACK);
}

static void
test_exec_gets_the_payload_on_stdin_and_the_job_in_its_environment(void **state)
{
    (void)state;
    assert_int_equal(exec_verdict("test \"$(cat)\" = 'hello; $(rm -rf /)'",
                                  "hello; $(rm -rf /)"), HANDLER_ACK);
    assert_int_equal(exec_verdict("test \"$SLUICE_JOB_ID\" = 42 && test \"$SLUICE_GROUP\" = bob && "
                                  "test \"$SLUICE_QUEUE\" = default && "
                                  "test \"$SLUICE_ATTEMPT\" = 2 && test -z \"$SLUICE_STATUS_FD\"",
                                  ""), HANDLER_ACK);
    /* A command that does not read its stdin still ends normally. */
    assert_int_equal(exec_verdict("exit 0", "unread"), HANDLER_ACK);
}

static void
test_exec_takes_a_large_payload_while_it_writes_output(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    int saved = log_level;
    log_level = LOG_OFF;
    /* It prints 200 KiB before reading: a worker that wrote first and read later would
     * deadlock on the full pipes. */
    assert_int_equal(exec_verdict("head -c 200000 /dev/zero | tr '\\0' x; "
                                  "test \"$(wc -c)\" -eq 1048576", big), HANDLER_ACK);
    log_level = saved;
    free(big);
}

/* Is pid running? A zombie is dead (an init that is slow to reap must not fail the test). */
static bool
alive(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    bool running = fgets(line, sizeof(line), f) != NULL && strrchr(line, ')') != NULL &&
                   strrchr(line, ')')[2] != 'Z';
    fclose(f);
    return running;
}

static void
test_exec_past_the_drain_deadline_is_killed_and_released(void **state)
{
    (void)state;
    char dir[] = "/tmp/sl-test-exec.XXXXXX", cmd[700], path[600];
    struct handler *h;
    char err[64];
    long pid = 0;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pid", dir);
    /* The command starts a grandchild: the kill must reach it too (its process group). */
    snprintf(cmd, sizeof(cmd), "exec:sleep 30 & echo $! > %s; wait", path);
    assert_int_equal(make(cmd, &h, err, sizeof(err)), 0);
    wsig_stop(&sig);
    uint64_t t0 = status_now_ms();
    assert_int_equal(run(h, 7, "").verdict, HANDLER_RELEASE);
    assert_true(status_now_ms() - t0 < 2000);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    for (int i = 0; i < 100 && alive((pid_t)pid); i++) {
        usleep(10000); /* SIGKILL is delivered at once; dying takes a moment */
    }
    assert_false(alive((pid_t)pid));
    handler_free(h);
    unlink(path);
    rmdir(dir);
}

/* --- pipe ---------------------------------------------------------------------------------- */

/* The pipe child: answers each job by its payload. "ok": ok; "fail": ok false, msg, delay 250;
 * "exit": exits 3 without answering; "garbage": a frame that is no msgpack; "wrongid": an
 * answer for another job; "huge": a header announcing 1 MiB; "hang": never answers; "early":
 * answers before reading the job. A job whose payload starts with "big" is answered ok. */
static int
pipe_child(void)
{
    uint8_t hdr[4];
    static uint8_t body[2 << 20];

    for (;;) {
        if (fread(hdr, 1, 4, stdin) != 4) {
            return 0; /* EOF: the worker is done with us */
        }
        uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 |
                     hdr[3];
        if (n > sizeof(body) || fread(body, 1, n, stdin) != n) {
            return 1;
        }
        struct mpr c;
        uint32_t pairs;
        uint64_t id = 0;
        struct sl_str k, payload = { "", 0 };
        mpr_init(&c, body, n);
        if (!mpr_map(&c, &pairs)) {
            return 1;
        }
        for (uint32_t i = 0; i < pairs; i++) {
            if (!mpr_str(&c, &k)) {
                return 1;
            }
            if (sl_str_eq(k, "id")) {
                mpr_u64(&c, &id);
            } else if (sl_str_eq(k, "payload")) {
                mpr_blob(&c, &payload);
            } else {
                mpr_skip(&c);
            }
        }
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        bool fail = sl_str_eq(payload, "fail");
        if (sl_str_eq(payload, "exit")) {
            return 3;
        } else if (sl_str_eq(payload, "hang")) {
            pause();
        } else if (sl_str_eq(payload, "garbage")) {
            msgpack_sbuffer_write(&sb, "\xc1\xc1", 2);
        } else if (sl_str_eq(payload, "huge")) {
            fwrite("\x00\x10\x00\x00", 1, 4, stdout);
            fflush(stdout);
            pause();
        } else {
            msgpack_pack_map(&pk, fail ? 4 : 2);
            msgpack_pack_str(&pk, 2);
            msgpack_pack_str_body(&pk, "id", 2);
            msgpack_pack_uint64(&pk, sl_str_eq(payload, "wrongid") ? id + 1 : id);
            msgpack_pack_str(&pk, 2);
            msgpack_pack_str_body(&pk, "ok", 2);
            if (fail) {
                msgpack_pack_false(&pk);
                msgpack_pack_str(&pk, 3);
                msgpack_pack_str_body(&pk, "msg", 3);
                msgpack_pack_str(&pk, 4);
                msgpack_pack_str_body(&pk, "nope", 4);
                msgpack_pack_str(&pk, 8);
                msgpack_pack_str_body(&pk, "delay_ms", 8);
                msgpack_pack_uint64(&pk, 250);
            } else {
                msgpack_pack_true(&pk);
            }
        }
        uint8_t h[4] = { (uint8_t)(sb.size >> 24), (uint8_t)(sb.size >> 16),
                         (uint8_t)(sb.size >> 8), (uint8_t)sb.size };
        fwrite(h, 1, 4, stdout);
        fwrite(sb.data, 1, sb.size, stdout);
        fflush(stdout);
        msgpack_sbuffer_destroy(&sb);
    }
}

static struct handler *
pipe_handler(void)
{
    struct handler *h = NULL;
    char spec[4200], err[256];
    snprintf(spec, sizeof(spec), "pipe:exec '%s' --pipe-child", self);
    assert_int_equal(make(spec, &h, err, sizeof(err)), 0);
    return h;
}

static void
test_pipe_replies_ack_and_nack(void **state)
{
    (void)state;
    struct handler *h = pipe_handler();
    for (uint64_t id = 1; id <= 100; id++) {
        assert_int_equal(run(h, id, "ok").verdict, HANDLER_ACK);
    }
    struct handler_result r = run(h, 101, "fail");
    assert_int_equal(r.verdict, HANDLER_NACK);
    assert_int_equal(r.delay_ms, 250);
    assert_int_equal(run(h, 102, "ok").verdict, HANDLER_ACK); /* the same child goes on */
    handler_free(h);
}

static void
test_pipe_child_that_dies_or_talks_garbage_is_restarted(void **state)
{
    (void)state;
    struct handler *h = pipe_handler();
    static const char *const bad[] = { "exit", "garbage", "wrongid", "huge" };
    int saved = log_level;
    log_level = LOG_OFF;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct handler_result r = run(h, 10 + i, bad[i]);
        assert_int_equal(r.verdict, HANDLER_NACK);
        assert_int_equal(r.delay_ms, 0);
        assert_int_equal(run(h, 20 + i, "ok").verdict, HANDLER_ACK); /* a new child */
    }
    log_level = saved;
    handler_free(h);
}

static void
test_pipe_takes_a_large_payload(void **state)
{
    (void)state;
    struct handler *h = pipe_handler();
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'b', n);
    big[n] = '\0';
    assert_int_equal(run(h, 1, big).verdict, HANDLER_ACK);
    free(big);
    handler_free(h);
}

static void
test_pipe_past_the_drain_deadline_is_killed_and_released(void **state)
{
    (void)state;
    struct handler *h = pipe_handler();
    int saved = log_level;
    log_level = LOG_OFF;
    wsig_stop(&sig);
    uint64_t t0 = status_now_ms();
    assert_int_equal(run(h, 1, "hang").verdict, HANDLER_RELEASE);
    assert_true(status_now_ms() - t0 < 2000);
    log_level = saved;
    handler_free(h);
}

static void
test_pipe_command_that_fails_at_once_nacks_and_backs_off(void **state)
{
    (void)state;
    struct handler *h = NULL;
    char err[64];
    int saved = log_level;
    log_level = LOG_OFF;
    assert_int_equal(make("pipe:exit 1", &h, err, sizeof(err)), 0);
    uint64_t t0 = status_now_ms();
    for (int i = 0; i < 4; i++) {
        assert_int_equal(run(h, 1 + (uint64_t)i, "ok").verdict, HANDLER_NACK);
    }
    /* 100 + 200 + 400 ms of backoff between the restarts, at least */
    assert_true(status_now_ms() - t0 >= 600);
    log_level = saved;
    handler_free(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, sig_setup, sig_teardown)

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--pipe-child") == 0) {
        return pipe_child();
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        return 1;
    }
    self[n] = '\0';
    const struct CMUnitTest tests[] = {
        T(test_specs_parse),
        T(test_bad_specs_are_usage_errors),
        T(test_noop_acks),
        T(test_sleep_sleeps_within_its_range_and_acks),
        T(test_sleep_past_the_drain_deadline_is_released),
        T(test_sleep_that_ends_before_the_deadline_acks),
        T(test_exec_exit_status_decides),
        T(test_exec_gets_the_payload_on_stdin_and_the_job_in_its_environment),
        T(test_exec_takes_a_large_payload_while_it_writes_output),
        T(test_exec_past_the_drain_deadline_is_killed_and_released),
        T(test_pipe_replies_ack_and_nack),
        T(test_pipe_child_that_dies_or_talks_garbage_is_restarted),
        T(test_pipe_takes_a_large_payload),
        T(test_pipe_past_the_drain_deadline_is_killed_and_released),
        T(test_pipe_command_that_fails_at_once_nacks_and_backs_off),
    };
    log_level = LOG_WARN;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
