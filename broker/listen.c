#include "listen.h"

#include "sockperm.h"

#include <stdio.h>
#include <string.h>

/* Adds the addresses to lc->sl. Returns 0 or -1 with why. */
static int
add_urls(struct listen_cfg *lc, const char *const *listen, unsigned nlisten, const char *url,
         char *why, size_t cap)
{
    if (nlisten > SERVER_LISTEN_MAX) {
        snprintf(why, cap, "--listen: at most %d addresses", SERVER_LISTEN_MAX);
        return -1;
    }
    for (unsigned i = 0; i < nlisten; i++) {
        const char *u = strcmp(listen[i], "ipc") == 0 ? lc->ipc_default : listen[i];
        for (unsigned j = 0; j < lc->sl.n; j++) {
            if (strcmp(lc->sl.urls[j], u) == 0) {
                snprintf(why, cap, "--listen: %s given twice", u);
                return -1;
            }
        }
        lc->sl.urls[lc->sl.n++] = u;
    }
    if (lc->sl.n == 0) {
        lc->sl.urls[lc->sl.n++] = url != NULL ? url : lc->ipc_default;
    }
    for (unsigned i = 0; i < lc->sl.n; i++) {
        if (strncmp(lc->sl.urls[i], "ipc://", 6) != 0 && strncmp(lc->sl.urls[i], "tcp://", 6) != 0) {
            snprintf(why, cap, "%s: the broker listens on ipc:// and tcp:// addresses",
                     lc->sl.urls[i]);
            return -1;
        }
    }
    return 0;
}

int
listen_configure(struct listen_cfg *lc, const char *const *listen, unsigned nlisten,
                 const char *url, const char *mode, const char *group, const char *dir,
                 char *why, size_t cap)
{
    memset(lc, 0, sizeof(*lc));
    lc->sl.ipc_mode = 0600;
    lc->sl.ipc_gid = (gid_t)-1;
    if (rundir_ipc_url(lc->ipc_default, sizeof(lc->ipc_default), dir, "broker.ipc") != 0) {
        snprintf(why, cap, "socket path %s/broker.ipc is too long for a Unix socket", dir);
        return -1;
    }
    if (add_urls(lc, listen, nlisten, url, why, cap) != 0) {
        return -1;
    }
    if (mode != NULL && sockperm_mode_parse(mode, &lc->sl.ipc_mode, why, cap) != 0) {
        return -1;
    }
    if (group == NULL) {
        if ((lc->sl.ipc_mode & 0070) != 0) {
            snprintf(why, cap, "--socket-mode %04o lets a group in: say which with "
                     "--socket-group GROUP", lc->sl.ipc_mode);
            return -1;
        }
        return 0;
    }
    if (mode == NULL) {
        lc->sl.ipc_mode = 0660;
    } else if ((lc->sl.ipc_mode & 0070) == 0) {
        snprintf(why, cap, "--socket-group %s with --socket-mode %04o would let the group in "
                 "nowhere: give --socket-mode 0660", group, lc->sl.ipc_mode);
        return -1;
    }
    bool ipc = false;
    for (unsigned i = 0; i < lc->sl.n; i++) {
        ipc = ipc || strncmp(lc->sl.urls[i], "ipc://", 6) == 0;
    }
    if (!ipc) {
        snprintf(why, cap, "--socket-group applies to ipc:// sockets, and the broker listens "
                 "on none");
        return -1;
    }
    if (sockperm_group_parse(group, &lc->sl.ipc_gid, why, cap) != 0) {
        return -1;
    }
    lc->shared = true;
    return 0;
}
