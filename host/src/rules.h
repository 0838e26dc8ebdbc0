/* rules.h - trigger rules and final jobs (rules.c): what a job's end means
 * for its successors in a graph whose jobs have a run_if other than
 * all_success or continue_on_failure, and the cleanup phase that runs the
 * final jobs (run_if all_done or any_failed) after fail-fast, the global
 * timeout or a cancellation cut the run.
 *
 * A graph without rules never comes here: its runs take pool.c's paths
 * unchanged (README.md, "Trigger rules and final jobs").
 */
#ifndef DP_RULES_H
#define DP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "run.h"

/* How the pool publishes ready jobs (pool.c's publish). */
typedef void (*dp__rules_publish_fn)(dp_run_t *run, const uint32_t *ids, size_t n);

/* Job `done` ended (any status but unknown) in a run with rules: counts
 * down its successors; each whose dependencies have all ended is judged by
 * its rule: ready (one kept in *next for this worker, the others
 * published), or skipped at once (DP__WHY_* in run->why), which counts
 * down its own successors in turn. Returns whether *next was set. */
bool dp__rules_release(dp_run_t *run, uint32_t done, uint32_t *next, dp__rules_publish_fn publish);

/* Job `id` failed: whether the run goes on anyway (its continue_on_failure;
 * false in a run without rules). */
static inline bool dp__rules_tolerated(const dp_run_t *run, uint32_t id)
{
    return run->rules && dp__def_pol(run->g, &run->g->jobs[id])->continue_on_failure;
}

/* After the workers are joined: when the run was cut (fail-fast, timeout,
 * cancellation) and final jobs have not run, runs them on the calling
 * thread, one at a time in dependency order, each under a fresh context
 * bounded by its cleanup_timeout; records what cut the run
 * (run->cleanup_after, run->cut_err). Nothing in a run without rules. */
void dp__rules_cleanup(dp_run_t *run);

#endif /* DP_RULES_H */
