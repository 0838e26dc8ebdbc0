/* test_plan.c - what a run would do (host/src/plan.c): waves, targets and
 * what they need, reused jobs and the reasons, on graphs of 10+ jobs; and
 * that the plan's reused jobs are exactly those a run given the same set
 * reuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "daggerpool/daggerpool.h"
#include "plan.h"
#include "testutil.h"

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

/* "a:1 b:2 x:reused y:excluded" for every job. Static buffer. */
static const char *plan_text(const dp_plan_t *p)
{
    static char buf[8192];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t j = 0; j < p->n; j++) {
        const char *name = dp_graph_job_name(p->g, j);
        if (p->action[j] == DP_PLAN_RUN)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s:%u", len ? " " : "", name, p->wave[j]);
        else
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s:%s", len ? " " : "", name,
                                    p->action[j] == DP_PLAN_REUSED ? "reused" : "excluded");
    }
    return buf;
}

static char *render(const dp_plan_t *p, bool json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(json ? dp__plan_render_json(f, p, "wf") : dp__plan_render_text(f, p, "wf"), DP_OK);
    fclose(f);
    return buf;
}

/* The seed's shape and more: waves are 1 + the latest dependency's. */
static void test_waves(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:A;D:B,C;E:D;F:;G:F,A;H:G,E;I:;J:I;K:J,C;L:K", s);
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    dp_plan_t p;
    assert_int_equal(dp__plan_make(&p, g, NULL, 0, NULL, 0, NULL, err, sizeof err), DP_OK);
    assert_string_equal(plan_text(&p), "A:1 B:2 C:2 D:3 E:4 F:1 G:2 H:5 I:1 J:2 K:3 L:4");
    assert_int_equal(p.nwaves, 5);
    assert_int_equal(p.nrun, 12);
    assert_int_equal(p.nreused + p.nexcluded + p.ntargets, 0);
    char *text = render(&p, false);
    assert_string_equal(text, "workflow wf: 12 of 12 jobs would run, in 5 waves\n"
                              "\n"
                              "wave 1: A, F, I\n"
                              "wave 2: B, C, G, J\n"
                              "wave 3: D, K\n"
                              "wave 4: E, L\n"
                              "wave 5: H\n");
    free(text);
    dp__plan_free(&p);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Targets: they and what they need; the rest excluded with the reason; a
 * target given twice is one; an id out of range is refused. */
static void test_targets(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:A;D:B,C;E:D;F:;G:F,A;H:G,E;I:;J:I;K:J,C;L:K", s);
    uint32_t t[4];
    size_t nt = ids_of(g, "K,E,K", t, 4);
    char err[256];
    dp_plan_t p;
    assert_int_equal(dp__plan_make(&p, g, t, nt, NULL, 0, NULL, err, sizeof err), DP_OK);
    assert_string_equal(plan_text(&p), "A:1 B:2 C:2 D:3 E:4 F:excluded G:excluded H:excluded I:1 J:2 K:3 L:excluded");
    assert_int_equal(p.ntargets, 2);
    assert_string_equal(dp_graph_job_name(g, p.targets[0]), "K");
    assert_string_equal(dp_graph_job_name(g, p.targets[1]), "E");
    assert_int_equal(p.nexcluded, 4);
    assert_string_equal(p.reason[dp_graph_job_id(g, "F")], "not needed by the targets");
    char *text = render(&p, false);
    assert_non_null(strstr(text, "workflow wf: 8 of 12 jobs would run, in 4 waves; 4 not needed by the targets\n"
                                 "targets: K, E (and what they depend on)\n"));
    assert_non_null(strstr(text, "\nnot needed by the targets: F, G, H, L\n"));
    free(text);
    dp__plan_free(&p);

    uint32_t bad = 12;
    assert_int_equal(dp__plan_make(&p, g, &bad, 1, NULL, 0, NULL, err, sizeof err), DP_EINVAL);
    assert_non_null(strstr(err, "target id 12"));
    dp__plan_free(&p);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Reused jobs: not in the waves, the caller's reasons shown; one below a
 * job that runs runs, saying which dependency; the run's own reuse agrees
 * with the plan's job for job. */
static void test_reused_agrees_with_the_run(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:A;D:B,C;E:D;F:;G:F,A;H:G,E;I:;J:I;K:J,C;L:K", s);
    uint32_t r[12];
    size_t nr = ids_of(g, "A,B,C,D,F,G,J,K", r, 12); /* not I: J and K run */
    size_t n = dp_graph_job_count(g);
    const char **reasons = calloc(n, sizeof *reasons);
    reasons[dp_graph_job_id(g, "A")] = "succeeded in run 3";
    reasons[dp_graph_job_id(g, "E")] = "definition changed";
    char err[256];
    dp_plan_t p;
    assert_int_equal(dp__plan_make(&p, g, NULL, 0, r, nr, reasons, err, sizeof err), DP_OK);
    free(reasons); /* the plan keeps the strings, not the array */
    assert_string_equal(plan_text(&p), "A:reused B:reused C:reused D:reused E:1 F:reused G:reused H:2 I:1 J:2 K:3 L:4");
    assert_string_equal(p.reason[dp_graph_job_id(g, "A")], "succeeded in run 3");
    assert_string_equal(p.reason[dp_graph_job_id(g, "E")], "definition changed");
    assert_string_equal(p.reason[dp_graph_job_id(g, "J")], "would be reused, but its dependency I runs");
    assert_string_equal(p.reason[dp_graph_job_id(g, "K")], "would be reused, but its dependency J runs");
    assert_null(p.reason[dp_graph_job_id(g, "B")]);
    char *text = render(&p, false);
    assert_non_null(strstr(text, "workflow wf: 6 of 12 jobs would run, in 4 waves; 6 reused\n"));
    assert_non_null(strstr(text, "\nwhy these run:\n"
                                 "  E: definition changed\n"
                                 "  J: would be reused, but its dependency I runs\n"
                                 "  K: would be reused, but its dependency J runs\n"));
    assert_non_null(strstr(text, "\nreused, not run:\n  A: succeeded in run 3\n  B\n  C\n  D\n  F\n  G\n"));
    free(text);

    /* The run with the same set reuses exactly the plan's reused jobs and
     * runs the others, in an order the waves allow. */
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.reused = r;
    o.nreused = nr;
    o.timeout_ms = 20000;
    dp_result_t *res = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(res), DP_RUN_SUCCESS);
    for (size_t j = 0; j < n; j++) {
        const dp_job_result_t *jr = dp_result_job(res, j);
        assert_int_equal(jr->reused, p.action[j] == DP_PLAN_REUSED);
        assert_int_equal(atomic_load(&tu_job(s, jr->name)->runs), p.action[j] == DP_PLAN_RUN ? 1 : 0);
    }
    for (size_t j = 0; j < n; j++) {
        if (p.action[j] != DP_PLAN_RUN)
            continue;
        const uint32_t *deps;
        size_t nd = dp_graph_deps(g, j, &deps);
        for (size_t k = 0; k < nd; k++)
            if (p.action[deps[k]] == DP_PLAN_RUN) {
                assert_true(p.wave[deps[k]] < p.wave[j]);
                assert_true(atomic_load(&tu_job(s, dp_graph_job_name(g, j))->start_seq) >
                            atomic_load(&tu_job(s, dp_graph_job_name(g, deps[k]))->end_seq));
            }
    }
    dp_result_free(res);
    dp__plan_free(&p);
    dp_graph_free(g);
    tu_script_free(s);
}

/* Targets and reuse together: a reused target runs nothing; excluded wins
 * over reused for a job the targets do not need. */
static void test_targets_and_reuse(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:B;D:C;E:D;F:;G:F;H:G;I:H;J:I", s);
    uint32_t t[2], r[10];
    size_t nt = ids_of(g, "C", t, 2);
    size_t nr = ids_of(g, "A,B,C,F,G", r, 10);
    char err[256];
    dp_plan_t p;
    assert_int_equal(dp__plan_make(&p, g, t, nt, r, nr, NULL, err, sizeof err), DP_OK);
    assert_string_equal(plan_text(&p), "A:reused B:reused C:reused D:excluded E:excluded F:excluded G:excluded "
                                       "H:excluded I:excluded J:excluded");
    assert_int_equal(p.nrun, 0);
    assert_int_equal(p.nwaves, 0);
    char *text = render(&p, false);
    assert_non_null(strstr(text, "workflow wf: 0 of 10 jobs would run; 3 reused; 7 not needed by the targets\n"));
    assert_non_null(strstr(text, "\nnothing would run\n"));
    free(text);
    dp__plan_free(&p);
    dp_graph_free(g);
    tu_script_free(s);
}

/* The JSON: its keys in order, waves as arrays of names, per job action,
 * wave (null unless it runs), target, reason. */
static void test_json(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:A;D:B,C;E:D;F:;G:F,A;H:G,E;I:;J:I;K:J,C;L:K", s);
    uint32_t t[2], r[4];
    size_t nt = ids_of(g, "E", t, 2);
    size_t nr = ids_of(g, "A,B", r, 4);
    const char **reasons = calloc(dp_graph_job_count(g), sizeof *reasons);
    reasons[dp_graph_job_id(g, "B")] = "ok \"quoted\"\n";
    char err[256];
    dp_plan_t p;
    assert_int_equal(dp__plan_make(&p, g, t, nt, r, nr, reasons, err, sizeof err), DP_OK);
    char *text = render(&p, true);
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    if (!root)
        fail_msg("bad JSON: %s\n%s", je.text, text);
    const char *keys[] = {"workflow", "targets", "total", "run", "reused", "excluded", "waves", "jobs"};
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        assert_true(i < 8);
        assert_string_equal(key, keys[i++]);
    }
    assert_int_equal(i, 8);
    assert_string_equal(json_string_value(json_object_get(root, "workflow")), "wf");
    assert_int_equal(json_integer_value(json_object_get(root, "total")), 12);
    assert_int_equal(json_integer_value(json_object_get(root, "run")), 3);
    assert_int_equal(json_integer_value(json_object_get(root, "reused")), 2);
    assert_int_equal(json_integer_value(json_object_get(root, "excluded")), 7);
    char *waves = json_dumps(json_object_get(root, "waves"), JSON_COMPACT);
    assert_string_equal(waves, "[[\"C\"],[\"D\"],[\"E\"]]");
    free(waves);
    char *targets = json_dumps(json_object_get(root, "targets"), JSON_COMPACT);
    assert_string_equal(targets, "[\"E\"]");
    free(targets);
    json_t *jobs = json_object_get(root, "jobs");
    assert_int_equal(json_object_size(jobs), 12);
    char *b = json_dumps(json_object_get(jobs, "B"), JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(b,
                        "{\"action\":\"reused\",\"wave\":null,\"target\":false,\"reason\":\"ok \\\"quoted\\\"\\n\"}");
    free(b);
    char *e = json_dumps(json_object_get(jobs, "E"), JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(e, "{\"action\":\"run\",\"wave\":3,\"target\":true,\"reason\":null}");
    free(e);
    char *l = json_dumps(json_object_get(jobs, "L"), JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(
        l, "{\"action\":\"excluded\",\"wave\":null,\"target\":false,\"reason\":\"not needed by the targets\"}");
    free(l);
    json_decref(root);
    free(text);
    free(reasons);
    dp__plan_free(&p);
    dp_graph_free(g);
    tu_script_free(s);
}

/* A run of targets runs the selected jobs' graph: the plan's reused jobs,
 * as that graph's ids, are what the run reuses; the rest of the selection
 * runs. */
static void test_reused_ids_in_the_selected_graph(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:A;D:B,C;E:D;F:;G:F,A;H:G,E;I:;J:I;K:J,C;L:K", s);
    uint32_t t[2], r[12];
    size_t nt = ids_of(g, "K", t, 2);
    size_t nr = ids_of(g, "A,C,F,G,I,L", r, 12);
    char err[256];
    dp_plan_t p;
    assert_int_equal(dp__plan_make(&p, g, t, nt, r, nr, NULL, err, sizeof err), DP_OK);
    assert_string_equal(plan_text(&p), "A:reused B:excluded C:reused D:excluded E:excluded F:excluded G:excluded "
                                       "H:excluded I:reused J:1 K:2 L:excluded");
    /* The selected jobs' graph, named as in the whole one: its ids differ
     * from the whole graph's (C is 1 there, 2 here; I 2 and 8). */
    tu_script_t *s2 = tu_script_new();
    dp_graph_t *sub = tu_graph("C:A;I:;A:;J:I;K:J,C", s2);
    assert_int_equal(dp_graph_validate(sub, err, sizeof err), DP_OK);
    uint32_t *ids;
    size_t n;
    assert_int_equal(dp__plan_reused_ids(&p, sub, &ids, &n), DP_OK);
    assert_int_equal(n, 3);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.reused = ids;
    o.nreused = n;
    o.timeout_ms = 20000;
    dp_result_t *res = tu_run(sub, &o);
    assert_int_equal(dp_result_outcome(res), DP_RUN_SUCCESS);
    for (size_t j = 0; j < dp_result_job_count(res); j++) {
        const dp_job_result_t *jr = dp_result_job(res, j);
        long full = dp_graph_job_id(g, jr->name);
        assert_int_equal(jr->reused, p.action[full] == DP_PLAN_REUSED);
        assert_int_equal(atomic_load(&tu_job(s2, jr->name)->runs), p.action[full] == DP_PLAN_RUN ? 1 : 0);
    }
    dp_result_free(res);
    free(ids);
    /* The plan's own graph: its ids as they are. */
    assert_int_equal(dp__plan_reused_ids(&p, g, &ids, &n), DP_OK);
    assert_int_equal(n, 3);
    assert_string_equal(dp_graph_job_name(g, ids[0]), "A");
    free(ids);
    dp_graph_free(sub);
    tu_script_free(s2);
    dp__plan_free(&p);
    dp_graph_free(g);
    tu_script_free(s);
}

static dp_outcome_t noop(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return DP_READY;
}

/* A long chain: as many waves as jobs, made in linear time (the text and
 * JSON writers bucket the jobs by wave). */
static void test_long_chain(void **state)
{
    (void)state;
    enum { N = 20000 };
    dp_graph_t *g = dp_graph_new();
    char err[256];
    for (uint32_t i = 0; i < N; i++) {
        dp_job_spec_t spec;
        memset(&spec, 0, sizeof spec);
        spec.run = noop;
        uint32_t id;
        assert_int_equal(dp_graph_add_job_id(g, &spec, &id, err, sizeof err), DP_OK);
        if (i)
            assert_int_equal(dp_graph_add_dep_ids(g, id, id - 1), DP_OK);
    }
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    uint32_t target = N / 2;
    dp_plan_t p;
    uint64_t t0 = dp_test_now_ms();
    assert_int_equal(dp__plan_make(&p, g, &target, 1, NULL, 0, NULL, err, sizeof err), DP_OK);
    assert_int_equal(p.nwaves, N / 2 + 1);
    assert_int_equal(p.nexcluded, N / 2 - 1);
    char *text = render(&p, false);
    char *json = render(&p, true);
    assert_true(dp_test_now_ms() - t0 < 10000);
    assert_non_null(strstr(text, "wave 10001: #10000\n"));
    free(text);
    free(json);
    dp__plan_free(&p);
    dp_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waves),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_reused_agrees_with_the_run),
        cmocka_unit_test(test_targets_and_reuse),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_reused_ids_in_the_selected_graph),
        cmocka_unit_test(test_long_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
