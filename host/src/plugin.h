/* plugin.h - the plugin registry and loader (private parts).
 *
 * The public API is the dp_plugins_* section of daggerpool.h. What is here
 * serves the command (default search path), the hot-swap watcher and tests.
 */
#ifndef DP_PLUGIN_H
#define DP_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

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

#endif /* DP_PLUGIN_H */
