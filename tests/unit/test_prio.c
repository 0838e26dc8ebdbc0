/* test_prio.c - pools and priorities through the library (prio.c, pool.c):
 * a pool's slots bound its jobs besides max_concurrent_jobs, a job waiting
 * for its pool holds no worker, priorities and the critical path order the
 * ready jobs, expected durations weight the path, validate refuses unknown
 * pools and jobs larger than their pool. Graphs of 10+ jobs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prio.h"
#include "testutil.h"

#define MAXJ 64

typedef struct world world_t;

typedef struct pj {
    world_t *w;
    char name[32];
    int pool; /* index into world.in_use, -1 none */
    unsigned slots;
    unsigned sleep_ms;
    bool fail_once;
    atomic_bool failed;
    unsigned start_seq, end_seq; /* under w->mu */
} pj_t;

struct world {
    pthread_mutex_t mu;
    unsigned in_use[4];     /* slots in use per pool */
    unsigned max_in_use[4]; /* the most seen */
    unsigned running, max_running;
    unsigned seq;
    char order[MAXJ * 33]; /* start order, "a b c" */
    pj_t jobs[MAXJ];
    size_t n;
};

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static dp_outcome_t pj_run(dp_job_t *job, void *user)
{
    pj_t *j = user;
    world_t *w = j->w;
    pthread_mutex_lock(&w->mu);
    j->start_seq = ++w->seq;
    if (w->order[0])
        strcat(w->order, " ");
    strcat(w->order, j->name);
    if (j->pool >= 0) {
        w->in_use[j->pool] += j->slots;
        if (w->in_use[j->pool] > w->max_in_use[j->pool])
            w->max_in_use[j->pool] = w->in_use[j->pool];
    }
    if (++w->running > w->max_running)
        w->max_running = w->running;
    pthread_mutex_unlock(&w->mu);
    if (j->sleep_ms)
        sleep_ms(j->sleep_ms);
    pthread_mutex_lock(&w->mu);
    if (j->pool >= 0)
        w->in_use[j->pool] -= j->slots;
    w->running--;
    j->end_seq = ++w->seq;
    pthread_mutex_unlock(&w->mu);
    if (j->fail_once && !atomic_exchange(&j->failed, true))
        return dp_job_fail(job, true, "%s fails once", j->name);
    return DP_READY;
}

static world_t *world_new(void)
{
    world_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    pthread_mutex_init(&w->mu, NULL);
    return w;
}

static void world_free(world_t *w)
{
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static const char *pool_names[] = {"db", "gpu", "net", "x"};

/* Adds job `name` (pool index or -1, its slots, sleep, priority). */
static pj_t *add(dp_graph_t *g, world_t *w, const char *name, int pool, unsigned slots, unsigned sleep, int prio)
{
    assert_true(w->n < MAXJ);
    pj_t *j = &w->jobs[w->n++];
    j->w = w;
    snprintf(j->name, sizeof j->name, "%s", name);
    j->pool = pool;
    j->slots = slots;
    j->sleep_ms = sleep;
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = j->name;
    spec.run = pj_run;
    spec.user = j;
    if (pool >= 0) {
        spec.pool = pool_names[pool];
        spec.pool_slots = slots;
    }
    spec.priority = prio;
    char err[256];
    int rc = dp_graph_add_job(g, &spec, err, sizeof err);
    if (rc != DP_OK)
        fail_msg("add %s: %s", name, err);
    return j;
}

static pj_t *find(world_t *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->jobs[i].name, name) == 0)
            return &w->jobs[i];
    fail_msg("no job %s", name);
    return NULL;
}

static dp_result_t *run_j(dp_graph_t *g, unsigned workers, bool fail_fast)
{
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = workers;
    o.fail_fast = fail_fast;
    o.timeout_ms = 60000;
    char err[256];
    dp_result_t *r = dp_graph_run(g, &o, err, sizeof err);
    if (!r)
        fail_msg("run: %s", err);
    return r;
}

static int64_t wait_of(const dp_result_t *r, const char *name)
{
    long id = dp_graph_job_id(dp_result_graph(r), name);
    assert_true(id >= 0);
    return dp_result_pool_wait_ms(r, (size_t)id);
}

/* 16 jobs of pool db (2 slots) and 8 of none, 8 workers: never more than 2
 * db jobs at once, the others alongside; db jobs that waited say so. */
static void test_pool_bounds_its_jobs(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256];
    assert_int_equal(dp_graph_add_pool(g, "db", 2, err, sizeof err), DP_OK);
    char name[32];
    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof name, "db%02d", i);
        add(g, w, name, 0, 1, 15, 0);
    }
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "free%02d", i);
        add(g, w, name, -1, 1, 15, 0);
    }
    dp_result_t *r = run_j(g, 8, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(w->max_in_use[0], 2);
    assert_true(w->max_running > 2); /* the free jobs ran beside them */
    assert_true(w->max_running <= 8);
    int64_t most = 0;
    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof name, "db%02d", i);
        int64_t ms = wait_of(r, name);
        assert_true(ms >= 0);
        if (ms > most)
            most = ms;
    }
    /* The last pair waited for seven pairs of 15 ms before them. */
    assert_true(most >= 50);
    assert_int_equal(wait_of(r, "free00"), -1);
    unsigned slots = 0;
    assert_string_equal(dp_graph_job_pool(g, (size_t)dp_graph_job_id(g, "db03"), &slots), "db");
    assert_int_equal(slots, 1);
    assert_null(dp_graph_job_pool(g, (size_t)dp_graph_job_id(g, "free03"), NULL));
    assert_int_equal(dp_graph_pool_count(g), 1);
    assert_string_equal(dp_graph_pool_name(g, 0, &slots), "db");
    assert_int_equal(slots, 2);
    assert_null(dp_graph_pool_name(g, 1, NULL));
    dp_result_free(r);
    /* Run again: the same bounds (the scheduler's scratch came back empty). */
    memset(w->max_in_use, 0, sizeof w->max_in_use);
    r = run_j(g, 8, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(w->max_in_use[0], 2);
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* Jobs take several slots: the slots in use never exceed the pool's, and a
 * job of 3 slots in a pool of 3 runs alone in it. 12 jobs, with
 * dependencies. */
static void test_pool_slots_add_up(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256];
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "g%02d", i);
        add(g, w, name, 1, 1 + (unsigned)(i % 3), 10, 0);
    }
    add(g, w, "after", 1, 3, 5, 0);
    add(g, w, "plain", -1, 1, 5, 0);
    assert_int_equal(dp_graph_add_dep(g, "after", "g00"), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "after", "g05"), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "plain", "after"), DP_OK);
    /* A pool added after its jobs is found all the same. */
    assert_int_equal(dp_graph_add_pool(g, "gpu", 3, err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_add_pool(g, "gpu", 3, err, sizeof err), DP_EDUPLICATE);
    assert_int_equal(dp_graph_add_pool(g, "zero", 0, err, sizeof err), DP_EINVAL);
    dp_result_t *r = run_j(g, 6, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_true(w->max_in_use[1] <= 3);
    assert_true(w->max_in_use[1] >= 2);
    pj_t *after = find(w, "after");
    assert_true(after->start_seq > find(w, "g00")->end_seq);
    assert_true(find(w, "plain")->start_seq > after->end_seq);
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* 2 workers, pool db of 1 slot: six db jobs (the first names) and six
 * others. The db jobs waiting for the slot hold no worker: the second
 * worker runs the other jobs meanwhile, so the first of them starts before
 * the second db job ends (were a waiting job to hold a worker, both would
 * be taken by db jobs until the pool's line emptied). */
static void test_pool_wait_holds_no_worker(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256];
    assert_int_equal(dp_graph_add_pool(g, "db", 1, err, sizeof err), DP_OK);
    char name[32];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "a_db%d", i);
        add(g, w, name, 0, 1, 20, 0);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "b_free%d", i);
        add(g, w, name, -1, 1, 20, 0);
    }
    dp_result_t *r = run_j(g, 2, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(w->max_in_use[0], 1);
    unsigned second_db_end = UINT32_MAX, first_free_start = UINT32_MAX;
    unsigned db_ends[6];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "a_db%d", i);
        db_ends[i] = find(w, name)->end_seq;
        snprintf(name, sizeof name, "b_free%d", i);
        unsigned s = find(w, name)->start_seq;
        if (s < first_free_start)
            first_free_start = s;
    }
    /* The second db job to end. */
    unsigned lo = UINT32_MAX, lo2 = UINT32_MAX;
    for (int i = 0; i < 6; i++) {
        if (db_ends[i] < lo) {
            lo2 = lo;
            lo = db_ends[i];
        } else if (db_ends[i] < lo2) {
            lo2 = db_ends[i];
        }
    }
    second_db_end = lo2;
    assert_true(first_free_start < second_db_end);
    assert_int_equal(w->max_running, 2);
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* One worker, 12 independent jobs with priorities: they start highest
 * first; equal priorities in the order they became ready (name order). */
static void test_priority_order(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    static const int prio[12] = {3, -1, 7, 0, 0, 11, 5, -4, 2, 9, 7, 1};
    char name[32];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "p%02d", i);
        add(g, w, name, -1, 1, 0, prio[i]);
    }
    dp_result_t *r = run_j(g, 1, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_string_equal(w->order, "p05 p09 p02 p10 p06 p00 p08 p11 p03 p04 p01 p07");
    assert_int_equal(dp_graph_job_priority(g, (size_t)dp_graph_job_id(g, "p07")), -4);
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* Priorities among jobs made ready later, and the critical path among
 * equal priorities: one worker; root r releases 10 jobs at once, among them
 * the head of a chain (longest path) and one of priority 1. The jobs take
 * a millisecond: a worker whose jobs are shorter than 20 us takes several
 * ready jobs at a time (pool.c), and a job made ready meanwhile waits for
 * them. */
static void test_priority_then_path(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    add(g, w, "r", -1, 1, 1, 0);
    char name[32];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "a%d", i);
        add(g, w, name, -1, 1, 1, 0);
        assert_int_equal(dp_graph_add_dep(g, name, "r"), DP_OK);
    }
    add(g, w, "b_urgent", -1, 1, 1, 1);
    assert_int_equal(dp_graph_add_dep(g, "b_urgent", "r"), DP_OK);
    add(g, w, "c1", -1, 1, 1, 0);
    add(g, w, "c2", -1, 1, 1, 0);
    add(g, w, "c3", -1, 1, 1, 0);
    assert_int_equal(dp_graph_add_dep(g, "c1", "r"), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "c2", "c1"), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "c3", "c2"), DP_OK);
    dp_result_t *r = run_j(g, 1, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    /* b_urgent (priority 1), then c1 (path 3), whose c2 (path 2) beats the
     * a's (path 1), and so on. */
    assert_string_equal(w->order, "r b_urgent c1 c2 a0 a1 a2 a3 a4 a5 a6 a7 c3");
    assert_int_equal(dp_graph_job_critical_path(g, (size_t)dp_graph_job_id(g, "r")), 4);
    assert_int_equal(dp_graph_job_critical_path(g, (size_t)dp_graph_job_id(g, "c2")), 2);
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* A pool's line mixes roots that waited from the start with jobs made
 * ready later (prio.c keeps the roots apart, in their order): a later job
 * of a higher priority passes waiting roots, one of the same level comes
 * after them, in a run's order as it was before the roots were kept
 * apart. Pool db of 1 slot, 2 workers (so it bounds the run), 12
 * jobs: root r0 (priority 3, the longest path) and roots of priorities 2,
 * 1 and 0; r0's successors have priorities 9, 2, 1 and 0. Twice: the
 * second run starts with the first one's scratch. */
static void test_pool_line_roots_and_later(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256];
    assert_int_equal(dp_graph_add_pool(g, "db", 1, err, sizeof err), DP_OK);
    add(g, w, "l0a", 0, 1, 1, 0);
    add(g, w, "l1a", 0, 1, 1, 1);
    add(g, w, "l2a", 0, 1, 1, 2);
    add(g, w, "l0b", 0, 1, 1, 0);
    add(g, w, "l1b", 0, 1, 1, 1);
    add(g, w, "r0", 0, 1, 1, 3);
    add(g, w, "l2b", 0, 1, 1, 2);
    add(g, w, "l1c", 0, 1, 1, 1);
    static const char *succ[4] = {"x0", "x1", "x2", "x9"};
    static const int sprio[4] = {0, 1, 2, 9};
    for (int i = 0; i < 4; i++) {
        add(g, w, succ[i], 0, 1, 1, sprio[i]);
        assert_int_equal(dp_graph_add_dep(g, succ[i], "r0"), DP_OK);
    }
    for (int round = 0; round < 2; round++) {
        w->order[0] = '\0';
        memset(w->max_in_use, 0, sizeof w->max_in_use);
        dp_result_t *r = run_j(g, 2, true);
        assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
        assert_int_equal(w->max_in_use[0], 1);
        /* r0's slot goes to the line's head (l2a) before its successors
         * join the line (dp__sched_step). */
        assert_string_equal(w->order, "r0 l2a x9 l2b x2 l1a l1b l1c x1 l0a l0b x0");
        /* The roots waited from the run's start: l0b for the ten jobs of a
         * millisecond or more before it. */
        assert_int_equal(wait_of(r, "r0"), 0);
        assert_true(wait_of(r, "l0b") >= 9);
        assert_true(wait_of(r, "l2a") >= 1);
        dp_result_free(r);
    }
    dp_graph_free(g);
    world_free(w);
}

/* The plain case (no pool, no priority): the roots start longest path first
 * and a worker goes on with its ready successor of the longest path. */
static void test_plain_critical_path_first(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char name[32];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "short%d", i);
        add(g, w, name, -1, 1, 0, 0);
    }
    /* z0 -> z1 -> z2 -> z3, and z0 -> leaf (named before z1). */
    add(g, w, "z0", -1, 1, 0, 0);
    add(g, w, "z0_leaf", -1, 1, 0, 0);
    add(g, w, "z1", -1, 1, 0, 0);
    add(g, w, "z2", -1, 1, 0, 0);
    add(g, w, "z3", -1, 1, 0, 0);
    assert_int_equal(dp_graph_add_dep(g, "z0_leaf", "z0"), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "z1", "z0"), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "z2", "z1"), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "z3", "z2"), DP_OK);
    dp_result_t *r = run_j(g, 1, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    /* FIFO by name would start short0 and run z0_leaf after z0. */
    assert_string_equal(w->order, "z0 z1 z2 z3 short0 short1 short2 short3 short4 short5 z0_leaf");
    assert_int_equal(dp_graph_job_critical_path(g, (size_t)dp_graph_job_id(g, "z0")), 4);
    assert_int_equal(dp_graph_job_critical_path(g, (size_t)dp_graph_job_id(g, "short3")), 1);
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* A chain (one root, no job with two successors) reads no path in a run:
 * the run leaves them unmade (a chain's first run made and faulted in a
 * path per job for nothing), and dp_graph_job_critical_path makes them when
 * asked. Both ways validate takes: jobs in dependency order (ids are a
 * topological order) and the reverse (Kahn's order). A branch makes the
 * next run make them. */
static void test_chain_paths_made_when_read(void **state)
{
    (void)state;
    for (int reverse = 0; reverse < 2; reverse++) {
        world_t *w = world_new();
        dp_graph_t *g = dp_graph_new();
        /* The chain's k-th job is c<k>, or c<7-k>: names sort in the
         * chain's order, or against it (Kahn's pass then orders them). */
        char name[8][8], order[128] = "";
        for (int k = 0; k < 8; k++) {
            snprintf(name[k], sizeof name[k], "c%d", reverse ? 7 - k : k);
            add(g, w, name[k], -1, 1, 0, 0);
            if (k > 0)
                assert_int_equal(dp_graph_add_dep(g, name[k], name[k - 1]), DP_OK);
            strcat(order, k ? " " : "");
            strcat(order, name[k]);
        }
        dp_result_t *r = run_j(g, 2, true);
        assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
        assert_string_equal(w->order, order);
        dp_result_free(r);
        assert_non_null(g->sched);
        assert_int_equal(g->sched->ids_topo, !reverse);
        assert_true(g->sched->stale);
        assert_null(g->sched->rank);
        for (int k = 0; k < 8; k++)
            assert_int_equal(dp_graph_job_critical_path(g, (size_t)dp_graph_job_id(g, name[k])), 8 - k);
        assert_false(g->sched->stale);
        /* A branch at the root, to d0 -> ... -> d8 (named last, so after
         * the chain's second job in the root's successors): its path is
         * the longer, and it runs first on the one worker. */
        char d[8], dep[8];
        for (int k = 0; k < 9; k++) {
            snprintf(d, sizeof d, "d%d", k);
            if (k)
                snprintf(dep, sizeof dep, "d%d", k - 1);
            else
                snprintf(dep, sizeof dep, "%s", name[0]);
            add(g, w, d, -1, 1, 0, 0);
            assert_int_equal(dp_graph_add_dep(g, d, dep), DP_OK);
        }
        char want[256];
        snprintf(want, sizeof want, "%s d0 d1 d2 d3 d4 d5 d6 d7 d8%s", name[0], order + strlen(name[0]));
        w->order[0] = '\0';
        r = run_j(g, 1, true);
        assert_string_equal(w->order, want);
        assert_non_null(g->sched->rank);
        assert_false(g->sched->stale);
        dp_result_free(r);
        dp_graph_free(g);
        world_free(w);
    }
}

/* Expected durations weight the path: by jobs the chain x0..x3 is longer,
 * by the durations given y (100 ms) is. */
static void test_expected_durations(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    add(g, w, "x0", -1, 1, 0, 0);
    add(g, w, "x1", -1, 1, 0, 0);
    add(g, w, "x2", -1, 1, 0, 0);
    add(g, w, "x3", -1, 1, 0, 0);
    assert_int_equal(dp_graph_add_dep(g, "x1", "x0"), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "x2", "x1"), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "x3", "x2"), DP_OK);
    add(g, w, "y", -1, 1, 0, 0);
    char name[32];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "w%d", i);
        add(g, w, name, -1, 1, 0, 0);
    }
    assert_int_equal(dp_graph_set_expected_ms(g, 0, 5), DP_EINVAL); /* before validate */
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    dp_result_t *r = run_j(g, 1, true);
    assert_string_equal(w->order, "x0 x1 x2 x3 w0 w1 w2 w3 w4 w5 y");
    dp_result_free(r);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "x%d", i);
        assert_int_equal(dp_graph_set_expected_ms(g, (size_t)dp_graph_job_id(g, name), 10), DP_OK);
    }
    assert_int_equal(dp_graph_set_expected_ms(g, (size_t)dp_graph_job_id(g, "y"), 100), DP_OK);
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "w%d", i);
        assert_int_equal(dp_graph_set_expected_ms(g, (size_t)dp_graph_job_id(g, name), 1), DP_OK);
    }
    assert_int_equal(dp_graph_set_expected_ms(g, 999, 1), DP_ENOTFOUND);
    w->order[0] = '\0';
    r = run_j(g, 1, true);
    assert_string_equal(w->order, "y x0 x1 x2 x3 w0 w1 w2 w3 w4 w5");
    assert_int_equal(dp_graph_job_critical_path(g, (size_t)dp_graph_job_id(g, "x0")), 40);
    assert_int_equal(dp_graph_job_critical_path(g, (size_t)dp_graph_job_id(g, "y")), 100);
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* Validate refuses a job naming a pool the graph lacks, or asking for more
 * slots than its pool has, naming the job, the pool and the fix. */
static void test_validate_refuses(void **state)
{
    (void)state;
    world_t *w = world_new();
    char err[512];
    dp_graph_t *g = dp_graph_new();
    assert_int_equal(dp_graph_add_pool(g, "db", 2, err, sizeof err), DP_OK);
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "j%d", i);
        add(g, w, name, i == 7 ? 1 : -1, 1, 0, 0);
    }
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ENOTFOUND);
    assert_non_null(strstr(err, "job \"j7\" asks for pool \"gpu\""));
    assert_non_null(strstr(err, "dp_graph_add_pool"));
    assert_null(dp_graph_run(g, NULL, err, sizeof err));
    dp_graph_free(g);

    g = dp_graph_new();
    assert_int_equal(dp_graph_add_pool(g, "db", 2, err, sizeof err), DP_OK);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "k%d", i);
        add(g, w, name, 0, i == 4 ? 3 : 1, 0, 0);
    }
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_EINVAL);
    assert_non_null(strstr(err, "job \"k4\" asks for 3 slots of pool \"db\", which has 2"));
    dp_graph_free(g);

    /* pool_slots 0 with a pool: refused when added. */
    g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "z";
    spec.run = pj_run;
    spec.pool = "db";
    spec.pool_slots = 0;
    assert_int_equal(dp_graph_add_job(g, &spec, err, sizeof err), DP_EINVAL);
    dp_graph_free(g);
    world_free(w);
}

/* A 1.0-sized spec (a program built against the 1.0 header) gets no pool
 * and priority 0, whatever lies past its end. */
static void test_old_spec_has_no_pool(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    pj_t *j = &w->jobs[w->n++];
    j->w = w;
    j->pool = -1;
    snprintf(j->name, sizeof j->name, "old");
    dp_job_spec_t spec;
    memset(&spec, 0xAB, sizeof spec); /* garbage past the 1.0 fields */
    size_t size10 = offsetof(dp_job_spec_t, limits) + sizeof(dp_limits_t);
    dp_job_spec_init_sized(&spec, size10);
    spec.name = j->name;
    spec.run = pj_run;
    spec.user = j;
    char err[256];
    assert_int_equal(dp_graph_add_job_sized(g, &spec, size10, err, sizeof err), DP_OK);
    assert_null(dp_graph_job_pool(g, 0, NULL));
    assert_int_equal(dp_graph_job_priority(g, 0), 0);
    dp_result_t *r = run_j(g, 2, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(dp_result_pool_wait_ms(r, 0), -1);
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* Fail-fast while jobs wait for their pool: they stay unknown, and the next
 * run of the same graph starts from empty queues and full pools. 14 jobs. */
static void test_pool_fail_fast_then_rerun(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256];
    assert_int_equal(dp_graph_add_pool(g, "net", 1, err, sizeof err), DP_OK);
    char name[32];
    pj_t *first = add(g, w, "a_first", 2, 1, 10, 5);
    first->fail_once = true;
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "n%02d", i);
        add(g, w, name, 2, 1, 5, 0);
    }
    add(g, w, "tail", -1, 1, 0, 0);
    assert_int_equal(dp_graph_add_dep(g, "tail", "n11"), DP_OK);
    dp_result_t *r = run_j(g, 4, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    tu_expect(r, "a_first=failed n05=unknown n11=unknown tail=unknown");
    assert_int_equal(w->max_in_use[2], 1);
    assert_int_equal(wait_of(r, "a_first"), 0);
    assert_int_equal(wait_of(r, "tail"), -1);
    dp_result_free(r);
    r = run_j(g, 4, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(w->max_in_use[2], 1);
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "n%02d", i);
        assert_true(wait_of(r, name) >= 0);
    }
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* Keep going: a failed pool job gives its slots back (the others of its
 * pool still run); a pool job whose readiness poll parks keeps its slot
 * while it waits. */
static int polls;
static dp_outcome_t poll_check(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return __atomic_add_fetch(&polls, 1, __ATOMIC_SEQ_CST) >= 3 ? DP_READY : DP_NOT_READY;
}

static void test_pool_keep_going_and_parked(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256];
    assert_int_equal(dp_graph_add_pool(g, "db", 1, err, sizeof err), DP_OK);
    char name[32];
    pj_t *bad = add(g, w, "d00", 0, 1, 5, 3);
    bad->fail_once = true;
    for (int i = 1; i < 10; i++) {
        snprintf(name, sizeof name, "d%02d", i);
        add(g, w, name, 0, 1, 2, 0);
    }
    /* A check-only job of pool db polling every 20 ms, ready at the third
     * probe, of the highest priority: it holds the slot while parked. */
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "poller";
    spec.check = poll_check;
    spec.readiness.period_ms = 20;
    spec.pool = "db";
    spec.priority = 2;
    assert_int_equal(dp_graph_add_job(g, &spec, err, sizeof err), DP_OK);
    polls = 0;
    dp_result_t *r = run_j(g, 3, false);
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    tu_expect(r, "d00=failed d01=success d09=success poller=success");
    assert_int_equal(w->max_in_use[0], 1);
    /* The poller went after d00 (priority 3) and kept the slot for ~40 ms:
     * every other db job waited for it. */
    for (int i = 1; i < 10; i++) {
        snprintf(name, sizeof name, "d%02d", i);
        assert_true(find(w, name)->start_seq > bad->end_seq);
        assert_true(wait_of(r, name) >= 30);
    }
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* Reused jobs (dp_run_opts_t.reused) in a run with a pool: the jobs ready
 * at the start go through the scheduler like roots, so the pool's bound
 * holds and every job that is not reused runs once. 6 reused roots of pool
 * db, each with a child in db, 2 slots, 6 workers. */
static void test_reused_jobs_with_a_pool(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256];
    assert_int_equal(dp_graph_add_pool(g, "db", 2, err, sizeof err), DP_OK);
    char name[32], dep[32];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "r%02d", i);
        add(g, w, name, 0, 1, 5, 0);
        snprintf(dep, sizeof dep, "c%02d", i);
        add(g, w, dep, 0, 1, 15, 0);
        assert_int_equal(dp_graph_add_dep(g, dep, name), DP_OK);
    }
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    uint32_t reused[6];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "r%02d", i);
        reused[i] = (uint32_t)dp_graph_job_id(g, name);
    }
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = 6;
    o.timeout_ms = 60000;
    o.reused = reused;
    o.nreused = 6;
    dp_result_t *r = dp_graph_run(g, &o, err, sizeof err);
    if (!r)
        fail_msg("run: %s", err);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(w->max_in_use[0], 2);
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "r%02d", i);
        assert_int_equal(find(w, name)->start_seq, 0); /* never ran */
        assert_true(dp_result_find(r, name)->reused);
        snprintf(name, sizeof name, "c%02d", i);
        assert_true(find(w, name)->start_seq > 0);
        assert_int_equal(dp_result_find(r, name)->status, DP_STATUS_SUCCESS);
        assert_false(dp_result_find(r, name)->reused);
    }
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* Adds job `name` with a trigger rule (and continue_on_failure) in pool
 * `pool` (-1: none), depending on deps (comma-separated, may be NULL). */
static pj_t *add_ruled(dp_graph_t *g, world_t *w, const char *name, int pool, dp_run_if_t rule, bool tolerate,
                       bool fails, const char *deps)
{
    assert_true(w->n < MAXJ);
    pj_t *j = &w->jobs[w->n++];
    j->w = w;
    snprintf(j->name, sizeof j->name, "%s", name);
    j->pool = pool;
    j->slots = 1;
    j->sleep_ms = 5;
    j->fail_once = fails;
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = j->name;
    spec.run = pj_run;
    spec.user = j;
    if (pool >= 0) {
        spec.pool = pool_names[pool];
        spec.pool_slots = 1;
    }
    spec.run_if = rule;
    spec.continue_on_failure = tolerate;
    char err[256];
    if (dp_graph_add_job(g, &spec, err, sizeof err) != DP_OK)
        fail_msg("add %s: %s", name, err);
    if (deps) {
        char *copy = strdup(deps), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            assert_int_equal(dp_graph_add_dep(g, name, t), DP_OK);
        free(copy);
    }
    return j;
}

/* Trigger rules in a run with a pool (the ordered run): a tolerated failure
 * lets its successors run, an all_done cleanup and an any_failed handler
 * run once their dependencies ended, a handler with no failed dependency
 * is skipped; the pool's bound holds throughout. 12 jobs, pool db of 1
 * slot, 4 workers, fail-fast on. */
static void test_rules_with_a_pool(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256];
    assert_int_equal(dp_graph_add_pool(g, "db", 1, err, sizeof err), DP_OK);
    add_ruled(g, w, "a", 0, DP_RUN_IF_ALL_SUCCESS, false, false, NULL);
    add_ruled(g, w, "b", 0, DP_RUN_IF_ALL_SUCCESS, true, true, "a"); /* fails, tolerated */
    add_ruled(g, w, "c", 0, DP_RUN_IF_ALL_SUCCESS, false, false, "b");
    add_ruled(g, w, "d", -1, DP_RUN_IF_ALL_SUCCESS, false, false, "c");
    add_ruled(g, w, "e", 0, DP_RUN_IF_ANY_FAILED, false, false, "b"); /* b failed: runs */
    add_ruled(g, w, "f", 0, DP_RUN_IF_ANY_FAILED, false, false, "c"); /* c succeeded: skipped */
    add_ruled(g, w, "g", -1, DP_RUN_IF_ALL_SUCCESS, false, false, "f");
    add_ruled(g, w, "h", 0, DP_RUN_IF_ALL_DONE, false, false, "d,e,g");
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", i);
        add_ruled(g, w, name, 0, DP_RUN_IF_ALL_SUCCESS, false, false, "a");
    }
    dp_result_t *r = run_j(g, 4, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(w->max_in_use[0], 1);
    const char *ran[] = {"a", "b", "c", "d", "e", "h", "x0", "x1", "x2", "x3"};
    for (size_t i = 0; i < sizeof ran / sizeof *ran; i++)
        assert_true(find(w, ran[i])->start_seq > 0);
    assert_int_equal(dp_result_find(r, "b")->status, DP_STATUS_FAILED);
    assert_int_equal(dp_result_find(r, "e")->status, DP_STATUS_SUCCESS);
    assert_int_equal(dp_result_find(r, "h")->status, DP_STATUS_SUCCESS);
    assert_int_equal(find(w, "f")->start_seq, 0);
    assert_int_equal(dp_result_find(r, "f")->status, DP_STATUS_SKIPPED);
    assert_int_equal(dp_result_find(r, "g")->status, DP_STATUS_SKIPPED);
    assert_true(find(w, "h")->start_seq > find(w, "d")->end_seq);
    assert_true(find(w, "h")->start_seq > find(w, "e")->end_seq);
    dp_result_free(r);
    dp_graph_free(g);
    world_free(w);
}

/* A pool that cannot bound the run (max_concurrent_jobs times the most
 * slots one of its jobs asks for fit in it) is not scheduled (prio.h,
 * dp__sched_needed): its jobs run as in a graph without pools, and say
 * they did not wait; one that can is, with the same jobs and one worker
 * more: the slots of 2-slot jobs add up past the pool's without it. Pool
 * net of 4 slots: 8 jobs of 2 slots and 8 of 1, in two rows of 8 (each
 * job of the second after one of the first), and 4 jobs of no pool. */
static void test_unbound_pool(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256], name[32], dep[32];
    assert_int_equal(dp_graph_add_pool(g, "net", 4, err, sizeof err), DP_OK);
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "a%02d", i);
        add(g, w, name, 2, 2, 10, 0);
        snprintf(dep, sizeof dep, "b%02d", i);
        add(g, w, dep, 2, 1, 5, 0);
        assert_int_equal(dp_graph_add_dep(g, dep, name), DP_OK);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "free%02d", i);
        add(g, w, name, -1, 1, 5, 0);
    }
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_false(dp__sched_needed(g, 1));
    assert_false(dp__sched_needed(g, 2));
    assert_true(dp__sched_needed(g, 3));
    for (int round = 0; round < 2; round++) {
        memset(w->max_in_use, 0, sizeof w->max_in_use);
        w->max_running = 0;
        dp_result_t *r = run_j(g, 2, true);
        assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
        assert_true(w->max_in_use[2] <= 4);
        for (int i = 0; i < 8; i++) {
            snprintf(name, sizeof name, "a%02d", i);
            assert_int_equal(wait_of(r, name), 0);
            snprintf(name, sizeof name, "b%02d", i);
            assert_int_equal(wait_of(r, name), 0);
        }
        assert_int_equal(wait_of(r, "free00"), -1);
        dp_result_free(r);
    }
    /* 3 workers: three jobs of 2 slots could run at once, so the pool is
     * scheduled and bounds them to two. */
    memset(w->max_in_use, 0, sizeof w->max_in_use);
    w->max_running = 0;
    dp_result_t *r = run_j(g, 3, true);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_true(w->max_in_use[2] <= 4);
    assert_true(w->max_running >= 2);
    dp_result_free(r);
    /* A priority makes the run ordered whatever the pools. */
    add(g, w, "urgent", -1, 1, 1, 5);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_true(dp__sched_needed(g, 1));
    dp_graph_free(g);
    world_free(w);
}

/* A run of pool lines (a pool that can bound the run, no priority: prio.h)
 * under contention: 4 workers, pool db of 2 slots, one job asking for both,
 * 60 jobs in chains from 20 roots (the roots' pool jobs of a millisecond,
 * so that they overlap), 30 rounds. The slots
 * are never exceeded, every job runs, and each reports its pool wait. */
static void test_pool_lines_contended(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256], name[32], dep[32];
    assert_int_equal(dp_graph_add_pool(g, "db", 2, err, sizeof err), DP_OK);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "r%02d", i);
        add(g, w, name, 0, i == 7 ? 2 : 1, 1, 0);
        for (int k = 0; k < 2; k++) {
            snprintf(dep, sizeof dep, "c%02d_%d", i, k);
            add(g, w, dep, k ? -1 : 0, 1, 0, 0);
            assert_int_equal(dp_graph_add_dep(g, dep, name), DP_OK);
            snprintf(name, sizeof name, "%s", dep);
        }
    }
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_true(dp__sched_needed(g, 4));
    for (int round = 0; round < 30; round++) {
        memset(w->max_in_use, 0, sizeof w->max_in_use);
        w->order[0] = '\0';
        dp_result_t *r = run_j(g, 4, true);
        assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
        assert_true(w->max_in_use[0] <= 2);
        for (int i = 0; i < 20; i++) {
            snprintf(name, sizeof name, "r%02d", i);
            assert_true(wait_of(r, name) >= 0);
            snprintf(name, sizeof name, "c%02d_1", i);
            assert_int_equal(wait_of(r, name), -1);
        }
        dp_result_free(r);
    }
    dp_graph_free(g);
    world_free(w);
}

/* A worker that holds a job's slots (its next job may take them) and then
 * takes from the queue a job the line drained, which has slots of its own:
 * the held slots go back to the pool, not to that job (they were lost, and
 * the jobs that later joined the line ended unknown when the run ended).
 * The steps of pool.c's lines_start and lines_end, in that order, on the
 * scheduler itself: pool db of 2 slots, jobs a, b, c of 1. */
static void test_pool_lines_pass_to_a_drained_job(void **state)
{
    (void)state;
    world_t *w = world_new();
    dp_graph_t *g = dp_graph_new();
    char err[256];
    assert_int_equal(dp_graph_add_pool(g, "db", 2, err, sizeof err), DP_OK);
    add(g, w, "a", 0, 1, 0, 0);
    add(g, w, "b", 0, 1, 0, 0);
    add(g, w, "c", 0, 1, 0, 0);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_true(dp__sched_needed(g, 4));
    assert_true(dp__sched_lines_only(g));
    uint32_t a = (uint32_t)dp_graph_job_id(g, "a"), b = (uint32_t)dp_graph_job_id(g, "b"),
             c = (uint32_t)dp_graph_job_id(g, "c");
    dp_sched_t *s = dp__sched_new(g, false);
    assert_non_null(s);
    assert_true(dp__sched_pool_take(s, a)); /* a and c run */
    assert_true(dp__sched_pool_take(s, c));
    assert_false(dp__sched_pool_take(s, b)); /* b joins the line */
    uint32_t ids[4];
    /* c ends: its slot goes to b, drained (and published). */
    assert_int_equal(dp__sched_pool_drain(s, dp__sched_pool_give(s, c), ids, 4), 1);
    assert_int_equal(ids[0], b);
    /* a ends, nobody waits: its worker holds a's slot, then takes b from
     * the queue. b has its slot: a's is not passed to it. */
    assert_true(dp__sched_pool_unwaited(s, a));
    assert_false(dp__sched_pool_pass(s, a, b));
    assert_int_equal(dp__sched_pool_drain(s, dp__sched_pool_give(s, a), ids, 4), 0);
    assert_true(dp__sched_pool_take(s, b));
    assert_int_equal(dp__sched_pool_drain(s, dp__sched_pool_give(s, b), ids, 4), 0);
    assert_true(dp__sched_settled(s));
    dp__sched_free(s);
    dp_graph_free(g);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_bounds_its_jobs),       cmocka_unit_test(test_pool_slots_add_up),
        cmocka_unit_test(test_pool_wait_holds_no_worker),  cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_priority_then_path),         cmocka_unit_test(test_plain_critical_path_first),
        cmocka_unit_test(test_expected_durations),         cmocka_unit_test(test_validate_refuses),
        cmocka_unit_test(test_old_spec_has_no_pool),       cmocka_unit_test(test_pool_fail_fast_then_rerun),
        cmocka_unit_test(test_pool_keep_going_and_parked), cmocka_unit_test(test_reused_jobs_with_a_pool),
        cmocka_unit_test(test_rules_with_a_pool),          cmocka_unit_test(test_unbound_pool),
        cmocka_unit_test(test_pool_line_roots_and_later),  cmocka_unit_test(test_pool_lines_contended),
        cmocka_unit_test(test_chain_paths_made_when_read), cmocka_unit_test(test_pool_lines_pass_to_a_drained_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
