/* The push path (broker.h, broker_push): a batch checked against the limits, stored ready or
 * delayed, made as one change, and the router told when it took a group over its high mark. */
#include "broker.h"

#include "change.h"
#include "dedup.h"
#include "err.h"
#include "journal.h"
#include "log.h"

/* The leader reacts to a flood at once rather than at its next tick: tells it when a push
 * took g's count (before: the count before it) over the lease's high mark. Only a group with
 * no route is the router's to move: a route someone set stays as it is. */
static void
tell_high(struct broker *b, const struct group *g, uint64_t before, int64_t now)
{
    uint64_t high = b->lease.high;
    if (high > 0 && g->route == NULL && before <= high && group_count(g) > high &&
        lease_held(&b->lease, broker_mono_ns(b))) {
        struct wire_msg ev;
        wire_msg_init(&ev);
        wire_set_str(&ev, WK_GROUP, g->name, g->name_len);
        wire_set_u64(&ev, WK_N, group_count(g));
        wire_set_u64(&ev, WK_HIGH, high);
        events_emit(b->events, "group.high", &ev, (uint64_t)(now / 1000000));
    }
}

/* The limits a push must fit: its payloads' sizes, the broker's jobs and bytes. *bytes:
 * the payloads' total. */
static int
push_fits(const struct broker *b, const struct wire_list *payloads, uint64_t *bytes)
{
    uint32_t n = payloads->n;
    *bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = wire_list_str(payloads, i).n;
        if (len > b->cfg.max_payload) {
            return SL_ETOOLARGE;
        }
        *bytes += len;
    }
    if (n > b->cfg.max_jobs - b->jobs || b->jobs > b->cfg.max_jobs ||
        *bytes > b->cfg.max_bytes - b->bytes || b->bytes > b->cfg.max_bytes) {
        return SL_EQUEUEFULL;
    }
    return 0;
}

/* When a push's jobs become ready, wall clock in ms (a delay's end rounded up, so that no job
 * is ready before it): 0 for now (no delay, or a time past); -1 when the delay is out of
 * range. */
static int64_t
push_due_ms(const struct push_req *req, int64_t now_ns)
{
    int64_t now_ms = now_ns / 1000000;
    int64_t due = 0;
    if (req->delay_ms > BROKER_DELAY_MAX_MS || (req->delay_ms > 0 && req->due_wall_ms > 0) ||
        req->due_wall_ms > now_ms + (int64_t)BROKER_DELAY_MAX_MS) {
        return -1;
    }
    if (req->delay_ms > 0) {
        due = (now_ns + (int64_t)req->delay_ms * 1000000 + 999999) / 1000000;
    } else if (req->due_wall_ms > 0) {
        due = req->due_wall_ms;
    }
    return due * 1000000 > now_ns ? due : 0;
}

/* broker_push once the batch is checked: stores it. */
static int
store(struct broker *b, const struct push_req *req, struct push_res *res, int64_t now,
      int64_t due_ms, uint64_t bytes)
{
    uint32_t n = req->payloads->n;
    struct queue *q;
    struct group *g = broker_group_find(b, req->group);
    if (req->queue != NULL) {
        if ((q = broker_queue_find(b, *req->queue)) == NULL) {
            return SL_ENOTFOUND;
        }
    } else {
        q = g != NULL && g->route != NULL ? g->route : b->dflt;
    }
    bool created = false;
    if (g == NULL) {
        if ((g = broker_group_add(b, req->group)) == NULL) {
            return SL_ENOMEM;
        }
        created = true;
    }
    struct job *j;
    size_t mem;
    int rv = SL_ENOMEM;
    if (queue_lane_make(q, g) != 0 || (due_ms > 0 && theap_reserve(&b->timers, n) != 0) ||
        (rv = jobidx_reserve(&b->ids, b->next_id, n)) != 0 ||
        (rv = SL_ENOMEM, job_block_new(req->payloads, n, &j, &mem) != 0)) {
        queue_lane_trim(g);
        if (created) {
            broker_group_remove(b, g);
        }
        return rv; /* SL_EBADREQ: the ids would run past the last (a forged journal) */
    }
    int64_t mono = broker_mono_ns(b);
    /* A delay counts from now to the nanosecond; the journal keeps its end in ms, rounded up
     * (a replay makes it ready at most 1 ms later, never earlier). */
    int64_t due_ns = req->delay_ms > 0 ? mono + (int64_t)req->delay_ms * 1000000
                                       : mono + (due_ms * 1000000 - now);
    uint32_t ttr = req->ttr_ms != 0 ? req->ttr_ms : b->cfg.ttr_ms;
    uint16_t attempts = req->max_attempts != 0 ? req->max_attempts : b->cfg.max_attempts;
    uint64_t first_id = b->next_id;
    uint64_t before = group_count(g);
    uint32_t seg = b->jr != NULL ? journal_segment(b->jr) : 0;
    struct job *first = j;
    for (; j != NULL; j = job_block_next(j)) {
        j->seg = seg;
        j->id = b->next_id++;
        j->enq_ns = now;
        j->ttr_ms = ttr;
        j->max_attempts = attempts;
        j->group = g;
        jobidx_add(&b->ids, j);
        if (due_ms > 0) {
            j->due_ns = due_ns;
            queue_job_set(q, j, JOB_DELAYED);
            theap_add(&b->timers, j); /* room: reserved above */
        } else {
            j->ready_ns = mono;
            queue_job_set(q, j, JOB_READY);
        }
    }
    if (due_ms > 0) {
        broker_timer_wake(b, due_ns);
    }
    q->pushed += n;
    g->pushed += n;
    g->pushed_all += n;
    b->flowc.pushed += n;
    b->jobs += n;
    b->bytes += bytes;
    b->mem_bytes += mem;
    uint64_t lsn = change_made(b, &(struct change){ .kind = CH_PUSH, .push = req, .queue = q,
                                                    .first_id = first_id, .n = n,
                                                    .wall_ns = now, .due_wall_ms = due_ms });
    if (req->keyed &&
        dedup_record(b->dedup, req->client, req->seq, first_id, n, lsn, broker_mono_ns(b)) != 0) {
        LOG(LOG_WARN, "dedup.nomem", "reason=\"key not remembered; a resend would store twice\"");
    }
    *res = (struct push_res){ first_id, n, q, false, false, lsn, first, false };
    tell_high(b, g, before, now);
    return 0;
}

int
broker_push(struct broker *b, const struct push_req *req, struct push_res *res)
{
    uint32_t n = req->payloads->n;
    uint64_t bytes = 0;
    int rv;

    int64_t now = broker_wall_ns(b);
    int64_t due_ms = push_due_ms(req, now);
    if (n == 0 || n > BROKER_PUSH_MAX || req->ttr_ms > BROKER_TTR_MAX_MS || due_ms < 0) {
        return SL_EBADREQ;
    }
    if (req->keyed) {
        uint64_t first_id = 0, lsn = 0;
        uint32_t seen_n = 0;
        enum dedup_verdict v = dedup_check(b->dedup, req->client, req->seq, broker_mono_ns(b),
                                           &first_id, &seen_n, &lsn);
        if (v != DEDUP_NEW) {
            *res = (struct push_res){ .first_id = first_id, .n = seen_n, .dup = true,
                                      .stale = v == DEDUP_STALE, .lsn = lsn };
            return 0;
        }
    }
    struct ukey *uk = NULL;
    if (req->unique.n > 0) {
        int64_t mono = broker_mono_ns(b);
        if (n != 1 || req->unique_hold >= UNIQUE_HOLDS) {
            return SL_EBADREQ;
        }
        unique_sweep(&b->uniq, &b->ids, mono, 2);
        const struct ukey *held = unique_held(&b->uniq, &b->ids, req->unique, mono);
        if (held != NULL) {
            /* answered once the holder's push is durable, as a repeat is */
            *res = (struct push_res){ .first_id = held->job_id, .duplicate = true,
                                      .lsn = held->lsn };
            return 0;
        }
    }
    if ((rv = push_fits(b, req->payloads, &bytes)) != 0 ||
        (req->unique.n > 0 && (rv = unique_prepare(&b->uniq, req->unique, &uk)) != 0)) {
        return rv;
    }
    rv = store(b, req, res, now, due_ms, bytes);
    if (uk != NULL) {
        if (rv == 0) {
            int64_t ttl = (int64_t)req->unique_ttl_ms;
            unique_commit(&b->uniq, uk, res->first_id,
                          ttl > 0 ? broker_mono_ns(b) + ttl * 1000000 : INT64_MAX,
                          (enum unique_hold)req->unique_hold, res->lsn);
        } else {
            free(uk);
        }
    }
    return rv;
}
