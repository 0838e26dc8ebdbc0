/* ticks.h - the cheap clock behind per-job start and end times.
 *
 * A run stamps every job twice (start, end). On virtual machines a
 * CLOCK_MONOTONIC read (kvm-clock: the vDSO reads the TSC and scales it
 * through the hypervisor's page) costs as much as or more than the
 * scheduling of a no-op job (bench/README.md, "This machine"). Where the CPU
 * has an invariant TSC (constant rate, never stops: CPUID 0x80000007 EDX
 * bit 8) the stamps are raw TSC readings, a fraction of that, turned into
 * CLOCK_MONOTONIC time afterwards from two anchors: the run's start (a tick
 * and a clock reading taken together) and a rate measured between the
 * library's load and the run's end. Everywhere else, and in a run that
 * chose CLOCK_MONOTONIC (dp_run_opts_t.clock, or DAGGERPOOL_CLOCK=monotonic
 * for the default), a tick is simply CLOCK_MONOTONIC nanoseconds and the
 * conversion is the identity. The choice is per run: a run's anchors say
 * which clock its ticks are.
 *
 * Ticks are only ever compared with ticks read in the same process. A
 * thread may move between CPUs within a job; invariant TSCs of one machine
 * agree (the kernel and hypervisor keep them in step), and a stamp that
 * still came out earlier than its start is clamped, so a duration is never
 * negative. Deadlines and timers keep using CLOCK_MONOTONIC (util.h).
 */
#ifndef DP_TICKS_H
#define DP_TICKS_H

#include <stdbool.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define DP_HAVE_TSC 1
#endif

/* Set once, at load (ticks.c): the CPU has an invariant TSC. */
extern bool dp__tsc_invariant;

/* A tick of the clock a run chose: a TSC reading (tsc) or CLOCK_MONOTONIC
 * nanoseconds. */
static inline uint64_t dp__ticks(bool tsc)
{
#ifdef DP_HAVE_TSC
    if (__builtin_expect(tsc, 1))
        return __rdtsc();
#else
    (void)tsc;
#endif
    return dp__now_ns();
}

/* Where a run's ticks start: a tick and a CLOCK_MONOTONIC reading taken
 * together (the same value when ticks are nanoseconds), and which clock
 * the ticks are. */
typedef struct dp_tick_anchor {
    uint64_t tick;
    uint64_t ns;
    bool tsc;
} dp_tick_anchor_t;

dp_tick_anchor_t dp__tick_anchor(bool tsc);

/* The clock of a run asked for `want` (DP_CLOCK_DEFAULT reads
 * DAGGERPOOL_CLOCK as it was at the library's load): *tsc true for TSC
 * ticks. DP_EINVAL with err (the fix) for DP_CLOCK_TSC on a CPU without an
 * invariant TSC, an unknown value, or a default with DAGGERPOOL_CLOCK set
 * to anything but "monotonic". */
int dp__clock_choose(dp_clock_t want, bool *tsc, char *err, size_t errlen);

/* Nanoseconds per tick, measured from the library's load until `now`
 * (an anchor read just before; 1.0 when ticks are nanoseconds). */
double dp__ns_per_tick(dp_tick_anchor_t now);

/* A tick before which a CLOCK_MONOTONIC deadline has surely not passed,
 * for cheap checks on hot paths (at or after it, check the clock itself).
 * `now` is an anchor read just before. With TSC ticks the rate is only
 * known to the precision of the span since the library's load, so the
 * answer keeps a margin, and is now.tick (always check) while that span is
 * short. */
uint64_t dp__ticks_before_deadline(dp_tick_anchor_t now, uint64_t deadline_ns);

/* Nanoseconds from tick a to tick b (0 when b is not after a). */
static inline uint64_t dp__ticks_between(uint64_t a, uint64_t b, double ns_per_tick)
{
    return b > a ? (uint64_t)((double)(b - a) * ns_per_tick) : 0;
}

#endif /* DP_TICKS_H */
