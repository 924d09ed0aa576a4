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

#endif
