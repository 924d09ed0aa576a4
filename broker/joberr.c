#include "joberr.h"

#include <stdlib.h>
#include <string.h>

const char *const joberr_class_names[JERR_CLASSES] = {
    [JERR_FAILED] = "failed",
    [JERR_EXIT] = "exit",
    [JERR_SIGNAL] = "signal",
    [JERR_WORKER_DIED] = "worker_died",
    [JERR_TTR_EXPIRED] = "ttr_expired",
};

/* Does s begin with word, a space and a digit? */
static bool
starts_num(struct sl_str s, const char *word)
{
    size_t n = strlen(word);
    return s.n > n + 1 && memcmp(s.p, word, n) == 0 && s.p[n] == ' ' && s.p[n + 1] >= '0' &&
           s.p[n + 1] <= '9';
}

enum joberr_class
joberr_classify(struct sl_str msg)
{
    if (starts_num(msg, "exit")) {
        return JERR_EXIT;
    }
    if (starts_num(msg, "signal")) {
        return JERR_SIGNAL;
    }
    return JERR_FAILED;
}

int
joberr_class_parse(struct sl_str name)
{
    for (int i = 0; i < JERR_CLASSES; i++) {
        if (sl_str_eq(name, joberr_class_names[i])) {
            return i;
        }
    }
    return -1;
}

/* A new error of n bytes, its text to be filled. */
static struct joberr *
alloc_err(enum joberr_class cls, int64_t at_ms, uint32_t n)
{
    struct joberr *e = malloc(sizeof(*e) + n);
    if (e != NULL) {
        e->at_ms = at_ms;
        e->cls = (uint8_t)cls;
        e->len = (uint16_t)n;
    }
    return e;
}

struct joberr *
joberr_new(enum joberr_class cls, int64_t at_ms, struct sl_str text)
{
    if (text.n <= JOBERR_TEXT_MAX) {
        struct joberr *e = alloc_err(cls, at_ms, text.n);
        if (e != NULL && text.n > 0) {
            memcpy(e->text, text.p, text.n);
        }
        return e;
    }
    /* Too long: its first line (at most JOBERR_HEAD_MAX), a gap, and the end. */
    struct joberr *e = alloc_err(cls, at_ms, JOBERR_TEXT_MAX);
    if (e == NULL) {
        return NULL;
    }
    const char *nl = memchr(text.p, '\n', JOBERR_HEAD_MAX);
    uint32_t head = nl != NULL ? (uint32_t)(nl - text.p) : JOBERR_HEAD_MAX;
    static const char gap[] = "\n...\n";
    uint32_t tail = JOBERR_TEXT_MAX - head - (uint32_t)(sizeof(gap) - 1);
    memcpy(e->text, text.p, head);
    memcpy(e->text + head, gap, sizeof(gap) - 1);
    memcpy(e->text + head + sizeof(gap) - 1, text.p + text.n - tail, tail);
    return e;
}
