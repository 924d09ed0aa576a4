#include "decisions.h"

#include <string.h>

static void
copy(char *dst, size_t cap, struct sl_str s)
{
    size_t n = s.n < cap ? s.n : cap;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

void
decisions_add(struct decisions *d, int64_t ts_ms, struct sl_str group,
              const struct sl_str *queue, uint64_t moved, const struct sl_str *reason,
              const uint64_t *lease)
{
    struct decision *e = &d->ring[d->next];
    memset(e, 0, sizeof(*e));
    e->ts_ms = ts_ms;
    copy(e->group, WIRE_NAME_MAX, group);
    if (queue != NULL) {
        copy(e->queue, WIRE_NAME_MAX, *queue);
        e->has_queue = true;
    }
    if (reason != NULL) {
        copy(e->reason, DECISION_REASON_MAX, *reason);
        e->has_reason = true;
    }
    if (lease != NULL) {
        e->lease = *lease;
        e->has_lease = true;
    }
    e->moved = moved;
    d->next = (d->next + 1u) % DECISIONS_MAX;
    if (d->n < DECISIONS_MAX) {
        d->n++;
    }
}

const struct decision *
decisions_get(const struct decisions *d, uint32_t i)
{
    if (i >= d->n) {
        return NULL;
    }
    return &d->ring[(d->next + DECISIONS_MAX - 1u - i) % DECISIONS_MAX];
}
