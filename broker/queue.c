#include "queue.h"

#include <stdlib.h>
#include <string.h>

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
    return q;
}

void
queue_free(struct queue *q)
{
    free(q);
}

static void
unlink_job(struct job *j)
{
    struct joblist *l = &j->queue->lists[j->state];
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
append_job(struct queue *q, struct job *j, enum job_state st)
{
    struct joblist *l = &q->lists[st];
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

void
queue_job_set(struct queue *q, struct job *j, enum job_state st)
{
    enum job_state from = (enum job_state)j->state;
    if (from != JOB_NONE) {
        unlink_job(j);
    }
    if (st != JOB_NONE) {
        append_job(q, j, st);
    }
    j->queue = q;
    j->state = (uint8_t)st;
    group_adjust(j->group, from, st);
}

static void
prepend_job(struct queue *q, struct job *j, enum job_state st)
{
    struct joblist *l = &q->lists[st];
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

void
queue_job_set_head(struct queue *q, struct job *j, enum job_state st)
{
    enum job_state from = (enum job_state)j->state;
    if (from != JOB_NONE) {
        unlink_job(j);
    }
    if (st != JOB_NONE) {
        prepend_job(q, j, st);
    }
    j->queue = q;
    j->state = (uint8_t)st;
    group_adjust(j->group, from, st);
}

void
queue_job_move_before(struct job *j, struct job *before)
{
    if (j == before || before->queue != j->queue || before->state != j->state ||
        j->state == JOB_NONE) {
        return;
    }
    struct joblist *l = &j->queue->lists[j->state];
    unlink_job(j);
    j->prev = before->prev;
    j->next = before;
    if (before->prev != NULL) {
        before->prev->next = j;
    } else {
        l->head = j;
    }
    before->prev = j;
    l->n++;
}

struct job *
queue_ready_head(const struct queue *q)
{
    return q->lists[JOB_READY].head;
}

uint64_t
queue_move_ready(struct queue *from, struct queue *to, const struct group *g)
{
    uint64_t moved = 0;
    if (from == to) {
        return 0;
    }
    for (struct job *j = from->lists[JOB_READY].head, *next; j != NULL; j = next) {
        next = j->next;
        if (g == NULL || j->group == g) {
            queue_job_set(to, j, JOB_READY);
            moved++;
        }
    }
    return moved;
}

uint64_t
queue_move_all(struct queue *from, struct queue *to)
{
    uint64_t moved = 0;
    if (from == to) {
        return 0;
    }
    for (int st = JOB_READY; st < JOB_STATES; st++) {
        struct job *j;
        while ((j = from->lists[st].head) != NULL) {
            queue_job_set(to, j, (enum job_state)st);
            moved++;
        }
    }
    return moved;
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
