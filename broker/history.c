#include "history.h"

const char *const history_series_names[HIST_NSERIES] = {
    [HIST_PUSHED] = "pushed",
    [HIST_DONE] = "done",
    [HIST_FAILED] = "failed",
    [HIST_DISPATCHED] = "dispatched",
};

void
history_sample(struct history *h, int64_t now_s, const uint64_t tot[HIST_NSERIES])
{
    if (!h->sampled) {
        /* The first sample: everything before it counts as before the ring. */
        for (uint32_t i = 0; i < HISTORY_SECONDS; i++) {
            for (int k = 0; k < HIST_NSERIES; k++) {
                h->tot[i][k] = tot[k];
            }
        }
        h->last_s = now_s;
        h->head = 0;
        h->sampled = true;
        return;
    }
    if (now_s > h->last_s) {
        /* Seconds without a sample changed nothing: they carry the last totals forward. */
        int64_t gap = now_s - h->last_s;
        uint32_t steps = gap >= HISTORY_SECONDS ? HISTORY_SECONDS : (uint32_t)gap;
        const uint32_t prev = h->head;
        for (uint32_t i = 1; i < steps; i++) {
            uint32_t slot = (prev + i) % HISTORY_SECONDS;
            for (int k = 0; k < HIST_NSERIES; k++) {
                h->tot[slot][k] = h->tot[prev][k];
            }
        }
        h->head = (prev + steps) % HISTORY_SECONDS;
        h->last_s = now_s;
    }
    for (int k = 0; k < HIST_NSERIES; k++) {
        h->tot[h->head][k] = tot[k];
    }
}

/* The totals as of the end of second t (t <= last_s, within the ring). */
static uint64_t
total_at(const struct history *h, int64_t t, enum history_series s)
{
    uint32_t back = (uint32_t)(h->last_s - t);
    return h->tot[(h->head + HISTORY_SECONDS - back) % HISTORY_SECONDS][s];
}

uint64_t
history_delta(const struct history *h, int64_t now_s, uint32_t n, enum history_series s)
{
    int64_t t = now_s - (int64_t)n;
    if (!h->sampled || n > HISTORY_SECONDS - 2 || (unsigned)s >= HIST_NSERIES) {
        return 0;
    }
    /* After the last sample nothing was counted (see history.h). */
    if (t > h->last_s || t - 1 < h->last_s - (HISTORY_SECONDS - 1)) {
        return 0;
    }
    uint64_t a = total_at(h, t, s), z = total_at(h, t - 1, s);
    return a > z ? a - z : 0;
}
