/* Fuzz target: the broker's journal replay (broker/journal.c over broker/jfile.c).
 *
 * The input becomes the segment files of a data directory; byte 0 says how:
 *   bit 0  repair: the first start runs as with --repair
 *   bit 1  framed: the rest is records, each a 4-byte little-endian length L and L bytes;
 *          the target writes them as segments 1, 2, ... with a correct header and frame
 *          (length, CRC-32C) around each, so that the fuzzer reaches what the records say;
 *          L = 0 starts the next segment; an L past the end makes the rest a torn tail
 *   else   raw: the rest is the files' bytes, cut before every "SLUICEJ1" (a segment's
 *          magic) after the first byte, named from the first file's header seq on (or 1),
 *          so real segment files concatenated come back as they were
 * at most FUZZ_SEGMENTS files. Then a broker (memory, fake clock) opens the journal, which
 * replays it. Whatever happened, the broker is freed: nothing may leak or crash.
 *
 * Checked: a start that succeeds leaves the broker's totals consistent (fuzz_check_broker),
 * and a second start, without --repair, over what the first left (its new segment holds a
 * snapshot and possibly rewritten jobs; segments without live jobs are gone) must succeed
 * with the same number of jobs: what the broker writes itself always replays, and no job is
 * lost or made up by it. Queues are not compared: the snapshot that applies is the first
 * remaining segment's, and a forged one can disagree with what the deleted segments before
 * it had built, which a real journal never does. */
#include "fuzz.h"
#include "fuzz_base.h"

#include "broker.h"
#include "jfile.h"
#include "journal.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_SEGMENTS 4
#define MAGIC "SLUICEJ1"
#define MAGIC_LEN 8u

static char base_dir[PATH_MAX / 2];

static int64_t
fake_clock(void *arg)
{
    (void)arg;
    return FUZZ_BASE_START_NS;
}

/* Empties dir (files only: the journal makes no subdirectories). */
static void
empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX + 256];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        FUZZ_CHECK(unlink(p) == 0);
    }
    closedir(d);
}

static void
remove_base_dir(void)
{
    empty_dir(base_dir);
    rmdir(base_dir);
}

/* The data directory: one per process, in $TMPDIR (make fuzz points it at a memory file
 * system when there is one: segments are created with fdatasync), removed at exit. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_level = fuzz_log_level();
    const char *tmp = getenv("TMPDIR");
    snprintf(base_dir, sizeof(base_dir), "%s/sluice-fuzz-journal.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(base_dir) != NULL);
    atexit(remove_base_dir);
    return 0;
}

static int
open_seg(uint64_t seq)
{
    char p[PATH_MAX];
    FUZZ_CHECK(jf_path(p, sizeof(p), base_dir, seq) == 0);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    return fd;
}

static void
put(int fd, const void *p, size_t n)
{
    FUZZ_CHECK(write(fd, p, n) == (ssize_t)n);
}

static uint64_t
le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static void
write_raw(const uint8_t *p, size_t n)
{
    uint64_t seq = 1;
    if (n >= JF_HEADER_SIZE && memcmp(p, MAGIC, MAGIC_LEN) == 0) {
        uint64_t s = le64(p + MAGIC_LEN);
        if (s >= 1 && s <= UINT32_MAX) {
            seq = s;
        }
    }
    for (int files = 0; files < FUZZ_SEGMENTS && n > 0; files++) {
        size_t cut = n;
        if (files + 1 < FUZZ_SEGMENTS) {
            const uint8_t *m = n > 1 ? memmem(p + 1, n - 1, MAGIC, MAGIC_LEN) : NULL;
            if (m != NULL) {
                cut = (size_t)(m - p);
            }
        }
        int fd = open_seg(seq + (uint64_t)files);
        put(fd, p, cut);
        close(fd);
        p += cut;
        n -= cut;
    }
}

static void
write_framed(const uint8_t *p, size_t n)
{
    uint8_t hdr[JF_HEADER_SIZE];
    uint64_t seq = 1;
    int fd = -1;

    while (n > 0 || fd < 0) {
        if (fd < 0) {
            memcpy(hdr, MAGIC, MAGIC_LEN);
            for (int i = 0; i < 8; i++) {
                hdr[MAGIC_LEN + i] = (uint8_t)(seq >> (8 * i));
            }
            fd = open_seg(seq);
            put(fd, hdr, sizeof(hdr));
        }
        if (n < 4) {
            put(fd, p, n); /* a torn length */
            break;
        }
        uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24;
        p += 4;
        n -= 4;
        if (len == 0) {
            close(fd);
            fd = -1;
            if (++seq > FUZZ_SEGMENTS) {
                return;
            }
            continue;
        }
        if (len > n) {
            put(fd, p, n); /* a torn record */
            break;
        }
        uint8_t fr[JF_FRAME_SIZE];
        jf_frame(fr, p, len);
        put(fd, fr, sizeof(fr));
        put(fd, p, len);
        p += len;
        n -= len;
    }
    close(fd);
}

/* Opens the journal of base_dir in a new broker. Returns journal_open's result; on success
 * *jobs is how many jobs it replayed. The broker is closed and freed either way. A start that
 * must succeed and fails says why before the check aborts. */
static int
start(bool repair, bool must, uint64_t *jobs)
{
    struct broker_cfg cfg;
    struct broker *b;
    char why[512];

    broker_cfg_default(&cfg);
    cfg.clock = (struct broker_clock){ fake_clock, fake_clock, NULL };
    FUZZ_CHECK(broker_new(&b, &cfg) == 0);
    struct journal_cfg jc = { .dir = base_dir, .fsync = JOURNAL_NEVER, .segment_bytes = 1u << 20, .repair = repair };
    int rv = journal_open(b, &jc, why, sizeof(why));
    if (rv == 0) {
        fuzz_check_broker(b);
        *jobs = b->jobs;
        journal_close(b);
    } else {
        FUZZ_CHECK(why[0] != '\0');
        if (must) {
            fprintf(stderr, "fuzz_journal: the second start failed: %s\n", why);
        }
    }
    broker_free(b);
    return rv;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    bool repair = data[0] & 1;
    if (data[0] & 2) {
        write_framed(data + 1, size - 1);
    } else {
        write_raw(data + 1, size - 1);
    }
    uint64_t jobs = 0, jobs2 = 0;
    if (start(repair, false, &jobs) == 0) {
        FUZZ_CHECK(start(false, true, &jobs2) == 0);
        FUZZ_CHECK(jobs2 == jobs);
    }
    empty_dir(base_dir);
    return 0;
}
