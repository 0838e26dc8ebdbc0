/* test_core.c - core.noop and core.sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "ptest.h"

static const dp_job_result_t *run(dp_plugins_t *pl, const char *type, dp_params_t *p, const dp_job_spec_t *spec,
                                  dp_result_t **r, dp_graph_t **g)
{
    *r = ptest_run1(pl, type, p, spec, NULL, NULL, g);
    return dp_result_find(*r, "J");
}

static void done(dp_result_t *r, dp_graph_t *g, dp_params_t *p)
{
    dp_result_free(r);
    dp_graph_free(g);
    dp_params_free(p);
}

static void test_noop(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_result_t *r;
    dp_graph_t *g;
    const dp_job_result_t *j = run(pl, "core.noop", NULL, NULL, &r, &g);
    assert_int_equal(j->status, DP_STATUS_SUCCESS);
    assert_string_equal(j->plugin_version, "1.0.0");
    done(r, g, NULL);
    dp_plugins_free(pl);
}

static void test_sleep_outcomes(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_result_t *r;
    dp_graph_t *g;

    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "duration", "60ms");
    uint64_t t0 = ptest_now_ms();
    const dp_job_result_t *j = run(pl, "core.sleep", p, NULL, &r, &g);
    assert_int_equal(j->status, DP_STATUS_SUCCESS);
    assert_true(ptest_now_ms() - t0 >= 55);
    done(r, g, p);

    p = dp_params_new();
    dp_params_set_int(p, "duration", 1); /* an integer is milliseconds */
    dp_params_set_bool(p, "ready", false);
    j = run(pl, "core.sleep", p, NULL, &r, &g);
    assert_int_equal(j->status, DP_STATUS_NOT_READY);
    done(r, g, p);

    p = dp_params_new();
    dp_params_set_string(p, "error", "quota exceeded");
    j = run(pl, "core.sleep", p, NULL, &r, &g);
    assert_int_equal(j->status, DP_STATUS_FAILED);
    assert_string_equal(j->error, "quota exceeded");
    done(r, g, p);
    dp_plugins_free(pl);
}

static void test_sleep_ends_on_timeout(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "duration", "1h");
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.timeout_ms = 100;
    dp_result_t *r;
    dp_graph_t *g;
    uint64_t t0 = ptest_now_ms();
    const dp_job_result_t *j = run(pl, "core.sleep", p, &spec, &r, &g);
    assert_true(ptest_now_ms() - t0 < 10000);
    assert_int_equal(j->status, DP_STATUS_FAILED);
    assert_non_null(strstr(j->error, "timed out"));
    done(r, g, p);
    dp_plugins_free(pl);
}

static void test_sleep_bad_params(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "J";
    char err[1024];
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "duration", "5 parsecs");
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "core.sleep", p, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "job 'J' (type 'core.sleep'): param 'duration'"));
    dp_params_free(p);
    p = dp_params_new();
    dp_params_set_string(p, "ready", "yes");
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "core.sleep", p, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "param 'ready': expected a boolean, found a string"));
    dp_params_free(p);
    p = dp_params_new();
    dp_params_set_int(p, "x", 1);
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "core.noop", p, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "unknown param 'x'"));
    dp_params_free(p);
    dp_graph_free(g);
    dp_plugins_free(pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noop),
        cmocka_unit_test(test_sleep_outcomes),
        cmocka_unit_test(test_sleep_ends_on_timeout),
        cmocka_unit_test(test_sleep_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
