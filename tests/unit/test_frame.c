/* worker/frame: the pipe handler's frames. The job frame as a handler sees it, the reader over
 * a real pipe (whole, in pieces, back to back, truncated, oversize) and reply decoding (good,
 * garbage, wrong types, trailing bytes, caps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "frame.h"
#include "log.h"
#include "mpr.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct wapi_job
job_of(uint64_t id, const char *payload)
{
    struct wapi_job j;
    memset(&j, 0, sizeof(j));
    j.id = id;
    j.group = SL_STR_LIT("bob");
    j.queue = SL_STR_LIT("default");
    j.payload = payload;
    j.len = (uint32_t)strlen(payload);
    j.attempts = 2;
    return j;
}

static void
nonblocking_pipe(int fds[2])
{
    assert_int_equal(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
}

static void
write_all(int fd, const void *p, size_t n)
{
    assert_int_equal(write(fd, p, n), (ssize_t)n);
}

/* Packs a reply body from a msgpack map built by the caller. */
struct body {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static void
body_init(struct body *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void
key(struct body *b, const char *k)
{
    msgpack_pack_str(&b->pk, strlen(k));
    msgpack_pack_str_body(&b->pk, k, strlen(k));
}

/* Decodes b's body from a copy that lives until the next call (the reply's views point into
 * it), and frees b. */
static int
decode(struct body *b, struct frame_reply *r)
{
    static char keep[8192];
    const char *why = NULL;
    assert_true(b->sb.size <= sizeof(keep));
    memcpy(keep, b->sb.data, b->sb.size);
    int rv = frame_decode_reply(keep, b->sb.size, r, &why);
    if (rv != 0) {
        assert_non_null(why);
    }
    msgpack_sbuffer_destroy(&b->sb);
    return rv;
}

/* --- the job frame ------------------------------------------------------------------------ */

static void
test_job_frame_is_length_then_the_documented_map(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    struct wapi_job j = job_of(42, "hello");
    msgpack_sbuffer_init(&sb);
    assert_int_equal(frame_encode_job(&sb, &j), 0);

    const uint8_t *h = (const uint8_t *)sb.data;
    uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    assert_int_equal(len, sb.size - FRAME_HDR_BYTES);
    assert_int_equal(wire_check(sb.data + 4, len), 0);

    struct mpr c;
    uint32_t n;
    uint64_t u;
    struct sl_str k, s;
    mpr_init(&c, sb.data + 4, len);
    assert_true(mpr_map(&c, &n));
    assert_int_equal(n, 5);
    assert_true(mpr_str(&c, &k) && sl_str_eq(k, "id"));
    assert_true(mpr_u64(&c, &u));
    assert_int_equal(u, 42);
    assert_true(mpr_str(&c, &k) && sl_str_eq(k, "group"));
    assert_true(mpr_str(&c, &s) && sl_str_eq(s, "bob"));
    assert_true(mpr_str(&c, &k) && sl_str_eq(k, "queue"));
    assert_true(mpr_str(&c, &s) && sl_str_eq(s, "default"));
    assert_true(mpr_str(&c, &k) && sl_str_eq(k, "attempt"));
    assert_true(mpr_u64(&c, &u));
    assert_int_equal(u, 2);
    assert_true(mpr_str(&c, &k) && sl_str_eq(k, "payload"));
    assert_int_equal(*c.p, 0xc4); /* bin, never str: payloads are bytes */
    assert_true(mpr_blob(&c, &s) && sl_str_eq(s, "hello"));
    assert_int_equal(mpr_left(&c), 0);

    /* The buffer is reused: a second, smaller job replaces the first entirely. */
    j = job_of(7, "");
    assert_int_equal(frame_encode_job(&sb, &j), 0);
    assert_int_equal(wire_check(sb.data + 4, sb.size - 4), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* --- the reader --------------------------------------------------------------------------- */

static void
frame_bytes(uint8_t *out, const void *body, uint32_t n)
{
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    memcpy(out + 4, body, n);
}

static void
test_reader_takes_a_frame_in_pieces(void **state)
{
    (void)state;
    int fds[2];
    uint8_t buf[64], f[16];
    struct frame_reader r;
    const char *why = NULL;
    bool done;

    nonblocking_pipe(fds);
    frame_reader_init(&r, buf, sizeof(buf));
    frame_bytes(f, "abcdef", 6);

    assert_int_equal(frame_read(&r, fds[0], &done, &why), 0); /* nothing yet */
    assert_false(done);
    write_all(fds[1], f, 2); /* half a header */
    assert_int_equal(frame_read(&r, fds[0], &done, &why), 0);
    assert_false(done);
    write_all(fds[1], f + 2, 5); /* the rest of it and 3 body bytes */
    assert_int_equal(frame_read(&r, fds[0], &done, &why), 0);
    assert_false(done);
    write_all(fds[1], f + 7, 3);
    assert_int_equal(frame_read(&r, fds[0], &done, &why), 0);
    assert_true(done);
    assert_int_equal(r.len, 6);
    assert_memory_equal(buf, "abcdef", 6);
    close(fds[0]);
    close(fds[1]);
}

static void
test_reader_takes_frames_back_to_back_and_empty_ones(void **state)
{
    (void)state;
    int fds[2];
    uint8_t buf[64], f[32];
    struct frame_reader r;
    const char *why = NULL;
    bool done;

    nonblocking_pipe(fds);
    frame_reader_init(&r, buf, sizeof(buf));
    frame_bytes(f, "one", 3);
    frame_bytes(f + 7, "", 0);
    frame_bytes(f + 11, "three", 5);
    write_all(fds[1], f, 20);
    assert_int_equal(frame_read(&r, fds[0], &done, &why), 0);
    assert_true(done);
    assert_int_equal(r.len, 3);
    assert_memory_equal(buf, "one", 3);
    assert_int_equal(frame_read(&r, fds[0], &done, &why), 0);
    assert_true(done);
    assert_int_equal(r.len, 0);
    assert_int_equal(frame_read(&r, fds[0], &done, &why), 0);
    assert_true(done);
    assert_int_equal(r.len, 5);
    assert_memory_equal(buf, "three", 5);
    close(fds[1]);
    assert_int_equal(frame_read(&r, fds[0], &done, &why), SL_EIO); /* EOF between frames */
    assert_string_equal(why, "end of file");
    close(fds[0]);
}

static void
truncated_at(size_t cut)
{
    int fds[2];
    uint8_t buf[64], f[16];
    struct frame_reader r;
    const char *why = NULL;
    bool done;

    nonblocking_pipe(fds);
    frame_reader_init(&r, buf, sizeof(buf));
    frame_bytes(f, "abcdef", 6);
    write_all(fds[1], f, cut);
    close(fds[1]);
    assert_int_equal(frame_read(&r, fds[0], &done, &why), SL_EIO);
    assert_false(done);
    assert_string_equal(why, "end of file inside a frame");
    close(fds[0]);
}

static void
test_reader_fails_on_a_truncated_frame(void **state)
{
    (void)state;
    truncated_at(1); /* inside the header */
    truncated_at(4); /* header only */
    truncated_at(9); /* inside the body */
}

static void
test_reader_refuses_a_frame_over_its_limit(void **state)
{
    (void)state;
    int fds[2];
    uint8_t buf[16], f[4] = { 0, 0, 0, 17 };
    struct frame_reader r;
    const char *why = NULL;
    bool done;

    nonblocking_pipe(fds);
    frame_reader_init(&r, buf, sizeof(buf));
    write_all(fds[1], f, 4);
    assert_int_equal(frame_read(&r, fds[0], &done, &why), SL_ETOOLARGE);
    assert_false(done);

    /* A header of 4 GiB - 1 is refused the same way, before any allocation. */
    frame_reader_reset(&r);
    memset(f, 0xff, 4);
    write_all(fds[1], f, 4);
    assert_int_equal(frame_read(&r, fds[0], &done, &why), SL_ETOOLARGE);

    /* Exactly the limit is fine. */
    frame_reader_reset(&r);
    uint8_t ok[4 + 16];
    memset(ok, 'x', sizeof(ok));
    ok[0] = ok[1] = ok[2] = 0;
    ok[3] = 16;
    write_all(fds[1], ok, sizeof(ok));
    assert_int_equal(frame_read(&r, fds[0], &done, &why), 0);
    assert_true(done);
    assert_int_equal(r.len, 16);
    close(fds[0]);
    close(fds[1]);
}

/* --- replies ------------------------------------------------------------------------------ */

static void
test_reply_ok_and_failure_decode(void **state)
{
    (void)state;
    struct body b;
    struct frame_reply r;

    body_init(&b);
    msgpack_pack_map(&b.pk, 2);
    key(&b, "id");
    msgpack_pack_uint64(&b.pk, 9);
    key(&b, "ok");
    msgpack_pack_true(&b.pk);
    assert_int_equal(decode(&b, &r), 0);
    assert_int_equal(r.id, 9);
    assert_true(r.ok);
    assert_int_equal(r.delay_ms, 0);
    assert_int_equal(r.msg.n, 0);

    body_init(&b);
    msgpack_pack_map(&b.pk, 5);
    key(&b, "ok");
    msgpack_pack_false(&b.pk);
    key(&b, "future");           /* unknown keys are ignored, whatever their value */
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_nil(&b.pk);
    key(&b, "msg");
    msgpack_pack_str(&b.pk, 4);
    msgpack_pack_str_body(&b.pk, "nope", 4);
    key(&b, "delay_ms");
    msgpack_pack_uint64(&b.pk, 250);
    key(&b, "id");
    msgpack_pack_int64(&b.pk, 9); /* a non-negative signed integer reads as unsigned */
    assert_int_equal(decode(&b, &r), 0);
    assert_int_equal(r.id, 9);
    assert_false(r.ok);
    assert_int_equal(r.delay_ms, 250);
    assert_true(sl_str_eq(r.msg, "nope"));
}

static void
test_reply_delay_and_msg_are_capped(void **state)
{
    (void)state;
    struct body b;
    struct frame_reply r;
    static char big[FRAME_MSG_MAX + 100];
    memset(big, 'm', sizeof(big));

    body_init(&b);
    msgpack_pack_map(&b.pk, 4);
    key(&b, "id");
    msgpack_pack_uint64(&b.pk, 1);
    key(&b, "ok");
    msgpack_pack_false(&b.pk);
    key(&b, "delay_ms");
    msgpack_pack_uint64(&b.pk, UINT64_MAX);
    key(&b, "msg");
    msgpack_pack_str(&b.pk, sizeof(big));
    msgpack_pack_str_body(&b.pk, big, sizeof(big));
    assert_int_equal(decode(&b, &r), 0);
    assert_int_equal(r.delay_ms, FRAME_DELAY_MAX_MS);
    assert_int_equal(r.msg.n, FRAME_MSG_MAX);
}

static void
test_reply_without_id_or_ok_is_bad(void **state)
{
    (void)state;
    struct body b;
    struct frame_reply r;

    body_init(&b);
    msgpack_pack_map(&b.pk, 1);
    key(&b, "id");
    msgpack_pack_uint64(&b.pk, 1);
    assert_int_equal(decode(&b, &r), SL_EBADREQ);

    body_init(&b);
    msgpack_pack_map(&b.pk, 1);
    key(&b, "ok");
    msgpack_pack_true(&b.pk);
    assert_int_equal(decode(&b, &r), SL_EBADREQ);
}

static void
test_reply_with_wrong_types_is_bad(void **state)
{
    (void)state;
    struct body b;
    struct frame_reply r;

    /* "ok" as the integer 1, not a boolean */
    body_init(&b);
    msgpack_pack_map(&b.pk, 2);
    key(&b, "id");
    msgpack_pack_uint64(&b.pk, 1);
    key(&b, "ok");
    msgpack_pack_uint64(&b.pk, 1);
    assert_int_equal(decode(&b, &r), SL_EBADREQ);

    /* a negative id */
    body_init(&b);
    msgpack_pack_map(&b.pk, 2);
    key(&b, "id");
    msgpack_pack_int64(&b.pk, -1);
    key(&b, "ok");
    msgpack_pack_true(&b.pk);
    assert_int_equal(decode(&b, &r), SL_EBADREQ);

    /* msg as bin */
    body_init(&b);
    msgpack_pack_map(&b.pk, 3);
    key(&b, "id");
    msgpack_pack_uint64(&b.pk, 1);
    key(&b, "ok");
    msgpack_pack_true(&b.pk);
    key(&b, "msg");
    msgpack_pack_bin(&b.pk, 1);
    msgpack_pack_bin_body(&b.pk, "x", 1);
    assert_int_equal(decode(&b, &r), SL_EBADREQ);

    /* not a map */
    body_init(&b);
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_uint64(&b.pk, 1);
    msgpack_pack_true(&b.pk);
    assert_int_equal(decode(&b, &r), SL_EBADREQ);
}

static void
test_reply_garbage_is_bad(void **state)
{
    (void)state;
    struct frame_reply r;
    const char *why = NULL;
    static const struct {
        const char *bytes;
        size_t n;
    } cases[] = {
        { "", 0 },                                 /* empty */
        { "\xc1", 1 },                             /* a byte msgpack never uses */
        { "\x82\xa2id\x01", 5 },                   /* truncated map */
        { "\x81\xa2id\x01\x00", 6 },               /* trailing byte after a whole map */
        { "\xdf\x07\xff\x07\xff", 5 },             /* a map announcing 2^27 pairs */
        { "\x82\xa2id\x01\xa2ok\xc3\xc3", 10 },    /* trailing bytes */
        { "\x82\xa2id\xcf\x00\x00\x00", 8 },       /* truncated uint64 */
        { "hello world", 11 },                     /* text */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        assert_int_equal(frame_decode_reply(cases[i].bytes, cases[i].n, &r, &why), SL_EBADREQ);
        assert_non_null(why);
    }
}

/* --- the msgpack reader under it ------------------------------------------------------------ */

static void
test_mpr_skips_nested_values_and_refuses_truncation(void **state)
{
    (void)state;
    struct body b;
    struct mpr c;
    uint64_t u;

    body_init(&b);
    msgpack_pack_array(&b.pk, 3);
    msgpack_pack_map(&b.pk, 1);
    key(&b, "deep");
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_double(&b.pk, 1.5);
    msgpack_pack_bin(&b.pk, 300);
    for (int i = 0; i < 300; i++) {
        msgpack_pack_bin_body(&b.pk, "z", 1);
    }
    msgpack_pack_str(&b.pk, 0);
    msgpack_pack_uint64(&b.pk, 70000);
    msgpack_pack_uint8(&b.pk, 5); /* after the array */

    mpr_init(&c, b.sb.data, b.sb.size);
    assert_true(mpr_skip(&c));
    assert_true(mpr_u64(&c, &u));
    assert_int_equal(u, 5);
    assert_int_equal(mpr_left(&c), 0);

    /* Cut anywhere inside, the skip fails and leaves the cursor where it was. */
    size_t whole = b.sb.size - 1;
    for (size_t cut = 0; cut < whole; cut++) {
        mpr_init(&c, b.sb.data, cut);
        assert_false(mpr_skip(&c));
        assert_ptr_equal(c.p, (const uint8_t *)b.sb.data);
    }
    msgpack_sbuffer_destroy(&b.sb);
}

static void
test_mpr_typed_reads_leave_the_cursor_on_mismatch(void **state)
{
    (void)state;
    struct mpr c;
    uint64_t u;
    bool bv;
    struct sl_str s;
    uint32_t n;

    mpr_init(&c, "\xa3" "abc", 4);
    assert_false(mpr_u64(&c, &u));
    assert_false(mpr_bool(&c, &bv));
    assert_false(mpr_map(&c, &n));
    assert_true(mpr_str(&c, &s) && sl_str_eq(s, "abc"));

    mpr_init(&c, "\xc4\x02hi", 4);
    assert_false(mpr_str(&c, &s)); /* bin is not a str */
    assert_true(mpr_blob(&c, &s) && sl_str_eq(s, "hi"));

    mpr_init(&c, "\xa5" "ab", 3); /* a str longer than what remains */
    assert_false(mpr_str(&c, &s));
    assert_int_equal(mpr_left(&c), 3);

    mpr_init(&c, "\xd0\xff", 2); /* int8 -1 */
    assert_false(mpr_u64(&c, &u));
    mpr_init(&c, "\xd1\x00\x05", 3); /* int16 5 */
    assert_true(mpr_u64(&c, &u));
    assert_int_equal(u, 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_frame_is_length_then_the_documented_map),
        cmocka_unit_test(test_reader_takes_a_frame_in_pieces),
        cmocka_unit_test(test_reader_takes_frames_back_to_back_and_empty_ones),
        cmocka_unit_test(test_reader_fails_on_a_truncated_frame),
        cmocka_unit_test(test_reader_refuses_a_frame_over_its_limit),
        cmocka_unit_test(test_reply_ok_and_failure_decode),
        cmocka_unit_test(test_reply_delay_and_msg_are_capped),
        cmocka_unit_test(test_reply_without_id_or_ok_is_bad),
        cmocka_unit_test(test_reply_with_wrong_types_is_bad),
        cmocka_unit_test(test_reply_garbage_is_bad),
        cmocka_unit_test(test_mpr_skips_nested_values_and_refuses_truncation),
        cmocka_unit_test(test_mpr_typed_reads_leave_the_cursor_on_mismatch),
    };
    log_level = LOG_OFF;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
