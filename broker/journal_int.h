/* The journal's internals, shared by its modules and by nothing else: journal.c (rolling
 * segments, compaction, the group-commit API, open and close), journal_rec.c (the records of
 * each change and snapshot), journal_writer.c (the writer thread), journal_replay.c (replay),
 * journal_repl.c (a cluster leader's stream) and journal_follow.c (a standby's journal). */
#ifndef SLUICE_JOURNAL_INT_H
#define SLUICE_JOURNAL_INT_H

#include "journal.h"
#include "jstream.h"

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
                         u8 order (absent in older journals: groups), u32 retry_base_ms,
                         u32 retry_max_ms, u8 retry_jitter (absent in older journals: the
                         broker's defaults) */
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
    R_EPOCH = 17,     /* u64 epoch, str holder: a cluster leader began (journal_follow.c) */
    R_PUSH_AT = 18,   /* u64 wall_ms, i64 due_wall_ms, then as R_PUSH: delayed jobs */
    R_JERR = 23,      /* u64 id, u8 class, i64 at_wall_ms, str text: a job's last error */
    R_UNIQUE = 24,    /* u64 job id, str key, i64 expire_wall_ms (0: none), u8 hold: a unique
                         key given (after its push's record, and in snapshots) */
    R_CRON = 19,      /* str name, str schedule, str group, str queue ("": the group's route),
                         u8 paused, u8 missed (0 once, 1 skip), i64 from_ms, i64 last_ms,
                         u64 fired, u64 refused, blob payload: a cron entry as it is now */
    R_CRON_DEL = 20,  /* str name: the cron entry removed */
    R_CRON_FIRE = 21, /* str name, i64 instant_ms, u8 pushed, then (pushed) as R_PUSH: the
                         instant fired and its job, one record so that neither is kept
                         without the other; pushed 0: the push was refused */
    R_GRATE = 22,     /* str group, u64 rate (thousandths of a job per second; 0: no limit),
                         u32 burst (0 with rate 0): its start rate (grate.h); tokens are
                         not recorded, a replayed bucket starts full */
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
    uint64_t epoch;            /* the cluster leader epoch last recorded (0: none) */

    /* Replication (a cluster leader: js set before the writer starts; the writer's). The
     * writer counts bytes durable only once they are also in the stream. */
    struct jstream *js;
    uint64_t js_last;          /* the stream's last sequence: what the next append expects */
    uint64_t repl_lsn;         /* the stream holds the journal up to here */
    uint64_t repl_seg;         /* the segment of the byte at repl_lsn */
    bool fenced;               /* another leader appended: nothing is confirmed any more */
    bool repl_stalled;         /* the stream is out of reach: replies wait, appends retried */
    int64_t repl_retry_ns;     /* when to try again */
    void (*on_fenced)(void *arg);
    void *fenced_arg;
    struct jstream_msg *jm;    /* scratch for one append */
    size_t pend_n;             /* messages repl_start published, awaiting repl_finish */
    uint64_t pend_expect;
    size_t capjm;
    struct mark *segfirst;     /* (stream sequence, segment) where each live segment begins */
    size_t nsegfirst, capsegfirst;
    struct compactor *compactor; /* deletes what the stream holds below them (NULL: none) */
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

/* journal.c: a journal on cfg->dir (created 0700, locked against a second broker), with
 * nothing read yet; 0 or SL_EIO / SL_ENOMEM with why. */
int jr_prepare(struct journal **jp, const struct journal_cfg *cfg, char *why, size_t cap);
/* Frees a journal whose writer is not running. */
void jr_free(struct journal *jr);
/* After replay: a new segment beginning with the snapshot of b, the reserved jobs handed back,
 * the writer started, b->jr set. 0, or SL_EIO with why (jr freed). */
int journal_begin_writing(struct broker *b, struct journal *jr, char *why, size_t cap);

/* journal_rec.c, b->lock held (buf_room: any buffer its owner holds). */
/* Seals the records of the change in progress and hands them to the writer. */
void rec_seal(struct journal *jr);
/* A segment's snapshot: everything that is not a job (next id, queues, routes, weights,
 * idempotency keys). */
void snapshot(struct broker *b);
/* Job j in full, as the segment it is written to holds it from then on. */
void put_job(struct broker *b, const struct job *j);
/* A cluster leader's epoch (jr->epoch). */
void epoch_rec(struct broker *b);
/* journal.c: the position after everything appended, the change in progress excluded. */
uint64_t appended_lsn(struct journal *jr);
int buf_room(struct buf *b, size_t extra);
void live_add(struct journal *jr, uint32_t seq, uint64_t n);
void live_sub(struct journal *jr, uint32_t seq);

/* journal_repl.c, the writer's thread (jr->js set) */
/* Appends wbuf from repl_lsn to its end to the stream. 0; SL_ECONFLICT: another leader
 * appended (fenced, for good); another error: the stream is out of reach, try again. */
int repl_publish(struct journal *jr);
/* repl_publish in two halves around the local write: start publishes wbuf[repl_lsn..),
 * finish waits for the stream (and sends what start could not); finish returns as
 * repl_publish. */
void repl_start(struct journal *jr);
int repl_finish(struct journal *jr);
/* Segments dels were deleted: the stream is compacted below the oldest one still kept. */
void repl_compact(struct journal *jr, const struct mark *dels, size_t ndels);

/* journal_compact.c: a thread deleting the stream's messages below a segment's first one.
 * start: 0 or SL_ENOMEM (jr->compactor set); want: the writer's, compact below below, where
 * segment seg begins (c NULL: nothing); stop: before jr is freed (nothing without one). */
struct compactor;
int compactor_start(struct journal *jr);
void compactor_want(struct compactor *c, uint64_t below, uint64_t seg);
void compactor_stop(struct journal *jr);
/* Segment seg begins at stream sequence first_seq. 0 or SL_ENOMEM. */
int repl_segfirst_add(struct journal *jr, uint64_t seg, uint64_t first_seq);

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

/* Replay of records that arrive one at a time, as a standby receives the leader's stream:
 * the same apply as replay_all. replay_segment: records of segment seq follow (the first one
 * given is the segment whose snapshot applies). replay_records: one record (b->lock held).
 * replay_end(r, true): what replay_all does after the last record (b->lock held); false:
 * only frees. NULL from replay_new: out of memory. */
struct replay;
struct replay *replay_new(struct broker *b, struct journal *jr);
int replay_segment(struct replay *r, uint64_t seq);
int replay_records(struct replay *r, const uint8_t *p, uint32_t n);
/* The epoch whose records were arriving ended here (its leader died inside a snapshot): an
 * unfinished snapshot ends, and if it was the one that applies, the next segment's applies
 * instead (it is complete: a new leader starts a segment with its snapshot). */
void replay_cut(struct replay *r);
void replay_end(struct replay *r, bool finish);

#endif
