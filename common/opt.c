#include "opt.h"

#include "log.h"

#include <msgpack.h>
#include <mysql.h>
#include <nng/nng.h>

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How this program was built: the Makefile passes these for this file alone (and rebuilds it
 * when they change); the fallbacks serve a compile outside the Makefile (cppcheck). */
#ifndef SLUICE_BUILD_CC
#define SLUICE_BUILD_CC "unknown"
#endif
#ifndef SLUICE_BUILD_CFLAGS
#define SLUICE_BUILD_CFLAGS "unknown"
#endif
#ifndef SLUICE_BUILD_SANITIZE
#define SLUICE_BUILD_SANITIZE "unknown"
#endif
#if defined(__clang__)
#define COMPILER_NAME "clang " __VERSION__
#elif defined(__GNUC__)
#define COMPILER_NAME "gcc " __VERSION__
#else
#define COMPILER_NAME "unknown compiler"
#endif
#define STR_(x) #x
#define STR(x) STR_(x)

const struct opt opt_common[] = {
    { OPT_URL, "url", 'u', "URL", "SLUICE_URL", "broker address, or a cluster's URL,URL,... (default ipc://$SLUICE_DIR/broker.ipc)" },
    { OPT_LOG_LEVEL, "log-level", 0, "LEVEL", "SLUICE_LOG_LEVEL", "debug, info, warn, error or off" },
    { OPT_HELP, "help", 'h', NULL, NULL, "print this help and exit" },
    { OPT_VERSION, "version", 'V', NULL, NULL, "print the version and exit" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

const struct opt opt_token[] = {
    { OPT_TOKEN_FILE, "token-file", 0, "PATH", "SLUICE_TOKEN_FILE", "file holding the shared token every request must carry (owner-only mode)" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

static const struct opt *
find_id(const struct opt *const tables[], int id)
{
    for (int t = 0; tables[t] != NULL; t++) {
        for (const struct opt *o = tables[t]; o->name != NULL; o++) {
            if (o->id == id) {
                return o;
            }
        }
    }
    return NULL;
}

int
opt_parse(int argc, char **argv, const struct opt *const tables[], bool in_order,
          struct opt_vals *vals, int *argi)
{
    struct option longs[OPT_MAX * 2 + 1];
    char shorts[OPT_MAX * 2 + 4];
    size_t nl = 0, ns = 0;
    int rv = 0;

    memset(vals, 0, sizeof(*vals));
    shorts[ns++] = in_order ? '+' : '-';
    shorts[ns++] = ':';
    for (int t = 0; tables[t] != NULL; t++) {
        for (const struct opt *o = tables[t]; o->name != NULL; o++) {
            if (o->id < 0 || o->id >= OPT_MAX || nl >= OPT_MAX * 2) {
                return 2;
            }
            longs[nl].name = o->name;
            longs[nl].has_arg = o->arg != NULL ? required_argument : no_argument;
            longs[nl].flag = NULL;
            longs[nl].val = 256 + o->id;
            nl++;
            if (o->short_name != 0 && ns + 3 < sizeof(shorts)) {
                shorts[ns++] = o->short_name;
                if (o->arg != NULL) {
                    shorts[ns++] = ':';
                }
            }
        }
    }
    memset(&longs[nl], 0, sizeof(longs[nl]));
    shorts[ns] = '\0';

    /* Arguments are collected in order in place; options are consumed. With "-" in optstring
     * getopt returns each argument as option 1 and never permutes argv. */
    int nargs = 0;
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    if (args == NULL) {
        return 2;
    }
    optind = 0;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, shorts, longs, NULL);
        if (c == -1) {
            break;
        }
        if (c == 1) {
            args[nargs++] = optarg;
            continue;
        }
        if (c == '?' || c == ':') {
            const char *what = argv[optind - 1];
            fprintf(stderr, "%s: %s: '%s'\n", log_prog,
                    c == '?' ? "unknown option" : "option needs an argument", what);
            rv = 2;
            break;
        }
        const struct opt *o = NULL;
        if (c >= 256) {
            o = find_id(tables, c - 256);
        } else {
            for (int t = 0; tables[t] != NULL && o == NULL; t++) {
                for (const struct opt *p = tables[t]; p->name != NULL; p++) {
                    if (p->short_name == c) {
                        o = p;
                        break;
                    }
                }
            }
        }
        if (o == NULL) {
            rv = 2;
            break;
        }
        vals->v[o->id] = o->arg != NULL ? optarg : "1";
        if (vals->n[o->id] < OPT_REPEAT_MAX) {
            vals->all[o->id][vals->n[o->id]] = vals->v[o->id];
        }
        vals->n[o->id]++;
    }
    if (rv == 0) {
        /* The rest (after "--" or, in order, after the first argument) are arguments. */
        for (int i = optind; i < argc; i++) {
            args[nargs++] = argv[i];
        }
        int first = argc - nargs;
        for (int i = 0; i < nargs; i++) {
            argv[first + i] = args[i];
        }
        *argi = first;
        for (int t = 0; tables[t] != NULL; t++) {
            for (const struct opt *o = tables[t]; o->name != NULL; o++) {
                if (vals->v[o->id] == NULL && o->env != NULL) {
                    const char *e = getenv(o->env);
                    if (e != NULL && e[0] != '\0') {
                        vals->v[o->id] = e;
                        vals->all[o->id][0] = e;
                        vals->n[o->id] = 1;
                        vals->from_env[o->id] = true;
                    }
                }
            }
        }
    }
    free(args);
    return rv;
}

void
opt_usage(FILE *f, const char *usage, const struct opt *const tables[])
{
    fprintf(f, "usage: %s\n\noptions:\n", usage);
    for (int t = 0; tables[t] != NULL; t++) {
        for (const struct opt *o = tables[t]; o->name != NULL; o++) {
            char left[64];
            snprintf(left, sizeof(left), "%s%c%s--%s%s%s", o->short_name ? "-" : "  ",
                     o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
            fprintf(f, "  %-28s %s", left, o->help);
            if (o->env != NULL) {
                fprintf(f, " [$%s]", o->env);
            }
            fputc('\n', f);
        }
    }
}

static int
parse_num(const char *name, const char *arg, uint64_t min, uint64_t max, bool sized,
          uint64_t *out)
{
    char *end = NULL;
    uint64_t mult = 1;

    if (arg == NULL || arg[0] < '0' || arg[0] > '9') { /* strtoull would skip spaces, take signs */
        goto bad;
    }
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno != 0 || end == arg) {
        goto bad;
    }
    if (sized && *end != '\0') {
        switch (*end) {
        case 'k': case 'K': mult = 1024ULL; break;
        case 'm': case 'M': mult = 1024ULL * 1024; break;
        case 'g': case 'G': mult = 1024ULL * 1024 * 1024; break;
        default: goto bad;
        }
        end++;
        if (*end == 'B' || *end == 'b') {
            end++;
        }
    }
    if (*end != '\0') {
        goto bad;
    }
    if (v > UINT64_MAX / mult) {
        goto range;
    }
    v *= mult;
    if (v < min || v > max) {
        goto range;
    }
    *out = v;
    return 0;
range:
    fprintf(stderr, "%s: --%s: '%s' is out of range [%llu, %llu]\n", log_prog, name, arg,
            (unsigned long long)min, (unsigned long long)max);
    return 2;
bad:
    fprintf(stderr, "%s: --%s: '%s' is not a %s\n", log_prog, name, arg ? arg : "",
            sized ? "size (e.g. 64M)" : "whole number");
    return 2;
}

int
opt_u64(const char *name, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
    return parse_num(name, arg, min, max, false, out);
}

int
opt_size(const char *name, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
    return parse_num(name, arg, min, max, true, out);
}

int
opt_duration(const char *arg, uint64_t *out_ms)
{
    uint64_t mult = 1, v = 0;
    size_t digits = 0;

    if (arg == NULL) {
        return OPT_DUR_BAD;
    }
    while (arg[digits] >= '0' && arg[digits] <= '9') {
        digits++;
    }
    const char *unit = arg + digits;
    if (digits == 0 || digits >= 32) { /* as long a number is a typo, not a duration */
        return OPT_DUR_BAD;
    }
    if (strcmp(unit, "") == 0 || strcmp(unit, "ms") == 0) {
        mult = 1;
    } else if (strcmp(unit, "s") == 0) {
        mult = 1000;
    } else if (strcmp(unit, "m") == 0) {
        mult = 60000;
    } else if (strcmp(unit, "h") == 0) {
        mult = 3600000;
    } else if (strcmp(unit, "d") == 0) {
        mult = 86400000;
    } else {
        return OPT_DUR_BAD;
    }
    for (size_t i = 0; i < digits; i++) {
        uint64_t d = (uint64_t)(arg[i] - '0');
        if (v > (UINT64_MAX / mult - d) / 10) {
            return OPT_DUR_RANGE;
        }
        v = v * 10 + d;
    }
    *out_ms = v * mult;
    return 0;
}

int
opt_ms(const char *name, const char *arg, uint64_t min_ms, uint64_t max_ms, uint64_t *out)
{
    uint64_t v;
    int rv = opt_duration(arg, &v);

    if (rv == OPT_DUR_BAD) {
        fprintf(stderr, "%s: --%s: '%s' is not a duration (e.g. 500ms, 2s, 1m, 7d)\n", log_prog,
                name, arg ? arg : "");
        return 2;
    }
    if (rv != 0 || v < min_ms || v > max_ms) {
        fprintf(stderr, "%s: --%s: '%s' is out of range [%llums, %llums]\n", log_prog, name, arg,
                (unsigned long long)min_ms, (unsigned long long)max_ms);
        return 2;
    }
    *out = v;
    return 0;
}

/* n digits of p as a number, or -1 when one is not a digit. */
static int
digits_at(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* The zone of an RFC 3339 time at p: Z, or +HH:MM / -HH:MM into *off_s (seconds east of
 * UTC). 0, or -1 when it is none of those or anything follows. */
static int
zone_at(const char *p, int64_t *off_s)
{
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        *off_s = 0;
        return 0;
    }
    if ((p[0] != '+' && p[0] != '-') || p[3] != ':' || p[6] != '\0') {
        return -1;
    }
    int h = digits_at(p + 1, 2), m = digits_at(p + 4, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59) {
        return -1;
    }
    *off_s = (p[0] == '-' ? -1 : 1) * (int64_t)(h * 3600 + m * 60);
    return 0;
}

int
opt_time(const char *name, const char *arg, int64_t *out_ms)
{
    const char *p = arg != NULL ? arg : "";
    /* YYYY-MM-DDTHH:MM:SS is 19 characters; a zone follows at the least. */
    if (strlen(p) < 20 || p[4] != '-' || p[7] != '-' ||
        (p[10] != 'T' && p[10] != 't' && p[10] != ' ') || p[13] != ':' || p[16] != ':') {
        goto bad;
    }
    int y = digits_at(p, 4), mo = digits_at(p + 5, 2), d = digits_at(p + 8, 2);
    int h = digits_at(p + 11, 2), mi = digits_at(p + 14, 2), s = digits_at(p + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || s < 0 || s > 59) {
        goto bad;
    }
    p += 19;
    int64_t ms = 0;
    if (*p == '.') {
        int nd = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, nd++) {
            if (nd < 3) {
                ms = ms * 10 + (*p - '0');
            }
        }
        if (nd == 0) {
            goto bad;
        }
        for (; nd < 3; nd++) {
            ms *= 10;
        }
    }
    int64_t off_s;
    if (zone_at(p, &off_s) != 0) {
        goto bad;
    }
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                     .tm_min = mi, .tm_sec = s };
    time_t t = timegm(&tm);
    /* timegm moves a day past the month's end into the next month: such a date is refused. */
    if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1) {
        goto bad;
    }
    *out_ms = ((int64_t)t - off_s) * 1000 + ms;
    return 0;
bad:
    fprintf(stderr, "%s: --%s: '%s' is not a time (e.g. 2026-12-24T18:00:00Z or "
            "2026-12-24T19:00:00+01:00)\n", log_prog, name, arg ? arg : "");
    return 2;
}

void
opt_version(FILE *f)
{
    fprintf(f, "%s %s\n", log_prog, SLUICE_VERSION);
    fprintf(f, "compiler: %s (CC=%s)\n", COMPILER_NAME, SLUICE_BUILD_CC);
    fprintf(f, "cflags: %s\n", SLUICE_BUILD_CFLAGS);
    fprintf(f, "sanitizers: %s\n", SLUICE_BUILD_SANITIZE);
    fprintf(f, "nng: %s (built against %s)\n", nng_version(),
            STR(NNG_MAJOR_VERSION) "." STR(NNG_MINOR_VERSION) "." STR(NNG_PATCH_VERSION));
    fprintf(f, "msgpack-c: %s (built against %s)\n", msgpack_version(), MSGPACK_VERSION);
    fprintf(f, "mariadb-client: %s (built against MariaDB Connector/C %s)\n",
            mysql_get_client_info(), MARIADB_PACKAGE_VERSION);
    /* The broker's defaults (broker/main.c, common/rundir.h), said once for every program. */
    fprintf(f, "journal: --fsync always [$SLUICE_FSYNC], in $SLUICE_DIR/data [$SLUICE_DATA_DIR]\n");
    fprintf(f, "runtime directory: $SLUICE_DIR, else $XDG_RUNTIME_DIR/sluice, else "
               "/tmp/sluice-$UID (mode 0700)\n");
}

int
opt_common_apply(const struct opt_vals *vals, const char *usage,
                 const struct opt *const tables[], bool *done)
{
    *done = false;
    if (vals->v[OPT_HELP] != NULL) {
        opt_usage(stdout, usage, tables);
        *done = true;
        return 0;
    }
    if (vals->v[OPT_VERSION] != NULL) {
        opt_version(stdout);
        *done = true;
        return 0;
    }
    if (vals->v[OPT_LOG_LEVEL] != NULL) {
        int l = log_level_parse(vals->v[OPT_LOG_LEVEL]);
        if (l < 0) {
            fprintf(stderr, "%s: --log-level: '%s' is not one of debug, info, warn, error, off\n",
                    log_prog, vals->v[OPT_LOG_LEVEL]);
            return 2;
        }
        log_level = l;
    }
    return 0;
}
