/* wire_check (wire.h): the bounds check every message's bytes pass before msgpack-c sees
 * them. msgpack-c allocates from the counts an array or map declares before it reads their
 * elements; this walk, which allocates nothing, refuses counts the bytes cannot hold and
 * nesting past WIRE_DEPTH_MAX. */
#include "wire.h"

#include "err.h"

#include <stdint.h>

static uint64_t
be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

int
wire_check(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t left[WIRE_DEPTH_MAX + 1];
    size_t off = 0;
    int d = 0;

    left[0] = 1;
    while (d >= 0) {
        if (left[d] == 0) {
            d--;
            continue;
        }
        left[d]--;
        if (off >= len) {
            return SL_EBADREQ;
        }
        unsigned b = p[off++];
        uint64_t skip = 0, count = 0;
        int lenbytes = 0, mul = 0; /* mul: elements per count (1 array, 2 map), 0 scalar */

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            skip = 0;
        } else if (b <= 0x8f) { /* the tests run in order: 0x80-0x8f here */
            count = b & 0x0f, mul = 2;
        } else if (b <= 0x9f) {
            count = b & 0x0f, mul = 1;
        } else if (b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1, skip = 1; break; /* ext: length, then a type byte */
            case 0xc8: lenbytes = 2, skip = 1; break;
            case 0xc9: lenbytes = 4, skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: lenbytes = 2, mul = 1; break;
            case 0xdd: lenbytes = 4, mul = 1; break;
            case 0xde: lenbytes = 2, mul = 2; break;
            case 0xdf: lenbytes = 4, mul = 2; break;
            default: return SL_EBADREQ; /* 0xc1 is never used */
            }
            if (lenbytes > 0) {
                if ((size_t)lenbytes > len - off) {
                    return SL_EBADREQ;
                }
                uint64_t v = be(p + off, lenbytes);
                off += (size_t)lenbytes;
                if (mul > 0) {
                    count = v;
                } else {
                    skip += v;
                }
            }
        }
        if (mul > 0) {
            /* Every element takes at least one byte. */
            if (count > (len - off) / (uint64_t)mul) {
                return SL_EBADREQ;
            }
            /* An empty container counts as a level too. */
            if (d + 1 > WIRE_DEPTH_MAX) {
                return SL_EBADREQ;
            }
            if (count > 0) {
                left[++d] = count * (uint64_t)mul;
            }
        } else {
            if (skip > len - off) {
                return SL_EBADREQ;
            }
            off += (size_t)skip;
        }
    }
    return off == len ? 0 : SL_EBADREQ;
}
