/* What the seed writer's files (mkcorpus.c, mkcorpus_req.c) share. */
#ifndef SLUICE_MKCORPUS_H
#define SLUICE_MKCORPUS_H

#include "wire.h"

#include <msgpack.h>
#include <nng/nng.h>
#include <stddef.h>

/* Writes p[0..n) as DIR/target/name (DIR: mkcorpus's argument); exits on failure. */
void save_one(const char *target, const char *name, const void *p, size_t n);

/* p[0..n) with the token FUZZ_BASE_TOKEN attached to each request of it that is a map; the
 * rest as it is. *out is allocated. */
void with_token(const void *p, size_t n, nng_msg **out);

/* The input being built: one or more requests, each appended by req_add; a seed writer
 * saves it and clears it (init and destroy are the caller's). */
extern msgpack_sbuffer req_seq;

/* Starts m anew as a request of op. */
void req_begin(struct wire_msg *m, const char *op);

/* Appends m's encoding to req_seq. */
void req_add(const struct wire_msg *m);

/* The seeds of fuzz_request_journal (sequences with restarts) and of fuzz_request_token
 * (token fields of every kind). */
void journal_requests(void);
void token_requests(void);

#endif
