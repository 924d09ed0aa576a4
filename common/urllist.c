#include "urllist.h"

#include "err.h"
#include "log.h"

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <string.h>

int
urllist_parse(struct urllist *l, const char *s)
{
    l->n = 0;
    const char *p = s;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ') {
            n--;
        }
        if (n == 0 || n >= URLLIST_URL_MAX || l->n == URLLIST_MAX) {
            l->n = 0;
            return SL_EBADREQ;
        }
        memcpy(l->url[l->n], p, n);
        l->url[l->n++][n] = '\0';
        if (end == NULL) {
            return 0;
        }
        p = end + 1;
    }
}

int
urllist_check(const struct urllist *l)
{
    nng_socket s;
    int rv;
    if ((rv = nng_req0_open(&s)) != 0) {
        LOG(LOG_ERROR, "urllist.check", "error=\"%s\"", nng_strerror(rv));
        return SL_EIO;
    }
    for (unsigned i = 0; i < l->n; i++) {
        nng_dialer d;
        /* A dialer made and not started: nng parses the address and finds its transport. */
        if ((rv = nng_dialer_create(&d, s, l->url[i])) != 0) {
            LOG(LOG_DEBUG, "urllist.bad_url", "url=\"%s\" error=\"%s\"", l->url[i],
                nng_strerror(rv));
            nng_close(s);
            return SL_EBADREQ;
        }
        nng_dialer_close(d);
    }
    nng_close(s);
    return 0;
}

static bool
str_is(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

bool
urllist_redirect(const void *rep, size_t len, char *url, size_t cap)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    bool not_leader = false, has_url = false;
    if (msgpack_unpack_next(&u, rep, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            const msgpack_object *k = &u.data.via.map.ptr[i].key;
            const msgpack_object *v = &u.data.via.map.ptr[i].val;
            if (str_is(k, "err")) {
                not_leader = str_is(v, "not_leader");
            } else if (str_is(k, "leader_url") && v->type == MSGPACK_OBJECT_STR &&
                       v->via.str.size < cap) {
                memcpy(url, v->via.str.ptr, v->via.str.size);
                url[v->via.str.size] = '\0';
                has_url = true;
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    return not_leader && has_url;
}

const char *
urllist_next(const struct urllist *l, const char *cur, const char *leader)
{
    if (leader != NULL && leader[0] != '\0' && strcmp(leader, cur) != 0) {
        return leader;
    }
    for (unsigned i = 0; i < l->n; i++) {
        if (strcmp(l->url[i], cur) == 0) {
            return l->url[(i + 1) % l->n];
        }
    }
    return l->n > 0 ? l->url[0] : cur;
}
