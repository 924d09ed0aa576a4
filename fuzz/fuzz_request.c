/* Fuzz target: the broker's request path, from raw bytes to reply, without sockets.
 *
 * The input is what a client sends: one request body (a msgpack map), or several bodies one
 * after another. Each input gets a fresh broker (memory only, on a fake clock) brought to a
 * fixed starting state by the requests of fuzz_request_base(): three queues (one paused,
 * one capped), a route, ready, reserved and dead jobs, two workers, the router's lease. Then
 *   1. the whole input goes through ops_handle as one request (as the broker's socket would
 *      hand it over: trailing bytes and all);
 *   2. if it holds more than one msgpack value, each value goes through ops_handle in turn,
 *      on connections 1, 2, 3, 1, ..., the clock moving 250 ms and the broker's timers
 *      (TTR, delays, parked reserves' waits) running after each;
 *   3. the three connections close, which answers every parked reserve.
 * A fresh state per input makes a crash reproduce from its one file; sequences of requests
 * in one input are how the fuzzer reaches deeper states.
 *
 * Checked after every request: the reply is exactly one msgpack map whose "ok" says whether
 * ops_handle succeeded, with the error's wire code in "err"; the broker's job totals equal
 * the sums over its queues, over its groups, and over each queue's lists. */
#include "fuzz.h"
#include "fuzz_base.h"

#include "broker.h"
#include "err.h"
#include "flow.h"
#include "log.h"
#include "mpr.h"
#include "ops.h"
#include "park.h"
#include "wire.h"

#include <msgpack.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <string.h>

#define STEP_NS (FUZZ_BASE_STEP_MS * 1000000LL)
#define MAX_REQUESTS 64 /* values of one input run as requests; the rest is ignored */

static int64_t now_ns;

static int64_t
fake_clock(void *arg)
{
    (void)arg;
    return now_ns;
}

/* A request slot: the waiter a reserve may park in, and whether its reply is owed. */
struct slot {
    struct waiter wt; /* first: the send callback gets &slot->wt */
    bool owed;
};

static struct slot slots[MAX_REQUESTS + FUZZ_BASE_MAX + 1];
static size_t nslots;

/* A parked reserve is answered (from ops_handle, park_send_all or ops_pipe_closed). */
static void
on_send(struct waiter *wt)
{
    struct slot *s = (struct slot *)wt;
    FUZZ_CHECK(s->owed);
    if (wt->rep != NULL) {
        fuzz_check_reply(nng_msg_body(wt->rep), nng_msg_len(wt->rep), 0);
        nng_msg_free(wt->rep);
        wt->rep = NULL;
    }
    s->owed = false;
}

/* One request on connection pipe; then the clock moves and the timers run. */
static void
request(struct broker *b, const void *p, size_t n, uint32_t pipe)
{
    FUZZ_CHECK(nslots < sizeof(slots) / sizeof(slots[0]));
    struct slot *s = &slots[nslots++];
    nng_msg *rep;
    struct waiter *out = NULL;

    memset(s, 0, sizeof(*s));
    s->wt.send = on_send;
    s->owed = true;
    FUZZ_CHECK(nng_msg_alloc(&rep, 0) == 0);
    int rv = ops_handle(b, p, n, pipe, rep, &s->wt);
    if (rv == OPS_PARKED) {
        /* Parked: rep was not used; the waiter answers later (or has already). */
        nng_msg_free(rep);
    } else {
        fuzz_check_reply(nng_msg_body(rep), nng_msg_len(rep), rv);
        nng_msg_free(rep);
        s->owed = false;
    }
    fuzz_check_broker(b);

    now_ns += STEP_NS;
    pthread_mutex_lock(&b->lock);
    flow_tick(b, now_ns);
    park_expire(b, now_ns, 0, &out);
    if (b->nwaiters > 0) {
        park_serve(b, &out);
    }
    pthread_mutex_unlock(&b->lock);
    park_send_all(out);
    fuzz_check_broker(b);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_level = fuzz_log_level();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct broker_cfg cfg;
    struct broker *b;

    log_level = fuzz_log_level();
    broker_cfg_default(&cfg);
    /* Small limits, so that the fuzzer reaches them and memory stays bounded. */
    cfg.max_jobs = 2000;
    cfg.max_bytes = 1u << 20;
    cfg.max_payload = 4096;
    cfg.dedup_clients = 64;
    cfg.clock = (struct broker_clock){ fake_clock, fake_clock, NULL };
    now_ns = FUZZ_BASE_START_NS;
    FUZZ_CHECK(broker_new(&b, &cfg) == 0);
    nslots = 0;

    const struct fuzz_req *base;
    size_t nbase = fuzz_request_base(&base);
    for (size_t i = 0; i < nbase; i++) {
        request(b, base[i].p, base[i].n, base[i].pipe);
    }

    request(b, data, size, 1);

    struct mpr c;
    const uint8_t *start = data;
    size_t values = 0;
    mpr_init(&c, data, size);
    while (values < MAX_REQUESTS && mpr_left(&c) > 0 && mpr_skip(&c)) {
        values++;
        if (values == 1 && mpr_left(&c) == 0) {
            break; /* one value: step 1 has run it */
        }
        request(b, start, (size_t)(c.p - start), 1 + (uint32_t)((values - 1) % 3));
        start = c.p;
    }

    for (uint32_t pipe = 1; pipe <= 3; pipe++) {
        ops_pipe_closed(b, pipe);
        fuzz_check_broker(b);
    }
    FUZZ_CHECK(b->nwaiters == 0);
    for (size_t i = 0; i < nslots; i++) {
        FUZZ_CHECK(!slots[i].owed);
    }
    broker_free(b);
    return 0;
}
