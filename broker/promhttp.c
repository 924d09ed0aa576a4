#include "promhttp.h"

#include "err.h"
#include "log.h"
#include "ops.h"
#include "prom.h"
#include "token.h"

#include <arpa/inet.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
promhttp_url(const char *arg, char *out, size_t cap, char *why, size_t why_cap)
{
    char host[64];
    const char *port;
    bool v6 = arg[0] == '[';

    if (v6) {
        const char *end = strchr(arg, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - arg - 1) >= sizeof(host)) {
            snprintf(why, why_cap, "'%s' is not [IPV6]:PORT", arg);
            return SL_EBADREQ;
        }
        memcpy(host, arg + 1, (size_t)(end - arg - 1));
        host[end - arg - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(arg, ':');
        if (colon == NULL || (size_t)(colon - arg) >= sizeof(host)) {
            snprintf(why, why_cap, "'%s' is not IPV4:PORT or [IPV6]:PORT", arg);
            return SL_EBADREQ;
        }
        memcpy(host, arg, (size_t)(colon - arg));
        host[colon - arg] = '\0';
        port = colon + 1;
    }
    unsigned char addr[16];
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1) {
        snprintf(why, why_cap, "'%s' is not an IP%s address (give an address, not a name)", host,
                 v6 ? "v6" : "v4");
        return SL_EBADREQ;
    }
    unsigned long p = 0;
    size_t nd = 0;
    for (; port[nd] >= '0' && port[nd] <= '9' && nd < 6; nd++) {
        p = p * 10u + (unsigned long)(port[nd] - '0');
    }
    if (nd == 0 || port[nd] != '\0' || p < 1 || p > 65535) {
        snprintf(why, why_cap, "port '%s' is not a number from 1 to 65535", port);
        return SL_EBADREQ;
    }
    int n = snprintf(out, cap, v6 ? "http://[%s]:%lu" : "http://%s:%lu", host, p);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(why, why_cap, "'%s' is too long", arg);
        return SL_EBADREQ;
    }
    return 0;
}

bool
promhttp_loopback(const char *url)
{
    static const char v4[] = "http://127.", v6[] = "http://[::1]:";
    return strncmp(url, v4, sizeof(v4) - 1) == 0 || strncmp(url, v6, sizeof(v6) - 1) == 0;
}

/* The metrics text of a fresh snapshot, in *text (malloc'ed) and *len. Returns 0 or an
 * SL_E* code. */
static int
render(struct broker *b, char **text, size_t *len)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, 0) != 0) {
        return SL_ENOMEM;
    }
    ops_stats(b, m);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rv = SL_EINTERNAL;
    if (msgpack_unpack_next(&up, nng_msg_body(m), nng_msg_len(m), &off) ==
        MSGPACK_UNPACK_SUCCESS) {
        FILE *f = open_memstream(text, len);
        if (f == NULL) {
            rv = SL_ENOMEM;
        } else {
            rv = prom_format(&up.data, f);
            if (fclose(f) != 0 && rv == 0) {
                rv = SL_ENOMEM;
            }
            if (rv != 0) {
                free(*text);
                *text = NULL;
            }
        }
    }
    msgpack_unpacked_destroy(&up);
    nng_msg_free(m);
    return rv;
}

/* Answers with status; hdr, val: one more header, or NULL. */
static void
reply(nng_aio *aio, uint16_t status, const char *hdr, const char *val, const char *body,
      size_t len)
{
    nng_http_res *res;
    int rv = status == NNG_HTTP_STATUS_OK ? nng_http_res_alloc(&res)
                                          : nng_http_res_alloc_error(&res, status);
    if (rv != 0) {
        nng_aio_finish(aio, rv); /* nng drops the connection */
        return;
    }
    if (status == NNG_HTTP_STATUS_OK &&
        ((rv = nng_http_res_set_header(res, "Content-Type", PROM_CONTENT_TYPE)) != 0 ||
         (rv = nng_http_res_copy_data(res, body, len)) != 0)) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    if (hdr != NULL) {
        nng_http_res_set_header(res, hdr, val);
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

/* The token never changes after start: read unlocked. */
bool
promhttp_authorized(struct broker *b, nng_http_req *req)
{
    static const char scheme[] = "Bearer ";
    if (b->token.n == 0) {
        return true;
    }
    const char *a = nng_http_req_get_header(req, "Authorization");
    if (a != NULL && strncasecmp(a, scheme, sizeof(scheme) - 1) == 0 &&
        token_check(&b->token, a + sizeof(scheme) - 1, strlen(a + sizeof(scheme) - 1))) {
        return true;
    }
    pthread_mutex_lock(&b->lock);
    b->opc.unauthorized++;
    pthread_mutex_unlock(&b->lock);
    return false;
}

struct broker *
promhttp_enter(struct promhttp *h)
{
    pthread_mutex_lock(&h->lock);
    bool stopping = h->stopping;
    h->busy += !stopping;
    pthread_mutex_unlock(&h->lock);
    return stopping ? NULL : h->b;
}

void
promhttp_leave(struct promhttp *h)
{
    pthread_mutex_lock(&h->lock);
    if (--h->busy == 0) {
        pthread_cond_broadcast(&h->idle);
    }
    pthread_mutex_unlock(&h->lock);
}

/* On an nng thread, for every request to /metrics (any method). */
static void
handle(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    struct promhttp *h = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
    const char *method = nng_http_req_get_method(req);

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        reply(aio, NNG_HTTP_STATUS_METHOD_NOT_ALLOWED, "Allow", "GET, HEAD", NULL, 0);
        return;
    }
    pthread_mutex_lock(&h->lock);
    if (h->stopping) {
        pthread_mutex_unlock(&h->lock);
        reply(aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE, NULL, NULL, NULL, 0);
        return;
    }
    h->busy++;
    pthread_mutex_unlock(&h->lock);

    char *text = NULL;
    size_t len = 0;
    int rv = promhttp_authorized(h->b, req) ? render(h->b, &text, &len) : SL_EUNAUTH;

    pthread_mutex_lock(&h->lock);
    if (--h->busy == 0) {
        pthread_cond_broadcast(&h->idle);
    }
    pthread_mutex_unlock(&h->lock);
    if (rv == SL_EUNAUTH) {
        reply(aio, NNG_HTTP_STATUS_UNAUTHORIZED, "WWW-Authenticate", "Bearer realm=\"sluice\"",
              NULL, 0);
    } else if (rv != 0) {
        LOG(LOG_WARN, "metrics.failed", "err=%s", sl_err_code(rv));
        reply(aio, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, NULL, NULL, NULL, 0);
    } else {
        reply(aio, NNG_HTTP_STATUS_OK, NULL, NULL, text, len);
    }
    free(text);
}

int
promhttp_start(struct promhttp *h, struct broker *b, const char *url, const char *events_url,
               char *why, size_t why_cap)
{
    nng_http_handler *hd;
    nng_url *u = NULL;
    int rv;

    memset(h, 0, sizeof(*h));
    h->b = b;
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        snprintf(why, why_cap, "out of memory");
        return SL_EIO;
    }
    if (pthread_cond_init(&h->idle, NULL) != 0) {
        pthread_mutex_destroy(&h->lock);
        snprintf(why, why_cap, "out of memory");
        return SL_EIO;
    }
    if (httpapi_init(&h->api, b, events_url) != 0) {
        pthread_cond_destroy(&h->idle);
        pthread_mutex_destroy(&h->lock);
        snprintf(why, why_cap, "out of memory");
        return SL_EIO;
    }
    if ((rv = nng_url_parse(&u, url)) != 0) {
        goto fail;
    }
    if ((rv = nng_http_server_hold(&h->srv, u)) != 0) {
        goto fail_url;
    }
    if ((rv = nng_http_handler_alloc(&hd, "/metrics", handle)) != 0) {
        goto fail_srv;
    }
    /* Every method comes to the handler, which answers 405 itself with an Allow header. */
    if ((rv = nng_http_handler_set_method(hd, NULL)) != 0 ||
        (rv = nng_http_handler_set_data(hd, h, NULL)) != 0 ||
        (rv = nng_http_server_add_handler(h->srv, hd)) != 0) {
        nng_http_handler_free(hd);
        goto fail_srv;
    }
    /* From here the server owns the handler. */
    if ((rv = httpapi_register(&h->api, h->srv)) != 0 ||
        (rv = dash_register(&h->dash, h, h->srv)) != 0 ||
        (rv = nng_http_server_start(h->srv)) != 0) {
        goto fail_srv;
    }
    nng_url_free(u);
    h->running = true;
    LOG(LOG_INFO, "metrics.listen", "url=\"%s\"", url);
    return 0;
fail_srv:
    nng_http_server_release(h->srv);
fail_url:
    nng_url_free(u);
fail:
    snprintf(why, why_cap, "cannot serve %s: %s", url, nng_strerror(rv));
    LOG(LOG_ERROR, "metrics.listen_failed", "url=\"%s\" reason=\"%s\"", url, nng_strerror(rv));
    /* Nothing was started: no handler can run, so these can go. */
    httpapi_quiesce(&h->api);
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->lock);
    return SL_EIO;
}

void
promhttp_quiesce(struct promhttp *h)
{
    if (!h->running) {
        return;
    }
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    while (h->busy > 0) {
        pthread_cond_wait(&h->idle, &h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    httpapi_quiesce(&h->api);
}

void
promhttp_stop(struct promhttp *h)
{
    if (!h->running) {
        return;
    }
    promhttp_quiesce(h);
    h->running = false;
    nng_http_server_stop(h->srv);
    nng_http_server_release(h->srv);
}
