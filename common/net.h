/* Listening, shared by the servers (broker, worker-pool). nng 1.5.2's listener wedge after a
 * peer that disconnects mid-handshake (nng issue #1518) is prevented by common/nngfix.c. */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#include <nng/nng.h>
#include <stddef.h>
#include <sys/types.h>

/* Starts a listener for sock on url with messages capped at recv_max bytes; an ipc:// socket
 * file is made 0600 (the runtime directory is 0700 as well: nng binds before it chmods).
 * Returns 0, SL_EBADREQ (invalid URL) or SL_EIO (address in use, permission...), logged. */
int net_listen(nng_socket sock, const char *url, size_t recv_max, nng_listener *lp);

/* As net_listen, but an ipc:// socket file gets mode (0600, 0620 or 0660: never anything
 * for others) and, when gid is not (gid_t)-1, that group. The file has the user's group for
 * the moment between nng's chmod and the chown: the runtime directory (rundir_share) is what
 * keeps everyone else out meanwhile. Returns as net_listen; a failed chown is SL_EIO. */
int net_listen_shared(nng_socket sock, const char *url, size_t recv_max, unsigned mode,
                      gid_t gid, nng_listener *lp);

#endif
