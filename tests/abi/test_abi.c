/* test_abi.c - the ABI freeze: the current header keeps the v1.0 layout
 * and what 1.1 and 1.2 appended (static asserts, at compile time); plugins
 * built against the frozen v1.0 and v1.1 headers load and run in the
 * current host; a 1.2 plugin uses retry_after through both host tables (in
 * process and the isolated runner's) and does without it on a host whose
 * table ends before it. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"
#include "layout_v1_0.h"
#include "layout_v1_2.h"

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

/* A graph of `n` jobs of plugin `name`'s type `type` (the first named
 * "frozen", the rest after it), run; the first job's record into *out
 * (status, attempts, error) and its waits' retry_after_ms (-1: none). */
typedef struct ran {
    dp_status_t status;
    unsigned attempts;
    char error[256];
    int64_t retry_after_ms;
    int64_t duration_ms;
    char store_end[16];
} ran_t;

static void run_plugin(const char *name, const char *path, const char *type, dp_isolation_t iso, unsigned n, ran_t *out)
{
    dp_plugins_t *pl = dp_plugins_new();
    char err[2048];
    if (dp_plugins_load(pl, name, path, err, sizeof(err)) != DP_OK)
        fail_msg("%s", err);
    dp_graph_t *g = dp_graph_new();
    for (unsigned i = 0; i < n; i++) {
        char jname[16];
        snprintf(jname, sizeof jname, i ? "after%u" : "frozen", i);
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = jname;
        spec.timeout_ms = 60000;
        spec.retries = 2;
        spec.backoff.initial_ms = 30000; /* a suggestion, where made, is far shorter */
        spec.isolation = iso;
        if (dp_plugins_add_job(pl, g, &spec, type, NULL, err, sizeof(err)) != DP_OK)
            fail_msg("%s", err);
        if (i)
            assert_int_equal(dp_graph_add_dep(g, jname, "frozen"), DP_OK);
    }
    dp_store_t *store = dp_store_new();
    dp_plugins_set_store(pl, store);
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.store = store;
    opts.timeout_ms = 20000;
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof(err));
    assert_non_null(r);
    const dp_job_result_t *j = dp_result_find(r, "frozen");
    out->status = j->status;
    out->attempts = j->attempts;
    out->duration_ms = j->duration_ms;
    snprintf(out->error, sizeof out->error, "%s", j->error ? j->error : "");
    const dp_job_waits_t *w = dp_result_job_waits(r, (size_t)dp_graph_job_id(g, "frozen"));
    out->retry_after_ms = w ? w->retry_after_ms : -1;
    void *v = NULL;
    size_t len = 0;
    out->store_end[0] = '\0';
    if (dp_store_get_copy(store, "abi11.end", &v, &len) == DP_OK) {
        snprintf(out->store_end, sizeof out->store_end, "%s", (char *)v);
        free(v);
    }
    for (unsigned i = 1; i < n; i++) {
        char jname[16];
        snprintf(jname, sizeof jname, "after%u", i);
        assert_int_equal(dp_result_find(r, jname)->status, out->status);
    }
    dp_result_free(r);
    dp_graph_free(g);
    dp_store_free(store);
    dp_plugins_free(pl);
}

static void test_v1_1_plugin_runs(void **state)
{
    (void)state;
    ran_t r;
    run_plugin("abi_v1_1", ABI_PLUGIN_1_1, "abi_v1_1.end", DP_ISOLATION_NONE, 10, &r);
    if (r.status != DP_STATUS_SUCCESS)
        fail_msg("status %d: %s", (int)r.status, r.error);
    assert_string_equal(r.store_end, "done"); /* its 1.1 end hook ran */
}

static void test_v1_2_plugin_retry_after(void **state)
{
    (void)state;
    /* In process, then through the isolated runner's table. */
    for (int iso = 0; iso < 2; iso++) {
        ran_t r;
        run_plugin("abi_v1_2", ABI_PLUGIN_1_2, "abi_v1_2.suggest", iso ? DP_ISOLATION_PROCESS : DP_ISOLATION_NONE, 10,
                   &r);
        if (r.status != DP_STATUS_SUCCESS)
            fail_msg("isolation %d: status %d: %s", iso, (int)r.status, r.error);
        assert_int_equal(r.attempts, 2);
        assert_int_equal(r.retry_after_ms, 50); /* not the 30 s backoff */
        assert_true(r.duration_ms < 15000);
    }
}

/* The 1.2 plugin given a host table as a 1.1 host has it (it ends before
 * retry_after) must not call it; given the whole table it does. Called
 * directly, through a minimal table, on a private dlopen of the plugin. */
static int trap_calls;
static char last_error[256];
static void trap_retry_after(dp_plugin_ctx *ctx, uint64_t ms)
{
    (void)ctx;
    (void)ms;
    trap_calls++;
}
static __attribute__((format(printf, 3, 4))) void fake_set_error(dp_plugin_ctx *ctx, unsigned flags, const char *fmt,
                                                                 ...)
{
    (void)ctx;
    (void)flags;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}
static unsigned fake_attempt(dp_plugin_ctx *ctx)
{
    (void)ctx;
    return 1;
}

static void test_v1_2_plugin_on_a_1_1_host(void **state)
{
    (void)state;
    void *h = dlopen(ABI_PLUGIN_1_2, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    dp_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h, DP_PLUGIN_ENTRY_NAME);
    assert_non_null(entry);
    for (int whole = 0; whole < 2; whole++) {
        dp_host_api fake;
        memset(&fake, 0, sizeof fake);
        fake.struct_size = whole ? (uint32_t)sizeof fake : (uint32_t)offsetof(dp_host_api, retry_after);
        fake.abi_major = 1;
        fake.abi_minor = whole ? 2 : 1;
        fake.host_version = "fake";
        fake.set_error = fake_set_error;
        fake.attempt = fake_attempt;
        fake.retry_after = trap_retry_after; /* beyond a 1.1 table's size: must not be called */
        const dp_plugin_desc *d = entry(&fake);
        assert_non_null(d);
        const dp_job_type *t = d->job_types[0];
        int64_t after = 50;
        int dummy;
        trap_calls = 0;
        last_error[0] = '\0';
        assert_int_equal(t->run((dp_plugin_ctx *)(void *)&dummy, &after), DP_PLUGIN_ERROR);
        assert_int_equal(trap_calls, whole ? 1 : 0);
        assert_non_null(strstr(last_error, whole ? "try again in 50 ms" : "host without retry_after"));
    }
    dlclose(h);
}

int main(void)
{
    setenv("DAGGERPOOL_JOB_RUNNER", ABI_RUNNER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_plugin_runs),        cmocka_unit_test(test_frozen_plugin_params),
        cmocka_unit_test(test_v1_1_plugin_runs),          cmocka_unit_test(test_v1_2_plugin_retry_after),
        cmocka_unit_test(test_v1_2_plugin_on_a_1_1_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
