#include "rundir.h"

#include "err.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
rundir_path(char *out, size_t cap, const char *sluice_dir, const char *xdg_runtime_dir)
{
    int n;

    if (sluice_dir != NULL && sluice_dir[0] != '\0') {
        n = snprintf(out, cap, "%s", sluice_dir);
    } else if (xdg_runtime_dir != NULL && xdg_runtime_dir[0] != '\0') {
        n = snprintf(out, cap, "%s/sluice", xdg_runtime_dir);
    } else {
        n = snprintf(out, cap, "/tmp/sluice-%u", (unsigned)getuid());
    }
    if (n < 0 || (size_t)n >= cap) {
        return SL_EBADREQ;
    }
    /* A trailing slash would double in the socket paths. */
    while (n > 1 && out[n - 1] == '/') {
        out[--n] = '\0';
    }
    return 0;
}

int
rundir_default(char *out, size_t cap)
{
    return rundir_path(out, cap, getenv("SLUICE_DIR"), getenv("XDG_RUNTIME_DIR"));
}

/* "owned by uid U, mode 0MMM" of st, for the reasons below. */
static void
describe(const struct stat *st, char *out, size_t cap)
{
    snprintf(out, cap, "owned by uid %u, mode %04o", (unsigned)st->st_uid,
             (unsigned)(st->st_mode & 07777));
}

int
rundir_check(const char *dir, char *why, size_t cap)
{
    char path[RUNDIR_MAX];
    struct stat st;
    char what[64];
    size_t n = strlen(dir);

    /* lstat follows a link named with a trailing slash: the name is looked at without one. */
    while (n > 1 && dir[n - 1] == '/') {
        n--;
    }
    if (n == 0 || n >= sizeof(path)) {
        snprintf(why, cap, "runtime directory %s: path empty or too long", dir);
        return SL_EFORBIDDEN;
    }
    memcpy(path, dir, n);
    path[n] = '\0';
    dir = path;
    if (lstat(dir, &st) != 0) {
        int e = errno;
        snprintf(why, cap, "runtime directory %s: %s", dir, strerror(e));
        return e == ENOENT ? SL_ENOTFOUND : SL_EIO;
    }
    describe(&st, what, sizeof(what));
    if (S_ISLNK(st.st_mode)) {
        snprintf(why, cap, "runtime directory %s is a symbolic link (%s): refused, whoever made "
                 "it could point it elsewhere; remove it, or set SLUICE_DIR to a directory of "
                 "your own", dir, what);
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(why, cap, "runtime directory %s is not a directory (%s): remove it, or set "
                 "SLUICE_DIR to a directory of your own", dir, what);
    } else if (st.st_uid != geteuid()) {
        snprintf(why, cap, "runtime directory %s is %s, not yours (uid %u): refused, its owner "
                 "could serve its sockets; remove it, or set SLUICE_DIR to a directory of your "
                 "own", dir, what, (unsigned)geteuid());
    } else if ((st.st_mode & RUNDIR_DENIED) != 0) {
        snprintf(why, cap, "runtime directory %s is %s: refused, others may reach or replace "
                 "its sockets; chmod 700 %s (or 710, for a group given --socket-group)", dir,
                 what, dir);
    } else {
        return 0;
    }
    return SL_EFORBIDDEN;
}

int
rundir_check_socket(const char *path, char *why, size_t cap)
{
    struct stat st;
    char what[64];

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        snprintf(why, cap, "socket %s: %s", path, strerror(errno));
        return SL_EIO;
    }
    describe(&st, what, sizeof(what));
    if (S_ISLNK(st.st_mode)) {
        snprintf(why, cap, "socket %s is a symbolic link (%s): refused; remove it", path, what);
    } else if (st.st_uid != geteuid()) {
        snprintf(why, cap, "socket %s is %s, not yours (uid %u): refused, its owner could be "
                 "listening; remove it", path, what, (unsigned)geteuid());
    } else if ((st.st_mode & 0002) != 0) {
        snprintf(why, cap, "socket %s is %s: refused, others may replace it; remove it and "
                 "restart its server", path, what);
    } else {
        return 0;
    }
    return SL_EFORBIDDEN;
}

int
rundir_ensure(const char *dir)
{
    char path[RUNDIR_MAX], why[RUNDIR_MAX + 256];
    struct stat st;
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(path)) {
        LOG(LOG_ERROR, "rundir.invalid", "dir=\"%s\" reason=\"path empty or too long\"", dir);
        return SL_EIO;
    }
    memcpy(path, dir, n + 1);
    while (n > 1 && path[n - 1] == '/') {
        path[--n] = '\0'; /* lstat would follow a link named with a trailing slash */
    }
    /* Create parents as needed; only the last component must end up ours and 0700. */
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                LOG(LOG_ERROR, "rundir.mkdir", "dir=\"%s\" error=\"%s\"", path, strerror(errno));
                return SL_EIO;
            }
            *p = '/';
        }
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        LOG(LOG_ERROR, "rundir.mkdir", "dir=\"%s\" error=\"%s\"", path, strerror(errno));
        return SL_EIO;
    }
    /* A directory of ours that is open to others is closed; anything else is refused. One a
     * broker shared with a group (rundir_share) is kept as it is. */
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
        ((st.st_mode & 0700) != 0700 || (st.st_mode & (RUNDIR_DENIED | 07000)) != 0) &&
        chmod(path, 0700) != 0) {
        LOG(LOG_ERROR, "rundir.chmod", "dir=\"%s\" error=\"%s\"", path, strerror(errno));
        return SL_EIO;
    }
    if (rundir_check(path, why, sizeof(why)) != 0) {
        LOG(LOG_ERROR, "rundir.invalid", "dir=\"%s\" reason=\"%s\"", path, why);
        return SL_EIO;
    }
    return 0;
}

int
rundir_share(const char *dir, gid_t gid)
{
    mode_t mode = gid == (gid_t)-1 ? 0700 : 0710;

    /* The group first: a mode that lets it in applies only once it is the right group. */
    if (gid != (gid_t)-1 && chown(dir, (uid_t)-1, gid) != 0) {
        LOG(LOG_ERROR, "rundir.chown", "dir=\"%s\" gid=%u error=\"%s\"", dir, (unsigned)gid,
            strerror(errno));
        return SL_EIO;
    }
    if (chmod(dir, mode) != 0) {
        LOG(LOG_ERROR, "rundir.chmod", "dir=\"%s\" error=\"%s\"", dir, strerror(errno));
        return SL_EIO;
    }
    return 0;
}

int
rundir_ipc_url(char *out, size_t cap, const char *dir, const char *name)
{
    /* sun_path holds 108 bytes including the terminating NUL. */
    if (strlen(dir) + 1 + strlen(name) > 107) {
        return SL_EBADREQ;
    }
    int n = snprintf(out, cap, "ipc://%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? SL_EBADREQ : 0;
}

int
rundir_client_url(char *out, size_t cap, const char *dir, const char *name, char *why,
                  size_t whycap)
{
    char path[RUNDIR_MAX + 128];

    if (rundir_ipc_url(out, cap, dir, name) != 0) {
        snprintf(why, whycap, "the socket path %s/%s is too long for a Unix socket: set a "
                 "shorter SLUICE_DIR", dir, name);
        return SL_EBADREQ;
    }
    int rv = rundir_check(dir, why, whycap);
    if (rv == SL_ENOTFOUND) {
        /* Made ours now, it cannot be taken later. One that cannot be made (no parent, no
         * permission) leaves nothing to reach: the connection fails as without a server. */
        (void)mkdir(dir, 0700);
        if ((rv = rundir_check(dir, why, whycap)) == SL_ENOTFOUND) {
            return 0;
        }
    }
    if (rv != 0) {
        return rv;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return rundir_check_socket(path, why, whycap);
}

int
rundir_default_url(char *out, size_t cap, const char *name, char *why, size_t whycap)
{
    char dir[RUNDIR_MAX];

    if (rundir_default(dir, sizeof(dir)) != 0) {
        snprintf(why, whycap, "the runtime directory's path is too long: set a shorter "
                 "SLUICE_DIR");
        return SL_EBADREQ;
    }
    return rundir_client_url(out, cap, dir, name, why, whycap);
}
