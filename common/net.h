/* Listening helpers shared by the servers (broker, worker-pool). */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#include <nng/nng.h>
#include <stddef.h>

/* Starts a listener for sock on url with messages capped at recv_max bytes; an ipc:// socket
 * file is made 0600 (the runtime directory is 0700 as well: nng binds before it chmods).
 * Returns 0, SL_EBADREQ (invalid URL) or SL_EIO (address in use, permission...), logged. */
int net_listen(nng_socket sock, const char *url, size_t recv_max, nng_listener *lp);

#endif
