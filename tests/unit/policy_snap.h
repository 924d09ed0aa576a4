/* Snapshots built by hand for the policy tests (test_policy.c, test_policy_weights.c): the
 * router's default options, groups and queues added one by one, and the checks the tests
 * share. Include after cmocka.h. */
#ifndef SLUICE_TESTS_POLICY_SNAP_H
#define SLUICE_TESTS_POLICY_SNAP_H

#include "policy.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static inline struct sl_str
S(const char *z)
{
    return (struct sl_str){ z, (uint32_t)strlen(z) };
}

static const struct policy_cfg cfg_default = {
    .high = 100, .low = 10, .priority = 100, .max_inflight = 0, .min_dwell_ms = 5000,
    .heavy_weight = 0.25,
};

/* A snapshot under construction: up to 8 groups and 8 queues, default always first. */
struct snap {
    struct snap_group g[8];
    struct snap_queue q[8];
    struct snapshot s;
};

static inline void
snap_init(struct snap *x, uint64_t now_ms)
{
    memset(x, 0, sizeof(*x));
    x->q[0] = (struct snap_queue){ .name = S("default"), .priority = 10, .weight = 1 };
    x->s.groups = x->g;
    x->s.queues = x->q;
    x->s.nqueues = 1;
    x->s.now_ms = now_ms;
}

static inline void
group(struct snap *x, const char *name, const char *route, uint64_t count)
{
    x->g[x->s.ngroups++] = (struct snap_group){ S(name), route ? S(route) : S(""), count, 1.0, 0, 0 };
}

/* A group in default at weight. */
static inline void
wgroup(struct snap *x, const char *name, uint64_t count, double weight)
{
    x->g[x->s.ngroups++] = (struct snap_group){ S(name), S(""), count, weight, 0, 0 };
}

static inline struct snap_queue *
queue(struct snap *x, const char *name, uint64_t prio, uint64_t ready)
{
    struct snap_queue *q = &x->q[x->s.nqueues++];
    *q = (struct snap_queue){ .name = S(name), .priority = prio, .weight = 1, .ready = ready };
    return q;
}

static inline struct policy *
mk(const char *name, const struct policy_cfg *cfg)
{
    struct policy *p = NULL;
    assert_int_equal(policy_new(&p, name, cfg), 0);
    return p;
}

/* Whether the policy would react to g crossing --high at count, now_ms. */
static inline bool
would_move(struct policy *p, struct sl_str g, uint64_t count, uint64_t now_ms)
{
    struct action_list out;
    action_list_init(&out);
    assert_int_equal(policy_react(p, g, count, now_ms, &out), 0);
    bool moved = out.n > 0;
    action_list_fini(&out);
    return moved;
}

static inline void
decide(struct policy *p, struct snap *x, struct action_list *out)
{
    assert_int_equal(policy_decide(p, &x->s, out), 0);
}

static inline void
check(const struct action *a, enum action_kind kind, const char *group, const char *queue)
{
    assert_int_equal(a->kind, kind);
    assert_string_equal(a->group, group);
    assert_string_equal(a->queue, queue);
}

static inline double
seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
