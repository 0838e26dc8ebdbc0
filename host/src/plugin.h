/* plugin.h - the plugin subsystem's private API for the rest of
 * libdaggerpool, the command and the tests: the headers of its parts, for
 * whoever needs more than one of them. The public API is the dp_plugins_*
 * section of daggerpool.h.
 *
 * The parts, each a .c with its header (plugin_int.h has the structs they
 * share, their locking rules and the lock order):
 *   plugin_registry  the registry: life, search path, settings, entries,
 *                    interned strings, the log, listing, unloading
 *   plugin_load      loading one version: security and ABI checks, init;
 *                    scanning the search path
 *   plugin_swap      versions: install, reload, pins, what jobs use
 *   host_api         the host API table an in-process plugin calls
 *   plugin_job       the job adapter: plugin job types as engine jobs
 *   plugin_watch     the file watcher that asks for reloads (dp_reloader_*)
 * The parts include each other's headers, never this one, so that the
 * include graph among them stays a ladder (scripts/include-graph.sh).
 */
#ifndef DP_PLUGIN_H
#define DP_PLUGIN_H

#include "host_api.h"
#include "plugin_job.h"
#include "plugin_registry.h"
#include "plugin_swap.h"

#endif /* DP_PLUGIN_H */
