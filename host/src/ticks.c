/* ticks.c - deciding, once per process, what a tick is (see ticks.h). */
#include "ticks.h"

#include <stdlib.h>
#include <string.h>

#ifdef DP_HAVE_TSC
#include <cpuid.h>
#endif

bool dp__tsc_invariant;

/* DAGGERPOOL_CLOCK as it was at load: NULL when unset or empty. */
static const char *clock_env;

/* The library's load: the start of the longest span the TSC rate can be
 * measured over (the longer the span, the smaller the error of two clock
 * reads in it). */
static dp_tick_anchor_t load_anchor;

static bool tsc_invariant(void)
{
#ifdef DP_HAVE_TSC
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
        return false;
    if (!__get_cpuid(0x80000007u, &a, &b, &c, &d))
        return false;
    return (d & (1u << 8)) != 0;
#else
    return false;
#endif
}

__attribute__((constructor)) static void ticks_init(void)
{
    const char *env = getenv("DAGGERPOOL_CLOCK");
    /* A copy: the environment may change under a running program. */
    clock_env = env && *env ? strdup(env) : NULL;
    dp__tsc_invariant = tsc_invariant();
    /* Whatever the default, a run may choose the TSC: the rate's span
     * starts here. */
    load_anchor = dp__tick_anchor(dp__tsc_invariant);
}

int dp__clock_choose(dp_clock_t want, bool *tsc, char *err, size_t errlen)
{
    switch (want) {
    case DP_CLOCK_DEFAULT:
        if (clock_env && strcmp(clock_env, "monotonic") != 0)
            return dp__seterr(err, errlen, DP_EINVAL,
                              "DAGGERPOOL_CLOCK='%s' is not known: set it to 'monotonic' (stamp "
                              "jobs with CLOCK_MONOTONIC) or unset it (the CPU's counter where it "
                              "is invariant), or choose the clock in dp_run_opts_t.clock",
                              clock_env);
        *tsc = !clock_env && dp__tsc_invariant;
        return DP_OK;
    case DP_CLOCK_AUTO: *tsc = dp__tsc_invariant; return DP_OK;
    case DP_CLOCK_MONOTONIC: *tsc = false; return DP_OK;
    case DP_CLOCK_TSC:
        if (!dp__tsc_invariant)
            return dp__seterr(err, errlen, DP_EINVAL,
                              "clock 'tsc' asked for, but this CPU has no invariant time-stamp "
                              "counter: choose DP_CLOCK_AUTO or DP_CLOCK_MONOTONIC");
        *tsc = true;
        return DP_OK;
    }
    return dp__seterr(err, errlen, DP_EINVAL,
                      "unknown clock %d: choose DP_CLOCK_DEFAULT, DP_CLOCK_AUTO, "
                      "DP_CLOCK_MONOTONIC or DP_CLOCK_TSC",
                      (int)want);
}

const char *dp_clock_name(dp_clock_t c)
{
    switch (c) {
    case DP_CLOCK_DEFAULT: return "default";
    case DP_CLOCK_AUTO: return "auto";
    case DP_CLOCK_MONOTONIC: return "monotonic";
    case DP_CLOCK_TSC: return "tsc";
    }
    return "?";
}

dp_tick_anchor_t dp__tick_anchor(bool tsc)
{
    dp_tick_anchor_t a;
    a.tsc = tsc;
    if (!tsc) {
        a.ns = dp__now_ns();
        a.tick = a.ns;
        return a;
    }
    /* The tick between two clock reads, and their midpoint, so that the
     * pair describes one instant within half a clock read. */
    uint64_t n0 = dp__now_ns();
    a.tick = dp__ticks(true);
    uint64_t n1 = dp__now_ns();
    a.ns = n0 + (n1 - n0) / 2;
    return a;
}

/* The span since load over which the TSC rate is trusted for deadlines:
 * two clock reads' error (well under a microsecond) is then < 1e-4 of it. */
#define CALIBRATED_SPAN_NS 10000000u

uint64_t dp__ticks_before_deadline(dp_tick_anchor_t now, uint64_t deadline_ns)
{
    if (!now.tsc)
        return deadline_ns; /* ticks are the clock */
    if (deadline_ns <= now.ns || now.ns - load_anchor.ns < CALIBRATED_SPAN_NS)
        return now.tick;
    /* 1/16 of the time left (far above the rate's error) and 1 ms less. */
    uint64_t left = deadline_ns - now.ns;
    uint64_t margin = left / 16 + 1000000u;
    if (margin >= left)
        return now.tick;
    return now.tick + (uint64_t)((double)(left - margin) / dp__ns_per_tick(now));
}

double dp__ns_per_tick(dp_tick_anchor_t now)
{
    if (!now.tsc)
        return 1.0;
    if (now.tick <= load_anchor.tick || now.ns <= load_anchor.ns)
        return 1.0; /* no span to measure over yet; only moments apart */
    return (double)(now.ns - load_anchor.ns) / (double)(now.tick - load_anchor.tick);
}
