/* A token bucket: the arithmetic of a group's start rate (grate.h), exact and without
 * floating point. Tokens accrue at rate_milli thousandths of a token per second up to burst
 * whole tokens; one token is spent per job started. The level is kept in units of 10^-12
 * token, so that one nanosecond at any rate adds a whole number of units and no fraction of
 * a token is ever lost to rounding.
 * No I/O, no locking: the caller owns the bucket. */
#ifndef SLUICE_RATELIMIT_H
#define SLUICE_RATELIMIT_H

#include <stdint.h>

#define RATE_MILLI_MIN 1u                        /* 0.001 jobs/s */
#define RATE_MILLI_MAX UINT64_C(1000000000)      /* 1,000,000 jobs/s */
#define RATE_BURST_MAX 1000000u

struct rate_bucket {
    uint64_t rate_milli;           /* thousandths of a token per second; RATE_MILLI_MIN..MAX */
    uint32_t burst;                /* the most whole tokens held; 1..RATE_BURST_MAX */
    uint64_t level;                /* tokens held, in 10^-12 token; at most burst tokens */
    int64_t stamp_ns;              /* monotonic time the level was last brought up to date */
};

/* The burst a rate gets when none is given: one second's worth, at least 1. */
uint32_t rate_burst_default(uint64_t rate_milli);

/* Sets rb to rate_milli and burst (both in range), full, as of now_ns. */
void rate_bucket_init(struct rate_bucket *rb, uint64_t rate_milli, uint32_t burst,
                      int64_t now_ns);

/* Brings rb up to now_ns and spends up to want whole tokens. Returns how many it spent. A
 * clock that went back adds nothing. */
uint32_t rate_bucket_take(struct rate_bucket *rb, int64_t now_ns, uint32_t want);

/* Whole tokens rb holds at now_ns (brought up to date). */
uint32_t rate_bucket_tokens(struct rate_bucket *rb, int64_t now_ns);

/* The monotonic time at which rb next holds a whole token: its stamp when it holds one
 * already. */
int64_t rate_bucket_due_ns(const struct rate_bucket *rb);

#endif
