/* host_api.h - the host API an in-process plugin calls (host_api.c): the
 * table, and what the job adapter reads back from a call's context (the
 * context itself, struct dp_plugin_ctx, is in plugin_int.h).
 */
#ifndef DP_HOST_API_H
#define DP_HOST_API_H

#include <stdbool.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"

/* The host API table handed to every plugin loaded in this process. */
const dp_host_api *dp__plugins_host_api(void);

/* Replaces ctx's error with msg (malloc'd, taken over; may be NULL). */
void dp__plugin_ctx_set_error(dp_plugin_ctx *ctx, unsigned flags, char *msg);

/* The message of a failed plugin call: set_error's, else a failed param
 * getter's, else NULL. *permanent says whether a retry is pointless. */
const char *dp__plugin_ctx_error(const dp_plugin_ctx *ctx, const dp_params_t *params, bool *permanent);

#endif /* DP_HOST_API_H */
