#include "heavyrate.h"

#include "err.h"
#include "ratespec.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

uint64_t
heavyrate_burst(const struct policy_cfg *cfg)
{
    if (cfg->heavy_burst != 0) {
        return cfg->heavy_burst;
    }
    uint64_t b = cfg->heavy_rate_milli / 1000u;
    return b < 1 ? 1 : b > RATESPEC_BURST_MAX ? RATESPEC_BURST_MAX : b;
}

/* Appends the limit change of g: to rate_milli (0: none) and burst, from what it has. */
static int
add(const struct snap_group *g, uint64_t rate_milli, uint64_t burst, const char *reason,
    struct action_list *out)
{
    struct action *a = action_list_add(out, ACT_GROUP_LIMIT);
    if (a == NULL) {
        return SL_ENOMEM;
    }
    memcpy(a->group, g->name.p, g->name.n);
    a->group[g->name.n] = '\0';
    a->count = g->count;
    a->rate_milli = rate_milli;
    a->burst = burst;
    snprintf(a->reason, sizeof(a->reason), "%s", reason);
    if (g->rate_milli == 0) {
        snprintf(a->expect, sizeof(a->expect), "none");
    } else {
        snprintf(a->expect, sizeof(a->expect), "%" PRIu64 ".%03u:%" PRIu64,
                 g->rate_milli / 1000u, (unsigned)(g->rate_milli % 1000u), g->burst);
    }
    return 0;
}

int
heavyrate_plan(const struct policy_cfg *cfg, const struct snapshot *s, struct action_list *out)
{
    if (cfg->heavy_rate_milli == 0) {
        return 0;
    }
    uint64_t burst = heavyrate_burst(cfg);
    char reason[ACTION_REASON_MAX];
    for (size_t i = 0; i < s->ngroups; i++) {
        const struct snap_group *g = &s->groups[i];
        bool mine = g->rate_milli == cfg->heavy_rate_milli && g->burst == burst;
        int rv = 0;
        if (g->count > cfg->high && g->rate_milli == 0) {
            snprintf(reason, sizeof(reason), "count %" PRIu64 " > high %" PRIu64, g->count,
                     cfg->high);
            rv = add(g, cfg->heavy_rate_milli, burst, reason, out);
        } else if (g->count < cfg->low && mine) {
            snprintf(reason, sizeof(reason), "count %" PRIu64 " < low %" PRIu64, g->count,
                     cfg->low);
            rv = add(g, 0, 0, reason, out);
        }
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}
