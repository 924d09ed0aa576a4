/* common/wapi against a real broker (the broker's modules, serving on an ipc socket in a
 * private temporary directory) and against a fake one that answers garbage: prefetch and
 * batched acks, release keeping FIFO order, nacks, max_jobs, stopping (idle, and while the
 * broker is unreachable), the heartbeat of a busy worker, a broker that starts late, a broker
 * restart that voids the prefetched jobs, and malformed replies and jobs that never crash it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "client.h"
#include "err.h"
#include "log.h"
#include "park.h"
#include "server.h"
#include "wapi.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct env {
    char dir[64];
    char url[128];
    struct broker *b;
    pthread_t timer;
    struct server *srv;
    volatile sig_atomic_t stop;
};

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
broker_up(struct env *e)
{
    struct broker_cfg cfg;
    broker_cfg_default(&cfg);
    assert_int_equal(broker_new(&e->b, &cfg), 0);
    assert_int_equal(park_timer_start(e->b, &e->timer), 0);
    assert_int_equal(server_start(&e->srv, e->b, e->url, 1 << 20, 4), 0);
}

static void
broker_down(struct env *e)
{
    if (e->b == NULL) {
        return;
    }
    server_stop(e->srv);
    park_timer_stop(e->b, e->timer);
    broker_free(e->b);
    e->b = NULL;
    e->srv = NULL;
}

static int
setup_env(void **state, bool with_broker)
{
    struct env *e = calloc(1, sizeof(*e));
    strcpy(e->dir, "/tmp/sl-wapi.XXXXXX");
    if (mkdtemp(e->dir) == NULL) {
        free(e);
        return -1;
    }
    snprintf(e->url, sizeof(e->url), "ipc://%s/broker.ipc", e->dir);
    if (with_broker) {
        broker_up(e);
    }
    *state = e;
    return 0;
}

static int
setup(void **state)
{
    return setup_env(state, true);
}

static int
setup_no_broker(void **state)
{
    return setup_env(state, false);
}

static int
teardown(void **state)
{
    struct env *e = *state;
    broker_down(e);
    char path[128];
    snprintf(path, sizeof(path), "%s/broker.ipc", e->dir);
    unlink(path);
    rmdir(e->dir);
    free(e);
    return 0;
}

/* Pushes n jobs of group g with payload p through the wire (so parked reserves wake). */
static void
push(struct env *e, const char *g, const char *p, uint32_t n)
{
    struct client *c;
    struct wire_msg req, rep;
    struct sl_str pl[64];
    assert_true(n <= 64);
    for (uint32_t i = 0; i < n; i++) {
        pl[i] = (struct sl_str){ p, (uint32_t)strlen(p) };
    }
    assert_int_equal(client_open(&c, e->url, 2000), 0);
    wire_msg_init(&req);
    wire_msg_init(&rep);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, g);
    wire_set_strs(&req, WK_PAYLOADS, pl, n);
    assert_int_equal(client_call(c, &req, &rep, 2000), 0);
    struct sl_str msg;
    assert_int_equal(client_reply_err(&rep, &msg), 0);
    wire_msg_fini(&rep);
    client_free(c);
}

struct counts {
    uint64_t ready, reserved, delayed, done, failed;
};

static struct counts
counts(struct env *e)
{
    struct counts c;
    pthread_mutex_lock(&e->b->lock);
    struct queue *q = e->b->dflt;
    c.ready = queue_n(q, JOB_READY);
    c.reserved = queue_n(q, JOB_RESERVED);
    c.delayed = queue_n(q, JOB_DELAYED);
    c.done = q->done;
    c.failed = q->failed;
    pthread_mutex_unlock(&e->b->lock);
    return c;
}

/* Polls cond(e) for up to ms. */
static bool
eventually(struct env *e, bool (*cond)(struct env *), uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    while (!cond(e)) {
        if (now_ms() > end) {
            return false;
        }
        nng_msleep(10);
    }
    return true;
}

static struct wapi *
open_worker(struct env *e, uint32_t prefetch, uint64_t max_jobs)
{
    struct wapi_cfg cfg = { .url = e->url, .name = "t:1", .prefetch = prefetch,
                            .wait_ms = 200, .max_jobs = max_jobs, .stop = &e->stop };
    struct wapi *w = NULL;
    assert_int_equal(wapi_open(&w, &cfg), 0);
    return w;
}

/* --- configuration ----------------------------------------------------------------------- */

static void
test_open_refuses_bad_configuration(void **state)
{
    (void)state;
    struct wapi *w = NULL;
    const char *bad_q[] = { "ok", "not ok" };
    const char *many[WIRE_FROM_MAX + 1];
    for (unsigned i = 0; i <= WIRE_FROM_MAX; i++) {
        many[i] = "q";
    }
    struct wapi_cfg cfgs[] = {
        { .url = "ipc:///tmp/x", .name = "bad name" },
        { .url = "ipc:///tmp/x", .prefetch = WAPI_PREFETCH_MAX + 1 },
        { .url = "ipc:///tmp/x", .queues = bad_q, .nqueues = 2 },
        { .url = "ipc:///tmp/x", .queues = many, .nqueues = WIRE_FROM_MAX + 1 },
        { .url = "nonsense://x" },
        { .url = "ipc:///tmp/x", .wait_ms = 600001 },
    };
    for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
        assert_int_equal(wapi_open(&w, &cfgs[i]), SL_EBADREQ);
    }
    struct wapi_cfg dflt = { .url = "ipc:///tmp/x" };
    assert_int_equal(wapi_open(&w, &dflt), 0);
    char want[32];
    snprintf(want, sizeof(want), ":%ld", (long)getpid());
    const char *name = wapi_name(w);
    assert_string_equal(name + strlen(name) - strlen(want), want); /* HOST:PID */
    assert_true(wire_name_ok(name, strlen(name)));
    wapi_close(w);
    wapi_close(NULL);
}

/* --- with a broker ----------------------------------------------------------------------- */

static void
test_jobs_come_in_order_and_acks_are_settled(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 4, 0);
    struct wapi_job j;

    push(e, "bob", "hello", 10);
    for (uint64_t id = 1; id <= 10; id++) {
        assert_int_equal(wapi_next(w, &j), 0);
        assert_int_equal(j.id, id);
        assert_int_equal(j.len, 5);
        assert_memory_equal(j.payload, "hello", 5);
        assert_true(sl_str_eq(j.group, "bob"));
        assert_true(sl_str_eq(j.queue, "default"));
        assert_int_equal(j.attempts, 1);
        assert_int_equal(j.max_attempts, 3);
        assert_int_equal(j.ttr_ms, 60000);
        assert_true(j.enq_ms > 0);
        wapi_ack(w, j.id);
        assert_true(counts(e).reserved <= 4); /* a batch at a time */
    }
    wapi_close(w);
    struct counts c = counts(e);
    assert_int_equal(c.done, 10);
    assert_int_equal(c.reserved, 0);
    assert_int_equal(c.ready, 0);
}

static bool
ten_done(struct env *e)
{
    return counts(e).done == 10;
}

static void
test_acks_are_sent_within_the_ack_delay_without_a_reserve(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 16, 0);
    struct wapi_job j;

    push(e, "bob", "x", 11);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(wapi_next(w, &j), 0);
        wapi_ack(w, j.id);
    }
    assert_int_equal(counts(e).done, 0); /* batched: nothing sent yet */
    nng_msleep(30);
    assert_int_equal(wapi_next(w, &j), 0); /* the 11th, from the batch: flushes the others */
    assert_true(eventually(e, ten_done, 1000));
    wapi_ack(w, j.id);
    wapi_close(w);
    assert_int_equal(counts(e).done, 11);
}

static void
test_release_all_gives_back_the_rest_in_order(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 5, 0);
    struct wapi_job j;

    push(e, "bob", "x", 5);
    assert_int_equal(wapi_next(w, &j), 0);
    assert_int_equal(j.id, 1);
    wapi_ack(w, j.id);
    wapi_release_all(w);
    struct counts c = counts(e);
    assert_int_equal(c.ready, 4);
    assert_int_equal(c.reserved, 1); /* the ack waits for the next reserve */
    for (uint64_t id = 2; id <= 5; id++) { /* released at the head, in their order */
        assert_int_equal(wapi_next(w, &j), 0);
        assert_int_equal(j.id, id);
        assert_int_equal(j.attempts, 2); /* a release keeps the attempt */
        wapi_ack(w, j.id);
    }
    wapi_close(w);
    assert_int_equal(counts(e).done, 5);
}

static void
test_close_sends_acks_and_releases_the_prefetched(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 6, 0);
    struct wapi_job j;

    push(e, "bob", "x", 6);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wapi_next(w, &j), 0);
        wapi_ack(w, j.id);
    }
    wapi_close(w);
    struct counts c = counts(e);
    assert_int_equal(c.done, 2);
    assert_int_equal(c.ready, 4);
    assert_int_equal(c.reserved, 0);
    assert_int_equal(c.failed, 0);
}

/* wapi_leave, for a program about to exit, settles as wapi_close does; only the socket is left
 * for the exit to close. */
static void
test_leave_settles_as_close_does(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 6, 0);
    struct wapi_job j;

    push(e, "bob", "x", 6);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wapi_next(w, &j), 0);
        wapi_ack(w, j.id);
    }
    wapi_leave(w);
    wapi_leave(NULL);
    struct counts c = counts(e);
    assert_int_equal(c.done, 2);
    assert_int_equal(c.ready, 4);
    assert_int_equal(c.reserved, 0);
    assert_int_equal(c.failed, 0);
}

/* wapi_settle sends and gives back all that wapi_close would, before any close: the broker
 * has it while the connection is still open, and nothing more is handed out. */
static void
test_settle_sends_everything_before_the_close(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 6, 0);
    struct wapi_job j;

    push(e, "bob", "x", 7);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wapi_next(w, &j), 0);
        wapi_ack(w, j.id);
    }
    wapi_settle(w);
    struct counts c = counts(e);
    assert_int_equal(c.done, 2);
    assert_int_equal(c.ready, 5);
    assert_int_equal(c.reserved, 0);
    assert_int_equal(wapi_next(w, &j), SL_ETIMEDOUT); /* settled: no more jobs */
    assert_int_equal(counts(e).reserved, 0);
    wapi_settle(w); /* again: nothing */
    wapi_close(w);
    c = counts(e);
    assert_int_equal(c.done, 2);
    assert_int_equal(c.ready, 5);
    assert_int_equal(c.failed, 0);
}

static void
test_nack_and_release_of_one_job(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 1, 0);
    struct wapi_job j;

    push(e, "bob", "x", 2);
    assert_int_equal(wapi_next(w, &j), 0);
    wapi_nack(w, j.id, 60000);
    assert_int_equal(wapi_next(w, &j), 0); /* the nack goes out before this reserve */
    assert_int_equal(j.id, 2);
    struct counts c = counts(e);
    assert_int_equal(c.delayed, 1);
    assert_int_equal(c.failed, 1);
    wapi_release(w, j.id);
    c = counts(e);
    assert_int_equal(c.ready, 1);
    assert_int_equal(c.reserved, 0);
    wapi_close(w);
}

static void
test_max_jobs_takes_only_what_it_runs(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 8, 3);
    struct wapi_job j;

    push(e, "bob", "x", 10);
    for (uint64_t id = 1; id <= 3; id++) {
        assert_int_equal(wapi_next(w, &j), 0);
        assert_int_equal(j.id, id);
        assert_true(counts(e).reserved <= 3);
        wapi_ack(w, j.id);
    }
    assert_int_equal(wapi_next(w, &j), SL_ETIMEDOUT);
    assert_int_equal(wapi_next(w, &j), SL_ETIMEDOUT);
    wapi_close(w);
    struct counts c = counts(e);
    assert_int_equal(c.done, 3);
    assert_int_equal(c.ready, 7);
    assert_int_equal(c.reserved, 0);
}

struct stopper {
    volatile sig_atomic_t *flag;
    unsigned after_ms;
};

static void
raise_later(void *arg)
{
    struct stopper *s = arg;
    nng_msleep(s->after_ms);
    *s->flag = 1;
}

static void
test_stop_ends_an_idle_wait(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 4, 0);
    struct wapi_job j;
    struct stopper s = { &e->stop, 150 };
    nng_thread *t;

    assert_int_equal(nng_thread_create(&t, raise_later, &s), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(wapi_next(w, &j), SL_ETIMEDOUT);
    uint64_t took = now_ms() - t0;
    assert_true(took >= 150 && took < 150 + 200 + 300); /* within one wait_ms (200) */
    nng_thread_destroy(t);
    wapi_close(w);
}

static bool
worker_busy_on_1(struct env *e)
{
    pthread_mutex_lock(&e->b->lock);
    struct worker *w = hmap_get(&e->b->workers, "t:1", 3);
    bool busy = w != NULL && strcmp(w->state, "busy") == 0 && w->current == 1 && w->pid > 0;
    pthread_mutex_unlock(&e->b->lock);
    return busy;
}

static void
test_a_busy_worker_is_reported_by_the_heartbeat(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 1, 0);
    struct wapi_job j;

    push(e, "bob", "x", 1);
    assert_int_equal(wapi_next(w, &j), 0);
    /* A long job: no request of ours for a while; the heartbeat says what we do. */
    assert_true(eventually(e, worker_busy_on_1, 2500));
    wapi_ack(w, j.id);
    wapi_close(w);
}

static uint64_t
broker_current(struct env *e)
{
    pthread_mutex_lock(&e->b->lock);
    struct worker *w = hmap_get(&e->b->workers, "t:1", 3);
    uint64_t cur = w != NULL ? w->current : UINT64_MAX;
    pthread_mutex_unlock(&e->b->lock);
    return cur;
}

static bool
broker_knows_job_1_runs(struct env *e)
{
    return broker_current(e) == 1;
}

static void
test_the_broker_knows_which_prefetched_job_runs(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 2, 0);
    struct wapi_job j;

    push(e, "bob", "x", 2);
    assert_int_equal(wapi_next(w, &j), 0);
    assert_int_equal(j.id, 1);
    assert_int_equal(broker_current(e), 0); /* two jobs in the reply: none known started */
    /* Job 1 runs: the broker is told soon (a crash is charged to it), well within the
     * heartbeat's second. */
    assert_true(eventually(e, broker_knows_job_1_runs, 600));
    wapi_ack(w, j.id);
    /* Job 2 is handed out only once the broker no longer takes job 1 (finished, its ack
     * pending) for the running one: a death during job 2 must not be charged to job 1. */
    assert_int_equal(wapi_next(w, &j), 0);
    assert_int_equal(j.id, 2);
    assert_int_not_equal(broker_current(e), 1);
    wapi_ack(w, j.id);
    wapi_close(w);
}

static uint64_t
broker_rtok(struct env *e, bool sent)
{
    pthread_mutex_lock(&e->b->lock);
    struct worker *w = hmap_get(&e->b->workers, "t:1", 3);
    uint64_t t = w == NULL ? UINT64_MAX : sent ? w->rtok_sent : w->rtok_seen;
    pthread_mutex_unlock(&e->b->lock);
    return t;
}

static void
test_reserves_carry_tokens_the_broker_tracks(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 2, 0);
    struct wapi_job j;

    push(e, "bob", "x", 3);
    assert_int_equal(wapi_next(w, &j), 0);
    assert_int_equal(broker_rtok(e, false), 1);
    assert_int_equal(broker_rtok(e, true), 1); /* answered with jobs, receipt not yet said */
    wapi_ack(w, j.id);
    assert_int_equal(wapi_next(w, &j), 0);
    wapi_ack(w, j.id);
    assert_int_equal(wapi_next(w, &j), 0); /* reserve 2: says it got reply 1 */
    assert_int_equal(j.id, 3);
    assert_int_equal(broker_rtok(e, false), 2);
    assert_int_equal(broker_rtok(e, true), 2);
    wapi_ack(w, j.id);
    wapi_close(w);
    assert_int_equal(counts(e).done, 3);
}

struct later {
    struct env *e;
    unsigned after_ms;
};

static void
start_later(void *arg)
{
    struct later *l = arg;
    nng_msleep(l->after_ms);
    broker_up(l->e);
    push(l->e, "bob", "late", 1);
}

static void
test_a_broker_that_starts_late_is_waited_for(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 1, 0);
    struct wapi_job j;
    struct later l = { e, 300 };
    nng_thread *t;

    assert_int_equal(nng_thread_create(&t, start_later, &l), 0);
    assert_int_equal(wapi_next(w, &j), 0);
    assert_memory_equal(j.payload, "late", 4);
    wapi_ack(w, j.id);
    nng_thread_destroy(t);
    wapi_close(w);
    assert_int_equal(counts(e).done, 1);
}

static void
test_stop_while_the_broker_is_unreachable(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 1, 0);
    struct wapi_job j;
    struct stopper s = { &e->stop, 200 };
    nng_thread *t;

    assert_int_equal(nng_thread_create(&t, raise_later, &s), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(wapi_next(w, &j), SL_ETIMEDOUT);
    assert_true(now_ms() - t0 < 1000);
    nng_thread_destroy(t);
    t0 = now_ms();
    wapi_close(w); /* nothing to say to nobody: no wait */
    assert_true(now_ms() - t0 < 500);
}

static void
test_a_broker_restart_voids_the_prefetched_jobs(void **state)
{
    struct env *e = *state;
    struct wapi *w = open_worker(e, 2, 0);
    struct wapi_job j;

    push(e, "bob", "old", 2);
    assert_int_equal(wapi_next(w, &j), 0);
    assert_memory_equal(j.payload, "old", 3);
    uint64_t old_id = j.id;
    /* The broker goes away with job 2 prefetched and job 1 running; a new one comes up once
     * the worker has noticed (until then it could still hand out job 2: at least once). */
    broker_down(e);
    uint64_t t0 = now_ms();
    while (wapi_connections(w) > 0 && now_ms() - t0 < 10000) {
        usleep(1000);
    }
    assert_int_equal(wapi_connections(w), 0);
    broker_up(e);
    push(e, "bob", "new", 2);
    wapi_ack(w, old_id); /* stale: the new broker must not take it for its own job 1 */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wapi_next(w, &j), 0);
        assert_memory_equal(j.payload, "new", 3); /* old job 2 was dropped, not run */
        wapi_ack(w, j.id);
    }
    wapi_close(w);
    struct counts c = counts(e);
    assert_int_equal(c.done, 2);
    assert_int_equal(c.reserved, 0);
}

/* --- a fake broker that answers badly ------------------------------------------------------ */

struct fake {
    nng_socket sock;
    nng_thread *thr;
    int mode;                  /* 0: garbage of many kinds; 1: one batch of good and bad jobs;
                                  2: io in place of the first reply, then one job */
    unsigned reserves;
    uint64_t rtok[8], rtok_got[8]; /* of the first reserves */
    uint64_t nacked[8];
    unsigned nnacked;
};

static void
pack_job(msgpack_packer *pk, uint64_t id, bool with_payload, bool bad_group)
{
    msgpack_pack_map(pk, with_payload ? 4 : 3);
    wire_pack_cstr(pk, "id");
    msgpack_pack_uint64(pk, id);
    wire_pack_cstr(pk, "group");
    if (bad_group) {
        msgpack_pack_uint64(pk, 5);
    } else {
        wire_pack_cstr(pk, "bob");
    }
    wire_pack_cstr(pk, "queue");
    wire_pack_cstr(pk, "default");
    if (with_payload) {
        wire_pack_cstr(pk, "payload");
        msgpack_pack_bin(pk, 1);
        msgpack_pack_bin_body(pk, "p", 1);
    }
}

static void
fake_serve(void *arg)
{
    struct fake *f = arg;
    static const char *const garbage[] = {
        "", "\xc1", "\x93\x01\x02\x03", "\x81\xa2ok\x01", "\x81\xa1x\x01",
        "\x82\xa2ok\xc3\xa4jobs\x05", "\x82\xa2ok\xc3\xa4jobs\x92\x01", "\x82\xa2ok\xc3\xa4jobs\x91",
        "\x83\xa2ok\xc2\xa3" "err\xa3zzz\xa3msg\xa1m",
    };
    for (unsigned n = 0;; n++) {
        nng_msg *req, *rep;
        struct wire_msg m;
        if (nng_recvmsg(f->sock, &req, 0) != 0) {
            return;
        }
        wire_msg_init(&m);
        wire_decode(&m, nng_msg_body(req), nng_msg_len(req), NULL, 0);
        bool is_reserve = WIRE_HAS(&m, WK_OP) && sl_str_eq(m.v[WK_OP].s, "reserve");
        bool is_nack = WIRE_HAS(&m, WK_OP) && sl_str_eq(m.v[WK_OP].s, "nack");
        if (is_nack && WIRE_HAS(&m, WK_IDS)) {
            for (uint32_t i = 0; i < m.v[WK_IDS].l.n && f->nnacked < 8; i++) {
                f->nacked[f->nnacked++] = wire_list_u64(&m.v[WK_IDS].l, i);
            }
        }
        nng_msg_alloc(&rep, 0);
        msgpack_packer pk;
        msgpack_packer_init(&pk, rep, wire_pack_into_msg);
        if (is_reserve) {
            if (f->reserves < 8) {
                f->rtok[f->reserves] = WIRE_HAS(&m, WK_RTOK) ? m.v[WK_RTOK].u : 0;
                f->rtok_got[f->reserves] = WIRE_HAS(&m, WK_RTOK_GOT) ? m.v[WK_RTOK_GOT].u : 0;
            }
            f->reserves++;
        }
        if (f->mode == 0 && is_reserve) {
            const char *g = garbage[n % (sizeof(garbage) / sizeof(garbage[0]))];
            nng_msg_append(rep, g, strlen(g));
        } else if (f->mode == 1 && is_reserve && f->reserves == 1) {
            wire_pack_ok(&pk, 1);
            wire_pack_key(&pk, WK_JOBS);
            msgpack_pack_array(&pk, 5);
            pack_job(&pk, 1, true, false);
            pack_job(&pk, 2, false, false);   /* no payload */
            msgpack_pack_uint64(&pk, 17);     /* not a map */
            pack_job(&pk, 3, true, true);     /* a group that is no string */
            pack_job(&pk, 4, true, false);
        } else if (f->mode == 2 && is_reserve && f->reserves == 1) {
            wire_pack_err(&pk, SL_EIO, "the journal cannot be written");
        } else if (f->mode == 2 && is_reserve && f->reserves == 2) {
            wire_pack_ok(&pk, 1);
            wire_pack_key(&pk, WK_JOBS);
            msgpack_pack_array(&pk, 1);
            pack_job(&pk, 7, true, false);
        } else if (is_reserve) {
            nng_msleep(20); /* a short long-poll */
            wire_pack_ok(&pk, 1);
            wire_pack_key(&pk, WK_JOBS);
            msgpack_pack_array(&pk, 0);
        } else {
            wire_pack_ok(&pk, 0);
        }
        wire_msg_fini(&m);
        nng_msg_free(req);
        if (nng_sendmsg(f->sock, rep, 0) != 0) {
            nng_msg_free(rep);
        }
    }
}

static void
fake_start(struct fake *f, struct env *e, int mode)
{
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    assert_int_equal(nng_rep0_open(&f->sock), 0);
    assert_int_equal(nng_listen(f->sock, e->url, NULL, 0), 0);
    assert_int_equal(nng_thread_create(&f->thr, fake_serve, f), 0);
}

static void
fake_stop(struct fake *f)
{
    nng_close(f->sock);
    nng_thread_destroy(f->thr);
}

static void
test_garbage_replies_never_crash_it(void **state)
{
    struct env *e = *state;
    struct fake f;
    struct wapi_job j;
    struct stopper s = { &e->stop, 1500 };
    nng_thread *t;

    fake_start(&f, e, 0);
    struct wapi *w = open_worker(e, 4, 0);
    assert_int_equal(nng_thread_create(&t, raise_later, &s), 0);
    assert_int_equal(wapi_next(w, &j), SL_ETIMEDOUT); /* no job out of all that */
    assert_true(f.reserves >= 5);                      /* it kept asking, with a backoff */
    nng_thread_destroy(t);
    wapi_close(w);
    fake_stop(&f);
}

static void
test_bad_jobs_are_skipped_and_nacked_good_ones_run(void **state)
{
    struct env *e = *state;
    struct fake f;
    struct wapi_job j;

    fake_start(&f, e, 1);
    struct wapi *w = open_worker(e, 8, 0);
    assert_int_equal(wapi_next(w, &j), 0);
    assert_int_equal(j.id, 1);
    wapi_ack(w, j.id);
    assert_int_equal(wapi_next(w, &j), 0);
    assert_int_equal(j.id, 4);
    wapi_ack(w, j.id);
    e->stop = 1;
    assert_int_equal(wapi_next(w, &j), SL_ETIMEDOUT);
    wapi_close(w);
    fake_stop(&f);
    /* The jobs with an id that could not be read were nacked (they fail and die in time). */
    assert_int_equal(f.nnacked, 2);
    assert_int_equal(f.nacked[0], 2);
    assert_int_equal(f.nacked[1], 3);
}

#define B(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define N(f) cmocka_unit_test_setup_teardown(f, setup_no_broker, teardown)

static void
test_a_reply_replaced_by_an_error_is_not_counted_received(void **state)
{
    struct env *e = *state;
    struct fake f;
    struct wapi_job j;

    fake_start(&f, e, 2);
    struct wapi *w = open_worker(e, 4, 0);
    assert_int_equal(wapi_next(w, &j), 0); /* after the io reply, the next reserve's job */
    assert_int_equal(j.id, 7);
    wapi_ack(w, j.id);
    e->stop = 1;
    assert_int_equal(wapi_next(w, &j), SL_ETIMEDOUT);
    wapi_close(w);
    fake_stop(&f);
    /* Reserve 1's reply was io, not its jobs: reserve 2 says it got none, so a broker gives
     * back whatever reserve 1 had taken for it. Reserve 2's reply arrived. */
    assert_true(f.reserves >= 2);
    assert_int_equal(f.rtok[0], 1);
    assert_int_equal(f.rtok_got[0], 0);
    assert_int_equal(f.rtok[1], 2);
    assert_int_equal(f.rtok_got[1], 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_refuses_bad_configuration),
        B(test_jobs_come_in_order_and_acks_are_settled),
        B(test_acks_are_sent_within_the_ack_delay_without_a_reserve),
        B(test_release_all_gives_back_the_rest_in_order),
        B(test_close_sends_acks_and_releases_the_prefetched),
        B(test_leave_settles_as_close_does),
        B(test_settle_sends_everything_before_the_close),
        B(test_nack_and_release_of_one_job),
        B(test_max_jobs_takes_only_what_it_runs),
        B(test_stop_ends_an_idle_wait),
        B(test_a_busy_worker_is_reported_by_the_heartbeat),
        B(test_the_broker_knows_which_prefetched_job_runs),
        B(test_reserves_carry_tokens_the_broker_tracks),
        N(test_a_broker_that_starts_late_is_waited_for),
        N(test_stop_while_the_broker_is_unreachable),
        B(test_a_broker_restart_voids_the_prefetched_jobs),
        N(test_garbage_replies_never_crash_it),
        N(test_bad_jobs_are_skipped_and_nacked_good_ones_run),
        N(test_a_reply_replaced_by_an_error_is_not_counted_received),
    };
    log_level = LOG_OFF;
    int rv = cmocka_run_group_tests(tests, NULL, NULL);
    /* No nng_fini(): nng 1.5.2 aborts in it while a closed socket is still being torn down
     * on its threads (see ctl/main.c). */
    return rv;
}
