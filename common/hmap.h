/* A hash map from byte-string keys to pointers: open addressing, linear probing,
 * deletion by backward shift (no tombstones). The map stores the key pointer, not a copy:
 * the key bytes must stay valid and unchanged while the entry is in the map (typically the
 * key is a field of the value). Not thread-safe. */
#ifndef SLUICE_HMAP_H
#define SLUICE_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap_slot {
    const void *key; /* NULL: empty */
    void *val;
    uint64_t hash;
    uint32_t klen;
};

struct hmap {
    struct hmap_slot *slots;
    size_t cap;  /* a power of two, or 0 */
    size_t n;
};

void hmap_init(struct hmap *m);
/* Frees the table (not the keys or values). */
void hmap_fini(struct hmap *m);

/* The value stored under key, or NULL. */
void *hmap_get(const struct hmap *m, const void *key, size_t klen);

/* Stores val under key, replacing any value there. Returns 0 or SL_ENOMEM (map unchanged). */
int hmap_put(struct hmap *m, const void *key, size_t klen, void *val);

/* Makes room for n entries in all, so that puts up to n cannot fail. Returns 0 or
 * SL_ENOMEM. */
int hmap_reserve(struct hmap *m, size_t n);

/* Removes key; returns its value, or NULL if absent. */
void *hmap_del(struct hmap *m, const void *key, size_t klen);

/* Iteration: start with *pos = 0; returns the next value or NULL at the end. The map must not
 * change during an iteration. */
void *hmap_next(const struct hmap *m, size_t *pos);

uint64_t hmap_hash(const void *key, size_t klen);

#endif
