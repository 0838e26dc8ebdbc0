/* config.h - the workflow file (libconfig) read into a checked description
 * and built into a graph of plugin jobs. The public calls are the
 * dp_workflow_* of daggerpool.h; what follows serves the command and the
 * renderers. Private to libdaggerpool. */
#ifndef DP_CONFIG_H
#define DP_CONFIG_H

#include "daggerpool/daggerpool.h"
#include "util.h" /* dp__nearest_word: the file's "did you mean", for the tests */

/* dp_workflow_load, except that a file that was read but has problems in
 * its settings still gives a workflow, for dp_workflow_build only: it
 * checks the plugins, types and params of the jobs that were read whole,
 * and fails (DP_ECONFIG) with the file's problems and its own in one list,
 * so that every problem of a file is listed at once. NULL, as
 * dp_workflow_load, for a file that cannot be read or parsed. */
dp_workflow_t *dp__workflow_load_for_build(const char *path, char *err, size_t errlen);

/* The workflow's shape: a validated graph with the file's jobs and
 * dependencies but no plugin behind them (never run), so the DAG can be
 * drawn without loading any plugin. Owned by wf. */
const dp_graph_t *dp__workflow_shape(const dp_workflow_t *wf);

/* The job's type as written ("core.sleep"), or NULL for no such job. */
const char *dp__workflow_job_type(const dp_workflow_t *wf, const char *job);

/* The job's scheduling settings (defaults applied) and params as read, or
 * NULL for no such job. Owned by wf. For tests and diagnostics. */
const dp_job_spec_t *dp__workflow_job_spec(const dp_workflow_t *wf, const char *job);
const dp_params_t *dp__workflow_job_params(const dp_workflow_t *wf, const char *job);

/* The three above in one lookup (the command's definition hashes read
 * them for every job of a run); false for no such job. */
bool dp__workflow_job_def(const dp_workflow_t *wf, const char *job, const char **type, const dp_params_t **params,
                          const dp_job_spec_t **spec);

/* After dp_workflow_build: makes dp_workflow_graph(wf) a graph of only
 * the jobs whose keep[id] is set (ids of the graph built, which must hold
 * every dependency of a job it holds), for a run of some targets. The
 * graph built stays alive, owned by wf (dp__workflow_full_graph), so that
 * its names and ids stay valid. Once per workflow. DP_OK, or an error with
 * err (the graph unchanged). */
int dp__workflow_select(dp_workflow_t *wf, dp_plugins_t *pl, const unsigned char *keep, char *err, size_t errlen);

/* The graph of every job of the file: dp_workflow_graph(wf) before
 * dp__workflow_select, the one it replaced after. */
const dp_graph_t *dp__workflow_full_graph(const dp_workflow_t *wf);

/* The file the workflow was read from, as given to dp_workflow_load. */
const char *dp__workflow_path(const dp_workflow_t *wf);

/* The files the workflow's @includes read (not the workflow file itself:
 * dp__workflow_path), *n of them, in the order first read. */
const char *const *dp__workflow_includes(const dp_workflow_t *wf, size_t *n);

/* workflow.listen as written (checked when the file was read), or NULL
 * when the file does not set it. */
const char *dp__workflow_listen(const dp_workflow_t *wf);

#endif /* DP_CONFIG_H */
