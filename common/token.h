/* The shared token: a secret that every request to a server started with --token-file must
 * carry in its "token" field (PROTOCOL.md, "Authentication").
 *
 * A server (broker, worker-pool) loads it once at start and checks each request with
 * token_check before dispatching it; a client (client.c, wapi.c) loads the same file and
 * token_attach adds the field to each request it sends. The token is never logged: messages
 * about it name the file, never its contents. */
#ifndef SLUICE_TOKEN_H
#define SLUICE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_MAX 1024u /* bytes of a token, after its trailing newline is cut */

struct nng_msg;

struct token {
    uint32_t n;               /* 0: no token configured (nothing is checked or attached) */
    char s[TOKEN_MAX];        /* n bytes, not NUL-terminated */
};

/* Reads the token from the file at path into *t. The file must be a regular file owned by the
 * caller's user (or root) with no permission bits for group or others, hold 1 to TOKEN_MAX
 * bytes once one trailing "\n" (or "\r\n") is cut, and contain no NUL and no other newline.
 * Returns 0, or -1 with a message for people in why (naming the path, never the contents);
 * *t is written only on success. Blocks (file I/O). */
int token_load(struct token *t, const char *path, char *why, size_t whycap);

/* Does the request's token (p, n: a view, may be NULL when the request has none) equal t?
 * The time taken depends only on t's length, not on where the bytes differ. With no token
 * configured (t->n == 0) every request passes. */
bool token_check(const struct token *t, const char *p, size_t n);

/* Adds "token": t to the msgpack map whose encoding is the whole body of m (a request): the
 * map's count grows by one and the pair is appended. Does nothing when t is NULL or has no
 * token. Returns 0, or -1 when the body is not a map or memory runs out (m is then unchanged
 * or still a valid request without the token). */
int token_attach(struct nng_msg *m, const struct token *t);

/* Wipes the token's bytes (explicit_bzero: not optimised away). */
void token_clear(struct token *t);

#endif
