#include "hmap.h"

#include "err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

uint64_t
hmap_hash(const void *key, size_t klen)
{
    /* FNV-1a, then a finaliser so that the low bits (the probe start) mix all bits. */
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

void
hmap_init(struct hmap *m)
{
    memset(m, 0, sizeof(*m));
}

void
hmap_fini(struct hmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static size_t
find(const struct hmap *m, const void *key, size_t klen, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct hmap_slot *s = &m->slots[i];
        if (s->key == NULL ||
            (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)) {
            return i;
        }
    }
}

void *
hmap_get(const struct hmap *m, const void *key, size_t klen)
{
    if (m->n == 0) {
        return NULL;
    }
    const struct hmap_slot *s = &m->slots[find(m, key, klen, hmap_hash(key, klen))];
    return s->key != NULL ? s->val : NULL;
}

static int
grow_to(struct hmap *m, size_t ncap)
{
    struct hmap_slot *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        return SL_ENOMEM;
    }
    struct hmap old = *m;
    m->slots = ns;
    m->cap = ncap;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].key != NULL) {
            m->slots[find(m, old.slots[i].key, old.slots[i].klen, old.slots[i].hash)] =
                old.slots[i];
        }
    }
    free(old.slots);
    return 0;
}

static int
grow(struct hmap *m)
{
    return grow_to(m, m->cap == 0 ? 16 : m->cap * 2);
}

int
hmap_reserve(struct hmap *m, size_t n)
{
    size_t ncap = m->cap == 0 ? 16 : m->cap;
    while ((n + 1) * 2 > ncap) {
        ncap *= 2;
    }
    return ncap == m->cap ? 0 : grow_to(m, ncap);
}

int
hmap_put(struct hmap *m, const void *key, size_t klen, void *val)
{
    /* Keep the load at most 1/2 so probes stay short. */
    if ((m->n + 1) * 2 > m->cap && grow(m) != 0) {
        return SL_ENOMEM;
    }
    uint64_t h = hmap_hash(key, klen);
    struct hmap_slot *s = &m->slots[find(m, key, klen, h)];
    if (s->key == NULL) {
        m->n++;
    }
    *s = (struct hmap_slot){ key, val, h, (uint32_t)klen };
    return 0;
}

void *
hmap_del(struct hmap *m, const void *key, size_t klen)
{
    if (m->n == 0) {
        return NULL;
    }
    size_t mask = m->cap - 1;
    size_t i = find(m, key, klen, hmap_hash(key, klen));
    if (m->slots[i].key == NULL) {
        return NULL;
    }
    void *val = m->slots[i].val;
    /* Backward-shift: move later entries of the probe run into the hole when their home slot
     * does not lie cyclically in (hole, j]. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->slots[j].key == NULL) {
            break;
        }
        size_t home = m->slots[j].hash & mask;
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->n--;
    return val;
}

void *
hmap_next(const struct hmap *m, size_t *pos)
{
    while (*pos < m->cap) {
        const struct hmap_slot *s = &m->slots[(*pos)++];
        if (s->key != NULL) {
            return s->val;
        }
    }
    return NULL;
}
