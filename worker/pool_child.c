#include "pool.h"

#include "log.h"

#include <signal.h>

#define T(st, act) { POOL_##st, POOL_A_##act }

/* The lifecycle of a slot: one row per state, one cell per event (pool_child.h has the map). */
static const struct pool_transition actions[POOL_NSTATES][POOL_NEVENTS] = {
    [POOL_FREE] = {
        [POOL_EV_START] = T(STARTING, SPAWN),
        [POOL_EV_READY] = T(FREE, NONE),
        [POOL_EV_EXIT_RECYCLE] = T(FREE, NONE),
        [POOL_EV_EXIT_FAIL] = T(FREE, NONE),
        [POOL_EV_EXIT_USAGE] = T(FREE, NONE),
        [POOL_EV_SPAWN_FAIL] = T(FREE, NONE),
        [POOL_EV_TIMER] = T(FREE, NONE),
        [POOL_EV_RECYCLE] = T(FREE, NONE),
        [POOL_EV_HUNG] = T(FREE, NONE),
        [POOL_EV_STOP] = T(FREE, NONE),
    },
    [POOL_BACKOFF] = {
        [POOL_EV_START] = T(BACKOFF, NONE),      /* already wanted: starts when due */
        [POOL_EV_READY] = T(BACKOFF, NONE),
        [POOL_EV_EXIT_RECYCLE] = T(BACKOFF, NONE),
        [POOL_EV_EXIT_FAIL] = T(BACKOFF, NONE),
        [POOL_EV_EXIT_USAGE] = T(BACKOFF, NONE),
        [POOL_EV_SPAWN_FAIL] = T(BACKOFF, NONE),
        [POOL_EV_TIMER] = T(STARTING, SPAWN),
        [POOL_EV_RECYCLE] = T(BACKOFF, NONE),
        [POOL_EV_HUNG] = T(BACKOFF, NONE),
        [POOL_EV_STOP] = T(FREE, FREE),
    },
    [POOL_STARTING] = {
        [POOL_EV_START] = T(STARTING, NONE),
        [POOL_EV_READY] = T(RUNNING, READY),
        [POOL_EV_EXIT_RECYCLE] = T(STARTING, SPAWN), /* --max-jobs reached before we looked */
        [POOL_EV_EXIT_FAIL] = T(BACKOFF, BACKOFF),
        [POOL_EV_EXIT_USAGE] = T(FAILED, FAIL),
        [POOL_EV_SPAWN_FAIL] = T(BACKOFF, BACKOFF),
        [POOL_EV_TIMER] = T(STARTING, NONE),
        [POOL_EV_RECYCLE] = T(RECYCLING, TERM),
        [POOL_EV_HUNG] = T(RECYCLING, KILL),
        [POOL_EV_STOP] = T(STOPPING, TERM),
    },
    [POOL_RUNNING] = {
        [POOL_EV_START] = T(RUNNING, NONE),
        [POOL_EV_READY] = T(RUNNING, NONE),
        [POOL_EV_EXIT_RECYCLE] = T(STARTING, SPAWN),
        [POOL_EV_EXIT_FAIL] = T(BACKOFF, BACKOFF),
        [POOL_EV_EXIT_USAGE] = T(FAILED, FAIL),
        [POOL_EV_SPAWN_FAIL] = T(RUNNING, NONE),
        [POOL_EV_TIMER] = T(RUNNING, NONE),
        [POOL_EV_RECYCLE] = T(RECYCLING, TERM),
        [POOL_EV_HUNG] = T(RECYCLING, KILL),
        [POOL_EV_STOP] = T(STOPPING, TERM),
    },
    [POOL_RECYCLING] = {
        [POOL_EV_START] = T(RECYCLING, NONE),
        [POOL_EV_READY] = T(RECYCLING, NONE),
        [POOL_EV_EXIT_RECYCLE] = T(STARTING, SPAWN),
        /* Killed (hung, or past its deadline): a failure, so a job that hangs every worker
         * it meets does not make the pool spin. */
        [POOL_EV_EXIT_FAIL] = T(BACKOFF, BACKOFF),
        [POOL_EV_EXIT_USAGE] = T(FAILED, FAIL),
        [POOL_EV_SPAWN_FAIL] = T(RECYCLING, NONE),
        [POOL_EV_TIMER] = T(RECYCLING, KILL),
        [POOL_EV_RECYCLE] = T(RECYCLING, NONE),
        [POOL_EV_HUNG] = T(RECYCLING, KILL),
        [POOL_EV_STOP] = T(STOPPING, NONE),      /* already told; its deadline stands */
    },
    [POOL_STOPPING] = {
        [POOL_EV_START] = T(STOPPING, NONE),     /* a new process takes another slot */
        [POOL_EV_READY] = T(STOPPING, NONE),
        [POOL_EV_EXIT_RECYCLE] = T(FREE, FREE),
        [POOL_EV_EXIT_FAIL] = T(FREE, FREE),
        [POOL_EV_EXIT_USAGE] = T(FREE, FREE),
        [POOL_EV_SPAWN_FAIL] = T(STOPPING, NONE),
        [POOL_EV_TIMER] = T(STOPPING, KILL),
        [POOL_EV_RECYCLE] = T(STOPPING, NONE),
        [POOL_EV_HUNG] = T(STOPPING, KILL),
        [POOL_EV_STOP] = T(STOPPING, NONE),
    },
    [POOL_FAILED] = {
        [POOL_EV_START] = T(STARTING, SPAWN),    /* SIGHUP retries */
        [POOL_EV_READY] = T(FAILED, NONE),
        [POOL_EV_EXIT_RECYCLE] = T(FAILED, NONE),
        [POOL_EV_EXIT_FAIL] = T(FAILED, NONE),
        [POOL_EV_EXIT_USAGE] = T(FAILED, NONE),
        [POOL_EV_SPAWN_FAIL] = T(FAILED, NONE),
        [POOL_EV_TIMER] = T(FAILED, NONE),
        [POOL_EV_RECYCLE] = T(FAILED, NONE),
        [POOL_EV_HUNG] = T(FAILED, NONE),
        [POOL_EV_STOP] = T(FREE, FREE),
    },
};

#undef T

struct pool_transition
pool_child_next(enum pool_state state, enum pool_event event)
{
    if ((unsigned)state >= POOL_NSTATES || (unsigned)event >= POOL_NEVENTS) {
        return (struct pool_transition){ (uint8_t)state, POOL_A_UNDEF };
    }
    return actions[state][event];
}

uint64_t
pool_backoff_ms(unsigned fails)
{
    uint64_t ms = POOL_BACKOFF_MS_MIN;

    for (unsigned i = 1; i < fails && ms < POOL_BACKOFF_MS_MAX; i++) {
        ms *= 2;
    }
    return ms < POOL_BACKOFF_MS_MAX ? ms : POOL_BACKOFF_MS_MAX;
}

const char *
pool_state_name(enum pool_state s)
{
    static const char *const names[POOL_NSTATES] = {
        [POOL_FREE] = "free",         [POOL_BACKOFF] = "backoff",     [POOL_STARTING] = "starting",
        [POOL_RUNNING] = "running",   [POOL_RECYCLING] = "recycling", [POOL_STOPPING] = "stopping",
        [POOL_FAILED] = "failed",
    };
    return (unsigned)s < POOL_NSTATES ? names[s] : "?";
}

const char *
pool_event_name(enum pool_event e)
{
    static const char *const names[POOL_NEVENTS] = {
        [POOL_EV_START] = "start",           [POOL_EV_READY] = "ready",
        [POOL_EV_EXIT_RECYCLE] = "exit_recycle", [POOL_EV_EXIT_FAIL] = "exit_fail",
        [POOL_EV_EXIT_USAGE] = "exit_usage", [POOL_EV_SPAWN_FAIL] = "spawn_fail",
        [POOL_EV_TIMER] = "timer",           [POOL_EV_RECYCLE] = "recycle",
        [POOL_EV_HUNG] = "hung",             [POOL_EV_STOP] = "stop",
    };
    return (unsigned)e < POOL_NEVENTS ? names[e] : "?";
}

const char *
pool_action_name(enum pool_action a)
{
    static const char *const names[POOL_NACTIONS] = {
        [POOL_A_UNDEF] = "undef", [POOL_A_NONE] = "none",       [POOL_A_READY] = "ready",
        [POOL_A_SPAWN] = "spawn", [POOL_A_BACKOFF] = "backoff", [POOL_A_FAIL] = "fail",
        [POOL_A_TERM] = "term",   [POOL_A_KILL] = "kill",       [POOL_A_FREE] = "free",
    };
    return (unsigned)a < POOL_NACTIONS ? names[a] : "?";
}

/* Runs action a on s, which has just left state prev on event ev. Returns the follow-up
 * event, or POOL_NEVENTS for none. */
static enum pool_event
run(struct pool *p, struct pool_slot *s, enum pool_state prev, enum pool_event ev,
    enum pool_action a, uint64_t now)
{
    char name[WIRE_NAME_MAX + 1];

    pool_slot_name(p, s, name, sizeof(name));
    switch (a) {
    case POOL_A_UNDEF:
    case POOL_A_NONE:
    case POOL_NACTIONS:
        break;
    case POOL_A_READY:
        LOG(LOG_INFO, "worker.ready", "slot=%u worker=%s pid=%d start_ms=%llu", s->idx, name,
            s->pid, (unsigned long long)(now - s->started_ms));
        break;
    case POOL_A_SPAWN:
        if (prev == POOL_FREE) {
            s->restarts = 0; /* a new worker in this slot, not a restart */
            s->fails = 0;
        } else {
            s->restarts++;
        }
        s->seq = ++p->spawn_seq;
        s->started_ms = now;
        s->due_ms = 0;
        s->killed = false;
        s->pid = 0;
        if (p->ops.spawn(p->ops.arg, s, name) != 0) {
            return POOL_EV_SPAWN_FAIL;
        }
        LOG(LOG_INFO, "worker.start", "slot=%u worker=%s pid=%d restarts=%llu", s->idx, name,
            s->pid, (unsigned long long)s->restarts);
        break;
    case POOL_A_BACKOFF:
        if (now - s->started_ms >= POOL_HEALTHY_MS) {
            s->fails = 0;
        }
        s->fails++;
        s->pid = 0;
        s->due_ms = now + pool_backoff_ms(s->fails);
        LOG(LOG_INFO, "worker.backoff", "slot=%u worker=%s fails=%u delay_ms=%llu", s->idx, name,
            s->fails, (unsigned long long)(s->due_ms - now));
        break;
    case POOL_A_FAIL:
        s->pid = 0;
        s->due_ms = 0;
        LOG(LOG_ERROR, "worker.failed", "slot=%u worker=%s reason=\"the worker exited 2 (usage "
            "error): not restarted; check its arguments, then SIGHUP retries\"", s->idx, name);
        break;
    case POOL_A_TERM:
        if (s->pid > 0) {
            p->ops.signal(p->ops.arg, s->pid, SIGTERM);
        }
        s->due_ms = now + p->par.drain_timeout_ms + POOL_GRACE_MS;
        break;
    case POOL_A_KILL:
        if (s->pid > 0) {
            p->ops.signal(p->ops.arg, s->pid, SIGKILL);
            LOG(LOG_WARN, "worker.kill", "slot=%u worker=%s pid=%d reason=%s", s->idx, name,
                s->pid, ev == POOL_EV_HUNG ? "job_timeout" : "stop_deadline");
        }
        s->killed = true;
        s->due_ms = 0;
        break;
    case POOL_A_FREE:
        p->ops.release(p->ops.arg, s);
        s->pid = 0;
        s->due_ms = 0;
        s->freed_ms = now;
        break;
    }
    return POOL_NEVENTS;
}

void
pool_child_event(struct pool *p, struct pool_slot *s, enum pool_event ev, uint64_t now_ms)
{
    /* A follow-up event comes from a failed spawn only, and the state it leads to (BACKOFF)
     * spawns on its timer, never at once: this ends. */
    while (ev != POOL_NEVENTS) {
        struct pool_transition t = pool_child_next((enum pool_state)s->state, ev);
        enum pool_state prev = (enum pool_state)s->state;
        LOG(LOG_DEBUG, "worker.event", "slot=%u event=%s from=%s to=%s action=%s", s->idx,
            pool_event_name(ev), pool_state_name(prev), pool_state_name((enum pool_state)t.next),
            pool_action_name((enum pool_action)t.action));
        s->state = t.next;
        ev = run(p, s, prev, ev, (enum pool_action)t.action, now_ms);
    }
}
