/* sl-raw: speaks nng's IPC wire format by hand over a Unix socket, to do what no nng client
 * does: stop in the middle of a message, or connect and disconnect a thousand times quickly.
 *
 * The format (nng's IPC transport): each side first sends an 8-byte SP header
 * (0x00 'S' 'P' 0x00, the 16-bit protocol number big-endian: req0 is 48, rep0 49, then two
 * zero bytes); then every message is one byte of type (1), an 8-byte big-endian length, and
 * that many bytes. A REQ message's bytes start with the 4-byte request id (high bit set)
 * followed by the request itself (here a msgpack map).
 *
 *   sl-raw PATH half DECLARED SENT HOLD_MS [READY_FILE]
 *       handshake, then a message header declaring DECLARED bytes of which only SENT are sent
 *       (SENT <= DECLARED); then wait up to HOLD_MS for the broker to close the connection.
 *       READY_FILE, if given, is created once the bytes are out. Prints "closed_after_ms=N"
 *       when the broker closed it, or "held_ms=N" when it was still open at HOLD_MS.
 *   sl-raw PATH cycle N
 *       N times: connect, handshake, send one whole ping request, read its reply, close; then
 *       N more times: connect, handshake, send half a ping, close. Prints "ok=K" (replies
 *       that were well-formed and "ok": true) and "failed=F".
 *
 * Exit status: 0 done (whatever the broker did), 1 cannot connect or a system error, 2 usage. */
#include "rawio.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROTO_REQ0 48
#define PROTO_REP0 49

/* {"op": "ping"} after the 4-byte request id 0x80000001. */
static const unsigned char ping_req[] = { 0x80, 0x00, 0x00, 0x01, 0x81, 0xa2, 'o', 'p',
                                          0xa4, 'p',  'i',  'n',  'g' };

static int
dial(const char *path)
{
    struct sockaddr_un sa;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "sl-raw: path too long\n");
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends our req0 header and checks the peer's rep0 header. */
static int
handshake(int fd)
{
    const unsigned char ours[8] = { 0, 'S', 'P', 0, 0, PROTO_REQ0, 0, 0 };
    unsigned char theirs[8];
    if (write_all(fd, ours, sizeof(ours)) != 0 || read_all(fd, theirs, 8, 5000) != 0) {
        return -1;
    }
    if (theirs[0] != 0 || theirs[1] != 'S' || theirs[2] != 'P' || theirs[5] != PROTO_REP0) {
        return -1;
    }
    return 0;
}

static void
put_header(unsigned char h[9], uint64_t len)
{
    h[0] = 1;
    for (int i = 0; i < 8; i++) {
        h[1 + i] = (unsigned char)(len >> (56 - 8 * i));
    }
}

static int
half(const char *path, uint64_t declared, uint64_t sent, int64_t hold_ms, const char *ready)
{
    unsigned char h[9], chunk[4096];
    int fd = dial(path);
    if (fd < 0) {
        fprintf(stderr, "sl-raw: cannot connect to %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (handshake(fd) != 0) {
        fprintf(stderr, "sl-raw: no SP handshake from %s\n", path);
        close(fd);
        return 1;
    }
    put_header(h, declared);
    /* The body: a request id and the start of a push map, then filler; cut at sent. */
    memset(chunk, 'x', sizeof(chunk));
    memcpy(chunk, "\x80\x00\x00\x07\x83\xa2op\xa4push", 12);
    int64_t t0 = now_ms();
    if (write_all(fd, h, sizeof(h)) != 0) {
        printf("closed_after_ms=%lld\n", (long long)(now_ms() - t0));
        close(fd);
        return 0;
    }
    for (uint64_t done = 0; done < sent;) {
        size_t n = sent - done < sizeof(chunk) ? (size_t)(sent - done) : sizeof(chunk);
        if (write_all(fd, chunk, n) != 0) {
            printf("closed_after_ms=%lld\n", (long long)(now_ms() - t0));
            close(fd);
            return 0;
        }
        done += n;
    }
    if (ready != NULL) {
        FILE *f = fopen(ready, "w");
        if (f != NULL) {
            fclose(f);
        }
    }
    fflush(stdout);
    /* The broker sends nothing before the message is whole: readable means closed. */
    for (;;) {
        int64_t left = t0 + hold_ms - now_ms();
        if (left <= 0) {
            printf("held_ms=%lld\n", (long long)(now_ms() - t0));
            break;
        }
        struct pollfd pf = { fd, POLLIN, 0 };
        int r = poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
        if (r > 0) {
            char c;
            ssize_t got = recv(fd, &c, 1, 0);
            if (got <= 0) {
                printf("closed_after_ms=%lld\n", (long long)(now_ms() - t0));
                break;
            }
        }
    }
    close(fd);
    return 0;
}

static int
cycle(const char *path, long n)
{
    long ok = 0, failed = 0;
    unsigned char h[9], rh[9], rep[512];

    for (long i = 0; i < n; i++) {
        int fd = dial(path);
        if (fd < 0 || handshake(fd) != 0) {
            failed++;
            if (fd >= 0) {
                close(fd);
            }
            continue;
        }
        put_header(h, sizeof(ping_req));
        uint64_t len = 0;
        if (write_all(fd, h, 9) == 0 && write_all(fd, ping_req, sizeof(ping_req)) == 0 &&
            read_all(fd, rh, 9, 5000) == 0) {
            for (int k = 0; k < 8; k++) {
                len = len << 8 | rh[1 + k];
            }
        }
        /* The reply: our request id, then a map whose "ok" is true (0xc3 after "ok"). */
        if (len > 4 && len <= sizeof(rep) && read_all(fd, rep, (size_t)len, 5000) == 0 &&
            memcmp(rep, ping_req, 4) == 0 && memmem(rep, (size_t)len, "\xa2ok\xc3", 4) != NULL) {
            ok++;
        } else {
            failed++;
        }
        close(fd);
    }
    for (long i = 0; i < n; i++) {
        int fd = dial(path);
        if (fd < 0) {
            failed++;
            continue;
        }
        if (handshake(fd) == 0) {
            put_header(h, sizeof(ping_req));
            (void)(write_all(fd, h, 9) == 0 && write_all(fd, ping_req, 6) == 0);
        }
        close(fd);
    }
    printf("ok=%ld failed=%ld\n", ok, failed);
    return 0;
}

static int
num(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        fprintf(stderr, "sl-raw: not a number: '%s'\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

int
main(int argc, char **argv)
{
    uint64_t a, b, c;
    if (argc >= 6 && argc <= 7 && strcmp(argv[2], "half") == 0) {
        if (num(argv[3], &a) != 0 || num(argv[4], &b) != 0 || num(argv[5], &c) != 0 || b > a) {
            return 2;
        }
        return half(argv[1], a, b, (int64_t)c, argc == 7 ? argv[6] : NULL);
    }
    if (argc == 4 && strcmp(argv[2], "cycle") == 0) {
        if (num(argv[3], &a) != 0 || a > 1000000) {
            return 2;
        }
        return cycle(argv[1], (long)a);
    }
    fprintf(stderr, "usage: sl-raw PATH half DECLARED SENT HOLD_MS [READY_FILE]\n"
                    "       sl-raw PATH cycle N\n");
    return 2;
}
