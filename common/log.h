/* Logging: one line per event on stderr, key=value pairs:
 *   ts=2026-11-27T22:11:10.123Z level=info prog=broker event=listen url="ipc:///..."
 * The level is tested before the arguments are evaluated, so hot paths may log
 * at debug without paying for it. Thread-safe: each line is one write(2). */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

extern int log_level;           /* lines below this level are not written */
extern const char *log_prog;    /* the prog= field; set once by main */

#define LOG(lvl, event, ...)                                                                       \
    do {                                                                                           \
        if ((lvl) >= log_level) {                                                                  \
            log_emit((lvl), (event), __VA_ARGS__);                                                 \
        }                                                                                          \
    } while (0)

/* Writes one line: ts, level, prog, event, then fmt's key=value text. */
void log_emit(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses "debug", "info", "warn", "error", "off"; returns the level or -1. */
int log_level_parse(const char *s);

/* Copies n bytes of s into out (size cap) as a quoted value safe for a log line:
 * quotes, backslashes and control bytes are escaped, long input is cut with "...".
 * Returns out. */
char *log_quote(char *out, unsigned cap, const char *s, unsigned n);

#endif
