#include "net.h"

#include "err.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int
net_listen(nng_socket sock, const char *url, size_t recv_max, nng_listener *lp)
{
    return net_listen_shared(sock, url, recv_max, 0600, (gid_t)-1, lp);
}

int
net_listen_shared(nng_socket sock, const char *url, size_t recv_max, unsigned mode, gid_t gid,
                  nng_listener *lp)
{
    nng_listener l;
    int rv;

    if ((rv = nng_listener_create(&l, sock, url)) != 0) {
        LOG(LOG_ERROR, "listen", "url=\"%s\" error=\"%s\"", url, nng_strerror(rv));
        return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? SL_EBADREQ : SL_EIO;
    }
    if (strncmp(url, "ipc://", 6) == 0 &&
        (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, (int)(mode & 0660))) != 0) {
        LOG(LOG_ERROR, "listen", "url=\"%s\" error=\"cannot set permissions: %s\"", url,
            nng_strerror(rv));
        nng_listener_close(l);
        return SL_EIO;
    }
    nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, recv_max);
    if ((rv = nng_listener_start(l, 0)) != 0) {
        LOG(LOG_ERROR, "listen", "url=\"%s\" error=\"%s\"", url, nng_strerror(rv));
        nng_listener_close(l);
        return SL_EIO;
    }
    if (strncmp(url, "ipc://", 6) == 0 && gid != (gid_t)-1 && chown(url + 6, (uid_t)-1, gid) != 0) {
        LOG(LOG_ERROR, "listen", "url=\"%s\" error=\"cannot give the socket group %u: %s\"", url,
            (unsigned)gid, strerror(errno));
        nng_listener_close(l);
        return SL_EIO;
    }
    *lp = l;
    return 0;
}
