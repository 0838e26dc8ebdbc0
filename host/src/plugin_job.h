/* plugin_job.h - the job adapter (plugin_job.c): plugin job types as
 * engine jobs. dp_plugins_add_job is in daggerpool.h; here is its batch
 * form for the workflow loader.
 */
#ifndef DP_PLUGIN_JOB_H
#define DP_PLUGIN_JOB_H

#include <stddef.h>

#include "daggerpool/daggerpool.h"

/* dp_plugins_add_job for many jobs in a row (the workflow loader): the same
 * checks, messages and per-job create/destroy of an instance to check the
 * params, but the plugin, its type and the registry's bookkeeping (pin,
 * type counts, references) are resolved once per run of jobs of one type
 * instead of once per job. params are lent, not copied: they must outlive
 * the graph's jobs (and are one per job: a job records its diagnostics in
 * them). While a batch is open it holds the registry's load lock: no reload
 * or load from another thread until dp__plugins_batch_free. One thread. */
typedef struct dp__plugin_batch dp__plugin_batch_t;
dp__plugin_batch_t *dp__plugins_batch_new(dp_plugins_t *pl);
int dp__plugins_batch_add(dp__plugin_batch_t *b, dp_graph_t *g, const dp_job_spec_t *spec, const char *type,
                          dp_params_t *params, char *err, size_t errlen);
void dp__plugins_batch_free(dp__plugin_batch_t *b);

#endif /* DP_PLUGIN_JOB_H */
