/* What the broker-level unit tests share: string views, a fake clock, one request through
 * the broker's dispatcher, and a journal in a private directory. Include after <cmocka.h>. Everything is static inline, so a test
 * that uses a part pays for nothing else. */
#ifndef SLUICE_TEST_SUPPORT_H
#define SLUICE_TEST_SUPPORT_H

#include "broker.h"
#include "err.h"
#include "jfile.h"
#include "journal.h"
#include "ops.h"
#include "wire.h"

#include <dirent.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000LL

/* A view of a C string. */
static inline struct sl_str
S(const char *z)
{
    return (struct sl_str){ z, (uint32_t)strlen(z) };
}

/* The fake clock: both of a broker's clocks read fake_now, which the test moves. */
static int64_t fake_now;

static inline int64_t
fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

/* A broker on the fake clock, set to start_ns, with cfg's defaults but for the clock. */
static inline struct broker *
fake_broker(const struct broker_cfg *cfg, int64_t start_ns)
{
    struct broker_cfg c = *cfg;
    struct broker *b;
    c.clock = (struct broker_clock){ fake_clock, fake_clock, NULL };
    fake_now = start_ns;
    assert_int_equal(broker_new(&b, &c), 0);
    return b;
}

/* Sends req through the dispatcher; the reply is decoded into rep, whose views live in *keep
 * (free it after wire_msg_fini(rep)). Asserts that the reply is well formed: "ok" matches the
 * code returned, and a failure carries that code's wire name and a message. Returns the code. */
static inline int
request(struct broker *b, const struct wire_msg *req, struct wire_msg *rep, nng_msg **keep)
{
    nng_msg *q, *r;
    msgpack_packer pk;
    assert_int_equal(nng_msg_alloc(&q, 0), 0);
    assert_int_equal(nng_msg_alloc(&r, 0), 0);
    msgpack_packer_init(&pk, q, wire_pack_into_msg);
    assert_int_equal(wire_encode(req, &pk), 0);
    int rv = ops_handle(b, nng_msg_body(q), nng_msg_len(q), 0, r, NULL);
    nng_msg_free(q);
    wire_msg_init(rep);
    assert_int_equal(wire_decode(rep, nng_msg_body(r), nng_msg_len(r), NULL, 0), 0);
    assert_true(WIRE_HAS(rep, WK_OK));
    assert_int_equal(rep->v[WK_OK].b, rv == 0);
    if (rv != 0) {
        assert_true(sl_str_eq(rep->v[WK_ERR].s, sl_err_code(rv)));
        assert_true(rep->v[WK_MSG].s.n > 0);
    }
    *keep = r;
    return rv;
}

/* Makes a private directory for a test, $TMPDIR/NAME.XXXXXX (/tmp without $TMPDIR), and
 * writes its path to dir[0..n). Returns 0, or -1 when it cannot. */
static inline int
tmpdir_make(char *dir, size_t n, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, n, "%s/%s.XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", name);
    return mkdtemp(dir) != NULL ? 0 : -1;
}

/* Removes the files in dir (a journal's: no subdirectories) and dir. Returns 0, or -1 when
 * something is left. */
static inline int
tmpdir_remove(const char *dir)
{
    char path[512];
    struct dirent *e;
    int rv = 0;

    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            rv |= unlink(path);
        }
    }
    closedir(d);
    rv |= rmdir(dir);
    return rv == 0 ? 0 : -1;
}

/* A broker as fake_broker's with the journal jc open; the test fails, saying why, when it
 * does not open. */
static inline struct broker *
journal_broker(const struct broker_cfg *cfg, const struct journal_cfg *jc, int64_t start_ns)
{
    char why[512] = "";
    struct broker *b = fake_broker(cfg, start_ns);
    int rv = journal_open(b, jc, why, sizeof(why));
    if (rv != 0) {
        print_error("journal_open: %s\n", why);
    }
    assert_int_equal(rv, 0);
    return b;
}

/* Whether the journal in dir has the segment numbered seq. */
static inline bool
has_segment(const char *dir, uint64_t seq)
{
    uint64_t *seqs = NULL;
    size_t n = 0;
    bool found = false;
    assert_int_equal(jf_list(dir, &seqs, &n), 0);
    for (size_t i = 0; i < n; i++) {
        found |= seqs[i] == seq;
    }
    free(seqs);
    return found;
}

/* Walking the jobs of q in state st: ready jobs group by group, in the broker's order of
 * groups, each group's in its order (so that two brokers holding the same jobs walk them
 * alike, whatever order their lanes were made in); other states in their list's order. */
static inline struct job *
list_from_group(const struct queue *q, const struct group *g)
{
    for (; g != NULL; g = g->next) {
        struct job *j = queue_group_first(q, g);
        if (j != NULL) {
            return j;
        }
    }
    return NULL;
}

static inline struct job *
list_first(const struct broker *b, const struct queue *q, int st)
{
    return st == JOB_READY ? list_from_group(q, b->groups_head) : q->lists[st].head;
}

static inline struct job *
list_next(const struct broker *b, const struct job *j)
{
    (void)b;
    if (j->next != NULL || j->state != JOB_READY) {
        return j->next;
    }
    return list_from_group(j->queue, j->group->next);
}

/* qsort order of ready jobs by arrival in their queue: the order one list would hold. */
static inline int
by_arrival(const void *a, const void *b)
{
    const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;
    return x->rseq < y->rseq ? -1 : x->rseq > y->rseq;
}

#endif
