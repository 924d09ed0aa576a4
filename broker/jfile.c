#include "jfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "SLUICEJ1"
#define MAGIC_SIZE 8u
#define NAME_DIGITS 16u
#define NAME_LEN (NAME_DIGITS + 4u) /* digits + ".seg" */
#define TEMP_SUFFIX ".seg.tmp"
#define TEMP_LEN (NAME_LEN + 4u)    /* digits + ".seg.tmp" */

/* --- byte order ------------------------------------------------------------------------------ */

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void
put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void
put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* --- CRC-32C --------------------------------------------------------------------------------- */

/* crc_table[0] is the byte-at-a-time table; crc_table[k][b] is the CRC of byte b followed by
 * k zero bytes, so eight table lookups advance the CRC over eight input bytes at once. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        }
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t c = crc_table[t - 1][i];
            crc_table[t][i] = (c >> 8) ^ crc_table[0][c & 0xff];
        }
    }
}

uint32_t
jf_crc32c(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t (*t)[256] = crc_table;

    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ get32(b);
        uint32_t hi = get32(b + 4);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n > 0) {
        crc = t[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
        n--;
    }
    return ~crc;
}

/* --- frames and names ------------------------------------------------------------------------ */

void
jf_frame(uint8_t hdr[JF_FRAME_SIZE], const void *payload, uint32_t n)
{
    put32(hdr, n);
    put32(hdr + 4, jf_crc32c(jf_crc32c(0, hdr, 4), payload, n));
}

int
jf_path(char *out, size_t cap, const char *dir, uint64_t seq)
{
    int len = snprintf(out, cap, "%s/%016" PRIx64 ".seg", dir, seq);
    return len >= 0 && (size_t)len < cap ? 0 : -1;
}

/* Whether name is a segment's, and which: exactly 16 lowercase hex digits then ".seg". */
static bool
parse_name(const char *name, uint64_t *seq)
{
    uint64_t v = 0;
    if (strlen(name) != NAME_LEN || strcmp(name + NAME_DIGITS, ".seg") != 0) {
        return false;
    }
    for (unsigned i = 0; i < NAME_DIGITS; i++) {
        char c = name[i];
        if (c >= '0' && c <= '9') {
            v = v << 4 | (uint64_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        } else {
            return false;
        }
    }
    *seq = v;
    return true;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int
jf_list(const char *dir, uint64_t **seqs, size_t *n)
{
    uint64_t *v = NULL;
    size_t nv = 0, cap = 0;
    int rv = 0;
    DIR *d = opendir(dir);

    if (d == NULL) {
        return errno;
    }
    for (;;) {
        uint64_t seq;
        const struct dirent *e;
        errno = 0;
        if ((e = readdir(d)) == NULL) {
            rv = errno;
            break;
        }
        if (!parse_name(e->d_name, &seq)) {
            continue;
        }
        if (nv == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint64_t *nw = realloc(v, ncap * sizeof(*nw));
            if (nw == NULL) {
                rv = ENOMEM;
                break;
            }
            v = nw;
            cap = ncap;
        }
        v[nv++] = seq;
    }
    closedir(d);
    if (rv != 0) {
        free(v);
        return rv;
    }
    if (nv > 1) {
        qsort(v, nv, sizeof(*v), cmp_u64);
    }
    *seqs = v;
    *n = nv;
    return 0;
}

/* --- writing --------------------------------------------------------------------------------- */

/* Writes all of p, through short writes and signals. 0 or an errno value. */
static int
write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (w == 0) {
            return EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The name a segment is created under before it has its header: never a segment's name, so a
 * crash while it is being written leaves nothing jf_list reports. */
static void
temp_name(char *out, size_t cap, uint64_t seq)
{
    snprintf(out, cap, "%016" PRIx64 TEMP_SUFFIX, seq);
}

int
jf_create(const char *dir, uint64_t seq, int *fd)
{
    char name[NAME_LEN + 1], temp[TEMP_LEN + 1];
    uint8_t hdr[JF_HEADER_SIZE];
    int dfd, f, rv;

    snprintf(name, sizeof(name), "%016" PRIx64 ".seg", seq);
    temp_name(temp, sizeof(temp), seq);
    memcpy(hdr, MAGIC, MAGIC_SIZE);
    put64(hdr + MAGIC_SIZE, seq);

    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        return errno;
    }
    /* Checked first so that a clash costs no write; link() below checks again. */
    if (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        rv = EEXIST;
        goto fail_dir;
    }
    /* A temporary file of this name can only be left by a crash: it is replaced. */
    if ((f = openat(dfd, temp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600)) <
        0) {
        rv = errno;
        goto fail_dir;
    }
    if ((rv = write_all(f, hdr, sizeof(hdr))) != 0) {
        goto fail_file;
    }
    if (fdatasync(f) != 0) {
        rv = errno;
        goto fail_file;
    }
    /* The segment's name appears only once its header is on disk: a crash at any point
     * leaves either no segment or a whole header. link() refuses an existing name, which
     * rename() would replace. */
    if (linkat(dfd, temp, dfd, name, 0) != 0) {
        rv = errno;
        goto fail_file;
    }
    unlinkat(dfd, temp, 0);
    /* The file's data is durable, but its name is not until the directory is synced: without
     * this a crash could lose a segment whose records were already confirmed. */
    if (fsync(dfd) != 0) {
        rv = errno;
        unlinkat(dfd, name, 0);
        goto fail_file_linked;
    }
    close(dfd);
    *fd = f;
    return 0;

fail_file:
    unlinkat(dfd, temp, 0);
fail_file_linked:
    close(f);
fail_dir:
    close(dfd);
    return rv;
}

int
jf_remove_temps(const char *dir, size_t *removed)
{
    size_t n = 0;
    int rv = 0;
    DIR *d = opendir(dir);

    if (d == NULL) {
        return errno;
    }
    for (;;) {
        const struct dirent *e;
        uint64_t seq;
        char seg[NAME_LEN + 1];
        errno = 0;
        if ((e = readdir(d)) == NULL) {
            rv = errno;
            break;
        }
        if (strlen(e->d_name) != TEMP_LEN || strcmp(e->d_name + NAME_LEN, ".tmp") != 0) {
            continue;
        }
        memcpy(seg, e->d_name, NAME_LEN);
        seg[NAME_LEN] = '\0';
        if (!parse_name(seg, &seq)) {
            continue;
        }
        if (unlinkat(dirfd(d), e->d_name, 0) != 0) {
            rv = errno;
            break;
        }
        n++;
    }
    closedir(d);
    if (rv == 0) {
        *removed = n;
    }
    return rv;
}

int
jf_truncate(const char *path, uint64_t off)
{
    struct stat st;
    int rv = 0;
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    if (fd < 0) {
        return errno;
    }
    if (fstat(fd, &st) != 0) {
        rv = errno;
    } else if (st.st_size < 0 || off > (uint64_t)st.st_size) {
        rv = EINVAL;
    } else if (ftruncate(fd, (off_t)off) != 0 || fdatasync(fd) != 0) {
        rv = errno;
    }
    if (close(fd) != 0 && rv == 0) {
        rv = errno;
    }
    return rv;
}

/* --- reading --------------------------------------------------------------------------------- */

static void __attribute__((format(printf, 3, 4)))
say(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (why == NULL || cap == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* Reads the whole of fd into a malloc'd buffer (at least 1 byte, so an empty file has one
 * too). A file growing meanwhile is read up to the size fstat saw. 0 or an errno value. */
static int
read_all(int fd, uint8_t **buf, size_t *size)
{
    struct stat st;
    size_t want, got = 0;
    uint8_t *b;

    if (fstat(fd, &st) != 0) {
        return errno;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX) {
        return EFBIG;
    }
    want = (size_t)st.st_size;
    if ((b = malloc(want > 0 ? want : 1)) == NULL) {
        return ENOMEM;
    }
    while (got < want) {
        ssize_t r = read(fd, b + got, want - got);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            int rv = errno;
            free(b);
            return rv;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    *buf = b;
    *size = got;
    return 0;
}

int
jf_open(struct jf_reader *r, const char *path, uint64_t expect_seq, char *why, size_t cap)
{
    uint8_t *buf = NULL;
    size_t size = 0;
    uint64_t seq;
    int rv;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        rv = errno;
        say(why, cap, "%s: %s", path, strerror(rv));
        return rv;
    }
    rv = read_all(fd, &buf, &size);
    close(fd);
    if (rv != 0) {
        say(why, cap, "%s: %s", path, strerror(rv));
        return rv;
    }
    if (size < JF_HEADER_SIZE) {
        say(why, cap, "%s: shorter than its header (%zu of %u bytes)", path, size,
            JF_HEADER_SIZE);
        rv = EINVAL;
        goto fail;
    }
    if (memcmp(buf, MAGIC, MAGIC_SIZE) != 0) {
        say(why, cap, "%s: bad magic (not a sluice journal segment)", path);
        rv = EINVAL;
        goto fail;
    }
    seq = get64(buf + MAGIC_SIZE);
    if (expect_seq != UINT64_MAX && seq != expect_seq) {
        say(why, cap, "%s: seq %" PRIu64 " in a file named %016" PRIx64 ".seg", path, seq,
            expect_seq);
        rv = EINVAL;
        goto fail;
    }
    *r = (struct jf_reader){
        .data = buf,
        .size = size,
        .off = JF_HEADER_SIZE,
        .seq = seq,
        .buf = buf,
    };
    return 0;

fail:
    free(buf);
    return rv;
}

/* Whether a valid frame starts at x (x <= size): its length in bounds, its payload inside the
 * file, its CRC right. The CRC is computed only when the bounds pass, which keeps scans over
 * garbage cheap: most 4-byte values there are lengths past the end. */
static bool
frame_ok(const uint8_t *d, size_t size, size_t x, uint32_t *n)
{
    uint32_t len;
    if (size - x < JF_FRAME_SIZE) {
        return false;
    }
    len = get32(d + x);
    if (len < 1 || len > JF_RECORD_MAX || len > size - x - JF_FRAME_SIZE) {
        return false;
    }
    if (jf_crc32c(jf_crc32c(0, d + x, 4), d + x + JF_FRAME_SIZE, len) != get32(d + x + 4)) {
        return false;
    }
    *n = len;
    return true;
}

/* The frame at x is not valid: where the next valid frame starts, or 0 if none does (no
 * frame can start at 0, which holds the header). */
static size_t
next_valid(const uint8_t *d, size_t size, size_t x)
{
    uint32_t n;
    if (size - x >= JF_FRAME_SIZE) {
        uint32_t len = get32(d + x);
        /* A record whose payload alone is damaged still has a trustworthy length: the frame
         * right after it is the cheapest place to look. */
        if (len >= 1 && len <= JF_RECORD_MAX && len < size - x - JF_FRAME_SIZE &&
            frame_ok(d, size, x + JF_FRAME_SIZE + len, &n)) {
            return x + JF_FRAME_SIZE + len;
        }
    }
    for (size_t y = x + 1; size - y > JF_FRAME_SIZE; y++) {
        if (frame_ok(d, size, y, &n)) {
            return y;
        }
    }
    return 0;
}

enum jf_next
jf_next(struct jf_reader *r, const uint8_t **payload, uint32_t *n)
{
    uint32_t len;
    size_t y;

    if (r->verdict != 0) {
        return (enum jf_next)r->verdict;
    }
    if (r->off == r->size) {
        return JF_END;
    }
    if (frame_ok(r->data, r->size, r->off, &len)) {
        *payload = r->data + r->off + JF_FRAME_SIZE;
        *n = len;
        r->off += JF_FRAME_SIZE + len;
        return JF_RECORD;
    }
    r->bad_off = r->off;
    if ((y = next_valid(r->data, r->size, r->off)) != 0) {
        r->bad_len = y - r->off;
        r->verdict = JF_CORRUPT;
    } else {
        r->bad_len = r->size - r->off;
        r->verdict = JF_TORN;
    }
    return (enum jf_next)r->verdict;
}

void
jf_close(struct jf_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->data = NULL;
    r->size = r->off = 0;
}
