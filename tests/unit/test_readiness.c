/* test_readiness.c - the seed's Prober and Poller on their own (dp_probe,
 * dp_poll in host/src/readiness.c) and readiness inside a job's attempt
 * (host/src/job.c): probe once after run, poll with a period until ready,
 * readiness timeout -> not_ready with requeue_after, probe timeout -> error. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "testutil.h"

static void msleep(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* A configurable check for dp_probe / dp_poll. */
typedef struct chk {
    atomic_uint calls;
    unsigned ready_on;         /* ready on this call (0: never) */
    unsigned error_on;         /* error on this call (0: never) */
    bool silent_error;         /* error without a message */
    int bad_outcome;           /* return this invalid value */
    unsigned sleep_ms;         /* honouring ctx */
    unsigned deaf_ms;          /* ignoring ctx, then answer */
    _Atomic int64_t remaining; /* dp_ctx_remaining_ms seen on the last call */
} chk_t;

static dp_outcome_t check_fn(dp_ctx_t *ctx, void *arg, char *err, size_t errlen)
{
    chk_t *c = arg;
    unsigned call = atomic_fetch_add(&c->calls, 1) + 1;
    atomic_store(&c->remaining, dp_ctx_remaining_ms(ctx));
    if (c->sleep_ms && dp_ctx_sleep(ctx, c->sleep_ms) != 0) {
        snprintf(err, errlen, "check interrupted");
        return DP_ERROR;
    }
    if (c->deaf_ms)
        msleep(c->deaf_ms);
    if (c->bad_outcome)
        return (dp_outcome_t)c->bad_outcome;
    if (c->error_on && call == c->error_on) {
        if (!c->silent_error)
            snprintf(err, errlen, "boom on call %u", call);
        return DP_ERROR;
    }
    if (c->ready_on && call >= c->ready_on)
        return DP_READY;
    return DP_NOT_READY;
}

/* Cancels ctx from another thread after delay_ms. */
typedef struct later {
    dp_ctx_t *ctx;
    unsigned delay_ms;
    pthread_t t;
} later_t;

static void *later_main(void *p)
{
    later_t *l = p;
    msleep(l->delay_ms);
    dp_ctx_cancel(l->ctx);
    return NULL;
}

static void cancel_later(later_t *l, dp_ctx_t *ctx, unsigned delay_ms)
{
    l->ctx = ctx;
    l->delay_ms = delay_ms;
    assert_int_equal(pthread_create(&l->t, NULL, later_main, l), 0);
}

/* ------------------------------------------------------------------------ */
/* Prober                                                                    */
/* ------------------------------------------------------------------------ */

static void test_probe_answers(void **state)
{
    (void)state;
    char err[256];
    chk_t c = {.ready_on = 1};
    assert_int_equal(dp_probe(NULL, 1000, check_fn, &c, err, sizeof err), DP_READY);
    assert_string_equal(err, "");
    assert_int_equal(atomic_load(&c.calls), 1);

    chk_t n = {0};
    assert_int_equal(dp_probe(NULL, 1000, check_fn, &n, err, sizeof err), DP_NOT_READY);
    assert_int_equal(atomic_load(&n.calls), 1);

    chk_t e = {.error_on = 1};
    assert_int_equal(dp_probe(NULL, 1000, check_fn, &e, err, sizeof err), DP_ERROR);
    assert_string_equal(err, "boom on call 1");

    chk_t s = {.error_on = 1, .silent_error = true};
    assert_int_equal(dp_probe(NULL, 1000, check_fn, &s, err, sizeof err), DP_ERROR);
    assert_string_equal(err, "readiness check failed (no message)");

    chk_t b = {.bad_outcome = 7};
    assert_int_equal(dp_probe(NULL, 1000, check_fn, &b, err, sizeof err), DP_ERROR);
    assert_non_null(strstr(err, "invalid outcome 7"));

    assert_int_equal(dp_probe(NULL, 1000, NULL, NULL, err, sizeof err), DP_ERROR);
    /* NULL err buffer is fine. */
    chk_t e2 = {.error_on = 1};
    assert_int_equal(dp_probe(NULL, 1000, check_fn, &e2, NULL, 0), DP_ERROR);
}

/* The check sees a context bounded by the probe timeout. */
static void test_probe_context_deadline(void **state)
{
    (void)state;
    char err[256];
    chk_t c = {.ready_on = 1};
    assert_int_equal(dp_probe(NULL, 500, check_fn, &c, err, sizeof err), DP_READY);
    int64_t rem = atomic_load(&c.remaining);
    assert_true(rem > 0 && rem <= 500);
    /* Under a parent with a nearer deadline, the parent's wins. */
    dp_ctx_t *p = dp_ctx_new(NULL, 200);
    assert_int_equal(dp_probe(p, 10000, check_fn, &c, err, sizeof err), DP_READY);
    rem = atomic_load(&c.remaining);
    assert_true(rem > 0 && rem <= 200);
    /* No timeout, no parent: no deadline. */
    assert_int_equal(dp_probe(NULL, 0, check_fn, &c, err, sizeof err), DP_READY);
    assert_int_equal(atomic_load(&c.remaining), -1);
    dp_ctx_free(p);
}

/* A check that outlives the probe timeout: error "probe timed out", both
 * when it notices the context and when it answers late. */
static void test_probe_timeout(void **state)
{
    (void)state;
    char err[256];
    chk_t c = {.sleep_ms = 5000, .ready_on = 1};
    uint64_t t0 = dp_test_now_ms();
    assert_int_equal(dp_probe(NULL, 30, check_fn, &c, err, sizeof err), DP_ERROR);
    uint64_t took = dp_test_now_ms() - t0;
    assert_true(took >= 29 && took < 2000);
    assert_string_equal(err, "readiness probe timed out after 30ms");

    chk_t d = {.deaf_ms = 50, .ready_on = 1};
    assert_int_equal(dp_probe(NULL, 20, check_fn, &d, err, sizeof err), DP_ERROR);
    assert_string_equal(err, "readiness probe timed out after 20ms");
}

static void test_probe_cancellation(void **state)
{
    (void)state;
    char err[256];
    dp_ctx_t *ctx = dp_ctx_new(NULL, 0);
    dp_ctx_cancel(ctx);
    chk_t c = {.ready_on = 1};
    assert_int_equal(dp_probe(ctx, 1000, check_fn, &c, err, sizeof err), DP_ERROR);
    assert_string_equal(err, "cancelled");
    assert_int_equal(atomic_load(&c.calls), 0);
    dp_ctx_free(ctx);

    /* Cancelled while the check runs. */
    ctx = dp_ctx_new(NULL, 0);
    chk_t s = {.sleep_ms = 5000, .ready_on = 1};
    later_t l;
    /* t0 before the canceller starts: its delay counts from its start. */
    uint64_t t0 = dp_test_now_ms();
    cancel_later(&l, ctx, 30);
    assert_int_equal(dp_probe(ctx, 10000, check_fn, &s, err, sizeof err), DP_ERROR);
    assert_true(dp_test_now_ms() - t0 < 2000);
    pthread_join(l.t, NULL);
    /* The check's own message is kept. */
    assert_string_equal(err, "check interrupted");
    dp_ctx_free(ctx);

    /* The caller's deadline, nearer than the probe timeout: "timed out",
     * not the probe's timeout. */
    ctx = dp_ctx_new(NULL, 30);
    chk_t d = {.sleep_ms = 5000, .ready_on = 1};
    assert_int_equal(dp_probe(ctx, 10000, check_fn, &d, err, sizeof err), DP_ERROR);
    assert_null(strstr(err, "probe timed out"));
    dp_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Poller                                                                    */
/* ------------------------------------------------------------------------ */

static void test_poll_ready_at_once(void **state)
{
    (void)state;
    char err[256];
    chk_t c = {.ready_on = 1};
    uint64_t t0 = dp_test_now_ms();
    assert_int_equal(dp_poll(NULL, 5000, 1000, 10000, check_fn, &c, err, sizeof err), DP_READY);
    assert_true(dp_test_now_ms() - t0 < 1000);
    assert_int_equal(atomic_load(&c.calls), 1);
}

static void test_poll_until_ready(void **state)
{
    (void)state;
    char err[256];
    chk_t c = {.ready_on = 3};
    uint64_t t0 = dp_test_now_ms();
    assert_int_equal(dp_poll(NULL, 20, 1000, 5000, check_fn, &c, err, sizeof err), DP_READY);
    uint64_t took = dp_test_now_ms() - t0;
    assert_int_equal(atomic_load(&c.calls), 3);
    assert_true(took >= 39);
    assert_true(took < 2000);
}

static void test_poll_error_stops(void **state)
{
    (void)state;
    char err[256];
    chk_t c = {.error_on = 2, .ready_on = 5};
    assert_int_equal(dp_poll(NULL, 5, 1000, 5000, check_fn, &c, err, sizeof err), DP_ERROR);
    assert_int_equal(atomic_load(&c.calls), 2);
    assert_string_equal(err, "boom on call 2");
}

static void test_poll_timeout_is_not_ready(void **state)
{
    (void)state;
    char err[256];
    chk_t c = {0};
    uint64_t t0 = dp_test_now_ms();
    assert_int_equal(dp_poll(NULL, 20, 1000, 90, check_fn, &c, err, sizeof err), DP_NOT_READY);
    uint64_t took = dp_test_now_ms() - t0;
    assert_true(took >= 89 && took < 2000);
    unsigned calls = atomic_load(&c.calls);
    assert_true(calls >= 2 && calls <= 6);

    /* A check still running when the poll's time is up: the wait ends,
     * not ready (not a failed check). */
    chk_t s = {.sleep_ms = 5000, .ready_on = 1};
    t0 = dp_test_now_ms();
    assert_int_equal(dp_poll(NULL, 20, 10000, 40, check_fn, &s, err, sizeof err), DP_NOT_READY);
    assert_true(dp_test_now_ms() - t0 < 2000);
}

static void test_poll_probe_timeout_is_error(void **state)
{
    (void)state;
    char err[256];
    chk_t c = {.sleep_ms = 5000, .ready_on = 1};
    assert_int_equal(dp_poll(NULL, 10, 30, 5000, check_fn, &c, err, sizeof err), DP_ERROR);
    assert_string_equal(err, "readiness probe timed out after 30ms");
    assert_int_equal(atomic_load(&c.calls), 1);
}

static void test_poll_cancellation(void **state)
{
    (void)state;
    char err[256];
    /* Cancelled while waiting between probes. */
    dp_ctx_t *ctx = dp_ctx_new(NULL, 0);
    chk_t c = {0};
    later_t l;
    /* t0 before the canceller starts: its delay counts from its start. */
    uint64_t t0 = dp_test_now_ms();
    cancel_later(&l, ctx, 50);
    assert_int_equal(dp_poll(ctx, 20000, 1000, 0, check_fn, &c, err, sizeof err), DP_ERROR);
    uint64_t took = dp_test_now_ms() - t0;
    pthread_join(l.t, NULL);
    assert_true(took >= 45 && took < 2000);
    assert_string_equal(err, "cancelled");
    assert_int_equal(atomic_load(&c.calls), 1);
    dp_ctx_free(ctx);

    /* Already cancelled: no probe at all. */
    ctx = dp_ctx_new(NULL, 0);
    dp_ctx_cancel(ctx);
    chk_t r = {.ready_on = 1};
    assert_int_equal(dp_poll(ctx, 10, 1000, 0, check_fn, &r, err, sizeof err), DP_ERROR);
    assert_int_equal(atomic_load(&r.calls), 0);
    dp_ctx_free(ctx);

    /* The caller's deadline: error "timed out" (the caller decides), not
     * the poll's own not ready. */
    ctx = dp_ctx_new(NULL, 50);
    chk_t d = {0};
    assert_int_equal(dp_poll(ctx, 10, 1000, 0, check_fn, &d, err, sizeof err), DP_ERROR);
    assert_string_equal(err, "timed out");
    dp_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Readiness inside a job                                                    */
/* ------------------------------------------------------------------------ */

static void test_job_probe_once_after_run(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "ok", "check=ready");
    tu_set(s, "nr", "check=not_ready");
    tu_set(s, "bad", "check=error");
    tu_set(s, "runnr", "not_ready check=ready");
    tu_set(s, "runerr", "error check=ready");
    dp_graph_t *g = tu_graph("ok;nr;nr2:nr;bad;bad2:bad;runnr;runerr", s);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.fail_fast = false;
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "ok=success nr=not_ready nr2=skipped bad=failed bad2=skipped runnr=not_ready "
                 "runerr=failed");
    assert_int_equal(atomic_load(&tu_job(s, "ok")->checks), 1);
    assert_int_equal(atomic_load(&tu_job(s, "ok")->runs), 1);
    assert_int_equal(atomic_load(&tu_job(s, "nr")->checks), 1);
    assert_string_equal(tu_jr(r, "bad")->error, "bad check failed (attempt 1)");
    /* run's own answer decides when it is not ready: no check. */
    assert_int_equal(atomic_load(&tu_job(s, "runnr")->checks), 0);
    assert_int_equal(atomic_load(&tu_job(s, "runerr")->checks), 0);
    /* A probe once gives no requeue hint. */
    assert_int_equal(dp_result_requeue_after_ms(r), -1);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_job_poll_until_ready(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "P", "check_after=3 period=15");
    tu_set(s, "C", "check_only check_after=2 period=10");
    dp_graph_t *g = tu_graph("P;Q:P;C", s);
    dp_result_t *r = tu_run(g, NULL);
    tu_expect(r, "P=success Q=success C=success");
    assert_int_equal(atomic_load(&tu_job(s, "P")->checks), 3);
    assert_int_equal(atomic_load(&tu_job(s, "P")->runs), 1);
    assert_int_equal(tu_jr(r, "P")->attempts, 1);
    assert_true(tu_jr(r, "P")->duration_ms >= 29);
    assert_true(tu_jr(r, "Q")->start_ms >= 29);
    assert_int_equal(atomic_load(&tu_job(s, "C")->checks), 2);
    assert_int_equal(atomic_load(&tu_job(s, "C")->runs), 0);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_job_readiness_timeout_is_not_ready(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "W", "check=not_ready period=20 rtimeout=70");
    dp_graph_t *g = tu_graph("W;V:W;U", s);
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, NULL);
    uint64_t took = dp_test_now_ms() - t0;
    tu_expect(r, "W=not_ready V=skipped U=success");
    assert_int_equal(dp_result_outcome(r), DP_RUN_NOT_READY);
    assert_int_equal(dp_result_requeue_after_ms(r), 20);
    assert_null(tu_jr(r, "W")->error);
    unsigned checks = atomic_load(&tu_job(s, "W")->checks);
    assert_true(checks >= 2 && checks <= 5);
    assert_true(took >= 69 && took < 3000);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_job_probe_timeout_is_error(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "once", "check=ready check_sleep=5000 probe_timeout=30");
    tu_set(s, "polled", "check=ready check_sleep=5000 probe_timeout=30 period=10 rtimeout=2000");
    dp_graph_t *g = tu_graph("once;polled", s);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.fail_fast = false;
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    assert_true(dp_test_now_ms() - t0 < 3000);
    tu_expect(r, "once=failed polled=failed");
    assert_string_equal(tu_jr(r, "once")->error, "readiness probe timed out after 30ms");
    assert_string_equal(tu_jr(r, "polled")->error, "readiness probe timed out after 30ms");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The job's own timeout bounds its readiness wait too: error "timed out
 * after ...", and the cut poll suggests when to look again. */
static void test_job_timeout_bounds_readiness(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "J", "check=not_ready period=10 timeout=60");
    dp_graph_t *g = tu_graph("J", s);
    dp_result_t *r = tu_run(g, NULL);
    tu_expect(r, "J=failed");
    assert_string_equal(tu_jr(r, "J")->error, "timed out after 60ms");
    assert_int_equal(dp_result_requeue_after_ms(r), 10);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A failing check is retried as an attempt: run again, then check again. */
static void test_job_check_error_retried(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "R", "check=error retries=2");
    dp_graph_t *g = tu_graph("R", s);
    dp_result_t *r = tu_run(g, NULL);
    tu_expect(r, "R=failed");
    assert_int_equal(tu_jr(r, "R")->attempts, 3);
    assert_int_equal(atomic_load(&tu_job(s, "R")->runs), 3);
    assert_int_equal(atomic_load(&tu_job(s, "R")->checks), 3);
    assert_string_equal(tu_jr(r, "R")->error, "R check failed (attempt 3)");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The check runs under a probe context bounded by probe_timeout. */
static _Atomic int64_t check_remaining = -2;
static int note_check_ctx(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)tj;
    (void)arg;
    if (is_check)
        atomic_store(&check_remaining, dp_ctx_remaining_ms(dp_job_ctx(job)));
    return -1;
}

static void test_job_check_sees_probe_context(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "K", "check=ready probe_timeout=300");
    tu_hook(s, "K", note_check_ctx, NULL);
    dp_graph_t *g = tu_graph("K", s);
    dp_result_t *r = tu_run(g, NULL);
    tu_expect(r, "K=success");
    int64_t rem = atomic_load(&check_remaining);
    assert_true(rem > 0 && rem <= 300);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* ------------------------------------------------------------------------ */
/* Parked polls: a polling job waits without a thread of its own             */
/* ------------------------------------------------------------------------ */

/* Jobs polling readiness wait parked, and their due probes run in batches
 * on one benched worker (the time keeper): after each job's first probe
 * (on the worker that ran it), 200 jobs' probes run on a handful of
 * threads, not on 200. */
#define FEW_JOBS 200
typedef struct few {
    pthread_mutex_t mu;
    pthread_t seen[FEW_JOBS];
    unsigned nseen;
    atomic_uint first[FEW_JOBS]; /* probes per job */
    atomic_bool ready;
    atomic_int busy[FEW_JOBS]; /* a callback of this job is running */
    atomic_uint overlaps;      /* one job's callbacks ran concurrently */
} few_t;

static few_t few;

static dp_outcome_t few_check(dp_job_t *job, void *user)
{
    (void)job;
    unsigned i = (unsigned)(uintptr_t)user;
    if (atomic_fetch_add(&few.busy[i], 1) != 0)
        atomic_fetch_add(&few.overlaps, 1);
    /* Probes of parked jobs while they all wait (the ones that end the jobs
     * hand the time keeping on, one thread per job that ends). */
    if (atomic_fetch_add(&few.first[i], 1) > 0 && !atomic_load(&few.ready)) {
        pthread_t me = pthread_self();
        pthread_mutex_lock(&few.mu);
        bool known = false;
        for (unsigned k = 0; k < few.nseen && !known; k++)
            known = pthread_equal(few.seen[k], me);
        if (!known && few.nseen < FEW_JOBS)
            few.seen[few.nseen++] = me;
        pthread_mutex_unlock(&few.mu);
    }
    dp_outcome_t o = atomic_load(&few.ready) ? DP_READY : DP_NOT_READY;
    atomic_fetch_sub(&few.busy[i], 1);
    return o;
}

typedef struct few_runner {
    dp_graph_t *g;
    dp_run_opts_t o;
    dp_result_t *r;
} few_runner_t;

static void *few_run(void *p)
{
    few_runner_t *fr = p;
    fr->r = dp_graph_run(fr->g, &fr->o, NULL, 0);
    return NULL;
}

static void test_parked_polls_share_few_threads(void **state)
{
    (void)state;
    memset(&few, 0, sizeof few);
    pthread_mutex_init(&few.mu, NULL);
    dp_graph_t *g = dp_graph_new();
    char err[256];
    for (unsigned i = 0; i < FEW_JOBS; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%03u", i);
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = name;
        spec.check = few_check;
        spec.user = (void *)(uintptr_t)i;
        spec.readiness.period_ms = 10;
        spec.readiness.timeout_ms = 20000;
        assert_int_equal(dp_graph_add_job(g, &spec, err, sizeof err), DP_OK);
    }
    few_runner_t fr = {.g = g};
    dp_run_opts_init(&fr.o);
    fr.o.max_concurrent_jobs = FEW_JOBS;
    fr.o.timeout_ms = 20000;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, few_run, &fr), 0);
    /* Until every job has been probed five times (at least four probes
     * each after its first, parked). */
    uint64_t until = dp_test_now_ms() + 10000;
    for (unsigned i = 0; i < FEW_JOBS && dp_test_now_ms() < until; i++)
        while (atomic_load(&few.first[i]) < 5 && dp_test_now_ms() < until)
            msleep(2);
    atomic_store(&few.ready, true);
    pthread_join(t, NULL);
    assert_non_null(fr.r);
    assert_int_equal(dp_result_outcome(fr.r), DP_RUN_SUCCESS);
    for (size_t j = 0; j < dp_result_job_count(fr.r); j++)
        assert_int_equal(dp_result_job(fr.r, j)->attempts, 1);
    /* One time keeper, plus the few workers that took over when a probe
     * was slow (a preempted thread on a loaded machine) or that finished
     * the jobs; the old engine used one thread per job. */
    pthread_mutex_lock(&few.mu);
    unsigned nseen = few.nseen;
    pthread_mutex_unlock(&few.mu);
    print_message("parked probes ran on %u threads (%u jobs)\n", nseen, FEW_JOBS);
    assert_true(nseen <= FEW_JOBS / 4);
    assert_int_equal(atomic_load(&few.overlaps), 0);
    dp_result_free(fr.r);
    dp_graph_free(g);
    pthread_mutex_destroy(&few.mu);
}

/* The global timeout while jobs are parked: the run ends at once, timed
 * out; the parked jobs stay unknown (attempt_end called once each) and
 * suggest a re-run in one period. */
static void test_parked_run_timeout(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "check=not_ready period=20 rtimeout=10000");
    char *spec = tu_spec_flat(30);
    dp_graph_t *g = tu_graph(spec, s);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = 30;
    /* Long enough for some job to be probed twice under TSan on a loaded
     * 2-CPU machine (300 ms was not, once). */
    o.timeout_ms = 1000;
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    uint64_t took = dp_test_now_ms() - t0;
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    assert_true(dp_result_timed_out(r));
    assert_true(took >= 999 && took < 4000);
    assert_int_equal(dp_result_requeue_after_ms(r), 20);
    /* (Under TSan on a loaded machine the last workers may start after the
     * timeout: their jobs never run.) */
    unsigned parked = 0; /* jobs probed again after parking */
    for (size_t j = 0; j < dp_result_job_count(r); j++) {
        const dp_job_result_t *jr = dp_result_job(r, j);
        assert_int_equal(jr->status, DP_STATUS_UNKNOWN);
        unsigned checks = atomic_load(&tu_job(s, jr->name)->checks);
        assert_int_equal(atomic_load(&tu_job(s, jr->name)->attempt_ends), checks ? 1 : 0);
        parked += checks >= 2;
    }
    assert_true(parked > 0);
    dp_result_free(r);
    dp_graph_free(g);
    free(spec);
    tu_script_free(s);
}

/* Cancellation through the parent context while jobs are parked: the run
 * returns promptly, cancelled, every parked job unknown with one attempt
 * that started and ended (events), attempt_end called once. */
typedef struct park_canceller {
    tu_script_t *s;
    dp_ctx_t *ctx;
    unsigned njobs;
    _Atomic uint64_t cancelled_at;
    pthread_t t;
} park_canceller_t;

static void *park_canceller_main(void *p)
{
    park_canceller_t *c = p;
    /* Once every job has been probed (all are parked or about to be). */
    uint64_t until = dp_test_now_ms() + 10000;
    for (unsigned i = 0; i < c->njobs && dp_test_now_ms() < until; i++) {
        char name[16];
        snprintf(name, sizeof name, "J%03u", i);
        while (atomic_load(&tu_job(c->s, name)->checks) < 1 && dp_test_now_ms() < until)
            msleep(1);
    }
    msleep(20);
    atomic_store(&c->cancelled_at, dp_test_now_ms());
    dp_ctx_cancel(c->ctx);
    return NULL;
}

static void test_parked_cancellation(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "check=not_ready period=30 rtimeout=10000");
    char *spec = tu_spec_flat(20);
    dp_graph_t *g = tu_graph(spec, s);
    /* The jobs' records exist before the canceller looks at them. */
    for (unsigned i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "J%03u", i);
        (void)tu_job(s, name);
    }
    dp_ctx_t *parent = dp_ctx_new(NULL, 0);
    tu_events_t ev;
    tu_events_init(&ev);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = 20;
    o.parent = parent;
    o.on_event = tu_event_cb;
    o.event_user = &ev;
    park_canceller_t c = {.s = s, .ctx = parent, .njobs = 20};
    atomic_init(&c.cancelled_at, 0);
    assert_int_equal(pthread_create(&c.t, NULL, park_canceller_main, &c), 0);
    dp_result_t *r = tu_run(g, &o);
    uint64_t returned = dp_test_now_ms();
    pthread_join(c.t, NULL);
    assert_int_equal(dp_result_outcome(r), DP_RUN_CANCELLED);
    assert_true(returned - atomic_load(&c.cancelled_at) < 1000);
    assert_int_equal(dp_result_requeue_after_ms(r), 30);
    for (size_t j = 0; j < dp_result_job_count(r); j++) {
        const dp_job_result_t *jr = dp_result_job(r, j);
        assert_int_equal(jr->status, DP_STATUS_UNKNOWN);
        assert_int_equal(atomic_load(&tu_job(s, jr->name)->attempt_ends), 1);
        assert_string_equal(tu_events_of(&ev, jr->name), "start1 end1:unknown job:unknown");
    }
    dp_result_free(r);
    dp_graph_free(g);
    free(spec);
    tu_events_destroy(&ev);
    dp_ctx_free(parent);
    tu_script_free(s);
}

/* Fail-fast while jobs are parked: the failure cancels the run, and the
 * parked jobs end unknown at once instead of at their next probe. */
static void test_parked_fail_fast(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "check=not_ready period=1000 rtimeout=10000");
    tu_set(s, "F", "error sleep=60");
    dp_graph_t *g = tu_graph("J0;J1;J2;J3;J4;J5;J6;J7;F", s);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = 9;
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    uint64_t took = dp_test_now_ms() - t0;
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    tu_expect(r, "F=failed J0=unknown J3=unknown J7=unknown");
    /* Well before the parked jobs' second probe (1 s after the first);
     * a job whose worker started after the failure (a slow thread start
     * under TSan) never ran. */
    assert_true(took < 900);
    unsigned started = 0;
    for (unsigned i = 0; i < 8; i++) {
        char name[4] = {'J', (char)('0' + i), 0, 0};
        unsigned checks = atomic_load(&tu_job(s, name)->checks);
        assert_true(checks <= 1);
        assert_int_equal(atomic_load(&tu_job(s, name)->attempt_ends), checks);
        started += checks;
    }
    assert_true(started > 0);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A check that fails after the job parked: the attempt ends on the worker
 * that ran the failing probe, and the retry (run again, poll again, park
 * again) goes on from there. */
static int fail_third_check(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)arg;
    if (!is_check)
        return -1;
    unsigned call = atomic_load(&tj->checks);
    if (call == 3)
        return (int)dp_job_fail(job, false, "%s: third probe fails", tj->name);
    return call >= 5 ? DP_READY : DP_NOT_READY;
}

static void test_parked_check_error_retried(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "R", "check=ready period=10 retries=1 backoff=5");
    tu_hook(s, "R", fail_third_check, NULL);
    tu_events_t ev;
    tu_events_init(&ev);
    dp_graph_t *g = tu_graph("R;S:R", s);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.on_event = tu_event_cb;
    o.event_user = &ev;
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "R=success S=success");
    assert_int_equal(tu_jr(r, "R")->attempts, 2);
    assert_null(tu_jr(r, "R")->error);
    assert_int_equal(atomic_load(&tu_job(s, "R")->runs), 2);
    assert_int_equal(atomic_load(&tu_job(s, "R")->checks), 5);
    assert_int_equal(atomic_load(&tu_job(s, "R")->attempt_ends), 2);
    assert_string_equal(tu_events_of(&ev, "R"), "start1 end1:failed start2 end2:success job:success");
    dp_result_free(r);
    dp_graph_free(g);
    tu_events_destroy(&ev);
    tu_script_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_answers),
        cmocka_unit_test(test_probe_context_deadline),
        cmocka_unit_test(test_probe_timeout),
        cmocka_unit_test(test_probe_cancellation),
        cmocka_unit_test(test_poll_ready_at_once),
        cmocka_unit_test(test_poll_until_ready),
        cmocka_unit_test(test_poll_error_stops),
        cmocka_unit_test(test_poll_timeout_is_not_ready),
        cmocka_unit_test(test_poll_probe_timeout_is_error),
        cmocka_unit_test(test_poll_cancellation),
        cmocka_unit_test(test_job_probe_once_after_run),
        cmocka_unit_test(test_job_poll_until_ready),
        cmocka_unit_test(test_job_readiness_timeout_is_not_ready),
        cmocka_unit_test(test_job_probe_timeout_is_error),
        cmocka_unit_test(test_job_timeout_bounds_readiness),
        cmocka_unit_test(test_job_check_error_retried),
        cmocka_unit_test(test_job_check_sees_probe_context),
        cmocka_unit_test(test_parked_polls_share_few_threads),
        cmocka_unit_test(test_parked_run_timeout),
        cmocka_unit_test(test_parked_cancellation),
        cmocka_unit_test(test_parked_fail_fast),
        cmocka_unit_test(test_parked_check_error_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
