/* One page of the broker's groups, sorted and filtered, for group.list (the dashboard's
 * Groups table): with 10,000 groups a page is what travels, never the whole list. */
#ifndef SLUICE_GROUPPAGE_H
#define SLUICE_GROUPPAGE_H

#include "group.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

#define GROUPPAGE_MAX 500     /* groups in one page at most (max above it is refused) */
#define GROUPPAGE_DEFAULT 50  /* without max */

/* What a page may be sorted by. */
enum grouppage_key {
    GP_NAME, GP_BACKLOG, GP_READY, GP_INFLIGHT, GP_DELAYED, GP_DEAD, GP_OLDEST, GP_RATE,
    GP_WAIT_P50, GP_WAIT_P99, GP_PUSHED, GP_DONE, GP_FAILED, GP_NKEYS
};

/* The key named s ("name", "count", ...: the fields of stats' groups, grouppage.c's table) in
 * *k; false for none. */
bool grouppage_key_parse(struct sl_str s, enum grouppage_key *k);

/* The names, for an error that lists them: "name, backlog, ..." (static storage). */
const char *grouppage_key_list(void);

struct grouppage_req {
    enum grouppage_key key;
    bool desc;
    struct sl_str filter;     /* groups whose name holds it, ignoring case; n == 0: all */
    uint64_t offset;          /* matching groups skipped */
    uint32_t max;             /* 1..GROUPPAGE_MAX */
};

/* Selects the page r asks for among the n groups of list (a broker's first-seen list,
 * head first) as of now_ns (monotonic): out[0..*nout) (out holds r->max), in order; *total:
 * how many groups match the filter. Groups that compare equal keep their first-seen order
 * (reversed by desc). Returns 0 or SL_ENOMEM (nothing written). The caller holds b->lock;
 * allocates n rows (a pointer, a double, an index) while it runs. */
int grouppage_select(const struct group *head, uint32_t n, const struct grouppage_req *r,
                     int64_t now_ns, const struct group **out, uint32_t *nout,
                     uint64_t *total);

#endif
