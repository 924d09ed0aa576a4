/* sl-fakestats: a stand-in broker that answers every request with a canned stats reply, for
 * testing what ctl makes of replies the real broker does not send (yet). Usage:
 *
 *   sl-fakestats URL MODE
 *
 * MODE full: every field the live view reads, including the ones a broker may lack
 *            (dispatched counters growing by 50 per request, waits, reserves, decisions, a
 *            queue's order, a group's weight, share and oldest ready job);
 * MODE odd:  the same keys with wrong types (strings for numbers, negative numbers, maps for
 *            arrays, entries that are not maps, text with terminal escapes);
 * MODE junk: a reply that is not msgpack at all.
 * Prints "listening" once it listens; runs until killed. */
#include "wire.h"

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void
ku(msgpack_packer *pk, const char *k, uint64_t v)
{
    wire_pack_cstr(pk, k);
    msgpack_pack_uint64(pk, v);
}

static void
ks(msgpack_packer *pk, const char *k, const char *v)
{
    wire_pack_cstr(pk, k);
    wire_pack_cstr(pk, v);
}

static void
kf(msgpack_packer *pk, const char *k, double v)
{
    wire_pack_cstr(pk, k);
    msgpack_pack_double(pk, v);
}

static void
full(msgpack_packer *pk, uint64_t n)
{
    msgpack_pack_map(pk, 7);
    wire_pack_cstr(pk, "ok");
    msgpack_pack_true(pk);
    wire_pack_cstr(pk, "broker");
    msgpack_pack_map(pk, 13);
    ku(pk, "pid", 4242);
    ku(pk, "uptime_s", 3661);
    ks(pk, "version", "9.9.9");
    ku(pk, "jobs", 1234);
    ks(pk, "journal", "always");
    ku(pk, "journal_bytes", 5 * 1024 * 1024);
    ku(pk, "journal_segments", 2);
    ku(pk, "dispatched", 1000 + 100 * n);
    ku(pk, "reserves", 777);
    ku(pk, "reserves_empty", 77);
    ku(pk, "no_worker", 7);
    ku(pk, "unique_keys", 12);
    wire_pack_cstr(pk, "errors");
    msgpack_pack_map(pk, 2);
    ku(pk, "failed", 30);
    ku(pk, "exit", 12);
    wire_pack_cstr(pk, "leader");
    msgpack_pack_map(pk, 3);
    ks(pk, "name", "router:fake:1");
    ku(pk, "lease", 31337);
    ku(pk, "expires_ms", 1800);
    wire_pack_cstr(pk, "workers");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 7);
    ks(pk, "id", "fake:1:0");
    ku(pk, "pid", 5151);
    ks(pk, "state", "busy");
    ku(pk, "jobs", 40 + n);
    ku(pk, "rss_bytes", 3 * 1024 * 1024);
    ku(pk, "current", 99);
    ku(pk, "uptime_s", 125);
    wire_pack_cstr(pk, "queues");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 12);
    ks(pk, "name", "group.bob");
    ks(pk, "order", "groups");
    ku(pk, "groups_ready", 1);
    ku(pk, "priority", 100);
    ku(pk, "weight", 1);
    ku(pk, "max_inflight", 4);
    wire_pack_cstr(pk, "paused");
    msgpack_pack_false(pk);
    ku(pk, "ready", 900);
    ku(pk, "reserved", 4);
    ku(pk, "dead", 1);
    ku(pk, "done", 0); /* reset: the rate must come from dispatched */
    ku(pk, "dispatched", 500 + 50 * n);
    wire_pack_cstr(pk, "groups");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 11);
    ks(pk, "name", "bob");
    ks(pk, "route", "group.bob");
    kf(pk, "weight", 0.5);
    kf(pk, "share", 0.8);
    ku(pk, "oldest_ready_ms", 3200);
    ku(pk, "count", 904);
    ku(pk, "reserved", 4);
    ku(pk, "done", 0);
    ku(pk, "dispatched", 500 + 50 * n);
    kf(pk, "wait_p50_ms", 12.0);
    kf(pk, "wait_p99_ms", 2500.0);
    wire_pack_cstr(pk, "decisions");
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 6);
    ku(pk, "ts_ms", 1700000000000ULL);
    ks(pk, "group", "bob");
    ks(pk, "queue", "group.bob");
    ku(pk, "moved", 1530);
    ks(pk, "reason", "count 1530 > high 100");
    ku(pk, "lease", 31337);
    msgpack_pack_map(pk, 6);
    ku(pk, "ts_ms", 1699999990000ULL);
    ks(pk, "group", "amy");
    wire_pack_cstr(pk, "queue");
    msgpack_pack_nil(pk);
    ku(pk, "moved", 3);
    wire_pack_cstr(pk, "reason");
    msgpack_pack_nil(pk);
    wire_pack_cstr(pk, "lease");
    msgpack_pack_nil(pk);
}

static void
odd(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 7);
    wire_pack_cstr(pk, "ok");
    msgpack_pack_true(pk);
    wire_pack_cstr(pk, "broker");
    msgpack_pack_map(pk, 3);
    ks(pk, "pid", "four");
    wire_pack_cstr(pk, "uptime_s");
    msgpack_pack_int64(pk, -3);
    ks(pk, "version", "\x1b]0;owned\x07");
    wire_pack_cstr(pk, "leader");
    msgpack_pack_array(pk, 0);
    wire_pack_cstr(pk, "workers");
    msgpack_pack_array(pk, 2);
    wire_pack_cstr(pk, "not a map");
    msgpack_pack_map(pk, 2);
    wire_pack_cstr(pk, "pid");
    msgpack_pack_double(pk, 1.5);
    ks(pk, "state", "\x1b[2Jbusy");
    wire_pack_cstr(pk, "queues");
    msgpack_pack_map(pk, 0);
    wire_pack_cstr(pk, "groups");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 7);
    wire_pack_cstr(pk, "name");
    msgpack_pack_nil(pk);
    ks(pk, "count", "many");
    ks(pk, "weight", "heavy");
    wire_pack_cstr(pk, "share");
    msgpack_pack_int64(pk, -1);
    ks(pk, "oldest_ready_ms", "\x1b[2Jold");
    wire_pack_cstr(pk, "wait_p99_ms");
    msgpack_pack_double(pk, -1);
    ks(pk, "dispatched", "lots");
    wire_pack_cstr(pk, "decisions");
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_map(pk, 1);
    ku(pk, "group", 7);
}

int
main(int argc, char **argv)
{
    nng_socket s;
    int rv;

    if (argc != 3 || (strcmp(argv[2], "full") != 0 && strcmp(argv[2], "odd") != 0 &&
                      strcmp(argv[2], "junk") != 0)) {
        fprintf(stderr, "usage: sl-fakestats URL full|odd|junk\n");
        return 2;
    }
    if ((rv = nng_rep0_open(&s)) != 0 || (rv = nng_listen(s, argv[1], NULL, 0)) != 0) {
        fprintf(stderr, "sl-fakestats: %s: %s\n", argv[1], nng_strerror(rv));
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (uint64_t n = 0;; n++) {
        nng_msg *req, *rep;
        msgpack_packer pk;
        if ((rv = nng_recvmsg(s, &req, 0)) != 0) {
            fprintf(stderr, "sl-fakestats: recv: %s\n", nng_strerror(rv));
            return 1;
        }
        nng_msg_free(req);
        if (nng_msg_alloc(&rep, 0) != 0) {
            return 1;
        }
        msgpack_packer_init(&pk, rep, wire_pack_into_msg);
        if (strcmp(argv[2], "full") == 0) {
            full(&pk, n);
        } else if (strcmp(argv[2], "odd") == 0) {
            odd(&pk);
        } else {
            nng_msg_append(rep, "\xc1\xc1\xc1", 3); /* 0xc1 is never used in msgpack */
        }
        if (nng_sendmsg(s, rep, 0) != 0) {
            nng_msg_free(rep);
        }
    }
}
