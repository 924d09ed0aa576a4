#include "frame.h"

#include "err.h"
#include "mpr.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define KEY_IS(k, lit) ((k).n == sizeof(lit) - 1 && memcmp((k).p, (lit), sizeof(lit) - 1) == 0)

static void
pack_key(msgpack_packer *pk, const char *k, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, k, n);
}

int
frame_encode_job(msgpack_sbuffer *sb, const struct wapi_job *job)
{
    static const uint8_t zero[FRAME_HDR_BYTES];
    msgpack_packer pk;
    int rv = 0;

    msgpack_sbuffer_clear(sb);
    if (msgpack_sbuffer_write(sb, (const char *)zero, sizeof(zero)) != 0) {
        return SL_ENOMEM;
    }
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    rv |= msgpack_pack_map(&pk, 5);
    pack_key(&pk, "id", 2);
    rv |= msgpack_pack_uint64(&pk, job->id);
    pack_key(&pk, "group", 5);
    rv |= msgpack_pack_str(&pk, job->group.n);
    rv |= msgpack_pack_str_body(&pk, job->group.p, job->group.n);
    pack_key(&pk, "queue", 5);
    rv |= msgpack_pack_str(&pk, job->queue.n);
    rv |= msgpack_pack_str_body(&pk, job->queue.p, job->queue.n);
    pack_key(&pk, "attempt", 7);
    rv |= msgpack_pack_uint32(&pk, job->attempts);
    pack_key(&pk, "payload", 7);
    rv |= msgpack_pack_bin(&pk, job->len);
    rv |= msgpack_pack_bin_body(&pk, job->payload, job->len);
    if (rv != 0) {
        return SL_ENOMEM;
    }
    size_t body = sb->size - FRAME_HDR_BYTES;
    if (body > UINT32_MAX) {
        return SL_ETOOLARGE;
    }
    uint8_t *h = (uint8_t *)sb->data;
    h[0] = (uint8_t)(body >> 24);
    h[1] = (uint8_t)(body >> 16);
    h[2] = (uint8_t)(body >> 8);
    h[3] = (uint8_t)body;
    return 0;
}

void
frame_reader_init(struct frame_reader *r, uint8_t *body, uint32_t max)
{
    memset(r, 0, sizeof(*r));
    r->body = body;
    r->max = max;
}

void
frame_reader_reset(struct frame_reader *r)
{
    r->got = 0;
    r->len = 0;
}

int
frame_read(struct frame_reader *r, int fd, bool *done, const char **why)
{
    *done = false;
    for (;;) {
        uint8_t *dst;
        size_t want;
        if (r->got < FRAME_HDR_BYTES) {
            dst = r->hdr + r->got;
            want = FRAME_HDR_BYTES - r->got;
        } else {
            dst = r->body + (r->got - FRAME_HDR_BYTES);
            want = (size_t)r->len - (r->got - FRAME_HDR_BYTES);
        }
        if (want > 0) {
            ssize_t n = read(fd, dst, want);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && errno == EAGAIN) {
                return 0;
            }
            if (n < 0) {
                *why = "read error";
                return SL_EIO;
            }
            if (n == 0) {
                *why = r->got == 0 ? "end of file" : "end of file inside a frame";
                return SL_EIO;
            }
            r->got += (uint32_t)n;
        }
        if (r->got == FRAME_HDR_BYTES) {
            r->len = (uint32_t)r->hdr[0] << 24 | (uint32_t)r->hdr[1] << 16 |
                     (uint32_t)r->hdr[2] << 8 | r->hdr[3];
            if (r->len > r->max) {
                *why = "frame larger than the limit";
                return SL_ETOOLARGE;
            }
        }
        if (r->got >= FRAME_HDR_BYTES && r->got - FRAME_HDR_BYTES == r->len) {
            r->got = 0; /* the next call starts a new frame; len stays for the caller */
            *done = true;
            return 0;
        }
    }
}

int
frame_decode_reply(const void *body, size_t len, struct frame_reply *out, const char **why)
{
    struct mpr c;
    uint32_t n;
    bool has_id = false, has_ok = false;
    uint64_t delay = 0;

    memset(out, 0, sizeof(*out));
    out->msg = (struct sl_str){ "", 0 };
    if (len == 0 || wire_check(body, len) != 0) {
        *why = "not one well-formed msgpack value";
        return SL_EBADREQ;
    }
    mpr_init(&c, body, len);
    if (!mpr_map(&c, &n)) {
        *why = "not a map";
        return SL_EBADREQ;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct sl_str k;
        bool ok;
        if (!mpr_str(&c, &k)) {
            ok = mpr_skip(&c) && mpr_skip(&c); /* a key that is no string, and its value */
        } else if (KEY_IS(k, "id")) {
            ok = has_id = mpr_u64(&c, &out->id);
        } else if (KEY_IS(k, "ok")) {
            ok = has_ok = mpr_bool(&c, &out->ok);
        } else if (KEY_IS(k, "delay_ms")) {
            ok = mpr_u64(&c, &delay);
        } else if (KEY_IS(k, "msg")) {
            ok = mpr_str(&c, &out->msg);
        } else {
            ok = mpr_skip(&c);
        }
        if (!ok) {
            *why = "a field has the wrong type ('id' and 'delay_ms' are unsigned integers, "
                   "'ok' a boolean, 'msg' a string)";
            return SL_EBADREQ;
        }
    }
    if (!has_id || !has_ok) {
        *why = "'id' and 'ok' are required";
        return SL_EBADREQ;
    }
    out->delay_ms = delay > FRAME_DELAY_MAX_MS ? FRAME_DELAY_MAX_MS : (uint32_t)delay;
    if (out->msg.n > FRAME_MSG_MAX) {
        out->msg.n = FRAME_MSG_MAX;
    }
    return 0;
}
