/* sl-park: parks N long-polling reserves at a broker, each from its own connection, as N idle
 * workers would. Usage: sl-park URL N WAIT_MS. Prints "sent N" once every request is out,
 * then "replies R jobs J" when all have been answered (or on SIGTERM/SIGINT), and exits. */
#include "wire.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    nng_socket s;
    nng_ctx ctx;
    nng_aio *aio;
    int sending;
};

static atomic_int replies, jobs;
static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void
cb(void *arg)
{
    struct slot *sl = arg;
    if (nng_aio_result(sl->aio) != 0) {
        if (!sl->sending) {
            return;
        }
        nng_msg_free(nng_aio_get_msg(sl->aio));
        return;
    }
    if (sl->sending) {
        sl->sending = 0;
        nng_ctx_recv(sl->ctx, sl->aio);
        return;
    }
    nng_msg *m = nng_aio_get_msg(sl->aio);
    struct wire_msg rep;
    wire_msg_init(&rep);
    if (wire_decode(&rep, nng_msg_body(m), nng_msg_len(m), NULL, 0) == 0 &&
        WIRE_HAS(&rep, WK_JOBS) && rep.v[WK_JOBS].any->type == MSGPACK_OBJECT_ARRAY) {
        atomic_fetch_add(&jobs, (int)rep.v[WK_JOBS].any->via.array.size);
    }
    wire_msg_fini(&rep);
    nng_msg_free(m);
    atomic_fetch_add(&replies, 1);
}

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: sl-park URL N WAIT_MS\n");
        return 2;
    }
    const char *url = argv[1];
    int n = atoi(argv[2]);
    uint64_t wait = strtoull(argv[3], NULL, 10);
    if (n <= 0 || n > 100000) {
        fprintf(stderr, "sl-park: N must be 1 to 100000\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct slot *slots = calloc((size_t)n, sizeof(*slots));
    for (int i = 0; i < n; i++) {
        struct slot *sl = &slots[i];
        char name[64];
        nng_msg *m;
        msgpack_packer pk;
        struct wire_msg req;
        if (nng_req0_open(&sl->s) != 0 || nng_dial(sl->s, url, NULL, 0) != 0 ||
            nng_ctx_open(&sl->ctx, sl->s) != 0 || nng_aio_alloc(&sl->aio, cb, sl) != 0) {
            fprintf(stderr, "sl-park: cannot connect slot %d to %s\n", i, url);
            return 3;
        }
        nng_ctx_set_ms(sl->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        snprintf(name, sizeof(name), "park-%d", i);
        wire_msg_init(&req);
        wire_set_cstr(&req, WK_OP, "reserve");
        wire_set_cstr(&req, WK_WORKER, name);
        wire_set_u64(&req, WK_WAIT_MS, wait);
        nng_msg_alloc(&m, 0);
        msgpack_packer_init(&pk, m, wire_pack_into_msg);
        wire_encode(&req, &pk);
        sl->sending = 1;
        nng_aio_set_msg(sl->aio, m);
        nng_ctx_send(sl->ctx, sl->aio);
    }
    printf("sent %d\n", n);
    fflush(stdout);
    while (!stop && atomic_load(&replies) < n) {
        nng_msleep(10);
    }
    printf("replies %d jobs %d\n", atomic_load(&replies), atomic_load(&jobs));
    for (int i = 0; i < n; i++) {
        nng_aio_stop(slots[i].aio);
        nng_close(slots[i].s);
        nng_aio_free(slots[i].aio);
    }
    free(slots);
    return 0;
}
