/* broker/change: every change of the broker's state reaches the consumers once, in the order
 * it is made, described by the function that made it, carrying the request that made it; and
 * replaying a journal feeds no consumer (only the state is rebuilt). The change hook records
 * what the consumers are fed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "change.h"
#include "err.h"
#include "flow.h"
#include "journal.h"
#include "log.h"
#include "ops.h"
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 (1700000000000LL * MS)
#define SEEN_MAX 64

/* What the hook saw of one change, as text: "kind detail... by=OP" (by=- without a request). */
struct seen {
    char line[SEEN_MAX][256];
    unsigned n;
};

static const char *const kind_names[CH_KINDS] = {
    [CH_PUSH] = "push",
    [CH_JOB] = "job",
    [CH_JOB_FIELDS] = "fields",
    [CH_JOB_GONE] = "deleted",
    [CH_JOB_ERR] = "error",
    [CH_QUEUE] = "queue",
    [CH_QUEUE_GONE] = "destroyed",
    [CH_ROUTE] = "route",
    [CH_GROUP_WEIGHT] = "weight",
    [CH_FLUSH] = "flush",
    [CH_PURGE] = "purge",
};

static const char *const state_names[] = { "none", "ready", "reserved", "delayed", "dead" };

static const char *
qn(const struct queue *q)
{
    return q != NULL ? q->name : "-";
}

static void
describe(char *p, size_t cap, const struct change *c)
{
    const struct job *j = c->job;
    switch (c->kind) {
    case CH_PUSH:
        snprintf(p, cap, "%llu+%u in %.24s", (unsigned long long)c->first_id, c->n,
                 qn(c->queue));
        break;
    case CH_JOB:
        snprintf(p, cap, "%llu %s%s", (unsigned long long)j->id, state_names[j->state],
                 c->head ? " head" : "");
        break;
    case CH_JOB_ERR:
        snprintf(p, cap, "%llu %s", (unsigned long long)j->id, joberr_class_names[j->err->cls]);
        break;
    case CH_JOB_FIELDS:
    case CH_JOB_GONE:
        snprintf(p, cap, "%llu", (unsigned long long)j->id);
        break;
    case CH_QUEUE:
        snprintf(p, cap, "%.24s", qn(c->queue));
        break;
    case CH_QUEUE_GONE: {
        int k = snprintf(p, cap, "%.24s moved=%llu", qn(c->queue),
                         (unsigned long long)c->moved);
        for (uint32_t i = 0; i < c->nresets; i++) {
            const struct change_reset *r = &c->resets[i];
            k += snprintf(p + k, cap - (size_t)k, " %.24s:%llu", r->group->name,
                          (unsigned long long)r->moved);
        }
        break;
    }
    case CH_ROUTE:
        snprintf(p, cap, "%.*s %.24s>%.24s moved=%llu", (int)c->name.n, c->name.p,
                 qn(c->from), qn(c->queue), (unsigned long long)c->moved);
        break;
    case CH_GROUP_WEIGHT:
        snprintf(p, cap, "%.24s %u", c->group->name, c->group->weight);
        break;
    case CH_PURGE:
        snprintf(p, cap, "%llu", (unsigned long long)c->moved);
        break;
    default:
        p[0] = '\0';
        break;
    }
}

static void
tap(const struct change *c, void *arg)
{
    struct seen *s = arg;
    char what[200], by[40] = "-";
    assert_true(s->n < SEEN_MAX);
    describe(what, sizeof(what), c);
    if (c->origin != NULL) {
        snprintf(by, sizeof(by), "%.*s", (int)c->origin->v[WK_OP].s.n, c->origin->v[WK_OP].s.p);
    }
    snprintf(s->line[s->n++], sizeof(s->line[0]), "%s%s%.200s by=%.39s", kind_names[c->kind],
             what[0] != '\0' ? " " : "", what, by);
}

static void
expect(struct seen *s, const char *const *want, unsigned n)
{
    for (unsigned i = 0; i < s->n || i < n; i++) {
        const char *got = i < s->n ? s->line[i] : "(none)";
        const char *exp = i < n ? want[i] : "(none)";
        if (strcmp(got, exp) != 0) {
            print_error("change %u: got \"%s\", want \"%s\"\n", i, got, exp);
        }
        assert_string_equal(got, exp);
    }
    s->n = 0;
}

/* --- requests ----------------------------------------------------------------------------- */

static int
try_call(struct broker *b, struct wire_msg *req)
{
    struct wire_msg rep;
    nng_msg *keep;
    int rv = request(b, req, &rep, &keep);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return rv;
}

static void
call(struct broker *b, struct wire_msg *req)
{
    assert_int_equal(try_call(b, req), 0);
}

static int
try_op(struct broker *b, const char *op, enum wire_key k, const char *v, enum wire_key k2,
       const char *v2)
{
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, op);
    if (v != NULL) {
        wire_set_cstr(&req, k, v);
    }
    if (v2 != NULL) {
        wire_set_cstr(&req, k2, v2);
    }
    return try_call(b, &req);
}

static void
op_named(struct broker *b, const char *op, enum wire_key k, const char *v, enum wire_key k2,
         const char *v2)
{
    assert_int_equal(try_op(b, op, k, v, k2, v2), 0);
}

static void
push(struct broker *b, const char *group, uint32_t n)
{
    struct sl_str pl[4] = { S("a"), S("b"), S("c"), S("d") };
    struct wire_msg req;
    assert_true(n <= 4);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, group);
    wire_set_strs(&req, WK_PAYLOADS, pl, n);
    call(b, &req);
}

static void
settle(struct broker *b, const char *op, uint64_t id, uint64_t delay_ms)
{
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, op);
    wire_set_u64s(&req, WK_IDS, &id, 1);
    if (delay_ms != 0) {
        wire_set_u64(&req, WK_DELAY_MS, delay_ms);
    }
    call(b, &req);
}

static void
weight(struct broker *b, const char *group, double w)
{
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.weight");
    wire_set_cstr(&req, WK_GROUP, group);
    wire_set_num(&req, WK_WEIGHT, w);
    wire_set_cstr(&req, WK_REASON, "paid");
    call(b, &req);
}

/* Worker w1 reserves up to max jobs, under the lock as the server does. */
static uint32_t
reserve(struct broker *b, uint32_t max)
{
    struct job *out[8];
    uint32_t n = 0;
    pthread_mutex_lock(&b->lock);
    struct worker *w = flow_worker(b, S("w1"), 1);
    assert_non_null(w);
    assert_int_equal(flow_reserve(b, w, max, NULL, out, &n), 0);
    journal_op_end(b);
    pthread_mutex_unlock(&b->lock);
    return n;
}

/* The ops of test_each_change_is_fed_once_in_order, each followed by what it must make. */
static void
drive(struct broker *b, struct seen *s)
{
    op_named(b, "queue.create", WK_NAME, "q1", 0, NULL);
    expect(s, (const char *const[]){ "queue q1 by=queue.create" }, 1);
    push(b, "bob", 3);
    expect(s, (const char *const[]){ "push 1+3 in default by=-" }, 1);
    assert_int_equal(reserve(b, 2), 2);
    expect(s, (const char *const[]){ "job 1 reserved by=-", "job 2 reserved by=-" }, 2);
    settle(b, "ack", 1, 0);
    expect(s, (const char *const[]){ "deleted 1 by=-" }, 1);
    settle(b, "nack", 2, 5000);
    expect(s, (const char *const[]){ "error 2 failed by=-", "job 2 delayed by=-" }, 2);
    op_named(b, "route.set", WK_GROUP, "bob", WK_QUEUE, "q1");
    expect(s, (const char *const[]){ "route bob ->q1 moved=1 by=route.set" }, 1);
    weight(b, "bob", 0.5);
    expect(s, (const char *const[]){ "weight bob 500 by=group.weight" }, 1);
}

/* --- fixture ------------------------------------------------------------------------------ */

struct fix {
    char dir[256];
    struct broker_cfg cfg;
    struct journal_cfg jc;
    struct broker *b;
    struct seen seen;
};

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (f == NULL || tmpdir_make(f->dir, sizeof(f->dir), "change") != 0) {
        free(f);
        return -1;
    }
    broker_cfg_default(&f->cfg);
    log_level = LOG_WARN;
    f->jc = (struct journal_cfg){ .dir = f->dir, .fsync = JOURNAL_ALWAYS,
                                  .segment_bytes = 64u << 20 };
    *state = f;
    return 0;
}

/* Stops f's broker, if any: the journal (if open) written and closed, the broker freed. */
static void
stop(struct fix *f)
{
    journal_close(f->b);
    broker_free(f->b);
    f->b = NULL;
}

static int
teardown(void **state)
{
    struct fix *f = *state;
    if (f->b != NULL) {
        stop(f);
    }
    int rv = tmpdir_remove(f->dir);
    free(f);
    return rv;
}

/* A broker with the hook set before its journal (if any) is opened. */
static struct broker *
tapped(struct fix *f, bool journal)
{
    char why[512] = "";
    struct broker *b = fake_broker(&f->cfg, T0);
    b->change_hook = tap;
    b->change_arg = &f->seen;
    if (journal) {
        int rv = journal_open(b, &f->jc, why, sizeof(why));
        if (rv != 0) {
            print_error("journal_open: %s\n", why);
        }
        assert_int_equal(rv, 0);
    }
    return b;
}

/* --- tests -------------------------------------------------------------------------------- */

static void
test_each_change_is_fed_once_in_order(void **state)
{
    struct fix *f = *state;
    struct broker *b = f->b = tapped(f, false);

    drive(b, &f->seen);
    /* q1 holds bob's ready job 3; job 2 (delayed) is in default. */
    assert_int_equal(try_op(b, "queue.destroy", WK_NAME, "q1", 0, NULL), SL_ENOTEMPTY);
    assert_int_equal(f->seen.n, 0); /* not empty: refused, so nothing changed */
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.destroy");
    wire_set_cstr(&req, WK_NAME, "q1");
    wire_set_bool(&req, WK_FORCE, true);
    call(b, &req);
    expect(&f->seen, (const char *const[]){ "destroyed q1 moved=1 bob:1 by=queue.destroy" }, 1);
    op_named(b, "route.set", WK_GROUP, "amy", WK_QUEUE, "default");
    expect(&f->seen, (const char *const[]){ "route amy ->- moved=0 by=route.set" }, 1);
    op_named(b, "queue.create", WK_NAME, "q2", 0, NULL);
    op_named(b, "route.set", WK_GROUP, "bob", WK_QUEUE, "q2");
    expect(&f->seen, (const char *const[]){ "queue q2 by=queue.create",
                                            "route bob ->q2 moved=1 by=route.set" }, 2);
    op_named(b, "flush", 0, NULL, 0, NULL);
    expect(&f->seen, (const char *const[]){ "flush by=flush" }, 1);
    op_named(b, "purge", WK_GROUP, "bob", 0, NULL);
    expect(&f->seen, (const char *const[]){ "deleted 3 by=-", "purge 1 by=purge" }, 2);

    /* The decisions consumer was fed the route changes the requests made, newest first:
     * flush's reset, route.set, queue.destroy's reset, route.set; amy, unknown and left
     * unrouted, made none. */
    static const struct {
        const char *queue, *reason;
        uint64_t moved;
    } want[] = { { "", "flush", 1 }, { "q2", "", 1 }, { "", "queue.destroy", 1 },
                 { "q1", "", 1 } };
    assert_int_equal(b->decisions.n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        const struct decision *d = decisions_get(&b->decisions, i);
        assert_string_equal(d->group, "bob");
        assert_string_equal(d->queue, want[i].queue);
        assert_string_equal(d->reason, want[i].reason);
        assert_int_equal(d->moved, want[i].moved);
    }
}

static void
test_changes_without_a_request_feed_only_the_journal(void **state)
{
    struct fix *f = *state;
    struct broker *b = f->b = tapped(f, false);
    struct sl_str q1 = S("q1");
    struct queue_settings s = { 0 };
    uint64_t moved;

    /* As loading routes from the database at start does: no request, so nothing is
     * reported as a decision. */
    pthread_mutex_lock(&b->lock);
    assert_int_equal(broker_queue_create(b, q1, &s), 0);
    assert_int_equal(broker_route_set(b, S("bob"), &q1, &moved), 0);
    pthread_mutex_unlock(&b->lock);
    expect(&f->seen, (const char *const[]){ "queue q1 by=-", "route bob ->q1 moved=0 by=-" },
           2);
    assert_int_equal(b->decisions.n, 0);
}

static void
test_replay_feeds_no_consumer(void **state)
{
    struct fix *f = *state;
    struct broker *b = f->b = tapped(f, true);

    drive(b, &f->seen);
    assert_int_equal(reserve(b, 1), 1); /* job 3, reserved when the broker stops */
    expect(&f->seen, (const char *const[]){ "job 3 reserved by=-" }, 1);
    stop(f);

    f->b = b = tapped(f, true);
    /* Replay rebuilt queues, routes, weights and jobs without feeding anything; then the job
     * left reserved goes back to the head of its queue, a change of this start's own. */
    expect(&f->seen, (const char *const[]){ "job 3 ready head by=-" }, 1);
    assert_int_equal(b->decisions.n, 0);
    const struct group *g = broker_group_find(b, S("bob"));
    assert_non_null(g);
    assert_non_null(g->route);
    assert_string_equal(g->route->name, "q1");
    assert_int_equal(g->weight, 500);
    assert_int_equal(b->jobs, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_change_is_fed_once_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_changes_without_a_request_feed_only_the_journal,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_feeds_no_consumer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
