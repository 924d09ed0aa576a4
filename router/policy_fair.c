/* Policy "fair": a heavy group (count > --high) gets its own queue, group.<name>, at the same
 * priority and weight as default, so that default and every heavy group's queue are served in
 * equal turns (the broker's stride scheduling among queues of one priority). A group that
 * floods thus takes one share of the workers, never all of them, and the groups in default
 * share the rest; none waits behind another's backlog. It follows default: when default's
 * priority or weight changes, the own queues are updated to match. --priority is not used.
 * Returning (--low), hysteresis and --min-dwell work as in threshold. */
#include "policy.h"


/* PROTOCOL.md: default has priority 10 and weight 1 unless changed. */
#define DEFAULT_PRIORITY 10
#define DEFAULT_WEIGHT 1

static int
fair_decide(struct policy *p, const struct snapshot *s, struct action_list *out)
{
    const struct snap_queue *d = policy_find_queue(p, SL_STR_LIT("default"));
    struct action_qset want = { DEFAULT_PRIORITY, DEFAULT_WEIGHT, policy_cfg(p)->max_inflight };

    if (d != NULL) {
        want.priority = d->priority;
        want.weight = d->weight;
    }
    return policy_plan_own_queues(p, s, &want, "fair: equal share with default", out);
}

const struct policy_ops policy_fair_ops = {
    .name = "fair",
    .help = "heavy groups (count > --high) to their own queue at default's priority and weight",
    .decide = fair_decide,
    .would_move = policy_would_move_heavy,
};
