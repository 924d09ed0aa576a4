/* The life of one worker slot in worker-pool, as a table: actions[state][event] gives the next
 * state and the one action to take (s6-supervise's model). Every cell is written out; the unit
 * tests walk all of them. pool_child_event (pool.h) applies a cell to a slot.
 *
 *   FREE --start--> STARTING --ready--> RUNNING
 *   STARTING/RUNNING --exit 0 after --max-jobs--> STARTING (respawned at once)
 *   STARTING/RUNNING --other exit--> BACKOFF --timer--> STARTING
 *   STARTING/RUNNING --exit 2 (usage)--> FAILED (not restarted; SIGHUP retries)
 *   RUNNING --over --max-memory--> RECYCLING (SIGTERM) --exit 0--> STARTING
 *   RUNNING --job past --job-timeout--> RECYCLING (SIGKILL) --exit--> BACKOFF
 *   any live state --stop--> STOPPING (SIGTERM) --exit--> FREE
 *   RECYCLING/STOPPING --timer (drain timeout + grace)--> SIGKILL */
#ifndef SLUICE_POOL_CHILD_H
#define SLUICE_POOL_CHILD_H

#include <stdint.h>

enum pool_state {
    POOL_FREE,      /* no process, not wanted: the slot number is unused */
    POOL_BACKOFF,   /* no process: restarts when due_ms passes */
    POOL_STARTING,  /* started; its status page does not say idle or busy yet */
    POOL_RUNNING,   /* serving (its status page said idle or busy) */
    POOL_RECYCLING, /* told to stop (SIGTERM, or SIGKILL when hung); restarted when it exits */
    POOL_STOPPING,  /* told to stop (SIGTERM); the slot is freed when it exits */
    POOL_FAILED,    /* exited 2 (usage): not restarted */
    POOL_NSTATES
};

enum pool_event {
    POOL_EV_START,        /* the slot is wanted: scale up, first start, SIGHUP retrying FAILED */
    POOL_EV_READY,        /* the status page says idle or busy */
    POOL_EV_EXIT_RECYCLE, /* exited 0 when asked to (RECYCLING) or after --max-jobs */
    POOL_EV_EXIT_FAIL,    /* any other exit or death by a signal */
    POOL_EV_EXIT_USAGE,   /* exited 2 */
    POOL_EV_SPAWN_FAIL,   /* fork, exec or the status page failed */
    POOL_EV_TIMER,        /* due_ms passed: backoff over, or stop deadline reached */
    POOL_EV_RECYCLE,      /* RSS above --max-memory: stop gracefully and restart */
    POOL_EV_HUNG,         /* its job ran past --job-timeout: kill and restart */
    POOL_EV_STOP,         /* no longer wanted: scale down, shutdown, replaced by a rolling restart */
    POOL_NEVENTS
};

enum pool_action {
    POOL_A_UNDEF,   /* a cell nobody wrote: never in the table (the tests check) */
    POOL_A_NONE,    /* nothing to do (the event means nothing in this state) */
    POOL_A_READY,   /* log that the worker serves */
    POOL_A_SPAWN,   /* start a process now; on failure the slot gets POOL_EV_SPAWN_FAIL */
    POOL_A_BACKOFF, /* count a failure and set due_ms to now + the backoff */
    POOL_A_FAIL,    /* log that the slot is given up (exit 2) */
    POOL_A_TERM,    /* SIGTERM; due_ms = now + drain timeout + grace */
    POOL_A_KILL,    /* SIGKILL; no deadline */
    POOL_A_FREE,    /* release the slot (status page) */
    POOL_NACTIONS
};

struct pool_transition {
    uint8_t next;   /* enum pool_state */
    uint8_t action; /* enum pool_action */
};

#define POOL_BACKOFF_MS_MIN 100u     /* the first restart after a failure */
#define POOL_BACKOFF_MS_MAX 30000u   /* doubling stops here */
#define POOL_HEALTHY_MS 10000u       /* a run this long resets the backoff */
#define POOL_GRACE_MS 2000u          /* after the drain timeout, before SIGKILL */

/* The table's cell for (state, event). */
struct pool_transition pool_child_next(enum pool_state state, enum pool_event event);

/* The delay before restart after the fails-th failure in a row (fails >= 1): 100 ms doubling
 * to at most 30 s. */
uint64_t pool_backoff_ms(unsigned fails);

/* Names for logs and pool.status ("starting", "exit_fail", "spawn"); never NULL. */
const char *pool_state_name(enum pool_state s);
const char *pool_event_name(enum pool_event e);
const char *pool_action_name(enum pool_action a);

#endif
