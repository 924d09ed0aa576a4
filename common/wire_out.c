/* wire_out (wire.h): a packer's writes gathered in a buffer and appended to their nng message
 * a few KiB at a time, where appending each key and value cost three calls into nng. */
#include "wire.h"

#include <nng/nng.h>
#include <string.h>

/* The packer's callback for a wire_out: small writes are copied into the buffer; one that
 * does not fit flushes it, and a large one goes to the message at once. */
static int
out_write(void *data, const char *buf, size_t len)
{
    struct wire_out *o = data;
    if (len > sizeof(o->buf) - o->n) {
        if (wire_out_flush(o) != 0) {
            return -1;
        }
        if (len > sizeof(o->buf) / 2) {
            return wire_pack_into_msg(o->msg, buf, len);
        }
    }
    memcpy(o->buf + o->n, buf, len);
    o->n += len;
    return 0;
}

void
wire_out_init(struct wire_out *o, nng_msg *msg, msgpack_packer *pk)
{
    o->msg = msg;
    o->n = 0;
    msgpack_packer_init(pk, o, out_write);
}

int
wire_out_flush(struct wire_out *o)
{
    size_t n = o->n;
    o->n = 0;
    return n == 0 ? 0 : wire_pack_into_msg(o->msg, o->buf, n);
}
