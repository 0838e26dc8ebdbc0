/* plugin_swap.h - a plugin's versions (plugin_swap.c): installing the
 * first (dp_plugins_load), swapping in the next (dp_plugins_reload), the
 * pins jobs hold, and the counts of what jobs use, which a reload must
 * keep.
 */
#ifndef DP_PLUGIN_SWAP_H
#define DP_PLUGIN_SWAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "plugin_int.h"

/* What a successful reload swapped. The version strings are interned (they
 * live as long as the registry). */
typedef struct dp__reload_info {
    const char *old_version, *new_version;
    unsigned old_generation, new_generation;
    unsigned in_flight;  /* jobs still running on the old version */
    uint64_t swapped_ns; /* CLOCK_MONOTONIC of the swap */
} dp__reload_info_t;

/* dp_plugins_reload, also saying what it swapped (info may be NULL; zeroed
 * on failure, except old_version when the plugin is loaded). */
int dp__plugins_reload_ex(dp_plugins_t *pl, const char *name, dp__reload_info_t *info, char *err, size_t errlen);

/* Pins e's current version for one attempt (or an add): NULL if e has none.
 * Takes lock. */
dp_pversion_t *dp__pversion_pin(dp_plugins_t *pl, dp_pentry_t *e);

/* Drops a pin; unloads the version if it was the last pin of an old one
 * (fini on this thread). Takes lock; call it with lock not held. */
void dp__pversion_unpin(dp_plugins_t *pl, dp_pversion_t *v);

/* Counts n more jobs of e's `type` whose specs call run / check: a reload
 * must keep what they use. Caller holds load_lock (so that no reload swaps
 * versions between the type check and this) and lock. DP_OK or
 * DP_ENOMEM. */
int dp__pentry_note_used_locked(dp_pentry_t *e, const char *type, unsigned n, bool run, bool check);

/* Gives back n counts of dp__pentry_note_used_locked. Caller holds lock. */
void dp__pentry_unnote_used_locked(dp_pentry_t *e, const char *type, unsigned n, bool run, bool check);

#endif /* DP_PLUGIN_SWAP_H */
