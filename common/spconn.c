/* An SP req0 connection over a plain stream socket (spconn.h). */
#include "spconn.h"

#include "clock.h"
#include "err.h"

#include <nng/nng.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define PROTO_REQ0 48
#define PROTO_REP0 49
#define ID_BIT 0x80000000u

struct spconn {
    int fd;
    bool ipc;        /* IPC frames carry a type byte before the length */
    uint32_t id;     /* the last request's id (high bit set) */
    uint8_t in[64 << 10]; /* what was read and not yet taken */
    size_t inpos, inlen;
    /* The frame being read, kept across a timeout so that the next read goes on with it. */
    uint8_t h[13];   /* its header: [type], length, request id */
    size_t hgot;
    nng_msg *body;   /* allocated once the header is whole */
    size_t bgot;
};

bool
spconn_handles(const char *url)
{
    return strncmp(url, "ipc://", 6) == 0 || strncmp(url, "tcp://", 6) == 0;
}

static int
left_ms(uint64_t deadline)
{
    uint64_t now = clock_mono_ms();
    if (now >= deadline) {
        return 0;
    }
    return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
}

/* Waits until fd is ready for ev or deadline passes: 0, SL_ETIMEDOUT or SL_EIO. */
static int
wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = ev };
        int r = poll(&p, 1, left_ms(deadline));
        if (r > 0) {
            return (p.revents & (ev | POLLHUP | POLLERR)) != 0 ? 0 : SL_EIO;
        }
        if (r == 0) {
            return SL_ETIMEDOUT;
        }
        if (errno != EINTR) {
            return SL_EIO;
        }
    }
}

/* Connects fd to sa, within deadline (fd is non-blocking). */
static int
connect_within(int fd, const struct sockaddr *sa, socklen_t len, uint64_t deadline)
{
    if (connect(fd, sa, len) == 0) {
        return 0;
    }
    if (errno != EINPROGRESS && errno != EAGAIN) {
        return SL_EUNREACHABLE;
    }
    if (wait_fd(fd, POLLOUT, deadline) != 0) {
        return SL_EUNREACHABLE;
    }
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
        return SL_EUNREACHABLE;
    }
    return 0;
}

static int
open_ipc(const char *path, uint64_t deadline, int *fdp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (path[0] == '\0' || strlen(path) >= sizeof(sa.sun_path)) {
        return SL_EBADREQ;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return SL_EUNREACHABLE;
    }
    int rv = connect_within(fd, (const struct sockaddr *)&sa, sizeof(sa), deadline);
    if (rv != 0) {
        close(fd);
        return rv;
    }
    *fdp = fd;
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" into host and port. */
static int
split_hostport(const char *hp, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    const char *h = hp;
    size_t hn;
    if (hp[0] == '[') {
        const char *close_b = strchr(hp, ']');
        if (close_b == NULL || close_b[1] != ':') {
            return SL_EBADREQ;
        }
        h = hp + 1;
        hn = (size_t)(close_b - h);
        colon = close_b + 1;
    } else {
        colon = strrchr(hp, ':');
        if (colon == NULL) {
            return SL_EBADREQ;
        }
        hn = (size_t)(colon - hp);
    }
    size_t pn = strlen(colon + 1);
    if (hn >= hcap || pn == 0 || pn >= pcap || strspn(colon + 1, "0123456789") != pn) {
        return SL_EBADREQ;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    memcpy(port, colon + 1, pn + 1);
    return 0;
}

static int
open_tcp(const char *hp, uint64_t deadline, int *fdp)
{
    char host[256], port[8];
    if (split_hostport(hp, host, sizeof(host), port, sizeof(port)) != 0) {
        return SL_EBADREQ;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
    if (g != 0) {
        return g == EAI_NONAME || g == EAI_SERVICE ? SL_EBADREQ : SL_EUNREACHABLE;
    }
    int rv = SL_EUNREACHABLE;
    for (struct addrinfo *a = res; a != NULL && rv != 0; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            continue;
        }
        if ((rv = connect_within(fd, a->ai_addr, a->ai_addrlen, deadline)) == 0) {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            *fdp = fd;
        } else {
            close(fd);
        }
    }
    freeaddrinfo(res);
    return rv;
}

/* Writes iov whole within deadline: 0, SL_ETIMEDOUT or SL_EIO. */
static int
write_all(int fd, struct iovec *iov, int n, uint64_t deadline)
{
    while (n > 0) {
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                return SL_EIO;
            }
            int rv = wait_fd(fd, POLLOUT, deadline);
            if (rv != 0) {
                return rv;
            }
            continue;
        }
        size_t done = (size_t)w;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/* Reads into p until *got reaches n (through the connection's buffer), within deadline. On
 * SL_ETIMEDOUT *got says how far it came, and a later call goes on from there. */
static int
fill(struct spconn *c, void *p, size_t n, size_t *got, uint64_t deadline)
{
    uint8_t *out = p;
    while (*got < n) {
        size_t want = n - *got;
        if (c->inpos < c->inlen) {
            size_t k = c->inlen - c->inpos < want ? c->inlen - c->inpos : want;
            memcpy(out + *got, c->in + c->inpos, k);
            c->inpos += k;
            *got += k;
            continue;
        }
        /* Large bodies go straight to their destination; small reads fill the buffer. */
        bool direct = want >= sizeof(c->in);
        ssize_t r = direct ? read(c->fd, out + *got, want) : read(c->fd, c->in, sizeof(c->in));
        if (r > 0) {
            if (direct) {
                *got += (size_t)r;
            } else {
                c->inpos = 0;
                c->inlen = (size_t)r;
            }
            continue;
        }
        if (r == 0) {
            return SL_EIO; /* the peer closed */
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return SL_EIO;
        }
        int rv = wait_fd(c->fd, POLLIN, deadline);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int
read_exact(struct spconn *c, void *p, size_t n, uint64_t deadline)
{
    size_t got = 0;
    return fill(c, p, n, &got, deadline);
}

int
spconn_dial(struct spconn **cp, const char *url, uint64_t timeout_ms)
{
    *cp = NULL;
    if (!spconn_handles(url)) {
        return SL_EBADREQ;
    }
    uint64_t deadline = clock_mono_ms() + timeout_ms;
    struct spconn *c = malloc(sizeof(*c));
    if (c == NULL) {
        return SL_ENOMEM;
    }
    c->ipc = strncmp(url, "ipc://", 6) == 0;
    c->inpos = c->inlen = 0;
    c->hgot = c->bgot = 0;
    c->body = NULL;
    c->fd = -1;
    int rv = c->ipc ? open_ipc(url + 6, deadline, &c->fd) : open_tcp(url + 6, deadline, &c->fd);
    if (rv == 0) {
        uint8_t ours[8] = { 0, 'S', 'P', 0, 0, PROTO_REQ0, 0, 0 }, theirs[8];
        struct iovec iov = { ours, sizeof(ours) };
        const uint8_t want[8] = { 0, 'S', 'P', 0, 0, PROTO_REP0, 0, 0 };
        if (write_all(c->fd, &iov, 1, deadline) != 0 ||
            read_exact(c, theirs, sizeof(theirs), deadline) != 0 ||
            memcmp(theirs, want, sizeof(want)) != 0) {
            rv = SL_EUNREACHABLE;
        }
    }
    if (rv != 0) {
        spconn_close(c);
        return rv;
    }
    /* Ids start from a number of this connection's own, as nng's do, so that a reply meant
     * for another connection's request is not taken for one of ours. */
    uint32_t r = (uint32_t)clock_mono_ns() ^ ((uint32_t)getpid() << 16) ^ (uint32_t)c->fd;
    c->id = ID_BIT | (r & ~ID_BIT);
    *cp = c;
    return 0;
}

uint32_t
spconn_new_id(struct spconn *c)
{
    c->id = ID_BIT | ((c->id + 1) & ~ID_BIT);
    return c->id;
}

int
spconn_send_id(struct spconn *c, uint32_t id, const void *body, size_t n, uint64_t timeout_ms)
{
    uint64_t deadline = clock_mono_ms() + timeout_ms;
    uint64_t len = (uint64_t)n + 4;
    uint8_t h[13];
    size_t hn = 0;
    if (c->ipc) {
        h[hn++] = 1;
    }
    for (int i = 7; i >= 0; i--) {
        h[hn++] = (uint8_t)(len >> (8 * i));
    }
    for (int i = 3; i >= 0; i--) {
        h[hn++] = (uint8_t)(id >> (8 * i));
    }
    struct iovec iov[2] = { { h, hn }, { (void *)body, n } };
    return write_all(c->fd, iov, n > 0 ? 2 : 1, deadline);
}

int
spconn_send(struct spconn *c, const void *body, size_t n, uint64_t timeout_ms)
{
    return spconn_send_id(c, spconn_new_id(c), body, n, timeout_ms);
}

int
spconn_recv_frame(struct spconn *c, struct nng_msg **mp, uint32_t *id, uint64_t timeout_ms)
{
    uint64_t deadline = clock_mono_ms() + timeout_ms;
    size_t hn = c->ipc ? 13 : 12;
    int rv;

    if (c->body == NULL) {
        if ((rv = fill(c, c->h, hn, &c->hgot, deadline)) != 0) {
            return rv;
        }
        if (c->ipc && c->h[0] != 1) {
            return SL_EIO;
        }
        uint64_t len = 0;
        for (size_t i = hn - 12; i < hn - 4; i++) {
            len = len << 8 | c->h[i];
        }
        if (len < 4 || len > SIZE_MAX / 2) {
            return SL_EIO;
        }
        if (nng_msg_alloc(&c->body, (size_t)(len - 4)) != 0) {
            c->body = NULL;
            return SL_ENOMEM;
        }
        c->bgot = 0;
    }
    if ((rv = fill(c, nng_msg_body(c->body), nng_msg_len(c->body), &c->bgot, deadline)) != 0) {
        return rv;
    }
    const uint8_t *idb = c->h + hn - 4;
    *id = (uint32_t)idb[0] << 24 | (uint32_t)idb[1] << 16 | (uint32_t)idb[2] << 8 | idb[3];
    *mp = c->body;
    c->body = NULL;
    c->hgot = 0;
    return 0;
}

int
spconn_recv(struct spconn *c, struct nng_msg **mp, uint64_t timeout_ms)
{
    uint64_t deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        nng_msg *m;
        uint32_t id;
        uint64_t now = clock_mono_ms();
        int rv = spconn_recv_frame(c, &m, &id, now < deadline ? deadline - now : 0);
        if (rv != 0) {
            return rv;
        }
        if (id == c->id) {
            *mp = m;
            return 0;
        }
        nng_msg_free(m); /* a late answer to a request given up on */
    }
}

bool
spconn_closed(const struct spconn *c)
{
    struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };
    return poll(&p, 1, 0) != 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void
spconn_shutdown(struct spconn *c)
{
    (void)shutdown(c->fd, SHUT_RDWR);
}

void
spconn_close(struct spconn *c)
{
    if (c == NULL) {
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    if (c->body != NULL) {
        nng_msg_free(c->body);
    }
    free(c);
}
