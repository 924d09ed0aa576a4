/* A msgpack reader: a cursor over a buffer that reads one value at a time, in place, with no
 * allocation. For hot paths where decoding into msgpack-c objects (wire_decode) would allocate
 * a zone per message: a worker's reserve replies, a pipe handler's frames.
 *
 * Every read checks the bytes that remain, so any input is safe; still, run wire_check on
 * untrusted input first when a message must be rejected as a whole. Strings and blobs are views
 * into the buffer (not NUL-terminated), valid while the buffer is. A read that finds another
 * type, or too few bytes, returns false and leaves the cursor where it was, so the caller can
 * mpr_skip the value or give up. Non-negative signed integers read as unsigned, as msgpack-c
 * decodes them. */
#ifndef SLUICE_MPR_H
#define SLUICE_MPR_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mpr {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last byte */
};

void mpr_init(struct mpr *r, const void *buf, size_t len);

/* Bytes not yet read. */
size_t mpr_left(const struct mpr *r);

/* A map header: *n pairs follow (key, value, key, value...). */
bool mpr_map(struct mpr *r, uint32_t *n);

/* An array header: *n values follow. */
bool mpr_array(struct mpr *r, uint32_t *n);

/* A non-negative integer. */
bool mpr_u64(struct mpr *r, uint64_t *v);

bool mpr_bool(struct mpr *r, bool *v);

/* A str. */
bool mpr_str(struct mpr *r, struct sl_str *s);

/* A bin or a str (a payload). */
bool mpr_blob(struct mpr *r, struct sl_str *s);

/* Skips one whole value, containers included (iteratively: no recursion, any depth). False
 * when it is truncated or malformed; the cursor is then unchanged. */
bool mpr_skip(struct mpr *r);

#endif
