/* sl-send: sends raw bytes to an nng REP server (the broker) as REQ requests and shows the
 * replies; for tests that need messages no well-behaved client would send.
 *
 *   sl-send URL --hex HEX          one request of the bytes HEX ("df07ff07ff", spaces allowed,
 *                                  "" for an empty message); prints the reply
 *   sl-send URL --file F           one request of F's bytes ("-" for stdin); prints the reply
 *   sl-send URL --lines F          one request per line of F ("-" for stdin), each line the
 *                                  hex of one message (as --hex; a blank line or one starting
 *                                  with '#' is skipped), all sent in order on one connection;
 *                                  prints one reply per line, or "no reply: ERROR" for a request
 *                                  left unanswered
 *   sl-send URL --random N [--seed S]
 *                                  N requests of seeded garbage, 0-512 bytes each, one at a
 *                                  time, each waiting for its reply; prints one line
 *                                  "replies=R bad_request=B ok=K other=O no_reply=T"
 *
 * A reply prints as one line of JSON when it is well-formed msgpack (bin as "hex:...", ext as
 * "ext:TYPE:hex:..."), else as "hex: ...". --raw prints every reply as hex.
 * Exit status: 0 every request got a reply; 1 some did not (within --timeout, default 2000 ms,
 * per request); 2 usage; 3 nothing listens at URL (after --timeout).
 *
 * The garbage is a mix, so that the decoder is exercised past its first byte: plain random
 * bytes; random bytes behind a map header; a valid push request with random bytes changed,
 * cut or appended; and maps of protocol keys with values of random type, including declared
 * sizes far beyond the message. The same seed gives the same messages. */
#include "err.h"
#include "log.h"
#include "opt.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GARBAGE_MAX 512
#define FILE_MAX (64u << 20)

enum { O_HEX, O_FILE, O_LINES, O_RANDOM, O_SEED, O_TIMEOUT, O_RAW, O_QUIET, O_HELP };

static const struct opt opts[] = {
    { O_HEX, "hex", 'x', "HEX", NULL, "send these bytes (hex digits, spaces ignored)" },
    { O_FILE, "file", 'f', "FILE", NULL, "send the bytes of FILE (- for stdin)" },
    { O_LINES, "lines", 'l', "FILE", NULL, "send each line of FILE (hex) as a request, in order" },
    { O_RANDOM, "random", 'r', "N", NULL, "send N garbage messages, one request each" },
    { O_SEED, "seed", 's', "S", NULL, "seed of the garbage (default 1)" },
    { O_TIMEOUT, "timeout", 't', "MS", NULL, "wait per reply and to connect (default 2000 ms)" },
    { O_RAW, "raw", 0, NULL, NULL, "print replies as hex, undecoded" },
    { O_QUIET, "quiet", 'q', NULL, NULL, "--random: do not print messages left unanswered" },
    { O_HELP, "help", 'h', NULL, NULL, "print this help and exit" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

static const char usage[] =
    "sl-send URL (--hex HEX | --file F | --lines F | --random N [--seed S]) [--timeout MS] [--raw]";

/* --- output ------------------------------------------------------------------------------ */

static void
print_hex(FILE *f, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%02x", p[i]);
    }
}

static void
print_jstr(FILE *f, const char *p, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c < 0x20 || c >= 0x7f) {
            fprintf(f, "\\u%04x", c); /* bytes >= 0x80 as Latin-1: always valid JSON */
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

/* Prints o as JSON. Depth is bounded: the reply passed wire_check (at most 8 levels). */
static void
print_obj(FILE *f, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", f);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", f);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(f, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(f, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isfinite(o->via.f64)) {
            fprintf(f, "%.17g", o->via.f64);
        } else {
            fputs("null", f);
        }
        break;
    case MSGPACK_OBJECT_STR:
        print_jstr(f, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        fputs("\"hex:", f);
        print_hex(f, (const unsigned char *)o->via.bin.ptr, o->via.bin.size);
        fputc('"', f);
        break;
    case MSGPACK_OBJECT_EXT:
        fprintf(f, "\"ext:%d:hex:", (int)o->via.ext.type);
        print_hex(f, (const unsigned char *)o->via.ext.ptr, o->via.ext.size);
        fputc('"', f);
        break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i > 0) {
                fputs(", ", f);
            }
            print_obj(f, &o->via.array.ptr[i]);
        }
        fputc(']', f);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (i > 0) {
                fputs(", ", f);
            }
            if (k->type == MSGPACK_OBJECT_STR) {
                print_jstr(f, k->via.str.ptr, k->via.str.size);
            } else {
                /* JSON keys are strings: show a non-string key as the JSON of its value. */
                char *text = NULL;
                size_t len = 0;
                FILE *mf = open_memstream(&text, &len);
                if (mf != NULL) {
                    print_obj(mf, k);
                    fclose(mf);
                    print_jstr(f, text, len);
                    free(text);
                }
            }
            fputs(": ", f);
            print_obj(f, &o->via.map.ptr[i].val);
        }
        fputc('}', f);
        break;
    }
}

static void
print_reply(const unsigned char *p, size_t n, bool raw)
{
    if (!raw && n > 0 && wire_check(p, n) == 0) {
        msgpack_unpacked up;
        size_t off = 0;
        msgpack_unpacked_init(&up);
        if (msgpack_unpack_next(&up, (const char *)p, n, &off) == MSGPACK_UNPACK_SUCCESS &&
            off == n) {
            print_obj(stdout, &up.data);
            fputc('\n', stdout);
            msgpack_unpacked_destroy(&up);
            return;
        }
        msgpack_unpacked_destroy(&up);
    }
    fputs("hex: ", stdout);
    print_hex(stdout, p, n);
    fputc('\n', stdout);
}

/* --- input ------------------------------------------------------------------------------- */

static int
hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Parses hex digits (whitespace, ':' and a leading "0x" ignored) into a new buffer. */
static int
parse_hex(const char *s, unsigned char **out, size_t *outlen)
{
    size_t cap = strlen(s) / 2 + 1, n = 0;
    unsigned char *b = malloc(cap);
    int hi = -1;

    if (b == NULL) {
        return SL_ENOMEM;
    }
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
    }
    for (; *s != '\0'; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == ':') {
            continue;
        }
        int v = hexval((unsigned char)*s);
        if (v < 0) {
            free(b);
            return SL_EBADREQ;
        }
        if (hi < 0) {
            hi = v;
        } else {
            b[n++] = (unsigned char)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0) {
        free(b);
        return SL_EBADREQ; /* an odd number of digits */
    }
    *out = b;
    *outlen = n;
    return 0;
}

static int
read_file(const char *path, unsigned char **out, size_t *outlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 4096, n = 0;
    unsigned char *b;

    if (f == NULL) {
        fprintf(stderr, "sl-send: %s: %s\n", path, strerror(errno));
        return SL_EIO;
    }
    if ((b = malloc(cap)) == NULL) {
        goto fail_file;
    }
    for (;;) {
        if (n == cap) {
            unsigned char *nb = cap >= FILE_MAX ? NULL : realloc(b, cap * 2);
            if (nb == NULL) {
                fprintf(stderr, "sl-send: %s: over %u bytes\n", path, FILE_MAX);
                free(b);
                goto fail_file;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            break;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "sl-send: %s: read error\n", path);
        free(b);
        goto fail_file;
    }
    if (f != stdin) {
        fclose(f);
    }
    *out = b;
    *outlen = n;
    return 0;
fail_file:
    if (f != stdin) {
        fclose(f);
    }
    return SL_EIO;
}

/* --- garbage ----------------------------------------------------------------------------- */

/* splitmix64: the same sequence from the same seed on every platform, unlike rand(). */
static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

struct gbuf {
    unsigned char b[GARBAGE_MAX];
    size_t n;
};

static void
put(struct gbuf *g, const void *p, size_t n)
{
    if (n > GARBAGE_MAX - g->n) {
        n = GARBAGE_MAX - g->n;
    }
    memcpy(g->b + g->n, p, n);
    g->n += n;
}

static void
put1(struct gbuf *g, unsigned c)
{
    unsigned char b = (unsigned char)c;
    put(g, &b, 1);
}

static void
put_str(struct gbuf *g, const char *z)
{
    size_t n = strlen(z);
    put1(g, 0xa0 | (unsigned)n); /* every key used here is under 32 bytes */
    put(g, z, n);
}

/* A value of random type: mostly small and valid, sometimes lying about its size. */
static void
put_value(struct gbuf *g, uint64_t *s, int depth)
{
    static const unsigned char liars[][5] = {
        { 0xdf, 0x07, 0xff, 0x07, 0xff }, { 0xdd, 0xff, 0xff, 0xff, 0xff },
        { 0xc6, 0x7f, 0xff, 0xff, 0xff }, { 0xdb, 0xff, 0xff, 0xff, 0xf0 },
        { 0xde, 0xff, 0xff, 0x00, 0x00 }, { 0xdc, 0x10, 0x00, 0x00, 0x00 },
    };
    uint64_t r = rnd(s);
    switch (r % 12) {
    case 0: put1(g, 0xc0); break;                                  /* nil */
    case 1: put1(g, 0xc2 + (unsigned)(r >> 8) % 2); break;          /* bool */
    case 2: put1(g, (unsigned)(r >> 8) & 0x7f); break;              /* fixint */
    case 3: put1(g, 0xe0 | ((unsigned)(r >> 8) & 0x1f)); break;     /* negative fixint */
    case 4: {                                                       /* uint64 / int64 */
        unsigned char b[9] = { (r >> 8) % 2 ? 0xcf : 0xd3 };
        uint64_t v = rnd(s);
        memcpy(b + 1, &v, 8);
        put(g, b, 9);
        break;
    }
    case 5: {                                                       /* str, maybe long */
        size_t n = (size_t)(r >> 8) % 200;
        put1(g, 0xd9);
        put1(g, (unsigned)n);
        for (size_t i = 0; i < n; i++) {
            put1(g, (unsigned)rnd(s));
        }
        break;
    }
    case 6: {                                                       /* bin */
        size_t n = (size_t)(r >> 8) % 40;
        put1(g, 0xc4);
        put1(g, (unsigned)n);
        for (size_t i = 0; i < n; i++) {
            put1(g, (unsigned)rnd(s));
        }
        break;
    }
    case 7:
    case 8: {                                                       /* array or map */
        unsigned n = (unsigned)(r >> 8) % 5;
        if (depth >= 10) {
            put1(g, 0x90);
            break;
        }
        put1(g, (r % 12 == 7 ? 0x90 : 0x80) | n);
        for (unsigned i = 0; i < n * (r % 12 == 7 ? 1u : 2u); i++) {
            put_value(g, s, depth + 1);
        }
        break;
    }
    case 9:
        put(g, liars[(r >> 8) % (sizeof(liars) / sizeof(liars[0]))], 5);
        break;
    case 10: put1(g, 0xc1); break;                                  /* never used */
    default: {                                                      /* float64, ext */
        unsigned char b[10] = { 0xcb };
        uint64_t v = rnd(s);
        memcpy(b + 1, &v, 8);
        if ((r >> 8) % 2) {
            b[0] = 0xd7;
            b[9] = (unsigned char)rnd(s);
            put(g, b, 10);
        } else {
            put(g, b, 9);
        }
        break;
    }
    }
}

static void
garbage(struct gbuf *g, uint64_t *s)
{
    static const char *const keys[] = {
        "op", "group", "queue", "name", "payloads", "client", "seq", "priority", "weight",
        "max_inflight", "force", "ttr_ms", "max_attempts", "delay_ms", "ids", "max", "x",
    };
    static const char *const ops[] = {
        "ping", "push", "queue.create", "queue.update", "queue.destroy", "queue.pause",
        "queue.resume", "queue.list", "route.set", "route.unset", "route.list", "stats",
        "flush", "purge", "nope",
    };
    uint64_t r = rnd(s);
    size_t len = (size_t)(rnd(s) % (GARBAGE_MAX + 1));

    g->n = 0;
    switch (r % 4) {
    case 0: /* plain random bytes */
    case 1: /* random bytes behind a map header */
        if (r % 4 == 1 && len > 0) {
            static const unsigned char hdr[] = { 0x81, 0x82, 0x83, 0x8f, 0xde, 0xdf };
            put1(g, hdr[(r >> 8) % sizeof(hdr)]);
        }
        while (g->n < len) {
            put1(g, (unsigned)rnd(s));
        }
        break;
    case 2: { /* a valid push, then mutated */
        static const unsigned char push[] = {
            0x84, 0xa2, 'o', 'p', 0xa4, 'p', 'u', 's', 'h', 0xa5, 'g', 'r', 'o', 'u', 'p',
            0xa3, 'b', 'o', 'b', 0xa8, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 's', 0x92, 0xc4,
            0x01, 'x', 0xa2, 'y', 'z', 0xa3, 's', 'e', 'q', 0x07,
        };
        put(g, push, sizeof(push));
        unsigned flips = 1 + (unsigned)(r >> 8) % 4;
        for (unsigned i = 0; i < flips; i++) {
            g->b[rnd(s) % g->n] = (unsigned char)rnd(s);
        }
        if ((r >> 16) % 3 == 0) {
            g->n = (size_t)(rnd(s) % (g->n + 1)); /* cut */
        } else if ((r >> 16) % 3 == 1) {
            put_value(g, s, 1); /* trailing bytes */
        }
        break;
    }
    default: { /* a map of protocol keys with values of random type */
        unsigned n = 1 + (unsigned)(r >> 8) % 6;
        put1(g, 0x80 | n);
        put_str(g, "op");
        put_str(g, ops[rnd(s) % (sizeof(ops) / sizeof(ops[0]))]);
        for (unsigned i = 1; i < n; i++) {
            put_str(g, keys[rnd(s) % (sizeof(keys) / sizeof(keys[0]))]);
            put_value(g, s, 1);
        }
        break;
    }
    }
}

/* --- requests ---------------------------------------------------------------------------- */

static int
dial(nng_socket *sock, const char *url, nng_duration timeout_ms)
{
    nng_time deadline = nng_clock() + (nng_time)timeout_ms;
    int rv;

    if ((rv = nng_req0_open(sock)) != 0) {
        fprintf(stderr, "sl-send: nng_req0_open: %s\n", nng_strerror(rv));
        return 1;
    }
    /* A request is sent once: a resend would count as a second message. */
    nng_socket_set_ms(*sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_ms(*sock, NNG_OPT_RECVTIMEO, timeout_ms);
    nng_socket_set_ms(*sock, NNG_OPT_SENDTIMEO, timeout_ms);
    nng_socket_set_ms(*sock, NNG_OPT_RECONNMINT, 20);
    for (;;) {
        if ((rv = nng_dial(*sock, url, NULL, 0)) == 0) {
            return 0;
        }
        if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL) {
            fprintf(stderr, "sl-send: %s: %s\n", url, nng_strerror(rv));
            nng_close(*sock);
            return 2;
        }
        if (nng_clock() >= deadline) {
            fprintf(stderr, "sl-send: %s: %s\n", url, nng_strerror(rv));
            nng_close(*sock);
            return 3;
        }
        nng_msleep(20);
    }
}

/* Sends one request of p[0..n) and waits for its reply, which is ours on success. */
static int
request(nng_socket sock, const void *p, size_t n, nng_msg **rep)
{
    nng_msg *m;
    int rv;

    if ((rv = nng_msg_alloc(&m, 0)) != 0 || (rv = nng_msg_append(m, p, n)) != 0) {
        if (rv == 0) {
            nng_msg_free(m);
        }
        return rv;
    }
    if ((rv = nng_sendmsg(sock, m, 0)) != 0) {
        nng_msg_free(m); /* not sent: still ours */
        return rv;
    }
    return nng_recvmsg(sock, rep, 0);
}

/* Which kind of reply: 'b' bad_request, 'k' ok, 'o' another error or not a reply at all. */
static char
classify(nng_msg *rep)
{
    struct wire_msg w;
    char kind = 'o';

    wire_msg_init(&w);
    if (wire_decode(&w, nng_msg_body(rep), nng_msg_len(rep), NULL, 0) == 0 &&
        WIRE_HAS(&w, WK_OK)) {
        if (w.v[WK_OK].b) {
            kind = 'k';
        } else if (WIRE_HAS(&w, WK_ERR) && sl_str_eq(w.v[WK_ERR].s, "bad_request")) {
            kind = 'b';
        }
    }
    wire_msg_fini(&w);
    return kind;
}

/* --lines: one request per line of hex read from f, on the one connection sock. */
static int
send_lines(nng_socket sock, FILE *f, bool raw)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    int rv = 0;

    while ((n = getline(&line, &cap, f)) >= 0) {
        unsigned char *body = NULL;
        size_t len = 0;
        nng_msg *rep = NULL;
        size_t i = 0;

        lineno++;
        while (line[i] == ' ' || line[i] == '\t') {
            i++;
        }
        if (line[i] == '\n' || line[i] == '\0' || line[i] == '#') {
            continue;
        }
        if (parse_hex(line + i, &body, &len) != 0) {
            fprintf(stderr, "sl-send: --lines: line %" PRIu64 " is not an even number of hex digits\n",
                    lineno);
            rv = 2;
            break;
        }
        int e = request(sock, body, len, &rep);
        free(body);
        if (e != 0) {
            printf("no reply: %s\n", nng_strerror(e));
            fflush(stdout);
            rv = 1;
            continue;
        }
        print_reply(nng_msg_body(rep), nng_msg_len(rep), raw);
        fflush(stdout);
        nng_msg_free(rep);
    }
    free(line);
    if (rv == 0 && ferror(f)) {
        fprintf(stderr, "sl-send: --lines: read error\n");
        rv = 2;
    }
    return rv;
}

static int
send_random(nng_socket sock, uint64_t count, uint64_t seed, bool quiet)
{
    uint64_t replies = 0, bad = 0, okays = 0, other = 0, lost = 0;
    uint64_t s = seed;
    struct gbuf g;

    for (uint64_t i = 0; i < count; i++) {
        nng_msg *rep = NULL;
        garbage(&g, &s);
        int rv = request(sock, g.b, g.n, &rep);
        if (rv != 0) {
            lost++;
            if (!quiet) {
                printf("no reply (%s) to message %" PRIu64 " (%zu bytes): ", nng_strerror(rv), i,
                       g.n);
                print_hex(stdout, g.b, g.n);
                fputc('\n', stdout);
            }
            continue;
        }
        replies++;
        switch (classify(rep)) {
        case 'b': bad++; break;
        case 'k': okays++; break;
        default: other++; break;
        }
        nng_msg_free(rep);
    }
    printf("replies=%" PRIu64 " bad_request=%" PRIu64 " ok=%" PRIu64 " other=%" PRIu64
           " no_reply=%" PRIu64 "\n",
           replies, bad, okays, other, lost);
    return lost == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    const struct opt *const tables[] = { opts, NULL };
    struct opt_vals v;
    uint64_t timeout_ms = 2000, count = 0, seed = 1;
    unsigned char *body = NULL;
    size_t len = 0;
    nng_socket sock;
    int argi, rv;

    log_prog = "sl-send";
    log_level = LOG_OFF;
    if (opt_parse(argc, argv, tables, false, &v, &argi) != 0) {
        return 2;
    }
    if (v.v[O_HELP] != NULL) {
        opt_usage(stdout, usage, tables);
        return 0;
    }
    int modes = (v.v[O_HEX] != NULL) + (v.v[O_FILE] != NULL) + (v.v[O_LINES] != NULL) +
                (v.v[O_RANDOM] != NULL);
    if (argc - argi != 1 || modes != 1) {
        opt_usage(stderr, usage, tables);
        return 2;
    }
    if ((v.v[O_TIMEOUT] != NULL &&
         opt_ms("timeout", v.v[O_TIMEOUT], 1, INT32_MAX, &timeout_ms) != 0) ||
        (v.v[O_SEED] != NULL && opt_u64("seed", v.v[O_SEED], 0, UINT64_MAX, &seed) != 0) ||
        (v.v[O_RANDOM] != NULL &&
         opt_u64("random", v.v[O_RANDOM], 0, UINT32_MAX, &count) != 0)) {
        return 2;
    }
    if (v.v[O_HEX] != NULL && parse_hex(v.v[O_HEX], &body, &len) != 0) {
        fprintf(stderr, "sl-send: --hex: '%s' is not an even number of hex digits\n",
                v.v[O_HEX]);
        return 2;
    }
    if (v.v[O_FILE] != NULL && read_file(v.v[O_FILE], &body, &len) != 0) {
        return 2;
    }

    FILE *lines = NULL;
    if (v.v[O_LINES] != NULL) {
        lines = strcmp(v.v[O_LINES], "-") == 0 ? stdin : fopen(v.v[O_LINES], "r");
        if (lines == NULL) {
            fprintf(stderr, "sl-send: %s: %s\n", v.v[O_LINES], strerror(errno));
            return 2;
        }
    }

    if ((rv = dial(&sock, argv[argi], (nng_duration)timeout_ms)) != 0) {
        free(body);
        if (lines != NULL && lines != stdin) {
            fclose(lines);
        }
        return rv;
    }
    if (lines != NULL) {
        rv = send_lines(sock, lines, v.v[O_RAW] != NULL);
        if (lines != stdin) {
            fclose(lines);
        }
    } else if (v.v[O_RANDOM] != NULL) {
        rv = send_random(sock, count, seed, v.v[O_QUIET] != NULL);
    } else {
        nng_msg *rep = NULL;
        int e = request(sock, body, len, &rep);
        if (e == 0) {
            print_reply(nng_msg_body(rep), nng_msg_len(rep), v.v[O_RAW] != NULL);
            nng_msg_free(rep);
            rv = 0;
        } else {
            fprintf(stderr, "sl-send: %s: no reply: %s\n", argv[argi], nng_strerror(e));
            rv = 1;
        }
    }
    free(body);
    nng_close(sock);
    /* No nng_fini(): nng 1.5.2 aborts in it while a closed socket is still being torn down
     * on its threads (see ctl/main.c). */
    return rv;
}
