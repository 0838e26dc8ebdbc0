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
    const char *msg = load_bad("jobs = (\n"
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
        cmocka_unit_test(test_defaults_section),
        cmocka_unit_test(test_params_types),
        cmocka_unit_test(test_many_problems_capped),
        cmocka_unit_test(test_build_ok),
        cmocka_unit_test(test_build_refusals),
        cmocka_unit_test(test_nearest_word),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
