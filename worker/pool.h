/* The pool: a set of numbered slots, each running one worker process, kept at a target number.
 * It starts and restarts workers (pool_child.h has each slot's lifecycle), scales, recycles,
 * replaces them one by one on a rolling restart, and stops them all on shutdown.
 *
 * Processes, signals and memory readings reach the pool through struct pool_ops, so unit tests
 * drive it with fakes; time is passed in (CLOCK_MONOTONIC milliseconds, the clock of the status
 * page). Single-threaded: every function is called from worker-pool's main loop only.
 *
 * A worker is named PREFIX:SLOT (PREFIX is HOST:POOLPID), unique among the pool's live
 * processes: a new process takes the lowest slot number no live process holds (nor held in
 * the last POOL_REUSE_MS), so the replacement started by a rolling restart runs under another
 * number than the one it replaces. */
#ifndef SLUICE_POOL_H
#define SLUICE_POOL_H

#include "pool_child.h"
#include "status.h"
#include "wire.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#define POOL_N_MAX 1024u         /* the target number: -n and pool.scale, 0 to this */
#define POOL_PREFIX_MAX 100u     /* "HOST:PID": leaves room for ":SLOT" in a name */
#define POOL_SLOTS_MAX 4096u     /* slot numbers: live processes at once, stopping ones included */
#define POOL_MEM_CHECK_MS 1000u  /* how often RSS is read for --max-memory */
/* A slot number freed by an exit is not given to a new process for this long, so that the
 * broker has seen the old process's connection close before a new worker registers under the
 * same name (it ties a name to one connection). Restarts in place wait a backoff of at least
 * as long, but for a clean exit 0, after which the worker holds no job. */
#define POOL_REUSE_MS 100u
/* A worker that never writes its status page counts as serving after this long. */
#define POOL_UNREPORTED_READY_MS 5000u

struct pool_slot {
    uint32_t idx;                /* the slot number: its index in pool.slots */
    uint8_t state;               /* enum pool_state */
    int pid;                     /* the live process; 0: none */
    struct worker_status *page;  /* the current (or last) process's status page; NULL: none */
    uint64_t seq;                /* spawn sequence number of the current process */
    uint64_t started_ms;         /* when the current process was started */
    uint64_t due_ms;             /* 0: no timer; else backoff end or stop deadline */
    unsigned fails;              /* failures in a row, for the backoff */
    uint64_t restarts;           /* processes started in this slot after its first */
    uint64_t freed_ms;           /* when it last became FREE; 0: never used */
    bool killed;                 /* SIGKILL sent to the current process */
};

struct pool;

struct pool_ops {
    /* Starts the process of slot s under name: releases s->page if set, then sets s->pid and
     * s->page (a new status page). Returns 0, or SL_EIO (logged) with s->pid 0. */
    int (*spawn)(void *arg, struct pool_slot *s, const char *name);
    /* Sends sig to pid (> 0). */
    void (*signal)(void *arg, int pid, int sig);
    /* The resident set of pid in bytes; 0 when it cannot be read. */
    uint64_t (*rss)(void *arg, int pid);
    /* Releases s->page (when not NULL) and sets it NULL. */
    void (*release)(void *arg, struct pool_slot *s);
    void *arg;
};

struct pool_params {
    uint32_t n;                 /* initial target */
    uint64_t drain_timeout_ms;  /* SIGTERM to SIGKILL is this plus POOL_GRACE_MS */
    uint64_t job_timeout_ms;    /* 0: none */
    uint64_t max_memory_bytes;  /* 0: none */
    uint64_t max_jobs;          /* the workers' --max-jobs; 0: none */
    const char *name_prefix;    /* HOST:POOLPID (see pool_name_prefix); copied */
};

struct pool {
    struct pool_params par;
    char prefix[POOL_PREFIX_MAX + 1];
    struct pool_ops ops;
    struct pool_slot *slots;     /* POOL_SLOTS_MAX of them */
    uint32_t nslots;             /* slots at and above this have always been FREE */
    uint32_t n;                  /* the target number of workers */
    bool stopping;               /* shutting down: nothing starts any more */
    bool no_slot_logged;         /* "no free slot" was logged since the last success */
    uint64_t spawn_seq;          /* processes started so far */
    uint64_t roll_before;        /* rolling restart: replace processes with seq below; 0: none */
    int64_t roll_old, roll_new;  /* the slot being replaced and its replacement; -1: none */
    uint64_t mem_check_ms;       /* next RSS reading */
};

/* Writes a worker name prefix "HOST:PID" into out, with bytes a name may not hold replaced by
 * '_' and the host cut so that the prefix fits POOL_PREFIX_MAX bytes. */
void pool_name_prefix(char *out, size_t cap, const char *host, int pid);

/* Initialises p (nothing starts until pool_reconcile). Returns 0 or SL_ENOMEM. */
int pool_init(struct pool *p, const struct pool_params *par, const struct pool_ops *ops);
/* Releases every status page. Processes are not signalled: stop them first. */
void pool_fini(struct pool *p);

/* Writes slot s's worker name into out. */
void pool_slot_name(const struct pool *p, const struct pool_slot *s, char *out, size_t cap);

/* Applies the lifecycle table's cell for (s->state, ev) to s and runs its action, and the
 * follow-up events actions raise (a failed spawn). now_ms: the monotonic clock. pool_child.c. */
void pool_child_event(struct pool *p, struct pool_slot *s, enum pool_event ev, uint64_t now_ms);

/* Starts and stops workers until the target is met, and moves a rolling restart on. Called
 * after every change; does nothing once stopping. */
void pool_reconcile(struct pool *p, uint64_t now_ms);

/* Sets the target (at most POOL_N_MAX). Scaling down stops the highest slots gracefully;
 * scaling up starts new ones at once. Returns 0, or SL_EFORBIDDEN while stopping. */
int pool_scale(struct pool *p, uint32_t n, uint64_t now_ms);

/* Starts a rolling restart: every process started before now is replaced, one at a time, by
 * a new one that is started first and serving before the old one is told to stop. FAILED
 * slots are retried at once. A rolling restart in progress starts over. */
void pool_roll(struct pool *p, uint64_t now_ms);

/* A child exited: status as from waitpid. Returns false when pid is none of the pool's. */
bool pool_reaped(struct pool *p, int pid, int status, uint64_t now_ms);

/* The periodic work: timers that are due, status pages (ready, --job-timeout) and, once per
 * POOL_MEM_CHECK_MS, --max-memory. */
void pool_tick(struct pool *p, uint64_t now_ms);

/* Shutdown: no more restarts; every worker is asked to stop (SIGTERM) and killed at its
 * deadline. */
void pool_stop(struct pool *p, uint64_t now_ms);

/* SIGKILL to every live worker (a second shutdown signal). */
void pool_kill_all(struct pool *p);

/* Whether pid is one of the pool's live workers. */
bool pool_has_pid(const struct pool *p, int pid);

/* The process group the worker process pid last named on its status page as its handler's
 * (exec: job or pipe: handler), 0 when none or unknown. Read it before pool_reaped. */
int pool_handler_pgid(const struct pool *p, int pid);

/* Live worker processes. */
uint32_t pool_live(const struct pool *p);

/* Stopping and no process left: the pool may exit. */
bool pool_done(const struct pool *p);

/* The earliest due_ms of any slot, or 0 when no timer is set. */
uint64_t pool_next_due(const struct pool *p);

/* Packs pool.status's reply fields "workers" (the array, by slot) and "n": two map entries for
 * the caller's reply map. */
void pool_pack_status(const struct pool *p, msgpack_packer *pk, uint64_t now_ms);

#endif
