#include "policy.h"

#include "err.h"
#include "hmap.h"
#include "heavyrate.h"
#include "switches.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct policy_ops policy_threshold_ops;
extern const struct policy_ops policy_fair_ops;
extern const struct policy_ops policy_weights_ops;

/* One row per policy file. */
const struct policy_ops *const policy_table[] = {
    &policy_threshold_ops,
    &policy_fair_ops,
    &policy_weights_ops,
    NULL,
};

/* Half the broker's step of a weight (a thousandth): closer weights are one. */
#define WEIGHT_EPSILON 0.0005

struct policy {
    const struct policy_ops *ops;
    struct policy_cfg cfg;
    struct switches sw;  /* routes */
    struct switches wsw; /* weights, classed as routes are: see weight_route */
    /* Valid during one decide only (keys are views into its snapshot): */
    struct hmap queues;  /* queue name -> const struct snap_queue * */
    struct hmap targets; /* queue name -> the first group routed to it (const struct snap_group *) */
    struct action_qset dflt; /* default's settings in the last snapshot (max_inflight unused) */
};

/* --- the policy object ------------------------------------------------------------------- */

const char *
policy_names(void)
{
    return "threshold|fair|weights";
}

int
policy_new(struct policy **pp, const char *name, const struct policy_cfg *cfg)
{
    const struct policy_ops *ops = NULL;

    for (size_t i = 0; policy_table[i] != NULL; i++) {
        if (strcmp(policy_table[i]->name, name) == 0) {
            ops = policy_table[i];
        }
    }
    if (ops == NULL) {
        return SL_ENOTFOUND;
    }
    if (cfg->low > cfg->high || (ops->check != NULL && ops->check(cfg) != 0)) {
        return SL_EBADREQ;
    }
    struct policy *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return SL_ENOMEM;
    }
    p->ops = ops;
    p->cfg = *cfg;
    p->dflt = (struct action_qset){ POLICY_DEFAULT_PRIORITY, POLICY_DEFAULT_WEIGHT, 0 };
    switches_init(&p->sw);
    switches_init(&p->wsw);
    hmap_init(&p->queues);
    hmap_init(&p->targets);
    *pp = p;
    return 0;
}

void
policy_free(struct policy *p)
{
    if (p == NULL) {
        return;
    }
    switches_fini(&p->sw);
    switches_fini(&p->wsw);
    hmap_fini(&p->queues);
    hmap_fini(&p->targets);
    free(p);
}

void
policy_reset(struct policy *p)
{
    switches_clear(&p->sw);
    switches_clear(&p->wsw);
}

const char *
policy_name(const struct policy *p)
{
    return p->ops->name;
}

const struct policy_cfg *
policy_cfg(const struct policy *p)
{
    return &p->cfg;
}

bool
policy_own_queue(struct sl_str group, char *out)
{
    size_t plen = sizeof(POLICY_QUEUE_PREFIX) - 1;
    if (group.n == 0 || plen + group.n > WIRE_NAME_MAX) {
        return false;
    }
    memcpy(out, POLICY_QUEUE_PREFIX, plen);
    memcpy(out + plen, group.p, group.n);
    out[plen + group.n] = '\0';
    return true;
}

bool
policy_is_own_queue(struct sl_str queue)
{
    size_t plen = sizeof(POLICY_QUEUE_PREFIX) - 1;
    return queue.n > plen && memcmp(queue.p, POLICY_QUEUE_PREFIX, plen) == 0;
}

static bool
str_is(struct sl_str s, const char *z)
{
    size_t n = strlen(z);
    return s.n == n && memcmp(s.p, z, n) == 0;
}

/* Where g's route points, as the switch history classifies it. */
static enum sw_route
route_kind(const struct snap_group *g)
{
    char own[WIRE_NAME_MAX + 1];
    if (g->route.n == 0 || str_is(g->route, "default")) {
        return SW_DEFAULT;
    }
    if (policy_own_queue(g->name, own) && str_is(g->route, own)) {
        return SW_OWN;
    }
    return SW_OTHER;
}

bool
policy_weight_eq(double a, double b)
{
    return a - b < WEIGHT_EPSILON && b - a < WEIGHT_EPSILON;
}

enum policy_wclass
policy_weight_class(double weight)
{
    if (policy_weight_eq(weight, POLICY_GROUP_WEIGHT)) {
        return PW_DEFAULT;
    }
    return weight < POLICY_GROUP_WEIGHT ? PW_LOWERED : PW_RAISED;
}

/* The weight history is a switch history: weight 1 is where a group starts (as default), a
 * lowered weight is the router's change that --min-dwell holds (as an own queue), a raised one
 * a person's (as another queue). A restarted router thus holds a lowered group a whole dwell. */
static enum sw_route
weight_route(double weight)
{
    static const enum sw_route routes[] = {
        [PW_DEFAULT] = SW_DEFAULT, [PW_LOWERED] = SW_OWN, [PW_RAISED] = SW_OTHER,
    };
    return routes[policy_weight_class(weight)];
}

/* Indexes this snapshot's queues and route targets. */
static int
index_snapshot(struct policy *p, const struct snapshot *s)
{
    hmap_fini(&p->queues);
    hmap_fini(&p->targets);
    if (hmap_reserve(&p->queues, s->nqueues) != 0) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < s->nqueues; i++) {
        hmap_put(&p->queues, s->queues[i].name.p, s->queues[i].name.n, (void *)&s->queues[i]);
    }
    for (size_t i = 0; i < s->ngroups; i++) {
        const struct snap_group *g = &s->groups[i];
        if (g->route.n > 0 && hmap_get(&p->targets, g->route.p, g->route.n) == NULL &&
            hmap_put(&p->targets, g->route.p, g->route.n, (void *)g) != 0) {
            return SL_ENOMEM;
        }
    }
    return 0;
}

int
policy_decide(struct policy *p, const struct snapshot *s, struct action_list *out)
{
    int rv;

    action_list_clear(out);
    for (size_t i = 0; i < s->ngroups; i++) {
        const struct snap_group *g = &s->groups[i];
        if (switches_observe(&p->sw, g->name, route_kind(g), s->now_ms) == NULL ||
            switches_observe(&p->wsw, g->name, weight_route(g->weight), s->now_ms) == NULL) {
            return SL_ENOMEM;
        }
    }
    switches_sweep(&p->sw);
    switches_sweep(&p->wsw);
    if ((rv = index_snapshot(p, s)) == 0) {
        const struct snap_queue *d = policy_find_queue(p, SL_STR_LIT("default"));
        if (d != NULL) {
            p->dflt = (struct action_qset){ d->priority, d->weight, 0 };
        }
        rv = p->ops->decide(p, s, out);
    }
    if (rv == 0) {
        rv = heavyrate_plan(&p->cfg, s, out);
    }
    /* The indexes point into s, which dies after this call. */
    hmap_fini(&p->queues);
    hmap_fini(&p->targets);
    if (rv != 0) {
        action_list_clear(out);
    }
    return rv;
}

int
policy_react(struct policy *p, struct sl_str group, uint64_t count, uint64_t now_ms,
             struct action_list *out)
{
    action_list_clear(out);
    int rv = p->ops->react(p, group, count, now_ms, out);
    if (rv != 0) {
        action_list_clear(out);
    }
    return rv;
}

int
policy_note(struct policy *p, const struct action *a, uint64_t now_ms)
{
    struct sl_str g = { a->group, (uint32_t)strlen(a->group) };
    enum sw_route to;
    char own[WIRE_NAME_MAX + 1];

    if (a->kind == ACT_GROUP_WEIGHT) {
        return switches_set(&p->wsw, g, weight_route(a->weight), now_ms) != NULL ? 0 : SL_ENOMEM;
    }
    if (a->kind == ACT_ROUTE_UNSET) {
        to = SW_DEFAULT;
    } else if (a->kind == ACT_ROUTE_SET) {
        to = policy_own_queue(g, own) && strcmp(own, a->queue) == 0 ? SW_OWN : SW_OTHER;
    } else {
        return 0;
    }
    return switches_set(&p->sw, g, to, now_ms) != NULL ? 0 : SL_ENOMEM;
}

struct action_qset
policy_default_qset(const struct policy *p)
{
    return p->dflt;
}

const struct snap_queue *
policy_find_queue(struct policy *p, struct sl_str name)
{
    return hmap_get(&p->queues, name.p, name.n);
}

uint64_t
policy_dwell_left(struct policy *p, struct sl_str group, uint64_t now_ms)
{
    return switches_dwell_left(switches_get(&p->sw, group), p->cfg.min_dwell_ms, now_ms);
}

int
policy_seen_route(struct policy *p, struct sl_str group)
{
    const struct sw_entry *e = switches_get(&p->sw, group);
    return e == NULL ? -1 : (int)e->route;
}

uint64_t
policy_weight_dwell_left(struct policy *p, struct sl_str group, uint64_t now_ms)
{
    return switches_dwell_left(switches_get(&p->wsw, group), p->cfg.min_dwell_ms, now_ms);
}

int
policy_seen_weight(struct policy *p, struct sl_str group)
{
    static const int classes[] = {
        [SW_DEFAULT] = PW_DEFAULT, [SW_OWN] = PW_LOWERED, [SW_OTHER] = PW_RAISED,
    };
    const struct sw_entry *e = switches_get(&p->wsw, group);
    return e == NULL ? -1 : classes[e->route];
}

/* --- the shared plan: an own queue for each heavy group ---------------------------------- */

/* The group an action is about, and the route the snapshot shows for it: a route change is
 * made only if the group is still there (a person may have routed it since). */
static void
set_group(struct action *a, const struct snap_group *g)
{
    memcpy(a->group, g->name.p, g->name.n);
    a->group[g->name.n] = '\0';
    a->count = g->count;
    if (g->route.n <= WIRE_NAME_MAX) {
        memcpy(a->expect, g->route.p, g->route.n);
        a->expect[g->route.n] = '\0';
    }
}

/* Writes what differs between q and want ("priority 10 -> 100, weight 3 -> 1") into out; false
 * when nothing does. */
static bool
qset_diff(const struct snap_queue *q, const struct action_qset *want, char *out, size_t cap)
{
    const struct {
        const char *name;
        uint64_t have, want;
    } f[] = {
        { "priority", q->priority, want->priority },
        { "weight", q->weight, want->weight },
        { "max_inflight", q->max_inflight, want->max_inflight },
    };
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (f[i].have == f[i].want) {
            continue;
        }
        int k = snprintf(out + n, cap - n, "%s%s %" PRIu64 " -> %" PRIu64, n > 0 ? ", " : "",
                         f[i].name, f[i].have, f[i].want);
        if (k > 0) {
            n += (size_t)k < cap - n ? (size_t)k : cap - n - 1;
        }
    }
    return out[0] != '\0';
}

static int
add_update(const struct snap_queue *q, const struct snap_group *g,
           const struct action_qset *want, const char *rule, struct action_list *out)
{
    char diff[ACTION_REASON_MAX];

    if (!qset_diff(q, want, diff, sizeof(diff))) {
        return 0;
    }
    struct action *a = action_list_add(out, ACT_QUEUE_UPDATE);
    if (a == NULL) {
        return SL_ENOMEM;
    }
    set_group(a, g);
    memcpy(a->queue, q->name.p, q->name.n);
    a->queue[q->name.n] = '\0';
    a->set = *want;
    snprintf(a->reason, sizeof(a->reason), "%s (%s)", diff, rule);
    return 0;
}

/* A heavy group in default: its own queue (created or brought in line), then the route. An
 * own queue that exists already is added to planned, so that the clean-up keeps it. */
static int
plan_isolate(struct policy *p, const struct snap_group *g, const char *own,
             const struct action_qset *want, const char *rule, struct hmap *planned,
             struct action_list *out)
{
    struct sl_str name = { own, (uint32_t)strlen(own) };
    const struct snap_queue *q = policy_find_queue(p, name);
    struct action *a;
    int rv;

    if (q != NULL && hmap_put(planned, q->name.p, q->name.n, (void *)q) != 0) {
        return SL_ENOMEM;
    }

    if (q == NULL) {
        if ((a = action_list_add(out, ACT_QUEUE_CREATE)) == NULL) {
            return SL_ENOMEM;
        }
        set_group(a, g);
        snprintf(a->queue, sizeof(a->queue), "%s", own);
        a->set = *want;
        snprintf(a->reason, sizeof(a->reason),
                 "own queue at priority %" PRIu64 ", weight %" PRIu64 " (%s)", want->priority,
                 want->weight, rule);
    } else if ((rv = add_update(q, g, want, rule, out)) != 0) {
        return rv;
    }
    if ((a = action_list_add(out, ACT_ROUTE_SET)) == NULL) {
        return SL_ENOMEM;
    }
    set_group(a, g);
    snprintf(a->queue, sizeof(a->queue), "%s", own);
    snprintf(a->reason, sizeof(a->reason), "count %" PRIu64 " > high %" PRIu64, g->count,
             p->cfg.high);
    return 0;
}

/* Own queues nobody routes to (or is about to) that hold no live job: destroyed. Jobs still
 * reserved from them finish first; dead jobs alone do not keep a queue: they move to default,
 * where they stay listable and retryable. */
static int
plan_cleanup(struct policy *p, const struct snapshot *s, const struct hmap *planned,
             struct action_list *out)
{
    for (size_t i = 0; i < s->nqueues; i++) {
        const struct snap_queue *q = &s->queues[i];
        if (!policy_is_own_queue(q->name) ||
            hmap_get(&p->targets, q->name.p, q->name.n) != NULL ||
            hmap_get(planned, q->name.p, q->name.n) != NULL ||
            q->ready + q->reserved + q->delayed > 0) {
            continue;
        }
        struct action *a = action_list_add(out, ACT_QUEUE_DESTROY);
        if (a == NULL) {
            return SL_ENOMEM;
        }
        memcpy(a->queue, q->name.p, q->name.n);
        a->queue[q->name.n] = '\0';
        a->force = q->dead > 0;
        if (q->dead > 0) {
            snprintf(a->reason, sizeof(a->reason),
                     "no longer routed to; holds only %" PRIu64 " dead jobs (moved to default)",
                     q->dead);
        } else {
            snprintf(a->reason, sizeof(a->reason), "empty and no longer routed to");
        }
    }
    return 0;
}

int
policy_plan_own_queues(struct policy *p, const struct snapshot *s,
                       const struct action_qset *want, const char *rule,
                       struct action_list *out)
{
    struct hmap planned; /* own queues about to be routed to: not to be destroyed */
    char own[WIRE_NAME_MAX + 1];
    int rv = 0;

    hmap_init(&planned);
    for (size_t i = 0; i < s->ngroups && rv == 0; i++) {
        const struct snap_group *g = &s->groups[i];
        if (!policy_own_queue(g->name, own)) {
            continue; /* "group." + its name is too long for a queue: it stays in default */
        }
        enum sw_route kind = route_kind(g);
        /* Only the return waits for the dwell (against flapping): a group that returned a
         * moment ago and floods again is moved at once, or its burst lands in default. */
        if (kind == SW_DEFAULT && g->count > p->cfg.high) {
            rv = plan_isolate(p, g, own, want, rule, &planned, out);
        } else if (kind == SW_OWN && g->count < p->cfg.low &&
                   policy_dwell_left(p, g->name, s->now_ms) == 0) {
            struct action *a = action_list_add(out, ACT_ROUTE_UNSET);
            if (a == NULL) {
                rv = SL_ENOMEM;
                break;
            }
            set_group(a, g);
            snprintf(a->reason, sizeof(a->reason), "count %" PRIu64 " < low %" PRIu64, g->count,
                     p->cfg.low);
        } else if (kind == SW_OWN) {
            const struct snap_queue *q = policy_find_queue(p, g->route);
            if (q != NULL) {
                rv = add_update(q, g, want, rule, out);
            }
        }
    }
    if (rv == 0) {
        rv = plan_cleanup(p, s, &planned, out);
    }
    hmap_fini(&planned);
    return rv;
}

int
policy_react_own_queue(struct policy *p, struct sl_str group, uint64_t count,
                       const struct action_qset *want, const char *rule,
                       struct action_list *out)
{
    char own[WIRE_NAME_MAX + 1];
    int seen = policy_seen_route(p, group);
    struct action *a;

    if (count <= p->cfg.high || (seen != -1 && seen != SW_DEFAULT) ||
        !policy_own_queue(group, own)) {
        return 0;
    }
    if ((a = action_list_add(out, ACT_QUEUE_CREATE)) == NULL) {
        return SL_ENOMEM;
    }
    memcpy(a->group, group.p, group.n);
    a->group[group.n] = '\0';
    a->count = count;
    snprintf(a->queue, sizeof(a->queue), "%s", own);
    a->set = *want;
    snprintf(a->reason, sizeof(a->reason),
             "own queue at priority %" PRIu64 ", weight %" PRIu64 " (%s)", want->priority,
             want->weight, rule);
    if ((a = action_list_add(out, ACT_ROUTE_SET)) == NULL) {
        return SL_ENOMEM;
    }
    memcpy(a->group, group.p, group.n);
    a->group[group.n] = '\0';
    a->count = count;
    snprintf(a->queue, sizeof(a->queue), "%s", own);
    snprintf(a->reason, sizeof(a->reason), "count %" PRIu64 " > high %" PRIu64, count,
             p->cfg.high);
    /* expect stays "": the group was last seen in default (or never), and is routed only if it
     * still is, not if a person routed it since. */
    return 0;
}
