#include "cluster.h"

#include "clock.h"
#include "err.h"
#include "jfile.h"
#include "journal_follow.h"
#include "journal_int.h"
#include "jstream.h"
#include "log.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum role { ROLE_STANDBY, ROLE_LEADER };

struct cluster {
    struct cluster_cfg cfg;
    char urls[1024], shard[40], advertise[256];
    struct broker *b;
    struct journal_cfg jc;
    struct jstream *js;
    struct follow *f;
    char holder[64];
    pthread_t thr;
    bool started;
    pthread_mutex_t mtx;           /* guards what status and leader_url read */
    pthread_cond_t cond;
    atomic_llong serve_until;      /* mono ns: serving before it (leader) */
    atomic_bool restart, stop, step_down;
    atomic_uint restart_delay_ms;
    enum role role;
    uint64_t epoch, rev;           /* the epoch led, the lease's revision last written */
    char leader_url[256];
    uint64_t rev_seen;             /* standby: the lease revision last seen, and when */
    int64_t rev_seen_ns;
    int64_t started_ns;            /* when it began to stand by */
    bool tailing;
    uint64_t tail_from;            /* the first sequence the tail may apply */
    struct jstream_info info;      /* refreshed once a second */
    int64_t info_ns;
    uint64_t applied_seq;
    int64_t applied_ns;
};

static int64_t
half_lease_ns(const struct cluster *c)
{
    return (int64_t)c->cfg.lease_ms * 500000LL;
}

bool
cluster_serving(const struct cluster *c)
{
    return clock_mono_ns() < atomic_load(&c->serve_until);
}

bool
cluster_restart_wanted(const struct cluster *c)
{
    return atomic_load(&c->restart);
}

unsigned
cluster_restart_delay_ms(const struct cluster *c)
{
    return atomic_load(&c->restart_delay_ms);
}

void
cluster_leader_url(struct cluster *c, char *out, size_t cap)
{
    pthread_mutex_lock(&c->mtx);
    snprintf(out, cap, "%s", c->role == ROLE_LEADER ? c->advertise : c->leader_url);
    pthread_mutex_unlock(&c->mtx);
}

/* The process starts again as a standby: main is woken and executes itself anew. */
static void
want_restart(struct cluster *c, const char *why)
{
    atomic_store(&c->serve_until, 0);
    /* A stream that cannot be applied is not retried in a tight loop. */
    if (strstr(why, "could not") != NULL) {
        atomic_store(&c->restart_delay_ms, 1000);
    }
    if (!atomic_exchange(&c->restart, true)) {
        LOG(LOG_WARN, "cluster.restart", "reason=\"%s\" then=standby", why);
        kill(getpid(), SIGUSR2);
    }
}

static void
on_fenced(void *arg)
{
    want_restart(arg, "another broker appended to the stream: this one no longer leads");
}

static void
set_standby(struct broker *b, bool standby)
{
    pthread_mutex_lock(&b->lock);
    b->standby = standby;
    pthread_mutex_unlock(&b->lock);
}

int
cluster_open(struct cluster **cp, struct broker *b, const struct cluster_cfg *cfg,
             const struct journal_cfg *jc, char *why, size_t cap)
{
    struct cluster *c = calloc(1, sizeof(*c));
    *cp = NULL;
    if (c == NULL) {
        snprintf(why, cap, "out of memory");
        return SL_ENOMEM;
    }
    pthread_mutex_init(&c->mtx, NULL);
    pthread_cond_init(&c->cond, NULL);
    snprintf(c->urls, sizeof(c->urls), "%s", cfg->urls);
    snprintf(c->shard, sizeof(c->shard), "%s", cfg->shard);
    snprintf(c->advertise, sizeof(c->advertise), "%s", cfg->advertise);
    c->cfg = *cfg;
    c->cfg.urls = c->urls;
    c->cfg.shard = c->shard;
    c->cfg.advertise = c->advertise;
    c->b = b;
    c->jc = *jc;
    c->jc.on_fenced = on_fenced;
    c->jc.fenced_arg = c;
    char host[32] = "host";
    (void)gethostname(host, sizeof(host) - 1);
    snprintf(c->holder, sizeof(c->holder), "%.31s:%d:%llx", host, (int)getpid(),
             (unsigned long long)(clock_mono_ns() & 0xffffff));
    struct jstream_cfg jsc = { c->urls, c->shard, cfg->replicas, 2000 };
    int rv = jstream_open(&c->js, &jsc, why, cap);
    if (rv != 0) {
        cluster_free(c);
        return rv;
    }
    c->jc.js = c->js;
    b->cluster = c;
    struct jstream_info in;
    struct jstream_lease l;
    if ((rv = jstream_info(c->js, &in)) != 0) {
        snprintf(why, cap, "cannot read the stream of shard %s: %s", c->shard, sl_err_code(rv));
        cluster_free(c);
        return rv == SL_ENOMEM ? rv : SL_ETIMEDOUT;
    }
    int lrv = jstream_lease_get(c->js, &l);
    uint64_t rev;
    if (in.last_seq == 0 && (lrv == SL_ENOTFOUND || (lrv == 0 && l.holder[0] == '\0')) &&
        jstream_lease_put(c->js, lrv == 0 ? l.rev : 0, c->holder, c->advertise, &rev) == 0) {
        /* An empty stream and nobody leading: this broker's own journal begins it. */
        c->epoch = c->rev = c->jc.epoch = rev;
        if ((rv = journal_open(b, &c->jc, why, cap)) != 0) {
            cluster_free(c);
            return rv;
        }
        c->role = ROLE_LEADER;
        atomic_store(&c->serve_until, clock_mono_ns() + half_lease_ns(c));
        LOG(LOG_INFO, "cluster.lead", "shard=%s epoch=%llu seeded=1", c->shard,
            (unsigned long long)c->epoch);
        *cp = c;
        return 0;
    }
    if ((rv = journal_follow_open(&c->f, b, &c->jc, why, cap)) != 0) {
        cluster_free(c);
        return rv;
    }
    b->standby = true;
    c->role = ROLE_STANDBY;
    c->rev_seen_ns = c->started_ns = clock_mono_ns();
    LOG(LOG_INFO, "cluster.standby", "shard=%s stream_last=%llu", c->shard,
        (unsigned long long)in.last_seq);
    *cp = c;
    return 0;
}

/* Applies the next message of the stream, waiting up to wait_ms: 0, SL_ETIMEDOUT (caught
 * up), or an error after which the standby must start again. */
static int
follow_next(struct cluster *c, uint64_t wait_ms)
{
    int rv;
    if (!c->tailing) {
        struct follow_state st;
        journal_follow_state(c->f, &st);
        uint64_t from = st.last_seq + 1;
        if (st.last_seq == 0) {
            /* From the stream's first message, as its leader reports it (a consumer served
             * by a replica behind it may still deliver what is below), or from the start
             * the leader recorded, if later (journal_compact.c). */
            struct jstream_info in;
            uint64_t start = 0;
            if ((rv = jstream_info(c->js, &in)) != 0 ||
                (rv = jstream_start_get(c->js, &start)) != 0) {
                return rv == SL_EUNREACHABLE ? SL_ETIMEDOUT : rv;
            }
            from = in.first_seq > 0 ? in.first_seq : 1;
            from = start > from ? start : from;
        }
        if ((rv = jstream_tail_start(c->js, from)) != 0) {
            return rv == SL_EUNREACHABLE ? SL_ETIMEDOUT : rv;
        }
        c->tail_from = from;
        c->tailing = true;
    }
    struct jstream_msg m;
    if ((rv = jstream_tail_next(c->js, &m, wait_ms)) != 0) {
        return rv == SL_EUNREACHABLE ? SL_ETIMEDOUT : rv;
    }
    /* Exactly the next message, or the tail starts again: a consumer served by a replica
     * that is still catching up (a NATS node just restarted) can skip messages, or deliver
     * some a compaction already deleted. */
    struct follow_state st;
    journal_follow_state(c->f, &st);
    uint64_t want = st.last_seq != 0 ? st.last_seq + 1 : c->tail_from;
    if (m.seq < want) {
        return 0;
    }
    if (m.seq > want) {
        jstream_tail_stop(c->js);
        c->tailing = false;
        /* Either the leader compacted the stream past this standby (which must then start
         * again from the stream's beginning), or the consumer skipped (read again). */
        struct jstream_info in;
        uint64_t start = 0;
        if (st.last_seq != 0 && jstream_info(c->js, &in) == 0 &&
            jstream_start_get(c->js, &start) == 0 && (in.first_seq > want || start > want)) {
            LOG(LOG_WARN, "cluster.compacted_past", "expected=%llu first=%llu start=%llu "
                "reason=\"the stream was compacted past this standby: starting again\"",
                (unsigned long long)want, (unsigned long long)in.first_seq,
                (unsigned long long)start);
            return SL_ECONFLICT;
        }
        LOG(LOG_WARN, "cluster.tail_gap", "expected=%llu got=%llu reason=\"the stream's "
            "consumer skipped messages: reading again\"", (unsigned long long)want,
            (unsigned long long)m.seq);
        usleep(100000);
        return SL_ETIMEDOUT;
    }
    char why[256];
    if ((rv = journal_follow_msg(c->f, &m, why, sizeof(why))) != 0) {
        LOG(LOG_ERROR, "cluster.follow_failed", "seq=%llu reason=\"%s\"",
            (unsigned long long)m.seq, why);
        return rv;
    }
    pthread_mutex_lock(&c->mtx);
    c->applied_seq = m.seq;
    c->applied_ns = clock_mono_ns();
    pthread_mutex_unlock(&c->mtx);
    return 0;
}

/* Applies the stream up to its last message. */
static int
catch_up(struct cluster *c)
{
    struct jstream_info in;
    int rv = jstream_info(c->js, &in);
    for (int64_t until = clock_mono_ns() + 10000000000LL; rv == 0 && !atomic_load(&c->stop);) {
        struct follow_state st;
        journal_follow_state(c->f, &st);
        if (st.last_seq >= in.last_seq) {
            return 0;
        }
        rv = follow_next(c, 200);
        if (rv == SL_ETIMEDOUT && clock_mono_ns() < until) {
            rv = 0;
        }
    }
    return rv;
}

/* One framed R_EPOCH record. */
static size_t
epoch_record(uint8_t *out, uint64_t epoch)
{
    uint8_t *p = out + JF_FRAME_SIZE;
    p[0] = R_EPOCH;
    for (int i = 0; i < 8; i++) {
        p[1 + i] = (uint8_t)(epoch >> (8 * i));
    }
    p[9] = p[10] = 0; /* holder: "" */
    jf_frame(out, p, 11);
    return JF_FRAME_SIZE + 11;
}

/* The lease is this broker's (epoch): the stream is applied to its end and an epoch record
 * appended after it, which fences the old leader (its next append expects a sequence that is
 * gone); then promotion. */
static int
take_over(struct cluster *c, uint64_t epoch)
{
    uint8_t rec[JF_FRAME_SIZE + 16];
    int rv = SL_ETIMEDOUT;
    for (int tries = 0; tries < 50 && !atomic_load(&c->stop); tries++) {
        if ((rv = catch_up(c)) != 0) {
            break;
        }
        struct follow_state st;
        journal_follow_state(c->f, &st);
        if (st.epoch > epoch) {
            /* A broker that took the lease after this one appended its epoch first: this
             * one lost its lease meanwhile and must not append after it. */
            LOG(LOG_WARN, "cluster.take_over_lost", "epoch=%llu stream_epoch=%llu "
                "reason=\"a newer leader appended first\"", (unsigned long long)epoch,
                (unsigned long long)st.epoch);
            rv = SL_ECONFLICT;
            break;
        }
        if (st.last_seq == 0) {
            /* The stream is empty (catch_up reached its end): there is nothing to fence and
             * no segment to append to. The promoted writer begins the stream with a segment's
             * snapshot, expecting it empty, as a broker that seeds it does. */
            rv = 0;
            break;
        }
        size_t n = epoch_record(rec, epoch);
        struct jstream_msg m = { rec, n, st.seg, st.next_lsn, epoch, 0 };
        uint64_t last;
        rv = jstream_append(c->js, &m, 1, st.last_seq, &last);
        if (rv == 0) {
            m.seq = last;
            char why[256];
            if ((rv = journal_follow_msg(c->f, &m, why, sizeof(why))) != 0) {
                LOG(LOG_ERROR, "cluster.follow_failed", "reason=\"%s\"", why);
            }
            break;
        }
        if (rv != SL_ECONFLICT) {
            usleep(100000);
        }
    }
    jstream_tail_stop(c->js);
    c->tailing = false;
    if (rv != 0) {
        return rv;
    }
    char why[256];
    if ((rv = journal_promote(&c->f, epoch, why, sizeof(why))) != 0) {
        LOG(LOG_ERROR, "cluster.promote_failed", "reason=\"%s\"", why);
        return rv;
    }
    return 0;
}

static void
try_take(struct cluster *c, uint64_t expect)
{
    uint64_t rev;
    int64_t t0 = clock_mono_ns();
    if (jstream_lease_put(c->js, expect, c->holder, c->advertise, &rev) != 0) {
        return; /* another standby was first, or NATS is out of reach */
    }
    LOG(LOG_INFO, "cluster.lease_taken", "epoch=%llu", (unsigned long long)rev);
    int rv = take_over(c, rev);
    if (rv != 0) {
        want_restart(c, "the stream could not be taken over");
        return;
    }
    pthread_mutex_lock(&c->mtx);
    c->role = ROLE_LEADER;
    c->epoch = c->rev = rev;
    pthread_mutex_unlock(&c->mtx);
    set_standby(c->b, false);
    atomic_store(&c->serve_until, t0 + half_lease_ns(c));
    LOG(LOG_INFO, "cluster.lead", "shard=%s epoch=%llu ms=%lld", c->shard,
        (unsigned long long)rev, (long long)((clock_mono_ns() - t0) / 1000000));
}

/* A standby looks at the lease: released, or unchanged for a whole lease, it is taken. */
static void
watch_lease(struct cluster *c)
{
    struct jstream_lease l;
    int rv = jstream_lease_get(c->js, &l);
    int64_t now = clock_mono_ns();
    if (rv == SL_ENOTFOUND || (rv == 0 && l.holder[0] == '\0')) {
        /* Released: taken by a standby that has stood by for a lease at least, so that the
         * broker that stepped down, starting again, leaves it to the others. */
        if (now - c->started_ns > 2 * half_lease_ns(c)) {
            try_take(c, rv == 0 ? l.rev : 0);
        }
        return;
    }
    if (rv != 0) {
        return;
    }
    if (l.rev != c->rev_seen) {
        pthread_mutex_lock(&c->mtx);
        c->rev_seen = l.rev;
        snprintf(c->leader_url, sizeof(c->leader_url), "%s", l.url);
        pthread_mutex_unlock(&c->mtx);
        c->rev_seen_ns = now;
    } else if (now - c->rev_seen_ns > 2 * half_lease_ns(c)) {
        try_take(c, l.rev);
    }
}

static void
standby_round(struct cluster *c, int64_t *next_watch)
{
    int rv = follow_next(c, 50);
    if (rv != 0 && rv != SL_ETIMEDOUT) {
        LOG(LOG_WARN, "cluster.follow_stopped", "err=%s", sl_err_code(rv));
        want_restart(c, "the stream could not be applied");
        return;
    }
    if (clock_mono_ns() >= *next_watch) {
        watch_lease(c);
        *next_watch = clock_mono_ns() + half_lease_ns(c) / 4;
    }
}

/* Sleeps up to ns, or until stopped or asked to step down. */
static void
nap(struct cluster *c, int64_t ns)
{
    struct timespec ts = clock_real_after(ns);
    pthread_mutex_lock(&c->mtx);
    if (!atomic_load(&c->stop) && !atomic_load(&c->step_down)) {
        pthread_cond_timedwait(&c->cond, &c->mtx, &ts);
    }
    pthread_mutex_unlock(&c->mtx);
}

static void
leader_round(struct cluster *c)
{
    nap(c, half_lease_ns(c) / 2);
    if (atomic_load(&c->stop) || atomic_load(&c->restart)) {
        return;
    }
    uint64_t rev;
    int64_t t0 = clock_mono_ns();
    if (atomic_load(&c->step_down)) {
        atomic_store(&c->serve_until, 0);
        if (jstream_lease_put(c->js, c->rev, "", "", &rev) == 0) {
            c->rev = 0; /* released: nothing to release at stop */
        }
        want_restart(c, "asked to step down");
        return;
    }
    int rv = jstream_lease_put(c->js, c->rev, c->holder, c->advertise, &rev);
    if (rv == 0) {
        c->rev = rev;
        atomic_store(&c->serve_until, t0 + half_lease_ns(c));
    } else if (rv == SL_ECONFLICT) {
        c->rev = 0;
        want_restart(c, "the lease was taken by another broker");
    } else {
        LOG(LOG_WARN, "cluster.renew_failed", "err=%s", sl_err_code(rv));
    }
}

static void
refresh_info(struct cluster *c)
{
    int64_t now = clock_mono_ns();
    if (now - c->info_ns < 1000000000LL) {
        return;
    }
    struct jstream_info in;
    if (jstream_info(c->js, &in) == 0) {
        pthread_mutex_lock(&c->mtx);
        c->info = in;
        pthread_mutex_unlock(&c->mtx);
    }
    c->info_ns = now;
}

static void *
cluster_main(void *arg)
{
    struct cluster *c = arg;
    int64_t next_watch = 0;
    while (!atomic_load(&c->stop) && !atomic_load(&c->restart)) {
        if (c->role == ROLE_STANDBY) {
            standby_round(c, &next_watch);
        } else {
            leader_round(c);
        }
        refresh_info(c);
    }
    return NULL;
}

int
cluster_start(struct cluster *c)
{
    if (pthread_create(&c->thr, NULL, cluster_main, c) != 0) {
        return SL_ENOMEM;
    }
    c->started = true;
    return 0;
}

void
cluster_stop(struct cluster *c)
{
    if (c == NULL) {
        return;
    }
    /* Stopping with NATS out of reach must not outlast the stop's deadline. */
    if (c->js != NULL) {
        jstream_set_timeout(c->js, 700);
    }
    if (!c->started) {
        return;
    }
    pthread_mutex_lock(&c->mtx);
    atomic_store(&c->stop, true);
    pthread_cond_broadcast(&c->cond);
    /* A standby needs NATS for nothing more: what its thread waits for ends at once. */
    if (c->role == ROLE_STANDBY) {
        jstream_abort(c->js);
    }
    pthread_mutex_unlock(&c->mtx);
    pthread_join(c->thr, NULL);
    c->started = false;
}

void
cluster_free(struct cluster *c)
{
    if (c == NULL) {
        return;
    }
    cluster_stop(c);
    if (c->role == ROLE_LEADER && c->rev != 0 && c->js != NULL && jstream_connected(c->js)) {
        uint64_t rev;
        if (jstream_lease_put(c->js, c->rev, "", "", &rev) == 0) {
            LOG(LOG_INFO, "cluster.lease_released", "epoch=%llu", (unsigned long long)c->epoch);
        }
    }
    journal_follow_close(c->f);
    jstream_close(c->js);
    if (c->b != NULL && c->b->cluster == c) {
        c->b->cluster = NULL;
    }
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mtx);
    free(c);
}

int
cluster_step_down(struct cluster *c)
{
    pthread_mutex_lock(&c->mtx);
    bool leading = c->role == ROLE_LEADER;
    if (leading) {
        atomic_store(&c->step_down, true);
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->mtx);
    return leading ? 0 : SL_ENOTLEADER;
}

static void
kv_s(msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_str(pk, strlen(v));
    msgpack_pack_str_body(pk, v, strlen(v));
}

static void
kv_n(msgpack_packer *pk, const char *k, uint64_t v)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_uint64(pk, v);
}

unsigned
cluster_status_pairs(void)
{
    return 15;
}

void
cluster_status_pack(struct cluster *c, msgpack_packer *pk)
{
    pthread_mutex_lock(&c->mtx);
    bool leader = c->role == ROLE_LEADER;
    uint64_t applied = leader ? c->info.last_seq : c->applied_seq;
    uint64_t lag = c->info.last_seq > applied ? c->info.last_seq - applied : 0;
    int64_t lag_ms = lag > 0 && c->applied_ns > 0 ? (clock_mono_ns() - c->applied_ns) / 1000000
                                                  : 0;
    kv_s(pk, "role", leader ? "leader" : "standby");
    kv_s(pk, "shard", c->shard);
    kv_s(pk, "holder", c->holder);
    kv_s(pk, "advertise", c->advertise);
    kv_s(pk, "leader_url", leader ? c->advertise : c->leader_url);
    kv_n(pk, "epoch", leader ? c->epoch : c->rev_seen);
    kv_n(pk, "serving", cluster_serving(c) ? 1 : 0);
    kv_n(pk, "applied_seq", applied);
    kv_n(pk, "lag_records", lag);
    kv_n(pk, "lag_ms", (uint64_t)(lag_ms > 0 ? lag_ms : 0));
    kv_n(pk, "stream_first_seq", c->info.first_seq);
    kv_n(pk, "stream_last_seq", c->info.last_seq);
    kv_n(pk, "stream_bytes", c->info.bytes);
    kv_n(pk, "stream_replicas_current", c->info.current);
    kv_s(pk, "stream_leader", c->info.leader);
    pthread_mutex_unlock(&c->mtx);
}
