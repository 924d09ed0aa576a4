/* Listening helpers shared by the servers (broker, worker-pool). */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#include <nng/nng.h>
#include <stddef.h>

/* Starts a listener for sock on url with messages capped at recv_max bytes; an ipc:// socket
 * file is made 0600 (the runtime directory is 0700 as well: nng binds before it chmods).
 * Returns 0, SL_EBADREQ (invalid URL) or SL_EIO (address in use, permission...), logged. */
int net_listen(nng_socket sock, const char *url, size_t recv_max, nng_listener *lp);

/* A listener that repairs itself. nng 1.5.2 stops accepting connections on a listener after
 * a peer disconnects during the connection handshake (nng issue #1518, fixed in nng 1.6):
 * existing connections keep working, new ones never complete. common/nngfix.c removes the
 * cause; the guard is the second line, for any other way a listener could stop. A guard
 * thread checks every check_ms that a new connection to url is accepted within 1 s and, for a
 * REP socket, that a {"op":"ping"} on it is answered (any reply will do). After two failed
 * checks in a row (three for tcp) the guard replaces the listener, logging
 * event=listener.repair:
 * - ipc: the socket file is removed and a new listener binds a new one; the old listener is
 *   kept, so the connections it holds go on (the last 64 replaced listeners are kept);
 * - tcp: the port cannot be bound twice, so the listener is closed (its connections close;
 *   clients reconnect) and opened again.
 * A probe connection is closed only once accepted or once its listener was replaced. The
 * guard owns the socket's NNG_PIPE_EV_ADD_POST notification. */
struct net_guard;

enum net_probe {
    NET_PROBE_REQ, /* sock is REP: the probe is a REQ that must get an answer to a ping */
    NET_PROBE_SUB, /* sock is PUB: the probe is a SUB that must be accepted */
};

/* Listens as net_listen does and starts the guard. Returns 0 or net_listen's errors, or
 * SL_ENOMEM. */
int net_guard_start(struct net_guard **gp, nng_socket sock, const char *url, size_t recv_max,
                    unsigned check_ms, enum net_probe kind);

/* Stops the guard thread and closes the listener. Blocks for at most one check.
 * net_guard_stop(NULL) does nothing. */
void net_guard_stop(struct net_guard *g);

#endif
