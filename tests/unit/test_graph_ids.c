/* test_graph_ids.c - building a graph through ids (host/src/dag.c:
 * dp_graph_new_hint, dp_graph_add_job_id, dp_graph_add_dep_ids) and reading
 * statuses by id (result.c: dp_result_status): ids are the order added and
 * stay valid through validate, later additions and runs; unnamed jobs are
 * "#ID"; lookups by name still work, from several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "dag.h"
#include "testutil.h"

static dp_outcome_t noop(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return DP_READY;
}

/* Fails when its user pointer is non-NULL. */
static dp_outcome_t maybe_fail(dp_job_t *job, void *user)
{
    return user ? dp_job_fail(job, true, "%s failed on purpose", dp_job_name(job)) : DP_READY;
}

static uint32_t add(dp_graph_t *g, const char *name)
{
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.name = name;
    sp.run = noop;
    uint32_t id = UINT32_MAX;
    char err[256];
    int rc = dp_graph_add_job_id(g, &sp, &id, err, sizeof err);
    if (rc != DP_OK)
        fail_msg("add %s: %s", name ? name : "(unnamed)", err);
    return id;
}

/* Ids of a job's deps (or succs) as "1,2". */
static const char *idlist(const dp_graph_t *g, size_t id, bool succs)
{
    static char buf[16384];
    const uint32_t *ids;
    size_t n = succs ? dp_graph_succs(g, id, &ids) : dp_graph_deps(g, id, &ids);
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < sizeof buf; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%u", i ? "," : "", ids[i]);
    assert_true(o < sizeof buf);
    return buf;
}

/* Names out of name order keep their insertion ids through validate (a
 * graph built by names would renumber them: zeta=2, alpha=0, mid=1). */
static void test_ids_are_insertion_order_after_validate(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    assert_int_equal(add(g, "zeta"), 0);
    assert_int_equal(add(g, "alpha"), 1);
    assert_int_equal(add(g, "mid"), 2);
    assert_int_equal(dp_graph_add_dep_ids(g, 0, 1), DP_OK); /* zeta after alpha */
    assert_int_equal(dp_graph_add_dep_ids(g, 0, 2), DP_OK); /* zeta after mid */
    assert_int_equal(dp_graph_add_dep_ids(g, 2, 1), DP_OK); /* mid after alpha */
    assert_int_equal(dp_graph_add_dep_ids(g, 0, 1), DP_OK); /* a repeat: harmless */
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_string_equal(dp_graph_job_name(g, 0), "zeta");
    assert_string_equal(dp_graph_job_name(g, 1), "alpha");
    assert_string_equal(dp_graph_job_name(g, 2), "mid");
    assert_string_equal(idlist(g, 0, false), "1,2");
    assert_string_equal(idlist(g, 1, true), "0,2");
    assert_string_equal(idlist(g, 2, false), "1");
    assert_string_equal(idlist(g, 2, true), "0");
    /* Lookups by name after validate (the index is made again). */
    assert_int_equal(dp_graph_job_id(g, "zeta"), 0);
    assert_int_equal(dp_graph_job_id(g, "alpha"), 1);
    assert_int_equal(dp_graph_job_id(g, "mid"), 2);
    assert_int_equal(dp_graph_job_id(g, "nope"), -1);

    /* The result speaks the same ids. */
    dp_result_t *r = tu_run(g, NULL);
    assert_true(dp_result_is_ready(r));
    for (uint32_t id = 0; id < 3; id++) {
        assert_int_equal(dp_result_status(r, id), DP_STATUS_SUCCESS);
        assert_string_equal(dp_result_job(r, id)->name, dp_graph_job_name(g, id));
    }
    assert_ptr_equal(dp_result_find(r, "mid"), dp_result_job(r, 2));
    dp_result_free(r);
    dp_graph_free(g);
}

/* Jobs added after validate (and after a run) get the next ids; nothing
 * renumbers, edges by id added later land where they should. */
static void test_ids_survive_later_additions(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new_hint(4, 4);
    assert_non_null(g);
    assert_int_equal(add(g, "c"), 0);
    assert_int_equal(add(g, "b"), 1);
    assert_int_equal(dp_graph_add_dep_ids(g, 0, 1), DP_OK);
    dp_result_t *r = tu_run(g, NULL);
    assert_true(dp_result_is_ready(r));
    dp_result_free(r);
    assert_int_equal(add(g, "a"), 2);
    assert_int_equal(add(g, NULL), 3);
    assert_string_equal(dp_graph_job_name(g, 3), "#3");
    assert_int_equal(dp_graph_add_dep_ids(g, 2, 0), DP_OK);
    /* and by name, on the same graph */
    assert_int_equal(dp_graph_add_dep(g, "#3", "a"), DP_OK);
    r = tu_run(g, NULL);
    assert_true(dp_result_is_ready(r));
    assert_string_equal(dp_graph_job_name(g, 0), "c");
    assert_string_equal(dp_graph_job_name(g, 2), "a");
    assert_string_equal(idlist(g, 2, false), "0");
    assert_string_equal(idlist(g, 3, false), "2");
    assert_string_equal(idlist(g, 0, true), "2");
    assert_int_equal(dp_result_job_count(r), 4);
    dp_result_free(r);
    dp_graph_free(g);
}

/* Counts its runs in the int its user pointer names. */
static dp_outcome_t count_runs(dp_job_t *job, void *user)
{
    (void)job;
    __atomic_fetch_add((int *)user, 1, __ATOMIC_RELAXED);
    return DP_READY;
}

/* A graph run, then grown past its size and run again, four times, on 2
 * workers: its run scratch's queue moves over where the last run's queue
 * and tickets were, and must start empty (a Debug build asserts it: a
 * stale ticket there reads as a worker's mark that it waits on the slot).
 * Every job runs once a run. */
static void test_grown_graph_runs_again(void **state)
{
    (void)state;
    enum { MAXN = 600 };
    static int runs[MAXN];
    memset(runs, 0, sizeof runs);
    dp_graph_t *g = dp_graph_new();
    assert_non_null(g);
    size_t n = 0;
    const size_t sizes[] = {8, 17, 40, 100, MAXN};
    for (int round = 0; round < 5; round++) {
        for (; n < sizes[round]; n++) {
            dp_job_spec_t sp;
            dp_job_spec_init(&sp);
            sp.run = count_runs;
            sp.user = &runs[n];
            uint32_t id;
            char err[256];
            assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_OK);
            assert_int_equal(id, n);
            /* One root (only the queue's first slot seeded), a chain with
             * some jobs of two dependencies. */
            if (n > 0)
                assert_int_equal(dp_graph_add_dep_ids(g, id, id - 1), DP_OK);
            if (n % 3 == 2 && n > 4)
                assert_int_equal(dp_graph_add_dep_ids(g, id, id - 4), DP_OK);
        }
        dp_run_opts_t o;
        dp_run_opts_init(&o);
        o.max_concurrent_jobs = 2;
        char err[256];
        dp_result_t *r = dp_graph_run(g, &o, err, sizeof err);
        assert_non_null(r);
        assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
        assert_int_equal(dp_result_job_count(r), n);
        for (size_t j = 0; j < n; j++)
            if (runs[j] != 1)
                fail_msg("round %d: job %zu ran %d times", round, j, runs[j]);
        memset(runs, 0, sizeof runs);
        dp_result_free(r);
    }
    dp_graph_free(g);
}

/* The same with random growth (a fixed seed): graphs with a pool (some
 * of their jobs in it) and priorities or not, grown by a few jobs or by
 * hundreds between runs, each run on 1 to 4 workers: a plain run, a run of
 * pool lines, an ordered one, each reusing what the last run of the graph
 * left (run scratch, slots, the ordered run's scratch). Every job runs
 * once a run, and every run succeeds. */
static void test_grown_graphs_random(void **state)
{
    (void)state;
    enum { MAXN = 1500 };
    static int runs[MAXN];
    uint64_t rng = 42;
#define NEXT(m) ((rng = rng * 6364136223846793005ull + 1442695040888963407ull), (unsigned)(rng >> 33) % (m))
    for (int trial = 0; trial < 12; trial++) {
        memset(runs, 0, sizeof runs);
        dp_graph_t *g = dp_graph_new();
        assert_non_null(g);
        bool pool = NEXT(2), prio = NEXT(3) == 0;
        char err[256];
        if (pool)
            assert_int_equal(dp_graph_add_pool(g, "p", 1 + NEXT(3), err, sizeof err), DP_OK);
        size_t n = 0;
        for (int round = 0; round < 5; round++) {
            size_t add = 1 + (round == 0 ? NEXT(20) : NEXT(2) ? NEXT(30) : NEXT(400));
            for (size_t k = 0; k < add && n < MAXN; k++, n++) {
                dp_job_spec_t sp;
                dp_job_spec_init(&sp);
                sp.run = count_runs;
                sp.user = &runs[n];
                if (pool && NEXT(2)) {
                    sp.pool = "p";
                    sp.pool_slots = 1;
                }
                if (prio)
                    sp.priority = (int)NEXT(5) - 2;
                uint32_t id;
                assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_OK);
                for (unsigned d = n ? NEXT(4) : 0; d > 0; d--)
                    assert_int_equal(dp_graph_add_dep_ids(g, id, NEXT((unsigned)n)), DP_OK);
            }
            dp_run_opts_t o;
            dp_run_opts_init(&o);
            o.max_concurrent_jobs = 1 + NEXT(4);
            dp_result_t *r = dp_graph_run(g, &o, err, sizeof err);
            if (!r)
                fail_msg("trial %d round %d: %s", trial, round, err);
            assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
            for (size_t j = 0; j < n; j++)
                if (runs[j] != 1)
                    fail_msg("trial %d round %d: job %zu ran %d times", trial, round, j, runs[j]);
            memset(runs, 0, sizeof runs);
            dp_result_free(r);
        }
        dp_graph_free(g);
    }
#undef NEXT
}

/* A wide graph sized by a hint (its arrays faulted in at once): 30 000
 * roots seeded in the ready queue, and a source whose 40 000 successors
 * one worker pushes in batches while others take them, past the marks
 * where the queue faults its next slots in (queue.c fault_ahead), on 1, 2
 * and 4 workers, three runs each over the same scratch. Every job runs
 * once a run. */
static void test_wide_graph_runs_whole(void **state)
{
    (void)state;
    enum { FAN = 40000, ROOTS = 30000, N = 1 + FAN + ROOTS };
    static int runs[N];
    memset(runs, 0, sizeof runs);
    dp_graph_t *g = dp_graph_new_hint(N, FAN);
    assert_non_null(g);
    char err[256];
    for (size_t j = 0; j < N; j++) {
        dp_job_spec_t sp;
        dp_job_spec_init(&sp);
        sp.run = count_runs;
        sp.user = &runs[j];
        uint32_t id;
        assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_OK);
        if (j >= 1 && j <= FAN)
            assert_int_equal(dp_graph_add_dep_ids(g, id, 0), DP_OK);
    }
    const unsigned workers[] = {1, 2, 4};
    for (int w = 0; w < 3; w++) {
        for (int round = 0; round < 3; round++) {
            dp_run_opts_t o;
            dp_run_opts_init(&o);
            o.max_concurrent_jobs = workers[w];
            dp_result_t *r = dp_graph_run(g, &o, err, sizeof err);
            if (!r)
                fail_msg("%u workers, run %d: %s", workers[w], round, err);
            assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
            for (size_t j = 0; j < N; j++)
                if (runs[j] != 1)
                    fail_msg("%u workers, run %d: job %zu ran %d times", workers[w], round, j, runs[j]);
            memset(runs, 0, sizeof runs);
            dp_result_free(r);
        }
    }
    dp_graph_free(g);
}

/* This process's resident memory, in bytes (/proc/self/statm). */
static size_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    unsigned long size = 0, resident = 0;
    assert_int_equal(fscanf(f, "%lu %lu", &size, &resident), 2);
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* A size hint is room, not memory: a graph hinted at 2 million jobs and 8
 * million dependencies (64 MB and 64 MB of arrays) that gets 1 000 jobs
 * touches only what those take, the arrays being faulted in just ahead of
 * what is added (dag.c fault_ahead). */
static void test_size_hint_costs_no_memory(void **state)
{
    (void)state;
    size_t before = resident_bytes();
    dp_graph_t *g = dp_graph_new_hint(2000000, 8000000);
    assert_non_null(g);
    for (size_t j = 0; j < 1000; j++) {
        uint32_t id = add(g, NULL);
        if (j)
            assert_int_equal(dp_graph_add_dep_ids(g, id, id - 1), DP_OK);
    }
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    size_t grew = resident_bytes() - before;
    if (grew > (size_t)16 << 20)
        fail_msg("a hinted graph of 1 000 jobs made %zu bytes resident", grew);
    dp_graph_free(g);
}

/* A graph built by names and validated is in name order; once ids are
 * handed out, that order stays: the new job is appended, not sorted in. */
static void test_ids_fix_the_order_of_a_named_graph(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = noop;
    char err[256];
    sp.name = "m";
    assert_int_equal(dp_graph_add_job(g, &sp, err, sizeof err), DP_OK);
    sp.name = "k";
    assert_int_equal(dp_graph_add_job(g, &sp, err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_string_equal(dp_graph_job_name(g, 0), "k"); /* sorted, as always */
    assert_int_equal(add(g, "a"), 2);
    assert_int_equal(dp_graph_add_dep_ids(g, 2, 1), DP_OK); /* a after m */
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_string_equal(dp_graph_job_name(g, 0), "k");
    assert_string_equal(dp_graph_job_name(g, 1), "m");
    assert_string_equal(dp_graph_job_name(g, 2), "a");
    assert_string_equal(idlist(g, 2, false), "1");
    dp_graph_free(g);
}

static void test_unnamed_jobs(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    assert_int_equal(add(g, NULL), 0);
    assert_int_equal(add(g, NULL), 1);
    assert_string_equal(dp_graph_job_name(g, 0), "#0");
    assert_string_equal(dp_graph_job_name(g, 1), "#1");
    assert_int_equal(dp_graph_job_id(g, "#1"), 1);

    /* Naming a job "#0" yourself clashes with unnamed job 0 ... */
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = noop;
    sp.name = "#0";
    char err[256];
    uint32_t id = 77;
    assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_EDUPLICATE);
    assert_non_null(strstr(err, "duplicate job name \"#0\""));
    assert_int_equal(id, 77); /* a failed call changes nothing */
    assert_int_equal(dp_graph_job_count(g), 2);
    /* "#1x" and "#01" are no id's name. */
    sp.name = "#1x";
    assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_OK);
    assert_int_equal(id, 2);
    sp.name = "#01";
    assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_OK);
    assert_int_equal(id, 3);
    assert_int_equal(add(g, NULL), 4);
    assert_string_equal(dp_graph_job_name(g, 4), "#4");
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_job_id(g, "#4"), 4);
    assert_int_equal(dp_graph_job_id(g, "#01"), 3);
    assert_int_equal(dp_graph_job_id(g, "#1"), 1);
    assert_int_equal(dp_graph_job_id(g, "#5"), -1);
    assert_int_equal(dp_graph_add_dep(g, "#4", "#01"), DP_OK);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_string_equal(idlist(g, 4, false), "3");
    dp_graph_free(g);
}

static void test_unnamed_clash_is_refused(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = noop;
    sp.name = "#1";
    char err[256];
    uint32_t id;
    assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_OK);
    assert_int_equal(id, 0);
    sp.name = NULL;
    assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_EDUPLICATE);
    assert_non_null(strstr(err, "unnamed job 1 would be named \"#1\", but job 0 has that name"));
    assert_int_equal(dp_graph_job_count(g), 1);
    /* dp_graph_add_job still wants a name. */
    assert_int_equal(dp_graph_add_job(g, &sp, err, sizeof err), DP_EINVAL);
    assert_int_equal(dp_graph_add_job_id(g, &sp, NULL, err, sizeof err), DP_EINVAL);
    dp_graph_free(g);
}

static void test_bad_dep_ids(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    add(g, "a");
    add(g, "b");
    assert_int_equal(dp_graph_add_dep_ids(NULL, 0, 1), DP_EINVAL);
    assert_int_equal(dp_graph_add_dep_ids(g, 0, 2), DP_ENOTFOUND);
    assert_int_equal(dp_graph_add_dep_ids(g, 5, 0), DP_ENOTFOUND);
    assert_int_equal(dp_graph_add_dep_ids(g, 1, 1), DP_ESELF_DEP);
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK); /* nothing was added */
    assert_string_equal(idlist(g, 0, false), "");
    /* A cycle through ids is refused at validate, named. */
    assert_int_equal(dp_graph_add_dep_ids(g, 0, 1), DP_OK);
    assert_int_equal(dp_graph_add_dep_ids(g, 1, 0), DP_OK);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    assert_non_null(strstr(err, "cycle: a -> b -> a"));
    dp_graph_free(g);
}

/* Statuses by id equal the records' on a run where they differ; out of
 * range reads unknown. */
static void test_status_by_id(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new_hint(5, 4);
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = maybe_fail;
    const char *names[] = {"ok", "bad", "after_bad", "after_ok", "alone"};
    uint32_t id[5];
    char err[256];
    for (int i = 0; i < 5; i++) {
        sp.name = names[i];
        sp.user = i == 1 ? (void *)1 : NULL;
        assert_int_equal(dp_graph_add_job_id(g, &sp, &id[i], err, sizeof err), DP_OK);
        assert_int_equal(id[i], i);
    }
    assert_int_equal(dp_graph_add_dep_ids(g, 2, 1), DP_OK);
    assert_int_equal(dp_graph_add_dep_ids(g, 3, 0), DP_OK);
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.fail_fast = false;
    opts.max_concurrent_jobs = 1;
    dp_result_t *r = tu_run(g, &opts);
    dp_status_t want[5] = {DP_STATUS_SUCCESS, DP_STATUS_FAILED, DP_STATUS_SKIPPED, DP_STATUS_SUCCESS,
                           DP_STATUS_SUCCESS};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(dp_result_status(r, id[i]), want[i]);
        assert_int_equal(dp_result_job(r, id[i])->status, want[i]);
    }
    assert_int_equal(dp_result_status(r, 5), DP_STATUS_UNKNOWN);
    assert_int_equal(dp_result_status(r, (size_t)-1), DP_STATUS_UNKNOWN);
    assert_int_equal(dp_result_status(NULL, 0), DP_STATUS_UNKNOWN);
    dp_result_free(r);
    dp_graph_free(g);
}

/* Several threads look names up at once on a validated graph that keeps
 * its order (its index is made on the first lookup): TSan's case. */
#define LOOKUP_JOBS 2000
#define LOOKUP_THREADS 4

static void *lookup_all(void *arg)
{
    const dp_graph_t *g = arg;
    char name[16];
    for (unsigned j = 0; j < LOOKUP_JOBS; j++) {
        snprintf(name, sizeof name, "n%u", LOOKUP_JOBS - 1 - j);
        if (dp_graph_job_id(g, name) != (long)j)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_lookups_by_name(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new_hint(LOOKUP_JOBS, 0);
    char name[16];
    for (unsigned j = 0; j < LOOKUP_JOBS; j++) {
        snprintf(name, sizeof name, "n%u", LOOKUP_JOBS - 1 - j); /* not name order */
        assert_int_equal(add(g, name), j);
    }
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    pthread_t t[LOOKUP_THREADS];
    for (int i = 0; i < LOOKUP_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, lookup_all, g), 0);
    for (int i = 0; i < LOOKUP_THREADS; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        assert_null(bad);
    }
    /* Adding after that takes the index back; the names stay found. */
    assert_int_equal(add(g, "later"), LOOKUP_JOBS);
    assert_int_equal(dp_graph_job_id(g, "n0"), LOOKUP_JOBS - 1);
    assert_int_equal(dp_graph_job_id(g, "later"), LOOKUP_JOBS);
    dp_graph_free(g);
}

/* A graph built through ids and one built by names from the same shape (a
 * layered graph, names already in order) run to the same statuses, deps
 * and successors. */
static void test_same_graph_both_ways(void **state)
{
    (void)state;
    enum { N = 300 };
    dp_graph_t *a = dp_graph_new_hint(N, 0), *b = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = noop;
    char err[256], name[16], dep[16];
    for (unsigned j = 0; j < N; j++) {
        snprintf(name, sizeof name, "j%04u", j);
        sp.name = name;
        uint32_t id;
        assert_int_equal(dp_graph_add_job_id(a, &sp, &id, err, sizeof err), DP_OK);
        assert_int_equal(dp_graph_add_job(b, &sp, err, sizeof err), DP_OK);
        for (unsigned k = 1; k <= 3 && k <= j; k++) {
            unsigned d = (j * 7 + k * 13) % j;
            snprintf(dep, sizeof dep, "j%04u", d);
            assert_int_equal(dp_graph_add_dep_ids(a, j, d), DP_OK);
            assert_int_equal(dp_graph_add_dep(b, name, dep), DP_OK);
        }
    }
    dp_result_t *ra = tu_run(a, NULL), *rb = tu_run(b, NULL);
    assert_true(dp_result_is_ready(ra));
    assert_true(dp_result_is_ready(rb));
    for (unsigned j = 0; j < N; j++) {
        static char da[16384];
        snprintf(da, sizeof da, "%s", idlist(a, j, false));
        assert_string_equal(da, idlist(b, j, false));
        snprintf(da, sizeof da, "%s", idlist(a, j, true));
        assert_string_equal(da, idlist(b, j, true));
        assert_int_equal(dp_result_status(ra, j), dp_result_status(rb, j));
    }
    dp_result_free(ra);
    dp_result_free(rb);
    dp_graph_free(a);
    dp_graph_free(b);
}

/* Dependencies added job by job, each to an earlier job (validate turns
 * the edge list into the dependency lists in place and skips the cycle
 * check): lists sorted and without repeats, successors right, and the
 * graph still changes afterwards (edges made again), cycles included. */
static void test_forward_edges_in_place(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new_hint(6, 12);
    for (int j = 0; j < 6; j++)
        add(g, NULL);
    assert_int_equal(dp_graph_add_dep_ids(g, 2, 1), DP_OK);
    assert_int_equal(dp_graph_add_dep_ids(g, 2, 0), DP_OK);
    assert_int_equal(dp_graph_add_dep_ids(g, 2, 1), DP_OK); /* a repeat */
    assert_int_equal(dp_graph_add_dep_ids(g, 4, 3), DP_OK);
    assert_int_equal(dp_graph_add_dep_ids(g, 4, 0), DP_OK);
    assert_int_equal(dp_graph_add_dep_ids(g, 4, 2), DP_OK);
    assert_int_equal(dp_graph_add_dep_ids(g, 5, 4), DP_OK);
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_string_equal(idlist(g, 2, false), "0,1");
    assert_string_equal(idlist(g, 4, false), "0,2,3");
    assert_string_equal(idlist(g, 5, false), "4");
    assert_string_equal(idlist(g, 0, true), "2,4");
    assert_string_equal(idlist(g, 1, true), "2");
    assert_string_equal(idlist(g, 3, true), "4");
    dp_result_t *r = tu_run(g, NULL);
    assert_true(dp_result_is_ready(r));
    dp_result_free(r);
    /* Changed after: one more job and edge, then a cycle. */
    assert_int_equal(add(g, NULL), 6);
    assert_int_equal(dp_graph_add_dep_ids(g, 6, 5), DP_OK);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_string_equal(idlist(g, 4, false), "0,2,3");
    assert_string_equal(idlist(g, 6, false), "5");
    assert_string_equal(idlist(g, 5, true), "6");
    assert_int_equal(dp_graph_add_dep_ids(g, 0, 6), DP_OK);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    dp_graph_free(g);
}

/* An unnamed job's name is written out when asked for: in callbacks, events,
 * log lines, results and messages, from several workers at once; names
 * handed out stay valid after the graph grows. */
static dp_outcome_t own_name(dp_job_t *job, void *user)
{
    char want[16];
    snprintf(want, sizeof want, "#%u", (unsigned)(uintptr_t)user);
    return strcmp(dp_job_name(job), want) == 0 ? DP_READY : dp_job_fail(job, true, "named %s", dp_job_name(job));
}

static void test_unnamed_names_on_demand(void **state)
{
    (void)state;
    enum { N = 200 };
    dp_graph_t *g = dp_graph_new_hint(N, N);
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = own_name;
    char err[256];
    for (unsigned j = 0; j < N; j++) {
        uint32_t id;
        sp.user = (void *)(uintptr_t)j;
        assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_OK);
        if (j)
            assert_int_equal(dp_graph_add_dep_ids(g, j, j / 2), DP_OK);
    }
    tu_events_t ev;
    tu_events_init(&ev);
    tu_log_t log;
    tu_log_init(&log);
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.max_concurrent_jobs = 4;
    opts.on_event = tu_event_cb;
    opts.event_user = &ev;
    opts.log = tu_log_cb;
    opts.log_user = &log;
    dp_result_t *r = tu_run(g, &opts);
    assert_true(dp_result_is_ready(r));
    assert_string_equal(tu_events_of(&ev, "#17"), "start1 end1:success job:success");
    assert_int_equal(tu_log_count(&log, "#42", 1, "success after 1 attempt"), 1);
    const char *n7 = dp_result_job(r, 7)->name;
    assert_string_equal(n7, "#7");
    assert_ptr_equal(dp_graph_job_name(g, 7), n7);
    dp_result_free(r);
    /* More jobs: the names of the new ones are written out again, the old
     * pointer still reads "#7". */
    assert_int_equal(add(g, NULL), N);
    assert_int_equal(dp_graph_add_dep_ids(g, N, N - 1), DP_OK);
    assert_string_equal(dp_graph_job_name(g, N), "#200");
    assert_string_equal(n7, "#7");
    /* A cycle among unnamed jobs is named in the message. */
    assert_int_equal(dp_graph_add_dep_ids(g, 1, N), DP_OK);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    if (!strstr(err, "cycle: #1 -> #200 -> ") || !strstr(err, " -> #1 (each job depends on the next)"))
        fail_msg("%s", err);
    tu_events_destroy(&ev);
    tu_log_destroy(&log);
    dp_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_are_insertion_order_after_validate),
        cmocka_unit_test(test_ids_survive_later_additions),
        cmocka_unit_test(test_grown_graph_runs_again),
        cmocka_unit_test(test_grown_graphs_random),
        cmocka_unit_test(test_wide_graph_runs_whole),
        cmocka_unit_test(test_size_hint_costs_no_memory),
        cmocka_unit_test(test_ids_fix_the_order_of_a_named_graph),
        cmocka_unit_test(test_unnamed_jobs),
        cmocka_unit_test(test_unnamed_clash_is_refused),
        cmocka_unit_test(test_bad_dep_ids),
        cmocka_unit_test(test_status_by_id),
        cmocka_unit_test(test_concurrent_lookups_by_name),
        cmocka_unit_test(test_same_graph_both_ways),
        cmocka_unit_test(test_forward_edges_in_place),
        cmocka_unit_test(test_unnamed_names_on_demand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
