#include "mpr.h"

static uint64_t
be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

void
mpr_init(struct mpr *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = r->p + len;
}

size_t
mpr_left(const struct mpr *r)
{
    return (size_t)(r->end - r->p);
}

/* The value at p: hdr header bytes (type byte and length), then body bytes of data, then
 * kids nested values (array elements, map keys and values). False if the header is truncated
 * or the type byte is never used (0xc1). */
static bool
head(const uint8_t *p, const uint8_t *end, size_t *hdr, uint64_t *body, uint64_t *kids)
{
    static const struct {
        uint8_t lenbytes; /* bytes of length after the type byte */
        uint8_t fixed;    /* bytes of data besides the length */
        uint8_t mul;      /* 0: the length counts bytes; 1: array elements; 2: map pairs */
    } ext[32] = {
        /* 0xc0 nil, 0xc1 unused, 0xc2 false, 0xc3 true */
        [0x04] = { 1, 0, 0 }, [0x05] = { 2, 0, 0 }, [0x06] = { 4, 0, 0 }, /* bin 8/16/32 */
        [0x07] = { 1, 1, 0 }, [0x08] = { 2, 1, 0 }, [0x09] = { 4, 1, 0 }, /* ext 8/16/32 */
        [0x0a] = { 0, 4, 0 }, [0x0b] = { 0, 8, 0 },                       /* float 32/64 */
        [0x0c] = { 0, 1, 0 }, [0x0d] = { 0, 2, 0 }, [0x0e] = { 0, 4, 0 }, [0x0f] = { 0, 8, 0 },
        [0x10] = { 0, 1, 0 }, [0x11] = { 0, 2, 0 }, [0x12] = { 0, 4, 0 }, [0x13] = { 0, 8, 0 },
        [0x14] = { 0, 2, 0 }, [0x15] = { 0, 3, 0 }, [0x16] = { 0, 5, 0 }, [0x17] = { 0, 9, 0 },
        [0x18] = { 0, 17, 0 },                                            /* fixext 1-16 */
        [0x19] = { 1, 0, 0 }, [0x1a] = { 2, 0, 0 }, [0x1b] = { 4, 0, 0 }, /* str 8/16/32 */
        [0x1c] = { 2, 0, 1 }, [0x1d] = { 4, 0, 1 },                       /* array 16/32 */
        [0x1e] = { 2, 0, 2 }, [0x1f] = { 4, 0, 2 },                       /* map 16/32 */
    };

    if (p >= end) {
        return false;
    }
    unsigned b = *p;
    *hdr = 1;
    *body = 0;
    *kids = 0;
    if (b <= 0x7f || b >= 0xe0) {
        return true; /* fixint */
    }
    if (b <= 0x8f) {
        *kids = 2u * (b & 0x0f);
        return true;
    }
    if (b <= 0x9f) {
        *kids = b & 0x0f;
        return true;
    }
    if (b <= 0xbf) {
        *body = b & 0x1f;
        return true;
    }
    if (b == 0xc1) {
        return false;
    }
    unsigned lb = ext[b - 0xc0].lenbytes;
    if ((size_t)(end - p) - 1 < lb) {
        return false;
    }
    uint64_t len = be(p + 1, lb);
    *hdr = 1 + lb;
    if (ext[b - 0xc0].mul > 0) {
        *kids = len * ext[b - 0xc0].mul;
    } else {
        *body = len + ext[b - 0xc0].fixed;
    }
    return true;
}

bool
mpr_skip(struct mpr *r)
{
    const uint8_t *p = r->p;
    uint64_t need = 1;

    while (need > 0) {
        size_t hdr;
        uint64_t body, kids;
        if (!head(p, r->end, &hdr, &body, &kids)) {
            return false;
        }
        size_t left = (size_t)(r->end - p) - hdr;
        if (body > left) {
            return false;
        }
        p += hdr + body;
        left -= (size_t)body;
        /* Every nested value takes at least one byte: this bounds need by the input size. */
        if (kids > left || need - 1 + kids > left) {
            return false;
        }
        need = need - 1 + kids;
    }
    r->p = p;
    return true;
}

static bool
container(struct mpr *r, uint32_t *n, unsigned fix_lo, unsigned b16, unsigned b32)
{
    if (r->p >= r->end) {
        return false;
    }
    unsigned b = r->p[0];
    size_t left = (size_t)(r->end - r->p);
    if (b >= fix_lo && b <= fix_lo + 0x0f) {
        *n = b & 0x0f;
        r->p += 1;
        return true;
    }
    if (b == b16 && left >= 3) {
        *n = (uint32_t)be(r->p + 1, 2);
        r->p += 3;
        return true;
    }
    if (b == b32 && left >= 5) {
        *n = (uint32_t)be(r->p + 1, 4);
        r->p += 5;
        return true;
    }
    return false;
}

bool
mpr_map(struct mpr *r, uint32_t *n)
{
    return container(r, n, 0x80, 0xde, 0xdf);
}

bool
mpr_array(struct mpr *r, uint32_t *n)
{
    return container(r, n, 0x90, 0xdc, 0xdd);
}

bool
mpr_u64(struct mpr *r, uint64_t *v)
{
    if (r->p >= r->end) {
        return false;
    }
    unsigned b = r->p[0];
    size_t left = (size_t)(r->end - r->p) - 1;
    if (b <= 0x7f) {
        *v = b;
        r->p += 1;
        return true;
    }
    unsigned n;
    bool is_signed = false;
    switch (b) {
    case 0xcc: n = 1; break;
    case 0xcd: n = 2; break;
    case 0xce: n = 4; break;
    case 0xcf: n = 8; break;
    case 0xd0: n = 1, is_signed = true; break;
    case 0xd1: n = 2, is_signed = true; break;
    case 0xd2: n = 4, is_signed = true; break;
    case 0xd3: n = 8, is_signed = true; break;
    default: return false;
    }
    if (left < n) {
        return false;
    }
    uint64_t x = be(r->p + 1, n);
    if (is_signed && (x >> (8 * n - 1)) != 0) {
        return false; /* negative */
    }
    *v = x;
    r->p += 1 + n;
    return true;
}

bool
mpr_bool(struct mpr *r, bool *v)
{
    if (r->p >= r->end || (r->p[0] != 0xc2 && r->p[0] != 0xc3)) {
        return false;
    }
    *v = r->p[0] == 0xc3;
    r->p += 1;
    return true;
}

static bool
bytes(struct mpr *r, struct sl_str *s, bool str_ok, bool bin_ok)
{
    if (r->p >= r->end) {
        return false;
    }
    unsigned b = r->p[0];
    size_t left = (size_t)(r->end - r->p) - 1;
    unsigned lb;
    uint64_t n = 0;
    if (str_ok && b >= 0xa0 && b <= 0xbf) {
        lb = 0;
        n = b & 0x1f;
    } else if ((str_ok && b == 0xd9) || (bin_ok && b == 0xc4)) {
        lb = 1;
    } else if ((str_ok && b == 0xda) || (bin_ok && b == 0xc5)) {
        lb = 2;
    } else if ((str_ok && b == 0xdb) || (bin_ok && b == 0xc6)) {
        lb = 4;
    } else {
        return false;
    }
    if (lb > 0) {
        if (left < lb) {
            return false;
        }
        n = be(r->p + 1, lb);
        left -= lb;
    }
    if (n > left) {
        return false;
    }
    s->p = (const char *)r->p + 1 + lb;
    s->n = (uint32_t)n;
    r->p += 1 + lb + n;
    return true;
}

bool
mpr_str(struct mpr *r, struct sl_str *s)
{
    return bytes(r, s, true, false);
}

bool
mpr_blob(struct mpr *r, struct sl_str *s)
{
    return bytes(r, s, true, true);
}
