/* A pipe handler in C (PROTOCOL.md, "Pipe handlers"): reads job frames on stdin, answers each
 * on stdout, logs to stderr. It uppercases each payload into its log. Some payloads act, so
 * that it doubles as a handler for tests: "fail" is answered ok:false (msg "asked to fail",
 * delay_ms 100); "crash" makes it exit 3 without answering; "garbage" is answered with a frame
 * that is no msgpack.
 *
 *     worker --handler 'pipe:build/rel/examples/pipe_handler'
 */
#include "mpr.h"

#include <ctype.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>

static bool
read_exact(void *p, size_t n)
{
    return fread(p, 1, n, stdin) == n;
}

static void
write_frame(const void *body, size_t n)
{
    unsigned char h[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                           (unsigned char)(n >> 8), (unsigned char)n };
    fwrite(h, 1, 4, stdout);
    fwrite(body, 1, n, stdout);
    fflush(stdout); /* one answer per job, at once */
}

static void
pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

int
main(void)
{
    static unsigned char body[64 << 20];
    unsigned char h[4];
    msgpack_sbuffer sb;
    msgpack_packer pk;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    while (read_exact(h, 4)) { /* end of file: the worker is done with us */
        uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (n > sizeof(body) || !read_exact(body, n)) {
            fprintf(stderr, "pipe_handler: bad frame\n");
            return 1;
        }
        struct mpr c;
        uint32_t pairs;
        uint64_t id = 0;
        struct sl_str k, payload = { "", 0 };
        mpr_init(&c, body, n);
        if (!mpr_map(&c, &pairs)) {
            return 1;
        }
        for (uint32_t i = 0; i < pairs; i++) {
            bool ok;
            if (!mpr_str(&c, &k)) {
                ok = mpr_skip(&c) && mpr_skip(&c); /* a key that is no string, and its value */
            } else if (sl_str_eq(k, "id")) {
                ok = mpr_u64(&c, &id);
            } else if (sl_str_eq(k, "payload")) {
                ok = mpr_blob(&c, &payload);
            } else {
                ok = mpr_skip(&c); /* unknown keys are ignored */
            }
            if (!ok) {
                return 1;
            }
        }
        if (sl_str_eq(payload, "crash")) {
            return 3;
        }
        if (sl_str_eq(payload, "garbage")) {
            write_frame("\xc1", 1);
            continue;
        }
        fputs("pipe_handler: ", stderr);
        for (uint32_t i = 0; i < payload.n && i < 200; i++) {
            fputc(toupper((unsigned char)payload.p[i]), stderr);
        }
        fputc('\n', stderr);
        bool fail = sl_str_eq(payload, "fail");
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, fail ? 4 : 2);
        pack_str(&pk, "id", 2);
        msgpack_pack_uint64(&pk, id);
        pack_str(&pk, "ok", 2);
        if (fail) {
            msgpack_pack_false(&pk);
            pack_str(&pk, "msg", 3);
            pack_str(&pk, "asked to fail", 13);
            pack_str(&pk, "delay_ms", 8);
            msgpack_pack_uint64(&pk, 100);
        } else {
            msgpack_pack_true(&pk);
        }
        write_frame(sb.data, sb.size);
    }
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
