#include "json.h"

#include "err.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* Far above the wire's WIRE_DEPTH_MAX: only a guard for the recursion. */
#define JSON_DEPTH_MAX 64

/* The length (1-4) of the valid UTF-8 sequence at p[0..n), with its code point in *cp; 0 when
 * p[0] starts no valid sequence (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF). */
static size_t
utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1fu, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0fu, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0u) != 0x80u) {
            return 0;
        }
        v = (v << 6) | (p[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        return 0;
    }
    *cp = v;
    return len;
}

void
json_write_str(FILE *f, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, run = 0; /* s[run..i) is copied unchanged once something needs escaping */

    fputc('"', f);
    while (i < n) {
        uint32_t cp;
        size_t len = utf8_seq(s + i, n - i, &cp);
        bool plain = len > 0 && cp >= 0x20 && cp != '"' && cp != '\\' && cp != 0x7f;
        if (plain) {
            i += len;
            continue;
        }
        fwrite(s + run, 1, i - run, f);
        switch (len == 0 ? 0x100u : cp) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default: fprintf(f, "\\u%04x", (unsigned)s[i]); break; /* control, DEL or invalid byte */
        }
        i++;
        run = i;
    }
    fwrite(s + run, 1, i - run, f);
    fputc('"', f);
}

/* Is this character shown as \xHH escapes on a terminal? */
static bool
text_escaped(size_t len, uint32_t cp)
{
    return len == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
}

void
json_write_text(FILE *f, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, run = 0;

    while (i < n) {
        uint32_t cp = 0;
        size_t len = utf8_seq(s + i, n - i, &cp);
        if (!text_escaped(len, cp)) {
            i += len;
            continue;
        }
        fwrite(s + run, 1, i - run, f);
        size_t k = len == 0 ? 1 : len;
        for (size_t j = 0; j < k; j++) {
            fprintf(f, "\\x%02x", (unsigned)s[i + j]);
        }
        i += k;
        run = i;
    }
    fwrite(s + run, 1, i - run, f);
}

size_t
json_text_width(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, w = 0;

    while (i < n) {
        uint32_t cp = 0;
        size_t len = utf8_seq(s + i, n - i, &cp);
        if (text_escaped(len, cp)) {
            size_t k = len == 0 ? 1 : len;
            w += 4 * k;
            i += k;
        } else {
            w++;
            i += len;
        }
    }
    return w;
}

static void write_value(FILE *f, const msgpack_object *o, int depth);

static void
write_key(FILE *f, const msgpack_object *k, int depth)
{
    if (k->type == MSGPACK_OBJECT_STR) {
        json_write_str(f, k->via.str.ptr, k->via.str.size);
        return;
    }
    /* JSON keys are strings: write the key's own JSON text as one. */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m == NULL) {
        fputs("\"?\"", f);
        return;
    }
    write_value(m, k, depth);
    if (fclose(m) != 0 || text == NULL) {
        fputs("\"?\"", f);
    } else {
        json_write_str(f, text, len);
    }
    free(text);
}

static void
write_value(FILE *f, const msgpack_object *o, int depth)
{
    if (depth > JSON_DEPTH_MAX) {
        fputs("null", f);
        return;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", f);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", f);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(f, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(f, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isfinite(o->via.f64)) {
            fprintf(f, "%.17g", o->via.f64);
        } else {
            fputs("null", f);
        }
        break;
    case MSGPACK_OBJECT_STR:
        json_write_str(f, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        json_write_str(f, o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i > 0) {
                fputc(',', f);
            }
            write_value(f, &o->via.array.ptr[i], depth + 1);
        }
        fputc(']', f);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i > 0) {
                fputc(',', f);
            }
            write_key(f, &o->via.map.ptr[i].key, depth + 1);
            fputc(':', f);
            write_value(f, &o->via.map.ptr[i].val, depth + 1);
        }
        fputc('}', f);
        break;
    default: /* ext, and any type a later msgpack-c adds */
        fputs("null", f);
        break;
    }
}

int
json_write(FILE *f, const msgpack_object *o)
{
    write_value(f, o, 0);
    return ferror(f) ? SL_EIO : 0;
}
