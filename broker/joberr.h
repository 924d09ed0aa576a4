/* A job's last error: why its last attempt failed, kept with the job until it is freed (or
 * revived from the dead), journaled, and shown by `ctl job`, `ctl dead list` and metrics.
 *
 * Each error has a class, counted in metrics (sluice_job_errors_total{class}):
 *   failed       the handler reported a failure (nack), with its message
 *   exit         the same, from a command that exited non-zero (the message begins "exit N")
 *   signal       the same, from a command killed by a signal (the message begins "signal N")
 *   worker_died  the worker running it went away (crash, kill, lost connection)
 *   ttr_expired  its reservation ran out (no ack, nack or touch within its TTR)
 * The text is at most JOBERR_TEXT_MAX bytes; a longer one keeps its first line (up to 256
 * bytes) and the end of the rest, where a command's last words are. */
#ifndef SLUICE_JOBERR_H
#define SLUICE_JOBERR_H

#include "wire.h"

#include <stdint.h>

#define JOBERR_TEXT_MAX 1280u
#define JOBERR_HEAD_MAX 256u

enum joberr_class {
    JERR_FAILED,
    JERR_EXIT,
    JERR_SIGNAL,
    JERR_WORKER_DIED,
    JERR_TTR_EXPIRED,
    JERR_CLASSES
};

struct joberr {
    int64_t at_ms;       /* wall clock, ms since the epoch */
    uint16_t len;        /* text bytes */
    uint8_t cls;         /* enum joberr_class */
    char text[];         /* not NUL-terminated */
};

/* "failed", "exit", ... */
extern const char *const joberr_class_names[JERR_CLASSES];

/* The class of a nack's message: exit or signal when it begins "exit N" or "signal N" (how
 * sluice's workers report a command's end), else failed. */
enum joberr_class joberr_classify(struct sl_str msg);

/* A new error of class cls at at_ms with text (shortened to JOBERR_TEXT_MAX as above); NULL
 * on ENOMEM. Freed with free(). */
struct joberr *joberr_new(enum joberr_class cls, int64_t at_ms, struct sl_str text);

/* Its class by name; -1 when none. */
int joberr_class_parse(struct sl_str name);

#endif
