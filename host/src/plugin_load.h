/* plugin_load.h - loading one version of a plugin from its file
 * (plugin_load.c), and dp_plugins_scan (daggerpool.h), which loads each
 * file on the search path to describe it.
 */
#ifndef DP_PLUGIN_LOAD_H
#define DP_PLUGIN_LOAD_H

#include <stddef.h>

#include "daggerpool/daggerpool.h"
#include "plugin_int.h"

/* Loads the file at path as plugin `name`: the security checks (unless the
 * registry allows insecure plugins), a private copy, the entry point, every
 * ABI and descriptor check, then init. Registers nothing. On success *out
 * is a version with no entry, version string or generation yet; on failure
 * err names the file, the reason and the fix. Caller holds load_lock (not
 * lock). */
int dp__pversion_load(dp_plugins_t *pl, const char *name, const char *path, dp_pversion_t **out, char *err,
                      size_t errlen);

/* v's job type `type`, or NULL. v's types never change: no lock. */
const dp_ptype_t *dp__pversion_find_type(const dp_pversion_t *v, const char *type);

#endif /* DP_PLUGIN_LOAD_H */
