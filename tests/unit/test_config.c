/* test_config.c - the workflow file (host/src/config.c): what it accepts and
 * how it refuses, with file and line. The build tests load the first-party
 * plugins from the build tree (lib/daggerpool/plugins beside bin/). */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "daggerpool/daggerpool.h"
#include "params.h"
#include "plugin.h"

static char dir[PATH_MAX];

static const char *write_file(const char *name, const char *text)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static dp_workflow_t *load_ok(const char *text)
{
    char err[8192];
    dp_workflow_t *wf = dp_workflow_load(write_file("wf.cfg", text), err, sizeof err);
    if (!wf)
        fail_msg("refused: %s", err);
    return wf;
}

/* Loads text, expects a refusal; returns the message (static). */
static const char *load_bad(const char *text)
{
    static char err[8192];
    err[0] = '\0';
    dp_workflow_t *wf = dp_workflow_load(write_file("wf.cfg", text), err, sizeof err);
    if (wf) {
        dp_workflow_free(wf);
        fail_msg("accepted:\n%s", text);
    }
    assert_true(err[0] != '\0');
    return err;
}

/* Some line of msg starts "<dir>/wf.cfg:<line>: " and contains what. */
static void expect(const char *msg, int line, const char *what)
{
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where, "%s/wf.cfg:%d: ", dir, line);
    for (const char *at = strstr(msg, where); at; at = strstr(at + 1, where)) {
        const char *eol = strchr(at, '\n');
        size_t len = eol ? (size_t)(eol - at) : strlen(at);
        char one[4096];
        snprintf(one, sizeof one, "%.*s", (int)len, at);
        if (strstr(one, what))
            return;
    }
    fail_msg("no line \"%s...%s\" in:\n%s", where, what, msg);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/dp_test_config_XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- accepted ----------------------------------------------------------- */

static void test_full_file(void **state)
{
    (void)state;
    dp_workflow_t *wf = load_ok(
        "workflow: {\n"
        "  name = \"deploy\";\n"
        "  max_concurrent_jobs = 3;\n"
        "  timeout = \"10m\";\n"
        "  fail_fast = false;\n"
        "  plugin_path = [ \"plugins\", \"/abs/dir\" ];\n"
        "};\n"
        "defaults = { retries = 1; timeout = \"1m\"; backoff = { initial = \"2s\"; max = \"20s\"; };\n"
        "             params = { env = \"X\"; shared = 1; }; };\n"
        "jobs = (\n"
        "  { name = \"A\"; type = \"shell.command\"; params = { command = \"echo hi\"; shared = 2; }; },\n"
        "  { name = \"B\"; type = \"core.sleep\"; depends_on = [ \"A\" ];\n"
        "    params = { duration = \"2s\"; big = 5000000000L; f = 1.5; ok = true; list = [ \"x\", \"y\" ];\n"
        "               nested = { k = \"v\"; }; };\n"
        "    timeout = 30000; retries = 3; backoff = { factor = 3; jitter = 0.5; };\n"
        "    readiness = { period = \"5s\"; probe_timeout = \"10s\"; timeout = \"5m\"; }; },\n"
        "  { name = \"C\"; type = \"core.noop\"; depends_on = \"B\"; }\n"
        ");\n");
    assert_string_equal(dp_workflow_name(wf), "deploy");
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.log_level = DP_LOG_DEBUG; /* left alone */
    dp_workflow_run_opts(wf, &opts);
    assert_int_equal(opts.max_concurrent_jobs, 3);
    assert_int_equal(opts.timeout_ms, 600000);
    assert_false(opts.fail_fast);
    assert_int_equal(opts.log_level, DP_LOG_DEBUG);

    char want[PATH_MAX + 16];
    snprintf(want, sizeof want, "%s/plugins", dir);
    assert_string_equal(dp_workflow_plugin_path(wf, 0), want);
    assert_string_equal(dp_workflow_plugin_path(wf, 1), "/abs/dir");
    assert_null(dp_workflow_plugin_path(wf, 2));

    /* A: defaults for what it does not set. */
    const dp_job_spec_t *a = dp__workflow_job_spec(wf, "A");
    assert_int_equal(a->retries, 1);
    assert_int_equal(a->timeout_ms, 60000);
    assert_int_equal(a->backoff.initial_ms, 2000);
    assert_int_equal(a->backoff.max_ms, 20000);
    assert_true(a->backoff.factor == 2.0); /* the engine's default */
    assert_int_equal(a->readiness.period_ms, 0);
    /* B: its own values win, field by field within backoff. */
    const dp_job_spec_t *b = dp__workflow_job_spec(wf, "B");
    assert_int_equal(b->retries, 3);
    assert_int_equal(b->timeout_ms, 30000);
    assert_int_equal(b->backoff.initial_ms, 2000);
    assert_true(b->backoff.factor == 3.0);
    assert_true(b->backoff.jitter == 0.5);
    assert_int_equal(b->readiness.period_ms, 5000);
    assert_int_equal(b->readiness.probe_timeout_ms, 10000);
    assert_int_equal(b->readiness.timeout_ms, 300000);
    assert_string_equal(dp__workflow_job_type(wf, "B"), "core.sleep");
    assert_null(dp__workflow_job_spec(wf, "Z"));

    /* Params: types kept; the job's own key beats the default's. */
    const dp_params_t *pa = dp__workflow_job_params(wf, "A");
    const char *s;
    int64_t i;
    assert_int_equal(dp__params_get_string(pa, "command", &s), DP_PARAM_OK);
    assert_string_equal(s, "echo hi");
    assert_int_equal(dp__params_get_int(pa, "shared", &i), DP_PARAM_OK);
    assert_int_equal(i, 2);
    assert_int_equal(dp__params_get_string(pa, "env", &s), DP_PARAM_OK);
    assert_string_equal(s, "X");
    const dp_params_t *pb = dp__workflow_job_params(wf, "B");
    assert_int_equal(dp__params_get_int(pb, "big", &i), DP_PARAM_OK);
    assert_true(i == 5000000000LL);
    double f;
    assert_int_equal(dp__params_get_float(pb, "f", &f), DP_PARAM_OK);
    assert_true(f == 1.5);
    int bo;
    assert_int_equal(dp__params_get_bool(pb, "ok", &bo), DP_PARAM_OK);
    assert_true(bo);
    size_t n;
    assert_int_equal(dp__params_list_count(pb, "list", &n), DP_PARAM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(dp__params_list_item(pb, "list", 1, &s), DP_PARAM_OK);
    assert_string_equal(s, "y");
    const dp_params_t *nested;
    assert_int_equal(dp__params_get_group(pb, "nested", &nested), DP_PARAM_OK);
    assert_int_equal(dp__params_get_string(nested, "k", &s), DP_PARAM_OK);
    assert_string_equal(s, "v");

    /* The shape: deps by name order, A -> B -> C. */
    const dp_graph_t *g = dp__workflow_shape(wf);
    assert_int_equal(dp_graph_job_count(g), 3);
    const uint32_t *ids;
    assert_int_equal(dp_graph_deps(g, (size_t)dp_graph_job_id(g, "C"), &ids), 1);
    assert_int_equal(ids[0], dp_graph_job_id(g, "B"));
    assert_null(dp_workflow_graph(wf)); /* not built yet */
    dp_workflow_free(wf);
}

static void test_minimal_and_defaults(void **state)
{
    (void)state;
    char err[1024];
    const char *path = write_file("my-flow.cfg", "jobs = ( { name = \"only\"; type = \"core.noop\"; } );\n");
    dp_workflow_t *wf = dp_workflow_load(path, err, sizeof err);
    if (!wf)
        fail_msg("%s", err);
    assert_string_equal(dp_workflow_name(wf), "my-flow"); /* from the file name */
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    dp_workflow_run_opts(wf, &opts);
    assert_int_equal(opts.max_concurrent_jobs, 4);
    assert_int_equal(opts.timeout_ms, 0);
    assert_true(opts.fail_fast);
    dp_workflow_free(wf);
}

static void test_include(void **state)
{
    (void)state;
    /* @include is relative to the including file, wherever the caller is. */
    write_file("jobs.inc", "jobs = (\n  { name = \"X\"; type = \"core.noop\"; },\n"
                           "  { name = \"Y\"; type = \"core.noop\"; depends_on = [ \"X\" ]; tyop = 1; }\n);\n");
    const char *msg = load_bad("workflow: { name = \"inc\"; };\n@include \"jobs.inc\"\n");
    /* A problem in the included file names that file and its line. */
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where, "%s/jobs.inc:3: unknown key 'tyop' in job 'Y'; did you mean 'type'?", dir);
    if (!strstr(msg, where))
        fail_msg("no \"%s\" in:\n%s", where, msg);

    write_file("jobs.inc", "jobs = ( { name = \"X\"; type = \"core.noop\"; } );\n");
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/"), 0);
    dp_workflow_t *wf = load_ok("@include \"jobs.inc\"\n");
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(dp__workflow_job_type(wf, "X"), "core.noop");
    dp_workflow_free(wf);
}

/* ---- refused ------------------------------------------------------------ */

static void test_syntax_error(void **state)
{
    (void)state;
    const char *msg = load_bad("workflow: { name = \"x\"; };\n\njobs = (\n  { name = \"A\"; type = ; }\n);\n");
    expect(msg, 4, "syntax error");
}

static void test_missing_file(void **state)
{
    (void)state;
    char err[1024];
    assert_null(dp_workflow_load("/nonexistent/wf.cfg", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/wf.cfg: cannot read the workflow file: No such file"));
}

static void test_unknown_keys(void **state)
{
    (void)state;
    const char *msg = load_bad("workflow: { name = \"x\"; max_concurent_jobs = 2; };\n"
                               "job = 1;\n"
                               "jobs = (\n"
                               "  { name = \"A\"; type = \"core.noop\"; retires = 2; },\n"
                               "  { name = \"B\"; type = \"core.noop\"; backoff = { inital = 5; }; },\n"
                               "  { name = \"C\"; type = \"core.noop\"; isolation = \"thread\"; zzzzzz = 1; }\n"
                               ");\n");
    expect(msg, 1, "unknown key 'max_concurent_jobs' in 'workflow'; did you mean 'max_concurrent_jobs'?");
    expect(msg, 2, "unknown key 'job' at the top level; did you mean 'jobs'?");
    expect(msg, 4, "unknown key 'retires' in job 'A'; did you mean 'retries'?");
    expect(msg, 5, "unknown key 'inital' in the backoff of job 'B'; did you mean 'initial'?");
    expect(msg, 6, "'isolation' of job 'C' must be \"process\"");
    expect(msg, 6, "unknown key 'zzzzzz' in job 'C'; known keys: name, type, params, depends_on");
}

static void test_wrong_types(void **state)
{
    (void)state;
    const char *msg = load_bad("workflow: { name = 5; fail_fast = \"yes\"; max_concurrent_jobs = 0; };\n"
                               "jobs = (\n"
                               "  { name = \"A\"; type = \"core.noop\"; retries = \"3\"; },\n"
                               "  { name = \"B\"; type = \"core.noop\"; depends_on = 7; },\n"
                               "  { name = \"C\"; type = \"core.noop\"; backoff = 1; params = [ \"x\" ]; },\n"
                               "  { name = \"D\"; type = \"core.noop\"; backoff = { factor = 0.5; jitter = 2.0; }; }\n"
                               ");\n");
    expect(msg, 1, "workflow.name must be a string in double quotes, found an integer");
    expect(msg, 1, "workflow.fail_fast must be a boolean (true or false), found a string");
    expect(msg, 1, "workflow.max_concurrent_jobs must be between 1 and");
    expect(msg, 3, "'retries' of job 'A' must be an integer, found a string");
    expect(msg, 4, "'depends_on' of job 'B' must be a list of strings");
    expect(msg, 5, "'backoff' of job 'C' must be a group");
    expect(msg, 5, "'params' of job 'C' must be a group");
    expect(msg, 6, "backoff.factor of job 'D' must be between 1 and 1000, found 0.5");
    expect(msg, 6, "backoff.jitter of job 'D' must be between 0 and 1, found 2");
}

static void test_bad_durations(void **state)
{
    (void)state;
    const char *msg = load_bad("workflow: { timeout = \"5x\"; };\n"
                               "jobs = (\n"
                               "  { name = \"A\"; type = \"core.noop\"; timeout = -5; },\n"
                               "  { name = \"B\"; type = \"core.noop\"; timeout = 1.5; },\n"
                               "  { name = \"C\"; type = \"core.noop\"; readiness = { period = \"30m1h\"; }; }\n"
                               ");\n");
    expect(msg, 1, "workflow.timeout: bad duration \"5x\": unknown unit at \"x\"");
    expect(msg, 3, "'timeout' of job 'A' must not be negative, found -5");
    expect(msg, 4, "'timeout' of job 'B' must be a duration: an integer of milliseconds or a string");
    expect(msg, 5, "readiness.period of job 'C': bad duration \"30m1h\": units must go from largest");
}

static void test_jobs_section(void **state)
{
    (void)state;
    char err[1024];
    dp_workflow_t *wf = dp_workflow_load(write_file("wf.cfg", "workflow: { name = \"x\"; };\n"), err, sizeof err);
    assert_null(wf);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/wf.cfg: no jobs; add jobs = (", dir);
    assert_non_null(strstr(err, want));
    expect(load_bad("jobs = ();\n"), 1, "'jobs' is empty");
    expect(load_bad("jobs = { a = 1; };\n"), 1, "'jobs' must be a list in ( )");
    expect(load_bad("jobs = ( 5 );\n"), 1, "job 1 must be a group");
    const char *msg = load_bad("jobs = (\n { type = \"core.noop\"; },\n { name = \"\"; type = \"core.noop\"; },\n"
                               " { name = \"B\"; },\n { name = \"C\"; type = \"sleep\"; }\n);\n");
    expect(msg, 2, "job 1 has no name");
    expect(msg, 3, "job 2 has an empty name");
    expect(msg, 4, "job 'B' has no type");
    expect(msg, 5, "'type' of job 'C' must be PLUGIN.TYPE");
}

static void test_names_and_deps(void **state)
{
    (void)state;
    const char *msg = load_bad(
        "jobs = (\n"
        "  { name = \"build\"; type = \"core.noop\"; },\n"
        "  { name = \"test\"; type = \"core.noop\"; depends_on = [ \"biuld\" ]; },\n"
        "  { name = \"build\"; type = \"core.noop\"; },\n"
        "  { name = \"ship\"; type = \"core.noop\"; depends_on = [ \"test\", \"qqqqqqqq\", \"test\" ]; },\n"
        "  { name = \"self\"; type = \"core.noop\"; depends_on = [ \"self\" ]; }\n"
        ");\n");
    char first[PATH_MAX + 64];
    snprintf(first, sizeof first, "(first defined at %s/wf.cfg:2)", dir);
    expect(msg, 4, "duplicate job name 'build'");
    expect(msg, 4, first);
    expect(msg, 5, "job 'ship' lists 'test' twice in depends_on");
    expect(msg, 6, "job 'self' depends on itself");
    /* Unknown deps are checked once the names are sound. */
    msg = load_bad("jobs = (\n"
                   "  { name = \"build\"; type = \"core.noop\"; },\n"
                   "  { name = \"test\"; type = \"core.noop\"; depends_on = [ \"biuld\" ]; },\n"
                   "  { name = \"ship\"; type = \"core.noop\";\n    depends_on = [ \"test\", \"qqqqqqqq\" ]; }\n"
                   ");\n");
    expect(msg, 3, "job 'test' depends on 'biuld', which is not a job of this workflow; did you mean 'build'?");
    expect(msg, 5, "job 'ship' depends on 'qqqqqqqq', which is not a job of this workflow; add a job named");
}

static void test_cycle(void **state)
{
    (void)state;
    const char *msg = load_bad("jobs = (\n"
                               "  { name = \"a\"; type = \"core.noop\"; depends_on = [ \"c\" ]; },\n"
                               "  { name = \"b\"; type = \"core.noop\"; depends_on = [ \"a\" ]; },\n"
                               "  { name = \"c\"; type = \"core.noop\"; depends_on = [ \"b\" ]; },\n"
                               "  { name = \"d\"; type = \"core.noop\"; depends_on = [ \"c\" ]; }\n"
                               ");\n");
    assert_non_null(strstr(msg, "dependency cycle: "));
    assert_non_null(strstr(msg, "remove one of these depends_on entries"));
    /* The whole cycle, closed, at the line of its first job. */
    expect(msg, 2, "dependency cycle: a -> c -> b -> a");
    assert_null(strstr(msg, "d ->"));
}

/* The cycle's place is its first job's, found through the graph's cycle
 * (job ids), not by reading the name back out of the message: a name with
 * " -> " in it once sent the problem to job 'a', which is in no cycle. */
static void test_cycle_place_by_id(void **state)
{
    (void)state;
    const char *msg = load_bad("jobs = (\n"
                               "  { name = \"a\"; type = \"core.noop\"; },\n"
                               "  { name = \"a -> x\"; type = \"core.noop\"; depends_on = [ \"b\" ]; },\n"
                               "  { name = \"b\"; type = \"core.noop\"; depends_on = [ \"a -> x\" ]; }\n"
                               ");\n");
    expect(msg, 3, "dependency cycle: a -> x -> b -> a -> x (each job depends on the next)");
    char wrong[PATH_MAX + 64];
    snprintf(wrong, sizeof wrong, "%s/wf.cfg:2: ", dir);
    assert_null(strstr(msg, wrong));
}

static void test_defaults_section(void **state)
{
    (void)state;
    const char *msg = load_bad("defaults = { name = \"x\"; depends_on = [ \"A\" ]; retry = 2; backoff = 3; };\n"
                               "jobs = ( { name = \"A\"; type = \"core.noop\"; } );\n");
    expect(msg, 1, "'name' cannot have a default");
    expect(msg, 1, "'depends_on' cannot have a default");
    expect(msg, 1, "unknown key 'retry' in 'defaults'; did you mean 'retries'?");
    expect(msg, 1, "defaults.backoff must be a group");
}

static void test_params_types(void **state)
{
    (void)state;
    const char *msg = load_bad("jobs = ( { name = \"A\"; type = \"core.noop\";\n"
                               "  params = { argv = [ 1, 2 ]; groups = ( { a = 1; } ); }; } );\n");
    expect(msg, 2, "params.argv of job 'A' must be a list of strings");
    expect(msg, 2, "params.groups of job 'A' must be a list of strings");
}

static void test_many_problems_capped(void **state)
{
    (void)state;
    char text[8192] = "jobs = (\n";
    for (int i = 0; i < 30; i++) {
        char line[128];
        snprintf(line, sizeof line, "  { name = \"j%d\"; type = \"core.noop\"; retries = \"x\"; }%s\n", i,
                 i < 29 ? "," : "");
        strcat(text, line);
    }
    strcat(text, ");\n");
    const char *msg = load_bad(text);
    assert_non_null(strstr(msg, "... and 10 more problems"));
    expect(msg, 2, "'retries' of job 'j0'");
}

/* ---- build: plugins, types, params -------------------------------------- */

static dp_plugins_t *plugins(void)
{
    dp_plugins_t *pl = dp_plugins_new();
    char def[PATH_MAX];
    assert_int_equal(dp__plugins_default_dir(def, sizeof def), DP_OK);
    assert_int_equal(dp_plugins_add_path(pl, def), DP_OK);
    return pl;
}

static void test_build_ok(void **state)
{
    (void)state;
    dp_workflow_t *wf = load_ok("jobs = (\n"
                                "  { name = \"A\"; type = \"core.sleep\"; params = { duration = \"10ms\"; }; },\n"
                                "  { name = \"B\"; type = \"core.noop\"; depends_on = [ \"A\" ]; }\n"
                                ");\n");
    dp_plugins_t *pl = plugins();
    char err[4096];
    if (dp_workflow_build(wf, pl, err, sizeof err) != DP_OK)
        fail_msg("%s", err);
    dp_graph_t *g = dp_workflow_graph(wf);
    assert_non_null(g);
    assert_int_equal(dp_graph_job_count(g), 2);
    assert_int_equal(dp_workflow_build(wf, pl, err, sizeof err), DP_OK); /* once; same answer */
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    dp_workflow_run_opts(wf, &opts);
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    dp_result_free(r);
    dp_workflow_free(wf);
    dp_plugins_free(pl);
}

static void test_build_refusals(void **state)
{
    (void)state;
    dp_workflow_t *wf = load_ok("jobs = (\n"
                                "  { name = \"A\"; type = \"nosuchplugin.x\"; },\n"
                                "  { name = \"B\"; type = \"core.slep\"; },\n"
                                "  { name = \"C\"; type = \"core.sleep\"; params = { duration = \"abc\"; }; },\n"
                                "  { name = \"D\"; type = \"core.noop\"; }\n"
                                ");\n");
    dp_plugins_t *pl = plugins();
    char err[8192];
    assert_int_equal(dp_workflow_build(wf, pl, err, sizeof err), DP_ECONFIG);
    expect(err, 2, "job 'A' (type 'nosuchplugin.x'): ");
    expect(err, 2, "nosuchplugin");
    expect(err, 3, "job 'B' (type 'core.slep'): ");
    expect(err, 3, "sleep"); /* the types core offers */
    expect(err, 4, "job 'C' (type 'core.sleep'): ");
    expect(err, 4, "duration");
    assert_null(strstr(err, "job 'D'"));
    assert_null(dp_workflow_graph(wf));
    char again[8192];
    assert_int_equal(dp_workflow_build(wf, pl, again, sizeof again), DP_ECONFIG);
    assert_string_equal(again, err);
    dp_workflow_free(wf);
    dp_plugins_free(pl);
}

/* ---- hostile files (issue 13) ------------------------------------------- */

/* Some line of msg starts "<dir>/<file>:<line>: " and contains what. */
static void expect_at(const char *msg, const char *file, int line, const char *what)
{
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where, "%s/%s:%d: ", dir, file, line);
    for (const char *at = strstr(msg, where); at; at = strstr(at + 1, where)) {
        const char *eol = strchr(at, '\n');
        size_t len = eol ? (size_t)(eol - at) : strlen(at);
        char one[4096];
        snprintf(one, sizeof one, "%.*s", (int)len, at);
        if (strstr(one, what))
            return;
    }
    fail_msg("no line \"%s...%s\" in:\n%s", where, what, msg);
}

static int64_t param_int(const dp_workflow_t *wf, const char *job, const char *key)
{
    int64_t v = 0;
    assert_int_equal(dp__params_get_int(dp__workflow_job_params(wf, job), key, &v), DP_OK);
    return v;
}

/* libconfig reads one stream of the file and its includes: each problem is
 * still told at its own file and line, before, in and after an include. */
static void test_include_lines(void **state)
{
    (void)state;
    write_file("a.inc", "\n  { name = \"A\"; type = \"core.noop\"; tyop = 1; },\n"
                        "  { name = \"B\"; type = \"core.noop\"; retries = \"x\"; }, # no newline at the end");
    const char *msg = load_bad("workflow = { name = \"x\"; nmae = 1; };\n"
                               "jobs = (\n"
                               "  @include \"a.inc\"   # a comment after the name\n"
                               "  { name = \"C\"; type = \"core.noop\"; timeout = -1; }\n"
                               ");\n"
                               "bogus = 1;\n");
    expect(msg, 1, "unknown key 'nmae' in 'workflow'");
    expect_at(msg, "a.inc", 2, "unknown key 'tyop' in job 'A'");
    expect_at(msg, "a.inc", 3, "'retries' of job 'B' must be an integer");
    expect(msg, 4, "'timeout' of job 'C' must not be negative");
    expect(msg, 6, "unknown key 'bogus' at the top level");

    /* A syntax error in an included file is told there. */
    write_file("b.inc", "x = 1;\ny = ;\n");
    msg = load_bad("jobs = ( { name = \"A\"; type = \"core.noop\"; } );\n@include \"b.inc\"\n");
    expect_at(msg, "b.inc", 2, "syntax error");
}

static void test_include_paths(void **state)
{
    (void)state;
    /* Absolute; and relative to the including file, at any depth. */
    char sub[PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    mkdir(sub, 0700);
    write_file("sub/jobs.inc", "jobs = ( { name = \"X\"; type = \"core.noop\"; } );\n");
    write_file("sub/mid.inc", "@include \"jobs.inc\"\n");
    dp_workflow_t *wf = load_ok("@include \"sub/mid.inc\"\n");
    assert_string_equal(dp__workflow_job_type(wf, "X"), "core.noop");
    dp_workflow_free(wf);
    char text[PATH_MAX + 64];
    snprintf(text, sizeof text, "@include \"%s/sub/jobs.inc\"\n", dir);
    wf = load_ok(text);
    assert_non_null(dp__workflow_job_type(wf, "X"));
    dp_workflow_free(wf);
    /* A failing one names the path tried. */
    snprintf(text, sizeof text, "jobs = ();\n@include \"%s/none.inc\"\n", dir);
    const char *msg = load_bad(text);
    char want[3 * PATH_MAX];
    snprintf(want, sizeof want, "@include \"%s/none.inc\": cannot read %s/none.inc: No such file or directory", dir,
             dir);
    expect(msg, 2, want);
    msg = load_bad("jobs = ();\n\n@include \"sub/none.inc\"\n");
    snprintf(want, sizeof want, "@include \"sub/none.inc\": cannot read %s/sub/none.inc: No such file", dir);
    expect(msg, 3, want);
}

static void test_include_refusals(void **state)
{
    (void)state;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/adir", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    const char *msg = load_bad("@include \"adir\"\njobs = ();\n");
    expect(msg, 1, "@include \"adir\": cannot read");
    expect(msg, 1, "adir: it is a directory, not a regular file");
    msg = load_bad("jobs = ();\n@include \"fifo\"\n");
    expect(msg, 2, "fifo: it is a FIFO (named pipe), not a regular file");
    msg = load_bad("jobs = ();\n@include \"/proc/self/mem\"\n");
    expect(msg, 2, "@include \"/proc/self/mem\": cannot read /proc/self/mem: Input/output error");
    msg = load_bad("jobs = ();\n@include \"wf.cfg\"\n");
    expect(msg, 2, "is the workflow file, which is being read: a file cannot include itself");
    msg = load_bad("jobs = ();\n@include \"\"\n");
    expect(msg, 2, "@include needs a file name in double quotes");
    msg = load_bad("jobs = ();\n@include \"x.inc\n");
    expect(msg, 2, "@include needs a file name in double quotes");
    msg = load_bad("jobs = (); @include \"x.inc\"\n");
    expect(msg, 1, "syntax error at '@'");
    write_file("open.inc", "x = \"an open string;\n");
    msg = load_bad("jobs = ();\n@include \"open.inc\"\ny = \"z\";\n");
    expect_at(msg, "open.inc", 1, "this string is not closed before the end of the included file");
    write_file("loop0.inc", "@include \"loop1.inc\"\n");
    write_file("loop1.inc", "@include \"loop0.inc\"\n");
    msg = load_bad("@include \"loop0.inc\"\n");
    expect_at(msg, "loop1.inc", 1, "is an included file, which is being read");
    for (int i = 0; i < 12; i++) {
        char name[32], text[64];
        snprintf(name, sizeof name, "d%d.inc", i);
        snprintf(text, sizeof text, "@include \"d%d.inc\"\n", i + 1);
        write_file(name, text);
    }
    msg = load_bad("@include \"d0.inc\"\n");
    expect_at(msg, "d9.inc", 1, "@include \"d10.inc\": includes are nested more than 10 deep");
}

static void test_not_regular(void **state)
{
    (void)state;
    char err[1024];
    assert_null(dp_workflow_load(dir, err, sizeof err));
    assert_non_null(strstr(err, ": cannot read the workflow file: it is a directory, not a regular file"));
    char fifo[PATH_MAX + 16];
    snprintf(fifo, sizeof fifo, "%s/wf.fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_null(dp_workflow_load(fifo, err, sizeof err)); /* does not block */
    assert_non_null(strstr(err, "wf.fifo: cannot read the workflow file: it is a FIFO (named pipe)"));
    assert_null(dp_workflow_load("/proc/self/mem", err, sizeof err));
    assert_string_equal(err, "/proc/self/mem: cannot read the workflow file: Input/output error");
}

static void test_nul_and_nesting(void **state)
{
    (void)state;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/wf.cfg", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("jobs = (\n  { name = \"A\"; type = \"core.noop\"; params = { s = \"x", f);
    fputc('\0', f);
    fputs("y\"; }; }\n);\n", f);
    fclose(f);
    char err[1024];
    assert_null(dp_workflow_load(path, err, sizeof err));
    expect(err, 2, "a NUL byte; a workflow file is text");

    /* jobs ( { params { ... } } ): 3 levels, then groups up to the limit. */
    char text[4096];
    for (int extra = 97; extra <= 98; extra++) {
        int n = snprintf(text, sizeof text, "jobs = (\n { name = \"A\"; type = \"core.noop\"; params = {\n");
        for (int i = 0; i < extra; i++)
            n += snprintf(text + n, sizeof text - (size_t)n, "g = {");
        n += snprintf(text + n, sizeof text - (size_t)n, "x = 1;");
        for (int i = 0; i < extra; i++)
            n += snprintf(text + n, sizeof text - (size_t)n, "};");
        snprintf(text + n, sizeof text - (size_t)n, "\n}; }\n);\n");
        if (extra == 97)
            dp_workflow_free(load_ok(text)); /* 100 levels */
        else
            expect(load_bad(text), 3, "nested more than 100 deep here; daggerpool reads at most 100 levels");
    }
}

/* What the table of a job's keys (config_job.c) decides: the known keys of
 * a job, of defaults and of each group; the order of a job's problems (its
 * unknown keys, then its keys in table order); a default's value checked
 * for the job that takes it; a group's fields taken one by one from the
 * job's group, else the defaults'. */
static void test_job_keys_table(void **state)
{
    (void)state;
    const char *msg = load_bad(
        "defaults = { type = \"core.noop\"; retries = 2000000; zzz = 1; backoff = { initial = \"2s\"; bogus = 1; };\n"
        "  readiness = { period = \"1s\"; }; limits = { memory = \"1MiB\"; }; name = \"x\"; };\n"
        "jobs = (\n"
        "  { name = \"A\"; qqq = 1; backoff = { max = \"9s\"; xx = 1; }; readiness = { yy = 1; };\n"
        "    limits = { zz = 1; }; },\n"
        "  { name = \"B\"; retries = 3; isolation = \"process\"; backoff = { factor = 3.0; }; }\n"
        ");\n");
    static const char *const in_order[] = {
        "1: unknown key 'zzz' in 'defaults'; known keys: type, params, timeout, retries, backoff, readiness, "
        "isolation, limits, deadline, pool, pool_slots, priority, continue_on_failure, cleanup_timeout",
        "2: 'name' cannot have a default: each job sets its own; move it into the jobs",
        "1: unknown key 'bogus' in defaults.backoff; known keys: initial, factor, max, jitter",
        "4: unknown key 'qqq' in job 'A'; known keys: name, type, params, depends_on, timeout, retries, backoff, "
        "readiness, isolation, limits, deadline, pool, pool_slots, priority, run_if, continue_on_failure, "
        "cleanup_timeout",
        "1: 'retries' of job 'A' must be between 0 and 1000000, found 2000000",
        "4: unknown key 'xx' in the backoff of job 'A'; known keys: initial, factor, max, jitter",
        "4: unknown key 'yy' in the readiness of job 'A'; known keys: period, probe_timeout, timeout, "
        "initial_delay, success_threshold, failure_threshold, backoff, max_period",
        "5: unknown key 'zz' in the limits of job 'A'; known keys: cpu, memory, open_files",
        "5: job 'A' has limits but runs in the host's process; limits apply only to isolation = \"process\"",
    };
    const char *at = msg;
    for (size_t i = 0; i < sizeof in_order / sizeof in_order[0]; i++) {
        char line[PATH_MAX + 256];
        snprintf(line, sizeof line, "%s/wf.cfg:%s", dir, in_order[i]);
        const char *found = strstr(at, line);
        if (!found)
            fail_msg("no \"%s\" (in this order) in:\n%s", line, msg);
        at = found + 1;
    }
    assert_null(strstr(msg, "job 'B'")); /* B takes only valid defaults */

    dp_workflow_t *wf = load_ok(
        "defaults = { type = \"core.noop\"; retries = 2; backoff = { initial = \"2s\"; max = \"7s\"; };\n"
        "  readiness = { period = \"1s\"; }; isolation = \"process\"; limits = { memory = \"1MiB\"; }; };\n"
        "jobs = ( { name = \"B\"; retries = 3; backoff = { factor = 3.0; }; limits = { open_files = 64; }; },\n"
        "  { name = \"C\"; readiness = { timeout = 500; }; } );\n");
    const dp_job_spec_t *b = dp__workflow_job_spec(wf, "B");
    assert_int_equal(b->retries, 3);
    assert_int_equal(b->backoff.initial_ms, 2000);
    assert_true(b->backoff.factor == 3.0);
    assert_int_equal(b->backoff.max_ms, 7000);
    assert_int_equal(b->readiness.period_ms, 1000);
    assert_int_equal(b->isolation, DP_ISOLATION_PROCESS);
    assert_int_equal(b->limits.memory_bytes, 1u << 20);
    assert_int_equal(b->limits.open_files, 64);
    const dp_job_spec_t *c = dp__workflow_job_spec(wf, "C");
    assert_int_equal(c->retries, 2);
    assert_true(c->backoff.factor == 2.0);
    assert_int_equal(c->readiness.period_ms, 1000);
    assert_int_equal(c->readiness.timeout_ms, 500);
    assert_int_equal(c->limits.memory_bytes, 1u << 20);
    assert_int_equal(c->limits.open_files, 0);
    dp_workflow_free(wf);
}

/* libconfig 1.5 keeps a decimal without L in 32 bits and saturates or
 * wraps beyond 64: each is read as written, or refused as written. */
static void test_integers_as_written(void **state)
{
    (void)state;
    dp_workflow_t *wf = load_ok("jobs = ( { name = \"A\"; type = \"core.noop\"; timeout = 3000000000;\n"
                                "  params = { a = 3000000000; b = 0xFFFFFFFF; c = -9223372036854775808L;\n"
                                "    d = 9223372036854775807L; e = -2147483649; f = 0x7FFFFFFFFFFFFFFFL;\n"
                                "    g = 2147483647; h = -9223372036854775807; i = 4294967297; }; } );\n");
    assert_int_equal(dp__workflow_job_spec(wf, "A")->timeout_ms, 3000000000ull);
    assert_true(param_int(wf, "A", "a") == 3000000000ll);
    assert_true(param_int(wf, "A", "b") == 4294967295ll);
    assert_true(param_int(wf, "A", "c") == INT64_MIN);
    assert_true(param_int(wf, "A", "d") == INT64_MAX);
    assert_true(param_int(wf, "A", "e") == -2147483649ll);
    assert_true(param_int(wf, "A", "f") == INT64_MAX);
    assert_true(param_int(wf, "A", "g") == 2147483647ll);
    assert_true(param_int(wf, "A", "h") == INT64_MIN + 1);
    assert_true(param_int(wf, "A", "i") == 4294967297ll);
    dp_workflow_free(wf);

    const char *msg = load_bad(
        "jobs = (\n"
        "  { name = \"a\"; type = \"core.noop\"; retries = 18446744073709551617L; },\n"
        "  { name = \"b\"; type = \"core.noop\"; timeout = 18446744073709551615; },\n"
        "  { name = \"c\"; type = \"core.noop\"; timeout = 99999999999999999999999L; },\n"
        "  { name = \"d\"; type = \"core.noop\"; retries = 4294967297; backoff = { factor = -99999999999999999999; }; "
        "},\n"
        "  { name = \"e\"; type = \"core.noop\"; params = { n = 0xFFFFFFFFFFFFFFFFFF; m = -9223372036854775808L; }; "
        "},\n"
        "  { name = \"f\"; type = \"core.noop\"; params = { list = [ 1, 99999999999999999999 ]; }; },\n"
        "  { name = \"g\"; type = \"core.noop\"; isolation = \"process\"; limits = { memory = 99999999999999999999; }; "
        "}\n"
        ");\n");
    expect(msg, 2, "'retries' of job 'a' must be between 0 and 1000000, found 18446744073709551617L");
    expect(msg, 3,
           "'timeout' of job 'b' must be at most 9223372036854775807 milliseconds, found 18446744073709551615;");
    expect(msg, 4,
           "'timeout' of job 'c' must be at most 9223372036854775807 milliseconds, found "
           "99999999999999999999999L;");
    expect(msg, 5, "'retries' of job 'd' must be between 0 and 1000000, found 4294967297");
    expect(msg, 5, "backoff.factor of job 'd' must be between 1 and 1000, found -99999999999999999999");
    expect(msg, 6, "params.n of job 'e' is out of range: found 0xFFFFFFFFFFFFFFFFFF; integers are 64-bit");
    /* An array keeps one type: no syntax error, and the item is refused. */
    expect(msg, 7, "params.list of job 'f' must be a list of strings");
    expect(msg, 7, "integer 99999999999999999999 is out of range: integers are 64-bit");
    expect(msg, 8, "limits.memory of job 'g' must be at most 9223372036854775807 bytes, found 99999999999999999999");
}

/* Names are the result's JSON keys: "a\xff" and "a\xfe" would both be
 * "a\uFFFD", and one job would vanish from it. */
static void test_utf8_names(void **state)
{
    (void)state;
    const char *msg = load_bad("workflow = { name = \"w\xc3\"; };\n"
                               "jobs = (\n"
                               "  { name = \"a\xff\"; type = \"core.noop\"; },\n"
                               "  { name = \"a\xfe\"; type = \"core.noop\"; },\n"
                               "  { name = \"b\"; type = \"core.noop\"; depends_on = [ \"x\xe2\x82\" ]; },\n"
                               "  { name = \"caf\xc3\xa9 \xe2\x9c\x93\"; type = \"core.noop\"; }\n"
                               ");\n");
    expect(msg, 1, "workflow.name is \"w\\xC3\", which is not valid UTF-8; names must be UTF-8 text");
    expect(msg, 3, "a job's name is \"a\\xFF\", which is not valid UTF-8");
    expect(msg, 4, "a job's name is \"a\\xFE\", which is not valid UTF-8");
    expect(msg, 5, "job 'b' depends on \"x\\xE2\\x82\", which is not valid UTF-8");
    assert_null(strstr(msg, "caf"));
}

/* A 10 000-job cycle: its first and last jobs, and how many between, not a
 * message cut mid-name. */
static void test_long_cycle_shortened(void **state)
{
    (void)state;
    enum { N = 10000 };
    size_t cap = (size_t)N * 96 + 64, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(text, cap, "jobs = (\n");
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(text + n, cap - n,
                              "  { name = \"j%05d\"; type = \"core.noop\"; depends_on = \"j%05d\"; }%s\n", i,
                              (i + 1) % N, i < N - 1 ? "," : "");
    snprintf(text + n, cap - n, ");\n");
    const char *msg = load_bad(text);
    free(text);
    expect(msg, 2,
           "dependency cycle: j00000 -> j00001 -> j00002 -> j00003 -> j00004 -> j00005 -> j00006 -> "
           "j00007 -> ... 9985 more ... -> j09993 -> j09994 -> j09995 -> j09996 -> j09997 -> j09998 -> "
           "j09999 -> j00000 (each job depends on the next); a workflow must be acyclic");
}

/* Every problem of a file at once: its keys and values, then its jobs'
 * plugins, types and params, for the jobs read whole. */
static void test_all_problems_at_once(void **state)
{
    (void)state;
    const char *path = write_file("wf.cfg",
                                  "jobs = (\n"
                                  "  { name = \"a\"; type = \"core.noop\"; retires = 1; },\n"
                                  "  { name = \"b\"; type = \"core.sleep\"; params = { duration = \"abc\"; }; },\n"
                                  "  { name = \"c\"; type = \"nosuch.plugin\"; },\n"
                                  "  { name = \"d\"; type = \"core.sleep\"; params = { duration = [ 1 ]; }; },\n"
                                  "  { name = \"a\"; type = \"core.slep\"; },\n"
                                  "  { name = \"e\"; type = \"core.noop\"; depends_on = [ \"zz\" ]; }\n"
                                  ");\n");
    char err[16384];
    /* dp_workflow_load still refuses it, with the file's own problems. */
    assert_null(dp_workflow_load(path, err, sizeof err));
    expect(err, 2, "unknown key 'retires' in job 'a'");
    assert_null(strstr(err, "nosuch"));

    dp_workflow_t *wf = dp__workflow_load_for_build(path, err, sizeof err);
    assert_non_null(wf);
    dp_plugins_t *pl = plugins();
    assert_int_equal(dp_workflow_build(wf, pl, err, sizeof err), DP_ECONFIG);
    expect(err, 2, "unknown key 'retires' in job 'a'; did you mean 'retries'?");
    expect(err, 3, "job 'b' (type 'core.sleep'): param 'duration'");
    expect(err, 4, "job 'c' (type 'nosuch.plugin'): nosuch.so: plugin 'nosuch' not found");
    expect(err, 5, "params.duration of job 'd' must be a list of strings");
    expect(err, 6, "duplicate job name 'a'");
    expect(err, 7, "job 'e' depends on 'zz', which is not a job of this workflow");
    /* d's params lost what was refused, the second 'a' is a duplicate:
     * neither is handed to its type. */
    assert_null(strstr(err, "job 'd' (type"));
    assert_null(strstr(err, "core.slep"));
    assert_null(dp_workflow_graph(wf));
    dp_workflow_free(wf);
    dp_plugins_free(pl);

    /* A file that cannot be parsed gives no workflow. */
    path = write_file("wf.cfg", "jobs = ( { name = ; } );\n");
    assert_null(dp__workflow_load_for_build(path, err, sizeof err));
    expect(err, 1, "syntax error");
}

static void test_nearest_word(void **state)
{
    (void)state;
    const char *const words[] = {"retries", "timeout", "type", NULL};
    assert_string_equal(dp__nearest_word("retires", words), "retries");
    assert_string_equal(dp__nearest_word("tmeout", words), "timeout");
    assert_string_equal(dp__nearest_word("typ", words), "type");
    assert_null(dp__nearest_word("zzzzzz", words));
    assert_null(dp__nearest_word("x", words));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_minimal_and_defaults),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_durations),
        cmocka_unit_test(test_jobs_section),
        cmocka_unit_test(test_names_and_deps),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_cycle_place_by_id),
        cmocka_unit_test(test_defaults_section),
        cmocka_unit_test(test_params_types),
        cmocka_unit_test(test_many_problems_capped),
        cmocka_unit_test(test_build_ok),
        cmocka_unit_test(test_build_refusals),
        cmocka_unit_test(test_nearest_word),
        cmocka_unit_test(test_include_lines),
        cmocka_unit_test(test_include_paths),
        cmocka_unit_test(test_include_refusals),
        cmocka_unit_test(test_not_regular),
        cmocka_unit_test(test_nul_and_nesting),
        cmocka_unit_test(test_job_keys_table),
        cmocka_unit_test(test_integers_as_written),
        cmocka_unit_test(test_utf8_names),
        cmocka_unit_test(test_long_cycle_shortened),
        cmocka_unit_test(test_all_problems_at_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
