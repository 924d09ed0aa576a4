/* The broker's semantics, driven through broker_* and through ops_handle (the wire). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "err.h"
#include "log.h"
#include "ops.h"
#include "support.h"

#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
setup(void **state)
{
    struct broker_cfg cfg;
    struct broker *b;
    broker_cfg_default(&cfg);
    cfg.max_jobs = 1000;
    cfg.max_bytes = 10000;
    cfg.max_payload = 100;
    assert_int_equal(broker_new(&b, &cfg), 0);
    *state = b;
    return 0;
}

static int
teardown(void **state)
{
    broker_free(*state);
    return 0;
}

/* Pushes n payloads "<prefix><i>" for group g (queue q or route). */
static int
push_n(struct broker *b, const char *g, const char *q, uint32_t n, const char *prefix,
       struct push_res *res)
{
    static char bufs[256][32];
    static struct sl_str pl[256];
    struct wire_list l = { n, NULL, pl, NULL };
    struct sl_str qs;
    struct push_req req = { .group = S(g), .payloads = &l };
    struct push_res r;

    assert_true(n <= 256);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "%s%u", prefix, i);
        pl[i] = S(bufs[i]);
    }
    if (q != NULL) {
        qs = S(q);
        req.queue = &qs;
    }
    return broker_push(b, &req, res != NULL ? res : &r);
}

static struct queue *
Q(struct broker *b, const char *name)
{
    return broker_queue_find(b, S(name));
}

static struct group *
G(struct broker *b, const char *name)
{
    return broker_group_find(b, S(name));
}

/* Asserts q's ready jobs are exactly the payloads given, in the order they arrived. */
static void
assert_ready(struct queue *q, const char *const *want, size_t n)
{
    size_t i = 0;
    uint64_t last = 0;
    struct job *by[64];
    size_t m = 0;
    for (struct job *j = queue_ready_first(q); j != NULL && m < 64; j = queue_ready_next(j)) {
        by[m++] = j;
    }
    qsort(by, m, sizeof(by[0]), by_arrival); /* the order one list would have */
    for (size_t k = 0; k < m; k++, i++) {
        struct job *j = by[k];
        assert_true(i < n);
        assert_int_equal(j->len, strlen(want[i]));
        assert_memory_equal(job_payload(j), want[i], j->len);
        assert_true(j->id > last || i == 0 || strcmp(want[i - 1], want[i]) != 0);
        last = j->id;
    }
    assert_int_equal(i, n);
    assert_int_equal(queue_n(q, JOB_READY), n);
}

static void
test_new_broker_has_only_default_queue(void **state)
{
    struct broker *b = *state;
    assert_int_equal(b->nqueues, 1);
    assert_non_null(Q(b, "default"));
    assert_int_equal(Q(b, "default")->priority, 10);
    assert_int_equal(b->jobs, 0);
}

static void
test_push_counts_are_exact(void **state)
{
    struct broker *b = *state;
    struct push_res r;
    assert_int_equal(push_n(b, "bob", NULL, 3, "x", &r), 0);
    assert_int_equal(r.first_id, 1);
    assert_int_equal(r.n, 3);
    assert_ptr_equal(r.queue, Q(b, "default"));
    assert_int_equal(push_n(b, "amy", NULL, 2, "yy", &r), 0);
    assert_int_equal(r.first_id, 4);
    assert_int_equal(b->jobs, 5);
    assert_int_equal(b->bytes, 3 * 2 + 2 * 3);
    assert_int_equal(group_count(G(b, "bob")), 3);
    assert_int_equal(group_count(G(b, "amy")), 2);
    assert_int_equal(G(b, "bob")->pushed, 3);
    assert_int_equal(queue_n(Q(b, "default"), JOB_READY), 5);
    assert_int_equal(Q(b, "default")->pushed, 5);
}

static void
test_push_too_large_changes_nothing(void **state)
{
    struct broker *b = *state;
    char big[101];
    memset(big, 'a', sizeof(big));
    struct sl_str pl[2] = { S("ok"), { big, 101 } };
    struct wire_list l = { 2, NULL, pl, NULL };
    struct push_req req = { .group = S("bob"), .payloads = &l };
    struct push_res r;
    assert_int_equal(broker_push(b, &req, &r), SL_ETOOLARGE);
    assert_int_equal(b->jobs, 0);
    assert_null(G(b, "bob"));
    pl[1].n = 100; /* exactly the limit is accepted */
    assert_int_equal(broker_push(b, &req, &r), 0);
    assert_int_equal(b->jobs, 2);
}

static void
test_push_over_job_limit_is_queue_full_and_changes_nothing(void **state)
{
    struct broker *b = *state;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(push_n(b, "bob", NULL, 250, "", NULL), 0);
    }
    assert_int_equal(b->jobs, 1000);
    uint64_t next = b->next_id;
    assert_int_equal(push_n(b, "amy", NULL, 1, "z", NULL), SL_EQUEUEFULL);
    assert_int_equal(b->jobs, 1000);
    assert_int_equal(b->next_id, next);
    assert_null(G(b, "amy"));
}

static void
test_push_over_byte_limit_is_queue_full(void **state)
{
    struct broker *b = *state;
    char p[100];
    memset(p, 'p', sizeof(p));
    struct sl_str pl[100];
    for (int i = 0; i < 100; i++) {
        pl[i] = (struct sl_str){ p, 100 };
    }
    struct wire_list l = { 100, NULL, pl, NULL };
    struct push_req req = { .group = S("bob"), .payloads = &l };
    struct push_res r;
    assert_int_equal(broker_push(b, &req, &r), 0); /* 10000 bytes: the limit exactly */
    l.n = 1;
    assert_int_equal(broker_push(b, &req, &r), SL_EQUEUEFULL);
    assert_int_equal(b->bytes, 10000);
    assert_int_equal(group_count(G(b, "bob")), 100);
}

static void
test_push_to_missing_queue_is_not_found(void **state)
{
    struct broker *b = *state;
    assert_int_equal(push_n(b, "bob", "nope", 1, "x", NULL), SL_ENOTFOUND);
    assert_int_equal(b->jobs, 0);
    assert_null(G(b, "bob"));
}

static void
test_push_with_seen_key_is_not_stored_twice(void **state)
{
    struct broker *b = *state;
    struct sl_str pl[2] = { S("a"), S("b") };
    struct wire_list l = { 2, NULL, pl, NULL };
    struct push_req req = {
        .group = S("bob"), .payloads = &l, .keyed = true, .client = S("c1"), .seq = 7
    };
    struct push_res r1, r2;
    assert_int_equal(broker_push(b, &req, &r1), 0);
    assert_false(r1.dup);
    assert_int_equal(broker_push(b, &req, &r2), 0);
    assert_true(r2.dup);
    assert_int_equal(r2.first_id, r1.first_id);
    assert_int_equal(r2.n, 2);
    assert_int_equal(b->jobs, 2);
    req.seq = 8; /* a new key is stored */
    assert_int_equal(broker_push(b, &req, &r2), 0);
    assert_false(r2.dup);
    assert_int_equal(b->jobs, 4);
    req.client = S("c2"); /* same seq, other client */
    req.seq = 7;
    assert_int_equal(broker_push(b, &req, &r2), 0);
    assert_false(r2.dup);
    assert_int_equal(b->jobs, 6);
}

static void
test_route_change_moves_ready_jobs_in_order(void **state)
{
    struct broker *b = *state;
    struct queue_settings s = { .has_priority = true, .priority = 100 };
    uint64_t moved;
    assert_int_equal(broker_queue_create(b, S("group.bob"), &s), 0);
    assert_int_equal(push_n(b, "bob", NULL, 2, "b", NULL), 0);
    assert_int_equal(push_n(b, "amy", NULL, 2, "a", NULL), 0);
    assert_int_equal(push_n(b, "bob", NULL, 2, "c", NULL), 0);
    struct sl_str qn = S("group.bob");
    assert_int_equal(broker_route_set(b, S("bob"), &qn, &moved), 0);
    assert_int_equal(moved, 4);
    const char *bobs[] = { "b0", "b1", "c0", "c1" };
    const char *amys[] = { "a0", "a1" };
    assert_ready(Q(b, "group.bob"), bobs, 4);
    assert_ready(Q(b, "default"), amys, 2);
    assert_int_equal(group_count(G(b, "bob")), 4);
    assert_int_equal(Q(b, "group.bob")->routes, 1);
    /* New pushes follow the route at once. */
    struct push_res r;
    assert_int_equal(push_n(b, "bob", NULL, 1, "d", &r), 0);
    assert_ptr_equal(r.queue, Q(b, "group.bob"));
    /* Back to default: all five move, after amy's, order kept. */
    assert_int_equal(broker_route_set(b, S("bob"), NULL, &moved), 0);
    assert_int_equal(moved, 5);
    const char *all[] = { "a0", "a1", "b0", "b1", "c0", "c1", "d0" };
    assert_ready(Q(b, "default"), all, 7);
    assert_int_equal(Q(b, "group.bob")->routes, 0);
    assert_null(G(b, "bob")->route);
}

/* route.set's `expect`: the route must still be the one the caller saw. */
static void
test_route_expect_compares_with_the_current_route(void **state)
{
    struct broker *b = *state;
    struct queue_settings s = { 0 };
    uint64_t moved;
    /* A group the broker does not know has no route. */
    assert_int_equal(broker_route_expect(b, S("bob"), S("")), 0);
    assert_int_equal(broker_route_expect(b, S("bob"), S("default")), 0);
    assert_int_equal(broker_route_expect(b, S("bob"), S("group.bob")), SL_ECONFLICT);
    assert_int_equal(broker_queue_create(b, S("group.bob"), &s), 0);
    assert_int_equal(broker_queue_create(b, S("special"), &s), 0);
    struct sl_str own = S("group.bob"), special = S("special");
    assert_int_equal(broker_route_set(b, S("bob"), &own, &moved), 0);
    assert_int_equal(broker_route_expect(b, S("bob"), S("group.bob")), 0);
    assert_int_equal(broker_route_expect(b, S("bob"), S("")), SL_ECONFLICT);
    assert_int_equal(broker_route_expect(b, S("bob"), S("default")), SL_ECONFLICT);
    assert_int_equal(broker_route_expect(b, S("bob"), S("group.bo")), SL_ECONFLICT);
    assert_int_equal(broker_route_expect(b, S("bob"), S("group.bobx")), SL_ECONFLICT);
    assert_int_equal(broker_route_set(b, S("bob"), &special, &moved), 0);
    assert_int_equal(broker_route_expect(b, S("bob"), S("group.bob")), SL_ECONFLICT);
    assert_int_equal(broker_route_expect(b, S("bob"), S("special")), 0);
    assert_int_equal(broker_route_set(b, S("bob"), NULL, &moved), 0);
    assert_int_equal(broker_route_expect(b, S("bob"), S("")), 0);
    assert_int_equal(broker_route_expect(b, S("bob"), S("special")), SL_ECONFLICT);
}

static void
test_route_to_missing_queue_is_not_found(void **state)
{
    struct broker *b = *state;
    uint64_t moved;
    struct sl_str qn = S("nope");
    assert_int_equal(broker_route_set(b, S("bob"), &qn, &moved), SL_ENOTFOUND);
    assert_null(G(b, "bob"));
}

static void
test_route_to_default_is_unset(void **state)
{
    struct broker *b = *state;
    struct queue_settings s = { 0 };
    uint64_t moved;
    struct sl_str qn = S("q1"), dn = S("default");
    assert_int_equal(broker_queue_create(b, qn, &s), 0);
    assert_int_equal(broker_route_set(b, S("bob"), &qn, &moved), 0);
    assert_ptr_equal(G(b, "bob")->route, Q(b, "q1"));
    assert_int_equal(broker_route_set(b, S("bob"), &dn, &moved), 0);
    assert_null(G(b, "bob")->route);
}

static void
test_destroy_refuses_nonempty_queue_and_force_moves_to_default(void **state)
{
    struct broker *b = *state;
    struct queue_settings s = { 0 };
    uint64_t moved, reset;
    struct sl_str qn = S("q1");
    assert_int_equal(broker_queue_create(b, qn, &s), 0);
    assert_int_equal(push_n(b, "amy", NULL, 1, "a", NULL), 0);
    assert_int_equal(push_n(b, "bob", "q1", 2, "b", NULL), 0);
    assert_int_equal(broker_route_set(b, S("bob"), &qn, &moved), 0);
    assert_int_equal(broker_queue_destroy(b, qn, false, &moved, &reset), SL_ENOTEMPTY);
    assert_non_null(Q(b, "q1"));
    assert_int_equal(queue_n(Q(b, "q1"), JOB_READY), 2);
    assert_int_equal(broker_queue_destroy(b, qn, true, &moved, &reset), 0);
    assert_int_equal(moved, 2);
    assert_int_equal(reset, 1);
    assert_null(Q(b, "q1"));
    assert_int_equal(b->nqueues, 1);
    assert_null(G(b, "bob")->route);
    const char *all[] = { "a0", "b0", "b1" };
    assert_ready(Q(b, "default"), all, 3);
    assert_int_equal(b->jobs, 3);
}

static void
test_destroy_empty_queue_resets_routes(void **state)
{
    struct broker *b = *state;
    struct queue_settings s = { 0 };
    uint64_t moved, reset;
    struct sl_str qn = S("q1");
    assert_int_equal(broker_queue_create(b, qn, &s), 0);
    assert_int_equal(broker_route_set(b, S("bob"), &qn, &moved), 0);
    assert_int_equal(broker_queue_destroy(b, qn, false, &moved, &reset), 0);
    assert_int_equal(reset, 1);
    assert_null(G(b, "bob")->route);
}

static void
test_destroy_default_is_forbidden(void **state)
{
    struct broker *b = *state;
    uint64_t moved, reset;
    assert_int_equal(broker_queue_destroy(b, S("default"), true, &moved, &reset), SL_EFORBIDDEN);
    assert_int_equal(broker_queue_destroy(b, S("none"), true, &moved, &reset), SL_ENOTFOUND);
}

static void
test_queue_create_exists_and_bad_settings(void **state)
{
    struct broker *b = *state;
    struct queue_settings s = { 0 };
    assert_int_equal(broker_queue_create(b, S("default"), &s), SL_EEXISTS);
    s.has_weight = true;
    s.weight = 0;
    assert_int_equal(broker_queue_create(b, S("q1"), &s), SL_EBADREQ);
    s.weight = QUEUE_WEIGHT_MAX + 1;
    assert_int_equal(broker_queue_create(b, S("q1"), &s), SL_EBADREQ);
    assert_null(Q(b, "q1"));
    s.weight = 3;
    assert_int_equal(broker_queue_create(b, S("q1"), &s), 0);
    assert_int_equal(Q(b, "q1")->weight, 3);
    /* Retry settings: each out of range refuses the whole change. */
    struct queue_settings r = { .has_retry_base = true, .has_retry_max = true,
                                .has_retry_jitter = true,
                                .retry = { QUEUE_RETRY_BASE_MAX + 1, 1000, 10 } };
    assert_int_equal(broker_queue_update(b, S("q1"), &r), SL_EBADREQ);
    r.retry = (struct queue_retry){ 100, 0, 10 };
    assert_int_equal(broker_queue_update(b, S("q1"), &r), SL_EBADREQ);
    r.retry = (struct queue_retry){ 100, QUEUE_RETRY_MAX_MAX + 1, 10 };
    assert_int_equal(broker_queue_update(b, S("q1"), &r), SL_EBADREQ);
    r.retry = (struct queue_retry){ 100, 1000, 101 };
    assert_int_equal(broker_queue_update(b, S("q1"), &r), SL_EBADREQ);
    /* A new queue has the broker's defaults: 1 s, 10 min, 20 %. */
    assert_int_equal(Q(b, "q1")->retry.base_ms, 1000);
    assert_int_equal(Q(b, "q1")->retry.max_ms, 600000);
    assert_int_equal(Q(b, "q1")->retry.jitter, 20);
    r.retry = (struct queue_retry){ QUEUE_RETRY_BASE_MAX, QUEUE_RETRY_MAX_MAX, 100 };
    assert_int_equal(broker_queue_update(b, S("q1"), &r), 0);
    assert_int_equal(Q(b, "q1")->retry.jitter, 100);
}

static void
test_queues_are_ordered_by_priority_then_name(void **state)
{
    struct broker *b = *state;
    struct queue_settings s = { .has_priority = true, .priority = 100 };
    assert_int_equal(broker_queue_create(b, S("zz"), &s), 0);
    s.priority = 5;
    assert_int_equal(broker_queue_create(b, S("hi"), &s), 0);
    s.priority = 100;
    assert_int_equal(broker_queue_create(b, S("aa"), &s), 0);
    const char *want[] = { "hi", "default", "aa", "zz" };
    for (int i = 0; i < 4; i++) {
        assert_string_equal(b->qorder[i]->name, want[i]);
    }
    s.priority = 1;
    assert_int_equal(broker_queue_update(b, S("zz"), &s), 0);
    assert_string_equal(b->qorder[0]->name, "zz");
    assert_int_equal(broker_queue_update(b, S("nope"), &s), SL_ENOTFOUND);
}

static void
test_pause_and_resume(void **state)
{
    struct broker *b = *state;
    assert_int_equal(broker_queue_pause(b, S("default"), true), 0);
    assert_true(Q(b, "default")->paused);
    /* Pausing stops delivery, never acceptance. */
    assert_int_equal(push_n(b, "bob", NULL, 1, "x", NULL), 0);
    assert_int_equal(broker_queue_pause(b, S("default"), true), 0);
    assert_int_equal(broker_queue_pause(b, S("default"), false), 0);
    assert_false(Q(b, "default")->paused);
    assert_int_equal(broker_queue_pause(b, S("nope"), true), SL_ENOTFOUND);
}

static void
test_flush_keeps_jobs_resets_routes_and_stats(void **state)
{
    struct broker *b = *state;
    struct queue_settings s = { 0 };
    uint64_t moved, rr, reset;
    struct sl_str qn = S("q1");
    assert_int_equal(broker_queue_create(b, qn, &s), 0);
    assert_int_equal(push_n(b, "bob", NULL, 3, "b", NULL), 0);
    assert_int_equal(broker_route_set(b, S("bob"), &qn, &moved), 0);
    assert_int_equal(broker_route_set(b, S("idle"), &qn, &moved), 0);
    broker_flush(b, &rr, &reset);
    assert_int_equal(rr, 2);
    assert_int_equal(reset, 2);
    assert_int_equal(b->jobs, 3);
    assert_null(G(b, "bob")->route);
    assert_int_equal(G(b, "bob")->pushed, 0);
    assert_int_equal(queue_n(Q(b, "default"), JOB_READY), 3);
    assert_null(G(b, "idle")); /* no jobs, no route: forgotten */
    assert_int_equal(Q(b, "default")->pushed, 0);
}

static void
test_purge_deletes_only_what_it_names(void **state)
{
    struct broker *b = *state;
    struct queue_settings s = { 0 };
    uint64_t purged;
    struct sl_str qn = S("q1"), dn = S("default"), bob = S("bob"), amy = S("amy"), no = S("no");
    assert_int_equal(broker_queue_create(b, qn, &s), 0);
    assert_int_equal(push_n(b, "bob", NULL, 3, "b", NULL), 0);
    assert_int_equal(push_n(b, "amy", NULL, 2, "a", NULL), 0);
    assert_int_equal(push_n(b, "bob", "q1", 4, "q", NULL), 0);
    assert_int_equal(push_n(b, "amy", "q1", 1, "r", NULL), 0);

    assert_int_equal(broker_purge(b, NULL, NULL, &purged), SL_EBADREQ);
    assert_int_equal(broker_purge(b, &no, NULL, &purged), SL_ENOTFOUND);
    assert_int_equal(broker_purge(b, NULL, &no, &purged), SL_ENOTFOUND);
    assert_int_equal(b->jobs, 10);

    assert_int_equal(broker_purge(b, &dn, &bob, &purged), 0); /* bob in default */
    assert_int_equal(purged, 3);
    assert_int_equal(group_count(G(b, "bob")), 4);
    assert_int_equal(broker_purge(b, &qn, NULL, &purged), 0); /* all of q1 */
    assert_int_equal(purged, 5);
    assert_int_equal(group_count(G(b, "bob")), 0);
    assert_int_equal(group_count(G(b, "amy")), 2);
    assert_int_equal(broker_purge(b, NULL, &amy, &purged), 0); /* amy everywhere */
    assert_int_equal(purged, 2);
    assert_int_equal(b->jobs, 0);
    assert_int_equal(b->bytes, 0);
    assert_int_equal(b->mem_bytes, 0);
}

/* --- through the wire --- */

static int
raw(struct broker *b, const void *buf, size_t n)
{
    nng_msg *r;
    struct wire_msg rep;
    assert_int_equal(nng_msg_alloc(&r, 0), 0);
    int rv = ops_handle(b, buf, n, 0, r, NULL);
    wire_msg_init(&rep);
    assert_int_equal(wire_decode(&rep, nng_msg_body(r), nng_msg_len(r), NULL, 0), 0);
    assert_int_equal(rep.v[WK_OK].b, rv == 0);
    if (rv != 0) {
        assert_true(sl_str_eq(rep.v[WK_ERR].s, sl_err_code(rv)));
    }
    wire_msg_fini(&rep);
    nng_msg_free(r);
    return rv;
}

static void
test_wire_push_and_stats(void **state)
{
    struct broker *b = *state;
    struct wire_msg req, rep;
    nng_msg *keep;
    struct sl_str pl[2] = { S("a"), S("b") };

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, "bob");
    wire_set_strs(&req, WK_PAYLOADS, pl, 2);
    assert_int_equal(request(b, &req, &rep, &keep), 0);
    assert_int_equal(rep.v[WK_N].u, 2);
    assert_int_equal(rep.v[WK_FIRST_ID].u, 1);
    assert_true(sl_str_eq(rep.v[WK_QUEUE].s, "default"));
    assert_false(rep.v[WK_DUP].b);
    wire_msg_fini(&rep);
    nng_msg_free(keep);

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "stats");
    assert_int_equal(request(b, &req, &rep, &keep), 0);
    assert_true(WIRE_HAS(&rep, WK_BROKER) && WIRE_HAS(&rep, WK_QUEUES) &&
                WIRE_HAS(&rep, WK_GROUPS) && WIRE_HAS(&rep, WK_WORKERS));
    const msgpack_object *groups = rep.v[WK_GROUPS].any;
    assert_int_equal(groups->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(groups->via.array.size, 1);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
}

static void
test_wire_errors_are_exact(void **state)
{
    struct broker *b = *state;
    struct wire_msg req, rep;
    nng_msg *keep;
    struct sl_str pl[1] = { S("a") };

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "frobnicate");
    assert_int_equal(request(b, &req, &rep, &keep), SL_EUNKNOWNOP);
    wire_msg_fini(&rep);
    nng_msg_free(keep);

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, "bob");
    assert_int_equal(request(b, &req, &rep, &keep), SL_EBADREQ); /* no payloads */
    wire_msg_fini(&rep);
    nng_msg_free(keep);

    wire_set_strs(&req, WK_PAYLOADS, pl, 1);
    wire_set_cstr(&req, WK_CLIENT, "c"); /* client without seq */
    assert_int_equal(request(b, &req, &rep, &keep), SL_EBADREQ);
    wire_msg_fini(&rep);
    nng_msg_free(keep);

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, "bad name");
    wire_set_strs(&req, WK_PAYLOADS, pl, 1);
    assert_int_equal(request(b, &req, &rep, &keep), SL_EBADREQ);
    wire_msg_fini(&rep);
    nng_msg_free(keep);

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.destroy");
    wire_set_cstr(&req, WK_NAME, "default");
    assert_int_equal(request(b, &req, &rep, &keep), SL_EFORBIDDEN);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    assert_int_equal(b->jobs, 0);
    assert_int_equal(b->opc.bad_requests, 3); /* unknown op, missing field, bad name */
}

static void
test_wire_garbage_is_bad_request(void **state)
{
    struct broker *b = *state;
    const unsigned char hazard[] = { 0xdf, 0x07, 0xff, 0x07, 0xff };
    const unsigned char trailing[] = { 0x81, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g', 0x00 };
    const unsigned char notmap[] = { 0x93, 1, 2, 3 };
    assert_int_equal(raw(b, "", 0), SL_EBADREQ);
    assert_int_equal(raw(b, hazard, sizeof(hazard)), SL_EBADREQ);
    assert_int_equal(raw(b, trailing, sizeof(trailing)), SL_EBADREQ);
    assert_int_equal(raw(b, trailing, sizeof(trailing) - 1), 0); /* the same without it: ping */
    assert_int_equal(raw(b, notmap, sizeof(notmap)), SL_EBADREQ);
    unsigned char buf[64];
    unsigned seed = 1;
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof(buf));
        for (size_t k = 0; k < n; k++) {
            buf[k] = (unsigned char)rand_r(&seed);
        }
        int rv = raw(b, buf, n);
        assert_true(rv == SL_EBADREQ || rv == SL_EUNKNOWNOP || rv == 0);
    }
    assert_int_equal(b->nqueues, 1);
}

/* Every op of the protocol table reaches a handler: a minimal request with its required
 * fields gets a reply that is not unknown_op, except the pool's ops, which the broker
 * refuses by name. */
static void
test_every_documented_op_has_a_handler(void **state)
{
    struct broker *b = *state;
    struct sl_str pl[1] = { S("x") };
    uint64_t ids[1] = { 1 };

    for (int op = 0; op < WOP_COUNT; op++) {
        struct wire_msg req, rep;
        nng_msg *keep;
        wire_msg_init(&req);
        wire_set_cstr(&req, WK_OP, wire_ops[op].name);
        for (int k = 0; k < WK_COUNT; k++) {
            if (!wire_op_requires((enum wire_op)op, (enum wire_key)k)) {
                continue;
            }
            switch (wire_key_type((enum wire_key)k)) {
            case WT_NAME:
                wire_set_cstr(&req, (enum wire_key)k, k == WK_QUEUE ? "default" : "q1");
                break;
            case WT_STR:
                wire_set_cstr(&req, (enum wire_key)k, "x");
                break;
            case WT_BLOBS:
                wire_set_strs(&req, (enum wire_key)k, pl, 1);
                break;
            case WT_U64S:
                wire_set_u64s(&req, (enum wire_key)k, ids, 1);
                break;
            case WT_U64:
            case WT_NUM:
                wire_set_u64(&req, (enum wire_key)k, 1);
                break;
            default:
                fail_msg("op %s requires key %s of an unexpected type", wire_ops[op].name,
                         wire_key_name((enum wire_key)k));
            }
        }
        int rv = request(b, &req, &rep, &keep);
        if (op == WOP_POOL_STATUS || op == WOP_POOL_SCALE) {
            assert_int_equal(rv, SL_EUNKNOWNOP);
        } else if (rv == SL_EUNKNOWNOP) {
            fail_msg("op %s is not handled", wire_ops[op].name);
        }
        wire_msg_fini(&rep);
        nng_msg_free(keep);
    }
}

int
main(void)
{
    log_level = LOG_OFF;
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_new_broker_has_only_default_queue),
        T(test_push_counts_are_exact),
        T(test_push_too_large_changes_nothing),
        T(test_push_over_job_limit_is_queue_full_and_changes_nothing),
        T(test_push_over_byte_limit_is_queue_full),
        T(test_push_to_missing_queue_is_not_found),
        T(test_push_with_seen_key_is_not_stored_twice),
        T(test_route_change_moves_ready_jobs_in_order),
        T(test_route_expect_compares_with_the_current_route),
        T(test_route_to_missing_queue_is_not_found),
        T(test_route_to_default_is_unset),
        T(test_destroy_refuses_nonempty_queue_and_force_moves_to_default),
        T(test_destroy_empty_queue_resets_routes),
        T(test_destroy_default_is_forbidden),
        T(test_queue_create_exists_and_bad_settings),
        T(test_queues_are_ordered_by_priority_then_name),
        T(test_pause_and_resume),
        T(test_flush_keeps_jobs_resets_routes_and_stats),
        T(test_purge_deletes_only_what_it_names),
        T(test_wire_push_and_stats),
        T(test_wire_errors_are_exact),
        T(test_wire_garbage_is_bad_request),
        T(test_every_documented_op_has_a_handler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
