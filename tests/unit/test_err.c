/* common/err: every code has a distinct, stable wire name that maps back to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"

#include <string.h>

/* The codes PROTOCOL.md documents (and the two clients add), with the value each maps to. */
static const struct {
    const char *name;
    int code;
} documented[] = {
    { "bad_request", SL_EBADREQ },   { "unknown_op", SL_EUNKNOWNOP },
    { "not_found", SL_ENOTFOUND },   { "exists", SL_EEXISTS },
    { "queue_full", SL_EQUEUEFULL }, { "too_large", SL_ETOOLARGE },
    { "paused", SL_EPAUSED },        { "not_leader", SL_ENOTLEADER },
    { "not_empty", SL_ENOTEMPTY },   { "forbidden", SL_EFORBIDDEN },
    { "no_memory", SL_ENOMEM },      { "io", SL_EIO },
    { "internal", SL_EINTERNAL },    { "timeout", SL_ETIMEDOUT },
    { "unreachable", SL_EUNREACHABLE }, { "unauthorized", SL_EUNAUTH },
    { "conflict", SL_ECONFLICT },
};

static void
test_every_code_has_a_distinct_nonempty_wire_name(void **state)
{
    (void)state;
    for (int i = 0; i < SL_ERR_COUNT; i++) {
        const char *a = sl_err_code(i);
        assert_non_null(a);
        assert_true(strlen(a) > 0);
        /* Stable identifiers: lower case and underscores only. */
        assert_int_equal(strspn(a, "abcdefghijklmnopqrstuvwxyz_"), strlen(a));
        for (int j = 0; j < i; j++) {
            if (strcmp(a, sl_err_code(j)) == 0) {
                fail_msg("codes %d and %d share the wire name \"%s\"", j, i, a);
            }
        }
    }
}

static void
test_every_code_has_a_description(void **state)
{
    (void)state;
    for (int i = 0; i < SL_ERR_COUNT; i++) {
        assert_non_null(sl_err_str(i));
        assert_true(strlen(sl_err_str(i)) > 0);
    }
}

static void
test_from_code_round_trips_every_code(void **state)
{
    (void)state;
    for (int i = 0; i < SL_ERR_COUNT; i++) {
        const char *name = sl_err_code(i);
        assert_int_equal(sl_err_from_code(name, (unsigned)strlen(name)), i);
    }
}

static void
test_documented_codes_map_to_their_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(documented) / sizeof(documented[0]); i++) {
        assert_string_equal(sl_err_code(documented[i].code), documented[i].name);
        assert_int_equal(sl_err_from_code(documented[i].name,
                                          (unsigned)strlen(documented[i].name)),
                         documented[i].code);
    }
    /* Every error code is documented (all but SL_OK). */
    assert_int_equal(sizeof(documented) / sizeof(documented[0]), SL_ERR_COUNT - 1);
}

static void
test_from_code_reads_only_n_bytes(void **state)
{
    (void)state;
    /* Wire strings are not NUL-terminated: the name may be followed by anything. */
    const char buf[] = "queue_fullXYZ";
    assert_int_equal(sl_err_from_code(buf, 10), SL_EQUEUEFULL);
    assert_int_equal(sl_err_from_code("ioXX", 2), SL_EIO);
}

static void
test_from_code_unknown_name_is_internal(void **state)
{
    (void)state;
    assert_int_equal(sl_err_from_code("no_such_code", 12), SL_EINTERNAL);
    assert_int_equal(sl_err_from_code("", 0), SL_EINTERNAL);
    /* A prefix or an extension of a name is not that name. */
    assert_int_equal(sl_err_from_code("queue_full", 5), SL_EINTERNAL);
    assert_int_equal(sl_err_from_code("queue_fullX", 11), SL_EINTERNAL);
    /* Case matters. */
    assert_int_equal(sl_err_from_code("BAD_REQUEST", 11), SL_EINTERNAL);
}

static void
test_out_of_range_values_are_internal_never_null(void **state)
{
    (void)state;
    const int bad[] = { -1, SL_ERR_COUNT, SL_ERR_COUNT + 1, 1000, -2147483647 - 1 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_string_equal(sl_err_code(bad[i]), "internal");
        assert_non_null(sl_err_str(bad[i]));
        assert_true(strlen(sl_err_str(bad[i])) > 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_a_distinct_nonempty_wire_name),
        cmocka_unit_test(test_every_code_has_a_description),
        cmocka_unit_test(test_from_code_round_trips_every_code),
        cmocka_unit_test(test_documented_codes_map_to_their_values),
        cmocka_unit_test(test_from_code_reads_only_n_bytes),
        cmocka_unit_test(test_from_code_unknown_name_is_internal),
        cmocka_unit_test(test_out_of_range_values_are_internal_never_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
