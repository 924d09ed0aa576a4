/* The stream's message encoding (jzip.h) over libzstd. */
#include "jzip.h"

#include "err.h"

#include <zstd.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define LEVEL 1 /* ~1.4 GB/s on journal records here; higher levels gain little on them */

static bool
grow(struct jzip *z, size_t n)
{
    if (n <= z->cap) {
        return true;
    }
    uint8_t *q = realloc(z->out, n);
    if (q == NULL) {
        return false;
    }
    z->out = q;
    z->cap = n;
    return true;
}

size_t
jzip_pack(struct jzip *z, const uint8_t *p, size_t n)
{
    if (n < JZIP_MIN || n > JZIP_MAX || !grow(z, ZSTD_compressBound(n))) {
        return 0;
    }
    if (z->cctx == NULL) {
        /* Frames carry a checksum of what they hold: damage is refused, not applied. */
        ZSTD_CCtx *c = ZSTD_createCCtx();
        if (c == NULL || ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, LEVEL)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1))) {
            ZSTD_freeCCtx(c);
            return 0;
        }
        z->cctx = c;
    }
    size_t c = ZSTD_compress2(z->cctx, z->out, z->cap, p, n);
    return ZSTD_isError(c) || c > n - n / 8 ? 0 : c;
}

int
jzip_unpack(struct jzip *z, const char *enc, const uint8_t *p, size_t n, const uint8_t **out,
            size_t *outn)
{
    *out = p;
    *outn = n;
    if (enc == NULL) {
        return 0;
    }
    if (strcmp(enc, JZIP_ENC) != 0) {
        return SL_EBADREQ;
    }
    /* The frame says how much it holds (jzip_pack's always does); only a size within
     * bounds is believed, and the frame must fill it exactly. */
    unsigned long long want = ZSTD_getFrameContentSize(p, n);
    if (want == ZSTD_CONTENTSIZE_UNKNOWN || want == ZSTD_CONTENTSIZE_ERROR || want == 0 ||
        want > JZIP_MAX) {
        return SL_EBADREQ;
    }
    if (ZSTD_findFrameCompressedSize(p, n) != n) {
        return SL_EBADREQ; /* not whole, or something after the frame */
    }
    if (!grow(z, (size_t)want)) {
        return SL_ENOMEM;
    }
    size_t got = ZSTD_decompress(z->out, (size_t)want, p, n);
    if (ZSTD_isError(got) || got != want) {
        return SL_EBADREQ;
    }
    *out = z->out;
    *outn = got;
    return 0;
}

void
jzip_free(struct jzip *z)
{
    ZSTD_freeCCtx(z->cctx);
    free(z->out);
    memset(z, 0, sizeof(*z));
}
