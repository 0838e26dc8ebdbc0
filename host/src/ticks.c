/* ticks.c - deciding, once per process, what a tick is (see ticks.h). */
#include "ticks.h"

#include <stdlib.h>
#include <string.h>

#ifdef DP_HAVE_TSC
#include <cpuid.h>
#endif

bool dp__ticks_tsc;

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
    const char *force = getenv("DAGGERPOOL_CLOCK");
    bool monotonic = force && strcmp(force, "monotonic") == 0;
    dp__ticks_tsc = !monotonic && tsc_invariant();
    load_anchor = dp__tick_anchor();
}

dp_tick_anchor_t dp__tick_anchor(void)
{
    dp_tick_anchor_t a;
    if (!dp__ticks_tsc) {
        a.ns = dp__now_ns();
        a.tick = a.ns;
        return a;
    }
    /* The tick between two clock reads, and their midpoint, so that the
     * pair describes one instant within half a clock read. */
    uint64_t n0 = dp__now_ns();
    a.tick = dp__ticks();
    uint64_t n1 = dp__now_ns();
    a.ns = n0 + (n1 - n0) / 2;
    return a;
}

/* The span since load over which the TSC rate is trusted for deadlines:
 * two clock reads' error (well under a microsecond) is then < 1e-4 of it. */
#define CALIBRATED_SPAN_NS 10000000u

uint64_t dp__ticks_before_deadline(dp_tick_anchor_t now, uint64_t deadline_ns)
{
    if (!dp__ticks_tsc)
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
    if (!dp__ticks_tsc)
        return 1.0;
    if (now.tick <= load_anchor.tick || now.ns <= load_anchor.ns)
        return 1.0; /* no span to measure over yet; only moments apart */
    return (double)(now.ns - load_anchor.ns) / (double)(now.tick - load_anchor.tick);
}
