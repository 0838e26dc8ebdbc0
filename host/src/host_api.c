/*
 * host_api.c - the host API table an in-process plugin calls
 * (dp_host_api of <daggerpool/plugin.h>): logging with the job's name,
 * errors, cancellation and deadlines, a cancellable sleep, the param
 * getters, the store. Each call gets the dp_plugin_ctx of one create, run,
 * check or end (host_api.h); the job adapter (plugin_job.c) makes them and
 * reads the error a call left.
 *
 * An isolated job's plugin gets the runner's table instead
 * (host/runner/runner.c), which forwards the same calls over the wire
 * (isolate_wire.h); both tables take their param getters from one list
 * (DP__HOST_API_PARAM_GETTERS, params.h).
 *
 * Locks: only the registry's lock, briefly, to read its store and log
 * settings (plugin_registry.c), never while plugin code runs.
 */
#include "host_api.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "isolate_wire.h"
#include "params.h"
#include "plugin_int.h"
#include "plugin_registry.h"

static void host_vlog(dp_plugin_ctx *ctx, int level, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
static void host_vlog(dp_plugin_ctx *ctx, int level, const char *fmt, va_list ap)
{
    if (!ctx || !fmt)
        return;
    if (level < DP_LOG_ERROR)
        level = DP_LOG_ERROR;
    if (level > DP_LOG_DEBUG)
        level = DP_LOG_DEBUG;
    char buf[1024];
    char *msg = buf;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    if (n >= (int)sizeof(buf)) {
        msg = malloc((size_t)n + 1);
        if (msg)
            vsnprintf(msg, (size_t)n + 1, fmt, ap2);
        else
            msg = buf; /* truncated beats nothing */
    }
    va_end(ap2);
    if (ctx->job)
        dp_job_log(ctx->job, (dp_log_level_t)level, "%s", msg);
    else
        dp__plugins_log(ctx->pl, (dp_log_level_t)level, ctx->job_name, ctx->ver->entry->name, "%s", msg);
    if (msg != buf)
        free(msg);
}

static void host_log(dp_plugin_ctx *ctx, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void host_log(dp_plugin_ctx *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_vlog(ctx, level, fmt, ap);
    va_end(ap);
}

void dp__plugin_ctx_set_error(dp_plugin_ctx *ctx, unsigned flags, char *msg)
{
    free(ctx->error);
    ctx->error = msg;
    ctx->error_flags = flags;
}

static void host_set_error(dp_plugin_ctx *ctx, unsigned flags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void host_set_error(dp_plugin_ctx *ctx, unsigned flags, const char *fmt, ...)
{
    if (!ctx || !fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    /* A huge message is cut (with its full length noted), as it is for an
     * isolated job. */
    dp__plugin_ctx_set_error(ctx, flags,
                             msg ? dp__isolate_cap_message(msg) : strdup("(out of memory formatting the error)"));
}

static const char *host_job_name(dp_plugin_ctx *ctx)
{
    return ctx ? ctx->job_name : NULL;
}

static unsigned host_attempt(dp_plugin_ctx *ctx)
{
    return ctx && ctx->job ? dp_job_attempt(ctx->job) : 0;
}

static int host_is_cancelled(dp_plugin_ctx *ctx)
{
    return ctx && ctx->job ? dp_ctx_done(dp_job_ctx(ctx->job)) : 0;
}

static int64_t host_remaining_ms(dp_plugin_ctx *ctx)
{
    return ctx && ctx->job ? dp_ctx_remaining_ms(dp_job_ctx(ctx->job)) : -1;
}

static int host_sleep_ms(dp_plugin_ctx *ctx, uint64_t ms)
{
    if (ctx && ctx->job)
        return dp_ctx_sleep(dp_job_ctx(ctx->job), ms) == 0 ? 0 : -1;
    /* No job (params being checked at add time): nothing can cancel. */
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

static int host_cancel_fd(dp_plugin_ctx *ctx)
{
    return ctx && ctx->job ? dp_ctx_fd(dp_job_ctx(ctx->job)) : -1;
}

static int host_params_check_known(dp_plugin_ctx *ctx, const dp_params *p, const char *const *known)
{
    char buf[1024];
    if (dp__params_check_known(p, known, buf, sizeof(buf)) == 0)
        return 0;
    if (ctx)
        dp__plugin_ctx_set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, strdup(buf));
    return -1;
}

static dp_store_t *ctx_store(dp_plugin_ctx *ctx)
{
    dp_store_t *s = ctx && ctx->job ? dp_job_store(ctx->job) : NULL;
    if (!s && ctx) {
        pthread_mutex_lock(&ctx->pl->lock);
        s = ctx->pl->store;
        pthread_mutex_unlock(&ctx->pl->lock);
    }
    return s;
}

static int host_store_set(dp_plugin_ctx *ctx, const char *key, const void *data, size_t len)
{
    dp_store_t *s = ctx_store(ctx);
    if (!s || !key || (len && !data))
        return -1;
    return dp_store_set_copy(s, key, data, len) == DP_OK ? 0 : -1;
}

struct get_args {
    void *buf;
    size_t cap, len;
};

static void store_get_cb(const void *value, size_t len, void *arg)
{
    struct get_args *a = arg;
    a->len = len;
    if (a->buf && a->cap)
        memcpy(a->buf, value, len < a->cap ? len : a->cap);
}

static int host_store_get(dp_plugin_ctx *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    dp_store_t *s = ctx_store(ctx);
    if (!s || !key)
        return -1;
    struct get_args a = {buf, cap, 0};
    int rc = dp_store_with(s, key, store_get_cb, &a);
    if (rc == DP_ENOTFOUND)
        return 1;
    if (rc != DP_OK)
        return -1;
    if (len)
        *len = a.len;
    return 0;
}

static int host_store_delete(dp_plugin_ctx *ctx, const char *key)
{
    dp_store_t *s = ctx_store(ctx);
    if (!s || !key)
        return -1;
    int rc = dp_store_delete(s, key);
    return rc == DP_OK ? 0 : rc == DP_ENOTFOUND ? 1 : -1;
}

static void host_retry_after(dp_plugin_ctx *ctx, uint64_t ms)
{
    if (ctx && ctx->job)
        dp_job_retry_after(ctx->job, ms);
}

static const dp_host_api host_api = {
    .struct_size = sizeof(dp_host_api),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .host_version = DP_VERSION_STRING,
    .log = host_log,
    .set_error = host_set_error,
    .job_name = host_job_name,
    .attempt = host_attempt,
    .is_cancelled = host_is_cancelled,
    .remaining_ms = host_remaining_ms,
    .sleep_ms = host_sleep_ms,
    .cancel_fd = host_cancel_fd,
    DP__HOST_API_PARAM_GETTERS,
    .params_check_known = host_params_check_known,
    .store_set = host_store_set,
    .store_get = host_store_get,
    .store_delete = host_store_delete,
    .retry_after = host_retry_after,
};

const dp_host_api *dp__plugins_host_api(void)
{
    return &host_api;
}

const char *dp__plugin_ctx_error(const dp_plugin_ctx *ctx, const dp_params_t *params, bool *permanent)
{
    if (ctx->error) {
        *permanent = (ctx->error_flags & DP_PLUGIN_ERROR_PERMANENT) != 0;
        return ctx->error;
    }
    const char *perr = dp__params_error(params);
    if (perr) {
        *permanent = true; /* params do not change between attempts */
        return perr;
    }
    *permanent = false;
    return NULL;
}
