/* A request connection shared by a few threads: a worker's requests and its heartbeat go to
 * the broker on one connection (the broker ties a worker's reservations to it), each waiting
 * for its own reply. Built on spconn.h: the thread that waits reads, and a reply meant for
 * another waiting thread is handed to it, so a round trip wakes no thread but the one that
 * asked (no I/O thread of its own, as nng's REQ socket has).
 *
 * The connection is dialed when a request needs one (not in the background): after the
 * broker closed it, the next request that may dial opens a new one. Each connection has a
 * number (1, 2, ...), so that a caller can tell whether what it got on one is still
 * on the connection open now (spreq_lost). */
#ifndef SLUICE_SPREQ_H
#define SLUICE_SPREQ_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nng_msg;
struct spreq;

/* How a request gets its connection. */
struct spreq_how {
    bool dial;                         /* false: only a connection open now is used */
    uint64_t connect_ms;               /* redial (50 ms doubling to 1 s) this long at most */
    const volatile sig_atomic_t *stop; /* non-NULL: stop redialing once *stop is set */
};

/* A request connection to url (ipc:// or tcp://; nothing is dialed yet). Returns 0,
 * SL_EBADREQ (a scheme spconn does not speak, or too long) or SL_ENOMEM. */
int spreq_open(struct spreq **rp, const char *url);

/* Sends body as a request and waits for its reply, timeout_ms at most from the call (the
 * connection included). *rep: the reply (the caller's to free); *conn: the number of the
 * connection it came on. Returns 0, or:
 *   SL_EUNREACHABLE  no connection (none open without how->dial; none within connect_ms;
 *                    *how->stop set; or spreq_interrupt called): nothing was sent
 *   SL_EIO           the connection was lost before the reply came, or spreq_interrupt was
 *                    called while the request waited
 *   SL_ETIMEDOUT     no reply in time (the connection stays; a late reply is dropped)
 *   SL_EBADREQ       the URL cannot be dialed (a host or path spconn refuses)
 *   SL_ENOMEM */
int spreq_call(struct spreq *r, const void *body, size_t n, uint64_t timeout_ms,
               const struct spreq_how *how, struct nng_msg **rep, uint32_t *conn);

/* Whether a connection is open now (and the peer has not closed it, as last looked: the
 * connection is looked at once a millisecond at most). */
bool spreq_connected(struct spreq *r);

/* Whether connection number conn is gone: closed by either side, or replaced. A close by the
 * peer is seen within a millisecond of reaching this host. */
bool spreq_lost(struct spreq *r, uint32_t conn);

/* Ends the connection open now (if any) and dials url from the next request on. */
void spreq_move(struct spreq *r, const char *url);

/* Fails every request waiting now (SL_EIO) and every later one (SL_EUNREACHABLE): for a
 * program's stop, so that no thread waits for a reply any more. */
void spreq_interrupt(struct spreq *r);

/* Closes the connection and frees r; no thread may use r any more. spreq_free(NULL) does
 * nothing. */
void spreq_free(struct spreq *r);

#endif
