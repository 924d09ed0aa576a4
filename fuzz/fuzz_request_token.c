/* Fuzz target: the broker's request path with a token configured (--token-file).
 *
 * As fuzz_request (the input is one or more request bodies, run against a fresh broker on a
 * fake clock brought to fuzz_request_base's starting state, the broker's timers after each),
 * but the broker asks every request for the token FUZZ_BASE_TOKEN; the starting state's
 * requests carry it (token_attach), and so do most seeds, so that the fuzzer reaches the ops
 * behind the check as well as the check: requests without the field, with a wrong token, a
 * token of another type (int, bin, nil, array, map), a prefix or an extension of it, the
 * field twice.
 *
 * Checked for each request, besides what fuzz_request checks (the reply says what
 * ops_handle returned; the broker's totals): a request that is a map none of whose "token"
 * fields is the token as a str is refused and changes nothing (no op runs, no job, queue,
 * worker, parked reserve or lease appears or goes); one whose every "token" field is the
 * token is not refused as unauthorized. */
#include "fuzz.h"
#include "fuzz_base.h"

#include "broker.h"
#include "err.h"
#include "flow.h"
#include "log.h"
#include "mpr.h"
#include "ops.h"
#include "park.h"
#include "token.h"
#include "wire.h"

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

struct slot {
    struct waiter wt; /* first: the send callback gets &slot->wt */
    bool owed;
};

static struct slot slots[MAX_REQUESTS + FUZZ_BASE_MAX + 1];
static size_t nslots;

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

/* What a refused request must leave as it was. */
struct mark {
    uint64_t jobs, bytes, next_id, calls, lease, unauthorized;
    uint32_t nqueues, nworkers, nwaiters;
};

static void
take_mark(struct broker *b, struct mark *m)
{
    pthread_mutex_lock(&b->lock);
    *m = (struct mark){ b->jobs, b->bytes, b->next_id, 0, b->lease.number,
                        b->opc.unauthorized, b->nqueues, b->nworkers, b->nwaiters };
    for (int i = 0; i < WOP_COUNT; i++) {
        m->calls += b->opc.calls[i];
    }
    pthread_mutex_unlock(&b->lock);
}

static bool
same(const struct mark *a, const struct mark *b)
{
    return a->jobs == b->jobs && a->bytes == b->bytes && a->next_id == b->next_id &&
           a->calls == b->calls && a->lease == b->lease && a->nqueues == b->nqueues &&
           a->nworkers == b->nworkers && a->nwaiters == b->nwaiters;
}

enum auth { AUTH_UNKNOWN, AUTH_NONE, AUTH_GOOD };

/* What the request p[0..n) says about the token, read apart from the broker's decoder:
 * AUTH_NONE when it is a map (str keys, nothing after it) none of whose "token" values is
 * the token as a str; AUTH_GOOD when it is such a map with "token" fields that all are the
 * token; else AUTH_UNKNOWN (not a map, malformed: the decoder decides). */
static enum auth
auth_of(const void *p, size_t n)
{
    static const char tok[] = FUZZ_BASE_TOKEN;
    struct mpr c;
    uint32_t pairs, good = 0, bad = 0;

    mpr_init(&c, p, n);
    if (!mpr_map(&c, &pairs)) {
        return AUTH_UNKNOWN;
    }
    for (uint32_t i = 0; i < pairs; i++) {
        struct sl_str k, v;
        if (!mpr_str(&c, &k)) {
            return AUTH_UNKNOWN;
        }
        bool is_token = k.n == 5 && memcmp(k.p, "token", 5) == 0;
        if (is_token && mpr_str(&c, &v)) {
            if (v.n == sizeof(tok) - 1 && memcmp(v.p, tok, v.n) == 0) {
                good++;
            } else {
                bad++;
            }
            continue;
        }
        if (!mpr_skip(&c)) {
            return AUTH_UNKNOWN;
        }
        bad += is_token;
    }
    if (mpr_left(&c) != 0) {
        return AUTH_UNKNOWN;
    }
    if (good == 0) {
        return AUTH_NONE;
    }
    return bad == 0 ? AUTH_GOOD : AUTH_UNKNOWN;
}

static void
request(struct broker *b, const void *p, size_t n, uint32_t pipe)
{
    FUZZ_CHECK(nslots < sizeof(slots) / sizeof(slots[0]));
    struct slot *s = &slots[nslots++];
    nng_msg *rep;
    struct waiter *out = NULL;
    struct mark before, after;
    enum auth auth = auth_of(p, n);

    memset(s, 0, sizeof(*s));
    s->wt.send = on_send;
    s->owed = true;
    FUZZ_CHECK(nng_msg_alloc(&rep, 0) == 0);
    take_mark(b, &before);
    int rv = ops_handle(b, p, n, pipe, rep, &s->wt);
    take_mark(b, &after);
    if (auth == AUTH_NONE) {
        FUZZ_CHECK(rv != 0 && rv != OPS_PARKED);
        FUZZ_CHECK(rv == SL_EUNAUTH || rv == SL_EBADREQ);
        FUZZ_CHECK(after.unauthorized == before.unauthorized + (rv == SL_EUNAUTH));
        FUZZ_CHECK(same(&before, &after));
    } else if (auth == AUTH_GOOD) {
        FUZZ_CHECK(rv != SL_EUNAUTH);
    }
    if (rv == OPS_PARKED) {
        nng_msg_free(rep); /* a parked reserve: its reply is made when it is served */
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

/* The starting state's requests with the token attached (kept for the process). */
static nng_msg *base_msgs[FUZZ_BASE_MAX];
static size_t nbase;

static void
make_base(void)
{
    struct token t = { 0, "" };
    const struct fuzz_req *base;
    t.n = (uint32_t)strlen(FUZZ_BASE_TOKEN);
    memcpy(t.s, FUZZ_BASE_TOKEN, t.n);
    nbase = fuzz_request_base(&base);
    for (size_t i = 0; i < nbase; i++) {
        FUZZ_CHECK(nng_msg_alloc(&base_msgs[i], 0) == 0);
        FUZZ_CHECK(nng_msg_append(base_msgs[i], base[i].p, base[i].n) == 0);
        FUZZ_CHECK(token_attach(base_msgs[i], &t) == 0);
    }
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
    if (nbase == 0) {
        make_base();
    }
    broker_cfg_default(&cfg);
    cfg.max_jobs = 2000;
    cfg.max_bytes = 1u << 20;
    cfg.max_payload = 4096;
    cfg.dedup_clients = 64;
    cfg.clock = (struct broker_clock){ fake_clock, fake_clock, NULL };
    now_ns = FUZZ_BASE_START_NS;
    FUZZ_CHECK(broker_new(&b, &cfg) == 0);
    b->token.n = (uint32_t)strlen(FUZZ_BASE_TOKEN);
    memcpy(b->token.s, FUZZ_BASE_TOKEN, b->token.n);
    nslots = 0;

    const struct fuzz_req *base;
    fuzz_request_base(&base);
    for (size_t i = 0; i < nbase; i++) {
        request(b, nng_msg_body(base_msgs[i]), nng_msg_len(base_msgs[i]), base[i].pipe);
    }
    /* The starting state is reached only with the token. */
    FUZZ_CHECK(b->opc.unauthorized == 0 && b->jobs == FUZZ_BASE_JOBS);

    request(b, data, size, 1);

    struct mpr c;
    const uint8_t *start = data;
    size_t values = 0;
    mpr_init(&c, data, size);
    while (values < MAX_REQUESTS && mpr_left(&c) > 0 && mpr_skip(&c)) {
        values++;
        if (values == 1 && mpr_left(&c) == 0) {
            break; /* one value: the first request has run it */
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
    token_clear(&b->token);
    broker_free(b);
    return 0;
}
