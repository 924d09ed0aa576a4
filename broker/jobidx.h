/* The jobs the broker holds, by id: each job from its push (or restore) until it is freed,
 * whatever its state. A push's jobs take consecutive ids, given out in increasing order, so
 * the index keeps chunks of JOBIDX_CHUNK consecutive ids, a pointer per id, in a hash map
 * keyed by the chunk's number: indexing a push of 1,000 jobs costs 16 map lookups, not 1,000,
 * and about 8 bytes a job. A chunk is freed with its last job. Not thread-safe (the broker's
 * lock). */
#ifndef SLUICE_JOBIDX_H
#define SLUICE_JOBIDX_H

#include "hmap.h"
#include "job.h"

#include <stdint.h>

#define JOBIDX_SHIFT 6
#define JOBIDX_CHUNK (1u << JOBIDX_SHIFT)

struct jobidx_chunk;

struct jobidx {
    struct hmap chunks;          /* chunk number -> struct jobidx_chunk */
    struct jobidx_chunk *last;   /* the chunk used last: consecutive ids hit it */
    uint64_t n;                  /* jobs indexed */
};

void jobidx_init(struct jobidx *x);

/* Frees the chunks (not the jobs). */
void jobidx_fini(struct jobidx *x);

/* Makes sure the chunks of ids first..first+n-1 exist, so that adding those ids cannot fail.
 * 0; SL_EBADREQ when first is 0 or the range runs past UINT64_MAX; or SL_ENOMEM with nothing
 * changed. */
int jobidx_reserve(struct jobidx *x, uint64_t first, uint64_t n);

/* Indexes j under j->id (reserved by jobidx_reserve). A job already there under that id is
 * replaced. */
void jobidx_add(struct jobidx *x, struct job *j);

/* Takes j out, when it is the job indexed under its id. */
void jobidx_del(struct jobidx *x, const struct job *j);

/* The job with that id, or NULL. */
struct job *jobidx_get(struct jobidx *x, uint64_t id);

#endif
