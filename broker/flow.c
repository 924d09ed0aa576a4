#include "flow.h"

#include "change.h"
#include "grate.h"

#include "journal.h"

#include "err.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hand_back(struct broker *b, struct worker *w, bool crashed);

struct worker *
flow_worker(struct broker *b, struct sl_str name, uint32_t pipe)
{
    int64_t now = broker_mono_ns(b);
    struct worker *w = hmap_get(&b->workers, name.p, name.n);

    if (w != NULL) {
        w->seen_ns = now;
        if (pipe != 0 && w->pipe != pipe) {
            w->started_ns = now; /* its uptime counts on the current connection */
            /* The name speaks from a new connection: whatever held the old one (the same
             * process before a reconnect, or a process that died and whose close the broker
             * has not seen yet) no longer runs those jobs here. They go back now, not a
             * crash; the old connection's close, when it comes, finds nothing to return. */
            hand_back(b, w, false);
            LOG(LOG_INFO, "worker.moved", "worker=%s old_pipe=%u pipe=%u", w->name, w->pipe, pipe);
            w->pipe = pipe;
            /* Reserve tokens count per process and connection: start again. */
            w->rtok_seen = w->rtok_sent = 0;
            w->sent_n = 0;
            w->current = 0;
        }
        return w;
    }
    if ((w = worker_new(name, pipe, now)) == NULL) {
        return NULL;
    }
    if (hmap_put(&b->workers, w->name, w->name_len, w) != 0) {
        worker_free(w);
        return NULL;
    }
    w->prev = b->workers_tail;
    if (b->workers_tail != NULL) {
        b->workers_tail->next = w;
    } else {
        b->workers_head = w;
    }
    b->workers_tail = w;
    b->nworkers++;
    LOG(LOG_INFO, "worker.join", "worker=%s pipe=%u", w->name, pipe);
    return w;
}

static void
worker_forget(struct broker *b, struct worker *w)
{
    hmap_del(&b->workers, w->name, w->name_len);
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else {
        b->workers_head = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    } else {
        b->workers_tail = w->prev;
    }
    b->nworkers--;
    worker_free(w);
}

/* Makes sure that the id map and timer heap can take extra entries, so that a reservation
 * cannot fail half-way. */
static int
reserve_room(struct broker *b, uint32_t extra)
{
    if (theap_reserve(&b->timers, extra) != 0) {
        return SL_ENOMEM;
    }
    return 0;
}

int
flow_reserve(struct broker *b, struct worker *w, uint32_t max, const struct wire_list *from,
             struct job **out, uint32_t *n)
{
    int64_t now = broker_mono_ns(b);
    int64_t first_due = INT64_MAX;
    uint32_t k = 0;

    if (reserve_room(b, max) != 0) {
        return SL_ENOMEM;
    }
    bool alone = false;
    while (k < max && !alone) {
        struct queue *q = sched_pick(b, from);
        if (q == NULL) {
            break;
        }
        struct job *j = queue_ready_head(q);
        /* A suspect goes out alone: its worker died running one of its batch, which one
         * unknown, so that a death while running it is charged to it (see flow.h). */
        if (j->suspect && k > 0) {
            break;
        }
        if (j->group->rate != NULL && !grate_take(b, j->group, now)) {
            continue; /* held back now: the next pick passes it by */
        }
        if (j->suspect) {
            alone = true;
            j->suspect = 0;
        }
        uint64_t wait_us = now > j->ready_ns ? (uint64_t)(now - j->ready_ns) / 1000u : 0;
        wait_hist_add(&q->wait, wait_us);
        q->dispatched++;
        wait_window_add(&j->group->wait, now, wait_us);
        wait_window_add(&b->dispatch_win, now, wait_us);
        j->group->dispatched++;
        queue_job_set(q, j, JOB_RESERVED);
        j->owner = w;
        j->rsv_ns = now; /* ready_ns is read above: they share a slot */
        if (j->attempts < UINT16_MAX) {
            j->attempts++;
        }
        change_made(b, &(struct change){ .kind = CH_JOB, .job = j, .head = false });
        j->due_ns = now + (int64_t)j->ttr_ms * 1000000;
        if (j->due_ns < first_due) {
            first_due = j->due_ns;
        }
        theap_add(&b->timers, j);  /* room reserved above */
        out[k++] = j;
    }
    w->reserved += k;
    if (k == 1) {
        w->current = out[0]->id; /* a worker starts the job of a one-job reply at once */
    }
    b->flowc.dispatched += k;
    w->seen_ns = now;
    if (k > 0 && strcmp(w->state, "idle") == 0) {
        worker_set_state(w, SL_STR_LIT("busy"));
    }
    *n = k;
    if (k > 0) {
        broker_timer_wake(b, first_due);
    }
    return 0;
}

/* Ends j's reservation (it is JOB_RESERVED) without freeing it. */
static void
unreserve(struct broker *b, struct job *j)
{
    struct worker *w = j->owner;
    theap_del(&b->timers, j);
    if (w != NULL && w->reserved > 0) {
        w->reserved--;
    }
    j->owner = NULL;
}

/* Makes j dead. */
static void
kill_job(struct broker *b, struct job *j, const char *why)
{
    queue_job_set(j->queue, j, JOB_DEAD);
    change_made(b, &(struct change){ .kind = CH_JOB, .job = j, .head = false });
    LOG(LOG_INFO, "job.dead", "id=%llu group=%s queue=%s attempts=%u crashes=%u reason=%s",
        (unsigned long long)j->id, j->group->name, j->queue->name, j->attempts, j->crashes, why);
}

/* Keeps why j's attempt failed as its last error. Without memory for it only the text is
 * lost: the job goes on as it would. */
static void
note_error(struct broker *b, struct job *j, enum joberr_class cls, struct sl_str text)
{
    if (broker_job_error(b, j, cls, broker_wall_ns(b) / 1000000, text) != 0) {
        LOG(LOG_WARN, "job.error_lost", "id=%llu class=%s reason=\"out of memory\"",
            (unsigned long long)j->id, joberr_class_names[cls]);
    }
}

/* note_error with a formatted text. */
__attribute__((format(printf, 4, 5))) static void
note_errorf(struct broker *b, struct job *j, enum joberr_class cls, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    uint32_t len = n < 0 ? 0 : n >= (int)sizeof(text) ? sizeof(text) - 1 : (uint32_t)n;
    note_error(b, j, cls, (struct sl_str){ text, len });
}

/* The wait before j's next attempt after its nth failure (1: the first), by its queue's
 * retry settings: base, doubled n - 1 times, at most max, less up to jitter percent at
 * random. 0: at once. */
static int64_t
retry_delay_ms(struct broker *b, const struct job *j, unsigned n)
{
    const struct queue_retry *r = &j->queue->retry;
    if (r->base_ms == 0) {
        return 0;
    }
    uint64_t d = r->base_ms;
    for (unsigned i = 1; i < n && d < r->max_ms; i++) {
        d *= 2;
    }
    if (d > r->max_ms) {
        d = r->max_ms;
    }
    if (r->jitter > 0) {
        b->rng ^= b->rng << 13;
        b->rng ^= b->rng >> 7;
        b->rng ^= b->rng << 17;
        d -= d * r->jitter / 100 * (b->rng % 1024) / 1024;
    }
    return d > 0 ? (int64_t)d : 1;
}

/* j, out of every list (just unreserved or handed back), waits delay_ms before it is ready
 * again. */
static void
delay_job(struct broker *b, struct job *j, int64_t delay_ms)
{
    queue_job_set(j->queue, j, JOB_DELAYED);
    j->due_ns = broker_mono_ns(b) + delay_ms * 1000000;
    theap_add(&b->timers, j); /* room: the entry was just removed */
    broker_timer_wake(b, j->due_ns);
    change_made(b, &(struct change){ .kind = CH_JOB, .job = j, .head = false });
}

/* A failed attempt (nack or expiry): dead when attempts are used up, else ready again after
 * delay_ms, or (0) after its queue's retry backoff. */
static void
fail_attempt(struct broker *b, struct job *j, int64_t delay_ms, bool head, const char *why)
{
    j->queue->failed++;
    j->group->failed++;
    j->group->failed_all++;
    b->flowc.failed++;
    if (j->attempts < j->max_attempts && delay_ms <= 0) {
        delay_ms = retry_delay_ms(b, j, j->attempts);
    }
    if (j->attempts >= j->max_attempts) {
        kill_job(b, j, why);
    } else if (delay_ms > 0) {
        delay_job(b, j, delay_ms);
    } else {
        j->ready_ns = broker_mono_ns(b);
        if (head) {
            queue_job_set_head(j->queue, j, JOB_READY);
        } else {
            queue_job_set(j->queue, j, JOB_READY);
        }
        change_made(b, &(struct change){ .kind = CH_JOB, .job = j, .head = head });
    }
}

/* Fetches ahead what settling ids[i + 1] and ids[i + 2] will reach: the job two ahead, and
 * the group, lane and block of the one after this. A worker acks jobs of many groups in one
 * request once groups take turns, and each ack would otherwise wait for memory three or four
 * times. A prefetch never faults, and lookups only read. */
static void
settle_ahead(struct broker *b, const struct wire_list *ids, uint32_t i)
{
    if (i + 2 < ids->n) {
        uint64_t id = wire_list_u64(ids, i + 2);
        __builtin_prefetch(jobidx_get(&b->ids, id));
    }
    if (i + 1 < ids->n) {
        uint64_t id = wire_list_u64(ids, i + 1);
        const struct job *j = jobidx_get(&b->ids, id);
        if (j != NULL) {
            __builtin_prefetch(j->group);
            __builtin_prefetch(j->lane);
            __builtin_prefetch(j->block);
        }
    }
}

int
flow_settle(struct broker *b, enum flow_settle how, struct worker *w,
            const struct wire_list *ids, const struct wire_list *errors, uint64_t ms,
            uint64_t *done, uint64_t *missing)
{
    int64_t now = broker_mono_ns(b);
    *done = *missing = 0;

    for (uint32_t i = 0; i < ids->n; i++) {
        settle_ahead(b, ids, i);
        uint64_t id = wire_list_u64(ids, i);
        struct job *j = jobidx_get(&b->ids, id);
        if (j == NULL || j->state != JOB_RESERVED || (w != NULL && j->owner != w)) {
            (*missing)++;
            continue;
        }
        (*done)++;
        if (how == FLOW_ACK || how == FLOW_NACK) {
            j->group->run_ns += (uint64_t)(now > j->rsv_ns ? now - j->rsv_ns : 0);
        }
        switch (how) {
        case FLOW_ACK: {
            struct worker *owner = j->owner;
            unreserve(b, j);
            if (owner != NULL) {
                owner->done++;
            }
            j->queue->done++;
            j->group->done++;
            j->group->done_all++;
            b->flowc.done++;
            broker_release_job(b, j);
            break;
        }
        case FLOW_NACK: {
            struct sl_str text = errors != NULL && i < errors->n ? wire_list_str(errors, i)
                                                                 : (struct sl_str){ "", 0 };
            note_error(b, j, joberr_classify(text), text);
            unreserve(b, j);
            fail_attempt(b, j, (int64_t)ms, false, "nack");
            break;
        }
        case FLOW_RELEASE:
            unreserve(b, j);
            j->ready_ns = now;
            queue_job_set_head(j->queue, j, JOB_READY);
            change_made(b, &(struct change){ .kind = CH_JOB, .job = j, .head = true });
            break;
        case FLOW_TOUCH:
            j->due_ns = now + (int64_t)(ms != 0 ? ms : j->ttr_ms) * 1000000;
            theap_update(&b->timers, j);
            broker_timer_wake(b, j->due_ns);
            break;
        }
    }
    if (w != NULL) {
        w->seen_ns = now;
    }
    return 0;
}

/* A worker with no connection the broker follows (its requests came over HTTP: pipe 0) is
 * never told apart from one that stopped for good by a close. Once it holds no job and has
 * not been heard from for longer than any wait a reserve may ask for, it is forgotten, so that
 * names used once (a process per request) do not pile up. Looked for once a minute. */
#define FLOW_IDLE_FORGET_NS (15LL * 60 * 1000000000LL)
#define FLOW_IDLE_SWEEP_NS (60LL * 1000000000LL)

static bool
has_waiter(const struct broker *b, const struct worker *w)
{
    for (const struct waiter *wt = b->waiters_head; wt != NULL; wt = wt->next) {
        if (wt->w == w) {
            return true;
        }
    }
    return false;
}

static void
forget_idle(struct broker *b, int64_t now_ns)
{
    if (now_ns - b->idle_swept_ns < FLOW_IDLE_SWEEP_NS) {
        return;
    }
    b->idle_swept_ns = now_ns;
    for (struct worker *w = b->workers_head, *next; w != NULL; w = next) {
        next = w->next;
        if (w->pipe == 0 && w->reserved == 0 && now_ns - w->seen_ns > FLOW_IDLE_FORGET_NS &&
            !has_waiter(b, w)) {
            LOG(LOG_INFO, "worker.leave", "worker=%s pipe=0 done=%llu reason=idle", w->name,
                (unsigned long long)w->done);
            worker_forget(b, w);
        }
    }
}

int64_t
flow_tick(struct broker *b, int64_t now_ns)
{
    struct job *j;

    forget_idle(b, now_ns);
    while ((j = theap_top(&b->timers)) != NULL && j->due_ns <= now_ns) {
        if (j->state == JOB_DELAYED) {
            theap_del(&b->timers, j);
            j->ready_ns = now_ns;
            queue_job_set(j->queue, j, JOB_READY);
            change_made(b, &(struct change){ .kind = CH_JOB, .job = j, .head = false });
        } else if (j->state == JOB_RESERVED) {
            LOG(LOG_INFO, "job.expired", "id=%llu worker=%s ttr_ms=%u", (unsigned long long)j->id,
                j->owner != NULL ? ((struct worker *)j->owner)->name : "-", j->ttr_ms);
            note_errorf(b, j, JERR_TTR_EXPIRED, "TTR of %u ms expired on worker %s", j->ttr_ms,
                        j->owner != NULL ? ((struct worker *)j->owner)->name : "-");
            unreserve(b, j);
            fail_attempt(b, j, 0, true, "ttr");
        } else {
            theap_del(&b->timers, j); /* cannot happen: only those two states have deadlines */
        }
    }
    int64_t next = grate_tick(b, now_ns);
    return j != NULL && j->due_ns < next ? j->due_ns : next;
}

/* Charges j (handed back, ready at the head) the crash of the worker that ran it: it keeps
 * its attempt and is dead once its crashes reach max_crashes. A crash alone never makes it
 * dead for want of attempts: the charge is an inference (the job may have finished the moment
 * before its worker died, its ack lost), so only repeated crashes condemn it; with its
 * attempts used up, the next failed attempt (nack, TTR) does. */
static void
charge_crash(struct broker *b, struct job *j)
{
    j->attempts++;
    if (j->crashes < UINT8_MAX) {
        j->crashes++;
    }
    int64_t delay_ms;
    if (j->crashes >= b->cfg.max_crashes) {
        j->queue->failed++;
        j->group->failed++;
        j->group->failed_all++;
    b->flowc.failed++;
        kill_job(b, j, "crashes");
    } else if ((delay_ms = retry_delay_ms(b, j, j->crashes)) > 0) {
        /* Out of the ready list it was handed back to, to wait for its retry. */
        delay_job(b, j, delay_ms);
    } else {
        /* its charge; it stays where it is */
        change_made(b, &(struct change){ .kind = CH_JOB_FIELDS, .job = j });
    }
}

/* Hands w's reserved jobs back to the head of their queues, in order, with their attempt
 * given back. With crashed, the job w was running (w->current) is charged a crash and keeps
 * its attempt; if it ran none the broker knows of, the jobs of a worker that speaks reserve
 * tokens (and so reports what it runs) are marked suspect (see flow.h). */
static void
hand_back(struct broker *b, struct worker *w, bool crashed)
{
    uint64_t cur = w->current;
    struct job *ran = cur != 0 ? jobidx_get(&b->ids, cur) : NULL;
    uint32_t returned = 0;
    int64_t now = broker_mono_ns(b);

    if (ran != NULL && (ran->state != JOB_RESERVED || ran->owner != w)) {
        ran = NULL; /* settled since, or not this worker's */
    }

    for (uint32_t qi = 0; qi < b->nqueues && w->reserved > 0; qi++) {
        struct queue *q = b->qorder[qi];
        /* Walk backwards so that prepending keeps the jobs' order at the head. */
        for (struct job *j = q->lists[JOB_RESERVED].tail, *prev; j != NULL; j = prev) {
            prev = j->prev;
            if (j->owner != w) {
                continue;
            }
            unreserve(b, j);
            if (j->attempts > 0) {
                j->attempts--; /* given back below to the one that ran */
            }
            j->ready_ns = now;
            queue_job_set_head(q, j, JOB_READY);
            change_made(b, &(struct change){ .kind = CH_JOB, .job = j, .head = true });
            if (crashed && ran == NULL && w->rtok_seen != 0) {
                j->suspect = 1;
            }
            returned++;
        }
    }
    w->current = 0;
    w->rtok_sent = 0;
    w->sent_n = 0;
    if (ran != NULL && crashed) {
        LOG(LOG_INFO, "job.crash", "id=%llu worker=%s crashes=%u", (unsigned long long)ran->id,
            w->name, ran->crashes + 1u);
        note_errorf(b, ran, JERR_WORKER_DIED, "worker %s died running it", w->name);
        charge_crash(b, ran);
    }
    if (returned > 0) {
        LOG(LOG_INFO, "worker.lost", "worker=%s returned=%u charged=%llu", w->name, returned,
            (unsigned long long)(ran != NULL && crashed ? ran->id : 0));
    }
}

bool
flow_reserve_begin(struct broker *b, struct worker *w, uint64_t rtok, uint64_t got)
{
    if (rtok == 0) {
        return true; /* a worker without tokens */
    }
    if (rtok <= w->rtok_seen) {
        return false; /* overtaken by a newer reserve of the same worker */
    }
    w->rtok_seen = rtok;
    if (w->rtok_sent == 0 || got >= w->rtok_sent) {
        w->rtok_sent = 0;
        w->sent_n = 0;
        return true;
    }
    /* The worker never got the reply of reserve rtok_sent: its jobs go back, last first to
     * keep their order at the head, uncharged. */
    int64_t now = broker_mono_ns(b);
    uint32_t returned = 0;
    for (uint32_t i = w->sent_n; i-- > 0;) {
        uint64_t id = w->sent_ids[i];
        struct job *j = jobidx_get(&b->ids, id);
        if (j == NULL || j->state != JOB_RESERVED || j->owner != w) {
            continue; /* settled since, or handed back */
        }
        if (w->current == id) {
            w->current = 0;
        }
        unreserve(b, j);
        if (j->attempts > 0) {
            j->attempts--;
        }
        j->ready_ns = now;
        queue_job_set_head(j->queue, j, JOB_READY);
        change_made(b, &(struct change){ .kind = CH_JOB, .job = j, .head = true });
        returned++;
    }
    LOG(LOG_INFO, "reserve.unreceived", "worker=%s rtok=%llu got=%llu returned=%u", w->name,
        (unsigned long long)w->rtok_sent, (unsigned long long)got, returned);
    w->rtok_sent = 0;
    w->sent_n = 0;
    return true;
}

void
flow_reserve_sent(struct worker *w, uint64_t rtok, struct job *const *jobs, uint32_t n)
{
    if (rtok == 0 || n == 0) {
        return;
    }
    if (n > w->sent_cap) {
        uint64_t *ids = realloc(w->sent_ids, (size_t)n * sizeof(*ids));
        if (ids == NULL) {
            w->rtok_sent = 0; /* not remembered: a lost reply's jobs wait for their TTR */
            w->sent_n = 0;
            return;
        }
        w->sent_ids = ids;
        w->sent_cap = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        w->sent_ids[i] = jobs[i]->id;
    }
    w->sent_n = n;
    w->rtok_sent = rtok;
}

bool
flow_pipe_is_closed(const struct broker *b, uint32_t pipe)
{
    return pipe != 0 && hmap_get(&b->closed_pipes, &pipe, sizeof(pipe)) != NULL;
}

static void
remember_closed(struct broker *b, uint32_t pipe)
{
    uint32_t *slot = &b->closed_ring[b->closed_next];
    if (*slot != 0) {
        hmap_del(&b->closed_pipes, slot, sizeof(*slot));
    }
    *slot = pipe;
    if (hmap_put(&b->closed_pipes, slot, sizeof(*slot), slot) != 0) {
        *slot = 0; /* not remembered: the race it guards against stays possible */
    }
    b->closed_next = (b->closed_next + 1) % BROKER_CLOSED_PIPES;
}

void
flow_pipe_closed(struct broker *b, uint32_t pipe)
{
    if (pipe != 0) {
        remember_closed(b, pipe);
    }
    for (struct worker *w = b->workers_head, *next; w != NULL; w = next) {
        next = w->next;
        if (w->pipe == pipe) {
            hand_back(b, w, true);
            LOG(LOG_INFO, "worker.leave", "worker=%s pipe=%u done=%llu", w->name, pipe,
                (unsigned long long)w->done);
            worker_forget(b, w);
        }
    }
}

static int
select_dead(struct broker *b, const struct sl_str *queue, const struct sl_str *group,
            struct queue **qp, struct group **gp)
{
    *qp = NULL;
    *gp = NULL;
    if (queue != NULL && (*qp = broker_queue_find(b, *queue)) == NULL) {
        return SL_ENOTFOUND;
    }
    if (group != NULL && (*gp = broker_group_find(b, *group)) == NULL) {
        return SL_ENOTFOUND;
    }
    return 0;
}

int
flow_dead_list(struct broker *b, const struct sl_str *queue, const struct sl_str *group,
               uint32_t max, flow_dead_fn *fn, void *arg, uint64_t *total)
{
    struct queue *q;
    struct group *g;
    uint32_t listed = 0;
    int rv = select_dead(b, queue, group, &q, &g);

    if (rv != 0) {
        return rv;
    }
    *total = 0;
    for (uint32_t qi = 0; qi < b->nqueues; qi++) {
        if (q != NULL && b->qorder[qi] != q) {
            continue;
        }
        for (struct job *j = b->qorder[qi]->lists[JOB_DEAD].head; j != NULL; j = j->next) {
            if (g != NULL && j->group != g) {
                continue;
            }
            (*total)++;
            if (listed < max) {
                fn(arg, j);
                listed++;
            }
        }
    }
    return 0;
}

static void
revive_or_purge(struct broker *b, struct job *j, bool purge)
{
    if (purge) {
        broker_release_job(b, j);
        return;
    }
    j->attempts = 0;
    j->crashes = 0;
    j->ready_ns = broker_mono_ns(b);
    queue_job_set(j->queue, j, JOB_READY);
    change_made(b, &(struct change){ .kind = CH_JOB, .job = j, .head = false });
}

int
flow_dead_retry(struct broker *b, const struct wire_list *ids, const struct sl_str *queue,
                const struct sl_str *group, bool purge, uint64_t *n)
{
    struct queue *q;
    struct group *g;
    int rv;

    *n = 0;
    if (ids != NULL) {
        for (uint32_t i = 0; i < ids->n; i++) {
            uint64_t id = wire_list_u64(ids, i);
            struct job *j = jobidx_get(&b->ids, id);
            if (j != NULL && j->state == JOB_DEAD) {
                revive_or_purge(b, j, purge);
                (*n)++;
            }
        }
        return 0;
    }
    if (queue == NULL && group == NULL) {
        return SL_EBADREQ;
    }
    if ((rv = select_dead(b, queue, group, &q, &g)) != 0) {
        return rv;
    }
    for (uint32_t qi = 0; qi < b->nqueues; qi++) {
        if (q != NULL && b->qorder[qi] != q) {
            continue;
        }
        for (struct job *j = b->qorder[qi]->lists[JOB_DEAD].head, *next; j != NULL; j = next) {
            next = j->next;
            if (g == NULL || j->group == g) {
                revive_or_purge(b, j, purge);
                (*n)++;
            }
        }
    }
    return 0;
}
