/* test_pool_stress.c - many pools under load (prio.c, pool.c): graphs of
 * hundreds of mostly no-op jobs spread over eight pools of 1 to 4 slots,
 * with chains inside a pool (a job hands its slots to its successor),
 * long lines of ready jobs (a worker runs a carry of them on one job's
 * slots), jobs taking 2 slots beside jobs taking 1, jobs that park on a
 * readiness poll while holding their slots, and jobs of no pool. Each job
 * counts its pool's slots in use with atomics from its start to its end
 * (a parked job from its first probe to its last), and the test checks
 * that no pool ever had more in use than it has, that every job ran once
 * per run, and that every run ended (no lost wakeup), at 1, 2 and 4
 * workers, several runs of each graph: runs of pool lines (no priority)
 * and ordered runs (priorities). Meant for TSan as much as for the pool's
 * bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NPOOLS 8
#define MAXJOBS 800

typedef struct sworld sworld_t;

typedef struct sjob {
    sworld_t *w;
    int pool; /* -1: none */
    unsigned slots;
    unsigned spin;     /* iterations of busy work (0: a no-op) */
    unsigned probes;   /* check-only: ready at this probe (0: a run job) */
    atomic_uint calls; /* run or check calls this run */
    atomic_uint runs;  /* times it ended this run */
} sjob_t;

struct sworld {
    unsigned pool_slots[NPOOLS];
    atomic_uint in_use[NPOOLS];
    atomic_uint max_in_use[NPOOLS];
    atomic_uint over; /* times a pool was seen over its slots */
    sjob_t jobs[MAXJOBS];
    size_t n;
};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void take_slots(sjob_t *j)
{
    if (j->pool < 0)
        return;
    sworld_t *w = j->w;
    unsigned now = atomic_fetch_add(&w->in_use[j->pool], j->slots) + j->slots;
    if (now > w->pool_slots[j->pool])
        atomic_fetch_add(&w->over, 1);
    unsigned m = atomic_load(&w->max_in_use[j->pool]);
    while (now > m && !atomic_compare_exchange_weak(&w->max_in_use[j->pool], &m, now)) {
    }
}

static void give_slots(sjob_t *j)
{
    if (j->pool >= 0)
        atomic_fetch_sub(&j->w->in_use[j->pool], j->slots);
}

static _Thread_local volatile unsigned busy_sink; /* per thread: no race */

static void busy(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        busy_sink = busy_sink + i;
}

static dp_outcome_t sj_run(dp_job_t *job, void *user)
{
    (void)job;
    sjob_t *j = user;
    atomic_fetch_add(&j->calls, 1);
    take_slots(j);
    busy(j->spin);
    give_slots(j);
    atomic_fetch_add(&j->runs, 1);
    return DP_READY;
}

/* A check-only job: it holds its pool's slots from its first probe (its
 * start) to the one that says ready, parked in between. */
static dp_outcome_t sj_check(dp_job_t *job, void *user)
{
    (void)job;
    sjob_t *j = user;
    unsigned c = atomic_fetch_add(&j->calls, 1) + 1;
    if (c == 1)
        take_slots(j);
    if (c < j->probes)
        return DP_NOT_READY;
    give_slots(j);
    atomic_fetch_add(&j->runs, 1);
    return DP_READY;
}

static const char *pname[NPOOLS] = {"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"};

/* n jobs, seeded: segments of chains in one pool, fans into long lines,
 * random dependencies on earlier jobs; parked jobs when `parks`;
 * priorities 0 to 2 when `prios` (an ordered run, prio.h: carries and
 * hand-offs instead of pool lines). */
static dp_graph_t *build(sworld_t *w, size_t n, uint64_t seed, bool parks, bool prios)
{
    char err[256];
    dp_graph_t *g = dp_graph_new();
    assert_non_null(g);
    memset(w, 0, sizeof *w);
    for (int p = 0; p < NPOOLS; p++) {
        w->pool_slots[p] = 1 + (unsigned)p % 4;
        assert_int_equal(dp_graph_add_pool(g, pname[p], w->pool_slots[p], err, sizeof err), DP_OK);
    }
    uint64_t s = seed;
    char name[32];
    for (size_t i = 0; i < n; i++) {
        sjob_t *j = &w->jobs[w->n++];
        j->w = w;
        uint64_t r = rng_next(&s);
        /* Runs of 8 jobs share a pool (chains hand slots over); one run in
         * eight has no pool. */
        int run_pool = (int)((i / 8 + seed) % NPOOLS) - 1; /* p7: the chains below */
        j->pool = run_pool;
        j->slots = j->pool >= 0 && w->pool_slots[j->pool] >= 2 && (r & 3) == 0 ? 2 : 1;
        j->spin = (r >> 8) % 16 == 0 ? 2000 : 0;
        j->probes = parks && (r >> 16) % 8 == 0 ? 3 : 0;
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        snprintf(name, sizeof name, "j%04zu", i);
        spec.name = name;
        spec.user = j;
        if (j->probes) {
            spec.check = sj_check;
            spec.readiness.period_ms = 1;
        } else {
            spec.run = sj_run;
        }
        if (j->pool >= 0) {
            spec.pool = pname[j->pool];
            spec.pool_slots = j->slots;
        }
        if (prios)
            spec.priority = (int)((r >> 32) % 3);
        assert_int_equal(dp_graph_add_job(g, &spec, err, sizeof err), DP_OK);
        /* Dependencies: the job before within its run of 8 (a chain) a
         * quarter of the time, 2 random earlier jobs another quarter, else
         * a root (a long line of roots, of 1 and 2 slots, waits for each
         * pool). */
        char dep[32];
        unsigned shape = (unsigned)((r >> 24) % 4);
        if (i % 8 && shape == 0) {
            snprintf(dep, sizeof dep, "j%04zu", i - 1);
            assert_int_equal(dp_graph_add_dep(g, name, dep), DP_OK);
        } else if (i > 0 && shape == 1) {
            for (int k = 0; k < 2; k++) {
                snprintf(dep, sizeof dep, "j%04zu", (size_t)(rng_next(&s) % i));
                assert_int_equal(dp_graph_add_dep(g, name, dep), DP_OK); /* a repeat is dropped */
            }
        }
    }
    /* Three chains of 30 in pool p7 (4 slots), taking 1 and 2 slots in
     * turn: a job hands its slots straight to its successor only when it
     * needs as many (else 3 chains of 2 would be 6 at once). */
    for (size_t c = 0; c < 3; c++)
        for (size_t k = 0; k < 30; k++) {
            sjob_t *j = &w->jobs[w->n++];
            j->w = w;
            j->pool = NPOOLS - 1;
            j->slots = (unsigned)((k + c) % 2) + 1;
            j->spin = 5000;
            dp_job_spec_t spec;
            dp_job_spec_init(&spec);
            snprintf(name, sizeof name, "c%zu_%02zu", c, k);
            spec.name = name;
            spec.user = j;
            spec.run = sj_run;
            spec.pool = pname[j->pool];
            spec.pool_slots = j->slots;
            assert_int_equal(dp_graph_add_job(g, &spec, err, sizeof err), DP_OK);
            if (k) {
                char dep[32];
                snprintf(dep, sizeof dep, "c%zu_%02zu", c, k - 1);
                assert_int_equal(dp_graph_add_dep(g, name, dep), DP_OK);
            }
        }
    assert_true(w->n <= MAXJOBS);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    return g;
}

static void run_and_check(dp_graph_t *g, sworld_t *w, unsigned workers)
{
    for (size_t i = 0; i < w->n; i++) {
        atomic_store(&w->jobs[i].calls, 0);
        atomic_store(&w->jobs[i].runs, 0);
    }
    for (int p = 0; p < NPOOLS; p++)
        atomic_store(&w->max_in_use[p], 0);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = workers;
    o.timeout_ms = 60000;
    char err[256];
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = dp_graph_run(g, &o, err, sizeof err);
    if (!r)
        fail_msg("run: %s", err);
    /* Far under the timeout: a lost wakeup would sit until it. */
    assert_true(dp_test_now_ms() - t0 < 30000);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(atomic_load(&w->over), 0);
    for (int p = 0; p < NPOOLS; p++) {
        unsigned m = atomic_load(&w->max_in_use[p]);
        if (m > w->pool_slots[p])
            fail_msg("pool p%d: %u slots in use at once, it has %u (%u workers)", p, m, w->pool_slots[p], workers);
        assert_int_equal(atomic_load(&w->in_use[p]), 0);
    }
    for (size_t i = 0; i < w->n; i++) {
        if (atomic_load(&w->jobs[i].runs) != 1)
            fail_msg("job %zu (build order) ended %u times (%u workers)", i, atomic_load(&w->jobs[i].runs), workers);
        assert_int_equal(dp_result_status(r, i), DP_STATUS_SUCCESS);
    }
    dp_result_free(r);
}

/* No-op jobs only: the carries and chains at full speed. */
static void test_many_pools_noop(void **state)
{
    (void)state;
    sworld_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        dp_graph_t *g = build(w, 600, seed, false, false);
        const unsigned workers[] = {1, 2, 4, 8};
        for (size_t k = 0; k < 4; k++)
            for (int rep = 0; rep < 3; rep++)
                run_and_check(g, w, workers[k]);
        dp_graph_free(g);
    }
    free(w);
}

/* With jobs that park on a readiness poll while holding their slots: a
 * worker holding a carry gives it back before it stands by. */
static void test_many_pools_parked(void **state)
{
    (void)state;
    sworld_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    for (uint64_t seed = 4; seed <= 5; seed++) {
        dp_graph_t *g = build(w, 400, seed, true, false);
        const unsigned workers[] = {1, 2, 4};
        for (size_t k = 0; k < 3; k++)
            for (int rep = 0; rep < 2; rep++)
                run_and_check(g, w, workers[k]);
        dp_graph_free(g);
    }
    free(w);
}

/* The same with priorities: an ordered run (a worker carries jobs of its
 * pool's line on one job's slots, a chain hands them over), parked jobs
 * among them. */
static void test_many_pools_ordered(void **state)
{
    (void)state;
    sworld_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    for (uint64_t seed = 6; seed <= 7; seed++) {
        dp_graph_t *g = build(w, 600, seed, seed == 7, true);
        const unsigned workers[] = {1, 2, 4, 8};
        for (size_t k = 0; k < 4; k++)
            for (int rep = 0; rep < 3; rep++)
                run_and_check(g, w, workers[k]);
        dp_graph_free(g);
    }
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_pools_noop),
        cmocka_unit_test(test_many_pools_parked),
        cmocka_unit_test(test_many_pools_ordered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
