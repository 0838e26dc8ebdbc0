/*
 * config.c - the workflow file (DESIGN.md "The workflow file"): its
 * top-level keys, its plugins, and the graph built from it; the public
 * dp_workflow_* calls.
 *
 * Two steps, so that a file's mistakes are found before any plugin code is
 * loaded and so that the caller decides the plugin search order:
 *
 *   dp_workflow_load   libconfig parse of the stream config_source.c makes
 *                      of the workflow and its @includes (each file checked
 *                      before it is read), then every key checked against
 *                      what it may be (unknown keys, types, durations,
 *                      names, dependencies, cycles). Everything is copied
 *                      out of libconfig (dependencies as job indices), and
 *                      its tree is freed before the cycle check. The shape
 *                      graph (for drawing) is built on first use.
 *   dp_workflow_build  explicit plugins loaded, each job added through a
 *                      dp__plugins_batch (type resolved, params checked by
 *                      the type's create, as dp_plugins_add_job does).
 *
 * The other config_*.c files: config_source.c (the text libconfig reads),
 * config_problems.c (the problem list and the typed getters that report
 * into it), config_job.c (one job, read through a table of its keys) and
 * config_names.c (job names and dependencies).
 *
 * Problems are collected, not just the first: a user fixing a file wants
 * the whole list. A workflow loaded for its build
 * (dp__workflow_load_for_build) carries its problems to dp_workflow_build,
 * which adds those of plugins, types and params to the same list.
 */
#include "config.h"

#include <libconfig.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_job.h"
#include "config_problems.h"
#include "config_source.h"
#include "dag.h"
#include "listen.h"
#include "plugin.h"
#include "util.h"

typedef struct wf_plugin {
    char *name;
    char *path; /* resolved against the file's directory */
    const char *file;
    int line;
} wf_plugin_t;

struct dp_workflow {
    char *path; /* as given */
    char *dir;  /* its directory: base of relative paths and @include */
    char *name;
    unsigned max_concurrent_jobs;
    uint64_t timeout_ms;
    bool fail_fast;
    char **plugin_path;
    size_t n_plugin_path;
    char *listen; /* workflow.listen, checked (listen.h); NULL: not set */
    wf_plugin_t *plugins;
    size_t nplugins;
    dp__jobs_t jobs;
    dp__file_names_t files;     /* every file name a setting came from (includes) */
    pthread_mutex_t shape_lock; /* the shape is made on first use, */
    dp_graph_t *shape;
    dp_workflow_t *self; /* through this from a const workflow */
    dp_graph_t *graph;
    /* The whole file's graph once dp__workflow_select made `graph` the
     * selected jobs' (NULL before): kept, since names and ids handed out
     * from it stay in use. */
    dp_graph_t *full;
    int build_rc; /* first answer of dp_workflow_build, 1 = not yet */
    char *build_err;
    /* A workflow with problems, kept for its build to list those of its
     * plugins, types and params too (dp__workflow_load_for_build): the
     * problems and their number (the jobs not to build: jobs.unbuildable). */
    char *load_problems;
    unsigned load_count;
};

/* ------------------------------------------------------------------------ */
/* Top-level keys                                                            */
/* ------------------------------------------------------------------------ */

static const char *const top_keys[] = {"workflow", "plugins", "defaults", "jobs", "pools", NULL};
static const char *const workflow_keys[] = {
    "name", "max_concurrent_jobs", "timeout", "fail_fast", "plugin_path", "listen", NULL};
static const char *const plugin_keys[] = {"path", NULL};

/* A path from the file, relative to the file's directory unless absolute. */
static char *resolve_path(dp__cfg_reader_t *rd, const dp_workflow_t *wf, const char *p)
{
    char *out = p[0] == '/' ? dp__strdup(p) : dp__asprintf("%s/%s", wf->dir, p);
    if (!out)
        rd->oom = true;
    return out;
}

static void read_plugin_path(dp__cfg_reader_t *rd, dp_workflow_t *wf, const config_setting_t *s)
{
    const config_setting_t **items = NULL;
    size_t n = 0;
    if (!dp__cfg_string_list(rd, s, "workflow.plugin_path", true, &items, &n))
        return;
    wf->plugin_path = calloc(n ? n : 1, sizeof *wf->plugin_path);
    if (!wf->plugin_path)
        rd->oom = true;
    for (size_t i = 0; wf->plugin_path && i < n; i++) {
        const char *dir = config_setting_get_string(items[i]);
        if (!*dir) {
            DP__CFG_PROBLEM(rd, items[i], "workflow.plugin_path has an empty directory name");
            continue;
        }
        char *r = resolve_path(rd, wf, dir);
        if (r)
            wf->plugin_path[wf->n_plugin_path++] = r;
    }
    free(items);
}

/* workflow.listen: where `daggerpool watch` serves its endpoints, checked
 * now as --listen is (listen.h), so a bad one is refused with its line. */
static void read_listen(dp__cfg_reader_t *rd, dp_workflow_t *wf, const config_setting_t *s)
{
    const char *str;
    if (!dp__cfg_string(rd, s, "workflow.listen", &str))
        return;
    dp__listen_addr_t a;
    char why[512];
    if (dp__listen_parse(str, &a, why, sizeof why) != DP_OK) {
        DP__CFG_PROBLEM(rd, s, "workflow.listen: %s", why);
        return;
    }
    free(wf->listen);
    if (!(wf->listen = dp__strdup(str)))
        rd->oom = true;
}

static void read_workflow(dp__cfg_reader_t *rd, dp_workflow_t *wf, const config_setting_t *w)
{
    if (!dp__cfg_group(rd, w, "'workflow'", "workflow: { name = \"deploy\"; }"))
        return;
    dp__cfg_check_keys(rd, w, workflow_keys, "in 'workflow'");
    const config_setting_t *s;
    const char *str;
    if ((s = config_setting_get_member(w, "name")) && dp__cfg_string(rd, s, "workflow.name", &str)) {
        if (!*str)
            DP__CFG_PROBLEM(rd, s, "workflow.name must not be empty");
        else if (!dp__cfg_utf8_ok(str))
            dp__cfg_not_utf8(rd, s, "workflow.name is", str);
        else {
            free(wf->name);
            if (!(wf->name = dp__strdup(str)))
                rd->oom = true;
        }
    }
    if ((s = config_setting_get_member(w, "max_concurrent_jobs")))
        dp__cfg_uint(rd, s, "workflow.max_concurrent_jobs", 1, 100000, &wf->max_concurrent_jobs);
    if ((s = config_setting_get_member(w, "timeout")))
        dp__cfg_duration(rd, s, "workflow.timeout", &wf->timeout_ms);
    if ((s = config_setting_get_member(w, "fail_fast")))
        dp__cfg_bool(rd, s, "workflow.fail_fast", &wf->fail_fast);
    if ((s = config_setting_get_member(w, "plugin_path")))
        read_plugin_path(rd, wf, s);
    if ((s = config_setting_get_member(w, "listen")))
        read_listen(rd, wf, s);
}

static void read_plugins(dp__cfg_reader_t *rd, dp_workflow_t *wf, const config_setting_t *ps)
{
    if (!dp__cfg_group(rd, ps, "'plugins'", "plugins = { custom = { path = \"lib/custom.so\"; }; }"))
        return;
    int n = config_setting_length(ps);
    wf->plugins = calloc(n ? (size_t)n : 1, sizeof *wf->plugins);
    if (!wf->plugins) {
        rd->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *p = config_setting_get_elem(ps, (unsigned)i);
        const char *name = config_setting_name(p);
        char what[256];
        snprintf(what, sizeof what, "plugins.%s", name);
        if (!dp__cfg_group(rd, p, what, "{ path = \"lib/custom.so\"; }"))
            continue;
        char where[256];
        snprintf(where, sizeof where, "in plugins.%s", name);
        dp__cfg_check_keys(rd, p, plugin_keys, where);
        const config_setting_t *ps_path = config_setting_get_member(p, "path");
        const char *path;
        if (!ps_path) {
            DP__CFG_PROBLEM(rd, p, "plugins.%s needs a path, e.g. %s = { path = \"lib/%s.so\"; }", name, name, name);
            continue;
        }
        snprintf(what, sizeof what, "plugins.%s.path", name);
        if (!dp__cfg_string(rd, ps_path, what, &path))
            continue;
        wf_plugin_t *pl = &wf->plugins[wf->nplugins];
        pl->name = dp__strdup(name);
        pl->path = resolve_path(rd, wf, path);
        pl->file = dp__cfg_file(rd, p);
        pl->line = dp__cfg_line(rd, p);
        if (!pl->name || !pl->path) {
            free(pl->name);
            free(pl->path);
            rd->oom = true;
            continue;
        }
        wf->nplugins++;
    }
}

/* pools = { db = 2; gpu = 1; }: each a number of slots, before the jobs,
 * which name them (DESIGN.md "Scheduling keys"). */
static void read_pools(dp__cfg_reader_t *rd, dp_workflow_t *wf, const config_setting_t *ps)
{
    if (!dp__cfg_group(rd, ps, "'pools'", "pools = { db = 2; gpu = 1; }"))
        return;
    dp__jobs_t *jobs = &wf->jobs;
    int n = config_setting_length(ps);
    jobs->pool_names = calloc((size_t)n + 1, sizeof *jobs->pool_names);
    jobs->pool_slots = calloc(n ? (size_t)n : 1, sizeof *jobs->pool_slots);
    if (!jobs->pool_names || !jobs->pool_slots) {
        rd->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *p = config_setting_get_elem(ps, (unsigned)i);
        const char *name = config_setting_name(p);
        char what[256];
        snprintf(what, sizeof what, "pools.%s (its slots)", name);
        unsigned slots;
        if (!dp__cfg_uint(rd, p, what, 1, 1000000, &slots))
            continue;
        if (!(jobs->pool_names[jobs->npools] = dp__strdup(name))) {
            rd->oom = true;
            return;
        }
        jobs->pool_slots[jobs->npools++] = slots;
    }
}

/* The pools of the file into g (before validate, which checks its jobs'). */
static int add_pools(const dp_workflow_t *wf, dp_graph_t *g, char *msg, size_t msglen)
{
    for (size_t i = 0; i < wf->jobs.npools; i++) {
        int rc = dp_graph_add_pool(g, wf->jobs.pool_names[i], wf->jobs.pool_slots[i], msg, msglen);
        if (rc != DP_OK)
            return rc;
    }
    return DP_OK;
}

/* Every key of the file, in the order its problems are listed: the top
 * level's, workflow, plugins, pools, defaults, jobs. */
static void read_settings(dp__cfg_reader_t *rd, dp_workflow_t *wf, const config_setting_t *root)
{
    dp__cfg_check_keys(rd, root, top_keys, "at the top level");
    const config_setting_t *s;
    if ((s = config_setting_get_member(root, "workflow")))
        read_workflow(rd, wf, s);
    if ((s = config_setting_get_member(root, "plugins")))
        read_plugins(rd, wf, s);
    if ((s = config_setting_get_member(root, "pools")))
        read_pools(rd, wf, s);
    const config_setting_t *defaults = config_setting_get_member(root, "defaults");
    if (defaults && !dp__cfg_group(rd, defaults, "'defaults'", "defaults = { retries = 1; timeout = \"1m\"; }"))
        defaults = NULL;
    if (defaults)
        dp__jobs_read_defaults(rd, defaults);

    const config_setting_t *jobs = config_setting_get_member(root, "jobs");
    if (!jobs)
        dp__problem(rd->pr, wf->path, 0, "no jobs; add jobs = ( { name = \"A\"; type = \"core.noop\"; } );");
    else if (config_setting_type(jobs) != CONFIG_TYPE_LIST)
        DP__CFG_PROBLEM(rd, jobs,
                        "'jobs' must be a list in ( ) of groups such as ( { name = \"A\"; type = "
                        "\"core.noop\"; } ), found %s",
                        dp__cfg_type_name(jobs));
    else if (config_setting_length(jobs) == 0)
        DP__CFG_PROBLEM(rd, jobs, "'jobs' is empty; a workflow needs at least one job");
    else
        dp__jobs_read(rd, &wf->jobs, jobs, (size_t)config_setting_length(jobs), defaults);
}

/* ------------------------------------------------------------------------ */
/* The shape and its cycles                                                  */
/* ------------------------------------------------------------------------ */

/* The shape graph never runs: its jobs exist so that the engine's own
 * validation (and its cycle message) applies to the file. */
static dp_outcome_t shape_run(dp_job_t *job, void *user)
{
    (void)user;
    return dp_job_fail(job, true, "a workflow's shape graph is not meant to run");
}

/* The workflow's jobs and dependencies as a graph with no plugin behind
 * them, validated: *rc DP_OK, or the engine's refusal in *rc and msg, the
 * graph kept all the same (its cycle: dp__graph_cycle). NULL when it could
 * not be made. The caller frees it. */
static dp_graph_t *make_shape(const dp_workflow_t *wf, int *rc, char *msg, size_t msglen)
{
    const dp__jobs_t *jobs = &wf->jobs;
    dp_graph_t *g = dp_graph_new();
    *rc = DP_ENOMEM;
    snprintf(msg, msglen, "out of memory");
    if (!g || dp__graph_reserve(g, jobs->n, jobs->ndep_ids) != DP_OK || add_pools(wf, g, msg, msglen) != DP_OK)
        goto fail;
    for (size_t i = 0; i < jobs->n; i++) {
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = jobs->v[i].name;
        spec.run = shape_run;
        /* What `graph` draws of the scheduling and the trigger rules. */
        const dp_job_spec_t *js = dp__jobs_spec(jobs, &jobs->v[i]);
        spec.pool = js->pool;
        spec.pool_slots = js->pool_slots;
        spec.priority = js->priority;
        spec.run_if = js->run_if;
        spec.continue_on_failure = js->continue_on_failure;
        if ((*rc = dp_graph_add_job(g, &spec, msg, msglen)) != DP_OK)
            goto fail;
    }
    /* Every job is in, at its index in jobs->v: the dependencies by index. */
    for (size_t i = 0; i < jobs->n; i++) {
        const dp__wf_job_t *j = &jobs->v[i];
        for (uint32_t d = 0; d < j->ndeps; d++)
            if ((*rc = dp__graph_add_dep_id(g, (uint32_t)i, jobs->dep_ids[j->dep_off + d])) != DP_OK)
                goto fail;
    }
    *rc = dp_graph_validate(g, msg, msglen);
    return g;
fail:
    dp_graph_free(g);
    return NULL;
}

/* Whether the dependencies have no cycle: Kahn's traversal over the job
 * indices, without a graph, so that a workflow without a cycle (all but
 * a few) never makes the shape graph unless it is drawn. false with *oom
 * set when out of memory. */
static bool acyclic(const dp__jobs_t *jobs, bool *oom)
{
    size_t n = jobs->n, m = jobs->ndep_ids, tail = 0;
    uint32_t *succ_off = calloc(n + 1, sizeof *succ_off);
    uint32_t *succ = malloc((m ? m : 1) * sizeof *succ);
    uint32_t *count = calloc(n ? n : 1, sizeof *count);
    uint32_t *queue = malloc((n ? n : 1) * sizeof *queue);
    if (!succ_off || !succ || !count || !queue) {
        *oom = true;
        goto out;
    }
    for (size_t e = 0; e < m; e++)
        succ_off[jobs->dep_ids[e] + 1]++;
    for (size_t j = 0; j < n; j++)
        succ_off[j + 1] += succ_off[j];
    for (size_t j = 0; j < n; j++) {
        size_t off = jobs->v[j].dep_off; /* dep_ids is NULL in a workflow without dependencies */
        for (uint32_t d = 0; d < jobs->v[j].ndeps; d++) {
            uint32_t dep = jobs->dep_ids[off + d];
            succ[succ_off[dep] + count[dep]++] = (uint32_t)j;
        }
    }
    size_t head = 0;
    for (size_t j = 0; j < n; j++)
        if (!(count[j] = jobs->v[j].ndeps)) /* now: dependencies not done yet */
            queue[tail++] = (uint32_t)j;
    while (head < tail) {
        uint32_t j = queue[head++];
        for (uint32_t k = succ_off[j]; k < succ_off[j + 1]; k++)
            if (--count[succ[k]] == 0)
                queue[tail++] = succ[k];
    }
out:
    free(succ_off);
    free(succ);
    free(count);
    free(queue);
    return !*oom && tail == n;
}

/* A cycle's problem: at the place of its first job (the shape graph g's
 * cycle as job ids, dp__graph_cycle; none: the file), the engine's message
 * msg ("cycle: a -> b -> a (each job depends on the next)", a long cycle
 * shortened), so that both say a cycle the same way. */
static void format_cycle(dp__cfg_reader_t *rd, const dp_workflow_t *wf, const dp_graph_t *g, const char *msg)
{
    const uint32_t *ids;
    long first = dp__graph_cycle(g, &ids) ? dp__jobs_find(&wf->jobs, dp_graph_job_name(g, ids[0])) : -1;
    const dp__wf_job_t *at = first >= 0 ? &wf->jobs.v[first] : NULL;
    dp__problem(rd->pr, at ? at->file : wf->path, at ? at->line : 0,
                "dependency %s; a workflow must be acyclic: remove one of these depends_on entries", msg);
}

/* Cycles, once every name resolves. Only for a cycle is the shape graph
 * made here, for the engine's verdict and message, so both agree on what a
 * cycle is and say it the same way; otherwise the shape waits for
 * dp__workflow_shape. */
static void check_cycles(dp__cfg_reader_t *rd, dp_workflow_t *wf)
{
    if (acyclic(&wf->jobs, &rd->oom) || rd->oom)
        return;
    char msg[1024];
    int rc;
    dp_graph_t *g = make_shape(wf, &rc, msg, sizeof msg);
    if (rc == DP_OK) { /* the engine sees no cycle: it decides (the build will say) */
        wf->shape = g;
        return;
    }
    if (rc == DP_ENOMEM)
        rd->oom = true;
    else if (rc == DP_ECYCLE)
        format_cycle(rd, wf, g, msg);
    else /* refused for another reason: the engine's message as it is */
        dp__problem(rd->pr, wf->path, 0, "%s", msg);
    dp_graph_free(g);
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                   */
/* ------------------------------------------------------------------------ */

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dp__strdup(".");
    if (slash == path)
        return dp__strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* The default name: the file's base name without its extension. */
static char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    const char *dot = strrchr(b, '.');
    return dot && dot != b ? strndup(b, (size_t)(dot - b)) : dp__strdup(b);
}

void dp_workflow_free(dp_workflow_t *wf)
{
    if (!wf)
        return;
    dp_graph_free(wf->graph);
    dp_graph_free(wf->full);
    dp_graph_free(wf->shape);
    dp__jobs_free(&wf->jobs);
    for (size_t i = 0; i < wf->nplugins; i++) {
        free(wf->plugins[i].name);
        free(wf->plugins[i].path);
    }
    free(wf->plugins);
    for (size_t i = 0; i < wf->n_plugin_path; i++)
        free(wf->plugin_path[i]);
    free(wf->plugin_path);
    free(wf->listen);
    dp__file_names_free(&wf->files);
    free(wf->build_err);
    free(wf->load_problems);
    free(wf->name);
    free(wf->dir);
    free(wf->path);
    pthread_mutex_destroy(&wf->shape_lock);
    free(wf);
}

/* An empty workflow of the file at path, with the defaults of its
 * top-level settings; NULL with err set. */
static dp_workflow_t *workflow_new(const char *path, char *err, size_t errlen)
{
    dp_workflow_t *wf = calloc(1, sizeof *wf);
    if (wf) {
        pthread_mutex_init(&wf->shape_lock, NULL);
        wf->self = wf;
    }
    if (!wf || !(wf->path = dp__strdup(path)) || !(wf->dir = dir_of(path)) || !(wf->name = base_name(path))) {
        dp_workflow_free(wf);
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory reading %s", path);
        return NULL;
    }
    wf->max_concurrent_jobs = 4;
    wf->fail_fast = true;
    wf->build_rc = 1;
    dp__jobs_init(&wf->jobs);
    return wf;
}

/* The end of a load: wf, or NULL (wf freed) with the problems or out of
 * memory in err. partial: see dp__workflow_load_for_build. */
static dp_workflow_t *load_end(dp_workflow_t *wf, dp__cfg_reader_t *rd, bool partial, char *err, size_t errlen)
{
    dp__problems_t *pr = rd->pr;
    if (rd->oom) {
        dp__seterr(err, errlen, DP_ENOMEM, "%s: out of memory while reading the workflow", wf->path);
        dp_workflow_free(wf);
        return NULL;
    }
    if (pr->count && partial) {
        /* dp_workflow_build lists these first, then its own. */
        wf->load_count = pr->count;
        if (!(wf->load_problems = dp__strdup(pr->used ? pr->buf : ""))) {
            dp__seterr(err, errlen, DP_ENOMEM, "%s: out of memory while reading the workflow", wf->path);
            dp_workflow_free(wf);
            return NULL;
        }
        return wf;
    }
    if (pr->count) {
        dp__problems_finish(pr);
        dp_workflow_free(wf);
        return NULL;
    }
    return wf;
}

/* dp_workflow_load; partial: see dp__workflow_load_for_build. */
static dp_workflow_t *load(const char *path, char *err, size_t errlen, bool partial)
{
    if (err && errlen)
        err[0] = '\0';
    if (!path || !*path) {
        dp__seterr(err, errlen, DP_EINVAL, "no workflow file given");
        return NULL;
    }
    dp_workflow_t *wf = workflow_new(path, err, errlen);
    if (!wf)
        return NULL;
    config_t cfg;
    config_init(&cfg);
    dp__src_t *src = dp__src_read(wf->path, &wf->files, &cfg, err, errlen);
    if (!src) {
        config_destroy(&cfg);
        dp_workflow_free(wf);
        return NULL;
    }
    dp__problems_t pr = {.buf = err, .len = err ? errlen : 0};
    dp__cfg_reader_t rd = {.pr = &pr, .src = src, .path = wf->path};
    read_settings(&rd, wf, config_root_setting(&cfg));
    if (!rd.oom)
        dp__cfg_report_unmet_ints(&rd);
    /* Everything is copied out (dependencies are indices now): libconfig's
     * tree, by far the largest thing here, goes before anything else is
     * made, which then reuses its memory. */
    config_destroy(&cfg);
    dp__src_free(src);
    rd.src = NULL;
    if ((pr.count == 0 || partial) && !rd.oom)
        dp__jobs_finish_params(&rd, &wf->jobs);
    /* Cycles only make sense once every name resolves. */
    if (pr.count == 0 && !rd.oom)
        check_cycles(&rd, wf);
    return load_end(wf, &rd, partial, err, errlen);
}

/* Contract: see daggerpool.h. Reads path (config_source.c), copies and
 * checks everything, and returns a workflow the caller frees with
 * dp_workflow_free; NULL with all problems (one per line, at most
 * DP__MAX_PROBLEMS) in err. Any thread; no global state besides
 * libconfig's own (reentrant per config_t). */
dp_workflow_t *dp_workflow_load(const char *path, char *err, size_t errlen)
{
    return load(path, err, errlen, false);
}

dp_workflow_t *dp__workflow_load_for_build(const char *path, char *err, size_t errlen)
{
    return load(path, err, errlen, true);
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                   */
/* ------------------------------------------------------------------------ */

const char *dp_workflow_name(const dp_workflow_t *wf)
{
    return wf ? wf->name : NULL;
}

const char *dp_workflow_plugin_path(const dp_workflow_t *wf, size_t i)
{
    return wf && i < wf->n_plugin_path ? wf->plugin_path[i] : NULL;
}

const char *dp__workflow_listen(const dp_workflow_t *wf)
{
    return wf ? wf->listen : NULL;
}

void dp_workflow_run_opts(const dp_workflow_t *wf, dp_run_opts_t *opts)
{
    if (!wf || !opts)
        return;
    opts->max_concurrent_jobs = wf->max_concurrent_jobs;
    opts->timeout_ms = wf->timeout_ms;
    opts->fail_fast = wf->fail_fast;
}

dp_graph_t *dp_workflow_graph(dp_workflow_t *wf)
{
    return wf ? wf->graph : NULL;
}

/* Made on first use: `graph` draws it, run and validate never need it (the
 * load checked for cycles without it). */
const dp_graph_t *dp__workflow_shape(const dp_workflow_t *wf)
{
    if (!wf)
        return NULL;
    dp_workflow_t *w = wf->self; /* a cache: what the workflow is does not change */
    pthread_mutex_lock(&w->shape_lock);
    if (!w->shape) {
        char msg[1024];
        int rc;
        w->shape = make_shape(w, &rc, msg, sizeof msg);
        if (rc != DP_OK) { /* out of memory, or loaded with problems (for its build) */
            dp_graph_free(w->shape);
            w->shape = NULL;
        }
    }
    pthread_mutex_unlock(&w->shape_lock);
    return w->shape;
}

static const dp__wf_job_t *find_job(const dp_workflow_t *wf, const char *job)
{
    long id = wf && job ? dp__jobs_find(&wf->jobs, job) : -1;
    return id >= 0 ? &wf->jobs.v[id] : NULL;
}

const dp_job_spec_t *dp__workflow_job_spec(const dp_workflow_t *wf, const char *job)
{
    const dp__wf_job_t *j = find_job(wf, job);
    return j ? dp__jobs_spec(&wf->jobs, j) : NULL;
}

const dp_params_t *dp__workflow_job_params(const dp_workflow_t *wf, const char *job)
{
    const dp__wf_job_t *j = find_job(wf, job);
    return j ? j->params : NULL;
}

const char *dp__workflow_job_type(const dp_workflow_t *wf, const char *job)
{
    const dp__wf_job_t *j = find_job(wf, job);
    return j ? j->type : NULL;
}

bool dp__workflow_job_def(const dp_workflow_t *wf, const char *job, const char **type, const dp_params_t **params,
                          const dp_job_spec_t **spec)
{
    const dp__wf_job_t *j = find_job(wf, job);
    if (!j)
        return false;
    *type = j->type;
    *params = j->params;
    *spec = dp__jobs_spec(&wf->jobs, j);
    return true;
}

const char *dp__workflow_path(const dp_workflow_t *wf)
{
    return wf ? wf->path : NULL;
}

const char *const *dp__workflow_includes(const dp_workflow_t *wf, size_t *n)
{
    *n = wf ? wf->files.n : 0;
    return wf ? (const char *const *)wf->files.v : NULL;
}

/* ------------------------------------------------------------------------ */
/* Building                                                                  */
/* ------------------------------------------------------------------------ */

/* Every job into g through a dp__plugins_batch, its refusals into pr: DP_OK
 * or DP_ENOMEM. The jobs' params are lent to the graph's jobs (wf frees its
 * graphs before the params); plugin and type are resolved once per run of
 * jobs of one type. */
static int add_jobs(dp_workflow_t *wf, dp_plugins_t *pl, dp_graph_t *g, dp__problems_t *pr)
{
    const dp__jobs_t *jobs = &wf->jobs;
    char msg[4096];
    dp__plugin_batch_t *batch = dp__plugins_batch_new(pl);
    if (!batch)
        return DP_ENOMEM;
    int rc = DP_OK;
    for (size_t i = 0; i < jobs->n; i++) {
        const dp__wf_job_t *j = &jobs->v[i];
        /* A workflow with problems: each job once, those whose type and
         * params were read whole. */
        if (wf->load_problems &&
            (!j->type || (jobs->unbuildable && jobs->unbuildable[i]) || dp__jobs_find(jobs, j->name) != (long)i))
            continue;
        dp_job_spec_t spec = *dp__jobs_spec(jobs, j);
        spec.name = j->name;
        msg[0] = '\0';
        int r = dp__plugins_batch_add(batch, g, &spec, j->type, j->params, msg, sizeof msg);
        if (r == DP_ENOMEM) {
            rc = DP_ENOMEM;
            break;
        }
        if (r == DP_OK)
            continue;
        /* The loader's messages start "job 'NAME' (type 'TYPE'): " already. */
        char prefix[512];
        snprintf(prefix, sizeof prefix, "job '%s' (type '%s'): ", j->name, j->type);
        if (strncmp(msg, prefix, strlen(prefix)) == 0)
            dp__problem(pr, j->file, j->line, "%s", msg);
        else
            dp__problem(pr, j->file, j->line, "%s%s", prefix, msg[0] ? msg : dp_strerror(r));
    }
    dp__plugins_batch_free(batch);
    return rc;
}

/* Contract: see daggerpool.h. Loads the explicit plugins into pl, then adds
 * every job through a dp__plugins_batch: dp_plugins_add_job's checks (the
 * plugin loaded from pl's search path on demand, one instance created to
 * check the params) with the bookkeeping done once per run of one type.
 * All refusals are listed, one per line. Runs once; later calls repeat the
 * first answer. Not concurrently with itself on the same wf. */
int dp_workflow_build(dp_workflow_t *wf, dp_plugins_t *pl, char *err, size_t errlen)
{
    if (!wf || !pl)
        return dp__seterr(err, errlen, DP_EINVAL, "dp_workflow_build: no workflow or no plugin registry");
    if (wf->build_rc != 1) {
        if (wf->build_rc != DP_OK)
            dp__seterr(err, errlen, wf->build_rc, "%s", wf->build_err ? wf->build_err : dp_strerror(wf->build_rc));
        return wf->build_rc;
    }
    char *buf = calloc(1, 16384);
    if (!buf)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    dp__problems_t pr = {.buf = buf, .len = 16384};
    if (wf->load_problems) { /* the file's own problems first */
        pr.used = (size_t)snprintf(buf, 16384, "%s", wf->load_problems);
        if (pr.used >= 16384)
            pr.used = 16383;
        pr.count = wf->load_count;
    }
    char msg[4096];
    for (size_t i = 0; i < wf->nplugins; i++) {
        const wf_plugin_t *p = &wf->plugins[i];
        if (dp_plugins_load(pl, p->name, p->path, msg, sizeof msg) != DP_OK)
            dp__problem(&pr, p->file, p->line, "plugin '%s' (%s): %s", p->name, p->path, msg);
    }
    dp_graph_t *g = dp_graph_new();
    if (!g || dp__graph_reserve(g, wf->jobs.n, wf->jobs.ndep_ids) != DP_OK) {
        dp_graph_free(g);
        free(buf);
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    int rc = add_pools(wf, g, msg, sizeof msg);
    if (rc != DP_OK)
        dp__problem(&pr, wf->path, 0, "%s", msg);
    else
        rc = add_jobs(wf, pl, g, &pr);
    /* Every job is in, in wf->jobs.v order: the dependencies by index. A
     * loop here, not a function of its own: so the compiler inlines the
     * graph's dp__graph_add_dep_id into it, which a million edges notice. */
    const dp__jobs_t *jobs = &wf->jobs;
    for (size_t i = 0; rc == DP_OK && pr.count == 0 && i < jobs->n; i++)
        for (uint32_t d = 0; rc == DP_OK && d < jobs->v[i].ndeps; d++)
            rc = dp__graph_add_dep_id(g, (uint32_t)i, jobs->dep_ids[jobs->v[i].dep_off + d]);
    if (rc == DP_OK && pr.count == 0 && dp_graph_validate(g, msg, sizeof msg) != DP_OK)
        dp__problem(&pr, wf->path, 0, "%s", msg); /* the shape graph passed: an engine/loader mismatch */
    if (rc == DP_OK && pr.count)
        rc = DP_ECONFIG;
    dp__problems_finish(&pr);
    wf->build_rc = rc;
    if (rc == DP_OK) {
        wf->graph = g;
        free(buf);
        return DP_OK;
    }
    dp_graph_free(g);
    if (rc == DP_ENOMEM)
        snprintf(buf, 16384, "out of memory building %s", wf->path);
    wf->build_err = buf;
    return dp__seterr(err, errlen, rc, "%s", buf);
}

/* Contract: see config.h. The selected jobs go through the plugins again
 * (their params checked a second time: pure checks, cheap beside a run)
 * into a graph of their own, in the file's order, with the dependencies
 * among them by index, as dp_workflow_build does for all. */
int dp__workflow_select(dp_workflow_t *wf, dp_plugins_t *pl, const unsigned char *keep, char *err, size_t errlen)
{
    if (!wf || !pl || !keep || !wf->graph || wf->full)
        return dp__seterr(err, errlen, DP_EINVAL, "dp__workflow_select: build the workflow first, and select once");
    const dp__jobs_t *jobs = &wf->jobs;
    const dp_graph_t *full = wf->graph;
    uint32_t *map = malloc((jobs->n ? jobs->n : 1) * sizeof *map);
    dp_graph_t *g = dp_graph_new();
    dp__plugin_batch_t *batch = g && map ? dp__plugins_batch_new(pl) : NULL;
    int rc = batch ? DP_OK : DP_ENOMEM;
    char msg[4096] = "";
    uint32_t kept = 0;
    for (size_t i = 0; rc == DP_OK && i < jobs->n; i++) {
        const dp__wf_job_t *j = &jobs->v[i];
        long id = dp_graph_job_id(full, j->name);
        map[i] = UINT32_MAX;
        if (id < 0 || !keep[id])
            continue;
        dp_job_spec_t spec = *dp__jobs_spec(jobs, j);
        spec.name = j->name;
        rc = dp__plugins_batch_add(batch, g, &spec, j->type, j->params, msg, sizeof msg);
        map[i] = kept++;
    }
    dp__plugins_batch_free(batch);
    for (size_t i = 0; rc == DP_OK && i < jobs->n; i++)
        for (uint32_t d = 0; rc == DP_OK && map[i] != UINT32_MAX && d < jobs->v[i].ndeps; d++) {
            uint32_t dep = map[jobs->dep_ids[jobs->v[i].dep_off + d]];
            /* The selection must hold every dependency of what it holds. */
            rc = dep == UINT32_MAX ? DP_EINVAL : dp__graph_add_dep_id(g, map[i], dep);
        }
    if (rc == DP_OK)
        rc = dp_graph_validate(g, msg, sizeof msg);
    free(map);
    if (rc != DP_OK) {
        dp_graph_free(g);
        return dp__seterr(err, errlen, rc, "selecting jobs of %s: %s", wf->path,
                          msg[0]            ? msg
                          : rc == DP_EINVAL ? "a selected job's dependency is not selected"
                                            : dp_strerror(rc));
    }
    wf->full = wf->graph;
    wf->graph = g;
    return DP_OK;
}

const dp_graph_t *dp__workflow_full_graph(const dp_workflow_t *wf)
{
    return !wf ? NULL : wf->full ? wf->full : wf->graph;
}
