/* The hash map against a reference array under random puts and deletes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "hmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 2000

static void
test_empty_map_finds_nothing(void **state)
{
    struct hmap m;
    size_t pos = 0;
    (void)state;
    hmap_init(&m);
    assert_null(hmap_get(&m, "a", 1));
    assert_null(hmap_del(&m, "a", 1));
    assert_null(hmap_next(&m, &pos));
    hmap_fini(&m);
}

static void
test_put_replaces_value(void **state)
{
    struct hmap m;
    int a, b;
    (void)state;
    hmap_init(&m);
    assert_int_equal(hmap_put(&m, "k", 1, &a), 0);
    assert_int_equal(hmap_put(&m, "k", 1, &b), 0);
    assert_int_equal(m.n, 1);
    assert_ptr_equal(hmap_get(&m, "k", 1), &b);
    assert_null(hmap_get(&m, "k2", 2));
    assert_null(hmap_get(&m, "", 0));
    hmap_fini(&m);
}

static void
test_random_ops_match_reference(void **state)
{
    static char keys[NKEYS][16];
    static int present[NKEYS];
    struct hmap m;
    unsigned seed = 42;
    (void)state;
    hmap_init(&m);
    for (int i = 0; i < NKEYS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key-%d", i);
    }
    for (int step = 0; step < 200000; step++) {
        int k = rand_r(&seed) % NKEYS;
        size_t kl = strlen(keys[k]);
        if (rand_r(&seed) % 3 == 0) {
            void *v = hmap_del(&m, keys[k], kl);
            assert_ptr_equal(v, present[k] ? (void *)keys[k] : NULL);
            present[k] = 0;
        } else {
            assert_int_equal(hmap_put(&m, keys[k], kl, keys[k]), 0);
            present[k] = 1;
        }
        if (step % 1000 == 0) {
            size_t n = 0;
            for (int i = 0; i < NKEYS; i++) {
                assert_ptr_equal(hmap_get(&m, keys[i], strlen(keys[i])),
                                 present[i] ? (void *)keys[i] : NULL);
                n += (size_t)present[i];
            }
            assert_int_equal(m.n, n);
            size_t pos = 0, seen = 0;
            while (hmap_next(&m, &pos) != NULL) {
                seen++;
            }
            assert_int_equal(seen, n);
        }
    }
    hmap_fini(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_map_finds_nothing),
        cmocka_unit_test(test_put_replaces_value),
        cmocka_unit_test(test_random_ops_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
