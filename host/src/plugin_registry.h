/* plugin_registry.h - the plugin registry (plugin_registry.c): its life,
 * the search path and settings, the entries and interned strings, the
 * registry's log, listing, and the end of a version's life (unload). The
 * public API is the dp_plugins_* section of daggerpool.h; the structs are
 * in plugin_int.h, with the lock each field is under.
 */
#ifndef DP_PLUGIN_REGISTRY_H
#define DP_PLUGIN_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "daggerpool/daggerpool.h"
#include "plugin_int.h"

/* The directory where a build or an install keeps its plugins, relative to
 * the running program: <dir of the executable>/../lib/daggerpool/plugins
 * (DP_PLUGIN_RELDIR). Holds in the build tree (bin/ and lib/ side by side)
 * as after `cmake --install`. Writes it into buf; 0, or DP_ESYS if
 * /proc/self/exe cannot be read, or DP_EINVAL if buf is too small. */
int dp__plugins_default_dir(char *buf, size_t len);

/* Appends each directory of a ':'-separated list (DAGGERPOOL_PLUGIN_PATH
 * style) to the search path; empty entries are skipped. */
int dp__plugins_add_path_list(dp_plugins_t *pl, const char *list);

/* The file that plugin `name` was loaded from, copied into buf; DP_ENOTFOUND
 * if it is not loaded. */
int dp__plugins_loaded_path(dp_plugins_t *pl, const char *name, char *buf, size_t len);

/* Logs through the registry's log callback (dp_plugins_set_log), tagged
 * with job and plugin (either may be NULL). Any thread; takes the
 * registry's lock briefly, and calls the callback outside it. */
void dp__plugins_log(dp_plugins_t *pl, dp_log_level_t level, const char *job, const char *plugin, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Plugin and type names: letters, digits, '_' and '-' (no '.', which
 * separates PLUGIN from TYPE). */
bool dp__plugin_valid_name(const char *s);

/* Returns a copy of s that lives as long as the registry. Caller holds
 * lock. NULL when out of memory. */
const char *dp__plugins_intern_locked(dp_plugins_t *pl, const char *s);

/* The entry of plugin `name`, or NULL. Caller holds lock. */
dp_pentry_t *dp__plugins_find_entry_locked(dp_plugins_t *pl, const char *name);

/* The entry of plugin `name`, created (without a version) if there is
 * none; NULL when out of memory. Caller holds lock. */
dp_pentry_t *dp__plugins_get_entry_locked(dp_plugins_t *pl, const char *name);

/* Finds NAME.so on the search path into path; DP_ENOTFOUND with a message
 * naming the directories searched. Caller holds load_lock. */
int dp__plugins_find_on_path(dp_plugins_t *pl, const char *name, char *path, size_t len, char *err, size_t errlen);

/* Drops one reference; the last one destroys the registry (and unloads
 * every version: no job holds a pin then, as each would hold a reference).
 * Called with no registry lock held. */
void dp__plugins_unref(dp_plugins_t *pl);

/* Describes v as dp_plugins_foreach and dp_plugins_scan report it. Caller
 * holds lock, or v is not published (a scan's probe). */
void dp__pversion_info(dp_plugin_info_t *info, const dp_pversion_t *v);

/* Calls fini (if init ran), unloads the code and frees v. Never under
 * lock: fini is plugin code (plugin_int.h says on which threads it runs). */
void dp__pversion_unload(dp_pversion_t *v);

/* dlopen and dlclose of a plugin copy, under the process's one loader
 * lock (plugin_registry.c says why). dlerror reports as after dlopen. */
void *dp__plugins_dlopen(const char *path, int flags);
void dp__plugins_dlclose(void *handle);

/* As dp__pversion_unload, but v itself stays allocated (a published
 * version's struct outlives its code: plugin_int.h). */
void dp__pversion_release(dp_pversion_t *v);

#endif /* DP_PLUGIN_REGISTRY_H */
