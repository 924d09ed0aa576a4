/* The HTTP/JSON API's replies: a msgpack reply as a JSON document (httpjson.h). */
#include "httpjson.h"

#include "err.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
b64_encode(const unsigned char *in, size_t n, size_t *olen)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16;
        w |= i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0;
        w |= i + 2 < n ? (uint32_t)in[i + 2] : 0;
        out[o++] = a[w >> 18 & 63];
        out[o++] = a[w >> 12 & 63];
        out[o++] = i + 1 < n ? a[w >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? a[w & 63] : '=';
    }
    out[o] = '\0';
    *olen = o;
    return out;
}

/* ---- msgpack reply -> JSON ---- */

static json_t *to_json(const msgpack_object *o, bool *b64);

/* A str or bin: a JSON string if valid UTF-8, else base64 with *b64 set. */
static json_t *
bytes_json(const char *p, size_t n, bool *b64)
{
    json_t *s = json_stringn(p, n);
    if (s != NULL) {
        return s;
    }
    size_t bl;
    char *enc = b64_encode((const unsigned char *)p, n, &bl);
    if (enc == NULL) {
        return NULL;
    }
    s = json_stringn_nocheck(enc, bl);
    free(enc);
    *b64 = true;
    return s;
}

static json_t *
map_json(const msgpack_object_map *m)
{
    json_t *obj = json_object();
    for (uint32_t i = 0; obj != NULL && i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        char key[WIRE_NAME_MAX + 8];
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size > WIRE_NAME_MAX) {
            continue;
        }
        bool b64 = false;
        json_t *v = to_json(&m->ptr[i].val, &b64);
        snprintf(key, sizeof(key), "%.*s%s", (int)k->via.str.size, k->via.str.ptr,
                 b64 ? "_b64" : "");
        if (v == NULL || json_object_set_new(obj, key, v) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

static json_t *
to_json(const msgpack_object *o, bool *b64)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return bytes_json(o->via.str.ptr, o->via.str.size, b64);
    case MSGPACK_OBJECT_BIN:
        return bytes_json(o->via.bin.ptr, o->via.bin.size, b64);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a != NULL && i < o->via.array.size; i++) {
            bool item_b64 = false;
            json_t *v = to_json(&o->via.array.ptr[i], &item_b64);
            if (v != NULL && item_b64) {
                v = json_pack("{s:o}", "_b64", v); /* no key to mark: an object says it */
            }
            if (v == NULL || json_array_append_new(a, v) != 0) {
                json_decref(a);
                a = NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP:
        return map_json(&o->via.map);
    default:
        return json_null();
    }
}

static char *
dump(json_t *doc, size_t *jlen)
{
    char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    *jlen = s != NULL ? strlen(s) : 0;
    return s;
}

char *
hj_error(int err, const char *msg, size_t *jlen)
{
    json_t *doc = json_pack("{s:s,s:s}", "err", sl_err_code(err), "msg", msg != NULL ? msg : "");
    if (doc == NULL) { /* msg not UTF-8 */
        doc = json_pack("{s:s,s:s}", "err", sl_err_code(err), "msg", "");
    }
    return dump(doc, jlen);
}

char *
hj_reply(const struct hj_endpoint *e, const void *rep, size_t len, uint16_t *status,
         size_t *jlen)
{
    msgpack_unpacked up;
    size_t off = 0;
    json_t *doc = NULL;
    msgpack_unpacked_init(&up);
    *status = 500;
    if (msgpack_unpack_next(&up, rep, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        doc = map_json(&up.data.via.map);
    }
    msgpack_unpacked_destroy(&up);
    if (doc == NULL) {
        *jlen = 0;
        return NULL;
    }
    json_t *ok = json_object_get(doc, "ok");
    if (json_is_false(ok)) {
        json_t *err = json_object_get(doc, "err");
        int code = json_is_string(err) ? sl_err_from_code(json_string_value(err),
                                                          (unsigned)json_string_length(err))
                                       : SL_EINTERNAL;
        *status = hj_status(code);
        json_object_del(doc, "ok");
        return dump(doc, jlen);
    }
    *status = 200;
    json_object_del(doc, "ok");
    json_t *n = json_object_get(doc, "n");
    if (e != NULL && e->op == WOP_PUSH && n != NULL) {
        json_object_set(doc, "count", n);
        json_object_del(doc, "n");
    }
    return dump(doc, jlen);
}
