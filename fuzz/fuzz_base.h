/* The starting state of fuzz_request: the requests that bring a new broker to it, encoded
 * once; the broker invariants the broker's fuzz targets check; and the request path that
 * fuzz_request and fuzz_request_token drive (a broker on a fake clock, one request at a time). fuzz/mkcorpus.c uses the same constants to write seed requests that refer to it (job
 * ids, queue names, the lease's number). */
#ifndef SLUICE_FUZZ_BASE_H
#define SLUICE_FUZZ_BASE_H

#include <stddef.h>
#include <stdint.h>

/* The fake clock's start (both clocks): 2023-11-14 22:13:20 UTC. */
#define FUZZ_BASE_START_NS 1700000000000000000LL
#define FUZZ_BASE_STEP_MS 250  /* the clock moves this much after each request */
#define FUZZ_BASE_MAX 16       /* requests in the starting state, at most */

/* What the starting state holds (see fuzz_base.c for how it gets there):
 *   queues  default; q1 (priority 5, weight 2); q2 (max_inflight 1); slow (paused)
 *   routes  carol -> q2
 *   jobs    1-3, 9 alice in default; 4-5 bob in q1 (4 dead); 6-7 carol in q2; 8 dave in slow;
 *           reserved by worker w1 (connection 1) and w2 (connection 2): 5, and two more
 *   lease   held by "router:1", number FUZZ_BASE_LEASE, 60 s */
#define FUZZ_BASE_JOBS 9
#define FUZZ_BASE_LEASE_AT 13  /* index of the lease.acquire request */
#define FUZZ_BASE_LEASE \
    ((uint64_t)(FUZZ_BASE_START_NS / 1000000) + FUZZ_BASE_LEASE_AT * FUZZ_BASE_STEP_MS)

struct fuzz_req {
    const void *p;   /* the request body */
    size_t n;
    uint32_t pipe;   /* the connection it comes on */
};

/* The starting state's requests, in order: *out points at a static array (encoded on the
 * first call; not thread-safe). Returns how many. */
size_t fuzz_request_base(const struct fuzz_req **out);

/* The token of fuzz_request_token's broker (its seeds carry it). */
#define FUZZ_BASE_TOKEN "fuzz-token"

/* Any reply: for fuzz_check_reply, when what the reply says is not known in advance. */
#define FUZZ_ANY_REPLY (-2)

/* Aborts unless body[0..len) is exactly one reply map whose boolean "ok" says rv == 0 and
 * whose "err" (a string) is sl_err_code(rv) when rv != 0; with rv FUZZ_ANY_REPLY, only that
 * it is such a map with "ok", and "err" when not ok. */
void fuzz_check_reply(const void *body, size_t len, int rv);

struct broker;

/* The broker's log level in a fuzz target: $SLUICE_FUZZ_LOG (debug, info, warn, error), else
 * off, so that running one input by hand can show what the broker did. */
int fuzz_log_level(void);

/* Aborts unless b's job totals agree with its queues, its groups and each queue's lists
 * (every job in the list of its state, in its queue). Takes b->lock. */
void fuzz_check_broker(struct broker *b);

/* Requests of one input that run one by one (fuzz_run_input); the rest is ignored. */
#define FUZZ_RUN_MAX 64

/* A fresh broker for one input, the log level set by fuzz_log_level: memory only, small limits (so that the fuzzer reaches them
 * and memory stays bounded), both clocks on the fake clock, set to FUZZ_BASE_START_NS. */
struct broker *fuzz_run_broker(void);

/* What a target checks around ops_handle in fuzz_run_request: before gets the request just
 * before ops_handle runs it, after what ops_handle returned, right after (before the reply is
 * checked or the timers run); either may be NULL; both get arg. */
struct fuzz_run_hook {
    void (*before)(struct broker *b, const void *p, size_t n, void *arg);
    void (*after)(struct broker *b, int rv, void *arg);
    void *arg;
};

/* One request p[0..n) through ops_handle on connection pipe; the reply is checked (a parked
 * reserve's when it is answered); then the fake clock moves FUZZ_BASE_STEP_MS and the broker's
 * timers (TTR, delays, parked reserves' waits) run. The broker's totals are checked after the
 * request and after the timers. hook may be NULL. */
void fuzz_run_request(struct broker *b, const void *p, size_t n, uint32_t pipe,
                      const struct fuzz_run_hook *hook);

/* The input data[0..size) as fuzz_run_request's: first the whole of it as one request on
 * connection 1 (as the broker's socket would hand it over: trailing bytes and all); then, if
 * it holds more than one msgpack value, each of its first FUZZ_RUN_MAX values in turn, on
 * connections 1, 2, 3, 1, ... */
void fuzz_run_input(struct broker *b, const uint8_t *data, size_t size,
                    const struct fuzz_run_hook *hook);

/* Closes connections 1 to 3, and aborts unless that answered every parked reserve and every
 * request has had its reply. Leaves b to the caller to free. */
void fuzz_run_close(struct broker *b);

#endif
