/* The seeds of fuzz_request_journal and fuzz_request_token (see mkcorpus.c, which also
 * makes each fuzz_request seed one of theirs). */
#include "fuzz.h"
#include "fuzz_base.h"
#include "mkcorpus.h"

#include "mpr.h"
#include "token.h"
#include "wire.h"

#include <msgpack.h>
#include <string.h>

/* p[0..n) with the token attached to each request of it that is a map; the rest (bytes that
 * are not a msgpack value) as it is. *out is allocated. */
void
with_token(const void *p, size_t n, nng_msg **out)
{
    struct token t = { 0, "" };
    struct mpr c;
    const uint8_t *start = p;

    t.n = (uint32_t)strlen(FUZZ_BASE_TOKEN);
    memcpy(t.s, FUZZ_BASE_TOKEN, t.n);
    FUZZ_CHECK(nng_msg_alloc(out, 0) == 0);
    mpr_init(&c, p, n);
    while (mpr_left(&c) > 0 && mpr_skip(&c)) {
        nng_msg *m;
        FUZZ_CHECK(nng_msg_alloc(&m, 0) == 0);
        FUZZ_CHECK(nng_msg_append(m, start, (size_t)(c.p - start)) == 0);
        (void)token_attach(m, &t); /* not a map: left without */
        FUZZ_CHECK(nng_msg_append(*out, nng_msg_body(m), nng_msg_len(m)) == 0);
        nng_msg_free(m);
        start = c.p;
    }
    FUZZ_CHECK(nng_msg_append(*out, start, (size_t)((const uint8_t *)p + n - start)) == 0);
}

/* --- fuzz_request_journal ------------------------------------------------------------------ */

/* A nil value: fuzz_request_journal restarts the broker there. */
static void
restart(void)
{
    static const char nil = (char)0xc0;
    msgpack_sbuffer_write(&req_seq, &nil, 1);
}

static void
req_save(const char *name)
{
    save_one("fuzz_request_journal", name, req_seq.data, req_seq.size);
    msgpack_sbuffer_clear(&req_seq);
}

static void
set_payloads(struct wire_msg *m, const struct sl_str *v, uint32_t n)
{
    wire_set_strs(m, WK_PAYLOADS, v, n);
}

/* Sequences with restarts (a nil value) between them: what was pushed, reserved, nacked with
 * a delay, routed, paused and destroyed must come back from the journal. */
static void
restart_push_nack_pause(void)
{
    static const struct sl_str one[] = { { "z", 1 } };
    static const uint64_t five[] = { 5 }, two[] = { 2, 3 };
    struct wire_msg m;

    req_begin(&m, "push");
    wire_set_cstr(&m, WK_GROUP, "hank");
    wire_set_cstr(&m, WK_QUEUE, "q1");
    wire_set_cstr(&m, WK_CLIENT, "c9");
    wire_set_u64(&m, WK_SEQ, 3);
    set_payloads(&m, one, 1);
    req_add(&m);
    restart();
    req_add(&m); /* the same key again, after the restart: a duplicate */
    req_begin(&m, "nack");
    wire_set_u64s(&m, WK_IDS, two, 2);
    wire_set_u64(&m, WK_DELAY_MS, 5000);
    req_add(&m);
    req_begin(&m, "queue.update");
    wire_set_cstr(&m, WK_NAME, "q2");
    wire_set_u64(&m, WK_PRIORITY, 9);
    req_add(&m);
    req_begin(&m, "queue.pause");
    wire_set_cstr(&m, WK_NAME, "q1");
    req_add(&m);
    restart();
    req_begin(&m, "reserve");
    wire_set_cstr(&m, WK_WORKER, "w7");
    wire_set_u64(&m, WK_MAX, 10);
    req_add(&m);
    req_begin(&m, "ack");
    wire_set_u64s(&m, WK_IDS, five, 1);
    wire_set_cstr(&m, WK_WORKER, "w1");
    req_add(&m);
    req_save("restart-push-nack-pause");
}

static void
restart_route_destroy_purge(void)
{
    struct wire_msg m;

    req_begin(&m, "route.set");
    wire_set_cstr(&m, WK_GROUP, "alice");
    wire_set_cstr(&m, WK_QUEUE, "q2");
    req_add(&m);
    req_begin(&m, "queue.destroy");
    wire_set_cstr(&m, WK_NAME, "q1");
    wire_set_bool(&m, WK_FORCE, true);
    req_add(&m);
    restart();
    req_begin(&m, "flush");
    req_add(&m);
    req_begin(&m, "dead.retry");
    wire_set_cstr(&m, WK_GROUP, "bob");
    req_add(&m);
    restart();
    req_begin(&m, "purge");
    wire_set_cstr(&m, WK_QUEUE, "default");
    req_add(&m);
    req_save("restart-route-destroy-purge");
}

/* Enough pushes to roll several 4 KiB segments and compact the oldest. */
static void
restart_segments(void)
{
    static char pay[600];
    struct wire_msg m;

    memset(pay, 'j', sizeof(pay));
    struct sl_str big[4] = { { pay, sizeof(pay) }, { pay, sizeof(pay) }, { pay, 300 },
                             { pay, 10 } };
    for (int i = 0; i < 6; i++) {
        req_begin(&m, "push");
        wire_set_cstr(&m, WK_GROUP, i % 2 ? "ivy" : "alice");
        set_payloads(&m, big, 4);
        req_add(&m);
        if (i == 2) {
            req_begin(&m, "purge");
            wire_set_cstr(&m, WK_GROUP, "alice");
            req_add(&m);
        }
    }
    restart();
    req_begin(&m, "reserve");
    wire_set_cstr(&m, WK_WORKER, "w8");
    wire_set_u64(&m, WK_MAX, 100);
    req_add(&m);
    req_save("restart-segments");
}

void
journal_requests(void)
{
    msgpack_sbuffer_init(&req_seq);
    restart_push_nack_pause();
    restart_route_destroy_purge();
    restart_segments();
    msgpack_sbuffer_destroy(&req_seq);
}

/* --- fuzz_request_token -------------------------------------------------------------------- */

/* A ping and a push whose "token" field is raw[0..n) (an encoded msgpack value; with pairs
 * 2, the value, then "token" and another value), or absent when raw is NULL, saved as name. */
static void
token_seed(const char *name, const void *raw, size_t n, uint8_t pairs)
{
    static const struct sl_str one[] = { { "t", 1 } };
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct wire_msg m;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (int i = 0; i < 2; i++) {
        wire_msg_init(&m);
        wire_set_cstr(&m, WK_OP, i == 0 ? "ping" : "push");
        if (i == 1) {
            wire_set_cstr(&m, WK_GROUP, "alice");
            wire_set_strs(&m, WK_PAYLOADS, one, 1);
        }
        nng_msg *msg;
        msgpack_sbuffer body;
        msgpack_packer bp;
        msgpack_sbuffer_init(&body);
        msgpack_packer_init(&bp, &body, msgpack_sbuffer_write);
        FUZZ_CHECK(wire_encode(&m, &bp) == 0);
        FUZZ_CHECK(nng_msg_alloc(&msg, 0) == 0);
        FUZZ_CHECK(nng_msg_append(msg, body.data, body.size) == 0);
        msgpack_sbuffer_destroy(&body);
        if (raw != NULL) {
            /* The map's count grows by one (fixmap: the first byte) and the pair follows. */
            uint8_t *p = nng_msg_body(msg);
            FUZZ_CHECK((p[0] & 0xf0) == 0x80 && (p[0] & 0x0f) + pairs <= 15);
            p[0] = (uint8_t)(p[0] + pairs);
            FUZZ_CHECK(nng_msg_append(msg, "\xa5token", 6) == 0);
            FUZZ_CHECK(nng_msg_append(msg, raw, n) == 0);
        }
        msgpack_sbuffer_write(&sb, nng_msg_body(msg), nng_msg_len(msg));
        nng_msg_free(msg);
    }
    save_one("fuzz_request_token", name, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

void
token_requests(void)
{
    static const uint8_t wrong[] = { 0xaa, 'f', 'u', 'z', 'z', '-', 't', 'o', 'k', 'e', 'N' };
    static const uint8_t prefix[] = { 0xa9, 'f', 'u', 'z', 'z', '-', 't', 'o', 'k', 'e' };
    static const uint8_t longer[] = { 0xab, 'f', 'u', 'z', 'z', '-', 't', 'o', 'k', 'e', 'n',
                                      '\n' };
    static const uint8_t nul[] = { 0xab, 'f', 'u', 'z', 'z', '-', 't', 'o', 'k', 'e', 'n', 0 };
    static const uint8_t bin[] = { 0xc4, 10, 'f', 'u', 'z', 'z', '-', 't', 'o', 'k', 'e', 'n' };
    static const uint8_t arr[] = { 0x91, 0xaa, 'f', 'u', 'z', 'z', '-', 't', 'o', 'k', 'e',
                                   'n' };
    static const uint8_t empty[] = { 0xa0 }, integer[] = { 0x2a }, nil[] = { 0xc0 },
                         map[] = { 0x80 }, neg[] = { 0xff }, tru[] = { 0xc3 };
    static const uint8_t good[] = { 0xaa, 'f', 'u', 'z', 'z', '-', 't', 'o', 'k', 'e', 'n' };
    token_seed("token-none", NULL, 0, 1);
    token_seed("token-good", good, sizeof(good), 1);
    token_seed("token-wrong", wrong, sizeof(wrong), 1);
    token_seed("token-prefix", prefix, sizeof(prefix), 1);
    token_seed("token-longer", longer, sizeof(longer), 1);
    token_seed("token-nul", nul, sizeof(nul), 1);
    token_seed("token-bin", bin, sizeof(bin), 1);
    token_seed("token-array", arr, sizeof(arr), 1);
    token_seed("token-empty", empty, sizeof(empty), 1);
    token_seed("token-int", integer, sizeof(integer), 1);
    token_seed("token-nil", nil, sizeof(nil), 1);
    token_seed("token-map", map, sizeof(map), 1);
    token_seed("token-negative", neg, sizeof(neg), 1);
    token_seed("token-bool", tru, sizeof(tru), 1);
    /* The field twice: the token, then a wrong one; and the other way round. */
    uint8_t twice[sizeof(good) + 6 + sizeof(wrong)];
    memcpy(twice, good, sizeof(good));
    memcpy(twice + sizeof(good), "\xa5token", 6);
    memcpy(twice + sizeof(good) + 6, wrong, sizeof(wrong));
    token_seed("token-twice", twice, sizeof(twice), 2);
    memcpy(twice, wrong, sizeof(wrong));
    memcpy(twice + sizeof(wrong) + 6, good, sizeof(good));
    memcpy(twice + sizeof(wrong), "\xa5token", 6);
    token_seed("token-twice-wrong-first", twice, sizeof(twice), 2);
}

