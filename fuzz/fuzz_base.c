#include "fuzz_base.h"

#include "broker.h"
#include "err.h"
#include "flow.h"
#include "fuzz.h"
#include "log.h"
#include "mpr.h"
#include "ops.h"
#include "park.h"
#include "queue.h"
#include "wire.h"

#include <msgpack.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <string.h>

static struct fuzz_req reqs[FUZZ_BASE_MAX];
static size_t nreqs;

/* Encodes m as the next request, on connection pipe, and clears m for the next one. */
static void
add(struct wire_msg *m, uint32_t pipe)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;

    FUZZ_CHECK(nreqs < FUZZ_BASE_MAX);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    FUZZ_CHECK(wire_encode(m, &pk) == 0);
    reqs[nreqs++] = (struct fuzz_req){ sb.data, sb.size, pipe }; /* kept for the process */
    wire_msg_init(m);
}

static void
op(struct wire_msg *m, const char *name)
{
    wire_msg_init(m);
    wire_set_cstr(m, WK_OP, name);
}

static void
payloads(struct wire_msg *m, const char *const *z, uint32_t n)
{
    static struct sl_str v[8][4]; /* each call's own array: encoded later, in add() */
    static unsigned next;
    struct sl_str *s = v[next++ % 8];
    for (uint32_t i = 0; i < n; i++) {
        s[i] = (struct sl_str){ z[i], (uint32_t)strlen(z[i]) };
    }
    wire_set_strs(m, WK_PAYLOADS, s, n);
}

static void
build(void)
{
    struct wire_msg m;
    static const char *const a[] = { "a1", "a2", "a3" };
    static const char *const bb[] = { "b1", "b2" };
    static const char *const c[] = { "c1", "c2" };
    static const char *const d[] = { "d1" };
    static const char *const a4[] = { "a4" };
    static const uint64_t four[] = { 4 };

    op(&m, "queue.create");                     /* 0 */
    wire_set_cstr(&m, WK_NAME, "q1");
    wire_set_u64(&m, WK_PRIORITY, 5);
    wire_set_u64(&m, WK_WEIGHT, 2);
    add(&m, 1);
    op(&m, "queue.create");                     /* 1 */
    wire_set_cstr(&m, WK_NAME, "q2");
    wire_set_u64(&m, WK_MAX_INFLIGHT, 1);
    add(&m, 1);
    op(&m, "queue.create");                     /* 2 */
    wire_set_cstr(&m, WK_NAME, "slow");
    add(&m, 1);
    op(&m, "queue.pause");                      /* 3 */
    wire_set_cstr(&m, WK_NAME, "slow");
    add(&m, 1);
    op(&m, "push");                             /* 4: jobs 1-3 */
    wire_set_cstr(&m, WK_GROUP, "alice");
    payloads(&m, a, 3);
    add(&m, 1);
    op(&m, "push");                             /* 5: jobs 4-5 */
    wire_set_cstr(&m, WK_GROUP, "bob");
    wire_set_cstr(&m, WK_QUEUE, "q1");
    wire_set_cstr(&m, WK_CLIENT, "c1");
    wire_set_u64(&m, WK_SEQ, 1);
    wire_set_u64(&m, WK_MAX_ATTEMPTS, 1);
    payloads(&m, bb, 2);
    add(&m, 1);
    op(&m, "route.set");                        /* 6 */
    wire_set_cstr(&m, WK_GROUP, "carol");
    wire_set_cstr(&m, WK_QUEUE, "q2");
    add(&m, 1);
    op(&m, "push");                             /* 7: jobs 6-7 */
    wire_set_cstr(&m, WK_GROUP, "carol");
    payloads(&m, c, 2);
    add(&m, 1);
    op(&m, "push");                             /* 8: job 8 */
    wire_set_cstr(&m, WK_GROUP, "dave");
    wire_set_cstr(&m, WK_QUEUE, "slow");
    payloads(&m, d, 1);
    add(&m, 1);
    op(&m, "reserve");                          /* 9: q1 first: 4, 5 */
    wire_set_cstr(&m, WK_WORKER, "w1");
    wire_set_u64(&m, WK_MAX, 2);
    add(&m, 1);
    op(&m, "nack");                             /* 10: 4 is dead (1 attempt) */
    wire_set_u64s(&m, WK_IDS, four, 1);
    wire_set_cstr(&m, WK_WORKER, "w1");
    add(&m, 1);
    op(&m, "reserve");                          /* 11 */
    wire_set_cstr(&m, WK_WORKER, "w2");
    wire_set_u64(&m, WK_MAX, 2);
    add(&m, 2);
    op(&m, "push");                             /* 12: job 9, a short TTR */
    wire_set_cstr(&m, WK_GROUP, "alice");
    wire_set_u64(&m, WK_TTR_MS, 500);
    payloads(&m, a4, 1);
    add(&m, 1);
    op(&m, "lease.acquire");                    /* 13 = FUZZ_BASE_LEASE_AT */
    wire_set_cstr(&m, WK_NAME, "router:1");
    wire_set_u64(&m, WK_TTL_MS, 60000);
    wire_set_u64(&m, WK_HIGH, 5);
    add(&m, 1);
    FUZZ_CHECK(nreqs == FUZZ_BASE_LEASE_AT + 1);
}

size_t
fuzz_request_base(const struct fuzz_req **out)
{
    if (nreqs == 0) {
        build();
    }
    *out = reqs;
    return nreqs;
}

void
fuzz_check_broker(struct broker *b)
{
    uint64_t by_queue = 0, by_group = 0;
    pthread_mutex_lock(&b->lock);
    for (uint32_t i = 0; i < b->nqueues; i++) {
        const struct queue *q = b->qorder[i];
        FUZZ_CHECK(queue_check(q) == NULL);
        for (int st = JOB_READY + 1; st < JOB_STATES; st++) {
            uint64_t walked = 0;
            for (const struct job *j = q->lists[st].head; j != NULL; j = j->next) {
                FUZZ_CHECK(j->queue == q && j->state == st);
                walked++;
            }
            FUZZ_CHECK(walked == q->lists[st].n);
        }
        by_queue += queue_jobs(q);
    }
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        by_group += group_jobs(g);
    }
    FUZZ_CHECK(by_queue == b->jobs);
    FUZZ_CHECK(by_group == b->jobs);
    pthread_mutex_unlock(&b->lock);
}

int
fuzz_log_level(void)
{
    const char *s = getenv("SLUICE_FUZZ_LOG");
    int lv = s != NULL ? log_level_parse(s) : -1;
    return lv >= 0 ? lv : LOG_OFF;
}

void
fuzz_check_reply(const void *body, size_t len, int rv)
{
    struct mpr c;
    uint32_t n;
    bool has_ok = false, ok = false, has_err = false;
    struct sl_str err = { "", 0 };

    FUZZ_CHECK(len > 0 && wire_check(body, len) == 0);
    mpr_init(&c, body, len);
    FUZZ_CHECK(mpr_map(&c, &n));
    for (uint32_t i = 0; i < n; i++) {
        struct sl_str k;
        FUZZ_CHECK(mpr_str(&c, &k));
        if (k.n == 2 && memcmp(k.p, "ok", 2) == 0) {
            FUZZ_CHECK(!has_ok && mpr_bool(&c, &ok));
            has_ok = true;
        } else if (k.n == 3 && memcmp(k.p, "err", 3) == 0) {
            FUZZ_CHECK(!has_err && mpr_str(&c, &err));
            has_err = true;
        } else {
            FUZZ_CHECK(mpr_skip(&c));
        }
    }
    FUZZ_CHECK(mpr_left(&c) == 0);
    FUZZ_CHECK(has_ok);
    FUZZ_CHECK(ok || has_err);
    if (rv != FUZZ_ANY_REPLY) {
        FUZZ_CHECK(ok == (rv == 0));
        FUZZ_CHECK(rv == 0 || sl_str_eq(err, sl_err_code(rv)));
    }
}

/* --- the request path: fuzz_run_* ----------------------------------------------------------- */

#define STEP_NS (FUZZ_BASE_STEP_MS * 1000000LL)

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

static struct slot slots[FUZZ_RUN_MAX + FUZZ_BASE_MAX + 1];
static size_t nslots;

struct broker *
fuzz_run_broker(void)
{
    struct broker_cfg cfg;
    struct broker *b;

    log_level = fuzz_log_level();
    broker_cfg_default(&cfg);
    cfg.max_jobs = 2000;
    cfg.max_bytes = 1u << 20;
    cfg.max_payload = 4096;
    cfg.dedup_clients = 64;
    cfg.clock = (struct broker_clock){ fake_clock, fake_clock, NULL };
    now_ns = FUZZ_BASE_START_NS;
    FUZZ_CHECK(broker_new(&b, &cfg) == 0);
    nslots = 0;
    return b;
}

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

void
fuzz_run_request(struct broker *b, const void *p, size_t n, uint32_t pipe,
                 const struct fuzz_run_hook *hook)
{
    FUZZ_CHECK(nslots < sizeof(slots) / sizeof(slots[0]));
    struct slot *s = &slots[nslots++];
    nng_msg *rep;
    struct waiter *out = NULL;

    memset(s, 0, sizeof(*s));
    s->wt.send = on_send;
    s->owed = true;
    FUZZ_CHECK(nng_msg_alloc(&rep, 0) == 0);
    if (hook != NULL && hook->before != NULL) {
        hook->before(b, p, n, hook->arg);
    }
    int rv = ops_handle(b, p, n, pipe, rep, &s->wt);
    if (hook != NULL && hook->after != NULL) {
        hook->after(b, rv, hook->arg);
    }
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

void
fuzz_run_input(struct broker *b, const uint8_t *data, size_t size,
               const struct fuzz_run_hook *hook)
{
    struct mpr c;
    const uint8_t *start = data;
    size_t values = 0;

    fuzz_run_request(b, data, size, 1, hook);
    mpr_init(&c, data, size);
    while (values < FUZZ_RUN_MAX && mpr_left(&c) > 0 && mpr_skip(&c)) {
        values++;
        if (values == 1 && mpr_left(&c) == 0) {
            break; /* one value: the first request has run it */
        }
        fuzz_run_request(b, start, (size_t)(c.p - start), 1 + (uint32_t)((values - 1) % 3),
                         hook);
        start = c.p;
    }
}

void
fuzz_run_close(struct broker *b)
{
    for (uint32_t pipe = 1; pipe <= 3; pipe++) {
        ops_pipe_closed(b, pipe);
        fuzz_check_broker(b);
    }
    FUZZ_CHECK(b->nwaiters == 0);
    for (size_t i = 0; i < nslots; i++) {
        FUZZ_CHECK(!slots[i].owed);
    }
}
