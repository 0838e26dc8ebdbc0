/* test_pool.c - running graphs on the worker pool (host/src/pool.c and
 * host/src/job.c): every row of DESIGN.md "Execution semantics" and every
 * behaviour of the seed, on tiny graphs and on graphs of 10+ jobs.
 *
 * Timing assertions are inequalities with generous margins; no test sleeps
 * longer than its point needs. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "store.h"
#include "testutil.h"

static dp_run_opts_t opts_of(unsigned conc, uint64_t timeout_ms, bool fail_fast)
{
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = conc;
    o.timeout_ms = timeout_ms;
    o.fail_fast = fail_fast;
    o.seed = 42;
    return o;
}

static dp_outcome_t noop_job(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return DP_READY;
}

static unsigned runs_of(tu_script_t *s, const char *name)
{
    return atomic_load(&tu_job(s, name)->runs);
}

static void msleep(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Cancels a context from another thread once the script has seen `running`
 * jobs at once and (if job is set) that job's first call has returned. */
typedef struct canceller {
    tu_script_t *s;
    dp_ctx_t *ctx;
    int running;
    const char *job;
    unsigned delay_ms;
    pthread_t thread;
} canceller_t;

static void *canceller_main(void *p)
{
    canceller_t *c = p;
    uint64_t until = dp_test_now_ms() + 5000;
    while (dp_test_now_ms() < until) {
        bool ok = atomic_load(&c->s->max_running) >= c->running;
        if (c->job)
            ok = ok && atomic_load(&tu_job(c->s, c->job)->end_seq) != 0;
        if (ok)
            break;
        msleep(1);
    }
    if (c->delay_ms)
        msleep(c->delay_ms);
    dp_ctx_cancel(c->ctx);
    return NULL;
}

static void canceller_start(canceller_t *c)
{
    assert_int_equal(pthread_create(&c->thread, NULL, canceller_main, c), 0);
}

/* ------------------------------------------------------------------------ */
/* Basics                                                                    */
/* ------------------------------------------------------------------------ */

static void test_empty_graph(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    dp_result_t *r = tu_run(g, NULL);
    assert_int_equal(dp_result_job_count(r), 0);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_true(dp_result_is_ready(r));
    assert_false(dp_result_is_failed(r));
    assert_false(dp_result_timed_out(r));
    assert_null(dp_result_first_error(r));
    assert_int_equal(dp_result_first_not_ready(r), -1);
    assert_int_equal(dp_result_requeue_after_ms(r), -1);
    const dp_frontier_t *f;
    assert_int_equal(dp_result_frontiers(r, &f), 0);
    assert_int_equal(dp_result_boundary(r)->count, 0);
    dp_result_free(r);
    dp_graph_free(g);
}

static void test_single_job(void **state)
{
    (void)state;
    static const struct {
        const char *words;
        dp_status_t status;
        dp_run_outcome_t outcome;
    } cases[] = {
        {"ready", DP_STATUS_SUCCESS, DP_RUN_SUCCESS},
        {"not_ready", DP_STATUS_NOT_READY, DP_RUN_NOT_READY},
        {"error", DP_STATUS_FAILED, DP_RUN_FAILED},
        {"permanent", DP_STATUS_FAILED, DP_RUN_FAILED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_script_t *s = tu_script_new();
        tu_set(s, "only", cases[i].words);
        dp_graph_t *g = tu_graph("only", s);
        dp_result_t *r = tu_run(g, NULL);
        const dp_job_result_t *jr = tu_jr(r, "only");
        assert_int_equal(jr->status, cases[i].status);
        assert_int_equal(dp_result_outcome(r), cases[i].outcome);
        assert_int_equal(jr->attempts, 1);
        assert_int_equal(runs_of(s, "only"), 1);
        assert_true(jr->start_ms >= 0);
        assert_true(jr->duration_ms >= 0);
        if (cases[i].status == DP_STATUS_FAILED) {
            assert_non_null(jr->error);
            assert_string_equal(dp_result_first_error(r), jr->error);
            assert_true(dp_result_is_failed(r));
        } else {
            assert_null(jr->error);
            assert_null(dp_result_first_error(r));
        }
        assert_int_equal(dp_result_first_not_ready(r), cases[i].status == DP_STATUS_NOT_READY ? 0 : -1);
        dp_result_free(r);
        dp_graph_free(g);
        tu_script_free(s);
    }
}

/* The seed's example: A, then B and C (in parallel), then D, then E. */
static void test_seed_dag_runs_in_dependency_order(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "sleep=2");
    dp_graph_t *g = tu_graph("JobA:;JobB:JobA;JobC:JobA;JobD:JobB,JobC;JobE:JobD", s);
    dp_run_opts_t o = opts_of(4, 0, true);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "JobA=success JobB=success JobC=success JobD=success JobE=success");
    assert_true(dp_result_is_ready(r));
    tu_expect_dep_order(g, s);
    assert_true(tu_jr(r, "JobE")->start_ms >= tu_jr(r, "JobA")->start_ms + 6);
    assert_true(atomic_load(&s->max_running) <= 2);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* 200 jobs in layers, random-ish shape: every job runs once, after its
 * dependencies. */
static void test_large_layered_graph(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_layers(20, 10);
    dp_graph_t *g = tu_graph(spec, s);
    dp_run_opts_t o = opts_of(7, 0, true);
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_job_count(r), 200);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(atomic_load(&s->total_runs), 200);
    for (size_t i = 0; i < 200; i++)
        assert_int_equal(dp_result_job(r, i)->attempts, 1);
    tu_expect_dep_order(g, s);
    assert_true(atomic_load(&s->max_running) <= 7);
    dp_result_free(r);
    dp_graph_free(g);
    free(spec);
    tu_script_free(s);
}

/* ------------------------------------------------------------------------ */
/* The concurrency bound                                                     */
/* ------------------------------------------------------------------------ */

/* Independent jobs: the pool fills exactly `bound` slots (the first wave
 * meets at a rendezvous) and never more. */
static void test_concurrency_bound_flat(void **state)
{
    (void)state;
    const unsigned bounds[] = {1, 2, 7};
    for (size_t i = 0; i < 3; i++) {
        unsigned bound = bounds[i];
        tu_script_t *s = tu_script_new();
        char words[64];
        snprintf(words, sizeof words, "rendezvous=%u sleep=1", bound);
        tu_set(s, "*", words);
        char *spec = tu_spec_flat(30);
        dp_graph_t *g = tu_graph(spec, s);
        dp_run_opts_t o = opts_of(bound, 0, true);
        dp_result_t *r = tu_run(g, &o);
        assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
        assert_int_equal(atomic_load(&s->total_runs), 30);
        if (atomic_load(&s->max_running) != (int)bound)
            fail_msg("bound %u: at most %d jobs ran at once", bound, atomic_load(&s->max_running));
        dp_result_free(r);
        dp_graph_free(g);
        free(spec);
        tu_script_free(s);
    }
}

/* Worker threads start on demand. Jobs that record the threads they run on
 * and how many threads the process has. */
typedef struct threads_seen {
    pthread_mutex_t mu;
    pthread_t ids[64];
    unsigned n;
    unsigned max_tasks; /* threads in the process, most seen by a job */
} threads_seen_t;

static unsigned process_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned n = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %u", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

static dp_outcome_t record_thread(dp_job_t *job, void *user)
{
    (void)job;
    threads_seen_t *t = user;
    unsigned tasks = process_threads();
    pthread_mutex_lock(&t->mu);
    bool known = false;
    for (unsigned i = 0; i < t->n; i++)
        known = known || pthread_equal(t->ids[i], pthread_self());
    if (!known && t->n < 64)
        t->ids[t->n++] = pthread_self();
    if (tasks > t->max_tasks)
        t->max_tasks = tasks;
    pthread_mutex_unlock(&t->mu);
    return DP_READY;
}

/* A chain runs on one worker thread, however high the bound: no thread is
 * started for work that never comes. */
static void test_chain_starts_one_worker(void **state)
{
    (void)state;
    threads_seen_t t = {.mu = PTHREAD_MUTEX_INITIALIZER};
    unsigned before = process_threads();
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = record_thread;
    sp.user = &t;
    char name[16], prev[16];
    for (unsigned i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "c%02u", i);
        sp.name = name;
        assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
        if (i)
            assert_int_equal(dp_graph_add_dep(g, name, prev), DP_OK);
        memcpy(prev, name, sizeof prev);
    }
    dp_run_opts_t o = opts_of(64, 0, true);
    dp_result_t *r = tu_run(g, &o);
    assert_true(dp_result_is_ready(r));
    assert_int_equal(t.n, 1);
    if (before && t.max_tasks > before + 1)
        fail_msg("%u threads during the run, %u before: workers started for nothing", t.max_tasks, before);
    dp_result_free(r);
    dp_graph_free(g);
}

/* One root releasing many jobs: workers start as the jobs are published,
 * up to the bound (the released jobs meet at a rendezvous of `bound`). */
static void test_fan_out_starts_workers_up_to_bound(void **state)
{
    (void)state;
    const unsigned bound = 6;
    tu_script_t *s = tu_script_new();
    char words[64];
    snprintf(words, sizeof words, "rendezvous=%u sleep=1", bound);
    tu_set(s, "*", words);
    tu_set(s, "root", "");
    char spec[2048] = "root:";
    for (unsigned i = 0; i < 20; i++) {
        size_t len = strlen(spec);
        snprintf(spec + len, sizeof spec - len, ";leaf%02u:root", i);
    }
    dp_graph_t *g = tu_graph(spec, s);
    dp_run_opts_t o = opts_of(bound, 0, true);
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(atomic_load(&s->total_runs), 21);
    assert_int_equal(atomic_load(&s->max_running), (int)bound);
    tu_expect_dep_order(g, s);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A layered graph with dependencies: still never more than the bound, and
 * dependencies respected, at each bound. */
static void test_concurrency_bound_layered(void **state)
{
    (void)state;
    const unsigned bounds[] = {1, 2, 7};
    for (size_t i = 0; i < 3; i++) {
        unsigned bound = bounds[i];
        tu_script_t *s = tu_script_new();
        char words[64];
        snprintf(words, sizeof words, "rendezvous=%u", bound);
        tu_set(s, "*", words);
        char *spec = tu_spec_layers(5, 9);
        dp_graph_t *g = tu_graph(spec, s);
        dp_run_opts_t o = opts_of(bound, 0, true);
        dp_result_t *r = tu_run(g, &o);
        assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
        assert_int_equal(atomic_load(&s->total_runs), 45);
        assert_int_equal(atomic_load(&s->max_running), (int)bound);
        tu_expect_dep_order(g, s);
        dp_result_free(r);
        dp_graph_free(g);
        free(spec);
        tu_script_free(s);
    }
}

/* Jobs waiting parked between probes still count against the bound: with
 * max_concurrent_jobs 3, at most three jobs are between their first
 * ATTEMPT_START and their JOB_END at any moment (running or parked), and
 * three are (the parked ones do not hold the others back). */
typedef struct inflight {
    atomic_int now, max;
} inflight_t;

static void inflight_cb(void *user, const dp_event_t *ev)
{
    inflight_t *f = user;
    if (ev->kind == DP_EV_ATTEMPT_START && ev->attempt == 1) {
        int n = atomic_fetch_add(&f->now, 1) + 1;
        int cur = atomic_load(&f->max);
        while (n > cur && !atomic_compare_exchange_weak(&f->max, &cur, n))
            ;
    } else if (ev->kind == DP_EV_JOB_END) {
        atomic_fetch_sub(&f->now, 1);
    }
}

static void test_concurrency_bound_with_parked_polls(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "sleep=5 check_after=4 period=10");
    char *spec = tu_spec_flat(12);
    dp_graph_t *g = tu_graph(spec, s);
    inflight_t f = {0};
    dp_run_opts_t o = opts_of(3, 0, true);
    o.on_event = inflight_cb;
    o.event_user = &f;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(atomic_load(&f.max), 3);
    assert_true(atomic_load(&s->max_running) <= 3);
    for (unsigned i = 0; i < 12; i++) {
        char name[16];
        snprintf(name, sizeof name, "J%03u", i);
        assert_int_equal(atomic_load(&tu_job(s, name)->checks), 4);
        assert_int_equal(atomic_load(&tu_job(s, name)->attempt_ends), 1);
    }
    dp_result_free(r);
    dp_graph_free(g);
    free(spec);
    tu_script_free(s);
}

/* Parked jobs and the job timeout, with a bound smaller than the number of
 * polling jobs: each attempt times out while parked, is retried, and the
 * bound still holds. */
static void test_parked_job_timeout_retried(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "check=not_ready period=10 timeout=40 retries=1 backoff=1");
    char *spec = tu_spec_flat(6);
    dp_graph_t *g = tu_graph(spec, s);
    inflight_t f = {0};
    dp_run_opts_t o = opts_of(2, 0, false);
    o.on_event = inflight_cb;
    o.event_user = &f;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_true(atomic_load(&f.max) <= 2);
    for (size_t j = 0; j < dp_result_job_count(r); j++) {
        const dp_job_result_t *jr = dp_result_job(r, j);
        assert_int_equal(jr->status, DP_STATUS_FAILED);
        assert_int_equal(jr->attempts, 2);
        assert_string_equal(jr->error, "timed out after 40ms");
        assert_int_equal(atomic_load(&tu_job(s, jr->name)->attempt_ends), 2);
    }
    assert_int_equal(dp_result_requeue_after_ms(r), 10);
    dp_result_free(r);
    dp_graph_free(g);
    free(spec);
    tu_script_free(s);
}

static void test_concurrency_below_one_refused(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A", s);
    dp_run_opts_t o = opts_of(0, 0, true);
    char err[256] = "";
    assert_null(dp_graph_run(g, &o, err, sizeof err));
    assert_string_equal(err, "max_concurrent_jobs must be at least 1 (got 0)");
    assert_int_equal(atomic_load(&s->total_runs), 0);
    /* The graph is not left "running". */
    o.max_concurrent_jobs = 1;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    dp_result_free(r);
    assert_null(dp_graph_run(NULL, &o, err, sizeof err));
    dp_graph_free(g);
    tu_script_free(s);
}

/* ------------------------------------------------------------------------ */
/* not ready                                                                 */
/* ------------------------------------------------------------------------ */

/* B is not ready: exactly its transitive successors (D, E, G, L) are
 * skipped and never run; the independent branches, even the slow one that
 * ends after B, finish. */
static void test_not_ready_skips_exactly_the_successors(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "B", "not_ready");
    tu_set(s, "H,I,J", "sleep=15");
    dp_graph_t *g = tu_graph("A:;B:A;C:A;D:B;E:D;F:C;G:E,F;H:;I:H;J:I;K:;L:K,D", s);
    dp_run_opts_t o = opts_of(3, 0, true);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "A=success B=not_ready C=success D=skipped E=skipped F=success G=skipped "
                 "H=success I=success J=success K=success L=skipped");
    assert_int_equal(dp_result_outcome(r), DP_RUN_NOT_READY);
    assert_false(dp_result_is_ready(r));
    assert_false(dp_result_is_failed(r));
    assert_false(dp_result_timed_out(r));
    assert_null(dp_result_first_error(r));
    assert_int_equal(dp_result_first_not_ready(r), dp_graph_job_id(g, "B"));
    const char *skipped[] = {"D", "E", "G", "L"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(runs_of(s, skipped[i]), 0);
        assert_int_equal(tu_jr(r, skipped[i])->attempts, 0);
        assert_int_equal(tu_jr(r, skipped[i])->start_ms, -1);
        assert_null(tu_jr(r, skipped[i])->error);
    }
    /* J finished after B had answered: independent work went on. */
    assert_true(atomic_load(&tu_job(s, "J")->end_seq) > atomic_load(&tu_job(s, "B")->end_seq));
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_not_ready_tiny(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "A", "not_ready");
    dp_graph_t *g = tu_graph("A:;B:A;C:", s);
    dp_result_t *r = tu_run(g, NULL);
    tu_expect(r, "A=not_ready B=skipped C=success");
    assert_int_equal(dp_result_outcome(r), DP_RUN_NOT_READY);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Several not-ready roots, at concurrency 1 and 2: each root runs once,
 * their subtrees are skipped, the independent chain completes. */
static void test_several_not_ready_roots(void **state)
{
    (void)state;
    const unsigned conc[] = {1, 2};
    for (size_t i = 0; i < 2; i++) {
        tu_script_t *s = tu_script_new();
        tu_set(s, "R1,R2,R3", "not_ready");
        dp_graph_t *g = tu_graph("R1:;R2:;R3:;C1:R1;C2:R2;C3:R3;D:C1,C2;E:D,C3;OK1:;OK2:OK1;OK3:OK2;OK4:OK3", s);
        dp_run_opts_t o = opts_of(conc[i], 0, true);
        dp_result_t *r = tu_run(g, &o);
        tu_expect(r, "R1=not_ready R2=not_ready R3=not_ready C1=skipped C2=skipped C3=skipped "
                     "D=skipped E=skipped OK1=success OK2=success OK3=success OK4=success");
        assert_int_equal(runs_of(s, "R1"), 1);
        assert_int_equal(runs_of(s, "R2"), 1);
        assert_int_equal(runs_of(s, "R3"), 1);
        assert_int_equal(atomic_load(&s->total_runs), 7);
        assert_int_equal(dp_result_outcome(r), DP_RUN_NOT_READY);
        assert_int_equal(dp_result_first_not_ready(r), dp_graph_job_id(g, "R1"));
        assert_true(atomic_load(&s->max_running) <= (int)conc[i]);
        dp_result_free(r);
        dp_graph_free(g);
        tu_script_free(s);
    }
}

/* ------------------------------------------------------------------------ */
/* Fail fast                                                                 */
/* ------------------------------------------------------------------------ */

static void test_fail_fast_tiny(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "A", "error rendezvous=2");
    tu_set(s, "C", "block");
    dp_graph_t *g = tu_graph("A:;B:A;C:", s);
    dp_run_opts_t o = opts_of(2, 0, true);
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    assert_true(dp_test_now_ms() - t0 < 5000);
    tu_expect(r, "A=failed B=unknown C=unknown");
    assert_true(atomic_load(&tu_job(s, "C")->saw_cancel));
    assert_string_equal(dp_result_first_error(r), "A run failed (attempt 1)");
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_false(dp_result_cancelled(r));
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* 14 jobs at concurrency 3: a_fail fails once b_block and c_deaf run.
 * b_block sees the cancellation; c_deaf ignores it and answers ready later,
 * and stays unknown anyway; queued roots and every successor stay unknown
 * (not skipped) and never run. */
static void test_fail_fast_large(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "a_fail", "error rendezvous=3");
    tu_set(s, "b_block", "block");
    tu_set(s, "c_deaf", "deaf=150");
    /* The three that meet have the longest paths (5 jobs), so they start
     * first (roots start longest path first) on the 3 workers. */
    dp_graph_t *g = tu_graph("a_fail:;b_block:;c_deaf:;q1:;q2:;q3:;s1:a_fail,b_block,c_deaf;s2:s1;s3:s2;"
                             "s4:s3;s5:q1;s6:q2,q3;s7:s5,s6;s8:s7",
                             s);
    assert_int_equal(dp_graph_job_count(g), 14);
    dp_run_opts_t o = opts_of(3, 0, true);
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    assert_true(dp_test_now_ms() - t0 < 5000);
    tu_expect(r, "a_fail=failed b_block=unknown c_deaf=unknown q1=unknown q2=unknown "
                 "q3=unknown s1=unknown s2=unknown s3=unknown s4=unknown s5=unknown "
                 "s6=unknown s7=unknown s8=unknown");
    assert_true(atomic_load(&tu_job(s, "b_block")->saw_cancel));
    assert_true(atomic_load(&tu_job(s, "c_deaf")->saw_cancel));
    assert_int_equal(runs_of(s, "c_deaf"), 1);
    assert_int_equal(tu_jr(r, "c_deaf")->attempts, 1);
    assert_int_equal(atomic_load(&s->total_runs), 3);
    assert_int_equal(tu_jr(r, "q1")->attempts, 0);
    assert_int_equal(tu_jr(r, "s1")->attempts, 0);
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_true(dp_result_is_failed(r));
    assert_false(dp_result_timed_out(r));
    assert_false(dp_result_cancelled(r));
    assert_string_equal(dp_result_first_error(r), "a_fail run failed (attempt 1)");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Keep going (fail_fast = false): the failed job's successors are skipped,
 * independent branches run to the end (also after the failure), and the
 * outcome is failed (failed beats not_ready). */
static void test_keep_going(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "F", "error");
    tu_set(s, "I1,I2,I3", "sleep=10");
    tu_set(s, "N", "not_ready");
    dp_graph_t *g = tu_graph("F:;F1:F;F2:F1;I1:;I2:I1;I3:I2;N:;N1:N;X:F,I3;Y:I3;Z:Y,N1", s);
    const unsigned conc[] = {1, 2, 4};
    for (size_t i = 0; i < 3; i++) {
        dp_run_opts_t o = opts_of(conc[i], 0, false);
        dp_result_t *r = tu_run(g, &o);
        tu_expect(r, "F=failed F1=skipped F2=skipped I1=success I2=success I3=success "
                     "N=not_ready N1=skipped X=skipped Y=success Z=skipped");
        assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
        assert_string_equal(dp_result_first_error(r), "F run failed (attempt 1)");
        assert_int_equal(dp_result_first_not_ready(r), dp_graph_job_id(g, "N"));
        assert_false(dp_result_cancelled(r));
        dp_result_free(r);
    }
    assert_int_equal(runs_of(s, "F1"), 0);
    assert_int_equal(runs_of(s, "X"), 0);
    assert_int_equal(runs_of(s, "Y"), 3);
    dp_graph_free(g);
    tu_script_free(s);
}

/* ------------------------------------------------------------------------ */
/* Timeouts                                                                  */
/* ------------------------------------------------------------------------ */

static void test_global_timeout(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "B,D", "block");
    dp_graph_t *g = tu_graph("A:;B:A;C:B;D:;E:D", s);
    dp_run_opts_t o = opts_of(4, 200, true);
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    uint64_t took = dp_test_now_ms() - t0;
    assert_true(took >= 199);
    assert_true(took < 5000);
    assert_true(dp_result_duration_ms(r) >= 199);
    tu_expect(r, "A=success B=unknown C=unknown D=unknown E=unknown");
    assert_true(dp_result_timed_out(r));
    assert_false(dp_result_cancelled(r));
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    assert_string_equal(dp_result_first_error(r), "timeout after 200ms");
    assert_true(atomic_load(&tu_job(s, "B")->saw_cancel));
    assert_int_equal(tu_jr(r, "B")->attempts, 1);
    assert_int_equal(tu_jr(r, "C")->attempts, 0);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* 20 blocking jobs at concurrency 4 and a 200 ms timeout: 4 started, 16
 * never did; all unknown. A job that answers after the deadline (deaf)
 * stays unknown. */
static void test_global_timeout_large(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "block");
    tu_set(s, "J000", "block=0 deaf=250");
    char *spec = tu_spec_flat(20);
    dp_graph_t *g = tu_graph(spec, s);
    dp_run_opts_t o = opts_of(4, 200, true);
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    assert_string_equal(dp_result_first_error(r), "timeout after 200ms");
    unsigned started = 0;
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(dp_result_job(r, i)->status, DP_STATUS_UNKNOWN);
        started += dp_result_job(r, i)->attempts;
    }
    assert_int_equal(started, 4);
    assert_int_equal(atomic_load(&s->total_runs), 4);
    assert_int_equal(tu_jr(r, "J000")->attempts, 1);
    dp_result_free(r);
    dp_graph_free(g);
    free(spec);
    tu_script_free(s);
}

/* A job's own timeout: error "timed out after ...", failed, and with fail
 * fast its successor is left unknown. */
static void test_job_timeout(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "T", "block timeout=50");
    dp_graph_t *g = tu_graph("T:;U:T", s);
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, NULL);
    uint64_t took = dp_test_now_ms() - t0;
    assert_true(took >= 49 && took < 5000);
    tu_expect(r, "T=failed U=unknown");
    assert_string_equal(tu_jr(r, "T")->error, "timed out after 50ms");
    assert_string_equal(dp_result_first_error(r), "timed out after 50ms");
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_false(dp_result_timed_out(r));
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Attempt 1 overruns its timeout (and answers ready late: it does not
 * count); attempt 2 is quick. A timeout is retryable. */
static int slow_first_attempt(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)tj;
    (void)is_check;
    (void)arg;
    if (dp_job_attempt(job) == 1)
        dp_ctx_sleep(dp_job_ctx(job), 10000);
    return DP_READY;
}

static void test_job_timeout_is_retryable(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "T", "timeout=40 retries=1");
    tu_hook(s, "T", slow_first_attempt, NULL);
    tu_set(s, "X", "block timeout=20 retries=2");
    dp_graph_t *g = tu_graph("T:;U:T;X:", s);
    dp_run_opts_t o = opts_of(2, 0, false);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "T=success U=success X=failed");
    assert_int_equal(tu_jr(r, "T")->attempts, 2);
    assert_int_equal(tu_jr(r, "X")->attempts, 3);
    assert_int_equal(runs_of(s, "X"), 3);
    assert_string_equal(tu_jr(r, "X")->error, "timed out after 20ms");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The attempt's context: deadline of the job's timeout, never past the
 * run's. */
static _Atomic int64_t seen_remaining[2];
static int note_remaining(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)tj;
    (void)is_check;
    atomic_store(&seen_remaining[(intptr_t)arg], dp_ctx_remaining_ms(dp_job_ctx(job)));
    return DP_READY;
}

static void test_attempt_deadline_never_outlives_run(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "short", "timeout=100");
    tu_set(s, "long", "timeout=600000");
    tu_hook(s, "short", note_remaining, (void *)0);
    tu_hook(s, "long", note_remaining, (void *)1);
    dp_graph_t *g = tu_graph("short;long", s);
    dp_run_opts_t o = opts_of(2, 5000, true);
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    int64_t rs = atomic_load(&seen_remaining[0]), rl = atomic_load(&seen_remaining[1]);
    assert_true(rs > 0 && rs <= 100);
    assert_true(rl > 100 && rl <= 5000);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* ------------------------------------------------------------------------ */
/* Retries                                                                   */
/* ------------------------------------------------------------------------ */

static void test_retries_count_attempts(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "ok3", "fail=2 retries=3");
    tu_set(s, "gone", "fail=9 retries=2");
    tu_set(s, "none", "fail=1");
    dp_graph_t *g = tu_graph("ok3:;after:ok3;gone:;none:", s);
    dp_run_opts_t o = opts_of(3, 0, false);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "ok3=success after=success gone=failed none=failed");
    assert_int_equal(tu_jr(r, "ok3")->attempts, 3);
    assert_int_equal(runs_of(s, "ok3"), 3);
    assert_int_equal(tu_jr(r, "gone")->attempts, 3);
    assert_int_equal(runs_of(s, "gone"), 3);
    assert_string_equal(tu_jr(r, "gone")->error, "gone failed (attempt 3)");
    assert_int_equal(tu_jr(r, "none")->attempts, 1);
    assert_int_equal(tu_jr(r, "after")->attempts, 1);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_backoff_is_honoured(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    /* 40 then 80 ms. */
    tu_set(s, "grow", "fail=2 retries=2 backoff=40/2");
    dp_graph_t *g = tu_graph("grow", s);
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, NULL);
    uint64_t took = dp_test_now_ms() - t0;
    tu_expect(r, "grow=success");
    assert_int_equal(tu_jr(r, "grow")->attempts, 3);
    assert_true(took >= 118);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);

    /* Capped: 30, then 40, 40 (uncapped it would be 30, 300, 3000). */
    s = tu_script_new();
    tu_set(s, "cap", "fail=3 retries=3 backoff=30/10/40");
    g = tu_graph("cap", s);
    t0 = dp_test_now_ms();
    r = tu_run(g, NULL);
    took = dp_test_now_ms() - t0;
    tu_expect(r, "cap=success");
    assert_int_equal(tu_jr(r, "cap")->attempts, 4);
    assert_true(took >= 108);
    assert_true(took < 2000);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);

    /* Jitter takes off at most its fraction: 100 ms with jitter 0.5 waits
     * at least 50 ms. */
    s = tu_script_new();
    tu_set(s, "jit", "fail=1 retries=1 backoff=100/2/1000/0.5");
    g = tu_graph("jit", s);
    t0 = dp_test_now_ms();
    r = tu_run(g, NULL);
    took = dp_test_now_ms() - t0;
    tu_expect(r, "jit=success");
    assert_true(took >= 49);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_permanent_error_not_retried(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "P", "permanent retries=5");
    dp_graph_t *g = tu_graph("P:;Q:P", s);
    dp_result_t *r = tu_run(g, NULL);
    tu_expect(r, "P=failed Q=unknown");
    assert_int_equal(tu_jr(r, "P")->attempts, 1);
    assert_int_equal(runs_of(s, "P"), 1);
    assert_string_equal(tu_jr(r, "P")->error, "P run failed permanently");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The global timeout passes during a 10 s backoff: the wait ends at once,
 * the job stays unknown, and the cut backoff is the requeue hint. */
static void test_backoff_cut_by_timeout(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "R", "error retries=3 backoff=10000");
    dp_graph_t *g = tu_graph("R:;S:R;T:", s);
    dp_run_opts_t o = opts_of(2, 200, true);
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    assert_true(dp_test_now_ms() - t0 < 5000);
    tu_expect(r, "R=unknown S=unknown T=success");
    assert_int_equal(tu_jr(r, "R")->attempts, 1);
    assert_int_equal(runs_of(s, "R"), 1);
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    int64_t rq = dp_result_requeue_after_ms(r);
    assert_true(rq > 5000 && rq <= 10000);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Cancelled from another thread during the backoff. */
static void test_backoff_cut_by_cancel(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "R", "error retries=3 backoff=10000");
    dp_graph_t *g = tu_graph("R:;S:R", s);
    dp_ctx_t *parent = dp_ctx_new(NULL, 0);
    canceller_t c = {.s = s, .ctx = parent, .running = 1, .job = "R", .delay_ms = 20};
    canceller_start(&c);
    dp_run_opts_t o = opts_of(2, 0, true);
    o.parent = parent;
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    assert_true(dp_test_now_ms() - t0 < 5000);
    pthread_join(c.thread, NULL);
    tu_expect(r, "R=unknown S=unknown");
    assert_int_equal(tu_jr(r, "R")->attempts, 1);
    assert_int_equal(dp_result_outcome(r), DP_RUN_CANCELLED);
    assert_true(dp_result_cancelled(r));
    int64_t rq = dp_result_requeue_after_ms(r);
    assert_true(rq > 5000 && rq <= 10000);
    dp_result_free(r);
    dp_graph_free(g);
    dp_ctx_free(parent);
    tu_script_free(s);
}

/* A retry's backoff parks like a readiness poll: the job waits in the run's
 * lot, not on its worker's thread, and that thread goes on with other work
 * meanwhile. Two workers: A fails at once and waits a 1.5 s backoff; P runs
 * 200 ms, then polls readiness every 20 ms (ready at the third check), and
 * Q follows P. With the backoff asleep on A's thread, P and Q could only
 * run on the other one; parked, the thread that ran A's first attempt keeps
 * the lot's time, runs P's probes, and goes on with P's end and Q, all
 * during A's backoff. The bound still holds (the parked job keeps a worker
 * standing by), and the results are as before. */
typedef struct threads_by_job {
    pthread_mutex_t mu;
    pthread_t a1, q;
    bool have_a1, have_q;
} threads_by_job_t;

static int note_thread(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    threads_by_job_t *t = arg;
    if (is_check)
        return -1;
    pthread_mutex_lock(&t->mu);
    if (strcmp(tj->name, "A") == 0 && dp_job_attempt(job) == 1) {
        t->a1 = pthread_self();
        t->have_a1 = true;
    } else if (strcmp(tj->name, "Q") == 0) {
        t->q = pthread_self();
        t->have_q = true;
    }
    pthread_mutex_unlock(&t->mu);
    return -1;
}

static void test_backoff_parks_and_frees_its_thread(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "A", "fail=1 retries=1 backoff=1500");
    tu_set(s, "P", "sleep=200 check_after=3 period=20");
    threads_by_job_t t = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dp_graph_t *g = tu_graph("A:;P:;Q:P", s);
    tu_hook(s, "A,Q", note_thread, &t);
    inflight_t f = {0};
    dp_run_opts_t o = opts_of(2, 0, true);
    o.on_event = inflight_cb;
    o.event_user = &f;
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    uint64_t took = dp_test_now_ms() - t0;
    tu_expect(r, "A=success P=success Q=success");
    assert_int_equal(tu_jr(r, "A")->attempts, 2);
    assert_int_equal(runs_of(s, "A"), 2);
    assert_true(took >= 1490 && took < 20000);
    /* Q ran and returned during A's backoff, before A's second attempt. */
    assert_true(atomic_load(&tu_job(s, "Q")->end_seq) < atomic_load(&tu_job(s, "A")->start_seq));
    assert_true(t.have_a1 && t.have_q);
    if (!pthread_equal(t.a1, t.q))
        fail_msg("Q ran on another thread than A's first attempt: A's backoff held its thread");
    assert_true(atomic_load(&f.max) <= 2);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);

    /* One worker: a job in its backoff keeps the only worker standing by
     * for it (jobs in flight never exceed the bound), so B waits for A's
     * retry, as before; A's retry runs on the same worker. */
    s = tu_script_new();
    tu_set(s, "A", "fail=1 retries=1 backoff=100");
    g = tu_graph("A:;B:", s);
    o = opts_of(1, 0, true);
    inflight_t f1 = {0};
    o.on_event = inflight_cb;
    o.event_user = &f1;
    r = tu_run(g, &o);
    tu_expect(r, "A=success B=success");
    assert_int_equal(tu_jr(r, "A")->attempts, 2);
    assert_int_equal(atomic_load(&f1.max), 1);
    assert_true(atomic_load(&tu_job(s, "A")->end_seq) < atomic_load(&tu_job(s, "B")->start_seq));
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Snapshots of running jobs are keyed by the whole job name: two jobs whose
 * names share a 600-byte prefix each see their own, while both run (the
 * keys were once cut at 512 bytes, and the two jobs shared one: each
 * overwrote and deleted the other's). */
typedef struct long_names {
    dp_store_t *st;
    atomic_int arrived, checked, ok, bad;
    atomic_int most_running;
} long_names_t;

static int count_snapshots(const char *key, const void *value, size_t len, void *arg)
{
    (void)value;
    (void)len;
    if (strncmp(key, DP_STORE_RUNNING_PREFIX, strlen(DP_STORE_RUNNING_PREFIX)) == 0)
        (*(int *)arg)++;
    return 0;
}

static void wait_for(atomic_int *n, int want)
{
    uint64_t until = dp_test_now_ms() + 5000;
    while (atomic_load(n) < want && dp_test_now_ms() < until)
        msleep(1);
}

static dp_outcome_t look_at_own_snapshot(dp_job_t *job, void *user)
{
    long_names_t *ln = user;
    /* Both jobs are running: both snapshots are in. */
    atomic_fetch_add(&ln->arrived, 1);
    wait_for(&ln->arrived, 2);
    char *key = NULL;
    assert_true(asprintf(&key, DP_STORE_RUNNING_PREFIX "%s", dp_job_name(job)) > 0);
    void *v = NULL;
    if (dp_store_get_copy(dp_job_store(job), key, &v, NULL) == DP_OK && strstr(v, "attempt=1 phase=run") == v)
        atomic_fetch_add(&ln->ok, 1);
    else
        atomic_fetch_add(&ln->bad, 1);
    free(v);
    free(key);
    int n = 0;
    dp_store_foreach(dp_job_store(job), count_snapshots, &n);
    int cur = atomic_load(&ln->most_running);
    while (n > cur && !atomic_compare_exchange_weak(&ln->most_running, &cur, n))
        ;
    /* Neither ends (and clears its snapshot) before both looked. */
    atomic_fetch_add(&ln->checked, 1);
    wait_for(&ln->checked, 2);
    return DP_READY;
}

static void test_snapshot_keys_long_names(void **state)
{
    (void)state;
    long_names_t ln = {.st = dp_store_new()};
    char name[2][700];
    dp_graph_t *g = dp_graph_new();
    for (int i = 0; i < 2; i++) {
        memset(name[i], 'x', 600);
        snprintf(name[i] + 600, sizeof name[i] - 600, "-%c", 'a' + i);
        dp_job_spec_t sp;
        dp_job_spec_init(&sp);
        sp.name = name[i];
        sp.run = look_at_own_snapshot;
        sp.user = &ln;
        assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    }
    dp_run_opts_t o = opts_of(2, 0, true);
    o.store = ln.st;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(atomic_load(&ln.bad), 0);
    assert_int_equal(atomic_load(&ln.ok), 2);
    assert_int_equal(atomic_load(&ln.most_running), 2);
    int left = 0;
    dp_store_foreach(ln.st, count_snapshots, &left);
    assert_int_equal(left, 0);
    dp_result_free(r);
    dp_graph_free(g);
    dp_store_free(ln.st);
}

/* ------------------------------------------------------------------------ */
/* Cancellation from outside                                                 */
/* ------------------------------------------------------------------------ */

static void test_cancel_from_another_thread(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "block");
    tu_set(s, "A", "block=0");
    dp_graph_t *g = tu_graph("A:;B:A;C:A;D:A;E:B;F:C;G:D;H:E,F,G;I:;J:I;K:J;L:", s);
    dp_ctx_t *parent = dp_ctx_new(NULL, 0);
    /* Cancel once A has returned and three jobs have been running. */
    canceller_t c = {.s = s, .ctx = parent, .running = 3, .job = "A", .delay_ms = 10};
    canceller_start(&c);
    dp_run_opts_t o = opts_of(3, 0, true);
    o.parent = parent;
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    assert_true(dp_test_now_ms() - t0 < 5000);
    pthread_join(c.thread, NULL);
    assert_int_equal(tu_status(r, "A"), DP_STATUS_SUCCESS);
    for (size_t i = 0; i < dp_result_job_count(r); i++)
        if (strcmp(dp_result_job(r, i)->name, "A") != 0)
            assert_int_equal(dp_result_job(r, i)->status, DP_STATUS_UNKNOWN);
    assert_int_equal(dp_result_outcome(r), DP_RUN_CANCELLED);
    assert_true(dp_result_cancelled(r));
    assert_false(dp_result_timed_out(r));
    assert_false(dp_result_is_failed(r));
    assert_string_equal(dp_result_first_error(r), "cancelled");
    dp_result_free(r);
    dp_graph_free(g);
    dp_ctx_free(parent);
    tu_script_free(s);
}

static void test_parent_cancelled_before_run(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:", s);
    dp_ctx_t *parent = dp_ctx_new(NULL, 0);
    dp_ctx_cancel(parent);
    dp_run_opts_t o = opts_of(2, 0, true);
    o.parent = parent;
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "A=unknown B=unknown C=unknown");
    assert_int_equal(atomic_load(&s->total_runs), 0);
    assert_int_equal(dp_result_outcome(r), DP_RUN_CANCELLED);
    dp_result_free(r);
    dp_graph_free(g);
    dp_ctx_free(parent);
    tu_script_free(s);
}

/* A deadline on the parent context acts as a timeout. */
static void test_parent_deadline_is_a_timeout(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "B", "block");
    dp_graph_t *g = tu_graph("A:;B:A;C:B", s);
    dp_ctx_t *parent = dp_ctx_new(NULL, 200);
    dp_run_opts_t o = opts_of(2, 0, true);
    o.parent = parent;
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "A=success B=unknown C=unknown");
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    assert_true(dp_result_timed_out(r));
    assert_non_null(strstr(dp_result_first_error(r), "timeout"));
    dp_result_free(r);
    dp_graph_free(g);
    dp_ctx_free(parent);
    tu_script_free(s);
}

/* Every job ended (one not ready) before the deadline, but the run was
 * still winding up (a slow event callback) when the deadline passed: the
 * deadline cut nothing, so the run is not_ready, not timeout. */
static void slow_job_end(void *user, const dp_event_t *ev)
{
    (void)user;
    if (ev->kind == DP_EV_JOB_END)
        msleep(250);
}

static void test_deadline_after_every_job_ended_cuts_nothing(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "N", "not_ready");
    dp_graph_t *g = tu_graph("N:;M:N", s);
    dp_run_opts_t o = opts_of(1, 150, true);
    o.on_event = slow_job_end;
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "N=not_ready M=skipped");
    assert_false(dp_result_timed_out(r));
    assert_int_equal(dp_result_outcome(r), DP_RUN_NOT_READY);
    assert_null(dp_result_first_error(r));
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* ------------------------------------------------------------------------ */
/* Repeated runs, busy graph, odd answers                                    */
/* ------------------------------------------------------------------------ */

static void test_repeated_runs_same_result(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "C", "not_ready");
    tu_set(s, "G", "error");
    tu_set(s, "J", "fail=1 retries=2");
    dp_graph_t *g = tu_graph("A:;B:A;C:A;D:B,C;E:D;F:;G:F;H:G;I:;J:I;K:J,E;L:", s);
    char first[4096], fronts[4096], bound[1024];
    for (int run = 0; run < 5; run++) {
        dp_run_opts_t o = opts_of(run % 2 ? 2 : 4, 0, false);
        dp_result_t *r = tu_run(g, &o);
        if (run == 0) {
            snprintf(first, sizeof first, "%s", tu_statuses(r));
            snprintf(fronts, sizeof fronts, "%s", tu_frontiers(r));
            snprintf(bound, sizeof bound, "%s", tu_boundary(r));
        } else {
            assert_string_equal(tu_statuses(r), first);
            assert_string_equal(tu_frontiers(r), fronts);
            assert_string_equal(tu_boundary(r), bound);
        }
        /* Attempts count from 1 again on every run (fail=1 makes the
         * script fail attempt 1 of each run). */
        assert_int_equal(tu_jr(r, "J")->attempts, 2);
        assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
        dp_result_free(r);
    }
    assert_string_equal(first, "A=success B=success C=not_ready D=skipped E=skipped F=success "
                               "G=failed H=skipped I=success J=success K=skipped L=success");
    assert_int_equal(runs_of(s, "J"), 10);
    assert_int_equal(runs_of(s, "A"), 5);
    dp_graph_free(g);
    tu_script_free(s);
}

static _Atomic int busy_run_rc, busy_add_rc, busy_dep_rc;
static int try_while_running(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)job;
    (void)tj;
    (void)is_check;
    dp_graph_t *g = arg;
    char err[128] = "";
    dp_result_t *r = dp_graph_run(g, NULL, err, sizeof err);
    atomic_store(&busy_run_rc, r == NULL && strstr(err, "already running") ? 1 : -1);
    dp_result_free(r);
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.name = "late";
    sp.check = (dp_job_cb)(uintptr_t)1; /* never called: refused */
    atomic_store(&busy_add_rc, dp_graph_add_job(g, &sp, NULL, 0));
    atomic_store(&busy_dep_rc, dp_graph_add_dep(g, "A", "B"));
    return DP_READY;
}

static void test_graph_busy_while_running(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:", s);
    tu_job(s, "A")->b.hook = try_while_running;
    tu_job(s, "A")->b.hook_arg = g;
    dp_result_t *r = tu_run(g, NULL);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(atomic_load(&busy_run_rc), 1);
    assert_int_equal(atomic_load(&busy_add_rc), DP_EBUSY);
    assert_int_equal(atomic_load(&busy_dep_rc), DP_EBUSY);
    assert_int_equal(dp_graph_job_count(g), 2);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

static dp_outcome_t bad_outcome(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return (dp_outcome_t)42;
}

static dp_outcome_t silent_error(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return DP_ERROR;
}

static void test_odd_answers(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.name = "bad";
    sp.run = bad_outcome;
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    sp.name = "silent";
    sp.run = silent_error;
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    dp_run_opts_t o = opts_of(2, 0, false);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "bad=failed silent=failed");
    assert_string_equal(tu_jr(r, "bad")->error, "job returned an invalid outcome 42");
    assert_string_equal(tu_jr(r, "silent")->error, "failed (no message)");
    dp_result_free(r);
    dp_graph_free(g);
}

/* attempt_end: once per attempt that called run or check (also a failed,
 * retried or cut one), never for a job that did not start. */
static void test_attempt_end_once_per_attempt(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "A", "fail=2 retries=2 check=ready");
    tu_set(s, "C", "check_only check=ready");
    tu_set(s, "N", "not_ready");
    tu_set(s, "T", "block timeout=20");
    dp_graph_t *g = tu_graph("A:;C:;N:;S:N;T:;U:T", s);
    dp_run_opts_t o = opts_of(3, 0, false);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "A=success C=success N=not_ready S=skipped T=failed U=skipped");
    assert_int_equal(atomic_load(&tu_job(s, "A")->attempt_ends), 3);
    assert_int_equal(atomic_load(&tu_job(s, "A")->checks), 1);
    assert_int_equal(atomic_load(&tu_job(s, "C")->attempt_ends), 1);
    assert_int_equal(atomic_load(&tu_job(s, "C")->checks), 1);
    assert_int_equal(runs_of(s, "C"), 0);
    assert_int_equal(atomic_load(&tu_job(s, "N")->attempt_ends), 1);
    assert_int_equal(atomic_load(&tu_job(s, "S")->attempt_ends), 0);
    assert_int_equal(atomic_load(&tu_job(s, "T")->attempt_ends), 1);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* ------------------------------------------------------------------------ */
/* Logging and events                                                        */
/* ------------------------------------------------------------------------ */

static int log_hello(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)tj;
    (void)is_check;
    (void)arg;
    dp_job_log(job, DP_LOG_INFO, "hello from attempt %u", dp_job_attempt(job));
    return dp_job_attempt(job) == 1 ? (int)dp_job_fail(job, false, "first try fails") : DP_READY;
}

static void test_log_records_carry_job_and_attempt(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "X", "retries=1");
    tu_hook(s, "X", log_hello, NULL);
    tu_set(s, "Y", "permanent");
    dp_graph_t *g = tu_graph("X:;Y:X", s);
    tu_log_t l;
    tu_log_init(&l);
    dp_run_opts_t o = opts_of(2, 0, true);
    o.log = tu_log_cb;
    o.log_user = &l;
    o.log_level = DP_LOG_DEBUG;
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "X=success Y=failed");
    assert_int_equal(tu_log_count(&l, "X", 1, "hello from attempt 1"), 1);
    assert_int_equal(tu_log_count(&l, "X", 2, "hello from attempt 2"), 1);
    assert_int_equal(tu_log_count(&l, "X", 1, "first try fails"), 1); /* the retry warning */
    assert_int_equal(tu_log_count(&l, "Y", 1, "Y run failed permanently"), 1);
    assert_int_equal(tu_log_count(&l, NULL, 0, "run started"), 1);
    assert_int_equal(tu_log_count(&l, NULL, 0, "run ended"), 1);
    /* Records of a job always carry an attempt. */
    pthread_mutex_lock(&l.mu);
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].job[0])
            assert_true(l.v[i].attempt >= 1);
    pthread_mutex_unlock(&l.mu);
    dp_result_free(r);
    tu_log_destroy(&l);

    /* At level error only errors come through. */
    tu_log_init(&l);
    o.log_level = DP_LOG_ERROR;
    r = tu_run(g, &o);
    assert_true(l.n >= 1);
    for (size_t i = 0; i < l.n; i++)
        assert_int_equal(l.v[i].level, DP_LOG_ERROR);
    assert_int_equal(tu_log_count(&l, "X", 0, "hello"), 0);
    dp_result_free(r);
    tu_log_destroy(&l);
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_events(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "X", "fail=1 retries=1");
    tu_set(s, "Y", "not_ready");
    dp_graph_t *g = tu_graph("X:;Y:X;Z:Y;W:Z", s);
    tu_events_t ev;
    tu_events_init(&ev);
    dp_run_opts_t o = opts_of(2, 0, true);
    o.on_event = tu_event_cb;
    o.event_user = &ev;
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "X=success Y=not_ready Z=skipped W=skipped");
    assert_string_equal(tu_events_of(&ev, "X"), "start1 end1:failed start2 end2:success job:success");
    assert_string_equal(tu_events_of(&ev, "Y"), "start1 end1:not_ready job:not_ready");
    assert_string_equal(tu_events_of(&ev, "Z"), "skipped");
    assert_string_equal(tu_events_of(&ev, "W"), "skipped");
    /* X's failed attempt carries its error; Y starts after X ended; times
     * never go backwards per job. */
    size_t x_end = SIZE_MAX, y_start = SIZE_MAX;
    for (size_t i = 0; i < ev.n; i++) {
        const tu_event_t *e = &ev.v[i];
        if (!strcmp(e->name, "X") && e->kind == DP_EV_ATTEMPT_END && e->attempt == 1)
            assert_string_equal(e->error, "X failed (attempt 1)");
        if (!strcmp(e->name, "X") && e->kind == DP_EV_JOB_END)
            x_end = i;
        if (!strcmp(e->name, "Y") && e->kind == DP_EV_ATTEMPT_START)
            y_start = i;
    }
    assert_true(x_end < y_start && y_start != SIZE_MAX);
    assert_true(ev.v[y_start].time_ns >= ev.v[x_end].time_ns);
    /* A job's end says when it started: at its first attempt's start (the
     * clocks of the two may differ by a little: 1 ms allowed), before its
     * end; every other event says -1. */
    for (size_t i = 0; i < ev.n; i++) {
        const tu_event_t *e = &ev.v[i];
        if (e->kind != DP_EV_JOB_END) {
            assert_int_equal(e->start_ns, -1);
            continue;
        }
        const tu_event_t *first = NULL;
        for (size_t k = 0; k < i && !first; k++)
            if (!strcmp(ev.v[k].name, e->name) && ev.v[k].kind == DP_EV_ATTEMPT_START)
                first = &ev.v[k];
        assert_non_null(first);
        assert_true(e->start_ns >= 0 && (uint64_t)e->start_ns <= e->time_ns);
        assert_true((uint64_t)e->start_ns <= first->time_ns + 1000000u);
        assert_true((uint64_t)e->start_ns + 1000000u >= first->time_ns);
    }
    dp_result_free(r);
    tu_events_destroy(&ev);

    /* A job cut by the timeout: its attempt ends "unknown", and so does
     * the job. */
    tu_events_init(&ev);
    tu_set(s, "X", "block");
    dp_graph_free(g);
    g = tu_graph("X:;Y:X", s);
    o = opts_of(1, 150, true);
    o.on_event = tu_event_cb;
    o.event_user = &ev;
    r = tu_run(g, &o);
    assert_string_equal(tu_events_of(&ev, "X"), "start1 end1:unknown job:unknown");
    assert_string_equal(tu_events_of(&ev, "Y"), "");
    dp_result_free(r);
    tu_events_destroy(&ev);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The ready queue's slots are left zero by each run (dp__queue_clean) and
 * not cleared up front by the next: runs of one graph with more, then
 * fewer, then more workers (tickets move), a run cut short with jobs still
 * queued, and a re-validate whose cycle check wrote where the queue goes,
 * each run every job exactly once (debug builds also assert the slots are
 * zero when a run opens its queue). */
static void test_queue_slots_clean_between_runs(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_layers(6, 10);
    dp_graph_t *g = tu_graph(spec, s);
    free(spec);
    unsigned workers[] = {8, 1, 3, 8, 2};
    unsigned total = 0;
    for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++) {
        dp_run_opts_t o = opts_of(workers[i], 0, true);
        dp_result_t *r = tu_run(g, &o);
        assert_true(dp_result_is_ready(r));
        dp_result_free(r);
        total += 60;
        assert_int_equal(atomic_load(&s->total_runs), total);
    }
    /* Cut short: the first layer blocks until the run's deadline, with
     * successors queued behind it. */
    tu_set(s, "L0_0,L0_1", "block");
    dp_run_opts_t o = opts_of(4, 50, true);
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    dp_result_free(r);
    tu_set(s, "L0_0,L0_1", "block=0");
    /* A change: validate runs its cycle check over the scratch again. */
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.name = "extra";
    sp.run = noop_job;
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "extra", "L5_0"), DP_OK);
    unsigned before = atomic_load(&s->total_runs);
    for (unsigned w = 1; w <= 4; w += 3) {
        o = opts_of(w, 0, true);
        r = tu_run(g, &o);
        assert_true(dp_result_is_ready(r));
        dp_result_free(r);
    }
    assert_int_equal(atomic_load(&s->total_runs), before + 2 * 60); /* "extra" is not scripted */
    dp_graph_free(g);
    tu_script_free(s);
}

/* A program built against the 1.0 header calls dp_run_opts_init and
 * dp_graph_run (the symbols, not the header's macros) with a struct that
 * ends after `seed`: nothing past it may be written or read. The struct
 * here is a full one whose tail holds garbage; under ASan a 1.0-sized
 * allocation makes any access past it a report too. */
static void test_run_opts_of_a_1_0_program(void **state)
{
    (void)state;
    size_t size_1_0 = offsetof(dp_run_opts_t, seed) + sizeof(uint64_t);
    assert_true(size_1_0 < sizeof(dp_run_opts_t));
    dp_run_opts_t *full = malloc(sizeof *full);
    assert_non_null(full);
    memset(full, 0xAB, sizeof *full);
    (dp_run_opts_init)(full);
    assert_int_equal(full->max_concurrent_jobs, 4);
    for (size_t i = size_1_0; i < sizeof *full; i++)
        assert_int_equal(((unsigned char *)full)[i], 0xAB); /* the tail untouched */

    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:A", s);
    char err[256] = "";
    full->max_concurrent_jobs = 2;
    dp_result_t *r = (dp_graph_run)(g, full, err, sizeof err); /* executor, clock: garbage, not read */
    assert_non_null(r);
    tu_expect(r, "A=success B=success C=success");
    dp_result_free(r);

    dp_run_opts_t *small = malloc(size_1_0);
    assert_non_null(small);
    (dp_run_opts_init)(small);
    r = (dp_graph_run)(g, small, err, sizeof err);
    assert_non_null(r);
    tu_expect(r, "A=success B=success C=success");
    dp_result_free(r);
    free(small);
    free(full);
    dp_graph_free(g);
    tu_script_free(s);
}

static dp_outcome_t ok_job(dp_job_t *job, void *user)
{
    (void)job;
    (*(int *)user)++;
    return DP_READY;
}

/* A program built against the 1.0 header has a dp_job_spec_t that ends
 * after `limits` and calls the unsized entry points: they read and write
 * only those bytes (a heap block of exactly that size, so ASan sees any
 * read beyond it) and give the later fields their defaults. */
static void test_job_spec_of_a_1_0_program(void **state)
{
    (void)state;
    size_t size_1_0 = offsetof(dp_job_spec_t, limits) + sizeof(dp_limits_t);
    assert_true(size_1_0 <= sizeof(dp_job_spec_t));
    dp_job_spec_t *full = malloc(sizeof *full);
    assert_non_null(full);
    memset(full, 0xAB, sizeof *full);
    (dp_job_spec_init)(full);
    assert_int_equal(full->backoff.initial_ms, 1000);
    assert_int_equal(full->readiness.probe_timeout_ms, 30000);
    for (size_t i = size_1_0; i < sizeof *full; i++)
        assert_int_equal(((unsigned char *)full)[i], 0xAB); /* the tail untouched */
    free(full);

    int calls = 0;
    dp_graph_t *g = dp_graph_new();
    assert_non_null(g);
    char err[256] = "";
    char name[16];
    for (int i = 0; i < 12; i++) {
        dp_job_spec_t *small = malloc(size_1_0);
        assert_non_null(small);
        (dp_job_spec_init)(small);
        snprintf(name, sizeof name, "j%02d", i);
        small->name = name;
        small->run = ok_job;
        small->user = &calls;
        uint32_t id;
        if (i % 2)
            assert_int_equal((dp_graph_add_job)(g, small, err, sizeof err), DP_OK);
        else
            assert_int_equal((dp_graph_add_job_id)(g, small, &id, err, sizeof err), DP_OK);
        free(small);
        if (i)
            assert_int_equal(dp_graph_add_dep_ids(g, (uint32_t)i, (uint32_t)(i - 1)), DP_OK);
    }
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(calls, 12);
    dp_result_free(r);
    dp_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_opts_of_a_1_0_program),
        cmocka_unit_test(test_job_spec_of_a_1_0_program),
        cmocka_unit_test(test_queue_slots_clean_between_runs),
        cmocka_unit_test(test_empty_graph),
        cmocka_unit_test(test_single_job),
        cmocka_unit_test(test_seed_dag_runs_in_dependency_order),
        cmocka_unit_test(test_large_layered_graph),
        cmocka_unit_test(test_concurrency_bound_flat),
        cmocka_unit_test(test_chain_starts_one_worker),
        cmocka_unit_test(test_fan_out_starts_workers_up_to_bound),
        cmocka_unit_test(test_concurrency_bound_layered),
        cmocka_unit_test(test_concurrency_bound_with_parked_polls),
        cmocka_unit_test(test_parked_job_timeout_retried),
        cmocka_unit_test(test_concurrency_below_one_refused),
        cmocka_unit_test(test_not_ready_skips_exactly_the_successors),
        cmocka_unit_test(test_not_ready_tiny),
        cmocka_unit_test(test_several_not_ready_roots),
        cmocka_unit_test(test_fail_fast_tiny),
        cmocka_unit_test(test_fail_fast_large),
        cmocka_unit_test(test_keep_going),
        cmocka_unit_test(test_global_timeout),
        cmocka_unit_test(test_global_timeout_large),
        cmocka_unit_test(test_job_timeout),
        cmocka_unit_test(test_job_timeout_is_retryable),
        cmocka_unit_test(test_attempt_deadline_never_outlives_run),
        cmocka_unit_test(test_retries_count_attempts),
        cmocka_unit_test(test_backoff_is_honoured),
        cmocka_unit_test(test_permanent_error_not_retried),
        cmocka_unit_test(test_backoff_cut_by_timeout),
        cmocka_unit_test(test_backoff_cut_by_cancel),
        cmocka_unit_test(test_backoff_parks_and_frees_its_thread),
        cmocka_unit_test(test_snapshot_keys_long_names),
        cmocka_unit_test(test_cancel_from_another_thread),
        cmocka_unit_test(test_parent_cancelled_before_run),
        cmocka_unit_test(test_parent_deadline_is_a_timeout),
        cmocka_unit_test(test_deadline_after_every_job_ended_cuts_nothing),
        cmocka_unit_test(test_repeated_runs_same_result),
        cmocka_unit_test(test_graph_busy_while_running),
        cmocka_unit_test(test_odd_answers),
        cmocka_unit_test(test_attempt_end_once_per_attempt),
        cmocka_unit_test(test_log_records_carry_job_and_attempt),
        cmocka_unit_test(test_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
