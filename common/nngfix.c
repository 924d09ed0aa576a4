/* A correction to how nng 1.5.2 reads one error, linked into every sluice program.
 *
 * nng 1.5.2 turns EPIPE from a socket write into NNG_ECLOSED, the code that also means "this
 * listener (or dialer) has been closed". A peer that goes away while the server writes the
 * first bytes of the connection handshake therefore makes the listener stop accepting for
 * good (nng issue #1518, fixed in nng 1.6), and a server that goes away during a client's
 * handshake stops that client's dialer from reconnecting.
 *
 * libnng writes to its IPC and TCP connections with sendmsg(). sluice's programs define
 * sendmsg() themselves (the Makefile links this file into each of them with -u sendmsg), so
 * libnng's calls come here: the write is the system call itself, and a peer gone in the
 * middle of it is reported as ECONNRESET, the remote condition it is. nng then counts a
 * disconnect and goes on accepting (or reconnecting). Nothing else changes: every other
 * result, and every other caller's, is the system call's own. */
#include <errno.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
    long n = syscall(SYS_sendmsg, fd, msg, flags);
    if (n < 0 && errno == EPIPE) {
        errno = ECONNRESET;
    }
    return (ssize_t)n;
}
