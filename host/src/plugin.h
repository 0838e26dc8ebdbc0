/* plugin.h - the plugin registry and loader (private parts).
 *
 * The public API is the dp_plugins_* section of daggerpool.h. What is here
 * serves the command (default search path), the hot-swap watcher and tests.
 */
#ifndef DP_PLUGIN_H
#define DP_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"

/* The directory where a build or an install keeps its plugins, relative to
 * the running program: <dir of the executable>/../lib/daggerpool/plugins
 * (DP_PLUGIN_RELDIR). Holds in the build tree (bin/ and lib/ side by side)
 * as after `cmake --install`. Writes it into buf; 0, or DP_ESYS if
 * /proc/self/exe cannot be read, or DP_EINVAL if buf is too small. */
int dp__plugins_default_dir(char *buf, size_t len);

/* Appends each directory of a ':'-separated list (DAGGERPOOL_PLUGIN_PATH
 * style) to the search path; empty entries are skipped. */
int dp__plugins_add_path_list(dp_plugins_t *pl, const char *list);

/* The host API table handed to every plugin. */
const dp_host_api *dp__plugins_host_api(void);

/* The file that plugin `name` was loaded from, copied into buf; DP_ENOTFOUND
 * if it is not loaded. For the hot-swap watcher. */
int dp__plugins_loaded_path(dp_plugins_t *pl, const char *name, char *buf, size_t len);

/* What a successful reload swapped. The version strings are interned (they
 * live as long as the registry). */
typedef struct dp__reload_info {
    const char *old_version, *new_version;
    unsigned old_generation, new_generation;
    unsigned in_flight;   /* jobs still running on the old version */
    uint64_t swapped_ns;  /* CLOCK_MONOTONIC of the swap */
} dp__reload_info_t;

/* dp_plugins_reload, also saying what it swapped (info may be NULL; zeroed
 * on failure, except old_version when the plugin is loaded). */
int dp__plugins_reload_ex(dp_plugins_t *pl, const char *name, dp__reload_info_t *info,
                          char *err, size_t errlen);

/* Logs through the registry's log callback (dp_plugins_set_log), tagged
 * with plugin (may be NULL). Any thread. */
void dp__plugins_log(dp_plugins_t *pl, dp_log_level_t level, const char *plugin,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

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
int dp__plugins_batch_add(dp__plugin_batch_t *b, dp_graph_t *g, const dp_job_spec_t *spec,
                          const char *type, dp_params_t *params, char *err, size_t errlen);
void dp__plugins_batch_free(dp__plugin_batch_t *b);

#endif /* DP_PLUGIN_H */
