/* Jobs and their storage. Jobs are allocated in blocks, one per push request: the jobs of
 * one push and their payloads sit contiguously in one allocation, so pushing 1,000 jobs costs
 * one malloc, not 1,000. A block is freed when its last job is freed; a long-lived job (dead,
 * or stuck in a paused queue) keeps its whole block, which `mem_bytes` in stats shows. */
#ifndef SLUICE_JOB_H
#define SLUICE_JOB_H

#include "wire.h"

#include <stddef.h>
#include <stdint.h>

struct queue;
struct group;
struct lane;
struct jobblock;
struct joberr;

enum job_state {
    JOB_NONE,     /* in no list: being created or freed */
    JOB_READY,    /* in its lane of its queue, waiting to be reserved */
    JOB_RESERVED, /* handed to a worker, awaiting ack/nack or TTR */
    JOB_DELAYED,  /* waiting for its due time */
    JOB_DEAD,     /* out of attempts; kept until retried or purged */
    JOB_STATES
};

struct job {
    struct job *next, *prev;   /* links in its lane (ready) or its queue's list of its state */
    struct queue *queue;       /* the queue it belongs to; never NULL once linked */
    struct group *group;       /* never NULL once linked */
    struct lane *lane;         /* its group's lane in its queue; never NULL once linked */
    struct jobblock *block;    /* the allocation it lives in */
    uint64_t id;               /* broker-assigned, unique, increasing */
    int64_t enq_ns;            /* wall-clock time of the push, ns since the epoch */
    union {                    /* one slot: a job is in one state at a time */
        int64_t due_ns;        /* JOB_DELAYED: when ready; JOB_RESERVED: TTR deadline */
        uint64_t rseq;         /* JOB_READY: its arrival number in its queue (queue.c) */
    };
    union {                    /* one slot: a job is in one state at a time */
        int64_t ready_ns;      /* JOB_READY: when it last became ready, monotonic (its wait) */
        int64_t rsv_ns;        /* JOB_RESERVED: when reserved, monotonic (its run time) */
    };
    void *owner;               /* JOB_RESERVED: the worker holding it */
    uint32_t len;              /* payload bytes, which follow this struct */
    uint32_t heap_idx;         /* position in the broker's timer heap, or UINT32_MAX */
    uint32_t ttr_ms;           /* reservation timeout */
    uint16_t attempts;         /* reservations so far */
    uint16_t max_attempts;     /* 1..65535 */
    uint8_t state;             /* enum job_state */
    uint8_t crashes;           /* times its worker died holding it */
    uint8_t suspect;           /* handed back by a worker that died running an unknown job:
                                  reserved alone until it ends once (flow.c) */
    uint32_t seg;              /* journal segment holding its full record (journal.c) */
    struct joberr *err;        /* why its last attempt failed (joberr.h); NULL: none. Owned */
};

/* "none", "ready", "reserved", "delayed", "dead". */
extern const char *const job_state_names[JOB_STATES];

/* The state named s; -1 when s names none (or "none"). */
int job_state_parse(struct sl_str s);

/* The payload bytes (len of them) of j. */
static inline const char *
job_payload(const struct job *j)
{
    return (const char *)(j + 1);
}

/* Allocates one block holding n (>= 1) jobs whose payloads are copied from payloads[0..n).
 * Each job is zeroed but for len, block, heap_idx (UINT32_MAX) and its payload; state is
 * JOB_NONE. *first is the first job; the others follow via job_block_next. *mem_bytes is the
 * block's size. Returns 0 or SL_ENOMEM. */
int job_block_new(const struct wire_list *payloads, uint32_t n, struct job **first,
                  size_t *mem_bytes);

/* The job after j in the same block, or NULL after the last. Only valid right after
 * job_block_new, while walking the new jobs. */
struct job *job_block_next(struct job *j);

/* Releases j (which must be in no list) and its error. Frees its block when it was the block's last live
 * job and returns the bytes freed then (else 0). */
size_t job_free(struct job *j);

#endif
