/* Fuzz target: the HTTP API's JSON -> wire mapping (broker/httpjson.c).
 *
 * The input's first byte picks an endpoint (method and path, the path's name segment
 * included, some of them bad), its second an Idempotency-Key header (none, good, bad), the
 * rest is the JSON body. Checked: hj_build either refuses with bad_request and a message, or
 * builds a request that the wire decoder accepts, of the endpoint's op, carrying the token;
 * and the reply mapping turns that message into JSON. (hj_reply is not given the raw input:
 * it reads only the broker's own replies and events, and msgpack-c allocates what a map or
 * array header claims before checking the bytes are there.) */
#include "fuzz.h"

#include "err.h"
#include "httpjson.h"
#include "wire.h"

#include <nng/nng.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *method, *path;
} targets[] = {
    { "POST", "/v1/groups/alice/jobs" }, { "POST", "/v1/groups/a b/jobs" },
    { "GET", "/v1/stats" },              { "POST", "/v1/queues" },
    { "PATCH", "/v1/queues/q1" },        { "DELETE", "/v1/queues/q1" },
    { "PUT", "/v1/routes/bob" },         { "POST", "/v1/dead/retry" },
    { "POST", "/v1/purge" },             { "POST", "/v1/reserve" },
    { "POST", "/v1/ack" },               { "POST", "/v1/nack" },
    { "POST", "/v1/touch" },             { "POST", "/v1/queues/q1/pause" },
};

static const char *const idems[] = { NULL, "web-1:7", "web-1", "a b:1", "c:99999999999999999999" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    size_t ti = data[0] % (sizeof(targets) / sizeof(targets[0]));
    const char *idem = idems[data[1] % (sizeof(idems) / sizeof(idems[0]))];
    struct sl_str arg = { NULL, 0 };
    bool known;
    const struct hj_endpoint *e = hj_match(targets[ti].method, targets[ti].path, &arg, &known);
    FUZZ_CHECK(e != NULL);
    nng_msg *msg;
    if (nng_msg_alloc(&msg, 0) != 0) {
        return 0;
    }
    char why[HJ_WHY_MAX] = "";
    int rv = hj_build(e, (const char *)data + 2, size - 2, arg, "tok", 3, idem, msg, why,
                      sizeof(why));
    if (rv != 0) {
        FUZZ_CHECK(rv == SL_EBADREQ && why[0] != '\0');
    } else {
        struct wire_msg m;
        char w2[256];
        wire_msg_init(&m);
        /* A payload over the wire's own limits is the broker's to refuse, not the mapper's. */
        if (wire_decode(&m, nng_msg_body(msg), nng_msg_len(msg), w2, sizeof(w2)) == 0) {
            FUZZ_CHECK(sl_str_eq(m.v[WK_OP].s, wire_ops[e->op].name));
            FUZZ_CHECK(sl_str_eq(m.v[WK_TOKEN].s, "tok"));
        }
        wire_msg_fini(&m);
        uint16_t status;
        size_t jlen;
        char *json = hj_reply(e, nng_msg_body(msg), nng_msg_len(msg), &status, &jlen);
        FUZZ_CHECK(json != NULL && status == 200 && strlen(json) == jlen);
        free(json);
    }
    nng_msg_free(msg);
    return 0;
}
