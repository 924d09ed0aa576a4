/* sleep:MIN-MAX: the original demo's simulated work. Each job sleeps a uniformly random number
 * of milliseconds in [MIN, MAX] (sleep:MS sleeps MS) and is done. A stop lets the sleep run
 * until the drain deadline; a sleep still running then is released. */
#include "handler.h"

#include "err.h"
#include "status.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLEEP_MS_MAX 86400000ull /* 24 h */

struct sleep_handler {
    struct handler base;
    uint64_t min_ms, max_ms;
    uint64_t rng;               /* xorshift64 state, never 0 */
    struct wsig *sig;
};

/* Reads a whole decimal number of at most 24 h from *s, moving *s past it. */
static bool
number(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (*p < '0' || *p > '9') {
        return false;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > SLEEP_MS_MAX) {
            return false;
        }
    }
    *out = v;
    *s = p;
    return true;
}

static int
sleep_make(const char *arg, const struct handler_env *env, struct handler **hp, char *err,
           size_t errcap)
{
    const char *p = arg;
    uint64_t lo, hi;

    if (!number(&p, &lo)) {
        snprintf(err, errcap, "sleep:MIN-MAX takes milliseconds, 0 to %llu: '%s'",
                 SLEEP_MS_MAX, arg);
        return SL_EBADREQ;
    }
    hi = lo;
    if (*p == '-') {
        p++;
        if (!number(&p, &hi)) {
            snprintf(err, errcap, "sleep:MIN-MAX takes milliseconds, 0 to %llu: '%s'",
                     SLEEP_MS_MAX, arg);
            return SL_EBADREQ;
        }
    }
    if (*p != '\0') {
        snprintf(err, errcap, "sleep:MIN-MAX: unexpected '%s'", p);
        return SL_EBADREQ;
    }
    if (lo > hi) {
        snprintf(err, errcap, "sleep:MIN-MAX: MIN %llu is above MAX %llu",
                 (unsigned long long)lo, (unsigned long long)hi);
        return SL_EBADREQ;
    }
    struct sleep_handler *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return SL_ENOMEM;
    }
    h->base.ops = &handler_sleep_ops;
    h->min_ms = lo;
    h->max_ms = hi;
    h->rng = (status_now_ms() * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)getpid() << 32) ^ 1u;
    h->sig = env->sig;
    *hp = &h->base;
    return 0;
}

static uint64_t
next_rand(struct sleep_handler *h)
{
    uint64_t x = h->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    h->rng = x;
    return x;
}

static void
sleep_run(struct handler *hh, const struct wapi_job *job, struct handler_result *res)
{
    struct sleep_handler *h = (struct sleep_handler *)hh;
    uint64_t span = h->max_ms - h->min_ms;
    uint64_t ms = h->min_ms + (span > 0 ? next_rand(h) % (span + 1) : 0);
    uint64_t now = status_now_ms();
    uint64_t end = now + ms;

    (void)job;
    res->verdict = HANDLER_ACK;
    while (now < end) {
        uint64_t until = end;
        if (wsig_deadline_ms(h->sig) < until) {
            until = wsig_deadline_ms(h->sig);
        }
        if (now >= until) {
            res->verdict = HANDLER_RELEASE; /* the drain deadline came first */
            return;
        }
        struct pollfd pfd = { wsig_fd(h->sig), POLLIN, 0 };
        uint64_t wait = until - now;
        if (poll(&pfd, 1, wait > 1000 ? 1000 : (int)wait) > 0) {
            wsig_update(h->sig);
        }
        now = status_now_ms();
    }
}

static void
sleep_destroy(struct handler *h)
{
    free(h);
}

const struct handler_ops handler_sleep_ops = { "sleep", true, sleep_make, sleep_run,
                                               sleep_destroy };
