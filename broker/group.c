#include "group.h"

#include <stdlib.h>
#include <string.h>

struct group *
group_new(struct sl_str name)
{
    struct group *g = calloc(1, sizeof(*g));
    if (g == NULL || name.n > WIRE_NAME_MAX) {
        free(g);
        return NULL;
    }
    memcpy(g->name, name.p, name.n);
    g->name_len = name.n;
    g->weight = GROUP_WEIGHT_ONE;
    return g;
}

void
group_free(struct group *g)
{
    if (g != NULL) {
        free(g->rate);
    }
    free(g);
}

void
group_adjust(struct group *g, enum job_state from, enum job_state to)
{
    if (from != JOB_NONE) {
        g->jobs[from]--;
    }
    if (to != JOB_NONE) {
        g->jobs[to]++;
    }
}

uint64_t
group_count(const struct group *g)
{
    return g->jobs[JOB_READY] + g->jobs[JOB_RESERVED] + g->jobs[JOB_DELAYED];
}

uint64_t
group_jobs(const struct group *g)
{
    return group_count(g) + g->jobs[JOB_DEAD];
}
