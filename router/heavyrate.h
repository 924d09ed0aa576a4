/* The router's start-rate rule (--heavy-rate), beside whatever policy runs: a group whose
 * count exceeds --high and that has no start rate gets --heavy-rate (and --heavy-burst); one
 * whose count falls below --low and that has exactly that limit has it removed. Counts in
 * [--low, --high] change nothing. Any other limit was set by a person, a plan (the database)
 * or another router configuration, and is left alone; every change carries the limit the
 * rule saw as `expect`, so that the broker refuses it (conflict) if the limit was changed
 * since. Applied on the tick only (a crossing reported by the broker waits for it).
 * Single-threaded; no I/O. */
#ifndef SLUICE_ROUTER_HEAVYRATE_H
#define SLUICE_ROUTER_HEAVYRATE_H

#include "action.h"
#include "policy.h"

#include <stdint.h>

/* The burst the rule gives: cfg->heavy_burst, else one second's worth of the rate, at least
 * 1 (as the broker's default). */
uint64_t heavyrate_burst(const struct policy_cfg *cfg);

/* Appends the rule's actions on s to out (none when cfg->heavy_rate_milli is 0). Returns 0 or
 * SL_ENOMEM (out may then hold part of them). */
int heavyrate_plan(const struct policy_cfg *cfg, const struct snapshot *s, struct action_list *out);

#endif
