#include "dash.h"

#include "promhttp.h"

#include <stdio.h>
#include <string.h>

/* By extension: what a browser must be told (X-Content-Type-Options: nosniff makes it
 * believe us, and refuse a script served as anything else). */
static const struct {
    const char *ext;
    const char *type;
} types[] = {
    { ".html", "text/html; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },
    { ".png", "image/png" },
    { ".svg", "image/svg+xml" },
};

/* Served without the token: the login form and the script that asks for it. */
static const char *const public_files[] = { "index.html", "loader.js" };

/* Scripts and styles come only from the broker itself; blob: is what the loader makes of
 * the app it fetched with the token (a script running on the page made it, nothing from
 * elsewhere can). No inline script or style, no frames, no form posted anywhere. */
static const char csp[] = "default-src 'none'; script-src 'self' blob:; style-src 'self' blob:; "
                          "connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

static const struct {
    const char *name, *value;
} headers[] = {
    { "Cache-Control", "no-cache" },
    { "Content-Security-Policy", csp },
    { "X-Content-Type-Options", "nosniff" },
    { "Referrer-Policy", "no-referrer" },
};

const char *
dash_content_type(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcmp(name + n - e, types[i].ext) == 0) {
            return types[i].type;
        }
    }
    return "application/octet-stream";
}

bool
dash_public(const struct dash_file *f)
{
    for (size_t i = 0; i < sizeof(public_files) / sizeof(public_files[0]); i++) {
        if (strcmp(f->name, public_files[i]) == 0) {
            return true;
        }
    }
    return false;
}

const struct dash_file *
dash_lookup(const char *path)
{
    size_t n = strcspn(path, "?#");
    if (n == 1 && path[0] == '/') {
        path = "/index.html";
        n = strlen(path);
    }
    if (n < 2 || path[0] != '/') {
        return NULL;
    }
    for (size_t i = 0; i < dash_nfiles; i++) {
        const char *name = dash_files[i].name;
        if (strlen(name) == n - 1 && memcmp(name, path + 1, n - 1) == 0) {
            return &dash_files[i];
        }
    }
    return NULL;
}

/* Answers aio with status and f's bytes (NULL: a short text body, as for 401). */
static void
reply(nng_aio *aio, uint16_t status, const struct dash_file *f)
{
    static const char unauth[] = "this broker requires 'Authorization: Bearer TOKEN'\n";
    nng_http_res *res;
    int rv = nng_http_res_alloc(&res);
    if (rv != 0) {
        nng_aio_finish(aio, rv); /* nng drops the connection */
        return;
    }
    if (f != NULL) {
        /* The bytes are static: nng sends them without a copy. */
        rv = nng_http_res_set_data(res, f->data, f->len);
        rv = rv != 0 ? rv : nng_http_res_set_header(res, "Content-Type",
                                                    dash_content_type(f->name));
    } else {
        rv = nng_http_res_set_data(res, unauth, sizeof(unauth) - 1);
        rv = rv != 0 ? rv : nng_http_res_set_header(res, "Content-Type",
                                                    "text/plain; charset=utf-8");
        rv = rv != 0 ? rv : nng_http_res_set_header(res, "WWW-Authenticate",
                                                    "Bearer realm=\"sluice\"");
    }
    rv = rv != 0 ? rv : nng_http_res_set_status(res, status);
    for (size_t i = 0; rv == 0 && i < sizeof(headers) / sizeof(headers[0]); i++) {
        rv = nng_http_res_set_header(res, headers[i].name, headers[i].value);
    }
    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

/* On an nng thread, for GET (or HEAD) of one embedded file. */
static void
handle(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    const struct dash_route *r = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
    if (dash_public(r->f)) {
        reply(aio, 200, r->f);
        return;
    }
    struct broker *b = promhttp_enter(r->h);
    if (b == NULL) {
        reply(aio, 503, NULL);
        return;
    }
    bool ok = promhttp_authorized(b, req);
    promhttp_leave(r->h);
    reply(aio, ok ? 200 : 401, ok ? r->f : NULL);
}

/* Adds the handler of route r at path. */
static int
add(struct dash_route *r, const char *path, nng_http_server *srv)
{
    nng_http_handler *hd;
    int rv = nng_http_handler_alloc(&hd, path, handle);
    if (rv != 0) {
        return rv;
    }
    if ((rv = nng_http_handler_set_data(hd, r, NULL)) != 0 ||
        (rv = nng_http_server_add_handler(srv, hd)) != 0) {
        nng_http_handler_free(hd);
    }
    return rv;
}

int
dash_register(struct dash *d, struct promhttp *h, nng_http_server *srv)
{
    char path[128];
    int rv = 0;
    for (size_t i = 0; rv == 0 && i < dash_nfiles && i < DASH_FILES_MAX; i++) {
        struct dash_route *r = &d->routes[i];
        r->f = &dash_files[i];
        r->h = h;
        snprintf(path, sizeof(path), "/%s", r->f->name);
        rv = add(r, path, srv);
        if (rv == 0 && strcmp(r->f->name, "index.html") == 0) {
            rv = add(r, "/", srv);
        }
    }
    return rv;
}
