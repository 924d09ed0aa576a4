/* ctl push: jobs into the broker, in batches, as fast as one connection allows.
 *
 * The hot path (ctl push bob x -s 1000000) builds each request without per-job work beyond
 * packing: one array of payload views sized for a batch is filled once and reused, and each
 * request is packed into a message reserved to its estimated size. Requests go one at a time;
 * every one carries the idempotency key (client, seq), so a request that nng resends after a
 * reconnect is not stored twice. */
#include "ctl.h"

#include "clock.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define PUSH_BATCH_DEFAULT 10000
#define PUSH_BATCH_MAX 1000000        /* PROTOCOL.md: 1 to 1,000,000 payloads per push */
/* Payload bytes per request: far under the broker's 64 MiB message limit, and small enough that
 * one request never holds the broker for long. A single larger payload still goes alone. */
#define PUSH_BATCH_BYTES (4u << 20)
#define PUSH_COUNT_MAX 1000000000000ULL /* -s: a bound on typos, not on the broker */
#define PUSH_TTR_MS_MAX 86400000ULL     /* PROTOCOL.md: 1 ms to 24 h */
#define PUSH_DELAY_MS_MAX 315360000000ULL /* PROTOCOL.md: up to 3,650 days */
#define PUSH_ATTEMPTS_MAX 65535         /* PROTOCOL.md: 1 to 65,535 */
#define PUSH_UNIQUE_MAX 256u            /* PROTOCOL.md: a unique key of 1 to 256 bytes */
#define PUSH_SEQ_MAX (1ULL << 63)       /* --seq: leaves room for the requests after the first */
/* Encoded size of everything in a request but the payloads and the token: keys, group, queue,
 * client (names of at most 128 bytes), numbers, headers (about 600 bytes at most). With a
 * token's room it stays within the 2 KiB the broker keeps between --max-payload and
 * --max-message, so a payload the broker accepts always fits in a request. */
#define PUSH_HEADER_MAX 960
#define PUSH_PAYLOAD_HEADER_MAX 5       /* msgpack bin32 header */
#define PUSH_READ_BUF (8u << 20)        /* --file: initial buffer; grows for longer lines */

struct push {
    struct ctl *ctl;
    const char *group;
    struct wire_msg req;     /* fields fixed for the run; seq and payloads set per request */
    struct sl_str *batch;    /* batch_max payload views, reused for every request */
    uint32_t batch_max;      /* --batch */
    uint32_t n;              /* views to send in the next request */
    size_t bytes;            /* their payload bytes */
    size_t max_req;          /* the most a request may encode to: the broker's max_message less
                                our token's room; SIZE_MAX when the broker does not say */
    size_t token_room;       /* what our token adds to a request (0: no token) */
    char client[WIRE_NAME_MAX + 1]; /* idempotency client name: --client, else "ctl-PID-HEX" */
    uint64_t seq;            /* of the last request sent; starts at 1 */
    uint64_t pushed;         /* jobs the broker confirmed */
    uint64_t dup;            /* of those, jobs an earlier send of the same key had stored */
    uint64_t held_by;        /* --unique: the job holding the key, nothing stored (0: none) */
    char queue_first[WIRE_NAME_MAX + 1]; /* where the first and the last batch went */
    char queue_last[WIRE_NAME_MAX + 1];
};

/* A client name no other process uses: the pid alone repeats across hosts and pid reuse, and
 * the broker remembers keys for 10 minutes. */
static void
make_client(char *out, size_t cap)
{
    uint64_t r = 0;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 48);
    }
    snprintf(out, cap, "ctl-%ld-%016" PRIx64, (long)getpid(), r);
}

static void
note_queue(struct push *p, struct sl_str q)
{
    size_t n = q.n < WIRE_NAME_MAX ? q.n : WIRE_NAME_MAX;

    if (strlen(p->queue_last) == n && memcmp(p->queue_last, q.p, n) == 0) {
        return;
    }
    memcpy(p->queue_last, q.p, n);
    p->queue_last[n] = '\0';
    if (p->queue_first[0] == '\0') {
        memcpy(p->queue_first, p->queue_last, n + 1);
    }
}

/* Sends the batch's n views as one push request and checks the reply. Returns 0 (the batch is
 * empty again) or an exit code (printed). */
static int
send_batch(struct push *p)
{
    struct ctl *ctl = p->ctl;
    struct wire_msg *rep = &ctl->rep;
    nng_msg *m = NULL;
    msgpack_packer pk;
    int rv;

    p->seq++;
    wire_set_cstr(&p->req, WK_OP, "push");
    wire_set_u64(&p->req, WK_SEQ, p->seq);
    wire_set_strs(&p->req, WK_PAYLOADS, p->batch, p->n);
    /* Packing appends a few bytes at a time: reserving the whole request first keeps the
     * message from being regrown (and copied) as it fills. */
    size_t est = p->bytes + (size_t)p->n * PUSH_PAYLOAD_HEADER_MAX + PUSH_HEADER_MAX;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_reserve(m, est) != 0) {
        nng_msg_free(m);
        fprintf(stderr, "ctl: out of memory building a push of %" PRIu32 " jobs\n", p->n);
        return CTL_EXIT_FAILED;
    }
    msgpack_packer_init(&pk, m, wire_pack_into_msg);
    if (wire_encode(&p->req, &pk) != 0) {
        nng_msg_free(m);
        fprintf(stderr, "ctl: out of memory building a push of %" PRIu32 " jobs\n", p->n);
        return CTL_EXIT_FAILED;
    }
    if ((rv = ctl_call_msg(ctl, "push", m)) != 0) {
        return rv;
    }
    /* A resent request's reply says dup, without a queue. A stale one (a key older than the
     * broker remembers answers for) carries no n either: the first send stored this batch, as
     * this run numbers its batches the way the first did (the same command, run again). */
    if (WIRE_HAS(rep, WK_DUPLICATE) && rep->v[WK_DUPLICATE].b) {
        /* --unique: another job holds the key; nothing was stored */
        if ((rv = ctl_reply_u64(ctl, WK_FIRST_ID, &p->held_by)) != 0) {
            return rv;
        }
        p->n = 0;
        p->bytes = 0;
        return 0;
    }
    bool dup = WIRE_HAS(rep, WK_DUP) && rep->v[WK_DUP].b;
    bool stale = dup && WIRE_HAS(rep, WK_STALE) && rep->v[WK_STALE].b;
    uint64_t stored = p->n;
    if (!stale && (!dup || WIRE_HAS(rep, WK_N))) {
        if ((rv = ctl_reply_u64(ctl, WK_N, &stored)) != 0) {
            return rv;
        }
    }
    if (stored != p->n) {
        return ctl_bad_reply(ctl, "%" PRIu64 " jobs stored of the %" PRIu32 " sent", stored,
                             p->n);
    }
    if (WIRE_HAS(rep, WK_QUEUE)) {
        note_queue(p, rep->v[WK_QUEUE].s);
    } else if (!dup) {
        return ctl_bad_reply(ctl, "no 'queue'");
    }
    p->pushed += stored;
    if (dup) {
        p->dup += stored;
    }
    p->n = 0;
    p->bytes = 0;
    return 0;
}

/* The most a request of n payloads of `bytes` bytes in all can encode to. */
static size_t
req_size(size_t n, size_t bytes)
{
    return bytes + n * PUSH_PAYLOAD_HEADER_MAX + PUSH_HEADER_MAX;
}

/* A payload too large for any request the broker takes: refused here, with a clear message,
 * rather than sent to a broker that would drop the connection (and leave ctl waiting). */
static int
check_fits(const struct push *p, size_t n)
{
    if (req_size(1, n) > p->max_req) {
        fprintf(stderr, "ctl: a payload of %zu bytes does not fit in a request the broker "
                "takes (its --max-message is %zu bytes)\n", n, p->max_req + p->token_room);
        return CTL_EXIT_FAILED;
    }
    return 0;
}

/* Learns the broker's request limit (ping's max_message); a broker that does not say leaves
 * the limit at PUSH_BATCH_BYTES per request. */
static int
learn_limit(struct push *p)
{
    struct wire_msg req;
    int rv;

    p->max_req = SIZE_MAX;
    /* "token" as a fixstr, a str header of up to 3 bytes, the token, a wider map header. */
    p->token_room = p->ctl->token.n > 0 ? 6 + 3 + p->ctl->token.n + 4 : 0;
    wire_msg_init(&req);
    rv = ctl_call(p->ctl, "ping", &req);
    wire_msg_fini(&req);
    if (rv != 0) {
        return rv;
    }
    if (WIRE_HAS(&p->ctl->rep, WK_MAX_MESSAGE)) {
        uint64_t max = p->ctl->rep.v[WK_MAX_MESSAGE].u;
        if (max <= p->token_room + PUSH_HEADER_MAX + PUSH_PAYLOAD_HEADER_MAX) {
            return ctl_bad_reply(p->ctl, "a max_message of %" PRIu64 " bytes", max);
        }
        p->max_req = (size_t)(max - p->token_room);
    }
    return 0;
}

/* Adds one payload view to the batch, sending the batch first when it is full. */
static int
add(struct push *p, const char *s, size_t n)
{
    if (n > UINT32_MAX) {
        fprintf(stderr, "ctl: a payload of %zu bytes is over the 4 GiB a message can carry\n", n);
        return CTL_EXIT_FAILED;
    }
    int fits = check_fits(p, n);
    if (fits != 0) {
        return fits;
    }
    if (p->n > 0 && (p->n == p->batch_max || p->bytes + n > PUSH_BATCH_BYTES ||
                     req_size(p->n + 1u, p->bytes + n) > p->max_req)) {
        int rv = send_batch(p);
        if (rv != 0) {
            return rv;
        }
    }
    p->batch[p->n++] = (struct sl_str){ s, (uint32_t)n };
    p->bytes += n;
    return 0;
}

/* COUNT copies of one payload: the batch's views are written once, every request reuses them. */
static int
push_repeat(struct push *p, const char *payload, uint64_t count)
{
    size_t len = strlen(payload);
    uint64_t per = p->batch_max;
    int rv0 = check_fits(p, len);

    if (rv0 != 0) {
        return rv0;
    }
    if (len > 0 && per > PUSH_BATCH_BYTES / len) {
        per = PUSH_BATCH_BYTES / len > 0 ? PUSH_BATCH_BYTES / len : 1;
    }
    if (p->max_req != SIZE_MAX) {
        uint64_t fit = (p->max_req - PUSH_HEADER_MAX) / (len + PUSH_PAYLOAD_HEADER_MAX);
        if (per > fit) {
            per = fit > 0 ? fit : 1;
        }
    }
    if (per > count) {
        per = count;
    }
    for (uint64_t i = 0; i < per; i++) {
        p->batch[i] = (struct sl_str){ payload, (uint32_t)len };
    }
    for (uint64_t left = count; left > 0;) {
        p->n = (uint32_t)(left < per ? left : per);
        p->bytes = (size_t)p->n * len;
        int rv = send_batch(p);
        if (rv != 0) {
            return rv;
        }
        left -= left < per ? left : per;
    }
    return 0;
}

/* One payload per line of fd (the "\n" is not part of it; a last line without one counts).
 * Views point into buf, so buf is moved or regrown only after the batch has been sent. */
static int
push_lines(struct push *p, int fd, const char *path)
{
    size_t cap = PUSH_READ_BUF, len = 0, scan = 0; /* buf[scan..len): not yet split */
    char *buf = malloc(cap);
    bool eof = false;
    int rv = 0;

    if (buf == NULL) {
        fprintf(stderr, "ctl: out of memory for reading %s\n", path);
        return CTL_EXIT_FAILED;
    }
    for (;;) {
        const char *nl;
        while ((nl = memchr(buf + scan, '\n', len - scan)) != NULL) {
            if ((rv = add(p, buf + scan, (size_t)(nl - (buf + scan)))) != 0) {
                goto done;
            }
            scan = (size_t)(nl - buf) + 1;
        }
        if (eof) {
            if (scan < len) {
                rv = add(p, buf + scan, len - scan);
            }
            break;
        }
        if (len == cap) {
            if (p->n > 0 && (rv = send_batch(p)) != 0) {
                goto done;
            }
            memmove(buf, buf + scan, len - scan);
            len -= scan;
            scan = 0;
            if (len == cap) { /* one line fills the buffer */
                char *bigger = realloc(buf, cap * 2);
                if (bigger == NULL) {
                    fprintf(stderr, "ctl: out of memory for a line of %s longer than %zu bytes\n",
                            path, cap);
                    rv = CTL_EXIT_FAILED;
                    goto done;
                }
                buf = bigger;
                cap *= 2;
            }
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "ctl: cannot read %s: %s\n", path, strerror(errno));
            rv = CTL_EXIT_FAILED;
            goto done;
        }
        eof = r == 0;
        len += (size_t)r;
    }
    if (rv == 0 && p->n > 0) {
        rv = send_batch(p);
    }
done:
    free(buf);
    return rv;
}

/* The options that shape every request, checked before anything is sent. */
static int
setup(struct push *p, const struct opt_vals *ov)
{
    const char *const *v = ov->v;
    uint64_t u;
    int rv;

    wire_set_cstr(&p->req, WK_GROUP, p->group);
    if (v[CTL_OPT_QUEUE] != NULL) {
        if ((rv = ctl_check_name(p->ctl, "queue", v[CTL_OPT_QUEUE])) != 0) {
            return rv;
        }
        wire_set_cstr(&p->req, WK_QUEUE, v[CTL_OPT_QUEUE]);
    }
    u = PUSH_BATCH_DEFAULT;
    if (v[CTL_OPT_BATCH] != NULL &&
        (rv = opt_u64("batch", v[CTL_OPT_BATCH], 1, PUSH_BATCH_MAX, &u)) != 0) {
        return rv;
    }
    p->batch_max = (uint32_t)u;
    if (v[CTL_OPT_TTR] != NULL) {
        if ((rv = opt_ms("ttr", v[CTL_OPT_TTR], 1, PUSH_TTR_MS_MAX, &u)) != 0) {
            return rv;
        }
        wire_set_u64(&p->req, WK_TTR_MS, u);
    }
    if (v[CTL_OPT_MAX_ATTEMPTS] != NULL) {
        if ((rv = opt_u64("max-attempts", v[CTL_OPT_MAX_ATTEMPTS], 1, PUSH_ATTEMPTS_MAX, &u)) !=
            0) {
            return rv;
        }
        wire_set_u64(&p->req, WK_MAX_ATTEMPTS, u);
    }
    if (v[CTL_OPT_DELAY] != NULL && v[CTL_OPT_AT] != NULL) {
        return ctl_usage(p->ctl, "give --delay or --at, not both");
    }
    if (v[CTL_OPT_DELAY] != NULL) {
        if ((rv = opt_ms("delay", v[CTL_OPT_DELAY], 0, PUSH_DELAY_MS_MAX, &u)) != 0) {
            return rv;
        }
        wire_set_u64(&p->req, WK_DELAY_MS, u);
    }
    if (v[CTL_OPT_AT] != NULL) {
        int64_t at;
        if ((rv = opt_time("at", v[CTL_OPT_AT], &at)) != 0) {
            return rv;
        }
        /* A time already past makes the jobs ready at once, as the broker does. */
        wire_set_u64(&p->req, WK_RUN_AT_MS, at > 0 ? (uint64_t)at : 1);
    }
    if (v[CTL_OPT_UNIQUE] != NULL) {
        size_t n = strlen(v[CTL_OPT_UNIQUE]);
        if (n == 0 || n > PUSH_UNIQUE_MAX) {
            return ctl_usage(p->ctl, "--unique KEY: 1 to %u bytes", PUSH_UNIQUE_MAX);
        }
        wire_set_cstr(&p->req, WK_UNIQUE, v[CTL_OPT_UNIQUE]);
    } else if (v[CTL_OPT_UNIQUE_TTL] != NULL || v[CTL_OPT_UNIQUE_HOLD] != NULL) {
        return ctl_usage(p->ctl, "--unique-ttl and --unique-hold go with --unique KEY");
    }
    if (v[CTL_OPT_UNIQUE_TTL] != NULL) {
        if ((rv = opt_ms("unique-ttl", v[CTL_OPT_UNIQUE_TTL], 1, PUSH_DELAY_MS_MAX, &u)) != 0) {
            return rv;
        }
        wire_set_u64(&p->req, WK_UNIQUE_TTL_MS, u);
    }
    if (v[CTL_OPT_UNIQUE_HOLD] != NULL) {
        const char *h = v[CTL_OPT_UNIQUE_HOLD];
        if (strcmp(h, "active") != 0 && strcmp(h, "ttl") != 0) {
            return ctl_usage(p->ctl, "--unique-hold is active or ttl, not '%s'", h);
        }
        if (strcmp(h, "ttl") == 0 && v[CTL_OPT_UNIQUE_TTL] == NULL) {
            return ctl_usage(p->ctl, "--unique-hold ttl needs --unique-ttl D");
        }
        wire_set_cstr(&p->req, WK_UNIQUE_HOLD, h);
    }
    /* A caller that names the key itself can resend a push that got no answer (the broker was
     * down, the reply lost) from another process: requests already stored answer as
     * duplicates, the others are stored. */
    if (v[CTL_OPT_CLIENT] != NULL) {
        if ((rv = ctl_check_name(p->ctl, "client", v[CTL_OPT_CLIENT])) != 0) {
            return rv;
        }
        snprintf(p->client, sizeof(p->client), "%s", v[CTL_OPT_CLIENT]); /* checked: fits */
    } else if (v[CTL_OPT_SEQ] != NULL) {
        return ctl_usage(p->ctl, "--seq needs --client (a key is a client and a sequence)");
    } else {
        make_client(p->client, sizeof(p->client));
    }
    if (v[CTL_OPT_SEQ] != NULL) {
        if ((rv = opt_u64("seq", v[CTL_OPT_SEQ], 1, PUSH_SEQ_MAX, &u)) != 0) {
            return rv;
        }
        p->seq = u - 1; /* send_batch increments before each request */
    }
    wire_set_cstr(&p->req, WK_CLIENT, p->client);
    return 0;
}

static void
report(const struct push *p, uint64_t elapsed_ns)
{
    double s = (double)elapsed_ns / 1e9;
    double rate = s > 0 ? (double)p->pushed / s : 0;

    printf("pushed %" PRIu64 " job%s to %s", p->pushed, p->pushed == 1 ? "" : "s", p->group);
    if (p->queue_first[0] != '\0' && strcmp(p->queue_first, p->queue_last) != 0) {
        printf(" (queue %s, later %s)", p->queue_first, p->queue_last);
    } else if (p->queue_first[0] != '\0') {
        printf(" (queue %s)", p->queue_first);
    }
    if (p->dup > 0) {
        printf(", %" PRIu64 " of them stored before (the same --client and --seq)", p->dup);
    }
    printf(" in %.3f s, %.0f jobs/s\n", s, rate);
}

int
cmd_push(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct push p;
    const char *file = ov->v[CTL_OPT_FILE];
    uint64_t count = 1;
    int fd = -1;
    int rv;

    memset(&p, 0, sizeof(p));
    p.ctl = ctl;
    p.group = argv[0];
    wire_msg_init(&p.req);
    if ((rv = ctl_check_name(ctl, "group", p.group)) != 0) {
        return rv;
    }
    if (file != NULL && argc > 1) {
        return ctl_usage(ctl, "give a PAYLOAD or --file, not both");
    }
    if (file == NULL && argc < 2) {
        return ctl_usage(ctl, "missing PAYLOAD (or --file F)");
    }
    if (file != NULL && ov->v[CTL_OPT_COUNT] != NULL) {
        return ctl_usage(ctl, "-s COUNT repeats a PAYLOAD; it cannot be used with --file");
    }
    if (ov->v[CTL_OPT_COUNT] != NULL &&
        (rv = opt_u64("count", ov->v[CTL_OPT_COUNT], 1, PUSH_COUNT_MAX, &count)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_UNIQUE] != NULL && (file != NULL || count != 1)) {
        return ctl_usage(ctl, "--unique pushes one job: no -s COUNT or --file");
    }
    if ((rv = setup(&p, ov)) != 0) {
        return rv;
    }
    if (file != NULL) {
        fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "ctl push: cannot open '%s': %s\n", file, strerror(errno));
            return CTL_EXIT_USAGE;
        }
    }
    uint64_t nviews = file != NULL || count > p.batch_max ? p.batch_max : count;
    p.batch = malloc((size_t)nviews * sizeof(*p.batch));
    if (p.batch == NULL) {
        fprintf(stderr, "ctl: out of memory for a batch of %" PRIu64 " jobs\n", nviews);
        rv = CTL_EXIT_FAILED;
        goto out;
    }
    if ((rv = ctl_connect(ctl)) != 0 || (rv = learn_limit(&p)) != 0) {
        goto out;
    }
    uint64_t t0 = (uint64_t)clock_mono_ns();
    rv = file != NULL ? push_lines(&p, fd, strcmp(file, "-") == 0 ? "stdin" : file)
                      : push_repeat(&p, argv[1], count);
    uint64_t t1 = (uint64_t)clock_mono_ns();
    if (rv == 0 && p.held_by != 0) {
        printf("not pushed: job %" PRIu64 " holds unique key '%s'\n", p.held_by,
               ov->v[CTL_OPT_UNIQUE]);
    } else if (rv == 0) {
        report(&p, t1 - t0);
    } else if (p.pushed > 0) {
        fprintf(stderr, "ctl: pushed %" PRIu64 " job%s to %s before the error\n", p.pushed,
                p.pushed == 1 ? "" : "s", p.group);
    }
out:
    free(p.batch);
    if (fd > STDIN_FILENO) {
        close(fd);
    }
    return rv;
}
