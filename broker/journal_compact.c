/* A cluster leader's stream compaction: once the local segments below the oldest live one are
 * deleted, the stream's messages below that segment's first message go too, so that the
 * stream stays as long as the journal.
 *
 * Not by a purge: nats-server before 2.9.18 replays a purge wrongly on a node that restarts,
 * removing every message up to the stream's last one at the time of the purge instead of
 * those below the sequence asked for (nats-server issue #4196, fixed by pull request #4197).
 * If that node then leads the stream, the stream's beginning is gone and no new standby can
 * rebuild from it (make chaos-cluster showed it within minutes with NATS nodes killed). A
 * deleted message is deleted the same way on every node, whenever it replays the deletion.
 *
 * So the messages are deleted one at a time, oldest first, on a thread of its own, so that
 * neither the writer nor the lease wait for it. Before deleting below a point, the message
 * there is read back (it must be the first of the segment expected and begin with its
 * snapshot) and the point is recorded as the stream's start (jstream_start_raise): a standby
 * that starts from nothing begins there, never inside what is being deleted. That also
 * covers a second fault of nats-server 2.9: a node killed and restarted can bring deleted
 * messages back (its record of the deletions was not on disk) while keeping later deletions,
 * leaving a hole; all of it lies below the recorded start. A deposed leader deletes nothing
 * more. */
#include "journal_int.h"

#include "clock.h"
#include "err.h"
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct compactor {
    struct journal *jr;
    pthread_t thr;
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    _Atomic bool stop;
    uint64_t want_below, want_seg; /* the point asked for (0: none) */
    uint64_t done_below;           /* the stream holds nothing below this (or refused it) */
};

/* What the message at a compaction point turned out to be. */
enum point {
    POINT_OK,     /* the first of the segment expected, beginning with its snapshot */
    POINT_GONE,   /* deleted already: a leader before this one compacted further */
    POINT_WRONG,  /* something else (said in why): never compacted below */
    POINT_AGAIN,  /* it could not be read now (why): tried again later */
};

/* Whether seq is where segment seg begins in the stream: its message is segment seg's first
 * (the one before it is of an older segment, or gone) and starts with the segment's
 * snapshot. */
static enum point
point_check(struct journal *jr, uint64_t seq, uint64_t seg, char *why, size_t cap)
{
    struct jstream_msg m, before;
    uint8_t type = 0, ptype = 0;
    int rv = jstream_get(jr->js, seq, &m, &type);
    if (rv == SL_ENOTFOUND) {
        return POINT_GONE;
    }
    if (rv != 0) {
        snprintf(why, cap, "message %llu cannot be read: %s", (unsigned long long)seq,
                 sl_err_code(rv));
        return rv == SL_EBADREQ ? POINT_WRONG : POINT_AGAIN;
    }
    if (m.seg != seg || type != R_SNAP_BEGIN) {
        snprintf(why, cap, "message %llu is of segment %llu, position %llu, epoch %llu, "
                 "first record type %u: not the start of segment %llu",
                 (unsigned long long)seq, (unsigned long long)m.seg, (unsigned long long)m.lsn,
                 (unsigned long long)m.epoch, type, (unsigned long long)seg);
        return POINT_WRONG;
    }
    rv = seq > 1 ? jstream_get(jr->js, seq - 1, &before, &ptype) : SL_ENOTFOUND;
    if (rv != 0 && rv != SL_ENOTFOUND) {
        snprintf(why, cap, "message %llu cannot be read: %s", (unsigned long long)seq - 1,
                 sl_err_code(rv));
        return rv == SL_EBADREQ ? POINT_WRONG : POINT_AGAIN;
    }
    if (rv == 0 && before.seg >= seg) {
        snprintf(why, cap, "message %llu, before it, is of segment %llu, position %llu, "
                 "epoch %llu: segment %llu begins earlier", (unsigned long long)seq - 1,
                 (unsigned long long)before.seg, (unsigned long long)before.lsn,
                 (unsigned long long)before.epoch, (unsigned long long)seg);
        return POINT_WRONG;
    }
    return POINT_OK;
}

static bool
fenced(struct journal *jr)
{
    pthread_mutex_lock(&jr->mtx);
    bool f = jr->fenced;
    pthread_mutex_unlock(&jr->mtx);
    return f;
}

/* Deletes the stream's messages below below, segment seg's first. 0 when done (or refused
 * for good: said); an error to try again later. */
static int
compact(struct compactor *c, uint64_t below, uint64_t seg)
{
    struct journal *jr = c->jr;
    char why[256] = "";
    switch (point_check(jr, below, seg, why, sizeof(why))) {
    case POINT_OK:
        break;
    case POINT_GONE:
        return 0;
    case POINT_WRONG:
        LOG(LOG_ERROR, "cluster.compact_refused", "below=%llu segment=%llu reason=\"%s\"",
            (unsigned long long)below, (unsigned long long)seg, why);
        return 0;
    case POINT_AGAIN:
        LOG(LOG_WARN, "cluster.compact_stalled", "below=%llu segment=%llu reason=\"%s\"",
            (unsigned long long)below, (unsigned long long)seg, why);
        return SL_EUNREACHABLE;
    }
    /* A standby starting from nothing begins there from now on, not inside what goes. */
    int rv = jstream_start_raise(jr->js, below);
    if (rv != 0) {
        LOG(LOG_WARN, "cluster.compact_stalled", "below=%llu err=%s reason=\"the start "
            "cannot be recorded\"", (unsigned long long)below, sl_err_code(rv));
        return rv;
    }
    struct jstream_info in;
    if ((rv = jstream_info(jr->js, &in)) != 0) {
        return rv;
    }
    int64_t t0 = clock_mono_ns();
    uint64_t n = 0;
    for (uint64_t seq = in.first_seq; seq < below; seq++) {
        if (atomic_load(&c->stop) || fenced(jr)) {
            return SL_ECONFLICT;
        }
        rv = jstream_delete(jr->js, seq);
        if (rv != 0 && rv != SL_ENOTFOUND) {
            LOG(LOG_WARN, "cluster.compact_stalled", "seq=%llu below=%llu err=%s",
                (unsigned long long)seq, (unsigned long long)below, sl_err_code(rv));
            return rv;
        }
        n += rv == 0;
    }
    LOG(LOG_INFO, "cluster.compacted", "below=%llu segment=%llu deleted=%llu ms=%lld",
        (unsigned long long)below, (unsigned long long)seg, (unsigned long long)n,
        (long long)((clock_mono_ns() - t0) / 1000000));
    return 0;
}

static void *
compactor_main(void *arg)
{
    struct compactor *c = arg;
    pthread_mutex_lock(&c->mtx);
    while (!atomic_load(&c->stop)) {
        uint64_t below = c->want_below, seg = c->want_seg;
        if (below <= c->done_below) {
            pthread_cond_wait(&c->cond, &c->mtx);
            continue;
        }
        pthread_mutex_unlock(&c->mtx);
        int rv = compact(c, below, seg);
        pthread_mutex_lock(&c->mtx);
        if (rv == 0) {
            c->done_below = below;
        } else if (!atomic_load(&c->stop)) {
            struct timespec ts = clock_real_after(1000000000LL); /* then again */
            pthread_cond_timedwait(&c->cond, &c->mtx, &ts);
        }
    }
    pthread_mutex_unlock(&c->mtx);
    return NULL;
}

int
compactor_start(struct journal *jr)
{
    struct compactor *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return SL_ENOMEM;
    }
    c->jr = jr;
    pthread_mutex_init(&c->mtx, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (pthread_create(&c->thr, NULL, compactor_main, c) != 0) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mtx);
        free(c);
        return SL_ENOMEM;
    }
    jr->compactor = c;
    return 0;
}

void
compactor_want(struct compactor *c, uint64_t below, uint64_t seg)
{
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mtx);
    if (below > c->want_below) {
        c->want_below = below;
        c->want_seg = seg;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->mtx);
}

void
compactor_stop(struct journal *jr)
{
    struct compactor *c = jr->compactor;
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mtx);
    atomic_store(&c->stop, true);
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mtx);
    pthread_join(c->thr, NULL);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mtx);
    free(c);
    jr->compactor = NULL;
}
