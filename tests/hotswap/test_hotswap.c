/* test_hotswap.c - the plugin file watcher end to end, through the library:
 * a plugin swapped between runs and in the middle of one, replaced by a
 * rename, rewritten in place, written slowly into a new file; refused new
 * files (not a shared object, ABI, init, a job type gone) keep the old
 * version serving; a trigger reloads an unchanged file; and many swaps under
 * continuous runs fail no job and leak no mapping or descriptor. */
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Runs n independent jobs of type and checks each succeeded on version v. */
static void run_expect(hs_fix_t *f, const char *type, size_t n, const char *v)
{
    dp_graph_t *g = hs_graph(f, n, type, 0);
    dp_result_t *r = hs_run(f, g, 4);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    for (size_t i = 0; i < dp_result_job_count(r); i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        assert_int_equal(j->status, DP_STATUS_SUCCESS);
        assert_string_equal(j->plugin_version, v);
    }
    dp_result_free(r);
    dp_graph_free(g);
}

/* The embedder's loop: poll the reloader's fd, dispatch, until n reports. */
static bool pump(hs_fix_t *f, size_t n, uint64_t timeout_ms)
{
    uint64_t end = hs_mono_ns() + timeout_ms * 1000000u;
    while (hs_nevents(f) < n && hs_mono_ns() < end) {
        struct pollfd p = {.fd = dp_reloader_fd(f->rl), .events = POLLIN};
        if (poll(&p, 1, 100) > 0)
            assert_true(dp_reloader_dispatch(f->rl) >= 0);
    }
    return hs_nevents(f) >= n;
}

static void test_swap_between_runs_own_loop(void **state)
{
    hs_fix_t *f = *state;
    char v[16];
    run_expect(f, "hs.work", 3, "1");
    hs_install_rename(f, "v2");
    assert_true(pump(f, 1, 10000));
    hs_event_t e = hs_event(f, 0);
    assert_int_equal(e.status, DP_OK);
    assert_string_equal(e.new_version, "2");
    assert_true(e.swapped_ns >= e.complete_ns);
    assert_string_equal(hs_current(f, v, sizeof(v)), "2");
    assert_int_equal(hs_nversions(f), 1); /* v1 had no job: unloaded at once */
    run_expect(f, "hs.work", 3, "2");
    assert_true(ptest_log_has(&f->log, "reloaded plugin hs: 1 (generation 1) -> 2 (generation 2); "
                                       "0 job(s) still in flight"));
    /* Nothing more happens while the file stays as it is. */
    assert_false(pump(f, 2, 300));
}

struct bg {
    hs_fix_t *f;
    dp_graph_t *g;
    dp_result_t *r;
};

static void *bg_run(void *arg)
{
    struct bg *b = arg;
    b->r = hs_run(b->f, b->g, 4);
    return NULL;
}

static void test_swap_mid_run(void **state)
{
    hs_fix_t *f = *state;
    assert_int_equal(dp_reloader_start(f->rl), DP_OK);
    /* A (block) -> B (work): B starts only after A ends. */
    dp_graph_t *g = dp_graph_new();
    char err[2048];
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "A";
    assert_int_equal(dp_plugins_add_job(f->pl, g, &spec, "hs.block", NULL, err, sizeof(err)), 0);
    spec.name = "B";
    assert_int_equal(dp_plugins_add_job(f->pl, g, &spec, "hs.work", NULL, err, sizeof(err)), 0);
    assert_int_equal(dp_graph_add_dep(g, "B", "A"), 0);
    struct bg b = {f, g, NULL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bg_run, &b), 0);
    uint64_t t0 = ptest_now_ms();
    void *val;
    size_t len;
    while (dp_store_get_copy(f->store, "hs.blocking", &val, &len) != DP_OK) {
        assert_true(ptest_now_ms() - t0 < 30000);
        usleep(1000);
    }
    free(val);

    hs_install_rename(f, "v2");
    assert_true(hs_wait_events(f, 1, 10000));
    hs_event_t e = hs_event(f, 0);
    assert_int_equal(e.status, DP_OK);
    assert_int_equal(e.in_flight, 1); /* A, on v1 */
    assert_int_equal(hs_nversions(f), 2);
    /* Jobs that start now run v2, while A still runs v1. */
    run_expect(f, "hs.work", 2, "2");

    assert_int_equal(dp_store_set_copy(f->store, "hs.release", "1", 1), DP_OK);
    pthread_join(th, NULL);
    assert_int_equal(dp_result_outcome(b.r), DP_RUN_SUCCESS);
    assert_string_equal(dp_result_find(b.r, "A")->plugin_version, "1");
    assert_string_equal(dp_result_find(b.r, "B")->plugin_version, "2");
    assert_int_equal(hs_nversions(f), 1); /* v1 went with A's end */
    assert_true(ptest_log_has(&f->log, "1 job(s) still in flight finish on the old version"));
    assert_true(ptest_log_has(&f->log, "unloading plugin hs 1 (generation 1): its last job ended"));
    dp_result_free(b.r);
    dp_graph_free(g);
}

static void test_rewrite_in_place_and_slow_new_file(void **state)
{
    hs_fix_t *f = *state;
    char v[16];
    assert_int_equal(dp_reloader_start(f->rl), DP_OK);
    /* In place: truncated, then written in four pieces. */
    hs_overwrite(f, "v2", 4, 5);
    assert_true(hs_wait_events(f, 1, 10000));
    assert_int_equal(hs_event(f, 0).status, DP_OK);
    assert_string_equal(hs_current(f, v, sizeof(v)), "2");
    run_expect(f, "hs.work", 2, "2");

    /* A new file (IN_CREATE) whose writer stalls halfway for longer than
     * the settle interval: the half file is not whole, so it is not tried. */
    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(close(open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0755)), 0);
    usleep(200 * 1000);
    hs_overwrite(f, "v1", 2, 400);
    assert_true(hs_wait_events(f, 2, 10000));
    usleep(300 * 1000);
    assert_int_equal(hs_nevents(f), 2); /* no refusal in between */
    assert_int_equal(hs_event(f, 1).status, DP_OK);
    assert_string_equal(hs_event(f, 1).new_version, "1");
    run_expect(f, "hs.work", 2, "1");
    unsigned long swaps, refused;
    dp_reloader_stats(f->rl, &swaps, &refused);
    assert_int_equal(swaps, 2);
    assert_int_equal(refused, 0);
}

static void expect_refused(hs_fix_t *f, size_t i, const char *needle)
{
    assert_true(hs_wait_events(f, i + 1, 10000));
    hs_event_t e = hs_event(f, i);
    assert_int_equal(e.status, DP_EPLUGIN);
    if (!strstr(e.error, needle))
        fail_msg("error '%s' lacks '%s'", e.error, needle);
    char v[16];
    assert_string_equal(hs_current(f, v, sizeof(v)), "1");
    assert_int_equal(hs_nversions(f), 1);
    run_expect(f, "hs.work", 2, "1");
}

static void test_refused_files_keep_v1(void **state)
{
    hs_fix_t *f = *state;
    assert_int_equal(dp_reloader_start(f->rl), DP_OK);
    /* A graph that uses hs.extra stays alive throughout. */
    dp_graph_t *uses_extra = hs_graph(f, 1, "hs.extra", 0);

    hs_install_garbage(f);
    expect_refused(f, 0, "not a shared object");
    hs_install_rename(f, "badabi");
    expect_refused(f, 1, "built for plugin ABI 9.");
    hs_install_rename(f, "badinit");
    expect_refused(f, 2, "failed to initialise: hs 4 refuses to start");
    hs_install_rename(f, "noextra");
    expect_refused(f, 3, "lacks the job type of 'hs.extra', which jobs use (1 of them)");
    assert_true(ptest_log_has(&f->log, "reload of plugin hs refused, 1 keeps serving"));
    /* The refused files were let go: only v1 is loaded, and it still runs
     * the graph that uses hs.extra. */
    dp_result_t *r = hs_run(f, uses_extra, 1);
    assert_string_equal(dp_result_find(r, "J0")->plugin_version, "1");
    dp_result_free(r);

    /* The next change is tried again. */
    hs_install_rename(f, "v2");
    assert_true(hs_wait_events(f, 5, 10000));
    assert_int_equal(hs_event(f, 4).status, DP_OK);
    run_expect(f, "hs.work", 2, "2");

    /* Once no graph uses hs.extra, a version without it is fine. */
    dp_graph_free(uses_extra);
    hs_install_rename(f, "noextra");
    assert_true(hs_wait_events(f, 6, 10000));
    assert_int_equal(hs_event(f, 5).status, DP_OK);
    assert_string_equal(hs_event(f, 5).new_version, "3");
    unsigned long swaps, refused;
    dp_reloader_stats(f->rl, &swaps, &refused);
    assert_int_equal(swaps, 2);
    assert_int_equal(refused, 4);
}

static void test_trigger_reloads_unchanged_file(void **state)
{
    hs_fix_t *f = *state;
    assert_int_equal(dp_reloader_start(f->rl), DP_OK);
    dp_reloader_trigger(f->rl);
    assert_true(hs_wait_events(f, 1, 10000));
    assert_int_equal(hs_event(f, 0).status, DP_OK);
    assert_string_equal(hs_event(f, 0).new_version, "1");
    assert_true(ptest_log_has(&f->log, "1 (generation 1) -> 1 (generation 2)"));
    run_expect(f, "hs.work", 2, "1");
}

/* ---- many swaps under continuous runs ------------------------------------ */

static char *slurp_maps(void)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* On a failure: the mappings that were not there before (by address). */
static void print_new_maps(const char *before)
{
    char *after = slurp_maps();
    for (char *line = strtok(after, "\n"); line; line = strtok(NULL, "\n")) {
        char addr[64];
        snprintf(addr, sizeof(addr), "%.*s", (int)strcspn(line, " "), line);
        if (!strstr(before, addr))
            printf("new mapping: %s\n", line);
    }
    free(after);
}

static void test_many_swaps_no_failed_job_no_leak(void **state)
{
    hs_fix_t *f = *state;
    const unsigned swaps = 40;
    assert_int_equal(dp_reloader_start(f->rl), DP_OK);
    hs_runner_t rn = {.f = f, .g = hs_graph(f, 8, "hs.work", 1)};
    /* Warm up: one run, one swap there and back, so that caches (thread
     * stacks, the allocator's arenas, the loader's own) are in place. */
    dp_result_free(hs_run(f, rn.g, 4));
    hs_install_rename(f, "v2");
    assert_true(hs_wait_events(f, 1, 10000));
    hs_install_rename(f, "v1");
    assert_true(hs_wait_events(f, 2, 10000));
    dp_result_free(hs_run(f, rn.g, 4));
    /* and a thread like the runner, so that glibc's cache of thread stacks
     * holds one for it (a joined thread's stack stays mapped for reuse). */
    pthread_t th;
    pthread_mutex_lock(&f->mu);
    rn.stop = 1;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(pthread_create(&th, NULL, hs_runner_main, &rn), 0);
    pthread_join(th, NULL);
    rn.stop = 0;
    unsigned maps0 = hs_count_maps(NULL), fmaps0 = hs_count_maps("file");
    unsigned pmaps0 = hs_count_maps("plugin"), fds0 = hs_count_fds();
    char *before = slurp_maps();

    assert_int_equal(pthread_create(&th, NULL, hs_runner_main, &rn), 0);
    for (unsigned i = 0; i < swaps; i++) {
        const char *to = i % 2 == 0 ? "v2" : "v1";
        if (i % 4 == 3)
            hs_overwrite(f, to, 3, 1);
        else
            hs_install_rename(f, to);
        assert_true(hs_wait_events(f, 3 + i, 10000));
        hs_event_t e = hs_event(f, 2 + i);
        assert_int_equal(e.status, DP_OK);
        assert_string_equal(e.new_version, to + 1);
        usleep(5000); /* let some jobs run on each version */
    }
    pthread_mutex_lock(&f->mu);
    rn.stop = 1;
    pthread_mutex_unlock(&f->mu);
    pthread_join(th, NULL);
    dp_result_free(hs_run(f, rn.g, 4)); /* the same shape of run as the baseline */

    assert_int_equal(hs_nversions(f), 1);
    unsigned maps1 = hs_count_maps(NULL), fmaps1 = hs_count_maps("file");
    unsigned pmaps1 = hs_count_maps("plugin"), fds1 = hs_count_fds();
    printf("stress: %u swaps, %lu runs, %lu jobs (%lu on v1, %lu on v2), %lu failed; "
           "mappings %u -> %u (file-backed %u -> %u, plugin copies %u -> %u), fds %u -> %u\n",
           swaps, rn.runs, rn.jobs, rn.on[1], rn.on[2], rn.failed, maps0, maps1, fmaps0, fmaps1, pmaps0, pmaps1, fds0,
           fds1);
    if (fmaps1 != fmaps0 || maps1 != maps0)
        print_new_maps(before);
    free(before);
    assert_int_equal(rn.failed, 0);
    assert_true(rn.on[1] > 0 && rn.on[2] > 0);
    assert_int_equal(fds1, fds0);
    /* Anonymous mappings come and go with the allocator's per-thread arenas
     * and cached thread stacks; what a leaked version would leave is a
     * file-backed mapping (its private copy, or the file). */
    assert_true(pmaps0 > 0);
    assert_int_equal(pmaps1, pmaps0);
    assert_int_equal(fmaps1, fmaps0);
    dp_graph_free(rn.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_swap_between_runs_own_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_mid_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_in_place_and_slow_new_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_files_keep_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trigger_reloads_unchanged_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_swaps_no_failed_job_no_leak, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
