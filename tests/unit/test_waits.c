/* test_waits.c - what a job waits for beyond one attempt, through the
 * library on graphs of 10+ jobs (host/src/readiness.c, host/src/job.c):
 * readiness thresholds, an initial delay and a growing period
 * (dp_readiness_ext_t), a deadline over all attempts and backoffs
 * (dp_job_spec_t.deadline_ms), a retry delay the job suggests
 * (dp_job_retry_after), what the result says about them
 * (dp_result_job_waits, requeue_after_ms), dp_poll_ext, and the settings a
 * graph refuses.
 *
 * Timing assertions are inequalities with generous margins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "testutil.h"

#define MAX_CALLS 64

/* A scripted job. Scripts are letters, one per call: R ready, N not ready,
 * E error, P permanent error, B block until the context is done (then an
 * error); the last letter repeats, or the whole script with a trailing '*'.
 * run's script is per attempt, check's per probe (over all attempts). */
typedef struct wjob {
    const char *run;         /* NULL: check-only */
    const char *check;       /* NULL: no check */
    int64_t suggest_run_ms;  /* >= 0: every run call suggests this delay */
    int64_t suggest_chk_ms;  /* >= 0: every check call suggests this delay */
    unsigned suggest_only_1; /* suggest on the first call only */
    atomic_uint runs, checks;
    uint64_t check_at[MAX_CALLS]; /* ms, when each check started */
    uint64_t run_at[MAX_CALLS];
} wjob_t;

static char letter(const char *script, unsigned call)
{
    size_t n = strlen(script);
    if (n && script[n - 1] == '*')
        return script[(call - 1) % (n - 1)];
    return script[call - 1 < n ? call - 1 : n - 1];
}

static dp_outcome_t answer(dp_job_t *job, char c, unsigned call, const char *what)
{
    switch (c) {
    case 'R': return DP_READY;
    case 'N': return DP_NOT_READY;
    case 'P': return dp_job_fail(job, true, "%s %u failed for good", what, call);
    case 'B': dp_ctx_sleep(dp_job_ctx(job), 30000); return dp_job_fail(job, false, "%s %u interrupted", what, call);
    default: return dp_job_fail(job, false, "boom on %s %u", what, call);
    }
}

static dp_outcome_t w_run(dp_job_t *job, void *user)
{
    wjob_t *w = user;
    unsigned call = atomic_fetch_add(&w->runs, 1) + 1;
    if (call <= MAX_CALLS)
        w->run_at[call - 1] = dp_test_now_ms();
    if (w->suggest_run_ms >= 0 && (!w->suggest_only_1 || call == 1))
        dp_job_retry_after(job, (uint64_t)w->suggest_run_ms);
    return answer(job, letter(w->run, call), call, "run");
}

static dp_outcome_t w_check(dp_job_t *job, void *user)
{
    wjob_t *w = user;
    unsigned call = atomic_fetch_add(&w->checks, 1) + 1;
    if (call <= MAX_CALLS)
        w->check_at[call - 1] = dp_test_now_ms();
    if (w->suggest_chk_ms >= 0 && (!w->suggest_only_1 || call == 1))
        dp_job_retry_after(job, (uint64_t)w->suggest_chk_ms);
    return answer(job, letter(w->check, call), call, "probe");
}

/* Up to 32 jobs a test. */
typedef struct bench {
    wjob_t w[32];
    size_t n;
    dp_graph_t *g;
} bench_t;

static void bench_init(bench_t *b)
{
    memset(b, 0, sizeof *b);
    b->g = dp_graph_new();
    assert_non_null(b->g);
}

/* A spec for job `name` scripted by run/check, its settings left for the
 * caller (then add_spec). */
static dp_job_spec_t spec_of(bench_t *b, const char *name, const char *run, const char *check)
{
    assert_true(b->n < 32);
    wjob_t *w = &b->w[b->n++];
    w->run = run;
    w->check = check;
    w->suggest_run_ms = w->suggest_chk_ms = -1;
    dp_job_spec_t s;
    dp_job_spec_init(&s);
    s.name = name;
    s.run = run ? w_run : NULL;
    s.check = check ? w_check : NULL;
    s.user = w;
    return s;
}

static wjob_t *last(bench_t *b)
{
    return &b->w[b->n - 1];
}

static void add_spec(bench_t *b, const dp_job_spec_t *s)
{
    char err[256] = "";
    if (dp_graph_add_job(b->g, s, err, sizeof err) != DP_OK)
        fail_msg("add %s: %s", s->name, err);
}

/* A plain job (no settings) depending on deps ("A,B"). */
static void add_after(bench_t *b, const char *name, const char *deps)
{
    dp_job_spec_t s = spec_of(b, name, "R", NULL);
    add_spec(b, &s);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", deps);
    for (char *save = NULL, *d = strtok_r(buf, ",", &save); d; d = strtok_r(NULL, ",", &save))
        assert_int_equal(dp_graph_add_dep(b->g, name, d), DP_OK);
}

static dp_result_t *run_it(bench_t *b, unsigned conc, tu_log_t *log)
{
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = conc;
    o.fail_fast = false;
    o.timeout_ms = 60000;
    o.seed = 42;
    if (log) {
        o.log = tu_log_cb;
        o.log_user = log;
        o.log_level = DP_LOG_DEBUG;
    }
    return tu_run(b->g, &o);
}

static const dp_job_waits_t *waits_of(const dp_result_t *r, const char *name)
{
    long id = dp_graph_job_id(dp_result_graph(r), name);
    assert_true(id >= 0);
    return dp_result_job_waits(r, (size_t)id);
}

static void expect_probes(const dp_result_t *r, const char *name, unsigned probes, unsigned succ, unsigned fail)
{
    const dp_job_waits_t *w = waits_of(r, name);
    if (!w || !w->polled)
        fail_msg("%s: no readiness in its waits", name);
    if (w->readiness.probes != probes || w->readiness.successes != succ || w->readiness.failures != fail)
        fail_msg("%s: probes %u successes %u failures %u, expected %u %u %u", name, w->readiness.probes,
                 w->readiness.successes, w->readiness.failures, probes, succ, fail);
}

/* ---- thresholds -------------------------------------------------------- */

/* A check-only job polling every 10 ms, needing 2 ready probes in a row,
 * failing at 3 failed probes in a row. */
static void add_probed(bench_t *b, const char *name, const char *check)
{
    dp_job_spec_t s = spec_of(b, name, NULL, check);
    s.readiness.period_ms = 10;
    s.readiness.timeout_ms = 400;
    s.readiness_ext.success_threshold = 2;
    s.readiness_ext.failure_threshold = 3;
    add_spec(b, &s);
}

static void test_thresholds_count_consecutive_probes(void **state)
{
    (void)state;
    bench_t b;
    bench_init(&b);
    add_probed(&b, "P0", "R");       /* two in a row at once */
    add_probed(&b, "P1", "RNRR");    /* a not ready breaks the run of successes */
    add_probed(&b, "P2", "EERR");    /* two failures are below the threshold */
    add_probed(&b, "P3", "E");       /* three in a row: failed */
    add_probed(&b, "P4", "EENEERR"); /* not ready clears the failures too */
    add_probed(&b, "P5", "RN*");     /* flaps until the readiness timeout */
    add_probed(&b, "P6", "NNRR");
    add_probed(&b, "P7", "R");
    add_probed(&b, "P8", "ERR");
    add_probed(&b, "P9", "NR");
    /* Today's behaviour where nothing is set: the first error ends it. */
    dp_job_spec_t s = spec_of(&b, "Q", NULL, "ER");
    s.readiness.period_ms = 10;
    add_spec(&b, &s);
    add_after(&b, "D1", "P5");
    add_after(&b, "D2", "P3");
    add_after(&b, "D3", "P0,P1,P2,P4");
    add_after(&b, "D4", "Q");

    tu_log_t log;
    tu_log_init(&log);
    dp_result_t *r = run_it(&b, 4, &log);
    tu_expect(r, "P0=success P1=success P2=success P3=failed P4=success P5=not_ready P6=success P7=success "
                 "P8=success P9=success Q=failed D1=skipped D2=skipped D3=success D4=skipped");
    expect_probes(r, "P0", 2, 2, 0);
    expect_probes(r, "P1", 4, 2, 0);
    expect_probes(r, "P2", 4, 2, 0);
    expect_probes(r, "P3", 3, 0, 3);
    expect_probes(r, "P4", 7, 2, 0);
    expect_probes(r, "P6", 4, 2, 0);
    expect_probes(r, "P8", 3, 2, 0);
    const dp_job_waits_t *w5 = waits_of(r, "P5");
    assert_non_null(w5);
    assert_true(w5->readiness.probes >= 3);
    assert_true(w5->readiness.successes <= 1);
    assert_int_equal(w5->readiness.failures, 0);
    assert_int_equal(w5->readiness.period_ms, 10);
    assert_false(w5->has_deadline);
    assert_int_equal(w5->retry_after_ms, -1);
    /* The failure's message is the probe that ended the wait. */
    assert_string_equal(tu_jr(r, "P3")->error, "boom on probe 3");
    assert_int_equal(tu_jr(r, "P3")->attempts, 1);
    /* A tolerated failure is logged, and is not the job's error. */
    assert_int_equal(tu_log_count(&log, "P2", 0, "readiness probe failed (1 in a row; 3 end the wait)"), 1);
    assert_int_equal(tu_log_count(&log, "P2", 0, "readiness probe failed (2 in a row; 3 end the wait)"), 1);
    assert_null(tu_jr(r, "P2")->error);
    /* Q: no 1.2 settings: one probe, failed, nothing in its waits. */
    assert_int_equal(atomic_load(&b.w[10].checks), 1);
    assert_string_equal(tu_jr(r, "Q")->error, "boom on probe 1");
    assert_null(waits_of(r, "Q"));
    assert_null(waits_of(r, "D3"));
    /* P5's poll gave up: the period is the hint. */
    assert_int_equal(dp_result_requeue_after_ms(r), 10);
    dp_result_free(r);
    tu_log_destroy(&log);
    dp_graph_free(b.g);
}

/* The wait after the n-th probe is min(period * backoff^(n-1), max_period). */
static void test_period_grows_to_max_period(void **state)
{
    (void)state;
    bench_t b;
    bench_init(&b);
    dp_job_spec_t s = spec_of(&b, "G", NULL, "NNNNNR");
    s.readiness.period_ms = 20;
    s.readiness_ext.backoff = 2.0;
    s.readiness_ext.max_period_ms = 80;
    add_spec(&b, &s);
    wjob_t *g = last(&b);
    char name[8], prev[8] = "G";
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "C%d", i);
        add_after(&b, name, prev);
        snprintf(prev, sizeof prev, "%s", name);
    }
    dp_result_t *r = run_it(&b, 2, NULL);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(atomic_load(&g->checks), 6);
    static const uint64_t want[] = {20, 40, 80, 80, 80};
    for (int i = 0; i < 5; i++) {
        uint64_t gap = g->check_at[i + 1] - g->check_at[i];
        if (gap + 1 < want[i]) /* a wait is never shorter (ms rounding: 1) */
            fail_msg("wait %d was %llu ms, expected at least %llu", i + 1, (unsigned long long)gap,
                     (unsigned long long)want[i]);
    }
    expect_probes(r, "G", 6, 1, 0);
    assert_int_equal(waits_of(r, "G")->readiness.period_ms, 80);
    dp_result_free(r);
    dp_graph_free(b.g);
}

/* An initial delay before the first probe; with period 0 that probe
 * decides. Ten jobs wait at once, parked. */
static void test_initial_delay(void **state)
{
    (void)state;
    bench_t b;
    bench_init(&b);
    char name[8];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "I%d", i);
        dp_job_spec_t s = spec_of(&b, name, "R", i == 9 ? "N" : "R");
        s.readiness_ext.initial_delay_ms = 300;
        add_spec(&b, &s);
    }
    dp_job_spec_t s = spec_of(&b, "J", NULL, "NR");
    s.readiness.period_ms = 10;
    s.readiness_ext.initial_delay_ms = 100;
    add_spec(&b, &s);
    wjob_t *j = last(&b);
    add_after(&b, "K", "I0,I1,J");
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = run_it(&b, 12, NULL);
    uint64_t took = dp_test_now_ms() - t0;
    tu_expect(r, "I0=success I8=success I9=not_ready J=success K=success");
    for (int i = 0; i < 10; i++) {
        assert_int_equal(atomic_load(&b.w[i].checks), 1);
        assert_true(b.w[i].check_at[0] >= b.w[i].run_at[0] + 299);
        snprintf(name, sizeof name, "I%d", i);
        expect_probes(r, name, 1, i == 9 ? 0 : 1, 0);
    }
    assert_true(j->check_at[0] >= t0 + 99);
    assert_int_equal(atomic_load(&j->checks), 2);
    /* All ten waited at the same time, not one after the other (3 s). */
    assert_true(took < 2500);
    /* I9 probed once (no period): no requeue hint, as a probe without a
     * period gives none. */
    assert_int_equal(dp_result_requeue_after_ms(r), -1);
    dp_result_free(r);
    dp_graph_free(b.g);
}

/* ---- deadlines --------------------------------------------------------- */

static void test_deadline_bounds_attempts_and_backoffs(void **state)
{
    (void)state;
    bench_t b;
    bench_init(&b);
    /* Fails every time; a 100 ms backoff; 250 ms for everything: attempts
     * at 0, 100 and 200 ms, the next would start at 300. */
    dp_job_spec_t s = spec_of(&b, "DL1", "E", NULL);
    s.retries = 100;
    s.backoff = (dp_backoff_t){.initial_ms = 100, .factor = 1.0, .max_ms = 100};
    s.deadline_ms = 250;
    add_spec(&b, &s);
    /* Blocks: the deadline cuts its first attempt before the timeout. */
    s = spec_of(&b, "DL2", "B", NULL);
    s.timeout_ms = 5000;
    s.retries = 3;
    s.deadline_ms = 200;
    add_spec(&b, &s);
    /* Succeeds in time. */
    s = spec_of(&b, "DL3", "EER", NULL);
    s.retries = 5;
    s.backoff = (dp_backoff_t){.initial_ms = 10, .factor = 1.0, .max_ms = 10};
    s.deadline_ms = 10000;
    add_spec(&b, &s);
    /* Polls, never ready, no readiness timeout: the deadline ends it. */
    s = spec_of(&b, "DL4", NULL, "N");
    s.readiness.period_ms = 20;
    s.deadline_ms = 250;
    s.retries = 2;
    add_spec(&b, &s);
    /* The suggested delay is past the deadline: not waited. */
    s = spec_of(&b, "DL5", "E", NULL);
    s.retries = 3;
    s.deadline_ms = 200;
    add_spec(&b, &s);
    last(&b)->suggest_run_ms = 5000;
    add_after(&b, "A1", "DL1");
    add_after(&b, "A2", "DL2");
    add_after(&b, "A3", "DL3");
    add_after(&b, "A4", "DL4");
    add_after(&b, "A5", "DL5");
    add_after(&b, "A6", "A3");
    add_after(&b, "A7", "A6");

    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = run_it(&b, 8, NULL);
    uint64_t took = dp_test_now_ms() - t0;
    tu_expect(r, "DL1=failed DL2=failed DL3=success DL4=failed DL5=failed A1=skipped A2=skipped A3=success "
                 "A4=skipped A5=skipped A6=success A7=success");
    /* DL1: the retry that would start past the deadline is not made. */
    const dp_job_result_t *j1 = tu_jr(r, "DL1");
    assert_true(j1->attempts >= 2 && j1->attempts <= 3);
    assert_non_null(strstr(j1->error, "boom on run"));
    assert_non_null(strstr(j1->error, "; not retried: a retry in 100ms would start past the deadline of 250ms"));
    assert_true(waits_of(r, "DL1")->has_deadline);
    assert_true(waits_of(r, "DL1")->deadline_hit);
    assert_true(j1->duration_ms < 250 + 1000);
    /* DL2: cut during its first attempt, not retried. */
    const dp_job_result_t *j2 = tu_jr(r, "DL2");
    assert_int_equal(j2->attempts, 1);
    assert_string_equal(j2->error, "deadline of 200ms passed during attempt 1");
    assert_true(waits_of(r, "DL2")->deadline_hit);
    /* DL3 */
    assert_int_equal(tu_jr(r, "DL3")->attempts, 3);
    assert_true(waits_of(r, "DL3")->has_deadline);
    assert_false(waits_of(r, "DL3")->deadline_hit);
    /* DL4 */
    assert_string_equal(tu_jr(r, "DL4")->error, "deadline of 250ms passed during attempt 1");
    assert_int_equal(tu_jr(r, "DL4")->attempts, 1);
    /* DL5 */
    const dp_job_result_t *j5 = tu_jr(r, "DL5");
    assert_int_equal(j5->attempts, 1);
    assert_non_null(strstr(j5->error, "not retried: a retry in 5s would start past the deadline of 200ms"));
    assert_null(waits_of(r, "A1"));
    assert_true(took < 5000);
    dp_result_free(r);
    dp_graph_free(b.g);
}

/* ---- suggested retry delays ------------------------------------------- */

static void test_retry_after_replaces_backoff_and_period(void **state)
{
    (void)state;
    bench_t b;
    bench_init(&b);
    /* Fails once saying "in 30 ms": its 20 s backoff is not waited. */
    dp_job_spec_t s = spec_of(&b, "RA1", "ER", NULL);
    s.retries = 1;
    s.backoff.initial_ms = 20000;
    add_spec(&b, &s);
    wjob_t *ra1 = last(&b);
    ra1->suggest_run_ms = 30;
    ra1->suggest_only_1 = 1;
    /* Polls every 20 s; its check says "in 40 ms", then is ready. */
    s = spec_of(&b, "RA3", NULL, "NR");
    s.readiness.period_ms = 20000;
    add_spec(&b, &s);
    wjob_t *ra3 = last(&b);
    ra3->suggest_chk_ms = 40;
    ra3->suggest_only_1 = 1;
    /* A permanent failure: its suggestion is not used (no requeue hint). */
    s = spec_of(&b, "RA4", "P", NULL);
    s.retries = 3;
    add_spec(&b, &s);
    last(&b)->suggest_run_ms = 5;
    /* Fails twice, the second time with no suggestion: the backoff again. */
    s = spec_of(&b, "RA6", "EER", NULL);
    s.retries = 2;
    s.backoff = (dp_backoff_t){.initial_ms = 15, .factor = 1.0, .max_ms = 15};
    add_spec(&b, &s);
    wjob_t *ra6 = last(&b);
    ra6->suggest_run_ms = 100;
    ra6->suggest_only_1 = 1;
    char name[8];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "F%d", i);
        add_after(&b, name, i % 2 ? "RA1" : "RA3");
    }
    tu_log_t log;
    tu_log_init(&log);
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = run_it(&b, 4, &log);
    uint64_t took = dp_test_now_ms() - t0;
    tu_expect(r, "RA1=success RA3=success RA4=failed RA6=success F0=success F7=success");
    assert_true(took < 10000);
    assert_int_equal(tu_jr(r, "RA1")->attempts, 2);
    assert_true(ra1->run_at[1] - ra1->run_at[0] >= 29);
    assert_int_equal(waits_of(r, "RA1")->retry_after_ms, 30);
    assert_int_equal(tu_log_count(&log, "RA1", 1, "retry in 30ms (the job's suggestion)"), 1);
    assert_int_equal(atomic_load(&ra3->checks), 2);
    assert_true(ra3->check_at[1] - ra3->check_at[0] >= 39);
    assert_int_equal(waits_of(r, "RA3")->retry_after_ms, 40);
    assert_int_equal(tu_jr(r, "RA4")->attempts, 1);
    assert_null(waits_of(r, "RA4"));
    assert_true(ra6->run_at[1] - ra6->run_at[0] >= 99);
    assert_true(ra6->run_at[2] - ra6->run_at[1] >= 14);
    assert_int_equal(tu_log_count(&log, "RA6", 2, "retry in 15ms"), 1);
    /* Nothing cut short, nothing not ready, the permanent failure's
     * suggestion unused: no hint. */
    assert_int_equal(dp_result_requeue_after_ms(r), -1);
    dp_result_free(r);
    tu_log_destroy(&log);
    dp_graph_free(b.g);
}

/* A job that ends not ready (or failed, retries spent) leaves its suggestion
 * as the run's requeue hint, and a poll cut short the time left until the
 * probe it asked for. */
static void test_retry_after_as_requeue_hint(void **state)
{
    (void)state;
    bench_t b;
    bench_init(&b);
    dp_job_spec_t s = spec_of(&b, "N1", "N", NULL);
    add_spec(&b, &s);
    last(&b)->suggest_run_ms = 700;
    s = spec_of(&b, "N2", "E", NULL); /* no retries left: its suggestion counts */
    add_spec(&b, &s);
    last(&b)->suggest_run_ms = 900;
    s = spec_of(&b, "N3", NULL, "N"); /* a 5 s period; the poll times out first */
    s.readiness.period_ms = 5000;
    s.readiness.timeout_ms = 300;
    add_spec(&b, &s);
    last(&b)->suggest_chk_ms = 2000;
    char name[8];
    for (int i = 0; i < 9; i++) {
        snprintf(name, sizeof name, "M%d", i);
        add_after(&b, name, i < 3 ? "N1" : i < 6 ? "N2" : "N3");
    }
    dp_result_t *r = run_it(&b, 4, NULL);
    tu_expect(r, "N1=not_ready N2=failed N3=not_ready M0=skipped M3=skipped M8=skipped");
    assert_int_equal(waits_of(r, "N1")->retry_after_ms, 700);
    assert_int_equal(waits_of(r, "N2")->retry_after_ms, 900);
    assert_int_equal(waits_of(r, "N3")->retry_after_ms, 2000);
    /* N3: ~1.7 s were left of its suggested 2 s when the poll gave up. */
    int64_t rq = dp_result_requeue_after_ms(r);
    assert_int_equal(rq, 700);
    dp_result_free(r);

    /* Alone, N3's hint is what was left of its suggestion (not its 5 s
     * period). */
    dp_graph_free(b.g);
    bench_init(&b);
    s = spec_of(&b, "N3", NULL, "N");
    s.readiness.period_ms = 5000;
    s.readiness.timeout_ms = 300;
    add_spec(&b, &s);
    last(&b)->suggest_chk_ms = 2000;
    for (int i = 0; i < 9; i++) {
        snprintf(name, sizeof name, "M%d", i);
        add_after(&b, name, "N3");
    }
    r = run_it(&b, 4, NULL);
    rq = dp_result_requeue_after_ms(r);
    if (rq < 1000 || rq > 1800)
        fail_msg("requeue_after_ms %lld, expected what was left of 2 s after a 300 ms poll", (long long)rq);
    dp_result_free(r);
    dp_graph_free(b.g);
}

/* ---- dp_poll_ext and refusals ------------------------------------------ */

typedef struct pchk {
    const char *script;
    atomic_uint calls;
    uint64_t first_ms;
} pchk_t;

static dp_outcome_t pcheck(dp_ctx_t *ctx, void *arg, char *err, size_t errlen)
{
    (void)ctx;
    pchk_t *c = arg;
    unsigned call = atomic_fetch_add(&c->calls, 1) + 1;
    if (call == 1)
        c->first_ms = dp_test_now_ms();
    char l = letter(c->script, call);
    if (l == 'E') {
        snprintf(err, errlen, "down on call %u", call);
        return DP_ERROR;
    }
    return l == 'R' ? DP_READY : DP_NOT_READY;
}

static void test_poll_ext(void **state)
{
    (void)state;
    dp_ctx_t *ctx = dp_ctx_new(NULL, 0);
    char err[256];
    dp_readiness_t rd = {.period_ms = 5, .probe_timeout_ms = 1000, .timeout_ms = 5000};
    dp_readiness_ext_t x = {.failure_threshold = 3, .success_threshold = 2};
    dp_probe_stats_t st;
    pchk_t c = {.script = "EENRR"};
    assert_int_equal(dp_poll_ext(ctx, &rd, &x, pcheck, &c, err, sizeof err, &st), DP_READY);
    assert_int_equal(st.probes, 5);
    assert_int_equal(st.successes, 2);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.period_ms, 5);

    pchk_t c2 = {.script = "E"};
    assert_int_equal(dp_poll_ext(ctx, &rd, &x, pcheck, &c2, err, sizeof err, &st), DP_ERROR);
    assert_string_equal(err, "down on call 3");
    assert_int_equal(st.failures, 3);

    /* No ext: the first error ends it, as dp_poll. */
    pchk_t c3 = {.script = "ER"};
    assert_int_equal(dp_poll_ext(ctx, &rd, NULL, pcheck, &c3, err, sizeof err, &st), DP_ERROR);
    assert_int_equal(st.probes, 1);

    /* Period 0 after an initial delay: one probe. */
    dp_readiness_t once = {.probe_timeout_ms = 1000};
    dp_readiness_ext_t delay = {.initial_delay_ms = 60};
    pchk_t c4 = {.script = "N"};
    uint64_t t0 = dp_test_now_ms();
    assert_int_equal(dp_poll_ext(ctx, &once, &delay, pcheck, &c4, err, sizeof err, &st), DP_NOT_READY);
    assert_int_equal(atomic_load(&c4.calls), 1);
    assert_true(c4.first_ms >= t0 + 59);

    /* The poll's timeout ends a flapping wait not ready. */
    dp_readiness_t rt = {.period_ms = 5, .probe_timeout_ms = 1000, .timeout_ms = 100};
    pchk_t c5 = {.script = "RN*"};
    assert_int_equal(dp_poll_ext(ctx, &rt, &x, pcheck, &c5, err, sizeof err, &st), DP_NOT_READY);
    assert_true(st.probes >= 2);

    /* Settings a job would be refused. */
    dp_readiness_ext_t bad = {.success_threshold = 2};
    pchk_t c6 = {.script = "R"};
    assert_int_equal(dp_poll_ext(ctx, &once, &bad, pcheck, &c6, err, sizeof err, &st), DP_ERROR);
    assert_non_null(strstr(err, "need a period"));
    assert_int_equal(atomic_load(&c6.calls), 0);
    dp_ctx_free(ctx);
}

static void test_graph_refuses_bad_settings(void **state)
{
    (void)state;
    bench_t b;
    bench_init(&b);
    char err[256];
    struct {
        dp_readiness_t r;
        dp_readiness_ext_t x;
        const char *says;
    } cases[] = {
        {{.period_ms = 0}, {.success_threshold = 2}, "need a period"},
        {{.period_ms = 0}, {.failure_threshold = 3}, "need a period"},
        {{.period_ms = 10}, {.backoff = 0.5}, "backoff must be within 1..1000"},
        {{.period_ms = 10}, {.max_period_ms = 5}, "max_period must not be shorter than the period"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dp_job_spec_t s = spec_of(&b, "X", NULL, "R");
        s.readiness = cases[i].r;
        s.readiness_ext = cases[i].x;
        assert_int_equal(dp_graph_add_job(b.g, &s, err, sizeof err), DP_EINVAL);
        if (!strstr(err, cases[i].says) || !strstr(err, "job \"X\""))
            fail_msg("case %zu: %s", i, err);
    }
    /* Valid: max_period without backoff, initial delay without period. */
    dp_job_spec_t s = spec_of(&b, "OK1", NULL, "R");
    s.readiness.period_ms = 10;
    s.readiness_ext.max_period_ms = 10;
    assert_int_equal(dp_graph_add_job(b.g, &s, err, sizeof err), DP_OK);
    s = spec_of(&b, "OK2", NULL, "R");
    s.readiness_ext.initial_delay_ms = 10;
    assert_int_equal(dp_graph_add_job(b.g, &s, err, sizeof err), DP_OK);
    dp_graph_free(b.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thresholds_count_consecutive_probes),
        cmocka_unit_test(test_period_grows_to_max_period),
        cmocka_unit_test(test_initial_delay),
        cmocka_unit_test(test_deadline_bounds_attempts_and_backoffs),
        cmocka_unit_test(test_retry_after_replaces_backoff_and_period),
        cmocka_unit_test(test_retry_after_as_requeue_hint),
        cmocka_unit_test(test_poll_ext),
        cmocka_unit_test(test_graph_refuses_bad_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
