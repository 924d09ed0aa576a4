/* The runtime directory where sluice's sockets (and by default its data) live:
 * $SLUICE_DIR, else $XDG_RUNTIME_DIR/sluice, else /tmp/sluice-$UID. */
#ifndef SLUICE_RUNDIR_H
#define SLUICE_RUNDIR_H

#include <stddef.h>
#include <sys/types.h>

#define RUNDIR_MAX 256

/* The mode bits a runtime directory must not have: any for others, read or write for its
 * group. A group may search it (a broker given --socket-group makes it 0710 and that group
 * its group), which lets the group reach a socket whose mode lets it in and nothing more:
 * only who may write the directory could replace a socket in it. */
#define RUNDIR_DENIED 0067

/* Writes the runtime directory's path into out. Pure: reads the environment (the caller's
 * main passes getenv results), creates nothing. Returns 0 or SL_EBADREQ if the path is too long. */
int rundir_path(char *out, size_t cap, const char *sluice_dir, const char *xdg_runtime_dir);

/* Creates dir (and missing parents) with mode 0700 if needed, tightens a directory of this
 * user's that rundir_check would refuse to 0700 (one shared with a group by rundir_share is
 * kept), then checks it with rundir_check. Returns 0 or SL_EIO, logged. */
int rundir_ensure(const char *dir);

/* The broker's say on who else may reach its sockets, for dir (rundir_ensure's): with gid
 * (gid_t)-1 nobody, mode 0700; else the members of group gid, which becomes dir's group, mode
 * 0710 (search only: they cannot list, add, remove or replace anything). Returns 0 or SL_EIO
 * (logged: e.g. the user is not a member of gid). */
int rundir_share(const char *dir, gid_t gid);

/* Whether dir may hold this user's sockets: it must be a directory, not a symbolic link (lstat:
 * a link another user planted is never followed), owned by the effective user, with no access
 * for others and none but search for its group (RUNDIR_DENIED: 0700 or 0710). Anyone who can write there (or who owns it) can put a broker of theirs
 * in its place: a client would hand that broker its payloads, a worker run its jobs. Returns
 * 0; SL_ENOTFOUND when nothing is at dir; SL_EFORBIDDEN when something is there that fails the
 * rule; SL_EIO when lstat fails otherwise. On any failure why (cap bytes) says what is wrong,
 * naming the path, its owner and its mode. */
int rundir_check(const char *dir, char *why, size_t cap);

/* Whether the socket file at path (in a directory rundir_check accepted) is this user's: not a
 * symbolic link, owned by the effective user, not writable by others. Nothing at path is fine
 * (the server is not up yet). The group's bits are not looked at: nng creates a socket with
 * the umask's mode (0775 under the common umask 002) a moment before it makes it 0600, and a
 * client must not refuse a broker that is just starting. Returns 0, SL_EFORBIDDEN or SL_EIO,
 * with why as above. */
int rundir_check_socket(const char *path, char *why, size_t cap);

/* For a client's default address: "ipc://DIR/NAME" into out, once DIR passed rundir_check and
 * DIR/NAME passed rundir_check_socket. A DIR that does not exist is created (mode 0700, its
 * parent must exist) before it is checked, so that nobody else can create it between this
 * check and a later connection attempt; when it cannot be created (no parent, no permission),
 * nothing can connect and DIR passes. Returns 0; SL_EBADREQ when the socket path is too long;
 * SL_EFORBIDDEN or SL_EIO when DIR or the socket is refused. why (whycap bytes) says why on
 * failure. An address the user gives explicitly (--url, SLUICE_URL) is the user's choice and
 * is not checked. */
int rundir_client_url(char *out, size_t cap, const char *dir, const char *name, char *why,
                      size_t whycap);

/* rundir_client_url for the default runtime directory (rundir_default). */
int rundir_default_url(char *out, size_t cap, const char *name, char *why, size_t whycap);

/* Writes "ipc://DIR/NAME" into out. Returns 0 or SL_EBADREQ when the socket path would exceed
 * the 107 bytes a Unix socket path may have. */
int rundir_ipc_url(char *out, size_t cap, const char *dir, const char *name);

/* The default runtime directory from the environment (SLUICE_DIR, XDG_RUNTIME_DIR), for a
 * program's main. Returns 0 or SL_EBADREQ. */
int rundir_default(char *out, size_t cap);

#endif
