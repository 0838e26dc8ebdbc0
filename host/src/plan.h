/* plan.h - what a run would do, without running it (`daggerpool plan`,
 * `run --dry-run`): which jobs run, in what order (waves), which are
 * reused, which are excluded and why. Built from a validated graph, the
 * targets and the reused set a run would take (dp_run_opts_t.reused); it
 * calls nothing of any job. The command decides the targets; the state
 * code (--resume) decides the reused set and says why, per job.
 */
#ifndef DP_PLAN_H
#define DP_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daggerpool/daggerpool.h"

/* What the run would do with a job. */
typedef enum dp_plan_action {
    DP_PLAN_RUN = 0,      /* it runs, in wave dp_plan_t.wave[id] */
    DP_PLAN_REUSED = 1,   /* success from the start, not run (reuse.h) */
    DP_PLAN_EXCLUDED = 2, /* not needed by the targets: not in the run at all */
} dp_plan_action_t;

typedef struct dp_plan {
    const dp_graph_t *g;   /* the whole workflow's graph (validated); not owned */
    size_t n;              /* its jobs */
    unsigned char *action; /* per job id: dp_plan_action_t */
    unsigned char *target; /* per job id: named as a target */
    uint32_t *wave;        /* per job id: 1, 2, ... for a job that runs; 0 otherwise */
    /* per job id: why, or NULL: the caller's reason (dp__plan_make's
     * reasons), or the plan's own for a job it excludes, or one it runs
     * although given as reused. */
    const char **reason;
    char **own;        /* the plan's own reasons (freed with it), per job id, NULL mostly */
    uint32_t *targets; /* the targets, without repeats, in the order given */
    size_t ntargets;
    size_t nwaves, nrun, nreused, nexcluded;
} dp_plan_t;

/* Plans a run of g (validated) limited to targets (ids, repeats allowed;
 * none: every job) and their transitive dependencies, reusing `reused`
 * (ids, as dp_run_opts_t.reused: closed the same way). reasons: NULL, or
 * one per job id (entries may be NULL), the caller's word on each job (say
 * "succeeded in run 12, definition unchanged"); the strings must outlive
 * the plan, the array need not.
 * A job's wave is 1 + the highest wave of its dependencies that run (1
 * when none does): the jobs of a wave may all run at once once the waves
 * before are done. DP_OK, or DP_EINVAL (an id out of range) / DP_ENOMEM
 * with err; dp__plan_free either way. */
int dp__plan_make(dp_plan_t *p, const dp_graph_t *g, const uint32_t *targets, size_t ntargets, const uint32_t *reused,
                  size_t nreused, const char *const *reasons, char *err, size_t errlen);
void dp__plan_free(dp_plan_t *p);

/* The jobs the plan reuses as ids of g, a validated graph that holds them
 * under the same names: the plan's own graph, or the graph of the selected
 * jobs that a run of targets runs (dp_run_opts_t.reused of that run).
 * *ids malloc'd (NULL when none), *n of them; a reused job g does not hold
 * is left out. DP_OK or DP_ENOMEM. */
int dp__plan_reused_ids(const dp_plan_t *p, const dp_graph_t *g, uint32_t **ids, size_t *n);

/* The plan for people: a line of counts, the waves, the reused and the
 * excluded jobs with their reasons. Names escaped as the summary's. DP_OK
 * or DP_ESYS (a write failed). */
int dp__plan_render_text(FILE *out, const dp_plan_t *p, const char *workflow);

/* The plan as JSON (keys in docs/daggerpool.1 and the README): workflow,
 * targets, counts, waves, and per job its action, wave, target flag and
 * reason. DP_OK, DP_ENOMEM or DP_ESYS. */
int dp__plan_render_json(FILE *out, const dp_plan_t *p, const char *workflow);

#endif /* DP_PLAN_H */
