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

uint64_t
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
    rec_seal(jr);
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
    rec_seal(jr);
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
    rec_seal(jr);
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

struct waiter *
journal_release_waiters(struct journal *jr)
{
    pthread_mutex_lock(&jr->mtx);
    while (jr->sending > 0) {
        pthread_cond_wait(&jr->durable, &jr->mtx);
    }
    struct waiter *list = jr->wait_head;
    jr->wait_head = jr->wait_tail = NULL;
    pthread_mutex_unlock(&jr->mtx);
    for (struct waiter *wt = list; wt != NULL; wt = wt->next) {
        nng_msg_free(wt->rep);
        wt->rep = NULL;
        wt->commit_lsn = 0;
    }
    return list;
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
    if (jr->js != NULL && compactor_start(jr) != 0) {
        LOG(LOG_WARN, "cluster.nomem", "reason=\"no compaction thread: the stream keeps "
            "everything\"");
    } else if (jr->nsegfirst > 0) {
        /* What the previous leader left half compacted (it died deleting) is finished. */
        compactor_want(jr->compactor, jr->segfirst[0].lsn, jr->segfirst[0].seq);
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
    rec_seal(jr);
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_lock(&jr->mtx);
    jr->stop = true;
    pthread_cond_signal(&jr->cond);
    pthread_mutex_unlock(&jr->mtx);
    pthread_join(jr->thr, NULL);
    compactor_stop(jr);
    pthread_mutex_lock(&b->lock);
    b->jr = NULL;
    pthread_mutex_unlock(&b->lock);
    jr_free(jr);
}
