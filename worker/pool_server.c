#include "pool_server.h"

#include "err.h"
#include "log.h"
#include "net.h"

#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WHY_MAX 256

struct pool_server {
    nng_socket sock;
    nng_listener listener;
    int fd;
    uint64_t started_ms;
    struct token token;  /* every request must carry it; n == 0: none asked for */
};

struct op_ctx {
    struct pool *pool;
    uint64_t started_ms, now_ms;
    char *why;
};

typedef int op_fn(struct op_ctx *c, const struct wire_msg *req, msgpack_packer *pk);

static op_fn op_ping, op_status, op_scale;

/* The ops this socket answers; any other op of wire_ops (the broker's) is unknown_op here. */
static const struct op {
    enum wire_op op;
    op_fn *fn;
} ops[] = {
    { WOP_PING, op_ping },
    { WOP_POOL_STATUS, op_status },
    { WOP_POOL_SCALE, op_scale },
};

static int
op_ping(struct op_ctx *c, const struct wire_msg *req, msgpack_packer *pk)
{
    (void)req;
    wire_pack_ok(pk, 3);
    wire_pack_key(pk, WK_PID);
    msgpack_pack_uint64(pk, (uint64_t)getpid());
    wire_pack_key(pk, WK_VERSION);
    wire_pack_cstr(pk, SLUICE_VERSION);
    wire_pack_key(pk, WK_UPTIME_MS);
    msgpack_pack_uint64(pk, c->now_ms - c->started_ms);
    return 0;
}

static int
op_status(struct op_ctx *c, const struct wire_msg *req, msgpack_packer *pk)
{
    (void)req;
    wire_pack_ok(pk, 2);
    pool_pack_status(c->pool, pk, c->now_ms);
    return 0;
}

static int
op_scale(struct op_ctx *c, const struct wire_msg *req, msgpack_packer *pk)
{
    uint64_t n = req->v[WK_N].u;

    if (n > POOL_N_MAX) {
        snprintf(c->why, WHY_MAX, "pool.scale: 'n' must be at most %u", POOL_N_MAX);
        return SL_EBADREQ;
    }
    if (pool_scale(c->pool, (uint32_t)n, c->now_ms) != 0) {
        snprintf(c->why, WHY_MAX, "the pool is stopping");
        return SL_EFORBIDDEN;
    }
    wire_pack_ok(pk, 1);
    wire_pack_key(pk, WK_N);
    msgpack_pack_uint64(pk, n);
    return 0;
}

static int
handle(struct pool *p, uint64_t started_ms, const struct token *tok, const void *req, size_t len,
       nng_msg *rep, uint64_t now_ms)
{
    struct wire_msg m;
    msgpack_packer pk;
    char why[WHY_MAX] = "";
    struct op_ctx c = { p, started_ms, now_ms, why };
    const struct op *row = NULL;
    int rv;

    wire_msg_init(&m);
    msgpack_packer_init(&pk, rep, wire_pack_into_msg);
    rv = wire_decode(&m, req, len, why, sizeof(why));
    if (rv == 0 && tok != NULL &&
        !token_check(tok, WIRE_HAS(&m, WK_TOKEN) ? m.v[WK_TOKEN].s.p : NULL,
                     WIRE_HAS(&m, WK_TOKEN) ? m.v[WK_TOKEN].s.n : 0)) {
        rv = SL_EUNAUTH;
        snprintf(why, sizeof(why), "%s", WIRE_HAS(&m, WK_TOKEN)
                                             ? "wrong token"
                                             : "this worker-pool requires a token (--token-file)");
    }
    if (rv == 0 && !WIRE_HAS(&m, WK_OP)) {
        rv = SL_EBADREQ;
        snprintf(why, sizeof(why), "missing required field 'op'");
    }
    if (rv == 0) {
        int op = wire_op_find(m.v[WK_OP].s);
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && op >= 0; i++) {
            if (ops[i].op == (enum wire_op)op) {
                row = &ops[i];
            }
        }
        if (row == NULL) {
            char q[160];
            rv = SL_EUNKNOWNOP;
            snprintf(why, sizeof(why), "unknown op %s (worker-pool answers ping, pool.status, "
                     "pool.scale)", log_quote(q, sizeof(q), m.v[WK_OP].s.p, m.v[WK_OP].s.n));
        } else {
            rv = wire_check_required(&m, row->op, why, sizeof(why));
        }
    }
    if (rv == 0) {
        rv = row->fn(&c, &m, &pk);
    }
    if (rv != 0) {
        /* A handler fails before packing anything: the reply is the error alone. */
        nng_msg_clear(rep);
        wire_pack_err(&pk, rv, why);
    }
    wire_msg_fini(&m);
    return rv;
}

int
pool_server_handle(struct pool *p, uint64_t started_ms, const void *req, size_t len,
                   nng_msg *rep, uint64_t now_ms)
{
    return handle(p, started_ms, NULL, req, len, rep, now_ms);
}

void
pool_server_set_token(struct pool_server *s, const struct token *t)
{
    s->token = *t;
}

int
pool_server_start(struct pool_server **sp, const char *url, uint64_t started_ms)
{
    struct pool_server *s = calloc(1, sizeof(*s));
    int rv;

    if (s == NULL) {
        return SL_ENOMEM;
    }
    s->started_ms = started_ms;
    if ((rv = nng_rep0_open(&s->sock)) != 0) {
        LOG(LOG_ERROR, "control.open", "error=\"%s\"", nng_strerror(rv));
        free(s);
        return SL_EIO;
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, POOL_SERVER_RECV_MAX);
    if ((rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &s->fd)) != 0) {
        LOG(LOG_ERROR, "control.open", "error=\"recv fd: %s\"", nng_strerror(rv));
        rv = SL_EIO;
        goto fail;
    }
    if ((rv = net_listen(s->sock, url, POOL_SERVER_RECV_MAX, &s->listener)) != 0) {
        goto fail;
    }
    *sp = s;
    return 0;
fail:
    nng_close(s->sock);
    free(s);
    return rv;
}

void
pool_server_stop(struct pool_server *s)
{
    if (s == NULL) {
        return;
    }
    nng_close(s->sock);
    token_clear(&s->token);
    free(s);
}

int
pool_server_fd(const struct pool_server *s)
{
    return s->fd;
}

void
pool_server_serve(struct pool_server *s, struct pool *p, uint64_t now_ms)
{
    nng_msg *req, *rep;
    int rv;

    while ((rv = nng_recvmsg(s->sock, &req, NNG_FLAG_NONBLOCK)) == 0) {
        if (nng_msg_alloc(&rep, 0) != 0) {
            nng_msg_free(req);
            LOG(LOG_ERROR, "control.reply", "error=\"out of memory\"");
            continue; /* the client times out; nothing changed */
        }
        handle(p, s->started_ms, &s->token, nng_msg_body(req), nng_msg_len(req), rep, now_ms);
        nng_msg_free(req);
        if ((rv = nng_sendmsg(s->sock, rep, NNG_FLAG_NONBLOCK)) != 0) {
            nng_msg_free(rep); /* not sent: still ours */
            LOG(LOG_DEBUG, "control.reply", "error=\"%s\"", nng_strerror(rv));
        }
    }
    if (rv != NNG_EAGAIN && rv != NNG_ECLOSED) {
        LOG(LOG_WARN, "control.recv", "error=\"%s\"", nng_strerror(rv));
    }
}
