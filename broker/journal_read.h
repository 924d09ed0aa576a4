/* Reading a journal record's fields (journal_int.h has the record layouts): each reader takes
 * its bytes from the front of a struct rd and marks it bad, returning 0 or "", when they are
 * not there or not valid, so that a record's fields can be read in a row and checked once. */
#ifndef SLUICE_JOURNAL_READ_H
#define SLUICE_JOURNAL_READ_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rd {
    const uint8_t *p;
    size_t n;
    bool bad;
};

static inline uint64_t
r_le(struct rd *r, unsigned bytes)
{
    if (r->bad || r->n < bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        v |= (uint64_t)r->p[i] << (8 * i);
    }
    r->p += bytes;
    r->n -= bytes;
    return v;
}

static inline struct sl_str
r_str(struct rd *r, unsigned lenbytes)
{
    uint32_t n = (uint32_t)r_le(r, lenbytes);
    if (r->bad || r->n < n) {
        r->bad = true;
        return (struct sl_str){ "", 0 };
    }
    struct sl_str s = { (const char *)r->p, n };
    r->p += n;
    r->n -= n;
    return s;
}

/* A time in milliseconds since the epoch, as wall_ms() wrote it: bad unless it is between 0
 * and REPLAY_MS_MAX, so that converting it to nanoseconds and between the clocks cannot
 * overflow (a damaged record whose checksum still matches must not make replay undefined). */
#define REPLAY_MS_MAX (INT64_MAX / 1000000 / 2) /* about the year 2116 */

static inline int64_t
r_ms(struct rd *r)
{
    uint64_t v = r_le(r, 8);
    if (v > (uint64_t)REPLAY_MS_MAX) {
        r->bad = true;
        return 0;
    }
    return (int64_t)v;
}

/* A queue, group or client name: bad unless it obeys the wire's name rule. */
static inline struct sl_str
r_name(struct rd *r)
{
    struct sl_str s = r_str(r, 2);
    if (!r->bad && !wire_name_ok(s.p, s.n)) {
        r->bad = true;
    }
    return s;
}

#endif
