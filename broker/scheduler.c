#include "scheduler.h"

#include "broker.h"
#include "err.h"

#include <string.h>

#define STRIDE1 (UINT64_C(1) << 20)
#define PPM 1000000u

void
sched_rebuild(struct broker *b)
{
    struct sched_level *old = b->levels, *lv = b->levels_spare;
    uint32_t nold = b->nlevels, k = 0;

    for (uint32_t i = 0; i < b->nqueues; i++) {
        if (i == 0 || b->qorder[i]->priority != b->qorder[i - 1]->priority) {
            lv[k] = (struct sched_level){ .priority = b->qorder[i]->priority, .first = i };
            for (uint32_t o = 0; o < nold; o++) {
                if (old[o].priority == lv[k].priority) {
                    lv[k].credit_ppm = old[o].credit_ppm;
                    lv[k].vtime = old[o].vtime;
                }
            }
            k++;
        }
        lv[k - 1].count++;
    }
    b->levels_spare = old;
    b->levels = lv;
    b->nlevels = k;
}

static bool
named(const struct queue *q, const struct wire_list *from)
{
    for (uint32_t i = 0; i < from->n; i++) {
        struct sl_str s = wire_list_str(from, i);
        if (s.n == q->name_len && memcmp(s.p, q->name, s.n) == 0) {
            return true;
        }
    }
    return false;
}

static bool
eligible(const struct queue *q, const struct wire_list *from)
{
    if (q->paused || q->nactive == 0) {
        return false;
    }
    if (q->max_inflight != 0 && q->lists[JOB_RESERVED].n >= q->max_inflight) {
        return false;
    }
    return from == NULL || from->n == 0 || named(q, from);
}

static bool
level_eligible(const struct broker *b, const struct sched_level *l, const struct wire_list *from)
{
    for (uint32_t i = l->first; i < l->first + l->count; i++) {
        if (eligible(b->qorder[i], from)) {
            return true;
        }
    }
    return false;
}

struct queue *
sched_pick(struct broker *b, const struct wire_list *from)
{
    struct sched_level *top = NULL, *chosen = NULL;
    uint64_t share = b->cfg.min_share_ppm;

    for (uint32_t i = 0; i < b->nlevels; i++) {
        struct sched_level *l = &b->levels[i];
        if (!level_eligible(b, l, from)) {
            continue;
        }
        if (top == NULL) {
            top = l;
            continue;
        }
        if (share == 0) {
            break;
        }
        /* Credit is capped at one reservation (plus this step), so a level that was
         * ineligible for a while does not burst afterwards. */
        l->credit_ppm += share;
        if (l->credit_ppm > PPM + share) {
            l->credit_ppm = PPM + share;
        }
        if (chosen == NULL && l->credit_ppm >= PPM) {
            chosen = l;
        }
    }
    if (top == NULL) {
        return NULL;
    }
    if (chosen != NULL) {
        chosen->credit_ppm -= PPM;
    } else {
        chosen = top;
    }
    struct queue *best = NULL;
    for (uint32_t i = chosen->first; i < chosen->first + chosen->count; i++) {
        struct queue *q = b->qorder[i];
        if (!eligible(q, from)) {
            continue;
        }
        if (q->pass < chosen->vtime) {
            q->pass = chosen->vtime;
        }
        if (best == NULL || q->pass < best->pass) {
            best = q;
        }
    }
    if (best == NULL) {
        return NULL; /* cannot happen: the level was chosen for having an eligible queue */
    }
    chosen->vtime = best->pass;
    best->pass += STRIDE1 / best->weight;
    return best;
}
