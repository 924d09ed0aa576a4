#include "router.h"

#include "deadline.h"

#include "clock.h"
#include "client.h"
#include "err.h"
#include "evsub.h"
#include "leader.h"
#include "log.h"
#include "snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How often a router that cannot reach the broker tries again. */
#define ROUTER_RETRY_MS 250
/* How long --once waits for the broker. */
#define ROUTER_ONCE_CONNECT_MS 2000
/* Events drained per wake-up at most, so a flood of events cannot hold the loop. */
#define ROUTER_EVENTS_MAX 1024

struct router {
    struct router_cfg cfg;      /* strings borrowed from the caller, alive as long as r */
    struct policy *policy;
    struct client *cl;          /* NULL until the broker has been reached */
    struct evsub *ev;
    int ev_fd;
    struct leader leader;       /* unused with dry_run */
    uint64_t call_ms;           /* timeout of one request */
    uint64_t retry_ms;          /* monotonic: no connection attempt before */
    bool unreachable;           /* the last attempt to reach the broker failed (logged once) */
    struct wire_msg rep;        /* the last reply; a snapshot's views point into it */
    struct snapshot_buf snap;
    struct action_list acts;
    int stop_fd;                /* the self-pipe router_run watches; -1 before */
};

int
router_new(struct router **rp, const struct router_cfg *cfg)
{
    struct router *r = calloc(1, sizeof(*r));
    int rv;

    if (r == NULL) {
        return SL_ENOMEM;
    }
    r->cfg = *cfg;
    /* A lease request or a stats snapshot that takes half the lease's life is a broker in
     * trouble: give up and try again rather than let the lease lapse while waiting. */
    r->call_ms = cfg->ttl_ms / 2;
    if ((rv = policy_new(&r->policy, cfg->policy, &cfg->pcfg)) != 0) {
        goto fail;
    }
    if ((rv = evsub_open(&r->ev, cfg->events_url, 0)) != 0 ||
        (rv = evsub_fd(r->ev, &r->ev_fd)) != 0) {
        goto fail_policy;
    }
    r->stop_fd = -1;
    leader_init(&r->leader, cfg->name, cfg->ttl_ms, cfg->pcfg.high, r->call_ms);
    wire_msg_init(&r->rep);
    snapshot_buf_init(&r->snap);
    action_list_init(&r->acts);
    *rp = r;
    return 0;
fail_policy:
    evsub_free(r->ev);
    policy_free(r->policy);
fail:
    free(r);
    return rv;
}

void
router_free(struct router *r)
{
    if (r == NULL) {
        return;
    }
    exit_deadline_step("leader_release");
    if (r->cl != NULL && !r->cfg.dry_run) {
        leader_release(&r->leader, r->cl);
    }
    wire_msg_fini(&r->rep);
    exit_deadline_step("client_free");
    client_free(r->cl);
    exit_deadline_step("evsub_leave");
    evsub_leave(r->ev); /* router_free ends the program */
    exit_deadline_step("free");
    snapshot_buf_fini(&r->snap);
    action_list_fini(&r->acts);
    policy_free(r->policy);
    free(r);
}

/* Connects once the broker is there; a broker that goes away later is redialled by nng. */
static bool
connected(struct router *r, uint64_t now_ms)
{
    if (r->cl != NULL) {
        return true;
    }
    if (now_ms < r->retry_ms) {
        return false;
    }
    /* A daemon tries once per retry and keeps its loop free; --once may wait a little. */
    int rv = client_open(&r->cl, r->cfg.url, r->cfg.once ? ROUTER_ONCE_CONNECT_MS : 0);
    if (rv == 0) {
        client_set_token(r->cl, r->cfg.token);
    }
    if (rv != 0) {
        if (!r->unreachable) {
            LOG(LOG_WARN, "broker.unreachable", "url=\"%s\" err=%s retry_ms=%d", r->cfg.url,
                sl_err_code(rv), ROUTER_RETRY_MS);
            r->unreachable = true;
        }
        r->retry_ms = now_ms + ROUTER_RETRY_MS;
        return false;
    }
    if (r->unreachable) {
        LOG(LOG_INFO, "broker.reachable", "url=\"%s\"", r->cfg.url);
        r->unreachable = false;
    }
    return true;
}

/* Whether the router may change the broker now (with dry_run it never does, but decides). */
static bool
acting(const struct router *r, uint64_t now_ms)
{
    return r->cfg.dry_run || leader_leading(&r->leader, now_ms);
}

/* One request; 0 when the broker answered ok, else its error code (msg: its text) or the
 * client's. The reply is in r->rep. */
static int
call(struct router *r, struct wire_msg *req, char *msg, size_t msgcap)
{
    struct sl_str m;
    int rv;

    msg[0] = '\0';
    if ((rv = client_call(r->cl, req, &r->rep, r->call_ms)) != 0) {
        snprintf(msg, msgcap, "%s", sl_err_str(rv));
        return rv;
    }
    if ((rv = client_reply_err(&r->rep, &m)) != 0) {
        snprintf(msg, msgcap, "%.*s", (int)m.n, m.p);
    }
    return rv;
}

/* Carries out a; logs the decision and its outcome. Returns 0 to go on with the next action,
 * or the error that ends this round (not_leader, the broker unreachable). */
static int
apply(struct router *r, const struct action *a, uint64_t now_ms)
{
    char what[512], msg[256], q[300];
    struct wire_msg req;

    action_describe(a, what, sizeof(what));
    if (r->cfg.dry_run) {
        LOG(LOG_INFO, "decision", "%s dry_run=1", what);
        return 0;
    }
    action_request(a, r->leader.lease, &req);
    int rv = call(r, &req, msg, sizeof(msg));
    /* Answers that mean the change is in place already: a resent create, a queue destroyed. */
    if ((rv == SL_EEXISTS && a->kind == ACT_QUEUE_CREATE) ||
        (rv == SL_ENOTFOUND && a->kind == ACT_QUEUE_DESTROY)) {
        LOG(LOG_INFO, "decision", "%s lease=%" PRIu64 " result=%s", what, r->leader.lease,
            sl_err_code(rv));
        return 0;
    }
    if (rv == 0) {
        if (WIRE_HAS(&r->rep, WK_MOVED)) {
            LOG(LOG_INFO, "decision", "%s lease=%" PRIu64 " result=ok moved=%" PRIu64, what,
                r->leader.lease, r->rep.v[WK_MOVED].u);
        } else {
            LOG(LOG_INFO, "decision", "%s lease=%" PRIu64 " result=ok", what, r->leader.lease);
        }
        /* Out of memory here only delays the dwell's start to the next snapshot. */
        (void)policy_note(r->policy, a, now_ms);
        return 0;
    }
    /* conflict: the route changed since the policy looked (a person set it): left as it is,
     * and the next snapshot shows it. */
    LOG(rv == SL_ENOTEMPTY || rv == SL_ECONFLICT ? LOG_INFO : LOG_WARN, "decision",
        "%s lease=%" PRIu64 " result=%s msg=%s", what, r->leader.lease, sl_err_code(rv),
        log_quote(q, sizeof(q), msg, (unsigned)strlen(msg)));
    if (rv == SL_ENOTLEADER) {
        leader_lost(&r->leader, msg, now_ms);
        return rv;
    }
    if (rv == SL_ETIMEDOUT || rv == SL_EUNREACHABLE) {
        return rv;
    }
    return 0; /* refused on its own (e.g. not_empty: a job came in); next round sees it again */
}

/* Whether a stop was signalled (the self-pipe is readable; the byte is left for the loop). */
static bool
stop_pending(const struct router *r)
{
    struct pollfd pfd = { r->stop_fd, POLLIN, 0 };
    return r->stop_fd >= 0 && poll(&pfd, 1, 0) > 0;
}

/* Carries out r->acts in order, renewing the lease as it goes (a round of thousands of groups
 * switching at once may outlast a renewal period), and logs the round. Stops at the first
 * error that ends a round, or a stop signal. Returns 0 when every action was applied. */
static int
apply_all(struct router *r, const char *cause, uint64_t t0_us, size_t ngroups, size_t nqueues)
{
    size_t done = 0;
    int rv = 0;

    for (; done < r->acts.n && rv == 0; done++) {
        uint64_t now = clock_mono_ms();
        if (!r->cfg.dry_run && now >= r->leader.next_ms &&
            (leader_step(&r->leader, r->cl, now) == LEADER_LOST ||
             !leader_leading(&r->leader, now))) {
            rv = SL_ENOTLEADER;
            break;
        }
        if (done % 64 == 63 && stop_pending(r)) {
            rv = SL_ETIMEDOUT;
            break;
        }
        rv = apply(r, &r->acts.v[done], now);
    }
    LOG(r->acts.n > 0 ? LOG_INFO : LOG_DEBUG, "round",
        "cause=%s groups=%zu queues=%zu actions=%zu applied=%zu ms=%.3f", cause, ngroups,
        nqueues, r->acts.n, done, (double)(clock_mono_us() - t0_us) / 1e3);
    return rv;
}

/* One round: a snapshot, the policy's decisions, their application. Returns 0 when the round
 * ran to the end. */
static int
round_run(struct router *r)
{
    const char *cause = "tick";
    uint64_t t0 = clock_mono_us();
    char msg[256], why[160];
    struct wire_msg req;
    int rv;

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "stats");
    if ((rv = call(r, &req, msg, sizeof(msg))) != 0) {
        LOG(LOG_WARN, "snapshot.failed", "cause=%s err=%s msg=\"%s\"", cause, sl_err_code(rv),
            msg);
        return rv;
    }
    uint64_t now_ms = clock_mono_ms();
    if ((rv = snapshot_decode(&r->snap, &r->rep, now_ms, why, sizeof(why))) != 0) {
        LOG(LOG_WARN, "snapshot.bad", "cause=%s reason=\"%s\"", cause, why);
        return rv;
    }
    if ((rv = policy_decide(r->policy, &r->snap.s, &r->acts)) != 0) {
        LOG(LOG_ERROR, "policy.failed", "cause=%s err=%s", cause, sl_err_code(rv));
        return rv;
    }
    /* The snapshot's views die with the next request; the actions hold their own copies. */
    size_t ngroups = r->snap.s.ngroups, nqueues = r->snap.s.nqueues;
    memset(&r->snap.s, 0, sizeof(r->snap.s));
    return apply_all(r, cause, t0, ngroups, nqueues);
}

/* A group crossed --high (the broker's group.high): the policy's reaction, applied at once,
 * without a snapshot, so the time it takes does not grow with the number of groups. */
static void
react(struct router *r, struct sl_str group, uint64_t count)
{
    uint64_t t0 = clock_mono_us(), now = clock_mono_ms();

    if (!acting(r, now)) {
        LOG(LOG_DEBUG, "group.high", "group=%.*s count=%" PRIu64 " react=0 reason=standby",
            (int)group.n, group.p, count);
        return;
    }
    if (policy_react(r->policy, group, count, now, &r->acts) != 0) {
        LOG(LOG_ERROR, "policy.failed", "cause=group.high err=%s", sl_err_code(SL_ENOMEM));
        return;
    }
    LOG(r->acts.n > 0 ? LOG_INFO : LOG_DEBUG, "group.high",
        "group=%.*s count=%" PRIu64 " react=%d", (int)group.n, group.p, count, r->acts.n > 0);
    if (r->acts.n > 0) {
        apply_all(r, "group.high", t0, 1, 0);
    }
}

/* Drains the events waiting, reacting to each group crossing --high. A standby also learns
 * here that the leader let go. */
static void
drain_events(struct router *r)
{
    struct wire_msg ev;

    wire_msg_init(&ev);
    for (int i = 0; i < ROUTER_EVENTS_MAX; i++) {
        int rv = evsub_recv(r->ev, &ev, 0);
        if (rv == SL_ETIMEDOUT || rv == SL_EIO) {
            break;
        }
        if (rv != 0) {
            continue;
        }
        struct sl_str name = ev.v[WK_EVENT].s;
        if (sl_str_eq(name, "group.high") && WIRE_HAS(&ev, WK_GROUP) && WIRE_HAS(&ev, WK_N)) {
            if (r->cl != NULL) {
                react(r, ev.v[WK_GROUP].s, ev.v[WK_N].u);
            }
        } else if (sl_str_eq(name, "lease.release") && !r->cfg.dry_run &&
                   !r->leader.leading) {
            r->leader.next_ms = clock_mono_ms(); /* the lease is free: take it now, not at the lapse */
        }
    }
    wire_msg_fini(&ev);
}

/* Sleeps until due_ms, a stop, or an event. Returns 1 on stop, 0 otherwise. */
static int
wait_until(struct router *r, int stop_fd, uint64_t due_ms, bool *ev_ready)
{
    struct pollfd fds[2] = { { stop_fd, POLLIN, 0 }, { r->ev_fd, POLLIN, 0 } };
    uint64_t now = clock_mono_ms();
    int timeout = due_ms <= now ? 0 : due_ms - now > 60000 ? 60000 : (int)(due_ms - now);

    *ev_ready = false;
    int n = poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) {
        LOG(LOG_ERROR, "poll", "error=\"%s\"", strerror(errno));
        return 1;
    }
    if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        return 1;
    }
    *ev_ready = n > 0 && (fds[1].revents & POLLIN);
    return 0;
}

int
router_run(struct router *r, int stop_fd)
{
    uint64_t next_tick = clock_mono_ms();
    bool ev_ready = false;
    int status = 1;

    r->stop_fd = stop_fd;
    LOG(LOG_INFO, "start",
        "name=%s policy=%s url=\"%s\" events=\"%s\" tick_ms=%" PRIu64 " high=%" PRIu64
        " low=%" PRIu64 " priority=%" PRIu64 " max_inflight=%" PRIu64 " heavy_weight=%g"
        " min_dwell_ms=%" PRIu64 " lease_ttl_ms=%" PRIu64 " dry_run=%d once=%d pid=%d",
        r->cfg.name, r->cfg.policy, r->cfg.url, r->cfg.events_url, r->cfg.tick_ms,
        r->cfg.pcfg.high, r->cfg.pcfg.low, r->cfg.pcfg.priority, r->cfg.pcfg.max_inflight,
        r->cfg.pcfg.heavy_weight, r->cfg.pcfg.min_dwell_ms, r->cfg.ttl_ms, r->cfg.dry_run,
        r->cfg.once, (int)getpid());
    for (;;) {
        uint64_t now = clock_mono_ms();
        bool up = connected(r, now);
        if (up && !r->cfg.dry_run && leader_step(&r->leader, r->cl, now) == LEADER_GAINED) {
            /* What this router saw before it led may be stale: start from the broker's state. */
            policy_reset(r->policy);
            next_tick = now;
        }
        now = clock_mono_ms();
        if (ev_ready) {
            drain_events(r);
            now = clock_mono_ms();
        }
        if (now >= next_tick) {
            if (up && acting(r, now)) {
                status = round_run(r) == 0 ? 0 : 1;
            } else if (r->cfg.once) {
                LOG(LOG_WARN, "once.skipped",
                    "reason=\"%s\"", up ? "another router holds the lease"
                                        : "the broker cannot be reached");
            }
            if (r->cfg.once) {
                break;
            }
            next_tick = now + r->cfg.tick_ms;
        }
        uint64_t due = next_tick;
        if (!r->cfg.dry_run && r->leader.next_ms < due) {
            due = r->leader.next_ms;
        }
        if (!up && r->retry_ms < due) {
            due = r->retry_ms;
        }
        if (wait_until(r, stop_fd, due, &ev_ready) != 0) {
            LOG(LOG_INFO, "stop", "name=%s", r->cfg.name);
            status = 0;
            break;
        }
    }
    return status;
}
