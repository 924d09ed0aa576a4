/* What the benchmark programs of bench/ share: the monotonic clock, pushes of copies of one
 * payload, waiting for worker threads to register, percentiles, the broker's address and a
 * watchdog that ends a run that does not finish. */
#ifndef SLUICE_BENCHLIB_H
#define SLUICE_BENCHLIB_H

#include "client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in microseconds: one clock for every thread and process of the machine, so
 * a push time carried in a payload gives a wait without clock skew. */
uint64_t benchlib_mono_us(void);

/* Sleeps us microseconds (resumed after a signal). */
void benchlib_sleep_us(uint64_t us);

/* One push of n (1 to 1,000,000) copies of payload (len bytes) for group, waiting up to
 * timeout_ms for the reply. Returns 0, SL_ENOMEM, a client_call error, or the broker's error
 * code (its message is not kept). Blocks. */
int benchlib_push(struct client *c, const char *group, const void *payload, size_t len,
                  uint32_t n, uint64_t timeout_ms);

/* Waits up to within_ms until the broker lists at least n workers (a worker registers with
 * its first request). Returns whether it did. Blocks. */
bool benchlib_workers_registered(struct client *c, uint64_t n, uint64_t within_ms);

/* Sorts v ascending. */
void benchlib_sort_u64(uint64_t *v, size_t n);

/* Of n (> 0) sorted microsecond values, the nearest-rank q quantile (0 < q <= 1) in ms: the
 * smallest value with at least q of the values at or below it. */
double benchlib_pct_ms(const uint64_t *v, uint64_t n, double q);

/* The broker's address: given when not NULL, else the default (ipc://$SLUICE_DIR/broker.ipc,
 * written into buf). Returns 0 with *url set, or 2 after printing "PROG: why" to stderr. */
int benchlib_url(const char *prog, const char *given, char *buf, size_t cap, const char **url);

/* Starts a thread that ends the process with status 1, saying so on stderr, if it still runs
 * ms from now: a benchmark whose broker stops answering must not hang its caller. Arming
 * again moves the deadline. Returns 0, or -1 if no thread could be started (logged). */
int benchlib_watchdog(const char *prog, uint64_t ms);

#endif
