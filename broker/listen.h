/* Where the broker serves requests, and who besides its user may reach its ipc:// sockets:
 * --listen (repeatable), --url, --socket-mode and --socket-group, checked together. */
#ifndef SLUICE_LISTEN_H
#define SLUICE_LISTEN_H

#include "rundir.h"
#include "server.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct listen_cfg {
    struct server_listen sl;      /* what server_start_at takes */
    bool shared;                  /* --socket-group given: sl.ipc_gid is its group */
    char ipc_default[RUNDIR_MAX + 16]; /* ipc://DIR/broker.ipc, for "ipc" and no address */
};

/* Fills lc from the options: the addresses are listen[0..nlisten) (nlisten may exceed
 * SERVER_LISTEN_MAX: refused), "ipc" naming ipc://DIR/broker.ipc; with none, url; with
 * neither, ipc://DIR/broker.ipc. mode and group may be NULL; a group with no mode means
 * 0660; a mode that lets a group in needs a group, and a group needs an ipc:// address.
 * Returns 0, or -1 with why (a usage error: nothing was created). */
int listen_configure(struct listen_cfg *lc, const char *const *listen, unsigned nlisten,
                     const char *url, const char *mode, const char *group, const char *dir,
                     char *why, size_t cap);

#endif
