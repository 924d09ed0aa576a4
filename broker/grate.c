#include "grate.h"

#include "change.h"

#include "err.h"
#include "log.h"

#include <stdlib.h>

static void
held_link(struct broker *b, struct group_rate *r)
{
    r->hprev = NULL;
    r->hnext = b->rate_held;
    if (b->rate_held != NULL) {
        b->rate_held->hprev = r;
    }
    b->rate_held = r;
}

static void
held_unlink(struct broker *b, struct group_rate *r)
{
    if (r->hprev != NULL) {
        r->hprev->hnext = r->hnext;
    } else {
        b->rate_held = r->hnext;
    }
    if (r->hnext != NULL) {
        r->hnext->hprev = r->hprev;
    }
    r->hnext = r->hprev = NULL;
}

/* Lets g back in (its limit removed, changed or its token due); parked reserves are served
 * by the caller (an op with OP_WAKES, or the timer thread after grate_tick). */
static void
release(struct broker *b, struct group *g)
{
    if (g->held) {
        held_unlink(b, g->rate);
        queue_group_hold(g, false);
    }
}

void
grate_drop(struct broker *b, struct group *g)
{
    if (g->rate == NULL) {
        return;
    }
    release(b, g);
    free(g->rate);
    g->rate = NULL;
}

int
grate_set(struct broker *b, struct sl_str group, uint64_t rate_milli, uint32_t burst)
{
    if (rate_milli == 0 ? burst != 0
                        : (rate_milli < RATE_MILLI_MIN || rate_milli > RATE_MILLI_MAX ||
                           burst > RATE_BURST_MAX)) {
        return SL_EBADREQ;
    }
    struct group *g = broker_group_find(b, group);
    if (rate_milli == 0) {
        if (g == NULL || g->rate == NULL) {
            return 0; /* no limit to remove: no change */
        }
        grate_drop(b, g);
    } else {
        if (g == NULL && (g = broker_group_add(b, group)) == NULL) {
            return SL_ENOMEM;
        }
        if (g->rate == NULL) {
            struct group_rate *r = calloc(1, sizeof(*r));
            if (r == NULL) {
                return SL_ENOMEM;
            }
            r->g = g;
            g->rate = r;
        }
        release(b, g); /* the new bucket is full */
        rate_bucket_init(&g->rate->bucket, rate_milli,
                         burst != 0 ? burst : rate_burst_default(rate_milli), broker_mono_ns(b));
    }
    change_made(b, &(struct change){ .kind = CH_GROUP_LIMIT, .origin = b->origin, .group = g });
    return 0;
}

/* Holds g until its next token, waking the timer for it. */
static void
hold(struct broker *b, struct group *g)
{
    struct group_rate *r = g->rate;
    if (!g->held) {
        r->holds++;
        held_link(b, r);
        queue_group_hold(g, true);
    }
    broker_timer_wake(b, rate_bucket_due_ns(&r->bucket));
}

bool
grate_take(struct broker *b, struct group *g, int64_t now_ns)
{
    struct group_rate *r = g->rate;
    if (rate_bucket_take(&r->bucket, now_ns, 1) == 0) {
        hold(b, g);
        return false;
    }
    r->started++;
    if (rate_bucket_tokens(&r->bucket, now_ns) == 0) {
        hold(b, g);
    }
    return true;
}

int64_t
grate_tick(struct broker *b, int64_t now_ns)
{
    int64_t next = INT64_MAX;
    for (struct group_rate *r = b->rate_held, *hn; r != NULL; r = hn) {
        hn = r->hnext;
        if (rate_bucket_tokens(&r->bucket, now_ns) > 0) {
            release(b, r->g);
            continue;
        }
        int64_t due = rate_bucket_due_ns(&r->bucket);
        if (due < next) {
            next = due;
        }
    }
    return next;
}

uint32_t
grate_tokens(struct broker *b, const struct group *g)
{
    return g->rate != NULL ? rate_bucket_tokens(&g->rate->bucket, broker_mono_ns(b)) : 0;
}
