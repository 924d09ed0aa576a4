#include "token.h"

#include <nng/nng.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
token_load(struct token *t, const char *path, char *why, size_t whycap)
{
    char buf[TOKEN_MAX + 3]; /* the token, "\r\n", and one byte to see a file too long */
    struct stat st;
    size_t n = 0;
    int fd;

    /* O_NONBLOCK: a FIFO put in the file's place must not hang the start; it is refused below
     * as not a regular file. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
        snprintf(why, whycap, "cannot open token file %s: %s", path, strerror(errno));
        return -1;
    }
    /* The file checked is the one read (fstat on the open file), even if the path changes. */
    if (fstat(fd, &st) != 0) {
        snprintf(why, whycap, "cannot stat token file %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whycap, "token file %s is not a regular file", path);
        goto fail;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(why, whycap, "token file %s is owned by uid %u, not by this user (%u) or root",
                 path, (unsigned)st.st_uid, (unsigned)geteuid());
        goto fail;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(why, whycap,
                 "token file %s has mode %03o: group and others must have no access "
                 "(chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 0777), path);
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            snprintf(why, whycap, "cannot read token file %s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
        if (n == sizeof(buf)) {
            break;
        }
    }
    close(fd);
    fd = -1;
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r') {
            n--;
        }
    }
    if (n == 0) {
        snprintf(why, whycap, "token file %s is empty", path);
        goto fail_wipe;
    }
    if (n > TOKEN_MAX) {
        snprintf(why, whycap, "token file %s holds more than %u bytes", path, TOKEN_MAX);
        goto fail_wipe;
    }
    if (memchr(buf, '\0', n) != NULL || memchr(buf, '\n', n) != NULL ||
        memchr(buf, '\r', n) != NULL) {
        snprintf(why, whycap, "token file %s must hold one line without NUL bytes", path);
        goto fail_wipe;
    }
    memcpy(t->s, buf, n);
    t->n = (uint32_t)n;
    explicit_bzero(buf, sizeof(buf));
    return 0;
fail:
    close(fd);
    return -1;
fail_wipe:
    explicit_bzero(buf, sizeof(buf));
    return -1;
}

bool
token_check(const struct token *t, const char *p, size_t n)
{
    if (t->n == 0) {
        return true;
    }
    /* Every byte of the configured token is looked at whatever the request holds, so the time
     * taken tells nothing about how much of a guess was right. */
    volatile unsigned char diff = (unsigned char)(n != t->n);
    for (uint32_t i = 0; i < t->n; i++) {
        unsigned char c = (p != NULL && i < n) ? (unsigned char)p[i] : 0;
        diff |= (unsigned char)((unsigned char)t->s[i] ^ c);
    }
    return diff == 0;
}

/* The map header at the start of b (len bytes): its count and length, or -1 if none. */
static int
map_header(const unsigned char *b, size_t len, uint32_t *count, size_t *hlen)
{
    if (len >= 1 && (b[0] & 0xf0) == 0x80) {
        *count = b[0] & 0x0f;
        *hlen = 1;
    } else if (len >= 3 && b[0] == 0xde) {
        *count = (uint32_t)b[1] << 8 | b[2];
        *hlen = 3;
    } else if (len >= 5 && b[0] == 0xdf) {
        *count = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
        *hlen = 5;
    } else {
        return -1;
    }
    return 0;
}

/* Writes the header of a map of count entries into h; returns its length. */
static size_t
map_header_put(unsigned char *h, uint32_t count)
{
    if (count <= 15) {
        h[0] = (unsigned char)(0x80 | count);
        return 1;
    }
    if (count <= 0xffff) {
        h[0] = 0xde;
        h[1] = (unsigned char)(count >> 8);
        h[2] = (unsigned char)count;
        return 3;
    }
    h[0] = 0xdf;
    h[1] = (unsigned char)(count >> 24);
    h[2] = (unsigned char)(count >> 16);
    h[3] = (unsigned char)(count >> 8);
    h[4] = (unsigned char)count;
    return 5;
}

int
token_attach(nng_msg *m, const struct token *t)
{
    unsigned char pair[6 + 3 + TOKEN_MAX], h[5]; /* "token" as a fixstr, a str16 header, the bytes */
    size_t plen = 0, hlen, nhlen;
    uint32_t count;

    if (t == NULL || t->n == 0) {
        return 0;
    }
    if (map_header(nng_msg_body(m), nng_msg_len(m), &count, &hlen) != 0 || count == UINT32_MAX) {
        return -1;
    }
    memcpy(pair, "\xa5token", 6);
    plen = 6;
    if (t->n <= 31) {
        pair[plen++] = (unsigned char)(0xa0 | t->n);
    } else if (t->n <= 0xff) {
        pair[plen++] = 0xd9;
        pair[plen++] = (unsigned char)t->n;
    } else {
        pair[plen++] = 0xda;
        pair[plen++] = (unsigned char)(t->n >> 8);
        pair[plen++] = (unsigned char)t->n;
    }
    memcpy(pair + plen, t->s, t->n);
    plen += t->n;
    /* Append first: if the header cannot grow afterwards, the pair is cut off again and the
     * message is as it was. Map entries have no order, so the end is as good as anywhere. */
    int rv = nng_msg_append(m, pair, plen);
    explicit_bzero(pair, sizeof(pair));
    if (rv != 0) {
        return -1;
    }
    nhlen = map_header_put(h, count + 1);
    if (nhlen < hlen) {
        /* The sender used a wider header than needed: keep its width (still valid msgpack),
         * so that no byte of the old header is left behind. */
        uint32_t c = count + 1;
        h[0] = hlen == 3 ? 0xde : 0xdf;
        for (size_t i = 1; i < hlen; i++) {
            h[i] = (unsigned char)(c >> (8 * (hlen - 1 - i)));
        }
        nhlen = hlen;
    }
    if (nhlen > hlen) {
        if (nng_msg_insert(m, h, nhlen - hlen) != 0) {
            nng_msg_chop(m, plen);
            return -1;
        }
    }
    memcpy(nng_msg_body(m), h, nhlen);
    return 0;
}

void
token_clear(struct token *t)
{
    explicit_bzero(t->s, sizeof(t->s));
    t->n = 0;
}
