/* util.c - error strings and names, names of enums, small string helpers. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dp_version(void)
{
    return DP_VERSION_STRING;
}

/* Both from DP_ERR_MAP (daggerpool.h), so a new code cannot miss either. */
const char *dp_strerror(int err)
{
    switch (err) {
#define DP__ERR_MESSAGE(name, value, message)                                                                          \
    case DP_##name: return message;
        DP_ERR_MAP(DP__ERR_MESSAGE)
#undef DP__ERR_MESSAGE
    default: return "unknown error";
    }
}

const char *dp_err_name(int err)
{
    switch (err) {
#define DP__ERR_NAME(name, value, message)                                                                             \
    case DP_##name: return "DP_" #name;
        DP_ERR_MAP(DP__ERR_NAME)
#undef DP__ERR_NAME
    default: return "?";
    }
}

const char *dp_log_level_name(dp_log_level_t level)
{
    switch (level) {
    case DP_LOG_ERROR: return "error";
    case DP_LOG_WARN: return "warn";
    case DP_LOG_INFO: return "info";
    case DP_LOG_DEBUG: return "debug";
    }
    return "?";
}

const char *dp_status_name(dp_status_t s)
{
    switch (s) {
    case DP_STATUS_UNKNOWN: return "unknown";
    case DP_STATUS_SUCCESS: return "success";
    case DP_STATUS_NOT_READY: return "not_ready";
    case DP_STATUS_SKIPPED: return "skipped";
    case DP_STATUS_FAILED: return "failed";
    }
    return "?";
}

const char *dp_run_outcome_name(dp_run_outcome_t o)
{
    switch (o) {
    case DP_RUN_SUCCESS: return "success";
    case DP_RUN_FAILED: return "failed";
    case DP_RUN_NOT_READY: return "not_ready";
    case DP_RUN_TIMEOUT: return "timeout";
    case DP_RUN_CANCELLED: return "cancelled";
    }
    return "?";
}

int dp__seterr(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

char *dp__vasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

char *dp__asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = dp__vasprintf(fmt, ap);
    va_end(ap);
    return s;
}

char *dp__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* One row of the table at a time: two words of at most 64 bytes (longer
 * ones are no typo of a key or a name worth suggesting). */
size_t dp__edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof cur);
    }
    return prev[lb];
}

const char *dp__nearest_word(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    for (size_t i = 0; candidates && candidates[i]; i++) {
        size_t d = dp__edit_distance(word, candidates[i]);
        if (d < bestd) {
            bestd = d;
            best = candidates[i];
        }
    }
    /* A typo is a couple of edits, more in a long word, or a word whose
     * beginning is right ("retry" for "retries"); beyond that the
     * suggestion would only confuse. */
    size_t len = strlen(word), limit = len / 3 > 2 ? len / 3 : 2;
    if (!best)
        return NULL;
    size_t prefix = 0;
    while (word[prefix] && word[prefix] == best[prefix])
        prefix++;
    return (bestd <= limit && bestd < len) || prefix >= 4 ? best : NULL;
}
