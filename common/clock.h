/* The monotonic clock, for durations and deadlines (never for timestamps: those are wall
 * clock). */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline uint64_t
clock_mono_us(void)
{
    return (uint64_t)clock_mono_ns() / 1000u;
}

static inline uint64_t
clock_mono_ms(void)
{
    return (uint64_t)clock_mono_ns() / 1000000u;
}

/* The wall-clock time ns from now, as pthread_cond_timedwait takes its deadline. */
static inline struct timespec
clock_real_after(int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + ns;
    ts.tv_sec = (time_t)(t / 1000000000LL);
    ts.tv_nsec = (long)(t % 1000000000LL);
    return ts;
}

#endif
