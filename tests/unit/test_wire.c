/* common/wire: the key table and op table match PROTOCOL.md; every key type and every op
 * round-trips through wire_encode/wire_decode; replies decode; and every kind of malformed input
 * is SL_EBADREQ without a crash (also under ASan/UBSan: make SANITIZE=1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "wire.h"

#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(k) (UINT64_C(1) << (k))
/* The keys of a message whose keys are all below 64, as one mask (all ones otherwise). */
#define HAS64(m) ((m).has.w[1] == 0 ? (m).has.w[0] : ~UINT64_C(0))

/* --- helpers ----------------------------------------------------------------------------- */

/* One growable buffer that the tests pack into; reset with begin(). */
static msgpack_sbuffer sb;
static msgpack_packer pk;

static void
begin(void)
{
    msgpack_sbuffer_clear(&sb);
}

static void
put(const void *p, size_t n)
{
    msgpack_sbuffer_write(&sb, p, n);
}

static void
pack_str(const char *z)
{
    wire_pack_cstr(&pk, z);
}

static void
pack_strn(const char *p, size_t n)
{
    wire_pack_str(&pk, p, n);
}

static int
group_setup(void **state)
{
    (void)state;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    msgpack_sbuffer_destroy(&sb);
    return 0;
}

/* Decodes p[0..n) into a fresh *m; returns wire_decode's result. The caller finalises m. */
static int
decode(struct wire_msg *m, const void *p, size_t n)
{
    char why[256];
    wire_msg_init(m);
    return wire_decode(m, p, n, why, sizeof(why));
}

/* Asserts that p[0..n) is bad_request with a reason, leaves the message empty, and (when
 * check_too) that wire_check refuses it as well. */
static void
expect_bad_at(const void *p, size_t n, bool check_too, const char *file, int line)
{
    struct wire_msg m;
    char why[256] = "";

    wire_msg_init(&m);
    int rv = wire_decode(&m, p, n, why, sizeof(why));
    bool has = !wire_keyset_empty(&m.has);
    /* Finalise before any failure: a failed assertion longjmps out of this function. */
    wire_msg_fini(&m);
    if (rv != SL_EBADREQ) {
        fail_msg("%s:%d: wire_decode of %zu bytes returned %d, want SL_EBADREQ", file, line, n,
                 rv);
    }
    if (has) {
        fail_msg("%s:%d: a failed decode left keys set", file, line);
    }
    if (why[0] == '\0') {
        fail_msg("%s:%d: a failed decode gave no reason", file, line);
    }
    if (check_too && wire_check(p, n) != SL_EBADREQ) {
        fail_msg("%s:%d: wire_check accepted %zu bytes that it must refuse", file, line, n);
    }
}
#define expect_bad(p, n) expect_bad_at((p), (n), false, __FILE__, __LINE__)
#define expect_bad_check(p, n) expect_bad_at((p), (n), true, __FILE__, __LINE__)

static void
expect_bad_sb(void)
{
    expect_bad(sb.data, sb.size);
}

/* --- tables against PROTOCOL.md ---------------------------------------------------------- */

static const struct {
    const char *name;
    enum wire_type type;
} documented_keys[] = {
    { "op", WT_STR },          { "ok", WT_BOOL },        { "err", WT_STR },
    { "token", WT_STR },        { "expect", WT_STR },
    { "msg", WT_STR },         { "group", WT_NAME },     { "queue", WT_NAME },
    { "name", WT_NAME },       { "payloads", WT_BLOBS }, { "client", WT_NAME },
    { "seq", WT_U64 },         { "priority", WT_U64 },   { "weight", WT_NUM },
    { "max_inflight", WT_U64 }, { "force", WT_BOOL },    { "ttr_ms", WT_U64 },
    { "max_attempts", WT_U64 }, { "delay_ms", WT_U64 },  { "n", WT_U64 },
    { "first_id", WT_U64 },    { "dup", WT_BOOL },       { "moved", WT_U64 },
    { "purged", WT_U64 },      { "reset", WT_U64 },      { "routes_reset", WT_U64 },
    { "pid", WT_U64 },         { "version", WT_STR },    { "uptime_ms", WT_U64 },
    { "lease", WT_U64 },       { "ids", WT_U64S },       { "worker", WT_NAME },
    { "max", WT_U64 },         { "wait_ms", WT_U64 },    { "queues", WT_ANY },
    { "routes", WT_ANY },      { "broker", WT_ANY },     { "groups", WT_ANY },
    { "workers", WT_ANY },     { "jobs", WT_ANY },       { "order", WT_STR },
};

static void
test_key_table_matches_protocol_md(void **state)
{
    (void)state;
    /* Every documented key is in the table with its documented type. The table may hold keys
     * that later ops add; those are checked by the round trips below. */
    for (size_t i = 0; i < COUNT(documented_keys); i++) {
        int found = -1;
        for (int k = 0; k < WK_COUNT; k++) {
            if (strcmp(wire_key_name((enum wire_key)k), documented_keys[i].name) == 0) {
                found = k;
                break;
            }
        }
        if (found < 0) {
            fail_msg("documented key \"%s\" is not in the key table", documented_keys[i].name);
        }
        if (wire_key_type((enum wire_key)found) != documented_keys[i].type) {
            fail_msg("key \"%s\" has type %d, PROTOCOL.md says %d", documented_keys[i].name,
                     (int)wire_key_type((enum wire_key)found), (int)documented_keys[i].type);
        }
    }
}

static void
test_key_names_are_unique_and_nonempty(void **state)
{
    (void)state;
    for (int k = 0; k < WK_COUNT; k++) {
        const char *a = wire_key_name((enum wire_key)k);
        assert_non_null(a);
        assert_true(strlen(a) > 0);
        for (int j = 0; j < k; j++) {
            if (strcmp(a, wire_key_name((enum wire_key)j)) == 0) {
                fail_msg("keys %d and %d are both \"%s\"", j, k, a);
            }
        }
    }
    assert_string_equal(wire_key_name(WK_COUNT), "?");
}

static const struct {
    const char *name;
    uint64_t required;
} documented_ops[] = {
    { "ping", 0 },
    { "push", BIT(WK_GROUP) | BIT(WK_PAYLOADS) },
    { "queue.create", BIT(WK_NAME) },
    { "queue.update", BIT(WK_NAME) },
    { "queue.destroy", BIT(WK_NAME) },
    { "queue.pause", BIT(WK_NAME) },
    { "queue.resume", BIT(WK_NAME) },
    { "queue.list", 0 },
    { "route.set", BIT(WK_GROUP) | BIT(WK_QUEUE) },
    { "route.unset", BIT(WK_GROUP) },
    { "route.list", 0 },
    { "stats", 0 },
    { "flush", 0 },
    { "purge", 0 }, /* "queue and/or group": checked by the handler, not the table */
    { "cron.remove", BIT(WK_NAME) },
    { "cron.list", 0 },
    { "cron.pause", BIT(WK_NAME) },
    { "cron.resume", BIT(WK_NAME) },
    { "group.list", 0 },
    { "history", 0 },
};

static void
test_op_table_matches_protocol_md(void **state)
{
    (void)state;
    /* Every documented op is in the table with the documented required keys. */
    for (size_t i = 0; i < COUNT(documented_ops); i++) {
        struct sl_str s = { documented_ops[i].name, (uint32_t)strlen(documented_ops[i].name) };
        int op = wire_op_find(s);
        if (op < 0) {
            fail_msg("documented op \"%s\" is not in wire_ops", documented_ops[i].name);
        }
        assert_string_equal(wire_ops[op].name, documented_ops[i].name);
        uint64_t required = 0;
        for (int k = 0; k < WK_COUNT && k < 64; k++) {
            if (wire_op_requires((enum wire_op)op, (enum wire_key)k)) {
                required |= BIT(k);
            }
        }
        if (required != documented_ops[i].required) {
            fail_msg("op \"%s\" requires keys %#llx, PROTOCOL.md says %#llx",
                     documented_ops[i].name, (unsigned long long)required,
                     (unsigned long long)documented_ops[i].required);
        }
    }
}

static void
test_every_op_is_found_by_its_unique_name(void **state)
{
    (void)state;
    for (int op = 0; op < WOP_COUNT; op++) {
        const char *a = wire_ops[op].name;
        assert_non_null(a);
        struct sl_str s = { a, (uint32_t)strlen(a) };
        assert_int_equal(wire_op_find(s), op);
        /* Required keys are keys. */
        for (int i = 0; i < WIRE_REQUIRED_MAX; i++) {
            assert_true(wire_ops[op].required[i] < WK_COUNT);
        }
    }
}

static void
test_op_find_rejects_unknown_and_near_names(void **state)
{
    (void)state;
    const char *const no[] = { "", "nope", "pin", "pingx", "ping ", "PING", "queue", "queue." };
    for (size_t i = 0; i < COUNT(no); i++) {
        struct sl_str s = { no[i], (uint32_t)strlen(no[i]) };
        assert_int_equal(wire_op_find(s), -1);
    }
    /* Not NUL-terminated: only n bytes count. */
    struct sl_str s = { "stats and more", 5 };
    assert_int_equal(wire_op_find(s), WOP_STATS);
}

static void
test_name_rule_accepts_exactly_its_characters(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
        if (wire_name_ok(&b, 1) != want) {
            fail_msg("byte 0x%02x: wire_name_ok says %d, want %d", c, !want, want);
        }
    }
}

static void
test_name_rule_length_is_1_to_128(void **state)
{
    (void)state;
    char s[130];
    memset(s, 'a', sizeof(s));
    assert_false(wire_name_ok(s, 0));
    assert_true(wire_name_ok(s, 1));
    assert_true(wire_name_ok(s, 128));
    assert_false(wire_name_ok(s, 129));
    assert_false(wire_name_ok(s, 130));
}

static void
test_sl_str_eq_compares_length_and_bytes(void **state)
{
    (void)state;
    assert_true(sl_str_eq(SL_STR_LIT("abc"), "abc"));
    assert_false(sl_str_eq(SL_STR_LIT("abc"), "ab"));
    assert_false(sl_str_eq(SL_STR_LIT("ab"), "abc"));
    assert_false(sl_str_eq(SL_STR_LIT("abd"), "abc"));
    assert_true(sl_str_eq(SL_STR_LIT(""), ""));
}

/* --- round trips ------------------------------------------------------------------------- */

static const char str_val[] = "hello\0w\xffrld"; /* any bytes, including NUL and 0xff */
static const char name_val[] = "Az09._:-";
static char blob_big[300];
static char name_big[WIRE_NAME_MAX];
static const uint64_t ids_val[] = { 0, 1, 127, 128, 65535, 65536, UINT64_MAX };

/* The object a WT_ANY key carries in the round trips: {"a": [1, -2, "x", nil, {}]}. */
static const unsigned char any_bytes[] = { 0x81, 0xa1, 'a', 0x95, 0x01, 0xfe,
                                           0xa1, 'x',  0xc0, 0x80 };
static msgpack_unpacked any_up;

static struct sl_str blobs_val[3];
static struct sl_str names_val[3];

static void
set_sample(struct wire_msg *m, enum wire_key k, bool alt)
{
    switch (wire_key_type(k)) {
    case WT_STR:
        wire_set_str(m, k, str_val, alt ? 0 : sizeof(str_val) - 1);
        break;
    case WT_NAME:
        wire_set_str(m, k, name_val, alt ? 1 : sizeof(name_val) - 1);
        break;
    case WT_U64:
        wire_set_u64(m, k, alt ? 0 : UINT64_MAX);
        break;
    case WT_NUM:
        wire_set_num(m, k, alt ? 0.25 : 1000.0);
        break;
    case WT_BOOL:
        wire_set_bool(m, k, !alt);
        break;
    case WT_BLOBS:
        wire_set_strs(m, k, blobs_val, alt ? 0 : COUNT(blobs_val));
        break;
    case WT_NAMES:
        wire_set_strs(m, k, names_val, alt ? 0 : COUNT(names_val));
        break;
    case WT_U64S:
        wire_set_u64s(m, k, ids_val, alt ? 0 : COUNT(ids_val));
        break;
    case WT_ANY:
        /* No setter: WT_ANY values are packed by their writers; set the slot directly. */
        m->v[k].any = &any_up.data;
        wire_keyset_add(&m->has, (unsigned)k);
        break;
    }
}

static void
check_sample(const struct wire_msg *m, enum wire_key k, bool alt)
{
    const union wire_val *v = &m->v[k];
    assert_true(WIRE_HAS(m, k));
    switch (wire_key_type(k)) {
    case WT_STR:
        assert_int_equal(v->s.n, alt ? 0 : sizeof(str_val) - 1);
        assert_memory_equal(v->s.p, str_val, v->s.n);
        break;
    case WT_NAME:
        assert_int_equal(v->s.n, alt ? 1 : sizeof(name_val) - 1);
        assert_memory_equal(v->s.p, name_val, v->s.n);
        break;
    case WT_U64:
        assert_true(v->u == (alt ? 0 : UINT64_MAX));
        break;
    case WT_NUM:
        assert_true(v->d == (alt ? 0.25 : 1000.0));
        break;
    case WT_BOOL:
        assert_int_equal(v->b, !alt);
        break;
    case WT_BLOBS:
    case WT_NAMES: {
        const struct sl_str *want = wire_key_type(k) == WT_BLOBS ? blobs_val : names_val;
        assert_int_equal(v->l.n, alt ? 0 : 3);
        for (uint32_t i = 0; i < v->l.n; i++) {
            struct sl_str s = wire_list_str(&v->l, i);
            assert_int_equal(s.n, want[i].n);
            assert_memory_equal(s.p, want[i].p, s.n);
        }
        break;
    }
    case WT_U64S:
        assert_int_equal(v->l.n, alt ? 0 : COUNT(ids_val));
        for (uint32_t i = 0; i < v->l.n; i++) {
            assert_true(wire_list_u64(&v->l, i) == ids_val[i]);
        }
        break;
    case WT_ANY:
        assert_non_null(v->any);
        assert_true(msgpack_object_equal(*v->any, any_up.data));
        break;
    }
}

static int
roundtrip_setup(void **state)
{
    (void)state;
    size_t off = 0;
    memset(blob_big, 0xab, sizeof(blob_big));
    blobs_val[0] = (struct sl_str){ "", 0 };
    blobs_val[1] = (struct sl_str){ "a\0b", 3 };
    blobs_val[2] = (struct sl_str){ blob_big, sizeof(blob_big) };
    memset(name_big, 'N', sizeof(name_big));
    names_val[0] = (struct sl_str){ "a", 1 };
    names_val[1] = (struct sl_str){ "queue.b:c-d_e", 13 };
    names_val[2] = (struct sl_str){ name_big, sizeof(name_big) };
    msgpack_unpacked_init(&any_up);
    return msgpack_unpack_next(&any_up, (const char *)any_bytes, sizeof(any_bytes), &off) ==
                   MSGPACK_UNPACK_SUCCESS
               ? 0
               : -1;
}

static int
roundtrip_teardown(void **state)
{
    (void)state;
    msgpack_unpacked_destroy(&any_up);
    return 0;
}

static void
test_every_key_round_trips_alone(void **state)
{
    (void)state;
    for (int alt = 0; alt <= 1; alt++) {
        for (int k = 0; k < WK_COUNT; k++) {
            struct wire_msg out, in;
            wire_msg_init(&out);
            set_sample(&out, (enum wire_key)k, alt);
            begin();
            assert_int_equal(wire_encode(&out, &pk), 0);
            int rv = decode(&in, sb.data, sb.size);
            if (rv != 0) {
                fail_msg("key \"%s\" (alt %d) did not decode", wire_key_name((enum wire_key)k),
                         alt);
            }
            assert_int_equal(wire_keyset_count(&in.has), 1);
            assert_true(WIRE_HAS(&in, k));
            check_sample(&in, (enum wire_key)k, alt);
            wire_msg_fini(&in);
        }
    }
}

static void
test_all_keys_round_trip_in_one_message(void **state)
{
    (void)state;
    struct wire_msg out, in;
    wire_msg_init(&out);
    for (int k = 0; k < WK_COUNT; k++) {
        set_sample(&out, (enum wire_key)k, k % 2 == 1);
    }
    begin();
    assert_int_equal(wire_encode(&out, &pk), 0);
    assert_int_equal(wire_check(sb.data, sb.size), 0);
    assert_int_equal(decode(&in, sb.data, sb.size), 0);
    assert_int_equal(wire_keyset_count(&in.has), WK_COUNT);
    for (int k = 0; k < WK_COUNT; k++) {
        check_sample(&in, (enum wire_key)k, k % 2 == 1);
    }
    wire_msg_fini(&in);
}

static void
test_blobs_encode_as_bin_and_decode_from_bin_or_str(void **state)
{
    (void)state;
    struct wire_msg out, in;
    wire_msg_init(&out);
    wire_set_strs(&out, WK_PAYLOADS, blobs_val, COUNT(blobs_val));
    begin();
    assert_int_equal(wire_encode(&out, &pk), 0);
    assert_int_equal(decode(&in, sb.data, sb.size), 0);
    for (uint32_t i = 0; i < COUNT(blobs_val); i++) {
        assert_int_equal(in.v[WK_PAYLOADS].l.o[i].type, MSGPACK_OBJECT_BIN);
    }
    wire_msg_fini(&in);

    /* Other clients may send payloads as str: the same bytes come out. */
    begin();
    msgpack_pack_map(&pk, 1);
    pack_str("payloads");
    msgpack_pack_array(&pk, 2);
    pack_str("text");
    msgpack_pack_bin(&pk, 2);
    msgpack_pack_bin_body(&pk, "\x00\x01", 2);
    assert_int_equal(decode(&in, sb.data, sb.size), 0);
    struct sl_str a = wire_list_str(&in.v[WK_PAYLOADS].l, 0);
    struct sl_str b = wire_list_str(&in.v[WK_PAYLOADS].l, 1);
    assert_int_equal(a.n, 4);
    assert_memory_equal(a.p, "text", 4);
    assert_int_equal(b.n, 2);
    assert_memory_equal(b.p, "\x00\x01", 2);
    wire_msg_fini(&in);
}

static void
test_every_op_round_trips_with_its_required_keys(void **state)
{
    (void)state;
    for (int op = 0; op < WOP_COUNT; op++) {
        struct wire_msg out, in;
        char why[200];
        wire_msg_init(&out);
        wire_set_cstr(&out, WK_OP, wire_ops[op].name);
        for (int k = 0; k < WK_COUNT; k++) {
            if (wire_op_requires((enum wire_op)op, (enum wire_key)k)) {
                set_sample(&out, (enum wire_key)k, false);
            }
        }
        begin();
        assert_int_equal(wire_encode(&out, &pk), 0);
        assert_int_equal(decode(&in, sb.data, sb.size), 0);
        assert_memory_equal(&in.has, &out.has, sizeof(in.has));
        assert_int_equal(wire_op_find(in.v[WK_OP].s), op);
        assert_int_equal(wire_check_required(&in, (enum wire_op)op, why, sizeof(why)), 0);
        for (int k = 0; k < WK_COUNT; k++) {
            if (k != WK_OP && WIRE_HAS(&out, k)) {
                check_sample(&in, (enum wire_key)k, false);
            }
        }
        wire_msg_fini(&in);
    }
}

static void
test_check_required_names_each_missing_key(void **state)
{
    (void)state;
    for (int op = 0; op < WOP_COUNT; op++) {
        for (int miss = 0; miss < WK_COUNT; miss++) {
            if (!wire_op_requires((enum wire_op)op, (enum wire_key)miss)) {
                continue;
            }
            struct wire_msg m;
            char why[200] = "";
            wire_msg_init(&m);
            wire_set_cstr(&m, WK_OP, wire_ops[op].name);
            for (int k = 0; k < WK_COUNT; k++) {
                if (k != miss && wire_op_requires((enum wire_op)op, (enum wire_key)k)) {
                    set_sample(&m, (enum wire_key)k, false);
                }
            }
            assert_int_equal(wire_check_required(&m, (enum wire_op)op, why, sizeof(why)),
                             SL_EBADREQ);
            char want[64];
            snprintf(want, sizeof(want), "'%s'", wire_key_name((enum wire_key)miss));
            if (strstr(why, want) == NULL) {
                fail_msg("%s without %s: reason \"%s\" does not name the key", wire_ops[op].name,
                         want, why);
            }
            /* why may be NULL. */
            assert_int_equal(wire_check_required(&m, (enum wire_op)op, NULL, 0), SL_EBADREQ);
        }
    }
}

static void
test_check_required_accepts_extra_keys(void **state)
{
    (void)state;
    struct wire_msg m;
    wire_msg_init(&m);
    wire_set_cstr(&m, WK_OP, "route.set");
    wire_set_cstr(&m, WK_GROUP, "bob");
    wire_set_cstr(&m, WK_QUEUE, "q");
    wire_set_u64(&m, WK_SEQ, 3);
    wire_set_bool(&m, WK_FORCE, true);
    assert_int_equal(wire_check_required(&m, WOP_ROUTE_SET, NULL, 0), 0);
    assert_int_equal(wire_check_required(&m, WOP_PING, NULL, 0), 0);
    assert_int_equal(wire_check_required(&m, WOP_PUSH, NULL, 0), SL_EBADREQ); /* no payloads */
}

static void
test_unknown_keys_are_ignored(void **state)
{
    (void)state;
    struct wire_msg m;
    begin();
    msgpack_pack_map(&pk, 5);
    pack_str("o"); /* a prefix of "op" */
    msgpack_pack_int(&pk, -5);
    pack_str("op");
    pack_str("ping");
    pack_str("opx");
    msgpack_pack_nil(&pk);
    pack_str("future_field");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_double(&pk, 1.5);
    pack_str(""); /* an empty key */
    msgpack_pack_true(&pk);
    assert_int_equal(decode(&m, sb.data, sb.size), 0);
    assert_int_equal(HAS64(m), BIT(WK_OP));
    assert_true(sl_str_eq(m.v[WK_OP].s, "ping"));
    wire_msg_fini(&m);
}

static void
test_uint_accepts_every_msgpack_integer_format_if_non_negative(void **state)
{
    (void)state;
    /* {"seq": X} for X in every integer format; msgpack-c types non-negative signed values as
     * positive integers, so other languages' packers that write int64 are understood. */
    static const struct {
        unsigned char b[9];
        size_t n;
        uint64_t want;
    } ok[] = {
        { { 0x00 }, 1, 0 },
        { { 0x7f }, 1, 127 },
        { { 0xcc, 0xff }, 2, 255 },
        { { 0xcd, 0xff, 0xff }, 3, 65535 },
        { { 0xce, 0xff, 0xff, 0xff, 0xff }, 5, 4294967295u },
        { { 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 9, UINT64_MAX },
        { { 0xd0, 0x05 }, 2, 5 },
        { { 0xd1, 0x01, 0x00 }, 3, 256 },
        { { 0xd2, 0x00, 0x01, 0x00, 0x00 }, 5, 65536 },
        { { 0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 9, INT64_MAX },
    };
    for (size_t i = 0; i < COUNT(ok); i++) {
        struct wire_msg m;
        begin();
        msgpack_pack_map(&pk, 1);
        pack_str("seq");
        put(ok[i].b, ok[i].n);
        if (decode(&m, sb.data, sb.size) != 0) {
            fail_msg("integer format 0x%02x (case %zu) refused", ok[i].b[0], i);
        }
        assert_true(m.v[WK_SEQ].u == ok[i].want);
        wire_msg_fini(&m);
    }
}

static void
test_decode_rejects_negative_int_for_uint(void **state)
{
    (void)state;
    static const struct {
        unsigned char b[9];
        size_t n;
    } neg[] = {
        { { 0xff }, 1 },                                                /* -1 */
        { { 0xe0 }, 1 },                                                /* -32 */
        { { 0xd0, 0x80 }, 2 },                                          /* -128 */
        { { 0xd1, 0xff, 0xff }, 3 },                                    /* -1 as int16 */
        { { 0xd2, 0x80, 0x00, 0x00, 0x00 }, 5 },                        /* INT32_MIN */
        { { 0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 }, 9 } /* INT64_MIN */
    };
    const char *const keys[] = { "seq", "priority", "ttr_ms", "n", "first_id" };
    for (size_t k = 0; k < COUNT(keys); k++) {
        for (size_t i = 0; i < COUNT(neg); i++) {
            begin();
            msgpack_pack_map(&pk, 1);
            pack_str(keys[k]);
            put(neg[i].b, neg[i].n);
            expect_bad_sb();
        }
    }
    /* In an id list too. */
    begin();
    msgpack_pack_map(&pk, 1);
    pack_str("ids");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_int64(&pk, -1);
    expect_bad_sb();
}

/* Values of every msgpack type, to try against every key. */
enum sample {
    S_NIL, S_TRUE, S_FALSE, S_ZERO, S_U64MAX, S_NEG, S_INT8_POS, S_F64, S_F32,
    S_NAME, S_BADNAME, S_EMPTY_STR, S_STR_4096, S_STR_4097, S_BIN, S_EXT,
    S_ARR_EMPTY, S_ARR_BLOBS, S_ARR_UINTS, S_ARR_NEG, S_ARR_NIL, S_ARR_NAMES, S_ARR_NESTED,
    S_MAP_EMPTY, S_MAP,
    S_COUNT
};

static const char *const sample_names[S_COUNT] = {
    "nil", "true", "false", "0", "UINT64_MAX", "-1", "int8 5", "float64", "float32",
    "name", "bad name", "empty str", "4096-byte str", "4097-byte str", "bin", "ext",
    "[]", "[bin, str]", "[1, 2]", "[-1]", "[nil]", "[names]", "[[1]]", "{}", "{a: 1}",
};

static void
pack_sample(enum sample s)
{
    static char big[4097];
    memset(big, 'a', sizeof(big));
    switch (s) {
    case S_NIL: msgpack_pack_nil(&pk); break;
    case S_TRUE: msgpack_pack_true(&pk); break;
    case S_FALSE: msgpack_pack_false(&pk); break;
    case S_ZERO: msgpack_pack_uint64(&pk, 0); break;
    case S_U64MAX: msgpack_pack_uint64(&pk, UINT64_MAX); break;
    case S_NEG: msgpack_pack_int64(&pk, -1); break;
    case S_INT8_POS: put("\xd0\x05", 2); break;
    case S_F64: msgpack_pack_double(&pk, 1.0); break;
    case S_F32: msgpack_pack_float(&pk, 2.0f); break;
    case S_NAME: pack_str("bob"); break;
    case S_BADNAME: pack_str("bob smith"); break;
    case S_EMPTY_STR: pack_str(""); break;
    case S_STR_4096: pack_strn(big, 4096); break;
    case S_STR_4097: pack_strn(big, 4097); break;
    case S_BIN:
        msgpack_pack_bin(&pk, 3);
        msgpack_pack_bin_body(&pk, "bob", 3);
        break;
    case S_EXT:
        msgpack_pack_ext(&pk, 1, 5);
        msgpack_pack_ext_body(&pk, "bob", 1);
        break;
    case S_ARR_EMPTY: msgpack_pack_array(&pk, 0); break;
    case S_ARR_BLOBS:
        msgpack_pack_array(&pk, 2);
        msgpack_pack_bin(&pk, 1);
        msgpack_pack_bin_body(&pk, "x", 1);
        pack_str("y z");
        break;
    case S_ARR_UINTS:
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_uint64(&pk, 2);
        break;
    case S_ARR_NEG:
        msgpack_pack_array(&pk, 1);
        msgpack_pack_int64(&pk, -1);
        break;
    case S_ARR_NIL:
        msgpack_pack_array(&pk, 1);
        msgpack_pack_nil(&pk);
        break;
    case S_ARR_NAMES:
        msgpack_pack_array(&pk, 2);
        pack_str("a");
        pack_str("b");
        break;
    case S_ARR_NESTED:
        msgpack_pack_array(&pk, 1);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_uint64(&pk, 1);
        break;
    case S_MAP_EMPTY: msgpack_pack_map(&pk, 0); break;
    case S_MAP:
        msgpack_pack_map(&pk, 1);
        pack_str("a");
        msgpack_pack_uint64(&pk, 1);
        break;
    case S_COUNT: break;
    }
}

static bool
sample_fits(enum wire_type t, enum sample s)
{
    switch (t) {
    case WT_STR:
        return s == S_NAME || s == S_BADNAME || s == S_EMPTY_STR || s == S_STR_4096;
    case WT_NAME:
        return s == S_NAME;
    case WT_U64:
        return s == S_ZERO || s == S_U64MAX || s == S_INT8_POS;
    case WT_NUM:
        return s == S_ZERO || s == S_U64MAX || s == S_INT8_POS || s == S_F64 || s == S_F32;
    case WT_BOOL:
        return s == S_TRUE || s == S_FALSE;
    case WT_BLOBS:
        return s == S_ARR_EMPTY || s == S_ARR_BLOBS || s == S_ARR_NAMES;
    case WT_U64S:
        return s == S_ARR_EMPTY || s == S_ARR_UINTS;
    case WT_NAMES:
        return s == S_ARR_EMPTY || s == S_ARR_NAMES;
    case WT_ANY:
        return true;
    }
    return false;
}

static void
test_every_key_accepts_only_its_type(void **state)
{
    (void)state;
    for (int k = 0; k < WK_COUNT; k++) {
        for (int s = 0; s < S_COUNT; s++) {
            struct wire_msg m;
            char why[256] = "";
            begin();
            msgpack_pack_map(&pk, 2);
            pack_str("op"); /* a valid first key: the failure must come from the second */
            pack_str("ping");
            pack_str(wire_key_name((enum wire_key)k));
            pack_sample((enum sample)s);
            if (k == WK_OP) {
                /* "op" twice would be a duplicate: test it alone. */
                begin();
                msgpack_pack_map(&pk, 1);
                pack_str("op");
                pack_sample((enum sample)s);
            }
            bool want = sample_fits(wire_key_type((enum wire_key)k), (enum sample)s);
            wire_msg_init(&m);
            int rv = wire_decode(&m, sb.data, sb.size, why, sizeof(why));
            if (rv != (want ? 0 : SL_EBADREQ)) {
                fail_msg("key \"%s\" with %s: wire_decode returned %d, want %d (%s)",
                         wire_key_name((enum wire_key)k), sample_names[s], rv,
                         want ? 0 : SL_EBADREQ, why);
            }
            if (want) {
                assert_true(WIRE_HAS(&m, k));
            } else {
                assert_int_equal(HAS64(m), 0);
                /* The reason names the field. */
                if (strstr(why, wire_key_name((enum wire_key)k)) == NULL) {
                    fail_msg("key \"%s\" with %s: reason \"%s\" does not name the key",
                             wire_key_name((enum wire_key)k), sample_names[s], why);
                }
            }
            wire_msg_fini(&m);
        }
    }
}

static void
test_decode_rejects_bad_names_in_every_name_key(void **state)
{
    (void)state;
    char long_name[130];
    memset(long_name, 'n', sizeof(long_name));
    static const char *const bad_chars[] = {
        "a b", "a/b", "a\nb", "a*", "caf\xc3\xa9", "\x80", "a\"b", "a\\b", "a,b", "a=b", "#",
    };
    for (int k = 0; k < WK_COUNT; k++) {
        if (wire_key_type((enum wire_key)k) != WT_NAME) {
            continue;
        }
        const char *key = wire_key_name((enum wire_key)k);
        struct wire_msg m;

        begin();
        msgpack_pack_map(&pk, 1);
        pack_str(key);
        pack_strn(long_name, 0);
        expect_bad_sb();

        begin();
        msgpack_pack_map(&pk, 1);
        pack_str(key);
        pack_strn(long_name, 129);
        expect_bad_sb();

        for (size_t i = 0; i < COUNT(bad_chars); i++) {
            begin();
            msgpack_pack_map(&pk, 1);
            pack_str(key);
            pack_str(bad_chars[i]);
            expect_bad_sb();
        }
        /* A NUL inside a name. */
        begin();
        msgpack_pack_map(&pk, 1);
        pack_str(key);
        pack_strn("a\0b", 3);
        expect_bad_sb();

        /* 128 bytes and 1 byte are fine. */
        begin();
        msgpack_pack_map(&pk, 1);
        pack_str(key);
        pack_strn(long_name, 128);
        assert_int_equal(decode(&m, sb.data, sb.size), 0);
        assert_int_equal(m.v[k].s.n, 128);
        wire_msg_fini(&m);

        begin();
        msgpack_pack_map(&pk, 1);
        pack_str(key);
        pack_str("-");
        assert_int_equal(decode(&m, sb.data, sb.size), 0);
        wire_msg_fini(&m);
    }
}

static void
test_decode_rejects_string_over_4096_in_every_string_key(void **state)
{
    (void)state;
    static char big[5000];
    memset(big, 's', sizeof(big));
    for (int k = 0; k < WK_COUNT; k++) {
        if (wire_key_type((enum wire_key)k) != WT_STR) {
            continue;
        }
        struct wire_msg m;
        begin();
        msgpack_pack_map(&pk, 1);
        pack_str(wire_key_name((enum wire_key)k));
        pack_strn(big, 4096);
        assert_int_equal(decode(&m, sb.data, sb.size), 0);
        assert_int_equal(m.v[k].s.n, 4096);
        wire_msg_fini(&m);

        begin();
        msgpack_pack_map(&pk, 1);
        pack_str(wire_key_name((enum wire_key)k));
        pack_strn(big, 4097);
        expect_bad_sb();

        begin();
        msgpack_pack_map(&pk, 1);
        pack_str(wire_key_name((enum wire_key)k));
        pack_strn(big, sizeof(big));
        expect_bad_sb();
    }
}

static void
test_decode_accepts_every_str_format(void **state)
{
    (void)state;
    /* {"op": "ping"} with the value as fixstr, str8, str16 and str32. */
    static const unsigned char forms[][14] = {
        { 0x81, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g' },
        { 0x81, 0xa2, 'o', 'p', 0xd9, 0x04, 'p', 'i', 'n', 'g' },
        { 0x81, 0xa2, 'o', 'p', 0xda, 0x00, 0x04, 'p', 'i', 'n', 'g' },
        { 0x81, 0xa2, 'o', 'p', 0xdb, 0x00, 0x00, 0x00, 0x04, 'p', 'i', 'n', 'g' },
    };
    static const size_t lens[] = { 9, 10, 11, 13 };
    for (size_t i = 0; i < COUNT(forms); i++) {
        struct wire_msg m;
        assert_int_equal(decode(&m, forms[i], lens[i]), 0);
        assert_int_equal(wire_op_find(m.v[WK_OP].s), WOP_PING);
        wire_msg_fini(&m);
    }
    /* The key as str8 too. */
    static const unsigned char key8[] = { 0x81, 0xd9, 0x02, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g' };
    struct wire_msg m;
    assert_int_equal(decode(&m, key8, sizeof(key8)), 0);
    assert_true(WIRE_HAS(&m, WK_OP));
    wire_msg_fini(&m);
}

/* --- replies ----------------------------------------------------------------------------- */

static void
test_ok_reply_decodes_with_its_fields(void **state)
{
    (void)state;
    struct wire_msg m;
    begin();
    wire_pack_ok(&pk, 3);
    wire_pack_key(&pk, WK_N);
    msgpack_pack_uint64(&pk, 1000);
    wire_pack_key(&pk, WK_QUEUE);
    pack_str("default");
    wire_pack_key(&pk, WK_DUP);
    msgpack_pack_false(&pk);
    assert_int_equal(decode(&m, sb.data, sb.size), 0);
    assert_int_equal(HAS64(m), BIT(WK_OK) | BIT(WK_N) | BIT(WK_QUEUE) | BIT(WK_DUP));
    assert_true(m.v[WK_OK].b);
    assert_int_equal(m.v[WK_N].u, 1000);
    assert_true(sl_str_eq(m.v[WK_QUEUE].s, "default"));
    assert_false(m.v[WK_DUP].b);
    wire_msg_fini(&m);

    begin();
    wire_pack_ok(&pk, 0);
    assert_int_equal(decode(&m, sb.data, sb.size), 0);
    assert_int_equal(HAS64(m), BIT(WK_OK));
    assert_true(m.v[WK_OK].b);
    wire_msg_fini(&m);
}

static void
test_err_reply_decodes_for_every_code(void **state)
{
    (void)state;
    for (int e = 1; e < SL_ERR_COUNT; e++) {
        struct wire_msg m;
        begin();
        wire_pack_err(&pk, e, "queue 'x' has 3 jobs");
        assert_int_equal(decode(&m, sb.data, sb.size), 0);
        assert_int_equal(HAS64(m), BIT(WK_OK) | BIT(WK_ERR) | BIT(WK_MSG));
        assert_false(m.v[WK_OK].b);
        assert_true(sl_str_eq(m.v[WK_ERR].s, sl_err_code(e)));
        assert_int_equal(sl_err_from_code(m.v[WK_ERR].s.p, m.v[WK_ERR].s.n), e);
        assert_true(sl_str_eq(m.v[WK_MSG].s, "queue 'x' has 3 jobs"));
        wire_msg_fini(&m);

        /* Without a message, the code's description. */
        begin();
        wire_pack_err(&pk, e, NULL);
        assert_int_equal(decode(&m, sb.data, sb.size), 0);
        assert_true(sl_str_eq(m.v[WK_MSG].s, sl_err_str(e)));
        wire_msg_fini(&m);
    }
}

static void
test_reply_packed_into_nng_msg_decodes(void **state)
{
    (void)state;
    nng_msg *msg;
    msgpack_packer mpk;
    struct wire_msg m;

    assert_int_equal(nng_msg_alloc(&msg, 0), 0);
    msgpack_packer_init(&mpk, msg, wire_pack_into_msg);
    wire_pack_ok(&mpk, 1);
    wire_pack_key(&mpk, WK_VERSION);
    wire_pack_cstr(&mpk, "0.1.0");
    assert_int_equal(decode(&m, nng_msg_body(msg), nng_msg_len(msg)), 0);
    assert_true(m.v[WK_OK].b);
    assert_true(sl_str_eq(m.v[WK_VERSION].s, "0.1.0"));
    wire_msg_fini(&m);
    nng_msg_free(msg);
}

/* Packing through a wire_out gives the bytes packing straight into the message gives: small
 * writes gathered, a write that does not fit flushing first, a large one (a payload) going
 * straight through, past the buffer's size several times over. */
static void
test_wire_out_packs_what_the_message_packer_packs(void **state)
{
    (void)state;
    nng_msg *direct, *gathered;
    msgpack_packer dpk, gpk;
    struct wire_out out;
    static char big[3 * WIRE_OUT_BUF];
    memset(big, 'p', sizeof(big));

    assert_int_equal(nng_msg_alloc(&direct, 0), 0);
    assert_int_equal(nng_msg_alloc(&gathered, 0), 0);
    msgpack_packer_init(&dpk, direct, wire_pack_into_msg);
    wire_out_init(&out, gathered, &gpk);
    msgpack_packer *both[] = { &dpk, &gpk };
    for (int p = 0; p < 2; p++) {
        msgpack_packer *k = both[p];
        wire_pack_ok(k, 2);
        wire_pack_key(k, WK_JOBS);
        msgpack_pack_array(k, 300);
        for (unsigned i = 0; i < 300; i++) {
            size_t n = i % 50 == 7 ? sizeof(big) - i : i % 40; /* a few large, most small */
            msgpack_pack_bin(k, n);
            msgpack_pack_bin_body(k, big, n);
        }
        wire_pack_key(k, WK_VERSION);
        wire_pack_str(k, big, 300); /* str16 */
    }
    assert_true(nng_msg_len(gathered) < nng_msg_len(direct)); /* some still gathered */
    assert_int_equal(wire_out_flush(&out), 0);
    assert_int_equal(wire_out_flush(&out), 0); /* nothing left: appends nothing */
    assert_int_equal(nng_msg_len(gathered), nng_msg_len(direct));
    assert_memory_equal(nng_msg_body(gathered), nng_msg_body(direct), nng_msg_len(direct));
    nng_msg_free(direct);
    nng_msg_free(gathered);
}

/* A message decoded, finished and decoded again without wire_msg_init holds nothing of the
 * first: fini zeroes only the present keys' values, which must leave all of them zero. */
static void
test_fini_leaves_no_value_of_the_keys_it_had(void **state)
{
    (void)state;
    struct wire_msg m;
    wire_msg_init(&m);
    wire_set_u64(&m, WK_DELAY_MS, 7);
    wire_set_cstr(&m, WK_GROUP, "g");
    wire_msg_fini(&m);
    assert_false(WIRE_HAS(&m, WK_DELAY_MS));
    assert_int_equal(m.v[WK_DELAY_MS].u, 0);
    assert_null(m.v[WK_GROUP].s.p);

    char why[256];
    begin();
    msgpack_pack_map(&pk, 2);
    pack_str("op");
    pack_str("push");
    pack_str("delay_ms");
    msgpack_pack_uint64(&pk, 9);
    assert_int_equal(wire_decode(&m, sb.data, sb.size, why, sizeof(why)), 0);
    assert_int_equal(m.v[WK_DELAY_MS].u, 9);
    wire_msg_fini(&m);
    begin();
    msgpack_pack_map(&pk, 1);
    pack_str("op");
    pack_str("push");
    assert_int_equal(wire_decode(&m, sb.data, sb.size, why, sizeof(why)), 0);
    assert_false(WIRE_HAS(&m, WK_DELAY_MS));
    assert_int_equal(m.v[WK_DELAY_MS].u, 0);
    /* a bad message after a good one: nothing of the good one stays */
    begin();
    msgpack_pack_map(&pk, 2);
    pack_str("delay_ms");
    msgpack_pack_uint64(&pk, 5);
    pack_str("group");
    msgpack_pack_uint64(&pk, 1);
    assert_int_not_equal(wire_decode(&m, sb.data, sb.size, why, sizeof(why)), 0);
    assert_int_equal(m.v[WK_DELAY_MS].u, 0);
    wire_msg_fini(&m);
}

static int
failing_write(void *data, const char *buf, size_t len)
{
    size_t *budget = data;
    (void)buf;
    if (len > *budget) {
        return -1;
    }
    *budget -= len;
    return 0;
}

static void
test_encode_reports_a_failing_writer_as_no_memory(void **state)
{
    (void)state;
    /* Whatever the write that fails, wire_encode says SL_ENOMEM (and never crashes). */
    struct wire_msg out;
    wire_msg_init(&out);
    for (int k = 0; k < WK_COUNT; k++) {
        set_sample(&out, (enum wire_key)k, false);
    }
    begin();
    assert_int_equal(wire_encode(&out, &pk), 0);
    size_t full = sb.size;
    for (size_t budget0 = 0; budget0 < full; budget0 += 7) {
        size_t budget = budget0;
        msgpack_packer fpk;
        msgpack_packer_init(&fpk, &budget, failing_write);
        assert_int_equal(wire_encode(&out, &fpk), SL_ENOMEM);
    }
    size_t budget = full;
    msgpack_packer fpk;
    msgpack_packer_init(&fpk, &budget, failing_write);
    assert_int_equal(wire_encode(&out, &fpk), 0);
}

/* --- malformed input --------------------------------------------------------------------- */

/* A push with every kind of field: the base of the truncation tests. */
static void
pack_rich_push(void)
{
    begin();
    msgpack_pack_map(&pk, 8);
    pack_str("op");
    pack_str("push");
    pack_str("group");
    pack_str("bob");
    pack_str("payloads");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_bin(&pk, 5);
    msgpack_pack_bin_body(&pk, "hello", 5);
    pack_str("");
    msgpack_pack_bin(&pk, 300);
    msgpack_pack_bin_body(&pk, blob_big, 300);
    pack_str("client");
    pack_str("c-1");
    pack_str("seq");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    pack_str("force");
    msgpack_pack_true(&pk);
    pack_str("ids");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, 70000);
    msgpack_pack_uint64(&pk, 1);
    pack_str("groups");
    msgpack_pack_map(&pk, 1);
    pack_str("a");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_double(&pk, 0.5);
}

static void
test_decode_rejects_empty_input(void **state)
{
    (void)state;
    expect_bad_check("", 0);
    expect_bad_check(NULL, 0);
}

static void
test_decode_rejects_every_truncation_of_a_valid_request(void **state)
{
    (void)state;
    struct wire_msg m;
    pack_rich_push();
    size_t full = sb.size;
    char *copy = malloc(full);
    assert_non_null(copy);
    memcpy(copy, sb.data, full);
    assert_int_equal(decode(&m, copy, full), 0);
    wire_msg_fini(&m);
    for (size_t n = 0; n < full; n++) {
        /* A fresh allocation of exactly n bytes, so ASan sees any read past the end. */
        char *t = malloc(n > 0 ? n : 1);
        assert_non_null(t);
        memcpy(t, copy, n);
        expect_bad_check(t, n);
        free(t);
    }
    free(copy);
}

static void
test_decode_rejects_trailing_bytes(void **state)
{
    (void)state;
    pack_rich_push();
    size_t full = sb.size;
    char *copy = malloc(full * 2);
    assert_non_null(copy);
    memcpy(copy, sb.data, full);
    static const unsigned char tails[] = { 0x00, 0xc0, 0x80, 0xc1, 0xff };
    for (size_t i = 0; i < COUNT(tails); i++) {
        copy[full] = (char)tails[i];
        expect_bad_check(copy, full + 1);
    }
    memcpy(copy + full, sb.data, full); /* two whole requests in one message */
    expect_bad_check(copy, full * 2);
    free(copy);
}

static void
test_decode_rejects_non_map_root(void **state)
{
    (void)state;
    static const struct {
        const char *b;
        size_t n;
    } roots[] = {
        { "\x90", 1 },                                  /* [] */
        { "\x92\xa2op\xa4ping", 9 },                    /* ["op", "ping"] */
        { "\xa4ping", 5 },                              /* "ping" */
        { "\x01", 1 },        { "\xff", 1 },  { "\xc0", 1 }, { "\xc3", 1 },
        { "\xc4\x02op", 4 },                            /* bin */
        { "\xcb\x00\x00\x00\x00\x00\x00\x00\x00", 9 },  /* 0.0 */
        { "\xd4\x01\x00", 3 },                          /* fixext1 */
    };
    for (size_t i = 0; i < COUNT(roots); i++) {
        assert_int_equal(wire_check(roots[i].b, roots[i].n), 0); /* well-formed... */
        expect_bad(roots[i].b, roots[i].n);                      /* ...but not a map */
    }
}

static void
test_decode_rejects_non_string_key(void **state)
{
    (void)state;
    static const struct {
        const char *b;
        size_t n;
    } maps[] = {
        { "\x81\x01\xa1x", 4 },                           /* {1: "x"} */
        { "\x81\xc0\xc0", 3 },                            /* {nil: nil} */
        { "\x81\xc4\x02op\xa4ping", 10 },                 /* {bin "op": "ping"} */
        { "\x81\x90\x01", 3 },                            /* {[]: 1} */
        { "\x81\x80\x01", 3 },                            /* {{}: 1} */
        { "\x82\xa2op\xa4ping\xff\x01", 11 },             /* a valid key, then {-1: 1} */
    };
    for (size_t i = 0; i < COUNT(maps); i++) {
        expect_bad(maps[i].b, maps[i].n);
    }
}

static void
test_decode_rejects_duplicate_key(void **state)
{
    (void)state;
    begin();
    msgpack_pack_map(&pk, 2);
    pack_str("op");
    pack_str("ping");
    pack_str("op");
    pack_str("ping");
    expect_bad_sb();

    begin();
    msgpack_pack_map(&pk, 3);
    pack_str("group");
    pack_str("a");
    pack_str("queue");
    pack_str("b");
    pack_str("group");
    pack_str("c");
    expect_bad_sb();

    /* With a different value, and with the same key in another string format. */
    begin();
    msgpack_pack_map(&pk, 2);
    pack_str("seq");
    msgpack_pack_uint64(&pk, 1);
    put("\xd9\x03seq\x02", 6);
    expect_bad_sb();
}

static void
test_decode_rejects_huge_declared_counts(void **state)
{
    (void)state;
    /* Each declares more elements or bytes than the message holds; msgpack-c would allocate
     * from the count (6.4 GB for the first) before finding that out. */
    static const struct {
        const char *b;
        size_t n;
    } huge[] = {
        { "\xdf\x07\xff\x07\xff", 5 },      /* PLATFORM.md: map32 of 134M entries */
        { "\xdf\xff\xff\xff\xff", 5 },      /* map32 of 4G entries */
        { "\xdd\xff\xff\xff\xff", 5 },      /* array32 of 4G */
        { "\xde\xff\xff", 3 },              /* map16 of 65535 */
        { "\xdc\xff\xff", 3 },              /* array16 of 65535 */
        { "\x8f", 1 },                      /* fixmap of 15, nothing after */
        { "\x9f\xc0", 2 },                  /* fixarray of 15, one present */
        { "\xc6\xff\xff\xff\xff", 5 },      /* bin32 of 4 GB */
        { "\xdb\xff\xff\xff\xff", 5 },      /* str32 of 4 GB */
        { "\xc9\xff\xff\xff\xff\x01", 6 },  /* ext32 of 4 GB */
        { "\x81\xa8payloads\xdd\x7f\xff\xff\xff", 15 },
        { "\x81\xa3ids\xdc\x00\x03\x01\x02", 10 },        /* 3 declared, 2 present */
        { "\x82\xa2op\xa4ping", 9 },                       /* 2 entries declared, 1 present */
        { "\x81\xa8payloads\x91\xc6\x00\x00\x01\x00", 16 } /* a 256-byte bin of 0 bytes */
    };
    for (size_t i = 0; i < COUNT(huge); i++) {
        expect_bad_check(huge[i].b, huge[i].n);
    }
}

static void
test_declared_count_equal_to_the_bytes_left_is_accepted(void **state)
{
    (void)state;
    /* {"jobs": array32 of 5 nils}: the count is exactly the bytes that follow. */
    static const char b[] = "\x81\xa4jobs\xdd\x00\x00\x00\x05\xc0\xc0\xc0\xc0\xc0";
    struct wire_msg m;
    assert_int_equal(wire_check(b, sizeof(b) - 1), 0);
    assert_int_equal(decode(&m, b, sizeof(b) - 1), 0);
    assert_int_equal(m.v[WK_JOBS].any->via.array.size, 5);
    wire_msg_fini(&m);
}

/* {"jobs": [[...[nil]...]]}: the root map and `arrays` arrays nested; the innermost holds a nil
 * (or nothing, when empty_inner). */
static void
pack_nested(int arrays, bool empty_inner)
{
    begin();
    msgpack_pack_map(&pk, 1);
    pack_str("jobs");
    for (int i = 0; i < arrays; i++) {
        msgpack_pack_array(&pk, i == arrays - 1 && empty_inner ? 0 : 1);
    }
    if (!empty_inner) {
        msgpack_pack_nil(&pk);
    }
}

static void
test_nesting_depth_8_is_accepted(void **state)
{
    (void)state;
    struct wire_msg m;
    pack_nested(7, false); /* 8 levels: the map and 7 arrays */
    assert_int_equal(wire_check(sb.data, sb.size), 0);
    assert_int_equal(decode(&m, sb.data, sb.size), 0);
    wire_msg_fini(&m);
    pack_nested(7, true);
    assert_int_equal(decode(&m, sb.data, sb.size), 0);
    wire_msg_fini(&m);
}

static void
test_nesting_depth_9_is_rejected(void **state)
{
    (void)state;
    pack_nested(8, false); /* 9 levels */
    expect_bad_check(sb.data, sb.size);
    pack_nested(40, false);
    expect_bad_check(sb.data, sb.size);
}

static void
test_nesting_depth_9_is_rejected_when_the_innermost_is_empty(void **state)
{
    (void)state;
    /* PROTOCOL.md: "Nesting deeper than 8 levels is bad_request": an empty array is a level. */
    pack_nested(8, true);
    expect_bad_check(sb.data, sb.size);
}

static void
test_decode_rejects_0xc1_everywhere(void **state)
{
    (void)state;
    static unsigned char c1[600];
    memset(c1, 0xc1, sizeof(c1));
    const size_t lens[] = { 1, 2, 5, 100, sizeof(c1) };
    for (size_t i = 0; i < COUNT(lens); i++) {
        expect_bad_check(c1, lens[i]);
    }
    /* As a value, as a key, as an array element. */
    expect_bad_check("\x81\xa2op\xc1", 5);
    expect_bad_check("\x81\xc1\xc0", 3);
    expect_bad_check("\x81\xa3ids\x92\x01\xc1", 8);
}

static void
test_decode_failure_leaves_message_empty_and_says_why(void **state)
{
    (void)state;
    struct wire_msg m;
    char why[256] = "";
    /* Good keys first, then a bad one: nothing of the good ones may remain. */
    begin();
    msgpack_pack_map(&pk, 3);
    pack_str("op");
    pack_str("push");
    pack_str("group");
    pack_str("bob");
    pack_str("seq");
    msgpack_pack_int64(&pk, -1);
    wire_msg_init(&m);
    assert_int_equal(wire_decode(&m, sb.data, sb.size, why, sizeof(why)), SL_EBADREQ);
    assert_int_equal(HAS64(m), 0);
    assert_non_null(strstr(why, "seq"));
    wire_msg_fini(&m);

    /* A tiny reason buffer is NUL-terminated; none at all is fine. */
    char one[1] = { 'x' };
    wire_msg_init(&m);
    assert_int_equal(wire_decode(&m, sb.data, sb.size, one, sizeof(one)), SL_EBADREQ);
    assert_int_equal(one[0], '\0');
    wire_msg_fini(&m);
    wire_msg_init(&m);
    assert_int_equal(wire_decode(&m, sb.data, sb.size, NULL, 0), SL_EBADREQ);
    wire_msg_fini(&m);
}

static void
test_msg_can_be_reused_after_fini(void **state)
{
    (void)state;
    struct wire_msg m;
    wire_msg_init(&m);
    wire_msg_fini(&m); /* never decoded: nothing to free */
    wire_msg_fini(&m); /* twice is fine */
    for (int i = 0; i < 3; i++) {
        pack_rich_push();
        assert_int_equal(wire_decode(&m, sb.data, sb.size, NULL, 0), 0);
        assert_true(WIRE_HAS(&m, WK_PAYLOADS));
        wire_msg_fini(&m);
        expect_bad("\xc1", 1);
    }
}

/* --- wire_check directly ----------------------------------------------------------------- */

static const struct {
    const char *b;
    size_t n;
} well_formed[] = {
    { "\x00", 1 }, { "\x7f", 1 }, { "\xe0", 1 }, { "\xff", 1 },
    { "\xc0", 1 }, { "\xc2", 1 }, { "\xc3", 1 },
    { "\xcc\x01", 2 }, { "\xcd\x00\x01", 3 }, { "\xce\x00\x00\x00\x01", 5 },
    { "\xcf\x00\x00\x00\x00\x00\x00\x00\x01", 9 },
    { "\xd0\x01", 2 }, { "\xd1\x00\x01", 3 }, { "\xd2\x00\x00\x00\x01", 5 },
    { "\xd3\x00\x00\x00\x00\x00\x00\x00\x01", 9 },
    { "\xca\x00\x00\x00\x00", 5 }, { "\xcb\x00\x00\x00\x00\x00\x00\x00\x00", 9 },
    { "\xa0", 1 }, { "\xa3" "abc", 4 },
    { "\xbf" "0123456789012345678901234567890", 32 },
    { "\xd9\x03" "abc", 5 }, { "\xda\x00\x03" "abc", 6 }, { "\xdb\x00\x00\x00\x03" "abc", 8 },
    { "\xc4\x00", 2 }, { "\xc4\x02xy", 4 }, { "\xc5\x00\x02xy", 5 },
    { "\xc6\x00\x00\x00\x02xy", 7 },
    { "\xd4\x01x", 3 }, { "\xd5\x01xy", 4 }, { "\xd6\x01wxyz", 6 },
    { "\xd7\x01" "01234567", 10 }, { "\xd8\x01" "0123456789abcdef", 18 },
    { "\xc7\x00\x01", 3 }, { "\xc7\x02\x01xy", 5 }, { "\xc8\x00\x02\x01xy", 6 },
    { "\xc9\x00\x00\x00\x02\x01xy", 8 },
    { "\x90", 1 }, { "\x91\xc0", 2 }, { "\x9f\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0", 16 },
    { "\xdc\x00\x00", 3 }, { "\xdc\x00\x02\xc0\xc0", 5 }, { "\xdd\x00\x00\x00\x01\xc0", 6 },
    { "\x80", 1 }, { "\x81\xc0\xc0", 3 }, { "\xde\x00\x01\xc0\xc0", 5 },
    { "\xdf\x00\x00\x00\x01\xc0\xc0", 7 },
    { "\x82\xa1" "a\x92\x01\x02\xa1" "b\x81\xa1" "c\xc3", 12 },
};

static void
test_check_accepts_every_msgpack_format_as_msgpack_c_does(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(well_formed); i++) {
        const char *b = well_formed[i].b;
        size_t n = well_formed[i].n;
        if (wire_check(b, n) != 0) {
            fail_msg("wire_check refused well-formed case %zu (0x%02x, %zu bytes)", i,
                     (unsigned char)b[0], n);
        }
        /* msgpack-c agrees that it is exactly one value. */
        msgpack_unpacked up;
        size_t off = 0;
        msgpack_unpacked_init(&up);
        assert_int_equal(msgpack_unpack_next(&up, b, n, &off), MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(off, n);
        msgpack_unpacked_destroy(&up);
    }
}

static void
test_check_rejects_every_prefix_and_extension_of_every_format(void **state)
{
    (void)state;
    char buf[64];
    for (size_t i = 0; i < COUNT(well_formed); i++) {
        size_t n = well_formed[i].n;
        memcpy(buf, well_formed[i].b, n);
        for (size_t cut = 0; cut < n; cut++) {
            if (wire_check(buf, cut) != SL_EBADREQ) {
                fail_msg("wire_check accepted case %zu cut to %zu of %zu bytes", i, cut, n);
            }
        }
        buf[n] = '\0';
        if (wire_check(buf, n + 1) != SL_EBADREQ) {
            fail_msg("wire_check accepted case %zu with a trailing byte", i);
        }
    }
}

/* splitmix64, for reproducible random inputs. */
static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static bool
is_scalar_row(size_t i)
{
    unsigned char b = (unsigned char)well_formed[i].b[0];
    return !(b >= 0x80 && b <= 0x9f) && !(b >= 0xdc && b <= 0xdf);
}

/* Writes a random well-formed value (in any of the formats, not only the shortest) into
 * buf[*n..] and returns its nesting depth (containers, empty ones included). */
static int
gen_value(unsigned char *buf, size_t *n, uint64_t *s, int depth)
{
    uint64_t r = rnd(s);
    int kind = (int)(r % 10);
    if (depth >= 11 || kind < 5 || *n > 500000) {
        size_t i = (size_t)(r >> 8) % COUNT(well_formed);
        while (!is_scalar_row(i)) {
            i = (i + 1) % COUNT(well_formed);
        }
        memcpy(buf + *n, well_formed[i].b, well_formed[i].n);
        *n += well_formed[i].n;
        return 0;
    }
    bool map = kind >= 8;
    uint32_t count = (uint32_t)((r >> 8) % 4);
    switch ((r >> 16) % 3) {
    case 0:
        buf[(*n)++] = (unsigned char)((map ? 0x80 : 0x90) | count);
        break;
    case 1:
        buf[(*n)++] = map ? 0xde : 0xdc;
        buf[(*n)++] = 0;
        buf[(*n)++] = (unsigned char)count;
        break;
    default:
        buf[(*n)++] = map ? 0xdf : 0xdd;
        buf[(*n)++] = 0;
        buf[(*n)++] = 0;
        buf[(*n)++] = 0;
        buf[(*n)++] = (unsigned char)count;
        break;
    }
    int deepest = 0;
    for (uint32_t i = 0; i < count * (map ? 2u : 1u); i++) {
        int d = gen_value(buf, n, s, depth + 1);
        deepest = d > deepest ? d : deepest;
    }
    return deepest + 1;
}

static void
test_check_accepts_random_values_up_to_depth_8_only(void **state)
{
    (void)state;
    static unsigned char buf[1 << 20];
    uint64_t s = 42;
    int seen_deep = 0, seen_ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        int depth = gen_value(buf, &n, &s, 0);
        assert_true(n <= sizeof(buf));
        int want = depth <= WIRE_DEPTH_MAX ? 0 : SL_EBADREQ;
        int got = wire_check(buf, n);
        if (got != want) {
            fail_msg("iteration %d: a value of depth %d, %zu bytes: wire_check %d, want %d",
                     iter, depth, n, got, want);
        }
        seen_deep += want != 0;
        seen_ok += want == 0;
        if (n > 1) {
            size_t cut = (size_t)(rnd(&s) % n);
            assert_int_equal(wire_check(buf, cut), SL_EBADREQ);
        }
    }
    /* The generator reaches both sides of the limit. */
    assert_true(seen_deep > 100);
    assert_true(seen_ok > 100);
}

static void
test_random_and_mutated_input_never_crashes(void **state)
{
    (void)state;
    uint64_t s = 7;
    unsigned char *buf = malloc(600);
    assert_non_null(buf);
    pack_rich_push();
    size_t base_n = sb.size;
    unsigned char *base = malloc(base_n);
    assert_non_null(base);
    memcpy(base, sb.data, base_n);
    int decoded = 0;

    for (int iter = 0; iter < 100000; iter++) {
        size_t n;
        uint64_t r = rnd(&s);
        if (r % 2 == 0) {
            /* Random bytes, often behind a map header. */
            n = (size_t)(rnd(&s) % 64);
            for (size_t i = 0; i < n; i++) {
                buf[i] = (unsigned char)rnd(&s);
            }
            if (n > 0 && (r >> 8) % 2) {
                buf[0] = (unsigned char)(0x80 | ((r >> 16) % 16));
            }
        } else {
            /* The rich push with a few bytes changed, maybe cut short. */
            memcpy(buf, base, base_n);
            n = base_n;
            for (int f = 0; f < 1 + (int)((r >> 8) % 3); f++) {
                buf[rnd(&s) % n] = (unsigned char)rnd(&s);
            }
            if ((r >> 16) % 4 == 0) {
                n = (size_t)(rnd(&s) % n);
            }
        }
        /* Copy to an exact-size block so ASan catches any read past the end. */
        unsigned char *exact = malloc(n > 0 ? n : 1);
        assert_non_null(exact);
        memcpy(exact, buf, n);
        struct wire_msg m;
        wire_msg_init(&m);
        int rv = wire_decode(&m, exact, n, NULL, 0);
        if (rv == 0) {
            decoded++;
            assert_int_equal(wire_check(exact, n), 0);
            assert_int_equal(m.up.data.type, MSGPACK_OBJECT_MAP);
        } else {
            assert_int_equal(rv, SL_EBADREQ);
            assert_int_equal(HAS64(m), 0);
        }
        wire_msg_fini(&m);
        free(exact);
    }
    assert_true(decoded > 0); /* some mutations stay valid: the loop exercised success too */
    free(base);
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_table_matches_protocol_md),
        cmocka_unit_test(test_key_names_are_unique_and_nonempty),
        cmocka_unit_test(test_op_table_matches_protocol_md),
        cmocka_unit_test(test_every_op_is_found_by_its_unique_name),
        cmocka_unit_test(test_op_find_rejects_unknown_and_near_names),
        cmocka_unit_test(test_name_rule_accepts_exactly_its_characters),
        cmocka_unit_test(test_name_rule_length_is_1_to_128),
        cmocka_unit_test(test_sl_str_eq_compares_length_and_bytes),
        cmocka_unit_test(test_every_key_round_trips_alone),
        cmocka_unit_test(test_all_keys_round_trip_in_one_message),
        cmocka_unit_test(test_blobs_encode_as_bin_and_decode_from_bin_or_str),
        cmocka_unit_test(test_every_op_round_trips_with_its_required_keys),
        cmocka_unit_test(test_check_required_names_each_missing_key),
        cmocka_unit_test(test_check_required_accepts_extra_keys),
        cmocka_unit_test(test_unknown_keys_are_ignored),
        cmocka_unit_test(test_uint_accepts_every_msgpack_integer_format_if_non_negative),
        cmocka_unit_test(test_decode_rejects_negative_int_for_uint),
        cmocka_unit_test(test_every_key_accepts_only_its_type),
        cmocka_unit_test(test_decode_rejects_bad_names_in_every_name_key),
        cmocka_unit_test(test_decode_rejects_string_over_4096_in_every_string_key),
        cmocka_unit_test(test_decode_accepts_every_str_format),
        cmocka_unit_test(test_ok_reply_decodes_with_its_fields),
        cmocka_unit_test(test_err_reply_decodes_for_every_code),
        cmocka_unit_test(test_reply_packed_into_nng_msg_decodes),
        cmocka_unit_test(test_wire_out_packs_what_the_message_packer_packs),
        cmocka_unit_test(test_fini_leaves_no_value_of_the_keys_it_had),
        cmocka_unit_test(test_encode_reports_a_failing_writer_as_no_memory),
        cmocka_unit_test(test_decode_rejects_empty_input),
        cmocka_unit_test(test_decode_rejects_every_truncation_of_a_valid_request),
        cmocka_unit_test(test_decode_rejects_trailing_bytes),
        cmocka_unit_test(test_decode_rejects_non_map_root),
        cmocka_unit_test(test_decode_rejects_non_string_key),
        cmocka_unit_test(test_decode_rejects_duplicate_key),
        cmocka_unit_test(test_decode_rejects_huge_declared_counts),
        cmocka_unit_test(test_declared_count_equal_to_the_bytes_left_is_accepted),
        cmocka_unit_test(test_nesting_depth_8_is_accepted),
        cmocka_unit_test(test_nesting_depth_9_is_rejected),
        cmocka_unit_test(test_nesting_depth_9_is_rejected_when_the_innermost_is_empty),
        cmocka_unit_test(test_decode_rejects_0xc1_everywhere),
        cmocka_unit_test(test_decode_failure_leaves_message_empty_and_says_why),
        cmocka_unit_test(test_msg_can_be_reused_after_fini),
        cmocka_unit_test(test_check_accepts_every_msgpack_format_as_msgpack_c_does),
        cmocka_unit_test(test_check_rejects_every_prefix_and_extension_of_every_format),
        cmocka_unit_test(test_check_accepts_random_values_up_to_depth_8_only),
        cmocka_unit_test(test_random_and_mutated_input_never_crashes),
    };
    int rv = group_setup(NULL);
    rv = rv == 0 ? roundtrip_setup(NULL) : rv;
    if (rv != 0) {
        fprintf(stderr, "test_wire: setup failed\n");
        return 1;
    }
    rv = cmocka_run_group_tests(tests, NULL, NULL);
    roundtrip_teardown(NULL);
    group_teardown(NULL);
    return rv;
}
