/* test_pin.c - the pins plugin jobs hold on a version take no registry
 * lock (issue 18): a run of plugin jobs completes while another thread
 * holds the registry's lock (dp_plugins_foreach runs its callback under
 * it), and hundreds of reloads straight through dp_plugins_reload, as fast
 * as they go, under continuous runs of zero-length jobs (a pin racing each
 * swap) fail no job, leave one version with no job in flight, and leak no
 * plugin copy or descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hscommon.h"

static int setup(void **state)
{
    *state = hs_fix_new(0);
    return 0;
}

static int teardown(void **state)
{
    hs_fix_free(*state);
    return 0;
}

/* ---- a run while the registry's lock is held ---------------------------- */

struct locked_run {
    hs_fix_t *f;
    dp_graph_t *g;
    pthread_t th;
    int done;        /* under f->mu */
    bool in_time;    /* the run ended while the callback held the lock */
    unsigned called; /* callbacks (one per version) */
    int outcome;
};

static void *locked_run_main(void *arg)
{
    struct locked_run *lr = arg;
    dp_result_t *r = hs_run(lr->f, lr->g, 2);
    lr->outcome = dp_result_outcome(r);
    dp_result_free(r);
    pthread_mutex_lock(&lr->f->mu);
    lr->done = 1;
    pthread_cond_broadcast(&lr->f->cv);
    pthread_mutex_unlock(&lr->f->mu);
    return NULL;
}

/* Runs under the registry's lock: starts the run and waits for it (20 s at
 * most: with pins under that lock, the run's first attempt waits for this
 * callback to return, and the wait times out). */
static int hold_lock_cb(const dp_plugin_info_t *info, void *arg)
{
    (void)info;
    struct locked_run *lr = arg;
    if (lr->called++)
        return 0;
    if (pthread_create(&lr->th, NULL, locked_run_main, lr) != 0)
        abort();
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&lr->f->mu);
    while (!lr->done)
        if (pthread_cond_timedwait(&lr->f->cv, &lr->f->mu, &dl) != 0)
            break;
    lr->in_time = lr->done;
    pthread_mutex_unlock(&lr->f->mu);
    return 0;
}

static void test_run_while_registry_locked(void **state)
{
    hs_fix_t *f = *state;
    struct locked_run lr = {.f = f, .g = hs_graph(f, 50, "hs.work", 0)};
    assert_int_equal(dp_plugins_foreach(f->pl, hold_lock_cb, &lr), 0);
    pthread_join(lr.th, NULL);
    assert_int_equal(lr.called, 1);
    assert_true(lr.in_time);
    assert_int_equal(lr.outcome, DP_RUN_SUCCESS);
    dp_graph_free(lr.g);
}

/* ---- reloads as fast as they go under continuous runs --------------------- */

struct inflight {
    unsigned versions, current, in_flight;
};

static int inflight_cb(const dp_plugin_info_t *info, void *arg)
{
    struct inflight *a = arg;
    a->versions++;
    a->current += info->current;
    a->in_flight += info->jobs_in_flight;
    return 0;
}

static void test_reloads_race_pins(void **state)
{
    hs_fix_t *f = *state;
    const unsigned swaps = 300;
    hs_runner_t rn = {.f = f, .g = hs_graph(f, 64, "hs.work", 0)};
    /* Warm up (thread stacks, allocator arenas, the loader's caches). */
    dp_result_free(hs_run(f, rn.g, 4));
    char err[2048];
    hs_install_rename(f, "v2");
    assert_int_equal(dp_plugins_reload(f->pl, "hs", err, sizeof err), DP_OK);
    hs_install_rename(f, "v1");
    assert_int_equal(dp_plugins_reload(f->pl, "hs", err, sizeof err), DP_OK);
    unsigned pmaps0 = hs_count_maps("plugin"), fds0 = hs_count_fds();

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hs_runner_main, &rn), 0);
    for (unsigned i = 0; i < swaps; i++) {
        hs_install_rename(f, i % 2 == 0 ? "v2" : "v1");
        if (dp_plugins_reload(f->pl, "hs", err, sizeof err) != DP_OK)
            fail_msg("reload %u: %s", i, err);
    }
    pthread_mutex_lock(&f->mu);
    rn.stop = 1;
    pthread_mutex_unlock(&f->mu);
    pthread_join(th, NULL);

    struct inflight a = {0};
    dp_plugins_foreach(f->pl, inflight_cb, &a);
    unsigned pmaps1 = hs_count_maps("plugin"), fds1 = hs_count_fds();
    printf("%u reloads, %lu runs, %lu jobs (%lu on v1, %lu on v2), %lu failed; versions %u, in flight %u; "
           "plugin copies mapped %u -> %u, fds %u -> %u\n",
           swaps, rn.runs, rn.jobs, rn.on[1], rn.on[2], rn.failed, a.versions, a.in_flight, pmaps0, pmaps1, fds0, fds1);
    assert_int_equal(rn.failed, 0);
    assert_true(rn.runs > 0);
    assert_int_equal(rn.on[1] + rn.on[2], rn.jobs);
    /* One version left, current, with no job in flight: every old one was
     * unloaded by its last job or by the swap. */
    assert_int_equal(a.versions, 1);
    assert_int_equal(a.current, 1);
    assert_int_equal(a.in_flight, 0);
    assert_int_equal(pmaps1, pmaps0);
    assert_int_equal(fds1, fds0);
    /* A run after all that runs on the current version. */
    dp_result_t *r = hs_run(f, rn.g, 4);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    dp_result_free(r);
    dp_graph_free(rn.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_run_while_registry_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reloads_race_pins, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
