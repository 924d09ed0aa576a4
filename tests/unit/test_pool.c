/* worker/pool, worker/pool_child: the slot lifecycle table (every state x event), the backoff,
 * and the pool driven through fake process ops: start, ready, restart, recycle, job timeout,
 * scale, rolling restart, shutdown, pool.status. No process is started here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "log.h"
#include "pool.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* --- the table ----------------------------------------------------------------------------- */

/* The table restated independently, "next/action", one row per state in enum order, one cell
 * per event in enum order: START READY EXIT_RECYCLE EXIT_FAIL EXIT_USAGE SPAWN_FAIL TIMER
 * RECYCLE HUNG STOP. */
static const char *const want[POOL_NSTATES][POOL_NEVENTS] = {
    [POOL_FREE] = { "starting/spawn", "free/none", "free/none", "free/none", "free/none",
                    "free/none", "free/none", "free/none", "free/none", "free/none" },
    [POOL_BACKOFF] = { "backoff/none", "backoff/none", "backoff/none", "backoff/none",
                       "backoff/none", "backoff/none", "starting/spawn", "backoff/none",
                       "backoff/none", "free/free" },
    [POOL_STARTING] = { "starting/none", "running/ready", "starting/spawn", "backoff/backoff",
                        "failed/fail", "backoff/backoff", "starting/none", "recycling/term",
                        "recycling/kill", "stopping/term" },
    [POOL_RUNNING] = { "running/none", "running/none", "starting/spawn", "backoff/backoff",
                       "failed/fail", "running/none", "running/none", "recycling/term",
                       "recycling/kill", "stopping/term" },
    [POOL_RECYCLING] = { "recycling/none", "recycling/none", "starting/spawn", "backoff/backoff",
                         "failed/fail", "recycling/none", "recycling/kill", "recycling/none",
                         "recycling/kill", "stopping/none" },
    [POOL_STOPPING] = { "stopping/none", "stopping/none", "free/free", "free/free", "free/free",
                        "stopping/none", "stopping/kill", "stopping/none", "stopping/kill",
                        "stopping/none" },
    [POOL_FAILED] = { "starting/spawn", "failed/none", "failed/none", "failed/none",
                      "failed/none", "failed/none", "failed/none", "failed/none", "failed/none",
                      "free/free" },
};

static void
test_table_every_cell_is_written_and_as_specified(void **state)
{
    (void)state;
    char got[64];
    for (int s = 0; s < POOL_NSTATES; s++) {
        for (int e = 0; e < POOL_NEVENTS; e++) {
            struct pool_transition t = pool_child_next((enum pool_state)s, (enum pool_event)e);
            assert_int_not_equal(t.action, POOL_A_UNDEF);
            assert_true(t.next < POOL_NSTATES);
            assert_true(t.action < POOL_NACTIONS);
            snprintf(got, sizeof(got), "%s/%s", pool_state_name((enum pool_state)t.next),
                     pool_action_name((enum pool_action)t.action));
            if (strcmp(got, want[s][e]) != 0) {
                fail_msg("state %s, event %s: got %s, want %s",
                         pool_state_name((enum pool_state)s), pool_event_name((enum pool_event)e),
                         got, want[s][e]);
            }
        }
    }
}

static void
test_table_out_of_range_is_undef(void **state)
{
    (void)state;
    assert_int_equal(pool_child_next(POOL_NSTATES, POOL_EV_START).action, POOL_A_UNDEF);
    assert_int_equal(pool_child_next(POOL_FREE, POOL_NEVENTS).action, POOL_A_UNDEF);
    assert_string_equal(pool_state_name(POOL_NSTATES), "?");
    assert_string_equal(pool_event_name(POOL_NEVENTS), "?");
}

/* Only states with a process react to process events by touching it: no SIGTERM or SIGKILL is
 * ever sent from a state without one. */
static void
test_table_signals_only_states_with_a_process(void **state)
{
    (void)state;
    const enum pool_state noproc[] = { POOL_FREE, POOL_BACKOFF, POOL_FAILED };
    for (size_t i = 0; i < sizeof(noproc) / sizeof(noproc[0]); i++) {
        for (int e = 0; e < POOL_NEVENTS; e++) {
            struct pool_transition t = pool_child_next(noproc[i], (enum pool_event)e);
            assert_int_not_equal(t.action, POOL_A_TERM);
            assert_int_not_equal(t.action, POOL_A_KILL);
        }
    }
}

/* --- backoff ------------------------------------------------------------------------------- */

static void
test_backoff_doubles_from_100ms_to_30s(void **state)
{
    (void)state;
    assert_int_equal(pool_backoff_ms(0), 100);
    assert_int_equal(pool_backoff_ms(1), 100);
    assert_int_equal(pool_backoff_ms(2), 200);
    assert_int_equal(pool_backoff_ms(3), 400);
    assert_int_equal(pool_backoff_ms(9), 25600);
    assert_int_equal(pool_backoff_ms(10), 30000);
    assert_int_equal(pool_backoff_ms(11), 30000);
    assert_int_equal(pool_backoff_ms(1000000), 30000);
}

/* --- the pool with fake processes ---------------------------------------------------------- */

#define SIGS_MAX 256

struct fake {
    int next_pid;
    unsigned spawns;
    bool fail_spawn;
    uint64_t rss;
    struct worker_status pages[64];
    struct {
        int pid, sig;
    } sigs[SIGS_MAX];
    unsigned nsigs;
};

static int
fake_spawn(void *arg, struct pool_slot *s, const char *name)
{
    struct fake *f = arg;
    (void)name;
    assert_true(s->idx < 64);
    if (f->fail_spawn) {
        return SL_EIO;
    }
    s->pid = f->next_pid++;
    s->page = &f->pages[s->idx];
    memset(s->page, 0, sizeof(*s->page));
    s->page->magic = WORKER_STATUS_MAGIC;
    s->page->version = WORKER_STATUS_VERSION;
    f->spawns++;
    return 0;
}

static void
fake_signal(void *arg, int pid, int sig)
{
    struct fake *f = arg;
    assert_true(pid > 0);
    assert_true(f->nsigs < SIGS_MAX);
    f->sigs[f->nsigs].pid = pid;
    f->sigs[f->nsigs].sig = sig;
    f->nsigs++;
}

static uint64_t
fake_rss(void *arg, int pid)
{
    const struct fake *f = arg;
    (void)pid;
    return f->rss;
}

static void
fake_release(void *arg, struct pool_slot *s)
{
    (void)arg;
    s->page = NULL;
}

/* The last signal sent to pid, or 0. */
static int
last_sig(const struct fake *f, int pid)
{
    for (unsigned i = f->nsigs; i-- > 0;) {
        if (f->sigs[i].pid == pid) {
            return f->sigs[i].sig;
        }
    }
    return 0;
}

struct env {
    struct fake f;
    struct pool p;
    uint64_t now;
};

static struct env *
env_new(uint32_t n, uint64_t max_jobs, uint64_t job_timeout_ms, uint64_t max_memory)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->f.next_pid = 1000;
    e->now = 1000000;
    struct pool_ops ops = { fake_spawn, fake_signal, fake_rss, fake_release, &e->f };
    struct pool_params par = { n, 30000, job_timeout_ms, max_memory, max_jobs, "host:42" };
    assert_int_equal(pool_init(&e->p, &par, &ops), 0);
    return e;
}

static void
env_free(struct env *e)
{
    pool_fini(&e->p);
    free(e);
}

static struct pool_slot *
slot(struct env *e, uint32_t i)
{
    return &e->p.slots[i];
}

/* Marks slot i's worker idle on its status page and lets the pool see it. */
static void
make_ready(struct env *e, uint32_t i)
{
    atomic_store(&slot(e, i)->page->pid, (uint64_t)slot(e, i)->pid);
    atomic_store(&slot(e, i)->page->state, WORKER_IDLE);
    pool_tick(&e->p, e->now);
}

static int
exited(int code)
{
    return (code & 0xff) << 8; /* as waitpid reports exit(code) */
}

static int
killed_by(int sig)
{
    return sig & 0x7f;
}

static uint32_t
count_state(struct env *e, enum pool_state st)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < POOL_SLOTS_MAX; i++) {
        n += e->p.slots[i].state == st;
    }
    return n;
}

static void
test_reconcile_starts_n_workers_named_prefix_slot(void **state)
{
    (void)state;
    struct env *e = env_new(3, 0, 0, 0);
    char name[WIRE_NAME_MAX + 1];
    pool_reconcile(&e->p, e->now);
    assert_int_equal(e->f.spawns, 3);
    assert_int_equal(count_state(e, POOL_STARTING), 3);
    assert_int_equal(pool_live(&e->p), 3);
    pool_slot_name(&e->p, slot(e, 2), name, sizeof(name));
    assert_string_equal(name, "host:42:2");
    make_ready(e, 0);
    assert_int_equal(slot(e, 0)->state, POOL_RUNNING);
    assert_int_equal(slot(e, 1)->state, POOL_STARTING);
    env_free(e);
}

static void
test_worker_that_never_reports_counts_as_ready_after_a_while(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    pool_tick(&e->p, e->now + POOL_UNREPORTED_READY_MS - 1);
    assert_int_equal(slot(e, 0)->state, POOL_STARTING);
    pool_tick(&e->p, e->now + POOL_UNREPORTED_READY_MS);
    assert_int_equal(slot(e, 0)->state, POOL_RUNNING);
    env_free(e);
}

static void
test_crash_restarts_with_doubling_backoff_reset_after_a_healthy_run(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    uint64_t delays[4];
    for (int i = 0; i < 4; i++) {
        e->now += 50; /* crashes 50 ms after each start */
        assert_true(pool_reaped(&e->p, slot(e, 0)->pid, killed_by(SIGSEGV), e->now));
        assert_int_equal(slot(e, 0)->state, POOL_BACKOFF);
        assert_int_equal(slot(e, 0)->pid, 0);
        delays[i] = slot(e, 0)->due_ms - e->now;
        pool_tick(&e->p, slot(e, 0)->due_ms - 1);
        assert_int_equal(slot(e, 0)->state, POOL_BACKOFF); /* not before it is due */
        e->now = slot(e, 0)->due_ms;
        pool_tick(&e->p, e->now);
        assert_int_equal(slot(e, 0)->state, POOL_STARTING);
    }
    assert_int_equal(delays[0], 100);
    assert_int_equal(delays[1], 200);
    assert_int_equal(delays[2], 400);
    assert_int_equal(delays[3], 800);
    assert_int_equal(slot(e, 0)->restarts, 4);
    /* A run of 10 s counts as healthy: the next failure waits the minimum again. */
    e->now += POOL_HEALTHY_MS;
    assert_true(pool_reaped(&e->p, slot(e, 0)->pid, exited(1), e->now));
    assert_int_equal(slot(e, 0)->due_ms - e->now, 100);
    env_free(e);
}

static void
test_exit_2_is_not_restarted_and_sighup_retries(void **state)
{
    (void)state;
    struct env *e = env_new(2, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    assert_true(pool_reaped(&e->p, slot(e, 0)->pid, exited(2), e->now));
    assert_int_equal(slot(e, 0)->state, POOL_FAILED);
    pool_tick(&e->p, e->now + 3600000);
    assert_int_equal(slot(e, 0)->state, POOL_FAILED);
    assert_int_equal(e->f.spawns, 2); /* neither restarted nor replaced by another slot */
    pool_roll(&e->p, e->now);
    assert_int_equal(slot(e, 0)->state, POOL_STARTING);
    env_free(e);
}

static void
test_unknown_pid_is_not_ours(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    assert_false(pool_reaped(&e->p, 4242, exited(0), e->now));
    assert_false(pool_reaped(&e->p, 0, exited(0), e->now));
    assert_int_equal(slot(e, 0)->state, POOL_STARTING);
    env_free(e);
}

static void
test_exit_0_after_max_jobs_restarts_at_once(void **state)
{
    (void)state;
    struct env *e = env_new(1, 5, 0, 0);
    pool_reconcile(&e->p, e->now);
    make_ready(e, 0);
    atomic_store(&slot(e, 0)->page->jobs_done, 4);
    atomic_store(&slot(e, 0)->page->jobs_failed, 1);
    int old = slot(e, 0)->pid;
    assert_true(pool_reaped(&e->p, old, exited(0), e->now));
    assert_int_equal(slot(e, 0)->state, POOL_STARTING);
    assert_int_not_equal(slot(e, 0)->pid, old);
    assert_int_equal(slot(e, 0)->restarts, 1);
    assert_int_equal(slot(e, 0)->due_ms, 0);
    env_free(e);
}

static void
test_exit_0_short_of_max_jobs_or_without_it_backs_off(void **state)
{
    (void)state;
    struct env *e = env_new(1, 5, 0, 0);
    pool_reconcile(&e->p, e->now);
    make_ready(e, 0);
    atomic_store(&slot(e, 0)->page->jobs_done, 2);
    assert_true(pool_reaped(&e->p, slot(e, 0)->pid, exited(0), e->now));
    assert_int_equal(slot(e, 0)->state, POOL_BACKOFF);
    env_free(e);

    e = env_new(1, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    assert_true(pool_reaped(&e->p, slot(e, 0)->pid, exited(0), e->now));
    assert_int_equal(slot(e, 0)->state, POOL_BACKOFF);
    env_free(e);
}

static void
test_max_memory_recycles_gracefully_and_restarts_at_once(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0, 0, 100 << 20);
    pool_reconcile(&e->p, e->now);
    make_ready(e, 0);
    e->f.rss = 100 << 20;
    e->now += POOL_MEM_CHECK_MS;
    pool_tick(&e->p, e->now);
    assert_int_equal(slot(e, 0)->state, POOL_RUNNING); /* at the limit is not above it */
    e->f.rss = (100 << 20) + 1;
    pool_tick(&e->p, e->now + 1);
    assert_int_equal(slot(e, 0)->state, POOL_RUNNING); /* read once a second only */
    e->now += POOL_MEM_CHECK_MS;
    pool_tick(&e->p, e->now);
    int pid = slot(e, 0)->pid;
    assert_int_equal(slot(e, 0)->state, POOL_RECYCLING);
    assert_int_equal(last_sig(&e->f, pid), SIGTERM);
    assert_int_equal(slot(e, 0)->due_ms, e->now + 30000 + POOL_GRACE_MS);
    assert_true(pool_reaped(&e->p, pid, exited(0), e->now + 200));
    assert_int_equal(slot(e, 0)->state, POOL_STARTING);
    env_free(e);
}

static void
test_job_timeout_kills_and_restarts_after_backoff(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0, 5000, 0);
    pool_reconcile(&e->p, e->now);
    make_ready(e, 0);
    struct worker_status *pg = slot(e, 0)->page;
    atomic_store(&pg->current_id, 77);
    atomic_store(&pg->current_start_ms, e->now);
    atomic_store(&pg->state, WORKER_BUSY);
    pool_tick(&e->p, e->now + 5000);
    assert_int_equal(slot(e, 0)->state, POOL_RUNNING); /* at the limit is not past it */
    pool_tick(&e->p, e->now + 5001);
    int pid = slot(e, 0)->pid;
    assert_int_equal(slot(e, 0)->state, POOL_RECYCLING);
    assert_int_equal(last_sig(&e->f, pid), SIGKILL);
    unsigned nsigs = e->f.nsigs;
    pool_tick(&e->p, e->now + 6000);
    assert_int_equal(e->f.nsigs, nsigs); /* killed once */
    assert_true(pool_reaped(&e->p, pid, killed_by(SIGKILL), e->now + 6001));
    assert_int_equal(slot(e, 0)->state, POOL_BACKOFF);
    env_free(e);
}

static void
test_spawn_failure_backs_off_and_retries(void **state)
{
    (void)state;
    struct env *e = env_new(1, 0, 0, 0);
    e->f.fail_spawn = true;
    pool_reconcile(&e->p, e->now);
    assert_int_equal(slot(e, 0)->state, POOL_BACKOFF);
    assert_int_equal(slot(e, 0)->due_ms, e->now + 100);
    e->f.fail_spawn = false;
    pool_tick(&e->p, e->now + 100);
    assert_int_equal(slot(e, 0)->state, POOL_STARTING);
    assert_int_equal(count_state(e, POOL_BACKOFF) + count_state(e, POOL_STARTING), 1);
    env_free(e);
}

static void
test_scale_down_stops_the_highest_slots_gracefully_then_up_reuses_free_ones(void **state)
{
    (void)state;
    struct env *e = env_new(4, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    for (uint32_t i = 0; i < 4; i++) {
        make_ready(e, i);
    }
    assert_int_equal(pool_scale(&e->p, 2, e->now), 0);
    assert_int_equal(slot(e, 3)->state, POOL_STOPPING);
    assert_int_equal(slot(e, 2)->state, POOL_STOPPING);
    assert_int_equal(last_sig(&e->f, slot(e, 3)->pid), SIGTERM);
    assert_int_equal(slot(e, 1)->state, POOL_RUNNING);
    assert_int_equal(slot(e, 0)->state, POOL_RUNNING);
    /* Up again while 2 and 3 still drain: new workers take slots no live process holds. */
    assert_int_equal(pool_scale(&e->p, 4, e->now), 0);
    assert_int_equal(slot(e, 4)->state, POOL_STARTING);
    assert_int_equal(slot(e, 5)->state, POOL_STARTING);
    /* A stopping worker that exits frees its slot and is not restarted; its number is given
     * to a new worker only POOL_REUSE_MS later, so the broker has seen the old one leave. */
    assert_true(pool_reaped(&e->p, slot(e, 3)->pid, exited(0), e->now));
    assert_int_equal(slot(e, 3)->state, POOL_FREE);
    assert_int_equal(pool_scale(&e->p, 5, e->now + POOL_REUSE_MS - 1), 0);
    assert_int_equal(slot(e, 3)->state, POOL_FREE);
    assert_int_equal(slot(e, 6)->state, POOL_STARTING);
    assert_int_equal(pool_scale(&e->p, 6, e->now + POOL_REUSE_MS), 0);
    assert_int_equal(slot(e, 3)->state, POOL_STARTING);
    assert_int_equal(slot(e, 3)->restarts, 0);
    assert_int_equal(pool_scale(&e->p, 0, e->now), 0);
    assert_int_equal(count_state(e, POOL_STOPPING), 7);
    env_free(e);
}

static void
test_stop_drains_then_kills_at_the_deadline(void **state)
{
    (void)state;
    struct env *e = env_new(3, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    make_ready(e, 0);
    make_ready(e, 1);
    assert_true(pool_reaped(&e->p, slot(e, 2)->pid, exited(1), e->now)); /* in backoff */
    pool_stop(&e->p, e->now);
    assert_int_equal(slot(e, 2)->state, POOL_FREE);
    assert_int_equal(last_sig(&e->f, slot(e, 0)->pid), SIGTERM);
    assert_int_equal(last_sig(&e->f, slot(e, 1)->pid), SIGTERM);
    assert_int_equal(pool_scale(&e->p, 5, e->now), SL_EFORBIDDEN);
    assert_false(pool_done(&e->p));
    assert_true(pool_reaped(&e->p, slot(e, 0)->pid, exited(0), e->now + 10));
    assert_int_equal(slot(e, 0)->state, POOL_FREE); /* not restarted */
    assert_int_equal(pool_next_due(&e->p), e->now + 30000 + POOL_GRACE_MS);
    pool_tick(&e->p, e->now + 30000 + POOL_GRACE_MS - 1);
    assert_int_equal(last_sig(&e->f, slot(e, 1)->pid), SIGTERM);
    pool_tick(&e->p, e->now + 30000 + POOL_GRACE_MS);
    assert_int_equal(last_sig(&e->f, slot(e, 1)->pid), SIGKILL);
    assert_int_equal(pool_next_due(&e->p), 0);
    assert_true(pool_reaped(&e->p, slot(e, 1)->pid, killed_by(SIGKILL), e->now + 32001));
    assert_true(pool_done(&e->p));
    assert_int_equal(e->f.spawns, 3);
    env_free(e);
}

static void
test_kill_all_kills_every_live_worker(void **state)
{
    (void)state;
    struct env *e = env_new(2, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    pool_stop(&e->p, e->now);
    pool_kill_all(&e->p);
    assert_int_equal(last_sig(&e->f, slot(e, 0)->pid), SIGKILL);
    assert_int_equal(last_sig(&e->f, slot(e, 1)->pid), SIGKILL);
    env_free(e);
}

/* Workers serving: RUNNING and not told to stop. */
static uint32_t
serving(struct env *e)
{
    return count_state(e, POOL_RUNNING);
}

static void
test_rolling_restart_replaces_each_worker_never_serving_fewer_than_n(void **state)
{
    (void)state;
    const uint32_t n = 3;
    struct env *e = env_new(n, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    for (uint32_t i = 0; i < n; i++) {
        make_ready(e, i);
    }
    uint64_t before = e->p.spawn_seq;
    pool_roll(&e->p, e->now);
    for (int step = 0; step < 20 && e->p.roll_before != 0; step++) {
        assert_true(serving(e) >= n);
        /* Exactly one replacement is coming up at a time. */
        assert_int_equal(count_state(e, POOL_STARTING), 1);
        uint32_t nw = (uint32_t)e->p.roll_new, old = (uint32_t)e->p.roll_old;
        assert_true(slot(e, nw)->seq > before);
        assert_true(slot(e, old)->seq <= before);
        int old_pid = slot(e, old)->pid;
        make_ready(e, nw);
        assert_int_equal(slot(e, old)->state, POOL_STOPPING);
        assert_int_equal(last_sig(&e->f, old_pid), SIGTERM);
        assert_true(serving(e) >= n);
        e->now += 10;
        assert_true(pool_reaped(&e->p, old_pid, exited(0), e->now));
    }
    assert_int_equal(e->p.roll_before, 0);
    assert_int_equal(serving(e), n);
    assert_int_equal(pool_live(&e->p), n);
    for (uint32_t i = 0; i < POOL_SLOTS_MAX; i++) {
        if (slot(e, i)->pid > 0) {
            assert_true(slot(e, i)->seq > before);
        }
    }
    env_free(e);
}

static void
test_rolling_restart_is_abandoned_when_the_new_worker_exits_2(void **state)
{
    (void)state;
    struct env *e = env_new(2, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    make_ready(e, 0);
    make_ready(e, 1);
    pool_roll(&e->p, e->now);
    uint32_t nw = (uint32_t)e->p.roll_new;
    assert_true(pool_reaped(&e->p, slot(e, nw)->pid, exited(2), e->now));
    assert_int_equal(e->p.roll_before, 0);
    assert_int_equal(slot(e, nw)->state, POOL_FREE);
    assert_int_equal(slot(e, 0)->state, POOL_RUNNING);
    assert_int_equal(slot(e, 1)->state, POOL_RUNNING);
    assert_int_equal(pool_live(&e->p), 2);
    env_free(e);
}

static void
test_scale_down_during_a_rolling_restart_keeps_the_count_exact(void **state)
{
    (void)state;
    struct env *e = env_new(3, 0, 0, 0);
    pool_reconcile(&e->p, e->now);
    for (uint32_t i = 0; i < 3; i++) {
        make_ready(e, i);
    }
    pool_roll(&e->p, e->now);
    assert_int_equal(pool_live(&e->p), 4);
    assert_int_equal(pool_scale(&e->p, 1, e->now), 0);
    /* Counted: BACKOFF STARTING RUNNING RECYCLING FAILED; a replacement may be one more. */
    uint32_t counted = count_state(e, POOL_STARTING) + count_state(e, POOL_RUNNING);
    assert_true(counted == 1 || (counted == 2 && e->p.roll_new >= 0));
    env_free(e);
}

static void
test_name_prefix_replaces_bytes_a_name_may_not_hold(void **state)
{
    (void)state;
    char out[POOL_PREFIX_MAX + 1];
    char longhost[300];
    pool_name_prefix(out, sizeof(out), "my host/é", 12);
    assert_string_equal(out, "my_host___:12");
    assert_true(wire_name_ok(out, strlen(out)));
    pool_name_prefix(out, sizeof(out), "", 7);
    assert_string_equal(out, "h:7");
    memset(longhost, 'a', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = '\0';
    pool_name_prefix(out, sizeof(out), longhost, 4194304);
    assert_true(strlen(out) <= POOL_PREFIX_MAX);
    assert_true(wire_name_ok(out, strlen(out)));
}

int
main(void)
{
    log_level = LOG_OFF;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_every_cell_is_written_and_as_specified),
        cmocka_unit_test(test_table_out_of_range_is_undef),
        cmocka_unit_test(test_table_signals_only_states_with_a_process),
        cmocka_unit_test(test_backoff_doubles_from_100ms_to_30s),
        cmocka_unit_test(test_reconcile_starts_n_workers_named_prefix_slot),
        cmocka_unit_test(test_worker_that_never_reports_counts_as_ready_after_a_while),
        cmocka_unit_test(test_crash_restarts_with_doubling_backoff_reset_after_a_healthy_run),
        cmocka_unit_test(test_exit_2_is_not_restarted_and_sighup_retries),
        cmocka_unit_test(test_unknown_pid_is_not_ours),
        cmocka_unit_test(test_exit_0_after_max_jobs_restarts_at_once),
        cmocka_unit_test(test_exit_0_short_of_max_jobs_or_without_it_backs_off),
        cmocka_unit_test(test_max_memory_recycles_gracefully_and_restarts_at_once),
        cmocka_unit_test(test_job_timeout_kills_and_restarts_after_backoff),
        cmocka_unit_test(test_spawn_failure_backs_off_and_retries),
        cmocka_unit_test(test_scale_down_stops_the_highest_slots_gracefully_then_up_reuses_free_ones),
        cmocka_unit_test(test_stop_drains_then_kills_at_the_deadline),
        cmocka_unit_test(test_kill_all_kills_every_live_worker),
        cmocka_unit_test(test_rolling_restart_replaces_each_worker_never_serving_fewer_than_n),
        cmocka_unit_test(test_rolling_restart_is_abandoned_when_the_new_worker_exits_2),
        cmocka_unit_test(test_scale_down_during_a_rolling_restart_keeps_the_count_exact),
        cmocka_unit_test(test_name_prefix_replaces_bytes_a_name_may_not_hold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
