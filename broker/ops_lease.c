/* The ops of the router's lease: lease.acquire, lease.renew and lease.release. */
#include "err.h"
#include "log.h"
#include "ops_int.h"

#include <stdio.h>

static int
lease_refused(struct broker *b, struct op_ctx *c)
{
    snprintf(c->why, WHY_MAX, "the lease is held by %s for %lld ms more", b->lease.holder,
             (long long)((b->lease.expires_ns - broker_mono_ns(b)) / 1000000));
    return SL_ENOTLEADER;
}

static int
check_ttl(const struct wire_msg *req, struct op_ctx *c)
{
    uint64_t ttl = req->v[WK_TTL_MS].u;
    if (ttl < LEASE_TTL_MIN_MS || ttl > LEASE_TTL_MAX_MS) {
        snprintf(c->why, WHY_MAX, "'ttl_ms' must be %u to %u", LEASE_TTL_MIN_MS, LEASE_TTL_MAX_MS);
        return SL_EBADREQ;
    }
    return 0;
}

static void
emit_lease(struct broker *b, const char *event, const struct wire_msg *req, uint64_t number)
{
    struct wire_msg ev;
    if (b->events == NULL) {
        return;
    }
    wire_msg_init(&ev);
    ev.v[WK_NAME] = req->v[WK_NAME];
    wire_keyset_add(&ev.has, WK_NAME);
    wire_set_u64(&ev, WK_LEASE, number);
    events_emit(b->events, event, &ev, (uint64_t)(broker_wall_ns(b) / 1000000));
}

int
op_lease_acquire(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
                 struct op_ctx *c)
{
    uint64_t number, before = b->lease.number;
    bool was_held = lease_held(&b->lease, broker_mono_ns(b));
    int rv = check_ttl(req, c);

    if (rv != 0) {
        return rv;
    }
    rv = lease_acquire(&b->lease, req->v[WK_NAME].s, req->v[WK_TTL_MS].u, broker_mono_ns(b),
                       (uint64_t)(broker_wall_ns(b) / 1000000), &number);
    if (rv == SL_ENOTLEADER) {
        return lease_refused(b, c);
    }
    if (rv != 0) {
        return rv;
    }
    if (WIRE_HAS(req, WK_HIGH)) {
        b->lease.high = req->v[WK_HIGH].u;
    }
    if (!was_held || number != before) {
        LOG(LOG_INFO, "lease.acquire", "holder=%s lease=%llu ttl_ms=%llu", b->lease.holder,
            (unsigned long long)number, (unsigned long long)req->v[WK_TTL_MS].u);
        emit_lease(b, "lease.acquire", req, number);
    }
    wire_pack_ok(pk, 2);
    key_u64(pk, WK_LEASE, number);
    key_u64(pk, WK_TTL_MS, req->v[WK_TTL_MS].u);
    return 0;
}

int
op_lease_renew(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    int rv = check_ttl(req, c);
    if (rv != 0) {
        return rv;
    }
    if (lease_renew(&b->lease, req->v[WK_NAME].s, req->v[WK_LEASE].u, req->v[WK_TTL_MS].u,
                    broker_mono_ns(b)) != 0) {
        if (lease_held(&b->lease, broker_mono_ns(b))) {
            return lease_refused(b, c);
        }
        snprintf(c->why, WHY_MAX, "lease %llu has lapsed", (unsigned long long)req->v[WK_LEASE].u);
        return SL_ENOTLEADER;
    }
    if (WIRE_HAS(req, WK_HIGH)) {
        b->lease.high = req->v[WK_HIGH].u;
    }
    wire_pack_ok(pk, 1);
    key_u64(pk, WK_LEASE, req->v[WK_LEASE].u);
    return 0;
}

int
op_lease_release(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
                 struct op_ctx *c)
{
    if (lease_release(&b->lease, req->v[WK_NAME].s, req->v[WK_LEASE].u) != 0) {
        snprintf(c->why, WHY_MAX, "lease %llu is not held by that name",
                 (unsigned long long)req->v[WK_LEASE].u);
        return SL_ENOTLEADER;
    }
    LOG(LOG_INFO, "lease.release", "holder=%.*s lease=%llu", (int)req->v[WK_NAME].s.n,
        req->v[WK_NAME].s.p, (unsigned long long)req->v[WK_LEASE].u);
    emit_lease(b, "lease.release", req, req->v[WK_LEASE].u);
    wire_pack_ok(pk, 0);
    return 0;
}
