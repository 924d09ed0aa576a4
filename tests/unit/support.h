/* What the broker-level unit tests share: string views, a fake clock, and one request through
 * the broker's dispatcher. Include after <cmocka.h>. Everything is static inline, so a test
 * that uses a part pays for nothing else. */
#ifndef SLUICE_TEST_SUPPORT_H
#define SLUICE_TEST_SUPPORT_H

#include "broker.h"
#include "err.h"
#include "ops.h"
#include "wire.h"

#include <nng/nng.h>
#include <string.h>

#define MS 1000000LL

/* A view of a C string. */
static inline struct sl_str
S(const char *z)
{
    return (struct sl_str){ z, (uint32_t)strlen(z) };
}

/* The fake clock: both of a broker's clocks read fake_now, which the test moves. */
static int64_t fake_now;

static inline int64_t
fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

/* A broker on the fake clock, set to start_ns, with cfg's defaults but for the clock. */
static inline struct broker *
fake_broker(const struct broker_cfg *cfg, int64_t start_ns)
{
    struct broker_cfg c = *cfg;
    struct broker *b;
    c.clock = (struct broker_clock){ fake_clock, fake_clock, NULL };
    fake_now = start_ns;
    assert_int_equal(broker_new(&b, &c), 0);
    return b;
}

/* Sends req through the dispatcher; the reply is decoded into rep, whose views live in *keep
 * (free it after wire_msg_fini(rep)). Asserts that the reply is well formed: "ok" matches the
 * code returned, and a failure carries that code's wire name and a message. Returns the code. */
static inline int
request(struct broker *b, const struct wire_msg *req, struct wire_msg *rep, nng_msg **keep)
{
    nng_msg *q, *r;
    msgpack_packer pk;
    assert_int_equal(nng_msg_alloc(&q, 0), 0);
    assert_int_equal(nng_msg_alloc(&r, 0), 0);
    msgpack_packer_init(&pk, q, wire_pack_into_msg);
    assert_int_equal(wire_encode(req, &pk), 0);
    int rv = ops_handle(b, nng_msg_body(q), nng_msg_len(q), 0, r, NULL);
    nng_msg_free(q);
    wire_msg_init(rep);
    assert_int_equal(wire_decode(rep, nng_msg_body(r), nng_msg_len(r), NULL, 0), 0);
    assert_true(WIRE_HAS(rep, WK_OK));
    assert_int_equal(rep->v[WK_OK].b, rv == 0);
    if (rv != 0) {
        assert_true(sl_str_eq(rep->v[WK_ERR].s, sl_err_code(rv)));
        assert_true(rep->v[WK_MSG].s.n > 0);
    }
    *keep = r;
    return rv;
}

#endif
