/* A standby's journal: the leader's stream (jstream.h) applied record by record through
 * replay's own code (journal_replay.c), and written to local segment files as it arrives, so
 * that the standby holds the leader's state in memory and on disk. When it takes the lease it
 * is promoted: what replay does after its last record, then a new segment and the writer,
 * exactly as a broker starting from its journal. */
#include "journal_follow.h"

#include "journal_int.h"

#include "clock.h"
#include "err.h"
#include "jfile.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct follow {
    struct broker *b;
    struct journal *jr;     /* segments and the directory's lock; no writer yet */
    struct replay *r;
    int fd;                 /* the local segment being written (-1: none) */
    uint64_t seg;
    struct buf part;        /* bytes of a record not yet complete */
    uint64_t last_seq, epoch, next_lsn;
    uint64_t records;
    int64_t synced_ns;
};

/* Moves what a previous run left in dir into dir/prev (replacing an older prev): the stream is
 * what the standby rebuilds from; the old files are kept for a person, not read again. */
static int
set_aside(const char *dir, char *why, size_t cap)
{
    uint64_t *seqs = NULL;
    size_t n = 0;
    int rv = jf_list(dir, &seqs, &n);
    if (rv != 0) {
        snprintf(why, cap, "cannot list %s: %s", dir, strerror(rv));
        return SL_EIO;
    }
    char prev[PATH_MAX];
    if (n > 0) {
        snprintf(prev, sizeof(prev), "%s/prev", dir);
        uint64_t *old = NULL;
        size_t nold = 0;
        if (jf_list(prev, &old, &nold) == 0) {
            for (size_t i = 0; i < nold; i++) {
                char p[PATH_MAX];
                if (jf_path(p, sizeof(p), prev, old[i]) == 0) {
                    unlink(p);
                }
            }
            free(old);
        }
        if (mkdir(prev, 0700) != 0 && errno != EEXIST) {
            snprintf(why, cap, "cannot create %s: %s", prev, strerror(errno));
            free(seqs);
            return SL_EIO;
        }
    }
    for (size_t i = 0; i < n; i++) {
        char from[PATH_MAX], to[PATH_MAX];
        if (jf_path(from, sizeof(from), dir, seqs[i]) != 0 ||
            jf_path(to, sizeof(to), prev, seqs[i]) != 0 || rename(from, to) != 0) {
            snprintf(why, cap, "cannot move segment %016llx of %s aside: %s",
                     (unsigned long long)seqs[i], dir, strerror(errno));
            free(seqs);
            return SL_EIO;
        }
    }
    if (n > 0) {
        LOG(LOG_INFO, "cluster.local_set_aside", "dir=\"%s/prev\" segments=%zu", dir, n);
    }
    free(seqs);
    size_t temps;
    (void)jf_remove_temps(dir, &temps);
    return 0;
}

int
journal_follow_open(struct follow **fp, struct broker *b, const struct journal_cfg *cfg,
                    char *why, size_t cap)
{
    struct follow *f = calloc(1, sizeof(*f));
    *fp = NULL;
    if (f == NULL) {
        snprintf(why, cap, "out of memory");
        return SL_ENOMEM;
    }
    f->b = b;
    f->fd = -1;
    int rv = jr_prepare(&f->jr, cfg, why, cap);
    if (rv == 0 && (rv = set_aside(f->jr->dir, why, cap)) == 0 &&
        (f->r = replay_new(b, f->jr)) == NULL) {
        snprintf(why, cap, "out of memory");
        rv = SL_ENOMEM;
    }
    if (rv != 0) {
        journal_follow_close(f);
        return rv;
    }
    *fp = f;
    return 0;
}

void
journal_follow_close(struct follow *f)
{
    if (f == NULL) {
        return;
    }
    replay_end(f->r, false);
    if (f->fd >= 0) {
        close(f->fd);
    }
    if (f->jr != NULL) {
        jr_free(f->jr);
    }
    free(f->part.p);
    free(f);
}

/* The local copies of mirrored segments whose jobs are all gone go, as a leader's do: the
 * oldest while no job lives in it, once the one after it is closed (synced, its snapshot
 * whole), so that what is left is a journal that replays. */
static void
drop_dead_segments(struct follow *f)
{
    struct journal *jr = f->jr;
    for (;;) {
        pthread_mutex_lock(&f->b->lock);
        uint64_t seq = 0;
        if (jr->nsegs >= 3 && jr->segs[0].live == 0) {
            seq = jr->segs[0].seq;
            memmove(&jr->segs[0], &jr->segs[1], (jr->nsegs - 1) * sizeof(jr->segs[0]));
            jr->nsegs--;
            /* Nor is it where the stream must begin once this standby leads. */
            while (jr->nsegfirst > 0 && jr->segfirst[0].seq <= seq) {
                memmove(&jr->segfirst[0], &jr->segfirst[1],
                        (jr->nsegfirst - 1) * sizeof(jr->segfirst[0]));
                jr->nsegfirst--;
            }
        }
        pthread_mutex_unlock(&f->b->lock);
        char path[PATH_MAX];
        struct stat st;
        if (seq == 0 || jf_path(path, sizeof(path), jr->dir, seq) != 0) {
            return;
        }
        off_t size = stat(path, &st) == 0 ? st.st_size : 0;
        if (unlink(path) != 0) {
            LOG(LOG_WARN, "journal.unlink_failed", "segment=%s error=\"%s\"", path,
                strerror(errno));
            continue;
        }
        jr->disk_bytes -= (uint64_t)size <= jr->disk_bytes ? (uint64_t)size : jr->disk_bytes;
        jr->disk_segments--;
    }
}

/* Records of segment seq follow: the local file changes with it. */
static int
next_segment(struct follow *f, uint64_t seq, char *why, size_t cap)
{
    if (f->part.n != 0 || (f->seg != 0 && seq <= f->seg)) {
        snprintf(why, cap, "segment %llu follows segment %llu%s", (unsigned long long)seq,
                 (unsigned long long)f->seg, f->part.n != 0 ? " inside a record" : "");
        return SL_EBADREQ;
    }
    if (f->fd >= 0) {
        (void)fdatasync(f->fd);
        close(f->fd);
        f->fd = -1;
    }
    int rv = jf_create(f->jr->dir, seq, &f->fd);
    if (rv != 0) {
        snprintf(why, cap, "cannot create segment %016llx in %s: %s", (unsigned long long)seq,
                 f->jr->dir, strerror(rv));
        return SL_EIO;
    }
    f->jr->disk_bytes += JF_HEADER_SIZE;
    f->jr->disk_segments++;
    pthread_mutex_lock(&f->b->lock);
    rv = replay_segment(f->r, seq);
    pthread_mutex_unlock(&f->b->lock);
    if (rv != 0) {
        snprintf(why, cap, "out of memory");
        return rv;
    }
    f->seg = seq;
    drop_dead_segments(f);
    return 0;
}

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Applies the whole records in part, keeping the bytes of an unfinished one. */
static int
apply_part(struct follow *f, char *why, size_t cap)
{
    size_t off = 0;
    int rv = 0;
    pthread_mutex_lock(&f->b->lock);
    while (rv == 0 && f->part.n - off >= JF_FRAME_SIZE) {
        const uint8_t *fr = f->part.p + off;
        uint32_t n = le32(fr);
        if (n == 0 || n > JF_RECORD_MAX) {
            snprintf(why, cap, "a record of %u bytes in segment %llu", n,
                     (unsigned long long)f->seg);
            rv = SL_EBADREQ;
            break;
        }
        if (f->part.n - off - JF_FRAME_SIZE < n) {
            break;
        }
        uint32_t crc = jf_crc32c(jf_crc32c(0, fr, 4), fr + JF_FRAME_SIZE, n);
        if (crc != le32(fr + 4)) {
            snprintf(why, cap, "a record whose checksum fails in segment %llu",
                     (unsigned long long)f->seg);
            rv = SL_EBADREQ;
            break;
        }
        if ((rv = replay_records(f->r, fr + JF_FRAME_SIZE, n)) != 0) {
            snprintf(why, cap, "a record of type %u in segment %llu cannot be applied (%s)",
                     fr[JF_FRAME_SIZE], (unsigned long long)f->seg, sl_err_code(rv));
            break;
        }
        f->records++;
        off += JF_FRAME_SIZE + n;
    }
    pthread_mutex_unlock(&f->b->lock);
    memmove(f->part.p, f->part.p + off, f->part.n - off);
    f->part.n -= off;
    return rv;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            return errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* m begins a new epoch: what the old one left unfinished (its leader died between two
 * messages of one run of records) is never finished. A record cut in two is dropped (it was
 * never confirmed: a reply waits for all of its run) and a snapshot cut short ends, so that
 * the new leader's records apply. */
static void
cut_epoch(struct follow *f, const struct jstream_msg *m)
{
    if (f->part.n != 0) {
        LOG(LOG_WARN, "cluster.epoch_cut", "seq=%llu epoch=%llu dropped_bytes=%zu "
            "reason=\"the previous epoch ended inside a record\"", (unsigned long long)m->seq,
            (unsigned long long)m->epoch, f->part.n);
        f->part.n = 0;
    }
    pthread_mutex_lock(&f->b->lock);
    replay_cut(f->r);
    pthread_mutex_unlock(&f->b->lock);
}

int
journal_follow_msg(struct follow *f, const struct jstream_msg *m, char *why, size_t cap)
{
    why[0] = '\0';
    if (m->epoch < f->epoch || (m->epoch == f->epoch && f->last_seq != 0 &&
                                m->lsn != f->next_lsn)) {
        snprintf(why, cap, "message %llu (epoch %llu, position %llu) does not continue the "
                 "stream (epoch %llu, position %llu)", (unsigned long long)m->seq,
                 (unsigned long long)m->epoch, (unsigned long long)m->lsn,
                 (unsigned long long)f->epoch, (unsigned long long)f->next_lsn);
        return SL_EBADREQ;
    }
    if (m->epoch > f->epoch && f->last_seq != 0) {
        cut_epoch(f, m);
    }
    int rv;
    if (m->seg != f->seg && (rv = next_segment(f, m->seg, why, cap)) != 0) {
        return rv;
    }
    if ((rv = write_all(f->fd, m->p, m->n)) != 0) {
        snprintf(why, cap, "cannot write segment %016llx in %s: %s",
                 (unsigned long long)f->seg, f->jr->dir, strerror(rv));
        return SL_EIO;
    }
    f->jr->disk_bytes += m->n;
    int64_t now = clock_mono_ns();
    if (now - f->synced_ns >= 1000000000LL) {
        (void)fdatasync(f->fd);
        f->synced_ns = now;
    }
    if (buf_room(&f->part, m->n) != 0) {
        snprintf(why, cap, "out of memory");
        return SL_ENOMEM;
    }
    memcpy(f->part.p + f->part.n, m->p, m->n);
    f->part.n += m->n;
    if (f->last_seq == 0 && f->records == 0 && f->part.n > JF_FRAME_SIZE &&
        f->part.p[JF_FRAME_SIZE] != R_SNAP_BEGIN) {
        snprintf(why, cap, "the stream does not begin with a segment's snapshot (message %llu: "
                 "segment %llu, position %llu, epoch %llu, record type %u)",
                 (unsigned long long)m->seq, (unsigned long long)m->seg,
                 (unsigned long long)m->lsn, (unsigned long long)m->epoch,
                 f->part.p[JF_FRAME_SIZE]);
        return SL_EBADREQ;
    }
    if ((rv = apply_part(f, why, cap)) != 0) {
        return rv;
    }
    f->last_seq = m->seq;
    f->epoch = m->epoch;
    f->next_lsn = m->lsn + m->n;
    if (repl_segfirst_add(f->jr, m->seg, m->seq) != 0) {
        snprintf(why, cap, "out of memory");
        return SL_ENOMEM;
    }
    return 0;
}

void
journal_follow_state(const struct follow *f, struct follow_state *st)
{
    st->last_seq = f->last_seq;
    st->epoch = f->epoch;
    st->next_lsn = f->next_lsn;
    st->seg = f->seg;
    st->records = f->records;
}

int
journal_promote(struct follow **fp, uint64_t epoch, char *why, size_t cap)
{
    struct follow *f = *fp;
    struct broker *b = f->b;
    struct journal *jr = f->jr;
    if (f->part.n != 0) {
        snprintf(why, cap, "the stream ends inside a record");
        return SL_EBADREQ;
    }
    if (f->fd >= 0) {
        (void)fdatasync(f->fd);
        close(f->fd);
        f->fd = -1;
    }
    pthread_mutex_lock(&b->lock);
    replay_end(f->r, true);
    pthread_mutex_unlock(&b->lock);
    f->r = NULL;
    f->jr = NULL;
    jr->js_last = f->last_seq;
    jr->cfg.epoch = epoch;
    /* The stream's positions go on from the last message: a standby checks that each message
     * continues the one before it within an epoch. */
    jr->buf_lsn = jr->durable_lsn = jr->confirm_lsn = jr->repl_lsn = f->next_lsn;
    journal_follow_close(f);
    *fp = NULL;
    LOG(LOG_INFO, "cluster.promoted", "epoch=%llu stream_seq=%llu jobs=%llu",
        (unsigned long long)epoch, (unsigned long long)jr->js_last,
        (unsigned long long)b->jobs);
    return journal_begin_writing(b, jr, why, cap);
}
