/* util.c - error strings, names of enums, small string helpers. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dp_version(void)
{
    return DP_VERSION_STRING;
}

const char *dp_strerror(int err)
{
    switch (err) {
    case DP_OK: return "success";
    case DP_EINVAL: return "invalid argument";
    case DP_ENOMEM: return "out of memory";
    case DP_EDUPLICATE: return "duplicate job name";
    case DP_EUNKNOWN_DEP: return "unknown dependency";
    case DP_ESELF_DEP: return "job depends on itself";
    case DP_ECYCLE: return "dependency cycle";
    case DP_ECONCURRENCY: return "max_concurrent_jobs must be at least 1";
    case DP_ENOTFOUND: return "not found";
    case DP_ECANCELED: return "cancelled";
    case DP_ETIMEDOUT: return "timed out";
    case DP_ESYS: return "system call failed";
    case DP_EPLUGIN: return "plugin refused or failed";
    case DP_ECONFIG: return "invalid workflow file";
    case DP_EBUSY: return "busy";
    case DP_ETYPE: return "wrong type";
    case DP_ENOJOB: return "job has neither run nor check";
    default: return "unknown error";
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
