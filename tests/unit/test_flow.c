/* Reserve, settle, deadlines, crashes, dead jobs and scheduling, on a broker with a fake
 * clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "err.h"
#include "flow.h"
#include "log.h"
#include "ops.h"
#include "park.h"
#include "support.h"

#include <stdio.h>
#include <string.h>

static int
setup(void **state)
{
    struct broker_cfg cfg;
    struct broker *b;
    broker_cfg_default(&cfg);
    cfg.max_attempts = 3;
    cfg.retry.base_ms = 0; /* failed jobs are ready again at once, but in the backoff tests */
    b = fake_broker(&cfg, 1000 * MS);
    *state = b;
    return 0;
}

static int
teardown(void **state)
{
    broker_free(*state);
    return 0;
}

static void
push(struct broker *b, const char *g, const char *q, uint32_t n)
{
    static struct sl_str pl[1000];
    struct wire_list l = { n, NULL, pl, NULL };
    struct sl_str qs;
    struct push_req req = { .group = S(g), .payloads = &l };
    struct push_res r;
    for (uint32_t i = 0; i < n; i++) {
        pl[i] = S("p");
    }
    if (q != NULL) {
        qs = S(q);
        req.queue = &qs;
    }
    assert_int_equal(broker_push(b, &req, &r), 0);
}

static void
mkqueue(struct broker *b, const char *name, uint32_t prio, uint32_t weight, uint32_t cap)
{
    struct queue_settings s = { .has_priority = true, .has_weight = true, .has_max_inflight = true,
                                .priority = prio, .weight = weight, .max_inflight = cap };
    assert_int_equal(broker_queue_create(b, S(name), &s), 0);
}

static uint32_t
reserve(struct broker *b, struct worker *w, uint32_t max, struct job **out)
{
    uint32_t n = 0;
    assert_int_equal(flow_reserve(b, w, max, NULL, out, &n), 0);
    return n;
}

static void
settle1(struct broker *b, enum flow_settle how, struct worker *w, uint64_t id, uint64_t ms,
        uint64_t want_done)
{
    struct wire_list l = { 1, NULL, NULL, &id };
    uint64_t done, missing;
    assert_int_equal(flow_settle(b, how, w, &l, NULL, ms, &done, &missing), 0);
    assert_int_equal(done, want_done);
    assert_int_equal(missing, 1 - want_done);
}

static struct queue *
Q(struct broker *b, const char *n)
{
    return broker_queue_find(b, S(n));
}

static void
test_reserve_is_fifo_and_ack_frees(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w1"), 7);
    struct job *jobs[10];
    push(b, "bob", NULL, 5);
    assert_int_equal(reserve(b, w, 3, jobs), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jobs[i]->id, (uint64_t)i + 1);
        assert_int_equal(jobs[i]->attempts, 1);
        assert_int_equal(jobs[i]->state, JOB_RESERVED);
    }
    assert_int_equal(queue_n(Q(b, "default"), JOB_RESERVED), 3);
    assert_int_equal(w->reserved, 3);
    uint64_t ids[3] = { 1, 2, 3 };
    struct wire_list l = { 3, NULL, NULL, ids };
    uint64_t done, missing;
    assert_int_equal(flow_settle(b, FLOW_ACK, w, &l, NULL, 0, &done, &missing), 0);
    assert_int_equal(done, 3);
    assert_int_equal(b->jobs, 2);
    assert_int_equal(Q(b, "default")->done, 3);
    assert_int_equal(w->done, 3);
    assert_int_equal(w->reserved, 0);
    /* Acking again, or ids never reserved, changes nothing. */
    assert_int_equal(flow_settle(b, FLOW_ACK, w, &l, NULL, 0, &done, &missing), 0);
    assert_int_equal(done, 0);
    assert_int_equal(missing, 3);
    settle1(b, FLOW_ACK, w, 4, 0, 0);   /* ready, not reserved */
    settle1(b, FLOW_ACK, w, 999, 0, 0); /* unknown */
    assert_int_equal(b->jobs, 2);
}

static void
test_ack_of_another_workers_job_is_refused(void **state)
{
    struct broker *b = *state;
    struct worker *w1 = flow_worker(b, S("w1"), 1), *w2 = flow_worker(b, S("w2"), 2);
    struct job *jobs[1];
    push(b, "bob", NULL, 1);
    assert_int_equal(reserve(b, w1, 1, jobs), 1);
    settle1(b, FLOW_ACK, w2, jobs[0]->id, 0, 0);
    assert_int_equal(b->jobs, 1);
    settle1(b, FLOW_ACK, NULL, 1, 0, 1); /* no worker named: any holder */
    assert_int_equal(b->jobs, 0);
}

static void
test_nack_retries_then_dead_after_max_attempts(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[2];
    push(b, "bob", NULL, 2);
    /* A nacked job goes to the tail, behind job 2. */
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    assert_int_equal(jobs[0]->id, 1);
    settle1(b, FLOW_NACK, w, 1, 0, 1);
    assert_int_equal(queue_ready_head(Q(b, "default"))->id, 2);
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    assert_int_equal(jobs[0]->id, 2);
    settle1(b, FLOW_ACK, w, 2, 0, 1);
    for (int attempt = 2; attempt <= 3; attempt++) {
        assert_int_equal(reserve(b, w, 1, jobs), 1);
        assert_int_equal(jobs[0]->id, 1);
        assert_int_equal(jobs[0]->attempts, attempt);
        settle1(b, FLOW_NACK, w, 1, 0, 1);
    }
    struct group *g = broker_group_find(b, S("bob"));
    assert_int_equal(g->jobs[JOB_DEAD], 1);
    assert_int_equal(g->failed, 3);
    assert_int_equal(group_count(g), 0);
    assert_int_equal(queue_n(Q(b, "default"), JOB_DEAD), 1);
    assert_int_equal(reserve(b, w, 1, jobs), 0);
    /* Dead jobs are kept and listable, and retry runs them again. */
    uint64_t n;
    uint64_t id = 1;
    struct wire_list ids = { 1, NULL, NULL, &id };
    assert_int_equal(flow_dead_retry(b, &ids, NULL, NULL, false, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    assert_int_equal(jobs[0]->id, 1);
    assert_int_equal(jobs[0]->attempts, 1);
}

static void
test_nack_with_delay_waits_then_is_ready(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[1];
    push(b, "bob", NULL, 1);
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    settle1(b, FLOW_NACK, w, 1, 500, 1);
    assert_int_equal(queue_n(Q(b, "default"), JOB_DELAYED), 1);
    assert_int_equal(group_count(broker_group_find(b, S("bob"))), 1);
    assert_int_equal(reserve(b, w, 1, jobs), 0);
    fake_now += 499 * MS;
    flow_tick(b, fake_now);
    assert_int_equal(reserve(b, w, 1, jobs), 0);
    fake_now += 1 * MS;
    flow_tick(b, fake_now);
    assert_int_equal(reserve(b, w, 1, jobs), 1);
}

/* Sets q's retry backoff. */
static void
set_retry(struct broker *b, const char *q, uint32_t base_ms, uint32_t max_ms, uint8_t jitter)
{
    struct queue_settings s = { .has_retry_base = true, .has_retry_max = true,
                                .has_retry_jitter = true,
                                .retry = { .base_ms = base_ms, .max_ms = max_ms,
                                           .jitter = jitter } };
    assert_int_equal(broker_queue_update(b, S(q), &s), 0);
}

/* Moves the fake clock on by ms and runs the timer: returns whether job id is ready after. */
static bool
ready_after(struct broker *b, uint64_t id, int64_t ms)
{
    fake_now += ms * MS;
    flow_tick(b, fake_now);
    for (struct job *j = queue_ready_first(Q(b, "default")); j != NULL; j = queue_ready_next(j)) {
        if (j->id == id) {
            return true;
        }
    }
    return false;
}

/* A nack without delay, a TTR expiry and a crash each wait the queue's backoff: base,
 * doubling with each failure, capped at max; a nack's own delay_ms replaces it. */
static void
test_failed_jobs_wait_their_queues_backoff(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[1];
    struct sl_str pl[1] = { S("x") };
    struct wire_list l = { 1, NULL, pl, NULL };
    struct push_req req = { .group = S("bob"), .payloads = &l, .ttr_ms = 50,
                            .max_attempts = 10 };
    struct push_res r;
    set_retry(b, "default", 100, 300, 0);
    assert_int_equal(broker_push(b, &req, &r), 0);

    assert_int_equal(reserve(b, w, 1, jobs), 1);
    settle1(b, FLOW_NACK, w, 1, 0, 1);                 /* failure 1: 100 ms */
    assert_int_equal(jobs[0]->state, JOB_DELAYED);
    assert_false(ready_after(b, 1, 99));
    assert_true(ready_after(b, 1, 1));
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    assert_false(ready_after(b, 1, 50));               /* TTR, failure 2: 200 ms */
    assert_int_equal(jobs[0]->state, JOB_DELAYED);
    assert_false(ready_after(b, 1, 199));
    assert_true(ready_after(b, 1, 1));
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    settle1(b, FLOW_NACK, w, 1, 0, 1);                 /* failure 3: 400, capped at 300 ms */
    assert_false(ready_after(b, 1, 299));
    assert_true(ready_after(b, 1, 1));
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    settle1(b, FLOW_NACK, w, 1, 20, 1);                /* its own delay: 20 ms */
    assert_false(ready_after(b, 1, 19));
    assert_true(ready_after(b, 1, 1));
    /* Its worker dies while it runs it: the crash (its first) waits the base. */
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    w->current = 1;
    flow_pipe_closed(b, 1);
    assert_int_equal(jobs[0]->crashes, 1);
    assert_int_equal(jobs[0]->state, JOB_DELAYED);
    assert_false(ready_after(b, 1, 99));
    assert_true(ready_after(b, 1, 1));
    /* Base 0: at once, as before. */
    set_retry(b, "default", 0, 300, 0);
    struct worker *w2 = flow_worker(b, S("w2"), 2);
    assert_int_equal(reserve(b, w2, 1, jobs), 1);
    settle1(b, FLOW_NACK, w2, 1, 0, 1);
    assert_int_equal(jobs[0]->state, JOB_READY);
}

/* With jitter J, each wait is between (100 - J)% and 100% of the backoff. */
static void
test_retry_jitter_stays_in_its_range(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[1];
    int64_t lo = INT64_MAX, hi = 0;
    set_retry(b, "default", 1000, 1000, 50);
    push(b, "bob", NULL, 1);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(reserve(b, w, 1, jobs), 1);
        jobs[0]->attempts = 1; /* never out of attempts */
        settle1(b, FLOW_NACK, w, jobs[0]->id, 0, 1);
        int64_t d = (jobs[0]->due_ns - fake_now) / MS;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        fake_now = jobs[0]->due_ns;
        flow_tick(b, fake_now);
    }
    assert_true(lo >= 500);
    assert_true(hi <= 1000);
    assert_true(hi - lo >= 300); /* it does vary */
}

/* Workers without a connection (HTTP: pipe 0) are forgotten once idle with no job for 15
 * minutes; one holding a job, or one with a connection, is kept. */
static void
test_idle_connectionless_workers_are_forgotten(void **state)
{
    struct broker *b = *state;
    struct job *jobs[1];
    flow_worker(b, S("http-idle"), 0);
    struct worker *busy = flow_worker(b, S("http-busy"), 0);
    flow_worker(b, S("wired"), 7);
    push(b, "bob", NULL, 1);
    assert_int_equal(b->nworkers, 3);
    fake_now += 14LL * 60 * 1000 * MS;
    flow_tick(b, fake_now);
    assert_int_equal(b->nworkers, 3); /* not idle long enough */
    fake_now += 2LL * 60 * 1000 * MS;
    assert_int_equal(reserve(b, busy, 1, jobs), 1); /* holds a job, not heard from since */
    flow_tick(b, fake_now);
    assert_int_equal(b->nworkers, 2);
    assert_null(hmap_get(&b->workers, "http-idle", 9));
    assert_non_null(hmap_get(&b->workers, "http-busy", 9));
    assert_non_null(hmap_get(&b->workers, "wired", 5));
}

/* Pushes n jobs of g with delay_ms / due_wall_ms; returns broker_push's code. */
static int
push_later(struct broker *b, const char *g, uint32_t n, uint64_t delay_ms, int64_t due_wall_ms)
{
    static struct sl_str pl[8];
    struct wire_list l = { n, NULL, pl, NULL };
    struct push_req req = { .group = S(g), .payloads = &l, .delay_ms = delay_ms,
                            .due_wall_ms = due_wall_ms };
    struct push_res r;
    for (uint32_t i = 0; i < n; i++) {
        pl[i] = S("p");
    }
    return broker_push(b, &req, &r);
}

static void
test_delayed_push_is_ready_at_its_time_and_not_before(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[4];
    int64_t t0 = fake_now;

    assert_int_equal(push_later(b, "bob", 3, 500, 0), 0);
    assert_int_equal(push_later(b, "bob", 1, 0, t0 / MS + 200), 0);
    push(b, "amy", NULL, 1);
    struct group *bob = broker_group_find(b, S("bob"));
    assert_int_equal(bob->jobs[JOB_DELAYED], 4);
    assert_int_equal(bob->jobs[JOB_READY], 0);
    assert_int_equal(queue_n(Q(b, "default"), JOB_DELAYED), 4);
    assert_int_equal(b->jobs, 5);
    /* Only amy's job is ready; the timer is asked for the first due time. */
    assert_int_equal(reserve(b, w, 4, jobs), 1);
    assert_int_equal(jobs[0]->id, 5);
    settle1(b, FLOW_ACK, w, 5, 0, 1);
    assert_int_equal(flow_tick(b, fake_now), t0 + 200 * MS);
    fake_now = t0 + 199 * MS;
    flow_tick(b, fake_now);
    assert_int_equal(bob->jobs[JOB_DELAYED], 4);
    fake_now = t0 + 200 * MS;
    assert_int_equal(flow_tick(b, fake_now), t0 + 500 * MS);
    assert_int_equal(bob->jobs[JOB_READY], 1);
    fake_now = t0 + 499 * MS;
    flow_tick(b, fake_now);
    assert_int_equal(bob->jobs[JOB_READY], 1);
    fake_now = t0 + 500 * MS;
    assert_int_equal(flow_tick(b, fake_now), INT64_MAX);
    assert_int_equal(bob->jobs[JOB_READY], 4);
    assert_int_equal(bob->jobs[JOB_DELAYED], 0);
    /* In the order they came due, the ones due together in id order. */
    assert_int_equal(reserve(b, w, 4, jobs), 4);
    assert_int_equal(jobs[0]->id, 4);
    assert_int_equal(jobs[1]->id, 1);
    assert_int_equal(jobs[2]->id, 2);
    assert_int_equal(jobs[3]->id, 3);
}

static void
test_push_delay_out_of_range_or_past(void **state)
{
    struct broker *b = *state;
    int64_t now_ms = fake_now / MS;
    /* Refused, nothing stored: too long a delay, too far a time, both given. */
    assert_int_equal(push_later(b, "bob", 1, BROKER_DELAY_MAX_MS + 1, 0), SL_EBADREQ);
    assert_int_equal(push_later(b, "bob", 1, 0, now_ms + (int64_t)BROKER_DELAY_MAX_MS + 1),
                     SL_EBADREQ);
    assert_int_equal(push_later(b, "bob", 1, 10, now_ms + 10), SL_EBADREQ);
    assert_int_equal(b->jobs, 0);
    assert_null(broker_group_find(b, S("bob")));
    /* The longest delay is accepted; a time already past (or now) is ready at once. */
    assert_int_equal(push_later(b, "bob", 1, BROKER_DELAY_MAX_MS, 0), 0);
    assert_int_equal(push_later(b, "bob", 1, 0, now_ms - 1000), 0);
    assert_int_equal(push_later(b, "bob", 1, 0, now_ms), 0);
    struct group *bob = broker_group_find(b, S("bob"));
    assert_int_equal(bob->jobs[JOB_DELAYED], 1);
    assert_int_equal(bob->jobs[JOB_READY], 2);
}

static void
test_ttr_expiry_returns_job_to_head(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[2];
    struct sl_str pl[1] = { S("x") };
    struct wire_list l = { 1, NULL, pl, NULL };
    struct push_req req = { .group = S("bob"), .payloads = &l, .ttr_ms = 100 };
    struct push_res r;
    assert_int_equal(broker_push(b, &req, &r), 0);
    push(b, "bob", NULL, 1);
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    assert_int_equal(jobs[0]->id, 1);
    assert_int_equal(flow_tick(b, fake_now), fake_now + 100 * MS);
    fake_now += 100 * MS;
    flow_tick(b, fake_now);
    assert_int_equal(queue_ready_head(Q(b, "default"))->id, 1);
    assert_int_equal(w->reserved, 0);
    assert_int_equal(Q(b, "default")->failed, 1);
    /* touch extends a reservation */
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    fake_now += 90 * MS;
    settle1(b, FLOW_TOUCH, w, 1, 0, 1);
    fake_now += 90 * MS;
    flow_tick(b, fake_now);
    assert_int_equal(jobs[0]->state, JOB_RESERVED);
    settle1(b, FLOW_ACK, w, 1, 0, 1);
}

/* The last error of a job: a nack's text and its class, a TTR's expiry, a worker's death;
 * each counted by class, each replacing the one before; a long text keeps its first line and
 * its end. */
static void
test_a_failed_job_keeps_its_last_error(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[1];
    struct sl_str pl[1] = { S("x") };
    struct wire_list l = { 1, NULL, pl, NULL };
    struct push_req req = { .group = S("bob"), .payloads = &l, .ttr_ms = 100,
                            .max_attempts = 10 };
    struct push_res r;
    assert_int_equal(broker_push(b, &req, &r), 0);
    struct job *j = r.first;
    assert_null(j->err);

    uint64_t id = j->id, done, missing;
    struct wire_list ids = { 1, NULL, NULL, &id };
    struct sl_str e1[1] = { S("exit 3\nno such file") };
    struct wire_list errs = { 1, NULL, e1, NULL };
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    assert_int_equal(flow_settle(b, FLOW_NACK, w, &ids, &errs, 0, &done, &missing), 0);
    assert_non_null(j->err);
    assert_int_equal(j->err->cls, JERR_EXIT);
    assert_int_equal(j->err->len, strlen("exit 3\nno such file"));
    assert_memory_equal(j->err->text, "exit 3\nno such file", j->err->len);
    assert_int_equal(j->err->at_ms, broker_wall_ns(b) / 1000000);
    assert_int_equal(b->flowc.errors[JERR_EXIT], 1);

    assert_int_equal(reserve(b, w, 1, jobs), 1);
    fake_now += 100 * MS;
    flow_tick(b, fake_now);
    assert_int_equal(j->err->cls, JERR_TTR_EXPIRED);
    assert_memory_equal(j->err->text, "TTR of 100 ms expired on worker w", j->err->len);

    assert_int_equal(reserve(b, w, 1, jobs), 1);
    w->current = id;
    flow_pipe_closed(b, 1);
    assert_int_equal(j->err->cls, JERR_WORKER_DIED);
    assert_memory_equal(j->err->text, "worker w died running it", j->err->len);
    assert_int_equal(b->flowc.errors[JERR_TTR_EXPIRED], 1);
    assert_int_equal(b->flowc.errors[JERR_WORKER_DIED], 1);

    /* 3,000 bytes: its first line, a gap, and its last bytes, JOBERR_TEXT_MAX in all */
    static char big[3000];
    memset(big, 'a', sizeof(big));
    memcpy(big, "signal 9 (Killed)\n", 18);
    memcpy(big + sizeof(big) - 3, "END", 3);
    struct sl_str e2[1] = { { big, sizeof(big) } };
    struct wire_list errs2 = { 1, NULL, e2, NULL };
    w = flow_worker(b, S("w2"), 2);
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    assert_int_equal(flow_settle(b, FLOW_NACK, w, &ids, &errs2, 0, &done, &missing), 0);
    assert_int_equal(j->err->cls, JERR_SIGNAL);
    assert_int_equal(j->err->len, JOBERR_TEXT_MAX);
    assert_memory_equal(j->err->text, "signal 9 (Killed)\n...\n", 22);
    assert_memory_equal(j->err->text + JOBERR_TEXT_MAX - 3, "END", 3);
}

static void
test_release_puts_job_back_first(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[2];
    push(b, "bob", NULL, 3);
    assert_int_equal(reserve(b, w, 2, jobs), 2);
    settle1(b, FLOW_RELEASE, w, 2, 0, 1);
    assert_int_equal(queue_ready_head(Q(b, "default"))->id, 2);
    assert_int_equal(jobs[1]->attempts, 1);
    assert_int_equal(Q(b, "default")->failed, 0);
}

static void
test_disconnect_charges_only_the_running_job(void **state)
{
    struct broker *b = *state;
    struct job *jobs[4];
    push(b, "bob", NULL, 4);
    /* The worker holds jobs 1-3 and runs job 2 (it reported it): job 1 finished with its
     * ack still pending, job 3 never started. Only job 2 is charged, each time. */
    for (int crash = 1; crash <= 3; crash++) {
        struct worker *w = flow_worker(b, S("w"), (uint32_t)crash);
        assert_int_equal(reserve(b, w, 3, jobs), 3);
        assert_int_equal(jobs[0]->id, 1);
        assert_int_equal(jobs[1]->id, 2); /* the poison job is second every time */
        w->current = 2;
        assert_false(flow_pipe_is_closed(b, (uint32_t)crash));
        flow_pipe_closed(b, (uint32_t)crash);
        assert_int_equal(b->nworkers, 0);
        assert_true(flow_pipe_is_closed(b, (uint32_t)crash));
        if (crash < 3) {
            const struct job *h = queue_ready_head(Q(b, "default"));
            assert_int_equal(h->id, 1);
            assert_int_equal(h->attempts, 0); /* not charged: attempt given back */
            assert_int_equal(h->crashes, 0);
            assert_int_equal(h->next->id, 2);
            assert_int_equal(h->next->crashes, crash);
            assert_int_equal(h->next->attempts, crash);
            assert_int_equal(h->next->next->id, 3);
            assert_int_equal(h->next->next->attempts, 0);
            assert_false(h->suspect || h->next->suspect || h->next->next->suspect);
        }
    }
    /* Dead after max_crashes; the others keep flowing with their attempts intact. */
    assert_int_equal(queue_n(Q(b, "default"), JOB_DEAD), 1);
    assert_int_equal(Q(b, "default")->lists[JOB_DEAD].head->id, 2);
    struct worker *w = flow_worker(b, S("w"), 9);
    assert_int_equal(reserve(b, w, 4, jobs), 3);
    assert_int_equal(jobs[0]->id, 1);
    assert_int_equal(jobs[0]->attempts, 1);
    assert_int_equal(jobs[0]->crashes, 0);
    assert_int_equal(jobs[1]->id, 3);
    assert_int_equal(jobs[2]->id, 4);
}

static void
test_disconnect_with_no_known_job_charges_none(void **state)
{
    struct broker *b = *state;
    struct job *jobs[4];
    push(b, "bob", NULL, 4);
    /* A client that speaks no reserve tokens (it need not report what it runs): its jobs
     * just go back, uncharged. */
    struct worker *w = flow_worker(b, S("tool"), 1);
    assert_int_equal(reserve(b, w, 3, jobs), 3);
    flow_pipe_closed(b, 1);
    const struct job *h = queue_ready_head(Q(b, "default"));
    assert_int_equal(h->crashes + h->next->crashes + h->next->next->crashes, 0);
    assert_false(h->suspect || h->next->suspect || h->next->next->suspect);
    /* A worker that does (the C worker API) reports the job it runs within moments. */
    w = flow_worker(b, S("w"), 2);
    assert_true(flow_reserve_begin(b, w, 1, 0));
    assert_int_equal(reserve(b, w, 3, jobs), 3);
    assert_int_equal(w->current, 0); /* several jobs: none known started */
    w->current = 99;                 /* a job it does not hold is charged nothing either */
    flow_pipe_closed(b, 2);
    assert_int_equal(queue_n(Q(b, "default"), JOB_READY), 4);
    for (const struct job *j = queue_ready_head(Q(b, "default")); j != NULL; j = j->next) {
        assert_int_equal(j->attempts, 0);
        assert_int_equal(j->crashes, 0);
    }
    /* No known job and a crash: the jobs it held are suspect and go out one at a time, so
     * that the next death is charged exactly (a one-job reserve is started at once). */
    h = queue_ready_head(Q(b, "default"));
    assert_true(h->suspect && h->next->suspect && h->next->next->suspect);
    assert_false(h->next->next->next->suspect);
    w = flow_worker(b, S("w"), 3);
    assert_int_equal(reserve(b, w, 3, jobs), 1);
    assert_int_equal(jobs[0]->id, 1);
    assert_false(jobs[0]->suspect);
    assert_int_equal(w->current, 1);
    flow_pipe_closed(b, 3);
    h = queue_ready_head(Q(b, "default"));
    assert_int_equal(h->id, 1);
    assert_int_equal(h->crashes, 1);
    assert_int_equal(h->attempts, 1);
    assert_true(h->next->suspect); /* still suspect: not yet run alone */
    assert_int_equal(h->next->crashes, 0);
}

static void
test_name_on_a_new_connection_hands_back_the_old_ones_jobs(void **state)
{
    struct broker *b = *state;
    struct job *jobs[2];
    push(b, "bob", NULL, 2);
    struct worker *w = flow_worker(b, S("w"), 1);
    assert_int_equal(reserve(b, w, 2, jobs), 2);
    assert_string_equal(w->state, "busy");
    /* The same name from connection 2, before the broker saw connection 1 close. */
    assert_ptr_equal(flow_worker(b, S("w"), 2), w);
    assert_int_equal(w->pipe, 2);
    assert_int_equal(w->reserved, 0);
    const struct job *h = queue_ready_head(Q(b, "default"));
    assert_int_equal(h->id, 1);
    assert_int_equal(h->attempts, 0); /* a reconnect is not a crash */
    assert_int_equal(h->crashes, 0);
    assert_int_equal(h->next->id, 2);
    flow_pipe_closed(b, 1); /* the old close changes nothing */
    assert_int_equal(b->nworkers, 1);
    assert_int_equal(queue_n(Q(b, "default"), JOB_READY), 2);
}

static void
test_lower_number_priority_wins(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[1];
    b->cfg.min_share_ppm = 0;
    mkqueue(b, "low", 100, 1, 0);
    mkqueue(b, "high", 1, 1, 0);
    push(b, "a", "low", 5);
    push(b, "a", NULL, 5);
    push(b, "a", "high", 5);
    for (int i = 0; i < 15; i++) {
        assert_int_equal(reserve(b, w, 1, jobs), 1);
        const char *want = i < 5 ? "high" : i < 10 ? "default" : "low";
        assert_string_equal(jobs[0]->queue->name, want);
    }
}

static void
test_lower_priority_gets_min_share(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[1];
    mkqueue(b, "heavy", 100, 1, 0);
    push(b, "a", NULL, 1000);
    push(b, "b", "heavy", 1000);
    int low = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(reserve(b, w, 1, jobs), 1);
        low += strcmp(jobs[0]->queue->name, "heavy") == 0;
        settle1(b, FLOW_ACK, w, jobs[0]->id, 0, 1);
    }
    /* 5% of 1000, exactly: one in twenty. */
    assert_int_equal(low, 50);
}

static void
test_equal_priority_shares_by_weight(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[1];
    mkqueue(b, "three", 10, 3, 0);
    mkqueue(b, "one", 10, 1, 0);
    struct queue_settings s = { .has_weight = true, .weight = 1 };
    assert_int_equal(broker_queue_pause(b, S("default"), true), 0);
    (void)s;
    push(b, "a", "three", 1000);
    push(b, "b", "one", 1000);
    int three = 0;
    for (int i = 0; i < 800; i++) {
        assert_int_equal(reserve(b, w, 1, jobs), 1);
        three += strcmp(jobs[0]->queue->name, "three") == 0;
    }
    assert_int_equal(three, 600);
}

static void
test_inflight_cap_and_pause_are_respected(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[10];
    mkqueue(b, "capped", 1, 1, 2);
    push(b, "a", "capped", 5);
    assert_int_equal(reserve(b, w, 10, jobs), 2);
    assert_int_equal(reserve(b, w, 10, jobs), 0);
    settle1(b, FLOW_ACK, w, 1, 0, 1);
    assert_int_equal(reserve(b, w, 10, jobs), 1);
    assert_int_equal(queue_n(Q(b, "capped"), JOB_RESERVED), 2);
    assert_int_equal(broker_queue_pause(b, S("capped"), true), 0);
    settle1(b, FLOW_ACK, w, 2, 0, 1);
    assert_int_equal(reserve(b, w, 10, jobs), 0);
    assert_int_equal(broker_queue_pause(b, S("capped"), false), 0);
    assert_int_equal(reserve(b, w, 10, jobs), 1);
}

static void
test_reserve_from_named_queues_only(void **state)
{
    struct broker *b = *state;
    struct worker *w = flow_worker(b, S("w"), 1);
    struct job *jobs[10];
    struct sl_str names[1] = { S("q2") };
    struct wire_list from = { 1, NULL, names, NULL };
    uint32_t n;
    mkqueue(b, "q2", 50, 1, 0);
    push(b, "a", NULL, 3);
    push(b, "a", "q2", 2);
    assert_int_equal(flow_reserve(b, w, 10, &from, jobs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(jobs[0]->queue->name, "q2");
}

static int sent;

static void
count_send(struct waiter *wt)
{
    sent++;
    nng_msg_free(wt->rep);
    wt->rep = NULL;
}

static void
test_parked_waiter_is_served_by_push_and_expires(void **state)
{
    struct broker *b = *state;
    struct waiter w1 = { 0 }, w2 = { 0 };
    struct waiter *out = NULL;
    w1.w = flow_worker(b, S("w1"), 1);
    w1.max = 5;
    w1.deadline_ns = fake_now + 100 * MS;
    w1.send = count_send;
    w2 = w1;
    w2.w = flow_worker(b, S("w2"), 2);
    w2.pipe = 2;
    park_add(b, &w1);
    park_add(b, &w2);
    push(b, "bob", NULL, 2);
    park_serve(b, &out);
    assert_ptr_equal(out, &w1); /* oldest first, takes both jobs */
    assert_null(out->next);
    assert_int_equal(w1.w->reserved, 2);
    park_send_all(out);
    assert_int_equal(sent, 1);
    out = NULL;
    park_expire(b, fake_now, 2, &out); /* w2's connection closed */
    assert_ptr_equal(out, &w2);
    park_send_all(out);
    assert_int_equal(sent, 2);
    assert_int_equal(b->nwaiters, 0);
}

static void
test_a_crash_alone_never_uses_up_attempts(void **state)
{
    struct broker *b = *state;
    struct job *jobs[1];
    push(b, "bob", NULL, 1);
    struct worker *w = flow_worker(b, S("w"), 1);
    for (int i = 0; i < 2; i++) { /* two failed attempts of max_attempts 3 */
        assert_int_equal(reserve(b, w, 1, jobs), 1);
        settle1(b, FLOW_NACK, w, 1, 0, 1);
    }
    /* The third attempt runs it to success, but its worker dies before the ack arrives: it is
     * charged the crash, yet not dead (it may well have finished). */
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    assert_int_equal(w->current, 1);
    flow_pipe_closed(b, 1);
    const struct job *h = queue_ready_head(Q(b, "default"));
    assert_non_null(h);
    assert_int_equal(h->id, 1);
    assert_int_equal(h->crashes, 1);
    assert_int_equal(h->attempts, 3);
    assert_int_equal(queue_n(Q(b, "default"), JOB_DEAD), 0);
    /* Run again: an ack makes it done; a failed attempt would make it dead. */
    w = flow_worker(b, S("w"), 2);
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    settle1(b, FLOW_ACK, w, 1, 0, 1);
    assert_int_equal(b->jobs, 0);
    assert_int_equal(Q(b, "default")->done, 1);
}

static void
test_a_close_serves_parked_reserves_only_after_a_grace(void **state)
{
    struct broker *b = *state;
    struct waiter wt = { 0 };
    struct job *jobs[1];
    /* Worker w2 waits in a reserve; w1 holds a job and its connection closes (a pool killed
     * whole: w2 may be dead too, its close not yet seen). */
    push(b, "bob", NULL, 1);
    struct worker *w1 = flow_worker(b, S("w1"), 1);
    assert_int_equal(reserve(b, w1, 1, jobs), 1);
    wt.w = flow_worker(b, S("w2"), 2);
    wt.pipe = 2;
    wt.max = 1;
    wt.deadline_ns = fake_now + 1000 * MS;
    wt.send = count_send;
    park_add(b, &wt);
    ops_pipe_closed(b, 1);
    assert_true(wt.parked); /* not served during the close */
    assert_int_equal(queue_n(Q(b, "default"), JOB_READY), 1);
    assert_true(b->serve_after_ns >= fake_now + PARK_CLOSE_GRACE_MS * MS);
    ops_pipe_closed(b, 2); /* its close, seen within the grace: nothing was handed to it */
    assert_false(wt.parked);
    assert_int_equal(b->nworkers, 0);
    assert_int_equal(queue_n(Q(b, "default"), JOB_READY), 1);
    assert_int_equal(queue_ready_head(Q(b, "default"))->crashes, 1); /* w1's charge only */
    sent = 0;
}

static void
test_unreceived_reserve_gives_its_jobs_back(void **state)
{
    struct broker *b = *state;
    struct job *jobs[4];
    push(b, "bob", NULL, 4);
    struct worker *w = flow_worker(b, S("w"), 1);
    /* Reserve 1 is answered and received (the next one says so): nothing goes back. */
    assert_true(flow_reserve_begin(b, w, 1, 0));
    assert_int_equal(reserve(b, w, 1, jobs), 1);
    flow_reserve_sent(w, 1, jobs, 1);
    assert_int_equal(w->current, 1);
    assert_true(flow_reserve_begin(b, w, 2, 1));
    assert_int_equal(w->reserved, 1);
    /* Reserve 2 is answered, but the reply never reaches the worker (it gave up waiting, or
     * an error such as io took the reply's place): reserve 3 says it got 1 only. */
    assert_int_equal(reserve(b, w, 2, jobs), 2);
    flow_reserve_sent(w, 2, jobs, 2);
    assert_int_equal(w->reserved, 3);
    settle1(b, FLOW_ACK, w, 3, 0, 1); /* settled since: left alone */
    assert_true(flow_reserve_begin(b, w, 3, 1));
    assert_int_equal(w->reserved, 1);
    const struct job *h = queue_ready_head(Q(b, "default"));
    assert_int_equal(h->id, 2);
    assert_int_equal(h->attempts, 0); /* uncharged */
    assert_int_equal(h->crashes, 0);
    assert_int_equal(h->next->id, 4);
    assert_int_equal(w->current, 1); /* job 1 is still the one it runs */
    /* A worker without tokens is never handed anything back this way. */
    struct worker *old = flow_worker(b, S("old"), 2);
    assert_true(flow_reserve_begin(b, old, 0, 0));
    assert_int_equal(reserve(b, old, 1, jobs), 1);
    flow_reserve_sent(old, 0, jobs, 1);
    assert_true(flow_reserve_begin(b, old, 0, 0));
    assert_int_equal(old->reserved, 1);
}

static void
test_overtaken_reserve_and_waiter_get_nothing(void **state)
{
    struct broker *b = *state;
    struct waiter w1 = { 0 };
    struct waiter *out = NULL;
    struct worker *w = flow_worker(b, S("w"), 1);
    /* Reserve 1 parks; the worker gives up on it and sends reserve 2, which parks too. */
    assert_true(flow_reserve_begin(b, w, 1, 0));
    w1.w = w;
    w1.max = 5;
    w1.rtok = 1;
    w1.deadline_ns = fake_now + 100 * MS;
    w1.send = count_send;
    struct waiter w2 = w1;
    w2.rtok = 2;
    park_add(b, &w1);
    assert_true(flow_reserve_begin(b, w, 2, 0));
    park_add(b, &w2);
    push(b, "bob", NULL, 2);
    park_serve(b, &out);
    assert_ptr_equal(out, &w2); /* the jobs go to the reserve the worker waits for */
    assert_null(out->next);
    assert_int_equal(w->rtok_sent, 2);
    park_send_all(out);
    /* Reserve 1 handled after reserve 2 (its request overtaken): it reserves nothing. */
    assert_false(flow_reserve_begin(b, w, 1, 0));
    out = NULL;
    park_expire(b, fake_now + 100 * MS, 0, &out);
    assert_ptr_equal(out, &w1);
    park_send_all(out);
    assert_int_equal(w->reserved, 2);
    sent = 0;
}

int
main(void)
{
    log_level = LOG_OFF;
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_reserve_is_fifo_and_ack_frees),
        T(test_ack_of_another_workers_job_is_refused),
        T(test_nack_retries_then_dead_after_max_attempts),
        T(test_nack_with_delay_waits_then_is_ready),
        T(test_failed_jobs_wait_their_queues_backoff),
        T(test_retry_jitter_stays_in_its_range),
        T(test_ttr_expiry_returns_job_to_head),
        T(test_delayed_push_is_ready_at_its_time_and_not_before),
        T(test_push_delay_out_of_range_or_past),
        T(test_idle_connectionless_workers_are_forgotten),
        T(test_a_failed_job_keeps_its_last_error),
        T(test_release_puts_job_back_first),
        T(test_disconnect_charges_only_the_running_job),
        T(test_disconnect_with_no_known_job_charges_none),
        T(test_a_crash_alone_never_uses_up_attempts),
        T(test_a_close_serves_parked_reserves_only_after_a_grace),
        T(test_unreceived_reserve_gives_its_jobs_back),
        T(test_overtaken_reserve_and_waiter_get_nothing),
        T(test_name_on_a_new_connection_hands_back_the_old_ones_jobs),
        T(test_lower_number_priority_wins),
        T(test_lower_priority_gets_min_share),
        T(test_equal_priority_shares_by_weight),
        T(test_inflight_cap_and_pause_are_respected),
        T(test_reserve_from_named_queues_only),
        T(test_parked_waiter_is_served_by_push_and_expires),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
