#include "job.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

struct jobblock {
    uint32_t live;   /* jobs not yet freed */
    uint32_t njobs;
    size_t bytes;    /* the whole allocation */
    size_t end;      /* offset after the last job */
};

const char *const job_state_names[JOB_STATES] = {
    [JOB_NONE] = "none", [JOB_READY] = "ready", [JOB_RESERVED] = "reserved",
    [JOB_DELAYED] = "delayed", [JOB_DEAD] = "dead",
};

int
job_state_parse(struct sl_str s)
{
    for (int i = JOB_READY; i < JOB_STATES; i++) {
        if (sl_str_eq(s, job_state_names[i])) {
            return i;
        }
    }
    return -1;
}

static size_t
align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Bytes one job with a payload of len bytes occupies in a block. */
static size_t
job_footprint(uint32_t len)
{
    return sizeof(struct job) + align8(len);
}

int
job_block_new(const struct wire_list *payloads, uint32_t n, struct job **first,
              size_t *mem_bytes)
{
    size_t total = align8(sizeof(struct jobblock));

    for (uint32_t i = 0; i < n; i++) {
        total += job_footprint(wire_list_str(payloads, i).n);
    }
    struct jobblock *b = malloc(total);
    if (b == NULL) {
        return SL_ENOMEM;
    }
    b->live = n;
    b->njobs = n;
    b->bytes = total;
    b->end = total;

    char *p = (char *)b + align8(sizeof(struct jobblock));
    for (uint32_t i = 0; i < n; i++) {
        struct sl_str s = wire_list_str(payloads, i);
        struct job *j = (struct job *)p;
        memset(j, 0, sizeof(*j));
        j->block = b;
        j->len = s.n;
        j->heap_idx = UINT32_MAX;
        if (s.n > 0) {
            memcpy(j + 1, s.p, s.n);
        }
        p += job_footprint(s.n);
    }
    *first = (struct job *)((char *)b + align8(sizeof(struct jobblock)));
    *mem_bytes = total;
    return 0;
}

struct job *
job_block_next(struct job *j)
{
    char *next = (char *)j + job_footprint(j->len);
    return (size_t)(next - (char *)j->block) < j->block->end ? (struct job *)next : NULL;
}

size_t
job_free(struct job *j)
{
    struct jobblock *b = j->block;
    j->state = JOB_NONE;
    free(j->err);
    j->err = NULL;
    if (--b->live == 0) {
        size_t bytes = b->bytes;
        free(b);
        return bytes;
    }
    return 0;
}
