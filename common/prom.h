/* The broker's `stats` reply as Prometheus metrics, in the text exposition format 0.0.4.
 * Written once here so that `ctl metrics` and the broker's `GET /metrics` print the same
 * text from the same data. The metric names, types and labels are listed in README.md
 * ("Metrics"); changing one there changes it here. */
#ifndef SLUICE_PROM_H
#define SLUICE_PROM_H

#include <msgpack.h>
#include <stdio.h>

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes the metrics of stats (the decoded map of a `stats` reply, as PROTOCOL.md
 * describes it) to out. A field that is missing or of another type is left out (its metric
 * has no sample), so a leaner broker still gives valid text. Returns 0, SL_EBADREQ when
 * stats is not a map or lacks the "broker" map (nothing is written then), or SL_EIO when
 * writing to out failed. Borrows both. */
int prom_format(const msgpack_object *stats, FILE *out);

/* Writes s[0..n) as a label value: backslash, double quote and newline escaped, any other
 * byte outside printable ASCII written as '?'. */
void prom_label_value(FILE *out, const char *s, size_t n);

#endif
