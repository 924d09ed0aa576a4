#include "ratelimit.h"

/* One token in level units; rate_milli units per nanosecond are 10^-12 token per ns each. */
#define TOKEN UINT64_C(1000000000000)

uint32_t
rate_burst_default(uint64_t rate_milli)
{
    uint64_t second = rate_milli / 1000u;
    if (second < 1) {
        return 1;
    }
    return second > RATE_BURST_MAX ? RATE_BURST_MAX : (uint32_t)second;
}

void
rate_bucket_init(struct rate_bucket *rb, uint64_t rate_milli, uint32_t burst, int64_t now_ns)
{
    rb->rate_milli = rate_milli;
    rb->burst = burst;
    rb->level = (uint64_t)burst * TOKEN;
    rb->stamp_ns = now_ns;
}

/* Adds what accrued since the stamp, capped at burst. The product cannot overflow: the
 * elapsed time is first capped at what fills the bucket (burst * TOKEN <= 10^18). */
static void
bring_up(struct rate_bucket *rb, int64_t now_ns)
{
    if (now_ns <= rb->stamp_ns) {
        return;
    }
    uint64_t cap = (uint64_t)rb->burst * TOKEN;
    uint64_t room = cap - rb->level;
    uint64_t elapsed = (uint64_t)(now_ns - rb->stamp_ns);
    if (elapsed >= room / rb->rate_milli + 1) {
        rb->level = cap;
    } else {
        rb->level += elapsed * rb->rate_milli;
        if (rb->level > cap) {
            rb->level = cap;
        }
    }
    rb->stamp_ns = now_ns;
}

uint32_t
rate_bucket_take(struct rate_bucket *rb, int64_t now_ns, uint32_t want)
{
    bring_up(rb, now_ns);
    uint64_t have = rb->level / TOKEN;
    uint32_t n = have < want ? (uint32_t)have : want;
    rb->level -= (uint64_t)n * TOKEN;
    return n;
}

uint32_t
rate_bucket_tokens(struct rate_bucket *rb, int64_t now_ns)
{
    bring_up(rb, now_ns);
    return (uint32_t)(rb->level / TOKEN);
}

int64_t
rate_bucket_due_ns(const struct rate_bucket *rb)
{
    if (rb->level >= TOKEN) {
        return rb->stamp_ns;
    }
    uint64_t missing = TOKEN - rb->level;
    return rb->stamp_ns + (int64_t)((missing + rb->rate_milli - 1) / rb->rate_milli);
}
