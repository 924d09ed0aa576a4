/* Groups' start rates: a token bucket per limited group (ratelimit.h) that every job handed
 * to a worker by reserve spends one token of, in whatever queue the job is. A group whose
 * bucket runs dry is held (queue_group_hold): its lanes leave every queue's turn and heap, so
 * reserves pass it by at no cost and serve the others, and the timer thread lets it back in
 * when its next token is due (grate_tick). An unlimited group has g->rate NULL and pays one
 * branch per job.
 *
 * The limit (rate, burst) is state like a group's weight: set through grate_set, journaled
 * (R_GRATE), kept in snapshots, reset by flush. The tokens are not: a bucket starts full when
 * the limit is set, replayed or loaded.
 * Every function: b->lock held. */
#ifndef SLUICE_GRATE_H
#define SLUICE_GRATE_H

#include "broker.h"
#include "ratelimit.h"

#include <stdbool.h>
#include <stdint.h>

struct group_rate {
    struct rate_bucket bucket;
    uint64_t holds;                /* times it was held back (its bucket ran dry) since it got
                                      a limit; a change of limit keeps the count */
    uint64_t started;              /* jobs it started under a limit since then */
    struct group *g;
    struct group_rate *hnext, *hprev; /* the broker's held groups (b->rate_held), while held */
};

/* Sets group's start rate to rate_milli thousandths of a job per second and burst whole jobs
 * (0: rate_burst_default), its bucket full; rate_milli 0 removes the limit (burst must be 0)
 * and lets the group back in if it was held. Creates the group for a limit; removing the
 * limit of a group the broker does not know changes nothing. Made as one change
 * (CH_GROUP_LIMIT). Errors: SL_EBADREQ (out of range), SL_ENOMEM. */
int grate_set(struct broker *b, struct sl_str group, uint64_t rate_milli, uint32_t burst);

/* Spends one of g's tokens (g->rate not NULL) for a job about to start at now_ns: true when
 * it had one. When that was its last, or it had none, g is held and the timer woken for its
 * next token. */
bool grate_take(struct broker *b, struct group *g, int64_t now_ns);

/* Lets back in the held groups whose next token is due by now_ns. Returns the monotonic time
 * the next held group's token is due, INT64_MAX when none is held. The timer thread. */
int64_t grate_tick(struct broker *b, int64_t now_ns);

/* Removes g's limit, letting it back in if held, without a change: g is being removed or
 * flushed (whose own change covers it). */
void grate_drop(struct broker *b, struct group *g);

/* Whole tokens g holds now (0 without a limit). */
uint32_t grate_tokens(struct broker *b, const struct group *g);

#endif
