/* bench/peers's systems under test (peers_sys.h). */
#include "peers_sys.h"

#include "benchlib.h"
#include "err.h"
#include "log.h"
#include "opt.h"
#include "wapi.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int64_t
peers_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Writes v as PAYLOAD_LEN hex digits at dst (no NUL). */
void
peers_payload_put(char *dst, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = PAYLOAD_LEN - 1; i >= 0; i--) {
        dst[i] = hex[v & 0xf];
        v >>= 4;
    }
}

/* The number peers_payload_put wrote at src; false if src is not PAYLOAD_LEN hex digits. */
bool
peers_payload_get(const char *src, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < PAYLOAD_LEN; i++) {
        char ch = src[i];
        unsigned d;
        if (ch >= '0' && ch <= '9') {
            d = (unsigned)(ch - '0');
        } else if (ch >= 'a' && ch <= 'f') {
            d = (unsigned)(ch - 'a' + 10);
        } else {
            return false;
        }
        x = x << 4 | d;
    }
    *v = x;
    return true;
}

/* ---- A byte stream over a Unix socket, for the text protocols ---- */

void
peers_conn_init(struct conn *c, const char *sys)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->sys = sys;
}

static int
stream_open(struct conn *c, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "peers: %s: socket path too long: %s\n", c->sys, path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    c->rbuf = malloc(RBUF_CAP);
    c->wcap = 4096;
    c->wbuf = malloc(c->wcap);
    if (c->rbuf == NULL || c->wbuf == NULL) {
        fprintf(stderr, "peers: %s: out of memory\n", c->sys);
        goto fail_mem;
    }
    if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        fprintf(stderr, "peers: %s: socket: %s\n", c->sys, strerror(errno));
        goto fail_mem;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "peers: %s: cannot connect to %s: %s\n", c->sys, path, strerror(errno));
        goto fail_sock;
    }
    return 0;
fail_sock:
    close(c->fd);
    c->fd = -1;
fail_mem:
    free(c->wbuf);
    free(c->rbuf);
    c->wbuf = c->rbuf = NULL;
    return -1;
}

static int
stream_open_producer(struct conn *c, const char *addr, uint32_t batch)
{
    (void)batch;
    return stream_open(c, addr);
}

static int
stream_open_consumer(struct conn *c, const char *addr, const char *name,
                     const volatile sig_atomic_t *stop)
{
    (void)name;
    c->stop = stop;
    return stream_open(c, addr);
}

static void
stream_wake(struct conn *c)
{
    if (c->fd >= 0) {
        shutdown(c->fd, SHUT_RDWR);
    }
}

/* Whether a failed read or write is only the run's end (stream_wake). */
static bool
stream_ending(const struct conn *c)
{
    return c->stop != NULL && *c->stop;
}

static void
stream_close(struct conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(c->rbuf);
    free(c->wbuf);
    peers_conn_init(c, c->sys);
}

/* Appends n bytes to the request being built. */
static int
wb_add(struct conn *c, const void *p, size_t n)
{
    if (c->wlen + n > c->wcap) {
        size_t cap = c->wcap;
        while (cap < c->wlen + n) {
            cap *= 2;
        }
        char *b = realloc(c->wbuf, cap);
        if (b == NULL) {
            fprintf(stderr, "peers: %s: out of memory building a request\n", c->sys);
            return -1;
        }
        c->wbuf = b;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
    return 0;
}

static int __attribute__((format(printf, 2, 3)))
wb_fmt(struct conn *c, const char *fmt, ...)
{
    char s[96];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(s, sizeof(s), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(s)) {
        fprintf(stderr, "peers: %s: a request line too long\n", c->sys);
        return -1;
    }
    return wb_add(c, s, (size_t)n);
}

/* Sends the request built (all of it: a short write is continued) and empties it. */
static int
wb_send(struct conn *c)
{
    for (size_t off = 0; off < c->wlen;) {
        ssize_t n = send(c->fd, c->wbuf + off, c->wlen - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            if (!stream_ending(c)) {
                fprintf(stderr, "peers: %s: write: %s\n", c->sys, strerror(errno));
            }
            return -1;
        }
        off += (size_t)n;
    }
    c->wlen = 0;
    return 0;
}

/* Reads more bytes into the read buffer, moving what is unconsumed to its start first. */
static int
rb_fill(struct conn *c)
{
    if (c->roff > 0) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    if (c->rlen == RBUF_CAP) {
        fprintf(stderr, "peers: %s: a reply line longer than %d bytes\n", c->sys, RBUF_CAP);
        return -1;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF_CAP - c->rlen, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (stream_ending(c)) {
                return -1;
            }
            if (n < 0) {
                fprintf(stderr, "peers: %s: read: %s\n", c->sys, strerror(errno));
            } else {
                fprintf(stderr, "peers: %s: the server closed the connection\n", c->sys);
            }
            return -1;
        }
        c->rlen += (size_t)n;
        return 0;
    }
}

/* The next line, without its CRLF, NUL-terminated in place: *line lives until the next read. */
static int
rb_line(struct conn *c, char **line)
{
    for (;;) {
        char *s = c->rbuf + c->roff;
        size_t have = c->rlen - c->roff;
        char *nl = have > 1 ? memmem(s, have, "\r\n", 2) : NULL;
        if (nl != NULL) {
            *nl = '\0';
            c->roff += (size_t)(nl - s) + 2;
            *line = s;
            return 0;
        }
        if (rb_fill(c) != 0) {
            return -1;
        }
    }
}

/* Exactly n bytes into dst, then the CRLF that ends them. */
static int
rb_data(struct conn *c, char *dst, size_t n)
{
    while (c->rlen - c->roff < n + 2) {
        if (rb_fill(c) != 0) {
            return -1;
        }
    }
    if (memcmp(c->rbuf + c->roff + n, "\r\n", 2) != 0) {
        fprintf(stderr, "peers: %s: data not followed by CRLF\n", c->sys);
        return -1;
    }
    memcpy(dst, c->rbuf + c->roff, n);
    c->roff += n + 2;
    return 0;
}

/* ---- Redis: RESP over the Unix socket ---- */

static int
resp_arg(struct conn *c, const char *p, size_t n)
{
    return wb_fmt(c, "$%zu\r\n", n) || wb_add(c, p, n) || wb_add(c, "\r\n", 2) ? -1
                                                                                          : 0;
}

/* An integer reply into *v; an error reply or any other is printed. */
static int
resp_int(struct conn *c, const char *cmd, long long *v)
{
    char *line, *end;

    if (rb_line(c, &line) != 0) {
        return -1;
    }
    if (line[0] != ':') {
        fprintf(stderr, "peers: redis: %s: %s\n", cmd, line);
        return -1;
    }
    errno = 0;
    *v = strtoll(line + 1, &end, 10);
    if (errno != 0 || *end != '\0') {
        fprintf(stderr, "peers: redis: %s: a bad integer reply: %s\n", cmd, line);
        return -1;
    }
    return 0;
}

static int
redis_push(struct conn *c, const char *payloads, uint32_t n)
{
    long long len;

    if (wb_fmt(c, "*%" PRIu32 "\r\n", n + 2) || resp_arg(c, "LPUSH", 5) ||
        resp_arg(c, "q", 1)) {
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (resp_arg(c, payloads + (size_t)i * PAYLOAD_LEN, PAYLOAD_LEN) != 0) {
            return -1;
        }
    }
    if (wb_send(c) != 0 || resp_int(c, "LPUSH", &len) != 0) {
        return -1;
    }
    /* The list's length after the push: at least the jobs just pushed. */
    if (len < (long long)n) {
        fprintf(stderr, "peers: redis: LPUSH of %" PRIu32 " left a list of %lld\n", n, len);
        return -1;
    }
    return 0;
}

static int
redis_take(struct conn *c)
{
    static const char cmd[] = "*6\r\n$6\r\nBLMOVE\r\n$1\r\nq\r\n$4\r\nwork\r\n"
                              "$5\r\nRIGHT\r\n$4\r\nLEFT\r\n$1\r\n1\r\n";
    char *line;

    _Static_assert(TAKE_WAIT_MS == 1000, "BLMOVE's timeout (seconds) is TAKE_WAIT_MS");
    if (wb_add(c, cmd, sizeof(cmd) - 1) != 0 || wb_send(c) != 0 || rb_line(c, &line) != 0) {
        return -1;
    }
    /* A timeout is a null: RESP2 writes it as a null array for the blocking commands. */
    if (strcmp(line, "*-1") == 0 || strcmp(line, "$-1") == 0) {
        return 1;
    }
    if (strcmp(line, "$16") != 0) {
        fprintf(stderr, "peers: redis: BLMOVE: %s\n", line);
        return -1;
    }
    return rb_data(c, c->payload, PAYLOAD_LEN) == 0 ? 0 : -1;
}

static int
redis_ack(struct conn *c)
{
    long long removed;

    if (wb_add(c, "*4\r\n", 4) || resp_arg(c, "LREM", 4) || resp_arg(c, "work", 4) ||
        resp_arg(c, "1", 1) || resp_arg(c, c->payload, PAYLOAD_LEN) || wb_send(c) ||
        resp_int(c, "LREM", &removed)) {
        return -1;
    }
    if (removed != 1) {
        fprintf(stderr, "peers: redis: LREM removed %lld jobs of %.16s, not 1\n", removed,
                c->payload);
        return -1;
    }
    return 0;
}

/* ---- beanstalkd: its text protocol over the Unix socket ---- */

static int
bean_push(struct conn *c, const char *payloads, uint32_t n)
{
    char *line;

    /* Priority 0, no delay, 60 s to run: never given to a second consumer within a run. */
    for (uint32_t i = 0; i < n; i++) {
        if (wb_fmt(c, "put 0 0 60 %d\r\n", PAYLOAD_LEN) ||
            wb_add(c, payloads + (size_t)i * PAYLOAD_LEN, PAYLOAD_LEN) || wb_add(c, "\r\n", 2)) {
            return -1;
        }
    }
    if (wb_send(c) != 0) {
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (rb_line(c, &line) != 0) {
            return -1;
        }
        if (strncmp(line, "INSERTED ", 9) != 0) {
            fprintf(stderr, "peers: beanstalkd: put: %s\n", line);
            return -1;
        }
    }
    return 0;
}

static int
bean_take(struct conn *c)
{
    char *line, *end;

    _Static_assert(TAKE_WAIT_MS == 1000, "reserve's timeout (seconds) is TAKE_WAIT_MS");
    if (wb_add(c, "reserve-with-timeout 1\r\n", 24) != 0 || wb_send(c) != 0 ||
        rb_line(c, &line) != 0) {
        return -1;
    }
    if (strcmp(line, "TIMED_OUT") == 0) {
        return 1;
    }
    if (strncmp(line, "RESERVED ", 9) != 0) {
        fprintf(stderr, "peers: beanstalkd: reserve: %s\n", line);
        return -1;
    }
    errno = 0;
    c->id = strtoull(line + 9, &end, 10);
    if (errno != 0 || *end != ' ' || strcmp(end + 1, "16") != 0) {
        fprintf(stderr, "peers: beanstalkd: reserve: not a 16-byte job: %s\n", line);
        return -1;
    }
    return rb_data(c, c->payload, PAYLOAD_LEN) == 0 ? 0 : -1;
}

static int
bean_ack(struct conn *c)
{
    char *line;

    if (wb_fmt(c, "delete %" PRIu64 "\r\n", c->id) || wb_send(c) || rb_line(c, &line)) {
        return -1;
    }
    if (strcmp(line, "DELETED") != 0) {
        fprintf(stderr, "peers: beanstalkd: delete %" PRIu64 ": %s\n", c->id, line);
        return -1;
    }
    return 0;
}

/* ---- sluice: its C client and worker API ---- */

static int
sluice_open_producer(struct conn *c, const char *addr, uint32_t batch)
{
    int rv;

    if ((c->views = malloc(batch * sizeof(*c->views))) == NULL) {
        fprintf(stderr, "peers: sluice: out of memory\n");
        return -1;
    }
    if ((rv = client_open(&c->cl, addr, 5000)) != 0) {
        fprintf(stderr, "peers: sluice: cannot connect to %s: %s\n", addr, sl_err_str(rv));
        free(c->views);
        c->views = NULL;
        return -1;
    }
    return 0;
}

static int
sluice_open_consumer(struct conn *c, const char *addr, const char *name,
                     const volatile sig_atomic_t *stop)
{
    struct wapi_cfg cfg = { .url = addr, .name = name, .prefetch = 1, .wait_ms = SLUICE_WAIT_MS,
                            .stop = stop };
    int rv = wapi_open(&c->w, &cfg);

    if (rv != 0) {
        fprintf(stderr, "peers: sluice: cannot open a worker on %s: %s\n", addr,
                sl_err_str(rv));
        return -1;
    }
    return 0;
}

/* unique: each push carries a key of its own (batch 1), as a producer of unique jobs does. */
static int
sluice_push_as(struct conn *c, const char *payloads, uint32_t n, bool unique)
{
    struct wire_msg req, rep;
    struct sl_str msg;
    int rv;

    for (uint32_t i = 0; i < n; i++) {
        c->views[i] = (struct sl_str){ payloads + (size_t)i * PAYLOAD_LEN, PAYLOAD_LEN };
    }
    wire_msg_init(&req);
    wire_msg_init(&rep);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, "bench");
    wire_set_strs(&req, WK_PAYLOADS, c->views, n);
    if (unique) {
        snprintf(c->key, sizeof(c->key), "order-%p-%" PRIu64, (void *)c, ++c->id);
        wire_set_cstr(&req, WK_UNIQUE, c->key);
    }
    if ((rv = client_call(c->cl, &req, &rep, PUSH_TIMEOUT_MS)) != 0) {
        fprintf(stderr, "peers: sluice: push: %s\n", sl_err_str(rv));
    } else if ((rv = client_reply_err(&rep, &msg)) != 0) {
        fprintf(stderr, "peers: sluice: push: %s: %.*s\n", sl_err_code(rv), (int)msg.n, msg.p);
    } else if (!WIRE_HAS(&rep, WK_N) || rep.v[WK_N].u != n) {
        fprintf(stderr, "peers: sluice: push of %" PRIu32 " stored %" PRIu64 "\n", n,
                WIRE_HAS(&rep, WK_N) ? rep.v[WK_N].u : 0);
        rv = SL_EBADREQ;
    }
    wire_msg_fini(&rep);
    return rv == 0 ? 0 : -1;
}

static int
sluice_push(struct conn *c, const char *payloads, uint32_t n)
{
    return sluice_push_as(c, payloads, n, false);
}

static int
sluice_push_unique(struct conn *c, const char *payloads, uint32_t n)
{
    if (n != 1) {
        fprintf(stderr, "peers: sluice-unique: a unique push is of one job (BATCH 1)\n");
        return -1;
    }
    return sluice_push_as(c, payloads, n, true);
}

static int
sluice_take(struct conn *c)
{
    struct wapi_job job;
    int rv = wapi_next(c->w, &job);

    if (rv == SL_ETIMEDOUT) {
        return 1; /* the run is over: wapi hands out nothing more */
    }
    if (rv != 0) {
        fprintf(stderr, "peers: sluice: reserve: %s\n", sl_err_str(rv));
        return -1;
    }
    if (job.len != PAYLOAD_LEN) {
        fprintf(stderr, "peers: sluice: a job of %" PRIu32 " bytes, not 16\n", job.len);
        return -1;
    }
    memcpy(c->payload, job.payload, PAYLOAD_LEN);
    c->id = job.id;
    return 0;
}

static int
sluice_ack(struct conn *c)
{
    wapi_ack(c->w, c->id);
    return 0;
}

static void
sluice_settle(struct conn *c)
{
    wapi_settle(c->w);
}

static int
sluice_wait_consumers(struct conn *p, uint32_t n)
{
    if (!benchlib_workers_registered(p->cl, n, 10000)) {
        fprintf(stderr, "peers: sluice: %" PRIu32 " workers not registered within 10 s\n", n);
        return -1;
    }
    return 0;
}

static void
sluice_close(struct conn *c)
{
    wapi_close(c->w);
    client_free(c->cl);
    free(c->views);
    peers_conn_init(c, c->sys);
}

const struct system peers_systems[] = {
    { "redis", stream_open_producer, stream_open_consumer, redis_push, redis_take, redis_ack, NULL,
      stream_wake, NULL, stream_close },
    { "beanstalkd", stream_open_producer, stream_open_consumer, bean_push, bean_take, bean_ack,
      NULL, stream_wake, NULL, stream_close },
    { "sluice", sluice_open_producer, sluice_open_consumer, sluice_push, sluice_take, sluice_ack,
      sluice_settle, NULL, sluice_wait_consumers, sluice_close },
    /* sluice with a unique key on every push (make bench's "unique" section) */
    { "sluice-unique", sluice_open_producer, sluice_open_consumer, sluice_push_unique,
      sluice_take, sluice_ack, sluice_settle, NULL, sluice_wait_consumers, sluice_close },
};

const size_t peers_nsystems = sizeof(peers_systems) / sizeof(peers_systems[0]);

