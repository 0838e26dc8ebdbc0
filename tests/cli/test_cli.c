/* test_cli.c - the daggerpool command driven as a user drives it: workflow
 * files good and bad, exit codes, messages, the JSON result and its
 * statuses, the trace, concurrency limits, timeouts, SIGINT.
 *
 * Each case writes its workflow into a private directory, spawns the built
 * command (stdout and stderr to files), and checks what came out. Timing
 * checks are orders and generous bounds, never exact durations. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

extern char **environ;

/* posix_spawn takes char *const argv[]; the strings are not written. */
static char *mut(const char *s)
{
    return (char *)(uintptr_t)s;
}

static char dir[PATH_MAX];

typedef struct out {
    int code; /* exit status, or 128 + signal */
    char *out;
    char *err;
} out_t;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

static const char *path_in(const char *name)
{
    /* A ring of buffers: a test keeps a handful of paths at once. */
    static char paths[32][PATH_MAX + 64];
    static int next;
    char *p = paths[next++ % 32];
    snprintf(p, PATH_MAX + 64, "%s/%s", dir, name);
    return p;
}

static const char *write_file(const char *name, const char *text)
{
    const char *p = path_in(name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static pid_t spawn(char *const argv[], const char *out_path, const char *err_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    return pid;
}

static int wait_code(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        assert_int_equal(errno, EINTR);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A sanitizer report in the command's stderr fails the test whatever the
 * exit code says. */
static void no_sanitizer_report(const out_t *o)
{
    if (o->err && (strstr(o->err, "Sanitizer") || strstr(o->err, "runtime error:")))
        fail_msg("sanitizer report:\n%s", o->err);
}

/* Runs the command with args (NULL-terminated). */
static out_t cli(const char *first, ...)
{
    char *argv[64];
    int n = 0;
    argv[n++] = mut(DP_CLI);
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 63; a = va_arg(ap, const char *))
        argv[n++] = mut(a);
    va_end(ap);
    argv[n] = NULL;
    static char op[PATH_MAX + 16], ep[PATH_MAX + 16];
    snprintf(op, sizeof op, "%s/stdout", dir);
    snprintf(ep, sizeof ep, "%s/stderr", dir);
    out_t o;
    o.code = wait_code(spawn(argv, op, ep));
    o.out = slurp(op);
    o.err = slurp(ep);
    no_sanitizer_report(&o);
    return o;
}

static void out_free(out_t *o)
{
    free(o->out);
    free(o->err);
}

static void expect_code(const out_t *o, int code)
{
    if (o->code != code)
        fail_msg("exit %d, expected %d\n--- stdout\n%s--- stderr\n%s", o->code, code, o->out ? o->out : "",
                 o->err ? o->err : "");
}

static void expect_in(const char *text, const char *what)
{
    if (!text || !strstr(text, what))
        fail_msg("no \"%s\" in:\n%s", what, text ? text : "(nothing)");
}

static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        fail_msg("%s: invalid JSON at line %d: %s", path, je.line, je.text);
    return j;
}

static const char *job_status(json_t *root, const char *job)
{
    json_t *j = json_object_get(json_object_get(root, "jobs"), job);
    if (!j)
        fail_msg("no job %s in the result", job);
    return json_string_value(json_object_get(j, "status"));
}

static void expect_statuses(json_t *root, const char *spec)
{
    /* spec: "a=success b=skipped ..." */
    char *copy = strdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        *eq = '\0';
        const char *got = job_status(root, tok);
        if (!got || strcmp(got, eq + 1) != 0)
            fail_msg("job %s is %s, expected %s", tok, got ? got : "(none)", eq + 1);
    }
    free(copy);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/dp_test_cli_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the 12-job graph of the seed's scenarios ---------------------------- */

/*
 *        a
 *      / | \          l (independent)
 *     b  c  d
 *      \/ \  \
 *      e   f  g
 *       \ / \ /
 *        h   i
 *         \ /
 *          j
 *          |
 *          k
 */
static const char *const graph12[][3] = {
    {"a", NULL, NULL}, {"b", "a", NULL}, {"c", "a", NULL}, {"d", "a", NULL}, {"e", "b", "c"},  {"f", "c", NULL},
    {"g", "d", NULL},  {"h", "e", "f"},  {"i", "f", "g"},  {"j", "h", "i"},  {"k", "j", NULL}, {"l", NULL, NULL},
};

/* Writes the graph with every job core.sleep of 30ms, except those named in
 * overrides ("job:params-body;job:params-body"). */
static const char *write_graph12(const char *name, const char *workflow, const char *overrides)
{
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "workflow: { %s };\njobs = (\n", workflow);
    for (size_t i = 0; i < sizeof graph12 / sizeof graph12[0]; i++) {
        char params[512] = "duration = \"30ms\";";
        char key[8];
        snprintf(key, sizeof key, "%s:", graph12[i][0]);
        const char *o = overrides ? overrides : "";
        for (const char *p = strstr(o, key); p; p = strstr(p + 1, key))
            if (p == o || p[-1] == '|') {
                const char *end = strchr(p, '|');
                snprintf(params, sizeof params, "%.*s", (int)(end ? end - p - 2 : (long)strlen(p + 2)), p + 2);
                break;
            }
        char deps[64] = "";
        if (graph12[i][1])
            snprintf(deps, sizeof deps, " depends_on = [ \"%s\"%s%s%s ];", graph12[i][1], graph12[i][2] ? ", \"" : "",
                     graph12[i][2] ? graph12[i][2] : "", graph12[i][2] ? "\"" : "");
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "  { name = \"%s\"; type = \"core.sleep\";%s params = { %s }; }%s\n", graph12[i][0], deps,
                              params, i + 1 < sizeof graph12 / sizeof graph12[0] ? "," : "");
    }
    snprintf(text + n, sizeof text - n, ");\n");
    return write_file(name, text);
}

static void test_graph12_success(void **state)
{
    (void)state;
    const char *wf = write_graph12("ok.cfg", "name = \"g12\"; max_concurrent_jobs = 4;", NULL);
    const char *json = path_in("ok.json");
    out_t o = cli("run", wf, "--json", json, NULL);
    expect_code(&o, 0);
    expect_in(o.out, "workflow g12: success");
    expect_in(o.out, "12 success");
    json_t *r = load_json(json);
    assert_string_equal(json_string_value(json_object_get(r, "outcome")), "success");
    assert_int_equal(json_object_size(json_object_get(r, "jobs")), 12);
    expect_statuses(r, "a=success e=success k=success l=success");
    assert_int_equal(json_array_size(json_object_get(r, "frontiers")), 0);
    json_decref(r);
    out_free(&o);
}

/* JSON keys exactly as DESIGN.md pins them, in order. */
/* DAGGERPOOL_CLOCK: 'monotonic' stamps jobs with the system clock (the
 * run is the same), anything else is refused with the fix. */
static void test_clock_env(void **state)
{
    (void)state;
    const char *wf = write_graph12("clock.cfg", "name = \"clock\";", NULL);
    setenv("DAGGERPOOL_CLOCK", "monotonic", 1);
    out_t o = cli("run", wf, "-q", NULL);
    expect_code(&o, 0);
    out_free(&o);
    setenv("DAGGERPOOL_CLOCK", "tsc", 1);
    o = cli("run", wf, "-q", NULL);
    unsetenv("DAGGERPOOL_CLOCK");
    expect_code(&o, 2);
    expect_in(o.err, "DAGGERPOOL_CLOCK='tsc' is not known: set it to 'monotonic'");
    out_free(&o);
}

static void test_json_keys(void **state)
{
    (void)state;
    const char *wf = write_graph12("keys.cfg", "name = \"keys\";", "f:duration = \"10ms\"; ready = false;");
    out_t o = cli("run", wf, "--json", "-", NULL);
    expect_code(&o, 3);
    /* --json -: the JSON alone on stdout, the summary on stderr. */
    json_error_t je;
    json_t *r = json_loads(o.out, 0, &je);
    if (!r)
        fail_msg("stdout is not JSON (%s):\n%s", je.text, o.out);
    expect_in(o.err, "workflow keys: not_ready");
    static const char *const top[] = {"workflow",         "outcome",     "timed_out", "first_error", "first_not_ready",
                                      "requeue_after_ms", "duration_ms", "jobs",      "frontiers",   "boundary"};
    static const char *const job[] = {"status",      "error",  "attempts",      "start_ms",
                                      "duration_ms", "plugin", "plugin_version"};
    static const char *const fr[] = {"job", "status", "blocked_by", "subtree"};
    const char *k;
    json_t *v;
    size_t i = 0;
    assert_int_equal(json_object_size(r), 10);
    json_object_foreach(r, k, v) assert_string_equal(k, top[i++]);
    json_t *a = json_object_get(json_object_get(r, "jobs"), "a");
    i = 0;
    assert_int_equal(json_object_size(a), 7);
    json_object_foreach(a, k, v) assert_string_equal(k, job[i++]);
    assert_string_equal(json_string_value(json_object_get(a, "plugin")), "core");
    assert_true(json_is_string(json_object_get(a, "plugin_version")));
    json_t *f0 = json_array_get(json_object_get(r, "frontiers"), 0);
    i = 0;
    assert_int_equal(json_object_size(f0), 4);
    json_object_foreach(f0, k, v) assert_string_equal(k, fr[i++]);
    json_decref(r);
    out_free(&o);
}

static void test_graph12_not_ready(void **state)
{
    (void)state;
    const char *wf = write_graph12("nr.cfg", "name = \"nr\";", "f:duration = \"10ms\"; ready = false;");
    const char *json = path_in("nr.json");
    out_t o = cli("run", wf, "--json", json, NULL);
    expect_code(&o, 3);
    expect_in(o.out, "first not ready: f");
    expect_in(o.out, "f (not_ready): blocked by -; subtree f, h, i, j, k");
    json_t *r = load_json(json);
    assert_string_equal(json_string_value(json_object_get(r, "outcome")), "not_ready");
    assert_string_equal(json_string_value(json_object_get(r, "first_not_ready")), "f");
    assert_true(json_is_null(json_object_get(r, "first_error")));
    /* The not-ready job's subtree is skipped; independent branches go on. */
    expect_statuses(r, "a=success b=success c=success d=success e=success g=success l=success "
                       "f=not_ready h=skipped i=skipped j=skipped k=skipped");
    json_t *boundary = json_object_get(r, "boundary");
    /* Success jobs with unfinished work below: a, b?, c, d, e, g. */
    size_t i;
    json_t *v;
    bool seen_c = false, seen_l = false;
    json_array_foreach(boundary, i, v)
    {
        seen_c |= strcmp(json_string_value(v), "c") == 0;
        seen_l |= strcmp(json_string_value(v), "l") == 0;
    }
    assert_true(seen_c);
    assert_false(seen_l);
    json_decref(r);
    out_free(&o);
}

/* Not ready at the root: everything below is skipped, l still runs. */
static void test_graph12_not_ready_root(void **state)
{
    (void)state;
    const char *wf = write_graph12("nr0.cfg", "name = \"nr0\";", "a:ready = false;");
    const char *json = path_in("nr0.json");
    out_t o = cli("run", wf, "--json", json, NULL);
    expect_code(&o, 3);
    json_t *r = load_json(json);
    expect_statuses(r, "a=not_ready b=skipped f=skipped k=skipped l=success");
    json_decref(r);
    out_free(&o);
}

/* Fail fast: e fails while g and l are still sleeping; they are cancelled
 * and stay unknown, and so does everything never reached. */
static void test_graph12_fail_fast(void **state)
{
    (void)state;
    const char *wf = write_graph12("ff.cfg", "name = \"ff\"; max_concurrent_jobs = 4;",
                                   "e:duration = \"10ms\"; error = \"disk full\";|g:duration = \"20s\";|"
                                   "l:duration = \"20s\";");
    const char *json = path_in("ff.json");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out_t o = cli("run", wf, "--json", json, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    expect_code(&o, 1);
    assert_true(t1.tv_sec - t0.tv_sec < 15); /* cancelled, not waited out */
    expect_in(o.out, "first error: e: disk full");
    json_t *r = load_json(json);
    assert_string_equal(json_string_value(json_object_get(r, "outcome")), "failed");
    expect_in(json_string_value(json_object_get(r, "first_error")), "disk full");
    expect_statuses(r, "a=success b=success c=success e=failed g=unknown l=unknown h=unknown j=unknown k=unknown");
    json_decref(r);
    out_free(&o);
}

/* Keep going: e's successors are skipped, the rest completes. */
static void test_graph12_keep_going(void **state)
{
    (void)state;
    const char *wf = write_graph12("kg.cfg", "name = \"kg\";", "e:duration = \"10ms\"; error = \"disk full\";");
    const char *json = path_in("kg.json");
    out_t o = cli("run", wf, "--json", json, "--keep-going", NULL);
    expect_code(&o, 1);
    json_t *r = load_json(json);
    expect_statuses(r, "e=failed h=skipped j=skipped k=skipped f=success g=success i=success l=success");
    json_decref(r);
    out_free(&o);
}

/* A failure at the last job: everything else succeeded. */
static void test_graph12_fail_last(void **state)
{
    (void)state;
    const char *wf = write_graph12("fl.cfg", "name = \"fl\";", "k:error = \"last one broke\";");
    const char *json = path_in("fl.json");
    out_t o = cli("run", wf, "--json", json, NULL);
    expect_code(&o, 1);
    json_t *r = load_json(json);
    expect_statuses(r, "a=success j=success l=success k=failed");
    json_t *fr = json_array_get(json_object_get(r, "frontiers"), 0);
    assert_string_equal(json_string_value(json_object_get(fr, "job")), "k");
    json_decref(r);
    out_free(&o);
}

static void test_global_timeout(void **state)
{
    (void)state;
    const char *wf = write_graph12("to.cfg", "name = \"to\"; timeout = \"400ms\";", "d:duration = \"20s\";");
    const char *json = path_in("to.json");
    out_t o = cli("run", wf, "--json", json, NULL);
    expect_code(&o, 4);
    json_t *r = load_json(json);
    assert_string_equal(json_string_value(json_object_get(r, "outcome")), "timeout");
    assert_true(json_is_true(json_object_get(r, "timed_out")));
    expect_in(json_string_value(json_object_get(r, "first_error")), "timeout");
    expect_statuses(r, "a=success d=unknown g=unknown k=unknown");
    json_decref(r);
    out_free(&o);

    /* --timeout overrides the file. */
    const char *wf2 = write_graph12("to2.cfg", "name = \"to2\";", "d:duration = \"20s\";");
    o = cli("run", wf2, "--timeout", "300ms", NULL);
    expect_code(&o, 4);
    out_free(&o);
}

/* The largest number of jobs whose [start, start+duration) overlap. */
static int max_overlap(json_t *r)
{
    json_t *jobs = json_object_get(r, "jobs");
    int best = 0;
    const char *k1, *k2;
    json_t *j1, *j2;
    json_object_foreach(jobs, k1, j1)
    {
        /* At the start of each job, count those running (1 ms slack for
         * rounding of start and duration to milliseconds). */
        long long s = json_integer_value(json_object_get(j1, "start_ms"));
        int n = 0;
        json_object_foreach(jobs, k2, j2)
        {
            long long s2 = json_integer_value(json_object_get(j2, "start_ms"));
            long long e2 = s2 + json_integer_value(json_object_get(j2, "duration_ms"));
            if (s2 <= s && s + 1 < e2)
                n++;
        }
        if (n > best)
            best = n;
    }
    return best;
}

static void test_concurrency_limits(void **state)
{
    (void)state;
    const char *wf = write_file("wide.cfg",
                                "workflow: { name = \"wide\"; max_concurrent_jobs = 8; };\n"
                                "jobs = (\n"
                                "  { name = \"p1\"; type = \"core.sleep\"; params = { duration = \"150ms\"; }; },\n"
                                "  { name = \"p2\"; type = \"core.sleep\"; params = { duration = \"150ms\"; }; },\n"
                                "  { name = \"p3\"; type = \"core.sleep\"; params = { duration = \"150ms\"; }; },\n"
                                "  { name = \"p4\"; type = \"core.sleep\"; params = { duration = \"150ms\"; }; },\n"
                                "  { name = \"p5\"; type = \"core.sleep\"; params = { duration = \"150ms\"; }; }\n"
                                ");\n");
    for (int limit = 1; limit <= 2; limit++) {
        char lim[8];
        snprintf(lim, sizeof lim, "%d", limit);
        const char *json = path_in("wide.json"), *trace = path_in("wide.trace");
        out_t o = cli("run", wf, "-j", lim, "--json", json, "--trace", trace, NULL);
        expect_code(&o, 0);
        json_t *r = load_json(json);
        int overlap = max_overlap(r);
        if (overlap > limit)
            fail_msg("-j %d: %d jobs ran at once", limit, overlap);
        if (limit == 2)
            assert_int_equal(overlap, 2); /* five 150 ms sleeps on two workers do overlap */
        /* Five jobs of 150 ms one at a time take at least 750 ms. */
        if (limit == 1)
            assert_true(json_integer_value(json_object_get(r, "duration_ms")) >= 740);
        json_decref(r);
        json_t *t = load_json(trace);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(t, "traceEvents"), i, e)
        {
            if (strcmp(json_string_value(json_object_get(e, "ph")), "X") == 0)
                assert_true(json_integer_value(json_object_get(e, "tid")) <= limit);
        }
        json_decref(t);
        out_free(&o);
    }
}

/* The trace: valid JSON, one complete span per attempt. */
static void test_trace_spans(void **state)
{
    (void)state;
    const char *wf = write_file("retry.cfg",
                                "workflow: { name = \"retry\"; fail_fast = false; };\n"
                                "jobs = (\n"
                                "  { name = \"ok\"; type = \"core.sleep\"; params = { duration = \"20ms\"; }; },\n"
                                "  { name = \"flaky\"; type = \"core.sleep\"; retries = 2;\n"
                                "    backoff = { initial = \"10ms\"; };\n"
                                "    params = { duration = \"10ms\"; error = \"nope\"; }; },\n"
                                "  { name = \"after\"; type = \"core.noop\"; depends_on = [ \"flaky\" ]; }\n"
                                ");\n");
    const char *json = path_in("retry.json"), *trace = path_in("retry.trace");
    out_t o = cli("run", wf, "--json", json, "--trace", trace, NULL);
    expect_code(&o, 1);
    json_t *r = load_json(json);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(json_object_get(r, "jobs"), "flaky"), "attempts")), 3);
    expect_statuses(r, "ok=success flaky=failed after=skipped");
    json_decref(r);
    json_t *t = load_json(trace);
    int flaky = 0, ok = 0, other = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(t, "traceEvents"), i, e)
    {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        if (strcmp(ph, "X") != 0)
            continue;
        const char *name = json_string_value(json_object_get(e, "name"));
        assert_true(json_integer_value(json_object_get(e, "dur")) >= 0);
        if (strcmp(name, "flaky") == 0) {
            flaky++;
            assert_string_equal(json_string_value(json_object_get(json_object_get(e, "args"), "error")), "nope");
        } else if (strcmp(name, "ok") == 0)
            ok++;
        else
            other++;
    }
    assert_int_equal(flaky, 3);
    assert_int_equal(ok, 1);
    assert_int_equal(other, 0); /* skipped jobs have no span */
    json_decref(t);
    out_free(&o);
}

static void test_sigint(void **state)
{
    (void)state;
    const char *wf = write_file("long.cfg",
                                "workflow: { name = \"long\"; };\n"
                                "jobs = (\n"
                                "  { name = \"quick\"; type = \"core.sleep\"; params = { duration = \"10ms\"; }; },\n"
                                "  { name = \"slow\"; type = \"core.sleep\"; depends_on = [ \"quick\" ];\n"
                                "    params = { duration = \"60s\"; }; },\n"
                                "  { name = \"never\"; type = \"core.noop\"; depends_on = [ \"slow\" ]; }\n"
                                ");\n");
    const char *json = path_in("long.json"), *op = path_in("long.out"), *ep = path_in("long.err");
    char *argv[] = {mut(DP_CLI), mut("run"), mut(wf), mut("--json"), mut(json), NULL};
    unlink(json);
    pid_t pid = spawn(argv, op, ep);
    /* Wait until slow has started (the event line says so), then interrupt. */
    bool started = false;
    for (int i = 0; i < 1000 && !started; i++) {
        char *err = slurp(ep);
        started = err && strstr(err, "slow: started");
        free(err);
        if (!started)
            usleep(10000);
    }
    assert_true(started);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(kill(pid, SIGINT), 0);
    out_t o = {.code = wait_code(pid)};
    clock_gettime(CLOCK_MONOTONIC, &t1);
    o.out = slurp(op);
    o.err = slurp(ep);
    no_sanitizer_report(&o);
    expect_code(&o, 130);
    assert_true(t1.tv_sec - t0.tv_sec < 20);
    expect_in(o.out, "workflow long: cancelled");
    json_t *r = load_json(json);
    assert_string_equal(json_string_value(json_object_get(r, "outcome")), "cancelled");
    expect_statuses(r, "quick=success slow=unknown never=unknown");
    json_decref(r);
    out_free(&o);
}

/* ---- refusals: exit 2, the message, and nothing ran ---------------------- */

/* A file with a shell job that would leave a marker; the problem elsewhere
 * must stop it from running. */
static void expect_refused(const char *body, const char *msg1, const char *msg2)
{
    const char *marker = path_in("ran.marker");
    unlink(marker);
    char text[4096];
    snprintf(text, sizeof text,
             "jobs = (\n"
             "  { name = \"marker\"; type = \"shell.command\"; params = { command = \"touch %s\"; }; },\n"
             "%s\n);\n",
             marker, body);
    const char *wf = write_file("bad.cfg", text);
    out_t o = cli("run", wf, NULL);
    expect_code(&o, 2);
    expect_in(o.err, msg1);
    if (msg2)
        expect_in(o.err, msg2);
    struct stat st;
    if (stat(marker, &st) == 0)
        fail_msg("a job ran although the file was refused:\n%s", body);
    out_free(&o);
    o = cli("validate", wf, NULL);
    expect_code(&o, 2);
    expect_in(o.err, msg1);
    out_free(&o);
}

static void test_refusals(void **state)
{
    (void)state;
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where, "%s/bad.cfg:3: ", dir);
    expect_refused("  { name = \"x\"; type = ; }", where, "syntax error");
    expect_refused("  { name = \"x\"; type = \"core.noop\"; retires = 2; }", where,
                   "unknown key 'retires' in job 'x'; did you mean 'retries'?");
    expect_refused("  { name = \"x\"; type = \"core.noop\"; retries = \"2\"; }", where,
                   "'retries' of job 'x' must be an integer, found a string");
    expect_refused("  { name = \"x\"; type = \"core.noop\"; timeout = \"5 min\"; }", where,
                   "'timeout' of job 'x': bad duration \"5 min\"");
    expect_refused("  { name = \"marker\"; type = \"core.noop\"; }", where, "duplicate job name 'marker'");
    expect_refused("  { name = \"x\"; type = \"core.noop\"; depends_on = [ \"markr\" ]; }", where,
                   "depends on 'markr', which is not a job of this workflow; did you mean 'marker'?");
    expect_refused("  { name = \"x\"; type = \"core.noop\"; depends_on = [ \"y\" ]; },\n"
                   "  { name = \"y\"; type = \"core.noop\"; depends_on = [ \"x\" ]; }",
                   where, "dependency cycle: x -> y -> x");
    expect_refused("  { name = \"x\"; type = \"nosuch.thing\"; }", where, "job 'x' (type 'nosuch.thing')");
    expect_refused("  { name = \"x\"; type = \"core.slep\"; }", where, "sleep");
    expect_refused("  { name = \"x\"; type = \"core.sleep\"; params = { duration = \"abc\"; }; }", where, "duration");
    expect_refused("  { name = \"x\"; type = \"core.noop\"; isolation = \"thread\"; }", where,
                   "'isolation' of job 'x' must be \"process\" (a child process per attempt) or \"none\"");
    expect_refused("  { name = \"x\"; type = \"core.noop\"; limits = { memory = \"1GiB\"; }; }", where,
                   "limits apply only to isolation = \"process\"");
    expect_refused(
        "  { name = \"x\"; type = \"core.noop\"; isolation = \"process\"; limits = { memory = \"lots\"; }; }", where,
        "bad size \"lots\"");
}

static void test_bad_invocations(void **state)
{
    (void)state;
    const char *wf = write_file("fine.cfg", "jobs = ( { name = \"a\"; type = \"core.noop\"; } );\n");
    struct {
        const char *args[6];
        const char *msg;
    } cases[] = {
        {{"run", "/nonexistent.cfg"}, "cannot read the workflow file"},
        {{"run"}, "no workflow file given"},
        {{"run", wf, "-j", "0"}, "expected a number of jobs"},
        {{"run", wf, "--timeout", "soon"}, "--timeout: bad duration"},
        {{"run", wf, "--log-format", "xml"}, "expected text or json"},
        {{"run", wf, "--frobnicate"}, "unknown option --frobnicate"},
        {{"run", wf, "--json"}, "needs a value"},
        {{"run", wf, "--json", "/nonexistent/dir/r.json"}, "cannot write the JSON result"},
        {{"run", wf, "--plugin-path", "/nonexistent"}, "no such directory"},
        {{"graph", wf, "--format", "svg"}, "expected dot or mermaid"},
        {{"graph", wf, "--result", "/nonexistent.json"},
         "--result /nonexistent.json: No such file or directory; fix: name the JSON result"},
        {{"frobnicate"}, "unknown command 'frobnicate'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char **a = cases[i].args;
        out_t o = cli(a[0], a[1], a[2], a[3], a[4], NULL);
        expect_code(&o, 2);
        expect_in(o.err, cases[i].msg);
        out_free(&o);
    }
}

/* ---- the other subcommands ------------------------------------------------ */

static void test_help_and_version(void **state)
{
    (void)state;
    const char *cmds[] = {"run", "validate", "graph", "plugins"};
    for (size_t i = 0; i < 4; i++) {
        out_t o = cli(cmds[i], "--help", NULL);
        expect_code(&o, 0);
        char want[64];
        snprintf(want, sizeof want, "usage: daggerpool %s", cmds[i]);
        expect_in(o.out, want);
        out_free(&o);
    }
    out_t o = cli("--help", NULL);
    expect_code(&o, 0);
    expect_in(o.out, "exit codes: 0 success, 1 failed, 2 invalid input");
    out_free(&o);
    o = cli("--version", NULL);
    expect_code(&o, 0);
    expect_in(o.out, "daggerpool 1.");
    out_free(&o);
}

static void test_validate_and_graph(void **state)
{
    (void)state;
    const char *seed = DP_CONF_DIR "/seed.cfg";
    out_t o = cli("validate", seed, NULL);
    expect_code(&o, 0);
    expect_in(o.out, "ok: workflow seed, 5 jobs, 5 dependencies");
    out_free(&o);

    o = cli("graph", seed, NULL);
    expect_code(&o, 0);
    expect_in(o.out, "digraph \"seed\"");
    expect_in(o.out, "\"JobA\" -> \"JobB\";");
    expect_in(o.out, "\"JobD\" -> \"JobE\";");
    expect_in(o.out, "core.sleep");
    out_free(&o);

    const char *json = path_in("seed.json");
    o = cli("run", seed, "--json", json, "-q", NULL);
    expect_code(&o, 0);
    out_free(&o);
    o = cli("graph", seed, "--result", json, "--format", "mermaid", NULL);
    expect_code(&o, 0);
    expect_in(o.out, "graph TD");
    expect_in(o.out, "n0 --> n1");
    expect_in(o.out, "class n0,n1,n2,n3,n4 success");
    out_free(&o);
}

static void test_plugins_listing(void **state)
{
    (void)state;
    out_t o = cli("plugins", NULL);
    expect_code(&o, 0);
    expect_in(o.out, "core 1.");
    expect_in(o.out, "core.sleep");
    expect_in(o.out, "shell.command");
    expect_in(o.out, "net.tcp_connect");
    expect_in(o.out, "fs.exists");
    out_free(&o);
}

/* The examples of conf/ run as they are, from any directory. */
static void test_conf_examples(void **state)
{
    (void)state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/"), 0);
    out_t o = cli("run", DP_CONF_DIR "/seed.cfg", NULL);
    expect_code(&o, 0);
    out_free(&o);
    /* realistic.cfg keeps its files in /tmp/daggerpool-release; this test
     * runs a copy that keeps them in its own directory, so that two test
     * runs at once (two build trees) never share them. */
    char *text = slurp(DP_CONF_DIR "/realistic.cfg");
    assert_non_null(text);
    const char *own = path_in("release");
    FILE *copy = fopen(path_in("realistic.cfg"), "w");
    assert_non_null(copy);
    static const char shared[] = "/tmp/daggerpool-release";
    for (const char *p = text, *at; *p; p = at + sizeof shared - 1) {
        if (!(at = strstr(p, shared))) {
            fputs(p, copy);
            break;
        }
        fwrite(p, 1, (size_t)(at - p), copy);
        fputs(own, copy);
    }
    fclose(copy);
    free(text);
    const char *json = path_in("realistic.json");
    o = cli("run", path_in("realistic.cfg"), "--json", json, NULL);
    expect_code(&o, 3);
    json_t *r = load_json(json);
    expect_statuses(r, "database=success deploy=success canary=not_ready promote=skipped");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(json_object_get(r, "jobs"), "migrate"), "attempts")), 2);
    json_decref(r);
    out_free(&o);
    o = cli("run", DP_CONF_DIR "/keep-going.cfg", NULL);
    expect_code(&o, 1);
    expect_in(o.out, "publish_docs  success");
    out_free(&o);
    assert_int_equal(chdir(cwd), 0);
}

/* Logs: every line with time, level, job, attempt and plugin; JSON lines. */
static void test_log_formats(void **state)
{
    (void)state;
    const char *wf = write_file("log.cfg", "jobs = ( { name = \"say\"; type = \"shell.command\";\n"
                                           "  params = { command = \"echo hello from say\"; }; } );\n");
    out_t o = cli("run", wf, "-v", "--log-format", "json", NULL);
    expect_code(&o, 0);
    bool saw_job_line = false;
    char *save = NULL;
    for (char *line = strtok_r(o.err, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] != '{')
            continue; /* progress lines */
        json_error_t je;
        json_t *l = json_loads(line, 0, &je);
        if (!l)
            fail_msg("log line is not JSON: %s", line);
        static const char *const keys[] = {"time", "level", "job", "attempt", "plugin", "message"};
        for (size_t k = 0; k < 6; k++)
            if (!json_object_get(l, keys[k]))
                fail_msg("log line without %s: %s", keys[k], line);
        const char *job = json_string_value(json_object_get(l, "job"));
        if (job && strcmp(job, "say") == 0) {
            saw_job_line = true;
            assert_int_equal(json_integer_value(json_object_get(l, "attempt")), 1);
        }
        json_decref(l);
    }
    assert_true(saw_job_line);
    out_free(&o);

    o = cli("run", wf, "-v", NULL);
    expect_code(&o, 0);
    expect_in(o.err, "job=say attempt=1 plugin=shell: ");
    out_free(&o);

    o = cli("run", wf, "-q", NULL);
    expect_code(&o, 0);
    assert_int_equal(strlen(o.err), 0); /* quiet: nothing on stderr */
    expect_in(o.out, "workflow log: success");
    out_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph12_success),
        cmocka_unit_test(test_json_keys),
        cmocka_unit_test(test_clock_env),
        cmocka_unit_test(test_graph12_not_ready),
        cmocka_unit_test(test_graph12_not_ready_root),
        cmocka_unit_test(test_graph12_fail_fast),
        cmocka_unit_test(test_graph12_keep_going),
        cmocka_unit_test(test_graph12_fail_last),
        cmocka_unit_test(test_global_timeout),
        cmocka_unit_test(test_concurrency_limits),
        cmocka_unit_test(test_trace_spans),
        cmocka_unit_test(test_sigint),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bad_invocations),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_validate_and_graph),
        cmocka_unit_test(test_plugins_listing),
        cmocka_unit_test(test_conf_examples),
        cmocka_unit_test(test_log_formats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
