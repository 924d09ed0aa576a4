#include "change.h"

#include "journal.h"

static bool
hook_on(const struct broker *b)
{
    return b->change_hook != NULL && !b->replaying;
}

static uint64_t
hook_take(struct broker *b, const struct change *c)
{
    b->change_hook(c, b->change_arg);
    return 0;
}

/* The consumers, in the order they are fed. */
static const struct consumer {
    bool (*on)(const struct broker *b);
    uint64_t (*take)(struct broker *b, const struct change *c);
} consumers[] = {
    { journal_attached, journal_change },
    { hook_on, hook_take },
};

uint64_t
change_made(struct broker *b, const struct change *c)
{
    uint64_t lsn = 0;
    for (size_t i = 0; i < sizeof(consumers) / sizeof(consumers[0]); i++) {
        if (consumers[i].on(b)) {
            uint64_t l = consumers[i].take(b, c);
            lsn = l > lsn ? l : lsn;
        }
    }
    return lsn;
}
