/* test_ticks.c - the per-job clock (host/src/ticks.c): ticks turned into
 * time agree with CLOCK_MONOTONIC, and job start and duration in results
 * agree with what the jobs did, with TSC ticks and with plain nanoseconds;
 * the clock is chosen per run (dp_run_opts_t.clock), reported by the result
 * (dp_result_clock), and DAGGERPOOL_CLOCK is the default (checked in a
 * child process of this program, since the library reads it at load). */
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "ticks.h"

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void test_ticks_never_go_back(void **state)
{
    (void)state;
    for (int tsc = 0; tsc <= (int)dp__tsc_invariant; tsc++) {
        uint64_t last = dp__ticks(tsc);
        for (int i = 0; i < 100000; i++) {
            uint64_t t = dp__ticks(tsc);
            assert_true(t >= last);
            last = t;
        }
    }
}

/* A span measured in ticks, converted, matches the same span measured with
 * CLOCK_MONOTONIC. Generous bounds: the machine is shared. */
static void check_span(bool tsc)
{
    dp_tick_anchor_t a = dp__tick_anchor(tsc);
    sleep_ms(20);
    dp_tick_anchor_t b = dp__tick_anchor(tsc);
    assert_int_equal(a.tsc, tsc);
    uint64_t by_ticks = dp__ticks_between(a.tick, b.tick, dp__ns_per_tick(b));
    uint64_t by_clock = b.ns - a.ns;
    assert_true(by_clock >= 20000000u);
    uint64_t diff = by_ticks > by_clock ? by_ticks - by_clock : by_clock - by_ticks;
    if (diff > by_clock / 100 + 100000u)
        fail_msg("20 ms sleep: %llu ns by ticks, %llu ns by the clock", (unsigned long long)by_ticks,
                 (unsigned long long)by_clock);
}

static void test_span_matches_monotonic_clock(void **state)
{
    (void)state;
    if (dp__tsc_invariant)
        check_span(true);
    check_span(false); /* what DP_CLOCK_MONOTONIC selects */
}

static void test_between_clamps(void **state)
{
    (void)state;
    assert_int_equal(dp__ticks_between(100, 50, 1.0), 0);
    assert_int_equal(dp__ticks_between(100, 100, 2.5), 0);
    assert_int_equal(dp__ticks_between(100, 104, 2.5), 10);
}

static dp_outcome_t sleeper(dp_job_t *job, void *user)
{
    (void)job;
    sleep_ms((unsigned)(uintptr_t)user);
    return DP_READY;
}

/* first (30 ms) -> second (20 ms): durations and starts as slept, on the
 * clock `clock`, which the result reports as `used`. */
static void check_run_times(dp_clock_t clock, dp_clock_t used)
{
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = sleeper;
    sp.name = "first";
    sp.user = (void *)(uintptr_t)30;
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    sp.name = "second";
    sp.user = (void *)(uintptr_t)20;
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "second", "first"), DP_OK);
    char err[256];
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    assert_int_equal(opts.clock, DP_CLOCK_DEFAULT);
    opts.clock = clock;
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof err);
    assert_non_null(r);
    assert_true(dp_result_is_ready(r));
    assert_int_equal(dp_result_clock(r), used);
    const dp_job_result_t *a = dp_result_find(r, "first");
    const dp_job_result_t *b = dp_result_find(r, "second");
    /* Generous bounds: a sanitizer build on a loaded machine may take long
     * to start a worker. */
    assert_true(a->start_ms >= 0 && a->start_ms <= 2000);
    assert_true(a->duration_ms >= 29 && a->duration_ms <= 2000);
    assert_true(b->duration_ms >= 19 && b->duration_ms <= 2000);
    /* second starts when first ended (same millisecond, give or take the
     * rounding of each figure). */
    assert_true(b->start_ms + 1 >= a->start_ms + a->duration_ms);
    assert_true(b->start_ms <= a->start_ms + a->duration_ms + 2000);
    assert_true(dp_result_duration_ms(r) + 1 >= b->start_ms + b->duration_ms);
    dp_result_free(r);
    dp_graph_free(g);
}

static void test_job_times_in_results(void **state)
{
    (void)state;
    dp_clock_t counter = dp__tsc_invariant ? DP_CLOCK_TSC : DP_CLOCK_MONOTONIC;
    check_run_times(DP_CLOCK_AUTO, counter);
    check_run_times(DP_CLOCK_MONOTONIC, DP_CLOCK_MONOTONIC);
    if (dp__tsc_invariant)
        check_run_times(DP_CLOCK_TSC, DP_CLOCK_TSC);
    /* The test runs without DAGGERPOOL_CLOCK (ctest's environment). */
    if (!getenv("DAGGERPOOL_CLOCK"))
        check_run_times(DP_CLOCK_DEFAULT, counter);
}

static int runs;

static dp_outcome_t counted(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    runs++;
    return DP_READY;
}

/* Runs one job with opts.clock = clock; the result or NULL (err). */
static dp_result_t *run_on(dp_graph_t **g, dp_clock_t clock, char *err, size_t errlen)
{
    *g = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = counted;
    sp.name = "only";
    assert_int_equal(dp_graph_add_job(*g, &sp, NULL, 0), DP_OK);
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.clock = clock;
    return dp_graph_run(*g, &opts, err, errlen);
}

/* A clock that cannot be had refuses the run, nothing ran, and the graph
 * runs again with a good one. */
static void test_clock_refused(void **state)
{
    (void)state;
    char err[512];
    dp_graph_t *g;
    runs = 0;
    assert_null(run_on(&g, (dp_clock_t)99, err, sizeof err));
    assert_non_null(strstr(err, "unknown clock 99"));
    dp_graph_free(g);
    bool saved = dp__tsc_invariant;
    dp__tsc_invariant = false; /* a CPU without an invariant counter */
    assert_null(run_on(&g, DP_CLOCK_TSC, err, sizeof err));
    assert_non_null(strstr(err, "this CPU has no invariant time-stamp counter"));
    dp_graph_free(g);
    dp_result_t *r = run_on(&g, DP_CLOCK_AUTO, err, sizeof err);
    dp__tsc_invariant = saved;
    assert_non_null(r);
    assert_int_equal(dp_result_clock(r), DP_CLOCK_MONOTONIC); /* what auto came to */
    assert_int_equal(runs, 1);
    dp_result_free(r);
    dp_graph_free(g);
    assert_string_equal(dp_clock_name(DP_CLOCK_DEFAULT), "default");
    assert_string_equal(dp_clock_name(DP_CLOCK_AUTO), "auto");
    assert_string_equal(dp_clock_name(DP_CLOCK_MONOTONIC), "monotonic");
    assert_string_equal(dp_clock_name(DP_CLOCK_TSC), "tsc");
}

/* The child: runs one job with opts.clock from argv and prints what the
 * result says, or the error. */
static int env_child(const char *clock)
{
    char err[512];
    dp_graph_t *g;
    dp_result_t *r = run_on(&g, (dp_clock_t)atoi(clock), err, sizeof err);
    if (r)
        printf("clock=%s\n", dp_clock_name(dp_result_clock(r)));
    else
        printf("refused: %s\n", err);
    dp_result_free(r);
    dp_graph_free(g);
    return 0;
}

/* This program as a child with DAGGERPOOL_CLOCK=env (NULL: unset) and
 * opts.clock = clock; its output in out. */
static void spawn_child(const char *env, dp_clock_t clock, char *out, size_t len)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    char cbuf[16], ebuf[256];
    snprintf(cbuf, sizeof cbuf, "%d", (int)clock);
    char *argv[] = {exe, (char *)"--clock-child", cbuf, NULL};
    extern char **environ;
    char *envp[256];
    size_t k = 0;
    for (char **e = environ; *e && k < 254; e++)
        if (strncmp(*e, "DAGGERPOOL_CLOCK=", 17) != 0)
            envp[k++] = *e;
    if (env) {
        snprintf(ebuf, sizeof ebuf, "DAGGERPOOL_CLOCK=%s", env);
        envp[k++] = ebuf;
    }
    envp[k] = NULL;
    int p[2];
    assert_int_equal(pipe(p), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, exe, &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < len && (r = read(p[0], out + got, len - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* DAGGERPOOL_CLOCK is the default's answer, read at load: "monotonic"
 * gives the system clock, unset gives the counter where invariant, any
 * other value refuses a default run (once silently ignored), and a run
 * that chooses its clock does not look at it. */
static void test_clock_env_is_the_default(void **state)
{
    (void)state;
    char out[1024];
    const char *counter = dp__tsc_invariant ? "clock=tsc\n" : "clock=monotonic\n";
    spawn_child("monotonic", DP_CLOCK_DEFAULT, out, sizeof out);
    assert_string_equal(out, "clock=monotonic\n");
    spawn_child(NULL, DP_CLOCK_DEFAULT, out, sizeof out);
    assert_string_equal(out, counter);
    spawn_child("", DP_CLOCK_DEFAULT, out, sizeof out);
    assert_string_equal(out, counter);
    spawn_child("bogus", DP_CLOCK_DEFAULT, out, sizeof out);
    assert_non_null(strstr(out, "refused: DAGGERPOOL_CLOCK='bogus' is not known: set it to "
                                "'monotonic'"));
    spawn_child("bogus", DP_CLOCK_AUTO, out, sizeof out);
    assert_string_equal(out, counter);
    spawn_child("monotonic", DP_CLOCK_AUTO, out, sizeof out);
    assert_string_equal(out, counter);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--clock-child") == 0)
        return env_child(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks_never_go_back), cmocka_unit_test(test_span_matches_monotonic_clock),
        cmocka_unit_test(test_between_clamps),      cmocka_unit_test(test_job_times_in_results),
        cmocka_unit_test(test_clock_refused),       cmocka_unit_test(test_clock_env_is_the_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
