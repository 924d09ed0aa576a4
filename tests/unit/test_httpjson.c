/* broker/httpjson: the HTTP API's endpoint table, JSON -> wire request, wire reply -> JSON and
 * error statuses, with no network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "httpjson.h"
#include "wire.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>


/* Builds the request of METHOD PATH with body into m (decoded); returns hj_build's result. */
static int
build(const char *method, const char *path, const char *body, const char *idem,
      struct wire_msg *m, nng_msg **msg, char *why)
{
    struct sl_str arg = { NULL, 0 };
    bool known;
    const struct hj_endpoint *e = hj_match(method, path, &arg, &known);
    assert_non_null(e);
    assert_int_equal(nng_msg_alloc(msg, 0), 0);
    int rv = hj_build(e, body, strlen(body), arg, "tok", 3, idem, *msg, why, HJ_WHY_MAX);
    if (rv == 0) {
        char w2[256];
        wire_msg_init(m);
        assert_int_equal(wire_decode(m, nng_msg_body(*msg), nng_msg_len(*msg), w2, sizeof(w2)),
                         0);
    }
    return rv;
}

static void
test_paths_match_their_endpoints(void **state)
{
    (void)state;
    struct sl_str arg;
    bool known;
    const struct hj_endpoint *e = hj_match("POST", "/v1/groups/alice/jobs", &arg, &known);
    assert_non_null(e);
    assert_int_equal(e->op, WOP_PUSH);
    assert_int_equal(arg.n, 5);
    assert_memory_equal(arg.p, "alice", 5);
    e = hj_match("POST", "/v1/queues/q1/pause", &arg, &known);
    assert_non_null(e);
    assert_int_equal(e->op, WOP_QUEUE_PAUSE);
    assert_int_equal(hj_match("DELETE", "/v1/queues/q1", &arg, &known)->op, WOP_QUEUE_DESTROY);
    assert_int_equal(hj_match("GET", "/v1/stats", &arg, &known)->op, WOP_STATS);
    /* A known path with another method: 405, not 404. */
    assert_null(hj_match("DELETE", "/v1/stats", &arg, &known));
    assert_true(known);
    assert_null(hj_match("GET", "/v1/groups//jobs", &arg, &known));
    assert_false(known);
    assert_null(hj_match("GET", "/v1/stats/x", &arg, &known));
    assert_false(known);
    char allow[64];
    hj_allow("/v1/queues/q1", allow, sizeof(allow));
    assert_string_equal(allow, "GET, PATCH, DELETE");
}

static void
test_statuses(void **state)
{
    (void)state;
    assert_int_equal(hj_status(SL_EBADREQ), 400);
    assert_int_equal(hj_status(SL_EUNAUTH), 401);
    assert_int_equal(hj_status(SL_ENOTFOUND), 404);
    assert_int_equal(hj_status(SL_EEXISTS), 409);
    assert_int_equal(hj_status(SL_ECONFLICT), 409);
    assert_int_equal(hj_status(SL_ETOOLARGE), 413);
    assert_int_equal(hj_status(SL_EQUEUEFULL), 429);
    assert_int_equal(hj_status(SL_EIO), 503);
    assert_int_equal(hj_status(SL_EUNREACHABLE), 503);
    for (int err = 0; err < SL_ERR_COUNT; err++) {
        assert_true(hj_status(err) >= 400 || err == 0);
    }
}

static void
test_push_body_maps_onto_the_wire(void **state)
{
    (void)state;
    struct wire_msg m;
    nng_msg *msg;
    char why[HJ_WHY_MAX];
    assert_int_equal(build("POST", "/v1/groups/alice/jobs",
                           "{\"payloads\":[\"a\",\"bc\"],\"queue\":\"q\",\"ttr_ms\":5}", "web:9",
                           &m, &msg, why),
                     0);
    assert_true(sl_str_eq(m.v[WK_OP].s, "push"));
    assert_true(sl_str_eq(m.v[WK_GROUP].s, "alice"));
    assert_true(sl_str_eq(m.v[WK_QUEUE].s, "q"));
    assert_true(sl_str_eq(m.v[WK_TOKEN].s, "tok"));
    assert_true(sl_str_eq(m.v[WK_CLIENT].s, "web"));
    assert_int_equal(m.v[WK_SEQ].u, 9);
    assert_int_equal(m.v[WK_TTR_MS].u, 5);
    assert_int_equal(m.v[WK_PAYLOADS].l.n, 2);
    struct sl_str p1 = wire_list_str(&m.v[WK_PAYLOADS].l, 1);
    assert_int_equal(p1.n, 2);
    assert_memory_equal(p1.p, "bc", 2);
    wire_msg_fini(&m);
    nng_msg_free(msg);

    assert_int_equal(build("POST", "/v1/groups/a:b/jobs", "{\"payload_b64\":\"/wA=\"}", NULL,
                           &m, &msg, why),
                     0);
    struct sl_str p0 = wire_list_str(&m.v[WK_PAYLOADS].l, 0);
    assert_int_equal(p0.n, 2);
    assert_memory_equal(p0.p, "\xff\x00", 2);
    wire_msg_fini(&m);
    nng_msg_free(msg);
}

/* Each refused body: SL_EBADREQ with why naming what is wrong. */
static void
test_bad_bodies_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *path, *body, *idem, *says;
    } bad[] = {
        { "/v1/groups/g/jobs", "{\"payloads\":[\"a\"", NULL, "malformed JSON" },
        { "/v1/groups/g/jobs", "[1]", NULL, "JSON object" },
        { "/v1/groups/g/jobs", "{\"payloads\":[\"a\"],\"x\":1}", NULL, "unknown field 'x'" },
        { "/v1/groups/g/jobs", "{\"payloads\":[\"a\"],\"ttr_ms\":-1}", NULL, "'ttr_ms'" },
        { "/v1/groups/g/jobs", "{\"payloads\":[\"a\"],\"ttr_ms\":1.5}", NULL, "'ttr_ms'" },
        { "/v1/groups/g/jobs", "{\"payloads\":[\"a\"],\"queue\":\"a b\"}", NULL, "'queue'" },
        { "/v1/groups/g/jobs", "{\"payloads\":[]}", NULL, "'payloads'" },
        { "/v1/groups/g/jobs", "{\"payloads\":[1]}", NULL, "'payloads'" },
        { "/v1/groups/g/jobs", "{}", NULL, "missing field 'payloads'" },
        { "/v1/groups/g/jobs", "{\"payload\":\"a\",\"payloads\":[\"b\"]}", NULL, "exclude" },
        { "/v1/groups/g/jobs", "{\"payload_b64\":\"abc\"}", NULL, "not base64" },
        { "/v1/groups/g/jobs", "{\"payload_b64\":\"ab=c\"}", NULL, "not base64" },
        { "/v1/groups/g/jobs", "{\"payload\":\"a\",\"payload\":\"b\"}", NULL, "duplicate" },
        { "/v1/groups/g/jobs", "{\"payload\":\"a\"}", "nocolon", "Idempotency-Key" },
        { "/v1/groups/g/jobs", "{\"payload\":\"a\"}", "c:12x", "Idempotency-Key" },
        { "/v1/groups/g/jobs", "{\"payload\":\"a\",\"seq\":1}", "c:1", "exclude" },
        { "/v1/groups/a%b/jobs", "{\"payload\":\"a\"}", NULL, "'group'" },
        { "/v1/reserve", "{\"worker\":\"w\",\"max\":\"2\"}", NULL, "'max'" },
        { "/v1/reserve", "{\"worker\":\"w\",\"from\":[\"ok\",\"not ok\"]}", NULL, "'from' item 1" },
        { "/v1/ack", "{\"ids\":[1,\"2\"]}", NULL, "'ids' item 1" },
        { "/v1/ack", "{\"ids\":[1],\"token\":\"t\"}", NULL, "unknown field 'token'" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct wire_msg m;
        nng_msg *msg;
        char why[HJ_WHY_MAX] = "";
        int rv = build("POST", bad[i].path, bad[i].body, bad[i].idem, &m, &msg, why);
        if (rv != SL_EBADREQ || strstr(why, bad[i].says) == NULL) {
            fail_msg("%s %s: rv %d why \"%s\", wanted \"%s\"", bad[i].path, bad[i].body, rv, why,
                     bad[i].says);
        }
        nng_msg_free(msg);
    }
}

/* Packs {"ok": true, "n": 2, "first_id": 7, "jobs": [{"payload": bin}]} style replies. */
static char *
reply_of(const struct hj_endpoint *e, void (*pack)(msgpack_packer *), uint16_t *status)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t len;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack(&pk);
    char *doc = hj_reply(e, sb.data, sb.size, status, &len);
    msgpack_sbuffer_destroy(&sb);
    return doc;
}

static void
pack_push(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    msgpack_pack_str_with_body(pk, "ok", 2);
    msgpack_pack_true(pk);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint64(pk, 2);
    msgpack_pack_str_with_body(pk, "first_id", 8);
    msgpack_pack_uint64(pk, 7);
}

static void
pack_jobs(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "ok", 2);
    msgpack_pack_true(pk);
    msgpack_pack_str_with_body(pk, "jobs", 4);
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "payload", 7);
    msgpack_pack_bin_with_body(pk, "h\xc3\xa9", 3);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "payload", 7);
    msgpack_pack_bin_with_body(pk, "\xff\x00\x01", 3);
}

static void
pack_bins(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "list", 4);
    msgpack_pack_array(pk, 2);
    msgpack_pack_bin_with_body(pk, "ok", 2);
    msgpack_pack_bin_with_body(pk, "\xff", 1);
}

static void
pack_err(msgpack_packer *pk)
{
    wire_pack_err(pk, SL_EQUEUEFULL, "full up");
}

static void
test_replies_become_json(void **state)
{
    (void)state;
    struct sl_str arg;
    bool known;
    uint16_t status;
    char *doc = reply_of(hj_match("POST", "/v1/groups/g/jobs", &arg, &known), pack_push, &status);
    assert_int_equal(status, 200);
    assert_string_equal(doc, "{\"first_id\":7,\"count\":2}");
    free(doc);
    doc = reply_of(NULL, pack_jobs, &status);
    assert_string_equal(doc, "{\"jobs\":[{\"payload\":\"h\xc3\xa9\"},{\"payload_b64\":\"/wAB\"}]}");
    free(doc);
    doc = reply_of(NULL, pack_bins, &status);
    assert_string_equal(doc, "{\"list\":[\"ok\",{\"_b64\":\"/w==\"}]}");
    free(doc);
    doc = reply_of(NULL, pack_err, &status);
    assert_int_equal(status, 429);
    assert_string_equal(doc, "{\"err\":\"queue_full\",\"msg\":\"full up\"}");
    free(doc);
    size_t len;
    doc = hj_reply(NULL, "\x81", 1, &status, &len);
    assert_null(doc);
    assert_int_equal(status, 500);
}

static void
test_query_strings_become_bodies(void **state)
{
    (void)state;
    struct sl_str arg;
    bool known;
    const struct hj_endpoint *e = hj_match("GET", "/v1/dead", &arg, &known);
    char why[HJ_WHY_MAX] = "";
    size_t len;
    char *body = hj_query_body(e, "queue=a%3Ab&max=10&group=x+y", &len, why, sizeof(why));
    assert_non_null(body);
    assert_string_equal(body, "{\"queue\":\"a:b\",\"max\":10,\"group\":\"x y\"}");
    free(body);
    /* max=ten stays a string: hj_build then names the field. */
    body = hj_query_body(e, "max=ten", &len, why, sizeof(why));
    assert_string_equal(body, "{\"max\":\"ten\"}");
    free(body);
    assert_null(hj_query_body(e, "colour=red", &len, why, sizeof(why)));
    assert_non_null(strstr(why, "'colour'"));
    assert_null(hj_query_body(e, "queue", &len, why, sizeof(why)));
    assert_null(hj_query_body(e, "queue=%4", &len, why, sizeof(why)));
    assert_null(hj_query_body(e, "queue=%00", &len, why, sizeof(why)));
}

/* The dashboard's endpoints: a page of groups, the history, stats without its groups. */
static void
test_dashboard_queries_map_onto_the_wire(void **state)
{
    (void)state;
    struct sl_str arg = { NULL, 0 };
    bool known;
    char why[HJ_WHY_MAX] = "";
    size_t len;
    const struct hj_endpoint *e = hj_match("GET", "/v1/groups", &arg, &known);
    assert_non_null(e);
    assert_int_equal(e->op, WOP_GROUP_LIST);
    char *body = hj_query_body(e, "sort=count&order=desc&offset=50&max=25&filter=b%C3%B6b", &len,
                               why, sizeof(why));
    assert_non_null(body);
    assert_string_equal(body, "{\"sort\":\"count\",\"order\":\"desc\",\"offset\":50,"
                              "\"max\":25,\"filter\":\"b\u00f6b\"}");
    nng_msg *m;
    assert_int_equal(nng_msg_alloc(&m, 0), 0);
    assert_int_equal(hj_build(e, body, len, arg, NULL, 0, NULL, m, why, sizeof(why)), 0);
    free(body);
    nng_msg_clear(m);
    /* A parameter that is not a number is refused naming it; so is one the op does not take. */
    body = hj_query_body(e, "offset=-1", &len, why, sizeof(why));
    assert_int_equal(hj_build(e, body, len, arg, NULL, 0, NULL, m, why, sizeof(why)), SL_EBADREQ);
    assert_non_null(strstr(why, "'offset'"));
    free(body);
    assert_null(hj_query_body(e, "state=ready", &len, why, sizeof(why)));
    assert_non_null(strstr(why, "'state'"));
    nng_msg_free(m);
    e = hj_match("GET", "/v1/history", &arg, &known);
    assert_non_null(e);
    assert_int_equal(e->op, WOP_HISTORY);
    assert_null(hj_query_body(e, "max=1", &len, why, sizeof(why)));
    e = hj_match("GET", "/v1/stats", &arg, &known);
    body = hj_query_body(e, "max=0", &len, why, sizeof(why));
    assert_string_equal(body, "{\"max\":0}");
    free(body);
    assert_null(hj_match("POST", "/v1/groups", &arg, &known));
    assert_true(known);
}

static void
test_base64(void **state)
{
    (void)state;
    unsigned char out[8];
    assert_int_equal(hj_b64_decode("", 0, out), 0);
    assert_int_equal(hj_b64_decode("YQ==", 4, out), 1);
    assert_int_equal(out[0], 'a');
    assert_int_equal(hj_b64_decode("YWJj", 4, out), 3);
    assert_memory_equal(out, "abc", 3);
    assert_int_equal(hj_b64_decode("YQ=", 3, out), -1);
    assert_int_equal(hj_b64_decode("Y===", 4, out), -1);
    assert_int_equal(hj_b64_decode("YQ==YQ==", 8, out), -1);
    assert_int_equal(hj_b64_decode("Y-==", 4, NULL), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_match_their_endpoints),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_push_body_maps_onto_the_wire),
        cmocka_unit_test(test_bad_bodies_name_the_field),
        cmocka_unit_test(test_replies_become_json),
        cmocka_unit_test(test_query_strings_become_bodies),
        cmocka_unit_test(test_dashboard_queries_map_onto_the_wire),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
