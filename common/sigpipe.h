/* The process's self-pipe for signals (STYLE: handlers only write to a self-pipe; the loop
 * acts and logs). The handler writes each signal's number as one byte to a non-blocking pipe;
 * the main loop polls sigpipe_fd() among its own fds, or blocks in sigpipe_wait, and reads
 * the signals with sigpipe_next. One per process; main() installs it before starting threads
 * (so that threads inherit no surprises). Also ignores SIGPIPE: a peer that went away shows
 * as EPIPE on the write instead. */
#ifndef SLUICE_SIGPIPE_H
#define SLUICE_SIGPIPE_H

#include <stddef.h>

/* Installs handlers for the n signals of sigs (with SA_RESTART). Returns 0 or SL_EIO. */
int sigpipe_install(const int *sigs, size_t n);

/* The read end, non-blocking, close-on-exec; -1 before sigpipe_install. */
int sigpipe_fd(void);

/* The next signal received, or 0 when none is pending. Never blocks. */
int sigpipe_next(void);

/* Waits up to timeout_ms (-1: forever) for a signal and returns it, or 0 on timeout. */
int sigpipe_wait(int timeout_ms);

#endif
