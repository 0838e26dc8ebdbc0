/* test_stateless.c - a DP_JOB_TYPE_STATELESS type (tests/plugins/tp/lean.c):
 * its create runs when the job is added and again only on another version
 * of the plugin, not per attempt; every attempt still ends with destroy;
 * a hot swap between two attempts is picked up by the next one, which
 * checks the params on the new version first. */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
    snprintf(f->path, sizeof(f->path), "%s/lean.so", f->dir);
    snprintf(f->trace, sizeof(f->trace), "%s/trace.txt", f->dir);
    setenv("LEAN_TRACE", f->trace, 1);
    install(f, TP_DIR "/v1/lean.so");
    f->pl = dp_plugins_new();
    f->store = dp_store_new();
    dp_plugins_set_store(f->pl, f->store);
    char err[2048];
    if (dp_plugins_load(f->pl, "lean", f->path, err, sizeof(err)) != DP_OK)
        fail_msg("%s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dp_plugins_free(f->pl);
    dp_store_free(f->store);
    unsetenv("LEAN_TRACE");
    ptest_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Lines of the trace that start with `what`. */
static unsigned count(const char *path, const char *what)
{
    FILE *fp = fopen(path, "r");
    unsigned n = 0;
    char line[256];
    while (fp && fgets(line, sizeof line, fp))
        if (strncmp(line, what, strlen(what)) == 0)
            n++;
    if (fp)
        fclose(fp);
    return n;
}

static dp_graph_t *one_job(struct fixture *f, unsigned retries, uint64_t backoff_ms)
{
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "J";
    spec.retries = retries;
    spec.backoff.initial_ms = backoff_ms;
    spec.backoff.factor = 1.0;
    char err[2048] = "";
    if (dp_plugins_add_job(f->pl, g, &spec, "lean.tick", NULL, err, sizeof(err)) != DP_OK)
        fail_msg("dp_plugins_add_job: %s", err);
    return g;
}

static dp_result_t *run(dp_graph_t *g, dp_store_t *store)
{
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.store = store;
    char err[1024];
    dp_result_t *r = dp_graph_run(g, &o, err, sizeof(err));
    if (!r)
        fail_msg("dp_graph_run: %s", err);
    return r;
}

/* Three attempts on one version: one create (when the job was added, then
 * destroyed), three runs, each ended by destroy. */
static void test_create_once_per_version(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dp_store_set_copy(f->store, "lean.fail", "*", 1), DP_OK);
    dp_graph_t *g = one_job(f, 2, 0);
    assert_int_equal(count(f->trace, "create 1.0.0"), 1);
    dp_result_t *r = run(g, f->store);
    const dp_job_result_t *j = dp_result_find(r, "J");
    assert_int_equal(j->status, DP_STATUS_FAILED);
    assert_int_equal(j->attempts, 3);
    assert_int_equal(count(f->trace, "run 1.0.0"), 3);
    assert_int_equal(count(f->trace, "destroy 1.0.0"), 1 + 3);
    assert_int_equal(count(f->trace, "create"), 1);
    /* The plugin saw its job's snapshot in the store while it ran. */
    void *v = NULL;
    assert_int_equal(dp_store_get_copy(f->store, "lean.snap", &v, NULL), DP_OK);
    assert_non_null(strstr(v, "attempt=3 phase=run since_ms="));
    free(v);
    assert_int_equal(dp_store_get_copy(f->store, "dp.running/J", &v, NULL), DP_ENOTFOUND);
    dp_result_free(r);

    /* A second run of the same graph: still no create. */
    assert_int_equal(dp_store_delete(f->store, "lean.fail"), DP_OK);
    r = run(g, f->store);
    assert_int_equal(dp_result_find(r, "J")->status, DP_STATUS_SUCCESS);
    assert_int_equal(count(f->trace, "create"), 1);
    assert_int_equal(count(f->trace, "destroy"), 1 + 4);
    dp_result_free(r);
    dp_graph_free(g);
}

struct bg {
    dp_graph_t *g;
    dp_store_t *store;
    dp_result_t *r;
};

static void *run_bg(void *arg)
{
    struct bg *b = arg;
    b->r = run(b->g, b->store);
    return NULL;
}

/* The job fails on 1.0.0 (lean.fail = "1.0.0"; retrying every 20 ms) until
 * 2.0.0 is swapped in:
 * the next attempt runs on 2.0.0, after one create there (its params
 * checked on the new version), and succeeds. */
static void test_swap_between_attempts(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dp_store_set_copy(f->store, "lean.fail", "1.0.0", 5), DP_OK);
    struct bg b = {.g = one_job(f, 100000, 20), .store = f->store};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_bg, &b), 0);
    /* Until an attempt failed on 1.0.0 (20 s at most). */
    for (int i = 0; i < 4000 && count(f->trace, "run 1.0.0") == 0; i++)
        usleep(5000);
    assert_true(count(f->trace, "run 1.0.0") >= 1);
    install(f, TP_DIR "/v2/lean.so");
    char err[2048];
    if (dp_plugins_reload(f->pl, "lean", err, sizeof(err)) != DP_OK)
        fail_msg("%s", err);
    pthread_join(t, NULL);

    const dp_job_result_t *j = dp_result_find(b.r, "J");
    assert_int_equal(j->status, DP_STATUS_SUCCESS);
    assert_string_equal(j->plugin_version, "2.0.0");
    unsigned runs1 = count(f->trace, "run 1.0.0"), runs2 = count(f->trace, "run 2.0.0");
    assert_true(runs1 >= 1);
    assert_int_equal(runs2, 1);
    assert_int_equal(j->attempts, runs1 + 1);
    /* One create per version: 1.0.0's when the job was added, 2.0.0's
     * before the attempt on it; every attempt destroyed on its version. */
    assert_int_equal(count(f->trace, "create 1.0.0"), 1);
    assert_int_equal(count(f->trace, "create 2.0.0"), 1);
    assert_int_equal(count(f->trace, "destroy 1.0.0"), 1 + runs1);
    assert_int_equal(count(f->trace, "destroy 2.0.0"), 1);
    void *v = NULL;
    assert_int_equal(dp_store_get_copy(f->store, "lean.ran", &v, NULL), DP_OK);
    char want[64];
    snprintf(want, sizeof want, "2.0.0 %u", runs1 + 1);
    assert_string_equal(v, want);
    free(v);
    dp_result_free(b.r);
    dp_graph_free(b.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_once_per_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_between_attempts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
