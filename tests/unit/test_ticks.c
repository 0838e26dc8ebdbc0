/* test_ticks.c - the per-job clock (host/src/ticks.c): ticks turned into
 * time agree with CLOCK_MONOTONIC, and job start and duration in results
 * agree with what the jobs did, with TSC ticks and with plain nanoseconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

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
    uint64_t last = dp__ticks();
    for (int i = 0; i < 100000; i++) {
        uint64_t t = dp__ticks();
        assert_true(t >= last);
        last = t;
    }
}

/* A span measured in ticks, converted, matches the same span measured with
 * CLOCK_MONOTONIC. Generous bounds: the machine is shared. */
static void check_span(void)
{
    dp_tick_anchor_t a = dp__tick_anchor();
    sleep_ms(20);
    dp_tick_anchor_t b = dp__tick_anchor();
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
    bool saved = dp__ticks_tsc;
    check_span();
    dp__ticks_tsc = false; /* what DAGGERPOOL_CLOCK=monotonic selects */
    check_span();
    dp__ticks_tsc = saved;
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

/* first (30 ms) -> second (20 ms): durations and starts as slept. */
static void check_run_times(void)
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
    dp_result_t *r = dp_graph_run(g, NULL, err, sizeof err);
    assert_non_null(r);
    assert_true(dp_result_is_ready(r));
    const dp_job_result_t *a = dp_result_find(r, "first");
    const dp_job_result_t *b = dp_result_find(r, "second");
    assert_true(a->start_ms >= 0 && a->start_ms <= 50);
    assert_true(a->duration_ms >= 29 && a->duration_ms <= 2000);
    assert_true(b->duration_ms >= 19 && b->duration_ms <= 2000);
    /* second starts when first ended (same millisecond, give or take the
     * rounding of each figure). */
    assert_true(b->start_ms + 1 >= a->start_ms + a->duration_ms);
    assert_true(b->start_ms <= a->start_ms + a->duration_ms + 50);
    assert_true(dp_result_duration_ms(r) + 1 >= b->start_ms + b->duration_ms);
    dp_result_free(r);
    dp_graph_free(g);
}

static void test_job_times_in_results(void **state)
{
    (void)state;
    bool saved = dp__ticks_tsc;
    check_run_times();
    dp__ticks_tsc = false;
    check_run_times();
    dp__ticks_tsc = saved;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks_never_go_back),
        cmocka_unit_test(test_span_matches_monotonic_clock),
        cmocka_unit_test(test_between_clamps),
        cmocka_unit_test(test_job_times_in_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
