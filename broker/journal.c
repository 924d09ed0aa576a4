#include "journal.h"

#include "clock.h"
#include "err.h"
#include "jfile.h"
#include "log.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Record types: the first byte of each record's payload. Integers are little-endian; a
 * string is a u16 length and its bytes; a blob a u32 length and its bytes. */
enum rec {
    R_PUSH = 1,       /* u64 wall_ms, u64 first_id, u32 n, u32 ttr_ms, u16 max_attempts,
                         str group, str queue, u8 keyed [str client, u64 seq], n x blob */
    R_JOB = 2,        /* u64 id, u8 state, u8 head, u16 attempts, u8 crashes, i64 due_wall_ms */
    /* 3: unused */
    R_QUEUE = 4,      /* str name, u32 priority, u32 weight, u32 max_inflight, u8 paused */
    R_QDEL = 5,       /* str name */
    R_ROUTE = 6,      /* str group, str queue ("" for none) */
    R_FLUSH = 7,      /* nothing */
    R_NEXTID = 8,     /* u64 next id */
    R_DEDUP = 9,      /* str client, u64 seq, u64 first_id, u32 n, i64 last_wall_ms */
    R_PUT = 10,       /* u64 id, str group, str queue, u8 state, u16 attempts, u8 crashes,
                         u16 max_attempts, u32 ttr_ms, i64 enq_wall_ms, i64 due_wall_ms,
                         u64 before (the job after it in its list, 0: none), blob */
    R_SNAP_BEGIN = 11, /* a segment's snapshot follows (applied only from the first segment) */
    R_SNAP_END = 12,
    R_RESV = 13,      /* u64 id, ...: each reserved, its attempts counted (one reserve's jobs) */
    R_DELS = 14,      /* u64 id, ...: each deleted (an ack's, a purge's jobs) */
};

struct buf {
    uint8_t *p;
    size_t n, cap;
};

struct seg {
    uint64_t seq;
    uint64_t live;   /* jobs whose full record is in this segment */
    uint64_t total;  /* jobs ever recorded in full here */
};

struct mark {
    uint64_t lsn;
    uint64_t seq;
};

struct journal {
    struct journal_cfg cfg;
    char dir[PATH_MAX];
    int lock_fd;

    /* Appender side: b->lock held. */
    struct buf op;             /* the records of the change in progress, unsealed */
    size_t op_last;            /* offset in op of its last record's frame */
    int op_last_type;          /* that record's type, 0 if none */
    bool op_confirm;           /* a record in op needs confirming */
    struct seg *segs;          /* ascending; the last is the one appended to */
    size_t nsegs, capsegs;
    uint64_t active_bytes;     /* bytes appended to the current segment */
    uint64_t live_total;
    uint64_t confirm_lsn;

    pthread_mutex_t mtx;       /* taken inside b->lock, never the other way round */
    pthread_cond_t cond;       /* wakes the writer */
    pthread_cond_t durable;    /* broadcast when durable_lsn moves or a write fails */
    struct buf buf;            /* appended, not yet taken by the writer */
    uint64_t buf_lsn;          /* LSN of buf.p[0] */
    struct mark *rolls;        /* at lsn the stream goes on in segment seq */
    size_t nrolls, caprolls;
    struct mark *dels;         /* unlink segment seq once lsn is durable */
    size_t ndels, capdels;
    struct waiter *wait_head, *wait_tail; /* replies held until their lsn is durable */
    uint64_t durable_lsn;      /* confirmed: written (and synced with --fsync always) */
    bool broken;
    char err[160];
    bool stop;
    unsigned sending;          /* send_list calls in progress (outside mtx) */
    uint64_t fsyncs;
    uint64_t disk_bytes;       /* bytes in the segment files */
    uint64_t disk_segments;

    /* Writer side. */
    pthread_t thr;
    struct buf wbuf;           /* being written */
    uint64_t wbuf_lsn;
    size_t wdone;              /* bytes of wbuf on disk */
    int fd;
    uint64_t fd_seq;
    uint64_t fd_size;
    bool dirty;                /* written since the last fdatasync */
    int64_t last_sync_ns;
};

/* --- encoding ----------------------------------------------------------------------------- */

static int
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

static void
live_add(struct journal *jr, uint32_t seq, uint64_t n)
{
    struct seg *s = seg_of(jr, seq);
    if (s != NULL) {
        s->live += n;
        s->total += n;
        jr->live_total += n;
    }
}

static void
live_sub(struct journal *jr, uint32_t seq)
{
    struct seg *s = seg_of(jr, seq);
    if (s != NULL && s->live > 0) {
        s->live--;
        jr->live_total--;
    }
}

static int64_t
wall_ms(int64_t ns)
{
    return ns / 1000000;
}

void
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

#define WHERE_TAIL 0
#define WHERE_HEAD 1
#define WHERE_STAY 2

void
journal_job(struct broker *b, const struct job *j, bool head)
{
    if (j->state == JOB_RESERVED) {
        /* A reservation needs no confirmation: losing it only loses an attempt's count. */
        rec_list_add(b->jr, R_RESV, j->id, false);
        return;
    }
    job_rec(b, j, head ? WHERE_HEAD : WHERE_TAIL);
}

void
journal_job_fields(struct broker *b, const struct job *j)
{
    job_rec(b, j, WHERE_STAY);
}

void
journal_del(struct broker *b, const struct job *j)
{
    rec_list_add(b->jr, R_DELS, j->id, true);
    live_sub(b->jr, j->seg);
}

void
journal_queue(struct broker *b, const struct queue *q)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_QUEUE);
    w_str(&w, q->name, q->name_len);
    w_u32(&w, q->priority);
    w_u32(&w, q->weight);
    w_u32(&w, q->max_inflight);
    w_u8(&w, q->paused);
    rec_end(&w, true);
}

void
journal_queue_destroy(struct broker *b, struct sl_str name)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_QDEL);
    w_str(&w, name.p, name.n);
    rec_end(&w, true);
}

void
journal_route(struct broker *b, struct sl_str group, const struct queue *q)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_ROUTE);
    w_str(&w, group.p, group.n);
    w_str(&w, q != NULL ? q->name : "", q != NULL ? q->name_len : 0);
    rec_end(&w, true);
}

void
journal_flush(struct broker *b)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_FLUSH);
    rec_end(&w, true);
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
    }
    dedup_foreach(b->dedup, snap_dedup, b);
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
    jr->segs[jr->nsegs++] = (struct seg){ seq, 0, 0 };
    jr->active_bytes = JF_HEADER_SIZE;
    snapshot(b);
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
            for (struct job *j = q->lists[st].tail; j != NULL; j = j->prev) {
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

void
journal_op_end(struct broker *b)
{
    struct journal *jr = b->jr;
    if (jr == NULL) {
        return;
    }
    op_flush(jr);
    /* A full segment is closed; so is a large one when no job is left anywhere, so that the
     * journal shrinks back once the backlog is gone. */
    if (jr->active_bytes >= jr->cfg.segment_bytes ||
        (jr->live_total == 0 && jr->active_bytes >= (1u << 20) &&
         jr->active_bytes >= jr->cfg.segment_bytes / 16)) {
        if (roll(b) != 0) {
            LOG(LOG_ERROR, "journal.nomem", "reason=\"cannot start a new segment\"");
        }
    }
    if (jr->nsegs > 1 && jr->segs[0].live > 0 &&
        (jr->segs[0].live * 8 <= jr->segs[0].total || jr->nsegs > 8)) {
        relocate(b, jr->segs[0].seq);
    }
    op_flush(jr);
    bool wake = false;
    while (jr->nsegs > 1 && jr->segs[0].live == 0) {
        uint64_t lsn = appended_lsn(jr);
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
    bool broken = jr->broken;
    if (broken) {
        snprintf(why, cap, "the journal cannot be written (%s); pushes are refused until it can",
                 jr->err);
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
    st->broken = jr->broken;
    pthread_mutex_unlock(&jr->mtx);
    st->live_jobs = jr->live_total;
}

/* --- the writer --------------------------------------------------------------------------- */

/* Replaces a held reply by an io error. */
static void
fail_reply(struct waiter *wt, const char *err)
{
    char msg[512];
    snprintf(msg, sizeof(msg),
             "not confirmed: the journal cannot be written (%s); the change is kept in memory "
             "and written when the journal recovers; a resend with the same client and seq "
             "is not stored twice",
             err);
    if (wt->rep != NULL) {
        msgpack_packer pk;
        nng_msg_clear(wt->rep);
        msgpack_packer_init(&pk, wt->rep, wire_pack_into_msg);
        wire_pack_err(&pk, SL_EIO, msg);
    }
}

static int
do_sync(struct journal *jr)
{
    if (fdatasync(jr->fd) != 0) {
        return errno;
    }
    jr->dirty = false;
    jr->last_sync_ns = clock_mono_ns();
    pthread_mutex_lock(&jr->mtx);
    jr->fsyncs++;
    pthread_mutex_unlock(&jr->mtx);
    return 0;
}

/* Opens segment seq as the one written to. */
static int
open_segment(struct journal *jr, uint64_t seq)
{
    int fd, rv;
    if ((rv = jf_create(jr->dir, seq, &fd)) != 0) {
        return rv;
    }
    if (jr->fd >= 0) {
        close(jr->fd);
    }
    jr->fd = fd;
    jr->fd_seq = seq;
    jr->fd_size = JF_HEADER_SIZE;
    pthread_mutex_lock(&jr->mtx);
    jr->disk_bytes += JF_HEADER_SIZE;
    jr->disk_segments++;
    pthread_mutex_unlock(&jr->mtx);
    return 0;
}

/* Writes wbuf[wdone..) to the segment files, switching segment at each roll mark. On an
 * error the file is cut back to its last whole write, wdone says how far it got, and the
 * errno value is returned. */
static int
write_out(struct journal *jr)
{
    while (jr->wdone < jr->wbuf.n) {
        uint64_t pos = jr->wbuf_lsn + jr->wdone;
        uint64_t stop = jr->wbuf_lsn + jr->wbuf.n;
        pthread_mutex_lock(&jr->mtx);
        uint64_t next_seq = 0;
        for (size_t i = 0; i < jr->nrolls; i++) {
            if (jr->rolls[i].lsn == pos && jr->rolls[i].seq > jr->fd_seq) {
                next_seq = jr->rolls[i].seq;
            } else if (jr->rolls[i].lsn > pos && jr->rolls[i].lsn < stop) {
                stop = jr->rolls[i].lsn;
            }
        }
        pthread_mutex_unlock(&jr->mtx);
        if (next_seq != 0) {
            int rv;
            if (jr->cfg.fsync != JOURNAL_NEVER && jr->dirty && (rv = do_sync(jr)) != 0) {
                return rv;
            }
            if ((rv = open_segment(jr, next_seq)) != 0) {
                return rv;
            }
            continue;
        }
        const uint8_t *p = jr->wbuf.p + jr->wdone;
        size_t n = (size_t)(stop - pos), off = 0;
        while (off < n) {
            ssize_t k = write(jr->fd, p + off, n - off);
            if (k < 0) {
                if (errno == EINTR) {
                    continue;
                }
                int e = errno;
                if (ftruncate(jr->fd, (off_t)jr->fd_size) != 0 ||
                    lseek(jr->fd, (off_t)jr->fd_size, SEEK_SET) < 0) {
                    LOG(LOG_ERROR, "journal.truncate_failed", "error=\"%s\"", strerror(errno));
                }
                return e;
            }
            off += (size_t)k;
        }
        jr->fd_size += n;
        jr->wdone += n;
        jr->dirty = true;
        pthread_mutex_lock(&jr->mtx);
        jr->disk_bytes += n;
        pthread_mutex_unlock(&jr->mtx);
    }
    return 0;
}

static void
send_list(struct waiter *list)
{
    while (list != NULL) {
        struct waiter *next = list->next;
        list->next = NULL;
        list->commit_lsn = 0;
        list->send(list);
        list = next;
    }
}

static void
unlink_segments(struct journal *jr, struct mark *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat st;
        if (jf_path(path, sizeof(path), jr->dir, v[i].seq) != 0) {
            continue;
        }
        off_t size = stat(path, &st) == 0 ? st.st_size : 0;
        if (unlink(path) != 0) {
            LOG(LOG_WARN, "journal.unlink_failed", "segment=%s error=\"%s\"", path,
                strerror(errno));
            continue;
        }
        pthread_mutex_lock(&jr->mtx);
        jr->disk_bytes -= (uint64_t)size <= jr->disk_bytes ? (uint64_t)size : jr->disk_bytes;
        jr->disk_segments--;
        pthread_mutex_unlock(&jr->mtx);
        LOG(LOG_DEBUG, "journal.segment_deleted", "segment=%llu", (unsigned long long)v[i].seq);
    }
}

static void *
writer_main(void *arg)
{
    struct journal *jr = arg;
    int64_t retry_at = 0;

    pthread_mutex_lock(&jr->mtx);
    for (;;) {
        int64_t now = clock_mono_ns();
        bool sync_due = jr->cfg.fsync == JOURNAL_EVERYSEC && jr->dirty &&
                        now - jr->last_sync_ns >= 1000000000LL;
        bool have = jr->buf.n > 0 || jr->wdone < jr->wbuf.n || jr->ndels > 0 ||
                    (jr->broken && now >= retry_at);
        if (jr->broken && now < retry_at && !jr->stop) {
            have = false; /* wait for the retry time */
        }
        if (!have && !sync_due) {
            if (jr->stop) {
                break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50000000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&jr->cond, &jr->mtx, &ts);
            continue;
        }
        /* Take what was appended: after what is still unwritten, if anything is. */
        if (jr->wdone == jr->wbuf.n) {
            struct buf t = jr->wbuf;
            jr->wbuf = jr->buf;
            jr->buf = t;
            jr->buf.n = 0;
            jr->wbuf_lsn = jr->buf_lsn;
            jr->wdone = 0;
            jr->buf_lsn += jr->wbuf.n;
        } else if (jr->buf.n > 0 && buf_room(&jr->wbuf, jr->buf.n) == 0) {
            memcpy(jr->wbuf.p + jr->wbuf.n, jr->buf.p, jr->buf.n);
            jr->wbuf.n += jr->buf.n;
            jr->buf_lsn += jr->buf.n;
            jr->buf.n = 0;
        }
        uint64_t end = jr->wbuf_lsn + jr->wbuf.n;
        bool stopping = jr->stop;
        pthread_mutex_unlock(&jr->mtx);

        uint64_t start_seq = jr->fd_seq, start_size = jr->fd_size;
        bool from_start = jr->wdone == 0;
        int rv = write_out(jr);
        if (rv == 0 && jr->dirty &&
            (jr->cfg.fsync == JOURNAL_ALWAYS || stopping ||
             (jr->cfg.fsync == JOURNAL_EVERYSEC && clock_mono_ns() - jr->last_sync_ns >= 1000000000LL))) {
            rv = do_sync(jr);
            if (rv != 0 && from_start && jr->fd_seq == start_seq &&
                ftruncate(jr->fd, (off_t)start_size) == 0 &&
                lseek(jr->fd, (off_t)start_size, SEEK_SET) >= 0) {
                /* What fdatasync failed on may be gone from the page cache: it is written
                 * again from memory, and synced, before anything is confirmed. */
                pthread_mutex_lock(&jr->mtx);
                jr->disk_bytes -= jr->fd_size - start_size;
                pthread_mutex_unlock(&jr->mtx);
                jr->fd_size = start_size;
                jr->wdone = 0;
            } else if (rv != 0) {
                jr->dirty = true; /* synced again before anything is confirmed */
            }
        }

        pthread_mutex_lock(&jr->mtx);
        struct waiter *send = NULL, **tail = &send;
        struct mark *dels = NULL;
        size_t ndels = 0;
        if (rv == 0) {
            if (jr->broken) {
                LOG(LOG_INFO, "journal.recovered", "dir=\"%s\"", jr->dir);
            }
            jr->broken = false;
            jr->durable_lsn = end;
            jr->wbuf.n = jr->wdone = 0;
        } else {
            if (!jr->broken) {
                LOG(LOG_ERROR, "journal.write_failed", "dir=\"%s\" error=\"%s\"", jr->dir,
                    strerror(rv));
            }
            jr->broken = true;
            snprintf(jr->err, sizeof(jr->err), "%s", strerror(rv));
            retry_at = clock_mono_ns() + 1000000000LL;
        }
        pthread_cond_broadcast(&jr->durable);
        /* Replies whose records are durable go out; with a failure, those the failed write
         * covered go out as errors. */
        while (jr->wait_head != NULL &&
               (jr->wait_head->commit_lsn <= jr->durable_lsn || rv != 0 ||
                (stopping && jr->broken))) {
            struct waiter *wt = jr->wait_head;
            jr->wait_head = wt->next;
            if (wt->commit_lsn > jr->durable_lsn) {
                fail_reply(wt, jr->err);
            }
            *tail = wt;
            tail = &wt->next;
        }
        if (jr->wait_head == NULL) {
            jr->wait_tail = NULL;
        }
        *tail = NULL;
        /* Segments emptied by durable records go; so do roll marks already passed. */
        size_t k = 0;
        while (k < jr->ndels && jr->dels[k].lsn <= jr->durable_lsn) {
            k++;
        }
        if (k > 0 && (dels = malloc(k * sizeof(*dels))) != NULL) {
            memcpy(dels, jr->dels, k * sizeof(*dels));
            ndels = k;
            memmove(jr->dels, jr->dels + k, (jr->ndels - k) * sizeof(*dels));
            jr->ndels -= k;
        }
        k = 0;
        while (k < jr->nrolls && jr->rolls[k].seq <= jr->fd_seq) {
            k++;
        }
        if (k > 0) { /* rolls is NULL until the first roll: memmove must not see it */
            memmove(jr->rolls, jr->rolls + k, (jr->nrolls - k) * sizeof(jr->rolls[0]));
            jr->nrolls -= k;
        }
        bool quit = stopping && (jr->broken || (jr->buf.n == 0 && jr->wbuf.n == 0));
        jr->sending++;
        pthread_mutex_unlock(&jr->mtx);
        send_list(send);
        pthread_mutex_lock(&jr->mtx);
        jr->sending--;
        pthread_cond_broadcast(&jr->durable);
        pthread_mutex_unlock(&jr->mtx);
        /* What emptied the segments (acks, jobs written again) is on disk before they go,
         * whatever the --fsync mode. */
        if (ndels > 0 && jr->dirty && do_sync(jr) != 0) {
            /* Kept: the next start replays them and deletes them then. */
            LOG(LOG_WARN, "journal.segments_kept", "segments=%zu reason=\"fdatasync failed\"",
                ndels);
            ndels = 0;
        }
        unlink_segments(jr, dels, ndels);
        free(dels);
        pthread_mutex_lock(&jr->mtx);
        if (quit && jr->ndels == 0) {
            break;
        }
        if (quit && jr->broken) {
            break;
        }
    }
    /* Anyone still waiting gets an error: the journal stopped before their records were
     * durable. */
    struct waiter *rest = jr->wait_head;
    jr->wait_head = jr->wait_tail = NULL;
    jr->sending++;
    pthread_mutex_unlock(&jr->mtx);
    for (struct waiter *wt = rest; wt != NULL; wt = wt->next) {
        fail_reply(wt, "the broker is stopping");
    }
    send_list(rest);
    pthread_mutex_lock(&jr->mtx);
    jr->sending--;
    pthread_cond_broadcast(&jr->durable);
    pthread_mutex_unlock(&jr->mtx);
    return NULL;
}

/* --- replay ------------------------------------------------------------------------------- */

struct rd {
    const uint8_t *p;
    size_t n;
    bool bad;
};

static uint64_t
r_le(struct rd *r, unsigned bytes)
{
    if (r->bad || r->n < bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        v |= (uint64_t)r->p[i] << (8 * i);
    }
    r->p += bytes;
    r->n -= bytes;
    return v;
}

static struct sl_str
r_str(struct rd *r, unsigned lenbytes)
{
    uint32_t n = (uint32_t)r_le(r, lenbytes);
    if (r->bad || r->n < n) {
        r->bad = true;
        return (struct sl_str){ "", 0 };
    }
    struct sl_str s = { (const char *)r->p, n };
    r->p += n;
    r->n -= n;
    return s;
}

/* A time in milliseconds since the epoch, as wall_ms() wrote it: bad unless it is between 0
 * and REPLAY_MS_MAX, so that converting it to nanoseconds and between the clocks cannot
 * overflow (a damaged record whose checksum still matches must not make replay undefined). */
#define REPLAY_MS_MAX (INT64_MAX / 1000000 / 2) /* about the year 2116 */

static int64_t
r_ms(struct rd *r)
{
    uint64_t v = r_le(r, 8);
    if (v > (uint64_t)REPLAY_MS_MAX) {
        r->bad = true;
        return 0;
    }
    return (int64_t)v;
}

/* A queue, group or client name: bad unless it obeys the wire's name rule. */
static struct sl_str
r_name(struct rd *r)
{
    struct sl_str s = r_str(r, 2);
    if (!r->bad && !wire_name_ok(s.p, s.n)) {
        r->bad = true;
    }
    return s;
}

struct replay {
    struct broker *b;
    struct journal *jr;
    int64_t now_wall_ns, now_mono_ns;
    int64_t rec_wall_ns;      /* the time of the record being replayed */
    uint32_t seg;             /* the segment being read */
    bool first;               /* reading the first segment: its snapshot applies */
    bool in_snap;
    uint64_t records, jobs_pushed;
    struct sl_str *pay;       /* scratch for a push's payloads */
    uint32_t npay;
};

static int64_t
replay_wall(void *arg)
{
    return ((struct replay *)arg)->rec_wall_ns;
}

static int64_t
replay_mono(void *arg)
{
    struct replay *r = arg;
    return r->now_mono_ns - (r->now_wall_ns - r->rec_wall_ns);
}

static int64_t
mono_of_wall_ms(const struct replay *r, int64_t ms)
{
    return r->now_mono_ns - (r->now_wall_ns - ms * 1000000);
}

static struct job *
byid(struct broker *b, uint64_t id)
{
    return hmap_get(&b->byid, &id, sizeof(id));
}

static int
set_state(struct replay *r, struct job *j, unsigned st, bool head, int64_t due_ms)
{
    struct broker *b = r->b;
    if (st < JOB_READY || st >= JOB_STATES) {
        return SL_EBADREQ;
    }
    theap_del(&b->timers, j);
    j->owner = NULL;
    if (st == JOB_DELAYED) {
        queue_job_set(j->queue, j, JOB_DELAYED);
        j->due_ns = mono_of_wall_ms(r, due_ms);
        return theap_add(&b->timers, j);
    }
    if (head) {
        queue_job_set_head(j->queue, j, (enum job_state)st);
    } else {
        queue_job_set(j->queue, j, (enum job_state)st);
    }
    return 0;
}

static int
apply_push(struct replay *r, struct rd *d)
{
    struct broker *b = r->b;
    int64_t wall = r_ms(d);
    uint64_t first_id = r_le(d, 8);
    uint32_t n = (uint32_t)r_le(d, 4);
    struct push_req req = { 0 };
    req.ttr_ms = (uint32_t)r_le(d, 4);
    req.max_attempts = (uint16_t)r_le(d, 2);
    req.group = r_name(d);
    struct sl_str qname = r_name(d);
    req.keyed = r_le(d, 1) != 0;
    if (req.keyed) {
        req.client = r_name(d);
        req.seq = r_le(d, 8);
    }
    if (d->bad || n == 0 || n > BROKER_PUSH_MAX) {
        return SL_EBADREQ;
    }
    if (n > r->npay) {
        struct sl_str *p = realloc(r->pay, n * sizeof(*p));
        if (p == NULL) {
            return SL_ENOMEM;
        }
        r->pay = p;
        r->npay = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        r->pay[i] = r_str(d, 4);
    }
    if (d->bad) {
        return SL_EBADREQ;
    }
    struct wire_list pl = { n, NULL, r->pay, NULL };
    req.payloads = &pl;
    /* The queue it went to; gone since (destroyed later in a segment now deleted): default. */
    req.queue = broker_queue_find(b, qname) != NULL ? &qname : NULL;
    struct sl_str dflt = SL_STR_LIT(BROKER_DEFAULT_QUEUE);
    if (req.queue == NULL) {
        req.queue = &dflt;
    }
    r->rec_wall_ns = wall * 1000000;
    if (b->next_id < first_id) {
        b->next_id = first_id;
    }
    struct push_res res;
    int rv = broker_push(b, &req, &res);
    if (rv != 0) {
        return rv;
    }
    if (res.dup || res.queue == NULL) {
        return 0; /* already replayed from an older copy */
    }
    if (res.first_id != first_id) {
        /* Its ids were given out before it (a snapshot's next id, a job record): records that
         * cannot come from one broker's history. Replayed anyway, later records naming these
         * ids would apply to other jobs, or to none, depending on which segments are left. */
        return SL_EBADREQ;
    }
    /* The new jobs are the last n of the queue's ready list. */
    struct queue *q = broker_queue_find(b, *req.queue);
    struct job *j = q->lists[JOB_READY].tail;
    for (uint32_t i = 0; i < n && j != NULL; i++, j = j->prev) {
        j->seg = r->seg;
        if (hmap_put(&b->byid, &j->id, sizeof(j->id), j) != 0) {
            return SL_ENOMEM;
        }
    }
    live_add(r->jr, r->seg, n);
    r->jobs_pushed += n;
    return 0;
}

static void
forget_job(struct replay *r, struct job *j)
{
    hmap_del(&r->b->byid, &j->id, sizeof(j->id));
    live_sub(r->jr, j->seg);
    broker_release_job(r->b, j);
}

static int
apply_put(struct replay *r, struct rd *d)
{
    struct broker *b = r->b;
    struct job_restore jr = { 0 };
    jr.id = r_le(d, 8);
    jr.group = r_name(d);
    jr.queue = r_name(d);
    jr.state = (uint8_t)r_le(d, 1);
    jr.attempts = (uint16_t)r_le(d, 2);
    jr.crashes = (uint8_t)r_le(d, 1);
    jr.max_attempts = (uint16_t)r_le(d, 2);
    jr.ttr_ms = (uint32_t)r_le(d, 4);
    jr.enq_ns = r_ms(d) * 1000000;
    int64_t due_ms = r_ms(d);
    uint64_t before = r_le(d, 8);
    jr.payload = r_str(d, 4);
    if (d->bad || jr.state < JOB_READY || jr.state >= JOB_STATES || jr.max_attempts == 0) {
        return SL_EBADREQ;
    }
    jr.due_ns = mono_of_wall_ms(r, due_ms);
    struct job *old = byid(b, jr.id);
    if (old != NULL) {
        forget_job(r, old);
    }
    struct job *j;
    int rv = broker_restore_job(b, &jr, &j);
    if (rv != 0) {
        return rv;
    }
    struct job *next = before != 0 ? byid(b, before) : NULL;
    if (next != NULL) {
        queue_job_move_before(j, next); /* only within the same list */
    }
    j->seg = r->seg;
    live_add(r->jr, r->seg, 1);
    if (b->next_id <= jr.id) {
        b->next_id = jr.id + 1;
    }
    return hmap_put(&b->byid, &j->id, sizeof(j->id), j);
}

static int
apply(struct replay *r, const uint8_t *p, uint32_t n)
{
    struct broker *b = r->b;
    struct rd d = { p + 1, n - 1, false };
    uint64_t moved, x, y;
    int rv = 0;

    r->records++;
    /* A later segment's snapshot repeats what replay already built: its records are checked
     * but not applied. Checked, because once the segments before it are deleted it is the
     * snapshot that applies: a record good or bad must be so wherever its segment stands, or
     * a start that succeeded could leave a journal that the next start refuses. */
    bool check_only = r->in_snap && !r->first;
    if (r->in_snap && p[0] != R_SNAP_END && p[0] != R_NEXTID && p[0] != R_QUEUE &&
        p[0] != R_ROUTE && p[0] != R_DEDUP) {
        return SL_EBADREQ; /* a snapshot holds nothing else (snapshot()) */
    }
    switch (p[0]) {
    case R_SNAP_BEGIN:
        r->in_snap = true;
        return 0;
    case R_SNAP_END:
        r->in_snap = false;
        return 0;
    case R_PUSH:
        return apply_push(r, &d);
    case R_PUT:
        return apply_put(r, &d);
    case R_JOB: {
        uint64_t id = r_le(&d, 8);
        unsigned st = (unsigned)r_le(&d, 1);
        unsigned where = (unsigned)r_le(&d, 1);
        uint16_t attempts = (uint16_t)r_le(&d, 2);
        uint8_t crashes = (uint8_t)r_le(&d, 1);
        int64_t due = r_ms(&d);
        /* Checked whether or not the job is still there, so that a record is good or bad
         * whatever segments precede it: a start that succeeded must not leave a journal
         * that fails the next one once older segments are deleted. */
        if (d.bad || st < JOB_READY || st >= JOB_STATES || where > WHERE_STAY) {
            return SL_EBADREQ;
        }
        struct job *j = byid(b, id);
        if (j == NULL) {
            return 0; /* deleted, or recorded in full in a later segment */
        }
        j->attempts = attempts;
        j->crashes = crashes;
        if (where == WHERE_STAY && st == j->state) {
            return 0;
        }
        return set_state(r, j, st, where == WHERE_HEAD, due);
    }
    case R_DELS:
    case R_RESV:
        if (d.n == 0 || d.n % 8 != 0) {
            return SL_EBADREQ;
        }
        while (d.n > 0) {
            struct job *j = byid(b, r_le(&d, 8));
            if (j == NULL) {
                continue; /* deleted, or recorded in full in a later segment */
            }
            if (p[0] == R_DELS) {
                forget_job(r, j);
            } else {
                if (j->attempts < UINT16_MAX) {
                    j->attempts++;
                }
                if ((rv = set_state(r, j, JOB_RESERVED, false, 0)) != 0) {
                    return rv;
                }
            }
        }
        return 0;
    case R_QUEUE: {
        struct sl_str name = r_name(&d);
        struct queue_settings s = { true, true, true, 0, 0, 0 };
        s.priority = (uint32_t)r_le(&d, 4);
        s.weight = (uint32_t)r_le(&d, 4);
        s.max_inflight = (uint32_t)r_le(&d, 4);
        bool paused = r_le(&d, 1) != 0;
        if (d.bad || broker_queue_settings_check(&s) != 0) {
            return SL_EBADREQ;
        }
        if (check_only) {
            return 0;
        }
        rv = broker_queue_find(b, name) != NULL ? broker_queue_update(b, name, &s)
                                                : broker_queue_create(b, name, &s);
        return rv != 0 ? rv : broker_queue_pause(b, name, paused);
    }
    case R_QDEL: {
        struct sl_str name = r_name(&d);
        if (d.bad) {
            return SL_EBADREQ;
        }
        if (broker_queue_find(b, name) != NULL) {
            rv = broker_queue_destroy(b, name, true, &x, &y);
        }
        return rv;
    }
    case R_ROUTE: {
        struct sl_str group = r_name(&d);
        struct sl_str queue = r_str(&d, 2);
        if (d.bad || (queue.n > 0 && !wire_name_ok(queue.p, queue.n))) {
            return SL_EBADREQ;
        }
        if (check_only) {
            return 0;
        }
        if (queue.n > 0 && broker_queue_find(b, queue) == NULL) {
            return 0; /* destroyed later */
        }
        return broker_route_set(b, group, queue.n > 0 ? &queue : NULL, &moved);
    }
    case R_FLUSH:
        broker_flush(b, &x, &y);
        return 0;
    case R_NEXTID:
        /* Applied from a later snapshot too: in a real journal it equals the next id replay
         * has reached there, and pushes after it must not reuse ids below it either way. */
        x = r_le(&d, 8);
        if (d.bad) {
            return SL_EBADREQ;
        }
        if (b->next_id < x) {
            b->next_id = x;
        }
        return 0;
    case R_DEDUP: {
        struct sl_str client = r_name(&d);
        uint64_t seq = r_le(&d, 8), first = r_le(&d, 8);
        uint32_t cnt = (uint32_t)r_le(&d, 4);
        int64_t last = r_ms(&d);
        if (d.bad) {
            return SL_EBADREQ;
        }
        if (check_only) {
            return 0;
        }
        int64_t mono = mono_of_wall_ms(r, last);
        if (r->now_mono_ns - mono < b->cfg.dedup_window_ns) {
            dedup_record(b->dedup, client, seq, first, cnt, mono);
        }
        return 0;
    }
    default:
        return SL_EBADREQ;
    }
}

/* After the last record: reserved jobs go back to the head of their queues (their attempt
 * stays counted); only reserved and dead jobs stay in byid. */
static void
replay_finish(struct replay *r)
{
    struct broker *b = r->b;
    for (uint32_t i = 0; i < b->nqueues; i++) {
        struct queue *q = b->qorder[i];
        struct job *j;
        while ((j = q->lists[JOB_RESERVED].tail) != NULL) {
            queue_job_set_head(q, j, JOB_READY);
        }
        for (j = q->lists[JOB_READY].head; j != NULL; j = j->next) {
            hmap_del(&b->byid, &j->id, sizeof(j->id));
            j->ready_ns = r->now_mono_ns; /* waits count from this start */
        }
        for (j = q->lists[JOB_DELAYED].head; j != NULL; j = j->next) {
            hmap_del(&b->byid, &j->id, sizeof(j->id));
        }
        q->pushed = q->done = q->failed = 0;
    }
    for (struct group *g = b->groups_head; g != NULL; g = g->next) {
        g->pushed = g->done = g->failed = 0;
        g->pushed_all = g->done_all = g->failed_all = g->run_ns = 0;
    }
}

static int
add_seg(struct journal *jr, uint64_t seq)
{
    if (jr->nsegs == jr->capsegs) {
        size_t c = jr->capsegs != 0 ? jr->capsegs * 2 : 16;
        struct seg *p = realloc(jr->segs, c * sizeof(*p));
        if (p == NULL) {
            return SL_ENOMEM;
        }
        jr->segs = p;
        jr->capsegs = c;
    }
    jr->segs[jr->nsegs++] = (struct seg){ seq, 0, 0 };
    return 0;
}

static int
replay_all(struct broker *b, struct journal *jr, char *why, size_t cap)
{
    uint64_t *seqs = NULL;
    size_t nseq = 0;
    int rv = jf_list(jr->dir, &seqs, &nseq);
    if (rv != 0) {
        snprintf(why, cap, "cannot list %s: %s", jr->dir, strerror(rv));
        return SL_EIO;
    }
    struct replay r = { 0 };
    r.b = b;
    r.jr = jr;
    r.now_wall_ns = broker_wall_ns(b);
    r.now_mono_ns = broker_mono_ns(b);
    r.rec_wall_ns = r.now_wall_ns;
    struct broker_clock saved = b->cfg.clock;
    struct broker_cfg limits = b->cfg;
    b->cfg.clock = (struct broker_clock){ replay_mono, replay_wall, &r };
    /* What was accepted once is replayed whatever the limits of this start. */
    b->cfg.max_jobs = UINT64_MAX / 2;
    b->cfg.max_bytes = UINT64_MAX / 2;
    b->cfg.max_payload = UINT32_MAX;
    uint64_t cut = 0;
    int64_t t0 = clock_mono_ns();
    rv = 0;
    for (size_t i = 0; i < nseq && rv == 0; i++) {
        char path[PATH_MAX];
        struct jf_reader rdr;
        if (i > 0 && seqs[i] != seqs[i - 1] + 1) {
            snprintf(why, cap, "segment %016llx is missing (found %016llx after it)",
                     (unsigned long long)(seqs[i - 1] + 1), (unsigned long long)seqs[i]);
            rv = SL_EIO;
            break;
        }
        if (jf_path(path, sizeof(path), jr->dir, seqs[i]) != 0 ||
            jf_open(&rdr, path, seqs[i], why, cap) != 0) {
            if (why[0] == '\0') {
                snprintf(why, cap, "cannot open segment %016llx", (unsigned long long)seqs[i]);
            }
            rv = SL_EIO;
            break;
        }
        if ((rv = add_seg(jr, seqs[i])) != 0) {
            jf_close(&rdr);
            snprintf(why, cap, "out of memory");
            break;
        }
        r.seg = (uint32_t)seqs[i];
        r.first = i == 0;
        r.in_snap = false;
        const uint8_t *p;
        uint32_t n;
        enum jf_next nx;
        while ((nx = jf_next(&rdr, &p, &n)) == JF_RECORD) {
            if ((rv = apply(&r, p, n)) != 0) {
                snprintf(why, cap, "segment %s: record at offset %zu cannot be applied (%s)",
                         path, rdr.off - n - JF_FRAME_SIZE, sl_err_code(rv));
                rv = SL_EIO; /* journal.h: a replay that fails is SL_EIO with why */
                break;
            }
        }
        bool last = i + 1 == nseq;
        if (rv == 0 && (nx == JF_CORRUPT || (nx == JF_TORN && !last))) {
            if (!jr->cfg.repair) {
                snprintf(why, cap,
                         "segment %s is corrupt at offset %zu (%zu bytes follow); start with "
                         "--repair to cut the journal there, losing what follows",
                         path, rdr.bad_off, rdr.size - rdr.bad_off);
                rv = SL_EIO;
            } else {
                LOG(LOG_WARN, "journal.repair", "segment=\"%s\" offset=%zu cut_bytes=%zu "
                    "later_segments_removed=%zu", path, rdr.bad_off, rdr.size - rdr.bad_off,
                    nseq - i - 1);
                jf_truncate(path, rdr.bad_off);
                for (size_t k = i + 1; k < nseq; k++) {
                    char p2[PATH_MAX];
                    if (jf_path(p2, sizeof(p2), jr->dir, seqs[k]) == 0) {
                        unlink(p2);
                    }
                }
                nseq = i + 1;
            }
        } else if (rv == 0 && nx == JF_TORN) {
            LOG(LOG_WARN, "journal.torn_tail", "segment=\"%s\" offset=%zu cut_bytes=%zu", path,
                rdr.bad_off, rdr.bad_len);
            cut += rdr.bad_len;
            if (jf_truncate(path, rdr.bad_off) != 0) {
                snprintf(why, cap, "cannot cut the torn tail of %s: %s", path, strerror(errno));
                rv = SL_EIO;
            }
        }
        struct stat st;
        if (stat(path, &st) == 0) {
            jr->disk_bytes += (uint64_t)st.st_size;
            jr->disk_segments++;
        }
        jf_close(&rdr);
    }
    if (rv == 0) {
        replay_finish(&r);
    }
    b->cfg.clock = saved;
    b->cfg.max_jobs = limits.max_jobs;
    b->cfg.max_bytes = limits.max_bytes;
    b->cfg.max_payload = limits.max_payload;
    free(r.pay);
    free(seqs);
    if (rv == 0) {
        LOG(LOG_INFO, "journal.replayed", "dir=\"%s\" segments=%zu records=%llu jobs=%llu "
            "cut_bytes=%llu ms=%lld", jr->dir, nseq, (unsigned long long)r.records,
            (unsigned long long)b->jobs, (unsigned long long)cut,
            (long long)((clock_mono_ns() - t0) / 1000000));
    }
    return rv;
}

/* --- open / close ------------------------------------------------------------------------- */

static void
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
        static const enum job_state kept[] = { JOB_READY, JOB_DELAYED };
        for (size_t k = 0; k < sizeof(kept) / sizeof(kept[0]); k++) {
            for (struct job *j = q->lists[kept[k]].head; j != NULL; j = j->next) {
                hmap_del(&b->byid, &j->id, sizeof(j->id));
            }
        }
    }
}

int
journal_open(struct broker *b, const struct journal_cfg *cfg, char *why, size_t cap)
{
    struct journal *jr = calloc(1, sizeof(*jr));
    why[0] = '\0';
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
    int rv = replay_all(b, jr, why, cap);
    if (rv != 0) {
        replay_abandon(b);
        jr_free(jr);
        return rv;
    }
    /* Appends go to a new segment, which starts with the snapshot of what replay built. */
    uint64_t seq = jr->nsegs > 0 ? jr->segs[jr->nsegs - 1].seq + 1 : 1;
    if (add_seg(jr, seq) != 0 || open_segment(jr, seq) != 0) {
        snprintf(why, cap, "cannot create segment %016llx in %s: %s", (unsigned long long)seq,
                 jr->dir, strerror(errno));
        jr_free(jr);
        return SL_EIO;
    }
    jr->active_bytes = JF_HEADER_SIZE;
    b->jr = jr;
    pthread_mutex_lock(&b->lock);
    snapshot(b);
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
