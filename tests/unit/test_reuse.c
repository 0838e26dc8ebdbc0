/* test_reuse.c - jobs reused from an earlier run (dp_run_opts_t.reused,
 * host/src/reuse.c and run.c), through the public API on graphs of 10+
 * jobs: a reused job is success from the start without any callback, its
 * successors run, a reused job below one that runs runs too, frontiers and
 * boundary as usual, the result's `reused` flag, the JSON's "reused": true
 * and the DP_EV_JOB_REUSED events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "render.h"
#include "testutil.h"

static dp_run_opts_t opts_of(unsigned conc)
{
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = conc;
    o.timeout_ms = 20000;
    o.seed = 7;
    return o;
}

static unsigned runs_of(tu_script_t *s, const char *name)
{
    return atomic_load(&tu_job(s, name)->runs) + atomic_load(&tu_job(s, name)->checks);
}

/* The ids of the comma-separated names (validates g first). */
static size_t ids_of(dp_graph_t *g, const char *names, uint32_t *ids, size_t cap)
{
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    char *copy = strdup(names), *save = NULL;
    size_t n = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long id = dp_graph_job_id(g, t);
        if (id < 0)
            fail_msg("no job %s", t);
        assert_true(n < cap);
        ids[n++] = (uint32_t)id;
    }
    free(copy);
    return n;
}

/* "A,B" of the jobs whose record says reused. Static buffer. */
static const char *reused_names(const dp_result_t *r)
{
    static char buf[4096];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < dp_result_job_count(r); i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        assert_non_null(j);
        if (j->reused)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", len ? "," : "", j->name);
    }
    return buf;
}

/* tu_expect_dep_order for a run with reused jobs: every job that ran
 * started after each dependency that ran returned (a reused dependency
 * never runs, so it has no sequence numbers). */
static void expect_dep_order(const dp_result_t *r, tu_script_t *s)
{
    const dp_graph_t *g = dp_result_graph(r);
    for (size_t id = 0; id < dp_graph_job_count(g); id++) {
        tu_job_t *tj = tu_job(s, dp_graph_job_name(g, id));
        unsigned start = atomic_load(&tj->start_seq);
        if (!start)
            continue;
        assert_false(dp_result_job(r, id)->reused);
        const uint32_t *deps;
        size_t nd = dp_graph_deps(g, id, &deps);
        for (size_t k = 0; k < nd; k++) {
            if (dp_result_job(r, deps[k])->reused)
                continue;
            tu_job_t *dj = tu_job(s, dp_graph_job_name(g, deps[k]));
            unsigned end = atomic_load(&dj->end_seq);
            if (end == 0 || end > start)
                fail_msg("%s started (seq %u) before its dependency %s returned (seq %u)", tj->name, start, dj->name,
                         end);
        }
    }
}

/* A chain of three reused layers, then jobs that run: the reused ones are
 * success without a call, with no attempts or times; the rest run after
 * them, in dependency order. */
static void test_reused_prefix_runs_the_rest(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_layers(5, 4); /* 20 jobs, each on two of the layer before */
    dp_graph_t *g = tu_graph(spec, s);
    uint32_t ids[32];
    size_t n = ids_of(g, "L0_0,L0_1,L0_2,L0_3,L1_0,L1_1,L1_2,L1_3,L2_0,L2_1,L2_2,L2_3", ids, 32);
    tu_events_t ev;
    tu_events_init(&ev);
    dp_run_opts_t o = opts_of(4);
    o.reused = ids;
    o.nreused = n;
    o.on_event = tu_event_cb;
    o.event_user = &ev;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    for (unsigned l = 0; l < 5; l++)
        for (unsigned i = 0; i < 4; i++) {
            char name[16];
            snprintf(name, sizeof name, "L%u_%u", l, i);
            const dp_job_result_t *j = tu_jr(r, name);
            assert_int_equal(j->status, DP_STATUS_SUCCESS);
            if (l < 3) {
                assert_true(j->reused);
                assert_int_equal(runs_of(s, name), 0);
                assert_int_equal(j->attempts, 0);
                assert_int_equal(j->start_ms, -1);
                assert_int_equal(j->duration_ms, -1);
                assert_string_equal(tu_events_of(&ev, name), "reused");
            } else {
                assert_false(j->reused);
                assert_int_equal(runs_of(s, name), 1);
                assert_int_equal(j->attempts, 1);
                assert_true(j->start_ms >= 0);
                assert_string_equal(tu_events_of(&ev, name), "start1 end1:success job:success");
            }
        }
    /* Every reused event comes before the first start. */
    bool started = false;
    for (size_t i = 0; i < ev.n; i++) {
        if (ev.v[i].kind == DP_EV_ATTEMPT_START)
            started = true;
        if (ev.v[i].kind == DP_EV_JOB_REUSED) {
            assert_false(started);
            assert_int_equal(ev.v[i].status, DP_STATUS_SUCCESS);
            assert_int_equal(ev.v[i].attempt, 0);
        }
    }
    assert_int_equal(atomic_load(&s->total_runs), 8);
    expect_dep_order(r, s);
    assert_string_equal(tu_boundary(r), "");
    dp_result_free(r);
    tu_events_destroy(&ev);
    free(spec);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Jobs with several dependencies of which only some are reused wait for the
 * others only (their counters start lower); a job with one dependency,
 * reused, starts at once. Repeated ids count once. */
static void test_partly_reused_dependencies(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    /* R1, R2 reused; A runs; M on R1 and A; N on R1 and R2 (both reused:
     * a root of this run); P on R2 only; Q on M, N, P; then a tail. */
    dp_graph_t *g = tu_graph("R1:;R2:;A:;M:R1,A;N:R1,R2;P:R2;Q:M,N,P;T1:Q;T2:T1,N;T3:T2,P;T4:T3", s);
    uint32_t ids[8];
    size_t n = ids_of(g, "R1,R2,R1,R2,R2", ids, 8);
    tu_set(s, "A", "sleep=30");
    dp_run_opts_t o = opts_of(3);
    o.reused = ids;
    o.nreused = n;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_string_equal(reused_names(r), "R1,R2");
    assert_int_equal(runs_of(s, "R1") + runs_of(s, "R2"), 0);
    const char *ran[] = {"A", "M", "N", "P", "Q", "T1", "T2", "T3", "T4"};
    for (size_t i = 0; i < sizeof ran / sizeof ran[0]; i++)
        assert_int_equal(runs_of(s, ran[i]), 1);
    /* M waited for A (its one dependency that runs). */
    assert_true(atomic_load(&tu_job(s, "M")->start_seq) > atomic_load(&tu_job(s, "A")->end_seq));
    expect_dep_order(r, s);
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A job given as reused whose dependency runs is not reused: it runs, and
 * so does everything below it, reused or not; a reused job beside it
 * stays reused. */
static void test_reused_below_a_running_job_runs(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:B;D:C;E:D;X:;Y:X;Z:Y,E;K:;L:K", s);
    uint32_t ids[16];
    /* B is not given: C, D, E, Z (below it) run although given. */
    size_t n = ids_of(g, "A,C,D,E,X,Y,Z,K", ids, 16);
    tu_events_t ev;
    tu_events_init(&ev);
    dp_run_opts_t o = opts_of(4);
    o.reused = ids;
    o.nreused = n;
    o.on_event = tu_event_cb;
    o.event_user = &ev;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_string_equal(reused_names(r), "A,K,X,Y");
    const char *ran[] = {"B", "C", "D", "E", "Z", "L"};
    for (size_t i = 0; i < sizeof ran / sizeof ran[0]; i++) {
        assert_int_equal(runs_of(s, ran[i]), 1);
        assert_string_equal(tu_events_of(&ev, ran[i]), "start1 end1:success job:success");
    }
    const char *kept[] = {"A", "K", "X", "Y"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        assert_int_equal(runs_of(s, kept[i]), 0);
        assert_string_equal(tu_events_of(&ev, kept[i]), "reused");
    }
    expect_dep_order(r, s);
    dp_result_free(r);
    tu_events_destroy(&ev);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Everything reused: success at once, no callback, no event but the
 * reused ones (no worker has anything to wait for). */
static void test_all_reused(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_layers(4, 5);
    dp_graph_t *g = tu_graph(spec, s);
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    size_t n = dp_graph_job_count(g);
    uint32_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (uint32_t)(n - 1 - i);
    tu_events_t ev;
    tu_events_init(&ev);
    dp_run_opts_t o = opts_of(4);
    o.reused = ids;
    o.nreused = n;
    o.on_event = tu_event_cb;
    o.event_user = &ev;
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *r = tu_run(g, &o);
    assert_true(dp_test_now_ms() - t0 < 5000);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(atomic_load(&s->total_runs), 0);
    assert_int_equal(ev.n, n);
    for (size_t i = 0; i < n; i++)
        assert_true(dp_result_job(r, i)->reused);
    const dp_frontier_t *fr;
    assert_int_equal(dp_result_frontiers(r, &fr), 0);
    dp_result_free(r);
    tu_events_destroy(&ev);
    free(ids);
    free(spec);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A failure below reused jobs: frontiers and boundary count a reused job
 * as any success; fail-fast and keep-going as usual. */
static void test_failure_below_reused(void **state)
{
    (void)state;
    for (int keep_going = 0; keep_going < 2; keep_going++) {
        tu_script_t *s = tu_script_new();
        dp_graph_t *g = tu_graph("A:;B:A;C:A;D:B;E:C;F:D,E;G:F;H:;I:H;J:I;K:", s);
        uint32_t ids[8];
        size_t n = ids_of(g, "A,B,C,H", ids, 8);
        tu_set(s, "D", "permanent");
        tu_set(s, "I,J,K", "sleep=20");
        dp_run_opts_t o = opts_of(2);
        o.fail_fast = !keep_going;
        o.reused = ids;
        o.nreused = n;
        dp_result_t *r = tu_run(g, &o);
        assert_int_equal(dp_result_outcome(r), DP_RUN_FAILED);
        assert_string_equal(reused_names(r), "A,B,C,H");
        tu_expect(r, "A=success B=success C=success D=failed H=success");
        assert_int_equal(runs_of(s, "A") + runs_of(s, "B") + runs_of(s, "C") + runs_of(s, "H"), 0);
        assert_int_equal(runs_of(s, "D"), 1);
        /* A and B are above the failed D: the boundary, reused or not. */
        const char *b = tu_boundary(r);
        assert_non_null(strstr(b, "A"));
        assert_non_null(strstr(b, "B"));
        assert_non_null(strstr(tu_frontiers(r), "D:failed[]"));
        if (keep_going) {
            tu_expect(r, "E=success F=skipped G=skipped I=success J=success K=success");
            assert_string_equal(b, "A,B,C,E");
        }
        dp_result_free(r);
        dp_graph_free(g);
        tu_script_free(s);
    }
}

/* A not ready job below reused ones: its successors are skipped, reused
 * jobs are untouched. */
static void test_not_ready_below_reused(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:B;D:C;E:D;F:B;G:F;H:G;I:;J:I", s);
    uint32_t ids[8];
    size_t n = ids_of(g, "A,B,I", ids, 8);
    tu_set(s, "C", "not_ready");
    dp_run_opts_t o = opts_of(4);
    o.reused = ids;
    o.nreused = n;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_NOT_READY);
    tu_expect(r, "A=success B=success C=not_ready D=skipped E=skipped F=success G=success H=success I=success "
                 "J=success");
    assert_string_equal(reused_names(r), "A,B,I");
    assert_string_equal(tu_boundary(r), "A,B");
    dp_result_free(r);
    dp_graph_free(g);
    tu_script_free(s);
}

/* An id out of range refuses the run (nothing runs, the graph may run
 * again); so does a count without ids. */
static void test_bad_reused_ids_refused(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_flat(12);
    dp_graph_t *g = tu_graph(spec, s);
    uint32_t ids[] = {0, 3, 12};
    dp_run_opts_t o = opts_of(4);
    o.reused = ids;
    o.nreused = 3;
    char err[512] = "";
    assert_null(dp_graph_run(g, &o, err, sizeof err));
    assert_non_null(strstr(err, "reused job id 12"));
    assert_non_null(strstr(err, "12 jobs"));
    o.reused = NULL;
    assert_null(dp_graph_run(g, &o, err, sizeof err));
    assert_non_null(strstr(err, "opts.reused is NULL"));
    assert_int_equal(atomic_load(&s->total_runs), 0);
    o.nreused = 0; /* NULL with 0: none reused */
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_string_equal(reused_names(r), "");
    assert_int_equal(atomic_load(&s->total_runs), 12);
    dp_result_free(r);
    free(spec);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Runs of one graph one after another, with and without reuse: nothing of
 * one run's reuse is left in the next (the slots go from run to run). */
static void test_reuse_does_not_leak_into_the_next_run(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_layers(3, 5);
    dp_graph_t *g = tu_graph(spec, s);
    uint32_t ids[8];
    size_t n = ids_of(g, "L0_0,L0_1,L0_2,L0_3,L0_4", ids, 8);
    for (int round = 0; round < 4; round++) {
        dp_run_opts_t o = opts_of(3);
        if (round % 2 == 0) {
            o.reused = ids;
            o.nreused = n;
        }
        unsigned before = atomic_load(&s->total_runs);
        dp_result_t *r = tu_run(g, &o);
        assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
        assert_int_equal(atomic_load(&s->total_runs) - before, round % 2 == 0 ? 10 : 15);
        assert_string_equal(reused_names(r), round % 2 == 0 ? "L0_0,L0_1,L0_2,L0_3,L0_4" : "");
        dp_result_free(r);
    }
    free(spec);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A struct from a header before reuse (it ends after `clock`): the fields
 * past it are not read, garbage there or not. */
static void test_opts_before_reuse_not_read(void **state)
{
    (void)state;
    size_t size = offsetof(dp_run_opts_t, clock) + sizeof(dp_clock_t);
    assert_true(size < sizeof(dp_run_opts_t));
    dp_run_opts_t *o = malloc(sizeof *o);
    memset(o, 0xAB, sizeof *o);
    dp_run_opts_init_sized(o, size);
    for (size_t i = size; i < sizeof *o; i++)
        assert_int_equal(((unsigned char *)o)[i], 0xAB);
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_flat(10);
    dp_graph_t *g = tu_graph(spec, s);
    char err[256] = "";
    dp_result_t *r = dp_graph_run_sized(g, o, size, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(atomic_load(&s->total_runs), 10);
    assert_string_equal(reused_names(r), "");
    dp_result_free(r);
    free(o);
    free(spec);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The JSON result: "reused": true on reused jobs only, after
 * plugin_version; a run without reuse has no such key at all. */
static void test_json_says_reused(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:B;D:C;E:D;F:E;G:F;H:G;I:H;J:I", s);
    uint32_t ids[4];
    size_t n = ids_of(g, "A,B,C", ids, 4);
    for (int with = 0; with < 2; with++) {
        dp_run_opts_t o = opts_of(2);
        if (with) {
            o.reused = ids;
            o.nreused = n;
        }
        dp_result_t *r = tu_run(g, &o);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_int_equal(dp__render_json(f, r, "w"), DP_OK);
        fclose(f);
        size_t count = 0;
        for (const char *p = buf; (p = strstr(p, "\"reused\": true")); p++)
            count++;
        assert_int_equal(count, with ? 3 : 0);
        assert_null(strstr(buf, "\"reused\": false"));
        if (with) {
            const char *a = strstr(buf, "\"A\": {");
            assert_non_null(a);
            const char *end = strchr(a, '}');
            const char *key = strstr(a, "\"reused\": true");
            assert_true(key && key < end);
            assert_true(strstr(a, "\"plugin_version\"") < key);
            assert_null(strstr(strstr(buf, "\"D\": {"), "\"reused\""));
        }
        char *sbuf = NULL;
        f = open_memstream(&sbuf, &len);
        assert_int_equal(dp__render_summary(f, r, "w"), DP_OK);
        fclose(f);
        if (with) {
            assert_non_null(strstr(sbuf, "(10 jobs: 10 success (3 reused))"));
            assert_non_null(strstr(sbuf, "  A    reused"));
        } else {
            assert_null(strstr(sbuf, "reused"));
        }
        free(sbuf);
        free(buf);
        dp_result_free(r);
    }
    dp_graph_free(g);
    tu_script_free(s);
}

/* Reuse on a run whose workers are an executor's kept threads. */
static void test_reuse_with_an_executor(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("Z:;Y:Z;X:Y;W:X;V:W;U:V;T:U;S:T;R:S;Q:R", s);
    uint32_t ids[4];
    size_t n = ids_of(g, "Z,Y,X", ids, 4);
    dp_executor_t *ex = dp_executor_new(2);
    dp_run_opts_t o = opts_of(2);
    o.executor = ex;
    o.reused = ids;
    o.nreused = n;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_string_equal(reused_names(r), "X,Y,Z");
    assert_int_equal(atomic_load(&s->total_runs), 7);
    dp_result_free(r);
    dp_executor_free(ex);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A larger graph, many workers, a scattered reused set closed by hand and
 * checked against the run: every job runs exactly when it is not reused. */
static void test_large_scattered_reuse(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_layers(12, 16); /* 192 jobs */
    dp_graph_t *g = tu_graph(spec, s);
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    size_t n = dp_graph_job_count(g);
    uint32_t *ids = malloc(n * sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (i % 3 != 1) /* scattered: most given, closure drops many */
            ids[k++] = (uint32_t)i;
    dp_run_opts_t o = opts_of(8);
    o.reused = ids;
    o.nreused = k;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    size_t reused = 0;
    for (size_t i = 0; i < n; i++) {
        const dp_job_result_t *j = dp_result_job(r, i);
        /* Reused exactly when given and every dependency is reused. */
        bool given = i % 3 != 1, deps_reused = true;
        const uint32_t *deps;
        size_t nd = dp_graph_deps(g, (uint32_t)i, &deps);
        for (size_t d = 0; d < nd; d++)
            deps_reused = deps_reused && dp_result_job(r, deps[d])->reused;
        assert_int_equal(j->reused, given && deps_reused);
        assert_int_equal(runs_of(s, j->name), j->reused ? 0 : 1);
        reused += j->reused;
    }
    assert_true(reused > 0 && reused < n);
    expect_dep_order(r, s);
    dp_result_free(r);
    free(ids);
    free(spec);
    dp_graph_free(g);
    tu_script_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reused_prefix_runs_the_rest),
        cmocka_unit_test(test_partly_reused_dependencies),
        cmocka_unit_test(test_reused_below_a_running_job_runs),
        cmocka_unit_test(test_all_reused),
        cmocka_unit_test(test_failure_below_reused),
        cmocka_unit_test(test_not_ready_below_reused),
        cmocka_unit_test(test_bad_reused_ids_refused),
        cmocka_unit_test(test_reuse_does_not_leak_into_the_next_run),
        cmocka_unit_test(test_opts_before_reuse_not_read),
        cmocka_unit_test(test_json_says_reused),
        cmocka_unit_test(test_reuse_with_an_executor),
        cmocka_unit_test(test_large_scattered_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
