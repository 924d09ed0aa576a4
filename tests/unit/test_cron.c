/* broker/cron: recurring jobs on a journaled broker with a fake clock. An instant fired is one
 * R_CRON_FIRE record that replays as both the job and the instant (and a torn one as
 * neither); a refused push consumes its instant; entries, pauses and removals replay, from a
 * later segment's snapshot too; the missed rules after a restart; the ops' errors change
 * nothing. The timer thread is not running: a test fires by calling cron_tick as it does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "cron.h"
#include "log.h"
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEC (1000 * MS)
/* A whole minute, so that `@every` instants fall on known times. */
#define T0 (1700000040000LL * MS)

struct fix {
    char dir[256];
    struct broker_cfg cfg;
    struct journal_cfg jc;
    struct broker *b;
};

static void start(struct fix *f);

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (f == NULL || tmpdir_make(f->dir, sizeof(f->dir), "cron") != 0) {
        free(f);
        return -1;
    }
    broker_cfg_default(&f->cfg);
    log_level = LOG_OFF;
    f->jc = (struct journal_cfg){ .dir = f->dir, .fsync = JOURNAL_ALWAYS,
                                  .segment_bytes = 64u << 20 };
    fake_now = T0;
    start(f);
    *state = f;
    return 0;
}

static void tick(struct broker *b);

/* A broker on f's journal at fake_now, with the first round of its timer thread made, as
 * when it starts: what is due then was missed while it was down. */
static void
start(struct fix *f)
{
    f->b = journal_broker(&f->cfg, &f->jc, fake_now);
    tick(f->b);
}

static void
stop(struct fix *f)
{
    journal_close(f->b);
    broker_free(f->b);
    f->b = NULL;
}

static int
teardown(void **state)
{
    struct fix *f = *state;
    if (f->b != NULL) {
        stop(f);
    }
    int rv = tmpdir_remove(f->dir);
    free(f);
    return rv;
}

static void
restart(struct fix *f)
{
    stop(f);
    start(f);
}

/* cron.add through the dispatcher; returns its code. */
static int
add(struct broker *b, const char *name, const char *sched, const char *group, const char *missed)
{
    struct wire_msg req, rep;
    nng_msg *keep;
    struct sl_str pl = S("job");
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "cron.add");
    wire_set_cstr(&req, WK_NAME, name);
    wire_set_cstr(&req, WK_SCHEDULE, sched);
    wire_set_cstr(&req, WK_GROUP, group);
    wire_set_strs(&req, WK_PAYLOADS, &pl, 1);
    if (missed != NULL) {
        wire_set_cstr(&req, WK_MISSED, missed);
    }
    int rv = request(b, &req, &rep, &keep);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return rv;
}

/* An op naming one entry (cron.remove, cron.pause, cron.resume). */
static int
named(struct broker *b, const char *op, const char *name)
{
    struct wire_msg req, rep;
    nng_msg *keep;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, op);
    wire_set_cstr(&req, WK_NAME, name);
    int rv = request(b, &req, &rep, &keep);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return rv;
}

/* What the timer thread does at fake_now, then waits until it is on disk. */
static void
tick(struct broker *b)
{
    pthread_mutex_lock(&b->lock);
    cron_tick(b, fake_now / MS);
    journal_op_end(b);
    uint64_t lsn = journal_confirm_lsn(b->jr);
    pthread_mutex_unlock(&b->lock);
    journal_wait(b->jr, lsn);
}

static const struct cron_entry *
entry(const struct broker *b, const char *name)
{
    return cron_find(b, S(name));
}

static uint64_t
jobs_of(const struct broker *b, const char *name)
{
    const struct group *g = broker_group_find(b, S(name));
    return g != NULL ? group_count(g) : 0;
}

/* The path of the newest segment. */
static void
newest_segment(const struct fix *f, char *path, size_t cap)
{
    uint64_t *seqs = NULL;
    size_t n = 0;
    assert_int_equal(jf_list(f->dir, &seqs, &n), 0);
    assert_true(n > 0);
    assert_int_equal(jf_path(path, cap, f->dir, seqs[n - 1]), 0);
    free(seqs);
}

static void
test_fire_replays_as_the_job_and_the_instant(void **state)
{
    struct fix *f = *state;
    assert_int_equal(add(f->b, "tick", "@every 1s", "g", NULL), 0);
    for (int i = 1; i <= 3; i++) {
        fake_now = T0 + i * SEC + 3 * MS;
        tick(f->b);
    }
    assert_int_equal(f->b->jobs, 3);
    assert_int_equal(entry(f->b, "tick")->fired, 3);
    assert_int_equal(entry(f->b, "tick")->last_ms, (T0 + 3 * SEC) / MS);
    assert_int_equal(f->b->cron.fired, 3);

    restart(f);
    const struct cron_entry *e = entry(f->b, "tick");
    assert_non_null(e);
    assert_int_equal(e->fired, 3);
    assert_int_equal(e->last_ms, (T0 + 3 * SEC) / MS);
    assert_int_equal(f->b->jobs, 3);
    assert_int_equal(jobs_of(f->b, "g"), 3);
    assert_int_equal(f->b->next_id, 4);
    /* The same instant again fires nothing: it was consumed. */
    tick(f->b);
    assert_int_equal(f->b->jobs, 3);
    assert_int_equal(entry(f->b, "tick")->fired, 3);
}

static void
test_torn_fire_record_loses_the_job_and_the_instant(void **state)
{
    struct fix *f = *state;
    char path[512];
    assert_int_equal(add(f->b, "tick", "@every 1s", "g", NULL), 0);
    fake_now = T0 + 1 * SEC;
    tick(f->b);
    fake_now = T0 + 2 * SEC;
    tick(f->b);
    newest_segment(f, path, sizeof(path));
    stop(f);
    off_t size = 0;
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseeko(fp, 0, SEEK_END);
    size = ftello(fp);
    fclose(fp);
    assert_int_equal(truncate(path, size - 3), 0); /* the last record: the second fire */

    f->b = journal_broker(&f->cfg, &f->jc, fake_now);
    const struct cron_entry *e = entry(f->b, "tick");
    assert_int_equal(f->b->jobs, 1);
    assert_int_equal(e->fired, 1);
    assert_int_equal(e->last_ms, (T0 + 1 * SEC) / MS);
    /* Neither half was kept: the instant is missed, and `once` fires it, once. */
    tick(f->b);
    assert_int_equal(f->b->jobs, 2);
    assert_int_equal(e->fired, 2);
    assert_int_equal(e->last_ms, (T0 + 2 * SEC) / MS);
}

static void
test_refused_push_consumes_its_instant(void **state)
{
    struct fix *f = *state;
    stop(f);
    f->cfg.max_jobs = 1;
    start(f);
    assert_int_equal(add(f->b, "tick", "@every 1s", "g", NULL), 0);
    fake_now = T0 + 1 * SEC;
    tick(f->b);
    fake_now = T0 + 2 * SEC;
    tick(f->b); /* over max_jobs */
    const struct cron_entry *e = entry(f->b, "tick");
    assert_int_equal(f->b->jobs, 1);
    assert_int_equal(e->fired, 2);
    assert_int_equal(e->refused, 1);
    assert_int_equal(f->b->cron.refused, 1);
    restart(f);
    e = entry(f->b, "tick");
    assert_int_equal(f->b->jobs, 1);
    assert_int_equal(e->fired, 2);
    assert_int_equal(e->refused, 1);
    assert_int_equal(e->last_ms, (T0 + 2 * SEC) / MS);
}

static void
test_missed_instants_give_one_job_or_none(void **state)
{
    struct fix *f = *state;
    assert_int_equal(add(f->b, "once", "@every 1s", "go", NULL), 0);
    assert_int_equal(add(f->b, "skip", "@every 1s", "gs", "skip"), 0);
    assert_int_equal(add(f->b, "minute", "* * * * *", "gm", "once"), 0);
    fake_now = T0 + 1 * SEC;
    tick(f->b);
    assert_int_equal(jobs_of(f->b, "go"), 1);
    assert_int_equal(jobs_of(f->b, "gs"), 1);
    assert_int_equal(jobs_of(f->b, "gm"), 0);
    stop(f);
    fake_now = T0 + 150 * SEC + 500 * MS; /* down 2.5 min: 149 seconds and 2 minutes missed */
    start(f);
    assert_int_equal(jobs_of(f->b, "go"), 2);
    assert_int_equal(jobs_of(f->b, "gs"), 1);
    assert_int_equal(jobs_of(f->b, "gm"), 1);
    assert_int_equal(entry(f->b, "minute")->last_ms, (T0 + 120 * SEC) / MS);
    assert_int_equal(entry(f->b, "once")->last_ms, (T0 + 150 * SEC) / MS);
    /* Both go on with the next instant. */
    fake_now = T0 + 151 * SEC;
    tick(f->b);
    assert_int_equal(jobs_of(f->b, "go"), 3);
    assert_int_equal(jobs_of(f->b, "gs"), 2);
    assert_int_equal(entry(f->b, "skip")->fired, 2);
}

static void
test_pause_resume_and_remove_replay(void **state)
{
    struct fix *f = *state;
    assert_int_equal(add(f->b, "a", "@every 1s", "g", NULL), 0);
    assert_int_equal(add(f->b, "b", "@every 1s", "g", NULL), 0);
    assert_int_equal(named(f->b, "cron.pause", "a"), 0);
    assert_int_equal(named(f->b, "cron.pause", "a"), 0); /* idempotent */
    assert_int_equal(named(f->b, "cron.remove", "b"), 0);
    fake_now = T0 + 5 * SEC;
    tick(f->b);
    assert_int_equal(f->b->jobs, 0);
    restart(f);
    assert_true(entry(f->b, "a")->paused);
    assert_null(entry(f->b, "b"));
    assert_int_equal(f->b->cron.n, 1);
    fake_now = T0 + 10 * SEC + 500 * MS;
    assert_int_equal(named(f->b, "cron.resume", "a"), 0);
    tick(f->b);
    assert_int_equal(f->b->jobs, 0); /* what came while it was paused is skipped */
    fake_now = T0 + 11 * SEC;
    tick(f->b);
    assert_int_equal(f->b->jobs, 1);
    restart(f);
    assert_false(entry(f->b, "a")->paused);
    fake_now = T0 + 11 * SEC + 200 * MS;
    tick(f->b);
    assert_int_equal(f->b->jobs, 1); /* 11 s was fired already */
}

/* A second restart: the first segment, holding no job, is deleted, so the entry comes from
 * the snapshot that begins a later segment. */
static void
test_entries_survive_in_the_snapshot(void **state)
{
    struct fix *f = *state;
    assert_int_equal(add(f->b, "nightly", "0 3 * * *", "g", "skip"), 0);
    restart(f);
    restart(f);
    restart(f);
    assert_false(has_segment(f->dir, 1));
    const struct cron_entry *e = entry(f->b, "nightly");
    assert_non_null(e);
    assert_int_equal(e->missed, CRON_MISSED_SKIP);
    assert_memory_equal(e->sched, "0 3 * * *", 10);
    assert_memory_equal(e->payload, "job", 3);
}

static void
test_add_refusals_change_nothing(void **state)
{
    struct fix *f = *state;
    struct wire_msg req, rep;
    nng_msg *keep;
    struct sl_str two[2] = { S("a"), S("b") };

    assert_int_equal(add(f->b, "x", "61 * * * *", "g", NULL), SL_EBADREQ);
    assert_int_equal(add(f->b, "x", "* * * *", "g", NULL), SL_EBADREQ);
    assert_int_equal(add(f->b, "x", "@every 1s", "g", "sometimes"), SL_EBADREQ);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "cron.add");
    wire_set_cstr(&req, WK_NAME, "x");
    wire_set_cstr(&req, WK_SCHEDULE, "@daily");
    wire_set_cstr(&req, WK_GROUP, "g");
    wire_set_strs(&req, WK_PAYLOADS, two, 2);
    assert_int_equal(request(f->b, &req, &rep, &keep), SL_EBADREQ);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    wire_set_strs(&req, WK_PAYLOADS, two, 1);
    wire_set_cstr(&req, WK_QUEUE, "nosuch");
    assert_int_equal(request(f->b, &req, &rep, &keep), SL_ENOTFOUND);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "cron.add");
    wire_set_cstr(&req, WK_NAME, "x");
    wire_set_cstr(&req, WK_SCHEDULE, "* 24 * * *");
    wire_set_cstr(&req, WK_GROUP, "g");
    wire_set_strs(&req, WK_PAYLOADS, two, 1);
    assert_int_equal(request(f->b, &req, &rep, &keep), SL_EBADREQ);
    char msg[256];
    snprintf(msg, sizeof(msg), "%.*s", (int)rep.v[WK_MSG].s.n, rep.v[WK_MSG].s.p);
    assert_non_null(strstr(msg, "hour: 24 is out of range 0-23"));
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    assert_int_equal(named(f->b, "cron.remove", "x"), SL_ENOTFOUND);
    assert_int_equal(named(f->b, "cron.pause", "x"), SL_ENOTFOUND);
    assert_int_equal(f->b->cron.n, 0);
    restart(f);
    assert_int_equal(f->b->cron.n, 0);
}

static void
test_add_of_an_existing_name_replaces_it(void **state)
{
    struct fix *f = *state;
    assert_int_equal(add(f->b, "a", "@every 1s", "g1", NULL), 0);
    fake_now = T0 + 1 * SEC;
    tick(f->b);
    fake_now = T0 + 1500 * MS;
    assert_int_equal(add(f->b, "a", "@every 2s", "g2", "skip"), 0);
    const struct cron_entry *e = entry(f->b, "a");
    assert_int_equal(f->b->cron.n, 1);
    assert_int_equal(e->fired, 0);
    assert_int_equal(e->missed, CRON_MISSED_SKIP);
    fake_now = T0 + 2 * SEC;
    tick(f->b);
    assert_int_equal(jobs_of(f->b, "g1"), 1);
    assert_int_equal(jobs_of(f->b, "g2"), 1);
    restart(f);
    e = entry(f->b, "a");
    assert_int_equal(e->fired, 1);
    assert_memory_equal(e->group, "g2", 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fire_replays_as_the_job_and_the_instant, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_fire_record_loses_the_job_and_the_instant,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_push_consumes_its_instant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missed_instants_give_one_job_or_none, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_and_remove_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_survive_in_the_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_refusals_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_of_an_existing_name_replaces_it, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
