/* A listening socket of the broker's request server: ipc://PATH (a Unix-domain stream socket)
 * or tcp://HOST:PORT, opened as nng's listeners open them, so that clients built on nng and
 * sluice's own (common/spconn.h) connect alike. */
#ifndef SLUICE_SPLISTEN_H
#define SLUICE_SPLISTEN_H

#include <stdbool.h>
#include <sys/types.h>

struct splisten {
    int fd;                  /* non-blocking; -1 when closed */
    bool ipc;                /* its connections frame messages as IPC does */
    char path[108];          /* the socket file (ipc) */
    dev_t dev;               /* ... as created, so that close removes only ours */
    ino_t ino;
};

/* Listens on url. An ipc:// socket file is given mode (mode & 0660) and, unless gid is
 * (gid_t)-1, group gid; a socket file left by a listener that is gone is replaced, one that
 * answers is not (the address is in use). tcp:// takes a host name or address (empty or "*":
 * every address) and a port. Returns 0 or SL_EBADREQ (a URL it cannot use) or SL_EIO, logged
 * (event=listen). */
int splisten_open(struct splisten *l, const char *url, unsigned mode, gid_t gid);

/* Closes l, removing its socket file if it is still the one l created. Idempotent. */
void splisten_close(struct splisten *l);

#endif
