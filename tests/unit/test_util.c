/* test_util.c - the error codes (DP_ERR_MAP: dp_err_t, dp_strerror,
 * dp_err_name; host/src/util.c) and the public enum tags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"

/* Every row of the map, as an embedder would expand it. */
static const struct row {
    int value;
    const char *name, *message;
} rows[] = {
#define ROW(name, value, message) {value, "DP_" #name, message},
    DP_ERR_MAP(ROW)
#undef ROW
};
#define NROWS (sizeof rows / sizeof rows[0])

/* Values are never renumbered (a retired code keeps its number) and the
 * messages are what dp_strerror said before the map made it. */
static void test_codes_frozen(void **state)
{
    (void)state;
    static const struct row frozen[] = {
        {DP_OK, "DP_OK", "success"},
        {DP_EINVAL, "DP_EINVAL", "invalid argument"},
        {DP_ENOMEM, "DP_ENOMEM", "out of memory"},
        {DP_EDUPLICATE, "DP_EDUPLICATE", "duplicate job name"},
        {DP_EUNKNOWN_DEP, "DP_EUNKNOWN_DEP", "unknown dependency"},
        {DP_ESELF_DEP, "DP_ESELF_DEP", "job depends on itself"},
        {DP_ECYCLE, "DP_ECYCLE", "dependency cycle"},
        {DP_ECONCURRENCY, "DP_ECONCURRENCY", "max_concurrent_jobs must be at least 1"},
        {DP_ENOTFOUND, "DP_ENOTFOUND", "not found"},
        {DP_ECANCELED, "DP_ECANCELED", "cancelled"},
        {DP_ETIMEDOUT, "DP_ETIMEDOUT", "timed out"},
        {DP_ESYS, "DP_ESYS", "system call failed"},
        {DP_EPLUGIN, "DP_EPLUGIN", "plugin refused or failed"},
        {DP_ECONFIG, "DP_ECONFIG", "invalid workflow file"},
        {DP_EBUSY, "DP_EBUSY", "busy"},
        {DP_ETYPE, "DP_ETYPE", "wrong type"},
        {DP_ENOJOB, "DP_ENOJOB", "job has neither run nor check"},
    };
    static const int numbers[] = {0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16};
    assert_int_equal(sizeof frozen / sizeof frozen[0], sizeof numbers / sizeof numbers[0]);
    for (size_t i = 0; i < sizeof frozen / sizeof frozen[0]; i++) {
        assert_int_equal(frozen[i].value, numbers[i]);
        assert_string_equal(dp_err_name(frozen[i].value), frozen[i].name);
        assert_string_equal(dp_strerror(frozen[i].value), frozen[i].message);
    }
    /* A new code is a new row at the end of the map, never a change here. */
    assert_true(NROWS >= sizeof frozen / sizeof frozen[0]);
}

/* Every code has a name and a message of its own, and the functions say
 * what the map says. */
static void test_every_code_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        assert_string_equal(dp_err_name(rows[i].value), rows[i].name);
        assert_string_equal(dp_strerror(rows[i].value), rows[i].message);
        assert_string_not_equal(rows[i].message, "unknown error");
        assert_true(rows[i].message[0] != '\0');
        for (size_t k = 0; k < i; k++) {
            if (rows[k].value == rows[i].value)
                fail_msg("%s and %s share the value %d", rows[k].name, rows[i].name, rows[i].value);
            if (strcmp(rows[k].message, rows[i].message) == 0)
                fail_msg("%s and %s share the message \"%s\"", rows[k].name, rows[i].name, rows[i].message);
            assert_string_not_equal(rows[k].name, rows[i].name);
        }
    }
}

/* A value that is no code: never NULL, and said to be unknown. */
static void test_unknown_values(void **state)
{
    (void)state;
    size_t named = 0;
    for (int v = -1000; v <= 1000; v++) {
        const char *name = dp_err_name(v), *msg = dp_strerror(v);
        assert_non_null(name);
        assert_non_null(msg);
        if (strcmp(name, "?") != 0) {
            named++;
            assert_string_not_equal(msg, "unknown error");
        } else {
            assert_string_equal(msg, "unknown error");
        }
    }
    assert_int_equal(named, NROWS);
    assert_string_equal(dp_err_name(-999), "?");
    assert_string_equal(dp_strerror(-999), "unknown error");
    assert_string_equal(dp_err_name(1), "?");
}

/* Enum tags match their typedefs; the old tag of dp_run_outcome_t still
 * names the same type (this file would not build under -Werror otherwise:
 * the pointer assignments below would mix incompatible types). */
static void test_enum_tags(void **state)
{
    (void)state;
    enum dp_outcome_kind old = DP_RUN_TIMEOUT;
    enum dp_run_outcome now = DP_RUN_NOT_READY;
    dp_run_outcome_t *p = &old, *q = &now;
    assert_string_equal(dp_run_outcome_name(*p), "timeout");
    assert_string_equal(dp_run_outcome_name(*q), "not_ready");
    enum dp_err e = DP_ECYCLE;
    dp_err_t *pe = &e;
    assert_string_equal(dp_err_name(*pe), "DP_ECYCLE");
    enum dp_status st = DP_STATUS_SKIPPED;
    dp_status_t *ps = &st;
    assert_string_equal(dp_status_name(*ps), "skipped");
    enum dp_event_kind ek = DP_EV_JOB_END;
    dp_event_kind_t *pk = &ek;
    assert_int_equal(*pk, 3);
    enum dp_log_level lv = DP_LOG_WARN;
    dp_log_level_t *pl = &lv;
    assert_string_equal(dp_log_level_name(*pl), "warn");
    enum dp_outcome o = DP_NOT_READY;
    dp_outcome_t *po = &o;
    assert_int_equal(*po, 1);
    enum dp_isolation iso = DP_ISOLATION_PROCESS;
    dp_isolation_t *pi = &iso;
    assert_int_equal(*pi, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_frozen),
        cmocka_unit_test(test_every_code_distinct),
        cmocka_unit_test(test_unknown_values),
        cmocka_unit_test(test_enum_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
