/* worker-pool's control socket (PROTOCOL.md, "worker-pool's control socket"): ping,
 * pool.status, pool.scale over nng REP. Served on the main loop, never on an nng thread: the
 * loop polls pool_server_fd and calls pool_server_serve, which receives, answers and sends
 * without blocking. So every change to the pool happens on the loop, with no lock. */
#ifndef SLUICE_POOL_SERVER_H
#define SLUICE_POOL_SERVER_H

#include "pool.h"
#include "token.h"

#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_SERVER_RECV_MAX (64u * 1024u) /* control requests are small */

struct pool_server;

/* Listens on url (an ipc:// socket file is made 0600) with the listener guard of net.h.
 * started_ms: the pool's start (CLOCK_MONOTONIC ms), for ping's uptime_ms. Returns 0,
 * SL_EBADREQ (invalid URL), SL_EIO (address in use...) or SL_ENOMEM, logged. */
int pool_server_start(struct pool_server **sp, const char *url, uint64_t started_ms);

/* Makes every later request need the token t (copied; an empty one: none), as the broker's
 * --token-file does: a request without it, or with another, is answered unauthorized and
 * changes nothing. */
void pool_server_set_token(struct pool_server *s, const struct token *t);

/* Stops the guard and closes the socket (nng removes an ipc socket file). NULL does nothing. */
void pool_server_stop(struct pool_server *s);

/* A descriptor that polls readable when a request waits. */
int pool_server_fd(const struct pool_server *s);

/* Answers every request waiting, without blocking. */
void pool_server_serve(struct pool_server *s, struct pool *p, uint64_t now_ms);

/* Decodes one request (len bytes at req) and appends the reply to rep: the dispatcher the
 * socket uses (without the token check), for tests. Returns 0 when the reply is ok, else the error code it carries. */
int pool_server_handle(struct pool *p, uint64_t started_ms, const void *req, size_t len,
                       nng_msg *rep, uint64_t now_ms);

#endif
