/* GET /v1/pool (poolproxy.h). */
#include "poolproxy.h"

#include "client.h"
#include "err.h"
#include "httpjson.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
dump(json_t *doc, size_t *len)
{
    char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    *len = s != NULL ? strlen(s) : 0;
    return s;
}

/* {"reachable": false, "url", "error"}. */
static char *
unreachable(const char *url, const char *error, size_t *len)
{
    json_t *doc = json_object();
    json_t *u = url != NULL ? json_string(url) : json_null();
    json_t *e = json_string(error);
    if (e == NULL) { /* not UTF-8 */
        e = json_string("worker-pool did not answer");
    }
    if (doc == NULL || json_object_set_new(doc, "reachable", json_false()) != 0 ||
        json_object_set_new(doc, "url", u != NULL ? u : json_null()) != 0 ||
        json_object_set_new(doc, "error", e) != 0) {
        json_decref(doc);
        return NULL;
    }
    return dump(doc, len);
}

/* Whether rep is a good pool.status reply; else why says what is wrong. */
static bool
status_ok(const struct wire_msg *rep, char *why, size_t cap)
{
    struct sl_str msg;
    int rv = client_reply_err(rep, &msg);
    if (rv != 0) {
        snprintf(why, cap, "worker-pool refused pool.status: %s: %.*s", sl_err_code(rv),
                 (int)(msg.n > 200 ? 200 : msg.n), msg.p != NULL ? msg.p : "");
        return false;
    }
    if (rep->up.data.type != MSGPACK_OBJECT_MAP) {
        snprintf(why, cap, "worker-pool's reply is not a map");
        return false;
    }
    if (!WIRE_HAS(rep, WK_N)) {
        snprintf(why, cap, "worker-pool's reply has no 'n'");
        return false;
    }
    const msgpack_object *w = WIRE_HAS(rep, WK_WORKERS) ? rep->v[WK_WORKERS].any : NULL;
    if (w == NULL || w->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(why, cap, "worker-pool's reply has no 'workers' array");
        return false;
    }
    for (uint32_t i = 0; i < w->via.array.size; i++) {
        if (w->via.array.ptr[i].type != MSGPACK_OBJECT_MAP) {
            snprintf(why, cap, "worker-pool's reply has a worker that is not a map");
            return false;
        }
    }
    return true;
}

char *
poolproxy_doc(const char *url, const struct wire_msg *rep, const char *error, size_t *len)
{
    char why[320];
    *len = 0;
    if (error != NULL) {
        return unreachable(url, error, len);
    }
    if (rep == NULL || !rep->decoded) {
        return unreachable(url, "worker-pool's reply did not decode", len);
    }
    if (!status_ok(rep, why, sizeof(why))) {
        return unreachable(url, why, len);
    }
    /* The reply's fields in JSON as every /v1 endpoint gives them (hj_reply drops "ok"). */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint16_t status = 500;
    size_t jlen = 0;
    char *fields = msgpack_pack_object(&pk, rep->up.data) == 0
                       ? hj_reply(NULL, sb.data, sb.size, &status, &jlen)
                       : NULL;
    msgpack_sbuffer_destroy(&sb);
    json_t *f = fields != NULL && status == 200 ? json_loadb(fields, jlen, 0, NULL) : NULL;
    free(fields);
    json_t *doc = json_object();
    json_t *u = url != NULL ? json_string(url) : json_null();
    if (f == NULL || !json_is_object(f) || doc == NULL || u == NULL ||
        json_object_set_new(doc, "reachable", json_true()) != 0 ||
        json_object_set_new(doc, "url", u) != 0) {
        json_decref(f);
        json_decref(doc);
        return NULL;
    }
    json_object_del(f, "reachable"); /* ours say what they mean */
    json_object_del(f, "url");
    int rv = json_object_update(doc, f);
    json_decref(f);
    if (rv != 0) {
        json_decref(doc);
        return NULL;
    }
    return dump(doc, len);
}

char *
poolproxy_fetch(const char *url, const struct token *t, size_t *len)
{
    struct client *c = NULL;
    struct wire_msg req, rep;
    char why[256];
    char *doc;

    if (url == NULL) {
        return unreachable(url, "the broker has no --pool-url", len);
    }
    int rv = client_open(&c, url, POOLPROXY_CONNECT_MS);
    if (rv != 0) {
        snprintf(why, sizeof(why), "cannot connect to worker-pool: %s%s", sl_err_code(rv),
                 client_no_server(url) ? " (no socket file: is worker-pool running?)" : "");
        return unreachable(url, why, len);
    }
    if (t != NULL && t->n > 0) {
        client_set_token(c, t);
    }
    wire_msg_init(&req);
    wire_msg_init(&rep);
    wire_set_cstr(&req, WK_OP, "pool.status");
    rv = client_call(c, &req, &rep, POOLPROXY_CALL_MS);
    if (rv != 0) {
        snprintf(why, sizeof(why), "worker-pool did not answer pool.status: %s",
                 sl_err_code(rv));
        doc = unreachable(url, why, len);
    } else {
        doc = poolproxy_doc(url, &rep, NULL, len);
    }
    wire_msg_fini(&rep);
    client_free(c);
    return doc;
}
