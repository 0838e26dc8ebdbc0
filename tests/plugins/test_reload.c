/* test_reload.c - hot swap primitives: a reload swaps in new code, jobs in
 * flight finish on the old version, which is unloaded (fini) only after its
 * last job; a failed reload changes nothing. */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ptest.h"

struct fixture {
    char *dir;
    char path[PATH_MAX];
    char trace[PATH_MAX];
    dp_plugins_t *pl;
    dp_store_t *store;
};

/* Replaces the plugin file the way an installer should: a new file renamed
 * over the old one. */
static void install(struct fixture *f, const char *src)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.new", f->path);
    ptest_copy(src, tmp);
    assert_int_equal(rename(tmp, f->path), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->dir = ptest_tmpdir();
    snprintf(f->path, sizeof(f->path), "%s/good.so", f->dir);
    snprintf(f->trace, sizeof(f->trace), "%s/trace.txt", f->dir);
    setenv("GOOD_TRACE", f->trace, 1);
    install(f, TP_DIR "/v1/good.so");
    f->pl = dp_plugins_new();
    f->store = dp_store_new();
    char err[2048];
    if (dp_plugins_load(f->pl, "good", f->path, err, sizeof(err)) != DP_OK)
        fail_msg("%s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dp_plugins_free(f->pl);
    dp_store_free(f->store);
    unsetenv("GOOD_TRACE");
    ptest_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return strdup("");
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return strdup(buf);
}

struct vers {
    char text[512];
};

static int vers_cb(const dp_plugin_info_t *info, void *arg)
{
    struct vers *v = arg;
    size_t off = strlen(v->text);
    snprintf(v->text + off, sizeof(v->text) - off, "%s gen%u %s jobs=%u; ", info->version, info->generation,
             info->current ? "current" : "draining", info->jobs_in_flight);
    return 0;
}

static const char *versions(dp_plugins_t *pl)
{
    static struct vers v;
    v.text[0] = '\0';
    dp_plugins_foreach(pl, vers_cb, &v);
    return v.text;
}

static const char *run_echo(struct fixture *f, const char *name)
{
    dp_graph_t *g;
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = name;
    dp_result_t *r = ptest_run1(f->pl, "good.echo", NULL, &spec, f->store, NULL, &g);
    const dp_job_result_t *j = dp_result_find(r, name);
    assert_int_equal(j->status, DP_STATUS_SUCCESS);
    /* Interned: valid after the result and graph are gone. */
    const char *v = j->plugin_version;
    dp_result_free(r);
    dp_graph_free(g);
    return v;
}

static void test_reload_swaps_code(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(run_echo(f, "A"), "1.0.0");
    install(f, TP_DIR "/v2/good.so");
    char err[2048] = "";
    if (dp_plugins_reload(f->pl, "good", err, sizeof(err)) != DP_OK)
        fail_msg("%s", err);
    assert_string_equal(versions(f->pl), "2.0.0 gen2 current jobs=0; ");
    assert_string_equal(run_echo(f, "B"), "2.0.0");
    char *t = slurp(f->trace);
    assert_string_equal(t, "init 1.0.0\ninit 2.0.0\nfini 1.0.0\n");
    free(t);
}

static void test_failed_reload_keeps_old(void **state)
{
    struct fixture *f = *state;
    FILE *fp = fopen(f->path, "w");
    fputs("half-written garbage", fp);
    fclose(fp);
    char err[2048] = "";
    assert_int_equal(dp_plugins_reload(f->pl, "good", err, sizeof(err)), DP_EPLUGIN);
    assert_non_null(strstr(err, "not a shared object"));
    assert_string_equal(versions(f->pl), "1.0.0 gen1 current jobs=0; ");
    assert_string_equal(run_echo(f, "A"), "1.0.0");

    install(f, TP_DIR "/bad/bad_init.so");
    assert_int_equal(dp_plugins_reload(f->pl, "good", err, sizeof(err)), DP_EPLUGIN);
    assert_non_null(strstr(err, "calls itself 'bad_init' but was loaded as 'good'"));
    assert_string_equal(versions(f->pl), "1.0.0 gen1 current jobs=0; ");

    assert_int_equal(dp_plugins_reload(f->pl, "other", err, sizeof(err)), DP_ENOTFOUND);
    assert_non_null(strstr(err, "plugin 'other' is not loaded"));
}

static void test_reload_keeps_used_types(void **state)
{
    struct fixture *f = *state;
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "B";
    char err[2048] = "";
    assert_int_equal(dp_plugins_add_job(f->pl, g, &spec, "good.block", NULL, err, sizeof(err)), DP_OK);
    install(f, TP_DIR "/v3/good.so");
    assert_int_equal(dp_plugins_reload(f->pl, "good", err, sizeof(err)), DP_EPLUGIN);
    assert_non_null(strstr(err, "lacks the job type of 'good.block', which jobs use"));
    assert_string_equal(versions(f->pl), "1.0.0 gen1 current jobs=0; ");
    char *t = slurp(f->trace);
    /* 3.0.0 was initialised for the check, then let go. */
    assert_string_equal(t, "init 1.0.0\ninit 3.0.0\nfini 3.0.0\n");
    free(t);
    dp_graph_free(g);
}

struct bg_run {
    dp_graph_t *g;
    dp_store_t *store;
    dp_result_t *r;
};

static void *bg(void *arg)
{
    struct bg_run *b = arg;
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.store = b->store;
    char err[512];
    b->r = dp_graph_run(b->g, &opts, err, sizeof(err));
    return NULL;
}

static void test_job_in_flight_finishes_on_old_version(void **state)
{
    struct fixture *f = *state;
    struct bg_run b = {dp_graph_new(), f->store, NULL};
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "B";
    spec.timeout_ms = 60000;
    char err[2048] = "";
    assert_int_equal(dp_plugins_add_job(f->pl, b.g, &spec, "good.block", NULL, err, sizeof(err)), DP_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bg, &b), 0);
    /* Wait until B runs (on 1.0.0). */
    uint64_t t0 = ptest_now_ms();
    void *v;
    size_t len;
    while (dp_store_get_copy(f->store, "good.blocking", &v, &len) != DP_OK) {
        assert_true(ptest_now_ms() - t0 < 30000);
        usleep(2000);
    }
    free(v);

    install(f, TP_DIR "/v2/good.so");
    if (dp_plugins_reload(f->pl, "good", err, sizeof(err)) != DP_OK)
        fail_msg("%s", err);
    assert_string_equal(versions(f->pl), "2.0.0 gen2 current jobs=0; 1.0.0 gen1 draining jobs=1; ");
    /* New jobs get the new code while B still runs the old. */
    assert_string_equal(run_echo(f, "E"), "2.0.0");
    char *t = slurp(f->trace);
    assert_null(strstr(t, "fini 1.0.0"));
    free(t);

    assert_int_equal(dp_store_set_copy(f->store, "good.release", "1", 1), DP_OK);
    pthread_join(th, NULL);
    assert_non_null(b.r);
    const dp_job_result_t *j = dp_result_find(b.r, "B");
    assert_int_equal(j->status, DP_STATUS_SUCCESS);
    assert_string_equal(j->plugin_version, "1.0.0");
    assert_string_equal(versions(f->pl), "2.0.0 gen2 current jobs=0; ");
    t = slurp(f->trace);
    assert_string_equal(t, "init 1.0.0\ninit 2.0.0\nfini 1.0.0\n");
    free(t);
    dp_result_free(b.r);
    dp_graph_free(b.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reload_swaps_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_reload_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_keeps_used_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_in_flight_finishes_on_old_version, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
