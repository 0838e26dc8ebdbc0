/* test_render.c - the summary, JSON result, trace, DOT and Mermaid renderers
 * (host/src/render.c), on results of real runs of in-process graphs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "daggerpool/daggerpool.h"
#include "jsonw.h"
#include "render.h"

/* The seed DAG: A -> (B, C) -> D -> E. What C reports is the test's knob. */
typedef enum { C_READY, C_NOT_READY, C_FAIL } c_mode_t;

static dp_outcome_t job_run(dp_job_t *job, void *user)
{
    c_mode_t mode = *(c_mode_t *)user;
    if (strcmp(dp_job_name(job), "C") == 0) {
        if (mode == C_NOT_READY)
            return DP_NOT_READY;
        if (mode == C_FAIL)
            return dp_job_fail(job, true, "C broke: \"quoted\"\nand a second line");
    }
    return DP_READY;
}

static dp_graph_t *seed_graph(c_mode_t *mode)
{
    static const char *jobs[][3] = {
        {"A", NULL, NULL}, {"B", "A", NULL}, {"C", "A", NULL}, {"D", "B", "C"}, {"E", "D", NULL}};
    dp_graph_t *g = dp_graph_new();
    assert_non_null(g);
    for (size_t i = 0; i < 5; i++) {
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = jobs[i][0];
        spec.run = job_run;
        spec.user = mode;
        spec.plugin = "test";
        assert_int_equal(dp_graph_add_job(g, &spec, NULL, 0), DP_OK);
        for (int k = 1; k < 3 && jobs[i][k]; k++)
            assert_int_equal(dp_graph_add_dep(g, jobs[i][0], jobs[i][k]), DP_OK);
    }
    char err[256];
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    return g;
}

static dp_result_t *run(dp_graph_t *g)
{
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.max_concurrent_jobs = 2;
    opts.timeout_ms = 20000;
    char err[256];
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof err);
    if (!r)
        fail_msg("run: %s", err);
    return r;
}

/* Renders into a malloc'd string via a memory stream. */
typedef int (*render_fn)(FILE *out, void *arg);

static char *capture(render_fn fn, void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(fn(f, arg), DP_OK);
    fclose(f);
    return buf;
}

static const dp_result_t *cur_result;
static int summary_fn(FILE *out, void *arg)
{
    return dp__render_summary(out, cur_result, arg);
}
static int json_fn(FILE *out, void *arg)
{
    return dp__render_json(out, cur_result, arg);
}

static void assert_keys(json_t *obj, const char *const *keys)
{
    assert_true(json_is_object(obj));
    size_t n = 0;
    while (keys[n])
        n++;
    assert_int_equal(json_object_size(obj), n);
    /* In the documented order too: scripts and people diff these. */
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        (void)v;
        assert_string_equal(k, keys[i]);
        i++;
    }
}

static const char *const top_keys[] = {"workflow",        "outcome",          "timed_out",   "first_error",
                                       "first_not_ready", "requeue_after_ms", "duration_ms", "jobs",
                                       "frontiers",       "boundary",         NULL};
static const char *const job_keys[] = {"status",      "error",  "attempts",       "start_ms",
                                       "duration_ms", "plugin", "plugin_version", NULL};
static const char *const frontier_keys[] = {"job", "status", "blocked_by", "subtree", NULL};

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    if (!root)
        fail_msg("invalid JSON at line %d: %s\n%s", je.line, je.text, text);
    return root;
}

static void assert_names(json_t *arr, const char *const *names)
{
    assert_true(json_is_array(arr));
    size_t n = 0;
    while (names[n])
        n++;
    assert_int_equal(json_array_size(arr), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(arr, i)), names[i]);
}

static void test_success(void **state)
{
    (void)state;
    c_mode_t mode = C_READY;
    dp_graph_t *g = seed_graph(&mode);
    dp_result_t *r = run(g);
    cur_result = r;

    char *text = capture(summary_fn, "seed");
    assert_non_null(strstr(text, "workflow seed: success in "));
    assert_non_null(strstr(text, "5 success"));
    assert_null(strstr(text, "frontiers")); /* only when not successful */
    free(text);

    text = capture(json_fn, "seed");
    json_t *root = parse(text);
    assert_keys(root, top_keys);
    assert_string_equal(json_string_value(json_object_get(root, "workflow")), "seed");
    assert_string_equal(json_string_value(json_object_get(root, "outcome")), "success");
    assert_true(json_is_false(json_object_get(root, "timed_out")));
    assert_true(json_is_null(json_object_get(root, "first_error")));
    assert_true(json_is_null(json_object_get(root, "first_not_ready")));
    assert_true(json_is_integer(json_object_get(root, "duration_ms")));
    json_t *jobs = json_object_get(root, "jobs");
    assert_int_equal(json_object_size(jobs), 5);
    json_t *a = json_object_get(jobs, "A");
    assert_keys(a, job_keys);
    assert_string_equal(json_string_value(json_object_get(a, "status")), "success");
    assert_int_equal(json_integer_value(json_object_get(a, "attempts")), 1);
    assert_true(json_is_integer(json_object_get(a, "start_ms")));
    assert_string_equal(json_string_value(json_object_get(a, "plugin")), "test");
    assert_true(json_is_null(json_object_get(a, "error")));
    assert_int_equal(json_array_size(json_object_get(root, "frontiers")), 0);
    assert_int_equal(json_array_size(json_object_get(root, "boundary")), 0);
    json_decref(root);
    free(text);
    dp_result_free(r);
    dp_graph_free(g);
}

static void test_not_ready(void **state)
{
    (void)state;
    c_mode_t mode = C_NOT_READY;
    dp_graph_t *g = seed_graph(&mode);
    dp_result_t *r = run(g);
    cur_result = r;

    char *text = capture(summary_fn, "seed");
    assert_non_null(strstr(text, "workflow seed: not_ready"));
    assert_non_null(strstr(text, "first not ready: C"));
    assert_non_null(strstr(text, "C (not_ready): blocked by -; subtree C, D, E"));
    assert_non_null(strstr(text, "boundary: A, B\n"));
    free(text);

    text = capture(json_fn, "seed");
    json_t *root = parse(text);
    assert_keys(root, top_keys);
    assert_string_equal(json_string_value(json_object_get(root, "outcome")), "not_ready");
    assert_string_equal(json_string_value(json_object_get(root, "first_not_ready")), "C");
    json_t *jobs = json_object_get(root, "jobs");
    static const struct {
        const char *job, *status;
    } want[] = {{"A", "success"}, {"B", "success"}, {"C", "not_ready"}, {"D", "skipped"}, {"E", "skipped"}};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(json_string_value(json_object_get(json_object_get(jobs, want[i].job), "status")),
                            want[i].status);
    /* Never started: null, not -1. */
    assert_true(json_is_null(json_object_get(json_object_get(jobs, "D"), "start_ms")));
    assert_true(json_is_null(json_object_get(json_object_get(jobs, "D"), "duration_ms")));
    json_t *fr = json_object_get(root, "frontiers");
    assert_int_equal(json_array_size(fr), 1);
    json_t *f0 = json_array_get(fr, 0);
    assert_keys(f0, frontier_keys);
    assert_string_equal(json_string_value(json_object_get(f0, "job")), "C");
    assert_string_equal(json_string_value(json_object_get(f0, "status")), "not_ready");
    assert_names(json_object_get(f0, "blocked_by"), (const char *const[]){NULL});
    assert_names(json_object_get(f0, "subtree"), (const char *const[]){"C", "D", "E", NULL});
    assert_names(json_object_get(root, "boundary"), (const char *const[]){"A", "B", NULL});
    json_decref(root);
    free(text);
    dp_result_free(r);
    dp_graph_free(g);
}

static void test_failed_error_escaped(void **state)
{
    (void)state;
    c_mode_t mode = C_FAIL;
    dp_graph_t *g = seed_graph(&mode);
    dp_result_t *r = run(g);
    cur_result = r;

    char *text = capture(json_fn, "we\"ird\\name");
    json_t *root = parse(text); /* quotes, backslash and newline survive */
    assert_string_equal(json_string_value(json_object_get(root, "workflow")), "we\"ird\\name");
    assert_string_equal(json_string_value(json_object_get(root, "outcome")), "failed");
    json_t *c = json_object_get(json_object_get(root, "jobs"), "C");
    assert_string_equal(json_string_value(json_object_get(c, "status")), "failed");
    assert_non_null(strstr(json_string_value(json_object_get(c, "error")), "C broke: \"quoted\"\nand a second"));
    assert_non_null(strstr(json_string_value(json_object_get(root, "first_error")), "C broke"));
    json_decref(root);
    free(text);

    text = capture(summary_fn, "seed");
    assert_non_null(strstr(text, "workflow seed: failed"));
    assert_non_null(strstr(text, "first error: C: C broke"));
    assert_non_null(strstr(text, "error: C broke"));
    /* The error's newline is escaped: one summary line per item, so a
     * message cannot forge lines of its own. */
    assert_non_null(strstr(text, "C broke: \"quoted\"\\nand a second line"));
    assert_null(strstr(text, "\nand a second line"));
    free(text);
    text = capture(summary_fn, "evil\x1b[2Jname");
    assert_non_null(strstr(text, "workflow evil\\x1B[2Jname: failed"));
    free(text);
    dp_result_free(r);
    dp_graph_free(g);
}

/* The job records written in one copy (render.c, job_record_plain) and
 * those written a call per member: a result of both kinds, indented and
 * compact, is byte for byte what jansson writes for the same tree (as
 * jsonw promises, tests/unit/test_jsonw.c). */
static dp_outcome_t mixed_run(dp_job_t *job, void *user)
{
    (void)user;
    const char *name = dp_job_name(job);
    if (strcmp(name, "fail_plain") == 0)
        return dp_job_fail(job, true, "a plain error");
    if (strcmp(name, "fail_escaped") == 0)
        return dp_job_fail(job, true, "tab\there, \"quoted\", caf\xc3\xa9, bad \xff");
    return DP_READY;
}

static char *render_members(const dp_result_t *r, int indent)
{
    dp__jsonw_t w;
    dp__jsonw_init(&w, NULL, indent);
    dp__jsonw_object_open(&w);
    dp__render_result_members(&w, r, "mixed");
    dp__jsonw_object_close(&w);
    assert_int_equal(dp__jsonw_finish(&w), DP_OK);
    size_t len;
    char *text = dp__jsonw_take(&w, &len);
    assert_non_null(text);
    return text;
}

static void test_json_records_as_jansson(void **state)
{
    (void)state;
    static const char *jobs[][3] = {{"plain", NULL, NULL},          {"we\"ird\\name", NULL, NULL},
                                    {"caf\xc3\xa9", NULL, NULL},    {"fail_plain", "plain", NULL},
                                    {"fail_escaped", NULL, NULL},   {"below_failure", "fail_plain", NULL},
                                    {"prioritised", "plain", NULL}, {"pooled", NULL, NULL},
                                    {"no_plugin", NULL, NULL},      {"last", "pooled", "prioritised"}};
    dp_graph_t *g = dp_graph_new();
    assert_non_null(g);
    char err[256];
    assert_int_equal(dp_graph_add_pool(g, "db", 2, err, sizeof err), DP_OK);
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = jobs[i][0];
        spec.run = mixed_run;
        spec.plugin = strcmp(spec.name, "no_plugin") == 0 ? NULL : "test";
        if (strcmp(spec.name, "prioritised") == 0)
            spec.priority = 5;
        if (strcmp(spec.name, "pooled") == 0)
            spec.pool = "db";
        assert_int_equal(dp_graph_add_job(g, &spec, NULL, 0), DP_OK);
        for (int k = 1; k < 3 && jobs[i][k]; k++)
            assert_int_equal(dp_graph_add_dep(g, jobs[i][0], jobs[i][k]), DP_OK);
    }
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.max_concurrent_jobs = 2;
    opts.fail_fast = false;
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof err);
    assert_non_null(r);
    const int indents[] = {2, 0, 4};
    const size_t flags[] = {JSON_INDENT(2), JSON_COMPACT, JSON_INDENT(4)};
    for (size_t k = 0; k < 3; k++) {
        char *text = render_members(r, indents[k]);
        json_t *root = parse(text);
        char *want = json_dumps(root, flags[k] | JSON_PRESERVE_ORDER);
        assert_non_null(want);
        assert_string_equal(text, want);
        json_t *jobs_obj = json_object_get(root, "jobs");
        assert_int_equal(json_object_size(jobs_obj), sizeof jobs / sizeof jobs[0]);
        assert_keys(json_object_get(jobs_obj, "plain"), job_keys);
        assert_true(json_is_null(json_object_get(json_object_get(jobs_obj, "below_failure"), "start_ms")));
        assert_string_equal(json_string_value(json_object_get(json_object_get(jobs_obj, "fail_plain"), "error")),
                            "a plain error");
        assert_true(json_is_null(json_object_get(json_object_get(jobs_obj, "no_plugin"), "plugin")));
        assert_int_equal(json_integer_value(json_object_get(json_object_get(jobs_obj, "prioritised"), "priority")), 5);
        free(want);
        json_decref(root);
        free(text);
    }
    dp_result_free(r);
    dp_graph_free(g);
}

/* Trace: one X span per attempt, on worker tracks, valid JSON. */
static const dp_graph_t *trace_graph;
static const dp__trace_event_t *trace_events;
static size_t trace_n;
static int trace_fn(FILE *out, void *arg)
{
    return dp__render_trace(out, trace_graph, arg, trace_events, trace_n);
}

static void test_trace(void **state)
{
    (void)state;
    c_mode_t mode = C_READY;
    dp_graph_t *g = seed_graph(&mode);
    /* ids are name order: A=0 B=1 C=2 D=3. B's first attempt fails, its
     * second succeeds; D's attempt never ends (cut run). */
    char err1[] = "flaky";
    const dp__trace_event_t ev[] = {
        {DP_EV_ATTEMPT_START, 0, 1, 0, 1000000, DP_STATUS_UNKNOWN, NULL},
        {DP_EV_ATTEMPT_END, 0, 1, 0, 3000000, DP_STATUS_SUCCESS, NULL},
        {DP_EV_JOB_END, 0, 1, 0, 3000000, DP_STATUS_SUCCESS, NULL},
        {DP_EV_ATTEMPT_START, 1, 1, 0, 3100000, DP_STATUS_UNKNOWN, NULL},
        {DP_EV_ATTEMPT_START, 2, 1, 1, 3100000, DP_STATUS_UNKNOWN, NULL},
        {DP_EV_ATTEMPT_END, 1, 1, 0, 4000000, DP_STATUS_FAILED, err1},
        {DP_EV_ATTEMPT_START, 1, 2, 0, 5000000, DP_STATUS_UNKNOWN, NULL},
        {DP_EV_ATTEMPT_END, 2, 1, 1, 5500000, DP_STATUS_SUCCESS, NULL},
        {DP_EV_ATTEMPT_END, 1, 2, 0, 6000000, DP_STATUS_SUCCESS, NULL},
        {DP_EV_ATTEMPT_START, 3, 1, 1, 6100000, DP_STATUS_UNKNOWN, NULL},
        {DP_EV_JOB_SKIPPED, 4, 0, 0, 9000000, DP_STATUS_SKIPPED, NULL},
    };
    trace_graph = g;
    trace_events = ev;
    trace_n = sizeof ev / sizeof ev[0];
    char *text = capture(trace_fn, "seed");
    json_t *root = parse(text);
    json_t *evs = json_object_get(root, "traceEvents");
    assert_true(json_is_array(evs));
    size_t spans = 0, threads = 0;
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        assert_non_null(ph);
        if (strcmp(ph, "M") == 0) {
            if (strcmp(json_string_value(json_object_get(e, "name")), "thread_name") == 0)
                threads++;
            continue;
        }
        assert_string_equal(ph, "X");
        spans++;
        const char *name = json_string_value(json_object_get(e, "name"));
        json_t *args = json_object_get(e, "args");
        long long attempt = json_integer_value(json_object_get(args, "attempt"));
        double ts = json_number_value(json_object_get(e, "ts"));
        double dur = json_number_value(json_object_get(e, "dur"));
        long long tid = json_integer_value(json_object_get(e, "tid"));
        if (strcmp(name, "B") == 0 && attempt == 1) {
            assert_true(ts == 3100.0 && dur == 900.0 && tid == 1);
            assert_string_equal(json_string_value(json_object_get(args, "status")), "failed");
            assert_string_equal(json_string_value(json_object_get(args, "error")), "flaky");
        } else if (strcmp(name, "B") == 0) {
            assert_true(ts == 5000.0 && dur == 1000.0 && attempt == 2);
        } else if (strcmp(name, "C") == 0) {
            assert_true(tid == 2 && dur == 2400.0);
        } else if (strcmp(name, "D") == 0) {
            /* cut: ends at the last event seen */
            assert_string_equal(json_string_value(json_object_get(args, "status")), "unfinished");
            assert_true(dur == 9000.0 - 6100.0);
        } else {
            assert_string_equal(name, "A");
        }
    }
    assert_int_equal(spans, 5);
    assert_int_equal(threads, 2);
    json_decref(root);
    free(text);
    dp_graph_free(g);
}

static const dp__graph_style_t *cur_style;
static int dot_fn(FILE *out, void *arg)
{
    return dp__render_dot(out, arg, "seed", cur_style);
}
static int mermaid_fn(FILE *out, void *arg)
{
    return dp__render_mermaid(out, arg, cur_style);
}

static void test_dot_and_mermaid(void **state)
{
    (void)state;
    c_mode_t mode = C_READY;
    dp_graph_t *g = seed_graph(&mode);
    const char *types[] = {"core.sleep", "shell.command", "core.sleep", "core.noop", "core.noop"};
    int status[] = {DP_STATUS_SUCCESS, DP_STATUS_SUCCESS, DP_STATUS_NOT_READY, DP_STATUS_SKIPPED, -1};

    cur_style = NULL;
    char *text = capture(dot_fn, g);
    assert_non_null(strstr(text, "digraph \"seed\" {"));
    assert_non_null(strstr(text, "\"A\" -> \"B\";"));
    assert_non_null(strstr(text, "\"A\" -> \"C\";"));
    assert_non_null(strstr(text, "\"B\" -> \"D\";"));
    assert_non_null(strstr(text, "\"C\" -> \"D\";"));
    assert_non_null(strstr(text, "\"D\" -> \"E\";"));
    assert_null(strstr(text, "\"B\" -> \"C\""));
    assert_null(strstr(text, "#b7e4c7"));
    free(text);

    dp__graph_style_t style = {types, status};
    cur_style = &style;
    text = capture(dot_fn, g);
    assert_non_null(strstr(text, "\"A\" [label=\"A\\ncore.sleep\\nsuccess\", fillcolor=\"#b7e4c7\""));
    assert_non_null(strstr(text, "\"D\" [label=\"D\\ncore.noop\\nskipped\""));
    assert_non_null(strstr(text, "\"E\" [label=\"E\\ncore.noop\"];"));
    free(text);

    text = capture(mermaid_fn, g);
    assert_non_null(strstr(text, "graph TD\n"));
    assert_non_null(strstr(text, "    n0[\"A<br/>core.sleep<br/>success\"]\n"));
    assert_non_null(strstr(text, "    n0 --> n1\n"));
    assert_non_null(strstr(text, "    n3 --> n4\n"));
    assert_non_null(strstr(text, "classDef success fill:#b7e4c7"));
    assert_non_null(strstr(text, "class n0,n1 success\n"));
    assert_non_null(strstr(text, "class n2 not_ready\n"));
    assert_null(strstr(text, "classDef failed"));
    free(text);
    dp_graph_free(g);
}

static dp_outcome_t noop_run(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return DP_READY;
}

/* Names with quotes and backslashes stay inside their quotes. */
static void test_dot_escaping(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.run = noop_run;
    spec.name = "say \"hi\"";
    assert_int_equal(dp_graph_add_job(g, &spec, NULL, 0), DP_OK);
    spec.name = "back\\slash<b>";
    assert_int_equal(dp_graph_add_job(g, &spec, NULL, 0), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "back\\slash<b>", "say \"hi\""), DP_OK);
    assert_int_equal(dp_graph_validate(g, NULL, 0), DP_OK);
    cur_style = NULL;
    char *text = capture(dot_fn, g);
    assert_non_null(strstr(text, "\"say \\\"hi\\\"\" -> \"back\\\\slash<b>\";"));
    free(text);
    text = capture(mermaid_fn, g);
    assert_non_null(strstr(text, "[\"say #quot;hi#quot;\"]"));
    assert_non_null(strstr(text, "[\"back\\slash#lt;b#gt;\"]"));
    free(text);
    dp_graph_free(g);
}

static void test_statuses_from_json(void **state)
{
    (void)state;
    c_mode_t mode = C_NOT_READY;
    dp_graph_t *g = seed_graph(&mode);
    dp_result_t *r = run(g);
    char path[] = "/tmp/dp_test_render_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_int_equal(dp__render_json(f, r, "seed"), DP_OK);
    fclose(f);
    int status[5];
    char err[512];
    assert_int_equal(dp__render_statuses_from_json(path, g, status, err, sizeof err), DP_OK);
    assert_int_equal(status[0], DP_STATUS_SUCCESS);
    assert_int_equal(status[2], DP_STATUS_NOT_READY);
    assert_int_equal(status[4], DP_STATUS_SKIPPED);

    f = fopen(path, "w");
    fputs("{\n  \"jobs\": {\n    \"A\": { \"status\": \"success\" },\n  oops\n}\n", f);
    fclose(f);
    assert_int_equal(dp__render_statuses_from_json(path, g, status, err, sizeof err), DP_ECONFIG);
    char want[600];
    snprintf(want, sizeof want, "%s:4: not a JSON result", path);
    assert_non_null(strstr(err, want));

    f = fopen(path, "w");
    fputs("{ \"jobs\": { \"A\": { \"status\": \"great\" } } }", f);
    fclose(f);
    assert_int_equal(dp__render_statuses_from_json(path, g, status, err, sizeof err), DP_ECONFIG);
    assert_non_null(strstr(err, "job \"A\" has no valid \"status\""));

    f = fopen(path, "w");
    fputs("[1, 2]", f);
    fclose(f);
    assert_int_equal(dp__render_statuses_from_json(path, g, status, err, sizeof err), DP_ECONFIG);
    assert_non_null(strstr(err, "no \"jobs\" object"));
    unlink(path);
    dp_result_free(r);
    dp_graph_free(g);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_int_equal(dp__status_from_name("success"), DP_STATUS_SUCCESS);
    assert_int_equal(dp__status_from_name("not_ready"), DP_STATUS_NOT_READY);
    assert_int_equal(dp__status_from_name("skipped"), DP_STATUS_SKIPPED);
    assert_int_equal(dp__status_from_name("failed"), DP_STATUS_FAILED);
    assert_int_equal(dp__status_from_name("unknown"), DP_STATUS_UNKNOWN);
    assert_int_equal(dp__status_from_name("Success"), -1);
    assert_int_equal(dp__status_from_name(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_not_ready),
        cmocka_unit_test(test_failed_error_escaped),
        cmocka_unit_test(test_json_records_as_jansson),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_dot_and_mermaid),
        cmocka_unit_test(test_dot_escaping),
        cmocka_unit_test(test_statuses_from_json),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
