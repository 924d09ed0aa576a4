#include "sigpipe.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int fds[2] = { -1, -1 };

static void
on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    ssize_t w = write(fds[1], &c, 1); /* a full pipe already holds a wake-up */
    (void)w;
    errno = saved;
}

int
sigpipe_install(const int *sigs, size_t n)
{
    struct sigaction sa;

    if (fds[0] < 0 && pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        return SL_EIO;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < n; i++) {
        if (sigaction(sigs[i], &sa, NULL) != 0) {
            return SL_EIO;
        }
    }
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

int
sigpipe_fd(void)
{
    return fds[0];
}

int
sigpipe_next(void)
{
    unsigned char c;
    return fds[0] >= 0 && read(fds[0], &c, 1) == 1 ? c : 0;
}

int
sigpipe_wait(int timeout_ms)
{
    struct pollfd pfd = { fds[0], POLLIN, 0 };
    int sig;

    while ((sig = sigpipe_next()) == 0) {
        int n = poll(&pfd, 1, timeout_ms);
        if (n == 0) {
            return 0;
        }
        if (n < 0 && errno != EINTR) {
            return 0;
        }
    }
    return sig;
}
