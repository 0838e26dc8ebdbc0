/* test_executor.c - worker threads kept between runs (host/src/executor.c,
 * and pool.c starting workers on them): runs on an executor reuse its
 * threads instead of creating their own, fall back to threads of their own
 * beyond its size, share it between graphs at once, and end the same way
 * as without one (parked polls, retries, fail-fast, cancellation). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "testutil.h"

/* The kernel thread ids that ran jobs (a TID is not reused while the
 * process is young; pthread_t values are, from glibc's stack cache). */
#define MAX_TIDS 256

typedef struct tids {
    pthread_mutex_t mu;
    long v[MAX_TIDS];
    size_t n;
} tids_t;

static void tids_add(tids_t *t, long tid)
{
    pthread_mutex_lock(&t->mu);
    bool seen = false;
    for (size_t i = 0; i < t->n; i++)
        seen = seen || t->v[i] == tid;
    if (!seen && t->n < MAX_TIDS)
        t->v[t->n++] = tid;
    pthread_mutex_unlock(&t->mu);
}

static dp_outcome_t record_tid(dp_job_t *job, void *user)
{
    (void)job;
    tids_add(user, (long)syscall(SYS_gettid));
    struct timespec ts = {0, 2000000}; /* 2 ms: both workers get jobs */
    nanosleep(&ts, NULL);
    return DP_READY;
}

static dp_graph_t *tid_graph(tids_t *t, unsigned n)
{
    dp_graph_t *g = dp_graph_new_hint(n, 0);
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = record_tid;
    sp.user = t;
    char err[256];
    for (unsigned j = 0; j < n; j++) {
        uint32_t id;
        assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_OK);
    }
    return g;
}

/* Ten runs on an executor of two threads: every job ran on one of two
 * threads in all. Without the executor each run makes its own. */
static void test_threads_are_kept_between_runs(void **state)
{
    (void)state;
    tids_t with = {.mu = PTHREAD_MUTEX_INITIALIZER}, without = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dp_graph_t *g = tid_graph(&with, 8), *h = tid_graph(&without, 8);
    dp_executor_t *ex = dp_executor_new(2);
    assert_non_null(ex);
    assert_int_equal(dp_executor_threads(ex), 0); /* none before a run needs one */
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    assert_null(opts.executor);
    opts.max_concurrent_jobs = 2;
    for (int r = 0; r < 10; r++) {
        opts.executor = ex;
        dp_result_t *res = tu_run(g, &opts);
        assert_true(dp_result_is_ready(res));
        dp_result_free(res);
        opts.executor = NULL;
        res = tu_run(h, &opts);
        assert_true(dp_result_is_ready(res));
        dp_result_free(res);
    }
    assert_true(with.n <= 2);
    assert_true(dp_executor_threads(ex) <= 2);
    assert_true(without.n > 2); /* the control: fresh threads every run */
    dp_executor_free(ex);
    dp_graph_free(g);
    dp_graph_free(h);
}

/* An executor smaller than the run's bound: the rest of the workers are
 * threads of the run's own, and the bound is still reached (4 jobs meet). */
static void test_more_workers_than_the_executor(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "rendezvous=4 sleep=1");
    char *spec = tu_spec_flat(12);
    dp_graph_t *g = tu_graph(spec, s);
    free(spec);
    dp_executor_t *ex = dp_executor_new(1);
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.max_concurrent_jobs = 4;
    opts.executor = ex;
    for (int r = 0; r < 3; r++) {
        dp_result_t *res = tu_run(g, &opts);
        assert_true(dp_result_is_ready(res));
        dp_result_free(res);
    }
    assert_int_equal(atomic_load(&s->max_running), 4);
    assert_int_equal(dp_executor_threads(ex), 1);
    dp_executor_free(ex);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Two graphs run at once, again and again, on one executor. */
typedef struct runner {
    dp_graph_t *g;
    dp_executor_t *ex;
    int ok;
} runner_t;

static void *run_many(void *p)
{
    runner_t *r = p;
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.max_concurrent_jobs = 2;
    opts.executor = r->ex;
    char err[256];
    for (int i = 0; i < 20; i++) {
        dp_result_t *res = dp_graph_run(r->g, &opts, err, sizeof err);
        if (res && dp_result_is_ready(res))
            r->ok++;
        dp_result_free(res);
    }
    return NULL;
}

static void test_graphs_share_an_executor(void **state)
{
    (void)state;
    tu_script_t *s1 = tu_script_new(), *s2 = tu_script_new();
    char *spec = tu_spec_layers(4, 6);
    runner_t r1 = {.g = tu_graph(spec, s1)}, r2 = {.g = tu_graph(spec, s2)};
    free(spec);
    dp_executor_t *ex = dp_executor_new(2);
    r1.ex = r2.ex = ex;
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, run_many, &r1), 0);
    assert_int_equal(pthread_create(&t2, NULL, run_many, &r2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(r1.ok, 20);
    assert_int_equal(r2.ok, 20);
    assert_true(dp_executor_threads(ex) <= 2);
    tu_expect_dep_order(r1.g, s1);
    dp_executor_free(ex);
    dp_graph_free(r1.g);
    dp_graph_free(r2.g);
    tu_script_free(s1);
    tu_script_free(s2);
}

/* Parked readiness polls, a retry's backoff, fail-fast and cancellation end
 * the same on an executor as without one, run after run. */
static void test_outcomes_on_an_executor(void **state)
{
    (void)state;
    dp_executor_t *ex = dp_executor_new(3);
    for (int r = 0; r < 3; r++) {
        tu_script_t *s = tu_script_new();
        tu_set(s, "A", "check=ready check_after=3 period=5");
        tu_set(s, "B", "fail=1 retries=2 backoff=5");
        tu_set(s, "D", "permanent");
        dp_graph_t *g = tu_graph("A:;B:;C:A,B;D:C;E:D", s);
        dp_run_opts_t opts;
        dp_run_opts_init(&opts);
        opts.max_concurrent_jobs = 3;
        opts.executor = ex;
        dp_result_t *res = tu_run(g, &opts);
        tu_expect(res, "A=success B=success C=success D=failed E=unknown");
        assert_int_equal(dp_result_outcome(res), DP_RUN_FAILED);
        assert_int_equal(dp_result_job(res, 1)->attempts, 2);
        dp_result_free(res);

        /* cancelled from outside while C blocks */
        tu_set(s, "C", "block");
        dp_ctx_t *parent = dp_ctx_new(NULL, 0);
        opts.parent = parent;
        opts.timeout_ms = 0;
        dp_ctx_cancel(parent);
        res = tu_run(g, &opts);
        assert_int_equal(dp_result_outcome(res), DP_RUN_CANCELLED);
        dp_result_free(res);
        dp_ctx_free(parent);

        /* a global timeout cuts the blocked job */
        opts.parent = NULL;
        opts.timeout_ms = 50;
        res = tu_run(g, &opts);
        assert_int_equal(dp_result_outcome(res), DP_RUN_TIMEOUT);
        tu_expect(res, "C=unknown");
        dp_result_free(res);
        dp_graph_free(g);
        tu_script_free(s);
    }
    assert_true(dp_executor_threads(ex) <= 3);
    dp_executor_free(ex);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_null(dp_executor_new(0));
    dp_executor_free(NULL);
    assert_int_equal(dp_executor_threads(NULL), 0);
    dp_executor_free(dp_executor_new(4)); /* never used: no thread to join */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_are_kept_between_runs),
        cmocka_unit_test(test_more_workers_than_the_executor),
        cmocka_unit_test(test_graphs_share_an_executor),
        cmocka_unit_test(test_outcomes_on_an_executor),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
