#include "leader.h"

#include "err.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A standby tries to acquire every ttl/8: it takes over at most ttl + ttl/8 after the leader's
 * last renewal (2.25 s with the default 2 s), well within the 3 s a takeover may take; an
 * acquire is one small request, so 8 per lease lifetime cost the broker nothing. */
#define LEADER_RETRY_DIV 8
#define LEADER_RELEASE_MS 1000u /* the most a stopping router waits to give its lease up */

void
leader_init(struct leader *l, const char *name, uint64_t ttl_ms, uint64_t high, uint64_t call_ms)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->name, sizeof(l->name), "%s", name);
    l->ttl_ms = ttl_ms;
    l->high = high;
    l->call_ms = call_ms;
}

bool
leader_leading(const struct leader *l, uint64_t now_ms)
{
    return l->leading && now_ms < l->valid_until_ms;
}

static void
go_standby(struct leader *l, const char *why, uint64_t now_ms)
{
    if (l->leading) {
        char q[300];
        LOG(LOG_WARN, "leader.lost", "name=%s lease=%" PRIu64 " reason=%s", l->name, l->lease,
            log_quote(q, sizeof(q), why, (unsigned)strlen(why)));
    }
    l->leading = false;
    l->lease = 0;
    l->said_standby = false;
    l->said_unauthorized = false;
    l->next_ms = now_ms + l->ttl_ms / LEADER_RETRY_DIV;
}

void
leader_lost(struct leader *l, const char *why, uint64_t now_ms)
{
    go_standby(l, why, now_ms);
}

/* One lease request: op with name, ttl_ms, high and (renew) the lease. 0 with *number, or an
 * error code with the broker's text in msg. */
static int
lease_call(struct leader *l, struct client *c, const char *op, uint64_t *number, char *msg,
           size_t msgcap)
{
    struct wire_msg req, rep;
    struct sl_str m;
    int rv;

    wire_msg_init(&req);
    wire_msg_init(&rep);
    wire_set_cstr(&req, WK_OP, op);
    wire_set_cstr(&req, WK_NAME, l->name);
    wire_set_u64(&req, WK_TTL_MS, l->ttl_ms);
    if (l->high > 0) {
        wire_set_u64(&req, WK_HIGH, l->high);
    }
    if (l->leading) {
        wire_set_u64(&req, WK_LEASE, l->lease);
    }
    msg[0] = '\0';
    if ((rv = client_call(c, &req, &rep, l->call_ms)) == 0) {
        if ((rv = client_reply_err(&rep, &m)) != 0) {
            snprintf(msg, msgcap, "%.*s", (int)m.n, m.p);
        } else if (!WIRE_HAS(&rep, WK_LEASE)) {
            snprintf(msg, msgcap, "the reply carries no lease");
            rv = SL_EBADREQ;
        } else {
            *number = rep.v[WK_LEASE].u;
        }
    } else {
        snprintf(msg, msgcap, "%s", sl_err_str(rv));
    }
    wire_msg_fini(&rep);
    return rv;
}

enum leader_change
leader_step(struct leader *l, struct client *c, uint64_t now_ms)
{
    char msg[256];
    uint64_t number = 0;

    if (now_ms < l->next_ms) {
        return LEADER_SAME;
    }
    if (l->leading) {
        int rv = lease_call(l, c, "lease.renew", &number, msg, sizeof(msg));
        if (rv == 0) {
            l->valid_until_ms = now_ms + l->ttl_ms; /* counted from the send: never late */
            l->next_ms = now_ms + l->ttl_ms / 3;
            return LEADER_SAME;
        }
        if (rv == SL_ENOTLEADER) {
            go_standby(l, msg, now_ms);
            return LEADER_LOST;
        }
        /* The broker did not answer: retry soon; the lease lapses on its own. */
        LOG(LOG_WARN, "leader.renew_failed", "lease=%" PRIu64 " err=%s", l->lease,
            sl_err_code(rv));
        if (now_ms + l->ttl_ms / 10 >= l->valid_until_ms) {
            go_standby(l, "lapsed: the broker did not answer the renewals", now_ms);
            return LEADER_LOST;
        }
        l->next_ms = now_ms + l->ttl_ms / 10;
        return LEADER_SAME;
    }
    int rv = lease_call(l, c, "lease.acquire", &number, msg, sizeof(msg));
    if (rv == 0) {
        l->leading = true;
        l->lease = number;
        l->valid_until_ms = now_ms + l->ttl_ms;
        l->next_ms = now_ms + l->ttl_ms / 3;
        l->said_standby = false;
        l->said_unauthorized = false;
        LOG(LOG_INFO, "leader.acquire", "name=%s lease=%" PRIu64 " ttl_ms=%" PRIu64, l->name,
            number, l->ttl_ms);
        return LEADER_GAINED;
    }
    l->next_ms = now_ms + l->ttl_ms / LEADER_RETRY_DIV;
    if (rv == SL_ENOTLEADER) {
        /* Said once on becoming standby, not at every retry. */
        if (!l->said_standby) {
            char q[300];
            LOG(LOG_INFO, "leader.standby", "name=%s reason=%s", l->name,
                log_quote(q, sizeof(q), msg, (unsigned)strlen(msg)));
            l->said_standby = true;
        }
    } else if (rv == SL_EUNAUTH) {
        /* Retrying cannot help until the broker or our --token-file changes: said once. */
        if (!l->said_unauthorized) {
            LOG(LOG_ERROR, "leader.acquire_failed", "name=%s err=%s reason=\"the broker refuses "
                "this router's token (--token-file)\"", l->name, sl_err_code(rv));
            l->said_unauthorized = true;
        }
    } else {
        LOG(LOG_WARN, "leader.acquire_failed", "name=%s err=%s", l->name, sl_err_code(rv));
    }
    return LEADER_SAME;
}

void
leader_release(struct leader *l, struct client *c)
{
    struct wire_msg req, rep;
    struct sl_str m;
    int rv;

    if (!l->leading) {
        return;
    }
    wire_msg_init(&req);
    wire_msg_init(&rep);
    wire_set_cstr(&req, WK_OP, "lease.release");
    wire_set_cstr(&req, WK_NAME, l->name);
    wire_set_u64(&req, WK_LEASE, l->lease);
    /* Releasing only spares a standby the wait for the lease to lapse: a stopping router gives
     * it a second at most (a broker that is gone would otherwise hold the stop for the whole
     * call time, a half of a long --lease-ttl, past the stop's exit deadline). */
    uint64_t ms = l->call_ms < LEADER_RELEASE_MS ? l->call_ms : LEADER_RELEASE_MS;
    if ((rv = client_call(c, &req, &rep, ms)) == 0) {
        rv = client_reply_err(&rep, &m);
    }
    wire_msg_fini(&rep);
    if (rv == 0) {
        LOG(LOG_INFO, "leader.release", "name=%s lease=%" PRIu64, l->name, l->lease);
    } else {
        LOG(LOG_WARN, "leader.release_failed", "name=%s lease=%" PRIu64 " err=%s", l->name,
            l->lease, sl_err_code(rv));
    }
    l->leading = false;
    l->lease = 0;
}
