/* A list of broker addresses ("URL,URL,..."), as --url and SLUICE_URL take it for a cluster
 * (README "Cluster"), and the reply that sends a client from a standby to the leader. */
#ifndef SLUICE_URLLIST_H
#define SLUICE_URLLIST_H

#include <stdbool.h>
#include <stddef.h>

#define URLLIST_MAX 8
#define URLLIST_URL_MAX 512

struct urllist {
    unsigned n;
    char url[URLLIST_MAX][URLLIST_URL_MAX];
};

/* Splits s at commas (spaces around an item are dropped). 0, or SL_EBADREQ for an empty
 * list or item, more than URLLIST_MAX items, or an item of URLLIST_URL_MAX bytes or more
 * (l is then empty). */
int urllist_parse(struct urllist *l, const char *s);

/* 0 if nng can dial every URL of l (a known transport, a valid address), else SL_EBADREQ
 * (logged at debug with the URL), or SL_EIO when no socket could be made to check with.
 * Dials nothing, so a bad address late in a list is refused before the first is used. */
int urllist_check(const struct urllist *l);

/* Whether the reply rep[0..len) is a cluster broker's not_leader, which names where to go:
 * its leader_url into url ("" when the broker does not know the leader). A not_leader
 * without leader_url (the router's lease) is not one. */
bool urllist_redirect(const void *rep, size_t len, char *url, size_t cap);

/* Where a client goes next after a redirect (leader "" : unknown) or a failure of cur: the
 * named leader, else the next URL of the list after cur. */
const char *urllist_next(const struct urllist *l, const char *cur, const char *leader);

#endif
