/* One connection to a REP socket (the broker's, worker-pool's control socket), speaking nng's
 * SP req0 protocol over a plain stream socket, as PROTOCOL.md "Speaking the protocol without
 * nng" describes: ipc://PATH (Unix-domain) or tcp://HOST:PORT (TCP_NODELAY). The calling
 * thread does the I/O itself (blocking with poll() deadlines): a round trip wakes only the
 * threads that must wake, where nng's REQ socket hands each message across three of its own
 * threads (README "Latency" has the figures). Not for concurrent use, except as spreq.h does:
 * one thread sending while another reads (spconn_send_id, spconn_recv_frame). */
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
 * without its request id. Returns 0, SL_ETIMEDOUT (a frame begun stays begun: the next call
 * goes on with it), SL_EIO (the connection was lost or sent something that is not a frame)
 * or SL_ENOMEM. */
int spconn_recv(struct spconn *c, struct nng_msg **mp, uint64_t timeout_ms);

/* The parts of spconn_send and spconn_recv, for requests of several threads on one
 * connection: a new request id (the connection's, high bit set); a request sent with a given
 * id; the next reply whatever its id (*id), with spconn_recv's results. */
uint32_t spconn_new_id(struct spconn *c);
int spconn_send_id(struct spconn *c, uint32_t id, const void *body, size_t n, uint64_t timeout_ms);
int spconn_recv_frame(struct spconn *c, struct nng_msg **mp, uint32_t *id, uint64_t timeout_ms);

/* Whether the peer has closed the connection (or it failed), seen without reading: true as
 * soon as the peer's close reached this host. Any thread. */
bool spconn_closed(const struct spconn *c);

/* Ends the connection's traffic at once: a thread waiting on it wakes and fails. Any thread;
 * spconn_close still frees it. */
void spconn_shutdown(struct spconn *c);

/* Closes the connection; spconn_close(NULL) does nothing. */
void spconn_close(struct spconn *c);

#endif
