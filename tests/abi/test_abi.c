/* test_abi.c - the ABI freeze: the current header keeps the v1.0 layout
 * (static asserts, at compile time), and a plugin built against the frozen
 * v1.0 header loads and runs in the current host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"
#include "layout_v1_0.h"

static dp_status_t run_frozen(const char *type, dp_params_t *p, char *error, size_t len)
{
    dp_plugins_t *pl = dp_plugins_new();
    char err[2048];
    if (dp_plugins_load(pl, "abi_v1_0", ABI_PLUGIN, err, sizeof(err)) != DP_OK)
        fail_msg("%s", err);
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "frozen";
    spec.timeout_ms = 60000;
    if (dp_plugins_add_job(pl, g, &spec, type, p, err, sizeof(err)) != DP_OK)
        fail_msg("%s", err);
    dp_store_t *store = dp_store_new();
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.store = store;
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof(err));
    assert_non_null(r);
    const dp_job_result_t *j = dp_result_find(r, "frozen");
    dp_status_t s = j->status;
    snprintf(error, len, "%s", j->error ? j->error : "");
    dp_result_free(r);
    dp_graph_free(g);
    dp_store_free(store);
    dp_plugins_free(pl);
    return s;
}

static void test_frozen_plugin_runs(void **state)
{
    (void)state;
    char error[1024];
    dp_status_t s = run_frozen("abi_v1_0.check", NULL, error, sizeof(error));
    if (s != DP_STATUS_SUCCESS)
        fail_msg("status %d: %s", (int)s, error);
}

static void test_frozen_plugin_params(void **state)
{
    (void)state;
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "s", "text");
    dp_params_set_int(p, "i", -7);
    dp_params_set_float(p, "f", 2.5);
    dp_params_set_bool(p, "b", true);
    dp_params_set_string(p, "d", "1m30s");
    const char *l[] = {"x", "y"};
    dp_params_set_list(p, "l", l, 2);
    dp_params_set_string(dp_params_add_group(p, "g"), "k", "v");
    char error[1024];
    dp_status_t s = run_frozen("abi_v1_0.params", p, error, sizeof(error));
    if (s != DP_STATUS_SUCCESS)
        fail_msg("status %d: %s", (int)s, error);
    dp_params_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_plugin_runs),
        cmocka_unit_test(test_frozen_plugin_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
