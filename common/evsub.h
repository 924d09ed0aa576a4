/* A subscriber to the broker's event stream (PROTOCOL.md, Events): an nng SUB socket with an
 * empty subscription, reconnecting on its own, whose messages decode as wire maps. Used by the
 * router (to react to group.high) and by `ctl events`. One thread at a time. */
#ifndef SLUICE_EVSUB_H
#define SLUICE_EVSUB_H

#include "wire.h"

#include <stdint.h>

struct evsub;

/* Subscribes to url. connect_ms 0 dials in the background (events flow once the broker is
 * there); otherwise waits up to connect_ms for the first connection. url may be a cluster's
 * list "URL,URL,..." (urllist_parse): every broker of it is dialed on the one socket, and
 * kept dialed, since only the leader publishes (a standby's events never come); connect_ms
 * then waits for any one of them. Returns 0 with *sp set; SL_EBADREQ (an invalid URL or
 * list), SL_EUNREACHABLE (nobody listening within connect_ms), SL_EIO, SL_ENOMEM. Blocks up
 * to connect_ms. */
int evsub_open(struct evsub **sp, const char *url, uint64_t connect_ms);

/* Closes the socket. evsub_free(NULL) does nothing. */
void evsub_free(struct evsub *s);

/* At a program's exit: frees what is ours and leaves the socket to the end of the process,
 * which closes its connection. nng 1.5.2's close of a socket can wait for ever on a task of
 * its own (nng issue #1543); a subscriber has nothing to flush, so its close is not worth
 * that risk. */
void evsub_leave(struct evsub *s);

/* A descriptor that polls readable while an event may be waiting (nng's NNG_OPT_RECVFD; not
 * to be read or closed by the caller). Returns 0 with *fd, or SL_EIO. */
int evsub_fd(struct evsub *s, int *fd);

/* Receives one event, waiting up to wait_ms (0: only one already there), and decodes it into
 * ev (initialised by the caller; its views, and ev->up's object tree, stay valid until
 * wire_msg_fini(ev) and the next evsub_recv). Returns 0; SL_ETIMEDOUT when none came;
 * SL_EBADREQ for a message that is not a valid wire map with "event" (it is dropped);
 * SL_EIO. Blocks up to wait_ms. */
int evsub_recv(struct evsub *s, struct wire_msg *ev, uint64_t wait_ms);

#endif
