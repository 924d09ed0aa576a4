/* group.limit: sets or removes a group's start rate (grate.h); runs under b->lock, called by
 * ops_handle. */
#include "err.h"
#include "grate.h"
#include "log.h"
#include "ops_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rate (jobs per second) in thousandths, rounded: 0 for 0; 0 with false when it is out of
 * range (a rate above 0 that rounds to none is out of range). */
static bool
rate_milli(double rate, uint64_t *out)
{
    double m = rate * 1000.0;
    if (rate == 0) {
        *out = 0;
        return true;
    }
    if (!(m >= RATE_MILLI_MIN - 0.5 && m < (double)RATE_MILLI_MAX + 0.5)) {
        return false;
    }
    *out = (uint64_t)(m + 0.5);
    return true;
}

/* The group's limit as `expect` spells it: "none", or rate and burst ("0.5:1", "50:100"). */
static void
limit_text(const struct group *g, char *out, size_t cap)
{
    if (g == NULL || g->rate == NULL) {
        snprintf(out, cap, "none");
        return;
    }
    snprintf(out, cap, "%g:%u", (double)g->rate->bucket.rate_milli / 1000.0,
             g->rate->bucket.burst);
}

/* group.limit's `expect`: the limit the caller saw, so that a router deciding on a snapshot
 * never undoes a limit a person set since. 0 when there is none or it holds. */
static int
limit_expected(struct broker *b, const struct wire_msg *req, char *why)
{
    if (!WIRE_HAS(req, WK_EXPECT)) {
        return 0;
    }
    struct sl_str group = req->v[WK_GROUP].s, expect = req->v[WK_EXPECT].s;
    const struct group *g = broker_group_find(b, group);
    char text[64], now[64];
    uint64_t milli = 0;
    unsigned long burst = 0;
    if (expect.n == 0 || expect.n >= sizeof(text)) {
        goto bad;
    }
    memcpy(text, expect.p, expect.n);
    text[expect.n] = '\0';
    if (strcmp(text, "none") != 0) {
        char *end;
        double r = strtod(text, &end);
        if (*end != ':' || text[0] == ' ' || r <= 0 || !rate_milli(r, &milli)) {
            goto bad;
        }
        const char *bs = end + 1;
        burst = strtoul(bs, &end, 10);
        if (*bs < '0' || *bs > '9' || *end != '\0' || burst < 1 || burst > RATE_BURST_MAX) {
            goto bad;
        }
    }
    uint64_t have_milli = g != NULL && g->rate != NULL ? g->rate->bucket.rate_milli : 0;
    uint32_t have_burst = g != NULL && g->rate != NULL ? g->rate->bucket.burst : 0;
    if (have_milli != milli || have_burst != burst) {
        limit_text(g, now, sizeof(now));
        snprintf(why, WHY_MAX, "group %.*s has limit %s, not %s: changed meanwhile",
                 (int)group.n, group.p, now, text);
        return SL_ECONFLICT;
    }
    return 0;
bad:
    snprintf(why, WHY_MAX, "expect must be \"none\" or RATE:BURST (as \"50:100\")");
    return SL_EBADREQ;
}

/* Reads rate and burst from req into *milli and *burst (0: the default), or says why not. */
static int
limit_fields(const struct wire_msg *req, uint64_t *milli, uint32_t *burst, char *why)
{
    if (!rate_milli(req->v[WK_RATE].d, milli)) {
        snprintf(why, WHY_MAX, "'rate' must be 0 (no limit) or 0.001 to %llu jobs per second",
                 (unsigned long long)(RATE_MILLI_MAX / 1000u));
        return SL_EBADREQ;
    }
    *burst = 0;
    if (WIRE_HAS(req, WK_BURST)) {
        uint64_t bu = req->v[WK_BURST].u;
        if (*milli == 0) {
            snprintf(why, WHY_MAX, "'burst' needs a rate above 0 (rate 0 removes the limit)");
            return SL_EBADREQ;
        }
        if (bu < 1 || bu > RATE_BURST_MAX) {
            snprintf(why, WHY_MAX, "'burst' must be 1 to %u", RATE_BURST_MAX);
            return SL_EBADREQ;
        }
        *burst = (uint32_t)bu;
    }
    return 0;
}

int
op_group_limit(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
               struct op_ctx *c)
{
    struct sl_str group = req->v[WK_GROUP].s;
    uint64_t milli;
    uint32_t burst;
    int rv = limit_fields(req, &milli, &burst, c->why);
    if (rv == 0) {
        rv = limit_expected(b, req, c->why);
    }
    if (rv != 0) {
        return rv;
    }
    b->origin = req;
    rv = grate_set(b, group, milli, burst);
    b->origin = NULL;
    if (rv != 0) {
        return rv;
    }
    const struct group *g = broker_group_find(b, group);
    const struct group_rate *r = g != NULL ? g->rate : NULL;
    char reason[160] = "\"\"";
    if (WIRE_HAS(req, WK_REASON)) {
        log_quote(reason, sizeof(reason), req->v[WK_REASON].s.p, req->v[WK_REASON].s.n);
    }
    wire_pack_ok(pk, 2);
    wire_pack_key(pk, WK_RATE);
    msgpack_pack_double(pk, r != NULL ? r->bucket.rate_milli / 1000.0 : 0.0);
    key_u64(pk, WK_BURST, r != NULL ? r->bucket.burst : 0);
    LOG(LOG_INFO, "group.limit", "group=%.*s rate=%.3f burst=%u lease=%llu reason=%s",
        (int)group.n, group.p, r != NULL ? r->bucket.rate_milli / 1000.0 : 0.0,
        r != NULL ? r->bucket.burst : 0u,
        WIRE_HAS(req, WK_LEASE) ? (unsigned long long)req->v[WK_LEASE].u : 0ULL, reason);
    return 0;
}
