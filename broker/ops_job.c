/* Looking at jobs: job.info (one job by id), job.peek (the first jobs of a queue or group in
 * one state) and job.delete (a ready or delayed job). Each costs what it shows: a lookup in
 * the id index, or a walk of the jobs listed (see PROTOCOL.md for the one case that walks
 * more). */
#include "err.h"
#include "flow.h"
#include "log.h"
#include "ops_int.h"
#include "worker.h"

#include <stdio.h>

#define PEEK_DEFAULT 20u
#define PEEK_MAX 1000u
#define PREVIEW_INFO 1024u  /* payload bytes job.info shows */
#define PREVIEW_PEEK 64u    /* and job.peek, per job */

/* Wall-clock ms of the monotonic time t. */
static int64_t
wall_ms_of(const struct broker *b, int64_t t)
{
    return (broker_wall_ns(b) + (t - broker_mono_ns(b))) / 1000000;
}

/* Packs j's details as a map; its payload's first `preview` bytes. */
static void
pack_detail(const struct broker *b, msgpack_packer *pk, const struct job *j, uint32_t preview)
{
    bool due = j->state == JOB_DELAYED || j->state == JOB_RESERVED;
    bool worker = j->state == JOB_RESERVED && j->owner != NULL;
    uint32_t shown = j->len < preview ? j->len : preview;

    msgpack_pack_map(pk, 13 + due + worker);
    kv_u64(pk, "id", j->id);
    wire_pack_str(pk, "state", 5);
    wire_pack_cstr(pk, job_state_names[j->state]);
    kv_str(pk, "group", j->group->name, j->group->name_len);
    kv_str(pk, "queue", j->queue->name, j->queue->name_len);
    kv_u64(pk, "attempts", j->attempts);
    kv_u64(pk, "max_attempts", j->max_attempts);
    kv_u64(pk, "crashes", j->crashes);
    kv_u64(pk, "ttr_ms", j->ttr_ms);
    kv_u64(pk, "enq_ms", (uint64_t)(j->enq_ns / 1000000));
    if (due) {
        /* delayed: when it is ready (its next attempt, after a failure); reserved: when its
         * reservation runs out */
        int64_t t = wall_ms_of(b, j->due_ns);
        kv_u64(pk, j->state == JOB_DELAYED ? "due_ms" : "ttr_deadline_ms", t > 0 ? (uint64_t)t : 0);
    }
    if (worker) {
        const struct worker *w = j->owner;
        kv_str(pk, "worker", w->name, strlen(w->name));
    }
    kv_u64(pk, "payload_len", j->len);
    wire_pack_str(pk, "payload", 7);
    msgpack_pack_bin(pk, shown);
    msgpack_pack_bin_body(pk, job_payload(j), shown);
    wire_pack_str(pk, "truncated", 9);
    shown < j->len ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    wire_pack_str(pk, "error", 5);
    if (j->err == NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 3);
    wire_pack_str(pk, "class", 5);
    wire_pack_cstr(pk, joberr_class_names[j->err->cls]);
    kv_u64(pk, "at_ms", (uint64_t)j->err->at_ms);
    kv_str(pk, "text", j->err->text, j->err->len);
}

void
pack_job_dead(const struct broker *b, msgpack_packer *pk, const struct job *j)
{
    pack_detail(b, pk, j, UINT32_MAX);
}

int
op_job_info(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    uint64_t id = req->v[WK_ID].u;
    const struct job *j = jobidx_get(&b->ids, id);
    if (j == NULL) {
        snprintf(c->why, WHY_MAX, "job %llu does not exist (never pushed, or done and deleted)",
                 (unsigned long long)id);
        return SL_ENOTFOUND;
    }
    wire_pack_ok(pk, 1);
    wire_pack_key(pk, WK_JOB);
    pack_detail(b, pk, j, PREVIEW_INFO);
    return 0;
}

/* What job.peek selects. */
struct peek {
    struct queue *q;          /* NULL: every queue */
    struct group *g;          /* NULL: every group */
    enum job_state st;
    uint32_t max;
};

/* Calls fn on each job pk selects, in order, until it returns false. Ready jobs go lane by
 * lane (a group's in its arrival order); the others in the order they entered their state. */
static void
peek_walk(const struct broker *b, const struct peek *p, bool (*fn)(void *, const struct job *),
          void *arg)
{
    for (uint32_t i = 0; i < b->nqueues; i++) {
        const struct queue *q = b->qorder[i];
        if (p->q != NULL && q != p->q) {
            continue;
        }
        const struct job *j;
        if (p->st == JOB_READY) {
            j = p->g != NULL ? queue_group_first(q, p->g) : queue_ready_first(q);
            for (; j != NULL && (p->g == NULL || j->group == p->g); j = queue_ready_next(j)) {
                if (!fn(arg, j)) {
                    return;
                }
            }
            continue;
        }
        if (p->g != NULL && queue_group_jobs(q, p->g) == 0) {
            continue;
        }
        for (j = q->lists[p->st].head; j != NULL; j = j->next) {
            if ((p->g == NULL || j->group == p->g) && !fn(arg, j)) {
                return;
            }
        }
    }
}

/* The jobs p selects: exact, from counters, but for a queue and a group together in a state
 * other than ready, which is counted by walking. */
static bool
count_one(void *arg, const struct job *j)
{
    (void)j;
    (*(uint64_t *)arg)++;
    return true;
}

static uint64_t
peek_total(const struct broker *b, const struct peek *p)
{
    uint64_t n = 0;
    if (p->g == NULL && p->q == NULL) {
        for (uint32_t i = 0; i < b->nqueues; i++) {
            n += queue_n(b->qorder[i], p->st);
        }
    } else if (p->g == NULL) {
        n = queue_n(p->q, p->st);
    } else if (p->q == NULL) {
        n = p->g->jobs[p->st];
    } else if (p->st == JOB_READY) {
        n = queue_group_ready(p->q, p->g);
    } else {
        peek_walk(b, p, count_one, &n);
    }
    return n;
}

struct peek_pack {
    const struct broker *b;
    msgpack_packer *pk;
    uint32_t left;
};

static bool
pack_one(void *arg, const struct job *j)
{
    struct peek_pack *pp = arg;
    if (pp->left == 0) {
        return false;
    }
    pack_detail(pp->b, pp->pk, j, PREVIEW_PEEK);
    return --pp->left > 0;
}

/* Fills p from req; 0, or an error with c->why set. */
static int
peek_of(struct broker *b, const struct wire_msg *req, struct op_ctx *c, struct peek *p)
{
    p->q = NULL;
    p->g = NULL;
    p->st = JOB_READY;
    p->max = PEEK_DEFAULT;
    if (WIRE_HAS(req, WK_QUEUE) && (p->q = broker_queue_find(b, req->v[WK_QUEUE].s)) == NULL) {
        struct sl_str s = req->v[WK_QUEUE].s;
        snprintf(c->why, WHY_MAX, "queue '%.*s' does not exist", (int)s.n, s.p);
        return SL_ENOTFOUND;
    }
    if (WIRE_HAS(req, WK_GROUP) && (p->g = broker_group_find(b, req->v[WK_GROUP].s)) == NULL) {
        struct sl_str s = req->v[WK_GROUP].s;
        snprintf(c->why, WHY_MAX, "group '%.*s' does not exist", (int)s.n, s.p);
        return SL_ENOTFOUND;
    }
    if (WIRE_HAS(req, WK_STATE)) {
        int st = job_state_parse(req->v[WK_STATE].s);
        if (st < 0) {
            snprintf(c->why, WHY_MAX, "job.peek: 'state' is one of ready, reserved, delayed, dead");
            return SL_EBADREQ;
        }
        p->st = (enum job_state)st;
    }
    if (WIRE_HAS(req, WK_MAX)) {
        if (req->v[WK_MAX].u == 0 || req->v[WK_MAX].u > PEEK_MAX) {
            snprintf(c->why, WHY_MAX, "job.peek: 'max' is 1 to %u", PEEK_MAX);
            return SL_EBADREQ;
        }
        p->max = (uint32_t)req->v[WK_MAX].u;
    }
    return 0;
}

int
op_job_peek(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    struct peek p;
    int rv = peek_of(b, req, c, &p);
    if (rv != 0) {
        return rv;
    }
    uint64_t total = peek_total(b, &p);
    uint32_t listed = total < p.max ? (uint32_t)total : p.max;
    wire_pack_ok(pk, 3);
    wire_pack_key(pk, WK_JOBS);
    msgpack_pack_array(pk, listed);
    if (listed > 0) {
        struct peek_pack pp = { b, pk, listed };
        peek_walk(b, &p, pack_one, &pp);
    }
    key_u64(pk, WK_TOTAL, total);
    wire_pack_key(pk, WK_MORE);
    total > listed ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    return 0;
}

int
op_job_delete(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    uint64_t id = req->v[WK_ID].u;
    struct job *j = jobidx_get(&b->ids, id);
    if (j == NULL) {
        snprintf(c->why, WHY_MAX, "job %llu does not exist", (unsigned long long)id);
        return SL_ENOTFOUND;
    }
    if (j->state != JOB_READY && j->state != JOB_DELAYED) {
        snprintf(c->why, WHY_MAX, "job %llu is %s: only a ready or delayed job is deleted%s",
                 (unsigned long long)id, job_state_names[j->state],
                 j->state == JOB_DEAD ? " (a dead one by dead.purge)" : "");
        return SL_ECONFLICT;
    }
    const char *was = job_state_names[j->state];
    LOG(LOG_INFO, "job.deleted", "id=%llu group=%s queue=%s state=%s", (unsigned long long)id,
        j->group->name, j->queue->name, was);
    b->origin = req;
    broker_release_job(b, j);
    b->origin = NULL;
    wire_pack_ok(pk, 2);
    key_u64(pk, WK_ID, id);
    wire_pack_key(pk, WK_STATE);
    wire_pack_cstr(pk, was);
    return 0;
}
