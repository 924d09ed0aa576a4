/* The journal's internals, shared by its modules and by nothing else: journal_rec.c (the
 * records: encoding, the change consumer, the snapshot), journal_compact.c (segments:
 * rolling, compaction, deletion), journal.c (the group-commit API, open and close),
 * journal_writer.c (the writer thread) and journal_replay.c (replay at start). */
#ifndef SLUICE_JOURNAL_INT_H
#define SLUICE_JOURNAL_INT_H

#include "journal.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record types: the first byte of each record's payload. Integers are little-endian; a
 * string is a u16 length and its bytes; a blob a u32 length and its bytes. */
enum rec {
    R_PUSH = 1,       /* u64 wall_ms, u64 first_id, u32 n, u32 ttr_ms, u16 max_attempts,
                         str group, str queue, u8 keyed [str client, u64 seq], n x blob */
    R_JOB = 2,        /* u64 id, u8 state, u8 head, u16 attempts, u8 crashes, i64 due_wall_ms */
    /* 3: unused */
    R_QUEUE = 4,      /* str name, u32 priority, u32 weight, u32 max_inflight, u8 paused,
                         u8 order (absent in older journals: groups) */
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
    R_DEDUP_SEQS = 15, /* str client, u64 lo, u64 hi, i64 last_wall_ms: its keys lo..hi were
                          stored, their answers forgotten (snapshot only; before its R_DEDUP) */
    R_GWEIGHT = 16,   /* str group, u32 weight (thousandths) */
};

struct buf {
    uint8_t *p;
    size_t n, cap;
};

struct seg {
    uint64_t seq;
    uint64_t live;     /* jobs whose full record is in this segment */
    uint64_t total;    /* jobs ever recorded in full here */
    uint64_t snap_lsn; /* the end of this segment's snapshot in the stream (0: on disk at start) */
    bool copied;       /* its jobs were written again elsewhere (compaction) */
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
    bool full;                 /* the disk is full and the reserve is not held: pushes are
                                  refused, settles are written into the space it left */

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
    uint64_t reserve_bytes;    /* the size of the reserve file, fixed at open */
    bool reserve_held;         /* the reserve file exists at that size */
    int64_t space_check_ns;    /* full: when to try taking the reserve again */
};

#define WHERE_TAIL 0
#define WHERE_HEAD 1
#define WHERE_STAY 2

/* journal_rec.c, b->lock held (buf_room: any buffer its owner holds). */
/* Makes room for extra more bytes in b. 0 or SL_ENOMEM. */
int buf_room(struct buf *b, size_t extra);
/* Seals the records of the change in progress (jr->op) and hands them to the writer. */
void journal_op_seal(struct journal *jr);
/* Writes j in full (R_PUT), naming the job after it in its list. */
void journal_put_job(struct broker *b, const struct job *j);
/* Writes everything that is not a job, as a segment begins with it. */
void journal_snapshot(struct broker *b);

/* journal_compact.c, b->lock held */
/* n more jobs have their full record in segment seq; one less has. */
void live_add(struct journal *jr, uint32_t seq, uint64_t n);
void live_sub(struct journal *jr, uint32_t seq);
/* Appends (lsn, seq) to the marks *v (*n of *cap). 0 or SL_ENOMEM. */
int push_mark(struct mark **v, size_t *n, size_t *cap, uint64_t lsn, uint64_t seq);

/* journal.c */
/* The end of what was handed to the writer so far. Takes jr->mtx. */
uint64_t appended_lsn(struct journal *jr);

/* journal_writer.c */
/* The space kept free for settle records (acks, nacks, dead jobs) once the disk is full: a
 * preallocated file in the segment directory, deleted when a write runs out of space, so
 * that the records which let compaction delete segments can still be written. */
#define JOURNAL_RESERVE_NAME "RESERVE"
/* Deletes the reserve file a previous run left. */
void journal_reserve_drop(struct journal *jr);
/* Sets jr->reserve_bytes for the file system of jr->dir and creates the reserve file; without
 * room for it the journal starts full. Call once the segment written to is open, before the
 * writer starts. */
void journal_reserve_open(struct journal *jr);

/* Opens segment seq as the one written to (the writer's side: jr->fd). 0 or an errno value. */
int open_segment(struct journal *jr, uint64_t seq);
/* The writer thread's body (arg: the journal). */
void *writer_main(void *arg);

/* journal_replay.c, before the writer starts */
/* Appends seq to the segment set. 0 or SL_ENOMEM. */
int add_seg(struct journal *jr, uint64_t seq);
/* Replays every segment in jr->dir into b, filling jr's segment set. 0, or SL_EIO with why. */
int replay_all(struct broker *b, struct journal *jr, char *why, size_t cap);
/* Hands back the jobs replay left reserved (their workers are gone): each goes back to the
 * head of its queue, its attempt still counted, and gets a record saying so. Without that
 * record the journal would still say reserved, and the next replay would apply a later route
 * change or flush to a job it holds as reserved, which those leave where it is. Call once
 * replay succeeded, with b->jr set and b->lock held, after the new segment's snapshot. */
void replay_hand_back(struct broker *b);

#endif
