/* Replay of the journal at start: every segment read in order, its records applied to the
 * broker through the same functions requests use. */
#include "journal_int.h"
#include "journal_read.h"

#include "change.h"

#include "clock.h"
#include "err.h"
#include "grate.h"
#include "jfile.h"
#include "log.h"
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct replay {
    struct broker *b;
    struct journal *jr;
    int64_t now_wall_ns, now_mono_ns;
    int64_t rec_wall_ns;      /* the time of the record being replayed */
    uint32_t seg;             /* the segment being read */
    bool first;               /* reading the first segment: its snapshot applies */
    bool in_snap;
    bool snap_cut;            /* the snapshot that applies was cut: the next segment's does */
    uint64_t records, jobs_pushed;
    struct sl_str *pay;       /* scratch for a push's payloads */
    uint32_t npay;
    struct broker_clock saved; /* the broker's clock and limits, while replay_enter holds */
    uint64_t max_jobs, max_bytes;
    uint32_t max_payload;
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

/* Makes b run on the records' clock, without the limits of this start (what was accepted
 * once is replayed whatever they are now), until replay_leave. */
static void
replay_enter(struct replay *r)
{
    struct broker *b = r->b;
    r->now_wall_ns = broker_wall_ns(b);
    r->now_mono_ns = broker_mono_ns(b);
    r->rec_wall_ns = r->now_wall_ns;
    r->saved = b->cfg.clock;
    r->max_jobs = b->cfg.max_jobs;
    r->max_bytes = b->cfg.max_bytes;
    r->max_payload = b->cfg.max_payload;
    b->cfg.clock = (struct broker_clock){ replay_mono, replay_wall, r };
    b->replaying = true;
    b->cfg.max_jobs = UINT64_MAX / 2;
    b->cfg.max_bytes = UINT64_MAX / 2;
    b->cfg.max_payload = UINT32_MAX;
}

static void
replay_leave(struct replay *r)
{
    struct broker *b = r->b;
    b->cfg.clock = r->saved;
    b->replaying = false;
    b->cfg.max_jobs = r->max_jobs;
    b->cfg.max_bytes = r->max_bytes;
    b->cfg.max_payload = r->max_payload;
}

static struct job *
byid(struct broker *b, uint64_t id)
{
    return jobidx_get(&b->ids, id);
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
apply_push(struct replay *r, struct rd *d, bool at)
{
    struct broker *b = r->b;
    int64_t wall = r_ms(d);
    int64_t due = at ? r_ms(d) : 0;
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
    if (d->bad || n == 0 || n > BROKER_PUSH_MAX || (at && due <= wall)) {
        return SL_EBADREQ;
    }
    req.due_wall_ms = due;
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
    for (struct job *j = res.first; j != NULL; j = job_block_next(j)) {
        j->seg = r->seg;
    }
    live_add(r->jr, r->seg, n);
    r->jobs_pushed += n;
    return 0;
}

/* R_CRON: an entry as it was; check_only: a later snapshot's, checked and not applied. */
static int
apply_cron(struct replay *r, struct rd *d, bool check_only)
{
    struct cron_spec s = { 0 };
    s.name = r_name(d);
    s.sched = r_str(d, 2);
    s.group = r_name(d);
    s.queue = r_str(d, 2);
    s.paused = r_le(d, 1) != 0;
    unsigned missed = (unsigned)r_le(d, 1);
    s.from_ms = r_ms(d);
    s.last_ms = r_ms(d);
    s.fired = r_le(d, 8);
    s.refused = r_le(d, 8);
    s.payload = r_str(d, 4);
    struct cronexpr expr;
    char why[256];
    if (d->bad || missed >= CRON_MISSED_RULES || s.refused > s.fired ||
        (s.queue.n > 0 && !wire_name_ok(s.queue.p, s.queue.n)) ||
        cronexpr_parse(&expr, s.sched.p, s.sched.n, why, sizeof(why)) != 0) {
        return SL_EBADREQ;
    }
    s.missed = (enum cron_missed)missed;
    return check_only ? 0 : cron_restore(r->b, &s);
}

/* R_CRON_FIRE: an instant fired, with its job when it was stored. */
static int
apply_cron_fire(struct replay *r, struct rd *d)
{
    struct sl_str name = r_name(d);
    int64_t instant = r_ms(d);
    unsigned pushed = (unsigned)r_le(d, 1);
    if (d->bad || pushed > 1 || (pushed == 0 && d->n != 0)) {
        return SL_EBADREQ;
    }
    if (pushed) {
        int rv = apply_push(r, d, false);
        if (rv != 0) {
            return rv;
        }
    }
    cron_replay_fired(r->b, name, instant, pushed != 0);
    return 0;
}

static void
forget_job(struct replay *r, struct job *j)
{
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
    return 0;
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
    /* What a snapshot holds (snapshot()); nothing else may appear in one. */
    static const bool in_snapshot[256] = {
        [R_SNAP_END] = true, [R_NEXTID] = true,  [R_QUEUE] = true,     [R_ROUTE] = true,
        [R_GWEIGHT] = true,  [R_DEDUP] = true,   [R_DEDUP_SEQS] = true, [R_UNIQUE] = true,
        [R_CRON] = true,      [R_GRATE] = true,
    };
    if (r->in_snap && !in_snapshot[p[0]]) {
        return SL_EBADREQ;
    }
    switch (p[0]) {
    case R_SNAP_BEGIN:
        r->in_snap = true;
        return 0;
    case R_SNAP_END:
        r->in_snap = false;
        return 0;
    case R_PUSH:
    case R_PUSH_AT:
        return apply_push(r, &d, p[0] == R_PUSH_AT);
    case R_PUT:
        return apply_put(r, &d);
    case R_CRON:
        return apply_cron(r, &d, check_only);
    case R_CRON_FIRE:
        return apply_cron_fire(r, &d);
    case R_CRON_DEL: {
        struct sl_str name = r_name(&d);
        if (d.bad) {
            return SL_EBADREQ;
        }
        cron_replay_remove(b, name);
        return 0;
    }
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
        struct queue_settings s = { .has_priority = true, .has_weight = true,
                                    .has_max_inflight = true };
        s.priority = (uint32_t)r_le(&d, 4);
        s.weight = (uint32_t)r_le(&d, 4);
        s.max_inflight = (uint32_t)r_le(&d, 4);
        bool paused = r_le(&d, 1) != 0;
        s.has_order = true;
        s.order = d.n > 0 ? (enum queue_order)r_le(&d, 1) : QUEUE_ORDER_GROUPS;
        if (d.n > 0) {
            s.has_retry_base = s.has_retry_max = s.has_retry_jitter = true;
            s.retry.base_ms = (uint32_t)r_le(&d, 4);
            s.retry.max_ms = (uint32_t)r_le(&d, 4);
            s.retry.jitter = (uint8_t)r_le(&d, 1);
        }
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
    case R_GWEIGHT: {
        struct sl_str group = r_name(&d);
        uint32_t w = (uint32_t)r_le(&d, 4);
        if (d.bad || w < GROUP_WEIGHT_MIN || w > GROUP_WEIGHT_MAX) {
            return SL_EBADREQ;
        }
        return check_only ? 0 : broker_group_weight(b, group, w);
    }
    case R_UNIQUE: {
        uint64_t id = r_le(&d, 8);
        struct sl_str key = r_str(&d, 2);
        int64_t expire = r_ms(&d);
        unsigned hold = (unsigned)r_le(&d, 1);
        if (d.bad || id == 0 || key.n == 0 || key.n > UNIQUE_KEY_MAX || hold >= UNIQUE_HOLDS ||
            (hold == UNIQUE_TTL && expire == 0)) {
            return SL_EBADREQ;
        }
        if (check_only || (expire > 0 && expire * 1000000 <= r->now_wall_ns)) {
            return 0; /* its TTL ended while the broker was down */
        }
        return unique_put(&b->uniq, key, id, expire > 0 ? mono_of_wall_ms(r, expire) : INT64_MAX,
                          (enum unique_hold)hold);
    }
    case R_JERR: {
        uint64_t id = r_le(&d, 8);
        unsigned cls = (unsigned)r_le(&d, 1);
        int64_t at = r_ms(&d);
        struct sl_str text = r_str(&d, 2);
        if (d.bad || cls >= JERR_CLASSES || text.n > JOBERR_TEXT_MAX) {
            return SL_EBADREQ;
        }
        struct job *j = check_only ? NULL : byid(b, id);
        /* none: deleted, or recorded in full (with its error) in a later segment */
        return j != NULL ? broker_job_error(b, j, (enum joberr_class)cls, at, text) : 0;
    }
    case R_GRATE: {
        struct sl_str group = r_name(&d);
        uint64_t milli = r_le(&d, 8);
        uint32_t burst = (uint32_t)r_le(&d, 4);
        bool none = milli == 0 && burst == 0;
        if (d.bad || (!none && (milli < RATE_MILLI_MIN || milli > RATE_MILLI_MAX || burst < 1 ||
                                burst > RATE_BURST_MAX))) {
            return SL_EBADREQ;
        }
        return check_only ? 0 : grate_set(b, group, milli, burst);
    }
    case R_FLUSH:
        broker_flush(b, &x, &y);
        return 0;
    case R_EPOCH:
        x = r_le(&d, 8);
        (void)r_str(&d, 2);
        if (d.bad || x == 0) {
            return SL_EBADREQ;
        }
        if (x > r->jr->epoch) {
            r->jr->epoch = x;
        }
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
            dedup_record(b->dedup, client, seq, first, cnt, 0, mono);
        }
        return 0;
    }
    case R_DEDUP_SEQS: {
        struct sl_str client = r_name(&d);
        uint64_t lo = r_le(&d, 8), hi = r_le(&d, 8);
        int64_t last = r_ms(&d);
        if (d.bad || lo > hi) {
            return SL_EBADREQ;
        }
        if (check_only) {
            return 0;
        }
        int64_t mono = mono_of_wall_ms(r, last);
        if (r->now_mono_ns - mono < b->cfg.dedup_window_ns) {
            dedup_record_stored(b->dedup, client, lo, hi, mono);
        }
        return 0;
    }
    default:
        return SL_EBADREQ;
    }
}

/* After the last record: waits count from this start, and the counters from zero. */
static void
replay_finish(struct replay *r)
{
    struct broker *b = r->b;
    for (uint32_t i = 0; i < b->nqueues; i++) {
        struct queue *q = b->qorder[i];
        struct job *j;
        for (j = queue_ready_first(q); j != NULL; j = queue_ready_next(j)) {
            j->ready_ns = r->now_mono_ns; /* waits count from this start */
        }
        q->pushed = q->done = q->failed = 0;
    }
    for (struct group *g = b->groups_head; g != NULL; g = g->next) {
        g->pushed = g->done = g->failed = 0;
        g->pushed_all = g->done_all = g->failed_all = g->run_ns = 0;
    }
}

void
replay_hand_back(struct broker *b)
{
    int64_t now = broker_mono_ns(b);
    for (uint32_t i = 0; i < b->nqueues; i++) {
        struct queue *q = b->qorder[i];
        struct job *j;
        while ((j = q->lists[JOB_RESERVED].tail) != NULL) {
            queue_job_set_head(q, j, JOB_READY);
            j->ready_ns = now; /* waits count from this start */
            change_made(b, &(struct change){ .kind = CH_JOB, .job = j, .head = true });
        }
    }
}

int
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
    jr->segs[jr->nsegs++] = (struct seg){ .seq = seq };
    return 0;
}

/* What a crash while a segment was being created can leave: temporary files, and (from a
 * broker that wrote the header in place) a newest segment shorter than its header. Neither
 * holds a record: they are removed, and said so. A short segment that is not the newest
 * cannot come from a crash (a segment gets a successor only once its header is written) and
 * is left to stop the start as damage. */
static int
drop_torn_creation(struct journal *jr, const uint64_t *seqs, size_t *nseq, char *why, size_t cap)
{
    size_t temps = 0;
    int rv = jf_remove_temps(jr->dir, &temps);
    if (rv != 0) {
        snprintf(why, cap, "cannot remove temporary files in %s: %s", jr->dir, strerror(rv));
        return SL_EIO;
    }
    if (temps > 0) {
        LOG(LOG_WARN, "journal.temp_removed", "dir=\"%s\" files=%zu", jr->dir, temps);
    }
    char path[PATH_MAX];
    struct stat st;
    if (*nseq == 0 || jf_path(path, sizeof(path), jr->dir, seqs[*nseq - 1]) != 0 ||
        lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size >= (off_t)JF_HEADER_SIZE) {
        return 0;
    }
    if (unlink(path) != 0) {
        snprintf(why, cap, "cannot remove %s, a segment whose creation was cut short: %s", path,
                 strerror(errno));
        return SL_EIO;
    }
    LOG(LOG_WARN, "journal.torn_create", "segment=\"%s\" bytes=%lld reason=\"shorter than its "
        "header: its creation was cut short\"", path, (long long)st.st_size);
    (*nseq)--;
    return 0;
}

int
replay_all(struct broker *b, struct journal *jr, char *why, size_t cap)
{
    uint64_t *seqs = NULL;
    size_t nseq = 0;
    int rv = jf_list(jr->dir, &seqs, &nseq);
    if (rv != 0) {
        snprintf(why, cap, "cannot list %s: %s", jr->dir, strerror(rv));
        return SL_EIO;
    }
    if ((rv = drop_torn_creation(jr, seqs, &nseq, why, cap)) != 0) {
        free(seqs);
        return rv;
    }
    struct replay r = { 0 };
    r.b = b;
    r.jr = jr;
    replay_enter(&r);
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
    replay_leave(&r);
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

/* --- records arriving one run at a time (a standby following the stream) ------------------ */

struct replay *
replay_new(struct broker *b, struct journal *jr)
{
    struct replay *r = calloc(1, sizeof(*r));
    if (r != NULL) {
        r->b = b;
        r->jr = jr;
    }
    return r;
}

int
replay_segment(struct replay *r, uint64_t seq)
{
    int rv = add_seg(r->jr, seq);
    if (rv == 0) {
        r->first = r->jr->nsegs == 1 || r->snap_cut;
        r->snap_cut = false;
        r->seg = (uint32_t)seq;
        r->in_snap = false;
    }
    return rv;
}

void
replay_cut(struct replay *r)
{
    if (r->in_snap) {
        r->in_snap = false;
        r->snap_cut = r->first;
    }
}

int
replay_records(struct replay *r, const uint8_t *p, uint32_t n)
{
    replay_enter(r);
    int rv = apply(r, p, n);
    replay_leave(r);
    return rv;
}

void
replay_end(struct replay *r, bool finish)
{
    if (r == NULL) {
        return;
    }
    if (finish) {
        replay_enter(r);
        replay_finish(r);
        replay_leave(r);
    }
    free(r->pay);
    free(r);
}
