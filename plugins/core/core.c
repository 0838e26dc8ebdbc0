/*
 * core.c - the core plugin: jobs that need nothing but the host.
 *
 *   core.noop   ready at once.
 *   core.sleep  sleeps `duration` (ends at once on cancellation), then is
 *               ready, or not ready with `ready = false`, or fails with
 *               `error = "message"`.
 */
#include <stdlib.h>
#include <string.h>

#include <daggerpool/plugin.h>

static const dp_host_api *host;

static dp_plugin_result noop_run(dp_plugin_ctx *ctx, void *state)
{
    (void)ctx;
    (void)state;
    return DP_PLUGIN_READY;
}

static int noop_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {NULL};
    (void)state;
    return host->params_check_known(ctx, params, known);
}

struct sleep_state {
    uint64_t duration_ms;
    int ready;
    const char *error; /* owned by the params, which outlive the state */
};

static int sleep_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"duration", "ready", "error", NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    struct sleep_state s = {.duration_ms = 0, .ready = 1, .error = NULL};
    if (host->param_duration_ms(params, "duration", &s.duration_ms) < 0 ||
        host->param_bool(params, "ready", &s.ready) < 0 || host->param_string(params, "error", &s.error) < 0)
        return -1;
    struct sleep_state *p = malloc(sizeof(*p));
    if (!p) {
        host->set_error(ctx, 0, "out of memory");
        return -1;
    }
    *p = s;
    *state = p;
    return 0;
}

static dp_plugin_result sleep_run(dp_plugin_ctx *ctx, void *state)
{
    const struct sleep_state *s = state;
    if (s->duration_ms && host->sleep_ms(ctx, s->duration_ms) != 0) {
        host->set_error(ctx, 0, "sleep interrupted: cancelled or timed out");
        return DP_PLUGIN_ERROR;
    }
    if (s->error) {
        host->set_error(ctx, 0, "%s", s->error);
        return DP_PLUGIN_ERROR;
    }
    return s->ready ? DP_PLUGIN_READY : DP_PLUGIN_NOT_READY;
}

static const dp_job_type noop_type = {
    .struct_size = sizeof(dp_job_type),
    .name = "noop",
    .description = "does nothing; ready at once",
    .create = noop_create,
    .run = noop_run,
    /* create only checks that there are no params: not needed per attempt. */
    .flags = DP_JOB_TYPE_STATELESS,
};

static const dp_job_type sleep_type = {
    .struct_size = sizeof(dp_job_type),
    .name = "sleep",
    .description = "sleeps `duration`, then ready (or not: `ready = false`; or fails: `error`)",
    .create = sleep_create,
    .run = sleep_run,
    .destroy = free,
};

static const dp_job_type *const types[] = {&noop_type, &sleep_type, NULL};

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "core",
    .version = "1.0.0",
    .description = "jobs that need nothing but the host: noop, sleep",
    .job_types = types,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}
