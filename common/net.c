#include "net.h"

#include "err.h"
#include "log.h"

#include <string.h>

int
net_listen(nng_socket sock, const char *url, size_t recv_max, nng_listener *lp)
{
    nng_listener l;
    int rv;

    if ((rv = nng_listener_create(&l, sock, url)) != 0) {
        LOG(LOG_ERROR, "listen", "url=\"%s\" error=\"%s\"", url, nng_strerror(rv));
        return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? SL_EBADREQ : SL_EIO;
    }
    if (strncmp(url, "ipc://", 6) == 0 &&
        (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600)) != 0) {
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
    *lp = l;
    return 0;
}
