/* common/token: loading a token file (private, non-empty, bounded, one line), comparing a
 * request's token, attaching it to an encoded request of any map size; and the broker's
 * dispatcher refusing a request without the right token (unauthorized) while changing nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"
#include "token.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sl-token.XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* m's body is one msgpack map of size entries and nothing after it. */
static void
assert_one_map(nng_msg *m, uint32_t size)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, nng_msg_body(m), nng_msg_len(m), &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(u.data.via.map.size, size);
    assert_int_equal(off, nng_msg_len(m));
    msgpack_unpacked_destroy(&u);
}

/* Writes n bytes to DIR/name with mode; returns the path (static buffer). */
static const char *
file(const char *name, const void *data, size_t n, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void
test_load_strips_one_trailing_newline(void **state)
{
    (void)state;
    struct token t = { 0 };
    char why[256];
    assert_int_equal(token_load(&t, file("a", "abc\n", 4, 0600), why, sizeof(why)), 0);
    assert_int_equal(t.n, 3);
    assert_memory_equal(t.s, "abc", 3);
    assert_int_equal(token_load(&t, file("b", "xyz\r\n", 5, 0400), why, sizeof(why)), 0);
    assert_int_equal(t.n, 3);
    assert_memory_equal(t.s, "xyz", 3);
    assert_int_equal(token_load(&t, file("c", "no-newline", 10, 0600), why, sizeof(why)), 0);
    assert_int_equal(t.n, 10);
}

static void
test_load_refuses_and_leaves_the_token_alone(void **state)
{
    (void)state;
    char big[TOKEN_MAX + 2];
    memset(big, 'k', sizeof(big));
    static const struct {
        const char *name, *data;
        size_t n;
        mode_t mode;
        const char *says;
    } bad[] = {
        { "group", "abc\n", 4, 0640, "mode 640" },
        { "world", "abc\n", 4, 0604, "mode 604" },
        { "wide", "abc\n", 4, 0644, "chmod 600" },
        { "empty", "", 0, 0600, "empty" },
        { "newline", "\n", 1, 0600, "empty" },
        { "twolines", "ab\ncd\n", 6, 0600, "one line" },
        { "nul", "ab\0cd", 5, 0600, "NUL" },
    };
    char why[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct token t = { 3, "old" };
        why[0] = '\0';
        assert_int_equal(token_load(&t, file(bad[i].name, bad[i].data, bad[i].n, bad[i].mode),
                                    why, sizeof(why)),
                         -1);
        if (strstr(why, bad[i].says) == NULL) {
            fail_msg("%s: message \"%s\" does not say \"%s\"", bad[i].name, why, bad[i].says);
        }
        assert_int_equal(t.n, 3);
        /* The message names the file, never what it holds. */
        if (bad[i].n > 1 && strstr(why, "abc") != NULL) {
            fail_msg("%s: message \"%s\" shows the contents", bad[i].name, why);
        }
    }
    struct token t = { 0 };
    assert_int_equal(token_load(&t, file("big", big, TOKEN_MAX + 1, 0600), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "more than"));
    assert_int_equal(token_load(&t, file("max", big, TOKEN_MAX, 0600), why, sizeof(why)), 0);
    assert_int_equal(t.n, TOKEN_MAX);
    /* Not a regular file, or not there at all. */
    assert_int_equal(token_load(&t, dir, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "not a regular file"));
    char fifo[96];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(token_load(&t, fifo, why, sizeof(why)), -1); /* and does not hang */
    assert_non_null(strstr(why, "not a regular file"));
    char none[96];
    snprintf(none, sizeof(none), "%s/none", dir);
    assert_int_equal(token_load(&t, none, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "cannot open"));
}

static void
test_check_needs_every_byte_and_the_length(void **state)
{
    (void)state;
    struct token none = { 0 }, t = { 6, "secret" };
    assert_true(token_check(&none, NULL, 0));
    assert_true(token_check(&none, "anything", 8));
    assert_true(token_check(&t, "secret", 6));
    assert_false(token_check(&t, NULL, 0));
    assert_false(token_check(&t, "", 0));
    assert_false(token_check(&t, "secre", 5));
    assert_false(token_check(&t, "secretX", 7));
    assert_false(token_check(&t, "Secret", 6));
    assert_false(token_check(&t, "secreT", 6));
    /* A longer guess that starts with the token is not it either. */
    assert_false(token_check(&t, "secret\0", 7));
}

/* Encodes a request of nfields keys (op plus "n" repeated as distinct names), attaches t, and
 * decodes it: the token must come out, and every other key with it. */
static void
attach_roundtrip(uint32_t nfields, const struct token *t)
{
    nng_msg *m;
    msgpack_packer pk;
    assert_int_equal(nng_msg_alloc(&m, 0), 0);
    msgpack_packer_init(&pk, m, wire_pack_into_msg);
    msgpack_pack_map(&pk, nfields);
    wire_pack_key(&pk, WK_OP);
    wire_pack_cstr(&pk, "ping");
    for (uint32_t i = 1; i < nfields; i++) {
        char k[16];
        snprintf(k, sizeof(k), "x%u", i); /* unknown keys: ignored by the decoder */
        wire_pack_cstr(&pk, k);
        msgpack_pack_uint32(&pk, i);
    }
    assert_int_equal(token_attach(m, t), 0);
    assert_int_equal(wire_check(nng_msg_body(m), nng_msg_len(m)), 0);
    struct wire_msg w;
    wire_msg_init(&w);
    assert_int_equal(wire_decode(&w, nng_msg_body(m), nng_msg_len(m), NULL, 0), 0);
    assert_true(WIRE_HAS(&w, WK_OP));
    assert_true(WIRE_HAS(&w, WK_TOKEN));
    assert_int_equal(w.v[WK_TOKEN].s.n, t->n);
    assert_memory_equal(w.v[WK_TOKEN].s.p, t->s, t->n);
    /* The map's count grew by exactly one: the decoder consumed every byte. */
    assert_one_map(m, nfields + 1);
    wire_msg_fini(&w);
    nng_msg_free(m);
}

static void
test_attach_grows_the_map_of_any_size(void **state)
{
    (void)state;
    struct token small = { 5, "tiny!" }, mid = { 0 }, big = { 0 };
    mid.n = 200;
    memset(mid.s, 'm', mid.n);
    big.n = TOKEN_MAX;
    memset(big.s, 'b', big.n);
    /* 14 -> 15 stays a fixmap; 15 -> 16 becomes map16; 65535 -> 65536 becomes map32. */
    const uint32_t sizes[] = { 1, 2, 14, 15, 16, 300, 65535, 65536 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        attach_roundtrip(sizes[i], &small);
        attach_roundtrip(sizes[i], &mid);
        attach_roundtrip(sizes[i], &big);
    }
}

/* A map whose header is wider than it needs (map16 or map32 for one entry) keeps its width:
 * no byte of the old header may stay behind as junk. */
static void
test_attach_keeps_a_wide_header(void **state)
{
    (void)state;
    struct token t = { 5, "tiny!" };
    static const unsigned char m16[] = { 0xde, 0x00, 0x01, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g' };
    static const unsigned char m32[] = { 0xdf, 0x00, 0x00, 0x00, 0x01, 0xa2, 'o', 'p',
                                         0xa4, 'p', 'i', 'n', 'g' };
    const unsigned char *in[] = { m16, m32 };
    const size_t len[] = { sizeof(m16), sizeof(m32) };
    for (int i = 0; i < 2; i++) {
        nng_msg *m;
        assert_int_equal(nng_msg_alloc(&m, 0), 0);
        assert_int_equal(nng_msg_append(m, in[i], len[i]), 0);
        assert_int_equal(token_attach(m, &t), 0);
        assert_one_map(m, 2);
        assert_int_equal(nng_msg_len(m), len[i] + 6 + 1 + t.n);
        struct wire_msg w;
        wire_msg_init(&w);
        assert_int_equal(wire_decode(&w, nng_msg_body(m), nng_msg_len(m), NULL, 0), 0);
        assert_true(WIRE_HAS(&w, WK_TOKEN));
        assert_memory_equal(w.v[WK_TOKEN].s.p, t.s, t.n);
        wire_msg_fini(&w);
        nng_msg_free(m);
    }
}

static void
test_attach_without_token_or_map(void **state)
{
    (void)state;
    struct token none = { 0 }, t = { 3, "abc" };
    nng_msg *m;
    assert_int_equal(nng_msg_alloc(&m, 0), 0);
    assert_int_equal(nng_msg_append(m, "\x81\xa2op\xa4ping", 8), 0);
    assert_int_equal(token_attach(m, NULL), 0);
    assert_int_equal(token_attach(m, &none), 0);
    assert_int_equal(nng_msg_len(m), 8); /* nothing attached */
    nng_msg_clear(m);
    assert_int_equal(nng_msg_append(m, "\x92\x01\x02", 3), 0); /* an array, not a map */
    assert_int_equal(token_attach(m, &t), -1);
    assert_int_equal(nng_msg_len(m), 3);
    nng_msg_clear(m);
    assert_int_equal(token_attach(m, &t), -1); /* empty */
    assert_int_equal(nng_msg_len(m), 0);
    nng_msg_free(m);
}

static int
push_req(struct broker *b, const char *token, struct wire_msg *rep, nng_msg **keep)
{
    struct wire_msg req;
    struct sl_str p = S("payload");
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, "bob");
    wire_set_strs(&req, WK_PAYLOADS, &p, 1);
    if (token != NULL) {
        wire_set_cstr(&req, WK_TOKEN, token);
    }
    return request(b, &req, rep, keep);
}

static void
test_broker_refuses_requests_without_the_token(void **state)
{
    (void)state;
    struct broker_cfg cfg;
    broker_cfg_default(&cfg);
    struct broker *b = fake_broker(&cfg, 1000 * MS);
    b->token = (struct token){ 6, "sesame" };
    struct wire_msg rep;
    nng_msg *keep;
    const char *wrong[] = { NULL, "", "sesam", "sesame!", "SESAME" };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        assert_int_equal(push_req(b, wrong[i], &rep, &keep), SL_EUNAUTH);
        assert_true(sl_str_eq(rep.v[WK_ERR].s, "unauthorized"));
        /* The reply never repeats what the request carried. */
        if (wrong[i] != NULL && wrong[i][0] != '\0') {
            assert_null(memmem(nng_msg_body(keep), nng_msg_len(keep), wrong[i],
                               strlen(wrong[i])));
        }
        wire_msg_fini(&rep);
        nng_msg_free(keep);
    }
    assert_int_equal(b->jobs, 0);
    assert_int_equal(b->next_id, 1);
    assert_null(broker_group_find(b, S("bob")));
    assert_int_equal(b->opc.unauthorized, 5);
    /* An unknown op without the token is unauthorized too: nothing is told about ops. */
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "no.such.op");
    assert_int_equal(request(b, &req, &rep, &keep), SL_EUNAUTH);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    assert_int_equal(push_req(b, "sesame", &rep, &keep), 0);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    assert_int_equal(b->jobs, 1);
    broker_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_strips_one_trailing_newline),
        cmocka_unit_test(test_load_refuses_and_leaves_the_token_alone),
        cmocka_unit_test(test_check_needs_every_byte_and_the_length),
        cmocka_unit_test(test_attach_grows_the_map_of_any_size),
        cmocka_unit_test(test_attach_keeps_a_wide_header),
        cmocka_unit_test(test_attach_without_token_or_map),
        cmocka_unit_test(test_broker_refuses_requests_without_the_token),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
