/* The web dashboard (README "Dashboard"): the static files of broker/dash/, compiled into the
 * broker (scripts/embed.c writes them as C arrays at build time), served by the HTTP listener
 * (promhttp.h) at / beside /v1 and /metrics.
 *
 * With a broker token, only the login page and its loader are served without
 * "Authorization: Bearer TOKEN": the loader asks for the token, then fetches the app (app.js,
 * app.css) with the header and starts it; the page itself never holds the token. */
#ifndef SLUICE_DASH_H
#define SLUICE_DASH_H

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include <stdbool.h>
#include <stddef.h>

#define DASH_FILES_MAX 16

/* One embedded file: its name in broker/dash/ and its bytes. */
struct dash_file {
    const char *name;
    const unsigned char *data;
    size_t len;
};

/* The embedded files (the generated dash_files.c), in name order. */
extern const struct dash_file dash_files[];
extern const size_t dash_nfiles;

struct promhttp;

/* A file served at a path, with the listener it belongs to (handler data). */
struct dash_route {
    const struct dash_file *f;
    struct promhttp *h;
};

/* Lives in struct promhttp. */
struct dash {
    struct dash_route routes[DASH_FILES_MAX];
};

/* The embedded file served at URI path (query ignored: "/" is index.html), or NULL. */
const struct dash_file *dash_lookup(const char *path);

/* The Content-Type of a file named name, by its extension; never NULL
 * ("application/octet-stream" for an unknown one). */
const char *dash_content_type(const char *name);

/* May f be served without the token (the login page and its loader)? */
bool dash_public(const struct dash_file *f);

/* Adds a handler per embedded file to srv (not started), for h's broker. Returns 0 or an nng
 * error (then srv keeps those added so far: the caller releases it). */
int dash_register(struct dash *d, struct promhttp *h, nng_http_server *srv);

#endif
