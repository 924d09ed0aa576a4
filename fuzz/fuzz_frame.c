/* Fuzz target: reading a pipe handler's answers (worker/frame.c), as the worker reads them.
 *
 * The input is what a handler writes on its stdout: frames (a 4-byte big-endian length, then
 * a msgpack body) or anything else. It goes into a pipe in pieces of 1, 2, 5, 13, 64 and 4096
 * bytes in turn, and after each piece frame_read runs on the pipe's non-blocking read end
 * until it has nothing more, exactly as the worker's poll loop does; every whole frame goes
 * to frame_decode_reply. After the last piece the write end closes, so the reader sees the
 * end of the file. Reading stops at the first error, as the worker stops (and kills the
 * handler).
 *
 * Checked: frames never claim more bytes than were written; a frame is at most the reader's
 * limit; a decoded reply keeps its limits (msg inside the body and at most FRAME_MSG_MAX
 * bytes, delay_ms at most FRAME_DELAY_MAX_MS); every read ends in an error with a reason,
 * and a clean end of the file comes exactly after the last byte. */
#include "fuzz.h"

#include "err.h"
#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

static uint8_t body[FRAME_REPLY_MAX];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* Reads every frame fd holds now. Returns 0 (nothing more for now) or the error that ends
 * the reading. */
static int
drain(struct frame_reader *rd, int fd, size_t *consumed, size_t written)
{
    for (;;) {
        bool done = false;
        const char *why = NULL;
        int rv = frame_read(rd, fd, &done, &why);
        if (rv != 0) {
            FUZZ_CHECK(rv == SL_EIO || rv == SL_ETOOLARGE);
            FUZZ_CHECK(why != NULL && why[0] != '\0');
            return rv;
        }
        if (!done) {
            return 0;
        }
        FUZZ_CHECK(rd->len <= FRAME_REPLY_MAX);
        *consumed += FRAME_HDR_BYTES + (size_t)rd->len;
        FUZZ_CHECK(*consumed <= written);

        struct frame_reply rep;
        const char *bad = NULL;
        if (frame_decode_reply(body, rd->len, &rep, &bad) == 0) {
            FUZZ_CHECK(rep.delay_ms <= FRAME_DELAY_MAX_MS);
            FUZZ_CHECK(rep.msg.n <= FRAME_MSG_MAX);
            if (rep.msg.n > 0) {
                const uint8_t *m = (const uint8_t *)rep.msg.p;
                FUZZ_CHECK(m >= body && m + rep.msg.n <= body + rd->len);
            }
        } else {
            FUZZ_CHECK(bad != NULL && bad[0] != '\0');
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[] = { 1, 2, 5, 13, 64, 4096 };
    struct frame_reader rd;
    int fds[2];
    size_t written = 0, consumed = 0;
    int rv = 0;

    FUZZ_CHECK(pipe2(fds, O_CLOEXEC) == 0);
    FUZZ_CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
    frame_reader_init(&rd, body, FRAME_REPLY_MAX);
    /* Each piece is read out before the next is written, so the pipe never fills up. */
    for (size_t i = 0; written < size && rv == 0; i++) {
        size_t n = pieces[i % (sizeof(pieces) / sizeof(pieces[0]))];
        if (n > size - written) {
            n = size - written;
        }
        ssize_t w = write(fds[1], data + written, n);
        FUZZ_CHECK(w == (ssize_t)n);
        written += n;
        rv = drain(&rd, fds[0], &consumed, written);
    }
    close(fds[1]);
    if (rv == 0) {
        rv = drain(&rd, fds[0], &consumed, written);
        /* The end of the file always ends the reading. */
        FUZZ_CHECK(rv == SL_EIO || rv == SL_ETOOLARGE);
        if (rv == SL_EIO && rd.got == 0) {
            FUZZ_CHECK(consumed == written);   /* a clean end: every byte was in a frame */
        }
    }
    close(fds[0]);
    return 0;
}
