/* One connection to a REP socket (the broker's, worker-pool's control socket), speaking nng's
 * SP req0 protocol over a plain stream socket, as PROTOCOL.md "Speaking the protocol without
 * nng" describes: ipc://PATH (Unix-domain) or tcp://HOST:PORT (TCP_NODELAY). The calling
 * thread does the I/O itself (blocking with poll() deadlines): a round trip wakes only the
 * threads that must wake, where nng's REQ socket hands each message across three of its own
 * threads (README "Latency" has the figures). Not for concurrent use: one thread at a time. */
#ifndef SLUICE_SPCONN_H
#define SLUICE_SPCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nng_msg;
struct spconn;

/* Whether spconn speaks url's scheme (ipc://, tcp://). */
bool spconn_handles(const char *url);

/* Connects to url and exchanges the SP headers, within timeout_ms. Returns 0 (*cp a new
 * connection), SL_EBADREQ (a URL it cannot use: scheme, host, port, path length),
 * SL_EUNREACHABLE (nobody listens, the peer closed, timed out, or is not a REP socket),
 * SL_ENOMEM. */
int spconn_dial(struct spconn **cp, const char *url, uint64_t timeout_ms);

/* Sends body as a request with a new request id, within timeout_ms. Returns 0, SL_ETIMEDOUT
 * (nothing or part of it was written: the connection is no longer usable) or SL_EIO (the
 * connection is lost). */
int spconn_send(struct spconn *c, const void *body, size_t n, uint64_t timeout_ms);

/* Waits up to timeout_ms for the reply to the last request sent, discarding replies to
 * earlier ones (late answers to requests given up on). *mp: a new message holding the reply
 * without its request id. Returns 0, SL_ETIMEDOUT, SL_EIO (the connection was lost or sent
 * something that is not a frame) or SL_ENOMEM. */
int spconn_recv(struct spconn *c, struct nng_msg **mp, uint64_t timeout_ms);

/* Closes the connection; spconn_close(NULL) does nothing. */
void spconn_close(struct spconn *c);

#endif
