/* The router's snapshot read from a stats reply: every field taken, nil routes as none, a
 * group's weight as 1 when the broker does not say, and a reply missing a field or holding
 * one of the wrong type refused whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "snapshot.h"

#include <msgpack.h>
#include <string.h>

static void
kv_u(msgpack_packer *pk, const char *k, uint64_t v)
{
    wire_pack_cstr(pk, k);
    msgpack_pack_uint64(pk, v);
}

/* A stats reply: groups bob (routed to group.bob, 1530, weight 0.25) and alice (no route, 3,
 * no weight, as from a broker before group weights); queues default and group.bob. bad: 0
 * good; -1 good, bob's weight the integer 4; 1 alice lacks count; 2 a queue's weight is a
 * string; 3 groups is a map; 4 bob's weight is a string; 5 bob's weight is 0. */
static void
pack_stats(msgpack_sbuffer *sb, int bad)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    wire_pack_cstr(&pk, "ok");
    msgpack_pack_true(&pk);
    wire_pack_cstr(&pk, "groups");
    if (bad == 3) {
        msgpack_pack_map(&pk, 0);
    } else {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_map(&pk, 4);
        wire_pack_cstr(&pk, "name");
        wire_pack_cstr(&pk, "bob");
        wire_pack_cstr(&pk, "route");
        wire_pack_cstr(&pk, "group.bob");
        kv_u(&pk, "count", 1530);
        wire_pack_cstr(&pk, "weight");
        if (bad == -1) {
            msgpack_pack_uint64(&pk, 4);
        } else if (bad == 4) {
            wire_pack_cstr(&pk, "heavy");
        } else {
            msgpack_pack_double(&pk, bad == 5 ? 0.0 : 0.25);
        }
        msgpack_pack_map(&pk, bad == 1 ? 2 : 3);
        wire_pack_cstr(&pk, "name");
        wire_pack_cstr(&pk, "alice");
        wire_pack_cstr(&pk, "route");
        msgpack_pack_nil(&pk);
        if (bad != 1) {
            kv_u(&pk, "count", 3);
        }
    }
    wire_pack_cstr(&pk, "queues");
    msgpack_pack_array(&pk, 2);
    for (int i = 0; i < 2; i++) {
        msgpack_pack_map(&pk, 10);
        wire_pack_cstr(&pk, "name");
        wire_pack_cstr(&pk, i == 0 ? "default" : "group.bob");
        kv_u(&pk, "priority", i == 0 ? 10 : 100);
        if (bad == 2 && i == 1) {
            wire_pack_cstr(&pk, "weight");
            wire_pack_cstr(&pk, "one");
        } else {
            kv_u(&pk, "weight", 1);
        }
        kv_u(&pk, "max_inflight", i == 0 ? 0 : 4);
        wire_pack_cstr(&pk, "paused");
        i == 0 ? msgpack_pack_false(&pk) : msgpack_pack_true(&pk);
        kv_u(&pk, "ready", i == 0 ? 3 : 1500);
        kv_u(&pk, "reserved", i == 0 ? 0 : 30);
        kv_u(&pk, "delayed", 0);
        kv_u(&pk, "dead", i == 0 ? 0 : 2);
        kv_u(&pk, "done", 7);
    }
}

static void
test_decodes_groups_and_queues(void **state)
{
    struct snapshot_buf b;
    struct wire_msg m;
    msgpack_sbuffer sb;
    char why[160];
    (void)state;
    pack_stats(&sb, 0);
    wire_msg_init(&m);
    assert_int_equal(wire_decode(&m, sb.data, sb.size, NULL, 0), 0);
    snapshot_buf_init(&b);
    assert_int_equal(snapshot_decode(&b, &m, 4242, why, sizeof(why)), 0);
    assert_int_equal(b.s.now_ms, 4242);
    assert_int_equal(b.s.ngroups, 2);
    assert_true(sl_str_eq(b.s.groups[0].name, "bob"));
    assert_true(sl_str_eq(b.s.groups[0].route, "group.bob"));
    assert_int_equal(b.s.groups[0].count, 1530);
    assert_true(b.s.groups[0].weight == 0.25);
    assert_true(sl_str_eq(b.s.groups[1].name, "alice"));
    assert_int_equal(b.s.groups[1].route.n, 0);
    assert_true(b.s.groups[1].weight == 1.0);
    assert_int_equal(b.s.nqueues, 2);
    const struct snap_queue *q = &b.s.queues[1];
    assert_true(sl_str_eq(q->name, "group.bob"));
    assert_int_equal(q->priority, 100);
    assert_int_equal(q->max_inflight, 4);
    assert_true(q->paused);
    assert_int_equal(q->ready, 1500);
    assert_int_equal(q->reserved, 30);
    assert_int_equal(q->dead, 2);
    /* Reused for the next reply. */
    assert_int_equal(snapshot_decode(&b, &m, 5000, why, sizeof(why)), 0);
    assert_int_equal(b.s.ngroups, 2);
    wire_msg_fini(&m);
    msgpack_sbuffer_destroy(&sb);
    /* A weight that is a whole number travels as an integer. */
    pack_stats(&sb, -1);
    wire_msg_init(&m);
    assert_int_equal(wire_decode(&m, sb.data, sb.size, NULL, 0), 0);
    assert_int_equal(snapshot_decode(&b, &m, 6000, why, sizeof(why)), 0);
    assert_true(b.s.groups[0].weight == 4.0);
    snapshot_buf_fini(&b);
    wire_msg_fini(&m);
    msgpack_sbuffer_destroy(&sb);
}

static void
test_bad_replies_are_refused_whole(void **state)
{
    struct snapshot_buf b;
    struct wire_msg m;
    msgpack_sbuffer sb;
    char why[160];
    (void)state;
    snapshot_buf_init(&b);
    for (int bad = 1; bad <= 5; bad++) {
        pack_stats(&sb, bad);
        wire_msg_init(&m);
        assert_int_equal(wire_decode(&m, sb.data, sb.size, NULL, 0), 0);
        assert_int_equal(snapshot_decode(&b, &m, 1, why, sizeof(why)), SL_EBADREQ);
        assert_int_equal(b.s.ngroups, 0);
        assert_int_equal(b.s.nqueues, 0);
        assert_true(strlen(why) > 0);
        if (bad >= 4) {
            assert_string_equal(why, "groups[0] has a weight that is not a positive number");
        }
        wire_msg_fini(&m);
        msgpack_sbuffer_destroy(&sb);
    }
    /* A reply with neither array (an error reply, say). */
    wire_msg_init(&m);
    assert_int_equal(snapshot_decode(&b, &m, 1, why, sizeof(why)), SL_EBADREQ);
    wire_msg_fini(&m);
    snapshot_buf_fini(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decodes_groups_and_queues),
        cmocka_unit_test(test_bad_replies_are_refused_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
