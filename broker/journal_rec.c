/* The journal's records: how each change (change.h) and each snapshot is encoded, framed and
 * handed to the writer (journal_int.h's record types). */
#include "journal_int.h"

#include "change.h"
#include "clock.h"
#include "err.h"
#include "grate.h"
#include "jfile.h"
#include "log.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
void
rec_seal(struct journal *jr)
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


static int64_t
wall_ms(int64_t ns)
{
    return ns / 1000000;
}

static void
unique_rec(struct journal *jr, uint64_t job_id, const char *key, size_t klen,
           int64_t expire_wall_ms, uint8_t hold)
{
    struct rec_w w;
    rec_begin(&w, jr, R_UNIQUE);
    w_u64(&w, job_id);
    w_str(&w, key, klen);
    w_u64(&w, (uint64_t)expire_wall_ms);
    w_u8(&w, hold);
    rec_end(&w, true);
}

static uint64_t
journal_push(struct broker *b, const struct push_req *req, const struct queue *q,
             uint64_t first_id, uint32_t n, int64_t wall_ns, int64_t due_wall_ms)
{
    struct journal *jr = b->jr;
    struct rec_w w;
    uint32_t ttr = req->ttr_ms != 0 ? req->ttr_ms : b->cfg.ttr_ms;
    uint16_t att = req->max_attempts != 0 ? req->max_attempts : b->cfg.max_attempts;

    if (req->cron != NULL) {
        /* Cron pushes are never delayed: their instant is their time. */
        rec_begin(&w, jr, R_CRON_FIRE);
        w_str(&w, req->cron->name.p, req->cron->name.n);
        w_u64(&w, (uint64_t)req->cron->instant_ms);
        w_u8(&w, 1);
    } else {
        rec_begin(&w, jr, due_wall_ms > 0 ? R_PUSH_AT : R_PUSH);
    }
    w_u64(&w, (uint64_t)wall_ms(wall_ns));
    if (due_wall_ms > 0) {
        w_u64(&w, (uint64_t)due_wall_ms);
    }
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
    if (req->unique.n > 0) {
        int64_t ttl = (int64_t)req->unique_ttl_ms;
        unique_rec(jr, first_id, req->unique.p, req->unique.n,
                   ttl > 0 ? wall_ms(wall_ns) + ttl : 0, req->unique_hold);
    }
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
    w_u32(&w, q->retry.base_ms);
    w_u32(&w, q->retry.max_ms);
    w_u8(&w, q->retry.jitter);
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
journal_job_err(struct broker *b, const struct job *j)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_JERR);
    w_u64(&w, j->id);
    w_u8(&w, j->err->cls);
    w_u64(&w, (uint64_t)j->err->at_ms);
    w_str(&w, j->err->text, j->err->len);
    rec_end(&w, false);
}

static void
journal_cron(struct broker *b, const struct cron_entry *e)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_CRON);
    w_str(&w, e->name, e->name_len);
    w_str(&w, e->sched, e->sched_len);
    w_str(&w, e->group, e->group_len);
    w_str(&w, e->queue, e->queue_len);
    w_u8(&w, e->paused);
    w_u8(&w, (uint8_t)e->missed);
    w_u64(&w, (uint64_t)e->from_ms);
    w_u64(&w, (uint64_t)e->last_ms);
    w_u64(&w, e->fired);
    w_u64(&w, e->refused);
    w_blob(&w, e->payload, e->len);
    rec_end(&w, true);
}

static void
journal_group_limit(struct broker *b, const struct group *g)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_GRATE);
    w_str(&w, g->name, g->name_len);
    w_u64(&w, g->rate != NULL ? g->rate->bucket.rate_milli : 0);
    w_u32(&w, g->rate != NULL ? g->rate->bucket.burst : 0);
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
    return journal_push(b, c->push, c->queue, c->first_id, c->n, c->wall_ns, c->due_wall_ms);
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
c_job_err(struct broker *b, const struct change *c)
{
    journal_job_err(b, c->job);
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
c_group_limit(struct broker *b, const struct change *c)
{
    journal_group_limit(b, c->group);
    return 0;
}

static uint64_t
c_flush(struct broker *b, const struct change *c)
{
    (void)c;
    journal_flush(b);
    return 0;
}

static uint64_t
c_cron(struct broker *b, const struct change *c)
{
    journal_cron(b, c->cron);
    return 0;
}

static uint64_t
c_cron_gone(struct broker *b, const struct change *c)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_CRON_DEL);
    w_str(&w, c->name.p, c->name.n);
    rec_end(&w, true);
    return 0;
}

/* An instant whose push was refused (one that was stored is its push's record). */
static uint64_t
c_cron_fire(struct broker *b, const struct change *c)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_CRON_FIRE);
    w_str(&w, c->cron->name, c->cron->name_len);
    w_u64(&w, (uint64_t)c->cron->last_ms);
    w_u8(&w, 0);
    rec_end(&w, true);
    return 0;
}

static uint64_t (*const by_kind[CH_KINDS])(struct broker *, const struct change *) = {
    [CH_PUSH] = c_push,           [CH_JOB] = c_job,
    [CH_JOB_FIELDS] = c_job_fields, [CH_JOB_GONE] = c_job_gone,
    [CH_JOB_ERR] = c_job_err,
    [CH_QUEUE] = c_queue,         [CH_QUEUE_GONE] = c_queue_gone,
    [CH_ROUTE] = c_route,         [CH_GROUP_WEIGHT] = c_group_weight,
    [CH_FLUSH] = c_flush,
    [CH_CRON] = c_cron,           [CH_CRON_GONE] = c_cron_gone,
    [CH_CRON_FIRE] = c_cron_fire,
    [CH_GROUP_LIMIT] = c_group_limit,
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

void
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
    if (j->err != NULL) {
        journal_job_err(b, j);
    }
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

static void
snap_unique(void *arg, const struct ukey *k)
{
    struct broker *b = arg;
    int64_t expire = 0;
    if (k->expire_ns != INT64_MAX) {
        expire = wall_ms(broker_wall_ns(b) + (k->expire_ns - broker_mono_ns(b)));
        expire = expire > 0 ? expire : 1;
    }
    unique_rec(b->jr, k->job_id, k->key, k->klen, expire, k->hold);
}

/* Everything that is not a job, at the start of a segment. */
void
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
        if (g->rate != NULL) {
            journal_group_limit(b, g);
        }
    }
    dedup_foreach(b->dedup, snap_dedup_seqs, snap_dedup, b);
    unique_foreach(&b->uniq, &b->ids, broker_mono_ns(b), snap_unique, b);
    for (const struct cron_entry *e = b->cron.head; e != NULL; e = e->next) {
        journal_cron(b, e);
    }
    rec_begin(&w, jr, R_SNAP_END);
    rec_end(&w, true);
}

/* A cluster leader begins: its epoch, recorded (replayed, it is what the stream's later
 * messages carry). */
void
epoch_rec(struct broker *b)
{
    struct rec_w w;
    rec_begin(&w, b->jr, R_EPOCH);
    w_u64(&w, b->jr->epoch);
    w_str(&w, "", 0);
    rec_end(&w, true);
}
