/* sl-hog: clients that hold a broker's resources, and the well-behaved clients that measure what
 * that costs the others.
 *
 *   sl-hog URL flood N HOLD_MS [EVERY_US [CONNS]]
 *       A client that sends and never reads: connects (raw SP framing over ipc:// or tcp://,
 *       as sl-raw), sends N pipelined ping requests without a token at once, then (EVERY_US
 *       given, not 0) one more every EVERY_US microseconds, and reads nothing. When the broker
 *       closes the connection it connects again and does the same, CONNS connections in all
 *       (default 1), until HOLD_MS have passed (or SIGTERM). Prints "conn=I written=K" once a
 *       connection's first N are out (or have made no progress for 500 ms) and "conn=I
 *       closed_ms=T" when the broker closed it; at the end "conns=C closed=D".
 *   sl-hog URL idle N HOLD_MS
 *       Opens N connections (SP headers exchanged, then silent) and holds them for HOLD_MS
 *       (or until SIGTERM). Prints "opened=K failed=F" once all are tried (K got the
 *       broker's header within 20 s), then "closed=C" each time the number of them the broker
 *       has closed changes.
 *   sl-hog URL ping N TIMEOUT_MS [TOKEN_FILE]
 *       N pings one after another on one nng REQ connection; prints "n=N p50_us=A p99_us=B
 *       max_us=C". A reply not there within TIMEOUT_MS ends it: "timeout after K replies".
 *   sl-hog URL push N BYTES GO_FILE
 *       Connects (nng REQ) and checks the connection with a ping, prints "connected", waits
 *       for GO_FILE to exist, then sends N pushes of one BYTES-byte job each to group "hog" on
 *       that one connection. Prints "pushed=K failed=F" and the first error's reply.
 *
 * Exit status: 0 done; 1 a timeout, a failed push or a system error; 2 usage. */
#include "rawio.h"
#include "token.h"
#include "wire.h"

#include <errno.h>
#include <netdb.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROTO_REQ0 48
#define PROTO_REP0 49

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --- raw SP connections ------------------------------------------------------------------- */

struct addr {
    bool ipc;               /* ipc framing (a type byte before the length) */
    struct sockaddr_storage sa;
    socklen_t len;
};

static int
parse_url(const char *url, struct addr *a)
{
    memset(a, 0, sizeof(*a));
    if (strncmp(url, "ipc://", 6) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;
        if (strlen(url + 6) >= sizeof(un->sun_path)) {
            return -1;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, url + 6, strlen(url + 6) + 1);
        a->len = sizeof(*un);
        a->ipc = true;
        return 0;
    }
    if (strncmp(url, "tcp://", 6) == 0) {
        char host[256];
        const char *colon = strrchr(url + 6, ':');
        if (colon == NULL || (size_t)(colon - (url + 6)) >= sizeof(host)) {
            return -1;
        }
        memcpy(host, url + 6, (size_t)(colon - (url + 6)));
        host[colon - (url + 6)] = '\0';
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
        if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
            return -1;
        }
        memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
        a->len = res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
    }
    return -1;
}

/* Connects and exchanges SP headers (req0 against rep0). Returns the socket, or -1. A small
 * receive buffer makes a TCP peer that does not read stop the sender early. */
static int
sp_connect(const struct addr *a)
{
    static const unsigned char ours[8] = { 0, 'S', 'P', 0, 0, PROTO_REQ0, 0, 0 };
    unsigned char theirs[8];
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    if (connect(fd, (const struct sockaddr *)&a->sa, a->len) != 0 ||
        send(fd, ours, sizeof(ours), MSG_NOSIGNAL) != (ssize_t)sizeof(ours) ||
        read_all(fd, theirs, sizeof(theirs), 5000) != 0 || theirs[1] != 'S' ||
        theirs[5] != PROTO_REP0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Has the peer closed fd (without our reading what it sent)? */
static bool
peer_closed(int fd, int wait_ms)
{
    struct pollfd pf = { fd, POLLRDHUP, 0 };
    return poll(&pf, 1, wait_ms) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* --- flood ------------------------------------------------------------------------------- */

/* n ping requests, each framed, in one buffer. */
static unsigned char *
pings(bool ipc, uint64_t n, size_t *len)
{
    static const unsigned char body[] = { 0x81, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g' };
    size_t one = (ipc ? 9 : 8) + 4 + sizeof(body);
    unsigned char *buf = malloc(one * n), *p = buf;
    if (buf == NULL) {
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t mlen = 4 + sizeof(body);
        if (ipc) {
            *p++ = 1;
        }
        for (int k = 0; k < 8; k++) {
            *p++ = (unsigned char)(mlen >> (56 - 8 * k));
        }
        uint32_t id = 0x80000000u | (uint32_t)(i + 1);
        for (int k = 0; k < 4; k++) {
            *p++ = (unsigned char)(id >> (24 - 8 * k));
        }
        memcpy(p, body, sizeof(body));
        p += sizeof(body);
    }
    *len = one * n;
    return buf;
}

/* Writes buf until done, closed, or no progress for 500 ms. Returns the bytes written. */
static size_t
write_until_stuck(int fd, const unsigned char *buf, size_t len)
{
    size_t done = 0;
    while (done < len && !stop) {
        struct pollfd pf = { fd, POLLOUT, 0 };
        if (poll(&pf, 1, 500) <= 0 || (pf.revents & (POLLHUP | POLLERR))) {
            break;
        }
        ssize_t w = send(fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (w <= 0) {
            break;
        }
        done += (size_t)w;
    }
    return done;
}

static int
flood(const struct addr *a, uint64_t n, int64_t hold_ms, int64_t every_us, uint64_t max_conns)
{
    size_t len, one;
    unsigned char *buf = pings(a->ipc, n, &len);
    int64_t end = now_us() + hold_ms * 1000;
    long conns = 0, closed = 0;

    if (buf == NULL) {
        return 1;
    }
    one = len / n;
    while (!stop && now_us() < end && (uint64_t)conns < max_conns) {
        int fd = sp_connect(a);
        if (fd < 0) {
            usleep(20000); /* refused or not listening yet: try again */
            continue;
        }
        conns++;
        int64_t t0 = now_us();
        size_t w = write_until_stuck(fd, buf, len);
        printf("conn=%ld written=%zu\n", conns, w / one);
        fflush(stdout);
        int64_t next = now_us();
        while (!stop && now_us() < end) {
            int wait_ms = 100;
            if (every_us > 0) {
                if (now_us() >= next) {
                    /* One more request; a full send buffer just skips it. */
                    (void)send(fd, buf, one, MSG_NOSIGNAL | MSG_DONTWAIT);
                    next += every_us;
                }
                wait_ms = (int)((next - now_us()) / 1000);
                wait_ms = wait_ms < 0 ? 0 : wait_ms;
            }
            if (peer_closed(fd, wait_ms)) {
                closed++;
                printf("conn=%ld closed_ms=%lld\n", conns, (long long)(now_us() - t0) / 1000);
                fflush(stdout);
                break;
            }
        }
        close(fd);
    }
    printf("conns=%ld closed=%ld\n", conns, closed);
    free(buf);
    return 0;
}

/* --- idle -------------------------------------------------------------------------------- */

static int
idle(const struct addr *a, uint64_t n, int64_t hold_ms)
{
    static const unsigned char ours[8] = { 0, 'S', 'P', 0, 0, PROTO_REQ0, 0, 0 };
    int *fds = malloc(sizeof(int) * n);
    long opened = 0, failed = 0, last = -1, nfd = 0;
    int64_t end = now_us() + hold_ms * 1000;
    struct rlimit rl;

    if (fds == NULL) {
        return 1;
    }
    /* Our own descriptors must not be what runs out. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Connect all without waiting (a server that stops accepting must not stall us), then
     * wait for each one's SP header, 20 s for all. */
    int64_t hs_end = now_us() + 20000000;
    for (uint64_t i = 0; i < n && !stop; i++) {
        int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            failed++;
            continue;
        }
        int rc;
        /* A full accept backlog (EAGAIN on a Unix socket): the server is slow, try again. */
        while ((rc = connect(fd, (const struct sockaddr *)&a->sa, a->len)) != 0 &&
               errno == EAGAIN && now_us() < hs_end && !stop) {
            usleep(5000);
        }
        if (rc != 0 && errno != EINPROGRESS) {
            close(fd);
            failed++;
            continue;
        }
        struct pollfd pf = { fd, POLLOUT, 0 };
        if (poll(&pf, 1, 1000) <= 0 || send(fd, ours, sizeof(ours), MSG_NOSIGNAL) != 8) {
            close(fd);
            failed++;
            continue;
        }
        fds[nfd++] = fd;
    }
    for (long i = 0; i < nfd; i++) {
        unsigned char theirs[8];
        int left_ms = (int)((hs_end - now_us()) / 1000);
        if (left_ms > 0 && read_all(fds[i], theirs, 8, left_ms) == 0 && theirs[1] == 'S') {
            opened++;
        } else {
            failed++;
        }
    }
    printf("opened=%ld failed=%ld\n", opened, failed);
    fflush(stdout);
    while (!stop && now_us() < end) {
        long c = 0;
        for (long i = 0; i < nfd; i++) {
            c += peer_closed(fds[i], 0);
        }
        if (c != last) {
            printf("closed=%ld\n", c);
            fflush(stdout);
            last = c;
        }
        usleep(50000);
    }
    for (long i = 0; i < nfd; i++) {
        close(fds[i]);
    }
    free(fds);
    return 0;
}

/* --- nng clients ------------------------------------------------------------------------- */

static int
req_open(nng_socket *s, const char *url, int timeout_ms)
{
    int rv;
    if ((rv = nng_req0_open(s)) != 0) {
        fprintf(stderr, "sl-hog: %s\n", nng_strerror(rv));
        return 1;
    }
    nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, timeout_ms);
    nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, timeout_ms);
    if ((rv = nng_dial(*s, url, NULL, 0)) != 0) {
        fprintf(stderr, "sl-hog: %s: %s\n", url, nng_strerror(rv));
        nng_close(*s);
        return 1;
    }
    return 0;
}

/* Sends m (ours until sent) and waits for the reply; 0 and *rep (ours), or an nng error. */
static int
call(nng_socket s, nng_msg *m, nng_msg **rep)
{
    int rv = nng_sendmsg(s, m, 0);
    if (rv != 0) {
        nng_msg_free(m);
        return rv;
    }
    return nng_recvmsg(s, rep, 0);
}

static nng_msg *
ping_msg(const struct token *t)
{
    nng_msg *m;
    msgpack_packer pk;
    if (nng_msg_alloc(&m, 0) != 0) {
        return NULL;
    }
    msgpack_packer_init(&pk, m, wire_pack_into_msg);
    msgpack_pack_map(&pk, 1);
    wire_pack_cstr(&pk, "op");
    wire_pack_cstr(&pk, "ping");
    if (token_attach(m, t) != 0) {
        nng_msg_free(m);
        return NULL;
    }
    return m;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int
ping(const char *url, uint64_t n, int timeout_ms, const char *token_file)
{
    struct token t = { 0 };
    nng_socket s;
    int64_t *lat = calloc(n, sizeof(int64_t));

    if (lat == NULL) {
        return 1;
    }
    if (token_file != NULL) {
        char why[512];
        if (token_load(&t, token_file, why, sizeof(why)) != 0) {
            fprintf(stderr, "sl-hog: %s\n", why);
            free(lat);
            return 1;
        }
    }
    if (req_open(&s, url, timeout_ms) != 0) {
        free(lat);
        return 1;
    }
    for (uint64_t i = 0; i < n; i++) {
        nng_msg *m = ping_msg(&t), *rep = NULL;
        int64_t t0 = now_us();
        int rv = m != NULL ? call(s, m, &rep) : NNG_ENOMEM;
        if (rv != 0) {
            printf("timeout after %llu replies: %s\n", (unsigned long long)i, nng_strerror(rv));
            free(lat);
            nng_close(s);
            return 1;
        }
        lat[i] = now_us() - t0;
        nng_msg_free(rep);
    }
    qsort(lat, n, sizeof(int64_t), cmp_i64);
    printf("n=%llu p50_us=%lld p99_us=%lld max_us=%lld\n", (unsigned long long)n,
           (long long)lat[n / 2], (long long)lat[n * 99 / 100], (long long)lat[n - 1]);
    free(lat);
    nng_close(s);
    return 0;
}

static int
push(const char *url, uint64_t n, uint64_t bytes, const char *go)
{
    nng_socket s;
    nng_msg *rep = NULL;
    uint64_t ok = 0, failed = 0;
    char *payload = malloc(bytes + 1);

    if (payload == NULL || req_open(&s, url, 10000) != 0) {
        free(payload);
        return 1;
    }
    memset(payload, 'p', bytes);
    nng_msg *m = ping_msg(NULL);
    if (m == NULL || call(s, m, &rep) != 0) {
        fprintf(stderr, "sl-hog: no reply to ping\n");
        free(payload);
        nng_close(s);
        return 1;
    }
    nng_msg_free(rep);
    printf("connected\n");
    fflush(stdout);
    while (access(go, F_OK) != 0 && !stop) {
        usleep(20000);
    }
    for (uint64_t i = 0; i < n && !stop; i++) {
        msgpack_packer pk;
        if (nng_msg_alloc(&m, 0) != 0) {
            break;
        }
        msgpack_packer_init(&pk, m, wire_pack_into_msg);
        msgpack_pack_map(&pk, 3);
        wire_pack_cstr(&pk, "op");
        wire_pack_cstr(&pk, "push");
        wire_pack_cstr(&pk, "group");
        wire_pack_cstr(&pk, "hog");
        wire_pack_cstr(&pk, "payloads");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_bin(&pk, bytes);
        msgpack_pack_bin_body(&pk, payload, bytes);
        int rv = call(s, m, &rep);
        if (rv == 0 && memmem(nng_msg_body(rep), nng_msg_len(rep), "\xa2ok\xc3", 4) != NULL) {
            ok++;
        } else {
            if (failed++ == 0) {
                if (rv != 0) {
                    printf("first error: %s\n", nng_strerror(rv));
                } else {
                    /* The reply's text, its msgpack bytes shown as dots. */
                    const unsigned char *b = nng_msg_body(rep);
                    printf("first error: ");
                    for (size_t j = 0; j < nng_msg_len(rep); j++) {
                        putchar(b[j] >= 0x20 && b[j] < 0x7f ? b[j] : '.');
                    }
                    printf("\n");
                }
            }
        }
        nng_msg_free(rep);
        rep = NULL;
    }
    printf("pushed=%llu failed=%llu\n", (unsigned long long)ok, (unsigned long long)failed);
    free(payload);
    nng_close(s);
    return failed == 0 && ok == n ? 0 : 1;
}

static int
num(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max || v == 0) {
        fprintf(stderr, "sl-hog: not a number from 1 to %llu: '%s'\n", (unsigned long long)max,
                s);
        return -1;
    }
    *out = v;
    return 0;
}

int
main(int argc, char **argv)
{
    uint64_t n, x;
    struct addr a;

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (argc >= 5) {
        const char *mode = argv[2];
        if (num(argv[3], 10000000, &n) != 0 || num(argv[4], 1u << 30, &x) != 0) {
            return 2;
        }
        bool flooding = argc <= 7 && strcmp(mode, "flood") == 0;
        if (flooding || (argc == 5 && strcmp(mode, "idle") == 0)) {
            uint64_t every = 0, conns = 1;
            if (parse_url(argv[1], &a) != 0) {
                fprintf(stderr, "sl-hog: not an ipc:// or tcp:// address: %s\n", argv[1]);
                return 2;
            }
            if ((argc >= 6 && strcmp(argv[5], "0") != 0 && num(argv[5], 1000000, &every) != 0) ||
                (argc == 7 && num(argv[6], 1000000, &conns) != 0)) {
                return 2;
            }
            return flooding ? flood(&a, n, (int64_t)x, (int64_t)every, conns)
                            : idle(&a, n, (int64_t)x);
        }
        if ((argc == 5 || argc == 6) && strcmp(mode, "ping") == 0) {
            return ping(argv[1], n, (int)x, argc == 6 ? argv[5] : NULL);
        }
        if (argc == 6 && strcmp(mode, "push") == 0) {
            return push(argv[1], n, x, argv[5]);
        }
    }
    fprintf(stderr, "usage: sl-hog URL flood N HOLD_MS [EVERY_US [CONNS]]\n"
                    "       sl-hog URL idle N HOLD_MS\n"
                    "       sl-hog URL ping N TIMEOUT_MS [TOKEN_FILE]\n"
                    "       sl-hog URL push N BYTES GO_FILE\n");
    return 2;
}
