#include "park.h"

#include "cluster.h"

#include "journal.h"

#include "err.h"
#include "flow.h"
#include "grate.h"
#include "log.h"
#include "ops.h"

#include <string.h>
#include <time.h>

void
park_add(struct broker *b, struct waiter *wt)
{
    /* A worker waiting with nothing in hand is idle, whatever it said last. */
    if (wt->w->reserved == 0 && strcmp(wt->w->state, "draining") != 0) {
        worker_set_state(wt->w, SL_STR_LIT("idle"));
    }
    wt->parked = true;
    wt->next = NULL;
    wt->prev = b->waiters_tail;
    if (b->waiters_tail != NULL) {
        b->waiters_tail->next = wt;
    } else {
        b->waiters_head = wt;
    }
    b->waiters_tail = wt;
    b->nwaiters++;
    broker_timer_wake(b, wt->deadline_ns);
}

static void
unpark(struct broker *b, struct waiter *wt)
{
    if (wt->prev != NULL) {
        wt->prev->next = wt->next;
    } else {
        b->waiters_head = wt->next;
    }
    if (wt->next != NULL) {
        wt->next->prev = wt->prev;
    } else {
        b->waiters_tail = wt->prev;
    }
    wt->next = wt->prev = NULL;
    wt->parked = false;
    b->nwaiters--;
}

bool
park_take(struct broker *b, struct waiter *wt)
{
    if (!wt->parked) {
        return false;
    }
    unpark(b, wt);
    return true;
}

/* Packs wt's reply with jobs[0..n) into a new message; without memory the waiter is answered
 * by an error. */
static void
answer(struct broker *b, struct waiter *wt, struct job **jobs, uint32_t n, struct waiter **out)
{
    unpark(b, wt);
    wt->rep = NULL;
    if (nng_msg_alloc(&wt->rep, 0) == 0) {
        ops_pack_reserve(b, wt->rep, jobs, n, wt->acked);
    }
    wt->next = *out;
    *out = wt;
}

void
park_serve(struct broker *b, struct waiter **out)
{
    for (struct waiter *wt = b->waiters_head, *next; wt != NULL; wt = next) {
        next = wt->next;
        uint32_t n = 0;
        if (wt->rtok != 0 && wt->rtok < wt->w->rtok_seen) {
            continue; /* the worker has asked again since: this reply would not reach it */
        }
        if (flow_reserve(b, wt->w, wt->max, &wt->from, b->scratch, &n) != 0) {
            break;
        }
        if (n > 0) {
            flow_reserve_sent(wt->w, wt->rtok, b->scratch, n);
            answer(b, wt, b->scratch, n, out);
        } else if (wt->from.n == 0) {
            /* Nothing for a waiter that takes from every queue: nothing for anyone. */
            break;
        }
    }
}

void
park_serve_later(struct broker *b)
{
    int64_t due = broker_mono_ns(b) + PARK_CLOSE_GRACE_MS * 1000000LL;
    if (b->serve_after_ns < due) {
        b->serve_after_ns = due;
    }
    broker_timer_wake(b, due);
}

void
park_expire(struct broker *b, int64_t now_ns, uint32_t pipe, struct waiter **out)
{
    for (struct waiter *wt = b->waiters_head, *next; wt != NULL; wt = next) {
        next = wt->next;
        if (wt->deadline_ns <= now_ns ||
            (pipe != 0 && (wt->pipe == pipe || wt->w->pipe == pipe))) {
            answer(b, wt, NULL, 0, out);
        }
    }
}

void
park_send_all(struct waiter *list)
{
    while (list != NULL) {
        struct waiter *next = list->next;
        list->next = NULL;
        /* A parked reserve that carried acks is answered once the journal has them. */
        if (list->commit_lsn == 0 || list->jr == NULL ||
            !journal_hold(list->jr, list, list->commit_lsn)) {
            list->commit_lsn = 0;
            list->send(list);
        }
        list = next;
    }
}

/* Fires the cron instants due (cron.h); returns when the next one is due, monotonic
 * (INT64_MAX: none). */
static int64_t
cron_round(struct broker *b, int64_t now_ns)
{
    int64_t wall = broker_wall_ns(b);
    int64_t next_ms = cron_tick(b, wall / 1000000);
    if (next_ms == INT64_MAX) {
        return INT64_MAX;
    }
    int64_t in_ns = next_ms * 1000000 - wall;
    return now_ns + (in_ns > 0 ? in_ns : 0);
}

static void *
timer_main(void *arg)
{
    struct broker *b = arg;

    pthread_mutex_lock(&b->lock);
    while (!b->stopping) {
        int64_t now = broker_mono_ns(b);
        struct waiter *out = NULL;
        /* A standby's state changes only by the stream; a leader out of its lease changes
         * nothing either (its timers resume, or its successor's run). */
        bool idle = b->standby || (b->cluster != NULL && !cluster_serving(b->cluster));
        int64_t next = now + 100000000LL;
        if (idle) {
            cron_idle(b); /* what comes before it serves again is missed */
        } else {
            next = flow_tick(b, now);
            int64_t cron_next = cron_round(b, now);
            next = cron_next < next ? cron_next : next;
        }
        journal_op_end(b);
        park_expire(b, now, 0, &out);
        if (b->nwaiters > 0 && now >= b->serve_after_ns) {
            park_serve(b, &out);
            b->serve_after_ns = 0;
        }
        for (struct waiter *wt = b->waiters_head; wt != NULL; wt = wt->next) {
            if (wt->deadline_ns < next) {
                next = wt->deadline_ns;
            }
        }
        /* Serving may have held groups back (their start rate spent) since flow_tick. */
        int64_t rate_due = idle ? INT64_MAX : grate_tick(b, now);
        if (rate_due < next) {
            next = rate_due;
        }
        if (b->serve_after_ns != 0 && b->serve_after_ns < next) {
            next = b->serve_after_ns;
        }
        if (out != NULL) {
            /* Sent outside the lock; park_wait_timer_sends lets the server free their
             * requests only once these sends are done. */
            b->timer_sending = true;
            pthread_mutex_unlock(&b->lock);
            park_send_all(out);
            pthread_mutex_lock(&b->lock);
            b->timer_sending = false;
            pthread_cond_broadcast(&b->timer_sent);
            continue;
        }
        /* Sleep until the next deadline, at most a second; anyone adding an earlier
         * deadline lowers timer_next_ns and signals. */
        int64_t cap = now + 1000000000LL;
        b->timer_next_ns = next < cap ? next : cap;
        struct timespec ts = { (time_t)(b->timer_next_ns / 1000000000LL),
                               (long)(b->timer_next_ns % 1000000000LL) };
        pthread_cond_timedwait(&b->timer_cond, &b->lock, &ts);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

void
park_wait_timer_sends(struct broker *b)
{
    while (b->timer_sending) {
        pthread_cond_wait(&b->timer_sent, &b->lock);
    }
}

int
park_timer_start(struct broker *b, pthread_t *t)
{
    return pthread_create(t, NULL, timer_main, b) == 0 ? 0 : SL_ENOMEM;
}

void
park_timer_stop(struct broker *b, pthread_t t)
{
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_signal(&b->timer_cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(t, NULL);
}
