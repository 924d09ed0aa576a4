/* Producers the shape of applications, measured from outside the broker:
 *   httpload http ADDR:PORT BATCH CONNS SECONDS  POST /v1/groups/bench/jobs over HTTP/1.1
 *                                                keep-alive connections (raw sockets)
 *   httpload wire URL|- BATCH CONNS SECONDS      the same pushes through the C client
 * Each of CONNS threads pushes BATCH 16-byte payloads per request, one request at a time,
 * for SECONDS. Prints "N jobs/s p50=MS p99=MS requests=R" (per request latencies). With a
 * token file in SLUICE_TOKEN_FILE, HTTP sends it as Authorization: Bearer. Exit 1 on any
 * failed request. */
#include "benchlib.h"
#include "err.h"
#include "token.h"
#include "wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAYLOAD "0123456789abcdef" /* 16 bytes */
#define MAX_CONNS 256
#define LAT_MAX (1u << 20)

struct run {
    bool http;
    const char *target;
    unsigned batch, conns;
    uint64_t end_us;
    char *body;        /* the HTTP request, whole (headers and body) */
    size_t body_len;
    struct token tok;
    atomic_ullong jobs;
    atomic_bool failed;
};

struct producer {
    struct run *r;
    uint64_t *lat; /* per request, microseconds */
    size_t nlat;
};

static int
http_connect(const char *target)
{
    char host[64];
    const char *colon = strrchr(target, ':');
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int fd, one = 1;

    if (colon == NULL || (size_t)(colon - target) >= sizeof(host)) {
        return -1;
    }
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one response (status line, headers, Content-Length body) into buf; returns the
 * status, or -1. Keep-alive: the connection stays usable. */
static int
http_response(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    char *eoh = NULL;
    long clen = 0;

    while (eoh == NULL) {
        ssize_t n = read(fd, buf + have, cap - 1 - have);
        if (n <= 0) {
            return -1;
        }
        have += (size_t)n;
        buf[have] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
        if (eoh == NULL && have >= cap - 1) {
            return -1;
        }
    }
    for (char *h = strstr(buf, "\r\n"); h != NULL && h < eoh; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0) {
            clen = strtol(h + 17, NULL, 10);
        }
    }
    size_t want = (size_t)(eoh + 4 - buf) + (size_t)clen;
    if (want >= cap) {
        return -1;
    }
    while (have < want) {
        ssize_t n = read(fd, buf + have, want - have);
        if (n <= 0) {
            return -1;
        }
        have += (size_t)n;
    }
    buf[have] = '\0';
    return atoi(buf + 9);
}

static int
build_request(struct run *r)
{
    size_t blen = 16 + (size_t)r->batch * (sizeof(PAYLOAD) + 3);
    char *body = malloc(blen), auth[1100] = "";
    size_t n = (size_t)snprintf(body, blen, "{\"payloads\":[");
    for (unsigned i = 0; i < r->batch; i++) {
        n += (size_t)snprintf(body + n, blen - n, "%s\"%s\"", i > 0 ? "," : "", PAYLOAD);
    }
    n += (size_t)snprintf(body + n, blen - n, "]}");
    if (r->tok.n > 0) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %.*s\r\n", (int)r->tok.n,
                 r->tok.s);
    }
    r->body = malloc(n + 2048);
    r->body_len = (size_t)snprintf(r->body, n + 2048,
                                   "POST /v1/groups/bench/jobs HTTP/1.1\r\nHost: %s\r\n%s"
                                   "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                                   "\r\n%s", r->target, auth, n, body);
    free(body);
    return 0;
}

static int
one_http(struct run *r, int fd, char *buf, size_t cap)
{
    for (size_t off = 0; off < r->body_len;) {
        ssize_t n = write(fd, r->body + off, r->body_len - off);
        if (n <= 0) {
            return -1;
        }
        off += (size_t)n;
    }
    int st = http_response(fd, buf, cap);
    if (st != 200 && st != 201) {
        fprintf(stderr, "httpload: HTTP status %d: %.200s\n", st, st < 0 ? "" : buf);
        return -1;
    }
    return 0;
}

static void *
producer_main(void *arg)
{
    struct producer *p = arg;
    struct run *r = p->r;
    struct client *c = NULL;
    char buf[65536];
    int fd = -1;

    if (r->http ? (fd = http_connect(r->target)) < 0
                : client_open(&c, r->target, 5000) != 0) {
        fprintf(stderr, "httpload: cannot connect to %s\n", r->target);
        atomic_store(&r->failed, true);
        return NULL;
    }
    if (c != NULL && r->tok.n > 0) {
        client_set_token(c, &r->tok);
    }
    while (!atomic_load(&r->failed) && benchlib_mono_us() < r->end_us) {
        uint64_t t0 = benchlib_mono_us();
        int rv = r->http ? one_http(r, fd, buf, sizeof(buf))
                         : benchlib_push(c, "bench", PAYLOAD, 16, r->batch, 10000);
        if (rv != 0) {
            fprintf(stderr, "httpload: push failed (%d)\n", rv);
            atomic_store(&r->failed, true);
            break;
        }
        if (p->nlat < LAT_MAX) {
            p->lat[p->nlat++] = benchlib_mono_us() - t0;
        }
        atomic_fetch_add(&r->jobs, r->batch);
    }
    if (fd >= 0) {
        close(fd);
    }
    client_free(c);
    return NULL;
}

int
main(int argc, char **argv)
{
    static struct run r;
    static struct producer ps[MAX_CONNS];
    pthread_t th[MAX_CONNS];
    char ubuf[512], why[512];

    if (argc != 6 || (strcmp(argv[1], "http") != 0 && strcmp(argv[1], "wire") != 0)) {
        fprintf(stderr, "usage: httpload http ADDR:PORT|wire URL|- BATCH CONNS SECONDS\n");
        return 2;
    }
    r.http = strcmp(argv[1], "http") == 0;
    r.batch = (unsigned)atoi(argv[3]);
    r.conns = (unsigned)atoi(argv[4]);
    int secs = atoi(argv[5]);
    if (r.batch < 1 || r.batch > 100000 || r.conns < 1 || r.conns > MAX_CONNS || secs < 1) {
        fprintf(stderr, "httpload: BATCH 1..100000, CONNS 1..%d, SECONDS >= 1\n", MAX_CONNS);
        return 2;
    }
    if (benchlib_url("httpload", strcmp(argv[2], "-") == 0 ? NULL : argv[2], ubuf, sizeof(ubuf),
                     &r.target) != 0) {
        return 2;
    }
    const char *tf = getenv("SLUICE_TOKEN_FILE");
    if (tf != NULL && tf[0] != '\0' && token_load(&r.tok, tf, why, sizeof(why)) != 0) {
        fprintf(stderr, "httpload: %s\n", why);
        return 2;
    }
    if (r.http) {
        build_request(&r);
    }
    benchlib_watchdog("httpload", (uint64_t)secs * 1000 + 30000);
    uint64_t t0 = benchlib_mono_us();
    r.end_us = t0 + (uint64_t)secs * 1000000;
    for (unsigned i = 0; i < r.conns; i++) {
        ps[i].r = &r;
        ps[i].lat = malloc(LAT_MAX * sizeof(uint64_t));
        pthread_create(&th[i], NULL, producer_main, &ps[i]);
    }
    size_t total = 0;
    for (unsigned i = 0; i < r.conns; i++) {
        pthread_join(th[i], NULL);
        total += ps[i].nlat;
    }
    uint64_t el = benchlib_mono_us() - t0;
    if (atomic_load(&r.failed) || total == 0) {
        return 1;
    }
    uint64_t *all = malloc(total * sizeof(uint64_t));
    size_t k = 0;
    for (unsigned i = 0; i < r.conns; i++) {
        memcpy(all + k, ps[i].lat, ps[i].nlat * sizeof(uint64_t));
        k += ps[i].nlat;
        free(ps[i].lat);
    }
    benchlib_sort_u64(all, total);
    printf("%llu jobs/s p50=%.3f p99=%.3f requests=%zu\n",
           (unsigned long long)(atomic_load(&r.jobs) * 1000000ull / (el ? el : 1)),
           benchlib_pct_ms(all, total, 0.5), benchlib_pct_ms(all, total, 0.99), total);
    free(all);
    free(r.body);
    return 0;
}
