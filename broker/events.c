#include "events.h"

#include "err.h"
#include "log.h"
#include "net.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdlib.h>

struct events {
    nng_socket sock;
    nng_listener listener;
};

int
events_open(struct events **ep, const char *url)
{
    struct events *e = calloc(1, sizeof(*e));
    int rv;

    if (e == NULL) {
        return SL_ENOMEM;
    }
    if ((rv = nng_pub0_open(&e->sock)) != 0) {
        LOG(LOG_ERROR, "events.open", "error=\"%s\"", nng_strerror(rv));
        free(e);
        return SL_EIO;
    }
    /* Subscribers send nothing: a small receive cap is enough. */
    if ((rv = net_listen(e->sock, url, 1024, &e->listener)) != 0) {
        nng_close(e->sock);
        free(e);
        return rv;
    }
    *ep = e;
    return 0;
}

void
events_close(struct events *e)
{
    if (e == NULL) {
        return;
    }
    nng_close(e->sock);
    free(e);
}

void
events_emit(struct events *e, const char *event, struct wire_msg *fields, uint64_t wall_ms)
{
    nng_msg *m;
    msgpack_packer pk;

    if (e == NULL) {
        return;
    }
    wire_set_cstr(fields, WK_EVENT, event);
    wire_set_u64(fields, WK_TS_MS, wall_ms);
    if (nng_msg_alloc(&m, 0) != 0) {
        return;
    }
    msgpack_packer_init(&pk, m, wire_pack_into_msg);
    if (wire_encode(fields, &pk) != 0 || nng_sendmsg(e->sock, m, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(m); /* not sent: still ours */
    }
}
