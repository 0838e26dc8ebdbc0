/* test_rules.c - trigger rules and final jobs (host/src/rules.c, and their
 * part in pool.c, run_end.c and result.c): run_if all_success / all_done /
 * any_failed, continue_on_failure, the cleanup phase after fail-fast, the
 * global timeout and a cancellation, its bound (cleanup_timeout), and what
 * the result says (statuses, reasons, outcome, frontiers, boundary), on
 * graphs of 10+ jobs. README.md "Trigger rules and final jobs" is the
 * table these tests hold the code to.
 *
 * Timing assertions are inequalities with generous margins. */
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
#include "testutil.h"

static dp_run_opts_t opts_of(unsigned conc, uint64_t timeout_ms, bool fail_fast)
{
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = conc;
    o.timeout_ms = timeout_ms;
    o.fail_fast = fail_fast;
    o.seed = 7;
    return o;
}

static dp_outcome_t noop_job(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return DP_READY;
}

/* Every job that ran started after each of its dependencies that ran had
 * returned (one skipped never ran: tu_expect_dep_order would count it). */
static void dep_order(const dp_graph_t *g, tu_script_t *s)
{
    for (size_t j = 0; j < dp_graph_job_count(g); j++) {
        tu_job_t *tj = tu_job(s, dp_graph_job_name(g, j));
        unsigned start = atomic_load(&tj->start_seq);
        if (!start)
            continue;
        const uint32_t *deps;
        size_t nd = dp_graph_deps(g, j, &deps);
        for (size_t k = 0; k < nd; k++) {
            unsigned end = atomic_load(&tu_job(s, dp_graph_job_name(g, deps[k]))->end_seq);
            if (atomic_load(&tu_job(s, dp_graph_job_name(g, deps[k]))->start_seq) && end >= start)
                fail_msg("%s started (seq %u) before its dependency %s returned (seq %u)", tj->name, start,
                         dp_graph_job_name(g, deps[k]), end);
        }
    }
}

static const char *reason(const dp_result_t *r, const char *name)
{
    const char *s = tu_jr(r, name)->reason;
    return s ? s : "-";
}

/* Twelve jobs: B fails; a chain below it (D, E), a join (G) with the
 * branch that works (C, F), a handler of B (H), a handler of C that is not
 * needed (I) with a job below it (J), a notifier that waits for G and H
 * whatever they did (K), and a job below it (L). */
#define TWELVE "A; B:A; C:A; D:B; E:D; F:C; G:E,F; H:B; I:C; J:I; K:G,H; L:K"

static tu_script_t *twelve_script(void)
{
    tu_script_t *s = tu_script_new();
    tu_set(s, "B", "permanent");
    tu_set(s, "H,I", "run_if=any_failed");
    tu_set(s, "K", "run_if=all_done");
    return s;
}

/* Keeping going: every rule decides during the run, and the frontiers and
 * boundary count a not-needed handler as done. */
static void test_keep_going_rules(void **state)
{
    (void)state;
    tu_script_t *s = twelve_script();
    dp_graph_t *g = tu_graph(TWELVE, s);
    dp_run_opts_t o = opts_of(4, 10000, false);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "A=success B=failed C=success D=skipped E=skipped F=success G=skipped H=success I=skipped "
                 "J=skipped K=success L=success");
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_true(dp_result_is_failed(r));
    assert_null(dp_result_cleanup_after(r));
    assert_string_equal(dp_result_first_error(r), "B run failed permanently");
    assert_string_equal(reason(r, "H"), "a dependency failed");
    assert_string_equal(reason(r, "I"), "no dependency failed");
    assert_string_equal(reason(r, "J"), "a dependency was not needed");
    assert_string_equal(reason(r, "K"), "dependencies ended");
    assert_string_equal(reason(r, "D"), "a dependency did not succeed");
    assert_string_equal(reason(r, "E"), "a dependency did not succeed");
    assert_string_equal(reason(r, "A"), "-");
    assert_int_equal(tu_jr(r, "K")->run_if, DP_RUN_IF_ALL_DONE);
    assert_int_equal(tu_jr(r, "H")->run_if, DP_RUN_IF_ANY_FAILED);
    assert_int_equal(tu_jr(r, "A")->run_if, DP_RUN_IF_ALL_SUCCESS);
    /* B is the only place the workflow stopped: the not-needed handler I
     * and J below it are no frontier, and hold nothing above them back. */
    assert_string_equal(tu_frontiers(r), "B:failed[]{B,D,E,G,H,K,L}");
    assert_string_equal(tu_boundary(r), "A,C,F");
    /* Every job that ran did so after its dependencies ended. */
    dep_order(g, s);
    assert_int_equal(atomic_load(&tu_job(s, "I")->runs), 0);
    assert_int_equal(atomic_load(&tu_job(s, "H")->runs), 1);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* continue_on_failure: B's failure fails neither the run nor fail-fast; its
 * successors run; its status stays failed with its error. */
static void test_continue_on_failure(void **state)
{
    (void)state;
    for (int ff = 0; ff < 2; ff++) {
        tu_script_t *s = twelve_script();
        tu_set(s, "B", "continue_on_failure");
        dp_graph_t *g = tu_graph(TWELVE, s);
        dp_run_opts_t o = opts_of(3, 10000, ff == 1);
        dp_result_t *r = tu_run(g, &o);
        tu_expect(r, "A=success B=failed C=success D=success E=success F=success G=success H=success I=skipped "
                     "J=skipped K=success L=success");
        assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
        assert_true(dp_result_is_ready(r));
        assert_false(dp_result_is_failed(r));
        assert_null(dp_result_first_error(r));
        assert_string_equal(tu_jr(r, "B")->error, "B run failed permanently");
        assert_true(tu_jr(r, "B")->continue_on_failure);
        assert_string_equal(reason(r, "B"), "failure tolerated (continue_on_failure)");
        assert_string_equal(reason(r, "H"), "a dependency failed");
        assert_int_equal(dp_result_boundary(r)->count, 0);
        const dp_frontier_t *f;
        assert_int_equal(dp_result_frontiers(r, &f), 0);
        /* Its blockers: a tolerated failure blocks nothing. */
        dp_id_list_t bl;
        assert_int_equal(dp_result_blockers(r, (uint32_t)dp_graph_job_id(g, "D"), &bl), DP_OK);
        assert_int_equal(bl.count, 0);
        dp_id_list_free(&bl);
        dep_order(g, s);
        dp_result_free(r);
        dp_graph_free(g);
        tu_script_free(s);
    }
}

/* A tolerated failure among other, real ones: the run fails, with the real
 * one's error first even when the tolerated one ended earlier. */
static void test_tolerated_and_real_failure(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "T", "permanent continue_on_failure");
    tu_set(s, "R", "permanent sleep=50");
    tu_set(s, "Z", "run_if=all_done");
    dp_graph_t *g = tu_graph("A; T:A; R:A; B1:T; B2:B1; B3:R; C1:A; C2:C1; C3:C2; C4:C3; Z:B2,B3,C4", s);
    dp_run_opts_t o = opts_of(4, 10000, false);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "T=failed R=failed B1=success B2=success B3=skipped C4=success Z=success");
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_string_equal(dp_result_first_error(r), "R run failed permanently");
    assert_string_equal(tu_frontiers(r), "R:failed[]{B3,R,Z}");
    assert_string_equal(tu_boundary(r), "A");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Fail-fast: the run is cancelled, and the cleanup phase runs the final
 * jobs: the cleanup (all_done) and the failed job's handler, in dependency
 * order; the run's outcome stays failed. */
static void test_cleanup_after_fail_fast(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "B", "permanent sleep=30");
    tu_set(s, "S", "block");
    tu_set(s, "H", "run_if=any_failed");
    tu_set(s, "N", "run_if=any_failed"); /* a handler of S: S was cut, not failed */
    tu_set(s, "X1,X2", "run_if=all_done");
    dp_graph_t *g = tu_graph("A; B:A; S:A; D:B; E:S; F:D,E; H:B; N:S; X1:F,H; X2:X1; P:X2; Q:A", s);
    dp_run_opts_t o = opts_of(4, 20000, true);
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    assert_true(dp_test_now_ms() - t0 < 10000);
    tu_expect(r, "A=success B=failed S=unknown D=unknown E=unknown F=unknown H=success N=unknown X1=success "
                 "X2=success P=unknown");
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_false(dp_result_timed_out(r));
    assert_false(dp_result_cancelled(r));
    assert_string_equal(dp_result_first_error(r), "B run failed permanently");
    assert_string_equal(dp_result_cleanup_after(r), "fail_fast");
    assert_string_equal(reason(r, "H"), "cleanup after fail-fast");
    assert_string_equal(reason(r, "X1"), "cleanup after fail-fast");
    assert_string_equal(reason(r, "X2"), "cleanup after fail-fast");
    assert_string_equal(reason(r, "N"), "-");
    /* In dependency order: H before X1 before X2. */
    assert_true(atomic_load(&tu_job(s, "H")->end_seq) < atomic_load(&tu_job(s, "X1")->start_seq));
    assert_true(atomic_load(&tu_job(s, "X1")->end_seq) < atomic_load(&tu_job(s, "X2")->start_seq));
    assert_true(atomic_load(&tu_job(s, "S")->saw_cancel));
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The exit-code rule: a cleanup that itself fails after a failed run
 * leaves the outcome failed and the first error the run's own. */
static void test_cleanup_fails_after_failed_run(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "B", "permanent");
    tu_set(s, "S1,S2,S3", "block");
    tu_set(s, "X", "run_if=all_done error");
    dp_graph_t *g = tu_graph("A; B:A; S1:A; S2:A; S3:A; C:B; D:S1; E:S2; F:S3; G:C,D; X:G,E,F", s);
    dp_run_opts_t o = opts_of(4, 20000, true);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "B=failed X=failed S1=unknown");
    assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
    assert_string_equal(dp_result_first_error(r), "B run failed permanently");
    assert_string_equal(dp_result_cleanup_after(r), "fail_fast");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The global timeout: the cleanup runs under its own grace, the outcome
 * stays timeout, whether the cleanup succeeds or not. */
static void test_cleanup_after_timeout(void **state)
{
    (void)state;
    for (int cleanup_fails = 0; cleanup_fails < 2; cleanup_fails++) {
        tu_script_t *s = tu_script_new();
        tu_set(s, "*", "block");
        tu_set(s, "A", "block=0");
        tu_set(s, "X", cleanup_fails ? "block=0 run_if=all_done error" : "block=0 run_if=all_done");
        tu_set(s, "Y", "block=0 run_if=all_done sleep=20");
        dp_graph_t *g = tu_graph("A; B:A; C:A; D:A; E:B; F:C; G:D; H:E,F,G; I:H; J:I; X:J; Y:X", s);
        dp_run_opts_t o = opts_of(4, 150, true);
        uint64_t t0 = dp_test_now_ms();
        dp_result_t *r = tu_run(g, &o);
        assert_true(dp_test_now_ms() - t0 < 10000);
        tu_expect(r, cleanup_fails ? "A=success B=unknown H=unknown X=failed Y=success"
                                   : "A=success B=unknown H=unknown X=success Y=success");
        assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
        assert_true(dp_result_timed_out(r));
        assert_string_equal(dp_result_first_error(r), "timeout after 150ms");
        assert_string_equal(dp_result_cleanup_after(r), "timeout");
        assert_string_equal(reason(r, "Y"), "cleanup after timeout");
        /* The cleanup ran after its dependencies' time was up: with its
         * own context, not done. */
        assert_false(atomic_load(&tu_job(s, "Y")->saw_cancel));
        dp_result_free(r);
        dp_graph_free(g);
        tu_script_free(s);
    }
}

/* The grace bounds a cleanup that would not end: it fails with
 * "cleanup_timeout (...) passed", and the run ends soon after. */
static void test_cleanup_timeout_bounds(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "block");
    tu_set(s, "A", "block=0");
    tu_set(s, "X", "run_if=all_done cleanup_timeout=300");
    tu_set(s, "Y", "block=0 run_if=all_done");
    dp_graph_t *g = tu_graph("A; B:A; C:A; D:B; E:C; F:D,E; G:F; H:G; I:H; J:I; X:J; Y:X", s);
    dp_run_opts_t o = opts_of(2, 100, true);
    tu_events_t ev;
    tu_events_init(&ev);
    o.on_event = tu_event_cb;
    o.event_user = &ev;
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    uint64_t took = dp_test_now_ms() - t0;
    /* One end, failed: the grace's expiry is the job's failure, not a cut. */
    assert_string_equal(tu_events_of(&ev, "X"), "start1 end1:failed job:failed");
    tu_events_destroy(&ev);
    assert_true(took >= 300);
    assert_true(took < 8000);
    tu_expect(r, "X=failed Y=success B=unknown");
    assert_string_equal(tu_jr(r, "X")->error, "cleanup_timeout (300ms) passed");
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A cancellation from outside (the caller's context): the cleanup runs,
 * the outcome is cancelled. */
typedef struct cancel_arg {
    tu_script_t *s;
    dp_ctx_t *ctx;
} cancel_arg_t;

static void *cancel_later(void *p)
{
    cancel_arg_t *c = p;
    uint64_t until = dp_test_now_ms() + 5000;
    while (atomic_load(&c->s->max_running) < 3 && dp_test_now_ms() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    dp_ctx_cancel(c->ctx);
    return NULL;
}

static void test_cleanup_after_cancel(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "block");
    tu_set(s, "X", "block=0 run_if=all_done");
    tu_set(s, "Y", "block=0 run_if=all_done permanent");
    tu_set(s, "H", "block=0 run_if=any_failed");
    dp_graph_t *g = tu_graph("A; B; C; D:A; E:B; F:C; G:D,E,F; H:G; I:G; J:I; K:J; X:K,H; Y:X", s);
    dp_ctx_t *parent = dp_ctx_new(NULL, 0);
    assert_non_null(parent);
    dp_run_opts_t o = opts_of(3, 0, true);
    o.parent = parent;
    cancel_arg_t c = {.s = s, .ctx = parent};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancel_later, &c), 0);
    dp_result_t *r = tu_run(g, &o);
    pthread_join(th, NULL);
    tu_expect(r, "A=unknown G=unknown H=unknown X=success Y=failed");
    assert_int_equal(dp_result_outcome(r), DP_RUN_CANCELLED);
    assert_string_equal(dp_result_first_error(r), "cancelled");
    assert_true(dp_result_cancelled(r));
    assert_string_equal(dp_result_cleanup_after(r), "cancelled");
    assert_string_equal(reason(r, "X"), "cleanup after cancellation");
    dp_result_free(r);
    dp_graph_free(g);
    dp_ctx_free(parent);
    tu_script_free(s);
}

/* Not ready upstream: all_success below it is skipped, all_done runs, a
 * handler is not needed; the outcome is not_ready. */
static void test_not_ready_upstream(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "B", "not_ready");
    tu_set(s, "X", "run_if=all_done");
    tu_set(s, "H", "run_if=any_failed");
    dp_graph_t *g = tu_graph("A; B:A; C:B; D:C; E:A; F:E; G:F; H:B; I:H; X:D,G; Y:X; Z:Y", s);
    dp_run_opts_t o = opts_of(4, 10000, true);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "A=success B=not_ready C=skipped D=skipped G=success H=skipped I=skipped X=success Y=success "
                 "Z=success");
    assert_int_equal(dp_result_outcome(r), DP_RUN_NOT_READY);
    assert_string_equal(tu_frontiers(r), "B:not_ready[]{B,C,D,H,I,X,Y,Z}");
    assert_string_equal(tu_boundary(r), "A");
    assert_string_equal(reason(r, "H"), "no dependency failed");
    assert_string_equal(reason(r, "I"), "a dependency was not needed");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A handler needs a dependency: refused at validate. */
static void test_handler_without_dependency_refused(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "H", "run_if=any_failed");
    dp_graph_t *g = tu_graph("A; B:A; H", s);
    char err[256] = "";
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_EINVAL);
    assert_non_null(strstr(err, "\"H\" has run_if any_failed but no dependency"));
    dp_graph_free(g);
    tu_script_free(s);

    /* And a value that is no rule, at add. */
    dp_graph_t *g2 = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.name = "A";
    sp.run = noop_job;
    sp.run_if = (dp_run_if_t)7;
    assert_int_equal(dp_graph_add_job(g2, &sp, err, sizeof err), DP_EINVAL);
    dp_graph_free(g2);
}

/* A graph without rules says nothing new: no reason, the default rule. */
static void test_no_rules_no_reasons(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "B", "permanent");
    dp_graph_t *g = tu_graph("A; B:A; C:B; D:A; E:D; F:E; G:F; H:G; I:H; J:I", s);
    dp_run_opts_t o = opts_of(4, 10000, false);
    dp_result_t *r = tu_run(g, &o);
    for (size_t i = 0; i < dp_result_job_count(r); i++) {
        assert_null(dp_result_job(r, i)->reason);
        assert_int_equal(dp_result_job(r, i)->run_if, DP_RUN_IF_ALL_SUCCESS);
        assert_false(dp_result_job(r, i)->continue_on_failure);
    }
    tu_expect(r, "B=failed C=skipped J=success");
    assert_null(dp_result_cleanup_after(r));
    assert_string_equal(dp_run_if_name(DP_RUN_IF_ALL_DONE), "all_done");
    assert_string_equal(dp_run_if_name(DP_RUN_IF_ANY_FAILED), "any_failed");
    assert_string_equal(dp_run_if_name(DP_RUN_IF_ALL_SUCCESS), "all_success");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Many jobs, many workers: layers where some jobs fail (keep going), with
 * an all_done job and a handler per layer. Every job ends (none unknown),
 * every rule held, and the run can be repeated on the same graph. */
static void test_layers_many_workers(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_layers(8, 12);
    /* Add per layer a cleanup and a handler of two of its jobs. */
    size_t cap = strlen(spec) + 4096;
    char *full = malloc(cap);
    assert_non_null(full);
    size_t len = (size_t)snprintf(full, cap, "%s", spec);
    for (int l = 0; l < 8; l++) {
        char name[32];
        len += (size_t)snprintf(full + len, cap - len, ";X%d:L%d_0,L%d_5;H%d:L%d_3,L%d_7", l, l, l, l, l, l);
        snprintf(name, sizeof name, "X%d", l);
        tu_set(s, name, "run_if=all_done");
        snprintf(name, sizeof name, "H%d", l);
        tu_set(s, name, "run_if=any_failed");
    }
    tu_set(s, "L2_3,L5_7", "permanent");
    tu_set(s, "L4_0", "permanent continue_on_failure");
    dp_graph_t *g = tu_graph(full, s);
    for (int round = 0; round < 3; round++) {
        dp_run_opts_t o = opts_of(8, 20000, false);
        dp_result_t *r = tu_run(g, &o);
        size_t unknown = 0;
        for (size_t i = 0; i < dp_result_job_count(r); i++)
            unknown += dp_result_job(r, i)->status == DP_STATUS_UNKNOWN;
        assert_int_equal(unknown, 0);
        for (int l = 0; l < 8; l++) {
            char name[32];
            snprintf(name, sizeof name, "X%d", l);
            assert_int_equal(tu_status(r, name), DP_STATUS_SUCCESS);
            snprintf(name, sizeof name, "H%d", l);
            assert_int_equal(tu_status(r, name), l == 2 || l == 5 ? DP_STATUS_SUCCESS : DP_STATUS_SKIPPED);
        }
        tu_expect(r, "L4_0=failed");
        assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
        dp_result_free(r);
    }
    dep_order(g, s);
    dp_graph_free(g);
    free(full);
    free(spec);
    tu_script_free(s);
}

/* In the cleanup phase the lot is closed: a final job that polls its
 * readiness polls on the calling thread, and one that retries waits its
 * backoff there (its state moved to the heap on the way: ASan sees it
 * freed). */
static void test_cleanup_polls_and_retries(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "block");
    tu_set(s, "A", "block=0");
    tu_set(s, "P", "block=0 run_if=all_done check_after=3 period=20 cleanup_timeout=5000");
    tu_set(s, "R", "block=0 run_if=all_done fail=1 retries=2 backoff=20 cleanup_timeout=5000");
    /* Its grace passes during a backoff: failed, not unknown. */
    tu_set(s, "Q", "block=0 run_if=all_done fail=5 retries=5 backoff=400 cleanup_timeout=150");
    dp_graph_t *g = tu_graph("A; B:A; C:A; D:B; E:C; F:D,E; G:F; H:G; I:H; J:I; P:J; R:P; Q:R", s);
    dp_run_opts_t o = opts_of(3, 100, true);
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "A=success B=unknown P=success R=success");
    assert_int_equal(atomic_load(&tu_job(s, "P")->checks), 3);
    assert_int_equal(tu_jr(r, "R")->attempts, 2);
    tu_expect(r, "Q=failed");
    assert_int_equal(tu_jr(r, "Q")->attempts, 1);
    assert_string_equal(tu_jr(r, "Q")->error, "cleanup_timeout (150ms) passed");
    assert_int_equal(dp_result_outcome(r), DP_RUN_TIMEOUT);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A program built against the 1.0 header: its spec ends at `limits`, and
 * whatever lies after it in memory is not read as a rule. */
static void test_spec_of_a_1_0_program_has_no_rules(void **state)
{
    (void)state;
    size_t size_1_0 = offsetof(dp_job_spec_t, limits) + sizeof(dp_limits_t);
    dp_graph_t *g = dp_graph_new();
    char err[256] = "";
    char name[16];
    for (int i = 0; i < 12; i++) {
        dp_job_spec_t *big = malloc(sizeof *big);
        assert_non_null(big);
        memset(big, 0xAB, sizeof *big); /* garbage where the new fields are */
        (dp_job_spec_init)(big);        /* the 1.0 symbol: 1.0 fields only */
        snprintf(name, sizeof name, "j%02d", i);
        big->name = name;
        big->run = noop_job;
        assert_int_equal(dp_graph_add_job_sized(g, big, size_1_0, err, sizeof err), DP_OK);
        free(big);
        if (i)
            assert_int_equal(dp_graph_add_dep_ids(g, (uint32_t)i, (uint32_t)(i - 1)), DP_OK);
    }
    dp_run_opts_t o = opts_of(2, 10000, true);
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    for (size_t i = 0; i < 12; i++) {
        assert_int_equal(dp_graph_job_run_if(g, i), DP_RUN_IF_ALL_SUCCESS);
        assert_false(dp_graph_job_continue_on_failure(g, i));
        assert_null(dp_result_job(r, i)->reason);
    }
    dp_result_free(r);
    dp_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_going_rules),
        cmocka_unit_test(test_continue_on_failure),
        cmocka_unit_test(test_tolerated_and_real_failure),
        cmocka_unit_test(test_cleanup_after_fail_fast),
        cmocka_unit_test(test_cleanup_fails_after_failed_run),
        cmocka_unit_test(test_cleanup_after_timeout),
        cmocka_unit_test(test_cleanup_timeout_bounds),
        cmocka_unit_test(test_cleanup_after_cancel),
        cmocka_unit_test(test_not_ready_upstream),
        cmocka_unit_test(test_handler_without_dependency_refused),
        cmocka_unit_test(test_no_rules_no_reasons),
        cmocka_unit_test(test_layers_many_workers),
        cmocka_unit_test(test_cleanup_polls_and_retries),
        cmocka_unit_test(test_spec_of_a_1_0_program_has_no_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
