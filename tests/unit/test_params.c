/* test_params.c - typed job params (host/src/params.c): building, replacing,
 * cloning, the getters' return codes and messages, check_known. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "params.h"
#include "testutil.h"

static void test_set_and_get(void **state)
{
    (void)state;
    dp_params_t *p = dp_params_new();
    assert_int_equal(dp_params_set_string(p, "s", "text"), DP_OK);
    assert_int_equal(dp_params_set_int(p, "i", -3), DP_OK);
    assert_int_equal(dp_params_set_float(p, "f", 0.25), DP_OK);
    assert_int_equal(dp_params_set_bool(p, "b", true), DP_OK);
    const char *items[] = {"a", "b", "c"};
    assert_int_equal(dp_params_set_list(p, "l", items, 3), DP_OK);
    dp_params_t *g = dp_params_add_group(p, "g");
    assert_non_null(g);
    assert_int_equal(dp_params_set_string(g, "k", "v"), DP_OK);

    const char *s;
    int64_t i;
    double f;
    int b;
    size_t n;
    const dp_params_t *gg;
    assert_int_equal(dp__params_get_string(p, "s", &s), DP_PARAM_OK);
    assert_string_equal(s, "text");
    assert_int_equal(dp__params_get_int(p, "i", &i), DP_PARAM_OK);
    assert_int_equal(i, -3);
    assert_int_equal(dp__params_get_float(p, "f", &f), DP_PARAM_OK);
    assert_true(f == 0.25);
    assert_int_equal(dp__params_get_float(p, "i", &f), DP_PARAM_OK); /* ints convert */
    assert_true(f == -3.0);
    assert_int_equal(dp__params_get_bool(p, "b", &b), DP_PARAM_OK);
    assert_int_equal(b, 1);
    assert_int_equal(dp__params_list_count(p, "l", &n), DP_PARAM_OK);
    assert_int_equal(n, 3);
    assert_int_equal(dp__params_list_item(p, "l", 2, &s), DP_PARAM_OK);
    assert_string_equal(s, "c");
    assert_int_equal(dp__params_list_item(p, "l", 3, &s), DP_PARAM_BAD_VALUE);
    assert_int_equal(dp__params_get_group(p, "g", &gg), DP_PARAM_OK);
    assert_int_equal(dp__params_get_string(gg, "k", &s), DP_PARAM_OK);
    assert_string_equal(s, "v");

    /* Keys keep insertion order; setting again replaces in place. */
    assert_int_equal(dp__params_count(p), 6);
    assert_string_equal(dp__params_key_at(p, 0), "s");
    assert_string_equal(dp__params_key_at(p, 5), "g");
    assert_null(dp__params_key_at(p, 6));
    assert_int_equal(dp_params_set_int(p, "s", 9), DP_OK);
    assert_int_equal(dp__params_count(p), 6);
    assert_string_equal(dp__params_key_at(p, 0), "s");
    assert_int_equal(dp__params_kind(p, "s"), DP_PARAM_KIND_INT);
    assert_int_equal(dp__params_kind(p, "nope"), 0);

    /* Absent leaves out untouched. */
    i = 42;
    assert_int_equal(dp__params_get_int(p, "nope", &i), DP_PARAM_ABSENT);
    assert_int_equal(i, 42);

    assert_int_equal(dp_params_set_string(p, "", "x"), DP_EINVAL);
    assert_int_equal(dp_params_set_string(p, NULL, "x"), DP_EINVAL);
    assert_int_equal(dp_params_set_string(p, "x", NULL), DP_EINVAL);
    dp_params_free(p);
}

static void test_errors_name_key_and_origin(void **state)
{
    (void)state;
    dp_params_t *p = dp_params_new();
    dp_params_set_origin(p, "deploy.cfg", 12);
    dp_params_set_string(p, "port", "80");
    dp_params_t *env = dp_params_add_group(p, "env");
    dp_params_set_int(env, "N", 1);
    int64_t i;
    const char *s;
    assert_null(dp__params_error(p));
    assert_int_equal(dp__params_get_int(p, "port", &i), DP_PARAM_WRONG_TYPE);
    assert_string_equal(dp__params_error(p), "param 'port' (deploy.cfg:12): expected an integer, found a string");
    /* A nested group reports its path and its parent's origin, into the
     * root's diagnostic. */
    assert_int_equal(dp__params_get_string(env, "N", &s), DP_PARAM_WRONG_TYPE);
    assert_string_equal(dp__params_error(p), "param 'env.N' (deploy.cfg:12): expected a string, found an integer");
    dp__params_clear_error(p);
    assert_null(dp__params_error(p));
    char buf[64];
    assert_string_equal(dp__params_origin(env, buf, sizeof(buf)), "deploy.cfg:12");
    dp_params_free(p);
}

static void test_durations(void **state)
{
    (void)state;
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "a", "1h30m");
    dp_params_set_int(p, "b", 250);
    dp_params_set_int(p, "c", -1);
    dp_params_set_string(p, "d", "soon");
    dp_params_set_bool(p, "e", true);
    uint64_t ms;
    assert_int_equal(dp__params_get_duration_ms(p, "a", &ms), DP_PARAM_OK);
    assert_int_equal(ms, 5400000);
    assert_int_equal(dp__params_get_duration_ms(p, "b", &ms), DP_PARAM_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(dp__params_get_duration_ms(p, "c", &ms), DP_PARAM_BAD_VALUE);
    assert_non_null(strstr(dp__params_error(p), "cannot be negative"));
    assert_int_equal(dp__params_get_duration_ms(p, "d", &ms), DP_PARAM_BAD_VALUE);
    assert_non_null(strstr(dp__params_error(p), "param 'd'"));
    assert_int_equal(dp__params_get_duration_ms(p, "e", &ms), DP_PARAM_WRONG_TYPE);
    assert_non_null(strstr(dp__params_error(p), "expected a duration"));
    assert_int_equal(dp__params_get_duration_ms(p, "z", &ms), DP_PARAM_ABSENT);
    dp_params_free(p);
}

static void test_clone_is_deep(void **state)
{
    (void)state;
    dp_params_t *p = dp_params_new();
    dp_params_set_origin(p, "w.cfg", 3);
    dp_params_set_string(p, "s", "one");
    const char *items[] = {"x"};
    dp_params_set_list(p, "l", items, 1);
    dp_params_set_float(dp_params_add_group(p, "g"), "f", 1.5);
    dp_params_t *c = dp_params_clone(p);
    dp_params_free(p);
    const char *s;
    double f;
    const dp_params_t *g;
    assert_int_equal(dp__params_get_string(c, "s", &s), DP_PARAM_OK);
    assert_string_equal(s, "one");
    assert_int_equal(dp__params_list_item(c, "l", 0, &s), DP_PARAM_OK);
    assert_string_equal(s, "x");
    assert_int_equal(dp__params_get_group(c, "g", &g), DP_PARAM_OK);
    assert_int_equal(dp__params_get_float(g, "f", &f), DP_PARAM_OK);
    assert_true(f == 1.5);
    int64_t i;
    dp__params_get_int(c, "s", &i);
    assert_non_null(strstr(dp__params_error(c), "(w.cfg:3)"));
    dp_params_free(c);
}

static void test_check_known(void **state)
{
    (void)state;
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "command", "x");
    dp_params_set_string(p, "enviroment", "x");
    static const char *const known[] = {"command", "argv", "environment", NULL};
    char err[256];
    assert_int_equal(dp__params_check_known(p, known, err, sizeof(err)), -1);
    assert_string_equal(err, "unknown param 'enviroment' (did you mean 'environment'?)");
    dp_params_set_string(p, "zzzzzzzz", "x");
    static const char *const known2[] = {"command", "enviroment", NULL};
    assert_int_equal(dp__params_check_known(p, known2, err, sizeof(err)), -1);
    assert_string_equal(err, "unknown param 'zzzzzzzz' (known: command enviroment)");
    static const char *const all[] = {"command", "enviroment", "zzzzzzzz", NULL};
    assert_int_equal(dp__params_check_known(p, all, err, sizeof(err)), 0);
    dp_params_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_and_get), cmocka_unit_test(test_errors_name_key_and_origin),
        cmocka_unit_test(test_durations),   cmocka_unit_test(test_clone_is_deep),
        cmocka_unit_test(test_check_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
