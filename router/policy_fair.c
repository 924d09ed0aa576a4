/* Policy "fair": a heavy group (count > --high) gets its own queue, group.<name>, at the same
 * priority and weight as default, so that default and every heavy group's queue are served in
 * equal turns (the broker's stride scheduling among queues of one priority). A group that
 * floods thus takes one share of the workers, never all of them, and the groups in default
 * share the rest; none waits behind another's backlog. It follows default: when default's
 * priority or weight changes, the own queues are updated to match. --priority is not used.
 * Returning (--low), hysteresis and --min-dwell work as in threshold. */
#include "policy.h"

#define FAIR_RULE "fair: equal share with default"

/* default's priority and weight (as last seen), with --max-inflight. */
static struct action_qset
fair_want(const struct policy *p)
{
    struct action_qset want = policy_default_qset(p);
    want.max_inflight = policy_cfg(p)->max_inflight;
    return want;
}

static int
fair_decide(struct policy *p, const struct snapshot *s, struct action_list *out)
{
    const struct action_qset want = fair_want(p);
    return policy_plan_own_queues(p, s, &want, FAIR_RULE, out);
}

static int
fair_react(struct policy *p, struct sl_str group, uint64_t count, uint64_t now_ms,
           struct action_list *out)
{
    const struct action_qset want = fair_want(p);
    (void)now_ms; /* a move to the own queue never waits for the dwell */
    return policy_react_own_queue(p, group, count, &want, FAIR_RULE, out);
}

const struct policy_ops policy_fair_ops = {
    .name = "fair",
    .help = "heavy groups (count > --high) to their own queue at default's priority and weight",
    .decide = fair_decide,
    .react = fair_react,
};
