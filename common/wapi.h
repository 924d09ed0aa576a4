/* The worker API: a native program takes jobs from a broker in a few lines.
 *
 *     struct wapi_cfg cfg = { .prefetch = 64 };
 *     struct wapi *w;
 *     struct wapi_job job;
 *     if (wapi_open(&w, &cfg) != 0) { return 1; }
 *     while (wapi_next(w, &job) == 0) {
 *         work(job.payload, job.len);
 *         wapi_ack(w, job.id);
 *     }
 *     wapi_close(w);
 *
 * What it does for the program (PROTOCOL.md, "Workers and the flow of jobs"):
 * - Prefetch: one `reserve` takes up to cfg.prefetch jobs; wapi_next hands them out one at a
 *   time from the reply message itself (nothing is copied per job, nothing allocated).
 * - Long polls: with no job at hand, `reserve` waits up to cfg.wait_ms in the broker, so an idle
 *   worker reports itself (pid, state, RSS) once per wait; a busy one is reported by a
 *   background thread each second (state, current job), so `ctl stats` shows both.
 * - Batched acks: acks wait and ride on the next `reserve` (its "ack" field); they are sent on
 *   their own (`ack`) once the oldest has waited cfg.ack_delay_ms, so a slow batch does not
 *   hold finished jobs. Nacks of one delay are batched the same way (sent before the next
 *   reserve: `reserve` carries no nacks).
 * - Crash blame: the broker charges a worker's death only to the job it runs. The heartbeat
 *   thread reports a newly handed-out job within 100 ms; before handing out the next job after
 *   a reported one, wapi_next tells the broker that none runs (the pending settlements, or an
 *   empty ack, carrying `current: 0`: one round trip, only after a job that ran that long).
 * - Reserve tokens: each reserve carries a new `rtok` and the token of the last reply received
 *   (`rtok_got`), so the broker takes back the jobs of a reply that never arrived (given up on
 *   after wait_ms + 10 s, or an error in its place).
 * - The broker going away: a request whose connection drops is sent again after a short
 *   backoff (50 ms doubling to 1 s) until the broker is back; the worker registers again
 *   (`hello`). One warning is logged per outage and one line when it ends. Jobs prefetched over
 *   a connection that has closed are no longer this worker's (the broker handed them back when
 *   it saw the connection close), so they are dropped unstarted.
 * - A cluster (cfg.url a list, PROTOCOL.md "Clusters"): a standby's not_leader with
 *   leader_url moves the worker to that broker (or to the next of the list when it names none)
 *   and a request that finds no connection within 2 s moves it to the next of the list; one
 *   line is logged per move (info "broker.moved"), and the worker registers again there as
 *   after an outage. Prefetched jobs of the broker left are dropped unstarted, as above.
 * - Stopping: once *cfg.stop is non-zero, or cfg.max_jobs jobs were handed out, wapi_next
 *   hands out nothing more; wapi_close then sends what is pending and gives back (`release`)
 *   every prefetched job not started, in an order that keeps their queue's FIFO order.
 *
 * - The connection: one plain socket of the worker's own (ipc:// or tcp://, common/spreq.h),
 *   dialed when a request needs it, shared by the caller's requests and the heartbeat; a round
 *   trip wakes only the thread that asked.
 *
 * Threads: every function but wapi_open must be called from one thread at a time (the one that
 * uses the handle); wapi keeps one thread of its own for the heartbeat. */
#ifndef SLUICE_WAPI_H
#define SLUICE_WAPI_H

#include "token.h"
#include "wire.h"

#include <signal.h>
#include <stdint.h>

#define WAPI_PREFETCH_MAX 10000u      /* the broker's limit of jobs in one reserve */
#define WAPI_WAIT_MS_DEFAULT 1000u    /* long-poll wait: liveness is reported this often */
#define WAPI_ACK_DELAY_MS_DEFAULT 20u /* an ack waits at most this long for a reserve */

struct wapi;

/* Called by wapi_next after every reserve (on the caller's thread), and about once a second
 * while a request waits for the broker (on wapi's own thread: make it thread-safe, e.g. an
 * atomic store), so a program can show it is alive while it waits. */
typedef void wapi_tick_fn(void *arg);

struct wapi_cfg {
    const char *url;            /* broker address, or a cluster's "URL,URL,..." (see below);
                                   NULL: ipc://$SLUICE_DIR/broker.ipc */
    const char *name;           /* worker name (1-128 of [A-Za-z0-9._:-]); NULL: "HOST:PID" */
    uint32_t prefetch;          /* jobs per reserve, 1 to WAPI_PREFETCH_MAX; 0: 1 */
    const char *const *queues;  /* take only from these queues; NULL: from any */
    uint32_t nqueues;           /* at most WIRE_FROM_MAX */
    uint32_t wait_ms;           /* longest wait of one reserve, 1 to 600,000; 0: default */
    uint32_t ack_delay_ms;      /* longest wait of a pending ack; 0: default */
    uint64_t max_jobs;          /* hand out at most this many jobs in all; 0: no limit */
    const volatile sig_atomic_t *stop; /* may be NULL; once *stop != 0 (e.g. set by a signal
                                          handler) wapi_next hands out nothing more */
    wapi_tick_fn *tick;         /* may be NULL */
    void *tick_arg;
    const struct token *token;  /* carried by every request (copied); NULL: none. Load it with
                                   token_load from the file the broker's --token-file names */
};

/* A job handed out by wapi_next. group, queue and payload point into the broker's reply,
 * which wapi keeps: they stay valid until the next wapi_next, wapi_release_all or
 * wapi_close on the same handle, whichever comes first. Copy what must live longer. */
struct wapi_job {
    uint64_t id;
    struct sl_str group;        /* not NUL-terminated */
    struct sl_str queue;        /* not NUL-terminated */
    const void *payload;
    uint32_t len;               /* payload bytes */
    uint32_t attempts;          /* counting this one: 1 on the first delivery */
    uint32_t max_attempts;
    uint32_t ttr_ms;            /* the reservation lasts this long from the reserve */
    uint64_t enq_ms;            /* push time, ms since the epoch */
};

/* Checks cfg and creates a worker handle in *wp. Does no network I/O and does not wait for
 * the broker: the connection is made in the background and the first wapi_next waits for it.
 * cfg and its strings are copied. Returns 0, SL_EBADREQ (a bad name, queue name, count, or
 * URL; logged), SL_EFORBIDDEN (no cfg.url, and the runtime directory or the socket in it is
 * not the user's alone: rundir_client_url; logged), SL_ENOMEM or SL_EIO (nng failed; logged). */
int wapi_open(struct wapi **wp, const struct wapi_cfg *cfg);

/* The next job, into *job: from the prefetched batch, else from a new reserve, waiting as
 * long as it takes (pending acks ride on that reserve). Blocks. Returns 0 with *job filled;
 * SL_ETIMEDOUT once it will hand out no more jobs (*cfg.stop raised, or cfg.max_jobs handed
 * out): every later call returns the same, and the program should settle its jobs and call
 * wapi_close; SL_EBADREQ or SL_EUNKNOWNOP if the broker refuses the worker's requests (a
 * broker speaking another protocol; logged); SL_EUNAUTH if it wants a token (cfg.token) that
 * the worker lacks or has wrong (logged, never the token itself). Connection losses and malformed replies are
 * handled inside (logged) and never returned. Within a wait, *cfg.stop is noticed within
 * cfg.wait_ms (a reserve the broker holds is waited for, so the jobs it may bring are given
 * back rather than stranded), or within 100 ms while the broker is unreachable. */
int wapi_next(struct wapi *w, struct wapi_job *job);

/* The job with this id (handed out by wapi_next) is done. Queued, sent with the next reserve
 * or within cfg.ack_delay_ms (then this call sends it: blocks one round trip). */
void wapi_ack(struct wapi *w, uint64_t id);

/* The job failed: it is ready again after delay_ms (0 to 86,400,000; larger is capped), or dead
 * if its attempts are used up. Queued like acks; nacks of another delay are sent first. */
void wapi_nack(struct wapi *w, uint64_t id, uint32_t delay_ms);

/* wapi_nack with why it failed: the job's last error (err[0..n), at most WAPI_ERROR_MAX bytes
 * sent, kept by the broker in part: its first line and its end, see `ctl job`). Sent at once,
 * after the nacks queued before it: blocks one round trip. err NULL or n 0: wapi_nack. */
#define WAPI_ERROR_MAX 65536u
void wapi_nack_error(struct wapi *w, uint64_t id, uint32_t delay_ms, const char *err, size_t n);

/* Gives the job back unrun, not a failure (e.g. it was stopped at a deadline): it returns to
 * the head of its queue. Sent at once: blocks one round trip. */
void wapi_release(struct wapi *w, uint64_t id);

/* Gives back every prefetched job not yet handed out. Blocks one round trip (none if there is
 * nothing to give back). Views of the last job handed out die. */
void wapi_release_all(struct wapi *w);

/* Sends pending nacks and acks and releases the prefetched jobs not handed out: everything
 * wapi_close sends, without closing, so that a program can bound the close on its own (see
 * common/deadline.h). Settle the jobs handed out first: after it wapi_next returns
 * SL_ETIMEDOUT, and a later call does nothing. Skips the requests when the broker is
 * unreachable; otherwise blocks up to a few seconds. */
void wapi_settle(struct wapi *w);

/* Settles as wapi_settle does (if not done yet), stops the heartbeat thread, closes the
 * connection and frees w. Jobs handed out and not settled are
 * handed back by the broker when it sees the connection close (the one running charged a crash):
 * settle or release them first. Skips the requests when the broker is unreachable (it hands
 * everything back itself); otherwise blocks up to a few seconds. wapi_close(NULL) does
 * nothing. */
void wapi_close(struct wapi *w);

/* For a program about to exit: the same as wapi_close (the connection is a plain socket of
 * the worker's own, whose close cannot hang as an nng socket's can). Kept for the programs
 * that call it. wapi_leave(NULL) does nothing. */
void wapi_leave(struct wapi *w);

/* How many connections to the broker are open now, as last noticed: a closed connection is
 * noticed a moment after the broker closes it, and until then a job prefetched on it may still
 * be handed out (it runs, and the broker, which took it back, runs it again: at least once). */
int wapi_connections(struct wapi *w);

/* The worker's name (NUL-terminated), as given or generated. */
const char *wapi_name(const struct wapi *w);

#endif
