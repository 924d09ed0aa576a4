/* Policy "threshold", the original demo's rule: a group whose count exceeds --high gets its own
 * queue, group.<name>, at --priority (100 by default: served after default's 10, so the light
 * groups in default go first) with --max-inflight if given; when its count falls below --low it
 * returns to default and its queue is destroyed once empty. Counts between --low and --high
 * change nothing; a group returns no sooner than --min-dwell after it was moved, but one that
 * has returned is moved again as soon as its count exceeds --high (its new burst would
 * otherwise land in default whole). */
#include "policy.h"

/* --priority, weight 1, --max-inflight. */
static struct action_qset
threshold_want(const struct policy *p)
{
    const struct policy_cfg *cfg = policy_cfg(p);
    return (struct action_qset){ cfg->priority, 1, cfg->max_inflight };
}

static int
threshold_decide(struct policy *p, const struct snapshot *s, struct action_list *out)
{
    const struct action_qset want = threshold_want(p);
    return policy_plan_own_queues(p, s, &want, "threshold", out);
}

static int
threshold_react(struct policy *p, struct sl_str group, uint64_t count, uint64_t now_ms,
                struct action_list *out)
{
    const struct action_qset want = threshold_want(p);
    (void)now_ms; /* a move to the own queue never waits for the dwell */
    return policy_react_own_queue(p, group, count, &want, "threshold", out);
}

const struct policy_ops policy_threshold_ops = {
    .name = "threshold",
    .help = "heavy groups (count > --high) to their own queue at --priority, back below --low",
    .decide = threshold_decide,
    .react = threshold_react,
};
