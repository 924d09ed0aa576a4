/* Policy "weights": a heavy group is not moved out but slowed down in place. The broker serves
 * the groups of a queue in turn, each taking as many jobs per turn as its weight (1 unless
 * set); a group whose count exceeds --high gets --heavy-weight (0.25 by default: one job for
 * every four a light group takes), so in default, or any queue it shares, the light groups
 * take more turns than the flood, and the flood still gets every turn nobody else wants. When
 * its count falls below --low it returns to weight 1. Counts between --low and --high change
 * nothing; the return waits --min-dwell after the lowering (against flapping), the lowering
 * never waits.
 *
 * The weights it manages are 1 and those below 1: a lowered weight that is not --heavy-weight
 * (a router's with another --heavy-weight before a restart) is brought in line; a weight above
 * 1 was a person's choice and is left alone. It changes no route and no queue. Each round
 * costs one request per group whose weight changes, none for the groups that stay as they
 * are. */
#include "policy.h"

#include "err.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int
weights_check(const struct policy_cfg *cfg)
{
    /* Written so that NaN fails too. */
    return cfg->heavy_weight >= POLICY_HEAVY_WEIGHT_MIN &&
                   cfg->heavy_weight <= POLICY_HEAVY_WEIGHT_MAX
               ? 0
               : SL_EBADREQ;
}

/* Appends "set group's weight to weight", made only while it is still `seen` (the weight the
 * policy decided on); the reason is the caller's to write. */
static struct action *
add_weight(struct action_list *out, struct sl_str group, uint64_t count, double seen,
           double weight)
{
    struct action *a = action_list_add(out, ACT_GROUP_WEIGHT);
    if (a != NULL) {
        memcpy(a->group, group.p, group.n);
        a->group[group.n] = '\0';
        a->count = count;
        a->weight = weight;
        snprintf(a->expect, sizeof(a->expect), "%.3f", seen);
    }
    return a;
}

static int
lower(const struct policy_cfg *cfg, struct sl_str group, uint64_t count,
      struct action_list *out)
{
    struct action *a = add_weight(out, group, count, POLICY_GROUP_WEIGHT, cfg->heavy_weight);
    if (a == NULL) {
        return SL_ENOMEM;
    }
    snprintf(a->reason, sizeof(a->reason), "count %" PRIu64 " > high %" PRIu64, count,
             cfg->high);
    return 0;
}

/* The decision for one group of the snapshot. */
static int
decide_group(struct policy *p, const struct snap_group *g, uint64_t now_ms,
             struct action_list *out)
{
    const struct policy_cfg *cfg = policy_cfg(p);
    enum policy_wclass c = policy_weight_class(g->weight);
    struct action *a;

    if (c == PW_DEFAULT && g->count > cfg->high) {
        return lower(cfg, g->name, g->count, out);
    }
    if (c != PW_LOWERED) {
        return 0;
    }
    if (g->count < cfg->low && policy_weight_dwell_left(p, g->name, now_ms) == 0) {
        if ((a = add_weight(out, g->name, g->count, g->weight, POLICY_GROUP_WEIGHT)) == NULL) {
            return SL_ENOMEM;
        }
        snprintf(a->reason, sizeof(a->reason), "count %" PRIu64 " < low %" PRIu64, g->count,
                 cfg->low);
    } else if (!policy_weight_eq(g->weight, cfg->heavy_weight)) {
        if ((a = add_weight(out, g->name, g->count, g->weight, cfg->heavy_weight)) == NULL) {
            return SL_ENOMEM;
        }
        snprintf(a->reason, sizeof(a->reason), "weight %g -> %g (weights)", g->weight,
                 cfg->heavy_weight);
    }
    return 0;
}

static int
weights_decide(struct policy *p, const struct snapshot *s, struct action_list *out)
{
    int rv = 0;
    for (size_t i = 0; i < s->ngroups && rv == 0; i++) {
        rv = decide_group(p, &s->groups[i], s->now_ms, out);
    }
    return rv;
}

/* A group last seen at weight 1, or never seen (a new group: its weight is 1 unless a person
 * set it within the last tick), is lowered at once. */
static int
weights_react(struct policy *p, struct sl_str group, uint64_t count, uint64_t now_ms,
              struct action_list *out)
{
    int seen = policy_seen_weight(p, group);

    (void)now_ms; /* lowering never waits for the dwell */
    if (count <= policy_cfg(p)->high || (seen != -1 && seen != PW_DEFAULT)) {
        return 0;
    }
    return lower(policy_cfg(p), group, count, out);
}

const struct policy_ops policy_weights_ops = {
    .name = "weights",
    .help = "heavy groups (count > --high) to weight --heavy-weight in place, back to 1 below "
            "--low",
    .check = weights_check,
    .decide = weights_decide,
    .react = weights_react,
};
