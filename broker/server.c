#include "server.h"

#include "err.h"
#include "log.h"
#include "net.h"
#include "ops.h"

#include <nng/protocol/reqrep0/rep.h>
#include <stdlib.h>

enum sctx_state { SCTX_RECV, SCTX_SEND };

struct sctx {
    struct server *srv;
    nng_ctx ctx;
    nng_aio *aio;
    enum sctx_state state;
};

struct server {
    struct broker *b;
    nng_socket sock;
    nng_listener listener;
    unsigned n;
    struct sctx *ctxs;
};

static void
sctx_cb(void *arg)
{
    struct sctx *c = arg;
    int rv = nng_aio_result(c->aio);

    switch (c->state) {
    case SCTX_RECV: {
        if (rv != 0) {
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
                return; /* shutting down */
            }
            LOG(LOG_WARN, "recv.error", "error=\"%s\"", nng_strerror(rv));
            nng_ctx_recv(c->ctx, c->aio);
            return;
        }
        nng_msg *req = nng_aio_get_msg(c->aio); /* ours until freed */
        nng_msg *rep = NULL;
        if (nng_msg_alloc(&rep, 0) != 0) {
            /* No memory for a reply: drop the request; the client's timeout reports it. */
            LOG(LOG_ERROR, "reply.nomem", "reason=\"request dropped\"");
            nng_msg_free(req);
            nng_ctx_recv(c->ctx, c->aio);
            return;
        }
        ops_handle(c->srv->b, nng_msg_body(req), nng_msg_len(req), rep);
        nng_msg_free(req); /* every view decoded from req dies here */
        nng_aio_set_msg(c->aio, rep); /* rep belongs to the aio now */
        c->state = SCTX_SEND;
        nng_ctx_send(c->ctx, c->aio);
        return;
    }
    case SCTX_SEND:
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio)); /* not sent: still ours */
            nng_aio_set_msg(c->aio, NULL);
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
                return;
            }
        }
        c->state = SCTX_RECV;
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
}

int
server_start(struct server **sp, struct broker *b, const char *url, size_t max_message,
             unsigned ncontexts)
{
    struct server *s = calloc(1, sizeof(*s));
    int rv;
    unsigned i;

    if (s == NULL) {
        return SL_ENOMEM;
    }
    s->b = b;
    s->n = ncontexts;
    if ((s->ctxs = calloc(ncontexts, sizeof(*s->ctxs))) == NULL) {
        free(s);
        return SL_ENOMEM;
    }
    if ((rv = nng_rep0_open(&s->sock)) != 0) {
        LOG(LOG_ERROR, "socket.open", "error=\"%s\"", nng_strerror(rv));
        rv = SL_EIO;
        goto fail_sock;
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, max_message);
    for (i = 0; i < ncontexts; i++) {
        struct sctx *c = &s->ctxs[i];
        c->srv = s;
        if (nng_aio_alloc(&c->aio, sctx_cb, c) != 0) {
            rv = SL_ENOMEM;
            goto fail_ctx;
        }
        if (nng_ctx_open(&c->ctx, s->sock) != 0) {
            nng_aio_free(c->aio);
            rv = SL_ENOMEM;
            goto fail_ctx;
        }
    }
    if ((rv = net_listen(s->sock, url, max_message, &s->listener)) != 0) {
        goto fail_ctx;
    }
    for (i = 0; i < ncontexts; i++) {
        s->ctxs[i].state = SCTX_RECV;
        nng_ctx_recv(s->ctxs[i].ctx, s->ctxs[i].aio);
    }
    *sp = s;
    return 0;
fail_ctx:
    while (i-- > 0) {
        nng_ctx_close(s->ctxs[i].ctx);
        nng_aio_free(s->ctxs[i].aio);
    }
    nng_close(s->sock);
fail_sock:
    free(s->ctxs);
    free(s);
    return rv;
}

void
server_stop(struct server *s)
{
    if (s == NULL) {
        return;
    }
    /* Stop every aio before freeing any: a callback may be running on an nng thread. */
    for (unsigned i = 0; i < s->n; i++) {
        nng_aio_stop(s->ctxs[i].aio);
    }
    nng_close(s->sock);
    for (unsigned i = 0; i < s->n; i++) {
        nng_msg *m = nng_aio_get_msg(s->ctxs[i].aio);
        if (m != NULL && s->ctxs[i].state == SCTX_SEND) {
            nng_msg_free(m);
        }
        nng_aio_free(s->ctxs[i].aio);
    }
    free(s->ctxs);
    free(s);
}
