/* Command-line options from tables: one row per option, shared parsing,
 * flag > environment > default, and --help printed from the same rows.
 * Only a program's main() (and ctl's command functions) call these. */
#ifndef SLUICE_OPT_H
#define SLUICE_OPT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define OPT_MAX 48 /* ids are indexes into struct opt_vals, below this */
#define OPT_REPEAT_MAX 8 /* values kept of an option given more than once */

struct opt {
    int id;               /* index into opt_vals.v; several tables may be combined */
    const char *name;     /* long name, without the dashes */
    char short_name;      /* 0 for none */
    const char *arg;      /* metavar, e.g. "URL"; NULL for a flag without an argument */
    const char *env;      /* variable read when the option is absent; NULL for none */
    const char *help;     /* one line */
};

/* Ids every program shares; a program's own ids start at OPT_COMMON_END. */
enum { OPT_URL, OPT_HELP, OPT_VERSION, OPT_LOG_LEVEL, OPT_TOKEN_FILE, OPT_COMMON_END };

/* --url, --help, --version, --log-level; terminated by a row with name NULL. */
extern const struct opt opt_common[];

/* --token-file (SLUICE_TOKEN_FILE), for the programs that speak to or serve the broker's
 * protocol; kept out of opt_common so that a program that would ignore it does not accept it. */
extern const struct opt opt_token[];

struct opt_vals {
    const char *v[OPT_MAX]; /* NULL: absent; "1" for a given flag; else the argument (borrowed
                               from argv or the environment) */
    bool from_env[OPT_MAX]; /* the value came from the environment */
    /* Every value of an option given more than once, in order (v holds the last): for the
     * options that may repeat, e.g. the broker's --listen. n counts every occurrence, also
     * past OPT_REPEAT_MAX, of which only the first OPT_REPEAT_MAX are kept. An environment
     * value counts as one. */
    const char *all[OPT_MAX][OPT_REPEAT_MAX];
    unsigned n[OPT_MAX];
};

/* Parses argv[1..] against tables (a NULL-terminated list of row arrays, each ended by a row
 * with name NULL). Options may be mixed with arguments unless in_order, where parsing stops
 * at the first argument. "--" ends the options. On success *argi is the index of the first
 * argument and 0 is returned. On a usage error prints "PROG: message" to stderr and returns 2.
 * Not thread-safe (getopt). */
int opt_parse(int argc, char **argv, const struct opt *const tables[], bool in_order,
              struct opt_vals *vals, int *argi);

/* Prints "usage: USAGE" and one line per option of the tables. */
void opt_usage(FILE *f, const char *usage, const struct opt *const tables[]);

/* Parses a whole decimal number in [min, max] into *out; on error prints a message naming the
 * option to stderr and returns 2 (a usage error). Accepts k, M, G suffixes when sized (powers
 * of 1024). */
int opt_u64(const char *name, const char *arg, uint64_t min, uint64_t max, uint64_t *out);
int opt_size(const char *name, const char *arg, uint64_t min, uint64_t max, uint64_t *out);

/* Parses a duration: a number with unit ms, s, m, h or d (a bare number is milliseconds) into
 * milliseconds in [min_ms, max_ms]. Errors as opt_u64. */
int opt_ms(const char *name, const char *arg, uint64_t min_ms, uint64_t max_ms, uint64_t *out);

/* The same durations quietly, for callers that word their own errors (a cron schedule's
 * @every): 0 with *out_ms set, OPT_DUR_BAD (not a duration) or OPT_DUR_RANGE (over
 * UINT64_MAX ms). */
#define OPT_DUR_BAD 1
#define OPT_DUR_RANGE 2
int opt_duration(const char *arg, uint64_t *out_ms);

/* Parses a time as RFC 3339 gives it, YYYY-MM-DDTHH:MM:SS[.fraction] then Z or +HH:MM or
 * -HH:MM (T may be t or a space, Z z), into milliseconds since the epoch (UTC); the fraction
 * is cut to milliseconds. Years 1970-9999. Errors as opt_u64. */
int opt_time(const char *name, const char *arg, int64_t *out_ms);

/* Prints "PROG VERSION" (log_prog), then one "key: value" line each for the build: compiler,
 * cflags, sanitizers, the nng, msgpack-c and MariaDB client libraries (the one running, and
 * the one built against), and the defaults that matter (journal fsync, runtime directory). */
void opt_version(FILE *f);

/* Handles the common options after opt_parse: --help prints usage and returns 0 with *done set;
 * --version prints opt_version and sets *done; --log-level sets log_level (2 on a bad value).
 * Returns 0 or 2. */
int opt_common_apply(const struct opt_vals *vals, const char *usage,
                     const struct opt *const tables[], bool *done);

#endif
