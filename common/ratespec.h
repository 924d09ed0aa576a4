/* A start rate as people type it and read it: "50/s", "600/m", "3600/h", "0.5/s" (a bare
 * number is per second), held as thousandths of a job per second, the broker's unit
 * (group.limit, PROTOCOL.md). No I/O. */
#ifndef SLUICE_RATESPEC_H
#define SLUICE_RATESPEC_H

#include <stddef.h>
#include <stdint.h>

#define RATESPEC_MILLI_MAX UINT64_C(1000000000) /* 1,000,000 jobs/s */
#define RATESPEC_BURST_MAX 1000000u             /* jobs started at once */

/* Parses s: digits, maybe a point and more digits (no sign, exponent or blank), then
 * nothing or "/s", "/m", "/h". *milli: the rate in thousandths of a job per second, rounded
 * to the nearest (0 for a rate of 0). Returns 0, or -1 when s is not so, is above
 * RATESPEC_MILLI_MAX, or is above 0 but rounds to 0 (below 0.0005/s). */
int ratespec_parse(const char *s, uint64_t *milli);

/* Writes milli as jobs per second into out: "50/s", "0.5/s", "0.001/s". */
void ratespec_format(uint64_t milli, char *out, size_t cap);

#endif
