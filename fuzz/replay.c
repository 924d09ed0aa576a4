/* Runs a fuzz target without libFuzzer: LLVMFuzzerTestOneInput once on each file named, or
 * found in the directories named, on the command line; without arguments, on the target's
 * seed corpus and regression inputs, $SLUICE_FUZZ_ROOT/{corpus,regress}/TARGET (the root
 * defaults to "fuzz", for a run from the source tree). TARGET is this program's name without
 * its "replay_" prefix. Prints TAP, one line per input, so tests/run counts each: an input
 * that crashes the target ends the run before its "ok" line and the plan shows it missing. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

/* As with libFuzzer, a target need not define it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

struct list {
    char **v;
    size_t n, cap;
};

static void
list_add(struct list *l, const char *path)
{
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof(*v));
        FUZZ_CHECK(v != NULL);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(path);
    FUZZ_CHECK(l->v[l->n] != NULL);
    l->n++;
}

static int
cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds path (a file) or the regular files directly in it (a directory, sorted); a missing
 * directory adds nothing unless must_exist. Returns 0 or -1 (said why). */
static int
collect(struct list *l, const char *path, int must_exist)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && !must_exist) {
            return 0;
        }
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        list_add(l, path);
        return 0;
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t first = l->n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        if (e->d_name[0] == '.' ||
            snprintf(p, sizeof(p), "%s/%s", path, e->d_name) >= (int)sizeof(p) ||
            stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        list_add(l, p);
    }
    closedir(d);
    qsort(l->v + first, l->n - first, sizeof(*l->v), cmp);
    return 0;
}

/* The whole of file path in a malloc'd buffer (at least 1 byte allocated). */
static uint8_t *
slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    FUZZ_CHECK(buf != NULL);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *more = realloc(buf, cap * 2);
            FUZZ_CHECK(more != NULL);
            buf = more;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *n = len;
    return buf;
}

int
main(int argc, char **argv)
{
    struct list l = { NULL, 0, 0 };
    int rv = 0;

    if (argc > 1) {
        for (int i = 1; i < argc && rv == 0; i++) {
            rv = collect(&l, argv[i], 1);
        }
    } else {
        const char *root = getenv("SLUICE_FUZZ_ROOT");
        char self[PATH_MAX], p[PATH_MAX];
        snprintf(self, sizeof(self), "%s", argv[0]);
        const char *target = basename(self);
        if (strncmp(target, "replay_", 7) == 0) {
            target += 7;
        }
        if (root == NULL || root[0] == '\0') {
            root = "fuzz";
        }
        snprintf(p, sizeof(p), "%s/corpus/%s", root, target);
        rv = collect(&l, p, 1);
        snprintf(p, sizeof(p), "%s/regress/%s", root, target);
        if (rv == 0) {
            rv = collect(&l, p, 0);
        }
    }
    if (rv != 0) {
        return 1;
    }
    if (LLVMFuzzerInitialize != NULL) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    printf("1..%zu\n", l.n);
    fflush(stdout);
    for (size_t i = 0; i < l.n; i++) {
        size_t n = 0;
        uint8_t *buf = slurp(l.v[i], &n);
        if (buf == NULL) {
            printf("not ok %zu - %s: cannot read: %s\n", i + 1, l.v[i], strerror(errno));
            rv = 1;
        } else {
            LLVMFuzzerTestOneInput(buf, n);
            printf("ok %zu - %s\n", i + 1, l.v[i]);
            free(buf);
        }
        fflush(stdout);
        free(l.v[i]);
    }
    free(l.v);
    return rv;
}
