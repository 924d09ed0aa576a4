/* broker/jfile: the journal's segment format. CRC-32C against known vectors and a bitwise
 * reference, frames read back as written, header checks, and how damage reads: a torn tail,
 * garbage appended, a record damaged in the middle. Segment names, creation (through a
 * temporary name), truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jfile.h"
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NREC 5

/* A private directory per test (*state), removed with everything in it afterwards. */
static int
setup(void **state)
{
    char *dir = malloc(256);
    if (dir == NULL || tmpdir_make(dir, 256, "jfile") != 0) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int
teardown(void **state)
{
    char *dir = *state;
    int rv = tmpdir_remove(dir);
    free(dir);
    return rv;
}

/* CRC-32C one bit at a time, straight from the definition. */
static uint32_t
crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc & 1u) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
    }
    return ~crc;
}

static void
write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static void
append_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static off_t
file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void
header(uint8_t hdr[JF_HEADER_SIZE], uint64_t seq)
{
    memcpy(hdr, "SLUICEJ1", 8);
    for (int i = 0; i < 8; i++) {
        hdr[8 + i] = (uint8_t)(seq >> (8 * i));
    }
}

/* The payloads the segments below hold: sizes around the 8-byte stride of the CRC, and one
 * large record; each filled with a pattern of its own. */
static const uint32_t rec_len[NREC] = { 1, 7, 8, 1000, 70000 };

static uint8_t *
payload(int i)
{
    uint8_t *p = malloc(rec_len[i]);
    assert_non_null(p);
    for (uint32_t k = 0; k < rec_len[i]; k++) {
        p[k] = (uint8_t)(k * 31u + (uint32_t)i * 7u + 1u);
    }
    return p;
}

/* Writes segment seq into dir with plain write()s: the header, then records 0..nrec-1.
 * path gets its name, off[i] where record i's frame starts and off[nrec] the file's end. */
static void
write_segment(const char *dir, uint64_t seq, int nrec, char *path, size_t cap, size_t *off)
{
    uint8_t hdr[JF_HEADER_SIZE], fh[JF_FRAME_SIZE];
    assert_int_equal(jf_path(path, cap, dir, seq), 0);
    header(hdr, seq);
    write_file(path, hdr, sizeof(hdr));
    off[0] = JF_HEADER_SIZE;
    for (int i = 0; i < nrec; i++) {
        uint8_t *p = payload(i);
        jf_frame(fh, p, rec_len[i]);
        append_file(path, fh, sizeof(fh));
        append_file(path, p, rec_len[i]);
        free(p);
        off[i + 1] = off[i] + JF_FRAME_SIZE + rec_len[i];
    }
    assert_int_equal(file_size(path), (off_t)off[nrec]);
}

/* Reads records 0..nrec-1 from r, each with the expected payload and in order. */
static void
expect_records(struct jf_reader *r, int nrec)
{
    const uint8_t *p;
    uint32_t n;
    for (int i = 0; i < nrec; i++) {
        uint8_t *want = payload(i);
        assert_int_equal(jf_next(r, &p, &n), JF_RECORD);
        assert_int_equal(n, rec_len[i]);
        assert_memory_equal(p, want, n);
        free(want);
    }
}

static void
flip_byte(const char *path, size_t at)
{
    uint8_t b;
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, (off_t)at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
    assert_int_equal(close(fd), 0);
}

/* --- CRC-32C and frames ---------------------------------------------------------------------- */

static void
test_crc32c_known_vectors(void **state)
{
    uint8_t buf[32];
    (void)state;
    assert_int_equal(jf_crc32c(0, "123456789", 9), 0xE3069283u);
    /* RFC 3720 (iSCSI) B.4. */
    memset(buf, 0, sizeof(buf));
    assert_int_equal(jf_crc32c(0, buf, sizeof(buf)), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(jf_crc32c(0, buf, sizeof(buf)), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) {
        buf[i] = (uint8_t)i;
    }
    assert_int_equal(jf_crc32c(0, buf, sizeof(buf)), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) {
        buf[i] = (uint8_t)(31 - i);
    }
    assert_int_equal(jf_crc32c(0, buf, sizeof(buf)), 0x113FDB5Cu);
    /* No bytes leave the running value as it was. */
    assert_int_equal(jf_crc32c(0, NULL, 0), 0);
    assert_int_equal(jf_crc32c(0x12345678u, buf, 0), 0x12345678u);
}

static void
test_crc32c_matches_bitwise_at_any_length_alignment_and_split(void **state)
{
    static uint8_t buf[1100];
    unsigned seed = 7;
    (void)state;
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)rand_r(&seed);
    }
    for (size_t start = 0; start < 8; start++) {
        for (size_t n = 0; n <= 70; n++) {
            assert_int_equal(jf_crc32c(0, buf + start, n), crc_ref(0, buf + start, n));
        }
        size_t n = sizeof(buf) - start;
        assert_int_equal(jf_crc32c(0, buf + start, n), crc_ref(0, buf + start, n));
    }
    uint32_t whole = crc_ref(0, buf, sizeof(buf));
    for (size_t cut = 0; cut <= sizeof(buf); cut += 13) {
        uint32_t c = jf_crc32c(0, buf, cut);
        assert_int_equal(jf_crc32c(c, buf + cut, sizeof(buf) - cut), whole);
    }
}

static void
test_frame_is_length_then_crc_of_length_and_payload(void **state)
{
    uint8_t hdr[JF_FRAME_SIZE];
    const uint8_t whole[] = { 3, 0, 0, 0, 'a', 'b', 'c' };
    uint32_t crc = crc_ref(0, whole, sizeof(whole));
    (void)state;
    jf_frame(hdr, "abc", 3);
    const uint8_t want[JF_FRAME_SIZE] = {
        3, 0, 0, 0, (uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24),
    };
    assert_memory_equal(hdr, want, sizeof(want));

    /* The length is little-endian in all four bytes. */
    static uint8_t big[0x010203];
    jf_frame(hdr, big, sizeof(big));
    assert_int_equal(hdr[0], 0x03);
    assert_int_equal(hdr[1], 0x02);
    assert_int_equal(hdr[2], 0x01);
    assert_int_equal(hdr[3], 0x00);
}

/* --- names ----------------------------------------------------------------------------------- */

static void
test_path_is_sixteen_hex_digits_and_checks_room(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(jf_path(out, sizeof(out), "/d", 0x1f), 0);
    assert_string_equal(out, "/d/000000000000001f.seg");
    assert_int_equal(jf_path(out, sizeof(out), "/d", UINT64_MAX), 0);
    assert_string_equal(out, "/d/ffffffffffffffff.seg");
    /* "/d/" + 16 + ".seg" is 23 characters: 24 bytes fit, 23 do not. */
    assert_int_equal(jf_path(out, 24, "/d", 1), 0);
    assert_string_equal(out, "/d/0000000000000001.seg");
    assert_int_equal(jf_path(out, 23, "/d", 1), -1);
}

static void
test_list_sorts_segments_and_ignores_other_names(void **state)
{
    const char *dir = *state;
    static const char *const names[] = {
        "0000000000000010.seg", "0000000000000002.seg", "ffffffffffffffff.seg",
        "000000000000000a.seg",
        /* not segments */
        "000000000000000A.seg", "000000000000003.seg", "00000000000000003.seg",
        "000000000000000g.seg", "0000000000000004.SEG", "0000000000000005.segx",
        "0000000000000006.seg.tmp", "x0000000000000007.seg", "0000000000000008", "notes.txt",
        " 000000000000009.seg",
    };
    char path[512];
    uint64_t *seqs = NULL;
    size_t n = 99;

    assert_int_equal(jf_list(dir, &seqs, &n), 0);
    assert_int_equal(n, 0);
    assert_null(seqs);

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        write_file(path, "", 0);
    }
    assert_int_equal(jf_list(dir, &seqs, &n), 0);
    assert_int_equal(n, 4);
    assert_non_null(seqs);
    assert_int_equal(seqs[0], 0x2);
    assert_int_equal(seqs[1], 0xa);
    assert_int_equal(seqs[2], 0x10);
    assert_true(seqs[3] == UINT64_MAX);
    free(seqs);

    /* Many segments, written in descending order. */
    for (uint64_t s = 0x100; s < 0x100 + 300; s++) {
        assert_int_equal(jf_path(path, sizeof(path), dir, 0x100 + 0x100 + 299 - s), 0);
        write_file(path, "", 0);
    }
    assert_int_equal(jf_list(dir, &seqs, &n), 0);
    assert_int_equal(n, 304);
    for (size_t i = 1; i < n; i++) {
        assert_true(seqs[i - 1] < seqs[i]);
    }
    assert_int_equal(seqs[3], 0x100);
    assert_int_equal(seqs[302], 0x100 + 299);
    free(seqs);
}

static void
test_list_of_missing_dir_is_enoent(void **state)
{
    static uint64_t sentinel;
    char path[512];
    uint64_t *seqs = &sentinel;
    size_t n = 99;
    snprintf(path, sizeof(path), "%s/nope", (const char *)*state);
    assert_int_equal(jf_list(path, &seqs, &n), ENOENT);
    /* Nothing written on failure. */
    assert_ptr_equal(seqs, &sentinel);
    assert_int_equal(n, 99);
}

/* --- creating -------------------------------------------------------------------------------- */

static void
test_create_writes_header_and_leaves_fd_for_appending(void **state)
{
    const char *dir = *state;
    char path[512];
    uint8_t want[JF_HEADER_SIZE], got[64], fh[JF_FRAME_SIZE];
    struct jf_reader r;
    struct stat st;
    const uint8_t *p;
    uint32_t n;
    int fd = -1;

    assert_int_equal(jf_create(dir, 0x0102030405060708ull, &fd), 0);
    assert_true(fd >= 0);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), JF_HEADER_SIZE);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
    jf_frame(fh, "hello", 5);
    assert_int_equal(write(fd, fh, sizeof(fh)), (ssize_t)sizeof(fh));
    assert_int_equal(write(fd, "hello", 5), 5);
    assert_int_equal(close(fd), 0);

    assert_int_equal(jf_path(path, sizeof(path), dir, 0x0102030405060708ull), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, JF_HEADER_SIZE + JF_FRAME_SIZE + 5);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, got, sizeof(got)), JF_HEADER_SIZE + JF_FRAME_SIZE + 5);
    assert_int_equal(close(fd), 0);
    const uint8_t hdr[JF_HEADER_SIZE] = {
        'S', 'L', 'U', 'I', 'C', 'E', 'J', '1', 8, 7, 6, 5, 4, 3, 2, 1,
    };
    header(want, 0x0102030405060708ull);
    assert_memory_equal(want, hdr, sizeof(hdr));
    assert_memory_equal(got, hdr, sizeof(hdr));

    assert_int_equal(jf_open(&r, path, 0x0102030405060708ull, NULL, 0), 0);
    assert_int_equal(jf_next(&r, &p, &n), JF_RECORD);
    assert_int_equal(n, 5);
    assert_memory_equal(p, "hello", 5);
    assert_int_equal(jf_next(&r, &p, &n), JF_END);
    jf_close(&r);
}

static void
test_create_refuses_existing_segment(void **state)
{
    const char *dir = *state;
    char path[512];
    size_t off[NREC + 1];
    int fd = -1;

    write_segment(dir, 9, 2, path, sizeof(path), off);
    assert_int_equal(jf_create(dir, 9, &fd), EEXIST);
    assert_int_equal(fd, -1);
    assert_int_equal(file_size(path), (off_t)off[2]); /* left as it was */

    /* Any file of that name counts, segment or not. */
    assert_int_equal(jf_path(path, sizeof(path), dir, 10), 0);
    write_file(path, "", 0);
    assert_int_equal(jf_create(dir, 10, &fd), EEXIST);
    assert_int_equal(fd, -1);
    assert_int_equal(file_size(path), 0);
}

static void
test_create_in_missing_dir_is_enoent(void **state)
{
    char path[512];
    int fd = -1;
    snprintf(path, sizeof(path), "%s/nope", (const char *)*state);
    assert_int_equal(jf_create(path, 1, &fd), ENOENT);
    assert_int_equal(fd, -1);
}

/* A segment gets its name only once its header is on disk: it is written under a temporary
 * name first. Where that name cannot be created, no segment appears. */
static void
test_create_writes_under_a_temporary_name_first(void **state)
{
    const char *dir = *state;
    char temp[512], path[512];
    int fd = -1;

    snprintf(temp, sizeof(temp), "%s/0000000000000003.seg.tmp", dir);
    assert_int_equal(mkdir(temp, 0700), 0);
    assert_int_equal(jf_create(dir, 3, &fd), EISDIR);
    assert_int_equal(fd, -1);
    assert_int_equal(jf_path(path, sizeof(path), dir, 3), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(rmdir(temp), 0);

    /* A leftover temporary file (a crash in the middle) is replaced, and gone afterwards. */
    write_file(temp, "SLUIC", 5);
    assert_int_equal(jf_create(dir, 3, &fd), 0);
    assert_int_equal(close(fd), 0);
    assert_int_equal(access(temp, F_OK), -1);
    assert_int_equal(file_size(path), JF_HEADER_SIZE);
}

static void
test_remove_temps_removes_only_temporary_files(void **state)
{
    const char *dir = *state;
    char path[512];
    size_t off[NREC + 1], removed = 99;
    uint64_t *seqs = NULL;
    size_t n = 0;
    static const char *const keep[] = { "00000000000000zz.seg.tmp", "0000000000000001.seg.tm",
                                        "x.seg.tmp", "LOCK" };

    write_segment(dir, 1, 1, path, sizeof(path), off);
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, keep[i]);
        write_file(path, "", 0);
    }
    snprintf(path, sizeof(path), "%s/0000000000000002.seg.tmp", dir);
    write_file(path, "", 0);
    snprintf(path, sizeof(path), "%s/00000000000000ab.seg.tmp", dir);
    write_file(path, "SLUICEJ1", 8);

    assert_int_equal(jf_remove_temps(dir, &removed), 0);
    assert_int_equal(removed, 2);
    assert_int_equal(access(path, F_OK), -1);
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, keep[i]);
        assert_int_equal(access(path, F_OK), 0);
    }
    assert_int_equal(jf_list(dir, &seqs, &n), 0);
    assert_int_equal(n, 1);
    free(seqs);
    assert_int_equal(jf_remove_temps(dir, &removed), 0);
    assert_int_equal(removed, 0);
}

/* --- opening --------------------------------------------------------------------------------- */

static void
test_records_read_back_in_order(void **state)
{
    const char *dir = *state;
    char path[512];
    size_t off[NREC + 1];
    struct jf_reader r;
    const uint8_t *p;
    uint32_t n;

    write_segment(dir, 3, NREC, path, sizeof(path), off);
    assert_int_equal(jf_open(&r, path, 3, NULL, 0), 0);
    assert_int_equal(r.seq, 3);
    assert_int_equal(r.size, off[NREC]);
    assert_int_equal(r.off, JF_HEADER_SIZE);
    for (int i = 0; i < NREC; i++) {
        assert_int_equal(r.off, off[i]);
        uint8_t *want = payload(i);
        assert_int_equal(jf_next(&r, &p, &n), JF_RECORD);
        assert_int_equal(n, rec_len[i]);
        assert_ptr_equal(p, r.data + off[i] + JF_FRAME_SIZE);
        assert_memory_equal(p, want, n);
        free(want);
    }
    assert_int_equal(r.off, r.size);
    assert_int_equal(jf_next(&r, &p, &n), JF_END);
    assert_int_equal(jf_next(&r, &p, &n), JF_END);
    jf_close(&r);

    /* UINT64_MAX accepts any seq. */
    assert_int_equal(jf_open(&r, path, UINT64_MAX, NULL, 0), 0);
    assert_int_equal(r.seq, 3);
    expect_records(&r, NREC);
    assert_int_equal(jf_next(&r, &p, &n), JF_END);
    jf_close(&r);
}

static void
test_header_only_file_is_clean_end(void **state)
{
    const char *dir = *state;
    char path[512];
    size_t off[1];
    struct jf_reader r;
    const uint8_t *p = NULL;
    uint32_t n = 77;

    write_segment(dir, 0, 0, path, sizeof(path), off);
    assert_int_equal(jf_open(&r, path, 0, NULL, 0), 0);
    assert_int_equal(r.size, JF_HEADER_SIZE);
    assert_int_equal(jf_next(&r, &p, &n), JF_END);
    assert_null(p);
    assert_int_equal(n, 77);
    jf_close(&r);
}

static void
test_short_header_is_einval(void **state)
{
    const char *dir = *state;
    char path[512], why[512];
    uint8_t hdr[JF_HEADER_SIZE];
    struct jf_reader r;

    assert_int_equal(jf_path(path, sizeof(path), dir, 1), 0);
    header(hdr, 1);
    for (size_t len = 0; len < JF_HEADER_SIZE; len += 5) {
        write_file(path, hdr, len);
        why[0] = '\0';
        assert_int_equal(jf_open(&r, path, 1, why, sizeof(why)), EINVAL);
        assert_non_null(strstr(why, path));
        assert_non_null(strstr(why, "shorter than its header"));
    }
    /* A why too small for the sentence is cut, never overrun. */
    memset(why, 'x', sizeof(why));
    assert_int_equal(jf_open(&r, path, 1, why, 8), EINVAL);
    assert_int_equal(strlen(why), 7);
    assert_int_equal(why[8], 'x');
}

static void
test_bad_magic_is_einval(void **state)
{
    const char *dir = *state;
    char path[512], why[512];
    uint8_t hdr[JF_HEADER_SIZE + JF_FRAME_SIZE + 1];
    struct jf_reader r;

    assert_int_equal(jf_path(path, sizeof(path), dir, 1), 0);
    header(hdr, 1);
    hdr[7] = '2'; /* a format this reader does not know */
    jf_frame(hdr + JF_HEADER_SIZE, "z", 1);
    hdr[JF_HEADER_SIZE + JF_FRAME_SIZE] = 'z';
    write_file(path, hdr, sizeof(hdr));
    assert_int_equal(jf_open(&r, path, 1, why, sizeof(why)), EINVAL);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "bad magic"));
}

static void
test_wrong_seq_is_einval(void **state)
{
    const char *dir = *state;
    char path[512], why[512];
    uint8_t hdr[JF_HEADER_SIZE];
    struct jf_reader r;

    assert_int_equal(jf_path(path, sizeof(path), dir, 4), 0);
    header(hdr, 5);
    write_file(path, hdr, sizeof(hdr));
    assert_int_equal(jf_open(&r, path, 4, why, sizeof(why)), EINVAL);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "seq 5 in a file named 0000000000000004.seg"));
    /* Without an expectation the header's seq is taken as it is. */
    assert_int_equal(jf_open(&r, path, UINT64_MAX, why, sizeof(why)), 0);
    assert_int_equal(r.seq, 5);
    jf_close(&r);
}

static void
test_missing_file_is_enoent_with_why(void **state)
{
    char path[512], why[512] = "";
    struct jf_reader r;
    assert_int_equal(jf_path(path, sizeof(path), (const char *)*state, 1), 0);
    assert_int_equal(jf_open(&r, path, 1, why, sizeof(why)), ENOENT);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, strerror(ENOENT)));
}

/* --- damage ---------------------------------------------------------------------------------- */

/* The last record cut at cut bytes into its frame: every earlier record, then JF_TORN from the
 * partial one; cutting there leaves a clean segment. */
static void
check_torn_at(const char *dir, size_t cut)
{
    char path[512];
    size_t off[NREC + 1];
    struct jf_reader r;
    const uint8_t *p;
    uint32_t n;

    write_segment(dir, 2, NREC, path, sizeof(path), off);
    assert_int_equal(truncate(path, (off_t)(off[NREC - 1] + cut)), 0);
    assert_int_equal(jf_open(&r, path, 2, NULL, 0), 0);
    expect_records(&r, NREC - 1);
    assert_int_equal(jf_next(&r, &p, &n), JF_TORN);
    assert_int_equal(r.bad_off, off[NREC - 1]);
    assert_int_equal(r.bad_len, cut);
    assert_int_equal(jf_next(&r, &p, &n), JF_TORN);
    assert_int_equal(r.bad_off, off[NREC - 1]);
    jf_close(&r);

    assert_int_equal(jf_truncate(path, off[NREC - 1]), 0);
    assert_int_equal(file_size(path), (off_t)off[NREC - 1]);
    assert_int_equal(jf_open(&r, path, 2, NULL, 0), 0);
    expect_records(&r, NREC - 1);
    assert_int_equal(jf_next(&r, &p, &n), JF_END);
    jf_close(&r);
    assert_int_equal(unlink(path), 0);
}

static void
test_torn_last_record_reads_as_torn(void **state)
{
    const size_t last = JF_FRAME_SIZE + rec_len[NREC - 1];
    for (size_t cut = 1; cut < JF_FRAME_SIZE; cut++) {
        check_torn_at(*state, cut); /* inside the frame header */
    }
    check_torn_at(*state, JF_FRAME_SIZE); /* the header whole, no payload */
    check_torn_at(*state, JF_FRAME_SIZE + 1);
    check_torn_at(*state, JF_FRAME_SIZE + 4096);
    check_torn_at(*state, last - 1);
}

static void
test_garbage_after_records_reads_as_torn(void **state)
{
    const char *dir = *state;
    char path[512];
    size_t off[NREC + 1];
    uint8_t junk[1000];
    struct jf_reader r;
    const uint8_t *p;
    uint32_t n;
    unsigned seed = 12345;

    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (uint8_t)(rand_r(&seed) >> 7);
    }
    write_segment(dir, 1, NREC, path, sizeof(path), off);
    append_file(path, junk, sizeof(junk));
    assert_int_equal(jf_open(&r, path, 1, NULL, 0), 0);
    expect_records(&r, NREC);
    assert_int_equal(jf_next(&r, &p, &n), JF_TORN);
    assert_int_equal(r.bad_off, off[NREC]);
    assert_int_equal(r.bad_len, sizeof(junk));
    jf_close(&r);
}

static void
test_zeros_after_records_read_as_torn(void **state)
{
    const char *dir = *state;
    char path[512];
    size_t off[NREC + 1];
    uint8_t zeros[4096] = { 0 };
    struct jf_reader r;
    const uint8_t *p;
    uint32_t n;

    /* What a file system may show after a crash that extended the file but lost the data. */
    write_segment(dir, 1, 3, path, sizeof(path), off);
    append_file(path, zeros, sizeof(zeros));
    assert_int_equal(jf_open(&r, path, 1, NULL, 0), 0);
    expect_records(&r, 3);
    assert_int_equal(jf_next(&r, &p, &n), JF_TORN);
    assert_int_equal(r.bad_off, off[3]);
    assert_int_equal(r.bad_len, sizeof(zeros));
    jf_close(&r);
}

static void
test_zero_length_frame_is_not_a_record(void **state)
{
    const char *dir = *state;
    char path[512];
    size_t off[NREC + 1];
    uint8_t fh[JF_FRAME_SIZE], one[JF_FRAME_SIZE + 1];
    struct jf_reader r;
    const uint8_t *p;
    uint32_t n;

    /* Its CRC is right, but a reader never accepts a length of 0. */
    jf_frame(fh, "", 0);
    write_segment(dir, 1, 3, path, sizeof(path), off);
    append_file(path, fh, sizeof(fh));
    assert_int_equal(jf_open(&r, path, 1, NULL, 0), 0);
    expect_records(&r, 3);
    assert_int_equal(jf_next(&r, &p, &n), JF_TORN);
    assert_int_equal(r.bad_off, off[3]);
    assert_int_equal(r.bad_len, JF_FRAME_SIZE);
    jf_close(&r);

    /* Followed by a valid record, it is damage in the middle. */
    jf_frame(one, "!", 1);
    one[JF_FRAME_SIZE] = '!';
    append_file(path, one, sizeof(one));
    assert_int_equal(jf_open(&r, path, 1, NULL, 0), 0);
    expect_records(&r, 3);
    assert_int_equal(jf_next(&r, &p, &n), JF_CORRUPT);
    assert_int_equal(r.bad_off, off[3]);
    assert_int_equal(r.bad_len, JF_FRAME_SIZE);
    jf_close(&r);
}

/* Record 2 of NREC with the byte at its offset + at changed: records 0 and 1, then
 * JF_CORRUPT at record 2, to the start of record 3, every time after. */
static void
check_corrupt_at(const char *dir, size_t at)
{
    char path[512];
    size_t off[NREC + 1];
    struct jf_reader r;
    const uint8_t *p;
    uint32_t n;

    write_segment(dir, 6, NREC, path, sizeof(path), off);
    flip_byte(path, off[2] + at);
    assert_int_equal(jf_open(&r, path, 6, NULL, 0), 0);
    expect_records(&r, 2);
    assert_int_equal(jf_next(&r, &p, &n), JF_CORRUPT);
    assert_int_equal(r.bad_off, off[2]);
    assert_int_equal(r.bad_len, off[3] - off[2]);
    assert_int_equal(r.off, off[2]);
    assert_int_equal(jf_next(&r, &p, &n), JF_CORRUPT);
    assert_int_equal(r.bad_off, off[2]);
    jf_close(&r);
    assert_int_equal(unlink(path), 0);
}

static void
test_damaged_payload_in_the_middle_reads_as_corrupt(void **state)
{
    check_corrupt_at(*state, JF_FRAME_SIZE);                   /* first payload byte */
    check_corrupt_at(*state, JF_FRAME_SIZE + rec_len[2] - 1);  /* last payload byte */
    check_corrupt_at(*state, 4);                               /* the CRC itself */
}

static void
test_damaged_length_in_the_middle_reads_as_corrupt(void **state)
{
    /* Record 2's length is 8: flipping bit 6 of its low byte makes it 72, which points into
     * record 3's payload; of its top byte, 0x40000000, past JF_RECORD_MAX. Either way only
     * the scan finds record 3. */
    check_corrupt_at(*state, 0);
    check_corrupt_at(*state, 3);
}

static void
test_damaged_last_record_reads_as_torn(void **state)
{
    const char *dir = *state;
    char path[512];
    size_t off[NREC + 1];
    struct jf_reader r;
    const uint8_t *p;
    uint32_t n;

    write_segment(dir, 6, NREC, path, sizeof(path), off);
    flip_byte(path, off[NREC - 1] + JF_FRAME_SIZE + 500);
    assert_int_equal(jf_open(&r, path, 6, NULL, 0), 0);
    expect_records(&r, NREC - 1);
    assert_int_equal(jf_next(&r, &p, &n), JF_TORN);
    assert_int_equal(r.bad_off, off[NREC - 1]);
    assert_int_equal(r.bad_len, off[NREC] - off[NREC - 1]);
    jf_close(&r);
}

/* --- truncating ------------------------------------------------------------------------------ */

static void
test_truncate_cuts_and_never_grows(void **state)
{
    const char *dir = *state;
    char path[512];
    size_t off[NREC + 1];

    write_segment(dir, 1, NREC, path, sizeof(path), off);
    assert_int_equal(jf_truncate(path, off[NREC] + 1), EINVAL);
    assert_int_equal(file_size(path), (off_t)off[NREC]);
    assert_int_equal(jf_truncate(path, off[NREC]), 0);
    assert_int_equal(file_size(path), (off_t)off[NREC]);
    assert_int_equal(jf_truncate(path, off[3]), 0);
    assert_int_equal(file_size(path), (off_t)off[3]);
    assert_int_equal(jf_truncate(path, 0), 0);
    assert_int_equal(file_size(path), 0);

    assert_int_equal(jf_path(path, sizeof(path), dir, 2), 0);
    assert_int_equal(jf_truncate(path, 0), ENOENT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_vectors),
        cmocka_unit_test(test_crc32c_matches_bitwise_at_any_length_alignment_and_split),
        cmocka_unit_test(test_frame_is_length_then_crc_of_length_and_payload),
        cmocka_unit_test(test_path_is_sixteen_hex_digits_and_checks_room),
        cmocka_unit_test_setup_teardown(test_list_sorts_segments_and_ignores_other_names, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_of_missing_dir_is_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_writes_header_and_leaves_fd_for_appending,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refuses_existing_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_in_missing_dir_is_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_writes_under_a_temporary_name_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remove_temps_removes_only_temporary_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_records_read_back_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_only_file_is_clean_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_header_is_einval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_magic_is_einval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_seq_is_einval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_is_enoent_with_why, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_last_record_reads_as_torn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_after_records_reads_as_torn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_zeros_after_records_read_as_torn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_length_frame_is_not_a_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_payload_in_the_middle_reads_as_corrupt,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_length_in_the_middle_reads_as_corrupt,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_last_record_reads_as_torn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_cuts_and_never_grows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
