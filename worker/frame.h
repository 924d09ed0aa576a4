/* The frames a worker and its pipe handler exchange (PROTOCOL.md, "Pipe handlers"): a 4-byte
 * big-endian length N, then N bytes holding one msgpack map.
 *
 *   worker -> handler: {"id": uint, "group": str, "queue": str, "attempt": uint, "payload": bin}
 *   handler -> worker: {"id": uint, "ok": bool, "msg"?: str, "delay_ms"?: uint}
 *
 * To change the format: add keys (readers ignore unknown keys), never change a key's type, and
 * document it in PROTOCOL.md. */
#ifndef SLUICE_FRAME_H
#define SLUICE_FRAME_H

#include "wapi.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR_BYTES 4
#define FRAME_REPLY_MAX 65536u        /* largest reply body a handler may send */
#define FRAME_DELAY_MAX_MS 86400000u  /* a reply's delay_ms is capped here */
#define FRAME_MSG_MAX 4096u           /* a reply's msg is cut here */

/* Packs job's frame, header included, into sb (cleared first; its buffer is reused, so a
 * steady run allocates nothing). Returns 0, SL_ETOOLARGE (a frame over 4 GiB) or SL_ENOMEM. */
int frame_encode_job(msgpack_sbuffer *sb, const struct wapi_job *job);

/* Reads one frame at a time from a non-blocking fd into a caller's buffer. */
struct frame_reader {
    uint8_t hdr[FRAME_HDR_BYTES];
    uint8_t *body;              /* the caller's, max bytes */
    uint32_t max;
    uint32_t got;               /* bytes of the frame read so far, header included */
    uint32_t len;               /* the body's length, once the header is in */
};

void frame_reader_init(struct frame_reader *r, uint8_t *body, uint32_t max);

/* Starts a new frame (forgets a partial one). */
void frame_reader_reset(struct frame_reader *r);

/* Reads what fd holds of the current frame. Returns 0 with *done true when the whole frame is
 * in r->body[0..r->len) (the next call starts a new frame), 0 with *done false when fd has no
 * more for now; SL_EIO at end of file (a frame cut short, or none) or on a read error,
 * SL_ETOOLARGE when the header announces more than max. *why says which. */
int frame_read(struct frame_reader *r, int fd, bool *done, const char **why);

struct frame_reply {
    uint64_t id;
    bool ok;
    uint32_t delay_ms;          /* 0 when absent; capped at FRAME_DELAY_MAX_MS */
    struct sl_str msg;          /* empty when absent; a view into the body, at most
                                   FRAME_MSG_MAX bytes */
};

/* Decodes a reply body. Returns 0, or SL_EBADREQ with *why unless it is exactly one map with
 * a non-negative integer "id", a boolean "ok" and, if present, a non-negative integer
 * "delay_ms" and a string "msg". Unknown keys are ignored. */
int frame_decode_reply(const void *body, size_t len, struct frame_reply *out, const char **why);

#endif
