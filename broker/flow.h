/* The flow of jobs through workers: reserve, ack, nack, release, touch; reservation
 * deadlines and delays (the timer heap); workers coming and going; dead jobs.
 * Like broker.h, every function needs b->lock held and changes nothing when it fails.
 *
 * Attempts are counted when a job is reserved. What happens when a reservation ends
 * without an ack:
 * - nack: a failed attempt (failed += 1); dead once attempts reach max_attempts, else ready
 *   again at the tail of its queue, after the nack's delay if any.
 * - TTR expiry: a failed attempt; dead at max_attempts, else ready at the head.
 * - release: not a failure; ready at the head, the attempt stays counted.
 * - the worker's connection closes: its jobs go back to the head of their queues at once,
 *   in order, their attempt given back. Only the job it was running is charged a crash: it
 *   keeps its attempt and is dead after max_crashes (never for its attempts alone: it may
 *   have finished just before the death, its ack lost). The job it was running: the one the
 *   worker last reported
 *   as `current` (it reports a job soon after starting it, and nothing once it has finished
 *   it), or the job of a one-job reserve (started at once). A worker that ran no job the
 *   broker knows of charges none. If it speaks reserve tokens (it reports what it runs, so
 *   it may have died in the moment between starting a job and reporting it), its jobs are
 *   marked suspect, and a suspect job is reserved alone, so that a death while running it
 *   is charged to it.
 * - a reserve whose reply the worker never received (its next reserve's rtok_got says so)
 *   gives its jobs back, uncharged (flow_reserve_begin). */
#ifndef SLUICE_FLOW_H
#define SLUICE_FLOW_H

#include "broker.h"

/* The worker named name, registering it on pipe if new; re-binding it to pipe if it has
 * moved to a new connection. NULL on ENOMEM. */
struct worker *flow_worker(struct broker *b, struct sl_str name, uint32_t pipe);

/* Reserves up to max jobs for w from the queues named in from (NULL or empty: all), by the
 * scheduling rules of sched.h. Writes them to out[0..*n). Returns 0 (also when none was
 * ready) or SL_ENOMEM. */
int flow_reserve(struct broker *b, struct worker *w, uint32_t max, const struct wire_list *from,
                 struct job **out, uint32_t *n);

/* Starts a reserve of w carrying token rtok (0: none) and rtok_got, the token of the last
 * reserve reply the worker received. Hands back, uncharged, the jobs of an answered reserve
 * whose reply the worker did not receive. Returns false if a newer reserve of w was seen:
 * this one is stale (its reply cannot reach the worker) and must reserve nothing. */
bool flow_reserve_begin(struct broker *b, struct worker *w, uint64_t rtok, uint64_t got);

/* Remembers jobs[0..n) as handed to w by the reserve of token rtok (0: not remembered). */
void flow_reserve_sent(struct worker *w, uint64_t rtok, struct job *const *jobs, uint32_t n);

enum flow_settle { FLOW_ACK, FLOW_NACK, FLOW_RELEASE, FLOW_TOUCH };

/* Settles the reserved jobs ids; w NULL settles any holder's, else only w's. ms: the nack's
 * delay or the touch's new TTR (0: the job's own). errors (a nack's; NULL: none): the error
 * of ids[i] is errors[i], kept as the job's last error (joberr.h). *done counts the ids
 * settled, *missing those that are not reserved (by w): unknown, already settled, or
 * another's. */
int flow_settle(struct broker *b, enum flow_settle how, struct worker *w,
                const struct wire_list *ids, const struct wire_list *errors, uint64_t ms,
                uint64_t *done, uint64_t *missing);

/* Applies every deadline due at now_ns (monotonic): delayed jobs become ready, expired
 * reservations end (see above). Returns the next deadline, or INT64_MAX if none. */
int64_t flow_tick(struct broker *b, int64_t now_ns);

/* The connection pipe closed: every worker on it is forgotten and its jobs handed back, and
 * the pipe is remembered as closed. */
void flow_pipe_closed(struct broker *b, uint32_t pipe);

/* Whether pipe is one of the recently closed connections (a request from it may still be in
 * flight after the close was handled; it must not register a worker or reserve jobs). */
bool flow_pipe_is_closed(const struct broker *b, uint32_t pipe);

/* Dead jobs matching ids (if given) or queue/group (if given), in queue order.
 * For dead.list: calls fn on each, up to max, and sets *total to all matches. */
typedef void flow_dead_fn(void *arg, const struct job *j);
int flow_dead_list(struct broker *b, const struct sl_str *queue, const struct sl_str *group,
                   uint32_t max, flow_dead_fn *fn, void *arg, uint64_t *total);
/* retry: back to ready (tail) with attempts and crashes reset; purge: deleted.
 * Errors: SL_EBADREQ (nothing selects), SL_ENOTFOUND (queue or group). */
int flow_dead_retry(struct broker *b, const struct wire_list *ids, const struct sl_str *queue,
                    const struct sl_str *group, bool purge, uint64_t *n);

#endif
