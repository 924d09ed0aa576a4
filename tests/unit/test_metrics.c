/* Wait statistics, dispatch counters and route decisions as `stats` shows them, and their
 * Prometheus text (common/prom.c): on a broker with a fake clock, through the wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "decisions.h"
#include "err.h"
#include "flow.h"
#include "prom.h"
#include "promhttp.h"
#include "support.h"
#include "wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
setup(void **state)
{
    struct broker_cfg cfg;
    broker_cfg_default(&cfg);
    cfg.retry.base_ms = 0; /* a nacked job is ready again at once */
    *state = fake_broker(&cfg, 1000 * MS);
    return 0;
}

static int
teardown(void **state)
{
    broker_free(*state);
    return 0;
}

/* --- the histograms alone --- */

static void
test_hist_buckets_are_le_bounds(void **state)
{
    (void)state;
    assert_int_equal(wait_hist_bucket(0), 0);
    assert_int_equal(wait_hist_bucket(1000), 0);     /* 1 ms is in le="0.001" */
    assert_int_equal(wait_hist_bucket(1001), 1);
    assert_int_equal(wait_hist_bucket(7000), 2);     /* <= 10 ms */
    assert_int_equal(wait_hist_bucket(60000000), WAIT_NBOUNDS - 1);
    assert_int_equal(wait_hist_bucket(60000001), WAIT_NBOUNDS); /* +Inf */
    assert_int_equal(wait_hist_bucket(UINT64_MAX), WAIT_NBOUNDS);

    struct wait_hist h = { { 0 }, 0, 0 };
    wait_hist_add(&h, 500);
    wait_hist_add(&h, 3000000);
    assert_int_equal(h.buckets[0], 1);
    assert_int_equal(h.buckets[7], 1);   /* <= 5000 ms */
    assert_int_equal(h.count, 2);
    assert_int_equal(h.sum_us, 3000500);
}

/* Within the bucket's precision: a half octave, reported at its middle. */
static void
near(double got_ms, double want_ms)
{
    if (!(got_ms >= want_ms * 0.75 && got_ms <= want_ms * 1.34)) {
        fail_msg("got %.3f ms, expected about %.3f ms", got_ms, want_ms);
    }
}

static void
test_window_percentiles_of_known_waits(void **state)
{
    (void)state;
    struct wait_window w;
    memset(&w, 0, sizeof(w));
    int64_t now = 1000LL * 1000000000LL;
    double ms;

    assert_false(wait_window_quantile(&w, now, 0.5, &ms));
    /* 98 waits of 10 ms, 2 of 2 s: p50 is 10 ms, p99 is 2 s. */
    for (int i = 0; i < 98; i++) {
        wait_window_add(&w, now, 10000);
    }
    wait_window_add(&w, now, 2000000);
    wait_window_add(&w, now, 2000000);
    assert_int_equal(wait_window_count(&w, now), 100);
    assert_true(wait_window_quantile(&w, now, 0.5, &ms));
    near(ms, 10.0);
    assert_true(wait_window_quantile(&w, now, 0.99, &ms));
    near(ms, 2000.0);
    assert_true(wait_window_quantile(&w, now, 0.98, &ms));
    near(ms, 10.0);

    /* Every bucket: its middle is within 25% of any value in it. */
    for (uint64_t us = 130; us < 1000000000ULL; us = us * 3 / 2 + 7) {
        struct wait_window one;
        memset(&one, 0, sizeof(one));
        wait_window_add(&one, now, us);
        assert_true(wait_window_quantile(&one, now, 0.5, &ms));
        near(ms, (double)us / 1000.0);
    }
}

static void
test_window_forgets_after_60s(void **state)
{
    (void)state;
    struct wait_window w;
    memset(&w, 0, sizeof(w));
    int64_t t0 = 3000LL * 1000000000LL; /* the start of a window */
    double ms;

    wait_window_add(&w, t0, 5000);
    /* The next window: the old one still counts. */
    int64_t t1 = t0 + WAIT_WINDOW_NS + 1;
    assert_int_equal(wait_window_count(&w, t1), 1);
    wait_window_add(&w, t1, 400000);
    assert_int_equal(wait_window_count(&w, t1), 2);
    /* One more: the first one is gone, the second remains. */
    int64_t t2 = t1 + WAIT_WINDOW_NS;
    assert_int_equal(wait_window_count(&w, t2), 1);
    assert_true(wait_window_quantile(&w, t2, 0.5, &ms));
    near(ms, 400.0);
    wait_window_add(&w, t2, 5000);
    assert_int_equal(wait_window_count(&w, t2), 2);
    /* Long silence: nothing. */
    assert_int_equal(wait_window_count(&w, t2 + 3 * WAIT_WINDOW_NS), 0);
    assert_false(wait_window_quantile(&w, t2 + 3 * WAIT_WINDOW_NS, 0.99, &ms));
    wait_window_add(&w, t2 + 3 * WAIT_WINDOW_NS, 1000);
    assert_int_equal(wait_window_count(&w, t2 + 3 * WAIT_WINDOW_NS), 1);
}

static void
test_decisions_newest_first_capped(void **state)
{
    (void)state;
    struct decisions d;
    memset(&d, 0, sizeof(d));
    char name[16];
    struct sl_str q = S("q1");
    uint64_t lease = 7;

    assert_null(decisions_get(&d, 0));
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        decisions_add(&d, 100 + i, S(name), i % 2 ? &q : NULL, (uint64_t)i, NULL,
                      i == 19 ? &lease : NULL);
    }
    assert_int_equal(d.n, DECISIONS_MAX);
    assert_string_equal(decisions_get(&d, 0)->group, "g19");
    assert_true(decisions_get(&d, 0)->has_lease);
    assert_int_equal(decisions_get(&d, 0)->lease, 7);
    assert_true(decisions_get(&d, 0)->has_queue);
    assert_string_equal(decisions_get(&d, 1)->group, "g18");
    assert_false(decisions_get(&d, 1)->has_queue);
    assert_false(decisions_get(&d, 1)->has_lease);
    assert_string_equal(decisions_get(&d, 15)->group, "g4");
    assert_int_equal(decisions_get(&d, 15)->ts_ms, 104);
    assert_null(decisions_get(&d, 16));

    /* A reason longer than the cap is cut, not overrun. */
    char big[DECISION_REASON_MAX * 2];
    memset(big, 'r', sizeof(big));
    struct sl_str r = { big, sizeof(big) };
    decisions_add(&d, 1, S("g"), NULL, 0, &r, NULL);
    assert_int_equal(strlen(decisions_get(&d, 0)->reason), DECISION_REASON_MAX);
}

/* --- through the broker --- */

static void
op(struct broker *b, struct wire_msg *req, int want)
{
    struct wire_msg rep;
    nng_msg *keep;
    assert_int_equal(request(b, req, &rep, &keep), want);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
}

static void
push(struct broker *b, const char *group, uint32_t n)
{
    struct wire_msg req;
    struct sl_str pl[8];
    assert_true(n <= 8);
    for (uint32_t i = 0; i < n; i++) {
        pl[i] = S("p");
    }
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, group);
    wire_set_strs(&req, WK_PAYLOADS, pl, n);
    op(b, &req, 0);
}

/* A reserve through the wire by worker w (no wait); the ids taken go to ids[]. */
static uint32_t
reserve(struct broker *b, const char *w, uint32_t max, uint64_t *ids)
{
    struct wire_msg req, rep;
    nng_msg *keep;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "reserve");
    wire_set_cstr(&req, WK_WORKER, w);
    wire_set_u64(&req, WK_MAX, max);
    assert_int_equal(request(b, &req, &rep, &keep), 0);
    const msgpack_object *jobs = rep.v[WK_JOBS].any;
    uint32_t n = jobs->via.array.size;
    for (uint32_t i = 0; i < n && ids != NULL; i++) {
        const msgpack_object *j = &jobs->via.array.ptr[i];
        for (uint32_t k = 0; k < j->via.map.size; k++) {
            if (j->via.map.ptr[k].key.via.str.size == 2 &&
                memcmp(j->via.map.ptr[k].key.via.str.ptr, "id", 2) == 0) {
                ids[i] = j->via.map.ptr[k].val.via.u64;
            }
        }
    }
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return n;
}

static void
settle(struct broker *b, const char *opname, const char *w, uint64_t id)
{
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, opname);
    wire_set_cstr(&req, WK_WORKER, w);
    wire_set_u64s(&req, WK_IDS, &id, 1);
    op(b, &req, 0);
}

/* A stats snapshot, decoded; free with snap_free. */
struct snap {
    nng_msg *m;
    msgpack_unpacked up;
};

static const msgpack_object *
snap_take(struct broker *b, struct snap *s)
{
    size_t off = 0;
    assert_int_equal(nng_msg_alloc(&s->m, 0), 0);
    assert_int_equal(ops_stats(b, s->m), 0);
    msgpack_unpacked_init(&s->up);
    assert_int_equal(msgpack_unpack_next(&s->up, nng_msg_body(s->m), nng_msg_len(s->m), &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, nng_msg_len(s->m));
    return &s->up.data;
}

static void
snap_free(struct snap *s)
{
    msgpack_unpacked_destroy(&s->up);
    nng_msg_free(s->m);
}

static const msgpack_object *
get(const msgpack_object *map, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    const msgpack_object *v = wire_obj_get(map, key);
    if (v == NULL) {
        fail_msg("no key %s", key);
    }
    return v;
}

static uint64_t
u(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = get(map, key);
    assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    return o->via.u64;
}

/* The entry of array key whose field namek is name. */
static const msgpack_object *
entry(const msgpack_object *root, const char *key, const char *name)
{
    const msgpack_object *a = get(root, key);
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *n = get(&a->via.array.ptr[i], "name");
        if (n->via.str.size == strlen(name) && memcmp(n->via.str.ptr, name, n->via.str.size) == 0) {
            return &a->via.array.ptr[i];
        }
    }
    fail_msg("no %s named %s", key, name);
    return NULL;
}

static void
test_waits_counted_at_dispatch(void **state)
{
    struct broker *b = *state;
    struct snap s;
    uint64_t ids[8];

    push(b, "bob", 2);           /* ready at t0 */
    fake_now += 7 * MS;
    assert_int_equal(reserve(b, "w1", 1, ids), 1);  /* waited 7 ms */
    fake_now += 200 * MS;
    assert_int_equal(reserve(b, "w1", 1, ids + 1), 1); /* waited 207 ms */
    assert_int_equal(reserve(b, "w1", 1, NULL), 0);    /* nothing: an empty reserve */
    /* A nacked job is ready again from its nack: 3 s later its wait is 3 s, not 3.2. */
    settle(b, "nack", "w1", ids[0]);
    fake_now += 3000 * MS;
    assert_int_equal(reserve(b, "w1", 1, ids + 2), 1);
    assert_int_equal(ids[2], ids[0]);

    const msgpack_object *root = snap_take(b, &s);
    const msgpack_object *br = get(root, "broker");
    assert_int_equal(u(br, "reserves"), 4);
    assert_int_equal(u(br, "reserves_empty"), 1);
    assert_int_equal(u(br, "dispatched"), 3);
    assert_int_equal(u(br, "no_worker"), 2);  /* nobody was waiting at the push */
    const msgpack_object *bounds = get(br, "wait_bounds_ms");
    assert_int_equal(bounds->via.array.size, WAIT_NBOUNDS);
    assert_int_equal(bounds->via.array.ptr[0].via.u64, 1);
    assert_int_equal(bounds->via.array.ptr[9].via.u64, 60000);

    const msgpack_object *q = entry(root, "queues", "default");
    assert_int_equal(u(q, "dispatched"), 3);
    assert_int_equal(u(q, "wait_count"), 3);
    assert_int_equal(u(q, "wait_sum_us"), 7000 + 207000 + 3000000);
    const msgpack_object *wb = get(q, "wait_buckets");
    assert_int_equal(wb->via.array.size, WAIT_NBUCKETS);
    uint64_t want[WAIT_NBUCKETS] = { 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0 };
    for (uint32_t i = 0; i < WAIT_NBUCKETS; i++) {
        assert_int_equal(wb->via.array.ptr[i].via.u64, want[i]);
    }

    const msgpack_object *g = entry(root, "groups", "bob");
    assert_int_equal(u(g, "dispatched"), 3);
    assert_int_equal(u(g, "pushed_all"), 2);
    assert_int_equal(u(g, "failed_all"), 1);
    assert_int_equal(u(g, "done_all"), 0);
    const msgpack_object *p50 = get(g, "wait_p50_ms"), *p99 = get(g, "wait_p99_ms");
    assert_int_equal(p50->type, MSGPACK_OBJECT_FLOAT64);
    near(p50->via.f64, 207.0);
    near(p99->via.f64, 3000.0);
    snap_free(&s);

    /* A minute and more later, the group's recent waits are nil; the totals stay. */
    fake_now += 61000 * MS;
    root = snap_take(b, &s);
    g = entry(root, "groups", "bob");
    assert_int_equal(get(g, "wait_p50_ms")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(get(g, "wait_p99_ms")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(u(g, "dispatched"), 3);
    snap_free(&s);
}

static void
test_flush_keeps_never_reset_fields(void **state)
{
    struct broker *b = *state;
    struct snap s;
    uint64_t ids[2];
    struct wire_msg req;

    push(b, "bob", 2);
    fake_now += 2 * MS;
    assert_int_equal(reserve(b, "w1", 2, ids), 2);
    settle(b, "ack", "w1", ids[0]);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "flush");
    op(b, &req, 0);

    const msgpack_object *root = snap_take(b, &s);
    const msgpack_object *q = entry(root, "queues", "default");
    assert_int_equal(u(q, "done"), 0);     /* reset by flush */
    assert_int_equal(u(q, "pushed"), 0);
    assert_int_equal(u(q, "dispatched"), 2);
    assert_int_equal(u(q, "wait_count"), 2);
    assert_int_equal(u(q, "wait_sum_us"), 4000);
    assert_int_equal(get(q, "wait_buckets")->via.array.ptr[1].via.u64, 2);
    const msgpack_object *g = entry(root, "groups", "bob"); /* holds a job: kept */
    assert_int_equal(u(g, "done"), 0);
    assert_int_equal(u(g, "done_all"), 1);
    assert_int_equal(u(g, "pushed_all"), 2);
    assert_int_equal(u(g, "dispatched"), 2);
    assert_int_equal(u(get(root, "broker"), "dispatched"), 2);
    snap_free(&s);
}

static void
test_worker_uptime_from_registration(void **state)
{
    struct broker *b = *state;
    struct snap s;

    fake_now += 5000 * MS;
    assert_int_equal(reserve(b, "w1", 1, NULL), 0);
    fake_now += 3000 * MS;
    const msgpack_object *root = snap_take(b, &s);
    const msgpack_object *ws = get(root, "workers");
    assert_int_equal(ws->via.array.size, 1);
    assert_int_equal(u(&ws->via.array.ptr[0], "uptime_s"), 3);
    snap_free(&s);
}

static void
route(struct broker *b, const char *group, const char *queue, const char *reason)
{
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, queue != NULL ? "route.set" : "route.unset");
    wire_set_cstr(&req, WK_GROUP, group);
    if (queue != NULL) {
        wire_set_cstr(&req, WK_QUEUE, queue);
    }
    if (reason != NULL) {
        wire_set_cstr(&req, WK_REASON, reason);
    }
    op(b, &req, 0);
}

static bool
str_is(const msgpack_object *o, const char *z)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(z) &&
           memcmp(o->via.str.ptr, z, o->via.str.size) == 0;
}

static void
test_decisions_in_stats(void **state)
{
    struct broker *b = *state;
    struct snap s;
    struct wire_msg req;

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.create");
    wire_set_cstr(&req, WK_NAME, "q1");
    op(b, &req, 0);
    push(b, "bob", 3);
    push(b, "amy", 1);
    route(b, "bob", "q1", "count 3 > high 2");   /* moves 3 */
    route(b, "bob", "q1", "again");              /* no change: not a decision */
    route(b, "nobody", NULL, NULL);              /* no change either */
    route(b, "bob", NULL, NULL);                 /* back: moves 3 */
    route(b, "amy", "q1", NULL);                 /* moves 1 */
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.destroy");
    wire_set_cstr(&req, WK_NAME, "q1");
    wire_set_bool(&req, WK_FORCE, true);
    op(b, &req, 0);                              /* resets amy's route, her job moves */

    const msgpack_object *root = snap_take(b, &s);
    const msgpack_object *d = get(root, "decisions");
    assert_int_equal(d->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(d->via.array.size, 4);
    const msgpack_object *e0 = &d->via.array.ptr[0], *e1 = &d->via.array.ptr[1],
                         *e2 = &d->via.array.ptr[2], *e3 = &d->via.array.ptr[3];
    assert_true(str_is(get(e0, "group"), "amy"));
    assert_int_equal(get(e0, "queue")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(u(e0, "moved"), 1);
    assert_true(str_is(get(e0, "reason"), "queue.destroy"));
    assert_true(str_is(get(e1, "group"), "amy"));
    assert_true(str_is(get(e1, "queue"), "q1"));
    assert_int_equal(get(e1, "reason")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(get(e1, "lease")->type, MSGPACK_OBJECT_NIL);
    assert_true(str_is(get(e2, "group"), "bob"));
    assert_int_equal(get(e2, "queue")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(u(e2, "moved"), 3);
    assert_true(str_is(get(e3, "reason"), "count 3 > high 2"));
    assert_int_equal(u(e3, "moved"), 3);
    assert_int_equal(u(e3, "ts_ms"), (uint64_t)(fake_now / MS));
    snap_free(&s);

    /* A flush notes each route it resets. */
    route(b, "bob", "default", NULL);            /* same as unset: no change */
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.create");
    wire_set_cstr(&req, WK_NAME, "q2");
    op(b, &req, 0);
    route(b, "bob", "q2", NULL);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "flush");
    op(b, &req, 0);
    root = snap_take(b, &s);
    d = get(root, "decisions");
    assert_int_equal(d->via.array.size, 6);
    assert_true(str_is(get(&d->via.array.ptr[0], "reason"), "flush"));
    assert_true(str_is(get(&d->via.array.ptr[0], "group"), "bob"));
    assert_int_equal(u(&d->via.array.ptr[0], "moved"), 3);
    assert_true(str_is(get(&d->via.array.ptr[1], "queue"), "q2"));
    snap_free(&s);
}

/* --- the Prometheus text --- */

static char *
metrics_text(struct broker *b)
{
    struct snap s;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(prom_format(snap_take(b, &s), f), 0);
    fclose(f);
    snap_free(&s);
    return text;
}

static void
has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n') {
            return;
        }
    }
    fail_msg("no line '%s' in:\n%s", line, text);
}

static void
test_prom_text_of_a_snapshot(void **state)
{
    struct broker *b = *state;
    uint64_t ids[4];

    push(b, "bob", 3);
    fake_now += 7 * MS;
    assert_int_equal(reserve(b, "w1", 2, ids), 2);
    settle(b, "ack", "w1", ids[0]);
    char *t = metrics_text(b);
    has_line(t, "# TYPE sluice_queue_wait_seconds histogram");
    has_line(t, "sluice_queue_wait_seconds_bucket{queue=\"default\",le=\"0.005\"} 0");
    has_line(t, "sluice_queue_wait_seconds_bucket{queue=\"default\",le=\"0.01\"} 2");
    has_line(t, "sluice_queue_wait_seconds_bucket{queue=\"default\",le=\"60\"} 2");
    has_line(t, "sluice_queue_wait_seconds_bucket{queue=\"default\",le=\"+Inf\"} 2");
    has_line(t, "sluice_queue_wait_seconds_sum{queue=\"default\"} 0.014000");
    has_line(t, "sluice_queue_wait_seconds_count{queue=\"default\"} 2");
    has_line(t, "# TYPE sluice_group_jobs_done_total counter");
    has_line(t, "sluice_group_jobs_done_total{group=\"bob\"} 1");
    has_line(t, "sluice_queue_ready{queue=\"default\"} 1");
    has_line(t, "sluice_group_backlog{group=\"bob\"} 2");
    has_line(t, "sluice_jobs_dispatched_total 2");
    has_line(t, "sluice_reserves_empty_total 0");
    has_line(t, "sluice_jobs_no_worker_total 3");
    has_line(t, "sluice_workers{state=\"busy\"} 1");
    has_line(t, "sluice_workers{state=\"idle\"} 0");
    has_line(t, "sluice_worker_reserved_jobs{worker=\"w1\"} 1");
    has_line(t, "sluice_db_state{state=\"off\"} 1");
    has_line(t, "sluice_group_route_info{group=\"bob\",queue=\"default\"} 1");
    /* 7 ms falls in [6.144, 8.192) ms, shown at its middle. */
    has_line(t, "sluice_group_wait_p50_seconds{group=\"bob\"} 0.007168");
    free(t);
}

static void no_line_starting(const char *text, const char *prefix);

static void
test_prom_fair_fields_from_the_broker(void **state)
{
    struct broker *b = *state;
    struct wire_msg req;
    uint64_t ids[4];

    push(b, "bob", 3);
    push(b, "eve", 1);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.weight");
    wire_set_cstr(&req, WK_GROUP, "eve");
    wire_set_num(&req, WK_WEIGHT, 0.25);
    op(b, &req, 0);
    char *t = metrics_text(b);
    /* Nothing dispatched yet: no share at all. */
    no_line_starting(t, "sluice_group_share{");
    has_line(t, "sluice_queue_groups_ready{queue=\"default\"} 2");
    free(t);

    fake_now += 1500 * MS;
    assert_int_equal(reserve(b, "w1", 1, ids), 1); /* bob's first: his lane came first */
    t = metrics_text(b);
    has_line(t, "sluice_queue_order{queue=\"default\",order=\"groups\"} 1");
    has_line(t, "sluice_queue_order{queue=\"default\",order=\"fifo\"} 0");
    has_line(t, "sluice_group_weight{group=\"bob\"} 1");
    has_line(t, "sluice_group_weight{group=\"eve\"} 0.25");
    has_line(t, "sluice_group_share{group=\"bob\"} 1");
    has_line(t, "sluice_group_share{group=\"eve\"} 0");
    has_line(t, "sluice_group_oldest_ready_seconds{group=\"bob\"} 1.5");
    has_line(t, "sluice_group_oldest_ready_seconds{group=\"eve\"} 1.5");
    free(t);

    /* Every job dispatched: none ready, no sample. */
    assert_int_equal(reserve(b, "w2", 4, ids), 3);
    t = metrics_text(b);
    has_line(t, "sluice_group_share{group=\"bob\"} 0.75");
    has_line(t, "sluice_group_share{group=\"eve\"} 0.25");
    no_line_starting(t, "sluice_group_oldest_ready_seconds{");
    has_line(t, "sluice_queue_groups_ready{queue=\"default\"} 0");
    free(t);
}

/* The text of a stats reply packed by fill (a broker with nothing but a version). */
static char *
metrics_of(void (*fill)(msgpack_packer *pk))
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    char *text = NULL;
    size_t len = 0, off = 0;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fill(&pk);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(prom_format(&up.data, f), 0);
    fclose(f);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return text;
}

static void
pk_key(msgpack_packer *pk, const char *k)
{
    wire_pack_cstr(pk, k);
}

/* Two queues (groups, fifo) and three groups: weighted 4 with a share and a ready job 1.5 s
 * old, fractional 0.25 with neither, and one of an older broker without the fields. */
static void
fill_fair(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_key(pk, "broker");
    msgpack_pack_map(pk, 1);
    pk_key(pk, "version");
    wire_pack_cstr(pk, "0.1.0");
    pk_key(pk, "queues");
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 3);
    pk_key(pk, "name");
    wire_pack_cstr(pk, "default");
    pk_key(pk, "order");
    wire_pack_cstr(pk, "groups");
    pk_key(pk, "groups_ready");
    msgpack_pack_uint64(pk, 2);
    msgpack_pack_map(pk, 3);
    pk_key(pk, "name");
    wire_pack_cstr(pk, "bulk");
    pk_key(pk, "order");
    wire_pack_cstr(pk, "fifo");
    pk_key(pk, "groups_ready");
    msgpack_pack_uint64(pk, 0);
    pk_key(pk, "groups");
    msgpack_pack_array(pk, 3);
    msgpack_pack_map(pk, 4);
    pk_key(pk, "name");
    wire_pack_cstr(pk, "bob");
    pk_key(pk, "weight");
    msgpack_pack_uint64(pk, 4);
    pk_key(pk, "share");
    msgpack_pack_double(pk, 0.75);
    pk_key(pk, "oldest_ready_ms");
    msgpack_pack_uint64(pk, 1500);
    msgpack_pack_map(pk, 4);
    pk_key(pk, "name");
    wire_pack_cstr(pk, "eve");
    pk_key(pk, "weight");
    msgpack_pack_double(pk, 0.25);
    pk_key(pk, "share");
    msgpack_pack_nil(pk);
    pk_key(pk, "oldest_ready_ms");
    msgpack_pack_nil(pk);
    msgpack_pack_map(pk, 1);
    pk_key(pk, "name");
    wire_pack_cstr(pk, "old");
}

static void
no_line_starting(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; *p != '\0';) {
        if (strncmp(p, prefix, n) == 0) {
            fail_msg("a line starts with '%s' in:\n%s", prefix, text);
        }
        const char *nl = strchr(p, '\n');
        if (nl == NULL) {
            break;
        }
        p = nl + 1;
    }
}

static void
test_prom_weight_share_oldest_ready_and_order(void **state)
{
    (void)state;
    char *t = metrics_of(fill_fair);

    has_line(t, "# TYPE sluice_group_weight gauge");
    has_line(t, "sluice_group_weight{group=\"bob\"} 4");
    has_line(t, "sluice_group_weight{group=\"eve\"} 0.25");
    has_line(t, "sluice_group_share{group=\"bob\"} 0.75");
    has_line(t, "sluice_group_oldest_ready_seconds{group=\"bob\"} 1.5");
    /* nil (nothing dispatched, nothing ready) and absent (an older broker): no sample. */
    no_line_starting(t, "sluice_group_share{group=\"eve\"}");
    no_line_starting(t, "sluice_group_oldest_ready_seconds{group=\"eve\"}");
    no_line_starting(t, "sluice_group_weight{group=\"old\"}");
    has_line(t, "# TYPE sluice_queue_groups_ready gauge");
    has_line(t, "sluice_queue_groups_ready{queue=\"default\"} 2");
    has_line(t, "sluice_queue_groups_ready{queue=\"bulk\"} 0");
    has_line(t, "# TYPE sluice_queue_order gauge");
    has_line(t, "sluice_queue_order{queue=\"default\",order=\"groups\"} 1");
    has_line(t, "sluice_queue_order{queue=\"default\",order=\"fifo\"} 0");
    has_line(t, "sluice_queue_order{queue=\"bulk\",order=\"groups\"} 0");
    has_line(t, "sluice_queue_order{queue=\"bulk\",order=\"fifo\"} 1");
    /* A broker without a database link says nothing of one. */
    no_line_starting(t, "sluice_db_state{");
    free(t);
}

static void
test_prom_refuses_a_reply_without_broker(void **state)
{
    (void)state;
    msgpack_object nil = { .type = MSGPACK_OBJECT_NIL };
    msgpack_object empty = { .type = MSGPACK_OBJECT_MAP };
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    assert_int_equal(prom_format(&nil, f), SL_EBADREQ);
    assert_int_equal(prom_format(&empty, f), SL_EBADREQ);
    fclose(f);
}

static void
test_prom_label_escapes(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    const char in[] = "a\"b\\c\nd\x01\xc3";
    prom_label_value(f, in, sizeof(in) - 1);
    fclose(f);
    assert_string_equal(text, "a\\\"b\\\\c\\nd??");
    free(text);
}

/* --- --metrics-listen values --- */

static void
test_listen_values(void **state)
{
    (void)state;
    static const struct {
        const char *arg, *url;
    } good[] = {
        { "127.0.0.1:9464", "http://127.0.0.1:9464" },
        { "0.0.0.0:1", "http://0.0.0.0:1" },
        { "[::1]:65535", "http://[::1]:65535" },
        { "[fe80::1:2]:80", "http://[fe80::1:2]:80" },
    };
    static const char *const bad[] = {
        "", ":", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:99999999999", "127.0.0.1:80x", "127.0.0.1:-1", "localhost:80", "1.2.3:80",
        "::1:80", "[::1]", "[::1]80", "[::1", "[127.0.0.1]:80", "[::1]:", "256.0.0.1:80",
        "[0123456789012345678901234567890123456789012345678901234567890123456789]:80",
    };
    char url[64], why[256];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(promhttp_url(good[i].arg, url, sizeof(url), why, sizeof(why)), 0);
        assert_string_equal(url, good[i].url);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(url, "unchanged");
        why[0] = '\0';
        if (promhttp_url(bad[i], url, sizeof(url), why, sizeof(why)) != SL_EBADREQ) {
            fail_msg("'%s' was accepted", bad[i]);
        }
        assert_string_equal(url, "unchanged");
        assert_true(strlen(why) > 0);
    }
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets_are_le_bounds),
        cmocka_unit_test(test_window_percentiles_of_known_waits),
        cmocka_unit_test(test_window_forgets_after_60s),
        cmocka_unit_test(test_decisions_newest_first_capped),
        T(test_waits_counted_at_dispatch),
        T(test_flush_keeps_never_reset_fields),
        T(test_worker_uptime_from_registration),
        T(test_decisions_in_stats),
        T(test_prom_text_of_a_snapshot),
        cmocka_unit_test(test_prom_refuses_a_reply_without_broker),
        cmocka_unit_test(test_prom_weight_share_oldest_ready_and_order),
        T(test_prom_fair_fields_from_the_broker),
        cmocka_unit_test(test_prom_label_escapes),
        cmocka_unit_test(test_listen_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
