/* Fuzz target: the broker's request path, from raw bytes to reply, without sockets.
 *
 * The input is what a client sends: one request body (a msgpack map), or several bodies one
 * after another. Each input gets a fresh broker (memory only, on a fake clock) brought to a
 * fixed starting state by the requests of fuzz_request_base(): three queues (one paused,
 * one capped), a route, ready, reserved and dead jobs, two workers, the router's lease. Then
 *   1. the whole input goes through ops_handle as one request (as the broker's socket would
 *      hand it over: trailing bytes and all);
 *   2. if it holds more than one msgpack value, each value goes through ops_handle in turn,
 *      on connections 1, 2, 3, 1, ..., the clock moving 250 ms and the broker's timers
 *      (TTR, delays, parked reserves' waits) running after each;
 *   3. the three connections close, which answers every parked reserve.
 * A fresh state per input makes a crash reproduce from its one file; sequences of requests
 * in one input are how the fuzzer reaches deeper states.
 *
 * Checked after every request: the reply is exactly one msgpack map whose "ok" says whether
 * ops_handle succeeded, with the error's wire code in "err"; the broker's job totals equal
 * the sums over its queues, over its groups, and over each queue's lists. */
#include "fuzz.h"
#include "fuzz_base.h"

#include "broker.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct broker *b = fuzz_run_broker();

    const struct fuzz_req *base;
    size_t nbase = fuzz_request_base(&base);
    for (size_t i = 0; i < nbase; i++) {
        fuzz_run_request(b, base[i].p, base[i].n, base[i].pipe, NULL);
    }
    fuzz_run_input(b, data, size, NULL);
    fuzz_run_close(b);
    broker_free(b);
    return 0;
}
