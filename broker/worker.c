#include "worker.h"

#include <stdlib.h>
#include <string.h>

struct worker *
worker_new(struct sl_str name, uint32_t pipe, int64_t now_ns)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (w == NULL || name.n > WIRE_NAME_MAX) {
        free(w);
        return NULL;
    }
    memcpy(w->name, name.p, name.n);
    w->name_len = name.n;
    w->pipe = pipe;
    w->started_ns = w->seen_ns = now_ns;
    strcpy(w->state, "idle");
    return w;
}

void
worker_free(struct worker *w)
{
    if (w != NULL) {
        free(w->sent_ids);
    }
    free(w);
}

void
worker_set_state(struct worker *w, struct sl_str state)
{
    size_t n = state.n < WORKER_STATE_MAX - 1 ? state.n : WORKER_STATE_MAX - 1;
    memcpy(w->state, state.p, n);
    w->state[n] = '\0';
}
