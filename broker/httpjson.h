/* The HTTP/JSON API's mapping onto the wire protocol, with no network in it: the table of
 * endpoints (method and path -> wire op), a JSON request body -> msgpack request, a msgpack
 * reply -> JSON document, and error codes -> HTTP statuses. httpapi.c serves it.
 *
 * Every endpoint is one wire op and goes through ops_handle like a request from a socket:
 * the same checks, limits and error codes. The JSON names of the fields are the wire keys
 * (PROTOCOL.md), each endpoint accepting only its op's; payloads come as UTF-8 strings
 * ("payload", "payloads") or base64 ("payload_b64", "payloads_b64"). A reply's bin and str
 * values become JSON strings when they are valid UTF-8, else the key gains "_b64" and the
 * value is base64 (standard alphabet, padded); an array item that is not UTF-8 becomes
 * {"_b64": BASE64}. */
#ifndef SLUICE_HTTPJSON_H
#define SLUICE_HTTPJSON_H

#include "wire.h"

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HJ_WHY_MAX 256

struct hj_endpoint {
    const char *method;
    const char *path;           /* "/v1/..." with one "*" segment at most: a name */
    enum wire_op op;
    enum wire_key path_key;     /* the wire key the "*" segment fills (WK_OP: none) */
    const enum wire_key *fields; /* keys a body may carry, ended by WK_OP */
    unsigned flags;
};

#define HJ_PAYLOADS 1u  /* the body carries payloads (payload, payloads, *_b64) */
#define HJ_IDEM 2u      /* an Idempotency-Key header maps onto client and seq */
#define HJ_BODY 4u      /* a body is required */

/* The endpoint for method and path (no query string). *arg: the "*" segment (a view into
 * path). NULL when none: *path_known tells whether some endpoint has that path (405) or
 * none does (404). */
const struct hj_endpoint *hj_match(const char *method, const char *path, struct sl_str *arg,
                                   bool *path_known);

/* The methods path accepts, for an Allow header ("GET, POST"), in out. */
void hj_allow(const char *path, char *out, size_t cap);

/* Builds the msgpack request of endpoint e into msg (empty on entry): the JSON body
 * body[0..len) (len 0: no body, same as {}), the path's segment arg, token[0..token_n) (none
 * when 0) and the Idempotency-Key header value idem (NULL: none). Returns 0, or SL_EBADREQ
 * with why naming the field; msg's content is then undefined. */
int hj_build(const struct hj_endpoint *e, const char *body, size_t len, struct sl_str arg,
             const char *token, size_t token_n, const char *idem, nng_msg *msg, char *why,
             size_t why_cap);

/* The JSON body equivalent to the query string query ("queue=a&max=10", without '?') of a
 * GET endpoint e: each parameter one of e's fields, percent-decoded, a number for an integer
 * field. Returns it malloc'ed (*len its length), or NULL with why naming the parameter. */
char *hj_query_body(const struct hj_endpoint *e, const char *query, size_t *len, char *why,
                    size_t cap);

/* The JSON document of a msgpack reply rep[0..len) of endpoint e (NULL: generic): an error
 * reply becomes {"err": CODE, "msg": ...} and *status its HTTP status; a success drops "ok"
 * (and push's "n" is "count"), *status 200. Returns a malloc'ed NUL-terminated string (*jlen
 * its length), or NULL without memory or for a reply that does not decode (*status 500). */
char *hj_reply(const struct hj_endpoint *e, const void *rep, size_t len, uint16_t *status,
               size_t *jlen);

/* The error document {"err": code, "msg": msg}, malloc'ed (NULL without memory). */
char *hj_error(int err, const char *msg, size_t *jlen);

/* The HTTP status of a wire error code (SL_E*). */
uint16_t hj_status(int err);

/* Base64 (RFC 4648, padded). hj_b64_decode returns the decoded length, or -1 when in is not
 * base64; out needs (n / 4) * 3 bytes (NULL: only checks). */
long hj_b64_decode(const char *in, size_t n, unsigned char *out);

#endif
