#include "queue.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

#define CREDIT_JOB 1000u /* a job's cost in credit: weights are thousandths */
#define NOWHERE UINT32_MAX
#define SEQ_START (UINT64_C(1) << 62)

const char *const queue_order_names[QUEUE_ORDERS] = {
    [QUEUE_ORDER_GROUPS] = "groups",
    [QUEUE_ORDER_FIFO] = "fifo",
};

int
queue_order_parse(struct sl_str s)
{
    for (int i = 0; i < QUEUE_ORDERS; i++) {
        if (sl_str_eq(s, queue_order_names[i])) {
            return i;
        }
    }
    return -1;
}

struct queue *
queue_new(struct sl_str name, uint32_t priority, uint32_t weight, uint32_t max_inflight)
{
    struct queue *q = calloc(1, sizeof(*q));
    if (q == NULL || name.n > WIRE_NAME_MAX) {
        free(q);
        return NULL;
    }
    memcpy(q->name, name.p, name.n);
    q->name_len = name.n;
    q->priority = priority;
    q->weight = weight;
    q->max_inflight = max_inflight;
    q->order = QUEUE_ORDER_GROUPS;
    q->seq_tail = q->seq_head = SEQ_START;
    return q;
}

void
queue_free(struct queue *q)
{
    if (q != NULL) {
        free(q->heap);
    }
    free(q);
}

/* --- fifo order: a binary min-heap of active lanes, keyed by their head's rseq ----------- */

static uint64_t
key(const struct lane *l)
{
    return l->ready.head->rseq;
}

static void
heap_place(struct queue *q, struct lane *l, uint32_t i)
{
    q->heap[i] = l;
    l->heap_idx = i;
}

static void
heap_up(struct queue *q, uint32_t i)
{
    struct lane *l = q->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (key(q->heap[parent]) <= key(l)) {
            break;
        }
        heap_place(q, q->heap[parent], i);
        i = parent;
    }
    heap_place(q, l, i);
}

static void
heap_down(struct queue *q, uint32_t i)
{
    struct lane *l = q->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= q->nactive) {
            break;
        }
        if (c + 1 < q->nactive && key(q->heap[c + 1]) < key(q->heap[c])) {
            c++;
        }
        if (key(l) <= key(q->heap[c])) {
            break;
        }
        heap_place(q, q->heap[c], i);
        i = c;
    }
    heap_place(q, l, i);
}

/* Room in q->heap for n lanes, when q is in fifo order (or will be: now). */
static int
heap_room(struct queue *q, uint32_t n, bool now)
{
    if ((q->order != QUEUE_ORDER_FIFO && !now) || n <= q->heap_cap) {
        return 0;
    }
    uint32_t cap = q->heap_cap > 0 ? q->heap_cap : 16;
    while (cap < n) {
        cap *= 2;
    }
    struct lane **p = realloc(q->heap, cap * sizeof(*p));
    if (p == NULL) {
        return SL_ENOMEM;
    }
    q->heap = p;
    q->heap_cap = cap;
    return 0;
}

/* --- groups order: the turn, a ring of active lanes; q->cur has the turn --------------- */

/* The turn passes to the next lane. With many groups each pass reaches memory no recent
 * pass touched (the lane, its group, its first job), so the lane after it is fetched ahead:
 * a reserve of many jobs then waits for memory once, not three times per job. */
static void
turn_pass(struct queue *q)
{
    struct lane *l = q->cur->rnext;
    q->cur = l;
    l->credit += l->g->weight;
    const struct lane *next = l->rnext;
    __builtin_prefetch(next->rnext);
    __builtin_prefetch(next->g);
    __builtin_prefetch(&next->g->wait);
    __builtin_prefetch(next->ready.head);
}

static void
turn_join(struct queue *q, struct lane *l)
{
    if (q->cur == NULL) {
        l->rnext = l->rprev = l;
        q->cur = l;
        l->credit = l->g->weight;
        return;
    }
    l->rnext = q->cur; /* last in the turn: just before the lane that has it */
    l->rprev = q->cur->rprev;
    l->rprev->rnext = l;
    q->cur->rprev = l;
    l->credit = 0;
}

static void
turn_leave(struct queue *q, struct lane *l)
{
    if (q->cur == l) {
        if (l->rnext == l) {
            q->cur = NULL;
        } else {
            turn_pass(q);
        }
    }
    l->rprev->rnext = l->rnext;
    l->rnext->rprev = l->rprev;
    l->rnext = l->rprev = NULL;
    l->credit = 0;
}

/* --- lanes ------------------------------------------------------------------------------ */

static void
lane_deactivate(struct lane *l)
{
    struct queue *q = l->q;
    l->active = false;
    if (q->order == QUEUE_ORDER_GROUPS) {
        turn_leave(q, l);
        q->nactive--;
        return;
    }
    uint32_t i = l->heap_idx;
    struct lane *last = q->heap[--q->nactive];
    l->heap_idx = NOWHERE;
    if (last != l) {
        heap_place(q, last, i);
        heap_up(q, i);
        heap_down(q, last->heap_idx);
    }
}

static void
lane_activate(struct lane *l)
{
    struct queue *q = l->q;
    l->active = true;
    if (q->order == QUEUE_ORDER_GROUPS) {
        turn_join(q, l);
        q->nactive++;
    } else {
        heap_place(q, l, q->nactive++); /* room: heap_cap >= nlanes */
        heap_up(q, l->heap_idx);
    }
}

/* After l's ready list changed: joins or leaves the turn (or the heap), or takes its new
 * place in the heap. */
static void
lane_sync(struct lane *l)
{
    bool serves = l->ready.n > 0 && !l->g->held;
    if (!serves && l->active) {
        lane_deactivate(l);
    } else if (serves && !l->active) {
        lane_activate(l);
    } else if (l->active && l->q->order == QUEUE_ORDER_FIFO) {
        heap_up(l->q, l->heap_idx);
        heap_down(l->q, l->heap_idx);
    }
}

static struct lane *
lane_find(const struct queue *q, const struct group *g)
{
    for (struct lane *l = g->lanes; l != NULL; l = l->gnext) {
        if (l->q == q) {
            return l;
        }
    }
    return NULL;
}

int
queue_lane_make(struct queue *q, struct group *g)
{
    if (lane_find(q, g) != NULL) {
        return 0;
    }
    if (heap_room(q, q->nlanes + 1, false) != 0) {
        return SL_ENOMEM;
    }
    struct lane *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return SL_ENOMEM;
    }
    l->q = q;
    l->g = g;
    l->heap_idx = NOWHERE;
    l->gnext = g->lanes;
    g->lanes = l;
    l->qnext = q->lanes;
    if (q->lanes != NULL) {
        q->lanes->qprev = l;
    }
    q->lanes = l;
    q->nlanes++;
    return 0;
}

static void
lane_free(struct lane *l)
{
    struct queue *q = l->q;
    struct lane **p = &l->g->lanes;
    while (*p != l) {
        p = &(*p)->gnext;
    }
    *p = l->gnext;
    if (l->qprev != NULL) {
        l->qprev->qnext = l->qnext;
    } else {
        q->lanes = l->qnext;
    }
    if (l->qnext != NULL) {
        l->qnext->qprev = l->qprev;
    }
    q->nlanes--;
    free(l);
}

void
queue_lane_trim(struct group *g)
{
    for (struct lane *l = g->lanes, *next; l != NULL; l = next) {
        next = l->gnext;
        if (l->jobs == 0) {
            lane_free(l);
        }
    }
}

/* --- linking ---------------------------------------------------------------------------- */

static struct joblist *
list_of(struct job *j)
{
    return j->state == JOB_READY ? &j->lane->ready : &j->queue->lists[j->state];
}

static void
list_unlink(struct joblist *l, struct job *j)
{
    if (j->prev != NULL) {
        j->prev->next = j->next;
    } else {
        l->head = j->next;
    }
    if (j->next != NULL) {
        j->next->prev = j->prev;
    } else {
        l->tail = j->prev;
    }
    j->next = j->prev = NULL;
    l->n--;
}

static void
list_append(struct joblist *l, struct job *j)
{
    j->prev = l->tail;
    j->next = NULL;
    if (l->tail != NULL) {
        l->tail->next = j;
    } else {
        l->head = j;
    }
    l->tail = j;
    l->n++;
}

static void
list_prepend(struct joblist *l, struct job *j)
{
    j->next = l->head;
    j->prev = NULL;
    if (l->head != NULL) {
        l->head->prev = j;
    } else {
        l->tail = j;
    }
    l->head = j;
    l->n++;
}

/* Takes j out of its list; a job handed out (to_reserved) is charged to its lane's turn. */
static void
unlink_job(struct job *j, bool to_reserved)
{
    if (j->state != JOB_READY) {
        list_unlink(&j->queue->lists[j->state], j);
        return;
    }
    struct lane *l = j->lane;
    struct queue *q = l->q;
    list_unlink(&l->ready, j);
    q->lists[JOB_READY].n--;
    bool charged = to_reserved && q->order == QUEUE_ORDER_GROUPS && q->cur == l;
    if (charged) {
        l->credit = l->credit > CREDIT_JOB ? l->credit - CREDIT_JOB : 0;
    }
    lane_sync(l);
    if (charged && l->active && l->credit < CREDIT_JOB) {
        turn_pass(q);
    }
}

static void
link_job(struct queue *q, struct job *j, enum job_state st, bool head)
{
    if (st == JOB_READY) {
        if (head) {
            j->rseq = --q->seq_head;
            list_prepend(&j->lane->ready, j);
        } else {
            j->rseq = ++q->seq_tail;
            list_append(&j->lane->ready, j);
        }
        q->lists[JOB_READY].n++;
        lane_sync(j->lane);
    } else if (head) {
        list_prepend(&q->lists[st], j);
    } else {
        list_append(&q->lists[st], j);
    }
}

static void
job_set(struct queue *q, struct job *j, enum job_state st, bool head)
{
    enum job_state from = (enum job_state)j->state;
    struct lane *old = j->lane;
    if (from != JOB_NONE) {
        unlink_job(j, from == JOB_READY && st == JOB_RESERVED);
    }
    struct lane *l = old != NULL && old->q == q ? old : lane_find(q, j->group);
    if (l != old) {
        l->jobs++;
        if (old != NULL && --old->jobs == 0) {
            lane_free(old);
        }
    }
    j->queue = q;
    j->lane = l;
    j->state = (uint8_t)st;
    if (st != JOB_NONE) {
        link_job(q, j, st, head);
    } else if (--l->jobs == 0) {
        lane_free(l);
        j->lane = NULL;
    }
    group_adjust(j->group, from, st);
}

void
queue_job_set(struct queue *q, struct job *j, enum job_state st)
{
    job_set(q, j, st, false);
}

void
queue_job_set_head(struct queue *q, struct job *j, enum job_state st)
{
    job_set(q, j, st, true);
}

void
queue_job_move_before(struct job *j, struct job *before)
{
    if (j == before || before->queue != j->queue || before->state != j->state ||
        j->state == JOB_NONE || before->lane != j->lane) {
        return;
    }
    struct joblist *l = list_of(j);
    list_unlink(l, j);
    j->prev = before->prev;
    j->next = before;
    if (before->prev != NULL) {
        before->prev->next = j;
    } else {
        l->head = j;
    }
    before->prev = j;
    l->n++;
    if (j->state == JOB_READY) {
        j->rseq = before->rseq; /* it takes before's place in the arrival order */
        lane_sync(j->lane);
    }
}

void
queue_group_hold(struct group *g, bool held)
{
    if (g->held == held) {
        return;
    }
    g->held = held;
    for (struct lane *l = g->lanes; l != NULL; l = l->gnext) {
        lane_sync(l);
    }
}

/* --- reading ---------------------------------------------------------------------------- */

struct job *
queue_ready_head(struct queue *q)
{
    if (q->nactive == 0) {
        return NULL;
    }
    if (q->order == QUEUE_ORDER_FIFO) {
        return q->heap[0]->ready.head;
    }
    while (q->cur->credit < CREDIT_JOB) {
        turn_pass(q); /* ends: each pass adds at least GROUP_WEIGHT_MIN */
    }
    return q->cur->ready.head;
}

static struct job *
first_from(const struct lane *l)
{
    for (; l != NULL; l = l->qnext) {
        if (l->ready.head != NULL) {
            return l->ready.head;
        }
    }
    return NULL;
}

static struct job *
last_from(const struct lane *l)
{
    for (; l != NULL; l = l->qprev) {
        if (l->ready.tail != NULL) {
            return l->ready.tail;
        }
    }
    return NULL;
}

struct job *
queue_ready_first(const struct queue *q)
{
    return first_from(q->lanes);
}

struct job *
queue_ready_next(const struct job *j)
{
    return j->next != NULL ? j->next : first_from(j->lane->qnext);
}

struct job *
queue_ready_last(const struct queue *q)
{
    const struct lane *l = q->lanes;
    while (l != NULL && l->qnext != NULL) {
        l = l->qnext;
    }
    return last_from(l);
}

struct job *
queue_ready_prev(const struct job *j)
{
    return j->prev != NULL ? j->prev : last_from(j->lane->qprev);
}

uint64_t
queue_group_jobs(const struct queue *q, const struct group *g)
{
    const struct lane *l = lane_find(q, g);
    return l != NULL ? l->jobs : 0;
}

uint64_t
queue_group_ready(const struct queue *q, const struct group *g)
{
    const struct lane *l = lane_find(q, g);
    return l != NULL ? l->ready.n : 0;
}

struct job *
queue_group_first(const struct queue *q, const struct group *g)
{
    const struct lane *l = lane_find(q, g);
    return l != NULL ? l->ready.head : NULL;
}

struct job *
queue_group_last(const struct queue *q, const struct group *g)
{
    const struct lane *l = lane_find(q, g);
    return l != NULL ? l->ready.tail : NULL;
}

int64_t
queue_group_ready_since(const struct group *g)
{
    int64_t since = INT64_MAX;
    for (const struct lane *l = g->lanes; l != NULL; l = l->gnext) {
        if (l->ready.head != NULL && l->ready.head->ready_ns < since) {
            since = l->ready.head->ready_ns;
        }
    }
    return since;
}

/* --- changing order and moving ---------------------------------------------------------- */

int
queue_set_order(struct queue *q, enum queue_order order)
{
    if (q->order == order) {
        return 0;
    }
    if (order == QUEUE_ORDER_FIFO && heap_room(q, q->nlanes, true) != 0) {
        return SL_ENOMEM;
    }
    for (struct lane *l = q->lanes; l != NULL; l = l->qnext) {
        if (l->active) {
            lane_deactivate(l);
        }
    }
    q->order = order;
    for (struct lane *l = q->lanes; l != NULL; l = l->qnext) {
        lane_sync(l);
    }
    return 0;
}

int
queue_move_ready(struct queue *from, struct queue *to, struct group *g, uint64_t *moved)
{
    *moved = 0;
    struct lane *l = lane_find(from, g);
    if (from == to || l == NULL || l->ready.n == 0) {
        return 0;
    }
    if (queue_lane_make(to, g) != 0) {
        return SL_ENOMEM;
    }
    struct job *j;
    l->jobs++; /* kept while its jobs leave, so that l stays valid */
    while ((j = l->ready.head) != NULL) {
        queue_job_set(to, j, JOB_READY);
        (*moved)++;
    }
    if (--l->jobs == 0) {
        lane_free(l);
    }
    return 0;
}

int
queue_move_all(struct queue *from, struct queue *to, uint64_t *moved)
{
    *moved = 0;
    if (from == to) {
        return 0;
    }
    for (struct lane *l = from->lanes; l != NULL; l = l->qnext) {
        if (queue_lane_make(to, l->g) != 0 || queue_set_order(from, QUEUE_ORDER_FIFO) != 0) {
            for (struct lane *m = from->lanes; m != NULL; m = m->qnext) {
                queue_lane_trim(m->g);
            }
            return SL_ENOMEM;
        }
    }
    /* In arrival order across groups, as one list would hand them over: from is read as a
     * fifo queue (it is going away, its order does not matter any more). */
    struct job *j;
    while ((j = queue_ready_head(from)) != NULL) {
        queue_job_set(to, j, JOB_READY);
        (*moved)++;
    }
    /* The lanes of groups held by their start rate are in no heap: their jobs follow, each
     * group's in order. A lane is kept while its jobs leave, so that it stays valid. */
    for (struct lane *l = from->lanes, *next; l != NULL; l = next) {
        l->jobs++;
        while ((j = l->ready.head) != NULL) {
            queue_job_set(to, j, JOB_READY);
            (*moved)++;
        }
        next = l->qnext;
        if (--l->jobs == 0) {
            lane_free(l);
        }
    }
    for (int st = JOB_READY + 1; st < JOB_STATES; st++) {
        while ((j = from->lists[st].head) != NULL) {
            queue_job_set(to, j, (enum job_state)st);
            (*moved)++;
        }
    }
    return 0;
}

static const char *
check_lane(const struct queue *q, const struct lane *l, uint64_t *ready)
{
    uint64_t n = 0;
    for (const struct job *j = l->ready.head; j != NULL; j = j->next, n++) {
        if (j->lane != l || j->queue != q || j->group != l->g || j->state != JOB_READY) {
            return "a ready job is linked in another lane than its own";
        }
        if (j->next != NULL && j->next->prev != j) {
            return "a lane's links disagree";
        }
    }
    if (n != l->ready.n || (n > 0 && !l->g->held) != l->active || l->jobs < n) {
        return "a lane's counts disagree with its jobs";
    }
    if (lane_find(q, l->g) != l) {
        return "a lane is not its group's lane for its queue";
    }
    if (l->active && q->order == QUEUE_ORDER_FIFO &&
        (l->heap_idx >= q->nactive || q->heap[l->heap_idx] != l)) {
        return "an active lane is not in the heap";
    }
    *ready += n;
    return NULL;
}

const char *
queue_check(const struct queue *q)
{
    uint64_t ready = 0, lanes = 0, active = 0;
    for (const struct lane *l = q->lanes; l != NULL; l = l->qnext, lanes++) {
        const char *why = check_lane(q, l, &ready);
        if (why != NULL) {
            return why;
        }
        active += l->active;
    }
    if (ready != q->lists[JOB_READY].n || lanes != q->nlanes || active != q->nactive) {
        return "the queue's counts disagree with its lanes";
    }
    if (q->order == QUEUE_ORDER_GROUPS && active > 0) {
        uint64_t k = 0;
        const struct lane *l = q->cur;
        do {
            if (!l->active || l->rnext->rprev != l) {
                return "the turn holds a lane without ready jobs";
            }
            l = l->rnext;
        } while (l != q->cur && ++k <= active);
        if (k + 1 != active) {
            return "the turn does not hold every lane with ready jobs";
        }
    }
    for (uint32_t i = 1; q->order == QUEUE_ORDER_FIFO && i < q->nactive; i++) {
        if (key(q->heap[(i - 1) / 2]) > key(q->heap[i])) {
            return "the heap is out of order";
        }
    }
    return NULL;
}

uint64_t
queue_n(const struct queue *q, enum job_state st)
{
    return q->lists[st].n;
}

uint64_t
queue_jobs(const struct queue *q)
{
    uint64_t n = 0;
    for (int st = JOB_READY; st < JOB_STATES; st++) {
        n += q->lists[st].n;
    }
    return n;
}
