/* The journal's writer thread: takes what was appended, writes it to the segment files,
 * fdatasync()s it as --fsync asks, then sends the replies held for it (group commit) and
 * deletes the segments compaction emptied. */
#include "journal_int.h"

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
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Replaces a held reply by an io error. */
static void
fail_reply(struct journal *jr, struct waiter *wt, const char *err)
{
    char msg[512];
    if (jr->fenced) {
        snprintf(msg, sizeof(msg), "not confirmed: this broker is no longer the cluster's "
                 "leader; a resend with the same client and seq to the new leader is not "
                 "stored twice");
    } else {
        snprintf(msg, sizeof(msg),
                 "not confirmed: the journal cannot be written (%s); the change is kept in "
                 "memory and written when the journal recovers; a resend with the same client "
                 "and seq is not stored twice",
                 err);
    }
    if (wt->rep != NULL) {
        msgpack_packer pk;
        nng_msg_clear(wt->rep);
        msgpack_packer_init(&pk, wt->rep, wire_pack_into_msg);
        wire_pack_err(&pk, jr->fenced ? SL_ENOTLEADER : SL_EIO, msg);
    }
}

/* Whether wbuf still has bytes the stream lacks (a cluster leader's). */
static bool
repl_behind(const struct journal *jr)
{
    return jr->js != NULL && !jr->fenced && jr->repl_lsn < jr->wbuf_lsn + jr->wbuf.n;
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
int
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

/* Writes wbuf[wdone..) and syncs it as --fsync asks. 0 or an errno value; on a failure
 * wdone says how far the file holds it. */
static int
write_sync(struct journal *jr, bool stopping)
{
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
    return rv;
}

/* --- the reserve -------------------------------------------------------------------------- */

#define RESERVE_MIN (256u << 10)
#define RESERVE_MAX (16u << 20)
#define SPACE_CHECK_NS 1000000000LL

static bool
no_space(int err)
{
    return err == ENOSPC || err == EDQUOT;
}

static void
reserve_path(const struct journal *jr, char *out, size_t cap)
{
    snprintf(out, cap, "%s/" JOURNAL_RESERVE_NAME, jr->dir);
}

/* Creates the reserve file, its blocks allocated. 0 or an errno value (no file left). */
static int
reserve_create(struct journal *jr)
{
    char path[PATH_MAX + 16];
    reserve_path(jr, path, sizeof(path));
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return errno;
    }
    int rv = posix_fallocate(fd, 0, (off_t)jr->reserve_bytes);
    close(fd);
    if (rv != 0) {
        unlink(path);
    }
    return rv;
}

void
journal_reserve_drop(struct journal *jr)
{
    char path[PATH_MAX + 16];
    reserve_path(jr, path, sizeof(path));
    unlink(path);
}

void
journal_reserve_open(struct journal *jr)
{
    uint64_t r = jr->cfg.segment_bytes / 4;
    struct statvfs sv;
    r = r < RESERVE_MIN ? RESERVE_MIN : r > RESERVE_MAX ? RESERVE_MAX : r;
    /* A small file system keeps most of its room for jobs. */
    if (statvfs(jr->dir, &sv) == 0 && r > (uint64_t)sv.f_blocks * sv.f_frsize / 8) {
        r = (uint64_t)sv.f_blocks * sv.f_frsize / 8;
    }
    jr->reserve_bytes = r;
    int rv = reserve_create(jr);
    if (rv == 0) {
        jr->reserve_held = true;
    } else if (no_space(rv)) {
        jr->full = true;
        jr->space_check_ns = clock_mono_ns() + SPACE_CHECK_NS;
        LOG(LOG_WARN, "journal.full", "dir=\"%s\" reserve_bytes=%llu reason=\"no room for the "
            "reserve: pushes are refused until there is\"", jr->dir, (unsigned long long)r);
    } else {
        LOG(LOG_WARN, "journal.no_reserve", "dir=\"%s\" error=\"%s\" reason=\"a full disk "
            "will stop acks too\"", jr->dir, strerror(rv));
    }
}

/* A write ran out of space: the reserve goes, and pushes are refused until it is back. */
static void
reserve_release(struct journal *jr)
{
    journal_reserve_drop(jr);
    jr->reserve_held = false;
    jr->space_check_ns = clock_mono_ns() + SPACE_CHECK_NS;
    pthread_mutex_lock(&jr->mtx);
    jr->full = true;
    pthread_mutex_unlock(&jr->mtx);
    LOG(LOG_WARN, "journal.full", "dir=\"%s\" reserve_bytes=%llu reason=\"no space left: "
        "pushes are refused until acks free space\"", jr->dir,
        (unsigned long long)jr->reserve_bytes);
}

/* With the disk full, at most once a second: once deleted segments have left room for the
 * reserve and as much again, the reserve is taken back and pushes are accepted again. */
static void
reserve_retake(struct journal *jr)
{
    struct statvfs sv;
    int64_t now = clock_mono_ns();
    if (now < jr->space_check_ns) {
        return;
    }
    jr->space_check_ns = now + SPACE_CHECK_NS;
    if (statvfs(jr->dir, &sv) != 0 ||
        (uint64_t)sv.f_bavail * sv.f_frsize < 2 * jr->reserve_bytes) {
        return;
    }
    int rv = reserve_create(jr);
    if (no_space(rv)) {
        return; /* taken meanwhile */
    }
    /* Another failure (the room is there) goes on without a reserve rather than refuse
     * pushes for ever. */
    jr->reserve_held = rv == 0;
    pthread_mutex_lock(&jr->mtx);
    jr->full = false;
    pthread_mutex_unlock(&jr->mtx);
    if (rv == 0) {
        LOG(LOG_INFO, "journal.space_back", "dir=\"%s\" reserve_bytes=%llu", jr->dir,
            (unsigned long long)jr->reserve_bytes);
    } else {
        LOG(LOG_WARN, "journal.no_reserve", "dir=\"%s\" error=\"%s\" reason=\"a full disk "
            "will stop acks too\"", jr->dir, strerror(rv));
    }
}

/* --- the thread --------------------------------------------------------------------------- */

void *
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
                    (repl_behind(jr) && now >= jr->repl_retry_ns) ||
                    (jr->broken && now >= retry_at);
        if (jr->broken && now < retry_at && !jr->stop) {
            have = false; /* wait for the retry time */
        }
        if (!have && !sync_due) {
            if (jr->stop) {
                break;
            }
            if (jr->full && now >= jr->space_check_ns) {
                pthread_mutex_unlock(&jr->mtx);
                reserve_retake(jr);
                pthread_mutex_lock(&jr->mtx);
                continue;
            }
            struct timespec ts = clock_real_after(50000000LL);
            pthread_cond_timedwait(&jr->cond, &jr->mtx, &ts);
            continue;
        }
        /* Take what was appended: after what is still unwritten, if anything is. */
        if (jr->wdone == jr->wbuf.n && !repl_behind(jr) && !jr->fenced) {
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

        /* A cluster leader's stream stores while the segment file is written and synced. */
        bool repl = jr->js != NULL && !jr->fenced;
        if (repl) {
            repl_start(jr);
        }
        int rv = write_sync(jr, stopping);
        if (no_space(rv) && jr->reserve_held) {
            /* The reserve makes the room: what failed is written now, and so are the acks
             * that follow, until the segments they empty are deleted. */
            reserve_release(jr);
            rv = write_sync(jr, stopping);
        }
        /* A cluster leader's bytes count as durable once the stream holds them too. */
        int rrv = repl ? repl_finish(jr) : 0;
        if (rv != 0 && rrv != SL_ECONFLICT) {
            rrv = 0; /* the local write decides first; the stream is tried again with it */
        }

        pthread_mutex_lock(&jr->mtx);
        struct waiter *send = NULL, **tail = &send;
        struct mark *dels = NULL;
        size_t ndels = 0;
        bool fenced_now = rrv == SL_ECONFLICT && !jr->fenced;
        if (rrv == SL_ECONFLICT) {
            jr->fenced = true;
        }
        if (rv == 0 && rrv != 0 && !jr->fenced && !stopping) {
            /* The stream is out of reach (a NATS election takes seconds): the replies wait,
             * and the append is tried again; the lease decides how long this may go on. */
            if (!jr->repl_stalled) {
                LOG(LOG_WARN, "cluster.append_stalled", "err=%s", sl_err_code(rrv));
            }
            jr->repl_stalled = true;
            jr->repl_retry_ns = clock_mono_ns() + 200000000LL;
        } else if (rv == 0 && (rrv != 0 || jr->fenced)) {
            if (!jr->broken) {
                LOG(LOG_ERROR, "cluster.append_failed", "err=%s", sl_err_code(rrv));
            }
            jr->broken = true;
            snprintf(jr->err, sizeof(jr->err), "%s", jr->fenced
                     ? "another broker leads the cluster"
                     : "the cluster's stream cannot be reached");
            retry_at = jr->fenced ? INT64_MAX : clock_mono_ns() + 200000000LL;
            rv = -1;
        } else if (rv == 0) {
            if (jr->repl_stalled) {
                LOG(LOG_INFO, "cluster.append_resumed", "seq=%llu",
                    (unsigned long long)jr->js_last);
            }
            jr->repl_stalled = false;
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
        if (jr->fenced) {
            rv = -1; /* nothing waiting is confirmed */
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
                fail_reply(jr, wt, jr->err);
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
        while (k < jr->nrolls && jr->rolls[k].seq <= jr->fd_seq &&
               (jr->js == NULL || jr->rolls[k].lsn < jr->repl_lsn)) {
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
        repl_compact(jr, dels, ndels);
        free(dels);
        if (fenced_now && jr->on_fenced != NULL) {
            jr->on_fenced(jr->fenced_arg);
        }
        if (jr->full && ndels > 0) {
            jr->space_check_ns = 0; /* deleted segments may have made the room */
            reserve_retake(jr);
        }
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
        fail_reply(jr, wt, "the broker is stopping");
    }
    send_list(rest);
    pthread_mutex_lock(&jr->mtx);
    jr->sending--;
    pthread_cond_broadcast(&jr->durable);
    pthread_mutex_unlock(&jr->mtx);
    return NULL;
}
