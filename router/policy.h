/* The router's balancing policy: a snapshot of the broker in, a list of actions out.
 *
 * A policy is one source file (policy_threshold.c, policy_fair.c, policy_weights.c) exporting
 * a struct policy_ops; policy.c finds it by name and owns what every policy shares: the
 * configuration, the switch histories (switches.h) that --min-dwell reads (one of routes, one
 * of weights), and the plan "an own queue for each heavy group" that threshold and fair build
 * on. Actions are action.h's. A new policy is one new file and one row in policy.c's table.
 *
 * Restart safety: a policy keeps no state the broker does not have. Its only memory is when
 * each group's route and weight last changed, learnt from the snapshots and from the changes
 * the router reports having made (policy_note); a policy that has never seen a group treats a
 * group already in its own queue (or at a lowered weight) as having switched just now (so a
 * restarted router does not send it back before --min-dwell) and a group in default (at
 * weight 1) as free to move. Queues named "group.<name>" are the router's own: the routes it
 * manages are none (default) and "group.<name>" for group <name>; any other route was set by
 * a person and is left alone. Since a person may set a route between the view a policy
 * decides on and the change, every route action carries the route the policy saw
 * (action.expect): the broker makes the change only if the route is still that one. Likewise
 * the weights the router manages are 1 and those below 1; a weight above 1 was set by a person
 * (a group given more turns) and is left alone. group.weight has no `expect`: a person's
 * weight set between the snapshot and the change is overwritten (within one tick).
 *
 * Single-threaded: one policy is used by one thread. Nothing here blocks or does I/O. */
#ifndef SLUICE_ROUTER_POLICY_H
#define SLUICE_ROUTER_POLICY_H

#include "action.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_QUEUE_PREFIX "group."
/* PROTOCOL.md: default's settings unless changed. */
#define POLICY_DEFAULT_PRIORITY 10
#define POLICY_DEFAULT_WEIGHT 1

/* PROTOCOL.md, group.weight: a group's weight (its share of the turns in a queue) is 1 unless
 * set; the broker keeps it in thousandths. --heavy-weight stays below 1, so that a lowered
 * weight is never taken for the default one. */
#define POLICY_GROUP_WEIGHT 1.0
#define POLICY_HEAVY_WEIGHT_DEFAULT 0.25
#define POLICY_HEAVY_WEIGHT_MIN 0.01
#define POLICY_HEAVY_WEIGHT_MAX 0.999

/* The router's options that policies read. */
struct policy_cfg {
    uint64_t high;         /* a group whose count exceeds this is moved to its own queue */
    uint64_t low;          /* a group in its own queue whose count falls below this returns;
                              low <= high, so counts in [low, high] change nothing (hysteresis) */
    uint64_t priority;     /* threshold: the own queues' priority */
    uint64_t max_inflight; /* the own queues' cap on reserved jobs (0: none) */
    uint64_t min_dwell_ms; /* least time a moved group stays moved before it returns (against
                              flapping); a group that has returned is moved again at once */
    double heavy_weight;   /* weights: the weight of a group above high, rounded to thousandths,
                              POLICY_HEAVY_WEIGHT_MIN..POLICY_HEAVY_WEIGHT_MAX */
    uint64_t heavy_rate_milli; /* every policy: the start rate of a group above high, in
                                  thousandths of a job per second (heavyrate.h); 0: none */
    uint64_t heavy_burst;  /* its burst; 0: one second's worth, at least 1 */
};

/* A snapshot, as read from one stats reply. Strings are views (not NUL-terminated) that live
 * as long as the reply; the policy copies what it keeps. */
struct snap_group {
    struct sl_str name;
    struct sl_str route;   /* n == 0: no route (default) */
    uint64_t count;        /* ready + reserved + delayed */
    double weight;         /* > 0; POLICY_GROUP_WEIGHT from a broker that does not say */
    uint64_t rate_milli;   /* its start rate (group.limit), thousandths per second; 0: none */
    uint64_t burst;        /* its burst; 0 without a limit */
};

struct snap_queue {
    struct sl_str name;
    uint64_t priority, weight, max_inflight;
    uint64_t ready, reserved, delayed, dead;
    bool paused;
};

struct snapshot {
    const struct snap_group *groups;
    size_t ngroups;
    const struct snap_queue *queues;
    size_t nqueues;
    uint64_t now_ms;       /* the router's monotonic clock when the snapshot was taken */
};

struct policy;

/* What a policy file provides. Both append to out and return 0 or SL_ENOMEM (out may then
 * hold part of the decisions: the caller discards them).
 * - decide: the actions on a whole snapshot.
 * - react: the actions for one group the broker reports crossing --high (now at count),
 *   decided without a snapshot from what the policy last saw (its route, its dwell, default's
 *   settings), so the router acts at once, whatever the number of groups; none when the policy
 *   would not move the group now. A queue it creates may exist already (the router takes
 *   `exists` as done); the next decide corrects anything else. */
struct policy_ops {
    const char *name;
    const char *help;      /* one line for --help */
    /* Whether cfg suits this policy beyond what policy_new checks for all: 0 or SL_EBADREQ.
     * NULL: any. */
    int (*check)(const struct policy_cfg *cfg);
    int (*decide)(struct policy *p, const struct snapshot *s, struct action_list *out);
    int (*react)(struct policy *p, struct sl_str group, uint64_t count, uint64_t now_ms,
                 struct action_list *out);
};

/* Creates the policy called name with cfg (copied). Returns 0 with *pp set; SL_ENOTFOUND for
 * an unknown name; SL_EBADREQ when cfg.low > cfg.high or the policy's check refuses cfg (weights:
 * heavy_weight out of range); SL_ENOMEM. */
int policy_new(struct policy **pp, const char *name, const struct policy_cfg *cfg);

/* policy_free(NULL) does nothing. */
void policy_free(struct policy *p);

/* Clears out, then appends the actions the policy takes on s. Also records, for --min-dwell,
 * the route changes s shows. Returns 0 or SL_ENOMEM (out then holds nothing). */
int policy_decide(struct policy *p, const struct snapshot *s, struct action_list *out);

/* Clears out, then appends the policy's reaction to group crossing --high (struct policy_ops,
 * react). Returns 0 or SL_ENOMEM (out then holds nothing). */
int policy_react(struct policy *p, struct sl_str group, uint64_t count, uint64_t now_ms,
                 struct action_list *out);

/* The router carried a out at now_ms: a route or weight change starts the group's dwell now
 * rather than at the next snapshot that shows it (which may be a tick later), and keeps a
 * reaction to a crossing reported a moment later from moving the group again. Other actions
 * are ignored.
 * Returns 0 or SL_ENOMEM (nothing recorded: the next snapshot records the change). */
int policy_note(struct policy *p, const struct action *a, uint64_t now_ms);

/* Forgets the switch history: the policy behaves as a newly started one. The router calls it
 * when it becomes the leader, since what it saw as a standby may be stale. */
void policy_reset(struct policy *p);

const char *policy_name(const struct policy *p);
const struct policy_cfg *policy_cfg(const struct policy *p);

/* The names of the known policies, for --help: "threshold|fair|weights". */
const char *policy_names(void);
/* The policy table, ended by a row with name NULL. */
extern const struct policy_ops *const policy_table[];

/* --- helpers for policy files ------------------------------------------------------------ */

/* Writes "group.<group>" into out (WIRE_NAME_MAX + 1 bytes). false when that name would exceed
 * WIRE_NAME_MAX: such a group cannot have an own queue and is left in default. */
bool policy_own_queue(struct sl_str group, char *out);

/* Whether queue is one of the router's own ("group." and a group name). */
bool policy_is_own_queue(struct sl_str queue);

/* The queue called name in the snapshot being decided, or NULL. Only during a decide. */
const struct snap_queue *policy_find_queue(struct policy *p, struct sl_str name);

/* Milliseconds left before group may return from its own queue (0: it may now), from the
 * switch history that policy_decide updates with every snapshot before it calls the policy's
 * decide. Only the return waits: a move out of default never does. */
uint64_t policy_dwell_left(struct policy *p, struct sl_str group, uint64_t now_ms);

/* The route the policy last saw for group: an enum sw_route (switches.h), or -1 if never. */
int policy_seen_route(struct policy *p, struct sl_str group);

/* How a policy sees a group's weight. */
enum policy_wclass {
    PW_DEFAULT = 0,  /* 1: as every group starts */
    PW_LOWERED = 1,  /* below 1: the router's (weights) */
    PW_RAISED = 2,   /* above 1: a person's, left alone */
};

/* Whether a and b are one weight to the broker (which keeps thousandths). */
bool policy_weight_eq(double a, double b);

enum policy_wclass policy_weight_class(double weight);

/* As policy_dwell_left, for the group's weight: milliseconds left before a lowered weight may
 * return to 1, from the weight history that policy_decide updates with every snapshot. */
uint64_t policy_weight_dwell_left(struct policy *p, struct sl_str group, uint64_t now_ms);

/* The class of the weight the policy last saw for group (enum policy_wclass), or -1 if never. */
int policy_seen_weight(struct policy *p, struct sl_str group);

/* The common shape of a policy that gives heavy groups an own queue with settings want:
 * count > high and in default -> create (if missing) and route; count < low in its own queue
 * -> unroute; own queues in use whose settings differ from want -> update; own queues no
 * longer routed to and empty -> destroy. rule names the policy in the reasons. */
int policy_plan_own_queues(struct policy *p, const struct snapshot *s,
                           const struct action_qset *want, const char *rule,
                           struct action_list *out);

/* The reaction of policies built on policy_plan_own_queues: when count > high, the group was
 * last seen in default (or never; however recently it returned there) and its name is short
 * enough for an own queue: create the own queue with want (the router takes `exists` as done)
 * and route. */
int policy_react_own_queue(struct policy *p, struct sl_str group, uint64_t count,
                           const struct action_qset *want, const char *rule,
                           struct action_list *out);

/* The settings of default in the last snapshot decided (priority 10, weight 1 before any). */
struct action_qset policy_default_qset(const struct policy *p);

#endif
