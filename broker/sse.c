#include "sse.h"

#include "err.h"
#include "httpjson.h"
#include "log.h"
#include "wire.h"

#include <msgpack.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chunk {
    struct chunk *next;
    size_t len;
    char data[];
};

struct client {
    struct client *next, *prev;
    struct sse *s;
    nng_http_conn *conn;
    nng_http_req *req;          /* the request: the server left both to us */
    nng_aio *aio;               /* the write in flight */
    struct chunk *head, *tail;  /* waiting; head is being written while busy */
    unsigned nq;
    bool busy;
    bool closing;               /* dropped: freed once no write is in flight */
};

struct sse {
    nng_socket sub;
    nng_aio *rx, *beat;
    pthread_mutex_t lock;
    pthread_cond_t gone;
    struct client *clients;
    unsigned n;
    bool stopping;
};

static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                           "Cache-Control: no-cache\r\nConnection: close\r\n\r\n: sluice events\n\n";

static struct chunk *
chunk_new(const char *a, size_t an, const char *b, size_t bn, const char *c, size_t cn)
{
    struct chunk *k = malloc(sizeof(*k) + an + bn + cn);
    if (k != NULL) {
        k->next = NULL;
        k->len = an + bn + cn;
        memcpy(k->data, a, an);
        memcpy(k->data + an, b, bn);
        memcpy(k->data + an + bn, c, cn);
    }
    return k;
}

/* Takes c off the list and frees it. Lock held; no write in flight. */
static void
client_free_locked(struct client *c)
{
    struct sse *s = c->s;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->clients = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    while (c->head != NULL) {
        struct chunk *k = c->head;
        c->head = k->next;
        free(k);
    }
    nng_http_conn_close(c->conn);
    nng_http_req_free(c->req);
    nng_aio_reap(c->aio); /* this may be its own callback */
    free(c);
    if (--s->n == 0) {
        pthread_cond_broadcast(&s->gone);
    }
}

/* Starts writing c's first chunk. Lock held. */
static void
write_head(struct client *c)
{
    nng_iov iov = { c->head->data, c->head->len };
    c->busy = true;
    nng_aio_set_iov(c->aio, 1, &iov);
    nng_http_conn_write_all(c->conn, c->aio);
}

static void
write_done(void *arg)
{
    struct client *c = arg;
    struct sse *s = c->s;
    pthread_mutex_lock(&s->lock);
    c->busy = false;
    struct chunk *k = c->head;
    c->head = k->next;
    if (c->head == NULL) {
        c->tail = NULL;
    }
    c->nq--;
    free(k);
    if (nng_aio_result(c->aio) != 0 || c->closing) {
        client_free_locked(c);
    } else if (c->head != NULL) {
        write_head(c);
    }
    pthread_mutex_unlock(&s->lock);
}

/* Queues k (taken) for c; a client with SSE_QUEUE_MAX waiting is dropped. Lock held. */
static void
client_send(struct client *c, struct chunk *k)
{
    if (c->closing || c->nq >= SSE_QUEUE_MAX) {
        free(k);
        if (!c->closing) {
            LOG(LOG_INFO, "sse.dropped", "reason=\"the client does not read its events\"");
            c->closing = true;
        }
        return;
    }
    if (c->tail != NULL) {
        c->tail->next = k;
    } else {
        c->head = k;
    }
    c->tail = k;
    c->nq++;
    if (!c->busy) {
        write_head(c);
    }
}

/* Sends a copy of a..c to every client. */
static void
broadcast(struct sse *s, const char *a, size_t an, const char *b, size_t bn, const char *c,
          size_t cn)
{
    pthread_mutex_lock(&s->lock);
    for (struct client *cl = s->clients, *next; cl != NULL; cl = next) {
        next = cl->next;
        struct chunk *k = chunk_new(a, an, b, bn, c, cn);
        if (k == NULL) {
            cl->closing = true;
            if (!cl->busy) {
                client_free_locked(cl);
            }
            continue;
        }
        client_send(cl, k);
    }
    pthread_mutex_unlock(&s->lock);
}

/* The event's name: its "event" key (or "message"), in name. */
static void
event_name(const void *body, size_t len, char *name, size_t cap)
{
    msgpack_unpacked up;
    size_t off = 0;
    snprintf(name, cap, "message");
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, body, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < up.data.via.map.size; i++) {
            const msgpack_object *k = &up.data.via.map.ptr[i].key;
            const msgpack_object *v = &up.data.via.map.ptr[i].val;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 5 &&
                memcmp(k->via.str.ptr, "event", 5) == 0 && v->type == MSGPACK_OBJECT_STR &&
                wire_name_ok(v->via.str.ptr, v->via.str.size) && v->via.str.size < cap) {
                snprintf(name, cap, "%.*s", (int)v->via.str.size, v->via.str.ptr);
            }
        }
    }
    msgpack_unpacked_destroy(&up);
}

static void
rx_done(void *arg)
{
    struct sse *s = arg;
    if (nng_aio_result(s->rx) != 0) {
        return; /* closed: sse_stop */
    }
    nng_msg *m = nng_aio_get_msg(s->rx);
    uint16_t status;
    size_t jlen;
    char *json = hj_reply(NULL, nng_msg_body(m), nng_msg_len(m), &status, &jlen);
    if (json != NULL) {
        char name[WIRE_NAME_MAX + 16];
        char pre[WIRE_NAME_MAX + 32];
        event_name(nng_msg_body(m), nng_msg_len(m), name, sizeof(name));
        int n = snprintf(pre, sizeof(pre), "event: %s\ndata: ", name);
        broadcast(s, pre, (size_t)n, json, jlen, "\n\n", 2);
        free(json);
    }
    nng_msg_free(m);
    nng_recv_aio(s->sub, s->rx);
}

static void
beat_done(void *arg)
{
    static const char beat[] = ": beat\n\n";
    struct sse *s = arg;
    if (nng_aio_result(s->beat) != 0) {
        return;
    }
    broadcast(s, beat, sizeof(beat) - 1, "", 0, "", 0);
    nng_sleep_aio(SSE_BEAT_MS, s->beat);
}

int
sse_start(struct sse **sp, const char *events_url)
{
    struct sse *s = calloc(1, sizeof(*s));
    int rv;
    if (s == NULL) {
        return SL_EIO;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->gone, NULL);
    if ((rv = nng_sub0_open(&s->sub)) != 0 ||
        (rv = nng_socket_set(s->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
        (rv = nng_dial(s->sub, events_url, NULL, NNG_FLAG_NONBLOCK)) != 0 ||
        (rv = nng_aio_alloc(&s->rx, rx_done, s)) != 0 ||
        (rv = nng_aio_alloc(&s->beat, beat_done, s)) != 0) {
        LOG(LOG_ERROR, "sse.failed", "url=\"%s\" reason=\"%s\"", events_url, nng_strerror(rv));
        nng_aio_free(s->rx);
        nng_close(s->sub);
        pthread_cond_destroy(&s->gone);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return SL_EIO;
    }
    nng_recv_aio(s->sub, s->rx);
    nng_sleep_aio(SSE_BEAT_MS, s->beat);
    *sp = s;
    return 0;
}

/* Answers aio with status and a JSON error document. */
static void
refuse(nng_aio *aio, int err, const char *msg)
{
    nng_http_res *res;
    size_t len;
    char *doc = hj_error(err, msg, &len);
    if (doc == NULL || nng_http_res_alloc(&res) != 0) {
        free(doc);
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    nng_http_res_set_status(res, hj_status(err));
    nng_http_res_set_header(res, "Content-Type", "application/json");
    nng_http_res_copy_data(res, doc, len);
    free(doc);
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

void
sse_serve(struct sse *s, nng_aio *aio)
{
    nng_http_conn *conn = nng_aio_get_input(aio, 2);
    struct client *c = calloc(1, sizeof(*c));
    struct chunk *k = chunk_new(head, sizeof(head) - 1, "", 0, "", 0);
    if (c == NULL || k == NULL || nng_aio_alloc(&c->aio, write_done, c) != 0) {
        free(c);
        free(k);
        refuse(aio, SL_ENOMEM, "out of memory");
        return;
    }
    pthread_mutex_lock(&s->lock);
    if (s->stopping || s->n >= SSE_CLIENTS_MAX) {
        pthread_mutex_unlock(&s->lock);
        nng_aio_free(c->aio);
        free(c);
        free(k);
        refuse(aio, SL_EUNREACHABLE, s->stopping ? "the broker is stopping"
                                                 : "too many event streams open");
        return;
    }
    /* From here the connection is ours: the server forgets it once the aio is finished
     * without a response. */
    nng_http_hijack(conn);
    c->s = s;
    c->conn = conn;
    c->req = nng_aio_get_input(aio, 0);
    c->next = s->clients;
    if (s->clients != NULL) {
        s->clients->prev = c;
    }
    s->clients = c;
    s->n++;
    client_send(c, k);
    pthread_mutex_unlock(&s->lock);
    nng_aio_set_output(aio, 0, NULL);
    nng_aio_finish(aio, 0);
}

void
sse_stop(struct sse *s)
{
    if (s == NULL) {
        return;
    }
    nng_close(s->sub);
    nng_aio_stop(s->rx);
    nng_aio_stop(s->beat);
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    for (struct client *c = s->clients, *next; c != NULL; c = next) {
        next = c->next;
        c->closing = true;
        if (!c->busy) {
            client_free_locked(c);
        } else {
            nng_aio_cancel(c->aio); /* write_done frees it, on another thread */
        }
    }
    while (s->n > 0) {
        pthread_cond_wait(&s->gone, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    nng_aio_free(s->rx);
    nng_aio_free(s->beat);
    pthread_cond_destroy(&s->gone);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
