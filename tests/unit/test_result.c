/* test_result.c - what a finished run says (host/src/result.c): statuses,
 * outcome and its precedence, first_error, first_not_ready, requeue_after,
 * times, labels, and the DAG-aware queries (blockers, subtree, frontiers,
 * boundary) on hand-checked graphs and against a brute-force reference. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "record.h"
#include "testutil.h"

static dp_run_opts_t opts_of(unsigned conc, uint64_t timeout_ms, bool fail_fast)
{
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = conc;
    o.timeout_ms = timeout_ms;
    o.fail_fast = fail_fast;
    return o;
}

static const char *blockers(const dp_result_t *r, const char *job)
{
    static char buf[1024];
    dp_id_list_t l;
    long id = dp_graph_job_id(dp_result_graph(r), job);
    assert_true(id >= 0);
    assert_int_equal(dp_result_blockers(r, (uint32_t)id, &l), DP_OK);
    tu_ids(dp_result_graph(r), &l, buf, sizeof buf);
    dp_id_list_free(&l);
    return buf;
}

static const char *subtree(const dp_result_t *r, const char *job)
{
    static char buf[4096];
    dp_id_list_t l;
    long id = dp_graph_job_id(dp_result_graph(r), job);
    assert_true(id >= 0);
    assert_int_equal(dp_result_subtree(r, (uint32_t)id, &l), DP_OK);
    tu_ids(dp_result_graph(r), &l, buf, sizeof buf);
    dp_id_list_free(&l);
    return buf;
}

/* The 12-job graph worked out by hand:
 *
 *   A -> B -> D -> E -> K      F -> G -> H      L
 *   A -> C -> D                I -> J -> K
 *
 * C is not ready, G fails, the run keeps going. */
static void test_hand_checked_queries(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "C", "not_ready");
    tu_set(s, "G", "error");
    dp_graph_t *g = tu_graph("A:;B:A;C:A;D:B,C;E:D;F:;G:F;H:G;I:;J:I;K:J,E;L:", s);
    dp_run_opts_t o = opts_of(3, 0, false);
    dp_result_t *r = tu_run(g, &o);
    assert_ptr_equal(dp_result_graph(r), g);
    assert_string_equal(tu_statuses(r), "A=success B=success C=not_ready D=skipped E=skipped "
                                        "F=success G=failed H=skipped I=success J=success "
                                        "K=skipped L=success");
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_true(dp_result_is_failed(r));
    assert_false(dp_result_is_ready(r));
    assert_string_equal(dp_result_first_error(r), "G run failed (attempt 1)");
    assert_int_equal(dp_result_first_not_ready(r), dp_graph_job_id(g, "C"));

    /* Frontiers: only C and G (D, E, K, H are held back by them). */
    assert_string_equal(tu_frontiers(r), "C:not_ready[]{C,D,E,K} G:failed[]{G,H}");
    /* Boundary: success jobs with something not success below. */
    assert_string_equal(tu_boundary(r), "A,B,F,I,J");

    assert_string_equal(blockers(r, "A"), "");
    assert_string_equal(blockers(r, "D"), "C");
    assert_string_equal(blockers(r, "E"), "D");
    assert_string_equal(blockers(r, "K"), "E");
    assert_string_equal(blockers(r, "H"), "G");
    assert_string_equal(blockers(r, "L"), "");

    assert_string_equal(subtree(r, "A"), "A,B,C,D,E,K");
    assert_string_equal(subtree(r, "I"), "I,J,K");
    assert_string_equal(subtree(r, "G"), "G,H");
    assert_string_equal(subtree(r, "L"), "L");
    assert_string_equal(subtree(r, "K"), "K");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The seed's diamond: D is reached twice from A but listed once. */
static void test_subtree_of_diamond(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("JobA:;JobB:JobA;JobC:JobA;JobD:JobB,JobC;JobE:JobD", s);
    dp_result_t *r = tu_run(g, NULL);
    assert_string_equal(subtree(r, "JobA"), "JobA,JobB,JobC,JobD,JobE");
    assert_string_equal(subtree(r, "JobC"), "JobC,JobD,JobE");
    /* All success: no frontier, no boundary. */
    const dp_frontier_t *f;
    assert_int_equal(dp_result_frontiers(r, &f), 0);
    assert_int_equal(dp_result_boundary(r)->count, 0);
    assert_true(dp_result_is_ready(r));
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* After a timeout, unknown jobs whose dependencies all succeeded are
 * frontiers too (where the run would go on); those behind them are not. */
static void test_frontiers_after_timeout(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "B,D", "block");
    dp_graph_t *g = tu_graph("A:;B:A;C:B;D:;E:D,A", s);
    /* The deadline leaves A (instant) ample time even on a loaded machine. */
    dp_run_opts_t o = opts_of(3, 250, true);
    dp_result_t *r = tu_run(g, &o);
    assert_string_equal(tu_statuses(r), "A=success B=unknown C=unknown D=unknown E=unknown");
    assert_string_equal(tu_frontiers(r), "B:unknown[]{B,C} D:unknown[]{D,E}");
    assert_string_equal(tu_boundary(r), "A");
    assert_string_equal(blockers(r, "E"), "D");
    assert_string_equal(blockers(r, "C"), "B");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A small subtree in a larger graph (the sorted-visit path) and a large one
 * (the mark-scan path) both come out sorted. */
static void test_subtree_sorted_small_and_large(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_layers(4, 10);
    dp_graph_t *g = tu_graph(spec, s);
    dp_result_t *r = tu_run(g, NULL);
    assert_string_equal(subtree(r, "L2_0"), "L2_0,L3_0,L3_9");
    assert_string_equal(subtree(r, "L3_5"), "L3_5");
    assert_string_equal(subtree(r, "L1_0"), "L1_0,L2_0,L2_9,L3_0,L3_8,L3_9");
    dp_id_list_t l;
    assert_int_equal(dp_result_subtree(r, 0, &l), DP_OK);
    for (size_t i = 1; i < l.count; i++)
        assert_true(l.ids[i - 1] < l.ids[i]);
    dp_id_list_free(&l);
    dp_result_free(r);
    dp_graph_free(g);
    free(spec);
    tu_script_free(s);
}

/* Reference implementations, by brute force, for the larger graphs. */
static bool reaches_not_success(const dp_result_t *r, uint32_t j, unsigned char *seen)
{
    const uint32_t *succ;
    size_t n = dp_graph_succs(dp_result_graph(r), j, &succ);
    for (size_t k = 0; k < n; k++) {
        if (seen[succ[k]])
            continue;
        seen[succ[k]] = 1;
        if (dp_result_job(r, succ[k])->status != DP_STATUS_SUCCESS || reaches_not_success(r, succ[k], seen))
            return true;
    }
    return false;
}

static void expect_queries_match_reference(const dp_result_t *r)
{
    const dp_graph_t *g = dp_result_graph(r);
    size_t n = dp_result_job_count(r);
    unsigned char *seen = calloc(n, 1);
    /* Boundary. */
    const dp_id_list_t *b = dp_result_boundary(r);
    size_t bi = 0;
    for (uint32_t j = 0; j < n; j++) {
        memset(seen, 0, n);
        bool want = dp_result_job(r, j)->status == DP_STATUS_SUCCESS && reaches_not_success(r, j, seen);
        bool got = bi < b->count && b->ids[bi] == j;
        if (want != got)
            fail_msg("boundary: %s %s", dp_graph_job_name(g, j), want ? "missing" : "extra");
        if (got)
            bi++;
    }
    assert_int_equal(bi, b->count);
    /* Frontiers. */
    const dp_frontier_t *f;
    size_t nf = dp_result_frontiers(r, &f);
    size_t fi = 0;
    for (uint32_t j = 0; j < n; j++) {
        dp_status_t st = dp_result_job(r, j)->status;
        const uint32_t *deps;
        size_t nd = dp_graph_deps(g, j, &deps);
        size_t bad = 0;
        for (size_t k = 0; k < nd; k++)
            bad += dp_result_job(r, deps[k])->status != DP_STATUS_SUCCESS;
        bool want = st != DP_STATUS_SUCCESS && (st == DP_STATUS_FAILED || st == DP_STATUS_NOT_READY || bad == 0);
        bool got = fi < nf && f[fi].job == j;
        if (want != got)
            fail_msg("frontier: %s %s", dp_graph_job_name(g, j), want ? "missing" : "extra");
        if (!got)
            continue;
        assert_int_equal(f[fi].status, st);
        assert_int_equal(f[fi].blocked_by.count, bad);
        /* Subtree: the job and everything reachable, sorted. */
        memset(seen, 0, n);
        seen[j] = 1;
        for (int changed = 1; changed;) {
            changed = 0;
            for (uint32_t x = 0; x < n; x++) {
                if (!seen[x])
                    continue;
                const uint32_t *succ;
                size_t ns = dp_graph_succs(g, x, &succ);
                for (size_t k = 0; k < ns; k++)
                    if (!seen[succ[k]])
                        seen[succ[k]] = 1, changed = 1;
            }
        }
        size_t si = 0;
        for (uint32_t x = 0; x < n; x++)
            if (seen[x]) {
                assert_true(si < f[fi].subtree.count);
                assert_int_equal(f[fi].subtree.ids[si], x);
                si++;
            }
        assert_int_equal(si, f[fi].subtree.count);
        fi++;
    }
    assert_int_equal(fi, nf);
    free(seen);
}

/* 48 jobs in layers, some not ready, some failing, keep going. */
static void test_queries_on_layered_graph_match_reference(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "L1_3,L2_1", "not_ready");
    tu_set(s, "L2_0", "error");
    tu_set(s, "L0_7", "permanent");
    char *spec = tu_spec_layers(6, 8);
    dp_graph_t *g = tu_graph(spec, s);
    dp_run_opts_t o = opts_of(4, 0, false);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "L1_3=not_ready L2_1=not_ready L2_0=failed L0_7=failed L2_2=skipped "
                 "L2_3=skipped L1_7=skipped L1_6=skipped L0_0=success L5_4=skipped");
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    expect_queries_match_reference(r);
    /* Worked out by hand: L(l)_i's successors are L(l+1)_i and L(l+1)_(i-1). */
    assert_string_equal(tu_frontiers(r), "L0_7:failed[]{L0_7,L1_6,L1_7,L2_5,L2_6,L2_7,L3_4,L3_5,L3_6,L3_7,"
                                         "L4_3,L4_4,L4_5,L4_6,L4_7,L5_2,L5_3,L5_4,L5_5,L5_6,L5_7} "
                                         "L1_3:not_ready[]{L1_3,L2_2,L2_3,L3_1,L3_2,L3_3,L4_0,L4_1,L4_2,L4_3,"
                                         "L5_0,L5_1,L5_2,L5_3,L5_7} "
                                         "L2_0:failed[]{L2_0,L3_0,L3_7,L4_0,L4_6,L4_7,L5_0,L5_5,L5_6,L5_7} "
                                         "L2_1:not_ready[]{L2_1,L3_0,L3_1,L4_0,L4_1,L4_7,L5_0,L5_1,L5_6,L5_7}");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);

    /* The same shape cut by a timeout half way: unknown frontiers. */
    s = tu_script_new();
    tu_set(s, "L2_4", "block");
    g = tu_graph(spec, s);
    o = opts_of(3, 250, true);
    r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    tu_expect(r, "L2_4=unknown L3_4=unknown L3_3=unknown L1_4=success L1_5=success");
    expect_queries_match_reference(r);
    dp_result_free(r);
    dp_graph_free(g);
    free(spec);
    tu_script_free(s);
}

/* first_not_ready goes by name, not by time. */
static void test_first_not_ready_by_name(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "zeta", "not_ready");
    tu_set(s, "mid", "not_ready sleep=60");
    dp_graph_t *g = tu_graph("zeta;mid;alpha;omega:mid", s);
    dp_run_opts_t o = opts_of(3, 0, true);
    dp_result_t *r = tu_run(g, &o);
    assert_string_equal(tu_statuses(r), "alpha=success mid=not_ready omega=skipped zeta=not_ready");
    assert_true(atomic_load(&tu_job(s, "mid")->end_seq) > atomic_load(&tu_job(s, "zeta")->end_seq));
    assert_int_equal(dp_result_first_not_ready(r), dp_graph_job_id(g, "mid"));
    assert_int_equal(dp_result_outcome(r), DP_RUN_NOT_READY);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* first_error is the failure that ended first, not the first by name. */
static void test_first_error_is_earliest_failure(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "a_late", "error sleep=60");
    tu_set(s, "b_early", "error");
    dp_graph_t *g = tu_graph("a_late;b_early;c", s);
    dp_run_opts_t o = opts_of(3, 0, false);
    dp_result_t *r = tu_run(g, &o);
    assert_string_equal(tu_statuses(r), "a_late=failed b_early=failed c=success");
    assert_string_equal(dp_result_first_error(r), "b_early run failed (attempt 1)");
    assert_string_equal(tu_jr(r, "a_late")->error, "a_late run failed (attempt 1)");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Outcome precedence: timeout, cancelled, failed, not_ready, success. */
static void *cancel_later(void *p)
{
    tu_script_t *s = ((void **)p)[0];
    dp_ctx_t *ctx = ((void **)p)[1];
    uint64_t until = dp_test_now_ms() + 5000;
    /* The first run (timeout) ran F, N and B; wait for this run's three,
     * then give F and N time to answer (B blocks). */
    while (atomic_load(&s->total_runs) < 6 && dp_test_now_ms() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    dp_ctx_cancel(ctx);
    return NULL;
}

static void test_outcome_precedence(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "F", "error");
    tu_set(s, "N", "not_ready");
    tu_set(s, "B", "block");
    dp_graph_t *g = tu_graph("F;N;B;C:B", s);

    /* timeout beats failed and not_ready */
    dp_run_opts_t o = opts_of(3, 250, false);
    dp_result_t *r = tu_run(g, &o);
    assert_string_equal(tu_statuses(r), "B=unknown C=unknown F=failed N=not_ready");
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    assert_true(dp_result_timed_out(r));
    assert_true(dp_result_is_failed(r));
    assert_string_equal(dp_result_first_error(r), "timeout after 250ms");
    dp_result_free(r);

    /* cancelled beats failed; first_error keeps the failure's message */
    dp_ctx_t *parent = dp_ctx_new(NULL, 0);
    void *args[2] = {s, parent};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, args), 0);
    o = opts_of(3, 0, false);
    o.parent = parent;
    r = tu_run(g, &o);
    pthread_join(t, NULL);
    assert_string_equal(tu_statuses(r), "B=unknown C=unknown F=failed N=not_ready");
    assert_int_equal(dp_result_outcome(r), DP_RUN_CANCELLED);
    assert_true(dp_result_cancelled(r));
    assert_false(dp_result_timed_out(r));
    assert_string_equal(dp_result_first_error(r), "F run failed (attempt 1)");
    dp_result_free(r);
    dp_ctx_free(parent);

    /* failed beats not_ready */
    tu_set(s, "B", "block=0");
    dp_graph_free(g);
    g = tu_graph("F;N;B;C:B", s);
    o = opts_of(3, 0, false);
    r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* requeue_after: the soonest readiness period among jobs that gave up
 * polling; -1 when nothing suggests a re-run. */
static void test_requeue_after(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "P30", "check=not_ready period=30 rtimeout=45");
    tu_set(s, "P10", "check=not_ready period=10 rtimeout=25");
    dp_graph_t *g = tu_graph("P30;P10;Q:P10", s);
    dp_result_t *r = tu_run(g, NULL);
    assert_string_equal(tu_statuses(r), "P10=not_ready P30=not_ready Q=skipped");
    assert_int_equal(dp_result_requeue_after_ms(r), 10);
    dp_result_free(r);
    dp_graph_free(g);

    g = tu_graph("X;Y:X", s);
    r = tu_run(g, NULL);
    assert_int_equal(dp_result_requeue_after_ms(r), -1);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_times(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "A", "sleep=30");
    tu_set(s, "N", "not_ready");
    dp_graph_t *g = tu_graph("A;B:A;N;M:N", s);
    dp_run_opts_t o = opts_of(2, 0, true);
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    uint64_t took = dp_test_now_ms() - t0;
    const dp_job_result_t *a = tu_jr(r, "A"), *b = tu_jr(r, "B"), *m = tu_jr(r, "M");
    assert_true(a->start_ms >= 0);
    assert_true(a->duration_ms >= 29);
    assert_true(b->start_ms >= a->start_ms + a->duration_ms);
    assert_true(b->start_ms >= 29);
    assert_true(b->duration_ms >= 0);
    assert_int_equal(m->start_ms, -1);
    assert_int_equal(m->duration_ms, -1);
    assert_true(dp_result_duration_ms(r) >= b->start_ms);
    assert_true((uint64_t)dp_result_duration_ms(r) <= took);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

static dp_outcome_t versioned(dp_job_t *job, void *user)
{
    (void)user;
    dp_job_set_version(job, "1.2.3");
    return DP_READY;
}

static void test_plugin_label_and_version(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.name = "plugged";
    sp.run = versioned;
    sp.plugin = "core";
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    sp.name = "plain";
    sp.plugin = NULL;
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    dp_result_t *r = tu_run(g, NULL);
    assert_string_equal(tu_jr(r, "plugged")->plugin, "core");
    assert_string_equal(tu_jr(r, "plugged")->plugin_version, "1.2.3");
    assert_null(tu_jr(r, "plain")->plugin);
    assert_string_equal(dp_graph_job_plugin(g, (size_t)dp_graph_job_id(g, "plugged")), "core");
    dp_result_free(r);
    dp_graph_free(g);
}

/* The slots and sparse arrays are kept from run to run of a graph (record.c):
 * what one run wrote (errors, versions, requeue hints) must be gone in the
 * next, where other jobs write some again (so the arrays are read). Large
 * (a mapping, pages given back) and small (malloc'd). */
static atomic_int reuse_phase;
static unsigned reuse_n;

static dp_outcome_t phased(dp_job_t *job, void *user)
{
    uintptr_t j = (uintptr_t)user;
    if (atomic_load(&reuse_phase) == 1) {
        if (j % 5 == 0)
            dp_job_set_version(job, "9.9");
        if (j % 7 == 3)
            return dp_job_fail(job, true, "job %u failed in phase 1", (unsigned)j);
    } else {
        if (j == 0)
            dp_job_set_version(job, "2.0");
        if (j == reuse_n - 2)
            return dp_job_fail(job, true, "phase 2");
    }
    return DP_READY;
}

/* Not ready in phase 1; in phase 2 only the last job stays not ready. */
static dp_outcome_t phased_check(dp_job_t *job, void *user)
{
    (void)job;
    bool last = (uintptr_t)user == reuse_n - 1;
    return atomic_load(&reuse_phase) == 1 || last ? DP_NOT_READY : DP_READY;
}

static void check_reuse(unsigned n)
{
    reuse_n = n;
    dp_graph_t *g = dp_graph_new_hint(n, 0);
    char err[256];
    for (unsigned j = 0; j < n; j++) {
        dp_job_spec_t sp;
        dp_job_spec_init(&sp);
        sp.run = phased;
        uint32_t id;
        sp.user = (void *)(uintptr_t)j;
        if (j == n - 1 || j == n - 3) { /* polls given up: requeue hints 5 and 3 */
            sp.check = phased_check;
            sp.readiness.period_ms = j == n - 1 ? 5 : 3;
            sp.readiness.timeout_ms = 12;
        }
        assert_int_equal(dp_graph_add_job_id(g, &sp, &id, err, sizeof err), DP_OK);
    }
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.fail_fast = false;
    opts.max_concurrent_jobs = 2;
    atomic_store(&reuse_phase, 1);
    dp_result_t *r = tu_run(g, &opts);
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_string_equal(dp_result_job(r, 3)->error, "job 3 failed in phase 1");
    assert_string_equal(dp_result_job(r, 5)->plugin_version, "9.9");
    assert_int_equal(dp_result_status(r, n - 1), DP_STATUS_NOT_READY);
    assert_int_equal(dp_result_requeue_after_ms(r), 3);
    dp_result_free(r);
    atomic_store(&reuse_phase, 2);
    for (int k = 0; k < 2; k++) {
        r = tu_run(g, &opts);
        assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
        assert_int_equal(dp_result_requeue_after_ms(r), 5);
        for (unsigned j = 0; j < n; j++) {
            const dp_job_result_t *jr = dp_result_job(r, j);
            if (j == n - 2) {
                assert_string_equal(jr->error, "phase 2");
                continue;
            }
            if (jr->error)
                fail_msg("job %u: error \"%s\" left from the run before", j, jr->error);
            if (j == 0)
                assert_string_equal(jr->plugin_version, "2.0");
            else if (jr->plugin_version)
                fail_msg("job %u: version %s left from the run before", j, jr->plugin_version);
            assert_int_equal(jr->status, j == n - 1 ? DP_STATUS_NOT_READY : DP_STATUS_SUCCESS);
        }
        dp_result_free(r);
    }
    dp_graph_free(g);
}

/* A slot keeps its end as a 32-bit span from its start; longer spans go to
 * the sparse array, and every end reads back as written. */
static void test_slot_spans(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new_hint(4, 0);
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = versioned;
    uint32_t id;
    for (int j = 0; j < 4; j++)
        assert_int_equal(dp_graph_add_job_id(g, &sp, &id, NULL, 0), DP_OK);
    dp_slotbuf_t *sb = dp__slotbuf_take(g);
    assert_non_null(sb);
    uint64_t start = 1000000007ull;
    uint64_t ends[4] = {start + 5, start + (1ull << 33) + 3, start + UINT32_MAX - 2, start - 10};
    uint64_t want[4] = {start + 5, start + (1ull << 33) + 3, start + UINT32_MAX - 2, start};
    for (uint32_t j = 0; j < 4; j++) {
        sb->slot[j].start_tick = start;
        sb->slot[j].span = 0;
        assert_int_equal(dp__slot_end(sb, j), 0); /* not ended */
        dp__slot_set_end(sb, j, ends[j]);
        assert_int_equal(dp__slot_end(sb, j), want[j]);
    }
    assert_int_equal(sb->slot[1].span, DP_SLOT_SPAN_LONG);
    assert_int_equal(sb->slot[2].span, UINT32_MAX - 1); /* the longest that fits */
    assert_int_equal(sb->slot[3].span, 1);              /* clamped to the start */
    assert_int_equal(sb->slot[0].span, 6);
    dp__slot_set_end(sb, 3, start + UINT32_MAX - 1); /* the shortest that does not */
    assert_int_equal(sb->slot[3].span, DP_SLOT_SPAN_LONG);
    assert_int_equal(dp__slot_end(sb, 3), start + UINT32_MAX - 1);
    dp__slotbuf_release(g, sb);
    dp_graph_free(g);
}

static void test_kept_slots_start_clean(void **state)
{
    (void)state;
    check_reuse(21);    /* small: malloc'd */
    check_reuse(20000); /* large: a mapping, its written pages given back */
}

static void test_bad_queries(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A;B:A", s);
    dp_result_t *r = tu_run(g, NULL);
    assert_null(dp_result_find(r, "nope"));
    assert_null(dp_result_job(r, 2));
    assert_non_null(dp_result_job(r, 1));
    dp_id_list_t l = {0};
    assert_int_equal(dp_result_blockers(r, 2, &l), DP_EINVAL);
    assert_int_equal(dp_result_subtree(r, 2, &l), DP_EINVAL);
    assert_int_equal(dp_result_blockers(r, 0, NULL), DP_EINVAL);
    dp_id_list_free(&l);
    dp_id_list_free(NULL);
    dp_result_free(NULL);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* ---- an unknown job carries no error ------------------------------------ */

/* The error of every event of job `name` whose status is unknown must be
 * empty; returns how many such events there were. */
static size_t unknown_events_without_error(tu_events_t *e, const char *name)
{
    size_t n = 0;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n; i++) {
        const tu_event_t *t = &e->v[i];
        if (strcmp(t->name, name) != 0 || t->status != DP_STATUS_UNKNOWN ||
            (t->kind != DP_EV_ATTEMPT_END && t->kind != DP_EV_JOB_END))
            continue;
        if (t->error[0])
            fail_msg("%s: %s event (unknown) carries error \"%s\"", name,
                     t->kind == DP_EV_JOB_END ? "job end" : "attempt end", t->error);
        n++;
    }
    pthread_mutex_unlock(&e->mu);
    return n;
}

/* Results after cancellation are not trusted (the seed's rule): a job the
 * run's timeout cut off mid-attempt (A returns "A interrupted: ...") or in
 * its backoff (B's first attempt failed) is unknown with no error, in the
 * records and in its unknown events; first_error says why the run stopped.
 * B's failed attempt keeps its message in its own (failed) event. */
static void test_unknown_after_timeout_has_no_error(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "A", "block");
    tu_set(s, "B", "fail=1 retries=2 backoff=20000");
    dp_graph_t *g = tu_graph("A:;B:;C:A", s);
    dp_run_opts_t o = opts_of(3, 300, true);
    tu_events_t ev;
    tu_events_init(&ev);
    o.on_event = tu_event_cb;
    o.event_user = &ev;
    dp_result_t *r = tu_run(g, &o);
    assert_string_equal(tu_statuses(r), "A=unknown B=unknown C=unknown");
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    assert_string_equal(dp_result_first_error(r), "timeout after 300ms");
    assert_null(tu_jr(r, "A")->error);
    assert_null(tu_jr(r, "B")->error);
    assert_null(tu_jr(r, "C")->error);
    assert_int_equal(tu_jr(r, "A")->attempts, 1);
    assert_int_equal(tu_jr(r, "B")->attempts, 1);
    assert_string_equal(tu_events_of(&ev, "A"), "start1 end1:unknown job:unknown");
    assert_string_equal(tu_events_of(&ev, "B"), "start1 end1:failed job:unknown");
    assert_int_equal(unknown_events_without_error(&ev, "A"), 2);
    assert_int_equal(unknown_events_without_error(&ev, "B"), 1);
    bool b_failed_said = false;
    for (size_t i = 0; i < ev.n; i++)
        if (!strcmp(ev.v[i].name, "B") && ev.v[i].kind == DP_EV_ATTEMPT_END)
            b_failed_said = !strcmp(ev.v[i].error, "B failed (attempt 1)");
    assert_true(b_failed_said);
    tu_events_destroy(&ev);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Fail-fast: X fails, Y (running) is cancelled and returns its own
 * "interrupted" error: Y is unknown without it; first_error is X's. */
static void test_unknown_after_fail_fast_has_no_error(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "X", "sleep=50 error");
    tu_set(s, "Y", "block");
    dp_graph_t *g = tu_graph("X:;Y:", s);
    dp_run_opts_t o = opts_of(2, 0, true);
    tu_events_t ev;
    tu_events_init(&ev);
    o.on_event = tu_event_cb;
    o.event_user = &ev;
    dp_result_t *r = tu_run(g, &o);
    assert_string_equal(tu_statuses(r), "X=failed Y=unknown");
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_string_equal(dp_result_first_error(r), tu_jr(r, "X")->error);
    assert_non_null(strstr(dp_result_first_error(r), "X"));
    assert_null(tu_jr(r, "Y")->error);
    assert_int_equal(unknown_events_without_error(&ev, "Y"), 2);
    tu_events_destroy(&ev);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The caller cancels (its parent context, as SIGINT does in the command)
 * while R runs: R returns "R interrupted: ...", and stays unknown without
 * it; the run is cancelled with first_error "cancelled". */
static int cancel_parent(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)job;
    (void)tj;
    (void)is_check;
    dp_ctx_cancel(arg);
    return -1;
}

static void test_unknown_after_cancel_has_no_error(void **state)
{
    (void)state;
    dp_ctx_t *parent = dp_ctx_new(NULL, 0);
    assert_non_null(parent);
    tu_script_t *s = tu_script_new();
    tu_set(s, "R", "block");
    tu_hook(s, "R", cancel_parent, parent);
    dp_graph_t *g = tu_graph("R:", s);
    dp_run_opts_t o = opts_of(1, 0, true);
    o.parent = parent;
    dp_result_t *r = tu_run(g, &o);
    assert_string_equal(tu_statuses(r), "R=unknown");
    assert_true(dp_result_cancelled(r));
    assert_string_equal(dp_result_first_error(r), "cancelled");
    assert_null(tu_jr(r, "R")->error);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
    dp_ctx_free(parent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_checked_queries),
        cmocka_unit_test(test_subtree_of_diamond),
        cmocka_unit_test(test_frontiers_after_timeout),
        cmocka_unit_test(test_subtree_sorted_small_and_large),
        cmocka_unit_test(test_queries_on_layered_graph_match_reference),
        cmocka_unit_test(test_first_not_ready_by_name),
        cmocka_unit_test(test_first_error_is_earliest_failure),
        cmocka_unit_test(test_outcome_precedence),
        cmocka_unit_test(test_requeue_after),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_plugin_label_and_version),
        cmocka_unit_test(test_slot_spans),
        cmocka_unit_test(test_kept_slots_start_clean),
        cmocka_unit_test(test_bad_queries),
        cmocka_unit_test(test_unknown_after_timeout_has_no_error),
        cmocka_unit_test(test_unknown_after_fail_fast_has_no_error),
        cmocka_unit_test(test_unknown_after_cancel_has_no_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
