/* broker/jzip: the stream's message encoding. Journal-like runs come back byte for byte and
 * smaller; short and incompressible runs are left as they are; what a reader cannot trust
 * (an unknown encoding, a damaged, cut or padded frame, one that claims too much) is refused
 * and changes nothing the caller holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "jzip.h"

#include <stdlib.h>
#include <string.h>

/* Records much like the journal's: a frame, an id counting up, a group, a payload. */
static size_t
records(uint8_t *p, size_t cap)
{
    size_t n = 0;
    for (uint64_t id = 1; n + 40 <= cap; id++) {
        memcpy(p + n, "\x24\x00\x00\x00\x0b", 5);
        memcpy(p + n + 5, &id, sizeof(id));
        memcpy(p + n + 13, "bob\x07" "default", 11);
        memcpy(p + n + 24, "payload-", 8);
        memcpy(p + n + 32, &id, sizeof(id));
        n += 40;
    }
    return n;
}

static uint64_t rng = 88172645463325252ULL;

static void
noise(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        p[i] = (uint8_t)rng;
    }
}

static void
test_records_round_trip_smaller(void **state)
{
    (void)state;
    static uint8_t in[64 << 10];
    size_t n = records(in, sizeof(in));
    struct jzip a = { 0 }, b = { 0 };
    size_t z = jzip_pack(&a, in, n);
    assert_true(z > 0);
    assert_true(z < n / 4);
    const uint8_t *out;
    size_t outn;
    assert_int_equal(jzip_unpack(&b, JZIP_ENC, a.out, z, &out, &outn), 0);
    assert_int_equal(outn, n);
    assert_memory_equal(out, in, n);
    /* The codec is used again and again, as a writer's is. */
    memset(in, 'x', 1000);
    z = jzip_pack(&a, in, n);
    assert_int_equal(jzip_unpack(&b, JZIP_ENC, a.out, z, &out, &outn), 0);
    assert_memory_equal(out, in, n);
    jzip_free(&a);
    jzip_free(&b);
}

static void
test_short_and_incompressible_runs_go_as_they_are(void **state)
{
    (void)state;
    static uint8_t in[32 << 10];
    struct jzip a = { 0 };
    memset(in, 'a', sizeof(in));
    assert_int_equal(jzip_pack(&a, in, JZIP_MIN - 1), 0);
    assert_true(jzip_pack(&a, in, JZIP_MIN) > 0);
    noise(in, sizeof(in));
    assert_int_equal(jzip_pack(&a, in, sizeof(in)), 0);
    /* Without a header the bytes are the message's own. */
    const uint8_t *out;
    size_t outn;
    assert_int_equal(jzip_unpack(&a, NULL, in, 100, &out, &outn), 0);
    assert_ptr_equal(out, in);
    assert_int_equal(outn, 100);
    jzip_free(&a);
}

static void
test_what_cannot_be_trusted_is_refused(void **state)
{
    (void)state;
    static uint8_t in[16 << 10], bad[16 << 10];
    size_t n = records(in, sizeof(in));
    struct jzip a = { 0 }, b = { 0 };
    size_t z = jzip_pack(&a, in, n);
    assert_true(z > 16);
    const uint8_t *out = NULL;
    size_t outn = 0;
    assert_int_equal(jzip_unpack(&b, "lz4", a.out, z, &out, &outn), SL_EBADREQ);
    assert_int_equal(jzip_unpack(&b, "", a.out, z, &out, &outn), SL_EBADREQ);
    /* Cut short, or with bytes after the frame. */
    assert_int_equal(jzip_unpack(&b, JZIP_ENC, a.out, z - 1, &out, &outn), SL_EBADREQ);
    memcpy(bad, a.out, z);
    bad[z] = 0;
    assert_int_equal(jzip_unpack(&b, JZIP_ENC, bad, z + 1, &out, &outn), SL_EBADREQ);
    /* Not a frame at all; empty. */
    noise(bad, 64);
    assert_int_equal(jzip_unpack(&b, JZIP_ENC, bad, 64, &out, &outn), SL_EBADREQ);
    assert_int_equal(jzip_unpack(&b, JZIP_ENC, bad, 0, &out, &outn), SL_EBADREQ);
    /* Damage anywhere past the header is found (the frame carries a checksum) or
     * changes the length, and the reader says so rather than handing back other bytes. */
    for (size_t at = 6; at < z; at += 7) {
        memcpy(bad, a.out, z);
        bad[at] ^= 0x5a;
        int rv = jzip_unpack(&b, JZIP_ENC, bad, z, &out, &outn);
        if (rv == 0) {
            assert_int_equal(outn, n);
            assert_memory_equal(out, in, n);
        } else {
            assert_int_equal(rv, SL_EBADREQ);
        }
    }
    jzip_free(&a);
    jzip_free(&b);
}

static void
test_a_frame_claiming_too_much_is_refused(void **state)
{
    (void)state;
    /* Many zeros compress to a tiny frame that says how large it is. */
    size_t n = JZIP_MAX + 1;
    uint8_t *in = calloc(1, n);
    assert_non_null(in);
    struct jzip a = { 0 }, b = { 0 };
    assert_int_equal(jzip_pack(&a, in, n), 0); /* never written */
    free(in);
    /* A frame header hand-made to claim JZIP_MAX + 1 bytes: magic, a descriptor with an
     * 8-byte content size and single segment, the size. */
    uint8_t fr[32] = { 0x28, 0xb5, 0x2f, 0xfd, 0xe0 };
    uint64_t big = JZIP_MAX + 1;
    memcpy(fr + 5, &big, sizeof(big));
    const uint8_t *out;
    size_t outn;
    assert_int_equal(jzip_unpack(&b, JZIP_ENC, fr, sizeof(fr), &out, &outn), SL_EBADREQ);
    assert_null(b.out); /* nothing was allocated for it */
    jzip_free(&a);
    jzip_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_round_trip_smaller),
        cmocka_unit_test(test_short_and_incompressible_runs_go_as_they_are),
        cmocka_unit_test(test_what_cannot_be_trusted_is_refused),
        cmocka_unit_test(test_a_frame_claiming_too_much_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
