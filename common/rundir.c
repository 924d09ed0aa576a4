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

int
rundir_ensure(const char *dir)
{
    char path[RUNDIR_MAX];
    struct stat st;
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(path)) {
        LOG(LOG_ERROR, "rundir.invalid", "dir=\"%s\" reason=\"path empty or too long\"", dir);
        return SL_EIO;
    }
    memcpy(path, dir, n + 1);
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
    if (lstat(path, &st) != 0) {
        LOG(LOG_ERROR, "rundir.stat", "dir=\"%s\" error=\"%s\"", path, strerror(errno));
        return SL_EIO;
    }
    if (!S_ISDIR(st.st_mode)) {
        LOG(LOG_ERROR, "rundir.invalid", "dir=\"%s\" reason=\"not a directory\"", path);
        return SL_EIO;
    }
    if (st.st_uid != geteuid()) {
        LOG(LOG_ERROR, "rundir.invalid", "dir=\"%s\" reason=\"owned by uid %u, not by us\"", path,
            (unsigned)st.st_uid);
        return SL_EIO;
    }
    if ((st.st_mode & 0777) != 0700 && chmod(path, 0700) != 0) {
        LOG(LOG_ERROR, "rundir.chmod", "dir=\"%s\" error=\"%s\"", path, strerror(errno));
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
