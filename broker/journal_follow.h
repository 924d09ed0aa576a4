/* A standby's journal (--cluster): the leader's stream applied record by record through the
 * same code as replay, and mirrored to local segment files; promotion turns it into the
 * journal of a leader. Used by cluster.c only. */
#ifndef SLUICE_JOURNAL_FOLLOW_H
#define SLUICE_JOURNAL_FOLLOW_H

#include "broker.h"
#include "journal.h"
#include "jstream.h"

#include <stddef.h>
#include <stdint.h>

struct follow;

/* Locks cfg->dir, moves the segments a previous run left to cfg->dir/prev (the stream is what
 * a standby rebuilds from), and prepares to apply into b, which must be new (only the default
 * queue). 0, or SL_EIO / SL_ENOMEM with why. cfg's cluster fields are used on promotion. */
int journal_follow_open(struct follow **fp, struct broker *b, const struct journal_cfg *cfg,
                        char *why, size_t cap);
/* Frees f (an unpromoted standby). NULL does nothing. */
void journal_follow_close(struct follow *f);

/* Writes m's bytes to the local segment it names and applies its whole records (b->lock
 * taken inside). The stream must begin at a segment's snapshot and continue without a gap in
 * each epoch. 0; SL_EBADREQ (a message that cannot come from the leader's journal), SL_EIO or
 * SL_ENOMEM with why: the standby must start again from the stream. */
int journal_follow_msg(struct follow *f, const struct jstream_msg *m, char *why, size_t cap);

struct follow_state {
    uint64_t last_seq, epoch, next_lsn, seg, records;
};
void journal_follow_state(const struct follow *f, struct follow_state *st);

/* The lease is this broker's (epoch) and every message of the stream is applied: finishes
 * replay (reserved jobs go back to their queues' heads), starts a new segment with a
 * snapshot and an epoch record, and starts the writer appending to the stream after the
 * last message applied; b->jr is set and *fp freed. 0, or an error with why (the broker
 * cannot lead: it must stop). Call without b->lock. */
int journal_promote(struct follow **fp, uint64_t epoch, char *why, size_t cap);

#endif
