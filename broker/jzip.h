/* How a cluster leader's journal bytes travel in the stream (jstream.h): compressed with
 * zstd when that saves an eighth or more, as they are otherwise. The NATS servers store and
 * replicate every byte three times over, so a millisecond of compression per megabyte here
 * saves several there. A message's header Sl-Enc names the encoding; no header: as they are.
 * Readers accept both, so a stream may hold either. */
#ifndef SLUICE_JZIP_H
#define SLUICE_JZIP_H

#include <stddef.h>
#include <stdint.h>

#define JZIP_ENC "zstd"             /* the value of Sl-Enc for a compressed message */
#define JZIP_MIN 512                /* shorter runs are sent as they are */
#define JZIP_MAX ((size_t)64 << 20) /* a reader refuses a frame that says it holds more */

struct jzip {
    void *cctx;   /* ZSTD_CCtx, made on first use */
    uint8_t *out; /* what jzip_pack wrote; also jzip_unpack's output */
    size_t cap;
};

/* p[0..n) compressed into z->out: its size, or 0 when it is short, does not shrink enough
 * or memory ran out (send p as it is). */
size_t jzip_pack(struct jzip *z, const uint8_t *p, size_t n);

/* A message's bytes under encoding enc (NULL: none): *out and *outn are p and n as they
 * are, or the bytes decompressed into z->out (valid until the next call). SL_EBADREQ for an
 * encoding not known or a frame that is damaged, not whole, empty or larger than JZIP_MAX;
 * SL_ENOMEM. */
int jzip_unpack(struct jzip *z, const char *enc, const uint8_t *p, size_t n,
                const uint8_t **out, size_t *outn);

void jzip_free(struct jzip *z);

#endif
