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
#define DP__ERR_MESSAGE(name, value, message) \
    case DP_##name: return message;
        DP_ERR_MAP(DP__ERR_MESSAGE)
#undef DP__ERR_MESSAGE
    default: return "unknown error";
    }
}

const char *dp_err_name(int err)
{
    switch (err) {
#define DP__ERR_NAME(name, value, message) \
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
