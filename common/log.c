#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_INFO;
const char *log_prog = "sluice";

static const char *const names[] = { "debug", "info", "warn", "error", "off" };

int
log_level_parse(const char *s)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void
log_emit(int level, const char *event, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int k;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s prog=%s event=%s ",
                 (long)(tv.tv_usec / 1000), names[level < 0 || level > LOG_ERROR ? LOG_ERROR : level],
                 log_prog, event);
    if (k > 0 && (size_t)k < sizeof(line) - n) {
        n += (size_t)k;
    }
    va_list ap;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (k > 0) {
        n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
    }
    while (n > 0 && line[n - 1] == ' ') {
        n--;
    }
    line[n++] = '\n';
    /* One write per line keeps lines from different threads whole. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

char *
log_quote(char *out, unsigned cap, const char *s, unsigned n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned o = 0;

    if (cap < 8) {
        if (cap > 0) {
            out[0] = '\0';
        }
        return out;
    }
    out[o++] = '"';
    for (unsigned i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 >= cap) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
