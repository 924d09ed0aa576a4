/* What the test tools that speak nng's wire format by hand (sl-raw, sl-hog) share: reading
 * a socket to a deadline. Everything is static inline, so a tool pays only for what it uses. */
#ifndef SLUICE_TOOLS_RAWIO_H
#define SLUICE_TOOLS_RAWIO_H

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

/* The monotonic clock, in ms. */
static inline int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly n bytes within timeout_ms; -1 on close, error or timeout. */
static inline int
read_all(int fd, void *buf, size_t n, int timeout_ms)
{
    unsigned char *p = buf;
    int64_t end = now_ms() + timeout_ms;
    while (n > 0) {
        struct pollfd pf = { fd, POLLIN, 0 };
        int64_t left = end - now_ms();
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
            return -1;
        }
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

#endif
