/* test_plugin_jobs.c - plugin job types run through the engine: outcomes,
 * messages, retries, check-only types, logging and the store, and that every
 * pin is released when the run is over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ptest.h"

static unsigned pins(dp_plugins_t *pl);

static void test_echo_ready_logs_and_stores(void **state)
{
    (void)state;
    ptest_log_t log;
    ptest_log_init(&log);
    dp_plugins_t *pl = ptest_registry(&log);
    dp_store_t *store = dp_store_new();
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "message", "hi there");
    dp_graph_t *g;
    dp_result_t *r = ptest_run1(pl, "good.echo", p, NULL, store, &log, &g);
    const dp_job_result_t *j = dp_result_find(r, "J");
    assert_int_equal(j->status, DP_STATUS_SUCCESS);
    assert_string_equal(j->plugin, "good");
    assert_string_equal(j->plugin_version, "1.0.0");
    assert_true(ptest_log_has(&log, "job=J plugin=good: echo hi there (attempt 1, version 1.0.0)"));
    void *v;
    size_t len;
    assert_int_equal(dp_store_get_copy(store, "good.last", &v, &len), DP_OK);
    assert_string_equal(v, "hi there");
    free(v);
    assert_int_equal(pins(pl), 0);
    dp_result_free(r);
    dp_graph_free(g);
    dp_params_free(p);
    dp_store_free(store);
    dp_plugins_free(pl);
    ptest_log_free(&log);
}

static void test_not_ready_and_errors(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_graph_t *g;

    dp_params_t *p = dp_params_new();
    dp_params_set_bool(p, "not_ready", true);
    dp_result_t *r = ptest_run1(pl, "good.echo", p, NULL, NULL, NULL, &g);
    assert_int_equal(dp_result_find(r, "J")->status, DP_STATUS_NOT_READY);
    dp_result_free(r);
    dp_graph_free(g);
    dp_params_free(p);

    /* A retryable error is retried... */
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.retries = 2;
    spec.backoff.initial_ms = 1;
    spec.backoff.max_ms = 1;
    p = dp_params_new();
    dp_params_set_string(p, "fail", "disk on fire");
    r = ptest_run1(pl, "good.echo", p, &spec, NULL, NULL, &g);
    const dp_job_result_t *j = dp_result_find(r, "J");
    assert_int_equal(j->status, DP_STATUS_FAILED);
    assert_string_equal(j->error, "disk on fire");
    assert_int_equal(j->attempts, 3);
    dp_result_free(r);
    dp_graph_free(g);

    /* ...a permanent one is not. */
    dp_params_set_bool(p, "permanent", true);
    r = ptest_run1(pl, "good.echo", p, &spec, NULL, NULL, &g);
    j = dp_result_find(r, "J");
    assert_int_equal(j->status, DP_STATUS_FAILED);
    assert_string_equal(j->error, "disk on fire");
    assert_int_equal(j->attempts, 1);
    assert_int_equal(pins(pl), 0);
    dp_result_free(r);
    dp_graph_free(g);
    dp_params_free(p);
    dp_plugins_free(pl);
}

static void test_check_only_uses_registry_store(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_store_t *store = dp_store_new();
    /* The run has no store: the host API falls back to the registry's. */
    dp_plugins_set_store(pl, store);
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "key", "flag");
    dp_graph_t *g;
    dp_result_t *r = ptest_run1(pl, "good.probe", p, NULL, NULL, NULL, &g);
    assert_int_equal(dp_result_find(r, "J")->status, DP_STATUS_NOT_READY);
    dp_result_free(r);
    assert_int_equal(dp_store_set_copy(store, "flag", "1", 1), DP_OK);
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    char err[512];
    r = dp_graph_run(g, &opts, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(dp_result_find(r, "J")->status, DP_STATUS_SUCCESS);
    assert_int_equal(pins(pl), 0);
    dp_result_free(r);
    dp_graph_free(g);
    dp_params_free(p);
    dp_plugins_free(pl);
    dp_store_free(store);
}

/* The end hook (ABI 1.1) hears whether the attempt was cut short: not when
 * a probe said "not ready", yes when the job's timeout ended a poll. */
static void test_end_hook_cut_or_done(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_store_t *store = dp_store_new();
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "key", "never");
    dp_graph_t *g;
    dp_result_t *r = ptest_run1(pl, "good.probe", p, NULL, store, NULL, &g);
    assert_int_equal(dp_result_find(r, "J")->status, DP_STATUS_NOT_READY);
    char *v = NULL;
    assert_int_equal(dp_store_get_copy(store, "good.end", (void **)&v, NULL), DP_OK);
    assert_string_equal(v, "done");
    free(v);
    dp_result_free(r);
    dp_graph_free(g);

    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.timeout_ms = 150;
    spec.readiness.period_ms = 10;
    r = ptest_run1(pl, "good.probe", p, &spec, store, NULL, &g);
    assert_int_equal(dp_result_find(r, "J")->status, DP_STATUS_FAILED);
    assert_non_null(strstr(dp_result_find(r, "J")->error, "timed out"));
    assert_int_equal(dp_store_get_copy(store, "good.end", (void **)&v, NULL), DP_OK);
    assert_string_equal(v, "cut");
    free(v);
    dp_result_free(r);
    dp_graph_free(g);

    /* The same in a child process: the runner is told how it ended. */
    dp_store_delete(store, "good.end");
    spec.isolation = DP_ISOLATION_PROCESS;
    r = ptest_run1(pl, "good.probe", p, &spec, store, NULL, &g);
    assert_int_equal(dp_result_find(r, "J")->status, DP_STATUS_FAILED);
    assert_int_equal(dp_store_get_copy(store, "good.end", (void **)&v, NULL), DP_OK);
    assert_string_equal(v, "cut");
    free(v);
    assert_int_equal(pins(pl), 0);
    dp_result_free(r);
    dp_graph_free(g);
    dp_params_free(p);
    dp_plugins_free(pl);
    dp_store_free(store);
}

static int pins_cb(const dp_plugin_info_t *info, void *arg)
{
    *(unsigned *)arg += info->jobs_in_flight;
    return 0;
}

static unsigned pins(dp_plugins_t *pl)
{
    unsigned n = 0;
    dp_plugins_foreach(pl, pins_cb, &n);
    return n;
}

static void test_many_jobs_in_parallel(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_graph_t *g = dp_graph_new();
    char err[1024], name[32];
    for (int i = 0; i < 40; i++) {
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        snprintf(name, sizeof(name), "J%02d", i);
        spec.name = name;
        dp_params_t *p = dp_params_new();
        if (i % 2)
            dp_params_set_string(p, "message", name);
        else
            dp_params_set_string(p, "duration", "2ms");
        assert_int_equal(dp_plugins_add_job(pl, g, &spec, i % 2 ? "good.echo" : "core.sleep", p, err, sizeof(err)),
                         DP_OK);
        dp_params_free(p);
        if (i % 2 == 0)
            continue;
        char dep[32];
        snprintf(dep, sizeof(dep), "J%02d", i - 1);
        assert_int_equal(dp_graph_add_dep(g, name, dep), DP_OK);
    }
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.max_concurrent_jobs = 8;
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof(err));
    assert_non_null(r);
    assert_true(dp_result_is_ready(r));
    assert_int_equal(pins(pl), 0);
    dp_result_free(r);
    dp_graph_free(g);
    dp_plugins_free(pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_ready_logs_and_stores),     cmocka_unit_test(test_not_ready_and_errors),
        cmocka_unit_test(test_check_only_uses_registry_store), cmocka_unit_test(test_end_hook_cut_or_done),
        cmocka_unit_test(test_many_jobs_in_parallel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
