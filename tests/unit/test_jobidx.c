/* The job index: consecutive ids share chunks, a chunk goes with its last job, and the index
 * agrees with a reference array under random adds and deletes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "jobidx.h"

#include <stdlib.h>
#include <string.h>

#define NIDS 5000

static void
test_push_of_many_takes_few_chunks(void **state)
{
    static struct job jobs[1000];
    struct jobidx x;
    (void)state;
    jobidx_init(&x);
    assert_int_equal(jobidx_reserve(&x, 100, 1000), 0);
    /* ids 100..1099: chunks 1..17 */
    assert_int_equal(x.chunks.n, (1099 >> JOBIDX_SHIFT) - (100 >> JOBIDX_SHIFT) + 1);
    for (int i = 0; i < 1000; i++) {
        jobs[i].id = 100 + (uint64_t)i;
        jobidx_add(&x, &jobs[i]);
    }
    assert_int_equal(x.n, 1000);
    assert_ptr_equal(jobidx_get(&x, 100), &jobs[0]);
    assert_ptr_equal(jobidx_get(&x, 1099), &jobs[999]);
    assert_null(jobidx_get(&x, 99));
    assert_null(jobidx_get(&x, 1100));
    for (int i = 0; i < 1000; i++) {
        jobidx_del(&x, &jobs[i]);
    }
    assert_int_equal(x.n, 0);
    assert_int_equal(x.chunks.n, 0);
    /* ids that would wrap past UINT64_MAX, and id 0, are refused (a forged journal) */
    assert_int_equal(jobidx_reserve(&x, UINT64_MAX - 1, 3), SL_EBADREQ);
    assert_int_equal(jobidx_reserve(&x, 0, 1), SL_EBADREQ);
    assert_int_equal(jobidx_reserve(&x, UINT64_MAX, 1), 0);
    assert_int_equal(x.chunks.n, 1);
    jobidx_fini(&x);
}

static void
test_del_of_a_replaced_job_keeps_the_new_one(void **state)
{
    struct job a = { .id = 7 }, b = { .id = 7 };
    struct jobidx x;
    (void)state;
    jobidx_init(&x);
    assert_int_equal(jobidx_reserve(&x, 7, 1), 0);
    jobidx_add(&x, &a);
    jobidx_add(&x, &b);
    assert_int_equal(x.n, 1);
    jobidx_del(&x, &a);
    assert_ptr_equal(jobidx_get(&x, 7), &b);
    jobidx_del(&x, &b);
    assert_null(jobidx_get(&x, 7));
    assert_int_equal(x.chunks.n, 0);
    jobidx_fini(&x);
}

static void
test_random_against_reference(void **state)
{
    static struct job jobs[NIDS];
    static bool in[NIDS];
    struct jobidx x;
    uint64_t held = 0;
    (void)state;
    srand(42);
    memset(in, 0, sizeof(in));
    jobidx_init(&x);
    for (int i = 0; i < NIDS; i++) {
        jobs[i].id = (uint64_t)i * 3 + 1; /* sparse: some chunks hold few */
    }
    for (int step = 0; step < 200000; step++) {
        int i = rand() % NIDS;
        if (in[i]) {
            jobidx_del(&x, &jobs[i]);
            in[i] = false;
            held--;
        } else {
            assert_int_equal(jobidx_reserve(&x, jobs[i].id, 1), 0);
            jobidx_add(&x, &jobs[i]);
            in[i] = true;
            held++;
        }
        int k = rand() % NIDS;
        assert_ptr_equal(jobidx_get(&x, jobs[k].id), in[k] ? &jobs[k] : NULL);
        assert_null(jobidx_get(&x, jobs[k].id + 1));
    }
    assert_int_equal(x.n, held);
    jobidx_fini(&x);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_of_many_takes_few_chunks),
        cmocka_unit_test(test_del_of_a_replaced_job_keeps_the_new_one),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
