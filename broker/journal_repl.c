/* A cluster leader's journal, replicated: the writer appends what it wrote to the segment
 * files to the shard's stream (jstream.h) before anything it covers is confirmed, and has the
 * stream compacted below the oldest segment still kept (journal_compact.c), so the stream is
 * as long as the journal. */
#include "journal_int.h"

#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
jm_room(struct journal *jr, size_t n)
{
    if (n < jr->capjm) {
        return 0;
    }
    size_t c = jr->capjm != 0 ? jr->capjm * 2 : 8;
    while (c <= n) {
        c *= 2;
    }
    struct jstream_msg *p = realloc(jr->jm, c * sizeof(*p));
    if (p == NULL) {
        return SL_ENOMEM;
    }
    jr->jm = p;
    jr->capjm = c;
    return 0;
}

int
repl_segfirst_add(struct journal *jr, uint64_t seg, uint64_t first_seq)
{
    if (jr->nsegfirst > 0 && jr->segfirst[jr->nsegfirst - 1].seq >= seg) {
        return 0;
    }
    if (jr->nsegfirst == jr->capsegfirst) {
        size_t c = jr->capsegfirst != 0 ? jr->capsegfirst * 2 : 16;
        struct mark *p = realloc(jr->segfirst, c * sizeof(*p));
        if (p == NULL) {
            return SL_ENOMEM;
        }
        jr->segfirst = p;
        jr->capsegfirst = c;
    }
    jr->segfirst[jr->nsegfirst++] = (struct mark){ first_seq, seg };
    return 0;
}

/* Cuts wbuf[repl_lsn..) into messages: at most jstream_max_msg bytes each, never across a
 * segment roll. Returns how many, or 0 with nothing to send / no memory. */
static size_t
cut_messages(struct journal *jr)
{
    uint64_t end = jr->wbuf_lsn + jr->wbuf.n;
    uint64_t pos = jr->repl_lsn, seg = jr->repl_seg;
    size_t max = jstream_max_msg(jr->js), n = 0;

    pthread_mutex_lock(&jr->mtx);
    while (pos < end) {
        uint64_t stop = end;
        for (size_t i = 0; i < jr->nrolls; i++) {
            if (jr->rolls[i].lsn == pos && jr->rolls[i].seq > seg) {
                seg = jr->rolls[i].seq;
            } else if (jr->rolls[i].lsn > pos && jr->rolls[i].lsn < stop) {
                stop = jr->rolls[i].lsn;
            }
        }
        if (stop - pos > max) {
            stop = pos + max;
        }
        if (jm_room(jr, n) != 0) {
            break;
        }
        jr->jm[n++] = (struct jstream_msg){ jr->wbuf.p + (pos - jr->wbuf_lsn),
                                            (size_t)(stop - pos), seg, pos, jr->epoch, 0 };
        pos = stop;
    }
    pthread_mutex_unlock(&jr->mtx);
    return n;
}

/* The first k messages are in the stream, the k-th at sequence last. */
static void
took(struct journal *jr, size_t k, uint64_t last)
{
    for (size_t i = 0; i < k; i++) {
        uint64_t seq = last - (k - 1 - i);
        if (repl_segfirst_add(jr, jr->jm[i].seg, seq) != 0) {
            LOG(LOG_WARN, "cluster.nomem", "reason=\"a segment's first sequence is not "
                "kept: the stream is not compacted below it\"");
        }
        jr->repl_lsn = jr->jm[i].lsn + jr->jm[i].n;
        jr->repl_seg = jr->jm[i].seg;
    }
    jr->js_last = last;
}

/* The stream's last sequence is not the one this leader expected. Either an append of its
 * own was stored although its answer was lost (a timeout): those are taken as sent; or
 * another broker appended: fenced. 0 when the stream holds only this leader's own messages
 * past js_last, SL_ECONFLICT when fenced, another error to try again later. */
static int
adopt_own(struct journal *jr)
{
    struct jstream_info in;
    int rv = jstream_info(jr->js, &in);
    if (rv != 0) {
        return rv;
    }
    if (in.last_seq < jr->js_last) {
        LOG(LOG_ERROR, "cluster.stream_shorter", "last_seq=%llu expected=%llu reason=\"the "
            "stream lost messages this leader appended\"", (unsigned long long)in.last_seq,
            (unsigned long long)jr->js_last);
        return SL_ECONFLICT;
    }
    if ((rv = jstream_tail_start(jr->js, jr->js_last + 1)) != 0) {
        return rv;
    }
    while (rv == 0 && jr->js_last < in.last_seq) {
        struct jstream_msg m;
        if ((rv = jstream_tail_next(jr->js, &m, 2000)) != 0) {
            break;
        }
        if (m.epoch != jr->epoch || m.lsn != jr->repl_lsn || m.seq != jr->js_last + 1) {
            rv = SL_ECONFLICT;
            break;
        }
        (void)repl_segfirst_add(jr, m.seg, m.seq);
        jr->repl_lsn = m.lsn + m.n;
        jr->repl_seg = m.seg;
        jr->js_last = m.seq;
    }
    jstream_tail_stop(jr->js);
    return rv == SL_ETIMEDOUT ? SL_EIO : rv;
}

int
repl_publish(struct journal *jr)
{
    for (int round = 0; round < 3; round++) {
        size_t n = cut_messages(jr);
        if (n == 0) {
            return jr->repl_lsn < jr->wbuf_lsn + jr->wbuf.n ? SL_ENOMEM : 0;
        }
        uint64_t before = jr->js_last, last = before;
        int rv = jstream_append(jr->js, jr->jm, n, before, &last);
        if (last > before) {
            took(jr, (size_t)(last - before) <= n ? (size_t)(last - before) : n, last);
        }
        if (rv == 0) {
            continue; /* what remains (nothing, normally) goes in the next round */
        }
        if (rv != SL_ECONFLICT || (rv = adopt_own(jr)) != 0) {
            return rv;
        }
    }
    return jr->repl_lsn < jr->wbuf_lsn + jr->wbuf.n ? SL_EIO : 0;
}

void
repl_start(struct journal *jr)
{
    jr->pend_n = cut_messages(jr);
    jr->pend_expect = jr->js_last;
    if (jr->pend_n > 0) {
        (void)jstream_append_start(jr->js, jr->jm, jr->pend_n, jr->pend_expect);
    }
}

int
repl_finish(struct journal *jr)
{
    if (jr->pend_n > 0) {
        uint64_t last = jr->pend_expect;
        int rv = jstream_append_wait(jr->js, jr->jm, jr->pend_n, jr->pend_expect, &last);
        size_t n = jr->pend_n;
        jr->pend_n = 0;
        if (last > jr->pend_expect) {
            took(jr, (size_t)(last - jr->pend_expect) <= n ? (size_t)(last - jr->pend_expect) : n,
                 last);
        }
        if (rv == SL_ECONFLICT && (rv = adopt_own(jr)) != 0) {
            return rv;
        }
        if (rv != 0 && rv != SL_ECONFLICT) {
            return rv;
        }
    }
    return repl_publish(jr); /* what is left, normally nothing */
}

/* Once the local segments dels are deleted, the stream's messages below the first message of
 * the oldest segment left go too (journal_compact.c). */
void
repl_compact(struct journal *jr, const struct mark *dels, size_t ndels)
{
    if (jr->js == NULL || ndels == 0 || jr->nsegfirst == 0) {
        return;
    }
    uint64_t old_first = jr->segfirst[0].lsn;
    size_t k = 0;
    for (size_t i = 0; i < jr->nsegfirst; i++) {
        bool gone = false;
        for (size_t d = 0; d < ndels; d++) {
            gone |= dels[d].seq == jr->segfirst[i].seq;
        }
        if (!gone) {
            jr->segfirst[k++] = jr->segfirst[i];
        }
    }
    jr->nsegfirst = k;
    if (k == 0 || jr->segfirst[0].lsn <= old_first) {
        return;
    }
    compactor_want(jr->compactor, jr->segfirst[0].lsn, jr->segfirst[0].seq);
}
