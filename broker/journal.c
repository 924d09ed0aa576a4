#include "journal_int.h"

#include "change.h"

#include "clock.h"
#include "err.h"
#include "jfile.h"
#include "log.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- encoding ----------------------------------------------------------------------------- */

int
buf_room(struct buf *b, size_t extra)
{
    if (b->cap - b->n >= extra) {
        return 0;
    }
    size_t cap = b->cap != 0 ? b->cap : 65536;
    while (cap - b->n < extra) {
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL) {
        return SL_ENOMEM;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* A record under construction, in jr->op (b->lock held). Records are framed, checksummed and
 * handed to the writer together when the change ends (journal_op_end), one lock round for
 * all of them. */
struct rec_w {
    struct journal *jr;
    size_t start;  /* offset of its frame in jr->op */
    bool failed;
};

static void
w_bytes(struct rec_w *w, const void *p, size_t n)
{
    struct buf *b = &w->jr->op;
    if (w->failed || buf_room(b, n) != 0) {
        w->failed = true;
        return;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void
w_u8(struct rec_w *w, uint8_t v)
{
    w_bytes(w, &v, 1);
}

static void
w_u16(struct rec_w *w, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    w_bytes(w, b, 2);
}

static void
w_u32(struct rec_w *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    w_bytes(w, b, 4);
}

static void
w_u64(struct rec_w *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    w_bytes(w, b, 8);
}

static void
w_str(struct rec_w *w, const char *p, size_t n)
{
    w_u16(w, (uint16_t)n);
    w_bytes(w, p, n);
}

static void
w_blob(struct rec_w *w, const char *p, uint32_t n)
{
    w_u32(w, n);
    w_bytes(w, p, n);
}

static void
rec_begin(struct rec_w *w, struct journal *jr, enum rec type)
{
    w->jr = jr;
    w->failed = false;
    w->start = jr->op.n;
    if (buf_room(&jr->op, JF_FRAME_SIZE + 64) != 0) {
        w->failed = true;
        return;
    }
    jr->op.n += JF_FRAME_SIZE;
    w_u8(w, (uint8_t)type);
    jr->op_last = w->start;
    jr->op_last_type = type;
}

/* No memory for a record: the change stands in memory but cannot be made durable; nothing
 * is confirmed until the journal is written again in full. */
static void
rec_nomem(struct journal *jr)
{
    pthread_mutex_lock(&jr->mtx);
    jr->broken = true;
    snprintf(jr->err, sizeof(jr->err), "no memory for a journal record");
    pthread_mutex_unlock(&jr->mtx);
    LOG(LOG_ERROR, "journal.nomem", "reason=\"a record could not be buffered\"");
}

/* Ends the record; confirm: the change that made it is confirmed only once it is durable. */
static void
rec_end(struct rec_w *w, bool confirm)
{
    struct journal *jr = w->jr;
    if (w->failed) {
        jr->op.n = w->start;
        jr->op_last_type = 0;
        rec_nomem(jr);
        return;
    }
    /* The length now; the checksum when the change ends. */
    uint32_t n = (uint32_t)(jr->op.n - w->start - JF_FRAME_SIZE);
    uint8_t *frame = jr->op.p + w->start;
    for (int i = 0; i < 4; i++) {
        frame[i] = (uint8_t)(n >> (8 * i));
    }
    jr->active_bytes += JF_FRAME_SIZE + n;
    jr->op_confirm |= confirm;
}

/* Adds id to the op's last record if it is a list of type type, else starts one. */
static void
rec_list_add(struct journal *jr, enum rec type, uint64_t id, bool confirm)
{
    struct rec_w w = { jr, jr->op_last, false };
    if (jr->op_last_type != (int)type) {
        rec_begin(&w, jr, type);
    } else {
        jr->active_bytes -= jr->op.n - w.start; /* counted again by rec_end */
    }
    w_u64(&w, id);
    rec_end(&w, confirm);
}

/* Seals the op's records and hands them to the writer. */
static void
op_flush(struct journal *jr)
{
    if (jr->op.n == 0) {
        return;
    }
    for (size_t off = 0; off < jr->op.n;) {
        uint8_t *frame = jr->op.p + off;
        uint32_t n = (uint32_t)frame[0] | (uint32_t)frame[1] << 8 | (uint32_t)frame[2] << 16 |
                     (uint32_t)frame[3] << 24;
        jf_frame(frame, frame + JF_FRAME_SIZE, n);
        off += JF_FRAME_SIZE + n;
    }
    pthread_mutex_lock(&jr->mtx);
    if (buf_room(&jr->buf, jr->op.n) == 0) {
        memcpy(jr->buf.p + jr->buf.n, jr->op.p, jr->op.n);
        jr->buf.n += jr->op.n;
        if (jr->op_confirm) {
            jr->confirm_lsn = jr->buf_lsn + jr->buf.n;
        }
        pthread_mutex_unlock(&jr->mtx);
    } else {
        pthread_mutex_unlock(&jr->mtx);
        rec_nomem(jr);
    }
    jr->op.n = 0;
    jr->op_last_type = 0;
    jr->op_confirm = false;
}

static struct seg *
seg_of(struct journal *jr, uint32_t seq)
{
    if (jr->nsegs == 0 || seq < jr->segs[0].seq || seq - jr->segs[0].seq >= jr->nsegs) {
        return NULL;
    }
    return &jr->segs[seq - jr->segs[0].seq];
}

uint32_t
journal_segment(const struct journal *jr)
{
    return (uint32_t)jr->segs[jr->nsegs - 1].seq;
}

void
live_add(struct journal *jr, uint32_t seq, uint64_t n)
{
    struct seg *s = seg_of(jr, seq);
    if (s != NULL) {
        s->live += n;
        s->total += n;
        jr->live_total += n;
    }
}

void
live_sub(struct journal *jr, uint32_t seq)
{
    struct seg *s = seg_of(jr, seq);
    if (s != NULL && s->live > 0) {
        s->live--;
        jr->live_total--;
    }
}

static uint64_t appended_lsn(struct journal *jr);

static int64_t
wall_ms(int64_t ns)
{
    return ns / 1000000;
}

static uint64_t
journal_push(struct broker *b, const struct push_req *req, const struct queue *q,
             uint64_t first_id, uint32_t n, int64_t wall_ns)
{
    struct journal *jr = b->jr;
    struct rec_w w;
    uint32_t ttr = req->ttr_ms != 0 ? req->ttr_ms : b->cfg.ttr_ms;
    uint16_t att = req->max_attempts != 0 ? req->max_attempts : b->cfg.max_attempts;

    rec_begin(&w, jr, R_PUSH);
    w_u64(&w, (uint64_t)wall_ms(wall_ns));
    w_u64(&w, first_id);
    w_u32(&w, n);
    w_u32(&w, ttr);
    w_u16(&w, att);
    w_str(&w, req->group.p, req->group.n);
    w_str(&w, q->name, q->name_len);
    w_u8(&w, req->keyed);
    if (req->keyed) {
        w_str(&w, req->client.p, req->client.n);
        w_u64(&w, req->seq);
    }
    for (uint32_t i = 0; i < n; i++) {
        struct sl_str p = wire_list_str(req->payloads, i);
        w_blob(&w, p.p, p.n);
    }
    rec_end(&w, true);
    live_add(jr, journal_segment(jr), n);
    /* The change's records go to the writer whole, right after what is appended now. */
    return appended_lsn(jr) + jr->op.n;
}

static int64_t
due_wall_ms(const struct broker *b, const struct job *j)
{
    if (j->state != JOB_DELAYED) {
        return 0;
    }
    return wall_ms(broker_wall_ns(b) + (j->due_ns - broker_mono_ns(b)));
}

static void
job_rec(struct broker *b, const struct job *j, uint8_t where)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_JOB);
    w_u64(&w, j->id);
    w_u8(&w, j->state);
    w_u8(&w, where);
    w_u16(&w, j->attempts);
    w_u8(&w, j->crashes);
    w_u64(&w, (uint64_t)due_wall_ms(b, j));
    rec_end(&w, true);
}

static void
journal_job(struct broker *b, const struct job *j, bool head)
{
    if (j->state == JOB_RESERVED) {
        /* A reservation needs no confirmation: losing it only loses an attempt's count. */
        rec_list_add(b->jr, R_RESV, j->id, false);
        return;
    }
    job_rec(b, j, head ? WHERE_HEAD : WHERE_TAIL);
}

static void
journal_job_fields(struct broker *b, const struct job *j)
{
    job_rec(b, j, WHERE_STAY);
}

static void
journal_del(struct broker *b, const struct job *j)
{
    rec_list_add(b->jr, R_DELS, j->id, true);
    live_sub(b->jr, j->seg);
}

static void
journal_queue(struct broker *b, const struct queue *q)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_QUEUE);
    w_str(&w, q->name, q->name_len);
    w_u32(&w, q->priority);
    w_u32(&w, q->weight);
    w_u32(&w, q->max_inflight);
    w_u8(&w, q->paused);
    w_u8(&w, (uint8_t)q->order);
    rec_end(&w, true);
}

static void
journal_queue_destroy(struct broker *b, struct sl_str name)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_QDEL);
    w_str(&w, name.p, name.n);
    rec_end(&w, true);
}

static void
journal_route(struct broker *b, struct sl_str group, const struct queue *q)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_ROUTE);
    w_str(&w, group.p, group.n);
    w_str(&w, q != NULL ? q->name : "", q != NULL ? q->name_len : 0);
    rec_end(&w, true);
}

static void
journal_group_weight(struct broker *b, const struct group *g)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_GWEIGHT);
    w_str(&w, g->name, g->name_len);
    w_u32(&w, g->weight);
    rec_end(&w, true);
}

static void
journal_flush(struct broker *b)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_FLUSH);
    rec_end(&w, true);
}

/* --- the change path's consumer (change.h) ----------------------------------------------- */

static uint64_t
c_push(struct broker *b, const struct change *c)
{
    return journal_push(b, c->push, c->queue, c->first_id, c->n, c->wall_ns);
}

static uint64_t
c_job(struct broker *b, const struct change *c)
{
    journal_job(b, c->job, c->head);
    return 0;
}

static uint64_t
c_job_fields(struct broker *b, const struct change *c)
{
    journal_job_fields(b, c->job);
    return 0;
}

static uint64_t
c_job_gone(struct broker *b, const struct change *c)
{
    journal_del(b, c->job);
    return 0;
}

static uint64_t
c_queue(struct broker *b, const struct change *c)
{
    journal_queue(b, c->queue);
    return 0;
}

static uint64_t
c_queue_gone(struct broker *b, const struct change *c)
{
    journal_queue_destroy(b, c->name);
    return 0;
}

/* A route asked for a group the broker does not know, to none, changes nothing: no record. */
static uint64_t
c_route(struct broker *b, const struct change *c)
{
    if (c->group != NULL) {
        journal_route(b, c->name, c->queue);
    }
    return 0;
}

static uint64_t
c_group_weight(struct broker *b, const struct change *c)
{
    journal_group_weight(b, c->group);
    return 0;
}

static uint64_t
c_flush(struct broker *b, const struct change *c)
{
    (void)c;
    journal_flush(b);
    return 0;
}

static uint64_t (*const by_kind[CH_KINDS])(struct broker *, const struct change *) = {
    [CH_PUSH] = c_push,           [CH_JOB] = c_job,
    [CH_JOB_FIELDS] = c_job_fields, [CH_JOB_GONE] = c_job_gone,
    [CH_QUEUE] = c_queue,         [CH_QUEUE_GONE] = c_queue_gone,
    [CH_ROUTE] = c_route,         [CH_GROUP_WEIGHT] = c_group_weight,
    [CH_FLUSH] = c_flush,
    /* CH_PURGE: none; its deletions were recorded one by one (CH_JOB_GONE). */
};

bool
journal_attached(const struct broker *b)
{
    return b->jr != NULL;
}

uint64_t
journal_change(struct broker *b, const struct change *c)
{
    return by_kind[c->kind] != NULL ? by_kind[c->kind](b, c) : 0;
}

static void
put_job(struct broker *b, const struct job *j)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_PUT);
    w_u64(&w, j->id);
    w_str(&w, j->group->name, j->group->name_len);
    w_str(&w, j->queue->name, j->queue->name_len);
    w_u8(&w, j->state);
    w_u16(&w, j->attempts);
    w_u8(&w, j->crashes);
    w_u16(&w, j->max_attempts);
    w_u32(&w, j->ttr_ms);
    w_u64(&w, (uint64_t)wall_ms(j->enq_ns));
    w_u64(&w, (uint64_t)due_wall_ms(b, j));
    w_u64(&w, j->next != NULL ? j->next->id : 0);
    w_blob(&w, job_payload(j), j->len);
    rec_end(&w, true);
}

static void
snap_dedup(void *arg, struct sl_str client, uint64_t seq, uint64_t first_id, uint32_t n,
           int64_t last_ns)
{
    struct broker *b = arg;
    struct rec_w w;
    rec_begin(&w, b->jr, R_DEDUP);
    w_str(&w, client.p, client.n);
    w_u64(&w, seq);
    w_u64(&w, first_id);
    w_u32(&w, n);
    w_u64(&w, (uint64_t)wall_ms(broker_wall_ns(b) - (broker_mono_ns(b) - last_ns)));
    rec_end(&w, false);
}

static void
snap_dedup_seqs(void *arg, struct sl_str client, uint64_t lo, uint64_t hi, int64_t last_ns)
{
    struct broker *b = arg;
    struct rec_w w;
    rec_begin(&w, b->jr, R_DEDUP_SEQS);
    w_str(&w, client.p, client.n);
    w_u64(&w, lo);
    w_u64(&w, hi);
    w_u64(&w, (uint64_t)wall_ms(broker_wall_ns(b) - (broker_mono_ns(b) - last_ns)));
    rec_end(&w, false);
}

/* Everything that is not a job, at the start of a segment. */
static void
snapshot(struct broker *b)
{
    struct journal *jr = b->jr;
    struct rec_w w;

    rec_begin(&w, jr, R_SNAP_BEGIN);
    rec_end(&w, false);
    rec_begin(&w, jr, R_NEXTID);
    w_u64(&w, b->next_id);
    rec_end(&w, false);
    for (uint32_t i = 0; i < b->nqueues; i++) {
        journal_queue(b, b->qorder[i]);
    }
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        if (g->route != NULL) {
            journal_route(b, (struct sl_str){ g->name, g->name_len }, g->route);
        }
        if (g->weight != GROUP_WEIGHT_ONE) {
            journal_group_weight(b, g);
        }
    }
    dedup_foreach(b->dedup, snap_dedup_seqs, snap_dedup, b);
    rec_begin(&w, jr, R_SNAP_END);
    rec_end(&w, true);
}

static int
push_mark(struct mark **v, size_t *n, size_t *cap, uint64_t lsn, uint64_t seq)
{
    if (*n == *cap) {
        size_t c = *cap != 0 ? *cap * 2 : 8;
        struct mark *p = realloc(*v, c * sizeof(*p));
        if (p == NULL) {
            return SL_ENOMEM;
        }
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = (struct mark){ lsn, seq };
    return 0;
}

static uint64_t
appended_lsn(struct journal *jr)
{
    pthread_mutex_lock(&jr->mtx);
    uint64_t lsn = jr->buf_lsn + jr->buf.n;
    pthread_mutex_unlock(&jr->mtx);
    return lsn;
}

/* Starts segment seq at the current end of the stream, with its snapshot. */
static int
roll(struct broker *b)
{
    struct journal *jr = b->jr;
    uint64_t seq = jr->segs[jr->nsegs - 1].seq + 1;

    if (jr->nsegs == jr->capsegs) {
        size_t c = jr->capsegs * 2;
        struct seg *p = realloc(jr->segs, c * sizeof(*p));
        if (p == NULL) {
            return SL_ENOMEM;
        }
        jr->segs = p;
        jr->capsegs = c;
    }
    op_flush(jr);
    pthread_mutex_lock(&jr->mtx);
    int rv = push_mark(&jr->rolls, &jr->nrolls, &jr->caprolls, jr->buf_lsn + jr->buf.n, seq);
    pthread_mutex_unlock(&jr->mtx);
    if (rv != 0) {
        return rv;
    }
    jr->segs[jr->nsegs++] = (struct seg){ .seq = seq };
    jr->active_bytes = JF_HEADER_SIZE;
    snapshot(b);
    jr->segs[jr->nsegs - 1].snap_lsn = appended_lsn(jr) + jr->op.n;
    return 0;
}

/* Writes again, in full and in the current segment, every job whose full record is in
 * segment seq, so that the segment can go. O(jobs held). Each list is walked from its tail
 * and each record names the job after it, which replay has placed by then (written just
 * before, or recorded earlier in the stream), so replay puts it back where it was. */
static void
relocate(struct broker *b, uint64_t seq)
{
    struct journal *jr = b->jr;
    uint32_t to = journal_segment(jr);
    uint64_t moved = 0;
    for (uint32_t i = 0; i < b->nqueues; i++) {
        struct queue *q = b->qorder[i];
        for (int st = JOB_READY; st < JOB_STATES; st++) {
            for (struct job *j = st == JOB_READY ? queue_ready_last(q) : q->lists[st].tail;
                 j != NULL; j = st == JOB_READY ? queue_ready_prev(j) : j->prev) {
                if (j->seg == (uint32_t)seq) {
                    put_job(b, j);
                    live_sub(jr, j->seg);
                    j->seg = to;
                    live_add(jr, to, 1);
                    moved++;
                }
            }
        }
    }
    LOG(LOG_INFO, "journal.compact", "segment=%llu jobs=%llu", (unsigned long long)seq,
        (unsigned long long)moved);
}

/* A cluster leader begins: its epoch, recorded (replayed, it is what the stream's later
 * messages carry). */
static void
epoch_rec(struct broker *b)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_EPOCH);
    w_u64(&w, b->jr->epoch);
    w_str(&w, "", 0);
    rec_end(&w, true);
}

/* The stream is empty and this journal becomes its beginning: every job is written again in
 * the new segment, so that the segments before it, which the stream never held, can go. */
static void
relocate_all(struct broker *b)
{
    struct journal *jr = b->jr;
    for (size_t i = 0; i + 1 < jr->nsegs; i++) {
        relocate(b, jr->segs[i].seq);
        jr->segs[i].copied = true;
    }
}

/* Whether the current segment is closed now. A full one is; so is a large one when no job is
 * left anywhere, so that the journal shrinks back once the backlog is gone. With the disk
 * full, only a segment whose jobs are all gone, so that it can be deleted once the older ones
 * are, and not before it holds JOURNAL_FULL_ROLL bytes: every roll costs a snapshot. */
#define JOURNAL_FULL_ROLL (64u << 10)

static bool
roll_due(const struct journal *jr, bool full)
{
    if (full) {
        return jr->segs[jr->nsegs - 1].live == 0 && jr->active_bytes >= JOURNAL_FULL_ROLL;
    }
    return jr->active_bytes >= jr->cfg.segment_bytes ||
           (jr->live_total == 0 && jr->active_bytes >= (1u << 20) &&
            jr->active_bytes >= jr->cfg.segment_bytes / 16);
}

/* Whether the oldest segment's jobs are written again so that it can go: when few of them are
 * left (an eighth of those it recorded); with many segments, once half are gone. Copying a
 * segment whose jobs are mostly live would only move them along: a backlog larger than the
 * segments allowed would then be copied again at every roll. */
static bool
relocate_due(const struct journal *jr)
{
    const struct seg *s = &jr->segs[0];
    return jr->nsegs > 1 && s->live > 0 &&
           (s->live * 8 <= s->total || (jr->nsegs > 8 && s->live * 2 <= s->total));
}

void
journal_op_end(struct broker *b)
{
    struct journal *jr = b->jr;
    if (jr == NULL) {
        return;
    }
    op_flush(jr);
    /* Upkeep needs records written: none while the journal cannot be written (they would pile
     * up in memory, one roll and one copy of the same jobs per request), and with the disk
     * full only what lets segments go. */
    pthread_mutex_lock(&jr->mtx);
    bool broken = jr->broken, full = jr->full;
    pthread_mutex_unlock(&jr->mtx);
    if (!broken && roll_due(jr, full)) {
        if (roll(b) != 0) {
            LOG(LOG_ERROR, "journal.nomem", "reason=\"cannot start a new segment\"");
        }
    }
    if (!broken && !full && relocate_due(jr)) {
        relocate(b, jr->segs[0].seq);
        jr->segs[0].copied = true;
    }
    /* The upkeep's records confirm nothing: no request waits for them (a ping or a stats that
     * happens to end a segment is answered at once), and the segments they let go are deleted
     * only once they are durable. */
    jr->op_confirm = false;
    op_flush(jr);
    bool wake = false;
    while (jr->nsegs > 1 && jr->segs[0].live == 0) {
        /* The oldest segment goes once what stands in for it is durable: the next segment's
         * snapshot (everything that is not a job) and the copies of the jobs compaction wrote
         * again. The acks that emptied it need not be: a job in a deleted segment is as gone
         * as an acked one. So acks empty segments even while their records cannot be
         * written, and the space that frees lets the journal recover. */
        uint64_t lsn = jr->segs[1].snap_lsn;
        if (jr->segs[0].copied && lsn < appended_lsn(jr)) {
            lsn = appended_lsn(jr);
        }
        pthread_mutex_lock(&jr->mtx);
        if (push_mark(&jr->dels, &jr->ndels, &jr->capdels, lsn, jr->segs[0].seq) != 0) {
            pthread_mutex_unlock(&jr->mtx);
            break;
        }
        pthread_mutex_unlock(&jr->mtx);
        memmove(&jr->segs[0], &jr->segs[1], (jr->nsegs - 1) * sizeof(jr->segs[0]));
        jr->nsegs--;
        wake = true;
    }
    pthread_mutex_lock(&jr->mtx);
    if (jr->buf.n > 0 || wake) {
        pthread_cond_signal(&jr->cond);
    }
    pthread_mutex_unlock(&jr->mtx);
}

uint64_t
journal_confirm_lsn(const struct journal *jr)
{
    return jr->confirm_lsn;
}

bool
journal_broken(struct journal *jr, char *why, size_t cap)
{
    pthread_mutex_lock(&jr->mtx);
    bool broken = jr->broken || jr->full;
    if (jr->broken) {
        snprintf(why, cap, "the journal cannot be written (%s); pushes are refused until it can",
                 jr->err);
    } else if (jr->full) {
        snprintf(why, cap, "journal full: no space left in %s; pushes are refused until acks "
                 "free space (the %llu bytes kept for them are in use)", jr->dir,
                 (unsigned long long)jr->reserve_bytes);
    }
    pthread_mutex_unlock(&jr->mtx);
    return broken;
}

bool
journal_hold(struct journal *jr, struct waiter *wt, uint64_t lsn)
{
    pthread_mutex_lock(&jr->mtx);
    if (jr->durable_lsn >= lsn) {
        pthread_mutex_unlock(&jr->mtx);
        return false;
    }
    wt->commit_lsn = lsn;
    wt->next = NULL;
    if (jr->wait_tail != NULL) {
        jr->wait_tail->next = wt;
    } else {
        jr->wait_head = wt;
    }
    jr->wait_tail = wt;
    pthread_cond_signal(&jr->cond);
    pthread_mutex_unlock(&jr->mtx);
    return true;
}

void
journal_release_waiters(struct journal *jr)
{
    pthread_mutex_lock(&jr->mtx);
    while (jr->sending > 0) {
        pthread_cond_wait(&jr->durable, &jr->mtx);
    }
    struct waiter *list = jr->wait_head;
    jr->wait_head = jr->wait_tail = NULL;
    pthread_mutex_unlock(&jr->mtx);
    while (list != NULL) {
        struct waiter *next = list->next;
        nng_msg_free(list->rep);
        list->rep = NULL;
        list->next = NULL;
        list->commit_lsn = 0;
        list = next;
    }
}

void
journal_wait(struct journal *jr, uint64_t lsn)
{
    pthread_mutex_lock(&jr->mtx);
    pthread_cond_signal(&jr->cond);
    while (jr->durable_lsn < lsn && !jr->broken && !jr->stop) {
        pthread_cond_wait(&jr->durable, &jr->mtx);
    }
    pthread_mutex_unlock(&jr->mtx);
}

void
journal_stats(struct journal *jr, struct journal_stats *st)
{
    static const char *const names[] = { "always", "everysec", "never" };
    pthread_mutex_lock(&jr->mtx);
    st->mode = names[jr->cfg.fsync];
    st->bytes = jr->disk_bytes;
    st->segments = jr->disk_segments;
    st->fsyncs = jr->fsyncs;
    st->broken = jr->broken || jr->full;
    pthread_mutex_unlock(&jr->mtx);
    st->live_jobs = jr->live_total;
}

/* --- open / close ------------------------------------------------------------------------- */

void
jr_free(struct journal *jr)
{
    if (jr->lock_fd >= 0) {
        close(jr->lock_fd);
    }
    if (jr->fd >= 0) {
        close(jr->fd);
    }
    free(jr->segs);
    free(jr->op.p);
    free(jr->buf.p);
    free(jr->wbuf.p);
    free(jr->rolls);
    free(jr->dels);
    free(jr->segfirst);
    free(jr->jm);
    pthread_mutex_destroy(&jr->mtx);
    pthread_cond_destroy(&jr->cond);
    pthread_cond_destroy(&jr->durable);
    free(jr);
}

/* Replay keeps every job in b->byid, ready and delayed ones too (replay_finish takes those
 * out); a replay that failed leaves them there, and the broker, which drops only reserved and
 * dead jobs from byid as it frees them, would keep entries pointing at freed jobs. */
static void
replay_abandon(struct broker *b)
{
    for (uint32_t i = 0; i < b->nqueues; i++) {
        struct queue *q = b->qorder[i];
        for (struct job *j = queue_ready_first(q); j != NULL; j = queue_ready_next(j)) {
            hmap_del(&b->byid, &j->id, sizeof(j->id));
        }
        for (struct job *j = q->lists[JOB_DELAYED].head; j != NULL; j = j->next) {
            hmap_del(&b->byid, &j->id, sizeof(j->id));
        }
    }
}

/* No room even for a new segment (a broker stopped while its disk was full): it starts all
 * the same, as a journal that cannot be written, so that acks and purges can empty the old
 * segments; the writer creates segment seq once the space they free allows. */
static int
start_without_segment(struct journal *jr, uint64_t seq)
{
    if (push_mark(&jr->rolls, &jr->nrolls, &jr->caprolls, appended_lsn(jr), seq) != 0) {
        return SL_ENOMEM;
    }
    jr->broken = true;
    snprintf(jr->err, sizeof(jr->err), "%s", strerror(ENOSPC));
    LOG(LOG_WARN, "journal.no_segment", "dir=\"%s\" segment=%llu reason=\"no space left: "
        "pushes are refused and every change is answered io until acks free space\"", jr->dir,
        (unsigned long long)seq);
    return 0;
}

int
jr_prepare(struct journal **jp, const struct journal_cfg *cfg, char *why, size_t cap)
{
    struct journal *jr = calloc(1, sizeof(*jr));
    why[0] = '\0';
    *jp = NULL;
    if (jr == NULL) {
        snprintf(why, cap, "out of memory");
        return SL_ENOMEM;
    }
    jr->cfg = *cfg;
    jr->lock_fd = jr->fd = -1;
    pthread_mutex_init(&jr->mtx, NULL);
    pthread_cond_init(&jr->cond, NULL);
    pthread_cond_init(&jr->durable, NULL);
    if (snprintf(jr->dir, sizeof(jr->dir), "%s", cfg->dir) >= (int)sizeof(jr->dir)) {
        snprintf(why, cap, "data directory path too long");
        jr_free(jr);
        return SL_EIO;
    }
    if (mkdir(jr->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, cap, "cannot create %s: %s", jr->dir, strerror(errno));
        jr_free(jr);
        return SL_EIO;
    }
    char lock[PATH_MAX + 8];
    snprintf(lock, sizeof(lock), "%s/LOCK", jr->dir);
    if ((jr->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
        flock(jr->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(why, cap, "%s: %s", lock,
                 errno == EWOULDBLOCK ? "another broker is using this data directory"
                                      : strerror(errno));
        jr_free(jr);
        return SL_EIO;
    }
    *jp = jr;
    return 0;
}

int
journal_open(struct broker *b, const struct journal_cfg *cfg, char *why, size_t cap)
{
    struct journal *jr;
    int rv = jr_prepare(&jr, cfg, why, cap);
    if (rv != 0) {
        return rv;
    }
    rv = replay_all(b, jr, why, cap);
    if (rv != 0) {
        replay_abandon(b);
        jr_free(jr);
        return rv;
    }
    return journal_begin_writing(b, jr, why, cap);
}

int
journal_begin_writing(struct broker *b, struct journal *jr, char *why, size_t cap)
{
    /* The reserve a previous run left makes room for the new segment first; then it is
     * taken again, if the disk has room for it. */
    journal_reserve_drop(jr);
    /* Appends go to a new segment, which starts with the snapshot of what replay built. */
    uint64_t seq = jr->nsegs > 0 ? jr->segs[jr->nsegs - 1].seq + 1 : 1;
    int rv;
    if ((rv = add_seg(jr, seq)) == 0 && (rv = open_segment(jr, seq)) != 0 &&
        (rv == ENOSPC || rv == EDQUOT)) {
        rv = start_without_segment(jr, seq);
    }
    if (rv != 0) {
        snprintf(why, cap, "cannot create segment %016llx in %s: %s", (unsigned long long)seq,
                 jr->dir, rv == SL_ENOMEM ? "out of memory" : strerror(rv));
        jr_free(jr);
        return SL_EIO;
    }
    jr->active_bytes = JF_HEADER_SIZE;
    jr->js = jr->cfg.js;
    jr->epoch = jr->cfg.epoch;
    jr->on_fenced = jr->cfg.on_fenced;
    jr->fenced_arg = jr->cfg.fenced_arg;
    jr->repl_seg = seq;
    journal_reserve_open(jr);
    b->jr = jr;
    pthread_mutex_lock(&b->lock);
    snapshot(b);
    jr->segs[jr->nsegs - 1].snap_lsn = appended_lsn(jr) + jr->op.n;
    if (jr->js != NULL) {
        epoch_rec(b);
        if (jr->js_last == 0) {
            relocate_all(b);
        }
    }
    replay_hand_back(b);
    if (jr->nsegs > 1) {
        /* The newest segment replayed may have lost the end of its snapshot to a crash: the
         * one before it goes only once the new snapshot is durable. */
        jr->segs[jr->nsegs - 2].snap_lsn = jr->segs[jr->nsegs - 1].snap_lsn;
    }
    journal_op_end(b);
    pthread_mutex_unlock(&b->lock);
    jr->last_sync_ns = clock_mono_ns();
    if (pthread_create(&jr->thr, NULL, writer_main, jr) != 0) {
        b->jr = NULL;
        snprintf(why, cap, "cannot start the journal writer thread");
        jr_free(jr);
        return SL_EIO;
    }
    return 0;
}

void
journal_close(struct broker *b)
{
    struct journal *jr = b->jr;
    if (jr == NULL) {
        return;
    }
    pthread_mutex_lock(&b->lock);
    op_flush(jr);
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_lock(&jr->mtx);
    jr->stop = true;
    pthread_cond_signal(&jr->cond);
    pthread_mutex_unlock(&jr->mtx);
    pthread_join(jr->thr, NULL);
    pthread_mutex_lock(&b->lock);
    b->jr = NULL;
    pthread_mutex_unlock(&b->lock);
    jr_free(jr);
}
