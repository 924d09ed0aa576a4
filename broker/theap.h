/* The broker's timer heap: a binary min-heap of jobs ordered by due_ns (then id: jobs due at
 * once come out in push order), holding every delayed job (due: when it becomes ready) and
 * every reserved job (due: its TTR deadline).
 * A job's heap_idx is its position, or UINT32_MAX when it is not in the heap. */
#ifndef SLUICE_THEAP_H
#define SLUICE_THEAP_H

#include "job.h"

#include <stdint.h>

struct theap {
    struct job **v;
    uint32_t n, cap;
};

void theap_init(struct theap *h);
void theap_fini(struct theap *h);

/* Adds j (not in the heap) keyed by j->due_ns. Returns 0 or SL_ENOMEM. */
int theap_add(struct theap *h, struct job *j);
/* Makes room for extra more jobs, so that adds up to that cannot fail. 0 or SL_ENOMEM. */
int theap_reserve(struct theap *h, uint32_t extra);
/* Removes j if it is in the heap. */
void theap_del(struct theap *h, struct job *j);
/* Re-positions j after its due_ns changed. */
void theap_update(struct theap *h, struct job *j);
/* The job due first, or NULL. */
struct job *theap_top(const struct theap *h);

#endif
