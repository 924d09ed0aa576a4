#include "lease.h"

#include "err.h"

#include <string.h>

static bool
is_holder(const struct lease *l, struct sl_str holder)
{
    return strlen(l->holder) == holder.n && memcmp(l->holder, holder.p, holder.n) == 0;
}

bool
lease_held(const struct lease *l, int64_t now_ns)
{
    return l->held && now_ns < l->expires_ns;
}

int
lease_acquire(struct lease *l, struct sl_str holder, uint64_t ttl_ms, int64_t now_ns,
              uint64_t wall_ms, uint64_t *number)
{
    if (holder.n > WIRE_NAME_MAX) {
        return SL_EBADREQ;
    }
    if (lease_held(l, now_ns) && !is_holder(l, holder)) {
        return SL_ENOTLEADER;
    }
    if (!lease_held(l, now_ns)) {
        l->number = l->number + 1 > wall_ms ? l->number + 1 : wall_ms;
        memcpy(l->holder, holder.p, holder.n);
        l->holder[holder.n] = '\0';
        l->held = true;
    }
    l->expires_ns = now_ns + (int64_t)ttl_ms * 1000000;
    *number = l->number;
    return 0;
}

int
lease_renew(struct lease *l, struct sl_str holder, uint64_t number, uint64_t ttl_ms,
            int64_t now_ns)
{
    if (!lease_valid(l, number, now_ns) || !is_holder(l, holder)) {
        return SL_ENOTLEADER;
    }
    l->expires_ns = now_ns + (int64_t)ttl_ms * 1000000;
    return 0;
}

int
lease_release(struct lease *l, struct sl_str holder, uint64_t number)
{
    if (!l->held || l->number != number || !is_holder(l, holder)) {
        return SL_ENOTLEADER;
    }
    l->held = false;
    l->high = 0;
    return 0;
}

bool
lease_valid(const struct lease *l, uint64_t number, int64_t now_ns)
{
    return lease_held(l, now_ns) && number == l->number;
}
