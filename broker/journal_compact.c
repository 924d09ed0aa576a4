/* The journal's segments: the live jobs each holds, rolling to a new one, writing the jobs of
 * the oldest again so that it can go (compaction), and deleting those no job needs once what
 * stands in for them is durable. Under b->lock. */
#include "journal_int.h"

#include "err.h"
#include "jfile.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

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

int
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
    journal_op_seal(jr);
    pthread_mutex_lock(&jr->mtx);
    int rv = push_mark(&jr->rolls, &jr->nrolls, &jr->caprolls, jr->buf_lsn + jr->buf.n, seq);
    pthread_mutex_unlock(&jr->mtx);
    if (rv != 0) {
        return rv;
    }
    jr->segs[jr->nsegs++] = (struct seg){ .seq = seq };
    jr->active_bytes = JF_HEADER_SIZE;
    journal_snapshot(b);
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
                    journal_put_job(b, j);
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

/* The stream is empty and this journal becomes its beginning: every job is written again in
 * the new segment, so that the segments before it, which the stream never held, can go. */
void
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
    journal_op_seal(jr);
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
    journal_op_seal(jr);
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
