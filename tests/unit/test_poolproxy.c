/* broker/poolproxy: GET /v1/pool's document from worker-pool's pool.status reply, every field
 * checked, and the pool's absence as a state; no pool runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "poolproxy.h"
#include "wire.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL "ipc:///tmp/x/pool.ipc"

static void
pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* One workers entry: slot, id, pid, state, restarts. */
static void
pack_worker(msgpack_packer *pk, unsigned slot, unsigned pid, const char *state)
{
    char id[32];
    snprintf(id, sizeof(id), "h:1:%u", slot);
    msgpack_pack_map(pk, 5);
    pack_str(pk, "slot");
    msgpack_pack_uint32(pk, slot);
    pack_str(pk, "id");
    pack_str(pk, id);
    pack_str(pk, "pid");
    msgpack_pack_uint32(pk, pid);
    pack_str(pk, "state");
    pack_str(pk, state);
    pack_str(pk, "restarts");
    msgpack_pack_uint32(pk, slot);
}

/* The reply's kind. */
enum shape { GOOD, REFUSED, NO_N, WORKERS_NOT_ARRAY, WORKER_NOT_MAP, NOT_MAP };

/* Decodes a reply of shape s into m and returns poolproxy_doc's document, parsed. */
static json_t *
doc_of(enum shape s, struct wire_msg *m)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char why[256];
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    switch (s) {
    case GOOD:
    case NO_N:
        msgpack_pack_map(&pk, s == GOOD ? 3 : 2);
        pack_str(&pk, "ok");
        msgpack_pack_true(&pk);
        pack_str(&pk, "workers");
        msgpack_pack_array(&pk, 2);
        pack_worker(&pk, 0, 100, "idle");
        pack_worker(&pk, 1, 0, "backoff");
        if (s == GOOD) {
            pack_str(&pk, "n");
            msgpack_pack_uint32(&pk, 3);
        }
        break;
    case REFUSED:
        msgpack_pack_map(&pk, 3);
        pack_str(&pk, "ok");
        msgpack_pack_false(&pk);
        pack_str(&pk, "err");
        pack_str(&pk, "unauthorized");
        pack_str(&pk, "msg");
        pack_str(&pk, "token needed");
        break;
    case WORKERS_NOT_ARRAY:
    case WORKER_NOT_MAP:
        msgpack_pack_map(&pk, 3);
        pack_str(&pk, "ok");
        msgpack_pack_true(&pk);
        pack_str(&pk, "n");
        msgpack_pack_uint32(&pk, 1);
        pack_str(&pk, "workers");
        if (s == WORKERS_NOT_ARRAY) {
            pack_str(&pk, "none");
        } else {
            msgpack_pack_array(&pk, 1);
            msgpack_pack_uint32(&pk, 7);
        }
        break;
    case NOT_MAP:
        msgpack_pack_array(&pk, 0);
        break;
    }
    wire_msg_init(m);
    /* The decoded views point into sb: it goes after the document is built. */
    int rv = wire_decode(m, sb.data, sb.size, why, sizeof(why));
    size_t len = 0;
    char *doc = poolproxy_doc(URL, rv == 0 ? m : NULL, NULL, &len);
    msgpack_sbuffer_destroy(&sb);
    assert_non_null(doc);
    assert_int_equal(len, strlen(doc));
    json_t *j = json_loads(doc, 0, NULL);
    free(doc);
    assert_non_null(j);
    return j;
}

static void
test_a_good_status_is_reachable_with_its_fields(void **state)
{
    struct wire_msg m;
    (void)state;
    json_t *j = doc_of(GOOD, &m);
    assert_true(json_is_true(json_object_get(j, "reachable")));
    assert_string_equal(json_string_value(json_object_get(j, "url")), URL);
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 3);
    assert_null(json_object_get(j, "ok"));
    assert_null(json_object_get(j, "error"));
    json_t *ws = json_object_get(j, "workers");
    assert_int_equal(json_array_size(ws), 2);
    json_t *w1 = json_array_get(ws, 1);
    assert_string_equal(json_string_value(json_object_get(w1, "state")), "backoff");
    assert_string_equal(json_string_value(json_object_get(w1, "id")), "h:1:1");
    assert_int_equal(json_integer_value(json_object_get(w1, "restarts")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ws, 0), "pid")), 100);
    json_decref(j);
    wire_msg_fini(&m);
}

/* Each bad reply: reachable false, with an error naming what is wrong. */
static void
test_bad_replies_are_unreachable_saying_why(void **state)
{
    static const struct {
        enum shape s;
        const char *says;
    } cases[] = {
        { REFUSED, "unauthorized: token needed" },
        { NO_N, "no 'n'" },
        { WORKERS_NOT_ARRAY, "no 'workers' array" },
        { WORKER_NOT_MAP, "not a map" },
        { NOT_MAP, "did not decode" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wire_msg m;
        json_t *j = doc_of(cases[i].s, &m);
        assert_true(json_is_false(json_object_get(j, "reachable")));
        assert_string_equal(json_string_value(json_object_get(j, "url")), URL);
        const char *e = json_string_value(json_object_get(j, "error"));
        assert_non_null(e);
        if (strstr(e, cases[i].says) == NULL) {
            fail_msg("case %zu: '%s' does not say '%s'", i, e, cases[i].says);
        }
        assert_null(json_object_get(j, "workers"));
        json_decref(j);
        wire_msg_fini(&m);
    }
}

static void
test_an_error_or_no_url_is_unreachable(void **state)
{
    size_t len;
    (void)state;
    char *doc = poolproxy_doc(NULL, NULL, "no pool", &len);
    assert_non_null(doc);
    assert_string_equal(doc, "{\"reachable\":false,\"url\":null,\"error\":\"no pool\"}");
    free(doc);
    doc = poolproxy_fetch(NULL, NULL, &len);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "\"reachable\":false"));
    assert_non_null(strstr(doc, "no --pool-url"));
    free(doc);
}

/* An ipc:// socket nobody created fails at once, saying so. */
static void
test_fetch_from_no_pool_is_unreachable(void **state)
{
    size_t len;
    (void)state;
    const char *url = "ipc:///nonexistent-sluice-dir/pool.ipc";
    char *doc = poolproxy_fetch(url, NULL, &len);
    assert_non_null(doc);
    json_t *j = json_loads(doc, 0, NULL);
    free(doc);
    assert_non_null(j);
    assert_true(json_is_false(json_object_get(j, "reachable")));
    assert_string_equal(json_string_value(json_object_get(j, "url")), url);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "no socket file"));
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_good_status_is_reachable_with_its_fields),
        cmocka_unit_test(test_bad_replies_are_unreachable_saying_why),
        cmocka_unit_test(test_an_error_or_no_url_is_unreachable),
        cmocka_unit_test(test_fetch_from_no_pool_is_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
