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
#include "mpr.h"
#include "ops.h"
#include "token.h"
#include "wire.h"

#include <nng/nng.h>
#include <stdbool.h>
#include <string.h>

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

/* The request under way: what it says about the token, and the broker before it ran. */
static enum auth auth;
static struct mark before;

static void
mark_before(struct broker *b, const void *p, size_t n, void *arg)
{
    (void)arg;
    auth = auth_of(p, n);
    take_mark(b, &before);
}

static void
check_after(struct broker *b, int rv, void *arg)
{
    struct mark after;

    (void)arg;
    take_mark(b, &after);
    if (auth == AUTH_NONE) {
        FUZZ_CHECK(rv != 0 && rv != OPS_PARKED);
        FUZZ_CHECK(rv == SL_EUNAUTH || rv == SL_EBADREQ);
        FUZZ_CHECK(after.unauthorized == before.unauthorized + (rv == SL_EUNAUTH));
        FUZZ_CHECK(same(&before, &after));
    } else if (auth == AUTH_GOOD) {
        FUZZ_CHECK(rv != SL_EUNAUTH);
    }
}

static const struct fuzz_run_hook check_token = { mark_before, check_after, NULL };

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
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (nbase == 0) {
        make_base();
    }
    struct broker *b = fuzz_run_broker();
    b->token.n = (uint32_t)strlen(FUZZ_BASE_TOKEN);
    memcpy(b->token.s, FUZZ_BASE_TOKEN, b->token.n);

    const struct fuzz_req *base;
    fuzz_request_base(&base);
    for (size_t i = 0; i < nbase; i++) {
        fuzz_run_request(b, nng_msg_body(base_msgs[i]), nng_msg_len(base_msgs[i]), base[i].pipe,
                         &check_token);
    }
    /* The starting state is reached only with the token. */
    FUZZ_CHECK(b->opc.unauthorized == 0 && b->jobs == FUZZ_BASE_JOBS);

    fuzz_run_input(b, data, size, &check_token);
    fuzz_run_close(b);
    token_clear(&b->token);
    broker_free(b);
    return 0;
}
