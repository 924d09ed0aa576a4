/* The runtime directory where sluice's sockets (and by default its data) live:
 * $SLUICE_DIR, else $XDG_RUNTIME_DIR/sluice, else /tmp/sluice-$UID. */
#ifndef SLUICE_RUNDIR_H
#define SLUICE_RUNDIR_H

#include <stddef.h>

#define RUNDIR_MAX 256

/* Writes the runtime directory's path into out. Pure: reads the environment (the caller's
 * main passes getenv results), creates nothing. Returns 0 or SL_EBADREQ if the path is too long. */
int rundir_path(char *out, size_t cap, const char *sluice_dir, const char *xdg_runtime_dir);

/* Creates dir (and missing parents) with mode 0700 if needed and checks that it is a directory
 * owned by this user, tightening its mode to 0700. Returns 0 or SL_EIO, logged. */
int rundir_ensure(const char *dir);

/* Writes "ipc://DIR/NAME" into out. Returns 0 or SL_EBADREQ when the socket path would exceed
 * the 107 bytes a Unix socket path may have. */
int rundir_ipc_url(char *out, size_t cap, const char *dir, const char *name);

/* The default runtime directory from the environment (SLUICE_DIR, XDG_RUNTIME_DIR), for a
 * program's main. Returns 0 or SL_EBADREQ. */
int rundir_default(char *out, size_t cap);

#endif
