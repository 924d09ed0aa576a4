/* The router's policies against a real broker in this process (no sockets): the stats reply
 * decoded into a snapshot, the policy's actions carried out by the requests the router sends,
 * and the broker's own scheduler showing what the decisions do to the shares of the workers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "action.h"
#include "broker.h"
#include "err.h"
#include "flow.h"
#include "log.h"
#include "ops.h"
#include "policy.h"
#include "snapshot.h"
#include "support.h"

#include <nng/nng.h>
#include <stdio.h>
#include <string.h>

static const struct policy_cfg cfg_default = {
    .high = 100, .low = 10, .priority = 100, .max_inflight = 0, .min_dwell_ms = 5000,
};
static const struct policy_cfg cfg_weights = {
    .high = 100, .low = 10, .min_dwell_ms = 5000, .heavy_weight = 0.25,
};

static int
setup(void **state)
{
    struct broker_cfg cfg;
    struct broker *b;
    broker_cfg_default(&cfg);
    b = fake_broker(&cfg, 1000 * MS);
    *state = b;
    return 0;
}

static int
teardown(void **state)
{
    broker_free(*state);
    return 0;
}

/* The first half of a router's round, at now_ms: a stats snapshot and the policy's decisions
 * on it, into acts. */
static void
decide_at(struct broker *b, struct policy *p, uint64_t now_ms, struct action_list *acts)
{
    struct snapshot_buf sb;
    struct wire_msg req, rep;
    nng_msg *keep;
    char why[160];

    fake_now = (int64_t)now_ms * MS;
    snapshot_buf_init(&sb);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "stats");
    assert_int_equal(request(b, &req, &rep, &keep), 0);
    assert_int_equal(snapshot_decode(&sb, &rep, now_ms, why, sizeof(why)), 0);
    assert_int_equal(policy_decide(p, &sb.s, acts), 0);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    snapshot_buf_fini(&sb);
}

/* The second half: each action carried out with lease, as the router's requests. rvs (NULL,
 * or room for acts->n) gets each result. Returns how many were refused. */
static size_t
apply_acts(struct broker *b, const struct action_list *acts, uint64_t lease, int *rvs)
{
    struct wire_msg req, rep;
    nng_msg *keep;
    size_t refused = 0;

    for (size_t i = 0; i < acts->n; i++) {
        action_request(&acts->v[i], lease, &req);
        int rv = request(b, &req, &rep, &keep);
        refused += rv != 0;
        if (rvs != NULL) {
            rvs[i] = rv;
        }
        wire_msg_fini(&rep);
        nng_msg_free(keep);
    }
    return refused;
}

/* What the router does in one round, at now_ms: a stats snapshot, the policy's decisions, each
 * carried out with lease. Returns the number of actions; *refused counts those refused. */
static size_t
round_at(struct broker *b, struct policy *p, uint64_t now_ms, uint64_t lease,
         struct action_list *acts, size_t *refused)
{
    decide_at(b, p, now_ms, acts);
    *refused = apply_acts(b, acts, lease, NULL);
    return acts->n;
}

/* A person's change, as ctl sends it: route.set (queue NULL: route.unset), no expect. */
static void
person_routes(struct broker *b, const char *group, const char *queue)
{
    struct wire_msg req, rep;
    nng_msg *keep;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, queue != NULL ? "route.set" : "route.unset");
    wire_set_cstr(&req, WK_GROUP, group);
    if (queue != NULL) {
        wire_set_cstr(&req, WK_QUEUE, queue);
    }
    assert_int_equal(request(b, &req, &rep, &keep), 0);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
}

/* A route.set (queue NULL: route.unset) of group with expect; returns the broker's code and
 * its message in msg. */
static int
route_expecting(struct broker *b, const char *group, const char *queue, const char *expect,
                char *msg, size_t cap)
{
    struct wire_msg req, rep;
    nng_msg *keep;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, queue != NULL ? "route.set" : "route.unset");
    wire_set_cstr(&req, WK_GROUP, group);
    if (queue != NULL) {
        wire_set_cstr(&req, WK_QUEUE, queue);
    }
    wire_set_cstr(&req, WK_EXPECT, expect);
    int rv = request(b, &req, &rep, &keep);
    snprintf(msg, cap, "%.*s", rv != 0 ? (int)rep.v[WK_MSG].s.n : 0,
             rv != 0 ? rep.v[WK_MSG].s.p : "");
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return rv;
}

static void
push(struct broker *b, const char *g, uint32_t n)
{
    static struct sl_str pl[4000];
    struct wire_list l = { n, NULL, pl, NULL };
    struct push_req req = { .group = S(g), .payloads = &l };
    struct push_res r;
    assert_true(n <= 4000);
    for (uint32_t i = 0; i < n; i++) {
        pl[i] = S("p");
    }
    assert_int_equal(broker_push(b, &req, &r), 0);
}

/* Reserves and acks n jobs one at a time, as n busy workers in turn would; counts them per
 * queue name (by_group: per group name) into names/counts (up to 8 names). */
static void
serve_by(struct broker *b, uint32_t n, bool by_group, const char *names[8], uint32_t counts[8])
{
    struct worker *w = flow_worker(b, S("w1"), 1);
    for (int i = 0; i < 8; i++) {
        counts[i] = 0;
    }
    for (uint32_t k = 0; k < n; k++) {
        struct job *j = NULL;
        uint32_t got = 0;
        assert_int_equal(flow_reserve(b, w, 1, NULL, &j, &got), 0);
        assert_int_equal(got, 1);
        const char *qn = by_group ? j->group->name : j->queue->name;
        size_t qlen = by_group ? j->group->name_len : j->queue->name_len;
        for (int i = 0; i < 8; i++) {
            if (names[i] != NULL && strlen(names[i]) == qlen && memcmp(names[i], qn, qlen) == 0) {
                counts[i]++;
                break;
            }
        }
        uint64_t id = j->id, done, missing;
        struct wire_list l = { 1, NULL, NULL, &id };
        assert_int_equal(flow_settle(b, FLOW_ACK, w, &l, NULL, 0, &done, &missing), 0);
        assert_int_equal(done, 1);
    }
}

static void
serve(struct broker *b, uint32_t n, const char *names[8], uint32_t counts[8])
{
    serve_by(b, n, false, names, counts);
}

static const struct queue *
find_queue(struct broker *b, const char *name)
{
    return broker_queue_find(b, S(name));
}

static const struct group *
find_group(struct broker *b, const char *name)
{
    return hmap_get(&b->groups, name, strlen(name));
}

/* The demo: bob floods, alice pushes a little. bob goes to group.bob at priority 100, so the
 * workers serve alice first; bob back to default below low, group.bob destroyed once empty. */
static void
test_threshold_isolates_and_returns(void **state)
{
    struct broker *b = *state;
    struct policy *p = NULL;
    struct action_list acts;
    size_t refused;
    const char *names[8] = { "default", "group.bob" };
    uint32_t counts[8];

    assert_int_equal(policy_new(&p, "threshold", &cfg_default), 0);
    action_list_init(&acts);
    push(b, "bob", 1000);
    push(b, "alice", 20);
    assert_int_equal(round_at(b, p, 1000, 0, &acts, &refused), 2);
    assert_int_equal(refused, 0);
    const struct queue *q = find_queue(b, "group.bob");
    assert_non_null(q);
    assert_int_equal(q->priority, 100);
    assert_ptr_equal(find_group(b, "bob")->route, q);
    assert_int_equal(queue_n(q, JOB_READY), 1000);

    /* alice's 20 jobs go first: among the first 21 served, bob's level earning one turn from
     * the broker's 5% minimum share. */
    serve(b, 21, names, counts);
    assert_int_equal(counts[0], 20);
    assert_int_equal(counts[1], 1);

    /* A second round, and a restarted router's first: nothing to do. */
    assert_int_equal(round_at(b, p, 2000, 0, &acts, &refused), 0);
    struct policy *p2 = NULL;
    assert_int_equal(policy_new(&p2, "threshold", &cfg_default), 0);
    assert_int_equal(round_at(b, p2, 2000, 0, &acts, &refused), 0);
    policy_free(p2);

    /* bob drains to 5: below low, back to default after the dwell; then destroyed. */
    serve(b, 994, names, counts);
    assert_int_equal(counts[1], 994);
    assert_int_equal(round_at(b, p, 6999, 0, &acts, &refused), 0);
    assert_int_equal(round_at(b, p, 7000, 0, &acts, &refused), 1);
    assert_int_equal(acts.v[0].kind, ACT_ROUTE_UNSET);
    assert_null(find_group(b, "bob")->route);
    assert_int_equal(queue_n(find_queue(b, "default"), JOB_READY), 5);
    assert_int_equal(round_at(b, p, 8000, 0, &acts, &refused), 1);
    assert_int_equal(acts.v[0].kind, ACT_QUEUE_DESTROY);
    assert_int_equal(refused, 0);
    assert_null(find_queue(b, "group.bob"));
    assert_int_equal(round_at(b, p, 9000, 0, &acts, &refused), 0);
    action_list_fini(&acts);
    policy_free(p);
}

/* Fair: default and each heavy group's queue take equal turns of the workers. */
static void
test_fair_shares_the_workers_equally(void **state)
{
    struct broker *b = *state;
    struct policy *p = NULL;
    struct action_list acts;
    size_t refused;
    const char *names[8] = { "default", "group.bob", "group.carol" };
    uint32_t counts[8];

    assert_int_equal(policy_new(&p, "fair", &cfg_default), 0);
    action_list_init(&acts);
    push(b, "bob", 3000);
    push(b, "carol", 3000);
    push(b, "alice", 90);
    push(b, "dave", 90);
    assert_int_equal(round_at(b, p, 1000, 0, &acts, &refused), 4);
    assert_int_equal(refused, 0);
    assert_int_equal(find_queue(b, "group.bob")->priority, 10);
    assert_int_equal(find_queue(b, "group.carol")->weight, 1);
    serve(b, 150, names, counts);
    for (int i = 0; i < 3; i++) {
        print_message("# fair: %s served %u of 150\n", names[i], counts[i]);
        assert_in_range(counts[i], 49, 51);
    }
    action_list_fini(&acts);
    policy_free(p);
}

/* The same load under threshold: the light groups in default go first; the heavy groups get
 * only the broker's minimum share (5%) meanwhile. */
static void
test_threshold_serves_default_first(void **state)
{
    struct broker *b = *state;
    struct policy *p = NULL;
    struct action_list acts;
    size_t refused;
    const char *names[8] = { "default", "group.bob", "group.carol" };
    uint32_t counts[8];

    assert_int_equal(policy_new(&p, "threshold", &cfg_default), 0);
    action_list_init(&acts);
    push(b, "bob", 3000);
    push(b, "carol", 3000);
    push(b, "alice", 90);
    push(b, "dave", 90);
    assert_int_equal(round_at(b, p, 1000, 0, &acts, &refused), 4);
    serve(b, 150, names, counts);
    print_message("# threshold: default served %u of 150\n", counts[0]);
    assert_in_range(counts[0], 140, 145);
    assert_int_equal(counts[0] + counts[1] + counts[2], 150);
    action_list_fini(&acts);
    policy_free(p);
}

/* Changes carrying a lease that is not the holder's are refused and change nothing. */
static void
test_stale_lease_changes_nothing(void **state)
{
    struct broker *b = *state;
    struct policy *p = NULL;
    struct action_list acts;
    struct wire_msg req, rep;
    nng_msg *keep;
    size_t refused;

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "lease.acquire");
    wire_set_cstr(&req, WK_NAME, "router:a");
    wire_set_u64(&req, WK_TTL_MS, 2000);
    assert_int_equal(request(b, &req, &rep, &keep), 0);
    uint64_t lease = rep.v[WK_LEASE].u;
    wire_msg_fini(&rep);
    nng_msg_free(keep);

    assert_int_equal(policy_new(&p, "threshold", &cfg_default), 0);
    action_list_init(&acts);
    push(b, "bob", 1000);
    assert_int_equal(round_at(b, p, 1000, lease + 1, &acts, &refused), 2);
    assert_int_equal(refused, 2);
    assert_null(find_queue(b, "group.bob"));
    assert_null(find_group(b, "bob")->route);
    assert_int_equal(round_at(b, p, 1100, lease, &acts, &refused), 2);
    assert_int_equal(refused, 0);
    assert_non_null(find_queue(b, "group.bob"));
    action_list_fini(&acts);
    policy_free(p);
}

static const char *
route_name(struct broker *b, const char *group)
{
    const struct group *g = find_group(b, group);
    return g == NULL || g->route == NULL ? "" : g->route->name;
}

/* route.set and route.unset with `expect` change the route only while it is the one expected. */
static void
test_route_expect_is_compare_and_set(void **state)
{
    struct broker *b = *state;
    struct queue_settings s = { 0 };
    char msg[256];

    assert_int_equal(broker_queue_create(b, S("group.bob"), &s), 0);
    assert_int_equal(broker_queue_create(b, S("special"), &s), 0);
    push(b, "bob", 3);
    assert_int_equal(route_expecting(b, "bob", "group.bob", "", msg, sizeof(msg)), 0);
    assert_string_equal(route_name(b, "bob"), "group.bob");
    /* Stale: the caller believes bob is in default. */
    assert_int_equal(route_expecting(b, "bob", "special", "", msg, sizeof(msg)), SL_ECONFLICT);
    assert_non_null(strstr(msg, "group bob is routed to group.bob, not to default"));
    assert_string_equal(route_name(b, "bob"), "group.bob");
    assert_int_equal(queue_n(find_queue(b, "group.bob"), JOB_READY), 3); /* nothing moved */
    assert_int_equal(route_expecting(b, "bob", NULL, "special", msg, sizeof(msg)), SL_ECONFLICT);
    assert_int_equal(route_expecting(b, "bob", NULL, "default", msg, sizeof(msg)), SL_ECONFLICT);
    assert_string_equal(route_name(b, "bob"), "group.bob");
    /* Current: done. */
    assert_int_equal(route_expecting(b, "bob", "special", "group.bob", msg, sizeof(msg)), 0);
    assert_string_equal(route_name(b, "bob"), "special");
    assert_int_equal(route_expecting(b, "bob", NULL, "special", msg, sizeof(msg)), 0);
    assert_string_equal(route_name(b, "bob"), "");
    assert_int_equal(route_expecting(b, "bob", "special", "default", msg, sizeof(msg)), 0);
    assert_string_equal(route_name(b, "bob"), "special");
    /* An expect that cannot name a queue is a bad request, and changes nothing. */
    assert_int_equal(route_expecting(b, "bob", NULL, "no such!", msg, sizeof(msg)),
                     SL_EBADREQ);
    assert_string_equal(route_name(b, "bob"), "special");
    /* Without expect, as a person sends it: unconditional. */
    person_routes(b, "bob", "group.bob");
    assert_string_equal(route_name(b, "bob"), "group.bob");
}

/* A person routes a heavy group between the router's snapshot and its change: the router's
 * route.set is refused (`conflict`) and the person's route stays; the next round sees it and
 * leaves it alone (and clears away the own queue it had created for nothing). */
static void
test_router_leaves_a_route_set_after_its_snapshot(void **state)
{
    struct broker *b = *state;
    struct policy *p = NULL;
    struct action_list acts;
    struct queue_settings s = { 0 };
    int rvs[4];
    size_t refused;

    assert_int_equal(policy_new(&p, "threshold", &cfg_default), 0);
    action_list_init(&acts);
    push(b, "bob", 1000);
    decide_at(b, p, 1000, &acts);
    assert_int_equal(acts.n, 2);
    assert_int_equal(acts.v[1].kind, ACT_ROUTE_SET);
    assert_string_equal(acts.v[1].expect, ""); /* seen in default */
    assert_int_equal(broker_queue_create(b, S("special"), &s), 0);
    person_routes(b, "bob", "special");
    assert_int_equal(apply_acts(b, &acts, 0, rvs), 1);
    assert_int_equal(rvs[0], 0); /* its own queue: created */
    assert_int_equal(rvs[1], SL_ECONFLICT);
    assert_string_equal(route_name(b, "bob"), "special");
    assert_int_equal(queue_n(find_queue(b, "special"), JOB_READY), 1000);
    /* The next round: a route set by a person is left alone; the unused own queue goes. */
    assert_int_equal(round_at(b, p, 2000, 0, &acts, &refused), 1);
    assert_int_equal(acts.v[0].kind, ACT_QUEUE_DESTROY);
    assert_int_equal(refused, 0);
    assert_string_equal(route_name(b, "bob"), "special");
    assert_int_equal(round_at(b, p, 3000, 0, &acts, &refused), 0);
    action_list_fini(&acts);
    policy_free(p);
}

/* The same race on the way back: the router would return a drained group from its own queue
 * to default, but a person routed it elsewhere meanwhile. */
static void
test_router_unroute_keeps_a_newer_route(void **state)
{
    struct broker *b = *state;
    struct policy *p = NULL;
    struct action_list acts;
    struct queue_settings s = { 0 };
    const char *names[8] = { "default", "group.bob" };
    uint32_t counts[8];
    int rvs[4];
    size_t refused;

    assert_int_equal(policy_new(&p, "threshold", &cfg_default), 0);
    action_list_init(&acts);
    push(b, "bob", 200);
    assert_int_equal(round_at(b, p, 1000, 0, &acts, &refused), 2);
    assert_string_equal(route_name(b, "bob"), "group.bob");
    assert_int_equal(round_at(b, p, 2000, 0, &acts, &refused), 0); /* its dwell starts */
    serve(b, 195, names, counts);
    decide_at(b, p, 7000, &acts);
    assert_int_equal(acts.n, 1);
    assert_int_equal(acts.v[0].kind, ACT_ROUTE_UNSET);
    assert_string_equal(acts.v[0].expect, "group.bob");
    assert_int_equal(broker_queue_create(b, S("special"), &s), 0);
    person_routes(b, "bob", "special");
    assert_int_equal(apply_acts(b, &acts, 0, rvs), 1);
    assert_int_equal(rvs[0], SL_ECONFLICT);
    assert_string_equal(route_name(b, "bob"), "special");
    action_list_fini(&acts);
    policy_free(p);
}

/* The fast reaction to a group crossing --high is decided on what the policy last saw (here:
 * nothing): a route a person set since is not overwritten. */
static void
test_router_reaction_keeps_a_newer_route(void **state)
{
    struct broker *b = *state;
    struct policy *p = NULL;
    struct action_list acts;
    struct queue_settings s = { 0 };
    int rvs[4];

    assert_int_equal(policy_new(&p, "threshold", &cfg_default), 0);
    action_list_init(&acts);
    assert_int_equal(broker_queue_create(b, S("special"), &s), 0);
    person_routes(b, "gK", "special");
    push(b, "gK", 200);
    assert_int_equal(policy_react(p, S("gK"), 200, 1000, &acts), 0);
    assert_int_equal(acts.n, 2);
    assert_int_equal(acts.v[1].kind, ACT_ROUTE_SET);
    assert_int_equal(apply_acts(b, &acts, 0, rvs), 1);
    assert_int_equal(rvs[1], SL_ECONFLICT);
    assert_string_equal(route_name(b, "gK"), "special");
    assert_int_equal(queue_n(find_queue(b, "special"), JOB_READY), 200);
    action_list_fini(&acts);
    policy_free(p);
}

/* Weights: bob's flood is slowed in default itself (no queue, no route): alice and dave take
 * four jobs to bob's one while they have any. The change carries the lease (a stale one
 * changes nothing); bob returns to weight 1 once below low and the dwell is over. */
static void
test_weights_slows_a_flood_in_place(void **state)
{
    struct broker *b = *state;
    struct policy *p = NULL;
    struct action_list acts;
    struct wire_msg req, rep;
    nng_msg *keep;
    size_t refused;
    const char *names[8] = { "alice", "dave", "bob" };
    uint32_t counts[8];

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "lease.acquire");
    wire_set_cstr(&req, WK_NAME, "router:a");
    wire_set_u64(&req, WK_TTL_MS, 60000);
    assert_int_equal(request(b, &req, &rep, &keep), 0);
    uint64_t lease = rep.v[WK_LEASE].u;
    wire_msg_fini(&rep);
    nng_msg_free(keep);

    assert_int_equal(policy_new(&p, "weights", &cfg_weights), 0);
    action_list_init(&acts);
    push(b, "bob", 3000);
    push(b, "alice", 90);
    push(b, "dave", 90);
    assert_int_equal(round_at(b, p, 1000, lease + 1, &acts, &refused), 1);
    assert_int_equal(refused, 1);
    assert_int_equal(find_group(b, "bob")->weight, GROUP_WEIGHT_ONE);
    assert_int_equal(round_at(b, p, 1100, lease, &acts, &refused), 1);
    assert_int_equal(refused, 0);
    assert_int_equal(acts.v[0].kind, ACT_GROUP_WEIGHT);
    assert_int_equal(find_group(b, "bob")->weight, 250);
    assert_null(find_group(b, "bob")->route);
    assert_null(find_queue(b, "group.bob"));
    /* The broker's weight read back: nothing more to do. */
    assert_int_equal(round_at(b, p, 2000, lease, &acts, &refused), 0);

    serve_by(b, 180, true, names, counts);
    for (int i = 0; i < 3; i++) {
        print_message("# weights: %s served %u of 180\n", names[i], counts[i]);
    }
    assert_in_range(counts[0], 78, 82);
    assert_in_range(counts[1], 78, 82);
    assert_in_range(counts[2], 18, 22);

    /* All but 5 of bob's served: back to 1 once the dwell (from 2000, the first snapshot
     * showing the lowered weight) is over. */
    serve_by(b, 2995, true, names, counts);
    assert_int_equal(group_count(find_group(b, "bob")), 5);
    assert_int_equal(round_at(b, p, 6999, lease, &acts, &refused), 0);
    assert_int_equal(round_at(b, p, 7000, lease, &acts, &refused), 1);
    assert_int_equal(refused, 0);
    assert_int_equal(find_group(b, "bob")->weight, GROUP_WEIGHT_ONE);
    assert_int_equal(round_at(b, p, 8000, lease, &acts, &refused), 0);
    action_list_fini(&acts);
    policy_free(p);
}

/* A weight a person sets after the router's snapshot stays: the router's change carries the
 * weight it saw (`expect`) and is refused with `conflict`. */
static void
test_weights_leaves_a_weight_set_meanwhile(void **state)
{
    struct broker *b = *state;
    struct policy *p = NULL;
    struct action_list acts;
    struct wire_msg req, rep;
    nng_msg *keep;
    int rvs[4];

    assert_int_equal(policy_new(&p, "weights", &cfg_weights), 0);
    action_list_init(&acts);
    push(b, "bob", 3000);
    decide_at(b, p, 1000, &acts);
    assert_int_equal(acts.n, 1);
    assert_string_equal(acts.v[0].expect, "1.000");
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.weight"); /* as ctl groups weight sends it */
    wire_set_cstr(&req, WK_GROUP, "bob");
    wire_set_num(&req, WK_WEIGHT, 4);
    assert_int_equal(request(b, &req, &rep, &keep), 0);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    assert_int_equal(apply_acts(b, &acts, 0, rvs), 1);
    assert_int_equal(rvs[0], SL_ECONFLICT);
    assert_int_equal(find_group(b, "bob")->weight, 4 * GROUP_WEIGHT_ONE);
    /* An expect that is not a weight is a bad request. */
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.weight");
    wire_set_cstr(&req, WK_GROUP, "bob");
    wire_set_num(&req, WK_WEIGHT, 1);
    wire_set_cstr(&req, WK_EXPECT, "four");
    assert_int_equal(request(b, &req, &rep, &keep), SL_EBADREQ);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    /* The next round sees 4, a person's weight, and leaves it. */
    decide_at(b, p, 2000, &acts);
    assert_int_equal(acts.n, 0);
    action_list_fini(&acts);
    policy_free(p);
}

int
main(void)
{
    log_level = LOG_WARN;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_threshold_isolates_and_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fair_shares_the_workers_equally, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_serves_default_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_lease_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_expect_is_compare_and_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_router_leaves_a_route_set_after_its_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_router_unroute_keeps_a_newer_route, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_router_reaction_keeps_a_newer_route, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_weights_slows_a_flood_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weights_leaves_a_weight_set_meanwhile, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
