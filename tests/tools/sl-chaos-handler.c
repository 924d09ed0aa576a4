/* sl-chaos-handler: the chaos run's pipe handler (PROTOCOL.md, "Pipe handlers"), doing what its
 * exec: handler does (tests/chaos/run):
 *
 *     worker --handler 'pipe:sl-chaos-handler RUNS_FILE'
 *
 * A payload is GROUP-N. A job whose N divides by 5 takes 50 ms more; by 97 it fails every
 * attempt; by 7 it fails its first attempt. Every other run succeeds and appends the payload and
 * a newline to RUNS_FILE in one write() with O_APPEND (so the lines of concurrent handlers never
 * mix) before the answer is written: a run recorded there may still lose its answer or ack to a
 * kill, which is what the chaos run's duplicates count. Exits 0 at end of input, 1 on a bad
 * frame or a failed write, 2 on usage. */
#include "mpr.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FRAME_MAX (2u << 20) /* the chaos run's payloads are a few bytes */

static bool
read_exact(void *p, size_t n)
{
    return fread(p, 1, n, stdin) == n;
}

static bool
write_frame(const void *body, size_t n)
{
    unsigned char h[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                           (unsigned char)(n >> 8), (unsigned char)n };
    return fwrite(h, 1, 4, stdout) == 4 && fwrite(body, 1, n, stdout) == n &&
           fflush(stdout) == 0; /* one answer per job, at once */
}

static void
pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* N of a payload GROUP-N; 0 when it has no such number. */
static unsigned long long
payload_num(struct sl_str p)
{
    unsigned long long n = 0;
    uint32_t i = p.n;
    while (i > 0 && p.p[i - 1] != '-') {
        i--;
    }
    for (; i < p.n && p.p[i] >= '0' && p.p[i] <= '9'; i++) {
        n = n * 10 + (unsigned long long)(p.p[i] - '0');
    }
    return n;
}

/* One line, one write: O_APPEND makes it atomic against the other handlers' lines. */
static bool
record(int fd, struct sl_str p)
{
    char line[256];
    if (p.n >= sizeof(line)) {
        return false;
    }
    memcpy(line, p.p, p.n);
    line[p.n] = '\n';
    ssize_t w;
    do {
        w = write(fd, line, p.n + 1);
    } while (w < 0 && errno == EINTR);
    return w == (ssize_t)(p.n + 1);
}

int
main(int argc, char **argv)
{
    static unsigned char body[FRAME_MAX];
    unsigned char h[4];
    msgpack_sbuffer sb;
    msgpack_packer pk;

    if (argc != 2) {
        fprintf(stderr, "usage: sl-chaos-handler RUNS_FILE\n");
        return 2;
    }
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "sl-chaos-handler: cannot open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = 0;
    while (read_exact(h, 4)) { /* end of file: the worker is done with us */
        uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (n > sizeof(body) || !read_exact(body, n)) {
            fprintf(stderr, "sl-chaos-handler: bad frame\n");
            rc = 1;
            break;
        }
        struct mpr c;
        uint32_t pairs;
        uint64_t id = 0, attempt = 0;
        struct sl_str k, payload = { "", 0 };
        mpr_init(&c, body, n);
        bool ok = mpr_map(&c, &pairs);
        for (uint32_t i = 0; ok && i < pairs; i++) {
            if (!mpr_str(&c, &k)) {
                ok = mpr_skip(&c) && mpr_skip(&c);
            } else if (sl_str_eq(k, "id")) {
                ok = mpr_u64(&c, &id);
            } else if (sl_str_eq(k, "attempt")) {
                ok = mpr_u64(&c, &attempt);
            } else if (sl_str_eq(k, "payload")) {
                ok = mpr_blob(&c, &payload);
            } else {
                ok = mpr_skip(&c);
            }
        }
        if (!ok) {
            fprintf(stderr, "sl-chaos-handler: bad job frame\n");
            rc = 1;
            break;
        }
        unsigned long long num = payload_num(payload);
        if (num % 5 == 0) {
            nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
        }
        bool done = num % 97 != 0 && !(num % 7 == 0 && attempt == 1);
        if (done && !record(fd, payload)) {
            fprintf(stderr, "sl-chaos-handler: cannot record a run: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, 2);
        pack_str(&pk, "id");
        msgpack_pack_uint64(&pk, id);
        pack_str(&pk, "ok");
        if (done) {
            msgpack_pack_true(&pk);
        } else {
            msgpack_pack_false(&pk);
        }
        if (!write_frame(sb.data, sb.size)) {
            break; /* the worker is gone */
        }
    }
    msgpack_sbuffer_destroy(&sb);
    close(fd);
    return rc;
}
