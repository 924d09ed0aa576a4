/* What the broker owes its database (dbowed) and how requests feed it (dbsync's hooks in the
 * dispatcher), without a database server: usage counted from the growth of the groups'
 * counters, per minute, totals that a rewrite cannot double; channels rows written only when
 * they change, forgotten groups written once as count 0; the bounded route log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "db.h"
#include "dbowed.h"
#include "dbsync.h"
#include "err.h"
#include "flow.h"
#include "log.h"
#include "support.h"

#include <string.h>

#define MINUTE_MS 60000LL
#define T0_MS (1700000000LL * 1000) /* a whole minute */

static int
setup(void **state)
{
    struct broker_cfg cfg;
    broker_cfg_default(&cfg);
    cfg.max_attempts = 5;
    *state = fake_broker(&cfg, T0_MS * MS);
    return 0;
}

static int
teardown(void **state)
{
    broker_free(*state);
    return 0;
}

static void
push(struct broker *b, const char *g, uint32_t n)
{
    static struct sl_str pl[100];
    struct wire_list l = { n, NULL, pl, NULL };
    struct push_req req = { .group = S(g), .payloads = &l };
    struct push_res r;
    for (uint32_t i = 0; i < n; i++) {
        pl[i] = S("p");
    }
    assert_int_equal(broker_push(b, &req, &r), 0);
}

/* Reserves one job for worker w and returns its id. */
static uint64_t
reserve1(struct broker *b, struct worker *w)
{
    struct job *j;
    uint32_t n = 0;
    assert_int_equal(flow_reserve(b, w, 1, NULL, &j, &n), 0);
    assert_int_equal(n, 1);
    return j->id;
}

static void
settle1(struct broker *b, enum flow_settle how, uint64_t id)
{
    struct wire_list l = { 1, NULL, NULL, &id };
    uint64_t done, missing;
    assert_int_equal(flow_settle(b, how, NULL, &l, NULL, 0, &done, &missing), 0);
    assert_int_equal(done, 1);
}

static const struct dbowed_usage *
usage(struct dbowed *o, const char *g, int64_t ms)
{
    return dbowed_usage_find(o, S(g), ms / 1000 / 60 * 60);
}

static uint32_t
dirty_chans(struct dbowed *o, const char *want)
{
    struct dbowed_chan **rows;
    uint32_t n = dbowed_dirty_chans(o, &rows);
    bool found = want == NULL;
    for (uint32_t i = 0; i < n; i++) {
        found = found || (rows[i]->id_len == strlen(want) && memcmp(rows[i]->id, want,
                                                                   rows[i]->id_len) == 0);
    }
    assert_true(found);
    return n;
}

static void
write_all(struct dbowed *o)
{
    struct dbowed_chan **c;
    uint32_t n = dbowed_dirty_chans(o, &c);
    dbowed_chans_written(o, c, n);
    struct dbowed_usage **u;
    n = dbowed_dirty_usage(o, &u);
    dbowed_usage_written(o, u, n);
    struct dbowed_log *l[64];
    while ((n = dbowed_log_peek(o, l, 64)) > 0) {
        dbowed_log_written(o, n);
    }
    assert_int_equal(dbowed_owed(o), 0);
}

static void
test_usage_is_the_growth_per_minute(void **state)
{
    struct broker *b = *state;
    struct dbowed *o = dbowed_new(100, 100);
    struct worker *w = flow_worker(b, S("w1"), 1);

    push(b, "bob", 3);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 1000), 0);
    const struct dbowed_usage *u = usage(o, "bob", T0_MS);
    assert_non_null(u);
    assert_int_equal(u->pushed, 3);
    assert_int_equal(u->done + u->failed + u->run_ms, 0);
    assert_true(u->dirty);

    /* Run times: from the reservation to the ack or nack, on the broker's clock. */
    uint64_t a = reserve1(b, w), n = reserve1(b, w), r = reserve1(b, w);
    fake_now += 5 * MS;
    settle1(b, FLOW_ACK, a);
    fake_now += 7 * MS;
    settle1(b, FLOW_NACK, n);
    settle1(b, FLOW_RELEASE, r); /* neither done nor failed, and not timed */
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 2000), 0);
    u = usage(o, "bob", T0_MS);
    assert_int_equal(u->pushed, 3);
    assert_int_equal(u->done, 1);
    assert_int_equal(u->failed, 1);
    assert_int_equal(u->run_ms, 5 + 12);

    /* Written, nothing new: the row stays (its minute is not over) and is not owed. */
    write_all(o);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 3000), 0);
    assert_int_equal(dbowed_owed(o), 0);
    assert_int_equal(dbowed_usage_n(o), 1);

    /* The next minute gets its own row; the past one, written, is dropped from memory. */
    push(b, "bob", 2);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + MINUTE_MS + 10), 0);
    assert_int_equal(usage(o, "bob", T0_MS + MINUTE_MS)->pushed, 2);
    assert_int_equal(dbowed_usage_n(o), 1);
    assert_null(usage(o, "bob", T0_MS));
    /* Unwritten, the row of a past minute stays. */
    push(b, "bob", 1);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 2 * MINUTE_MS), 0);
    assert_int_equal(dbowed_usage_n(o), 2);
    assert_int_equal(usage(o, "bob", T0_MS + MINUTE_MS)->pushed, 2);
    assert_int_equal(usage(o, "bob", T0_MS + 2 * MINUTE_MS)->pushed, 1);
    dbowed_free(o);
}

static void
test_unwritten_past_minutes_stay_owed_as_totals(void **state)
{
    struct broker *b = *state;
    struct dbowed *o = dbowed_new(100, 100);

    push(b, "bob", 1);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 100), 0);
    push(b, "bob", 4);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 200), 0);
    /* The database is down for two minutes: nothing written, nothing dropped. */
    push(b, "bob", 10);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + MINUTE_MS + 100), 0);
    push(b, "bob", 100);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 2 * MINUTE_MS + 100), 0);
    assert_int_equal(dbowed_usage_n(o), 3);
    assert_int_equal(usage(o, "bob", T0_MS)->pushed, 5);
    assert_int_equal(usage(o, "bob", T0_MS + MINUTE_MS)->pushed, 10);
    assert_int_equal(usage(o, "bob", T0_MS + 2 * MINUTE_MS)->pushed, 100);
    struct dbowed_usage **rows;
    assert_int_equal(dbowed_dirty_usage(o, &rows), 3);
    /* A failed write leaves the rows as they were: writing them again sends the same totals. */
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 2 * MINUTE_MS + 200), 0);
    assert_int_equal(usage(o, "bob", T0_MS)->pushed, 5);
    assert_int_equal(dbowed_owed(o), 3 + 1); /* three usage rows, one channels row */
    dbowed_free(o);
}

static void
test_channels_rows_are_owed_only_when_changed(void **state)
{
    struct broker *b = *state;
    struct dbowed *o = dbowed_new(100, 100);
    struct queue_settings s = { 0 };
    uint64_t moved;

    push(b, "bob", 2);
    push(b, "alice", 1);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS), 0);
    assert_int_equal(dirty_chans(o, "bob"), 2);
    write_all(o);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 1000), 0);
    assert_int_equal(dirty_chans(o, NULL), 0);

    assert_int_equal(broker_queue_create(b, S("q1"), &s), 0);
    struct sl_str q1 = S("q1");
    assert_int_equal(broker_route_set(b, S("bob"), &q1, &moved), 0);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 2000), 0);
    assert_int_equal(dirty_chans(o, "bob"), 1);
    const struct dbowed_chan *c = dbowed_chan_find(o, S("bob"));
    assert_int_equal(c->route_len, 2);
    assert_memory_equal(c->route, "q1", 2);
    assert_int_equal(c->count, 2);
    write_all(o);
    push(b, "alice", 1);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 3000), 0);
    assert_int_equal(dirty_chans(o, "alice"), 1);
    assert_int_equal(dbowed_chan_find(o, S("alice"))->count, 2);
    dbowed_free(o);
}

static void
test_forgotten_group_is_written_once_as_empty(void **state)
{
    struct broker *b = *state;
    struct dbowed *o = dbowed_new(100, 100);
    struct worker *w = flow_worker(b, S("w1"), 1);
    uint64_t x, y;

    push(b, "bob", 1);
    settle1(b, FLOW_ACK, reserve1(b, w));
    push(b, "gone", 1);
    settle1(b, FLOW_ACK, reserve1(b, w));
    assert_int_equal(dbowed_snapshot(o, b, T0_MS), 0);
    write_all(o);

    /* bob pushes and is done again, then flush forgets it before the next snapshot: the
     * growth is still counted, once, through the forgotten group's last counters. */
    push(b, "bob", 1);
    settle1(b, FLOW_ACK, reserve1(b, w));
    push(b, "stays", 1);
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        if (group_jobs(g) == 0) {
            dbowed_group_gone(o, g); /* what broker.c does through dbsync */
        }
    }
    broker_flush(b, &x, &y);
    assert_null(broker_group_find(b, S("bob")));
    /* Made again under the same name: counts from zero. */
    push(b, "bob", 3);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 1000), 0);
    const struct dbowed_usage *u = usage(o, "bob", T0_MS);
    assert_int_equal(u->pushed, 1 + 1 + 3);
    assert_int_equal(u->done, 2);
    assert_int_equal(dbowed_chan_find(o, S("bob"))->count, 3);

    /* "gone" has no group now: count 0, route NULL, owed once, then forgotten. */
    const struct dbowed_chan *c = dbowed_chan_find(o, S("gone"));
    assert_non_null(c);
    assert_true(c->gone);
    assert_true(c->dirty);
    assert_int_equal(c->count + c->done + c->failed + c->route_len, 0);
    write_all(o);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 2000), 0);
    assert_null(dbowed_chan_find(o, S("gone")));
    assert_int_equal(dirty_chans(o, NULL), 0);
    assert_non_null(dbowed_chan_find(o, S("stays")));
    dbowed_free(o);
}

static void
test_rows_read_from_the_database_are_owed_only_if_different(void **state)
{
    struct broker *b = *state;
    struct dbowed *o = dbowed_new(100, 100);
    struct queue_settings s = { 0 };
    uint64_t moved;

    assert_int_equal(broker_queue_create(b, S("q1"), &s), 0);
    struct sl_str q1 = S("q1");
    assert_int_equal(broker_route_set(b, S("same"), &q1, &moved), 0);
    push(b, "differs", 1);
    assert_int_equal(dbowed_load_chan(o, S("same"), S("q1"), 0, 0, 0, GROUP_WEIGHT_ONE), 0);
    assert_int_equal(dbowed_load_chan(o, S("differs"), S(""), 7, 0, 0, GROUP_WEIGHT_ONE), 0);
    assert_int_equal(dbowed_load_chan(o, S("old"), S("q1"), 5, 1, 1, GROUP_WEIGHT_ONE), 0);
    assert_int_equal(dbowed_load_chan(o, S("zero"), S(""), 0, 0, 0, GROUP_WEIGHT_ONE), 0);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS), 0);
    struct dbowed_chan **rows;
    assert_int_equal(dbowed_dirty_chans(o, &rows), 2); /* differs, old */
    assert_false(dbowed_chan_find(o, S("same"))->dirty);
    assert_true(dbowed_chan_find(o, S("old"))->gone);
    assert_int_equal(dbowed_chan_find(o, S("old"))->count, 0);
    write_all(o);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 1000), 0);
    assert_null(dbowed_chan_find(o, S("old")));
    assert_null(dbowed_chan_find(o, S("zero")));
    assert_non_null(dbowed_chan_find(o, S("same")));
    dbowed_free(o);
}

static void
test_channels_weight_follows_the_group(void **state)
{
    struct broker *b = *state;
    struct dbowed *o = dbowed_new(100, 100);
    uint64_t x, y;

    push(b, "bob", 1);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS), 0);
    assert_int_equal(dbowed_chan_find(o, S("bob"))->weight, GROUP_WEIGHT_ONE);
    write_all(o);

    /* A weight set is owed, as a route change is; set again to the same, nothing is. */
    assert_int_equal(broker_group_weight(b, S("bob"), 250), 0);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 1000), 0);
    assert_int_equal(dirty_chans(o, "bob"), 1);
    assert_int_equal(dbowed_chan_find(o, S("bob"))->weight, 250);
    write_all(o);
    assert_int_equal(broker_group_weight(b, S("bob"), 250), 0);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 2000), 0);
    assert_int_equal(dirty_chans(o, NULL), 0);

    /* A group made by its weight alone has a row. */
    assert_int_equal(broker_group_weight(b, S("amy"), 4000), 0);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 3000), 0);
    assert_int_equal(dirty_chans(o, "amy"), 1);
    assert_int_equal(dbowed_chan_find(o, S("amy"))->weight, 4000);
    write_all(o);

    /* flush resets weights; a group it forgets goes as weight 1 too. */
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        if (group_jobs(g) == 0) {
            dbowed_group_gone(o, g);
        }
    }
    broker_flush(b, &x, &y);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 4000), 0);
    assert_int_equal(dirty_chans(o, NULL), 2);
    assert_int_equal(dbowed_chan_find(o, S("bob"))->weight, GROUP_WEIGHT_ONE);
    if (broker_group_find(b, S("amy")) == NULL) {
        assert_true(dbowed_chan_find(o, S("amy"))->gone);
    }
    assert_int_equal(dbowed_chan_find(o, S("amy"))->weight, GROUP_WEIGHT_ONE);
    dbowed_free(o);
}

static void
test_weights_read_from_the_database_are_owed_only_if_different(void **state)
{
    struct broker *b = *state;
    struct dbowed *o = dbowed_new(100, 100);

    assert_int_equal(broker_group_weight(b, S("same"), 500), 0);
    assert_int_equal(broker_group_weight(b, S("differs"), 500), 0);
    assert_int_equal(broker_group_weight(b, S("bad"), 500), 0);
    assert_int_equal(dbowed_load_chan(o, S("same"), S(""), 0, 0, 0, 500), 0);
    assert_int_equal(dbowed_load_chan(o, S("differs"), S(""), 0, 0, 0, 2000), 0);
    assert_int_equal(dbowed_load_chan(o, S("bad"), S(""), 0, 0, 0, 0), 0); /* out of range */
    assert_int_equal(dbowed_snapshot(o, b, T0_MS), 0);
    assert_false(dbowed_chan_find(o, S("same"))->dirty);
    assert_true(dbowed_chan_find(o, S("differs"))->dirty);
    assert_int_equal(dbowed_chan_find(o, S("differs"))->weight, 500);
    assert_true(dbowed_chan_find(o, S("bad"))->dirty); /* the broker's weight replaces it */
    assert_int_equal(dbowed_chan_find(o, S("bad"))->weight, 500);
    dbowed_free(o);
}

static void
route(struct dbowed *o, const char *g, const char *reason)
{
    dbowed_route_changed(o, T0_MS, S(g), S(""), S("q1"), S(reason), 1, 0);
}

static void
test_route_log_keeps_the_newest_up_to_its_cap(void **state)
{
    struct broker *b = *state;
    struct dbowed *o = dbowed_new(3, 100);
    struct dbowed_log *l[8];
    char name[8];

    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        route(o, name, "r");
    }
    assert_int_equal(dbowed_inbox_n(o), 3);
    assert_int_equal(dbowed_log_dropped(o), 2);
    assert_int_equal(dbowed_log_peek(o, l, 8), 0); /* not pending before a snapshot */
    assert_int_equal(dbowed_snapshot(o, b, T0_MS), 0);
    assert_int_equal(dbowed_inbox_n(o), 0);
    assert_int_equal(dbowed_log_peek(o, l, 8), 3);
    assert_memory_equal(l[0]->group, "g2", 2);
    assert_memory_equal(l[2]->group, "g4", 2);
    assert_memory_equal(l[0]->old_queue, "default", 7);
    assert_int_equal(l[0]->old_len, 7);

    /* Still unwritten: the pending log and what arrives share the cap, oldest out first. */
    route(o, "g5", "r");
    route(o, "g6", "r");
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 1000), 0);
    assert_int_equal(dbowed_log_peek(o, l, 8), 3);
    assert_memory_equal(l[0]->group, "g4", 2);
    assert_memory_equal(l[2]->group, "g6", 2);
    assert_int_equal(dbowed_log_dropped(o), 4);
    assert_int_equal(dbowed_owed(o), 3 + 0);

    dbowed_log_written(o, 2);
    assert_int_equal(dbowed_log_peek(o, l, 8), 1);
    assert_memory_equal(l[0]->group, "g6", 2);
    dbowed_log_written(o, 1);
    assert_int_equal(dbowed_log_peek(o, l, 8), 0);
    assert_int_equal(dbowed_owed(o), 0);
    dbowed_free(o);
}

static void
test_reason_is_cut_and_made_valid_utf8(void **state)
{
    struct broker *b = *state;
    struct dbowed *o = dbowed_new(10, 10);
    struct dbowed_log *l[4];
    char big[1000];

    dbowed_route_changed(o, T0_MS, S("g"), S("q1"), S(""), S("ok \xc3\xa9 \xff\xc3 \xed\xa0\x80"),
                         1, 0);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    dbowed_route_changed(o, T0_MS, S("g"), S("q1"), S(""), S(big), 1, 0);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS), 0);
    assert_int_equal(dbowed_log_peek(o, l, 4), 2);
    /* é kept; 0xff, a cut sequence and an encoded surrogate become '?' byte by byte. */
    const char want[] = "ok \xc3\xa9 ?? ???";
    assert_int_equal(l[0]->reason_len, sizeof(want) - 1);
    assert_memory_equal(l[0]->reason, want, sizeof(want) - 1);
    assert_memory_equal(l[0]->new_queue, "default", 7);
    assert_int_equal(l[1]->reason_len, DBOWED_REASON_MAX);
    dbowed_free(o);
}

static void
test_usage_rows_beyond_the_cap_drop_the_oldest(void **state)
{
    struct broker *b = *state;
    struct dbowed *o = dbowed_new(10, 2);

    push(b, "a", 1);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS), 0);
    push(b, "a", 1);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + MINUTE_MS), 0);
    push(b, "a", 1);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS + 2 * MINUTE_MS), 0);
    assert_int_equal(dbowed_usage_n(o), 2);
    assert_int_equal(dbowed_usage_dropped(o), 1);
    assert_null(usage(o, "a", T0_MS));
    assert_non_null(usage(o, "a", T0_MS + MINUTE_MS));
    dbowed_free(o);
}

/* --- through the dispatcher, with a database that cannot be reached -------------------- */

static struct dbsync *
attach(struct broker *b)
{
    struct db_cfg cfg;
    char why[256];
    struct dbsync *d;
    assert_int_equal(db_cfg_parse(&cfg, "mysql://u:secret@localhost/x?socket=/nonexistent/s",
                                  why, sizeof(why)),
                     0);
    assert_int_equal(dbsync_new(&d, b, &cfg, true, why, sizeof(why)), 0);
    assert_ptr_equal(b->db, d);
    return d;
}

static uint64_t
call(struct broker *b, const char *op, const char *group, const char *queue, const char *reason,
     uint64_t lease)
{
    struct wire_msg req, rep;
    nng_msg *keep;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, op);
    if (group != NULL) {
        wire_set_cstr(&req, WK_GROUP, group);
    }
    if (queue != NULL) {
        wire_set_cstr(&req, WK_QUEUE, queue);
        wire_set_cstr(&req, WK_NAME, queue);
    }
    if (reason != NULL) {
        wire_set_cstr(&req, WK_REASON, reason);
    }
    if (lease != 0) {
        wire_set_u64(&req, WK_LEASE, lease);
    }
    if (strcmp(op, "lease.acquire") == 0) {
        wire_set_cstr(&req, WK_NAME, "r1");
        wire_set_u64(&req, WK_TTL_MS, 10000);
    }
    if (strcmp(op, "queue.destroy") == 0) {
        wire_set_bool(&req, WK_FORCE, true);
    }
    int rv = request(b, &req, &rep, &keep);
    uint64_t n = rv == 0 && strcmp(op, "lease.acquire") == 0 ? rep.v[WK_LEASE].u : 0;
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    assert_int_equal(rv, 0);
    return n;
}

static void
check_log(const struct dbowed_log *l, const char *g, const char *from, const char *to,
          const char *reason, uint64_t count, uint64_t lease)
{
    assert_int_equal(l->group_len, strlen(g));
    assert_memory_equal(l->group, g, l->group_len);
    assert_int_equal(l->old_len, strlen(from));
    assert_memory_equal(l->old_queue, from, l->old_len);
    assert_int_equal(l->new_len, strlen(to));
    assert_memory_equal(l->new_queue, to, l->new_len);
    assert_int_equal(l->reason_len, strlen(reason));
    assert_memory_equal(l->reason, reason, l->reason_len);
    assert_int_equal(l->count, count);
    assert_int_equal(l->lease, lease);
    assert_int_equal(l->at_ms, T0_MS);
}

static void
test_requests_log_every_route_change(void **state)
{
    struct broker *b = *state;
    struct dbsync *d = attach(b);
    struct dbowed *o = dbsync_ledger(d);
    struct dbowed_log *l[16];

    push(b, "bob", 4);
    call(b, "queue.create", NULL, "q1", NULL, 0);
    call(b, "queue.create", NULL, "q2", NULL, 0);
    uint64_t lease = call(b, "lease.acquire", NULL, NULL, NULL, 0);
    call(b, "route.set", "bob", "q1", "count 4 > high 3", lease);
    call(b, "route.set", "bob", "q1", NULL, 0);        /* no change: not logged */
    call(b, "route.unset", "nobody", NULL, NULL, 0);   /* no group, no change */
    call(b, "route.set", "bob", "q2", NULL, 0);
    call(b, "route.set", "carol", "q2", NULL, 0);
    call(b, "queue.destroy", NULL, "q2", "gone", 0);   /* resets bob's and carol's routes */
    call(b, "route.set", "bob", "q1", NULL, 0);
    call(b, "flush", NULL, NULL, NULL, 0);             /* resets bob's route */
    assert_int_equal(dbowed_inbox_n(o), 7);
    assert_int_equal(dbsync_owed(d), 7);
    assert_int_equal(dbowed_snapshot(o, b, T0_MS), 0);
    assert_int_equal(dbowed_log_peek(o, l, 16), 7);
    check_log(l[0], "bob", "default", "q1", "count 4 > high 3", 4, lease);
    check_log(l[1], "bob", "q1", "q2", "route.set", 4, 0);
    check_log(l[2], "carol", "default", "q2", "route.set", 0, 0);
    check_log(l[3], "bob", "q2", "default", "gone", 4, 0);
    check_log(l[4], "carol", "q2", "default", "gone", 0, 0);
    check_log(l[5], "bob", "default", "q1", "route.set", 4, 0);
    check_log(l[6], "bob", "q1", "default", "flush", 4, 0);
    /* flush forgot carol (no jobs, no route): her row is written once as empty. */
    assert_true(dbowed_chan_find(o, S("carol")) == NULL ||
                dbowed_chan_find(o, S("carol"))->gone);
    assert_string_equal(dbsync_state(d), "down");
    assert_string_equal(dbsync_state(NULL), "off");
    dbsync_free(d);
    assert_null(b->db);
}

static void
test_flush_keeps_the_usage_of_forgotten_groups(void **state)
{
    struct broker *b = *state;
    struct dbsync *d = attach(b);
    struct dbowed *o = dbsync_ledger(d);
    struct worker *w = flow_worker(b, S("w1"), 1);

    push(b, "bob", 1);
    fake_now += 3 * MS;
    uint64_t id = reserve1(b, w);
    fake_now += 250 * MS;
    settle1(b, FLOW_ACK, id);
    call(b, "flush", NULL, NULL, NULL, 0); /* forgets bob before any snapshot */
    assert_null(broker_group_find(b, S("bob")));
    assert_int_equal(dbowed_snapshot(o, b, T0_MS), 0);
    const struct dbowed_usage *u = usage(o, "bob", T0_MS);
    assert_non_null(u);
    assert_int_equal(u->pushed, 1);
    assert_int_equal(u->done, 1);
    assert_int_equal(u->run_ms, 250);
    dbsync_free(d);
}

int
main(void)
{
    log_level = LOG_ERROR;
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_usage_is_the_growth_per_minute),
        T(test_unwritten_past_minutes_stay_owed_as_totals),
        T(test_channels_rows_are_owed_only_when_changed),
        T(test_forgotten_group_is_written_once_as_empty),
        T(test_rows_read_from_the_database_are_owed_only_if_different),
        T(test_channels_weight_follows_the_group),
        T(test_weights_read_from_the_database_are_owed_only_if_different),
        T(test_route_log_keeps_the_newest_up_to_its_cap),
        T(test_reason_is_cut_and_made_valid_utf8),
        T(test_usage_rows_beyond_the_cap_drop_the_oldest),
        T(test_requests_log_every_route_change),
        T(test_flush_keeps_the_usage_of_forgotten_groups),
    };
    int rv = cmocka_run_group_tests(tests, NULL, NULL);
    mysql_library_end();
    return rv;
}
