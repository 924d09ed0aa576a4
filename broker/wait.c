#include "wait.h"

#include <stddef.h>

const uint32_t wait_bounds_ms[WAIT_NBOUNDS] = { 1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 60000 };

uint32_t
wait_hist_bucket(uint64_t wait_us)
{
    uint32_t i = 0;
    /* Prometheus buckets are "less than or equal": 1000 us is in le="0.001". */
    while (i < WAIT_NBOUNDS && wait_us > (uint64_t)wait_bounds_ms[i] * 1000u) {
        i++;
    }
    return i;
}

void
wait_hist_add(struct wait_hist *h, uint64_t wait_us)
{
    h->buckets[wait_hist_bucket(wait_us)]++;
    h->sum_us += wait_us;
    h->count++;
}

/* Bucket 0: below 128 us. Then two per octave from 2^7 us: for 2^k <= us < 2^(k+1), the bit
 * below the leading one picks the half. The last bucket takes everything above. */
static uint32_t
window_bucket(uint64_t us)
{
    if (us < 128u) {
        return 0;
    }
    uint32_t k = 63u - (uint32_t)__builtin_clzll(us);
    uint32_t i = 1u + (k - 7u) * 2u + (uint32_t)((us >> (k - 1u)) & 1u);
    return i < WAIT_WINDOW_BUCKETS ? i : WAIT_WINDOW_BUCKETS - 1u;
}

void
wait_window_range(uint32_t i, uint64_t *lo_us, uint64_t *hi_us)
{
    if (i == 0) {
        *lo_us = 0;
        *hi_us = 128;
        return;
    }
    uint32_t k = 7u + (i - 1u) / 2u;
    uint64_t base = UINT64_C(1) << k;
    if ((i - 1u) % 2u == 0) {
        *lo_us = base;
        *hi_us = base + base / 2u;
    } else {
        *lo_us = base + base / 2u;
        *hi_us = base * 2u;
    }
    if (i == WAIT_WINDOW_BUCKETS - 1u) {
        *hi_us = UINT64_MAX;
    }
}

void
wait_window_add(struct wait_window *w, int64_t now_ns, uint64_t wait_us)
{
    int64_t e = now_ns / WAIT_WINDOW_NS;
    if (e != w->epoch) {
        uint8_t old = (uint8_t)(w->cur ^ 1u);
        for (uint32_t i = 0; i < WAIT_WINDOW_BUCKETS; i++) {
            w->n[old][i] = 0;
        }
        if (e != w->epoch + 1) {
            /* More than a window went by: the current one is too old as well. */
            for (uint32_t i = 0; i < WAIT_WINDOW_BUCKETS; i++) {
                w->n[w->cur][i] = 0;
            }
        }
        w->cur = old;
        w->epoch = e;
    }
    uint32_t *c = &w->n[w->cur][window_bucket(wait_us)];
    if (*c < UINT32_MAX) {
        (*c)++;
    }
}

/* The windows that count as of now_ns: both, only the current one (now the previous), or
 * none. */
static void
live(const struct wait_window *w, int64_t now_ns, const uint32_t **a, const uint32_t **b)
{
    int64_t e = now_ns / WAIT_WINDOW_NS;
    *a = *b = NULL;
    if (e == w->epoch) {
        *a = w->n[w->cur];
        *b = w->n[w->cur ^ 1u];
    } else if (e == w->epoch + 1) {
        *a = w->n[w->cur];
    }
}

uint64_t
wait_window_count(const struct wait_window *w, int64_t now_ns)
{
    const uint32_t *a, *b;
    uint64_t n = 0;
    live(w, now_ns, &a, &b);
    for (uint32_t i = 0; i < WAIT_WINDOW_BUCKETS; i++) {
        n += (uint64_t)(a != NULL ? a[i] : 0u) + (b != NULL ? b[i] : 0u);
    }
    return n;
}

bool
wait_window_quantile(const struct wait_window *w, int64_t now_ns, double q, double *ms)
{
    const uint32_t *a, *b;
    uint64_t total = wait_window_count(w, now_ns);
    if (total == 0 || !(q > 0.0) || q > 1.0) {
        return false;
    }
    live(w, now_ns, &a, &b);
    /* The smallest bucket whose cumulative count reaches rank ceil(q * total). */
    uint64_t rank = (uint64_t)(q * (double)total);
    if ((double)rank < q * (double)total) {
        rank++;
    }
    if (rank == 0) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (uint32_t i = 0; i < WAIT_WINDOW_BUCKETS; i++) {
        seen += (uint64_t)(a != NULL ? a[i] : 0u) + (b != NULL ? b[i] : 0u);
        if (seen >= rank) {
            uint64_t lo, hi;
            wait_window_range(i, &lo, &hi);
            /* The last bucket has no upper end: its lower bound is all that is known. */
            double mid = hi == UINT64_MAX ? (double)lo : ((double)lo + (double)hi) / 2.0;
            *ms = mid / 1000.0;
            return true;
        }
    }
    return false;
}
