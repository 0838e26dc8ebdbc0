/* params.h - typed job params (private parts).
 *
 * A dp_params_t is an ordered group of named values: string, integer, float,
 * boolean, list of strings, nested group. The workflow file and embedders
 * build it with the dp_params_set_* calls of daggerpool.h; plugins read it
 * through the getters below, which the plugin loader puts into the host API
 * table (their return codes are the DP_PARAM_* of plugin.h).
 *
 * Thread-safety: a params object is not locked. Building it is
 * single-threaded; reading it from several threads at once is safe except for
 * the recorded diagnostic (dp__params_error), which is why the loader gives
 * each job its own copy and calls one job's create/run/check in sequence.
 */
#ifndef DP_PARAMS_H
#define DP_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h" /* DP_PARAM_* return codes */

typedef enum dp_param_kind {
    DP_PARAM_KIND_STRING = 1,
    DP_PARAM_KIND_INT,
    DP_PARAM_KIND_FLOAT,
    DP_PARAM_KIND_BOOL,
    DP_PARAM_KIND_LIST,
    DP_PARAM_KIND_GROUP
} dp_param_kind_t;

/* "a string", "an integer", ... for messages. */
const char *dp__param_kind_name(dp_param_kind_t kind);

/* Getters. Return DP_PARAM_OK, DP_PARAM_ABSENT (out untouched),
 * DP_PARAM_WRONG_TYPE or DP_PARAM_BAD_VALUE; a negative return records a
 * message naming the key and the params' origin (see dp__params_error).
 * Returned pointers are owned by p and live as long as it does. */
int dp__params_get_string(const dp_params_t *p, const char *key, const char **out);
int dp__params_get_int(const dp_params_t *p, const char *key, int64_t *out);
/* Accepts an integer too (converted). */
int dp__params_get_float(const dp_params_t *p, const char *key, double *out);
int dp__params_get_bool(const dp_params_t *p, const char *key, int *out);
/* A non-negative integer of milliseconds, or a duration string ("5m"). */
int dp__params_get_duration_ms(const dp_params_t *p, const char *key, uint64_t *out);
int dp__params_list_count(const dp_params_t *p, const char *key, size_t *count);
/* DP_PARAM_BAD_VALUE if index is out of range. */
int dp__params_list_item(const dp_params_t *p, const char *key, size_t index, const char **out);
int dp__params_get_group(const dp_params_t *p, const char *key, const dp_params_t **out);
size_t dp__params_count(const dp_params_t *p);
/* NULL if index >= count. */
const char *dp__params_key_at(const dp_params_t *p, size_t index);
/* The kind of key's value, or 0 if absent. */
dp_param_kind_t dp__params_kind(const dp_params_t *p, const char *key);

/* The getters' entries of a dp_host_api table (plugin.h), for both tables
 * the host fills: the in-process one (host_api.c) and the isolated runner's
 * (runner.c). One list, so a getter added to the ABI reaches both. */
#define DP__HOST_API_PARAM_GETTERS                                                                                     \
    .param_string = dp__params_get_string, .param_int = dp__params_get_int, .param_float = dp__params_get_float,       \
    .param_bool = dp__params_get_bool, .param_duration_ms = dp__params_get_duration_ms,                                \
    .param_list_count = dp__params_list_count, .param_list_item = dp__params_list_item,                                \
    .param_group = dp__params_get_group, .param_count = dp__params_count, .param_key_at = dp__params_key_at

/* Checks that every key of p is in `known` (NULL-terminated). Returns 0, or
 * -1 with "unknown param 'x' (did you mean 'y'?)" written to err. */
int dp__params_check_known(const dp_params_t *p, const char *const *known, char *err, size_t errlen);

/* The message of the last failed getter on p or any of its nested groups
 * (NULL if none). Owned by the root params object. */
const char *dp__params_error(const dp_params_t *p);
void dp__params_clear_error(const dp_params_t *p);

/* "deploy.cfg:12" or "" when no origin is set; into buf. */
const char *dp__params_origin(const dp_params_t *p, char *buf, size_t len);

#endif /* DP_PARAMS_H */
